"""Shared fixtures: a seeded generator, the dtype -> tolerance table and small helpers."""
import os
import signal
import threading
import time

import numpy as np
import pytest

try:
    import annfast  # noqa: F401 -- the tests run against the installed package
except ImportError as exc:       # README's test command run before its install command
    pytest.exit(f"cannot import annfast ({exc}): install it first with `pip install .` (a C compiler is needed), "
                f"then run pytest again", returncode=4)

# CI sets ANNFAST_QUICK=1: slow checks then run on fewer cases.
QUICK = os.environ.get("ANNFAST_QUICK") == "1"

DTYPES = ["float32", "float64"]
# agreement with the float64 reference after a few dozen updates
TOL = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt during the test, as in an interactive session, also where the process
    started with SIGINT ignored (Python then installs no handler: a background job of a non-interactive shell,
    nohup)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.fixture
def sigint_after(sigint_raises):
    """Call ``sigint_after(seconds)`` to send this process a real SIGINT that many seconds later; it returns a
    dict whose "t" is the time.perf_counter() of the sending (set once sent). The timer is joined at teardown."""
    timers = []

    def start(seconds: float) -> dict:
        sent = {}

        def fire():
            sent["t"] = time.perf_counter()
            os.kill(os.getpid(), signal.SIGINT)
        timer = threading.Timer(seconds, fire)
        timers.append(timer)
        timer.start()
        return sent
    yield start
    for timer in timers:
        timer.join()


def representable(a, dtype):
    """a rounded to dtype and back to float64, so annfast and the reference see the same numbers."""
    return np.asarray(a).astype(dtype).astype(np.float64)


def random_targets(rng, units: int, out: str, n_rows: int, dtype):
    """Targets that fit an output layer of ``units`` with activation ``out``: one-hot rows for softmax, 0/1 for
    sigmoid, else normal values representable in dtype."""
    if out == "softmax":
        return np.eye(units)[rng.integers(0, units, n_rows)]
    if out == "sigmoid":
        return rng.integers(0, 2, size=(n_rows, units)).astype(np.float64)
    return representable(rng.normal(size=(n_rows, units)), dtype)
