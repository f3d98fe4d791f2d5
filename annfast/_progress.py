"""Progress reports of ``Network.fit``: a live bar per epoch (verbose=1) or one line per epoch (verbose=2).

The bar uses tqdm when it is installed and a plain single-line fallback otherwise. Updates come between
chunks of rows (every few milliseconds), never per sample, and the fallback redraws at most ten times a
second, so progress costs nothing measurable. Without a stream to write to (``sys.stderr`` is None, as in
a windowed app without a console or some service managers), the report falls back silently to nothing:
training never fails because it cannot be reported.
"""
from __future__ import annotations

import sys
import time

_TQDM: bool | None = None


def _have_tqdm() -> bool:
    """Return whether the optional tqdm can be imported, asking once per process.

    Python does not remember a failed import: searching for tqdm again on every fit call cost about 0.1 ms,
    a fifth of an epoch of a small network.
    """
    global _TQDM
    if _TQDM is None:
        try:
            import tqdm  # noqa: F401 -- optional dependency
            _TQDM = True
        except ImportError:
            _TQDM = False
    return _TQDM


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):    # no isatty, or a closed stream
        return False


def _fmt_rate(rate: float) -> str:
    for unit, scale in (("M", 1e6), ("k", 1e3)):
        if rate >= scale:
            return f"{rate / scale:.3g}{unit}"
    return f"{rate:.3g}"


def _fmt_logs(logs: dict) -> str:
    return " - ".join(f"{k} {v:.4g}" for k, v in logs.items())


class Progress:
    """Report the progress of ``epochs`` epochs of ``n_rows`` rows each.

    Parameters
    ----------
    verbose : {1, 2}
        1: a live bar per epoch with rows/s and the metrics at its end; 2: one line per epoch. When the
        stream is not a terminal (a pipe, a file, a CI log), 1 falls back to 2: no carriage-return redraws.
    epochs : int
    n_rows : int or None
        Rows per epoch; None when not known in advance (a stream of chunks).
    stream : file-like, default=sys.stderr
        When it is None (``sys.stderr`` None too), nothing is reported.
    """

    def __init__(self, verbose: int, epochs: int, n_rows: int, stream=None):
        self.verbose = verbose
        self.epochs = epochs
        self.n_rows = n_rows
        self.stream = stream if stream is not None else sys.stderr
        self.silent = self.stream is None
        if verbose == 1 and not self.silent and not _isatty(self.stream):
            self.verbose = 2     # a pipe or a log file: "\r" redraws would pile up there; one line per epoch
        self._bar = None
        self._t0 = 0.0
        self._last_draw = 0.0
        self._tqdm = _have_tqdm()

    def epoch_begin(self, epoch: int) -> None:
        """Start the report of one epoch."""
        if self.silent:
            return
        self._t0 = time.perf_counter()
        self._epoch = epoch
        if self.verbose == 1 and self._tqdm:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=self.n_rows, unit="rows", unit_scale=True, leave=True, file=self.stream,
                             desc=f"epoch {epoch + 1}/{self.epochs}")

    def offset(self, before: int):
        """Return an ``update`` for a buffer that starts after ``before`` rows of the epoch."""
        return lambda done: self.update(before + done)

    def update(self, done: int) -> None:
        """Report that ``done`` rows of the current epoch are trained (called between chunks)."""
        if self.verbose != 1 or self.silent:
            return
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            return
        now = time.perf_counter()
        if now - self._last_draw < 0.1 and done < self.n_rows:
            return
        self._last_draw = now
        rate = done / max(now - self._t0, 1e-9)
        if self.n_rows:
            width = 30
            fill = int(min(1.0, done / self.n_rows) * width)
            bar = f"[{'=' * fill}{'.' * (width - fill)}] {done}/{self.n_rows}"
        else:
            bar = f"{done}"
        self.stream.write(f"\repoch {self._epoch + 1}/{self.epochs} {bar} rows, {_fmt_rate(rate)} rows/s")
        self.stream.flush()

    def epoch_end(self, logs: dict, rows: int | None = None) -> None:
        """Finish the report of the epoch (of ``rows`` rows, default n_rows) with its metrics."""
        if self.silent:
            return
        seconds = time.perf_counter() - self._t0
        rate = (rows or self.n_rows or 0) / max(seconds, 1e-9)
        if self._bar is not None:
            self._bar.set_postfix_str(_fmt_logs(logs), refresh=False)
            self._bar.close()
            self._bar = None
            return
        line = (f"epoch {self._epoch + 1}/{self.epochs} - {seconds:.3g} s - {_fmt_rate(rate)} rows/s - "
                f"{_fmt_logs(logs)}")
        self.stream.write(("\r" + line + " " * 10 + "\n") if self.verbose == 1 else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        """End an interrupted report cleanly."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
