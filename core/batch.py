"""Batch comparison: run both review models over a table of reviews and summarise where they differ.

Input is whatever a user has at hand: a CSV exported from Excel (often cp1252 with
semicolons), a UTF-16 file from another tool, or a few reviews pasted one per line.
Every way such a file can be unusable ends in a ``DataError`` whose message says
what is wrong and how to fix it, and every row that is not scored is listed with a
reason: a comparison that quietly loses rows would misstate both models.

Row numbers (``row`` in the predictions, ``"row"`` in ``skipped``) are 0-based
positions among the data rows of the input (the header is not a row), so a user can
line the output up with the input table.

No Gradio here: the CLI, the app and the tests all share these functions.
"""
from __future__ import annotations

import csv
import io
import math
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from . import langid
from .data import DataError, length_batches, stars_to_polarity
from .inference import MAX_CHARS, prepare_text

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 20000
# With titles, a review costs about a second on 2 CPU cores (`python -m bench`: both generators, both models); the
# page takes at most as many rows as finish in about ten minutes, so one upload cannot hold a shared Space for an
# hour. Ratings only (encoder speed) and the command line have no such cap.
TITLED_ROWS_ON_PAGE = 500
MAX_COLUMNS = 1000  # a review table has a handful; far wider files are not review tables and are slow to parse
TEXT_COLUMN_GUESSES = ("review_body", "body", "text", "review")
STARS_COLUMNS = ("stars", "rating", "star_rating")
POLARITY_COLUMNS = ("polarity", "label", "sentiment")
TITLE_COLUMNS = ("review_title", "title")
LANGUAGE_COLUMNS = ("language", "lang")
DELIMITERS = (",", ";", "\t")
SNIFF_CHARS = 64 * 1024
SNIFF_RECORDS = 50
MISSING_MARKERS = frozenset({"nan", "null", "none", "n/a", "na", "#n/a"})  # what spreadsheets write for "no value"

# Magic numbers of files people upload by mistake, with what to do instead.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one): export the sheet as CSV"),
    (b"PK\x05\x06", "an empty ZIP archive, not a CSV file"),
    (b"\xd0\xcf\x11\xe0", "an old Excel/Office document: export the sheet as CSV"),
    (b"\x89PNG", "a PNG image, not a CSV file"),
    (b"\xff\xd8\xff", "a JPEG image, not a CSV file"),
    (b"GIF8", "a GIF image, not a CSV file"),
    (b"%PDF", "a PDF document, not a CSV file"),
    (b"\x1f\x8b", "a gzip-compressed file: decompress it first"),
    (b"BZh", "a bzip2-compressed file: decompress it first"),
    (b"\xfd7zXZ", "an xz-compressed file: decompress it first"),
    (b"7z\xbc\xaf", "a 7-Zip archive: extract the CSV first"),
    (b"SQLite format 3\x00", "an SQLite database, not a CSV file"),
)
_NUMERIC = re.compile(r"[\d\s.,:+\-/%()€$£]*\d[\d\s.,:+\-/%()€$£eE]*")


@dataclass
class TableRead:
    """A table ready to score.

    ``df`` holds only the rows that will be scored, indexed by their 0-based row number in
    the input; ``skipped`` lists every other row with the reason; ``notes`` are things the
    user should know about how the file was read (encoding guessed, rows over the limit).
    """

    df: pd.DataFrame
    column: str
    skipped: list[dict] = field(default_factory=list)  # {"row": int, "reason": str}
    notes: list[str] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # "stars"|"polarity"|"title"|"language" -> column name


