"""Model cards: what each shipped model was trained on, how, how long, and how it scored on dev."""
from __future__ import annotations

import json
from pathlib import Path


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def write_card(model_dir: Path, name: str, summary: dict) -> None:
    stage = summary["stages"][name]
    s = summary["settings"]
    data_key = stage["train"]
    lines = [
        f"# {name}",
        "",
        "Part of Cross-lingual Review Lab. One of two models built on the same multilingual base "
        f"(`{s['base']}`): `en_trained` saw English reviews only; `de_finetuned` started from it and "
        "was then fine-tuned on German reviews only.",
        "",
        "## What is in this folder",
        "- `adapter/`: a `peft` LoRA adapter for the base's top layers (`save_pretrained` format).",
        "- `heads.safetensors` + `decoder_config.json`: the star-rating head and the title decoder "
        "(a small BERT decoder with cross-attention; its word embeddings are the base's, not stored here).",
        "- `review_model.json`: architecture and generation settings.",
        "- `train_titles.sha1.json`: hashes of the training titles (to flag generated titles seen in training).",
        "- `training_summary.json`: data counts, settings, wall time and the dev curve.",
        "",
        "## Training data",
        f"Stage data `{data_key}`: {json.dumps(summary['data'][data_key]['by_source'])} "
        f"({summary['data'][data_key]['n']} reviews, {summary['data'][data_key]['with_title']} with titles).",
        "",
        "## Settings",
        "```json",
        json.dumps({**{k: v for k, v in summary["config"].items() if k != "out_dir"}, **s}, indent=1),
        "```",
        "",
        "## Wall time",
        f"This stage: {stage['wall_s']} s of training; whole recipe {summary['wall_s_total']} s on "
        f"{summary['machine']['cpus']} CPU threads, torch {summary['machine']['torch']}.",
        "",
        "## Dev metrics at the end of this stage (rating head)",
        "| dev set | polarity accuracy | n | star accuracy | n |",
        "|---|---|---|---|---|",
    ]
    for lang in ("en", "de"):
        d = stage["dev"].get(lang)
        if d:
            lines.append(f"| {lang} | {_fmt(d['polarity_acc'])} | {d['n_polarity']} | {_fmt(d['star_acc'])} | {d['n_stars']} |")
    lines += ["", "Test-set numbers (both models, every language, titles included) are in `assets/report/`, "
              "written by `python -m core evaluate`.", ""]
    (Path(model_dir) / "README.md").write_text("\n".join(lines))
