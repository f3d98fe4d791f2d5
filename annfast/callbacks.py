"""Training callbacks: the small protocol ``Network.fit`` calls, and Keras's usual ones.

A callback is any object with some of the methods of ``Callback``; ``fit`` calls them between epochs
(never per sample), with ``logs``: a dict of the epoch's metrics ("loss", "val_loss", "accuracy",
"val_accuracy" where they apply, the ``metrics`` asked for and their "val_" versions, and "lr", the
epoch's learning rate). Setting ``network.stop_training = True`` ends training after the current epoch;
setting ``network.learning_rate`` in ``on_epoch_begin`` changes the rate of that epoch, in
``on_epoch_end`` the rate of the epochs that follow (with a constant ``learning_rate``).

Provided: ``EarlyStopping``, ``ModelCheckpoint``, ``ReduceLROnPlateau``, ``LearningRateScheduler`` and
``CSVLogger``, with Keras's parameters and meaning. Keras's ``TerminateOnNaN`` is not needed: annfast
raises ``DivergenceError`` at once when a loss or weight becomes non-finite, with the weights from before
the bad row. Before the first update, ``fit`` checks the callbacks (``CallbackList``) and calls each one's
``_check`` with the names of the metrics training will report, so that a callback that cannot work
(EarlyStopping watching "val_loss" without validation data) fails before the weights change.
"""
from __future__ import annotations

import csv
import math
import os
import sys

from .metrics import larger_is_better

__all__ = ["CSVLogger", "Callback", "CallbackList", "EarlyStopping", "LearningRateScheduler", "ModelCheckpoint",
           "ReduceLROnPlateau"]

_METHODS = ("set_network", "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end")


class Callback:
    """Base class of training callbacks; every method does nothing unless overridden.

    Attributes
    ----------
    network : Network or None
        The network being trained (set by ``fit`` before ``on_train_begin``).
    """

    network = None

    def set_network(self, network) -> None:
        """Remember the network that ``fit`` is about to train."""
        self.network = network

    def _check(self, logs_keys) -> None:
        """Raise ValueError/TypeError, before training, if the callback cannot work with these metrics.

        ``logs_keys`` is the set of names of the metrics every epoch will report ("loss", ...).
        """

    def on_train_begin(self, logs: dict) -> None:
        """Call before the first epoch."""

    def on_train_end(self, logs: dict) -> None:
        """Call after the last epoch (also when a callback stopped training)."""

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        """Call before each epoch (numbered from 0)."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """Call after each epoch with its metrics."""


def _check_mode(mode: str, monitor) -> str:
    if not isinstance(monitor, str):
        raise TypeError(f"monitor must be a metric name, got {monitor!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return ("max" if larger_is_better(monitor) else "min") if mode == "auto" else mode


def _check_monitor(who: str, monitor: str, logs_keys) -> None:
    if monitor not in logs_keys:
        raise ValueError(f"{who} monitors {monitor!r} but training reports only {sorted(logs_keys)}; pass "
                         f"validation_data or validation_split for val_* metrics, metrics=[...] for others")


def _say(text: str) -> None:
    """Write one line to stderr (when there is one), as the progress report does."""
    if sys.stderr is not None:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _verbose(network) -> int:
    return int(getattr(network, "_verbose", 0))


class EarlyStopping(Callback):
    """Stop training when a monitored metric has stopped improving.

    Parameters
    ----------
    monitor : str, default="val_loss"
        The metric to watch: "loss", "val_loss", "accuracy" or "val_accuracy".
    patience : int, default=5
        Epochs without improvement before stopping.
    min_delta : float, default=0.0
        Smallest change that counts as an improvement.
    mode : {"auto", "min", "max"}, default="auto"
        Whether smaller or larger is better; "auto" takes "max" for accuracies and r2, "min" otherwise.
    restore_best_weights : bool, default=False
        At the end of training, put back the weights of the best epoch (and say so in one line on stderr
        when fit reports progress, ``verbose`` 1 or 2).

    Attributes
    ----------
    best : float
        The best value seen.
    best_epoch : int
        The epoch that reached it (-1 before the first epoch).
    stopped_epoch : int
        The epoch after which training stopped, or -1 if it ran to the end.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0, mode: str = "auto",
                 restore_best_weights: bool = False):
        mode = _check_mode(mode, monitor)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = mode
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _check(self, logs_keys) -> None:
        """Refuse, before training, a monitored metric that training will not report."""
        _check_monitor("EarlyStopping", self.monitor, logs_keys)

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.stopped_epoch = -1
        self.wait = 0
        self._best_weights = None

    def on_train_begin(self, logs: dict) -> None:
        """Forget the previous training run."""
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """Track the best value; stop when it has not improved for ``patience`` epochs."""
        _check_monitor("EarlyStopping", self.monitor, logs)
        value = logs[self.monitor]
        better = (value < self.best - self.min_delta) if self.mode == "min" else (value > self.best + self.min_delta)
        if better:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self._best_weights = self.network.parameters.copy()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.network.stop_training = True

    def on_train_end(self, logs: dict) -> None:
        """Restore the best weights if asked to."""
        if self.restore_best_weights and self._best_weights is not None:
            self.network.set_parameters(self._best_weights)
            if _verbose(self.network):
                _say(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1}, the best "
                     f"{self.monitor} ({self.best:.6g})")


