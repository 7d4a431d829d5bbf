"""Titles decoded one after another, then side by side, on the same reviews: does decoding together pay here?

    python scripts/titles_together.py [--app] [--n 8]

Without --app the process holds only the title generator (core/titles/llama_engine.py); with --app it holds the
app's whole engine (core/engine.py: the encoder, its ONNX Runtime sessions, the seed decoder), as the server does.
Prints both wall times and their ratio, the decodes each way, the mean time of one llama.cpp beam step (4 rows, one
review) in the one-after-another pass, and whether every title came out the same both ways (it must).
"""
from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", action="store_true", help="load the app's whole engine, not only the generator")
    ap.add_argument("--n", type=int, default=8, help="German lab reviews, titled both ways")
    a = ap.parse_args()

    from core.data import DATA_DIR, load_lab_corpus

    reviews = [r.body for r in load_lab_corpus(DATA_DIR / "reviews_de.jsonl", "lab_de")][: a.n + 1]
    if a.app:
        from core.engine import Engine

        gen = Engine().generator
    else:
        from core.names import MAIN_MODELS
        from core.titles.llama_engine import LlamaTitles

        models = ROOT / "assets" / "models"
        gen = LlamaTitles({n: models / n for n in MAIN_MODELS})
    steps = [0.0, 0]
    decode = gen._lib.llama_decode

    def timed_decode(ctx, batch):
        t = time.perf_counter()
        out = decode(ctx, batch)
        if batch.n_tokens == 4:  # one review's four beams
            steps[0] += time.perf_counter() - t
            steps[1] += 1
        return out

    gen._lib.llama_decode = timed_decode
    gen.titles(reviews[-1])  # warm-up
    texts = reviews[: a.n]
    d0, t = gen.room.stats.decodes, time.perf_counter()
    alone = [gen.titles(x) for x in texts]
    one_by_one, d1 = time.perf_counter() - t, gen.room.stats.decodes
    step_ms = 1000 * steps[0] / max(1, steps[1])
    together: list = [None] * len(texts)

    def one(i: int) -> None:
        together[i] = gen.titles(texts[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(texts))]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    side, d2 = time.perf_counter() - t, gen.room.stats.decodes
    print(f"{'app engine' if a.app else 'generator only'}, {len(texts)} reviews, {gen.slots} side by side at most")
    print(f"one after another: {one_by_one:.2f} s, {d1 - d0} decodes, a 4-row beam step {step_ms:.1f} ms")
    print(f"side by side:      {side:.2f} s, {d2 - d1} decodes: x{one_by_one / side:.2f}")
    print("titles identical both ways:", together == alone)
    if together != alone:
        sys.exit(1)


if __name__ == "__main__":
    main()
