"""The news passages every runtime of the encoder is checked and timed on (calibration.txt, shipped with the code)."""

from __future__ import annotations

from pathlib import Path

FILE = Path(__file__).with_name("calibration.txt")  # 64 passages of 5 seed and 30 BBC articles, as indexed
CALIBRATION_REFERENCE = "calibration.npy"  # in an exported folder: the model's own vectors of these passages


def calibration_texts() -> list[str]:
    """The calibration passages (title + passage, about 700 characters each, one a line)."""
    return [line for line in FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
