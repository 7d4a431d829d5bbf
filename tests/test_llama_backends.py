"""llama.cpp's CPU kernels: the shipped build runs its one CPU backend; a build with run-time dispatch gets its
variants loaded (llama-cpp-python does not load them) from where its wheel puts them."""
import pytest

from core.titles.llama_backends import cpu_variant, variant_dir
from core.titles.llama_engine import llama_available


def test_a_dispatch_builds_variants_are_found_in_the_wheels_bin_folder_beside_the_package(tmp_path):
    lib = tmp_path / "site-packages" / "llama_cpp" / "lib"
    lib.mkdir(parents=True)
    assert variant_dir(lib) == lib  # one CPU build: nothing to load
    bin_dir = tmp_path / "site-packages" / "bin"
    bin_dir.mkdir()
    (bin_dir / "libggml-cpu-haswell.so").write_bytes(b"")
    assert variant_dir(lib) == bin_dir
    (lib / "libggml-cpu-zen4.so").write_bytes(b"")
    assert variant_dir(lib) == lib


def test_the_variant_in_use_is_the_one_mapped_into_the_process():
    names = ["libggml-cpu-haswell.so", "libggml-cpu-zen4.so"]
    maps = "7f00-7f01 r-xp 0 0:0 1 /site-packages/bin/libggml-cpu-zen4.so\n"
    assert cpu_variant(names, maps) == "dispatch: zen4"
    assert cpu_variant([], maps) == "one CPU build"
    assert cpu_variant(names, "") == "dispatch: unknown variant"


def test_the_installed_llama_cpp_has_a_cpu_backend_before_the_model_loads():
    if not llama_available():
        pytest.skip("llama-cpp-python is not installed")
    from core.titles.llama_backends import _ggml, load_cpu_backend

    kernels = load_cpu_backend()
    assert kernels == "one CPU build" or kernels.startswith("dispatch: ")
    ggml, _ = _ggml()
    assert ggml.ggml_backend_reg_count() >= 1
