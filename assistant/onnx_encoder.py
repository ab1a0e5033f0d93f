"""The embedding model exported once to ONNX: questions and passages embedded by onnxruntime, without torch."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checksums import damaged, describe
from .types import AssistantError

log = logging.getLogger("assistant")
FOLDER = "encoder"  # inside the index folder, beside the generations
MIN_COSINE = 0.999  # an export whose vectors differ more than this from the model's own is not used
PROBES = (
    "What did Zelensky say to Russians?",
    "How many people were called up?",
    "Bronchitis ruled Davenport, the 2000 Australian Open champion, out of her Sydney quarter-final on Thursday. " * 12,
)
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXIT_NOT_SAVED = 2  # the export child's exit code when it could not write the encoder


def _cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class OnnxEncoder:
    """A sentence-transformers model (transformer, mean or CLS pooling, unit length) run by onnxruntime."""

    def __init__(self, folder: Path, batch_size: int = 32, model_file: str = "model.onnx") -> None:
        """Load `model.onnx` (or `model_file`), `tokenizer.json` and `encoder.json` from an exported folder."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        self.name = self.info["model"]
        self.dimension = int(self.info["dimension"])
        self.max_length = int(self.info["max_length"])
        self.inputs = list(self.info["inputs"])
        self.pad_id = int(self.info["pad_id"])
        self.batch_size = batch_size
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.counter = Tokenizer.from_file(str(folder / "tokenizer.json"))  # untruncated, for fits()
        self.counter.no_padding()
        self.counter.no_truncation()
        self.tokenizer.enable_truncation(self.max_length)
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        # An explicit count: left at 0, onnxruntime pins its threads to cores, which on a shared machine made
        # a question's embedding about 0.7 ms slower here.
        options.intra_op_num_threads = _cores()
        options.log_severity_level = 3
        # The worker threads spin briefly between the model's operators (onnxruntime's default, set here on
        # purpose) instead of sleeping: on 2 cores a BBC search went from 8.6-9.3 to 7.2-8.3 ms p50, all of it
        # gained in the question's embedding; the rest of the search runs on the calling thread, no slower.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        self.session = ort.InferenceSession(str(folder / model_file), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors for the texts, shape [len(texts), dimension]."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # similar lengths pad little
        for at in range(0, len(order), self.batch_size):
            rows = order[at : at + self.batch_size]
            width = max(len(encodings[i].ids) for i in rows)
            arrays = {name: np.zeros((len(rows), width), dtype=np.int64) for name in _INPUTS}
            arrays["input_ids"][:] = self.pad_id
            for row, i in enumerate(rows):
                e = encodings[i]
                arrays["input_ids"][row, : len(e.ids)] = e.ids
                arrays["attention_mask"][row, : len(e.ids)] = e.attention_mask
                arrays["token_type_ids"][row, : len(e.ids)] = e.type_ids
            out[rows] = self.session.run(None, {name: arrays[name] for name in self.inputs})[0]
        return out

    def fits(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is within the model's word-piece limit, special tokens included."""
        return [len(e.ids) <= self.max_length for e in self.counter.encode_batch(list(texts))]


def has_onnx_encoder(index_dir: Path, model: str) -> bool:
    """Whether the index folder holds an exported encoder for this model."""
    try:
        info = json.loads((index_dir / FOLDER / "encoder.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("model") == model


def exported_before_fusion(index_dir: Path) -> bool:
    """Whether the index folder's encoder was exported by a version that did not yet fuse graphs."""
    try:
        info = json.loads((index_dir / FOLDER / "encoder.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and "fused" not in info


def load_onnx_encoder(index_dir: Path, model: str, batch_size: int = 32) -> OnnxEncoder | None:
    """The exported encoder of an index, if there is one for this model, its files match their checksums (a damaged
    one would embed wrongly without a sound) and onnxruntime can run it."""
    if not has_onnx_encoder(index_dir, model):
        return None
    folder = index_dir / FOLDER
    info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    problem = damaged(folder, info["files"]) if isinstance(info.get("files"), dict) else None
    if problem:
        log.warning("the ONNX encoder in %s/ is damaged (%s); exporting it again", folder, problem)
        return None
    try:
        return OnnxEncoder(index_dir / FOLDER, batch_size)
    except Exception:  # half-written or unreadable: the caller falls back to the model itself
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
        config = net.config
        info["architecture"] = {
            k: getattr(config, k, None) for k in ("model_type", "num_attention_heads", "hidden_size")
        }
        info["min_probe_cosine"] = cosine
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


class EncoderNotSaved(AssistantError):
    """The encoder could be exported but not written into the index folder (a full disk, no permission)."""


def export_in_child(model: str, index_dir: Path, offline: bool = True) -> bool:
    """Export the model in a child process (torch and its memory stay there), then fuse its graph in another (the
    optimizer's copies of the graph stay there); whether an encoder was made."""
    cmd = [sys.executable, "-m", "assistant.onnx_encoder", model, str(index_dir), "--offline" if offline else "--hub"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode == EXIT_NOT_SAVED:
        reason = (done.stderr.strip().splitlines() or ["cannot write"])[-1]
        raise EncoderNotSaved(
            f"cannot save the ONNX encoder in {index_dir / FOLDER}/ ({reason}); free some space and run again "
            "(without it every question would load torch: about 15 s each)"
        )
    if done.returncode != 0 or not has_onnx_encoder(index_dir, model):
        return False
    fuse = [sys.executable, "-m", "assistant.onnx_encoder", "--fuse", str(index_dir)]
    subprocess.run(fuse, capture_output=True, text=True, check=False)  # unfused, the export still serves
    return has_onnx_encoder(index_dir, model)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m assistant.onnx_encoder MODEL INDEX_DIR [--offline|--hub]`: export; `--fuse INDEX_DIR`: fuse the
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
