"""The demo (python -m annfast) runs, prints the loss per epoch and ends far below the mean predictor."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from annfast.demo import load_house_prices, run_demo


def test_demo_data_is_bundled():
    X, y, header = load_house_prices()
    assert X.shape == (1000, 4) and y.shape == (1000,)
    assert header == ["area_m2", "bedrooms", "distance_km", "age_years", "price_k"]


def test_demo_error_is_far_below_predicting_the_mean():
    lines = []
    result = run_demo(epochs=40, out=lines.append)
    assert len([line for line in lines if line.startswith("epoch")]) == 40
    assert result["rmse"] < 0.2 * result["baseline_rmse"]
    assert result["history"][-1] < result["history"][0]


@pytest.mark.parametrize("command", [[sys.executable, "-m", "annfast"], ["annfast", "demo"]],
                         ids=["python-m-annfast", "annfast-demo"])
def test_demo_command_runs(command):
    if command[0] == "annfast":
        script = shutil.which("annfast", path=os.path.dirname(sys.executable))
        if script is None:
            pytest.skip("the annfast console script is not installed next to this Python")
        command = [script, "demo"]
    # run outside the source tree, so that the installed package is the one imported
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=os.path.expanduser("~"))
    assert proc.returncode == 0, proc.stderr
    final = re.search(r"final test RMSE ([\d.]+) \(thousands\) vs ([\d.]+)", proc.stdout)
    assert final, proc.stdout
    assert float(final.group(1)) < 0.2 * float(final.group(2))


def test_demo_labels_the_units_of_loss_and_error():
    # the training loss is on standardized prices, the test RMSE in thousands: each number says which
    lines = []
    run_demo(epochs=1, out=lines.append)
    legend = next(line for line in lines if line.startswith("train loss:"))
    assert "standardized prices" in legend and "in thousands" in legend
    epoch = next(line for line in lines if line.startswith("epoch"))
    assert re.fullmatch(r"epoch +1  train loss \(standardized\) [\d.]+  test RMSE \(thousands\) +[\d.]+", epoch), epoch
