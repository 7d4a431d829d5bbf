"""Vocabulary tables read a row at a time from their files: the same numbers as the mapped tables, and the server's
memory does not grow with every new review's tokens."""
import numpy as np
import pytest
import torch

from conftest import resident_mb
from core.data import DATA_DIR, load_lab_corpus

REVIEWS = [r.body for f in ("reviews_en.jsonl", "reviews_de.jsonl") for r in load_lab_corpus(DATA_DIR / f, "lab")]


def test_rows_read_from_the_base_file_are_the_loaded_tables_rows():
    from core.base import ensure_converted, load_base
    from core.file_rows import FileRows, FileRowsEmbedding

    _, bert = load_base()
    table = bert.embeddings.word_embeddings
    rows = FileRows.safetensors(ensure_converted() / "model.safetensors", "embeddings.word_embeddings.weight")
    assert rows is not None and rows.shape == tuple(table.weight.shape)
    ids = torch.from_numpy(np.random.default_rng(0).integers(0, rows.shape[0], (3, 50)))
    ids[0, :5] = ids[1, 7]  # repeated rows
    with torch.inference_mode():
        assert torch.equal(FileRowsEmbedding(table, rows)(ids), table(ids))
    with pytest.raises(IndexError):
        rows(np.array([rows.shape[0]]))


def test_the_engine_looks_word_embeddings_up_in_the_file_with_the_same_answers(engine):
    from core.file_rows import FileRowsEmbedding

    emb = engine.bert.embeddings.word_embeddings
    assert isinstance(emb, FileRowsEmbedding)
    decoders = [h.decoder for h in engine.heads.values() if h.decoder is not None]
    assert decoders and all(d.bert.embeddings.word_embeddings is emb for d in decoders)
    texts = REVIEWS[:6] + ["最高の商品です。ありがとう。", "Очень хороший товар, рекомендую."]
    from_file = engine.run(texts, generator=False)
    plain = torch.nn.Embedding(emb.num_embeddings, emb.embedding_dim, _weight=emb.weight, _freeze=True)
    try:
        engine.bert.embeddings.word_embeddings = plain
        for d in decoders:
            d.bert.embeddings.word_embeddings = plain
        mapped = engine.run(texts, generator=False)
    finally:
        engine.bert.embeddings.word_embeddings = emb
        for d in decoders:
            d.bert.embeddings.word_embeddings = emb
    assert from_file == mapped


def test_many_different_reviews_do_not_bring_the_base_file_into_memory(engine):
    """A class sends hundreds of reviews in many languages; each may cost its rows, not the file around them."""
    engine.run(REVIEWS[:2], generator=False)
    before = resident_mb("model.safetensors")
    for i in range(0, 240, 16):
        engine.run(REVIEWS[i:i + 16], generator=False)
    assert resident_mb("model.safetensors") - before < 8


def test_looking_up_many_token_rows_keeps_the_table_out_of_the_process_memory(tmp_path):
    """A class's reviews touch thousands of different rows of Gemma's 168 MB token table; each lookup must cost
    its row, not the pages the kernel maps around a touched page of a mapped file (Linux: /proc/self/smaps)."""
    from core.titles.gemma_base import assemble_gguf
    from core.titles.llama_output_layer import TokenTable

    table = TokenTable(assemble_gguf(), 1, tmp_path)
    data = next(tmp_path.glob("*.onnx.data")).name
    before = resident_mb(data)
    ids = np.random.default_rng(1).integers(0, table.rows, 3000)
    for chunk in np.array_split(ids, 30):  # as prompts and beam steps ask for them
        table.embed(chunk)
    assert resident_mb(data) - before < 8
    table.close()
