"""The Gradio chat: cited passages, an article viewer, follow-ups, filters and uploads; all text rendered inert."""

from __future__ import annotations

import atexit
import dataclasses
import html
import json
import re
import shutil
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .answer import period_lines
from .batch import Asked, records, write_results
from .core import Assistant
from .documents import SUPPORTED
from .engines.base import check_date
from .types import Answer, AssistantError, Citation, Hit, Said

MAX_K = 50  # the most passages one API call returns, over HTTP, gradio_client and MCP
MAX_HISTORY = 20  # the most earlier questions one API call may send
EXAMPLES = [
    "What did Zelensky say to Russians?",
    "What did Lavrov accuse Ukraine of at the UN?",
    "Can Russians who oppose Putin get asylum in Germany?",
    "What did the child shout as her father was taken away?",
]
VIEWER_HINT = "<p class='hint'>Click a citation to read the whole article here, with the passage marked.</p>"

# The chat's HTML is sanitised, so citations are plain links (#cite:START:END:ID), as are the archive panel's titles
# (#article:ID); this listener turns a click on one into a call of its hidden "open" button instead of a navigation.
HEAD = """<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#cite:"], a[href^="#article:"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const ref = decodeURIComponent(link.getAttribute("href").slice(1));
  if (ref.startsWith("cite:")) {
    window.newsCiteRef = ref;
    document.querySelector("#cite-open")?.click();
  } else {
    window.newsArticleRef = link.getAttribute("href");
    document.querySelector("#archive-open")?.click();
  }
}, true);
</script>"""
CITE_REF_JS = "(ref) => window.newsCiteRef || ref"
SCROLL_TO_PASSAGE_JS = """() => {
  const view = document.querySelector("#article-view .article-body");
  const mark = document.querySelector("#cited-passage");
  if (view && mark) view.scrollTop = Math.max(0, mark.offsetTop - view.offsetTop - 40);
}"""
SCROLL_TO_QUESTION_JS = """() => {
  const users = document.querySelectorAll("#chat .user-row");
  const last = users[users.length - 1];
  let box = last && last.parentElement;
  while (box && !(box.scrollHeight > box.clientHeight && getComputedStyle(box).overflowY !== "visible")) {
    box = box.parentElement;
  }
  if (box) box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
}"""
CSS = """
#chat blockquote { border-left: 3px solid var(--color-accent); margin: 0 0 1.1em 0; padding: 0.2em 0 0.2em 0.8em; }
#chat small, #article-view small { color: var(--body-text-color-subdued); }
#chat a[href^="#cite:"] { cursor: pointer; }
#chat mark { background: #fde68a; color: inherit; padding: 0 1px; }
#article-view .article-body, #archive-view .article-body { white-space: pre-wrap; max-height: 62vh; overflow-y: auto;
  padding-right: 0.5em; }
#archive-list table, #archive-followed table { width: 100%; border-collapse: collapse; font-size: 0.92em; }
#archive-list th, #archive-list td, #archive-followed th, #archive-followed td { text-align: left; padding: 3px 6px;
  border-bottom: 1px solid var(--border-color-primary); vertical-align: top; }
#archive-list td.file { word-break: break-all; color: var(--body-text-color-subdued); }
#article-view #cited-passage { background: #fde68a; box-decoration-break: clone; -webkit-box-decoration-break: clone; }
"""


def cite_ref(c: Citation) -> str:
    """The link target of a citation in the chat: '#cite:START:END:ARTICLE_ID'."""
    return f"#cite:{c.char_start}:{c.char_end}:{quote(c.article_id, safe='')}"


def parse_cite_ref(ref: str) -> tuple[str, int, int]:
    """The article id and passage span a citation link stands for."""
    try:
        _, start, end, article_id = ref.lstrip("#").split(":", 3)
        return unquote(article_id), int(start), int(end)
    except ValueError:
        raise AssistantError(f"not a citation reference: {ref!r}") from None


def where_in(text: str, start: int, end: int) -> str:
    """Where a span sits in an article, in words: 'paragraphs 3-4 of 12'."""
    paragraphs = [m.start() for m in re.finditer(r"(?:^|\n\s*\n)\s*\S", text)] or [0]
    first = sum(1 for p in paragraphs if p <= start)
    last = sum(1 for p in paragraphs if p < end)
    n = len(paragraphs)
    return f"paragraph {first} of {n}" if last <= first else f"paragraphs {first}-{last} of {n}"


