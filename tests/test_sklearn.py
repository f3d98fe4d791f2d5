"""annfast.sklearn: scikit-learn's estimator checks, real-data learning, pipelines, grid search, labels and errors."""
import copy
import pickle
import subprocess
import sys
import warnings
from enum import Enum

import numpy as np
import pytest
from conftest import QUICK

pytest.importorskip("sklearn", minversion="1.6")      # validate_data, __sklearn_tags__, expected_failed_checks

from sklearn.base import clone  # noqa: E402
from sklearn.compose import TransformedTargetRegressor  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import annfast as af  # noqa: E402
from annfast.sklearn import ANNClassifier, ANNRegressor  # noqa: E402


def _scaled(loader):
    X, y = loader(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _snapshot(est):
    """Everything a failed call must leave untouched: weights (bitwise) and the fitted attributes."""
    return (est.network_.parameters.tobytes(), est.n_features_in_, est.n_iter_, list(est.loss_curve_),
            getattr(est, "classes_", None) is not None and est.classes_.tolist())


# ---- scikit-learn's own estimator checks -----------------------------------------------------------------

# Checks that fail and why. A check may only be added here with the reason it cannot pass; a check that fails
# because of a bug gets the bug fixed instead. (The checks that need pandas are skipped when pandas is not
# installed; they pass with it.) The one entry is scikit-learn's own for its MLPs and SGD estimators: stochastic
# gradient descent visits a repeated row twice, at two different points of training, whereas a weight of 2 scales
# one step, so the two fits agree only to first order in the learning rate (test_sample_weight.py checks the
# equivalence where it is exact: the summed gradient, and full-batch descent).
_SGD_WEIGHTS = ("per-sample SGD: a weight of 2 scales one step, a repeated row takes two at different weights; "
                "equal only to first order in the learning rate")
EXPECTED_FAILED_CHECKS: dict = {
    "ANNRegressor": {"check_sample_weight_equivalence_on_dense_data": _SGD_WEIGHTS},
    "ANNClassifier": {"check_sample_weight_equivalence_on_dense_data": _SGD_WEIGHTS},
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS[type(estimator).__name__]


CHECKED = [
    ANNRegressor(),      # the defaults: per-sample SGD, float32
    ANNClassifier(),
    # the other code paths: float64, mini-batches with momentum, two tanh hidden layers
    ANNRegressor(hidden_layer_sizes=(8, 4), activation="tanh", batch_size=10, learning_rate_init=0.01,
                 momentum=0.5, dtype="float64"),
    ANNClassifier(hidden_layer_sizes=(8, 4), activation="tanh", batch_size=10, learning_rate_init=0.01,
                  momentum=0.5, dtype="float64"),
]


# The checks fit on tiny data sets on which the loss keeps creeping down for all of max_iter=200 epochs, so
# the ConvergenceWarning (which the estimators emit deliberately, as scikit-learn's MLP does) is expected there;
# test_convergence_warning checks that it is emitted exactly when it should be.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---- learning on real data, in Pipeline, GridSearchCV and cross-validation --------------------------------

def test_digits_pipeline_accuracy():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), ANNClassifier(random_state=0))
    model.fit(X_train, y_train)
    assert model.score(X_test, y_test) >= 0.9
    clf = model[-1]
    assert clf.n_iter_ < clf.max_iter                   # stopped by the tol / n_iter_no_change rule
    assert clf.classes_.tolist() == list(range(10))
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], model.predict(X_test))


def test_breast_cancer_binary_two_probability_columns():
    X, y = load_breast_cancer(return_X_y=True)
    names = np.array(["benign", "malignant"])[1 - y]    # string labels
    X_train, X_test, y_train, y_test = train_test_split(X, names, random_state=0, stratify=names)
    model = make_pipeline(StandardScaler(), ANNClassifier(hidden_layer_sizes=(16,), tol=1e-3, random_state=0))
    model.fit(X_train, y_train)
    assert model.score(X_test, y_test) >= 0.92      # majority class: 0.63; seeds 0-4 give 0.93-0.965
    clf = model[-1]
    assert clf.classes_.tolist() == ["benign", "malignant"] and clf.n_outputs_ == 2
    assert model.predict_proba(X_test).shape == (len(X_test), 2)
    assert set(model.predict(X_test)) <= {"benign", "malignant"}


