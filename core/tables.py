"""Reading whatever table of reviews a user has: the room that knows files, encodings, delimiters and columns.

Input is a CSV exported from Excel (often cp1252 with semicolons), a UTF-16 file from another tool, or a few reviews
pasted one per line. Every way such a file can be unusable ends in a ``DataError`` whose message says what is wrong
and how to fix it, and every row that will not be scored is listed with a reason: a comparison that quietly loses rows
would misstate both models. Row numbers (the index of ``TableRead.df``, ``"row"`` in ``skipped``) are 0-based
positions among the data rows (the header is not a row), so a user can line the output up with the input.
No models and no Gradio here: ``core.batch`` scores what this reads.
"""
from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import pandas as pd

from .csv_safety import unescape_column
from .data import DataError
from .review_text import MAX_CHARS

MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 20000
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
    """A table ready to score: ``df`` holds only the rows that will be scored, indexed by their 0-based row number in
    the input; ``skipped`` lists every other row with the reason, so no row goes missing unexplained; ``notes`` are
    what the user should know about how the file was read (encoding guessed, rows over the limit)."""

    df: pd.DataFrame
    column: str
    skipped: list[dict] = field(default_factory=list)  # {"row": int, "reason": str}
    notes: list[str] = field(default_factory=list)
    refs: dict[str, str] = field(default_factory=dict)  # "stars"|"polarity"|"title"|"language" -> column name


