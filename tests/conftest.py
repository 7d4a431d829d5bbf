"""Shared fixtures: the real base model, a tiny trained model pair, the shipped models, a real server."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
SHIPPED = ROOT / "assets" / "models"


@pytest.fixture(scope="session")
def base():
    from core.base import load_base

    return load_base()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """`python -m core train --tiny`: the real recipe on a handful of examples, in a subprocess like a user runs it."""
    out = tmp_path_factory.mktemp("tiny_models")
    r = subprocess.run([sys.executable, "-m", "core", "train", "--tiny", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def engine():
    """The shipped models, loaded once for the session."""
    from core.engine import Engine

    return Engine(SHIPPED)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A real `python app.py` on a free loopback port; yields its URL."""
    from local_server import running_app

    log_path = tmp_path_factory.mktemp("server") / "server.log"
    with open(log_path, "w") as log:
        try:
            with running_app(log=log) as (url, _):
                yield url
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{log_path.read_text()[-3000:]}") from None


def resident_mb(name: str) -> float:
    """What this process holds in memory of the files mapped under `name` (Linux: /proc/self/smaps)."""
    kb, here = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if head and "-" in head[0] and ":" not in head[0]:
                here = len(head) > 5 and head[5].endswith(name)
            elif here and line.startswith("Rss:"):
                kb += int(head[1])
    return kb / 1024
