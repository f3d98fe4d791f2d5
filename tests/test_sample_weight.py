"""Sample and class weights: each row's loss and update scaled by its weight inside the C loop.

Checked where the equivalence is exact: the summed gradient equals that of the data with each row repeated
weight times; full-batch descent equals full-batch descent on the repeated data (with the learning rate scaled
by the row counts); per-sample SGD with weights 0/1 equals SGD on the rows of weight 1; a constant weight c
equals the learning rate times c. Every training path (kernel variants, one-row and blocked, split threads,
mini-batches, streams) is compared with those, and errors leave the network untouched.
"""
import numpy as np
import pytest

import annfast as af
from annfast import _parallel

DTYPES = ["float32", "float64"]
RTOL = {"float32": 2e-5, "float64": 1e-11}


def _net(dtype="float64", out="softmax", n_in=6, n_out=3, hidden=(9,), seed=1):
    layers = [af.Dense(h, "tanh") for h in hidden] + [af.Dense(n_out, out)]
    loss = "cross_entropy" if out in ("softmax", "sigmoid") else "half_squared_error"
    return af.Network(n_in, layers, dtype=dtype, seed=seed, loss=loss)


def _data(n=60, n_in=6, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_in)), rng.integers(0, n_out, n), rng


def _kernels():
    from annfast import _core, _validation
    return [k for k, code in _validation.KERNELS.items() if _core.isa_supported(code)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_summed_gradient_equals_repeated_rows(dtype):
    X, y, rng = _data()
    w = rng.integers(0, 4, X.shape[0])
    net = _net(dtype)
    g = net.gradient(X, y, sample_weight=w)                    # mean over the 60 rows of w_i grad_i
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    g_rep = net.gradient(Xr, yr)                                # mean over the sum(w) repeated rows
    np.testing.assert_allclose(g * X.shape[0], g_rep * w.sum(), rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)
    assert np.abs(g).max() > 1e-3                               # a real gradient, not zeros on both sides


@pytest.mark.parametrize("dtype", DTYPES)
def test_evaluate_weighs_each_rows_loss(dtype):
    X, y, rng = _data()
    w = rng.uniform(0, 3, X.shape[0])
    net = _net(dtype)
    per_row = np.array([net.evaluate(X[i:i + 1], y[i:i + 1]) for i in range(X.shape[0])])
    want = float(np.sum(w * per_row) / X.shape[0])
    assert net.evaluate(X, y, sample_weight=w) == pytest.approx(want, rel=RTOL[dtype] * 10)
    assert net.evaluate(X, y, sample_weight=np.ones(X.shape[0])) == pytest.approx(net.evaluate(X, y), rel=1e-12)


def test_full_batch_descent_equals_repeated_rows():
    X, y, rng = _data()
    w = rng.integers(1, 4, X.shape[0])
    a, b = _net(), _net()
    a.fit(X, y, epochs=5, batch_size=None, learning_rate=0.1, sample_weight=w)
    # the same steps: mean over 60 rows of w_i g_i == (sum(w) / 60) * mean over the repeated rows
    b.fit(np.repeat(X, w, axis=0), np.repeat(y, w), epochs=5, batch_size=None,
          learning_rate=0.1 * w.sum() / X.shape[0])
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=1e-11, atol=1e-12)
    assert np.abs(a.parameters - _net().parameters).max() > 1e-3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", _kernels())
@pytest.mark.parametrize("shape", ["small", "first_layer_64k"])
def test_zero_one_weights_equal_training_on_the_kept_rows(dtype, kernel, shape):
    """Per-sample SGD, rows in order: a weight-0 row changes nothing (plain SGD), so the fit equals a fit on the
    rows of weight 1. Covers the fused, transposed (small) and pending (first layer >= 64 KiB) paths. (With
    momentum a weight-0 row still takes a zero-gradient momentum step, as documented.)"""
    n_in, hidden = (6, (9,)) if shape == "small" else (300, (64,))
    X, y, rng = _data(n=40, n_in=n_in)
    keep = rng.random(X.shape[0]) < 0.6
    a, b = _net(dtype, n_in=n_in, hidden=hidden), _net(dtype, n_in=n_in, hidden=hidden)
    a.kernel = b.kernel = kernel
    ha = a.fit(X, y, epochs=2, learning_rate=0.05, shuffle=False, sample_weight=keep.astype(float))
    hb = b.fit(X[keep], y[keep], epochs=2, learning_rate=0.05, shuffle=False)
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=RTOL[dtype], atol=RTOL[dtype])
    # the loss is the mean over all rows of the weighted losses: the kept rows' sum over all 40 rows
    assert ha["loss"][0] * X.shape[0] == pytest.approx(hb["loss"][0] * keep.sum(), rel=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("settings", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
                                      dict(batch_size=8), dict(batch_size=8, momentum=0.5)])
