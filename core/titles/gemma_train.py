"""One training stage of a title adapter on Gemma: called by core/train.py for each model.

The loss is the title's tokens only, given the prompt. The shared bottom layers have no adapter, so
their output for every example is computed once (like the encoder's trunk features) and only the top
layers, the final norm and the output rows at the title's positions run in each step: the expensive
262k-row output layer is applied to a dozen positions per example, not to the whole prompt.

`accelerate` runs it: one CPU process by default, CUDA when there is one, several processes with data
parallelism under `accelerate launch` / `torchrun` (each process caches only its own share).
"""
from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .generator import ADAPTER_DIR, SETTINGS_FILE, GeneratorSettings, prompt_parts, stop_ids, title_ids
from .torch_engine import Stack


LM_POSITIONS = 16


@dataclass
class Example:
    hidden: torch.Tensor  # the shared layers' output for prompt + title, (L, H)
    labels: torch.Tensor  # the title's ids at their positions, -100 elsewhere, (L,)
    start: int = 0  # where the adapter starts acting: the prompt's tail for an activated adapter, else 0


ALL_POSITIONS = 1 << 30  # an aLoRA offset longer than any row: the adapter acts on every position of the call


def adapter_from(peft_model, offsets: list[int] | None):
    """peft's Activated-LoRA hooks for one forward call: row i's adapter acts on its last offsets[i] positions
    (None: no hooks, for an adapter that is not activated and acts everywhere). An activated adapter called
    without them acts nowhere (the plain base)."""
    if offsets is None:
        return contextlib.nullcontext()
    return peft_model.base_model._enable_peft_forward_hooks(alora_offsets=offsets)


class TopLoss(nn.Module):
    """The part that trains: the top layers (with the adapter), the final norm and the output rows."""

    def __init__(self, stack: Stack, peft_model, activated: bool):
        super().__init__()
        self.top = stack.top()
        self.norm = stack.norm
        self.stack = stack
        self.peft_model = [peft_model]  # not a submodule: its trainable weights are already the top layers'
        self.activated = activated

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        # right padding needs no mask in a causal model: real tokens never look at the pads after them
        offsets = [hidden.shape[1] - int(s) for s in starts] if self.activated else None
        with adapter_from(self.peft_model[0], offsets):
            h = self.stack.run(self.top, hidden, 0)
        pos = (labels[:, 1:] != -100).nonzero(as_tuple=True)
        logits = self.norm(h[:, :-1][pos]) @ self.stack.out_weight.T
        return nn.functional.cross_entropy(logits, labels[:, 1:][pos])


def language_of(review) -> str | None:
    return getattr(review, "language", None)


@torch.no_grad()
def cache_examples(stack: Stack, tokenizer, reviews, s: GeneratorSettings, lm_only: list | None = None) -> list[Example]:
    """Shared-layer features for (review, title) pairs; `lm_only` bodies (no title) train the plain language
    model objective on the body itself (issue 15's unlabelled target-language text), scored at LM_POSITIONS
    sampled positions per body (the whole body is still the context): the 262k-row output layer at every one of
    ~190 positions would make one body cost as much as twenty titles."""
    from tqdm.auto import tqdm

    rng = random.Random(1234)
    out = []
    items = [(r, False) for r in reviews] + [(r, True) for r in (lm_only or [])]
    for r, plain in tqdm(items, desc="generator features", leave=False):
        if plain:
            ids = [tokenizer.bos_token_id] + tokenizer(" " + r.body, add_special_tokens=False)["input_ids"][
                : s.max_review_tokens] + [tokenizer.eos_token_id]
            keep = set(rng.sample(range(1, len(ids)), min(LM_POSITIONS, len(ids) - 1)))
            labels = [-100] + [t if i in keep else -100 for i, t in enumerate(ids[1:], 1)]
            start = 0  # the adapter acts on the whole body: the remedy is that it learns the German text itself
        else:
            review, tail = prompt_parts(tokenizer, r.body, s, language_of(r), r.stars)
            t = title_ids(tokenizer, r.title, s)
            ids, labels = review + tail + t, [-100] * (len(review) + len(tail)) + t
            start = len(review) if s.activated else 0
        x = torch.tensor([ids], device=stack.device)
        h = stack.run(stack.shared(), stack.embed(x), 0)
        out.append(Example(hidden=h[0].cpu(), labels=torch.tensor(labels), start=start))
    return out


