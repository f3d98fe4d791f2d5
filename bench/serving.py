"""Serving: predictions on one shared network from many threads, idle and while it trains.

- readers: rows/s of ``predict`` (256-row batches) and ``predict_one`` from 1, 2, 4, ... threads (up to the cores)
  on ONE network of the medium shape (784-128-10), against one thread;
- latency: ``predict_one`` p50 / p99 / max on an idle network, and while another thread runs ``fit`` on the same
  network (per-sample SGD on 60,000 rows).

    python bench/serving.py [--quick] [--json out.json]

Readers take the network's last published weights (a copy made between chunks of training), so they neither
wait for training nor for each other; this measures that.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def reader_rates(net, X, counts, seconds: float) -> list[dict]:
    out = []
    for kind in ("predict 256 rows", "predict_one"):
        base = None
        for k in counts:
            done = [0] * k
            stop = threading.Event()

            def work(i, kind=kind, stop=stop, done=done):
                n = 0
                if kind == "predict_one":
                    rows = X[i * 64:(i + 1) * 64]
                    while not stop.is_set():
                        for r in rows:
                            net.predict_one(r)
                        n += len(rows)
                else:
                    batch = X[(i % 8) * 256:(i % 8 + 1) * 256]
                    while not stop.is_set():
                        net.predict(batch)
                        n += len(batch)
                done[i] = n
            threads = [threading.Thread(target=work, args=(i,)) for i in range(k)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            time.sleep(seconds)
            stop.set()
            for t in threads:
                t.join()
            rate = sum(done) / (time.perf_counter() - t0)
            base = base or rate
            out.append({"call": kind, "threads": k, "rows_per_s": rate, "vs_1": rate / base})
    return out


def latencies(net, x, seconds: float, during=None) -> dict:
    lat = []
    stop = threading.Event()
    trainer = None
    if during is not None:
        trainer = threading.Thread(target=during, args=(stop,))
        trainer.start()
        time.sleep(0.2)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        net.predict_one(x)
        lat.append(time.perf_counter() - t0)
        time.sleep(0.0002)
    training = trainer is not None and trainer.is_alive()
    stop.set()
    if trainer is not None:
        trainer.join()
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e6  # noqa: E731
    return {"n": len(lat), "p50_us": q(0.5), "p99_us": q(0.99), "max_us": lat[-1] * 1e6,
            "fit_ran_throughout": training if during is not None else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from data import make_data

    import annfast as af

    counts, k = [], 1
    while k <= cores():
        counts.append(k)
        k *= 2
    seconds = 0.3 if args.quick else 1.5
    X, Y = make_data((784, 128, 10), 60_000 if not args.quick else 5000)
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    net = af.Network(784, [af.Dense(128, "sigmoid"), af.Dense(10)], seed=0)
    res = {"cores": cores(), "readers": reader_rates(net, X, counts, seconds)}
    res["idle"] = latencies(net, X[0], seconds)

    def train(stop):
        class Stop(af.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                self.network.stop_training = stop.is_set()
        net.fit(X, Y, epochs=1000, learning_rate=1e-4, callbacks=[Stop()])
    res["during_fit"] = latencies(net, X[0], seconds, during=train)
    print(f"# serving: one 784-128-10 network, {cores()} usable CPUs\n")
    print("| call | reader threads | rows/s | vs 1 thread |\n|---|---|---|---|")
    for r in res["readers"]:
        print(f"| {r['call']} | {r['threads']} | {r['rows_per_s']:,.0f} | {r['vs_1']:.2f}x |")
    print("\n| predict_one latency | calls | p50 | p99 | max |\n|---|---|---|---|---|")
    for name in ("idle", "during_fit"):
        r = res[name]
        print(f"| {name.replace('_', ' ')} | {r['n']} | {r['p50_us']:.1f} us | {r['p99_us']:.1f} us | "
              f"{r['max_us']:.0f} us |")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