def test_constant_weight_equals_scaled_learning_rate(dtype, settings):
    """A weight c on every row scales every gradient by c: plain SGD and mini-batches then equal the learning rate
    times c. With momentum too (v accumulates c g, the step is lr c-scaled), so every path is compared."""
    X, y, _ = _data()
    a, b = _net(dtype), _net(dtype)
    a.fit(X, y, epochs=2, learning_rate=0.02, seed=3, sample_weight=np.full(X.shape[0], 2.5), **settings)
    b.fit(X, y, epochs=2, learning_rate=0.05, seed=3, **settings)
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=RTOL[dtype] * 20, atol=RTOL[dtype] * 20)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mini_batches_step_by_the_weighted_mean_gradient(dtype):
    """fit(batch_size=8, weight_decay, momentum) against the same steps taken by hand from gradient(...)."""
    X, y, rng = _data(n=40)
    w = rng.uniform(0, 2, X.shape[0])
    net, ref = _net(dtype), _net(dtype)
    lr, mu, wd = 0.05, 0.5, 1e-3
    net.fit(X, y, epochs=1, batch_size=8, learning_rate=lr, momentum=mu, weight_decay=wd, shuffle=False,
            sample_weight=w)
    p = ref.parameters.astype(np.float64)
    v = np.zeros_like(p)
    for s in range(0, 40, 8):
        ref.set_parameters(p)
        g = ref.gradient(X[s:s + 8], y[s:s + 8], sample_weight=w[s:s + 8]).astype(np.float64) + wd * p
        v = mu * v + g
        p = p - lr * v
    np.testing.assert_allclose(net.parameters, p, rtol=RTOL[dtype] * 20, atol=RTOL[dtype] * 20)


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_step_weight_scales_the_step_and_the_loss(dtype):
    X, y, _ = _data(n=5)
    a, b = _net(dtype), _net(dtype)
    la = a.train_step(X[0], y[0], learning_rate=0.03, sample_weight=3.0)
    lb = b.train_step(X[0], y[0], learning_rate=0.09)
    assert la == pytest.approx(3 * lb, rel=RTOL[dtype] * 10)
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=RTOL[dtype] * 10, atol=RTOL[dtype] * 10)
    before = a.parameters.copy()
    assert a.train_step(X[1], y[1], sample_weight=0.0) == 0.0
    np.testing.assert_array_equal(a.parameters, before)


def test_split_threads_with_weights_equal_one_thread(monkeypatch):
    monkeypatch.setattr(_parallel, "CLAMP_TO_CORES", False)      # oversubscribed on purpose
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(120, 40)), rng.integers(0, 4, 120)
    w = rng.uniform(0, 2, 120)
    a, b = (_net("float64", n_in=40, n_out=4, hidden=(64,)) for _ in range(2))
    ha = a.fit(X, y, epochs=2, learning_rate=0.05, seed=2, sample_weight=w, momentum=0.5)
    hb = b.fit(X, y, epochs=2, learning_rate=0.05, seed=2, sample_weight=w, momentum=0.5, n_threads=8)
    assert hb.params["threading"] == "split" and hb.params["n_threads"] == 8
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=1e-9, atol=1e-10)
    assert ha["loss"] == pytest.approx(hb["loss"], rel=1e-9)


def test_streamed_sources_carry_the_weights(tmp_path):
    X, y, rng = _data(n=50)
    w = rng.uniform(0, 2, 50)
    ref = _net()
    ref.fit(X, y, epochs=1, shuffle=False, sample_weight=w)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "w.npy", w)
    mapped = _net()
    mapped.fit(np.load(tmp_path / "X.npy", mmap_mode="r"), y, epochs=1, shuffle=False,
               sample_weight=np.load(tmp_path / "w.npy", mmap_mode="r"), shuffle_buffer=16)
    chunked = _net()
    chunked.fit([(X[s:s + 7], y[s:s + 7], w[s:s + 7]) for s in range(0, 50, 7)], None, epochs=1, shuffle=False)
    for net in (mapped, chunked):
        np.testing.assert_allclose(net.parameters, ref.parameters, rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="chunk 1 has no sample weights"):
        _net().fit([(X[:5], y[:5], w[:5]), (X[5:10], y[5:10])], None)
    with pytest.raises(ValueError, match="in the chunks"):
        _net().fit([(X[:5], y[:5])], None, sample_weight=w[:5])


