"""The GPU path (core/device.py), on a machine with CUDA: skipped elsewhere. `scripts/gpu_check.py` measures it."""
import pytest
import torch

from conftest import SHIPPED

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

REVIEWS = [
    "Der Akku hält kaum drei Stunden, und das Ladegerät wird sehr heiß.",
    "Great kettle: it boils fast, it is quiet and the lid closes properly.",
    "Livraison rapide, mais la taille ne correspond pas du tout au guide.",
    "El café sale tibio y la jarra gotea cada vez que sirvo.",
    "De stofzuiger is licht en krachtig, ik ben er erg blij mee.",
    "このコーヒーメーカーは一ヶ月で壊れました。最悪です。",
    "耳机音质很好，佩戴也舒服，就是电池不太耐用。",
    "Пылесос сломался через месяц, поддержка не отвечает.",
]


@pytest.fixture(scope="module")
def gpu_engine():
    from core.engine import Engine

    mp = pytest.MonkeyPatch()
    mp.setenv("CROSSLINGUAL_DEVICE", "cuda")
    mp.setenv("CROSSLINGUAL_ANSWER_CACHE", "0")
    try:
        yield Engine(SHIPPED)
    finally:
        mp.undo()


def test_a_comparison_on_the_gpu_rates_and_titles_with_both_models(gpu_engine):
    from core.inference import compare

    d = compare(REVIEWS[0], engine=gpu_engine).to_dict()
    assert set(d["models"]) == {"en_trained", "de_finetuned"}
    for m in d["models"].values():
        assert m["stars"] in (1, 2, 3, 4, 5) and abs(sum(m["star_probs"].values()) - 1) < 1e-3
        assert m["title"] and not m["error"]
        assert m["encoder_decoder"]["title"] is not None


def test_the_answer_says_the_gpu_and_the_pytorch_engines_answered(gpu_engine):
    from core.inference import compare

    d = compare(REVIEWS[1], engine=gpu_engine).to_dict()
    assert d["engine"] == {"device": "cuda", "encoder": "torch", "generator": "torch"}
    assert next(gpu_engine.bert.parameters()).is_cuda and gpu_engine.generator.head.out.weight.is_cuda


def test_eight_reviews_get_the_same_titles_alone_and_in_a_batch_on_the_gpu(gpu_engine):
    import pandas as pd

    from core.batch import predict_table
    from core.inference import compare
    from core.tables import TableRead

    alone = [compare(t, engine=gpu_engine).to_dict()["models"] for t in REVIEWS]
    table = predict_table(TableRead(df=pd.DataFrame({"review": REVIEWS}), column="review"), engine=gpu_engine)
    for i, models in enumerate(alone):
        for n, m in models.items():
            assert m["title"], (REVIEWS[i], n)
            assert table.loc[i, f"{n}_title"] == m["title"], (REVIEWS[i], n)
            assert int(table.loc[i, f"{n}_stars"]) == m["stars"]
