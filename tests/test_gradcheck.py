"""Finite differences against the backward pass, for every activation x loss pair that has a gradient.

The step activation is left out on purpose: its true derivative is 0 almost everywhere and annfast
uses the straight-through convention (derivative 1); test_learning checks it by the perceptron rule.
"""
import numpy as np
import pytest

import annfast as af

HIDDEN = ["sigmoid", "tanh", "relu", "leaky_relu", "linear"]
OUTPUTS = [  # (output activation, units, loss)
    ("linear", 3, "half_squared_error"),
    ("sigmoid", 2, "half_squared_error"),
    ("tanh", 3, "half_squared_error"),
    ("relu", 2, "half_squared_error"),
    ("leaky_relu", 2, "half_squared_error"),
    ("softmax", 4, "half_squared_error"),
    ("softmax", 4, "cross_entropy"),
    ("sigmoid", 1, "cross_entropy"),
    ("sigmoid", 3, "cross_entropy"),
]


def targets(rng, out, units, loss, n):
    if out == "softmax":
        if loss == "cross_entropy":   # a mix of one-hot rows and soft probability rows
            Y = np.eye(units)[rng.integers(0, units, n)]
            Y[::2] = rng.dirichlet(np.ones(units), size=len(Y[::2]))
            return Y
        return rng.dirichlet(np.ones(units), size=n)
    if out == "sigmoid":
        return rng.uniform(0, 1, size=(n, units))
    return rng.normal(size=(n, units))


def numeric_gradient(net, X, Y, h=1e-6):
    p0 = net.parameters.copy()
    g = np.empty_like(p0)
    for i in range(p0.size):
        p = p0.copy()
        p[i] += h
        net.set_parameters(p)
        up = net.evaluate(X, Y)
        p[i] -= 2 * h
        net.set_parameters(p)
        down = net.evaluate(X, Y)
        g[i] = (up - down) / (2 * h)
    net.set_parameters(p0)
    return g


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("out,units,loss", OUTPUTS, ids=[f"{o}{u}-{loss}" for o, u, loss in OUTPUTS])
@pytest.mark.parametrize("hidden", HIDDEN)
def test_backward_matches_finite_differences(hidden, out, units, loss, depth, rng):
    sizes = rng.integers(2, 7, size=depth)
    layers = [af.Dense(int(s), hidden, negative_slope=0.07) for s in sizes] + [af.Dense(units, out)]
    net = af.Network(5, layers, dtype="float64", seed=int(rng.integers(1 << 30)), loss=loss)
    # weights larger than the initial ones so that every layer matters, random biases
    net.set_parameters(rng.normal(scale=0.6, size=net.n_params))
    if out == "relu":   # keep the output units alive, else the gradient is exactly zero
        weights = net.get_weights()
        weights[-1] = (weights[-1][0], rng.uniform(1.0, 2.0, size=units))
        net.set_weights(weights)
    X = rng.normal(size=(6, 5))
    Y = targets(rng, out, units, loss, 6)
    analytic = net.gradient(X, Y)
    numeric = numeric_gradient(net, X, Y)
    scale = max(np.linalg.norm(analytic), np.linalg.norm(numeric), 1e-12)
    assert np.linalg.norm(analytic - numeric) / scale < 1e-6
    # the gradient is not trivially zero, so the check has teeth
    assert np.linalg.norm(analytic) > 1e-6


def test_gradient_does_not_change_weights(rng):
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2, "linear")], dtype="float64", seed=1)
    before = net.parameters.copy()
    net.gradient(rng.normal(size=(5, 3)), rng.normal(size=(5, 2)))
    assert np.array_equal(before, net.parameters)
