"""What every engine of the main title generator shares: its settings, its prompt, its adapters on disk, its
interface and the choice between greedy and beam search.

Why one module: the two engines (``torch_engine``: PyTorch over the float32 base; ``llama_engine``: llama.cpp on
the Q4_K_M file) and training's dev scoring (``gemma_train``) must build the same prompt, stop at the same tokens,
read the same adapter files and decode the same way, or the same review would get different titles on different
paths. Each engine only says how to run one step of the layers (``Steps``); ``decode`` does the rest.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Generator, Iterable, Protocol, runtime_checkable

import torch

from .gemma_base import GEMMA_ID

ADAPTER_DIR = "title_adapter"  # peft adapter of the generator, inside each model folder
SETTINGS_FILE = "title_generator.json"


DECODING_FIELDS = ("num_beams", "length_penalty", "no_repeat_ngram_size", "early_stopping")
# what a settings file must say: without them a model would decode otherwise than it was chosen to (early_stopping
# came later; a file without it means generate's default, False, which is what those models were scored with)
REQUIRED_DECODING = ("num_beams", "length_penalty", "no_repeat_ngram_size")


@dataclass
class GeneratorSettings:
    """How a model's title adapter was built and how it decodes; saved as title_generator.json."""

    base: str = GEMMA_ID
    prompt_head: str = "Review:"
    prompt_tail: str = "\nTitle:"
    language_prompt: bool = False  # the prompt names the review's language ("Review (German): ...")
    rating_prompt: bool = False  # the prompt gives the review's stars ("...\nStars: 4/5\nTitle:"): the gold
    # label in training, the same model's rating head at inference (the stars shown beside the title)
    max_review_tokens: int = 192
    max_title_tokens: int = 16
    num_beams: int = 4  # 1: greedy; more: beam search as `generate(num_beams=...)` runs it (core/titles/beam.search);
    # 4 chosen on the dev sets (scripts/decoding_sweep.py); a title_generator.json must say it (REQUIRED_DECODING)
    no_repeat_ngram_size: int = 0  # with beams: no n-gram twice in prompt + title (generate's processor)
    length_penalty: float = 1.0  # with beams: a finished title scores sum(log p) / length ** this (generate's)
    early_stopping: bool = False  # with beams: stop once num_beams titles are finished (generate's early_stopping=True)
    # instead of while a running beam could still beat one of them (generate's default, False)
    shared_layers: int = 0  # bottom layers without adapter (the adapter sits on the layers above)
    activated: bool = True  # Activated LoRA (peft's alora_invocation_tokens): the adapter acts only from the prompt's
    # tail ("\nTitle:") on, so the review's own tokens go through the plain base and one prefill of them serves every
    # model; False: the adapter acts on the whole prompt (each model prefills the review itself; only the bottom
    # `shared_layers` are shared). Chosen on the dev sets against the earlier top-6 adapter (model cards)
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

    def decoding(self) -> dict:
        """The decoding settings alone (what the report records and the decoding sweep varies)."""
        return {k: getattr(self, k) for k in DECODING_FIELDS}

    def to_json(self) -> dict:
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        return d

    @classmethod
    def from_json(cls, d: dict, source: Path | str = SETTINGS_FILE) -> "GeneratorSettings":
        """`source` names the file in the error for one without its decoding settings: decoding it greedily, as
        before they were settings, would quietly give other titles than the ones the model was chosen by."""
        from ..title_words import ModelDirError

        missing = [k for k in REQUIRED_DECODING if k not in d]
        if missing:
            raise ModelDirError(f"{source} has no decoding settings ({', '.join(missing)}). Add them (e.g. "
                                '"num_beams": 4, "length_penalty": 1.0, "no_repeat_ngram_size": 0; '
                                "`num_beams: 1` decodes greedily) or re-run `python -m core train`.")
        d = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        d.setdefault("activated", False)  # written before activated adapters: they act on the whole prompt
        d.setdefault("shared_layers", 12)  # ... on the top 6 layers
        if "lora_targets" in d:
            d["lora_targets"] = tuple(d["lora_targets"])
        return cls(**d)

    @classmethod
    def read(cls, model_dir: Path) -> "GeneratorSettings":
        """A model folder's settings; every way the file can be missing or wrong is a ModelDirError."""
        from ..title_words import ModelDirError

        p = Path(model_dir) / SETTINGS_FILE
        if not p.exists():
            raise ModelDirError(f"{model_dir} has no title generator ({SETTINGS_FILE}). Run `python -m core train`.")
        try:
            return cls.from_json(json.loads(p.read_text()), p)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ModelDirError(f"{p} is corrupt ({exc}); re-run `python -m core train`.") from exc


