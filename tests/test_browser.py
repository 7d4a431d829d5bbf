"""A real browser (Debian's chromium via playwright): type a German review, press Compare, see both columns."""
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(server, browser):
    pg = browser.new_page(viewport={"width": 1280, "height": 1400})
    pg.goto(server)
    yield pg
    pg.close()


def test_german_review_fills_both_columns_and_the_detected_language(page, tmp_path):
    page.locator("#review-text textarea").fill(
        "Leider eine totale Enttäuschung. Die Kaffeemühle war nach zwei Wochen defekt und der Händler "
        "reagiert nicht auf meine Nachrichten.")
    page.locator("#compare-btn").click()
    page.wait_for_selector("#title-de_finetuned .gen-title", timeout=60_000)
    assert "German" in page.locator("#detected").inner_text()
    for key in ("en_trained", "de_finetuned"):
        assert "/5" in page.locator(f"#stars-{key}").inner_text()
        assert page.locator(f"#title-{key} .gen-title").inner_text().strip('“” ')
        assert page.locator(f"#title-{key} .badge").first.inner_text()
        seed = page.locator(f"#title-{key} .seed-title")  # the question's setup, as a second line with its badge
        assert "encoder-decoder from the encoder" in seed.inner_text()
        assert seed.locator(".badge").inner_text()
        stars = page.locator(f"#probs-{key} .star-name").all_inner_texts()
        assert [t.strip() for t in stars] == ["1 ★", "2 ★", "3 ★", "4 ★", "5 ★"]  # star order, not by value
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert (tmp_path / "compare.png").stat().st_size > 10_000


def test_ratings_show_first_with_a_placeholder_then_both_titles_fill_in(page):
    """Step one (language, both ratings, seed titles) is on screen while the main titles are still being
    written; then both titles replace the placeholders."""
    page.locator("#review-text textarea").fill(
        "Der Staubsauger ist leise und saugt gut, nur der Behälter ist schnell voll. Für die Wohnung reicht er.")
    page.locator("#compare-btn").click()
    page.wait_for_function(
        "document.querySelector('#stars-en_trained').innerText.includes('/5')"
        " && document.querySelector('#stars-de_finetuned').innerText.includes('/5')"
        " && document.querySelector('#title-de_finetuned .title-pending')"
        " && document.querySelector('#title-de_finetuned .seed-title')", timeout=60_000, polling=20)
    page.wait_for_selector("#title-en_trained .gen-title", timeout=60_000)
    page.wait_for_selector("#title-de_finetuned .gen-title", timeout=60_000)
    for key in ("en_trained", "de_finetuned"):
        assert page.locator(f"#title-{key} .gen-title").inner_text().strip('“” ')
        assert page.locator(f"#title-{key} .title-pending").count() == 0


def test_html_in_the_review_is_shown_as_text_never_run(page):
    page.evaluate("window.__pwned = false")
    page.locator("#review-text textarea").fill('<img src=x onerror="window.__pwned=true"> Tolles Teil, gerne wieder!')
    page.locator("#compare-btn").click()
    page.wait_for_function("document.querySelector('#status') && document.querySelector('#status').innerText.includes('ms')",
                           timeout=60_000)
    assert page.evaluate("window.__pwned") is False


def test_batch_tab_uploads_a_csv_and_downloads_the_result(page, tmp_path):
    csv = tmp_path / "reviews.csv"
    csv.write_text("body,stars\n"
                   "\"Super Teil, funktioniert einwandfrei und sieht gut aus.\",5\n"
                   "\"Broke after two days, total waste of money.\",1\n"
                   "\"Très déçu, la batterie ne tient pas.\",1\n"
                   ",3\n", encoding="utf-8")
    page.get_by_role("tab", name="Batch").click()
    page.locator("#batch-file input[type=file]").set_input_files(str(csv))
    page.locator("#batch-btn").click()
    page.wait_for_selector("#batch-download a", timeout=120_000)
    assert "Skipped 1 row" in page.locator("#batch-message").inner_text()
    table = page.locator("#batch-table").inner_text()
    assert "en_trained_stars" in table and "de_finetuned_title" in table
    with page.expect_download() as dl:
        page.locator("#batch-download a").first.click()
    path = tmp_path / "downloaded.csv"
    dl.value.save_as(path)
    import pandas as pd

    df = pd.read_csv(path)
    assert len(df) == 3 and {"language", "en_trained_stars", "de_finetuned_title_language"} <= set(df.columns)
    page.screenshot(path=str(tmp_path / "batch.png"), full_page=True)


