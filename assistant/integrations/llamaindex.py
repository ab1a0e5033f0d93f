"""A LlamaIndex retriever over the assistant: each passage a scored `TextNode`, its citation the metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core import Assistant
from ..types import AssistantError, hit_to_record

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError:  # the default install has no LlamaIndex
    raise AssistantError("the LlamaIndex retriever needs llama-index-core: pip install -e '.[llamaindex]'") from None


class NewsRetriever(BaseRetriever):
    """The k passages that best answer a query, as nodes whose metadata is the citation (`hit_to_record`)."""

    def __init__(self, assistant: Assistant, k: int = 5, filters: Mapping[str, Any] | None = None) -> None:
        """A retriever over this assistant's index: k passages a query, within `filters` (as `Assistant.search`)."""
        super().__init__()
        self.assistant, self.k, self.filters = assistant, k, filters

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        """Search the assistant's index with the query's text."""
        hits = self.assistant.search(query_bundle.query_str, k=self.k, filters=self.filters)
        nodes = []
        for rank, hit in enumerate(hits, 1):
            record = hit_to_record(hit, rank)
            node = TextNode(id_=str(hit.passage_id), text=record.pop("text"), metadata=record)
            nodes.append(NodeWithScore(node=node, score=hit.score))
        return nodes
