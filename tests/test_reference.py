"""One step and one epoch of annfast against tests/reference.py, an independent NumPy MLP.

float64 must agree to 1e-12 and float32 to 1e-5 (relative to the size of the weights), for per-sample
SGD, a mini-batch size, full batch, momentum, Nesterov and weight decay, with shuffle=False (and with a
seeded shuffle, whose order the test reproduces).
"""
import numpy as np
import pytest
from conftest import DTYPES, TOL, random_targets, representable
from reference import ReferenceMLP

import annfast as af
from annfast import _core
from annfast._validation import KERNELS

NETS = {
    # name: (n_inputs, [(units, activation)], loss)
    "tanh-linear-hse": (5, [(8, "tanh"), (3, "linear")], "half_squared_error"),
    "relu-sigmoid-softmax-ce": (6, [(7, "relu"), (5, "sigmoid"), (4, "softmax")], "cross_entropy"),
    "leaky-sigmoid-bce": (4, [(6, "leaky_relu"), (1, "sigmoid")], "cross_entropy"),
    "sigmoid-softmax-hse": (3, [(5, "sigmoid"), (3, "softmax")], "half_squared_error"),
}
SETTINGS = {
    # name: fit keyword arguments
    "sgd": dict(batch_size=1),
    "momentum": dict(batch_size=1, momentum=0.9),
    "nesterov": dict(batch_size=1, momentum=0.8, nesterov=True),
    "decay": dict(batch_size=1, weight_decay=0.01),
    "minibatch7": dict(batch_size=7),
    "minibatch7-momentum-decay": dict(batch_size=7, momentum=0.5, weight_decay=0.003),
    "fullbatch": dict(batch_size=None),
}


def make_case(name, dtype, rng, n_rows=40):
    n_in, spec, loss = NETS[name]
    layers = [af.Dense(u, a, negative_slope=0.05) for u, a in spec]
    net = af.Network(n_in, layers, dtype=dtype, seed=7, loss=loss)
    X = representable(rng.normal(size=(n_rows, n_in)), dtype)
    units, out = spec[-1]
    Y = random_targets(rng, units, out, n_rows, dtype)
    ref = ReferenceMLP(net.get_weights(), [a for _, a in spec], loss, slope=0.05)
    return net, ref, X, Y


# Every fast kernel variant (base, avx2, avx512) is a parameter of the tests that check the kernels' vector paths,
# so a failure names the kernel; those this CPU cannot run are skipped, with the reason. Not "reference": the C
# reference kernel is checked against this NumPy reference, and every variant against it, in
# test_reference_kernel.py.
KERNEL_PARAMS = [pytest.param(k, marks=pytest.mark.skipif(not _core.isa_supported(code),
                                                          reason=f"this CPU cannot run the {k} kernel"))
                 for k, code in KERNELS.items() if k != "reference"]
every_kernel = pytest.mark.parametrize("kernel", KERNEL_PARAMS)


