"""A second, heavyweight oracle: PyTorch autograd with torch.optim.SGD (skipped without torch).

With shuffle=False, batch_size=1 and float64, training is a pure function of the initial weights and the
row order, so annfast must match PyTorch to ~1e-12 (DESIGN.md).
"""
import numpy as np
import pytest

import annfast as af

torch = pytest.importorskip("torch")

ACT = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z,
       "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01)}


def torch_train(weights, acts, X, Y, loss, lr, momentum, nesterov, weight_decay, batch_size, epochs):
    params = []
    for W, b in weights:
        params += [torch.tensor(W, dtype=torch.float64, requires_grad=True),
                   torch.tensor(b, dtype=torch.float64, requires_grad=True)]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    for _ in range(epochs):
        for s in range(0, len(X), batch_size):
            a = Xt[s:s + batch_size]
            for k, act in enumerate(acts):
                z = a @ params[2 * k].T + params[2 * k + 1]
                a = z if act == "softmax" else ACT[act](z)
            y = Yt[s:s + batch_size]
            if loss == "cross_entropy":
                per_row = torch.nn.functional.cross_entropy(z, y, reduction="none")
            else:
                per_row = 0.5 * ((a - y) ** 2).sum(dim=1)
            opt.zero_grad()
            per_row.mean().backward()
            opt.step()
    return [(params[2 * k].detach().numpy(), params[2 * k + 1].detach().numpy()) for k in range(len(acts))]


CASES = {
    "sgd": dict(momentum=0.0, nesterov=False, weight_decay=0.0, batch_size=1),
    "momentum-decay": dict(momentum=0.9, nesterov=False, weight_decay=0.01, batch_size=1),
    "nesterov-minibatch": dict(momentum=0.8, nesterov=True, weight_decay=0.0, batch_size=5),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("arch", ["tanh-linear", "relu-softmax"])
def test_matches_pytorch_sgd(arch, case):
    rng = np.random.default_rng(5)
    if arch == "tanh-linear":
        layers, acts, loss = [af.Dense(9, "tanh"), af.Dense(2, "linear")], ["tanh", "linear"], "half_squared_error"
        Y = rng.normal(size=(30, 2))
    else:
        layers, acts, loss = [af.Dense(9, "relu"), af.Dense(3, "softmax")], ["relu", "softmax"], "cross_entropy"
        Y = np.eye(3)[rng.integers(0, 3, 30)]
    X = rng.normal(size=(30, 4))
    net = af.Network(4, layers, dtype="float64", seed=11, loss=loss)
    kw = CASES[case]
    expected = torch_train(net.get_weights(), acts, X, Y, loss, 0.05, epochs=2, **kw)
    net.fit(X, Y, epochs=2, learning_rate=0.05, shuffle=False, **kw)
    for (W, b), (Wt, bt) in zip(net.get_weights(), expected):
        scale = max(1.0, np.abs(Wt).max(), np.abs(bt).max())
        np.testing.assert_allclose(W, Wt, rtol=0, atol=1e-12 * scale)
        np.testing.assert_allclose(b, bt, rtol=0, atol=1e-12 * scale)
