"""Presents a run's results: console tables, the markdown report, the JSON file of raw results and the chart.

Nothing here measures; every function takes the results dictionary that run.py builds (its layout is described in
bench/README.md) and renders part of it.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

#: per-sample SGD implementations: key -> (name, dtype), in table and chart order
PER_SAMPLE_PEERS = {
    "annfast_fit_f32": ("annfast fit", "float32"),
    "annfast_fit_f64": ("annfast fit", "float64"),
    "annfast_fit_shuffled_f32": ("annfast fit(shuffle=True)", "float32"),
    "annfast_fit_momentum_f32": ("annfast fit(momentum=0.9)", "float32"),
    "annfast_train_step_f32": ("annfast train_step, Python loop", "float32"),
    "fann_f32": ("FANN fann_train (floatfann)", "float32"),
    "fann_f64": ("FANN fann_train (doublefann)", "float64"),
    "numpy_f32": ("NumPy per-sample", "float32"),
    "torch_f32": ("PyTorch per-sample", "float32"),
    "sklearn_f32": ("scikit-learn partial_fit", "float32"),
}
MINIBATCH_PEERS = {
    "annfast_fit_f32": ("annfast fit(batch_size=32)", "float32"),
    "torch_f32": ("PyTorch, batches of 32", "float32"),
    "sklearn_f32": ("scikit-learn partial_fit, batch_size=32", "float32"),
}
LATENCY_CALLS = {
    "annfast_predict": "annfast predict(row 1xN)",
    "annfast_predict_one": "annfast predict_one(x)",
    "numpy_predict": "NumPy forward",
    "torch_predict": "PyTorch forward (inference_mode)",
    "sklearn_predict": "scikit-learn predict",
    "annfast_train_step": "annfast train_step",
}
LATENCY_REFERENCE = "annfast_predict_one"
#: section name -> its key in the results
SECTION_KEYS = {"checks": "checks", "per-sample": "per_sample", "minibatch": "minibatch", "latency": "latency",
                "threads": "threads", "limits": "limits", "cliffs": "cliffs"}
#: how a partial run merges a section into the previous results: the sub-dicts keyed by shape (or data set) whose
#: entries it replaces one by one (None: the section itself is keyed by shape)
MERGE_BY = {"checks": ("fann", "peers"), "per_sample": (None,), "minibatch": (None,), "latency": (None,),
            "threads": ("speedup", "accuracy"), "limits": ("shapes",), "cliffs": ("fit", "settled")}


def reference_key(key: str) -> str:
    """The annfast fit measurement a throughput peer is compared with: annfast fit of the same dtype."""
    return "annfast_fit_f64" if key.endswith("_f64") else "annfast_fit_f32"


def fmt_rate(x: float | None) -> str:
    """Samples per second for people: ``4.26 M``, ``48.5 k``, ``931``."""
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.3g} M"
    if x >= 1e3:
        return f"{x / 1e3:.3g} k"
    return f"{x:.3g}"


def fmt_ratio(x: float | None) -> str:
    """A ratio such as ``12.3x``."""
    if x is None:
        return "-"
    return f"{x:,.0f}x" if x >= 1000 else f"{x:.3g}x"


def _spread(values: list[float], mid: float) -> str:
    return f"{(max(values) - min(values)) / mid:.1%}" if mid else "-"


# ---- tables ----------------------------------------------------------------------------------------------------

def throughput_table(section: dict, peers: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of a throughput section (per-sample SGD or mini-batch): one per shape and implementation."""
    headers = ["shape", "implementation", "dtype", "rows", "samples/s", "spread", "annfast fit is"]
    rows = []
    for shape in section.values():
        measured = shape["peers"]
        for key in peers:
            if key not in measured:
                continue
            m = measured[key]
            ref = measured.get(reference_key(key))
            if key == reference_key(key):
                ratio = "(reference)"
            else:
                ratio = fmt_ratio(ref["samples_per_s"] / m["samples_per_s"]) if ref else "-"
            rates = [m["rows"] / t for t in m["times_s"]]
            rows.append([shape["label"], m["name"], m["dtype"], str(m["rows"]), fmt_rate(m["samples_per_s"]),
                         _spread(rates, m["samples_per_s"]), ratio])
    return headers, rows


