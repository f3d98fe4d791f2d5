"""The threads section's measurements: annfast's multi-threaded ``fit`` next to one thread, for speed and accuracy.

Speed: samples/s of one epoch on the medium and large shapes, with the per-sample section's rows, initial weights and
settings, for per-sample SGD on one thread, on two threads with the split kernel (annfast's default), with merged
private copies (opt-in, ``sync_every``) and Hogwild! (opt-in), and for mini-batches of 32 on one and two threads.
Accuracy: test accuracy after a fixed number of epochs on scikit-learn's digits and on a FANN/PROBEN1 data set, over
several seeds, for the four per-sample modes.
run.py drives both; the repetitions and medians are timing.py's.
"""
from __future__ import annotations

import inspect
import json
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import timing
from data import LEARNING_RATE, SHAPES, initial_weights, make_data, shape_label
from peers import Annfast

#: threads of the multi-threaded measurements (the machine this suite was written on has 2 CPUs)
THREADS = 2
#: the shapes whose speed-up is measured
SPEED_SHAPES = ("medium", "large")
#: merged mode's rows per thread between merges (opt-in since the split kernel became the default)
MERGED_SYNC = 32
#: speed measurements: key -> (training, batch size, n_threads, mode options, the 1-thread key it is compared with)
SPEED_MODES = {
    "sgd_1": ("per-sample SGD", 1, 1, {}, None),
    "sgd_split": ("per-sample SGD, split kernel (default)", 1, THREADS, {}, "sgd_1"),
    "sgd_merged": ("per-sample SGD, merged copies", 1, THREADS, {"sync_every": MERGED_SYNC}, "sgd_1"),
    "sgd_hogwild": ("per-sample SGD, Hogwild!", 1, THREADS, {"hogwild": True}, "sgd_1"),
    "mb32_1": ("mini-batch 32", 32, 1, {}, None),
    "mb32_split": ("mini-batch 32, n_threads=2 (one thread under 256 rows per thread)", 32, THREADS, {}, "mb32_1"),
}
#: accuracy runs: key -> (training, n_threads, mode options)
ACCURACY_MODES = {
    "sgd_1": ("per-sample SGD", 1, {}),
    "sgd_split": ("per-sample SGD, split kernel", THREADS, {}),
    "sgd_merged": ("per-sample SGD, merged copies", THREADS, {"sync_every": MERGED_SYNC}),
    "sgd_hogwild": ("per-sample SGD, Hogwild!", THREADS, {"hogwild": True}),
}
#: "within noise": |mean accuracy at 2 threads - mean at 1 thread| <= max(NOISE_SDS * std at 1 thread, NOISE_FLOOR)
NOISE_SDS = 2.0
NOISE_FLOOR = 0.01
#: the FANN/PROBEN1 data set of the accuracy runs (``<name>.train`` and ``<name>.test`` in the --fann-dir folder)
FANN_SET = "thyroid"
#: rows of the child-process probe that each speed configuration must finish before it is timed, and its time limit
PROBE_ROWS = 64
PROBE_LIMIT_S = 3.0

Say = Callable[[str], None]


class DataUnavailable(Exception):
    """An accuracy data set that cannot be loaded here (scikit-learn missing, no FANN data folder)."""


def default_sync_every() -> int | None:
    """annfast's default ``sync_every`` (rows per thread between merges), read from ``Network.fit``'s signature."""
    import annfast

    default = inspect.signature(annfast.Network.fit).parameters.get("sync_every")
    return None if default is None else default.default


# ---- speed ---------------------------------------------------------------------------------------------------

