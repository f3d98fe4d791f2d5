"""The annfast command: train / predict / info / demo in-process through main(), a few real subprocess runs,
and every user error -> 'annfast: error: ...' on stderr with exit status 2 (never a traceback)."""
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import annfast as af
from annfast import cli
from annfast.cli import main
from annfast.datafiles import read_fann

DATA = Path(__file__).resolve().parent / "data"
DIABETES_TRAIN = DATA / "diabetes.train"
DIABETES_TEST = DATA / "diabetes.test"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def metric(text, name):
    found = re.findall(rf"\b{name} ([-+\d.e]+)", text)
    assert found, text
    return float(found[-1])


def write_csv(path, header, table):
    lines = [",".join(header)] + [",".join(repr(float(v)) for v in row) for row in table]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def diabetes_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "diabetes.annf"
    assert main(["train", str(DIABETES_TRAIN), "--hidden", "8", "--epochs", "30", "--seed", "0",
                 "--out", str(path)]) == 0
    return path


@pytest.fixture
def houses(tmp_path):
    """A regression table whose target, 'price', is the middle column: price = 1.5 area - 4 distance + 100 + noise."""
    rng = np.random.default_rng(7)
    area = rng.uniform(50, 250, 300)
    distance = rng.uniform(0, 30, 300)
    price = 1.5 * area - 4.0 * distance + 100.0 + rng.normal(0, 3.0, 300)
    return write_csv(tmp_path / "houses.csv", ["area", "price", "distance"], np.column_stack([area, price, distance]))


# ---- train / predict / info ----------------------------------------------------------------------------

def test_train_fann_diabetes_softmax_then_predict_on_the_test_file(tmp_path, capsys, diabetes_model):
    code, out, err = run(capsys, "train", DIABETES_TRAIN, "--hidden", "8", "--epochs", "30", "--seed", "0",
                         "--out", tmp_path / "m.annf")
    assert code == 0, err
    assert f"data: {DIABETES_TRAIN} (FANN): 384 rows, 8 inputs, 2 targets (y1, y2)" in out
    assert "network: 8 inputs -> 8 tanh -> 2 softmax; loss cross_entropy; float32; 90 parameters" in out
    assert "trained 30 epochs of 384 rows (batch size 1, learning rate 0.01)" in out
    assert metric(out, "accuracy") > 0.7
    assert f"saved {tmp_path / 'm.annf'}" in out
    assert (tmp_path / "m.annf").read_bytes() == diabetes_model.read_bytes()     # same seed, same model

    preds = tmp_path / "pred.csv"
    code, out, err = run(capsys, "predict", diabetes_model, DIABETES_TEST, "--evaluate", "--out", preds)
    assert code == 0, err
    assert out.startswith(f"{DIABETES_TEST}: 384 rows: loss ")
    assert metric(out, "accuracy") >= 0.70
    lines = preds.read_text().splitlines()
    assert lines[0] == "output1,output2" and len(lines) == 385
    table = np.loadtxt(preds, delimiter=",", skiprows=1)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, rtol=1e-5)
    X_test, _ = read_fann(DIABETES_TEST)
    np.testing.assert_array_equal(table.astype(np.float32), af.load(diabetes_model).predict(X_test))  # lossless


def test_predict_to_stdout_with_metrics_on_stderr(capsys, diabetes_model):
    code, out, err = run(capsys, "predict", diabetes_model, DIABETES_TEST, "--evaluate")
    assert code == 0, err
    assert out.splitlines()[0] == "output1,output2" and len(out.splitlines()) == 385
    assert err.startswith(f"{DIABETES_TEST}: 384 rows: loss ") and "accuracy" in err


def test_predict_classes(capsys, diabetes_model):
    code, out, err = run(capsys, "predict", diabetes_model, DIABETES_TEST, "--classes")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "class" and set(lines[1:]) <= {"0", "1"} and len(lines) == 385


def test_regression_from_csv_with_named_target(tmp_path, capsys, houses):
    model = tmp_path / "houses.annf"
    code, out, err = run(capsys, "train", houses, "--target", "price", "--standardize", "--hidden", "8",
                         "--epochs", "30", "--seed", "1", "--dtype", "float64", "--out", model)
    assert code == 0, err
    assert "300 rows, 2 inputs, 1 target (price)" in out
    assert "network: 2 inputs -> 8 tanh -> 1 linear; loss half_squared_error; float64" in out
    price = np.loadtxt(houses, delimiter=",", skiprows=1)[:, 1]
    assert metric(out, "rmse") < 0.1 * price.std()
    # the scaling is folded into the weights: the model takes and gives the file's units
    net = af.load(model)
    table = np.loadtxt(houses, delimiter=",", skiprows=1)
    pred = net.predict(table[:, [0, 2]])[:, 0]
    assert np.sqrt(np.mean((pred - price) ** 2)) == pytest.approx(metric(out, "rmse"), rel=1e-5)
    # predict names the same target; the inputs are the other columns
    code, out, err = run(capsys, "predict", model, houses, "--target", "price", "--evaluate", "--out",
                         tmp_path / "p.csv")
    assert code == 0, err
    assert metric(out, "rmse") < 0.1 * price.std()
    written = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(written, pred)


