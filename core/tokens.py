"""How each base splits a review into pieces: part of why an English-only model cannot transfer.

XLM-R's 250k SentencePiece vocabulary has pieces for ~100 languages; an English-only WordPiece
vocabulary (all-MiniLM-L6-v2, 30k pieces) shatters German into fragments and unknowns.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

MAX_CHARS = 2000  # the view is for reading, not for novels


@dataclass
class TokenView:
    base: str
    pieces: list[str]
    n_pieces: int
    n_words: int
    unknown_share: float
    single_char_share: float

    @property
    def pieces_per_word(self) -> float:
        """'Fertility': how many pieces a word costs; an unfamiliar language costs many."""
        return round(self.n_pieces / max(self.n_words, 1), 2)

    def to_dict(self) -> dict:
        return {**asdict(self), "pieces_per_word": self.pieces_per_word}


@functools.lru_cache(maxsize=None)
def _tokenizers():
    from .base import ensure_converted, load_tokenizer, minilm_dir

    # the engine's own copy of the multilingual tokenizer (load_tokenizer keeps one per folder)
    return {"multilingual (XLM-R vocabulary, multilingual-e5-small)": load_tokenizer(str(ensure_converted())),
            "English-only (WordPiece, all-MiniLM-L6-v2)": load_tokenizer(str(minilm_dir()))}


def _bare(piece: str) -> str:
    return piece.replace("▁", "").removeprefix("##")


def token_views(text: str) -> list[TokenView]:
    text = (text or "")[:MAX_CHARS]
    out = []
    for name, tok in _tokenizers().items():
        pieces = tok.tokenize(text)
        n = len(pieces)
        unk = sum(p == tok.unk_token for p in pieces)
        single = sum(len(_bare(p)) == 1 and _bare(p).isalpha() for p in pieces)
        out.append(TokenView(name, pieces, n, len(text.split()), round(unk / n, 3) if n else 0.0,
                             round(single / n, 3) if n else 0.0))
    return out
