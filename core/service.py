"""The boundary the UI and API call: plain dicts in and out, and never an exception.

Whatever goes wrong for one request (a bad input, a broken model folder) comes back as
a message in the result, so the page shows it and the server keeps serving.
"""
from __future__ import annotations

import logging

from .inference import compare

log = logging.getLogger(__name__)


def compare_dict(text, language: str | None = None) -> dict:
    """`compare(...).to_dict()`, or a result carrying a clear message instead of a traceback."""
    try:
        if language in (None, "", "auto"):
            language = None
        return compare(text, language=language).to_dict()
    except Exception as exc:  # noqa: BLE001 - the UI must stay up; the log keeps the traceback
        log.exception("compare failed")
        return {"language": "unknown", "language_probs": {}, "language_note": "", "models": {},
                "message": f"Something went wrong while comparing: {type(exc).__name__}: {exc}"}
