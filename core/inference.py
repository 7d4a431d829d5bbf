"""The inference contract: ``compare(text, language=None)`` -> CompareResult.

Both models are loaded once (one copy of the base, two LoRA adapters, two sets of
heads) and reused. The frozen trunk runs once per request and serves both models;
each model's top layers are a copy with its LoRA adapter merged in. A lock serialises
inference: on a 2-core machine one request at a time already uses both cores.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from . import langid, ort_backend
from .explain import load_projections
from .settings import current
from .titles.encoder_decoder import SeedTitles
from .titles.generator import ADAPTER_DIR, SETTINGS_FILE, TitleGenerator
from .models import (STAR_LABELS, ModelDirError, ModelSettings, ReviewHeads, Trunk, bert_of, load_heads,
                     mean_pool, merged_top_layers, polarity_from_probs, read_settings, read_title_hashes,
                     title_hash, words)

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ROOT / "assets" / "models"
MODEL_NAMES = ("en_trained", "de_finetuned")
MAX_CHARS = 20_000  # far beyond 512 tokens; longer input is cut before tokenising (and the result says so)


@dataclass
class TitleOutput:
    """One generated title and what the checks say about it (the same keys for both generators)."""

    title: str = ""
    title_language: str = "unknown"
    title_language_probs: dict[str, float] = field(default_factory=dict)
    title_badge: str = ""  # same_language | accidental_translation | copied | seen_in_training | unknown
    title_copied_share: float = 0.0
    title_seen_in_training: bool = False
    error: str | None = None


@dataclass
class ModelOutput:
    """One model's answer: the rating, the main title (the pretrained generator's) and, under
    `encoder_decoder`, the seed's encoder-decoder title ("the question's own setup")."""

    stars: int | None = None
    star_probs: dict[str, float] = field(default_factory=dict)
    polarity: str | None = None
    title: str = ""
    title_language: str = "unknown"
    title_language_probs: dict[str, float] = field(default_factory=dict)
    title_badge: str = ""  # same_language | accidental_translation | copied | seen_in_training | unknown
    title_copied_share: float = 0.0
    title_seen_in_training: bool = False
    error: str | None = None
    map_xy: list[float] | None = None  # where the rating head puts the review on the "Why?" map (core/explain.py)
    encoder_decoder: TitleOutput | None = None

    def take_title(self, t: TitleOutput) -> None:
        """The main title's fields, from one generator's checked title (the JSON keeps them flat)."""
        for k in ("title", "title_language", "title_language_probs", "title_badge", "title_copied_share",
                  "title_seen_in_training"):
            setattr(self, k, getattr(t, k))


@dataclass
class CompareResult:
    text: str
    language: str
    language_probs: dict[str, float]
    language_note: str
    models: dict[str, ModelOutput]
    language_source: str = "detected"  # detected | override
    n_tokens: int = 0
    truncated: bool = False
    message: str = ""
    elapsed_ms: float = 0.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("text")
        return d


def title_badge(title: str, title_lang: str, input_lang: str, input_text: str, seen: bool) -> tuple[str, float]:
    """Why the title looks the way it does. Order matters: a memorised title is the most
    important thing to tell a class, then copying, then the language."""
    tw = words(title)
    inp = set(words(input_text))
    copied_share = (sum(w in inp for w in tw) / len(tw)) if tw else 0.0
    if seen:
        return "seen_in_training", copied_share
    if tw and copied_share == 1.0:
        return "copied", copied_share
    if title_lang == "unknown" or input_lang == "unknown":
        return "unknown", copied_share
    if title_lang != input_lang:
        return "accidental_translation", copied_share
    return "same_language", copied_share


def stars_of(star_probs: list[float]) -> int:
    """The rating shown for a review: the most probable star (1..5)."""
    return max(range(len(star_probs)), key=star_probs.__getitem__) + 1


def title_candidates(input_lang: str) -> tuple[str, ...]:
    """Languages a generated title can plausibly be in: the input's and the training languages."""
    return (input_lang, "en", "de")


