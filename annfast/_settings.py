"""The optimizer settings of one training call, as one checked object: Python's mirror of C's ``af_sgd``.

``SGD`` is built (and checked, once) where a training call starts (``Network.fit``, ``train_step``,
``annfast.dask.fit``) and then travels as one value: to the epoch runners of ``_parallel``, to the dask
workers. Only the Cython calls at the C boundary take its fields apart (``_core.train_rows``,
``train_thread``, ``split_thread``, ``apply_gradient``, ``Engine.train_one``), each in one place.

Adding a setting: a field here (checked in ``__post_init__``, through ``_validation``), the same field in
``af_sgd`` (``csrc/annfast.h``, ``_core.pxd``) filled by ``_core.sgd_settings``, and the one line per
runner that passes it across (see docs/ARCHITECTURE.md, "How to add an optimizer setting").
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import _validation as v

__all__ = ["SGD"]


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent settings, checked at construction (the messages of ``_validation.check_sgd``).

    Attributes
    ----------
    learning_rate : float
        > 0, finite.
    momentum : float
        In [0, 1).
    weight_decay : float
        >= 0: adds ``weight_decay * w`` to every parameter's gradient.
    nesterov : bool
        Nesterov momentum (needs momentum > 0).
    batch_size : int or None
        Rows per update, >= 1; None is every row of the call (full batch), resolved by ``for_rows``.
    """

    learning_rate: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False
    batch_size: int | None = 1

    def __post_init__(self) -> None:
        lr, mu, wd, nest = v.check_sgd(self.learning_rate, self.momentum, self.weight_decay, self.nesterov)
        bs = self.batch_size
        if bs is not None:
            bs = v.check_int(bs, "batch_size", minimum=1)
        for name, value in (("learning_rate", lr), ("momentum", mu), ("weight_decay", wd), ("nesterov", nest),
                            ("batch_size", bs)):
            object.__setattr__(self, name, value)

    @property
    def step(self) -> tuple[float, float, float, bool]:
        """(learning_rate, momentum, weight_decay, nesterov): what each C call of the step takes."""
        return self.learning_rate, self.momentum, self.weight_decay, self.nesterov

    def for_rows(self, n_rows: int | None) -> SGD:
        """Return these settings for a call over ``n_rows`` rows.

        batch_size None becomes ``n_rows``, and no batch is larger than the rows (``n_rows`` None, streamed data
        of unknown length: unchanged).
        """
        bs = self.batch_size
        if n_rows is None:
            return self
        bs = n_rows if bs is None else min(bs, n_rows)
        return self if bs == self.batch_size else dataclasses.replace(self, batch_size=bs)

    def at_rate(self, learning_rate: float) -> SGD:
        """Return the same settings at another learning rate (an epoch's, from a schedule or a callback)."""
        if learning_rate == self.learning_rate:
            return self
        return dataclasses.replace(self, learning_rate=learning_rate)

    def as_dict(self) -> dict:
        """Return the settings as keyword arguments of ``Network.fit`` (what ``annfast.dask`` sends and records)."""
        return {"learning_rate": self.learning_rate, "batch_size": self.batch_size, "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}
