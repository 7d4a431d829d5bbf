"""The README states measured numbers: they must be the ones the shipped report and benchmark files hold."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_results_table_is_the_shipped_reports_headline_table():
    report = (ROOT / "assets" / "report" / "report.md").read_text(encoding="utf-8")
    section = report.split("## Headline numbers", 1)[1].strip().split("\n\n", 1)[0]  # the first table
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert len(table) > 5
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for line in table:
        assert line in readme, f"README is stale against assets/report/report.md: {line}"


def test_readme_speed_figures_are_the_shipped_benchmark_results():
    res = json.loads((ROOT / "bench" / "results.json").read_text())
    speed = (ROOT / "README.md").read_text(encoding="utf-8").split("## Speed and memory", 1)[1].split("\n## ", 1)[0]
    for key in ("single_p50_ms_128", "single_p50_ms_128_plain_generate", "generate_speedup", "cold_start_s",
                "peak_rss_mb", "batch_speedup", "ratings_only_batch_speedup"):
        value = res[key]
        shown = f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
        assert re.search(re.escape(shown) + r"\b", speed), f"README speed section lacks {key}={shown}"


def test_readme_reliability_figures_are_the_shipped_reliability_check():
    res = json.loads((ROOT / "assets" / "report" / "reliability.json").read_text(encoding="utf-8"))
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Reliability", 1)[1].split("\n## ", 1)[0]
    shown = [" / ".join(f"{x:.2f}" for x in res["beside_batch_rate_s"]),
             " / ".join(f"{x:.2f}" for x in res["beside_batch_compare_s"]),
             f"stopped after {res['cancel_stopped_after']}, {res['cancel_to_stop_s']:.2f} s later",
             f"the next compare {res['after_cancel_compare_s']:.2f} s",
             f"a message in {res['hostile_10mb_answer_s']:.2f} s", f"HTTP {res['upload_11mb_status']}"]
    for figure in shown:
        assert figure in section, f"README Reliability section lacks {figure!r} (assets/report/reliability.json)"