class FairLock:
    """A first-come, first-served lock for the engine.

    `threading.Lock` lets the thread that releases it take it straight back, so a batch looping over chunks
    would keep a classmate's single comparison waiting until the whole batch is done. Here each waiter takes a
    ticket and is served in order: the comparison runs after the batch's current chunk. Not re-entrant."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = self._serving = 0

    def __enter__(self) -> "FairLock":
        with self._cond:
            ticket, self._next = self._next, self._next + 1
            self._cond.wait_for(lambda: self._serving == ticket)
        return self

    def __exit__(self, *exc) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


class Engine:
    """One base, two adapters, two heads; everything a comparison needs, loaded once."""

    def __init__(self, models_dir: str | os.PathLike | None = None, names: tuple[str, ...] = MODEL_NAMES,
                 base_from_env: bool = True):
        """`base_from_env=False` ignores CROSSLINGUAL_BASE (`--base`): for a model trained on another base."""
        from peft import PeftModel

        from .base import load_base

        self.models_dir = Path(models_dir or os.environ.get("CROSSLINGUAL_MODELS") or DEFAULT_MODELS)
        dirs = {}
        for n in names:
            env = os.environ.get(f"CROSSLINGUAL_{n.upper()}")
            dirs[n] = Path(env) if env else self.models_dir / n
            if not dirs[n].exists():
                raise ModelDirError(f"Model folder {dirs[n]} not found. Run `python -m core train`, or set "
                                    f"CROSSLINGUAL_MODELS (or CROSSLINGUAL_{n.upper()}) to a trained model folder.")
        self.names = names
        self.dirs = dirs
        self.settings: dict[str, ModelSettings] = {n: read_settings(d) for n, d in dirs.items()}
        self.generator, self.generator_note = None, ""
        s0 = self.settings[names[0]]
        self.tokenizer, bert = load_base((base_from_env and os.environ.get("CROSSLINGUAL_BASE")) or s0.base)
        peft_model = None
        try:
            for n in names:
                if peft_model is None:
                    peft_model = PeftModel.from_pretrained(bert, str(dirs[n] / "adapter"), adapter_name=n)
                else:
                    peft_model.load_adapter(str(dirs[n] / "adapter"), adapter_name=n)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelDirError(f"Cannot load the LoRA adapter under {dirs[n]}: {exc}. "
                                "Re-run `python -m core train` or restore the folder.") from exc
        self.peft_model = peft_model.eval()
        self.bert = bert_of(peft_model)
        self.trunk = Trunk(self.bert, s0.trunk_layers)
        self.top_layers = {n: merged_top_layers(self.bert, s0.trunk_layers, n) for n in names}
        self.heads: dict[str, ReviewHeads] = {n: load_heads(dirs[n], self.bert, self.settings[n]) for n in names}
        self.top_runners: dict = dict(self.top_layers)
        # the seed decoders' titles (core/titles/encoder_decoder.py), over each model's title shortlist unless
        # CROSSLINGUAL_TITLE_SHORTLIST=0
        self.seed = SeedTitles({n: h.decoder for n, h in self.heads.items() if h.decoder is not None}, self.settings,
                               self.tokenizer, dirs, shortlist=current().title_shortlist)
        self.runtime, self.runtime_note = "torch", ""
        if ort_backend.wanted():
            self._use_onnx_runtime()
        self.seen_titles = {n: read_title_hashes(dirs[n]) for n in names}
        self.lock = FairLock()
        if any(self.settings[n].with_titles for n in names):  # after the encoder: a broken folder fails first
            self.generator = self._load_generator(dirs)
        # the "Why?" map's PCA per model (assets/explain, built by `python -m core explain --build`); {} without one
        self.map_projection = load_projections(dirs)

    def _use_onnx_runtime(self) -> None:
        """Move the encoder layers and the decoding steps to ONNX Runtime (core/ort_backend.py). Any failure
        leaves the Engine on PyTorch, with the reason in `runtime_note`."""
        cores = torch.get_num_threads()
        try:
            trunk = ort_backend.OrtLayers(self.bert.encoder.layer[: self.trunk.k], threads=cores)
            tops = {n: ort_backend.OrtLayers(self.top_layers[n], threads=cores) for n in self.names}
            steps = self.seed.onnx_steps(threads=1)
        except Exception as exc:  # noqa: BLE001 - any export/runtime problem: PyTorch still works
            self.runtime_note = f"ONNX Runtime unavailable ({type(exc).__name__}: {exc}); running in PyTorch."
            log.warning(self.runtime_note)
            return
        self.trunk.runner = trunk
        self.top_runners.update(tops)
        self.seed.use_steps(steps)
        self.runtime = "onnxruntime"

    def _load_generator(self, dirs: dict[str, Path]):
        """The pretrained generator with every model's title adapter (core/titles: llama.cpp, or PyTorch where
        llama.cpp cannot run the base). Folders trained before it existed have none: their main title is then
        missing with a note saying so."""
        from .titles import load_generator

        with_gen = {n: d for n, d in dirs.items() if (d / SETTINGS_FILE).exists()}
        if not with_gen:
            self.generator_note = ("No title adapter in these model folders: run `python -m core train "
                                   "--generator-only` to add them.")
            return None
        return load_generator(with_gen)

    def add_title_model(self, name: str, like: str) -> None:
        """Load one more title adapter into the generator (once): its folder is CROSSLINGUAL_<NAME> or
        <models>/<name>; its training titles are `like`'s (for the "seen in training" badge)."""
        if self.generator is None:
            raise ModelDirError(self.generator_note or "no title generator loaded")
        with self.lock:
            if name in self.generator.names:
                return
            d = current().model_dir(name, self.models_dir)
            if not (d / ADAPTER_DIR).exists():
                raise ModelDirError(f"No title adapter in {d}: run `python -m core train --variant NAME --as {name}`.")
            self.generator.add(name, d)
            self.seen_titles[name] = self.seen_titles[like]

    @contextlib.contextmanager
    def pytorch_only(self):
        """Run in PyTorch inside the block, whatever the runtime: the baseline `python -m bench` and the tests
        compare ONNX Runtime against. Take it while no request is running (it holds the engine's lock)."""
        seed = contextlib.ExitStack()
        with self.lock:
            saved = self.trunk.runner, dict(self.top_runners)
            self.trunk.runner = None
            self.top_runners.update(self.top_layers)
            seed.enter_context(self.seed.pytorch_only())
        try:
            yield self
        finally:
            with self.lock:
                self.trunk.runner, self.top_runners = saved
                seed.close()

    @contextlib.contextmanager
    def use_generator(self, generator: TitleGenerator):
        """Titles from `generator` instead of the engine's own inside the block (the bench's other engines and
        baselines, over the same ratings and seed titles); swapped under the engine's lock."""
        with self.lock:
            mine, self.generator = self.generator, generator
        try:
            yield self
        finally:
            with self.lock:
                self.generator = mine

    # -- pieces -------------------------------------------------------------------------------------
    def encode(self, texts: list[str]):
        s = self.settings[self.names[0]]
        return self.tokenizer([s.prefix + t for t in texts], truncation=True, max_length=s.max_input_tokens,
                              padding=True, return_tensors="pt")

    @torch.inference_mode()
    def run(self, texts: list[str], names: tuple[str, ...] | None = None, titles: bool = True,
            fail: dict[str, Exception] | None = None, vectors: bool = False,
            languages: list[str] | None = None, generator: bool = True) -> dict[str, list[dict]]:
        """Ratings and titles for a batch of texts from each model. One trunk pass serves all models. Each row
        also gets its point on the "Why?" map (`map_xy`) when the map is loaded, and with `vectors=True` the
        rating head's whole input (`pooled`, for building that map).

        Titles are decoded one review at a time on every path (compare, batch, evaluate), so a review's titles
        never depend on what else is in its batch: the seed decoder's shortlist is that review's own tokens, and
        the generator decodes each prompt alone. `title` is the generator's, `encoder_decoder_title` the seed
        decoder's (an `..._error` key instead when one failed). The generator takes the engine's lock once per
        review, so a classmate's comparison waits for one title, not for a whole batch. `generator=False` leaves
        out the generator's titles (the seed decoder's only)."""
        names = names or self.names
        fail = fail or {}
        with self.lock:
            enc = self.encode(texts)
            trunk_h = self.trunk(enc.input_ids, enc.attention_mask)
            tops = {n: self.trunk.top(trunk_h, enc.attention_mask, self.top_runners[n]) for n in names}
            out = {n: self._rating_rows(n, tops[n], enc.attention_mask, vectors) for n in names}
            seed = [n for n in names if titles and n in self.seed.names]
            for j in range(len(texts) if seed else 0):
                L = int(enc.attention_mask[j].sum())
                done = self.seed.review({n: tops[n][j:j + 1, :L] for n in seed}, enc.attention_mask[j:j + 1, :L],
                                        enc.input_ids[j:j + 1, :L], fail)
                for n, (key, value) in done.items():
                    out[n][j][key] = value
        gen = [n for n in names if titles and generator and self.generator is not None and n in self.generator.names]
        for j, text in enumerate(texts if gen else []):
            ok = tuple(n for n in gen if n not in fail)
            for n in gen:
                if n in fail:
                    out[n][j]["title_error"] = f"title generation failed: {fail[n]}"
            lang = (languages[j] if languages else None) or (
                langid.detect(text).language if self.generator.needs_language(ok) else None)
            # each model's own rating, for adapters whose prompt holds the stars (the stars shown beside it)
            stars = {n: stars_of(out[n][j]["star_probs"]) for n in ok if "star_probs" in out[n][j]}
            try:
                with self.lock:
                    got = self.generator.titles(text, ok, lang, stars) if ok else {}
                for n, t in got.items():
                    out[n][j]["title"] = t
            except Exception as exc:  # noqa: BLE001 - the ratings and the seed titles still stand
                log.exception("title generation failed")
                for n in ok:
                    out[n][j]["title_error"] = f"title generation failed: {exc}"
        return out

    def _rating_rows(self, n: str, top: torch.Tensor, mask: torch.Tensor, vectors: bool) -> list[dict]:
        pooled = mean_pool(top, mask)
        probs = torch.softmax(self.heads[n].rating(pooled), -1).tolist()
        rows = [{"star_probs": p} for p in probs]
        if n in self.map_projection:  # a 384x2 matmul: microseconds
            mean, comps = self.map_projection[n]
            for row, xy in zip(rows, ((pooled - mean) @ comps).tolist()):
                row["map_xy"] = [round(xy[0], 4), round(xy[1], 4)]
        if vectors:
            for row, v in zip(rows, pooled.tolist()):
                row["pooled"] = v
        return rows

    def title_output(self, name: str, title: str | None, error: str | None, input_lang: str, text: str) -> TitleOutput:
        """The checks on one generated title: its language, whether it was seen in training or copied."""
        if error is not None:
            return TitleOutput(error=error)
        o = TitleOutput(title=title or "")
        guess = langid.detect_title(o.title, title_candidates(input_lang))
        o.title_language, o.title_language_probs = guess.language, guess.probs
        o.title_seen_in_training = bool(o.title) and title_hash(o.title) in self.seen_titles[name]
        o.title_badge, share = title_badge(o.title, o.title_language, input_lang, text, o.title_seen_in_training)
        o.title_copied_share = round(share, 3)
        return o

    def model_output(self, name: str, row: dict, input_lang: str, text: str) -> ModelOutput:
        p = row["star_probs"]
        o = ModelOutput(
            stars=STAR_LABELS[max(range(len(p)), key=lambda i: p[i])],
            star_probs={str(s): round(float(v), 4) for s, v in zip(STAR_LABELS, p)},
            polarity=polarity_from_probs(p),
            map_xy=row.get("map_xy"),
        )
        if not self.settings[name].with_titles:  # a rating-only model (the English-only contrast)
            return o
        if "encoder_decoder_title" in row or "encoder_decoder_title_error" in row:
            o.encoder_decoder = self.title_output(name, row.get("encoder_decoder_title"),
                                                  row.get("encoder_decoder_title_error"), input_lang, text)
        if "title" in row or "title_error" in row:
            main = self.title_output(name, row.get("title"), row.get("title_error"), input_lang, text)
            o.take_title(main)
            o.error = main.error
        elif self.generator is None and o.encoder_decoder is not None:  # titles were asked for
            o.error = self.generator_note or "This model has no title generator."
        return o


