"""Turning user input into checked C-contiguous arrays and checked hyper-parameters.

Every check says what is wrong, where (argument, row, column) and, where there is one, the fix. The
Cython layer re-checks what memory safety depends on; this layer owns the helpful messages.
"""
from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from . import _core

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}

# Name tables built from the C enums (one source of truth): AF_ACT_LEAKY_RELU -> "leaky_relu".
ACTIVATIONS = {m.name[len("AF_ACT_"):].lower(): int(m) for m in _core.af_activation}
LOSSES = {"half_squared_error": int(_core.af_loss.AF_LOSS_HALF_SQUARED),
          "cross_entropy": int(_core.af_loss.AF_LOSS_CROSS_ENTROPY)}
KERNELS = {m.name[len("AF_ISA_"):].lower(): int(m) for m in _core.af_isa}


def _names(table):
    return ", ".join(repr(k) for k in table)


def check_dtype(dtype) -> np.dtype:
    """Return the network dtype for ``dtype`` (a name, NumPy dtype or type): float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise TypeError(f"dtype must be one of {_names(DTYPES)}, got {dtype!r}")
    return DTYPES[dt.name]


def check_name(value, table: dict, what: str) -> str:
    """Return ``value`` if it is a key of ``table``; else raise a ValueError listing the valid names."""
    if not isinstance(value, str) or value not in table:
        raise ValueError(f"unknown {what} {value!r}; expected one of {_names(table)}")
    return value


def check_int(value, name: str, minimum: int | None = None) -> int:
    """Return ``value`` as an integer (not a bool) >= minimum."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    return v


def check_float(value, name: str, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a finite float within [low, high] (bounds excluded where *_open)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_sgd(learning_rate, momentum, weight_decay, nesterov) -> tuple[float, float, float, bool]:
    """Check SGD settings: learning_rate > 0, 0 <= momentum < 1, weight_decay >= 0."""
    lr = check_float(learning_rate, "learning_rate", low=0.0, low_open=True)
    mu = check_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    wd = check_float(weight_decay, "weight_decay", low=0.0)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
    if nesterov and mu == 0:
        raise ValueError("nesterov=True needs momentum > 0")
    return lr, mu, wd, bool(nesterov)


def _numeric(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, name: str, original=None, locate=None) -> None:
    """Raise a ValueError naming the first non-finite value of ``arr`` (rows and columns for 2-D).

    ``arr`` may be a converted copy of ``original``: a finite value that does not fit the new dtype
    is then reported as such. ``locate``, if given, turns the index tuple into the words naming it.
    """
    if arr.dtype.kind != "f":
        return
    flat = arr.reshape(-1) if arr.flags.c_contiguous else np.ascontiguousarray(arr).reshape(-1)
    if flat.size == 0 or _core.all_finite(flat if flat.dtype in (np.float32, np.float64) else flat.astype(np.float64)):
        return
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    if locate is not None:
        where = locate(idx)
    else:
        where = f"row {idx[0]}, column {idx[1]}" if len(idx) == 2 else f"index {idx[0]}"
    if original is not None and np.isfinite(original[idx]):
        value = original[idx]
        shown = repr(float(value)) if np.isfinite(np.float64(value)) else str(value)
        raise ValueError(f"{name} holds {shown} at {where}, which does not fit in {arr.dtype} (largest "
                         f"magnitude {float(np.finfo(arr.dtype).max):.7g}); scale it down or use float64")
    raise ValueError(f"{name} holds a non-finite value ({arr[idx]}) at {where}")


def cast_finite(a, dtype: np.dtype, name: str, locate=None) -> np.ndarray:
    """Return ``a`` (real numbers) as a C-contiguous array of ``dtype``, every value finite in ``dtype``.

    The one place where user numbers are narrowed (float64 -> float32, longdouble -> float64): a value
    that overflows the target dtype raises a ValueError naming it and where it is (``locate`` maps an
    index tuple to words), instead of becoming inf with a RuntimeWarning. Nothing is modified.
    """
    arr = np.asarray(a)
    with np.errstate(over="ignore", invalid="ignore"):   # an overflow becomes inf, reported just below
        out = np.ascontiguousarray(arr, dtype=dtype)
    _check_finite(out, name, arr, locate)
    return out


def as_inputs(X, n_inputs: int, dtype: np.dtype, name: str = "X") -> np.ndarray:
    """Return X as a C-contiguous (n_rows, n_inputs) array of ``dtype``, checked finite and non-empty."""
    arr = _numeric(X, name)
    if arr.ndim != 2:
        hint = (f"; for one row use {name}.reshape(1, -1)" if arr.ndim == 1 and n_inputs > 1
                else f"; for one input column use {name}.reshape(-1, 1)" if arr.ndim == 1 else "")
        raise ValueError(f"{name} must be 2-D (n_rows, n_inputs), got shape {arr.shape}{hint}")
    if arr.shape[1] != n_inputs:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the network has {n_inputs} inputs")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    return cast_finite(arr, dtype, name)


def as_targets(y, n_rows: int, n_outputs: int, dtype: np.dtype, name: str = "y") -> np.ndarray:
    """Return y as a C-contiguous (n_rows, n_outputs) array of ``dtype``.

    A 1-D y is one column when the network has one output, and integer class labels (one-hot
    encoded here) when it has several.
    """
    arr = _numeric(y, name)
    if arr.ndim == 1 and n_outputs > 1:
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{name} is 1-D but the network has {n_outputs} outputs; pass "
                             f"(n_rows, {n_outputs}) targets or integer class labels")
        bad = np.flatnonzero((arr < 0) | (arr >= n_outputs))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = {arr[bad[0]]} is not a class label in "
                             f"[0, {n_outputs}) for a network with {n_outputs} outputs")
        onehot = np.zeros((arr.shape[0], n_outputs), dtype=dtype)
        onehot[np.arange(arr.shape[0]), arr] = 1
        arr = onehot
    elif arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n_rows, n_outputs), got shape {arr.shape}")
    if arr.shape[1] != n_outputs:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the network has {n_outputs} outputs")
    if arr.shape[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but {name} has {arr.shape[0]}")
    return cast_finite(arr, dtype, name)


def as_row(x, width: int, dtype: np.dtype, name: str) -> np.ndarray:
    """Return one row as a C-contiguous 1-D array of ``width`` values (a scalar for width 1)."""
    arr = _numeric(x, name)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    elif arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.shape[0] != width:
        raise ValueError(f"{name} must hold one row of {width} values, got shape {np.shape(x)}")
    return cast_finite(arr, dtype, name)