def latency_table(latency: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of the single-row latency section."""
    headers = ["shape", "call", "us/call", "spread", "calls/batch", "vs annfast predict_one"]
    rows = []
    for shape in latency.values():
        calls = shape["calls"]
        ref = calls.get(LATENCY_REFERENCE)
        for key in LATENCY_CALLS:
            if key not in calls:
                continue
            c = calls[key]
            if key == LATENCY_REFERENCE:
                ratio = "(reference)"
            elif key == "annfast_train_step" or ref is None:
                ratio = "-"
            else:
                ratio = f"{c['us_per_call'] / ref['us_per_call']:.3g}x slower" if c["us_per_call"] >= \
                    ref["us_per_call"] else f"{ref['us_per_call'] / c['us_per_call']:.3g}x faster"
            per_call = [t / c["calls_per_batch"] * 1e6 for t in c["batch_times_s"]]
            rows.append([shape["label"], c["name"], f"{c['us_per_call']:.3g}", _spread(per_call, c["us_per_call"]),
                         str(c["calls_per_batch"]), ratio])
    return headers, rows


def peak_line(peak_gflops: dict) -> str:
    """The FMA peaks for people: float32 (keys ``avx2``, ...) then float64 (keys ``avx2_f64``, ...), if measured."""
    parts = []
    for dtype, f64 in (("float32", False), ("float64", True)):
        isas = [f"{k.removesuffix('_f64')} {v:.1f}" for k, v in peak_gflops.items() if k.endswith("_f64") == f64]
        if isas:
            parts.append(f"{dtype} {', '.join(isas)} GFLOP/s")
    return f"single-core FMA peak: {'; '.join(parts) or 'not measured'}"


def limits_tables(limits: dict, per_sample: dict, labels: dict) -> tuple[str, tuple[list[str], list[list[str]]]]:
    """The FMA peak line and the rows of the bandwidth-limit table (with annfast fit's fraction of the limit)."""
    headers = ["shape", "dtype", "weights", "read GB/s", "RMW GB/s", "limit samples/s", "annfast fit samples/s",
               "of limit", "one-sweep bound", "of bound"]
    rows = []
    for name, per_dtype in limits.get("shapes", {}).items():
        for dtype, lim in per_dtype.items():
            key = "annfast_fit_f32" if dtype == "float32" else "annfast_fit_f64"
            fit = per_sample.get(name, {}).get("peers", {}).get(key)
            rate = fit["samples_per_s"] if fit else None
            frac = f"{rate / lim['limit_samples_per_s']:.1%}" if rate else "-"
            frac1 = f"{rate / lim['one_sweep_samples_per_s']:.1%}" if rate else "-"
            rows.append([labels.get(name, name), dtype, f"{lim['bytes'] / 1024:.1f} KiB",
                         f"{lim['read_Bps'] / 1e9:.1f}", f"{lim['rmw_Bps'] / 1e9:.1f}",
                         fmt_rate(lim["limit_samples_per_s"]), fmt_rate(rate), frac,
                         fmt_rate(lim["one_sweep_samples_per_s"]), frac1])
    return peak_line(limits.get("peak_gflops", {})), (headers, rows)


def checks_tables(checks: dict) -> list[tuple[str, tuple[list[str], list[list[str]]]]]:
    """Titles and rows of the agreement-check tables (FANN; NumPy/PyTorch/scikit-learn)."""
    out = []
    fann = checks.get("fann", {})
    if fann:
        headers = ["shape", "rows", "clipped sigmoid outputs", "annfast f64 vs doublefann",
                   "NumPy with FANN's rule vs doublefann", "annfast f32 vs floatfann", "agree"]
        rows = [[label, str(c["rows"]), f"{c['clipped_fraction']:.3%}", f"{c['rel_annfast_f64']:.2e}",
                 f"{c['rel_fann_rule_f64']:.2e}", f"{c['rel_annfast_f32']:.2e}", "yes" if c["ok"] else "NO"]
                for label, c in fann.items()]
        out.append(("FANN vs annfast after one short epoch (max weight difference / max weight change)",
                    (headers, rows)))
    peers = checks.get("peers", {})
    if peers:
        names = ["NumPy", "PyTorch", "scikit-learn"]
        headers = ["shape", "rows", *[f"{n} f64 vs annfast f64" for n in names], "agree"]
        rows = [[label, str(c["rows"]),
                 *[f"{c[n]:.2e}" if isinstance(c.get(n), float) else "skipped" for n in names],
                 "yes" if c["ok"] else "NO"] for label, c in peers.items()]
        out.append(("Python peers vs annfast after one short epoch (max weight difference / max weight change)",
                    (headers, rows)))
    return out


def targets_table(targets: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Rows of the summary: each target, its measured value and PASS/FAIL."""
    return ["target", "measured", "status"], [[t["target"], t["text"], t["status"]] for t in targets]


def threads_speed_table(threads: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of the threads section's speed table: one per shape and training mode, with the speed-ups."""
    headers = ["shape", "training", "threads", "rows", "samples/s", "spread", "speed-up vs 1 thread",
               "per-rep speed-ups"]
    rows = []
    for shape in threads.get("speedup", {}).values():
        failed = shape.get("failed", {})
        for key in shape.get("order", [*shape["modes"], *failed]):
            if key in failed:
                f = failed[key]
                rows.append([shape["label"], f["name"], str(f["n_threads"]), str(shape["rows"]), "not timed", "-",
                             "-", f["why"]])
                continue
            if key not in shape["modes"]:
                continue
            m = shape["modes"][key]
            rates = [shape["rows"] / t for t in m["times_s"]]
            if m["speedup"] is not None:
                ratio = f"{m['speedup']:.2f}x"
                paired = f"{min(m['paired_speedups']):.2f}-{max(m['paired_speedups']):.2f}x"
            else:
                ratio, paired = ("(reference)" if m.get("reference") is None else "- (no 1-thread figure)"), "-"
            rows.append([shape["label"], m["name"], str(m["n_threads"]), str(shape["rows"]),
                         fmt_rate(m["samples_per_s"]), _spread(rates, m["samples_per_s"]), ratio, paired])
    return headers, rows


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def threads_accuracy_table(threads: dict) -> tuple[list[str], list[list[str]]]:
    """Rows of the threads section's accuracy table: one per data set and training mode."""
    headers = ["data set", "network", "epochs", "training", "threads", "seeds", "test accuracy, mean ± std",
               "min - max", "vs 1 thread", "fit s (mean)"]
    rows = []
    for name, a in threads.get("accuracy", {}).items():
        net = "-".join(str(n) for n in a["layers"]) + f" {'/'.join(a['hidden'])}/softmax"
        for m in a["modes"].values():
            if "diff" in m:
                verdict = "within noise" if m["within_noise"] else "OUTSIDE noise"
                diff = f"{100 * m['diff']:+.1f} pp ({verdict}: ±{100 * m['tolerance']:.1f})"
            else:
                diff = "(reference)"
            rows.append([name, net, str(a["epochs"]), m["name"], str(m["n_threads"]), str(len(m["accuracies"])),
                         f"{_pct(m['mean'])} ± {100 * m['std']:.1f}",
                         f"{_pct(min(m['accuracies']))} - {_pct(max(m['accuracies']))}", diff,
                         f"{statistics.fmean(m['fit_s']):.3f}"])
    return headers, rows


def threads_busy(threads: dict) -> bool:
    """Whether other processes kept more than the section's threshold of cores busy during the threads section."""
    other = threads.get("other_cores")
    return other is not None and other > threads.get("busy_cores", 0.25)


def threads_notes(threads: dict) -> tuple[str, str]:
    """The notes under the threads section's two tables (settings, CPUs, other processes' load)."""
    other = threads.get("other_cores")
    load = threads.get("load_at_start", {}).get("load_average")
    speed = (f"one epoch of the per-sample section's rows from its initial weights, float32, sigmoid hidden layers, "
             f"linear output, learning rate 0.01, no shuffling; median of {threads.get('reps')} interleaved "
             f"repetitions; 1 thread pinned to one core as in the per-sample section, {threads['threads']} threads "
             f"on the {threads['cpus']} CPUs this process may use; merged copies with the default "
             f"sync_every={threads.get('sync_every')}; speed-up = 1-thread median time / this row's (same batch "
             "size); per-rep speed-ups = the same ratio within each repetition (lowest-highest). Other processes "
             "kept " + (f"{other:.2f} cores busy on average during the section" if other is not None else
                        "an unknown number of cores busy")
             + (f" (1-minute load average {load[0]:.2f} at its start, this process included)" if load else ""))
    if threads_busy(threads):
        speed += (f". WARNING: the machine was busy: on {threads['cpus']} CPUs other work takes CPU time from the "
                  "2-thread runs, so these speed-ups are understated; rerun on a quiet machine")
    rule = threads.get("noise_rule", {})
    accuracy = (f"per-sample SGD, learning rate 0.01, cross-entropy, float32, shuffled; the seed sets the initial "
                f"weights and the order; 'within noise' = |mean - 1-thread mean| <= max({rule.get('sds')} x "
                f"1-thread std, {100 * rule.get('floor', 0):g} pp), std = sample std over the seeds")
    for name, a in threads.get("accuracy", {}).items():
        accuracy += (f"; {name}: {a['source']}, {a['train_rows']} training / {a['test_rows']} test rows, always "
                     f"answering the most frequent class scores {_pct(a['majority'])}")
    return speed, accuracy


def threads_summary(threads: dict) -> list[str]:
    """One line per accuracy data set: is the 2-thread test accuracy within noise of the 1-thread one?"""
    lines = []
    for name, a in threads.get("accuracy", {}).items():
        ref = a["modes"]["sgd_1"]
        parts = [f"{m['name']} {_pct(m['mean'])} ({100 * m['diff']:+.1f} pp): "
                 + ("WITHIN NOISE" if m["within_noise"] else "OUTSIDE NOISE")
                 for m in a["modes"].values() if "diff" in m]
        tol = next((m["tolerance"] for m in a["modes"].values() if "tolerance" in m), 0.0)
        lines.append(f"{name}: test accuracy at 2 threads vs 1 thread ({_pct(ref['mean'])} ± "
                     f"{100 * ref['std']:.1f}, {len(ref['accuracies'])} seeds; tolerance ±{100 * tol:.1f} pp): "
                     + "; ".join(parts))
    return lines


def load_line(load: dict) -> str:
    """The load average before the run, with a warning when the machine was busy."""
    avg = load.get("load_average")
    if avg is None:
        return "load average: unknown on this OS"
    text = f"load average before the run: {avg[0]:.2f} {avg[1]:.2f} {avg[2]:.2f} (1, 5, 15 min) on {load['cpus']} CPUs"
    if load.get("busy"):
        text += (f". WARNING: the machine was busy (1-minute load >= {load.get('busy_load')}): other processes "
                 "skew the timings, the threads section's most of all; rerun on a quiet machine")
    return text


# ---- merging ---------------------------------------------------------------------------------------------------

def _order(keys, shape_order: list[str]) -> list:
    """``keys`` (shape names, or labels such as "medium 784-128-10") in the order of the shapes, others after."""
    rank = {name: i for i, name in enumerate(shape_order)}
    return sorted(keys, key=lambda k: rank.get(str(k).split(" ")[0], len(rank)))


def _merge_by_key(old: dict, new: dict, shape_order: list[str]) -> dict:
    both = {**old, **new}
    return {k: both[k] for k in _order(both, shape_order)}


def section_parts(results: dict, section: str) -> list[str]:
    """The shapes (and data sets) a section of these results holds, e.g. ["medium", "large", "digits"]."""
    key = SECTION_KEYS[section]
    data = results.get(key) or {}
    subs = MERGE_BY.get(key, ())
    keys = list(data) if subs == (None,) else [k for sub in subs for k in data.get(sub, {})]
    return list(dict.fromkeys(str(k).split(" ")[0] for k in keys))


def merge_results(old: dict, new: dict, shape_order: list[str]) -> dict:
    """Lay the results of a partial run (some sections, or some shapes) over those of an earlier run.

    Sections this run did not measure are kept from ``old``; a section it measured replaces the earlier one shape
    by shape (data set by data set), so that ``--sections threads`` or ``--only medium`` keeps the rest.
    ``section_runs`` says which run (date, mode, repetitions, annfast version and kernel, load) each section comes
    from, and ``parts`` which
    shapes (data sets) it holds; ``earlier`` the run of those kept from ``old``.
    """
    merged = dict(new)
    old_runs = old.get("section_runs")
    if old_runs is None:    # results written before section_runs existed: all from one run
        settings, info = old.get("settings", {}), old.get("machine", {})
        run = {"date": info.get("date"), "mode": settings.get("mode"), "reps": settings.get("reps"),
               "annfast": info.get("annfast"), "annfast_kernel": info.get("annfast_kernel")}
        old_runs = {s: {**run, "parts": section_parts(old, s)} for s, key in SECTION_KEYS.items() if key in old}
    runs = dict(old_runs)
    for section, key in SECTION_KEYS.items():
        if section in new.get("section_runs", {}):
            runs[section] = dict(new["section_runs"][section])
            if key in old:
                subs = MERGE_BY.get(key, ())
                if subs == (None,):
                    merged[key] = _merge_by_key(old[key], new[key], shape_order)
                else:
                    merged[key] = {**old[key], **new[key]}
                    for sub in subs:
                        merged[key][sub] = _merge_by_key(old[key].get(sub, {}), new[key].get(sub, {}), shape_order)
                earlier = set(old_runs.get(section, {}).get("parts", [])) - set(runs[section].get("parts", []))
                if earlier:   # shapes this run left out come from the earlier run
                    runs[section]["parts"] = section_parts(merged, section)
                    runs[section]["earlier"] = {**{k: old_runs[section].get(k) for k in
                                                   ("date", "mode", "reps", "annfast", "annfast_kernel")},
                                                "parts": _order(earlier, shape_order)}
        elif key in old:
            merged[key] = old[key]
    merged["section_runs"] = {s: runs[s] for s in SECTION_KEYS if s in runs}
    merged["section_s"] = {**old.get("section_s", {}), **new.get("section_s", {})}
    merged["skipped"] = {**old.get("skipped", {}), **new.get("skipped", {})}
    merged["settings"] = {**new["settings"], "shapes": _merge_by_key(old.get("settings", {}).get("shapes", {}),
                                                                      new["settings"]["shapes"], shape_order)}
    return merged


# ---- rendering -------------------------------------------------------------------------------------------------

def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns (numbers right-aligned)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def fmt(cells):
        out = []
        for i, cell in enumerate(cells):
            numeric = cell[:1].isdigit() or cell[:1] == "-" and cell[1:2].isdigit()
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [fmt(headers), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    return "\n".join(lines)


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def sections(results: dict) -> list[tuple[str, str | None, tuple[list[str], list[list[str]]]]]:
    """Every table of a run in report order, as (title, note, (headers, rows))."""
    out = []
    runs = results.get("section_runs", {})

    def reps_of(section: str):
        return runs.get(section, {}).get("reps", results["settings"]["reps"])

    labels = {name: f"{name} {'-'.join(str(n) for n in sizes)}"
              for name, sizes in results["settings"].get("shapes", {}).items()}
    for title, table in checks_tables(results.get("checks", {})):
        out.append((title, None, table))
    if results.get("per_sample"):
        out.append(("Per-sample SGD, one epoch, no shuffling, learning rate 0.01",
                    f"median of {reps_of('per-sample')} interleaved repetitions; spread = (max - min) / median of "
                    "the repetitions' "
                    "samples/s; 'annfast fit is' = annfast fit (same dtype) samples/s / this row's",
                    throughput_table(results["per_sample"], PER_SAMPLE_PEERS)))
    if results.get("minibatch"):
        out.append(("Mini-batch SGD, batch 32 (mean gradient), one epoch",
                    f"median of {reps_of('minibatch')} interleaved repetitions",
                    throughput_table(results["minibatch"], MINIBATCH_PEERS)))
    if results.get("latency"):
        out.append(("Single-row latency from Python",
                    "median over interleaved batches of calls of the time per call",
                    latency_table(results["latency"])))
    threads = results.get("threads")
    if threads:
        speed_note, accuracy_note = threads_notes(threads)
        if threads.get("speedup"):
            out.append((f"Multi-threaded fit: speed-up at {threads['threads']} threads", speed_note,
                        threads_speed_table(threads)))
        if threads.get("accuracy"):
            out.append((f"Multi-threaded fit: test accuracy at 1 and {threads['threads']} threads", accuracy_note,
                        threads_accuracy_table(threads)))
    if results.get("limits"):
        peaks, table = limits_tables(results["limits"], results.get("per_sample", {}), labels)
        out.append(("Machine limits (bench/limits.c)",
                    f"{peaks}. Limit = 1 / (bytes / read bandwidth + bytes / RMW bandwidth): one read sweep of "
                    "the weights (forward) and one read-modify-write sweep (fused backward/update) per sample; "
                    "one-sweep bound = RMW bandwidth / bytes, for kernels that fold a row's update into the next "
                    "row's forward sweep (which can exceed the limit)",
                    table))
    return out


def console_report(results: dict) -> str:
    """All tables as plain text."""
    parts = []
    for title, note, (headers, rows) in sections(results):
        parts.append(f"\n== {title}\n" + (f"({note})\n" if note else "") + text_table(headers, rows))
    return "\n".join(parts)


def checks_summary(checks: dict) -> list[str]:
    """One line per agreement check: how many shapes agree and the largest relative difference."""
    lines = []
    fann = checks.get("fann", {})
    if fann:
        ok = sum(1 for c in fann.values() if c["ok"])
        worst = max(c["rel_annfast_f64"] for c in fann.values())
        exact = max(c["rel_fann_rule_f64"] for c in fann.values())
        lines.append(f"FANN doublefann vs annfast float64: {'AGREE' if ok == len(fann) else 'DISAGREE'} in "
                     f"{ok}/{len(fann)} shapes (largest relative difference {worst:.1e}; vs NumPy with FANN's "
                     f"clipped-derivative rule {exact:.1e})")
    peers = checks.get("peers", {})
    if peers:
        ok = sum(1 for c in peers.values() if c["ok"])
        worst = max((v for c in peers.values() for v in c.values() if isinstance(v, float)), default=0.0)
        lines.append(f"NumPy / PyTorch / scikit-learn float64 vs annfast float64: "
                     f"{'AGREE' if ok == len(peers) else 'DISAGREE'} in {ok}/{len(peers)} shapes (largest relative "
                     f"difference {worst:.1e})")
    return lines


def summary_text(results: dict) -> str:
    """The agreement checks and the targets summary as plain text."""
    headers, rows = targets_table(results["targets"])
    counts = {s: sum(1 for t in results["targets"] if t["status"] == s) for s in ("PASS", "FAIL", "INFO", "SKIP")}
    tail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = checks_summary(results.get("checks", {})) + threads_summary(results.get("threads", {}))
    lines += warnings(results)
    agree = "".join(line + "\n" for line in lines)
    return f"\n== Summary\n{agree}\n{text_table(headers, rows)}\n{tail}"


def warnings(results: dict) -> list[str]:
    """Warnings about a busy machine: before the run (load average) and during the threads section."""
    out = []
    load = results.get("load", {})
    if load.get("busy"):
        out.append(load_line(load))
    threads = results.get("threads", {})
    if threads.get("speedup") and threads_busy(threads):
        out.append(f"WARNING: other processes kept {threads['other_cores']:.2f} cores busy on average during the "
                   f"threads section (of {threads['cpus']} CPUs): its speed-ups are understated")
    return out


def runs_lines(results: dict) -> list[str]:
    """Which run each section comes from, when the results merge several runs (else nothing)."""
    runs = results.get("section_runs", {})
    dates = {r.get("date") for r in runs.values()} | {r["earlier"]["date"] for r in runs.values() if "earlier" in r}
    if len(dates) < 2:
        return []
    out = ["Merged from several runs (a `--sections` or `--only` run keeps the other sections of the previous one; "
           "the lines above describe the latest run):"]
    for section, r in runs.items():
        text = f"{section}: {r.get('mode')} run of {r.get('date')}, {r.get('reps')} repetitions"
        if r.get("annfast"):
            text += f", annfast {r['annfast']} ({r.get('annfast_kernel')} kernel)"
        if r.get("load"):
            text += f", load average before it {r['load'][0]:.2f}"
        if "earlier" in r:
            e = r["earlier"]
            text += f" ({', '.join(e['parts'])} from the {e.get('mode')} run of {e.get('date')})"
        out.append(f"  - {text}")
    return out


def markdown_report(results: dict, machine_lines: list[str]) -> str:
    """The markdown file with every table, for the README to include."""
    settings = results["settings"]
    threads = results.get("threads")
    lines = ["# annfast benchmark results", "",
             f"`python bench/run.py{' --quick' if settings['quick'] else ''}`: {settings['mode']} run, "
             f"{settings['reps']} interleaved repetitions per measurement, single thread"
             + (f" (but the threads section: up to {threads['threads']} threads)" if threads else "") + ".", ""]
    lines += [f"- {line}" for line in machine_lines]
    if results.get("load"):
        lines.append(f"- {load_line(results['load'])}")
    more = runs_lines(results)
    if more:
        lines += ["", *more]
    for title, note, (headers, rows) in sections(results):
        lines += ["", f"## {title}", ""]
        if note:
            lines += [f"{note[0].upper()}{note[1:]}.", ""]
        lines.append(markdown_table(headers, rows))
    if results.get("cliffs"):
        from cliffs import markdown as cliffs_markdown
        lines += ["", "## Cliffs", "", cliffs_markdown(results["cliffs"])]
    headers, rows = targets_table(results["targets"])
    summary = checks_summary(results.get("checks", {})) + threads_summary(results.get("threads", {}))
    lines += ["", "## Targets", ""] + [f"- {line}" for line in summary + warnings(results)]
    lines += ["", markdown_table(headers, rows), ""]
    if results.get("skipped"):
        lines += ["Skipped: " + "; ".join(f"{k}: {v}" for k, v in results["skipped"].items()), ""]
    return "\n".join(lines)


def write_json(path: Path, results: dict) -> None:
    """Write the raw results (every repetition's time included) as JSON."""
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")


def chart(path: Path, results: dict) -> str | None:
    """Draw per-sample SGD samples/s per shape and implementation (grouped bars, log scale) into a PNG.

    Returns
    -------
    str or None
        None on success, else why no chart was drawn (matplotlib missing, nothing measured).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "cannot import matplotlib; pip install '.[bench]'"
    per_sample = results.get("per_sample", {})
    if not per_sample:
        return "no per-sample results"
    keys = [k for k in PER_SAMPLE_PEERS if any(k in s["peers"] for s in per_sample.values())]
    shapes = list(per_sample)
    limits = results.get("limits", {}).get("shapes", {})
    colors = {"annfast_fit_f32": "#1f5fa8", "annfast_fit_f64": "#6f9fd8", "annfast_fit_shuffled_f32": "#3d7fc8",
              "annfast_fit_momentum_f32": "#5a8fcf", "annfast_train_step_f32": "#a8c8ec",
              "fann_f32": "#d95f02", "fann_f64": "#f4a261", "numpy_f32": "#4d9221", "torch_f32": "#b2182b",
              "sklearn_f32": "#7b3294"}
    width = 0.8 / len(keys)
    fig, ax = plt.subplots(figsize=(13, 6.5))
    for j, key in enumerate(keys):
        name, dtype = PER_SAMPLE_PEERS[key]
        xs, ys = [], []
        for i, shape in enumerate(shapes):
            m = per_sample[shape]["peers"].get(key)
            if m:
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(m["samples_per_s"])
        bars = ax.bar(xs, ys, width * 0.92, label=f"{name}, {dtype}", color=colors.get(key), zorder=3)
        for bar, y in zip(bars, ys):
            ax.text(bar.get_x() + bar.get_width() / 2, y * 1.1, fmt_rate(y), ha="center", va="bottom", fontsize=7,
                    rotation=90, zorder=6, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
    for i, shape in enumerate(shapes):
        lim = limits.get(shape, {}).get("float32", {}).get("limit_samples_per_s")
        if lim:
            ax.hlines(lim, i - 0.42, i + 0.42, colors="black", linestyles="dashed", zorder=4,
                      label="float32 bandwidth limit (read + RMW sweep)" if i == 0 else None)
            ax.text(i + 0.42, lim * 1.12, f"limit {fmt_rate(lim)}", ha="right", va="bottom", fontsize=8, zorder=6)
    ax.set_yscale("log")
    ax.set_xticks(range(len(shapes)))
    ax.set_xticklabels([per_sample[s]["label"] for s in shapes], fontsize=11)
    ax.set_ylabel("samples / s (log scale)", fontsize=11)
    ymin, ymax = ax.get_ylim()
    ax.set_ylim(ymin, ymax * 8)
    ax.grid(axis="y", which="major", alpha=0.4, zorder=0)
    ax.set_title(f"Per-sample SGD training throughput, single thread (median of {results['settings']['reps']} "
                 f"interleaved repetitions)", fontsize=12)
    ax.legend(fontsize=9, ncol=3, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return None
