"""The demo: train a small network on the bundled house-price data and report the error.

``python -m annfast`` runs it. It shows the whole classic recipe: scale the inputs, small random
weights, per-sample SGD over epochs, and the test error compared with predicting the mean price.
"""
from __future__ import annotations

import time
from importlib import resources

import numpy as np

from .network import Dense, Network


def load_house_prices() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load the bundled data: X (1000, 4) area, bedrooms, distance, age; y (1000,) price in thousands."""
    path = resources.files("annfast") / "data" / "house_prices.csv"
    with path.open("r", encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
        data = np.loadtxt(fh, delimiter=",", dtype=np.float64)
    return data[:, :4], data[:, 4], header


def run_demo(epochs: int = 40, seed: int = 0, learning_rate: float = 0.01, out=print) -> dict:
    """Train a 4-16-1 tanh network by per-sample SGD; print the loss per epoch and the final error.

    Returns a dict with ``rmse`` (test RMSE, thousands), ``baseline_rmse`` (predicting the training
    mean) and ``history`` (the training loss per epoch, in standardized units).
    """
    from ._validation import check_int

    epochs = check_int(epochs, "epochs", minimum=1)   # (0 epochs would leave no test RMSE to report)
    X, y, header = load_house_prices()
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(X))
    train, test = idx[:800], idx[800:]
    x_mean, x_std = X[train].mean(0), X[train].std(0)
    y_mean, y_std = y[train].mean(), y[train].std()
    Xs = (X - x_mean) / x_std
    ys = (y - y_mean) / y_std

    net = Network(4, [Dense(16, activation="tanh"), Dense(1, activation="linear")], seed=seed)
    out(f"annfast demo: predicting {header[4]} from {', '.join(header[:4])}")
    out(f"{len(train)} training and {len(test)} test houses; network {net}")
    out(f"train loss: mean half squared error on standardized prices (mean 0, std 1), which the network trains on; "
        f"test RMSE: in thousands, as {header[4]}")
    losses = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        loss = net.fit(Xs[train], ys[train], epochs=1, learning_rate=learning_rate).history["loss"][0]
        losses.append(loss)
        pred = net.predict(Xs[test])[:, 0] * y_std + y_mean
        rmse = float(np.sqrt(np.mean((pred - y[test]) ** 2)))
        out(f"epoch {epoch + 1:3d}  train loss (standardized) {loss:.5f}  test RMSE (thousands) {rmse:8.2f}")
    elapsed = time.perf_counter() - t0
    baseline = float(np.sqrt(np.mean((y[train].mean() - y[test]) ** 2)))
    out(f"final test RMSE {rmse:.2f} (thousands) vs {baseline:.2f} for predicting the mean price "
        f"({rmse / baseline:.1%} of it); {epochs} epochs in {elapsed:.3f} s")
    return {"rmse": rmse, "baseline_rmse": baseline, "history": losses}