def test_evidence_tab_shows_the_report_plots(page):
    page.get_by_role("tab", name="Evidence").click()
    page.wait_for_selector("img[src*='polarity_accuracy']", timeout=30_000)
    assert page.locator("img[src*='title_language']").count() == 1
    assert page.locator("img[src*='german_titles_curve']").count() == 1
    assert "teach the language, not the writing" in page.content()
    assert "catastrophic forgetting" in page.content()


def test_why_view_shows_both_tokenizations(page):
    page.get_by_role("tab", name="Compare").click()
    page.locator("#review-text textarea").fill("Die Verarbeitung ist hervorragend und die Lieferung kam pünktlich.")
    page.locator("#compare-btn").click()
    page.get_by_text("Why? Where each model puts this review, and how each base splits it into pieces").click()
    page.wait_for_function("document.querySelector('#tokens-multi') && "
                           "document.querySelector('#tokens-multi').innerText.includes('Verarbeitung')", timeout=60_000)
    stats = page.locator("#token-stats").inner_text()
    assert "multilingual" in stats and "English-only" in stats
    assert "vera" in page.locator("#tokens-en").inner_text()  # WordPiece fragments of "Verarbeitung"


def test_why_view_maps_a_german_review_as_a_highlighted_ring_on_both_models(page):
    page.get_by_role("tab", name="Compare").click()
    page.locator("#review-text textarea").fill("Der Akku hält keinen Tag, das Display flackert. Zurückgeschickt.")
    page.locator("#compare-btn").click()
    if not page.locator("#map-en_trained").is_visible():
        page.get_by_text("Why? Where each model puts this review, and how each base splits it into pieces").click()
    ring = "svg path[stroke='#c000c0']"  # the "your review" colour: 17 ring points plus its legend symbol
    for key in ("en_trained", "de_finetuned"):
        plot = page.locator(f"#map-{key}")
        plot.scroll_into_view_if_needed()
        page.wait_for_function(f"document.querySelectorAll(\"#map-{key} {ring}\").length >= 17", timeout=30_000)
        assert plot.is_visible()
        legend = plot.text_content()  # the legend's labels, in whichever of the plot's SVGs they render
        assert "your review" in legend and "German · negative" in legend and "English · positive" in legend
        assert plot.locator("svg path[stroke='#1f4e9e']").count() > 100  # English positive reviews
    note = page.locator("#map-neighbours").inner_text()
    assert "5 nearest English reviews" in note and "%" in note


def test_the_english_only_checkbox_adds_a_third_column(page):
    assert not page.locator("#col-minilm_en_trained").is_visible()
    page.locator("#english-only input").check()
    page.locator("#col-minilm_en_trained").wait_for(state="visible", timeout=10_000)
    page.locator("#review-text textarea").fill("Totaler Schrott. Nach zwei Tagen kaputt, Geld zurück und nie wieder.")
    page.locator("#compare-btn").click()
    page.wait_for_function("document.querySelector('#stars-minilm_en_trained') && "
                           "document.querySelector('#stars-minilm_en_trained').innerText.includes('/5')",
                           timeout=60_000)
    assert "★" in page.locator("#probs-minilm_en_trained").inner_text()
    for key in ("en_trained", "de_finetuned"):
        assert "/5" in page.locator(f"#stars-{key}").inner_text()
    page.locator("#english-only input").uncheck()
    page.locator("#col-minilm_en_trained").wait_for(state="hidden", timeout=10_000)


