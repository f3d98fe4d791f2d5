"""Bad input gets the right exception type and a message that says what and where; nothing changes."""
import re
import warnings

import numpy as np
import pytest

import annfast as af
from annfast import _core
from annfast._validation import KERNELS


@pytest.fixture
def net():
    return af.Network(3, [af.Dense(4, "tanh"), af.Dense(2, "linear")], seed=0)


@pytest.fixture
def data(rng):
    return rng.normal(size=(10, 3)), rng.normal(size=(10, 2))


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(units=0), ValueError, "units must be >= 1"),
    (dict(units=2.5), TypeError, "units must be an integer"),
    (dict(units=3, activation="relu6"), ValueError, "unknown activation 'relu6'; expected one of"),
    (dict(units=3, activation="leaky_relu", negative_slope=-0.1), ValueError, "negative_slope must be >= 0"),
])
def test_bad_dense(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        af.Dense(**kwargs)


def test_bad_network_definitions():
    with pytest.raises(ValueError, match="at least one layer"):
        af.Network(3, [])
    with pytest.raises(ValueError, match="softmax is only allowed in the output layer"):
        af.Network(3, [af.Dense(4, "softmax"), af.Dense(2)])
    with pytest.raises(ValueError, match="softmax output layer needs at least 2 units"):
        af.Network(3, [af.Dense(1, "softmax")])
    with pytest.raises(TypeError, match=r"layers\[1\] must be a Dense"):
        af.Network(3, [af.Dense(4), "dense"])
    with pytest.raises(TypeError, match="dtype must be one of 'float32', 'float64'"):
        af.Network(3, [af.Dense(1)], dtype="float16")
    with pytest.raises(ValueError, match="n_inputs must be >= 1"):
        af.Network(0, [af.Dense(1)])
    with pytest.raises(ValueError, match="cross_entropy needs a softmax or sigmoid output layer"):
        af.Network(3, [af.Dense(2, "linear")], loss="cross_entropy")
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        af.Network(3, [af.Dense(2)], loss="mse")
    with pytest.raises(ValueError, match="a network has 1 to 32 layers"):
        af.Network(3, [af.Dense(2)] * 33)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(learning_rate=0), ValueError, "learning_rate must be > 0"),
    (dict(learning_rate=-1), ValueError, "learning_rate must be > 0"),
    (dict(learning_rate=float("nan")), ValueError, "learning_rate must be finite"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate must be a real number"),
    (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
    (dict(epochs=-1), ValueError, "epochs must be >= 0"),
    (dict(epochs=1.5), TypeError, "epochs must be an integer"),
    (dict(momentum=1.0), ValueError, "momentum must be < 1"),
    (dict(momentum=-0.1), ValueError, "momentum must be >= 0"),
    (dict(weight_decay=-1e-3), ValueError, "weight_decay must be >= 0"),
    (dict(nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
    (dict(loss="hinge"), ValueError, "unknown loss 'hinge'"),
])
def test_bad_hyper_parameters_leave_weights_untouched(net, data, kwargs, exc, match):
    before = net.parameters.tobytes()
    with pytest.raises(exc, match=match):
        net.fit(*data, **kwargs)
    assert net.parameters.tobytes() == before


@pytest.mark.parametrize("make,exc,match", [
    (lambda X, y: (X[:, :2], y), ValueError, "X has 2 columns but the network has 3 inputs"),
    (lambda X, y: (X[0], y), ValueError, r"X must be 2-D \(n_rows, n_inputs\), got shape \(3,\); for one row"),
    (lambda X, y: (X[None], y), ValueError, "X must be 2-D"),
    (lambda X, y: (X[:0], y[:0]), ValueError, "X has no rows"),
    (lambda X, y: (X, y[:5]), ValueError, "X has 10 rows but y has 5"),
    (lambda X, y: (X, y[:, :1]), ValueError, "y has 1 columns but the network has 2 outputs"),
    (lambda X, y: (X, y[:, 0]), ValueError, "y is 1-D but the network has 2 outputs"),
    (lambda X, y: (X, np.full(10, 7)), ValueError, r"y\[0\] = 7 is not a class label in \[0, 2\)"),
    (lambda X, y: (X.astype(object), y), TypeError, "X must hold real numbers, got an array of dtype object"),
    (lambda X, y: (X.astype(complex), y), TypeError, "X must hold real numbers"),
    (lambda X, y: (np.where(np.arange(30).reshape(10, 3) == 13, np.nan, X), y), ValueError,
     r"X holds a non-finite value \(nan\) at row 4, column 1"),
    (lambda X, y: (X, np.where(np.arange(20).reshape(10, 2) == 5, np.inf, y)), ValueError,
     r"y holds a non-finite value \(inf\) at row 2, column 1"),
])
def test_bad_data_everywhere(net, data, make, exc, match):
    X, y = make(*data)
    before = net.parameters.tobytes()
    for call in (lambda: net.fit(X, y), lambda: net.evaluate(X, y), lambda: net.partial_fit(X, y),
                 lambda: net.gradient(X, y)):
        with pytest.raises(exc, match=match):
            call()
    if "y" not in match and "class label" not in match and "rows but y" not in match:
        with pytest.raises(exc, match=match):
            net.predict(X)
    assert net.parameters.tobytes() == before


def test_bad_train_step_rows(net):
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"x must hold one row of 3 values, got shape \(2,\)"):
        net.train_step([1.0, 2.0], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"y must hold one row of 2 values"):
        net.train_step([1.0, 2.0, 3.0], [0.0])
    with pytest.raises(ValueError, match=r"x holds a non-finite value \(nan\) at index 1"):
        net.train_step(np.array([1.0, np.nan, 3.0], dtype=np.float32), [0.0, 0.0])
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        net.train_step([1.0, 2.0, 3.0], [0.0, 0.0], learning_rate=-1.0)
    assert net.parameters.tobytes() == before


def test_bad_weights(net, rng):
    before = net.parameters.tobytes()
    good = net.get_weights()
    with pytest.raises(ValueError, match="expected weights for 2 layers, got 1"):
        net.set_weights(good[:1])
    with pytest.raises(ValueError, match=r"weights\[1\] W has shape \(3, 4\), expected \(2, 4\)"):
        net.set_weights([good[0], (rng.normal(size=(3, 4)), good[1][1])])
    with pytest.raises(ValueError, match=r"weights\[0\] b holds a non-finite value"):
        net.set_weights([(good[0][0], np.array([0, np.nan, 0, 0])), good[1]])
    with pytest.raises(TypeError, match=r"weights\[0\] must be a pair"):
        net.set_weights([good[0][0], good[1]])
    with pytest.raises(ValueError, match=r"flat parameters has shape \(25,\), expected \(26,\)"):
        net.set_parameters(np.zeros(25))
    assert net.parameters.tobytes() == before


def test_weights_too_large_for_float32_are_refused_before_any_layer_is_written(net):
    """Found by tests/test_adversarial_api.py: 1e39 in a later layer was cast to inf (with a warning) after the
    earlier layers had already been written."""
    good = net.get_weights()
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"weights\[1\] b holds 1e\+39 at index 0, which does not fit in float32"):
        net.set_weights([(good[0][0] * 2, good[0][1]), (good[1][0], np.array([1e39, 0.0]))])
    with pytest.raises(ValueError, match=r"flat parameters holds -1e\+39 at index 3 \(layers\[0\] W\[1, 0\]\), "
                                         r"which does not fit in float32"):
        net.set_parameters(np.where(np.arange(net.n_params) == 3, -1e39, 0.0))
    with pytest.raises(TypeError, match="flat parameters must hold real numbers"):
        net.set_parameters(np.zeros(net.n_params, dtype=complex))
    assert net.parameters.tobytes() == before


