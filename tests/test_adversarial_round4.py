"""Adversarial regression tests, round 4: problems found by probing the README's "Guarantees" through the public
API and the CLI.

Each test is one problem: the input, and what must hold (bad input gets a clear error naming what and where,
raised before any weight changes; nothing silently lost or corrupted).
"""
import warnings
from decimal import Decimal

import numpy as np
import pytest

import annfast as af


def _net(dtype="float32", n_in=4, hidden=5, n_out=3, out="softmax", seed=1):
    return af.Network(n_in, [af.Dense(hidden, "tanh"), af.Dense(n_out, out)], dtype=dtype, seed=seed)


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _masked(a, *where):
    """``a`` as a masked array with the entries at ``where`` masked (and a huge value under each mask)."""
    m = np.ma.masked_array(np.array(a, dtype=np.float64), mask=np.zeros(np.shape(a), bool))
    for idx in where:
        m.data[idx] = 1e6
        m.mask[idx] = True
    return m


# ---- masked arrays --------------------------------------------------------------------------------------------

X0, Y0 = _data(6)
W0 = np.ones(6)

#: every input path of a Network: (name of the argument in the error, call)
NETWORK_CALLS = {
    "fit X": ("X", lambda n: n.fit(_masked(X0, (1, 2)), Y0, epochs=1, verbose=0)),
    "fit y": ("y", lambda n: n.fit(X0, np.ma.masked_array(Y0, mask=[0, 1, 0, 0, 0, 0]), epochs=1, verbose=0)),
    "fit sample_weight": ("sample_weight", lambda n: n.fit(X0, Y0, sample_weight=_masked(W0, 3), verbose=0)),
    "fit validation X": ("X_val", lambda n: n.fit(X0, Y0, validation_data=(_masked(X0, (0, 0)), Y0), verbose=0)),
    "partial_fit X": ("X", lambda n: n.partial_fit(_masked(X0, (5, 3)), Y0)),
    "fit chunk X": ("X", lambda n: n.fit([(_masked(X0, (1, 1)), Y0)], None, verbose=0)),
    "fit list of masked rows": ("X[2]", lambda n: n.fit([list(X0[0]), X0[1], _masked(X0[2], 0)] + list(X0[3:]),
                                                       Y0, verbose=0)),
    "predict": ("X", lambda n: n.predict(_masked(X0, (0, 1)))),
    "predict one row 2-D": ("X", lambda n: n.predict(_masked(X0[:1], (0, 1)))),
    "predict list": ("X[1]", lambda n: n.predict([X0[0], _masked(X0[1], 2)])),
    "predict_one": ("x", lambda n: n.predict_one(_masked(X0[0], 1))),
    "predict_one float32": ("x", lambda n: n.predict_one(np.ma.masked_array(X0[0].astype(np.float32),
                                                                            mask=[0, 0, 1, 0]))),
    "predict_one list": ("x[0]", lambda n: n.predict_one([np.ma.masked, 1.0, 2.0, 3.0])),
    "train_step x": ("x", lambda n: n.train_step(_masked(X0[0], 0), 1)),
    "train_step y": ("y", lambda n: n.train_step(X0[0], np.ma.masked_array([0.0, 1.0, 0.0], mask=[1, 0, 0]))),
    "train_step sample_weight": ("sample_weight", lambda n: n.train_step(X0[0], 1, sample_weight=np.ma.masked)),
    "evaluate X": ("X", lambda n: n.evaluate(_masked(X0, (2, 2)), Y0)),
    "evaluate sample_weight": ("sample_weight", lambda n: n.evaluate(X0, Y0, sample_weight=_masked(W0, 0))),
    "gradient X": ("X", lambda n: n.gradient(_masked(X0, (4, 0)), Y0)),
    "gradient y": ("y", lambda n: n.gradient(X0, np.ma.masked_array(Y0, mask=[1, 0, 0, 0, 0, 0]))),
    "set_parameters": ("flat parameters", lambda n: n.set_parameters(_masked(n.parameters, 0))),
    "set_weights": ("weights[0]", lambda n: n.set_weights([(_masked(W, (0, 0)), b) for W, b in n.get_weights()])),
}


