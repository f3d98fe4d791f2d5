"""ONNX export: write a Network (or a fitted annfast.sklearn estimator) as a standard ONNX graph.

The graph takes one input named "input" of shape (batch, n_inputs) and gives one output named "output"
of shape (batch, n_outputs); the batch dimension is dynamic. Each layer is a ``Gemm`` (``z = x W^T + b``,
with W of shape (n_out, n_in) as ``get_weights`` returns it) followed by its activation:

    linear      nothing                      sigmoid   Sigmoid
    tanh        Tanh                         relu      Relu
    leaky_relu  LeakyRelu(alpha) when alpha is a float32 number, else Where(z < 0, alpha * z, z)
                (an ONNX attribute is float32, so a float64 slope such as 0.1 takes the exact form)
    step        Cast(GreaterOrEqual(z, 0))   (annfast's step: 1 if z >= 0 else 0)
    softmax     Softmax(axis=-1)

Everything is computed in the network's dtype (float32 or float64), as annfast computes it. The model's
``metadata_props`` hold ``annfast_version`` and ``annfast_network`` (JSON: n_inputs, layers, dtype, loss).
The ``onnx`` package is an optional extra (``pip install "annfast[onnx]"``), imported only here, only when
an export is asked for; the file is written atomically like ``Network.save``.
"""
from __future__ import annotations

import json

import numpy as np

OPSET = 17          # onnxruntime >= 1.13 runs it; GreaterOrEqual needs >= 12, Softmax(axis=-1) per row >= 13
IR_VERSION = 8      # the IR version of opset 17 (ONNX 1.12); newer runtimes read older IR versions


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise ImportError('ONNX export needs the onnx package, an optional extra of annfast: '
                          'pip install "annfast[onnx]"') from exc
    return onnx, helper, numpy_helper


def network_description(net) -> dict:
    """Return the JSON-ready description stored in the metadata: n_inputs, layers, dtype, loss."""
    return {"n_inputs": net.n_inputs,
            "layers": [{"units": d.units, "activation": d.activation, "negative_slope": d.negative_slope}
                       for d in net.layers],
            "dtype": net.dtype.name, "loss": net.loss}