def test_divergence_raises_and_keeps_finite_weights(rng):
    X = rng.normal(size=(500, 3)) * 100
    y = rng.normal(size=(500, 1)) * 1e4
    net = af.Network(3, [af.Dense(16, "relu"), af.Dense(1, "linear")], seed=0)
    initial = net.get_weights()
    with pytest.raises(af.DivergenceError, match="lower the learning rate"):
        net.fit(X, y, epochs=50, learning_rate=10.0)
    assert np.all(np.isfinite(net.parameters))
    # the network is still usable
    net.set_weights(initial)
    net.fit(X / 100, y / 1e4, epochs=1, learning_rate=1e-3)
    assert np.all(np.isfinite(net.predict(X / 100)))
    assert issubclass(af.DivergenceError, FloatingPointError)


def test_divergence_in_train_step_and_minibatch_keeps_finite_weights():
    net = af.Network(2, [af.Dense(8, "relu"), af.Dense(1)], seed=0)
    x, y = np.array([1e3, -1e3]), np.array([1e6])
    with pytest.raises(af.DivergenceError):
        for _ in range(100):
            net.train_step(x, y, learning_rate=100.0)
    assert np.all(np.isfinite(net.parameters))
    net = af.Network(2, [af.Dense(8, "relu"), af.Dense(1)], seed=0)
    X = np.tile(x, (64, 1))
    Y = np.tile(y, (64, 1))
    with pytest.raises(af.DivergenceError):
        net.fit(X, Y, epochs=100, learning_rate=100.0, batch_size=8)
    assert np.all(np.isfinite(net.parameters))


