"""Builds the one extension, annfast._core (metadata lives in pyproject.toml).

ANNFAST_DEBUG_BUILD=1 turns Cython's bounds checks back on and compiles with -O0 -g;
ANNFAST_SANITIZE=1 adds AddressSanitizer and UndefinedBehaviorSanitizer (GCC/Clang).
"""
import os
from concurrent.futures import ThreadPoolExecutor

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("ANNFAST_DEBUG_BUILD") == "1"
SANITIZE = os.environ.get("ANNFAST_SANITIZE") == "1"
#: the kind of build; each keeps its generated C and objects in build/ apart from the others
FLAVOUR = "-".join(name for name, on in (("debug", DEBUG), ("sanitize", SANITIZE)) if on) or "release"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "embedsignature": True,
}

CSRC = ["csrc/af_layout.c"] + [f"csrc/af_{prec}{isa}.c" for prec in ("f32", "f64") for isa in ("", "_avx2", "_avx512")]
DEPENDS = ["csrc/annfast.h", "csrc/af_internal.h", "csrc/af_kernels.inc", "csrc/af_simd.inc", "csrc/af_api.inc",
           "csrc/af_reference.inc", "csrc/af_step.inc", "csrc/af_variant.inc", "csrc/af_split.inc", "csrc/af_sync.h",
           "csrc/af_fpenv.h"]
DEPENDS += sorted(f"csrc/{name}" for name in os.listdir("csrc") if name.startswith("strategy_"))


class BuildExt(build_ext):
    """Compiler flags by compiler type; never -march=native or -ffast-math (see csrc/annfast.h)."""

    def finalize_options(self):
        """Objects per flavour, and a full rebuild when the flavour differs from the last build's.

        The library left in build/ by a sanitizer build is newer than the sources, so without this a later
        release build from the same tree would skip compiling and ship the instrumented one (and the reverse).
        """
        super().finalize_options()
        self.flavour_stamp = os.path.join(self.build_temp, "annfast-flavour")
        self.build_temp = os.path.join(self.build_temp, FLAVOUR)
        try:
            with open(self.flavour_stamp) as f:
                last = f.read()
        except OSError:
            last = None
        if last != FLAVOUR:
            self.force = True

    def run(self):
        """Build, then record the flavour that build/ now holds."""
        super().run()
        os.makedirs(os.path.dirname(self.flavour_stamp), exist_ok=True)
        with open(self.flavour_stamp, "w") as f:
            f.write(FLAVOUR)

    def build_extensions(self):
        """Set the flags of every extension for this compiler, then build."""
        if self.compiler.compiler_type == "msvc":
            flags, link = ["/O2"], []
        else:
            flags = ["-O0", "-g"] if DEBUG or SANITIZE else ["-O3", "-g0"]
            flags += ["-Wall", "-Wextra", "-Wno-unused-function", "-fvisibility=hidden"]
            link = []
            if SANITIZE:
                san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer",
                       "-O1", "-g"]
                flags, link = flags + san, san
        for ext in self.extensions:
            ext.extra_compile_args = flags
            ext.extra_link_args = link
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        if jobs > 1 and self.compiler.compiler_type != "msvc":
            # the C files compile one per CPU (the kernel variants take most of a build's time): each
            # goes through the compiler's own compile(), one source per call
            serial = self.compiler.compile

            def compile_parallel(sources, *args, **kwargs):
                with ThreadPoolExecutor(max_workers=min(jobs, len(sources) or 1)) as pool:
                    parts = list(pool.map(lambda src: serial([src], *args, **kwargs), sources))
                return [obj for part in parts for obj in part]

            self.compiler.compile = compile_parallel
        super().build_extensions()


extension = Extension(
    "annfast._core",
    sources=["annfast/_core.pyx", *CSRC],
    include_dirs=["csrc", numpy.get_include()],
    # NumPy's C API (new arrays for single-row results), usable down to the oldest NumPy we support
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"), ("NPY_TARGET_VERSION", "NPY_1_22_API_VERSION")],
    depends=DEPENDS,
)

setup(
    # the generated C depends on the directives (bounds checks in debug builds): one copy per flavour
    ext_modules=cythonize([extension], compiler_directives=DIRECTIVES, build_dir=f"build/cython-{FLAVOUR}"),
    cmdclass={"build_ext": BuildExt},
)
