"""Classroom load: N concurrent clients x M comparisons against a real server on 127.0.0.1, R rounds.

    python scripts/load_test.py [--clients 30] [--requests 10] [--rounds 1] [--with-batch] [--concurrency-ratio]
                                [--url http://127.0.0.1:7860/ [--pid PID]]

Each request does what the page does for a student: `/rate` (the ratings, shown at once), then `/compare` (the
whole answer with both main titles). It records the time to the ratings and the time to both titles. An answer
without both ratings, or without both main titles, or with a title error, is a failure. Every request sends a
different real review (the shipped English and German reviews and parallel pairs and the page's examples in 11
languages, interleaved), so the server's answer cache cannot flatter the figures. Against a server without
`/rate` (the code before the two-step page) the ratings arrive with the titles, and both times are `/compare`'s.

Without --url it starts `python app.py` on a free loopback port itself and watches that server's RSS (with --url,
give the server's --pid to watch it). Each round runs the load with fresh clients and prints failures, the
ratings' and the titles' p50/p95, throughput in comparisons with titles per second, the server's peak RSS during
the round and its RSS at the end of the round. `--with-batch` also sends one pasted batch of 40 reviews with titles
at the start of every round (the batch's own time is printed; it must finish, and the clients' figures show whether
it starved them). `--concurrency-ratio` ends with 12 different reviews compared one after another, then 12 others
all at once, on the same server, and prints the ratio of their rates.

The last line is PASS or FAIL: no request fails, peak RSS stays under --max-rss-mb (2500), and the end-of-round RSS
grows by at most --max-growth-mb (100 MB) from round 1 to round R. Round 1 absorbs the one-off warm-up
allocations, so growth after it means memory kept per request. Exit code 0 only on PASS.

Bounded: a fixed request count and a hard time limit per round (--time-limit, seconds): a request still unanswered
when the round's time is up counts as an error, and the run ends there.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from local_server import running_app  # noqa: E402

from core.names import MAIN_MODELS  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RATIO_N = 12  # --concurrency-ratio: reviews one after another, then as many at once


def review_pool() -> list[str]:
    """Every distinct shipped review text, languages interleaved: English and German reviews, both sides of the
    parallel pairs, and the page's examples (11 languages)."""
    def lines(name: str) -> list[dict]:
        return [json.loads(x) for x in (ROOT / "assets" / "data" / name).read_text(encoding="utf-8").splitlines()]

    en = [r["body"] for r in lines("reviews_en.jsonl")]
    de = [r["body"] for r in lines("reviews_de.jsonl")]
    pairs = [t for r in lines("parallel_en_de.jsonl") for t in (r["en_body"], r["de_body"])]
    examples = [e["text"] for e in json.loads((ROOT / "assets" / "examples" / "examples.json").read_text("utf-8"))]
    mixed = [t for group in zip(en, de) for t in group]
    step = max(1, len(mixed) // max(1, len(examples)))
    for i, t in enumerate(examples):  # spread the other languages through the list
        mixed.insert(i * (step + 1), t)
    return list(dict.fromkeys(mixed + pairs))


def review_texts(n: int, offset: int = 0) -> list[str]:
    """n different reviews; past the pool's end, two of its reviews joined (still different texts)."""
    pool = review_pool()
    out = []
    for k in range(offset, offset + n):
        i, lap = k % len(pool), k // len(pool)
        out.append(pool[i] if lap == 0 else f"{pool[i]} {pool[(i + 37 * lap) % len(pool)]}")
    return out


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
    ap.add_argument("--with-batch", action="store_true",
                    help="also send one pasted batch of 40 reviews with titles at the start of every round")
    ap.add_argument("--concurrency-ratio", action="store_true",
                    help=f"end with {RATIO_N} comparisons one after another vs {RATIO_N} at once, and print the ratio")
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


@dataclass
class Round:
    """One round's measurements: per answered request the seconds to its ratings and to both its titles."""

    to_ratings: list[float] = field(default_factory=list)
    to_titles: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    timed_out: bool = False
    batch: str = ""


def answer_problem(d: dict, titles: bool) -> str | None:
    """Why an answer is not what a student should see (None when it is): a missing rating, or with `titles` a
    missing or failed main title."""
    for m in MAIN_MODELS:
        model = (d.get("models") or {}).get(m) or {}
        if not model.get("stars"):
            return f"no rating from {m}: {d.get('message')}"
        if titles and (not model.get("title") or model.get("error")):
            return f"no title from {m}: {model.get('error') or d.get('message')}"
    return None


def has_rate(url: str) -> bool:
    from gradio_client import Client

    c = Client(url, verbose=False)
    try:
        return "/rate" in c.view_api(print_info=False, return_format="dict")["named_endpoints"]
    finally:
        c.close()


def compare_like_the_page(c, text: str, two_step: bool, timeout: float) -> tuple[float, float]:
    """(seconds to the ratings, seconds to both titles) for one review; raises ValueError on a bad answer."""
    t = time.perf_counter()
    if two_step:
        problem = answer_problem(c.submit(text, "auto", api_name="/rate").result(timeout=timeout), titles=False)
        if problem:
            raise ValueError(problem)
    to_ratings = time.perf_counter() - t
    d = c.submit(text, "auto", api_name="/compare").result(timeout=max(1.0, timeout - to_ratings))
    problem = answer_problem(d, titles=True)
    if problem:
        raise ValueError(problem)
    to_titles = time.perf_counter() - t
    return (to_ratings if two_step else to_titles), to_titles


def one_round(a, url: str, texts: list[str], two_step: bool) -> Round:
    """One load round with fresh clients; client i sends texts[i * requests + j]."""
    from gradio_client import Client

    deadline = time.time() + a.time_limit
    out = Round()
    timed_out = threading.Event()
    lock = threading.Lock()

    def client(i: int) -> None:
        try:
            c = Client(url, verbose=False)
        except Exception as exc:  # noqa: BLE001 - count, do not crash the run
            with lock:
                out.errors.extend([f"connect: {exc!r}"[:200]] * a.requests)
            return
        try:
            for j in range(a.requests):
                left = deadline - time.time()
                if left <= 0 or timed_out.is_set():
                    with lock:
                        out.errors.extend(["time limit"] * (a.requests - j))
                    timed_out.set()
                    return
                try:
                    r, t = compare_like_the_page(c, texts[i * a.requests + j], two_step, left)
                    with lock:
                        out.to_ratings.append(r)
                        out.to_titles.append(t)
                except FutureTimeout:
                    timed_out.set()
                    with lock:
                        out.errors.extend(["time limit"] * (a.requests - j))
                    return
                except Exception as exc:  # noqa: BLE001 - count, do not crash the run
                    with lock:
                        out.errors.append(repr(exc)[:200])
        finally:
            c.close()

    def batch() -> None:
        """One visitor's pasted batch of 40 reviews with titles, while the class compares."""
        c = Client(url, verbose=False)
        t = time.perf_counter()
        try:
            pasted = "\n".join(" ".join(r.split()) for r in review_texts(40, offset=5000))  # one review a line
            message, *_ = c.submit(None, pasted, "", False, api_name="/batch").result(
                timeout=max(1.0, deadline - time.time()))
            ok = "40 review" in str(message)
            out.batch = f"batch of 40 with titles: {time.perf_counter() - t:.1f} s" + ("" if ok else f" ({message})")
            if not ok:
                with lock:
                    out.errors.append(f"batch: {message}"[:200])
        except Exception as exc:  # noqa: BLE001
            with lock:
                out.errors.append(f"batch: {exc!r}"[:200])
        finally:
            c.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.clients + 1) as pool:
        side = pool.submit(batch) if a.with_batch else None
        list(pool.map(client, range(a.clients)))
        out.wall = time.perf_counter() - t0  # the class's time; the batch may go on after it
        if side is not None:
            side.result()
    out.timed_out = timed_out.is_set()
    return out


