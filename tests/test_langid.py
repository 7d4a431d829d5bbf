"""Language detection: deterministic, with probabilities, honest 'unknown' with a reason."""
import pytest

from core import langid


@pytest.mark.parametrize("text, lang", [
    ("Das Produkt ist super, ich würde es jederzeit wieder kaufen!", "de"),
    ("This is a great product and I would buy it again.", "en"),
    ("Ce produit est excellent, je le recommande vivement.", "fr"),
    ("最高の商品です。とても使いやすくて、また買いたいと思います。", "ja"),
    ("Отличный товар, работает как надо, рекомендую всем.", "ru"),
])
def test_detects_full_reviews_with_probabilities(text, lang):
    g = langid.detect(text)
    assert g.language == lang
    assert g.probs[lang] > 0.8 and abs(sum(g.probs.values()) - 1) < 0.05


def test_detection_is_deterministic_across_calls_and_processes():
    import subprocess
    import sys

    text = "Gut."
    a = [langid.detect("Naja, geht so. Nicht schlecht").probs for _ in range(5)]
    assert all(x == a[0] for x in a)
    code = "from core import langid; print(langid.detect('Naja, geht so. Nicht schlecht').probs)"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout for _ in range(2)}
    assert len(outs) == 1 and str(a[0]) in outs.pop()
    assert langid.detect(text).language == "unknown"


@pytest.mark.parametrize("text, reason", [
    ("", "Empty"), ("   \n\t ", "Empty"), ("12345 678", "No letters"), ("😀😀👍🔥", "No letters"),
    ("gut", "Too short"), ("ok!", "Too short"),
])
def test_says_unknown_with_a_reason(text, reason):
    g = langid.detect(text)
    assert g.language == "unknown"
    assert reason in g.note


def test_title_detector_only_chooses_among_plausible_languages():
    g = langid.detect_title("Tolles Produkt", ("de", "en", "de"))
    assert g.language == "de" and set(g.probs) <= {"de", "en"}
    assert langid.detect_title("Great value for money", ("fr", "en", "de")).language == "en"
    assert langid.detect_title("🔥🔥", ("de", "en")).language == "unknown"
