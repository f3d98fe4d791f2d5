"""Hostile files against every reader (issue 18: the standing adversarial layer).

Hypothesis generates model files and FANN/CSV data files that are random bytes, mutations of valid files
(bit and byte flips, truncations, insertions, duplicated chunks), headers announcing huge counts, and
numbers at and beyond the float32/float64 limits. They are fed to ``annfast.load``, to the
``annfast.datafiles`` readers, and to the command line (``python -m annfast`` in a subprocess whose
address space is limited to 1 GiB, where a crash or a runaway allocation is possible). What must hold:

- only the documented exceptions: ``ModelFileError`` from load, ``DataFileError`` (or another
  ``ValueError``) from the data readers; the CLI exits 0 or 2, with a one-line ``annfast: error:``
  message and never a traceback, a MemoryError or a signal;
- no warning (the test configuration turns warnings into errors; the subprocess runs with ``-W error``);
- no litter: the directory holds afterwards exactly the inputs (and the output of a successful run);
- bounded memory: the subprocess cannot grow beyond 1 GiB of address space, in-process reads of small
  files stay under a few MiB (tracemalloc).

ANNFAST_QUICK=1 runs fewer examples (well under a minute in all); the full mode runs more.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import QUICK
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annfast as af
from annfast import datafiles

DATA = Path(__file__).resolve().parent / "data"
RLIMIT_AS = 1 << 30


def _profile(quick: int, full: int) -> settings:
    return settings(max_examples=quick if QUICK else full, deadline=None, derandomize=QUICK, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


IN_PROCESS = _profile(300, 2000)
SUBPROCESS = _profile(15, 80)


# ---- the raw material: valid files to mutate --------------------------------------------------------

def _valid_model_bytes() -> list[bytes]:
    out = []
    X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([1.0, 1.0, 0.0])
    for dtype, act in (("float32", "leaky_relu"), ("float64", "sigmoid")):
        net = af.Network(2, [af.Dense(3, act, negative_slope=0.01), af.Dense(1, "linear")], dtype=dtype, seed=0)
        net.fit(X, y, epochs=1)
        with tempfile.TemporaryDirectory() as tmp:
            net.save(Path(tmp) / "m.annf")
            out.append((Path(tmp) / "m.annf").read_bytes())
    return out


VALID_MODELS = _valid_model_bytes()
VALID_FANN = [(DATA / "xor.data").read_bytes(), b"2 2 1\n0 1\n1\n1 0\n1\n", b"1 3 0\n1e38 -1e-320 3.5e38\n"]
VALID_CSV = [b"a,b,y\n1,2,3\n4,5,6\n7,8,9\n", b"1,2\n3,4\n", b'"x";"y"\n1.5;2\n3e2;4\n']

NUMBER = st.sampled_from(["0", "1", "-1", "1e38", "3.4028235e38", "3.5e38", "1e39", "1e300", "1.8e308", "1e-40",
                          "1e-320", "nan", "inf", "-inf", "0x10", "1_000", "", " ", "1e999", "9" * 400, "١"])
HUGE = st.one_of(st.sampled_from([0, 1, 2, 10 ** 8, 10 ** 9, 2 ** 31, 2 ** 32 - 1, 2 ** 63, 10 ** 18, 10 ** 30]),
                 st.integers(0, 2 ** 70))


@st.composite
def mutated(draw, bases: list[bytes]) -> bytes:
    """A valid file with a few random edits: bit flips, byte changes, truncation, insertion, duplication."""
    raw = bytearray(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "byte", "truncate", "insert", "delete", "duplicate"]))
        i = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and raw:
            raw[i] = draw(st.integers(0, 255))
        elif op == "truncate":
            del raw[i:]
        elif op == "insert":
            raw[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del raw[i:i + draw(st.integers(1, 16))]
        elif op == "duplicate":
            j = draw(st.integers(i, min(len(raw), i + 32)))
            raw[j:j] = raw[i:j]
    return bytes(raw)


@st.composite
def model_files(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "mutated", "header", "counts"]))
    if kind == "random":
        return draw(st.one_of(st.binary(max_size=512), st.binary(max_size=256).map(lambda b: b"ANNFAST\x00" + b)))
    if kind == "mutated":
        return draw(mutated(VALID_MODELS))
    raw = draw(st.sampled_from(VALID_MODELS))
    version, head_len = struct.unpack("<II", raw[8:16])
    header = json.loads(raw[16:16 + head_len])
    params = raw[16 + head_len:-4]
    if kind == "header":                                    # a header field changed, with a correct CRC-32
        key = draw(st.sampled_from(sorted(header)))
        header[key] = draw(st.one_of(HUGE, st.floats(allow_nan=False), st.text(max_size=8), st.none(),
                                     st.lists(st.integers(), max_size=3)))
    else:                                                   # huge sizes in a well-formed file
        header["n_params"] = draw(HUGE)
        header["n_inputs"] = draw(st.one_of(st.just(header["n_inputs"]), HUGE))
        header["layers"][0]["units"] = draw(st.one_of(st.just(header["layers"][0]["units"]), HUGE))
    head = json.dumps(header, sort_keys=True).encode()
    if draw(st.booleans()):
        head_len = len(head)
    else:
        head_len = draw(st.one_of(st.just(len(head)), HUGE.map(lambda n: n % 2 ** 32)))
    body = b"ANNFAST\x00" + struct.pack("<II", version, head_len) + head + params
    return body + struct.pack("<I", zlib.crc32(body))


@st.composite
def fann_files(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "counts", "numbers"]))
    if kind == "random":
        return draw(st.one_of(st.binary(max_size=256), st.text(alphabet="0123456789 .e-\n\t", max_size=200)
                              .map(str.encode)))
    if kind == "mutated":
        return draw(mutated(VALID_FANN))
    if kind == "counts":                                   # a huge announced count over a few numbers
        counts = [draw(HUGE), draw(HUGE), draw(HUGE)]
        counts[draw(st.integers(0, 2))] = draw(st.integers(0, 3))
        body = "\n".join(" ".join(draw(NUMBER) for _ in range(draw(st.integers(0, 4))))
                         for _ in range(draw(st.integers(0, 6))))
        return f"{counts[0]} {counts[1]} {counts[2]}\n{body}\n".encode()
    pairs, n_in, n_out = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(0, 2))
    lines = [f"{pairs} {n_in} {n_out}"]
    for _ in range(pairs):
        lines.append(" ".join(draw(NUMBER) for _ in range(n_in)))
        lines.append(" ".join(draw(NUMBER) for _ in range(n_out)))
    return ("\n".join(lines) + "\n").encode("utf-8")


@st.composite
def csv_files(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "numbers"]))
    if kind == "random":
        return draw(st.one_of(st.binary(max_size=256), st.text(max_size=200).map(lambda t: t.encode("utf-8"))))
    if kind == "mutated":
        return draw(mutated(VALID_CSV))
    cols = draw(st.integers(1, 4))
    rows = [",".join(f"c{k}" for k in range(cols))] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 5))):
        rows.append(",".join(draw(NUMBER) for _ in range(draw(st.sampled_from([cols, cols, cols, cols + 1])))))
    return ("\n".join(rows) + "\n").encode("utf-8")


# ---- in-process readers -----------------------------------------------------------------------------

def _bounded(fn):
    """Run fn() under tracemalloc; return (result or exception, peak bytes)."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except Exception as exc:       # noqa: BLE001 -- classified by the caller
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.fixture
def work(tmp_path):
    """A directory of the test's own (reused by its examples: each writes the same file name)."""
    return tmp_path


