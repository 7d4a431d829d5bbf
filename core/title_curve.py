"""How many German titles does it take? `python -m core title-curve [--tiny] [--models DIR]`

Stage 2 of the title adapter, repeated on 0, 8, 32, 128 and all of the German training titles: each point
continues en_trained's title adapter exactly as the recipe's stage 2 does (core/train.py TrainConfig: learning
rate, epochs, batch size), on a seeded sample of the German training titles, three seeds each where the data
allows a different sample (0 is en_trained itself and "all" the recipe's own stage 2, once each). Each run is scored on German dev and English dev as
training scores its dev sets (`gemma_train.dev_titles`: greedy titles from the float32 adapter), and its titles'
sentiment is judged afterwards by the report's judge. The points are fixed in advance; nothing is chosen on them.

Writes <models>/german_titles_curve.json with every run, its data, its scores and the command's wall time;
`python -m core evaluate` copies it into the report ("How many German titles does it take?").
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

from .names import EN_TRAINED, JUDGE

POINTS = (0, 8, 32, 128, None)  # None: every German training title
SEEDS = (0, 1, 2)
CURVE_FILE = "german_titles_curve.json"


def run(models_dir: Path, tiny: bool = False) -> dict:
    from .train import TrainConfig, splits_of
    from .titles import gemma_train as GT
    from .titles.gemma_base import load_generator_base
    from .titles.generator import GeneratorSettings

    t0 = time.time()
    cfg = TrainConfig(tiny=tiny)
    sets = splits_of(cfg)
    german = [r for r in sets["de_train"] if r.title]
    dev = {lang: [r for r in sets[f"{lang}_dev"] if r.title] for lang in ("de", "en")}
    s = GeneratorSettings.read(models_dir / EN_TRAINED)
    tokenizer, lm = load_generator_base(s.base)
    points, seeds = ((0, 2, None), (0,)) if tiny else (POINTS, SEEDS)
    epochs = 1.0 if tiny else cfg.gen_stage2_epochs
    runs, titles = [], {}
    for n in points:
        size = len(german) if n is None else min(n, len(german))
        for seed in seeds if 0 < size < len(german) else seeds[:1]:
            model = GT.add_adapter(lm, s, tokenizer, start_from=models_dir / EN_TRAINED)
            # every title: the recipe's stage 2 itself (its order, its seed); fewer: a seeded sample
            sample = german if size == len(german) else random.Random(seed).sample(german, size)
            info = GT.train_stage(model, tokenizer, s, sample, epochs, cfg.gen_lr, cfg.gen_batch_size,
                                  cfg.seed + 1 + seed) if size else {"wall_s": 0.0, "steps": 0}
            key = f"{size}:{seed}"
            titles[key] = {lang: [] for lang in dev}
            scores = {lang: GT.dev_titles(model, tokenizer, s, dev[lang], lang, keep=3, titles=titles[key][lang])
                      for lang in dev}
            runs.append({"german_titles": size, "all": n is None, "seed": seed, "train_s": info["wall_s"],
                         "steps": info["steps"], "dev": scores})
            print(f"{size} German titles, seed {seed}: German dev in German {scores['de']['in_input_language']}, "
                  f"written {scores['de']['written_in_input_language']}, chrF {scores['de']['chrf']}; "
                  f"English dev in English {scores['en']['in_input_language']}, chrF {scores['en']['chrf']}",
                  flush=True)
            lm = model.unload()
    del lm
    judge = sentiment_judge(models_dir)  # after training: its engine leaves PyTorch one thread (cpu_threads.py)
    for r in runs:
        key = f"{r['german_titles']}:{r['seed']}"
        for lang in dev:
            got = judge(titles[key][lang])
            pairs = [(g, row.polarity) for g, row in zip(got, dev[lang]) if row.polarity]
            r["dev"][lang]["sentiment_agreement"] = (round(sum(g == p for g, p in pairs) / len(pairs), 4)
                                                     if pairs else None)
            r["dev"][lang]["sentiment_n"] = len(pairs)  # the titles whose review has a polarity
    out = {"command": "python -m core title-curve" + (" --tiny" if tiny else ""), "points": [
        "all" if n is None else n for n in points], "seeds": list(seeds), "german_train_titles": len(german),
        "dev": {lang: len(v) for lang, v in dev.items()}, "judge": JUDGE, "epochs": epochs, "lr": cfg.gen_lr,
        "batch_size": cfg.gen_batch_size, "runs": runs, "wall_s": round(time.time() - t0, 1)}
    (models_dir / CURVE_FILE).write_text(json.dumps(out, indent=1, ensure_ascii=False))
    return out


def sentiment_judge(models_dir: Path):
    """Titles to polarities by JUDGE's rating head, as the report judges titles (core/evaluate.py)."""
    from .data import length_batches
    from .engine import Engine
    from .models import polarity_from_probs

    engine = Engine(models_dir, names=(JUDGE,))

    def judge(texts: list[str]) -> list[str]:
        out: list[str] = [""] * len(texts)
        for idx in length_batches(texts, 32):
            res = engine.run([texts[i] for i in idx], names=(JUDGE,), titles=False)[JUDGE]
            for i, row in zip(idx, res):
                out[i] = polarity_from_probs(row["star_probs"])
        return out

    return judge