# ----------------------------------------------------------------------------- bytes -> text
def _load_bytes(source: str | Path | bytes) -> tuple[bytes, str]:
    """Raw bytes and a name for messages. The size is checked before anything is read so a
    huge upload fails at once instead of filling memory."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_BYTES:
            raise DataError(f"the uploaded file is {len(data) / 2**20:.1f} MiB; the limit is "
                            f"{MAX_BYTES // 2**20} MiB. Split it into smaller files.")
        return data, "the uploaded file"
    path = Path(source)
    name = str(path)
    if not path.exists():
        raise DataError(f"{name}: file not found")
    if not path.is_file():
        raise DataError(f"{name}: not a file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DataError(f"{name}: the file is {size / 2**20:.1f} MiB; the limit is {MAX_BYTES // 2**20} MiB. "
                        "Split it into smaller files.")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise DataError(f"{name}: cannot read the file ({exc.strerror or exc})") from exc
    if len(data) > MAX_BYTES:
        raise DataError(f"{name}: the file is over the {MAX_BYTES // 2**20} MiB limit")
    return data, name


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text without a BOM has a NUL in every other byte (for Latin-script text);
    recognising it beats calling a perfectly good export 'binary'."""
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "utf-16-be"
    return None


def decode_bytes(data: bytes, name: str = "the file") -> tuple[str, list[str]]:
    """Decode a CSV's bytes: UTF-8 (BOM or not), UTF-16 (BOM, or the NUL pattern), else
    Windows-1252/latin-1, which never fails and is what Excel writes on Western systems,
    so that case gets a note. Binary files are refused by their magic number or NUL bytes."""
    notes: list[str] = []
    if not data.strip(b" \t\r\n\x00") or data in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{name}: the file is empty")
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise DataError(f"{name}: this is {what}.")
    head = data[:4096]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: starts like UTF-16 text but is not valid UTF-16 ({exc.reason})") from exc
    elif b"\x00" in head and not data.startswith(b"\xef\xbb\xbf"):
        enc = _utf16_without_bom(head)
        if enc is None:
            raise DataError(f"{name}: looks like a binary file (it contains NUL bytes), not a CSV text file")
        try:
            text = data.decode(enc)
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: looks like a binary file, not a CSV text file") from exc
        notes.append(f"The file has no byte-order mark; it was read as {enc.upper()}.")
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                text = data.decode("latin-1")
            notes.append("The file is not valid UTF-8, so it was decoded as latin-1 (Windows-1252). "
                         "If accented letters look wrong, save the file as UTF-8 and upload it again.")
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise DataError(f"{name}: the file is empty")
    sample = text[:SNIFF_CHARS]
    control = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r")
    if control > max(2, 0.02 * len(sample)):
        raise DataError(f"{name}: looks like a binary file (many control characters), not a CSV text file")
    if "\x00" in text:
        text = text.replace("\x00", "")
        notes.append("NUL characters in the file were removed.")
    return text, notes


# ----------------------------------------------------------------------------- text -> table
def _records(sample: str, delimiter: str, complete: bool) -> list[list[str]]:
    """The first records of the sample as the csv module splits them (quotes and newlines in
    cells respected). The last record of a cut sample may be partial, so it is dropped."""
    out: list[list[str]] = []
    try:
        for rec in csv.reader(io.StringIO(sample), delimiter=delimiter):
            out.append(rec)
            if len(out) > SNIFF_RECORDS:
                break
    except csv.Error:
        pass
    if not complete and len(out) > 1 and len(out) <= SNIFF_RECORDS:
        out.pop()
    return [r for r in out if any(c.strip() for c in r)]


def sniff_delimiter(text: str, name: str = "the file") -> tuple[str | None, int]:
    """Pick comma, semicolon or tab: the one that splits the header into more than one column
    and gives the most rows the header's width. csv.Sniffer is not used because it guesses
    letters or spaces as delimiters on free text. Returns (None, 1) for a one-column file.
    Refuses absurdly wide files here, on a sample, before pandas builds 100,000 columns."""
    complete = len(text) <= SNIFF_CHARS
    sample = text if complete else text[:SNIFF_CHARS]
    best: tuple[float, int, str] | None = None
    for d in DELIMITERS:
        recs = _records(sample, d, complete)
        if not recs:
            continue
        width = len(recs[0])
        if width > MAX_COLUMNS:
            raise DataError(f"{name}: the header has {'at least ' if not complete else ''}{width:,} columns "
                            f"(separated by {_delimiter_name(d)}); a review table should have at most "
                            f"{MAX_COLUMNS:,}. Is this the right file?")
        if width < 2:
            continue
        fit = sum(len(r) == width for r in recs) / len(recs)
        key = (fit, width, d)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        return None, 1
    return best[2], best[1]


