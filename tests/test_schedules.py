"""Learning-rate schedules, continued histories, metrics and the Keras-style callbacks of Network.fit."""
import csv
import math
import subprocess
import sys

import numpy as np
import pytest

import annfast as af
from annfast.schedules import Adaptive, Constant, InvScaling


def _data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.tanh(X[:, 0] - 0.5 * X[:, 1] * X[:, 2])


def _net(seed=3, dtype="float64", out="linear", n_out=1):
    return af.Network(3, [af.Dense(6, "tanh"), af.Dense(n_out, out)], dtype=dtype, seed=seed)


# ---- NumPy references of scikit-learn's per-epoch rules ---------------------------------------------

def ref_invscaling(lr0, power_t, n_rows, epochs):
    """scikit-learn's SGDOptimizer: epoch e uses lr0 / (t + 1) ** power_t with t = e * n_rows rows seen."""
    t = np.arange(epochs, dtype=np.float64) * n_rows
    return lr0 / (t + 1) ** power_t


def ref_adaptive(lr0, losses, tol, patience, factor):
    """The rate of each epoch, given the training losses: / factor after `patience` epochs not `tol` below the best."""
    rates, lr, best, bad = [], lr0, math.inf, 0
    for loss in losses:
        rates.append(lr)
        bad = bad + 1 if loss > best - tol else 0
        best = min(best, loss)
        if bad >= patience:
            lr, bad = lr / factor, 0
    return np.array(rates)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make", [
    pytest.param(lambda: InvScaling(0.05, power_t=0.5), id="invscaling"),
    pytest.param(lambda: InvScaling(0.05, power_t=0.25), id="invscaling-0.25"),
    pytest.param(lambda: Adaptive(0.05, tol=1e-3, patience=2), id="adaptive"),
    pytest.param(lambda: (lambda epoch: 0.05 * 0.7 ** epoch), id="callable"),
    pytest.param(lambda: Constant(0.05), id="constant"),
])
def test_schedule_equals_epoch_by_epoch_fits_at_the_recorded_rates(make, dtype):
    X, y = _data()
    epochs = 7
    net = _net(dtype=dtype)
    hist = net.fit(X, y, epochs=epochs, learning_rate=make(), momentum=0.5)
    rates = hist["lr"]
    assert len(rates) == epochs
    twin = _net(dtype=dtype)
    for rate in rates:
        twin.fit(X, y, epochs=1, learning_rate=rate, momentum=0.5)
    assert twin.parameters.tobytes() == net.parameters.tobytes()


def test_invscaling_rates_are_scikit_learns():
    X, y = _data(n=50)
    hist = _net().fit(X, y, epochs=6, learning_rate=InvScaling(0.1, power_t=0.5))
    np.testing.assert_array_equal(hist["lr"], ref_invscaling(0.1, 0.5, 50, 6))
    # with validation_split, t counts the training rows only
    hist = _net().fit(X, y, epochs=4, learning_rate=InvScaling(0.1, power_t=0.3), validation_split=0.2)
    np.testing.assert_array_equal(hist["lr"], ref_invscaling(0.1, 0.3, 40, 4))


def test_adaptive_rates_follow_the_reference_and_do_drop():
    X, y = _data()
    # tol=0.3 is more than the loss falls per epoch after the first ones: the rate drops
    hist = _net().fit(X, y, epochs=9, learning_rate=Adaptive(1e-3, tol=0.3, patience=2))
    expected = ref_adaptive(1e-3, hist["loss"], 0.3, 2, 5.0)
    np.testing.assert_allclose(hist["lr"], expected, rtol=0, atol=0)
    assert hist["lr"][-1] < hist["lr"][0]


def test_adaptive_monitor_must_be_reported():
    X, y = _data()
    with pytest.raises(ValueError, match="monitors 'val_loss'"):
        _net().fit(X, y, learning_rate=Adaptive(0.01, monitor="val_loss"))


def test_bad_rate_from_a_schedule_is_refused_before_the_epoch_trains():
    X, y = _data()
    net = _net()
    with pytest.raises(ValueError, match="epoch 2: the learning rate"):
        net.fit(X, y, epochs=4, learning_rate=lambda e: 0.01 if e < 2 else -1.0)
    assert len(net.history) == 2


def test_constant_float_is_unchanged_and_recorded():
    X, y = _data()
    a, b = _net(), _net()
    hist = a.fit(X, y, epochs=3, learning_rate=0.02)
    b.fit(X, y, epochs=3, learning_rate=Constant(0.02))
    assert hist["lr"] == [0.02] * 3 and hist.params["learning_rate"] == 0.02
    assert a.parameters.tobytes() == b.parameters.tobytes()


