"""Single-row calls (train_step, predict_one, predict of a few rows) take inputs and targets of any real dtype,
layout, Python numbers and lists, and give bitwise what the row converted by NumPy first gives; what they
reject, they reject with the same messages."""
import numpy as np
import pytest

import annfast as af

DTYPES = ["float32", "float64"]


def row_forms(row):
    """name -> the same row (of small integers, so every form holds it exactly) in one more form."""
    wide = np.zeros((2, 2 * row.size))
    wide[0, ::2] = row
    forms = {
        "float64": row.astype(np.float64),
        "float32": row.astype(np.float32),
        "int64": row.astype(np.int64),
        "int32": row.astype(np.int32),
        "int8": row.astype(np.int8),
        "strided": wide[0, ::2],
        "2-D (1, n)": row.reshape(1, -1).astype(np.float64),
        "Fortran (1, n)": np.asfortranarray(row.reshape(1, -1)),
        "list of floats": [float(v) for v in row],
        "list of ints": [int(v) for v in row],
        "tuple": tuple(float(v) for v in row),
        "list of NumPy scalars": [np.float32(v) for v in row],
        "reversed": row[::-1].astype(np.float64)[::-1],
        "unaligned": np.frombuffer(b"\0" + row.astype(np.float64).tobytes(), dtype=np.float64, offset=1),
    }
    if row.min() >= 0:
        forms["uint16"] = row.astype(np.uint16)
        forms["bool"] = row.astype(bool) if row.max() <= 1 else row.astype(np.uint64)
    return forms


def scalar_forms(value):
    return {"float": float(value), "int": int(value), "np.float32": np.float32(value),
            "np.float64": np.float64(value), "np.int64": np.int64(value), "0-d": np.array(value),
            "bool": bool(value), "list": [value]}


def nets(dtype, n_out=3, out="softmax"):
    make = lambda: af.Network(4, [af.Dense(5, "tanh"), af.Dense(n_out, out)], dtype=dtype, seed=3)  # noqa: E731
    return make(), make()


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_step_inputs_of_every_form_train_like_the_converted_row(dtype):
    x = np.array([1, -2, 3, 0])
    y = np.array([0, 1, 0])
    for name, form in row_forms(x).items():
        a, b = nets(dtype)
        for momentum in (0.0, 0.9):
            la = a.train_step(form, y, learning_rate=0.1, momentum=momentum)
            lb = b.train_step(x.astype(dtype), y.astype(dtype), learning_rate=0.1, momentum=momentum)
            assert la == lb, name
        assert a.parameters.tobytes() == b.parameters.tobytes(), name
    for name, form in row_forms(y).items():
        a, b = nets(dtype)
        assert a.train_step(x, form) == b.train_step(x.astype(dtype), y.astype(dtype)), name
        assert a.parameters.tobytes() == b.parameters.tobytes(), name


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_step_targets_as_numbers_and_class_labels(dtype):
    x = np.array([0.5, -1.0, 2.0, 0.25], dtype=dtype)
    for name, form in scalar_forms(1).items():
        a, b = nets(dtype, 1, "sigmoid")
        assert a.train_step(x, form) == b.train_step(x, np.ones(1, dtype=dtype)), name
        assert a.parameters.tobytes() == b.parameters.tobytes(), name
    for label in (2, np.int64(2), np.uint8(2), np.int32(2)):
        a, b = nets(dtype)
        assert a.train_step(x, label) == b.train_step(x, np.array([0, 0, 1], dtype=dtype))
        assert a.parameters.tobytes() == b.parameters.tobytes(), type(label)


@pytest.mark.parametrize("dtype", DTYPES)
def test_predictions_of_every_form_equal_those_of_the_converted_rows(dtype):
    net, _ = nets(dtype)
    x = np.array([1, -2, 3, 0])
    want = net.predict_one(x.astype(dtype))
    for name, form in row_forms(x).items():
        assert net.predict_one(form).tobytes() == want.tobytes(), name
    X = np.array([[1, -2, 3, 0], [0, 1, 1, 2], [4, 0, -1, 1]])
    want = net.predict(X.astype(dtype))
    for name, form in {"float64": X.astype(np.float64), "int64": X, "Fortran": np.asfortranarray(X),
                       "strided": np.repeat(X, 2, axis=1)[:, ::2], "list": X.tolist(),
                       "tuples": tuple(tuple(r) for r in X.tolist())}.items():
        assert net.predict(form).tobytes() == want.tobytes(), name
        assert net.predict(form[:1]).tobytes() == want[:1].tobytes(), name


def test_rejections_keep_their_messages():
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2, "linear")], seed=0)
    before = net.parameters.tobytes()
    with pytest.raises(ValueError, match=r"x holds a non-finite value \(nan\) at index 1"):
        net.train_step([1.0, float("nan"), 3.0], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"x holds a non-finite value \(inf\) at index 0"):
        net.train_step(np.array([np.inf, 0, 0]), [0.0, 0.0])
    with pytest.raises(ValueError, match=r"x holds 1e\+39 at index 2, which does not fit in float32"):
        net.train_step([0.0, 0.0, 1e39], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"y holds 1e\+39 at index 0, which does not fit in float32"):
        net.train_step(np.zeros(3), np.array([1e39, 0.0]))
    with pytest.raises(ValueError, match=r"class label 2 is not in \[0, 2\)"):
        net.train_step([0.0, 0.0, 0.0], np.int64(2))
    with pytest.raises(ValueError, match=r"class label -1 is not in \[0, 2\)"):
        net.train_step([0.0, 0.0, 0.0], -1)
    with pytest.raises(ValueError, match=r"y must hold one row of 2 values"):
        net.train_step([0.0, 0.0, 0.0], 0.5)
    with pytest.raises(ValueError, match=r"y must hold one row of 2 values"):
        net.train_step([0.0, 0.0, 0.0], True)
    with pytest.raises(TypeError, match="x must hold real numbers"):
        net.train_step(["a", "b", "c"], [0.0, 0.0])
    with pytest.raises(TypeError, match="x must hold real numbers"):
        net.train_step(np.array([1 + 1j, 0, 0]), [0.0, 0.0])
    with pytest.raises(ValueError, match=r"x holds 1e\+39 at index 1, which does not fit in float32"):
        net.predict_one([0, 1e39, 0])
    with pytest.raises(ValueError, match=r"X holds a non-finite value \(nan\) at row 0, column 2"):
        net.predict([[0, 1, float("nan")]])
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        net.predict([0.0, 1.0, 2.0])
    assert net.parameters.tobytes() == before


def test_large_integers_round_as_numpy_rounds_them():
    net32 = af.Network(2, [af.Dense(1, "linear")], seed=0)
    net32.set_parameters([1.0, 0.0, 0.0])
    for value in (2**24 + 1, 2**53 + 1, -(2**62) - 3, 2**63 + 5):
        arr = np.array([value, 0])
        want = net32.predict_one(arr.astype(np.float32))
        assert net32.predict_one(arr).tobytes() == want.tobytes(), value
        if value < 2**63:
            assert net32.predict_one([value, 0]).tobytes() == want.tobytes(), value
