"""Epochs on several threads: per-sample SGD on shards, and mini-batches split across threads.

The C work releases the GIL, so plain Python threads run it in parallel. Per-sample SGD splits the
epoch's order into disjoint parts for the threads, in one of two ways:

- merged (the default): each thread trains a private copy of the parameters on blocks of ``sync_every``
  rows of the epoch, which the threads take in turn; after each block it adds its change to the shared
  buffer and restarts its copy from it, on its own, without waiting for the other threads. This is
  Hogwild's lock-free update with a bounded delay: every update of every row lands, and a thread sees the
  others' updates at most ``sync_every`` rows late. Each thread sweeps weights that stay in its own
  core's cache, and a thread on a slower core simply takes fewer blocks.
- hogwild: all threads update the ONE shared buffer without locks, row by row (Niu et al. 2011). For
  dense networks every row writes every weight, so the cores spend their time passing cache lines back
  and forth; measured on the benchmark shapes it is no faster than one thread (see bench/).

Mini-batches of at least ``SPLIT_ROWS`` rows per thread are split: the threads sum the gradients of their
slices of each batch into private buffers, which are added and applied once, so the result equals serial
mini-batch SGD up to rounding. Smaller batches would spend their time waiting for each other, so each
thread trains whole batches of its shard on a private copy, merged as above.

Failures are handled here, in the calling thread: a thread that meets a non-finite loss stops the others
at their next chunk; Ctrl-C (delivered to the calling thread) does the same; the weights are then
restored to the start of the epoch if they are not all finite.
"""
from __future__ import annotations

import os
import threading
import weakref
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

import numpy as np

from . import _core
from ._settings import SGD

# a batch is split across threads only when each thread gets at least this many of its rows
SPLIT_ROWS = 256
# the split kernel gives each thread at least this many units of the first hidden layer, and this many of its
# multiply-adds per row (see split_threads)
SPLIT_UNITS = 4
SPLIT_MIN_MACS = 16384


class Workers:
    """The worker threads of one network's multi-threaded fits, kept from one fit to the next.

    Starting a thread takes about a quarter of a millisecond, a few percent of a short multi-threaded epoch and
    most of a small ``partial_fit``. The threads wait idle between fits; they are replaced when a fit asks for
    another number of them or runs in a forked child (which has none of its parent's threads), and shut down
    when ``owner`` is garbage-collected or the interpreter exits. So are the threads' buffers (``buffers``).
    Not thread-safe: the owner's fits hold its lock.
    """

    def __init__(self, owner) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._n = 0
        self._pid = 0
        self._buffers: dict[str, list[np.ndarray]] = {}
        self._finalizer = weakref.finalize(owner, self.close)

    def buffers(self, name: str, n_threads: int, n_params: int, dtype) -> list[np.ndarray]:
        """``n_threads`` aligned (n_params,) buffers of ``dtype`` for the threads' ``name`` (weight copies, say).

        The same buffers as at the last fit when the sizes match, with whatever they held: fresh ones would cost a
        page fault per 4 KiB at their first write, up to a millisecond per fit.
        """
        out = self._buffers.get(name)
        if out is None or len(out) != n_threads or out[0].shape[0] != n_params or out[0].dtype != dtype:
            out = [_core.aligned_zeros(n_params, dtype) for _ in range(n_threads)]
            self._buffers[name] = out
        return out

    def get(self, n_threads: int) -> ThreadPoolExecutor:
        """Return a pool of ``n_threads`` threads: the kept one unless the count or the process changed."""
        if self._pool is None or self._n != n_threads or self._pid != os.getpid():
            self.close()   # (in a forked child it only drops the parent's pool and buffers)
            self._pool = ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="annfast")
            self._n, self._pid = n_threads, os.getpid()
        return self._pool

    def close(self, wait: bool = False) -> None:
        """End the threads once they finish what they run (``wait``: return only then)."""
        pool, self._pool = self._pool, None
        self._buffers.clear()
        if pool is not None and self._pid == os.getpid():
            pool.shutdown(wait=wait)


