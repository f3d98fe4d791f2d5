"""The public contract of DESIGN.md: shapes, weights, the flat buffer, reproducibility by seed."""
import numpy as np
import pytest
from conftest import DTYPES

import annfast as af


def small_net(dtype="float32", seed=0, **kw):
    return af.Network(4, [af.Dense(8, "relu"), af.Dense(3, "tanh"), af.Dense(2, "linear")],
                      dtype=dtype, seed=seed, **kw)


def test_contract_example_runs(rng):
    X = rng.normal(size=(50, 4))
    y = X[:, 0] - 2 * X[:, 1]
    net = af.Network(4, [af.Dense(8, activation="relu"), af.Dense(1, activation="linear")],
                     dtype="float32", seed=0)
    hist = net.fit(X, y, epochs=20, learning_rate=0.01, batch_size=1, shuffle=True,
                   loss="half_squared_error", momentum=0.0)
    assert len(hist.history["loss"]) == 20 and hist.epoch == list(range(20))
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert net.predict(X).shape == (50, 1)
    assert isinstance(net.evaluate(X, y), float)
    assert isinstance(net.train_step(X[0], y[0]), float)


@pytest.mark.parametrize("dtype", DTYPES)
def test_shapes_and_dtypes(dtype, rng):
    net = small_net(dtype)
    assert net.n_params == (4 * 8 + 8) + (8 * 3 + 3) + (3 * 2 + 2)
    assert net.dtype == np.dtype(dtype) and net.parameters.dtype == np.dtype(dtype)
    out = net.predict(rng.normal(size=(7, 4)))
    assert out.shape == (7, 2) and out.dtype == np.dtype(dtype)
    assert net.predict_one(rng.normal(size=4)).shape == (2,)
    weights = net.get_weights()
    assert [(W.shape, b.shape) for W, b in weights] == [((8, 4), (8,)), ((3, 8), (3,)), ((2, 3), (2,))]


def test_flat_buffer_layout_matches_get_weights():
    net = small_net()
    flat = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in net.get_weights()])
    np.testing.assert_array_equal(flat, net.parameters)
    assert not net.parameters.flags.writeable


def test_predict_equals_manual_forward_pass(rng):
    net = small_net("float64")
    X = rng.normal(size=(5, 4))
    a = X
    for (W, b), act in zip(net.get_weights(), [lambda z: np.maximum(z, 0), np.tanh, lambda z: z]):
        a = act(a @ W.T + b)
    np.testing.assert_allclose(net.predict(X), a, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(net.predict_one(X[2]), a[2], rtol=1e-13, atol=1e-13)


def test_set_weights_round_trip_and_copies(rng):
    net = small_net("float64")
    new = [(rng.normal(size=W.shape), rng.normal(size=b.shape)) for W, b in net.get_weights()]
    net.set_weights(new)
    for (W, b), (Wn, bn) in zip(net.get_weights(), new):
        np.testing.assert_array_equal(W, Wn)
        np.testing.assert_array_equal(b, bn)
    got = net.get_weights()
    got[0][0][...] = 0                       # a copy: the network is unaffected
    assert np.any(net.get_weights()[0][0] != 0)


def test_set_parameters_round_trip(rng):
    net = small_net("float64")
    flat = rng.normal(size=net.n_params)
    net.set_parameters(flat)
    np.testing.assert_array_equal(net.parameters, flat)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", [1, 5, None])
def test_same_seed_gives_bitwise_identical_training(dtype, batch_size, rng):
    X = rng.normal(size=(64, 4))
    y = rng.normal(size=(64, 2))
    results = []
    for _ in range(2):
        net = small_net(dtype, seed=42)
        net.fit(X, y, epochs=3, learning_rate=0.02, batch_size=batch_size, momentum=0.5)
        results.append(net.parameters.tobytes())
    assert results[0] == results[1]


def test_different_seeds_give_different_nonzero_initial_weights():
    a, b = small_net(seed=1), small_net(seed=2)
    assert a.parameters.tobytes() != b.parameters.tobytes()
    for net in (a, b):
        for W, bias in net.get_weights():
            assert np.all(W != 0)                   # close to 0 but never 0
            assert np.all(np.abs(W) <= np.sqrt(6.0 / W.shape[1]) + 1e-7)   # small (He/Glorot bound)
            assert np.all(bias == 0)


def test_no_seed_draws_fresh_weights():
    assert small_net(seed=None).parameters.tobytes() != small_net(seed=None).parameters.tobytes()


def test_fit_seed_controls_shuffle_only(rng):
    X, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 2))
    nets = [small_net(seed=0) for _ in range(3)]
    nets[0].fit(X, y, epochs=2, seed=5)
    nets[1].fit(X, y, epochs=2, seed=5)
    nets[2].fit(X, y, epochs=2, seed=6)
    assert nets[0].parameters.tobytes() == nets[1].parameters.tobytes()
    assert nets[0].parameters.tobytes() != nets[2].parameters.tobytes()


