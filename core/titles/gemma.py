"""Titles from a pretrained multilingual generator: Gemma 3 270M with one LoRA adapter per model.

This module holds the settings, the prompt and the PyTorch engine. The app runs the same adapters with
llama.cpp on the Q4_K_M file (``gemma_llama.py``); the PyTorch engine below scores the dev sets during
training, serves any base that is not that file (a hub id, a local directory), and is the fallback
(``CROSSLINGUAL_GENERATOR_ENGINE=torch``).

Why this shape
- The seed's encoder-decoder (``encoder_decoder.py``) learns to write from a few hundred titles and
  does not manage even in English. A pretrained causal LM already writes 140 languages; a small LoRA
  adapter only has to teach it the task ("Review: ...\\nTitle:") and the register of review titles.
- The adapter is *activated* (Activated LoRA, peft's ``alora_invocation_tokens``): it acts on every layer
  but only from the prompt's tail ("\\nTitle:") on. The review's own tokens, most of a prompt, go through
  the plain base, so one prefill of them serves both models (and the optional third), each of which then
  runs only the tail and its title. Chosen on the dev sets over an adapter on the whole prompt (it also
  wrote titles closer to the review's sentiment there; model cards). Older adapters acting on the whole
  prompt of the top ``layers - shared_layers`` layers still load and run as they were trained.
- The adapters stay unmerged (``LoRALinears``): one float32 copy of the base, each Linear adding every
  model's low-rank update to its own row of the batch. Decoding steps are memory-bound on a CPU, so
  the models' next tokens go through the layers as one batch: one read of the weights for all of them,
  and a third model (the optional zero-shot column) is a few MB more, not another copy of the layers.
- Decoding by hand over the layers, greedy or beam search (no ``generate``, which would run the whole stack
  once per model and score the 262,144-row output layer in float32 at every step: 670 MB read per step, the
  largest single cost of a title on a 2-core CPU). The output layer runs as int8 with one scale per
  vocabulary row (PyTorch's dynamic quantisation), over the *whole* vocabulary: no shortlist that
  could steer which language a title is in. The layers stay float32: int8 activations (one scale per
  tensor) wrecked Gemma's titles (its hidden states have large outliers). ``python -m bench``
  measures how often float32 gives the same title; ``CROSSLINGUAL_GENERATOR_INT8=0`` runs float32.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..settings import current
from .gemma_base import GEMMA_ID

ADAPTER_DIR = "title_adapter"  # peft adapter of the generator, inside each model folder
SETTINGS_FILE = "title_generator.json"


DECODING_FIELDS = ("num_beams", "length_penalty", "no_repeat_ngram_size", "early_stopping")


@dataclass
class GeneratorSettings:
    """How a model's title adapter was built and how it decodes; saved as title_generator.json."""

    base: str = GEMMA_ID
    prompt_head: str = "Review:"
    prompt_tail: str = "\nTitle:"
    language_prompt: bool = False  # the prompt names the review's language ("Review (German): ...")
    rating_prompt: bool = False  # the prompt gives the review's stars ("...\nStars: 4/5\nTitle:"): the gold
    # label in training, the same model's rating head at inference (the stars shown beside the title)
    max_review_tokens: int = 192
    max_title_tokens: int = 16
    num_beams: int = 4  # 1: greedy; more: beam search as `generate(num_beams=...)` runs it (core/titles/beam.search);
    # 4 chosen on the dev sets (scripts/decoding_sweep.py; title_generator.json files without the key decode greedily)
    no_repeat_ngram_size: int = 0  # with beams: no n-gram twice in prompt + title (generate's processor)
    length_penalty: float = 1.0  # with beams: a finished title scores sum(log p) / length ** this (generate's)
    early_stopping: bool = False  # with beams: stop once num_beams titles are finished (generate's early_stopping=True)
    # instead of while a running beam could still beat one of them (generate's default, False)
    shared_layers: int = 0  # bottom layers without adapter (the adapter sits on the layers above)
    activated: bool = True  # Activated LoRA (peft's alora_invocation_tokens): the adapter acts only from the prompt's
    # tail ("\nTitle:") on, so the review's own tokens go through the plain base and one prefill of them serves every
    # model; False: the adapter acts on the whole prompt (each model prefills the review itself; only the bottom
    # `shared_layers` are shared). Chosen on the dev sets against the earlier top-6 adapter (model cards)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def decoding(self) -> dict:
        """The decoding settings alone (what the report records and the decoding sweep varies)."""
        return {k: getattr(self, k) for k in DECODING_FIELDS}

    def to_json(self) -> dict:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "GeneratorSettings":
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d.setdefault("num_beams", 1)  # written before decoding was a setting: those adapters decoded greedily
        d.setdefault("activated", False)  # written before activated adapters: they act on the whole prompt
        d.setdefault("shared_layers", 12)  # ... on the top 6 layers
        if "lora_targets" in d:
            d["lora_targets"] = tuple(d["lora_targets"])
        return cls(**d)


LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "nl": "Dutch", "it": "Italian"}


def prompt_ids(tokenizer, body: str, s: GeneratorSettings, language: str | None = None,
               stars: int | None = None) -> list[int]:
    """<bos>Review: <body, cut to max_review_tokens>[\\nStars: k/5]\\nTitle: (the same ids in training and
    inference)."""
    review, tail = prompt_parts(tokenizer, body, s, language, stars)
    return review + tail


def prompt_parts(tokenizer, body: str, s: GeneratorSettings, language: str | None = None,
                 stars: int | None = None) -> tuple[list[int], list[int]]:
    """The prompt as (review part, tail): `<bos>Review: <body>` and `[\\nStars: k/5]\\nTitle:`. An activated
    adapter (`s.activated`) acts from the tail on only, so the review part is the plain base's for every model."""
    head, tail = s.prompt_head, s.prompt_tail
    if s.rating_prompt:  # "?" where a training review has no stars; the app always has its rating head's
        tail = f"\nStars: {'?' if stars is None else int(stars)}/5" + tail
    if s.language_prompt:
        name = LANGUAGE_NAMES.get(language or "", "unknown language")
        head = f"Review ({name}):"
    enc = lambda t: tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    body_ids = enc(" " + " ".join((body or "").split()))[: s.max_review_tokens]
    return [tokenizer.bos_token_id] + enc(head) + body_ids, enc(tail)


def title_ids(tokenizer, title: str, s: GeneratorSettings) -> list[int]:
    ids = tokenizer(" " + " ".join(title.split()), add_special_tokens=False)["input_ids"]
    return ids[: s.max_title_tokens - 1] + [tokenizer.eos_token_id]


# ----------------------------------------------------------------------------- the layers, by hand
class Stack:
    """Gemma's embedding, rotary positions, final norm and output rows, with its layers run in two parts."""

    def __init__(self, lm: nn.Module, shared_layers: int):
        inner = lm.get_decoder() if hasattr(lm, "get_decoder") else lm.model
        self.config = lm.config
        self.embed = inner.embed_tokens
        self.rotary = inner.rotary_emb
        self.norm = inner.norm
        self.layers = inner.layers
        self.k = shared_layers
        self.out_weight = lm.get_output_embeddings().weight  # tied to the embeddings

    @property
    def device(self) -> torch.device:
        return self.embed.weight.device

    def positions(self, h: torch.Tensor, start: int) -> tuple[torch.Tensor, dict]:
        pos = torch.arange(start, start + h.shape[1], device=h.device).unsqueeze(0)
        return pos, {t: self.rotary(h, pos, t) for t in set(self.config.layer_types)}

    def run(self, layers, h: torch.Tensor, start: int, cache=None) -> torch.Tensor:
        """Layers over positions start.. (causal; no padding inside a row). No mask is needed from position 0 (sdpa
        is causal for several query tokens) or for one token (it attends to the whole cache); several tokens after
        a cached part (an activated adapter's tail) get the causal mask aligned to the cache's end."""
        pos, pe = self.positions(h, start)
        mask = None
        if start > 0 and h.shape[1] > 1:
            n = h.shape[1]
            allowed = torch.ones(n, start + n, dtype=torch.bool, device=h.device).tril(diagonal=start)
            mask = torch.zeros(n, start + n, dtype=h.dtype, device=h.device).masked_fill(
                ~allowed, torch.finfo(h.dtype).min)[None, None]
        for layer in layers:
            t = self.config.layer_types[layer.self_attn.layer_idx]
            h = layer(h, position_embeddings=pe[t], attention_mask=mask, position_ids=pos, cache=cache)
        return h

    def shared(self):
        return self.layers[: self.k]

    def top(self):
        return self.layers[self.k:]


