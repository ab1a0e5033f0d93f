"""Retrievers for other tools (LangChain, LlamaIndex): thin shells over `Assistant.search`, each behind an extra."""