_PROBE = r"""
import json, os, sys, threading
import numpy as np
import annfast as af
sizes, configs, rows, limit = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.standard_normal((rows, sizes[0])).astype(np.float32)
Y = 0.1 * rng.standard_normal((rows, sizes[-1])).astype(np.float32)
layers = [af.Dense(u, activation="sigmoid") for u in sizes[1:-1]] + [af.Dense(sizes[-1], activation="linear")]
net = af.Network(sizes[0], layers, dtype="float32", seed=0)
for key, kwargs in configs:
    print("start", key, flush=True)
    timer = threading.Timer(limit, os._exit, (3,))
    timer.daemon = True
    timer.start()
    net.fit(X, Y, epochs=1, learning_rate=0.01, shuffle=False, **kwargs)
    timer.cancel()
    print("done", key, flush=True)
"""


def probe(sizes, configs: dict[str, dict]) -> dict[str, str]:
    """Check in a child process that each configuration's ``fit`` finishes a short epoch; say why those that fail do.

    A configuration that hangs (or crashes the interpreter) would otherwise stop the whole benchmark; in the child a
    timer ends the process after ``PROBE_LIMIT_S`` seconds in one ``fit``, and the probe goes on with the next
    configuration in a new child.

    Parameters
    ----------
    sizes : tuple of int
        Layer sizes (sigmoid hidden layers, linear output, float32, as in the per-sample section).
    configs : dict of str to dict
        ``fit`` keyword arguments (``batch_size``, ``n_threads``, ``hogwild``) per key.

    Returns
    -------
    dict of str to str
        For each configuration that did not finish: why.
    """
    failed: dict[str, str] = {}
    todo = list(configs.items())
    while todo:
        arg = json.dumps([list(sizes), todo, PROBE_ROWS, PROBE_LIMIT_S])
        try:
            with timing.running_on(timing.ALLOWED_CPUS):     # the child inherits every CPU, not the pinned one
                proc = subprocess.run([sys.executable, "-I", "-c", _PROBE, arg], capture_output=True, text=True,
                                      timeout=30 + PROBE_LIMIT_S * len(todo), cwd=Path(__file__).resolve().parent)
            out, err, code = proc.stdout, proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            err, code = "", None
        started = [line.split()[1] for line in out.splitlines() if line.startswith("start ")]
        done = {line.split()[1] for line in out.splitlines() if line.startswith("done ")}
        if code == 0 and len(done) == len(todo):
            break
        last = err.strip().splitlines()[-1] if err.strip() else f"exit code {code}"
        culprit = next((key for key in started if key not in done), None)
        if culprit is None:   # failed before the first fit (annfast not importable, say)
            return {**failed, **{key: f"the probe process failed: {last}" for key, _ in todo}}
        if code in (3, None):
            failed[culprit] = f"did not finish a {PROBE_ROWS}-row epoch within {PROBE_LIMIT_S:g} s (hangs?)"
        else:
            failed[culprit] = f"failed on a {PROBE_ROWS}-row epoch: {last}"
        todo = todo[[key for key, _ in todo].index(culprit) + 1:]
    return failed


