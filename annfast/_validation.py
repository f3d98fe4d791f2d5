"""Turning user input into checked C-contiguous arrays and checked hyper-parameters.

Every check says what is wrong, where (argument, row, column) and, where there is one, the fix. The
Cython layer re-checks what memory safety depends on; this layer owns the helpful messages.
"""
from __future__ import annotations

import math
import numbers
import operator
import os

import numpy as np

from . import _core

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}

# Name tables built from the C enums (one source of truth): AF_ACT_LEAKY_RELU -> "leaky_relu".
ACTIVATIONS = {m.name[len("AF_ACT_"):].lower(): int(m) for m in _core.af_activation}
LOSSES = {"half_squared_error": int(_core.af_loss.AF_LOSS_HALF_SQUARED),
          "cross_entropy": int(_core.af_loss.AF_LOSS_CROSS_ENTROPY)}
KERNELS = {m.name[len("AF_ISA_"):].lower(): int(m) for m in _core.af_isa}
#: the speed strategies of the C kernels that ANNFAST_DISABLE can switch off, name -> af_strategy bit
STRATEGIES = {m.name[len("AF_STRATEGY_"):].lower(): int(m) for m in _core.af_strategy}


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


#: the most units (or inputs) of a layer, and weights of one layer, that the C kernels take (af_net_check)
MAX_UNITS = 2**31
MAX_LAYER_WEIGHTS = 2**40
#: the most epochs fit numbers (the C loop's epoch is an int64)
MAX_EPOCHS = 2**62


