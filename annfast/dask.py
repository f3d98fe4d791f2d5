"""Data-parallel training of one annfast Network on a Dask cluster, by synchronous parameter averaging.

This module is the one place where annfast meets Dask (an optional extra: ``pip install "annfast[dask]"``);
``import annfast`` never imports it, and importing it without Dask raises an ImportError saying so.

``fit(net, X, y, client=...)`` trains ``net`` in place on a ``dask.array`` (or a dask DataFrame) whose row
partitions live on the workers of a ``dask.distributed`` cluster, by *local SGD*:

1. The row partitions are split once into ``n_groups`` contiguous groups of about equal row counts (by
   default one group per worker thread); each group is trained by one task per round, on the worker that
   holds its data. The data stays on the workers: the client never gathers it.
2. Each round, the current global parameters (the network's flat buffer, one array) are broadcast to the
   workers; every group starts a fresh copy of the network from them and runs per-sample SGD
   (``Network.fit`` for one pass) over its share of the round: its ``1 / rounds_per_epoch`` slice of the
   group's rows, in an order shuffled once per epoch and group.
3. The client gathers the groups' flat buffers and sets ``net``'s parameters to their average, weighted by
   the rows each group trained on in the round. That average starts the next round.

One round per epoch (the default) averages once per pass over the data; more rounds (``rounds_per_epoch``,
or ``samples_per_round`` rows per group between two averagings) keep the groups' models closer together,
which helps accuracy, at the price of one parameter exchange per round. Momentum, if any, is local to a
round: each group's velocity starts at zero.

The result depends only on the data, its partitioning, ``n_groups``, the settings and ``seed``: not on
which worker ran which group, nor on worker failures. With the same seed, two runs on the same kind of
machine give bitwise-identical parameters.

Fault tolerance: a round is a pure function of the averaged parameters it starts from. If a worker dies
during a round, the work its groups had done in that round is discarded; the groups that finished keep
their results; the lost groups are run again from the round's starting parameters on the remaining
workers (or on the worker that the cluster starts to replace the dead one), and the lost data partitions
are recomputed from their Dask graph. Dask's scheduler does this by itself up to its
``distributed.scheduler.allowed-failures`` limit; beyond that it raises ``KilledWorker`` and ``fit``
resubmits the lost groups, up to ``max_retries`` times per round. So a run that survives a worker loss
ends with exactly the parameters of a run without it, only later. If the client itself (or the scheduler)
dies, or ``fit`` is interrupted (Ctrl-C) or raises, ``net`` holds the parameters of the last completed round.

Examples
--------
A local cluster (two worker processes) on this machine:

>>> import dask.array as da, numpy as np, annfast as af, annfast.dask
>>> from distributed import Client, LocalCluster
>>> cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None)  # doctest: +SKIP
>>> client = Client(cluster)                                                          # doctest: +SKIP
>>> X = da.random.random((100_000, 16), chunks=(10_000, 16))                         # doctest: +SKIP
>>> y = (X[:, 0] > X[:, 1]).astype("int64")                                          # doctest: +SKIP
>>> net = af.Network(16, [af.Dense(32, "relu"), af.Dense(2, "softmax")], seed=0)      # doctest: +SKIP
>>> hist = annfast.dask.fit(net, X, y, client=client, epochs=5, rounds_per_epoch=4,
...                         learning_rate=0.01, seed=0)                               # doctest: +SKIP
>>> hist.history["loss"], hist.wall_time                                            # doctest: +SKIP

The same code on a real cluster: start ``dask scheduler`` on one machine and ``dask worker
tcp://scheduler:8786 --nthreads 1`` on each worker machine (with annfast installed), then connect with
``Client("tcp://scheduler:8786")`` and read the data on the workers, e.g. ``dd.read_parquet(...)`` or
``da.from_zarr(...)``; NumPy input is sent from the client once, for convenience.

Many independent models need none of this: Networks pickle and train with the GIL released, so joblib
(``joblib.Parallel``), scikit-learn's ``GridSearchCV(n_jobs=...)`` over ``annfast.sklearn`` estimators, and
Dask's joblib backend (``with joblib.parallel_backend("dask"): search.fit(X, y)``, with a ``Client``
connected) spread them over cores or over a cluster as they are.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import operator
import time
import uuid

import numpy as np

from . import _validation as v
from ._core import DivergenceError
from ._parallel import epoch_logs
from ._settings import SGD
from .callbacks import CallbackList
from .history import History
from .network import Dense, Network, draw_seed

try:
    import dask
    import dask.array as da
    import distributed
except ImportError as exc:
    raise ImportError('annfast.dask needs dask and distributed, an optional extra of annfast: '
                      'pip install "annfast[dask]"') from exc

__all__ = ["DaskHistory", "fit", "fit_estimator"]

# Failures that concern the cluster (a worker or connection lost), not the training: a round that hits one
# is resubmitted. Everything else (bad data, DivergenceError) is deterministic and raised at once.
_RETRIABLE = (distributed.KilledWorker, distributed.CancelledError, OSError)
_INLINE_BYTES = 1 << 20   # parameter buffers up to this size travel inside the task messages, larger ones by scatter
_WAIT_FOR_WORKERS = 60.0   # seconds a retry waits for at least one worker to be (back) in the cluster


class DaskHistory(History):
    """Per-epoch and per-round records of one ``annfast.dask.fit`` call.

    Attributes
    ----------
    history : dict of str to list of float
        One value per epoch, as in ``Network.fit``: "loss" (the mean loss of the epoch's rows, each taken
        before that row's update in its group's model), "accuracy" for softmax, sigmoid and step outputs,
        "val_loss" and "val_accuracy" with validation data (of the averaged network, after the epoch).
    epoch : list of int
        The epochs recorded, from 0.
    rounds : dict of str to list
        One value per round: "epoch", "loss" (mean over the round's rows), "rows" (trained in the round,
        over all groups), "seconds" (wall time from broadcasting the parameters to averaging them) and
        "retries" (groups resubmitted after a cluster failure).
    epoch_seconds : list of float
        Wall time of each epoch, validation included.
    setup_seconds : float
        Wall time of preparing the data on the workers (converting and persisting the partitions).
    wall_time : float
        Wall time of the whole call.
    retries : int
        Groups resubmitted over the whole call (failures that Dask's scheduler recovered by itself are
        not counted).
    group_rows : list of int
        Training rows of each group.
    params : dict
        The settings of the call (numbers, strings, booleans and None only, so that ``Network.save`` can
        store them), including "n_groups", "rounds_per_epoch", "n_rows" and "n_partitions".
    """

    def __init__(self, params: dict | None = None):
        super().__init__(params)
        self.rounds: dict[str, list] = {"epoch": [], "loss": [], "rows": [], "seconds": [], "retries": []}
        self.epoch_seconds: list[float] = []
        self.setup_seconds = 0.0
        self.wall_time = 0.0
        self.retries = 0
        self.group_rows: list[int] = []

    def record_round(self, epoch: int, loss: float, rows: int, seconds: float, retries: int) -> None:
        """Append the records of one round."""
        for name, value in (("epoch", epoch), ("loss", float(loss)), ("rows", int(rows)),
                            ("seconds", float(seconds)), ("retries", int(retries))):
            self.rounds[name].append(value)
        self.retries += int(retries)


# ---- worker side: module-level functions, so that they pickle by reference -------------------------------

def _spec_of(net: Network) -> tuple:
    """Return the architecture of ``net`` as a small picklable tuple (the parameters travel separately)."""
    return (net.n_inputs, tuple((layer.units, layer.activation, layer.negative_slope) for layer in net.layers),
            net.dtype.name, net.loss, net.kernel)


def _network(spec: tuple, params: np.ndarray) -> Network:
    """Build a fresh Network with architecture ``spec`` and parameters ``params`` (on a worker)."""
    n_inputs, layers, dtype, loss, kernel = spec
    net = Network(n_inputs, [Dense(*layer) for layer in layers], dtype=dtype, seed=0, loss=loss)
    if net.kernel != kernel:
        try:
            net.kernel = kernel           # the client's kernel, for the same rounding everywhere
        except ValueError:
            pass                          # this worker's CPU cannot run it: keep its own best
    net.set_parameters(params)
    return net


def _block(x, y, n_inputs: int, n_outputs: int, dtype: str, encode, first_row: int = 0,
           loss: str | None = None, activation: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Convert one partition pair to checked C-contiguous (rows, n_inputs) and (rows, n_outputs) arrays.

    ``first_row`` is the row of the whole data that the partition starts at: errors name global rows.
    """
    # a partition of a masked dask array (da.ma) is a numpy.ma array: refused if it masks a value, as in memory
    x = np.asarray(v.unmasked(x, f"the partition of X from row {first_row}"))
    y = np.asarray(v.unmasked(y, f"the partition of y from row {first_row}"))
    y = y if encode is None else encode(y)
    dtype = np.dtype(dtype)
    if x.ndim == 2 and x.shape[0] == 0:          # an empty partition (dask DataFrames may have some)
        if y.shape[0] != 0:
            raise ValueError(f"a partition of X has 0 rows but the matching partition of y has {y.shape[0]} "
                             f"(rows {first_row} onwards of y)")
        return np.empty((0, n_inputs), dtype), np.empty((0, n_outputs), dtype)
    X = v.as_inputs(x, n_inputs, dtype, "X", first_row=first_row)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"the partition of X of rows {first_row} to {first_row + X.shape[0] - 1} has {X.shape[0]} "
                         f"rows but the matching partition of y has {y.shape[0] if y.ndim else 'none'}; X and y must "
                         f"be partitioned alike")
    return X, v.as_targets(y, X.shape[0], n_outputs, dtype, "y", first_row=first_row, loss=loss,
                           activation=activation)


