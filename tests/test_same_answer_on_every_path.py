"""The same review gets the same stars and the same two titles from `compare`, the batch path (Batch tab,
`evaluate`) and the command line, whatever else is in its batch."""
import subprocess
import sys

import pandas as pd

from conftest import ROOT
from core.names import MAIN_MODELS

REVIEWS = [
    "Der Schuh ist bequem, aber leider viel zu klein ausgefallen. Mittelmäßige Passform.",
    "Stale and bland. The cookies tasted like cardboard and arrived crushed.",
    "Broke after one use. The handle snapped the first time I used it.",
    "Ein wunderbarer Roman, ich habe ihn in zwei Tagen gelesen.",
    "Très déçu, la batterie ne tient pas une journée.",
    "La freidora funciona muy bien y se limpia en un momento.",
]


def answers_of(row: dict, m: str) -> tuple:
    return (row[f"{m}_stars"], row[f"{m}_title"], row[f"{m}_encoder_decoder_title"])


def test_compare_batch_and_cli_agree_for_both_generators(engine, tmp_path):
    from core import batch, compare, tables

    single = {}
    for text in REVIEWS:
        d = compare(text, engine=engine).to_dict()["models"]
        single[text] = {m: (o["stars"], o["title"], o["encoder_decoder"]["title"]) for m, o in d.items()}
    table = batch.predict_table(tables.lines_table("\n".join(REVIEWS)), engine=engine, batch_size=16)
    for row in table.to_dict("records"):
        for m in MAIN_MODELS:
            assert answers_of(row, m) == single[row["text"]][m], (row["text"], m)
    src = tmp_path / "in.csv"
    pd.DataFrame({"body": REVIEWS}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    r = subprocess.run([sys.executable, "-m", "core", "predict", "--csv", str(src), "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    cli = pd.read_csv(out, keep_default_na=False)
    for row in cli.to_dict("records"):
        for m in MAIN_MODELS:
            assert answers_of(row, m) == single[row["text"]][m], (row["text"], m)


def test_a_reviews_titles_do_not_depend_on_its_batch_neighbours(engine):
    from core import batch, tables

    alone = batch.predict_table(tables.lines_table(REVIEWS[0]), engine=engine)
    crowd = batch.predict_table(tables.lines_table("\n".join(REVIEWS[::-1])), engine=engine)
    got = crowd[crowd["text"] == REVIEWS[0]].iloc[0]
    for m in MAIN_MODELS:
        assert got[f"{m}_title"] == alone.iloc[0][f"{m}_title"]
        assert got[f"{m}_encoder_decoder_title"] == alone.iloc[0][f"{m}_encoder_decoder_title"]