def collate(batch: list[Example]) -> dict:
    n = max(e.hidden.shape[0] for e in batch)
    H = batch[0].hidden.shape[1]
    hidden = torch.zeros(len(batch), n, H)
    labels = torch.full((len(batch), n), -100, dtype=torch.long)
    for j, e in enumerate(batch):
        hidden[j, : e.hidden.shape[0]] = e.hidden
        labels[j, : e.labels.shape[0]] = e.labels
    return {"hidden": hidden, "labels": labels, "starts": torch.tensor([e.start for e in batch])}


def add_adapter(lm, s: GeneratorSettings, tokenizer, start_from: Path | None = None):
    """The causal LM with a trainable LoRA adapter on the top layers: new, or continued from a saved one."""
    from peft import LoraConfig, PeftModel, get_peft_model

    for p in lm.parameters():
        p.requires_grad_(False)
    if start_from is not None:
        return PeftModel.from_pretrained(lm, str(start_from / ADAPTER_DIR), is_trainable=True)
    n = lm.config.num_hidden_layers
    # an activated adapter (aLoRA) names its invocation, the prompt's tail: peft then applies it from there on
    # when a user runs it with `generate`, as this recipe trains it and the engines run it
    invocation = tokenizer(s.prompt_tail, add_special_tokens=False)["input_ids"] if s.activated else None
    cfg = LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
                     target_modules=list(s.lora_targets), layers_to_transform=list(range(s.shared_layers, n)),
                     task_type="CAUSAL_LM", alora_invocation_tokens=invocation)
    return get_peft_model(lm, cfg)


def train_stage(peft_model, tokenizer, s: GeneratorSettings, reviews, epochs: float, lr: float, batch_size: int,
                seed: int, lm_only: list | None = None, on_step=None, accelerator=None) -> dict:
    """Train the active adapter on `reviews` (each with a title); returns {wall_s, steps, loss}. `on_step(step,
    total)` is called every step (the forgetting curve's dev scoring hooks in there)."""
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
    random.seed(seed)
    torch.manual_seed(seed)
    stack = Stack(peft_model.base_model.model, s.shared_layers)
    # each process caches features only for its share of the data
    mine = reviews[acc.process_index::acc.num_processes]
    plain = (lm_only or [])[acc.process_index::acc.num_processes]
    examples = cache_examples(stack, tokenizer, mine, s, plain)
    model = TopLoss(stack, peft_model, s.activated)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    per_rank = max(1, batch_size // acc.num_processes)
    # the same number of steps on every process (from the whole data set), or data parallelism would hang
    n_all = len(reviews) + len(lm_only or [])  # an epoch covers the titled and the unlabelled examples
    steps_per_epoch = max(1, math.ceil(n_all / (per_rank * acc.num_processes)))
    total = max(1, int(steps_per_epoch * epochs))
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min((i + 1) / warm, max(0.0, (total - i) / max(1, total - warm))))
    model, opt = acc.prepare(model, opt)
    model.train()
    t0 = time.time()
    losses = []
    order: list[int] = []
    bar = tqdm(range(total), desc=f"title adapter ({len(reviews)} titled, {len(lm_only or [])} unlabelled)",
               disable=not acc.is_main_process)
    for step in bar:
        if len(order) < per_rank:
            perm = list(range(len(examples)))
            random.shuffle(perm)
            order += perm
        batch = collate([examples[i] for i in order[:per_rank]])
        order = order[per_rank:]
        loss = model(batch["hidden"].to(acc.device), batch["labels"].to(acc.device), batch["starts"])
        acc.backward(loss)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(float(loss))
        bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")
        if on_step is not None:
            model.eval()
            on_step(step + 1, total)
            model.train()
    model.eval()
    return {"wall_s": round(time.time() - t0, 1), "steps": total, "loss_first": round(losses[0], 4),
            "loss_last10": round(sum(losses[-10:]) / len(losses[-10:]), 4), "examples": len(reviews),
            "lm_only_examples": len(lm_only or []), "processes": acc.num_processes}


