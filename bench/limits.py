"""The machine's own limits: runs bench/limits.c (FMA peaks, weight-sweep bandwidth) and turns them into samples/s.

Per-sample SGD of a network must at least read every weight once (forward pass) and read-modify-write every
weight once (the fused backward/update), so for a shape whose weights take B bytes the limit is
``1 / (B / read_bandwidth + B / rmw_bandwidth)`` samples per second, with both bandwidths measured on a buffer of
exactly B bytes (so each shape gets the cache level its weights really live in).

A kernel that defers a row's update of a layer into the next row's forward sweep over that layer touches those
weights only once per sample (one read-modify-write sweep), so it can beat that limit; the one-sweep bound
``rmw_bandwidth / B`` is reported beside it for such kernels.
"""
from __future__ import annotations

import subprocess

from cbuild import BuildError, compile_c
from data import n_params

FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-std=gnu11", "-Wall"]


class LimitsUnavailable(Exception):
    """limits.c cannot be built or run here; the message says why."""


def samples_per_s_limit(n_bytes: float, read_bps: float, rmw_bps: float) -> float:
    """One read sweep plus one read-modify-write sweep of ``n_bytes`` of weights, as samples per second."""
    return 1.0 / (n_bytes / read_bps + n_bytes / rmw_bps)


def sample(shapes: dict[str, tuple[int, ...]], quick: bool = False) -> dict:
    """Build (if needed) and run limits.c once for the weights of these shapes, in float32 and float64.

    Parameters
    ----------
    shapes : dict of str to tuple of int
        Shape name -> layer sizes.
    quick : bool, default=False
        Fewer and shorter trials.

    Returns
    -------
    dict
        ``{"peak_gflops": {"avx2": .., "avx512": .., "scalar": .., "avx2_f64": .., "avx512_f64": ..,
        "scalar_f64": ..}, "bandwidth": [{"elem_size", "elements", "read_Bps", "rmw_Bps"}, ...]}``: FMA peaks in
        GFLOP/s, float32 under the plain ISA name and float64 with ``_f64``; a peak the CPU lacks is absent.

    Raises
    ------
    LimitsUnavailable
        No C compiler, or the program failed.
    """
    try:
        exe = compile_c("limits.c", "limits", FLAGS)
    except BuildError as exc:
        raise LimitsUnavailable(str(exc)) from None
    counts = [str(n_params(sizes)) for sizes in shapes.values()]
    args = [str(exe)] + (["--quick"] if quick else []) + counts + ["--"] + counts
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LimitsUnavailable(f"limits failed (exit code {proc.returncode}): {proc.stderr.strip()}")
    out: dict = {"peak_gflops": {}, "bandwidth": []}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["peak"]:
            out["peak_gflops"][parts[1]] = float(parts[2])
        elif parts[:1] == ["bw"]:
            out["bandwidth"].append({"elem_size": int(parts[1]), "elements": int(parts[2]),
                                     "read_Bps": float(parts[3]), "rmw_Bps": float(parts[4])})
    return out


def combine(samples: list[dict], shapes: dict[str, tuple[int, ...]]) -> dict:
    """Best figures over several ``sample`` runs (taken at different times of a run), and each shape's limits.

    The best, not the median: a limit is what the machine can do, and interference only ever lowers a figure.

    Returns
    -------
    dict
        ``{"peak_gflops": {...}, "shapes": {name: {dtype: {"params", "bytes", "read_Bps", "rmw_Bps",
        "limit_samples_per_s", "one_sweep_samples_per_s"}}}, "flags": build flags, "samples": samples}``, with
        ``peak_gflops`` keyed as in ``sample`` (float32 and float64 FMA peaks).
    """
    peak: dict[str, float] = {}
    best: dict[tuple[int, int], tuple[float, float]] = {}
    for s in samples:
        for k, v in s["peak_gflops"].items():
            peak[k] = max(peak.get(k, 0.0), v)
        for b in s["bandwidth"]:
            key = (b["elem_size"], b["elements"])
            read_bps, rmw_bps = best.get(key, (0.0, 0.0))
            best[key] = (max(read_bps, b["read_Bps"]), max(rmw_bps, b["rmw_Bps"]))
    result: dict = {"peak_gflops": peak, "shapes": {}, "flags": " ".join(FLAGS), "samples": samples}
    for name, sizes in shapes.items():
        n = n_params(sizes)
        per_dtype = {}
        for dtype, size in (("float32", 4), ("float64", 8)):
            read_bps, rmw_bps = best[(size, n)]
            n_bytes = n * size
            per_dtype[dtype] = {"params": n, "bytes": n_bytes, "read_Bps": read_bps, "rmw_Bps": rmw_bps,
                                "limit_samples_per_s": samples_per_s_limit(n_bytes, read_bps, rmw_bps),
                                "one_sweep_samples_per_s": rmw_bps / n_bytes}
        result["shapes"][name] = per_dtype
    return result
