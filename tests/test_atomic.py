"""Network.atomic(): the training calls of a ``with`` block are published together or rolled back bitwise.

Readers in other threads compare every prediction they make bitwise with the predictions of the states before and
after the block: one that equals neither saw an intermediate state. The blocks wait (on events, not on time) until a
reader has predicted between their steps, so the readers surely look while the intermediate states exist;
``test_without_atomic_a_reader_sees_the_state_between_two_fits`` shows that the same reader does see them then.
"""
import os
import threading

import numpy as np
import pytest

import annfast as af

PROBE_ROWS = 32


def _data(seed=0, n=512):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = rng.normal(size=(n, 2)).astype(np.float32)
    return X, y


def _net(seed=0):
    return af.Network(6, [af.Dense(16, "tanh"), af.Dense(2)], seed=seed)


def _state(net):
    """Everything a rollback must put back, copied: weights, velocity, random stream, history, loss."""
    return (net.parameters.copy(), net._engine.velocity.copy(), net._rng.bit_generator.state, net.history,
            net.loss, net.stop_training)


def _assert_state(net, state):
    params, velocity, rng, history, loss, stop = state
    np.testing.assert_array_equal(net.parameters, params)
    np.testing.assert_array_equal(net._engine.velocity, velocity)
    assert net._rng.bit_generator.state == rng
    assert net.history is history and net.loss == loss and net.stop_training == stop


class Reader:
    """A thread that predicts (predict, predict_one, evaluate in turn) until stopped, keeping every output.

    ``await_more(k)`` returns once it has made k more predictions: called by the block between its steps.
    """

    def __init__(self, net, X, y):
        self.net, self.X, self.y = net, X[:PROBE_ROWS], y[:PROBE_ROWS]
        self.seen = []          # (kind, output)
        self.errors = []
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            k = 0
            while not self.stop.is_set():
                kind = k % 3
                if kind == 0:
                    out = self.net.predict(self.X)
                elif kind == 1:
                    out = self.net.predict_one(self.X[0])
                else:
                    out = self.net.evaluate(self.X, self.y)
                with self.cond:
                    self.seen.append((kind, out))
                    self.cond.notify_all()
                k += 1
        except BaseException as exc:   # re-raised by the test
            self.errors.append(exc)

    def outputs(self, net):
        """What this reader's calls return for the network's current (published) state."""
        return (net.predict(self.X), net.predict_one(self.X[0]), net.evaluate(self.X, self.y))

    def await_more(self, k=3, timeout=30.0):
        with self.cond:
            target = len(self.seen) + k
            assert self.cond.wait_for(lambda: len(self.seen) >= target or self.errors, timeout=timeout)
        assert not self.errors

    def __enter__(self):
        self.thread.start()
        self.await_more()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.errors:
            raise self.errors[0]

    def assert_saw_only(self, *states):
        """Every output equals, bitwise, the output of one of ``states`` (tuples from ``outputs``)."""
        assert self.seen
        for kind, out in self.seen:
            assert any(np.array_equal(out, state[kind]) for state in states), f"a reader saw another state ({kind})"


def test_readers_see_the_state_before_an_atomic_block_until_it_ends_then_the_state_after_it():
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, seed=1)
    with Reader(net, X, y) as reader:
        before = reader.outputs(net)
        with net.atomic() as same:
            assert same is net
            for k in range(3):
                net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, seed=2 + k)
                reader.await_more()
                net.train_step(X[k], y[k], learning_rate=0.01)
                reader.await_more()
            net.set_weights(net.get_weights())
            net.set_parameters(net.parameters * 0.5)
            reader.await_more()
            during = len(reader.seen)
        after = reader.outputs(net)
        reader.await_more()
    assert not np.array_equal(before[0], after[0])
    kinds_before = [kind for kind, out in reader.seen[:during]]
    assert set(kinds_before) == {0, 1, 2}
    for kind, out in reader.seen[:during]:     # up to the block's end: all from before it
        assert np.array_equal(out, before[kind])
    reader.assert_saw_only(before, after)
    assert np.array_equal(reader.seen[-1][1], after[reader.seen[-1][0]])   # published at the exit


