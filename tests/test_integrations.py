"""The LangChain and LlamaIndex retrievers, through each library's own interface, on the real seeds index."""

import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.integration

QUESTION = "What did Zelensky say to Russians?"
ZELENSKY = "003_84ced491e06fab4c.txt"


def _cites_zelensky(meta: dict, text: str, real_assistant) -> None:
    """The metadata is the passage's citation: its span in the article is exactly the passage text."""
    assert "You are already complicit" in text, text[:120]
    assert meta["article_id"] == ZELENSKY and meta["path"].endswith(ZELENSKY)
    assert meta["title"].startswith("Volodymyr Zelensky calls on Russians")
    assert real_assistant.article_text(ZELENSKY)[meta["char_start"] : meta["char_end"]] == text
    assert meta["rank"] == 1 and meta["score"] > 0 and meta["confidence"] == "strong"
    assert {"source", "published", "url", "passage_id", "also_in"} <= meta.keys()


def test_langchain_invoke_returns_the_passage_first_with_its_citation(real_assistant):
    pytest.importorskip("langchain_core", reason="pip install -e '.[langchain]'")
    from langchain_core.documents import Document

    from assistant.integrations.langchain import NewsRetriever

    retriever = NewsRetriever(assistant=real_assistant, k=3)
    docs = retriever.invoke(QUESTION)
    assert 1 <= len(docs) <= 3 and all(isinstance(d, Document) for d in docs)
    _cites_zelensky(docs[0].metadata, docs[0].page_content, real_assistant)
    hits = real_assistant.search(QUESTION, k=3)
    assert [d.page_content for d in docs] == [h.text for h in hits]
    assert [d.metadata["passage_id"] for d in docs] == [h.passage_id for h in hits]
    assert docs[0].id == str(hits[0].passage_id)


def test_langchain_filters_reach_the_search(real_assistant):
    pytest.importorskip("langchain_core", reason="pip install -e '.[langchain]'")
    from assistant.integrations.langchain import NewsRetriever

    other = "004_9ef5f17bb255e9d8.txt"
    docs = NewsRetriever(assistant=real_assistant, k=5, filters={"article_id": [other]}).invoke(QUESTION)
    assert docs and {d.metadata["article_id"] for d in docs} == {other}


def test_llamaindex_retrieve_returns_the_passage_first_with_its_citation(real_assistant):
    pytest.importorskip("llama_index.core", reason="pip install -e '.[llamaindex]'")
    from llama_index.core.schema import NodeWithScore

    from assistant.integrations.llamaindex import NewsRetriever

    nodes = NewsRetriever(real_assistant, k=3).retrieve(QUESTION)
    assert 1 <= len(nodes) <= 3 and all(isinstance(n, NodeWithScore) for n in nodes)
    _cites_zelensky(nodes[0].node.metadata, nodes[0].node.get_content(), real_assistant)
    hits = real_assistant.search(QUESTION, k=3)
    assert [n.node.get_content() for n in nodes] == [h.text for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    assert nodes[0].node.node_id == str(hits[0].passage_id)


@pytest.mark.parametrize(
    ("module", "library", "line"),
    [
        ("langchain", "langchain_core", "the LangChain retriever needs langchain-core: pip install -e '.[langchain]'"),
        (
            "llamaindex",
            "llama_index",
            "the LlamaIndex retriever needs llama-index-core: pip install -e '.[llamaindex]'",
        ),
    ],
)
def test_without_the_library_the_import_says_which_extra_to_install(module, library, line):
    code = (
        f"import sys; sys.modules[{library!r}] = None\n"  # as if the library were not installed
        "import assistant\n"
        "from assistant.types import AssistantError\n"
        "try:\n"
        f"    import assistant.integrations.{module}\n"
        "except AssistantError as e:\n"
        "    print(e); sys.exit(1)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert out.stdout.strip() == line and not out.stderr
