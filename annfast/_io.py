r"""Model files: save and load a Network's architecture, settings and flat parameter buffer.

The format is a small self-describing container that loading can check completely before it trusts
anything, and that never executes code:

    offset 0   8 bytes   magic b"ANNFAST\\x00"
           8   4 bytes   format version, uint32 little-endian
          12   4 bytes   header length H, uint32 little-endian (at most MAX_HEADER)
          16   H bytes   header: UTF-8 JSON object (architecture, dtype, loss, settings, sizes, CRC-32)
      16 + H   P bytes   the flat parameters, little-endian float32 or float64 (P = n_params * itemsize)

The file must end exactly after the parameters; the CRC-32 of the parameter bytes is in the header.
Saving writes a temporary file next to the target and renames it over the target only when complete,
so an interrupted save never destroys the previous file and leaves no temporary file behind.
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import zlib

import numpy as np

MAGIC = b"ANNFAST\x00"
FORMAT_VERSION = 1
MAX_HEADER = 1 << 20
_PREFIX = struct.Struct("<8sII")


class ModelFileError(ValueError):
    """A model file is unreadable, damaged, from a newer annfast, or not a model file at all."""


def save(net, path) -> None:
    """Write ``net`` to ``path`` atomically (see the module docstring for the format)."""
    path = os.fspath(path)
    params = np.ascontiguousarray(net.parameters, dtype=net.dtype.newbyteorder("<"))
    blob = params.tobytes()
    header = {
        "format": "annfast-model",
        "annfast_version": _version(),
        "n_inputs": net.n_inputs,
        "layers": [{"units": layer.units, "activation": layer.activation,
                    "negative_slope": layer.negative_slope} for layer in net.layers],
        "dtype": net.dtype.name,
        "loss": net.loss,
        "seed": net.seed,
        "n_params": int(params.size),
        "params_crc32": zlib.crc32(blob),
        "training": dict(net.history.params) if net.history is not None else None,
    }
    head = json.dumps(header, sort_keys=True, default=_json_default).encode("utf-8")
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(_PREFIX.pack(MAGIC, FORMAT_VERSION, len(head)))
            fh.write(head)
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read(path) -> tuple[dict, np.ndarray]:
    """Read and check a model file; return its header and its parameters.

    Raises
    ------
    ModelFileError
        With what is wrong, for anything that is not a complete, intact model file of a known version.
    OSError
        If the file cannot be opened or read.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        prefix = fh.read(_PREFIX.size)
        if len(prefix) < _PREFIX.size or prefix[:8] != MAGIC:
            if len(prefix) == 0:
                raise ModelFileError(f"{path}: the file is empty, not an annfast model")
            raise ModelFileError(f"{path}: not an annfast model file (wrong magic bytes)")
        _, version, head_len = _PREFIX.unpack(prefix)
        if version > FORMAT_VERSION:
            raise ModelFileError(f"{path}: model format version {version} is newer than this annfast "
                                 f"({_version()}) reads (up to {FORMAT_VERSION}); upgrade annfast")
        if version < 1:
            raise ModelFileError(f"{path}: invalid model format version {version}")
        if head_len > MAX_HEADER or _PREFIX.size + head_len > size:
            raise ModelFileError(f"{path}: header length {head_len} does not fit the file ({size} bytes)")
        try:
            header = json.loads(fh.read(head_len).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFileError(f"{path}: damaged header ({exc})") from None
        _check_header(header, path)
        itemsize = np.dtype(header["dtype"]).itemsize
        expected = _PREFIX.size + head_len + header["n_params"] * itemsize
        if size != expected:
            raise ModelFileError(f"{path}: the file has {size} bytes but its header describes {expected} "
                                 "(truncated or damaged)")
        blob = fh.read(header["n_params"] * itemsize)
    if len(blob) != header["n_params"] * itemsize:
        raise ModelFileError(f"{path}: truncated while reading")
    if zlib.crc32(blob) != header["params_crc32"]:
        raise ModelFileError(f"{path}: the parameters are damaged (CRC-32 mismatch)")
    params = np.frombuffer(blob, dtype=np.dtype(header["dtype"]).newbyteorder("<")).astype(header["dtype"])
    if not np.isfinite(params).all():
        raise ModelFileError(f"{path}: the parameters hold non-finite values")
    return header, params


def _check_header(h, path) -> None:
    """Strict schema check: every field present, of the right type and in range."""
    from ._validation import ACTIVATIONS, LOSSES

    def bad(what):
        raise ModelFileError(f"{path}: invalid header: {what}")

    if not isinstance(h, dict) or h.get("format") != "annfast-model":
        bad("not an annfast model header")
    n_in = h.get("n_inputs")
    if not _is_int(n_in) or not 1 <= n_in <= 1 << 31:
        bad(f"n_inputs {n_in!r}")
    layers = h.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= 32:
        bad("layers must be a list of 1 to 32 layers")
    n_params, width = 0, n_in
    for k, layer in enumerate(layers):
        if not isinstance(layer, dict):
            bad(f"layers[{k}] is not an object")
        units, act, slope = layer.get("units"), layer.get("activation"), layer.get("negative_slope")
        if not _is_int(units) or not 1 <= units <= 1 << 31:
            bad(f"layers[{k}].units {units!r}")
        if act not in ACTIVATIONS:
            bad(f"layers[{k}].activation {act!r}")
        if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope) or slope < 0:
            bad(f"layers[{k}].negative_slope {slope!r}")
        n_params += (width + 1) * units
        width = units
    if h.get("dtype") not in ("float32", "float64"):
        bad(f"dtype {h.get('dtype')!r}")
    if h.get("loss") not in LOSSES:
        bad(f"loss {h.get('loss')!r}")
    seed = h.get("seed")
    if seed is not None and (not _is_int(seed) or seed < 0):
        bad(f"seed {seed!r}")
    if h.get("n_params") != n_params:
        bad(f"n_params {h.get('n_params')!r} does not match the layers ({n_params})")
    if not _is_int(h.get("params_crc32")):
        bad("params_crc32 missing")
    if h.get("training") is not None and not isinstance(h["training"], dict):
        bad("training must be an object")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a model header")


def _version() -> str:
    from . import __version__

    return __version__