def _delimiter_name(d: str | None) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(d or "", "nothing")


def _parse(text: str, delimiter: str | None, name: str, header: bool = True) -> pd.DataFrame:
    """pandas' C parser on the decoded text, every cell as a string.

    The header is read as an ordinary row (header=None) on purpose: then a row with more
    cells than the header is a parser error with its line number, where pandas would
    otherwise drop the extra cells with only a warning or shift them into an index.
    Blank lines are kept (as empty rows) so they are reported as skipped, not dropped.
    """
    sep = delimiter or "\x1f"  # one column: a separator that never occurs in text
    text = re.sub(r"\A(?:[ \t]*\r?\n)+", "", text)  # blank lines above the header
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=False,
                         engine="c", header=None)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{name}: the file is empty") from exc
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        detail = str(exc).strip().replace("Error tokenizing data. C error: ", "").rstrip(".")
        if "Expected" in detail and "line" in detail:
            detail += " (a row has more cells than the header)"
        raise DataError(f"{name}: malformed CSV: {detail}. Check that every row has as many cells "
                        f"(separated by {_delimiter_name(delimiter)}) as the header and that quotes "
                        "are closed.") from exc
    if not header:
        df.columns = ["text"]
        return df
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, v in enumerate(df.iloc[0].tolist() if len(df) else []):
        c = "" if _is_blank(v) and not str(v if isinstance(v, str) else "").strip() else str(v).strip()
        c = c or f"Unnamed: {i}"
        if c in seen:  # duplicate names get .1, .2 like pandas does, so each stays addressable
            seen[c] += 1
            c = f"{c}.{seen[c]}"
        else:
            seen[c] = 0
        names.append(c)
    df = df.iloc[1:].reset_index(drop=True)
    df.columns = names
    return df


def _is_blank(v) -> bool:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return True
    s = str(v).strip()
    return not s or s.casefold() in MISSING_MARKERS


def _is_number(v) -> bool:
    return bool(_NUMERIC.fullmatch(str(v).strip()))


def _find(columns: Iterable[str], wanted: Iterable[str]) -> str | None:
    """The first column whose name matches one of ``wanted`` case- and space-insensitively."""
    norm = {str(c).strip().casefold(): c for c in reversed(list(columns))}
    for w in wanted:
        if w in norm:
            return norm[w]
    return None


def reference_columns(df: pd.DataFrame, text_column: str | None = None) -> dict[str, str]:
    """Columns holding reference labels a user's file may carry (stars, polarity, title,
    language), found by name, case-insensitively. The text column is never a reference."""
    cols = [c for c in df.columns if c != text_column]
    out = {}
    for kind, names in (("stars", STARS_COLUMNS), ("polarity", POLARITY_COLUMNS), ("title", TITLE_COLUMNS),
                        ("language", LANGUAGE_COLUMNS)):
        c = _find(cols, names)
        if c is not None:
            out[kind] = c
    return out


def parse_stars(v) -> int | None:
    """1..5 as an int ("4", "4.0"); anything else (4.5, 0, 10, "good") is missing, not guessed."""
    if _is_blank(v):
        return None
    try:
        f = float(str(v).strip().replace(",", "."))
    except ValueError:
        return None
    if not f.is_integer() or not 1 <= f <= 5:
        return None
    return int(f)


_POS = {"positive", "pos", "positiv", "1", "+1", "1.0", "+1.0", "true"}
_NEG = {"negative", "neg", "negativ", "-1", "-1.0", "false"}