def test_value_too_large_for_float32_is_reported_not_turned_into_inf(net):
    X = np.zeros((4, 3))
    X[2, 1] = 1e39                      # finite in float64, inf in float32
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"X holds 1e\+39 at row 2, column 1, which does not fit in float32"):
        net.fit(X, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="does not fit in float32"):
        net.predict(X)
    assert net.parameters.tobytes() == before


# ---- issue 18: every setting and input refused before the first update --------------------------------

@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(learning_rate=float("inf")), ValueError, "learning_rate must be finite"),
    (dict(learning_rate=True), TypeError, "learning_rate must be a real number"),
    (dict(learning_rate="0.1"), TypeError, "learning_rate must be a real number"),
    (dict(weight_decay=float("inf")), ValueError, "weight_decay must be finite"),
    (dict(momentum=True), TypeError, "momentum must be a real number"),
    (dict(momentum=float("nan")), ValueError, "momentum must be finite"),
    (dict(nesterov=1), TypeError, "nesterov must be True or False"),
])
def test_train_step_checks_its_settings_exactly_as_fit_does(net, data, kwargs, exc, match):
    before = net.parameters.tobytes()
    with pytest.raises(exc, match=match):
        net.fit(*data, **kwargs)
    for x, y in ((data[0][0], data[1][0]), (list(data[0][0]), list(data[1][0]))):   # fast path and converted
        with pytest.raises(exc, match=match):
            net.train_step(x, y, **kwargs)
    assert net.parameters.tobytes() == before


@pytest.mark.parametrize("call", ["predict", "predict_one", "train_step", "evaluate", "gradient", "fit"])
@pytest.mark.parametrize("dtype", ["datetime64[s]", "timedelta64[s]", "complex128", "object", "U3"])
def test_every_entry_point_converts_its_input_the_same_way(net, call, dtype):
    X = np.zeros((4, 3)).astype(dtype) if dtype != "object" else np.full((4, 3), None)
    row = X[0]
    Y = np.zeros((4, 2))
    args = {"predict": (X,), "predict_one": (row,), "train_step": (row, Y[0]), "evaluate": (X, Y),
            "gradient": (X, Y), "fit": (X, Y)}[call]
    before = net.parameters.tobytes()
    with pytest.raises(TypeError, match=r"(X|x) must hold real numbers, got an array of dtype"):
        getattr(net, call)(*args)
    assert net.parameters.tobytes() == before


def test_bad_callbacks_are_refused_up_front_and_history_is_kept(net, data):
    net.fit(*data, epochs=1)
    hist, before = net.history, net.parameters.tobytes()
    with pytest.raises(TypeError, match=r"callbacks\[1\] is int 1, not a callback"):
        net.fit(*data, epochs=2, callbacks=[af.callbacks.Callback(), 1])
    with pytest.raises(TypeError, match="callbacks must be a list of callbacks"):
        net.fit(*data, callbacks=5)
    assert net.history is hist and net.parameters.tobytes() == before

    class OnlyEpochEnd:                        # duck-typed: only the methods it has are called
        def __init__(self):
            self.epochs = []

        def on_epoch_end(self, epoch, logs):
            self.epochs.append(epoch)
    cb = OnlyEpochEnd()
    net.fit(*data, epochs=2, callbacks=[cb])
    assert cb.epochs == [0, 1]


