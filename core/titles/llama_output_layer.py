"""Gemma's token table outside llama.cpp: the input embeddings, and the output layer in ONNX Runtime.

Why
- Gemma ties its 262,144 × 640 output layer to the input embeddings; the PyPI file stores that table as Q8_0
  (int8 in blocks of 32, one half-precision scale per block). In a beam-search step llama.cpp scores the
  four beams against it in ~20 ms on a 2-core CPU (its kernel gains little from four rows sharing the table;
  more than all 18 layers together for the four beams), where ONNX Runtime's blockwise 8-bit matrix product
  (``MatMulNBits``, the same Q8_0 blocks as they are, the activations quantised to int8 per block of 32 as
  llama.cpp does) scores all four in ~7-10 ms.
- So llama.cpp runs a copy of the file without the table (``layers_gguf``: the layers byte for byte, a
  32-row stand-in table, no tokenizer), reads its inputs as vectors and hands back the final normed hidden
  states; the table lives here. Inputs are the table's rows dequantised exactly as llama.cpp does
  (int8 × scale in float32, then × sqrt(640)), so the layers see the same numbers; the scores differ from
  llama.cpp's own only in the order of float additions (tests/test_generator.py compares them).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

LAYERS_GGUF_VERSION = 1  # bump when layers_gguf or head_onnx changes (their cached files are named by it)
STAND_IN_ROWS = 32  # the table llama.cpp keeps: never read (inputs are vectors), its 32 scores are ignored
Q8_0 = np.dtype([("d", "<f2"), ("qs", "i1", 32)])


def layers_gguf(source: Path, out_dir: Path) -> Path:
    """The GGUF without its token table, written once (atomically) next to the source."""
    import gguf

    out = out_dir / f"{source.stem}-layers-v{LAYERS_GGUF_VERSION}.gguf"
    if out.exists():
        return out
    reader = gguf.GGUFReader(str(source))
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    try:
        _write_layers(reader, arch, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
    return out


def _write_layers(reader, arch: str, tmp: Path) -> None:
    import gguf

    w = gguf.GGUFWriter(str(tmp), arch)
    for f in reader.fields.values():
        if f.name == gguf.Keys.General.ARCHITECTURE or f.name.startswith(("GGUF.", "tokenizer.")):
            continue
        kind = f.types[0]
        w.add_key_value(f.name, f.contents(), kind, sub_type=f.types[-1] if kind == gguf.GGUFValueType.ARRAY else None)
    w.add_key_value(gguf.Keys.Tokenizer.MODEL, "none", gguf.GGUFValueType.STRING)  # prompts arrive as vectors
    w.add_key_value(f"{arch}.vocab_size", STAND_IN_ROWS, gguf.GGUFValueType.UINT32)
    tensors = []
    for t in reader.tensors:
        if t.name == "token_embd.weight":
            stand_in = np.zeros((STAND_IN_ROWS, int(t.shape[0])), dtype=np.float32)
            tensors.append((t.name, stand_in, gguf.GGMLQuantizationType.F32))
        else:
            tensors.append((t.name, t.data, t.tensor_type))
    for name, data, kind in tensors:
        w.add_tensor_info(name, data.shape, data.dtype, data.nbytes, kind)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for _, data, _ in tensors:
        w.write_tensor_data(data)
    w.close()


def head_onnx(source: Path, out_dir: Path) -> Path:
    """The output layer as an ONNX model over the table's own Q8_0 blocks, written once (atomically) next to the
    source: one MatMulNBits node (8 bits, zero point 128, the blocks' scales). Its weights and scales sit in a side
    file (`.data`: uint8 weights, then float32 scales) that ONNX Runtime reads at load and `TokenTable` reads a row
    at a time for its lookups, so a start reads no GGUF metadata (the 262k-token vocabulary takes seconds and a GB
    to parse)."""
    import gguf

    out = out_dir / f"{source.stem}-head-v{LAYERS_GGUF_VERSION}.onnx"
    if out.exists():
        return out
    table = next(t for t in gguf.GGUFReader(str(source)).tensors if t.name == "token_embd.weight")
    if table.tensor_type != gguf.GGMLQuantizationType.Q8_0:
        raise ValueError(f"{source.name}: token table is {table.tensor_type.name}, not Q8_0")
    dim, rows = int(table.shape[0]), int(table.shape[1])
    blocks = np.asarray(table.data).view(Q8_0).reshape(rows, dim // 32)
    data, shape = out.with_name(out.name + ".data"), out.with_suffix(".json")
    tmp = {p: p.with_name(p.name + f".tmp{os.getpid()}") for p in (out, data, shape)}
    try:
        _write_head(blocks, rows, dim, data, tmp, out, shape)
    finally:
        for t in tmp.values():  # a full disk leaves no half-written file behind
            t.unlink(missing_ok=True)
    return out


def _write_head(blocks, rows: int, dim: int, data: Path, tmp: dict, out: Path, shape: Path) -> None:
    import json

    from onnx import TensorProto, helper, save

    with open(tmp[data], "wb") as f:  # int8 + 128 as uint8, a slice at a time; then the scales
        for i in range(0, rows, 16384):
            (blocks["qs"][i:i + 16384].view(np.uint8) ^ np.uint8(0x80)).tofile(f)
        blocks["d"].astype(np.float32).tofile(f)

    def external(name: str, kind: int, dims: list[int], offset: int, length: int) -> TensorProto:
        t = TensorProto(name=name, data_type=kind, dims=dims, data_location=TensorProto.EXTERNAL)
        for key, value in (("location", data.name), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        return t

    n_blocks = dim // 32
    node = helper.make_node("MatMulNBits", ["hidden", "W", "scales"], ["scores"], domain="com.microsoft",
                            K=dim, N=rows, bits=8, block_size=32,
                            accuracy_level=4)  # int8 activations per block, as llama.cpp's Q8_0 product
    graph = helper.make_graph(
        [node], "gemma_output_layer",
        [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["n", dim])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", rows])],
        [external("W", TensorProto.UINT8, [rows, n_blocks, 32], 0, rows * dim),
         external("scales", TensorProto.FLOAT, [rows * n_blocks], rows * dim, rows * n_blocks * 4)])
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                 helper.make_opsetid("com.microsoft", 1)]), str(tmp[out]))
    tmp[shape].write_text(json.dumps({"rows": rows, "dim": dim}))
    for final in (data, shape, out):  # the model last: its presence says the others are complete
        os.replace(tmp[final], final)


def remove_derived(source: Path, out_dir: Path | None = None) -> None:
    """Delete the files `layers_gguf` and `head_onnx` derive from `source`, so the next call writes them again."""
    d = out_dir or source.parent
    head = f"{source.stem}-head-v{LAYERS_GGUF_VERSION}"
    for name in (f"{source.stem}-layers-v{LAYERS_GGUF_VERSION}.gguf", f"{head}.onnx", f"{head}.onnx.data",
                 f"{head}.json"):
        (d / name).unlink(missing_ok=True)


class TokenTable:
    """The Q8_0 token table: `embed(ids)` for llama.cpp's inputs, `scores(hidden)` for the next-token logits."""

    def __init__(self, source: Path, threads: int, cache_dir: Path | None = None):
        import json

        from ..ort_backend import ort_session

        model = head_onnx(source, cache_dir or source.parent)
        shape = json.loads(model.with_suffix(".json").read_text())
        self.rows, self.dim = shape["rows"], shape["dim"]
        # the rows a prompt or a beam step looks up are read from the side file as they are asked for, not mapped
        # (core/file_rows.py: under a class's many different reviews a mapped table grew the server by up to 168 MB)
        from ..file_rows import FileRows

        data, n_blocks = model.with_name(model.name + ".data"), self.dim // 32
        self._values = FileRows(data, 0, (self.rows, n_blocks, 32), np.uint8)  # int8 + 128, as ORT reads them
        self._scales = FileRows(data, self.rows * self.dim, (self.rows, n_blocks), np.float32)
        self.input_scale = np.sqrt(np.float32(self.dim))  # Gemma scales token embeddings by sqrt(hidden)
        self._session = ort_session(model, threads, spin_during_calls=False)

    def embed(self, ids) -> np.ndarray:
        """Input vectors for token ids, (n, dim) float32: what llama.cpp's own lookup and scaling compute (the int8
        values times their block's scale, then times sqrt(dim))."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        q = (self._values(ids) ^ np.uint8(0x80)).view(np.int8)
        return (q.astype(np.float32) * self._scales(ids)[:, :, None]).reshape(len(ids), self.dim) * self.input_scale

    def scores(self, hidden: np.ndarray) -> np.ndarray:
        """Next-token logits (n, rows) for final normed hidden states (n, dim)."""
        return self._session.run(None, {"hidden": np.ascontiguousarray(hidden, dtype=np.float32)})[0]

    def close(self) -> None:
        self._values.close()
        self._scales.close()