def parse_polarity(v, zero_is_negative: bool = True) -> str | None:
    """positive/negative from the usual spellings. 0 is ambiguous: in a 0/1 column it means
    negative, in a -1/0/1 column neutral (no polarity); the caller says which."""
    if _is_blank(v):
        return None
    s = str(v).strip().casefold()
    if s in _POS:
        return "positive"
    if s in _NEG:
        return "negative"
    if s in ("0", "0.0"):
        return "negative" if zero_is_negative else None
    return None


def _polarity_zero_is_negative(values: Iterable) -> bool:
    return not any(str(v).strip() in ("-1", "-1.0") for v in values if not _is_blank(v))


def guess_text_column(df: pd.DataFrame, name: str = "the file") -> str:
    """The review column: a known name first, else the only column, else the column with the
    longest average text among those that hold words (IDs and numbers are short or numeric).
    Reference columns (stars, labels, language) are passed over when anything else qualifies."""
    cols = list(df.columns)
    hit = _find(cols, TEXT_COLUMN_GUESSES)
    if hit is not None:
        return hit
    if len(cols) == 1:
        return cols[0]
    refs = set(reference_columns(df).values())
    scored = []
    for c in cols:
        vals = [str(v) for v in df[c].tolist() if not _is_blank(v)]
        if not vals or all(_is_number(v) for v in vals):
            continue
        scored.append((c not in refs, sum(len(v) for v in vals) / len(vals), c))
    if not scored:
        raise DataError(f"{name}: no column holds review text. Columns found: {_list(cols)}. Name the text "
                        f"column one of {', '.join(TEXT_COLUMN_GUESSES)}, or choose it (--column).")
    return max(scored, key=lambda t: (t[0], t[1]))[2]


def _list(cols: list, limit: int = 20) -> str:
    shown = ", ".join(repr(str(c)) for c in cols[:limit])
    return shown + (f" and {len(cols) - limit} more" if len(cols) > limit else "") if cols else "(none)"


def _finish(df: pd.DataFrame, column: str, notes: list[str], name: str, allow_empty_error: bool = True) -> TableRead:
    """Split rows into those to score and those skipped (with reasons), cap at MAX_ROWS, and
    note the reference columns found."""
    vals = df[column].tolist()
    skipped: list[dict] = []
    keep: list[int] = []
    for i, v in enumerate(vals):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            skipped.append({"row": i, "reason": "the text cell is missing (row shorter than the header)"})
        elif not str(v).strip():
            blank_line = all(x is None or (isinstance(x, float) and math.isnan(x)) or not str(x).strip()
                             for x in df.iloc[i].tolist())
            skipped.append({"row": i, "reason": "blank line" if blank_line else "the text cell is empty"})
        elif str(v).strip().casefold() in MISSING_MARKERS:
            skipped.append({"row": i, "reason": f"the text cell only says {str(v).strip()!r} (no review)"})
        else:
            keep.append(i)
    nonblank = [vals[i] for i in keep]
    if nonblank and all(_is_number(v) for v in nonblank):
        raise DataError(f"{name}: column {str(column)!r} contains only numbers, not review text. "
                        f"Columns found: {_list(list(df.columns))}; choose the text column (--column).")
    if not keep:
        raise DataError(f"{name}: no reviews to score: the text column {str(column)!r} is empty in every row"
                        + (f" ({len(skipped)} rows)" if skipped else ", the file has a header but no rows"))
    if len(keep) > MAX_ROWS:
        notes.append(f"Only the first {MAX_ROWS:,} reviews were scored; {len(keep) - MAX_ROWS:,} rows were not "
                     "processed (row limit). Split the file to score the rest.")
        keep = keep[:MAX_ROWS]
    out = df.iloc[keep].copy()
    out.index = pd.Index(keep, name="row")
    long = sum(len(str(v)) > MAX_CHARS for v in out[column].tolist())
    if long:
        notes.append(f"{long} review(s) are longer than {MAX_CHARS:,} characters and were cut; the models read "
                     "only the first few hundred words of any review.")
    if skipped:
        notes.append(f"{len(skipped)} row(s) were skipped because their text is empty (listed under skipped).")
    refs = reference_columns(out, column)
    if "stars" in refs:
        raw = out[refs["stars"]].tolist()
        bad = sum(not _is_blank(v) and parse_stars(v) is None for v in raw)
        notes.append(f"Reference stars from column {refs['stars']!r}"
                     + (f"; {bad} value(s) that are not whole numbers 1-5 count as missing." if bad else "."))
    if "polarity" in refs:
        raw = out[refs["polarity"]].tolist()
        z = _polarity_zero_is_negative(raw)
        bad = sum(not _is_blank(v) and parse_polarity(v, z) is None for v in raw)
        notes.append(f"Reference polarity from column {refs['polarity']!r}"
                     + (" (0 read as negative)" if z and any(str(v).strip() == "0" for v in raw) else "")
                     + (f"; {bad} value(s) that are not positive/negative count as missing." if bad else "."))
    return TableRead(df=out, column=column, skipped=skipped, notes=notes, refs=refs)


