"""annfast.dask: data-parallel training on a LocalCluster of two worker processes.

Convergence against single-process training on the digits, determinism, DataFrame and NumPy input,
validation and callbacks, errors, the retry loop, the loss of a worker in the middle of training, the
scikit-learn adapter, and many independent networks through joblib's Dask backend.
"""
import os
import pickle
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import QUICK

import annfast as af

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
afd = pytest.importorskip("annfast.dask")

# No warning filters: every warning stays an error (the project's filterwarnings = error). The clusters put
# their dashboards on free ports (dashboard_address=":0"); with the default port, the second cluster would warn
# "Port 8787 is already in use" and then fail to start with an unclosed-socket ResourceWarning.

EPOCHS = 4 if QUICK else 8
# Local SGD over 2 groups averaged once per round reaches, after the same epochs, a test accuracy within
# this of single-process per-sample SGD (measured: within 0.01 at 3 to 10 epochs on this split).
ACCURACY_TOLERANCE = 0.03


def digits_network(hidden=32, seed=0):
    return af.Network(64, [af.Dense(hidden, "relu"), af.Dense(10, "softmax")], seed=seed)


@pytest.fixture(scope="module")
def digits():
    datasets = pytest.importorskip("sklearn.datasets")
    model_selection = pytest.importorskip("sklearn.model_selection")
    X, y = datasets.load_digits(return_X_y=True)
    X = X / 16.0
    return model_selection.train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


def local_cluster():
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")


@pytest.fixture(scope="module")
def client():
    with local_cluster() as cluster, distributed.Client(cluster) as c:
        yield c


