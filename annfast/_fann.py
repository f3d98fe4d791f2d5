"""FANN network files: read and write the ``.net`` text format of the FANN library (FANN_FLO_2.1).

What the format holds (FANN 2.2's ``fann_save_internal_fd`` and ``fann_create_from_fd`` in fann_io.c): a first
line ``FANN_FLO_2.1`` (2.0 files, which lack the scaling lines, read the same), then one ``key=value`` line per
setting: ``num_layers`` (input layer included), ``connection_rate``, ``network_type`` (0 layered, 1 shortcut),
training and cascade settings that annfast ignores, ``layer_sizes`` (each size *includes* the layer's bias
neuron, also in the output layer, where it is unused), ``scale_included`` and the scaling vectors (used only by
``fann_scale_input``/``fann_scale_output``, never by ``fann_run``, so ignored here), then

    neurons (num_inputs, activation_function, activation_steepness)=(n, f, s) (n, f, s) ...

one triple per neuron of every layer in order (input and bias neurons have 0 inputs), and

    connections (connected_to_neuron, weight)=(i, w) (i, w) ...

the inputs of each neuron in order, ``i`` a global neuron index. In a fully connected layered network a neuron
of layer l has one connection to each neuron of layer l-1, the bias neuron (value 1) last.

``fann_run`` computes for each neuron ``x = s * sum(w * input)``, clips x to +-150/s, then the activation
(fann_activation.h, codes of ``enum fann_activationfunc_enum`` in FANN 2.2's fann_data.h):

    0 FANN_LINEAR              x                    annfast "linear", W and b scaled by s
    1 FANN_THRESHOLD           x < 0 ? 0 : 1        annfast "step" (the same at 0; s > 0 changes no sign)
    2 FANN_THRESHOLD_SYMMETRIC x < 0 ? -1 : 1       in a hidden layer: annfast "step", the next layer taking
                                                    2 W' and b' - W' 1 (W' (2 step - 1) + b' is the same sum)
    3 FANN_SIGMOID             1 / (1 + exp(-2 x))  annfast "sigmoid", W and b scaled by 2 s
    5 FANN_SIGMOID_SYMMETRIC   tanh(x)              annfast "tanh", W and b scaled by s

Scaling the weights by the steepness is exact up to one rounding per weight. Everything else is refused with a
``FannFileError`` naming it: FANN_THRESHOLD_SYMMETRIC in the output layer (annfast has no -1/1 output), the
stepwise (4, 6), gaussian (7-9), Elliot (10, 11), linear piece (12, 13) and sine/cosine (14-17) functions, unknown
codes (FANN 2.2 defines 0-17), shortcut networks (network_type 1, which cascade training makes), sparse networks
(connection_rate < 1, or a neuron without one connection to each neuron of the layer before), fixed-point
files (FANN_FIX_*), the old 1.1 format, different activation functions within one layer, and a steepness
that is not a finite number > 0. The one difference that remains is FANN's clipping of x to +-150/s: a linear
layer of FANN stops at +-150, annfast's does not (the sigmoids are saturated there anyway).

Reading is strict and bounded like ``annfast.load``: the file must be ASCII, at most MAX_BYTES, every count must
match what the file holds, and nothing is allocated in proportion to a declared size before it has been
checked against the entries actually present. Any malformed file raises ``FannFileError`` (a
``ModelFileError``, so a ``ValueError``), never anything else. Writing (``Network.save_fann``) produces what
FANN 2.2 writes (its default settings for the training fields) and goes through ``_io.write_atomic``.
"""
from __future__ import annotations

import os
import re

import numpy as np

from ._io import MAX_LAYERS, MAX_PARAMS, ModelFileError, open_regular, write_atomic

MAX_BYTES = 1 << 29          # 512 MiB of text: about 20 million connections
HEADERS = ("FANN_FLO_2.1", "FANN_FLO_2.0")
NEURONS_KEY = "neurons (num_inputs, activation_function, activation_steepness)"
CONNECTIONS_KEY = "connections (connected_to_neuron, weight)"

