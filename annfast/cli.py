"""The ``annfast`` command line: train a network on a data file, predict with it, describe it, run the demo.

``annfast train``, ``annfast predict``, ``annfast info``, ``annfast export`` (to ONNX) and ``annfast demo``
(the default without a subcommand). Data files are read by ``annfast.datafiles`` (CSV or FANN), models
are written and read by ``Network.save`` / ``annfast.load``. A user error (an unreadable or malformed file, impossible
settings, a diverging run) prints ``annfast: error: <message>`` to stderr and exits with status 2,
as argparse does for a bad command line; anything else is a bug and shows its traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import struct
import sys
import time

import numpy as np

from ._validation import (
    ACTIVATIONS,
    CLASSIFIER_OUTPUTS,
    CROSS_ENTROPY_OUTPUTS,
    check_sgd_in,
    target_misfit,
    target_scale,
)
from ._validation import LOSSES as _LOSSES

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
# the names of the C enums, as _validation tables them (softmax only in the output layer)
OUTPUT_ACTIVATIONS = tuple(ACTIVATIONS)
HIDDEN_ACTIVATIONS = tuple(a for a in OUTPUT_ACTIVATIONS if a != "softmax")
LOSSES = tuple(_LOSSES)
MAX_CLASSES = 100_000

_EPILOG = """\
examples:
  annfast train diabetes.train --hidden 16 --epochs 50 --seed 0 --out diabetes.annf
  annfast predict diabetes.annf diabetes.test --evaluate --out predictions.csv
  annfast train houses.csv --target price_k --standardize --out houses.annf
  annfast info houses.annf
  annfast export houses.annf houses.onnx

