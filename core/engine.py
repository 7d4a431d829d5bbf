"""The engine: both models loaded once, and one `run` that every path goes through.

One copy of the base, two LoRA adapters, two sets of heads. The frozen trunk runs once per request and serves
both models; each model's top layers are a copy with its LoRA adapter merged in. Two first-come, first-served
locks serialise inference, one for the encoder step and one for the generator's titles: on a 2-core machine one
request at a time already uses both cores, and a rating must not wait behind a classmate's title. `compare`
(core/inference.py) turns a `run` row into the contract's answer; compare, batch, evaluate, the CLI and the API
all call `run`, so the same review gets the same answer on every path.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from . import langid, ort_backend
from .answer_cache import AnswerCache
from .cpu_threads import leave_openmp_to_llama_cpp, usable_cores
from .device import choose_device, on_gpu
from .fair_lock import FairLock, FairSlots
from .file_rows import read_rows_from_file
from .map_projection import load_projections
from .models import (STAR_LABELS, ModelSettings, ReviewHeads, Trunk, bert_of, load_heads,
                     mean_pool, merged_top_layers, polarity_from_probs, read_settings, read_title_hashes, stars_of)
from .names import MAIN_MODELS
from .results import ModelOutput
from .settings import current
from .title_checks import check_title
from .title_words import ModelDirError
from .titles import llama_writes_titles
from .titles.encoder_decoder import SeedTitles
from .titles.generator import ADAPTER_DIR, SETTINGS_FILE, TitleGenerator

log = logging.getLogger(__name__)


class Engine:
    """One base, two adapters, two heads; everything a comparison needs, loaded once."""

    def __init__(self, models_dir: str | os.PathLike | None = None, names: tuple[str, ...] = MAIN_MODELS,
                 base_from_env: bool = True):
        """`base_from_env=False` ignores CROSSLINGUAL_BASE (`--base`): for a model trained on another base."""
        from peft import PeftModel

        from .base import load_base, resolve_base

        cfg = current()
        # CROSSLINGUAL_DEVICE (core/device.py): "cuda" runs every model in PyTorch on the GPU; a DeviceError where
        # the GPU asked for is missing, before anything loads
        self.device = choose_device(cfg.device)
        if llama_writes_titles(device=self.device):  # before any PyTorch op here: see core/cpu_threads.py
            leave_openmp_to_llama_cpp()
        self.models_dir = Path(models_dir or cfg.models)
        self.base_from_env = base_from_env
        dirs = {}
        for n in names:
            dirs[n] = cfg.model_dir(n, self.models_dir)
            if not dirs[n].exists():
                raise ModelDirError(f"Model folder {dirs[n]} not found. Run `python -m core train`, or set "
                                    f"CROSSLINGUAL_MODELS (or CROSSLINGUAL_{n.upper()}) to a trained model folder.")
        self.names = names
        self.dirs = dirs
        self.settings: dict[str, ModelSettings] = {n: read_settings(d) for n, d in dirs.items()}
        self.generator, self.generator_note = None, ""
        s0 = self.settings[names[0]]
        base = (base_from_env and cfg.base) or s0.base
        self.tokenizer, bert = load_base(base)
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
                               self.tokenizer, dirs, shortlist=cfg.title_shortlist)
        self.runtime, self.runtime_note = "torch", ""
        if self.device == "cuda":  # built on the CPU, then moved: what ZeroGPU expects at start-up
            self._move_to(self.device)
        else:
            self._embeddings_from_file(resolve_base(base))
            if ort_backend.wanted():
                self._use_onnx_runtime()
        self.seen_titles = {n: read_title_hashes(dirs[n]) for n in names}
        # Two gates, so a rating never waits behind a title: `lock` for the encoder and the seed decoder (about
        # 100-150 ms a review), `title_lock` for the generator (about a second a review; as many reviews at once
        # as the generator decodes side by side). Each serves in arrival order; a review's two steps take them
        # one after the other.
        self.lock = FairLock()
        self.title_lock = FairSlots(1)
        self.answers = AnswerCache(cfg.answer_cache)  # this engine's answers (core/answer_cache.py)
        if any(self.settings[n].with_titles for n in names):  # after the encoder: a broken folder fails first
            self.generator = self._load_generator(dirs)
            self.title_lock.resize(getattr(self.generator, "slots", 1))
        # the "Why?" map's PCA per model (assets/explain, built by `python -m core explain --build`); {} without one
        self.map_projection = load_projections(dirs)
        # the first engine alive for these arguments stays the one a pickled reference finds: the process's own
        # (get_engine's), not whichever copy was built last
        _engines.setdefault(self._key(), self)

    # -- where it runs ------------------------------------------------------------------------------
    def _move_to(self, device: str) -> None:
        """The encoder (its base, both models' merged top layers), the heads and the seed decoders onto `device`."""
        self.peft_model.to(device)
        for n in self.names:
            self.top_layers[n].to(device)
            self.heads[n].to(device)

    def _embeddings_from_file(self, folder: str) -> None:
        """The word embeddings' rows read from the base's file as reviews ask for them, shared by the encoder and
        the seed decoders (tied to them): a mapped table grew the server by each review's pages and their
        neighbours' (core/file_rows.py). A base without a safetensors file keeps its table as loaded."""
        emb = self.bert.embeddings.word_embeddings
        for name in ("embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight"):
            emb = read_rows_from_file(emb, Path(folder) / "model.safetensors", name)
        self.bert.embeddings.word_embeddings = emb
        for h in self.heads.values():
            if h.decoder is not None and h.decoder.bert.embeddings.word_embeddings.weight is emb.weight:
                h.decoder.bert.embeddings.word_embeddings = emb

    def answered_by(self) -> dict[str, str]:
        """Which engines answer on which device: what `/compare`'s result and the bench record."""
        gen = self.generator.describe().engine if self.generator is not None else "none"
        return {"device": self.device, "encoder": self.runtime, "generator": gen}

    def _key(self) -> tuple:
        return str(self.models_dir), tuple(self.names), self.base_from_env

    def __reduce__(self):
        """An Engine crosses a process boundary (a ZeroGPU call, core/device.py) as a reference: the process on the
        other side uses its own copy of the same engine (forked with it), or loads one."""
        return _shared_engine, self._key()

    def _use_onnx_runtime(self) -> None:
        """Move the encoder layers and the decoding steps to ONNX Runtime (core/ort_backend.py). Any failure
        leaves the Engine on PyTorch, with the reason in `runtime_note`."""
        cores = usable_cores()
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
        return load_generator(with_gen, device=self.device)

    def add_title_model(self, name: str, like: str) -> None:
        """Load one more title adapter into the generator (once): its folder is CROSSLINGUAL_<NAME> or
        <models>/<name>; its training titles are `like`'s (for the "seen in training" badge)."""
        if self.generator is None:
            raise ModelDirError(self.generator_note or "no title generator loaded")
        with self.title_lock.exclusive():
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
        baselines, over the same ratings and seed titles); swapped under the title lock."""
        with self.title_lock.exclusive():
            mine, self.generator = self.generator, generator
            self.title_lock.resize(getattr(generator, "slots", 1))
        try:
            yield self
        finally:
            with self.title_lock.exclusive():
                self.generator = mine
                self.title_lock.resize(getattr(mine, "slots", 1))

    # -- pieces -------------------------------------------------------------------------------------
    def encode(self, texts: list[str]):
        s = self.settings[self.names[0]]
        return self.tokenizer([s.prefix + t for t in texts], truncation=True, max_length=s.max_input_tokens,
                              padding=True, return_tensors="pt").to(self.device)

    @on_gpu(duration=lambda self, texts, names=None, titles=True, fail=None, vectors=False, languages=None,
            generator=True: gpu_seconds(len(texts), titled=titles and generator))
    @torch.inference_mode()
    def run(self, texts: list[str], names: tuple[str, ...] | None = None, titles: bool = True,
            fail: dict[str, Exception] | None = None, vectors: bool = False,
            languages: list[str] | None = None, generator: bool = True) -> dict[str, list[dict]]:
        """Ratings and titles for a batch of texts from each model. One trunk pass serves all models. Each row
        also gets its point on the "Why?" map (`map_xy`) when the map is loaded, and with `vectors=True` the
        rating head's whole input (`pooled`, for building that map).

        Titles are decoded per review on every path (compare, batch, evaluate), so a review's titles never
        depend on what else is in its batch: the seed decoder's shortlist is that review's own tokens, and
        the generator decodes each prompt in a slot of its own. `title` is the generator's, `encoder_decoder_title` the seed
        decoder's (an `..._error` key instead when one failed). The generator takes `title_lock` once per review,
        so a classmate's comparison waits for one title, not for a whole batch, and a rating waits for no title.
        `generator=False` leaves out the generator's titles (the seed decoder's only; `write_titles` adds them)."""
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
        if titles and generator:
            out = self.write_titles(texts, out, names, fail, languages)
        return out

    @on_gpu(duration=lambda self, texts, *rest, **kw: gpu_seconds(len(texts), titled=True))
    def write_titles(self, texts: list[str], out: dict[str, list[dict]], names: tuple[str, ...] | None = None,
                     fail: dict[str, Exception] | None = None,
                     languages: list[str] | None = None) -> dict[str, list[dict]]:
        """`out`'s rows (from `run(..., generator=False)`) with the generator's titles, each review under
        `title_lock`: the second step of a comparison, which `run` also takes. Each model's prompt gets its own
        rating's stars from its row, so the step gives the same titles whether it runs at once or later. Use the
        rows it returns: on ZeroGPU it runs in another process, where filling `out` in place would not be seen."""
        names = names or self.names
        fail = fail or {}
        gen = [n for n in names if self.generator is not None and n in self.generator.names]
        if not gen:
            return out

        def one(j: int) -> None:
            text = texts[j]
            ok = tuple(n for n in gen if n not in fail)
            for n in gen:
                if n in fail:
                    out[n][j]["title_error"] = f"title generation failed: {fail[n]}"
            lang = (languages[j] if languages else None) or (
                langid.detect(text).language if self.generator.needs_language(ok) else None)
            # each model's own rating, for adapters whose prompt holds the stars (the stars shown beside it)
            stars = {n: stars_of(out[n][j]["star_probs"]) for n in ok if "star_probs" in out[n][j]}
            try:
                with self.title_lock:
                    got = self.generator.titles(text, ok, lang, stars) if ok else {}
                for n, t in got.items():
                    out[n][j]["title"] = t
            except Exception as exc:  # noqa: BLE001 - the ratings and the seed titles still stand
                log.exception("title generation failed")
                for n in ok:
                    out[n][j]["title_error"] = f"title generation failed: {exc}"

        # a batch's reviews side by side, as many as the generator decodes at once (their titles do not depend
        # on their company); each still takes its own place in the queue. One review stays in this thread.
        workers = min(len(texts), self.title_lock.n)
        if workers <= 1:
            for j in range(len(texts)):
                one(j)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(one, range(len(texts))))
        return out

    @on_gpu(duration=lambda self, *args, **kw: gpu_seconds(1, titled=True))
    def variant_title(self, name: str, like: str, text: str, language: str | None, stars: int | None) -> str:
        """One review's title from an optional title adapter (`add_title_model`, loaded here too: a ZeroGPU worker
        forked before it was added has not got it), given the stars its prompt holds where it holds them."""
        self.add_title_model(name, like)
        with self.title_lock:
            return self.generator.titles(text, (name,), language, {name: stars} if stars is not None else None)[name]

    def _rating_rows(self, n: str, top: torch.Tensor, mask: torch.Tensor, vectors: bool) -> list[dict]:
        pooled = mean_pool(top, mask)
        probs = torch.softmax(self.heads[n].rating(pooled), -1).tolist()
        pooled = pooled.cpu()  # the map's projection and the vectors stay on the CPU
        rows = [{"star_probs": p} for p in probs]
        if n in self.map_projection:  # a 384x2 matmul: microseconds
            mean, comps = self.map_projection[n]
            for row, xy in zip(rows, ((pooled - mean) @ comps).tolist()):
                row["map_xy"] = [round(xy[0], 4), round(xy[1], 4)]
        if vectors:
            for row, v in zip(rows, pooled.tolist()):
                row["pooled"] = v
        return rows

    def model_output(self, name: str, row: dict, input_lang: str, text: str) -> ModelOutput:
        """One model's row from `run` as the contract's answer, with the checks on each of its titles."""
        p = row["star_probs"]
        o = ModelOutput(stars=stars_of(p), star_probs={str(s): round(float(v), 4) for s, v in zip(STAR_LABELS, p)},
                        polarity=polarity_from_probs(p), map_xy=row.get("map_xy"))
        if not self.settings[name].with_titles:  # a rating-only model (the English-only contrast)
            return o
        seen = self.seen_titles[name]
        if "encoder_decoder_title" in row or "encoder_decoder_title_error" in row:
            o.encoder_decoder = check_title(row.get("encoder_decoder_title"), row.get("encoder_decoder_title_error"),
                                            input_lang, text, seen)
        if "title" in row or "title_error" in row:
            o.generated = check_title(row.get("title"), row.get("title_error"), input_lang, text, seen)
        elif self.generator is None and o.encoder_decoder is not None:  # titles were asked for
            o.error = self.generator_note or "This model has no title generator."
        return o


def gpu_seconds(reviews: int, titled: bool) -> int:
    """A ZeroGPU call's `duration`: the most it may take. Set from estimates, not a GPU measurement (none was
    available when it was written): a few seconds for the first call's start, then 2 s per review with titles
    and far less without. A shorter duration gets a GPU sooner; a call that outlasts it is cut."""
    return int(10 + (2.0 if titled else 0.1) * reviews)


_engine: Engine | None = None
_engine_lock = threading.Lock()
_engines: "weakref.WeakValueDictionary[tuple, Engine]" = weakref.WeakValueDictionary()


def _shared_engine(models_dir: str, names: tuple[str, ...], base_from_env: bool) -> Engine:
    """The engine these arguments built, in this process (see `Engine.__reduce__`), loaded here if it has none."""
    engine = _engines.get((models_dir, tuple(names), base_from_env))
    return engine if engine is not None else Engine(models_dir, names=tuple(names), base_from_env=base_from_env)


def get_engine() -> Engine:
    """The process-wide engine, created on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine()
        return _engine
