"""Adversarial checks of serving while training (README "Threads, and serving while training")."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import annfast as af


def test_a_reader_after_train_step_sees_it_while_another_reader_publishes():
    # train_step marks the weights stale; the next reader publishes them. A second reader arriving while the
    # first one copies found the lock taken and returned the state from before the step, although no training
    # ran: "a prediction after train_step returns sees its update" did not hold.
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2)], dtype="float64", seed=0)
    x = np.array([0.1, 0.2, 0.3])
    net.train_step(x, [1.0, -1.0], learning_rate=0.5)
    twin = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2)], dtype="float64", seed=0)
    twin.set_parameters(np.array(net.parameters))
    expected = twin.predict_one(x)

    inside, go = threading.Event(), threading.Event()
    publish = net._publish

    def slow_publish():   # the first reader's copy takes a while
        if threading.current_thread() is first:
            inside.set()
            go.wait(10)
        publish()
    net._publish = slow_publish
    first = threading.Thread(target=net.predict_one, args=(x,))
    first.start()
    assert inside.wait(10)
    got = []
    second = threading.Thread(target=lambda: got.append(net.predict_one(x)))
    second.start()
    second.join(0.5)   # the old code returned here at once, with the weights from before the step
    go.set()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    np.testing.assert_array_equal(got[0], expected)


def _blocked_during_refit(est, call, refit):
    """Run call(est) in a thread whose network predict waits until refit() (a fit building a new network) ends."""
    net = est.network_
    predict = net.predict
    entered, go = threading.Event(), threading.Event()

    def slow(X):
        entered.set()
        go.wait(10)
        return predict(X)
    net.predict = slow
    got = []
    reader = threading.Thread(target=lambda: got.append(call(est)))
    reader.start()
    assert entered.wait(10)
    refit()
    go.set()
    reader.join(10)
    assert not reader.is_alive() and got
    return got[0]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_regressor_prediction_during_a_refit_is_one_fits_prediction(rng):
    # predict read network_, ran it, then read y_scale_ and y_mean_: a fit ending meanwhile gave the old
    # network's outputs on the new fit's target scale, a prediction of neither fit
    from annfast.sklearn import ANNRegressor
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5]
    est = ANNRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    before = est.predict(X)
    got = _blocked_during_refit(est, lambda e: e.predict(X),
                                lambda: est.set_params(random_state=1).fit(X, 1000 * y ** 2 + 5000))
    after = est.predict(X)
    assert np.array_equal(got, before) or np.array_equal(got, after)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_classifier_prediction_during_a_refit_uses_its_own_fits_classes(rng):
    from annfast.sklearn import ANNClassifier
    X = rng.normal(size=(40, 3))
    y = np.where(X[:, 0] > 0, "a", "b")
    est = ANNClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    before = est.predict(X)
    got = _blocked_during_refit(est, lambda e: e.predict(X),
                                lambda: est.set_params(random_state=1).fit(X, np.where(X[:, 1] > 0, "x", "y")))
    assert set(got) <= {"a", "b"}
    np.testing.assert_array_equal(got, before)


def test_a_reader_after_train_step_sees_it_while_another_thread_reads_under_the_lock(monkeypatch):
    # gradient, get_weights, save hold the network's lock (no training runs); a reader after a train_step could
    # not take it to publish the step, and returned the weights from before it
    import annfast.network as network
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2)], dtype="float64", seed=0)
    x = np.array([0.1, 0.2, 0.3])
    for _ in range(2):
        net.predict_one(x)
    net.train_step(x, [1.0, -1.0], learning_rate=0.5)
    twin = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2)], dtype="float64", seed=0)
    twin.set_parameters(np.array(net.parameters))
    expected = twin.predict_one(x)

    entered, go = threading.Event(), threading.Event()
    gradient_rows = network._core.gradient_rows

    def slow(*args):   # a gradient over many rows
        entered.set()
        go.wait(10)
        return gradient_rows(*args)
    monkeypatch.setattr(network._core, "gradient_rows", slow)
    other = threading.Thread(target=net.gradient, args=(x[None], [[0.0, 0.0]]))
    other.start()
    assert entered.wait(10)
    try:
        got = net.predict_one(x)
    finally:
        go.set()
        other.join(10)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("cores", [1, 2])
def test_hogwild_with_sync_every_is_refused_whatever_the_core_count(monkeypatch, cores):
    # the cap at the cores ran before the check: on one core the contradictory settings trained serially
    from annfast import _parallel
    monkeypatch.setattr(_parallel, "usable_cores", lambda: cores)
    net = af.Network(4, [af.Dense(8, "tanh"), af.Dense(1)], dtype="float64", seed=0)
    X = np.zeros((20, 4))
    with pytest.raises(ValueError, match="two different threaded modes"):
        net.fit(X, X[:, :1], n_threads=4, hogwild=True, sync_every=10)


def test_a_spec_a_reader_builds_while_the_kernel_changes_is_not_kept_for_the_new_kernel(monkeypatch):
    # evaluate(loss=...) builds and caches a spec without the lock; the kernel setter clearing the cache in the
    # meantime left the spec of the old kernel cached, used by later evaluate and fit calls with that loss
    import annfast.network as network
    from annfast import _validation as v
    kernels = [k for k in v.KERNELS if network._core.isa_supported(v.KERNELS[k])]
    if len(kernels) < 2:
        pytest.skip("one kernel variant on this CPU")
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2, "softmax")], dtype="float64", seed=0)
    net.kernel = kernels[0]
    made, keep = {}, []
    Spec = network._core.Spec
    entered, go = threading.Event(), threading.Event()

    def spec(*args, **kwargs):
        s = Spec(*args, **kwargs)
        keep.append(s)
        made[id(s)] = args[-1]
        if threading.current_thread() is reader:
            entered.set()
            go.wait(10)
        return s
    monkeypatch.setattr(network._core, "Spec", spec)
    X, Y = np.zeros((2, 3)), np.array([[1.0, 0.0], [0.0, 1.0]])
    reader = threading.Thread(target=net.evaluate, args=(X, Y), kwargs={"loss": "half_squared_error"})
    reader.start()
    assert entered.wait(10)
    net.kernel = kernels[1]
    go.set()
    reader.join(10)
    assert made[id(net._spec("half_squared_error"))] == v.KERNELS[kernels[1]]


_FORK_DURING_A_READERS_PUBLISH = """
import os, threading, numpy as np, annfast as af
net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2)], dtype="float64", seed=0)
x = np.array([0.1, 0.2, 0.3])
net.train_step(x, [1.0, -1.0], learning_rate=0.5)
stepped = np.array(net.parameters)
entered, go = threading.Event(), threading.Event()
publish = net._publish
def slow():
    if threading.current_thread() is reader:
        entered.set(); go.wait(10)
    publish()
