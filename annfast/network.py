"""Network and Dense: defining multi-layer perceptrons and training them by per-sample SGD.

Thin on purpose: each public call checks its input once and makes one ``_core`` call per epoch (or per
prediction), which runs the per-row loop in C with the GIL released. All weights and biases live in
one flat buffer (see ``Network.parameters``); per-layer arrays are views into it.
"""
from __future__ import annotations

import collections.abc
import contextlib
import dataclasses
import math
import operator
import os
import sys
import threading
import weakref

import numpy as np

from . import _core, _io, _parallel, _stream
from . import _validation as v
from . import metrics as _metrics
from . import schedules as _schedules
from ._core import DivergenceError
from ._progress import Progress
from ._settings import SGD
from .callbacks import CallbackList
from .history import History

#: whether sys.getrefcount counts every reference to an array (CPython before 3.14, with the GIL): _publish
#: reuses a published copy only when it can tell that no reader holds it
_EXACT_REFCOUNTS = sys.version_info < (3, 14) and getattr(sys, "_is_gil_enabled", lambda: True)()

#: every live Network, so that a forked child can take back the locks of fits the fork cut off
_LIVE: weakref.WeakSet[Network] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for net in list(_LIVE):
        net._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

__all__ = ["Dense", "Network", "Snapshot", "load", "load_fann"]


class Dense:
    """A fully connected layer: ``a = f(W a_prev + b)``.

    Parameters
    ----------
    units : int
        Number of neurons (outputs) of the layer, >= 1.
    activation : str, default="linear"
        One of "step", "sigmoid", "tanh", "relu", "leaky_relu", "linear", "softmax" (softmax only in
        the output layer, with at least two units).
    negative_slope : float, default=0.01
        Slope for z < 0 of "leaky_relu" (ignored by the other activations), >= 0.

    Examples
    --------
    >>> import annfast as af
    >>> af.Dense(8, activation="relu")
    Dense(8, activation='relu')
    """

    def __init__(self, units: int, activation: str = "linear", negative_slope: float = 0.01):
        self.units = units
        self.activation = activation
        self.negative_slope = negative_slope

    def __setattr__(self, name: str, value) -> None:
        # checked on every assignment, not only in __init__: a Dense never holds a value a network cannot take
        if self.__dict__.get("_in_network"):
            raise AttributeError(f"the layers of a Network are fixed when it is built (it holds copies of the Dense "
                                 f"given); build a new Network to change {name}")
        if name == "units":
            value = v.check_int(value, "units", minimum=1, maximum=v.MAX_UNITS)
        elif name == "activation":
            value = v.check_name(value, v.ACTIVATIONS, "activation")
        elif name == "negative_slope":
            value = v.check_float(value, "negative_slope", low=0.0)
        object.__setattr__(self, name, value)

    def __reduce__(self):
        # a copy (copy, deepcopy, pickle) is a free Dense, also of one a Network holds: its values, not its lock
        return (Dense, (self.units, self.activation, self.negative_slope))

    def __repr__(self) -> str:
        extra = f", negative_slope={self.negative_slope}" if self.activation == "leaky_relu" else ""
        return f"Dense({self.units}, activation={self.activation!r}{extra})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Dense) and (self.units, self.activation, self.negative_slope) == (
            other.units, other.activation, other.negative_slope)

    def __hash__(self) -> int:
        return hash((self.units, self.activation, self.negative_slope))


# The attributes Network.__init__ sets (pickling rebuilds them; any other attribute is a subclass's or the caller's,
# and travels as it is)
_OWN_ATTRS = frozenset({
    "_n_inputs", "_dtype", "_layers", "_n_outputs", "_seed", "_rng", "_kernel", "_loss", "_specs", "_cur_spec",
    "_n_params", "_engine", "_params", "_views", "_grad", "_published", "_published_loss", "_spare", "_dirty",
    "_hold", "_scratch",
    "_last_step_settings", "_lock", "_only_reading", "_reader_publish", "_fitting", "_workers", "history",
    "stop_training", "learning_rate", "_verbose"})

# The kernel variants to prefer, best first, as measured by bench/ (2026-11, Xeon with AVX-512): 64-byte
# vectors win once most weights sit in rows that fill two of them (float32: small 64-32-10 +15-20 %, mini-batch
# on medium 784-128-10 +25 %; float64: small +20-30 %); on shorter rows they lose (tiny 4-8-1: -5 to -20 %), as
# most of the work there is scalar tails and lane sums.
_PREFERRED_WIDE = ("avx512", "avx2", "base")
_PREFERRED_NARROW = ("avx2", "base")


def _default_kernel(dtype: np.dtype, shapes: list[tuple[int, int]]) -> str:
    """Pick the kernel for a network of layer shapes (n_in, n_out) and this dtype (ANNFAST_KERNEL overrides it)."""
    name = os.environ.get("ANNFAST_KERNEL", "auto").strip().lower() or "auto"
    if name == "auto":
        wide_row = 2 * 64 // dtype.itemsize
        weights = sum(n_in * n_out for n_in, n_out in shapes)
        in_wide_rows = sum(n_in * n_out for n_in, n_out in shapes if n_in >= wide_row)
        order = _PREFERRED_WIDE if 2 * in_wide_rows >= weights else _PREFERRED_NARROW
        return next(k for k in order if _core.isa_supported(v.KERNELS[k]))
    v.check_name(name, v.KERNELS, "kernel (environment variable ANNFAST_KERNEL)")
    if not _core.isa_supported(v.KERNELS[name]):
        raise RuntimeError(f"ANNFAST_KERNEL={name!r} but this CPU cannot run that kernel")
    return name


def _disabled_strategies() -> int:
    """Return the ``af_strategy`` bits named by the environment variable ANNFAST_DISABLE.

    ANNFAST_DISABLE holds comma-separated names (e.g. ``transposed_first,pending``; see ``_validation.STRATEGIES``)
    of speed strategies the C kernels must not use, for measuring what each buys (bench/ablation.py). Results equal
    those with every strategy up to rounding.
    """
    bits = 0
    for name in os.environ.get("ANNFAST_DISABLE", "").split(","):
        name = name.strip().lower()
        if name:
            bits |= v.STRATEGIES[v.check_name(name, v.STRATEGIES, "strategy (environment variable ANNFAST_DISABLE)")]
    return bits


def _epoch_rate(value, epoch: int) -> float:
    """Check the learning rate an epoch is about to use (from a schedule or a callback): a finite number > 0."""
    try:
        return v.check_float(value, "learning_rate", low=0.0, low_open=True)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"epoch {epoch}: the learning rate from the schedule or a callback is not usable: {exc}; "
                        f"nothing of this epoch was trained") from None


def _class_table(class_weight, n_outputs: int, activation: str, data, dtype: np.dtype):
    """Return fit's class weights, checked: None, each class's weight, or "balanced".

    "balanced" is counted by fit over the training rows, once the validation rows are held out.
    """
    table = v.check_class_weight(class_weight, n_outputs, activation)
    if table is not None and not isinstance(table, str):
        # a weight too large for the network's dtype would become inf (refused here, before any chunk trains)
        v.cast_finite(table, dtype, "class_weight")
    if isinstance(table, str):
        if not isinstance(data, _stream.InMemory):
            raise ValueError("class_weight='balanced' counts the classes of all training rows and needs the data "
                             "in memory; for streamed data pass a dict {class: weight}")
    return table


def _checked_callbacks(callbacks, schedule) -> CallbackList:
    """Return fit's callbacks as a CallbackList; none may set the rate of later epochs when a schedule sets it."""
    callbacks = CallbackList(callbacks)
    if schedule is not None:
        for k, cb in enumerate(callbacks.callbacks):
            if getattr(cb, "_changes_rate_after_epoch", False):
                raise ValueError(f"callbacks[{k}] ({type(cb).__name__}) sets the learning rate of the epochs "
                                 f"that follow, but learning_rate is a schedule ({schedule!r}) that sets every "
                                 f"epoch's rate itself; use a number for learning_rate, or no such callback")
    return callbacks


def draw_seed(net: Network) -> int:
    """Return a seed drawn from ``net``'s own random stream.

    Shared with ``annfast.dask``, whose ``seed=None`` continues the network's stream as ``fit(seed=None)`` does.
    """
    return int(net._rng.integers(2**63))


