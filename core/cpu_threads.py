"""How many threads each engine runs, and why PyTorch gets one where llama.cpp writes the titles.

llama.cpp's CPU backend, as llama-cpp-python builds it, runs each decode as an OpenMP team and waits at a
libgomp barrier between layers; PyTorch's CPU wheel ships its own `libgomp.so.1`, and the process loads that
one library for both. libgomp counts every thread it has ever started for any thread's team, and while that
count is above the cores it has, a waiting thread spins only briefly before it sleeps in the kernel
(`gomp_throttled_spin_count_var`). Every Python thread that runs a multi-threaded PyTorch op keeps a team of
its own for as long as it lives: merging the encoder's adapters at start-up is enough, and each Gradio worker
that rates a review adds one more. From then on every layer of every title step sleeps and wakes instead of
spinning: measured on a 2-core VM, a 4-review-row beam step took 27-47 ms instead of 18-19 ms.

With PyTorch at one thread it never starts a team. By default nothing it runs beside llama.cpp needs more: the
encoder and the seed decoder run in ONNX Runtime, whose pool is its own and sized by `usable_cores`, and the rest
is beam bookkeeping on a few rows. With CROSSLINGUAL_RUNTIME=torch the encoder runs on one core: a rating took
67 ms instead of 49 ms there, against titles a third faster.
"""
from __future__ import annotations

import os
from pathlib import Path


def usable_cores() -> int:
    """Cores this process may run on: the affinity mask, capped by a cgroup CPU quota (a container such as a
    Space's sees the host's cores but gets 2). llama.cpp's threads spin while they wait, so one thread too
    many costs far more than one too few."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def leave_openmp_to_llama_cpp() -> None:
    """PyTorch's intra-op threads to one, before anything in this process runs a PyTorch op: a team started
    earlier would stay counted for its thread's life."""
    import torch

    torch.set_num_threads(1)

