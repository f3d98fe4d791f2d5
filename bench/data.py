"""The benchmark's shared inputs: the network shapes, the synthetic data and the initial weights every peer starts from.

Every implementation trains the same network (sigmoid hidden layers, linear output, half squared error) on the same
rows from the same weights, so this module is the single source of all three; nothing here times anything.
"""
from __future__ import annotations

import numpy as np

#: name -> layer sizes, input first
SHAPES: dict[str, tuple[int, ...]] = {
    "tiny": (4, 8, 1),
    "small": (64, 32, 10),
    "medium": (784, 128, 10),
    "large": (784, 512, 512, 10),
}

LEARNING_RATE = 0.01


def shape_label(name: str) -> str:
    """Return e.g. ``"medium 784-128-10"`` for a shape name."""
    return f"{name} {'-'.join(str(s) for s in SHAPES[name])}"


def n_params(sizes: tuple[int, ...]) -> int:
    """Number of weights and biases of a fully connected network with these layer sizes."""
    return sum((n_in + 1) * n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def make_data(sizes: tuple[int, ...], n_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Make synthetic regression rows for a network with these layer sizes.

    Parameters
    ----------
    sizes : tuple of int
        Layer sizes, input first.
    n_rows : int
        Number of rows.
    seed : int, default=0
        Seed; the same seed gives the same rows.

    Returns
    -------
    X : ndarray of shape (n_rows, sizes[0]), float64
        Standard normal inputs.
    Y : ndarray of shape (n_rows, sizes[-1]), float64
        Targets from a fixed random teacher, ``0.5 * tanh(X @ T / sqrt(n_in))``, so bounded by 0.5.
    """
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_rows, sizes[0]))
    T = rng.standard_normal((sizes[0], sizes[-1]))
    Y = 0.5 * np.tanh(X @ T / np.sqrt(sizes[0]))
    return X, Y


def initial_weights(sizes: tuple[int, ...], seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    """Make the initial weights that every peer starts from.

    Glorot-uniform W and small uniform biases (not zero, so that a wrong bias mapping in a peer shows up in the
    agreement checks).

    Parameters
    ----------
    sizes : tuple of int
        Layer sizes, input first.
    seed : int, default=1
        Seed; the same seed gives the same weights.

    Returns
    -------
    list of (W, b)
        Per layer, float64; W of shape (n_out, n_in) (PyTorch's Linear layout), b of shape (n_out,).
    """
    rng = np.random.default_rng(seed)
    weights = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (n_in + n_out))
        weights.append((rng.uniform(-limit, limit, (n_out, n_in)), rng.uniform(-0.1, 0.1, n_out)))
    return weights


def cast_weights(weights, dtype) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return C-contiguous copies of ``weights`` (list of (W, b)) in ``dtype``."""
    return [(np.ascontiguousarray(W, dtype=dtype), np.ascontiguousarray(b, dtype=dtype)) for W, b in weights]


def max_abs_diff(a, b) -> float:
    """Largest absolute difference between two weight lists (list of (W, b)), compared in float64."""
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for pa, pb in zip(a, b) for x, y in zip(pa, pb))
