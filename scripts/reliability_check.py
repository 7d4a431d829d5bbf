"""The README's "Reliability" figures, measured against a real server on 127.0.0.1 (`python app.py`, started here).

    python scripts/reliability_check.py [--out assets/report/reliability.json]

1. A full-budget batch (500 different real reviews, with titles) is sent to `/batch`. Once it is under way, three
   different reviews are compared one after another: seconds to the ratings (`/rate`) and to both titles
   (`/compare`) while the batch runs.
2. The batch is then cancelled the way a closed tab cancels it (Gradio closes the job's generator): how many of its
   reviews were done when it stopped, how many more than when it was cancelled, and seconds until a new comparison
   is answered.
3. A 10 MB file of `1,` lines (a hostile upload within the size limit) goes to `/batch`: seconds to the answer and
   the server's RSS growth meanwhile.
4. An 11 MB upload: the server's HTTP status.

Prints one JSON object, writes it to --out, and ends with PASS or FAIL (exit code 0 only on PASS): every compare
beside the batch answered within 10 s, the cancelled batch stopped within two chunks (8 titled reviews) of what
it had shown, the hostile file answered with a message, the oversized upload refused (413), the server still up.
Timings depend on the machine; compare them only on one machine.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import review_texts, rss_mb  # noqa: E402
from local_server import running_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BATCH_ROWS = 500  # the page's titled budget (CROSSLINGUAL_JOB_TITLED_ROWS default)


def timed(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "assets" / "report" / "reliability.json"))
    a = ap.parse_args()

    import httpx
    from gradio_client import Client, handle_file

    res: dict = {"batch_rows": BATCH_ROWS}
    texts = review_texts(BATCH_ROWS + 8)
    batch_texts, compares = texts[:BATCH_ROWS], texts[BATCH_ROWS:]
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "server.log", "w+") as log, \
            running_app(log=log) as (url, proc):
        client = Client(url, verbose=False)
        client.predict(compares[-1], "auto", api_name="/compare")  # warm

        # 1. compares beside a full-budget batch
        job = client.submit(None, "\n".join(t.replace("\n", " ") for t in batch_texts), "", False, api_name="/batch")
        while not any("of 500 reviews" in str(o[0]) for o in job.outputs() if o):
            time.sleep(0.2)
        rate_s, compare_s = [], []
        for text in compares[:3]:
            s, _ = timed(client.predict, text, "auto", api_name="/rate")
            rate_s.append(round(s, 2))
            s, d = timed(client.predict, text, "auto", api_name="/compare")
            assert all(d["models"][m]["title"] for m in ("en_trained", "de_finetuned")), d
            compare_s.append(round(s, 2))
        assert not job.done(), "the batch finished before the compares: nothing was measured beside it"
        res["beside_batch_rate_s"], res["beside_batch_compare_s"] = rate_s, compare_s

        # 2. the batch cancelled
        seen = max(int(m.group(1).replace(",", "")) for o in job.outputs() if o
                   for m in [re.search(r"([\d,]+) of 500 reviews", str(o[0]))] if m)
        t0 = time.perf_counter()
        job.cancel()
        stopped = None
        while stopped is None and time.perf_counter() - t0 < 300:
            log.seek(0)
            stopped = re.search(r"A table job stopped after (\d+) of 500 reviews", log.read())
            time.sleep(0.1)
        res["cancel_seen_done"] = seen
        res["cancel_stopped_after"] = int(stopped.group(1)) if stopped else None
        res["cancel_to_stop_s"] = round(time.perf_counter() - t0, 2) if stopped else None
        s, _ = timed(client.predict, compares[3], "auto", api_name="/compare")
        res["after_cancel_compare_s"] = round(s, 2)

        # 3. a hostile 10 MB file of "1," lines
        hostile = Path(tmp) / "ones.csv"
        hostile.write_bytes(b"1,\n" * (10 * 1024 * 1024 // 3 - 10))
        peak, before, done = [0.0], rss_mb(proc.pid), threading.Event()

        def watch():
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(proc.pid))
                time.sleep(0.05)

        threading.Thread(target=watch, daemon=True).start()
        s, out = timed(client.predict, handle_file(str(hostile)), "", "", True, api_name="/batch")
        done.set()
        res["hostile_10mb_answer_s"] = round(s, 2)
        res["hostile_10mb_rss_growth_mb"] = round(max(0.0, peak[0] - before), 1)
        res["hostile_10mb_message"] = str(out[0])[:300]

        # 4. over the upload limit
        r = httpx.post(url + "gradio_api/upload", files=[("files", ("big.csv", b"x" * (11 * 1024 * 1024)))],
                       timeout=120)
        res["upload_11mb_status"] = r.status_code
        res["server_alive"] = proc.poll() is None
    print(json.dumps(res, indent=2, ensure_ascii=False))
    Path(a.out).write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    rules = {"compare beside the batch within 10 s": max(res["beside_batch_compare_s"]) <= 10,
             "batch stopped within two chunks": res["cancel_stopped_after"] is not None
             and res["cancel_stopped_after"] <= res["cancel_seen_done"] + 8,
             "hostile file answered with a message": res["hostile_10mb_message"].startswith("⚠️"),
             "oversized upload refused": res["upload_11mb_status"] == 413, "server up": res["server_alive"]}
    for rule, ok in rules.items():
        print(f"{'ok  ' if ok else 'FAIL'} {rule}")
    print("PASS" if all(rules.values()) else "FAIL")
    return 0 if all(rules.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
