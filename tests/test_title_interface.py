"""The title generators' declared interface: one way to swap a generator into the Engine."""


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