# ----------------------------------------------------------------------------- the prompt
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "nl": "Dutch", "it": "Italian"}


def prompt_ids(tokenizer, body: str, s: GeneratorSettings, language: str | None = None,
               stars: int | None = None) -> list[int]:
    """<bos>Review: <body, cut to max_review_tokens>[\\nStars: k/5]\\nTitle: (the same ids in training and
    inference)."""
    review, tail = prompt_parts(tokenizer, body, s, language, stars)
    return review + tail


def prompt_parts(tokenizer, body: str, s: GeneratorSettings, language: str | None = None,
                 stars: int | None = None) -> tuple[list[int], list[int]]:
    """The prompt as (review part, tail): `<bos>Review: <body>` and `[\\nStars: k/5]\\nTitle:`. An activated
    adapter (`s.activated`) acts from the tail on only, so the review part is the plain base's for every model."""
    head, tail = s.prompt_head, s.prompt_tail
    if s.rating_prompt:  # "?" where a training review has no stars; the app always has its rating head's
        tail = f"\nStars: {'?' if stars is None else int(stars)}/5" + tail
    if s.language_prompt:
        name = LANGUAGE_NAMES.get(language or "", "unknown language")
        head = f"Review ({name}):"
    enc = lambda t: tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    body_ids = enc(" " + " ".join((body or "").split()))[: s.max_review_tokens]
    return [tokenizer.bos_token_id] + enc(head) + body_ids, enc(tail)


def title_ids(tokenizer, title: str, s: GeneratorSettings) -> list[int]:
    ids = tokenizer(" " + " ".join(title.split()), add_special_tokens=False)["input_ids"]
    return ids[: s.max_title_tokens - 1] + [tokenizer.eos_token_id]


def stop_ids(tokenizer) -> frozenset[int]:
    """End of sequence, and every piece holding a line break: a title is one line."""
    vocab = tokenizer.get_vocab()
    return frozenset([tokenizer.eos_token_id] + [i for p, i in vocab.items() if "\n" in p or "<0x0A>" in p])


