"""What one job sent from the page or the API may ask of the shared models: one budget for every tab and endpoint.

Why one budget: a Space is shared by a class, and the engine runs one review's titles at a time. Before this, the
Batch tab cut titled jobs to 500 rows but "Score your own data" titled up to 20,000 (hours, holding the engine
against every classmate), and pasted text had no cap of its own. Every job that reaches the models from the page now
passes through `fit`, which cuts it to the budget *before* any model runs and says what was done and how to do the
rest with the command line, which has no budget (it runs on the user's own machine).
"""
from __future__ import annotations

from dataclasses import dataclass

from .settings import current
from .tables import TableRead

CLI_HINT = ("`python -m core predict --csv your.csv --out out.csv` on your own machine has no such limit (only "
            "the 20,000 reviews per file that any read takes)")


@dataclass(frozen=True)
class Budget:
    """Rows one job may score (ratings only: encoder speed) and rows it may title (about a second each on 2 cores).

    Characters per review are not a page setting: every path, the CLI included, reads at most
    `review_text.MAX_CHARS` of a review (`prepare_text` cuts it before any other work), so a review gets the same
    answer everywhere."""

    rows: int
    titled_rows: int

    def rows_for(self, titles: bool) -> int:
        return self.titled_rows if titles else self.rows


def page_budget() -> Budget:
    """The budget for jobs from the page and its API (CROSSLINGUAL_JOB_ROWS, CROSSLINGUAL_JOB_TITLED_ROWS)."""
    s = current()
    return Budget(rows=max(1, s.job_rows), titled_rows=max(1, s.job_titled_rows))


def fit(read: TableRead, titles: bool, budget: Budget) -> tuple[TableRead, str]:
    """The first rows of `read` that the budget allows, and a note saying what was cut and how to do all of them
    ("" when everything fits). Rows are cut before any model runs."""
    limit, n = budget.rows_for(titles), len(read.df)
    if n <= limit:
        return read, ""
    cut = TableRead(df=read.df.iloc[:limit], column=read.column, notes=list(read.notes),
                    skipped=list(read.skipped), refs=dict(read.refs))
    how = ("With titles, a job here takes at most {:,} reviews (about ten minutes on a shared 2-core machine); "
           "switch titles off for up to {:,}, or".format(limit, budget.rows) if titles else
           "A job here takes at most {:,} reviews; for more, split the file, or".format(limit))
    return cut, f"Compared the first {limit:,} of {n:,} reviews. {how} {CLI_HINT}."
