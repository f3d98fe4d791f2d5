"""Absurd sizes and long read-only calls: a clear ValueError up front, and Ctrl-C within a fraction of a second
(issue 18, items 10 and 11)."""
import os
import signal
import subprocess
import sys
import threading
import traceback
import tracemalloc

import numpy as np
import pytest

import annfast as af
from annfast import _core


def refused_within(make, match, max_lines):
    """Call make() (a ValueError matching match is expected) under a tracer that stops it with a RuntimeError
    after max_lines lines of Python; return the bytes it allocated at its peak (tracemalloc, which sees NumPy's
    buffers too) and the lines it ran."""
    lines = [0]

    def count_lines(frame, event, arg):
        if event == "line":
            lines[0] += 1
            if lines[0] > max_lines:
                raise RuntimeError(f"over {max_lines:,} lines of Python run before the refusal")
        return count_lines

    tracemalloc.start()
    outer = sys.gettrace()   # (a coverage tracer, say: put back afterwards)
    sys.settrace(count_lines)
    try:
        with pytest.raises(ValueError, match=match):
            make()
    finally:
        sys.settrace(outer)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, lines[0]


@pytest.mark.parametrize("make,match", [
    (lambda: af.Dense(2**63), r"units must be <= 2147483648"),
    (lambda: af.Dense(2**40), r"units must be <= 2147483648"),
    (lambda: af.Network(2**63, [af.Dense(1)]), r"n_inputs must be <= 2147483648"),
    (lambda: af.Network(2**31, [af.Dense(2**31)]), r"2\*\*40 per layer"),
    (lambda: af.Network(2**20, [af.Dense(2**20), af.Dense(1)]), r"GiB .*more than this machine's"),
], ids=["units-2**63", "units-2**40", "inputs-2**63", "layer-weights", "memory"])
def test_absurd_sizes_are_a_value_error_at_once(make, match):
    # "At once" without a clock: refused before any work proportional to the size, so the refusal allocates
    # under 1 MiB (weights drawn or zeroed first, then checked, would show) and runs under 20,000 lines of
    # Python (a loop over the units or weights is stopped by the tracer and fails the test with its
    # RuntimeError instead of hanging it). The first call is not measured: it may run lazy imports (numpy.random:
    # about 0.9 MB and 4,500 lines), so it only has to finish within 200,000 lines.
    refused_within(make, match, 200_000)
    peak, _ = refused_within(make, match, 20_000)
    assert peak < 2**20, f"{peak:,} bytes allocated before the refusal"


def test_absurd_hidden_sizes_of_the_estimators_are_a_value_error():
    sk = pytest.importorskip("annfast.sklearn")
    pytest.importorskip("sklearn")
    for sizes in [(2**63,), (2**40,), (2**31, 2**31)]:   # (sizes refused on any machine, whatever its memory)
        with pytest.raises(ValueError):
            sk.ANNRegressor(hidden_layer_sizes=sizes).fit(np.zeros((3, 2)), np.zeros(3))


def test_cli_absurd_hidden_size_is_a_usage_error(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,t\n1,2,3\n4,5,6\n")
    proc = subprocess.run([sys.executable, "-m", "annfast", "train", str(data), "--target", "t", "--hidden",
                           "2147483648,2147483648", "-o", str(tmp_path / "m.annf")], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)   # (not the source tree's annfast/)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "2**40 per layer" in proc.stderr
    assert not (tmp_path / "m.annf").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_sigint_during_gradient_of_many_rows_is_prompt(rng, sigint_raises, monkeypatch):
    # One call over every row used to hold the GIL-free C loop for 1.5 s without a Ctrl-C check, so the
    # KeyboardInterrupt came only after the whole sum. "Prompt" without a clock: a SIGINT sent while the C loop
    # runs (a thread started as gradient_rows is entered sends it; the 60,000 rows take seconds) is raised by
    # gradient_rows itself, at its check between chunks of rows, not by the Python code after it returns; and
    # the weights are untouched.
    net = af.Network(64, [af.Dense(1024, "tanh"), af.Dense(1024, "tanh"), af.Dense(10)], seed=0)
    X = rng.normal(size=(60_000, 64)).astype(np.float32)
    y = rng.normal(size=(60_000, 10)).astype(np.float32)
    before = net.parameters.tobytes()
    real = _core.gradient_rows
    sender = []

    def gradient_rows(*args, **kwargs):
        sender.append(threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)))
        sender[-1].start()
        return real(*args, **kwargs)

    monkeypatch.setattr(_core, "gradient_rows", gradient_rows)
    try:
        with pytest.raises(KeyboardInterrupt) as info:
            net.gradient(X, y)
    finally:
        for t in sender:
            t.join()
    assert len(sender) == 1
    innermost = traceback.extract_tb(info.tb)[-1]
    assert innermost.name.endswith("gradient_rows") and innermost.filename.endswith("_core.pyx"), (
        f"KeyboardInterrupt raised in {innermost.name} ({innermost.filename}), not between gradient_rows' chunks")
    assert net.parameters.tobytes() == before
