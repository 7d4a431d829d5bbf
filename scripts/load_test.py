"""Classroom load: N concurrent clients x M compares against a real server on 127.0.0.1, R rounds.

    python scripts/load_test.py [--clients 30] [--requests 10] [--rounds 1] [--url http://127.0.0.1:7860/ [--pid PID]]

Without --url it starts `python app.py` on a free loopback port itself and watches that server's RSS
(with --url, give the server's --pid to watch it). Each round runs the same load with fresh clients and
prints errors, p50/p95 latency, throughput, the server's peak RSS during the round and its RSS at the
end of the round. The last line is PASS or FAIL against issue #5's rules: no request fails, peak RSS
stays under --max-rss-mb (2500), and the end-of-round RSS grows by at most --max-growth-mb (100 MB,
about 6% of a 1.6 GB server) from round 1 to round R. Round 1 absorbs the one-off warm-up allocations,
so growth after it means memory kept per request. Exit code 0 only on PASS.

Bounded: a fixed request count and a hard time limit per round (--time-limit, seconds): a request
still unanswered when the round's time is up counts as an error, and the run ends there.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from local_server import running_app  # noqa: E402

from core.names import MAIN_MODELS  # noqa: E402

TEXTS = [
    "Das Produkt ist super, ich würde es jederzeit wieder kaufen.",
    "Terrible quality, it broke after two days. Never again.",
    "Très bonne machine à pain, simple à utiliser.",
    "最高の商品です。また買います。",
    "Leider nach zwei Wochen kaputt. " * 20,
    "Works fine for the price, nothing special but does the job well enough for daily use.",
]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=30)
    ap.add_argument("--requests", type=int, default=10, help="compares per client per round")
    ap.add_argument("--rounds", type=int, default=1, help="run the same load this many times against one server")
    ap.add_argument("--url", help="an already running server (default: start `python app.py`)")
    ap.add_argument("--pid", type=int, help="with --url: the server's process id, to watch its RSS")
    ap.add_argument("--time-limit", type=float, default=1800, help="hard limit per round, seconds")
    ap.add_argument("--max-rss-mb", type=float, default=2500, help="rule: server peak RSS stays below this")
    ap.add_argument("--max-growth-mb", type=float, default=100,
                    help="rule: end-of-round RSS grows at most this much from round 1 to the last round")
    a = ap.parse_args()
    if a.rounds < 1 or a.clients < 1 or a.requests < 1:
        ap.error("--rounds, --clients and --requests must be at least 1")
    if a.url:
        return run(a, a.url, a.pid)
    with running_app({"CROSSLINGUAL_QUEUE_SIZE": str(max(64, a.clients * 2))}, timeout=300) as (url, proc):
        return run(a, url, proc.pid)


class RssWatch:
    """Samples a process's RSS every 0.5 s in a thread; `peak` is the highest since the last reset()."""

    def __init__(self, pid: int | None):
        self.pid, self.peak = pid, 0.0
        self._stop, self._lock = threading.Event(), threading.Lock()
        if pid:
            threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = rss_mb(self.pid)
            with self._lock:
                self.peak = max(self.peak, rss)
            time.sleep(0.5)

    def reset(self) -> None:
        with self._lock:
            self.peak = rss_mb(self.pid) if self.pid else 0.0

    def stop(self) -> None:
        self._stop.set()