#: the most threads a fit may ask for (a larger count is a mistake, not a machine)
MAX_THREADS = 1024
#: merged mode: the most rows the threads may have in flight together (threads x sync_every). The threads'
#: changes are added up, so they act as one step of that many rows taken at stale weights: 16 threads x 16 rows
#: kept MNIST within 0.4 points of one thread but never got Fashion-MNIST past 47 % (one thread: 86 %), 2 x 256
#: lost up to 10 points on digits, 16 x 128 collapsed; 2 x 32 matched one thread on digits.
MERGED_ROWS_IN_FLIGHT = 64


#: split kernel: how many times a thread waiting for the others spins before it yields its core (a few
#: microseconds; a barrier between threads on cores of their own takes well under one)
SPIN = 4000
#: split kernel: never more threads than cores (a barrier per row makes extra threads wait for a core), nor
#: threads with too little work per row (split_threads). Tests set it False to run 8-32 threads on a 2-core
#: machine, on small networks, and shake out races.
CLAMP_TO_CORES = True


def usable_cores() -> int:
    """Return the number of CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def resolve_threads(n_threads) -> int:
    """Return the number of threads for ``n_threads`` (-1: every core this process may use), checked."""
    if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, (int, np.integer)) or not (
            n_threads == -1 or 1 <= n_threads <= MAX_THREADS):
        raise ValueError(f"n_threads must be an integer from 1 to {MAX_THREADS}, or -1 (every core), "
                         f"got {n_threads!r}")
    return usable_cores() if n_threads == -1 else int(n_threads)


def choose(spec, threads: int, batch_size: int, hogwild: bool, sync_every, n_rows=None) -> tuple[str, int]:
    """Return how a fit with ``threads`` threads trains, and how many threads it really uses.

    - "serial": one thread (asked for, or nothing to split).
    - "split" (per-sample SGD, the default): the split kernel, one row at a time as serial SGD, each thread
      owning a slice of the first hidden layer, at most one thread per ``SPLIT_UNITS`` of its units.
    - "hogwild": per-sample SGD on shards of the rows, one shared buffer without locks (``hogwild=True``).
    - "merged": per-sample or mini-batch SGD on private copies merged every ``sync_every`` rows (asked for by
      giving ``sync_every``); refused when the threads would have more than ``MERGED_ROWS_IN_FLIGHT`` rows in
      flight together, where it stops converging like one thread (unless one block holds all ``n_rows`` rows:
      then one thread trains them all, as serial SGD).
    - "batch": mini-batches, each batch's gradient summed by up to ``batch_size // SPLIT_ROWS`` threads: the
      serial result up to rounding. Smaller batches train on one thread (any other split would be slower or
      change the result).
    """
    if threads == 1:
        return "serial", 1
    if sync_every is not None and hogwild:   # before the cap: refused on every machine, whatever its cores
        raise ValueError("hogwild=True and sync_every are two different threaded modes; give one of them")
    if CLAMP_TO_CORES and (sync_every is not None or hogwild):   # asynchronous threads beyond the cores only wait
        threads = min(threads, usable_cores())
        if threads == 1:
            return "serial", 1
    if sync_every is not None:
        one_block = n_rows is not None and sync_every >= n_rows
        if threads * sync_every > MERGED_ROWS_IN_FLIGHT and not one_block:
            raise ValueError(
                f"n_threads={threads} with sync_every={sync_every} has {threads * sync_every} rows in flight; "
                f"merged training converges like one thread only up to {MERGED_ROWS_IN_FLIGHT}. Lower sync_every "
                f"to at most {max(1, MERGED_ROWS_IN_FLIGHT // threads)}, or leave it out (the default threaded "
                "per-sample mode trains exactly like one thread)")
        return "merged", threads
    if batch_size == 1:
        if hogwild:
            return "hogwild", threads
        k = split_threads(spec, threads)
        return ("split", k) if k > 1 else ("serial", 1)
    k = min(threads, batch_size // SPLIT_ROWS)
    return ("batch", k) if k > 1 else ("serial", 1)


def _pinned(t: int, fn, *args):
    """Run fn(*args) with the calling thread pinned to the t-th CPU it may use (Linux), then unpin."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return fn(*args)
    try:
        os.sched_setaffinity(0, {cpus[t % len(cpus)]})
    except OSError:
        return fn(*args)
    try:
        return fn(*args)
    finally:
        os.sched_setaffinity(0, cpus)


