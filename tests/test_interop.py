"""Interop: ONNX export checked by onnxruntime, FANN .net files checked by independent NumPy and by libfann.

onnxruntime's outputs must equal ``predict`` (float32 to 1e-6 relative, float64 to 1e-12) for every activation,
1-3 hidden layers, batches of 1 and 37; the file passes onnx.checker and carries its metadata. Skipped when onnx or
onnxruntime is missing.
"""
import json
import warnings

import numpy as np
import pytest

import annfast as af
from annfast.cli import main

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

HIDDEN = ["linear", "step", "sigmoid", "tanh", "relu", "leaky_relu"]
OUTPUTS = HIDDEN + ["softmax"]
# float32: relative to the size of the outputs (a sum that cancels to near 0 keeps an absolute error of the
# order of float32 rounding of its terms)
ONNX_TOL = {"float32": 1e-6, "float64": 1e-12}


def _fit(est, X, y):
    with warnings.catch_warnings():     # a few epochs are enough to export something that is not the start
        warnings.simplefilter("ignore")
        return est.fit(X, y)


def _run(path, X):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["output"], {"input": X})[0]


def _close(got, want, dtype):
    tol = ONNX_TOL[dtype]
    scale = max(1.0, float(np.max(np.abs(want))))
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale)


def _net(n_hidden, hidden, output, dtype, seed=0):
    slope = 0.2 if dtype == "float64" else 0.25     # 0.2 is not a float32 number: the exact Where form
    layers = [af.Dense(5 + k, hidden, negative_slope=slope) for k in range(n_hidden)]
    layers.append(af.Dense(3, output, negative_slope=slope))
    net = af.Network(4, layers, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    net.set_parameters(rng.normal(0, 0.8, net.n_params))
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_hidden", [1, 2, 3])
@pytest.mark.parametrize("act", OUTPUTS)
def test_onnx_equals_predict(tmp_path, act, n_hidden, dtype):
    hidden = act if act != "softmax" else "tanh"
    net = _net(n_hidden, hidden, act, dtype)
    path = tmp_path / "m.onnx"
    net.to_onnx(path)
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    rng = np.random.default_rng(7)
    for batch in (1, 37):
        X = rng.normal(0, 1.5, (batch, 4)).astype(dtype)
        got = _run(path, X)
        assert got.dtype == np.dtype(dtype) and got.shape == (batch, 3)
        _close(got, net.predict(X), dtype)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["annfast_version"] == af.__version__
    desc = json.loads(meta["annfast_network"])
    assert desc["n_inputs"] == 4 and desc["dtype"] == dtype and desc["loss"] == net.loss
    assert [d["activation"] for d in desc["layers"]] == [hidden] * n_hidden + [act]
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["output"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnx_step_at_zero_and_ops(tmp_path, dtype):
    # a zero pre-activation gives 1, as annfast's step; the graph uses the named ONNX operators
    net = af.Network(2, [af.Dense(2, "step")], dtype=dtype)
    net.set_weights([(np.array([[1.0, -1.0], [0.0, 0.0]]), np.array([0.0, -0.0]))])
    net.to_onnx(tmp_path / "s.onnx")
    X = np.array([[1.0, 1.0], [0.0, 1.0], [2.0, 1.0]], dtype=dtype)
    np.testing.assert_array_equal(_run(tmp_path / "s.onnx", X), net.predict(X))
    ops = [n.op_type for n in onnx.load(str(tmp_path / "s.onnx")).graph.node]
    assert ops == ["Gemm", "GreaterOrEqual", "Cast", "Identity"]


def test_onnx_leaky_relu_uses_the_operator_when_exact(tmp_path):
    net = af.Network(3, [af.Dense(4, "leaky_relu", negative_slope=0.125), af.Dense(2, "softmax")])
    net.to_onnx(tmp_path / "l.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "l.onnx")).graph.node]
    assert ops == ["Gemm", "LeakyRelu", "Gemm", "Softmax", "Identity"]


def test_onnx_replaces_atomically_and_refuses_a_missing_directory(tmp_path):
    net = _net(1, "tanh", "linear", "float32")
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    net.to_onnx(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    onnx.checker.check_model(onnx.load(str(path)))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        net.to_onnx(tmp_path / "nope" / "m.onnx")


def test_onnx_missing_package_names_the_extra(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ImportError, match=r'pip install "annfast\[onnx\]"'):
        _net(1, "tanh", "linear", "float32").to_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("two_d", [False, True])
def test_onnx_regressor_equals_predict(tmp_path, dtype, two_d):
    from annfast.sklearn import ANNRegressor

    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4))
    y = X @ rng.normal(size=(4, 2)) * 50 + 300
    y = y if two_d else y[:, 0]
    est = _fit(ANNRegressor((6,), "tanh", max_iter=5, random_state=0, dtype=dtype), X, y)
    assert not np.allclose(est.y_scale_, 1)          # the targets are scaled: the graph must undo it
    est.to_onnx(tmp_path / "r.onnx")
    model = onnx.load(str(tmp_path / "r.onnx"))
    onnx.checker.check_model(model)
    for batch in (1, 37):
        got = _run(tmp_path / "r.onnx", X[:batch].astype(dtype))
        want = est.predict(X[:batch]).reshape(batch, -1)
        assert got.dtype == np.float64
        _close(got, want, dtype)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["annfast_estimator"] == "ANNRegressor"
    np.testing.assert_allclose(json.loads(meta["annfast_y_mean"]), est.y_mean_)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_onnx_classifier_equals_predict_proba(tmp_path, dtype):
    from annfast.sklearn import ANNClassifier

    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 4))
    y = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)]
    est = _fit(ANNClassifier((6,), "relu", max_iter=5, random_state=0, dtype=dtype), X, y)
    est.to_onnx(tmp_path / "c.onnx")
    model = onnx.load(str(tmp_path / "c.onnx"))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    classes = json.loads(meta["annfast_classes"])
    assert classes == ["cat", "dog", "emu"] and meta["annfast_estimator"] == "ANNClassifier"
    for batch in (1, 37):
        got = _run(tmp_path / "c.onnx", X[:batch].astype(dtype))
        assert got.dtype == np.float64
        _close(got, est.predict_proba(X[:batch]), dtype)
        assert np.array(classes)[got.argmax(axis=1)].tolist() == est.predict(X[:batch]).tolist()


def test_onnx_unfitted_estimator_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    from annfast.sklearn import ANNRegressor

    with pytest.raises(NotFittedError):
        ANNRegressor().to_onnx(tmp_path / "r.onnx")


def test_cli_export(tmp_path, capsys):
    net = _net(2, "relu", "sigmoid", "float32")
    net.save(tmp_path / "m.annf")
    assert main(["export", str(tmp_path / "m.annf"), str(tmp_path / "m.onnx")]) == 0
    X = np.random.default_rng(0).normal(size=(37, 4)).astype(np.float32)
    _close(_run(tmp_path / "m.onnx", X), net.predict(X), "float32")
    capsys.readouterr()
    assert main(["export", str(tmp_path / "missing.annf"), str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("annfast: error: ") and err.count("\n") == 1
    (tmp_path / "bad.annf").write_bytes(b"garbage")
    assert main(["export", str(tmp_path / "bad.annf"), str(tmp_path / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert "not an annfast model" in err and err.count("\n") == 1
    assert main(["export", str(tmp_path / "m.annf"), str(tmp_path / "nodir" / "x.onnx")]) == 2
    assert not (tmp_path / "x.onnx").exists()
