"""A LangChain retriever over the assistant: each passage a `Document`, its citation the metadata."""

from __future__ import annotations

from typing import Any

from ..core import Assistant
from ..types import AssistantError, hit_to_record

try:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict
except ImportError:  # the default install has no LangChain
    raise AssistantError("the LangChain retriever needs langchain-core: pip install -e '.[langchain]'") from None


class NewsRetriever(BaseRetriever):
    """The k passages that best answer a query, as Documents whose metadata is the citation (`hit_to_record`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Assistant
    k: int = 5
    filters: dict[str, Any] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        """Search the assistant's index; the passage text is the page content."""
        hits = self.assistant.search(query, k=self.k, filters=self.filters)
        documents = []
        for rank, hit in enumerate(hits, 1):
            record = hit_to_record(hit, rank)
            text = record.pop("text")
            documents.append(Document(page_content=text, metadata=record, id=str(hit.passage_id)))
        return documents