@pytest.mark.parametrize("call", NETWORK_CALLS, ids=list(NETWORK_CALLS))
def test_a_masked_value_is_refused_on_every_network_input_path(call):
    """np.asarray dropped the mask of a numpy.ma.MaskedArray on every input path: the huge value under the mask was
    trained on and predicted from silently. Now a ValueError names the argument and the first masked value, and
    the weights are bitwise unchanged."""
    name, fn = NETWORK_CALLS[call]
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="mask") as info:
        fn(net)
    assert str(info.value).startswith(name) or f"{name} " in str(info.value), str(info.value)
    assert np.array_equal(net.parameters, before)


def test_a_masked_value_is_located():
    net = _net()
    with pytest.raises(ValueError, match=r"^X is a masked array with 2 masked value\(s\), the first at row 1, "
                                         r"column 2"):
        net.fit(_masked(X0, (1, 2), (4, 0)), Y0, verbose=0)


def test_memory_mapped_x_with_masked_targets_or_weights_is_refused(tmp_path):
    """A memory-mapped X took y and sample_weight through np.asarray before any check: their masks were dropped."""
    np.save(tmp_path / "x.npy", X0)
    Xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="^y is a masked array"):
        net.fit(Xm, np.ma.masked_array(Y0, mask=[0, 0, 1, 0, 0, 0]), verbose=0)
    with pytest.raises(ValueError, match="^sample_weight is a masked array"):
        net.fit(Xm, Y0, sample_weight=_masked(W0, 5), verbose=0)
    assert np.array_equal(net.parameters, before)


def test_a_masked_array_without_masked_values_is_its_data():
    """The documented choice: nothing masked, nothing lost, so the array is taken as its data."""
    a, b = _net(), _net()
    a.fit(np.ma.masked_array(X0), np.ma.masked_array(Y0), sample_weight=np.ma.masked_array(W0), verbose=0,
          shuffle=False)
    b.fit(X0, Y0, sample_weight=W0, verbose=0, shuffle=False)
    assert np.array_equal(a.parameters, b.parameters)
    assert np.array_equal(a.predict(np.ma.masked_array(X0)), a.predict(X0))
    assert np.array_equal(a.predict_one(np.ma.masked_array(X0[0])), a.predict_one(X0[0]))


@pytest.mark.parametrize("classifier", [True, False])
def test_a_masked_value_is_refused_by_the_estimators(classifier):
    pytest.importorskip("sklearn")
    from sklearn.exceptions import ConvergenceWarning

    from annfast.sklearn import ANNClassifier, ANNRegressor

    X, labels = _data(30)
    y = labels if classifier else X[:, 0]
    est = (ANNClassifier if classifier else ANNRegressor)(hidden_layer_sizes=(5,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    before = est.network_.parameters.copy()
    ym = np.ma.masked_array(y, mask=np.arange(30) == 3)
    calls = [("X", lambda: est.fit(_masked(X, (2, 1)), y)),
             ("y", lambda: est.partial_fit(X, ym)),
             ("sample_weight", lambda: est.fit(X, y, sample_weight=_masked(np.ones(30), 4))),
             ("X", lambda: est.predict(_masked(X, (0, 0)))),
             ("y", lambda: est.score(X, ym)),
             ("sample_weight", lambda: est.score(X, y, sample_weight=_masked(np.ones(30), 0)))]
    if classifier:
        calls.append(("X", lambda: est.predict_proba(_masked(X, (0, 3)))))
    for name, call in calls:
        with pytest.raises(ValueError, match=f"^{name} is a masked array"):
            call()
    assert np.array_equal(est.network_.parameters, before)


# ---- settings and values beyond float64 -------------------------------------------------------------------------

@pytest.mark.parametrize("setting", ["learning_rate", "momentum", "weight_decay"])
@pytest.mark.parametrize("entry", ["train_step", "fit"])
def test_an_integer_setting_beyond_float64_is_a_value_error(setting, entry):
    """learning_rate=10**400 (a Python int, a numbers.Real) raised OverflowError from float(), not the documented
    ValueError."""
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match=f"^{setting} must be finite, got 1000.*too large for a float"):
        if entry == "fit":
            net.fit(X0, Y0, verbose=0, **{setting: 10**400})
        else:
            net.train_step(X0[0], 1, **{setting: 10**400})
    assert np.array_equal(net.parameters, before)


def test_a_class_weight_beyond_float64_is_a_value_error():
    """class_weight={0: 10**400}: np.isfinite raised NumPy's TypeError about ufunc input types."""
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match=r"^class_weight\[0\] = 1000.* must be a finite number >= 0"):
        net.fit(X0, Y0, class_weight={0: 10**400}, verbose=0)
    assert np.array_equal(net.parameters, before)


