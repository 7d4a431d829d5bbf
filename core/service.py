"""The boundary the UI and API call: plain dicts in and out, and never an exception.

Whatever goes wrong for one request (a bad input, a broken model folder) comes back as
a message in the result, so the page shows it and the server keeps serving.
"""
from __future__ import annotations

import logging

from .inference import compare, english_only_output, rate, titles_ahead, zero_shot_output
from .review_text import prepare_text

log = logging.getLogger(__name__)


def _language(language: str | None) -> str | None:
    return None if language in (None, "", "auto") else language


def _failed(doing: str, exc: Exception) -> dict:
    log.exception("%s failed", doing)
    return {"language": "unknown", "language_probs": {}, "language_note": "", "models": {},
            "message": f"Something went wrong while {doing}: {type(exc).__name__}: {exc}"}


def compare_dict(text, language: str | None = None) -> dict:
    """`compare(...).to_dict()`, or a result carrying a clear message instead of a traceback."""
    try:
        return compare(text, language=_language(language)).to_dict()
    except Exception as exc:  # noqa: BLE001 - the UI must stay up; the log keeps the traceback
        return _failed("comparing", exc)


def rate_dict(text, language: str | None = None) -> dict:
    """Step one, what `/rate` answers: `compare_dict`'s shape with each main title None (not written yet), plus
    `titles_ahead`, how many comparisons' titles are being written before this one's can start."""
    try:
        return {**rate(text, language=_language(language)).to_dict(), "titles_ahead": titles_ahead()}
    except Exception as exc:  # noqa: BLE001 - the UI must stay up; the log keeps the traceback
        return _failed("rating", exc)


def keep_answers(texts) -> None:
    """Answers to these texts (the page's examples) stay in the answer cache for as long as the server runs."""
    from .engine import get_engine

    get_engine().answers.keep(prepare_text(t)[0] for t in texts)


def english_only_dict(text) -> dict:
    """The optional English-only column as the contract's model dict (its `error` says why when it failed)."""
    return english_only_output(text).to_dict()


def zero_shot_dict(text, language: str | None = None) -> dict:
    """The optional "English titles only + a remedy" column, likewise."""
    return zero_shot_output(text, _language(language)).to_dict()