def _submit_all(pool: ThreadPoolExecutor, stop: threading.Event, calls) -> list:
    """Submit ``calls`` (tuples of a function and its arguments) and return their futures.

    If submitting fails part way (Ctrl-C between two submits, a thread that cannot start), stop the ones
    submitted, wait for them and re-raise: no worker may go on training after the fit has raised.
    """
    futures = []
    try:
        for call in calls:
            futures.append(pool.submit(*call))
    except BaseException:
        stop.set()
        for f in futures:
            try:
                f.result()
            except BaseException:   # noqa: B036 -- the submit's exception is the one to report
                pass
        raise
    return futures


def _wait_all(futures, stop: threading.Event):
    """Results of all futures; on Ctrl-C (or any exception) stop the workers and wait for them first."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        stop.set()
        for f in futures:
            try:
                f.result()
            except Exception:   # the first exception, re-raised below, is the one to report
                pass
        raise


def _finish(futures, stop: threading.Event, params, backup):
    """``_wait_all``, and on the way out of an interrupt keep the weights finite (whole they are)."""
    try:
        return _wait_all(futures, stop)
    except BaseException:
        if not _core.all_finite(params):
            params[...] = backup
        raise


def _diverged(params, backup, epoch: int, row=None) -> None:
    """Raise the DivergenceError of a threaded epoch (``row`` of X, or None: the weights).

    The weights go back to the start of the epoch when they are not all finite.
    """
    restored = not _core.all_finite(params)
    if restored:
        params[...] = backup
    raise _core.DivergenceError(_core.divergence_message("restored_epoch" if restored else "mid_epoch",
                                                         None if row is None else int(row), epoch))


def hogwild_epoch(spec, params, velocity, backup, X, Y, order, n_threads: int, sgd: SGD, epoch: int,
                  pool: ThreadPoolExecutor, W=None) -> tuple[float, int]:
    """One per-sample epoch on ``n_threads`` threads over disjoint shards of ``order``.

    Returns (summed loss, rows classified right).
    """
    backup[...] = params
    stop = threading.Event()
    shards = np.array_split(order, n_threads)
    block = 4 * spec.chunk_rows    # worker threads need no Ctrl-C checks: fewer GIL round trips
    lr, mu, wd, nest = sgd.step
    futures = _submit_all(pool, stop, [(_core.train_thread, spec, params, velocity, params, X, Y,
                                        np.ascontiguousarray(shard), block, lr, mu, wd, nest, 1, stop, None, None,
                                        None, None, W) for shard in shards])
    results = _finish(futures, stop, params, backup)
    bad = [(k, r[3]) for k, r in enumerate(results) if r[3] >= 0]
    if bad:
        k, pos = bad[0]
        _diverged(params, backup, epoch, shards[k][pos])
    if not _core.all_finite(params):
        _diverged(params, backup, epoch)
    return sum(r[0] for r in results), sum(r[1] for r in results)


def merged_epoch(spec, params, velocity, backup, bufs: ThreadBuffers, X, Y, order, sgd: SGD, sync_every: int,
                 epoch: int, pool: ThreadPoolExecutor, W=None) -> tuple[float, int]:
    """One epoch on ``len(bufs.copies)`` threads with private copies merged every ``sync_every`` rows.

    Each thread merges on its own (``_core.train_thread``): no barrier between the threads.
    ``bufs.copies``/``starts`` (``vcopies`` when momentum > 0, ``grads`` when batch_size > 1) hold one
    (n_params,) buffer per thread. With momentum every thread starts from ``velocity``, which ends as the mean
    of the threads' velocities weighted by the rows each trained (a thread that took no block leaves it
    alone): the epochs of one fit chain as separate fits do. Returns (summed loss, rows classified right).
    """
    backup[...] = params
    stop = threading.Event()
    lock = threading.Lock()
    copies, starts, vcopies, grads = bufs.copies, bufs.starts, bufs.vcopies, bufs.grads
    k = len(copies)
    order = np.ascontiguousarray(order)
    next_pos = np.zeros(1, dtype=np.int64)   # the threads take the epoch's blocks in turn (see train_thread)
    for c, s0 in zip(copies, starts):
        c[...] = params
        s0[...] = params
    lr, mu, wd, nest = sgd.step
    bs = sgd.batch_size
    for v in vcopies if mu > 0 else ():   # every thread starts from the shared velocity, as a new fit does
        v[...] = velocity
    futures = _submit_all(pool, stop, [(_pinned, t, _core.train_thread, spec, copies[t],
                                        vcopies[t] if mu > 0 else velocity, grads[t] if bs > 1 else copies[t],
                                        X, Y, order, sync_every, lr, mu, wd, nest, bs, stop, params,
                                        starts[t], lock, next_pos, W) for t in range(k)])
    results = _finish(futures, stop, params, backup)
    bad = [r[3] for r in results if r[3] >= 0]
    if bad:
        _diverged(params, backup, epoch, order[min(bad)])
    done = [r[2] for r in results]
    if mu > 0 and sum(done) > 0:   # the shared velocity: the threads', weighted by the rows each trained
        velocity[...] = np.average(vcopies, axis=0, weights=done)
    if not _core.all_finite(params):
        _diverged(params, backup, epoch)
    return sum(r[0] for r in results), sum(r[1] for r in results)


def split_threads(spec, n_threads: int) -> int:
    """How many threads the split kernel uses for ``n_threads`` asked (1 means serial).

    No more than the cores this process may use, and enough work per thread and row to pay for the row's barrier
    (a cross-core round trip, under a microsecond): each thread owns at least ``SPLIT_UNITS`` units of the first
    hidden layer and ``SPLIT_MIN_MACS`` of its multiply-adds, and its slice is at least half the work of the
    layers past the first, which every thread computes itself. (On the 16-core run of bench/threads.py: 784-256-10
    was fastest at 8 threads, 16 slower; large, whose 512 x 512 second layer every thread computes, at 2-4.)
    ``CLAMP_TO_CORES = False`` lifts all three limits but the units (tests oversubscribe with it). The reference
    kernel has no split kernel (af_split_rows refuses it): it trains on one thread.
    """
    if spec.n_layers < 2 or spec.isa == _core.af_isa.AF_ISA_REFERENCE:
        return 1
    k = min(n_threads, spec.first_width // SPLIT_UNITS)
    if CLAMP_TO_CORES:
        first = spec.n_inputs * spec.first_width
        upper = spec.n_params - (spec.n_inputs + 1) * spec.first_width
        k = min(k, usable_cores(), first // SPLIT_MIN_MACS, max(1, 2 * first // max(upper, 1)))
    return max(1, k)


#: the split kernel's own accounting of its last epoch (bench/threads.py): per thread, the time counter's ticks of
#: the whole call, of waiting at the barriers and of the layers past the first (zeros without a counter)
last_split_ticks = None


def split_epoch(spec, params, velocity, backup, bufs: ThreadBuffers, X, Y, order, sgd: SGD, epoch: int,
                pool: ThreadPoolExecutor, W=None) -> tuple[float, int]:
    """One per-sample epoch on ``len(bufs.works)`` threads with the split kernel (csrc/af_split.inc).

    The threads train the rows in ``order`` one at a time, as one thread would: each owns a slice of the first
    hidden layer's units. ``bufs.replicas``/``vreplicas`` (the latter with momentum only) and ``works`` hold one
    buffer per thread, ``bufs.hbuf`` the first hidden layer's outputs they share. Returns (summed loss, rows
    classified right).
    """
    backup[...] = params
    replicas, vreplicas, works, hbuf = bufs.replicas, bufs.vreplicas, bufs.works, bufs.hbuf
    lr, mu, wd, nest = sgd.step
    k = len(works)
    order = np.ascontiguousarray(order)
    ctl = _core.aligned_zeros(_core.split_ctl_len(k), np.int64)   # one cache line per thread
    ctl[_core.SPLIT_CTL_SPIN] = SPIN if k <= usable_cores() else 0
    futures = []
    try:
        # submitted inside the try: a Ctrl-C (or a thread that cannot start) between two submits leaves threads
        # that wait at the first barrier for threads that will never come, which only ABORT releases
        for t in range(k):
            futures.append(pool.submit(_pinned, t, _core.split_thread, spec, params, velocity, replicas[t],
                                       vreplicas[t] if mu > 0 else replicas[t], works[t], hbuf, ctl, X, Y, order,
                                       t, k, lr, mu, wd, nest, W))
        # wait for the first failure, not for thread 0 first: a thread that fails before its first barrier
        # leaves the others (thread 0 included) waiting for it until ABORT is set below
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                f.result()   # raises it, into the cleanup below
        results = [f.result() for f in futures]
    except BaseException as exc:
        # Ctrl-C: the threads stop together after the row in progress, every update whole. Any other failure
        # (a thread that could not start, or was never submitted): the others stop waiting for it, possibly
        # mid-row.
        torn = len(futures) < k or not isinstance(exc, KeyboardInterrupt)
        ctl[_core.SPLIT_CTL_STOP] = 1
        if torn:
            ctl[_core.SPLIT_CTL_ABORT] = 1
        for f in futures:
            try:
                f.result()
            except BaseException:   # noqa: B036 -- the first one, re-raised below, is the one to report
                torn = True
        if torn or not _core.all_finite(params):
            params[...] = backup
        raise
    global last_split_ticks
    last_split_ticks = _core.split_ticks(ctl, k)
    bad = results[0][3]
    if bad >= 0:
        _diverged(params, backup, epoch, order[bad])
    if not _core.all_finite(params):
        _diverged(params, backup, epoch)
    return results[0][0], results[0][1]


def split_batch_epoch(spec, params, velocity, backup, grads, X, Y, order, sgd: SGD, epoch: int,
                      pool: ThreadPoolExecutor, W=None) -> tuple[float, int]:
    """One mini-batch epoch with every batch's gradient summed by ``len(grads)`` threads.

    ``grads`` holds one zeroed (n_params,) buffer per thread; they are left zeroed. Returns (summed loss,
    rows classified right).
    """
    backup[...] = params
    batch_size = sgd.batch_size
    stop = threading.Event()
    n, k = order.shape[0], len(grads)
    total, correct = 0.0, 0
    for start in range(0, n, batch_size):
        end = min(start + batch_size, n)
        cuts = np.linspace(start, end, k + 1).astype(np.int64)
        try:
            futures = _submit_all(pool, stop, [(_core.gradient_shard, spec, params, X, Y, order, int(cuts[i]),
                                                int(cuts[i + 1]), grads[i], stop, W) for i in range(k)])
            results = _finish(futures, stop, params, backup)
        except BaseException:
            for g in grads:
                g[...] = 0
            raise
        bad = [r[2] for r in results if r[2] >= 0]
        if bad:
            for g in grads:
                g[...] = 0
            _diverged(params, backup, epoch, order[bad[0]])
        for g in grads[1:]:
            grads[0] += g
            g[...] = 0
        _core.apply_gradient(params, velocity, grads[0], end - start, *sgd.step)
        grads[0][...] = 0
        total += sum(r[0] for r in results)
        correct += sum(r[1] for r in results)
    if not _core.all_finite(params):
        _diverged(params, backup, epoch)
    return total, correct


class ThreadBuffers:
    """The per-thread buffers one fit's mode needs, from the network's ``Workers`` (kept from one fit to the next).

    ``grads``: gradients (mini-batches); ``copies``/``starts``: weight copies and their starting points (merged
    training); ``vcopies``: their velocities (merged, momentum); ``replicas``/``vreplicas``/``works``: the split
    kernel's replicas of the layers past the first (and their velocities) and workspaces; ``hbuf``: the first
    hidden layer's outputs that the split kernel's threads share. A mode's unused lists are empty.
    """

    def __init__(self, mode: str, workers: Workers, spec, threads: int, sgd: SGD, dtype) -> None:
        merged = mode == "merged"

        def per_thread(name, wanted, fill=None, length=spec.n_params):
            if not wanted:
                return []
            out = workers.buffers(name, threads, length, dtype)
            if fill is not None:
                for buf in out:
                    buf[...] = fill
            return out
        self.grads = per_thread("grads", mode == "batch" or (merged and sgd.batch_size > 1), 0)
        self.copies = per_thread("copies", merged)     # both set from the weights at each epoch's start
        self.starts = per_thread("starts", merged)
        self.vcopies = per_thread("velocities", merged and sgd.momentum > 0)   # set at each epoch's start
        self.replicas = per_thread("replicas", mode == "split")
        self.vreplicas = per_thread("vreplicas", mode == "split" and sgd.momentum > 0)
        works = per_thread("works", mode == "split", length=_core.split_workspace_len(spec) + 32)
        self.works = [w[16:] for w in works]   # 64 bytes on each side: no cache line shared by two threads
        self.hbuf = _core.aligned_zeros(_core.split_hbuf_len(spec), dtype) if mode == "split" else None


class EpochRunner:
    """Trains the buffers of one fit's epochs in its mode: the one place that dispatches to the runners above.

    Built once per fit (after ``choose``), with the network's ``_core.Engine`` (its weights, velocity and backup)
    and its gradient buffer for serial mini-batches; ``run_buffer`` trains one buffer of rows in a given order.
    """

    def __init__(self, mode: str, threads: int, spec, engine, grad, workers: Workers, sgd: SGD,
                 sync_every: int | None = None) -> None:
        self.mode, self.threads, self.spec, self.engine, self.grad = mode, threads, spec, engine, grad
        self.sync_every = sync_every
        self._workers = workers
        self.pool = workers.get(threads) if threads > 1 else None
        self.bufs = ThreadBuffers(mode, workers, spec, threads, sgd, grad.dtype) if threads > 1 else None

    def run_buffer(self, X, Y, order, sgd: SGD, epoch: int, W=None, between=None) -> tuple[float, int]:
        """Train rows ``order`` of X, Y (weights W) once with ``sgd`` (no batch larger than the rows).

        Returns (summed loss, rows classified right). ``between``: serial training's call between chunks.
        """
        sgd = sgd.for_rows(X.shape[0])
        e, spec, mode, pool = self.engine, self.spec, self.mode, self.pool
        if mode == "split":
            return split_epoch(spec, e.params, e.velocity, e.backup, self.bufs, X, Y, order, sgd, epoch, pool, W)
        if mode == "hogwild":
            return hogwild_epoch(spec, e.params, e.velocity, e.backup, X, Y, order, self.threads, sgd, epoch, pool, W)
        if mode == "merged":
            return merged_epoch(spec, e.params, e.velocity, e.backup, self.bufs, X, Y, order, sgd, self.sync_every,
                                epoch, pool, W)
        if mode == "batch":
            return split_batch_epoch(spec, e.params, e.velocity, e.backup, self.bufs.grads, X, Y, order, sgd, epoch,
                                     pool, W)
        return _core.train_rows(spec, e.params, e.velocity, self.grad, e.backup, X, Y, order, *sgd.step,
                                sgd.batch_size, epoch, between, W)

    def abandon(self) -> None:
        """After a failed fit: end the threads once they stop (no worker may outlive the fit that failed)."""
        if self.pool is not None:
            self._workers.close(wait=True)


def epoch_logs(total: float, correct: float, rows: int, classifier: bool) -> dict:
    """Return an epoch's reported metrics from its sums: "loss" (mean), and "accuracy" for classifier outputs.

    The one rule of ``Network.fit`` (training and validation rows) and ``annfast.dask.fit``.
    """
    logs = {"loss": total / rows}
    if classifier:
        logs["accuracy"] = correct / rows
    return logs
