"""Bad input gets the right exception type and a message that says what and where; nothing changes."""
import warnings

import numpy as np
import pytest

import annfast as af


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
    with pytest.raises(ValueError, match="learning_rate > 0"):
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
    with pytest.raises(ValueError, match=r"flat parameters must have shape \(26,\)"):
        net.set_parameters(np.zeros(25))
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
