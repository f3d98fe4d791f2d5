"""Ablation of the C kernels' speed strategies: what each one buys on each bench shape.

For every bench shape (data.SHAPES), dtype and workload that a strategy applies to, times annfast with every
strategy on against the same with that one strategy switched off (ANNFAST_DISABLE, read when a Network builds its
descriptor; csrc/strategy_*.inc says what each does), as the median of interleaved repetitions, and prints a
Markdown table of samples/s, the gain (on / off - 1) and the spread ((max - min) / median of the repetitions, the
larger of the two runs': a gain smaller than it is noise). The table in bench/README.md ("Ablation") comes from here.

    python bench/ablation.py            # about 3 minutes
    python bench/ablation.py --quick    # under 30 s: fewer rows, shorter repetitions, no momentum rows

Workloads: ``fit`` (per-sample SGD, shuffled, batch size 1), ``fit_momentum`` (momentum 0.9), ``minibatch64``
(``fit(batch_size=64)``) and ``predict`` (the data in one call). ``kernel`` is the variant annfast picks on this
machine (``auto``), or ``base`` where a strategy runs in the baseline variant only; ``also off`` names strategies
switched off in both runs (fused_update's gain as the fallback of the transposed and pending paths).
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]   # this checkout's annfast and bench modules

import numpy as np  # noqa: E402
from data import SHAPES, cast_weights, initial_weights, make_data, shape_label  # noqa: E402
from timing import calibrate, interleave, median, now, pin_to_one_core  # noqa: E402

ROWS = {"tiny": 8192, "small": 4096, "medium": 2048, "large": 1024}
QUICK_ROWS = {"tiny": 2048, "small": 1024, "medium": 256, "large": 96}
SMALL_FIRST = ("tiny", "small")   # first layers of <= 2048 reals: transposed; the others >= 64 KiB: pending


def groups(name: str, quick: bool) -> list[tuple[str, str, str, list[str]]]:
    """(workload, kernel, also off, strategies) for a shape: the strategies that run on it, per workload."""
    per_sample = ["transposed_first"] if name in SMALL_FIRST else ["pending"]
    blocked = ["blocked_rows"]
    out = [("fit", "auto", "", per_sample)]
    if not quick:
        out.append(("fit_momentum", "auto", "", per_sample))
    out += [("minibatch64", "auto", "", blocked), ("predict", "auto", "", blocked),
            ("fit", "base", "", ["fused_update"])]
    if not quick:
        out.append(("fit", "auto", per_sample[0], ["fused_update"]))
    return out


def network(sizes, dtype: str, kernel: str, disable: str, init):
    """A Network of the bench's layers whose descriptor has these strategies switched off."""
    import annfast as af

    saved = {k: os.environ.get(k) for k in ("ANNFAST_KERNEL", "ANNFAST_DISABLE")}
    os.environ["ANNFAST_KERNEL"], os.environ["ANNFAST_DISABLE"] = kernel, disable
    try:
        layers = [af.Dense(u, activation="sigmoid") for u in sizes[1:-1]] + [af.Dense(sizes[-1], activation="linear")]
        net = af.Network(sizes[0], layers, dtype=dtype, seed=0)
    finally:
        for k, value in saved.items():
            if value is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = value
    net.set_weights(init)
    return net


def measure(net, workload: str, X, Y, init):
    """``f(count) -> seconds``: count epochs of the workload (count predict calls), from the initial weights."""
    if workload == "predict":
        def run(count):
            t0 = now()
            for _ in range(count):
                net.predict(X)
            return now() - t0
        return run
    options = {"fit": {}, "fit_momentum": {"momentum": 0.9, "learning_rate": 0.001},
               "minibatch64": {"batch_size": 64}}[workload]
    options = {"learning_rate": 0.01, "batch_size": 1, **options}

    def run(count):
        net.set_weights(init)
        t0 = now()
        net.fit(X, Y, epochs=count, shuffle=True, seed=0, **options)
        return now() - t0
    return run


def ablate(quick: bool, reps: int, shapes: list[str], dtypes: list[str], progress) -> list[dict]:
    min_seconds = 0.01 if quick else 0.08
    rows = []
    for name in shapes:
        sizes = SHAPES[name]
        n = (QUICK_ROWS if quick else ROWS)[name]
        X64, Y64 = make_data(sizes, n)
        for dtype in dtypes:
            X, Y = np.ascontiguousarray(X64, dtype=dtype), np.ascontiguousarray(Y64, dtype=dtype)
            init = cast_weights(initial_weights(sizes), dtype)
            for workload, kernel, also, strategies in groups(name, quick):
                settings = {"on": also, **{s: ",".join(filter(None, [also, s])) for s in strategies}}
                measures = {key: measure(network(sizes, dtype, kernel, off, init), workload, X, Y, init)
                            for key, off in settings.items()}
                counts = {key: calibrate(m, min_seconds, start=1) for key, m in measures.items()}
                count = max(counts.values())
                times = interleave(measures, {k: count for k in measures}, reps, {k: 1 for k in measures})
                rate = {k: count * n / median(t) for k, t in times.items()}
                for s in strategies:
                    rows.append({"shape": shape_label(name), "dtype": dtype, "workload": workload, "kernel": kernel,
                                 "also_off": also, "strategy": s, "on": rate["on"], "off": rate[s],
                                 "gain_pct": 100 * (rate["on"] / rate[s] - 1),
                                 "spread_pct": 100 * max(_spread(times["on"]), _spread(times[s]))})
                progress(f"{name} {dtype} {workload} {kernel} {also or '-'}: " +
                         ", ".join(f"{s} {rows[-len(strategies) + i]['gain_pct']:+.1f} %"
                                   for i, s in enumerate(strategies)))
    return rows


def _spread(times) -> float:
    """(max - min) / median of a measurement's repetitions."""
    return (max(times) - min(times)) / median(times)


def table(rows: list[dict]) -> str:
    out = ["| shape | dtype | workload | kernel | also off | strategy | all on (samples/s) | strategy off "
           "(samples/s) | gain | spread |",
           "|---|---|---|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['shape']} | {r['dtype']} | {r['workload']} | {r['kernel']} | {r['also_off'] or '-'} | "
                   f"{r['strategy']} | {r['on']:,.0f} | {r['off']:,.0f} | {r['gain_pct']:+.1f} % | "
                   f"{r['spread_pct']:.0f} % |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and shorter repetitions (< 30 s)")
    parser.add_argument("--reps", type=int, default=None, help="interleaved repetitions (default 7, quick 5)")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated bench shapes")
    parser.add_argument("--dtypes", default="float32,float64")
    args = parser.parse_args()
    reps = args.reps or (5 if args.quick else 7)
    core = pin_to_one_core()
    t0 = now()
    rows = ablate(args.quick, reps, args.shapes.split(","), args.dtypes.split(","),
                  lambda note: print(note, file=sys.stderr, flush=True))
    print(table(rows))
    print(f"\n{reps} interleaved repetitions, median; pinned to core {core}; {now() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
