"""What a visitor pasted, made safe to read: the one cleaning step before any model sees a text."""
from __future__ import annotations

MAX_CHARS = 20_000  # far beyond 512 tokens; longer input is cut before tokenising (and the result says so)


def prepare_text(text) -> tuple[str, bool, str]:
    """Clean what a user pasted: decode bytes, drop NULs/lone surrogates, cut absurd lengths."""
    note = ""
    if text is None:
        text = ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = str(text)
    truncated = len(text) > MAX_CHARS
    text = text[:MAX_CHARS]  # cut first: a 10 MB paste costs no more than a long review
    cleaned = text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "")
    if cleaned != text:
        note = "Some characters could not be read and were replaced."
    return cleaned, truncated, note
