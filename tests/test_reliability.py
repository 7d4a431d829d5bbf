"""Hostile jobs and faults (issue #23): each test names the finding it covers.

1 titled rows without a cap · 2 jobs that cannot be stopped · 3 work before any cap · 4 start-up faults · 5 CSV
injection · 6 files piling up. (7, one text per click, is in test_browser.py; 2's compare beside a batch in
test_app_api.py.)
"""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, SHIPPED

CACHE = Path(os.environ.get("CROSSLINGUAL_CACHE") or Path(os.environ.get("XDG_CACHE_HOME")
                                                        or Path.home() / ".cache") / "crosslingual-review-lab")


# ------------------------------------------------------------------ 5: CSV output safe in a spreadsheet
def test_csv_output_cannot_run_as_a_formula_opens_as_utf8_and_reads_back_to_the_same_text(tmp_path):
    """Finding 5: review text and titles were written verbatim (live formulas in Excel) and without a BOM."""
    from core import tables
    from core.batch import predict_csv_cli

    reviews = ['=HYPERLINK("http://example.com","Klick mich") Tolles Gerät, gerne wieder.',
               "-1 Stern wäre noch zu viel: nach zwei Tagen kaputt.",
               "@Händler: bitte melden, das Gerät ist defekt.",
               "+++ Super Kaffeemaschine, schnelle Lieferung +++",
               "Ganz normal gut, würde ich wieder kaufen."]
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": reviews}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    assert predict_csv_cli(str(src), None, str(out)) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "no UTF-8 BOM: Excel would show the umlauts garbled"
    cells = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    every_cell = [v for col in cells.columns for v in cells[col].tolist()]
    assert not [v for v in every_cell if v.startswith(("=", "+", "-", "@", "\t", "\r"))], "a cell would run"
    assert cells["text"].tolist()[:4] == ["'" + r for r in reviews[:4]] and cells["text"].tolist()[4] == reviews[4]
    back = tables.read_table(out, column="text")
    assert back.df["text"].tolist() == reviews, "the CLI does not read its own output back to the same text"


# ------------------------------------------------------------------ 1 and 3: one budget, cut before work
def test_a_20000_row_scoring_upload_stops_at_the_budget_with_a_message(tmp_path, monkeypatch):
    """Finding 1: 'Score your own data' titled up to 20,000 rows. The page's function now cuts to the budget before
    any model runs, says so, and names the command line for the rest."""
    from demo.tabs import score_own

    monkeypatch.setenv("CROSSLINGUAL_JOB_ROWS", "40")
    monkeypatch.setenv("CROSSLINGUAL_JOB_TITLED_ROWS", "5")
    path = tmp_path / "labelled.csv"
    pd.DataFrame({"text": [f"Review {i}: {'great, works well' if i % 2 else 'broke after a week'}."
                           for i in range(20_000)], "stars": [5 if i % 2 else 1 for i in range(20_000)]}
                 ).to_csv(path, index=False)
    *_ticks, (message, table) = score_own(str(path), progress=lambda *a, **k: None)
    assert "Only the first 40 reviews were read" in message
    assert "Titles were not written" in message and "python -m core predict" in message
    assert table is not None and int(table[table["language"] == "all"]["n"].iloc[0]) == 40


def test_nothing_past_the_row_limit_is_parsed_or_visited():
    """Finding 3: the whole file was parsed, and every row visited, before the cap applied."""
    from core import tables
    from core.data import DataError

    broken_far_below = b"text,n\n" + b"good product,1\n" * 100 + b"a,b,c,d,e\n"  # a parser error at line 102
    with pytest.raises(DataError, match="malformed"):
        tables.read_table(broken_far_below, column="text", rows=1000)
    read = tables.read_table(broken_far_below, column="text", rows=10)  # never reaches that line
    assert len(read.df) == 10
    blanks = b"text,n\n" + b",1\n" * 5000 + b"fine,2\n"
    assert len(tables.read_table(blanks, column="text", rows=5000).skipped) == 5000
    with pytest.raises(DataError, match="no reviews"):  # the one review lies past 2 x 10 rows: never reached
        tables.read_table(blanks, column="text", rows=10)


