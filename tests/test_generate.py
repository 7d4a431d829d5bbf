"""Title decoding over a vocabulary shortlist (opt-in speed path, core/generate.py)."""
import torch

from core.generate import generate_ids, generate_titles, read_title_vocab


def test_shortlist_decoding_only_uses_shortlisted_or_input_tokens(engine):
    from conftest import SHIPPED

    vocab = read_title_vocab(SHIPPED / "de_finetuned")
    assert vocab is not None and 100 < len(vocab) < 10_000
    text = "Der Akku hält ewig und die Verarbeitung ist super. Klare Kaufempfehlung!"
    enc = engine.encode([text])
    with torch.inference_mode(), engine.lock:
        h = engine.trunk(enc.input_ids, enc.attention_mask)
        engine.peft_model.set_adapter("de_finetuned")
        top = engine.trunk.top(h, enc.attention_mask)
        heads = engine.heads["de_finetuned"]
        ids = generate_ids(heads.decoder, engine.tokenizer, top, enc.attention_mask,
                           engine.settings["de_finetuned"], enc.input_ids, vocab)[0]
        title = engine.tokenizer.decode(ids, skip_special_tokens=True)
        full = generate_titles(heads.decoder, engine.tokenizer, top, enc.attention_mask, engine.settings["de_finetuned"])[0]
    assert title and full
    allowed = set(vocab.tolist()) | set(enc.input_ids[0].tolist())
    assert set(ids.tolist()) <= allowed | {0, 1, 2}
    # the decoder is restored afterwards: full-vocabulary decoding still scores all rows
    assert heads.decoder.cls.predictions.decoder.weight.shape[0] == heads.decoder.config.vocab_size == 250037
