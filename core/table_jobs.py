"""Table jobs (Batch, "score your own data") on a server a class shares: one runs, a few wait, the rest are told at
once, and a job stops at its next chunk when its visitor leaves.

Why here and not in Gradio's queue: a job waiting in the queue holds one of its places, so a handful of big uploads
would crowd out every classmate's comparison. Jobs are admitted here instead, at once or with a message, and never
wait in the queue. Why a thread: the page's function is a generator that hands Gradio a tick per chunk; when the tab
closes, Gradio closes that generator, and its `finally` sets the flag the job checks between chunks.
"""
from __future__ import annotations

import logging
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

from .budget import CLI_HINT
from .data import DataError
from .settings import current

log = logging.getLogger(__name__)
T = TypeVar("T")
Progress = Callable[[int, int], None]


class JobBusy(DataError):
    """Every place for a table job is taken: the visitor is told at once, with what to do instead."""


class JobStopped(Exception):
    """Raised inside a job at a chunk boundary once its visitor has gone."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"stopped after {done} of {total} reviews")
        self.done, self.total = done, total


@dataclass(frozen=True)
class Tick:
    """How far a job is: reviews done of total, or still waiting for the job ahead of it."""

    done: int = 0
    total: int = 0
    waiting: bool = False


class JobSlots:
    """`running` jobs at a time and `waiting` more in line; a job past that is refused (JobBusy)."""

    def __init__(self, running: int = 1, waiting: int = 2) -> None:
        self.running, self.waiting = max(1, running), max(0, waiting)
        self._run = threading.Semaphore(self.running)
        self._lock = threading.Lock()
        self.admitted = 0

    def reserve(self) -> None:
        with self._lock:
            if self.admitted >= self.running + self.waiting:
                raise JobBusy(f"{self.admitted} table jobs are running or waiting on this shared server, the most it "
                              f"takes. Try again in a few minutes, or {CLI_HINT}.")
            self.admitted += 1

    def release(self) -> None:
        with self._lock:
            self.admitted -= 1

    @contextmanager
    def turn(self, stop: threading.Event) -> Iterator[bool]:
        """Wait for a running place (False if the visitor left while waiting); gives back the reservation too."""
        got = False
        try:
            while not (got := self._run.acquire(timeout=0.2)):
                if stop.is_set():
                    break
            yield got
        finally:
            if got:
                self._run.release()
            self.release()


_slots: JobSlots | None = None
_slots_lock = threading.Lock()


def page_slots() -> JobSlots:
    """The server's one set of places (one running job, CROSSLINGUAL_JOB_WAITING waiting)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = JobSlots(1, current().job_waiting)
        return _slots


def follow(job: Callable[[Progress], T], slots: JobSlots | None = None, every: float = 1.0) -> Iterator[Tick | T]:
    """Run `job(progress)` in its own thread, yielding a Tick per chunk (and at least every `every` seconds), then
    its result; the job's own exceptions are raised here. Raises JobBusy at once when no place is free.

    Closing this generator early (Gradio does when the visitor's tab closes) sets the stop flag: the job's next
    `progress` call raises JobStopped, so the engine is free after the chunk it was running."""
    slots = slots or page_slots()
    slots.reserve()
    stop = threading.Event()
    events: queue.Queue = queue.Queue()

    def progress(done: int, total: int) -> None:
        if stop.is_set():
            raise JobStopped(done, total)
        events.put(Tick(done, total))

    def work() -> None:
        try:
            with slots.turn(stop) as got:
                if not got:
                    return
                events.put(Tick(0, 0))
                events.put(("done", job(progress)))
        except JobStopped as exc:
            log.warning("A table job %s: its visitor left", exc)
        except BaseException as exc:  # noqa: BLE001 - handed to the page's thread, which raises it
            events.put(("error", exc))

    threading.Thread(target=work, name="table-job", daemon=True).start()
    last = Tick(waiting=True)
    try:
        while True:
            try:
                item = events.get(timeout=every)
            except queue.Empty:
                yield last
                continue
            if isinstance(item, Tick):
                last = item
                yield item
                continue
            kind, value = item
            if kind == "error":
                raise value
            yield value
            return
    finally:
        stop.set()
