"""Performance cliffs: every documented way of calling annfast, timed against the plain float32 path.

``python bench/cliffs.py`` (a few minutes) or ``python bench/cliffs.py --quick`` (well under a minute; a smoke test).
Three tables, each a median of interleaved repetitions (bench/timing.py) with a ratio column against its baseline:

* fit: microseconds per row of ``fit(X, y, epochs=1)`` for each way of passing data or options (momentum, Nesterov,
  weight decay, the dtypes of X and y, non-contiguous and Fortran-ordered X, a pandas DataFrame, a memory-mapped
  file, an iterable of chunks, validation_data, verbose=1, a callback, n_threads=2), against a plain float32
  C-contiguous ``fit``, on the medium shape (784-128-10 sigmoid/linear, as in the other sections) and on FANN's
  thyroid set (21-16-8-3 relu/softmax, learning rate 0.01).
* settled: milliseconds per epoch of momentum 0.9, Nesterov and weight decay 1e-4 against plain SGD on every
  bench shape and on thyroid, taken over the late epochs of a long run (when velocities have decayed, the
  case where subnormal numbers used to make them up to 14x slower).
* single row: microseconds per ``train_step``, ``predict_one`` and ``predict`` of one row with float64, int,
  list and scalar inputs and targets, against the same call with float32 arrays (thyroid's network).

Nothing here is imported by the tests. Prints Markdown tables; ``--json PATH`` also saves the numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import machine
import numpy as np
import timing
from data import SHAPES, make_data

import annfast as af
from annfast.callbacks import Callback

HERE = Path(__file__).resolve().parent
#: the folder of FANN's data sets (thyroid.train), relative to the repository root, as in bench/run.py
FANN_DIR = Path("..") / "shared" / "datasets" / "fann"
LIMIT = 2.0   # the bound: no way of calling annfast may cost more than this times the plain path

MODES = {
    "full": {"reps": 15, "fit_rows": {"medium": 2048, "thyroid": 3600}, "settle_epochs": 90,
             "settle_rows": {"tiny": 16384, "small": 4096, "medium": 1024, "large": 256, "thyroid": 3600},
             "row_calls": 1000, "row_reps": 45},
    "quick": {"reps": 3, "fit_rows": {"medium": 256, "thyroid": 3600}, "settle_epochs": 8,
              "settle_rows": {"tiny": 2048, "small": 512, "medium": 64, "large": 16, "thyroid": 3600},
              "row_calls": 500, "row_reps": 5},
}


class Noop(Callback):
    """A callback that does nothing: what the callback machinery alone costs."""


def thyroid_data(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from annfast.datafiles import read_fann
    X, Y = read_fann(path)
    return X.astype(np.float64), Y.astype(np.float64)


def task(name: str, rows: int, fann_dir: Path):
    """(X float64, Y float64, network factory, learning rate) of a task."""
    if name == "thyroid":
        X, Y = thyroid_data(fann_dir / "thyroid.train")
        X, Y = X[:rows], Y[:rows]

        def make(dtype="float32"):
            return af.Network(21, [af.Dense(16, "relu"), af.Dense(8, "relu"), af.Dense(3, "softmax")], dtype=dtype,
                              seed=1)
        return X, Y, make, 0.01
    sizes = SHAPES[name]
    X, Y = make_data(sizes, rows)

    def make(dtype="float32"):
        hidden = [af.Dense(n, "sigmoid") for n in sizes[1:-1]]
        return af.Network(sizes[0], hidden + [af.Dense(sizes[-1], "linear")], dtype=dtype, seed=1)
    return X, Y, make, 0.01


def fit_variants(X: np.ndarray, Y: np.ndarray, lr: float, tmp: Path, classes: bool) -> dict:
    """name -> (fit arguments, keyword arguments, cpus note); every entry trains one epoch over the same rows."""
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    n = X.shape[0]
    wide = np.zeros((n, 2 * X.shape[1]), dtype=np.float32)
    wide[:, ::2] = X32
    Xi = np.rint(X * 4).astype(np.int64)    # integer features (a different problem, the same work per row)
    yi = Y.argmax(axis=1) if classes else np.rint(Y * 4).astype(np.int64)
    path = tmp / "X.npy"
    np.save(path, X32)
    Xmm = np.load(path, mmap_mode="r")
    n_val = max(1, n // 10)
    val = (X32[:n_val], Y32[:n_val])
    chunks = [(X32[i:i + 256], Y32[i:i + 256]) for i in range(0, n, 256)]
    out = {
        "plain float32 (baseline)": ((X32, Y32), {}),
        "momentum=0.9": ((X32, Y32), {"momentum": 0.9, "learning_rate": lr * 0.1}),
        "nesterov=True": ((X32, Y32), {"momentum": 0.9, "nesterov": True, "learning_rate": lr * 0.1}),
        "weight_decay=1e-4": ((X32, Y32), {"weight_decay": 1e-4}),
        "X float64": ((X, Y32), {}),
        "X int64": ((Xi, Y32), {"learning_rate": lr * 0.1}),
        "y float64": ((X32, Y), {}),
        "y int64 (thyroid: class labels)": ((X32, yi), {"learning_rate": lr * 0.1}),
        "X non-contiguous (every 2nd column)": ((wide[:, ::2], Y32), {}),
        "X Fortran-ordered": ((np.asfortranarray(X32), Y32), {}),
        "X memory-mapped .npy": ((Xmm, Y32), {}),
        "chunk iterable (256 rows)": ((chunks, None), {}),
        "validation_data (10 %)": ((X32, Y32), {"validation_data": val}),
        "verbose=1": ((X32, Y32), {"verbose": 1}),
        "callbacks=[no-op]": ((X32, Y32), {"callbacks": [Noop()]}),
        "n_threads=2": ((X32, Y32), {"n_threads": 2}),
    }
    try:
        import pandas as pd
    except ImportError:
        out["pandas DataFrame"] = None
    else:
        out["pandas DataFrame"] = ((pd.DataFrame(X32), Y32), {})
    return out


def fit_table(name: str, rows: int, reps: int, fann_dir: Path, say) -> dict:
    """Microseconds per row of each fit variant and its ratio to the plain float32 fit."""
    X, Y, make, lr = task(name, rows, fann_dir)
    with tempfile.TemporaryDirectory() as tmp:
        variants = fit_variants(X, Y, lr, Path(tmp), classes=name == "thyroid")
        measures, skipped = {}, []
        for key, spec in variants.items():
            if spec is None:
                skipped.append(key)
                continue
            args, kwargs = spec
            kwargs = {"learning_rate": lr, **kwargs}
            net = make()

            def measure(count, net=net, args=args, kwargs=kwargs):
                sink = io.StringIO()
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    t0 = timing.now()
                    net.fit(*args, epochs=1, **kwargs)
                    return timing.now() - t0
            if kwargs.get("n_threads", 1) > 1:
                measure = timing.on_cpus(measure, timing.ALLOWED_CPUS)
            measures[key] = measure
        times = timing.interleave(measures, {k: rows for k in measures}, reps,
                                  progress=lambda note: say(f"  [cliffs] fit {name}: {note}"))
    base = timing.median(times["plain float32 (baseline)"]) / rows * 1e6
    table = {key: {"us_per_row": timing.median(ts) / rows * 1e6} for key, ts in times.items()}
    for entry in table.values():
        entry["ratio"] = entry["us_per_row"] / base
    for key in skipped:
        table[key] = {"us_per_row": None, "ratio": None, "skipped": "pandas is not installed"}
    return table


SETTLE_OPTIONS = {"plain": {}, "momentum=0.9": {"momentum": 0.9}, "nesterov=True": {"momentum": 0.9, "nesterov": True},
                  "weight_decay=1e-4": {"weight_decay": 1e-4}}


def one_epoch(net, X, Y, kwargs):
    """A measurement: seconds of ``net.fit(X, Y, epochs=1, **kwargs)``."""
    def run(count):
        t0 = timing.now()
        net.fit(X, Y, epochs=1, **kwargs)
        return timing.now() - t0
    return run


def settled_table(names, settle_rows: dict, epochs: int, fann_dir: Path, say) -> dict:
    """Milliseconds per epoch over the last third of ``epochs`` epochs, per optimizer option, per task.

    One network per option, trained an epoch at a time in turns (one ``fit(epochs=1)`` call each), so that a
    change of the machine's load hits every option alike.
    """
    out = {}
    for name in names:
        rows = settle_rows[name]
        X, Y, make, lr = task(name, rows, fann_dir)
        X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
        measures = {}
        for key, opts in SETTLE_OPTIONS.items():
            # with momentum mu the step is lr / (1 - mu) in the long run: scale it so that every option trains alike
            kwargs = {"learning_rate": lr * (1 - opts.get("momentum", 0.0)), **opts}

            measures[key] = one_epoch(make(), X32, Y32, kwargs)
        times = timing.interleave(measures, {k: 1 for k in measures}, epochs)
        late = {key: timing.median(ts[-max(1, epochs // 3):]) * 1e3 for key, ts in times.items()}
        out[name] = {key: {"ms_per_epoch": ms, "ratio": ms / late["plain"]} for key, ms in late.items()}
        say(f"  [cliffs] settled {name} ({rows} rows, {epochs} epochs): done")
    return out


def single_row_table(calls: int, reps: int, fann_dir: Path, say) -> dict:
    """Microseconds per single-row call of each input form, and the ratio to the same call with float32 arrays."""
    X, Y, make, _ = task("thyroid", 64, fann_dir)
    net = make()
    net1 = af.Network(21, [af.Dense(16, "relu"), af.Dense(8, "relu"), af.Dense(1, "sigmoid")], seed=1)
    x64, y64 = X[0].copy(), Y[0].copy()
    x32, y32 = x64.astype(np.float32), y64.astype(np.float32)
    xi, xl, yl = np.rint(x64 * 4).astype(np.int64), x64.tolist(), y64.tolist()
    X1_32, X1_64, X1_i, X1_l = x32.reshape(1, -1), x64.reshape(1, -1), xi.reshape(1, -1), [xl]
    label = int(y64.argmax())
    one32 = np.ones(1, dtype=np.float32)
    rows = {
        # (call, baseline call, form)
        ("train_step", "x, y float32 arrays (baseline)"): lambda: net.train_step(x32, y32),
        ("train_step", "x float64, y float64"): lambda: net.train_step(x64, y64),
        ("train_step", "x int64"): lambda: net.train_step(xi, y32),
        ("train_step", "x list, y list"): lambda: net.train_step(xl, yl),
        ("train_step", "y int class label"): lambda: net.train_step(x32, label),
        ("train_step", "y np.int64 class label"): lambda: net.train_step(x32, np.int64(label)),
        ("train_step 1 output", "y float32 array (baseline)"): lambda: net1.train_step(x32, one32),
        ("train_step 1 output", "y Python float"): lambda: net1.train_step(x32, 1.0),
        ("train_step 1 output", "y np.float32 scalar"): lambda: net1.train_step(x32, np.float32(1.0)),
        ("train_step 1 output", "y np.float64 scalar"): lambda: net1.train_step(x32, np.float64(1.0)),
        ("train_step 1 output", "y Python int"): lambda: net1.train_step(x32, 1),
        ("predict_one", "x float32 (baseline)"): lambda: net.predict_one(x32),
        ("predict_one", "x float64"): lambda: net.predict_one(x64),
        ("predict_one", "x int64"): lambda: net.predict_one(xi),
        ("predict_one", "x list"): lambda: net.predict_one(xl),
        ("predict of one row", "X float32 (baseline)"): lambda: net.predict(X1_32),
        ("predict of one row", "X float64"): lambda: net.predict(X1_64),
        ("predict of one row", "X int64"): lambda: net.predict(X1_i),
        ("predict of one row", "X list of lists"): lambda: net.predict(X1_l),
    }

    def batch(f):
        def run(count):
            t0 = timing.now()
            for _ in range(count):
                f()
            return timing.now() - t0
        return run
    measures = {f"{call} | {form}": batch(f) for (call, form), f in rows.items()}
    times = timing.interleave(measures, {k: calls for k in measures}, reps,
                              progress=lambda note: say(f"  [cliffs] single row: {note}"))
    out: dict = {}
    for (call, form) in rows:
        us = timing.median(times[f"{call} | {form}"]) / calls * 1e6
        out.setdefault(call, {})[form] = {"us_per_call": us}
    for forms in out.values():
        base = next(v["us_per_call"] for k, v in forms.items() if k.endswith("(baseline)"))
        for entry in forms.values():
            entry["ratio"] = entry["us_per_call"] / base
    return out


TABLES = ("fit", "settled", "single-row")


def measure(quick: bool, repo: Path, say=print, shapes=None, fann_dir: Path | None = None, tables=TABLES) -> dict:
    """The tables named in ``tables``; ``shapes`` limits the settled table's bench shapes (thyroid is timed where
    its file is)."""
    cfg = MODES["quick" if quick else "full"]
    load_start = machine.load_average()
    fann_dir = repo / FANN_DIR if fann_dir is None else fann_dir
    have_thyroid = (fann_dir / "thyroid.train").is_file()
    fit_tasks = ["medium"] + (["thyroid"] if have_thyroid else [])
    settle = [s for s in SHAPES if shapes is None or s in shapes] + (["thyroid"] if have_thyroid else [])
    results = {"mode": "quick" if quick else "full", "reps": cfg["reps"], "limit": LIMIT,
               "skipped": {} if have_thyroid else {"thyroid": "no thyroid.train in the FANN data folder"}}
    results["kernel"] = os.environ.get("ANNFAST_KERNEL", "auto") or "auto"
    if "fit" in tables:
        results["fit"] = {name: fit_table(name, cfg["fit_rows"][name], cfg["reps"], fann_dir, say)
                          for name in fit_tasks}
        results["fit_rows"] = {name: cfg["fit_rows"][name] for name in fit_tasks}
    if "settled" in tables:
        results["settled"] = settled_table(settle, cfg["settle_rows"], cfg["settle_epochs"], fann_dir, say)
        results["settle_epochs"] = cfg["settle_epochs"]
    if "single-row" in tables and have_thyroid:
        results["single_row"] = single_row_table(cfg["row_calls"], cfg["row_reps"], fann_dir, say)
    results["load_average"] = {"start": load_start, "end": machine.load_average()}
    return results


def _ratio(r) -> str:
    if r is None:
        return "skipped"
    return f"{r:.2f}" + (" **>2**" if r > LIMIT else "")


def markdown(results: dict) -> str:
    """The three tables as Markdown."""
    load = results.get("load_average") or {}
    lines = [f"{results['mode']} mode, {results['reps']} repetitions, kernel {results.get('kernel', 'auto')}; load "
             f"average (1, 5, 15 min) {load.get('start')} at the start, {load.get('end')} at the end", ""]
    if results.get("fit"):
        lines += _fit_lines(results) + [""]
    if results.get("settled"):
        lines += _settled_lines(results) + [""]
    if results.get("single_row"):
        lines += _single_row_lines(results)
    return "\n".join(lines).rstrip("\n")


def _fit_lines(results: dict) -> list[str]:
    lines = []
    tasks = list(results["fit"])
    rows = results.get("fit_rows", {})
    heads = [f"{t} ({rows.get(t, '?')} rows) us/row | ratio" for t in tasks]
    lines.append("| fit call (one epoch) | " + " | ".join(heads) + " |")
    lines.append("|---|" + "---:|---:|" * len(tasks))
    for key in results["fit"][tasks[0]]:
        cells = []
        for t in tasks:
            e = results["fit"][t].get(key, {})
            us = e.get("us_per_row")
            cells += [f"{us:.3f}" if us is not None else "-", _ratio(e.get("ratio"))]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def _settled_lines(results: dict) -> list[str]:
    lines = []
    settled = results["settled"]
    epochs = results.get("settle_epochs")
    lines.append(f"| settled, ms/epoch (median of the last third of {epochs} epochs) | "
                 + " | ".join(f"{k} | ratio" for k in SETTLE_OPTIONS) + " |")
    lines.append("|---|" + "---:|---:|" * len(SETTLE_OPTIONS))
    for name, per in settled.items():
        label = f"{name} {'-'.join(map(str, SHAPES[name]))}" if name in SHAPES else "thyroid 21-16-8-3"
        cells = []
        for k in SETTLE_OPTIONS:
            cells += [f"{per[k]['ms_per_epoch']:.2f}", _ratio(per[k]["ratio"])]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _single_row_lines(results: dict) -> list[str]:
    lines = []
    if results["single_row"]:
        lines.append("| single-row call (thyroid's network) | input form | us/call | ratio |")
        lines.append("|---|---|---:|---:|")
        for call, forms in results["single_row"].items():
            for form, e in forms.items():
                lines.append(f"| {call} | {form} | {e['us_per_call']:.3f} | {_ratio(e['ratio'])} |")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer rows, epochs and repetitions (a smoke test)")
    p.add_argument("--json", type=Path, default=None, help="also save the numbers to this file")
    p.add_argument("--fann-dir", type=Path, default=HERE.parent / FANN_DIR,
                   help=f"folder of thyroid.train (default: {FANN_DIR.as_posix()} relative to the repository root)")
    p.add_argument("--tables", default=",".join(TABLES), help=f"comma-separated tables (default: all of "
                   f"{','.join(TABLES)})")
    p.add_argument("--kernel", default=None, help="run every network on this kernel variant (sets ANNFAST_KERNEL: "
                   "base, avx2, avx512; default: annfast's choice per network)")
    args = p.parse_args(argv)
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    if set(tables) - set(TABLES):
        p.error(f"unknown table {', '.join(sorted(set(tables) - set(TABLES)))}; choose from {', '.join(TABLES)}")
    if args.kernel:
        os.environ["ANNFAST_KERNEL"] = args.kernel
    timing.pin_to_one_core()   # as bench/run.py does; n_threads=2 gets the other cores back (timing.on_cpus)
    results = measure(args.quick, HERE.parent, say=lambda s: print(s, file=sys.stderr, flush=True),
                      fann_dir=args.fann_dir, tables=tables)
    print(markdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
