"""The title generators' declared interface: one way to swap a generator into the Engine, and one definition of
the dev/test title scores."""


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
