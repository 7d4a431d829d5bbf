"""PyTorch starts no OpenMP team of its own in a process whose titles llama.cpp writes (core/cpu_threads.py).

Each such team stays counted by libgomp for its thread's life and makes llama.cpp's layer barriers sleep
instead of spin. Checked in a fresh process, as the server starts, because a test process has long since run
PyTorch on several threads."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT, SHIPPED

PROBE = """
import os, sys, threading
import torch
from core.engine import Engine

engine = Engine(sys.argv[1])
assert type(engine.generator).__name__ == "LlamaTitles", type(engine.generator).__name__

def tasks():
    return set(os.listdir("/proc/self/task"))

# a rating on a new thread, as a Gradio worker answers a visitor: any OpenMP team it starts would live as
# long as the thread does
review = "Der Akku hält kaum einen Tag, und das Display ist nach zwei Wochen gesprungen."
engine.run([review], titles=False)  # once first: anything started once per process is not what is counted
done, hold = threading.Event(), threading.Event()
def rate_like_a_worker():
    engine.run([review], titles=False)
    done.set()
    hold.wait()

before = tasks()
t = threading.Thread(target=rate_like_a_worker)
t.start()
done.wait()
new = tasks() - before - {str(t.native_id)}
hold.set()
t.join()
print(torch.get_num_threads(), len(new))
"""


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_a_rating_on_a_new_thread_starts_no_openmp_team_beside_llama_cpp(runtime):
    env = {**os.environ, "CROSSLINGUAL_RUNTIME": runtime}
    r = subprocess.run([sys.executable, "-c", PROBE, str(SHIPPED)], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    threads, started = map(int, r.stdout.split()[-2:])
    assert started == 0, f"a rating on a new thread started {started} more thread(s)"
    assert threads == 1
