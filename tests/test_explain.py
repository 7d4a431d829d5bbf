"""The "Why?" map (core/explain.py) and the optional English-only third model, on the shipped models."""
import json
import subprocess
import sys

import numpy as np
import pytest

from core import compare
from core.explain import map_frame, map_reviews, neighbour_agreement, nearest, pooled_vectors
from core.map_projection import MAP_PATH, load_map, load_projections
from core.names import ENGLISH_ONLY as ENGLISH_ONLY_MODEL
from core.names import MAIN_MODELS

ROOT = MAP_PATH.parent.parent.parent
GERMAN = "Leider eine totale Enttäuschung. Die Kaffeemühle war nach zwei Wochen defekt, der Händler antwortet nicht."


@pytest.fixture(scope="module")
def shipped():
    m = load_map()
    assert m is not None, f"no map at {MAP_PATH}: run `python -m core explain --build`"
    return m


@pytest.fixture(scope="module")
def texts():
    return {r.uid: r.body for r in map_reviews()}


def test_the_shipped_map_is_small_and_covers_both_models(shipped):
    assert MAP_PATH.stat().st_size < 200_000
    assert set(shipped["models"]) == set(MAIN_MODELS)
    n = len(shipped["reviews"]["ids"])
    assert n == 480 and set(shipped["reviews"]["language"]) == {"en", "de"}
    for b in shipped["models"].values():
        assert len(b["xy"]) == n and len(b["mean"]) == 384 and np.shape(b["components"]) == (2, 384)


def test_the_engine_loads_the_map_for_the_shipped_models(engine):
    assert set(engine.map_projection) == set(MAIN_MODELS), \
        "the map was built from other adapter files: run `python -m core explain --build`"