def read_table(source: str | Path | bytes, column: str | None = None) -> TableRead:
    """Read a CSV of reviews (a path or the raw bytes of an upload) and pick the text column.

    Raises DataError with a message meant for the user for every unusable file: empty, too
    large, binary, malformed, too wide, no text column, a missing or numbers-only column.
    """
    data, name = _load_bytes(source)
    text, notes = decode_bytes(data, name)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        raise DataError(f"{name}: looks like JSON, not CSV. Save the reviews as a CSV table with a header row.")
    if stripped[:200].casefold().startswith(("<!doctype html", "<html", "<?xml")):
        raise DataError(f"{name}: looks like an HTML/XML page, not a CSV file")
    delimiter, _ = sniff_delimiter(text, name)
    df = _parse(text, delimiter, name)
    if len(df.columns) > MAX_COLUMNS:
        raise DataError(f"{name}: {len(df.columns):,} columns; a review table should have at most {MAX_COLUMNS:,}")
    if delimiter is None and len(df.columns) == 1 and column is None:
        head = str(df.columns[0]).strip()
        if _find([head], TEXT_COLUMN_GUESSES) is None and (len(head) > 40 or len(head.split()) >= 4):
            # A one-column file whose first line reads like a review has no header: keep that line.
            df = _parse(text, None, name, header=False)
            notes.append("The file has one column and its first line looks like a review, so it was read "
                         "without a header (column 'text').")
    elif delimiter and delimiter != ",":
        notes.append(f"Cells are separated by {_delimiter_name(delimiter)}.")
    cols = list(df.columns)
    if column is not None:
        if column in cols:
            chosen = column
        else:
            hit = _find(cols, [str(column).strip().casefold()])
            if hit is None:
                raise DataError(f"{name}: there is no column {column!r}. Columns found: {_list(cols)}.")
            chosen = hit
    else:
        chosen = guess_text_column(df, name)
        if _find([chosen], TEXT_COLUMN_GUESSES) is None and len(cols) > 1:
            notes.append(f"Review text was taken from column {str(chosen)!r} (the longest text); "
                         "choose another column if that is wrong.")
    return _finish(df, chosen, notes, name)


def lines_table(text: str) -> TableRead:
    """Pasted text: one review per non-empty line (blank lines only separate reviews, so they
    are not reported as skipped). Column 'text'."""
    text = str(text or "")
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise DataError(f"the pasted text is over {MAX_BYTES // 2**20} MiB; upload a CSV file or split it")
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise DataError("no reviews: paste one review per line")
    return _finish(pd.DataFrame({"text": lines}), "text", [], "the pasted text")


