"""The inference contract: ``compare(text, language=None)`` -> CompareResult, and the page's two optional columns.

`compare` detects the language, runs both models through the engine's one `run` and turns each row into the
contract's answer (core/results.py), with the checks on every title (core/title_checks.py). The optional
columns, loaded on first use and never at start-up:
- the English-only base (MiniLM) trained with the English recipe: a rating, no title; its own small Engine;
- "English titles only + a remedy" (`en_zero_shot`): en_trained's rating and the zero-shot title adapter's
  title, the adapter joining the main generator on first use (a few MB; the main columns decode without it).
Each optional column returns a `ModelOutput` whose `error` says why it failed: it must never cost the two main
ones. The page reaches all of this through `core.service`.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from . import langid, languages
from .engine import Engine, get_engine
from .models import stars_of
from .names import EN_TRAINED, ENGLISH_ONLY, ZERO_SHOT
from .results import CompareResult, ModelOutput
from .review_text import MAX_CHARS, prepare_text
from .settings import current
from .title_checks import check_title

log = logging.getLogger(__name__)
_english_only: dict[Path, Engine] = {}
_english_only_lock = threading.Lock()


def get_english_only_engine(models_dir: str | os.PathLike | None = None) -> Engine:
    """The English-only column's model, kept for the process; its own Engine with its own lock."""
    key = Path(models_dir or current().models)
    with _english_only_lock:
        if key not in _english_only:
            # its own base (the English-only MiniLM) whatever `--base` says for the two main models
            _english_only[key] = Engine(key, names=(ENGLISH_ONLY,), base_from_env=False)
        return _english_only[key]


def english_only_output(text: str, models_dir: str | os.PathLike | None = None) -> ModelOutput:
    """The English-only base's rating of one review (no title)."""
    text, _, _ = prepare_text(text)
    try:
        small = get_english_only_engine(models_dir)
        row = small.run([text], titles=False)[ENGLISH_ONLY][0]
        return small.model_output(ENGLISH_ONLY, row, "unknown", text)
    except Exception as exc:  # noqa: BLE001
        return ModelOutput(error=f"The English-only model is unavailable: {exc}")


def zero_shot_output(text: str, language: str | None = None, engine: Engine | None = None) -> ModelOutput:
    """en_trained's rating (the same encoder) and the zero-shot adapter's title, with the same badges."""
    text, _, _ = prepare_text(text)
    try:
        engine = engine or get_engine()
        engine.add_title_model(ZERO_SHOT, like=EN_TRAINED)
        lang = language if language not in (None, "", "auto") else langid.detect(text).language
        row = engine.run([text], names=(EN_TRAINED,), titles=False)[EN_TRAINED][0]
        o = engine.model_output(EN_TRAINED, row, lang, text)
        # en_trained's stars, as for its rating, where the adapter's prompt holds them
        title = engine.variant_title(ZERO_SHOT, EN_TRAINED, text, lang, stars_of(row["star_probs"]))
        o.generated = check_title(title, None, lang, text, engine.seen_titles[ZERO_SHOT])
        return o
    except Exception as exc:  # noqa: BLE001 - the optional column must never cost the two main ones
        log.exception("zero-shot column failed")
        return ModelOutput(error=f"The zero-shot title model is unavailable: {exc}")


def _asked(text: str, language: str | None) -> CompareResult:
    """The answer before any model: the text as the models read it, its language, and the notes on both."""
    text, cut, note = prepare_text(text)
    guess = langid.detect(text)
    lang, source = guess.language, "detected"
    if language and language not in ("auto", ""):
        lang, source = language, "override"
    result = CompareResult(text=text, language=lang, language_probs=guess.probs, language_note=guess.note,
                           models={}, language_source=source, message=note)
    result.truncated = cut
    if lang != "unknown" and lang not in languages.trained_on() and source == "detected":
        result.language_note = (result.language_note + " " if result.language_note else "") + (
            f"{langid.language_name(lang)} is zero-shot for both models: neither was trained on it.")
    return result


def _rows(engine: Engine, text: str, lang: str, titles: bool) -> dict[str, dict]:
    """The engine's row for each model: step one (ratings, seed titles, map point) and, with `titles`, step two
    (the generator's titles) on top of it, each from the engine's answer cache when it holds them."""
    def rated() -> dict:
        return {n: rows[0] for n, rows in engine.run([text], languages=[lang], generator=False).items()}

    def titled() -> dict:
        rows = {n: [row] for n, row in engine.answers.once(("rated", text, lang), rated).items()}
        rows = engine.write_titles([text], rows, languages=[lang])
        return {n: r[0] for n, r in rows.items()}

    return engine.answers.once(("titled" if titles else "rated", text, lang), titled if titles else rated)


def _answer(text: str, language: str | None, engine: Engine | None, titles: bool) -> CompareResult:
    t0 = time.perf_counter()
    result = _asked(text, language)
    text, lang = result.text, result.language
    if not text.strip():
        result.message = "Please enter a review: the text is empty."
        result.elapsed_ms = round((time.perf_counter() - t0) * 1000, 1)
        return result
    engine = engine or get_engine()
    s = engine.settings[engine.names[0]]
    n_tokens = len(engine.tokenizer(s.prefix + text[:MAX_CHARS], add_special_tokens=True)["input_ids"])
    result.n_tokens = n_tokens
    if result.truncated or n_tokens > s.max_input_tokens:
        result.truncated = True
        result.message = (f"The review is long ({n_tokens:,} tokens): the models read only its first "
                          f"{s.max_input_tokens} tokens.").strip()
    rows = _rows(engine, text, lang, titles)
    result.engine = engine.answered_by()
    for n in engine.names:
        result.models[n] = engine.model_output(n, rows[n], lang, text)
        if not titles and engine.generator is not None and n in engine.generator.names:
            result.models[n].generated = None  # step two writes it
    result.elapsed_ms = round((time.perf_counter() - t0) * 1000, 1)
    return result


def rate(text: str, language: str | None = None, engine: Engine | None = None) -> CompareResult:
    """Step one of a comparison, what a visitor sees at once: the language, both ratings, the seed setup's
    titles and the map point. Each model's main title is None (`compare` writes it; ~100-150 ms here against
    about a second for the titles on 2 cores)."""
    return _answer(text, language, engine, titles=False)


def titles_ahead(engine: Engine | None = None) -> int:
    """Comparisons whose titles are being written or wait to be, now: what the page says is ahead of a review."""
    return (engine or get_engine()).title_lock.queued()


def compare(text: str, language: str | None = None, engine: Engine | None = None,
            english_only: bool = False) -> CompareResult:
    """Detect the language and run both models on one review; `english_only=True` adds the rating of the
    English-only base's model as `models[ENGLISH_ONLY]` (no title). The same text and language are answered
    from the engine's answer cache (core/answer_cache.py) after the first time."""
    t0 = time.perf_counter()
    result = _answer(text, language, engine, titles=True)
    if english_only and result.models:
        result.models[ENGLISH_ONLY] = english_only_output(result.text, (engine or get_engine()).models_dir)
        result.elapsed_ms = round((time.perf_counter() - t0) * 1000, 1)
    return result