def test_class_weight_is_a_per_class_sample_weight():
    X, y, rng = _data()
    a, b, c = _net(), _net(), _net()
    a.fit(X, y, epochs=2, seed=4, class_weight={0: 2.0, 2: 0.5})
    b.fit(X, y, epochs=2, seed=4, sample_weight=np.array([2.0, 1.0, 0.5])[y])
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=1e-12, atol=1e-13)
    counts = np.bincount(y, minlength=3)
    c.fit(X, y, epochs=2, seed=4, class_weight="balanced")
    d = _net()
    d.fit(X, y, epochs=2, seed=4, sample_weight=(len(y) / (3 * counts))[y])
    np.testing.assert_allclose(c.parameters, d.parameters, rtol=1e-12, atol=1e-13)
    # one sigmoid output: the class is the target's side of 0.5
    Xb, yb = X, (y == 0).astype(float)
    e, f = _net(out="sigmoid", n_out=1), _net(out="sigmoid", n_out=1)
    e.fit(Xb, yb, epochs=1, seed=4, class_weight={1: 3.0})
    f.fit(Xb, yb, epochs=1, seed=4, sample_weight=np.where(yb == 1, 3.0, 1.0))
    np.testing.assert_allclose(e.parameters, f.parameters, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("call, match", [
    (lambda n, X, y: n.fit(X, y, sample_weight=-np.ones(len(y))), r"sample_weight\[0\] = -1.0 is negative"),
    (lambda n, X, y: n.fit(X, y, sample_weight=np.r_[np.ones(len(y) - 1), np.nan]), "non-finite"),
    (lambda n, X, y: n.fit(X, y, sample_weight=np.ones(3)), "rows but sample_weight has 3"),
    (lambda n, X, y: n.fit(X, y, sample_weight=np.ones((len(y), 2))), "must be 1-D"),
    (lambda n, X, y: n.fit(X, y, sample_weight=["a"] * len(y)), "sample_weight"),
    (lambda n, X, y: n.fit(X, y, class_weight={5: 1.0}), r"key 5, which is not a class in \[0, 3\)"),
    (lambda n, X, y: n.fit(X, y, class_weight={0: -1.0}), r"class_weight\[0\] = -1.0"),
    (lambda n, X, y: n.fit(X, y, class_weight="auto"), "'balanced'"),
    (lambda n, X, y: n.fit(X, y, class_weight=[1, 2, 3]), "dict"),
    (lambda n, X, y: n.train_step(X[0], y[0], sample_weight=-2), "negative"),
    (lambda n, X, y: n.evaluate(X, y, sample_weight=np.ones(2)), "sample_weight"),
    (lambda n, X, y: n.gradient(X, y, sample_weight=np.full(len(y), np.inf)), "non-finite"),
    (lambda n, X, y: n.fit(X, y, validation_data=(X, y, -np.ones(len(y)))), "sample_weight_val"),
])
def test_bad_weights_are_refused_before_anything_changes(call, match):
    X, y, _ = _data()
    net = _net()
    before = net.parameters.copy()
    with pytest.raises((ValueError, TypeError), match=match):
        call(net, X, y)
    np.testing.assert_array_equal(net.parameters, before)


def test_class_weight_needs_a_classifier_output():
    X, y, _ = _data()
    net = _net(out="linear", n_out=1)
    with pytest.raises(ValueError, match="class_weight needs a classifier output"):
        net.fit(X, y.astype(float), class_weight={0: 2.0})


def test_balanced_class_weight_helps_the_rare_class_on_real_data():
    """Digits with the 0s made rare (1 in 10 kept): balanced class weights raise their recall on held-out rows."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    X, y = digits.data / 16.0, digits.target
    rng = np.random.default_rng(0)
    keep = (y != 0) | (rng.random(len(y)) < 0.1)
    X, y = X[keep], y[keep]
    idx = rng.permutation(len(y))
    tr, te = idx[: len(y) * 2 // 3], idx[len(y) * 2 // 3:]
    recall = {}
    for cw in (None, "balanced"):
        net = af.Network(64, [af.Dense(16, "tanh"), af.Dense(10, "softmax")], dtype="float64", seed=0,
                         loss="cross_entropy")
        net.fit(X[tr], y[tr], epochs=3, learning_rate=0.01, seed=0, class_weight=cw)
        pred = net.predict(X[te]).argmax(axis=1)
        recall[cw] = np.mean(pred[y[te] == 0] == 0)
    assert recall["balanced"] > recall[None] + 0.1, recall


def test_estimators_take_sample_and_class_weights():
    pytest.importorskip("sklearn")
    from annfast.sklearn import ANNClassifier, ANNRegressor
    X, y, rng = _data(n=80)
    w = rng.uniform(0, 2, 80)
    common = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, tol=0.0, alpha=0.0, dtype="float64")
    with pytest.warns(Warning):
        a = ANNClassifier(class_weight={0: 3.0}, **common).fit(X, y, sample_weight=w)
    with pytest.warns(Warning):
        b = ANNClassifier(**common).fit(X, y, sample_weight=w * np.where(y == 0, 3.0, 1.0))
    np.testing.assert_allclose(a.network_.parameters, b.network_.parameters, rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="partial_fit"):
        ANNClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="not one of the classes"):
        ANNClassifier(class_weight={"x": 1.0}, **common).fit(X, y)
    with pytest.warns(Warning):
        r1 = ANNRegressor(**common).fit(X, X[:, 0], sample_weight=2.0)
    with pytest.warns(Warning):
        r2 = ANNRegressor(**dict(common, learning_rate_init=0.002)).fit(X, X[:, 0])
    np.testing.assert_allclose(r1.network_.parameters, r2.network_.parameters, rtol=1e-11, atol=1e-12)