# enum fann_activationfunc_enum of FANN 2.2 (fann_data.h)
FANN_ACTIVATIONS = ("FANN_LINEAR", "FANN_THRESHOLD", "FANN_THRESHOLD_SYMMETRIC", "FANN_SIGMOID",
                    "FANN_SIGMOID_STEPWISE", "FANN_SIGMOID_SYMMETRIC", "FANN_SIGMOID_SYMMETRIC_STEPWISE",
                    "FANN_GAUSSIAN", "FANN_GAUSSIAN_SYMMETRIC", "FANN_GAUSSIAN_STEPWISE", "FANN_ELLIOT",
                    "FANN_ELLIOT_SYMMETRIC", "FANN_LINEAR_PIECE", "FANN_LINEAR_PIECE_SYMMETRIC", "FANN_SIN_SYMMETRIC",
                    "FANN_COS_SYMMETRIC", "FANN_SIN", "FANN_COS")
# FANN code -> (annfast activation, factor of the steepness folded into W and b)
_FROM_FANN = {0: ("linear", 1.0), 1: ("step", 0.0), 2: ("step_symmetric", 0.0), 3: ("sigmoid", 2.0),
              5: ("tanh", 1.0)}
# annfast activation -> (FANN code, steepness) written by save
_TO_FANN = {"linear": (0, 1.0), "step": (1, 1.0), "sigmoid": (3, 0.5), "tanh": (5, 1.0)}

# unambiguous (no two ways to split a run of digits), so a failed match backtracks in linear time
_NUM = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_INT = r"[0-9]{1,10}"
_NEURONS_RE = re.compile(rf"(?:\s*\(\s*{_INT}\s*,\s*{_INT}\s*,\s*{_NUM}\s*\))*\s*", re.ASCII)
_CONNECTIONS_RE = re.compile(rf"(?:\s*\(\s*{_INT}\s*,\s*{_NUM}\s*\))*\s*", re.ASCII)
_SIZES_RE = re.compile(rf"(?:\s*{_INT})*\s*", re.ASCII)
_KEY_RE = re.compile(r"[a-z_]+(?: \([a-z_, ]+\))?", re.ASCII)
_PUNCTUATION = str.maketrans("(),", "   ")

# FANN 2.2's defaults (fann_create_standard) for the settings annfast has no use for, in the order it writes them
_DEFAULT_SETTINGS = (
    ("learning_rate", "0.700000"), ("connection_rate", "1.000000"), ("network_type", "0"),
    ("learning_momentum", "0.000000"), ("training_algorithm", "2"), ("train_error_function", "1"),
    ("train_stop_function", "0"), ("cascade_output_change_fraction", "0.010000"),
    ("quickprop_decay", "-0.000100"), ("quickprop_mu", "1.750000"), ("rprop_increase_factor", "1.200000"),
    ("rprop_decrease_factor", "0.500000"), ("rprop_delta_min", "0.000000"), ("rprop_delta_max", "50.000000"),
    ("rprop_delta_zero", "0.100000"), ("cascade_output_stagnation_epochs", "12"),
    ("cascade_candidate_change_fraction", "0.010000"), ("cascade_candidate_stagnation_epochs", "12"),
    ("cascade_max_out_epochs", "150"), ("cascade_min_out_epochs", "50"), ("cascade_max_cand_epochs", "150"),
    ("cascade_min_cand_epochs", "50"), ("cascade_num_candidate_groups", "2"),
    ("bit_fail_limit", "3.49999999999999977796e-01"), ("cascade_candidate_limit", "1.00000000000000000000e+03"),
    ("cascade_weight_multiplier", "4.00000000000000022204e-01"), ("cascade_activation_functions_count", "10"),
    ("cascade_activation_functions", "3 5 7 8 10 11 14 15 16 17 "), ("cascade_activation_steepnesses_count", "4"),
    ("cascade_activation_steepnesses", "2.50000000000000000000e-01 5.00000000000000000000e-01 "
                                       "7.50000000000000000000e-01 1.00000000000000000000e+00 "),
)


class FannFileError(ModelFileError):
    """A FANN network file is malformed, or describes a network annfast cannot represent exactly."""


# ---- reading ---------------------------------------------------------------------------------------

