"""Threads: predict is safe from many threads, training and predicting on one network never mix, and
the C work releases the GIL so that different networks train in parallel."""
import os
import sys
import threading
import time

import numpy as np
import pytest
from conftest import QUICK

import annfast as af


def run_threads(n, target):
    errors = []

    def wrapped(i):
        try:
            target(i)
        except BaseException as exc:   # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_eight_threads_predicting_on_one_network_match_the_serial_results(dtype, rng):
    net = af.Network(20, [af.Dense(64, "tanh"), af.Dense(64, "relu"), af.Dense(3, "softmax")], dtype=dtype, seed=0)
    X = rng.normal(size=(3000, 20))
    serial = net.predict(X)
    rows = [X[i] for i in range(0, 3000, 97)]
    serial_rows = [net.predict_one(r) for r in rows]
    results = [None] * 8

    def work(i):
        out = [net.predict(X) for _ in range(5)]
        singles = [net.predict_one(r) for r in rows]
        results[i] = (out, singles)

    run_threads(8, work)
    for out, singles in results:
        for o in out:
            np.testing.assert_array_equal(o, serial)
        for s, ref in zip(singles, serial_rows):
            np.testing.assert_array_equal(s, ref)


def test_predict_during_fit_sees_whole_states_only(rng):
    # readers do not wait for the fit: they see published states (ends of chunks), never a mixture
    X = rng.normal(size=(20_000, 16)).astype(np.float32)
    y = rng.normal(size=(20_000, 4)).astype(np.float32)
    net = af.Network(16, [af.Dense(128, "tanh"), af.Dense(4)], seed=0)
    probe = X[:50]
    published = [net.parameters.copy()]
    publish = net._publish

    def recording_publish():
        publish()
        published.append(net._published.copy())
    net._publish = recording_publish
    seen = []
    started = threading.Event()

    def train():
        started.set()
        net.fit(X, y, epochs=3, learning_rate=1e-3)

    t = threading.Thread(target=train)
    t.start()
    started.wait()
    while t.is_alive():
        seen.append(net.predict(probe))
    t.join()
    ref = af.Network(16, [af.Dense(128, "tanh"), af.Dense(4)], seed=0)
    outputs = []
    for state in published:
        ref.set_parameters(state)
        outputs.append(ref.predict(probe))
    assert len(published) > 3 and not np.array_equal(outputs[0], outputs[-1])
    np.testing.assert_array_equal(net.predict(probe), outputs[-1])
    for out in seen:     # each one of the published states
        assert any(np.array_equal(out, o) for o in outputs)


