"""Choosing the encoder's runtime by measuring it on this machine: every candidate (onnxruntime, torch fp32, torch
bf16) is checked against the model's own vectors, and the fastest that agrees is kept (run in a child process)."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .calibration_texts import CALIBRATION_REFERENCE, calibration_texts
from .onnx_encoder import MIN_COSINE, PROBES, ExportedEncoder, OnnxEncoder

ROUNDS = 2  # timed rounds, every candidate once per round in turn (the machine may be shared); the best is kept
QUESTION_RUNS = 10  # single-question encodes a candidate is timed on, each round
SAMPLE = 32  # calibration passages checked and timed: one batch at the default size (the cosine pass warms up)
QUESTIONS_PER_LOAD = 100  # a question runtime's load time is spread over this many questions (a process's first)
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPUs with bf16 arithmetic; elsewhere torch would only emulate it


@dataclass(frozen=True)
class Measured:
    """One candidate runtime as measured: how close its vectors are to the model's, and how fast it is."""

    name: str
    min_cosine: float
    passages_per_s: float = 0.0
    question_ms: float = 0.0
    load_s: float = 0.0
    error: str = ""


def candidates(cpu_flags: Sequence[str]) -> list[str]:
    """The runtimes worth measuring on a CPU with these flags."""
    names = ["onnx", "torch-fp32"]
    return names + (["torch-bf16"] if any(f in cpu_flags for f in BF16_FLAGS) else [])


def load_runtime(folder: Path, name: str, batch_size: int = 32, questions: bool = False) -> ExportedEncoder:
    """A runtime of the exported encoder in `folder` by its name ("onnx", "torch-fp32", "torch-bf16"); `questions`:
    one that embeds a question at a time."""
    if name == "onnx":
        return OnnxEncoder(folder, batch_size, stop_spinning=questions)
    from .torch_encoder import TorchEncoder

    return TorchEncoder(folder, batch_size, precision=name.removeprefix("torch-"))


def select(measured: Sequence[Measured], min_cosine: float = MIN_COSINE) -> dict[str, str] | None:
    """The runtime for passages (most passages/s) and for questions (least time for one, its load spread over a
    process's first questions), among those whose vectors are within `min_cosine` of the model's; None if none is."""
    good = [m for m in measured if not m.error and m.min_cosine >= min_cosine]
    if not good:
        return None
    passages = max(good, key=lambda m: m.passages_per_s)
    questions = min(good, key=lambda m: m.question_ms + 1000 * m.load_s / QUESTIONS_PER_LOAD)
    return {"passages": passages.name, "questions": questions.name}


def _seconds(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(
    folder: Path, names: Sequence[str], texts: Sequence[str], reference: np.ndarray, batch_size: int = 32
) -> list[Measured]:
    """Load each candidate, check its vectors of `texts` against `reference`, then time the ones that agree on the
    passages and on single questions, interleaved over ROUNDS rounds."""
    loaded: dict[str, ExportedEncoder] = {}
    out: dict[str, Measured] = {}
    imports = {"onnx": _seconds(lambda: __import__("onnxruntime"))}
    for name in names:
        try:
            if name.startswith("torch") and "torch" not in imports:  # once, charged to every torch runtime
                imports["torch"] = _seconds(lambda: __import__("transformers").AutoModel)
            start = time.perf_counter()
            encoder = load_runtime(folder, name, batch_size)
            load_s = time.perf_counter() - start + imports[name.split("-")[0]]
            cosine = float(np.min(np.sum(encoder.encode(texts) * reference, axis=1)))  # also its warm-up
        except Exception as e:  # a runtime that cannot load here (no torch, no transformers): not a candidate
            out[name] = Measured(name, 0.0, error=f"{type(e).__name__}: {str(e)[:200]}")
            continue
        out[name] = Measured(name, cosine, load_s=load_s)
        if cosine >= MIN_COSINE:
            loaded[name] = encoder
    passages = [t for t in texts if t not in PROBES]
    best = {name: float("inf") for name in loaded}
    question_ms: dict[str, list[float]] = {name: [] for name in loaded}
    for _ in range(ROUNDS):
        for name, encoder in loaded.items():
            best[name] = min(best[name], _seconds(lambda e=encoder: e.encode(passages)))
            for _ in range(QUESTION_RUNS):
                question_ms[name].append(1000 * _seconds(lambda e=encoder: e.encode([PROBES[0]])))
    for name in loaded:
        rate, ms = len(passages) / best[name], statistics.median(question_ms[name])
        out[name] = Measured(name, out[name].min_cosine, rate, ms, out[name].load_s)
    return [out[name] for name in names]


def cpu_flags() -> list[str]:
    """This CPU's feature flags (Linux), else none."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("flags"):
                return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def calibrate(folder: Path, batch_size: int = 32) -> dict[str, Any]:
    """Measure every candidate on the exported encoder in `folder`, record the choice and the rates in its
    `encoder.json` (key "calibration") and return that record."""
    start = time.perf_counter()
    texts = calibration_texts()[:SAMPLE] + list(PROBES)
    reference = np.concatenate([np.load(folder / CALIBRATION_REFERENCE)[:SAMPLE], np.load(folder / "probes.npy")])
    measured = measure(folder, candidates(cpu_flags()), texts, reference, batch_size)
    chosen = select(measured) or {"passages": "", "questions": ""}
    record = {
        **chosen,
        "min_cosine": MIN_COSINE,
        "batch_size": batch_size,
        "seconds": round(time.perf_counter() - start, 2),
        "measured": {m.name: {k: v for k, v in asdict(m).items() if k != "name"} for m in measured},
    }
    info_file = folder / "encoder.json"
    info = json.loads(info_file.read_text(encoding="utf-8"))
    info["calibration"] = record
    info_file.write_text(json.dumps(info, indent=2), encoding="utf-8")  # the folder is not yet in the cache
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m assistant.calibrate FOLDER [BATCH_SIZE]`: calibrate an exported encoder; exit 0 when one agrees."""
    args = list(sys.argv[1:] if argv is None else argv)
    record = calibrate(Path(args[0]), int(args[1]) if len(args) > 1 else 32)
    print(json.dumps(record))
    return 0 if record["passages"] else 1


if __name__ == "__main__":
    sys.exit(main())