def assert_same_weights(net, ref, dtype):
    tol = TOL[dtype]
    for (W, b), (Wr, br) in zip(net.get_weights(), ref.weights()):
        scale = max(np.abs(Wr).max(), np.abs(br).max(), 1.0)
        np.testing.assert_allclose(W, Wr, rtol=0, atol=tol * scale)
        np.testing.assert_allclose(b, br, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("name", list(NETS))
def test_one_epoch_matches_reference(name, setting, dtype, rng):
    net, ref, X, Y = make_case(name, dtype, rng)
    kw = SETTINGS[setting]
    lr = 0.05
    hist = net.fit(X, Y, epochs=1, learning_rate=lr, shuffle=False, **kw)
    bs = kw["batch_size"] or len(X)
    ref_loss = ref.train(X, Y, np.arange(len(X)), lr, batch_size=bs, momentum=kw.get("momentum", 0.0),
                         nesterov=kw.get("nesterov", False), weight_decay=kw.get("weight_decay", 0.0))
    assert_same_weights(net, ref, dtype)
    assert hist.history["loss"][0] == pytest.approx(ref_loss / len(X), rel=10 * TOL[dtype])
    # the weights did move: the comparison is not between two untouched copies
    assert not np.allclose(net.get_weights()[0][0], make_case(name, dtype, np.random.default_rng(0))[0]
                           .get_weights()[0][0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(NETS))
def test_three_epochs_with_momentum_carry_velocity(name, dtype, rng):
    net, ref, X, Y = make_case(name, dtype, rng, n_rows=15)
    for _ in range(3):
        net.fit(X, Y, epochs=1, learning_rate=0.03, shuffle=False, momentum=0.7, batch_size=4)
        ref.train(X, Y, np.arange(len(X)), 0.03, batch_size=4, momentum=0.7)
    assert_same_weights(net, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(NETS))
def test_one_train_step_matches_reference(name, dtype, rng):
    net, ref, X, Y = make_case(name, dtype, rng, n_rows=1)
    loss = net.train_step(X[0], Y[0], learning_rate=0.1)
    ref_loss = ref.train(X, Y, [0], 0.1)
    assert loss == pytest.approx(ref_loss, rel=10 * TOL[dtype])
    assert_same_weights(net, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_seeded_shuffle_order_is_reproduced(dtype, rng):
    net, ref, X, Y = make_case("tanh-linear-hse", dtype, rng)
    net.fit(X, Y, epochs=1, learning_rate=0.05, shuffle=True, seed=99)
    ref.train(X, Y, np.random.default_rng(99).permutation(len(X)), 0.05)
    assert_same_weights(net, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(NETS))
def test_predict_and_evaluate_match_reference(name, dtype, rng):
    net, ref, X, Y = make_case(name, dtype, rng)
    tol = TOL[dtype]
    np.testing.assert_allclose(net.predict(X), ref.predict(X), rtol=0, atol=10 * tol)
    mean_loss = np.mean([ref.row_loss(x, y) for x, y in zip(X, Y)])
    assert net.evaluate(X, Y) == pytest.approx(mean_loss, rel=10 * tol)


def test_predict_of_many_rows_spans_chunks(rng):
    net = af.Network(3, [af.Dense(5, "tanh"), af.Dense(2, "linear")], dtype="float64", seed=3)
    ref = ReferenceMLP(net.get_weights(), ["tanh", "linear"], "half_squared_error")
    X = rng.normal(size=(300_000, 3))   # several chunks
    out = net.predict(X)
    idx = rng.integers(0, len(X), 200)
    np.testing.assert_allclose(out[idx], ref.predict(X[idx]), rtol=0, atol=1e-12)


# Layers wide enough for every vector path of the kernels: 70 and 37 inputs leave lanes of a vector group, a
# vector and a scalar tail at 4, 8 and 16 lanes; 37 and 19 outputs leave rows outside the groups of four; 32
# and 64 inputs are rows of 2 to 16 whole vectors (the unrolled first-layer path of per-sample SGD up to 4);
# batch sizes leave rows outside the groups of inputs and the blocks.
WIDE_LAYERS = ([(37, "tanh"), (19, "sigmoid"), (5, "linear")], "half_squared_error")


@pytest.mark.parametrize("n_in", [70, 64, 32], ids=lambda n: f"in{n}")
@pytest.mark.parametrize("batch_size", [1, 3, 16, 23, 40], ids=lambda b: f"batch{b}")
@pytest.mark.parametrize("dtype", DTYPES)
@every_kernel
def test_wide_layers_match_reference_on_every_kernel(kernel, dtype, batch_size, n_in, rng):
    spec, loss = WIDE_LAYERS
    X = representable(rng.normal(size=(83, n_in)), dtype)
    Y = representable(rng.normal(size=(83, spec[-1][0])), dtype)
    net = af.Network(n_in, [af.Dense(u, a) for u, a in spec], dtype=dtype, seed=5, loss=loss)
    net.kernel = kernel
    ref = ReferenceMLP(net.get_weights(), [a for _, a in spec], loss)
    np.testing.assert_allclose(net.predict(X), ref.predict(X), rtol=0, atol=TOL[dtype])
    net.fit(X, Y, epochs=1, learning_rate=0.05, shuffle=False, batch_size=batch_size)
    ref.train(X, Y, np.arange(len(X)), 0.05, batch_size=batch_size)
    assert_same_weights(net, ref, dtype)
    np.testing.assert_allclose(net.predict(X), ref.predict(X), rtol=0, atol=TOL[dtype])
    # the gradient of the whole set, in blocks of rows, against the reference's per-row sum
    rows = [ref.row_gradients(x, y) for x, y in zip(X, Y)]
    want = np.concatenate([np.concatenate([sum(r[0][k] for r in rows).ravel(), sum(r[1][k] for r in rows)])
                           for k in range(len(spec))]) / len(X)
    got = net.gradient(X, Y)
    np.testing.assert_allclose(got, want, rtol=0, atol=10 * TOL[dtype] * max(1.0, np.abs(want).max()))


# A first layer of 150 x 115 weights (69 KB in float32) is past the size from which per-sample SGD keeps up to 8
# rows' first-layer updates pending and adds their share to the next rows' outputs (af_kernels.inc; the AVX2 and
# AVX-512 kernels, the baseline keeps its fused sweep and is checked against the same reference). 150 inputs
# leave a vector tail at 4, 8 and 16 lanes, 115 units rows outside the groups of four; 83 rows end an epoch with
# 3 updates pending.
LARGE_FIRST = ([(115, "sigmoid"), (7, "tanh"), (3, "linear")], "half_squared_error")


def large_first_case(dtype, kernel, rng, n_rows=83):
    """A network with the large first layer (kernel None: the default one), its reference, X and Y."""
    spec, loss = LARGE_FIRST
    X = representable(rng.normal(size=(n_rows, 150)), dtype)
    Y = representable(rng.normal(size=(n_rows, spec[-1][0])), dtype)
    net = af.Network(150, [af.Dense(u, a) for u, a in spec], dtype=dtype, seed=11, loss=loss)
    if kernel is not None:
        net.kernel = kernel
    return net, ReferenceMLP(net.get_weights(), [a for _, a in spec], loss), X, Y


# Calls of 1 to 27 rows: every size of a call's last group of pending rows (1 .. 8), and calls below and above
# the 4 rows from which a small first layer is kept transposed.
CALL_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 27]


def train_in_calls(net, ref, X, Y, order, lr, dtype, **sgd):
    """One fit call per CALL_SIZES slice of order, each call's loss checked against the reference's."""
    start = 0
    for size in CALL_SIZES:
        rows = order[start:start + size]
        start += size
        hist = net.fit(X[rows], Y[rows], epochs=1, learning_rate=lr, shuffle=False, **sgd)
        want = ref.train(X, Y, rows, lr, **sgd) / len(rows)
        assert hist.history["loss"][0] == pytest.approx(want, rel=10 * TOL[dtype], abs=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@every_kernel
def test_pending_first_layer_updates_match_reference_on_every_kernel(kernel, dtype, rng):
    net, ref, X, Y = large_first_case(dtype, kernel, rng)
    assert net.layers[0].units * net.n_inputs * np.dtype(dtype).itemsize >= 65536
    order = rng.permutation(len(X))
    # two epochs, the second shuffled, and a call that ends with updates pending followed by another call;
    # the calls of 83, 45 and 38 rows end with groups of 3, 5 and 6 rows, whose first-layer products are
    # computed together, as are the full groups' 8 (train_step below: groups of one row)
    for rows in (np.arange(len(X)), order[:45], order[45:]):
        hist = net.fit(X[rows], Y[rows], epochs=1, learning_rate=0.05, shuffle=False)
        want = ref.train(X, Y, rows, 0.05) / len(rows)
        assert hist.history["loss"][0] == pytest.approx(want, rel=10 * TOL[dtype])
        assert_same_weights(net, ref, dtype)
    # train_step (one row per call: its update is applied before the call returns)
    for r in order[:5]:
        net.train_step(X[r], Y[r], learning_rate=0.05)
        ref.train(X, Y, [r], 0.05)
    assert_same_weights(net, ref, dtype)


@pytest.mark.parametrize("n_in, units, n_out", [(130, 127, 3), (257, 66, 5), (91, 93, 1)],
                         ids=["130x127x3", "257x66x5", "91x93x1"])
@pytest.mark.parametrize("dtype", DTYPES)
@every_kernel
def test_pending_groups_of_every_size_match_reference(kernel, dtype, n_in, units, n_out, rng):
    # First layers just above the 64 KiB of the pending path (91 x 93 in float64 only; in float32 it checks
    # the fused path below it), with rows and columns outside whole vectors and groups of four, trained in
    # calls of 1 to 27 rows: every size of a call's last group (1 .. 8 rows, whose products with the first
    # layer are computed together) on every kernel.
    X = representable(rng.normal(size=(sum(CALL_SIZES), n_in)), dtype)
    Y = representable(rng.normal(size=(sum(CALL_SIZES), n_out)), dtype)
    net = af.Network(n_in, [af.Dense(units, "tanh"), af.Dense(n_out, "linear")], dtype=dtype, seed=3)
    net.kernel = kernel
    ref = ReferenceMLP(net.get_weights(), ["tanh", "linear"], "half_squared_error")
    train_in_calls(net, ref, X, Y, rng.permutation(len(X)), 0.02, dtype)
    assert_same_weights(net, ref, dtype)


def at_offset(a, offset):
    """A C-contiguous copy of a whose data starts offset bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 == offset and out.flags.c_contiguous
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sgd", [dict(batch_size=1), dict(batch_size=1, momentum=0.6, weight_decay=0.01),
                                 dict(batch_size=7)], ids=["per-sample", "momentum-decay", "minibatch7"])
@every_kernel
def test_results_do_not_depend_on_where_the_rows_start(kernel, dtype, sgd, rng):
    # Calls of more than one row on a first layer of the pending path's size work on aligned copies of the rows
    # (per-sample groups, mini-batch blocks, predict and evaluate blocks; 130 inputs leave every row but the first
    # off a vector boundary too). Wherever X starts, the weights, predictions and losses are bitwise the same,
    # the weights match the reference, and X is left as it was.
    X0 = representable(rng.normal(size=(45, 130)), dtype)
    Y = representable(rng.normal(size=(45, 3)), dtype)
    itemsize = np.dtype(dtype).itemsize
    results = []
    for offset in range(0, 64, itemsize):
        X = at_offset(X0, offset)
        net = af.Network(130, [af.Dense(127, "tanh"), af.Dense(3, "linear")], dtype=dtype, seed=3)
        net.kernel = kernel
        if offset == 0:
            ref = ReferenceMLP(net.get_weights(), ["tanh", "linear"], "half_squared_error")
        net.fit(X, Y, epochs=2, learning_rate=0.005, shuffle=False, **sgd)
        np.testing.assert_array_equal(X, X0)
        results.append((net.get_weights(), net.predict(X), net.evaluate(X, Y)))
    for _ in range(2):
        ref.train(X0, Y, np.arange(len(X0)), 0.005, **sgd)
    assert_same_weights(net, ref, dtype)
    np.testing.assert_allclose(results[-1][1], ref.predict(X0), rtol=0, atol=100 * TOL[dtype])
    for weights, pred, loss in results[:-1]:
        for (W, b), (Wl, bl) in zip(weights, results[-1][0]):
            np.testing.assert_array_equal(W, Wl)
            np.testing.assert_array_equal(b, bl)
        np.testing.assert_array_equal(pred, results[-1][1])
        assert loss == results[-1][2]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov", [(0.9, False), (0.6, True)], ids=["momentum0.9", "nesterov0.6"])
@every_kernel
def test_pending_updates_with_momentum_match_reference(kernel, dtype, momentum, nesterov, rng):
    # With momentum (no weight decay) a large first layer's updates and its velocity's are pending too: the
    # group's W x and V x are computed up front, the rows' corrections carry the momentum's sums of powers,
    # and the velocity carries over from call to call. Calls of 1 to 27 rows, every kernel.
    net, ref, X, Y = large_first_case(dtype, kernel, rng, n_rows=sum(CALL_SIZES))
    order = rng.permutation(len(X))
    train_in_calls(net, ref, X, Y, order, 0.01, dtype, momentum=momentum, nesterov=nesterov)
    assert_same_weights(net, ref, dtype)
    for r in order[:4]:   # train_step: one row per call, on the velocity the calls above left
        net.train_step(X[r], Y[r], learning_rate=0.01, momentum=momentum, nesterov=nesterov)
        ref.train(X, Y, [r], 0.01, momentum=momentum, nesterov=nesterov)
    assert_same_weights(net, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum, nesterov, weight_decay", [(0.0, False, 0.01), (0.9, False, 0.003),
                                                              (0.6, True, 0.01)],
                         ids=["decay0.01", "momentum0.9-decay0.003", "nesterov0.6-decay0.01"])
@every_kernel
def test_pending_updates_with_weight_decay_match_reference(kernel, dtype, momentum, nesterov, weight_decay, rng):
    # Weight decay makes each row's step scale W (and feed the velocity with W): still linear in W and V, so a
    # large first layer's updates stay pending, every term scaled by its power of the step's matrix, W x too.
    # Calls of 1 to 27 rows, every kernel; then train_step (one row per call) on what the calls left. The decay
    # moves the weights by about 1e-4 (float32's tolerance is 1e-5), so a path that ignored it would fail.
    sgd = dict(momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    net, ref, X, Y = large_first_case(dtype, kernel, rng, n_rows=sum(CALL_SIZES))
    order = rng.permutation(len(X))
    train_in_calls(net, ref, X, Y, order, 0.01, dtype, **sgd)
    assert_same_weights(net, ref, dtype)
    for r in order[:4]:
        net.train_step(X[r], Y[r], learning_rate=0.01, **sgd)
        ref.train(X, Y, [r], 0.01, **sgd)
    assert_same_weights(net, ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_in", [70, 64, 32], ids=lambda n: f"in{n}")
@pytest.mark.parametrize("sgd", [dict(weight_decay=0.02), dict(momentum=0.9), dict(momentum=0.6, weight_decay=0.01),
                                 dict(momentum=0.6, nesterov=True, weight_decay=0.01)], ids=str)
@every_kernel
def test_momentum_and_decay_sweeps_match_reference_on_every_kernel(kernel, dtype, n_in, sgd, rng):
    # Per-sample SGD with weight decay alone: every layer below the pending path's size takes sweep_sgd's
    # vectors, W scaled by 1 - lr lam in the same sweep; with momentum, one vector sweep over W and V, four rows
    # per pass. Rows and columns outside whole vectors and groups of four, every kernel.
    spec, loss = WIDE_LAYERS
    X = representable(rng.normal(size=(sum(CALL_SIZES), n_in)), dtype)
    Y = representable(rng.normal(size=(sum(CALL_SIZES), spec[-1][0])), dtype)
    net = af.Network(n_in, [af.Dense(u, a) for u, a in spec], dtype=dtype, seed=5, loss=loss)
    net.kernel = kernel
    ref = ReferenceMLP(net.get_weights(), [a for _, a in spec], loss)
    train_in_calls(net, ref, X, Y, np.arange(len(X)), 0.02, dtype, **sgd)
    assert_same_weights(net, ref, dtype)


@pytest.mark.parametrize("lr, sgd", [(0.05, {}), (0.02, dict(momentum=0.9)), (0.02, dict(weight_decay=0.01))],
                         ids=["plain", "momentum", "decay"])
def test_divergence_with_first_layer_updates_pending_keeps_every_earlier_row(lr, sgd, rng):
    # Row 13's loss is infinite: rows 8 .. 12 have their first-layer updates pending when it is met, and the
    # weights afterwards must be those after rows 0 .. 12, every update applied.
    net, ref, X, Y = large_first_case("float64", None, rng, n_rows=40)
    Y[13] = 1e200
    with pytest.raises(af.DivergenceError, match="non-finite loss at row 13"):
        net.fit(X, Y, epochs=1, learning_rate=lr, shuffle=False, **sgd)
    ref.train(X, Y, np.arange(13), lr, **sgd)
    assert_same_weights(net, ref, "float64")


# First layers of at most 2048 weights, their rows padded to a multiple of 16 (af_internal.h), are kept
# transposed during per-sample calls of 4 or more rows (af_kernels.inc, tdense; AVX2 and AVX-512), with weight
# decay (the copy shrinks in the same sweep) and with momentum (the velocity transposed too, each weight through
# step1's vector form). 64 x 32 fills that exactly; 33 x 17, 5 x 70 and 7 x 40 leave outputs outside whole
# vectors and inputs outside the unrolled steps, and span one to five vectors of outputs per pass at 4, 8 and 16
# lanes; 64 x 33 (3072 padded) is just past it and checks the fused path on the same calls. Then train_step (one
# row per call, through W itself) on the velocity the calls left.
TFIRST_SGD = {"plain": {}, "decay": dict(weight_decay=0.02), "momentum": dict(momentum=0.6),
              "nesterov-decay": dict(momentum=0.6, nesterov=True, weight_decay=0.02)}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_in, units", [(64, 32), (33, 17), (5, 70), (7, 40), (64, 33)],
                         ids=["64x32", "33x17", "5x70", "7x40", "64x33"])
@pytest.mark.parametrize("sgd", TFIRST_SGD.values(), ids=TFIRST_SGD.keys())
@every_kernel
def test_transposed_first_layer_matches_reference_on_every_kernel(kernel, dtype, n_in, units, sgd, rng):
    X = representable(rng.normal(size=(sum(CALL_SIZES), n_in)), dtype)
    Y = representable(rng.normal(size=(sum(CALL_SIZES), 3)), dtype)
    lr = 0.02 if sgd.get("momentum") else 0.05
    net = af.Network(n_in, [af.Dense(units, "sigmoid"), af.Dense(3, "linear")], dtype=dtype, seed=2)
    net.kernel = kernel
    ref = ReferenceMLP(net.get_weights(), ["sigmoid", "linear"], "half_squared_error")
    order = rng.permutation(len(X))
    train_in_calls(net, ref, X, Y, order, lr, dtype, **sgd)
    assert_same_weights(net, ref, dtype)
    for r in order[:3]:
        net.train_step(X[r], Y[r], learning_rate=lr, **sgd)
        ref.train(X, Y, [r], lr, **sgd)
    assert_same_weights(net, ref, dtype)


def test_divergence_with_the_first_layer_transposed_keeps_every_earlier_row(rng):
    # Row 13's loss is infinite: the weights afterwards are those after rows 0 .. 12, the first layer's
    # transposed copy written back with row 12's update applied and nothing of row 13's.
    X = rng.normal(size=(40, 20))
    Y = rng.normal(size=(40, 2))
    Y[13] = 1e200
    net = af.Network(20, [af.Dense(24, "tanh"), af.Dense(2, "linear")], dtype="float64", seed=4)
    ref = ReferenceMLP(net.get_weights(), ["tanh", "linear"], "half_squared_error")
    with pytest.raises(af.DivergenceError, match="non-finite loss at row 13"):
        net.fit(X, Y, epochs=1, learning_rate=0.05, shuffle=False)
    ref.train(X, Y, np.arange(13), 0.05)
    assert_same_weights(net, ref, "float64")


# Softmax outputs of at most one vector (16 float32 / 8 float64 lanes with AVX-512, 8 / 4 with AVX2, 4 / 2 in the
# baseline) are computed in whole vectors, the lanes past the outputs masked (af_kernels.inc, activate_ws); the
# cross-entropy takes its log-sum-exp from the softmax's output at the maximum. Widths below, at and past each
# vector size, every kernel: predictions, loss and one epoch of per-sample SGD against the reference.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_out", [2, 3, 4, 5, 8, 9, 16, 17], ids=lambda n: f"out{n}")
@every_kernel
def test_softmax_widths_match_reference_on_every_kernel(kernel, dtype, n_out, rng):
    X = representable(rng.normal(size=(60, 9)), dtype)
    Y = np.eye(n_out)[rng.integers(0, n_out, len(X))]
    net = af.Network(9, [af.Dense(11, "relu"), af.Dense(n_out, "softmax")], dtype=dtype, seed=8,
                     loss="cross_entropy")
    net.kernel = kernel
    ref = ReferenceMLP(net.get_weights(), ["relu", "softmax"], "cross_entropy")
    np.testing.assert_allclose(net.predict(X), ref.predict(X), rtol=0, atol=10 * TOL[dtype])
    mean_loss = np.mean([ref.row_loss(x, y) for x, y in zip(X, Y)])
    assert net.evaluate(X, Y) == pytest.approx(mean_loss, rel=10 * TOL[dtype])
    hist = net.fit(X, Y, epochs=1, learning_rate=0.1, shuffle=False)
    want = ref.train(X, Y, np.arange(len(X)), 0.1) / len(X)
    assert hist.history["loss"][0] == pytest.approx(want, rel=10 * TOL[dtype])
    assert_same_weights(net, ref, dtype)