# ---- lists NumPy cannot read as numbers --------------------------------------------------------------------------

def test_a_ragged_list_error_names_the_argument():
    """Rows of different lengths gave NumPy's bare "setting an array element with a sequence", naming nothing."""
    net = _net()
    before = net.parameters.copy()
    ragged = [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]] + [[0.0] * 4] * 4
    with pytest.raises(ValueError, match="^X cannot be read as an array of numbers"):
        net.fit(ragged, Y0, verbose=0)
    with pytest.raises(ValueError, match="^X_val cannot be read"):
        net.fit(X0, Y0, validation_data=(ragged, Y0), verbose=0)
    with pytest.raises(ValueError, match="^y cannot be read"):
        net.fit(X0, [[0, 1, 0], [1, 0]] + [[1, 0, 0]] * 4, verbose=0)
    assert np.array_equal(net.parameters, before)


@pytest.mark.parametrize("value, words", [(None, "holds None, of type NoneType at row 1, column 3"),
                                          (Decimal("1.5"), "holds Decimal('1.5'), of type Decimal at row 1, column 3"),
                                          (10**30, "holds the integer 1000000000000000000000000000000 at row 1, "
                                                   "column 3, beyond NumPy's 64-bit integers")])
def test_an_object_array_error_says_which_value_and_where(value, words):
    """A list holding None, a Decimal among numbers or an integer beyond int64 became an object array, refused
    with "got an array of dtype object": neither the value nor where it is."""
    rows = [[0.0] * 4 for _ in range(6)]
    rows[1][3] = value
    net = _net()
    with pytest.raises(TypeError, match="^X must hold real numbers, got an array of dtype object") as info:
        net.fit(rows, Y0, verbose=0)
    assert words in str(info.value)
    with pytest.raises(TypeError, match="x holds"):
        net.predict_one(rows[1])


# ---- assigning a network's structure ---------------------------------------------------------------------------

@pytest.mark.parametrize("attr, value", [("n_inputs", 7), ("n_outputs", 1), ("n_params", 3), ("layers", ()),
                                         ("dtype", "float16"), ("seed", "x")])
def test_the_structure_of_a_network_cannot_be_assigned(attr, value, tmp_path):
    """net.n_inputs = 7 (or layers, dtype, n_params, n_outputs, seed) was taken silently and left a network whose
    attributes described another one: fit then raised IndexError or AttributeError, save wrote (or refused) a
    header at odds with the weights. Now the assignment is refused and the network keeps working."""
    X, y = _data()
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(AttributeError, match=f"^Network.{attr} is fixed when the network is built"):
        setattr(net, attr, value)
    assert np.array_equal(net.parameters, before)
    net.fit(X, y, verbose=0)
    net.save(tmp_path / "m.annf")
    assert np.array_equal(af.load(tmp_path / "m.annf").predict(X), net.predict(X))


def test_an_assigned_loss_is_checked_and_used():
    """net.loss = "foo" was taken: fit and evaluate then raised KeyError('foo'), save a ModelFileError. Now an
    unknown loss, or one the output cannot train on, is refused when assigned; a valid one is what evaluate uses."""
    X, y = _data()
    net = _net()
    with pytest.raises(ValueError, match="unknown loss 'foo'"):
        net.loss = "foo"
    linear = af.Network(4, [af.Dense(3)], seed=0)
    with pytest.raises(ValueError, match="cross_entropy needs a softmax or sigmoid output"):
        linear.loss = "cross_entropy"
    assert net.loss == "cross_entropy" and linear.loss == "half_squared_error"
    net.loss = "half_squared_error"
    assert net.evaluate(X, y) == net.evaluate(X, y, loss="half_squared_error")
    net.fit(X, y, verbose=0)


