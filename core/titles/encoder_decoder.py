"""The seed's encoder-decoder titles, all of them: the decoder, its vocabulary shortlist, its caches, its beam search
and `SeedTitles`, what the Engine calls for one review's titles.

The decoder is a small BERT with cross-attention warm-started from the multilingual encoder's last layers
("bert2bert"), its input and output embeddings tied to the encoder's frozen word embeddings: a model folder ships
only its layers. Kept beside the main titles (core/titles/generator.py) so a class sees why this experiment, trained
on a few hundred titles, writes 1-2 words.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache

from ..file_rows import table_rows
from . import beam

VOCAB_FILE = "title_vocab.json"
# (ids (B,1), position (1,), encoder mask, head (W, b), past keys/values or None, cross keys/values)
# -> (logits (B,1,V), new keys/values): encoder_decoder_onnx.OrtDecoderStep
Step = Callable[..., tuple[torch.Tensor, list[torch.Tensor]]]


def build_decoder(bert: nn.Module, n_layers: int) -> nn.Module:
    """A BertLMHeadModel decoder warm-started from the base's last layers, embeddings tied to the base."""
    from transformers import BertConfig, BertLMHeadModel

    cfg = bert.config.to_dict()
    cfg.update(num_hidden_layers=n_layers, is_decoder=True, add_cross_attention=True, tie_word_embeddings=True,
               architectures=["BertLMHeadModel"])
    for k in ("_name_or_path", "transformers_version", "model_type", "dtype", "torch_dtype"):
        cfg.pop(k, None)
    config = BertConfig(**cfg)
    dec = BertLMHeadModel(config)
    src = bert.encoder.layer[-n_layers:]
    with torch.no_grad():
        dec.bert.embeddings.position_embeddings.weight.copy_(bert.embeddings.position_embeddings.weight)
        dec.bert.embeddings.token_type_embeddings.weight.copy_(bert.embeddings.token_type_embeddings.weight)
        dec.bert.embeddings.LayerNorm.load_state_dict(bert.embeddings.LayerNorm.state_dict())
        for d_layer, s_layer in zip(dec.bert.encoder.layer, src):
            sd = {k.replace(".base_layer", ""): v for k, v in s_layer.state_dict().items() if "lora_" not in k}
            d_layer.load_state_dict(sd, strict=False)
            # cross-attention starts as a copy of self-attention (a better start than random for tiny data)
            d_layer.crossattention.load_state_dict(d_layer.attention.state_dict())
    tie_decoder(dec, bert)
    return dec


def tie_decoder(dec: nn.Module, bert: nn.Module) -> None:
    """Share the base's (frozen) word embeddings as the decoder's input and output embeddings."""
    dec.bert.embeddings.word_embeddings = bert.embeddings.word_embeddings
    dec.cls.predictions.decoder.weight = bert.embeddings.word_embeddings.weight




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
    ids = ids.to(old_emb.weight.device)
    W = table_rows(old_emb, ids)
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
        parts.append(input_ids[mask.bool()].cpu())
    return torch.unique(torch.cat(parts))


def beam_search(decoder: nn.Module, step: Step, head: tuple[torch.Tensor, torch.Tensor], cross: list[torch.Tensor],
                enc_mask: torch.Tensor, start: int, eos: int, pad: int, settings) -> torch.Tensor:
    """Title token ids (B, length), start token first, as `decoder.generate` returns them.

    `head`: the vocabulary projection's rows (the decoder's input embeddings too: they are tied), token ids
    are positions in it; `cross`: each layer's cross-attention keys and values, already repeated per beam
    (`cross_kv`); `enc_mask`: the encoder's padding mask, one row per review."""
    k = settings.num_beams
    B = enc_mask.shape[0]
    enc_mask = enc_mask.repeat_interleave(k, dim=0)
    past: list = [None]

    def run(last: torch.Tensor, position: int) -> torch.Tensor:
        logits, past[0] = step(last, torch.tensor([position]), enc_mask, head, past[0], cross)
        return logits[:, -1]

    def reorder(order: torch.Tensor) -> None:
        past[0] = [t.index_select(0, order) for t in past[0]]

    length_penalty, early_stopping = beam.defaults(decoder)
    return beam.search(decoder, run, reorder, torch.full((B, 1), start, dtype=torch.long), k, settings.max_title_tokens,
                  [eos], length_penalty, early_stopping, settings.no_repeat_ngram_size, fill=pad)