def _cite_line(label: str, c: Citation, where: str) -> str:
    parts = [c.title, c.source, c.article_id, where]
    return f"<a href='{html.escape(cite_ref(c))}'>[{label}] {html.escape(' · '.join(p for p in parts if p))}</a>"


def _headline(label: str, c: Citation) -> str:
    """A passage's first line: outlet, headline and date, as the link that opens the article."""
    parts = [
        f"<strong>{html.escape(c.source)}</strong>" if c.source else "",
        html.escape(c.title),
        html.escape(c.published),
    ]
    return f"<a href='{html.escape(cite_ref(c))}'>[{label}] {' · '.join(p for p in parts if p)}</a>"


def _with_marks(hit: Hit) -> str:
    """A passage's text, escaped, its best sentence in <mark> and each quotation's speaker named after it."""
    cuts = {0, len(hit.text)}
    if hit.highlight:
        cuts.update(hit.highlight)
    ends: dict[int, list[str]] = {}
    for q in hit.quotes:
        if q.speaker:
            end = q.end
            while end < len(hit.text) and hit.text[end] in "'’”\"»":
                end += 1  # after the closing mark
            ends.setdefault(end, []).append(q.speaker)
            cuts.add(end)
    out, points = [], sorted(cuts)
    for a, b in zip(points, points[1:], strict=False):
        piece = html.escape(hit.text[a:b])
        if hit.highlight and hit.highlight[0] <= a and b <= hit.highlight[1]:
            piece = f"<mark>{piece}</mark>"
        out.append(piece)
        for who in ends.get(b, []):
            out.append(f" <small class='speaker'>— {html.escape(who)}</small>")
    return "".join(out).replace("\n\n", "<br><br>")


def render_html(answer: Answer, text_of: Callable[[str], str] | None = None) -> str:
    """An answer as HTML: every piece of article text escaped, a direct answer on top, each passage headed by its
    outlet, headline and date, the best sentence in <mark>, quotations named by speaker, citations as links."""
    understood = f"<p><small>Understood as: {html.escape(answer.query)}</small></p>" if answer.query else ""
    understood += "".join(f"<p class='period'><small>{html.escape(line)}</small></p>" for line in period_lines(answer))
    if not answer.found:
        return f"{understood}<p>{html.escape(answer.message)}</p>"

    def where(c: Citation) -> str:
        return where_in(text_of(c.article_id), c.char_start, c.char_end) if text_of else ""

    parts = [understood]
    if answer.message:
        parts.append(f"<p class='weak'><em>{html.escape(answer.message)}</em></p>")
    if answer.direct is not None:
        d = answer.direct
        c = answer.passages[d.passage - 1].citations[0]
        span = dataclasses.replace(c, char_start=c.char_start + d.start, char_end=c.char_start + d.end)
        ref = html.escape(cite_ref(span))
        parts.append(
            f"<p class='direct'><strong>Answer:</strong> {html.escape(d.text)} <small><a href='{ref}'>[{d.passage}] "
            f"{html.escape(' · '.join(x for x in (c.source, c.title, c.published) if x))}</a></small></p>"
        )
    for n, hit in enumerate(answer.passages, 1):
        first, *others = hit.citations
        also = "".join(
            f"<br><small>Also in {_cite_line(f'{n}{chr(97 + i)}', c, where(c))}</small>" for i, c in enumerate(others)
        )
        detail = " · ".join(x for x in (first.article_id, where(first), f"score {hit.score:.2f}") if x)
        parts.append(
            f"<blockquote><p>{_headline(str(n), first)}</p><p>{_with_marks(hit)}</p>"
            f"<p><small>{html.escape(detail)}</small>{also}</p></blockquote>"
        )
    return "".join(parts) + render_timeline(answer.timeline)


def render_timeline(rows: tuple[tuple[str, int], ...], width: int = 30) -> str:
    """The matching articles per day, week, month or year as a small bar chart of text (bars of █, every label
    escaped); '' when there is none or only one bucket."""
    if len(rows) < 2:
        return ""
    top = max(n for _, n in rows) or 1
    label_width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{label_width}} {'█' * max(n > 0, round(width * n / top))} {n}" for label, n in rows]
    total = sum(n for _, n in rows)
    return (
        f"<p><small>Matching articles by publication date ({total}):</small></p>"
        f"<pre class='timeline'>{html.escape(chr(10).join(lines))}</pre>"
    )


