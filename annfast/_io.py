r"""Model files: save and load a Network's architecture, settings and flat parameter buffer.

The format is a small self-describing container that loading can check completely before it trusts
anything, and that never executes code. Version 2 (written since issue 18):

    offset 0   8 bytes   magic b"ANNFAST\\x00"
           8   4 bytes   format version, uint32 little-endian (2)
          12   4 bytes   header length H, uint32 little-endian (at most MAX_HEADER)
          16   H bytes   header: UTF-8 JSON object (architecture, dtype, loss, settings, sizes, CRC-32)
      16 + H   P bytes   the flat parameters, little-endian float32 or float64 (P = n_params * itemsize)
  16 + H + P   4 bytes   CRC-32 (zlib, uint32 little-endian) of every byte before it

The file must end exactly after the final CRC-32, which covers the whole file (prefix, header and
parameters), so that any changed bit anywhere -- also in the header, such as a slope 0.01 read as
0.11 -- is refused with a ModelFileError. The header also holds the CRC-32 of the parameter bytes
alone. The header holds exactly the fields ``format`` ("annfast-model"), ``annfast_version``,
``n_inputs``, ``layers`` (objects with ``units``, ``activation``, ``negative_slope``), ``dtype``,
``loss``, ``seed``, ``n_params``, ``params_crc32`` and ``training`` (the scalar settings of the latest
``fit``, or null).

Version 1 files (written before issue 18) are the same without the final CRC-32. They still load,
with every check of version 2 except that a damaged header is only caught when it no longer makes
sense; saving them again writes version 2.

Reading is strict and bounded: every field must be present, of its type and in range, and describe a
network that ``Network`` accepts; duplicated keys, NaN/Infinity literals, unknown fields, integers of
more than MAX_INT_DIGITS digits and networks of more than MAX_PARAMS parameters are refused. Nothing
is allocated in proportion to a declared size before that size has been checked against the file's
real size. Saving runs the same checks first (it never writes a file that reading would refuse), then
writes a temporary file next to the target, flushes it to disk and renames it over the target only when
complete (``write_atomic``), so an interrupted or failed save never destroys the previous file and
leaves no temporary file and no open descriptor behind; a Ctrl-C is held back while the files are
inconsistent and then raised as KeyboardInterrupt. A symbolic link at the target is replaced by the new
file, not written through; an existing target that is not a regular file (a FIFO, a device such as
/dev/null, or a link to one) is refused rather than replaced.
"""
from __future__ import annotations

import errno
import io
import json
import math
import os
import secrets
import signal
import stat
import struct
import threading
import zlib

import numpy as np

from . import _core

MAGIC = b"ANNFAST\x00"
FORMAT_VERSION = 2
_CRC = struct.Struct("<I")        # the final CRC-32 of a version 2 file
MAX_HEADER = 1 << 20
MAX_LAYERS = _core.MAX_LAYERS   # AF_MAX_LAYERS of csrc/annfast.h, read from it
MAX_PARAMS = 1 << 28          # 1 GiB of float32 or 2 GiB of float64 parameters
MAX_INT_DIGITS = 1000         # longer JSON integers are refused before conversion (quadratic in CPython)
_PREFIX = struct.Struct("<8sII")
_CHUNK = 1 << 24              # parameters are read and checksummed 16 MiB at a time
_HEADER_KEYS = frozenset({"format", "annfast_version", "n_inputs", "layers", "dtype", "loss", "seed", "n_params",
                          "params_crc32", "training"})
_LAYER_KEYS = frozenset({"units", "activation", "negative_slope"})
_FINFO_MAX = {"float32": float(np.finfo(np.float32).max), "float64": float(np.finfo(np.float64).max)}
# what a file that is not a model file most likely is, by its first bytes (for the error message)
_LOOKS_LIKE = [
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"PK\x03\x04", "a zip archive, such as a NumPy .npz file"),
    (b"PK\x05\x06", "an empty zip archive, such as a NumPy .npz file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"FANN_", "a FANN network file: read it with annfast.load_fann"),
]


class ModelFileError(ValueError):
    """A model file is unreadable, damaged, from a newer annfast, or not a model file at all."""


class _HeaderError(ValueError):
    """Raised by the JSON hooks; turned into a ModelFileError naming the file."""


