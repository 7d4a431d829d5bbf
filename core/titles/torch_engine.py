"""The PyTorch engine of the main titles: Gemma 3 270M's layers run by hand, with every model's LoRA adapter.

The app runs the same adapters with llama.cpp on the Q4_K_M file (``llama_engine.py``); this engine serves any base
that is not that file (a hub id, a local directory), is the fallback (``CROSSLINGUAL_GENERATOR_ENGINE=torch``), and
its layers by hand are what training's dev scoring decodes with (``gemma_train.dev_titles``).

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
- Decoding by hand over the layers (``generator.decode``: greedy or beam search; no ``generate``, which would run
  the whole stack once per model and score the 262,144-row output layer in float32 at every step: 670 MB read per
  step, the largest single cost of a title on a 2-core CPU). The output layer runs as int8 with one scale per
  vocabulary row (PyTorch's dynamic quantisation), over the *whole* vocabulary: no shortlist that
  could steer which language a title is in. The layers stay float32: int8 activations (one scale per
  tensor) wrecked Gemma's titles (its hidden states have large outliers). ``python -m bench``
  measures how often float32 gives the same title; ``CROSSLINGUAL_GENERATOR_INT8=0`` runs float32.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..settings import current
from .generator import ADAPTER_DIR, GeneratorSettings, TitleModels, decode, lora_pairs, read_adapter, stop_ids


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


class HandSteps:
    """`decode`'s steps over the layers by hand: rows are models (then beams), all through the layers as one batch
    (`LoRALinears`: one read of the weights, each row its own low-rank update). `activate(rows)` points the LoRA
    updates at the rows' models; `head` maps final hidden states to vocabulary scores (norm + output layer)."""

    def __init__(self, stack: Stack, head: nn.Module, cache, activate=no_switch):
        self.stack, self.head, self.cache, self.activate = stack, head, cache, activate

    def beams(self, k: int) -> None:
        self.cache.batch_repeat_interleave(k)
        self.activate(k)

    def step(self, last: torch.Tensor, position: int) -> torch.Tensor:
        h = self.stack.run(self.stack.layers, self.stack.embed(last.to(self.stack.device)), position, self.cache)
        return on_cpu(self.head(h[:, -1]))

    def reorder(self, order: torch.Tensor) -> None:
        self.cache.reorder_cache(order.to(self.stack.device))


def on_cpu(scores: torch.Tensor) -> torch.Tensor:
    """Next-token scores for the beam search, which keeps its bookkeeping on the CPU on every device: the same
    code, in the same order, ranks the beams wherever the layers ran."""
    return scores.float().cpu()


@torch.inference_mode()
def hand_titles(stack: Stack, ids: list[int], n: int, s: GeneratorSettings, head: nn.Module, stops: frozenset[int],
                activate=no_switch, start: int = 0) -> list[list[int]]:
    """Title ids for one prompt from `n` models at once, row i being model i: the prompt's shared part once
    (`prefill`), then greedy or beam search as the settings say (`generator.decode`)."""
    cache, last = prefill(stack, ids, n, start, activate)
    return decode(s, ids, on_cpu(head(last)), HandSteps(stack, head, cache, activate), stops)


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
        device = self.base.weight.device  # built on the CPU (the adapters stay there), used beside the base
        self.active = (A.transpose(1, 2).contiguous().to(device), B.transpose(1, 2).contiguous().to(device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        if self.active is not None:
            At, Bt = self.active
            y = y + torch.bmm(torch.bmm(x, At[: x.shape[0]]), Bt[: x.shape[0]])
        return y


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


def quantized(module: nn.Module) -> nn.Module:
    """int8 weights, one scale per output row; activations quantised per call (PyTorch dynamic quantisation)."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the torch.ao deprecation notice; the API is what torch 2.13 ships
        return quantize_dynamic(module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


class GemmaTitles(TitleModels):
    """Every model's title adapter on one float32 copy of the base, applied unmerged and batched (LoRALinears);
    more models (the optional third column) can be added later without reloading anything."""

    name = "gemma"
    engine = "torch"
    output_layer = "PyTorch"

    def __init__(self, dirs: dict[str, Path], base: str | None = None, int8: bool | None = None,
                 device: str = "cpu"):
        """`int8`: the output layer as int8 (default: the setting CROSSLINGUAL_GENERATOR_INT8; on the CPU only:
        PyTorch's dynamic quantisation has no CUDA kernels). `device`: where the layers run (core/device.py);
        built on the CPU, then moved."""
        from .gemma_base import load_generator_base

        self.settings: dict[str, GeneratorSettings] = {}
        s0 = self._read_settings(dirs)
        self.tokenizer, self.lm = load_generator_base(base or current().generator_base or s0.base)
        self.lm.requires_grad_(False)
        self.touched: set[int] = set()
        self.names: tuple[str, ...] = ()
        for m, d in dirs.items():
            self.add(m, d)
        self.device = device
        if device != "cpu":  # before the head, which then shares the moved embeddings instead of copying them
            self.lm.to(device)
        self.head = Head(Stack(self.lm, 0))
        self.int8 = (current().generator_int8 if int8 is None else int8) and device == "cpu"
        if self.int8:  # the output layer only (see the module's docstring)
            quantized(self.head)
        self.stops = stop_ids(self.tokenizer)
        self._active: tuple[str, ...] | None = None

    def add(self, name: str, model_dir: Path) -> None:
        """Load one more model's adapter (its settings must share the base)."""
        from ..title_words import ModelDirError

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

            got = hand_titles(self.stack, list(ids), len(ms), s, self.head, self.stops, activate, start)
            for m, t in zip(ms, got):
                out[m] = self.tokenizer.decode(t, skip_special_tokens=True).strip()
        return out
