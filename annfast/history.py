"""History: what happened in each epoch of a ``Network.fit`` call."""
from __future__ import annotations


class History:
    """Per-epoch records of a ``fit`` call (and of the calls continuing it), in the style of Keras.

    Subscriptable like a dict of metrics: ``hist["loss"]`` is ``hist.history["loss"]``. A fit with
    ``initial_epoch > 0`` appends to the network's history instead of starting a new one.

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

    def __getitem__(self, name: str) -> list[float]:
        """Return the per-epoch values of one metric: ``hist["loss"]`` is ``hist.history["loss"]``."""
        try:
            return self.history[name]
        except KeyError:
            raise KeyError(f"no metric {name!r} in this history; it has {sorted(self.history)}") from None

    def __contains__(self, name) -> bool:
        return name in self.history

    def keys(self):
        """Return the names of the metrics recorded (as ``hist.history.keys()``)."""
        return self.history.keys()

    def continued(self, params: dict) -> History:
        """Return a copy of this history to which a fit with ``initial_epoch`` appends (settings: ``params``)."""
        out = History(dict(self.params, **params))
        out.history = {name: list(values) for name, values in self.history.items()}
        out.epoch = list(self.epoch)
        return out

    def record(self, epoch: int, **metrics: float) -> None:
        """Append the metrics of one epoch."""
        self.epoch.append(epoch)
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(float(value))

    def plot(self, metrics=None, path=None, ax=None):
        """Draw the learning curves with matplotlib (the optional extra ``plot``).

        Parameters
        ----------
        metrics : list of str or None, default=None
            Metrics to draw; None draws all. Losses and accuracies go in separate panels, each
            training metric next to its "val_" counterpart.
        path : str or os.PathLike or None, default=None
            Save the figure there (a PNG for a ".png" name).
        ax : matplotlib Axes or None, default=None
            Draw into these axes (one panel) instead of a new figure.

        Returns
        -------
        matplotlib.figure.Figure
        """
        try:
            import matplotlib
            if ax is None and path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("History.plot needs matplotlib: pip install \"annfast[plot]\"") from None
        names = list(self.history) if metrics is None else list(metrics)
        unknown = [m for m in names if m not in self.history]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; this history has {sorted(self.history)}")
        groups = [g for g in (["loss", "val_loss"], ["accuracy", "val_accuracy"]) if any(m in names for m in g)]
        groups += [[m] for m in names if not any(m in g for g in groups)]
        if ax is None:
            fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6), squeeze=False)
            axes = list(axes[0])
        else:
            fig, axes = ax.figure, [ax] * len(groups)
        epochs = [e + 1 for e in self.epoch]
        for panel, group in zip(axes, groups):
            for m in group:
                if m in names:
                    panel.plot(epochs, self.history[m], marker="o" if len(epochs) < 30 else None, markersize=3,
                               label=m)
            panel.set_xlabel("epoch")
            panel.set_ylabel(group[0])
            panel.grid(True, alpha=0.3)
            panel.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
        return fig

    def __len__(self) -> int:
        return len(self.epoch)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v[-1]:.6g}" for k, v in self.history.items() if v)
        return f"History(epochs={len(self.epoch)}{', ' + last if last else ''})"
