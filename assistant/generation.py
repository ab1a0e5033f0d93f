"""Writing the embedded index: a new segment for what a write adds, deletion files for what it removes, merges
on a size rule, then the manifest switched to name them all at once.

A write costs what it changes: the segments already there are not copied. Nothing is removed until the new
manifest is in place, so a kill at any moment leaves the last good state; leftovers go at the next write.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .highlight import ANALYSIS_VERSION, analysed_otherwise
from .postings import Postings
from .segment import ARTICLE_COLUMNS, PASSAGE_COLUMNS, Segment, analyse_all, insert_articles, write_segment
from .types import AssistantError

if TYPE_CHECKING:
    from .store import Snapshot
    from .writer import Change

FORMAT = 2
READS = (1, 2)  # formats this version opens; a format-1 index is rewritten as segments by its next write
MANIFEST = "manifest.json"
MERGE_FACTOR = 8  # this many adjacent segments of about one size are merged into one (merge_plan)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a part."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


LEVEL_SPAN = 0.75  # merge_plan: a level group spans this many powers of the merge factor below its largest (Lucene's)


def merge_plan(sizes: list[int], factor: int) -> list[list[int]]:
    """Runs of adjacent segments to merge, oldest first (Lucene's log merge policy, by passages): each segment's
    level is log_factor of its size; from the oldest, a level group runs to the last segment within LEVEL_SPAN of the
    largest level left, smaller ones between included; each `factor` adjacent segments of a group become one, and
    again, until no group holds `factor`.

    So at most about factor - 1 segments are left per level group (a few groups per power of `factor`), whatever
    mix of sizes the writes bring, each passage is copied a few times (about once per level it climbs), and a
    large segment is never merged with a run of small writes."""
    factor = max(2, factor)
    runs = [[i] for i in range(len(sizes))]
    totals = list(sizes)
    while True:
        levels = [math.log(max(t, 1), factor) for t in totals]
        windows, start = [], 0
        while start < len(totals):
            bottom = max(levels[start:]) - LEVEL_SPAN
            upto = len(totals) - 1
            while levels[upto] < bottom:
                upto -= 1
            while start + factor <= upto + 1:
                windows.append((start, start + factor))
                start += factor
            start = upto + 1
        if not windows:
            return runs
        for a, b in reversed(windows):
            runs[a:b] = [[i for run in runs[a:b] for i in run]]
            totals[a:b] = [sum(totals[a:b])]


def write_generation(
    index_dir: Path,
    base: Snapshot | None,
    change: Change,
    exact_max: int = 100_000,
    neighbors: int = 32,
    merge_factor: int = MERGE_FACTOR,
    optimize: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Apply a change (its removals, then its additions as a new segment) to `base` and switch the manifest to the
    result; the caller holds the writer lock. `optimize`: merge every segment into one.

    A failure to write (a full disk) leaves the index as it was and is one line.
    """
    old = base.manifest if base is not None else {}
    on_disk = _current(index_dir)
    number = max(_number(old.get("generation")), _number(on_disk.get("generation"))) + 1
    collect(index_dir, old)
    made: list[Path] = []
    try:
        first_segment = max(old.get("next_segment", 1), on_disk.get("next_segment", 1))
        manifest = _write(
            index_dir,
            base,
            change,
            (number, first_segment),
            made,
            exact_max,
            neighbors,
            merge_factor,
            optimize,
            progress,
        )
        write_atomic(index_dir / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))
    except (OSError, sqlite3.Error, RuntimeError, MemoryError) as e:
        # A full disk, a folder that cannot be written: the manifest still names the last good state.
        if _number(_current(index_dir).get("generation")) != number:
            for path in made:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        reason = getattr(e, "strerror", None) or (str(e).splitlines() or [type(e).__name__])[0]
        raise AssistantError(
            f"could not write to the index in {index_dir}/ ({reason}); the index is as it was: "
            "free some space (or fix the folder) and run the same command again"
        ) from None
    collect(index_dir, manifest)
    return manifest