def test_without_atomic_a_reader_sees_the_state_between_two_fits():
    # the control of the test above: the same reader, the same fits, no block
    X, y = _data()
    net = _net()
    with Reader(net, X, y) as reader:
        before = reader.outputs(net)
        net.fit(X, y, epochs=1, learning_rate=0.01, seed=2)
        reader.await_more()
        net.fit(X, y, epochs=1, learning_rate=0.01, seed=3)
        after = reader.outputs(net)
        reader.await_more()
    with pytest.raises(AssertionError, match="a reader saw another state"):
        reader.assert_saw_only(before, after)


def _failing_block(net, X, y, exc, reader=None):
    with pytest.raises(type(exc)):
        with net.atomic():
            net.fit(X, y, epochs=2, learning_rate=0.01, momentum=0.9, seed=5)
            if reader:
                reader.await_more()
            net.train_step(X[0], y[0], learning_rate=0.01, momentum=0.9)
            net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, nesterov=True, loss="half_squared_error")
            if reader:
                reader.await_more()
            raise exc


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()], ids=["RuntimeError", "KeyboardInterrupt"])
def test_an_exception_in_the_block_rolls_everything_back_bitwise_and_readers_never_see_the_block(exc):
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, seed=1)   # a velocity that is not zero
    net.train_step(X[1], y[1], learning_rate=0.01, momentum=0.9)          # stale: published by the block's start
    assert np.any(net._engine.velocity != 0)
    state = _state(net)
    twin = _net()
    twin.restore(net.snapshot())
    with Reader(net, X, y) as reader:
        before = reader.outputs(net)
        _failing_block(net, X, y, exc, reader)
        reader.await_more()
    _assert_state(net, state)
    assert not net._dirty and net._hold == 0
    np.testing.assert_array_equal(net._published, state[0])
    reader.assert_saw_only(before)
    # and training goes on as if the block never ran: bitwise like a twin that did not run it
    net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9)
    twin.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9)
    np.testing.assert_array_equal(net.parameters, twin.parameters)
    np.testing.assert_array_equal(net._engine.velocity, twin._engine.velocity)


def test_a_keyboard_interrupt_in_the_middle_of_a_fit_in_the_block_rolls_back():
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, seed=1)
    state = _state(net)

    class Interrupt(af.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with net.atomic():
            net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9)
            net.fit(X, y, epochs=5, learning_rate=0.01, momentum=0.9, callbacks=[Interrupt()])
    _assert_state(net, state)
    net.fit(X, y, epochs=1, learning_rate=0.01)   # trains on afterwards


def test_a_divergence_in_the_block_rolls_back_to_the_blocks_start_not_to_the_bad_row():
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, seed=1)
    state = _state(net)
    with pytest.raises(af.DivergenceError):
        with net.atomic():
            net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9)
            net.fit(X * 1e6, y * 1e6, epochs=3, learning_rate=10.0, momentum=0.9)
    _assert_state(net, state)


def test_nested_blocks_join_the_outermost_an_inner_failure_puts_back_the_inner_start():
    X, y = _data()
    net = _net()
    with Reader(net, X, y) as reader:
        before = reader.outputs(net)
        with net.atomic():
            net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, seed=1)
            inner_start = _state(net)
            with pytest.raises(ValueError, match="inner"):
                with net.atomic():
                    net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, seed=2)
                    raise ValueError("inner")
            _assert_state(net, inner_start)     # back to the inner block's start, not the outer's
            with net.atomic():                  # an inner block that succeeds publishes nothing yet
                net.fit(X, y, epochs=1, learning_rate=0.01, seed=3)
            reader.await_more()
            assert net._hold == 1
            inside = net.parameters.copy()
            during = len(reader.seen)
        after = reader.outputs(net)
        reader.await_more()
    np.testing.assert_array_equal(net._published, inside)   # the outermost exit published it all
    assert all(np.array_equal(out, before[kind]) for kind, out in reader.seen[:during])
    reader.assert_saw_only(before, after)