@IN_PROCESS
@given(raw=model_files())
def test_load_hostile_model_files(work, raw):
    path = work / "m.annf"
    path.write_bytes(raw)
    result, peak = _bounded(lambda: af.load(path))
    if isinstance(result, Exception):
        assert type(result) is af.ModelFileError, repr(result)
        assert str(result).startswith(str(path)) and len(str(result)) < 500
    else:
        assert isinstance(result, af.Network) and np.isfinite(result.parameters).all()
    assert peak < 8 << 20, f"load of a {len(raw)}-byte file allocated {peak} bytes"
    assert sorted(os.listdir(work)) == ["m.annf"]


@IN_PROCESS
@given(raw=fann_files(), fmt=st.sampled_from([None, "fann"]))
def test_read_hostile_fann_files(work, raw, fmt):
    path = work / "d.data"
    path.write_bytes(raw)
    result, peak = _bounded(lambda: datafiles.load_data(path, fmt))
    _check_data_result(result, path)
    assert peak < 8 << 20, f"reading a {len(raw)}-byte file allocated {peak} bytes"
    assert sorted(os.listdir(work)) == ["d.data"]


@IN_PROCESS
@given(raw=csv_files(), header=st.sampled_from([None, True, False]))
def test_read_hostile_csv_files(work, raw, header):
    path = work / "d.csv"
    path.write_bytes(raw)
    result, peak = _bounded(lambda: datafiles.load_data(path, "csv", header=header))
    _check_data_result(result, path)
    assert peak < 8 << 20, f"reading a {len(raw)}-byte file allocated {peak} bytes"
    assert sorted(os.listdir(work)) == ["d.csv"]


