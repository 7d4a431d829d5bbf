"""The models' names and labels: the one list every part (engine, evaluation, report, page, training) reads.

A name is also the model's folder under `assets/models/` and the key of its answer in the JSON contract
(`models.<name>`), so renaming one here renames it everywhere, including on disk.
"""
from __future__ import annotations

EN_TRAINED = "en_trained"  # stage 1: English reviews only
DE_FINETUNED = "de_finetuned"  # stage 2: then fine-tuned on German
MAIN_MODELS = (EN_TRAINED, DE_FINETUNED)  # the two columns every comparison shows

ENGLISH_ONLY = "minilm_en_trained"  # optional column: the English recipe on the English-only base (rating only)
ZERO_SHOT = "en_zero_shot"  # optional column: English titles only + the remedy chosen on German dev
JUDGE = DE_FINETUNED  # whose rating head judges a title's sentiment (trained on both languages)

# Zero-shot title variants that carry no remedy: never chosen as the zero-shot column.
REFERENCE_VARIANTS = ("plain", "plain_top6")

LABELS = {  # how the page and the report name each model, lower case (the page capitalises)
    EN_TRAINED: "trained on English only",
    DE_FINETUNED: "then fine-tuned on German",
    ENGLISH_ONLY: "English-only base (MiniLM), trained on English",
    ZERO_SHOT: "English titles only + a remedy",
}