def test_predict_csv_without_target_columns(tmp_path, capsys, houses):
    model = tmp_path / "m.annf"
    table = np.loadtxt(houses, delimiter=",", skiprows=1)
    inputs = write_csv(tmp_path / "inputs.csv", ["area", "distance"], table[:, [0, 2]])
    assert run(capsys, "train", houses, "--target", "2", "--epochs", "1", "--standardize", "--out", model)[0] == 0
    code, out, err = run(capsys, "predict", model, inputs)
    assert code == 0, err
    assert len(out.splitlines()) == 301 and out.startswith("output1\n")
    code, out, err = run(capsys, "predict", model, inputs, "--evaluate")
    assert code == 2 and "--evaluate needs targets, but" in err


def test_labels_and_auto_output_activations(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 3))
    label = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    cases = {
        "labels": (np.column_stack([X, label]), ["--labels"], "3 inputs -> 4 tanh -> 3 softmax; loss cross_entropy"),
        "onehot": (np.column_stack([X, np.eye(3)[label]]), ["--target", "4-6"], "-> 3 softmax; loss cross_entropy"),
        "binary": (np.column_stack([X, label > 0]), [], "-> 1 sigmoid; loss half_squared_error"),
        "multilabel": (np.column_stack([X, X[:, :2] > 0]), ["--target", "-2,-1"], "-> 2 sigmoid;"),
        "real": (np.column_stack([X, X.sum(1)]), [], "-> 1 linear; loss half_squared_error"),
        "override": (np.column_stack([X, label > 0]), ["--output-activation", "tanh", "--loss", "half_squared_error"],
                     "-> 1 tanh; loss half_squared_error"),
        "sigmoid-ce": (np.column_stack([X, label > 0]), ["--loss", "cross_entropy"],
                       "-> 1 sigmoid; loss cross_entropy"),
    }
    for name, (table, extra, expected) in cases.items():
        path = write_csv(tmp_path / f"{name}.csv", [f"c{k}" for k in range(table.shape[1])], table)
        code, out, err = run(capsys, "train", path, "--hidden", "4", "--epochs", "2", "--seed", "0",
                             "--out", tmp_path / f"{name}.annf", *extra)
        assert code == 0, (name, err)
        assert expected in out, (name, out)
    # a model trained on labels evaluates a file whose last column holds them
    code, out, err = run(capsys, "predict", tmp_path / "labels.annf", tmp_path / "labels.csv", "--evaluate", "--out",
                         tmp_path / "p.csv")
    assert code == 0, err
    assert "accuracy" in out


def test_training_options_reach_fit_and_the_model_file(tmp_path, capsys):
    model = tmp_path / "m.annf"
    code, out, err = run(capsys, "train", DIABETES_TRAIN, "--hidden", "6,4", "--activation", "leaky_relu",
                         "--negative-slope", "0.1", "--epochs", "3", "--lr", "0.05", "--batch-size", "8",
                         "--momentum", "0.9", "--nesterov", "--weight-decay", "1e-4", "--no-shuffle", "--dtype",
                         "float64", "--seed", "5", "--validation-split", "0.25", "--out", model)
    assert code == 0, err
    assert "8 inputs -> 6 leaky_relu(0.1) -> 4 leaky_relu(0.1) -> 2 softmax" in out
    assert "trained 3 epochs of 288 rows (batch size 8, learning rate 0.05)" in out
    assert re.search(r"final validation: loss [\d.]+  accuracy [\d.]+ \(96 rows, the last of the file\)", out)
    code, out, err = run(capsys, "info", model, "--json")
    assert code == 0, err
    header = json.loads(out)
    assert header["format_version"] == 2 and header["dtype"] == "float64" and header["seed"] == 5
    assert header["training"] == {"epochs": 3, "learning_rate": 0.05, "batch_size": 8, "shuffle": False,
                                  "loss": "cross_entropy", "momentum": 0.9, "nesterov": True,
                                  "weight_decay": 0.0001, "n_rows": 288, "n_validation_rows": 96,
                                  "n_threads": 1, "threading": "serial"}
    assert [layer["units"] for layer in header["layers"]] == [6, 4, 2]


def test_full_batch_and_verbose_progress(tmp_path, capsys):
    code, out, err = run(capsys, "train", DATA / "xor.data", "--batch-size", "full", "--epochs", "2", "--verbose",
                         "2", "--hidden", "none", "--out", tmp_path / "m.annf")
    assert code == 0, err
    assert "network: 2 inputs -> 1 linear" in out and "(batch size full," in out
    assert len([line for line in err.splitlines() if line.startswith("epoch ")]) == 2