def render_quotes(said: list[Said], speaker: str) -> str:
    """Quotations (`Assistant.quotes`) as HTML: each with its speaker and its article's outlet, headline and date."""
    if not said:
        return f"<p>No quotation by {html.escape(speaker)} in the indexed articles.</p>"
    parts = []
    for n, q in enumerate(said, 1):
        also = "".join(
            f"<br><small>Also in {_headline(f'{n}{chr(97 + i)}', c)}</small>" for i, c in enumerate(q.also_in)
        )
        parts.append(
            f"<blockquote><p>{_headline(str(n), q.citation)}</p><p><strong>{html.escape(q.speaker)}:</strong> "
            f"“{html.escape(q.text)}”</p><p>{also}</p></blockquote>"
        )
    return "".join(parts)


def render_article(title: str, meta: list[str], text: str, start: int, end: int) -> str:
    """A whole article as inert HTML with the cited span wrapped in <mark id='cited-passage'> (none when empty)."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    body = (
        f"{html.escape(text[:start])}<mark id='cited-passage'>{html.escape(text[start:end])}</mark>"
        f"{html.escape(text[end:])}"
        if start < end
        else html.escape(text)
    )
    line = " · ".join(html.escape(m) for m in meta if m)
    return f"<h3>{html.escape(title)}</h3><p><small>{line}</small></p><div class='article-body'>{body}</div>"


def passages_csv(answer: Answer, folder: Path) -> Path:
    """An answer's passages with their citations as a CSV file of its own in `folder` (the rows of `assistant batch`),
    for the chat's download button."""
    name = re.sub(r"[^A-Za-z0-9]+", "-", answer.question).strip("-")[:60] or "answer"
    path = Path(tempfile.mkdtemp(dir=folder)) / f"passages-{name}.csv"  # a folder each: answers written at once
    write_results(records([Asked(answer.question, answer.passages)]), path)
    return path


def api_count(k: object) -> int:
    """The `k` of an API call (gradio_client, MCP) as a whole number from 1 to MAX_K (a larger or smaller one is
    brought within them); anything that is not a number is a one-line error naming `k`."""
    try:
        if isinstance(k, bool):
            raise TypeError
        n = int(k)  # type: ignore[call-overload]  # 5, 5.0 and "5" as before
    except (TypeError, ValueError, OverflowError):
        raise AssistantError(f"k must be a whole number from 1 to {MAX_K}, got {str(k)[:40]!r}") from None
    return max(1, min(n, MAX_K))


def build_filters(
    article_ids: list[str] | None, sources: list[str] | None, date_from: str, date_to: str
) -> dict[str, Any] | None:
    """The chat's filter controls as the plain-dict filters of `Assistant.ask`; a bad date raises its name."""
    filters: dict[str, Any] = {}
    if article_ids:
        filters["article_id"] = list(article_ids)
    if sources:
        filters["source"] = list(sources)
    for key, label, value in (
        ("published_from", "Published from", date_from),
        ("published_to", "Published to", date_to),
    ):
        value = checked_date(label, value)
        if value:
            filters[key] = value
    return filters or None


def checked_date(label: str, value: str | None) -> str:
    """A date field's value as 'YYYY[-MM[-DD]]' ('' when empty); a bad one raises an error naming the field."""
    try:
        return check_date((value or "").strip(), label)
    except AssistantError:
        raise AssistantError(f"{label}: '{value}' is not a date; use YYYY-MM-DD (or YYYY-MM, YYYY)") from None


