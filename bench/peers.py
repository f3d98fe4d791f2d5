"""The Python-driven implementations the benchmark times: annfast itself, plain NumPy, PyTorch and scikit-learn.

Each class builds one network (sigmoid hidden layers, linear output, half squared error, plain SGD) from the given
initial weights and rows, and offers measurements ``f(count) -> seconds`` (see timing.py): an epoch of ``count``
rows that starts from the initial weights (reset outside the timed part), or ``count`` single-row calls. FANN, which
runs in a C driver, lives in fann.py.
"""
from __future__ import annotations

import itertools

import numpy as np
from data import LEARNING_RATE, cast_weights
from timing import now

#: the momentum of the fit(momentum) row (its learning rate is scaled by 1 - MOMENTUM)
MOMENTUM = 0.9


class Unavailable(Exception):
    """A peer that cannot run here (not installed); the message says why."""


def _repeat_rows(rows: list, count: int) -> list:
    """``count`` items taken from ``rows`` in order, starting over at the end."""
    return list(itertools.islice(itertools.cycle(rows), count))


class Annfast:
    """annfast's ``Network``: ``fit`` per epoch, ``train_step`` per row, ``predict`` and ``predict_one`` per row.

    Parameters
    ----------
    sizes : tuple of int
        Layer sizes, input first.
    weights : list of (W, b)
        Initial weights, W of shape (n_out, n_in).
    X, Y : ndarray
        Rows and targets (any float dtype; converted once here).
    dtype : {"float32", "float64"}
    learning_rate : float, default=0.01
    """

    def __init__(self, sizes, weights, X, Y, dtype: str = "float32", learning_rate: float = LEARNING_RATE):
        import annfast as af

        layers = [af.Dense(units, activation="sigmoid") for units in sizes[1:-1]]
        layers.append(af.Dense(sizes[-1], activation="linear"))
        self.net = af.Network(sizes[0], layers, dtype=dtype, seed=0)
        self.init = cast_weights(weights, dtype)
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.Y = np.ascontiguousarray(Y, dtype=dtype)
        self.xs = list(self.X)
        self.ys = list(self.Y)
        self.lr = learning_rate
        self.reset()

    @property
    def kernel(self) -> str:
        """The C kernel variant annfast runs ("avx2" or "base")."""
        return self.net.kernel

    def reset(self) -> None:
        """Set the initial weights again."""
        self.net.set_weights(self.init)

    def get_weights(self) -> list:
        """Current weights as a list of (W, b)."""
        return self.net.get_weights()

    def fit(self, count: int, batch_size: int = 1, shuffle: bool = False, **options) -> float:
        """Seconds of ``fit`` over the first ``count`` rows (one epoch, in order unless ``shuffle``), from the
        initial weights (and zero velocity).

        ``options``: passed on to ``fit``: ``momentum`` and ``learning_rate`` (default: the bench's), or
        ``n_threads``, ``hogwild`` and ``sync_every`` (the threads section).
        """
        self.reset()
        X, Y = self.X[:count], self.Y[:count]
        options.setdefault("learning_rate", self.lr)
        t0 = now()
        self.net.fit(X, Y, epochs=1, batch_size=batch_size, shuffle=shuffle, seed=0, **options)
        return now() - t0

    def fit_shuffled(self, count: int) -> float:
        """Seconds of ``fit(shuffle=True)``, fit's default: the rows in a random order (the same every time)."""
        return self.fit(count, shuffle=True)

    def fit_momentum(self, count: int) -> float:
        """Seconds of ``fit(momentum=0.9)`` (rows in order): what the most common addition to plain SGD costs.

        The learning rate is scaled by 1 - 0.9, so that the steps keep the plain run's size once the velocity has
        built up (at the plain rate, momentum 0.9 diverges on medium's 784 inputs).
        """
        return self.fit(count, momentum=MOMENTUM, learning_rate=self.lr * (1 - MOMENTUM))

    def fit_minibatch(self, count: int) -> float:
        """Seconds of ``fit(batch_size=32)`` over the first ``count`` rows, from the initial weights."""
        return self.fit(count, batch_size=32)

    def train_steps(self, count: int) -> float:
        """Seconds of ``train_step`` from Python on each of the first ``count`` rows, from the initial weights."""
        self.reset()
        xs, ys = self.xs[:count], self.ys[:count]
        step, lr = self.net.train_step, self.lr
        t0 = now()
        for x, y in zip(xs, ys):
            step(x, y, lr)
        return now() - t0

    def train_step_calls(self, count: int) -> float:
        """Seconds of ``count`` ``train_step`` calls on successive rows (weights not reset: a latency measurement)."""
        xs, ys = _repeat_rows(self.xs, count), _repeat_rows(self.ys, count)
        step, lr = self.net.train_step, self.lr
        t0 = now()
        for x, y in zip(xs, ys):
            step(x, y, lr)
        return now() - t0

    def predict_calls(self, count: int) -> float:
        """Seconds of ``count`` calls of ``predict`` on one preallocated (1, n_inputs) row."""
        row = np.ascontiguousarray(self.X[:1])
        predict = self.net.predict
        t0 = now()
        for _ in itertools.repeat(None, count):
            predict(row)
        return now() - t0

    def predict_one_calls(self, count: int) -> float:
        """Seconds of ``count`` calls of ``predict_one`` on one 1-D row."""
        row = np.ascontiguousarray(self.X[0])
        predict_one = self.net.predict_one
        t0 = now()
        for _ in itertools.repeat(None, count):
            predict_one(row)
        return now() - t0


