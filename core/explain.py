"""The "Why?" map: where each model's rating head puts a review, among a few hundred reviews it has seen.

`python -m core explain --build` runs the shipped lab reviews (assets/data; 1-2 stars negative, 4-5 positive,
3-star reviews dropped) through each model and keeps what its rating head reads: the mean-pooled top states
(384-d, exactly what `Engine.run` computes). It fits one 2-D PCA per model and writes
assets/explain/embedding_map.json: the points, the PCA mean and two components (so the Engine projects a new
review with one 384x2 matmul, no refit at start-up), and a number that says the same as the picture: for each
German review, do most of its k=5 nearest English reviews (cosine, in the full 384-d space, not the 2-D map)
share its polarity? The English-only MiniLM model gets the same number as a contrast.

The map is tied to the adapter files it was built from (their SHA-1): a retrained model gets no stale map.
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np

from . import data as D
from . import languages as L
from .map_projection import MAP_PATH, adapter_fingerprint, load_map
from .names import ENGLISH_ONLY, MAIN_MODELS

ROOT = Path(__file__).resolve().parent.parent
CONTRAST_MODEL = ENGLISH_ONLY  # the same English recipe on the English-only base
K = 5
LANGUAGES = {lang.code: lang.name for lang in L.map_languages()}
YOUR_REVIEW = "your review"
GROUPS = [f"{LANGUAGES[lang]} · {pol}" for lang in LANGUAGES for pol in ("positive", "negative")] + [YOUR_REVIEW]
COLORS = dict(zip(GROUPS, ["#1f4e9e", "#8fb8e8", "#c2500a", "#f5b27a", "#c000c0"]))


# ----------------------------------------------------------------------------- the pieces
def map_reviews(limit: int | None = None) -> list[D.Review]:
    """The lab reviews with a polarity, English then German; `limit` keeps the first n of each language."""
    out = []
    for lang in LANGUAGES:
        rows = [r for r in D.load_lab_corpus(D.DATA_DIR / f"reviews_{lang}.jsonl", f"lab_{lang}") if r.polarity]
        out += rows[:limit] if limit else rows
    return out


def pooled_vectors(engine, texts: list[str], batch: int = 16) -> dict[str, np.ndarray]:
    """{model: (n, hidden)} rating-head inputs, through `Engine.run` itself (so the map cannot drift from it)."""
    out: dict[str, np.ndarray] = {}
    for idx in D.length_batches(texts, batch):
        rows = engine.run([texts[i] for i in idx], titles=False, vectors=True)
        for n, rs in rows.items():
            if n not in out:
                out[n] = np.zeros((len(texts), len(rs[0]["pooled"])), dtype=np.float32)
            out[n][idx] = np.asarray([r["pooled"] for r in rs], dtype=np.float32)
    return out


def nearest(queries: np.ndarray, pool: np.ndarray, k: int = K) -> np.ndarray:
    """(n_queries, k) indices of each query's k nearest pool vectors by cosine similarity, nearest first."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True).clip(min=1e-12)
    p = pool / np.linalg.norm(pool, axis=1, keepdims=True).clip(min=1e-12)
    return np.argsort(-(q @ p.T), axis=1, kind="stable")[:, :k]


def neighbour_agreement(queries: np.ndarray, query_pol: list[str], pool: np.ndarray, pool_pol: list[str],
                        k: int = K) -> list[bool]:
    """For each query vector: does the majority polarity of its k nearest pool vectors (cosine) equal its own?"""
    pos = np.asarray([x == "positive" for x in pool_pol])
    majority = np.where(pos[nearest(queries, pool, k)].sum(1) * 2 > k, "positive", "negative")
    return [bool(m == own) for m, own in zip(majority, query_pol)]


def neighbour_block(vectors: np.ndarray, reviews: list[D.Review], k: int = K) -> dict:
    """German queries against the English pool: the share that agrees, overall and on German reviews outside the
    training split. `agrees` has one 0/1 per German review and `nearest` its k English neighbours (indices into
    the map's review list), in the order of the review list."""
    en = [i for i, r in enumerate(reviews) if r.language == "en"]
    de = [i for i, r in enumerate(reviews) if r.language == "de"]
    if not en or not de:
        return {"k": k, "n": 0, "share": None, "held_out_n": 0, "held_out_share": None, "agrees": "", "nearest": []}
    agrees = neighbour_agreement(vectors[de], [reviews[i].polarity for i in de], vectors[en],
                                 [reviews[i].polarity for i in en], k)
    near = [[en[j] for j in row] for row in nearest(vectors[de], vectors[en], k).tolist()]
    held = [a for a, i in zip(agrees, de) if reviews[i].split != "train"]
    return {"k": k, "n": len(agrees), "share": round(float(np.mean(agrees)), 4),
            "held_out_n": len(held), "held_out_share": round(float(np.mean(held)), 4) if held else None,
            "agrees": "".join("1" if a else "0" for a in agrees), "nearest": near}


