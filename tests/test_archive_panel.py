"""The chat's archive panel without a browser: its tables render inert, and its removal is `assistant remove`'s."""

import html
import threading
import time

import pytest

from assistant import Assistant
from assistant.app import build_app
from assistant.archive_panel import (
    article_ref,
    confirm_text,
    parse_article_ref,
    render_followed,
    render_listing,
)
from assistant.types import AssistantError

from .conftest import another_writer
from .fakes import HashEmbedder

HOSTILE = '<img src=x onerror="alert(1)">Gala<script>alert(2)</script>'
FOLLOWED = [
    {"target": "https://news.example.org/feed.xml", "kind": "feed", "last_poll": "2026-12-03 14:02",
     "added": 12, "updated": 1, "last_error": "", "next_poll": "2026-12-03 14:32"},
    {"target": "/srv/<b>wire</b>/", "kind": "folder", "last_poll": None, "added": 1234, "updated": 0,
     "last_error": "cannot read /srv/<b>wire</b>/x.txt: <script>alert(3)</script>", "next_poll": "2026-12-03 14:05"},
]  # fmt: skip


def test_the_followed_sources_table_has_a_row_each_and_shows_markup_as_text():
    table = render_followed(FOLLOWED)
    assert table.count("<tr>") == 3  # the heading and a row per source
    for heading in ("Feed or folder", "Kind", "Last poll", "Added", "Updated", "Last error", "Next poll"):
        assert f"<th>{heading}</th>" in table
    first = table.split("<tr>")[2]
    assert "<td>https://news.example.org/feed.xml</td><td>feed</td><td>2026-12-03 14:02</td><td>12</td>" in first
    second = table.split("<tr>")[3]
    assert "<td>1,234</td><td>0</td>" in second and "<td>folder</td><td></td>" in second  # never polled: blank
    assert "<b>" not in table and "<script>" not in table
    assert "/srv/&lt;b&gt;wire&lt;/b&gt;/" in table and "&lt;script&gt;alert(3)&lt;/script&gt;" in table
    assert "No followed sources" in render_followed([]) and "<table>" not in render_followed([])


def test_a_page_of_articles_renders_inert_with_links_that_name_each_article():
    rows = [
        {"id": "in/evil<b>.txt", "title": HOSTILE, "source": "<i>Herald</i>", "published": "2024-06-20T10:00:00",
         "path": "in/evil<b>.txt", "url": "", "passages": 3},
        {"id": "sub dir/a:b#1.txt", "title": "", "source": "", "published": "", "path": "x.jsonl",
         "url": "javascript:alert(4)", "passages": 1},
    ]  # fmt: skip
    page = render_listing(rows, 120, 50, True, 5000)
    assert "Showing 51–52 of 120 matching articles (5,000 indexed), newest first" in page
    assert "<script>" not in page and "<img" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;Gala" in page and "<td>2024-06-20</td><td>3</td>" in page
    assert "href='javascript:" not in page and "javascript:alert(4)</td>" in page  # a URL is shown, not linked
    assert f"<a href='{article_ref('sub dir/a:b#1.txt')}'>sub dir/a:b#1.txt</a>" in page  # untitled: its id
    assert parse_article_ref(article_ref("sub dir/a:b#1.txt")) == "sub dir/a:b#1.txt"
    assert parse_article_ref("article:in%2Fevil%3Cb%3E.txt") == "in/evil<b>.txt"
    with pytest.raises(AssistantError, match="not an article reference"):
        parse_article_ref("#cite:1:2:x")
    assert render_listing([], 0, 0, True, 5000) == "<p>No article matches the search.</p>"
    assert render_listing([], 0, 0, False, 0) == "<p>No articles are indexed yet.</p>"
    assert "Showing 1–1 of 1 articles, newest first" in render_listing(rows[:1], 1, 0, False, 1)


