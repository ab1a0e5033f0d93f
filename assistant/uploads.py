"""Articles added from the web chat: checked for type and size, kept in the index folder, indexed incrementally."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import Assistant
from .documents import MB, SUPPORTED, Problem, load_paths
from .indexer import IndexReport
from .types import AssistantError
from .writer import UPLOADS


@dataclass
class UploadResult:
    """What became of a batch of uploaded files."""

    accepted: list[str] = field(default_factory=list)  # the names the files are stored (and cited) under
    refused: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)  # e.g. stored under another name
    report: IndexReport | None = None

    def message(self) -> str:
        """A short report for the person who uploaded: what was indexed, and every file refused, with why."""
        lines = []
        if self.report is not None:
            r = self.report
            lines.append(
                f"Indexed {', '.join(self.accepted)}: {r.new} new and {r.changed} changed article(s), "
                f"{r.embedded} passage(s) embedded in {r.seconds:.1f} s. Ask away."
            )
            lines += [f"Skipped {p.path}: {p.reason}" for p in r.skipped]
            lines += [f"Note on {p.path}: {p.reason}" for p in r.warnings]
        lines += [f"Note on {p.path}: {p.reason}" for p in self.notes]
        lines += [f"Refused {p.path}: {p.reason}" for p in self.refused]
        return "\n".join(lines) or "No files given."

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `POST /api/articles`: accepted names, refused files with reasons, the index report."""
        return {
            "accepted": self.accepted,
            "refused": [{"file": p.path, "reason": p.reason} for p in self.refused],
            "notes": [{"file": p.path, "note": p.reason} for p in self.notes],
            "report": self.report.to_dict() if self.report is not None else None,
            "message": self.message(),
        }


_NAMING = threading.Lock()  # one upload at a time per process chooses its file names
MAX_NAME_BYTES = 150  # an uploaded file's name is cut to this (file systems take 255), its type kept
_UNSHOWN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # not in a name
WAIT_S = 300.0  # how long an upload waits for another writer (`assistant index`) before saying so


def add_uploads(
    assistant: Assistant, files: Sequence[str | Path], max_mb: float, max_files: int, names: Sequence[str] = ()
) -> UploadResult:
    """Keep the acceptable files in <index>/uploads/ and index them; their articles get ids "uploads/NAME".

    `names` are the names the files were uploaded under (default: their own); only the last part of a name is kept,
    so no upload is written outside the uploads folder. A name already taken by a different earlier upload (or by
    another file of this upload) is stored as "NAME (2).txt", and said so; the same content again is indexed as
    before. Nothing is left in the folder when indexing fails.
    """
    result = UploadResult()
    if len(files) > max_files:
        result.refused.append(Problem(f"{len(files)} files", f"one upload takes at most {max_files} files"))
        return result
    folder = Path(assistant.settings.index.dir).resolve() / UPLOADS
    kinds = " ".join(sorted(SUPPORTED))
    keep: list[tuple[Path, str]] = []
    for n, f in enumerate(files):
        path = Path(f)
        name = safe_name(names[n] if n < len(names) else path.name)
        suffix = Path(name).suffix.lower()
        if suffix not in SUPPORTED:
            result.refused.append(Problem(name, f"type '{suffix or name}' is not accepted; use {kinds}"))
            continue
        size = path.stat().st_size
        if size > max_mb * MB:
            result.refused.append(Problem(name, f"{size / MB:.1f} MB is over the {max_mb:g} MB upload limit"))
            continue
        readable = load_paths([path], max_mb)
        if not readable.articles:  # nothing to index: say why, and keep it out of the uploads folder
            reasons = "; ".join(p.reason for p in readable.skipped) or "no article found in it"
            result.refused.append(Problem(name, reasons))
            continue
        keep.append((path, name))
    if not keep:
        return result
    created: list[Path] = []
    stored: list[Path] = []
    try:
        with _NAMING:
            folder.mkdir(parents=True, exist_ok=True)
            for path, name in keep:
                target, new = _store(path, folder, name)
                stored.append(target)
                if new:
                    created.append(target)
                result.accepted.append(target.name)
                if target.name != name:
                    result.notes.append(Problem(name, f"stored as {target.name}: an earlier upload has that name"))
        result.report = assistant.add(stored, uploaded=True, wait_s=WAIT_S)
    except BaseException as e:
        for target in created:  # nothing half-added stays behind to be indexed by a later run
            target.unlink(missing_ok=True)
        if isinstance(e, OSError):  # a folder that cannot be written, a full disk
            raise AssistantError(f"cannot keep the upload in {folder}/ ({e.strerror or e})") from None
        raise
    return result


def _store(source: Path, folder: Path, name: str) -> tuple[Path, bool]:
    """Copy an upload into the folder under `name`, or "stem (2).suffix"... when a different file has that name;
    (the path, whether it was created). Names are claimed with O_EXCL, so two uploads never share one."""
    data = source.read_bytes()
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 10_000):
        target = folder / (name if n == 1 else f"{stem} ({n}){suffix}")
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                if target.read_bytes() == data:
                    return target, False  # the same upload again: indexed as it was (nothing to embed)
            except OSError:
                pass
            continue
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target, True
    raise AssistantError(f"too many uploads named {name} in {folder}/; rename the file")


def safe_name(name: str) -> str:
    """An uploaded file's name reduced to its last part, without folders, control characters, lone surrogates or
    bidirectional controls (U+202E between "evil" and "gpj.txt" shows "eviltxt.jpg"), and at most MAX_NAME_BYTES
    bytes of UTF-8 (its type kept)."""
    base = re.split(r"[\\/]", name)[-1]
    base = _UNSHOWN.sub("", base).strip()
    if base in ("", ".", "..") or base.startswith("."):
        base = "upload" + Path(base).suffix
    suffix = Path(base).suffix
    if len(suffix.encode("utf-8")) > 16:
        suffix = ""
    if len(base.encode("utf-8")) > MAX_NAME_BYTES:
        stem = base[: len(base) - len(suffix)] if suffix else base
        budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip()
        base = stem + suffix
    return base
