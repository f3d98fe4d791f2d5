"""Every fast kernel variant against the reference kernel (csrc/af_reference.inc, kernel "reference").

The reference kernel is plain scalar C, one row at a time: no vectors, blocks, deferred or pending first-layer
updates, transposed copies. Each variant this CPU runs (base, avx2, avx512) must give its results, shape by shape
and in both precisions, on shapes chosen to reach every strategy of af_kernels.inc: tiny rows (scalar tails),
a small first layer (kept transposed, AVX2/AVX-512, calls of >= 4 rows), odd widths, first layers of >= 64 KiB
(pending rank-one updates, AVX2/AVX-512; 150-70 only in float64), mini-batches of 7 and 64 (blocked rows),
softmax + cross-entropy, sigmoid + binary cross-entropy, squared error through softmax and linear outputs,
relu/leaky/tanh/step/sigmoid hidden layers, and sample weights.

Tolerances, relative to how far the weights moved (predict, loss and gradient: to the size of the values):
- float64 1e-10: the kernels differ from the reference only in rounding (summation order, fused multiply-adds,
  (lr d) a against lr (d a), the decay factor 1 - lr lambda rounded once), a few ulps of the weights per row;
  measured <= 1e-13 of the movement.
- float32 1e-3: the same rounding at float32's ulp (6e-8, 2^29 times float64's), relative to the WEIGHTS (~1),
  while the movement can be ~1e-3 of them (mini-batches, weight decay of 1 - 1e-4 per row rounded in float);
  measured <= 1e-4 of the movement. A wrong formula is off by O(1).
The learning rate is small enough (0.01) that training is not chaotic: with 0.05, momentum 0.9 and sample
weights up to 3 the 150-70-37-3 net moves its weights by 20 and amplifies rounding by ~1e7 (float64 1e-9,
float32 0.5 of the movement, between ANY two roundings, not a kernel bug).
"""
import numpy as np
import pytest
from conftest import DTYPES, random_targets, representable
from test_reference import NETS as NUMPY_NETS
from test_reference import SETTINGS as NUMPY_SETTINGS
from test_reference import assert_same_weights, make_case

import annfast as af
from annfast import _core, _parallel
from annfast import _validation as v

TOL = {"float32": 1e-3, "float64": 1e-10}

SHAPES = {
    # name: (n_inputs, [(units, activation)], loss)
    "tiny-4-8-1-tanh-linear-hse": (4, [(8, "tanh"), (1, "linear")], "half_squared_error"),
    "small-64-32-10-relu-softmax-ce": (64, [(32, "relu"), (10, "softmax")], "cross_entropy"),
    "odd-150-70-37-3-leaky-tanh-sigmoid-bce": (150, [(70, "leaky_relu"), (37, "tanh"), (3, "sigmoid")],
                                                "cross_entropy"),
    "medium-784-128-10-sigmoid-softmax-ce": (784, [(128, "sigmoid"), (10, "softmax")], "cross_entropy"),
    "step-20-16-2-step-sigmoid-bce": (20, [(16, "step"), (2, "sigmoid")], "cross_entropy"),
    "softmax-hse-12-9-4-sigmoid": (12, [(9, "sigmoid"), (4, "softmax")], "half_squared_error"),
}
SETTINGS = {
    # name: (batch_size, momentum, nesterov, weight_decay, sample weights)
    "sgd": (1, 0.0, False, 0.0, False),
    "momentum": (1, 0.9, False, 0.0, False),
    "nesterov": (1, 0.8, True, 0.0, False),
    "decay": (1, 0.0, False, 0.01, False),
    "nesterov-decay": (1, 0.5, True, 0.003, False),
    "minibatch7-momentum-decay": (7, 0.5, False, 0.003, False),
    "minibatch64": (64, 0.0, False, 0.0, False),
    "weights": (1, 0.9, False, 0.0, True),
    "weights-minibatch7": (7, 0.0, False, 0.01, True),
}
LR = 0.01


def fast_kernels():
    """The variants this CPU runs, but the reference itself."""
    return [k for k, code in v.KERNELS.items() if k != "reference" and _core.isa_supported(code)]


