"""Metrics of ``Network.evaluate(metrics=...)`` and ``Network.fit(metrics=...)``, computed from predictions in NumPy.

Every metric is a function ``metric(Y, P) -> float`` of the targets Y and the predictions P, both of shape
(n_rows, n_outputs) (class labels arrive one-hot encoded, as the network trains on them). Built in:
"accuracy" (classifier outputs: softmax, sigmoid, step), "rmse", "mae" and "r2" (any output). A metric may
also be any such callable; its name in the results (and for ``EarlyStopping(monitor=...)``) is its
``__name__``.
"""
from __future__ import annotations

import numpy as np

from ._validation import CLASSIFIER_OUTPUTS, row_classes

__all__ = ["accuracy", "mae", "r2", "resolve", "rmse"]


def accuracy(Y: np.ndarray, P: np.ndarray) -> float:
    """Fraction of rows whose predicted class is the target's (``_validation.row_classes``).

    The class is the argmax of several outputs, or whether one output is >= 0.5.
    """
    return float(np.mean(row_classes(P) == row_classes(Y)))


def rmse(Y: np.ndarray, P: np.ndarray) -> float:
    """Root of the mean squared error over every row and output."""
    return float(np.sqrt(np.mean((P.astype(np.float64) - Y) ** 2)))


def mae(Y: np.ndarray, P: np.ndarray) -> float:
    """Mean absolute error over every row and output."""
    return float(np.mean(np.abs(P.astype(np.float64) - Y)))


def r2(Y: np.ndarray, P: np.ndarray) -> float:
    """Coefficient of determination, averaged over the outputs (scikit-learn's ``r2_score``).

    A constant target column scores 1 when predicted exactly and 0 otherwise, as scikit-learn does.
    """
    Y = Y.astype(np.float64)
    ss_res = ((Y - P) ** 2).sum(axis=0)
    ss_tot = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
    safe = np.where(ss_tot > 0, ss_tot, 1.0)
    score = np.where(ss_tot > 0, 1.0 - ss_res / safe, np.where(ss_res == 0, 1.0, 0.0))
    return float(score.mean())


BUILTIN = {"accuracy": accuracy, "rmse": rmse, "mae": mae, "r2": r2}
# metrics for which larger is better (for mode="auto" of EarlyStopping, ModelCheckpoint, ReduceLROnPlateau)
LARGER_IS_BETTER = ("accuracy", "r2")


def resolve(metrics, output_activation: str) -> list:
    """Return ``[(name, function), ...]`` for a list of metric names and callables; refuse unknown ones.

    Raises
    ------
    ValueError
        For an unknown name, "accuracy" with an output that is not a classifier's, or a name given twice.
    TypeError
        For a list entry that is neither a name nor a callable.
    """
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    out = []
    for k, m in enumerate(metrics):
        if isinstance(m, str):
            if m not in BUILTIN:
                raise ValueError(f"unknown metric {m!r}; the built-in metrics are {', '.join(BUILTIN)} (or pass "
                                 f"a function metric(Y, P) -> float)")
            if m == "accuracy" and output_activation not in CLASSIFIER_OUTPUTS:
                raise ValueError(f"metric 'accuracy' needs a classifier output (softmax, sigmoid or step), the "
                                 f"output layer is {output_activation!r}; use 'rmse', 'mae' or 'r2'")
            out.append((m, BUILTIN[m]))
        elif callable(m):
            name = getattr(m, "__name__", None)
            if not isinstance(name, str) or not name or name == "<lambda>":
                raise ValueError(f"metrics[{k}] is a function without a usable __name__ ({name!r}); give it a "
                                 f"name (def my_metric(Y, P): ...) so that results can be reported under it")
            out.append((name, m))
        else:
            raise TypeError(f"metrics[{k}] must be a metric name or a function metric(Y, P) -> float, got {m!r}")
    names = [name for name, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"metric {dup[0]!r} is asked for twice")
    if {"loss", "lr"} & set(names):
        raise ValueError("a metric cannot be called 'loss' or 'lr': fit reports those itself")
    return out


def larger_is_better(name: str) -> bool:
    """Whether larger values of the metric called ``name`` (or "val_" + name) are better, for mode="auto"."""
    base = name[4:] if name.startswith("val_") else name
    return base in LARGER_IS_BETTER or "accuracy" in base