def _write(
    index_dir: Path,
    base: Snapshot | None,
    change: Change,
    numbers: tuple[int, int],
    made: list[Path],
    exact_max: int,
    neighbors: int,
    merge_factor: int,
    optimize: bool,
    progress: bool = False,
) -> dict[str, Any]:
    """Write the new files (recording each in `made`) and return the manifest naming them."""
    old = base.manifest if base is not None else {}
    with_title = bool(change.meta["chunking"].get("with_title", False))
    entries = [] if base is None else [dict(s.info) for s in base.segments]
    next_id = old.get("next_id") or max((int(s.ids[-1]) + 1 for s in (base.segments if base else []) if len(s.ids)),
                                        default=1)  # fmt: skip
    number, next_segment = numbers
    gone = set(change.remove) | {a.id for a, _, _ in change.add}
    if base is not None and gone:
        for seg, entry in zip(base.segments, entries, strict=True):
            held = sorted(a for a in gone.intersection(seg.article_set()) if a not in seg.deleted)
            if held:
                entry["deleted"] = _delete(seg, held, number, made)
    if change.add:
        name = f"seg-{next_segment:06d}"
        next_segment += 1
        now, first = time.time(), next_id
        dim = int(change.meta["dimension"])
        vectors = np.concatenate([np.asarray(v, np.float32).reshape(len(ps), dim) for _, ps, v in change.add])

        def fill(db: sqlite3.Connection) -> None:
            insert_articles(db, change.add, first, change.root_of, now, change.analysed)

        entry = _build(index_dir, name, made, fill, vectors, None, with_title, exact_max, neighbors)
        next_id += entry["passages"]
        entries.append(entry)
    entries = [e for e in entries if _live(e)]  # a segment whose every article went is dropped whole
    stale = base is not None and (analysed_otherwise(old) or old.get("format") != FORMAT)
    runs = (
        [list(range(len(entries)))]
        if (stale or optimize) and entries
        else merge_plan([_live(e) for e in entries], merge_factor)
    )
    merged = []
    for run in runs:
        first = entries[run[0]]
        # a run of one is rewritten only to drop its deleted passages when optimizing, or to analyse it again
        if len(run) == 1 and not stale and not (optimize and _live(first) != first["passages"]):
            merged.append(first)
            continue
        name = f"seg-{next_segment:06d}"
        next_segment += 1
        sources = [entries[i] for i in run]
        merged.append(_merge(index_dir, name, sources, made, with_title, exact_max, neighbors, stale, progress))
    entries = [e for e in merged if e["passages"]]
    roots = sorted(set(old.get("roots") or (base.roots() if base is not None else [])) | set(change.roots))
    if change.fresh:
        roots = sorted(set(change.roots))
    kinds = sorted({e["vectors"] for e in entries}) or ["flat"]
    return {
        "format": FORMAT,
        "generation": f"gen-{number:06d}",
        **change.meta,
        "analysis": ANALYSIS_VERSION,
        "vectors": kinds[-1] if len(kinds) == 1 else "+".join(kinds),
        "articles": sum(e["articles"] - (e.get("deleted") or {}).get("articles", 0) for e in entries),
        "passages": sum(_live(e) for e in entries),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "next_id": next_id,
        "next_segment": next_segment,
        "roots": roots,
        "segments": entries,
    }


def _live(entry: dict[str, Any]) -> int:
    """Passages of a segment that are not deleted."""
    return entry["passages"] - (entry.get("deleted") or {}).get("passages", 0)