def case(shape, dtype, n_rows, seed=5):
    """A network (seeded weights), its inputs X and targets Y (representable in dtype), sample weights."""
    n_in, layers, loss = SHAPES[shape]
    rng = np.random.default_rng(seed)
    net = af.Network(n_in, [af.Dense(u, a, negative_slope=0.05) for u, a in layers], dtype=dtype, seed=11,
                     loss=loss)
    X = representable(rng.normal(size=(n_rows, n_in)), dtype)
    units, out = layers[-1]
    Y = random_targets(rng, units, out, n_rows, dtype)
    w = representable(rng.uniform(0, 3, size=n_rows), dtype)
    w[rng.permutation(n_rows)[: n_rows // 5]] = 0    # some rows weigh nothing
    cast = np.dtype(dtype)
    return net, X.astype(cast), Y.astype(cast), w.astype(cast), rng.permutation(n_rows).astype(np.int64)


def spec_of(net, kernel):
    """The C descriptor of net, for kernel (what Network._spec builds for its own kernel)."""
    layers = [(layer.units, v.ACTIVATIONS[layer.activation], layer.negative_slope) for layer in net.layers]
    return _core.Spec(net.n_inputs, layers, v.LOSSES[net.loss], v.KERNELS[kernel])


def train(net, kernel, X, Y, w, order, setting):
    """One call of af_train_rows over the rows in order; returns (params, velocity, loss sum, n_correct)."""
    bs, mu, nest, wd, weighted = SETTINGS[setting]
    params = np.array(net.parameters)
    velocity = np.zeros_like(params)
    grad, backup = np.zeros_like(params), np.zeros_like(params)
    loss, correct = _core.train_rows(spec_of(net, kernel), params, velocity, grad, backup, X, Y, order, LR, mu, wd,
                                     nest, bs, weights=w if weighted else None)
    assert not grad.any()
    return params, velocity, loss, correct


def assert_close(got, want, scale, tol, what):
    err = np.abs(np.asarray(got, np.float64) - np.asarray(want, np.float64)).max() / scale
    assert err <= tol, f"{what}: error {err:.3g} of the scale (tolerance {tol:g})"


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", fast_kernels())
def test_training_matches_reference_kernel(kernel, dtype, shape, setting):
    n_rows = 40 if SETTINGS[setting][0] == 1 else 80   # mini-batch 64: one whole batch of 4 blocks, one of 16 rows
    net, X, Y, w, order = case(shape, dtype, n_rows)
    start = np.array(net.parameters, dtype=np.float64)
    p_ref, v_ref, loss_ref, correct_ref = train(net, "reference", X, Y, w, order, setting)
    p, vel, loss, correct = train(net, kernel, X, Y, w, order, setting)
    moved = np.abs(p_ref - start).max()
    assert moved > 1e-6, "the weights did not move: nothing compared"
    tol = TOL[dtype]
    assert_close(p, p_ref, moved, tol, "params")
    if SETTINGS[setting][1] > 0 and SETTINGS[setting][0] == 1:
        assert_close(vel, v_ref, np.abs(v_ref).max(), tol, "velocity")
    assert loss == pytest.approx(loss_ref, rel=tol)
    assert correct == correct_ref


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", fast_kernels())
def test_predict_loss_gradient_match_reference_kernel(kernel, dtype, shape, weighted):
    net, X, Y, w, _ = case(shape, dtype, 37)          # two blocks of 16 rows and a tail
    params = np.array(net.parameters)
    sw = w if weighted else None
    tol = TOL[dtype] / 10
    out = {}
    for k in ("reference", kernel):
        spec = spec_of(net, k)
        P = np.empty((len(X), net.n_outputs), dtype=net.dtype)
        _core.predict_rows(spec, params, X, P)
        P1 = np.empty((1, net.n_outputs), dtype=net.dtype)   # one row: the row workspace
        _core.predict_rows(spec, params, X[:1], P1)
        grad = np.zeros_like(params)
        gloss = _core.gradient_rows(spec, params, X, Y, grad, weights=sw)
        out[k] = (P, P1, _core.loss_rows(spec, params, X, Y, weights=sw), grad, gloss)
    (P_r, P1_r, (l_r, c_r), g_r, gl_r), (P, P1, (lo, c), g, gl) = out["reference"], out[kernel]
    assert_close(P, P_r, np.abs(P_r).max(), tol, "predict")
    assert_close(P1, P1_r, np.abs(P1_r).max(), tol, "predict of one row")
    assert lo == pytest.approx(l_r, rel=tol) and gl == pytest.approx(gl_r, rel=tol)
    assert c == c_r
    assert_close(g, g_r, np.abs(g_r).max(), tol, "gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", fast_kernels())
def test_public_api_matches_reference_kernel(kernel, dtype):
    """fit (seeded shuffle, momentum), predict, evaluate and gradient through Network, kernel set by name."""
    results = {}
    for k in ("reference", kernel):
        net, X, Y, _, _ = case("small-64-32-10-relu-softmax-ce", dtype, 40)
        net.kernel = k
        assert net.kernel == k
        hist = net.fit(X, Y, epochs=2, learning_rate=LR, momentum=0.9, seed=3)
        results[k] = (np.array(net.parameters, np.float64), hist.history["loss"], hist.history["accuracy"],
                      net.predict(X), net.evaluate(X, Y, return_dict=True), net.gradient(X, Y))
    ref, got = results["reference"], results[kernel]
    tol = TOL[dtype]
    assert_close(got[0], ref[0], np.abs(ref[0]).max(), tol, "params")
    np.testing.assert_allclose(got[1], ref[1], rtol=tol)
    assert got[2] == ref[2]
    assert_close(got[3], ref[3], 1.0, tol, "predict")
    assert got[4]["loss"] == pytest.approx(ref[4]["loss"], rel=tol) and got[4]["accuracy"] == ref[4]["accuracy"]
    assert_close(got[5], ref[5], np.abs(ref[5]).max(), tol, "gradient")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("setting", list(NUMPY_SETTINGS))
@pytest.mark.parametrize("name", list(NUMPY_NETS))
def test_reference_kernel_matches_numpy_reference(name, setting, dtype, rng):
    """The C reference against tests/reference.py, the independent NumPy statement of the math."""
    net, ref, X, Y = make_case(name, dtype, rng)
    net.kernel = "reference"
    kw = NUMPY_SETTINGS[setting]
    net.fit(X, Y, epochs=1, learning_rate=LR, shuffle=False, **kw)
    bs = kw["batch_size"] or len(X)
    ref.train(X, Y, np.arange(len(X)), LR, batch_size=bs, momentum=kw.get("momentum", 0.0),
              nesterov=kw.get("nesterov", False), weight_decay=kw.get("weight_decay", 0.0))
    assert_same_weights(net, ref, dtype)
    np.testing.assert_allclose(net.predict(X), ref.predict(X), rtol=0, atol=1e-4 if dtype == "float32" else 1e-12)


def test_environment_variable_selects_the_reference_kernel(monkeypatch):
    monkeypatch.setenv("ANNFAST_KERNEL", "reference")
    net = af.Network(64, [af.Dense(32), af.Dense(10)])
    assert net.kernel == "reference"
    assert net._spec(net.loss).isa == _core.af_isa.AF_ISA_REFERENCE
    monkeypatch.delenv("ANNFAST_KERNEL")
    assert af.Network(64, [af.Dense(32), af.Dense(10)]).kernel != "reference"   # never the default
    reference = _core.af_isa.AF_ISA_REFERENCE
    assert _core.isa_best() != reference and _core.isa_supported(reference)


@pytest.mark.parametrize("mode", [dict(), dict(hogwild=True), dict(sync_every=8), dict(batch_size=64)],
                         ids=["split", "hogwild", "merged", "batch"])
def test_threaded_fit_with_the_reference_kernel(mode, monkeypatch):
    """af_split_rows refuses the reference kernel: the default threaded per-sample mode trains on one thread
    (the same result as n_threads=1); the other threaded modes run it as they run any kernel."""
    monkeypatch.setattr(_parallel, "CLAMP_TO_CORES", False)
    net, X, Y, _, _ = case("medium-784-128-10-sigmoid-softmax-ce", "float64", 256)
    serial = af.Network(784, [af.Dense(128, "sigmoid"), af.Dense(10, "softmax")], dtype="float64", seed=11,
                        loss="cross_entropy")
    net.kernel = serial.kernel = "reference"
    bs = mode.get("batch_size", 1)
    spec = net._spec(net.loss)
    assert _parallel.split_threads(spec, 4) == 1
    kind, threads = _parallel.choose(spec, 4, bs, mode.get("hogwild", False), mode.get("sync_every"), len(X))
    if not mode:   # the default per-sample mode would be "split"
        assert (kind, threads) == ("serial", 1)
    net.fit(X, Y, epochs=1, learning_rate=LR, n_threads=4, seed=1, **mode)
    assert np.isfinite(net.parameters).all()
    if not mode or "batch_size" in mode:   # one thread's result, up to the rounding of split gradient sums
        serial.fit(X, Y, epochs=1, learning_rate=LR, n_threads=1, seed=1, batch_size=bs)
        np.testing.assert_allclose(net.parameters, serial.parameters, rtol=0, atol=1e-12)


def test_split_rows_refuses_the_reference_kernel():
    spec = _core.Spec(16, [(8, 3, 0.0), (1, 0, 0.0)], 0, _core.af_isa.AF_ISA_REFERENCE)
    params = np.zeros(spec.n_params)
    X, Y = np.zeros((4, 16)), np.zeros((4, 1))
    with pytest.raises(Exception, match="argument out of range"):
        _core.split_thread(spec, params, None, None, None, np.zeros(max(1, _core.split_workspace_len(spec))),
                           np.zeros(_core.split_hbuf_len(spec)), np.zeros(_core.split_ctl_len(1), dtype=np.int64),
                           X, Y, np.arange(4, dtype=np.int64), 0, 1, 0.1)


def test_model_files_with_the_reference_kernel(tmp_path):
    """Saving, loading, pickling, ONNX and FANN export do not depend on the kernel."""
    import pickle
    net, X, Y, _, _ = case("tiny-4-8-1-tanh-linear-hse", "float32", 20)   # FANN has tanh, not relu
    net.kernel = "reference"
    net.fit(X, Y, epochs=1, learning_rate=LR)
    net.save(tmp_path / "m.npz")
    loaded = af.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.parameters, net.parameters)
    clone = pickle.loads(pickle.dumps(net))
    assert clone.kernel == "reference"
    np.testing.assert_array_equal(clone.predict(X), net.predict(X))
    net.save_fann(tmp_path / "m.net")
    pytest.importorskip("onnx")
    net.to_onnx(tmp_path / "m.onnx")


@pytest.mark.parametrize("batch_size", [1, 7])
@pytest.mark.parametrize("kernel", fast_kernels())
def test_divergence_stops_at_the_same_row_as_the_reference_kernel(kernel, batch_size):
    """A row whose loss overflows stops every kernel before its update (its batch's): the same row is named and
    the weights kept are those of every earlier row (batch)."""
    net, X, Y, _, order = case("medium-784-128-10-sigmoid-softmax-ce", "float64", 40)
    Y[order[23]] *= 1e308   # its cross-entropy, 1e308 (lse - z_y), overflows
    kept = {}
    for k in ("reference", kernel):
        params = np.array(net.parameters)
        z = np.zeros_like(params)
        with pytest.raises(_core.DivergenceError, match=f"row {order[23]}"):
            _core.train_rows(spec_of(net, k), params, z.copy(), z.copy(), z.copy(), X, Y, order, LR, 0.5, 0.0,
                             False, batch_size)
        kept[k] = params
    moved = np.abs(kept["reference"] - np.asarray(net.parameters)).max()
    assert moved > 1e-6
    assert_close(kept[kernel], kept["reference"], moved, TOL["float64"], "params kept")
