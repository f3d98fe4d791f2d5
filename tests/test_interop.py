"""Interop: ONNX export checked by onnxruntime, FANN .net files checked by independent NumPy and by libfann.

ONNX: onnxruntime's outputs must equal ``predict`` (float32 to 1e-6 relative, float64 to 1e-12) for every
activation, 1-3 hidden layers, batches of 1 and 37; the file passes onnx.checker and carries its metadata. These
tests are skipped when onnx or onnxruntime is missing (the ``onnx`` fixture).
FANN: hand-written files computed with FANN's formulas in NumPy, round trips, refused files, a Hypothesis fuzz of
the parser, and, where libfann is installed (floatfann/doublefann through ctypes), files written by FANN loaded
here and files written here run by fann_run.
"""
import json
import warnings

import numpy as np
import pytest

import annfast as af
from annfast.cli import main


@pytest.fixture
def onnx():
    """The onnx module; skips the test when onnx or onnxruntime is missing (the FANN tests need neither)."""
    pytest.importorskip("onnxruntime")
    return pytest.importorskip("onnx")

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
    ort = pytest.importorskip("onnxruntime")
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
def test_onnx_equals_predict(tmp_path, onnx, act, n_hidden, dtype):
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
def test_onnx_step_at_zero_and_ops(tmp_path, onnx, dtype):
    # a zero pre-activation gives 1, as annfast's step; the graph uses the named ONNX operators
    net = af.Network(2, [af.Dense(2, "step")], dtype=dtype)
    net.set_weights([(np.array([[1.0, -1.0], [0.0, 0.0]]), np.array([0.0, -0.0]))])
    net.to_onnx(tmp_path / "s.onnx")
    X = np.array([[1.0, 1.0], [0.0, 1.0], [2.0, 1.0]], dtype=dtype)
    np.testing.assert_array_equal(_run(tmp_path / "s.onnx", X), net.predict(X))
    ops = [n.op_type for n in onnx.load(str(tmp_path / "s.onnx")).graph.node]
    assert ops == ["Gemm", "GreaterOrEqual", "Cast", "Identity"]


def test_onnx_leaky_relu_uses_the_operator_when_exact(tmp_path, onnx):
    net = af.Network(3, [af.Dense(4, "leaky_relu", negative_slope=0.125), af.Dense(2, "softmax")])
    net.to_onnx(tmp_path / "l.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "l.onnx")).graph.node]
    assert ops == ["Gemm", "LeakyRelu", "Gemm", "Softmax", "Identity"]


def test_onnx_replaces_atomically_and_refuses_a_missing_directory(tmp_path, onnx):
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
def test_onnx_regressor_equals_predict(tmp_path, onnx, dtype, two_d):
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
def test_onnx_classifier_equals_predict_proba(tmp_path, onnx, dtype):
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


def test_cli_export(tmp_path, onnx, capsys):
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


# ---- FANN network files ----------------------------------------------------------------------------------------

FANN_TOL = {"float32": 1e-6, "float64": 1e-12}
# FANN 2.2's activation functions of x = steepness * sum (fann_activation.h), written out independently
FANN_FUNCS = {0: lambda x: x, 1: lambda x: np.where(x < 0, 0.0, 1.0), 2: lambda x: np.where(x < 0, -1.0, 1.0),
              3: lambda x: 1 / (1 + np.exp(-2 * x)), 5: lambda x: 2 / (1 + np.exp(-2 * x)) - 1}
FANN_HEAD = "FANN_FLO_2.1\nnum_layers={n}\nlearning_rate=0.700000\nconnection_rate={rate}\nnetwork_type={kind}\n" \
            "learning_momentum=0.000000\nlayer_sizes={sizes}\nscale_included=0\n"


def fann_text(sizes, layers, rate="1.000000", kind=0):
    """A FANN_FLO_2.1 file: sizes without bias neurons; layers of (W (n_out, n_in+1 with the bias last), code,
    steepness per neuron)."""
    with_bias = [s + 1 for s in sizes]
    neurons = ["(0, 0, 0.0)"] * with_bias[0]
    conns, first = [], 0
    for k, (M, code, steep) in enumerate(layers):
        steep = np.broadcast_to(steep, (M.shape[0],))
        neurons += [f"({with_bias[k]}, {code}, {float(s)!r})" for s in steep] + ["(0, 0, 0.0)"]
        conns += [f"({first + i}, {float(w)!r})" for row in M for i, w in enumerate(row)]
        first += with_bias[k]
    return (FANN_HEAD.format(n=len(sizes), rate=rate, kind=kind, sizes=" ".join(map(str, with_bias)))
            + "neurons (num_inputs, activation_function, activation_steepness)=" + " ".join(neurons) + " \n"
            + "connections (connected_to_neuron, weight)=" + " ".join(conns) + " \n")


def fann_forward(X, layers):
    """What fann_run computes (without its clipping at +-150/steepness, never reached here)."""
    a = np.asarray(X, dtype=np.float64)
    for M, code, steep in layers:
        s = M[:, :-1] @ a.T + M[:, -1:]
        a = FANN_FUNCS[code](np.asarray(steep, dtype=np.float64).reshape(-1, 1) * s).T
    return a


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_HIDDEN = np.array([[6.0, 6.0, -3.0], [-5.5, -5.25, 8.0], [1.5, -2.0, 0.25]])
XOR_OUT = np.array([[7.0, 7.5, -1.0, -5.0]])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden_code,out_code,steep", [
    (3, 3, 0.5), (3, 3, 1.0), (5, 3, 1.0), (5, 5, 0.5), (3, 0, 0.75), (1, 3, 2.0), (5, 1, 1.0), (0, 5, 0.3),
    (2, 3, 0.5), (2, 0, 1.0)])