def build_app(assistant: Assistant):  # noqa: ANN201 - gradio.Blocks, imported lazily
    """The chat UI plus `search` and `quotes` API endpoints (also the MCP tools) over one `Assistant`."""
    import gradio as gr

    from .archive_panel import build_archive
    from .uploads import add_uploads

    downloads = Path(tempfile.mkdtemp(prefix="assistant-passages-"))  # Gradio serves a copy from its own cache
    atexit.register(shutil.rmtree, downloads, ignore_errors=True)
    hidden = gr.update(value=None, visible=False)

    def filter_choices() -> tuple[Any, Any, Any, Any]:
        arts = assistant.articles()
        sources = sorted({a.get("source") or "" for a in arts} - {""})
        dated = any(a.get("published") for a in arts)
        return (
            gr.update(
                choices=[(f"{textwrap.shorten(a['title'], 70, placeholder='…')} ({a['id']})", a["id"]) for a in arts]
            ),
            gr.update(choices=sources, visible=bool(sources)),
            gr.update(visible=dated),
            gr.update(visible=dated),
        )

    def respond(
        message: str,
        chat: list[dict[str, Any]],
        asked: list[str],
        article_ids: list[str],
        sources: list[str],
        date_from: str,
        date_to: str,
        speaker: str = "",
    ) -> tuple[str, list[dict[str, Any]], list[str], Any]:
        question = (message or "").strip()
        if not question:
            return "", chat, asked, gr.update()
        download = hidden
        try:
            filters = build_filters(article_ids, sources, date_from, date_to)
            if (speaker or "").strip():  # the speaker filter: that person's quotations, ranked by the question
                said = assistant.quotes(speaker=speaker.strip(), about=question, k=5, filters=filters)
                reply = render_quotes(said, speaker.strip())
            else:
                answer = assistant.ask(question, k=5, filters=filters, history=asked[-4:])
                reply = render_html(answer, assistant.article_text)
                if answer.passages:
                    download = gr.update(value=str(passages_csv(answer, downloads)), visible=True)
        except AssistantError as e:
            reply = f"<p>{html.escape(str(e))}</p>"
        turn = [{"role": "user", "content": html.escape(question)}, {"role": "assistant", "content": reply}]
        return "", [*chat, *turn], [*asked, question], download

    def open_article(ref: str) -> str:
        try:
            article_id, start, end = parse_cite_ref(ref)
            meta = assistant.article(article_id)
            text = assistant.article_text(article_id)
        except AssistantError as e:
            return f"<p>{html.escape(str(e))}</p>"
        info = [meta.get("source", ""), meta.get("published", ""), meta.get("path") or article_id]
        info.append(where_in(text, start, end))
        return render_article(meta["title"], info, text, start, end)

    def upload(files: list[str] | None) -> tuple[Any, ...]:
        if not files:
            return (gr.update(), *filter_choices(), None)
        server = assistant.settings.server
        try:
            message = add_uploads(assistant, files, server.upload_max_mb, server.upload_max_files).message()
        except AssistantError as e:
            message = f"Nothing was added: {e}"
        return (html.escape(message).replace("\n", "<br>"), *filter_choices(), None)

    def search(question: str, k: int = 5, history: list[str] | None = None) -> str:
        """Find the passages of the indexed news articles that answer a question, each with its citation.

        Returns the JSON of `assistant ask --json`: question, query (the question as searched, made standalone
        from `history`), found, confidence ("strong", "weak": may not answer, or "none"), answer (a direct answer
        taken word for word from passage 1, or null), passages with rank, text, score, citations (article_id,
        title, source, path, char_start, char_end, published, url) and quotes (speaker, text, start, end, kind).

        Args:
            question: the question, in plain English
            k: how many passages to return (1-50)
            history: earlier questions of the conversation, oldest first, for follow-ups like "What did he say?"
        """
        # JSON text rather than a dict: gradio_client would take the citations' "path" for files to fetch.
        history = history or []
        if isinstance(history, list) and len(history) > MAX_HISTORY:
            raise AssistantError(f"history holds {len(history):,} questions; send at most {MAX_HISTORY}, the latest")
        answer = assistant.ask(question, k=api_count(k), history=history)
        return json.dumps(answer.to_dict(), ensure_ascii=False)

    def quotes(speaker: str = "", about: str = "", k: int = 20) -> str:
        """Find what a person said across the indexed news articles: their quotations, each with its citation.

        Returns the JSON of `assistant quotes --json`: speaker, about, and quotes with speaker, text, kind (direct
        or reported), score, citation (article_id, title, source, path, char_start, char_end, published, url) and
        also_in (the same words in other articles).

        Args:
            speaker: whose quotations, a name as the articles give it (e.g. "Zelensky"); empty for anyone's
            about: a topic the quotations are ranked by (e.g. "Russians"); empty to list them newest first
            k: at most this many quotations (1-50)
        """
        said = assistant.quotes(speaker=speaker or None, about=about or None, k=api_count(k))
        return json.dumps(
            {"speaker": speaker, "about": about, "quotes": [q.to_dict() for q in said]}, ensure_ascii=False
        )

    with gr.Blocks(title="News assistant") as demo:
        asked = gr.State([])
        gr.Markdown("### News assistant\nAsk about the indexed articles; every answer is a passage with its citation.")
        with gr.Tabs(elem_id="tabs"):
            with gr.Tab("Chat", elem_id="tab-chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chat = gr.Chatbot(
                            label="Answers",
                            height=560,
                            sanitize_html=True,
                            render_markdown=False,
                            autoscroll=False,
                            elem_id="chat",
                            feedback_options=None,
                        )
                        box = gr.Textbox(
                            placeholder="Ask a question about the articles… (follow-ups like 'What did he say?' work)",
                            show_label=False,
                            submit_btn=True,
                            elem_id="question",
                        )
                        gr.Examples(EXAMPLES, inputs=box)
                        with gr.Row():
                            new_chat = gr.Button("New conversation", size="sm", variant="secondary")
                            download = gr.DownloadButton(
                                "Download these passages (CSV)",
                                size="sm",
                                variant="secondary",
                                visible=False,
                                elem_id="download-passages",
                            )
                        with gr.Accordion("Filters", open=False):
                            article_pick = gr.Dropdown(
                                label="Only these articles", multiselect=True, choices=[], elem_id="filter-articles"
                            )
                            source_pick = gr.Dropdown(
                                label="Only these sources", multiselect=True, choices=[], visible=False
                            )
                            with gr.Row():
                                date_from = gr.Textbox(label="Published from", placeholder="YYYY-MM-DD", visible=False)
                                date_to = gr.Textbox(label="Published to", placeholder="YYYY-MM-DD", visible=False)
                            speaker = gr.Textbox(
                                label="Only quotations by",
                                placeholder="a speaker's name, e.g. Zelensky: the question then ranks what they said",
                                elem_id="filter-speaker",
                            )
                        with gr.Accordion("Add articles", open=False):
                            limit = assistant.settings.server.upload_max_mb
                            most = assistant.settings.server.upload_max_files
                            files = gr.File(
                                label=f"Upload .txt .md .html .jsonl ({limit:g} MB each, {most} at a time); "
                                "indexed at once",
                                file_count="multiple",
                                file_types=sorted(SUPPORTED),
                                elem_id="upload",
                            )
                            upload_status = gr.HTML("", elem_id="upload-status")
                    with gr.Column(scale=2):
                        viewer = gr.HTML(VIEWER_HINT, elem_id="article-view", label="Article")
            with gr.Tab("Archive", elem_id="tab-archive") as archive_tab:
                archive = build_archive(assistant)
        cite_target = gr.Textbox(visible="hidden", elem_id="cite-target")
        cite_open = gr.Button("open", visible="hidden", elem_id="cite-open")

        choices = [article_pick, source_pick, date_from, date_to]
        inputs = [box, chat, asked, *choices, speaker]
        replies = [box, chat, asked, download]
        box.submit(respond, inputs, replies, api_visibility="private").then(None, js=SCROLL_TO_QUESTION_JS)
        cite_open.click(open_article, cite_target, viewer, js=CITE_REF_JS, api_visibility="private").then(
            None, js=SCROLL_TO_PASSAGE_JS
        )
        new_chat.click(
            lambda: ([], [], VIEWER_HINT, hidden), None, [chat, asked, viewer, download], api_visibility="private"
        )
        chat.clear(lambda: [], None, asked, api_visibility="private")
        files.upload(upload, files, [upload_status, *choices, files], api_visibility="private")
        demo.load(filter_choices, None, choices, api_visibility="private")
        archive.removed.then(filter_choices, None, choices, api_visibility="private")
        archive_tab.select(archive.reload, archive.inputs, archive.outputs, api_visibility="private")
        # Unqueued (MCP calls it in-process, login or not) and unlimited: gradio_client reaches it through the
        # queue, where the default of one call at a time made 32 clients wait 0.7 s each; searches are thread-safe.
        gr.api(search, api_name="search", queue=False, concurrency_limit=None)
        gr.api(quotes, api_name="quotes", queue=False, concurrency_limit=None)
    return demo
