"""`from core import compare` on the shipped models: the contract the app, the batch mode and the checks use."""
import json

import pytest

from core import compare

GERMAN = "Der Saugroboter ist jeden Cent wert! Er kommt problemlos unter das Sofa und die App ist selbsterklärend."
ENGLISH = "Absolutely love this backpack. My laptop fits with room to spare and the straps are comfortable."


def test_compare_returns_a_dataclass_whose_dict_is_json(engine):
    r = compare(GERMAN, engine=engine)
    d = r.to_dict()
    json.dumps(d)
    assert d["language"] == "de" and d["language_probs"]["de"] > 0.9
    assert set(d["models"]) == {"en_trained", "de_finetuned"}
    for m in d["models"].values():
        assert m["stars"] in range(1, 6)
        assert m["title"] and m["title_language"] in ("de", "en")


def test_fine_tuned_model_writes_a_german_title_for_a_german_review(engine):
    r = compare(GERMAN, engine=engine).to_dict()
    assert r["models"]["de_finetuned"]["title_language"] == "de"


def test_both_models_rate_an_obviously_positive_and_negative_german_review(engine):
    pos = compare("Absolut genial, bestes Gerät das ich je hatte. Klare Kaufempfehlung!", engine=engine).to_dict()
    neg = compare("Totaler Schrott. Nach zwei Tagen kaputt, Geld zurück und nie wieder.", engine=engine).to_dict()
    for name in ("en_trained", "de_finetuned"):
        assert pos["models"][name]["polarity"] == "positive"
        assert neg["models"][name]["polarity"] == "negative"


def test_same_text_gives_identical_results(engine):
    a = compare(ENGLISH, engine=engine).to_dict()
    b = compare(ENGLISH, engine=engine).to_dict()
    a.pop("elapsed_ms"), b.pop("elapsed_ms")
    assert a == b


def test_language_override_is_used_for_the_badges(engine):
    d = compare(ENGLISH, language="de", engine=engine).to_dict()
    assert d["language"] == "de" and d["language_source"] == "override"


@pytest.mark.parametrize("text", ["", "   ", "\x00\x00"])
def test_empty_text_gets_a_message_and_no_models(engine, text):
    d = compare(text, engine=engine).to_dict()
    assert d["models"] == {} and "empty" in d["message"]


def test_very_long_text_is_truncated_and_says_so(engine):
    d = compare("Great product. " * 8000, engine=engine).to_dict()
    assert d["truncated"] and "first 512 tokens" in d["message"]
    assert d["models"]["en_trained"]["stars"] in range(1, 6)


def test_other_languages_are_flagged_as_zero_shot(engine):
    d = compare("Très bonne machine à pain, simple à utiliser, et le pain est délicieux.", engine=engine).to_dict()
    assert d["language"] == "fr" and "zero-shot for both models" in d["language_note"]


def test_one_models_generation_failure_leaves_the_other_column(engine):
    rows = engine.run([GERMAN], fail={"en_trained": RuntimeError("boom")})
    assert "title_error" in rows["en_trained"][0] and "title" in rows["de_finetuned"][0]
    out = engine.model_output("en_trained", rows["en_trained"][0], "de", GERMAN)
    assert out.generated.error and out.to_dict()["error"] == out.generated.error and out.stars in range(1, 6)


def test_a_script_neither_model_knows_still_gets_ratings_and_a_note(engine):
    d = compare("ეს პროდუქტი ძალიან კარგია, გირჩევთ ყველას. ძალიან კმაყოფილი ვარ.", engine=engine).to_dict()
    assert d["language_note"]  # unknown, or zero-shot for both models
    assert all(m["stars"] in range(1, 6) for m in d["models"].values())


def test_results_are_byte_identical_in_another_process(engine):
    import subprocess
    import sys

    from conftest import ROOT

    here = compare(GERMAN, engine=engine).to_dict()
    here.pop("elapsed_ms")
    code = ("import json,sys; from core import compare; d = compare(sys.argv[1]).to_dict(); d.pop('elapsed_ms'); "
            "print(json.dumps(d, sort_keys=True, ensure_ascii=False))")
    r = subprocess.run([sys.executable, "-c", code, GERMAN], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == json.dumps(here, sort_keys=True, ensure_ascii=False)