def _init_limit(activation: str, n_in: int, n_out: int) -> float:
    """Half-width of the uniform initial weights: He for (leaky) ReLU, Glorot otherwise."""
    if activation in ("relu", "leaky_relu"):
        return math.sqrt(6.0 / n_in)
    return math.sqrt(6.0 / (n_in + n_out))


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What ``Network.snapshot`` copies and ``Network.restore`` puts back; treat it as opaque."""

    params: np.ndarray
    velocity: np.ndarray
    rng: dict
    history: History | None
    loss: str
    stop_training: bool
    layout: tuple | None = None   # (n_inputs, ((units, activation, negative_slope), ...)) of the network it is of


def _layout(net) -> tuple:
    return (net.n_inputs, tuple((layer.units, layer.activation, layer.negative_slope) for layer in net.layers))


@dataclasses.dataclass
class _FitPlan:
    """What one ``fit`` call trains, checked (``Network._plan_fit``): data, settings, mode and reporting."""

    data: object                # a _stream source: InMemory, MemoryMapped or ChunkStream
    val: tuple | None           # (X_val, Y_val, W_val or None)
    class_table: object         # per-class weights still to apply per streamed buffer, or None
    epochs: int
    initial_epoch: int
    schedule: object            # a LearningRateSchedule, or None for a constant rate
    sgd: SGD                    # batch_size resolved to the rows (the rate: the first epoch's, or a placeholder)
    shuffle: bool
    verbose: int
    callbacks: CallbackList
    metric_fns: list
    computed: list              # the metrics computed from predictions (all but accuracy)
    threads: int
    mode: str                   # _parallel.choose's
    sync_every: int | None
    rng: np.random.Generator
    spec: _core.Spec
    loss: str
    classifier: bool
    n_rows: int | None
    history: History | None = None


def _checked_layers(layers, dtype: np.dtype) -> tuple:
    """Return the layers of a new network as a tuple of Dense, checked.

    Softmax only as an output of 2 units or more, and every negative slope representable in the dtype.
    """
    layers = tuple(layers) if not isinstance(layers, Dense) else (layers,)
    if not layers:
        raise ValueError("a network needs at least one layer")
    for k, layer in enumerate(layers):
        if not isinstance(layer, Dense):
            raise TypeError(f"layers[{k}] must be a Dense, got {type(layer).__name__}")
        if layer.activation == "softmax" and k != len(layers) - 1:
            raise ValueError(f"layers[{k}]: softmax is only allowed in the output layer")
        if layer.negative_slope > float(np.finfo(dtype).max):
            raise ValueError(f"layers[{k}]: negative_slope {layer.negative_slope} does not fit in {dtype}")
    if layers[-1].activation == "softmax" and layers[-1].units < 2:
        raise ValueError("a softmax output layer needs at least 2 units")
    # the network's own copies, which refuse assignment: the caller's Dense, changed later, changed what the network
    # said it was and what save wrote (a model that loaded with other activations than it was trained with)
    copies = tuple(Dense(layer.units, layer.activation, layer.negative_slope) for layer in layers)
    for layer in copies:
        object.__setattr__(layer, "_in_network", True)
    return copies


def _metric_value(name: str, fn, Y: np.ndarray, P: np.ndarray) -> float:
    """Return metric ``fn``'s value on targets ``Y`` and predictions ``P`` as a float.

    ``fn`` gets read-only views: the targets are fit's own training (or validation) buffer, or the caller's array,
    and a metric writing into them changed what the following epochs trained on. A value that is not a number is
    a TypeError naming the metric.
    """
    Y, P = Y.view(), P.view()
    Y.flags.writeable = P.flags.writeable = False
    value = fn(Y, P)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {name!r} returned {v._shown(value)}, not a number") from None


def _fixed(name: str, doc: str) -> property:
    """Return a read-only attribute of Network (stored as ``_<name>``) whose assignment says why it is refused.

    Read through operator.attrgetter, a C callable (a Python getter costs 40-80 ns a read). Network's own code
    reads the private attributes directly: per-sample calls such as train_step read several each call.
    """
    def refuse(self, value) -> None:
        raise AttributeError(f"Network.{name} is fixed when the network is built; build a new Network for another "
                             f"{name}")

    return property(operator.attrgetter("_" + name), refuse, doc=doc)


class Network:
    """A multi-layer perceptron trained one sample (or one mini-batch) at a time.

    Parameters
    ----------
    n_inputs : int
        Number of input features, >= 1.
    layers : sequence of Dense
        The layers, first hidden layer to output layer.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and of all computation.
    seed : int or None, default=None
        Seed of the initial weights and of the shuffling; the same seed gives bitwise-identical
        training on the same machine. None draws fresh entropy.
    loss : {"half_squared_error", "cross_entropy"} or None, default=None
        Loss used by ``evaluate`` and by training calls that do not name one. None picks
        "cross_entropy" after a softmax output and "half_squared_error" otherwise.

    Attributes
    ----------
    n_inputs, n_outputs : int
        Widths of the input and of the output layer.
    layers : tuple of Dense
    dtype : numpy.dtype
    n_params : int
        Number of weights and biases. These five (and ``seed``) are read-only: build a new Network for another
        structure.
    loss : str
        Settable to a loss the output layer takes (checked when assigned).
    history : History or None
        The History of the latest ``fit`` call, filled epoch by epoch (kept when training is
        interrupted or diverges); a fit with ``initial_epoch > 0`` appends to it.
    learning_rate : float or None
        The learning rate of the epoch ``fit`` is training, or of the last one it trained (None before
        any fit). Callbacks may set it: in ``on_epoch_begin`` for that epoch, in ``on_epoch_end`` for the
        epochs that follow (with a constant ``learning_rate``; a schedule sets every epoch's rate).

    Notes
    -----
    Thread safety: training calls (fit, partial_fit, train_step, set_weights, set_parameters, restore) take the
    network's own (reentrant) lock for their duration, and the C work runs with the GIL released (except
    single-row calls on networks of under 4,096 parameters, which take less time than handing the GIL over). So
    calls on *different* networks run truly in parallel, and training calls on the *same* network from several
    threads are safe and serialized. Readers (``predict``, ``predict_one``, ``evaluate``) never wait for training:
    they use the last *published* copy of the weights, which training refreshes between chunks of rows and at
    the end of each call, so they see whole updates, never a half-updated weight matrix. To make several training
    calls one step for readers, run them in ``with net.atomic():`` (see ``atomic``): readers see the weights from
    before the block until it ends, then all of its changes at once; if it raises, it is rolled back.

    Examples
    --------
    >>> import numpy as np, annfast as af
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    >>> y = np.array([0, 1, 1, 0], dtype=np.float32)
    >>> net = af.Network(2, [af.Dense(4, "sigmoid"), af.Dense(1, "sigmoid")], seed=1)
    >>> hist = net.fit(X, y, epochs=2, learning_rate=0.5)
    >>> net.predict(X).shape
    (4, 1)
    """

    def __init__(self, n_inputs: int, layers, dtype="float32", seed: int | None = None,
                 loss: str | None = None):
        self._n_inputs = v.check_int(n_inputs, "n_inputs", minimum=1, maximum=v.MAX_UNITS)
        self._dtype = v.check_dtype(dtype)
        self._layers = layers = _checked_layers(layers, self._dtype)
        self._n_outputs = layers[-1].units
        if seed is not None:
            seed = v.check_int(seed, "seed", minimum=0)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        widths = [self._n_inputs] + [layer.units for layer in layers]
        v.check_network_size(widths, self._dtype)
        self._kernel = _default_kernel(self._dtype, list(zip(widths[:-1], widths[1:])))
        self._loss = self._check_loss(self._default_loss() if loss is None else loss)
        self._specs: dict[tuple[str, str], _core.Spec] = {}
        self._cur_spec = self._spec(self._loss)
        self._n_params = int(self._cur_spec.n_params)
        self._engine = _core.Engine(self._n_params, self._dtype == np.float32)
        self._params = self._engine.params
        self._views = []
        n_in = self._n_inputs
        for layer, (w_off, b_off) in zip(self._layers, self._cur_spec.offsets()):
            W = self._params[w_off:w_off + layer.units * n_in].reshape(layer.units, n_in)
            b = self._params[b_off:b_off + layer.units]
            self._views.append((W, b))
            n_in = layer.units
        self._grad = np.empty(0, dtype=self._dtype)
        self._init_shared_state()
        self.history: History | None = None
        self.stop_training = False
        self.learning_rate: float | None = None   # the rate of the epoch fit trains now (callbacks may change it)
        self._verbose = 0
        self._init_weights()
        self._publish()

    def _init_shared_state(self) -> None:
        """Set up what threads share: the published copy readers use, the lock of training calls, the workers."""
        # Readers never wait for training: they use the last published copy of the weights (see _publish)
        self._published = self._params.copy()
        # the loss readers' evaluate uses by default: published with the weights, so that a loss set inside an
        # atomic block is seen by other threads with the block's weights, or (rolled back) never
        self._published_loss = self._loss
        self._spare: np.ndarray | None = None   # the copy published before it, reused once no reader holds it
        self._dirty = False       # the weights changed since the last publish
        self._hold = 0            # > 0: a call whose changes no reader may see yet (publish at its end)
        self._scratch = threading.local()   # each reader thread's own workspace, kept between its calls
        # train_step's settings as last given and checked: a loop of train_step(x, y, 0.01) passes the same
        # objects every time, and checking them again cost more than a small network's step
        self._last_step_settings: tuple | None = None
        self._lock = threading.RLock()
        self._only_reading = 0   # > 0: the lock is held (outermost) by a call that does not change the weights
        # readers that publish stale weights take this first: a reader that finds another one publishing waits
        # for that copy (never for training) instead of returning the state from before it
        self._reader_publish = threading.Lock()
        _LIVE.add(self)   # (a child forked during one of its fits gets the lock back: _after_fork_in_child)
        self._fitting = False        # True while fit runs (the lock is reentrant: this refuses a nested fit)
        self._workers = _parallel.Workers(self)

    def _reset_after_fork(self) -> None:
        """Make the network usable in a forked child whose parent was training it in another thread.

        If the network's lock is held by a thread of the parent (which the child does not
        have: a fit or a training call was running in another thread at the fork), nothing would ever release
        it and every training call of the child would wait forever. Take a fresh lock and go back to the last
        published weights, the one state known whole (the live ones may be mid-row).
        """
        self._reader_publish = threading.Lock()   # the child has no other thread: nobody holds it there
        if self._lock.acquire(blocking=False):   # free, or held by this very thread (a fork from a callback)
            self._lock.release()
            return
        self._lock = threading.RLock()
        if self._only_reading:   # held by a call that reads the weights (a reader publishing, a save): whole
            self._only_reading = 0
            return
        self._fitting = False
        self._hold = 0
        np.copyto(self._params, self._published)
        if self._loss != self._published_loss:   # set inside an atomic block the parent was in
            self._loss = self._published_loss
            self._cur_spec = self._spec(self._loss)
        self._engine.reset_velocity()
        self._dirty = False

    # ---- publishing: what readers see ----------------------------------------------------------------

    def _publish(self) -> None:
        """Make the current weights what readers see (caller holds the lock, or owns the network alone).

        Read-copy-update: the weights are copied into a buffer no reader holds (the one published before the
        current one, when no reader still holds it, else a new one) and that buffer replaces the published one
        by one reference swap, atomic under the GIL. A reader takes the published buffer once per call and
        keeps it for the call, so it sees one whole state, and training never waits for readers. Memory: the
        weights, the published copy and the one before it, plus any older ones readers still hold.
        """
        if self._hold:
            self._dirty = True
            return
        spare, self._spare = self._spare, None
        # references to spare: this frame's, getrefcount's argument; more means a reader still holds it. (Only
        # where reference counts are exact: newer interpreters may leave borrowed references uncounted, and
        # there a new buffer is the safe choice.)
        if spare is None or not _EXACT_REFCOUNTS or sys.getrefcount(spare) > 2:
            spare = np.empty_like(self._params)
        np.copyto(spare, self._params)
        self._spare, self._published = self._published, spare
        self._published_loss = self._loss
        self._dirty = False

    def _readable(self) -> np.ndarray:
        """Return the weights for one reading call.

        The published ones, published anew first when they are stale and nobody trains; or, in a thread that
        holds the lock (a callback of its own fit), the live ones, which are whole there.
        """
        if self._lock._is_owned():
            return self._params
        if self._dirty and not self._hold:
            # Serialized among readers: one that finds another reader mid-publish waits for its copy (a copy,
            # never training, which holds only the network's lock) rather than return the stale state, which
            # would hide a train_step that returned before this call from it.
            with self._reader_publish:
                if self._dirty and not self._hold and self._lock.acquire(blocking=False):
                    self._only_reading += 1
                    try:
                        if self._dirty and not self._hold:
                            self._publish()
                    finally:
                        self._only_reading -= 1
                        self._lock.release()
        return self._published

    def _between_chunks(self, report):
        """Return train_rows' callback between chunks: publish the weights (whole there), then report progress."""
        def between(done: int) -> None:
            self._publish()
            if report is not None:
                report(done)
        return between

    def _work(self, spec: _core.Spec) -> np.ndarray:
        """Return this thread's scratch for reading calls of ``spec`` (allocated once per thread, grown as needed)."""
        w = getattr(self._scratch, "work", None)
        if w is None or w.shape[0] < spec.workspace_len:
            w = self._scratch.work = _core.aligned_empty(spec.workspace_len, self._dtype)
        return w

    @contextlib.contextmanager
    def _whole(self):
        """Hold the lock to read the weights whole, publishing first a change a train_step left stale.

        While this runs (a gradient over many rows, a save, get_weights), a reader cannot take the lock to
        publish that change itself, and would otherwise return the state from before the train_step.
        """
        outermost = not self._lock._is_owned()   # not inside this thread's own training call
        with self._lock:
            if self._dirty and not self._hold:
                self._publish()
            self._only_reading += outermost
            try:
                yield
            finally:
                self._only_reading -= outermost

    @contextlib.contextmanager
    def atomic(self):
        """Make the training calls of a ``with`` block one transaction: published together, or rolled back.

        Within ``with net.atomic():`` the calling thread may call anything on the network (fit, partial_fit,
        train_step, set_weights, set_parameters, restore, predict, ...; its own reading calls see its changes).
        The block holds the network's lock: training calls, ``snapshot``, ``get_weights``, ``gradient`` and the
        saves of other threads wait until it ends, while their ``predict``, ``predict_one`` and ``evaluate`` keep
        to the weights published before it. On a normal exit the weights are published at once. If the block
        raises (any exception, KeyboardInterrupt too), everything ``snapshot`` covers (weights, momentum
        velocity, random stream, history, loss, ``stop_training``) is put back as it was when the block began,
        nothing is published, and the exception propagates. A ``loss`` set in the block
        is published with its weights: other threads' ``evaluate`` keeps the loss from before the block until it
        ends. Not covered: ``learning_rate``, the ``kernel`` (set inside a block, it applies at once, also to
        readers) and what callbacks did outside the network.

        Nested blocks join the outermost one: an inner block that raises puts back the state from its own
        start and re-raises (an outer block that catches the exception goes on from there); only the
        outermost exit publishes. The block's start costs one ``snapshot`` (a copy of weights and velocity).

        Yields
        ------
        Network
            This network.

        Examples
        --------
        >>> with net.atomic():                       # doctest: +SKIP
        ...     net.fit(X1, y1, epochs=5)
        ...     net.fit(X2, y2, epochs=5)            # readers see both fits, or (on failure) neither
        """
        with self._lock:
            # (outermost: a change a train_step left stale is published first, so that the published weights
            # are those the block starts from, and a rollback returns to them bitwise)
            snap = self.snapshot()
            # the count is set back to what it was, not decremented: a KeyboardInterrupt that lands between the
            # increment and the try would otherwise leave it raised for ever (no publish, no reader update again)
            base = self._hold
            ok = rolled_back = False
            try:
                self._hold = base + 1
                yield self
                ok = True
            finally:
                try:
                    if not ok:
                        self.restore(snap)   # its publish is deferred by _hold, like every publish in the block
                        rolled_back = True
                finally:
                    self._hold = base
                if not self._hold:
                    if ok:
                        self._publish()
                    elif rolled_back:
                        self._dirty = False   # the weights are the published ones again: nothing to publish

    # ---- structure --------------------------------------------------------------------------

    def _default_loss(self) -> str:
        return "cross_entropy" if self._layers[-1].activation == "softmax" else "half_squared_error"

    def _check_loss(self, loss) -> str:
        return v.check_loss(loss, self._layers[-1].activation)

    def _spec(self, loss: str) -> _core.Spec:
        # keyed by the kernel too: a reader (evaluate) builds specs without the lock, and one it builds while the
        # kernel changes must not be kept as the new kernel's
        kernel = self._kernel
        spec = self._specs.get((loss, kernel))
        if spec is None:
            layers = [(layer.units, v.ACTIVATIONS[layer.activation], layer.negative_slope)
                      for layer in self._layers]
            spec = _core.Spec(self._n_inputs, layers, v.LOSSES[loss], v.KERNELS[kernel],
                              disable=_disabled_strategies())
            self._specs[(loss, kernel)] = spec
        return spec

    @property
    def kernel(self) -> str:
        """Name of the C kernel variant in use ("base", "avx2", "avx512" or "reference"); settable to any this CPU runs.

        The default is the fastest measured among those the CPU runs: AVX-512 when most weights sit in rows
        of at least 32 float32 or 16 float64 inputs, else AVX2; the environment variable ANNFAST_KERNEL
        overrides it. "reference" (never a default) is the plain scalar C statement of the algorithm
        (csrc/af_reference.inc) that the others are tested against: slow, and one thread for per-sample SGD.
        """
        return self._kernel

    @kernel.setter
    def kernel(self, name: str) -> None:
        v.check_name(name, v.KERNELS, "kernel")
        if not _core.isa_supported(v.KERNELS[name]):
            raise ValueError(f"this CPU cannot run the {name!r} kernel")
        with self._lock:
            self._kernel = name
            self._specs.clear()
            self._cur_spec = self._spec(self._loss)

    # Fixed when the network is built: the buffers, the views of get_weights and the C specs all describe this
    # structure, so assigning one would leave a network that is something else than it says (and can neither
    # train, evaluate nor save).
    n_inputs = _fixed("n_inputs", "Width of the input.")
    n_outputs = _fixed("n_outputs", "Width of the output layer.")
    layers = _fixed("layers", "The layers (a tuple of Dense).")
    dtype = _fixed("dtype", "The weights' dtype (numpy.dtype float32 or float64).")
    n_params = _fixed("n_params", "Number of weights and biases.")
    seed = _fixed("seed", "The seed the network was built with (None: fresh entropy).")

    def _set_loss(self, loss: str) -> None:
        loss = self._check_loss(loss)   # before anything changes: an unknown name, or one the output cannot train on
        with self._lock:
            self._loss = loss
            self._cur_spec = self._spec(loss)
            if self._hold:   # inside an atomic block: other threads see it when the block publishes
                self._dirty = True
            else:
                self._published_loss = loss

    loss = property(operator.attrgetter("_loss"), _set_loss,
                    doc="The loss of ``evaluate`` and of training calls that name none; settable to one the output "
                        "layer takes.")

    def _init_weights(self) -> None:
        """Small uniform random weights, never exactly 0, scaled per layer; biases 0.

        Drawn under round-to-nearest, whatever rounding mode the caller set (NumPy's scaling of the draws and
        the cast to float32 round by it): a seed gives the same weights everywhere.
        """
        before = _core._fp_control()
        nearest = before & ~_core._FP_ROUND_MASK   # (round-to-nearest is 0 on x86 and on ARM)
        if nearest != before:
            _core._fp_control(nearest)
        try:
            self._draw_weights()
        finally:
            if nearest != before:
                _core._fp_control(before)

    def _draw_weights(self) -> None:
        for layer, (W, b) in zip(self._layers, self._views):
            limit = _init_limit(layer.activation, W.shape[1], W.shape[0])
            w = self._rng.uniform(-limit, limit, size=W.shape).astype(self._dtype)
            zero = w == 0
            while zero.any():
                w[zero] = self._rng.uniform(-limit, limit, size=int(zero.sum()))
                zero = w == 0
            W[...] = w
            b[...] = 0

    def __repr__(self) -> str:
        layers = ", ".join(repr(layer) for layer in self._layers)
        return f"Network({self._n_inputs}, [{layers}], dtype={self._dtype.name!r})"

    def summary(self) -> str:
        """Describe the network as Keras's ``model.summary()`` does: layers, shapes, parameters; return the text.

        Returns
        -------
        str
            One line per layer (output shape, activation, parameter count), then the totals, the dtype
            and the loss. ``print(net.summary())`` shows it.
        """
        rows = [("layer", "output shape", "activation", "params")]
        n_in = self._n_inputs
        rows.append(("input", f"(None, {n_in})", "", "0"))
        for k, layer in enumerate(self._layers):
            act = layer.activation + (f"({layer.negative_slope:g})" if layer.activation == "leaky_relu" else "")
            rows.append((f"dense_{k} (Dense)", f"(None, {layer.units})", act, f"{layer.units * (n_in + 1):,}"))
            n_in = layer.units
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        line = "-" * (sum(widths) + 6)

        def fmt(r):
            return f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]:>{widths[3]}}"
        out = [f"Network: {self._n_inputs} inputs, {len(self._layers)} Dense layers", line, fmt(rows[0]), line]
        out += [fmt(r) for r in rows[1:]]
        out += [line, f"Total params: {self._n_params:,} (all trainable; "
                      f"{self._n_params * self._dtype.itemsize:,} bytes)",
                f"dtype: {self._dtype.name}", f"loss: {self._loss}", f"kernel: {self._kernel}"]
        return "\n".join(out)

    # ---- persistence ------------------------------------------------------------------------

    @classmethod
    def load(cls, path) -> Network:
        """Load a network saved by ``save``: the same as ``annfast.load(path)`` (Keras's habit of a class method).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        Network
        """
        return load(path)

    def save(self, path) -> None:
        """Save the network to a model file, atomically.

        The file holds the architecture, dtype, loss, seed, the settings of the latest ``fit`` and
        the flat parameters (see ``annfast._io``); ``annfast.load`` reads it back. The file is written
        under a temporary name and renamed over ``path``, so a save that is interrupted (also by
        Ctrl-C) never destroys an existing file there and leaves nothing behind (a symbolic link at
        ``path`` is replaced, not written through). The file ends with a CRC-32 of all its bytes.

        Parameters
        ----------
        path : str or os.PathLike

        Raises
        ------
        annfast.ModelFileError
            If the network's settings cannot be stored (they would not load back).
        OSError
            If the directory does not exist or cannot be written, or ``path`` exists and is not a
            regular file (a directory, a FIFO, a device such as /dev/null, or a link to one): such a
            path is refused rather than replaced.
        KeyboardInterrupt
            On Ctrl-C: ``path`` then holds the previous file, or the complete new one if the
            interrupt came after the rename.
        """
        with self._whole():
            _io.save(self, path)

    def to_onnx(self, path) -> None:
        """Export the network as an ONNX model file, atomically.

        The graph has one input "input" of shape (batch, n_inputs) and one output "output" of shape
        (batch, n_outputs), with a dynamic batch dimension, in the network's dtype; each layer is a ``Gemm``
        and its activation (see ``annfast._onnx``), so onnxruntime's outputs equal ``predict``'s up to
        rounding. The model's ``metadata_props`` hold ``annfast_version`` and ``annfast_network`` (JSON:
        n_inputs, layers, dtype, loss). Needs the optional ``onnx`` package (opset 17).

        Parameters
        ----------
        path : str or os.PathLike

        Raises
        ------
        ImportError
            If the onnx package is not installed (``pip install "annfast[onnx]"``).
        OSError
            If the directory does not exist or cannot be written; a file at ``path`` is then unchanged.

        Examples
        --------
        >>> net.to_onnx("model.onnx")  # doctest: +SKIP
        """
        from . import _onnx

        _onnx.export_network(self, path)

    def save_fann(self, path) -> None:
        """Save the network as a FANN network file (FANN_FLO_2.1, ``.net``) that FANN's ``fann_create_from_file`` reads.

        Layers map to FANN_SIGMOID with steepness 0.5 (FANN's sigmoid is 1 / (1 + exp(-2 s x))),
        FANN_SIGMOID_SYMMETRIC with steepness 1 (tanh), FANN_LINEAR with steepness 1 and FANN_THRESHOLD (step);
        the weights are written with every digit (a float64 round trip is exact). FANN clips each neuron's
        steepness-scaled sum to +-150/steepness, so a linear layer of FANN stops at +-150. Written atomically,
        like ``save``. See ``annfast._fann`` for the format.

        Parameters
        ----------
        path : str or os.PathLike

        Raises
        ------
        annfast.FannFileError
            If a layer is relu, leaky_relu or softmax, which FANN 2.2 does not have; nothing is written then.
        OSError
            If the directory does not exist or cannot be written; a file at ``path`` is then unchanged.
        """
        from . import _fann

        _fann.save(self, path)

    def __getstate__(self) -> dict:
        with self._whole():
            return {
                "n_inputs": self._n_inputs,
                "layers": [(layer.units, layer.activation, layer.negative_slope) for layer in self._layers],
                "dtype": self._dtype.name,
                "seed": self._seed,
                "loss": self._loss,
                "params": self._params.copy(),
                "velocity": self._engine.velocity.copy(),
                "rng": self._rng.bit_generator.state,
                "history": self.history,
                "kernel": self._kernel,
                # what a subclass or the caller added (a subclass's own settings): Network's state is rebuilt
                # above, these go back as they were
                **({"extra": extra} if (extra := {k: val for k, val in self.__dict__.items()
                                                  if k not in _OWN_ATTRS}) else {}),
            }

    def __setstate__(self, state: dict) -> None:
        layers = [Dense(units, act, slope) for units, act, slope in state["layers"]]
        # Network's own __init__: a subclass's may take other arguments (its extra attributes come back below)
        Network.__init__(self, state["n_inputs"], layers, dtype=state["dtype"], seed=state["seed"],
                         loss=state["loss"])
        self.set_parameters(state["params"])
        if state["velocity"].shape[0] == self._n_params:
            self._engine.ensure_velocity()[...] = state["velocity"]
        self._rng.bit_generator.state = state["rng"]
        self.history = state["history"]
        kernel = state.get("kernel")
        if kernel in v.KERNELS and _core.isa_supported(v.KERNELS[kernel]):   # else: this machine's default
            self.kernel = kernel
        self.__dict__.update(state.get("extra", {}))

    # ---- weights ----------------------------------------------------------------------------

    @property
    def parameters(self) -> np.ndarray:
        """The flat buffer of all weights and biases, as a read-only view (no copy).

        Layer k's W (units, n_in) row-major is followed by its b (units); layers follow in order.
        """
        view = self._params.view()
        view.flags.writeable = False
        return view

    def set_parameters(self, flat) -> None:
        """Copy a flat buffer (as returned by ``parameters``) into the network.

        Parameters
        ----------
        flat : array_like of shape (n_params,)
            Finite values, each finite in the network's dtype once converted to it.

        Raises
        ------
        ValueError
            If the shape is wrong, or a value is not finite or does not fit the network's dtype (such as
            1e39 for float32), naming its index and the layer weight it would set; the network is then
            unchanged.
        TypeError
            If the values are not real numbers.
        """
        arr = v.as_weights(flat, (self._n_params,), self._dtype, "flat parameters", self._locate_parameter)
        with self._lock:
            self._params[...] = arr
            self._forget_velocity()
            self._publish()

    def _locate_parameter(self, idx: tuple) -> str:
        """Name flat parameter idx[0]: "index 7 (layers[0] W[1, 2])"."""
        i = idx[0]
        for k, (W, b) in enumerate(self._views):
            if i < W.size:
                return f"index {idx[0]} (layers[{k}] W[{i // W.shape[1]}, {i % W.shape[1]}])"
            i -= W.size
            if i < b.size:
                return f"index {idx[0]} (layers[{k}] b[{i}])"
            i -= b.size
        return f"index {idx[0]}"  # pragma: no cover -- the shape was checked

    def get_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Return copies of the weights: a list of ``(W, b)`` pairs, one per layer, W of shape (units, n_in).

        Not Keras's flat list ``[W0, b0, W1, b1, ...]`` with kernels of shape (n_in, units): here W is
        PyTorch's and the C kernels' (n_out, n_in) layout, so ``W @ x + b`` is the layer's pre-activation.
        ``[W.T for W, b in net.get_weights()]`` gives Keras's and scikit-learn's (``coefs_``) orientation.
        """
        with self._whole():
            return [(W.copy(), b.copy()) for W, b in self._views]

    def set_weights(self, weights) -> None:
        """Set all weights from a list of ``(W, b)`` per layer, W of shape (units, n_in).

        Everything is checked before anything is written: on error the network is unchanged.
        Resets the momentum state.

        Raises
        ------
        ValueError
            If a shape is wrong, or a value is not finite or does not fit the network's dtype (such as
            1e39 for float32), naming the layer, W or b, and the position.
        TypeError
            If an item is not a pair or does not hold real numbers.
        """
        if isinstance(weights, (str, bytes, dict)) or not isinstance(weights, collections.abc.Iterable):
            raise TypeError(f"set_weights takes a list of (W, b) pairs, one per layer (as get_weights returns), got "
                            f"{type(weights).__name__}")
        weights = list(weights)
        if len(weights) != len(self._layers):
            raise ValueError(f"expected weights for {len(self._layers)} layers, got {len(weights)}")
        checked = []
        for k, (pair, (W, b)) in enumerate(zip(weights, self._views)):
            try:
                Wn, bn = pair
            except (TypeError, ValueError):
                raise TypeError(f"weights[{k}] must be a pair (W, b)") from None
            for name, new, old in ((f"weights[{k}] W", Wn, W), (f"weights[{k}] b", bn, b)):
                checked.append(v.as_weights(new, old.shape, self._dtype, name))
        with self._lock:
            for (W, b), Wn, bn in zip(self._views, checked[0::2], checked[1::2]):
                W[...] = Wn
                b[...] = bn
            self._forget_velocity()
            self._publish()

    def reset_optimizer_state(self) -> None:
        """Forget the momentum velocity (it otherwise carries over between training calls)."""
        with self._lock:
            self._forget_velocity()

    def _forget_velocity(self) -> None:
        """Drop the momentum velocity, or zero it in place while this network's fit runs.

        Called from one of the fit's callbacks (under its lock): the following epochs keep training with momentum
        on that buffer, which a dropped velocity left empty (ValueError "velocity has 0 values" in the next epoch).
        """
        velocity = self._engine.velocity
        if self._fitting and velocity.shape[0] == self._n_params:
            velocity[...] = 0
        else:
            self._engine.reset_velocity()

    # ---- training ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _fit_guard(self, threaded: bool):
        """Hold the lock for one fit; refuse a fit nested in it; reset the velocity after threaded divergence.

        The lock is reentrant, so a callback of this network's fit that calls fit again (on the same thread)
        would get it and start a second fit in the middle of the first one's epoch loop: refused with a
        RuntimeError before it changes anything. After a DivergenceError of threaded training (whose threads
        keep no copy of the velocity at the point the weights are restored to) the velocity is reset to zero;
        serial training restores it with the weights (see ``_core.train_rows``).
        """
        with self._lock:
            if self._fitting:
                raise RuntimeError("fit (or partial_fit) called on a network while its own fit runs (from a "
                                   "callback?); a callback must not train the network it watches: train a "
                                   "copy.deepcopy of it, or act after fit returns")
            self._fitting = True
            try:
                yield
            except DivergenceError:
                if threaded:
                    self._engine.reset_velocity()
                raise
            finally:
                self._fitting = False

    def snapshot(self) -> Snapshot:
        """Copy everything a training call may change, for ``restore`` to put back.

        The weights, the momentum velocity, the random stream, the history, the loss and ``stop_training``, taken whole
        (a change a ``train_step`` left unpublished first becomes visible). Architecture, dtype and kernel are not part
        of it: a snapshot goes back into the network it was taken from. Cheaper than ``copy.deepcopy`` or pickling (no
        new network, lock or threads) and, unlike ``get_weights``/``set_weights``, it keeps the velocity and the random
        stream, so that training resumed from a restored snapshot repeats training resumed at the snapshot bitwise.

        Returns
        -------
        Snapshot
            An opaque value; pass it to ``restore``.

        Examples
        --------
        >>> snap = net.snapshot()                      # doctest: +SKIP
        >>> try:
        ...     net.fit(X, y, learning_rate=10.0)      # doctest: +SKIP
        ... except af.DivergenceError:
        ...     net.restore(snap)                      # as if the fit never ran
        """
        with self._whole():
            return Snapshot(params=self._params.copy(), velocity=self._engine.velocity.copy(),
                            rng=self._rng.bit_generator.state, history=self.history, loss=self._loss,
                            stop_training=self.stop_training, layout=_layout(self))

    def restore(self, snap: Snapshot) -> None:
        """Put back a ``snapshot`` of this network, under its lock.

        Other threads see the state before or after, never between: everything is checked first; the weights are
        written in place (readers see them published at once) and the network's buffers, lock and threads are
        kept.

        Raises
        ------
        TypeError
            If ``snap`` is not a Snapshot.
        ValueError
            If it was taken from a network of another size or dtype.
        """
        if not isinstance(snap, Snapshot):
            raise TypeError(f"restore takes a Snapshot from Network.snapshot(), got {type(snap).__name__}")
        if not isinstance(snap.params, np.ndarray):
            raise TypeError(f"the snapshot's parameters must be an array, got {type(snap.params).__name__}")
        if snap.params.shape != self._params.shape or snap.params.dtype != self._dtype:
            raise ValueError(f"the snapshot is of a network of {snap.params.shape[0]} {snap.params.dtype} parameters, "
                             f"this one has {self._n_params} {self._dtype}")
        if snap.layout is not None and snap.layout != _layout(self):
            raise ValueError(f"the snapshot is of a network of another architecture (inputs and layers "
                             f"{snap.layout}), this one has {_layout(self)}: a snapshot goes back into the network "
                             f"it was taken from")
        # everything else checked before anything is written (a forged or damaged snapshot changes nothing)
        params = v.cast_finite(snap.params, self._dtype, "the snapshot's parameters")
        velocity = snap.velocity
        if not isinstance(velocity, np.ndarray) or velocity.ndim != 1:
            raise TypeError("the snapshot's velocity must be a 1-D array")
        if velocity.shape[0] == self._n_params:
            velocity = v.cast_finite(velocity, self._dtype, "the snapshot's velocity")
        loss = self._check_loss(snap.loss)
        if snap.history is not None and not isinstance(snap.history, History):
            raise TypeError(f"the snapshot's history must be a History or None, got {type(snap.history).__name__}")
        if not isinstance(snap.stop_training, (bool, np.bool_)):
            raise TypeError(f"the snapshot's stop_training must be True or False, got {snap.stop_training!r}")
        probe = type(self._rng.bit_generator)()
        try:
            probe.state = snap.rng
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"the snapshot's random stream state is not usable: {exc}") from None
        spec = self._spec(loss)   # of the kernel in use now
        with self._lock:
            self._params[...] = params
            if velocity.shape[0] == self._n_params:
                self._engine.ensure_velocity()[...] = velocity
            else:
                self._forget_velocity()
            self._rng.bit_generator.state = snap.rng
            self.history = snap.history
            self._loss = loss
            self._cur_spec = spec
            self.stop_training = bool(snap.stop_training)
            self._publish()

    def _buffers(self, sgd: SGD) -> None:
        if sgd.momentum > 0:
            self._engine.ensure_velocity()
        if sgd.batch_size > 1 and self._grad.shape[0] != self._n_params:
            self._grad = _core.aligned_empty(self._n_params, self._dtype)

    def fit(self, X, y, epochs: int = 1, learning_rate: float = 0.01, batch_size: int | None = 1,
            shuffle: bool = True, loss: str | None = None, momentum: float = 0.0,
            nesterov: bool = False, weight_decay: float = 0.0, seed: int | None = None,
            validation_data=None, validation_split: float = 0.0, callbacks=None, verbose: int = 0,
            n_threads: int = 1, sync_every: int | None = None, hogwild: bool = False,
            shuffle_buffer: int | None = None, initial_epoch: int = 0, metrics=None, sample_weight=None,
            class_weight=None) -> History:
        """Train by stochastic, mini-batch or full-batch gradient descent for some epochs.

        Parameters
        ----------
        X : array_like of shape (n_rows, n_inputs), np.memmap, or iterable of (X, y) chunks
            The inputs. A memory-mapped array (``np.load(path, mmap_mode="r")``, ``np.memmap``) is
            streamed block by block and never loaded whole; the blocks are copied from the array object
            itself, so training sees exactly what the array holds (also a copy-on-write map changed in
            memory), never the file as it may be now. With ``y=None``, X is an iterable of
            ``(X_chunk, y_chunk)`` pairs, streamed the same way (it must start over on each ``iter()`` to
            train several epochs: a one-shot iterator with ``epochs > 1`` is refused before training).
        y : array_like of shape (n_rows, n_outputs) or (n_rows,), or None
            1-D y is one column for a single output, or integer class labels for several outputs. May
            be memory-mapped too. None when X is an iterable of chunks.
        epochs : int, default=1
            Passes over the data, >= 0; with ``initial_epoch``, the number of the epoch to stop before (Keras).
        learning_rate : float, LearningRateSchedule or callable, default=0.01
            A number is a constant rate (``network.learning_rate``; callbacks such as ``ReduceLROnPlateau`` and
            ``LearningRateScheduler`` may change it between epochs). A schedule from ``annfast.schedules``
            (``InvScaling(0.01, power_t=0.5)``, ``Adaptive(0.01)``: scikit-learn's "invscaling" and "adaptive")
            or any callable ``epoch -> rate`` sets the rate of each epoch; epochs are numbered from 0 (from
            ``initial_epoch``). The rate changes only between epochs, so each epoch is exactly the epoch
            ``fit(epochs=1, learning_rate=rate)`` would train; ``history["lr"]`` records every epoch's rate.
        batch_size : int or None, default=1
            Rows per update: 1 is per-sample SGD, k is mini-batch (the update uses the mean gradient;
            the last batch may be shorter), None (or n_rows) is full-batch gradient descent.
        shuffle : bool, default=True
            Visit the rows in a fresh random order each epoch; False keeps the given order.
        loss : str or None, default=None
            "half_squared_error" or "cross_entropy"; None uses the network's ``loss``. Becomes the
            network's loss.
        momentum : float, default=0.0
            In [0, 1): v = momentum * v + g; w -= learning_rate * v. The velocity persists across
            calls until ``reset_optimizer_state`` or ``set_weights``.
        nesterov : bool, default=False
            Nesterov momentum: w -= learning_rate * (g + momentum * v).
        weight_decay : float, default=0.0
            L2 penalty: adds weight_decay * w to every parameter's gradient.
        seed : int or None, default=None
            Seed of this call's shuffling; None continues the network's own random stream.
        validation_data : tuple (X_val, y_val) or (X_val, y_val, sample_weight_val), or None, default=None
            Data to compute "val_loss" (and "val_accuracy") on after every epoch.
        validation_split : float, default=0.0
            In [0, 1): hold out this fraction of the rows (the last ones, before any shuffling) as
            validation data instead. Ignored when ``validation_data`` is given.
        callbacks : list of Callback or None, default=None
            Objects whose ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end`` and
            ``on_train_end`` are called; setting ``network.stop_training = True`` ends training after
            the current epoch (see ``annfast.callbacks``).
        verbose : {0, 1, 2}, default=0
            0 silent; 1 a live progress bar per epoch (tqdm when installed); 2 one line per epoch. Reports
            go to ``sys.stderr``; when it is None (no console), training is silently not reported.
        n_threads : int, default=1
            Threads to train with, 1 to 1024; -1 uses every core this process may use. 1 (the default) is
            the serial, bitwise-reproducible path. ``history.params["n_threads"]`` and
            ``["threading"]`` say how many threads ran, and how:

            - per-sample SGD (``batch_size=1``), "split": the threads train the rows one at a time, in the
              same order as one thread, each owning a slice of the first hidden layer's units (its weights,
              their velocity and all the work on them) and meeting once per row; every thread computes the
              layers past the first on its own bitwise-equal copy. The result is serial SGD's up to
              rounding, at every thread count. It uses no more threads than cores, and only as many as
              have work enough to pay for a barrier per row: each thread gets at least 4 units and 16,384
              multiply-adds of the first hidden layer, and at least half the work of the later layers
              (784-256-10: up to 12 threads; a 64-32-10 network or one without a hidden layer: one).
            - mini-batches of at least 256 rows per thread, "batch": each batch's gradient is summed by
              the threads and applied once (serial mini-batch SGD up to rounding). Smaller batches train on
              fewer threads (at least 256 rows each), or on one.
            - ``hogwild=True`` or ``sync_every``: the asynchronous modes below, opt-in.

            The network keeps its threads and their buffers from one fit to the next; they go with the
            network.
        sync_every : int or None, default=None
            Opt-in "merged" mode: each thread trains a private copy of the weights on its own rows and adds
            its change to the shared weights every ``sync_every`` rows. The changes of rows trained at once
            add up like one step of that many rows at stale weights, so ``n_threads * sync_every`` must be
            at most 64 (unless one block holds every row): 16 threads x 16 rows kept MNIST within 0.4
            points of one thread but left Fashion-MNIST at 32-47 % (one thread: 86 %); 16 x 128 collapsed
            MNIST to 11 %. Even within the limit, convergence depends on the learning rate: the default
            mode is the one that trains like one thread. Mini-batches then train whole batches per thread.
        hogwild : bool, default=False
            Per-sample SGD with ``n_threads > 1``: update the one shared buffer row by row, without
            copies (Hogwild! as published). For dense networks the cores then contend for every cache
            line; bench/ measures it. One exception: a first layer of at most 2048 weights (rows padded
            to 16) is trained on a private transposed copy for each of a thread's blocks and merged into the
            shared weights at the block's end (the other threads' changes kept, as in the default mode).
        shuffle_buffer : int or None, default=None
            For streamed data (memory-mapped arrays, chunk iterables): rows per buffer. Each epoch visits
            the buffers (blocks of the file, in a fresh random order; or gathered chunks, in their order)
            and shuffles rows only within a buffer, so memory stays at a few buffers. None: about 64 MB
            of inputs. In-memory arrays are always shuffled whole.
        initial_epoch : int, default=0
            Continue an earlier fit, as Keras does: train epochs ``initial_epoch`` to ``epochs - 1`` and append
            them to the network's ``history`` (which then holds every epoch of both calls; 0 starts a new
            history). Schedules see the global epoch numbers, and rows trained before are counted as
            ``initial_epoch * n_rows``; an ``Adaptive`` schedule keeps its state. So
            ``for e in range(10): net.fit(X, y, epochs=e + 1, initial_epoch=e, ...)`` builds one history of
            10 epochs.
        metrics : list of str or callable, or None, default=None
            Further metrics to report after every epoch (see ``annfast.metrics``): "accuracy" (classifier
            outputs), "rmse", "mae", "r2", or functions ``metric(Y, P) -> float`` named by their ``__name__``;
            with validation data also their "val_" versions. They are computed from ``predict`` over all
            training rows after the epoch (one more pass; in-memory data only), whereas "loss" and
            "accuracy" are running values of the epoch (each row before its update). Callbacks can monitor
            them.
        sample_weight : array_like of shape (n_rows,) or None, default=None
            A weight >= 0 per row (Keras and scikit-learn): the row's loss, as trained on and as reported, is its
            weight times its loss, so its gradient and its update are scaled by the weight, inside the C loop. A
            weight of 2 acts to first order like the row seen twice (exactly so for the summed gradient, see
            ``gradient``); 0 leaves the row out of the gradient, though with momentum or weight decay its step
            still moves the weights as a step with a zero gradient does. A mini-batch's update is the mean over
            its rows (divided by the rows, not by their weights), and ``history["loss"]`` is the mean over the
            epoch's rows of their weighted losses; ``"accuracy"`` counts every row once. May be memory-mapped with a
            memory-mapped X; for chunks, pass ``(X, y, sample_weight)`` triples instead.
        class_weight : dict, "balanced" or None, default=None
            For classifier outputs (softmax, sigmoid, step): a weight per class, multiplied into each row's
            sample weight (classes not named weigh 1). A row's class is its largest target (several outputs) or
            whether its target is >= 0.5 (one output). "balanced": scikit-learn's
            ``n_rows / (n_classes * rows of the class)`` over the training rows (in-memory data only).
            Validation data are weighed only by weights given in ``validation_data``.

        Returns
        -------
        History
            ``history["loss"]``: the mean loss of each epoch's rows (each taken before that row's
            update); "accuracy" for softmax, sigmoid and step outputs; the ``metrics``; "val_loss",
            "val_accuracy" and the val_ metrics with validation data; "lr", the learning rate of the epoch.

        Notes
        -----
        There is no TerminateOnNaN callback to add: a non-finite loss or weight raises ``DivergenceError``
        at once, in the row where it happens, with the weights from before that row.

        Raises
        ------
        ValueError, TypeError
            For bad data or settings, raised before anything changes: shapes, dtypes, non-finite values,
            targets that do not fit the loss (cross_entropy: in [0, 1], rows summing to 1 after a
            softmax), callbacks that are not callbacks or watch a metric training will not report.
        RuntimeError
            If called from a callback of this network's own running fit.
        ValueError
            Also when an epoch's learning rate from a schedule or a callback is not a finite number > 0,
            before that epoch trains (earlier epochs stay trained and recorded).
        DivergenceError
            If the loss or the weights become non-finite; the weights are then those before the bad
            row when finite, else those at the start of the epoch. With one thread the momentum
            velocity goes back to the same point as the weights; with ``n_threads > 1`` it is reset to
            zero (the threads keep no copy of it at that point).
        """
        plan = self._plan_fit(X, y, epochs, learning_rate, batch_size, shuffle, loss, momentum, nesterov, weight_decay,
                              seed, validation_data, validation_split, callbacks, verbose, n_threads, sync_every,
                              hogwild, shuffle_buffer, initial_epoch, metrics, sample_weight, class_weight)
        progress = Progress(plan.verbose, plan.epochs, plan.n_rows) if plan.verbose else None
        with self._fit_guard(plan.threads > 1):
            self.history = plan.history          # readable even if an epoch is interrupted
            self._loss = plan.loss
            self._cur_spec = plan.spec
            self.stop_training = False
            self._buffers(plan.sgd)
            if plan.schedule is None:
                self.learning_rate = plan.sgd.learning_rate
            elif plan.initial_epoch == 0:
                plan.schedule.reset()
            self._verbose = plan.verbose      # for callbacks that report (EarlyStopping restoring weights)
            plan.callbacks.set_network(self)
            plan.callbacks.on_train_begin({})
            runner = _parallel.EpochRunner(plan.mode, plan.threads, plan.spec, self._engine, self._grad,
                                           self._workers, plan.sgd, plan.sync_every)
            try:
                logs = self._epoch_loop(plan, runner, progress)
            except BaseException:
                runner.abandon()   # let no worker outlive a failed fit (a second Ctrl-C, say)
                raise
            finally:
                self._publish()   # the weights as they stand: whole, and finite (restored on failure)
                if progress:
                    progress.close()
            plan.callbacks.on_train_end(logs)
        return plan.history

    def _epoch_loop(self, plan: _FitPlan, runner: _parallel.EpochRunner, progress) -> dict:
        """Train epochs ``plan.initial_epoch`` to ``plan.epochs - 1`` (fit holds the lock); return the last logs."""
        logs: dict = {}
        schedule, data = plan.schedule, plan.data
        seen = plan.initial_epoch * plan.n_rows if plan.n_rows is not None else 0    # rows trained before
        for epoch in range(plan.initial_epoch, plan.epochs):
            if schedule is not None:
                self.learning_rate = schedule.rate(epoch, seen)
            plan.callbacks.on_epoch_begin(epoch, logs)
            sgd = plan.sgd.at_rate(_epoch_rate(self.learning_rate, epoch))
            if progress:
                progress.epoch_begin(epoch)
            total, correct, rows = 0.0, 0, 0
            for Xb, Yb, Wb in data.buffers(plan.rng if plan.shuffle else None):
                nb = Xb.shape[0]
                Wb = v.weigh_rows(plan.class_table, Yb, Wb, self._dtype)   # streamed data: per buffer
                order = plan.rng.permutation(nb) if plan.shuffle else np.arange(nb, dtype=np.int64)
                between = self._between_chunks(progress.offset(rows) if progress else None)
                t, c = runner.run_buffer(Xb, Yb, order, sgd, epoch, Wb, between)
                self._publish()
                total, correct, rows = total + t, correct + c, rows + nb
            seen += rows
            logs = self._epoch_logs(plan, total, correct, rows)
            logs["lr"] = sgd.learning_rate
            plan.history.record(epoch, **logs)
            if schedule is not None:
                schedule.update(epoch, logs)
            if progress:
                progress.epoch_end(logs, rows)
            plan.callbacks.on_epoch_end(epoch, logs)
            if self.stop_training:
                break
        return logs

    def _epoch_logs(self, plan: _FitPlan, total: float, correct: int, rows: int) -> dict:
        """One epoch's logs: the running loss (and accuracy), the computed metrics, the validation ones."""
        logs = _parallel.epoch_logs(total, correct, rows, plan.classifier)
        data, val, computed = plan.data, plan.val, plan.computed
        if computed:
            P = self.predict(data.X)
            logs.update((name, _metric_value(name, fn, data.Y, P)) for name, fn in computed)
        if val is not None:
            vloss, vcorrect = _core.loss_rows(plan.spec, self._params, val[0], val[1], None, val[2])
            logs.update(("val_" + k, x) for k, x in _parallel.epoch_logs(vloss, vcorrect, val[0].shape[0],
                                                                          plan.classifier).items())
            if computed:
                P = self.predict(val[0])
                logs.update(("val_" + name, _metric_value(name, fn, val[1], P)) for name, fn in computed)
        return logs

    def _plan_fit(self, X, y, epochs, learning_rate, batch_size, shuffle, loss, momentum, nesterov, weight_decay,
                  seed, validation_data, validation_split, callbacks, verbose, n_threads, sync_every, hogwild,
                  shuffle_buffer, initial_epoch, metrics, sample_weight, class_weight) -> _FitPlan:
        """Check every argument of ``fit`` (before anything changes) and return what the epochs need.

        Long because fit has many arguments, each checked in turn; the order of the checks is the order of
        fit's errors.
        """
        if shuffle_buffer is not None:
            shuffle_buffer = v.check_int(shuffle_buffer, "shuffle_buffer", minimum=1)
        loss = self._loss if loss is None else self._check_loss(loss)
        out_act = self._layers[-1].activation
        data = _stream.source(X, y, self._n_inputs, self._n_outputs, self._dtype, shuffle_buffer, loss, out_act,
                              sample_weight)
        class_table = _class_table(class_weight, self._n_outputs, out_act, data, self._dtype)
        # the C loop numbers epochs with int64 (an epoch count beyond it overflowed there, with training started)
        epochs = v.check_int(epochs, "epochs", minimum=0, maximum=v.MAX_EPOCHS)
        initial_epoch = v.check_int(initial_epoch, "initial_epoch", minimum=0, maximum=v.MAX_EPOCHS)
        if epochs < initial_epoch:
            raise ValueError(f"epochs={epochs} is less than initial_epoch={initial_epoch}: as in Keras, epochs is "
                             f"the number of the last epoch (training runs epochs initial_epoch to epochs - 1)")
        if isinstance(data, _stream.ChunkStream):
            data.check_epochs(epochs - initial_epoch)
        schedule = _schedules.as_schedule(learning_rate)
        sgd = SGD(learning_rate if schedule is None else 1.0, momentum, weight_decay, nesterov, batch_size)
        v.check_sgd_in(self._dtype, sgd.learning_rate if schedule is None else None, sgd.momentum, sgd.weight_decay)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        if isinstance(verbose, bool) or verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        data, val = self._validation_rows(data, validation_data, validation_split, loss)
        if isinstance(class_table, str):   # "balanced", over the training rows: validation_split's held out
            class_table = v.balanced_class_weight(v.row_classes(data.Y), max(2, self._n_outputs))
        if class_table is not None and isinstance(data, _stream.InMemory):   # once, not every epoch
            data = _stream.InMemory(data.X, data.Y, v.weigh_rows(class_table, data.Y, data.W, self._dtype))
            class_table = None
        if sgd.batch_size is None and not isinstance(data, _stream.InMemory):
            raise ValueError("full-batch gradient descent (batch_size=None) needs the data in memory")
        callbacks = _checked_callbacks(callbacks, schedule)
        metric_fns = _metrics.resolve(metrics, out_act)
        computed = [(name, fn) for name, fn in metric_fns if name != "accuracy"]   # accuracy comes from C
        if computed and not isinstance(data, _stream.InMemory):
            raise ValueError("metrics other than accuracy are computed from predictions of the whole training data "
                             "after each epoch and need it in memory; for streamed data pass validation_data and "
                             "read the val_ metrics, or call evaluate(..., metrics=...) after fit")
        threads = _parallel.resolve_threads(n_threads)
        if sync_every is not None:
            sync_every = v.check_int(sync_every, "sync_every", minimum=1, maximum=256)
        if not isinstance(hogwild, (bool, np.bool_)):
            raise TypeError(f"hogwild must be True or False, got {hogwild!r}")
        n = data.n_rows
        sgd = sgd.for_rows(n)
        rng = self._rng if seed is None else np.random.default_rng(v.check_int(seed, "seed", minimum=0))
        spec = self._spec(loss)
        mode, threads = _parallel.choose(spec, threads, sgd.batch_size, bool(hogwild), sync_every, n)
        plan = _FitPlan(data=data, val=val, class_table=class_table, epochs=epochs, initial_epoch=initial_epoch,
                        schedule=schedule, sgd=sgd, shuffle=bool(shuffle), verbose=verbose, callbacks=callbacks,
                        metric_fns=metric_fns, computed=computed, threads=threads, mode=mode, sync_every=sync_every,
                        rng=rng, spec=spec, loss=loss, classifier=out_act in v.CLASSIFIER_OUTPUTS, n_rows=n)
        plan.history = self._fit_history(plan, weighted=sample_weight is not None or class_weight is not None)
        self._check_monitored(plan)
        return plan

    def _validation_rows(self, data, validation_data, validation_split, loss):
        """Return (training data, validation (X, Y, W) or None) from fit's validation arguments."""
        split = v.check_float(validation_split, "validation_split", 0.0, 1.0, high_open=True)
        if validation_data is not None:
            try:
                Xv, yv, *wv = validation_data
                if len(wv) > 1:
                    raise ValueError
            except (TypeError, ValueError):
                raise TypeError("validation_data must be a pair (X_val, y_val) or a triple (X_val, y_val, "
                                "sample_weight_val)") from None
            Xv = v.as_inputs(Xv, self._n_inputs, self._dtype, "X_val")
            return data, (Xv, v.as_targets(yv, Xv.shape[0], self._n_outputs, self._dtype, "y_val", loss=loss,
                                           activation=self._layers[-1].activation),
                          v.as_sample_weight(wv[0], Xv.shape[0], self._dtype, "sample_weight_val") if wv else None)
        if split == 0:
            return data, None
        if not isinstance(data, _stream.InMemory):
            raise ValueError("validation_split needs the data in memory; for streamed data pass "
                             "validation_data=(X_val, y_val)")
        n_val = int(round(split * data.n_rows))
        if not 1 <= n_val < data.n_rows:
            raise ValueError(f"validation_split={split} leaves no training or no validation rows "
                             f"out of {data.n_rows}")
        W = data.W
        val = (data.X[-n_val:], data.Y[-n_val:], None if W is None else W[-n_val:])
        return _stream.InMemory(data.X[:-n_val], data.Y[:-n_val], None if W is None else W[:-n_val]), val

    def _fit_history(self, plan: _FitPlan, weighted: bool) -> History:
        """Return the History a fit records into: new, or (``initial_epoch > 0``) a copy of the network's, continued."""
        schedule, sgd = plan.schedule, plan.sgd
        params = dict(epochs=plan.epochs,
                      learning_rate=sgd.learning_rate if schedule is None else getattr(schedule, "initial", None),
                      batch_size=sgd.batch_size, shuffle=plan.shuffle, loss=plan.loss, momentum=sgd.momentum,
                      nesterov=sgd.nesterov, weight_decay=sgd.weight_decay, n_rows=plan.n_rows,
                      n_threads=plan.threads, threading=plan.mode,
                      n_validation_rows=0 if plan.val is None else plan.val[0].shape[0])
        if plan.initial_epoch:
            params["initial_epoch"] = plan.initial_epoch
        if schedule is not None:
            params["learning_rate_schedule"] = repr(schedule)
        if plan.metric_fns:
            params["metrics"] = ",".join(name for name, _ in plan.metric_fns)
        if weighted:
            params["weighted"] = True
        if plan.initial_epoch > 0 and self.history is not None:
            return self.history.continued(params)     # a copy: a snapshot of the old history stays as it was
        return History(params)

    def _check_monitored(self, plan: _FitPlan) -> None:
        """Refuse a schedule or callback that watches a metric this fit will not report."""
        reported = ({"loss", "accuracy"} if plan.classifier else {"loss"}) | {name for name, _ in plan.metric_fns}
        reported |= {"val_" + k for k in reported} if plan.val is not None else set()
        schedule = plan.schedule
        if getattr(schedule, "monitor", None) is not None and schedule.monitor not in reported:
            raise ValueError(f"the learning-rate schedule {schedule!r} monitors {schedule.monitor!r} but training "
                             f"reports only {sorted(reported)}")
        plan.callbacks.check(reported | {"lr"})

    def partial_fit(self, X, y, learning_rate: float = 0.01, batch_size: int | None = 1,
                    shuffle: bool = False, loss: str | None = None, momentum: float = 0.0,
                    nesterov: bool = False, weight_decay: float = 0.0, n_threads: int = 1,
                    sample_weight=None, class_weight=None) -> float:
        """Make one pass over the given rows (in their order unless ``shuffle``); return the mean loss.

        The parameters mean the same as in ``fit``; X may also be memory-mapped, or an iterable of
        (X, y) chunks with ``y=None``. Use it to train on data that arrives in pieces.
        """
        hist = self.fit(X, y, epochs=1, learning_rate=learning_rate, batch_size=batch_size,
                        shuffle=shuffle, loss=loss, momentum=momentum, nesterov=nesterov,
                        weight_decay=weight_decay, n_threads=n_threads, sample_weight=sample_weight,
                        class_weight=class_weight)
        return hist.history["loss"][0]

    def train_step(self, x, y, learning_rate: float = 0.01, momentum: float = 0.0,
                   weight_decay: float = 0.0, nesterov: bool = False, sample_weight=None) -> float:
        """Make one online SGD update from one row; return that row's loss (before the update).

        Parameters
        ----------
        x : array_like of shape (n_inputs,)
        y : array_like of shape (n_outputs,), a number for one output, or an integer class label
            for several outputs.
        learning_rate, momentum, weight_decay, nesterov
            As in ``fit`` (checked exactly as ``fit`` checks them); uses the network's ``loss``.
        sample_weight : float or None, default=None
            The row's weight (>= 0, as in ``fit``): its loss, returned and trained on, is scaled by it.

        Raises
        ------
        ValueError, TypeError
            For a bad row, target (also one that does not fit the loss) or setting; nothing changes.
        DivergenceError
            If the row's loss or the updated weights are non-finite; the weights and the momentum
            velocity are then exactly those from before the step.
        """
        last = self._last_step_settings
        if (last is not None and learning_rate is last[0] and momentum is last[1] and weight_decay is last[2]
                and nesterov is last[3]):
            lr, mu, wd, nest = last[4]     # the very objects of the last call, already checked
        else:
            lr, mu, wd, nest = v.check_sgd(learning_rate, momentum, weight_decay, nesterov)   # as SGD, for fit
            v.check_sgd_in(self._dtype, lr, mu, wd)
            if all(type(a) in (float, int) for a in (learning_rate, momentum, weight_decay)):   # immutable only
                self._last_step_settings = (learning_rate, momentum, weight_decay, nesterov, (lr, mu, wd, nest))
        if sample_weight is not None and not isinstance(sample_weight, (int, float)) \
                and np.size(sample_weight) != 1:   # an array of several weights is not one row's weight
            raise ValueError(f"train_step's sample_weight is the weight of its one row, a number, got "
                             f"{np.size(sample_weight)} values (shape {np.shape(sample_weight)})")
        weight = 1.0 if sample_weight is None else \
            float(v.as_sample_weight([v.unmasked(sample_weight, "sample_weight")], 1, self._dtype)[0])
        # cross-entropy targets must fit the loss: train_one checks a row it takes as it is (the rule of
        # _validation.check_targets_fit_loss), else returns None and the general path below checks and reports
        ce = 0 if self._loss != "cross_entropy" else 2 if self._layers[-1].activation == "softmax" else 1
        with self._lock:
            try:
                loss = self._engine.train_one(self._cur_spec, x, y, lr, mu, wd, nest, weight, ce)
                if loss is None:   # not already a finite C-contiguous row of the network's dtype: convert
                    if ce:   # (the target first: its error is the one to report for this loss)
                        y = self._target_row(y)
                    x = v.as_row(x, self._n_inputs, self._dtype, "x")
                    if not ce:
                        y = self._target_row(y)
                    loss = self._engine.train_one(self._cur_spec, x, y, lr, mu, wd, nest, weight, ce)
            finally:
                # published by the next reader that finds nobody training (a copy per step would cost more
                # than the step on large networks)
                self._dirty = True
        return loss

    def _target_row(self, y) -> np.ndarray:
        if self._n_outputs > 1 and isinstance(y, (int, np.integer)) and not isinstance(y, bool):
            if not 0 <= y < self._n_outputs:
                raise ValueError(f"class label {y} is not in [0, {self._n_outputs})")
            row = np.zeros(self._n_outputs, dtype=self._dtype)
            row[y] = 1
            return row
        row = v.as_row(y, self._n_outputs, self._dtype, "y")
        v.check_targets_fit_loss(row.reshape(1, -1), self._loss, self._layers[-1].activation, "y")
        return row

    # ---- inference --------------------------------------------------------------------------

    def predict(self, X) -> np.ndarray:
        """Compute the outputs of the network for every row.

        Parameters
        ----------
        X : array_like of shape (n_rows, n_inputs)

        Returns
        -------
        ndarray of shape (n_rows, n_outputs), in the network's dtype
        """
        # _readable() inlined for the common case (nothing stale, not inside this thread's own fit): the
        # Python work of a small prediction holds the GIL, which other serving threads wait for
        params = self._readable() if self._dirty or self._lock._is_owned() else self._published
        spec = self._cur_spec
        out = self._engine.predict_small(spec, X, 2, params)
        if out is None:
            X = v.as_inputs(X, self._n_inputs, self._dtype)
            out = np.empty((X.shape[0], self._n_outputs), dtype=self._dtype)
            _core.predict_rows(spec, params, X, out, self._work(spec))
        return out

    def predict_one(self, x) -> np.ndarray:
        """Compute the outputs for one row x of shape (n_inputs,); returns shape (n_outputs,)."""
        params = self._readable() if self._dirty or self._lock._is_owned() else self._published   # see predict
        spec = self._cur_spec
        out = self._engine.predict_small(spec, x, 1, params)
        if out is None:
            x = v.as_row(x, self._n_inputs, self._dtype, "x")
            out = np.empty((1, self._n_outputs), dtype=self._dtype)
            _core.predict_rows(spec, params, x.reshape(1, -1), out, self._work(spec))
            out = out[0]
        return out

    def evaluate(self, X, y, loss: str | None = None, return_dict: bool = False, metrics=None, sample_weight=None):
        """Compute the mean loss over the rows (the network's loss unless ``loss`` is given), and metrics.

        Parameters
        ----------
        X : array_like of shape (n_rows, n_inputs)
        y : array_like of shape (n_rows, n_outputs) or (n_rows,)
        loss : str or None, default=None
        return_dict : bool, default=False
            Return ``{"loss": ..., "accuracy": ...}`` (accuracy for softmax, sigmoid and step outputs)
            instead of the mean loss alone.
        metrics : list of str or callable, or None, default=None
            Also compute these from ``predict`` (see ``annfast.metrics``): "accuracy", "rmse", "mae", "r2",
            or functions ``metric(Y, P) -> float``. Implies ``return_dict=True``.
        sample_weight : array_like of shape (n_rows,) or None, default=None
            Weights >= 0 of the rows' losses, as in ``fit``: the loss is the mean over the rows of each row's
            weight times its loss. Accuracy and ``metrics`` count every row once.

        Returns
        -------
        float or dict
        """
        if loss is None:   # the block's own thread its own loss; other threads the one published with the weights
            loss = self._loss if self._lock._is_owned() else self._published_loss
        else:
            loss = self._check_loss(loss)
        metric_fns = _metrics.resolve(metrics, self._layers[-1].activation)
        return_dict = return_dict or bool(metric_fns)
        X = v.as_inputs(X, self._n_inputs, self._dtype)
        Y = v.as_targets(y, X.shape[0], self._n_outputs, self._dtype, loss=loss, activation=self._layers[-1].activation)
        W = None if sample_weight is None else v.as_sample_weight(sample_weight, X.shape[0], self._dtype)
        spec = self._spec(loss)
        params = self._readable()   # once: the loss and the metrics of one published state
        total, correct = _core.loss_rows(spec, params, X, Y, self._work(spec), W)
        if not return_dict:
            return total / X.shape[0]
        out = {"loss": total / X.shape[0]}
        if self._layers[-1].activation in v.CLASSIFIER_OUTPUTS:
            out["accuracy"] = correct / X.shape[0]
        if metric_fns:
            P = np.empty((X.shape[0], self._n_outputs), dtype=self._dtype)
            _core.predict_rows(self._cur_spec, params, X, P, self._work(self._cur_spec))
            out.update((name, _metric_value(name, fn, Y, P)) for name, fn in metric_fns)
        return out

    def gradient(self, X, y, loss: str | None = None, sample_weight=None) -> np.ndarray:
        """Compute the gradient of the mean loss over the rows with respect to the flat parameters.

        Computed by backpropagation at the current weights, which are not changed. Useful for
        checking, for custom optimizers and for averaging gradients across workers. With
        ``sample_weight`` (one weight >= 0 per row), the gradient of the mean of the rows' weighted losses: for
        integer weights, the summed gradient equals that of the data with each row repeated weight times.

        Returns
        -------
        ndarray of shape (n_params,)
            Laid out like ``parameters``.
        """
        loss = self._loss if loss is None else self._check_loss(loss)
        X = v.as_inputs(X, self._n_inputs, self._dtype)
        Y = v.as_targets(y, X.shape[0], self._n_outputs, self._dtype, loss=loss, activation=self._layers[-1].activation)
        W = None if sample_weight is None else v.as_sample_weight(sample_weight, X.shape[0], self._dtype)
        grad = np.zeros(self._n_params, dtype=self._dtype)
        with self._whole():
            _core.gradient_rows(self._spec(loss), self._params, X, Y, grad, W)
        if not _core.all_finite(grad):   # the sum over the rows overflowed: say so instead of returning inf/NaN
            raise ValueError(f"the gradient is not finite in {self._dtype}: its sum over the {X.shape[0]} rows "
                             f"overflowed (sample weights, inputs or targets too large); scale them down or use a "
                             f"float64 network")
        grad /= X.shape[0]
        return grad