Run 'annfast COMMAND --help' for the options of a command."""

_DATA_HELP = """\
data files:
  CSV: one row per line, cells separated by commas (tabs for .tsv files, or --delimiter); a first
  row holding a cell that is not a number is a header of column names (force with --header or
  --no-header). Every other cell must be a finite number.
  FANN (.data/.train/.test, or a first line of three integers): 'pairs inputs outputs', then for
  each pair a line of inputs and a line of outputs, whitespace separated. The file itself says
  which numbers are targets, so --target, --header and --delimiter apply to CSV only."""

_TARGET_HELP = ("CSV target column(s): names from the header, positions counting from 1 (negative from the end: "
                "-1 is the last column) or ranges such as 3-5, separated by commas")


class CommandError(Exception):
    """A user error found by the command line itself (reported like the library's ValueError)."""


# ---- argument types --------------------------------------------------------------------------------

def _int_type(minimum: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return convert


def _float_type(low: float, high: float | None = None, low_open: bool = False, high_open: bool = False):
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not np.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {text}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {high}, got {text}")
        return value
    return convert


def _hidden_type(text: str) -> list[int]:
    """Parse hidden layer sizes: "16,8" -> [16, 8]; "" or "none" -> no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return []
    sizes = []
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise argparse.ArgumentTypeError(f"expected layer sizes >= 1 separated by commas, such as 16,8 "
                                             f"(or 'none'), got {text!r}")
        sizes.append(int(item))
    return sizes


def _batch_type(text: str) -> int | None:
    """Parse a batch size: a positive integer, or "full" (None: full-batch gradient descent)."""
    if text.strip().lower() in ("full", "all"):
        return None
    return _int_type(1)(text)


#: the most columns one --target range may name (a file with more target columns is not a realistic one)
MAX_TARGET_RANGE = 1 << 20


def _target_type(text: str) -> list:
    """Parse a --target spec into datafiles targets: 0-based positions (negative from the end) and names.

    "price" -> ["price"]; "3" -> [2]; "-1" -> [-1]; "3-5" -> [2, 3, 4]; "a,b" -> ["a", "b"].
    """
    out: list = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise argparse.ArgumentTypeError(f"empty column in {text!r}")
        span = re.fullmatch(r"(\d+)-(\d+)", item)
        if re.fullmatch(r"-?\d+", item):
            position = int(item)
            if position == 0:
                raise argparse.ArgumentTypeError("column positions count from 1 (and -1 is the last column)")
            out.append(position - 1 if position > 0 else position)
        elif span:
            first, last = int(span.group(1)), int(span.group(2))
            if not 1 <= first <= last:
                raise argparse.ArgumentTypeError(f"a range of columns runs from a first position >= 1 to a "
                                                 f"last position >= it, got {item!r}")
            if last - first >= MAX_TARGET_RANGE:   # expanded below: "1-99999999999" would exhaust the memory
                raise argparse.ArgumentTypeError(f"a range of columns spans at most {MAX_TARGET_RANGE:,} columns, "
                                                 f"got {item!r}")
            out.extend(range(first - 1, last))
        else:
            out.append(item)
    return out


def _delimiter_type(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "space": " "}
    value = named.get(text.lower(), text)
    if len(value) != 1 or value in "\"\r\n":
        raise argparse.ArgumentTypeError(f"expected one character (or tab, comma, semicolon, space), got {text!r}")
    return value


# ---- the parser ------------------------------------------------------------------------------------

def _data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data file options")
    group.add_argument("--format", choices=("csv", "fann"), default=None,
                       help="format of DATA (default: from the file name, else from its first line)")
    group.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                       help="CSV: the first row is (or is not) a header of column names (default: a first row "
                            "with a cell that is not a number)")
    group.add_argument("--delimiter", type=_delimiter_type, default=None, metavar="CHAR",
                       help="CSV cell separator: one character, or tab, comma, semicolon, space (default: comma; "
                            "tab for .tsv files)")


def build_parser() -> argparse.ArgumentParser:   # long: a declaration of every option, one after the other
    """Return the argument parser of the ``annfast`` command."""
    from . import __version__

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="annfast", description="Fast per-sample training of small MLPs.",
                                     epilog=_EPILOG, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"annfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train", help="train a network on a CSV or FANN data file and save it", formatter_class=fmt,
        description="Train a multi-layer perceptron on DATA by stochastic gradient descent, print the final\n"
                    "training (and validation) metrics and save the network to --out.",
        epilog=_DATA_HELP + """

output activation (--output-activation auto):
  softmax when the targets are one-hot (several 0/1 columns with exactly one 1 per row) or --labels;
  sigmoid when every target is 0 or 1 otherwise (binary or multi-label); linear for anything else.
  The loss (--loss auto) is cross_entropy after softmax and half_squared_error otherwise.""")
    train.add_argument("data", metavar="DATA", help="training data: a CSV or FANN file")
    train.add_argument("--out", "-o", required=True, metavar="MODEL", help="write the trained network here")
    _data_options(train)
    train.add_argument("--target", type=_target_type, default=None, metavar="COLUMNS",
                       help=_TARGET_HELP + " (default: -1)")
    train.add_argument("--labels", action="store_true",
                       help="the one target column holds class labels 0, 1, 2, ...: train one output per class "
                            "(softmax by default)")
    net = train.add_argument_group("network")
    net.add_argument("--hidden", type=_hidden_type, default=[16], metavar="SIZES",
                     help="sizes of the hidden layers, first to last, such as 16,8; 'none' for none (default: 16)")
    net.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="tanh", metavar="NAME",
                     help=f"activation of the hidden layers: {', '.join(HIDDEN_ACTIVATIONS)} (default: tanh)")
    net.add_argument("--output-activation", choices=("auto",) + OUTPUT_ACTIVATIONS, default="auto", metavar="NAME",
                     help="activation of the output layer: auto (see below) or one of the above or softmax "
                          "(default: auto)")
    net.add_argument("--negative-slope", type=_float_type(0.0), default=0.01, metavar="A",
                     help="slope of leaky_relu for negative inputs (default: 0.01)")
    net.add_argument("--loss", choices=("auto",) + LOSSES, default="auto", metavar="NAME",
                     help=f"loss to minimize: auto (see below), {', '.join(LOSSES)} (default: auto)")
    net.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                     help="precision of the weights and of all computation (default: float32)")
    net.add_argument("--seed", type=_int_type(0), default=None,
                     help="seed of the initial weights and of the shuffling (default: a fresh random seed; "
                          "either way train prints the seed it used, and --seed with it repeats the run exactly)")
    sgd = train.add_argument_group("training")
    sgd.add_argument("--epochs", type=_int_type(0), default=50, help="passes over the training rows (default: 50)")
    sgd.add_argument("--learning-rate", "--lr", type=_float_type(0.0, low_open=True), default=0.01, metavar="LR",
                     help="SGD step size (default: 0.01)")
    sgd.add_argument("--batch-size", type=_batch_type, default=1, metavar="N",
                     help="rows per update: 1 is per-sample SGD, N mini-batches, 'full' full-batch gradient "
                          "descent (default: 1)")
    sgd.add_argument("--momentum", type=_float_type(0.0, 1.0, high_open=True), default=0.0, metavar="MU",
                     help="momentum in [0, 1) (default: 0)")
    sgd.add_argument("--nesterov", action="store_true", help="Nesterov momentum (needs --momentum > 0)")
    sgd.add_argument("--weight-decay", type=_float_type(0.0), default=0.0, metavar="L2",
                     help="L2 penalty on every parameter (default: 0)")
    sgd.add_argument("--no-shuffle", action="store_true",
                     help="visit the rows in file order every epoch (default: a fresh random order each epoch)")
    sgd.add_argument("--validation-split", type=_float_type(0.0, 1.0, high_open=True), default=0.0,
                     metavar="FRACTION",
                     help="hold out this fraction of the rows, the last ones of the file, to report validation "
                          "metrics (default: 0)")
    sgd.add_argument("--class-weight", choices=("balanced",), default=None,
                     help="balanced: weigh each class's rows by n_rows / (n_classes * rows of the class), so rare "
                          "classes count as much as common ones (a classifier output; default: every row weighs 1)")
    sgd.add_argument("--standardize", action="store_true",
                     help="train on inputs (and, for a linear output, targets) scaled to mean 0 and standard "
                          "deviation 1; the scaling is folded into the saved weights, so the model takes and "
                          "gives values in the file's units")
    sgd.add_argument("--verbose", "-v", type=int, choices=(0, 1, 2), default=0,
                     help="progress on stderr: 0 none, 1 a bar per epoch, 2 a line per epoch (default: 0)")

    predict = sub.add_parser(
        "predict", help="write a saved network's predictions for a data file as CSV", formatter_class=fmt,
        description="Compute the outputs of the network in MODEL for every row of DATA and write them as\n"
                    "CSV, one row per data row, after a header line output1, output2, ...",
        epilog=_DATA_HELP + """

inputs and targets:
  FANN files: the inputs and outputs of each pair. CSV files: without --target, the first columns
  (as many as the model has inputs) are the inputs and any further columns are targets, which is
  the layout 'annfast train' uses by default; with --target, the columns it names are the targets
  and the others the inputs. Targets are only used by --evaluate.""")
    predict.add_argument("model", metavar="MODEL", help="a model file written by 'annfast train' or Network.save, "
                                                        "or a FANN network file (.net, FANN_FLO_2.1)")
    predict.add_argument("data", metavar="DATA", help="the rows to predict: a CSV or FANN file")
    predict.add_argument("--out", "-o", default="-", metavar="FILE",
                         help="write the predictions here (default: '-', standard output)")
    _data_options(predict)
    predict.add_argument("--target", type=_target_type, default=None, metavar="COLUMNS",
                         help=_TARGET_HELP + " (default: the columns after the inputs)")
    predict.add_argument("--evaluate", action="store_true",
                         help="also print the loss and accuracy (or RMSE) against the targets of DATA: on stdout "
                              "with --out FILE, else on stderr")
    predict.add_argument("--classes", action="store_true",
                         help="write the predicted class instead of the outputs: the index (from 0) of the largest "
                              "output, or for one sigmoid or step output 1 if it is >= 0.5, else 0")

    info = sub.add_parser("info", help="describe a saved network",
                          description="Print the architecture, dtype, loss, number of parameters, file format "
                                      "version and the settings of the last training of a model file.")
    info.add_argument("model", metavar="MODEL", help="a model file, or a FANN network file (.net, FANN_FLO_2.1)")
    info.add_argument("--json", action="store_true", help="print the model file's header as JSON")

    export = sub.add_parser("export", help="write a saved network as an ONNX model",
                            description="Write MODEL as a standard ONNX graph (opset 17; input 'input', output "
                                        "'output', dynamic batch size) for onnxruntime and other ONNX tools. "
                                        "Needs the onnx package: pip install \"annfast[onnx]\".")
    export.add_argument("model", metavar="MODEL", help="a model file, or a FANN network file (.net)")
    export.add_argument("onnx", metavar="ONNX", help="the ONNX file to write (replaced atomically)")

    demo = sub.add_parser(
        "demo", help="train a 4-16-1 network on the bundled house-price data (the default)", formatter_class=fmt,
        description="Train a 4-16-1 tanh network by per-sample SGD on the bundled house prices (1000 houses: area,\n"
                    "bedrooms, distance and age; 800 to train, 200 to test), printing per epoch the training loss\n"
                    "(on standardized prices) and the test RMSE (in thousands), then the final test RMSE against\n"
                    "predicting the mean price. 'annfast' without a command and 'python -m annfast' run it too.")
    demo.add_argument("--epochs", type=_int_type(1), default=40, help="passes over the training rows (default: 40)")
    demo.add_argument("--seed", type=_int_type(0), default=0,
                      help="seed of the train/test split, the initial weights and the shuffling (default: 0)")
    demo.add_argument("--learning-rate", type=_float_type(0.0, low_open=True), default=0.01,
                      help="SGD step size (default: 0.01)")
    return parser


# ---- shared helpers --------------------------------------------------------------------------------

def _load_data(args, target):
    """Read args.data with the data file options; return a ``datafiles.Data``.

    The file is read once, and its format detected from that text: reading its first line separately
    would consume it from a pipe (``annfast train /dev/stdin``) and silently drop the first 4 KiB.
    """
    from .datafiles import _load_text, _read_text, detect_format

    text = _read_text(args.data)
    fmt = args.format or detect_format(args.data, text)
    if fmt == "fann":
        given = [flag for flag, value in (("--target", args.target), ("--header", args.header),
                                          ("--delimiter", args.delimiter)) if value is not None]
        if given:
            raise CommandError(f"{args.data} is a FANN file, which says itself how many numbers of each pair are "
                               f"inputs and outputs; {', '.join(given)} applies to CSV files only (or give "
                               f"--format csv)")
        target = None
    return _load_text(text, args.data, fmt, target, args.header, args.delimiter)


def _is_fann_net(path: str) -> bool:
    """Whether the file at ``path`` starts as a FANN network file does ("FANN_"); False if it cannot be read.

    Only a regular file is peeked at: a plain open of a FIFO blocks until a writer comes (``annfast info
    fifo`` hung), and reading one would take bytes the loader then misses. False for anything else, which the
    loaders then refuse with a clear error.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.read(fd, 5) == b"FANN_"
    except OSError:
        return False
    finally:
        os.close(fd)


def _load_model(path: str):
    """Load an annfast model file, or a FANN network file (as float64, like ``annfast.load_fann``)."""
    from .network import load, load_fann

    return load_fann(path) if _is_fann_net(path) else load(path)


def _check_output_path(out: str, *inputs: str, what: str) -> None:
    """Refuse to write over an input file, a FIFO or device, or into a directory that does not exist.

    Checked before any work (``write_atomic`` checks again when it writes).
    """
    from ._io import check_target

    if os.path.isdir(out):
        raise CommandError(f"cannot write to {out}: it is a directory")
    check_target(os.path.abspath(out), out, what)          # OSError (exit 2) for a FIFO, a device, a link to one
    for path in inputs:
        if os.path.abspath(out) == os.path.abspath(path) or (
                os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path)):
            raise CommandError(f"refusing to write over the input file {path}; choose another output file")
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise CommandError(f"cannot write to {out}: the directory {directory} does not exist")


def _class_labels(y: np.ndarray, lines: np.ndarray, path: str) -> np.ndarray:
    """Return one target column of class labels 0, 1, 2, ... as int64; CommandError naming a bad row."""
    column = y[:, 0]
    bad = np.flatnonzero((column < 0) | (column != np.floor(column)) | (column >= MAX_CLASSES))
    if bad.size:
        i = int(bad[0])
        raise CommandError(f"{path}: line {lines[i]}: the target {column[i]:g} is not a class label "
                           f"(an integer 0, 1, 2, ... below {MAX_CLASSES})")
    return column.astype(np.int64)


def _metrics(net, X: np.ndarray, y: np.ndarray) -> dict:
    """Return the mean loss, and the accuracy for classifier outputs or the RMSE for the others."""
    out = net.evaluate(X, y, return_dict=True)
    if net.layers[-1].activation not in CLASSIFIER_OUTPUTS:
        Y = np.eye(net.n_outputs)[y] if y.ndim == 1 and net.n_outputs > 1 else y.reshape(len(y), -1)
        err = net.predict(X).astype(np.float64) - Y
        with np.errstate(over="ignore"):     # errors beyond 1e154 give an RMSE of inf, printed as such
            out["rmse"] = float(np.sqrt(np.mean(err ** 2)))
    return out


def _format_metrics(metrics: dict) -> str:
    return "  ".join(f"{name} {value:.6g}" for name, value in metrics.items())


def _architecture(n_inputs: int, layers) -> str:
    """Describe layers given as (units, activation, negative_slope): "8 inputs -> 16 tanh -> 2 softmax"."""
    parts = [f"{n_inputs} inputs"]
    for units, activation, slope in layers:
        parts.append(f"{units} {activation}" + (f"({slope:g})" if activation == "leaky_relu" else ""))
    return " -> ".join(parts)


# ---- train -----------------------------------------------------------------------------------------

def _auto_output(y: np.ndarray, labels: bool) -> str:
    """Choose the output activation for --output-activation auto (see the train help)."""
    if labels:
        return "softmax"
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    if binary and y.shape[1] >= 2 and bool((y.sum(axis=1) == 1).all()):
        return "softmax"
    return "sigmoid" if binary else "linear"


def _fold_scaling(net, x_mean, x_scale, y_mean=None, y_scale=None) -> None:
    """Make a network trained on (x - x_mean) / x_scale (and y scaled alike) take and give unscaled values.

    The first layer computes W (x - m) / s + b = (W / s) x + (b - (W / s) m); a linear output layer
    scaled back is (y_scale W) a + (y_scale b + y_mean). Computed in float64; ``set_weights`` refuses
    a folded weight that is not finite in the network's dtype (CommandError, nothing saved).
    """
    weights = [(W.astype(np.float64), b.astype(np.float64)) for W, b in net.get_weights()]
    with np.errstate(over="ignore", invalid="ignore"):   # an overflow becomes inf, refused by set_weights
        W, b = weights[0]
        W = W / x_scale
        weights[0] = (W, b - W @ x_mean)
        if y_mean is not None:
            W, b = weights[-1]
            weights[-1] = (W * y_scale[:, None], b * y_scale + y_mean)
    try:
        net.set_weights(weights)
    except ValueError as exc:
        raise CommandError(f"--standardize: the trained network, with the scaling of the data folded into its "
                           f"weights, does not fit in {net.dtype}: {exc}. Use --dtype float64, or rescale the "
                           "data. No model was saved.") from None


def _scale(a: np.ndarray, names, dtype: str, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of each column of ``a``, for --standardize.

    Inputs are scaled by their standard deviation (1 where 0), targets by ``_validation.target_scale`` (the
    estimators' rule: 1 where constant up to rounding).

    CommandError, naming the column, where they are not finite (values near the float64 limit) or
    where 1 / scale would overflow ``dtype`` once folded into the weights (a column of tiny values).
    """
    a = a.reshape(a.shape[0], -1)            # (a 1-D column of --labels: one column)
    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = a.mean(axis=0), a.std(axis=0)
        scale = target_scale(mean, std) if what == "target" else np.where(std > 0, std, 1.0)
        inverse = (1.0 / scale).astype(dtype)
    for k in range(a.shape[1]):
        if not (np.isfinite(mean[k]) and np.isfinite(std[k])):
            raise CommandError(f"--standardize: the {what} column {names[k]!r} holds values too large to "
                               "standardize in float64; rescale it")
        if not np.isfinite(inverse[k]):
            raise CommandError(f"--standardize: the {what} column {names[k]!r} has a standard deviation of "
                               f"{std[k]:g}, too small for {dtype} weights (1/{std[k]:g} overflows {dtype}); "
                               "use --dtype float64, or rescale that column")
    return mean, scale


def _check_train_options(args) -> None:
    """Refuse the combinations of train's options that fit would refuse, naming the options, before any file is read."""
    if args.nesterov and args.momentum == 0:
        raise CommandError("--nesterov needs --momentum > 0 (Nesterov momentum is a kind of momentum); "
                           "add --momentum, such as --momentum 0.9, or leave out --nesterov")
    try:   # what the step's dtype makes of the numbers (float32: a rate that rounds to 0, a momentum to 1, inf)
        check_sgd_in(args.dtype, args.learning_rate, args.momentum, args.weight_decay)
    except ValueError as exc:
        raise CommandError(re.sub(r"\b(learning_rate|momentum|weight_decay)\b",
                                  lambda m: "--" + m.group(1).replace("_", "-"), str(exc))) from None
    from .network import Dense, _checked_layers
    out = "linear" if args.output_activation == "auto" else args.output_activation
    try:   # the layers' own checks in the dtype (a --negative-slope that does not fit in float32)
        _checked_layers([Dense(2, args.activation, args.negative_slope), Dense(2, out, args.negative_slope)],
                        np.dtype(args.dtype))
    except ValueError as exc:
        raise CommandError(f"--negative-slope {args.negative_slope:g}: {exc}") from None
    activation = args.output_activation
    if args.loss == "cross_entropy" and activation not in ("auto",) + CROSS_ENTROPY_OUTPUTS:
        raise CommandError(f"--loss cross_entropy needs a softmax or sigmoid output, but --output-activation is "
                           f"{activation}; give another --output-activation or another --loss")
    if args.class_weight is not None and activation not in ("auto",) + CLASSIFIER_OUTPUTS:
        raise CommandError(f"--class-weight {args.class_weight} needs a classifier output "
                           f"({', '.join(CLASSIFIER_OUTPUTS)}), but --output-activation is {activation}; give "
                           "another --output-activation or leave out --class-weight")


def _check_train_targets(args, data, activation: str, loss: str) -> None:
    """Refuse targets that the loss or --class-weight cannot train on, before anything is printed or trained.

    The messages name the options (those chosen by auto included) and the file's line, where fit would name its
    Python arguments after the data, network and seed lines.
    """
    auto = " (chosen by --output-activation auto)" if args.output_activation == "auto" else ""
    if args.class_weight is not None and activation not in CLASSIFIER_OUTPUTS:
        raise CommandError(f"--class-weight {args.class_weight} needs a classifier output "
                           f"({', '.join(CLASSIFIER_OUTPUTS)}), but the output activation is {activation}{auto}; "
                           "use --labels for a column of class labels, or leave out --class-weight")
    misfit = None if args.labels else target_misfit(data.y, loss, activation, args.dtype)
    if misfit is None:
        return
    if misfit[0] == "range":
        _, r, c = misfit
        raise CommandError(f"{args.data}: line {data.lines[r]}: the target {data.target_names[c]} is "
                           f"{data.y[r, c]:g}, but the loss cross_entropy needs targets in [0, 1]; use --labels for "
                           f"a column of class labels, or --loss half_squared_error")
    _, r, total = misfit
    raise CommandError(f"{args.data}: line {data.lines[r]}: the targets sum to {total:.6g}, but a softmax "
                       f"output{auto} with the loss cross_entropy needs one-hot rows (or --labels); give "
                       "another --output-activation or --loss half_squared_error")


def _train(args, out) -> int:   # long: the train command's steps in order (load, build, scale, fit, fold, save)
    from ._core import DivergenceError
    from .network import Dense, Network

    _check_train_options(args)
    _check_output_path(args.out, args.data, what="the model")
    data = _load_data(args, args.target)
    X, y = data.X, data.y
    if y.shape[1] == 0:
        raise CommandError(f"{args.data} has no target values (its header announces 0 outputs)")
    if args.labels:
        if y.shape[1] != 1:
            raise CommandError(f"--labels needs exactly one target column, {args.data} has {y.shape[1]} "
                               f"({', '.join(data.target_names)})")
        targets = _class_labels(y, data.lines, args.data)
        n_outputs = int(targets.max()) + 1
        if n_outputs < 2:
            raise CommandError(f"{args.data}: every label is 0; --labels needs at least two classes")
    else:
        targets, n_outputs = y, y.shape[1]
    activation = _auto_output(y, args.labels) if args.output_activation == "auto" else args.output_activation
    if activation == "softmax" and n_outputs < 2:
        raise CommandError("a softmax output needs at least 2 outputs but there is 1 target column; use --labels "
                           "for a column of class labels, or another --output-activation")
    loss = None if args.loss == "auto" else args.loss
    if loss == "cross_entropy" and activation not in CROSS_ENTROPY_OUTPUTS:
        raise CommandError(f"--loss cross_entropy needs a softmax or sigmoid output, the output activation is "
                           f"{activation}; give --output-activation or another --loss")
    _check_train_targets(args, data, activation, loss or ("cross_entropy" if activation == "softmax"
                                                          else "half_squared_error"))

    n = X.shape[0]
    n_val = int(round(args.validation_split * n)) if args.validation_split > 0 else 0
    if args.validation_split > 0 and not 1 <= n_val < n:
        raise CommandError(f"--validation-split {args.validation_split:g} of {n} rows leaves no training or no "
                           "validation rows")
    n_train = n - n_val
    X_fit, y_fit = X, targets
    scaled_y = None
    if args.standardize:
        x_mean, x_scale = _scale(X[:n_train], data.input_names, args.dtype, "input")
        X_fit = (X - x_mean) / x_scale
        if activation == "linear":
            scaled_y = _scale(targets[:n_train], data.target_names, args.dtype, "target")
            y_fit = (targets - scaled_y[0]) / scaled_y[1]
    validation = (X_fit[n_train:], y_fit[n_train:]) if n_val else None

    layers = [Dense(units, args.activation, args.negative_slope) for units in args.hidden]
    layers.append(Dense(n_outputs, activation, args.negative_slope))
    # a run without --seed draws one and says which, so that any run can be repeated (the model file keeps it too)
    seed = args.seed if args.seed is not None else secrets.randbelow(2 ** 31)
    net = Network(X.shape[1], layers, dtype=args.dtype, seed=seed, loss=loss)
    kind = "FANN" if data.fmt == "fann" else "CSV"
    target_desc = (f"class labels in {data.target_names[0]!r} ({n_outputs} classes)" if args.labels
                   else f"{y.shape[1]} target{'s' if y.shape[1] > 1 else ''} ({', '.join(data.target_names)})")
    print(f"data: {args.data} ({kind}): {n} rows, {X.shape[1]} inputs, {target_desc}", file=out)
    print(f"network: {_architecture(net.n_inputs, [(d.units, d.activation, d.negative_slope) for d in layers])}; "
          f"loss {net.loss}; {net.dtype.name}; {net.n_params} parameters", file=out)
    print(f"seed: {seed}" + ("" if args.seed is not None else f" (drawn; --seed {seed} repeats this run)"), file=out)
    t0 = time.perf_counter()
    try:
        net.fit(X_fit[:n_train], y_fit[:n_train], epochs=args.epochs, learning_rate=args.learning_rate,
                batch_size=args.batch_size, shuffle=not args.no_shuffle, momentum=args.momentum,
                nesterov=args.nesterov, weight_decay=args.weight_decay, validation_data=validation,
                verbose=args.verbose, class_weight=args.class_weight)
    except DivergenceError as exc:
        # the rows given to fit are the first n_train rows of the file, in order: name the line
        message = re.sub(r"row (\d+) of X", lambda m: f"{m.group(0)} (line {data.lines[int(m.group(1))]} of "
                         f"{args.data})", str(exc))
        raise DivergenceError(f"{message} No model was saved.") from None
    seconds = time.perf_counter() - t0
    if args.standardize:
        _fold_scaling(net, x_mean, x_scale, *(scaled_y or (None, None)))
    batch = "full" if args.batch_size is None else min(args.batch_size, n_train)
    print(f"trained {args.epochs} epochs of {n_train} rows (batch size {batch}, learning rate "
          f"{args.learning_rate:g}) in {seconds:.3g} s", file=out)
    print(f"final training:   {_format_metrics(_metrics(net, X[:n_train], targets[:n_train]))}", file=out)
    if n_val:
        print(f"final validation: {_format_metrics(_metrics(net, X[n_train:], targets[n_train:]))} "
              f"({n_val} rows, the last of the file)", file=out)
    net.save(args.out)
    print(f"saved {args.out}", file=out)
    return 0


# ---- predict ---------------------------------------------------------------------------------------

def _input_mismatch(args, data, n_inputs: int) -> str:
    """Say how DATA's columns (or FANN inputs) fail to give the model's inputs, and what the model expects."""
    expects = f"the model {args.model} takes {n_inputs} input{'s' if n_inputs != 1 else ''}"
    n_x, n_y = data.X.shape[1], data.y.shape[1]
    if data.fmt != "csv":
        return f"{args.data} has {n_x} inputs per pair but {expects}"
    if args.target is None:   # every column was read as an input: there are fewer than the model takes
        return (f"{args.data} has {n_x} column{'s' if n_x != 1 else ''} but {expects}: without --target, the first "
                f"{n_inputs} columns are the inputs and any further ones targets")
    message = (f"{args.data} has {n_x} input column{'s' if n_x != 1 else ''} ({n_x + n_y} columns less the {n_y} "
               f"target column{'s' if n_y != 1 else ''} named by --target) but {expects}")
    extra = n_x - n_inputs
    if extra > 0:
        message += (f"; name the {extra} extra column in --target too if it is not an input" if extra == 1 else
                    f"; name the {extra} extra columns in --target too if they are not inputs")
    return message


def _predict(args, out) -> int:
    net = _load_model(args.model)
    if args.out != "-":
        _check_output_path(args.out, args.data, args.model, what="the predictions")
    data = _load_data(args, [] if args.target is None else args.target)
    X, y = data.X, data.y
    if data.fmt == "csv" and args.target is None and X.shape[1] > net.n_inputs:
        X, y = X[:, :net.n_inputs], X[:, net.n_inputs:]
    if X.shape[1] != net.n_inputs:
        raise CommandError(_input_mismatch(args, data, net.n_inputs))
    activation = net.layers[-1].activation
    if args.classes and net.n_outputs == 1 and activation not in ("sigmoid", "step"):
        raise CommandError(f"--classes needs a model with several outputs or one sigmoid or step output; this one "
                           f"has one {activation} output")
    targets = None
    if args.evaluate:
        if y.shape[1] == 0:
            raise CommandError(f"--evaluate needs targets, but {args.data} has none (only the model's "
                               f"{net.n_inputs} input columns)")
        if y.shape[1] == net.n_outputs:
            targets = y
        elif y.shape[1] == 1:
            targets = _class_labels(y, data.lines, args.data)
            if targets.max() >= net.n_outputs:
                i = int(np.argmax(targets >= net.n_outputs))
                raise CommandError(f"{args.data}: line {data.lines[i]}: class label {targets[i]} is out of range "
                                   f"for a model with {net.n_outputs} outputs")
        else:
            raise CommandError(f"{args.data} has {y.shape[1]} target columns but the model has {net.n_outputs} "
                               "outputs")
    pred = net.predict(X)
    if args.classes:
        values = pred.argmax(axis=1) if net.n_outputs > 1 else (pred[:, 0] >= 0.5).astype(np.int64)
        text = "class\n" + "".join(f"{v}\n" for v in values.tolist())
    else:
        head = ",".join(f"output{k + 1}" for k in range(net.n_outputs))
        text = head + "\n" + "".join(",".join(map(str, row)) + "\n" for row in pred)
    if args.out == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        # like a model: atomically (an interrupted run keeps the previous file), never over a FIFO or device
        from ._io import write_atomic

        write_atomic(args.out, [text.encode("utf-8")], "the predictions")
    if targets is not None:
        report = out if args.out != "-" else sys.stderr
        print(f"{args.data}: {X.shape[0]} rows: {_format_metrics(_metrics(net, X, targets))}", file=report)
    return 0


# ---- info ------------------------------------------------------------------------------------------

def _format_version(path: str) -> int:
    """Return the format version field of a model file (after ``_io.read`` checked the file)."""
    with open(path, "rb") as fh:
        return struct.unpack("<8sI", fh.read(12))[1]


def _info_fann(args, out) -> int:
    from .network import load_fann

    net = load_fann(args.model)
    with open(args.model, "rb") as fh:
        version = fh.readline(20).decode("ascii", "replace").strip()
    layers = [(d.units, d.activation, d.negative_slope) for d in net.layers]
    if args.json:
        desc = {"format": "fann", "fann_version": version, "n_inputs": net.n_inputs,
                "layers": [{"units": u, "activation": a} for u, a, _ in layers], "n_params": net.n_params}
        print(json.dumps(desc, indent=2, sort_keys=True), file=out)
        return 0
    rows = [("file", f"{args.model}: FANN network file ({version})"),
            ("architecture", _architecture(net.n_inputs, layers)),
            ("parameters", str(net.n_params)),
            ("loaded as", "float64, each neuron's steepness folded into its weights (see annfast.load_fann)")]
    width = max(len(name) for name, _ in rows) + 2
    for name, value in rows:
        print(f"{name + ':':<{width}}{value}", file=out)
    return 0


def _info(args, out) -> int:
    from . import _io

    if _is_fann_net(args.model):
        return _info_fann(args, out)
    header, _ = _io.read(args.model)
    version = _format_version(args.model)
    if args.json:
        print(json.dumps(dict(header, format_version=version), indent=2, sort_keys=True), file=out)
        return 0
    layers = [(d["units"], d["activation"], d["negative_slope"]) for d in header["layers"]]
    rows = [
        ("file", f"{args.model}: annfast model, format version {version} (written by annfast "
                 f"{header.get('annfast_version', '?')})"),
        ("architecture", _architecture(header["n_inputs"], layers)),
        ("dtype", header["dtype"]),
        ("loss", header["loss"]),
        ("parameters", str(header["n_params"])),
        ("seed", "none (fresh randomness)" if header["seed"] is None else str(header["seed"])),
    ]
    training = header.get("training")
    rows.append(("training", "not recorded (saved before any fit)" if not training else "settings of the last fit"))
    settings = [(f"  {name}", value) for name, value in sorted((training or {}).items())]
    width = max(len(name) for name, _ in rows + settings) + 2
    for name, value in rows + settings:
        print(f"{name + ':':<{width}}{value}", file=out)
    return 0


# ---- export ----------------------------------------------------------------------------------------

def _export(args, out) -> int:
    net = _load_model(args.model)
    _check_output_path(args.onnx, args.model, what="the ONNX model")
    try:
        net.to_onnx(args.onnx)
    except ImportError as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote {args.onnx}", file=out)
    return 0


# ---- demo and main ---------------------------------------------------------------------------------

def _demo(args, out) -> int:
    from .demo import run_demo

    run_demo(epochs=getattr(args, "epochs", 40), seed=getattr(args, "seed", 0),
             learning_rate=getattr(args, "learning_rate", 0.01))
    return 0


def _message(exc: BaseException) -> str:
    from ._core import DivergenceError

    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, DivergenceError):
        return f"{exc} (annfast train: try a smaller --learning-rate, or --standardize)"
    return str(exc)


def _join_negative_targets(argv: list[str]) -> list[str]:
    """Turn ``--target -2,-1`` into ``--target=-2,-1``, which argparse would take for an unknown option."""
    argv, out, k = list(argv), [], 0
    while k < len(argv):
        if argv[k] == "--":
            return out + argv[k:]
        if argv[k] == "--target" and k + 1 < len(argv) and re.fullmatch(r"-\d[\d,\s-]*", argv[k + 1]):
            out.append(f"--target={argv[k + 1]}")
            k += 2
        else:
            out.append(argv[k])
            k += 1
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the ``annfast`` command; return the exit status.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments after the program name; None uses ``sys.argv[1:]``. No arguments run the demo.

    Returns
    -------
    int
        0 on success; 2 for a bad command line or a user error (a message ``annfast: error: ...`` on
        stderr); 130 when interrupted by Ctrl-C.
    """
    from ._core import DivergenceError

    parser = build_parser()
    try:
        args = parser.parse_args(_join_negative_targets(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:   # --help, --version, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_ERROR)
    command = {None: _demo, "demo": _demo, "train": _train, "predict": _predict, "info": _info,
               "export": _export}[args.command]
    try:
        return command(args, sys.stdout)
    except KeyboardInterrupt:
        print("annfast: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of our output went away (annfast predict ... | head): stop quietly, as other tools do
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except (CommandError, ValueError, OSError, DivergenceError) as exc:   # ModelFileError is a ValueError
        print(f"annfast: error: {_message(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError as exc:   # a network or data set larger than the memory this process may use
        detail = f" ({exc})" if str(exc) else ""
        print(f"annfast: error: out of memory{detail}; use smaller layers or less data", file=sys.stderr)
        return EXIT_ERROR
