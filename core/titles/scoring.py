"""How a set of generated titles is scored beyond chrF/ROUGE: how many are distinct, which repeats most, which
language they come out in, and how much of them was copied from the review.

Why one place: training picks its settings on the dev sets (`gemma_train.dev_titles`, the model cards) and the
report scores the test sets (`core/evaluate.py`); with two definitions a "distinct" on a card and in the report
could disagree on the same titles. These are the report's definitions.
"""
from __future__ import annotations

from collections import Counter

from .. import langid
from .. import metrics as M
from ..title_words import words

# which titles count for each language share, given a title's detected language `g` and the review's `lang`
LANGUAGE_SHARES = {
    "in_input_language": lambda g, lang: g == lang,
    "in_english": lambda g, lang: g == "en",
    "in_german": lambda g, lang: g == "de",
    "in_other_language": lambda g, lang: g not in (lang, "en"),
    "other_or_unknown": lambda g, lang: g not in (lang, "en", "de"),
}


def title_languages(titles: list[str], lang: str) -> list[str]:
    """Each title's language, among the review's and the training languages (a title is too short to tell more)."""
    from ..title_checks import title_candidates

    return [langid.detect_title(t, title_candidates(lang)).language for t in titles]


def language_shares(languages: list[str], lang: str, keys: tuple[str, ...]) -> dict[str, dict]:
    """The shares `keys` (of LANGUAGE_SHARES) of titles detected as `languages`, for reviews in `lang`."""
    return {k: M.rate([LANGUAGE_SHARES[k](g, lang) for g in languages]) for k in keys}


def copy_measures(titles: list[str], reviews: list[str], languages: list[str], lang: str) -> dict[str, dict]:
    """Written vs copied (core/title_copying.py) for titles of reviews in `lang`, `languages` their detected
    languages: mean coverage, density and novel-token share, the copied share, and the share "written in the
    input language": in the review's language and not copied."""
    from ..title_copying import copying

    cs = [copying(t, r) for t, r in zip(titles, reviews)]
    return {"coverage": M.mean([c.coverage for c in cs]), "density": M.mean([c.density for c in cs]),
            "novel_words": M.mean([c.novel for c in cs]), "copied_from_input": M.rate([c.copied for c in cs]),
            "written_in_input_language": M.rate([g == lang and not c.copied for g, c in zip(languages, cs)])}


def same_title(title: str) -> str:
    """What two titles share when they count as the same: their words, case and punctuation aside."""
    return " ".join(words(title))


def distinct(titles: list[str]) -> dict:
    """The share of titles that no earlier title already was."""
    n = len(Counter(same_title(t) for t in titles))
    return M.rate([True] * n + [False] * (len(titles) - n))


def most_repeated(titles: list[str]) -> dict:
    """{"title", "count"}: the title written most often (its first spelling), and how often."""
    counts = Counter(same_title(t) for t in titles)
    top, top_n = counts.most_common(1)[0] if counts else ("", 0)
    return {"title": next((t for t in titles if same_title(t) == top), ""), "count": top_n}
