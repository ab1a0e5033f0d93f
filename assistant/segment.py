"""One segment of the embedded index: a folder of passages (SQLite), their vectors and BM25 postings, never changed
after it is written; articles removed later are listed in a small deletion file beside it (named by the manifest).

A segment's rows are its passages in id order. Vectors are a memory-mapped matrix (`vectors.npy`, searched exactly)
or, above `index.exact_max_passages`, an HNSW graph (`graph.faiss`, its vectors memory-mapped too). An index
written by an earlier version (format 1: one generation folder) is read as one segment whose postings are made
when it is opened.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .analysis import terms
from .checksums import describe
from .chunking import indexed_text
from .highlight import analyse_article, spans
from .postings import Postings, mapped, save_array
from .types import AssistantError
from .vectors import EF_CONSTRUCTION, flat_matrix, half_copy

SCHEMA = """
CREATE TABLE articles (id TEXT PRIMARY KEY, title TEXT, text TEXT, path TEXT, source TEXT, url TEXT,
                       published TEXT, sha TEXT, root TEXT, added REAL);
CREATE TABLE passages (id INTEGER PRIMARY KEY, article_id TEXT NOT NULL, seq INTEGER, char_start INTEGER,
                       char_end INTEGER, n_tokens INTEGER, text TEXT, analysis TEXT);
