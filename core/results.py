"""The answer's types: what `compare` returns and what the JSON contract (`/compare`, the CLI) is made of.

They live apart from the engine so that the page, the batch code, the evaluation and the API can read an answer
without importing the models. The JSON keeps its historical shape: a model's main title is flat on the model
(`title`, `title_language`, ...), the seed setup's title nested under `encoder_decoder`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TitleOutput:
    """One generated title and what the checks say about it (the same keys for both generators)."""

    title: str = ""
    title_language: str = "unknown"
    title_language_probs: dict[str, float] = field(default_factory=dict)
    title_badge: str = ""  # same_language | accidental_translation | copied | seen_in_training | unknown
    title_copied_share: float = 0.0
    title_seen_in_training: bool = False
    error: str | None = None


@dataclass
class ModelOutput:
    """One model's answer: the rating, the main title (the pretrained generator's, `generated`) and, under
    `encoder_decoder`, the seed's encoder-decoder title ("the question's own setup"). `error` is the model's own
    problem (no generator, an optional column that failed); a title's failure stays on its title."""

    stars: int | None = None
    star_probs: dict[str, float] = field(default_factory=dict)
    polarity: str | None = None
    generated: TitleOutput | None = field(default_factory=TitleOutput)  # None: not written yet (`rate`)
    error: str | None = None
    map_xy: list[float] | None = None  # where the rating head puts the review on the "Why?" map (core/explain.py)
    encoder_decoder: TitleOutput | None = None

    def to_dict(self) -> dict:
        """The contract's shape: the main title's fields flat on the model, then `error`, `map_xy` and the seed
        title nested. A title not written yet (`rate`'s answer) is `"title": None` without the checks' keys."""
        title = asdict(self.generated) if self.generated is not None else {"title": None, "error": None}
        title_error = title.pop("error")
        return {"stars": self.stars, "star_probs": self.star_probs, "polarity": self.polarity, **title,
                "error": self.error if self.error is not None else title_error, "map_xy": self.map_xy,
                "encoder_decoder": None if self.encoder_decoder is None else asdict(self.encoder_decoder)}


@dataclass
class CompareResult:
    text: str
    language: str
    language_probs: dict[str, float]
    language_note: str
    models: dict[str, ModelOutput]
    language_source: str = "detected"  # detected | override
    n_tokens: int = 0
    truncated: bool = False
    message: str = ""
    elapsed_ms: float = 0.0
    engine: dict[str, str] = field(default_factory=dict)  # which engines answered, on which device (Engine.answered_by)

    def to_dict(self) -> dict:
        return {"language": self.language, "language_probs": self.language_probs,
                "language_note": self.language_note, "models": {n: m.to_dict() for n, m in self.models.items()},
                "language_source": self.language_source, "n_tokens": self.n_tokens, "truncated": self.truncated,
                "message": self.message, "elapsed_ms": self.elapsed_ms, "engine": self.engine}