def test_import_annfast_does_not_import_dask_and_a_missing_dask_is_explained(tmp_path):
    code = (
        "import sys\n"
        "import annfast\n"
        "assert not any(m == 'dask' or m.startswith(('dask.', 'distributed')) for m in sys.modules), 'dask imported'\n"
        "sys.modules['dask'] = None\n"
        "try:\n"
        "    import annfast.dask\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    # run outside the source tree, so that the installed annfast is the one imported
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert 'pip install "annfast[dask]"' in out.stdout


@pytest.mark.parametrize("rounds_per_epoch", [1, 4])
def test_digits_reaches_the_accuracy_of_single_process_training(client, digits, rounds_per_epoch):
    X_train, X_test, y_train, y_test = digits
    single = digits_network()
    single.fit(X_train, y_train, epochs=EPOCHS, learning_rate=0.01, seed=0)
    expected = single.evaluate(X_test, y_test, return_dict=True)["accuracy"]

    net = digits_network()
    X = da.from_array(X_train, chunks=(300, 64))       # 5 partitions on 2 workers: 2 groups of about 720 rows
    y = da.from_array(y_train, chunks=300)
    hist = afd.fit(net, X, y, client=client, epochs=EPOCHS, rounds_per_epoch=rounds_per_epoch,
                   learning_rate=0.01, seed=0)
    got = net.evaluate(X_test, y_test, return_dict=True)["accuracy"]
    assert got >= expected - ACCURACY_TOLERANCE, (got, expected)
    assert got > 0.9
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert len(hist.history["loss"]) == EPOCHS
    assert len(hist.rounds["loss"]) == EPOCHS * rounds_per_epoch
    assert sum(hist.rounds["rows"]) == EPOCHS * X_train.shape[0]
    assert hist.params["n_groups"] == 2 and sum(hist.group_rows) == X_train.shape[0]
    assert net.history is hist and hist.wall_time > 0


def test_same_seed_gives_bitwise_identical_parameters_and_numpy_input_works(client, digits):
    X_train, _, y_train, _ = digits
    nets = [digits_network(), digits_network()]
    hists = [afd.fit(net, X_train, y_train, client=client, epochs=2, samples_per_round=200, learning_rate=0.01,
                     seed=7) for net in nets]
    assert nets[0].parameters.tobytes() == nets[1].parameters.tobytes()
    assert hists[0].history == hists[1].history
    # samples_per_round=200 rows per group: ceil(719 / 200) = 4 rounds per epoch
    assert hists[0].params["rounds_per_epoch"] == 4 and len(hists[0].rounds["loss"]) == 8
    other = digits_network()
    afd.fit(other, X_train, y_train, client=client, epochs=2, samples_per_round=200, learning_rate=0.01, seed=8)
    assert other.parameters.tobytes() != nets[0].parameters.tobytes()


def test_a_network_trained_on_dask_saves_loads_and_pickles(client, rng, tmp_path):
    X = rng.normal(size=(500, 4))
    y = X[:, 0] - X[:, 1]
    net = af.Network(4, [af.Dense(8, "tanh"), af.Dense(1)], seed=0)
    hist = afd.fit(net, X, y, client=client, epochs=2, seed=0)
    net.save(tmp_path / "model.afm")
    assert af.load(tmp_path / "model.afm").parameters.tobytes() == net.parameters.tobytes()
    again = pickle.loads(pickle.dumps(net))
    assert again.parameters.tobytes() == net.parameters.tobytes()
    assert again.history.rounds == hist.rounds and again.history.history == hist.history


def test_one_group_and_no_shuffling_is_single_process_training(client, digits):
    # One group, one round per epoch, rows in order: exactly Network.fit with shuffle=False.
    X_train, _, y_train, _ = digits
    single = digits_network()
    single.fit(X_train, y_train, epochs=2, learning_rate=0.01, shuffle=False)
    net = digits_network()
    X = da.from_array(X_train, chunks=(500, 64))
    y = da.from_array(y_train, chunks=500)
    hist = afd.fit(net, X, y, client=client, epochs=2, n_groups=1, shuffle=False, learning_rate=0.01)
    assert net.parameters.tobytes() == single.parameters.tobytes()
    np.testing.assert_allclose(hist.history["loss"], single.history.history["loss"], rtol=1e-9)


def test_dask_dataframe_input_with_dask_validation_data(client, digits):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X_train, X_test, y_train, y_test = digits
    frame = pd.DataFrame(X_train, columns=[f"pixel{i}" for i in range(64)])
    frame["label"] = y_train
    ddf = dd.from_pandas(frame, npartitions=4)
    features = [f"pixel{i}" for i in range(64)]
    net = digits_network()
    val = (da.from_array(X_test, chunks=(100, 64)), da.from_array(y_test, chunks=100))
    hist = afd.fit(net, ddf[features], ddf["label"], client=client, epochs=EPOCHS, learning_rate=0.01, seed=0,
                   validation_data=val)
    local = net.evaluate(X_test, y_test, return_dict=True)
    assert local["accuracy"] > 0.9
    assert hist.history["val_accuracy"][-1] == pytest.approx(local["accuracy"])
    assert hist.history["val_loss"][-1] == pytest.approx(local["loss"], rel=1e-6)
    assert hist.params["n_partitions"] == 4 and hist.params["n_groups"] == 2


def test_numpy_validation_data_and_callbacks_stop_training(client, digits):
    X_train, X_test, y_train, y_test = digits
    seen = []

    class StopAfterTwo(af.Callback):
        def on_epoch_end(self, epoch, logs):
            seen.append(dict(logs))
            if epoch == 1:
                self.network.stop_training = True

    net = digits_network()
    hist = afd.fit(net, X_train, y_train, client=client, epochs=10, learning_rate=0.01, seed=0,
                   validation_data=(X_test, y_test), callbacks=[StopAfterTwo()])
    assert hist.epoch == [0, 1] and len(seen) == 2
    assert set(seen[-1]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert seen[-1]["val_accuracy"] == net.evaluate(X_test, y_test, return_dict=True)["accuracy"]


def test_errors(client, digits):
    X_train, _, y_train, _ = digits
    net = digits_network()
    before = net.parameters.copy()
    with pytest.raises(ValueError, match="rounds_per_epoch or samples_per_round, not both"):
        afd.fit(net, X_train, y_train, client=client, rounds_per_epoch=2, samples_per_round=10)
    # 10**9 rounds of empty slices used to run for months (~30 ms of Dask overhead each) from one small number
    with pytest.raises(ValueError, match="rounds_per_epoch=1000000000 is more than the"):
        afd.fit(net, X_train, y_train, client=client, rounds_per_epoch=10**9)
    with pytest.raises(ValueError, match="X has 1437 rows but y has 1436"):
        afd.fit(net, X_train, y_train[:-1], client=client)
    with pytest.raises(TypeError, match="net must be an annfast.Network"):
        afd.fit("net", X_train, y_train, client=client)
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        afd.fit(net, X_train, y_train, client="tcp://scheduler:8786")
    bad = X_train.copy()
    bad[700, 3] = np.nan                      # found on a worker, reported with its row in the whole X
    with pytest.raises(ValueError, match=r"X holds a non-finite value \(nan\) at row 700, column 3"):
        afd.fit(net, da.from_array(bad, chunks=(500, 64)), da.from_array(y_train, chunks=500), client=client)
    with pytest.raises(ValueError, match="not a class label"):
        afd.fit(net, X_train, y_train + 1, client=client)
    assert net.parameters.tobytes() == before.tobytes()


def test_errors_name_global_rows_and_unknown_chunk_sizes_are_computed(client, rng):
    """Issue 18, item 12: a NaN at row 503 was reported as "row 3" (its row within the partition), and a
    dask X of unknown chunk sizes with a NumPy y gave "X has nan rows but y has 1000"."""
    X = rng.normal(size=(1000, 4))
    y = X @ np.array([1.0, -1.0, 0.5, 0.0])
    net = af.Network(4, [af.Dense(8, "tanh"), af.Dense(1)], seed=0)
    before = net.parameters.tobytes()
    bad = X.copy()
    bad[503, 1] = np.nan
    with pytest.raises(ValueError, match=r"X holds a non-finite value \(nan\) at row 503, column 1"):
        afd.fit(net, da.from_array(bad, chunks=(250, 4)), da.from_array(y, chunks=250), client=client)
    yb = y.copy()
    yb[777] = np.inf
    with pytest.raises(ValueError, match=r"y holds a non-finite value \(inf\) at row 777, column 0"):
        afd.fit(net, da.from_array(X, chunks=(250, 4)), da.from_array(yb, chunks=250), client=client)
    # unknown chunk sizes (a boolean mask): still global rows, and a NumPy y is matched after computing them
    Xd = da.from_array(bad, chunks=(250, 4))
    keep = da.from_array(np.ones(1000, dtype=bool), chunks=250)
    Xu = Xd[keep]
    assert np.isnan(Xu.shape[0])
    with pytest.raises(ValueError, match=r"X holds a non-finite value \(nan\) at row 503, column 1"):
        afd.fit(net, Xu, da.from_array(y, chunks=250)[keep], client=client)
    with pytest.raises(ValueError, match=r"at row 503, column 1"):
        afd.fit(net, Xu, y, client=client)
    with pytest.raises(ValueError, match="X has 1000 rows but y has 999"):
        afd.fit(net, da.from_array(X, chunks=(250, 4))[keep], y[:-1], client=client)
    assert net.parameters.tobytes() == before
    hist = afd.fit(net, da.from_array(X, chunks=(250, 4))[keep], y, client=client, epochs=1, seed=0)
    assert hist.params["n_rows"] == 1000


def test_divergence_is_raised_and_the_network_keeps_the_last_average(client, rng):
    X = rng.normal(size=(400, 4)) * 1e3
    y = rng.normal(size=400) * 1e3
    net = af.Network(4, [af.Dense(8, "relu"), af.Dense(1)], seed=0)
    before = net.parameters.copy()
    with pytest.raises(af.DivergenceError, match=r"annfast.dask.fit, group \d, epoch 0, round 0"):
        afd.fit(net, X, y, client=client, epochs=3, learning_rate=10.0, seed=0)
    assert net.parameters.tobytes() == before.tobytes()       # no round completed: the initial weights


def test_retry_loop_resubmits_tasks_lost_to_the_cluster_and_gives_up_after_max_retries(client):
    import operator

    calls = []

    def submit(i, attempt):
        calls.append((i, attempt))
        if attempt == 0 and i == 1:            # as if its worker had died: the future is cancelled
            fut = client.submit(operator.add, i, 10, workers=["tcp://127.0.0.1:9"], pure=False)   # never runs
            fut.cancel()
            return fut
        return client.submit(operator.add, i, 10, pure=False)

    results, retries = afd._run_tasks(client, submit, 3, max_retries=1, what="test")
    assert results == [10, 11, 12] and retries == 1
    assert sorted(calls) == [(0, 0), (1, 0), (1, 1), (2, 0)]
    calls.clear()
    lost = r"test: task 1 was lost to the cluster 1 time\(s\), more than max_retries=0"
    with pytest.raises(RuntimeError, match=lost):
        afd._run_tasks(client, submit, 3, max_retries=0, what="test")
    # a failure of the work itself is raised at once, never retried
    with pytest.raises(ZeroDivisionError):
        afd._run_tasks(client, lambda i, a: client.submit(operator.truediv, 1, i, pure=False), 2, 3, "test")


def test_training_survives_a_worker_killed_mid_round(digits):
    # allowed-failures=0: the scheduler gives up on a task at the first death of its worker (KilledWorker),
    # so that annfast.dask's own retry of the round is what recovers it.
    X_train, X_test, y_train, y_test = digits
    X = np.tile(X_train, (4, 1))               # longer rounds (about 3,000 rows per group) to kill a worker in
    y = np.tile(y_train, 4)
    settings = dict(epochs=3, rounds_per_epoch=2, learning_rate=0.01, seed=0)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), local_cluster() as cluster, \
            distributed.Client(cluster) as client:
        reference = digits_network(hidden=128)
        afd.fit(reference, X, y, client=client, **settings)

        killed = []

        def kill_a_worker_running_a_round():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for worker, keys in client.processing().items():
                    if any(str(k).startswith("annfast-train") for k in keys):
                        pid = client.run(os.getpid, workers=[worker])[worker]
                        os.kill(pid, signal.SIGKILL)
                        killed.append(worker)
                        return
                time.sleep(0.001)

        killer = threading.Thread(target=kill_a_worker_running_a_round)
        net = digits_network(hidden=128)
        killer.start()
        try:
            hist = afd.fit(net, X, y, client=client, **settings)
        finally:
            killer.join()
        assert killed, "no worker was killed"
        assert killed[0] not in client.nthreads()
    # The lost group's round was redone from the round's starting parameters: the same result as without a loss.
    assert net.parameters.tobytes() == reference.parameters.tobytes()
    assert len(hist.history["loss"]) == 3 and sum(hist.rounds["rows"]) == 3 * X.shape[0]
    assert net.evaluate(X_test, y_test, return_dict=True)["accuracy"] > 0.9


def test_scikit_learn_classifier_with_string_labels(client, digits):
    pytest.importorskip("sklearn", minversion="1.6")
    sk = pytest.importorskip("annfast.sklearn")
    X_train, X_test, y_train, y_test = digits
    names = np.array([f"digit {d}" for d in range(10)], dtype=object)
    y = da.from_array(names[y_train], chunks=300)
    clf = sk.ANNClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0)
    out = afd.fit_estimator(clf, da.from_array(X_train, chunks=(300, 64)), y, epochs=EPOCHS, client=client)
    assert out is clf
    assert clf.classes_.tolist() == sorted(names.tolist())
    assert clf.score(X_test, names[y_test]) > 0.9
    assert clf.n_iter_ == EPOCHS + 1 and len(clf.loss_curve_) == EPOCHS + 1   # + the initializing partial_fit


