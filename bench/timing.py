"""How the benchmark times things: one pinned core, a warm-up, then interleaved repetitions and their median.

A measurement is a callable ``f(count) -> seconds`` that does ``count`` units of work (rows of an epoch, or calls)
and returns the seconds its timed part took; set-up such as resetting the weights stays outside that part. This
module runs such callables, repetitions on the outside and peers on the inside, so that drift of the machine
(frequency, a neighbour's load) hits all peers alike.
"""
from __future__ import annotations

import gc
import os
import statistics
import time
from typing import Callable

Measure = Callable[[int], float]


def pin_to_one_core() -> int | None:
    """Pin this process (and the processes it starts later) to one core.

    Returns
    -------
    int or None
        The core, the last one this process may run on (core 0 tends to take more interrupts), or None where
        the OS has no ``sched_setaffinity``.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


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
