"""Reviews titled side by side get the titles they get alone (core/titles/decode_room.py, llama_engine)."""
import threading
from pathlib import Path

import pytest

from core.titles.llama_engine import llama_available, moves

ROOT = Path(__file__).resolve().parents[1]
REVIEWS = (
    "Der Akku hält keinen Tag. Zurückgeschickt, nie wieder.",
    "Great little lamp, bright and cheap. Lights the whole desk.",
    "Très déçu, la batterie ne tient pas une journée.",
    "La freidora funciona de maravilla, pero hace bastante ruido.",
    "Het matras is veel te hard, ik slaap er slecht op.",
    "Наушники отличные, звук чистый, но кабель слишком короткий.",
    "このコーヒーメーカーは音が静かで、味もとても良いです。",
    "这个背包质量很好，容量大，背起来也很舒服。",
)


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [0, 0, 1, 2], [1, 0, 3, 2], [3, 2, 1, 0], [1, 2, 3, 0],
                                   [2, 2, 2, 2], [3, 3, 0, 0]])
def test_reordering_beams_leaves_each_sequence_a_copy_of_the_one_it_follows(order):
    state = ["a", "b", "c", "d", "spare"]
    for src, dst in moves(order, spare=4):
        assert dst != src
        state[dst] = state[src]
    assert state[:4] == ["abcd"[o] for o in order]


@pytest.fixture(scope="module")
def titles():
    if not llama_available():
        pytest.skip("llama-cpp-python is not installed")
    from core.titles.llama_engine import LlamaTitles

    models = ROOT / "assets" / "models"
    gen = LlamaTitles({n: models / n for n in ("en_trained", "de_finetuned")})
    yield gen
    gen.close()


def side_by_side(gen, asks):
    """Each (review index, model names) in its own thread at once: the room decodes them together."""
    got, start = {}, threading.Barrier(len(asks))

    def one(i, names):
        start.wait()
        got[(i, names)] = gen.titles(REVIEWS[i], names)

    threads = [threading.Thread(target=one, args=a) for a in asks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return got


def test_a_reviews_titles_are_the_same_alone_and_decoded_with_others(titles):
    assert titles.slots >= 2
    alone = [titles.titles(r) for r in REVIEWS]
    assert all(t["en_trained"] and t["de_finetuned"] for t in alone)
    assert titles.room.stats.most_programs == 1  # one at a time: nothing shared yet
    both = ("en_trained", "de_finetuned")
    make_ups = [
        [(i, both) for i in range(8)],  # all eight, as many at once as there are slots
        [(7, both), (3, both), (5, both), (1, both)],  # another company, another order
        [(2, both), (6, both)],
        # the two models at once: one review asks for de_finetuned only, another for en_trained first
        [(0, ("de_finetuned",)), (4, both), (6, ("en_trained", "de_finetuned")), (5, ("de_finetuned", "en_trained"))],
    ]
    for asks in make_ups:
        for (i, names), got in side_by_side(titles, asks).items():
            assert got == {n: alone[i][n] for n in names}, (REVIEWS[i], names)
    assert titles.room.stats.most_programs >= 3  # the reviews really shared decodes


def test_a_failing_review_leaves_the_room_serving_the_others(titles):
    def broken(slot_number):
        yield from ()
        raise ValueError("this review cannot be decoded")

    with pytest.raises(ValueError, match="cannot be decoded"):
        titles.room.run(broken)
    with pytest.raises(ValueError, match="does not fit"):
        titles.next_logits([2] + [9] * titles.cells, "en_trained")  # a prompt longer than a sequence's cells
    assert titles.titles(REVIEWS[1], ("en_trained",))["en_trained"]


def test_an_engine_nobody_holds_is_freed_with_its_decoding_thread():
    """The room's worker holds its engine weakly: a generator dropped without close() (a test's, a swapped one)
    must not keep its llama.cpp context and cache alive for the life of the process."""
    import gc
    import weakref

    if not llama_available():
        pytest.skip("llama-cpp-python is not installed")
    from core.titles.llama_engine import LlamaTitles

    gen = LlamaTitles({"en_trained": ROOT / "assets" / "models" / "en_trained"})
    assert gen.titles(REVIEWS[1])["en_trained"]
    worker, ref = gen.room._worker, weakref.ref(gen)
    del gen
    gc.collect()
    assert ref() is None
    worker.join(timeout=30)
    assert not worker.is_alive()