net._publish = slow
reader = threading.Thread(target=net.predict_one, args=(x,))
reader.start()
assert entered.wait(10)
pid = os.fork()
if pid == 0:
    net._publish = publish
    os._exit(0 if np.array_equal(np.array(net.parameters), stepped) else 7)
go.set(); reader.join()
print(os.waitpid(pid, 0)[1] >> 8)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_a_reader_publishes_keeps_the_weights_of_a_finished_train_step(tmp_path):
    # the child took back the lock the publishing reader held as if a fit had been cut off, and reverted to the
    # published weights: the train_step that had returned before the fork was lost
    out = subprocess.run([sys.executable, "-c", _FORK_DURING_A_READERS_PUBLISH], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_evaluate_with_metrics_reads_one_published_state(monkeypatch):
    # evaluate took the published weights for the loss, then again (through predict) for the metrics: a publish
    # in between gave a loss of one state and metrics of another
    import annfast.network as network
    net = af.Network(2, [af.Dense(3, "tanh"), af.Dense(1)], dtype="float64", seed=0)
    X = np.array([[0.5, -1.0], [1.0, 2.0], [-0.3, 0.1]])
    y = np.array([1.0, -2.0, 0.5])
    loss_rows = network._core.loss_rows

    def then_publish(*args):   # another thread's set_weights publishes right after the loss is computed
        out = loss_rows(*args)
        net.set_weights([(2 * W, b + 1) for W, b in net.get_weights()])
        return out
    monkeypatch.setattr(network._core, "loss_rows", then_publish)
    got = net.evaluate(X, y, metrics=["rmse"])
    assert got["rmse"] == pytest.approx(np.sqrt(2 * got["loss"]), rel=1e-12)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_regressor_exported_during_a_refit_is_one_fits_model(rng, tmp_path):
    onnx = pytest.importorskip("onnx")
    import json

    from annfast.sklearn import ANNRegressor
    X = rng.normal(size=(40, 3))
    y = X @ [1.0, -2.0, 0.5]
    est = ANNRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    mean = est.y_mean_.tolist()
    net = est.network_
    whole = net._whole

    def refit_then_whole():   # another thread's fit ends after the export took the network
        est.set_params(random_state=1).fit(X, 1000 * y ** 2 + 5000)
        return whole()
    net._whole = refit_then_whole
    est.to_onnx(tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["annfast_y_mean"]) == pytest.approx(mean)
