"""scikit-learn estimators around annfast networks: ``ANNRegressor`` and ``ANNClassifier``.

This module is the one place where annfast meets scikit-learn (an optional extra: ``pip install
"annfast[sklearn]"``); ``import annfast`` never imports scikit-learn. The estimators follow the
conventions of ``sklearn.neural_network.MLPRegressor`` / ``MLPClassifier`` (parameter names, fitted
attributes, the ``tol`` / ``n_iter_no_change`` stopping rule, early stopping on a held-out validation
score, ``partial_fit``), but train with annfast's C kernels, by default one sample at a time. They work
in ``Pipeline``, ``GridSearchCV`` (also with process-based ``n_jobs``) and every other scikit-learn tool,
and pass scikit-learn's estimator checks.

A call that fails (bad input, a diverging run, Ctrl-C) leaves the estimator as it was before the call,
and no other thread ever sees it otherwise: the input is checked before anything changes, the call works
on a staged copy of the estimator's attributes (a new network is built aside) that replaces them only on
success, and a run that trains the fitted network does so in one ``Network.atomic()`` block (which rolls it back
on failure), so a concurrent ``predict`` sees the weights from before the call or from after a successful one.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from . import _validation
from ._core import DivergenceError
from .callbacks import Callback
from .network import Dense, Network

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_consistent_length,
        check_is_fitted,
        column_or_1d,
        validate_data,
    )
except ImportError as exc:  # scikit-learn missing, or older than 1.6 (no validate_data / __sklearn_tags__)
    raise ImportError('annfast.sklearn needs scikit-learn >= 1.6, an optional extra of annfast: '
                      'pip install "annfast[sklearn]"') from exc

__all__ = ["ANNClassifier", "ANNRegressor"]

# Hidden-layer activations: annfast's names, plus scikit-learn's MLP names as aliases, so that a parameter
# grid written for MLPClassifier works here too.
_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid", "logistic": "sigmoid",
                "leaky_relu": "leaky_relu", "linear": "linear", "identity": "linear", "step": "step"}
_AUTO_BATCH = 200  # batch_size="auto": min(200, n_rows), as in scikit-learn's MLP


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and np.isfinite(value)


_MIN_ADAPTIVE_RATE = 1e-6   # learning_rate="adaptive" stops at or below this rate, as scikit-learn's SGDOptimizer


class _Monitor(Callback):
    """Per-epoch bookkeeping of a training run: losses, validation scores, the stopping rule and the rate.

    The rule is scikit-learn's MLP rule: an epoch "improves" when the training loss falls by at least
    ``tol`` below the best loss so far (or, with ``score``, the validation score rises by at least ``tol``
    above the best score); training stops once more than ``n_iter_no_change`` epochs in a row did not.
    The learning rate follows scikit-learn's ``SGDOptimizer`` at the end of every epoch: "invscaling" sets
    it to ``learning_rate_init / (t_ + 1) ** power_t`` (``t_`` counting every row trained so far);
    "adaptive" divides it by 5 instead of stopping, and stops only once it is at most 1e-6.
    """

    def __init__(self, tol: float, n_iter_no_change: int, stop: bool, score=None, schedule: str = "constant",
                 lr_init: float = 0.001, power_t: float = 0.5, t0: int = 0, n_rows: int = 0):
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.stop = stop
        self.score = score
        self.schedule = schedule
        self.lr_init = lr_init
        self.power_t = power_t
        self.t = t0
        self.n_rows = n_rows
        self.losses: list[float] = []
        self.scores: list[float] = []
        self.best = -np.inf if score is not None else np.inf
        self.best_params = None
        self.bad_epochs = 0
        self.converged = False

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """Record the epoch and stop training when it has stopped improving."""
        loss = logs["loss"]
        self.losses.append(loss)
        if self.score is not None:
            value = float(self.score(self.network))
            self.scores.append(value)
            improved = value >= self.best + self.tol
            if value > self.best:
                self.best = value
                self.best_params = self.network.parameters.copy()
        else:
            improved = loss <= self.best - self.tol
            self.best = min(self.best, loss)
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        self.t += self.n_rows
        if self.schedule == "invscaling":
            self.network.learning_rate = self.lr_init / (self.t + 1) ** self.power_t
        if self.bad_epochs > self.n_iter_no_change:
            if self.schedule == "adaptive" and self.network.learning_rate > _MIN_ADAPTIVE_RATE:
                self.network.learning_rate /= 5.0
                self.bad_epochs = 0
            elif self.stop:
                self.converged = True
                self.network.stop_training = True


class _BaseANN(BaseEstimator):
    """Parameters, checks and the training loop shared by ANNRegressor and ANNClassifier."""

    _output_activation = "linear"
    _loss = "half_squared_error"

    def __init__(self, hidden_layer_sizes=(32,), activation="relu", *, learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, batch_size=1, max_iter=200, momentum=0.0,
                 nesterovs_momentum=True, alpha=1e-4, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, shuffle=True, random_state=None, warm_start=False, dtype="float32",
                 verbose=0):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.shuffle = shuffle
        self.random_state = random_state
        self.warm_start = warm_start
        self.dtype = dtype
        self.verbose = verbose

    # ---- checks ------------------------------------------------------------------------------

    def _fail(self, name: str, expected: str, value, error=ValueError):
        return error(f"{type(self).__name__}: {name} must be {expected}, got {value!r}")

    def _checked_params(self) -> dict:
        """Return the hyper-parameters checked and normalised; raise ValueError/TypeError naming the bad one."""
        p = {}
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if _is_int(sizes) else sizes
        try:
            sizes = tuple(sizes)
        except TypeError:
            raise self._fail("hidden_layer_sizes", "an int or a sequence of ints", sizes, TypeError) from None
        if not all(_is_int(s) and s >= 1 for s in sizes):
            raise self._fail("hidden_layer_sizes", "a sequence of ints >= 1 (or () for no hidden layer)",
                             self.hidden_layer_sizes)
        p["hidden_layer_sizes"] = tuple(int(s) for s in sizes)
        if not isinstance(self.activation, str) or self.activation not in _ACTIVATIONS:
            raise self._fail("activation", f"one of {', '.join(map(repr, _ACTIVATIONS))}", self.activation)
        p["activation"] = _ACTIVATIONS[self.activation]
        if not isinstance(self.learning_rate, str) or self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise self._fail("learning_rate", "'constant', 'invscaling' or 'adaptive'", self.learning_rate)
        p["learning_rate"] = self.learning_rate
        for name, positive, below in (("learning_rate_init", True, None), ("power_t", False, None),
                                      ("momentum", False, 1.0), ("alpha", False, None), ("tol", False, None)):
            value = getattr(self, name)
            expected = "a number > 0" if positive else "a number >= 0" + (f" and < {below}" if below else "")
            if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
                raise self._fail(name, expected, value, TypeError)
            if not _finite(value) or value < 0 or (positive and value == 0) or (below and value >= below):
                raise self._fail(name, expected, value)
            p[name] = float(value)
        if not _is_real(self.validation_fraction) or not 0 < self.validation_fraction < 1:
            raise self._fail("validation_fraction", "a number in (0, 1)", self.validation_fraction)
        p["validation_fraction"] = float(self.validation_fraction)
        for name in ("max_iter", "n_iter_no_change"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise self._fail(name, "an int >= 1", value, ValueError if _is_int(value) else TypeError)
            p[name] = int(value)
        bs = self.batch_size
        if not (bs is None or bs == "auto" or (_is_int(bs) and bs >= 1)):
            raise self._fail("batch_size", "an int >= 1, 'auto' or None", bs)
        p["batch_size"] = bs
        for name in ("nesterovs_momentum", "early_stopping", "shuffle", "warm_start"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise self._fail(name, "True or False", value, TypeError)
            p[name] = bool(value)
        try:
            dtype = None if self.dtype is None else np.dtype(self.dtype)
        except TypeError:
            dtype = None
        if dtype is None or dtype.name not in ("float32", "float64"):
            raise self._fail("dtype", "'float32' or 'float64'", self.dtype, TypeError)
        p["dtype"] = dtype
        verbose = self.verbose
        if isinstance(verbose, (bool, np.bool_)):
            verbose = 2 if verbose else 0
        if not _is_int(verbose) or verbose not in (0, 1, 2):
            raise self._fail("verbose", "0, 1, 2, True or False", self.verbose)
        p["verbose"] = int(verbose)
        return p

    def __sklearn_is_fitted__(self) -> bool:
        """Return True once the estimator holds a trained network."""
        return hasattr(self, "network_")

    def __sklearn_tags__(self):
        """Describe the estimator to scikit-learn: dense finite 2-D numeric input, deterministic per seed."""
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.sparse = False          # the C kernels read dense rows
        tags.input_tags.allow_nan = False       # non-finite input is rejected with its row and column
        tags.non_deterministic = False          # the same random_state gives bitwise-identical fits
        tags.target_tags.required = True
        return tags

    def _as_fitted(self):
        """Return a shallow copy of the estimator holding one fit's attributes, for one reading call.

        ``_fit`` replaces the fitted attributes by one ``dict.update``; this copies them by one ``dict.copy``
        (each a single C call under the GIL), so a prediction made while another thread fits uses the network,
        target scaling and classes of one fit, never the old network with the new fit's ``y_scale_``.
        """
        view = object.__new__(type(self))
        view.__dict__ = self.__dict__.copy()
        return view

    def _validated_X(self, X) -> np.ndarray:
        """Check that the estimator is fitted and return X as a C-contiguous array of the network's dtype."""
        check_is_fitted(self)
        return self._validate(X, reset=False, dtype=self.network_.dtype)

    def _validate(self, X, y="no_validation", **check_params):
        """Run scikit-learn's ``validate_data`` (C order) and add where the first non-finite value is to its error."""
        X, y = _validation.unmasked(X, "X"), _validation.unmasked(y, "y")   # validate_data drops a mask
        try:
            # a value too large for float32, or a y holding both inf and -inf (whose sum is NaN in scikit-learn's
            # finiteness check), is reported by validate_data: no floating-point warning on the way
            with np.errstate(over="ignore", invalid="ignore"):
                return validate_data(self, X, y, order="C", **check_params)
        except ValueError as exc:
            message = str(exc)
            for name, data, dtype in (("X", X, check_params["dtype"]), ("y", y, np.float64)):
                where = _first_nonfinite(data, dtype) if f"Input {name} contains" in message else None
                if where:
                    head, newline, rest = message.partition("\n")
                    raise ValueError(f"{head.rstrip('.')} (first at {where}).{newline}{rest}") from None
            raise

    # ---- fitted attributes in scikit-learn's layout ------------------------------------------------

    @property
    def coefs_(self) -> list:
        """Weight matrices, one per layer, of shape (n_in, n_out) as in scikit-learn (copies)."""
        check_is_fitted(self)
        return [W.T.copy() for W, _ in self.network_.get_weights()]

    @property
    def intercepts_(self) -> list:
        """Bias vectors, one per layer, of shape (n_out,) (copies)."""
        check_is_fitted(self)
        return [b for _, b in self.network_.get_weights()]

    # ---- training ----------------------------------------------------------------------------

    def _fit(self, X, y, incremental: bool, classes=None, sample_weight=None):
        """Fit (or continue fitting) as one transaction: on any exception the estimator is left as it was.

        The work runs on a staged copy of the estimator's attributes, which replace the estimator's only
        when it succeeds; a fitted network that is trained further is rolled back under its own lock if
        training raises (see ``_train``). Nothing is rebuilt in place: readers in other threads never see
        a failed call.
        """
        p = self._checked_params()
        reuse = self.__sklearn_is_fitted__() and (incremental or p["warm_start"])
        staged = object.__new__(type(self))
        staged.__dict__.update(self.__dict__)
        warning = staged._fit_work(X, y, p, reuse, incremental, classes, sample_weight)
        gone = set(self.__dict__) - set(staged.__dict__)
        self.__dict__.update(staged.__dict__)
        for key in gone:
            self.__dict__.pop(key, None)
        if warning:
            warnings.warn(warning, ConvergenceWarning, stacklevel=3)
        return self

    # long: one fit transaction's steps in order (validate, targets, network, split, schedule, train, record)
    def _fit_work(self, X, y, p: dict, reuse: bool, incremental: bool, classes, sample_weight) -> str | None:
        name = type(self).__name__
        X, y = self._validate(X, y, reset=not reuse, dtype=p["dtype"], **self._y_check_params)
        weights = None   # checked (length, finite, >= 0; a number is every row's) before anything changes
        if sample_weight is not None:
            sample_weight = _validation.unmasked(sample_weight, "sample_weight")
            given = np.asarray(sample_weight).dtype
            if given.kind not in "biuf":   # as Network.fit: strings are not parsed, complex or object not taken
                raise TypeError(f"{name}: sample_weight must hold real numbers, got an array of dtype {given}")
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
        targets, n_outputs = self._prepare_targets(y, reuse, classes)
        weights = self._class_weighed(weights, targets, incremental)
        if weights is not None and self.__dict__.get("class_weight") is not None:
            # named for what the user gave: the rows' weights come from class_weight (times sample_weight)
            weights = _validation.cast_finite(weights, p["dtype"], f"{name}: the rows' class_weight (times "
                                              f"sample_weight, if given)")
        early = p["early_stopping"] and not incremental
        rs = check_random_state(self.random_state) if early or not reuse else None
        if reuse:
            net = self.network_
            arch = (p["hidden_layer_sizes"], p["activation"], p["dtype"])
            if arch != self._architecture:
                raise ValueError(
                    f"{name}: hidden_layer_sizes, activation and dtype are {arch[0]}, {arch[1]!r}, {arch[2].name} "
                    f"but the fitted network has {self._architecture[0]}, {self._architecture[1]!r}, "
                    f"{self._architecture[2].name}; set warm_start=False (or call fit) to train a new network")
        else:
            layers = [Dense(units, p["activation"]) for units in p["hidden_layer_sizes"]]
            layers.append(Dense(n_outputs, self._output_activation))
            seed = int(rs.randint(np.iinfo(np.int32).max))
            net = Network(X.shape[1], layers, dtype=p["dtype"], seed=seed, loss=self._loss)
            self.network_ = net
            self._architecture = (p["hidden_layer_sizes"], p["activation"], p["dtype"])
            self.n_outputs_ = n_outputs
            self.n_layers_ = len(layers) + 1
            self.out_activation_ = self._output_activation
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self.best_loss_ = None
            self.validation_scores_ = None
            self.best_validation_score_ = None

        score = None
        if early:
            X, targets, weights, X_val, y_val, w_val = self._split_validation(X, targets, weights,
                                                                              p["validation_fraction"], rs)
            score = self._make_scorer(X_val, y_val, w_val)
        n_rows = X.shape[0]
        bs = p["batch_size"]
        bs = min(_AUTO_BATCH, n_rows) if bs == "auto" else bs
        # as scikit-learn's optimizer: a fit starts at learning_rate_init; partial_fit continues from the rate the
        # previous call left (invscaling: lr0 / (t_ + 1) ** power_t; adaptive: divided by 5 on each plateau),
        # unless the schedule's settings were changed in between (set_params), which start it afresh
        schedule_key = (p["learning_rate"], p["learning_rate_init"], p["power_t"])
        key, lr = getattr(self, "_next_learning_rate", (None, None))
        if not (incremental and reuse and key == schedule_key and p["learning_rate"] != "constant"):
            lr = p["learning_rate_init"]
        monitor = _Monitor(p["tol"], p["n_iter_no_change"], stop=not incremental, score=score,
                           schedule=p["learning_rate"], lr_init=p["learning_rate_init"], power_t=p["power_t"],
                           t0=self.t_, n_rows=X.shape[0])
        try:
            # readers see the network as it was until the run is kept; a failed run is rolled back (weights,
            # momentum, random stream and history as they were) and never seen
            with net.atomic():
                net.fit(X, targets, epochs=1 if incremental else p["max_iter"],
                        learning_rate=lr, batch_size=bs, shuffle=p["shuffle"],
                        momentum=p["momentum"], nesterov=p["nesterovs_momentum"] and p["momentum"] > 0,
                        weight_decay=p["alpha"], callbacks=[monitor], verbose=p["verbose"], sample_weight=weights)
                if early and monitor.best_params is not None:
                    net.set_parameters(monitor.best_params)      # keep the weights of the best validation score
        except DivergenceError as exc:
            raise DivergenceError(
                f"{name}.{'partial_fit' if incremental else 'fit'}: {exc} Here the learning rate is "
                f"learning_rate_init={p['learning_rate_init']}; scaling X (a StandardScaler in a Pipeline) "
                f"also helps. The estimator is unchanged.") from exc

        self.n_iter_ += len(monitor.losses)
        self.t_ += len(monitor.losses) * n_rows
        self._next_learning_rate = (schedule_key, net.learning_rate)
        self.loss_curve_ = self.loss_curve_ + monitor.losses
        if early:
            self.validation_scores_ = (self.validation_scores_ or []) + monitor.scores
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        else:
            self.best_loss_ = min(self.loss_curve_)
        if not incremental and not monitor.converged:
            what = "validation score" if early else "training loss"
            return (f"{name}: max_iter={p['max_iter']} epochs reached and the {what} was still improving by more "
                    f"than tol={p['tol']}; raise max_iter (or tol) to train to convergence")
        return None

    def _class_weighed(self, weights, targets, incremental: bool):
        """Return the rows' weights times their class weights (classifiers; the base class has none)."""
        return weights

    def _split_validation(self, X, targets, weights, fraction: float, rs):
        n_val = int(np.ceil(fraction * X.shape[0]))
        if n_val < 2 or X.shape[0] - n_val < 1:
            raise ValueError(f"{type(self).__name__}: early_stopping=True holds out validation_fraction={fraction} "
                             f"of the {X.shape[0]} rows, which leaves {n_val} validation rows (at least 2 are "
                             f"needed) and {X.shape[0] - n_val} training rows; use more data or a larger "
                             f"validation_fraction, or early_stopping=False")
        stratify = targets if self._stratify else None
        w = np.ones(X.shape[0]) if weights is None else weights
        try:
            X_train, X_val, y_train, y_val, w_train, w_val = train_test_split(X, targets, w, test_size=n_val,
                                                                              random_state=rs, stratify=stratify)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: early_stopping=True cannot hold out a stratified validation "
                             f"set of {n_val} rows: {exc}") from None
        if weights is None:
            w_train = w_val = None
        return np.ascontiguousarray(X_train), np.ascontiguousarray(y_train), w_train, X_val, y_val, w_val