def test_diabetes_regression_learns():
    X, y = load_diabetes(return_X_y=True)
    scores = cross_val_score(make_pipeline(StandardScaler(), ANNRegressor(random_state=0)), X, y, cv=5)
    assert scores.mean() > 0.35          # a linear model gets about 0.48; predicting the mean gets 0


def test_grid_search_with_processes_iris():
    X, y = load_iris(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), ANNClassifier(tol=1e-3, random_state=0))
    grid = GridSearchCV(pipe, {"annclassifier__hidden_layer_sizes": [(8,), (16,)],
                               "annclassifier__learning_rate_init": [0.003, 0.01]}, cv=3, n_jobs=2)
    grid.fit(X, y)
    assert grid.best_score_ > 0.9
    assert grid.score(X, y) > 0.9
    assert len(grid.cv_results_["mean_test_score"]) == 4


def test_grid_search_with_processes_diabetes_regressor():
    X, y = load_diabetes(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), ANNRegressor(tol=1e-3, random_state=0))
    grid = GridSearchCV(pipe, {"annregressor__hidden_layer_sizes": [(8,), (32,)],
                               "annregressor__alpha": [1e-4, 1e-2]}, cv=3, n_jobs=2)
    grid.fit(X, y)
    assert grid.best_score_ > 0.35


def test_fitted_estimators_travel_between_processes():
    X, y = _scaled(load_iris)
    out = cross_validate(ANNClassifier(tol=1e-3, random_state=0), X, y, cv=3, n_jobs=2, return_estimator=True)
    for est in out["estimator"]:        # fitted in a worker, pickled back with their networks
        assert isinstance(est.network_, af.Network)
        assert est.score(X, y) > 0.85


def test_transformed_target_regressor_and_multi_output():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    Y = np.column_stack([X[:, 0] * X[:, 1], np.sin(X[:, 2]) * 100 + 500])    # targets of very different scales
    reg = ANNRegressor(hidden_layer_sizes=(32,), random_state=0, learning_rate_init=0.01, tol=1e-3).fit(X, Y)
    pred = reg.predict(X)
    assert pred.shape == (400, 2) and pred.dtype == np.float64 and reg.n_outputs_ == 2
    assert reg.score(X, Y) > 0.8
    np.testing.assert_allclose(reg.y_mean_, Y.mean(axis=0))
    wrapped = TransformedTargetRegressor(ANNRegressor(random_state=0, tol=1e-3), transformer=StandardScaler())
    assert wrapped.fit(X, Y[:, 1]).score(X, Y[:, 1]) > 0.8


def test_y_column_vector_gives_column_predictions():
    X, y = _scaled(load_diabetes)
    reg = ANNRegressor(tol=1e-3, random_state=0).fit(X, y)
    reg2 = ANNRegressor(tol=1e-3, random_state=0).fit(X, y.reshape(-1, 1))
    assert reg.predict(X).shape == (len(X),)
    assert reg2.predict(X).shape == (len(X), 1)
    np.testing.assert_array_equal(reg.predict(X), reg2.predict(X)[:, 0])


@pytest.mark.parametrize("batch_size,learning_rate", [(1, 0.001), (16, 0.01), ("auto", 0.1), (None, 0.5)],
                         ids=["sgd", "mini", "auto", "full"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_modes_and_dtypes(batch_size, learning_rate, dtype):
    X, y = _scaled(load_iris)
    clf = ANNClassifier(batch_size=batch_size, learning_rate_init=learning_rate, dtype=dtype, random_state=0,
                        max_iter=300, tol=1e-3)
    clf.fit(X, y)
    assert clf.network_.dtype == np.dtype(dtype)
    assert clf.score(X, y) > 0.9
    assert clf.predict_proba(X).dtype == np.float64


# ---- fitted attributes ----------------------------------------------------------------------------------

def test_fitted_attributes_in_sklearn_layout():
    X, y = _scaled(load_iris)
    clf = ANNClassifier(hidden_layer_sizes=(5, 4), learning_rate_init=0.01, tol=1e-3, random_state=0,
                        dtype="float64").fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(4, 5), (5, 4), (4, 3)]
    assert [b.shape for b in clf.intercepts_] == [(5,), (4,), (3,)]
    assert clf.n_features_in_ == 4 and clf.n_outputs_ == 3 and clf.n_layers_ == 4
    assert clf.out_activation_ == "softmax"
    assert len(clf.loss_curve_) == clf.n_iter_ and clf.t_ == clf.n_iter_ * len(X)
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert not hasattr(clf, "feature_names_in_")
    # a plain NumPy forward pass through coefs_ / intercepts_ reproduces predict_proba
    a = X
    for W, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
        a = np.maximum(a @ W + b, 0)
    z = a @ clf.coefs_[-1] + clf.intercepts_[-1]
    p = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(axis=1, keepdims=True), clf.predict_proba(X), rtol=1e-10, atol=1e-12)