def _first_rows(xs: list) -> list:
    """Return the row of the whole data that each partition starts at.

    Delayed running sums of the partitions' lengths, computed on the workers with the partitions, so
    that unknown sizes (dask DataFrames, filtered arrays) need no pass of their own.
    """
    first, out = 0, []
    for x in xs:
        out.append(first)
        first = dask.delayed(operator.add, pure=True)(first, dask.delayed(len, pure=True)(x))
    return out


def _rows(block: tuple) -> int:
    return int(block[0].shape[0])


def _round_rows(n_rows: int, n_rounds: int, rnd: int) -> tuple[int, int]:
    """Rows [start, stop) of a group's epoch order that round ``rnd`` of ``n_rounds`` trains on."""
    return n_rows * rnd // n_rounds, n_rows * (rnd + 1) // n_rounds


def _train_group(spec: tuple, params: np.ndarray, blocks: list, group: int, epoch: int, rnd: int,
                 n_rounds: int, seed: int, settings: dict) -> tuple[np.ndarray, int, float, float]:
    """Train one group's share of one round from ``params``; return (parameters, rows, loss sum, hits)."""
    sizes = np.array([b[0].shape[0] for b in blocks], dtype=np.int64)
    n = int(sizes.sum())
    if settings["shuffle"]:
        order = np.random.default_rng([seed, epoch, group]).permutation(n)
    else:
        order = np.arange(n)
    start, stop = _round_rows(n, n_rounds, rnd)
    idx = order[start:stop]
    if idx.size == 0:
        return np.array(params, copy=True), 0, 0.0, 0.0
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    part = np.searchsorted(offsets, idx, side="right") - 1
    local = idx - offsets[part]
    X = np.empty((idx.size, blocks[0][0].shape[1]), dtype=blocks[0][0].dtype)
    Y = np.empty((idx.size, blocks[0][1].shape[1]), dtype=blocks[0][1].dtype)
    for p in np.unique(part):
        mask = part == p
        X[mask] = blocks[p][0][local[mask]]
        Y[mask] = blocks[p][1][local[mask]]
    net = _network(spec, params)
    try:
        hist = net.fit(X, Y, epochs=1, shuffle=False, loss=settings["loss"], **settings["sgd"].as_dict())
    except DivergenceError as exc:
        raise DivergenceError(f"annfast.dask.fit, group {group}, epoch {epoch}, round {rnd} (row numbers count "
                              f"within the round): {exc}") from None
    loss = hist.history["loss"][0] * idx.size
    hits = hist.history["accuracy"][0] * idx.size if "accuracy" in hist.history else 0.0
    return net.parameters.copy(), int(idx.size), float(loss), float(hits)


