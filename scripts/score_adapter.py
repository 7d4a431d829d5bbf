"""Dev scores of a saved stage-1 title adapter whose training run was stopped before its summary was written:
python scripts/score_adapter.py runs/all18/en_trained  ->  <dir>/dev_scores.json (dev sets only)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(model_dir: Path) -> dict:
    from peft import PeftModel

    from core.titles import gemma_train as GT
    from core.titles.gemma_base import load_generator_base
    from core.titles.generator import ADAPTER_DIR, GeneratorSettings
    from core.train import TrainConfig, splits_of

    s = GeneratorSettings.read(model_dir)
    tok, lm = load_generator_base(s.base)
    model = PeftModel.from_pretrained(lm, str(model_dir / ADAPTER_DIR)).eval()
    sets = splits_of(TrainConfig())
    dev = {lang: GT.dev_titles(model, tok, s, [r for r in sets[f"{lang}_dev"] if r.title], lang) for lang in ("en", "de")}
    (model_dir / "dev_scores.json").write_text(json.dumps(dev, indent=1))
    return dev


if __name__ == "__main__":
    for k, v in main(Path(sys.argv[1])).items():
        print(k, {m: v[m] for m in ("chrf", "distinct", "in_input_language", "in_english", "n")})