# ----------------------------------------------------------------------------- predictions
def prediction_columns(names: Iterable[str], refs: Iterable[str] = ()) -> list[str]:
    """The columns predict_table returns, in order; the CLI's output CSV has the same. `{m}_title` is the
    pretrained generator's title, `{m}_encoder_decoder_title` the seed's encoder-decoder's."""
    cols = ["row", "text", "language"]
    for m in names:
        cols += [f"{m}_stars", f"{m}_polarity", f"{m}_title", f"{m}_title_language",
                 f"{m}_accidental_translation", f"{m}_copied", f"{m}_seen_in_training",
                 f"{m}_encoder_decoder_title", f"{m}_encoder_decoder_title_language"]
    refs = set(refs)
    cols += [f"ref_{k}" for k in ("stars", "polarity", "title", "language") if k in refs]
    return cols


def limit_titled_rows(read: TableRead, limit: int = TITLED_ROWS_ON_PAGE) -> tuple[TableRead, str]:
    """The first `limit` rows of `read`, and a note saying why and where the rest can be done ("" if all fit)."""
    n = len(read.df)
    if n <= limit:
        return read, ""
    cut = TableRead(df=read.df.iloc[:limit], column=read.column, notes=list(read.notes),
                    skipped=list(read.skipped), refs=dict(read.refs))
    return cut, (f"With titles on, the page compares the first {limit:,} of {n:,} reviews (about ten minutes on "
                 "this machine). For all of them, switch on 'ratings only', or run "
                 "`python -m core predict --csv your.csv --out out.csv`.")


def predict_table(read: TableRead, engine=None, batch_size: int = 16,
                  progress: Callable[[int, int], None] | None = None, titles: bool = True) -> pd.DataFrame:
    """Both models on every row of ``read``; one output row per input row, in input order.

    Rows are batched by length so padding stays small (`data.length_batches`). The trunk runs once per batch for
    both models (Engine.run), and each row's badge logic is the same as the single-review
    contract's (Engine.model_output), so a row here matches what ``compare`` says.
    """
    from .models import words

    if engine is None:
        from .inference import get_engine

        engine = get_engine()
    names = tuple(engine.names)
    refs = read.refs or reference_columns(read.df, read.column)
    texts = [prepare_text(v)[0] for v in read.df[read.column].tolist()]
    rows_idx = [int(i) for i in read.df.index.tolist()]
    total = len(texts)
    results: list[dict | None] = [None] * total
    done = 0
    for chunk in length_batches(texts, max(1, int(batch_size))):
        langs = [langid.detect(texts[i]).language for i in chunk]
        out = engine.run([texts[i] for i in chunk], titles=titles, languages=langs)
        for j, i in enumerate(chunk):
            lang = langs[j]
            rec: dict = {"row": rows_idx[i], "text": texts[i], "language": lang}
            for m in names:
                o = engine.model_output(m, out[m][j], lang, texts[i])
                rec[f"{m}_stars"] = o.stars
                rec[f"{m}_polarity"] = o.polarity
                rec[f"{m}_title"] = o.title
                rec[f"{m}_title_language"] = o.title_language
                rec[f"{m}_accidental_translation"] = o.title_badge == "accidental_translation"
                rec[f"{m}_copied"] = bool(words(o.title)) and o.title_copied_share >= 1.0
                rec[f"{m}_seen_in_training"] = bool(o.title_seen_in_training)
                seed = o.encoder_decoder
                rec[f"{m}_encoder_decoder_title"] = seed.title if seed else ""
                rec[f"{m}_encoder_decoder_title_language"] = seed.title_language if seed else ""
            results[i] = rec
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    df = pd.DataFrame(results, columns=prediction_columns(names, ()))
    if "stars" in refs:
        df["ref_stars"] = pd.array([parse_stars(v) for v in read.df[refs["stars"]].tolist()], dtype="Int64")
    if "polarity" in refs:
        raw = read.df[refs["polarity"]].tolist()
        z = _polarity_zero_is_negative(raw)
        df["ref_polarity"] = [parse_polarity(v, z) for v in raw]
    if "title" in refs:
        df["ref_title"] = ["" if _is_blank(v) else str(v).strip() for v in read.df[refs["title"]].tolist()]
    if "language" in refs:
        df["ref_language"] = ["" if _is_blank(v) else str(v).strip() for v in read.df[refs["language"]].tolist()]
    for m in names:
        df[f"{m}_stars"] = df[f"{m}_stars"].astype("Int64")
        for k in ("accidental_translation", "copied", "seen_in_training"):
            df[f"{m}_{k}"] = df[f"{m}_{k}"].astype(bool)
    return df[prediction_columns(names, refs)]


