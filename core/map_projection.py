"""Reading the built "Why?" map (assets/explain/embedding_map.json): what the Engine needs to place a review on it.

Apart from core/explain.py, which builds the map by running the Engine: the Engine only reads the file, so
reading lives below both and neither imports the other in a circle.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

MAP_PATH = Path(__file__).resolve().parent.parent / "assets" / "explain" / "embedding_map.json"


def adapter_fingerprint(model_dir: Path) -> str:
    """What the pooled vector depends on besides the shared base: the LoRA adapter weights."""
    return hashlib.sha1((Path(model_dir) / "adapter" / "adapter_model.safetensors").read_bytes()).hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> dict | None:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_map(path: str | Path = MAP_PATH) -> dict | None:
    """The built map, or None when there is none (the app then says how to build it)."""
    p = Path(path)
    return _read(str(p), p.stat().st_mtime) if p.exists() else None


def load_projections(dirs: dict[str, Path], path: str | Path = MAP_PATH) -> dict:
    """{model: (mean, components)} as float32 tensors, for each model whose adapter the map was built from."""
    import torch

    m = load_map(path)
    out = {}
    for n, d in dirs.items():
        b = (m or {}).get("models", {}).get(n)
        try:
            if b and b["adapter_sha1"] == adapter_fingerprint(d):
                out[n] = (torch.tensor(b["mean"], dtype=torch.float32),
                          torch.tensor(b["components"], dtype=torch.float32).T.contiguous())
        except OSError:
            continue
    return out
