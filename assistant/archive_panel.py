"""The chat's archive panel: the indexed articles a page at a time, searched, opened, removed after a confirm;
and the followed sources' table. Every title, name and text from files or feeds is rendered inert."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from .app import checked_date, render_article
from .core import Assistant
from .types import AssistantError
from .uploads import WAIT_S

PAGE = 50  # articles a page of the panel shows
ENTRY_HINT = "<p class='hint'>Click a title to read the article here; you can remove it from there.</p>"
FOLLOWED_COLUMNS = (  # Assistant.followed()'s keys and their headings
    ("target", "Feed or folder"),
    ("kind", "Kind"),
    ("last_poll", "Last poll"),
    ("added", "Added"),
    ("updated", "Updated"),
    ("last_error", "Last error"),
    ("next_poll", "Next poll"),
)
# A click on an article's title in the list calls the hidden "open" button with the article's reference.
ARTICLE_REF_JS = "(ref) => window.newsArticleRef || ref"


def article_ref(article_id: str) -> str:
    """The link target of an article in the list: '#article:ID'."""
    return f"#article:{quote(article_id, safe='')}"


def parse_article_ref(ref: str) -> str:
    """The article id an article link (or its decoded form, 'article:ID') stands for."""
    kind, _, rest = (ref or "").lstrip("#").partition(":")
    if kind != "article" or not rest:
        raise AssistantError(f"not an article reference: {ref!r}")
    return unquote(rest)


def render_listing(rows: Sequence[Mapping[str, Any]], total: int, offset: int, searched: bool, indexed: int) -> str:
    """A page of `Assistant.list_articles` as an HTML table (every value escaped; titles are links that open the
    article), headed "Showing 1-50 of M articles"."""
    if not rows:
        if total:
            return f"<p>Nothing on this page: {total:,} article(s) {'match' if searched else 'indexed'}.</p>"
        return "<p>No article matches the search.</p>" if searched else "<p>No articles are indexed yet.</p>"
    which = f"matching articles ({indexed:,} indexed)" if searched else "articles"
    head = f"<p class='count'>Showing {offset + 1:,}–{offset + len(rows):,} of {total:,} {which}, newest first</p>"
    cells = []
    for r in rows:
        link = f"<a href='{html.escape(article_ref(r['id']))}'>{html.escape(r['title'] or r['id'])}</a>"
        where = r.get("url") or r.get("path") or r["id"]
        cells.append(
            f"<tr><td>{link}</td><td>{html.escape(r['source'])}</td><td>{html.escape(r['published'][:10])}</td>"
            f"<td>{int(r['passages'])}</td><td class='file'>{html.escape(where)}</td></tr>"
        )
    columns = "<tr><th>Title</th><th>Source</th><th>Published</th><th>Passages</th><th>File or URL</th></tr>"
    return f"{head}<table><thead>{columns}</thead><tbody>{''.join(cells)}</tbody></table>"


def render_followed(rows: Sequence[Mapping[str, Any]]) -> str:
    """The followed feeds and folders (`Assistant.followed()`: target, kind, last_poll, added, updated, last_error,
    next_poll) as an HTML table, one row each, every value escaped; a line saying so when there are none."""
    if not rows:
        return "<p>No followed sources. Follow a feed or folder with <code>assistant follow</code>.</p>"
    head = "".join(f"<th>{title}</th>" for _, title in FOLLOWED_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_shown(r.get(key)))}</td>" for key, _ in FOLLOWED_COLUMNS) + "</tr>"
        for r in rows
    )
    return f"<p><strong>Followed sources</strong></p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _shown(value: Any) -> str:
    """A followed source's field as table text: '' for none, numbers with separators."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def confirm_text(meta: Mapping[str, Any]) -> str:
    """The question asked before a removal, naming the article (escaped)."""
    title = html.escape(meta.get("title") or meta["id"])
    return (
        f"<p><strong>Remove “{title}”</strong> ({html.escape(meta['id'])}) from the index? Its passages leave every "
        "answer; an uploaded article's file is deleted too. This cannot be undone.</p>"
    )


@dataclass
class ArchiveParts:
    """What the chat wires to its own events: the removal (to refresh its filters after) and the panel's reload
    (when the tab is opened: uploads and other writers may have changed the archive)."""

    removed: Any  # the Gradio event of a confirmed removal; `.then(...)` runs after it
    reload: Any  # a function of `inputs` giving `outputs`
    inputs: list[Any]
    outputs: list[Any]