def test_shuffle_false_follows_row_order(rng):
    # the same updates in the same order; fit fuses each row's first-layer update into the next row's
    # forward sweep, which may round the last bit differently
    X, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 2))
    a, b = small_net("float64"), small_net("float64")
    a.fit(X, y, epochs=1, shuffle=False)
    for i in range(20):
        b.train_step(X[i], y[i])
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=1e-14, atol=1e-15)
    c = small_net("float64")
    c.fit(X, y[::-1], epochs=1, shuffle=False)          # a different order gives different weights
    assert np.abs(c.parameters - a.parameters).max() > 1e-6


def test_partial_fit_is_one_pass_in_order(rng):
    X, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 2))
    a, b = small_net("float64"), small_net("float64")
    loss = a.partial_fit(X, y, learning_rate=0.03)
    hist = b.fit(X, y, epochs=1, learning_rate=0.03, shuffle=False)
    assert loss == hist.history["loss"][0]
    np.testing.assert_array_equal(a.parameters, b.parameters)


def test_epochs_zero_changes_nothing(rng):
    net = small_net()
    before = net.parameters.tobytes()
    hist = net.fit(rng.normal(size=(5, 4)), rng.normal(size=(5, 2)), epochs=0)
    assert len(hist) == 0 and net.parameters.tobytes() == before


def test_integer_labels_are_one_hot_for_softmax(rng):
    X = rng.normal(size=(12, 4))
    labels = rng.integers(0, 3, 12)
    a = af.Network(4, [af.Dense(5, "tanh"), af.Dense(3, "softmax")], seed=0)
    b = af.Network(4, [af.Dense(5, "tanh"), af.Dense(3, "softmax")], seed=0)
    assert a.loss == "cross_entropy"
    a.fit(X, labels, epochs=2, shuffle=False)
    b.fit(X, np.eye(3)[labels], epochs=2, shuffle=False)
    assert a.parameters.tobytes() == b.parameters.tobytes()
    assert b.train_step(X[0], 2) == pytest.approx(a.train_step(X[0], [0, 0, 1]), rel=1e-6)


def test_softmax_outputs_are_probabilities(rng):
    net = af.Network(4, [af.Dense(5, "tanh"), af.Dense(3, "softmax")], dtype="float64", seed=0)
    p = net.predict(rng.normal(size=(10, 4)) * 100)
    assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0)


def test_fit_loss_argument_becomes_network_loss(rng):
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(1, "sigmoid")], seed=0)
    assert net.loss == "half_squared_error"
    X, y = rng.normal(size=(10, 3)), rng.integers(0, 2, 10).astype(float)
    net.fit(X, y, loss="cross_entropy")
    assert net.loss == "cross_entropy"
    p = net.predict(X)[:, 0]
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert net.evaluate(X, y) == pytest.approx(bce, rel=1e-5)
    assert net.evaluate(X, y, loss="half_squared_error") == pytest.approx(0.5 * np.mean((p - y) ** 2), rel=1e-5)


def test_reset_optimizer_state_forgets_velocity(rng):
    X, y = rng.normal(size=(10, 4)), rng.normal(size=(10, 2))
    a, b = small_net("float64"), small_net("float64")
    for net in (a, b):
        net.fit(X, y, epochs=1, momentum=0.9, shuffle=False)
    b.reset_optimizer_state()
    for net in (a, b):
        net.fit(X, y, epochs=1, momentum=0.9, shuffle=False)
    assert a.parameters.tobytes() != b.parameters.tobytes()


