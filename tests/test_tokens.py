"""The tokenizer view: German through an English-only vocabulary falls apart."""
from core.tokens import token_views

GERMAN = "Die Verarbeitung ist hervorragend, die Lieferung kam pünktlich und der Kundenservice war äußerst freundlich."


def test_english_only_vocabulary_needs_more_pieces_for_german():
    multi, english = token_views(GERMAN)
    assert english.pieces_per_word > 1.4 * multi.pieces_per_word


def test_english_is_split_about_equally_by_both():
    multi, english = token_views("The build quality is excellent and the delivery arrived on time.")
    assert abs(multi.n_pieces - english.n_pieces) <= 3


def test_a_script_missing_from_the_english_vocabulary_becomes_unknown():
    _, english = token_views("最高の商品です。ありがとう。ምርጥ ምርት")
    assert english.unknown_share > 0


def test_the_token_view_reads_the_engines_own_multilingual_tokenizer(engine):
    """A 250k-piece tokenizer takes ~280 MB: the server holds one copy, not one per use."""
    from core.tokens import _tokenizers

    multilingual = next(t for name, t in _tokenizers().items() if name.startswith("multilingual"))
    assert multilingual is engine.tokenizer