def fit_projection(vectors: np.ndarray) -> dict:
    """A 2-D PCA, stored rounded; points are projected with the stored numbers, as the Engine will."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, svd_solver="full").fit(vectors.astype(np.float64))
    return {"mean": [round(float(v), 6) for v in pca.mean_],
            "components": [[round(float(v), 6) for v in c] for c in pca.components_],
            "explained_variance_ratio": [round(float(v), 4) for v in pca.explained_variance_ratio_]}


def project(vectors: np.ndarray, proj: dict) -> np.ndarray:
    return (vectors - np.asarray(proj["mean"])) @ np.asarray(proj["components"]).T


# ----------------------------------------------------------------------------- build (once, offline)
def build_map(models_dir: str | Path | None = None, limit: int | None = None, out: str | Path | None = None,
              contrast: bool = True) -> dict:
    """Compute the map and write it; `out` is a folder (default assets/explain/)."""
    from .engine import Engine

    t0 = time.perf_counter()
    reviews = map_reviews(limit)
    texts = [r.body for r in reviews]
    engine = Engine(models_dir, names=MAIN_MODELS)
    vecs = pooled_vectors(engine, texts)
    result: dict = {
        "about": "2-D PCA (one per model) of the mean-pooled top states each model's rating head reads, for the "
                 "lab reviews in assets/data (1-2 stars negative, 4-5 positive, 3 stars dropped). 'neighbours': for "
                 "each German review, whether the majority polarity of its k nearest English reviews (cosine, full "
                 "hidden space) equals its own. Rebuild: python -m core explain --build",
        "reviews": {"ids": [r.uid for r in reviews], "language": [r.language for r in reviews],
                    "polarity": [r.polarity for r in reviews], "split": [r.split for r in reviews]},
        "models": {},
    }
    for n in MAIN_MODELS:
        proj = fit_projection(vecs[n])
        xy = project(vecs[n], proj)
        result["models"][n] = {"folder": engine.dirs[n].name, "adapter_sha1": adapter_fingerprint(engine.dirs[n]),
                               "base": engine.settings[n].base, **proj,
                               "xy": [[round(float(x), 4), round(float(y), 4)] for x, y in xy],
                               "neighbours": neighbour_block(vecs[n], reviews)}
    del engine
    result["contrast"] = {}
    cdir = Path(models_dir or (ROOT / "assets" / "models")) / CONTRAST_MODEL
    if contrast and cdir.exists():
        c_engine = Engine(Path(models_dir) if models_dir else None, names=(CONTRAST_MODEL,))
        cvec = pooled_vectors(c_engine, texts)[CONTRAST_MODEL]
        result["contrast"][CONTRAST_MODEL] = {"folder": cdir.name, "base": c_engine.settings[CONTRAST_MODEL].base,
                                              "neighbours": neighbour_block(cvec, reviews)}
    result["build_s"] = round(time.perf_counter() - t0, 1)
    path = (Path(out) if out else MAP_PATH.parent) / MAP_PATH.name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    result["path"] = str(path)
    return result


def summary(m: dict) -> dict:
    """The numbers of a map, without the points: what the CLI prints."""
    pick = lambda b: {k: v for k, v in b["neighbours"].items() if k not in ("agrees", "nearest")}  # noqa: E731
    out = {n: {"explained_variance_ratio": b["explained_variance_ratio"], "neighbours": pick(b)}
           for n, b in m["models"].items()}
    out.update({n: {"neighbours": pick(b)} for n, b in m.get("contrast", {}).items()})
    return out


# ----------------------------------------------------------------------------- use (app and Engine)
@functools.lru_cache(maxsize=1)
def _snippets() -> dict[str, str]:
    out = {}
    for r in map_reviews():
        out[r.uid] = r.body if len(r.body) <= 90 else r.body[:87].rstrip() + "…"
    return out


_frames: dict[str, tuple[dict, object]] = {}


def _corpus_frame(name: str, m: dict):
    """One model's map points as a DataFrame, built once per loaded map."""
    import pandas as pd

    hit = _frames.get(name)
    if hit is not None and hit[0] is m:
        return hit[1]
    pts = np.asarray(m["models"][name]["xy"], dtype=float)
    rv = m["reviews"]
    text = _snippets()
    df = pd.DataFrame({"x": pts[:, 0], "y": pts[:, 1],
                       "group": [f"{LANGUAGES[lang]} · {pol}" for lang, pol in zip(rv["language"], rv["polarity"])],
                       "review": [text.get(i, i) for i in rv["ids"]]})
    _frames[name] = (m, df)
    return df


def map_frame(name: str, xy: list[float] | None = None, m: dict | None = None):
    """The points of one model's map as a DataFrame (x, y, group, review), the visitor's review last (drawn on
    top) as a small ring of points around its position so it stands out among hundreds of dots."""
    import pandas as pd

    m = m or load_map()
    if not m or name not in m.get("models", {}):
        return None
    df = _corpus_frame(name, m)
    if xy is None:
        # one invalid (undrawn) row keeps the group in the data: Gradio's native plot fixes its colour domain when
        # it first renders, and a group that appears only in a later update would not be drawn
        return pd.concat([df, pd.DataFrame({"x": [np.nan], "y": [np.nan], "group": [YOUR_REVIEW],
                                            "review": [YOUR_REVIEW]})], ignore_index=True)
    # about 9 px across on the app's plots (wider than tall, so x gets the smaller share of its range)
    rx, ry = 0.02 * max(float(np.ptp(df.x.to_numpy())), 1e-6), 0.03 * max(float(np.ptp(df.y.to_numpy())), 1e-6)
    a = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = pd.DataFrame({"x": np.r_[xy[0], xy[0] + rx * np.cos(a)], "y": np.r_[xy[1], xy[1] + ry * np.sin(a)],
                         "group": YOUR_REVIEW, "review": YOUR_REVIEW})
    return pd.concat([df, ring], ignore_index=True)