def test_early_stopping_on_a_metric_training_does_not_report_fails_before_training(net, data):
    before = net.parameters.tobytes()
    reports = r"EarlyStopping monitors 'val_loss' but training reports only \['loss', 'lr'\]"
    with pytest.raises(ValueError, match=reports):
        net.fit(*data, epochs=3, callbacks=[af.EarlyStopping(monitor="val_loss")])
    assert net.parameters.tobytes() == before and net.history is None
    net.fit(*data, epochs=2, validation_split=0.2, callbacks=[af.EarlyStopping(monitor="val_loss")])


@pytest.mark.parametrize("verbose", [1, 2])
def test_verbose_without_stderr_trains_silently(net, data, verbose, monkeypatch):
    monkeypatch.setattr("sys.stderr", None)
    hist = net.fit(*data, epochs=2, verbose=verbose)
    assert len(hist) == 2


def test_fit_from_a_callback_of_the_same_network_is_a_clear_error(net, data):
    class Nested(af.callbacks.Callback):
        def on_epoch_end(self, epoch, logs):
            self.network.fit(*data, epochs=1, n_threads=2)
    with pytest.raises(RuntimeError, match="called on a network while its own fit runs"):
        net.fit(*data, epochs=2, n_threads=2, callbacks=[Nested()])
    net.fit(*data, epochs=1, n_threads=2)      # the network and its threads still work
    net.fit(*data, epochs=1)


# ---- issue 18: targets must fit the loss -----------------------------------------------------------

@pytest.fixture
def sigmoid_net():
    return af.Network(3, [af.Dense(4, "tanh"), af.Dense(2, "sigmoid")], seed=0, loss="cross_entropy")


@pytest.fixture
def softmax_net():
    return af.Network(3, [af.Dense(4, "tanh"), af.Dense(3, "softmax")], seed=0)


def _calls(net, X, Y, tmp_path):
    np.save(tmp_path / "Y.npy", Y)
    return {
        "fit": lambda: net.fit(X, Y),
        "partial_fit": lambda: net.partial_fit(X, Y),
        "validation_data": lambda: net.fit(X, np.clip(Y, 0, 1) / np.clip(Y, 0, 1).sum(1, keepdims=True).clip(1)
                                           if net.layers[-1].activation == "softmax" else np.clip(Y, 0, 1),
                                           validation_data=(X, Y)),
        "memmap_y": lambda: net.fit(X, np.load(tmp_path / "Y.npy", mmap_mode="r")),
        "chunks": lambda: net.fit([(X, Y)], None),
        "train_step": lambda: [net.train_step(x, t) for x, t in zip(X, Y)],
        "evaluate": lambda: net.evaluate(X, Y),
        "gradient": lambda: net.gradient(X, Y),
    }


@pytest.mark.parametrize("call", ["fit", "partial_fit", "validation_data", "memmap_y", "chunks", "train_step",
                                  "evaluate", "gradient"])
def test_cross_entropy_targets_outside_0_1_are_refused_everywhere(sigmoid_net, call, tmp_path, rng):
    X = rng.normal(size=(5, 3))
    Y = np.zeros((5, 2))
    Y[3] = [-5, 6]
    before = sigmoid_net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"holds -5\.0 at row 3, column 0, but cross_entropy needs targets in "
                                         r"\[0, 1\]" if call != "train_step" else r"holds -5\.0 at row 0"):
        _calls(sigmoid_net, X, Y, tmp_path)[call]()
    if call != "train_step":     # train_step trains the good rows before the bad one, each checked first
        assert sigmoid_net.parameters.tobytes() == before


@pytest.mark.parametrize("call", ["fit", "partial_fit", "validation_data", "memmap_y", "chunks", "train_step",
                                  "evaluate", "gradient"])
def test_softmax_target_rows_must_sum_to_one(softmax_net, call, tmp_path, rng):
    X = rng.normal(size=(5, 3))
    Y = np.tile([0.2, 0.3, 0.5], (5, 1))
    Y[2] = [1, 1, 1]
    before = softmax_net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"row (2|0) of y(_val)? sums to 3, but cross_entropy after a softmax"):
        _calls(softmax_net, X, Y, tmp_path)[call]()
    if call != "train_step":
        assert softmax_net.parameters.tobytes() == before