# ---- saving ----------------------------------------------------------------------------------------

def save(net, path) -> None:
    """Write ``net`` to ``path`` atomically (see the module docstring for the format).

    Parameters
    ----------
    net : Network
    path : str or os.PathLike

    Raises
    ------
    ModelFileError
        If the network cannot be stored in a file that ``read`` accepts (e.g. more than MAX_PARAMS
        parameters); nothing is written then.
    OSError
        If the file cannot be written (missing directory, permissions, disk full, ...) or ``path`` is
        not a regular file (a directory, a FIFO, a device, or a symbolic link to one: refused, errno
        EINVAL or EISDIR); a file that was at ``path`` before is then unchanged, and no temporary file
        is left behind.
    KeyboardInterrupt
        On Ctrl-C; the file at ``path`` is then the previous one, or the complete new one if the
        interrupt came after the rename, and nothing else is left behind (see ``write_atomic``).
    """
    path = os.fspath(path)
    where = f"cannot save to {path}"
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
    try:
        head = json.dumps(header, sort_keys=True, allow_nan=False, default=_json_default).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: {exc}") from None
    if len(head) > MAX_HEADER:
        raise ModelFileError(f"{where}: the header would have {len(head)} bytes, more than {MAX_HEADER}")
    # never write a file that read() would refuse: check exactly what will be on disk
    _check_header(_parse_header(head, where), where)
    if not np.isfinite(params).all():
        raise ModelFileError(f"{where}: the parameters hold non-finite values")

    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(head))
    trailer = _CRC.pack(zlib.crc32(blob, zlib.crc32(head, zlib.crc32(prefix))))
    write_atomic(path, (prefix, head, blob, trailer), "the model")


# ---- writing a file atomically ---------------------------------------------------------------------

_FileIO = io.FileIO             # the temporary file's owner (a name the fault-injection tests can replace)


def write_atomic(path, chunks, what: str = "the file") -> None:
    """Write the bytes-like ``chunks`` to ``path`` so that ``path`` is always either the old or the new file.

    The bytes go to a new temporary file next to the target (mode 0666 less the umask, or the mode of
    the file it replaces), which is flushed to disk and renamed over the target only when complete; the
    directory is then synced (POSIX, best effort).

    Interrupts: in the main thread a Ctrl-C (SIGINT) during the write is held back until the files are in
    a consistent state and then raised as KeyboardInterrupt (between chunks of 16 MiB, before the rename,
    or after it); on any exception the temporary file is closed exactly once (it is owned by one file
    object) and removed, so nothing is left behind and no descriptor leaks.

    Targets: a new path, a regular file, or a symbolic link to a regular file. The new file replaces the
    path itself (a symbolic link is replaced by the file, and the file it pointed to is left unchanged),
    so a save never writes outside the directory of ``path``. An existing target that is not a regular
    file -- a FIFO, a device such as /dev/null, a socket, or a symbolic link to one -- is refused, since
    renaming over it would replace it.

    Parameters
    ----------
    path : str or os.PathLike
    chunks : iterable of bytes-like objects
    what : str, default="the file"
        For messages: "cannot save {what}: ...".

    Raises
    ------
    FileNotFoundError
        If the directory of ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a directory (or a symbolic link to one).
    OSError
        With errno EINVAL if ``path`` exists and is not a regular file; or if writing fails (permissions,
        disk full, ...): a file that was at ``path`` before is then unchanged, and no temporary file is left.
    KeyboardInterrupt
        If interrupted; as for an OSError, the previous file is then intact and nothing is left behind,
        unless the interrupt came after the rename (the new file is then complete at ``path``).
    """
    path = os.fspath(path)
    target = os.path.abspath(path)
    directory, base = os.path.split(target)
    try:
        st = os.stat(directory)          # (not os.path.isdir, which would turn any error into "missing")
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"cannot save {what}: the directory {directory!r} does not exist",
                                path) from None
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, f"cannot save {what}: {directory!r} is not a directory", path)
    mode = check_target(target, path, what)
    with _HeldInterrupt() as interrupt:
        _write_and_replace(chunks, target, mode, interrupt, path, what)
        _fsync_directory(directory)


