"""annfast.datafiles: CSV and FANN files read into float64 X, y; a malformed file -> a message naming file and line."""
import os
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from annfast import datafiles
from annfast.datafiles import DataFileError, detect_format, load_data, read_csv, read_data, read_fann

DATA = Path(__file__).resolve().parent / "data"


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        with open(path, "w", encoding="utf-8", newline="") as fh:   # Path.write_text has newline= from 3.10
            fh.write(content)
    return path


# ---- FANN --------------------------------------------------------------------------------------------

def test_read_fann_diabetes():
    X, y = read_fann(DATA / "diabetes.train")
    assert X.shape == (384, 8) and y.shape == (384, 2)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert X.flags.c_contiguous and y.flags.c_contiguous
    np.testing.assert_array_equal(y.sum(axis=1), 1.0)           # one-hot
    np.testing.assert_allclose(X[0], [0.058823, 0.445, 0.196721, 0.19, 0.029551, 0.414307, 0.20538, 0])
    np.testing.assert_array_equal(y[0], [0, 1])


def test_read_fann_xor():
    X, y = read_fann(str(DATA / "xor.data"))
    np.testing.assert_array_equal(X, [[-1, -1], [-1, 1], [1, -1], [1, 1]])
    np.testing.assert_array_equal(y, [[-1], [1], [1], [-1]])


def test_fann_line_numbers_and_names():
    data = load_data(DATA / "xor.data")
    assert data.fmt == "fann"
    np.testing.assert_array_equal(data.lines, [2, 4, 6, 8])
    assert data.input_names == ["x1", "x2"] and data.target_names == ["y1"]