def load(path) -> Network:
    """Load a network saved by ``Network.save``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Network
        With the saved architecture, dtype, loss, seed and weights. Its random stream is that of
        ``Network(..., seed=seed)`` after weight initialisation (seed None draws fresh entropy); the
        momentum velocity, the history and the kernel variant are not saved (pickle keeps them).

    Raises
    ------
    annfast.ModelFileError
        If the file is not a complete, intact annfast model of a format this version reads.
    OSError
        If the file cannot be opened or read (missing, a directory, no permission).
    """
    header, params = _io.read(path)
    layers = [Dense(layer["units"], layer["activation"], layer["negative_slope"]) for layer in header["layers"]]
    net = Network(header["n_inputs"], layers, dtype=header["dtype"], seed=header["seed"], loss=header["loss"])
    net.set_parameters(params)
    return net


def load_fann(path, dtype="float64") -> Network:
    """Load a network from a FANN network file (``.net``, FANN_FLO_2.1, as ``fann_save`` writes it).

    FANN_SIGMOID, FANN_SIGMOID_SYMMETRIC, FANN_LINEAR and FANN_THRESHOLD layers become sigmoid, tanh,
    linear and step layers, each neuron's steepness folded into its weights and bias (exact up to one rounding
    per weight), so ``predict`` equals ``fann_run`` (except where FANN clips a sum to +-150/steepness). See
    ``annfast._fann`` for the format and for what is refused.

    Parameters
    ----------
    path : str or os.PathLike
    dtype : {"float32", "float64"}, default="float64"
        Precision of the new network (the file does not say which of floatfann and doublefann wrote it).

    Returns
    -------
    Network
        With FANN's architecture and weights, the default loss (half_squared_error) and seed None.

    Raises
    ------
    annfast.FannFileError
        If the file is not a FANN_FLO_2.x network file, is damaged, or describes a network that annfast cannot
        represent exactly (shortcut or sparse connections, activation functions other than the four above,
        different functions within one layer); the message names what.
    OSError
        If the file cannot be opened or read.
    """
    from . import _fann

    dtype = v.check_dtype(dtype)
    n_inputs, layers, _ = _fann.read(path)
    where = os.fspath(path)
    for k, (W, _b, _act) in enumerate(layers):
        if np.abs(W).max(initial=0.0) > np.finfo(dtype).max or np.abs(_b).max(initial=0.0) > np.finfo(dtype).max:
            raise _fann.FannFileError(f"{where}: layer {k + 1}: a weight does not fit in {dtype.name}")
    net = Network(n_inputs, [Dense(W.shape[0], act) for W, _b, act in layers], dtype=dtype)
    net.set_weights([(W, b) for W, b, _act in layers])
    return net