def test_labels_beyond_one_on_a_single_sigmoid_output_are_refused(rng):
    net = af.Network(3, [af.Dense(1, "sigmoid")], seed=0, loss="cross_entropy")
    X = rng.normal(size=(6, 3))
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"y holds 2\.0 at row 2, column 0, but cross_entropy needs targets"):
        net.fit(X, np.array([0, 1, 2, 0, 1, 2]))
    with pytest.raises(ValueError, match="cross_entropy needs targets in"):
        net.train_step(X[0], 2)
    assert net.parameters.tobytes() == before
    net.fit(X, np.array([0, 1, 1, 0, 1, 0]))                       # 0/1 labels and
    net.fit(X, np.array([0.1, 0.9, 1.0, 0.0, 0.5, 0.5]))         # probabilities are fine
    # the half squared error takes any target, also on a sigmoid output
    net.fit(X, np.array([0, 1, 2, 0, 1, 2]), loss="half_squared_error")


# ---- issue 18: divergence with momentum leaves a usable velocity ----------------------------------------

def _diverging(rng):
    X = rng.normal(size=(200, 3)) * 100
    return X, X @ np.array([[3e3], [-2e3], [1e3]])


@pytest.mark.parametrize("kwargs", [dict(), dict(batch_size=8), dict(nesterov=True), dict(n_threads=2),
                                    dict(n_threads=2, batch_size=4)], ids=str)
def test_training_after_divergence_with_momentum_works(rng, kwargs):
    """After a DivergenceError the velocity is finite (restored with the weights, or zero), so a fit with a
    sane learning rate trains instead of diverging at once."""
    X, y = _diverging(rng)
    net = af.Network(3, [af.Dense(16, "relu"), af.Dense(1)], seed=0)
    net.fit(X / 100, y / 1e5, epochs=1, learning_rate=1e-3, momentum=0.9)      # a finite velocity to keep
    params = net.parameters.copy()
    # so large a step that the weights overflow: they go back to the start of the epoch (serial) or were
    # never merged (threads), not to a huge "before that row"
    with pytest.raises(af.DivergenceError, match="restored to their values at the start|finite but mid-epoch"):
        net.fit(X, y, epochs=20, learning_rate=1e10, momentum=0.9, shuffle=False, **kwargs)
    assert np.abs(net.parameters).max() <= np.abs(params).max()
    assert np.isfinite(net._engine.velocity).all()
    hist = net.fit(X / 100, y / 1e5, epochs=2, learning_rate=1e-4, momentum=0.9, **kwargs)
    assert np.isfinite(hist.history["loss"]).all() and np.isfinite(net.parameters).all()


def test_velocity_goes_back_with_the_weights(rng):
    X, y = _diverging(rng)
    net = af.Network(3, [af.Dense(16, "relu"), af.Dense(1)], seed=0)
    net.fit(X / 100, y / 1e5, epochs=1, learning_rate=1e-3, momentum=0.9)
    params, velocity = net.parameters.tobytes(), net._engine.velocity.tobytes()
    # train_step: a diverging row leaves the weights and the velocity exactly as before it
    with pytest.raises(af.DivergenceError, match="the weights and the velocity were restored"):
        net.train_step(np.array([1e30, 1e30, 1e30]), np.array([1e30]), learning_rate=1e30, momentum=0.9)
    assert net.parameters.tobytes() == params and net._engine.velocity.tobytes() == velocity
    # fit: weights restored to the start of the call come with the velocity of that moment
    with pytest.raises(af.DivergenceError, match="restored to their values at the start") as err:
        net.fit(X, y, epochs=50, learning_rate=1e10, momentum=0.9, shuffle=False)
    assert net.parameters.tobytes() == params, err.value
    assert net._engine.velocity.tobytes() == velocity
    # partial_fit is fit
    with pytest.raises(af.DivergenceError):
        net.partial_fit(X, y, learning_rate=1e3, momentum=0.9)
    assert np.isfinite(net._engine.velocity).all()