def test_fann_accepts_other_wrapping_blank_lines_and_crlf(tmp_path):
    # FANN's own reader takes whitespace-separated numbers regardless of the line breaks
    path = write(tmp_path, "wrapped.data", "2 2 1\r\n\r\n1 2 3\r\n4\r\n5 6\r\n")
    X, y = read_fann(path)
    np.testing.assert_array_equal(X, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(y, [[3], [6]])


def test_fann_with_zero_outputs_has_empty_targets(tmp_path):
    X, y = read_fann(write(tmp_path, "inputs.data", "2 3 0\n1 2 3\n4 5 6e-1\n"))
    assert X.shape == (2, 3) and y.shape == (2, 0)
    assert X[1, 2] == 0.6


@pytest.mark.parametrize("content, message", [
    ("3 2 1\n1 2\n3\n1 2\n3\n", r"bad\.data: the file ends at line 5, before the inputs of pair 3; the header "
                                 r"\(line 1\) announces 3 pairs of 2 inputs and 1 output \(9 numbers\) but the "
                                 r"file holds 6"),
    ("2 2 1\n1 2\n3\n1\n3\n", r"bad\.data: line 4: expected the inputs of pair 2 \(2 numbers\), found 1; .* holds 5"),
    ("2 2 1\n1 2\n3\n1 2\n3 4\n", r"bad\.data: line 5: expected the outputs of pair 2 \(1 number\), found 2"),
    ("2 2 1\n1 2\n3\n1 2\n3\n7\n", r"bad\.data: line 6: unexpected numbers after the last pair; .* holds 7"),
    ("2 2\n1 2\n3\n", r"bad\.data: line 1: a FANN training file starts with a line of three integers "
                      r"'pairs inputs outputs', got '2 2'"),
    ("\n\n2 2.0 1\n1 2\n3\n", r"bad\.data: line 3: a FANN training file starts with a line of three integers"),
    ("0 2 1\n", r"bad\.data: line 1: the header announces 0 pairs: there is no data"),
    ("1 0 1\n5\n", r"bad\.data: line 1: the header announces 0 inputs"),
    ("2 2 1\n1 2\n3\n1 abc\n3\n", r"bad\.data: line 4: 'abc' is not a number"),
    ("2 2 1\n1 2\n3\n1 2\nnan\n", r"bad\.data: line 5: 'nan' is not a finite number"),
    ("1 1 1\n1e999\n0\n", r"bad\.data: line 2: '1e999' is not a finite number"),
], ids=["too-few", "short-line", "long-line", "too-many", "header-2-numbers", "header-not-int", "zero-pairs",
        "zero-inputs", "not-a-number", "nan", "overflow"])
def test_fann_errors_name_file_and_line(tmp_path, content, message):
    path = write(tmp_path, "bad.data", content)
    with pytest.raises(DataFileError, match=message):
        read_fann(path)


# ---- files that are not data -------------------------------------------------------------------------

@pytest.mark.parametrize("reader", [read_fann, read_csv, read_data], ids=["fann", "csv", "data"])
@pytest.mark.parametrize("content, message", [
    (b"", r"x\.dat: the file is empty$"),
    (b"\n  \n\t\n", r"x\.dat: the file is empty \(only blank lines\)"),
    (b"1 2 3\n\x7fELF\x02\x01\x00\x00garbage", r"x\.dat: line 2: binary content \(a NUL byte\); this is not a text "
                                               r"data file"),
    (b"a,b\n1,2\n3,\xe9\n", r"x\.dat: line 3: byte 0xe9 is not UTF-8 text"),
], ids=["empty", "blank", "binary", "latin-1"])
def test_files_that_are_not_data(tmp_path, reader, content, message):
    path = write(tmp_path, "x.dat", content)
    with pytest.raises(DataFileError, match=message):
        reader(path)


def test_missing_file_and_directory_raise_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_data(tmp_path / "missing.csv")
    with pytest.raises(FileNotFoundError):
        read_fann(tmp_path / "missing.train")
    with pytest.raises(OSError):
        read_csv(tmp_path)


def test_data_file_error_is_a_value_error():
    assert issubclass(DataFileError, ValueError)


# ---- CSV ---------------------------------------------------------------------------------------------

HOUSES = "area,price,rooms\n120,300.5,4\n80,210,3\n 95 ,\"250\",3\n"


def test_csv_header_and_named_target(tmp_path):
    path = write(tmp_path, "houses.csv", HOUSES)
    X, y = read_csv(path, target="price")
    np.testing.assert_array_equal(X, [[120, 4], [80, 3], [95, 3]])
    np.testing.assert_array_equal(y, [[300.5], [210], [250]])
    data = load_data(path, target="price")
    assert data.input_names == ["area", "rooms"] and data.target_names == ["price"]
    assert data.fmt == "csv"
    np.testing.assert_array_equal(data.lines, [2, 3, 4])


def test_csv_default_target_is_the_last_column(tmp_path):
    X, y = read_csv(write(tmp_path, "houses.csv", HOUSES))
    np.testing.assert_array_equal(y[:, 0], [4, 3, 3])
    assert X.shape == (3, 2)


@pytest.mark.parametrize("target, x_cols, y_cols", [
    (0, [1, 2, 3], [0]),
    (-2, [0, 1, 3], [2]),
    ([3, 1], [0, 2], [3, 1]),
    (["d", "a"], [1, 2], [3, 0]),
    ((np.int64(2),), [0, 1, 3], [2]),
    ([], [0, 1, 2, 3], []),
], ids=["first", "negative", "several-in-given-order", "names", "numpy-int", "none"])
def test_csv_target_choices(tmp_path, target, x_cols, y_cols):
    table = np.arange(12.0).reshape(3, 4)
    text = "a,b,c,d\n" + "".join(",".join(f"{v:g}" for v in row) + "\n" for row in table)
    X, y = read_csv(write(tmp_path, "t.csv", text), target=target)
    np.testing.assert_array_equal(X, table[:, x_cols])
    np.testing.assert_array_equal(y, table[:, y_cols].reshape(3, len(y_cols)))


def test_csv_header_detection_and_override(tmp_path):
    numeric = write(tmp_path, "n.csv", "1,2,3\n4,5,6\n")
    X, y = read_csv(numeric)                      # no header: the first row is data
    assert X.shape == (2, 2)
    X, y = read_csv(numeric, header=True)         # forced: the first row is names
    np.testing.assert_array_equal(y, [[6]])
    assert load_data(numeric, header=True, target="3").target_names == ["3"]
    named = write(tmp_path, "h.csv", "x,y\n1,2\n")
    with pytest.raises(DataFileError, match=r"h\.csv: line 1, column 1: 'x' is not a number"):
        read_csv(named, header=False)
    assert load_data(numeric).input_names == ["column 1", "column 2"]


def test_csv_quotes_bom_crlf_blank_lines_and_spaces(tmp_path):
    text = "\ufeff\"a\",\"b\"\r\n\r\n\"1.5\", 2 \r\n  \r\n3,-4e-1\r\n"
    data = load_data(write(tmp_path, "q.csv", text))
    assert data.input_names == ["a"] and data.target_names == ["b"]
    np.testing.assert_array_equal(data.X, [[1.5], [3]])
    np.testing.assert_array_equal(data.y, [[2], [-0.4]])
    np.testing.assert_array_equal(data.lines, [3, 5])


def test_tsv_and_other_delimiters(tmp_path):
    X, y = read_csv(write(tmp_path, "t.tsv", "a\tb\n1\t2\n"))
    np.testing.assert_array_equal(X, [[1]])
    X, y = read_csv(write(tmp_path, "s.csv", "a;b;c\n1;2;3\n"), delimiter=";", target="b")
    np.testing.assert_array_equal(X, [[1, 3]])
    np.testing.assert_array_equal(y, [[2]])


@pytest.mark.parametrize("content, kwargs, message", [
    ("a,b,c\n1,2,3\n4,5\n", {}, r"bad\.csv: line 3: 2 columns where line 1 has 3"),
    ("1,2,3\n4,5,6,7\n", {}, r"bad\.csv: line 2: 4 columns where line 1 has 3"),
    ("a,b,c\n1,2,3\n4,five,6\n", {}, r"bad\.csv: line 3, column 2 \('b'\): 'five' is not a number$"),
    ("1,2,3\n4,5,x\n", {}, r"bad\.csv: line 2, column 3: 'x' is not a number"),
    ("a,b\n1,\n", {}, r"bad\.csv: line 2, column 2 \('b'\): empty cell \(a missing value\)"),
    ("a,b\n1,2\n\n3,NaN\n", {}, r"bad\.csv: line 4, column 2 \('b'\): 'NaN' is not a finite number"),
    ("a,b\n1,inf\n", {}, r"bad\.csv: line 2, column 2 \('b'\): 'inf' is not a finite number"),
    ("a,b,c\n", {}, r"bad\.csv: no data rows after the header row \(line 1\)"),
    ("a,b\n1,\"2\n", {}, r"bad\.csv: line 2: malformed CSV \(unexpected end of data; is a quote not closed\?\)"),
    ("a,b\n1,2\n", {"target": "c"}, r"bad\.csv: there is no column named 'c'; its columns are 'a', 'b'$"),
    ("1,2\n", {"target": "c"}, r"bad\.csv: the target 'c' is a column name, but the file has no header row"),
    ("a,a,b\n1,2,3\n", {"target": "a"}, r"bad\.csv: 2 columns are named 'a' \(columns 1, 2\); choose by position"),
    ("a,b\n1,2\n", {"target": 2}, r"bad\.csv: there is no column 3: the file has 2 columns"),
    ("a,b\n1,2\n", {"target": -3}, r"bad\.csv: there is no column -3 \(counting from the end\): the file has 2"),
    ("a,b,c\n1,2,3\n", {"target": ["b", 1]}, r"bad\.csv: column 2 \('b'\) is chosen as a target twice"),
    ("a,b\n1,2\n", {"target": [0, 1]}, r"bad\.csv: the file has 2 columns and all are targets; no input columns"),
    ("a\n1\n2\n", {}, r"bad\.csv: the file has 1 column and all are targets; no input columns are left$"),
    ("x\n1;2\n", {}, r"bad\.csv: line 2, column 1 \('x'\): '1;2' is not a number \(if the cells are separated by "
                     r"';', give that delimiter\)"),
], ids=["ragged-short", "ragged-long", "not-a-number", "not-a-number-no-header", "empty-cell", "nan", "inf",
        "header-only", "unclosed-quote", "unknown-name", "name-without-header", "duplicate-name",
        "position-out-of-range", "negative-out-of-range", "target-twice", "no-inputs", "one-column",
        "semicolon-cell"])
def test_csv_errors_name_file_line_and_column(tmp_path, content, kwargs, message):
    path = write(tmp_path, "bad.csv", content)
    with pytest.raises(DataFileError, match=message):
        read_csv(path, **kwargs)


def test_csv_target_of_wrong_type(tmp_path):
    with pytest.raises(TypeError, match="a target column must be a position"):
        read_csv(write(tmp_path, "t.csv", "a,b\n1,2\n"), target=[1.5])


def test_csv_bad_delimiter(tmp_path):
    with pytest.raises(ValueError, match="the CSV delimiter must be one character"):
        read_csv(write(tmp_path, "t.csv", "a,b\n1,2\n"), delimiter=", ")


# ---- format detection --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, fmt", [
    ("a.data", "a,b\n", "fann"),
    ("a.TRAIN", "", "fann"),
    ("a.test", "", "fann"),
    ("a.csv", "3 2 1\n", "csv"),
    ("a.tsv", "3 2 1\n", "csv"),
    ("a.txt", "\n3 2 1\n1 2\n3\n", "fann"),
    ("a", "3\t2\t1\n", "fann"),
    ("a.txt", "3,2,1\n", "csv"),
    ("a.txt", "3 2 1 0\n", "csv"),
    ("a.dat", "x y z\n", "csv"),
    ("noext", "", "csv"),
])
def test_detect_format(tmp_path, name, content, fmt):
    path = write(tmp_path, name, content)
    assert detect_format(path) == fmt
    assert detect_format(path, content) == fmt


