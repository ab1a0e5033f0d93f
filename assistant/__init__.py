"""A retrieval assistant for news articles: answers are passages, each cited to its article."""

from __future__ import annotations

from typing import Any

from .core import Assistant
from .types import Answer, Article, AssistantError, Citation, Hit, Passage

__all__ = ["Answer", "Article", "Assistant", "AssistantError", "Citation", "Hit", "Passage", "ask"]
__version__ = "0.1.0"

_default: Assistant | None = None


def ask(question: str, k: int = 5, filters: dict[str, Any] | None = None) -> Answer:
    """Answer a question from the default index (`index/`, or the configured one)."""
    global _default
    if _default is None:
        _default = Assistant.load()
    return _default.ask(question, k=k, filters=filters)