class NumpyMLP:
    """Per-sample SGD written with NumPy operations per row: forward, backward, then the update.

    Parameters
    ----------
    sizes, weights, X, Y, dtype, learning_rate
        As for ``Annfast``.
    derivative_clip : tuple of float, optional
        Clip the sigmoid's output to this range before taking its derivative, as FANN does (its
        ``fann_activation_derived`` uses [0.01, 0.99]); only for the agreement checks.
    """

    def __init__(self, sizes, weights, X, Y, dtype: str = "float32", learning_rate: float = LEARNING_RATE,
                 derivative_clip: tuple[float, float] | None = None):
        self.dtype = np.dtype(dtype)
        self.init = cast_weights(weights, dtype)
        self.X = np.ascontiguousarray(X, dtype=dtype)
        self.Y = np.ascontiguousarray(Y, dtype=dtype)
        self.xs = list(self.X)
        self.ys = list(self.Y)
        self.lr = learning_rate
        self.clip = derivative_clip
        self.W = [W.copy() for W, _ in self.init]
        self.b = [b.copy() for _, b in self.init]
        self.scratch = [np.empty_like(W) for W in self.W]

    def reset(self) -> None:
        """Set the initial weights again."""
        for (W0, b0), W, b in zip(self.init, self.W, self.b):
            W[...] = W0
            b[...] = b0

    def get_weights(self) -> list:
        """Current weights as a list of (W, b)."""
        return [(W.copy(), b.copy()) for W, b in zip(self.W, self.b)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Output of the network for one 1-D row."""
        a = x
        for W, b in zip(self.W[:-1], self.b[:-1]):
            z = W @ a
            z += b
            np.negative(z, out=z)
            np.exp(z, out=z)
            z += 1
            a = np.reciprocal(z, out=z)
        out = self.W[-1] @ a
        out += self.b[-1]
        return out

    def _train_rows(self, xs, ys) -> None:
        Ws, bs, scratch, lr, clip = self.W, self.b, self.scratch, self.lr, self.clip
        last = len(Ws) - 1
        for x, y in zip(xs, ys):
            acts = [x]
            a = x
            for k in range(last):
                z = Ws[k] @ a
                z += bs[k]
                np.negative(z, out=z)
                np.exp(z, out=z)
                z += 1
                a = np.reciprocal(z, out=z)
                acts.append(a)
            out = Ws[last] @ a
            out += bs[last]
            delta = out - y                                  # dL/d(output) of L = 0.5 * sum((y - out)^2)
            for k in range(last, -1, -1):
                a_prev = acts[k]
                if k:                                         # propagate with the old weights first
                    back = Ws[k].T @ delta
                    s = a_prev if clip is None else np.clip(a_prev, clip[0], clip[1])
                    back *= s * (1 - s)
                np.multiply.outer(delta * -lr, a_prev, out=scratch[k])
                Ws[k] += scratch[k]
                bs[k] -= lr * delta
                if k:
                    delta = back

    def sgd_epoch(self, count: int) -> float:
        """Seconds of one per-sample SGD epoch over the first ``count`` rows, from the initial weights."""
        self.reset()
        xs, ys = self.xs[:count], self.ys[:count]
        t0 = now()
        self._train_rows(xs, ys)
        return now() - t0

    def predict_calls(self, count: int) -> float:
        """Seconds of ``count`` calls of ``forward`` on one 1-D row."""
        row = np.ascontiguousarray(self.X[0])
        forward = self.forward
        t0 = now()
        for _ in itertools.repeat(None, count):
            forward(row)
        return now() - t0


class TorchMLP:
    """PyTorch: ``nn.Linear`` layers with ``nn.Sigmoid``, loss ``0.5 * sum((out - y)^2)``, ``torch.optim.SGD``.

    Per-sample SGD is a Python loop of zero_grad / forward / backward / step per row; mini-batches use the mean
    over the batch of that loss (the same gradient as annfast's ``batch_size``). Parameters as for ``Annfast``.
    """

    def __init__(self, sizes, weights, X, Y, dtype: str = "float32", learning_rate: float = LEARNING_RATE):
        try:
            import torch
        except ImportError as exc:
            raise Unavailable(f"cannot import torch: {exc}; pip install '.[bench]'") from None
        self.torch = torch
        torch.set_num_threads(1)
        tdtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        modules = []
        for n_in, n_out in zip(sizes[:-2], sizes[1:-1]):
            modules += [torch.nn.Linear(n_in, n_out, dtype=tdtype), torch.nn.Sigmoid()]
        modules.append(torch.nn.Linear(sizes[-2], sizes[-1], dtype=tdtype))
        self.model = torch.nn.Sequential(*modules)
        self.linears = [m for m in modules if isinstance(m, torch.nn.Linear)]
        self.init = [(torch.from_numpy(W), torch.from_numpy(b)) for W, b in cast_weights(weights, dtype)]
        self.opt = torch.optim.SGD(self.model.parameters(), lr=learning_rate, momentum=0.0)
        self.X = torch.from_numpy(np.ascontiguousarray(X, dtype=dtype))
        self.Y = torch.from_numpy(np.ascontiguousarray(Y, dtype=dtype))
        self.xs = list(self.X)
        self.ys = list(self.Y)
        self.reset()

    def reset(self) -> None:
        """Set the initial weights again (in place: the optimizer keeps its parameters)."""
        with self.torch.no_grad():
            for lin, (W, b) in zip(self.linears, self.init):
                lin.weight.copy_(W)
                lin.bias.copy_(b)

    def get_weights(self) -> list:
        """Current weights as a list of (W, b) NumPy arrays."""
        return [(lin.weight.detach().numpy().copy(), lin.bias.detach().numpy().copy()) for lin in self.linears]

    def sgd_epoch(self, count: int) -> float:
        """Seconds of one per-sample SGD epoch over the first ``count`` rows, from the initial weights."""
        self.reset()
        xs, ys = self.xs[:count], self.ys[:count]
        model, opt = self.model, self.opt
        t0 = now()
        for x, y in zip(xs, ys):
            opt.zero_grad()
            loss = 0.5 * (model(x) - y).pow(2).sum()
            loss.backward()
            opt.step()
        return now() - t0

    def minibatch_epoch(self, count: int, batch_size: int = 32) -> float:
        """Seconds of one mini-batch SGD epoch (mean gradient of ``batch_size`` rows) over the first ``count`` rows."""
        self.reset()
        xb = list(self.X[:count].split(batch_size))
        yb = list(self.Y[:count].split(batch_size))
        model, opt = self.model, self.opt
        t0 = now()
        for x, y in zip(xb, yb):
            opt.zero_grad()
            loss = 0.5 * (model(x) - y).pow(2).sum() / x.shape[0]
            loss.backward()
            opt.step()
        return now() - t0

    def predict_calls(self, count: int) -> float:
        """Seconds of ``count`` forward calls on one 1-D row, inside one ``torch.inference_mode()`` block."""
        row = self.xs[0].clone()
        model = self.model
        t0 = now()
        with self.torch.inference_mode():
            for _ in itertools.repeat(None, count):
                model(row)
        return now() - t0


class SklearnMLP:
    """scikit-learn's ``MLPRegressor`` with plain SGD, timed through ``partial_fit`` over the epoch.

    Parameters
    ----------
    sizes, weights, X, Y, dtype, learning_rate
        As for ``Annfast``.
    batch_size : int, default=1
        Rows per update inside ``partial_fit``.
    """

    def __init__(self, sizes, weights, X, Y, dtype: str = "float32", learning_rate: float = LEARNING_RATE,
                 batch_size: int = 1):
        try:
            from sklearn.neural_network import MLPRegressor
        except ImportError as exc:
            raise Unavailable(f"cannot import sklearn: {exc}; pip install '.[bench]'") from None
        self.X = np.ascontiguousarray(X, dtype=dtype)
        Y = np.ascontiguousarray(Y, dtype=dtype)
        self.Y = Y.ravel() if Y.shape[1] == 1 else Y          # a (n, 1) target makes sklearn warn
        self.mlp = MLPRegressor(hidden_layer_sizes=tuple(sizes[1:-1]), activation="logistic", solver="sgd",
                                alpha=0.0, batch_size=batch_size, learning_rate="constant",
                                learning_rate_init=learning_rate, momentum=0.0, nesterovs_momentum=False,
                                shuffle=False, random_state=0)
        prime = max(2, batch_size)
        self.mlp.partial_fit(self.X[:prime], self.Y[:prime])     # allocates coefs_ and the optimizer
        self.init = cast_weights(weights, dtype)
        self.reset()

    def reset(self) -> None:
        """Set the initial weights again, in place: the optimizer holds references to these very arrays."""
        for k, (W, b) in enumerate(self.init):
            self.mlp.coefs_[k][...] = W.T                       # sklearn's coefs_ are (n_in, n_out)
            self.mlp.intercepts_[k][...] = b

    def get_weights(self) -> list:
        """Current weights as a list of (W, b), W of shape (n_out, n_in)."""
        return [(c.T.copy(), i.copy()) for c, i in zip(self.mlp.coefs_, self.mlp.intercepts_)]

    def sgd_epoch(self, count: int) -> float:
        """Seconds of one ``partial_fit`` over the first ``count`` rows, from the initial weights."""
        self.reset()
        X, Y = self.X[:count], self.Y[:count]
        t0 = now()
        self.mlp.partial_fit(X, Y)
        return now() - t0

    def predict_calls(self, count: int) -> float:
        """Seconds of ``count`` calls of ``predict`` on one (1, n_inputs) row."""
        row = np.ascontiguousarray(self.X[:1])
        predict = self.mlp.predict
        t0 = now()
        for _ in itertools.repeat(None, count):
            predict(row)
        return now() - t0