def _write_and_replace(chunks, target: str, mode: int | None, interrupt, path: str, what: str) -> None:
    """Write a temporary file next to ``target`` and rename it over ``target`` (the body of ``write_atomic``).

    (A function of its own, so that its ``try`` starts a frame: an exception at the ``try`` statement
    itself then still leaves through the ``with`` of ``write_atomic``, which restores the SIGINT handler.)
    """
    directory, base = os.path.split(target)
    fh = tmp = None
    try:
        fh, tmp = _create_temp(directory, base)              # one statement: the file and its name, or neither
        if mode is not None and hasattr(os, "fchmod"):
            # a plain open(path, "wb") keeps the mode of an existing file; so does the replacement
            os.fchmod(fh.fileno(), mode)
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            for pos in range(0, len(view), _CHUNK):
                _write_all(fh, view[pos:pos + _CHUNK])
                interrupt.deliver()                          # a Ctrl-C held back: stop here, cleaned up below
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        check_target(target, path, what)                     # again, just before the rename
        interrupt.deliver()
        os.replace(tmp, target)
        tmp = None
    except BaseException:
        _discard(fh, tmp)
        raise
    finally:
        if fh is not None:
            fh.close()                                       # idempotent: closes at most once


def check_target(target: str, path: str, what: str) -> int | None:
    """Refuse a target that is a directory or not a regular file; return its mode, None if there is none.

    ``target`` is the absolute path, ``path`` as given (for messages). Also used by the command line to
    refuse an --out before any work.
    """
    try:
        st = os.stat(target)                                 # follows a symbolic link
    except FileNotFoundError:
        return None                                          # a new file (or a dangling link, replaced)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, f"cannot save {what}: the path is a directory", path)
    if not stat.S_ISREG(st.st_mode):
        kind = _file_kind(st.st_mode)
        link = " (through a symbolic link)" if os.path.islink(target) else ""
        raise OSError(errno.EINVAL, f"cannot save {what}: the path is {kind}{link}, not a regular file; "
                                    "refusing to replace it (give the path of a regular file)", path)
    return stat.S_IMODE(st.st_mode)


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "a special file"


def _write_all(fh, view: memoryview) -> None:
    """Write all of ``view`` (FileIO.write may write less than asked)."""
    while view:
        view = view[fh.write(view):]


def _discard(fh, tmp: str | None) -> None:
    """After a failure: close the temporary file (once) and remove it; errors here are secondary."""
    try:
        if fh is not None:
            fh.close()
    except OSError:
        pass
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


class _HeldInterrupt:
    """Hold back SIGINT (Ctrl-C) in the main thread while files are inconsistent; ``deliver`` raises it.

    Python raises KeyboardInterrupt between any two bytecodes, e.g. after ``open`` returned a descriptor
    and before it is stored: no code structure can own it then. So while a save is in progress its own
    handler only records the signal; ``deliver`` (called where stopping is clean) and leaving the block
    restore the previous handler and call it, which raises KeyboardInterrupt. In other threads Python
    never runs signal handlers, so there is nothing to hold back; a handler that is not a Python
    callable (SIG_IGN, SIG_DFL) is left alone.
    """

    def __init__(self):
        self._old = None
        self._pending = False

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self
        try:
            old = signal.getsignal(signal.SIGINT)
            if callable(old):
                self._old = old
                try:
                    signal.signal(signal.SIGINT, self._hold)
                except (ValueError, OSError):        # not the main interpreter: signals are not ours to hold
                    self._old = None
            return self
        except BaseException:
            self._restore()
            raise

    def _hold(self, signum, frame):
        self._pending = True

    def _restore(self):
        old, self._old = self._old, None
        if old is not None:
            signal.signal(signal.SIGINT, old)
        return old

    def deliver(self) -> None:
        """Raise the held-back interrupt now, if there is one (by calling the previous handler)."""
        if self._pending:
            self._pending = False
            old = self._restore()
            if old is not None:
                old(signal.SIGINT, None)

    def __exit__(self, *exc_info):
        old = self._restore()
        if self._pending and old is not None:
            self._pending = False
            old(signal.SIGINT, None)        # KeyboardInterrupt takes over from any exception in flight
        return False


