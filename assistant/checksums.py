"""Checksums of index files, recorded in the manifest when a generation is written and checked when it is opened."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

BLOCK = 1 << 20  # bytes read at a time for a whole-file hash
SAMPLE_BLOCK = 4096
SAMPLE_COUNT = 256  # evenly spaced blocks: any damaged run longer than 1/256 of a file holds one of them
WHOLE_MAX = 32 * 1024 * 1024  # files up to this size are hashed whole when opened; larger ones by their sample


def file_sha256(path: Path) -> str:
    """SHA-256 of a whole file, read a block at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()


def sample_sha256(path: Path) -> str:
    """SHA-256 of SAMPLE_COUNT evenly spaced blocks of a file (and its size): about 1 MB read whatever its size."""
    size = os.path.getsize(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= SAMPLE_BLOCK * SAMPLE_COUNT:
            h.update(f.read())
        else:
            step = (size - SAMPLE_BLOCK) / (SAMPLE_COUNT - 1)
            for i in range(SAMPLE_COUNT):
                f.seek(int(i * step))
                h.update(f.read(SAMPLE_BLOCK))
    return h.hexdigest()


def describe(folder: Path) -> dict[str, dict[str, Any]]:
    """Every file under a folder (by path relative to it) with its size, whole hash and sample hash."""
    out = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder).as_posix()
        out[rel] = {"bytes": f.stat().st_size, "sha256": file_sha256(f), "sample": sample_sha256(f)}
    return out


def damaged(folder: Path, files: dict[str, dict[str, Any]], full: bool = False) -> str | None:
    """What is wrong with a folder's files against their recorded checksums ('' parts: None when all match).

    Cheap by default: every size, whole hashes of files up to WHOLE_MAX, sample hashes of larger ones;
    `full` hashes every file whole.
    """
    for rel, want in files.items():
        path = folder / rel
        try:
            size = path.stat().st_size
        except OSError:
            return f"{rel} is missing"
        if size != want.get("bytes"):
            return f"{rel} is {size:,} bytes, the manifest says {want.get('bytes'):,}"
        whole = full or size <= WHOLE_MAX
        got = file_sha256(path) if whole else sample_sha256(path)
        if got != want.get("sha256" if whole else "sample"):
            return f"{rel} does not match its checksum (its content changed after it was written)"
    return None
