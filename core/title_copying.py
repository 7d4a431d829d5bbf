"""How much of a title was copied from its review: Grusky et al.'s extractive fragments (Newsroom, NAACL 2018).

Why not "every title word is in the review" any more: that test cannot see a phrase copied with one word changed,
and it reads a sentence of Chinese or Japanese, written without spaces, as one long "word" that is never in the
review. Here a title is matched against its review token by token, greedily, longest shared run first (the
fragments F of the paper), on word tokens for spaced scripts and on single characters for Chinese and Japanese
(the Han, kana and CJK punctuation-free runs are split into characters; Latin words inside them stay words).

- coverage: the share of title tokens inside some fragment (= 1 - the novel share, position by position);
- density: the mean squared fragment length per title token, so a title lifted as one phrase scores high
  (a 5-token phrase: 5) and the same words picked apart scores 1;
- novel share: title tokens that occur nowhere in the review;
- copied: coverage of at least COPIED_COVERAGE, four tokens in five: a whole copy, and a copied phrase with one
  word in five changed. Below that the title counts as written, whichever language it is in.

One definition for the page's badge, the Batch columns and every table in the report.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

COPIED_COVERAGE = 0.8

# a character of a script written without spaces (Han, Hiragana, Katakana, their extensions) is one token
_UNSPACED = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_TOKEN = re.compile(rf"[{_UNSPACED}]|[^\W{_UNSPACED}]+", re.UNICODE)


def copy_tokens(text: str) -> list[str]:
    """Case-folded tokens after NFKC: words, and each Chinese or Japanese character on its own."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text or "").casefold())


def fragments(title: list[str], review: list[str]) -> list[int]:
    """The lengths of Grusky et al.'s extractive fragments: from each title position, the longest run of tokens
    that also occurs as a run in the review; a token found nowhere starts no fragment."""
    starts: dict[str, list[int]] = {}
    for j, tok in enumerate(review):
        starts.setdefault(tok, []).append(j)
    out, i = [], 0
    while i < len(title):
        best = 0
        for j in starts.get(title[i], ()):
            k = 0
            while i + k < len(title) and j + k < len(review) and title[i + k] == review[j + k]:
                k += 1
            best = max(best, k)
        if best:
            out.append(best)
            i += best
        else:
            i += 1
    return out


@dataclass(frozen=True)
class Copying:
    """One title against its review. An empty title copies nothing and writes nothing: all zero, not copied."""

    tokens: int
    coverage: float
    density: float
    novel: float

    @property
    def copied(self) -> bool:
        return self.tokens > 0 and self.coverage >= COPIED_COVERAGE


def copying(title: str, review: str) -> Copying:
    t, r = copy_tokens(title), copy_tokens(review)
    if not t:
        return Copying(0, 0.0, 0.0, 0.0)
    frags = fragments(t, r)
    present = set(r)
    return Copying(len(t), sum(frags) / len(t), sum(f * f for f in frags) / len(t),
                   sum(tok not in present for tok in t) / len(t))
