"""The prepared encoder as used: questions by the runtime measured fastest for one text, passages in bulk by the one
measured fastest in batches (loaded only when bulk comes: serving questions never loads torch for it)."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .calibrate import load_runtime
from .onnx_encoder import ExportedEncoder

BULK = 64  # texts in one call from which the passage runtime is loaded, when its measured gain is unknown


def worth_loading(calibration: dict[str, Any]) -> int:
    """Texts in one call from which loading the passage runtime pays for itself by the measured rates: its load time
    over the time it saves a passage (an upload of a few passages stays on the question runtime)."""
    measured = calibration.get("measured") or {}
    fast, slow = measured.get(calibration["passages"]), measured.get(calibration["questions"])
    try:
        saved = 1 / slow["passages_per_s"] - 1 / fast["passages_per_s"]
        return max(1, math.ceil(fast["load_s"] / saved)) if saved > 0 else sys.maxsize
    except (TypeError, KeyError, ZeroDivisionError):
        return BULK


class CalibratedEncoder:
    """An exported, calibrated encoder of the cache: two runtimes of the same model, chosen by measurement."""

    def __init__(self, folder: Path, batch_size: int = 32, prepared_s: float = 0.0) -> None:
        """Load the question runtime of a cache entry now; the passage runtime on first bulk use."""
        info = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        choice = info["calibration"]
        self.folder, self.batch_size, self.prepared_s = folder, batch_size, prepared_s
        self.question_runtime, self.passage_runtime = choice["questions"], choice["passages"]
        self.questions = load_runtime(folder, self.question_runtime, batch_size, questions=True)
        self._passages: ExportedEncoder | None = None
        # the same runtime for both: passages by a second instance of it, tuned for batches (from two texts a call)
        self.bulk = worth_loading(choice) if self.passage_runtime != self.question_runtime else 2
        self.name, self.dimension = self.questions.name, self.questions.dimension
        self.max_length = self.questions.max_length

    @property
    def onnx_folder(self) -> Path:
        """The exported ONNX encoder's folder (what a cluster's workers are sent)."""
        return self.folder

    @property
    def passages(self) -> ExportedEncoder:
        """The runtime for bulk passages, loaded on first use."""
        if self._passages is None:
            self._passages = load_runtime(self.folder, self.passage_runtime, self.batch_size)
        return self._passages

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 vectors: in bulk by the passage runtime (loaded when a call is large enough to pay for
        it), a few texts by the question runtime."""
        bulk = len(texts) >= self.bulk if self._passages is None else len(texts) > 1
        encoder = self.passages if bulk else self.questions
        return encoder.encode(texts)

    def fits(self, texts: Sequence[str]) -> list[bool]:
        """Whether each text is within the model's word-piece limit, special tokens included."""
        return self.questions.fits(texts)