def test_fann_handwritten_xor(tmp_path, dtype, hidden_code, out_code, steep):
    layers = [(XOR_HIDDEN, hidden_code, steep), (XOR_OUT, out_code, steep)]
    path = tmp_path / "xor.net"
    path.write_text(fann_text([2, 3, 1], layers))
    net = af.load_fann(path, dtype=dtype)
    names = {0: "linear", 1: "step", 2: "step", 3: "sigmoid", 5: "tanh"}     # symmetric threshold: folded
    assert [d.activation for d in net.layers] == [names[hidden_code], names[out_code]]
    assert net.dtype == np.dtype(dtype) and net.n_inputs == 2 and net.n_outputs == 1
    np.testing.assert_allclose(net.predict(XOR_X.astype(dtype)), fann_forward(XOR_X, layers), rtol=0,
                               atol=FANN_TOL[dtype])


def test_fann_per_neuron_steepness_and_permuted_connections(tmp_path):
    rng = np.random.default_rng(5)
    layers = [(rng.normal(size=(4, 4)), 5, np.array([0.5, 1.0, 2.0, 0.25])), (rng.normal(size=(2, 5)), 3, 0.5)]
    text = fann_text([3, 4, 2], layers)
    net = af.load_fann(_write(tmp_path, text))
    X = rng.normal(size=(37, 3))
    want = fann_forward(X, layers)
    np.testing.assert_allclose(net.predict(X), want, rtol=0, atol=1e-12)
    # the connections of one neuron in another order (each names its source neuron) load the same
    head, conns = text.split("connections (connected_to_neuron, weight)=")
    pairs = conns.split(")")[:-1]
    pairs[0:4] = pairs[0:4][::-1]
    net2 = af.load_fann(_write(tmp_path, head + "connections (connected_to_neuron, weight)=" + ")".join(pairs) + ")\n"))
    np.testing.assert_allclose(net2.predict(X), want, rtol=0, atol=1e-12)


def _write(tmp_path, text, name="n.net"):
    path = tmp_path / name
    path.write_bytes(text.encode("ascii") if isinstance(text, str) else text)
    return path


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("acts", [("sigmoid", "sigmoid"), ("tanh", "linear"), ("step", "tanh"),
                                  ("linear", "step"), ("tanh", "sigmoid")])