def test_schedule_settings_are_saved_with_the_model(tmp_path):
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=2, learning_rate=InvScaling(0.05))
    net.save(tmp_path / "m.annf")
    assert af.Network.load(tmp_path / "m.annf").parameters.tobytes() == net.parameters.tobytes()


# ---- continued histories (initial_epoch) ----------------------------------------------------------

def test_initial_epoch_continues_the_history_and_the_training():
    X, y = _data()
    looped = _net()
    for e in range(5):
        looped.fit(X, y, epochs=e + 1, initial_epoch=e, learning_rate=InvScaling(0.05))
    whole = _net()
    whole.fit(X, y, epochs=5, learning_rate=InvScaling(0.05))
    assert looped.history.epoch == [0, 1, 2, 3, 4]
    assert looped.history["lr"] == whole.history["lr"]
    assert looped.history["loss"] == whole.history["loss"]
    assert looped.parameters.tobytes() == whole.parameters.tobytes()


def test_initial_epoch_zero_starts_a_new_history_and_epochs_below_it_is_refused():
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=2)
    assert len(net.fit(X, y, epochs=1)) == 1
    with pytest.raises(ValueError, match="less than initial_epoch"):
        net.fit(X, y, epochs=1, initial_epoch=2)


def test_history_is_subscriptable():
    X, y = _data()
    hist = _net().fit(X, y, epochs=2)
    assert hist["loss"] is hist.history["loss"] and "loss" in hist and "val_loss" not in hist
    assert set(hist.keys()) == {"loss", "lr"}
    with pytest.raises(KeyError, match="no metric 'val_loss'"):
        hist["val_loss"]


# ---- metrics -------------------------------------------------------------------------------------

def test_evaluate_metrics_match_numpy():
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=3)
    out = net.evaluate(X, y, metrics=["rmse", "mae", "r2"])
    p = net.predict(X)[:, 0]
    assert out["rmse"] == pytest.approx(np.sqrt(np.mean((p - y) ** 2)), rel=1e-12)
    assert out["mae"] == pytest.approx(np.mean(np.abs(p - y)), rel=1e-12)
    assert out["r2"] == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2), rel=1e-12)
    sklearn = pytest.importorskip("sklearn.metrics")
    assert out["r2"] == pytest.approx(sklearn.r2_score(y, p), rel=1e-12)


def test_classifier_accuracy_metric_and_a_user_metric_are_monitorable():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(90, 3))
    labels = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0.5)
    net = _net(out="softmax", n_out=3)

    def top_prob(Y, P):
        return float(P.max(axis=1).mean())

    stop = af.EarlyStopping(monitor="val_top_prob", mode="max", patience=0)
    hist = net.fit(X, labels, epochs=5, learning_rate=0.05, metrics=["accuracy", top_prob], validation_split=0.2,
                   callbacks=[stop])
    assert {"accuracy", "top_prob", "val_accuracy", "val_top_prob"} <= set(hist.keys())
    out = net.evaluate(X, labels, metrics=["accuracy"])
    assert out["accuracy"] == pytest.approx(np.mean(net.predict(X).argmax(1) == labels))
    with pytest.raises(ValueError, match="needs a classifier output"):
        _net().evaluate(X, labels.astype(float), metrics=["accuracy"])
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        net.evaluate(X, labels, metrics=["f1"])


def test_metrics_of_streamed_data_are_refused(tmp_path):
    X, y = _data()
    path = tmp_path / "X.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match="need it in memory"):
        _net().fit(np.load(path, mmap_mode="r"), y, metrics=["rmse"])


# ---- callbacks -----------------------------------------------------------------------------------

def test_reduce_lr_on_plateau_reduces_the_next_epochs_rate():
    X, y = _data()
    cb = af.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=1, min_delta=10.0, min_lr=0.004)
    hist = _net().fit(X, y, epochs=5, learning_rate=0.02, callbacks=[cb])
    # min_delta=10: no epoch improves after the first, so every epoch from the second halves the rate
    assert hist["lr"] == [0.02, 0.02, 0.01, 0.005, 0.004]


def test_reduce_lr_on_plateau_with_a_schedule_is_refused():
    X, y = _data()
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        _net().fit(X, y, learning_rate=InvScaling(0.01), callbacks=[af.ReduceLROnPlateau(monitor="loss")])


