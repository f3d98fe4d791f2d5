"""Compiles the benchmark's small C programs into bench/build/, again only when the source or the command changed."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD_DIR = HERE / "build"


class BuildError(Exception):
    """A C program could not be built; the message says why."""


def compiler() -> str:
    """The C compiler to use: $CC, else gcc; raises BuildError when there is none."""
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise BuildError(f"no C compiler ({cc!r} not found)")
    return cc


def compiler_version(cc: str | None = None) -> str | None:
    """First line of ``cc --version``, or None."""
    try:
        out = subprocess.run([cc or compiler(), "--version"], capture_output=True, text=True, check=True).stdout
    except (BuildError, OSError, subprocess.CalledProcessError):
        return None
    return out.splitlines()[0].strip() if out else None


def compile_c(source: str, output: str, flags: list[str], libs: list[str] | None = None) -> Path:
    """Compile ``bench/<source>`` into ``bench/build/<output>`` unless an up-to-date build is there.

    Parameters
    ----------
    source : str
        File name of the C source, next to this module.
    output : str
        File name of the executable in bench/build/.
    flags : list of str
        Compiler flags (placed before the source).
    libs : list of str, optional
        Linker arguments (placed after the source), e.g. ``["-lfloatfann", "-lm"]``.

    Returns
    -------
    Path
        The executable.

    Raises
    ------
    BuildError
        No compiler, or the compilation failed (its message is included).
    """
    cc = compiler()
    src = HERE / source
    exe = BUILD_DIR / output
    stamp = BUILD_DIR / (output + ".cmd")
    cmd = [cc, *flags, source, "-o", f"build/{output}", *(libs or [])]
    cmd_text = shlex.join(cmd)
    if exe.exists() and stamp.exists() and stamp.read_text() == cmd_text \
            and exe.stat().st_mtime >= src.stat().st_mtime:
        return exe
    BUILD_DIR.mkdir(exist_ok=True)
    proc = subprocess.run(cmd, cwd=HERE, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"`{cmd_text}` failed:\n{proc.stderr.strip()}")
    stamp.write_text(cmd_text)
    return exe
