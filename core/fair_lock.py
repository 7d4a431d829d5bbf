"""First-come, first-served locks: how the engine is shared between visitors."""
from __future__ import annotations

import contextlib
import threading


class FairSlots:
    """Up to `n` holders at once, served in arrival order.

    `threading.Lock` lets the thread that releases it take it straight back, so a batch looping over chunks
    would keep a classmate's single comparison waiting until the whole batch is done. Here each waiter takes a
    ticket and is served in order: the comparison gets the next free place. `n` > 1 is for the title generator,
    which decodes that many reviews together (core/titles/decode_room.py). Not re-entrant."""

    def __init__(self, n: int = 1) -> None:
        self.n = max(1, int(n))
        self._cond = threading.Condition()
        self._next = self._serving = 0
        self._held = self._holders = 0

    def _take(self, places: int) -> None:
        with self._cond:
            ticket, self._next = self._next, self._next + 1
            self._cond.wait_for(lambda: self._serving == ticket and self._held + places <= self.n)
            self._serving += 1
            self._held += places
            self._holders += 1
            self._cond.notify_all()

    def _give(self, places: int) -> None:
        with self._cond:
            self._held -= places
            self._holders -= 1
            self._cond.notify_all()

    def __enter__(self) -> "FairSlots":
        self._take(1)
        return self

    def __exit__(self, *exc) -> None:
        self._give(1)

    @contextlib.contextmanager
    def exclusive(self):
        """Every place at once, in turn: for swapping what the holders use (a model added, a generator swapped)."""
        places = self.n
        self._take(places)
        try:
            yield self
        finally:
            self._give(places)

    def resize(self, n: int) -> None:
        """Take `n` places from now on (the generator's, once it is loaded)."""
        with self._cond:
            self.n = max(1, int(n))
            self._cond.notify_all()

    def queued(self) -> int:
        """How many hold or wait for a place now: what a visitor is told is ahead of them."""
        with self._cond:
            return self._next - self._serving + self._holders


class FairLock(FairSlots):
    """One holder at a time, in arrival order: the encoder's lock."""

    def __init__(self) -> None:
        super().__init__(1)