# ----------------------------------------------------------------------------- the adapters on disk
def read_adapter(adapter_dir: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(adapter_config.json, tensors) of a peft LoRA adapter; plain LoRA only (what the recipe trains)."""
    from safetensors.torch import load_file

    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    if cfg.get("peft_type") != "LORA" or cfg.get("use_dora") or cfg.get("use_rslora"):
        raise ValueError(f"{adapter_dir}: only plain LoRA adapters are supported")
    return cfg, load_file(str(adapter_dir / "adapter_model.safetensors"))


def lora_pairs(adapter_dir: Path, sd: dict[str, torch.Tensor]) -> list[tuple[str, int, torch.Tensor, torch.Tensor]]:
    """(module path in the base, layer index, A, B) for every adapted Linear of a peft adapter's tensors."""
    out = []
    for key in sorted(sd):
        if key.endswith("lora_A.weight"):
            path = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            layer = int(path.split("layers.")[1].split(".")[0])
            out.append((path, layer, sd[key], sd[key.replace("lora_A", "lora_B")]))
    if not out:
        raise ValueError(f"{adapter_dir}: no LoRA weights")
    return out


# ----------------------------------------------------------------------------- decoding
class Steps(Protocol):
    """An engine's cache after one prompt, one row per model: what `decode` needs from it."""

    def beams(self, k: int) -> None:
        """Make every row k rows before the first step (row m·k + j: row m's beam j)."""

    def step(self, last: torch.Tensor, position: int) -> torch.Tensor:
        """Feed each row's last token (rows, 1) at `position`; that row's next-token scores (rows, vocabulary)."""

    def reorder(self, order: torch.Tensor) -> None:
        """Make row j's cache a copy of row order[j]'s (beam search keeps the best beams)."""


@torch.inference_mode()
def decode(s: GeneratorSettings, ids: list[int], first: torch.Tensor, steps: Steps,
           stops: frozenset[int]) -> list[list[int]]:
    """Title ids, one list per row of `first` (the scores after the prompt `ids`): greedy with `num_beams` 1, else
    beam search as `generate(num_beams=...)` runs it (core/titles/beam.search). A title ends at any of `stops`
    (which it does not include) or after `max_title_tokens`."""
    from .beam import drive

    return drive(decode_steps(s, ids, first, steps, stops), steps.step)


def decode_steps(s: GeneratorSettings, ids: list[int], first: torch.Tensor, steps: Steps,
                 stops: frozenset[int]) -> Generator[tuple[torch.Tensor, int], torch.Tensor, list[list[int]]]:
    """`decode` as a generator: it yields each step it needs, `(last_ids, position)`, and is sent the scores
    (what `steps.step` would return), so an engine can decode several reviews side by side."""
    if s.num_beams > 1:
        from .beam import pieces, search_steps

        k = s.num_beams
        steps.beams(k)
        best = yield from search_steps(pieces(), steps.reorder, torch.tensor([ids]).expand(first.shape[0], -1), k,
                                       s.max_title_tokens, sorted(stops), s.length_penalty, s.early_stopping,
                                       s.no_repeat_ngram_size, first=first.repeat_interleave(k, dim=0))
        return [[t for t in row[len(ids):].tolist() if t not in stops] for row in best]
    n = first.shape[0]
    out: list[list[int]] = [[] for _ in range(n)]
    done = [False] * n
    scores = first
    for i in range(s.max_title_tokens):
        nxt = scores.argmax(-1)
        for j in range(n):
            if not done[j]:
                t = int(nxt[j])
                if t in stops:
                    done[j] = True
                else:
                    out[j].append(t)
        if all(done) or i == s.max_title_tokens - 1:
            break
        scores = yield nxt.view(n, 1), len(ids) + i
    return out


# ----------------------------------------------------------------------------- the interface
@dataclass(frozen=True)
class GeneratorInfo:
    """How a generator runs, for the report and the bench: what they record beside its titles."""

    name: str  # the engine's label, e.g. "gemma-llama.cpp"
    engine: str  # "llama.cpp" or "torch"
    int8: bool  # whether the output layer was quantised to int8 on load (llama.cpp's is the file's own Q8_0)
    output_layer: str  # what scores the 262k-row output layer
    shared_review_prefill: bool  # one prefill of the review serves every model (activated adapters)
    decoding: dict[str, dict]  # each model's decoding settings


@runtime_checkable
class TitleGenerator(Protocol):
    """A title model over one base with an adapter per model: what the Engine, evaluation and the bench use."""

    names: tuple[str, ...]
    settings: dict[str, GeneratorSettings]
    tokenizer: object

    def titles(self, text: str, names: Iterable[str] | None = None, language: str | None = None,
               stars: dict[str, int] | None = None) -> dict[str, str]:
        """One review's title from each model (all models when `names` is None)."""

    def add(self, name: str, model_dir: Path) -> None:
        """Load one more model's adapter from its folder."""

    def needs_language(self, names: Iterable[str]) -> bool:
        """Whether any of these models' prompts names the review's language."""

    def needs_stars(self, names: Iterable[str]) -> bool:
        """Whether any of these models' prompts holds the review's stars."""

    def describe(self) -> GeneratorInfo:
        """Which engine runs it, and how."""


class TitleModels:
    """What every engine of the main titles shares: each model's settings (title_generator.json), the prompt
    built from them and how it describes itself. An engine adds `tokenizer`, `names`, `add(name, dir)` and
    `titles(text, names, language, stars)`, and sets the class attributes below."""

    name = "gemma"
    engine = "torch"
    int8 = False
    output_layer = "PyTorch"
    slots = 1  # reviews that may be titled at once (llama_engine decodes several side by side)
    settings: dict[str, GeneratorSettings]
    names: tuple[str, ...] = ()
    tokenizer = None

    def _read_settings(self, dirs: dict[str, Path]) -> GeneratorSettings:
        for m, d in dirs.items():
            self.settings[m] = GeneratorSettings.read(d)
        return next(iter(self.settings.values()))

    def shared_review_prefill(self, names=None) -> bool:
        """Whether one prefill of the review serves all these models (activated adapters, same review part)."""
        return all(self.settings[m].activated for m in names or self.names)

    def needs_language(self, names) -> bool:
        return any(self.settings[m].language_prompt for m in names)

    def needs_stars(self, names) -> bool:
        return any(self.settings[m].rating_prompt for m in names)

    def describe(self) -> GeneratorInfo:
        return GeneratorInfo(self.name, self.engine, self.int8, self.output_layer, self.shared_review_prefill(),
                             {n: self.settings[n].decoding() for n in self.names})

    def prompt(self, text: str, model: str, language: str | None = None, stars: dict | None = None) -> list[int]:
        return prompt_ids(self.tokenizer, text, self.settings[model], language, (stars or {}).get(model))

    def prompt_parts(self, text: str, model: str, language: str | None = None,
                     stars: dict | None = None) -> tuple[list[int], list[int]]:
        return prompt_parts(self.tokenizer, text, self.settings[model], language, (stars or {}).get(model))
