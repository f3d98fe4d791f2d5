"""No leaks: creating, training and dropping many networks keeps resident memory flat."""
import gc
import sys

import numpy as np
import pytest
from conftest import QUICK

import annfast as af

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")


def rss_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096


def churn(n, X, y):
    for i in range(n):
        net = af.Network(4, [af.Dense(8, "sigmoid"), af.Dense(1)], seed=i)
        net.fit(X, y, epochs=1, batch_size=1 + i % 3, momentum=0.5 * (i % 2))
        net.train_step(X[0], y[0])
        net.predict_one(X[1])
        net.predict(X)
        net.evaluate(X, y)


def test_creating_training_and_dropping_many_networks_keeps_memory_flat():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 4)), rng.normal(size=16)
    n = 20_000 if QUICK else 100_000
    churn(2_000, X, y)          # warm up allocator pools and caches
    gc.collect()
    before = rss_bytes()
    churn(n, X, y)
    gc.collect()
    grown = rss_bytes() - before
    # a leak of even 100 bytes per network would show as >= 2 MB here
    assert grown < 2 * 1024 * 1024, f"resident memory grew by {grown / 1e6:.1f} MB over {n} networks"