def test_train_step_and_predict_interleave_and_converge_like_one_thread():
    # Two threads make train_step updates on one network (each over its half of sklearn's digits, 4 epochs) while
    # two others call predict_one on it, with a switch interval of 10 us so that the calls interleave row by row.
    # Each update is whole before the next (the network's lock), so this is per-sample SGD in another order: the
    # test accuracy must be within 3 points of one thread making the same updates in turn (both >= 0.9), and the
    # training loss within 30 % of it: other orders of the same updates gave up to +10 %, whereas losing one
    # thread's updates, or every other update, to a race gave +80 to +95 %. Readers see softmax rows.
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    d = datasets.load_digits()
    Xtr, Xte, ytr, yte = model_selection.train_test_split(d.data / 16.0, d.target, test_size=0.25, random_state=0,
                                                          stratify=d.target)
    Ytr = np.eye(10)[ytr]
    halves = [np.arange(0, len(Xtr), 2), np.arange(1, len(Xtr), 2)]
    epochs, lr = 4, 0.01

    def make():
        return af.Network(64, [af.Dense(32, "relu"), af.Dense(10, "softmax")], dtype="float64", seed=0)

    serial = make()
    for _ in range(epochs):
        for half in halves:
            for k in half:
                serial.train_step(Xtr[k], Ytr[k], learning_rate=lr)

    net = make()

    def work(i):
        if i % 2 == 0:
            for _ in range(epochs):
                for k in halves[i // 2]:
                    net.train_step(Xtr[k], Ytr[k], learning_rate=lr)
        else:
            for k in range(1500):
                out = net.predict_one(Xte[k % len(Xte)])
                assert np.all(np.isfinite(out)) and np.all(out >= 0) and abs(out.sum() - 1) < 1e-9, out

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        run_threads(4, work)
    finally:
        sys.setswitchinterval(old)
    acc = {name: np.mean(n.predict(Xte).argmax(1) == yte) for name, n in (("serial", serial), ("threads", net))}
    loss = {name: n.evaluate(Xtr, Ytr) for name, n in (("serial", serial), ("threads", net))}
    assert acc["serial"] >= 0.9, acc
    assert abs(acc["threads"] - acc["serial"]) <= 0.03, acc
    assert abs(loss["threads"] - loss["serial"]) <= 0.3 * loss["serial"], loss


def test_training_releases_the_gil(rng):
    X = rng.normal(size=(40_000, 64)).astype(np.float32)
    y = rng.normal(size=(40_000, 10)).astype(np.float32)
    net = af.Network(64, [af.Dense(256, "tanh"), af.Dense(10)], seed=0)
    done = threading.Event()
    t = threading.Thread(target=lambda: (net.fit(X, y, epochs=2), done.set()))
    t.start()
    ticks = 0
    while not done.is_set():       # this loop runs only when the training thread releases the GIL
        ticks += 1
        time.sleep(0)
    t.join()
    assert ticks > 100


def test_single_row_calls_on_a_large_network_release_the_gil(rng):
    # (networks under 4,096 parameters keep the GIL for one row: handing it over costs more than the work)
    net = af.Network(1024, [af.Dense(1024, "tanh"), af.Dense(1024, "tanh"), af.Dense(10)], seed=0)
    x = rng.normal(size=1024).astype(np.float32)
    y = rng.normal(size=10).astype(np.float32)
    for call in (lambda: net.predict_one(x), lambda: net.predict(x[None]),
                 lambda: net.train_step(x, y, learning_rate=1e-4)):
        done = threading.Event()

        def work(call=call, done=done):
            for _ in range(100):
                call()
            done.set()

        t = threading.Thread(target=work)
        t.start()
        ticks = 0
        while not done.is_set():   # runs only while the calls release the GIL
            ticks += 1
            time.sleep(0)
        t.join()
        assert ticks > 50


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 if hasattr(os, "sched_getaffinity") else True,
                    reason="needs two usable cores")
@pytest.mark.skipif(QUICK, reason="measures CPU time against wall time, which other load on a shared CI machine "
                                  "skews; test_training_releases_the_gil checks the mechanism in quick mode")
def test_two_networks_train_in_parallel(rng):
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > 1.5:
        pytest.skip("other processes keep the cores busy: parallel CPU time cannot be observed")
    X = rng.normal(size=(30_000, 64)).astype(np.float32)
    y = rng.normal(size=(30_000, 10)).astype(np.float32)
    nets = [af.Network(64, [af.Dense(256, "tanh"), af.Dense(10)], seed=s) for s in range(2)]
    busy = [0.0, 0.0]

    def train(i):
        t0 = time.thread_time()
        nets[i].fit(X, y, epochs=2)
        busy[i] = time.thread_time() - t0

    best = 0.0
    for _ in range(3):   # the best of three, in case another process takes a core for a moment
        wall0 = time.perf_counter()
        run_threads(2, train)
        best = max(best, sum(busy) / (time.perf_counter() - wall0))
        if best > 1.3:
            break
    # each thread's CPU time nearly equals the wall time: they ran at the same time, not in turns
    assert best > 1.3, best
    for net in nets:
        assert np.all(np.isfinite(net.parameters))
