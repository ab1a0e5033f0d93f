"""Adding and removing articles: embed only what is new or changed, then write a new generation."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .chunking import Chunker, indexed_text
from .config import Settings
from .documents import Problem, load_paths
from .embedding import Embedder
from .staging import Staging
from .store import Snapshot, Store, rebuild_hint
from .types import Article, AssistantError, Passage


@dataclass
class IndexReport:
    """What an index run did, for the summary line and for callers."""

    articles: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    passages: int = 0
    embedded: int = 0
    resumed: int = 0
    seconds: float = 0.0
    skipped: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        """One line: articles, passages, embedded, skipped, seconds."""
        resumed = f" (+{self.resumed} kept from an interrupted run)" if self.resumed else ""
        return (
            f"{self.articles} articles ({self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed), {self.passages} passages, {self.embedded} embedded{resumed}, "
            f"{len(self.skipped)} skipped, {self.seconds:.1f} s"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        d = asdict(self)
        d["skipped"] = [str(p) for p in self.skipped]
        d["warnings"] = [str(p) for p in self.warnings]
        return d


def index_meta(settings: Settings, embedder_name: str, dimension: int) -> dict[str, Any]:
    """What the manifest records about how the index was made."""
    c = settings.chunking
    return {
        "model": embedder_name,
        "dimension": dimension,
        "chunking": {
            "max_tokens": c.max_tokens,
            "overlap_tokens": c.overlap_tokens,
            "encoding": c.encoding,
            "with_title": c.with_title,
        },
    }


def check_compatible(snapshot: Snapshot, settings: Settings, chunking: bool = True) -> None:
    """Refuse to search or extend an index made with another model (or, to extend, other chunking)."""
    m = snapshot.manifest
    hint = rebuild_hint(snapshot.index_dir)
    if m.get("model") != settings.embedding.model:
        raise AssistantError(
            f"index in {snapshot.index_dir}/ was built with model '{m.get('model')}' but embedding.model is "
            f"'{settings.embedding.model}'; rebuild with: {hint}"
        )
    want = index_meta(settings, "", 0)["chunking"]
    if chunking and m.get("chunking") != want:
        raise AssistantError(
            f"index in {snapshot.index_dir}/ was chunked with {m.get('chunking')}, settings say {want}; "
            f"rebuild with: {hint}"
        )


class IndexInterrupted(AssistantError):
    """An index run stopped by Ctrl-C; what it embedded is staged for the next run."""


def _embed(
    embedder: Embedder, chunker: Chunker, articles: Sequence[Article], batch: int, progress: bool, staging: Staging
) -> tuple[list[tuple[Article, list[Passage], np.ndarray]], int]:
    """Passages and vectors of the articles, staged as they are made; returns them and how many were staged before."""
    from tqdm import tqdm

    chunked = [(a, chunker.chunk(a)) for a in articles]
    vectors = staging.load(chunked)
    pending = [(a, ps) for a, ps in chunked if a.id not in vectors]
    resumed = sum(len(v) for v in vectors.values())
    buffer: list[tuple[Article, list[Passage]]] = []
    buffered = 0

    def flush(bar: tqdm) -> None:
        nonlocal buffered
        texts = [indexed_text(a.title, p.text, chunker.with_title) for a, ps in buffer for p in ps]
        out, at = embedder.encode(texts), 0
        for a, ps in buffer:
            vectors[a.id] = out[at : at + len(ps)]
            at += len(ps)
        staging.keep([(a, vectors[a.id]) for a, _ in buffer])
        bar.update(len(texts))
        buffer.clear()
        buffered = 0

    total = sum(len(ps) for _, ps in pending)
    with tqdm(total=total, unit="passage", desc="embedding", disable=not progress, dynamic_ncols=True) as bar:
        for a, ps in pending:
            buffer.append((a, ps))
            buffered += len(ps)
            if buffered >= batch * 4:
                flush(bar)
        if buffer:
            flush(bar)
    return [(a, ps, vectors[a.id]) for a, ps in chunked], resumed


def update_index(
    store: Store,
    snapshot: Snapshot | None,
    settings: Settings,
    get_embedder: Callable[[], Embedder],
    paths: Sequence[str | Path],
    prune: bool = False,
    progress: bool = False,
) -> tuple[IndexReport, bool]:
    """Bring the index up to date with the paths; returns the report and whether anything was written."""
    start = time.perf_counter()
    loaded = load_paths(paths, settings.ingest.max_file_mb)
    report = IndexReport(skipped=loaded.skipped, warnings=loaded.warnings)
    if snapshot is not None:
        check_compatible(snapshot, settings)
    elif not loaded.articles:
        why = "; ".join(str(p) for p in loaded.skipped[:3]) or "no files"
        raise AssistantError(f"no articles to index in {', '.join(map(str, paths)) or 'the given paths'} ({why})")
    existing = snapshot.article_shas() if snapshot is not None else {}
    todo = [a for a in loaded.articles if existing.get(a.id) != a.sha]
    report.new = sum(1 for a in todo if a.id not in existing)
    report.changed = len(todo) - report.new
    report.unchanged = len(loaded.articles) - len(todo)
    remove: list[str] = []
    if prune and snapshot is not None and loaded.roots:
        seen = {a.id for a in loaded.articles}
        remove = sorted(snapshot.articles_under(loaded.roots) - seen)
    report.removed = len(remove)
    known_roots = set(snapshot.roots()) if snapshot is not None else set()
    wrote = bool(todo or remove or snapshot is None or not set(loaded.roots) <= known_roots)
    if wrote:
        with store.writing():
            if todo or snapshot is None:
                embedder = get_embedder()
                chunker = Chunker(
                    settings.chunking.max_tokens,
                    settings.chunking.overlap_tokens,
                    settings.chunking.encoding,
                    model_limit=embedder.fits,
                    with_title=settings.chunking.with_title,
                )
                meta = index_meta(settings, settings.embedding.model, embedder.dimension)
                staging = Staging(store.dir, meta)
                try:
                    add, report.resumed = _embed(
                        embedder, chunker, todo, settings.embedding.batch_size, progress, staging
                    )
                except KeyboardInterrupt:
                    kept = staging.count()
                    staging.close()
                    raise IndexInterrupted(
                        f"interrupted; the index is as it was, and {kept} embedded articles are kept in "
                        f"{staging.path}: run the same command again to go on from there"
                    ) from None
            else:
                add = []
                meta = {k: snapshot.manifest[k] for k in ("model", "dimension", "chunking")}
            report.embedded = sum(len(ps) for _, ps, _ in add) - report.resumed
            manifest = store.commit(
                snapshot, remove, add, loaded.roots, loaded.root_of, meta, *_vector_settings(settings)
            )
            if todo or snapshot is None:
                staging.forget([a.id for a, _, _ in add])
                staging.close()
        report.articles, report.passages = manifest["articles"], manifest["passages"]
    else:
        report.articles, report.passages = snapshot.manifest["articles"], snapshot.manifest["passages"]
    report.seconds = time.perf_counter() - start
    return report, wrote


def _vector_settings(settings: Settings) -> tuple[int, int]:
    return settings.index.exact_max_passages, settings.index.hnsw_neighbors


def remove_articles(store: Store, snapshot: Snapshot, settings: Settings, article_ids: Sequence[str]) -> int:
    """Delete articles by id from the index; returns how many were there."""
    present = [a for a in article_ids if a in snapshot.articles]
    if present:
        meta = {k: snapshot.manifest[k] for k in ("model", "dimension", "chunking")}
        with store.writing():
            store.commit(snapshot, present, [], [], {}, meta, *_vector_settings(settings))
    return len(present)
