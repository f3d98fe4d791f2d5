"""The performance targets of the benchmark issue, and their evaluation against a run's results (PASS/FAIL)."""
from __future__ import annotations

#: shape -> (x FANN floatfann, x PyTorch per-sample, fraction of the bandwidth limit or None for "report only")
PER_SAMPLE = {
    "tiny": (1.8, 1000.0, None),
    "small": (7.0, 400.0, 0.35),
    "medium": (10.0, 30.0, 0.80),
    "large": (10.0, 7.0, 0.70),
}
F64_VS_F32 = 0.5
#: the instruction sets whose FMA peaks (float32 and float64) give the f64/f32 ceiling, widest first
PEAK_ISAS = ("avx512", "avx2", "scalar")
MINIBATCH_SHAPE = "medium"
MINIBATCH = {"sklearn_f32": 2.0, "torch_f32": 2.0}
#: shape -> least speed-up of per-sample fit (float32) at 2 threads with merged copies (the default) over 1 thread
THREADS_SPEEDUP = {"medium": 1.7, "large": 1.7}
#: (shape, latency key) -> most microseconds per call
LATENCY = {
    ("tiny", "annfast_predict"): 1.5,
    ("tiny", "annfast_predict_one"): 1.5,
    ("medium", "annfast_predict"): 10.0,
    ("medium", "annfast_predict_one"): 10.0,
    ("tiny", "annfast_train_step"): 2.0,
}


def _rate(section: dict, shape: str, key: str) -> float | None:
    peer = section.get(shape, {}).get("peers", {}).get(key)
    return None if peer is None else peer["samples_per_s"]


def _row(target: str, measured: float | None, ok: bool | None, unit: str = "x", skip: str = "not measured") -> dict:
    if measured is None:
        return {"target": target, "measured": None, "text": skip, "status": "SKIP"}
    if unit == "%":
        text = f"{measured:.1%}"
    elif unit == "us":
        text = f"{measured:.3g} us"
    else:
        text = f"{measured:,.0f}x" if measured >= 1000 else f"{measured:.3g}x"
    return {"target": target, "measured": measured, "text": text,
            "status": "INFO" if ok is None else "PASS" if ok else "FAIL"}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _f64_ceiling_row(results: dict, shape: str, label: str) -> dict:
    """INFO row: the f64/f32 throughput ratio this machine allows, from the FMA peaks and from the bandwidth limits.

    Equal efficiency in both dtypes reaches the FMA peak ratio on a compute-bound shape and the bandwidth-limit
    ratio on a memory-bound one. ``measured`` is the FMA ratio (the bandwidth one when the f64 peaks are missing, as
    in results from before limits.c measured them); SKIP when neither is known.
    """
    limits = results.get("limits", {})
    peak = limits.get("peak_gflops", {})
    fma = next((_ratio(peak[f"{isa}_f64"], peak[isa]) for isa in PEAK_ISAS
                if peak.get(isa) and peak.get(f"{isa}_f64")), None)
    per_dtype = limits.get("shapes", {}).get(shape, {})
    bw = _ratio(per_dtype.get("float64", {}).get("limit_samples_per_s"),
                per_dtype.get("float32", {}).get("limit_samples_per_s"))
    target = f"{label}: f64/f32 ceiling on this machine (FMA peak ratio; bandwidth-limit ratio)"
    if fma is None and bw is None:
        return _row(target, None, None)
    text = "; ".join("-" if r is None else f"{r:.2f}" for r in (fma, bw))
    return {"target": target, "measured": fma if fma is not None else bw, "text": text, "status": "INFO"}


