"""Adversarial regression tests, round 6: Network.atomic under concurrent readers, estimators, loss changes,
saves and Ctrl-C, and the CLI's up-front checks.

Each test is one problem or one guarantee probed: the input, and what must hold.
"""
import pickle
import re
import threading

import numpy as np
import pytest

import annfast as af


def _sig_net(seed=1):
    return af.Network(4, [af.Dense(5, "tanh"), af.Dense(2, "sigmoid")], seed=seed)


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.uniform(size=(n, 2))


def _hammer(net, X, y, before, stop, seen, errors):
    """Read until told to stop; record every prediction that differs bitwise from ``before``."""
    while not stop.is_set():
        try:
            for P in (net.predict(X), net.predict_one(X[0])[None, :]):
                if not np.array_equal(P, before[: P.shape[0]]):
                    seen.append(P)
            net.evaluate(X, y)
        except Exception as exc:   # noqa: BLE001 (any error of a reader is a finding)
            errors.append(exc)


def test_readers_during_a_rolled_back_block_see_only_the_weights_from_before_it():
    net = _sig_net()
    X, y = _data()
    before = net.predict(X)
    stop, seen, errors = threading.Event(), [], []
    t = threading.Thread(target=_hammer, args=(net, X, y, before, stop, seen, errors))
    t.start()
    try:
        for _ in range(30):
            with pytest.raises(RuntimeError):
                with net.atomic():
                    net.fit(X, y, epochs=3, learning_rate=0.5)
                    net.train_step(X[0], y[0], learning_rate=0.5)
                    net.set_parameters(np.zeros(net.n_params))
                    raise RuntimeError("roll back")
    finally:
        stop.set()
        t.join()
    assert not errors and not seen
    assert np.array_equal(net.predict(X), before)


def test_a_loss_changed_inside_a_rolled_back_block_is_never_seen_by_another_threads_evaluate():
    # was: the loss setter applied at once to every thread, so during the block another thread's evaluate(X, y)
    # used the block's (later rolled back) loss: a value of neither the state before nor after the block, and
    # for targets outside [0, 1] a ValueError ("cross-entropy targets ...") that no published state gives
    net = _sig_net()
    X, _ = _data()
    y = np.full((X.shape[0], 2), 3.0)   # fine for half_squared_error, refused by cross_entropy
    expected = net.evaluate(X, y)
    inside, go_on = threading.Event(), threading.Event()
    got = []

    def reader():
        inside.wait()
        try:
            got.append(net.evaluate(X, y))
        except Exception as exc:   # noqa: BLE001
            got.append(exc)
        go_on.set()

    t = threading.Thread(target=reader)
    t.start()
    with pytest.raises(KeyError):
        with net.atomic():
            net.loss = "cross_entropy"
            assert net.loss == "cross_entropy"   # the block's own thread sees its change
            inside.set()
            go_on.wait()
            raise KeyError("roll back")
    t.join()
    assert got == [expected]
    assert net.loss == "half_squared_error" and net.evaluate(X, y) == expected


def test_a_loss_changed_inside_a_block_that_succeeds_is_seen_by_readers_after_it():
    net = _sig_net()
    X, y = _data()
    with net.atomic():
        net.loss = "cross_entropy"
    box = []
    t = threading.Thread(target=lambda: box.append(net.evaluate(X, y)))
    t.start()
    t.join()
    assert box == [net.evaluate(X, y, loss="cross_entropy")]
    net.loss = "half_squared_error"   # outside a block: at once, for every thread
    t = threading.Thread(target=lambda: box.append(net.evaluate(X, y)))
    t.start()
    t.join()
    assert box[1] == net.evaluate(X, y, loss="half_squared_error")


def test_a_loss_changed_then_rolled_back_leaves_the_network_training_with_the_old_loss():
    a, b = _sig_net(), _sig_net()
    X, y = _data()
    with pytest.raises(ValueError):
        with a.atomic():
            a.loss = "cross_entropy"
            a.fit(X, y, epochs=1)
            raise ValueError("no")
    a.fit(X, y, epochs=2, learning_rate=0.1)
    b.fit(X, y, epochs=2, learning_rate=0.1)
    assert a.loss == b.loss and np.array_equal(a.parameters, b.parameters)


