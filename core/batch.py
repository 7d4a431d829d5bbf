"""Batch comparison: both review models over a table ``core.tables`` has read, and a summary of where they differ.

One output row per scored input row, in input order, keyed by the input's 0-based row number, so a user can line the
predictions up with their file; rows ``core.tables`` skipped stay listed in ``TableRead.skipped``, not here.
No Gradio here: the CLI, the app and the tests all share these functions.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from . import langid
from .csv_safety import write_csv
from .data import DataError, length_batches, stars_to_polarity
from .review_text import prepare_text
from .names import MAIN_MODELS
from .tables import (POLARITY_COLUMNS, STARS_COLUMNS, TableRead, column_list, read_table, reference_columns,
                     reference_values)


# ----------------------------------------------------------------------------- predictions
def prediction_columns(names: Iterable[str], refs: Iterable[str] = ()) -> list[str]:
    """The columns predict_table returns, in order; the CLI's output CSV has the same. `{m}_title` is the
    pretrained generator's title, `{m}_encoder_decoder_title` the seed's encoder-decoder's."""
    cols = ["row", "text", "language"]
    for m in names:
        cols += [f"{m}_stars", f"{m}_polarity", f"{m}_title", f"{m}_title_language",
                 f"{m}_accidental_translation", f"{m}_copied", f"{m}_seen_in_training",
                 f"{m}_encoder_decoder_title", f"{m}_encoder_decoder_title_language"]
    refs = set(refs)
    cols += [f"ref_{k}" for k in ("stars", "polarity", "title", "language") if k in refs]
    return cols


def predict_table(read: TableRead, engine=None, batch_size: int | None = None,
                  progress: Callable[[int, int], None] | None = None, titles: bool = True) -> pd.DataFrame:
    """Both models on every row of ``read``; one output row per input row, in input order.

    Rows are batched by length so padding stays small (`data.length_batches`). The trunk runs once per batch for
    both models (Engine.run), and each row's badge logic is the same as the single-review
    contract's (Engine.model_output), so a row here matches what ``compare`` says.

    `progress` is called after each batch; a page job stops there once its visitor has gone (core/table_jobs.py).
    So batches with titles are small (4 rows, about 4 s on 2 cores; 8 on a GPU) and ratings-only ones larger (16
    rows, well under a second): batch size changes no answer, only how often the job can stop and report.
    """
    from .title_copying import copying

    if engine is None:
        from .engine import get_engine

        engine = get_engine()
    # on a GPU each batch is one ZeroGPU call (core/device.py): fewer, larger ones, each well inside its duration
    batch_size = batch_size or ((8 if engine.device == "cuda" else 4) if titles else 16)
    names = tuple(engine.names)
    refs = read.refs or reference_columns(read.df, read.column)
    texts = [prepare_text(v)[0] for v in read.df[read.column].tolist()]
    rows_idx = [int(i) for i in read.df.index.tolist()]
    total = len(texts)
    results: list[dict | None] = [None] * total
    done = 0
    for chunk in length_batches(texts, max(1, int(batch_size))):
        langs = [langid.detect(texts[i]).language for i in chunk]
        out = engine.run([texts[i] for i in chunk], titles=titles, languages=langs)
        for j, i in enumerate(chunk):
            lang = langs[j]
            rec: dict = {"row": rows_idx[i], "text": texts[i], "language": lang}
            for m in names:
                o = engine.model_output(m, out[m][j], lang, texts[i])
                rec[f"{m}_stars"] = o.stars
                rec[f"{m}_polarity"] = o.polarity
                t = o.generated
                rec[f"{m}_title"] = t.title
                rec[f"{m}_title_language"] = t.title_language
                rec[f"{m}_accidental_translation"] = t.title_badge == "accidental_translation"
                rec[f"{m}_copied"] = copying(t.title, texts[i]).copied
                rec[f"{m}_seen_in_training"] = bool(t.title_seen_in_training)
                seed = o.encoder_decoder
                rec[f"{m}_encoder_decoder_title"] = seed.title if seed else ""
                rec[f"{m}_encoder_decoder_title_language"] = seed.title_language if seed else ""
            results[i] = rec
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    df = pd.DataFrame(results, columns=prediction_columns(names, ()))
    for col, values in reference_values(read, refs).items():
        df[col] = values
    for m in names:
        df[f"{m}_stars"] = df[f"{m}_stars"].astype("Int64")
        for k in ("accidental_translation", "copied", "seen_in_training"):
            df[f"{m}_{k}"] = df[f"{m}_{k}"].astype(bool)
    return df[prediction_columns(names, refs)]


