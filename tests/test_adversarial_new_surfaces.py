"""Adversarial regression tests for the surfaces new in this release: sample and class weights, snapshot/restore,
the fast predict path under concurrent writers, and the estimators' sample_weight.

Each test is a problem found by probing these surfaces: the input, and what must hold (README "Guarantees": bad
input gets a clear error naming what and where, raised before any weight changes; nothing silently corrupted).
"""
import dataclasses
import warnings

import numpy as np
import pytest

import annfast as af
from annfast import _validation


def _net(dtype="float32", n_in=4, hidden=5, n_out=3, out="softmax", seed=1):
    return af.Network(n_in, [af.Dense(hidden, "tanh"), af.Dense(n_out, out)], dtype=dtype, seed=seed)


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---- class_weight too large for the network's dtype ------------------------------------------------------------

def test_class_weight_too_large_for_float32_is_refused_not_inf():
    """class_weight={0: 1e308} in a float32 network: was a RuntimeWarning (overflow in cast), inf row weights and a
    DivergenceError after training; now a ValueError naming class_weight before anything changes."""
    X, y = _data()
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="class_weight holds 1e\\+308 .* does not fit in float32"):
        net.fit(X, y, class_weight={0: 1e308})
    assert np.array_equal(net.parameters, before)


def test_class_weight_too_large_is_refused_before_streamed_rows_train(tmp_path):
    """Streamed data (memory-mapped X, chunks) apply class weights per buffer: a weight too large for float32 trained
    the buffers before the first row of that class and then diverged; it must be refused before the first update."""
    X, y = _data()
    path = tmp_path / "X.npy"
    np.save(path, X.astype(np.float32))
    mX = np.load(path, mmap_mode="r")
    chunks = [(X[i:i + 5], y[i:i + 5]) for i in range(0, 20, 5)]
    for data, target in ((mX, y), (chunks, None)):
        net = _net()
        before = net.parameters.copy()
        with pytest.raises(ValueError, match="class_weight holds 1e\\+308"):
            net.fit(data, target, class_weight={1: 1e308})
        assert np.array_equal(net.parameters, before)


@pytest.mark.parametrize("dtype, big", [("float32", 1e30), ("float64", 1e300)])
def test_sample_weight_times_class_weight_overflow_is_refused(dtype, big):
    """Each fine alone, their product overflows (float32: 1e60; float64: inf): was inf weights with a RuntimeWarning
    and a DivergenceError; now a ValueError saying which product, weights unchanged."""
    X, y = _data()
    net = _net(dtype)
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="sample_weight times class_weight holds"):
        net.fit(X, y, class_weight={0: big}, sample_weight=np.full(20, big))
    assert np.array_equal(net.parameters, before)


def test_balanced_counts_only_training_rows_with_validation_split():
    """Documented: "balanced" is n_rows / (n_classes * rows of the class) over the *training* rows. With
    validation_split it counted the held-out validation rows too."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 4))
    y = np.r_[np.zeros(18, int), np.ones(2, int), np.ones(20, int)]   # training half: 18 of class 0, 2 of class 1
    a, b = _net(n_out=2), _net(n_out=2)
    a.fit(X, y, validation_split=0.5, class_weight="balanced", shuffle=False)
    b.fit(X[:20], y[:20], validation_data=(X[20:], y[20:]), class_weight="balanced", shuffle=False)
    assert np.array_equal(a.parameters, b.parameters)


# ---- chunk errors name the chunk ----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["y", "w"])
def test_chunk_type_errors_name_the_chunk(bad):
    """A chunk (X, None, w) or (X, y, None) gave "y/sample_weight must hold real numbers" without saying which chunk
    (ValueErrors did say it; TypeErrors did not)."""
    X, y = _data()
    chunks = [(X[i:i + 5], y[i:i + 5], np.ones(5)) for i in range(0, 20, 5)]
    chunks[2] = (X[10:15], None, np.ones(5)) if bad == "y" else (X[10:15], y[10:15], None)
    with pytest.raises(TypeError, match=r"chunk 2 \(rows 10 onwards\): .* must hold real numbers"):
        _net().fit(chunks, None)


# ---- train_step's sample_weight ---------------------------------------------------------------------------------

def test_train_step_array_of_weights_says_one_number():
    """train_step(x, y, sample_weight=array of 20) said "sample_weight must be 1-D (one weight per row), got shape
    (1, 20)": it is 1-D; the problem is that a row has one weight."""
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="weight of its one row, a number, got 20 values"):
        net.train_step(np.ones(4), 1, sample_weight=np.ones(20))
    assert np.array_equal(net.parameters, before)
    net.train_step(np.ones(4), 1, sample_weight=np.array([2.0]))   # one value in any shape is still fine


# ---- snapshot / restore -------------------------------------------------------------------------------------------

def test_restore_refuses_a_snapshot_of_another_architecture_with_as_many_parameters():
    """2-3-1 and 4-2-1 both have 13 parameters: the snapshot of one went silently into the other."""
    a = af.Network(2, [af.Dense(3, "tanh"), af.Dense(1, "sigmoid")], seed=1)
    b = af.Network(4, [af.Dense(2, "relu"), af.Dense(1, "linear")], seed=2)
    assert a.n_params == b.n_params
    before = b.parameters.copy()
    with pytest.raises(ValueError, match="another architecture"):
        b.restore(a.snapshot())
    assert np.array_equal(b.parameters, before)


