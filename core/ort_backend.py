"""The encoder layers in ONNX Runtime, and how every graph of the project is exported, cached and run.

Why: on a 2-core CPU a comparison is mostly small matrix products (a title is ~9 beam-search steps over
3-row matrices), and PyTorch spends longer dispatching each of them through `transformers`' modules than
multiplying. ONNX Runtime runs the same layers as one graph per call. What runs there is exported from the
loaded models themselves (each model's LoRA merged in), in float32, so the outputs equal PyTorch's to about
1e-5: tests/test_ort_backend.py checks that titles and stars are the same both ways.

- `LayerStack`: a run of encoder layers (the shared trunk, or one model's top layers); the word-embedding
  lookup stays in PyTorch so the 250k-row table is held once.
- `exported_session`: any module as a graph, exported once per set of weights; the seed decoder's step
  (core/titles/encoder_decoder_onnx.py) is exported through it too.

Graphs are exported once per set of weights and cached under the user cache (keyed by a hash of those
weights). `CROSSLINGUAL_RUNTIME=torch` turns all this off; without `onnxruntime` installed, or if an export
fails, the Engine says so once and runs in PyTorch.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from .settings import current

GRAPH_VERSION = 5  # bump when the exported graphs change, so cached ones are rebuilt


def wanted() -> bool:
    """ONNX Runtime unless CROSSLINGUAL_RUNTIME=torch; False too when the package is missing."""
    if current().runtime == "torch":
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, T) of 1/0 -> (B, 1, 1, T) of 0/-inf-ish, what Bert's attention adds to its scores."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class LayerStack(nn.Module):
    """Encoder layers from hidden states and a padding mask: the part of the encoder worth exporting."""

    def __init__(self, layers: nn.ModuleList):
        super().__init__()
        self.layers = layers

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = additive_mask(mask, hidden.dtype)
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=m)
        return hidden


def _digest(module: nn.Module, kind: str) -> str:
    import onnxruntime
    import transformers

    # the graph is the layers' code as well as their weights: the libraries' versions are part of the key
    versions = f"{GRAPH_VERSION}|{torch.__version__}|{transformers.__version__}|{onnxruntime.__version__}"
    h = hashlib.sha1(f"{kind}|{versions}".encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:20]


def _graph_dir() -> Path:
    d = current().cache_root() / "onnx"
    try:
        d.mkdir(parents=True, exist_ok=True)
        return d
    except OSError:  # a read-only cache: export into a private temporary folder instead
        return Path(tempfile.mkdtemp(prefix="crosslingual-onnx-"))


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            axes: dict[str, dict[int, str]]) -> None:
    import warnings

    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python bools: shapes here are all dynamic axes
        torch.onnx.export(module.eval(), args, str(tmp), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=17, do_constant_folding=True)
    tmp.replace(path)  # atomic: a second process never reads half a file


def ort_session(path: Path, threads: int, spin_during_calls: bool = True):
    """An ONNX Runtime CPU session as this project runs every graph (the encoder's, the seed decoders', the
    generator's output layer)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if spin_during_calls:
        # threads spin while a call runs (a third faster for the encoder) but stop when it returns: spinning on
        # would take the cores the two title decoders need next
        so.add_session_config_entry("session.force_spinning_stop", "1")
    else:  # never: llama.cpp's threads run the generator's layers right before and after each output-layer call
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # no memory arena: it keeps the largest batch's activations for the life of the process (hundreds of MB
    # after one 512-token batch), and a single review's tensors are too small for it to save any time
    so.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


KEEP_DAYS = 14  # cached graphs unused for this long are deleted (each retrained model leaves ~150 MB)


def _prune(folder: Path, keep: Path) -> None:
    cutoff = time.time() - KEEP_DAYS * 86400
    for old in folder.glob("*.onnx"):
        try:
            if old != keep and old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:  # another process got there first, or a read-only cache
            pass


def _load_or_export(path: Path, export, threads: int):
    """The session for the graph at `path`, exporting it first if it is not cached. A cached file that ONNX
    Runtime cannot read (a disk hiccup, a killed write from an older version) is exported again, once."""
    if path.exists():
        with contextlib.suppress(OSError):
            os.utime(path)  # its modification time says when it was last used: see _prune
    else:
        export(path)
        _prune(path.parent, path)
    try:
        return ort_session(path, threads)
    except Exception:  # noqa: BLE001 - onnxruntime raises its own exception types
        path.unlink(missing_ok=True)
        export(path)
        return ort_session(path, threads)


def exported_session(module: nn.Module, kind: str, args: tuple, inputs: list[str], outputs: list[str],
                     axes: dict[str, dict[int, str]], threads: int):
    """(path, session) for `module` as an ONNX graph, traced with `args`. The file is named by `kind` and a hash
    of the module's weights and the libraries' versions, so a retrained model or an upgrade exports afresh and
    everything else loads what an earlier start exported."""
    path = _graph_dir() / f"{kind}-{_digest(module, kind)}.onnx"
    return path, _load_or_export(path, lambda p: _export(module, args, p, inputs, outputs, axes), threads)


class OrtLayers:
    """`LayerStack(layers)` in ONNX Runtime; called like the torch stack: (hidden, mask) -> hidden."""

    def __init__(self, layers: nn.ModuleList, threads: int = 1):
        stack = LayerStack(layers).eval()
        hidden = layers[0].attention.self.query.in_features
        args = (torch.randn(2, 7, hidden), torch.ones(2, 7, dtype=torch.long))
        axes = {"hidden": {0: "b", 1: "t"}, "mask": {0: "b", 1: "t"}, "out": {0: "b", 1: "t"}}
        self.path, self.session = exported_session(stack, "layers", args, ["hidden", "mask"], ["out"], axes, threads)

    def __call__(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feed = {"hidden": hidden.detach().contiguous().numpy(), "mask": mask.to(torch.long).numpy()}
        return torch.from_numpy(self.session.run(None, feed)[0])