class _Graph:
    """A tiny builder: nodes, constant initializers and unique names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.inits = [], []

    def const(self, name: str, array: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array), name=name))
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(self.helper.make_node(op_type, inputs, [output], name=f"{output}_{op_type}", **attrs))
        return output


def _activation(g: _Graph, layer, k: int, z: str, dtype: np.dtype, tensor_type: int) -> str:
    act, a = layer.activation, f"a{k}"
    if act == "linear":
        return z
    if act == "sigmoid":
        return g.op("Sigmoid", [z], a)
    if act == "tanh":
        return g.op("Tanh", [z], a)
    if act == "relu":
        return g.op("Relu", [z], a)
    if act == "softmax":
        return g.op("Softmax", [z], a, axis=-1)
    if act == "step":
        zero = g.const(f"zero{k}", np.zeros((), dtype=dtype))
        ge = g.op("GreaterOrEqual", [z, zero], f"ge{k}")
        return g.op("Cast", [ge], a, to=tensor_type)
    if act == "leaky_relu":
        slope = dtype.type(layer.negative_slope)
        if float(np.float32(slope)) == float(slope):
            return g.op("LeakyRelu", [z], a, alpha=float(slope))
        # annfast: z < 0 ? alpha * z : z, with alpha in the network's dtype
        zero = g.const(f"zero{k}", np.zeros((), dtype=dtype))
        alpha = g.const(f"alpha{k}", np.array(slope, dtype=dtype))
        neg = g.op("Less", [z, zero], f"neg{k}")
        scaled = g.op("Mul", [z, alpha], f"scaled{k}")
        return g.op("Where", [neg, scaled, z], a)
    raise ValueError(f"layer {k}: activation {act!r} has no ONNX form")   # unreachable: Dense checks the names


def build(net, extra_metadata: dict | None = None, y_mean=None, y_scale=None, float64_output: bool = False):
    """Return the ``onnx.ModelProto`` of ``net`` (see the module docstring).

    Parameters
    ----------
    net : Network
    extra_metadata : dict of str to str, optional
        More ``metadata_props`` entries.
    y_mean, y_scale : ndarray of shape (n_outputs,), optional
        Append ``output = net_output * y_scale + y_mean`` (an ANNRegressor's un-standardization).
    float64_output : bool, default=False
        Cast the network's output to float64 first (what the estimators' predict methods return).
    """
    onnx, helper, numpy_helper = _onnx()
    dtype = net.dtype
    tensor_type = helper.np_dtype_to_tensor_dtype(dtype)
    g = _Graph(helper, numpy_helper)
    x = "input"
    weights = net.get_weights()
    for k, (layer, (W, b)) in enumerate(zip(net.layers, weights)):
        Wn = g.const(f"W{k}", W.astype(dtype, copy=False))
        bn = g.const(f"b{k}", b.astype(dtype, copy=False))
        z = g.op("Gemm", [x, Wn, bn], f"z{k}", transB=1)
        x = _activation(g, layer, k, z, dtype, tensor_type)
    out_type = tensor_type
    if float64_output and dtype != np.float64:
        x = g.op("Cast", [x], "net_output_f64", to=helper.np_dtype_to_tensor_dtype(np.dtype(np.float64)))
        out_type = helper.np_dtype_to_tensor_dtype(np.dtype(np.float64))
    if y_mean is not None:
        odt = np.float64 if float64_output else dtype
        scale = g.const("y_scale", np.asarray(y_scale, dtype=odt))
        mean = g.const("y_mean", np.asarray(y_mean, dtype=odt))
        x = g.op("Mul", [x, scale], "y_scaled")
        x = g.op("Add", [x, mean], "y_unscaled")
    g.nodes.append(helper.make_node("Identity", [x], ["output"], name="output_Identity"))
    graph = helper.make_graph(
        g.nodes, "annfast_network",
        [helper.make_tensor_value_info("input", tensor_type, ["batch", net.n_inputs])],
        [helper.make_tensor_value_info("output", out_type, ["batch", net.n_outputs])],
        initializer=g.inits)
    from . import __version__

    model = helper.make_model(graph, producer_name="annfast", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    meta = {"annfast_version": __version__, "annfast_network": json.dumps(network_description(net), sort_keys=True)}
    meta.update(extra_metadata or {})
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model


def save(model, path) -> None:
    """Serialize ``model`` and write it to ``path`` atomically (see ``_io.write_atomic``)."""
    from . import _io

    _io.write_atomic(path, [model.SerializeToString()], "the ONNX model")


def export_network(net, path) -> None:
    """Write ``net`` to ``path`` as an ONNX model (``Network.to_onnx``)."""
    with net._whole():
        model = build(net)
    save(model, path)


def export_regressor(est, path) -> None:
    """Write a fitted ANNRegressor: float64 ``output`` equal to ``est.predict`` (always 2-D)."""
    net = est.network_
    with net._whole():
        model = build(net, {"annfast_estimator": "ANNRegressor",
                            "annfast_y_mean": json.dumps(np.asarray(est.y_mean_, dtype=float).tolist()),
                            "annfast_y_scale": json.dumps(np.asarray(est.y_scale_, dtype=float).tolist())},
                      y_mean=est.y_mean_, y_scale=est.y_scale_, float64_output=True)
    save(model, path)


def export_classifier(est, path) -> None:
    """Write a fitted ANNClassifier: float64 ``output`` equal to ``est.predict_proba``; labels in metadata."""
    net = est.network_
    labels = est.classes_.tolist()
    try:
        text = json.dumps(labels)
    except (TypeError, ValueError):
        raise ValueError(f"{type(est).__name__}.to_onnx: the class labels cannot be stored in JSON "
                         f"({labels[:10]!r}); refit with numbers or strings as labels") from None
    with net._whole():
        model = build(net, {"annfast_estimator": "ANNClassifier", "annfast_classes": text}, float64_output=True)
    save(model, path)
