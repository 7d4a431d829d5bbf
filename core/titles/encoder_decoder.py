"""Title decoding, with an optional vocabulary shortlist.

The decoder's output layer is the base's 250,037-row embedding matrix: scoring every
row for every beam at every step is most of a comparison's time on a CPU. A title
decoder writes the tokens it was trained to write (its training titles' vocabulary,
saved with each model as ``title_vocab.json``) or copies tokens from the input, so
decoding over that shortlist (plus the input's tokens) is the classic NMT "lexical
shortlist": the same model and the same beam search, over a few thousand rows instead
of a quarter million. ``python -m bench`` reports how often the shortlist and full
decoding give identical titles.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache

from .beam import Step, beam_search

VOCAB_FILE = "title_vocab.json"


def read_title_vocab(model_dir: Path) -> torch.Tensor | None:
    p = Path(model_dir) / VOCAB_FILE
    if not p.exists():
        return None
    return torch.tensor(sorted(set(json.loads(p.read_text()))), dtype=torch.long)


def write_title_vocab(model_dir: Path, tokenizer, titles: list[str]) -> None:
    """Token ids (a bag of subword ids, no text) the decoder was trained to produce."""
    ids = sorted({i for t in titles if t for i in tokenizer(t)["input_ids"]})
    (Path(model_dir) / VOCAB_FILE).write_text(json.dumps(ids))


@contextlib.contextmanager
def shortlisted(decoder: nn.Module, ids: torch.Tensor):
    """Temporarily make the decoder's input and output vocabulary the rows `ids` of the shared embeddings.
    Token ids inside the block are positions in `ids`. The caller holds the engine's lock."""
    emb = decoder.bert.embeddings
    pred = decoder.cls.predictions
    old_emb, old_dec = emb.word_embeddings, pred.decoder
    W = old_emb.weight[ids]
    small = nn.Embedding(len(ids), W.shape[1], _weight=W, _freeze=True)
    head = nn.utils.skip_init(nn.Linear, W.shape[1], len(ids), bias=True)  # both parameters are set just below
    head.weight = nn.Parameter(W, requires_grad=False)
    head.bias = nn.Parameter(old_dec.bias[ids], requires_grad=False)
    emb.word_embeddings, pred.decoder = small, head
    vocab = decoder.config.vocab_size
    decoder.config.vocab_size = len(ids)
    try:
        yield
    finally:
        emb.word_embeddings, pred.decoder = old_emb, old_dec
        decoder.config.vocab_size = vocab


class SameForAllBeams(DynamicCache):
    """The cross-attention cache as `decoder_cache` fills it: every beam of a review holds the same keys and
    values, and beam search only reorders beams within a review, so reordering is a no-op. Skipping it saves
    copying four 128-token tensors at every step."""

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        return None


def cross_kv(decoder: nn.Module, top: torch.Tensor, beams: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's cross-attention keys and values for the encoder states `top`, computed once per review and
    repeated for its beams."""
    out = []
    for layer in decoder.bert.encoder.layer:
        att = layer.crossattention.self
        shape = (*top.shape[:-1], -1, att.attention_head_size)
        out.append(tuple(proj(top).view(shape).transpose(1, 2).repeat_interleave(beams, dim=0)
                         for proj in (att.key, att.value)))
    return out


def decoder_cache(decoder: nn.Module, top: torch.Tensor | None = None, beams: int = 1):
    """A self- plus cross-attention KV cache. It must be passed explicitly: for a decoder-only class such as
    BertLMHeadModel, `generate` would create a plain DynamicCache, which Bert's cross-attention rejects.

    With `top`, the cross-attention keys and values are filled in here, once per review, and repeated for the
    beams: `generate` would otherwise compute them from its beam-expanded copy of the encoder states, the same
    128-token projection three times over."""
    if top is None:
        return EncoderDecoderCache(DynamicCache(config=decoder.config), DynamicCache(config=decoder.config))
    cache = EncoderDecoderCache(DynamicCache(config=decoder.config), SameForAllBeams(config=decoder.config))
    for i, (k, v) in enumerate(cross_kv(decoder, top, beams)):
        cache.cross_attention_cache.update(k, v, i)
        cache.is_updated[i] = True
    return cache


def shortlist(vocab: torch.Tensor, tokenizer, mask: torch.Tensor, input_ids: torch.Tensor | None) -> torch.Tensor:
    """Sorted token ids a title may use: the model's title vocabulary, the special tokens, the input's tokens."""
    parts = [vocab, torch.tensor([tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id])]
    if input_ids is not None:
        parts.append(input_ids[mask.bool()])
    return torch.unique(torch.cat(parts))


def generate_ids(decoder: nn.Module, tokenizer, top: torch.Tensor, mask: torch.Tensor, settings,
                 input_ids: torch.Tensor | None = None, vocab: torch.Tensor | None = None,
                 step: Step | None = None) -> torch.Tensor:
    """Beam-search title token ids (base vocabulary) from the top encoder states; over the shortlist when
    `vocab` is given. With `step` (core/ort_backend.OrtDecoderStep) core/titles/beam.py runs the search, else
    `generate` with the decoder's PyTorch modules: the same titles either way."""
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = None if vocab is None else shortlist(vocab, tokenizer, mask, input_ids)
    if ids is not None:  # token ids become positions in the shortlist (sorted, special tokens included)
        bos, eos, pad = torch.searchsorted(ids, torch.tensor([bos, eos, pad])).tolist()
    if step is not None:
        proj = decoder.cls.predictions.decoder
        head = (proj.weight, proj.bias) if ids is None else (proj.weight[ids], proj.bias[ids])
        cross = [t for kv in cross_kv(decoder, top, settings.num_beams) for t in kv]
        out = beam_search(decoder, step, head, cross, mask, bos, eos, pad, settings)
    else:
        start = torch.full((top.shape[0], 1), bos, dtype=torch.long)
        kw = dict(encoder_hidden_states=top, encoder_attention_mask=mask, max_new_tokens=settings.max_title_tokens,
                  num_beams=settings.num_beams, no_repeat_ngram_size=settings.no_repeat_ngram_size,
                  do_sample=False, use_cache=True, cache=decoder_cache(decoder, top, settings.num_beams),
                  eos_token_id=eos, pad_token_id=pad)
        with shortlisted(decoder, ids) if ids is not None else contextlib.nullcontext():
            out = decoder.generate(input_ids=start, **kw)
    return out if ids is None else ids[out]


def generate_titles(decoder: nn.Module, tokenizer, top: torch.Tensor, mask: torch.Tensor, settings,
                    input_ids: torch.Tensor | None = None, vocab: torch.Tensor | None = None,
                    step: Step | None = None) -> list[str]:
    out = generate_ids(decoder, tokenizer, top, mask, settings, input_ids, vocab, step)
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