def _delete(seg: Segment, held: list[str], number: int, made: list[Path]) -> dict[str, Any]:
    """A segment's new deletion file: the articles deleted before plus `held`, with their passage ids."""
    articles = sorted(seg.deleted | set(held))
    codes = {a: i for i, a in enumerate(seg.article_ids)}
    wanted = np.array([codes[a] for a in articles], dtype=np.int64)
    passages = np.asarray(seg.ids)[np.isin(np.asarray(seg.row_article), wanted)]
    path = seg.folder / f"del-{number:06d}.json"
    data = json.dumps({"articles": articles, "passages": passages.tolist()}).encode("utf-8")
    made.append(path)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return {"file": path.name, "articles": len(articles), "passages": len(passages),
            "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip


def _build(index_dir: Path, name: str, made: list[Path], fill: Any, vectors: np.ndarray, postings: Postings | None,
           with_title: bool, exact_max: int, neighbors: int, graph: Any = None,
           progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """Write a segment in a hidden folder, then rename it into place; its manifest entry."""
    tmp = index_dir / f".building-{name}"
    made += [tmp, index_dir / name]
    entry = write_segment(tmp, fill, vectors, postings, with_title, exact_max, neighbors, graph, progress)
    os.rename(tmp, index_dir / name)
    _fsync_dir(index_dir)
    return {"name": name, **entry}


def _merge(index_dir: Path, name: str, sources: list[dict[str, Any]], made: list[Path], with_title: bool,
           exact_max: int, neighbors: int, reanalyse: bool, progress: bool = False) -> dict[str, Any]:  # fmt: skip
    """One segment holding the live rows of adjacent segments (in order), analysed again when `reanalyse`."""
    segs = [Segment(index_dir / e["name"], e, with_title, search=False) for e in sources]
    try:
        keeps = [s.live if s.live is not None else np.ones(len(s.ids), bool) for s in segs]
        postings = Postings.merge([(s.postings, k) for s, k in zip(segs, keeps, strict=True)])

        def fill(db: sqlite3.Connection) -> None:
            db.execute("CREATE TEMP TABLE gone (id TEXT PRIMARY KEY)")
            for s in segs:
                db.execute("DELETE FROM temp.gone")  # each source's own deleted articles (one may be back in another)
                db.executemany("INSERT OR IGNORE INTO gone VALUES (?)", [(a,) for a in s.deleted])
                db.commit()
                db.execute("ATTACH DATABASE ? AS src", (str(s.folder / "index.sqlite"),))
                cols = {r[1] for r in db.execute("PRAGMA src.table_info(passages)")}
                chosen = PASSAGE_COLUMNS if "analysis" in cols else PASSAGE_COLUMNS.replace("analysis", "NULL")
                db.execute(f"INSERT INTO articles SELECT {ARTICLE_COLUMNS} FROM src.articles "
                           "WHERE id NOT IN (SELECT id FROM temp.gone)")  # fmt: skip
                db.execute(f"INSERT INTO passages SELECT {chosen} FROM src.passages "
                           "WHERE article_id NOT IN (SELECT id FROM temp.gone) ORDER BY id")  # fmt: skip
                db.commit()
                db.execute("DETACH DATABASE src")
            if reanalyse:
                analyse_all(db)

        vectors = np.concatenate([np.asarray(s.matrix)[k] for s, k in zip(segs, keeps, strict=True)])
        first = segs[0]
        whole = first.graph is not None and first.live is None and not first.info.get("legacy")
        graph = first.folder / "graph.faiss" if whole else None
        return _build(index_dir, name, made, fill, vectors, postings, with_title, exact_max, neighbors, graph,
                      progress)  # fmt: skip
    finally:
        for s in segs:
            s.close()


def _number(generation: Any) -> int:
    """The counter in a generation's name ('gen-000012' -> 12; 0 when none)."""
    text = str(generation or "")[4:]
    return int(text) if text.isdigit() else 0


def _current(index_dir: Path) -> dict[str, Any]:
    """The manifest now in place ({} when it cannot be read)."""
    try:
        data = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def collect(index_dir: Path, manifest: dict[str, Any]) -> None:
    """Remove what the manifest in place does not name: old segments and generations, deletion files, leftovers of
    a write that was stopped. Only a writer (holding the lock) calls this; a reader that loses a file re-opens."""
    current = _current(index_dir)
    if current.get("generation") != manifest.get("generation") and manifest:
        return  # someone else's state is in place: leave it alone
    if not current:
        named = set()
    elif current.get("format") == 1:
        named = {current.get("generation")}
    else:
        named = {s["name"] for s in current.get("segments", [])}
    for path in index_dir.glob(".building-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in list(index_dir.glob("seg-*")) + list(index_dir.glob("gen-*")):
        if path.name not in named and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
    for seg in current.get("segments", []) if current.get("format") == FORMAT else []:
        keep = (seg.get("deleted") or {}).get("file")
        for f in (index_dir / seg["name"]).glob("del-*.json"):
            if f.name != keep:
                f.unlink(missing_ok=True)