# ----------------------------------------------------------------------------- summary
def _r(x) -> float:
    return float("nan") if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 3)


def _share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else float("nan")


def _summary_row(g: pd.DataFrame, label: str, names: tuple[str, ...]) -> dict:
    from . import metrics as M

    rec: dict = {"language": label, "n": int(len(g))}
    pols = [g[f"{m}_polarity"].tolist() for m in names]
    rec["polarity_agreement"] = _share([len(set(p)) == 1 for p in zip(*pols)]) if len(names) > 1 else float("nan")
    known = g[g["language"] != "unknown"]
    for m in names:
        titled = known[known[f"{m}_title"].fillna("").astype(str).str.strip() != ""]
        rec[f"{m}_title_in_input_language"] = _share(
            (titled[f"{m}_title_language"] == titled["language"]).tolist())
    has_stars, has_pol, has_title = "ref_stars" in g, "ref_polarity" in g, "ref_title" in g
    if has_stars:
        st = g[g["ref_stars"].notna()]
        rec["n_ref_stars"] = int(len(st))
    if has_stars or has_pol:
        if has_pol:
            gold_pol = [p if isinstance(p, str) and p else None for p in g["ref_polarity"].tolist()]
        else:  # derive it as the training data does: 1-2 stars negative, 4-5 positive, 3 none
            gold_pol = [stars_to_polarity(None if pd.isna(s) else int(s)) for s in g["ref_stars"].tolist()]
        rec["n_ref_polarity"] = sum(p is not None for p in gold_pol)
    if has_title:
        tt = g[g["ref_title"].fillna("").astype(str).str.strip() != ""]
        rec["n_ref_title"] = int(len(tt))
    for m in names:
        if has_stars:
            r = M.stars([int(x) for x in st["ref_stars"].tolist()], [int(x) for x in st[f"{m}_stars"].tolist()])
            rec[f"{m}_star_accuracy"], rec[f"{m}_star_mae"] = _r(r["accuracy"]), _r(r["mae"])
        if has_stars or has_pol:
            pred = g[f"{m}_polarity"].tolist()
            pairs = [(a, b) for a, b in zip(gold_pol, pred) if a is not None]
            r = M.classification([a for a, _ in pairs], [b for _, b in pairs])
            rec[f"{m}_polarity_accuracy"] = _r(r["accuracy"])
        if has_title:
            hyps = tt[f"{m}_title"].fillna("").astype(str).tolist()
            r = M.title_scores(tt["ref_title"].astype(str).tolist(), hyps) if any(h.strip() for h in hyps) else {}
            rec[f"{m}_chrf"] = _r(r.get("chrf"))
    return rec


