"""The single C kernels through the _core test hooks: activations, derivatives and their numerics."""
import numpy as np
import pytest
from conftest import DTYPES
from reference import activate, derivative

import annfast as af
from annfast import _core
from annfast._validation import ACTIVATIONS

ELEMENTWISE = ["linear", "step", "sigmoid", "tanh", "relu", "leaky_relu"]
RTOL = {"float32": 2e-7, "float64": 1e-15}


def run(name, z, slope=0.01):
    a = np.empty_like(z)
    _core._activate(ACTIVATIONS[name], slope, z, a)
    d = np.empty_like(z)
    _core._activation_deriv(ACTIVATIONS[name], slope, z, a, d)
    return a, d


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ELEMENTWISE)
def test_activation_and_derivative_match_reference(name, dtype, rng):
    z = np.concatenate([rng.normal(scale=3, size=200), [0.0, -0.0, 1e-30, -1e-30]]).astype(dtype)
    a, d = run(name, z, 0.1)
    z64 = z.astype(np.float64)
    np.testing.assert_allclose(a, activate(name, z64, 0.1), rtol=4 * RTOL[dtype], atol=1e-300)
    np.testing.assert_allclose(d, derivative(name, z64, 0.1), rtol=64 * RTOL[dtype], atol=4 * RTOL[dtype])


def test_conventions_at_zero():
    z = np.array([0.0, -0.0])
    assert np.array_equal(run("step", z)[0], [1.0, 1.0])        # 1 if z >= 0
    assert np.array_equal(run("relu", z)[1], [0.0, 0.0])        # ReLU'(0) = 0
    assert np.array_equal(run("leaky_relu", z, 0.2)[1], [0.2, 0.2])
    assert np.array_equal(run("step", np.array([-3.0, 5.0]))[1], [1.0, 1.0])   # straight-through


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_inputs_stay_finite(dtype):
    z = np.array([-1e4, -1e30, -800.0, 800.0, 1e30, 1e4], dtype=dtype)
    for name in ("sigmoid", "tanh"):
        a, d = run(name, z)
        assert np.all(np.isfinite(a)) and np.all(np.isfinite(d))
    s, _ = run("sigmoid", z)
    assert s[0] == 0.0 and s[-1] == 1.0
    p = np.empty_like(z)
    _core._activate(ACTIVATIONS["softmax"], 0.0, z, p)
    assert np.all(np.isfinite(p)) and p.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_matches_reference(dtype, rng):
    z = rng.normal(scale=5, size=17).astype(dtype)
    p = np.empty_like(z)
    _core._activate(ACTIVATIONS["softmax"], 0.0, z, p)
    np.testing.assert_allclose(p, activate("softmax", z.astype(np.float64)), rtol=8 * RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_of_huge_logits_is_finite(dtype):
    net = af.Network(1, [af.Dense(3, "softmax")], dtype=dtype, seed=0)
    net.set_weights([(np.array([[1e4], [-1e4], [0.0]]), np.zeros(3))])
    X = np.array([[1.0], [-1.0]])
    y = np.array([1, 0])
    loss = net.evaluate(X, y)
    # row 0: logits (1e4, -1e4, 0) and true class 1: loss 2e4; row 1: (-1e4, 1e4, 0), class 0: 2e4
    assert loss == pytest.approx(2e4, rel=1e-6)
    grad = net.gradient(X, y)
    assert np.all(np.isfinite(grad))
    sig = af.Network(1, [af.Dense(1, "sigmoid")], dtype=dtype, seed=0, loss="cross_entropy")
    sig.set_weights([(np.array([[1e4]]), np.zeros(1))])
    assert sig.evaluate(X, np.array([0.0, 1.0])) == pytest.approx(1e4, rel=1e-6)


def test_all_finite():
    assert _core.all_finite(np.arange(37, dtype=np.float32))
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros(37)
        x[30] = bad
        assert not _core.all_finite(x)
    assert _core.all_finite(np.full(5, np.finfo(np.float64).max))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_infinite_pre_activations_takes_the_limit(dtype):
    z = np.array([np.inf, -np.inf, np.inf], dtype=dtype)
    a = np.empty_like(z)
    _core._activate(ACTIVATIONS["softmax"], 0.0, z, a)
    np.testing.assert_array_equal(a, [0.5, 0.0, 0.5])
    z = np.array([-np.inf, 1.0, -np.inf, 3.0], dtype=dtype)   # -inf beside finite entries: exp(-inf) = 0
    _core._activate(ACTIVATIONS["softmax"], 0.0, z, a := np.empty_like(z))
    np.testing.assert_allclose(a, [0, 1 / (1 + np.exp(2)), 0, 1 / (1 + np.exp(-2))], rtol=1e-6)
    z = np.full(3, -np.inf, dtype=dtype)                      # every entry -inf: equal shares
    _core._activate(ACTIVATIONS["softmax"], 0.0, z, a := np.empty_like(z))
    np.testing.assert_array_equal(a, np.full(3, 1 / np.asarray(3, dtype=dtype)))


@pytest.mark.parametrize("kernel", ["base", "avx2", "avx512"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_output_overflowing_from_finite_inputs_predicts_the_limit(dtype, kernel):
    """Finite weights and inputs whose products overflow z to +-inf: softmax gives 1/count on the +inf
    entries and 0 elsewhere (as sigmoid gives 0 and 1), in predict, predict_one and blocks of rows."""
    net = af.Network(2, [af.Dense(3, "softmax")], dtype=dtype, seed=0)
    if not _core.isa_supported(af._validation.KERNELS[kernel]):
        pytest.skip(f"this CPU cannot run {kernel}")
    net.kernel = kernel
    big = float(np.finfo(dtype).max) / 2
    net.set_weights([(np.array([[big, 0], [big, 0], [-big, 0]]), np.zeros(3))])
    x = np.array([4.0, 0.0], dtype=dtype)
    np.testing.assert_array_equal(net.predict_one(x), [0.5, 0.5, 0.0])
    np.testing.assert_array_equal(net.predict(np.tile(x, (40, 1))), np.tile([0.5, 0.5, 0.0], (40, 1)))
    np.testing.assert_array_equal(net.predict_one(-x), [0.0, 0.0, 1.0])
    sig = af.Network(2, [af.Dense(1, "sigmoid")], dtype=dtype, seed=0)
    sig.set_weights([(np.array([[big, 0]]), np.zeros(1))])
    assert sig.predict_one(x)[0] == 1.0
