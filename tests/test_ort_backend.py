"""ONNX Runtime (core/ort_backend.py) changes speed, not results: same titles, same stars as PyTorch."""
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT

REVIEWS = [
    "Great headphones, the sound is clear and the battery lasts for days. Would buy again.",
    "Der Akku hält ewig und die Verarbeitung ist super. Klare Kaufempfehlung!",
    "Leider nach zwei Wochen kaputt. Der Kundenservice hat nie geantwortet, Geld zurück wäre schön.",
    "Terrible. It broke the first time I used it and the seller ignored my emails.",
    "Produit correct pour le prix, mais la notice est incompréhensible.",
    "ok",
    "Ein sehr langes Buch über die Geschichte Europas, gut geschrieben und spannend erzählt. " * 25,
]


def test_onnx_runtime_gives_the_same_titles_and_stars_as_pytorch(engine):
    assert engine.runtime == "onnxruntime", engine.runtime_note
    fast_single = [engine.run([t], generator=False) for t in REVIEWS]
    fast_batch = engine.run(REVIEWS, generator=False)  # one padded batch: the graphs' masks must match PyTorch's too
    with engine.pytorch_only():
        slow_single = [engine.run([t], generator=False) for t in REVIEWS]
        slow_batch = engine.run(REVIEWS, generator=False)
    for fast, slow in [(f[n][0], s[n][0]) for f, s in zip(fast_single, slow_single) for n in engine.names] + [
            (f, s) for n in engine.names for f, s in zip(fast_batch[n], slow_batch[n])]:
        assert fast["encoder_decoder_title"] == slow["encoder_decoder_title"]
        assert max(abs(a - b) for a, b in zip(fast["star_probs"], slow["star_probs"])) < 1e-4
    assert engine.runtime == "onnxruntime" and engine.trunk.runner is not None  # restored after the block


def test_both_models_titles_are_decoded_side_by_side_without_mixing_them_up(engine):
    """The two decoders run in two threads; each column must get its own model's title."""
    text = REVIEWS[1]
    together = engine.run([text], generator=False)
    alone = {n: engine.run([text], names=(n,), generator=False)[n][0]["encoder_decoder_title"] for n in engine.names}
    assert {n: together[n][0]["encoder_decoder_title"] for n in engine.names} == alone
    assert alone["en_trained"] != alone["de_finetuned"]


def test_a_corrupt_cached_graph_is_exported_again(engine):
    from core.ort_backend import OrtLayers

    layers = engine.top_layers["de_finetuned"]
    first = OrtLayers(layers)
    first.path.write_bytes(b"not an onnx graph")
    again = OrtLayers(layers)
    assert again.path == first.path and again.path.stat().st_size > 1_000_000
    h = torch.randn(1, 9, layers[0].attention.self.query.in_features)
    mask = torch.ones(1, 9, dtype=torch.long)
    with torch.inference_mode():
        assert torch.allclose(again(h, mask), engine.trunk.top(h, mask, layers), atol=1e-4)


def test_crosslingual_runtime_torch_switches_onnx_runtime_off():
    code = "from core.engine import Engine; e = Engine(); print(e.runtime, e.trunk.runner)"
    env = {**os.environ, "CROSSLINGUAL_RUNTIME": "torch"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-2:] == ["torch", "None"]


@pytest.mark.parametrize("value", ["torch", "TORCH "])
def test_runtime_setting_is_read_forgivingly(monkeypatch, value):
    from core import ort_backend

    monkeypatch.setenv("CROSSLINGUAL_RUNTIME", value)
    assert ort_backend.wanted() is False
    monkeypatch.setenv("CROSSLINGUAL_RUNTIME", "onnx")
    assert ort_backend.wanted() is True


def test_cached_graphs_unused_for_two_weeks_are_pruned(tmp_path):
    from core.ort_backend import KEEP_DAYS, _prune

    stale, fresh, keep = (tmp_path / f"{n}.onnx" for n in ("stale", "fresh", "keep"))
    for p in (stale, fresh, keep):
        p.write_bytes(b"x")
    old = __import__("time").time() - (KEEP_DAYS + 1) * 86400
    os.utime(stale, (old, old))
    os.utime(keep, (old, old))  # the graph just loaded is never removed
    _prune(tmp_path, keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.onnx", "keep.onnx"]