def test_shipped_points_match_what_the_current_engine_projects(engine, shipped, texts):
    """A stale map (encoder numerics or adapters changed since the build) fails here: rebuild it."""
    ids = shipped["reviews"]["ids"]
    pick = [0, 1, 2, len(ids) // 2, len(ids) // 2 + 1, len(ids) - 1]  # English and German
    rows = engine.run([texts[ids[i]] for i in pick], titles=False)
    for n in MAIN_MODELS:
        stored = np.asarray([shipped["models"][n]["xy"][i] for i in pick])
        now = np.asarray([r["map_xy"] for r in rows[n]])
        assert np.abs(now - stored).max() < 1e-3, (n, now, stored)


def test_a_german_review_comes_back_with_its_point_on_both_maps(engine, shipped):
    d = compare(GERMAN, engine=engine).to_dict()
    assert set(d["models"]) == set(MAIN_MODELS)  # the default output keeps its two models
    for n in MAIN_MODELS:
        x, y = d["models"][n]["map_xy"]
        pts = np.asarray(shipped["models"][n]["xy"])
        lo, hi = pts.min(0), pts.max(0)
        span = hi - lo
        assert lo[0] - span[0] <= x <= hi[0] + span[0] and lo[1] - span[1] <= y <= hi[1] + span[1]
        df = map_frame(n, [x, y], m=shipped)
        ring = df[df.group == "your review"]
        assert len(df) == len(pts) + len(ring) and (ring.x.iloc[0], ring.y.iloc[0]) == (x, y)
        # without a review the group is still there (as one undrawn row), so the browser's plot keeps its colour
        bare = map_frame(n, None, m=shipped)
        assert bare.group.iloc[-1] == "your review" and bare[["x", "y"]].iloc[-1].isna().all()


def test_the_stored_neighbour_share_is_what_the_function_recomputes(engine, shipped, texts):
    """The share is the mean of the stored per-review flags, and for a few German reviews the flag and the
    neighbours come back when recomputed from fresh vectors against their stored neighbours plus the English
    reviews closest to them on the map (the strongest rivals)."""
    rv = shipped["reviews"]
    en = [i for i, lang in enumerate(rv["language"]) if lang == "en"]
    de = [i for i, lang in enumerate(rv["language"]) if lang == "de"]
    queries = [de[0], de[len(de) // 2], de[-1]]
    for n in MAIN_MODELS:
        nb = shipped["models"][n]["neighbours"]
        flags = [c == "1" for c in nb["agrees"]]
        assert len(flags) == nb["n"] == len(de) == len(nb["nearest"])
        assert nb["share"] == pytest.approx(np.mean(flags), abs=1e-4)
        xy = np.asarray(shipped["models"][n]["xy"])
        pool = set()
        for q in queries:
            stored = nb["nearest"][de.index(q)]
            rivals = [i for i in sorted(en, key=lambda i: np.sum((xy[i] - xy[q]) ** 2)) if i not in stored][:4]
            pool |= set(stored) | set(rivals)
        pool = sorted(pool)
        vec = pooled_vectors(engine, [texts[rv["ids"][i]] for i in queries + pool])[n]
        qv, pv = vec[: len(queries)], vec[len(queries):]
        got = nearest(qv, pv, nb["k"])
        agree = neighbour_agreement(qv, [rv["polarity"][q] for q in queries], pv,
                                    [rv["polarity"][i] for i in pool], nb["k"])
        for j, q in enumerate(queries):
            assert {pool[i] for i in got[j]} == set(nb["nearest"][de.index(q)]), (n, q)
            assert agree[j] == flags[de.index(q)], (n, q)


def test_neighbour_agreement_takes_the_majority_of_the_k_nearest():
    pool = np.asarray([[1, 0], [1, 0.1], [1, -0.1], [0, 1], [-1, 0]], dtype=float)
    pol = ["positive", "positive", "negative", "negative", "negative"]
    q = np.asarray([[1, 0.01], [0.1, 1]])  # the second one's 3 nearest: pool 3, 1, 0 (negative, positive, positive)
    assert neighbour_agreement(q, ["positive", "negative"], pool, pol, k=3) == [True, False]
    assert nearest(q, pool, 1).ravel().tolist() == [0, 3]


def test_explain_build_writes_a_map_for_other_models(tiny_models, tmp_path):
    r = subprocess.run([sys.executable, "-m", "core", "explain", "--build", "--models", str(tiny_models),
                        "--out", str(tmp_path), "--limit", "6"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((tmp_path / "embedding_map.json").read_text())
    assert len(m["reviews"]["ids"]) == 12 and m["contrast"] == {}
    for n in MAIN_MODELS:
        assert len(m["models"][n]["xy"]) == 12 and m["models"][n]["neighbours"]["n"] == 6
    dirs = {n: tiny_models / n for n in MAIN_MODELS}
    assert load_projections(dirs) == {}  # the shipped map does not fit other adapters: no stale points
    assert set(load_projections(dirs, tmp_path / "embedding_map.json")) == set(MAIN_MODELS)


# ----------------------------------------------------------------------------- the English-only third model
def test_the_english_only_model_is_added_only_when_asked(engine):
    plain = compare(GERMAN, engine=engine).to_dict()
    more = compare(GERMAN, engine=engine, english_only=True).to_dict()
    assert ENGLISH_ONLY_MODEL not in plain["models"]
    assert set(more["models"]) == set(MAIN_MODELS) | {ENGLISH_ONLY_MODEL}
    for n in MAIN_MODELS:
        assert more["models"][n] == plain["models"][n]
    m = more["models"][ENGLISH_ONLY_MODEL]
    assert m["error"] is None and m["stars"] in range(1, 6) and m["polarity"] in ("positive", "negative")
    assert m["title"] == "" and m["map_xy"] is None and sum(m["star_probs"].values()) == pytest.approx(1, abs=1e-3)


def test_a_german_review_through_the_english_only_model(engine, capsys):
    """Whatever MiniLM makes of German (it reads WordPiece fragments); shown with -s, not judged."""
    neg = compare(GERMAN, engine=engine, english_only=True).to_dict()["models"]
    pos = compare("Absolut genial, bestes Gerät das ich je hatte. Klare Kaufempfehlung!", engine=engine,
                  english_only=True).to_dict()["models"]
    with capsys.disabled():
        for label, d in (("negative review", neg), ("positive review", pos)):
            print(f"\n{label}: " + "; ".join(f"{n} {d[n]['stars']}★ {d[n]['polarity']}" for n in d))
    assert neg[ENGLISH_ONLY_MODEL]["stars"] in range(1, 6) and pos[ENGLISH_ONLY_MODEL]["stars"] in range(1, 6)


def test_the_app_does_not_load_the_english_only_model_at_start_up():
    code = ("import app; from core import engine as e, inference as i; "
            "print(len(i._english_only), e._engine is not None)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split()[-2:] == ["0", "True"]


def test_the_english_only_model_keeps_its_own_base_when_the_main_base_is_overridden(monkeypatch):
    """`python app.py --base X` sets CROSSLINGUAL_BASE for the two main models; the MiniLM column must not follow."""
    from core.engine import Engine

    monkeypatch.setenv("CROSSLINGUAL_BASE", "/nonexistent/base-for-the-main-models")
    small = Engine(names=(ENGLISH_ONLY_MODEL,), base_from_env=False)
    row = small.run(["Great blender, strong motor."], titles=False)[ENGLISH_ONLY_MODEL][0]
    assert len(row["star_probs"]) == 5