def _check_data_result(result, path):
    if isinstance(result, Exception):
        assert isinstance(result, ValueError), repr(result)            # DataFileError is a ValueError
        assert type(result) is datafiles.DataFileError, repr(result)   # no option is wrong here: the file is
        assert str(path) in str(result) and len(str(result)) < 1000
        assert "\n" not in str(result)
    else:
        assert result.X.dtype == np.float64 and np.isfinite(result.X).all() and np.isfinite(result.y).all()
        assert result.X.shape[0] == result.y.shape[0] >= 1


# ---- the command line, in a subprocess with 1 GiB of address space ---------------------------------

def _limit_memory():   # pragma: no cover -- runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (RLIMIT_AS, RLIMIT_AS))


def _cli(*argv, cwd):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-W", "error", "-m", "annfast", *map(str, argv)], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env,
                          preexec_fn=_limit_memory if sys.platform.startswith("linux") else None)


def _check_cli(proc, what):
    assert proc.returncode in (0, 2), f"{what}: exit {proc.returncode}\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr, proc.stderr[-2000:]
    if proc.returncode == 2:
        assert proc.stderr.startswith("annfast: error: ") and len(proc.stderr.strip().splitlines()) == 1, \
            proc.stderr[-2000:]


@pytest.mark.slow
@SUBPROCESS
@given(raw=st.one_of(fann_files(), csv_files()), suffix=st.sampled_from([".data", ".csv", ".txt"]))
def test_cli_train_on_hostile_data_files(tmp_path_factory, raw, suffix):
    work = tmp_path_factory.mktemp("cli")
    (work / f"d{suffix}").write_bytes(raw)
    proc = _cli("train", f"d{suffix}", "--epochs", "1", "--hidden", "2", "--out", "m.annf", cwd=work)
    _check_cli(proc, "train")
    assert sorted(os.listdir(work)) == sorted([f"d{suffix}"] + (["m.annf"] if proc.returncode == 0 else []))
    if proc.returncode == 0:
        af.load(work / "m.annf")


@pytest.mark.slow
@SUBPROCESS
@given(raw=model_files())
def test_cli_info_and_predict_on_hostile_model_files(tmp_path_factory, raw):
    work = tmp_path_factory.mktemp("cli")
    (work / "m.annf").write_bytes(raw)
    (work / "x.csv").write_text("1,2\n3,4\n")
    for argv in (("info", "m.annf"), ("predict", "m.annf", "x.csv", "--out", "p.csv")):
        proc = _cli(*argv, cwd=work)
        _check_cli(proc, argv[0])
        expected = ["m.annf", "x.csv"] + (["p.csv"] if argv[0] == "predict" and proc.returncode == 0 else [])
        assert sorted(os.listdir(work)) == sorted(expected)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS")
@pytest.mark.parametrize("pairs", [10 ** 8, 10 ** 9, 10 ** 12])
def test_cli_tiny_fann_file_with_huge_counts_under_1_gib(tmp_path, pairs):
    """The example of issue 18: an 18-byte file announcing 10**8 pairs took 12.7 GB."""
    (tmp_path / "d.data").write_text(f"{pairs} 1 1\n0\n1\n")
    proc = _cli("train", "d.data", "--out", "m.annf", cwd=tmp_path)
    assert proc.returncode == 2 and f"announces {pairs} pairs" in proc.stderr, proc.stderr[-2000:]
    _check_cli(proc, "train")
    assert os.listdir(tmp_path) == ["d.data"]
