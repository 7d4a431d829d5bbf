"""Where the models run: the CPU engines (ONNX Runtime, llama.cpp) or the PyTorch engines on a CUDA GPU, and the
ZeroGPU decorator every model call of the app goes through.

Why a GPU path at all: a free Hugging Face account can host a Gradio Space only on ZeroGPU
(https://huggingface.co/docs/hub/spaces-overview), and there every call decorated with `@spaces.GPU` gets a slice of
a large GPU. The CPU engines cannot use it, so on CUDA the encoder, both heads, the seed decoder and the title
adapters run in PyTorch, in float32: the precision the report's figures were made in (the titles' agreement with
the CPU engine is what `scripts/gpu_check.py` measures).

ZeroGPU's rules (https://huggingface.co/docs/hub/spaces-zerogpu), and how they are kept here:
- `spaces` is imported before anything touches CUDA (app.py imports it first); it then stands in for CUDA in the
  main process, so the models are built on the CPU and moved with `.to("cuda")` at start-up, as usual.
- Real CUDA exists only inside decorated functions. They run in a forked worker process; their arguments and
  results cross by pickle. So the decorated functions are the Engine's own steps (`on_gpu` below), which take and
  return plain Python values, and an Engine pickles as a reference to the worker's copy of itself (core/engine.py).
- Off ZeroGPU (here, CI, a paid CPU Space, any GPU machine) `spaces.GPU` returns the function unchanged.
"""
from __future__ import annotations

import functools
import os
from typing import Callable

CHOICES = ("auto", "cpu", "cuda")


class DeviceError(RuntimeError):
    """The device asked for cannot be used here."""


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def choose_device(wanted: str = "auto", cuda: bool | None = None) -> str:
    """"cpu" or "cuda" for the setting CROSSLINGUAL_DEVICE: `auto` takes CUDA where PyTorch sees it; `cuda` where
    there is none is an error that says so, not a quiet fall back to the CPU (a teacher who asked for the GPU
    would otherwise measure the CPU)."""
    wanted = (wanted or "auto").strip().lower()
    if wanted not in CHOICES:
        raise DeviceError(f"CROSSLINGUAL_DEVICE={wanted!r} is not a device: use one of {', '.join(CHOICES)}.")
    cuda = cuda_available() if cuda is None else cuda
    if wanted == "cuda" and not cuda:
        import torch

        why = ("this PyTorch is a CPU-only build" if torch.version.cuda is None
               else "PyTorch sees no CUDA GPU (check the driver and CUDA_VISIBLE_DEVICES)")
        raise DeviceError(f"CROSSLINGUAL_DEVICE=cuda, but {why}. Unset it (or set `auto` or `cpu`) to run on the "
                          "CPU, or install a CUDA build of torch on a machine with a GPU.")
    if wanted == "auto":
        return "cuda" if cuda else "cpu"
    return wanted


def on_zero_gpu() -> bool:
    """Whether this process is a ZeroGPU Space (the variable ZeroGPU sets, as `spaces` reads it)."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "t", "true")


def _gpu_decorator() -> Callable | None:
    """`spaces.GPU`, or None where the package is missing (an older environment: the decorator is a no-op then)."""
    try:
        import spaces
    except ImportError:
        if on_zero_gpu():
            raise
        return None
    return spaces.GPU


def on_gpu(duration: Callable[..., int]):
    """Decorate an Engine method so that, on a CUDA engine, it runs as a ZeroGPU call of `duration(*args)` seconds
    (`spaces.GPU`; a no-op off ZeroGPU). A CPU engine (the English-only contrast on ZeroGPU, every engine here)
    calls the method directly and spends no visitor's GPU quota."""
    def wrap(method):
        gpu = _gpu_decorator()
        on_device = gpu(method, duration=duration) if gpu is not None else method

        @functools.wraps(method)
        def call(self, *args, **kwargs):
            return (on_device if getattr(self, "device", "cpu") == "cuda" else method)(self, *args, **kwargs)

        call.on_device = on_device  # what a test checks the decorator on
        return call
    return wrap
