"""Articles added from the web chat: checked for type and size, kept in the index folder, indexed incrementally."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import Assistant
from .documents import MB, SUPPORTED, Problem, load_paths
from .indexer import IndexReport

UPLOAD_FOLDER = "uploads"


@dataclass
class UploadResult:
    """What became of a batch of uploaded files."""

    accepted: list[str] = field(default_factory=list)
    refused: list[Problem] = field(default_factory=list)
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
        lines += [f"Refused {p.path}: {p.reason}" for p in self.refused]
        return "\n".join(lines) or "No files given."

    def to_dict(self) -> dict[str, Any]:
        """Plain data for `POST /api/articles`: accepted names, refused files with reasons, the index report."""
        return {
            "accepted": self.accepted,
            "refused": [{"file": p.path, "reason": p.reason} for p in self.refused],
            "report": self.report.to_dict() if self.report is not None else None,
            "message": self.message(),
        }


_WRITING = threading.Lock()  # one upload indexed at a time per process; searches go on meanwhile


def add_uploads(
    assistant: Assistant, files: Sequence[str | Path], max_mb: float, max_files: int, names: Sequence[str] = ()
) -> UploadResult:
    """Keep the acceptable files in <index>/uploads/ and index that folder (only new or changed ones are embedded).

    `names` are the names the files were uploaded under (default: their own); only the last part of a name
    is kept, so no upload is written outside the uploads folder.
    """
    result = UploadResult()
    if len(files) > max_files:
        result.refused.append(Problem(f"{len(files)} files", f"one upload takes at most {max_files} files"))
        return result
    folder = Path(assistant.settings.index.dir) / UPLOAD_FOLDER
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
        result.accepted.append(name)
        keep.append((path, name))
    if keep:
        with _WRITING:
            folder.mkdir(parents=True, exist_ok=True)
            for path, name in keep:
                shutil.copyfile(path, folder / name)
            result.report = assistant.add([folder])
    return result


def safe_name(name: str) -> str:
    """An uploaded file's name reduced to its last part, without folders or control characters."""
    base = re.split(r"[\\/]", name)[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    return "upload" + Path(base).suffix if base in ("", ".", "..") or base.startswith(".") else base
