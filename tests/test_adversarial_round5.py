"""Adversarial regression tests, round 5: the newest surfaces (Network.atomic, the read-only structure and checked
Dense, the in-place velocity reset, the CLI's up-front checks, the unified C update rule).

Each test is one problem: the input, and what must hold.
"""
import copy
import pickle
import sys
import threading

import numpy as np
import pytest

import annfast as af


def _net(dtype="float32", seed=1):
    return af.Network(4, [af.Dense(5, "tanh"), af.Dense(3, "softmax")], dtype=dtype, seed=seed)


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


class _Sized(af.Network):
    """A subclass with an __init__ of its own (other arguments than Network's), as users write them."""

    def __init__(self, hidden=6, seed=0):
        self.hidden = hidden
        super().__init__(4, [af.Dense(hidden, "relu"), af.Dense(1)], seed=seed)


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_subclass_with_own_init_copies_and_pickles(how):
    # was: TypeError "_Sized.__init__() got an unexpected keyword argument 'dtype'" (__setstate__ called the
    # subclass's __init__ with Network's arguments)
    net = _Sized(5)
    net.note = "mine"
    net.fit(np.ones((4, 4)), np.ones(4), epochs=1, learning_rate=0.01, momentum=0.5)
    out = {"pickle": lambda n: pickle.loads(pickle.dumps(n)), "deepcopy": copy.deepcopy, "copy": copy.copy}[how](net)
    assert type(out) is _Sized
    assert (out.hidden, out.note) == (5, "mine")
    assert out.layers == net.layers
    assert np.array_equal(out.parameters, net.parameters)
    assert np.array_equal(out.predict(np.ones((2, 4))), net.predict(np.ones((2, 4))))


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy, lambda d: pickle.loads(pickle.dumps(d))])
def test_copy_of_a_networks_dense_is_a_free_dense(how):
    # was: the copy kept the network's frozen flag, and setting its units said "the layers of a Network are
    # fixed" of a Dense in no network
    net = _net()
    layer = how(net.layers[0])
    layer.units = 7
    assert layer == af.Dense(7, "tanh")
    assert net.layers[0].units == 5
    assert af.Network(4, [layer, af.Dense(1)]).layers[0].units == 7


def test_keyboard_interrupt_while_atomic_begins_leaves_no_hold():
    # was: a KeyboardInterrupt landing between "_hold += 1" and the try (at "ok = rolled_back = False") left
    # _hold at 1 for ever: no later training call published, readers saw the old weights for good. The interrupt
    # is raised from a trace function at that statement (a signal's lands between statements like it).
    import inspect

    net = _net()
    X, y = _data()
    code = af.Network.atomic.__wrapped__.__code__
    lines, first = inspect.getsourcelines(code)
    target = first + next(i for i, text in enumerate(lines) if text.strip() == "ok = rolled_back = False")

    def local(frame, event, arg):
        if event == "line" and frame.f_lineno == target:
            raise KeyboardInterrupt
        return local

    sys.settrace(lambda frame, event, arg: local if frame.f_code is code else None)
    try:
        with net.atomic():
            pass
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(None)
    assert net._hold == 0
    before = net.predict(X).copy()
    net.fit(X, y, epochs=1, learning_rate=0.5)
    assert not np.array_equal(before, net.predict(X))   # published
    done = []
    t = threading.Thread(target=lambda: done.append(net.get_weights()), daemon=True)
    t.start()
    t.join(10)
    assert done, "the lock stayed held"


def test_the_list_of_network_attributes_that_pickling_rebuilds_is_complete():
    """network._OWN_ATTRS must name every attribute Network.__init__ sets (also after a fit with momentum and a
    published copy): one it missed would travel as a subclass's extra attribute (a lock cannot be pickled)."""
    import numpy as np

    import annfast as af
    from annfast import network

    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(1)], seed=0)
    assert set(net.__dict__) <= network._OWN_ATTRS, set(net.__dict__) - network._OWN_ATTRS
    X = np.random.default_rng(0).normal(size=(20, 3))
    net.fit(X, X[:, 0], epochs=2, momentum=0.5, verbose=0)
    net.predict(X)
    net.train_step(X[0], X[0, :1])
    assert set(net.__dict__) <= network._OWN_ATTRS, set(net.__dict__) - network._OWN_ATTRS
