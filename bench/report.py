"""Presents a run's results: console tables, the markdown report, the JSON file of raw results and the chart.

Nothing here measures; every function takes the results dictionary that run.py builds (its layout is described in
bench/README.md) and renders part of it.
"""
from __future__ import annotations

import json
from pathlib import Path

#: per-sample SGD implementations: key -> (name, dtype), in table and chart order
PER_SAMPLE_PEERS = {
    "annfast_fit_f32": ("annfast fit", "float32"),
    "annfast_fit_f64": ("annfast fit", "float64"),
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
            if key.startswith("annfast_fit"):
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


def limits_tables(limits: dict, per_sample: dict, labels: dict) -> tuple[str, tuple[list[str], list[list[str]]]]:
    """The FMA peak line and the rows of the bandwidth-limit table (with annfast fit's fraction of the limit)."""
    peak = ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in limits.get("peak_gflops", {}).items())
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
    return f"single-core float32 FMA peak: {peak or 'not measured'}", (headers, rows)


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
    reps = results["settings"]["reps"]
    labels = {name: f"{name} {'-'.join(str(n) for n in sizes)}"
              for name, sizes in results["settings"].get("shapes", {}).items()}
    for title, table in checks_tables(results.get("checks", {})):
        out.append((title, None, table))
    if results.get("per_sample"):
        out.append(("Per-sample SGD, one epoch, no shuffling, learning rate 0.01",
                    f"median of {reps} interleaved repetitions; spread = (max - min) / median of the repetitions' "
                    "samples/s; 'annfast fit is' = annfast fit (same dtype) samples/s / this row's",
                    throughput_table(results["per_sample"], PER_SAMPLE_PEERS)))
    if results.get("minibatch"):
        out.append(("Mini-batch SGD, batch 32 (mean gradient), one epoch", f"median of {reps} interleaved repetitions",
                    throughput_table(results["minibatch"], MINIBATCH_PEERS)))
    if results.get("latency"):
        out.append(("Single-row latency from Python",
                    "median over interleaved batches of calls of the time per call",
                    latency_table(results["latency"])))
    if results.get("limits"):
        peak_line, table = limits_tables(results["limits"], results.get("per_sample", {}), labels)
        out.append(("Machine limits (bench/limits.c)",
                    f"{peak_line}. Limit = 1 / (bytes / read bandwidth + bytes / RMW bandwidth): one read sweep of "
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
    agree = "".join(line + "\n" for line in checks_summary(results.get("checks", {})))
    return f"\n== Summary\n{agree}\n{text_table(headers, rows)}\n{tail}"


def markdown_report(results: dict, machine_lines: list[str]) -> str:
    """The markdown file with every table, for the README to include."""
    settings = results["settings"]
    lines = ["# annfast benchmark results", "",
             f"`python bench/run.py{' --quick' if settings['quick'] else ''}`: {settings['mode']} run, "
             f"{settings['reps']} interleaved repetitions per measurement, single thread.", ""]
    lines += [f"- {line}" for line in machine_lines]
    for title, note, (headers, rows) in sections(results):
        lines += ["", f"## {title}", ""]
        if note:
            lines += [f"{note[0].upper()}{note[1:]}.", ""]
        lines.append(markdown_table(headers, rows))
    headers, rows = targets_table(results["targets"])
    lines += ["", "## Targets", ""] + [f"- {line}" for line in checks_summary(results.get("checks", {}))]
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
    colors = {"annfast_fit_f32": "#1f5fa8", "annfast_fit_f64": "#6f9fd8", "annfast_train_step_f32": "#a8c8ec",
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