def _create_temp(directory: str, base: str):
    """Create a new empty temporary file next to the target; return its file object and its path.

    Created with mode 0666 less the umask (unlike ``tempfile.mkstemp``'s 0600), as a plain
    ``open(path, "wb")`` would create the target; O_EXCL, so an existing file or link is never used.
    """
    for _ in range(100):
        # "." hides it; the name matches the *.annf.tmp* pattern of .gitignore for ".annf" models
        name = os.path.join(directory, f".{base[:200]}.tmp{secrets.token_hex(8)}")
        try:
            return _FileIO(name, "xb"), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file next to the target", directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); best effort, since the new file is already complete."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---- reading ---------------------------------------------------------------------------------------

def read(path) -> tuple[dict, np.ndarray]:
    """Read and check a model file; return its header and its parameters.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    header : dict
        The checked header (see the module docstring).
    params : ndarray of shape (n_params,)
        The flat parameters, finite, in the header's dtype (native byte order).

    Raises
    ------
    ModelFileError
        With what is wrong, for anything that is not a complete, intact model file of a known version.
    OSError
        If the file cannot be opened or read (missing, a directory, no permission, ...).
    """
    path = os.fspath(path)
    fh, size = open_regular(path, ModelFileError, "an annfast model file")
    with fh:
        return _read_open(fh, size, path)


def open_regular(path: str, error, what: str):
    """Open ``path`` for binary reading if it is a regular file: return (file object, size in bytes).

    A directory is an IsADirectoryError; a FIFO, device or socket is ``error`` ("not a regular file, so not
    {what}"), found without waiting: the open does not block (O_NONBLOCK) until the file is known to be regular.
    The descriptor is closed on every way out but the return.
    """
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | nonblock)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, f"is a directory, not {what}", path)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{path}: not a regular file, so not {what}")
        if nonblock:
            os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return fh, st.st_size


def _read_open(fh, size: int, path: str) -> tuple[dict, np.ndarray]:
    prefix = fh.read(_PREFIX.size)
    if not prefix:
        raise ModelFileError(f"{path}: the file is empty, not an annfast model")
    if not prefix.startswith(MAGIC):
        if MAGIC.startswith(prefix):
            raise ModelFileError(f"{path}: truncated: the file ends after {len(prefix)} bytes")
        raise ModelFileError(f"{path}: not an annfast model file (wrong magic bytes{_looks_like(prefix)})")
    if len(prefix) < _PREFIX.size:
        raise ModelFileError(f"{path}: truncated: the file ends after {len(prefix)} bytes, inside its "
                             f"{_PREFIX.size}-byte prefix")
    _, version, head_len = _PREFIX.unpack(prefix)
    if version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {version} is newer than this annfast "
                             f"({_version()}) reads (up to {FORMAT_VERSION}); upgrade annfast")
    if version < 1:
        raise ModelFileError(f"{path}: invalid model format version {version}")
    if head_len > MAX_HEADER:
        raise ModelFileError(f"{path}: header length {head_len} exceeds the limit of {MAX_HEADER} bytes "
                             "(damaged or not an annfast model)")
    if _PREFIX.size + head_len > size:
        raise ModelFileError(f"{path}: header length {head_len} does not fit the file ({size} bytes): "
                             "truncated or damaged")
    raw = fh.read(head_len)
    if len(raw) != head_len:
        raise ModelFileError(f"{path}: truncated while reading the header")
    header = _parse_header(raw, path)
    _check_header(header, path)
    n_params, dtype = header["n_params"], np.dtype(header["dtype"])
    trailer = _CRC.size if version >= 2 else 0
    expected = _PREFIX.size + head_len + n_params * dtype.itemsize + trailer
    if size != expected:
        raise ModelFileError(f"{path}: the file has {size} bytes but its header describes {expected} "
                             f"({'truncated' if size < expected else 'trailing data'} or damaged)")
    file_crc = zlib.crc32(raw, zlib.crc32(prefix)) if trailer else None
    params = _read_params(fh, n_params, dtype, header["params_crc32"], file_crc, path)
    return header, params


