"""Engines: where passages, vectors and BM25 live, chosen by `index.backend` (see base.py for the contract)."""

from __future__ import annotations

from ..config import IndexSettings
from ..types import AssistantError
from .base import Engine, Filter, Scored, View

__all__ = ["Engine", "Filter", "Scored", "View", "engine_for"]


def engine_for(settings: IndexSettings) -> Engine:
    """The engine `index.backend` names: "embedded" (a folder, `index.dir`) or "postgres" (`index.url`)."""
    if settings.backend == "postgres":
        if not settings.url.strip():
            raise AssistantError(
                "index.backend is postgres but index.url is empty; set it (ASSISTANT_INDEX_URL=postgresql://...)"
            )
        from .postgres import PostgresEngine

        return PostgresEngine(
            settings.url,
            settings.read_urls,
            settings.exact_max_passages,
            settings.hnsw_neighbors,
            settings.merge_factor,
        )
    from .embedded import EmbeddedEngine

    return EmbeddedEngine(settings.dir, settings.merge_factor)
