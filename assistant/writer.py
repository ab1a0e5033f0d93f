"""One writer's change, applied under the lock to the index as it is then: nothing another writer did is undone."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .engines.base import META_KEYS, Engine, View
from .highlight import analysed_otherwise
from .types import Article, AssistantError, Passage

UPLOADS = "uploads"  # uploaded files' folder inside the index folder; their articles' ids start with "uploads/"
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
    # each added article's passages analysed (highlight.analyse_article), worked out before the writer lock is taken;
    # an article missing here is analysed by the engine as it writes
    analysed: dict[str, list[str]] = field(default_factory=dict)


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


def uploads_root(folder: Path) -> str:
    """The resolved path of the uploads folder in the index folder (articles read from it are uploads)."""
    return str((Path(folder) / UPLOADS).resolve())


def _clash(old_root: str | None, new_root: str, uploads: str) -> str | None:
    """Why an article read from `new_root` may not replace one read from `old_root` (None: it may).

    Uploads and articles indexed from folders keep apart: neither replaces the other.
    """
    if old_root is None or (old_root == uploads) == (new_root == uploads):
        return None
    if new_root == uploads:
        return "an article indexed from a folder has this id; an upload never replaces it (rename the upload)"
    return "an uploaded article has this id; remove it first (assistant remove ID) to replace it"


def check_meta(latest: View, meta: dict[str, Any], hint: str) -> None:
    """Refuse to write vectors made with one model or chunking into an index made with another."""
    if {k: latest.meta.get(k) for k in META_KEYS} != {k: meta.get(k) for k in META_KEYS}:
        raise AssistantError(
            f"the index in {latest.location} was rebuilt with other settings while this ran "
            f"(model {latest.meta.get('model')!r}, chunking {latest.meta.get('chunking')}); nothing was "
            f"written: run the command again (or rebuild: {hint})"
        )


def write(
    engine: Engine,
    folder: Path,
    change: Change,
    exact_max: int,
    neighbors: int,
    wait_s: float | None = None,
    base: View | None = None,
    progress: bool = False,
) -> Written:
    """Apply a change under the engine's writer lock to the index as it is now (not as the writer first saw it).

    `base`, the view the writer started from, is built on as it is when no one wrote since (the usual case);
    otherwise the current state is opened. A change without `meta` (a removal) takes the index's own. `folder`:
    the index folder, whose uploads folder marks uploaded articles.
    """
    with engine.writing(wait_s), contextlib.nullcontext() if change.fresh else engine.latest(base) as latest:
        if latest is not None:
            if not change.meta:
                change = dataclasses.replace(change, meta={k: latest.meta[k] for k in META_KEYS})
            check_meta(latest, change.meta, engine.rebuild_hint())
        result = _rebase(folder, latest, change)
        known = set(latest.roots()) if latest is not None else set()
        current = latest is not None and not analysed_otherwise(latest.meta)
        if current and not result.added and not result.removed and set(change.roots) <= known:
            result.manifest = latest.meta
            return result
        if latest is not None and result.removed:
            gone = {(latest.article(a) or {}).get("path") or "" for a in result.removed}
            result.orphans = sorted(gone - latest.paths_in_use(sorted(gone), result.removed) - {""})
        chosen = set(result.added)
        apply = dataclasses.replace(change, add=[x for x in change.add if x[0].id in chosen], remove=result.removed)
        result.manifest = engine.commit(latest, apply, exact_max, neighbors, progress)
        result.wrote = True
        return result


def _rebase(folder: Path, latest: View | None, change: Change) -> Written:
    """Which of a change's articles to add and remove on top of `latest`, article by article."""
    ids = [a.id for a, _, _ in change.add] + list(change.remove)
    current = latest.shas(ids) if latest is not None else {}
    roots = latest.article_roots(ids) if latest is not None else {}
    uploads = uploads_root(folder)
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