def _read_params(fh, n_params: int, dtype: np.dtype, crc32: int, file_crc: int | None, path: str) -> np.ndarray:
    """Read n_params little-endian values in chunks, checking the CRC-32s and finiteness.

    ``file_crc`` (version 2) is the CRC-32 of the prefix and header: it is continued over the
    parameters and compared with the file's final 4 bytes before anything else is trusted.
    """
    nbytes = n_params * dtype.itemsize
    try:
        raw = np.empty(nbytes, dtype=np.uint8)
    except MemoryError:
        raise ModelFileError(f"{path}: not enough memory for its {n_params} parameters ({nbytes} bytes)") from None
    view = memoryview(raw)
    crc, pos = 0, 0
    while pos < nbytes:
        got = fh.readinto(view[pos:pos + _CHUNK])
        if not got:
            raise ModelFileError(f"{path}: truncated while reading the parameters")
        crc = zlib.crc32(view[pos:pos + got], crc)
        if file_crc is not None:
            file_crc = zlib.crc32(view[pos:pos + got], file_crc)
        pos += got
    if file_crc is not None:
        tail = fh.read(_CRC.size)
        if len(tail) != _CRC.size:
            raise ModelFileError(f"{path}: truncated while reading the final CRC-32")
        if _CRC.unpack(tail)[0] != file_crc:
            raise ModelFileError(f"{path}: the file is damaged (CRC-32 mismatch: a byte of its header or "
                                 "parameters has changed)")
    if fh.read(1):
        raise ModelFileError(f"{path}: the file grew while it was read")
    if crc != crc32:
        raise ModelFileError(f"{path}: the parameters are damaged (CRC-32 mismatch)")
    params = raw.view(dtype.newbyteorder("<"))
    if not params.dtype.isnative:
        params = params.astype(dtype)
    bad = ~np.isfinite(params)
    if bad.any():
        raise ModelFileError(f"{path}: the parameters hold non-finite values (first at index "
                             f"{int(np.flatnonzero(bad)[0])})")
    return params


def _looks_like(prefix: bytes) -> str:
    for magic, what in _LOOKS_LIKE:
        if prefix.startswith(magic):
            return f"; it looks like {what}"
    if prefix[:1] == b"\x80" and prefix[1:2] and prefix[1] <= 5:
        return "; it looks like a Python pickle, which annfast never loads"
    if prefix.lstrip()[:1] in (b"{", b"["):
        return "; it looks like JSON text"
    return ""


def _parse_header(raw: bytes, where: str):
    """Decode the header bytes as strict JSON (no duplicated keys, no NaN/Infinity, bounded integers)."""
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant,
                          parse_int=_bounded_int, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"{where}: damaged header (not UTF-8: {exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{where}: damaged header (not valid JSON: {exc})") from None
    except _HeaderError as exc:
        raise ModelFileError(f"{where}: invalid header: {exc}") from None
    except RecursionError:
        raise ModelFileError(f"{where}: invalid header: JSON nested too deeply") from None
    except ValueError as exc:       # anything else the decoder refuses
        raise ModelFileError(f"{where}: damaged header ({_short(str(exc), 200)})") from None


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _HeaderError(f"duplicated key {_short(key)}")
        out[key] = value
    return out


def _no_constant(name):
    raise _HeaderError(f"{name} is not a valid JSON value")


