"""core/titles/beam.py is `generate`'s beam search without `generate`: the same title ids, token for token (here the
seed decoder's, driven by core/titles/encoder_decoder.beam_search over its ONNX Runtime step)."""
import dataclasses

import pytest
import torch

from core.titles.encoder_decoder import generate_ids

REVIEWS = [
    "Great headphones, the sound is clear and the battery lasts for days. Would buy again.",
    "Der Akku hält ewig und die Verarbeitung ist super. Klare Kaufempfehlung!",
    "Leider nach zwei Wochen kaputt. Der Kundenservice hat nie geantwortet.",
    "Terrible. It broke the first time I used it and the seller ignored my emails.",
    "Produit correct pour le prix, mais la notice est incompréhensible.",
    "Producto terrible, no funciona.",
    "ok",
    "!!! 12345 ???",
]

# the shipped settings, then ones that reach each way a search ends: the length cap, more beams, no n-gram rule
VARIANTS = [{}, {"max_title_tokens": 3}, {"num_beams": 5, "no_repeat_ngram_size": 0}, {"num_beams": 1}]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "shipped")
def test_beam_search_writes_the_same_title_ids_as_generate(engine, variant):
    assert engine.seed.steps, engine.runtime_note
    enc = engine.encode(REVIEWS)
    with torch.inference_mode(), engine.lock:
        trunk = engine.trunk(enc.input_ids, enc.attention_mask)
        for n in engine.names:
            top = engine.trunk.top(trunk, enc.attention_mask, engine.top_layers[n])
            s = dataclasses.replace(engine.settings[n], **variant)
            dec, vocab = engine.heads[n].decoder, engine.seed.vocab[n]
            for rows in (slice(0, 1), slice(1, 2), slice(None)):  # one review at a time and a padded batch
                args = (dec, engine.tokenizer, top[rows], enc.attention_mask[rows], s, enc.input_ids[rows], vocab)
                fast = generate_ids(*args, step=engine.seed.steps[n])
                assert fast.tolist() == generate_ids(*args).tolist(), (n, rows)


def test_beam_search_over_the_full_vocabulary_matches_generate(engine):
    enc = engine.encode(REVIEWS[:3])
    n = "de_finetuned"
    with torch.inference_mode(), engine.lock:
        top = engine.trunk.top(engine.trunk(enc.input_ids, enc.attention_mask), enc.attention_mask,
                               engine.top_layers[n])
        args = (engine.heads[n].decoder, engine.tokenizer, top, enc.attention_mask, engine.settings[n])
        fast = generate_ids(*args, step=engine.seed.steps[n])
        assert fast.tolist() == generate_ids(*args).tolist()
    assert fast[:, 0].tolist() == [engine.tokenizer.bos_token_id] * 3  # base vocabulary ids, start token first


def test_beam_search_reports_unusable_where_transformers_lacks_one_of_its_pieces(engine, monkeypatch):
    from core.titles import beam

    decoder = engine.heads["de_finetuned"].decoder
    assert beam.usable(decoder)
    monkeypatch.setattr(type(decoder), "_update_finished_beams", None, raising=False)
    assert not beam.usable(decoder)
