"""The engine's lock serves waiters in arrival order (core.fair_lock.FairLock)."""
import threading
import time

from core.fair_lock import FairLock, FairSlots


def test_a_waiting_comparison_is_served_before_a_looping_batch_takes_the_lock_again():
    lock, order = FairLock(), []
    first_chunk = threading.Event()

    def batch():
        for i in range(6):
            with lock:
                order.append(f"batch{i}")
                first_chunk.set()
                time.sleep(0.05)

    def comparison():
        first_chunk.wait()
        with lock:
            order.append("compare")

    threads = [threading.Thread(target=batch), threading.Thread(target=comparison)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert order.index("compare") <= 2, order  # after the chunk running when it arrived, not after all six
    assert sorted(order) == sorted(["compare"] + [f"batch{i}" for i in range(6)])


def test_title_slots_let_n_reviews_in_at_once_and_serve_the_rest_in_arrival_order():
    slots, inside, most, order = FairSlots(3), [0], [0], []
    guard = threading.Lock()

    def review(i):
        with slots:
            with guard:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                order.append(i)
            time.sleep(0.05)
            with guard:
                inside[0] -= 1

    threads = []
    for i in range(7):
        threads.append(threading.Thread(target=review, args=(i,)))
        threads[-1].start()
        time.sleep(0.005)  # arrival order 0..6
    for t in threads:
        t.join(timeout=10)
    assert most[0] == 3
    assert order == list(range(7))


def test_an_exclusive_holder_waits_for_every_place_and_keeps_them_all():
    slots, log = FairSlots(2), []
    held = threading.Event()

    def review():
        with slots:
            held.set()
            time.sleep(0.1)
            log.append("review done")

    def swap():
        held.wait()
        with slots.exclusive():
            log.append("swap")
            time.sleep(0.05)
            log.append("swap done")

    def late():
        time.sleep(0.03)
        with slots:
            log.append("late")

    ts = [threading.Thread(target=f) for f in (review, swap, late)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=10)
    assert log == ["review done", "swap", "swap done", "late"], log
