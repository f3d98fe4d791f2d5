"""Training data that need not fit in memory: in-memory arrays, memory-mapped arrays, iterables of chunks.

``Network.fit`` asks a source for the *buffers* of each epoch and trains on them one after the other,
shuffling the rows within each buffer (so shuffling is bounded by the buffer size, documented in fit):

- ``InMemory``: the usual case, all rows in one buffer (a full shuffle).
- ``MappedRows``: a 2-D ``np.memmap`` (``np.load(..., mmap_mode="r")`` gives one), with targets in memory or
  mapped too. Blocks of rows are read with plain file reads into reused buffers, in a fresh random block
  order each epoch, so the file's pages are never mapped into the process and its resident memory stays
  at a few buffers, whatever the file's size. Every block is checked (finite, right shape) in a first
  pass before any training, so a bad value still leaves the model untouched.
- ``ChunkStream``: an iterable of ``(X, y)`` chunks, gathered into buffers of about ``buffer_rows`` rows.
  A chunk is checked when it arrives; if one is bad, the rows before it have been trained on. For several
  epochs the iterable must start over on each ``iter()`` (a list, or an object whose ``__iter__``
  re-reads its files); a one-shot generator allows one epoch.
"""
from __future__ import annotations

import mmap

import numpy as np

from . import _validation as v

BUFFER_BYTES = 64 << 20     # default buffer: about 64 MB of inputs


def default_buffer_rows(n_inputs: int, itemsize: int) -> int:
    """Rows of a default buffer: about BUFFER_BYTES of inputs, at least 1024."""
    return max(1024, BUFFER_BYTES // max(1, n_inputs * itemsize))


class InMemory:
    """All rows in memory: one buffer per epoch."""

    def __init__(self, X: np.ndarray, Y: np.ndarray):
        self.X, self.Y = X, Y
        self.n_rows = X.shape[0]

    def buffers(self, rng):
        """Yield (X, Y) once."""
        yield self.X, self.Y


class _FileRows:
    """Reads rows [r0, r1) of a C-contiguous 2-D memmap with file reads (no pages mapped)."""

    def __init__(self, arr: np.memmap):
        mm = arr._mmap                       # numpy's mmap object of the file
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
        start = arr.offset - arr.offset % mmap.ALLOCATIONGRANULARITY
        self.pos = start + (arr.ctypes.data - base)
        self.path = arr.filename
        self.dtype = arr.dtype
        self.cols = arr.shape[1]
        self.row_bytes = self.cols * arr.dtype.itemsize

    def read(self, r0: int, r1: int, out: np.ndarray) -> np.ndarray:
        view = out[: r1 - r0]
        with open(self.path, "rb", buffering=0) as fh:
            fh.seek(self.pos + r0 * self.row_bytes)
            got = fh.readinto(memoryview(view).cast("B"))
        if got != (r1 - r0) * self.row_bytes:
            raise OSError(f"{self.path}: the file ended early (truncated while training?)")
        return view


def _reader(arr):
    """Return a function (r0, r1) -> rows of arr that reads files directly for plain memmaps."""
    if isinstance(arr, np.memmap) and arr.ndim == 2 and arr.flags.c_contiguous and getattr(arr, "filename", None):
        try:
            rows = _FileRows(arr)
        except (AttributeError, TypeError, ValueError):
            rows = None
        if rows is not None:
            buf = {}

            def read(r0, r1):
                if buf.get("n", 0) < r1 - r0:
                    buf["a"] = np.empty((r1 - r0, rows.cols), dtype=rows.dtype)
                    buf["n"] = r1 - r0
                return rows.read(r0, r1, buf["a"])
            return read
    return lambda r0, r1: np.asarray(arr[r0:r1])


class MappedRows:
    """Rows of memory-mapped arrays, read block by block (see the module docstring)."""

    def __init__(self, X, y, n_inputs: int, n_outputs: int, dtype: np.dtype, buffer_rows: int):
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_rows, n_inputs), got shape {X.shape}")
        if X.shape[1] != n_inputs:
            raise ValueError(f"X has {X.shape[1]} columns but the network has {n_inputs} inputs")
        if X.shape[0] == 0:
            raise ValueError("X has no rows")
        y = y if isinstance(y, np.memmap) else np.asarray(y)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        self.n_rows = X.shape[0]
        self.block = min(buffer_rows, self.n_rows)
        self._dims = (n_inputs, n_outputs, dtype)
        self._rx, self._ry = _reader(X), _reader(y)
        self._check_all()

    def _block(self, r0: int, r1: int):
        n_in, n_out, dtype = self._dims
        try:
            Xb = v.as_inputs(self._rx(r0, r1), n_in, dtype)
            Yb = v.as_targets(self._ry(r0, r1), r1 - r0, n_out, dtype)
        except ValueError as exc:
            raise ValueError(f"rows {r0} to {r1 - 1} of the data: {exc} (row numbers within that block)") from None
        return Xb, Yb

    def _check_all(self) -> None:
        for r0 in range(0, self.n_rows, self.block):
            self._block(r0, min(r0 + self.block, self.n_rows))

    def buffers(self, rng):
        """Yield the blocks of one epoch, in a random order (rng None: file order)."""
        starts = np.arange(0, self.n_rows, self.block)
        if rng is not None:
            starts = rng.permutation(starts)
        for r0 in starts:
            yield self._block(int(r0), min(int(r0) + self.block, self.n_rows))


