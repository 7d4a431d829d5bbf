"""The title adapters the way a user would first run them, as the baseline for `python -m bench` and the tests.

Not on any shipped path: it exists so the hand-written decoding (core/titles/torch_engine.py, llama_engine.py) can be
measured against, and checked token for token against, `transformers`' own `generate` with `peft`.
"""
from __future__ import annotations

from pathlib import Path

import torch

from core.titles.generator import ADAPTER_DIR, TitleModels, stop_ids


class PlainGenerate(TitleModels):
    """One float32 `peft` model, the active adapter switched per model, `generate` (same prompt, stops and decoding
    settings) once per model."""

    name = "gemma-generate"
    engine = "torch"
    output_layer = "PyTorch (peft generate)"

    def __init__(self, dirs: dict[str, Path], base: str | None = None):
        from core.titles.gemma_base import load_generator_base

        self.settings = {}
        s0 = self._read_settings(dirs)
        self.tokenizer, self._lm = load_generator_base(base or s0.base)
        self.model = None
        self.names: tuple[str, ...] = ()
        for m, d in dirs.items():
            self.add(m, d)
        self.stops = stop_ids(self.tokenizer)

    def add(self, name: str, model_dir: Path) -> None:
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        if name not in self.settings:
            self._read_settings({name: model_dir})
        # an activated adapter loads as plain LoRA: `titles` prefills its review part with the adapter off,
        # so from the tail on it acts as peft's aLoRA would (whose own generate refuses beam search)
        cfg = LoraConfig.from_pretrained(str(Path(model_dir) / ADAPTER_DIR))
        cfg.alora_invocation_tokens = None
        if self.model is None:
            self.model = get_peft_model(self._lm, cfg, adapter_name=name)
        else:
            self.model.add_adapter(name, cfg)
        weights = load_file(str(Path(model_dir) / ADAPTER_DIR / "adapter_model.safetensors"))
        set_peft_model_state_dict(self.model, weights, adapter_name=name)
        self.model.eval()
        self.names = tuple(dict.fromkeys(self.names + (name,)))

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
