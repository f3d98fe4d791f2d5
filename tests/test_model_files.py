"""Model files (annfast._io): the format, hostile and damaged files, fuzzing, atomic saves, round trips.

What is proved here:
- the layout of a saved file is the one documented in annfast/_io.py, and two reference files written by
  an independent writer (tests/data/model_files/make_corpus.py) load to the expected networks;
- every file of the corpus of nasty files fails with a ModelFileError naming the problem, and loading
  never unpickles, never executes code and never allocates in proportion to a declared size (tracemalloc
  in-process; a subprocess with a low RLIMIT_AS on Linux);
- Hypothesis fuzzing of load (mutations of valid files and random bytes): a loaded Network is valid and,
  unless the settings in the file can overflow (checked by interval arithmetic), predicts finite values;
  anything else is a ModelFileError;
- a save interrupted at any point (exception or KeyboardInterrupt while creating, writing, flushing,
  fsyncing or renaming; a real "file too large" failure) keeps the previous file and leaves no temporary;
- save/load, pickle, copy.copy, copy.deepcopy and joblib keep predictions bitwise, for both dtypes and every
  activation. Pickling keeps the random stream and the momentum; a saved file does not: a loaded network
  trains exactly like a new network with the saved seed and the saved parameters.
"""
from __future__ import annotations

import copy
import errno
import inspect
import io
import json
import os
import pickle
import signal
import stat
import struct
import subprocess
import sys
import threading
import tracemalloc
import types
import zlib
from pathlib import Path

import joblib
import numpy as np
import pytest
from conftest import DTYPES, QUICK, TOL
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from reference import ReferenceMLP

import annfast as af
from annfast import _io

CORPUS = Path(__file__).parent / "data" / "model_files"
EXPECTED: dict = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
NOT_MODEL_FILES = {"make_corpus.py", "README.md", "expected.json"}
ACTIVATIONS = ["linear", "step", "sigmoid", "tanh", "relu", "leaky_relu", "softmax"]
HEADER_KEYS = {"format", "annfast_version", "n_inputs", "layers", "dtype", "loss", "seed", "n_params",
               "params_crc32", "training"}


def _corpus_module():
    """tests/data/model_files/make_corpus.py as a module (executed from source: no __pycache__ there)."""
    path = CORPUS / "make_corpus.py"
    module = types.ModuleType("make_corpus")
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    return module


def make_net(dtype="float32", activation="tanh", seed=3):
    """4 inputs, a hidden layer of 6 and an output layer of 3 with the given activation."""
    hidden = "tanh" if activation == "softmax" else activation
    return af.Network(4, [af.Dense(6, hidden, negative_slope=0.2), af.Dense(3, activation, negative_slope=0.1)],
                      dtype=dtype, seed=seed)


def data(n=24, seed=5):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 4))
    y = rng.integers(0, 3, size=n)          # class labels: one-hot targets for any output activation
    return X, y


def trained(dtype="float32", activation="tanh", seed=3):
    net = make_net(dtype, activation, seed)
    X, y = data()
    net.fit(X, y, epochs=2, learning_rate=0.05, momentum=0.5)      # advances the random stream and the velocity
    return net


def bits(a) -> bytes:
    a = np.asarray(a)
    return a.dtype.str.encode() + str(a.shape).encode() + a.tobytes()


def listing(directory) -> list[str]:
    return sorted(os.listdir(directory))


# ---- the format -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_saved_file_has_the_documented_layout(tmp_path, dtype):
    net = trained(dtype)
    path = tmp_path / "m.annf"
    net.save(path)
    raw = path.read_bytes()
    magic, version, head_len = struct.unpack("<8sII", raw[:16])
    assert magic == b"ANNFAST\x00" and version == 2 == _io.FORMAT_VERSION
    header = json.loads(raw[16:16 + head_len].decode("utf-8"))
    assert set(header) == HEADER_KEYS
    assert header["format"] == "annfast-model" and header["annfast_version"] == af.__version__
    assert header["n_inputs"] == 4 and header["dtype"] == dtype and header["seed"] == 3
    assert header["layers"] == [{"units": 6, "activation": "tanh", "negative_slope": 0.2},
                                {"units": 3, "activation": "tanh", "negative_slope": 0.1}]
    assert header["n_params"] == net.n_params and header["training"]["epochs"] == 2
    blob, trailer = raw[16 + head_len:-4], raw[-4:]
    assert len(blob) == net.n_params * np.dtype(dtype).itemsize            # then only the final CRC-32
    assert struct.unpack("<I", trailer)[0] == zlib.crc32(raw[:-4])         # of the whole file before it
    assert zlib.crc32(blob) == header["params_crc32"]
    assert blob == net.parameters.astype(np.dtype(dtype).newbyteorder("<")).tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_load_keeps_the_dtype(tmp_path, dtype):
    net = trained(dtype)
    net.save(tmp_path / "m.annf")
    loaded = af.load(tmp_path / "m.annf")
    assert loaded.dtype == np.dtype(dtype) and loaded.parameters.dtype == np.dtype(dtype)
    assert loaded.predict(data()[0]).dtype == np.dtype(dtype)
    header, params = _io.read(tmp_path / "m.annf")
    assert header["dtype"] == dtype and params.dtype == np.dtype(dtype) and params.dtype.isnative


def test_newer_format_version_is_a_clear_error(tmp_path):
    path = tmp_path / "m.annf"
    trained().save(path)
    raw = bytearray(path.read_bytes())
    raw[8:12] = struct.pack("<I", 3)
    path.write_bytes(bytes(raw))
    with pytest.raises(af.ModelFileError, match=r"format version 3 is newer .* upgrade annfast"):
        af.load(path)


@pytest.mark.parametrize("name", ["valid_float32.annf", "valid_float64.annf", "v2_valid_float32.annf",
                                  "v2_valid_float64.annf"])
