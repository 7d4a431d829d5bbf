"""The page's table jobs, Batch and "Score your own data", in plain types: read the file, fit it to the budget before
any model runs, predict, summarise. The Gradio tabs only wire these to the page; the tests call them directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from . import batch, tables
from .budget import CLI_HINT, Budget, fit
from .data import DataError

Progress = Callable[[int, int], None]


@dataclass
class BatchJob:
    """One Batch run: the predictions (one row per scored review), the summary per language, and every note the
    visitor should read (how the file was read, rows skipped, what the budget cut)."""

    table: pd.DataFrame
    summary: pd.DataFrame
    column: str
    notes: list[str] = field(default_factory=list)


def _read(source: str | Path | None, pasted: str | None, column: str | None, budget: Budget) -> tables.TableRead:
    rows = budget.rows  # nothing past the larger limit is parsed at all
    if source:
        read = tables.read_table(Path(source), column=column or None, rows=rows)
    elif pasted and pasted.strip():
        read = tables.lines_table(pasted, rows=rows)
    else:
        raise DataError("Upload a CSV file or paste reviews, one per line.")
    if len(read.df) == rows and rows < tables.MAX_ROWS:
        read.notes.append(f"A job here reads at most {rows:,} reviews; {CLI_HINT}.")
    return read


def _skipped_note(read: tables.TableRead) -> list[str]:
    if not read.skipped:
        return []
    reasons: dict[str, int] = {}
    for s in read.skipped:
        reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
    return ["Skipped " + ", ".join(f"{n} row(s): {r}" for r, n in reasons.items())]


def batch_job(source: str | Path | None, pasted: str | None, column: str | None, titles: bool, budget: Budget,
              engine=None, progress: Progress | None = None) -> BatchJob:
    """Both models over a CSV file (`source`) or pasted lines, cut to `budget` first. Raises DataError with a
    message for the visitor when there is nothing usable."""
    read = _read(source, pasted, column, budget)
    read, note = fit(read, titles, budget)
    table = batch.predict_table(read, engine=engine, titles=titles, progress=progress)
    names = [c[: -len("_stars")] for c in table.columns if c.endswith("_stars") and c != "ref_stars"]
    return BatchJob(table=table, summary=batch.summarize(table, names), column=str(read.column),
                    notes=read.notes + _skipped_note(read) + ([note] if note else []))


def score_job(source: str | Path | None, budget: Budget, engine=None, progress: Progress | None = None) -> dict:
    """'Score your own data': `batch.score_labelled` on a labelled file, fit to `budget`. A file with more reviews
    than a job may title is scored on ratings only (the labels are stars or polarity), every review up to the row
    budget, and the notes say so."""
    if not source:
        raise DataError("Upload a labelled CSV: a text column plus stars or polarity (optional: title, language).")
    read = _read(source, None, None, budget)
    titles = len(read.df) <= budget.titled_rows
    read, note = fit(read, titles, budget)
    res = batch.score_labelled(read, engine=engine, progress=progress, titles=titles)
    if not titles:
        note = (f"Titles were not written: a job here titles at most {budget.titled_rows:,} reviews, so the ratings "
                f"of all {res['n']:,} were scored without them. " + note).strip()
    res["notes"] = read.notes + _skipped_note(read) + ([note] if note else [])
    return res
