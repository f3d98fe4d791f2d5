"""Absurd sizes and long read-only calls: a clear ValueError up front, and Ctrl-C within a fraction of a second
(issue 18, items 10 and 11)."""
import subprocess
import sys
import time

import numpy as np
import pytest

import annfast as af


@pytest.mark.parametrize("make,match", [
    (lambda: af.Dense(2**63), r"units must be <= 2147483648"),
    (lambda: af.Dense(2**40), r"units must be <= 2147483648"),
    (lambda: af.Network(2**63, [af.Dense(1)]), r"n_inputs must be <= 2147483648"),
    (lambda: af.Network(2**31, [af.Dense(2**31)]), r"2\*\*40 per layer"),
    (lambda: af.Network(2**20, [af.Dense(2**20), af.Dense(1)]), r"GiB .*more than this machine's"),
], ids=["units-2**63", "units-2**40", "inputs-2**63", "layer-weights", "memory"])
def test_absurd_sizes_are_a_value_error_at_once(make, match):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        make()
    assert time.perf_counter() - start < 1.0


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
def test_sigint_during_gradient_of_many_rows_is_prompt(rng, sigint_after):
    # one call over every row used to hold the GIL-free C loop for 1.5 s without a Ctrl-C check
    net = af.Network(64, [af.Dense(1024, "tanh"), af.Dense(1024, "tanh"), af.Dense(10)], seed=0)
    X = rng.normal(size=(60_000, 64)).astype(np.float32)
    y = rng.normal(size=(60_000, 10)).astype(np.float32)
    before = net.parameters.tobytes()
    sent = sigint_after(0.3)
    with pytest.raises(KeyboardInterrupt):
        for _ in range(100):   # (however fast the machine: the signal must find a gradient running)
            net.gradient(X, y)
    raised = time.perf_counter()
    assert raised - sent["t"] < 0.5
    assert net.parameters.tobytes() == before