def test_info_text(capsys, diabetes_model):
    code, out, err = run(capsys, "info", diabetes_model)
    assert code == 0, err
    assert "file:" in out and f"{diabetes_model}: annfast model, format version 2" in out
    for expected in ("architecture:", "8 inputs -> 8 tanh -> 2 softmax", "dtype:", "float32", "loss:",
                     "cross_entropy", "parameters:", "90", "seed:", "training:", "settings of the last fit",
                     "learning_rate:", "0.01", "n_rows:", "384"):
        assert expected in out, expected


def test_info_of_a_network_never_trained(tmp_path, capsys):
    path = tmp_path / "fresh.annf"
    af.Network(3, [af.Dense(2, "sigmoid")]).save(path)
    code, out, err = run(capsys, "info", path)
    assert code == 0, err
    assert "not recorded (saved before any fit)" in out and "none (fresh randomness)" in out


def test_help_version_and_demo(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "train" in out and "predict" in out and "info" in out and "demo" in out
    for command in ("train", "predict", "info"):
        code, out, _ = run(capsys, command, "--help")
        assert code == 0 and out.startswith(f"usage: annfast {command}")
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"annfast {af.__version__}"
    code, out, _ = run(capsys, "demo", "--epochs", "2")
    assert code == 0 and "final test RMSE" in out
    code, out, _ = run(capsys)                            # no arguments: the demo
    assert code == 0 and "final test RMSE" in out


# ---- user errors: exit status 2 and a one-line message ------------------------------------------------

@pytest.fixture
def bad_files(tmp_path):
    files = {
        "empty.csv": b"",
        "binary.csv": bytes(range(256)),
        "ragged.csv": b"a,b,c\n1,2,3\n4,5\n",
        "words.csv": b"a,b,c\n1,2,3\n4,five,6\n",
        "short.data": b"3 2 1\n1 2\n3\n1 2\n3\n",
        "long.data": b"2 2 1\n1 2\n3\n1 2\n3\n4 5\n",
        "ok.csv": b"a,b,c\n1,2,0.5\n4,5,0.25\n",
        "labels.csv": b"a,b,c\n1,2,1\n4,5,1.5\n",
        "big.csv": b"x,y\n" + b"".join(b"%d,%d\n" % (1000 * k, 10 ** 6 * k) for k in range(1, 30)),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


ERRORS = [
    (["train", "{d}/missing.csv", "--out", "{d}/m.annf"], r"missing\.csv: No such file or directory$"),
    (["train", "{d}/empty.csv", "--out", "{d}/m.annf"], r"empty\.csv: the file is empty$"),
    (["train", "{d}/binary.csv", "--out", "{d}/m.annf"], r"binary\.csv: line 1: binary content"),
    (["train", "{d}/ragged.csv", "--out", "{d}/m.annf"], r"ragged\.csv: line 3: 2 columns where line 1 has 3$"),
    (["train", "{d}/words.csv", "--out", "{d}/m.annf"],
     r"words\.csv: line 3, column 2 \('b'\): 'five' is not a number$"),
    (["train", "{d}/short.data", "--out", "{d}/m.annf"],
     r"short\.data: the file ends at line 5, before the inputs of pair 3; the header \(line 1\) announces 3 pairs"),
    (["train", "{d}/long.data", "--out", "{d}/m.annf"], r"long\.data: line 6: unexpected numbers after the last pair"),
    (["train", "{d}/ok.csv", "--target", "price", "--out", "{d}/m.annf"],
     r"ok\.csv: there is no column named 'price'; its columns are 'a', 'b', 'c'$"),
    (["train", "{d}/ok.csv", "--target", "7", "--out", "{d}/m.annf"], r"there is no column 7: the file has 3 columns"),
    (["train", "{d}/short.data", "--target", "1", "--out", "{d}/m.annf"],
     r"short\.data is a FANN file, .*; --target applies to CSV files only \(or give --format csv\)"),
    (["train", "{d}/ok.csv", "--format", "fann", "--out", "{d}/m.annf"],
     r"ok\.csv: line 1: a FANN training file starts with a line of three integers"),
    (["train", "{d}/labels.csv", "--labels", "--out", "{d}/m.annf"],
     r"labels\.csv: line 3: the target 1.5 is not a class label"),
    (["train", "{d}/big.csv", "--labels", "--out", "{d}/m.annf"],
     r"big\.csv: line 2: the target 1e\+06 is not a class label \(an integer 0, 1, 2, \.\.\. below 100000\)$"),
    (["train", "{d}/ok.csv", "--output-activation", "softmax", "--out", "{d}/m.annf"],
     r"a softmax output needs at least 2 outputs but there is 1 target column"),
    (["train", "{d}/ok.csv", "--output-activation", "linear", "--loss", "cross_entropy", "--out", "{d}/m.annf"],
     r"--loss cross_entropy needs a softmax or sigmoid output, but --output-activation is linear"),
    (["train", "{d}/ok.csv", "--validation-split", "0.9", "--out", "{d}/m.annf"],
     r"--validation-split 0.9 of 2 rows leaves no training or no validation rows"),
    (["train", "{d}/ok.csv", "--momentum", "0", "--nesterov", "--out", "{d}/m.annf"],
     r"^annfast: error: --nesterov needs --momentum > 0"),
    (["train", "{d}/ok.csv", "--out", "{d}/no/such/dir/m.annf"], r"cannot write to .*m\.annf: the directory .* does "
                                                                 r"not exist$"),
    (["train", "{d}/ok.csv", "--out", "{d}/ok.csv"], r"refusing to write over the input file .*ok\.csv"),
    (["train", "{d}/ok.csv", "--out", "{d}"], r"cannot write to .*: it is a directory$"),
    (["train", "{d}/big.csv", "--lr", "1", "--seed", "0", "--out", "{d}/m.annf"],
     r"non-finite .* Training diverged: lower the learning rate .*No model was saved\. \(annfast train: try a "
     r"smaller --learning-rate, or --standardize\)$"),
    (["info", "{d}/missing.annf"], r"missing\.annf: No such file or directory$"),
    (["info", "{d}/ok.csv"], r"ok\.csv: not an annfast model file"),
    (["info", "{d}/empty.csv"], r"empty\.csv: the file is empty, not an annfast model"),
    (["predict", "{d}/ok.csv", "{d}/ok.csv"], r"ok\.csv: not an annfast model file"),
    (["predict", "{model}", "{d}/ok.csv"], r"ok\.csv has 3 columns but the model .* takes 8 inputs: without --target, "
                                           r"the first 8 columns are the inputs and any further ones targets$"),
    (["predict", "{model}", "{d}/missing.csv"], r"missing\.csv: No such file or directory$"),
    (["predict", "{model}", "{d}/ragged.csv"], r"ragged\.csv: line 3: 2 columns where line 1 has 3$"),
    (["predict", "{model}", str(DIABETES_TEST), "--out", "{model}"], r"refusing to write over the input file"),
    (["predict", "{d}/two-in.annf", "{d}/ok.csv", "--evaluate", "--classes"],
     r"--classes needs a model with several outputs or one sigmoid or step output; this one has one linear output"),
    (["predict", "{d}/two-in.annf", "{d}/ok.csv", "--target", "1,2,3"], r"all are targets; no input columns"),
    (["predict", "{model}", "{d}/wide.csv", "--evaluate"],
     r"wide\.csv: line 4: class label 5 is out of range for a model with 2 outputs$"),
    (["predict", "{model}", "{d}/wide.csv", "--evaluate", "--target", "-2,-1"],
     r"wide\.csv has 7 input columns \(9 columns less the 2 target columns named by --target\) but the model .* "
     r"takes 8 inputs$"),
    (["predict", "{model}", "{d}/wider.csv", "--evaluate", "--target", "-3,-2,-1"],
     r"wider\.csv has 3 target columns but the model has 2 outputs$"),
    (["predict", "{model}", "{d}/wider.csv", "--evaluate", "--target", "-3,-2,-1", "--classes"],
     r"wider\.csv has 3 target columns but the model has 2 outputs$"),
]


@pytest.mark.parametrize("argv, message", ERRORS, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(ERRORS)])
def test_user_errors_exit_2_with_a_message(capsys, bad_files, diabetes_model, argv, message):
    af.Network(2, [af.Dense(1, "linear")]).save(bad_files / "two-in.annf")
    wide = np.column_stack([np.zeros((3, 8)), [0, 1, 5]])
    write_csv(bad_files / "wide.csv", [f"c{k}" for k in range(9)], wide)
    write_csv(bad_files / "wider.csv", [f"c{k}" for k in range(11)], np.zeros((3, 11)))
    argv = [a.format(d=bad_files, model=diabetes_model) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert err.startswith("annfast: error: ") and err.count("\n") == 1, err
    assert re.search(message, err.strip()), err
    assert "Traceback" not in err
    assert not (bad_files / "m.annf").exists()


# ---- option combinations: checked by the command itself, naming its options, before anything is read ----------

@pytest.mark.parametrize("options, message", [
    (["--nesterov"], r"--nesterov needs --momentum > 0 .*add --momentum, such as --momentum 0\.9"),
    (["--momentum", "0", "--nesterov"], r"--nesterov needs --momentum > 0"),
    (["--output-activation", "tanh", "--loss", "cross_entropy"],
     r"--loss cross_entropy needs a softmax or sigmoid output, but --output-activation is tanh"),
    (["--output-activation", "linear", "--class-weight", "balanced"],
     r"--class-weight balanced needs a classifier output \(softmax, sigmoid, step\), but --output-activation is "
     r"linear"),
], ids=["nesterov-alone", "nesterov-momentum-0", "cross-entropy-tanh", "class-weight-linear"])
def test_train_option_conflicts_are_refused_before_reading_the_data(capsys, tmp_path, options, message):
    # the data file does not exist: the options are checked before it is opened (it used to be loaded, the data,
    # network and seed lines printed, and then fit's "nesterov=True needs momentum > 0" named Python's arguments)
    code, out, err = run(capsys, "train", tmp_path / "missing.csv", "--out", tmp_path / "m.annf", *options)
    assert code == 2 and out == "", (out, err)
    assert re.search(message, err), err
    assert "No such file" not in err and "nesterov=True" not in err and "class_weight" not in err
    assert not (tmp_path / "m.annf").exists()


@pytest.mark.parametrize("options, message", [
    # --output-activation auto chooses linear for these targets, which --class-weight cannot weigh
    (["--class-weight", "balanced"],
     r"--class-weight balanced needs a classifier output \(softmax, sigmoid, step\), but the output activation is "
     r"linear \(chosen by --output-activation auto\); use --labels"),
    (["--output-activation", "sigmoid", "--loss", "cross_entropy"],
     r"houses\.csv: line 2: the target distance is [\d.]+, but the loss cross_entropy needs targets in \[0, 1\]; "
     r"use --labels .*or --loss half_squared_error$"),
], ids=["class-weight-auto-linear", "cross-entropy-targets"])
def test_train_target_conflicts_name_the_options_before_printing(capsys, houses, options, message):
    code, out, err = run(capsys, "train", houses, "--out", houses.with_suffix(".annf"), *options)
    assert code == 2 and out == "", (out, err)    # refused before the data, network and seed lines
    assert err.startswith("annfast: error: ") and err.count("\n") == 1, err
    assert re.search(message, err.strip()), err
    assert "class_weight needs" not in err and "loss='half_squared_error'" not in err


def test_predict_counts_input_columns_and_says_what_the_model_takes(capsys, tmp_path, houses, diabetes_model):
    # houses.csv: area, price, distance. Without --target every column was reported as an input column
    code, _, err = run(capsys, "predict", diabetes_model, houses)
    assert code == 2 and "has 3 input columns" not in err
    assert re.search(r"houses\.csv has 3 columns but the model .*diabetes\.annf takes 8 inputs: without --target, the "
                     r"first 8 columns are the inputs and any further ones targets$", err.strip()), err
    code, _, err = run(capsys, "predict", diabetes_model, houses, "--target", "price")
    assert code == 2 and re.search(r"houses\.csv has 2 input columns \(3 columns less the 1 target column named by "
                                   r"--target\) but the model .* takes 8 inputs$", err.strip()), err
    one = tmp_path / "one-input.annf"
    af.Network(1, [af.Dense(1, "linear")], seed=0).save(one)
    code, _, err = run(capsys, "predict", one, houses, "--target", "price")
    assert code == 2 and re.search(r"houses\.csv has 2 input columns \(3 columns less the 1 target column named by "
                                   r"--target\) but the model .* takes 1 input; name the 1 extra column in --target "
                                   r"too if it is not an input$", err.strip()), err


def test_demo_help_describes_the_demo_and_its_defaults(capsys):
    code, out, _ = run(capsys, "demo", "--help")
    text = " ".join(out.split())
    assert code == 0 and text.startswith("usage: annfast demo")
    assert "Train a 4-16-1 tanh network by per-sample SGD on the bundled house prices" in text
    assert "the shuffling (default: 0)" in text          # --seed
    assert "(default: 40)" in text and "(default: 0.01)" in text


def test_damaged_model_file(tmp_path, capsys, diabetes_model):
    damaged = tmp_path / "damaged.annf"
    damaged.write_bytes(diabetes_model.read_bytes()[:-5])
    for argv in (["info", damaged], ["predict", damaged, DIABETES_TEST]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and "annfast: error: " in err and "truncated" in err and out == ""


@pytest.mark.parametrize("argv, message", [
    (["train"], "the following arguments are required: DATA"),
    (["train", "x.csv"], "the following arguments are required: --out"),
    (["train", "x.csv", "-o", "m", "--hidden", "8,x"], "argument --hidden: expected layer sizes >= 1"),
    (["train", "x.csv", "-o", "m", "--hidden", "0"], "argument --hidden: expected layer sizes >= 1"),
    (["train", "x.csv", "-o", "m", "--target", "0"], "argument --target: column positions count from 1"),
    (["train", "x.csv", "-o", "m", "--target", "5-3"], "argument --target: a range of columns runs from"),
    (["train", "x.csv", "-o", "m", "--target", "a,,b"], "argument --target: empty column in 'a,,b'"),
    (["train", "x.csv", "-o", "m", "--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["train", "x.csv", "-o", "m", "--lr", "0"], "argument --learning-rate/--lr: must be > 0.0, got 0"),
    (["train", "x.csv", "-o", "m", "--lr", "nan"], "argument --learning-rate/--lr: must be a finite number, got nan"),
    (["train", "x.csv", "-o", "m", "--momentum", "1"], "argument --momentum: must be < 1.0, got 1"),
    (["train", "x.csv", "-o", "m", "--epochs", "ten"], "argument --epochs: expected an integer, got 'ten'"),
    (["train", "x.csv", "-o", "m", "--activation", "softmax"], "argument --activation: invalid choice: 'softmax'"),
    (["train", "x.csv", "-o", "m", "--delimiter", "ab"], "argument --delimiter: expected one character"),
    (["train", "x.csv", "-o", "m", "--verbose", "3"], "argument --verbose/-v: invalid choice: 3"),
    (["predict", "m.annf"], "the following arguments are required: DATA"),
    (["frobnicate"], "argument COMMAND: invalid choice: 'frobnicate'"),
    (["info", "m", "--bogus"], "unrecognized arguments: --bogus"),
    # a tiny range that used to be expanded into a list of 10**11 columns: MemoryError and a traceback
    (["train", "x.csv", "-o", "m", "--target", "1-99999999999"], "argument --target: a range of columns spans"),
    # negative or zero epochs used to reach the demo and end in an UnboundLocalError traceback
    (["demo", "--epochs", "-5"], "argument --epochs: must be >= 1, got -5"),
    (["demo", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["demo", "--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["demo", "--learning-rate", "nan"], "argument --learning-rate: must be a finite number, got nan"),
])
def test_command_line_errors_exit_2_with_usage(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("usage: annfast") and message in err, err


def test_target_spec_parsing():
    assert cli._target_type("price") == ["price"]
    assert cli._target_type("3") == [2]
    assert cli._target_type("-1") == [-1]
    assert cli._target_type("2-4, x ,-2") == [1, 2, 3, "x", -2]
    assert cli._hidden_type("16, 8") == [16, 8] and cli._hidden_type("none") == [] and cli._hidden_type("") == []
    assert cli._batch_type("full") is None and cli._batch_type("32") == 32
    assert cli._delimiter_type("tab") == "\t" and cli._delimiter_type(";") == ";"


def test_unexpected_exceptions_are_not_hidden(monkeypatch, capsys, diabetes_model):
    def broken(args, out):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "_info", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["info", str(diabetes_model)])


def test_keyboard_interrupt_exits_130(monkeypatch, capsys, diabetes_model):
    def interrupted(args, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_info", interrupted)
    code, out, err = run(capsys, "info", diabetes_model)
    assert code == 130 and err == "annfast: interrupted\n"


# ---- real processes ------------------------------------------------------------------------------------

def _console_script():
    script = shutil.which("annfast", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the annfast console script is not installed next to this Python")
    return script


def test_console_script_train_predict_info(tmp_path):
    script = _console_script()
    proc = subprocess.run([script, "train", str(DIABETES_TRAIN), "--epochs", "20", "--seed", "0", "--out", "m.annf"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "saved m.annf" in proc.stdout and (tmp_path / "m.annf").exists()
    proc = subprocess.run([script, "predict", "m.annf", str(DIABETES_TEST), "--evaluate"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("output1,output2\n") and metric(proc.stderr, "accuracy") >= 0.7
    proc = subprocess.run([script, "info", "missing.annf"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == "annfast: error: missing.annf: No such file or directory\n"


def test_python_m_annfast_train(tmp_path):
    csv_path = tmp_path / "xor.csv"
    csv_path.write_text("a,b,xor\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "annfast", "train", "xor.csv", "--hidden", "4", "--epochs", "5",
                           "--seed", "0", "--out", "xor.annf"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "network: 2 inputs -> 4 tanh -> 1 sigmoid" in proc.stdout
    assert af.load(tmp_path / "xor.annf").n_inputs == 2
    proc = subprocess.run([sys.executable, "-m", "annfast", "train", "xor.csv", "--target", "nope", "--out", "x.annf"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("annfast: error: xor.csv: there is no column named 'nope'")


# ---- --standardize and values that overflow float32 (issue 18, item 3) ------------------------------

def test_standardize_tiny_column_is_a_clear_error_not_a_warning(tmp_path, capsys):
    """A column of 0 and 1e-40 has standard deviation 5e-41: 1/5e-41 is beyond float32 (it used to leak a
    RuntimeWarning from the cast in set_weights and save a model with inf weights)."""
    data = tmp_path / "tiny.csv"
    write_csv(data, ["x", "z", "y"], [[0.0 if k % 2 else 1e-40, k % 3, k % 2] for k in range(8)])
    code, out, err = run(capsys, "train", data, "--standardize", "--epochs", "1", "--out", tmp_path / "m.annf")
    assert code == 2
    assert "--standardize: the input column 'x' has a standard deviation of 5e-41" in err
    assert "use --dtype float64" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.annf").exists()
    # float64 weights hold 1/5e-41: the same data trains and saves
    code, out, err = run(capsys, "train", data, "--standardize", "--epochs", "1", "--dtype", "float64",
                         "--out", tmp_path / "m.annf", "--seed", "0")
    assert code == 0, err
    assert np.isfinite(af.load(tmp_path / "m.annf").parameters).all()


def test_standardize_fold_that_overflows_is_refused(tmp_path, capsys, monkeypatch):
    """A folded weight beyond float32 after training is refused by set_weights: exit 2, nothing saved."""
    data = tmp_path / "d.csv"
    write_csv(data, ["x", "y"], [[k * 1e-37, k % 2] for k in range(8)])    # std ~2.3e-37: 1/std fits float32
    real = af.Network.fit

    def fit_then_grow(self, *args, **kwargs):
        history = real(self, *args, **kwargs)
        self.set_parameters(np.full(self.n_params, 1e3))                   # x 1/std = 4e39: overflows
        return history

    monkeypatch.setattr(af.Network, "fit", fit_then_grow)
    code, out, err = run(capsys, "train", data, "--standardize", "--epochs", "1", "--out", tmp_path / "m.annf")
    assert code == 2
    assert "does not fit in float32" in err and "No model was saved" in err
    assert not (tmp_path / "m.annf").exists()


def test_standardize_column_too_large_for_float64(tmp_path, capsys):
    data = tmp_path / "d.csv"
    write_csv(data, ["x", "y"], [[1.7e308 * (-1) ** k, k % 2] for k in range(8)])
    code, out, err = run(capsys, "train", data, "--standardize", "--epochs", "1", "--out", tmp_path / "m.annf")
    assert code == 2 and "the input column 'x' holds values too large to standardize" in err


@pytest.mark.parametrize("pairs", [10 ** 8, 10 ** 9])
def test_tiny_fann_file_announcing_huge_counts_exits_2(tmp_path, capsys, pairs):
    data = tmp_path / "big.data"
    data.write_text(f"{pairs} 1 1\n0\n1\n")
    assert data.stat().st_size <= 19
    code, out, err = run(capsys, "train", data, "--out", tmp_path / "m.annf")
    assert code == 2
    assert err.startswith("annfast: error: ") and len(err.strip().splitlines()) == 1
    assert f"announces {pairs} pairs of 1 input and 1 output" in err
    assert os.listdir(tmp_path) == ["big.data"]


# ---- --out that is not a regular file (issue 18, item 15) ------------------------------------------

def _special_targets(tmp_path):
    out = []
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
        out.append((tmp_path / "fifo", "a FIFO (named pipe)"))
    if os.path.exists("/dev/null") and hasattr(os, "symlink"):
        os.symlink("/dev/null", tmp_path / "null-link")
        out.append((tmp_path / "null-link", "a character device (through a symbolic link)"))
    if not out:
        pytest.skip("no FIFOs or /dev/null here")
    return out


def test_train_refuses_an_out_that_is_a_fifo_or_a_device(tmp_path, capsys):
    """'annfast train ... --out /dev/null' as root replaced /dev/null with a model file."""
    for target, kind in _special_targets(tmp_path):
        before = sorted(os.listdir(tmp_path))
        code, out, err = run(capsys, "train", DIABETES_TRAIN, "--epochs", "1", "--out", target)
        assert code == 2, err
        assert out == ""                                    # refused before reading the data and training
        assert err.startswith(f"annfast: error: {target}: cannot save the model: the path is {kind}, not a regular")
        assert len(err.strip().splitlines()) == 1
        assert sorted(os.listdir(tmp_path)) == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) if os.path.exists("/dev/null") else True


def test_predict_refuses_an_out_that_is_a_fifo_or_a_device(tmp_path, capsys, diabetes_model):
    for target, kind in _special_targets(tmp_path):
        before = sorted(os.listdir(tmp_path))
        code, out, err = run(capsys, "predict", diabetes_model, DIABETES_TEST, "--out", target)
        assert code == 2, err
        assert f"cannot save the predictions: the path is {kind}" in err and len(err.strip().splitlines()) == 1
        assert sorted(os.listdir(tmp_path)) == before


def test_predict_out_is_written_atomically(tmp_path, capsys, diabetes_model, monkeypatch):
    """An interrupted or failed predict --out keeps the previous predictions file and leaves no litter."""
    out = tmp_path / "pred.csv"
    out.write_text("previous\n")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    code, _, err = run(capsys, "predict", diabetes_model, DIABETES_TEST, "--out", out)
    monkeypatch.undo()
    assert code == 2 and "No space left on device" in err
    assert out.read_text() == "previous\n" and os.listdir(tmp_path) == ["pred.csv"]
    code, _, err = run(capsys, "predict", diabetes_model, DIABETES_TEST, "--out", out)
    assert code == 0 and out.read_text().startswith("output1,output2\n")


@pytest.mark.skipif(not os.path.exists("/dev/stdin") or not sys.platform.startswith("linux"), reason="/dev/stdin")
def test_train_reads_a_piped_data_file_once(tmp_path):
    """'cat data.csv | annfast train /dev/stdin' lost its first 4 KiB: the format was detected by reading
    the start of the file separately, which consumes it from a pipe (found while testing issue 18)."""
    rng = np.random.default_rng(0)
    csv_path = write_csv(tmp_path / "d.csv", ["a", "b", "y"], rng.uniform(0, 1, size=(400, 3)))
    assert csv_path.stat().st_size > 3 * 4096
    proc = subprocess.run([sys.executable, "-m", "annfast", "train", "/dev/stdin", "--epochs", "1", "--out", "m.annf"],
                          input=csv_path.read_bytes(), capture_output=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"400 rows, 2 inputs, 1 target (y)" in proc.stdout


def test_train_prints_the_seed_and_it_repeats_the_run(tmp_path, capsys):
    code, out, err = run(capsys, "train", DATA / "xor.data", "--epochs", "2", "--out", tmp_path / "a.annf")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("seed: "))
    seed = int(line.split()[1])
    assert f"(drawn; --seed {seed} repeats this run)" in line
    code, out, err = run(capsys, "train", DATA / "xor.data", "--epochs", "2", "--seed", str(seed), "--out",
                         tmp_path / "b.annf")
    assert code == 0, err
    assert f"seed: {seed}\n" in out
    assert (tmp_path / "a.annf").read_bytes() == (tmp_path / "b.annf").read_bytes()


def test_out_of_memory_exits_2_with_one_line(monkeypatch, capsys):
    # a network larger than the memory the process may use (ulimit -v) raised MemoryError: a traceback
    def hungry(args, out):
        raise MemoryError("Unable to allocate 1.49 GiB for an array")

    monkeypatch.setattr(cli, "_train", hungry)
    code, out, err = run(capsys, "train", "x.csv", "--out", "m.annf")
    assert code == 2
    assert err.startswith("annfast: error: out of memory") and err.count("\n") == 1, err


def test_run_demo_refuses_zero_epochs():
    from annfast.demo import run_demo
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        run_demo(epochs=0, out=lambda line: None)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("command", [["info"], ["predict", "{data}"], ["export", "{tmp}/m.onnx"]])
def test_a_model_that_is_a_fifo_is_refused_without_blocking(tmp_path, command):
    # the FANN sniffing opened the MODEL argument with a plain open(): on a FIFO with no writer it blocked forever
    fifo = tmp_path / "model.annf"
    os.mkfifo(fifo)
    argv = [a.format(data=DIABETES_TEST, tmp=tmp_path) for a in command]
    argv.insert(1, str(fifo))
    proc = subprocess.run([sys.executable, "-m", "annfast", *argv], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)   # (not the source tree: its uncompiled annfast/ shadows the installed one)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("annfast: error:") and "not a regular file" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1


def test_standardize_scales_targets_by_the_estimators_rule():
    # targets constant up to rounding (std < 1e-12 * max(|mean|, 1)) are only centred, as ANNRegressor's y_scale_;
    # input columns are scaled by any standard deviation > 0
    from annfast import _validation, cli
    a = np.array([[1e6, 1e-40], [1e6 + 1e-9, 0.0]])
    _, scale = cli._scale(a[:, :1], ["y"], "float64", "target")
    assert scale.tolist() == [1.0] == _validation.target_scale([1e6], [5e-10]).tolist()
    _, scale = cli._scale(a[:, 1:], ["x"], "float64", "input")
    assert scale.tolist() == [5e-41]


def test_class_weight_balanced_favours_the_rare_class_and_needs_a_classifier(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    label = ((X[:, 0] + 0.5 * X[:, 1]) > 1.3).astype(int)        # about 10 % of the rows are class 1
    path = write_csv(tmp_path / "rare.csv", ["a", "b", "label"], np.column_stack([X, label]))
    args = ("train", path, "--labels", "--epochs", "3", "--seed", "1", "--dtype", "float64")
    code, out, err = run(capsys, *args, "--class-weight", "balanced", "--out", tmp_path / "w.annf")
    assert code == 0, err
    code, out, err = run(capsys, *args, "--out", tmp_path / "u.annf")
    assert code == 0, err
    weighted, unweighted = af.load(tmp_path / "w.annf"), af.load(tmp_path / "u.annf")
    # the same seed and settings: balanced weights predict the rare class more often
    assert (weighted.predict(X).argmax(1) == 1).sum() > (unweighted.predict(X).argmax(1) == 1).sum()
    code, out, err = run(capsys, "train", path, "--output-activation", "linear", "--class-weight", "balanced", "--out",
                         tmp_path / "r.annf")
    assert code == 2 and "--class-weight balanced needs a classifier output" in err, err