def test_the_confirm_names_the_article_as_text():
    text = confirm_text({"id": "uploads/x<b>.txt", "title": HOSTILE})
    assert "Remove “&lt;img src=x" in text and "(uploads/x&lt;b&gt;.txt)" in text and "<img" not in text


def _handler(demo, name: str):
    """The chat's event function called `name` (as the browser's queue call would run it)."""
    return next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == name)


def _followed_box(demo):
    return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "archive-followed")


def test_the_followed_table_shows_what_the_assistant_follows(fake_assistant, monkeypatch):
    demo = build_app(fake_assistant)
    assert _followed_box(demo).visible
    listing, offset, table = _handler(demo, "reload")("", "", "", "", 0)
    assert "Showing 1–5 of 5 articles" in listing and offset == 0 and "No followed sources" in table
    monkeypatch.setattr(Assistant, "followed", lambda self: FOLLOWED)
    listing, offset, table = _handler(demo, "reload")("", "", "", "", 0)
    assert "Showing 1–5 of 5 articles" in listing and table == render_followed(FOLLOWED)


def test_the_panels_removal_waits_for_another_writer_and_removes_through_the_write_path(fake_assistant, monkeypatch):
    monkeypatch.setattr("assistant.archive_panel.WAIT_S", 0.3)
    demo = build_app(fake_assistant)
    opened = _handler(demo, "open_entry")(article_ref("004_9ef5f17bb255e9d8.txt"))
    chosen = opened[1]
    assert chosen["id"] == "004_9ef5f17bb255e9d8.txt" and html.escape(chosen["title"]) in opened[0]
    remove = _handler(demo, "remove")
    with another_writer(fake_assistant) as release:
        status = remove(chosen, "", "", "", "", 0)[-1]
        assert status.startswith("<p>Nothing was removed: another writer has held the index in ")
        assert fake_assistant.list_articles()[1] == 5
        threading.Timer(0.1, release.set).start()
        monkeypatch.setattr("assistant.archive_panel.WAIT_S", 30)
        started = time.perf_counter()
        listing, _, entry, left, *_, status = remove(chosen, "", "", "", "", 0)
    assert time.perf_counter() - started >= 0.05  # it waited for the other writer, then removed
    assert status == f"<p>Removed “{html.escape(chosen['title'])}” (004_9ef5f17bb255e9d8.txt).</p>" and left is None
    assert "Showing 1–4 of 4 articles" in listing and entry.startswith("<p class='hint'>")
    fresh = Assistant.load(index_dir=fake_assistant.folder, embedder=HashEmbedder())
    assert "004_9ef5f17bb255e9d8.txt" not in {a["id"] for a in fresh.articles()} and fresh.check(full=True)["ok"]
    assert remove(chosen, "", "", "", "", 0)[-1].endswith("was no longer in the index.</p>")


def test_pages_turn_and_stop_at_either_end(fake_assistant, monkeypatch):
    monkeypatch.setattr("assistant.archive_panel.PAGE", 2)
    demo = build_app(fake_assistant)
    reload, older, newer = (_handler(demo, name) for name in ("reload", "older", "newer"))
    listing, offset, _ = reload("", "", "", "", 0)
    assert "Showing 1–2 of 5 articles" in listing and listing.count("<tr>") == 3 and offset == 0
    shown = []
    for turn in (older, older, older, newer, newer, newer):
        listing, offset = turn("", "", "", "", offset)
        shown.append((listing.split(" articles")[0].removeprefix("<p class='count'>Showing "), offset))
    assert shown == [
        ("3–4 of 5", 2),
        ("5–5 of 5", 4),
        ("5–5 of 5", 4),
        ("3–4 of 5", 2),
        ("1–2 of 5", 0),
        ("1–2 of 5", 0),
    ]
    listing, _, _ = reload("", "", "2024-13", "", 0)
    assert html.unescape(listing) == (
        "<p class='error'>Published from: '2024-13' is not a date; use YYYY-MM-DD (or YYYY-MM, YYYY)</p>"
    )
