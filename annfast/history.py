"""History: what happened in each epoch of a ``Network.fit`` call."""
from __future__ import annotations


class History:
    """Per-epoch records of one ``fit`` call, in the style of Keras.

    Attributes
    ----------
    history : dict of str to list of float
        One list per metric, one value per epoch. ``history["loss"][e]`` is the mean training loss
        of the rows of epoch ``e``, each taken just before that row's own update.
    epoch : list of int
        The epoch numbers recorded, from 0.
    params : dict
        The settings of the call (epochs, learning_rate, batch_size, ...).
    """

    def __init__(self, params: dict | None = None):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params = dict(params or {})

    def record(self, epoch: int, **metrics: float) -> None:
        """Append the metrics of one epoch."""
        self.epoch.append(epoch)
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(float(value))

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.6g}" for k, v in self.history.items() if v)
        return f"History(epochs={len(self.epoch)}{', ' + last if last else ''})"
