"""The fast path of predict_one and of predict on a few rows (float32/float64 ndarrays checked through NumPy's C
API, converted and checked finite with the forward pass, without the GIL) gives bitwise what the general path
gives (the row converted and checked by annfast._validation, then _core.predict_rows), and leaves every
rejection to the general path, with its messages. Not timing-based."""
import numpy as np
import pytest

import annfast as af
from annfast import _core
from annfast import _validation as v

DTYPES = ["float32", "float64"]
# tiny: below NOGIL_MACS (the call keeps the GIL); wider: the forward pass runs without it
SHAPES = {"tiny": (4, [5], 3), "wider": (100, [48], 10)}


def make_net(shape, dtype):
    n_in, hidden, n_out = SHAPES[shape]
    layers = [af.Dense(h, "sigmoid") for h in hidden] + [af.Dense(n_out, "softmax")]
    return af.Network(n_in, layers, dtype=dtype, seed=5)


def general(net, X):
    """The outputs of the general path: X (2-D) checked and converted by _validation, then predict_rows."""
    X = v.as_inputs(X, net.n_inputs, net.dtype)
    out = np.empty((X.shape[0], net.n_outputs), dtype=net.dtype)
    _core.predict_rows(net._cur_spec, net._readable(), X, out)
    return out


class Sub(np.ndarray):
    pass


def forms_of_rows(X):
    """name -> X (2-D, float64 values that float32 must round) in a form the fast path takes."""
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    raw = np.frombuffer(b"\0" + X.astype(np.float64).tobytes(), dtype=np.float64, offset=1).reshape(X.shape)
    return {
        "float64": X.astype(np.float64),
        "float32": X.astype(np.float32),
        "strided float64": wide[:, ::2],
        "strided float32": wide.astype(np.float32)[:, ::2],
        "Fortran float64": np.asfortranarray(X),
        "Fortran float32": np.asfortranarray(X.astype(np.float32)),
        "reversed": X[::-1, ::-1].copy()[::-1, ::-1],
        "unaligned": raw,
        "read-only": np.require(X, requirements="C").copy().view(),
    }


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_path_gives_the_bits_of_the_general_path(shape, dtype):
    net = make_net(shape, dtype)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, net.n_inputs)) * 3.3
    for name, F in forms_of_rows(X).items():
        if name == "read-only":
            F.flags.writeable = False
        want = general(net, F)
        for i in range(X.shape[0]):
            got = net.predict_one(F[i])
            assert got.shape == (net.n_outputs,) and got.dtype == net.dtype, name
            assert got.tobytes() == want[i].tobytes(), (name, i)
            assert net.predict_one(F[i:i + 1]).tobytes() == want[i].tobytes(), (name, i)
        assert net.predict(F).tobytes() == want.tobytes(), name
        assert net.predict(F[1:3]).tobytes() == want[1:3].tobytes(), name
    # what the fast path does not take (a subclass, other byte order, lists) gives the same bits too
    want = general(net, X)
    assert net.predict_one(X[0].view(Sub)).tobytes() == want[0].tobytes()
    assert net.predict(X.view(Sub)).tobytes() == want.tobytes()
    assert net.predict_one(X[0].astype(">f8")).tobytes() == want[0].tobytes()
    assert net.predict_one(X[0].tolist()).tobytes() == want[0].tobytes()
    assert net.predict(X.astype(">f8")).tobytes() == want.tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_fast_path_gives_the_bits_of_the_general_path_for_many_rows(dtype):
    net = make_net("wider", dtype)
    X = np.random.default_rng(1).normal(size=(300, net.n_inputs))   # past the few rows the fast path takes
    for name, F in forms_of_rows(X).items():
        want = general(net, F)
        assert net.predict(F).tobytes() == want.tobytes(), name
        for k in (1, 2, 7, 8, 9, 33):
            assert net.predict(F[:k]).tobytes() == want[:k].tobytes(), (name, k)


