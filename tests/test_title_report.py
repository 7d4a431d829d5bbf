"""Issue 8: the title report separates generating from memorising, on the test split only."""
import pytest
import torch

from core import data as D
from core.evaluate import nearest_titles, title_block
from core.title_words import title_hash


def R(uid, split, title, body, lang="de"):
    return D.Review(lang, title, body, 5, "positive", "lab_de", split, uid=uid, group=uid)


def fake_embed(texts):
    """Bag-of-letters vectors: enough to make 'nearest' well defined without a model."""
    v = torch.zeros(len(texts), 64)
    for i, t in enumerate(texts):
        for ch in t.lower():
            v[i, ord(ch) % 64] += 1
    return torch.nn.functional.normalize(v, dim=-1)


def test_nearest_title_baseline_uses_training_titles_for_test_reviews_only():
    train = [R("a", "train", "Tolle Kaffeemaschine", "Kaffee schmeckt super"),
             R("b", "train", "Schlechte Schuhe", "Die Schuhe drücken")]
    test = [R("t1", "test", "Guter Kaffee", "Der Kaffee schmeckt super lecker")]
    assert nearest_titles(train, test, fake_embed) == {"t1": "Tolle Kaffeemaschine"}
    with pytest.raises(ValueError):
        nearest_titles(train + [R("d", "dev", "x", "y")], test, fake_embed)
    with pytest.raises(ValueError):
        nearest_titles(train, test + [R("c", "train", "x", "y")], fake_embed)


def test_novelty_counts_verbatim_training_titles_and_copies():
    rows = [R("t1", "test", "Guter Kaffee", "Der Kaffee schmeckt super"),
            R("t2", "test", "Naja", "Die Schuhe drücken leider"),
            R("t3", "test", "Okay", "Ganz okay für den Preis")]
    hyps = {"t1": "Tolles Produkt", "t2": "Schuhe drücken", "t3": "Solide Ware"}
    seen = {title_hash("Tolles Produkt")}
    b = title_block(rows, hyps, seen, "de")
    assert b["verbatim_training_title"]["rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert b["verbatim_training_title"]["n"] == 3 and len(b["verbatim_training_title"]["ci95"]) == 2
    assert b["copied_from_input"]["rate"] == pytest.approx(1 / 3, abs=1e-3)
    assert b["badges"]["seen_in_training"] == 1 and b["badges"]["copied"] == 1


def test_title_hash_ignores_case_and_punctuation_but_not_words():
    assert title_hash("Tolles Produkt!") == title_hash("tolles   produkt")
    assert title_hash("Tolles Produkt") != title_hash("Tolles Teil")


def test_distinctness_and_the_most_repeated_title_are_counted_on_normalised_text():
    rows = [R(f"t{i}", "test", "Ref", f"Body {i}") for i in range(4)]
    hyps = {"t0": "Great value!", "t1": "great value", "t2": "Great Value.", "t3": "Broke fast"}
    b = title_block(rows, hyps, set(), "en")
    assert b["distinct"]["rate"] == pytest.approx(0.5) and b["distinct"]["n"] == 4
    assert b["most_repeated"]["count"] == 3 and b["most_repeated"]["title"] == "Great value!"


def test_sentiment_agreement_compares_the_judges_reading_of_each_title_with_the_reviews_label():
    rows = [R("p", "test", "Ref", "Body"), D.Review("de", "Ref", "Body", 1, "negative", "lab_de", "test", uid="n")]
    hyps = {"p": "Super", "n": "Super"}
    judge = lambda texts: ["positive" for _ in texts]  # noqa: E731 - reads every title as positive
    b = title_block(rows, hyps, set(), "de", judge)
    assert b["sentiment_agreement"]["rate"] == pytest.approx(0.5) and b["sentiment_agreement"]["n"] == 2


def test_the_german_titles_curve_pools_each_points_seeds_over_the_titles_each_share_counts():
    """Shares pool the seeds' titles; sentiment agreement counts only the reviews with a polarity (sentiment_n),
    so 2 of 4 judged titles is 50%, not 2 of the 40 titled reviews."""
    from core.report import curve_points, curve_reading

    def run(size, seed, de_in, agree, en_chrf):
        return {"german_titles": size, "all": size == 10, "seed": seed, "train_s": 1.0,
                "dev": {"de": {"in_input_language": de_in, "written_in_input_language": 0.1, "chrf": 20.0,
                               "sentiment_agreement": agree, "sentiment_n": 4},
                        "en": {"in_input_language": 1.0, "chrf": en_chrf, "sentiment_agreement": None}}}

    curve = {"dev": {"de": 40, "en": 40}, "runs": [run(0, 0, 0.5, 0.5, 15.0), run(4, 0, 0.9, 0.25, 14.0),
                                                   run(4, 1, 1.0, 0.75, 16.0), run(10, 0, 1.0, 1.0, 15.5)]}
    first, four, last = curve_points(curve)
    assert first["de:sentiment_agreement"][0] == 50.0
    assert four["seeds"] == 2 and four["de:in_input_language"][0] == 95.0  # 76 of 80 pooled titles
    assert four["de:sentiment_agreement"][0] == 50.0  # (1 + 3) of (4 + 4)
    assert four["de:sentiment_agreement"][1] < 25 < 75 < four["de:sentiment_agreement"][2]  # 8 titles' interval
    assert four["en:chrf"] == (15.0, 14.0, 16.0)  # the seeds' mean and range
    assert last["de:in_input_language"][1] > first["de:in_input_language"][2]
    reading = curve_reading(curve)[0]
    assert "in German 50.0% → 100.0%" in reading and "above the zero-shot point's: 4." in reading
