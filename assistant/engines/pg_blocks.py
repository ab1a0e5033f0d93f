"""BM25 postings in PostgreSQL as blocks: one row per term and write, its postings packed in one bytea.

A block holds one term's postings from one write (or from the blocks a merge joined): the passage ids, as int32
offsets from the block's `base` (its first id), then each posting's term count and its passage's length in terms,
as uint16 (uint32 when a value does not fit: `width`). A search reads the blocks of the question's terms in one
query and sums BM25 in numpy, as the embedded engine does: a few bytes a posting cross the wire instead of a
posting a row being read, hashed and summed by the server. A write adds one block per term it holds; a term's
blocks are merged by Lucene's log merge policy (`merge_plan`), so a write costs what it adds. Removed passages stay
in their blocks, listed in na_dead, until a merge or `optimize` rewrites the blocks that hold them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..analysis import tf_part
from ..generation import merge_plan

_SEND = (
    "SELECT term, count(*), string_agg(int8send(passage_id), ''::bytea ORDER BY passage_id), "
    "string_agg(int4send(tf), ''::bytea ORDER BY passage_id), string_agg(int4send(length), ''::bytea ORDER BY "
    "passage_id) FROM na_postings GROUP BY term"
)


class TermBlock:
    """One term's postings (a block, or several joined): passage ids ascending, term counts and passage lengths."""

    __slots__ = ("ids", "lengths", "tfs")

    def __init__(self, ids: np.ndarray, tfs: np.ndarray, lengths: np.ndarray) -> None:
        """Postings from parallel arrays (ids ascending)."""
        self.ids, self.tfs, self.lengths = ids, tfs, lengths

    @classmethod
    def decode(cls, base: int, n: int, width: int, data: bytes) -> TermBlock:
        """A block's postings from its row."""
        kind = np.uint16 if width == 2 else np.uint32
        offsets = np.frombuffer(data, np.int32, n)
        tfs = np.frombuffer(data, kind, n, offset=4 * n)
        lengths = np.frombuffer(data, kind, n, offset=(4 + width) * n)
        return cls(offsets.astype(np.int64) + base, tfs, lengths)

    def encode(self) -> tuple[int, int, int, bytes]:
        """This block's (base, n, width, data) for its row; ids must span under 2**31."""
        base = int(self.ids[0]) if len(self.ids) else 0
        offsets = self.ids - base
        if len(offsets) and offsets[-1] >= 2**31:
            raise ValueError("a block's passage ids span 2**31 or more")
        wide = len(self.ids) and max(int(self.tfs.max()), int(self.lengths.max())) > 0xFFFF
        kind, width = (np.uint32, 4) if wide else (np.uint16, 2)
        data = (
            offsets.astype(np.int32).tobytes() + self.tfs.astype(kind).tobytes() + self.lengths.astype(kind).tobytes()
        )
        return base, len(self.ids), width, data

    @classmethod
    def join(cls, parts: Sequence[TermBlock], dead: np.ndarray | None = None) -> TermBlock:
        """Several blocks' postings as one, ids ascending, those of removed passages (`dead`, sorted) left out."""
        ids = np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, np.int64)
        tfs = np.concatenate([p.tfs for p in parts]) if parts else np.zeros(0, np.uint32)
        lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, np.uint32)
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            ids, tfs, lengths = ids[order], tfs[order], lengths[order]
        if dead is not None and len(dead) and len(ids):
            keep = ~np.isin(ids, dead, assume_unique=True)
            ids, tfs, lengths = ids[keep], tfs[keep], lengths[keep]
        return cls(ids, tfs, lengths)

    def parts(self, idf: float, avg_length: float) -> np.ndarray:
        """Each posting's BM25 part: idf * tf / (tf + K1 * (1 - B + B * length / avg)), in float64."""
        return idf * tf_part(self.tfs.astype(np.float64), self.lengths.astype(np.float64), avg_length)

    def at(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which of the given passage ids these postings hold (a mask) and where."""
        if not len(self.ids):
            return np.zeros(len(ids), bool), np.zeros(len(ids), np.int64)
        where = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return self.ids[where] == ids, where


def read(rows: Iterable[tuple]) -> dict[str, TermBlock]:
    """Each term's postings from its block rows (term, base, n, width, data), blocks joined."""
    parts: dict[str, list[TermBlock]] = {}
    for term, base, n, width, data in rows:
        parts.setdefault(term, []).append(TermBlock.decode(base, n, width, data))
    return {t: p[0] if len(p) == 1 else TermBlock.join(p) for t, p in parts.items()}


def sums(postings: dict[str, TermBlock], idfs: dict[str, float], avg_length: float) -> tuple[int, np.ndarray]:
    """BM25 summed by passage: (lowest id, scores of ids lowest..highest as float32; ids held by no term score 0)."""
    held = [(postings[t], w) for t, w in idfs.items() if t in postings and len(postings[t].ids)]
    if not held:
        return 0, np.zeros(0, np.float32)
    lo = min(int(p.ids[0]) for p, _ in held)
    hi = max(int(p.ids[-1]) for p, _ in held)
    ids = np.concatenate([p.ids for p, _ in held]) - lo
    weights = np.concatenate([p.parts(w, avg_length) for p, w in held])
    return lo, np.bincount(ids, weights=weights, minlength=hi - lo + 1).astype(np.float32)


def scores_of(postings: dict[str, TermBlock], idfs: dict[str, float], avg_length: float, ids: np.ndarray) -> np.ndarray:
    """The BM25 score of each given passage."""
    ids = np.asarray(ids, np.int64)
    out = np.zeros(len(ids), np.float64)
    for term, weight in idfs.items():
        p = postings.get(term)
        if p is None or not len(ids):
            continue
        hit, where = p.at(ids)
        if hit.any():
            out[hit] += TermBlock(p.ids[where[hit]], p.tfs[where[hit]], p.lengths[where[hit]]).parts(weight, avg_length)
    return out.astype(np.float32)


def copy_blocks(conn: Any, rows: Iterable[tuple[str, TermBlock]]) -> None:
    """Write blocks (term, postings) as new rows (their numbers from na_block_ids)."""
    sql = "COPY na_blocks (term, base, n, width, data) FROM STDIN (FORMAT BINARY)"
    with conn.cursor().copy(sql) as copy:
        copy.set_types(["text", "int8", "int4", "int2", "bytea"])
        for term, postings in rows:
            copy.write_row((term, *postings.encode()))


def dead_ids(conn: Any) -> np.ndarray:
    """The removed passages still held by some block, sorted."""
    rows = conn.execute("SELECT passage_id FROM na_dead ORDER BY 1").fetchall()
    return np.array([r[0] for r in rows], np.int64)


def merge_terms(conn: Any, terms: Sequence[str], factor: int) -> int:
    """Merge each term's blocks by the log merge policy (the oldest first; removed passages dropped); how many
    blocks were merged away."""
    listed: dict[str, list[tuple[int, int]]] = {}
    for term, block, n in conn.execute(
        "SELECT term, block, n FROM na_blocks WHERE term = ANY(%s) ORDER BY term, base, block", (list(terms),)
    ):
        listed.setdefault(term, []).append((block, n))
    groups = []
    for term, blocks in listed.items():
        for run in merge_plan([n for _, n in blocks], factor):
            if len(run) > 1:
                groups.append((term, [blocks[i][0] for i in run]))
    if not groups:
        return 0
    return _rewrite(conn, groups)


def _rewrite(conn: Any, groups: list[tuple[str, list[int]]], dead: np.ndarray | None = None) -> int:
    """Replace each group of one term's blocks by one block (removed passages dropped; none written if empty)."""
    dead = dead_ids(conn) if dead is None else dead
    wanted = [b for _, blocks in groups for b in blocks]
    got: dict[int, TermBlock] = {}
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT block, base, n, width, data FROM na_blocks WHERE block = ANY(%s)", (wanted,))
        for block, base, n, width, data in cur:
            got[block] = TermBlock.decode(base, n, width, data)
    merged = ((term, TermBlock.join([got[b] for b in blocks], dead)) for term, blocks in groups)
    copy_blocks(conn, ((t, p) for t, p in merged if len(p.ids)))
    conn.execute("DELETE FROM na_blocks WHERE block = ANY(%s)", (wanted,))
    return len(wanted) - len(groups)


def compact(conn: Any, progress: Any = None) -> int:
    """Merge every term's blocks into one, removed passages dropped, and empty na_dead; blocks merged away."""
    groups: list[tuple[str, list[int]]] = []
    merged = 0
    rows = conn.execute("SELECT term, array_agg(block ORDER BY base, block) FROM na_blocks GROUP BY term").fetchall()
    dead = dead_ids(conn)
    for term, blocks in rows:
        if len(blocks) > 1 or len(dead):
            groups.append((term, blocks))
        if len(groups) >= 2000:
            merged += _rewrite(conn, groups, dead)
            groups = []
            if progress is not None:
                progress(2000)
    if groups:
        merged += _rewrite(conn, groups, dead)
    conn.execute("DELETE FROM na_dead")
    return merged


def upgrade(conn: Any, chunk: int = 5000) -> None:
    """Turn a schema-1 index's postings table (a row per posting) into blocks, in the writer's transaction, a
    range of terms at a time."""
    conn.execute("SET LOCAL work_mem = '256MB'")
    listed = [r[0] for r in conn.execute("SELECT term FROM na_terms ORDER BY term")]
    bounds = [""] + listed[chunk::chunk]
    for i, lo in enumerate(bounds):
        hi = bounds[i + 1] if i + 1 < len(bounds) else None
        cond, params = ("term >= %s", (lo,)) if hi is None else ("term >= %s AND term < %s", (lo, hi))
        with conn.cursor(binary=True) as cur:
            rows = cur.execute(_SEND.replace("GROUP BY", f"WHERE {cond} GROUP BY"), params).fetchall()
        copy_blocks(conn, ((term, _received(n, ids, tfs, lengths)) for term, n, ids, tfs, lengths in rows))
    conn.execute("DROP TABLE na_postings")


def _received(n: int, ids: bytes, tfs: bytes, lengths: bytes) -> TermBlock:
    """TermBlock from big-endian int8/int4 strings (PostgreSQL's binary send form)."""
    return TermBlock(
        np.frombuffer(ids, ">i8", n).astype(np.int64),
        np.frombuffer(tfs, ">i4", n).astype(np.uint32),
        np.frombuffer(lengths, ">i4", n).astype(np.uint32),
    )