class ChunkStream:
    """An iterable of (X, y) chunks gathered into buffers of about ``buffer_rows`` rows."""

    def __init__(self, chunks, n_inputs: int, n_outputs: int, dtype: np.dtype, buffer_rows: int):
        if isinstance(chunks, (np.ndarray, str, bytes)) or not hasattr(chunks, "__iter__"):
            raise TypeError("with y=None, X must be an iterable of (X, y) chunks")
        self.chunks = chunks
        self.n_rows = None
        self._dims = (n_inputs, n_outputs, dtype)
        self.buffer_rows = buffer_rows
        self._one_shot = iter(chunks) is chunks
        self._used = False

    def buffers(self, rng):
        """Yield buffers of converted, checked chunks (the chunks of one pass over the iterable)."""
        if self._one_shot and self._used:
            raise ValueError("the chunk iterable is a one-shot iterator, already consumed by the first epoch; "
                             "pass a list or an object whose __iter__ starts over to train several epochs")
        self._used = True
        n_in, n_out, dtype = self._dims
        xs, ys, held, seen = [], [], 0, 0
        for k, chunk in enumerate(self.chunks):
            try:
                Xc, yc = chunk
            except (TypeError, ValueError):
                raise TypeError(f"chunk {k} must be a pair (X, y)") from None
            try:
                Xc = v.as_inputs(Xc, n_in, dtype)
                Yc = v.as_targets(yc, Xc.shape[0], n_out, dtype)
            except ValueError as exc:
                raise ValueError(f"chunk {k} (rows {seen} onwards): {exc}") from None
            xs.append(Xc)
            ys.append(Yc)
            held += Xc.shape[0]
            seen += Xc.shape[0]
            if held >= self.buffer_rows:
                yield np.concatenate(xs), np.concatenate(ys)
                xs, ys, held = [], [], 0
        if held:
            yield np.concatenate(xs), np.concatenate(ys)
        if seen == 0:
            raise ValueError("the chunk iterable gave no rows")
        self.n_rows = seen


def source(X, y, n_inputs: int, n_outputs: int, dtype: np.dtype, buffer_rows: int | None):
    """Return the data source for fit's X and y (see the module docstring)."""
    rows = buffer_rows or default_buffer_rows(n_inputs, dtype.itemsize)
    if y is None:
        return ChunkStream(X, n_inputs, n_outputs, dtype, rows)
    if isinstance(X, np.memmap):
        return MappedRows(X, y, n_inputs, n_outputs, dtype, rows)
    Xa = v.as_inputs(X, n_inputs, dtype)
    return InMemory(Xa, v.as_targets(y, Xa.shape[0], n_outputs, dtype))


__all__ = ["ChunkStream", "InMemory", "MappedRows", "source"]
