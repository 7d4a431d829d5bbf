"""The seed decoder's decoding step in ONNX Runtime: what `encoder_decoder.beam_search` calls at every step.

Why: a seed title is ~9 beam-search steps over 3-row matrices, and PyTorch spends longer dispatching each through
`transformers`' modules than multiplying; ONNX Runtime runs one step as one graph (core/ort_backend.py exports and
caches it). The step is exported from the loaded decoder itself, in float32, so titles equal PyTorch's
(tests/test_ort_backend.py, tests/test_beam.py). The Engine decodes the two models' titles side by side, one core
each (`encoder_decoder.SeedTitles`).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache
from transformers.cache_utils import DynamicLayer

from ..ort_backend import additive_mask, exported_session


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




class OrtDecoderStep:
    """`DecoderStep(decoder)` in ONNX Runtime, called by `encoder_decoder.beam_search`."""

    def __init__(self, decoder: nn.Module, threads: int = 1):
        step = DecoderStep(decoder).eval()
        cfg = decoder.config
        self.n = cfg.num_hidden_layers
        self.heads, self.head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
        self.inputs = (["ids", "pos", "enc_mask", "head_w", "head_b"]
                       + [f"past_{k}{i}" for i in range(self.n) for k in "kv"]
                       + [f"cross_{k}{i}" for i in range(self.n) for k in "kv"])
        outputs = ["logits"] + [f"new_{k}{i}" for i in range(self.n) for k in "kv"]
        B, T, V, H = 3, 7, 11, cfg.hidden_size
        args = (torch.randint(V, (B, 1)), torch.tensor([2]), torch.ones(B, T, dtype=torch.long), torch.randn(V, H),
                torch.randn(V), *[torch.randn(B, self.heads, 2, self.head_dim) for _ in range(2 * self.n)],
                *[torch.randn(B, self.heads, T, self.head_dim) for _ in range(2 * self.n)])
        axes = {"ids": {0: "b"}, "enc_mask": {0: "b", 1: "t"}, "head_w": {0: "v"}, "head_b": {0: "v"},
                "logits": {0: "b", 2: "v"}}
        axes.update({k: {0: "b", 2: "p"} for k in self.inputs if k.startswith("past")})
        axes.update({k: {0: "b", 2: "t"} for k in self.inputs if k.startswith("cross")})
        axes.update({k: {0: "b", 2: "p1"} for k in outputs[1:]})
        self.path, self.session = exported_session(step, "decoder", args, self.inputs, outputs, axes, threads)

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
