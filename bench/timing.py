"""How the benchmark times things: one pinned core, a warm-up, then interleaved repetitions and their median.

A measurement is a callable ``f(count) -> seconds`` that does ``count`` units of work (rows of an epoch, or calls)
and returns the seconds its timed part took; set-up such as resetting the weights stays outside that part. This
module runs such callables, repetitions on the outside and peers on the inside, so that drift of the machine
(frequency, a neighbour's load) hits all peers alike.
"""
from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
from collections.abc import Iterator
from typing import Callable

Measure = Callable[[int], float]

#: the CPUs this process could run on before ``pin_to_one_core`` (None where the OS cannot pin); the threads
#: section gives them back to its multi-threaded measurements
ALLOWED_CPUS: frozenset[int] | None = None


def pin_to_one_core() -> int | None:
    """Pin this process (and the processes it starts later) to one core.

    The CPUs it could use before are kept in ``ALLOWED_CPUS``.

    Returns
    -------
    int or None
        The core, the last one this process may run on (core 0 tends to take more interrupts), or None where
        the OS has no ``sched_setaffinity``.
    """
    global ALLOWED_CPUS
    if not hasattr(os, "sched_setaffinity"):
        return None
    ALLOWED_CPUS = frozenset(os.sched_getaffinity(0))
    core = max(ALLOWED_CPUS)
    os.sched_setaffinity(0, {core})
    return core


def available_cpus() -> int:
    """Number of CPUs this process may use when not pinned (``os.cpu_count()`` where the OS cannot pin)."""
    return len(ALLOWED_CPUS) if ALLOWED_CPUS is not None else os.cpu_count() or 1


@contextlib.contextmanager
def running_on(cpus: frozenset[int] | set[int] | None) -> Iterator[None]:
    """Let the calling thread (and the threads it starts meanwhile) run on ``cpus``, then restore its CPU set.

    Linux keeps a CPU set per thread and a new thread inherits its creator's, so the worker threads that
    annfast's ``fit(n_threads=k)`` starts inside the block may use all of ``cpus``. With ``cpus=None``, or where
    the OS cannot pin, nothing changes.
    """
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def on_cpus(measure: Measure, cpus: frozenset[int] | set[int] | None) -> Measure:
    """``measure`` run on ``cpus`` (see ``running_on``); the CPU-set changes stay outside its timed part."""
    def run(count: int) -> float:
        with running_on(cpus):
            return measure(count)
    return run


def median(values) -> float:
    """Median of a non-empty sequence of numbers."""
    return float(statistics.median(values))


def settle() -> None:
    """Collect garbage, then freeze what survives, so that the collections between repetitions stay short."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def timed(measure: Measure, count: int) -> float:
    """Run ``measure(count)`` with the garbage collector off and return its seconds."""
    gc.disable()
    try:
        return float(measure(count))
    finally:
        gc.enable()


def interleave(measures: dict[str, Measure], counts: dict[str, int], reps: int,
               warmup_counts: dict[str, int] | None = None, progress: Callable[[str], None] | None = None
               ) -> dict[str, list[float]]:
    """Warm every measurement up once, then run ``reps`` rounds, each running every measurement once.

    Parameters
    ----------
    measures : dict of str to callable
        ``f(count) -> seconds`` per peer.
    counts : dict of str to int
        Units of work per repetition, per peer.
    reps : int
        Rounds; every peer runs once per round, in the order of ``measures``.
    warmup_counts : dict of str to int, optional
        Units of work of the untimed warm-up run, per peer; defaults to ``counts``.
    progress : callable, optional
        Called with a short note after each round.

    Returns
    -------
    dict of str to list of float
        The seconds of every repetition, per peer, in order.
    """
    warmup_counts = counts if warmup_counts is None else warmup_counts
    settle()
    for key, measure in measures.items():
        timed(measure, warmup_counts[key])
    times: dict[str, list[float]] = {key: [] for key in measures}
    for rep in range(reps):
        for key, measure in measures.items():
            times[key].append(timed(measure, counts[key]))
        if progress is not None:
            progress(f"rep {rep + 1}/{reps}")
    return times


def calibrate(measure: Measure, min_seconds: float, start: int = 16, limit: int = 1 << 22) -> int:
    """Smallest power-of-two multiple of ``start`` calls whose batch takes at least ``min_seconds``.

    Also serves as the warm-up of a latency measurement.
    """
    count = start
    while count < limit and timed(measure, count) < min_seconds:
        count *= 2
    return count


def now() -> float:
    """Seconds of a monotonic high-resolution clock (for the timed part of a measurement)."""
    return time.perf_counter()
