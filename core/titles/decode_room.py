"""A waiting room for llama.cpp decodes: reviews being titled at the same time share each step.

Why: one review's beam search feeds llama.cpp 4 rows per step, and at 4 rows both the layers (about 5 ms a row on
2 cores) and the output layer (one read of its 168 MB table per call) cost the most per row. Visitors who wait
for titles at the same time can share that work: every review's step goes into one decode per model, and all
its rows into one product of the output layer.

How: a review's decoding is a `Program`, a generator that yields the llama.cpp work it needs next (a `Request`)
and is sent that work's scores (its prompt, then `generator.decode_steps`). One worker thread runs every program
in the room: it gives each a slot of the cache, gathers their pending requests, runs the oldest request's adapter
for every request that uses it in one decode, and sends each program its scores. Everything, llama.cpp and the
beam search's PyTorch steps alike, runs on that one thread: several threads each calling PyTorch and llama.cpp
would each keep their own OpenMP workers spinning, and on 2 cores those steal the decode's.

The cache keeps one stream per sequence (llama.cpp's non-unified cache), so a row's sums are the same whatever
else is in the decode: a review's titles do not depend on its company (tests/test_decode_room.py checks it,
title for title).

What is shared, measured on 2 cores (AMD EPYC, the shipped AVX2 build): llama.cpp runs a decode over such a cache
in micro-batches of sequences numbered one after another, and a slot's spare sequence sits between its beams and
the next slot's, so each review's rows are a micro-batch of their own, as when it is alone. Reviews decoded together
share the call and the output layer's product (ONNX Runtime, 4 rows 6.0 ms, 16 rows 12.0 ms), not the layers' work.
Sharing the layers would not pay here either: their rows cost about 2 ms each however they are grouped (4, 8 and 16
tokens of one sequence: 9.4, 17.3 and 30.6 ms), and numbering the slots' beams one after another, so that adjacent
reviews share micro-batches, took 8 reviews' titles from 4.69 to 4.35 s but changed titles: a row's scores in a
micro-batch of 8 rows or more differ from its scores in one of 4 (by up to 1.95 in a logit), the same in any
company of 8 or more."""
from __future__ import annotations

import threading
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Generator

import numpy as np


@dataclass(eq=False)
class Request:
    """One program's llama.cpp work for one step: `tokens` at `positions` into sequences `seqs`, with `adapter`
    (None: the plain layers). `before` runs the slot's cache operations (clearing it, copying beams) just before
    the decode, `after` right after it (saving a review's cache). `want`: the indices of `tokens` whose
    next-token scores the program is sent."""

    adapter: str | None
    tokens: list[int]
    positions: list[int]
    seqs: list[int]
    want: list[int]
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None
    scores: np.ndarray | None = None


Program = Generator[Request, "np.ndarray | None", object]


@dataclass(eq=False)
class _Job:
    make: Callable[[int], Program]  # the program, given its slot number
    done: threading.Event = field(default_factory=threading.Event)
    result: object = None
    error: BaseException | None = None
    program: Program | None = None
    slot: int = -1
    asked: Request | None = None


@dataclass
class RoomStats:
    """What the room has done: the tests and the bench read whether reviews really shared decodes."""

    decodes: int = 0
    most_programs: int = 0  # the most programs one decode served


class DecodeRoom:
    """Up to `slots` programs decoded side by side. `run(adapter, requests)` is the engine's one decode for
    them all; `capacity`: the most tokens in one decode."""

    def __init__(self, run: Callable[[str | None, list[Request]], None], slots: int, capacity: int):
        # the engine's method, weakly: the worker must not keep an engine nobody uses (and its cache) alive
        self._run_ref = weakref.WeakMethod(run) if hasattr(run, "__self__") else (lambda: run)
        self.slots, self.capacity = slots, capacity
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._closed = False
        self.stats = RoomStats()
        self._worker = threading.Thread(target=self._serve, name="title-decodes", daemon=True)
        self._worker.start()

    def run(self, make: Callable[[int], Program]):
        """Run the program `make(slot)` among the others and return what it returns (or raise what it raised)."""
        job = _Job(make)
        with self._cond:
            if self._closed:
                raise RuntimeError("the title generator is closed")
            self._queue.append(job)
            self._cond.notify_all()
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    # ------------------------------------------------------------------ the worker
    def _advance(self, job: _Job, scores) -> None:
        """Send `job`'s program its scores; it asks for its next request, or ends."""
        try:
            job.asked = job.program.send(scores) if job.asked is not None else next(job.program)
            if len(job.asked.tokens) > self.capacity:
                raise ValueError(f"{len(job.asked.tokens)} tokens in one step, more than the {self.capacity} a "
                                 "decode holds")
            return
        except StopIteration as end:
            job.result = end.value
        except BaseException as exc:  # noqa: BLE001 - this review's error is its caller's, not the room's
            job.error = exc
        job.asked = None
        self._finish(job)

    def close(self) -> None:
        """Stop the worker once the programs in the room are done; programs still queued are told."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=60)

    @staticmethod
    def _finish(job: _Job) -> None:
        """Wake the caller; drop the program and its maker (they hold the engine)."""
        job.make = job.program = job.asked = None
        job.done.set()

    def _serve(self) -> None:
        active: list[_Job] = []  # in arrival order
        free = list(range(self.slots))
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or active or self._closed, timeout=5)
                if not active and (self._closed or self._run_ref() is None):
                    for job in self._queue:
                        job.error = RuntimeError("the title generator is closed")
                        self._finish(job)
                    self._queue.clear()
                    self._closed = True
                    return
                admitted = []
                while self._queue and free:
                    job = self._queue.popleft()
                    job.slot = free.pop(0)
                    admitted.append(job)
            for job in admitted:  # each new program runs to its first request
                active.append(job)
                try:
                    job.program = job.make(job.slot)
                except BaseException as exc:  # noqa: BLE001
                    job.error = exc
                    self._finish(job)
                    continue
                self._advance(job, None)
            self._step([j for j in active if not j.done.is_set()])
            for job in [j for j in active if j.done.is_set()]:
                active.remove(job)
                free.append(job.slot)

    def _step(self, waiting: list[_Job]) -> None:
        """One decode: the oldest request's adapter, for every waiting program that asks for it."""
        if not waiting:
            return
        adapter, group, size = waiting[0].asked.adapter, [], 0
        for job in waiting:
            if job.asked.adapter == adapter and size + len(job.asked.tokens) <= self.capacity:
                group.append(job)
                size += len(job.asked.tokens)
        ready = []
        for job in group:  # one slot's failing cache operation fails that review only
            try:
                if job.asked.before is not None:
                    job.asked.before()
                ready.append(job)
            except BaseException as exc:  # noqa: BLE001
                job.program.close()
                job.error, job.asked = exc, None
                self._finish(job)
        if not ready:
            return
        try:
            run = self._run_ref()
            if run is None:
                raise RuntimeError("the title generator is closed")
            run(adapter, [j.asked for j in ready])
            del run
            for job in ready:
                if job.asked.after is not None:
                    job.asked.after()
        except BaseException as exc:  # noqa: BLE001 - every review in this decode gets the error; the room goes on
            for job in ready:
                job.program.close()
                job.error, job.asked = exc, None
                self._finish(job)
            return
        self.stats.decodes += 1
        self.stats.most_programs = max(self.stats.most_programs, len(ready))
        for job in ready:
            self._advance(job, job.asked.scores)