def test_save_and_pickle_inside_a_block_hold_the_blocks_weights_and_another_thread_waits_for_the_block(tmp_path):
    net = _sig_net()
    X, y = _data()
    before = net.parameters.copy()
    got, started = {}, threading.Event()

    def other():
        started.set()
        got["pickle"] = pickle.loads(pickle.dumps(net))
        net.save(tmp_path / "other.af")

    with pytest.raises(RuntimeError):
        with net.atomic():
            net.fit(X, y, epochs=2, learning_rate=0.5)
            inside = net.parameters.copy()
            net.save(tmp_path / "inside.af")
            copied = pickle.loads(pickle.dumps(net))
            t = threading.Thread(target=other)
            t.start()
            started.wait()
            t.join(0.2)
            assert t.is_alive()   # waits for the block (the lock), not a timing assertion on the result
            raise RuntimeError("roll back")
    t.join()
    assert np.array_equal(af.load(tmp_path / "inside.af").parameters, inside)
    assert np.array_equal(copied.parameters, inside)
    for m in (got["pickle"], af.load(tmp_path / "other.af"), net):
        assert np.array_equal(m.parameters, before)


def test_ctrl_c_from_a_callback_of_a_threaded_fit_inside_a_block_rolls_back_and_training_goes_on():
    net = af.Network(4, [af.Dense(16, "tanh"), af.Dense(2, "sigmoid")], seed=3)
    X, y = _data(400)
    snap_w = net.parameters.copy()
    hist = net.history

    class Stop(af.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with net.atomic():
            net.fit(X, y, epochs=5, learning_rate=0.1, momentum=0.9, n_threads=2, callbacks=[Stop()])
    assert np.array_equal(net.parameters, snap_w) and net.history is hist
    assert np.array_equal(net.predict(X), af.Network(4, [af.Dense(16, "tanh"), af.Dense(2, "sigmoid")],
                                                     seed=3).predict(X))
    net.fit(X, y, epochs=2, learning_rate=0.1, n_threads=2)
    assert np.isfinite(net.parameters).all() and not np.array_equal(net.parameters, snap_w)


# ---- settings the float32 step changes: refused by every training entry point, weights untouched ------------

_ROUNDED = [
    ({"learning_rate": 1e-50}, r"learning_rate 1e-50 rounds to 0 in float32"),
    ({"learning_rate": 1e39}, r"learning_rate 1e\+39 does not fit in float32"),
    ({"weight_decay": 1e39}, r"weight_decay 1e\+39 does not fit in float32"),
    ({"momentum": 0.999999999}, r"momentum 0.999999999 rounds to 1 in float32"),
]


@pytest.mark.parametrize("entry", ["fit", "train_step", "atomic-fit"])
@pytest.mark.parametrize("settings, message", _ROUNDED, ids=["lr-to-0", "lr-to-inf", "decay-to-inf", "mu-to-1"])
def test_settings_that_round_out_of_range_in_float32_are_refused_and_change_nothing(entry, settings, message):
    # was: accepted (they pass learning_rate > 0, momentum < 1, finite), then the C step rounded them to the
    # network's float32: a rate of 1e-50 trained nothing at all ("trained 50 epochs"), a momentum of 0.999999999
    # ran as momentum 1 (the velocity never decays), 1e39 became inf and surfaced as a DivergenceError
    net = _sig_net()
    X, y = _data()
    kwargs = {"learning_rate": 0.1, **settings}
    before = net.parameters.copy()
    with pytest.raises(ValueError, match=message):
        if entry == "fit":
            net.fit(X, y, epochs=1, **kwargs)
        elif entry == "train_step":
            net.train_step(X[0], y[0], **kwargs)
        else:
            with net.atomic():
                net.fit(X, y, epochs=1, **kwargs)
    assert np.array_equal(net.parameters, before) and net.history is None


@pytest.mark.parametrize("settings", [{"learning_rate": 1e-50}, {"momentum": 0.999999999, "learning_rate": 1e-3}])
def test_the_same_settings_stay_valid_for_float64(settings):
    net = af.Network(4, [af.Dense(3, "tanh"), af.Dense(2, "sigmoid")], dtype="float64", seed=1)
    X, y = _data()
    net.fit(X, y, epochs=1, **settings)
    assert np.isfinite(net.parameters).all()


@pytest.mark.filterwarnings("ignore:.*max_iter=")
def test_the_estimators_refuse_them_too_and_keep_their_model():
    from annfast.sklearn import ANNRegressor
    X, y = _data()
    est = ANNRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y[:, 0])
    before = est.predict(X)
    est.set_params(momentum=0.999999999)
    with pytest.raises(ValueError, match="rounds to 1 in float32"):
        est.partial_fit(X, y[:, 0])
    assert np.array_equal(est.predict(X), before)