class ModelCheckpoint(Callback):
    """Save the network after every epoch, or only when the monitored metric improved (Keras's ModelCheckpoint).

    Each save is ``network.save``: atomic (a temporary file renamed over the target), so the file at
    ``path`` is always a complete model that ``annfast.load`` reads.

    Parameters
    ----------
    path : str or os.PathLike
        Where to save; may hold fields of ``str.format``: ``{epoch}`` (counting from 1, as Keras) and the
        epoch's metrics, e.g. ``"model-{epoch:03d}-{val_loss:.4f}.annf"``.
    monitor : str, default="val_loss"
        The metric that decides "best" with ``save_best_only``.
    save_best_only : bool, default=False
        Save only when ``monitor`` improved on the best value so far (the first epoch always saves).
    mode : {"auto", "min", "max"}, default="auto"
        Whether smaller or larger is better; "auto" takes "max" for accuracies and r2, "min" otherwise.

    Attributes
    ----------
    best : float
        The best value of ``monitor`` seen.
    saved : list of str
        The paths written, in order.
    """

    def __init__(self, path, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"):
        self.path = os.fspath(path)
        self.monitor = monitor
        self.mode = _check_mode(mode, monitor)
        if not isinstance(save_best_only, bool):
            raise TypeError(f"save_best_only must be True or False, got {save_best_only!r}")
        self.save_best_only = save_best_only
        self.best = math.inf if self.mode == "min" else -math.inf
        self.saved: list[str] = []

    def _check(self, logs_keys) -> None:
        """Refuse, before training, what would make a save after the first epoch fail.

        A monitored metric that training will not report (with save_best_only), a path whose fields cannot be
        filled in from the epoch and its metrics, a directory that does not exist, a fixed path that is a directory
        or not a regular file.
        """
        if self.save_best_only:
            _check_monitor("ModelCheckpoint", self.monitor, logs_keys)
        try:
            self.path.format(epoch=1, **{key: 0.0 for key in logs_keys})
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} cannot be filled in ({type(exc).__name__}: {exc}); "
                             f"its fields may be {{epoch}} and the metrics {sorted(logs_keys)}") from None
        folder = os.path.dirname(self.path)
        if folder and "{" not in folder and not os.path.isdir(folder):
            raise FileNotFoundError(f"ModelCheckpoint path {self.path!r}: the directory {folder!r} does not exist")
        if "{" not in self.path:   # one fixed file: a directory or a device there is refused as save would
            from ._io import check_target

            check_target(os.path.abspath(self.path), self.path, "the model")

    def on_train_begin(self, logs: dict) -> None:
        """Forget the best value of a previous training run."""
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """Save the network (if it improved, with ``save_best_only``)."""
        if self.save_best_only:
            value = logs[self.monitor]
            if not (value < self.best if self.mode == "min" else value > self.best):
                return
            self.best = value
        path = self.path.format(epoch=epoch + 1, **logs)
        self.network.save(path)
        self.saved.append(path)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when a metric has stopped improving (Keras's ReduceLROnPlateau).

    Needs a constant ``learning_rate`` in fit (a number): the reduced rate is ``network.learning_rate``,
    which the following epochs use. With a schedule, fit refuses it (the schedule sets every epoch's rate).

    Parameters
    ----------
    monitor : str, default="val_loss"
    factor : float, default=0.1
        In (0, 1): new rate = rate * factor.
    patience : int, default=10
        Epochs without improvement before the rate is reduced.
    min_delta : float, default=1e-4
        Smallest change that counts as an improvement.
    cooldown : int, default=0
        Epochs to wait after a reduction before counting again.
    min_lr : float, default=0.0
        The rate never goes below this.
    mode : {"auto", "min", "max"}, default="auto"
    verbose : int, default=0
        1: one line on stderr at each reduction.
    """

    _changes_rate_after_epoch = True

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10, min_delta: float = 1e-4,
                 cooldown: int = 0, min_lr: float = 0.0, mode: str = "auto", verbose: int = 0):
        self.monitor = monitor
        self.mode = _check_mode(mode, monitor)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise ValueError(f"factor must be a number in (0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        for name, value in (("min_delta", min_delta), ("min_lr", min_lr)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        self.factor, self.patience, self.min_delta = float(factor), patience, float(min_delta)
        self.cooldown, self.min_lr, self.verbose = cooldown, float(min_lr), verbose
        self._reset()

    def _reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def _check(self, logs_keys) -> None:
        """Refuse, before training, a monitored metric that training will not report."""
        _check_monitor("ReduceLROnPlateau", self.monitor, logs_keys)

    def on_train_begin(self, logs: dict) -> None:
        """Forget a previous training run."""
        self._reset()

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """Count epochs without improvement; reduce ``network.learning_rate`` after ``patience`` of them."""
        value = logs[self.monitor]
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if value < self.best - self.min_delta if self.mode == "min" else value > self.best + self.min_delta:
            self.best = value
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = self.network.learning_rate
                if old > self.min_lr:
                    self.network.learning_rate = max(old * self.factor, self.min_lr)
                    if self.verbose:
                        _say(f"epoch {epoch + 1}: ReduceLROnPlateau reduced the learning rate from {old:.6g} to "
                             f"{self.network.learning_rate:.6g}")
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set each epoch's learning rate to ``schedule(epoch, lr)`` (Keras's LearningRateScheduler).

    Parameters
    ----------
    schedule : callable
        ``schedule(epoch, lr) -> new_lr``, with the epoch number (from 0, or from ``initial_epoch``) and the
        rate the epoch would otherwise use; called at the start of every epoch.
    """

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function schedule(epoch, lr) -> lr, got {schedule!r}")
        self.schedule = schedule

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        """Set ``network.learning_rate`` for this epoch (fit checks it is a finite number > 0)."""
        self.network.learning_rate = self.schedule(epoch, self.network.learning_rate)


class CSVLogger(Callback):
    """Write one CSV row per epoch: the epoch number and every metric of ``logs`` (Keras's CSVLogger).

    Each row is appended and the file closed at once, so an interrupted fit leaves a complete file of the
    epochs it finished and no open file behind.

    Parameters
    ----------
    path : str or os.PathLike
    separator : str, default=","
    append : bool, default=False
        Append to an existing file (no second header) instead of starting it anew.
    """

    def __init__(self, path, separator: str = ",", append: bool = False):
        self.path = os.fspath(path)
        self.separator = separator
        self.append = bool(append)
        self._keys = None

    def on_train_begin(self, logs: dict) -> None:
        """Start the file anew (or, with ``append``, note whether it already has a header)."""
        if self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0:
            with open(self.path, newline="", encoding="utf-8") as fh:
                self._keys = next(csv.reader(fh, delimiter=self.separator), ["epoch"])[1:]
        else:
            with open(self.path, "w", encoding="utf-8"):
                pass
            self._keys = None

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """Append the epoch's row (after the header, before the first row)."""
        with open(self.path, "a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, delimiter=self.separator)
            if self._keys is None:
                self._keys = list(logs)
                writer.writerow(["epoch", *self._keys])
            writer.writerow([epoch, *(repr(float(logs[k])) if k in logs else "" for k in self._keys)])


class CallbackList:
    """The callbacks of one training call, checked up front and called in order.

    Parameters
    ----------
    callbacks : iterable of callbacks or None
        Each one a ``Callback`` or any object with at least one of its methods (only the methods it has
        are called); anything else is refused with a TypeError naming its index.
    """

    def __init__(self, callbacks):
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
            raise TypeError(f"callbacks must be a list of callbacks, got {type(callbacks).__name__}")
        self.callbacks = list(callbacks)
        for k, cb in enumerate(self.callbacks):
            if isinstance(cb, type) or not any(callable(getattr(cb, m, None)) for m in _METHODS):
                raise TypeError(f"callbacks[{k}] is {type(cb).__name__} {cb!r}, not a callback: it has none of "
                                f"the methods {', '.join(_METHODS)} (subclass annfast.callbacks.Callback)")

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def check(self, logs_keys) -> None:
        """Let every callback refuse, before training, the metrics training will report."""
        keys = frozenset(logs_keys)
        for cb in self.callbacks:
            check = getattr(cb, "_check", None)
            if callable(check):
                check(keys)

    def _call(self, method: str, *args) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, method, None)
            if callable(fn):
                fn(*args)

    def set_network(self, network) -> None:
        """Call ``set_network`` of every callback."""
        self._call("set_network", network)

    def on_train_begin(self, logs: dict) -> None:
        """Call ``on_train_begin`` of every callback."""
        self._call("on_train_begin", logs)

    def on_train_end(self, logs: dict) -> None:
        """Call ``on_train_end`` of every callback."""
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        """Call ``on_epoch_begin`` of every callback."""
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """Call ``on_epoch_end`` of every callback."""
        self._call("on_epoch_end", epoch, logs)