@pytest.mark.parametrize("n_hidden", [1, 2, 3])
def test_fann_round_trip(tmp_path, dtype, acts, n_hidden):
    net = _net(n_hidden, acts[0], acts[1], dtype)
    net.save_fann(tmp_path / "r.net")
    back = af.load_fann(tmp_path / "r.net", dtype=dtype)
    assert [(d.units, d.activation) for d in back.layers] == [(d.units, d.activation) for d in net.layers]
    X = np.random.default_rng(9).normal(size=(37, 4)).astype(dtype)
    np.testing.assert_allclose(back.predict(X), net.predict(X), rtol=FANN_TOL[dtype], atol=FANN_TOL[dtype])
    if dtype == "float64":
        np.testing.assert_array_equal(back.parameters, net.parameters)   # every digit written


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "softmax"])
def test_fann_save_refuses_what_fann_lacks(tmp_path, act):
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(3, act)])
    (tmp_path / "old.net").write_text("keep")
    with pytest.raises(af.FannFileError, match=f"layer 1 is '{act}', which FANN 2.2 does not have"):
        net.save_fann(tmp_path / "old.net")
    assert (tmp_path / "old.net").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.net"]


GOOD = fann_text([2, 3, 1], [(XOR_HIDDEN, 3, 0.5), (XOR_OUT, 3, 0.5)])


@pytest.mark.parametrize("text,message", [
    (GOOD.replace("network_type=0", "network_type=1"), "shortcut network"),
    (GOOD.replace("connection_rate=1.000000", "connection_rate=0.500000"), "sparsely connected"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 4, 0.5)", 1), "mixes activation functions"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 4, 0.5)"), r"FANN_SIGMOID_STEPWISE \(4\), which annfast cannot"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 10, 0.5)"), r"FANN_ELLIOT \(10\)"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 12, 0.5)"), r"FANN_LINEAR_PIECE \(12\)"),
    (GOOD.replace("(4, 3, 0.5)", "(4, 2, 0.5)"), r"output layer uses FANN_THRESHOLD_SYMMETRIC \(2\), whose -1/1"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 7, 0.5)"), r"FANN_GAUSSIAN \(7\)"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 16, 0.5)"), r"FANN_SIN \(16\)"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 18, 0.5)"), "unknown to FANN 2.2"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 3, 0.0)"), "steepness 0.0; expected > 0"),
    (GOOD.replace("(3, 3, 0.5)", "(2, 3, 0.5)", 1), "sparse or shortcut connections"),
    (GOOD.replace("(0, 6.0)", "(4, 6.0)", 1), "sparse or shortcut connections"),
    (GOOD.replace("FANN_FLO_2.1", "FANN_FIX_2.1"), "fixed-point"),
    (GOOD.replace("FANN_FLO_2.1", "FANN_FLO_1.1"), "FANN_FLO_1.1' is not supported"),
    ("hello\n", "not a FANN network file"),
    ("", "empty"),
    (GOOD.replace("layer_sizes=3 4 2", "layer_sizes=3 4 2 2"), "num_layers=3"),
    (GOOD.replace("layer_sizes=3 4 2", "layer_sizes=3 40000 2"), "neurons but layer_sizes"),
    (GOOD.replace("layer_sizes=3 4 2", "layer_sizes=3 4000000000 2"), "more than the limit"),
    (GOOD.replace("layer_sizes=3 4 2", "layer_sizes=3 9999999999 9999999999"), "more than the limit"),
    (GOOD.replace("num_layers=3", "num_layers=999"), "num_layers='999'; expected an integer in"),
    (GOOD.replace("6.0", "1e999", 1), "out of range"),
    (GOOD.replace("6.0", "nan", 1), "triples|pairs"),
    (GOOD.rsplit("(", 1)[0] + "\n", "12 connections but the neurons have 13"),
    (GOOD[:-20], "pairs"),
    (GOOD.replace("num_layers=3\n", ""), "missing the line num_layers"),
    (GOOD + "num_layers=3\n", "appears twice"),
    (GOOD.replace("(0, 6.0)", "(0, 6.0) junk", 1), "pairs"),
    # finite weights and steepness whose product overflows: refused, and no RuntimeWarning on the way
    (GOOD.replace("(3, 3, 0.5)", "(3, 3, 1e308)", 1), "a weight times the steepness overflows"),
    (GOOD.replace("(3, 3, 0.5)", "(3, 5, 1e308)"), "a weight times the steepness overflows"),
    (fann_text([2, 3, 1], [(XOR_HIDDEN, 2, 1.0), (XOR_OUT * 2e307, 0, 1.0)]), "folding FANN_THRESHOLD_SYMMETRIC"),
])
def test_fann_bad_files(tmp_path, text, message):
    with pytest.raises(af.FannFileError, match=message):
        af.load_fann(_write(tmp_path, text))


