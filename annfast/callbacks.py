"""Training callbacks: the small protocol ``Network.fit`` calls, and EarlyStopping.

A callback is any object with some of the methods of ``Callback``; ``fit`` calls them between epochs
(never per sample), with ``logs``: a dict of the epoch's metrics ("loss", "val_loss", "accuracy",
"val_accuracy" where they apply). Setting ``network.stop_training = True`` ends training after the
current epoch. Before the first update, ``fit`` checks the callbacks (``CallbackList``) and calls each one's
``_check`` with the names of the metrics training will report, so that a callback that cannot work
(EarlyStopping watching "val_loss" without validation data) fails before the weights change.
"""
from __future__ import annotations

import math

__all__ = ["Callback", "CallbackList", "EarlyStopping"]

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
        Whether smaller or larger is better; "auto" takes "max" for accuracies, "min" otherwise.
    restore_best_weights : bool, default=False
        At the end of training, put back the weights of the best epoch.

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
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        if not isinstance(min_delta, (int, float)) or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = ("max" if "accuracy" in monitor else "min") if mode == "auto" else mode
        self.restore_best_weights = bool(restore_best_weights)
        self._reset()

    def _check(self, logs_keys) -> None:
        """Refuse, before training, a monitored metric that training will not report."""
        if self.monitor not in logs_keys:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r} but training reports only "
                             f"{sorted(logs_keys)}; pass validation_data or validation_split for val_* metrics")

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
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r} but training reports only "
                             f"{sorted(logs)}; pass validation_data or validation_split for val_* metrics")
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