# ---- where a bad value is: rows of the whole data ---------------------------------------------------------------

def test_a_bad_sample_weight_of_a_memory_mapped_fit_names_its_row_in_the_whole_data(tmp_path):
    """The weights are checked block by block; a NaN weight of row 700 was reported at "index 188", its place in
    the block, while X and y name rows of the whole data."""
    np.save(tmp_path / "x.npy", np.zeros((1000, 4)))
    Xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    w = np.ones(1000)
    w[700] = np.nan
    net = af.Network(4, [af.Dense(1)], seed=0)
    before = net.parameters.copy()
    with pytest.raises(ValueError, match=r"^sample_weight holds a non-finite value \(nan\) at index 700$"):
        net.fit(Xm, np.zeros(1000), sample_weight=w, shuffle_buffer=256, verbose=0)
    assert np.array_equal(net.parameters, before)


def test_a_missing_class_label_is_named_not_the_dtype():
    """Class labels with a missing one (NaN, or pandas' NA in an Int64 column) are floats: the error said "y is 1-D
    but the network has 3 outputs; pass ... integer class labels", hiding the missing label."""
    X, y = _data(6)
    labels = y.astype(float)
    labels[4] = np.nan
    net = _net()
    with pytest.raises(ValueError, match=r"^y holds a non-finite value \(nan\) at index 4"):
        net.fit(X, labels, verbose=0)
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match=r"^y holds a non-finite value \(nan\) at index 0"):
        net.fit(X, pd.Series(pd.array([None] + list(y[1:]), dtype="Int64")), verbose=0)


# ---- arguments of the wrong kind ----------------------------------------------------------------------------------

@pytest.mark.parametrize("weights", [None, "ab", {0: 1}, 3])
def test_set_weights_of_the_wrong_kind_says_what_it_takes(weights):
    """set_weights(None) raised "'NoneType' object is not iterable"; a dict was iterated over its keys."""
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(TypeError, match="^set_weights takes a list of \\(W, b\\) pairs"):
        net.set_weights(weights)
    assert np.array_equal(net.parameters, before)


@pytest.mark.parametrize("param", ["learning_rate_init", "alpha", "momentum", "tol", "power_t"])
def test_an_estimator_setting_beyond_float64_is_named(param):
    """ANNClassifier(alpha=10**400).fit: np.isfinite raised NumPy's "ufunc 'isfinite' not supported for the input
    types", naming neither the parameter nor the value."""
    pytest.importorskip("sklearn")
    from annfast.sklearn import ANNClassifier

    X, y = _data()
    with pytest.raises(ValueError, match=f"^ANNClassifier: {param} must be a number"):
        ANNClassifier(**{param: 10**400}).fit(X, y)


# ---- the command line ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value", [("--learning-rate", "1e999"), ("--learning-rate", "inf"),
                                           ("--momentum", "nan"), ("--weight-decay", "inf"),
                                           ("--negative-slope", "1e999")])
