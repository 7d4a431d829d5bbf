"""Start-up faults give one clear line that says what to do, never a traceback."""
import os
import shutil
import subprocess
import sys

from conftest import ROOT, SHIPPED


def start(*args, env_extra=None):
    env = {**os.environ, "GRADIO_SERVER_PORT": "1", **(env_extra or {})}  # never reaches launch
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)


def test_missing_model_folder_says_how_to_fix_it(tmp_path):
    r = start("--models", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert "cannot start" in r.stderr and "python -m core train" in r.stderr
    assert "Traceback" not in r.stderr


def copy_of_shipped_models(tmp_path):
    for name in ("en_trained", "de_finetuned"):
        shutil.copytree(SHIPPED / name, tmp_path / name)
    return tmp_path


def test_corrupt_heads_file_says_how_to_fix_it(tmp_path):
    models = copy_of_shipped_models(tmp_path)
    (models / "de_finetuned" / "heads.safetensors").write_bytes(b"not a safetensors file")
    r = start("--models", str(models))
    assert r.returncode == 2
    assert "heads.safetensors" in r.stderr and "corrupt" in r.stderr
    assert "Traceback" not in r.stderr


def test_corrupt_settings_file_says_how_to_fix_it(tmp_path):
    models = copy_of_shipped_models(tmp_path)
    (models / "en_trained" / "review_model.json").write_text("{broken")
    r = start("--models", str(models))
    assert r.returncode == 2 and "review_model.json" in r.stderr and "Traceback" not in r.stderr
