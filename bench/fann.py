"""The FANN peer: builds bench/fann_driver.c against floatfann or doublefann and drives it from Python.

Python writes the rows and the initial weights to a binary file in bench/build/, starts the driver once per
network (it inherits this process's core pinning) and asks it for epochs of ``fann_train`` one row at a time; the
driver times only its ``fann_train`` loop and answers the seconds. See fann_driver.c for the file layout and the
command protocol.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
from cbuild import BUILD_DIR, BuildError, compile_c
from data import cast_weights

_VARIANTS = {
    "float32": ("fann_driver_float", [], ["-lfloatfann", "-lm"]),
    "float64": ("fann_driver_double", ["-DBENCH_FANN_DOUBLE"], ["-ldoublefann", "-lm"]),
}


class FannUnavailable(Exception):
    """FANN cannot run here (no compiler, no libfann-dev); the message says why."""


def build_driver(dtype: str) -> Path:
    """Build (if needed) the driver for ``dtype`` ("float32": floatfann, "float64": doublefann); return its path."""
    name, defines, libs = _VARIANTS[dtype]
    try:
        return compile_c("fann_driver.c", name, ["-O2", "-std=gnu99", "-Wall", *defines], libs)
    except BuildError as exc:
        raise FannUnavailable(f"{exc}; FANN needs a C compiler and apt-get install libfann-dev") from None


def fann_version() -> str | None:
    """FANN's version from pkg-config, or None."""
    try:
        out = subprocess.run(["pkg-config", "--modversion", "fann"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def write_input(path: Path, sizes, X, Y, weights, dtype: str) -> None:
    """Write rows, targets and initial weights in the driver's input layout (see fann_driver.c)."""
    dt = np.dtype(dtype)
    with open(path, "wb") as f:
        f.write(b"AFBENCH1")
        np.array([dt.itemsize, len(sizes), *sizes], dtype=np.int32).tofile(f)
        np.array([X.shape[0]], dtype=np.int64).tofile(f)
        np.ascontiguousarray(X, dtype=dt).tofile(f)
        np.ascontiguousarray(Y, dtype=dt).tofile(f)
        for W, b in cast_weights(weights, dt):
            W.tofile(f)
            b.tofile(f)


class Fann:
    """FANN's ``fann_train`` (incremental backpropagation), one driver process per network.

    Parameters
    ----------
    sizes : tuple of int
        Layer sizes, input first.
    weights : list of (W, b)
        Initial weights, W of shape (n_out, n_in).
    X, Y : ndarray
        Rows and targets.
    dtype : {"float32", "float64"}
        floatfann or doublefann.
    tag : str
        Names the input file in bench/build/.
    """

    def __init__(self, sizes, weights, X, Y, dtype: str, tag: str):
        exe = build_driver(dtype)
        self.sizes = tuple(sizes)
        self.dtype = np.dtype(dtype)
        self.path = BUILD_DIR / f"fann_{tag}_{self.dtype.name}.bin"
        write_input(self.path, sizes, X, Y, weights, dtype)
        self.proc = subprocess.Popen([str(exe), str(self.path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        ready = self._read_line()
        if not ready.startswith("ready "):
            raise FannUnavailable(f"the FANN driver did not start: {ready!r}")
        self.n_rows = int(ready.split()[2])

    def _read_line(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"the FANN driver stopped (exit code {code}); see its message above")
        return line.strip()

    def _ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read_line()

    def sgd_epoch(self, count: int) -> float:
        """Seconds of ``fann_train`` on each of the first ``count`` rows, from the initial weights."""
        return float(self._ask(f"epoch {count}"))

    def get_weights(self) -> list:
        """Current weights as a list of (W, b), W of shape (n_out, n_in)."""
        with tempfile.TemporaryDirectory(dir=BUILD_DIR) as tmp:
            out = Path(tmp) / "weights.bin"
            answer = self._ask(f"dump {out}")
            if answer != "ok":
                raise RuntimeError(f"the FANN driver could not dump its weights: {answer!r}")
            flat = np.fromfile(out, dtype=self.dtype)
        weights, off = [], 0
        for n_in, n_out in zip(self.sizes[:-1], self.sizes[1:]):
            W = flat[off:off + n_out * n_in].reshape(n_out, n_in)
            off += n_out * n_in
            weights.append((W, flat[off:off + n_out]))
            off += n_out
        return weights

    def close(self) -> None:
        """Stop the driver and remove its input file."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Fann:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