def build_archive(assistant: Assistant) -> ArchiveParts:  # noqa: PLR0915 - one panel's layout and its events
    """The archive panel's components and events, inside the caller's `gr.Tab` (or accordion)."""
    import gradio as gr

    def show(title: str, source: str, since: str, until: str, offset: int) -> tuple[str, int]:
        try:
            lo, hi = checked_date("Published from", since), checked_date("Published to", until)
            rows, total = assistant.list_articles(title or "", source or "", lo, hi, max(0, int(offset)), PAGE)
            if total and not rows:  # the page went past the end (articles removed): show the last one
                offset = (total - 1) // PAGE * PAGE
                rows, total = assistant.list_articles(title or "", source or "", lo, hi, offset, PAGE)
        except AssistantError as e:
            return f"<p class='error'>{html.escape(str(e))}</p>", int(offset or 0)
        searched = any((x or "").strip() for x in (title, source, since, until))
        indexed = int(assistant.view.meta.get("articles") or total) if searched else total
        return render_listing(rows, total, int(offset), searched, indexed), int(offset)

    def page(step: int) -> Any:
        def turn(title: str, source: str, since: str, until: str, offset: int) -> tuple[str, int]:
            return show(title, source, since, until, max(0, int(offset or 0) + step))

        turn.__name__ = "older" if step > 0 else "newer"
        return turn

    def open_entry(ref: str) -> tuple[Any, ...]:
        try:
            article_id = parse_article_ref(ref)
            meta = assistant.article(article_id)
            text = assistant.article_text(article_id)
        except AssistantError as e:
            return f"<p>{html.escape(str(e))}</p>", None, gr.update(visible=False), gr.update(visible=False), ""
        info = [meta.get("source", ""), meta.get("published", ""), meta.get("url") or meta.get("path"), article_id]
        view = render_article(meta.get("title") or article_id, info, text, 0, 0)
        return view, meta, gr.update(visible=True), gr.update(visible=False), ""

    def ask_first(chosen: dict[str, Any] | None) -> tuple[Any, ...]:
        if not chosen:
            return gr.update(visible=False), "", gr.update(visible=False), "<p>Open an article first.</p>"
        return gr.update(visible=True), confirm_text(chosen), gr.update(visible=False), ""

    def cancel(chosen: dict[str, Any] | None) -> tuple[Any, ...]:
        kept = f"<p>Kept “{html.escape(chosen.get('title') or chosen['id'])}”.</p>" if chosen else ""
        return gr.update(visible=False), gr.update(visible=bool(chosen)), kept

    def remove(chosen: dict[str, Any] | None, *search: Any) -> tuple[Any, ...]:
        if not chosen:
            hidden = gr.update(visible=False)
            return (*show(*search), gr.update(), None, hidden, hidden, "<p>Open an article first.</p>")
        name = f"“{html.escape(chosen.get('title') or chosen['id'])}” ({html.escape(chosen['id'])})"
        try:
            n = assistant.remove([chosen["id"]], wait_s=WAIT_S)  # the write path of `assistant remove`
        except AssistantError as e:
            status = f"<p>Nothing was removed: {html.escape(str(e))}</p>"
            return (*show(*search), gr.update(), chosen, gr.update(visible=True), gr.update(visible=False), status)
        status = f"<p>Removed {name}.</p>" if n else f"<p>{name} was no longer in the index.</p>"
        return (*show(*search), ENTRY_HINT, None, gr.update(visible=False), gr.update(visible=False), status)

    offset = gr.State(0)
    chosen = gr.State(None)  # the open article's metadata: what a confirmed removal removes
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            with gr.Row():
                title = gr.Textbox(label="Title words", elem_id="archive-title")
                source = gr.Textbox(label="Source", elem_id="archive-source")
                since = gr.Textbox(label="Published from", placeholder="YYYY-MM-DD", elem_id="archive-since")
                until = gr.Textbox(label="Published to", placeholder="YYYY-MM-DD", elem_id="archive-until")
            with gr.Row():
                find = gr.Button("Search", variant="primary", size="sm", elem_id="archive-search")
                newer = gr.Button("← Newer", size="sm", variant="secondary", elem_id="archive-newer")
                older = gr.Button("Older →", size="sm", variant="secondary", elem_id="archive-older")
            listing = gr.HTML("<p>Loading the archive…</p>", elem_id="archive-list")
            followed = gr.HTML("", elem_id="archive-followed")  # what `assistant follow` polls (none: it says so)
        with gr.Column(scale=2):
            entry = gr.HTML(ENTRY_HINT, elem_id="archive-view")
            ask = gr.Button("Remove this article…", variant="stop", size="sm", visible=False, elem_id="archive-remove")
            with gr.Column(visible=False, elem_id="archive-confirm") as confirm:
                question = gr.HTML("", elem_id="archive-question")
                with gr.Row():
                    yes = gr.Button("Yes, remove it", variant="stop", size="sm", elem_id="archive-yes")
                    no = gr.Button("Cancel", size="sm", variant="secondary", elem_id="archive-cancel")
            status = gr.HTML("", elem_id="archive-status")
    target = gr.Textbox(visible="hidden", elem_id="archive-target")
    opener = gr.Button("open", visible="hidden", elem_id="archive-open")

    search = [title, source, since, until]
    private = {"api_visibility": "private"}
    for trigger in (find.click, title.submit, source.submit, since.submit, until.submit):
        trigger(lambda *s: show(*s, 0), search, [listing, offset], **private)
    newer.click(page(-PAGE), [*search, offset], [listing, offset], **private)
    older.click(page(PAGE), [*search, offset], [listing, offset], **private)
    opener.click(open_entry, target, [entry, chosen, ask, confirm, status], js=ARTICLE_REF_JS, **private)
    ask.click(ask_first, chosen, [confirm, question, ask, status], **private)
    no.click(cancel, chosen, [confirm, ask, status], **private)
    outputs = [listing, offset, entry, chosen, confirm, ask, status]
    removed = yes.click(remove, [chosen, *search, offset], outputs, **private)

    def reload(*args: Any) -> tuple[Any, ...]:
        shown = show(*args)
        try:
            table = render_followed(assistant.followed())
        except AssistantError as e:
            table = f"<p>Followed sources: {html.escape(str(e))}</p>"
        return (*shown, table)

    return ArchiveParts(removed, reload, [*search, offset], [listing, offset, followed])
