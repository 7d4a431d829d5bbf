"""Beam search as `generate(num_beams=k)` runs it, made of `transformers`' own beam-search pieces, over any engine.

Why not `generate`: neither title generator runs a `transformers` model when it decodes. The seed decoder's step is
an ONNX Runtime graph (core/titles/encoder_decoder_onnx.py) and the main generator's layers run by hand in PyTorch
or in llama.cpp (core/titles/generator.decode). For the seed decoder, with its step at ~2 ms, `generate` was most of
a title's time anyway: ~10 ms per call setting itself up (validating and copying its config, building processors
and criteria, preparing the cache) and ~2 ms per step around the model.

`search` is `GenerationMixin._beam_search` with those layers peeled off: each step calls the same methods
(`_get_top_k_continuations`, `_get_running_beams_for_next_iteration`, `_update_finished_beams`,
`_check_early_stop_heuristic`, `_beam_search_has_unfinished_sequences`), the same `NoRepeatNGramLogitsProcessor`
and the same stopping criteria, in the same order, with `generate`'s defaults for everything the settings leave
out (length penalty, early stopping). So a title is the same token for token: tests/test_beam.py and
tests/test_generator.py check it against `generate`. Those methods are `transformers`' internals (requirements.txt
pins the version): where one is missing, `usable()` says so and the seed decoder decodes with `generate` instead.
"""
from __future__ import annotations

from typing import Callable, Generator

import torch
from torch import nn
from transformers import GenerationConfig, GenerationMixin
from transformers.generation import (EosTokenCriteria, LogitsProcessorList, MaxLengthCriteria,
                                     NoRepeatNGramLogitsProcessor, StoppingCriteriaList)

PIECES = ("_get_top_k_continuations", "_get_running_beams_for_next_iteration", "_update_finished_beams",
          "_check_early_stop_heuristic", "_beam_search_has_unfinished_sequences")


def usable(decoder: nn.Module) -> bool:
    """Whether this `transformers` still has the beam-search pieces the loop calls."""
    return all(callable(getattr(decoder, p, None)) for p in PIECES) and hasattr(
        GenerationConfig, "_get_default_generation_params")


def _setting(decoder: nn.Module, name: str):
    """What `generate` would use: the decoder's generation config, else `generate`'s global default."""
    value = getattr(decoder.generation_config, name, None)
    return GenerationConfig._get_default_generation_params()[name] if value is None else value


def pieces() -> GenerationMixin:
    """Where the beam-search methods live for an engine that has no `transformers` model (llama.cpp): they
    use no model state, only `GenerationMixin`'s static beam helpers."""
    return GenerationMixin()


def defaults(decoder: nn.Module | None) -> tuple[float, bool]:
    """(length_penalty, early_stopping) as `generate` would use them for `decoder` (None: the global defaults)."""
    if decoder is None:
        d = GenerationConfig._get_default_generation_params()
        return d["length_penalty"], d["early_stopping"]
    return _setting(decoder, "length_penalty"), _setting(decoder, "early_stopping")


@torch.inference_mode()
def search(gen: GenerationMixin, step: Callable[[torch.Tensor, int], torch.Tensor],
           reorder: Callable[[torch.Tensor], None], prompt: torch.Tensor, k: int, max_new: int, eos: list[int],
           length_penalty: float, early_stopping: bool | str | None = None, no_repeat_ngram_size: int = 0,
           fill: int | None = None, first: torch.Tensor | None = None) -> torch.Tensor:
    """`search_steps` with `step` answering each step at once (one review, or a batch of equal-length prompts)."""
    return drive(search_steps(gen, reorder, prompt, k, max_new, eos, length_penalty, early_stopping,
                              no_repeat_ngram_size, fill, first), step)


def drive(steps: Generator, step: Callable[..., torch.Tensor]):
    """Run a decoding generator to its end, answering each step it asks for with `step(*asked)`."""
    try:
        asked = next(steps)
        while True:
            asked = steps.send(step(*asked))
    except StopIteration as done:
        return done.value