def test_cli_non_finite_number_says_finite(option, value, tmp_path, capsys, monkeypatch):
    """--learning-rate 1e999 said "must be > 0.0, got 1e999": true of the number typed, not the reason."""
    from annfast.cli import main

    (tmp_path / "d.csv").write_text("a,b,c\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "d.csv", "--out", "m.annf", "--activation", "leaky_relu", option, value]) == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and f"must be a finite number, got {value}" in err, err
    assert not (tmp_path / "m.annf").exists()



# ---- callbacks checked before the first update ---------------------------------------------------------------------

@pytest.mark.parametrize("path, exc, match", [
    ("{epoch:03d}-{oops}.annf", ValueError, "cannot be filled in .*KeyError: 'oops'"),
    ("{epoch:q}.annf", ValueError, "cannot be filled in .*Unknown format code 'q'"),
    ("{0}.annf", ValueError, "cannot be filled in .*IndexError"),
    ("missing-dir/m.annf", FileNotFoundError, "the directory 'missing-dir' does not exist"),
    (".", IsADirectoryError, "is a directory"),
])
def test_a_model_checkpoint_that_cannot_save_fails_before_training(path, exc, match, tmp_path, monkeypatch):
    """ModelCheckpoint("{epoch}-{oops}.annf") (or an unknown format code, a missing directory, a directory) raised
    KeyError, ValueError or OSError at the end of the first epoch, after it had trained: fit promises to check its
    callbacks before the first update."""
    from annfast.callbacks import ModelCheckpoint

    monkeypatch.chdir(tmp_path)
    X, y = _data()
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(exc, match=match):
        net.fit(X, y, epochs=2, callbacks=[ModelCheckpoint(path)], verbose=0)
    assert np.array_equal(net.parameters, before)
    assert net.history is None or len(net.history.epoch) == 0


def test_a_model_checkpoint_with_fields_still_saves(tmp_path):
    from annfast.callbacks import ModelCheckpoint

    X, y = _data()
    net = _net()
    cb = ModelCheckpoint(tmp_path / "m-{epoch:02d}-{loss:.3f}-{lr}.annf", monitor="loss")
    net.fit(X, y, epochs=2, callbacks=[cb], verbose=0)
    assert len(cb.saved) == 2 and all(af.load(p).n_params == net.n_params for p in cb.saved)


def test_a_memory_mapped_structured_array_is_refused_for_its_dtype(tmp_path):
    """A memory-mapped record array (three float32 fields per row) was refused as "X must be 2-D ... got shape
    (10,)", while the same array in memory is refused for its dtype."""
    np.save(tmp_path / "s.npy", np.zeros(10, dtype="f4,f4,f4"))
    Xm = np.load(tmp_path / "s.npy", mmap_mode="r")
    net = af.Network(3, [af.Dense(2, "softmax")], seed=0)
    for X in (Xm, np.array(Xm)):
        with pytest.raises(TypeError, match="^X must hold real numbers, got an array of dtype"):
            net.fit(X, np.arange(10) % 2, verbose=0)


@pytest.mark.parametrize("kwargs", [dict(initial_epoch=10**30, epochs=10**30 + 1),
                                    dict(initial_epoch=2**64, epochs=2**64)])   # (not epochs=2**63 alone: a
# regression would train for ever instead of failing)
def test_an_epoch_count_beyond_int64_is_refused_before_training(kwargs):
    """fit(initial_epoch=10**30, epochs=10**30 + 1) passed the checks and raised OverflowError ("Python int too
    large to convert to C long") from the C loop, with the fit already set up; now a ValueError up front."""
    X, y = _data()
    net = _net()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="epochs must be <= "):
        net.fit(X, y, verbose=0, **kwargs)
    assert np.array_equal(net.parameters, before)
    assert net.history is None


# ---- metric functions ---------------------------------------------------------------------------------------------

def test_a_metric_cannot_write_into_the_targets_fit_trains_on():
    """A metric function gets fit's own target buffer: one that wrote into it (Y[:] = 0.5) silently changed the
    targets of every following epoch (and evaluate's metric could write into the caller's y). Now the metric gets
    read-only views."""
    X, y = _data()

    def scribble(Y, P):
        Y[:] = 0.5
        return 1.0

    net = _net()
    with pytest.raises(ValueError, match="read-only"):
        net.fit(X, y, metrics=[scribble], epochs=3, shuffle=False, verbose=0)
    Y = np.eye(3, dtype=np.float32)[y]
    with pytest.raises(ValueError, match="read-only"):
        net.evaluate(X, Y, metrics=[scribble])
    assert np.array_equal(Y, np.eye(3, dtype=np.float32)[y])


@pytest.mark.parametrize("returned", [None, "x", 1j, np.ones(3)])
def test_a_metric_that_returns_no_number_is_named(returned):
    """A metric returning None said "float() argument must be a string or a real number, not 'NoneType'",
    without naming the metric."""
    X, y = _data()

    def odd(Y, P):
        return returned

    with pytest.raises(TypeError, match="^metric 'odd' returned .*, not a number"):
        _net().evaluate(X, y, metrics=[odd])
    with pytest.raises(TypeError, match="^metric 'odd' returned"):
        _net().fit(X, y, metrics=[odd], verbose=0)


# ---- a callback that sets the weights of a fit with momentum -------------------------------------------------------