def summarize(df: pd.DataFrame, names: Iterable[str] = MAIN_MODELS) -> pd.DataFrame:
    """Per detected language (most frequent first) and for "all": how often the two models
    agree on polarity, how often each title is in the review's language, and, where the file
    has references, star accuracy/MAE, polarity accuracy and title chrF per model.

    Rates are shares in [0, 1]; star MAE is in stars; chrF is sacrebleu's 0-100 corpus score.
    All rounded to 3 decimals; NaN where a number has no rows to stand on (e.g. the title
    language of reviews whose own language is unknown). The n_ref_* columns say how many
    rows each reference metric rests on, because a 3-row accuracy is no evidence.
    """
    names = tuple(names)
    counts = df["language"].value_counts()
    langs = sorted(counts.index, key=lambda k: (-int(counts[k]), k == "unknown", str(k)))
    rows = [_summary_row(df[df["language"] == lang], str(lang), names) for lang in langs]
    rows.append(_summary_row(df, "all", names))
    out = pd.DataFrame(rows)
    front = ["language", "n", "polarity_agreement"] + [f"{m}_title_in_input_language" for m in names]
    front += [c for c in ("n_ref_stars", "n_ref_polarity", "n_ref_title") if c in out.columns]
    rest = [f"{m}_{k}" for m in names for k in ("star_accuracy", "star_mae", "polarity_accuracy", "chrf")
            if f"{m}_{k}" in out.columns]
    return out[front + rest]


def _json_safe(records: list[dict]) -> list[dict]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v)
             for k, v in r.items()} for r in records]


def score_labelled(read: TableRead, engine=None, progress: Callable[[int, int], None] | None = None,
                   titles: bool = True) -> dict:
    """'Score your own data': both models on a file that carries stars or polarity labels.

    Refuses a file without labels up front (before minutes of inference) since there would
    be nothing to score against. The result is JSON-safe (NaN -> None).
    """
    refs = read.refs or reference_columns(read.df, read.column)
    if "stars" not in refs and "polarity" not in refs:
        raise DataError("to score your own data the file needs a stars column (" + ", ".join(STARS_COLUMNS)
                        + ") or a polarity column (" + ", ".join(POLARITY_COLUMNS) + "). Columns found: "
                        + column_list([c for c in read.df.columns]) + ".")
    pred = predict_table(read, engine=engine, progress=progress, titles=titles)
    names = [c[: -len("_stars")] for c in pred.columns if c.endswith("_stars") and c != "ref_stars"]
    summary = summarize(pred, names)
    return {"summary": _json_safe(summary.to_dict("records")), "n": int(len(pred)), "skipped": list(read.skipped),
            "notes": list(read.notes), "column": str(read.column), "references": dict(refs)}


# ----------------------------------------------------------------------------- command line
def predict_csv_cli(csv_path: str, column: str | None, out: str | None) -> int:
    """`python -m core predict --csv FILE [--column C] [--out OUT]`: score every row, write the
    predictions CSV, print the summary and what was skipped. Exit 2 on an unusable file."""
    from tqdm.auto import tqdm

    from .title_words import ModelDirError

    src = Path(csv_path)
    dest = Path(out) if out else src.with_name(f"{src.stem}.predictions.csv")
    try:
        if dest.resolve() == src.resolve():
            raise DataError(f"{dest}: the output would overwrite the input; choose another --out")
        read = read_table(src, column)
        from .engine import get_engine

        engine = get_engine()
        with tqdm(total=len(read.df), unit="review", desc="predict", file=sys.stderr) as bar:
            def step(done: int, total: int) -> None:
                bar.update(done - bar.n)

            pred = predict_table(read, engine=engine, progress=step)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            write_csv(pred, dest)
        except OSError as exc:
            raise DataError(f"{dest}: cannot write the output ({exc.strerror or exc})") from exc
    except (DataError, ModelDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarize(pred, engine.names)
    print(f"{len(pred)} review(s) from {src} (text column {str(read.column)!r}) -> {dest}")
    for n in read.notes:
        print(f"note: {n}")
    print()
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(summary.to_string(index=False))
    if read.skipped:
        print(f"\nskipped {len(read.skipped)} row(s):")
        for s in read.skipped[:50]:
            print(f"  row {s['row']}: {s['reason']}")
        if len(read.skipped) > 50:
            print(f"  ... and {len(read.skipped) - 50} more")
    else:
        print("\nskipped: none")
    return 0