# ---- values that overflow the network's dtype (issue 18, item 3) --------------------------------------
# A finite float64 value beyond float32's range used to become inf with a RuntimeWarning ("overflow
# encountered in cast"); every narrowing of user numbers now goes through _validation.cast_finite.

@pytest.mark.parametrize("big", [1e39, 1e300, -1e300])
def test_set_weights_refuses_values_that_overflow_float32(net, big):
    before = net.parameters.tobytes()
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in net.get_weights()]
    weights[1][0][1, 2] = big
    with pytest.raises(ValueError, match=r"weights\[1\] W holds .* at row 1, column 2, which does not fit in float32"):
        net.set_weights(weights)
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in net.get_weights()]
    weights[0][1][3] = big
    with pytest.raises(ValueError, match=r"weights\[0\] b holds .* at index 3, which does not fit in float32"):
        net.set_weights(weights)
    assert net.parameters.tobytes() == before


@pytest.mark.parametrize("big", [1e39, 1e300, -3.5e38])
def test_set_parameters_refuses_values_that_overflow_float32(net, big):
    before = net.parameters.tobytes()
    flat = net.parameters.astype(np.float64)
    flat[17] = big                        # layers[0]: W is 4 x 3 (0..11), b 12..15; layers[1] W[0, 1] is 17
    with pytest.raises(ValueError, match=r"index 17 \(layers\[1\] W\[0, 1\]\), which does not fit in float32"):
        net.set_parameters(flat)
    flat = net.parameters.astype(np.float64)
    flat[13] = big
    with pytest.raises(ValueError, match=r"index 13 \(layers\[0\] b\[1\]\)"):
        net.set_parameters(flat)
    assert net.parameters.tobytes() == before


def test_largest_float32_values_are_still_accepted(net):
    flat = np.full(net.n_params, float(np.finfo(np.float32).max))
    net.set_parameters(flat)
    assert np.isfinite(net.parameters).all()


@pytest.mark.skipif(np.finfo(np.longdouble).max <= np.finfo(np.float64).max, reason="long double is float64 here")
def test_long_double_that_overflows_float64_is_refused():
    net = af.Network(2, [af.Dense(1)], dtype="float64", seed=0)
    before = net.parameters.tobytes()
    flat = np.zeros(net.n_params, dtype=np.longdouble)
    flat[1] = np.longdouble("1e400")
    with pytest.raises(ValueError, match=r"index 1 .* which does not fit in float64"):
        net.set_parameters(flat)
    with pytest.raises(ValueError, match=r"weights\[0\] W holds 1e\+400 at row 0, column 1"):
        net.set_weights([(flat[:2].reshape(1, 2), np.zeros(1))])
    assert net.parameters.tobytes() == before


def test_regressor_coefs_beyond_float32_are_an_error_not_inf():
    exceptions = pytest.importorskip("sklearn.exceptions")
    from annfast.sklearn import ANNRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = rng.normal(size=30) * 1e100        # finite in float64; y_scale_ is far beyond float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", exceptions.ConvergenceWarning)    # 2 epochs: not converged
        reg = ANNRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y)
    assert np.isfinite(reg.predict(X)).all()
    with pytest.raises(ValueError, match=r"coefs_\[-1\] holds .* which does not fit in float32"):
        _ = reg.coefs_
    with pytest.raises(ValueError, match=r"intercepts_\[-1\] holds .* which does not fit in float32"):
        _ = reg.intercepts_


class _Frame:
    """The little of a pandas DataFrame that annfast looks at: columns, dtypes, column access, __array__."""

    def __init__(self, columns: dict):
        self._cols = columns
        self.columns = list(columns)
        self.dtypes = [np.asarray(v).dtype for v in columns.values()]

    def __getitem__(self, key):
        return self._cols[key]

    def __array__(self, dtype=None, copy=None):
        return np.array(list(zip(*self._cols.values())), dtype=object)


def test_dataframe_with_a_string_column_is_named():
    net = af.Network(2, [af.Dense(1)], seed=0)
    frame = _Frame({"area": [50.0, 70.0], "city": np.array(["Oslo", "Rome"], dtype=object)})
    with pytest.raises(TypeError, match=r"X column 'city' holds strings; annfast needs numbers"):
        net.fit(frame, [1.0, 2.0])
    with pytest.raises(TypeError, match=r"X column 'city' holds strings"):
        net.predict(frame)


