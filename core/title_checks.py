"""What a class is told about a generated title: its language, and whether it was copied or memorised.

One definition for every path: the page's badge, the Batch columns, the CLI's JSON and the report's checks all
call these, so a title counted as copied in the report is the one the page marks as copied.
"""
from __future__ import annotations

from . import langid, languages
from .title_copying import copying
from .title_words import title_hash
from .results import TitleOutput


def title_candidates(input_lang: str) -> tuple[str, ...]:
    """Languages a generated title can plausibly be in: the input's and the training languages."""
    return (input_lang, *languages.trained_on())


def title_badge(title: str, title_lang: str, input_lang: str, input_text: str, seen: bool) -> tuple[str, float]:
    """Why the title looks the way it does, and its copied share (core/title_copying.py: the coverage). Order
    matters: a memorised title is the most important thing to tell a class, then copying, then the language."""
    c = copying(title, input_text)
    copied_share = c.coverage
    if seen:
        return "seen_in_training", copied_share
    if c.copied:
        return "copied", copied_share
    if title_lang == "unknown" or input_lang == "unknown":
        return "unknown", copied_share
    if title_lang != input_lang:
        return "accidental_translation", copied_share
    return "same_language", copied_share


def check_title(title: str | None, error: str | None, input_lang: str, text: str, seen: set[str]) -> TitleOutput:
    """The checks on one generated title; `seen`: hashes of the model's training titles."""
    if error is not None:
        return TitleOutput(error=error)
    o = TitleOutput(title=title or "")
    guess = langid.detect_title(o.title, title_candidates(input_lang))
    o.title_language, o.title_language_probs = guess.language, guess.probs
    o.title_seen_in_training = bool(o.title) and title_hash(o.title) in seen
    o.title_badge, share = title_badge(o.title, o.title_language, input_lang, text, o.title_seen_in_training)
    o.title_copied_share = round(share, 3)
    return o
