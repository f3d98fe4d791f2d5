"""Adversarial checks of serving while training (README "Threads, and serving while training")."""
import threading

import numpy as np

import annfast as af


def test_a_reader_after_train_step_sees_it_while_another_reader_publishes():
    # train_step marks the weights stale; the next reader publishes them. A second reader arriving while the
    # first one copies found the lock taken and returned the state from before the step, although no training
    # ran: "a prediction after train_step returns sees its update" did not hold.
    net = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2)], dtype="float64", seed=0)
    x = np.array([0.1, 0.2, 0.3])
    net.train_step(x, [1.0, -1.0], learning_rate=0.5)
    twin = af.Network(3, [af.Dense(4, "tanh"), af.Dense(2)], dtype="float64", seed=0)
    twin.set_parameters(np.array(net.parameters))
    expected = twin.predict_one(x)

    inside, go = threading.Event(), threading.Event()
    publish = net._publish

    def slow_publish():   # the first reader's copy takes a while
        if threading.current_thread() is first:
            inside.set()
            go.wait(10)
        publish()
    net._publish = slow_publish
    first = threading.Thread(target=net.predict_one, args=(x,))
    first.start()
    assert inside.wait(10)
    got = []
    second = threading.Thread(target=lambda: got.append(net.predict_one(x)))
    second.start()
    second.join(0.5)   # the old code returned here at once, with the weights from before the step
    go.set()
    first.join(10)
    second.join(10)
    assert not first.is_alive() and not second.is_alive()
    np.testing.assert_array_equal(got[0], expected)