def test_regressor_coefs_describe_predict():
    X, y = _scaled(load_diabetes)
    reg = ANNRegressor(hidden_layer_sizes=(6,), dtype="float64", random_state=0).fit(X, y)
    hidden = np.maximum(X @ reg.coefs_[0] + reg.intercepts_[0], 0)
    np.testing.assert_allclose((hidden @ reg.coefs_[1] + reg.intercepts_[1])[:, 0], reg.predict(X), rtol=1e-10)
    # the network itself predicts the standardized targets
    np.testing.assert_allclose(reg.network_.predict(X)[:, 0] * reg.y_scale_[0] + reg.y_mean_[0], reg.predict(X))


def test_early_stopping_attributes_and_best_weights():
    X, y = _scaled(load_digits)
    clf = ANNClassifier(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, random_state=0).fit(X, y)
    assert clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_) > 0.9
    assert clf.n_iter_ < clf.max_iter
    assert clf.t_ == clf.n_iter_ * (len(X) - int(np.ceil(0.2 * len(X))))
    # tol=0: training stops after n_iter_no_change + 1 epochs each with a lower validation R² than the best
    # one, so the weights kept (those of the best epoch) are not those of the last epoch
    X, y = _scaled(load_diabetes)
    reg = ANNRegressor(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, tol=0.0,
                       random_state=0).fit(X, y)
    assert len(reg.validation_scores_) == reg.n_iter_ and reg.best_validation_score_ > 0.2
    assert reg.validation_scores_[-1] < reg.best_validation_score_
    # rebuild the held-out rows as fit draws them: one seed for the network, then the split, from
    # RandomState(random_state)
    rs = np.random.RandomState(0)
    rs.randint(np.iinfo(np.int32).max)
    _, X_val, _, y_val = train_test_split(X, y, test_size=int(np.ceil(0.2 * len(X))), random_state=rs)
    assert reg.score(X_val, y_val) == pytest.approx(reg.best_validation_score_, rel=1e-9)


def test_feature_names_from_a_dataframe():
    pd = pytest.importorskip("pandas")
    X, y = _scaled(load_iris)
    df = pd.DataFrame(X, columns=["sl", "sw", "pl", "pw"])
    clf = ANNClassifier(random_state=0, tol=1e-3).fit(df, pd.Series(y))
    assert clf.feature_names_in_.tolist() == ["sl", "sw", "pl", "pw"]
    assert clf.score(df, y) > 0.9
    state = _snapshot(clf)
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(df[["sw", "sl", "pl", "pw"]])
    with pytest.raises(ValueError, match="feature names should match"):
        clf.partial_fit(df[["sw", "sl", "pl", "pw"]], y)
    assert _snapshot(clf) == state and clf.feature_names_in_.tolist() == ["sl", "sw", "pl", "pw"]
    clf.fit(X, y)                             # a fit on a plain array forgets the names
    assert not hasattr(clf, "feature_names_in_")
    reg = ANNRegressor(random_state=0, tol=1e-3).fit(df, df["sl"] * 2)
    assert reg.feature_names_in_.tolist() == ["sl", "sw", "pl", "pw"]
    pipe = make_pipeline(StandardScaler(), ANNRegressor(random_state=0, tol=1e-3)).fit(df, df["sl"] * 2)
    assert pipe.feature_names_in_.tolist() == ["sl", "sw", "pl", "pw"] and pipe.score(df, df["sl"] * 2) > 0.9


# ---- labels -------------------------------------------------------------------------------------------------

class Flower(Enum):
    SETOSA = "setosa"
    VERSICOLOR = "versicolor"
    VIRGINICA = "virginica"


def _objects(values):
    out = np.empty(len(values), dtype=object)
    for k, value in enumerate(values):
        out[k] = value
    return out


