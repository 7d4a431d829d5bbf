"""Rows of a big table read from its file as they are asked for, instead of through a mapping of the file.

Why: the two vocabulary tables a comparison looks rows up in are large (the encoder's 250k x 384 float32 word
embeddings, 366 MB, mapped from the base's safetensors file; Gemma's 262k-row Q8_0 token table, 168 MB), and a
review needs only its own tokens' rows. Through a mapping, every row touched brings ~64 KB of the file's cached
pages into the process (the kernel's fault-around), so under a class's many different reviews in many languages
the server's memory grew by hundreds of MB (measured: the encoder's mapped table 81 -> 271 MB resident over 900
reviews). `os.pread` copies just the rows. The values are the file's bytes either way: same numbers, same answers.
"""
from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16}


class FileRows:
    """A row-major table of `shape` and `dtype` starting `offset` bytes into `path`; `rows(ids)` -> (n, *row)."""

    def __init__(self, path: str | os.PathLike, offset: int, shape: tuple[int, ...], dtype):
        self.path, self.offset = Path(path), int(offset)
        self.shape, self.dtype = tuple(int(s) for s in shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        end = self.offset + self.shape[0] * self.row_bytes
        if self.path.stat().st_size < end:  # a truncated file fails here, at load, not in a visitor's review
            raise ValueError(f"{self.path} holds {self.path.stat().st_size} bytes, fewer than the table's {end}")
        self._file = open(self.path, "rb")  # noqa: SIM115 - held for the table's life; close() ends it

    def __call__(self, ids) -> np.ndarray:
        """The rows `ids` (any integer array; each distinct row read once), in the order asked."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        wanted, where = np.unique(ids, return_inverse=True)
        if len(wanted) and (wanted[0] < 0 or wanted[-1] >= self.shape[0]):
            raise IndexError(f"row {wanted[0] if wanted[0] < 0 else wanted[-1]} is outside the table's "
                             f"{self.shape[0]} rows")
        fd, size = self._file.fileno(), self.row_bytes
        buf = bytearray(len(wanted) * size)
        for k, i in enumerate(wanted.tolist()):
            piece = os.pread(fd, size, self.offset + i * size)
            if len(piece) != size:
                raise OSError(f"{self.path}: the table's row {i} is cut short (file truncated?)")
            buf[k * size:(k + 1) * size] = piece
        rows = np.frombuffer(buf, dtype=self.dtype).reshape(len(wanted), *self.shape[1:])
        return rows[where.reshape(-1)]

    def close(self) -> None:
        self._file.close()

    @classmethod
    def safetensors(cls, path: str | os.PathLike, name: str) -> "FileRows | None":
        """Tensor `name` of a safetensors file (8-byte header length, a JSON header, then the data), or None
        when the file or the tensor is not there or its type is not a plain float."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(n))
        except (OSError, ValueError, struct.error):
            return None
        entry = header.get(name)
        if not entry or entry.get("dtype") not in SAFETENSORS_DTYPES:
            return None
        start, _ = entry["data_offsets"]
        try:
            return cls(path, 8 + n + start, tuple(entry["shape"]), SAFETENSORS_DTYPES[entry["dtype"]])
        except (OSError, ValueError):
            return None


class FileRowsEmbedding(nn.Embedding):
    """An `nn.Embedding` that looks its rows up in the file (`FileRows`) and keeps the same weight Parameter
    (mapped, untouched by lookups) for whatever needs the whole table: full-vocabulary decoding, training."""

    def __init__(self, embedding: nn.Embedding, rows: FileRows):
        super().__init__(embedding.num_embeddings, embedding.embedding_dim, padding_idx=embedding.padding_idx,
                         _weight=embedding.weight, _freeze=not embedding.weight.requires_grad)
        self.weight = embedding.weight  # the same Parameter object, so ties to it hold
        self.rows = rows

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.weight.device.type != "cpu" or (torch.is_grad_enabled() and self.weight.requires_grad):
            return super().forward(ids)
        out = torch.from_numpy(self.rows(ids.cpu().numpy()))
        return out.view(*ids.shape, self.embedding_dim).to(self.weight.dtype)


def table_rows(embedding: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Rows `ids` of an embedding's table: read from the file when it is a `FileRowsEmbedding`."""
    return embedding(ids) if isinstance(embedding, FileRowsEmbedding) else embedding.weight[ids]


def read_rows_from_file(embedding: nn.Embedding, path: str | os.PathLike, name: str) -> nn.Embedding:
    """`embedding` looking its rows up in tensor `name` of safetensors file `path`, when that tensor holds the same
    table (checked on a few rows); otherwise `embedding` itself."""
    if isinstance(embedding, FileRowsEmbedding):
        return embedding
    rows = FileRows.safetensors(path, name)
    w = embedding.weight
    if rows is None or rows.shape != tuple(w.shape) or torch.from_numpy(np.empty(0, rows.dtype)).dtype != w.dtype:
        return embedding
    probe = np.unique(np.linspace(0, w.shape[0] - 1, 7).astype(np.int64))
    if not np.array_equal(rows(probe), w.detach()[torch.from_numpy(probe)].cpu().numpy()):
        rows.close()
        return embedding
    return FileRowsEmbedding(embedding, rows)