def _forged(**changes):
    return dataclasses.replace(_net(seed=9).snapshot(), **changes)


@pytest.mark.parametrize("changes, exc, match", [
    (dict(rng={"bit_generator": "nope"}), ValueError, "random stream state"),
    (dict(params=np.full(43, np.nan, np.float32)), ValueError, "parameters holds a non-finite value"),
    (dict(velocity=np.full(43, 1e300)), ValueError, "velocity holds 1e\\+300"),
    (dict(loss="bogus"), ValueError, "unknown loss 'bogus'"),
    (dict(params=[0.0] * 43), TypeError, "parameters must be an array"),
    (dict(history=42), TypeError, "history must be a History"),
    (dict(stop_training="yes"), TypeError, "stop_training must be True or False"),
])
def test_restore_of_a_forged_snapshot_changes_nothing(changes, exc, match):
    """A bad random-stream state raised after the weights were already written; NaN parameters or a velocity too
    large for float32 were put in silently; a bad loss raised KeyError, a list AttributeError."""
    net = _net(seed=5)
    before = net.parameters.copy()
    with pytest.raises(exc, match=match):
        net.restore(_forged(**changes))
    assert np.array_equal(net.parameters, before)
    assert np.isfinite(net.predict(np.ones((1, 4)))).all()


# ---- an array changed by another thread while it is checked --------------------------------------------------------

def test_array_finite_again_after_the_check_found_non_finite(monkeypatch):
    """predict(X) while another thread writes NaN into X and back: the C scan saw a NaN, the search for it found none,
    and predict raised IndexError("index 0 is out of bounds"). Now a ValueError saying X changed meanwhile. (The race
    is forced here: the scan reports non-finite for finite data.)"""
    monkeypatch.setattr(_validation._core, "all_finite", lambda a: False)
    with pytest.raises(ValueError, match="X changed while it was being checked"):
        _validation._check_finite(np.ones((3, 4)), "X")


# ---- estimators' sample_weight --------------------------------------------------------------------------------------

@pytest.mark.parametrize("w", [np.array(["1"] * 20), np.ones(20, complex), np.ones(20, object)])
def test_estimator_sample_weight_non_real_refused_naming_it(w):
    """ANNClassifier.fit(sample_weight=array of strings) parsed the strings and trained (Network.fit refuses them);
    complex gave scikit-learn's "Complex data not supported" without naming sample_weight."""
    pytest.importorskip("sklearn")
    from annfast.sklearn import ANNClassifier, ANNRegressor
    X, y = _data()
    for est, target in ((ANNClassifier(max_iter=1), y), (ANNRegressor(max_iter=1), X[:, 0])):
        with pytest.raises(TypeError, match="sample_weight must hold real numbers"):
            est.fit(X, target, sample_weight=w)


# ---- memory-mapped X with a column of weights -------------------------------------------------------------------

def test_memory_mapped_x_takes_a_column_of_weights_as_in_memory_x_does(tmp_path):
    """fit(X, y, sample_weight=w of shape (n, 1)) trains with an in-memory X but was refused ("must hold one weight
    per row of X") with a memory-mapped X; now both train, bitwise alike."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)).astype(np.float32)
    y = rng.integers(0, 3, 300)
    w = rng.random((300, 1))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "W.npy", w)
    a, b = _net(), _net()
    a.fit(X, y, sample_weight=w, shuffle=False)
    b.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, sample_weight=np.load(tmp_path / "W.npy", mmap_mode="r"),
          shuffle=False)
    assert np.array_equal(a.parameters, b.parameters)


# ---- masked arrays ----------------------------------------------------------------------------------------------

def test_masked_entries_are_not_silently_used():
    """np.asarray dropped a masked array's mask: the values under it were trained on silently (every input path is
    covered in test_adversarial_round4.py)."""
    X, y = _data(5)
    m = np.ma.masked_array(X, mask=np.zeros_like(X, bool))
    m.mask[0, 0] = True
    m.data[0, 0] = 1e6
    net = _net()
    with pytest.raises((TypeError, ValueError), match="mask"):
        net.fit(m, y)


# ---- gradient overflow ------------------------------------------------------------------------------------------

def test_gradient_that_overflows_float32_is_reported_not_inf():
    """gradient(X, y, sample_weight=3e38 each) in float32: every weight fits float32, but the sum over the rows
    overflowed and gradient returned inf/NaN silently."""
    X, y = _data(4000)
    net = _net()
    with pytest.raises(ValueError, match="gradient is not finite in float32"):
        net.gradient(X, y, sample_weight=np.full(4000, 3e38))
    assert np.isfinite(net.gradient(X, y, sample_weight=np.full(4000, 2.0))).all()


@pytest.mark.parametrize("sample_weight", [None, np.full(20, 1e300)])
def test_estimator_class_weight_too_large_names_class_weight(sample_weight):
    """ANNClassifier(class_weight={1: 1e308}) in float32 said "sample_weight holds 1e+308", though no sample_weight
    was given; with sample_weight 1e300 the float64 product overflowed with a RuntimeWarning."""
    pytest.importorskip("sklearn")
    from annfast.sklearn import ANNClassifier
    X, y = _data()
    with pytest.raises(ValueError, match="class_weight"):
        ANNClassifier(max_iter=1, class_weight={1: 1e308}).fit(X, y, sample_weight=sample_weight)