def test_read_data_detects_and_obeys_fmt(tmp_path):
    fann_text = "2 2 1\n1 2\n3\n4 5\n6\n"
    X, y = read_data(write(tmp_path, "pairs.txt", fann_text))
    np.testing.assert_array_equal(y, [[3], [6]])
    X, y = read_data(write(tmp_path, "table.dat", "a,b\n1,2\n"))
    np.testing.assert_array_equal(y, [[2]])
    with pytest.raises(DataFileError, match=r"line 1, column 1: '2 2 1' is not a number"):
        read_data(tmp_path / "pairs.txt", fmt="csv", header=False)
    X, y = read_data(write(tmp_path, "pairs.csv", fann_text), fmt="fann")
    assert X.shape == (2, 2)


def test_read_data_rejects_csv_options_for_fann_and_unknown_formats():
    with pytest.raises(ValueError, match=r"xor\.data: target applies to CSV files only"):
        read_data(DATA / "xor.data", target=-1)
    with pytest.raises(ValueError, match=r"header applies to CSV files only"):
        read_data(DATA / "xor.data", header=False)
    with pytest.raises(ValueError, match=r"unknown data format 'json'; expected one of 'csv', 'fann'"):
        read_data(DATA / "xor.data", fmt="json")


# ---- declared counts against the file's size (issue 18, item 4) ----------------------------------------

