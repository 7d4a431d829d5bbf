"""Title generation: one package, one module per generator.

- ``gemma`` (+ ``gemma_base``, ``gemma_train``): the main titles, from a pretrained multilingual
  generator (Gemma 3 270M) with one activated LoRA adapter per model. Two engines run the same adapters:
  ``gemma_llama`` (llama.cpp on the layers of the Q4_K_M file the wheels ship, its token table in ONNX
  Runtime, ``gemma_head``: the shipped path) and ``gemma.GemmaTitles`` (PyTorch over the dequantized float32
  base: any other base, and the fallback).
- ``encoder_decoder`` (+ ``beam``): "the question's own setup", a small decoder warm-started from the
  multilingual encoder (bert2bert), trained with the rating; kept beside the main titles so a class
  sees why that experiment writes 1-2 words.

Both answer the same question for one review at a time: ``titles(...) -> {model: title}`` for the
generator, ``generate_titles(...)`` for the seed decoder, which reads the encoder states the Engine
already computed. ``core.engine.Engine`` runs both, and every path (compare, batch, evaluate, the
CLI, the API) goes through it.
"""
from __future__ import annotations

from pathlib import Path


def load_generator(dirs: dict[str, Path], base: str | None = None):
    """The main title generator for these model folders: llama.cpp where it can run the base (the default
    PyPI GGUF, llama-cpp-python installed, CROSSLINGUAL_GENERATOR_ENGINE not "torch"), else PyTorch."""
    from .gemma import GemmaTitles
    from .gemma_base import is_packaged_base
    from .gemma_llama import LlamaTitles, engine_wanted, llama_available

    if engine_wanted() != "torch" and is_packaged_base(base) and llama_available():
        return LlamaTitles(dirs)
    return GemmaTitles(dirs, base)
