"""The report's title checks on the *dev* sets, for choosing between trained title adapters as the app runs them
(the shipped engine, each model's own stars where the prompt holds them):
python scripts/dev_title_checks.py assets/models runs/rating  ->  one line per folder, model and dev set, and
runs/dev_title_checks/<folder>.json; `--record "what was tried"` also keeps the rows in
assets/models/adapter_checks.json (the model cards show them) under the folder's name."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def checks(models_dir: Path) -> dict:
    from core.engine import Engine
    from core.names import MAIN_MODELS as MODEL_NAMES

    return engine_checks(Engine(models_dir, names=MODEL_NAMES))


def engine_checks(engine) -> dict:
    """The checks for a loaded Engine, with its generator's settings as they are now."""
    from core import metrics as M
    from core.evaluate import predict_all, title_block
    from core.names import JUDGE, MAIN_MODELS as MODEL_NAMES
    from core.models import polarity_from_probs
    from core.train import TrainConfig, splits_of

    sets = splits_of(TrainConfig())
    dev = {lang: [r for r in sets[f"{lang}_dev"] if r.title] for lang in ("en", "de")}
    preds = predict_all(engine, dev["en"] + dev["de"], MODEL_NAMES)

    def judge(texts: list[str]) -> list[str]:
        res = engine.run(texts, names=(JUDGE,), titles=False)[JUDGE]
        return [polarity_from_probs(row["star_probs"]) for row in res]

    out = {}
    for n in MODEL_NAMES:
        for lang, rows in dev.items():
            hyps = {r.uid: preds[n][r.uid]["title"] for r in rows}
            b = title_block(rows, hyps, engine.seen_titles[n], lang, judge)
            pol = [r for r in rows if r.polarity]
            ceiling = M.rate([g == r.polarity for r, g in zip(pol, judge([r.title for r in pol]))])
            out[f"{n}/{lang}"] = {"chrf": b["chrf"], "distinct": b["distinct"]["rate"],
                                  "max_repeat": b["most_repeated"]["count"],
                                  "in_input_language": b["in_input_language"]["rate"],
                                  "sentiment": b["sentiment_agreement"]["rate"], "ceiling": ceiling["rate"],
                                  "copied": b["copied_from_input"]["rate"], "n": len(rows)}
    return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", help="folders holding en_trained/ and de_finetuned/")
    ap.add_argument("--record", default=None, help="keep the rows in assets/models/adapter_checks.json, "
                    "described so (one folder at a time)")
    ap.add_argument("--models", default="en_trained,de_finetuned", help="which models' rows to record")
    ap.add_argument("--name", default=None, help="the rows' run name (default: the folder's name)")
    a = ap.parse_args()
    for d in a.dirs:
        res = checks(Path(d))
        out = ROOT / "runs" / "dev_title_checks"
        out.mkdir(parents=True, exist_ok=True)
        name = a.name or Path(d).resolve().name
        (out / f"{name}.json").write_text(json.dumps(res, indent=1))
        for k, v in res.items():
            print(d, k, json.dumps(v))
        if a.record:
            path = ROOT / "assets" / "models" / "adapter_checks.json"
            rows = [r for r in json.loads(path.read_text()) if r["run"] != name] if path.exists() else []
            rows += [{"run": name, "what": a.record, "model/dev set": k, **v} for k, v in res.items()
                     if k.split("/")[0] in a.models.split(",")]
            path.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