class ANNRegressor(RegressorMixin, _BaseANN):
    """Multi-layer perceptron regressor trained by annfast (per-sample SGD by default).

    A network of ``Dense`` hidden layers and a linear output layer, trained on the half squared error
    L = 1/2 Σ (y − ŷ)² (summed over outputs). Supports one or several targets.

    The targets are standardized internally: the network learns (y − ``y_mean_``) / ``y_scale_`` (per
    column, taken from the first ``fit`` or ``partial_fit`` call) and ``predict`` maps its outputs back.
    Per-sample SGD with a fixed learning rate diverges on targets of large magnitude; this makes the
    defaults work whatever the units of y, and makes ``tol`` a relative threshold. ``X`` is not scaled:
    put a ``StandardScaler`` before the estimator in a ``Pipeline``.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(32,)
        Units of each hidden layer; () for none (a linear model).
    activation : str, default="relu"
        Activation of the hidden layers: "relu", "tanh", "sigmoid", "leaky_relu" (slope 0.01), "linear",
        "step", or scikit-learn's names "logistic" (= "sigmoid") and "identity" (= "linear").
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The learning-rate schedule, with scikit-learn's MLP meaning (its ``solver="sgd"``): the rate changes
        only between epochs. "constant": ``learning_rate_init`` throughout. "invscaling": after each epoch
        the rate becomes ``learning_rate_init / (t_ + 1) ** power_t``, ``t_`` the rows trained so far.
        "adaptive": keep the rate while training improves; each time the stopping rule below would stop
        (more than ``n_iter_no_change`` epochs without an improvement of ``tol``; scikit-learn's own
        documentation says "two consecutive epochs", its code counts this way), divide the rate by 5
        instead, and stop only once the rate is at most 1e-6. ``fit`` starts from ``learning_rate_init``;
        ``partial_fit`` continues from the rate the previous call left. ``network_.history["lr"]`` holds the
        rate of each epoch of the latest call.
    learning_rate_init : float, default=0.001
        The initial (or constant) SGD learning rate, > 0. The default (scikit-learn's) suits per-sample SGD
        and tolerates unscaled inputs; mini-batch and full-batch training want a larger one (e.g. 0.1).
    power_t : float, default=0.5
        The exponent of "invscaling", >= 0.
    batch_size : int, "auto" or None, default=1
        Rows per weight update: 1 is per-sample SGD (annfast's strength), k is mini-batch SGD with the mean
        gradient of k rows, "auto" is min(200, n_rows) as in scikit-learn's MLP, None is full-batch
        gradient descent (one update per epoch).
    max_iter : int, default=200
        Maximum number of epochs (passes over the training rows) of one ``fit`` call, >= 1.
    momentum : float, default=0.0
        Momentum in [0, 1), with PyTorch's convention: v = momentum·v + g; w −= lr·v. The velocity
        carries over between ``partial_fit`` and warm-started ``fit`` calls.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (only when momentum > 0).
    alpha : float, default=1e-4
        L2 penalty, passed to annfast as ``weight_decay``: alpha·w is added to the gradient of every weight
        and bias at every update.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, stop when the validation R² has not improved by
        ``tol`` for more than ``n_iter_no_change`` epochs, and keep the weights of the best epoch.
        Ignored by ``partial_fit``.
    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping, in (0, 1).
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before training stops.
    tol : float, default=1e-4
        Smallest improvement of the training loss (or of the validation score with early stopping) that
        counts, >= 0.
    shuffle : bool, default=True
        Visit the rows in a fresh random order each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling and the validation split; an int gives bitwise-identical
        fits on the same machine.
    warm_start : bool, default=False
        Let ``fit`` continue training the fitted network instead of starting a new one.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and of all computation. Predictions are returned as float64 either way.
    verbose : int or bool, default=0
        0 or False: silent; 2 or True: one line per epoch; 1: a live progress bar per epoch (on stderr).

    Attributes
    ----------
    network_ : annfast.Network
        The trained network; it predicts standardized targets: ``predict(X)`` is
        ``network_.predict(X) * y_scale_ + y_mean_``.
    y_mean_, y_scale_ : ndarray of shape (n_outputs_,)
        Mean and standard deviation (1 for a constant column) of each target column.
    coefs_ : list of ndarray
        Weights of each layer, of shape (n_in, n_out) (scikit-learn's layout; copies). The last layer's
        include the un-standardization, so that coefs_ and intercepts_ describe ``predict`` exactly.
    intercepts_ : list of ndarray
        Biases of each layer, of shape (n_out,) (copies; the last layer's un-standardized too).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``fit`` got a DataFrame with string column names.
    n_outputs_ : int
        Number of targets.
    n_layers_ : int
        Number of layers, counting the input and the output layer.
    out_activation_ : str
        "linear".
    n_iter_ : int
        Epochs trained so far (all ``fit`` calls with warm_start, and one per ``partial_fit``).
    t_ : int
        Training rows seen so far.
    loss_curve_ : list of float
        Mean training loss of each epoch, on the standardized targets (each row's loss taken before that
        row's update; without the L2 term).
    best_loss_ : float or None
        Smallest value of ``loss_curve_``; None with early stopping.
    validation_scores_ : list of float or None
        Validation R² of each epoch with early stopping, else None.
    best_validation_score_ : float or None
        Best value of ``validation_scores_``, else None.

    See Also
    --------
    ANNClassifier : The classifier.
    annfast.Network : The network it trains.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from annfast.sklearn import ANNRegressor
    >>> X, y = make_regression(n_samples=200, n_features=4, noise=1.0, random_state=0)
    >>> reg = ANNRegressor(hidden_layer_sizes=(16,), max_iter=50, tol=1e-2, random_state=0).fit(X, y)
    >>> reg.predict(X[:2]).shape
    (2,)
    """

    _output_activation = "linear"
    _loss = "half_squared_error"
    _stratify = False
    _y_check_params = {"multi_output": True, "y_numeric": True}

    def __sklearn_tags__(self):
        """Describe the estimator to scikit-learn: one or several numeric targets."""
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = True
        tags.regressor_tags.poor_score = False
        return tags

    def _prepare_targets(self, y, reuse: bool, classes):
        name = type(self).__name__
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError(f"{name}: y has 0 columns; at least one target is needed")
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        Y = np.asarray(y, dtype=np.float64).reshape(y.shape[0], n_outputs)
        if reuse:
            if n_outputs != self.n_outputs_:
                raise ValueError(f"{name}: y has {n_outputs} target column(s) but the fitted network has "
                                 f"{self.n_outputs_} output(s); set warm_start=False (or call fit) to start anew")
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                mean, scale = Y.mean(axis=0), Y.std(axis=0)
            if not (np.isfinite(mean).all() and np.isfinite(scale).all()):
                raise ValueError(f"{name}: y holds values too large to standardize (column "
                                 f"{int(np.flatnonzero(~np.isfinite(mean + scale))[0])}); rescale y")
            scale = _validation.target_scale(mean, scale)    # a constant column is only centred
            self.y_mean_, self.y_scale_ = mean, scale
            self._y_2d = y.ndim == 2
        return (Y - self.y_mean_) / self.y_scale_, n_outputs

    @property
    def coefs_(self) -> list:
        """Weight matrices, one per layer, of shape (n_in, n_out) as in scikit-learn (copies).

        The last one includes the un-standardization of the targets (multiplied by ``y_scale_``), so
        that ``coefs_`` and ``intercepts_`` describe ``predict`` exactly.
        """
        coefs = super().coefs_
        dtype = coefs[-1].dtype
        # in float64, then narrowed with a check: a y_scale_ beyond float32 must not become inf silently
        coefs[-1] = _validation.cast_finite(coefs[-1].astype(np.float64) * self.y_scale_, dtype, "coefs_[-1]")
        return coefs

    @property
    def intercepts_(self) -> list:
        """Bias vectors, one per layer, of shape (n_out,) (copies); the last one includes the un-standardization."""
        intercepts = super().intercepts_
        intercepts[-1] = _validation.cast_finite(intercepts[-1].astype(np.float64) * self.y_scale_ + self.y_mean_,
                                                 intercepts[-1].dtype, "intercepts_[-1]")
        return intercepts

    def to_onnx(self, path) -> None:
        """Export the fitted regressor as an ONNX model whose float64 "output" equals ``predict``.

        The graph is the network's (see ``Network.to_onnx``: input "input" of shape (batch, n_features) in
        the network's dtype) followed by the inverse scaling of the targets (Cast to float64, Mul by
        ``y_scale_``, Add ``y_mean_``). The output is always 2-D, (batch, n_outputs_). ``metadata_props`` add
        ``annfast_estimator`` ("ANNRegressor"), ``annfast_y_mean`` and ``annfast_y_scale`` (JSON lists).

        Parameters
        ----------
        path : str or os.PathLike
        """
        check_is_fitted(self)
        from . import _onnx

        _onnx.export_regressor(self._as_fitted(), path)   # one fit's network and attributes

    def _make_scorer(self, X_val, y_val, w_val=None):
        return lambda net: r2_score(y_val, net.predict(X_val), sample_weight=w_val)

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and targets y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,) or a number, default=None
            Weights >= 0 of the rows: each row's loss and update are scaled by its weight, inside the C loop
            (``Network.fit``). With ``early_stopping``, the validation score is weighted too.

        Returns
        -------
        self : ANNRegressor
            The fitted estimator.

        Raises
        ------
        ValueError, TypeError
            For bad parameters or input (shape, non-finite values, ...); the estimator is unchanged.
        annfast.DivergenceError
            If training diverges (learning rate too high, unscaled data); the estimator is unchanged.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """Train one epoch on the given rows, continuing from the fitted network (or a new one).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, as many columns as in the first call.
        sample_weight : array-like of shape (n_samples,) or a number, default=None
            As in ``fit``.

        Returns
        -------
        self : ANNRegressor
            The updated estimator.
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predict the targets of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers, with the features seen by ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Float64; 2-D when ``fit`` got a 2-D y.
        """
        self = self._as_fitted()   # one fit's network, y_scale_ and y_mean_, whatever fit runs meanwhile
        X = self._validated_X(X)
        out = self.network_.predict(X) * self.y_scale_ + self.y_mean_     # float64
        return out if self._y_2d else out[:, 0]

    def score(self, X, y, sample_weight=None):
        """Return the coefficient of determination R² of the prediction (scikit-learn's ``r2_score``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers, with the features seen by ``fit``.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        float
        """
        y = _validation.unmasked(y, "y")   # r2_score would drop a mask and score the values under it
        if sample_weight is not None:
            sample_weight = _validation.unmasked(sample_weight, "sample_weight")
        return super().score(X, y, sample_weight=sample_weight)


