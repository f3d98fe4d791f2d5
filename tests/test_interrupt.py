"""Ctrl-C (a real SIGINT) in the middle of a long epoch: KeyboardInterrupt promptly, weights whole."""
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import annfast as af

pytestmark = [pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals"),
              pytest.mark.usefixtures("sigint_raises")]


def interrupt_after(seconds):
    sent = {}

    def fire():
        sent["t"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(seconds, fire)
    timer.start()
    return timer, sent


@pytest.mark.parametrize("batch_size", [1, 32, None])
def test_sigint_mid_epoch_raises_promptly_and_leaves_whole_weights(batch_size, rng):
    X = rng.normal(size=(60_000, 32)).astype(np.float32)
    y = rng.normal(size=(60_000, 10)).astype(np.float32)
    # 1.1 M weights: an epoch lasts seconds even in mini-batches (with 256-unit layers, a mini-batch epoch
    # took under 0.3 s on a quiet machine, and the signal came after it)
    net = af.Network(32, [af.Dense(1024, "tanh"), af.Dense(1024, "tanh"), af.Dense(10)], seed=0)
    net.fit(X[:100], y[:100], epochs=1, learning_rate=1e-3)        # one whole epoch before
    timer, sent = interrupt_after(0.3)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, learning_rate=1e-3, batch_size=batch_size)
    raised = time.perf_counter()
    timer.join()
    assert raised - start < 5.0, "the epoch finished before the signal: make it longer"
    assert raised - sent["t"] < 0.2
    assert np.all(np.isfinite(net.parameters))
    assert net.history is not None and len(net.history) == 0   # interrupted inside the first epoch
    # the network is usable afterwards
    before = net.parameters.copy()
    net.fit(X[:1000], y[:1000], epochs=1, learning_rate=1e-3)
    assert not np.array_equal(before, net.parameters)


def test_sigint_during_long_predict(rng):
    X = rng.normal(size=(400_000, 32)).astype(np.float32)
    net = af.Network(32, [af.Dense(512, "tanh"), af.Dense(512, "tanh"), af.Dense(10)], seed=0)
    timer, sent = interrupt_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        net.predict(X)
    raised = time.perf_counter()
    timer.join()
    assert raised - sent["t"] < 0.2


def test_history_keeps_every_whole_epoch_before_the_interrupt(rng):
    X = rng.normal(size=(20_000, 32)).astype(np.float32)
    y = rng.normal(size=(20_000, 4)).astype(np.float32)
    net = af.Network(32, [af.Dense(64, "tanh"), af.Dense(4)], seed=0)
    net.fit(X, y, epochs=1)
    t0 = time.perf_counter()
    net.fit(X, y, epochs=1)
    per_epoch = time.perf_counter() - t0
    timer, sent = interrupt_after(2.5 * per_epoch)        # in the middle of the third epoch
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=1000)
    timer.join()
    done = len(net.history)
    assert done >= 1 and done == len(net.history.history["loss"]) == len(net.history.epoch)
    assert all(np.isfinite(v) for v in net.history.history["loss"])
    assert net.history.epoch == list(range(done))
