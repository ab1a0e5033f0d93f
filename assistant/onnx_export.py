"""Exporting the embedding model to ONNX once per model and machine (run in a child process: torch stays there)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .calibration_texts import CALIBRATION_REFERENCE, calibration_texts
from .checksums import describe
from .onnx_encoder import EXIT_NOT_SAVED, FOLDER, INPUTS, MIN_COSINE, PROBES, OnnxEncoder

log = logging.getLogger("assistant")


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


def _probe_cosine(folder: Path, reference: np.ndarray, model_file: str = "model.onnx") -> float:
    """The lowest cosine between an exported encoder's probe vectors and the model's own."""
    return float(np.min(np.sum(OnnxEncoder(folder, model_file=model_file).encode(PROBES) * reference, axis=1)))


def fuse_encoder(folder: Path) -> float | None:
    """Fuse an exported BERT-shaped graph (attention, layer norms, GELU: about 530 nodes into 60) in place, kept
    only if it still gives the model's vectors (`probes.npy`); its lowest probe cosine, or None when left as is.

    Run in a process of its own (see `export_in_child`): the optimizer holds several copies of the graph.
    """
    info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    shape = info.get("architecture") or {}
    heads, hidden = int(shape.get("num_attention_heads") or 0), int(shape.get("hidden_size") or 0)
    if info.get("fused") or shape.get("model_type") != "bert" or not heads or not hidden:
        return None
    fused = folder / f".model.fused.{os.getpid()}.onnx"
    try:
        from onnxruntime.transformers import optimizer

        from .generation import write_atomic

        # opt_level 0: only the portable fusions written in Python, nothing tied to this machine's CPU
        graph = optimizer.optimize_model(
            str(folder / "model.onnx"), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
        )
        if graph.get_fused_operator_statistics().get("Attention", 0) == 0:
            return None
        graph.save_model_to_file(str(fused))
        del graph
        cosine = _probe_cosine(folder, np.load(folder / "probes.npy"), fused.name)
        if cosine < MIN_COSINE:
            return None
        os.replace(fused, folder / "model.onnx")
        info.update(fused=True, min_probe_cosine=cosine, files=_checksums(folder))
        write_atomic(folder / "encoder.json", json.dumps(info, indent=2).encode("utf-8"))
        return cosine
    except Exception:  # an optimizer that cannot take this graph: the plain export stays
        return None
    finally:
        fused.unlink(missing_ok=True)


def export_onnx_encoder(model: Any, name: str, index_dir: Path) -> float | None:
    """Export a loaded SentenceTransformer into the index folder; the lowest probe cosine, or None if not exported."""
    import torch

    found = _pooling(model)
    tokenizer = getattr(model, "tokenizer", None)
    if found is None or not getattr(tokenizer, "is_fast", False):
        return None
    transformer, mode = found
    net = transformer.auto_model.eval()
    if hasattr(net, "set_attn_implementation"):  # written-out attention: onnxruntime fuses it into one node
        try:
            net.set_attn_implementation("eager")
        except Exception:  # a model that has only its own attention: exported as it is
            pass
    probe = tokenizer(["a question"], return_tensors="pt")
    inputs = [k for k in INPUTS if k in probe]

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
        reference = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True)
        axes = {k: {0: "batch", 1: "tokens"} for k in inputs}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Pooled(net),
                tuple(probe[k] for k in inputs),
                str(tmp / "model.onnx"),
                input_names=inputs,
                output_names=["embedding"],
                dynamic_axes={**axes, "embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        tokenizer.backend_tokenizer.save(str(tmp / "tokenizer.json"))
        info = {
            "model": name,
            "dimension": int(reference.shape[1]),
            "max_length": int(model.max_seq_length),
            "inputs": inputs,
            "pooling": mode,
            "pad_id": int(tokenizer.pad_token_id or 0),
        }
        (tmp / "encoder.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        cosine = _probe_cosine(tmp, reference)
        if cosine < MIN_COSINE:
            return None
        np.save(tmp / "probes.npy", reference.astype(np.float32))  # the model's own vectors, to check a fused graph
        passages = model.encode(calibration_texts(), normalize_embeddings=True, convert_to_numpy=True)
        np.save(tmp / CALIBRATION_REFERENCE, passages.astype(np.float32))  # to check every runtime (calibrate.py)
        config = net.config
        info["architecture"] = {
            k: getattr(config, k, None) for k in ("model_type", "num_attention_heads", "hidden_size")
        }
        info["min_probe_cosine"] = cosine
        info["transformer"] = str(getattr(net, "name_or_path", "") or "")  # where torch runtimes load it from
        info["fused"] = False
        info["files"] = _checksums(tmp)
        (tmp / "encoder.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
        final, old = index_dir / FOLDER, index_dir / f".{FOLDER}.{os.getpid()}.old"
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
        return cosine
    except OSError:  # a full disk, a folder that cannot be written: the caller says so
        raise
    except Exception:  # an architecture the exporter cannot take: use the model itself
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _checksums(folder: Path) -> dict[str, dict]:
    """Checksums of an exported encoder's model and tokenizer, checked when it loads."""
    return {k: v for k, v in describe(folder).items() if k in ("model.onnx", "tokenizer.json")}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m assistant.onnx_export MODEL INDEX_DIR [--offline|--hub]`: export; `--fuse INDEX_DIR`: fuse the
    exported graph; exit 0 when done."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--fuse"]:
        folder = Path(args[1]) / FOLDER
        if json.loads((folder / "encoder.json").read_text(encoding="utf-8")).get("fused"):
            print(f"{folder}: already fused")
            return 0
        cosine = fuse_encoder(folder)
        if cosine is None:
            print(f"{folder}: left unfused (not a BERT-shaped graph, or the fused one gives other vectors)")
            return 1
        print(f"{folder}: graph fused (lowest probe cosine {cosine:.7f})")
        return 0
    from .embedding import SentenceTransformerEmbedder

    offline = "--hub" not in args
    model, index_dir = [a for a in args if not a.startswith("--")][:2]
    embedder = SentenceTransformerEmbedder(model, offline=offline)
    try:
        cosine = export_onnx_encoder(embedder.model, model, Path(index_dir))
    except OSError as e:
        print(f"{e.strerror or e}", file=sys.stderr)
        return EXIT_NOT_SAVED
    if cosine is None:
        print(f"{model}: not exported (unsupported architecture, or vectors differ)", file=sys.stderr)
        return 1
    print(f"{model}: exported to {Path(index_dir) / FOLDER} (lowest probe cosine {cosine:.7f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
