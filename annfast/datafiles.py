"""Data files: read a CSV table or a FANN plain-text training file into float64 arrays X and y.

The readers are strict, because a silently misread file trains a wrong model: a file that is empty,
binary, ragged, holds a cell that is not a finite number, or (FANN) holds more or fewer numbers than
its first line announces raises a ``DataFileError`` (a ``ValueError``) that names the file, the line
and, for CSV, the column. Lines and columns in messages count from 1, as editors count them. Nothing
is built in proportion to a count a file announces before the count is checked against the file's
size, and a pipe or device is read up to MAX_STREAM_BYTES only.

Two formats:

* **CSV**: one row per line, cells separated by ``delimiter`` (a comma by default, a tab for ``.tsv``
  files), optionally quoted. A first row with a cell that is not a number is a header row of column
  names (or say so with ``header=True`` / ``header=False``). ``target`` chooses the target columns;
  the other columns, in file order, are the inputs.
* **FANN** (``.data``, ``.train``, ``.test``): a line ``pairs inputs outputs``, then for each pair a
  line of inputs and a line of outputs, whitespace separated. Like FANN itself, the reader also
  accepts the numbers wrapped differently, as long as their count is exactly right.
"""
from __future__ import annotations

import csv
import io
import os
import re
import stat
from typing import NamedTuple

import numpy as np

__all__ = ["Data", "DataFileError", "detect_format", "load_data", "read_csv", "read_data", "read_fann"]

FORMATS = ("csv", "fann")
FANN_SUFFIXES = (".data", ".train", ".test")
CSV_SUFFIXES = (".csv", ".tsv")
_INT = re.compile(r"[0-9]+")
_MAX_SHOWN = 60          # characters of a bad cell or line quoted in a message
_MAX_COUNT_DIGITS = 18   # a FANN header count of 19 digits or more (>= 10**18 numbers) fits no file
_READ_CHUNK = 1 << 20
MAX_STREAM_BYTES = 1 << 28   # what is read from a pipe or device (256 MiB; a regular file has no limit)


class DataFileError(ValueError):
    """A data file is empty, binary, ragged, or holds something that is not a finite number."""


class Data(NamedTuple):
    """The content of a data file, as returned by ``load_data``.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_inputs), float64
    y : ndarray of shape (n_rows, n_targets), float64
        ``n_targets`` may be 0 (no target columns chosen, or a FANN file with 0 outputs).
    input_names, target_names : list of str
        Column names from the CSV header row; "x1", "x2", ... and "y1", ... when there is none.
    lines : ndarray of shape (n_rows,), int64
        The line of the file on which each row ends (FANN: the line of its inputs), for messages.
    fmt : {"csv", "fann"}
    """

    X: np.ndarray
    y: np.ndarray
    input_names: list
    target_names: list
    lines: np.ndarray
    fmt: str


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _delimiter_hint(text: str) -> str:
    for sep, name in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
        if sep in text:
            return f" (if the cells are separated by {name}, give that delimiter)"
    return ""


