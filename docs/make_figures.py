"""Draws docs/learning-curve.png, the learning curves shown in the README, with annfast itself.

Run ``python docs/make_figures.py`` (needs scikit-learn for the digits data and matplotlib).
"""
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import annfast as af


def main() -> None:
    """Train on the digits and draw the learning curves."""
    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    order = np.random.default_rng(0).permutation(len(X))
    X, y = X[order], y[order]
    net = af.Network(64, [af.Dense(32, "relu"), af.Dense(10, "softmax")], seed=0)
    hist = net.fit(X, y, epochs=30, learning_rate=0.01, validation_split=0.25,
                   callbacks=[af.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)])
    fig = hist.plot(path=Path(__file__).with_name("learning-curve.png"))
    fig.suptitle("annfast: 64-32-10 on scikit-learn's digits, per-sample SGD", y=1.02)
    fig.savefig(Path(__file__).with_name("learning-curve.png"), dpi=110, bbox_inches="tight")
    print(hist)


if __name__ == "__main__":
    main()