def test_reference_files_from_an_independent_writer(name):
    """Version 2 files, and version 1 files (written before the whole-file CRC-32), load."""
    corpus = _corpus_module()
    net = af.load(CORPUS / name)
    header, _ = split((CORPUS / name).read_bytes())
    dtype = header["dtype"]
    assert net.dtype == np.dtype(dtype) and net.seed == header["seed"] and net.loss == header["loss"]
    assert [(d.units, d.activation, d.negative_slope) for d in net.layers] == [
        (la["units"], la["activation"], float(la["negative_slope"])) for la in header["layers"]]
    np.testing.assert_array_equal(net.parameters, np.array(corpus.reference_params(net.n_params), dtype=dtype))
    X = np.random.default_rng(0).uniform(-1, 1, size=(9, net.n_inputs))
    ref = ReferenceMLP(net.get_weights(), [d.activation for d in net.layers], net.loss,
                       slope=net.layers[0].negative_slope)
    np.testing.assert_allclose(net.predict(X), ref.predict(X.astype(dtype).astype(np.float64)),
                               rtol=TOL[dtype], atol=TOL[dtype])


# ---- the whole-file CRC-32 of version 2 (issue 18, item 7) ------------------------------------------

def _small_saved_model(tmp_path) -> bytes:
    net = af.Network(2, [af.Dense(2, "leaky_relu", negative_slope=0.01), af.Dense(1, "linear")], seed=1)
    net.fit(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([1.0, 0.0]), epochs=1)     # a "training" header too
    net.save(tmp_path / "small.annf")
    return (tmp_path / "small.annf").read_bytes()


def test_every_single_bit_flip_of_the_header_is_refused(tmp_path):
    """Flipping "negative_slope": 0.01 to 0.11 or 1.01 used to load silently and change predictions; now
    every one of the bits of the prefix and header, flipped alone, gives a ModelFileError."""
    raw = _small_saved_model(tmp_path)
    head_end = 16 + struct.unpack("<I", raw[12:16])[0]
    path = tmp_path / "flipped.annf"
    for bit in range(head_end * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        with pytest.raises(af.ModelFileError):
            af.load(path)
    af.load(tmp_path / "small.annf")                      # the original loads


def test_sampled_bit_flips_of_the_parameters_and_final_crc_are_refused(tmp_path):
    raw = _small_saved_model(tmp_path)
    head_end = 16 + struct.unpack("<I", raw[12:16])[0]
    path = tmp_path / "flipped.annf"
    bits_after = list(range(head_end * 8, len(raw) * 8))
    for bit in bits_after[::3] + bits_after[-32:]:           # a third of the parameter bits, every CRC bit
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        with pytest.raises(af.ModelFileError, match="CRC-32 mismatch|non-finite"):
            af.load(path)


@pytest.mark.parametrize("old, new", [(b'"negative_slope": 0.01', b'"negative_slope": 0.11'),
                                      (b'"negative_slope": 0.01', b'"negative_slope": 1.01'),
                                      (b'"seed": 1', b'"seed": 3')])
def test_header_change_that_parses_is_caught_by_the_final_crc(tmp_path, old, new):
    raw = _small_saved_model(tmp_path)
    assert old in raw
    (tmp_path / "changed.annf").write_bytes(raw.replace(old, new, 1))
    with pytest.raises(af.ModelFileError, match="CRC-32 mismatch: a byte of its header or parameters"):
        af.load(tmp_path / "changed.annf")


def test_version_1_files_still_load_and_are_saved_again_as_version_2(tmp_path):
    net = af.load(CORPUS / "valid_float32.annf")
    net.save(tmp_path / "again.annf")
    raw = (tmp_path / "again.annf").read_bytes()
    assert struct.unpack("<I", raw[8:12])[0] == 2 and struct.unpack("<I", raw[-4:])[0] == zlib.crc32(raw[:-4])
    assert bits(af.load(tmp_path / "again.annf").parameters) == bits(net.parameters)


# ---- the corpus of nasty files ---------------------------------------------------------------------

def test_corpus_is_complete_and_listed():
    files = {p.name for p in CORPUS.iterdir() if p.is_file() and not p.name.startswith(".")} - NOT_MODEL_FILES
    assert files == set(EXPECTED)
    assert all(p.stat().st_size <= 8192 for p in CORPUS.iterdir() if p.name in EXPECTED)


def test_corpus_is_regenerated_byte_for_byte(tmp_path):
    _corpus_module().main(["make_corpus.py", str(tmp_path)])
    for name in EXPECTED:
        assert (tmp_path / name).read_bytes() == (CORPUS / name).read_bytes(), name
    # compared as data: a checkout may turn the line ends of this text file into CRLF
    assert json.loads((tmp_path / "expected.json").read_text(encoding="utf-8")) == EXPECTED


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e is not None))
def test_corpus_file_is_refused_clearly(name):
    with pytest.raises(af.ModelFileError) as info:
        af.load(CORPUS / name)
    message = str(info.value)
    assert EXPECTED[name] in message
    assert name in message                          # says which file
    assert len(message) < 400                       # quotes of hostile content are cut short


def test_loading_never_unpickles(monkeypatch, tmp_path):
    def forbidden(*args, **kwargs):
        raise AssertionError("load must never unpickle or np.load")

    trained().save(tmp_path / "m.annf")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(np, "load", forbidden)
    af.load(tmp_path / "m.annf")
    for name in EXPECTED:
        try:
            af.load(CORPUS / name)
        except af.ModelFileError:
            pass


def _header_file(path, header_bytes: bytes, params: bytes = b"") -> Path:
    path.write_bytes(b"ANNFAST\x00" + struct.pack("<II", 1, len(header_bytes)) + header_bytes + params)
    return path


