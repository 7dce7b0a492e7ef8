"""Wall-clock budgets: the GPU machine allows 10 minutes a command, so every call stops taking on work in time."""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager


class Budget:
    """Seconds left for this call, and compile seconds spent on torch.compile's max-autotune."""

    def __init__(self, seconds: float, max_autotune_seconds: float):
        self.seconds = seconds
        self.max_autotune_seconds = max_autotune_seconds
        self.max_autotune_spent = 0.0
        self._start = time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self._start)

    def max_autotune_left(self) -> float:
        return self.max_autotune_seconds - self.max_autotune_spent

    @property
    def spent_reason(self) -> str:
        return f"time budget of this call ({self.seconds:.0f} s) spent"


@contextmanager
def time_limit(seconds: float):
    """Raises TimeoutError in the main thread after ``seconds``: a compile that would run past the command's limit
    is stopped and recorded as failed instead of taking every result of the call down with it."""
    def expire(signum, frame):
        raise TimeoutError(f"stopped after {seconds:.0f} s, the time left in this call's budget")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
