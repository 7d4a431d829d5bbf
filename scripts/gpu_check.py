"""The GPU path on the machine you have: `python scripts/gpu_check.py [--reviews 30] [--batch 200] [--json out.json]`.

Prints, for the engines on CUDA (core/device.py): the device, the models' load time, p50 and p95 of
`--reviews` comparisons (each a different shipped review, the answer cache off), a Batch-tab run of `--batch`
reviews with titles in reviews per second, peak GPU memory, and how often the GPU's answers equal the CPU engine's
on the same reviews (the shipped CPU engine runs in a subprocess, `CROSSLINGUAL_DEVICE=cpu`): both models' main
titles, seed titles and stars. The last line is a README row.

`--device cpu` runs the same check with the GPU path's engines (PyTorch for the encoder, the seed decoder and the
title adapters, float32) on the CPU: a dry run of this script where there is no GPU, and a measure of how far the
PyTorch engines' titles are from the shipped engine's before any GPU arithmetic comes in.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

GPU_PATH = {"CROSSLINGUAL_RUNTIME": "torch", "CROSSLINGUAL_GENERATOR_ENGINE": "torch",
            "CROSSLINGUAL_GENERATOR_INT8": "0", "CROSSLINGUAL_ANSWER_CACHE": "0"}


def answers(engine, texts: list[str]) -> list[dict]:
    """What agreement is judged on: each model's stars, main title and seed title, review by review."""
    from core.inference import compare

    out = []
    for t in texts:
        d = compare(t, engine=engine).to_dict()
        out.append({n: {"stars": m["stars"], "title": m["title"],
                        "seed": (m.get("encoder_decoder") or {}).get("title")} for n, m in d["models"].items()})
    return out


def cpu_answers(texts: list[str]) -> list[dict]:
    """The shipped CPU engine's answers to `texts`, from a process of its own (its threads and kernels as the app
    has them)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSLINGUAL_")}
        env.update(CROSSLINGUAL_DEVICE="cpu", CROSSLINGUAL_ANSWER_CACHE="0")
        subprocess.run([sys.executable, __file__, "--cpu-answers", str(src), str(dst)], check=True, env=env)
        return json.loads(dst.read_text(encoding="utf-8"))


def agreement(mine: list[dict], cpu: list[dict]) -> dict:
    """Share of (review, model) pairs whose stars, main title and seed title equal the CPU engine's."""
    pairs = [(a[n], b[n]) for a, b in zip(mine, cpu) for n in a]
    share = lambda key: round(sum(x[key] == y[key] for x, y in pairs) / len(pairs), 4)  # noqa: E731
    return {"pairs": len(pairs), "stars": share("stars"), "title": share("title"), "seed_title": share("seed")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--reviews", type=int, default=30, help="comparisons timed one after another")
    p.add_argument("--batch", type=int, default=200, help="reviews in the Batch-tab run (with titles)")
    p.add_argument("--json", default=None, help="also write the figures here")
    p.add_argument("--cpu-answers", nargs=2, metavar=("IN", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.cpu_answers:  # the subprocess of `cpu_answers`
        from core.engine import Engine

        texts = json.loads(Path(a.cpu_answers[0]).read_text(encoding="utf-8"))
        Path(a.cpu_answers[1]).write_text(json.dumps(answers(Engine(), texts), ensure_ascii=False), encoding="utf-8")
        return 0

    import pandas as pd
    import torch

    from bench.run import percentile
    from core.device import DeviceError, choose_device
    from load_test import review_texts

    os.environ.update(GPU_PATH)
    os.environ["CROSSLINGUAL_DEVICE"] = a.device
    try:
        choose_device(a.device)
    except DeviceError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    from core.batch import predict_table
    from core.engine import Engine
    from core.tables import TableRead

    cuda = a.device == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    res: dict = {"device": torch.cuda.get_device_name(0) if cuda else f"CPU ({platform.processor() or 'x86_64'})",
                 "torch": torch.__version__}
    t0 = time.perf_counter()
    engine = Engine()
    sync()
    res["load_s"] = round(time.perf_counter() - t0, 2)
    res["engines"] = engine.answered_by()
    texts = review_texts(a.reviews + a.batch + 1)
    answers(engine, texts[:1])  # warm-up: the first call's one-time costs
    if cuda:
        torch.cuda.reset_peak_memory_stats()

    times, mine = [], []
    for t in texts[1:a.reviews + 1]:
        t0 = time.perf_counter()
        mine += answers(engine, [t])
        sync()
        times.append((time.perf_counter() - t0) * 1000)
    res["compare_p50_ms"] = round(statistics.median(times), 1)
    res["compare_p95_ms"] = round(percentile(times, 0.95), 1)

    batch = texts[a.reviews + 1:]
    if batch:  # --batch 0 leaves it out
        t0 = time.perf_counter()
        table = predict_table(TableRead(df=pd.DataFrame({"review": batch}), column="review"), engine=engine)
        sync()
        wall = time.perf_counter() - t0
        res["batch_reviews"] = len(table)
        res["batch_reviews_per_s"] = round(len(table) / wall, 2)
    if cuda:
        res["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
        res["peak_gpu_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20)
    del engine
    res["agreement_with_cpu_engine"] = agreement(mine, cpu_answers(texts[1:a.reviews + 1]))

    print(json.dumps(res, indent=1, ensure_ascii=False))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    ag = res["agreement_with_cpu_engine"]
    print(f"| {res['device']} | {res['load_s']} s | {res['compare_p50_ms']:.0f} / {res['compare_p95_ms']:.0f} ms | "
          f"{res.get('batch_reviews_per_s', '-')} reviews/s | {res.get('peak_gpu_memory_mb', '-')} MB | "
          f"{100 * ag['title']:.0f}% titles, {100 * ag['stars']:.0f}% stars ({ag['pairs']} model answers) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
