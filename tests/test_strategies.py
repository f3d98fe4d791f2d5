"""Every speed strategy of the C kernels (csrc/strategy_*.inc) can be switched off (ANNFAST_DISABLE, af_net.disable)
and its plain fallback computes the same: for each strategy and each shape that uses it, training (and predict) with
it switched off gives the results with it on, bitwise where the strategy only reorders memory traffic, up to rounding
(rtol 1e-12, float64) where it reorders sums."""
import numpy as np
import pytest

import annfast as af
from annfast import _core
from annfast import _validation as v

TINY, SMALL, MEDIUM = (4, 8, 1), (64, 32, 10), (784, 128, 10)
SGD = {"plain": {}, "momentum": {"momentum": 0.6}, "nesterov_decay": {"momentum": 0.5, "nesterov": True,
                                                                        "weight_decay": 0.01},
       "decay": {"weight_decay": 0.01}}
WIDE = [k for k in ("avx2", "avx512") if _core.isa_supported(v.KERNELS[k])]

# (strategy, shapes, kernels, optimizer settings, call, strategies off in both runs, bitwise)
CASES = [
    ("fused_update", [TINY, SMALL, MEDIUM], ["base"], ["plain"], "fit", "", True),
    ("fused_update", [MEDIUM], WIDE, ["plain"], "fit", "pending", True),
    ("fused_update", [MEDIUM], ["base"], ["plain"], "split", "", True),
    ("transposed_first", [TINY, SMALL], WIDE, list(SGD), "fit", "", False),
    ("pending", [MEDIUM], WIDE, list(SGD), "fit", "", False),
    ("pending", [MEDIUM], WIDE, ["plain"], "split", "", False),
    ("blocked_rows", [TINY, SMALL, MEDIUM], ["base"] + WIDE, ["plain", "momentum"], "minibatch", "", True),
    ("blocked_rows", [TINY, SMALL, MEDIUM], ["base"] + WIDE, ["plain"], "predict", "", True),
]
PARAMS = [pytest.param(strategy, shape, kernel, sgd, call, also, bitwise,
                       id=f"{strategy}-{'-'.join(map(str, shape))}-{kernel}-{sgd}-{call}")
          for strategy, shapes, kernels, sgds, call, also, bitwise in CASES
          for shape in shapes for kernel in kernels for sgd in sgds]


def run(monkeypatch, shape, kernel, sgd, call, disable):
    monkeypatch.setenv("ANNFAST_KERNEL", kernel)
    monkeypatch.setenv("ANNFAST_DISABLE", disable)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((101, shape[0]))
    Y = 0.5 * np.tanh(X @ rng.standard_normal((shape[0], shape[-1])) / np.sqrt(shape[0]))
    layers = [af.Dense(n, activation="sigmoid") for n in shape[1:-1]] + [af.Dense(shape[-1], activation="linear")]
    net = af.Network(shape[0], layers, dtype="float64", seed=3)
    if call == "predict":
        return [net.predict(X)]
    options = dict(SGD[sgd], learning_rate=0.01, epochs=2, seed=0)
    if call == "minibatch":
        options["batch_size"] = 16 if shape == TINY else 64
    if call == "split":
        options["n_threads"] = 2
    net.fit(X, Y, **options)
    return [a for pair in net.get_weights() for a in pair]


@pytest.mark.parametrize("strategy, shape, kernel, sgd, call, also, bitwise", PARAMS)
def test_switched_off_computes_the_same(monkeypatch, strategy, shape, kernel, sgd, call, also, bitwise):
    on = run(monkeypatch, shape, kernel, sgd, call, also)
    off = run(monkeypatch, shape, kernel, sgd, call, ",".join(filter(None, [also, strategy])))
    for a, b in zip(on, off):
        if bitwise:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    if not bitwise and shape != TINY:   # the sums were reordered (tiny's 4 inputs: a scalar sum either way)
        assert any(not np.array_equal(a, b) for a, b in zip(on, off))


def test_unknown_name_lists_the_valid_ones(monkeypatch):
    monkeypatch.setenv("ANNFAST_DISABLE", "pending, nope")
    with pytest.raises(ValueError, match="nope.*fused_update.*pending.*transposed_first.*blocked_rows"):
        af.Network(4, [af.Dense(2)])


def test_names_come_from_the_c_enum(monkeypatch):
    assert set(v.STRATEGIES) == {"fused_update", "pending", "transposed_first", "blocked_rows"}
    monkeypatch.setenv("ANNFAST_DISABLE", " Pending ,transposed_first,")
    net = af.Network(4, [af.Dense(2)])
    net.fit(np.zeros((3, 4)), np.zeros((3, 2)))
    assert net._spec(net.loss).disable == v.STRATEGIES["pending"] | v.STRATEGIES["transposed_first"]
    with pytest.raises(ValueError):
        _core.Spec(4, [(2, 0, 0.0)], 0, 0, 1 << 10)   # a bit no strategy has: af_net_check refuses it


def test_float32_decay_below_its_smallest_subnormal_trains_as_plain_sgd(monkeypatch):
    # the weight decay rounds to 0 in float32 while the call still takes the momentum/decay path (sweep_general
    # without velocity, the case its decay-alone branch also covers)
    monkeypatch.delenv("ANNFAST_DISABLE", raising=False)
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((50, 6)), rng.standard_normal((50, 2))
    out = []
    for decay in (0.0, 1e-46):
        net = af.Network(6, [af.Dense(5, activation="tanh"), af.Dense(2)], dtype="float32", seed=0)
        net.fit(X, Y, epochs=2, learning_rate=0.05, weight_decay=decay, seed=0)
        out.append([a for pair in net.get_weights() for a in pair])
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