# ----------------------------------------------------------------------------- summary
def _r(x) -> float:
    return float("nan") if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 3)


def _share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else float("nan")


def _summary_row(g: pd.DataFrame, label: str, names: tuple[str, ...]) -> dict:
    from . import metrics as M

    rec: dict = {"language": label, "n": int(len(g))}
    pols = [g[f"{m}_polarity"].tolist() for m in names]
    rec["polarity_agreement"] = _share([len(set(p)) == 1 for p in zip(*pols)]) if len(names) > 1 else float("nan")
    known = g[g["language"] != "unknown"]
    for m in names:
        titled = known[known[f"{m}_title"].fillna("").astype(str).str.strip() != ""]
        rec[f"{m}_title_in_input_language"] = _share(
            (titled[f"{m}_title_language"] == titled["language"]).tolist())
    has_stars, has_pol, has_title = "ref_stars" in g, "ref_polarity" in g, "ref_title" in g
    if has_stars:
        st = g[g["ref_stars"].notna()]
        rec["n_ref_stars"] = int(len(st))
    if has_stars or has_pol:
        if has_pol:
            gold_pol = [p if isinstance(p, str) and p else None for p in g["ref_polarity"].tolist()]
        else:  # derive it as the training data does: 1-2 stars negative, 4-5 positive, 3 none
            gold_pol = [stars_to_polarity(None if pd.isna(s) else int(s)) for s in g["ref_stars"].tolist()]
        rec["n_ref_polarity"] = sum(p is not None for p in gold_pol)
    if has_title:
        tt = g[g["ref_title"].fillna("").astype(str).str.strip() != ""]
        rec["n_ref_title"] = int(len(tt))
    for m in names:
        if has_stars:
            r = M.stars([int(x) for x in st["ref_stars"].tolist()], [int(x) for x in st[f"{m}_stars"].tolist()])
            rec[f"{m}_star_accuracy"], rec[f"{m}_star_mae"] = _r(r["accuracy"]), _r(r["mae"])
        if has_stars or has_pol:
            pred = g[f"{m}_polarity"].tolist()
            pairs = [(a, b) for a, b in zip(gold_pol, pred) if a is not None]
            r = M.classification([a for a, _ in pairs], [b for _, b in pairs])
            rec[f"{m}_polarity_accuracy"] = _r(r["accuracy"])
        if has_title:
            hyps = tt[f"{m}_title"].fillna("").astype(str).tolist()
            r = M.title_scores(tt["ref_title"].astype(str).tolist(), hyps) if any(h.strip() for h in hyps) else {}
            rec[f"{m}_chrf"] = _r(r.get("chrf"))
    return rec