def test_an_example_runs_the_same_steps_as_compare_and_every_column_answers_that_example(page):
    """#23 finding 7: a clicked example used to fill only the two main columns, leaving the English-only column
    and the token view on the previous review. Now it runs the button's chain, and every part answers it."""
    from core.service import english_only_dict
    from demo.ui import EXAMPLES

    example = next(e["text"] for e in EXAMPLES if e["text"].startswith("Absolutely love this backpack"))
    page.get_by_role("tab", name="Compare").click()
    page.locator("#english-only input").check()
    page.locator("#col-minilm_en_trained").wait_for(state="visible", timeout=10_000)
    first = "Totaler Schrott. Nach zwei Tagen kaputt, Geld zurück und nie wieder."
    page.locator("#review-text textarea").fill(first)
    page.locator("#compare-btn").click()
    page.wait_for_selector("#title-de_finetuned .gen-title", timeout=60_000)
    page.get_by_text(example[:40]).first.click()
    page.wait_for_function("document.querySelector('#detected').innerText.includes('English')"
                           " && document.querySelector('#title-de_finetuned .gen-title')", timeout=60_000)
    assert page.locator("#review-text textarea").input_value() == example
    def shown(text):  # the English-only column's stars line for `text`, as the page renders it
        m = english_only_dict(text)
        return f"{m['stars']}/5 · {m['polarity']}"

    expected = shown(example)
    assert expected != shown(first), "both reviews get the same stars: the check below would prove nothing"
    page.wait_for_function(f"document.querySelector('#stars-minilm_en_trained').innerText.includes({expected!r})",
                           timeout=30_000)
    if not page.locator("#tokens-multi").is_visible():
        page.get_by_text("Why? Where each model puts this review, and how each base splits it into pieces").click()
    page.wait_for_function("(document.querySelector('#tokens-multi')?.innerText || '').includes('laptop')"
                           " && (document.querySelector('#tokens-en')?.innerText || '').includes('backpack')",
                           timeout=30_000)
    page.locator("#english-only input").uncheck()
    page.locator("#col-minilm_en_trained").wait_for(state="hidden", timeout=10_000)


def test_the_zero_shot_checkbox_adds_the_english_titles_plus_remedy_column(page):
    page.get_by_role("tab", name="Compare").click()
    assert not page.locator("#col-en_zero_shot").is_visible()
    page.locator("#zero-shot input").check()
    page.locator("#col-en_zero_shot").wait_for(state="visible", timeout=10_000)
    page.locator("#review-text textarea").fill("Die Kaffeemühle war nach zwei Wochen defekt. Nie wieder.")
    page.locator("#compare-btn").click()
    page.wait_for_selector("#title-en_zero_shot .gen-title", timeout=120_000)
    assert page.locator("#title-en_zero_shot .gen-title").inner_text().strip("“” ")
    assert page.locator("#title-en_zero_shot .badge").first.inner_text()
    assert "/5" in page.locator("#stars-en_zero_shot").inner_text()
    page.locator("#zero-shot input").uncheck()
    page.locator("#col-en_zero_shot").wait_for(state="hidden", timeout=10_000)


def test_a_full_queue_tells_the_visitor_it_is_busy(browser, tmp_path):
    """What a visitor sees when the queue is full: Gradio's toast "This application is currently busy. Please try
    again." at once, and a page that stays usable. CROSSLINGUAL_QUEUE_SIZE=0 makes every request meet a full queue
    (the same 503 queue_full answer as a busy server; tests/test_server_safety.py fills a real queue of 1)."""
    import time

    from local_server import running_app

    with open(tmp_path / "server.log", "w") as log, \
            running_app({"CROSSLINGUAL_QUEUE_SIZE": "0"}, log=log) as (url, _):
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.goto(url)
        pg.locator("#review-text textarea").fill("Tolles Produkt, gerne wieder.")
        t = time.perf_counter()
        pg.locator("#compare-btn").click()
        toast = pg.get_by_text("This application is currently busy. Please try again.")
        toast.wait_for(timeout=15_000)
        assert time.perf_counter() - t < 15
        pg.screenshot(path=str(tmp_path / "busy.png"))
        assert pg.locator("#compare-btn").is_enabled()
        assert not pg.locator("#stars-en_trained").inner_text().strip()  # no stale or partial result
        pg.close()
