"""Property-based attacks on the public entry points: any input either works or is refused cleanly.

Hypothesis drives Network construction, fit, partial_fit, train_step, predict, predict_one, evaluate,
gradient, set_weights, set_parameters and the scikit-learn estimators with generated shapes, dtypes
(float16/32/64, int, bool, complex, object, datetime, strings), NaN/inf/overflowing values at generated places
and settings of every kind (negative, zero, huge, bool, inf, NaN, strings, None). Each call must either
succeed or raise ValueError/TypeError (DivergenceError only where training or overflowing numerics may
legitimately give it); after an error the weights are bitwise those from before the call (after a
DivergenceError from training: finite); and no call warns (pytest turns warnings into errors).
"""
import math
import os

import numpy as np
import pytest
from conftest import QUICK

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import annfast as af  # noqa: E402

# ANNFAST_HYPOTHESIS_EXAMPLES overrides the count, for a longer hunt
EXAMPLES = int(os.environ.get("ANNFAST_HYPOTHESIS_EXAMPLES", 100 if QUICK else 400))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=QUICK,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint8", "bool", "complex128", "object",
          "datetime64[s]", "timedelta64[ms]", "U3"]
SPECIALS = [np.nan, np.inf, -np.inf, 1e39, -1e300, 0.0, -0.0, 1e-320]