def p50_p95(xs: list[float]) -> str:
    q = sorted(xs)
    return f"{statistics.median(q):.2f} / {q[math.ceil(0.95 * len(q)) - 1]:.2f} s"


def concurrency_ratio(url: str, offset: int) -> float:
    """Comparisons per second with RATIO_N different reviews sent at once, over the rate with RATIO_N others sent
    one after another (the same server, whole answers with titles)."""
    from gradio_client import Client

    texts = review_texts(2 * RATIO_N, offset=offset)
    c = Client(url, verbose=False)
    t = time.perf_counter()
    for text in texts[:RATIO_N]:
        compare_like_the_page(c, text, False, 600)
    one_by_one = RATIO_N / (time.perf_counter() - t)
    c.close()
    clients = [Client(url, verbose=False) for _ in range(RATIO_N)]
    t = time.perf_counter()
    with ThreadPoolExecutor(RATIO_N) as pool:
        list(pool.map(lambda ct: compare_like_the_page(ct[0], ct[1], False, 600), zip(clients, texts[RATIO_N:])))
    at_once = RATIO_N / (time.perf_counter() - t)
    for cl in clients:
        cl.close()
    print(f"concurrency: {RATIO_N} different reviews one after another {one_by_one:.2f} comparisons/s, "
          f"{RATIO_N} at once {at_once:.2f} comparisons/s: x{at_once / one_by_one:.2f}", flush=True)
    return at_once / one_by_one


def run(a, url: str, pid: int | None) -> int:
    watch = RssWatch(pid)
    n = a.clients * a.requests
    two_step = has_rate(url)
    print(f"server {url}: " + ("two steps (/rate, then /compare)" if two_step else
                               "one step (/compare only: the ratings arrive with the titles)"), flush=True)
    texts = review_texts(n * a.rounds)
    peaks: list[float] = []
    ends: list[float] = []
    n_errors = 0
    timed_out = server_gone = False
    for r in range(1, a.rounds + 1):
        watch.reset()
        res = one_round(a, url, texts[(r - 1) * n: r * n], two_step)
        timed_out = res.timed_out
        n_errors += len(res.errors)
        line = f"round {r}/{a.rounds}: requests {n}  ok {len(res.to_titles)}  failed {len(res.errors)}"
        if res.to_titles:
            line += f"  ratings p50/p95 {p50_p95(res.to_ratings)}  titles p50/p95 {p50_p95(res.to_titles)}"
        line += f"  throughput {len(res.to_titles) / res.wall:.2f} comparisons with titles/s over {res.wall:.1f} s"
        if pid:
            time.sleep(2)  # let the server drop the finished sessions before reading its RSS
            peaks.append(max(watch.peak, rss_mb(pid)))
            ends.append(rss_mb(pid))
            line += f"  server RSS peak {peaks[-1]:.0f} MB, end {ends[-1]:.0f} MB"
            server_gone = not ends[-1]
        print(line, flush=True)
        if res.batch:
            print("  " + res.batch, flush=True)
        for e in res.errors[:5]:
            print("  error:", e, flush=True)
        if timed_out:
            print(f"round {r} hit the time limit ({a.time_limit:.0f} s): stopping", flush=True)
            break
        if server_gone:
            print(f"the server (pid {pid}) is gone after round {r}: stopping", flush=True)
            break
    if a.concurrency_ratio and not (timed_out or server_gone):
        concurrency_ratio(url, offset=n * a.rounds)
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
