"""Learning-rate schedules: the rate of each epoch of ``Network.fit``, as scikit-learn's MLP sets it.

``fit(learning_rate=...)`` takes a number (a constant rate), one of these schedules, or any callable
``epoch -> rate``. Like scikit-learn's ``SGDOptimizer``, a schedule changes the rate only between epochs
(never within one), so an epoch trained with a schedule is bitwise the epoch ``fit(epochs=1,
learning_rate=rate)`` would train; ``history["lr"]`` records the rate of every epoch.

- ``Constant(rate)``: the same rate every epoch (what a plain number means).
- ``InvScaling(initial, power_t=0.5)``: ``initial / (t + 1) ** power_t``, with t the number of rows trained
  before the epoch (scikit-learn's "invscaling", where t is ``t_``, the samples seen so far).
- ``Adaptive(initial, tol=1e-4, patience=2, factor=5)``: keep the rate while the training loss falls; each
  time ``patience`` consecutive epochs fail to bring it at least ``tol`` below the best loss so far, divide
  the rate by ``factor`` (scikit-learn's "adaptive" as its documentation states it: "each time two
  consecutive epochs fail to decrease training loss by at least tol ... the current learning rate is divided
  by 5"; its estimators count ``n_iter_no_change`` + 1 epochs instead, which ``ANNClassifier`` and
  ``ANNRegressor`` reproduce exactly).

A schedule is a small object with ``rate(epoch, t)`` (the rate of the epoch about to start) and, for those
that react to training, ``update(epoch, logs)`` (after each epoch, with its metrics) and ``reset()`` (at
the start of a ``fit`` that does not continue an earlier one, i.e. with ``initial_epoch=0``).
"""
from __future__ import annotations

import math

from . import _validation as v

__all__ = ["Adaptive", "Constant", "InvScaling", "LearningRateSchedule", "as_schedule"]


class LearningRateSchedule:
    """Base class of learning-rate schedules (subclass it, or pass any callable ``epoch -> rate`` to fit)."""

    def reset(self) -> None:
        """Forget what earlier training taught the schedule (called when a fit starts at epoch 0)."""

    def rate(self, epoch: int, t: int) -> float:
        """Return the learning rate of epoch ``epoch`` (from 0), after ``t`` rows were trained."""
        raise NotImplementedError

    def update(self, epoch: int, logs: dict) -> None:
        """Learn from the metrics of the epoch that just ended (called after every epoch)."""


class Constant(LearningRateSchedule):
    """The same rate every epoch.

    Parameters
    ----------
    rate : float
        > 0.
    """

    def __init__(self, rate: float):
        self.initial = v.check_float(rate, "learning_rate", low=0.0, low_open=True)

    def rate(self, epoch: int, t: int) -> float:
        """Return the constant rate."""
        return self.initial

    def __repr__(self) -> str:
        return f"Constant({self.initial!r})"


class InvScaling(LearningRateSchedule):
    """scikit-learn's "invscaling": ``initial / (t + 1) ** power_t``, t = rows trained before the epoch.

    Parameters
    ----------
    initial : float
        The rate of the first epoch (t = 0), > 0.
    power_t : float, default=0.5
        The exponent, >= 0 (0 is a constant rate).

    Examples
    --------
    >>> from annfast.schedules import InvScaling
    >>> InvScaling(0.1, power_t=0.5).rate(epoch=1, t=99)
    0.01
    """

    def __init__(self, initial: float, power_t: float = 0.5):
        self.initial = v.check_float(initial, "learning_rate", low=0.0, low_open=True)
        self.power_t = v.check_float(power_t, "power_t", low=0.0)

    def rate(self, epoch: int, t: int) -> float:
        """Return ``initial / (t + 1) ** power_t``."""
        return self.initial / (t + 1) ** self.power_t

    def __repr__(self) -> str:
        return f"InvScaling({self.initial!r}, power_t={self.power_t!r})"


class Adaptive(LearningRateSchedule):
    """scikit-learn's "adaptive": divide the rate by ``factor`` when the training loss stops falling.

    An epoch "improves" when its training loss is at least ``tol`` below the best loss so far. Each time
    ``patience`` consecutive epochs did not improve, the rate is divided by ``factor`` and the count starts
    over. The rate never goes below ``min_rate`` (scikit-learn's estimators stop training there instead).

    Parameters
    ----------
    initial : float
        The starting rate, > 0.
    tol : float, default=1e-4
        Smallest decrease of the loss that counts, >= 0.
    patience : int, default=2
        Consecutive epochs without improvement before the rate drops, >= 1.
    factor : float, default=5.0
        Divisor of the rate, > 1.
    min_rate : float, default=0.0
        Lower bound of the rate, >= 0.
    monitor : str, default="loss"
        The metric to watch ("loss", "val_loss", or any metric fit reports); smaller is better.
    """

    def __init__(self, initial: float, tol: float = 1e-4, patience: int = 2, factor: float = 5.0,
                 min_rate: float = 0.0, monitor: str = "loss"):
        self.initial = v.check_float(initial, "learning_rate", low=0.0, low_open=True)
        self.tol = v.check_float(tol, "tol", low=0.0)
        self.patience = v.check_int(patience, "patience", minimum=1)
        self.factor = v.check_float(factor, "factor", low=1.0, low_open=True)
        self.min_rate = v.check_float(min_rate, "min_rate", low=0.0)
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name, got {monitor!r}")
        self.monitor = monitor
        self.reset()

    def reset(self) -> None:
        """Start again from ``initial``."""
        self.current = self.initial
        self.best = math.inf
        self.bad_epochs = 0

    def rate(self, epoch: int, t: int) -> float:
        """Return the current rate."""
        return self.current

    def update(self, epoch: int, logs: dict) -> None:
        """Count an epoch without improvement; divide the rate after ``patience`` of them in a row."""
        value = logs[self.monitor]
        if value > self.best - self.tol:
            self.bad_epochs += 1
        else:
            self.bad_epochs = 0
        self.best = min(self.best, value)
        if self.bad_epochs >= self.patience:
            self.current = max(self.current / self.factor, self.min_rate)
            self.bad_epochs = 0

    def __repr__(self) -> str:
        return (f"Adaptive({self.initial!r}, tol={self.tol!r}, patience={self.patience!r}, "
                f"factor={self.factor!r}, min_rate={self.min_rate!r}, monitor={self.monitor!r})")


class _FromCallable(LearningRateSchedule):
    """A callable ``epoch -> rate`` as a schedule."""

    def __init__(self, fn):
        self.fn = fn

    def rate(self, epoch: int, t: int) -> float:
        return self.fn(epoch)

    def __repr__(self) -> str:
        return f"{getattr(self.fn, '__name__', type(self.fn).__name__)}(epoch)"


def as_schedule(learning_rate) -> LearningRateSchedule | None:
    """Return the schedule ``learning_rate`` stands for, or None when it is a plain number (constant rate).

    Raises TypeError for anything else; a number is checked by ``fit`` as before.
    """
    if isinstance(learning_rate, LearningRateSchedule):
        return learning_rate
    if callable(learning_rate) and not isinstance(learning_rate, type):
        return _FromCallable(learning_rate)
    return None
