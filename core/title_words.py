"""Words and title hashes: one definition for the badges, the report, training's seen-title list and the copy checks.

Kept apart from core/models.py so the title generators (core/titles) can use them without importing the review
model they sit beside.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Case-folded word tokens after NFKC (full-width letters and compatibility forms count as their plain forms)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text or "").casefold())


def normalize_title(title: str) -> str:
    return " ".join(words(title))


def title_hash(title: str) -> str:
    """What "seen in training" compares: 16 hex digits of the normalised title's SHA-1."""
    return hashlib.sha1(normalize_title(title).encode()).hexdigest()[:16]


class ModelDirError(RuntimeError):
    """A model directory that is missing or broken; the message says what to do."""