CREATE INDEX passages_article ON passages(article_id);
"""
ARTICLE_COLUMNS = "id, title, text, path, source, url, published, sha, root, added"
PASSAGE_COLUMNS = "id, article_id, seq, char_start, char_end, n_tokens, text, analysis"


def _read_ahead(path: Path, tail: int) -> None:
    """Read a graph file's head (its links, all but the `tail` bytes of vectors at its end) in large sequential
    reads, so that FAISS's reading it through a memory map finds it cached: cold, a million passages' 260 MB of
    links took 6.4 s a 4 KB page fault at a time, and 0.6 s so."""
    with open(path, "rb", buffering=0) as f:
        head = max(0, os.fstat(f.fileno()).st_size - tail)
        while f.tell() < head and f.read(min(16 << 20, head - f.tell())):
            pass


class Segment:
    """A loaded segment and which of its rows are live (not removed since it was written)."""

    def __init__(self, folder: Path, info: dict[str, Any], with_title: bool, search: bool = True) -> None:
        """Open a segment folder as the manifest describes it (`info`; `search`: also ready its 16-bit copy)."""
        self.folder, self.info, self.name = folder, info, info["name"]
        self.db = sqlite3.connect(f"file:{folder / 'index.sqlite'}?mode=ro", uri=True, check_same_thread=False)
        self.lock = threading.Lock()
        self.graph: Any = None
        self.half: Any = None
        if info.get("legacy"):
            self._open_legacy(with_title)
        else:
            self.ids = mapped(folder / "ids.npy")
            self.row_article = mapped(folder / "row_article.npy")
            self.article_ids: list[str] = json.loads((folder / "articles.json").read_text(encoding="utf-8"))
            self.postings = Postings.load(folder)
            if (folder / "graph.faiss").exists():
                import faiss

                if info.get("dimension"):
                    _read_ahead(folder / "graph.faiss", len(self.ids) * int(info["dimension"]) * 4)
                self.graph = faiss.read_index(str(folder / "graph.faiss"), faiss.IO_FLAG_MMAP_IFC)
                self.matrix = _storage(self.graph)
            else:
                self.matrix = mapped(folder / "vectors.npy")
        if search and self.graph is None and len(self.matrix):
            self.half = half_copy(np.ascontiguousarray(self.matrix))
        deleted = info.get("deleted")
        self.deleted: frozenset[str] = frozenset()
        self.live: np.ndarray | None = None
        if deleted:
            gone = json.loads((folder / deleted["file"]).read_text(encoding="utf-8"))
            self.deleted = frozenset(gone["articles"])
            self.live = ~np.isin(np.asarray(self.ids), np.asarray(gone["passages"], dtype=np.int64))
        n = len(self.ids)  # the database's own count is not read here: cold, at a million passages, it took 0.8 s
        sizes = {n, len(self.postings), len(self.matrix), info.get("passages", n)}  # (its checksum is checked)
        if len(sizes) != 1:
            raise AssistantError(f"segment {self.name} is inconsistent (passage counts {sorted(sizes)})")
        self.count = n if self.live is None else int(self.live.sum())

    def _open_legacy(self, with_title: bool) -> None:
        """A format-1 generation: ids, articles and postings from its database, vectors from its FAISS file."""
        import faiss

        pid_art = self.db.execute("SELECT id, article_id FROM passages ORDER BY id").fetchall()
        self.article_ids = [r[0] for r in self.db.execute("SELECT id FROM articles ORDER BY id")]
        at = {a: i for i, a in enumerate(self.article_ids)}
        self.ids = np.array([p for p, _ in pid_art], dtype=np.int64)
        self.row_article = np.array([at[a] for _, a in pid_art], dtype=np.int32)
        self.postings = _postings_of(self.db, with_title)
        try:
            index = faiss.read_index(str(self.folder / "vectors.faiss"))
        except RuntimeError:
            raise AssistantError(f"vector file in {self.folder} is damaged or missing") from None
        flat = flat_matrix(index)
        if flat is not None:
            if not np.array_equal(flat[1], self.ids):
                raise AssistantError(f"vector file in {self.folder} does not match the passages")
            self.matrix = flat[0]
        elif index.ntotal:
            self.graph = faiss.downcast_index(index.index)
            self.matrix = _storage(self.graph)
        else:
            self.matrix = np.zeros((0, index.d), np.float32)
        self._keep = index  # the id map owns the graph

    def mask(self, allowed: np.ndarray | None) -> np.ndarray | None:
        """Rows that are live and (if given) allowed by a filter; None for every row."""
        if allowed is None:
            return self.live
        return allowed if self.live is None else allowed & self.live

    @functools.cached_property
    def position(self) -> dict[str, int]:
        """Each article written into this segment (deleted ones too) by its position in `article_ids`."""
        return {a: i for i, a in enumerate(self.article_ids)}

    def article_set(self) -> Collection[str]:
        """Ids of every article written into this segment (deleted ones too)."""
        return self.position.keys()

    def codes(self, article_ids: Sequence[str]) -> np.ndarray:
        """The positions in `article_ids` of those of the given articles that this segment holds live."""
        got = {c for a in article_ids if (c := self.position.get(a)) is not None and a not in self.deleted}
        return np.array(sorted(got), dtype=np.int64)

    @functools.cached_property
    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        """Each article's rows, first and past-last by article position (an article's passages are consecutive
        rows: they are written together and merges keep the order); -1 for an article without passages."""
        ra = np.asarray(self.row_article)
        starts = np.full(len(self.article_ids), -1, dtype=np.int64)
        ends = np.full(len(self.article_ids), -1, dtype=np.int64)
        if len(ra):
            cut = np.flatnonzero(np.diff(ra)) + 1
            first = np.concatenate(([0], cut))
            starts[ra[first]] = first
            ends[ra[first]] = np.concatenate((cut, [len(ra)]))
        return starts, ends

    def articles_live(self) -> list[str]:
        """Ids of this segment's articles that are not deleted."""
        return [a for a in self.article_ids if a not in self.deleted]

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """Rows of a read on this segment's database."""
        with self.lock:
            return self.db.execute(sql, list(args)).fetchall()

    def close(self) -> None:
        """Close the database (mapped files go when the last reference does)."""
        self.db.close()


def _postings_of(db: sqlite3.Connection, with_title: bool) -> Postings:
    """BM25 postings of a segment database's passages, analysed from their text (row i = the i-th passage by id)."""
    rows = db.execute("SELECT a.title, p.text FROM passages p JOIN articles a ON a.id = p.article_id ORDER BY p.id")
    return Postings.build(terms(indexed_text(t, x, with_title)) for t, x in rows)


def _storage(graph: Any) -> np.ndarray:
    """An HNSW graph's vectors as a (memory-mapped) matrix, row i = node i."""
    import faiss

    storage = faiss.downcast_index(graph.storage)
    if graph.ntotal == 0:
        return np.zeros((0, graph.d), np.float32)
    return faiss.rev_swig_ptr(storage.get_xb(), graph.ntotal * graph.d).reshape(graph.ntotal, graph.d)