def speedups(name: str, rows: int, reps: int, warmup_rows: int, say: Say) -> dict:
    """Samples/s of each of ``SPEED_MODES`` on one shape, and the speed-ups over one thread.

    One thread runs pinned to the core the per-sample section uses; two threads run on every CPU this process was
    allowed before run.py pinned it. The modes are interleaved (every repetition runs each once); each epoch starts
    from the shared initial weights.

    Returns
    -------
    dict
        ``label``, ``sizes``, ``rows``, ``order`` (the keys in table order), ``modes`` (key -> ``name``,
        ``batch_size``, ``n_threads``, ``hogwild``, ``reference`` (the 1-thread key it is compared with, None for the
        1-thread runs), ``times_s``, ``median_s``, ``samples_per_s``, ``speedup`` (None when there is no 1-thread
        figure to compare with) and ``paired_speedups`` (the ratio within each repetition)) and ``failed`` (key ->
        ``name``, ``batch_size``, ``n_threads``, ``hogwild`` and ``why`` it was not timed).
    """
    sizes = SHAPES[name]
    label = shape_label(name)
    kwargs = {key: {"batch_size": bs, "n_threads": k, **opts}
              for key, (_, bs, k, opts, _) in SPEED_MODES.items()}
    failed = {key: {"name": SPEED_MODES[key][0], "hogwild": False, **kwargs[key], "why": why}
              for key, why in probe(sizes, kwargs).items()}
    for f in failed.values():
        say(f"  [threads] {label}: {f['name']}, {f['n_threads']} thread(s): not timed, {f['why']}")
    X, Y = make_data(sizes, rows)
    af = Annfast(sizes, initial_weights(sizes), X, Y, "float32")
    measures = {key: timing.on_cpus(partial(af.fit, **kw), timing.ALLOWED_CPUS if kw["n_threads"] > 1 else None)
                for key, kw in kwargs.items() if key not in failed}
    times = timing.interleave(measures, {key: rows for key in measures}, reps,
                              {key: min(rows, warmup_rows) for key in measures},
                              progress=lambda note: say(f"  [threads] {label}: {note}"))
    modes = {}
    for key, ts in times.items():
        title, bs, k, opts, ref = SPEED_MODES[key]
        med = timing.median(ts)
        modes[key] = {"name": title, "batch_size": bs, "n_threads": k, "hogwild": bool(opts.get("hogwild")),
                      "sync_every": opts.get("sync_every"), "reference": ref,
                      "times_s": ts, "median_s": med, "samples_per_s": rows / med, "speedup": None,
                      "paired_speedups": None}
    for key, mode in modes.items():
        ref = SPEED_MODES[key][4]
        if ref in modes:
            mode["speedup"] = modes[ref]["median_s"] / mode["median_s"]
            mode["paired_speedups"] = [a / b for a, b in zip(modes[ref]["times_s"], mode["times_s"])]
    return {"label": label, "sizes": list(sizes), "rows": rows, "order": list(SPEED_MODES), "modes": modes,
            "failed": failed}


# ---- accuracy ------------------------------------------------------------------------------------------------

def read_fann(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a FANN plain-text training file.

    The format: ``n_pairs n_inputs n_outputs``, then each pair's inputs and outputs, all whitespace-separated.

    Returns
    -------
    X : ndarray of shape (n_pairs, n_inputs), float64
    Y : ndarray of shape (n_pairs, n_outputs), float64
    """
    tokens = path.read_text().split()
    if len(tokens) < 3:
        raise ValueError(f"{path.name}: no FANN header (n_pairs n_inputs n_outputs)")
    n, n_in, n_out = (int(t) for t in tokens[:3])
    if len(tokens) != 3 + n * (n_in + n_out):
        raise ValueError(f"{path.name}: the header announces {n} pairs of {n_in} + {n_out} values, but the file holds "
                         f"{len(tokens) - 3} values")
    values = np.array(tokens[3:], dtype=np.float64).reshape(n, n_in + n_out)
    return values[:, :n_in], values[:, n_in:]


def digits_data() -> dict:
    """scikit-learn's digits, pixels / 16, split 75 / 25 % stratified by class with ``random_state=0``."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:
        raise DataUnavailable(f"cannot import scikit-learn ({exc}); pip install '.[bench]'") from None

    digits = load_digits()
    X = digits.data / 16.0
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.25, stratify=digits.target,
                                                        random_state=0)
    return {"X": X_train, "Y": np.eye(10)[y_train], "X_test": X_test, "y_test": y_test,
            "source": "scikit-learn load_digits, pixels / 16, stratified 75/25 split (random_state=0)"}


def fann_data(folder: Path, name: str) -> dict:
    """A FANN/PROBEN1 classification set (one-hot outputs) from ``folder/name.train`` and ``folder/name.test``."""
    X, Y = read_fann(folder / f"{name}.train")
    X_test, Y_test = read_fann(folder / f"{name}.test")
    return {"X": X, "Y": Y, "X_test": X_test, "y_test": np.argmax(Y_test, axis=1),
            "source": f"FANN/PROBEN1 {name}.train / {name}.test"}


