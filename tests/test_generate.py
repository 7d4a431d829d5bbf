"""Title decoding speed paths (core/titles/encoder_decoder.py, core/models.merged_top_layers) change speed, not results."""
import torch

from core.titles.encoder_decoder import generate_ids, generate_titles, read_title_vocab


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


def test_merged_top_layers_match_the_peft_adapter(engine):
    """The engine's per-model merged copies compute what peft's adapter computes (to float rounding)."""
    enc = engine.encode(["Der Akku hält ewig.", "The battery died after a week, very disappointed."])
    with torch.inference_mode(), engine.lock:
        h = engine.trunk(enc.input_ids, enc.attention_mask)
        for n in engine.names:
            engine.peft_model.set_adapter(n)
            via_peft = engine.trunk.top(h, enc.attention_mask)
            merged = engine.trunk.top(h, enc.attention_mask, engine.top_layers[n])
            assert torch.allclose(via_peft, merged, atol=1e-4), n
    a, b = (engine.top_layers[n][0].attention.self.query.weight for n in engine.names)
    assert not torch.equal(a, b)  # each model folded in its own adapter


def test_cached_beam_search_gives_the_same_titles_as_recomputing(engine):
    """The explicit encoder-decoder KV cache is a speed-up only: titles are identical without it."""
    texts = ["Der Akku hält ewig und die Verarbeitung ist super.", "Broke after two days. Avoid.",
             "Très bonne machine à pain, simple à utiliser."]
    enc = engine.encode(texts)
    n = "de_finetuned"
    s = engine.settings[n]
    dec = engine.heads[n].decoder
    with torch.inference_mode(), engine.lock:
        top = engine.trunk.top(engine.trunk(enc.input_ids, enc.attention_mask), enc.attention_mask,
                               engine.top_layers[n])
        cached = generate_ids(dec, engine.tokenizer, top, enc.attention_mask, s)
        start = torch.full((len(texts), 1), engine.tokenizer.bos_token_id, dtype=torch.long)
        plain = dec.generate(input_ids=start, encoder_hidden_states=top, encoder_attention_mask=enc.attention_mask,
                             max_new_tokens=s.max_title_tokens, num_beams=s.num_beams, do_sample=False,
                             no_repeat_ngram_size=s.no_repeat_ngram_size, use_cache=False,
                             eos_token_id=engine.tokenizer.eos_token_id, pad_token_id=engine.tokenizer.pad_token_id)
    assert cached.tolist() == plain.tolist()