def write_segment(
    folder: Path,
    fill: Callable[[sqlite3.Connection], None],
    vectors: np.ndarray,
    postings: Postings | None,
    with_title: bool,
    exact_max: int,
    neighbors: int,
    graph: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Write a segment into a new folder: `fill` puts its articles and passages into the database, `vectors` are
    its passages' in id order; `postings` are made from the passages when None. `graph`: the file of an HNSW graph
    of the first rows (a merge that keeps every row of a graph segment) to extend rather than build again. Returns
    its manifest entry (without its name)."""
    import faiss

    folder.mkdir()
    db = sqlite3.connect(folder / "index.sqlite")
    try:
        db.executescript(SCHEMA)
        with db:
            fill(db)
        pid_art = db.execute("SELECT id, article_id FROM passages ORDER BY id").fetchall()
        article_ids = [r[0] for r in db.execute("SELECT id FROM articles ORDER BY id")]
        if postings is None:
            postings = _postings_of(db, with_title)
    finally:
        db.close()
    if len(pid_art) != len(vectors) or len(postings) != len(vectors):
        raise RuntimeError(f"segment rows disagree: {len(pid_art)} passages, {len(vectors)} vectors")
    at = {a: i for i, a in enumerate(article_ids)}
    save_array(folder / "ids.npy", np.array([p for p, _ in pid_art], dtype=np.int64))
    save_array(folder / "row_article.npy", np.array([at[a] for _, a in pid_art], dtype=np.int32))
    (folder / "articles.json").write_text(json.dumps(article_ids), encoding="utf-8")
    postings.save(folder)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(vectors) > exact_max:
        if graph is not None:
            graph = faiss.read_index(str(graph))  # read whole (a mapped graph cannot grow)
        if graph is None or graph.ntotal > len(vectors) or graph.hnsw.nb_neighbors(1) != neighbors:
            graph = faiss.IndexHNSWFlat(vectors.shape[1], neighbors, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efConstruction = EF_CONSTRUCTION
        _grow(graph, vectors, progress)
        faiss.write_index(graph, str(folder / "graph.faiss"))
        kind = f"hnsw{neighbors}"
    else:
        save_array(folder / "vectors.npy", vectors)
        kind = "flat"
    for f in folder.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    return {"passages": len(vectors), "articles": len(article_ids), "vectors": kind, "files": describe(folder)}


def _grow(graph: Any, vectors: np.ndarray, progress: bool) -> None:
    """Add the rows of `vectors` the graph lacks, 10,000 at a time, with a progress bar (passages/s, time left)."""
    from tqdm import tqdm

    step = 10_000
    todo = len(vectors) - graph.ntotal
    with tqdm(total=todo, unit="passage", desc="graph", disable=not progress, dynamic_ncols=True) as bar:
        while graph.ntotal < len(vectors):
            at = graph.ntotal
            graph.add(vectors[at : at + step])
            bar.update(graph.ntotal - at)


def insert_articles(
    db: sqlite3.Connection,
    add: Sequence[Any],
    first_id: int,
    root_of: dict[str, str],
    now: float,
    analysed: dict[str, list[str]] | None = None,
) -> None:
    """Put new articles and their passages (ids from `first_id` on, in order) into a segment's database, with their
    analyses as given in `analysed` (by article id), else worked out here."""
    pid = first_id
    for art, passages, _ in add:
        analyses = (analysed or {}).get(art.id) or analyse_article(art.text, spans(passages))
        db.execute(
            f"INSERT INTO articles ({ARTICLE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (art.id, art.title, art.text, art.path, art.source, art.url, art.published, art.sha,
             root_of.get(art.id, ""), now),
        )  # fmt: skip
        rows = []
        for p, analysis in zip(passages, analyses, strict=True):
            rows.append((pid, p.article_id, p.seq, p.char_start, p.char_end, p.n_tokens, p.text, analysis))
            pid += 1
        db.executemany(f"INSERT INTO passages ({PASSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)", rows)


def analyse_all(db: sqlite3.Connection) -> None:
    """Store every passage's `analyse` output, its quotations found over its article (a segment whose passages were
    analysed by another version, or not at all)."""
    for article_id, text in db.execute("SELECT id, text FROM articles").fetchall():
        rows = db.execute(
            "SELECT id, text, char_start, char_end FROM passages WHERE article_id = ?", (article_id,)
        ).fetchall()
        analyses = analyse_article(text, [row[1:] for row in rows])
        ids = [row[0] for row in rows]
        db.executemany("UPDATE passages SET analysis = ? WHERE id = ?", zip(analyses, ids, strict=True))
