"""The Batch and Evidence tabs: layout and wiring only (work happens in core.tables, core.batch and core.report)."""
from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path

import gradio as gr

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "assets" / "report"

PLOT_NOTES = {
    "polarity_accuracy.png": "Each pair of bars is one test set: blue is the English-only model (zero-shot on German), "
                             "orange the German fine-tune. Bars close together on German mean the rating transferred.",
    "title_language.png": "What language the generated titles come out in. An English-trained decoder writing "
                          "English titles for German reviews is accidental translation; the dotted line is what the "
                          "language detector scores on real titles, the best a model can be read to do.",
    "forgetting_curve.png": "Stage 2 trains on German only. The orange line is German dev accuracy, the blue line "
                            "English: if blue falls while orange rises, that is catastrophic forgetting.",
    "german_titles_curve.png": "How many German titles does it take? Stage 2 re-run on 0 to all 296 German training "
                               "titles (dev sets). Orange: German reviews titled in German; red: titled in German in "
                               "the model's own words; brown: copied from the review; blue: English reviews titled in "
                               "English. If orange rises while red stays flat, German titles teach the language, not "
                               "the writing.",
}


def _notes(notes: list[str]) -> str:
    return "  \n".join(f"ℹ️ {html.escape(n)}" for n in notes)


def _path(file) -> str | None:
    return None if not file else file if isinstance(file, str) else file.name


def _followed(job, outputs: int, progress):
    """`job` run by `core.table_jobs.follow`: while it runs, one answer per tick (how far it is in the message, the
    other `outputs` left as they are); its result is this generator's return value (`yield from`)."""
    from core.table_jobs import Tick, follow

    for step in follow(job):
        if not isinstance(step, Tick):
            return step
        progress((step.done, step.total) if step.total else None, desc="reviews", unit="reviews")
        text = ("⏳ Waiting for the table job ahead of yours…" if step.waiting else
                f"⏳ {step.done:,} of {step.total:,} reviews…" if step.total else "⏳ Reading the file…")
        yield (text,) + (gr.skip(),) * (outputs - 1)


def run_batch(file, pasted: str, column: str, ratings_only: bool = False, progress=gr.Progress()):
    """CSV file or pasted lines -> (message, summary table, plot, result table, CSV download).

    A generator: one answer per chunk while the job runs (`core.table_jobs.follow`), so closing the tab stops the
    job at its next chunk. Gradio copies the CSV into its own cache while the last answer is sent, and only then does
    the job resume, so its temporary folder is removed in `finally` (Gradio's `delete_cache` ages its copy)."""
    from core.budget import page_budget
    from core.csv_safety import write_csv
    from core.data import DataError
    from core.jobs import batch_job
    from core.report import batch_summary_figure

    work = tempfile.TemporaryDirectory(prefix="batch-")
    try:
        job = yield from _followed(lambda tick: batch_job(_path(file), pasted, column, titles=not ratings_only,
                                                          budget=page_budget(), progress=tick), 5, progress)
        out = Path(work.name) / "comparison.csv"
        write_csv(job.table, out)
        done = f"✅ Compared {len(job.table)} review(s) in column '{job.column}'" + (
            " (ratings only)." if ratings_only else ".")
        yield (_notes(job.notes) or done), job.summary, batch_summary_figure(job.summary), job.table, str(out)
    except DataError as exc:
        yield f"⚠️ {html.escape(str(exc))}", None, None, None, None
    finally:
        work.cleanup()


def score_own(file, progress=gr.Progress()):
    """Labelled CSV -> (message, metrics per language); a generator like `run_batch`, so it stops with its tab."""
    from core.budget import page_budget
    from core.data import DataError
    from core.jobs import score_job

    import pandas as pd

    try:
        res = yield from _followed(lambda tick: score_job(_path(file), budget=page_budget(), progress=tick), 2,
                                   progress)
        yield _notes(res["notes"]) or f"✅ Scored {res['n']} review(s).", pd.DataFrame(res["summary"])
    except DataError as exc:
        yield f"⚠️ {html.escape(str(exc))}", None


def batch_tab() -> None:
    gr.Markdown("Upload a CSV (or paste reviews, one per line). Optional columns with `stars`, `polarity` or "
                "`review_title` are used for scoring. Large files: "
                "`python -m core predict --csv in.csv --out out.csv`.")
    with gr.Row():
        file = gr.File(label="CSV file", file_types=[".csv", ".tsv", ".txt"], elem_id="batch-file")
        pasted = gr.Textbox(label="…or paste reviews, one per line", lines=6, elem_id="batch-text")
    with gr.Row():
        column = gr.Textbox(label="Text column (empty: guess review_body, body, text, review)", elem_id="batch-column")
        ratings_only = gr.Checkbox(False, label="Ratings only (no titles: encoder speed, for big files)",
                                   elem_id="batch-ratings-only")
        run = gr.Button("Compare all", variant="primary", elem_id="batch-btn")
    message = gr.Markdown(elem_id="batch-message")
    summary = gr.Dataframe(label="Summary per detected language", elem_id="batch-summary", interactive=False)
    plot = gr.Plot(label="Per language, both models side by side")
    table = gr.Dataframe(label="Every review", elem_id="batch-table", interactive=False, max_height=420)
    download = gr.File(label="Download the table (CSV)", elem_id="batch-download")
    # admitted by core.table_jobs (one runs, a few wait, more are told at once), so no job holds a place in the queue
    run.click(run_batch, [file, pasted, column, ratings_only], [message, summary, plot, table, download],
              api_name="batch", concurrency_limit=None)


def _report_markdown() -> str:
    md = (REPORT / "report.md").read_text(encoding="utf-8") if (REPORT / "report.md").exists() else \
        "No report yet: run `python -m core evaluate`."
    md = re.sub(r"^# .*\n", "", md)
    return md.split("## Plots")[0]


def evidence_tab() -> None:
    gr.Markdown("Measured on held-out test data by `python -m core evaluate` (re-run it to reproduce every number).")
    for name, note in PLOT_NOTES.items():
        if (REPORT / name).exists():
            gr.Image(str(REPORT / name), label=name.removesuffix(".png").replace("_", " "), show_label=True,
                     buttons=["download"], interactive=False)
            gr.Markdown(note)
    with gr.Accordion("All tables", open=False):
        gr.Markdown(_report_markdown(), elem_id="report-md")
    gr.Markdown("### Score your own data\nA CSV with a review text column and `stars` (1–5) or `polarity` "
                "(positive/negative); optional `review_title` and `language`.")
    with gr.Row():
        own = gr.File(label="Labelled CSV", file_types=[".csv", ".tsv", ".txt"], elem_id="score-file")
        go = gr.Button("Score both models", elem_id="score-btn")
    own_msg = gr.Markdown()
    own_table = gr.Dataframe(label="Metrics per language", interactive=False)
    go.click(score_own, [own], [own_msg, own_table], api_name="score", concurrency_limit=None)
