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
}


def _message(read_or_none, exc: Exception | None = None) -> str:
    if exc is not None:
        return f"⚠️ {html.escape(str(exc))}"
    lines = []
    if read_or_none is not None:
        lines += [f"ℹ️ {html.escape(n)}" for n in read_or_none.notes]
        if read_or_none.skipped:
            reasons = {}
            for s in read_or_none.skipped:
                reasons[s["reason"]] = reasons.get(s["reason"], 0) + 1
            lines.append("Skipped " + ", ".join(f"{n} row(s): {html.escape(r)}" for r, n in reasons.items()))
    return "  \n".join(lines)


def run_batch(file, pasted: str, column: str, ratings_only: bool = False, progress=gr.Progress()):
    """CSV file or pasted lines -> (message, summary table, plot, result table, CSV download)."""
    from core import batch, tables
    from core.data import DataError
    from core.report import batch_summary_figure

    try:
        if file:
            read = tables.read_table(Path(file if isinstance(file, str) else file.name), column=column or None)
        elif pasted and pasted.strip():
            read = tables.lines_table(pasted)
        else:
            raise DataError("Upload a CSV file or paste reviews, one per line.")
        note = ""
        if not ratings_only:
            read, note = batch.limit_titled_rows(read)
        progress(0, desc="Comparing…")
        table = batch.predict_table(read, titles=not ratings_only,
                                    progress=lambda done, total: progress(done / max(total, 1),
                                                                          desc=f"{done}/{total} reviews"))
        summary = batch.summarize(table)
        out = Path(tempfile.mkdtemp(prefix="batch-")) / "comparison.csv"
        table.to_csv(out, index=False)
        done = f"✅ Compared {len(table)} review(s) in column '{read.column}'" + (
            " (ratings only)." if ratings_only else ".")
        msg = "  \n".join(m for m in (_message(read), html.escape(note)) if m) or done
        return msg, summary, batch_summary_figure(summary), table, str(out)
    except DataError as exc:
        return _message(None, exc), None, None, None, None


def score_own(file, progress=gr.Progress()):
    from core import batch, tables
    from core.data import DataError

    try:
        if not file:
            raise DataError("Upload a labelled CSV: a text column plus stars or polarity (optional: title, language).")
        read = tables.read_table(Path(file if isinstance(file, str) else file.name))
        res = batch.score_labelled(read, progress=lambda d, t: progress(d / max(t, 1)))
        import pandas as pd

        return _message(read) or f"✅ Scored {res['n']} review(s).", pd.DataFrame(res["summary"])
    except DataError as exc:
        return _message(None, exc), None


def batch_tab() -> None:
    gr.Markdown("Upload a CSV (or paste reviews, one per line). Optional columns with `stars`, `polarity` or "
                "`review_title` are used for scoring. Large files: `python -m core predict --csv in.csv --out out.csv`.")
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
    run.click(run_batch, [file, pasted, column, ratings_only], [message, summary, plot, table, download], api_name="batch",
              concurrency_limit=1, concurrency_id="batch")


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
    go.click(score_own, [own], [own_msg, own_table], api_name="score", concurrency_limit=1, concurrency_id="batch")
