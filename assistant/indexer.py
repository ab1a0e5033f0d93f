"""Adding and removing articles: embed only what is new or changed, then write a new generation."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .chunking import Chunker, get_encoding, indexed_text
from .config import Settings
from .documents import Loaded, Problem, load_paths
from .embedding import Embedder, EmbeddingStopped
from .engines.base import Engine, View
from .highlight import analyse_article, analysed_otherwise, spans
from .staging import Staging
from .types import Article, AssistantError, Passage
from .writer import MEANWHILE, UPLOADS, Change, Written, uploads_root, write

if TYPE_CHECKING:
    from .cluster import ClusterEncoder


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
    encoder_s: float = 0.0  # preparing the encoder for this machine (once per model and machine), not in `seconds`
    skipped: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    # the articles this run's write added and replaced, by id (for callers; not in to_dict: a build's may be many)
    new_ids: list[str] = field(default_factory=list)
    changed_ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: articles, passages, embedded, skipped, seconds."""
        resumed = f" (+{self.resumed} kept from an interrupted run)" if self.resumed else ""
        return (
            f"{self.articles} articles ({self.new} new, {self.changed} changed, {self.unchanged} unchanged, "
            f"{self.removed} removed), {self.passages} passages, {self.embedded} embedded{resumed}, "
            f"{len(self.skipped)} skipped, {self.seconds:.1f} s"
            + (f"; encoder prepared once for this machine in {self.encoder_s:.1f} s" if self.encoder_s else "")
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        d = asdict(self)
        del d["new_ids"], d["changed_ids"]
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


def check_compatible(view: View, engine: Engine, settings: Settings, chunking: bool = True) -> None:
    """Refuse to search or extend an index made with another model (or, to extend, other chunking)."""
    m = view.meta
    hint = engine.rebuild_hint()
    if m.get("model") != settings.embedding.model:
        raise AssistantError(
            f"index in {view.location} was built with model '{m.get('model')}' but embedding.model is "
            f"'{settings.embedding.model}'; rebuild with: {hint}"
        )
    want = index_meta(settings, "", 0)["chunking"]
    if chunking and m.get("chunking") != want:
        raise AssistantError(
            f"index in {view.location} was chunked with {m.get('chunking')}, settings say {want}; rebuild with: {hint}"
        )


class IndexInterrupted(AssistantError):
    """An index run stopped by Ctrl-C; what it embedded is staged for the next run."""


def _embed(
    embedder: Embedder,
    chunker: Chunker,
    articles: Sequence[Article],
    batch: int,
    progress: bool,
    staging: Staging,
    cluster: ClusterEncoder | None = None,
) -> tuple[list[tuple[Article, list[Passage], np.ndarray]], int, dict[str, list[str]]]:
    """Passages and vectors of the articles, staged as they are made (here, or on the workers of `cluster`), and
    their passages analysed (`highlight.analyse_article`); returns them, how many were staged before, and the
    analyses by article id."""
    from tqdm import tqdm

    chunked = [(a, chunker.chunk(a)) for a in articles]
    vectors = staging.load(chunked)
    pending = [(a, ps) for a, ps in chunked if a.id not in vectors]
    resumed = sum(len(v) for v in vectors.values())

    def texts(group: list[tuple[Article, list[Passage]]]) -> list[str]:
        """The texts to embed for a group of articles' passages."""
        return [indexed_text(a.title, p.text, chunker.with_title) for a, ps in group for p in ps]

    groups = _groups(pending, batch * 4)
    done = cluster.map(groups, texts) if cluster else ((g, embedder.encode(texts(g))) for g in groups)
    total = sum(len(ps) for _, ps in pending)
    analysed: dict[str, list[str]] = {}
    with (
        tqdm(total=total, unit="passage", desc="embedding", disable=not progress, dynamic_ncols=True) as bar,
        contextlib.closing(done),
    ):
        for group, out in done:
            at = 0
            for a, ps in group:
                vectors[a.id] = out[at : at + len(ps)]
                at += len(ps)
            staging.keep([(a, vectors[a.id]) for a, _ in group])
            bar.update(at)
            for a, ps in group:  # here, not in the write: the writer lock is held for less
                analysed[a.id] = analyse_article(a.text, spans(ps))
    for a, ps in chunked:
        if a.id not in analysed:  # staged by an earlier run
            analysed[a.id] = analyse_article(a.text, spans(ps))
    return [(a, ps, vectors[a.id]) for a, ps in chunked], resumed, analysed


def _groups(
    pending: Sequence[tuple[Article, list[Passage]]], size: int
) -> Iterator[list[tuple[Article, list[Passage]]]]:
    """Whole articles in groups of at least `size` passages (the last may be smaller): one batch each."""
    group: list[tuple[Article, list[Passage]]] = []
    n = 0
    for a, ps in pending:
        group.append((a, ps))
        n += len(ps)
        if n >= size:
            yield group
            group, n = [], 0
    if group:
        yield group


def update_index(
    engine: Engine,
    folder: Path,
    view: View | None,
    settings: Settings,
    get_embedder: Callable[[], Embedder],
    paths: Sequence[str | Path],
    prune: bool = False,
    progress: bool = False,
    rebuild: bool = False,
    uploaded: bool = False,
    wait_s: float | None = None,
    articles: Sequence[Article] = (),
) -> tuple[IndexReport, bool]:
    """Bring the index up to date with the paths (and `articles` read elsewhere: a followed feed's pages, kept under
    their own ids, from no folder); returns the report and whether anything was written.

    Files are read and embedded outside the writer lock; the change is then applied under it to the index as it is
    by then, so a writer that finished meanwhile keeps what it wrote. A rebuild holds the lock from the start.
    `uploaded`: the paths are files in the uploads folder of the index folder `folder` (their ids become
    "uploads/NAME").
    """
    start = time.perf_counter()
    if rebuild:
        view = None
    # A rebuild holds the lock from before its files are read: nobody commits between its reading and its switch.
    with engine.writing(wait_s) if rebuild else contextlib.nullcontext():
        get_encoding(settings.chunking.encoding)  # a wrong encoding setting fails now, before any reading or embedding
        loaded = _load(folder, paths, settings, uploaded)
        loaded.articles += articles
        report = IndexReport(skipped=loaded.skipped, warnings=loaded.warnings)
        if view is not None:
            check_compatible(view, engine, settings)
        elif not loaded.articles:
            why = "; ".join(str(p) for p in loaded.skipped[:3]) or "no files"
            raise AssistantError(f"no articles to index in {', '.join(map(str, paths)) or 'the given paths'} ({why})")
        existing = view.shas([a.id for a in loaded.articles]) if view is not None else {}
        todo = [a for a in loaded.articles if existing.get(a.id) != a.sha]
        remove = _removals(folder, view, loaded, prune) if view is not None else []
        if remove:
            existing.update(view.shas(remove))
        known_roots = set(view.roots()) if view is not None else set()
        stale = view is not None and analysed_otherwise(view.meta)
        if not (todo or remove or view is None or stale or not set(loaded.roots) <= known_roots):
            report.unchanged = len(loaded.articles)
            report.articles, report.passages = view.meta["articles"], view.meta["passages"]
            report.seconds = time.perf_counter() - start
            return report, False
        staging, add, meta, analysed = None, [], {}, {}  # nothing to embed: the index's own model and chunking
        if todo or view is None:
            staging, add, meta, report.resumed, analysed = _embed_new(folder, settings, get_embedder(), todo, progress)
        report.embedded = sum(len(ps) for _, ps, _ in add) - report.resumed
        seen_sha = {a: existing.get(a) for a in [a.id for a in todo] + remove}
        change = Change(add, remove, seen_sha, loaded.roots, loaded.root_of, meta, rebuild, analysed)
        try:
            written = write(
                engine, folder, change, *_vector_settings(settings), wait_s=wait_s, base=view, progress=progress
            )
        except BaseException:
            if staging is not None:
                staging.close()  # what was embedded stays staged for the next run
            raise
        if staging is not None:
            staging.forget([a.id for a, _, _ in add])
            staging.close()
        _report_write(report, written, loaded, existing)
        report.seconds = time.perf_counter() - start
        return report, written.wrote


def _removals(folder: Path, view: View, loaded: Loaded, prune: bool) -> list[str]:
    """Articles to remove: with `prune`, those under the roots read whose files are gone; and uploads indexed before
    they had ids of their own, when the uploads folder is read again (they come back under their new ids)."""
    if not loaded.roots:
        return []
    seen = {a.id for a in loaded.articles}
    remove = sorted(view.articles_under(loaded.roots) - seen) if prune else []
    uploads = uploads_root(folder)
    if uploads in loaded.roots:
        remove += sorted(a for a in view.articles_under([uploads]) - seen if not a.startswith(f"{UPLOADS}/"))
    return remove


def _embed_new(
    folder: Path, settings: Settings, embedder: Embedder, todo: Sequence[Article], progress: bool
) -> tuple[Staging, list[tuple[Article, list[Passage], np.ndarray]], dict[str, Any], int, dict[str, list[str]]]:
    """Chunk and embed new or changed articles, staged as they are made: (the open staging file, the articles with
    passages and vectors, the index meta they fit, how many passages were staged by an earlier run, the passages'
    analyses by article id)."""
    chunker = Chunker(
        settings.chunking.max_tokens,
        settings.chunking.overlap_tokens,
        settings.chunking.encoding,
        model_limit=embedder.fits,
        with_title=settings.chunking.with_title,
    )
    meta = index_meta(settings, settings.embedding.model, embedder.dimension)
    staging = Staging(folder, meta)
    try:
        with _cluster(folder, settings, embedder) as cluster:
            add, resumed, analysed = _embed(
                embedder, chunker, todo, settings.embedding.batch_size, progress, staging, cluster
            )
    except (KeyboardInterrupt, EmbeddingStopped) as e:
        kept = staging.count()
        staging.close()
        rest = (
            f"the index is as it was, and {kept} embedded articles are kept in {staging.path}: run the same command "
            "again to go on from there"
        )
        if isinstance(e, KeyboardInterrupt):
            raise IndexInterrupted(f"interrupted; {rest}") from None
        raise AssistantError(f"{e}; {rest}") from None
    except BaseException:
        staging.close()
        raise
    return staging, add, meta, resumed, analysed


def _cluster(folder: Path, settings: Settings, embedder: Embedder) -> contextlib.AbstractContextManager[Any]:
    """The Dask cluster that embeds (embedding.cluster), connected and given the encoder; else a null context."""
    address = settings.embedding.cluster
    if not address:
        return contextlib.nullcontext()
    encoder_dir = getattr(embedder, "onnx_folder", None)  # the exported encoder (OnnxEncoder, CalibratedEncoder)
    if encoder_dir is None:
        raise AssistantError(
            "embedding.cluster runs the index's ONNX encoder on the workers, and this model has none (embedding.device "
            "is not cpu, or the model could not be exported); embed here instead: drop --cluster"
        )
    from .cluster import ClusterEncoder

    return ClusterEncoder(address, encoder_dir, settings.embedding.batch_size)


def _load(folder: Path, paths: Sequence[str | Path], settings: Settings, uploaded: bool) -> Loaded:
    """Read the paths. Uploads (`uploaded` paths, or the index's uploads folder when read again) are read file by
    file into ids of their own, "uploads/FILE" or "uploads/FILE#RECORD", so that an upload never takes the id of
    an article indexed from a folder, nor of another uploaded file, whatever its name or `id` fields say."""
    uploads = uploads_root(folder)

    def from_uploads(path: str | Path) -> bool:
        p = str(Path(path).resolve())
        return uploaded or p == uploads or p.startswith(uploads + os.sep)

    given = [p for p in paths if not from_uploads(p)]
    loaded = load_paths(given, settings.ingest.max_file_mb) if given or not paths else Loaded()
    files = [
        f
        for p in paths
        if from_uploads(p)
        for f in (sorted(x for x in Path(p).iterdir() if not x.name.startswith(".")) if Path(p).is_dir() else [p])
    ]
    for f in files:
        one = load_paths([f], settings.ingest.max_file_mb)
        loaded.skipped += one.skipped
        loaded.warnings += one.warnings
        for a in one.articles:
            name = Path(f).name
            local = a.id if a.id == name or a.id.startswith(f"{name}#") else f"{name}#{a.id}"
            loaded.articles.append(dataclasses.replace(a, id=f"{UPLOADS}/{local}"))
            loaded.root_of[f"{UPLOADS}/{local}"] = uploads
    if files or any(from_uploads(p) for p in paths):
        loaded.roots.append(uploads)
    return loaded


def _report_write(report: IndexReport, written: Written, loaded: Loaded, existing: dict[str, str]) -> None:
    """Fill the report from what the write did, naming the articles it kept or refused."""
    shown = {
        a.id: a.path if a.path.replace("\\", "/").endswith(a.id) else f"{a.path} (article {a.id})"
        for a in loaded.articles
    }
    report.new_ids = [a for a in written.added if a not in existing]
    report.changed_ids = [a for a in written.added if a in existing]
    report.new, report.changed = len(report.new_ids), len(report.changed_ids)
    report.unchanged = len(loaded.articles) - len(written.added) - len(written.kept) - len(written.refused)
    report.removed = len(written.removed)
    report.warnings += [Problem(shown.get(a, a), MEANWHILE) for a in written.kept]
    report.skipped += [Problem(shown.get(a, a), f"article id '{a}': {why}") for a, why in written.refused]
    report.articles, report.passages = written.manifest["articles"], written.manifest["passages"]


def _vector_settings(settings: Settings) -> tuple[int, int]:
    return settings.index.exact_max_passages, settings.index.hnsw_neighbors


def optimize_index(engine: Engine, settings: Settings, progress: bool = False) -> dict[str, Any]:
    """Compact the index for search (see Engine.optimize); the state's meta after."""
    if not engine.exists():
        engine.open()  # "no index in ...; build one with ..."
    return engine.optimize(*_vector_settings(settings), progress=progress)


def remove_articles(
    engine: Engine,
    folder: Path,
    settings: Settings,
    article_ids: Sequence[str],
    base: View | None = None,
    wait_s: float | None = None,
) -> int:
    """Delete articles by id from the index as it is now (waiting for another writer at most `wait_s` seconds if
    given); returns how many were there. An uploaded article's file goes from the uploads folder too (when no other
    article comes from it), so that it is not read again."""
    if not engine.exists():
        engine.open()  # "no index in ...; build one with ..."
    change = Change(remove=list(dict.fromkeys(article_ids)))
    written = write(engine, folder, change, *_vector_settings(settings), wait_s=wait_s, base=base)
    uploads = Path(uploads_root(folder))
    for path in written.orphans:
        p = Path(path).resolve()
        if uploads in p.parents:
            p.unlink(missing_ok=True)
    return len(written.removed)
