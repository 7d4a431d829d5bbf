"""Where the models run (core/device.py): the CPU without CUDA, a clear stop where CUDA is forced but missing, and
the ZeroGPU decorator on the Engine's model calls."""
import json
import os
import pickle
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, SHIPPED
from core.device import DeviceError, choose_device, on_gpu

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: tests/test_gpu.py runs")


def test_auto_runs_on_the_cpu_where_pytorch_sees_no_cuda_and_on_the_gpu_where_it_does():
    assert choose_device("auto") == "cpu"
    assert choose_device("cpu") == "cpu"
    assert choose_device("auto", cuda=True) == "cuda"
    assert choose_device("cpu", cuda=True) == "cpu"  # the CPU engines can be asked for on a GPU machine


def test_forcing_cuda_without_a_gpu_stops_with_a_message_that_says_why_and_what_to_do():
    with pytest.raises(DeviceError, match=r"CROSSLINGUAL_DEVICE=cuda, but this PyTorch is a CPU-only build.*auto"):
        choose_device("cuda")
    with pytest.raises(DeviceError, match="is not a device: use one of auto, cpu, cuda"):
        choose_device("gpu")


def test_the_engine_refuses_a_forced_gpu_before_loading_anything(monkeypatch):
    from core.engine import Engine

    monkeypatch.setenv("CROSSLINGUAL_DEVICE", "cuda")
    with pytest.raises(DeviceError, match="CROSSLINGUAL_DEVICE=cuda"):
        Engine(SHIPPED)


def test_the_cli_says_a_forced_gpu_is_missing_in_one_line_not_a_traceback():
    env = {**os.environ, "CROSSLINGUAL_DEVICE": "cuda"}
    r = subprocess.run([sys.executable, "-m", "core", "predict", "--text", "Der Akku hält kaum."], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("python -m core: CROSSLINGUAL_DEVICE=cuda, but")


class _Recorder:
    """Stands in for `spaces.GPU`, whose real work needs Hugging Face's GPU scheduler: it records each call and
    the duration asked for, then runs the function as a ZeroGPU worker would."""

    def __init__(self):
        self.calls = []

    def __call__(self, fn, duration):
        def run(*args, **kwargs):
            self.calls.append((fn.__name__, duration(*args, **kwargs)))
            return fn(*args, **kwargs)
        return run


def test_a_gpu_engines_model_calls_go_through_the_zero_gpu_decorator_and_a_cpu_engines_do_not(monkeypatch):
    import core.device

    recorder = _Recorder()
    monkeypatch.setattr(core.device, "_gpu_decorator", lambda: recorder)

    class Model:
        def __init__(self, device):
            self.device = device

        @on_gpu(duration=lambda self, texts: 10 + len(texts))
        def run(self, texts):
            return [t.upper() for t in texts]

    assert Model("cuda").run(["a", "b"]) == ["A", "B"]
    assert recorder.calls == [("run", 12)]
    assert Model("cpu").run(["c"]) == ["C"]
    assert recorder.calls == [("run", 12)]  # the CPU engine spent no GPU call


def test_the_engines_model_calls_are_decorated_with_durations_that_fit_a_comparison_and_a_batch_chunk():
    from core.engine import Engine, gpu_seconds

    for method in (Engine.run, Engine.write_titles, Engine.variant_title):
        assert hasattr(method, "on_device"), method.__name__
    assert gpu_seconds(1, titled=True) < gpu_seconds(8, titled=True) <= 30  # a Batch chunk on CUDA is 8 reviews
    assert gpu_seconds(16, titled=False) < gpu_seconds(2, titled=True)


def test_an_engine_crosses_a_process_boundary_as_a_reference_to_that_process_s_own_copy(engine):
    """A ZeroGPU call pickles its arguments, the engine among them: it must not copy the models."""
    data = pickle.dumps(engine)
    assert len(data) < 2000
    assert pickle.loads(data) is engine


def test_a_second_engine_built_later_does_not_take_the_first_ones_place_across_the_boundary(engine):
    """The process's engine is the one a pickled reference finds, whatever copies other code builds after it."""
    from core.engine import Engine

    later = Engine(SHIPPED)
    assert later._key() == engine._key()
    assert pickle.loads(pickle.dumps(later)) is engine
    assert pickle.loads(pickle.dumps(engine)) is engine


def test_write_titles_returns_the_rows_with_their_titles(engine):
    """On ZeroGPU the titles are written in another process: the caller reads them from the returned rows."""
    text = "Der Akku hält kaum drei Stunden, schade."
    rows = engine.run([text], generator=False)
    fresh = pickle.loads(pickle.dumps(rows))  # what crosses to the worker: a copy
    back = engine.write_titles([text], fresh)
    assert all(back[n][0]["title"] for n in engine.generator.names)
    assert back[engine.names[0]][0]["star_probs"] == rows[engine.names[0]][0]["star_probs"]


def test_the_answer_says_which_engines_and_device_answered(engine):
    from core.inference import compare

    d = compare("Great kettle, boils fast and quietly.", engine=engine).to_dict()
    assert d["engine"] == {"device": "cpu", "encoder": engine.runtime, "generator": "llama.cpp"}


def test_the_gpu_check_without_a_gpu_says_so_and_exits_2():
    r = subprocess.run([sys.executable, "scripts/gpu_check.py"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2
    assert "gpu_check: CROSSLINGUAL_DEVICE=cuda, but" in r.stderr and "Traceback" not in r.stderr


def test_the_gpu_checks_dry_run_on_the_cpu_measures_every_figure_and_the_agreement_with_the_cpu_engine(tmp_path):
    out = tmp_path / "check.json"
    r = subprocess.run([sys.executable, "scripts/gpu_check.py", "--device", "cpu", "--reviews", "2", "--batch", "2",
                        "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["engines"] == {"device": "cpu", "encoder": "torch", "generator": "torch"}  # the GPU path's engines
    assert 0 < res["compare_p50_ms"] <= res["compare_p95_ms"]
    assert res["batch_reviews"] == 2 and res["batch_reviews_per_s"] > 0
    ag = res["agreement_with_cpu_engine"]
    assert ag["pairs"] == 4 and all(0 <= ag[k] <= 1 for k in ("stars", "title", "seed_title"))
    assert r.stdout.strip().splitlines()[-1].startswith("| CPU")
