"""Every environment setting lives in core/settings.py, and the README's configuration table lists exactly those."""
import re
from pathlib import Path

from core.names import MAIN_MODELS, ZERO_SHOT
from core.settings import Settings, documented

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [p for d in ("core", "demo", "bench", "scripts") for p in (ROOT / d).rglob("*.py")] + [ROOT / "app.py"]


def configuration_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]


def test_readme_configuration_table_lists_every_setting_and_no_other():
    section = configuration_section()
    for env, _, _ in documented():
        if env != "CROSSLINGUAL_<MODEL>":
            assert re.search(rf"`{env}[`=]", section), f"README's configuration table lacks {env}"
    per_model = {f"CROSSLINGUAL_{n.upper()}" for n in (*MAIN_MODELS, ZERO_SHOT)}
    named = {env for env, _, _ in documented()} | per_model
    listed = set(re.findall(r"`((?:CROSSLINGUAL|GRADIO)_[A-Z0-9_]+)", section))
    assert listed <= named, f"README documents settings core/settings.py does not have: {listed - named}"


def test_no_module_reads_a_setting_from_the_environment_itself():
    reads = re.compile(r"environ(?:\.get\(|\[)\s*f?[\"'](?:CROSSLINGUAL|GRADIO)_|getenv\(")
    offenders = []
    for p in SOURCES:
        if p.name == "settings.py":
            continue
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if reads.search(line) and not re.search(r"environ\[[^\]]+\]\s*=[^=]", line):
                offenders.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "read these through core.settings.current():\n" + "\n".join(offenders)


def test_settings_parse_the_environment_as_documented():
    s = Settings.from_env({"CROSSLINGUAL_GENERATOR_INT8": "0", "CROSSLINGUAL_QUEUE_SIZE": "5",
                           "CROSSLINGUAL_RUNTIME": "TORCH", "CROSSLINGUAL_EN_TRAINED": "/tmp/x",
                           "CROSSLINGUAL_TITLE_SHORTLIST": ""})
    assert (s.generator_int8, s.queue_size, s.runtime, s.title_shortlist) == (False, 5, "torch", False)
    assert s.model_dir("en_trained") == Path("/tmp/x") and s.model_dir("de_finetuned") == s.models / "de_finetuned"
    d = Settings.from_env({})
    assert (d.generator_int8, d.queue_size, d.runtime, d.generator_engine, d.server_port) == (True, 64, "onnx", "llama", 7860)


def test_cache_folder_follows_the_given_environment_not_the_process_one():
    assert Settings.from_env({"XDG_CACHE_HOME": "/srv/c"}).cache_root() == Path("/srv/c/crosslingual-review-lab")
    assert Settings.from_env({"CROSSLINGUAL_CACHE": "/data/x"}).cache_root() == Path("/data/x")
    assert Settings.from_env({"CROSSLINGUAL_GENERATOR_ENGINE": " Torch "}).generator_engine == "torch"
