"""Batch mode: reading real-world CSV files (encodings, delimiters, broken files) and running
both real models over a small multilingual table, in-process and through the CLI."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from core import batch as B
from core import tables as T
from core.data import DataError
from core.names import MAIN_MODELS

ROOT = Path(__file__).resolve().parent.parent
NAMES = MAIN_MODELS

REVIEWS = """id,body,stars,review_title
1,"This blender is fantastic, it crushes ice in seconds and is easy to clean.",5,Great blender
2,"Das Buch ist wunderbar geschrieben und hat mich sehr berührt.",5,Wunderbar
3,"Ce produit est excellent, je le recommande à tous mes amis.",5,Excellent
4,"Terrible quality. The handle broke after two days and support never answered.",1,Broke quickly
5,"   ",3,
6,"Leider völlig enttäuschend, die Lieferung kam beschädigt an.",2,Enttäuschend
7,"Très déçu, la batterie ne tient pas une journée entière.",1,Déçu
8,"Works as described, nothing special but fine for the price.",4,Fine
9,"Gute Qualität, schnelle Lieferung, gerne wieder.",4,Gut
"""


@pytest.fixture(scope="session")
def models_dir(request) -> Path:
    """BATCH_TEST_MODELS (a pre-trained tiny pair) when set, else the shared tiny_models fixture."""
    env = os.environ.get("BATCH_TEST_MODELS")
    return Path(env) if env else request.getfixturevalue("tiny_models")


@pytest.fixture(scope="session")
def batch_engine(models_dir):
    from core.engine import Engine

    return Engine(models_dir)


@pytest.fixture(scope="session")
def predicted(batch_engine):
    read = T.read_table(REVIEWS.encode("utf-8"))
    calls: list[tuple[int, int]] = []
    df = B.predict_table(read, engine=batch_engine, batch_size=3, progress=lambda d, t: calls.append((d, t)))
    return read, df, calls


# ----------------------------------------------------------------------------- reading
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "latin-1"])
def test_reads_common_encodings(encoding):
    data = "id,text\n1,Schöne Größe\n2,Très bien\n".encode(encoding)
    r = T.read_table(data)
    assert r.column == "text"
    assert r.df["text"].tolist() == ["Schöne Größe", "Très bien"]
    assert list(r.df.columns) == ["id", "text"]  # no BOM left on the first header
    assert any("latin-1" in n for n in r.notes) == (encoding == "latin-1")


def test_semicolon_delimiter_with_commas_in_text(tmp_path):
    p = tmp_path / "de.csv"
    p.write_bytes("id;review;stars\n1;Gut, aber teuer;4\n2;Schlecht, sehr schlecht;1\n".encode("cp1252"))
    r = T.read_table(p)
    assert r.column == "review" and r.df["review"].tolist() == ["Gut, aber teuer", "Schlecht, sehr schlecht"]
    assert r.refs == {"stars": "stars"}


def test_quotes_and_newlines_inside_cells_and_tab_file():
    r = T.read_table(b'id,body\n1,"two\nlines, and ""quotes"""\n2,plain\n')
    assert r.df["body"].tolist() == ['two\nlines, and "quotes"', "plain"]
    assert r.df.index.tolist() == [0, 1]
    t = T.read_table(b"id\tBody\n1\tok fine\n")
    assert t.column == "Body" and t.df["Body"].tolist() == ["ok fine"]


@pytest.mark.parametrize("data, words", [
    (b"", "empty"),
    (b"\xef\xbb\xbf  \n\n", "empty"),
    (None, "ZIP"),  # filled in below: a real zip archive (what an .xlsx is)
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
    (b"id,text\x00\x01\x02\x00\xff\x00binary\x00", "binary"),
    (b"a,b\n1,2\n3,4\n", "no column holds review text"),
    (b"id,body\n1,42\n2,3.5\n", "only numbers"),
    (b'id,text\n1,"never closed\n2,x\n', "malformed CSV"),
    (b"id,text\n1,ok\n2,too,many\n", "malformed CSV"),
    (b"text\n", "no reviews"),
])
def test_unusable_files_give_clear_errors(data, words):
    if data is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("sheet.csv", "id,text\n1,hello\n")
        data = buf.getvalue()
    with pytest.raises(DataError, match=words):
        T.read_table(data)


