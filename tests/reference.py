"""An independent, plain NumPy multi-layer perceptron: the oracle for annfast's C kernels.

Written from the textbook definitions, not from annfast's code, and never imports annfast: a forward
pass keeping every layer's pre-activations, backpropagation of one row's loss to gradients of every
W and b (all at the current weights), and PyTorch-style SGD (mean gradient of a batch, L2 weight decay
on every parameter, momentum v = mu v + g, optional Nesterov). Everything in float64.
"""
from __future__ import annotations

import numpy as np


def _sigmoid(z):
    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1.0 + np.exp(-np.abs(z))))


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def activate(name: str, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """f(z) for one layer's pre-activation vector z."""
    if name == "linear":
        return z.copy()
    if name == "step":
        return (z >= 0).astype(np.float64)
    if name == "sigmoid":
        return _sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "softmax":
        return _softmax(z)
    raise ValueError(name)


def derivative(name: str, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """f'(z) elementwise (step: 1, the straight-through convention; relu: 0 at z = 0)."""
    if name in ("linear", "step"):
        return np.ones_like(z)
    if name == "sigmoid":
        s = _sigmoid(z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, slope)
    raise ValueError(name)


class ReferenceMLP:
    """The oracle network.

    Parameters
    ----------
    weights : list of (W, b)
        W of shape (n_out, n_in); copied to float64.
    activations : list of str
        One per layer.
    loss : str
        "half_squared_error" or "cross_entropy".
    slope : float
        Negative slope of leaky_relu.
    """

    def __init__(self, weights, activations, loss, slope=0.01):
        self.W = [np.array(W, dtype=np.float64) for W, _ in weights]
        self.b = [np.array(b, dtype=np.float64) for _, b in weights]
        self.act = list(activations)
        self.loss_name = loss
        self.slope = slope
        self.vW = [np.zeros_like(W) for W in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]

    def weights(self):
        return [(W.copy(), b.copy()) for W, b in zip(self.W, self.b)]

    def forward(self, x):
        """Pre-activations zs and activations acts (acts[0] is x)."""
        acts, zs = [np.asarray(x, dtype=np.float64)], []
        for W, b, name in zip(self.W, self.b, self.act):
            z = W @ acts[-1] + b
            zs.append(z)
            acts.append(activate(name, z, self.slope))
        return zs, acts

    def row_loss(self, x, y):
        zs, acts = self.forward(x)
        y = np.asarray(y, dtype=np.float64)
        p, z = acts[-1], zs[-1]
        if self.loss_name == "half_squared_error":
            return 0.5 * np.sum((y - p) ** 2)
        if self.act[-1] == "softmax":
            logp = z - z.max() - np.log(np.sum(np.exp(z - z.max())))
            return -np.sum(y * logp)
        # sigmoid outputs: binary cross-entropy, written from its definition with a guarded log
        p = np.clip(p, 1e-300, 1.0)
        q = np.clip(1.0 - acts[-1], 1e-300, 1.0)
        return -np.sum(y * np.log(p) + (1.0 - y) * np.log(q))

    def row_gradients(self, x, y):
        """Gradients (gW, gb) of one row's loss, by backpropagation with the chain rule."""
        zs, acts = self.forward(x)
        y = np.asarray(y, dtype=np.float64)
        p, z = acts[-1], zs[-1]
        out = self.act[-1]
        # dL/dp
        if self.loss_name == "half_squared_error":
            dp = p - y
        elif out == "softmax":
            dp = -y / p
        else:
            dp = -y / p + (1.0 - y) / (1.0 - p)
        # dL/dz of the output layer, through the full Jacobian of the output activation
        if out == "softmax":
            J = np.diag(p) - np.outer(p, p)
            delta = J.T @ dp
        else:
            delta = dp * derivative(out, z, self.slope)
        gW, gb = [None] * len(self.W), [None] * len(self.W)
        for k in range(len(self.W) - 1, -1, -1):
            gW[k] = np.outer(delta, acts[k])
            gb[k] = delta.copy()
            if k > 0:
                delta = (self.W[k].T @ delta) * derivative(self.act[k - 1], zs[k - 1], self.slope)
        return gW, gb

    def _update(self, gW, gb, lr, momentum, nesterov, weight_decay):
        for params, grads, vel in ((self.W, gW, self.vW), (self.b, gb, self.vb)):
            for k in range(len(params)):
                g = grads[k] + weight_decay * params[k]
                if momentum > 0:
                    vel[k] = momentum * vel[k] + g
                    g = g + momentum * vel[k] if nesterov else vel[k]
                params[k] = params[k] - lr * g

    def train(self, X, Y, order, lr, batch_size=1, momentum=0.0, nesterov=False, weight_decay=0.0):
        """One pass over X[order] in batches; returns the summed loss (each row before its update)."""
        total = 0.0
        order = np.asarray(order)
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            sW = [np.zeros_like(W) for W in self.W]
            sb = [np.zeros_like(b) for b in self.b]
            for r in rows:
                total += self.row_loss(X[r], Y[r])
                gW, gb = self.row_gradients(X[r], Y[r])
                for k in range(len(self.W)):
                    sW[k] += gW[k]
                    sb[k] += gb[k]
            n = len(rows)
            self._update([g / n for g in sW], [g / n for g in sb], lr, momentum, nesterov, weight_decay)
        return total

    def predict(self, X):
        return np.array([self.forward(x)[1][-1] for x in X])