def read(path) -> tuple[int, list[tuple[np.ndarray, np.ndarray, str]], str]:
    """Read a FANN .net file; return (n_inputs, [(W, b, activation) per layer], header line).

    W has shape (n_out, n_in), float64, with the steepness folded in (see the module docstring).

    Raises
    ------
    FannFileError
        For anything that is not a FANN_FLO_2.x file of a fully connected layered network annfast represents.
    OSError
        If the file cannot be opened or read.
    """
    path = os.fspath(path)
    fh, size = open_regular(path, FannFileError, "a FANN network file")
    with fh:
        if size > MAX_BYTES:
            raise FannFileError(f"{path}: {size} bytes, more than the limit of {MAX_BYTES} for a FANN network file")
        data = fh.read(size + 1)    # read(n) allocates n bytes first: never more than the file's size
    return parse(data, path)


def parse(data: bytes, where: str = "<FANN file>"):   # long: one pass over the format's fields, in file order
    """Parse the bytes of a FANN .net file (see ``read``); ``where`` names it in messages."""
    def bad(what):
        raise FannFileError(f"{where}: {what}")

    if len(data) > MAX_BYTES:
        bad(f"more than {MAX_BYTES} bytes, the limit for a FANN network file")
    if not data:
        bad("the file is empty, not a FANN network file")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        bad(f"not a FANN network file (a byte that is not ASCII at offset {exc.start})")
    lines = text.split("\n")
    header = lines[0].strip()
    if header not in HEADERS:
        if header.startswith("FANN_FIX_"):
            bad(f"{_short(header)} is a fixed-point FANN file; annfast reads floating-point ones (FANN_FLO_2.1): "
                "save the network with floatfann or doublefann")
        if header.startswith("FANN_FLO_"):
            bad(f"FANN format {_short(header)} is not supported; annfast reads FANN_FLO_2.1 (and 2.0)")
        bad(f"not a FANN network file (first line {_short(header)}, expected FANN_FLO_2.1)")
    fields: dict[str, tuple[int, str]] = {}
    for number, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not _KEY_RE.fullmatch(key):
            bad(f"line {number}: expected key=value, got {_short(line)}")
        if key in fields:
            bad(f"line {number}: {key} appears twice")
        fields[key] = (number, value)

    def field(key):
        if key not in fields:
            bad(f"missing the line {key}=...")
        return fields[key]

    def integer(key, low, high):
        number, value = field(key)
        value = value.strip()
        if not re.fullmatch(_INT, value) or not low <= int(value) <= high:
            bad(f"line {number}: {key}={_short(value)}; expected an integer in [{low}, {high}]")
        return int(value)

    if fields.get("decimal_point") is not None:
        bad("a fixed-point network (decimal_point=...); annfast reads floating-point FANN files")
    network_type = integer("network_type", 0, 1 << 31)
    if network_type == 1:
        bad("network_type=1: a shortcut network (every layer connected to all layers before it, as cascade "
            "training builds), which annfast's layered networks cannot represent")
    if network_type != 0:
        bad(f"network_type={network_type} is unknown (0 layered, 1 shortcut)")
    number, rate = field("connection_rate")
    try:
        rate_value = float(rate) if re.fullmatch(_NUM, rate.strip()) else None
    except ValueError:
        rate_value = None
    if rate_value is None:
        bad(f"line {number}: connection_rate={_short(rate)} is not a number")
    if rate_value != 1.0:
        bad(f"connection_rate={rate.strip()}: a sparsely connected network, which annfast cannot represent "
            "(it needs every neuron connected to every neuron of the layer before)")
    n_layers = integer("num_layers", 2, MAX_LAYERS + 1)
    number, value = field("layer_sizes")
    if not _SIZES_RE.fullmatch(value):
        bad(f"line {number}: layer_sizes must be integers, got {_short(value)}")
    sizes = [int(s) for s in value.split()]
    if len(sizes) != n_layers:
        bad(f"line {number}: layer_sizes has {len(sizes)} sizes but num_layers={n_layers}")
    if min(sizes) < 2:
        bad(f"line {number}: layer_sizes {sizes}: each layer has at least one neuron and its bias neuron")
    n_conn = sum(sizes[k - 1] * (sizes[k] - 1) for k in range(1, n_layers))
    n_params = n_conn    # the biases are connections too
    if n_params > MAX_PARAMS:
        bad(f"layer_sizes {_short(sizes)} describe {n_params} weights, more than the limit of {MAX_PARAMS}")

    number, value = field(NEURONS_KEY)
    if not _NEURONS_RE.fullmatch(value):
        bad(f"line {number}: the neurons must be triples (num_inputs, activation_function, steepness)")
    # the entries present bound every allocation below: at least 7 bytes each, so no more than the file holds
    neurons = _numbers(value, 3, where, number)
    if neurons.shape[0] != sum(sizes):
        bad(f"line {number}: {neurons.shape[0]} neurons but layer_sizes {_short(sizes)} make {sum(sizes)}")
    number_c, value_c = field(CONNECTIONS_KEY)
    if not _CONNECTIONS_RE.fullmatch(value_c):
        bad(f"line {number_c}: the connections must be pairs (connected_to_neuron, weight)")
    conns = _numbers(value_c, 2, where, number_c)
    firsts = np.cumsum([0] + sizes)
    n_inputs_of = neurons[:, 0]
    for k in range(n_layers):
        first, size = int(firsts[k]), sizes[k]
        counts = n_inputs_of[first:first + size]
        bias = counts[-1]
        if bias != 0:
            bad(f"the bias neuron (the last) of layer {k} has {int(bias)} inputs; a bias neuron has none")
        expected = 0 if k == 0 else sizes[k - 1]
        wrong = np.flatnonzero(counts[:-1] != expected)
        if wrong.size:
            j = int(wrong[0])
            if k == 0:
                bad(f"input neuron {j} has {int(counts[j])} inputs; input neurons have none")
            bad(f"neuron {j} of layer {k} has {int(counts[j])} inputs, not one from each of the {expected} neurons "
                "of the layer before (with its bias): sparse or shortcut connections, which annfast cannot "
                "represent")
    if conns.shape[0] != n_conn:
        bad(f"line {number_c}: {conns.shape[0]} connections but the neurons have {n_conn} inputs")
    layers = []
    pos = 0
    for k in range(1, n_layers):
        n_prev, n_out = sizes[k - 1], sizes[k] - 1
        first = int(firsts[k])
        funcs = neurons[first:first + n_out, 1]
        steep = neurons[first:first + n_out, 2]
        code = int(funcs[0])
        if (funcs != funcs[0]).any():
            other = int(funcs[np.flatnonzero(funcs != funcs[0])[0]])
            bad(f"layer {k} mixes activation functions ({_fann_name(code)} and {_fann_name(other)}); annfast uses "
                "one per layer")
        if code not in _FROM_FANN:
            bad(f"layer {k} uses {_fann_name(code)}, which annfast cannot represent exactly (it reads "
                "FANN_LINEAR, FANN_THRESHOLD, FANN_SIGMOID, FANN_SIGMOID_SYMMETRIC, and FANN_THRESHOLD_SYMMETRIC in "
                "hidden layers)")
        if code == 2 and k == n_layers - 1:
            bad(f"the output layer uses {_fann_name(code)}, whose -1/1 outputs annfast cannot represent (in a "
                "hidden layer it is folded into the next layer)")
        if not (steep > 0).all():
            bad(f"layer {k}: activation steepness {float(steep[np.flatnonzero(~(steep > 0))[0]])!r}; expected > 0")
        activation, factor = _FROM_FANN[code]
        block = conns[pos:pos + n_out * n_prev]
        pos += n_out * n_prev
        local = block[:, 0].reshape(n_out, n_prev) - int(firsts[k - 1])
        if not (np.sort(local, axis=1) == np.arange(n_prev)).all():
            bad(f"layer {k}: a neuron is not connected once to each neuron of layer {k - 1} (its connections "
                f"name other neurons): sparse or shortcut connections, which annfast cannot represent")
        order = local.astype(np.int64)
        M = np.empty((n_out, n_prev))
        np.put_along_axis(M, order, block[:, 1].reshape(n_out, n_prev), axis=1)
        if factor:
            with np.errstate(over="ignore", invalid="ignore"):   # overflow is refused below, not warned about
                M *= (factor * steep)[:, None]
        if not np.isfinite(M).all():
            bad(f"layer {k}: a weight times the steepness overflows")
        layers.append([M[:, :-1].copy(), M[:, -1].copy(), activation])
    for k in range(len(layers) - 1):
        if layers[k][2] == "step_symmetric":     # -1/1 = 2 step - 1, absorbed by the next layer
            W, b, _ = layers[k + 1]
            layers[k] = [layers[k][0], layers[k][1], "step"]
            with np.errstate(over="ignore", invalid="ignore"):   # overflow is refused below, not warned about
                layers[k + 1][:2] = [2 * W, b - W.sum(axis=1)]
            if not (np.isfinite(layers[k + 1][0]).all() and np.isfinite(layers[k + 1][1]).all()):
                bad(f"layer {k + 2}: folding FANN_THRESHOLD_SYMMETRIC of the layer before overflows a weight")
    return sizes[0] - 1, [tuple(layer) for layer in layers], header