LABELS = {
    "int": lambda y: y * 10 - 5,
    "str": lambda y: np.array(["setosa", "versicolor", "virginica"])[y],
    "object_str": lambda y: _objects(["a", "b", "c"])[y],
    "enum": lambda y: _objects(list(Flower))[y],
    "mixed": lambda y: _objects(["one", 2, (3, "three")])[y],        # sklearn's own metrics refuse these
    "float": lambda y: y.astype(np.float64),
    "bool": lambda y: y == 1,
}


@pytest.mark.parametrize("kind", list(LABELS))
def test_class_labels_of_any_hashable_kind(kind):
    X, y = _scaled(load_iris)
    if kind == "bool":
        X, y = X[y < 2], y[y < 2]
    labels = LABELS[kind](y)
    clf = ANNClassifier(random_state=0, tol=1e-3).fit(X, labels)
    pred = clf.predict(X)
    assert len(clf.classes_) == len(set(labels.tolist()))
    assert set(pred.tolist()) <= set(labels.tolist())
    assert clf.score(X, labels) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), len(clf.classes_))
    assert [clf.classes_[k] for k in proba.argmax(axis=1)] == pred.tolist()
    if kind == "enum":          # unorderable labels keep their order of first appearance
        assert clf.classes_.tolist() == list(Flower)
    if kind in ("str", "int", "float"):
        np.testing.assert_array_equal(clf.classes_, np.unique(labels))


def test_one_class_and_continuous_and_unhashable_targets_are_rejected():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="at least 2 classes.*only one class"):
        ANNClassifier().fit(X, np.ones(20))
    with pytest.raises(ValueError, match="Unknown label type"):
        ANNClassifier().fit(X, np.linspace(0, 1, 20))
    y = np.arange(20) % 2 * 1.0
    y[13] = np.nan
    with pytest.raises(ValueError, match=r"Input y contains NaN \(first at row 13\)"):
        ANNClassifier().fit(X, y)
    with pytest.raises(ValueError, match=r"Input y contains infinity.*\(first at row 4, column 1\)"):
        ANNRegressor().fit(X, np.where(np.arange(40).reshape(20, 2) == 9, np.inf, 0.0))
    with pytest.raises(ValueError, match="at least 2 classes.*classes has only one class"):
        ANNClassifier().partial_fit(X, np.ones(20), classes=[1])
    y = np.empty(20, dtype=object)
    for i in range(20):
        y[i] = [i % 2]
    with pytest.raises(TypeError, match=r"hashable.*y\[0\] is a list"):
        ANNClassifier().fit(X, y)


# ---- partial_fit ----------------------------------------------------------------------------------------

def test_classifier_partial_fit_streams_digits():
    X, y = _scaled(load_digits)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
    clf = ANNClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X_train[:10], y_train[:10])
    assert not hasattr(clf, "n_features_in_")
    first = y_train < 5          # the first chunk holds only half of the classes
    clf.partial_fit(X_train[first][:100], y_train[first][:100], classes=np.arange(10))
    assert clf.classes_.tolist() == list(range(10)) and clf.n_iter_ == 1
    for _ in range(15):
        for start in range(0, len(X_train), 200):
            clf.partial_fit(X_train[start:start + 200], y_train[start:start + 200])
    assert clf.n_iter_ == 1 + 15 * len(range(0, len(X_train), 200))
    assert clf.score(X_test, y_test) >= 0.9
    clf.partial_fit(X_train[:5], y_train[:5], classes=np.arange(10))        # the same classes again: fine
    with pytest.raises(ValueError, match="not the same as classes_"):
        clf.partial_fit(X_train[:5], y_train[:5], classes=np.arange(11))


def test_partial_fit_after_fit_continues_and_regressor_partial_fit():
    X, y = _scaled(load_iris)
    clf = ANNClassifier(random_state=0, tol=1e-3).fit(X, y)
    n_iter, before = clf.n_iter_, clf.network_.parameters.copy()
    net = clf.network_
    clf.partial_fit(X, y)
    assert clf.n_iter_ == n_iter + 1 and clf.network_ is net
    assert not np.array_equal(before, clf.network_.parameters)
    Xd, yd = _scaled(load_diabetes)
    reg = ANNRegressor(random_state=0)
    for _ in range(30):
        reg.partial_fit(Xd, yd)
    assert reg.n_iter_ == 30 and reg.score(Xd, yd) > 0.4
    with pytest.raises(ValueError, match="y has 2 target column.*1 output"):
        reg.partial_fit(Xd, np.column_stack([yd, yd]))