@torch.no_grad()
def dev_titles(peft_model, tokenizer, s: GeneratorSettings, reviews, lang: str, keep: int = 5,
               titles: list[str] | None = None) -> dict:
    """Titles for dev reviews from the adapter as it is now (float32, unmerged): chrF, ROUGE-L, distinct share,
    share in the input's language and in English, written in it vs copied (as the report scores them:
    core/titles/scoring.py). What the settings in the model card were chosen by. `titles`, a list, receives the
    titles themselves (the German-titles curve judges their sentiment afterwards)."""
    from .. import metrics as M
    from ..settings import current
    from . import scoring
    from .torch_engine import Head, hand_titles, quantized

    was = peft_model.training
    peft_model.eval()
    stack = Stack(peft_model.base_model.model, s.shared_layers)
    on_cpu = stack.device.type == "cpu"
    # the output layer as the app runs it
    head = quantized(Head(stack)) if current().generator_int8 and on_cpu else Head(stack)
    hyps = []
    stops = stop_ids(tokenizer)
    hooks = contextlib.ExitStack()

    def activate(rows: int) -> None:  # one adapter, peft's: an activated one acts only inside its hooks
        hooks.close()
        if rows and s.activated:
            hooks.enter_context(adapter_from(peft_model, [ALL_POSITIONS] * rows))
    try:
        for r in reviews:  # the gold stars where the prompt holds them (the app gives the rating head's)
            review, tail = prompt_parts(tokenizer, r.body, s, language_of(r), r.stars)
            start = len(review) if s.activated else 0
            got = hand_titles(stack, review + tail, 1, s, head, stops, activate, start)[0]
            hyps.append(tokenizer.decode(got, skip_special_tokens=True).strip())
    finally:
        hooks.close()
    peft_model.train(was)
    guesses = scoring.title_languages(hyps, lang)
    shares = scoring.language_shares(guesses, lang, ("in_input_language", "in_english"))
    copies = scoring.copy_measures(hyps, [r.body for r in reviews], guesses, lang)
    out = M.title_scores([r.title for r in reviews], hyps)
    out.update(distinct=scoring.distinct(hyps)["rate"], most_repeated=scoring.most_repeated(hyps)["count"],
               **{k: v["rate"] for k, v in shares.items()},
               **{k: copies[k]["rate"] for k in ("written_in_input_language", "copied_from_input")},
               examples=[{"reference": r.title, "generated": h} for r, h in list(zip(reviews, hyps))[:keep]])
    if titles is not None:
        titles.extend(hyps)
    return out


def save_adapter(peft_model, out: Path, s: GeneratorSettings, extra: dict | None = None) -> None:
    """The adapter apart from the base (peft's save_pretrained, half precision), the base named in its config."""
    import json
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "_peft_title"
    peft_model.save_pretrained(str(tmp))
    dst = out / ADAPTER_DIR
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    from safetensors.torch import load_file, save_file

    f = dst / "adapter_model.safetensors"
    save_file({k: v.to(torch.float16).contiguous() for k, v in load_file(str(f)).items()}, str(f),
              metadata={"format": "pt"})
    cfg_path = dst / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = s.base
    cfg_path.write_text(json.dumps(cfg, indent=2))
    (out / SETTINGS_FILE).write_text(json.dumps({**s.to_json(), **(extra or {})}, indent=2))