_engine: Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """The process-wide engine, created on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
        return _engine


ENGLISH_ONLY_MODEL = "minilm_en_trained"  # the English recipe on the English-only base (rating only)
_english_only: dict[Path, Engine] = {}
_english_only_lock = threading.Lock()


def get_english_only_engine(models_dir: str | os.PathLike | None = None) -> Engine:
    """The optional third column's model, loaded on first use (never at start-up) and kept for the process.
    It is its own small Engine, with its own lock."""
    key = Path(models_dir or os.environ.get("CROSSLINGUAL_MODELS") or DEFAULT_MODELS)
    with _english_only_lock:
        if key not in _english_only:
            # its own base (the English-only MiniLM) whatever `--base` says for the two main models
            _english_only[key] = Engine(key, names=(ENGLISH_ONLY_MODEL,), base_from_env=False)
        return _english_only[key]


ZERO_SHOT_MODEL = "en_zero_shot"  # English titles only + the remedy chosen on German dev (issue 15)


def zero_shot_output(text: str, language: str | None = None, engine: Engine | None = None) -> ModelOutput:
    """The optional "English titles only + remedy" column: en_trained's rating (the same encoder) and the zero-shot
    title adapter's title, with the same badges. Its adapter joins the main generator on first use (a few MB; the
    two main columns are decoded without it). A failure comes back as the output's `error`."""
    text, _, _ = prepare_text(text)
    try:
        engine = engine or get_engine()
        engine.add_title_model(ZERO_SHOT_MODEL, like="en_trained")
        lang = language if language not in (None, "", "auto") else langid.detect(text).language
        row = engine.run([text], names=("en_trained",), titles=False)["en_trained"][0]
        o = engine.model_output("en_trained", row, lang, text)
        with engine.lock:  # en_trained's stars, as for its rating, where the adapter's prompt holds them
            title = engine.generator.titles(text, (ZERO_SHOT_MODEL,), lang,
                                            {ZERO_SHOT_MODEL: stars_of(row["star_probs"])})[ZERO_SHOT_MODEL]
        o.take_title(engine.title_output(ZERO_SHOT_MODEL, title, None, lang, text))
        return o
    except Exception as exc:  # noqa: BLE001 - the optional column must never cost the two main ones
        log.exception("zero-shot column failed")
        return ModelOutput(error=f"The zero-shot title model is unavailable: {exc}")


