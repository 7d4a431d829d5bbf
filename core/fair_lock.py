"""A first-come, first-served lock: how the engine is shared between visitors."""
from __future__ import annotations

import threading


class FairLock:
    """A first-come, first-served lock for the engine.

    `threading.Lock` lets the thread that releases it take it straight back, so a batch looping over chunks
    would keep a classmate's single comparison waiting until the whole batch is done. Here each waiter takes a
    ticket and is served in order: the comparison runs after the batch's current chunk. Not re-entrant."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = self._serving = 0

    def __enter__(self) -> "FairLock":
        with self._cond:
            ticket, self._next = self._next, self._next + 1
            self._cond.wait_for(lambda: self._serving == ticket)
        return self

    def queued(self) -> int:
        """How many hold or wait for the lock now: what a visitor is told is ahead of them."""
        with self._cond:
            return self._next - self._serving

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()