def new_cache(config):
    from transformers import DynamicCache

    return DynamicCache(config=config)


def stop_ids(tokenizer) -> frozenset[int]:
    """End of sequence, and every piece holding a line break: a title is one line."""
    vocab = tokenizer.get_vocab()
    return frozenset([tokenizer.eos_token_id] + [i for p, i in vocab.items() if "\n" in p or "<0x0A>" in p])


def no_switch(rows: int) -> None:
    """`activate` for a stack whose adapter is always on (a single peft adapter)."""


def prefill(stack: Stack, ids: list[int], n: int, start: int, activate=no_switch):
    """The prompt through every layer for `n` models at once: (cache with one row per model, each model's last
    hidden state (n, H)). `activate(rows)` points the LoRA updates at the rows' models, `activate(0)` turns them off.

    start == 0 (the adapters act on the whole prompt): the shared bottom layers (below every adapter) run once,
    the adapted top layers once per model. start > 0 (activated adapters, from the prompt's tail at `start` on):
    the review part goes through the plain base once, whole, and only the tail runs per model."""
    x = stack.embed(torch.tensor([ids], device=stack.device))
    cache = new_cache(stack.config)
    if start > 0:
        activate(0)
        stack.run(stack.layers, x[:, :start], 0, cache)
        if n > 1:
            cache.batch_repeat_interleave(n)
        activate(1)
        return cache, stack.run(stack.layers, x[:, start:].expand(n, -1, -1), start, cache)[:, -1]
    h = stack.run(stack.shared(), x, 0, cache)
    if n > 1:
        if stack.k > 0:
            cache.batch_repeat_interleave(n)
        h = h.expand(n, -1, -1)
    activate(1)
    return cache, stack.run(stack.top(), h, 0, cache)[:, -1]


@torch.inference_mode()
def greedy_titles(stack: Stack, tokenizer, ids: list[int], n: int, max_new: int, head: nn.Module,
                  stops: frozenset[int] | None = None, start: int = 0, activate=no_switch) -> list[list[int]]:
    """Greedy title ids for one prompt from `n` models at once, row i of every batch being model i.

    The prompt's shared part runs once (`prefill`); from there the models run as one batch (`LoRALinears`: one
    read of the weights, each row its own low-rank update). Each step then feeds the models' last tokens through
    all layers as one batch. `head` maps final hidden states to vocabulary scores (norm + output layer)."""
    cache, last = prefill(stack, ids, n, start, activate)
    stops = stops if stops is not None else frozenset([tokenizer.eos_token_id])
    out: list[list[int]] = [[] for _ in range(n)]
    done = [False] * n
    for step in range(max_new):
        nxt = head(last).argmax(-1)
        for j in range(n):
            if not done[j]:
                t = int(nxt[j])
                if t in stops:
                    done[j] = True
                else:
                    out[j].append(t)
        if all(done) or step == max_new - 1:
            break
        last = stack.run(stack.layers, stack.embed(nxt.view(n, 1)), len(ids) + step, cache)[:, -1]
    return out