def test_inputs_of_other_layouts_are_converted_once(rng):
    net = small_net("float64")
    X = rng.normal(size=(9, 8))[:, ::2]           # non-contiguous
    expected = net.predict(np.ascontiguousarray(X))
    np.testing.assert_array_equal(net.predict(X), expected)
    np.testing.assert_array_equal(net.predict(np.asfortranarray(X)), expected)
    np.testing.assert_array_equal(net.predict(X.tolist()), expected)
    ro = np.ascontiguousarray(X)
    ro.flags.writeable = False
    np.testing.assert_array_equal(net.predict(ro), expected)


@pytest.mark.parametrize("batch_size", [1, 6])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_kernel_variant_agrees_with_the_baseline(dtype, batch_size, rng):
    from annfast import _core
    from annfast._validation import KERNELS
    kernels = [k for k, code in KERNELS.items() if _core.isa_supported(code)]
    X, y = rng.normal(size=(203, 4)), rng.normal(size=(203, 2))
    results = {}
    for kernel in kernels:
        net = af.Network(4, [af.Dense(37, "tanh"), af.Dense(19, "sigmoid"), af.Dense(2)], dtype=dtype, seed=3)
        net.kernel = kernel
        net.fit(X, y, epochs=3, learning_rate=0.01, batch_size=batch_size, seed=1)
        results[kernel] = (net.parameters.copy(), net.predict(X), net.gradient(X, y))
    tol = 1e-12 if dtype == "float64" else 2e-5
    for kernel in kernels:
        for got, want in zip(results[kernel], results["base"]):
            np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, np.abs(want).max()))
    print("kernels compared:", kernels)


def test_repr():
    expected = "Dense(3, activation='leaky_relu', negative_slope=0.2)"
    assert repr(af.Dense(3, "leaky_relu", negative_slope=0.2)) == expected
    assert "Network(4, [Dense(8" in repr(small_net())
    assert af.__version__


def test_large_batches_of_a_large_network_train_in_blocks(rng):
    # a network so large that a chunk holds fewer than four rows, with batches larger than four chunks
    net = af.Network(700, [af.Dense(1000, "tanh"), af.Dense(2)], seed=0)
    assert net.n_params > 700_000
    X, y = rng.normal(size=(40, 700)), rng.normal(size=(40, 2))
    before = net.parameters.copy()
    hist = net.fit(X, y, epochs=1, batch_size=20, learning_rate=1e-3)
    assert np.isfinite(hist.history["loss"][0]) and not np.array_equal(before, net.parameters)


