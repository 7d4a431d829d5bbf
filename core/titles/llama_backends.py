"""Which of llama.cpp's CPU kernels run the titles.

A llama.cpp built with run-time CPU dispatch (``GGML_BACKEND_DL`` + ``GGML_CPU_ALL_VARIANTS``, as its own releases
are) ships one CPU backend per instruction-set level (``libggml-cpu-haswell.so``, ``-zen4``, ``-icelake``, ...) and
loads none until asked; llama-cpp-python does not ask (its bindings do not expose ``ggml_backend_load_all``), so a
model load would fail with "no backends are loaded". ``load_cpu_backend`` asks, from the package's own ``lib/``
folder, and ggml picks the variant that scores best on this CPU's features. A build with one fixed CPU backend
(the portable AVX2 build) has it registered already, and nothing is loaded.
"""
from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path


def _ggml() -> tuple[ctypes.CDLL, Path]:
    import llama_cpp

    lib_dir = Path(llama_cpp.__file__).resolve().parent / "lib"
    # the file libllama.so loaded (by its soname): one registry. A wheel holds no links, so libggml.so is a second
    # copy of it, and opening that would load a second, empty registry
    soname = lib_dir / "libggml.so.0"
    ggml = ctypes.CDLL(str(soname if soname.exists() else lib_dir / "libggml.so"))
    ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
    ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
    return ggml, lib_dir


def variant_dir(lib_dir: Path) -> Path:
    """Where the build put its CPU variants: its wheel installs them as ``bin/`` beside the package."""
    for d in (lib_dir, lib_dir.parent.parent / "bin"):
        if any(d.glob("libggml-cpu-*.so")):
            return d
    return lib_dir


@cache
def load_cpu_backend() -> str:
    """Load the best CPU variant if this build has several (once per process); the kernel set in use, named."""
    ggml, lib_dir = _ggml()
    where = variant_dir(lib_dir)
    dispatch = sorted(p.name for p in where.glob("libggml-cpu-*.so"))
    if ggml.ggml_backend_reg_count() == 0:
        ggml.ggml_backend_load_all_from_path(str(where).encode())
        if ggml.ggml_backend_reg_count() == 0:
            raise RuntimeError(f"llama.cpp found no CPU backend it can run in {where} ({dispatch or 'none'})")
    return cpu_variant(dispatch)


def cpu_variant(dispatch: list[str], maps: str | None = None) -> str:
    """"one CPU build", or "dispatch: <variant>" for the libggml-cpu-<variant>.so mapped into this process."""
    if not dispatch:
        return "one CPU build"
    if maps is None:
        maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    loaded = sorted(n.removeprefix("libggml-cpu-").removesuffix(".so") for n in dispatch if n in maps)
    return "dispatch: " + (", ".join(loaded) or "unknown variant")