@torch.inference_mode()
def beam_titles(stack: Stack, ids: list[int], n: int, s: GeneratorSettings, head: nn.Module,
                stops: frozenset[int], activate=no_switch, start: int = 0) -> list[list[int]]:
    """Beam-search title ids for one prompt from `n` models at once (core/titles/beam.search, as `generate`
    with num_beams does it): the prompt's shared part once (`prefill`), then every model's beams as one batch
    (row m·k + j: model m's beam j). `activate(rows)` points the LoRA updates at the rows' models."""
    from .beam import pieces, search

    k = s.num_beams
    cache, last = prefill(stack, ids, n, start, activate)
    first = head(last).repeat_interleave(k, dim=0)
    cache.batch_repeat_interleave(k)
    activate(k)

    def step(last: torch.Tensor, position: int) -> torch.Tensor:
        return head(stack.run(stack.layers, stack.embed(last), position, cache)[:, -1])

    best = search(pieces(), step, cache.reorder_cache, torch.tensor([ids]).expand(n, -1), k, s.max_title_tokens,
                  sorted(stops), s.length_penalty, s.early_stopping, s.no_repeat_ngram_size, first=first)
    return [[t for t in row[len(ids):].tolist() if t not in stops] for row in best]


class LoRALinears(nn.Module):
    """A Linear shared by every model plus each model's LoRA update, unmerged: y = xW + s·(xAᵀ)Bᵀ, the update
    picked per batch row (row i: the i-th active model). What peft computes for one adapter, for several at once."""

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base
        self.A: dict[str, torch.Tensor] = {}  # (r, in)
        self.B: dict[str, torch.Tensor] = {}  # (out, r), the scale folded in
        self.active: tuple[torch.Tensor, torch.Tensor] | None = None

    def add(self, name: str, A: torch.Tensor, B: torch.Tensor, scale: float) -> None:
        self.A[name], self.B[name] = A.float(), B.float() * scale

    def activate(self, names: tuple[str, ...]) -> None:
        if not any(m in self.A for m in names):
            self.active = None
            return
        r = max(self.A[m].shape[0] for m in names if m in self.A)
        A = torch.zeros(len(names), r, self.base.in_features)
        B = torch.zeros(len(names), self.base.out_features, r)
        for i, m in enumerate(names):
            if m in self.A:
                A[i, : self.A[m].shape[0]] = self.A[m]
                B[i, :, : self.B[m].shape[1]] = self.B[m]
        self.active = (A.transpose(1, 2).contiguous(), B.transpose(1, 2).contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.active is not None:
            At, Bt = self.active
            y = y + torch.bmm(torch.bmm(x, At[: x.shape[0]]), Bt[: x.shape[0]])
        return y


def read_adapter(adapter_dir: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(adapter_config.json, tensors) of a peft LoRA adapter; plain LoRA only (what the recipe trains)."""
    from safetensors.torch import load_file

    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    if cfg.get("peft_type") != "LORA" or cfg.get("use_dora") or cfg.get("use_rslora"):
        raise ValueError(f"{adapter_dir}: only plain LoRA adapters are supported")
    return cfg, load_file(str(adapter_dir / "adapter_model.safetensors"))


def lora_pairs(adapter_dir: Path, sd: dict[str, torch.Tensor]) -> list[tuple[str, int, torch.Tensor, torch.Tensor]]:
    """(module path in the base, layer index, A, B) for every adapted Linear of a peft adapter's tensors."""
    out = []
    for key in sorted(sd):
        if key.endswith("lora_A.weight"):
            path = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            layer = int(path.split("layers.")[1].split(".")[0])
            out.append((path, layer, sd[key], sd[key.replace("lora_A", "lora_B")]))
    if not out:
        raise ValueError(f"{adapter_dir}: no LoRA weights")
    return out


def attach_adapter(lm: nn.Module, name: str, adapter_dir: Path) -> set[int]:
    """Add one model's adapter to `lm`'s Linears (wrapping them in LoRALinears once); returns the layers it
    touches."""
    cfg, sd = read_adapter(adapter_dir)
    scale = cfg["lora_alpha"] / cfg["r"]
    layers = set()
    for path, layer, A, B in lora_pairs(adapter_dir, sd):
        parent_path, _, leaf = path.rpartition(".")
        parent = lm.get_submodule(parent_path)
        mod = getattr(parent, leaf)
        if not isinstance(mod, LoRALinears):
            mod = LoRALinears(mod)
            setattr(parent, leaf, mod)
        mod.add(name, A, B, scale)
        layers.add(layer)
    return layers


class Head(nn.Module):
    """Final norm, then the output layer (the tied embeddings) as its own Linear so it can be quantised."""

    def __init__(self, stack: Stack):
        super().__init__()
        self.norm = stack.norm
        W = stack.out_weight.detach()
        self.out = nn.utils.skip_init(nn.Linear, W.shape[1], W.shape[0], bias=False)
        self.out.weight = nn.Parameter(W, requires_grad=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(h))


def int8_wanted() -> bool:
    return current().generator_int8


def quantized(module: nn.Module) -> nn.Module:
    """int8 weights, one scale per output row; activations quantised per call (PyTorch dynamic quantisation)."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the torch.ao deprecation notice; the API is what torch 2.13 ships
        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


# ----------------------------------------------------------------------------- the generator, loaded
class TitleModels:
    """What every engine of the main titles shares: each model's settings (title_generator.json) and the prompt
    built from them. An engine adds `tokenizer`, `names`, `add(name, dir)` and `titles(text, names, language,
    stars)`."""

    settings: dict[str, GeneratorSettings]
    tokenizer = None

    def _read_settings(self, dirs: dict[str, Path]) -> GeneratorSettings:
        from ..models import ModelDirError

        for m, d in dirs.items():
            p = Path(d) / SETTINGS_FILE
            if not p.exists():
                raise ModelDirError(f"{d} has no title generator ({SETTINGS_FILE}). Run `python -m core train`.")
            try:
                self.settings[m] = GeneratorSettings.from_json(json.loads(p.read_text()))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ModelDirError(f"{p} is corrupt ({exc}); re-run `python -m core train`.") from exc
        return next(iter(self.settings.values()))

    def shared_review_prefill(self, names=None) -> bool:
        """Whether one prefill of the review serves all these models (activated adapters, same review part)."""
        return all(self.settings[m].activated for m in names or self.names)

    def needs_language(self, names) -> bool:
        return any(self.settings[m].language_prompt for m in names)

    def needs_stars(self, names) -> bool:
        return any(self.settings[m].rating_prompt for m in names)

    def prompt(self, text: str, model: str, language: str | None = None, stars: dict | None = None) -> list[int]:
        return prompt_ids(self.tokenizer, text, self.settings[model], language, (stars or {}).get(model))

    def prompt_parts(self, text: str, model: str, language: str | None = None,
                     stars: dict | None = None) -> tuple[list[int], list[int]]:
        return prompt_parts(self.tokenizer, text, self.settings[model], language, (stars or {}).get(model))


class GemmaTitles(TitleModels):
    """Every model's title adapter on one float32 copy of the base, applied unmerged and batched (LoRALinears);
    more models (the optional third column) can be added later without reloading anything."""

    name = "gemma"
    engine = "torch"

    def __init__(self, dirs: dict[str, Path], base: str | None = None):
        from .gemma_base import load_generator_base

        self.settings: dict[str, GeneratorSettings] = {}
        s0 = self._read_settings(dirs)
        self.tokenizer, self.lm = load_generator_base(base or current().generator_base or s0.base)
        self.lm.requires_grad_(False)
        self.touched: set[int] = set()
        self.names: tuple[str, ...] = ()
        for m, d in dirs.items():
            self.add(m, d)
        self.head = Head(Stack(self.lm, 0))
        self.int8 = int8_wanted()
        if self.int8:  # the output layer only (see the module's docstring)
            quantized(self.head)
        self.stops = stop_ids(self.tokenizer)
        self._active: tuple[str, ...] | None = None

    def add(self, name: str, model_dir: Path) -> None:
        """Load one more model's adapter (its settings must share the base)."""
        from ..models import ModelDirError

        if name not in self.settings:
            self._read_settings({name: model_dir})
        try:
            self.touched |= attach_adapter(self.lm, name, Path(model_dir) / ADAPTER_DIR)
        except Exception as exc:  # noqa: BLE001 - safetensors, json and shapes all raise their own kinds
            raise ModelDirError(f"Cannot load the title adapter under {model_dir}: {exc}. "
                                "Re-run `python -m core train`.") from exc
        self.names = tuple(dict.fromkeys(self.names + (name,)))
        self.stack = Stack(self.lm, min(self.touched))  # layers below every adapter: one prefill serves all
        self._active = None

    def _activate(self, names: tuple[str, ...]) -> None:
        if names != self._active:
            for mod in self.lm.modules():
                if isinstance(mod, LoRALinears):
                    mod.activate(names)
            self._active = names

    def titles(self, text: str, names: tuple[str, ...] | None = None, language: str | None = None,
               stars: dict[str, int] | None = None) -> dict[str, str]:
        """One review's title from each model, decoded together. Every path (compare, batch, evaluate) calls
        this one review at a time, so the same review gets the same title everywhere. `stars`: each model's
        rating, for adapters whose prompt holds it."""
        names = tuple(names or self.names)
        groups: dict[tuple, list[str]] = {}
        for m in names:  # models with the same prompt, adapter kind and decoding share the prefill
            s = self.settings[m]
            review, tail = self.prompt_parts(text, m, language, stars)
            key = (tuple(review + tail), len(review) if s.activated else 0,
                   tuple(s.decoding().values()), s.max_title_tokens)
            groups.setdefault(key, []).append(m)
        out = {}
        for (ids, start, *_), ms in groups.items():
            s = self.settings[ms[0]]

            def activate(k: int, ms=ms) -> None:
                self._activate(tuple(m for m in ms for _ in range(k)))
            if s.num_beams > 1:
                got = beam_titles(self.stack, list(ids), len(ms), s, self.head, self.stops, activate, start)
            else:
                got = greedy_titles(self.stack, self.tokenizer, list(ids), len(ms), s.max_title_tokens, self.head,
                                    self.stops, start, activate)
            for m, t in zip(ms, got):
                out[m] = self.tokenizer.decode(t, skip_special_tokens=True).strip()
        return out


class PlainGenerate(TitleModels):
    """The same adapters the way a user would first run them: one float32 `peft` model, the active adapter
    switched per model, `generate` (same prompt, stops and decoding settings) once per model. The baseline that
    `python -m bench` measures the shipped path against, and that the tests check the hand loop with."""

    name = "gemma-generate"

    def __init__(self, dirs: dict[str, Path], base: str | None = None):
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        from .gemma_base import load_generator_base

        self.settings = {}
        s0 = self._read_settings(dirs)
        self.tokenizer, lm = load_generator_base(base or s0.base)
        self.model = None
        for m, d in dirs.items():
            # an activated adapter loads as plain LoRA: `titles` prefills its review part with the adapter off,
            # so from the tail on it acts as peft's aLoRA would (whose own generate refuses beam search)
            cfg = LoraConfig.from_pretrained(str(Path(d) / ADAPTER_DIR))
            cfg.alora_invocation_tokens = None
            if self.model is None:
                self.model = get_peft_model(lm, cfg, adapter_name=m)
            else:
                self.model.add_adapter(m, cfg)
            set_peft_model_state_dict(self.model, load_file(str(Path(d) / ADAPTER_DIR / "adapter_model.safetensors")),
                                      adapter_name=m)
        self.model.eval()
        self.stops = stop_ids(self.tokenizer)
        self.names = tuple(dirs)

    @torch.inference_mode()
    def titles(self, text: str, names: tuple[str, ...] | None = None, language: str | None = None,
               stars: dict[str, int] | None = None) -> dict[str, str]:
        out = {}
        for m in names or self.names:
            s = self.settings[m]
            review, tail = self.prompt_parts(text, m, language, stars)
            ids = review + tail
            self.model.set_adapter(m)
            beams = s.decoding() if s.num_beams > 1 else {}
            cache = {}
            if s.activated:  # the review part through the plain base; generate continues from its cache
                with self.model.disable_adapter():
                    cache["cache"] = self.model(torch.tensor([review]), use_cache=True).cache
                if s.num_beams > 1:
                    cache["cache"].batch_repeat_interleave(s.num_beams)
            gen = self.model.generate(torch.tensor([ids]), max_new_tokens=s.max_title_tokens, do_sample=False,
                                      eos_token_id=sorted(self.stops), pad_token_id=self.tokenizer.pad_token_id,
                                      **beams, **cache)
            new = [t for t in gen[0, len(ids):].tolist() if t not in self.stops]
            out[m] = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        return out