def test_default_kernel_follows_the_row_widths(monkeypatch):
    from annfast import _core
    from annfast._validation import KERNELS
    monkeypatch.delenv("ANNFAST_KERNEL", raising=False)
    runs = {k for k, code in KERNELS.items() if _core.isa_supported(code)}
    narrow = "avx2" if "avx2" in runs else "base"
    wide = "avx512" if "avx512" in runs else narrow
    for dtype in ("float32", "float64"):
        # rows of 4 and 8 inputs: most of the work is lane sums and tails, the narrow vectors win
        assert af.Network(4, [af.Dense(8), af.Dense(1)], dtype=dtype).kernel == narrow
        # most weights in rows of 64 or 784 inputs
        assert af.Network(64, [af.Dense(32), af.Dense(10)], dtype=dtype).kernel == wide
        assert af.Network(4, [af.Dense(256), af.Dense(256), af.Dense(1)], dtype=dtype).kernel == wide
    # 24 inputs fill two 64-byte vectors of float64 but not of float32
    assert af.Network(24, [af.Dense(24), af.Dense(1)], dtype="float64").kernel == wide
    assert af.Network(24, [af.Dense(24), af.Dense(1)], dtype="float32").kernel == narrow
    monkeypatch.setenv("ANNFAST_KERNEL", "base")
    assert af.Network(64, [af.Dense(32), af.Dense(10)]).kernel == "base"
    monkeypatch.setenv("ANNFAST_KERNEL", "sse9")
    with pytest.raises(ValueError, match="ANNFAST_KERNEL"):
        af.Network(4, [af.Dense(1)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parameter_buffers_start_on_a_cache_line(dtype, rng):
    # the kernels stream over the parameters in 64-byte vectors: a buffer off a 64-byte boundary makes
    # every vector straddle two cache lines (AVX-512 ran up to 1.5x slower, depending on where NumPy's
    # allocator happened to put the array)
    import pickle

    from annfast import _core
    for n in (0, 1, 3, 17, 1000, 100_003):
        for fill in (_core.aligned_empty, _core.aligned_zeros):
            a = fill(n, dtype)
            assert a.shape == (n,) and a.dtype == np.dtype(dtype) and a.flags.c_contiguous and a.flags.writeable
            assert n == 0 or a.ctypes.data % 64 == 0   # (NumPy gives an empty slice the base's address)
        assert not _core.aligned_zeros(n, dtype).any()
    for sizes in ((3, 5, 1), (64, 32, 10), (7, 9, 9, 2)):
        net = af.Network(sizes[0], [af.Dense(u, activation="sigmoid") for u in sizes[1:]], dtype=dtype, seed=1)
        X = rng.normal(size=(40, sizes[0]))
        y = rng.normal(size=(40, sizes[-1]))
        net.fit(X, y, epochs=1, momentum=0.9, batch_size=4)
        copy = pickle.loads(pickle.dumps(net))
        for n_ in (net, copy):
            assert n_.parameters.ctypes.data % 64 == 0
            assert n_._engine.backup.ctypes.data % 64 == 0
            assert n_._engine.velocity.ctypes.data % 64 == 0
            assert n_._grad.ctypes.data % 64 == 0 or n_ is copy
        np.testing.assert_array_equal(copy.parameters, net.parameters)
        np.testing.assert_array_equal(copy.predict(X), net.predict(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_rows_outputs_do_not_depend_on_the_other_rows_of_the_call(dtype, rng):
    # predict and evaluate go through the same block kernels for one row, a few rows or many
    from annfast import _core
    from annfast._validation import KERNELS
    X = rng.normal(size=(45, 70))
    y = rng.normal(size=(45, 3))
    for kernel in [k for k, code in KERNELS.items() if _core.isa_supported(code)]:
        net = af.Network(70, [af.Dense(37, "tanh"), af.Dense(3)], dtype=dtype, seed=2)
        net.kernel = kernel
        whole = net.predict(X)
        np.testing.assert_array_equal(np.vstack([net.predict(X[i:i + 1]) for i in range(len(X))]), whole)
        np.testing.assert_array_equal(np.vstack([net.predict_one(x) for x in X]), whole)
        np.testing.assert_array_equal(np.vstack([net.predict(X[i:i + 7]) for i in range(0, len(X), 7)]), whole)
        rows = [net.evaluate(X[i:i + 1], y[i:i + 1]) for i in range(len(X))]
        assert net.evaluate(X, y) == pytest.approx(np.mean(rows), rel=1e-12)


def test_snapshot_and_restore_put_training_back_bitwise():
    # weights, velocity, random stream, history and loss: training resumed from a restored snapshot repeats
    # training resumed at the snapshot, bit for bit
    rng = np.random.default_rng(3)
    X = rng.normal(size=(64, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    net = af.Network(4, [af.Dense(8, "tanh"), af.Dense(3, "softmax")], seed=0)
    net.fit(X, y, epochs=1, learning_rate=0.05, momentum=0.9)
    snap = net.snapshot()
    hist = net.history
    net.fit(X, y, epochs=2, learning_rate=0.05, momentum=0.9)
    after = net.parameters.copy()
    net.fit(X, y, epochs=1, learning_rate=0.5, loss="half_squared_error")   # change everything snapshot holds
    net.restore(snap)
    assert net.history is hist and net.loss == "cross_entropy"
    net.fit(X, y, epochs=2, learning_rate=0.05, momentum=0.9)
    np.testing.assert_array_equal(net.parameters, after)
    np.testing.assert_array_equal(net.predict(X), net.predict(X))


def test_restore_refuses_what_is_not_a_snapshot_of_this_network():
    net = af.Network(4, [af.Dense(8, "tanh"), af.Dense(1)], seed=0)
    other = af.Network(4, [af.Dense(9, "tanh"), af.Dense(1)], seed=0)
    with pytest.raises(TypeError, match="restore takes a Snapshot"):
        net.restore(net.__getstate__())
    with pytest.raises(ValueError, match="the snapshot is of a network of 55 float32 parameters"):
        net.restore(other.snapshot())