# settings values of every kind: valid ones, and negative, zero, huge, bool, inf, NaN, strings, None
weird = st.one_of(
    st.sampled_from([0, -1, 1, 2, 0.5, -0.5, 1e-300, 1e300, float("inf"), float("-inf"), float("nan"), True, False,
                     None, "1", "", "0.1", np.float32(0.1), np.int64(1), np.bool_(True), 1 + 0j, [1], (0.1,)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 5),
)
small_int_like = st.sampled_from([0, 1, 2, 3, -1, 1.0, 2.5, True, False, None, "2", float("nan"), np.int64(2),
                                  10**12])


def _converted(base: np.ndarray, dtype: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        if dtype.startswith(("datetime64", "timedelta64")):
            return np.zeros(base.shape, dtype=dtype)
        if dtype == "object":
            return base.astype(object)
        if dtype == "U3":
            return base.astype("U3")
        if np.dtype(dtype).kind in "iub":
            return np.nan_to_num(base, nan=0, posinf=1, neginf=-1).clip(-100, 100).astype(dtype)
        return base.astype(dtype)


@st.composite
def arrays(draw, rows: int, cols: int | None, labels: int | None = None, unit=False):
    """Mostly the right shape; sometimes another one; any dtype; special values at drawn places."""
    shapes = [(rows, cols) if cols is not None else (rows,)] * 4 + [
        (rows,), (rows, (cols or 1) + 1), (0, cols or 1), (rows, cols or 1, 1), (), (rows + 1, cols or 1)]
    shape = draw(st.sampled_from(shapes))
    size = int(np.prod(shape, dtype=np.int64))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if labels is not None and draw(st.booleans()):
        base = rng.integers(0, labels, size=shape).astype(np.float64)
    elif unit:
        base = rng.random(size=shape)
    else:
        base = rng.normal(size=shape)
    if size and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            base.flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from(SPECIALS))
    dtype = draw(st.sampled_from(DTYPES[:2] * 4 + DTYPES))
    out = _converted(base, dtype)
    if draw(st.integers(0, 9)) == 0:                          # other containers: lists, non-contiguous views
        out = out.tolist() if out.ndim else out
    elif out.ndim == 2 and out.shape[1] > 1 and draw(st.booleans()):
        out = np.asfortranarray(out)
    return out


ARCHITECTURES = [
    (3, [("tanh", 4), ("linear", 2)], "half_squared_error"),
    (2, [("relu", 3), ("softmax", 3)], "cross_entropy"),
    (3, [("sigmoid", 1)], "cross_entropy"),
    (1, [("leaky_relu", 2), ("sigmoid", 2)], "half_squared_error"),
]


@st.composite
def networks(draw):
    n_in, layers, loss = draw(st.sampled_from(ARCHITECTURES))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    net = af.Network(n_in, [af.Dense(u, a) for a, u in layers], dtype=dtype, seed=draw(st.integers(0, 99)),
                     loss=loss)
    return net


def _attempt(net, call, training: bool):
    """Run call(); check the outcome contract; return True if it succeeded."""
    before = net.parameters.tobytes()
    try:
        call()
    except (ValueError, TypeError) as exc:
        assert not isinstance(exc, af.DivergenceError)
        assert str(exc), "an error must say what is wrong"
        assert net.parameters.tobytes() == before, f"weights changed by a refused call: {exc}"
        return False
    except af.DivergenceError:
        if training:
            assert np.isfinite(net.parameters).all()
            assert np.isfinite(net._engine.velocity).all()
        else:
            assert net.parameters.tobytes() == before
        return False
    assert np.isfinite(net.parameters).all()
    return True


fit_settings = st.fixed_dictionaries({}, optional={
    "learning_rate": weird, "momentum": weird, "weight_decay": weird, "nesterov": weird,
    "batch_size": small_int_like, "epochs": st.sampled_from([0, 1, 2, -1, 1.5, True, "2", None, float("nan")]),
    "shuffle": weird, "validation_split": weird, "verbose": st.sampled_from([0, 1, 2, 3, -1, True, 1.0, "1", None]),
    "n_threads": st.sampled_from([1, 2, 0, -2, True, 2.0, "2", None]), "sync_every": small_int_like,
    "hogwild": weird, "seed": weird, "loss": st.sampled_from([None, "half_squared_error", "cross_entropy", "mse", 3]),
    "shuffle_buffer": small_int_like,
    "callbacks": st.sampled_from([None, [], [1], "cb", [af.EarlyStopping(monitor="val_loss")],
                                  [af.EarlyStopping(monitor="loss", patience=0)], [af.callbacks.Callback], 5]),
})


@SETTINGS
@given(net=networks(), data=st.data(), kwargs=fit_settings, partial=st.booleans())
def test_fit_and_partial_fit(net, data, kwargs, partial):
    n = data.draw(st.integers(1, 12))
    X = data.draw(arrays(n, net.n_inputs))
    y = data.draw(arrays(n, net.n_outputs if data.draw(st.booleans()) else None, labels=net.n_outputs, unit=True))
    if data.draw(st.integers(0, 3)) == 0:
        kwargs["validation_data"] = data.draw(st.one_of(
            st.tuples(arrays(3, net.n_inputs), arrays(3, net.n_outputs, labels=net.n_outputs, unit=True)),
            st.sampled_from([(), "xy", (np.zeros((2, net.n_inputs)),), 1.0])))
    if partial:
        kwargs = {k: kwargs[k] for k in kwargs if k in ("learning_rate", "batch_size", "shuffle", "loss", "momentum",
                                                         "nesterov", "weight_decay", "n_threads")}
        ok = _attempt(net, lambda: net.partial_fit(X, y, **kwargs), training=True)
    else:
        ok = _attempt(net, lambda: net.fit(X, y, **kwargs), training=True)
    if ok:
        assert np.isfinite(net.predict(np.zeros((2, net.n_inputs)))).all() or net.dtype == np.float32


@SETTINGS
@given(net=networks(), data=st.data())
def test_fit_memory_mapped_and_chunked(net, data, tmp_path_factory):
    n = data.draw(st.integers(1, 12))
    X = np.asarray(data.draw(arrays(n, net.n_inputs)))
    y = np.asarray(data.draw(arrays(n, net.n_outputs, labels=net.n_outputs, unit=True)))
    if data.draw(st.booleans()) and X.dtype.kind not in "OUMm" and X.ndim:
        path = tmp_path_factory.mktemp("mm") / "X.npy"
        np.save(path, X)
        X = np.load(path, mmap_mode=data.draw(st.sampled_from(["r", "c"])))
        _attempt(net, lambda: net.fit(X, y, epochs=2, shuffle_buffer=data.draw(st.sampled_from([1, 3, None]))),
                 training=True)
    else:
        chunks = [(X, y)] * data.draw(st.integers(0, 2))
        source = chunks if data.draw(st.booleans()) else iter(chunks)
        _attempt(net, lambda: net.fit(source, None, epochs=data.draw(st.integers(1, 2))), training=True)


@SETTINGS
@given(net=networks(), data=st.data(), lr=weird, mu=weird, wd=weird, nest=weird)
def test_train_step(net, data, lr, mu, wd, nest):
    x = data.draw(arrays(1, net.n_inputs))
    x = x[0] if isinstance(x, np.ndarray) and x.ndim == 2 and len(x) and data.draw(st.booleans()) else x
    y = data.draw(st.one_of(arrays(1, net.n_outputs, labels=net.n_outputs, unit=True), weird,
                            st.integers(-2, 4)))
    kwargs = data.draw(st.fixed_dictionaries({}, optional={"learning_rate": st.just(lr), "momentum": st.just(mu),
                                                           "weight_decay": st.just(wd), "nesterov": st.just(nest)}))
    _attempt(net, lambda: net.train_step(x, y, **kwargs), training=True)


@SETTINGS
@given(net=networks(), data=st.data(), which=st.sampled_from(["predict", "predict_one", "evaluate", "gradient"]),
       loss=st.sampled_from([None, "half_squared_error", "cross_entropy", "hinge", 0]))
def test_inference(net, data, which, loss):
    n = data.draw(st.integers(1, 40))
    X = data.draw(arrays(n, net.n_inputs))
    if which == "predict":
        call = lambda: net.predict(X)  # noqa: E731
    elif which == "predict_one":
        x = X[0] if isinstance(X, (np.ndarray, list)) and len(np.shape(X)) and len(X) else X
        call = lambda: net.predict_one(x)  # noqa: E731
    else:
        y = data.draw(arrays(n, net.n_outputs, labels=net.n_outputs, unit=True))
        call = lambda: getattr(net, which)(X, y, loss=loss)  # noqa: E731
    before = net.parameters.tobytes()
    _attempt(net, call, training=False)
    assert net.parameters.tobytes() == before


@SETTINGS
@given(net=networks(), data=st.data())
def test_set_weights_and_parameters(net, data):
    shapes = [(W.shape, b.shape) for W, b in net.get_weights()]
    weights = []
    for ws, bs in shapes:
        W = data.draw(arrays(ws[0], ws[1]))
        b = data.draw(arrays(bs[0], None))
        weights.append(data.draw(st.sampled_from([(W, b), (W,), W, (W, b, b)])))
    if data.draw(st.booleans()):
        weights = weights[:-1] if data.draw(st.booleans()) else weights + weights[:1]
    _attempt(net, lambda: net.set_weights(weights), training=False)
    flat = data.draw(arrays(net.n_params, None))
    _attempt(net, lambda: net.set_parameters(flat), training=False)


@SETTINGS
@given(n_inputs=st.one_of(weird, st.integers(-2, 6)), units=st.one_of(weird, st.integers(-1, 5)),
       activation=st.sampled_from(["linear", "softmax", "sigmoid", "relu", "leaky_relu", "step", "tanh", "bogus", 1,
                                   None]),
       slope=weird, dtype=st.sampled_from(["float32", "float64", "float16", "int32", None, np.float32, "x", 3]),
       seed=weird, loss=st.sampled_from([None, "cross_entropy", "half_squared_error", "mae", 1]))
def test_network_construction(n_inputs, units, activation, slope, dtype, seed, loss):
    try:
        net = af.Network(n_inputs, [af.Dense(4, "tanh"), af.Dense(units, activation, negative_slope=slope)],
                         dtype=dtype, seed=seed, loss=loss)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        return
    assert np.isfinite(net.parameters).all() and net.n_params == net.parameters.shape[0]
    assert isinstance(net.n_inputs, int) and math.isfinite(net.layers[-1].negative_slope)


sklearn = pytest.importorskip("sklearn")


estimator_params = st.fixed_dictionaries({}, optional={
    "hidden_layer_sizes": st.sampled_from([(3,), (), 2, (0,), (2.5,), "wide", None, (True,)]),
    "learning_rate_init": weird, "momentum": weird, "alpha": weird, "tol": weird,
    "batch_size": st.sampled_from([1, 2, "auto", None, 0, -1, True, 1.5, "x"]),
    "max_iter": st.sampled_from([1, 2, 0, -1, True, 2.0, None]),
    "validation_fraction": weird, "early_stopping": weird, "shuffle": weird, "warm_start": weird,
    "n_iter_no_change": st.sampled_from([1, 0, True, 1.5]), "dtype": st.sampled_from(["float32", "float64", None, 3]),
    "verbose": st.sampled_from([0, True, False, 3, "1"]),
})


def _estimator_state(est):
    net = getattr(est, "network_", None)
    return (None if net is None else net.parameters.tobytes(),
            {k: repr(v) for k, v in vars(est).items() if k.endswith("_") and k != "network_"})


@SETTINGS
@given(data=st.data(), params=estimator_params, classifier=st.booleans(), partial=st.booleans())
def test_estimators(data, params, classifier, partial):
    import warnings

    from sklearn.exceptions import ConvergenceWarning, DataConversionWarning

    from annfast.sklearn import ANNClassifier, ANNRegressor

    est = (ANNClassifier if classifier else ANNRegressor)(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    rng = np.random.default_rng(0)
    Xg, yg = rng.normal(size=(20, 3)), rng.integers(0, 3, size=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xg, yg)
    est.set_params(**params)
    n = data.draw(st.integers(1, 12))
    X = data.draw(arrays(n, 3))
    y = data.draw(arrays(n, None, labels=3))
    state = _estimator_state(est)
    try:
        with warnings.catch_warnings():
            # the two warnings scikit-learn's own contract asks for (max_iter reached; a column-vector y given
            # to a classifier, which its estimator checks require); every other warning stays an error
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", DataConversionWarning)
            if partial:
                est.partial_fit(X, y)
            else:
                est.fit(X, y)
    except (ValueError, TypeError, af.DivergenceError) as exc:
        assert str(exc)
        assert _estimator_state(est) == state, exc
        return
    assert np.isfinite(est.network_.parameters).all()
    Xp = data.draw(arrays(4, 3))
    before = est.network_.parameters.tobytes()
    for method in ("predict", "score") if not classifier else ("predict", "predict_proba", "score"):
        try:
            getattr(est, method)(*((Xp, y[:4] if np.ndim(y) and len(y) >= 4 else y) if method == "score" else (Xp,)))
        except (ValueError, TypeError) as exc:
            assert str(exc)
        assert est.network_.parameters.tobytes() == before
