"""Cross-lingual Review Lab core: language detection, models, inference, training, evaluation.

`from core import compare` is the inference contract. It is imported lazily so that
`import core` (and the CLI's --help) stays light.
"""
from __future__ import annotations

__all__ = ["compare", "CompareResult", "ModelOutput"]


def __getattr__(name: str):
    if name == "compare":
        from .inference import compare

        return compare
    if name in __all__:
        from . import results

        return getattr(results, name)
    raise AttributeError(name)
