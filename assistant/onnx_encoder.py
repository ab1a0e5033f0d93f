"""The embedding model exported once to ONNX: questions and passages embedded by onnxruntime, without torch."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .checksums import damaged
from .types import AssistantError

log = logging.getLogger("assistant")
FOLDER = "encoder"  # an export's folder (inside an index folder, where earlier versions kept it)
MIN_COSINE = 0.999  # an export whose vectors differ more than this from the model's own is not used
PROBES = (
    "What did Zelensky say to Russians?",
    "How many people were called up?",
    "Bronchitis ruled Davenport, the 2000 Australian Open champion, out of her Sydney quarter-final on Thursday. " * 12,
)
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXIT_NOT_SAVED = 2  # the export child's exit code when it could not write the encoder


def _cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def encode_padded(encoder: Any, texts: Sequence[str], run: Callable[[dict[str, np.ndarray]], np.ndarray]) -> np.ndarray:
    """Vectors for the texts, tokenized by `encoder.tokenizer` and run in batches of similar length by `run` (its
    `inputs` as padded int64 arrays -> one vector a row); shared by every runtime of an exported encoder."""
    out = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
    if not texts:
        return out
    encodings = encoder.tokenizer.encode_batch(list(texts))
    order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # similar lengths pad little
    for at in range(0, len(order), encoder.batch_size):
        rows = order[at : at + encoder.batch_size]
        width = max(len(encodings[i].ids) for i in rows)
        arrays = {name: np.zeros((len(rows), width), dtype=np.int64) for name in INPUTS}
        arrays["input_ids"][:] = encoder.pad_id
        for row, i in enumerate(rows):
            e = encodings[i]
            arrays["input_ids"][row, : len(e.ids)] = e.ids
            arrays["attention_mask"][row, : len(e.ids)] = e.attention_mask
            arrays["token_type_ids"][row, : len(e.ids)] = e.type_ids
        out[rows] = run({name: arrays[name] for name in encoder.inputs})
    return out


class ExportedEncoder:
    """An exported encoder's folder read: its `encoder.json`, and its tokenizer cut at the model's limit (and uncut,
    for `fits`); a runtime subclass runs the model."""

    def __init__(self, folder: Path, batch_size: int = 32) -> None:
        """Read `encoder.json` and `tokenizer.json` from an exported folder."""
        from tokenizers import Tokenizer

        self.folder = folder
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

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Unit vectors for one padded batch (`inputs` as int64 arrays)."""
        raise NotImplementedError

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors for the texts, shape [len(texts), dimension]."""
        return encode_padded(self, texts, self.run)

    def fits(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is within the model's word-piece limit, special tokens included."""
        return [len(e.ids) <= self.max_length for e in self.counter.encode_batch(list(texts))]


class OnnxEncoder(ExportedEncoder):
    """A sentence-transformers model (transformer, mean or CLS pooling, unit length) run by onnxruntime."""

    def __init__(
        self,
        folder: Path,
        batch_size: int = 32,
        model_file: str = "model.onnx",
        threads: int | None = None,
        stop_spinning: bool = False,
    ) -> None:
        """Load `model.onnx` (or `model_file`), `tokenizer.json` and `encoder.json` from an exported folder; the model
        runs on `threads` threads (default: every core this process may use); `stop_spinning`: a question's encoder,
        whose threads give the cores back as soon as it has run."""
        import onnxruntime as ort

        super().__init__(folder, batch_size)
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        # An explicit count: left at 0, onnxruntime pins its threads to cores, which on a shared machine made
        # a question's embedding about 0.7 ms slower here.
        options.intra_op_num_threads = threads or _cores()
        options.log_severity_level = 3
        # The worker threads spin briefly between the model's operators (onnxruntime's default, set here on
        # purpose) instead of sleeping: on 2 cores a BBC search went from 8.6-9.3 to 7.2-8.3 ms p50, all of it
        # gained in the question's embedding; the rest of the search runs on the calling thread, no slower.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        if stop_spinning:  # ...but for a question only while the model runs: left spinning after it, they took the
            # cores from what the search does next (a database server on this machine above all): PostgreSQL's BBC
            # search 17.2-19.7 -> 15.3-16.4 ms p50 in alternating processes, the embedded engine's unchanged (8.4-9.4
            # ms either way). Not for passages: batches after batches went about 3% slower (47 against 48.8 a second).
            options.add_session_config_entry("session.force_spinning_stop", "1")
        self.session = ort.InferenceSession(str(folder / model_file), options, providers=["CPUExecutionProvider"])

    @property
    def onnx_folder(self) -> Path:
        """The exported folder this encoder was loaded from (what a cluster's workers are sent)."""
        return self.folder

    def run(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """Unit vectors for one padded batch, by onnxruntime."""
        return self.session.run(None, arrays)[0]


def has_onnx_encoder(index_dir: Path, model: str) -> bool:
    """Whether the index folder holds an exported encoder for this model."""
    try:
        info = json.loads((index_dir / FOLDER / "encoder.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("model") == model


def load_onnx_encoder(index_dir: Path, model: str, batch_size: int = 32) -> OnnxEncoder | None:
    """The exported encoder of an index, if there is one for this model, its files match their checksums (a damaged
    one would embed wrongly without a sound) and onnxruntime can run it."""
    if not has_onnx_encoder(index_dir, model):
        return None
    folder = index_dir / FOLDER
    info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
    problem = damaged(folder, info["files"]) if isinstance(info.get("files"), dict) else None
    if problem:
        log.warning("the ONNX encoder in %s/ is damaged (%s); using the shared encoder cache instead", folder, problem)
        return None
    try:
        return OnnxEncoder(index_dir / FOLDER, batch_size)
    except Exception:  # half-written or unreadable: the caller falls back to the model itself
        return None


class EncoderNotSaved(AssistantError):
    """The encoder could be exported but not written into the index folder (a full disk, no permission)."""


def export_in_child(model: str, index_dir: Path, offline: bool = True) -> bool:
    """Export the model in a child process (torch and its memory stay there), then fuse its graph in another (the
    optimizer's copies of the graph stay there); whether an encoder was made."""
    cmd = [sys.executable, "-m", "assistant.onnx_export", model, str(index_dir), "--offline" if offline else "--hub"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode == EXIT_NOT_SAVED:
        reason = (done.stderr.strip().splitlines() or ["cannot write"])[-1]
        raise EncoderNotSaved(
            f"cannot save the ONNX encoder in {index_dir / FOLDER}/ ({reason}); free some space and run again "
            "(without it every question would load torch: about 15 s each)"
        )
    if done.returncode != 0 or not has_onnx_encoder(index_dir, model):
        return False
    fuse = [sys.executable, "-m", "assistant.onnx_export", "--fuse", str(index_dir)]
    subprocess.run(fuse, capture_output=True, text=True, check=False)  # unfused, the export still serves
    return has_onnx_encoder(index_dir, model)