def _numbers(value: str, width: int, where: str, number: int) -> np.ndarray:
    """Turn the already-checked entries of a line into an array of shape (n, width) of finite float64."""
    try:
        out = np.array(value.translate(_PUNCTUATION).split(), dtype=np.float64)
    except (ValueError, MemoryError):
        raise FannFileError(f"{where}: line {number}: unreadable numbers") from None
    if not np.isfinite(out).all():
        raise FannFileError(f"{where}: line {number}: a number out of range")
    return out.reshape(-1, width)


def _fann_name(code: int) -> str:
    if 0 <= code < len(FANN_ACTIVATIONS):
        return f"{FANN_ACTIVATIONS[code]} ({code})"
    return f"activation function {code}, unknown to FANN 2.2 (which defines 0-{len(FANN_ACTIVATIONS) - 1})"


def _short(x, limit: int = 60) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ---- writing ---------------------------------------------------------------------------------------

def text(net) -> str:
    """Return the FANN_FLO_2.1 text of ``net`` (see ``save``)."""
    for k, layer in enumerate(net.layers):
        if layer.activation not in _TO_FANN:
            raise FannFileError(f"cannot write a FANN file: layer {k} is {layer.activation!r}, which FANN 2.2 does "
                                "not have (FANN_LINEAR, FANN_THRESHOLD, FANN_SIGMOID and FANN_SIGMOID_SYMMETRIC "
                                "stand for annfast's linear, step, sigmoid and tanh)")
    weights = net.get_weights()
    sizes = [net.n_inputs + 1] + [layer.units + 1 for layer in net.layers]
    lines = ["FANN_FLO_2.1", f"num_layers={len(sizes)}"] + [f"{key}={value}" for key, value in _DEFAULT_SETTINGS]
    lines.append("layer_sizes=" + "".join(f"{s} " for s in sizes))
    lines.append("scale_included=0")
    neurons = ["(0, 0, 0.00000000000000000000e+00) "] * sizes[0]
    conns = []
    first_prev = 0
    for k, (layer, (W, b)) in enumerate(zip(net.layers, weights)):
        code, steep = _TO_FANN[layer.activation]
        n_prev = sizes[k]
        neurons += [f"({n_prev}, {code}, {steep!r}) "] * layer.units
        neurons.append("(0, 0, 0.00000000000000000000e+00) ")
        M = np.concatenate([W, b[:, None]], axis=1).astype(np.float64)
        for row in M:
            conns.extend(f"({first_prev + i}, {float(w)!r}) " for i, w in enumerate(row))
        first_prev += n_prev
    lines.append(f"{NEURONS_KEY}=" + "".join(neurons))
    lines.append(f"{CONNECTIONS_KEY}=" + "".join(conns))
    return "\n".join(lines) + "\n"


def save(net, path) -> None:
    """Write ``net`` to ``path`` as a FANN_FLO_2.1 file, atomically (``Network.save_fann``)."""
    with net._whole():
        content = text(net)
    write_atomic(path, [content.encode("ascii")], "the FANN network")
