"""Serving while training: readers never wait for training and only ever see published states (issue 23).

A training call works on the network's own buffer and publishes a copy of it between chunks (every few
milliseconds) and at its end; readers (predict, predict_one, evaluate, the estimators' predictions) take the
published copy once per call, without the lock. No timing assertions: "does not wait" is checked by a reader
finishing while the fit is still running.
"""
import threading
import warnings

import numpy as np
import pytest

import annfast as af


def recording(net):
    """Record a copy of every state the network publishes (wraps its _publish)."""
    states = [net._published.copy()]
    publish = net._publish

    def wrapped():
        publish()
        if not states or not np.array_equal(states[-1], net._published):
            states.append(net._published.copy())
    net._publish = wrapped
    return states


def outputs_of(states, make, probe):
    ref = make()
    out = []
    for s in states:
        ref.set_parameters(s)
        out.append(ref.predict(probe))
    return out


def test_a_prediction_during_a_long_fit_returns_while_the_fit_runs(rng):
    X = rng.normal(size=(50_000, 32)).astype(np.float32)
    y = rng.normal(size=(50_000, 4)).astype(np.float32)
    net = af.Network(32, [af.Dense(256, "tanh"), af.Dense(4)], seed=0)
    started, answered = threading.Event(), []

    def train():
        started.set()
        net.fit(X, y, epochs=200, learning_rate=1e-4)

    t = threading.Thread(target=train, daemon=True)
    t.start()
    started.wait()
    while len(answered) < 20 and t.is_alive():
        net.predict_one(X[0])
        net.predict(X[:64])
        net.evaluate(X[:64], y[:64])
        answered.append(t.is_alive())
    net.stop_training = True   # (ends the fit after its epoch)
    assert answered and all(answered), "a reader waited for the whole fit"
    t.join(60)
    assert not t.is_alive()


def test_train_step_is_visible_to_the_next_prediction(rng):
    net = af.Network(4, [af.Dense(8, "tanh"), af.Dense(1)], seed=0)
    x, y = rng.normal(size=4), np.array([3.0])
    for _ in range(5):
        before = net.predict_one(x)
        net.train_step(x, y, learning_rate=0.1)
        after = net.predict_one(x)
        assert not np.array_equal(before, after)
        np.testing.assert_array_equal(after, net.predict(x[None])[0])


def test_set_weights_and_set_parameters_publish_at_once(rng):
    net = af.Network(4, [af.Dense(8, "tanh"), af.Dense(1)], seed=0)
    x = rng.normal(size=(3, 4))
    other = af.Network(4, [af.Dense(8, "tanh"), af.Dense(1)], seed=5)
    net.set_weights(other.get_weights())
    np.testing.assert_array_equal(net.predict(x), other.predict(x))
    net.set_parameters(np.zeros(net.n_params))
    np.testing.assert_array_equal(net.predict(x), np.zeros((3, 1), dtype=np.float32))


def test_no_torn_reads_with_8_threads_mixing_fit_predict_set_weights_and_save(rng, tmp_path):
    make = lambda: af.Network(16, [af.Dense(64, "tanh"), af.Dense(3)], seed=0)  # noqa: E731
    net = make()
    states = recording(net)
    X = rng.normal(size=(4000, 16)).astype(np.float32)
    y = rng.normal(size=(4000, 3)).astype(np.float32)
    probe = X[:16]
    others = [make().get_weights() for _ in range(3)]
    seen, errors = [], []
    stop = threading.Event()

    def trainer(seed):
        for _ in range(3):
            net.fit(X, y, epochs=1, learning_rate=1e-3, seed=seed)

    def setter():
        for w in others:
            net.set_weights(w)

    def saver():
        for i in range(3):
            net.save(tmp_path / f"m{i}.annf")

    def reader():
        while not stop.is_set():
            seen.append(net.predict(probe))
            seen.append(net.predict_one(probe[0])[None].repeat(len(probe), 0)[:1])

    def guarded(fn, *args):
        try:
            fn(*args)
        except BaseException as exc:   # noqa: BLE001 -- reported below
            errors.append(exc)
    writers = [threading.Thread(target=guarded, args=a) for a in
               [(trainer, 1), (trainer, 2), (setter,), (saver,)]]
    readers = [threading.Thread(target=guarded, args=(reader,)) for _ in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    outputs = outputs_of(states, make, probe)
    for out in seen:
        if out.shape[0] == 1:
            assert any(np.array_equal(out[0], o[0]) for o in outputs)
        else:
            assert any(np.array_equal(out, o) for o in outputs)
    for i in range(3):
        assert af.load(tmp_path / f"m{i}.annf").n_params == net.n_params


def test_estimator_predictions_during_partial_fit_are_old_or_new(rng):
    sk = pytest.importorskip("annfast.sklearn")
    pytest.importorskip("sklearn")
    X = rng.normal(size=(3000, 8))
    y = X @ rng.normal(size=8)
    reg = sk.ANNRegressor(hidden_layer_sizes=(32,), random_state=0, max_iter=5, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # ConvergenceWarning: 5 epochs
        reg.fit(X[:200], y[:200])
    probe = X[:10]
    results, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            results.append(reg.predict(probe))
    t = threading.Thread(target=reader)
    t.start()
    olds = [reg.predict(probe)]
    for _ in range(3):
        reg.partial_fit(X, y)
        olds.append(reg.predict(probe))
    stop.set()
    t.join()
    for r in results:
        assert any(np.array_equal(r, o) for o in olds)


def test_readers_allocate_only_their_result(rng):
    # each reader thread keeps its own workspace between calls: a call allocates its output, nothing more
    import tracemalloc

    net = af.Network(784, [af.Dense(128, "sigmoid"), af.Dense(10)], seed=0)
    X = rng.random((256, 784)).astype(np.float32)
    y = rng.random((256, 10)).astype(np.float32)
    net.predict(X)
    net.evaluate(X, y)
    tracemalloc.start()
    try:
        for _ in range(10):
            net.predict(X)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 256 * 10 * 4 + 4096     # the (256, 10) float32 result and a little bookkeeping