def test_deeply_nested_header(tmp_path):
    path = _header_file(tmp_path / "deep.annf", b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(af.ModelFileError, match="nested too deeply"):
        af.load(path)
    path = _header_file(tmp_path / "deep2.annf", b'{"training": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001)
    with pytest.raises(af.ModelFileError, match="nested too deeply"):
        af.load(path)


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(IsADirectoryError if os.name == "posix" else OSError):
        af.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        af.load(tmp_path / "missing.annf")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_fifo_and_devices_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(af.ModelFileError, match="not a regular file"):
        af.load(tmp_path / "fifo")                   # a blocking open would wait forever for a writer
    if os.path.exists("/dev/zero"):
        with pytest.raises(af.ModelFileError, match="not a regular file"):
            af.load("/dev/zero")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_file(tmp_path):
    path = tmp_path / "m.annf"
    trained().save(path)
    path.chmod(0)
    with pytest.raises(PermissionError):
        af.load(path)


def _sparse(path, header: dict, dtype_size: int) -> Path | None:
    """A file whose size matches the header's n_params, made of holes; None if the filesystem refuses."""
    head = json.dumps(header, sort_keys=True).encode()
    _header_file(path, head)
    try:
        os.truncate(path, 16 + len(head) + header["n_params"] * dtype_size)
    except OSError:
        return None
    return path


def _huge_header(n_inputs: int, units: int, dtype="float64") -> dict:
    return {"annfast_version": "0", "dtype": dtype, "format": "annfast-model", "loss": "half_squared_error",
            "layers": [{"activation": "linear", "negative_slope": 0.01, "units": units}], "n_inputs": n_inputs,
            "n_params": (n_inputs + 1) * units, "params_crc32": 0, "seed": None, "training": None}


@pytest.mark.parametrize("name", ["n_params_2_40.annf", "n_params_2_56.annf", "header_len_max.annf",
                                  "n_inputs_2_63.annf", "units_2_63.annf", "int_5000_digits.annf", "sparse"])
def test_huge_declared_sizes_allocate_almost_nothing(tmp_path, name):
    path = CORPUS / name
    if name == "sparse":                                         # 2^40 parameters: 8 TiB of holes
        path = _sparse(tmp_path / "sparse.annf", _huge_header(2 ** 20 - 1, 2 ** 20), 8) if os.name == "posix" else None
        if path is None:
            pytest.skip("the filesystem refuses an 8 TiB sparse file")
    tracemalloc.start()
    try:
        with pytest.raises(af.ModelFileError):
            af.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024, f"loading {name} allocated {peak} bytes"


RLIMIT_SCRIPT = r"""
import json, resource, sys
import annfast

def vm_size():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))

annfast.load(sys.argv[1])                     # warm up: everything a load needs is imported and allocated once
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (256 << 20), hard))
out = {}
for path in sys.argv[2:]:
    try:
        annfast.load(path)
        out[path] = "loaded"
    except (annfast.ModelFileError, OSError) as exc:
        out[path] = type(exc).__name__ + ": " + str(exc)
    except BaseException as exc:
        out[path] = "UNEXPECTED " + type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux")
def test_hostile_files_under_a_low_address_space_limit(tmp_path):
    """All hostile files load in a process that cannot grow by more than 256 MiB: no crash, clear errors."""
    files = {str(CORPUS / name): expected for name, expected in EXPECTED.items()}
    deep = _header_file(tmp_path / "deep.annf", b"[" * 100_000)
    files[str(deep)] = "nested too deeply"
    # a sparse file of 2^28 float64 parameters (2 GiB, at the format's limit): the size matches the header,
    # so only the allocation of the parameters can stop it
    big = _sparse(tmp_path / "big.annf", _huge_header(2 ** 14 - 1, 2 ** 14), 8)
    if big is not None:
        files[str(big)] = "not enough memory for its 268435456 parameters"
    huge = _sparse(tmp_path / "huge.annf", _huge_header(2 ** 20 - 1, 2 ** 20), 8)
    if huge is not None:
        files[str(huge)] = "more than 268435456 parameters"
    proc = subprocess.run([sys.executable, "-c", RLIMIT_SCRIPT, str(CORPUS / "valid_float32.annf"), *files],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    for path, expected in files.items():
        if expected is None:
            assert results[path] == "loaded"
        else:
            assert results[path].startswith("ModelFileError: ") and expected in results[path], results[path]


# ---- fuzzing ---------------------------------------------------------------------------------------

CI = QUICK or bool(os.environ.get("CI"))
# a few thousand examples in CI (6 fuzz tests), more in full mode; derandomized in CI, no database there
settings.register_profile("annfast-quick", max_examples=600, deadline=None, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("annfast-full", max_examples=2500, deadline=None, derandomize=CI,
                          suppress_health_check=[HealthCheck.too_slow], **({"database": None} if CI else {}))
FUZZ = settings.get_profile("annfast-quick" if QUICK else "annfast-full")
FUZZ_EXAMPLES = 6 * FUZZ.max_examples


def _base_networks():
    X, y = data()
    a = af.Network(4, [af.Dense(5, "tanh"), af.Dense(3, "softmax")], dtype="float32", seed=1)
    a.fit(X, y, epochs=2, learning_rate=0.05)
    b = af.Network(4, [af.Dense(3, "leaky_relu", negative_slope=0.2), af.Dense(3, "relu"), af.Dense(1, "linear")],
                   dtype="float64")
    c = af.Network(4, [af.Dense(3, "step"), af.Dense(2, "sigmoid")], dtype="float64", seed=0, loss="cross_entropy")
    d = af.Network(4, [af.Dense(2, "leaky_relu", negative_slope=3.0), af.Dense(2, "linear")], dtype="float32", seed=9)
    return [a, b, c, d]


@pytest.fixture(scope="module")
def fuzz_path(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz") / "m.annf"


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    out = []
    for k, net in enumerate(_base_networks()):
        path = tmp_path_factory.mktemp("bases") / f"{k}.annf"
        net.save(path)
        out.append(path.read_bytes())
    return out


def split(raw: bytes):
    """(header, parameter bytes) of a model file of version 1 or 2 (without the final CRC-32 of version 2)."""
    version, head_len = struct.unpack("<II", raw[8:16])
    return json.loads(raw[16:16 + head_len]), raw[16 + head_len:len(raw) - (4 if version >= 2 else 0)]


def assemble(header_bytes: bytes, params: bytes, version=2, head_len=None) -> bytes:
    """A model file; version 2 and above get the final CRC-32 of everything before it."""
    head_len = len(header_bytes) if head_len is None else head_len
    raw = b"ANNFAST\x00" + struct.pack("<II", version, head_len) + header_bytes + params
    return raw + struct.pack("<I", zlib.crc32(raw)) if version >= 2 else raw


def bounded(net) -> bool:
    """Whether every pre-activation and output is provably far below overflow for inputs in [-1, 1]."""
    limit = float(np.finfo(net.dtype).max) / 64
    m = 1.0
    for (W, b), layer in zip(net.get_weights(), net.layers):
        with np.errstate(over="ignore"):
            z = float(np.abs(W.astype(np.float64)).sum(axis=1).max()) * m + float(np.abs(b.astype(np.float64)).max())
        if not z < limit:
            return False
        if layer.activation in ("sigmoid", "tanh", "softmax", "step"):
            m = 1.0
        elif layer.activation == "leaky_relu":
            m = z * max(1.0, layer.negative_slope)
        else:
            m = z
    return m < limit


X_FUZZ = np.linspace(-1, 1, 40).reshape(-1, 1)


def check_load(path: Path, raw: bytes):
    """load() either refuses with a ModelFileError or returns a valid network that predicts finite values."""
    path.write_bytes(raw)
    try:
        net = af.load(path)
    except af.ModelFileError as exc:
        assert str(exc) and len(str(exc)) < 500
        event("refused")
        return None
    event("loaded")
    header, params = _io.read(path)
    assert isinstance(net, af.Network) and net.dtype == np.dtype(header["dtype"])
    assert net.n_inputs == header["n_inputs"] and net.n_params == header["n_params"] == params.size
    # (a slope given as a JSON integer becomes the nearest float, like any decimal number)
    assert [(d.units, d.activation, d.negative_slope) for d in net.layers] == [
        (la["units"], la["activation"], float(la["negative_slope"])) for la in header["layers"]]
    assert np.isfinite(net.parameters).all() and bits(net.parameters) == bits(params)
    X = np.resize(X_FUZZ, (X_FUZZ.shape[0], net.n_inputs))
    out = net.predict(X)
    assert out.shape == (X.shape[0], net.n_outputs) and out.dtype == net.dtype
    if bounded(net):
        assert np.isfinite(out).all()
    else:     # the file describes a network that can overflow (e.g. a huge negative_slope): faithful, not finite
        event("settings can overflow")
    return net


HOSTILE = st.one_of(
    # copies: the list and dict values below are single objects that a test may mutate once they sit in a header
    # (fuzzing writes into whatever dict it reaches), which would change what later examples draw
    st.sampled_from([None, True, False, 0, -1, 1, 2, 3, 4, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 53 + 1, 2 ** 63 - 1,
                     2 ** 63, 2 ** 64, -(2 ** 63), 0.0, -0.0, 0.5, 1e-300, 3.5e38, 1e300, 1.7976931348623157e308,
                     "", "float32", "float64", "float16", "softmax", "relu", "leaky_relu", "step", "sigmoid",
                     "tanh", "linear", "cross_entropy", "half_squared_error", "annfast-model", [], {}, [1],
                     {"units": 1}]).map(copy.deepcopy),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                 max_leaves=6),
)


# values that a field may well hold, so that mutated files often get past the checks and are loaded
PLAUSIBLE = {
    "units": st.integers(1, 8), "n_inputs": st.integers(1, 8), "n_params": st.integers(1, 80),
    "activation": st.sampled_from(ACTIVATIONS), "dtype": st.sampled_from(DTYPES),
    "loss": st.sampled_from(["half_squared_error", "cross_entropy"]),
    "negative_slope": st.one_of(st.floats(0, 10), st.floats(0, 1e40), st.sampled_from([0, 1, 1e38, 1e300])),
    "seed": st.one_of(st.none(), st.integers(0, 2 ** 70)), "annfast_version": st.text(max_size=10),
    "extra": st.integers(),
}


def _consistent_n_params(header) -> int | None:
    try:
        n, width = 0, header["n_inputs"]
        for layer in header["layers"]:
            n += (width + 1) * layer["units"]
            width = layer["units"]
        return n if isinstance(n, int) and 0 < n <= 4096 else None
    except Exception:
        return None


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_fuzz_byte_flips(fuzz_path, bases, data):
    raw = bytearray(data.draw(st.sampled_from(bases)))
    head_end = 16 + struct.unpack("<I", raw[12:16])[0]
    lo, hi = data.draw(st.sampled_from([(0, 16), (16, head_end), (head_end, len(raw)), (0, len(raw))]))
    for _ in range(data.draw(st.integers(1, 6))):
        raw[data.draw(st.integers(lo, hi - 1))] ^= data.draw(st.integers(1, 255))
    check_load(fuzz_path, bytes(raw))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_fuzz_truncations_and_insertions(fuzz_path, bases, data):
    raw = data.draw(st.sampled_from(bases))
    i = data.draw(st.integers(0, len(raw)))
    j = data.draw(st.integers(i, min(len(raw), i + 64)))
    op = data.draw(st.sampled_from(["truncate", "delete", "insert", "replace", "append", "duplicate"]))
    chunk = data.draw(st.binary(min_size=1, max_size=64))
    raw = {"truncate": lambda: raw[:i], "delete": lambda: raw[:i] + raw[j:],
           "insert": lambda: raw[:i] + chunk + raw[i:], "replace": lambda: raw[:i] + chunk + raw[i + len(chunk):],
           "append": lambda: raw + chunk, "duplicate": lambda: raw[:j] + raw[i:j] + raw[j:]}[op]()
    check_load(fuzz_path, raw)


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_fuzz_header_fields(fuzz_path, bases, data):
    header, params = split(data.draw(st.sampled_from(bases)))
    base_values = np.frombuffer(params, dtype="<f4" if header["dtype"] == "float32" else "<f8")
    # one to three field mutations, at the top level, in a layer or in the training settings
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(["top", "layer", "training"]))
        if where == "layer" and isinstance(header.get("layers"), list) and header["layers"] \
                and isinstance(header["layers"][0], dict):
            target = header["layers"][data.draw(st.integers(0, len(header["layers"]) - 1))]
            if not isinstance(target, dict):
                continue
        elif where == "training" and isinstance(header.get("training"), dict):
            target = header["training"]
        else:
            target = header
        keys = sorted(target) + ["extra"]
        key = data.draw(st.sampled_from(keys))
        op = data.draw(st.sampled_from(["set", "set", "set", "delete", "wrap", "layers"]))
        if op == "set":
            target[key] = data.draw(st.one_of(PLAUSIBLE.get(key, HOSTILE), HOSTILE) if target is not header.get(
                "training") else st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                                           allow_infinity=False), st.text(max_size=8), HOSTILE))
        elif op == "delete":
            target.pop(key, None)
        elif op == "wrap" and key in target:
            target[key] = [target[key]]
        elif op == "layers" and isinstance(header.get("layers"), list):      # add, drop or repeat a layer
            layers = header["layers"]
            k = data.draw(st.integers(0, len(layers)))
            new = {"units": data.draw(st.integers(1, 6)),
                   "activation": data.draw(st.sampled_from(ACTIVATIONS)), "negative_slope": 0.01}
            header["layers"] = data.draw(st.sampled_from([layers[:k] + [new] + layers[k:], layers[:k] + layers[k + 1:],
                                                          layers + layers]))
    if data.draw(st.booleans()):
        # repair the sizes and checksum so that the deeper checks and Network() itself are reached
        n = _consistent_n_params(header)
        if n is not None and header.get("dtype") in ("float32", "float64"):
            params = np.resize(base_values, n).astype("<f4" if header["dtype"] == "float32" else "<f8").tobytes()
            header["n_params"] = n
            header["params_crc32"] = zlib.crc32(params)
    text = json.dumps(header, sort_keys=True)
    tweak = data.draw(st.sampled_from(["none"] * 6 + ["duplicate", "nan", "infinity", "big_int", "whitespace"]))
    if tweak == "duplicate" and text.startswith("{"):
        text = '{"n_inputs": 1, ' + text[1:]
    elif tweak == "nan":
        text = text.replace("0.01", "NaN", 1)
    elif tweak == "infinity":
        text = text.replace('"n_inputs": ', '"n_inputs": Infinity, "x": ', 1)
    elif tweak == "big_int":
        text = text.replace('"n_params": ', '"n_params": ' + "9" * data.draw(st.integers(19, 5000)) + ", \"y\": ", 1)
    elif tweak == "whitespace":
        text = " \n" + text + "\t "
    check_load(fuzz_path, assemble(text.encode(), params))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_fuzz_prefix(fuzz_path, bases, data):
    header, params = split(data.draw(st.sampled_from(bases)))
    head = json.dumps(header, sort_keys=True).encode()
    version = data.draw(st.one_of(st.sampled_from([0, 1, 1, 2]), st.integers(0, 2 ** 32 - 1)))
    head_len = data.draw(st.one_of(st.just(len(head)), st.integers(len(head) - 8, len(head) + 8),
                                   st.integers(0, 2 ** 32 - 1), st.sampled_from([2 ** 20, 2 ** 20 + 1, 2 ** 31])))
    check_load(fuzz_path, assemble(head, params, version, head_len))


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_fuzz_forged_parameters(fuzz_path, bases, data):
    """Parameters replaced with a valid checksum: non-finite ones are refused, finite ones load faithfully."""
    header, params = split(data.draw(st.sampled_from(bases)))
    width = 32 if header["dtype"] == "float32" else 64
    values = data.draw(st.lists(st.floats(width=width), min_size=header["n_params"], max_size=header["n_params"]))
    params = np.array(values, dtype="<f4" if width == 32 else "<f8").tobytes()
    header["params_crc32"] = zlib.crc32(params)
    net = check_load(fuzz_path, assemble(json.dumps(header, sort_keys=True).encode(), params))
    assert (net is None) == (not np.isfinite(values).all())


@pytest.mark.slow
@FUZZ
@given(raw=st.one_of(st.binary(max_size=1024),
                     st.binary(max_size=512).map(lambda b: b"ANNFAST\x00" + b),
                     st.tuples(st.integers(0, 2 ** 32 - 1), st.binary(max_size=512)).map(
                         lambda t: b"ANNFAST\x00" + struct.pack("<II", 1, t[0] % 600) + t[1])))
def test_fuzz_random_bytes(fuzz_path, raw):
    assert check_load(fuzz_path, raw) is None


def test_fuzz_budget():
    """'Thousands' of generated files: at least 3000 in quick mode, more in full mode."""
    assert FUZZ_EXAMPLES >= 3000 and FUZZ.deadline is None
    assert FUZZ.derandomize or not CI


# ---- atomic saves ----------------------------------------------------------------------------------

class Faults:
    """Counts the OS and file calls of a save and injects one fault at call number ``at``.

    Modes: "ctrl-c-instead" raises KeyboardInterrupt in place of the call and "disk-full-instead" an
    OSError (ENOSPC) -- an interrupt or failure as the call starts; "ctrl-c-after" makes the real call and
    then sends the process a real SIGINT, which is what Ctrl-C does: Python raises KeyboardInterrupt at
    its next check, e.g. after open() returned a descriptor and before the caller stored it.
    """

    def __init__(self, at=None, mode=None):
        self.calls, self.at, self.mode = [], at, mode
        self.replaced_at = None

    def wrap(self, name, real):
        def call(*args, **kwargs):
            k = len(self.calls)
            self.calls.append(name)
            if k == self.at and self.mode == "ctrl-c-instead":
                raise KeyboardInterrupt
            if k == self.at and self.mode == "disk-full-instead":
                raise OSError(errno.ENOSPC, "No space left on device")
            try:
                result = real(*args, **kwargs)
            finally:                                 # (also when the call raised, e.g. stat of a new path)
                if k == self.at and self.mode == "ctrl-c-after":
                    signal.raise_signal(signal.SIGINT)
            if name == "os.replace":
                self.replaced_at = k
            return result
        return call

    def install(self, monkeypatch):
        for name in ("stat", "lstat", "open", "close", "fsync", "fchmod", "replace", "unlink"):
            if hasattr(os, name):
                monkeypatch.setattr(os, name, self.wrap(f"os.{name}", getattr(os, name)))
        faults = self

        class FaultyFile(io.FileIO):
            def write(self, b):
                return faults.wrap("file.write", super().write)(b)

            def flush(self):
                return faults.wrap("file.flush", super().flush)()

            def close(self):
                return faults.wrap("file.close", super().close)()

        monkeypatch.setattr(_io, "_FileIO", self.wrap("file.create", FaultyFile), raising=False)


def open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def leaked(before: list[str]) -> set[str]:
    """Descriptors open now that were not before. (Not equality: a thread left by an earlier test, a pool shutting
    down say, may close its own descriptors meanwhile; a leak is a descriptor more, not one less.)"""
    return set(open_fds()) - set(before)


def _save_with_faults(monkeypatch, net, path, faults):
    """Run net.save(path) under ``faults``; return the exception it raised (None if none)."""
    faults.install(monkeypatch)
    try:
        net.save(path)
    except BaseException as exc:      # noqa: B036 -- KeyboardInterrupt is what is tested
        return exc
    finally:
        monkeypatch.undo()
    return None


def _check_after_fault(tmp_path, path, old, new, exc, faults, previous):
    """The invariants of an interrupted or failed save (see test_fault_at_every_call_of_save)."""
    names = listing(tmp_path)
    assert names in (["model.annf"], []), f"litter after {faults.mode} at call {faults.at}: {names}"
    replaced = faults.replaced_at is not None
    if path.exists():
        loaded = bits(af.load(path).parameters)
        assert loaded == bits((new if replaced else old).parameters)
    else:
        assert not previous and not replaced
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


SAVE_FAULT_MODES = ["ctrl-c-instead", "ctrl-c-after", "disk-full-instead"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd (Linux)")
@pytest.mark.usefixtures("sigint_raises")
@pytest.mark.parametrize("previous", [True, False], ids=["over-old-file", "new-file"])
@pytest.mark.parametrize("mode", SAVE_FAULT_MODES)
def test_fault_at_every_call_of_save(tmp_path, monkeypatch, mode, previous):
    """A Ctrl-C or a failure at every OS or file call of a save, one at a time (issue 18, item 5).

    A Ctrl-C just after the temporary file was opened used to leave the *.tmp* file, leak its
    descriptor and sometimes raise OSError(EBADF) from a double close instead of KeyboardInterrupt.
    Now, at every call: a Ctrl-C raises KeyboardInterrupt (never OSError), a failure raises its OSError
    (or is ignored where it is best effort: the directory sync after the rename), no temporary file is
    left, no descriptor leaks, the SIGINT handler is restored, and the file at the path is the old one
    (or the new one, complete, when the fault came after the rename).
    """
    path = tmp_path / "model.annf"
    old = make_net("float64", seed=1)
    if previous:
        old.save(path)
        os.chmod(path, 0o640)                 # so that the save also restores the mode (os.fchmod)
    new = trained("float32", seed=2)
    clean = Faults()
    probe = tmp_path / "probe.annf"
    if previous:
        old.save(probe)
    clean.install(monkeypatch)
    try:
        new.save(probe)
    finally:
        monkeypatch.undo()
    probe.unlink()
    calls = clean.calls
    assert "os.replace" in calls and "os.fsync" in calls
    checked = 0
    for at, name in enumerate(calls):
        if name == "os.close" and mode != "ctrl-c-after":
            continue      # close() releases the descriptor even when it fails: it cannot fail "before" closing
        fds = open_fds()
        faults = Faults(at, mode)
        exc = _save_with_faults(monkeypatch, new, path, faults)
        assert faults.calls[at] == name            # the same sequence of calls as the clean save
        if mode.startswith("ctrl-c"):
            assert isinstance(exc, KeyboardInterrupt), f"{mode} at call {at} ({name}): {exc!r}"
        elif exc is not None:
            assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC, f"at call {at} ({name}): {exc!r}"
        else:
            assert faults.replaced_at is not None and faults.replaced_at < at   # only the directory sync
        assert not leaked(fds), f"descriptor leaked by {mode} at call {at} ({name})"
        _check_after_fault(tmp_path, path, old if previous else None, new, exc, faults, previous)
        if faults.replaced_at is not None:         # start again from the old file
            if previous:
                old.save(path)
                os.chmod(path, 0o640)
            else:
                path.unlink()
        checked += 1
    assert checked >= len(calls) - 2


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd (Linux)")
@pytest.mark.usefixtures("sigint_raises")
@pytest.mark.parametrize("previous", [True, False], ids=["over-old-file", "new-file"])
def test_ctrl_c_at_every_line_of_save(tmp_path, previous):
    """A real SIGINT at every line that runs in annfast/_io.py during a save (sys.settrace), one at a time:
    KeyboardInterrupt, no temporary file, no leaked descriptor, the old file intact (or the new one
    complete, after the rename). A SIGINT is what Ctrl-C is; Python turns it into KeyboardInterrupt
    through the handler, which a save holds back while its files are inconsistent."""
    path = tmp_path / "model.annf"
    old = make_net("float64", seed=1)
    new = trained("float32", seed=2)
    io_file = _io.__file__

    def run(at):
        """Save with a SIGINT at line event number ``at`` (None: none); return (line events, exception)."""
        count = [0]

        def local(frame, event, arg):
            if event == "line":
                if count[0] == at:
                    signal.raise_signal(signal.SIGINT)
                count[0] += 1
            return local

        def tracer(frame, event, arg):
            return local if frame.f_code.co_filename == io_file else None

        previous_trace = sys.gettrace()
        sys.settrace(tracer)
        try:
            new.save(path)
        except KeyboardInterrupt as exc:
            return count[0], exc
        finally:
            sys.settrace(previous_trace)
        return count[0], None

    def reset():
        if previous:
            old.save(path)
        elif path.exists():
            path.unlink()

    reset()
    total, exc = run(None)
    assert exc is None and total > 50
    reset()
    for at in range(total):
        fds = open_fds()
        _, exc = run(at)
        assert isinstance(exc, KeyboardInterrupt), f"no KeyboardInterrupt for a SIGINT at line event {at}"
        assert not leaked(fds), f"descriptor leaked by a SIGINT at line event {at}"
        names = listing(tmp_path)
        assert names in (["model.annf"], []), f"litter after a SIGINT at line event {at}: {names}"
        if path.exists():
            assert bits(af.load(path).parameters) in (bits(new.parameters),) + ((bits(old.parameters),) if previous
                                                                                 else ())
        else:
            assert not previous
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        reset()


def _write_atomic_body_lines() -> set:
    """Line numbers of the statements of the try block of a save (where it owns the temporary file)."""
    lines, first = inspect.getsourcelines(_io._write_and_replace)
    text = [line.rstrip() for line in lines]
    start = next(k for k, line in enumerate(text) if line.strip() == "fh = tmp = None")
    stop = next(k for k, line in enumerate(text) if line.strip() == "except BaseException:")
    return {first + k for k in range(start, stop) if text[k].strip() and not text[k].strip().startswith("#")}


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd (Linux)")
@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, MemoryError])
def test_exception_at_every_statement_of_the_write(tmp_path, exc_type):
    """An exception raised directly (not through the SIGINT handler) at the start of every statement where
    the save owns its temporary file -- the try block of _write_and_replace and the helpers it calls -- is
    cleaned up by the code's structure alone: the exception propagates, no temporary file, no descriptor,
    the old file intact. (Cleanup clauses themselves cannot be protected this way in Python; a real Ctrl-C
    there is held back, see test_ctrl_c_at_every_line_of_save.)"""
    path = tmp_path / "model.annf"
    old = make_net("float64", seed=1)
    old.save(path)
    new = trained("float32", seed=2)
    body = _write_atomic_body_lines()
    helpers = {_io._create_temp.__code__, _io._write_all.__code__, _io.check_target.__code__}
    write_code = _io._write_and_replace.__code__

    def run(at):
        count = [0]

        def local(frame, event, arg):
            if event == "line" and (frame.f_code is not write_code or frame.f_lineno in body):
                if count[0] == at:
                    raise exc_type
                count[0] += 1
            return local

        def tracer(frame, event, arg):
            return local if frame.f_code is write_code or frame.f_code in helpers else None

        previous_trace = sys.gettrace()
        sys.settrace(tracer)
        try:
            new.save(path)
        except exc_type as exc:
            return count[0], exc
        finally:
            sys.settrace(previous_trace)
        return count[0], None

    handler = signal.getsignal(signal.SIGINT)
    total, exc = run(None)
    assert exc is None and total > 10
    old.save(path)
    for at in range(total):
        fds = open_fds()
        _, exc = run(at)
        assert isinstance(exc, exc_type), f"statement event {at}: {exc!r}"
        assert not leaked(fds), f"descriptor leaked by {exc_type.__name__} at statement event {at}"
        assert listing(tmp_path) == ["model.annf"], f"litter after statement event {at}"
        assert signal.getsignal(signal.SIGINT) is handler
        if bits(af.load(path).parameters) != bits(old.parameters):
            assert bits(af.load(path).parameters) == bits(new.parameters)      # only after the rename
            old.save(path)


@pytest.mark.usefixtures("sigint_raises")
def test_held_back_ctrl_c_stops_a_large_save_between_chunks(tmp_path, monkeypatch):
    """A Ctrl-C during the write of a large file is raised after the current 16 MiB chunk, not at the end."""
    path = tmp_path / "model.annf"
    make_net().save(path)
    before = path.read_bytes()
    writes = []
    real_write_all = _io._write_all

    def write_all(fh, view):
        writes.append(len(view))
        real_write_all(fh, view)
        if len(writes) == 1:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(_io, "_write_all", write_all)
    monkeypatch.setattr(_io, "_CHUNK", 64)
    with pytest.raises(KeyboardInterrupt):
        trained().save(path)
    assert len(writes) == 1 and path.read_bytes() == before and listing(tmp_path) == ["model.annf"]


def test_save_in_a_thread_keeps_the_sigint_handler(tmp_path):
    """Only the main thread may hold back SIGINT; a save in another thread leaves the handler alone."""
    handler = signal.getsignal(signal.SIGINT)
    errors = []
    thread = threading.Thread(target=lambda: _run_collecting(errors, trained().save, tmp_path / "t.annf"))
    thread.start()
    thread.join()
    assert errors == [] and signal.getsignal(signal.SIGINT) is handler
    assert listing(tmp_path) == ["t.annf"]


def _run_collecting(errors, fn, *args):
    try:
        fn(*args)
    except BaseException as exc:      # noqa: B036
        errors.append(exc)


# ---- targets that are not regular files (issue 18, item 15) ------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_save_refuses_to_replace_a_fifo(tmp_path):
    fifo = tmp_path / "model.annf"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="a FIFO .*not a regular file; refusing to replace it") as info:
        make_net().save(fifo)
    assert info.value.errno == errno.EINVAL and info.value.filename == str(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and listing(tmp_path) == ["model.annf"]


@pytest.mark.skipif(not os.path.exists("/dev/null") or not hasattr(os, "symlink"), reason="POSIX /dev/null")
def test_save_refuses_a_symlink_to_a_device(tmp_path):
    """As root, saving to /dev/null replaced /dev/null; through a link (safe to test) the same is refused."""
    link = tmp_path / "model.annf"
    os.symlink("/dev/null", link)
    with pytest.raises(OSError, match="a character device \\(through a symbolic link\\), not a regular file"):
        make_net().save(link)
    assert os.readlink(link) == "/dev/null" and stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert listing(tmp_path) == ["model.annf"]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="symbolic links")
def test_save_over_a_symlink_to_a_regular_file_replaces_the_link(tmp_path):
    """Documented choice: the new file replaces the path itself, never the file a link points to (a link
    planted in a shared directory cannot make a save overwrite a file elsewhere)."""
    (tmp_path / "elsewhere").mkdir()
    real = tmp_path / "elsewhere" / "real.annf"
    make_net(seed=1).save(real)
    before = real.read_bytes()
    link = tmp_path / "model.annf"
    os.symlink(real, link)
    net = trained()
    net.save(link)
    assert not os.path.islink(link) and bits(af.load(link).parameters) == bits(net.parameters)
    assert real.read_bytes() == before
    os.symlink(tmp_path / "missing.annf", tmp_path / "dangling.annf")     # a dangling link: replaced too
    net.save(tmp_path / "dangling.annf")
    assert not os.path.islink(tmp_path / "dangling.annf") and not (tmp_path / "missing.annf").exists()


SAVE_FSIZE_SCRIPT = r"""
import os, resource, sys
import annfast
path = sys.argv[1]
small = annfast.Network(2, [annfast.Dense(1)], seed=0)
small.save(path)
before = open(path, "rb").read()
resource.setrlimit(resource.RLIMIT_FSIZE, (len(before) + 100, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
big = annfast.Network(50, [annfast.Dense(50)], seed=0)
try:
    big.save(path)
except OSError as exc:
    print("OSError", exc.errno)
assert open(path, "rb").read() == before
print(sorted(os.listdir(os.path.dirname(path))))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_FSIZE semantics")
def test_save_that_hits_a_real_file_size_limit(tmp_path):
    """A real write failure (EFBIG from RLIMIT_FSIZE, as a full disk would give): the old file survives."""
    proc = subprocess.run([sys.executable, "-c", SAVE_FSIZE_SCRIPT, str(tmp_path / "model.annf")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == [f"OSError {errno.EFBIG}", "['model.annf']"]


def test_save_into_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_net().save(tmp_path / "nope" / "model.annf")
    assert listing(tmp_path) == []


def test_save_over_a_directory(tmp_path):
    (tmp_path / "model.annf").mkdir()
    with pytest.raises(IsADirectoryError):
        make_net().save(tmp_path / "model.annf")
    assert listing(tmp_path) == ["model.annf"] and listing(tmp_path / "model.annf") == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX modes")
def test_save_file_mode(tmp_path):
    """Like open(path, "wb"): 0666 less the umask for a new file, the old mode for a replaced one."""
    umask = os.umask(0o022)
    try:
        make_net().save(tmp_path / "new.annf")
        assert stat.S_IMODE((tmp_path / "new.annf").stat().st_mode) == 0o644
        (tmp_path / "new.annf").chmod(0o640)
        make_net().save(tmp_path / "new.annf")
        assert stat.S_IMODE((tmp_path / "new.annf").stat().st_mode) == 0o640
    finally:
        os.umask(umask)


def test_save_refuses_what_load_would_refuse(tmp_path):
    try:
        net = af.Network(2, [af.Dense(3, "leaky_relu", negative_slope=1e39), af.Dense(1)], dtype="float32")
    except ValueError:          # once Network itself refuses a slope that overflows float32, nothing to save
        net = None
    if net is not None:
        with pytest.raises(af.ModelFileError, match="negative_slope"):
            net.save(tmp_path / "m.annf")
    net = trained()
    net.history.params["callback"] = object()
    with pytest.raises(af.ModelFileError, match="cannot store object"):
        net.save(tmp_path / "m.annf")
    net.history.params["callback"] = float("nan")
    with pytest.raises(af.ModelFileError, match="not JSON compliant"):
        net.save(tmp_path / "m.annf")
    assert listing(tmp_path) == []


def test_save_accepts_str_and_pathlike(tmp_path):
    net = trained()
    net.save(str(tmp_path / "a.annf"))
    net.save(tmp_path / "b.annf")
    assert (tmp_path / "a.annf").read_bytes() == (tmp_path / "b.annf").read_bytes()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        net.save("c.annf")                        # a bare name: the directory is the current one
    finally:
        os.chdir(cwd)
    assert (tmp_path / "c.annf").read_bytes() == (tmp_path / "a.annf").read_bytes()


# ---- round trips -----------------------------------------------------------------------------------

def _joblib_round_trip(net, tmp_path):
    joblib.dump(net, tmp_path / "net.joblib")
    return joblib.load(tmp_path / "net.joblib")


CLONES = {
    "pickle": lambda net, tmp_path: pickle.loads(pickle.dumps(net, protocol=pickle.HIGHEST_PROTOCOL)),
    "copy": lambda net, tmp_path: copy.copy(net),
    "deepcopy": lambda net, tmp_path: copy.deepcopy(net),
    "joblib": _joblib_round_trip,
}


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_save_load_round_trip(tmp_path, dtype, activation):
    net = trained(dtype, activation)
    X, y = data(seed=8)
    net.save(tmp_path / "m.annf")
    loaded = af.load(tmp_path / "m.annf")
    assert repr(loaded) == repr(net) and loaded.layers == net.layers
    assert (loaded.dtype, loaded.loss, loaded.seed, loaded.n_params) == (net.dtype, net.loss, net.seed, net.n_params)
    assert bits(loaded.parameters) == bits(net.parameters)
    assert bits(loaded.predict(X)) == bits(net.predict(X))
    assert bits(loaded.predict_one(X[0])) == bits(net.predict_one(X[0]))
    # a saved file restarts the random stream from the seed and drops the momentum: the loaded network
    # trains exactly like a new network with that seed and the saved parameters
    fresh = make_net(dtype, activation, seed=net.seed)
    fresh.set_parameters(net.parameters)
    h1 = loaded.fit(X, y, epochs=2, learning_rate=0.05, momentum=0.5)
    h2 = fresh.fit(X, y, epochs=2, learning_rate=0.05, momentum=0.5)
    assert bits(loaded.parameters) == bits(fresh.parameters) and h1.history == h2.history
    assert not np.array_equal(loaded.parameters, net.parameters)        # it did train


def test_saved_file_does_not_continue_the_random_stream(tmp_path):
    net = trained("float64")
    X, y = data(seed=8)
    net.save(tmp_path / "m.annf")
    loaded = af.load(tmp_path / "m.annf")
    clone = pickle.loads(pickle.dumps(net))
    for n in (net, loaded, clone):
        n.fit(X, y, epochs=1, learning_rate=0.05)                     # shuffles with the network's stream
    assert bits(clone.parameters) == bits(net.parameters)
    assert bits(loaded.parameters) != bits(net.parameters)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("how", sorted(CLONES))
def test_clone_round_trip_continues_training_identically(tmp_path, how, dtype, activation):
    net = trained(dtype, activation)
    X, y = data(seed=8)
    clone = CLONES[how](net, tmp_path)
    assert clone is not net and repr(clone) == repr(net) and clone.dtype == net.dtype
    assert bits(clone.parameters) == bits(net.parameters)
    assert bits(clone.predict(X)) == bits(net.predict(X))
    # pickling keeps the random stream, the momentum velocity and the history
    assert clone.history.history == net.history.history
    h1 = net.fit(X, y, epochs=2, learning_rate=0.05, momentum=0.5)
    h2 = clone.fit(X, y, epochs=2, learning_rate=0.05, momentum=0.5)
    assert bits(clone.parameters) == bits(net.parameters) and h1.history == h2.history
    # and the clone is independent of the original
    clone.set_parameters(np.zeros(clone.n_params))
    assert np.any(net.parameters != 0)


def test_pickle_keeps_the_kernel():
    from annfast import _core
    from annfast._validation import KERNELS

    others = [k for k, code in KERNELS.items() if _core.isa_supported(code) and k != make_net().kernel]
    if not others:
        pytest.skip("only one kernel runs on this CPU")
    net = trained("float32")
    net.kernel = others[0]
    clone = pickle.loads(pickle.dumps(net))
    assert clone.kernel == net.kernel
    X = data(n=64, seed=8)[0]
    assert bits(clone.predict(X)) == bits(net.predict(X))