# ----------------------------------------------------------------------------- bytes -> text
def _load_bytes(source: str | Path | bytes) -> tuple[bytes, str]:
    """Raw bytes and a name for messages. The size is checked before anything is read so a huge upload fails at once
    instead of filling memory."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "the uploaded file"
        if len(data) > MAX_BYTES:
            raise DataError(f"{name} is {len(data) / 2**20:.1f} MiB; the limit is {MAX_BYTES // 2**20} MiB. "
                            "Split it into smaller files.")
        return data, name
    path = Path(source)
    name = path.name or str(path)  # the name only: a server must not show its upload folder to visitors
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
    """UTF-16 text without a BOM has a NUL in every other byte (for Latin-script text); recognising it beats calling a
    perfectly good export 'binary'."""
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.1 * len(odd):
        return "utf-16-be"
    return None


def decode_bytes(data: bytes, name: str = "the file") -> tuple[str, list[str]]:
    """Decode a CSV's bytes: UTF-8 (BOM or not), UTF-16 (BOM, or the NUL pattern), else Windows-1252/latin-1, which
    never fails and is what Excel writes on Western systems, so that case gets a note. Binary files are refused by
    their magic number or NUL bytes."""
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
    """The first records of the sample as the csv module splits them (quotes and newlines in cells respected). The
    last record of a cut sample may be partial, so it is dropped."""
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
    """Pick comma, semicolon or tab: the one that splits the header into more than one column and gives the most rows
    the header's width. csv.Sniffer is not used because it guesses letters or spaces as delimiters on free text.
    Returns (None, 1) for a one-column file. Refuses absurdly wide files here, on a sample, before pandas builds
    100,000 columns."""
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
    return (None, 1) if best is None else (best[2], best[1])


def _delimiter_name(d: str | None) -> str:
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(d or "", "nothing")


def _parse(text: str, delimiter: str | None, name: str, header: bool = True, rows: int = MAX_ROWS):
    """pandas' C parser on the decoded text, every cell as a string.

    The header is read as an ordinary row (header=None) on purpose: then a row with more cells than the header is a
    parser error with its line number, where pandas would otherwise drop the extra cells with only a warning or shift
    them into an index. Blank lines are kept (as empty rows) so they are reported as skipped, not dropped. At most
    2 × `rows` data rows are parsed: a huge file costs no more than a file at the row limit.
    """
    sep = delimiter or "\x1f"  # one column: a separator that never occurs in text
    text = re.sub(r"\A(?:[ \t]*\r?\n)+", "", text)  # blank lines above the header
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False, skip_blank_lines=False,
                         engine="c", header=None, nrows=2 * rows + 1)
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
    s = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v).strip()
    return not s or s.casefold() in MISSING_MARKERS


def _is_number(v) -> bool:
    return bool(_NUMERIC.fullmatch(str(v).strip()))


def _find(columns: Iterable[str], wanted: Iterable[str]) -> str | None:
    """The first column whose name matches one of ``wanted`` case- and space-insensitively."""
    norm = {str(c).strip().casefold(): c for c in reversed(list(columns))}
    return next((norm[w] for w in wanted if w in norm), None)


def reference_columns(df: pd.DataFrame, text_column: str | None = None) -> dict[str, str]:
    """Columns holding reference labels a user's file may carry (stars, polarity, title, language), found by name,
    case-insensitively. The text column is never a reference."""
    cols = [c for c in df.columns if c != text_column]
    found = {kind: _find(cols, names) for kind, names in (("stars", STARS_COLUMNS), ("polarity", POLARITY_COLUMNS),
                                                          ("title", TITLE_COLUMNS), ("language", LANGUAGE_COLUMNS))}
    return {kind: c for kind, c in found.items() if c is not None}


def parse_stars(v) -> int | None:
    """1..5 as an int ("4", "4.0"); anything else (4.5, 0, 10, "good") is missing, not guessed."""
    if _is_blank(v):
        return None
    try:
        f = float(str(v).strip().replace(",", "."))
    except ValueError:
        return None
    return int(f) if f.is_integer() and 1 <= f <= 5 else None


_POS = {"positive", "pos", "positiv", "1", "+1", "1.0", "+1.0", "true"}
_NEG = {"negative", "neg", "negativ", "-1", "-1.0", "false"}


def parse_polarity(v, zero_is_negative: bool = True) -> str | None:
    """positive/negative from the usual spellings. 0 is ambiguous: in a 0/1 column it means negative, in a -1/0/1
    column neutral (no polarity); the caller says which."""
    if _is_blank(v):
        return None
    s = str(v).strip().casefold()
    if s in _POS:
        return "positive"
    if s in _NEG or (zero_is_negative and s in ("0", "0.0")):
        return "negative"
    return None


def _polarity_zero_is_negative(values: Iterable) -> bool:
    return not any(str(v).strip() in ("-1", "-1.0") for v in values if not _is_blank(v))


def reference_values(read: TableRead, refs: dict[str, str]) -> dict[str, object]:
    """The user's labels in `refs`' columns as `ref_<kind>` values, one per row of `read.df`, parsed by the rules the
    notes about them were counted with (`_finish`), so a value called missing there is missing in the output."""
    out: dict[str, object] = {}
    if "stars" in refs:
        out["ref_stars"] = pd.array([parse_stars(v) for v in read.df[refs["stars"]].tolist()], dtype="Int64")
    if "polarity" in refs:
        raw = read.df[refs["polarity"]].tolist()
        z = _polarity_zero_is_negative(raw)
        out["ref_polarity"] = [parse_polarity(v, z) for v in raw]
    for kind in ("title", "language"):
        if kind in refs:
            out[f"ref_{kind}"] = ["" if _is_blank(v) else str(v).strip() for v in read.df[refs[kind]].tolist()]
    return out


def guess_text_column(df: pd.DataFrame, name: str = "the file") -> str:
    """The review column: a known name first, else the only column, else the column with the longest average text
    among those that hold words (IDs and numbers are short or numeric). Reference columns (stars, labels, language)
    are passed over when anything else qualifies."""
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
        raise DataError(f"{name}: no column holds review text. Columns found: {column_list(cols)}. Name the text "
                        f"column one of {', '.join(TEXT_COLUMN_GUESSES)}, or choose it (--column).")
    return max(scored, key=lambda t: (t[0], t[1]))[2]


def column_list(cols: list, limit: int = 20) -> str:
    """Column names for a message, cut at `limit`: a wide file's full list would bury what the message says."""
    shown = ", ".join(repr(str(c)) for c in cols[:limit])
    return shown + (f" and {len(cols) - limit} more" if len(cols) > limit else "") if cols else "(none)"


