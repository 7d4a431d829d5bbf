"""A comparison in two steps: the ratings at once (`rate`), then the main titles (`compare`), with a small answer
cache between them. Same answer as one call, a rating never waits behind a title, and a repeated review costs one
engine pass."""
import threading

from core.answer_cache import AnswerCache
from core.inference import compare, rate

GERMAN = "Der Mixer ist laut, aber er zerkleinert Eis mühelos. Nach drei Monaten noch wie neu."


def _plain(d: dict) -> dict:
    d = dict(d)
    d.pop("elapsed_ms")
    return d


def test_rating_step_gives_compares_ratings_and_seed_titles_with_the_main_title_left_open(engine):
    step_one = rate(GERMAN, engine=engine).to_dict()
    whole = compare(GERMAN, engine=engine).to_dict()
    assert step_one["language"] == whole["language"] == "de"
    for name, m in step_one["models"].items():
        w = whole["models"][name]
        assert m["title"] is None and "title_badge" not in m and w["title"]
        assert (m["stars"], m["star_probs"], m["map_xy"], m["encoder_decoder"]) == \
            (w["stars"], w["star_probs"], w["map_xy"], w["encoder_decoder"])


def test_the_answer_cache_gives_the_same_answer_for_one_engine_pass(engine, monkeypatch):
    engine.answers = AnswerCache(8)
    calls = {"run": 0, "write_titles": 0}
    for method in calls:
        real = getattr(engine, method)

        def counted(*a, _real=real, _name=method, **k):
            calls[_name] += 1
            return _real(*a, **k)
        monkeypatch.setattr(engine, method, counted)
    text = "Nice kettle, boils fast and the lid closes well. The cord is a bit short."
    first = compare(text, engine=engine).to_dict()
    again = compare(text, engine=engine).to_dict()
    assert _plain(first) == _plain(again)
    assert calls == {"run": 1, "write_titles": 1}
    rate(text, engine=engine)
    assert calls == {"run": 1, "write_titles": 1}  # step one of a review already answered: from the cache too


def test_same_review_from_many_visitors_at_once_is_computed_once(engine, monkeypatch):
    engine.answers = AnswerCache(8)
    runs = []
    real = engine.run
    monkeypatch.setattr(engine, "run", lambda *a, **k: runs.append(1) or real(*a, **k))
    text = "La cafetière fuit dès le premier jour, très déçu."
    answers = []
    threads = [threading.Thread(target=lambda: answers.append(_plain(compare(text, engine=engine).to_dict())))
               for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(answers) == 6 and all(a == answers[0] for a in answers) and len(runs) == 1


def test_a_rating_does_not_wait_for_titles_being_written(engine):
    """While another visitor's titles hold the generator, a new review's ratings still come back."""
    engine.answers = AnswerCache(0)
    done = threading.Event()
    result = {}

    def step_one():
        result["d"] = rate("Tolles Messer, sehr scharf, liegt gut in der Hand.", engine=engine).to_dict()
        done.set()

    with engine.title_lock:  # a classmate's titles being written
        threading.Thread(target=step_one, daemon=True).start()
        answered = done.wait(timeout=60)
    assert answered, "the rating waited for the titles"
    assert all(m["stars"] in range(1, 6) for m in result["d"]["models"].values())


def test_a_full_cache_forgets_the_least_recently_used_review():
    cache = AnswerCache(2)
    for key in ("a", "b"):
        cache.once(key, lambda key=key: {"v": key})
    cache.once("a", lambda: {"v": "recomputed"})  # a is now the most recent
    cache.once("c", lambda: {"v": "c"})
    assert len(cache) == 2
    assert cache.once("a", lambda: {"v": "recomputed"}) == {"v": "a"}
    assert cache.once("b", lambda: {"v": "recomputed"}) == {"v": "recomputed"}
