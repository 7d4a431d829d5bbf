"""Collect the dev scores of the generator settings tried (`scripts/generator_sweep.sh`, runs/<name>/) into
assets/models/generator_sweep.json, which the model cards show. Dev sets only: the test sets are never read."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.names import DE_FINETUNED, EN_TRAINED  # noqa: E402
from core.titles.generator import GeneratorSettings  # noqa: E402


def rows(runs: Path) -> list[dict]:
    default = GeneratorSettings().to_json()
    out = []
    for run in sorted(p for p in runs.iterdir() if p.is_dir()):
        summaries = {}
        for m in (EN_TRAINED, DE_FINETUNED, "."):  # a run of both stages, or one variant's folder
            f = run / m / "training_summary.json"
            if f.exists():
                summaries[m] = json.loads(f.read_text())
        gen = next((s["generator"] for s in summaries.values() if "generator" in s), None)
        if gen is None and (run / EN_TRAINED / "dev_scores.json").exists():  # stopped after stage 1
            cfg = json.loads((run / EN_TRAINED / "title_generator.json").read_text())
            gen = {"settings": cfg, "stages": {EN_TRAINED: {
                "dev": json.loads((run / EN_TRAINED / "dev_scores.json").read_text()), "wall_s": "stopped"}}}
        if gen is None:
            continue
        changed = {k: v for k, v in gen["settings"].items() if default.get(k) != v}
        train_defaults = {"gen_lr": 3e-4, "gen_stage1_epochs": 2.0, "gen_stage2_epochs": 2.0, "gen_batch_size": 8}
        changed.update({k: v for k, v in gen.get("train", {}).items() if train_defaults.get(k) != v})
        changed = {k: v for k, v in changed.items() if k not in ("stage", "trained_on", "starts_from", "variant",
                                                                 "unlabelled_de_bodies", "rating_from")}
        if gen.get("variant_overrides"):  # a zero-German-title variant: its recipe is the overrides
            changed = dict(gen["variant_overrides"])
        beams = gen["settings"].get("num_beams", 1)  # the dev titles decode as the settings say
        for stage, st in gen["stages"].items():
            d = st["dev"]
            out.append({"run": run.name, "settings": json.dumps(changed, sort_keys=True) if changed else "defaults",
                        "stage": stage, "dev decoding": f"{beams} beams" if beams > 1 else "greedy",
                        "en_chrf": d["en"]["chrf"], "en_distinct": d["en"]["distinct"],
                        "de_chrf": d["de"]["chrf"], "de_in_german": d["de"]["in_input_language"],
                        "wall_s": st["wall_s"]})
    return out


if __name__ == "__main__":
    dirs = [Path(p) for p in sys.argv[1:]] or [ROOT / "runs", ROOT / "assets" / "models" / "variants"]
    res = [r for d in dirs if d.exists() for r in rows(d)]
    path = ROOT / "assets" / "models" / "generator_sweep.json"
    # runs/ is not committed: rows of earlier runs no longer on this machine are kept, found ones replaced
    found = {r["run"] for r in res}
    kept = [r for r in json.loads(path.read_text()) if r["run"] not in found] if path.exists() else []
    res = kept + res
    path.write_text(json.dumps(res, indent=1))
    for r in res:
        print(r)