@torch.inference_mode()
def search_steps(gen: GenerationMixin, reorder: Callable[[torch.Tensor], None], prompt: torch.Tensor, k: int,
                 max_new: int, eos: list[int], length_penalty: float, early_stopping: bool | str | None = None,
                 no_repeat_ngram_size: int = 0, fill: int | None = None,
                 first: torch.Tensor | None = None) -> Generator[tuple[torch.Tensor, int], torch.Tensor, torch.Tensor]:
    """Best sequence per row of `prompt` (B, P), prompt first, as `generate(num_beams=k)` returns it.

    A generator, so an engine can run many reviews' searches side by side (core/titles/decode_room.py): it yields
    `(last_ids (B*k, 1), position)` and is sent every beam's next-token logits (B*k, V), the engine having extended
    its cache by one position; `reorder(order)` makes beam j's cache a copy of beam order[j] (flattened over
    B*k), as `generate` reorders its cache after every step. `gen` supplies `transformers`' beam-search
    pieces. Stopping at any of `eos` (generate's list form: it keeps (1 + len(eos)) * k continuations).
    `first`: the first step's logits (B*k, V) where the engine already has them from its prefill; `early_stopping`
    None: `generate`'s default."""
    if early_stopping is None:
        early_stopping = defaults(None)[1]
    B, P = prompt.shape
    max_length = P + max_new
    processors = LogitsProcessorList([NoRepeatNGramLogitsProcessor(no_repeat_ngram_size)]
                                     if no_repeat_ngram_size else [])
    criteria = StoppingCriteriaList([MaxLengthCriteria(max_length), EosTokenCriteria(eos)])
    keep = max(2, 1 + len(eos)) * k  # generate's "beams to keep"
    top_beams = torch.arange(keep) < k
    running = torch.full((B, k, max_length), eos[0] if fill is None else fill, dtype=torch.long)
    running[:, :, :P] = prompt[:, None, :]
    sequences = running.clone()
    running_scores = torch.zeros(B, k)
    running_scores[:, 1:] = -1e9  # only the first beam starts: the others would repeat it
    scores = torch.full((B, k), -1e9)
    finished = torch.zeros(B, k, dtype=torch.bool)
    may_improve = torch.ones(B, 1, dtype=torch.bool)
    running_beams = torch.full((B, k, max_length - P), -1, dtype=torch.int32)
    beams = running_beams.clone()
    cur_len = P
    while True:
        flat = running[:, :, :cur_len].reshape(B * k, cur_len)
        logits = first if cur_len == P and first is not None else (yield flat[:, -1:], cur_len - 1)
        log_probs = processors(flat, nn.functional.log_softmax(logits.float(), dim=-1))
        log_probs = (log_probs.view(B, k, -1) + running_scores[:, :, None]).view(B, -1)
        topk_scores, topk_seqs, topk_beams = gen._get_top_k_continuations(
            log_probs, running, running_beams, cur_len, P, False, keep, k, B)
        hits = criteria(topk_seqs[:, :, : cur_len + 1].reshape(B * keep, -1), None).view(B, keep)
        running, running_scores, running_beams = gen._get_running_beams_for_next_iteration(
            topk_scores, topk_seqs, topk_beams, hits, k)
        sequences, scores, beams, finished = gen._update_finished_beams(
            sequences, topk_seqs, scores, topk_scores, beams, topk_beams, may_improve, finished, hits, top_beams,
            k, cur_len, P, length_penalty, early_stopping)
        reorder(running_beams[..., cur_len - P].reshape(-1).long())  # the cache follows its beams
        cur_len += 1
        may_improve = gen._check_early_stop_heuristic(may_improve, running_scores, scores, finished, cur_len,
                                                      max_length, P, early_stopping, length_penalty)
        if not gen._beam_search_has_unfinished_sequences(may_improve, finished, hits, early_stopping):
            break
    best, best_beams = sequences[:, 0], beams[:, 0]  # finished beams are kept best first
    return best[:, : P + int((best_beams + 1).bool().sum(dim=1).max())]
