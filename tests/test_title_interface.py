"""The title generators' declared interface: settings files that must say how to decode, one way to swap a
generator into the Engine, and one definition of the dev/test title scores."""
import json
import shutil

import pytest

from conftest import ROOT, SHIPPED


def without(tmp_path, keys: tuple[str, ...]):
    """A copy of en_trained's title adapter and settings with `keys` removed from title_generator.json."""
    d = tmp_path / "en_trained"
    d.mkdir()
    shutil.copytree(SHIPPED / "en_trained" / "title_adapter", d / "title_adapter")
    s = json.loads((SHIPPED / "en_trained" / "title_generator.json").read_text())
    (d / "title_generator.json").write_text(json.dumps({k: v for k, v in s.items() if k not in keys}))
    return d


@pytest.mark.parametrize("engine_setting", ["llama", "torch"])
def test_a_settings_file_without_its_decoding_settings_is_an_error_not_a_greedy_decode(tmp_path, monkeypatch,
                                                                                          engine_setting):
    from core.title_words import ModelDirError
    from core.titles import load_generator

    monkeypatch.setenv("CROSSLINGUAL_GENERATOR_ENGINE", engine_setting)
    d = without(tmp_path, ("num_beams",))
    with pytest.raises(ModelDirError) as err:
        load_generator({"en_trained": d})
    assert str(d / "title_generator.json") in str(err.value) and "num_beams" in str(err.value)
    assert "python -m core train" in str(err.value)


def test_older_settings_files_keep_their_other_defaults(tmp_path):
    """Files from before activated adapters or early stopping still read as those models were trained and scored."""
    from core.titles.generator import GeneratorSettings

    s = GeneratorSettings.read(without(tmp_path, ("activated", "shared_layers", "early_stopping")))
    assert (s.activated, s.shared_layers, s.early_stopping, s.num_beams) == (False, 12, False, 4)


def test_every_shipped_settings_file_says_how_to_decode():
    from core.titles.generator import REQUIRED_DECODING, GeneratorSettings

    files = sorted((ROOT / "assets" / "models").rglob("title_generator.json"))
    assert len(files) >= 3
    for f in files:
        assert set(REQUIRED_DECODING) <= set(json.loads(f.read_text())), f
        assert GeneratorSettings.read(f.parent).num_beams >= 1


class Fixed:
    """A title generator that writes one title per model: enough of the interface for the Engine."""

    def __init__(self, names):
        from core.titles.generator import GeneratorSettings

        self.names, self.tokenizer = tuple(names), None
        self.settings = {n: GeneratorSettings() for n in names}

    def titles(self, text, names=None, language=None, stars=None):
        return {n: f"{n} title" for n in names or self.names}

    def add(self, name, model_dir):
        raise NotImplementedError

    def needs_language(self, names):
        return False

    def needs_stars(self, names):
        return False

    def describe(self):
        from core.titles.generator import GeneratorInfo

        return GeneratorInfo("fixed", "none", False, "none", True, {})


def test_the_engine_takes_another_generator_for_a_block_and_gives_it_back(engine):
    from core.titles.generator import TitleGenerator

    fixed = Fixed(engine.names)
    assert isinstance(fixed, TitleGenerator) and isinstance(engine.generator, TitleGenerator)
    mine = engine.generator
    with engine.use_generator(fixed):
        rows = engine.run(["Great lamp, bright and cheap."])
    assert engine.generator is mine
    assert {n: rows[n][0]["title"] for n in engine.names} == {n: f"{n} title" for n in engine.names}
    assert all(rows[n][0]["encoder_decoder_title"] for n in engine.names)  # the seed titles still come


def test_dev_scoring_counts_titles_as_the_report_does():
    """Training's dev scores and the report share one definition: titles differing only in case or punctuation
    are the same title."""
    from core.data import Review
    from core.evaluate import title_block
    from core.titles import scoring

    hyps = ["Great lamp!", "great lamp", "Tolle Lampe, sehr hell", "Broke after two days"]
    rows = [Review(language="en", title="A lamp", body="A lamp review.", stars=4, polarity="positive",
                   source="x", split="dev", uid=str(i)) for i in range(len(hyps))]
    block = title_block(rows, {str(i): h for i, h in enumerate(hyps)}, set(), "en")
    assert scoring.distinct(hyps) == block["distinct"] and block["distinct"]["rate"] == 0.75
    assert scoring.most_repeated(hyps) == block["most_repeated"] == {"title": "Great lamp!", "count": 2}
    shares = scoring.language_shares(scoring.title_languages(hyps, "en"), "en", ("in_input_language", "in_english"))
    assert shares == {k: block[k] for k in shares}
