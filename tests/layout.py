"""The embedded index's files as tests look at them: the segments the manifest names, leftovers, all passages."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path


def manifest(index: Path) -> dict:
    """The manifest in place."""
    return json.loads((Path(index) / "manifest.json").read_text())


def segments(index: Path) -> list[Path]:
    """The folders of the segments the manifest names, oldest first."""
    return [Path(index) / s["name"] for s in manifest(index)["segments"]]


def biggest(index: Path) -> Path:
    """The folder of the segment with the most passages."""
    entries = manifest(index)["segments"]
    return Path(index) / max(entries, key=lambda s: s["passages"])["name"]


def leftovers(index: Path) -> list[str]:
    """Segment and building folders the manifest does not name (a finished write leaves none)."""
    named = {p.name for p in segments(index)}
    return sorted(p.name for p in Path(index).iterdir() if p.is_dir() and p.name.startswith(("seg-", "gen-", ".b"))
                  and p.name not in named)  # fmt: skip


def live_passages(index: Path) -> list[tuple]:
    """(article_id, char_start, char_end, text) of every passage not deleted, sorted."""
    out = []
    for info in manifest(index)["segments"]:
        folder = Path(index) / info["name"]
        gone = set()
        if info.get("deleted"):
            gone = set(json.loads((folder / info["deleted"]["file"]).read_text())["articles"])
        with sqlite3.connect(f"file:{folder / 'index.sqlite'}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT article_id, char_start, char_end, text FROM passages").fetchall()
        out += [r for r in rows if r[0] not in gone]
    return sorted(out)