def one_round(a, url: str) -> tuple[list[float], list[str], float, bool]:
    """One load round with fresh clients: (latencies of complete answers, errors, wall seconds, timed out)."""
    from gradio_client import Client

    deadline = time.time() + a.time_limit
    lat: list[float] = []
    errors: list[str] = []
    timed_out = threading.Event()
    lock = threading.Lock()

    def client(i: int) -> None:
        try:
            c = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - count, do not crash the run
            with lock:
                errors.extend([f"connect: {exc!r}"[:200]] * a.requests)
            return
        try:
            for j in range(a.requests):
                left = deadline - time.time()
                if left <= 0 or timed_out.is_set():
                    with lock:
                        errors.extend(["time limit"] * (a.requests - j))
                    timed_out.set()
                    return
                text = TEXTS[(i + j) % len(TEXTS)]
                t = time.perf_counter()
                try:
                    d = c.submit(text, "auto", api_name="/compare").result(timeout=left)
                    ok = all(d["models"][m].get("stars") for m in MAIN_MODELS)
                    with lock:
                        (lat.append(time.perf_counter() - t) if ok else errors.append(f"incomplete: {d.get('message')}"))
                except FutureTimeout:
                    timed_out.set()
                    with lock:
                        errors.extend(["time limit"] * (a.requests - j))
                    return
                except Exception as exc:  # noqa: BLE001 - count, do not crash the run
                    with lock:
                        errors.append(repr(exc)[:200])
        finally:
            c.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.clients) as pool:
        list(pool.map(client, range(a.clients)))
    return lat, errors, time.perf_counter() - t0, timed_out.is_set()


def run(a, url: str, pid: int | None) -> int:
    watch = RssWatch(pid)
    n = a.clients * a.requests
    peaks: list[float] = []
    ends: list[float] = []
    n_errors = 0
    timed_out = server_gone = False
    for r in range(1, a.rounds + 1):
        watch.reset()
        lat, errors, wall, timed_out = one_round(a, url)
        n_errors += len(errors)
        line = f"round {r}/{a.rounds}: requests {n}  ok {len(lat)}  errors {len(errors)}"
        if lat:
            q = sorted(lat)
            line += f"  latency p50 {statistics.median(q):.2f} s  p95 {q[math.ceil(0.95 * len(q)) - 1]:.2f} s"
        line += f"  throughput {len(lat) / wall:.2f} compares/s over {wall:.1f} s"
        if pid:
            time.sleep(2)  # let the server drop the finished sessions before reading its RSS
            peaks.append(max(watch.peak, rss_mb(pid)))
            ends.append(rss_mb(pid))
            line += f"  server RSS peak {peaks[-1]:.0f} MB, end {ends[-1]:.0f} MB"
            server_gone = not ends[-1]
        print(line, flush=True)
        for e in errors[:5]:
            print("  error:", e, flush=True)
        if timed_out:
            print(f"round {r} hit the time limit ({a.time_limit:.0f} s): stopping", flush=True)
            break
        if server_gone:
            print(f"the server (pid {pid}) is gone after round {r}: stopping", flush=True)
            break
    watch.stop()

    failures = []
    if n_errors:
        failures.append(f"{n_errors} failed requests")
    if timed_out:
        failures.append("time limit reached")
    if server_gone:
        failures.append("server process gone")
    if pid and peaks and not server_gone:
        peak = max(peaks)
        print(f"server peak RSS over {len(peaks)} round(s): {peak:.0f} MB (rule: < {a.max_rss_mb:.0f} MB)")
        if peak >= a.max_rss_mb:
            failures.append(f"peak RSS {peak:.0f} MB >= {a.max_rss_mb:.0f} MB")
        if len(ends) > 1:
            growth = ends[-1] - ends[0]
            print(f"RSS growth from round 1 to round {len(ends)} (end of round): {growth:+.0f} MB "
                  f"({100 * growth / ends[0]:+.1f}%; rule: <= {a.max_growth_mb:.0f} MB)")
            if growth > a.max_growth_mb:
                failures.append(f"RSS grew {growth:.0f} MB > {a.max_growth_mb:.0f} MB")
        else:
            print("RSS growth: not measured (it needs two rounds or more)")
    elif not pid:
        print("server RSS: not measured (with --url, pass --pid to watch the server)")
    print("PASS" if not failures else "FAIL: " + "; ".join(failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    code = main()  # the server this script started is stopped by now
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait for a client thread that may still hang on a request past the time limit
