"""The query encoder: the embedding model exported once to ONNX, so a question is embedded without torch."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

FOLDER = "query-encoder"  # inside the index folder, beside the generations
MIN_COSINE = 0.999  # an export whose vectors differ more than this from the model's own is not used
PROBES = (
    "What did Zelensky say to Russians?",
    "How many people were called up?",
    "Bronchitis ruled Davenport, the 2000 Australian Open champion, out of her Sydney quarter-final on Thursday. " * 12,
)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxQueryEncoder:
    """A sentence-transformers model (transformer, mean or CLS pooling, unit length) run by onnxruntime."""

    def __init__(self, folder: Path, threads: int = 0) -> None:
        """Load `model.onnx`, `tokenizer.json` and `encoder.json` from an exported folder."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        self.name = self.info["model"]
        self.dimension = int(self.info["dimension"])
        self.max_length = int(self.info["max_length"])
        self.inputs = list(self.info["inputs"])
        self.pad_id = int(self.info["pad_id"])
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_length)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Threads that spin between questions would take the cores the rest of the search needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors for the texts, shape [len(texts), dimension]."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        arrays = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in _INPUTS}
        for row, e in enumerate(encodings):
            n = len(e.ids)
            arrays["input_ids"][row, :n] = e.ids
            arrays["attention_mask"][row, :n] = e.attention_mask
            arrays["token_type_ids"][row, :n] = e.type_ids
        arrays["input_ids"][arrays["attention_mask"] == 0] = self.pad_id
        out = self.session.run(None, {name: arrays[name] for name in self.inputs})[0]
        return np.ascontiguousarray(out, dtype=np.float32)


def has_query_encoder(index_dir: Path, model: str) -> bool:
    """Whether the index folder holds an exported encoder for this model."""
    try:
        info = json.loads((index_dir / FOLDER / "encoder.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("model") == model


def load_query_encoder(index_dir: Path, model: str) -> OnnxQueryEncoder | None:
    """The exported encoder of an index, if there is one for this model and onnxruntime can run it."""
    if not has_query_encoder(index_dir, model):
        return None
    try:
        return OnnxQueryEncoder(index_dir / FOLDER)
    except Exception:  # missing, half-written or unreadable: the caller falls back to the model itself
        return None


def _pooling(model: Any) -> tuple[Any, str] | None:
    """The transformer module and pooling mode of a plain sentence-transformers pipeline, else None."""
    modules = list(model)
    kinds = [type(m).__name__ for m in modules]
    if len(modules) not in (2, 3) or kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        return None
    pooling = modules[1]
    mode = getattr(pooling, "pooling_mode", None)  # sentence-transformers 6; older ones name it by a method
    if not isinstance(mode, str) and hasattr(pooling, "get_pooling_mode_str"):
        mode = pooling.get_pooling_mode_str()
    return (modules[0], mode) if mode in ("mean", "cls") else None


def export_query_encoder(model: Any, name: str, index_dir: Path) -> float | None:
    """Export a loaded SentenceTransformer for queries; the lowest probe cosine, or None if not exported."""
    import torch

    found = _pooling(model)
    tokenizer = getattr(model, "tokenizer", None)
    if found is None or not getattr(tokenizer, "is_fast", False):
        return None
    transformer, mode = found
    probe = tokenizer(["a question"], return_tensors="pt")
    inputs = [k for k in _INPUTS if k in probe]

    class Pooled(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            feed = dict(zip(inputs, args, strict=True))
            hidden = self.net(**feed).last_hidden_state
            if mode == "cls":
                v = hidden[:, 0]
            else:
                mask = feed["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                v = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(v, dim=-1)

    tmp = index_dir / f".{FOLDER}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        axes = {k: {0: "batch", 1: "tokens"} for k in inputs}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(transformer.auto_model.eval()),
                tuple(probe[k] for k in inputs),
                str(tmp / "model.onnx"),
                input_names=inputs,
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        reference = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True)
        info = {
            "model": name,
            "dimension": int(reference.shape[1]),
            "max_length": int(model.max_seq_length),
            "inputs": inputs,
            "pooling": mode,
            "pad_id": int(tokenizer.pad_token_id or 0),
        }
        (tmp / "encoder.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        exported = OnnxQueryEncoder(tmp).encode(PROBES)
        cosine = float(np.min(np.sum(exported * reference, axis=1)))
        if cosine < MIN_COSINE:
            return None
        info["min_probe_cosine"] = cosine
        (tmp / "encoder.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        final = index_dir / FOLDER
        old = index_dir / f".{FOLDER}.{os.getpid()}.old"
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        return cosine
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