@pytest.mark.parametrize("shape", SHAPES)
def test_fast_path_leaves_rejections_to_the_general_path(shape):
    net = make_net(shape, "float32")
    n = net.n_inputs
    before = net.parameters.tobytes()
    for dtype in ("float32", "float64"):
        for bad, what in ((np.nan, r"a non-finite value \(nan\)"), (np.inf, r"a non-finite value \(inf\)")):
            x = np.zeros(n, dtype=dtype)
            x[2] = bad
            with pytest.raises(ValueError, match=rf"x holds {what} at index 2"):
                net.predict_one(x)
            with pytest.raises(ValueError, match=rf"x holds {what} at index 2"):
                net.predict_one(np.repeat(x, 2)[::2])   # strided: converted, not used in place
            X = np.zeros((3, n), dtype=dtype)
            X[1, 2] = bad
            with pytest.raises(ValueError, match=rf"X holds {what} at row 1, column 2"):
                net.predict(X)
            with pytest.raises(ValueError, match=rf"X holds {what} at row 1, column 2"):
                net.predict(np.asfortranarray(X))
        with pytest.raises(ValueError, match=rf"x must hold one row of {n} values"):
            net.predict_one(np.zeros(n + 1, dtype=dtype))
        with pytest.raises(ValueError, match=rf"x must hold one row of {n} values"):
            net.predict_one(np.zeros((2, n), dtype=dtype))
        with pytest.raises(ValueError, match=rf"X has {n - 1} columns but the network has {n} inputs"):
            net.predict(np.zeros((2, n - 1), dtype=dtype))
        with pytest.raises(ValueError, match="X has no rows"):
            net.predict(np.zeros((0, n), dtype=dtype))
        with pytest.raises(ValueError, match="X must be 2-D"):
            net.predict(np.zeros(n, dtype=dtype))
    x = np.zeros(n)
    x[1] = 1e39
    with pytest.raises(ValueError, match=r"x holds 1e\+39 at index 1, which does not fit in float32"):
        net.predict_one(x)
    with pytest.raises(ValueError, match=r"X holds 1e\+39 at row 0, column 1, which does not fit in float32"):
        net.predict(x.reshape(1, -1))
    assert net.parameters.tobytes() == before


def test_params_of_another_form_are_checked_as_before():
    net = make_net("tiny", "float32")
    eng, spec, x = net._engine, net._cur_spec, np.zeros(net.n_inputs, dtype=np.float32)
    want = eng.predict_small(spec, x, 1, net._readable())
    assert eng.predict_small(spec, x, 1, None).tobytes() == want.tobytes()
    with pytest.raises(ValueError, match=r"params has \d+ values but the network needs \d+"):
        eng.predict_small(spec, x, 1, net._readable()[:-1].copy())
    with pytest.raises(ValueError):   # another dtype: the memoryview's error, as before
        eng.predict_small(spec, x, 1, net._readable().astype(np.float64))
    ro = net._readable().copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError):   # read-only: the memoryview's error, as before
        eng.predict_small(spec, x, 1, ro)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("target, fits", [
    ([0.2, 0.3, 0.5], True), ([0, 1, 0], True), ([0.2, 0.3, 0.50005], True),      # within the sum's tolerance
    ([0.2, 0.3, 0.5003], False), ([1, 1, 1], False), ([-0.1, 0.6, 0.5], False), ([np.nan, 0.5, 0.5], False),
])
def test_train_step_checks_softmax_targets_in_its_fast_path_by_the_rule_of_fit(dtype, target, fits):
    """A target row already of the network's dtype goes straight to C (no conversion): it is checked there by the
    rule of check_targets_fit_loss, so it is refused exactly when fit refuses it, before any weight changes."""
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(3, "softmax")], dtype=dtype, seed=0)
    x, y = np.ones(3, dtype=dtype), np.asarray(target, dtype=dtype)
    before = net.parameters.tobytes()
    try:
        net.fit(x[None, :], y[None, :], epochs=0)
        fit_refuses = False
    except ValueError:
        fit_refuses = True
    assert fit_refuses == (not fits)
    if fits:
        net.train_step(x, y)
        assert net.parameters.tobytes() != before
    else:
        with pytest.raises(ValueError, match="cross_entropy|non-finite"):
            net.train_step(x, y)
        assert net.parameters.tobytes() == before


def test_train_step_checks_sigmoid_cross_entropy_targets_in_its_fast_path():
    net = af.Network(3, [af.Dense(2, "sigmoid")], dtype="float32", seed=0, loss="cross_entropy")
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"holds 1\.5 at row 0, column 1"):
        net.train_step(np.ones(3, dtype=np.float32), np.array([0, 1.5], dtype=np.float32))
    assert net.parameters.tobytes() == before
    net.train_step(np.ones(3, dtype=np.float32), np.array([0, 1], dtype=np.float32))
    assert net.parameters.tobytes() != before