def _evaluate_block(spec: tuple, params: np.ndarray, block: tuple, loss: str) -> tuple[float, float, int]:
    """(loss sum, hits, rows) of one validation partition under ``params``."""
    X, Y = block
    if X.shape[0] == 0:
        return 0.0, 0.0, 0
    out = _network(spec, params).evaluate(X, Y, loss=loss, return_dict=True)
    n = X.shape[0]
    return out["loss"] * n, out.get("accuracy", 0.0) * n, n


# ---- client side ----------------------------------------------------------------------------------------

def _get_client(client):
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client must be a distributed.Client, got {type(client).__name__}")
        return client
    try:
        return distributed.default_client()
    except ValueError:
        raise ValueError('annfast.dask.fit needs a Dask cluster: pass client=Client(...) (for example '
                         'Client(LocalCluster(n_workers=2, threads_per_worker=1)) on one machine, or '
                         'Client("tcp://scheduler:8786") for a real cluster), or create a Client first') from None


def _is_frame(obj) -> bool:
    """Tell a dask DataFrame or Series (without importing dask.dataframe, which needs pandas)."""
    return dask.is_dask_collection(obj) and hasattr(obj, "npartitions") and not isinstance(obj, da.Array)


def _partitions(X, y, n_groups: int):
    """Return matching lists of delayed partitions of X and y, with at least ``n_groups`` of them if possible."""
    if not dask.is_dask_collection(X):
        X = np.asarray(v.unmasked(X, "X"))
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be 2-D (n_rows, n_inputs) with at least one row, got shape {X.shape}")
        X = da.from_array(X, chunks=(math.ceil(X.shape[0] / n_groups), -1))
    if not dask.is_dask_collection(y):
        y = np.asarray(v.unmasked(y, "y"))
        if y.ndim not in (1, 2):
            raise ValueError(f"y must be 1-D or 2-D (n_rows, n_outputs), got shape {y.shape}")
        if _is_frame(X):
            X = X.to_dask_array(lengths=True)
        elif any(math.isnan(c) for c in X.chunks[0]):   # unknown chunk sizes (from a filter, say): compute them
            X = X.compute_chunk_sizes()
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        y = da.from_array(y, chunks=(X.chunks[0],) + tuple((s,) for s in y.shape[1:]))
    if _is_frame(X) != _is_frame(y):            # one DataFrame, one array: make both arrays
        X = X.to_dask_array(lengths=True) if _is_frame(X) else X
        y = y.to_dask_array(lengths=True) if _is_frame(y) else y
    if _is_frame(X):
        if X.npartitions != y.npartitions:
            raise ValueError(f"X has {X.npartitions} partitions but y has {y.npartitions}; partition them alike "
                             f"(e.g. take both from one DataFrame: df[features], df[target])")
        if X.npartitions < n_groups:
            X, y = X.repartition(npartitions=n_groups), y.repartition(npartitions=n_groups)
        return list(X.to_delayed()), list(y.to_delayed())
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_rows, n_inputs), got {X.ndim}-D")
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D (n_rows, n_outputs), got {y.ndim}-D")
    known = not (any(math.isnan(c) for c in X.chunks[0]) or any(math.isnan(c) for c in y.chunks[0]))
    if known:
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
        if X.numblocks[0] < n_groups and X.shape[0] >= n_groups:
            X = X.rechunk((math.ceil(X.shape[0] / n_groups), -1))
        y = y.rechunk((X.chunks[0],) + ((-1,) if y.ndim == 2 else ()))
    elif X.numblocks[0] != y.numblocks[0]:
        raise ValueError(f"X has {X.numblocks[0]} row blocks but y has {y.numblocks[0]} (of unknown sizes); "
                         f"chunk them alike, or call compute_chunk_sizes() first")
    X = X.rechunk({1: -1})
    if y.ndim == 2:
        y = y.rechunk({1: -1})
    return list(X.to_delayed()[:, 0]), list(y.to_delayed().reshape(-1))


