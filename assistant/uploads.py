"""Articles added from the web chat: checked for type and size, kept in the index folder, indexed incrementally."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


def add_uploads(assistant: Assistant, files: Sequence[str | Path], max_mb: float) -> UploadResult:
    """Keep the acceptable files in <index>/uploads/ and index that folder (only new or changed ones are embedded)."""
    result = UploadResult()
    folder = Path(assistant.settings.index.dir) / UPLOAD_FOLDER
    kinds = " ".join(sorted(SUPPORTED))
    for f in files:
        path = Path(f)
        name = path.name
        if path.suffix.lower() not in SUPPORTED:
            result.refused.append(Problem(name, f"type '{path.suffix or name}' is not accepted; use {kinds}"))
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
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / name)
        result.accepted.append(name)
    if result.accepted:
        result.report = assistant.add([folder])
    return result