def test_an_outer_failure_after_a_successful_inner_block_rolls_back_to_the_outer_start():
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=1, learning_rate=0.01, momentum=0.9, seed=1)
    state = _state(net)
    with pytest.raises(LookupError):
        with net.atomic():
            with net.atomic():
                net.fit(X, y, epochs=2, learning_rate=0.01, momentum=0.9, seed=2)
            net.train_step(X[0], y[0], learning_rate=0.01, momentum=0.9)
            raise LookupError
    _assert_state(net, state)
    np.testing.assert_array_equal(net._published, state[0])


@pytest.mark.parametrize("call", ["fit", "train_step", "set_parameters", "snapshot"])
def test_another_threads_training_call_waits_for_the_block(call):
    X, y = _data()
    net = _net()
    done = threading.Event()
    errors = []

    def other():
        try:
            if call == "fit":
                net.fit(X, y, epochs=1, learning_rate=0.01, shuffle=False)
            elif call == "train_step":
                net.train_step(X[0], y[0], learning_rate=0.01)
            elif call == "set_parameters":
                net.set_parameters(np.zeros(net.n_params))
            else:
                net.snapshot()
        except BaseException as exc:
            errors.append(exc)
        done.set()

    with net.atomic():
        net.fit(X, y, epochs=1, learning_rate=0.01, shuffle=False)
        t = threading.Thread(target=other, daemon=True)
        t.start()
        assert not done.wait(0.3)       # blocked on the network's lock
        net.fit(X, y, epochs=1, learning_rate=0.01, shuffle=False)
        in_block = net.parameters.copy()
    t.join(30)
    assert done.is_set() and not errors
    ref = _net()                        # the block, then the other call: in that order
    ref.fit(X, y, epochs=1, learning_rate=0.01, shuffle=False)
    ref.fit(X, y, epochs=1, learning_rate=0.01, shuffle=False)
    np.testing.assert_array_equal(ref.parameters, in_block)
    if call == "fit":
        ref.fit(X, y, epochs=1, learning_rate=0.01, shuffle=False)
    elif call == "train_step":
        ref.train_step(X[0], y[0], learning_rate=0.01)
    elif call == "set_parameters":
        ref.set_parameters(np.zeros(ref.n_params))
    np.testing.assert_array_equal(net.parameters, ref.parameters)


def test_the_blocks_own_thread_reads_its_changes_without_deadlock(tmp_path):
    X, y = _data()
    net = _net()
    before = net.predict(X[:4])
    results = {}

    def block():
        with net.atomic():
            net.fit(X, y, epochs=2, learning_rate=0.01, seed=1)
            results["predict"] = net.predict(X[:4])
            results["predict_one"] = net.predict_one(X[0])
            results["evaluate"] = net.evaluate(X, y, metrics=["rmse"])
            results["weights"] = net.get_weights()
            results["gradient"] = net.gradient(X, y)
            results["snapshot"] = net.snapshot()
            net.save(os.fspath(tmp_path / "inside.afn"))
            results["state"] = net.__getstate__()
            results["params"] = net.parameters.copy()
            results["other_thread"] = _in_thread(lambda: net.predict(X[:4]))   # published: before the block

    t = threading.Thread(target=block, daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "deadlock: a read inside the block waited for the block"
    assert "other_thread" in results
    after = net.predict(X[:4])
    assert not np.array_equal(before, after)
    np.testing.assert_array_equal(results["predict"], after)            # the block's own reads: its changes
    np.testing.assert_array_equal(results["predict_one"], after[0])
    np.testing.assert_array_equal(results["other_thread"], before)
    np.testing.assert_array_equal(results["snapshot"].params, results["params"])
    np.testing.assert_array_equal(af.load(tmp_path / "inside.afn").parameters, results["params"])
    np.testing.assert_array_equal(net.parameters, results["params"])


def _in_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(30)
    assert out, "a reader in another thread waited for the block"
    return out[0]


def test_a_block_with_no_change_publishes_the_same_weights_and_a_stale_train_step_before_it():
    X, y = _data()
    net = _net()
    net.train_step(X[0], y[0], learning_rate=0.01)   # left stale for the next reader
    live = net.parameters.copy()
    with net.atomic():
        np.testing.assert_array_equal(net._published, live)   # the block starts from the published state
    np.testing.assert_array_equal(net._published, live)
    assert not net._dirty
