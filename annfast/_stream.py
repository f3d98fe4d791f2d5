"""Training data that need not fit in memory: in-memory arrays, memory-mapped arrays, iterables of chunks.

``Network.fit`` asks a source for the *buffers* of each epoch, triples (X, Y, W) where W holds the rows' sample
weights or is None, and trains on them one after the other,
shuffling the rows within each buffer (so shuffling is bounded by the buffer size, documented in fit):

- ``InMemory``: the usual case, all rows in one buffer (a full shuffle).
- ``MappedRows``: a 2-D ``np.memmap`` (``np.load(..., mmap_mode="r")`` gives one), with targets in memory or
  mapped too. Blocks of rows are sliced from the array object and copied into buffers, in a fresh random
  block order each epoch: training sees exactly what the array holds (a copy-on-write map changed in memory
  trains on its changes; the file is never opened again, so replacing it after mapping changes nothing).
  The pages of a read-only or shared map are released after each copy, so resident memory stays at a few
  buffers whatever the file's size (see ``_MappedReader``). Every block is checked (finite, right shape,
  targets fitting the loss) in a first pass before any training, so a bad value still leaves the model
  untouched; errors name the row of the whole array.
- ``ChunkStream``: an iterable of ``(X, y)`` chunks, gathered into buffers of about ``buffer_rows`` rows.
  A chunk is checked when it arrives; if one is bad, the rows before it have been trained on. For several
  epochs the iterable must start over on each ``iter()`` (a list, or an object whose ``__iter__``
  re-reads its files); a one-shot iterator (``iter(x) is x``, a generator) allows one epoch, and ``fit``
  refuses it with more epochs before training (``check_epochs``).
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

    def __init__(self, X: np.ndarray, Y: np.ndarray, W: np.ndarray | None = None):
        self.X, self.Y, self.W = X, Y, W
        self.n_rows = X.shape[0]

    def buffers(self, rng):
        """Yield (X, Y, W) once."""
        yield self.X, self.Y, self.W


class _MappedReader:
    """Copies rows [r0, r1) out of a memory-mapped array: what the array holds, never its file.

    The rows are sliced from the array object itself and copied, block by block, so the training
    data are exactly the array's values: a copy-on-write map (``mmap_mode="c"``) with values changed in
    memory trains on the changed values, and replacing or renaming the file after mapping changes
    nothing (the map keeps the file it was made from). For a read-only or shared map (modes "r", "r+",
    "w+") of a C-contiguous array, the pages of a block are released right after the copy
    (``madvise(MADV_DONTNEED)``: the kernel reads them again from the file if they are needed), so resident
    memory stays at a few buffers whatever the file's size. A copy-on-write map keeps its pages (releasing
    them would discard the changes made in memory): the pages read stay resident until the kernel needs
    the memory.
    """

    def __init__(self, arr: np.ndarray):
        self.arr = arr
        self._release = None
        mm = getattr(arr, "_mmap", None)
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if (mm is not None and advice is not None and hasattr(mm, "madvise") and arr.ndim >= 1
                and arr.flags.c_contiguous and getattr(arr, "mode", None) in ("r", "r+", "w+")):
            try:
                base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
            except (TypeError, ValueError, BufferError):
                return
            pos = arr.ctypes.data - base
            row_bytes = int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.dtype.itemsize
            if 0 <= pos and pos + arr.shape[0] * row_bytes <= len(mm):
                self._release = (mm, advice, pos, row_bytes)

    def read(self, r0: int, r1: int) -> np.ndarray:
        """Return a copy of rows [r0, r1) of the array."""
        out = np.array(self.arr[r0:r1], copy=True)
        if self._release is not None:
            mm, advice, pos, row_bytes = self._release
            first = (pos + r0 * row_bytes) // mmap.PAGESIZE * mmap.PAGESIZE
            last = pos + r1 * row_bytes
            try:
                mm.madvise(advice, first, last - first)
            except (OSError, ValueError):
                self._release = None
        return np.asarray(out)


class MappedRows:
    """Rows of memory-mapped arrays, read block by block (see the module docstring)."""

    def __init__(self, X, y, n_inputs: int, n_outputs: int, dtype: np.dtype, buffer_rows: int,
                 loss: str | None = None, activation: str | None = None, sample_weight=None):
        if X.dtype.kind not in "biuf":   # as in memory: the dtype first (a structured array is also 1-D)
            raise TypeError(f"X must hold real numbers, got an array of dtype {X.dtype}")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_rows, n_inputs), got shape {X.shape}")
        if X.shape[1] != n_inputs:
            raise ValueError(f"X has {X.shape[1]} columns but the network has {n_inputs} inputs")
        if X.shape[0] == 0:
            raise ValueError("X has no rows")
        y = y if isinstance(y, np.memmap) else np.asarray(v.unmasked(y, "y"))
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D (n_rows, n_outputs), got shape {y.shape}")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        self.n_rows = X.shape[0]
        self.block = min(buffer_rows, self.n_rows)
        self._dims = (n_inputs, n_outputs, dtype, loss, activation)
        self._rx = _MappedReader(X).read if isinstance(X, np.memmap) else (lambda r0, r1: X[r0:r1])
        self._ry = _MappedReader(y).read if isinstance(y, np.memmap) else (lambda r0, r1: y[r0:r1])
        self._rw = None
        if sample_weight is not None:
            w = sample_weight if isinstance(sample_weight, np.memmap) else \
                np.asarray(v.unmasked(sample_weight, "sample_weight"))
            if w.ndim == 2 and w.shape[1] == 1:   # a column, as the in-memory path takes it
                w = w[:, 0]
            if w.ndim != 1 or w.shape[0] != self.n_rows:
                raise ValueError(f"sample_weight must hold one weight per row of X ({self.n_rows}), got shape "
                                 f"{w.shape}")
            self._rw = _MappedReader(w).read if isinstance(w, np.memmap) else (lambda r0, r1: w[r0:r1])
        self._check_all()

    def _block(self, r0: int, r1: int):
        n_in, n_out, dtype, loss, activation = self._dims
        Xb = v.as_inputs(self._rx(r0, r1), n_in, dtype, first_row=r0)
        Yb = v.as_targets(self._ry(r0, r1), r1 - r0, n_out, dtype, first_row=r0, loss=loss, activation=activation)
        Wb = None if self._rw is None else v.as_sample_weight(self._rw(r0, r1), r1 - r0, dtype, first_row=r0)
        return Xb, Yb, Wb

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
    """An iterable of (X, y) or (X, y, sample_weight) chunks gathered into buffers of about ``buffer_rows`` rows.

    Every chunk of one pass has weights, or none does: a buffer mixing both would weigh some rows by chance.
    """

    def __init__(self, chunks, n_inputs: int, n_outputs: int, dtype: np.dtype, buffer_rows: int,
                 loss: str | None = None, activation: str | None = None):
        if isinstance(chunks, (np.ndarray, str, bytes)) or not hasattr(chunks, "__iter__"):
            raise TypeError("with y=None, X must be an iterable of (X, y) chunks")
        self.chunks = chunks
        self.n_rows = None
        self._dims = (n_inputs, n_outputs, dtype, loss, activation)
        self.buffer_rows = buffer_rows
        self._one_shot = iter(chunks) is chunks
        self._used = False

    def check_epochs(self, epochs: int) -> None:
        """Refuse, before any training, more than one epoch from a one-shot iterator."""
        if self._one_shot and epochs > 1:
            raise ValueError(f"X is a one-shot iterator of chunks (iter(X) is X, a generator, say), which can feed "
                             f"only one epoch, but epochs={epochs}; pass a list of chunks or an object whose "
                             f"__iter__ starts over, or train one epoch per call")

    def buffers(self, rng):
        """Yield buffers of converted, checked chunks (the chunks of one pass over the iterable)."""
        if self._one_shot and self._used:
            raise ValueError("the chunk iterable is a one-shot iterator, already consumed by the first epoch; "
                             "pass a list or an object whose __iter__ starts over to train several epochs")
        self._used = True
        n_in, n_out, dtype, loss, activation = self._dims
        xs, ys, ws, held, seen, weighted = [], [], [], 0, 0, None
        for k, chunk in enumerate(self.chunks):
            try:
                Xc, yc, *wc = chunk
                if len(wc) > 1:
                    raise ValueError
            except (TypeError, ValueError):
                raise TypeError(f"chunk {k} must be a pair (X, y) or a triple (X, y, sample_weight)") from None
            if weighted is None:
                weighted = bool(wc)
            elif weighted != bool(wc):
                raise ValueError(f"chunk {k} {'has' if wc else 'has no'} sample weights but the chunks before it "
                                 f"{'had none' if wc else 'had them'}: give every chunk weights, or none")
            try:
                Xc = v.as_inputs(Xc, n_in, dtype)
                Yc = v.as_targets(yc, Xc.shape[0], n_out, dtype, loss=loss, activation=activation)
                if wc:
                    ws.append(v.as_sample_weight(wc[0], Xc.shape[0], dtype))
            except (TypeError, ValueError) as exc:   # say which chunk, whatever the kind of error
                raise type(exc)(f"chunk {k} (rows {seen} onwards): {exc}") from None
            xs.append(Xc)
            ys.append(Yc)
            held += Xc.shape[0]
            seen += Xc.shape[0]
            if held >= self.buffer_rows:
                yield np.concatenate(xs), np.concatenate(ys), np.concatenate(ws) if ws else None
                xs, ys, ws, held = [], [], [], 0
        if held:
            yield np.concatenate(xs), np.concatenate(ys), np.concatenate(ws) if ws else None
        if seen == 0:
            raise ValueError("the chunk iterable gave no rows")
        self.n_rows = seen


def source(X, y, n_inputs: int, n_outputs: int, dtype: np.dtype, buffer_rows: int | None,
           loss: str | None = None, activation: str | None = None, sample_weight=None):
    """Return the data source for fit's X and y (see the module docstring).

    With ``loss`` and the output ``activation``, the targets are checked to fit the loss too. ``sample_weight``:
    one weight per row (for chunks: in the chunks, as their third member).
    """
    rows = buffer_rows or default_buffer_rows(n_inputs, dtype.itemsize)
    if y is None:
        if sample_weight is not None:
            raise ValueError("with X an iterable of chunks, give the sample weights in the chunks: "
                             "(X, y, sample_weight)")
        return ChunkStream(X, n_inputs, n_outputs, dtype, rows, loss, activation)
    if isinstance(X, np.memmap):
        return MappedRows(X, y, n_inputs, n_outputs, dtype, rows, loss, activation, sample_weight)
    Xa = v.as_inputs(X, n_inputs, dtype)
    Ya = v.as_targets(y, Xa.shape[0], n_outputs, dtype, loss=loss, activation=activation)
    W = None if sample_weight is None else v.as_sample_weight(sample_weight, Xa.shape[0], dtype)
    return InMemory(Xa, Ya, W)


__all__ = ["ChunkStream", "InMemory", "MappedRows", "source"]
