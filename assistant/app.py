"""The Gradio chat: questions in, cited passages out, rendered as inert text."""

from __future__ import annotations

import html
import json
from typing import Any

from .answer import cite, split_highlight
from .core import Assistant
from .types import Answer

MAX_K = 50  # the most passages one API call returns, over HTTP, gradio_client and MCP
EXAMPLES = [
    "What did Zelensky say to Russians?",
    "What did Lavrov accuse Ukraine of at the UN?",
    "Can Russians who oppose Putin get asylum in Germany?",
    "What did the child shout as her father was taken away?",
]


def render_html(answer: Answer) -> str:
    """An answer as HTML: every piece of article text escaped, the best sentence in <mark>."""
    if not answer.found:
        return f"<p class='nothing-found'>{html.escape(answer.message)}</p>"
    parts = []
    for n, hit in enumerate(answer.passages, 1):
        before, sentence, after = (html.escape(x) for x in split_highlight(hit))
        body = f"{before}<mark>{sentence}</mark>{after}" if sentence else before
        body = body.replace("\n\n", "<br><br>")
        cites = "".join(
            f"<li><span class='cite'>[{n}{'' if i == 0 else chr(96 + i)}]</span> {html.escape(cite(c))}</li>"
            for i, c in enumerate(hit.citations)
        )
        also = " (also in the other articles listed)" if len(hit.citations) > 1 else ""
        parts.append(
            f"<div class='passage'><p>{body}</p><ul class='citations'>{cites}</ul>"
            f"<small class='score'>score {hit.score:.2f}{also}</small></div>"
        )
    return "".join(parts)


def build_app(assistant: Assistant):  # noqa: ANN201 - gradio.Blocks, imported lazily
    """The chat UI plus a `search` API endpoint (also the MCP tool) over one `Assistant`."""
    import gradio as gr

    def respond(message: str, history: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
        question = (message or "").strip()
        if not question:
            return "", history
        reply = render_html(assistant.ask(question, k=5))
        return "", [*history, {"role": "user", "content": question}, {"role": "assistant", "content": reply}]

    def search(question: str, k: int = 5) -> str:
        """Find the passages of the indexed news articles that answer a question, each with its citation.

        Returns the JSON of `assistant ask --json`: question, found, passages with rank, text, score and
        citations (article_id, title, source, path, char_start, char_end).

        Args:
            question: the question, in plain English
            k: how many passages to return (1-50)
        """
        # JSON text rather than a dict: gradio_client would take the citations' "path" for files to fetch.
        return json.dumps(assistant.ask(question, k=max(1, min(int(k), MAX_K))).to_dict(), ensure_ascii=False)

    with gr.Blocks(title="News assistant") as demo:
        gr.Markdown("### News assistant\nAsk about the indexed articles; every answer is a cited passage.")
        chat = gr.Chatbot(label="Answers", height=560, sanitize_html=True, render_markdown=False)
        box = gr.Textbox(placeholder="Ask a question about the articles…", show_label=False, submit_btn=True)
        gr.Examples(EXAMPLES, inputs=box)
        box.submit(respond, [box, chat], [box, chat], api_visibility="private")
        gr.api(search, api_name="search")
    return demo
