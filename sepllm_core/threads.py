"""How many CPU threads decode steps use: timed on the first steps of each generation, not guessed.

A decode step of a small model is hundreds of small ops, and with more than one OpenMP thread each
op ends in a barrier. The app sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads (spinning threads
made a busy 2-core machine 60-100x slower), so each barrier puts a thread to sleep and wakes it
again. Measured on the 2-core development machine, default model, 512 tokens of context:

=========================  ===========  ============
decode tok/s               1 thread     2 threads
=========================  ===========  ============
passive, idle machine      57-61        31-36
passive, other core busy   54-56        47
spinning, idle machine     57-61        64-73
spinning, other core busy  52-54        0.5
=========================  ===========  ============

(docs/BENCHMARKS.md, section 6, session 4.) Prefill (large ops) still gains from every thread
(1,451-1,609 vs 1,004 tok/s at 512 tokens). Which
count decodes fastest depends on the model size, the machine and what else runs on it, so
:class:`DecodeThreads` times the first steps of a generation with each candidate count and keeps the
fastest for the rest. The steps it times are real decode steps (no work is thrown away); only the
thread count differs between them.
"""

from __future__ import annotations

import statistics

TUNE_STEPS = 3
"""Timed steps per candidate and round."""
TUNE_ROUNDS = 2
"""Rounds over the candidates, interleaved, so a burst of load does not decide alone."""
MIN_TOKENS_TO_TUNE = 48
"""Shorter generations reuse the session's last choice instead of tuning."""


def candidates(threads: int) -> list[int]:
    """Thread counts worth timing: ``threads``, half of it and one (distinct, descending)."""
    return sorted({threads, max(1, threads // 2), 1}, reverse=True)


class DecodeThreads:
    """The thread count of each decode step of one generation.

    Parameters
    ----------
    threads : int
        The intra-op thread count when decoding starts (what prefill used).
    fixed : int, optional
        Use this count for every step, without timing.
    tune : bool
        Time the :func:`candidates` of ``threads`` on the first steps (ignored with ``fixed``
        or a single thread).

    Examples
    --------
    >>> plan = DecodeThreads(2)
    >>> [plan.threads_for(step) for step in range(plan.tuning_steps)]
    [2, 2, 2, 1, 1, 1, 2, 2, 2, 1, 1, 1]
    """

    def __init__(self, threads: int, fixed: int | None = None, tune: bool = True):
        self.threads = threads
        self.choice = fixed if fixed is not None else threads
        self.schedule: list[int] = []
        if fixed is None and tune and threads > 1:
            self.schedule = [c for _ in range(TUNE_ROUNDS) for c in candidates(threads) for _ in range(TUNE_STEPS)]
        self.seconds: dict[int, list[float]] = {}

    @property
    def tuning_steps(self) -> int:
        return len(self.schedule)

    @property
    def tuned(self) -> bool:
        """True once every timed step has been recorded."""
        return bool(self.schedule) and sum(map(len, self.seconds.values())) == len(self.schedule)

    def threads_for(self, step: int) -> int:
        """Threads for decode step ``step`` (0-based)."""
        return self.schedule[step] if step < len(self.schedule) else self.choice

    def record(self, step: int, seconds: float) -> None:
        """The forward of ``step`` took ``seconds``; after the last timed step, keep the fastest count."""
        if step >= len(self.schedule):
            return
        self.seconds.setdefault(self.schedule[step], []).append(seconds)
        if self.tuned:
            self.choice = min(self.seconds, key=lambda count: statistics.median(self.seconds[count]))

    def rates(self) -> dict[int, float]:
        """Timed steps per second by thread count (median step time), for stats and logs."""
        return {count: 1 / statistics.median(times) for count, times in self.seconds.items()
                if statistics.median(times) > 0}