def test_error_messages_name_the_columns_and_guesses():
    with pytest.raises(DataError) as e:
        T.read_table(b"a,b\n1,2\n")
    assert "'a', 'b'" in str(e.value) and "review_body" in str(e.value)
    with pytest.raises(DataError, match="no column 'comment'.*'id', 'body'"):
        T.read_table(b"id,body\n1,hello\n", column="comment")
    assert T.read_table(b"id,body\n1,hello\n", column="BODY").column == "body"


def test_size_is_checked_before_reading(tmp_path, monkeypatch):
    p = tmp_path / "big.csv"
    p.write_bytes(b"text\n" + b"a review\n" * 100)
    monkeypatch.setattr(T, "MAX_BYTES", 200)
    with pytest.raises(DataError, match="limit"):
        T.read_table(p)
    with pytest.raises(DataError, match="not found"):
        T.read_table(tmp_path / "missing.csv")


def test_100000_columns_fail_fast():
    data = (",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join("x" * 5 for _ in range(100_000))).encode()
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="columns"):
        T.read_table(data)
    assert time.perf_counter() - t0 < 5


def test_empty_rows_are_skipped_with_reasons_and_rows_capped(monkeypatch):
    r = T.read_table(b"id,text,rating\n1,good,5\n2,,4\n\n3,  ,2\n4,NaN,1\n5,fine,9\n6,ok,\n")
    assert r.df.index.tolist() == [0, 5, 6]
    assert [s["row"] for s in r.skipped] == [1, 2, 3, 4]
    assert all(s["reason"] for s in r.skipped) and r.skipped[1]["reason"] == "blank line"
    assert any("not whole numbers 1-5" in n for n in r.notes)
    capped = T.read_table(b"text\na\nb\nc\nd\n", rows=2)
    assert capped.df["text"].tolist() == ["a", "b"]
    assert any("Only the first 2 reviews were read" in n for n in capped.notes)


def test_column_guess_and_pasted_lines():
    r = T.read_table(b"id,Comment,Score\n1,I really like this one a lot,5\n2,meh,2\n")
    assert r.column == "Comment" and r.refs == {}
    lines = T.lines_table("First review\n\n  second one  \n")
    assert lines.column == "text" and lines.df["text"].tolist() == ["First review", "second one"]
    with pytest.raises(DataError):
        T.lines_table("  \n\n")


def test_reference_values():
    assert [T.parse_stars(v) for v in ("4", "4.0", "4.5", "0", "6", "", "good")] == [4, 4, None, None, None, None,
                                                                                      None]
    assert [T.parse_polarity(v) for v in ("Positive", "neg", "1", "-1", "0")] == [
        "positive", "negative", "positive", "negative", "negative"]
    assert T.parse_polarity("0", zero_is_negative=False) is None  # in a -1/0/1 column 0 is neutral


# ----------------------------------------------------------------------------- models
def test_predict_table_keeps_input_order_and_all_columns(predicted):
    read, df, calls = predicted
    assert read.skipped == [{"row": 4, "reason": "the text cell is empty"}]
    assert df["row"].tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    assert df["text"].tolist() == read.df["body"].tolist()
    expected = ["row", "text", "language"] + [f"{m}_{k}" for m in NAMES for k in (
        "stars", "polarity", "title", "title_language", "accidental_translation", "copied", "seen_in_training",
        "encoder_decoder_title", "encoder_decoder_title_language")]
    assert list(df.columns) == expected + ["ref_stars", "ref_title"]
    assert set(df["language"]) == {"en", "de", "fr"}
    for m in NAMES:
        assert df[f"{m}_stars"].between(1, 5).all()
        assert set(df[f"{m}_polarity"]) <= {"positive", "negative"}
        assert df[f"{m}_accidental_translation"].dtype == bool
    assert df["ref_stars"].tolist() == [5, 5, 5, 1, 2, 1, 4, 4]
    assert calls == [(3, 8), (6, 8), (8, 8)]