def _bounded_int(text):
    if len(text) > MAX_INT_DIGITS:
        raise _HeaderError(f"an integer with {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise _HeaderError(f"the number {_short(text)} is out of range")
    return value


def _check_header(h, where) -> None:   # long: one check per header field, in the schema's order
    """Strict schema check: exactly the known fields, each of the right type and in range.

    Everything ``Network`` would refuse is refused here, so that loading a file that passes cannot
    raise anything but a ModelFileError.
    """
    from ._validation import ACTIVATIONS, CROSS_ENTROPY_OUTPUTS, LOSSES

    def bad(what):
        raise ModelFileError(f"{where}: invalid header: {what}")

    if not isinstance(h, dict):
        bad(f"a JSON {_json_type(h)} instead of an object")
    if h.get("format") != "annfast-model":
        bad(f"not an annfast model header (format {_short(h.get('format'))})")
    missing, unknown = _HEADER_KEYS - h.keys(), h.keys() - _HEADER_KEYS
    if missing:
        bad(f"missing fields {sorted(missing)}")
    if unknown:
        bad(f"unknown fields {_short(sorted(unknown))}")
    if not isinstance(h["annfast_version"], str) or len(h["annfast_version"]) > 100:
        bad(f"annfast_version {_short(h['annfast_version'])}")
    dtype = h["dtype"]
    if not isinstance(dtype, str) or dtype not in _FINFO_MAX:
        bad(f"dtype {_short(dtype)}; expected 'float32' or 'float64'")
    n_in = h["n_inputs"]
    if not _is_int(n_in) or not 1 <= n_in <= MAX_PARAMS:
        bad(f"n_inputs {_short(n_in)}; expected an integer in [1, {MAX_PARAMS}]")
    layers = h["layers"]
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        bad(f"layers must be a list of 1 to {MAX_LAYERS} layers, got {_short(layers)}")
    n_params, width = 0, n_in
    for k, layer in enumerate(layers):
        if not isinstance(layer, dict):
            bad(f"layers[{k}] is a JSON {_json_type(layer)}, not an object")
        if layer.keys() != _LAYER_KEYS:
            bad(f"layers[{k}] has fields {_short(sorted(layer))}; expected {sorted(_LAYER_KEYS)}")
        units, act, slope = layer["units"], layer["activation"], layer["negative_slope"]
        if not _is_int(units) or not 1 <= units <= MAX_PARAMS:
            bad(f"layers[{k}].units {_short(units)}; expected an integer in [1, {MAX_PARAMS}]")
        if not isinstance(act, str) or act not in ACTIVATIONS:
            bad(f"layers[{k}].activation {_short(act)}")
        if act == "softmax" and k != len(layers) - 1:
            bad(f"layers[{k}]: softmax is only allowed in the output layer")
        if act == "softmax" and units < 2:
            bad(f"layers[{k}]: a softmax output layer needs at least 2 units")
        if (isinstance(slope, bool) or not isinstance(slope, (int, float))
                or not 0 <= slope <= _FINFO_MAX[dtype]):
            bad(f"layers[{k}].negative_slope {_short(slope)}; expected a number >= 0, finite in {dtype}")
        n_params += (width + 1) * units
        if n_params > MAX_PARAMS:
            bad(f"the layers have more than {MAX_PARAMS} parameters (at layers[{k}]), the limit of this format")
        width = units
    loss = h["loss"]
    if not isinstance(loss, str) or loss not in LOSSES:
        bad(f"loss {_short(loss)}")
    if loss == "cross_entropy" and layers[-1]["activation"] not in CROSS_ENTROPY_OUTPUTS:
        bad(f"cross_entropy loss needs a softmax or sigmoid output layer, not {layers[-1]['activation']!r}")
    seed = h["seed"]
    if seed is not None and (not _is_int(seed) or seed < 0):
        bad(f"seed {_short(seed)}; expected null or an integer >= 0")
    if not _is_int(h["n_params"]) or h["n_params"] != n_params:
        bad(f"n_params {_short(h['n_params'])} does not match the layers ({n_params})")
    if not _is_int(h["params_crc32"]) or not 0 <= h["params_crc32"] < 1 << 32:
        bad(f"params_crc32 {_short(h['params_crc32'])}; expected an unsigned 32-bit integer")
    training = h["training"]
    if training is not None:
        if not isinstance(training, dict):
            bad(f"training must be an object or null, got a JSON {_json_type(training)}")
        for key, value in training.items():
            if value is not None and not isinstance(value, (str, int, float)):
                bad(f"training[{_short(key)}] is a JSON {_json_type(value)}; expected a number, string, "
                    "boolean or null")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _json_type(x) -> str:
    for kind, name in ((dict, "object"), (list, "array"), (str, "string"), (bool, "boolean"),
                       (int, "number"), (float, "number")):
        if isinstance(x, kind):
            return name
    return "null" if x is None else type(x).__name__


def _short(x, limit: int = 60) -> str:
    """repr(x), cut to ``limit`` characters: messages quote what a hostile file holds."""
    text = repr(x)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _json_default(obj):
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)       # a non-finite value is then refused by json.dumps(allow_nan=False)
    raise TypeError(f"cannot store {type(obj).__name__} in a model header")


def _version() -> str:
    from . import __version__

    return __version__
