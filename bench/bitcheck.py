"""Hash the weights that short trainings end with, to prove that moving kernel code changed no result.

Trains tiny 4-8-1, small 64-32-10, medium 784-128-10 and large 784-512-512-10 in float32 and float64, with every
kernel variant this CPU runs, under plain SGD, momentum (classic and Nesterov, with weight decay), weight decay
alone, mini-batches of 64 and two split threads, and prints one hash per case plus predict's outputs. Run it before
and after a change and diff the outputs: equal lines mean bitwise equal weights.

    python bench/bitcheck.py > before.txt   (... change, rebuild ...)   python bench/bitcheck.py | diff before.txt -
"""
from __future__ import annotations

import hashlib
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]   # this checkout's annfast, not an installed one
from data import initial_weights, make_data  # noqa: E402

SHAPES = {"tiny": (4, 8, 1), "small": (64, 32, 10), "medium": (784, 128, 10), "large": (784, 512, 512, 10)}
ROWS = {"tiny": 400, "small": 400, "medium": 203, "large": 61}   # odd counts: partial pending groups and batches
CASES = {
    "sgd": {},
    "momentum": {"momentum": 0.9, "learning_rate": 0.001},
    "nesterov_decay": {"momentum": 0.5, "nesterov": True, "weight_decay": 1e-3},
    "decay": {"weight_decay": 1e-3},
    "minibatch": {"batch_size": 64},
    "split": {"n_threads": 2},
}


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def main() -> None:
    import annfast as af
    from annfast import _core
    from annfast import _validation as v

    kernels = [k for k in ("base", "avx2", "avx512") if _core.isa_supported(v.KERNELS[k])]
    for name, sizes in SHAPES.items():
        X64, Y64 = make_data(sizes, ROWS[name])
        init = initial_weights(sizes)
        for dtype in ("float32", "float64"):
            X, Y = X64.astype(dtype), Y64.astype(dtype)
            for kernel in kernels:
                os.environ["ANNFAST_KERNEL"] = kernel
                for case, opts in CASES.items():
                    if case == "split" and len(sizes) < 3:
                        continue
                    layers = [af.Dense(u, activation="sigmoid") for u in sizes[1:-1]]
                    layers.append(af.Dense(sizes[-1], activation="linear"))
                    net = af.Network(sizes[0], layers, dtype=dtype, seed=0)
                    net.set_weights([(W.astype(dtype), b.astype(dtype)) for W, b in init])
                    o = {"learning_rate": 0.01, "batch_size": 1, **opts}
                    net.fit(X, Y, epochs=2, shuffle=True, seed=0, **o)
                    w = [a for pair in net.get_weights() for a in pair]
                    print(f"{name:7s} {dtype} {kernel:6s} {case:15s} {digest(w)} {digest([net.predict(X)])}")


if __name__ == "__main__":
    main()
