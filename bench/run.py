"""Speed and memory on this machine: `python -m bench [--n 1000] [--quick]`.

Prints a table and writes bench/results.json. Every ratio compares two measurements
taken in the same run on the same machine; absolute times are this machine's reading.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def texts_of_length(tokenizer, target: int, pool: list[str]) -> str:
    """About `target` tokens of real corpus reviews: the longest run of whole words, from the reviews joined
    in order, that fits."""
    words = " ".join(pool).split()
    lo, hi = 1, len(words)
    while lo < hi:  # binary search on the number of words
        mid = (lo + hi + 1) // 2
        if len(tokenizer(" ".join(words[:mid]))["input_ids"]) <= target:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


@torch.inference_mode()
def naive_one(engine, text: str) -> None:
    """What a user would write without the shared trunk or batching: per model, a full forward of the whole
    encoder, the head, and generation, one review at a time (same models, same settings)."""
    from core.generate import generate_titles
    from core.models import mean_pool

    enc = engine.encode([text])
    for n in engine.names:
        engine.peft_model.set_adapter(n)
        h = engine.bert(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
        torch.softmax(engine.heads[n].rating(mean_pool(h, enc.attention_mask)), -1)
        generate_titles(engine.heads[n].decoder, engine.tokenizer, h, enc.attention_mask, engine.settings[n],
                        enc.input_ids, engine.title_vocab[n])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000, help="reviews for the batch vs naive comparison")
    ap.add_argument("--repeats", type=int, default=25, help="comparisons per length (p50 and p95 over these)")
    ap.add_argument("--quick", action="store_true", help="n=48, 5 repeats")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    a = ap.parse_args()
    if a.quick:
        a.n, a.repeats = 48, 5

    from core import batch
    from core.data import DATA_DIR, load_lab_corpus
    from core.inference import Engine, compare

    t0 = time.perf_counter()
    engine = Engine()
    load_s = time.perf_counter() - t0
    pool = [r.body for r in load_lab_corpus(DATA_DIR / "reviews_en.jsonl", "lab_en")]
    pool += [r.body for r in load_lab_corpus(DATA_DIR / "reviews_de.jsonl", "lab_de")]
    res: dict = {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                 "python": platform.python_version(), "engine_load_s": round(load_s, 2)}
    def compare_ms(text: str) -> list[float]:
        times = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            compare(text, engine=engine)
            times.append(1000 * (time.perf_counter() - t))
        return times

    compare(pool[0], engine=engine)  # warm-up
    texts = {}
    for target in (30, 128, 400):
        text = texts[target] = texts_of_length(engine.tokenizer, target, pool[:120])
        res[f"single_tokens_{target}"] = len(engine.tokenizer(text)["input_ids"])
        times = compare_ms(text)
        res[f"single_p50_ms_{target}"] = round(statistics.median(times), 1)
        res[f"single_p95_ms_{target}"] = round(percentile(times, 0.95), 1)
    # what the "Why?" map adds to a comparison (issue 7: at most 20 ms): the Engine's projection of the pooled
    # vector and the two plot tables the page gets (core/explain.map_frame)
    from core.explain import map_frame

    text = texts[128]
    models = compare(text, engine=engine).to_dict()["models"]
    t = time.perf_counter()
    for _ in range(20):
        for n in engine.names:
            mean, comps = engine.map_projection[n]
            ((torch.zeros(1, mean.shape[0]) - mean) @ comps).tolist()
            map_frame(n, models[n]["map_xy"])
    res["map_ms_per_comparison"] = round((time.perf_counter() - t) * 1000 / 20, 2)
    # ONNX Runtime (core/ort_backend.py, on by default) against the same comparison in PyTorch
    res["runtime"] = engine.runtime
    with engine.pytorch_only():
        res["single_p50_ms_128_pytorch"] = round(statistics.median(compare_ms(text)), 1)
    # the title shortlist (core/generate.py, on by default) against full-vocabulary decoding: speed at 128
    # tokens and how often the titles are identical
    short_vocab = dict(engine.title_vocab)
    engine.title_vocab = {n: None for n in engine.names}
    res["single_p50_ms_128_full_vocab"] = round(statistics.median(compare_ms(text)), 1)
    sample = pool[::max(1, len(pool) // 32)][:32]
    def titles() -> list[str | None]:  # 8 reviews at a time: full-vocabulary decoding holds beams x 250k scores each
        return [row.get("title") for i in range(0, len(sample), 8)
                for rows in engine.run(sample[i:i + 8]).values() for row in rows]
    full = titles()
    engine.title_vocab = short_vocab
    same = [s == f for s, f in zip(titles(), full)]
    res["title_shortlist_identical_share"] = round(sum(same) / len(same), 3)
    reviews = (pool * (a.n // len(pool) + 1))[: a.n]
    read = batch.lines_table("\n".join(r.replace("\n", " ") for r in reviews))
    t = time.perf_counter()
    batch.predict_table(read, engine=engine)
    res["batch_reviews_per_s"] = round(a.n / (time.perf_counter() - t), 3)
    t = time.perf_counter()
    with engine.pytorch_only():  # the naive way runs plain PyTorch
        for r in reviews:
            naive_one(engine, r)
    res["naive_reviews_per_s"] = round(a.n / (time.perf_counter() - t), 3)
    res["batch_speedup"] = round(res["batch_reviews_per_s"] / res["naive_reviews_per_s"], 2)
    res["n_batch_reviews"] = a.n
    t = time.perf_counter()
    code = ("from core.inference import compare; import time; compare('Das Produkt ist super, jederzeit wieder!')")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
    res["cold_start_s"] = round(time.perf_counter() - t, 2)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    models = ROOT / "assets" / "models"
    res["artifacts_mb"] = round(sum(p.stat().st_size for p in models.rglob("*") if p.is_file()) / 2**20, 1)
    Path(a.out).write_text(json.dumps(res, indent=1))
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v}")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
