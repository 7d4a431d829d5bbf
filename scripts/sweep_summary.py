"""Collect the dev scores of the generator settings tried (`scripts/generator_sweep.sh`, runs/<name>/) into
assets/models/generator_sweep.json, which the model cards show. Dev sets only: the test sets are never read."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.titles.gemma import GeneratorSettings  # noqa: E402


def rows(runs: Path) -> list[dict]:
    default = GeneratorSettings().to_json()
    out = []
    for run in sorted(p for p in runs.iterdir() if p.is_dir()):
        summaries = {}
        for m in ("en_trained", "de_finetuned"):
            f = run / m / "training_summary.json"
            if f.exists():
                summaries[m] = json.loads(f.read_text())
        gen = next((s["generator"] for s in summaries.values() if "generator" in s), None)
        if gen is None:
            continue
        changed = {k: v for k, v in gen["settings"].items() if default.get(k) != v}
        changed.update({k: v for k, v in gen.get("train", {}).items()})
        for stage, st in gen["stages"].items():
            d = st["dev"]
            out.append({"run": run.name, "settings": json.dumps(changed, sort_keys=True) if changed else "defaults",
                        "stage": stage, "en_chrf": d["en"]["chrf"], "en_distinct": d["en"]["distinct"],
                        "de_chrf": d["de"]["chrf"], "de_in_german": d["de"]["in_input_language"],
                        "wall_s": st["wall_s"]})
    return out


if __name__ == "__main__":
    runs = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "runs"
    res = rows(runs)
    (ROOT / "assets" / "models" / "generator_sweep.json").write_text(json.dumps(res, indent=1))
    for r in res:
        print(r)