def _persist(client, net: Network, X, y, n_groups: int, encode=None, loss: str | None = None):
    """Convert and persist the partition pairs on the workers; return their futures and row counts.

    Errors found in a partition name rows of the whole data; with ``loss``, the targets must fit it.
    """
    xs, ys = _partitions(X, y, n_groups)
    act = net.layers[-1].activation
    pairs = [dask.delayed(_block, pure=False)(x, t, net.n_inputs, net.n_outputs, net.dtype.name, encode, first,
                                              loss, act)
             for x, t, first in zip(xs, ys, _first_rows(xs))]
    futures = client.compute(pairs)
    rows = client.gather(client.map(_rows, futures, pure=False))
    return futures, [int(r) for r in rows]


def _make_groups(rows: list[int], n_groups: int) -> list[list[int]]:
    """Split partitions 0..p-1 into at most ``n_groups`` contiguous runs of about equal row counts.

    Partition i goes to the group in which the middle of its rows falls; empty groups are dropped.
    """
    total = sum(rows)
    groups: list[list[int]] = [[] for _ in range(n_groups)]
    before = 0
    for i, r in enumerate(rows):
        if r:
            groups[min(n_groups - 1, int((before + r / 2) * n_groups // total))].append(i)
        before += r
    return [g for g in groups if g]


def _place(client, futures: list, groups: list[list[int]], rows: list[int]) -> list[str | None]:
    """Pick for each group the worker holding most of its rows, filling each worker up to its thread count."""
    nthreads = client.nthreads()
    if not nthreads:
        return [None] * len(groups)
    who = client.who_has(futures)
    load = dict.fromkeys(nthreads, 0)
    cap = {w: max(n, math.ceil(len(groups) / len(nthreads))) for w, n in nthreads.items()}
    places: list[str | None] = [None] * len(groups)
    for g in sorted(range(len(groups)), key=lambda g: -sum(rows[i] for i in groups[g])):
        held = dict.fromkeys(nthreads, 0)
        for i in groups[g]:
            for w in who.get(futures[i].key, ()):
                if w in held:
                    held[w] += rows[i]
        free = [w for w in nthreads if load[w] < cap[w]] or list(nthreads)
        best = max(free, key=lambda w: (held[w], -load[w]))
        places[g] = best
        load[best] += 1
    return places


def _replace_dead(client, places: list[str | None]) -> list[str | None]:
    """Move the groups of workers that left the cluster to the live workers with the fewest groups."""
    client.wait_for_workers(1, timeout=_WAIT_FOR_WORKERS)
    live = client.nthreads()
    load = dict.fromkeys(live, 0)
    for w in places:
        if w in load:
            load[w] += 1
    out = []
    for w in places:
        if w not in live:
            w = min(live, key=lambda x: load[x])
            load[w] += 1
        out.append(w)
    return out


def _ship(client, params: np.ndarray):
    """Return what the round's tasks receive as the parameters: the array itself, or a broadcast future.

    A small buffer travels inside the task messages (one trip fewer than a scatter: on a small cluster that
    is most of a round's overhead); a large one is scattered once to every worker.
    """
    if params.nbytes <= _INLINE_BYTES:
        return params
    return client.scatter(params, broadcast=True, hash=False)


def _run_tasks(client, submit, n: int, max_retries: int, what: str) -> tuple[list, int]:
    """Run tasks 0..n-1 (``submit(i, attempt)`` returns a future) and return (results, resubmissions).

    A task that fails because of the cluster (a lost worker, a closed connection) is resubmitted, up to
    ``max_retries`` times; any other exception is raised as it is.
    """
    attempts = [0] * n
    results: list = [None] * n
    pending = {submit(i, 0): i for i in range(n)}
    done = distributed.as_completed(list(pending))
    retries = 0
    for fut in done:
        i = pending.pop(fut)
        if fut.status == "finished":
            results[i] = fut.result()
            continue
        if fut.status == "error":
            exc = fut.exception()
        else:                                  # cancelled (its data or worker lost) or lost
            exc = distributed.CancelledError(f"task {fut.key} was {fut.status}")
        if not isinstance(exc, _RETRIABLE):
            for other in pending:
                other.cancel()
            raise exc
        attempts[i] += 1
        if attempts[i] > max_retries:
            for other in pending:
                other.cancel()
            raise RuntimeError(f"{what}: task {i} was lost to the cluster {attempts[i]} time(s), more than "
                               f"max_retries={max_retries}; last error: {type(exc).__name__}: {exc}") from exc
        retries += 1
        new = submit(i, attempts[i])
        pending[new] = i
        done.add(new)
    return results, retries


def _check_int_or_none(value, name: str, minimum: int = 1) -> int | None:
    return None if value is None else v.check_int(value, name, minimum=minimum)


def fit(net: Network, X, y, *, client=None, epochs: int = 1, rounds_per_epoch: int | None = None,
        samples_per_round: int | None = None, n_groups: int | None = None, learning_rate: float = 0.01,
        batch_size: int | None = 1, shuffle: bool = True, loss: str | None = None, momentum: float = 0.0,
        nesterov: bool = False, weight_decay: float = 0.0, seed: int | None = None, validation_data=None,
        callbacks=None, max_retries: int = 3) -> DaskHistory:
    """Train ``net`` in place on data partitioned across a Dask cluster, by local SGD with averaging.

    Each round, every group of partitions trains a copy of the network, starting from the current
    parameters, by per-sample SGD over its share of the round's rows; the copies' flat parameter buffers
    are then averaged, weighted by the rows each trained on, into ``net``. See the module docstring for
    the round, averaging and fault-tolerance semantics.

    Parameters
    ----------
    net : Network
        The network to train; its parameters are replaced by the average after every round.
    X : dask.array.Array, dask DataFrame or array_like of shape (n_rows, n_inputs)
        Training inputs. A dask collection is read on the workers, partition by partition; a NumPy array
        is sent from the client once, split into ``n_groups`` blocks.
    y : dask.array.Array, dask Series or DataFrame, or array_like of shape (n_rows, n_outputs) or (n_rows,)
        Targets, partitioned like X (an array is rechunked to X's row chunks when they are known). 1-D y
        is one column for a single output, or integer class labels for several outputs.
    client : distributed.Client or None, default=None
        The cluster to use; None takes the default client (the latest one created).
    epochs : int, default=1
        Passes over the data, >= 0.
    rounds_per_epoch : int or None, default=None
        Averagings per epoch, >= 1: each round trains every group on the next ``1 / rounds_per_epoch`` of
        its rows. None means 1 (one pass over its partitions per round) unless ``samples_per_round`` is
        given.
    samples_per_round : int or None, default=None
        Rows each group trains on between two averagings, >= 1 (the largest group's; smaller groups train
        on proportionally fewer). Sets ``rounds_per_epoch`` to ceil(largest group's rows / this). Give
        at most one of the two.
    n_groups : int or None, default=None
        Number of models trained in parallel and averaged, >= 1. None: the cluster's worker threads when
        training starts. Capped by the number of non-empty partitions (X is rechunked to at least this many
        row blocks when its chunk sizes are known).
    learning_rate, batch_size, loss, momentum, nesterov, weight_decay
        As in ``Network.fit``, for each group's SGD; the momentum velocity restarts at zero every round.
        ``loss`` None uses the network's loss.
    shuffle : bool, default=True
        Visit each group's rows in a fresh random order every epoch; False keeps the partitions' order.
    seed : int or None, default=None
        Seed of the shuffling; None draws one from the network's own random stream.
    validation_data : tuple (X_val, y_val) or None, default=None
        Evaluated with the averaged network after every epoch ("val_loss", "val_accuracy"): on the client
        for array_like data, on the workers for dask collections.
    callbacks : list of Callback or None, default=None
        ``annfast.callbacks`` objects, called between epochs as by ``Network.fit`` (``EarlyStopping``
        works; setting ``net.stop_training = True`` ends training after the epoch).
    max_retries : int, default=3
        Times a round's group may be resubmitted after failing because of the cluster (a lost worker),
        >= 0. Failures that Dask's scheduler recovers by itself do not count.

    Returns
    -------
    DaskHistory
        Per-epoch metrics as ``Network.fit`` returns them, per-round records and wall times; also stored
        as ``net.history``.

    Raises
    ------
    DivergenceError
        If a group's loss or weights become non-finite; ``net`` keeps the parameters of the last average.
    RuntimeError
        If a group fails more than ``max_retries`` times because of the cluster; ``net`` keeps the
        parameters of the last average.
    ValueError, TypeError
        For bad settings or data (also for bad values found in a partition on a worker).

    Examples
    --------
    >>> hist = annfast.dask.fit(net, X, y, client=client, epochs=10, rounds_per_epoch=4,
    ...                         learning_rate=0.01, seed=0)                   # doctest: +SKIP
    >>> hist.history["loss"][-1], hist.rounds["seconds"][:3], hist.wall_time   # doctest: +SKIP
    """
    t_start = time.perf_counter()
    y, encode = (y.y, y.encode) if isinstance(y, _Targets) else (y, None)
    if not isinstance(net, Network):
        raise TypeError(f"net must be an annfast.Network, got {type(net).__name__}")
    client = _get_client(client)
    epochs = v.check_int(epochs, "epochs", minimum=0, maximum=v.MAX_EPOCHS)
    rounds_per_epoch = _check_int_or_none(rounds_per_epoch, "rounds_per_epoch")
    samples_per_round = _check_int_or_none(samples_per_round, "samples_per_round")
    if rounds_per_epoch is not None and samples_per_round is not None:
        raise ValueError("give rounds_per_epoch or samples_per_round, not both")
    n_groups = _check_int_or_none(n_groups, "n_groups")
    max_retries = v.check_int(max_retries, "max_retries", minimum=0)
    sgd = SGD(learning_rate, momentum, weight_decay, nesterov, batch_size)
    v.check_sgd_in(net.dtype, sgd.learning_rate, sgd.momentum, sgd.weight_decay)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    loss = net.loss if loss is None else v.check_loss(loss, net.layers[-1].activation)
    if seed is None:
        seed = draw_seed(net)
    seed = v.check_int(seed, "seed", minimum=0)
    callbacks = CallbackList(callbacks)

    if n_groups is None:
        client.wait_for_workers(1, timeout=_WAIT_FOR_WORKERS)
        n_groups = max(1, sum(client.nthreads().values()))
    held = []                      # every future of this call, released at the end
    try:
        futures, rows = _persist(client, net, X, y, n_groups, encode, loss)
        held.append(futures)
        if sum(rows) == 0:
            raise ValueError("X has no rows")
        groups = _make_groups(rows, n_groups)
        group_rows = [sum(rows[i] for i in g) for g in groups]
        job = _RoundJob(client=client, net=net, spec=_spec_of(net), futures=futures, groups=groups,
                        n_rounds=_rounds_of(group_rows, rounds_per_epoch, samples_per_round), seed=seed,
                        settings={"shuffle": bool(shuffle), "sgd": sgd, "loss": loss}, run=uuid.uuid4().hex[:8],
                        max_retries=max_retries, places=_place(client, futures, groups, rows))
        val = _validation(client, net, validation_data, n_groups, held, encode)
        classifier = net.layers[-1].activation in v.CLASSIFIER_OUTPUTS
        reported = {"loss", "accuracy"} if classifier else {"loss"}
        callbacks.check(reported | ({"val_" + k for k in reported} if val is not None else set()))
        hist = DaskHistory(dict(epochs=epochs, rounds_per_epoch=job.n_rounds, n_groups=len(groups),
                                shuffle=bool(shuffle), seed=seed, max_retries=max_retries, n_rows=sum(rows),
                                n_partitions=len(rows), loss=loss, **sgd.as_dict()))
        hist.group_rows = group_rows
        hist.setup_seconds = time.perf_counter() - t_start
        net.history = hist
        net.stop_training = False
        callbacks.set_network(net)
        callbacks.on_train_begin({})
        callbacks.on_train_end(_run_epochs(job, hist, callbacks, epochs, val, classifier, loss))
    finally:
        held.clear()               # the partitions on the workers are released with the last reference
    hist.wall_time = time.perf_counter() - t_start
    return hist


def _run_epochs(job: _RoundJob, hist: DaskHistory, callbacks: CallbackList, epochs: int, val, classifier: bool,
                loss: str) -> dict:
    """Train the epochs of one ``fit`` call, round by round, as ``Network.fit`` does; return the last logs."""
    logs: dict = {}
    for epoch in range(epochs):
        t_epoch = time.perf_counter()
        callbacks.on_epoch_begin(epoch, logs)
        totals = sum(_train_round(job, hist, epoch, rnd) for rnd in range(job.n_rounds))   # loss, hits, rows
        logs = epoch_logs(totals[0], totals[1], totals[2], classifier)
        if val is not None:
            logs.update(val(loss, classifier, job.max_retries, f"validation after epoch {epoch}"))
        hist.record(epoch, **logs)
        hist.epoch_seconds.append(time.perf_counter() - t_epoch)
        callbacks.on_epoch_end(epoch, logs)
        if job.net.stop_training:
            break
    return logs


def _rounds_of(group_rows: list[int], rounds_per_epoch: int | None, samples_per_round: int | None) -> int:
    """Return the rounds of each epoch, from ``rounds_per_epoch`` or ``samples_per_round`` (checked)."""
    if samples_per_round is not None:
        return max(1, math.ceil(max(group_rows) / samples_per_round))
    n_rounds = rounds_per_epoch or 1
    if n_rounds > max(group_rows):   # the extra rounds train no row, ~30 ms of Dask overhead each
        raise ValueError(f"rounds_per_epoch={n_rounds} is more than the {max(group_rows)} rows of the "
                         f"largest group: rounds past that would train on no rows; give at most "
                         f"{max(group_rows)}")
    return n_rounds


@dataclasses.dataclass
class _RoundJob:
    """What every round of one ``fit`` call needs; ``places`` (each group's worker) changes when workers die."""

    client: object
    net: Network
    spec: tuple
    futures: list
    groups: list
    n_rounds: int
    seed: int
    settings: dict
    run: str
    max_retries: int
    places: list


def _train_round(job: _RoundJob, hist: DaskHistory, epoch: int, rnd: int) -> np.ndarray:
    """Train round ``rnd`` of ``epoch`` on every group, set the network to the groups' average, record the round.

    Returns the round's (loss sum, hits, rows).
    """
    t_round = time.perf_counter()
    client, net = job.client, job.net
    state = {"params": None, "places": job.places}

    def submit(g, attempt):
        if attempt or state["params"] is None:
            if attempt:
                state["places"] = _replace_dead(client, state["places"])
            state["params"] = _ship(client, net.parameters.copy())
        where = state["places"][g]
        return client.submit(_train_group, job.spec, state["params"], [job.futures[i] for i in job.groups[g]],
                             g, epoch, rnd, job.n_rounds, job.seed, job.settings,
                             key=f"annfast-train-{job.run}-{epoch}-{rnd}-{g}-{attempt}",
                             workers=None if where is None else [where], allow_other_workers=True)

    results, retries = _run_tasks(client, submit, len(job.groups), job.max_retries, f"epoch {epoch}, round {rnd}")
    job.places = state["places"]
    n_round = sum(r[1] for r in results)
    if n_round:
        avg = np.zeros(net.n_params)
        for params, n_rows, _, _ in results:
            avg += (n_rows / n_round) * params
        net.set_parameters(avg)
    round_totals = np.array([sum(r[k] for r in results) for k in (2, 3, 1)], dtype=np.float64)
    hist.record_round(epoch, round_totals[0] / max(n_round, 1), n_round, time.perf_counter() - t_round, retries)
    return round_totals


def _validation(client, net: Network, validation_data, n_groups: int, held: list, encode):
    """Return a function computing the validation metrics of ``net`` (or None without validation data)."""
    if validation_data is None:
        return None
    try:
        Xv, yv = validation_data
    except (TypeError, ValueError):
        raise TypeError("validation_data must be a pair (X_val, y_val)") from None
    if not (dask.is_dask_collection(Xv) or dask.is_dask_collection(yv)):
        if encode is not None:
            yv = encode(np.asarray(yv))
        Xv = v.as_inputs(Xv, net.n_inputs, net.dtype, "X_val")
        Yv = v.as_targets(yv, Xv.shape[0], net.n_outputs, net.dtype, "y_val")

        def local(loss, classifier, max_retries, what):
            out = net.evaluate(Xv, Yv, loss=loss, return_dict=True)
            return {"val_" + k: out[k] for k in ("loss", "accuracy") if k in out}
        return local

    futures, _ = _persist(client, net, Xv, yv, n_groups, encode)
    held.append(futures)
    spec = _spec_of(net)
    run = uuid.uuid4().hex[:8]

    def remote(loss, classifier, max_retries, what):
        params = _ship(client, net.parameters.copy())

        def submit(i, attempt):
            return client.submit(_evaluate_block, spec, params, futures[i], loss,
                                 key=f"annfast-validate-{run}-{len(net.history.epoch)}-{i}-{attempt}")
        results, _ = _run_tasks(client, submit, len(futures), max_retries, what)
        total, hits, n = (sum(r[k] for r in results) for k in range(3))
        out = {"val_loss": total / n}
        if classifier:
            out["val_accuracy"] = hits / n
        return out
    return remote


# ---- the scikit-learn adapter -----------------------------------------------------------------------------

class _Targets:
    """Targets with a conversion to apply on the workers (labels to codes, standardization) before training."""

    def __init__(self, y, encode):
        self.y = y
        self.encode = encode


class _LabelCodes:
    """Map class labels to their indices in ``classes`` (on the workers), as ANNClassifier does."""

    def __init__(self, classes):
        self.classes = list(np.asarray(classes).tolist())

    def __call__(self, y: np.ndarray) -> np.ndarray:
        index = {label: k for k, label in enumerate(self.classes)}
        y = np.asarray(y).reshape(-1)
        codes = np.fromiter((index.get(label, -1) for label in y.tolist()), dtype=np.int64, count=y.shape[0])
        if (codes < 0).any():
            unseen = list(dict.fromkeys(y[codes < 0].tolist()))[:10]
            raise ValueError(f"y has label(s) {unseen} not in the estimator's classes_ {self.classes}")
        return codes


class _Standardize:
    """(y - mean) / scale per column, as ANNRegressor trains its network."""

    def __init__(self, mean, scale):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)

    def __call__(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        return (y.reshape(y.shape[0], -1) - self.mean) / self.scale


def _head(data, n: int):
    """Return the first ``n`` rows of a dask collection or array (only these reach the client)."""
    if _is_frame(data):
        return data.head(n, npartitions=-1)
    if dask.is_dask_collection(data):
        return data[:n].compute()
    return data[:n]


def fit_estimator(estimator, X, y, *, classes=None, epochs: int | None = None, client=None,
                  rounds_per_epoch: int | None = None, samples_per_round: int | None = None,
                  n_groups: int | None = None, max_retries: int = 3, callbacks=None):
    """Train an ``annfast.sklearn`` estimator (ANNClassifier or ANNRegressor) on a Dask cluster.

    The estimator's network is trained by ``fit`` with the estimator's own settings: ``learning_rate_init``,
    ``batch_size`` ("auto" is 200 rows), ``momentum``, ``nesterovs_momentum``, ``alpha`` (weight decay),
    ``shuffle`` and an int ``random_state`` (the shuffling seed). ``tol``, ``n_iter_no_change`` and
    ``early_stopping`` are not applied: training runs ``epochs`` epochs; a ``learning_rate`` other than
    "constant" is refused (ValueError) rather than ignored.

    An unfitted estimator is first initialized by ``partial_fit`` on the first two rows (the only rows
    that reach the client); a classifier's labels are ``classes`` or, when None, the distinct labels of y
    computed on the cluster; a regressor's target mean and scale are computed on the cluster. A fitted
    estimator continues training (as ``partial_fit`` would); ``sklearn.base.clone`` it to start anew.

    Parameters
    ----------
    estimator : annfast.sklearn.ANNClassifier or annfast.sklearn.ANNRegressor
        Updated in place: ``network_``, ``n_iter_``, ``t_``, ``loss_curve_`` and ``best_loss_``.
    X : dask.array.Array, dask DataFrame or array_like of shape (n_samples, n_features)
        Training inputs.
    y : dask.array.Array, dask Series or array_like of shape (n_samples,) or (n_samples, n_outputs)
        Class labels (classifier) or targets (regressor), partitioned like X.
    classes : array_like of shape (n_classes,) or None, default=None
        All the class labels (classifier only, first call only).
    epochs : int or None, default=None
        Epochs to train, >= 0; None uses the estimator's ``max_iter``.
    client, rounds_per_epoch, samples_per_round, n_groups, max_retries, callbacks
        As in ``fit``.

    Returns
    -------
    estimator
        The same estimator, trained; the per-round records are in ``estimator.network_.history``.

    Examples
    --------
    >>> from annfast.sklearn import ANNClassifier
    >>> clf = fit_estimator(ANNClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, random_state=0),
    ...                     X, y, epochs=10, client=client)                      # doctest: +SKIP
    >>> clf.predict(X_test)                                                     # doctest: +SKIP
    """
    try:
        from .sklearn import ANNClassifier, ANNRegressor
    except ImportError as exc:
        raise ImportError('fit_estimator needs scikit-learn: pip install "annfast[sklearn]"') from exc
    if not isinstance(estimator, (ANNClassifier, ANNRegressor)):
        raise TypeError(f"estimator must be an annfast.sklearn ANNClassifier or ANNRegressor, "
                        f"got {type(estimator).__name__}")
    if getattr(estimator, "learning_rate", "constant") != "constant":
        raise ValueError(f"fit_estimator trains at the constant rate learning_rate_init; the estimator's "
                         f"learning_rate={estimator.learning_rate!r} schedule is not applied across rounds: set "
                         f"learning_rate='constant'")
    client = _get_client(client)
    classifier = isinstance(estimator, ANNClassifier)
    if not hasattr(estimator, "network_"):
        X0, y0 = _head(X, 2), _head(y, 2)
        if classifier:
            if classes is None:
                uniq = y.unique() if _is_frame(y) else da.unique(y) if dask.is_dask_collection(y) else np.unique(y)
                classes = np.asarray(client.compute(uniq).result() if dask.is_dask_collection(uniq) else uniq)
            estimator.partial_fit(X0, y0, classes=classes)
        else:
            estimator.partial_fit(X0, y0)
            yy = y.to_dask_array(lengths=True) if _is_frame(y) else y if dask.is_dask_collection(y) else None
            if yy is not None:
                yy = yy.astype(np.float64)
                mean, std = client.compute([yy.mean(axis=0), yy.std(axis=0)], sync=True)
            else:
                yy = np.asarray(y, dtype=np.float64)
                mean, std = yy.mean(axis=0), yy.std(axis=0)
            mean = np.atleast_1d(mean)
            estimator.y_mean_, estimator.y_scale_ = mean, v.target_scale(mean, std)   # as ANNRegressor's
    elif classes is not None and classifier and list(np.asarray(classes).tolist()) != estimator.classes_.tolist():
        raise ValueError(f"classes={list(classes)} is not the classes_ {estimator.classes_.tolist()} of the fitted "
                         f"estimator")
    encode = _LabelCodes(estimator.classes_) if classifier else _Standardize(estimator.y_mean_, estimator.y_scale_)
    epochs = estimator.max_iter if epochs is None else epochs
    bs = estimator.batch_size
    rs = estimator.random_state
    seed = int(rs) if isinstance(rs, numbers.Integral) and not isinstance(rs, bool) else None
    momentum = float(estimator.momentum)
    hist = fit(estimator.network_, X, _Targets(y, encode), client=client, epochs=epochs,
               rounds_per_epoch=rounds_per_epoch, samples_per_round=samples_per_round, n_groups=n_groups,
               learning_rate=estimator.learning_rate_init, batch_size=200 if bs == "auto" else bs,
               shuffle=estimator.shuffle, momentum=momentum,
               nesterov=bool(estimator.nesterovs_momentum) and momentum > 0,
               weight_decay=estimator.alpha, seed=seed, callbacks=callbacks, max_retries=max_retries)
    losses = hist.history.get("loss", [])
    estimator.n_iter_ += len(losses)
    estimator.t_ += len(losses) * hist.params["n_rows"]
    estimator.loss_curve_ = list(estimator.loss_curve_) + list(losses)
    if estimator.loss_curve_ and estimator.best_loss_ is not None:
        estimator.best_loss_ = min(estimator.loss_curve_)
    return estimator