@pytest.mark.parametrize("pairs", [10 ** 8, 10 ** 9, 10 ** 17, 3])
def test_fann_huge_declared_pairs_allocate_nothing(tmp_path, pairs):
    """A tiny file announcing 10**8 pairs took 12.7 GB (lists of the announced layout); 10**9 a MemoryError.
    The count is now checked against what the file can hold (2 characters a number) before anything is
    built in proportion to it, and the error still says where the numbers end."""
    path = write(tmp_path, "big.data", f"{pairs} 1 1\n0\n1\n")
    tracemalloc.start()
    try:
        with pytest.raises(DataFileError, match=rf"big\.data: the file ends at line 3, before the inputs of pair 2; "
                                                 rf"the header \(line 1\) announces {pairs} pairs"):
            read_fann(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"reading a {path.stat().st_size}-byte file allocated {peak} bytes"


@pytest.mark.parametrize("header", ["1 100000000000 1", "1 1 100000000000", "9" * 19 + " 1 1",
                                    "1 " + "9" * 5000 + " 1"])
def test_fann_huge_declared_widths_and_long_counts(tmp_path, header):
    path = write(tmp_path, "big.data", header + "\n0 1\n")
    tracemalloc.start()
    try:
        with pytest.raises(DataFileError, match=r"big\.data: line (1: the header announces a count of more than 18 "
                                                r"digits|2: expected the inputs of pair 1 .* announces 1 pair)"):
            read_fann(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_fann_room_check_is_exact(tmp_path):
    """n numbers need 2n - 1 characters after the header line: a file with exactly that loads."""
    assert read_fann(write(tmp_path, "a.data", "2 1 1\n1\n2\n3\n4"))[0].shape == (2, 1)     # 7 characters, 4 numbers
    with pytest.raises(DataFileError, match="the file ends at line 4, before the outputs of pair 2"):
        read_fann(write(tmp_path, "b.data", "2 1 1\n1\n2\n3"))


@pytest.mark.parametrize("content", [b"\x1c", b"\x1c\n\x1d\n", "\u2028\n\u3000".encode()])
def test_csv_of_unicode_whitespace_only_is_a_data_file_error(tmp_path, content):
    """Found by tests/test_adversarial_files.py: a file of b"\\x1c" passed the empty-file check (bytes.strip
    keeps it) and then had no rows (str.strip drops it): IndexError instead of a DataFileError."""
    path = write(tmp_path, "d.csv", content)
    with pytest.raises(DataFileError, match="d.csv: the file holds only blank lines and whitespace"):
        read_csv(path)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_are_refused_without_reading_them_whole(device):
    """/dev/zero as a data file was read until memory ran out; now the first chunk shows it is binary."""
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    with pytest.raises(DataFileError, match="binary content"):
        read_data(device, "csv")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_endless_pipe_is_cut_at_the_stream_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(datafiles, "MAX_STREAM_BYTES", 1 << 20)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    stop = threading.Event()

    def endless():
        try:   # (the reader closing the pipe breaks a write, or the flush when the file closes)
            with open(fifo, "wb", buffering=0) as fh:
                while not stop.is_set():
                    fh.write(b"1,2,3\n" * 10000)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=endless)
    writer.start()
    try:
        with pytest.raises(DataFileError, match="more than 1048576 bytes from a pipe or device"):
            read_data(fifo, "csv")
    finally:
        stop.set()
        writer.join(timeout=30)
    assert not writer.is_alive()