@pytest.mark.parametrize("options, message", [
    (["--learning-rate", "1e-50"], r"--learning-rate 1e-50 rounds to 0 in float32"),
    (["--lr", "1e39"], r"--learning-rate 1e\+39 does not fit in float32"),
    (["--momentum", "0.999999999"], r"--momentum 0.999999999 rounds to 1 in float32"),
    (["--weight-decay", "1e39"], r"--weight-decay 1e\+39 does not fit in float32"),
    (["--negative-slope", "1e39", "--activation", "leaky_relu"], r"--negative-slope 1e\+39: .*does not fit in float32"),
], ids=["lr-to-0", "lr-to-inf", "mu-to-1", "decay-to-inf", "slope-to-inf"])
def test_cli_refuses_numbers_fit_refuses_before_reading_the_data(capsys, tmp_path, options, message):
    # was: not checked up front; the data was read, the data/network/seed lines printed, and then fit trained
    # nothing (1e-50), ran at momentum 1, or refused/diverged with Python's argument names
    from annfast.cli import main
    code = main(["train", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m.annf"), *options])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (out, err)
    assert re.search(message, err), err
    assert "No such file" not in err and "learning_rate" not in err and "weight_decay" not in err
    assert not (tmp_path / "m.annf").exists()


@pytest.mark.parametrize("options", [
    ["--dtype", "float64", "--learning-rate", "1e-50"],
    ["--labels", "--loss", "cross_entropy", "--output-activation", "softmax"],
    ["--labels", "--class-weight", "balanced", "--validation-split", "0.25"],
    ["--labels", "--output-activation", "sigmoid", "--class-weight", "balanced"],
    ["--momentum", "-0.0"],
], ids=["float64-tiny-lr", "labels-softmax-ce", "class-weight-validation", "labels-sigmoid-weights", "momentum-neg0"])
def test_cli_accepts_valid_combinations(capsys, tmp_path, options):
    rng = np.random.default_rng(0)
    lines = ["a,b,y"] + [f"{rng.normal()!r},{rng.normal()!r},{k % 3}" for k in range(24)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from annfast.cli import main
    code = main(["train", str(tmp_path / "d.csv"), "--out", str(tmp_path / "m.annf"), "--epochs", "2", "--seed", "1",
                 *options])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    assert (tmp_path / "m.annf").exists()


@pytest.mark.filterwarnings("ignore:.*max_iter=")
def test_an_estimator_training_in_another_thread_and_one_failing_inside_a_block_leave_each_network_whole():
    # two networks, two threads: a block on net that fails (an estimator's partial_fit raising inside it) rolls
    # back net and leaves the estimator as it was, while another estimator refits in a thread; readers of every
    # network see only states from before or after whole calls
    from annfast.sklearn import ANNClassifier, ANNRegressor
    X, y = _data()
    labels = (y[:, 0] > 0.5).astype(int)
    busy = ANNClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, labels)
    failing = ANNRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X, y[:, 0])
    net = _sig_net()
    net_before, est_before = net.predict(X), failing.predict(X)
    busy_states = {busy.predict_proba(X).tobytes()}
    stop = threading.Event()

    def refit():
        while not stop.is_set():
            busy.partial_fit(X, labels)
            busy_states.add(busy.predict_proba(X).tobytes())

    seen_busy = []
    t = threading.Thread(target=refit)
    t.start()
    try:
        for _ in range(10):
            with pytest.raises(ValueError):
                with net.atomic():
                    net.fit(X, y, epochs=1, learning_rate=0.5)
                    failing.partial_fit(X[:, :3], y[:, 0])   # wrong width: refused
            seen_busy.append(busy.predict_proba(X).tobytes())
            assert np.array_equal(net.predict(X), net_before)
            assert np.array_equal(failing.predict(X), est_before)
    finally:
        stop.set()
        t.join()
    assert set(seen_busy) <= busy_states