def summarize(df: pd.DataFrame, names: Iterable[str] = ("en_trained", "de_finetuned")) -> pd.DataFrame:
    """Per detected language (most frequent first) and for "all": how often the two models
    agree on polarity, how often each title is in the review's language, and, where the file
    has references, star accuracy/MAE, polarity accuracy and title chrF per model.

    Rates are shares in [0, 1]; star MAE is in stars; chrF is sacrebleu's 0-100 corpus score.
    All rounded to 3 decimals; NaN where a number has no rows to stand on (e.g. the title
    language of reviews whose own language is unknown). The n_ref_* columns say how many
    rows each reference metric rests on, because a 3-row accuracy is no evidence.
    """
    names = tuple(names)
    counts = df["language"].value_counts()
    langs = sorted(counts.index, key=lambda k: (-int(counts[k]), k == "unknown", str(k)))
    rows = [_summary_row(df[df["language"] == lang], str(lang), names) for lang in langs]
    rows.append(_summary_row(df, "all", names))
    out = pd.DataFrame(rows)
    front = ["language", "n", "polarity_agreement"] + [f"{m}_title_in_input_language" for m in names]
    front += [c for c in ("n_ref_stars", "n_ref_polarity", "n_ref_title") if c in out.columns]
    rest = [f"{m}_{k}" for m in names for k in ("star_accuracy", "star_mae", "polarity_accuracy", "chrf")
            if f"{m}_{k}" in out.columns]
    return out[front + rest]


def _json_safe(records: list[dict]) -> list[dict]:
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v.item() if hasattr(v, "item") else v)
             for k, v in r.items()} for r in records]


def score_labelled(read: TableRead, engine=None, progress: Callable[[int, int], None] | None = None) -> dict:
    """'Score your own data': both models on a file that carries stars or polarity labels.

    Refuses a file without labels up front (before minutes of inference) since there would
    be nothing to score against. The result is JSON-safe (NaN -> None).
    """
    refs = read.refs or reference_columns(read.df, read.column)
    if "stars" not in refs and "polarity" not in refs:
        raise DataError("to score your own data the file needs a stars column (" + ", ".join(STARS_COLUMNS)
                        + ") or a polarity column (" + ", ".join(POLARITY_COLUMNS) + "). Columns found: "
                        + _list([c for c in read.df.columns]) + ".")
    pred = predict_table(read, engine=engine, progress=progress)
    names = [c[: -len("_stars")] for c in pred.columns if c.endswith("_stars") and c != "ref_stars"]
    summary = summarize(pred, names)
    return {"summary": _json_safe(summary.to_dict("records")), "n": int(len(pred)), "skipped": list(read.skipped),
            "notes": list(read.notes), "column": str(read.column), "references": dict(refs)}


# ----------------------------------------------------------------------------- command line
def predict_csv_cli(csv_path: str, column: str | None, out: str | None) -> int:
    """`python -m core predict --csv FILE [--column C] [--out OUT]`: score every row, write the
    predictions CSV, print the summary and what was skipped. Exit 2 on an unusable file."""
    from tqdm.auto import tqdm

    from .models import ModelDirError

    src = Path(csv_path)
    dest = Path(out) if out else src.with_name(f"{src.stem}.predictions.csv")
    try:
        if dest.resolve() == src.resolve():
            raise DataError(f"{dest}: the output would overwrite the input; choose another --out")
        read = read_table(src, column)
        from .inference import get_engine

        engine = get_engine()
        with tqdm(total=len(read.df), unit="review", desc="predict", file=sys.stderr) as bar:
            def step(done: int, total: int) -> None:
                bar.update(done - bar.n)

            pred = predict_table(read, engine=engine, progress=step)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            pred.to_csv(dest, index=False, encoding="utf-8")
        except OSError as exc:
            raise DataError(f"{dest}: cannot write the output ({exc.strerror or exc})") from exc
    except (DataError, ModelDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = summarize(pred, engine.names)
    print(f"{len(pred)} review(s) from {src} (text column {str(read.column)!r}) -> {dest}")
    for n in read.notes:
        print(f"note: {n}")
    print()
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(summary.to_string(index=False))
    if read.skipped:
        print(f"\nskipped {len(read.skipped)} row(s):")
        for s in read.skipped[:50]:
            print(f"  row {s['row']}: {s['reason']}")
        if len(read.skipped) > 50:
            print(f"  ... and {len(read.skipped) - 50} more")
    else:
        print("\nskipped: none")
    return 0