def evaluate(results: dict) -> list[dict]:
    """Evaluate every target on a run's results.

    Returns
    -------
    list of dict
        ``target`` (what is asked), ``measured`` (number or None), ``text`` (the measured value for people) and
        ``status``: "PASS", "FAIL", "INFO" (report only) or "SKIP" (not measured in this run). Each float64 target
        is followed by an INFO row with the f64/f32 ratio this machine allows (``_f64_ceiling_row``).
    """
    rows = []
    per_sample = results.get("per_sample", {})
    limits = results.get("limits", {}).get("shapes", {})
    for shape, (x_fann, x_torch, frac) in PER_SAMPLE.items():
        if shape not in per_sample:
            continue
        label = per_sample[shape]["label"]
        af32 = _rate(per_sample, shape, "annfast_fit_f32")
        r = _ratio(af32, _rate(per_sample, shape, "fann_f32"))
        rows.append(_row(f"{label}: annfast fit f32 >= {x_fann:g}x FANN floatfann", r, r is not None and r >= x_fann))
        r = _ratio(af32, _rate(per_sample, shape, "torch_f32"))
        rows.append(_row(f"{label}: annfast fit f32 >= {x_torch:g}x PyTorch per-sample", r,
                         r is not None and r >= x_torch))
        lim = limits.get(shape, {}).get("float32", {}).get("limit_samples_per_s")
        r = _ratio(af32, lim)
        goal = "report only" if frac is None else f">= {frac:.0%}"
        rows.append(_row(f"{label}: annfast fit f32, fraction of the bandwidth limit ({goal})", r,
                         None if frac is None else (r is not None and r >= frac), unit="%"))
    for shape in PER_SAMPLE:
        if shape not in per_sample:
            continue
        label = per_sample[shape]["label"]
        r = _ratio(_rate(per_sample, shape, "annfast_fit_f64"), _rate(per_sample, shape, "annfast_fit_f32"))
        rows.append(_row(f"{label}: annfast fit f64 >= {F64_VS_F32:g}x fit f32", r, r is not None and r >= F64_VS_F32))
        rows.append(_f64_ceiling_row(results, shape, label))
    minibatch = results.get("minibatch", {})
    if MINIBATCH_SHAPE in minibatch:
        af = _rate(minibatch, MINIBATCH_SHAPE, "annfast_fit_f32")
        for key, goal in MINIBATCH.items():
            peer = "scikit-learn" if key.startswith("sklearn") else "PyTorch"
            r = _ratio(af, _rate(minibatch, MINIBATCH_SHAPE, key))
            rows.append(_row(f"{minibatch[MINIBATCH_SHAPE]['label']} mini-batch 32: annfast >= {goal:g}x {peer}", r,
                             r is not None and r >= goal))
    latency = results.get("latency", {})
    for (shape, key), most in LATENCY.items():
        if shape not in latency:
            continue
        entry = latency[shape]["calls"].get(key)
        us = None if entry is None else entry["us_per_call"]
        name = entry["name"] if entry else key
        rows.append(_row(f"{latency[shape]['label']}: {name} <= {most:g} us", us, us is not None and us <= most,
                         unit="us"))
    threads = results.get("threads", {})
    speedup = threads.get("speedup", {})
    for shape, goal in THREADS_SPEEDUP.items():
        if shape not in speedup:
            continue
        entry = speedup[shape]
        # the default threaded mode: the split kernel (results from before it measured merged copies)
        key = "sgd_split" if "sgd_split" in entry["modes"] or "sgd_split" in entry.get("failed", {}) else "sgd_merged"
        target = (f"{entry['label']}: per-sample fit f32, {threads['threads']} threads "
                  f"({'split' if key == 'sgd_split' else 'merged'}) >= {goal:g}x 1 thread")
        mode = entry["modes"].get(key)
        if threads["cpus"] < threads["threads"]:
            rows.append(_row(target, None, None, skip=f"needs {threads['threads']} CPUs, this process has "
                                                       f"{threads['cpus']}"))
        elif mode is None:
            why = entry.get("failed", {}).get(key, {}).get("why", "not measured")
            rows.append(_row(target, None, None, skip=f"not timed: {why}"))
        else:
            rows.append(_row(target, mode["speedup"], mode["speedup"] >= goal))
    return rows