def test_scikit_learn_regressor_standardizes_targets_on_the_cluster(client, rng):
    pytest.importorskip("sklearn", minversion="1.6")
    sk = pytest.importorskip("annfast.sklearn")
    X = rng.normal(size=(2000, 3))
    y = 5000 + 800 * (X[:, 0] - 0.5 * X[:, 1] ** 2 + np.tanh(X[:, 2]))
    reg = sk.ANNRegressor(hidden_layer_sizes=(16,), activation="tanh", learning_rate_init=0.01, random_state=0)
    afd.fit_estimator(reg, da.from_array(X, chunks=(500, 3)), da.from_array(y, chunks=500), epochs=EPOCHS,
                      client=client)
    np.testing.assert_allclose(reg.y_mean_, [y.mean()])
    np.testing.assert_allclose(reg.y_scale_, [y.std()])
    assert reg.score(X, y) > 0.9


def test_scikit_learn_schedules_are_refused_not_ignored(client, rng):
    pytest.importorskip("sklearn", minversion="1.6")
    sk = pytest.importorskip("annfast.sklearn")
    X = rng.normal(size=(100, 3))
    reg = sk.ANNRegressor(hidden_layer_sizes=(4,), learning_rate="invscaling", random_state=0)
    with pytest.raises(ValueError, match="learning_rate='invscaling' schedule is not applied"):
        afd.fit_estimator(reg, da.from_array(X, chunks=(50, 3)), da.from_array(X[:, 0], chunks=50), epochs=1,
                          client=client)
    assert not hasattr(reg, "network_")


def test_many_independent_networks_through_joblibs_dask_backend(client, digits):
    joblib = pytest.importorskip("joblib")
    X_train, X_test, y_train, y_test = digits

    def train(seed):          # a local function (pickled by value), using nothing else from this module
        net = af.Network(64, [af.Dense(32, "relu"), af.Dense(10, "softmax")], seed=seed)
        net.fit(X_train, y_train, epochs=2, learning_rate=0.01, seed=seed)
        return net

    with joblib.parallel_backend("dask"):
        nets = joblib.Parallel(n_jobs=2)(joblib.delayed(train)(seed) for seed in range(4))
    for seed, net in enumerate(nets):
        here = digits_network(seed=seed)
        here.fit(X_train, y_train, epochs=2, learning_rate=0.01, seed=seed)
        assert net.parameters.tobytes() == here.parameters.tobytes()