def test_pandas_dataframe_with_a_string_column_is_named():
    pd = pytest.importorskip("pandas")
    net = af.Network(2, [af.Dense(1)], seed=0)
    frame = pd.DataFrame({"area": [50.0, 70.0], "city": ["Oslo", "Rome"]})
    before = net.parameters.tobytes()
    with pytest.raises(TypeError, match=r"X column 'city' holds strings; annfast needs numbers"):
        net.fit(frame, pd.Series([1.0, 2.0]))
    assert net.parameters.tobytes() == before
    net.fit(pd.DataFrame({"area": [50.0, 70.0], "rooms": [1, 2]}), pd.Series([1.0, 2.0]))   # numbers pass


# ---- a non-finite loss in evaluate, gradient and mini-batch fit -----------------------------------------
# af_loss_rows and af_gradient_rows stop at the first row whose loss is not finite and report it; evaluate and
# gradient raise DivergenceError naming that row of X and change nothing. The network below overflows on the
# rows with x[0] == 1 only: its first layer's column 0 is half the dtype's largest value, relu passes that on,
# and the output sums four such units with weights of 1 (past the largest value: inf). Rows with x[0] == 0 have
# finite losses, and training on them leaves column 0 as it is (its gradient is x[0] times a delta: 0).
# "small": 3 inputs, every call one chunk. "chunked": 400 inputs and 256 units (about 100,000 parameters), so
# evaluate, gradient and fit work in chunks of a few dozen rows (rows of the later chunks are named by their
# index in X, not in the chunk), and a mini-batch of 128 rows is summed by af_gradient_rows in chunks.
# Every kernel variant has its own copy of these paths: each is a parameter (skipped where the CPU lacks it).
OVERFLOW_NETS = {"small": (3, 4), "chunked": (400, 256)}
KERNEL_PARAMS = [pytest.param(k, marks=pytest.mark.skipif(not _core.isa_supported(code),
                                                          reason=f"this CPU cannot run the {k} kernel"))
                 for k, code in KERNELS.items()]


def overflowing_net(dtype, kernel, shape="small"):
    n_in, hidden = OVERFLOW_NETS[shape]
    net = af.Network(n_in, [af.Dense(hidden, "relu"), af.Dense(2, "linear")], dtype=dtype, seed=5)
    net.kernel = kernel
    (W1, b1), (W2, b2) = net.get_weights()
    W1 = W1.astype(np.float64)
    W1[:, 0] = float(np.finfo(dtype).max) / 2
    net.set_weights([(W1, b1), (np.ones_like(W2), b2)])
    return net


def overflowing_rows(net, n_rows, bad, rng):
    """X, Y of n_rows rows whose losses are finite except those of the rows in bad."""
    X = rng.normal(size=(n_rows, net.n_inputs))
    X[:, 0] = 0.0
    X[list(bad), 0] = 1.0
    return X, rng.normal(size=(n_rows, 2))


# (net, rows, rows whose loss is inf): the first of those is the one to name. 40 rows: blocks of 16 rows (the
# blocked path), row 21 in the second block, row 37 in the last, short block; 1 and 7 rows: fewer than a block,
# one row at a time; 300 rows of the chunked net: the bad row in a later chunk.
OVERFLOW_CASES = {"blocked-row21": ("small", 40, [21, 30]), "blocked-tail-row37": ("small", 40, [37]),
                  "blocked-row0": ("small", 40, [0, 1]), "one-row": ("small", 1, [0]),
                  "rows-below-a-block-row5": ("small", 7, [5, 6]), "chunked-row251": ("chunked", 300, [251, 290])}


