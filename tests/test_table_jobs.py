"""Table jobs on a shared server (finding 2 of the reliability issue): a job stops at its next chunk once its visitor
has gone, and jobs past the places are told at once instead of waiting in the page's queue."""
import threading
import time

import pytest

from core.data import DataError
from core.table_jobs import JobBusy, JobSlots, Tick, follow


def _chunks(n: int, seen: list[int], gate: threading.Event | None = None):
    def job(progress):
        for i in range(1, n + 1):
            if gate is not None:
                gate.wait()
            time.sleep(0.02)  # one chunk of work
            seen.append(i)
            progress(i, n)
        return "finished"
    return job


def _wait_for(cond, limit: float = 10.0) -> None:
    end = time.time() + limit
    while not cond() and time.time() < end:
        time.sleep(0.01)


def test_closing_the_job_stops_it_at_its_next_chunk_and_frees_its_place():
    slots, done = JobSlots(1, 0), []
    steps = follow(_chunks(200, done), slots)
    ticks = [s for s, _ in zip(steps, range(4))]
    at_close = max(t.done for t in ticks if isinstance(t, Tick))
    steps.close()  # what Gradio does when the tab closes
    _wait_for(lambda: slots.admitted == 0)
    assert slots.admitted == 0
    time.sleep(0.2)
    assert len(done) < 200 and len(done) <= at_close + 2, (at_close, len(done))


def test_a_job_runs_to_its_result_with_a_tick_per_chunk():
    slots, done = JobSlots(1, 0), []
    steps = list(follow(_chunks(5, done), slots))
    assert steps[-1] == "finished"
    assert [s.done for s in steps if isinstance(s, Tick) and s.total] == [1, 2, 3, 4, 5]
    assert slots.admitted == 0


def test_a_job_past_the_places_is_refused_at_once_with_what_to_do_instead():
    slots, gate = JobSlots(1, 1), threading.Event()
    first = follow(_chunks(3, [], gate), slots)
    second = follow(_chunks(3, [], gate), slots)
    next(first), next(second)  # both admitted: one runs, one waits
    with pytest.raises(JobBusy, match="python -m core predict") as refused:
        next(follow(_chunks(3, []), slots))
    assert isinstance(refused.value, DataError)  # the page shows it as a message
    assert any(isinstance(s, Tick) and s.waiting for s, _ in zip(second, range(2)))
    gate.set()
    assert list(first)[-1] == "finished" and list(second)[-1] == "finished"
    assert slots.admitted == 0


def test_a_waiting_job_whose_visitor_left_gives_its_place_back_without_running():
    slots, gate, ran = JobSlots(1, 1), threading.Event(), []
    first = follow(_chunks(2, [], gate), slots)
    second = follow(_chunks(2, ran), slots)
    next(first), next(second)
    second.close()
    gate.set()
    assert list(first)[-1] == "finished"
    _wait_for(lambda: slots.admitted == 0)
    assert slots.admitted == 0 and ran == []


def test_the_jobs_own_error_reaches_the_page():
    def broken(progress):
        raise DataError("no text column")

    with pytest.raises(DataError, match="no text column"):
        list(follow(broken, JobSlots(1, 0)))