class ANNClassifier(ClassifierMixin, _BaseANN):
    """Multi-layer perceptron classifier trained by annfast (per-sample SGD by default).

    A network of ``Dense`` hidden layers and a softmax output layer with one unit per class (also for
    two classes), trained on the cross-entropy. Class labels may be numbers, strings or any other hashable
    objects; ``classes_`` holds them sorted when they can be sorted, else in order of first appearance.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(32,)
        Units of each hidden layer; () for none (multinomial logistic regression).
    activation : str, default="relu"
        Activation of the hidden layers: "relu", "tanh", "sigmoid", "leaky_relu" (slope 0.01), "linear",
        "step", or scikit-learn's names "logistic" (= "sigmoid") and "identity" (= "linear").
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The learning-rate schedule, with scikit-learn's MLP meaning (its ``solver="sgd"``): the rate changes
        only between epochs. "constant": ``learning_rate_init`` throughout. "invscaling": after each epoch
        the rate becomes ``learning_rate_init / (t_ + 1) ** power_t``, ``t_`` the rows trained so far.
        "adaptive": keep the rate while training improves; each time the stopping rule below would stop
        (more than ``n_iter_no_change`` epochs without an improvement of ``tol``; scikit-learn's own
        documentation says "two consecutive epochs", its code counts this way), divide the rate by 5
        instead, and stop only once the rate is at most 1e-6. ``fit`` starts from ``learning_rate_init``;
        ``partial_fit`` continues from the rate the previous call left. ``network_.history["lr"]`` holds the
        rate of each epoch of the latest call.
    learning_rate_init : float, default=0.001
        The initial (or constant) SGD learning rate, > 0. The default (scikit-learn's) suits per-sample SGD
        and tolerates unscaled inputs; mini-batch and full-batch training want a larger one (e.g. 0.1).
    power_t : float, default=0.5
        The exponent of "invscaling", >= 0.
    batch_size : int, "auto" or None, default=1
        Rows per weight update: 1 is per-sample SGD (annfast's strength), k is mini-batch SGD with the mean
        gradient of k rows, "auto" is min(200, n_rows) as in scikit-learn's MLP, None is full-batch
        gradient descent (one update per epoch).
    max_iter : int, default=200
        Maximum number of epochs (passes over the training rows) of one ``fit`` call, >= 1.
    momentum : float, default=0.0
        Momentum in [0, 1), with PyTorch's convention: v = momentum·v + g; w −= lr·v. The velocity
        carries over between ``partial_fit`` and warm-started ``fit`` calls.
    nesterovs_momentum : bool, default=True
        Use Nesterov's momentum (only when momentum > 0).
    alpha : float, default=1e-4
        L2 penalty, passed to annfast as ``weight_decay``: alpha·w is added to the gradient of every weight
        and bias at every update.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the rows, stop when the validation accuracy has not
        improved by ``tol`` for more than ``n_iter_no_change`` epochs, and keep the weights of the best
        epoch. Ignored by ``partial_fit``.
    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping, in (0, 1).
    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before training stops.
    tol : float, default=1e-4
        Smallest improvement of the training loss (or of the validation accuracy with early stopping) that
        counts, >= 0.
    shuffle : bool, default=True
        Visit the rows in a fresh random order each epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the shuffling and the validation split; an int gives bitwise-identical
        fits on the same machine.
    warm_start : bool, default=False
        Let ``fit`` continue training the fitted network instead of starting a new one (y may then hold
        only labels of ``classes_``).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and of all computation. Probabilities are returned as float64 either way.
    verbose : int or bool, default=0
        0 or False: silent; 2 or True: one line per epoch; 1: a live progress bar per epoch (on stderr).
    class_weight : dict {label: weight}, "balanced" or None, default=None
        Weights of the classes, multiplied into each row's ``sample_weight`` (labels not named weigh 1);
        "balanced" is ``n_samples / (n_classes * rows of the class)`` over the rows of the ``fit`` call (as
        scikit-learn's ``compute_class_weight``; refused by ``partial_fit``, which sees only part of the data).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels; column k of ``predict_proba`` is the probability of ``classes_[k]``.
    network_ : annfast.Network
        The trained network (save it with ``network_.save``); output k is the probability of ``classes_[k]``.
    coefs_ : list of ndarray
        Weights of each layer, of shape (n_in, n_out) (scikit-learn's layout; copies).
    intercepts_ : list of ndarray
        Biases of each layer, of shape (n_out,) (copies).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features, when ``fit`` got a DataFrame with string column names.
    n_outputs_ : int
        Width of the output layer: one unit per class (2 for a binary problem).
    n_layers_ : int
        Number of layers, counting the input and the output layer.
    out_activation_ : str
        "softmax".
    n_iter_ : int
        Epochs trained so far (all ``fit`` calls with warm_start, and one per ``partial_fit``).
    t_ : int
        Training rows seen so far.
    loss_curve_ : list of float
        Mean cross-entropy of each epoch (each row's loss taken before that row's update; without the L2
        term).
    best_loss_ : float or None
        Smallest value of ``loss_curve_``; None with early stopping.
    validation_scores_ : list of float or None
        Validation accuracy of each epoch with early stopping, else None.
    best_validation_score_ : float or None
        Best value of ``validation_scores_``, else None.

    See Also
    --------
    ANNRegressor : The regressor.
    annfast.Network : The network it trains.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from annfast.sklearn import ANNClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(), ANNClassifier(max_iter=50, tol=1e-2, random_state=0)).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    """

    _output_activation = "softmax"
    _loss = "cross_entropy"
    _stratify = True

    def __init__(self, hidden_layer_sizes=(32,), activation="relu", *, learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, batch_size=1, max_iter=200, momentum=0.0,
                 nesterovs_momentum=True, alpha=1e-4, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, shuffle=True, random_state=None, warm_start=False, dtype="float32",
                 verbose=0, class_weight=None):
        super().__init__(hidden_layer_sizes, activation, learning_rate=learning_rate,
                         learning_rate_init=learning_rate_init, power_t=power_t, batch_size=batch_size,
                         max_iter=max_iter, momentum=momentum, nesterovs_momentum=nesterovs_momentum, alpha=alpha,
                         early_stopping=early_stopping, validation_fraction=validation_fraction,
                         n_iter_no_change=n_iter_no_change, tol=tol, shuffle=shuffle, random_state=random_state,
                         warm_start=warm_start, dtype=dtype, verbose=verbose)
        self.class_weight = class_weight
    _y_check_params = {}

    def __sklearn_tags__(self):
        """Describe the estimator to scikit-learn: binary and multiclass, one label per sample."""
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        tags.classifier_tags.poor_score = False
        return tags

    # ---- labels ------------------------------------------------------------------------------

    def _labels(self, y, what: str) -> np.ndarray:
        """Return the distinct labels of a 1-D array: sorted when they sort, else in order of first appearance."""
        name = type(self).__name__
        if y.dtype.kind == "O":
            values = y.tolist()
            try:
                distinct = list(dict.fromkeys(values))
            except TypeError:
                bad = next(i for i, v in enumerate(values) if not _hashable(v))
                raise TypeError(f"{name}: class labels must be hashable, but {what}[{bad}] is a "
                                f"{type(values[bad]).__name__}") from None
            if all(isinstance(v, numbers.Real) for v in distinct):
                _classification_targets(np.asarray(distinct, dtype=np.float64))   # no continuous targets
            try:
                distinct = sorted(distinct)
            except TypeError:
                pass
            out = np.empty(len(distinct), dtype=object)
            for k, v in enumerate(distinct):
                out[k] = v
            return out
        _classification_targets(y)
        return np.unique(y)

    def _codes(self, y) -> np.ndarray:
        """Map labels to their indices in ``classes_``; raise ValueError naming labels not in ``classes_``."""
        index = {label: k for k, label in enumerate(self.classes_.tolist())}
        try:
            distinct, inverse = np.unique(y, return_inverse=True)
        except TypeError:                      # labels that do not sort: map them one by one
            distinct, inverse = None, None
        if distinct is not None:
            mapping = np.array([index.get(label, -1) for label in distinct.tolist()], dtype=np.int64)
            codes = mapping[inverse.reshape(-1)]
        else:
            codes = np.fromiter((index.get(label, -1) for label in y.tolist()), dtype=np.int64, count=y.shape[0])
        if (codes < 0).any():
            unseen = list(dict.fromkeys(y[codes < 0].tolist()))
            raise ValueError(f"{type(self).__name__}: y has label(s) {unseen[:10]} not in classes_ "
                             f"{self.classes_.tolist()}; pass every class to the first partial_fit call "
                             f"(classes=...) or fit a new model")
        return codes

    def _prepare_targets(self, y, reuse: bool, classes):
        name = type(self).__name__
        given = classes
        if classes is not None:
            classes = np.asarray(classes)
            if classes.ndim != 1:
                raise ValueError(f"{name}: classes must be a 1-D array of labels, got shape {classes.shape}")
            classes = self._labels(classes, "classes")
            if reuse and (classes.shape != self.classes_.shape or
                          classes.tolist() != self.classes_.tolist()):
                raise ValueError(f"{name}: classes={classes.tolist()} is not the same as classes_="
                                 f"{self.classes_.tolist()} of the fitted model")
        if not reuse:
            classes = self._labels(y, "y") if classes is None else classes
            if classes.shape[0] < 2:
                raise ValueError(f"{name}: a classifier needs at least 2 classes, but "
                                 f"{'y' if given is None else 'classes'} has only one class: {classes.tolist()}")
            self.classes_ = classes
        return self._codes(y), self.classes_.shape[0]     # later calls: any label not in classes_ is an error

    def _make_scorer(self, X_val, y_val, w_val=None):
        return lambda net: accuracy_score(y_val, net.predict(X_val).argmax(axis=1), sample_weight=w_val)

    def _class_weighed(self, weights, codes, incremental: bool):
        """Return the rows' weights times the weights of their classes (``class_weight``; labels as ``classes_``)."""
        cw = self.class_weight
        if cw is None:
            return weights
        name = type(self).__name__
        n_classes = self.classes_.shape[0]
        if isinstance(cw, str) and cw == "balanced":
            if incremental:
                raise ValueError(f"{name}: class_weight='balanced' needs the class counts of all the data, which "
                                 f"partial_fit does not see; compute them once (scikit-learn's compute_class_weight) "
                                 f"and pass class_weight as a dict {{label: weight}}")
            table = _validation.balanced_class_weight(codes, n_classes)
        elif isinstance(cw, dict):
            index = {label: k for k, label in enumerate(self.classes_.tolist())}
            table = np.ones(n_classes)
            for label, w in cw.items():
                if label not in index:
                    raise ValueError(f"{name}: class_weight names the label {label!r}, which is not one of the "
                                     f"classes {self.classes_.tolist()}")
                table[index[label]] = _validation.class_weight_value(w, f"{name}: class_weight[{label!r}]")
        else:
            raise ValueError(f"{name}: class_weight must be None, 'balanced' or a dict {{label: weight}}, got {cw!r}")
        row = table[codes]
        with np.errstate(over="ignore"):   # a product too large is reported by the caller, naming class_weight
            return row if weights is None else weights * row

    # ---- public API --------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and class labels y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers.
        y : array-like of shape (n_samples,)
            Class labels (numbers, strings or other hashable objects), at least two distinct ones.
        sample_weight : array-like of shape (n_samples,) or a number, default=None
            Weights >= 0 of the rows, multiplied by ``class_weight``: each row's loss and update are scaled by
            its weight, inside the C loop (``Network.fit``). With ``early_stopping``, the validation accuracy is
            weighted too.

        Returns
        -------
        self : ANNClassifier
            The fitted estimator.

        Raises
        ------
        ValueError, TypeError
            For bad parameters or input (shape, non-finite values, a continuous y, ...); the estimator is
            unchanged.
        annfast.DivergenceError
            If training diverges; the estimator is unchanged.
        """
        return self._fit(X, y, incremental=False, sample_weight=sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train one epoch on the given rows, continuing from the fitted network (or a new one).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers.
        y : array-like of shape (n_samples,)
            Labels, each one of ``classes`` (or of ``classes_`` after the first call).
        classes : array-like of shape (n_classes,), default=None
            All the classes of the whole data. Required on the first call (when the estimator is not yet
            fitted); later it may be omitted, or must equal ``classes_``.
        sample_weight : array-like of shape (n_samples,) or a number, default=None
            As in ``fit`` (``class_weight="balanced"`` is refused here: it needs the counts of all the data).

        Returns
        -------
        self : ANNClassifier
            The updated estimator.

        Raises
        ------
        ValueError
            If ``classes`` is missing on the first call or differs from ``classes_``, or if y holds a label
            not in ``classes_``; the estimator is unchanged.
        """
        if classes is None and not self.__sklearn_is_fitted__():
            raise ValueError(f"{type(self).__name__}: classes must be passed on the first call to partial_fit "
                             f"(all the labels of the whole data, e.g. classes=np.unique(y_all))")
        return self._fit(X, y, incremental=True, classes=classes, sample_weight=sample_weight)

    def to_onnx(self, path) -> None:
        """Export the fitted classifier as an ONNX model whose float64 "output" equals ``predict_proba``.

        The graph is the network's (see ``Network.to_onnx``: input "input" of shape (batch, n_features) in
        the network's dtype) with its output cast to float64. The class labels, the equivalent of the
        estimator's label mapping, are in ``metadata_props["annfast_classes"]`` as a JSON list: column k of
        "output" is the probability of label k, and ``predict`` is that list taken at the argmax of each row.
        ``annfast_estimator`` is "ANNClassifier".

        Parameters
        ----------
        path : str or os.PathLike

        Raises
        ------
        ValueError
            If the labels cannot be written as JSON (labels other than numbers, strings and booleans).
        """
        check_is_fitted(self)
        from . import _onnx

        _onnx.export_classifier(self._as_fitted(), path)   # one fit's network and attributes

    def predict_proba(self, X):
        """Predict the class probabilities of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers, with the features seen by ``fit``.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Float64; column k is the probability of ``classes_[k]``; rows sum to 1.
        """
        self = self._as_fitted()   # validated against the features of the network it runs
        X = self._validated_X(X)
        return self.network_.predict(X).astype(np.float64)

    def predict(self, X):
        """Predict the class label of each row of X (the most probable class).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers, with the features seen by ``fit``.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        self = self._as_fitted()   # one fit's network and classes_
        X = self._validated_X(X)
        return self.classes_.take(self.network_.predict(X).argmax(axis=1))

    def score(self, X, y, sample_weight=None):
        """Return the mean accuracy on the given data and labels.

        Works for every kind of label ``fit`` accepts (labels that scikit-learn's ``accuracy_score`` would
        reject, such as enum members, are compared one by one with ``==``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Finite numbers, with the features seen by ``fit``.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples.

        Returns
        -------
        float
            The (weighted) fraction of correctly predicted labels.
        """
        self = self._as_fitted()   # one fit's classes_ for the check and the prediction
        y = _validation.unmasked(y, "y")   # accuracy_score would drop a mask and count the labels under it
        if sample_weight is not None:
            sample_weight = _validation.unmasked(sample_weight, "sample_weight")
        if self.__sklearn_is_fitted__() and self.classes_.dtype.kind != "O":
            return super().score(X, y, sample_weight=sample_weight)
        y_pred = self.predict(X)
        y_true = column_or_1d(y)
        check_consistent_length(y_true, y_pred, sample_weight)
        hits = y_true.astype(object) == y_pred.astype(object)
        return float(np.average(hits, weights=sample_weight))


def _classification_targets(y) -> None:
    """Run scikit-learn's check that y holds class labels, without its RuntimeWarning for huge labels.

    Its integer test warns for a label beyond int64's range (1e39, say); the check itself decides, and the warning
    says nothing useful.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        check_classification_targets(y)


def _finite(value) -> bool:
    """Whether a real number is finite as a float (an int beyond float64 is not; np.isfinite raises for it)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _first_nonfinite(data, dtype) -> str | None:
    """Say where the first value of ``data`` that is not finite in ``dtype`` is ("row i, column j"), if any."""
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            arr = np.asarray(data)
            arr = arr.astype(np.float64) if arr.dtype.kind == "O" else arr
            if arr.dtype.kind != "f" or arr.ndim not in (1, 2):
                return None
            bad = np.argwhere(~np.isfinite(arr.astype(dtype)))
    except (TypeError, ValueError):
        return None
    if not len(bad):
        return None
    return f"row {bad[0][0]}, column {bad[0][1]}" if arr.ndim == 2 else f"row {bad[0][0]}"


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
