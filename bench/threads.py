"""Thread scaling of ``fit(n_threads=k)``: samples/s and time to accuracy for k = 1, 2, 4, ... up to the cores.

Written for machines with more cores than CI's two (the README's scaling table comes from a 16-core run):

- speed: samples/s of one epoch of per-sample SGD (float32, lr 0.01) on the bench's medium shape (784-128-10 sigmoid,
  synthetic rows, bench/data.py) and on an MNIST-sized classifier (784-256-10 relu/softmax), median of the
  repetitions, for each thread count with the default threaded mode (the split kernel), and Hogwild! and merged
  copies (``sync_every = 256 // k``) at the largest count;
- accuracy: test accuracy after each epoch of the MNIST-sized classifier on Fashion-MNIST (Debian's
  ``dataset-fashion-mnist``, or ``--fashion DIR`` holding its four ``*-idx?-ubyte.gz`` files; a synthetic 784-input
  problem when absent), the same epochs for every thread count, and the time until the test accuracy first reaches
  ``--target``.

    python bench/threads.py                       # every power of two up to the cores, 5 epochs
    python bench/threads.py --quick               # 1 and 2 threads, fewer rows (the CI smoke test)
    python bench/threads.py --json out.json       # also write the results

Prints one markdown table per measurement; speed claims come from here, never from the tests.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import SHAPES, make_data  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(folder: Path):
    """Fashion-MNIST as float32 pixels / 255 and integer labels, or None when the files are not there."""
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"]
    if not all((folder / n).is_file() for n in names):
        return None
    Xtr, ytr, Xte, yte = (read_idx(folder / n) for n in names)
    f = lambda a: (a.reshape(a.shape[0], -1) / np.float32(255)).astype(np.float32)  # noqa: E731
    return f(Xtr), ytr.astype(np.int64), f(Xte), yte.astype(np.int64), f"Fashion-MNIST ({folder})"


def synthetic_784(n_train: int, n_test: int, seed: int = 0):
    """An MNIST-sized stand-in: 10 sparse class prototypes in [0, 1]^784, each row one with pixel noise."""
    rng = np.random.default_rng(seed)
    protos = (rng.random((10, 784)) < 0.2) * rng.random((10, 784))
    def rows(n):
        y = rng.integers(0, 10, n)
        X = np.clip(protos[y] + 0.35 * rng.standard_normal((n, 784)) * (rng.random((n, 784)) < 0.3), 0, 1)
        return X.astype(np.float32), y
    Xtr, ytr = rows(n_train)
    Xte, yte = rows(n_test)
    return Xtr, ytr, Xte, yte, "synthetic 784-input, 10 classes (Fashion-MNIST not found)"


def thread_counts(quick: bool) -> list[int]:
    if quick:
        return [1, 2]
    out, k = [], 1
    while k <= cores():
        out.append(k)
        k *= 2
    if out[-1] != cores():
        out.append(cores())
    return out


def modes(counts: list[int]) -> list[tuple[str, int, dict]]:
    top = counts[-1]
    out = [(f"split, {k} thread{'s' if k > 1 else ''}", k, {}) for k in counts]
    if top > 1:
        out.append((f"Hogwild!, {top} threads", top, {"hogwild": True}))
        out.append((f"merged, {top} threads, sync_every={max(1, 64 // top)}", top, {"sync_every": max(1, 64 // top)}))
    return out


def speed(af, name: str, X, Y, counts, reps: int, lr: float, layers) -> list[dict]:
    """Samples/s of one epoch for each mode, interleaved over the repetitions; the median."""
    nets = {}
    times = {label: [] for label, _, _ in modes(counts)}
    failed = {}
    for _ in range(reps):
        for label, k, opts in modes(counts):
            if label in failed:
                continue
            net = af.Network(X.shape[1], layers(), seed=0)   # every epoch from the same weights
            net.fit(X[:256], Y[:256], epochs=1, learning_rate=lr, n_threads=k, **opts)   # threads started
            af._parallel.last_split_ticks = None
            net.set_weights(af.Network(X.shape[1], layers(), seed=0).get_weights())
            t0 = time.perf_counter()
            try:
                hist = net.fit(X, Y, epochs=1, learning_rate=lr, n_threads=k, shuffle=False, **opts)
            except af.DivergenceError as exc:
                failed[label] = str(exc).split(";")[0]
                continue
            times[label].append(time.perf_counter() - t0)
            nets[label] = dict(hist.params)
            ticks = af._parallel.last_split_ticks if hist.params["threading"] == "split" else None
            if ticks is not None and ticks[:, 0].min() > 0:   # the split kernel's own accounting
                nets[label]["wait"] = float(np.mean(ticks[:, 1] / ticks[:, 0]))
                nets[label]["upper"] = float(np.mean(ticks[:, 2] / ticks[:, 0]))
    base = statistics.median(times[modes(counts)[0][0]])
    out = []
    for label, k, _ in modes(counts):
        if label in failed:
            out.append({"shape": name, "mode": label, "n_threads": k, "ran": k, "threading": failed[label],
                        "samples_per_s": float("nan"), "speedup": float("nan"), "times_s": []})
            continue
        med = statistics.median(times[label])
        out.append({"shape": name, "mode": label, "n_threads": k, "ran": nets[label]["n_threads"],
                    "threading": nets[label]["threading"], "samples_per_s": X.shape[0] / med,
                    "wait": nets[label].get("wait"), "upper": nets[label].get("upper"),
                    "speedup": base / med, "times_s": times[label]})
    return out


def accuracy(af, data, counts, epochs: int, target: float, lr: float) -> list[dict]:
    Xtr, ytr, Xte, yte, _ = data
    out = []
    for label, k, opts in modes(counts):
        net = af.Network(784, [af.Dense(256, "relu"), af.Dense(10, "softmax")], seed=0)
        accs, elapsed, reached = [], 0.0, None
        for epoch in range(epochs):
            t0 = time.perf_counter()
            try:
                net.fit(Xtr, ytr, epochs=1, learning_rate=lr, n_threads=k, seed=epoch, **opts)
            except af.DivergenceError as exc:
                accs.append(float("nan"))
                print(f"  {label}: diverged in epoch {epoch}: {exc}", file=sys.stderr)
                break
            elapsed += time.perf_counter() - t0
            acc = float(np.mean(net.predict(Xte).argmax(1) == yte))
            accs.append(acc)
            if reached is None and acc >= target:
                reached = elapsed
        out.append({"mode": label, "n_threads": k, "accuracies": accs, "train_s": elapsed, "to_target_s": reached})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 and 2 threads, few rows and one epoch")
    p.add_argument("--fashion", type=Path, default=FASHION, help="folder of Fashion-MNIST's four .gz files")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--target", type=float, default=0.85, help="test accuracy for the time-to-accuracy column")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    import annfast as af
    import annfast._parallel  # noqa: F401 -- the split kernel's accounting (last_split_ticks)

    counts = thread_counts(args.quick)
    rows = 2000 if args.quick else 30000
    epochs = 1 if args.quick else args.epochs
    print(f"# threads: {cpu_name()}, {cores()} usable CPUs, annfast {getattr(af, '__version__', '?')}, "
          f"thread counts {counts}\n")
    results = {"cpu": cpu_name(), "cores": cores(), "counts": counts, "speed": [], "accuracy": None}
    Xm, Ym = make_data(SHAPES["medium"], rows)
    Xm, Ym = Xm.astype(np.float32), Ym.astype(np.float32)
    medium = lambda: [af.Dense(128, "sigmoid"), af.Dense(10, "linear")]  # noqa: E731
    results["speed"] += speed(af, "medium 784-128-10", Xm, Ym, counts, args.reps, 0.01, medium)
    Xl, Yl = make_data(SHAPES["large"], rows // 3)
    large = lambda: [af.Dense(512, "sigmoid"), af.Dense(512, "sigmoid"), af.Dense(10, "linear")]  # noqa: E731
    results["speed"] += speed(af, "large 784-512-512-10", Xl.astype(np.float32), Yl.astype(np.float32), counts,
                              args.reps, 0.01, large)
    data = fashion(args.fashion) or synthetic_784(60000, 10000)
    if args.quick:
        data = (data[0][:rows], data[1][:rows], data[2][:2000], data[3][:2000], data[4])
    mnist = lambda: [af.Dense(256, "relu"), af.Dense(10, "softmax")]  # noqa: E731
    Yc = np.eye(10, dtype=np.float32)[data[1][:rows]]
    results["speed"] += speed(af, "784-256-10 relu/softmax", data[0][:rows], Yc, counts, args.reps, 0.01, mnist)
    print("| shape | mode | threads run | samples/s | speed-up vs 1 thread | split: time at the barrier | "
          "split: later layers |\n|---|---|---|---|---|---|---|")
    pct = lambda f: "-" if f is None else f"{100 * f:.0f} %"  # noqa: E731
    for r in results["speed"]:
        print(f"| {r['shape']} | {r['mode']} | {r['ran']} ({r['threading']}) | {r['samples_per_s']:,.0f} | "
              f"{r['speedup']:.2f}x | {pct(r.get('wait'))} | {pct(r.get('upper'))} |")
    results["accuracy"] = {"data": data[4], "epochs": epochs, "target": args.target,
                           "runs": accuracy(af, data, counts, epochs, args.target, 0.01)}
    print(f"\n{data[4]}: 784-256-10 relu/softmax, per-sample SGD lr 0.01, test accuracy after each of {epochs} "
          f"epoch(s); time to {100 * args.target:.0f} %\n")
    print("| mode | test accuracy per epoch | training s | to target s |\n|---|---|---|---|")
    for r in results["accuracy"]["runs"]:
        accs = ", ".join(f"{100 * a:.2f}" for a in r["accuracies"])
        tt = f"{r['to_target_s']:.2f}" if r["to_target_s"] is not None else "not reached"
        print(f"| {r['mode']} | {accs} | {r['train_s']:.2f} | {tt} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