@pytest.mark.parametrize("call", ["set_parameters", "set_weights", "reset_optimizer_state", "restore"])
def test_a_callback_that_sets_the_weights_of_a_momentum_fit_lets_it_go_on(call):
    """set_parameters (or set_weights, reset_optimizer_state, restore of a snapshot without velocity) from
    on_epoch_end of a fit with momentum dropped the velocity buffer the fit trains with: the next epoch raised
    ValueError "velocity has 0 values but the network needs ...". Now the velocity is zeroed in place, and the
    rest of the fit trains as a fit from those weights would."""
    from annfast.callbacks import Callback

    X, y = _data(40)
    start = _net("float64", seed=7)
    target = start.parameters.copy()
    snap = start.snapshot()

    class SetWeights(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 0:
                net = self.network
                if call == "set_parameters":
                    net.set_parameters(target)
                elif call == "set_weights":
                    net.set_weights(start.get_weights())
                elif call == "restore":
                    net.restore(snap)
                else:
                    net.set_parameters(target)
                    net.reset_optimizer_state()

    a = _net("float64")
    a.fit(X, y, epochs=3, momentum=0.9, shuffle=False, callbacks=[SetWeights()], verbose=0)
    b = _net("float64")
    b.set_parameters(target)
    b.fit(X, y, epochs=2, momentum=0.9, shuffle=False, verbose=0)
    np.testing.assert_allclose(a.parameters, b.parameters, rtol=0, atol=1e-12)


# ---- the Dense objects a network is built from ----------------------------------------------------------------------

def test_changing_a_dense_after_building_does_not_change_the_network(tmp_path):
    """Network kept the caller's Dense objects: d.activation = "relu" after building changed net.layers and what
    save wrote, so the saved model loaded with relu and predicted differently from the network it was saved from
    (silently). Now the network holds its own copies, which refuse assignment."""
    d = af.Dense(5, "tanh")
    net = af.Network(4, [d, af.Dense(1)], seed=0)
    X = np.random.default_rng(1).normal(size=(6, 4)) * 5
    before = net.predict(X)
    d.activation = "relu"
    d.units = 7
    assert net.layers[0] == af.Dense(5, "tanh")
    with pytest.raises(AttributeError, match="layers of a Network are fixed"):
        net.layers[0].activation = "relu"
    net.save(tmp_path / "m.annf")
    assert np.array_equal(af.load(tmp_path / "m.annf").predict(X), before)


@pytest.mark.parametrize("attr, value, exc", [("units", 0, ValueError), ("units", 2.5, TypeError),
                                              ("activation", "foo", ValueError),
                                              ("negative_slope", float("nan"), ValueError)])
def test_a_dense_is_checked_on_every_assignment(attr, value, exc):
    """Dense checked its values in __init__ only: d.units = 2.5 then Network(3, [d]) raised "slice indices must be
    integers", d.activation = "foo" a KeyError, d.units = 0 "inconsistent network description"."""
    d = af.Dense(2, "tanh")
    with pytest.raises(exc, match=attr):
        setattr(d, attr, value)
    assert af.Network(3, [d]).layers[0] == af.Dense(2, "tanh")


def test_a_masked_value_is_refused_by_annfast_dask_fit():
    """annfast.dask.fit converted its data (numpy arrays, and each partition of a dask array) with np.asarray: a
    numpy.ma or da.ma masked array trained on the values under its mask."""
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    import annfast.dask

    X, y = _data(40)
    mask = np.zeros_like(X, bool)
    mask[25, 1] = True
    cases = [(np.ma.masked_array(X, mask=mask), y, "^X is a masked array"),
             (X, np.ma.masked_array(y, mask=np.arange(40) == 30), "^y is a masked array"),
             (da.ma.masked_array(da.from_array(X, chunks=20), mask=da.from_array(mask, chunks=20)),
              da.from_array(y, chunks=20), "the partition of X from row 20 is a masked array .* at row 5, column 1")]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as c, \
            distributed.Client(c) as client:
        for Xc, yc, match in cases:
            net = _net()
            before = net.parameters.copy()
            with pytest.raises(ValueError, match=match):
                annfast.dask.fit(net, Xc, yc, client=client, epochs=1)
            assert np.array_equal(net.parameters, before)
