"""One writer's change, applied under the lock to the index as it is then: nothing another writer did is undone."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .generation import write_generation
from .store import Snapshot, Store, rebuild_hint
from .types import Article, AssistantError, Passage

UPLOADS = "uploads"  # uploaded files' folder inside the index folder; their articles' ids start with "uploads/"
META_KEYS = ("model", "dimension", "chunking")  # how an index was made: its vectors fit only the same
MEANWHILE = "changed by another writer while this one ran; its version is kept (run again to index this one)"


@dataclass
class Change:
    """What one writer means to do, and the state it started from.

    `seen` gives, for every article it adds or removes, the content hash it saw in the index it started from (None:
    not there). A change applies to an article only where the index still holds what the writer saw; where another
    writer changed it in between, theirs stays. `seen=None` removes unconditionally (`assistant remove`).
    """

    add: Sequence[tuple[Article, Sequence[Passage], np.ndarray]] = ()
    remove: Sequence[str] = ()
    seen: dict[str, str | None] | None = None
    roots: Sequence[str] = ()
    root_of: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False  # a rebuild: the new index holds only `add` (its writer holds the lock from the start)


@dataclass
class Written:
    """What a write did: the manifest now current, and which articles it changed, kept or refused."""

    manifest: dict[str, Any]
    wrote: bool
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # already in the index as this writer has them
    kept: list[str] = field(default_factory=list)  # another writer changed them meanwhile: theirs stays
    refused: list[tuple[str, str]] = field(default_factory=list)  # (article id, why)
    orphans: list[str] = field(default_factory=list)  # files of removed articles that no article comes from now


def uploads_root(store: Store) -> str:
    """The resolved path of an index's uploads folder (articles read from it are uploads)."""
    return str((store.dir / UPLOADS).resolve())


def _clash(old_root: str | None, new_root: str, uploads: str) -> str | None:
    """Why an article read from `new_root` may not replace one read from `old_root` (None: it may).

    Uploads and articles indexed from folders keep apart: neither replaces the other.
    """
    if old_root is None or (old_root == uploads) == (new_root == uploads):
        return None
    if new_root == uploads:
        return "an article indexed from a folder has this id; an upload never replaces it (rename the upload)"
    return "an uploaded article has this id; remove it first (assistant remove ID) to replace it"


def check_meta(latest: Snapshot, meta: dict[str, Any]) -> None:
    """Refuse to write vectors made with one model or chunking into an index made with another."""
    if {k: latest.manifest.get(k) for k in META_KEYS} != {k: meta.get(k) for k in META_KEYS}:
        raise AssistantError(
            f"the index in {latest.index_dir}/ was rebuilt with other settings while this ran "
            f"(model {latest.manifest.get('model')!r}, chunking {latest.manifest.get('chunking')}); nothing was "
            f"written: run the command again (or rebuild: {rebuild_hint(latest.index_dir)})"
        )


def write(
    store: Store,
    change: Change,
    exact_max: int,
    neighbors: int,
    wait_s: float | None = None,
    base: Snapshot | None = None,
) -> Written:
    """Apply a change under the writer lock to the index as it is now (not as the writer first saw it).

    `base`, the snapshot the writer started from, is built on as it is when no one wrote since (the usual case);
    otherwise the current generation is opened. A change without `meta` (a removal) takes the index's own.
    """
    with store.writing(wait_s):
        latest, opened = None, False
        if store.exists() and not change.fresh:
            if base is not None and base.manifest == store.manifest():
                latest = base
            else:
                latest, opened = store.open(), True
        try:
            return _write(store, latest, change, exact_max, neighbors)
        finally:
            if opened:
                latest.close()


def _write(store: Store, latest: Snapshot | None, change: Change, exact_max: int, neighbors: int) -> Written:
    """The write itself, on `latest` (None: a fresh index); the caller holds the lock."""
    if latest is not None:
        if not change.meta:
            change = dataclasses.replace(change, meta={k: latest.manifest[k] for k in META_KEYS})
        check_meta(latest, change.meta)
    result = _rebase(store, latest, change)
    known = set(latest.roots()) if latest is not None else set()
    if latest is not None and not result.added and not result.removed and set(change.roots) <= known:
        result.manifest = latest.manifest
        return result
    if latest is not None and result.removed:
        gone = {latest.articles[a].get("path") or "" for a in result.removed}
        kept = {m.get("path") or "" for a, m in latest.articles.items() if a not in set(result.removed)}
        result.orphans = sorted(gone - kept - {""})
    chosen = set(result.added)
    apply = dataclasses.replace(change, add=[x for x in change.add if x[0].id in chosen], remove=result.removed)
    result.manifest = write_generation(store.dir, latest, apply, exact_max, neighbors)
    result.wrote = True
    return result


def _rebase(store: Store, latest: Snapshot | None, change: Change) -> Written:
    """Which of a change's articles to add and remove on top of `latest`, article by article."""
    current = latest.article_shas() if latest is not None else {}
    roots = latest.article_roots() if latest is not None else {}
    uploads = uploads_root(store)
    out = Written(manifest={}, wrote=False)
    for article, _, _ in change.add:
        have = current.get(article.id)
        if have == article.sha:
            out.unchanged.append(article.id)
        elif change.seen is not None and have != change.seen.get(article.id):
            out.kept.append(article.id)
        elif why := _clash(roots.get(article.id), change.root_of.get(article.id, ""), uploads):
            out.refused.append((article.id, why))
        else:
            out.added.append(article.id)
    for article_id in change.remove:
        if article_id not in current:
            continue
        if change.seen is not None and current[article_id] != change.seen.get(article_id):
            out.kept.append(article_id)
        else:
            out.removed.append(article_id)
    return out
