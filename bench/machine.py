"""Describes the machine and the software a benchmark run measured, to be stored with its results.

Only facts that do not identify this machine's file system are recorded: no paths (threadpoolctl's file paths and
NumPy's build directories are left out).
"""
from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

#: /proc/cpuinfo flags that matter for these kernels (recorded when present)
RELEVANT_FLAGS = ("sse4_2", "avx", "f16c", "fma", "avx2", "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "hypervisor")


#: a 1-minute load average at or above this, before the run starts, counts as a busy machine: other processes were
#: runnable on at least half a core on average, which on a 2-CPU machine skews the timings (threads most of all)
BUSY_LOAD = 0.5
#: other processes' mean CPU use (cores) during a section above which its timings count as disturbed
BUSY_CORES = 0.25


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (``os.getloadavg``), or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def load_state(load: list[float] | None) -> dict:
    """``{"load_average": [1, 5, 15 min], "cpus": n, "busy": bool or None}`` for a load average taken now."""
    return {"load_average": load, "cpus": os.cpu_count(), "busy": None if load is None else load[0] >= BUSY_LOAD,
            "busy_load": BUSY_LOAD}


def _cpu_busy_seconds() -> float | None:
    """CPU seconds all CPUs spent busy since boot (/proc/stat: everything but idle and iowait), or None."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(x) for x in fields[1:]]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]   # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of its finished child processes."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class OtherLoad:
    """How many cores other processes kept busy, on average, between ``start()`` and ``stop()``.

    Total busy CPU time of the machine (/proc/stat) minus this process's own (``getrusage``), over the wall time;
    Linux only (elsewhere ``stop()`` returns None). Sharper than the load average, which also counts this process
    and lags by a minute.
    """

    def __init__(self):
        self._start: tuple[float | None, float, float] | None = None

    def start(self) -> None:
        """Take the first reading."""
        self._start = (_cpu_busy_seconds(), _own_cpu_seconds(), time.perf_counter())

    def stop(self) -> float | None:
        """Other processes' mean number of busy cores since ``start()`` (None where /proc/stat is missing)."""
        if self._start is None or self._start[0] is None:
            return None
        busy0, own0, t0 = self._start
        busy1, own1, t1 = _cpu_busy_seconds(), _own_cpu_seconds(), time.perf_counter()
        if busy1 is None or t1 <= t0:
            return None
        return max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)


def _cpuinfo() -> dict:
    info: dict = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine()}
    first = text.split("\n\n", 1)[0]
    fields = {}
    for line in first.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    info["model"] = fields.get("model name", platform.processor())
    info["vendor"] = fields.get("vendor_id")
    info["family_model_stepping"] = "/".join(fields.get(k, "?") for k in ("cpu family", "model", "stepping"))
    info["mhz"] = fields.get("cpu MHz")
    flags = set(fields.get("flags", "").split())
    info["flags"] = [f for f in RELEVANT_FLAGS if f in flags]
    return info


def _caches() -> dict:
    caches = {}
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for index in sorted(base.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        name = f"L{level}" + ({"Data": "d", "Instruction": "i"}.get(kind, ""))
        caches[name] = size
    return caches


def _numpy() -> dict:
    import numpy as np

    out: dict = {"version": np.__version__}
    try:
        deps = np.show_config(mode="dicts").get("Build Dependencies", {})
        blas = deps.get("blas", {})
        out["blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration") if blas.get(k)}
    except Exception as exc:  # show_config's dict mode is NumPy >= 1.26 only
        out["blas"] = f"unknown ({type(exc).__name__})"
    try:
        from threadpoolctl import threadpool_info

        keep = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "architecture")
        out["threadpools"] = [{k: pool.get(k) for k in keep} for pool in threadpool_info()]
    except ImportError:
        out["threadpools"] = "threadpoolctl not installed"
    return out


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return getattr(mod, "__version__", "unknown")


def collect(compiler_version: str | None, fann_version: str | None, pinned_core: int | None) -> dict:
    """Return a JSON-ready description of this machine and of the software versions in use.

    Parameters
    ----------
    compiler_version : str or None
        First line of the C compiler's ``--version``.
    fann_version : str or None
        FANN's version (pkg-config), None when FANN is not installed.
    pinned_core : int or None
        The core the benchmark is pinned to, None when not pinned.
    """
    import annfast

    torch_version = _version("torch")
    threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    if torch_version is not None:
        import torch

        threads["torch.get_num_threads()"] = torch.get_num_threads()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": {**_cpuinfo(), "logical_cpus": os.cpu_count(), "caches": _caches()},
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "pinned_core": pinned_core,
        "threads": threads,
        "compiler": compiler_version,
        "annfast": _version("annfast") or getattr(annfast, "__version__", None),
        "numpy": _numpy(),
        "torch": torch_version,
        "scikit-learn": _version("sklearn"),
        "matplotlib": _version("matplotlib"),
        "fann": fann_version,
    }


def summary_lines(machine: dict) -> list[str]:
    """A few human-readable lines about the machine, for the console and the markdown report."""
    cpu = machine["cpu"]
    blas = machine["numpy"].get("blas")
    blas_text = blas.get("openblas configuration") or blas.get("name") if isinstance(blas, dict) else blas
    caches = ", ".join(f"{k} {v}" for k, v in cpu.get("caches", {}).items())
    return [
        f"CPU: {cpu.get('model')} ({cpu.get('family_model_stepping')}), {cpu.get('logical_cpus')} logical CPUs, "
        f"flags: {' '.join(cpu.get('flags', []))}" + (f"; caches: {caches}" if caches else ""),
        f"single thread, pinned to core {machine['pinned_core']}; {machine['os']}; Python {machine['python']}; "
        f"{machine['compiler'] or 'no C compiler'}",
        f"annfast {machine['annfast']}, NumPy {machine['numpy']['version']} ({blas_text}), PyTorch {machine['torch']}, "
        f"scikit-learn {machine['scikit-learn']}, FANN {machine['fann']}; {machine['date']}",
    ]
