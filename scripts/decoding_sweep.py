"""Greedy decoding against beam search for the shipped title adapters, on the *dev* sets, run as the app runs
them (the shipped engine, one review at a time): `python scripts/decoding_sweep.py` -> one line per setting,
model and dev set, and assets/models/decoding_sweep.json (the model cards and the README show it). The test sets
are never read. Settings: the GeneratorSettings fields num_beams, length_penalty, no_repeat_ngram_size, early_stopping."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

SETTINGS = {
    "greedy": {"num_beams": 1},
    "beams2": {"num_beams": 2},
    "beams3": {"num_beams": 3},
    "beams4": {"num_beams": 4},
    "beams3_short": {"num_beams": 3, "length_penalty": 0.0},  # sum of log-probabilities: no push to length
    "beams4_short": {"num_beams": 4, "length_penalty": 0.0},
    # stop as soon as num_beams titles are finished (generate's early_stopping=True), not while a running beam
    # could still beat one: fewer steps, and no push towards titles cut off at max_title_tokens
    "beams3_early": {"num_beams": 3, "early_stopping": True},
    "beams4_early": {"num_beams": 4, "early_stopping": True},
}


def main() -> None:
    from dev_title_checks import engine_checks

    from core.engine import Engine
    from core.names import MAIN_MODELS as MODEL_NAMES
    from core.titles.generator import GeneratorSettings

    names = sys.argv[1:] or list(SETTINGS)
    engine = Engine(names=MODEL_NAMES)
    shipped = {m: engine.generator.settings[m].decoding() for m in MODEL_NAMES}
    path = ROOT / "assets" / "models" / "decoding_sweep.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    for name in names:
        for m in MODEL_NAMES:
            s = engine.generator.settings[m]
            # greedy and the dataclass's own defaults, then the setting's changes
            for k, v in {**GeneratorSettings().decoding(), "num_beams": 1, **SETTINGS[name]}.items():
                setattr(s, k, v)
        t = time.perf_counter()
        res = engine_checks(engine)
        wall = round(time.perf_counter() - t, 1)
        rows = [r for r in rows if r["setting"] != name]
        for key, v in res.items():
            rows.append({"setting": name, "decoding": SETTINGS[name], "model/dev set": key, **v, "wall_s": wall,
                         "engine": engine.generator.describe().engine})
            print(name, key, json.dumps(v), flush=True)
        order = list(SETTINGS)  # the cards list the settings in this order, whichever ran last
        rows.sort(key=lambda r: order.index(r["setting"]) if r["setting"] in order else len(order))
        path.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    for m in MODEL_NAMES:  # leave the engine as it was loaded
        for k, v in shipped[m].items():
            setattr(engine.generator.settings[m], k, v)
    from core.cards import refresh_cards

    refresh_cards(path.parent)


if __name__ == "__main__":
    main()