def prepare_text(text) -> tuple[str, bool, str]:
    """Clean what a user pasted: decode bytes, drop NULs/lone surrogates, cut absurd lengths."""
    note = ""
    if text is None:
        text = ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    text = str(text)
    cleaned = text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "")
    if cleaned != text:
        note = "Some characters could not be read and were replaced."
    truncated = len(cleaned) > MAX_CHARS
    return cleaned[:MAX_CHARS], truncated, note


def english_only_output(text: str, models_dir: str | os.PathLike | None = None) -> ModelOutput:
    """The English-only base's rating of one review (no title); a failure comes back as the output's `error`,
    because this optional column must never cost the two main ones."""
    text, _, _ = prepare_text(text)
    try:
        small = get_english_only_engine(models_dir)
        row = small.run([text], titles=False)[ENGLISH_ONLY_MODEL][0]
        return small.model_output(ENGLISH_ONLY_MODEL, row, "unknown", text)
    except Exception as exc:  # noqa: BLE001
        return ModelOutput(error=f"The English-only model is unavailable: {exc}")


def compare(text: str, language: str | None = None, engine: Engine | None = None,
            english_only: bool = False) -> CompareResult:
    """Detect the language and run both models on one review; `english_only=True` adds the rating of the
    English-only base's model as `models["minilm_en_trained"]` (no title)."""
    t0 = time.perf_counter()
    text, cut, note = prepare_text(text)
    guess = langid.detect(text)
    lang, source = guess.language, "detected"
    if language and language not in ("auto", ""):
        lang, source = language, "override"
    result = CompareResult(text=text, language=lang, language_probs=guess.probs, language_note=guess.note,
                           models={}, language_source=source, message=note)
    if not text.strip():
        result.message = "Please enter a review: the text is empty."
        result.elapsed_ms = round((time.perf_counter() - t0) * 1000, 1)
        return result
    engine = engine or get_engine()
    s = engine.settings[engine.names[0]]
    n_tokens = len(engine.tokenizer(s.prefix + text[:MAX_CHARS], add_special_tokens=True)["input_ids"])
    result.n_tokens = n_tokens
    if cut or n_tokens > s.max_input_tokens:
        result.truncated = True
        result.message = (f"The review is long ({n_tokens:,} tokens): the models read only its first "
                          f"{s.max_input_tokens} tokens.").strip()
    if lang != "unknown" and lang not in ("en", "de") and source == "detected":
        result.language_note = (result.language_note + " " if result.language_note else "") + (
            f"{langid.language_name(lang)} is zero-shot for both models: neither was trained on it.")
    rows = engine.run([text], languages=[lang])
    for n in engine.names:
        result.models[n] = engine.model_output(n, rows[n][0], lang, text)
    if english_only:
        result.models[ENGLISH_ONLY_MODEL] = english_only_output(text, engine.models_dir)
    result.elapsed_ms = round((time.perf_counter() - t0) * 1000, 1)
    return result
