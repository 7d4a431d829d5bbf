"""CSV files that are safe to open in a spreadsheet, and that read back to the same text.

Why: the lab writes review text and generated titles verbatim, and both come from strangers. A cell that starts with
``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return) is run as a formula by Excel and LibreOffice, so a review
reading ``=HYPERLINK("http://…","click")`` becomes a live link in a teacher's sheet (CSV injection, OWASP). Such a
cell is written with a leading ``'``, which spreadsheets show as text and do not display; ``core.tables`` removes it
again on reading, so the CLI reads its own output back unchanged. Files are written as UTF-8 with a byte-order mark,
the one encoding mark Excel honours, so German umlauts and Chinese open as written.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPED = r"^'(?=[=+\-@\t\r])"  # a quote that `escape` added


def escape(value):
    """`value` with a leading ' when a spreadsheet would read it as a formula; anything else unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(TRIGGERS) else value


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """`df` as a spreadsheet-safe CSV (UTF-8 with BOM; text cells escaped; numbers and flags as they are)."""
    safe = df.copy()
    for col in safe.columns:
        if pd.api.types.is_object_dtype(safe[col]) or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(escape)
    safe.to_csv(path, index=False, encoding="utf-8-sig")


def unescape_column(values: pd.Series) -> pd.Series:
    """The cells as they were before `escape` (text read back from a file this lab wrote)."""
    return values.str.replace(ESCAPED, "", regex=True)
