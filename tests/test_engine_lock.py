"""The engine's lock serves waiters in arrival order (core.fair_lock.FairLock)."""
import threading
import time

from core.fair_lock import FairLock


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
