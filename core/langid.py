"""Language detection with langdetect, made deterministic and honest about doubt.

langdetect samples n-grams at random; a fixed seed makes the same text give the
same answer in every process. It is trained on full sentences, so we refuse to
name a language for text it cannot judge and say why.
"""
from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field

from langdetect import DetectorFactory, detector_factory
from langdetect.lang_detect_exception import LangDetectException

from .languages import language_name, language_names  # noqa: F401 - the page and the engine name languages here

LANGUAGE_NAMES = {**language_names(), "unknown": "unknown"}  # the language table's names, and langid's "unknown"

SEED = 0
MIN_LETTERS = 12  # below this many letters langdetect's guess is a coin toss on short words
MIN_CONFIDENCE = 0.80
MAX_CHARS = 5000  # langdetect reads the start of the text; more only costs time

_lock = threading.Lock()
_ready = False


def _factory():
    global _ready
    with _lock:
        if not _ready:
            DetectorFactory.seed = SEED
            detector_factory.init_factory()
            _ready = True
    return detector_factory._factory


@dataclass
class LanguageGuess:
    language: str  # ISO 639-1 code from langdetect, or "unknown"
    probs: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def known(self) -> bool:
        return self.language != "unknown"


def count_letters(text: str) -> int:
    return sum(1 for ch in text if unicodedata.category(ch).startswith("L"))


def _raw_probs(text: str, priors: dict[str, float] | None = None) -> dict[str, float]:
    factory = _factory()
    d = factory.create()
    d.set_max_text_length(MAX_CHARS)
    if priors:
        d.set_prior_map(priors)
    d.append(text)
    try:
        langs = d.get_probabilities()
    except LangDetectException:
        return {}
    return {lang.lang: round(float(lang.prob), 4) for lang in langs}


def detect(text: str | None) -> LanguageGuess:
    """Detect the language of a review, or say 'unknown' with the reason."""
    text = (text or "").strip()
    if not text:
        return LanguageGuess("unknown", {}, "Empty text: there is nothing to detect.")
    letters = count_letters(text)
    if letters == 0:
        return LanguageGuess("unknown", {}, "No letters (only digits, emoji or symbols): the language cannot be detected.")
    probs = _raw_probs(text)
    if not probs:
        return LanguageGuess("unknown", {}, "The detector found no language features in this text.")
    top, p = max(probs.items(), key=lambda kv: kv[1])
    if letters < MIN_LETTERS:
        return LanguageGuess("unknown", probs, f"Too short to be sure ({letters} letters): best guess '{top}' "
                                                f"with p={p:.2f}, but short texts fool the detector.")
    if p < MIN_CONFIDENCE:
        return LanguageGuess("unknown", probs, f"Unsure: best guess '{top}' has only p={p:.2f}.")
    return LanguageGuess(top, probs, "")


def detect_title(title: str, candidates: tuple[str, ...]) -> LanguageGuess:
    """Language of a short generated title, restricted to the languages it can plausibly be in.

    A 3-6 word title is too short for an open-set guess (plain langdetect calls many
    German titles Dutch or Afrikaans). A title generator can only write in a language
    it was trained on or copy the input's words, so the candidates are the input's
    language plus the training languages; langdetect's prior map restricts it to them.
    """
    title = (title or "").strip()
    if count_letters(title) == 0:
        return LanguageGuess("unknown", {}, "no letters")
    cands = tuple(dict.fromkeys(c for c in candidates if c and c != "unknown"))
    factory = _factory()
    priors = {c: 1.0 for c in cands if c in factory.langlist}
    if not priors:
        return LanguageGuess("unknown", {}, "no candidate language")
    probs = _raw_probs(title, priors)
    probs = {k: v for k, v in probs.items() if k in priors}
    if not probs:
        return LanguageGuess("unknown", {}, "no language features")
    top = max(probs.items(), key=lambda kv: kv[1])[0]
    return LanguageGuess(top, probs, "")