def generate_ids(decoder: nn.Module, tokenizer, top: torch.Tensor, mask: torch.Tensor, settings,
                 input_ids: torch.Tensor | None = None, vocab: torch.Tensor | None = None,
                 step: Step | None = None) -> torch.Tensor:
    """Beam-search title token ids (base vocabulary) from the top encoder states; over the shortlist when
    `vocab` is given. With `step` (encoder_decoder_onnx.OrtDecoderStep) `beam_search` runs the search, else
    `generate` with the decoder's PyTorch modules: the same titles either way."""
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = None if vocab is None else shortlist(vocab, tokenizer, mask, input_ids)
    if ids is not None:  # token ids become positions in the shortlist (sorted, special tokens included)
        bos, eos, pad = torch.searchsorted(ids, torch.tensor([bos, eos, pad])).tolist()
    if step is not None:
        proj, emb = decoder.cls.predictions.decoder, decoder.bert.embeddings.word_embeddings
        if ids is None:
            head = (proj.weight, proj.bias)
        else:  # the projection is tied to the input embeddings: their rows, read as the embeddings read them
            head = (table_rows(emb, ids) if proj.weight is emb.weight else proj.weight[ids], proj.bias[ids])
        cross = [t for kv in cross_kv(decoder, top, settings.num_beams) for t in kv]
        out = beam_search(decoder, step, head, cross, mask, bos, eos, pad, settings)
    else:
        start = torch.full((top.shape[0], 1), bos, dtype=torch.long, device=top.device)
        kw = dict(encoder_hidden_states=top, encoder_attention_mask=mask, max_new_tokens=settings.max_title_tokens,
                  num_beams=settings.num_beams, no_repeat_ngram_size=settings.no_repeat_ngram_size,
                  do_sample=False, use_cache=True, cache=decoder_cache(decoder, top, settings.num_beams),
                  eos_token_id=eos, pad_token_id=pad)
        with shortlisted(decoder, ids) if ids is not None else contextlib.nullcontext():
            out = decoder.generate(input_ids=start, **kw)
    return out if ids is None else ids.to(out.device)[out]


def generate_titles(decoder: nn.Module, tokenizer, top: torch.Tensor, mask: torch.Tensor, settings,
                    input_ids: torch.Tensor | None = None, vocab: torch.Tensor | None = None,
                    step: Step | None = None) -> list[str]:
    out = generate_ids(decoder, tokenizer, top, mask, settings, input_ids, vocab, step)
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


class SeedTitles:
    """Every model's seed decoder with what decoding it needs: its settings, its title vocabulary (the shortlist)
    and, with ONNX Runtime, its step. The Engine hands it one review's top encoder states at a time, so a review's
    titles never depend on what else is in its batch (the shortlist is that review's own tokens)."""

    def __init__(self, decoders: dict[str, nn.Module], settings: dict, tokenizer, dirs: dict[str, Path],
                 shortlist: bool = True):
        """`decoders`: the models that have one; `shortlist` False decodes over the full vocabulary (titles over
        each model's title vocabulary plus the input's tokens are about 7x faster, and the report measured the
        change as within a point: README, "Speed")."""
        self.decoders, self.settings, self.tokenizer = decoders, settings, tokenizer
        self.vocab = {n: read_title_vocab(d) if shortlist else None for n, d in dirs.items()}
        self.steps: dict[str, Step] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.decoders)

    def onnx_steps(self, threads: int = 1) -> dict[str, Step]:
        """Each decoder's step in ONNX Runtime (exported on first use), where `beam_search` can drive it; raises
        whatever the export raises."""
        from .encoder_decoder_onnx import OrtDecoderStep

        return {n: OrtDecoderStep(d, threads=threads) for n, d in self.decoders.items() if beam.usable(d)}

    def use_steps(self, steps: dict[str, Step]) -> None:
        """Decode with these steps; with two or more, the models' titles are decoded side by side, a thread each."""
        self.steps = steps
        if len(steps) > 1:
            self._pool = ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="engine-model")

    @contextlib.contextmanager
    def pytorch_only(self):
        """Decode with `generate` and the decoders' PyTorch modules inside the block."""
        saved = self.steps, self._pool
        self.steps, self._pool = {}, None
        try:
            yield self
        finally:
            self.steps, self._pool = saved

    @contextlib.contextmanager
    def full_vocabulary(self):
        """Decode over all 250k rows inside the block (what the bench compares the shortlist against)."""
        saved = self.vocab
        self.vocab = {n: None for n in saved}
        try:
            yield self
        finally:
            self.vocab = saved

    def title(self, name: str, top: torch.Tensor, mask: torch.Tensor, input_ids: torch.Tensor) -> str:
        """One review's title from one model, from its top encoder states (1, L, H) and their mask and ids."""
        return generate_titles(self.decoders[name], self.tokenizer, top, mask, self.settings[name], input_ids,
                               self.vocab[name], self.steps.get(name))[0]

    def review(self, tops: dict[str, torch.Tensor], mask: torch.Tensor, input_ids: torch.Tensor,
               fail: dict[str, Exception] | None = None) -> dict[str, tuple[str, str]]:
        """One review's title from each model in `tops`: ("encoder_decoder_title", text), or
        ("encoder_decoder_title_error", why) where one failed (`fail`: an error to raise instead, per model)."""
        fail = fail or {}
        jobs = [(n, top, mask, input_ids, fail.get(n)) for n, top in tops.items()]
        # side by side only over the shortlists: full-vocabulary decoding holds a (beams x 250k) score
        # matrix per review, and two at once can double the peak memory
        if self._pool is not None and len(jobs) > 1 and all(self.vocab[n] is not None for n in tops):
            done = list(self._pool.map(lambda job: self._checked(*job), jobs))
        else:
            done = [self._checked(*job) for job in jobs]
        return dict(zip(tops, done))

    @torch.inference_mode()  # a pool thread does not inherit the caller's inference mode
    def _checked(self, name: str, top: torch.Tensor, mask: torch.Tensor, input_ids: torch.Tensor,
                 fail: Exception | None) -> tuple[str, str]:
        """One model's generation failing must not blank the other column."""
        try:
            if fail is not None:
                raise fail
            return "encoder_decoder_title", self.title(name, top, mask, input_ids)
        except Exception as exc:  # noqa: BLE001
            return "encoder_decoder_title_error", f"title generation failed: {exc}"