def _finish(df: pd.DataFrame, column: str, notes: list[str], name: str, rows: int = MAX_ROWS) -> TableRead:
    """Split rows into those to score and those skipped (with reasons), stop at `rows` reviews (nothing after them
    is visited; `_parse` read at most 2 × `rows`), and note the reference columns found."""
    vals = df[column].tolist()
    skipped: list[dict] = []
    keep: list[int] = []
    for i, v in enumerate(vals):
        if len(keep) == rows:
            notes.append(f"Only the first {len(keep):,} reviews were read; the rest of the file was not (a limit of "
                         f"{rows:,} reviews per file). Split the file to score the rest.")
            break
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
                        f"Columns found: {column_list(list(df.columns))}; choose the text column (--column).")
    if not keep:
        raise DataError(f"{name}: no reviews to score: the text column {str(column)!r} is empty in every row"
                        + (f" ({len(skipped)} rows)" if skipped else ", the file has a header but no rows"))
    out = df.iloc[keep].copy()
    out.index = pd.Index(keep, name="row")
    long = sum(len(str(v)) > MAX_CHARS for v in out[column].tolist())
    if long:
        notes.append(f"{long} review(s) are longer than {MAX_CHARS:,} characters and were cut; the models read "
                     "only the first few hundred words of any review.")
    if skipped:
        notes.append(f"{len(skipped)} row(s) were skipped because their text is empty (listed under skipped).")
    read = TableRead(df=out, column=column, skipped=skipped, notes=notes, refs=reference_columns(out, column))
    parsed = reference_values(read, read.refs)
    for kind, valid in (("stars", "whole numbers 1-5"), ("polarity", "positive/negative")):
        if kind in read.refs:
            raw = out[read.refs[kind]].tolist()
            bad = sum(not _is_blank(v) and pd.isna(p) for v, p in zip(raw, parsed[f"ref_{kind}"]))
            zero = kind == "polarity" and _polarity_zero_is_negative(raw) and any(str(v).strip() == "0" for v in raw)
            notes.append(f"Reference {kind} from column {read.refs[kind]!r}"
                         + (" (0 read as negative)" if zero else "")
                         + (f"; {bad} value(s) that are not {valid} count as missing." if bad else "."))
    return read


def read_table(source: str | Path | bytes, column: str | None = None, rows: int = MAX_ROWS) -> TableRead:
    """Read a CSV of reviews (a path or the raw bytes of an upload) and pick the text column.

    Raises DataError with a message meant for the user for every unusable file: empty, too large, binary, malformed,
    too wide, no text column, a missing or numbers-only column. At most `rows` reviews are read.
    """
    data, name = _load_bytes(source)
    text, notes = decode_bytes(data, name)
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        raise DataError(f"{name}: looks like JSON, not CSV. Save the reviews as a CSV table with a header row.")
    if stripped[:200].casefold().startswith(("<!doctype html", "<html", "<?xml")):
        raise DataError(f"{name}: looks like an HTML/XML page, not a CSV file")
    delimiter, _ = sniff_delimiter(text, name)
    df = _parse(text, delimiter, name, rows=rows)
    if len(df.columns) > MAX_COLUMNS:
        raise DataError(f"{name}: {len(df.columns):,} columns; a review table should have at most {MAX_COLUMNS:,}")
    if delimiter is None and len(df.columns) == 1 and column is None:
        head = str(df.columns[0]).strip()
        if _find([head], TEXT_COLUMN_GUESSES) is None and (len(head) > 40 or len(head.split()) >= 4):
            # A one-column file whose first line reads like a review has no header: keep that line.
            df = _parse(text, None, name, header=False, rows=rows)
            notes.append("The file has one column and its first line looks like a review, so it was read "
                         "without a header (column 'text').")
    elif delimiter and delimiter != ",":
        notes.append(f"Cells are separated by {_delimiter_name(delimiter)}.")
    df = df.apply(unescape_column)  # a cell this lab escaped for spreadsheets reads back as it was
    cols = list(df.columns)
    if column is not None:
        chosen = column if column in cols else _find(cols, [str(column).strip().casefold()])
        if chosen is None:
            raise DataError(f"{name}: there is no column {column!r}. Columns found: {column_list(cols)}.")
    else:
        chosen = guess_text_column(df, name)
        if _find([chosen], TEXT_COLUMN_GUESSES) is None and len(cols) > 1:
            notes.append(f"Review text was taken from column {str(chosen)!r} (the longest text); "
                         "choose another column if that is wrong.")
    return _finish(df, chosen, notes, name, rows)


def lines_table(text: str, rows: int = MAX_ROWS) -> TableRead:
    """Pasted text: one review per non-empty line (blank lines only separate reviews, so they are not reported as
    skipped). Column 'text'."""
    text = str(text or "")
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise DataError(f"the pasted text is over {MAX_BYTES // 2**20} MiB; upload a CSV file or split it")
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if ln.strip()]
    if not lines:
        raise DataError("no reviews: paste one review per line")
    return _finish(pd.DataFrame({"text": lines[: rows + 1]}), "text", [], "the pasted text", rows)
