"""Classroom load: N concurrent clients x M compares against a real server on 127.0.0.1.

    python scripts/load_test.py [--clients 30] [--requests 10] [--url http://127.0.0.1:7860/]

Without --url it starts `python app.py` on a free loopback port itself and also reports the
server's peak RSS. Bounded: fixed request count and a hard time limit. Prints errors,
p50/p95 latency and throughput.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_server import running_app  # noqa: E402
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
    ap.add_argument("--requests", type=int, default=10)
    ap.add_argument("--url")
    ap.add_argument("--time-limit", type=float, default=1800)
    a = ap.parse_args()
    if a.url:
        return run(a, a.url, None)
    with running_app({"CROSSLINGUAL_QUEUE_SIZE": str(max(64, a.clients * 2))}, timeout=300) as (url, proc):
        return run(a, url, proc)


def run(a, url: str, proc) -> int:
    from gradio_client import Client

    peak = [0.0]
    stop = threading.Event()

    def watch():
        while proc and not stop.is_set():
            peak[0] = max(peak[0], rss_mb(proc.pid))
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()
    deadline = time.time() + a.time_limit
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        c = Client(url, verbose=False)
        for j in range(a.requests):
            if time.time() > deadline:
                with lock:
                    errors.append("time limit")
                return
            text = TEXTS[(i + j) % len(TEXTS)]
            t = time.perf_counter()
            try:
                d = c.predict(text, "auto", api_name="/compare")
                ok = all(d["models"][m].get("stars") for m in ("en_trained", "de_finetuned"))
                with lock:
                    (lat.append(time.perf_counter() - t) if ok else errors.append(f"incomplete: {d.get('message')}"))
            except Exception as exc:  # noqa: BLE001 - count, do not crash the run
                with lock:
                    errors.append(repr(exc)[:200])

    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.clients) as pool:
        list(pool.map(client, range(a.clients)))
    wall = time.perf_counter() - t0
    stop.set()
    n = a.clients * a.requests
    print(f"requests: {n}  ok: {len(lat)}  errors: {len(errors)}")
    if lat:
        q = sorted(lat)
        print(f"latency p50: {statistics.median(q):.2f} s  p95: {q[int(0.95 * (len(q) - 1))]:.2f} s")
    print(f"throughput: {len(lat) / wall:.2f} compares/s over {wall:.1f} s")
    if proc:
        print(f"server peak RSS: {peak[0]:.0f} MB")
    for e in errors[:5]:
        print("error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
