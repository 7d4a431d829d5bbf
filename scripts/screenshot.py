"""Make the README screenshots: start the app, paste a German example, press Compare, save a PNG; then open
the "Why?" section and save its map.

    python scripts/screenshot.py [--out assets/screenshot.png] [--why-out assets/screenshot_why.png]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from local_server import running_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(1, str(ROOT))
from core.names import DE_FINETUNED  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "assets" / "screenshot.png"))
    ap.add_argument("--why-out", default=str(ROOT / "assets" / "screenshot_why.png"))
    a = ap.parse_args()
    with running_app() as (url, _):
        from playwright.sync_api import sync_playwright

        example = next(e["text"] for e in json.loads((ROOT / "assets/examples/examples.json").read_text())
                       if e["language"] == "de")
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = b.new_page(viewport={"width": 1280, "height": 1150})
            page.goto(url)
            page.locator("#review-text textarea").fill(example)
            page.locator("#compare-btn").click()
            page.wait_for_selector(f"#title-{DE_FINETUNED} .gen-title", timeout=120_000)
            page.wait_for_timeout(500)
            page.screenshot(path=a.out, full_page=False)
            page.locator("#why").get_by_text("Why?").first.click()
            ring = f"#map-{DE_FINETUNED} svg path[stroke='#c000c0']"  # the visitor's review, drawn on the map
            page.wait_for_function(f"document.querySelectorAll(\"{ring}\").length >= 17", timeout=60_000)
            page.wait_for_timeout(500)
            page.locator("#why").screenshot(path=a.why_out)
            b.close()
        print("wrote", a.out, a.why_out)


if __name__ == "__main__":
    main()
