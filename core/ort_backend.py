"""The encoder layers and the title decoder's steps in ONNX Runtime.

Why: on a 2-core CPU a comparison is mostly small matrix products (a title is ~9 beam-search steps over
3-row matrices), and PyTorch spends longer dispatching each of them through `transformers`' modules than
multiplying. ONNX Runtime runs the same layers as one graph per call. What runs there is exported from the
loaded models themselves (each model's LoRA merged in), in float32, so the outputs equal PyTorch's to about
1e-5: tests/test_ort_backend.py checks that titles and stars are the same both ways.

- `LayerStack`: a run of encoder layers (the shared trunk, or one model's top layers); the word-embedding
  lookup stays in PyTorch so the 250k-row table is held once.
- `DecoderStep`: one decoding step, embedding and vocabulary projection included (its rows are an input,
  for the title shortlist), with the KV caches as plain tensors. core/titles/beam.py drives the beam search with
  `transformers`' own beam-search steps. The Engine decodes the two models' titles side by side, one core
  each.

Graphs are exported once per set of weights and cached under the user cache (keyed by a hash of those
weights). `CROSSLINGUAL_RUNTIME=torch` turns all this off; without `onnxruntime` installed, or if an export
fails, the Engine says so once and runs in PyTorch.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer

from .settings import current

GRAPH_VERSION = 5  # bump when the exported graphs change, so cached ones are rebuilt


def wanted() -> bool:
    """ONNX Runtime unless CROSSLINGUAL_RUNTIME=torch; False too when the package is missing."""
    if current().runtime == "torch":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) of 1/0 -> (B, 1, 1, T) of 0/-inf-ish, what Bert's attention adds to its scores."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class LayerStack(nn.Module):
    """Encoder layers from hidden states and a padding mask: the part of the encoder worth exporting."""

    def __init__(self, layers: nn.ModuleList):
        super().__init__()
        self.layers = layers

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = additive_mask(mask, hidden.dtype)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=m)
        return hidden


def holding(kv: tuple[torch.Tensor, ...]) -> DynamicCache:
    """A DynamicCache whose layers hold these keys and values (k0, v0, k1, v1, ...) as they are. Its `update`
    would store copies (it concatenates onto an empty tensor), and in the exported graph copying the
    cross-attention keys and values was half of every decoding step."""
    cache = DynamicCache()
    for i in range(0, len(kv), 2):
        layer = DynamicLayer()
        layer.lazy_initialization(kv[i], kv[i + 1])
        layer.keys, layer.values = kv[i], kv[i + 1]
        cache.layers.append(layer)
    return cache


class DecoderStep(nn.Module):
    """One new token through the decoder's embeddings, layers and prediction head, the caches in and out as
    tensors.

    Inputs: the new token (B, 1) and its position (1,), the encoder's padding mask (B, T), the vocabulary
    projection (V, H) and bias (V) (inputs, not weights, because the title shortlist picks its V rows per
    review; the token is a row of that projection, as the decoder's input embeddings are tied to it), then
    per layer the self-attention keys and values so far (B, heads, P, d), then per layer the cross-attention
    keys and values (B, heads, T, d). Outputs: the logits (B, 1, V) and per layer the self-attention keys and
    values including the new token. The HF layers run unchanged on a cache object built from the inputs; the
    embedding is BertEmbeddings' sum and norm, without its 250k-row table."""

    def __init__(self, decoder: nn.Module):
        super().__init__()
        emb = decoder.bert.embeddings
        self.position, self.token_type, self.norm = emb.position_embeddings, emb.token_type_embeddings, emb.LayerNorm
        self.layers = decoder.bert.encoder.layer
        self.transform = decoder.cls.predictions.transform

    def forward(self, ids: torch.Tensor, pos: torch.Tensor, enc_mask: torch.Tensor, head_w: torch.Tensor,
                head_b: torch.Tensor, *kv: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = len(self.layers)
        past, cross = kv[: 2 * n], kv[2 * n :]
        cache = EncoderDecoderCache(holding(past), holding(cross))
        for i in range(n):
            cache.is_updated[i] = True
        # BertEmbeddings: (word + token type 0) + position, then LayerNorm (dropout is off in eval)
        x = self.norm(nn.functional.embedding(ids, head_w) + self.token_type.weight[0] + self.position(pos))
        m = additive_mask(enc_mask, x.dtype)
        for layer in self.layers:  # encoder_hidden_states only switches cross-attention on: keys come from the cache
            x = layer(x, attention_mask=None, encoder_hidden_states=cross[0], encoder_attention_mask=m, cache=cache)
        # 2-D, so the projection exports as one Gemm reading head_w in place (a 3-D MatMul would first
        # materialise its transpose: 384 MB per step for the full vocabulary)
        out = [torch.nn.functional.linear(self.transform(x)[:, 0, :], head_w, head_b)[:, None, :]]
        for layer in cache.self_attention_cache.layers:
            out += [layer.keys, layer.values]
        return tuple(out)


def _digest(module: nn.Module, kind: str) -> str:
    import onnxruntime
    import transformers

    # the graph is the layers' code as well as their weights: the libraries' versions are part of the key
    versions = f"{GRAPH_VERSION}|{torch.__version__}|{transformers.__version__}|{onnxruntime.__version__}"
    h = hashlib.sha1(f"{kind}|{versions}".encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:20]


def _graph_dir() -> Path:
    from .base import cache_root

    d = cache_root() / "onnx"
    try:
        d.mkdir(parents=True, exist_ok=True)
        return d
    except OSError:  # a read-only cache: export into a private temporary folder instead
        return Path(tempfile.mkdtemp(prefix="crosslingual-onnx-"))


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            axes: dict[str, dict[int, str]]) -> None:
    import warnings

    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python bools: shapes here are all dynamic axes
        torch.onnx.export(module.eval(), args, str(tmp), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    tmp.replace(path)  # atomic: a second process never reads half a file


def ort_session(path: Path, threads: int, spin_during_calls: bool = True):
    """An ONNX Runtime CPU session as this project runs every graph (the encoder's, the seed decoders', the
    generator's output layer)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if spin_during_calls:
        # threads spin while a call runs (a third faster for the encoder) but stop when it returns: spinning on
        # would take the cores the two title decoders need next
        so.add_session_config_entry("session.force_spinning_stop", "1")
    else:  # never: llama.cpp's threads run the generator's layers right before and after each output-layer call
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # no memory arena: it keeps the largest batch's activations for the life of the process (hundreds of MB
    # after one 512-token batch), and a single review's tensors are too small for it to save any time
    so.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


KEEP_DAYS = 14  # cached graphs unused for this long are deleted (each retrained model leaves ~150 MB)


def _prune(folder: Path, keep: Path) -> None:
    cutoff = time.time() - KEEP_DAYS * 86400
    for old in folder.glob("*.onnx"):
        try:
            if old != keep and old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:  # another process got there first, or a read-only cache
            pass


def _load_or_export(path: Path, export, threads: int):
    """The session for the graph at `path`, exporting it first if it is not cached. A cached file that ONNX
    Runtime cannot read (a disk hiccup, a killed write from an older version) is exported again, once."""
    if path.exists():
        with contextlib.suppress(OSError):
            os.utime(path)  # its modification time says when it was last used: see _prune
    else:
        export(path)
        _prune(path.parent, path)
    try:
        return ort_session(path, threads)
    except Exception:  # noqa: BLE001 - onnxruntime raises its own exception types
        path.unlink(missing_ok=True)
        export(path)
        return ort_session(path, threads)


class OrtLayers:
    """`LayerStack(layers)` in ONNX Runtime; called like the torch stack: (hidden, mask) -> hidden."""

    def __init__(self, layers: nn.ModuleList, threads: int = 1):
        stack = LayerStack(layers).eval()
        hidden = layers[0].attention.self.query.in_features
        self.path = _graph_dir() / f"layers-{_digest(stack, 'layers')}.onnx"
        args = (torch.randn(2, 7, hidden), torch.ones(2, 7, dtype=torch.long))
        axes = {"hidden": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}, "out": {0: "b", 1: "t"}}
        self.session = _load_or_export(self.path, lambda p: _export(stack, args, p, ["hidden", "mask"], ["out"], axes),
                                       threads)

    def __call__(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feed = {"hidden": hidden.detach().contiguous().numpy(), "mask": mask.to(torch.long).numpy()}
        return torch.from_numpy(self.session.run(None, feed)[0])


class OrtDecoderStep:
    """`DecoderStep(decoder)` in ONNX Runtime, called by core/beam.beam_search."""

    def __init__(self, decoder: nn.Module, threads: int = 1):
        step = DecoderStep(decoder).eval()
        cfg = decoder.config
        self.n = cfg.num_hidden_layers
        self.heads, self.head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
        self.inputs = (["ids", "pos", "enc_mask", "head_w", "head_b"]
                       + [f"past_{k}{i}" for i in range(self.n) for k in "kv"]
                       + [f"cross_{k}{i}" for i in range(self.n) for k in "kv"])
        outputs = ["logits"] + [f"new_{k}{i}" for i in range(self.n) for k in "kv"]
        self.path = _graph_dir() / f"decoder-{_digest(step, 'decoder')}.onnx"
        B, T, V, H = 3, 7, 11, cfg.hidden_size
        args = (torch.randint(V, (B, 1)), torch.tensor([2]), torch.ones(B, T, dtype=torch.long), torch.randn(V, H),
                torch.randn(V), *[torch.randn(B, self.heads, 2, self.head_dim) for _ in range(2 * self.n)],
                *[torch.randn(B, self.heads, T, self.head_dim) for _ in range(2 * self.n)])
        axes = {"ids": {0: "b"}, "enc_mask": {0: "b", 1: "t"}, "head_w": {0: "v"}, "head_b": {0: "v"},
                "logits": {0: "b", 2: "v"}}
        axes.update({k: {0: "b", 2: "p"} for k in self.inputs if k.startswith("past")})
        axes.update({k: {0: "b", 2: "t"} for k in self.inputs if k.startswith("cross")})
        axes.update({k: {0: "b", 2: "p1"} for k in outputs[1:]})
        self.session = _load_or_export(self.path, lambda p: _export(step, args, p, self.inputs, outputs, axes),
                                       threads)

    def __call__(self, ids: torch.Tensor, pos: torch.Tensor, enc_mask: torch.Tensor,
                 head: tuple[torch.Tensor, torch.Tensor], past: list[torch.Tensor] | None,
                 cross: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`head`: the vocabulary projection's (weight, bias); `past` None on the first step.
        Returns the logits and the new keys/values."""
        if past is None:
            empty = np.zeros((ids.shape[0], self.heads, 0, self.head_dim), np.float32)
            past_np = [empty] * (2 * self.n)
        else:
            past_np = [t.contiguous().numpy() for t in past]
        arrays = [ids.numpy(), pos.numpy(), enc_mask.to(torch.long).numpy(),
                  *(t.detach().contiguous().numpy() for t in head), *past_np, *(t.contiguous().numpy() for t in cross)]
        out = self.session.run(None, dict(zip(self.inputs, arrays)))
        return torch.from_numpy(out[0]), [torch.from_numpy(o) for o in out[1:]]