@pytest.mark.parametrize("case", OVERFLOW_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("call", ["evaluate", "gradient"])
@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
def test_non_finite_loss_in_evaluate_and_gradient_names_the_row_and_changes_nothing(kernel, call, dtype, case, rng):
    shape, n_rows, bad = OVERFLOW_CASES[case]
    net = overflowing_net(dtype, kernel, shape)
    X, Y = overflowing_rows(net, n_rows, bad, rng)
    before = net.parameters.tobytes()
    with pytest.raises(af.DivergenceError) as err:
        getattr(net, call)(X, Y)
    assert type(err.value) is af.DivergenceError
    assert str(err.value) == (f"non-finite loss at row {bad[0]}: the weights or that row hold values too large "
                              f"for the network's precision")
    assert net.parameters.tobytes() == before
    # the other rows' losses are finite: the error is that row's, and the network is still usable
    good = np.setdiff1d(np.arange(n_rows), bad)
    if len(good):
        assert np.isfinite(net.evaluate(X[good], Y[good]))
        assert np.all(np.isfinite(net.gradient(X[good], Y[good])))
        assert net.parameters.tobytes() == before


# (net, rows, batch_size, bad row, rows trained before its batch)
MINIBATCH_CASES = {"batch8-row21": ("small", 40, 8, 21, 16), "batch8-row16": ("small", 40, 8, 16, 16),
                   "batch8-row3": ("small", 40, 8, 3, 0),
                   "batch128-summed-in-chunks-row300": ("chunked", 400, 128, 300, 256)}


@pytest.mark.parametrize("case", MINIBATCH_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["plain", "momentum"])
@pytest.mark.parametrize("kernel", KERNEL_PARAMS)
def test_non_finite_loss_in_a_mini_batch_keeps_the_batches_before_it(kernel, momentum, dtype, case, rng):
    # annfast.h (af_train_rows): on a non-finite loss, batch_size > 1 stops before the update of that row's
    # batch, and every earlier update is whole. So the weights (and the velocity) after the error are those of
    # the same fit on the rows before that batch: bitwise, the same batches through the same kernels.
    shape, n_rows, batch_size, bad, kept = MINIBATCH_CASES[case]
    net = overflowing_net(dtype, kernel, shape)
    X, Y = overflowing_rows(net, n_rows, [bad], rng)
    kw = dict(epochs=1, learning_rate=1e-3, batch_size=batch_size, momentum=momentum, shuffle=False)
    with pytest.raises(af.DivergenceError) as err:
        net.fit(X, Y, **kw)
    assert type(err.value) is af.DivergenceError
    assert str(err.value).startswith(f"non-finite loss at row {bad} of X in epoch 0 (position {bad} of the "
                                     f"order); the weights are those from before that row."), str(err.value)
    want = overflowing_net(dtype, kernel, shape)
    if kept:
        want.fit(X[:kept], Y[:kept], **kw)
        assert want.parameters.tobytes() != overflowing_net(dtype, kernel, shape).parameters.tobytes()   # moved
    np.testing.assert_array_equal(net.parameters, want.parameters)
    if momentum and kept:
        np.testing.assert_array_equal(net._engine.velocity, want._engine.velocity)
    elif momentum:   # the first batch failed: no update, the velocity is still zero
        assert not np.any(net._engine.velocity)


def test_sgd_settings_are_checked_once_with_fits_messages():
    from annfast._settings import SGD
    s = SGD(0.1, momentum=0.5, weight_decay=1e-4, nesterov=np.bool_(True), batch_size=np.int64(8))
    assert s.step == (0.1, 0.5, 1e-4, True) and type(s.step[3]) is bool and type(s.batch_size) is int
    assert s.for_rows(5).batch_size == 5 and s.for_rows(None) is s and SGD(batch_size=None).for_rows(7).batch_size == 7
    assert s.at_rate(0.2).learning_rate == 0.2 and s.at_rate(0.1) is s
    assert s.as_dict() == dict(learning_rate=0.1, batch_size=8, momentum=0.5, nesterov=True, weight_decay=1e-4)
    net = af.Network(2, [af.Dense(1)], seed=0)
    X, y = np.zeros((4, 2)), np.zeros(4)
    for kw in (dict(learning_rate=0.0), dict(momentum=1.0), dict(weight_decay=-1.0), dict(nesterov=True),
               dict(nesterov="yes", momentum=0.5), dict(learning_rate=True), dict(batch_size=0)):
        with pytest.raises((TypeError, ValueError)) as fit_error:
            net.fit(X, y, **kw)
        with pytest.raises(type(fit_error.value), match=re.escape(str(fit_error.value))):
            SGD(**kw)