def test_fann_error_is_a_model_file_error_and_os_errors_stay(tmp_path):
    assert issubclass(af.FannFileError, af.ModelFileError) and issubclass(af.FannFileError, ValueError)
    with pytest.raises(FileNotFoundError):
        af.load_fann(tmp_path / "missing.net")
    with pytest.raises(IsADirectoryError):
        af.load_fann(tmp_path)
    with pytest.raises(af.FannFileError, match="does not fit in float32"):
        af.load_fann(_write(tmp_path, GOOD.replace("6.0", "1e300", 1)), dtype="float32")


def test_fann_parser_fuzz():
    """Mutated and random files: only FannFileError, and nothing allocated beyond what the bytes hold."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from annfast import _fann

    good = GOOD.encode("ascii")

    def check(data):
        try:
            _fann.parse(data, "fuzz")
        except af.FannFileError:
            pass

    edits = st.lists(st.tuples(st.integers(0, len(good)), st.integers(0, 8), st.binary(max_size=8)), max_size=6)

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(edits)
    def mutated(changes):
        data = bytearray(good)
        for pos, cut, insert in changes:
            data[pos:pos + cut] = insert
        check(bytes(data))

    tokens = st.sampled_from(["FANN_FLO_2.1\n", "num_layers=", "layer_sizes=", "connection_rate=1\n",
                              "network_type=0\n", "neurons (num_inputs, activation_function, activation_steepness)=",
                              "connections (connected_to_neuron, weight)=", "(", ")", ", ", " ", "\n", "0", "1", "3",
                              "5", "4294967295", "9" * 30, "-1", "1e308", ".5", "e", "2 3 1", "=", "\r\n"])

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(tokens, max_size=60))
    def assembled(parts):
        check("".join(parts).encode("ascii"))

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(max_size=200))
    def random_bytes(data):
        check(b"FANN_FLO_2.1\n" + data)
        check(data)

    mutated()
    assembled()
    random_bytes()


def test_fann_huge_declared_sizes_from_a_small_file(tmp_path):
    import tracemalloc

    text = GOOD.replace("layer_sizes=3 4 2", "layer_sizes=30000 40000 20000")
    tracemalloc.start()
    with pytest.raises(af.FannFileError):
        af.load_fann(_write(tmp_path, text))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 1 << 20


# ---- cross-checks with libfann itself (apt-get install libfann-dev); skipped without it ------------------------

def _libfann(dtype):
    import ctypes
    import ctypes.util

    name = {"float32": "floatfann", "float64": "doublefann"}[dtype]
    found = ctypes.util.find_library(name)
    if found is None:
        pytest.skip(f"lib{name} is not installed (apt-get install libfann-dev)")
    lib = ctypes.CDLL(found)
    real = ctypes.c_float if dtype == "float32" else ctypes.c_double
    ptr, uint = ctypes.c_void_p, ctypes.c_uint
    for fn, res, args in [("fann_create_standard_array", ptr, [uint, ctypes.POINTER(uint)]),
                          ("fann_create_from_file", ptr, [ctypes.c_char_p]),
                          ("fann_set_activation_function_hidden", None, [ptr, ctypes.c_int]),
                          ("fann_set_activation_function_output", None, [ptr, ctypes.c_int]),
                          ("fann_set_activation_steepness_hidden", None, [ptr, real]),
                          ("fann_set_activation_steepness_output", None, [ptr, real]),
                          ("fann_randomize_weights", None, [ptr, real, real]),
                          ("fann_save", ctypes.c_int, [ptr, ctypes.c_char_p]),
                          ("fann_run", ctypes.POINTER(real), [ptr, ctypes.POINTER(real)]),
                          ("fann_get_num_output", uint, [ptr]),
                          ("fann_destroy", None, [ptr])]:
        getattr(lib, fn).restype = res
        getattr(lib, fn).argtypes = args
    return lib, real


def _fann_run(lib, real, ann, X):
    n_out = lib.fann_get_num_output(ann)
    out = np.empty((X.shape[0], n_out))
    for i, row in enumerate(X):
        res = lib.fann_run(ann, (real * len(row))(*row.tolist()))
        out[i] = [res[j] for j in range(n_out)]
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden,output,steep", [(3, 3, 0.5), (5, 5, 1.0), (3, 0, 0.7), (5, 3, 0.25), (1, 5, 1.0),
                                                (2, 3, 0.5)])
def test_libfann_written_network_loads(tmp_path, dtype, hidden, output, steep):
    import ctypes

    lib, real = _libfann(dtype)
    sizes = (ctypes.c_uint * 4)(3, 5, 4, 2)
    ann = lib.fann_create_standard_array(4, sizes)
    try:
        lib.fann_set_activation_function_hidden(ann, hidden)
        lib.fann_set_activation_function_output(ann, output)
        lib.fann_set_activation_steepness_hidden(ann, steep)
        lib.fann_set_activation_steepness_output(ann, steep)
        lib.fann_randomize_weights(ann, -1.5, 1.5)
        assert lib.fann_save(ann, str(tmp_path / "f.net").encode()) == 0
        X = np.random.default_rng(2).normal(size=(37, 3)).astype(dtype)
        want = _fann_run(lib, real, ann, X)
    finally:
        lib.fann_destroy(ann)
    net = af.load_fann(tmp_path / "f.net", dtype=dtype)
    np.testing.assert_allclose(net.predict(X), want, rtol=0, atol=FANN_TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("acts", [("sigmoid", "sigmoid"), ("tanh", "linear"), ("step", "tanh"), ("tanh", "step")])
def test_annfast_written_network_runs_in_libfann(tmp_path, dtype, acts):
    lib, real = _libfann(dtype)
    net = _net(2, acts[0], acts[1], dtype)
    net.save_fann(tmp_path / "a.net")
    ann = lib.fann_create_from_file(str(tmp_path / "a.net").encode())
    assert ann, "FANN refused the file"
    try:
        X = np.random.default_rng(3).normal(size=(37, 4)).astype(dtype)
        got = _fann_run(lib, real, ann, X)
    finally:
        lib.fann_destroy(ann)
    np.testing.assert_allclose(got, net.predict(X), rtol=0, atol=FANN_TOL[dtype])


def test_cli_reads_fann_files(tmp_path, capsys):
    net = _net(1, "tanh", "sigmoid", "float64")
    net.save_fann(tmp_path / "m.net")
    X = np.random.default_rng(1).normal(size=(5, 4))
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    assert main(["predict", str(tmp_path / "m.net"), str(tmp_path / "x.csv")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "output1,output2,output3"
    np.testing.assert_allclose(np.array([[float(c) for c in line.split(",")] for line in lines[1:]]),
                               net.predict(X), rtol=1e-12)
    assert main(["info", str(tmp_path / "m.net")]) == 0
    text = capsys.readouterr().out
    assert "FANN network file (FANN_FLO_2.1)" in text and "4 inputs -> 5 tanh -> 3 sigmoid" in text
    assert main(["info", "--json", str(tmp_path / "m.net")]) == 0
    assert json.loads(capsys.readouterr().out)["n_params"] == net.n_params
    (tmp_path / "bad.net").write_text(GOOD.replace("network_type=0", "network_type=1"))
    for command in (["info"], ["predict"]):
        argv = command + [str(tmp_path / "bad.net")] + ([str(tmp_path / "x.csv")] if command == ["predict"] else [])
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("annfast: error: ") and "shortcut network" in err and err.count("\n") == 1


def test_cli_exports_a_fann_file(tmp_path, capsys, onnx):
    net = _net(2, "sigmoid", "linear", "float64")
    net.save_fann(tmp_path / "m.net")
    assert main(["export", str(tmp_path / "m.net"), str(tmp_path / "m.onnx")]) == 0
    X = np.random.default_rng(1).normal(size=(37, 4))
    _close(_run(tmp_path / "m.onnx", X), net.predict(X), "float64")


def test_load_of_a_fann_file_points_to_load_fann(tmp_path):
    _write(tmp_path, GOOD)
    with pytest.raises(af.ModelFileError, match="looks like a FANN network file: read it with annfast.load_fann"):
        af.load(tmp_path / "n.net")


def test_import_annfast_imports_no_onnx(tmp_path):
    import subprocess
    import sys

    code = ("import sys, annfast as af; af.Network(2, [af.Dense(1)]); "
            "assert 'onnx' not in sys.modules and 'onnxruntime' not in sys.modules, 'onnx imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)   # (not the source tree's annfast/)