def test_learning_rate_scheduler_has_keras_semantics():
    X, y = _data()
    seen = []

    def schedule(epoch, lr):
        seen.append((epoch, lr))
        return lr * 0.5 if epoch >= 1 else lr

    hist = _net().fit(X, y, epochs=3, learning_rate=0.04, callbacks=[af.LearningRateScheduler(schedule)])
    assert seen == [(0, 0.04), (1, 0.04), (2, 0.02)]
    assert hist["lr"] == [0.04, 0.02, 0.01]


def test_model_checkpoint_saves_loadable_files(tmp_path):
    X, y = _data()
    net = _net()
    every = af.ModelCheckpoint(tmp_path / "m-{epoch:02d}.annf", monitor="loss")
    best = af.ModelCheckpoint(tmp_path / "best.annf", monitor="val_loss", save_best_only=True)
    hist = net.fit(X, y, epochs=4, learning_rate=0.02, validation_split=0.25, callbacks=[every, best])
    assert [p.rsplit("/", 1)[-1].rsplit("\\", 1)[-1] for p in every.saved] == [f"m-{e:02d}.annf" for e in (1, 2, 3, 4)]
    assert af.load(every.saved[-1]).parameters.tobytes() == net.parameters.tobytes()
    assert best.best == min(hist["val_loss"])
    reloaded = af.load(tmp_path / "best.annf")
    assert reloaded.evaluate(X[45:], y[45:]) == pytest.approx(best.best, rel=1e-12)
    with pytest.raises(ValueError, match="ModelCheckpoint monitors 'val_loss'"):
        net.fit(X, y, callbacks=[af.ModelCheckpoint(tmp_path / "x.annf", save_best_only=True)])


def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    X, y = _data()
    path = tmp_path / "log.csv"
    net = _net()
    hist = net.fit(X, y, epochs=3, metrics=["mae"], callbacks=[af.CSVLogger(path)])
    net.fit(X, y, epochs=4, initial_epoch=3, metrics=["mae"], callbacks=[af.CSVLogger(path, append=True)])
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["epoch", "loss", "mae", "lr"]
    assert [int(r[0]) for r in rows[1:]] == [0, 1, 2, 3]
    assert [float(r[1]) for r in rows[1:4]] == hist["loss"][:3]


def test_csv_logger_keeps_the_finished_epochs_of_an_interrupted_fit(tmp_path):
    X, y = _data()
    path = tmp_path / "log.csv"

    class Interrupt(af.Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _net().fit(X, y, epochs=5, callbacks=[af.CSVLogger(path), Interrupt()])
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[0] for r in rows] == ["epoch", "0", "1"]


def test_restore_best_weights_says_so_at_verbose_2(capsys):
    X, y = _data()
    stop = af.EarlyStopping(monitor="loss", patience=0, min_delta=10.0, restore_best_weights=True)
    _net().fit(X, y, epochs=3, verbose=2, callbacks=[stop])
    err = capsys.readouterr().err
    assert err.count("EarlyStopping: restored the weights of epoch 1") == 1


# ---- summary, load --------------------------------------------------------------------------------

def test_summary_lists_layers_shapes_and_parameter_counts():
    net = af.Network(4, [af.Dense(16, "tanh"), af.Dense(3, "softmax")], seed=0)
    text = net.summary()
    assert "(None, 16)" in text and "(None, 3)" in text and "softmax" in text and "tanh" in text
    assert " 80" in text and " 51" in text
    assert f"Total params: {net.n_params}" in text and "float32" in text and "cross_entropy" in text


def test_network_load_is_annfast_load(tmp_path):
    net = _net()
    net.save(tmp_path / "n.annf")
    a, b = af.Network.load(tmp_path / "n.annf"), af.load(tmp_path / "n.annf")
    assert isinstance(a, af.Network) and a.parameters.tobytes() == b.parameters.tobytes()


# ---- progress bar without a terminal ----------------------------------------------------------------

def test_verbose_1_into_a_pipe_writes_lines_not_carriage_returns(tmp_path):
    code = ("import numpy as np, annfast as af\n"
            "X = np.random.default_rng(0).normal(size=(2000, 3)); y = X.sum(1)\n"
            "net = af.Network(3, [af.Dense(8, 'tanh'), af.Dense(1)], seed=0)\n"
            "net.fit(X, y, epochs=3, learning_rate=0.01, verbose=1)\n")
    # stderr=PIPE: not a terminal (cwd outside the checkout, so the installed annfast is imported)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    err = done.stderr.decode()
    assert "\r" not in err
    assert [line.split(" - ")[0] for line in err.splitlines()] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