def test_a_huge_paste_is_cut_before_any_other_work():
    """Finding 3: prepare_text encoded the whole string before cutting it. A broken character far past the cut
    must not even be looked at."""
    from core.review_text import MAX_CHARS, prepare_text

    text, cut, note = prepare_text("Gut. " * (MAX_CHARS // 5) + "\ud800" + "x" * 10_000_000)
    assert cut and len(text) == MAX_CHARS and note == ""


# ------------------------------------------------------------------ 6: no files left behind
def test_no_batch_temp_folder_is_left_after_a_run(tmp_path, monkeypatch):
    """Finding 6: every batch left a mkdtemp folder behind. The job now yields its answer (Gradio copies the CSV
    while it is paused there) and removes its folder when resumed."""
    import tempfile

    from demo import build_demo
    from demo.tabs import run_batch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    job = run_batch(None, "Tolles Produkt, gerne wieder.\nAwful, broke at once.", "", True,
                    progress=lambda *a, **k: None)
    answer = next(job)
    while str(answer[0]).startswith("⏳"):  # ticks while the job runs
        answer = next(job)
    message, _summary, _plot, table, download = answer
    assert "Compared 2 review" in message and len(table) == 2
    assert Path(download).is_file() and Path(download).parent.parent == tmp_path
    assert next(job, None) is None
    assert list(tmp_path.iterdir()) == [], "the batch's temporary folder is still there"
    assert build_demo(compare_fn=lambda *a: {}, rate_fn=lambda *a: {}).delete_cache, "Gradio's cache is never cleaned"


# ------------------------------------------------------------------ 4: start-up faults
def _cache_with(tmp_path: Path, *links: str) -> Path:
    """An empty cache for one test, holding links to the named folders of the real one (no re-conversion)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in links:
        (cache / name).symlink_to(CACHE / name, target_is_directory=True)
    return cache


def test_a_truncated_converted_base_is_detected_and_built_again(tmp_path, monkeypatch, caplog):
    """Finding 4: a truncated cache file was only checked for existence, and the error said to use a hub id."""
    import shutil

    from core import base

    real = CACHE / base.converted_dir().name
    cache = tmp_path / "cache"
    shutil.copytree(real, cache / real.name)
    weights = cache / real.name / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as f:
        f.truncate(size // 3)
    monkeypatch.setenv("CROSSLINGUAL_CACHE", str(cache))
    with caplog.at_level("WARNING"):
        _tok, model = base.load_base()
    assert model.config.hidden_size == 384
    assert weights.stat().st_size == size, "the damaged file was not built again"
    assert any("cannot be loaded" in r.getMessage() and str(cache) in r.getMessage() for r in caplog.records)


def test_a_truncated_file_derived_for_llama_cpp_is_derived_again(tmp_path, monkeypatch, caplog):
    """Finding 4: the llama.cpp engine's derived files (layers, output layer) were trusted if they existed."""
    from core.titles.gemma_base import converted_dir
    from core.titles.llama_engine import LlamaTitles

    cache = _cache_with(tmp_path, converted_dir().name)
    (cache / "gguf").mkdir()
    source = next((CACHE / "gguf").glob("gemma-3-270m-q4_k_m.gguf"))
    (cache / "gguf" / source.name).symlink_to(source)
    monkeypatch.setenv("CROSSLINGUAL_CACHE", str(cache))
    dirs = {"de_finetuned": SHIPPED / "de_finetuned"}
    text = "Die Kaffeemühle war nach zwei Wochen defekt. Nie wieder."
    first = LlamaTitles(dirs)
    want = first.titles(text, language="de")
    first.close()
    layers = next((cache / "gguf").glob("*-layers-*.gguf"))
    size = layers.stat().st_size
    with open(layers, "r+b") as f:
        f.truncate(size // 2)
    with caplog.at_level("WARNING"):
        again = LlamaTitles(dirs)
    try:
        assert again.titles(text, language="de") == want
    finally:
        again.close()
    assert layers.stat().st_size == size
    assert any("deriving them again" in r.getMessage() for r in caplog.records)


BREAK_LLAMA = """import llama_cpp._internals as _i


def _refuse(self, *a, **k):
    raise ValueError("Failed to load model from file: (refused for this test)")


_i.LlamaModel.__init__ = _refuse
_i.LlamaModel.__del__ = lambda self: None  # the refused object has nothing to close
"""


def test_llama_cpp_failing_to_load_falls_back_to_pytorch_with_a_log_line(tmp_path):
    """Finding 4: a llama.cpp load failure escaped app.py as a traceback; the promised fallback did not exist.
    In this subprocess only, llama-cpp-python's model loader raises exactly what it raises for a file it cannot
    load (a sitecustomize on PYTHONPATH)."""
    (tmp_path / "sitecustomize.py").write_text(BREAK_LLAMA)
    code = ("import json; from core.inference import compare; from core.engine import get_engine; "
            "r = compare('Die Kaffeemühle war nach zwei Wochen defekt. Nie wieder.').to_dict(); "
            "print(json.dumps({'engine': get_engine().generator.engine, "
            "'titles': [m['title'] for m in r['models'].values()]}))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    import json

    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["engine"] != "llama.cpp" and all(out["titles"]), out
    assert "llama.cpp cannot run the title generator" in r.stderr and "PyTorch" in r.stderr
    assert "Traceback" not in r.stderr


def test_two_concurrent_setups_end_with_one_valid_cache(tmp_path):
    """Finding 4: two processes setting up at once had no lock, so the later one could rmtree the folder the first
    had finished (and was reading). Both start on an empty base cache at the same moment; the one that waits must
    find the other's folder and leave it alone."""
    from core.base import converted_dir
    from core.titles.gemma_base import converted_dir as generator_dir

    cache = _cache_with(tmp_path, generator_dir().name, "gguf")
    env = {**os.environ, "CROSSLINGUAL_CACHE": str(cache)}
    procs = [subprocess.Popen([sys.executable, "-m", "core", "setup", "--no-data"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = cache / converted_dir().name / "done.json"
    first: list[tuple[int, int]] = []

    def watch():  # the folder as the first finished process left it
        while all(p.poll() is None for p in procs):
            time.sleep(0.05)
        if done.exists():
            first.append((done.stat().st_ino, done.stat().st_mtime_ns))

    watcher = threading.Thread(target=watch)
    watcher.start()
    outs = [p.communicate(timeout=600) for p in procs]
    watcher.join()
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert first and (done.stat().st_ino, done.stat().st_mtime_ns) == first[0], \
        "the second setup replaced the folder the first one had finished"
    assert [p.name for p in cache.iterdir() if p.name.startswith(".convert")] == []
    check = subprocess.run([sys.executable, "-c", "from core.base import load_base; "
                            "print(load_base()[1].config.hidden_size)"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert check.stdout.strip() == "384", check.stderr[-2000:]


# ------------------------------------------------------------------ 2: a job stops when its tab closes
def test_closing_the_tab_stops_a_batch_within_a_chunk_and_the_engine_answers_the_next_visitor(tmp_path):
    """Finding 2: closing the tab did not stop a running batch, which kept the engine from the whole class. A real
    browser starts a full-budget batch (500 distinct reviews with titles), sees its progress, and closes the tab;
    the server must report the job stopped within two chunks (4 titled reviews each) of what the page last showed,
    and then answer a compare."""
    import re

    from gradio_client import Client
    from local_server import running_app
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, FLAGS

    from load_test import review_texts

    texts = [t.replace("\n", " ") for t in review_texts(500)]
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log, running_app(log=log) as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("tab", name="Batch").click()
        page.locator("#batch-text textarea").fill("\n".join(texts))
        page.locator("#batch-btn").click()
        page.wait_for_function("() => /[1-9][0-9]* of 500 reviews/.test("
                               "document.querySelector('#batch-message').innerText)", timeout=300_000)
        seen = int(re.search(r"(\d[\d,]*) of 500", page.locator("#batch-message").inner_text()).group(1))
        page.close()  # the visitor leaves
        browser.close()
        stopped = None
        for _ in range(600):
            stopped = re.search(r"A table job stopped after (\d+) of 500 reviews", log_path.read_text())
            if stopped:
                break
            time.sleep(0.5)
        assert stopped, log_path.read_text()[-2000:]
        assert int(stopped.group(1)) <= seen + 8, (seen, stopped.group(0))
        d = Client(url, verbose=False).predict("Tolles Produkt, gerne wieder!", "auto", api_name="/compare")
        assert d["models"]["de_finetuned"]["title"]