def _physical_memory() -> int | None:
    """Bytes of physical memory of this machine, or None where it cannot be told."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_network_size(widths: list[int], dtype: np.dtype) -> None:
    """Refuse a network whose layers the kernels cannot address, or whose parameters cannot fit in memory.

    ``widths``: inputs, then each layer's units. A network needs its parameters about three times over (the
    weights, a backup for rollbacks, a velocity with momentum): more than the machine's physical memory is a
    ValueError here rather than a MemoryError (or minutes of swapping) later.
    """
    n = 0
    for k, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        if n_in * n_out > MAX_LAYER_WEIGHTS:
            raise ValueError(f"layers[{k}] has {n_in} x {n_out} = {n_in * n_out} weights; annfast takes at most "
                             f"2**40 per layer")
        n += (n_in + 1) * n_out
    need = 3 * n * np.dtype(dtype).itemsize
    have = _physical_memory()
    if have is not None and need > have:
        raise ValueError(f"a network of {n:,} parameters needs about {need / 2**30:.3g} GiB ({np.dtype(dtype)} "
                         f"weights, their backup and velocity), more than this machine's "
                         f"{have / 2**30:.3g} GiB of memory")


def _shown(value) -> str:
    """repr(value), shortened in the middle when long (a huge integer's thousand digits)."""
    text = repr(value)
    return text if len(text) <= 48 else f"{text[:24]}...{text[-12:]} ({len(text)} characters)"


def check_int(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an integer (not a bool) within [minimum, maximum]."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {_shown(v)}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {_shown(v)}")
    return v


def check_float(value, name: str, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as a finite float within [low, high] (bounds excluded where *_open)."""
    kind = type(value)
    # plain float and int (not bool, a subclass) first: the ABC check costs about a microsecond of every
    # train_step, which checks its settings on each call
    if kind is not float and kind is not int and (
            isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    try:
        v = float(value)
    except OverflowError:   # an int (or Fraction) beyond float64: not finite as a float
        raise ValueError(f"{name} must be finite, got {_shown(value)}, too large for a float") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_sgd(learning_rate, momentum, weight_decay, nesterov) -> tuple[float, float, float, bool]:
    """Check SGD settings: learning_rate > 0, 0 <= momentum < 1, weight_decay >= 0, all finite real numbers.

    The one check of every training entry point (fit, partial_fit, train_step, the estimators): bools,
    strings, NaN and inf are refused with the same TypeError or ValueError everywhere.
    """
    lr = check_float(learning_rate, "learning_rate", low=0.0, low_open=True)
    mu = check_float(momentum, "momentum", low=0.0, high=1.0, high_open=True)
    wd = check_float(weight_decay, "weight_decay", low=0.0)
    if nesterov is not False and nesterov is not True and not isinstance(nesterov, np.bool_):
        raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
    if nesterov and mu == 0:
        raise ValueError("nesterov=True needs momentum > 0")
    return lr, mu, wd, bool(nesterov)


def check_sgd_in(dtype, learning_rate, momentum, weight_decay) -> None:
    """Refuse checked SGD settings that the C step, which computes in the network's dtype, would change.

    The step rounds the settings to the dtype: in float32 a learning rate below its smallest subnormal becomes 0
    (nothing trains, though learning_rate > 0 passed), one above its largest value becomes inf (as for weights:
    reported, not turned into inf), and a momentum within 2**-25 of 1 becomes exactly 1, outside [0, 1).
    ``learning_rate`` None: a schedule's, not checked here. (A weight decay that rounds to 0 only decays less.)
    """
    if np.dtype(dtype) != np.float32:
        return
    with np.errstate(over="ignore"):
        lr32 = None if learning_rate is None else np.float32(learning_rate)
        wd32 = np.float32(weight_decay)
    if lr32 is not None and lr32 == 0:
        tiny = float(np.finfo(np.float32).smallest_subnormal)
        raise ValueError(f"learning_rate {learning_rate!r} rounds to 0 in float32, the network's dtype: nothing "
                         f"would train; give a learning_rate of at least {tiny:g}")
    if lr32 is not None and not np.isfinite(lr32):
        raise ValueError(f"learning_rate {learning_rate!r} does not fit in float32, the network's dtype")
    if not np.isfinite(wd32):
        raise ValueError(f"weight_decay {weight_decay!r} does not fit in float32, the network's dtype")
    if np.float32(momentum) >= 1:
        raise ValueError(f"momentum {momentum!r} rounds to 1 in float32, the network's dtype: momentum must be "
                         f"in [0, 1) there, at most {float(np.nextafter(np.float32(1), np.float32(0))):.9g}")


#: Output activations whose outputs are probabilities, the only ones cross-entropy is defined for.
CROSS_ENTROPY_OUTPUTS = ("softmax", "sigmoid")


def check_loss(loss, activation: str, what: str = "the output layer") -> str:
    """Return ``loss`` if it is a loss name that an output layer of ``activation`` can train on.

    The one rule: cross_entropy needs a softmax or sigmoid output (``CROSS_ENTROPY_OUTPUTS``); the half squared
    error takes any. ``what`` names the output in the message (the CLI's option, a model file's layer).
    """
    check_name(loss, LOSSES, "loss")
    if loss == "cross_entropy" and activation not in CROSS_ENTROPY_OUTPUTS:
        raise ValueError(f"cross_entropy needs a softmax or sigmoid output layer, {what} is {activation!r}; use "
                         f"loss='half_squared_error' or change the output activation")
    return loss


def _frame_problem(a, name: str) -> str | None:
    """Name the first column of a DataFrame (anything with ``columns`` and ``dtypes``) that is not numeric.

    np.asarray of a frame with one string column gives an object array of every column: the column is
    the useful part of the message, and only the frame still knows it.
    """
    columns, dtypes = getattr(a, "columns", None), getattr(a, "dtypes", None)
    if columns is None or dtypes is None:
        return None
    try:
        pairs = list(zip(columns, dtypes))
    except TypeError:
        return None
    for column, dtype in pairs:
        kind = getattr(dtype, "kind", "O")      # numpy and pandas extension dtypes (Int64: "i", string: "O") alike
        if kind in "biuf":
            continue
        what = {"M": "dates", "m": "time spans", "c": "complex numbers", "U": "strings", "S": "bytes"}.get(kind)
        if what is None:
            try:
                what = "strings" if any(isinstance(x, str) for x in a[column]) else f"values of dtype {dtype}"
            except (KeyError, TypeError, ValueError):
                what = f"values of dtype {dtype}"
        return (f"{name} column {column!r} holds {what}; annfast needs numbers (encode it, e.g. one-hot with "
                f"pandas.get_dummies, or drop it)")
    return None


_MaskedArray = np.ma.MaskedArray


def _position(idx: tuple) -> str:
    """Where a value sits in an array, in words: "row r, column c" in 2-D, else "index i"."""
    if len(idx) == 2:
        return f"row {idx[0]}, column {idx[1]}"
    return f"index {idx[0]}" if len(idx) == 1 else f"index {idx}"


def _masked_where(mask: np.ndarray) -> str:
    return _position(tuple(int(i) for i in np.argwhere(mask)[0]))


def _refuse_masked(a, name: str) -> None:
    """Raise for a masked array with a masked value: how many, and where the first is."""
    mask = np.ma.getmaskarray(a)
    if mask.any():
        what = "masked (numpy.ma.masked)" if mask.ndim == 0 else \
            f"a masked array with {int(np.count_nonzero(mask))} masked value(s), the first at {_masked_where(mask)}"
        raise ValueError(f"{name} is {what}; annfast does not take missing values: fill them (.filled(value)) or "
                         f"drop their rows (a masked array with no masked value is taken as its data)")


def unmasked(a, name: str):
    """Return ``a`` without a mask: refuse a masked array (numpy.ma) that has a masked value, naming ``name``.

    np.asarray drops a mask and keeps the values under it, which would then be trained on or predicted from
    silently. A masked array with no masked value is taken as its data; a list or tuple whose items (rows, or
    values) are masked arrays is checked item by item. Anything else is returned as it is.
    """
    if isinstance(a, _MaskedArray):
        _refuse_masked(a, name)
        return np.ma.getdata(a)
    if type(a) is list or type(a) is tuple:
        for i, item in enumerate(a):
            if isinstance(item, _MaskedArray):
                _refuse_masked(item, f"{name}[{i}]")
    return a


def _numeric(a, name: str) -> np.ndarray:
    problem = _frame_problem(a, name)
    if problem is not None:
        raise TypeError(problem)
    a = unmasked(a, name)
    try:
        arr = np.asarray(a)
    except ValueError as exc:   # NumPy's words for nested lists of different lengths, and the like
        raise ValueError(f"{name} cannot be read as an array of numbers: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got an array of dtype {arr.dtype}{_object_where(arr, name)}")
    return arr


def _object_where(arr: np.ndarray, name: str) -> str:
    """For an array of Python objects: say which value is not a number, and where (else "")."""
    if arr.dtype.kind != "O":
        return ""
    for idx, value in np.ndenumerate(arr):
        where = f" at {_position(idx)}" if idx else ""
        if isinstance(value, (bool, np.bool_, np.integer, np.floating)):
            continue
        if isinstance(value, int):
            if -2**63 <= value < 2**64:
                continue
            return (f" ({name} holds the integer {_shown(value)}{where}, beyond NumPy's 64-bit integers: pass it as "
                    f"a float)")
        if isinstance(value, float):
            continue
        return f" ({name} holds {_shown(value)}, of type {type(value).__name__}{where})"
    return ""


def _check_finite(arr: np.ndarray, name: str, original=None, first_row: int = 0, locate=None) -> None:
    """Raise a ValueError naming the first non-finite value of ``arr`` (rows and columns for 2-D).

    ``arr`` may be a converted copy of ``original``: a finite value that does not fit the new dtype
    is then reported as such. Rows are numbered from ``first_row`` (the row of a larger whole that
    ``arr`` starts at); ``locate``, if given, turns the index tuple into the words naming it instead.
    """
    if arr.dtype.kind != "f":
        return
    flat = arr.reshape(-1) if arr.flags.c_contiguous else np.ascontiguousarray(arr).reshape(-1)
    if flat.size == 0 or _core.all_finite(flat if flat.dtype in (np.float32, np.float64) else flat.astype(np.float64)):
        return
    found = np.argwhere(~np.isfinite(arr))
    if found.shape[0] == 0:   # non-finite a moment ago, finite now: another thread writes to the array
        raise ValueError(f"{name} changed while it was being checked (another thread writing to it?): it held a "
                         f"non-finite value that is gone now; pass an array nobody writes to during the call")
    idx = tuple(int(i) for i in found[0])
    if locate is not None:
        where = locate(idx)
    else:
        where = f"row {idx[0] + first_row}, column {idx[1]}" if len(idx) == 2 else f"index {idx[0] + first_row}"
    if original is not None and np.isfinite(original[idx]):
        value = original[idx]
        shown = repr(float(value)) if np.isfinite(np.float64(value)) else str(value)
        raise ValueError(f"{name} holds {shown} at {where}, which does not fit in {arr.dtype} (largest "
                         f"magnitude {float(np.finfo(arr.dtype).max):.7g}); scale it down or use float64")
    raise ValueError(f"{name} holds a non-finite value ({arr[idx]}) at {where}")


def cast_finite(a, dtype: np.dtype, name: str, locate=None, first_row: int = 0) -> np.ndarray:
    """Return ``a`` (real numbers) as a C-contiguous array of ``dtype``, every value finite in ``dtype``.

    The one place where user numbers are narrowed (float64 -> float32, longdouble -> float64): a value
    that overflows the target dtype raises a ValueError naming it and where it is (``locate`` maps an
    index tuple to words; else rows count from ``first_row``), instead of becoming inf with a
    RuntimeWarning. Nothing is modified.
    """
    arr = np.asarray(unmasked(a, name))
    with np.errstate(over="ignore", invalid="ignore"):   # an overflow becomes inf, reported just below
        out = np.ascontiguousarray(arr, dtype=dtype)
    _check_finite(out, name, arr, first_row, locate)
    return out


def as_inputs(X, n_inputs: int, dtype: np.dtype, name: str = "X", first_row: int = 0) -> np.ndarray:
    """Return X as a C-contiguous (n_rows, n_inputs) array of ``dtype``, checked finite and non-empty.

    Errors name rows counted from ``first_row`` (X's first row is that row of a larger whole).
    """
    arr = _numeric(X, name)
    if arr.ndim != 2:
        hint = (f"; for one row use {name}.reshape(1, -1)" if arr.ndim == 1 and n_inputs > 1
                else f"; for one input column use {name}.reshape(-1, 1)" if arr.ndim == 1 else "")
        raise ValueError(f"{name} must be 2-D (n_rows, n_inputs), got shape {arr.shape}{hint}")
    if arr.shape[1] != n_inputs:
        raise ValueError(f"{name} has {arr.shape[1]} columns but the network has {n_inputs} inputs")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    return cast_finite(arr, dtype, name, first_row=first_row)


def as_targets(y, n_rows: int, n_outputs: int, dtype: np.dtype, name: str = "y", first_row: int = 0,
               loss: str | None = None, activation: str | None = None) -> np.ndarray:
    """Return y as a C-contiguous (n_rows, n_outputs) array of ``dtype``.

    A 1-D y is one column when the network has one output, and integer class labels (one-hot
    encoded here) when it has several. With ``loss`` (and the output ``activation``), the targets are
    also checked to fit that loss (see ``check_targets_fit_loss``). Errors name rows counted from
    ``first_row``.
    """
    arr = _numeric(y, name)
    if arr.ndim == 1 and n_outputs > 1:
        if arr.dtype.kind not in "iu":
            # a missing label (NaN, pandas' NA) turns integer labels into floats: name it rather than the dtype
            _check_finite(arr, name, first_row=first_row)
            raise ValueError(f"{name} is 1-D but the network has {n_outputs} outputs; pass "
                             f"(n_rows, {n_outputs}) targets or integer class labels")
        bad = np.flatnonzero((arr < 0) | (arr >= n_outputs))
        if bad.size:
            raise ValueError(f"{name}[{bad[0] + first_row}] = {arr[bad[0]]} is not a class label in "
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
    out = cast_finite(arr, dtype, name, first_row=first_row)
    if loss is not None:
        check_targets_fit_loss(out, loss, activation, name, first_row)
    return out


def target_misfit(Y: np.ndarray, loss: str, activation: str, dtype=None):
    """Return where targets ``Y`` (n_rows, n_outputs) first fail to fit ``loss``, or None.

    The one rule for every entry point: cross-entropy needs targets in [0, 1] (probabilities or 0/1
    labels), and after a softmax output each row must sum to 1 (within a few rounding errors of ``dtype``,
    by default Y's: one-hot rows, from integer class labels, always do). The half squared error takes any finite
    target. Returns ("range", row, column) or ("sum", row, the row's sum).
    """
    if loss != "cross_entropy" or Y.size == 0:
        return None
    outside = (Y < 0) | (Y > 1)
    if outside.any():
        r, c = (int(i) for i in np.argwhere(outside)[0])
        return "range", r, c
    if activation == "softmax":
        sums = Y.sum(axis=1, dtype=np.float64)
        tol = max(1e-4, 8 * Y.shape[1] * float(np.finfo(Y.dtype if dtype is None else dtype).eps))
        bad = np.flatnonzero(np.abs(sums - 1) > tol)
        if bad.size:
            return "sum", int(bad[0]), float(sums[bad[0]])
    return None


def check_targets_fit_loss(Y: np.ndarray, loss: str, activation: str, name: str = "y", first_row: int = 0) -> None:
    """Raise a ValueError naming the first row of targets ``Y`` that does not fit ``loss`` (``target_misfit``)."""
    misfit = target_misfit(Y, loss, activation)
    if misfit is None:
        return
    if misfit[0] == "range":
        _, r, c = misfit
        raise ValueError(f"{name} holds {float(Y[r, c])!r} at row {r + first_row}, column {c}, but cross_entropy "
                         f"needs targets in [0, 1] (probabilities or 0/1 labels); use integer class labels, "
                         f"or loss='half_squared_error' for other targets")
    _, r, total = misfit
    raise ValueError(f"row {r + first_row} of {name} sums to {total:.6g}, but cross_entropy after a softmax "
                     f"output needs each row of targets to be class probabilities summing to 1; pass "
                     f"one-hot rows or integer class labels")


def as_weights(w, shape: tuple, dtype: np.dtype, name: str, locate=None) -> np.ndarray:
    """Return weights ``w`` as an array of ``shape`` in the network's ``dtype``.

    They must be real numbers, finite after the conversion (a value too large for float32 is reported,
    not written as inf).
    """
    arr = np.asarray(unmasked(w, name))
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape}")
    return cast_finite(arr, dtype, name, locate)


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


# ---- sample and class weights -------------------------------------------------------------------------------

#: Output activations whose rows belong to classes (argmax of several outputs, or one output on either side of 0.5).
CLASSIFIER_OUTPUTS = ("softmax", "sigmoid", "step")


def as_sample_weight(w, n_rows: int, dtype: np.dtype, name: str = "sample_weight", first_row: int = 0) -> np.ndarray:
    """Return per-row weights as a C-contiguous (n_rows,) array of ``dtype``: real numbers, finite and >= 0.

    A row's loss, as trained on and as reported, is its weight times its loss (see ``Network.fit``).
    """
    arr = _numeric(w, name)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one weight per row), got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but {name} has {arr.shape[0]}")
    out = cast_finite(arr, dtype, name, first_row=first_row)
    bad = np.flatnonzero(out < 0)
    if bad.size:
        raise ValueError(f"{name}[{bad[0] + first_row}] = {out[bad[0]]} is negative; weights must be >= 0")
    return out


def target_scale(mean, std) -> np.ndarray:
    """Return the scale of standardized targets, per column (a float64 copy).

    The standard deviation, or 1 where the column is constant up to rounding (std < 1e-12 * max(|mean|, 1)), which
    is then only centred.

    The one rule of target standardization: ``ANNRegressor`` (``y_scale_``), ``annfast.dask.fit_estimator`` and the
    CLI's ``--standardize`` of targets; the network learns (y - mean) / scale. (The CLI scales input columns by any
    standard deviation > 0: tiny but genuine inputs are scaled, not left as they are.)
    """
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    scale = np.array(np.atleast_1d(std), dtype=np.float64)
    scale[scale < 1e-12 * np.maximum(np.abs(mean), 1.0)] = 1.0
    return scale


def row_classes(Y: np.ndarray) -> np.ndarray:
    """Return each row's class from classifier targets: the largest output of several, else 0/1 by the 0.5 line."""
    if Y.shape[1] > 1:
        return np.argmax(Y, axis=1)
    return (Y[:, 0] >= 0.5).astype(np.int64)


def check_class_weight(class_weight, n_outputs: int, activation: str):
    """Check ``class_weight`` (None, "balanced", or a dict class -> weight) against the network's outputs.

    Returns None, "balanced", or a (n_classes,) float64 array of each class's weight (1 for a class not named).
    """
    if class_weight is None:
        return None
    if activation not in CLASSIFIER_OUTPUTS:
        raise ValueError(f"class_weight needs a classifier output (one of {', '.join(CLASSIFIER_OUTPUTS)}), but the "
                         f"output layer is {activation!r}; pass sample_weight instead")
    n_classes = n_outputs if n_outputs > 1 else 2
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{class: weight}}, got {class_weight!r}")
        return "balanced"
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be None, 'balanced' or a dict {{class: weight}}, got "
                        f"{type(class_weight).__name__}")
    table = np.ones(n_classes)
    for key, value in class_weight.items():
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= key < n_classes:
            raise ValueError(f"class_weight has key {key!r}, which is not a class in [0, {n_classes})")
        table[int(key)] = class_weight_value(value, f"class_weight[{key}]")
    return table


def class_weight_value(value, where: str) -> float:
    """Return one class's weight, a real number that is finite and >= 0, as a float (``where`` names it)."""
    try:
        number = float(value) if not isinstance(value, bool) and \
            isinstance(value, (int, float, np.integer, np.floating)) else math.nan
    except OverflowError:   # an int beyond float64
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{where} = {_shown(value)} must be a finite number >= 0")
    return number


def balanced_class_weight(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Return scikit-learn's "balanced" weight of each of ``n_classes`` classes, from each row's class index.

    That is n_rows / (classes present * rows of the class), and 1 for a class with no rows.
    """
    counts = np.bincount(classes, minlength=n_classes)
    table = np.ones(counts.shape[0])
    table[counts > 0] = classes.shape[0] / (np.count_nonzero(counts) * counts[counts > 0])
    return table


def weigh_rows(table, Y: np.ndarray, W, dtype: np.dtype):
    """Per-row weights: ``W`` (or ones) times each row's class weight from ``table`` (None: ``W`` unchanged)."""
    if table is None:
        return W
    cw = table[row_classes(Y)]                    # float64: a product too large for ``dtype`` is reported, not inf
    with np.errstate(over="ignore"):
        prod = cw if W is None else W.astype(np.float64) * cw
    return cast_finite(prod, dtype, "sample_weight times class_weight")