def _short(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _read_bytes(path) -> bytes:
    """Return the bytes of ``path``, bounded when it is not a regular file.

    A regular file is read whole. A pipe or a device (such as /dev/zero) has no size to trust: it is
    read in chunks, up to the first chunk holding a NUL byte (binary, refused by the caller) and at most
    MAX_STREAM_BYTES, so that /dev/zero or an endless pipe cannot exhaust memory.
    """
    with open(path, "rb") as fh:
        if stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return fh.read()
        parts, size = [], 0
        while True:
            part = fh.read(_READ_CHUNK)
            if not part:
                break
            parts.append(part)
            size += len(part)
            if b"\0" in part:
                break
            if size > MAX_STREAM_BYTES:
                raise DataFileError(f"{path}: more than {MAX_STREAM_BYTES} bytes from a pipe or device, the limit "
                                    "for a data file that is not a regular file; save the data to a file")
    return b"".join(parts)


def _read_text(path) -> str:
    """Return the text of ``path``; DataFileError if it is empty, binary or not UTF-8."""
    raw = _read_bytes(path)
    if not raw.strip():
        raise DataFileError(f"{path}: the file is empty" + (" (only blank lines)" if raw else ""))
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataFileError(f"{path}: line {line}: binary content (a NUL byte); this is not a text data file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataFileError(f"{path}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8 text; is this a data "
                            "file? (save text files as UTF-8)") from None


def detect_format(path, text: str | None = None) -> str:
    """Guess the format of a data file from its name, else from its first line.

    Parameters
    ----------
    path : str or os.PathLike
    text : str or None, default=None
        The content of the file, if already read (else the first line is read from ``path``).

    Returns
    -------
    {"csv", "fann"}
        "fann" for the names ``*.data``, ``*.train`` and ``*.test``, or for a first line of exactly
        three whitespace-separated integers (FANN's ``pairs inputs outputs``); "csv" otherwise.
    """
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix in FANN_SUFFIXES:
        return "fann"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if text is None:
        with open(path, "rb") as fh:
            head = fh.read(4096).decode("utf-8-sig", errors="replace")
    else:
        head = text[:4096]
    first = next((line for line in head.splitlines() if line.strip()), "")
    tokens = first.split()
    return "fann" if len(tokens) == 3 and all(_INT.fullmatch(t) for t in tokens) else "csv"


# ---- FANN ------------------------------------------------------------------------------------------

def _fann_header(lines: list[str], path) -> tuple[int, int, int, int]:
    """Return (first data line index, pairs, inputs, outputs) from the first non-blank line."""
    for k, line in enumerate(lines):
        if line.strip():
            tokens = line.split()
            if len(tokens) != 3 or not all(_INT.fullmatch(t) for t in tokens):
                raise DataFileError(
                    f"{path}: line {k + 1}: a FANN training file starts with a line of three integers "
                    f"'pairs inputs outputs', got {_short(line.strip())!r}")
            if any(len(t) > _MAX_COUNT_DIGITS for t in tokens):   # int() of 5000 digits is slow or refused
                raise DataFileError(
                    f"{path}: line {k + 1}: the header announces a count of more than {_MAX_COUNT_DIGITS} digits "
                    f"({_short(line.strip())!r}), more numbers than any file holds; the header is damaged")
            n_pairs, n_in, n_out = (int(t) for t in tokens)
            if n_pairs == 0:
                raise DataFileError(f"{path}: line {k + 1}: the header announces 0 pairs: there is no data")
            if n_in == 0:
                raise DataFileError(f"{path}: line {k + 1}: the header announces 0 inputs per pair")
            return k + 1, n_pairs, n_in, n_out
    raise DataFileError(f"{path}: the file is empty")  # pragma: no cover -- _read_text rejects blank files


def _fann_count_error(path, body, n_pairs, n_in, n_out, header_line) -> DataFileError:
    """Explain where a FANN file's numbers stop matching its header.

    In time and memory proportional to the file (``body``), never to the announced counts.
    """
    need = n_pairs * (n_in + n_out)
    have = sum(len(tokens) for _, tokens in body)
    announced = (f"the header (line {header_line}) announces {_count(n_pairs, 'pair')} of "
                 f"{_count(n_in, 'input')} and {_count(n_out, 'output')} ({_count(need, 'number')}) but the file "
                 f"holds {have}")
    parts = [(part, count) for part, count in (("inputs", n_in), ("outputs", n_out)) if count]
    n_lines = n_pairs * len(parts)          # the lines of the layout FANN writes

    def expected(k):                        # line k (from 0) of that layout: (pair, part, count)
        return (k // len(parts) + 1,) + parts[k % len(parts)]

    for k, (line_no, tokens) in enumerate(body[:n_lines]):
        pair, part, count = expected(k)
        if len(tokens) != count:
            return DataFileError(f"{path}: line {line_no}: expected the {part} of pair {pair} "
                                 f"({_count(count, 'number')}), found {len(tokens)}; {announced}")
    if len(body) > n_lines:
        return DataFileError(f"{path}: line {body[n_lines][0]}: unexpected numbers after the last "
                             f"pair; {announced}")
    pair, part, _ = expected(len(body))
    last = body[-1][0] if body else header_line
    return DataFileError(f"{path}: the file ends at line {last}, before the {part} of pair {pair}; {announced}")


def _fann_body(lines: list[str], start: int) -> list[tuple[int, list[str]]]:
    """(line number, tokens) of every non-blank line after the header."""
    return [(k + 1, tokens) for k, line in enumerate(lines[start:], start) if (tokens := line.split())]


def _check_fann_counts(lines: list[str], start: int, n_pairs: int, n_in: int, n_out: int, path) -> None:
    """Refuse a header announcing more numbers than the rest of the file can hold.

    Checked before anything is built in proportion to the announced counts (an 18-byte file
    announcing 10**8 pairs once took 12 GB).

    Each number needs at least one character and all but the last a separator after it, so n numbers
    need at least 2 n - 1 characters after the header line. The error says where the numbers end.
    """
    room = (sum(len(line) + 1 for line in lines[start:]) + 1) // 2
    if n_pairs * (n_in + n_out) > room:
        raise _fann_count_error(path, _fann_body(lines, start), n_pairs, n_in, n_out, start)


def _parse_fann(text: str, path) -> Data:
    lines = text.splitlines()
    start, n_pairs, n_in, n_out = _fann_header(lines, path)
    _check_fann_counts(lines, start, n_pairs, n_in, n_out, path)
    body = _fann_body(lines, start)
    width = n_in + n_out
    counts = [len(tokens) for _, tokens in body]
    if sum(counts) != n_pairs * width:      # (FANN's own layout, or any other wrapping of the right count)
        raise _fann_count_error(path, body, n_pairs, n_in, n_out, start)
    tokens = [t for _, toks in body for t in toks]
    token_lines = np.repeat(np.array([no for no, _ in body], dtype=np.int64), counts)
    values = _to_float(tokens, lambda i: f"{path}: line {token_lines[i]}: ", lambda i: "")
    table = values.reshape(n_pairs, width)
    rows = token_lines[::width]
    return Data(table[:, :n_in].copy(), table[:, n_in:].copy(), [f"x{i + 1}" for i in range(n_in)],
                [f"y{i + 1}" for i in range(n_out)], rows, "fann")


def _to_float(cells: list[str], where, column) -> np.ndarray:
    """Convert strings to finite float64; on a bad cell raise a DataFileError using where(i) and column(i)."""
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        values = None
    if values is not None:
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size == 0:
            return values
        i = int(bad[0])
        raise DataFileError(f"{where(i)}{column(i)}{_short(cells[i].strip())!r} is not a finite number; "
                            "annfast needs a finite number in every cell")
    for i, cell in enumerate(cells):
        try:
            float(cell)
        except ValueError:
            text = cell.strip()
            if not text:
                raise DataFileError(f"{where(i)}{column(i)}empty cell (a missing value); annfast needs a "
                                    "number in every cell") from None
            raise DataFileError(f"{where(i)}{column(i)}{_short(text)!r} is not a number"
                                f"{_delimiter_hint(text)}") from None
    raise AssertionError("unreachable: numpy rejected a cell that float() accepts")  # pragma: no cover


def read_fann(path) -> tuple[np.ndarray, np.ndarray]:
    """Read a FANN plain-text training file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    X : ndarray of shape (pairs, inputs), float64
    y : ndarray of shape (pairs, outputs), float64

    Raises
    ------
    DataFileError
        If the file is empty, binary, has a bad first line, holds a token that is not a finite
        number, or more or fewer numbers than its first line announces (naming the line).
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> X, y = read_fann("xor.data")            # doctest: +SKIP
    >>> X.shape, y.shape                        # doctest: +SKIP
    ((4, 2), (4, 1))
    """
    data = _parse_fann(_read_text(os.fspath(path)), os.fspath(path))
    return data.X, data.y


# ---- CSV -------------------------------------------------------------------------------------------

def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_rows(text: str, path, delimiter: str) -> list[tuple[int, list[str]]]:
    """Return (line, stripped cells) for every non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows = []
    try:
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            rows.append((reader.line_num, [c.strip() for c in cells]))
    except csv.Error as exc:
        hint = "; is a quote not closed?" if "end of data" in str(exc) else ""
        raise DataFileError(f"{path}: line {reader.line_num}: malformed CSV ({exc}{hint})") from None
    return rows


def _column_label(k: int, names: list[str] | None) -> str:
    return f"column {k + 1} ({names[k]!r})" if names else f"column {k + 1}"


def _resolve_targets(target, names: list[str] | None, n_cols: int, path) -> list[int]:
    """Turn ``target`` (None, a position, a name or a sequence of these) into column indices."""
    if target is None:
        items = [-1]
    elif isinstance(target, (str, int, np.integer)) and not isinstance(target, bool):
        items = [target]
    else:
        items = list(target)
    shown = ""
    if names:
        listed = ", ".join(repr(n) for n in names[:20])
        shown = f"; its columns are {listed}{', ...' if len(names) > 20 else ''}"
    out, seen = [], set()   # (a set: a list of a million targets is checked in linear time)
    for item in items:
        if isinstance(item, str):
            if not names:
                raise DataFileError(f"{path}: the target {item!r} is a column name, but the file has no header "
                                    "row; choose the target columns by position")
            hits = [k for k, name in enumerate(names) if name == item]
            if not hits:
                raise DataFileError(f"{path}: there is no column named {item!r}{shown}")
            if len(hits) > 1:
                raise DataFileError(f"{path}: {len(hits)} columns are named {item!r} (columns "
                                    f"{', '.join(str(k + 1) for k in hits)}); choose by position")
            k = hits[0]
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            k = int(item) + n_cols if item < 0 else int(item)
            if not 0 <= k < n_cols:
                pos = f"{int(item) + 1}" if item >= 0 else f"{int(item)} (counting from the end)"
                raise DataFileError(f"{path}: there is no column {pos}: the file has {n_cols} columns{shown}")
        else:
            raise TypeError(f"a target column must be a position (int) or a name (str), got {item!r}")
        if k in seen:
            raise DataFileError(f"{path}: {_column_label(k, names)} is chosen as a target twice")
        out.append(k)
        seen.add(k)
    if len(out) == n_cols:
        hint = _delimiter_hint(names[0]) if names and n_cols == 1 else ""
        raise DataFileError(f"{path}: the file has {_count(n_cols, 'column')} and all are targets; no input "
                            f"columns are left{hint}")
    return out


def _parse_csv(text: str, path, target, header, delimiter) -> Data:
    rows = _csv_rows(text, path, delimiter)
    if not rows:     # only characters that are whitespace to str.strip, such as \x1c (which bytes.strip keeps)
        raise DataFileError(f"{path}: the file holds only blank lines and whitespace, no data")
    first_line, first = rows[0]
    if header is None:
        header = not all(_is_number(cell) for cell in first)
    names = None
    if header:
        names = first
        rows = rows[1:]
        if not rows:
            raise DataFileError(f"{path}: no data rows after the header row (line {first_line})")
    n_cols = len(names) if names else len(rows[0][1])
    ref_line = first_line
    for line, cells in rows:
        if len(cells) != n_cols:
            raise DataFileError(f"{path}: line {line}: {len(cells)} columns where line {ref_line} has {n_cols}")
    lines = np.array([line for line, _ in rows], dtype=np.int64)
    values = _to_float([cell for _, cells in rows for cell in cells],
                       lambda i: f"{path}: line {lines[i // n_cols]}, ",
                       lambda i: _column_label(i % n_cols, names) + ": ")
    targets = _resolve_targets(target, names, n_cols, path)
    table = values.reshape(len(rows), n_cols)
    inputs = [k for k in range(n_cols) if k not in targets]
    all_names = names or [f"column {k + 1}" for k in range(n_cols)]
    return Data(table[:, inputs], table[:, targets], [all_names[k] for k in inputs],
                [all_names[k] for k in targets], lines, "csv")


def read_csv(path, target=None, header: bool | None = None, delimiter: str | None = None):
    """Read a CSV table of numbers; return the input columns and the target columns.

    Parameters
    ----------
    path : str or os.PathLike
    target : int, str, sequence of int and str, or None, default=None
        The target column(s): positions counted from 0 as Python indexes (negative from the end),
        or column names from the header row. None is the last column; an empty sequence chooses
        no target (every column is an input, y has 0 columns).
    header : bool or None, default=None
        Whether the first row holds column names; None decides from the content (a header row
        has at least one cell that is not a number).
    delimiter : str or None, default=None
        The cell separator: None is a tab for ``*.tsv`` files and a comma otherwise.

    Returns
    -------
    X : ndarray of shape (n_rows, n_columns - n_targets), float64
        The other columns, in file order.
    y : ndarray of shape (n_rows, n_targets), float64
        The target columns, in the order given.

    Raises
    ------
    DataFileError
        If the file is empty, binary, not UTF-8, malformed CSV, ragged (rows of different lengths),
        has an empty or non-numeric or non-finite data cell (naming line and column), or names a
        target column that does not exist.
    OSError
        If the file cannot be read.

    Examples
    --------
    >>> X, y = read_csv("houses.csv", target="price")          # doctest: +SKIP
    >>> X, y = read_csv("digits.csv", target=[-2, -1])         # doctest: +SKIP
    """
    return load_data(path, "csv", target=target, header=header, delimiter=delimiter)[:2]


# ---- either ----------------------------------------------------------------------------------------

def load_data(path, fmt: str | None = None, target=None, header: bool | None = None,
              delimiter: str | None = None) -> Data:
    """Read a CSV or FANN data file; return its arrays with column names and line numbers.

    Parameters
    ----------
    path : str or os.PathLike
    fmt : {"csv", "fann"} or None, default=None
        None detects the format (see ``detect_format``).
    target, header, delimiter
        As in ``read_csv``; for CSV only (a FANN file says itself which numbers are targets).

    Returns
    -------
    Data
        ``X``, ``y``, ``input_names``, ``target_names``, ``lines`` and ``fmt``.

    Raises
    ------
    DataFileError
        For any problem with the content (see ``read_csv`` and ``read_fann``).
    ValueError
        If ``fmt`` is unknown, or ``target``, ``header`` or ``delimiter`` is given for a FANN file.
    OSError
        If the file cannot be read.
    """
    path = os.fspath(path)
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown data format {fmt!r}; expected one of {', '.join(map(repr, FORMATS))}")
    text = _read_text(path)
    return _load_text(text, path, fmt or detect_format(path, text), target, header, delimiter)


def _load_text(text: str, path: str, fmt: str, target, header, delimiter) -> Data:
    """``load_data`` on text already read (once: a pipe cannot be read twice), in a known format."""
    if fmt == "fann":
        for name, value in (("target", target), ("header", header), ("delimiter", delimiter)):
            if value is not None:
                raise ValueError(f"{path}: {name} applies to CSV files only; a FANN file's first line says "
                                 "how many of each pair's numbers are inputs and outputs")
        return _parse_fann(text, path)
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith(".tsv") else ","
    if len(delimiter) != 1 or delimiter in "\"\r\n":
        raise ValueError(f"the CSV delimiter must be one character other than a quote or newline, got {delimiter!r}")
    return _parse_csv(text, path, target, header, delimiter)


def read_data(path, fmt: str | None = None, target=None, header: bool | None = None,
              delimiter: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV or FANN data file into X and y.

    Parameters
    ----------
    path : str or os.PathLike
    fmt : {"csv", "fann"} or None, default=None
        None detects the format from the file name (``.data``, ``.train``, ``.test``: FANN;
        ``.csv``, ``.tsv``: CSV) or else from the first line (see ``detect_format``).
    target, header, delimiter
        As in ``read_csv``, for CSV files only.

    Returns
    -------
    X : ndarray of shape (n_rows, n_inputs), float64
    y : ndarray of shape (n_rows, n_targets), float64

    Raises
    ------
    DataFileError, ValueError, OSError
        As ``load_data``.
    """
    return load_data(path, fmt, target=target, header=header, delimiter=delimiter)[:2]
