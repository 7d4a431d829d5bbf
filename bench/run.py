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
def naive_one(engine, text: str, plain=None) -> None:
    """What a user would write without the shared trunk or batching: per model, a full forward of the whole
    encoder, the head, and the seed decoder's generation, one review at a time (same models, same settings);
    with `plain` (bench/plain_generate.PlainGenerate) the generator's titles by plain `generate` too."""
    from core.models import mean_pool

    enc = engine.encode([text])
    stars = {}
    for n in engine.names:
        engine.peft_model.set_adapter(n)
        h = engine.bert(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
        probs = torch.softmax(engine.heads[n].rating(mean_pool(h, enc.attention_mask)), -1)
        stars[n] = int(probs.argmax()) + 1
        if plain is not None:
            engine.seed.title(n, h, enc.attention_mask, enc.input_ids)
    if plain is not None:
        plain.titles(text, stars=stars)


SIMD_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
              "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")


def cpu_info() -> dict:
    """The CPU the figures were read on: its model name and the vector extensions kernels can choose from."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return {"cpu_model": model, "cpu_flags": [f for f in SIMD_FLAGS if f in flags]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="reviews for the ratings-only batch vs naive comparison")
    ap.add_argument("--n-titles", type=int, default=48, help="reviews for the batch vs naive comparison with titles")
    ap.add_argument("--repeats", type=int, default=15, help="comparisons per length (p50 and p95 over these)")
    ap.add_argument("--quick", action="store_true", help="n=48, 12 with titles, 5 repeats")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    a = ap.parse_args()
    if a.quick:
        a.n, a.n_titles, a.repeats = 48, 12, 5

    from core import batch, tables
    from core.data import DATA_DIR, load_lab_corpus
    from core.answer_cache import AnswerCache
    from core.engine import Engine
    from core.inference import compare
    from core.models import stars_of

    t0 = time.perf_counter()
    engine = Engine()
    load_s = time.perf_counter() - t0
    # the bench repeats the same reviews to time them: with the answer cache on, every repeat after the first is
    # a lookup (~10 ms). Timed here is the work, so this engine keeps no answers
    engine.answers = AnswerCache(0)
    pool = [r.body for r in load_lab_corpus(DATA_DIR / "reviews_en.jsonl", "lab_en")]
    pool += [r.body for r in load_lab_corpus(DATA_DIR / "reviews_de.jsonl", "lab_de")]
    res: dict = {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                 "python": platform.python_version(), **cpu_info(), "engine_load_s": round(load_s, 2),
                 "repeats": a.repeats, "answer_cache": "off (every comparison computed)"}
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
    # ONNX Runtime (core/ort_backend.py, on by default) for the encoder against the same comparison in PyTorch
    res["runtime"] = engine.runtime
    res["device"] = engine.device  # CROSSLINGUAL_DEVICE: the GPU path has its own check, scripts/gpu_check.py
    with engine.pytorch_only():
        res["single_p50_ms_128_pytorch_encoder"] = round(statistics.median(compare_ms(text)), 1)
    # the generator's titles by plain `generate` (float32 peft model, adapter switched per model) in place of the
    # shipped path (llama.cpp on the Q4_K_M file, core/titles/llama_engine.py): same comparison otherwise
    from bench.plain_generate import PlainGenerate
    from core.titles.torch_engine import GemmaTitles

    info = engine.generator.describe()
    res["generator_engine"] = info.engine
    res["generator_output_layer"] = info.output_layer
    # llama.cpp's CPU kernels: "one CPU build" (requirements.txt's portable AVX2 build) or the dispatched variant
    res["generator_kernels"] = getattr(engine.generator, "kernels", "PyTorch")
    res["generator_review_prefill"] = ("one for both models (activated adapters)"
                                       if info.shared_review_prefill else "one per model")
    res["generator_decoding"] = info.decoding
    dirs = {n: engine.dirs[n] for n in engine.generator.names}
    plain = PlainGenerate(dirs)
    with engine.use_generator(plain):
        res["single_p50_ms_128_plain_generate"] = round(statistics.median(compare_ms(text)), 1)
    res["generate_speedup"] = round(res["single_p50_ms_128_plain_generate"] / res["single_p50_ms_128"], 2)
    sample = pool[::max(1, len(pool) // 32)][:32]
    sample_stars = [{n: stars_of(rows[0]["star_probs"]) for n, rows in engine.run([t], titles=False).items()}
                    for t in sample]  # each model's rating, for adapters whose prompt holds it
    shipped = [engine.generator.titles(t, stars=st) for t, st in zip(sample, sample_stars)]
    same_plain = [plain.titles(t, stars=st) == s for t, st, s in zip(sample, sample_stars, shipped)]
    res["generator_titles_identical_to_plain_generate_share"] = round(sum(same_plain) / len(same_plain), 3)
    # the other engine: the PyTorch hand loop over the float32 base (shared prefill, both models per step), with a
    # float32 and with an int8 output layer (the previous session's shipped path)
    for label, int8 in (("float32", False), ("int8", True)):
        other = GemmaTitles(dirs, int8=int8)
        with engine.use_generator(other):
            res[f"single_p50_ms_128_generator_torch_{label}"] = round(statistics.median(compare_ms(text)), 1)
        same = [other.titles(t, stars=st) == s for t, st, s in zip(sample, sample_stars, shipped)]
        res[f"generator_titles_identical_to_torch_{label}_share"] = round(sum(same) / len(same), 3)
        del other
    # the seed decoder's title shortlist (core/titles/encoder_decoder.py, on by default) against full-vocabulary
    # decoding: speed at 128 tokens and how often its titles are identical
    def seed_titles() -> list[str | None]:
        return [row.get("encoder_decoder_title") for i in range(0, len(sample), 8)
                for rows in engine.run(sample[i:i + 8], generator=False).values() for row in rows]

    with engine.seed.full_vocabulary():
        res["single_p50_ms_128_seed_full_vocab"] = round(statistics.median(compare_ms(text)), 1)
        full = seed_titles()
    same = [s == f for s, f in zip(seed_titles(), full)]
    res["seed_title_shortlist_identical_share"] = round(sum(same) / len(same), 3)
    # batch path vs the naive per-review loop, with titles (both generators) and ratings only
    def throughput(texts: list[str], titles: bool) -> float:
        read = tables.lines_table("\n".join(r.replace("\n", " ") for r in texts))
        t = time.perf_counter()
        batch.predict_table(read, engine=engine, titles=titles)
        return len(texts) / (time.perf_counter() - t)

    def naive(texts: list[str], with_titles: bool) -> float:
        t = time.perf_counter()
        with engine.pytorch_only():  # the naive way runs plain PyTorch
            for r in texts:
                naive_one(engine, r, plain if with_titles else None)
        return len(texts) / (time.perf_counter() - t)

    titled = (pool * (a.n_titles // len(pool) + 1))[: a.n_titles]
    res["batch_reviews_per_s"] = round(throughput(titled, True), 3)
    res["naive_reviews_per_s"] = round(naive(titled, True), 3)
    res["batch_speedup"] = round(res["batch_reviews_per_s"] / res["naive_reviews_per_s"], 2)
    res["n_batch_reviews"] = a.n_titles
    del plain
    reviews = (pool * (a.n // len(pool) + 1))[: a.n]
    res["ratings_only_batch_reviews_per_s"] = round(throughput(reviews, False), 3)
    res["ratings_only_naive_reviews_per_s"] = round(naive(reviews, False), 3)
    res["ratings_only_batch_speedup"] = round(res["ratings_only_batch_reviews_per_s"]
                                              / res["ratings_only_naive_reviews_per_s"], 2)
    res["n_ratings_only_reviews"] = a.n
    res["bench_process_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    # a new process as the app runs: load, one comparison (cold start), then a batch of 16 with titles; its own
    # peak RSS is the serving process's
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(r.replace("\n", " ") for r in pool[:16]))
    code = ("import sys, time; t = time.perf_counter(); from core.inference import compare; from core.engine import get_engine; "
            "compare('Das Produkt ist super, jederzeit wieder!'); print('cold', time.perf_counter() - t); "
            "from core import batch, tables; batch.predict_table(tables.lines_table(open(sys.argv[1]).read()), "
            "engine=get_engine()); "
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
            "print('rss', [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024)")
    out = subprocess.run([sys.executable, "-c", code, f.name], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    os.unlink(f.name)
    got = dict(line.split() for line in out.splitlines() if line.split()[:1] in (["cold"], ["rss"]))
    res["cold_start_s"] = round(float(got["cold"]), 2)
    res["peak_rss_mb"] = round(float(got["rss"]), 1)
    models = ROOT / "assets" / "models"
    res["artifacts_mb"] = round(sum(p.stat().st_size for p in models.rglob("*") if p.is_file()) / 2**20, 1)
    res["largest_file_mb"] = round(max(p.stat().st_size for p in models.rglob("*") if p.is_file()) / 2**20, 2)
    Path(a.out).write_text(json.dumps(res, indent=1))
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v}")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
