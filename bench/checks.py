"""Agreement checks: do the peers compute the same training as annfast, so that their timings compare like with like?

Each check trains every implementation for one short epoch (no shuffling) from the same initial weights on the same
rows and compares the final weights. Differences are reported relative to how far annfast's weights moved in that
epoch (``max|W_peer - W_annfast| / max|W_annfast - W_initial|``).

FANN differs from textbook backpropagation in two details, both documented in bench/README.md: it clips the
sigmoid's output to [0.01, 0.99] before taking the derivative, and it keeps the learning rate as a C float. The
FANN check therefore also runs a NumPy implementation with exactly FANN's rule, which must match FANN to rounding,
while annfast (learning rate set to the same float) must match FANN closely.
"""
from __future__ import annotations

import numpy as np
from data import LEARNING_RATE, max_abs_diff
from fann import Fann
from peers import Annfast, NumpyMLP, SklearnMLP, TorchMLP, Unavailable

#: FANN's derivative clip of FANN_SIGMOID (fann_activation_derived), as the float constants it uses
FANN_CLIP = (float(np.float32(0.01)), float(np.float32(0.99)))
#: FANN stores the learning rate as a C float
FANN_LR = float(np.float32(LEARNING_RATE))

TOL_FANN = 1e-3          # annfast float64 vs doublefann, relative to the weights' change
TOL_EXACT = 1e-9         # same rule in float64: rounding only


def _train(peer, n_rows: int) -> list:
    if isinstance(peer, Annfast):
        peer.fit(n_rows)
    else:
        peer.sgd_epoch(n_rows)
    return peer.get_weights()


def clipped_fraction(sizes, weights, X) -> float:
    """Fraction of hidden sigmoid outputs outside FANN's [0.01, 0.99] clip, at the initial weights, over X's rows."""
    a = np.asarray(X, dtype=np.float64).T
    outside = total = 0
    for W, b in weights[:-1]:
        a = 1.0 / (1.0 + np.exp(-(W @ a + b[:, None])))
        outside += int(np.count_nonzero((a < FANN_CLIP[0]) | (a > FANN_CLIP[1])))
        total += a.size
    return outside / total if total else 0.0


def fann_agreement(name: str, sizes, weights, X, Y, n_rows: int) -> dict:
    """Compare FANN (doublefann and floatfann) with annfast after one epoch of ``n_rows`` rows.

    Returns
    -------
    dict
        ``rel_annfast_f64`` (annfast float64 vs doublefann), ``rel_fann_rule_f64`` (NumPy with FANN's rule vs
        doublefann), ``rel_annfast_f32`` (annfast float32 vs floatfann, for information), ``clipped_fraction``,
        ``weight_change``, ``rows`` and ``ok`` (the first two within TOL_FANN and TOL_EXACT).
    """
    X, Y = X[:n_rows], Y[:n_rows]
    w_af = _train(Annfast(sizes, weights, X, Y, "float64", learning_rate=FANN_LR), n_rows)
    with Fann(sizes, weights, X, Y, "float64", tag=f"check_{name}") as fann:
        w_fann = _train(fann, n_rows)
    w_rule = _train(NumpyMLP(sizes, weights, X, Y, "float64", learning_rate=FANN_LR, derivative_clip=FANN_CLIP),
                    n_rows)
    change = max_abs_diff(w_af, weights)
    result = {
        "rows": n_rows,
        "weight_change": change,
        "clipped_fraction": clipped_fraction(sizes, weights, X),
        "rel_annfast_f64": max_abs_diff(w_af, w_fann) / change,
        "rel_fann_rule_f64": max_abs_diff(w_rule, w_fann) / change,
    }
    w_af32 = _train(Annfast(sizes, weights, X, Y, "float32"), n_rows)
    with Fann(sizes, weights, X, Y, "float32", tag=f"check_{name}") as fann:
        w_fann32 = _train(fann, n_rows)
    result["rel_annfast_f32"] = max_abs_diff(w_af32, w_fann32) / change
    result["ok"] = result["rel_annfast_f64"] <= TOL_FANN and result["rel_fann_rule_f64"] <= TOL_EXACT
    return result


def peer_agreement(sizes, weights, X, Y, n_rows: int) -> dict:
    """Compare NumPy, PyTorch and scikit-learn (float64) with annfast float64 after one epoch of ``n_rows`` rows.

    Returns
    -------
    dict
        Peer name -> relative difference (or the reason it was skipped), and ``ok`` (all measured within
        TOL_EXACT).
    """
    X, Y = X[:n_rows], Y[:n_rows]
    w_af = _train(Annfast(sizes, weights, X, Y, "float64"), n_rows)
    change = max_abs_diff(w_af, weights)
    result: dict = {"rows": n_rows}
    for label, cls in (("NumPy", NumpyMLP), ("PyTorch", TorchMLP), ("scikit-learn", SklearnMLP)):
        try:
            peer = cls(sizes, weights, X, Y, "float64")
        except Unavailable as exc:
            result[label] = f"skipped: {exc}"
            continue
        result[label] = max_abs_diff(_train(peer, n_rows), w_af) / change
    result["ok"] = all(v <= TOL_EXACT for k, v in result.items() if isinstance(v, float))
    return result