def test_summarize_has_a_row_per_language_and_all(predicted):
    _, df, _ = predicted
    s = B.summarize(df, NAMES)
    assert s["language"].tolist()[-1] == "all" and set(s["language"]) == {"en", "de", "fr", "all"}
    assert s.set_index("language")["n"].to_dict() == {"en": 3, "de": 3, "fr": 2, "all": 8}
    for m in NAMES:
        for c in ("title_in_input_language", "star_accuracy", "polarity_accuracy"):
            vals = s[f"{m}_{c}"].dropna()
            assert ((vals >= 0) & (vals <= 1)).all()
        assert f"{m}_star_mae" in s and f"{m}_chrf" in s
    assert s["polarity_agreement"].between(0, 1).all()


def test_score_labelled_needs_labels(batch_engine):
    with pytest.raises(DataError, match="stars column"):
        B.score_labelled(T.lines_table("Great\nBad"), engine=batch_engine)
    res = B.score_labelled(T.read_table(b"text,label\nI love it so much,positive\nAwful and broken,negative\n"),
                           engine=batch_engine)
    assert res["n"] == 2 and res["skipped"] == [] and res["summary"][-1]["language"] == "all"
    assert all(0 <= res["summary"][-1][f"{m}_polarity_accuracy"] <= 1 for m in NAMES)


def _cli(args: list[str], models_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core", "predict", *args, "--models", str(models_dir)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_cli_writes_predictions_and_rejects_bad_files(tmp_path, models_dir, predicted):
    src = tmp_path / "in.csv"
    src.write_text(REVIEWS, encoding="utf-8")
    out = tmp_path / "out.csv"
    r = _cli(["--csv", str(src), "--column", "body", "--out", str(out)], models_dir)
    assert r.returncode == 0, r.stderr[-2000:]
    written = pd.read_csv(out)
    assert list(written.columns) == list(predicted[1].columns)
    assert written["row"].tolist() == [0, 1, 2, 3, 5, 6, 7, 8]
    assert "all" in r.stdout and "row 4: the text cell is empty" in r.stdout

    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    r = _cli(["--csv", str(bad)], models_dir)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "PNG" in r.stderr
    assert not (tmp_path / "bad.predictions.csv").exists()


def test_ratings_only_skips_both_titles_and_keeps_the_same_stars(batch_engine, predicted):
    read, df, _ = predicted
    quick = B.predict_table(read, engine=batch_engine, titles=False)
    for m in NAMES:
        assert quick[f"{m}_stars"].tolist() == df[f"{m}_stars"].tolist()
        assert (quick[f"{m}_title"] == "").all() and (quick[f"{m}_encoder_decoder_title"] == "").all()
        assert df[f"{m}_title"].str.len().gt(0).all()


def test_with_titles_a_page_job_takes_only_the_rows_that_finish_in_about_ten_minutes():
    from core.budget import Budget, fit

    read = T.lines_table("\n".join(f"Review number {i}, quite good." for i in range(12)))
    cut, note = fit(read, titles=True, budget=Budget(rows=100, titled_rows=5))
    assert len(cut.df) == 5 and cut.df.index.tolist() == [0, 1, 2, 3, 4]
    assert "first 5 of 12" in note and "python -m core predict --csv" in note and "titles off for up to 100" in note
    same, none = fit(read, titles=True, budget=Budget(rows=100, titled_rows=12))
    assert same is read and none == ""
    rated, note = fit(read, titles=False, budget=Budget(rows=7, titled_rows=5))
    assert len(rated.df) == 7 and "at most 7" in note