def test_partial_fit_ignores_early_stopping():
    X, y = _scaled(load_iris)
    clf = ANNClassifier(early_stopping=True, random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 1 and clf.best_loss_ == clf.loss_curve_[0] and clf.validation_scores_ is None


# ---- warm start, convergence, reproducibility, persistence ---------------------------------------------------

def test_warm_start_continues_the_same_network():
    X, y = _scaled(load_iris)
    clf = ANNClassifier(max_iter=5, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    net, curve = clf.network_, list(clf.loss_curve_)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert clf.network_ is net and clf.n_iter_ == 10 and clf.loss_curve_[:5] == curve
    clf.set_params(hidden_layer_sizes=(7,))
    state = _snapshot(clf)
    with pytest.raises(ValueError, match="hidden_layer_sizes.*set warm_start=False"):
        clf.fit(X, y)
    assert _snapshot(clf) == state
    clf.set_params(warm_start=False)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    assert clf.network_ is not net and clf.n_iter_ == 5 and clf.coefs_[0].shape == (4, 7)


def test_convergence_warning():
    X, y = _scaled(load_iris)
    with pytest.warns(ConvergenceWarning, match=r"ANNClassifier: max_iter=3 epochs reached"):
        clf = ANNClassifier(max_iter=3, random_state=0).fit(X, y)
    assert clf.n_iter_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = ANNClassifier(max_iter=100, tol=1.0, n_iter_no_change=2, random_state=0).fit(X, y)
    assert clf.n_iter_ == 4      # only the first epoch "improves" (on an infinite best): stop after 1 + 2 + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ANNClassifier(random_state=0).partial_fit(X, y, classes=[0, 1, 2])     # one epoch: never warns


def test_same_random_state_same_model_and_pickle_roundtrip(tmp_path):
    X, y = _scaled(load_iris)
    a = ANNClassifier(random_state=3, tol=1e-3).fit(X, y)
    b = ANNClassifier(random_state=3, tol=1e-3).fit(X, y)
    assert a.network_.parameters.tobytes() == b.network_.parameters.tobytes()
    c = ANNClassifier(random_state=4, tol=1e-3).fit(X, y)
    assert a.network_.parameters.tobytes() != c.network_.parameters.tobytes()
    for other in (pickle.loads(pickle.dumps(a)), copy.deepcopy(a)):
        np.testing.assert_array_equal(other.predict_proba(X), a.predict_proba(X))
        assert other.classes_.tolist() == a.classes_.tolist()
    a.network_.save(tmp_path / "iris.annfast")
    np.testing.assert_array_equal(af.load(tmp_path / "iris.annfast").predict(X), a.network_.predict(X))
    fresh = clone(a)
    assert not hasattr(fresh, "network_") and fresh.get_params() == a.get_params()


def test_random_state_instance_and_none():
    X, y = _scaled(load_iris)
    rs = np.random.RandomState(0)
    a = ANNClassifier(random_state=rs, tol=1e-3).fit(X, y)
    b = ANNClassifier(random_state=rs, tol=1e-3).fit(X, y)          # the RandomState has moved on
    assert a.network_.parameters.tobytes() != b.network_.parameters.tobytes()
    assert ANNClassifier(tol=1e-3).fit(X, y).score(X, y) > 0.9


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = _scaled(load_iris)
    ANNClassifier(max_iter=100, tol=1.0, n_iter_no_change=1, verbose=True, random_state=0).fit(X, y)
    err = capsys.readouterr().err
    assert err.count("loss") == 3


# ---- reliability: bad input gives a clear error and leaves the fitted model untouched ---------------------

@pytest.fixture
def fitted():
    X, y = _scaled(load_iris)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    return ANNClassifier(random_state=0, tol=1e-3).fit(X, names), X, names


def test_predict_rejects_bad_input(fitted):
    clf, X, y = fitted
    state = _snapshot(clf)
    with pytest.raises(ValueError, match="X has 3 features, but ANNClassifier is expecting 4 features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.predict_proba(X[:, :3])
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"Input X contains NaN \(first at row 7, column 2\)"):
        clf.predict(bad)
    with pytest.raises(ValueError, match="Expected 2D array, got 1D array"):
        clf.predict(X[0])
    huge = X[:3].copy()
    huge[2, 3] = 1e300           # finite, but not in float32
    with pytest.raises(ValueError, match=r"Input X contains infinity or a value too large for dtype\('float32'\) "
                                         r"\(first at row 2, column 3\)"):
        clf.predict(huge)
    with pytest.raises(ValueError, match="could not convert string to float"):
        clf.predict([["a", "b", "c", "d"]])
    assert _snapshot(clf) == state


def test_failed_training_calls_leave_the_model_untouched(fitted):
    clf, X, y = fitted
    state = _snapshot(clf)
    bad = X.copy()
    bad[3, 1] = np.inf
    calls = [
        (lambda: clf.partial_fit(X, np.where(y == "setosa", "rose", y)), ValueError,
         r"label\(s\) \['rose'\] not in classes_"),
        (lambda: clf.partial_fit(X[:, :3], y), ValueError, "X has 3 features"),
        (lambda: clf.partial_fit(bad, y), ValueError, r"Input X contains infinity.*\(first at row 3, column 1\)"),
        (lambda: clf.partial_fit(X, y[:-1]), ValueError, "inconsistent numbers of samples"),
        (lambda: clf.partial_fit(X, y, classes=["setosa", "versicolor"]), ValueError, "not the same as classes_"),
        (lambda: clf.set_params(warm_start=True).fit(X[:, :3], y), ValueError, "X has 3 features"),
        (lambda: clf.set_params(warm_start=True).fit(X, np.where(y == "setosa", "rose", y)), ValueError,
         "not in classes_"),
        (lambda: clf.set_params(warm_start=False).fit(bad, y), ValueError, "Input X contains infinity"),
        (lambda: clf.fit(X[:, :3], np.ones(len(X))), ValueError, "only one class"),
        (lambda: clf.set_params(learning_rate_init=-1.0).fit(X, y), ValueError, "learning_rate_init must be"),
    ]
    for call, error, match in calls:
        with pytest.raises(error, match=match):
            call()
        assert _snapshot(clf) == state, match
    clf.set_params(learning_rate_init=0.001)
    assert clf.n_features_in_ == 4 and clf.score(X, y) > 0.9


def test_divergence_is_reported_and_rolled_back():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 1e4          # unscaled inputs and a huge learning rate
    y = X @ np.array([1.0, -2.0, 0.5])
    reg = ANNRegressor(hidden_layer_sizes=(4,), random_state=0, max_iter=3, learning_rate_init=1e-9,
                       warm_start=True)
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, y)
    state = _snapshot(reg)
    reg.set_params(learning_rate_init=10.0)
    with pytest.raises(af.DivergenceError, match=r"ANNRegressor.fit: .*learning_rate_init=10.0.*unchanged"):
        reg.fit(X, y)
    assert _snapshot(reg) == state
    with pytest.raises(FloatingPointError):       # DivergenceError subclasses it
        reg.partial_fit(X, y)
    assert _snapshot(reg) == state


def test_interrupted_training_is_rolled_back_completely(monkeypatch):
    import annfast.sklearn as ann_sklearn

    X, y = _scaled(load_iris)
    settings = dict(momentum=0.9, learning_rate_init=0.01, max_iter=3, warm_start=True, random_state=0)
    a, b = ANNClassifier(**settings), ANNClassifier(**settings)
    for est in (a, b):
        with pytest.warns(ConvergenceWarning):
            est.fit(X, y)
    state = _snapshot(a)
    original = ann_sklearn._Monitor.on_epoch_end

    def interrupt_in_second_epoch(self, epoch, logs):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(ann_sklearn._Monitor, "on_epoch_end", interrupt_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        a.fit(X, y)
    monkeypatch.undo()
    assert _snapshot(a) == state
    # weights, momentum velocity and random stream were all put back: training on gives b's weights exactly
    for est in (a, b):
        with pytest.warns(ConvergenceWarning):
            est.fit(X, y)
    assert a.network_.parameters.tobytes() == b.network_.parameters.tobytes()


@pytest.mark.parametrize("param,value,error,match", [
    ("hidden_layer_sizes", (8, 0), ValueError, "hidden_layer_sizes must be a sequence of ints >= 1"),
    ("hidden_layer_sizes", "wide", ValueError, "hidden_layer_sizes must be"),
    ("hidden_layer_sizes", 3.5, TypeError, "hidden_layer_sizes must be an int or a sequence"),
    ("activation", "softmax", ValueError, "activation must be one of 'relu'"),
    ("batch_size", 0, ValueError, "batch_size must be an int >= 1, 'auto' or None"),
    ("max_iter", 0, ValueError, "max_iter must be an int >= 1"),
    ("max_iter", 2.0, TypeError, "max_iter must be an int >= 1"),
    ("momentum", 1.0, ValueError, "momentum must be a number >= 0 and < 1.0"),
    ("alpha", -1e-3, ValueError, "alpha must be a number >= 0"),
    ("tol", "small", TypeError, "tol must be a number >= 0"),
    ("learning_rate_init", 0.0, ValueError, "learning_rate_init must be a number > 0"),
    ("validation_fraction", 1.0, ValueError, r"validation_fraction must be a number in \(0, 1\)"),
    ("n_iter_no_change", 0, ValueError, "n_iter_no_change must be an int >= 1"),
    ("shuffle", "yes", TypeError, "shuffle must be True or False"),
    ("dtype", "float16", TypeError, "dtype must be 'float32' or 'float64'"),
    ("dtype", None, TypeError, "dtype must be 'float32' or 'float64'"),
    ("verbose", 3, ValueError, "verbose must be 0, 1, 2, True or False"),
])
def test_bad_parameters_are_named(param, value, error, match):
    X, y = _scaled(load_iris)
    for est in (ANNClassifier(), ANNRegressor()):
        est.set_params(**{param: value})          # never raises: parameters are checked by fit
        with pytest.raises(error, match=f"{type(est).__name__}: {match}"):
            est.fit(X, y)
        assert not hasattr(est, "n_features_in_")


def test_mlp_aliases_and_no_hidden_layer():
    X, y = _scaled(load_iris)
    clf = ANNClassifier(activation="logistic", random_state=0, learning_rate_init=0.01, tol=1e-3).fit(X, y)
    assert clf.network_.layers[0].activation == "sigmoid" and clf.score(X, y) > 0.9
    logreg = ANNClassifier(hidden_layer_sizes=(), random_state=0, learning_rate_init=0.01, tol=1e-3).fit(X, y)
    assert len(logreg.coefs_) == 1 and logreg.score(X, y) > 0.9


def test_early_stopping_needs_enough_rows():
    X, y = _scaled(load_iris)
    with pytest.raises(ValueError, match="leaves 1 validation rows"):
        ANNRegressor(early_stopping=True).fit(X[:10], y[:10])
    with pytest.raises(ValueError, match="cannot hold out a stratified validation set"):
        ANNClassifier(early_stopping=True).fit(X[::10], y[::10])


def test_unfitted_estimators_raise_not_fitted():
    X, _ = _scaled(load_iris)
    for est in (ANNClassifier(), ANNRegressor()):
        with pytest.raises(NotFittedError):
            est.predict(X)
        with pytest.raises(NotFittedError):
            est.coefs_      # noqa: B018


# ---- the optional dependency ----------------------------------------------------------------------------

# (run outside the checkout, so that the installed annfast is imported, not the source folder)

def test_import_annfast_does_not_import_sklearn(tmp_path):
    code = "import sys, annfast; sys.exit(any(m == 'sklearn' or m.startswith('sklearn.') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], check=False, cwd=tmp_path).returncode == 0


def test_missing_sklearn_gives_install_hint(tmp_path):
    code = "import sys; sys.modules['sklearn'] = None; import annfast.sklearn"     # as if not installed
    run = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1
    assert 'ImportError: annfast.sklearn needs scikit-learn >= 1.6, an optional extra of annfast: pip install ' \
           '"annfast[sklearn]"' in run.stderr


@pytest.mark.parametrize("failure", ["nan_input", "divergence", "interrupt"])
def test_failed_partial_fit_is_never_visible_to_predict_in_another_thread(failure, monkeypatch):
    """A reader hammering predict while a writer's partial_fit fails again and again sees exactly the
    predictions from before the failures, every time (issue 18, item 2: the rollback re-ran
    Network.__init__ on the live network, so readers saw zeroed or half-trained weights)."""
    import threading

    import annfast.sklearn as ann_sklearn

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    reg = ANNRegressor(hidden_layer_sizes=(8,), random_state=0, max_iter=2, momentum=0.5, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        reg.fit(X, y)
    probe = X[:50]
    expected = reg.predict(probe)
    bad = X.copy()
    bad[150, 2] = np.nan
    if failure == "divergence":
        reg.set_params(learning_rate_init=1e12)
        args, error = (X * 1e6, y * 1e6), af.DivergenceError
    elif failure == "interrupt":
        def interrupt(self, epoch, logs):
            raise KeyboardInterrupt
        monkeypatch.setattr(ann_sklearn._Monitor, "on_epoch_end", interrupt)
        args, error = (X, y), KeyboardInterrupt
    else:
        args, error = (bad, y), ValueError
    stop = threading.Event()
    seen = []

    def reader():
        while not stop.is_set():
            seen.append(reg.predict(probe))

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(30 if QUICK else 200):
            with pytest.raises(error):
                reg.partial_fit(*args)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert len(seen) > 0
    for got in seen:
        assert got.tobytes() == expected.tobytes()


def test_y_holding_inf_and_minus_inf_is_refused_without_a_warning():
    """Found by tests/test_adversarial_api.py: scikit-learn's finiteness check summed inf and -inf and warned
    (an error under -W error) before reporting."""
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"Input y contains infinity .*\(first at row 0, column 0\)"):
        ANNRegressor().fit(X, np.array([[np.inf, -np.inf], [0.0, 0.0]]))


# ---- learning-rate schedules, as scikit-learn's MLP (solver="sgd") ----------------------------------

@pytest.mark.parametrize("power_t", [0.5, 0.25])
def test_invscaling_rates_are_scikit_learns(power_t):
    from sklearn.neural_network import MLPRegressor

    X, y = _schedule_data()
    est = ANNRegressor(hidden_layer_sizes=(4,), learning_rate="invscaling", learning_rate_init=0.01,
                       power_t=power_t, max_iter=5, tol=0.0, n_iter_no_change=100, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        ref = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling", learning_rate_init=0.01,
                           power_t=power_t, max_iter=5, momentum=0.0, tol=0.0, n_iter_no_change=100,
                           random_state=0).fit(X, y)
    n = X.shape[0]
    expected = [0.01] + [0.01 / (e * n + 1) ** power_t for e in range(1, 5)]
    assert est.network_.history["lr"] == expected
    assert est._next_learning_rate[1] == ref._optimizer.learning_rate   # the rate after 5 epochs, bitwise
    est.partial_fit(X, y)                                                # continues: t_ = 5 n rows before it
    assert est.network_.history["lr"] == [0.01 / (5 * n + 1) ** power_t]


def test_adaptive_divides_by_5_on_each_plateau_and_stops_at_1e_6():
    X, y = _schedule_data()
    # tol so large that no epoch after the first (which beats the initial best, inf) improves: every
    # n_iter_no_change + 1 = 2 epochs the rate is divided by 5
    est = ANNRegressor(hidden_layer_sizes=(4,), learning_rate="adaptive", learning_rate_init=0.01, tol=100.0,
                       n_iter_no_change=1, max_iter=200, random_state=0).fit(X, y)
    rates = est.network_.history["lr"]
    expected, lr = [0.01], 0.01
    while True:      # scikit-learn's rule: at each trigger, stop if lr <= 1e-6, else lr /= 5
        expected += [lr, lr]
        if lr <= 1e-6:
            break
        lr /= 5.0
    assert rates == expected
    assert est.n_iter_ == len(expected)
    from sklearn.neural_network import MLPRegressor

    ref = MLPRegressor(hidden_layer_sizes=(4,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.01,
                       momentum=0.0, tol=100.0, n_iter_no_change=1, max_iter=200, random_state=0).fit(X, y)
    assert ref.n_iter_ == est.n_iter_ and ref._optimizer.learning_rate == est._next_learning_rate[1] == lr


def test_constant_rate_is_unchanged_and_bad_schedule_names_are_refused():
    X, y = _schedule_data()
    est = ANNRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.network_.history["lr"] == [0.001] * 3
    with pytest.raises(ValueError, match="learning_rate must be 'constant', 'invscaling' or 'adaptive'"):
        ANNRegressor(learning_rate="optimal").fit(X, y)
    with pytest.raises(ValueError, match="power_t must be a number >= 0"):
        ANNRegressor(power_t=-1.0).fit(X, y)


def _schedule_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    return X, X[:, 0] - X[:, 1]
