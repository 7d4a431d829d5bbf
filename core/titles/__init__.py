"""Title generation: two generators, each apart from the code that runs the other.

The main titles come from a pretrained multilingual generator (Gemma 3 270M) with one activated LoRA adapter per
model; two engines run the same adapters, and anything they must agree on lives once, in ``generator``:
- ``generator``: the settings (title_generator.json), the prompt, the stop tokens, reading an adapter, the
  ``TitleGenerator`` interface the Engine, evaluation and the bench rely on, and ``decode``, the one place that
  picks greedy or beam search. Engines only say how to run one step of their layers.
- ``llama_engine`` (+ ``llama_output_layer``: its token table in ONNX Runtime): llama.cpp on the layers of the
  Q4_K_M file the wheels ship. The shipped path.
- ``torch_engine``: PyTorch over the dequantized float32 base, the layers run by hand: any other base, the
  fallback, and what training's dev scoring decodes with.
- ``gemma_base`` (the base, offline), ``gemma_train`` (one training stage of an adapter), ``scoring`` (how dev and
  test titles are scored: one definition for training and the report).

The seed's own setup, "the question's own setup", is a small decoder warm-started from the multilingual encoder
(bert2bert) and trained with the rating; kept beside the main titles so a class sees why that experiment writes
1-2 words. ``encoder_decoder`` holds all of it (building the decoder, its shortlist, its beam search, ``SeedTitles``
that the Engine calls), ``encoder_decoder_onnx`` its decoding step in ONNX Runtime. ``beam`` is the beam search both
kinds share, made of ``transformers``' own pieces so titles match ``generate`` token for token.

Both answer per review (llama.cpp decodes several reviews side by side, ``decode_room``, each as it would
alone); ``core.engine.Engine`` runs both, and every path (compare, batch, evaluate,
the CLI, the API) goes through it, so the same review gets the same titles everywhere.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .generator import TitleGenerator


def llama_writes_titles(base: str | None = None, device: str = "cpu") -> bool:
    """Whether `load_generator` tries llama.cpp: on the CPU, the default PyPI GGUF, llama-cpp-python installed,
    CROSSLINGUAL_GENERATOR_ENGINE not "torch". On a GPU (core/device.py) the PyTorch engine runs the titles."""
    from ..settings import current
    from .gemma_base import is_packaged_base
    from .llama_engine import llama_available

    return (device == "cpu" and current().generator_engine != "torch" and is_packaged_base(base)
            and llama_available())


def load_generator(dirs: dict[str, Path], base: str | None = None, device: str = "cpu") -> "TitleGenerator":
    """The main title generator for these model folders: llama.cpp where it can run the base
    (`llama_writes_titles`), else PyTorch (on `device`); and PyTorch, with a log line, when llama.cpp fails to
    load (a build that cannot run here, a damaged cache twice over)."""
    import logging

    from ..title_words import ModelDirError
    from .llama_engine import LlamaTitles
    from .torch_engine import GemmaTitles

    if llama_writes_titles(base, device):
        try:
            return LlamaTitles(dirs)
        except ModelDirError:  # a broken adapter: the PyTorch engine would read the same files
            raise
        except Exception as exc:  # noqa: BLE001 - llama.cpp, its bindings and ONNX Runtime raise their own kinds
            logging.getLogger(__name__).warning(
                "llama.cpp cannot run the title generator (%s: %s); its titles run in PyTorch instead (slower). "
                "CROSSLINGUAL_GENERATOR_ENGINE=torch skips this attempt.", type(exc).__name__, exc)
    return GemmaTitles(dirs, base, device=device)
