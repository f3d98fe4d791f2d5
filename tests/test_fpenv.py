"""The C calls flush subnormals to zero while they run and leave the caller's floating-point control state
(rounding mode, exception masks, flush-to-zero) exactly as they found it, also when they raise."""
import numpy as np
import pytest

import annfast as af
from annfast import _core
from annfast.callbacks import Callback

pytestmark = pytest.mark.skipif(_core._FP_FLUSH == 0, reason="no flush-to-zero control on this platform "
                                "(csrc/af_fpenv.h leaves the state alone there)")

DEFAULT = _core._fp_control()
STATES = {
    "default": DEFAULT & ~_core._FP_FLUSH,
    "round-toward-zero": (DEFAULT & ~_core._FP_FLUSH & ~_core._FP_ROUND_MASK) | _core._FP_ROUND_TOWARD_ZERO,
    "already-flushing": DEFAULT | _core._FP_FLUSH,
}


@pytest.fixture(autouse=True)
def restore_control():
    before = _core._fp_control()
    yield
    _core._fp_control(before)


class StopWith(Callback):
    def __init__(self, exc):
        super().__init__()
        self.exc = exc

    def on_epoch_end(self, epoch, logs):
        raise self.exc


def calls(dtype):
    """(name, function raising nothing or the exception it names) for every path into C."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 64)]

    def net():
        return af.Network(5, [af.Dense(7, "relu"), af.Dense(3, "softmax")], dtype=dtype, seed=1)

    def diverging_fit():
        big = af.Network(5, [af.Dense(16, "relu"), af.Dense(1)], dtype=dtype, seed=0)
        big.fit(X * 100, np.full((64, 1), 1e4, dtype=dtype), epochs=50, learning_rate=10.0)

    def diverging_step():
        small = af.Network(2, [af.Dense(8, "relu"), af.Dense(1)], dtype=dtype, seed=0)
        for _ in range(100):
            small.train_step(np.array([1e3, -1e3]), np.array([1e6]), learning_rate=100.0)

    n = net()
    return [
        ("fit", None, lambda: n.fit(X, Y, epochs=2)),
        ("fit momentum", None, lambda: n.fit(X, Y, epochs=2, momentum=0.9)),
        ("fit nesterov decay", None, lambda: n.fit(X, Y, epochs=1, momentum=0.9, nesterov=True, weight_decay=1e-3)),
        ("fit minibatch", None, lambda: n.fit(X, Y, epochs=1, batch_size=8)),
        ("fit full batch", None, lambda: n.fit(X, Y, epochs=1, batch_size=None, momentum=0.5)),
        ("fit validation", None, lambda: n.fit(X, Y, epochs=1, validation_split=0.25)),
        ("fit 2 threads", None, lambda: n.fit(X, Y, epochs=1, n_threads=2)),
        ("train_step", None, lambda: n.train_step(X[0], Y[0], momentum=0.5)),
        ("train_step converted", None, lambda: n.train_step(X[0].tolist(), 2)),
        ("predict", None, lambda: n.predict(X)),
        ("predict_one", None, lambda: n.predict_one(X[0])),
        ("evaluate", None, lambda: n.evaluate(X, Y)),
        ("gradient", None, lambda: n.gradient(X, Y)),
        ("fit diverging", af.DivergenceError, diverging_fit),
        ("train_step diverging", af.DivergenceError, diverging_step),
        ("fit interrupted", KeyboardInterrupt,
         lambda: n.fit(X, Y, epochs=3, callbacks=[StopWith(KeyboardInterrupt())])),
    ]


@pytest.mark.parametrize("state", list(STATES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_call_restores_the_callers_control_state(dtype, state):
    for name, exc, call in calls(dtype):
        _core._fp_control(STATES[state])
        if exc is None:
            call()
        else:
            with pytest.raises(exc):
                call()
        got = _core._fp_control()
        _core._fp_control(DEFAULT)
        assert got == STATES[state], f"{name} left {got:#x}, the caller had {STATES[state]:#x}"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_subnormal_results_are_flushed_inside_the_call_only(dtype):
    tiny = np.finfo(dtype).tiny                 # smallest normal number
    a = np.sqrt(tiny) / 4                       # normal, but a * a is subnormal
    net = af.Network(1, [af.Dense(1, "linear")], dtype=dtype, seed=0)
    net.set_parameters(np.array([a, 0.0]))
    _core._fp_control(STATES["default"])
    assert net.predict_one(np.array([a], dtype=dtype))[0] == 0
    assert net.predict(np.array([[a]], dtype=dtype))[0, 0] == 0
    assert np.array([a], dtype=dtype) * np.array([a], dtype=dtype) != 0   # the caller still has subnormals


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_does_not_depend_on_the_callers_rounding_mode(dtype):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(64, 5)).astype(dtype)
    Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 64)]
    results = {}
    for state in STATES:
        net = af.Network(5, [af.Dense(7, "tanh"), af.Dense(3, "softmax")], dtype=dtype, seed=1)   # same start
        _core._fp_control(STATES[state])
        net.fit(X, Y, epochs=2, momentum=0.9, shuffle=False)
        net.train_step(X[0], Y[0])
        out = net.predict(X)
        _core._fp_control(DEFAULT)
        results[state] = net.parameters.tobytes() + out.tobytes()
    assert len(set(results.values())) == 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_seeded_initial_weights_do_not_depend_on_the_callers_rounding_mode(dtype):
    # Network(seed=s) drew different float32 weights under round-toward-zero (NumPy's scaling and cast round
    # by the caller's mode): the same seed, different networks, different training
    results = set()
    for state in STATES:
        _core._fp_control(STATES[state])
        net = af.Network(5, [af.Dense(64, "tanh"), af.Dense(3, "softmax")], dtype=dtype, seed=1)
        assert _core._fp_control() == STATES[state]        # the caller's mode is left as it was
        _core._fp_control(DEFAULT)
        results.add(net.parameters.tobytes())
    assert len(results) == 1