#: accuracy data sets: name -> hidden layers as (units, activation), and epochs; the output layer is softmax
ACCURACY_SETS = {
    "digits": {"hidden": ((32, "relu"),), "epochs": 20},
    FANN_SET: {"hidden": ((16, "tanh"),), "epochs": 30},
}


def accuracy(name: str, data: dict, seeds: list[int], say: Say) -> dict:
    """Test accuracy of the three ``ACCURACY_MODES`` after a fixed number of epochs, for each seed.

    Each run: a new float32 network (``seed`` sets its initial weights), then ``fit`` for the set's ``epochs``
    epochs of per-sample SGD, learning rate 0.01, cross-entropy, shuffled with ``seed``. The seeds are the outer
    loop and the modes the inner one. Runs on every CPU this process was allowed before run.py pinned it.

    Returns
    -------
    dict
        ``source``, ``layers``, ``epochs``, ``seeds``, ``train_rows``, ``test_rows``, ``majority`` (the test
        accuracy of always answering the most frequent class) and ``modes`` (key -> ``name``, ``n_threads``,
        ``hogwild``, ``accuracies``, ``fit_s``, ``mean``, ``std``, and for the 2-thread modes ``diff``,
        ``tolerance`` and ``within_noise``).
    """
    import annfast

    X = np.ascontiguousarray(data["X"], dtype=np.float32)
    Y = np.ascontiguousarray(data["Y"], dtype=np.float32)
    X_test, y_test = np.ascontiguousarray(data["X_test"], dtype=np.float32), data["y_test"]
    hidden, epochs = ACCURACY_SETS[name]["hidden"], ACCURACY_SETS[name]["epochs"]
    n_out = Y.shape[1]
    layers = [X.shape[1], *(u for u, _ in hidden), n_out]
    acc: dict[str, list[float]] = {key: [] for key in ACCURACY_MODES}
    secs: dict[str, list[float]] = {key: [] for key in ACCURACY_MODES}
    with timing.running_on(timing.ALLOWED_CPUS):
        for seed in seeds:
            for key, (_, k, opts) in ACCURACY_MODES.items():
                net = annfast.Network(X.shape[1], [*(annfast.Dense(u, activation=a) for u, a in hidden),
                                                   annfast.Dense(n_out, activation="softmax")],
                                      dtype="float32", seed=seed)
                t0 = timing.now()
                net.fit(X, Y, epochs=epochs, learning_rate=LEARNING_RATE, batch_size=1, shuffle=True, seed=seed,
                        loss="cross_entropy", n_threads=k, **opts)
                secs[key].append(timing.now() - t0)
                acc[key].append(float(np.mean(np.argmax(net.predict(X_test), axis=1) == y_test)))
    say(f"  [threads] accuracy on {name}: {len(seeds)} seeds done")
    modes = {}
    for key, (title, k, opts) in ACCURACY_MODES.items():
        values = acc[key]
        modes[key] = {"name": title, "n_threads": k, "hogwild": bool(opts.get("hogwild")), "accuracies": values,
                      "fit_s": secs[key],
                      "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    ref = modes["sgd_1"]
    tolerance = max(NOISE_SDS * ref["std"], NOISE_FLOOR)
    for mode in modes.values():
        if mode["n_threads"] > 1:
            mode["diff"] = mode["mean"] - ref["mean"]
            mode["tolerance"] = tolerance
            mode["within_noise"] = abs(mode["diff"]) <= tolerance
    counts = np.bincount(y_test, minlength=n_out)
    return {"source": data["source"], "layers": layers, "hidden": [a for _, a in hidden], "epochs": epochs,
            "seeds": list(seeds), "train_rows": int(X.shape[0]), "test_rows": int(X_test.shape[0]),
            "majority": float(counts.max() / counts.sum()), "modes": modes}
