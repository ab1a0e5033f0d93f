"""Following feeds, pages, sitemaps and folders against a real HTTP server on loopback (fake embedder; both
engines where the index is written)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.follow.poller import Follower
from assistant.follow.state import FollowState

from .conftest import cli, engine_settings, running_server
from .fakes import HashEmbedder
from .webfixtures import Route, article_page, atom, huge, rss, serving, sitemap, trickle

FERRY = (
    "The island ferry crews walked out on Monday morning after talks over pay broke down late on Sunday night.\n\n"
    "Passengers queued at the harbour for hours before the operator cancelled every crossing until Wednesday.\n\n"
    "The union said its members would return when the company restored the overtime rates it cut in March."
)
BRIDGE = (
    "Councillors voted to study a fixed bridge to the island, saying the ferry strike showed how fragile the link "
    "had become.\n\nThe study will cost two million pounds and report within a year, the council leader said.\n\n"
    "Opponents said a bridge would spoil the bay and bring lorries through the old town."
)
LIGHTHOUSE = (
    "The old lighthouse on the northern point will open to visitors again in June after three years of repairs.\n\n"
    "Volunteers repainted the tower and restored the brass lamp, which was made in Birmingham in 1871.\n\n"
    "Tickets will be sold at the harbour office, and children under twelve will go up for free."
)
MUSEUM = (
    "The harbour museum reopens on Saturday with a new gallery about the fishing fleet and its families.\n\n"
    "Curators spent two winters gathering photographs, nets and logbooks from the villages along the coast.\n\n"
    "Entry is free for residents of the island, and guided tours run twice a day through the summer."
)


def _assistant(backend: tuple[str, str], folder: Path, **follow: object) -> Assistant:
    name, url = backend
    s = engine_settings(name, folder, url, min_score=0.05)
    s = s.replace("follow", **{"per_host_delay": 0.0, "timeout": 5.0, **follow})
    return Assistant(s, embedder=HashEmbedder())


def _poll(a: Assistant, targets: list[str]) -> dict[str, object]:
    follower = Follower(a)
    try:
        return {r.target: r for r in follower.poll(targets, once=True)}
    finally:
        follower.close()


def _news_site(site) -> None:
    site.page("/ferry", article_page("Ferry crews strike", FERRY, "2026-03-02", "Harbour Gazette"))
    site.page("/bridge", article_page("Bridge study approved", BRIDGE, "2026-03-04"))
    site.page("/lighthouse", article_page("Lighthouse reopens", LIGHTHOUSE, "2026-03-05"))
    site.page("/museum", article_page("Museum reopens", MUSEUM))
    items = [
        {"title": "Ferry crews strike over pay", "link": f"{site.url}/ferry", "date": "Mon, 02 Mar 2026 08:00:00 GMT"},
        {"title": "Bridge study approved", "link": f"{site.url}/bridge", "date": "Wed, 04 Mar 2026 10:00:00 +0000"},
    ]
    site.page("/rss.xml", rss("Harbour Gazette", items), "application/rss+xml")
    entries = [{"title": "Lighthouse to reopen", "link": f"{site.url}/lighthouse", "date": "2026-03-05T09:00:00Z"}]
    site.page("/atom.xml", atom("Coast Weekly", entries), "application/atom+xml")
    site.page("/sitemap.xml", sitemap([(f"{site.url}/museum", "2026-03-06")]), "application/xml")


def test_a_feed_an_atom_feed_a_sitemap_and_a_page_are_indexed_with_their_metadata(backend, tmp_path):
    a = _assistant(backend, tmp_path / "index")
    with serving() as site:
        _news_site(site)
        site.page("/page", article_page("Harbour page", MUSEUM.replace("museum", "aquarium"), "2026-03-07"))
        targets = [f"{site.url}/rss.xml", f"{site.url}/atom.xml", f"{site.url}/sitemap.xml", f"{site.url}/page"]
        reports = _poll(a, targets)
        ua = site.hits("/ferry")[0]["User-Agent"]
    assert ua.startswith("news-assistant/0.1.0 (+")
    rss_report = reports[targets[0]]
    assert (rss_report.kind, rss_report.added, rss_report.error) == ("rss", 2, "")
    assert "added 2 (Ferry crews strike over pay; Bridge study approved)" in rss_report.line()
    assert [r.kind for r in reports.values()] == ["rss", "atom", "sitemap", "page"]
    ferry = a.article(f"{site.url}/ferry")
    assert ferry["title"] == "Ferry crews strike over pay"  # the feed's title
    assert ferry["source"] == "Harbour Gazette" and ferry["url"] == f"{site.url}/ferry"
    assert ferry["published"] == "2026-03-02"
    assert "Passengers queued at the harbour" in a.article_text(ferry["id"])
    assert "Copyright" not in a.article_text(ferry["id"])  # the main text, not the page furniture
    light = a.article(f"{site.url}/lighthouse")
    assert (light["source"], light["published"]) == ("Coast Weekly", "2026-03-05")
    museum = a.article(f"{site.url}/museum")
    assert museum["source"] == "127.0.0.1" and museum["title"] == "Museum reopens"  # from the page and its host
    hits = a.search("When does the lighthouse open to visitors?", k=3)
    assert hits[0].citations[0].url == f"{site.url}/lighthouse"
    followed = {f["target"]: f for f in a.followed()}
    assert set(followed) == set(targets)
    rss_state = followed[targets[0]]
    assert set(rss_state) == {"target", "kind", "last_poll", "added", "updated", "last_error", "next_poll"}
    assert (rss_state["kind"], rss_state["added"], rss_state["updated"], rss_state["last_error"]) == ("rss", 2, 0, "")
    assert rss_state["last_poll"].endswith("Z") and rss_state["next_poll"] == ""


def test_bad_targets_are_one_line_each_and_none_stops_the_others(tmp_path):
    a = _assistant(("embedded", ""), tmp_path / "index", timeout=2.0, max_page_mb=1.0)
    with serving() as site:
        _news_site(site)
        site.page("/broken.xml", b"<?xml version='1.0'?><rss><channel><title>Oops</title><item>", "application/xml")
        site.routes["/gone"] = Route(b"gone", 404)
        site.routes["/fails"] = Route(b"oops", 500)
        site.routes["/loop-a"] = Route(status=302, headers={"Location": "/loop-b"})
        site.routes["/loop-b"] = Route(status=302, headers={"Location": "/loop-a"})
        site.routes["/to-file"] = Route(status=302, headers={"Location": "file:///etc/passwd"})
        site.routes["/slow"] = Route(stream=trickle)
        site.routes["/huge"] = Route(stream=huge)
        bad = ["/broken.xml", "/gone", "/fails", "/loop-a", "/to-file", "/slow", "/huge"]
        targets = [f"{site.url}{p}" for p in bad] + [
            "file:///etc/passwd",
            str(tmp_path / "nowhere"),
            f"{site.url}/rss.xml",
        ]
        started = time.monotonic()
        reports = _poll(a, targets)
        took = time.monotonic() - started
    lines = {t: r.line() for t, r in reports.items()}
    for t in targets[:-1]:
        assert reports[t].error and "\n" not in lines[t], lines[t]
    u = site.url
    assert "broken XML" in lines[f"{u}/broken.xml"]
    assert "HTTP 404" in lines[f"{u}/gone"] and "HTTP 500" in lines[f"{u}/fails"]
    assert "redirect loop" in lines[f"{u}/loop-a"]
    assert "only http and https" in lines[f"{u}/to-file"] and "only http and https" in lines["file:///etc/passwd"]
    assert "not finished after 2 s" in lines[f"{u}/slow"] or "no answer within 2 s" in lines[f"{u}/slow"]
    assert "over the 1 MB limit" in lines[f"{u}/huge"]
    assert "no such folder" in lines[str(tmp_path / "nowhere")]
    assert reports[f"{u}/rss.xml"].added == 2 and not reports[f"{u}/rss.xml"].error
    assert took < 15, took  # the page that never finishes was cut off by wall time
    errors = {f["target"]: f["last_error"] for f in a.followed()}
    assert "HTTP 500" in errors[f"{u}/fails"] and errors[f"{u}/rss.xml"] == ""


def test_an_entry_without_a_date_a_feed_in_windows_1251_and_a_broken_entry_are_each_one_line(tmp_path):
    a = _assistant(("embedded", ""), tmp_path / "index")
    russian = "Паром на остров снова ходит по расписанию после забастовки экипажей. " * 8
    with serving() as site:
        site.page("/ru", article_page("Паромы", russian), "text/html; charset=windows-1251")
        site.routes["/ru"].body = article_page("Паромы", russian).encode("cp1251")
        site.page("/museum", article_page("Museum reopens", MUSEUM))
        items = [
            {"title": "Паромы снова ходят", "link": f"{site.url}/ru", "date": "Tue, 03 Mar 2026 07:00:00 +0300"},
            {"title": "Museum reopens", "link": f"{site.url}/museum"},  # no date, in the feed or on the page
            {"title": "Gone story", "link": f"{site.url}/missing", "date": "Tue, 03 Mar 2026 07:00:00 +0300"},
        ]
        site.page("/ru.xml", rss("Новости острова", items, "windows-1251"), "text/xml")
        report = _poll(a, [f"{site.url}/ru.xml"])[f"{site.url}/ru.xml"]
    assert report.added == 2 and not report.error
    ru = a.article(f"{site.url}/ru")
    assert (ru["title"], ru["source"], ru["published"]) == ("Паромы снова ходят", "Новости острова", "2026-03-03")
    assert "Паром на остров снова ходит" in a.article_text(ru["id"])
    assert a.article(f"{site.url}/museum")["published"] == ""
    notes = "\n".join(report.notes)
    assert f"{site.url}/museum: no date in the feed or on the page; published left empty" in notes
    assert f"{site.url}/missing: HTTP 404" in notes


def test_the_same_story_in_two_feeds_and_the_same_text_at_two_urls_are_indexed_once(backend, tmp_path):
    a = _assistant(backend, tmp_path / "index")
    with serving() as site:
        _news_site(site)
        site.page("/ferry-copy", article_page("Ferry crews strike (wire copy)", FERRY, "2026-03-02"))
        copy = [
            {"title": "Ferry strike", "link": f"{site.url}/ferry", "date": "Mon, 02 Mar 2026 09:00:00 GMT"},
            {"title": "Wire: ferry strike", "link": f"{site.url}/ferry-copy", "date": "Mon, 02 Mar 2026 09:00:00 GMT"},
        ]
        site.page("/wire.xml", rss("Wire", copy), "application/rss+xml")
        reports = _poll(a, [f"{site.url}/rss.xml", f"{site.url}/wire.xml"])
        ferry_fetches = len(site.hits("/ferry"))
    wire = reports[f"{site.url}/wire.xml"]
    assert wire.added == 0 and wire.unchanged == 1
    assert any(f"{site.url}/ferry: also in {site.url}/rss.xml; read once" in n for n in wire.notes)
    assert any(f"{site.url}/ferry-copy: the same text as {site.url}/ferry; not indexed twice" in n for n in wire.notes)
    assert ferry_fetches == 1
    ids = {x["id"] for x in a.articles()}
    assert ids == {f"{site.url}/ferry", f"{site.url}/bridge"}


def test_an_updated_story_replaces_its_earlier_version_and_says_so(backend, tmp_path):
    a = _assistant(backend, tmp_path / "index")
    with serving() as site:
        _news_site(site)
        feed = f"{site.url}/rss.xml"
        _poll(a, [feed])
        changed = FERRY.replace("until Wednesday", "until Friday at the earliest")
        site.page("/ferry", article_page("Ferry crews strike", changed, "2026-03-02"))
        items = [
            {"title": "Ferry strike goes on", "link": f"{site.url}/ferry", "date": "Tue, 03 Mar 2026 08:00:00 GMT"},
            {"title": "Bridge study approved", "link": f"{site.url}/bridge", "date": "Wed, 04 Mar 2026 10:00:00 +0000"},
        ]
        site.page("/rss.xml", rss("Harbour Gazette", items), "application/rss+xml")
        report = _poll(a, [feed])[feed]
        bridge_fetches = len(site.hits("/bridge"))
    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    assert "updated 1 (Ferry strike goes on)" in report.line()
    assert bridge_fetches == 1  # its entry did not change: its page was not fetched again
    text = a.article_text(f"{site.url}/ferry")
    assert "until Friday at the earliest" in text and "until Wednesday" not in text
    assert len(a.articles()) == 2
    assert a.article(f"{site.url}/ferry")["published"] == "2026-03-03"


def test_a_page_that_has_not_changed_is_asked_conditionally_and_not_written_again(backend, tmp_path):
    a = _assistant(backend, tmp_path / "index")
    with serving() as site:
        site.page("/page", article_page("Museum reopens", MUSEUM, "2026-03-06"), ETag='"v1"',
                  Last_Modified="Fri, 06 Mar 2026 10:00:00 GMT")  # fmt: skip
        target = f"{site.url}/page"
        first = _poll(a, [target])[target]
        generation = a.view.generation
        second = _poll(a, [target])[target]
        asked = site.hits("/page")
    assert first.added == 1 and second.added == 0 and not second.error
    assert "not modified since the last poll" in "\n".join(second.notes)
    assert "If-None-Match" not in asked[0]
    assert asked[1]["If-None-Match"] == '"v1"' and asked[1]["If-Modified-Since"] == "Fri, 06 Mar 2026 10:00:00 GMT"
    assert a.view.generation == generation  # nothing written


def test_robots_txt_is_honoured_and_read_once_per_host(tmp_path):
    a = _assistant(("embedded", ""), tmp_path / "index")
    with serving() as site:
        site.page("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
        site.page("/private/story", article_page("Secret", MUSEUM))
        site.page("/public", article_page("Museum reopens", MUSEUM))
        reports = _poll(a, [f"{site.url}/private/story", f"{site.url}/public"])
        robots_reads, private_reads = len(site.hits("/robots.txt")), len(site.hits("/private/story"))
    line = reports[f"{site.url}/private/story"].line()
    assert "robots.txt of" in line and "does not allow news-assistant" in line
    assert private_reads == 0 and robots_reads == 1
    assert reports[f"{site.url}/public"].added == 1


def test_requests_to_one_host_keep_the_per_host_delay(tmp_path):
    a = _assistant(("embedded", ""), tmp_path / "index", per_host_delay=0.4)
    with serving() as site:
        _news_site(site)
        _poll(a, [f"{site.url}/rss.xml"])
        times = sorted(t for t, _, _ in site.requests)
    assert len(times) == 4  # robots.txt, the feed, two pages
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.35, gaps


def test_hostile_titles_reach_the_index_as_text(backend, tmp_path):
    a = _assistant(backend, tmp_path / "index")
    title = "<script>alert(1)</script><img src=x onerror=alert(2)> Harbour news"
    with serving() as site:
        site.page("/story", article_page("Museum reopens", MUSEUM))
        site.page("/feed.xml", rss("<b>Feed</b>", [{"title": title, "link": f"{site.url}/story"}]), "text/xml")
        _poll(a, [f"{site.url}/feed.xml"])
    meta = a.article(f"{site.url}/story")
    assert meta["title"] == title and meta["source"] == "<b>Feed</b>"


def test_a_followed_folder_indexes_new_and_changed_files_and_keeps_removed_ones(backend, tmp_path):
    a = _assistant(backend, tmp_path / "index")
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "ferry.txt").write_text("Ferry crews strike\n\n" + FERRY)
    first = _poll(a, [str(folder)])[str(folder)]
    (folder / "ferry.txt").write_text("Ferry crews strike\n\n" + FERRY + "\n\nTalks resume on Thursday.")
    (folder / "bridge.txt").write_text("Bridge study approved\n\n" + BRIDGE)
    second = _poll(a, [str(folder)])[str(folder)]
    (folder / "bridge.txt").unlink()
    third = _poll(a, [str(folder)])[str(folder)]
    assert (first.kind, first.added) == ("folder", 1)
    assert (second.added, second.updated) == (1, 1)
    assert (third.added, third.updated, third.unchanged) == (0, 0, 1)
    assert {x["id"] for x in a.articles()} == {"ferry.txt", "bridge.txt"}  # as `assistant index` without --prune


def test_a_poll_whose_write_fails_keeps_nothing_and_the_next_poll_indexes_it_all(tmp_path, monkeypatch):
    from assistant.types import AssistantError

    a = _assistant(("embedded", ""), tmp_path / "index")
    with serving() as site:
        _news_site(site)
        site.page("/rss.xml", site.routes["/rss.xml"].body, "application/rss+xml", ETag='"feed-1"')
        feed = f"{site.url}/rss.xml"

        def full_disk(*args, **kwargs):
            raise AssistantError("could not write to the index (No space left on device)")

        with monkeypatch.context() as m:
            m.setattr(a, "add", full_disk)
            failed = _poll(a, [feed])[feed]
        again = _poll(a, [feed])[feed]
        conditional = [h.get("If-None-Match") for h in site.hits("/rss.xml")]
    assert "could not write to the index" in failed.error and "No space left" in failed.error
    assert conditional == [None, None]  # the feed's ETag was not kept from the poll that indexed nothing
    assert (again.added, again.error) == (2, "")
    assert {x["id"] for x in a.articles()} == {f"{site.url}/ferry", f"{site.url}/bridge"}


def test_state_survives_a_new_follower_and_a_failed_poll_keeps_nothing(tmp_path):
    a = _assistant(("embedded", ""), tmp_path / "index")
    with serving() as site:
        _news_site(site)
        feed = f"{site.url}/rss.xml"
        _poll(a, [feed])
        state = FollowState(a.folder)
        try:
            known = state.url(f"{site.url}/ferry")
        finally:
            state.close()
        assert known is not None and known.article_id == f"{site.url}/ferry" and known.text_hash
        site.routes["/rss.xml"] = Route(b"down", 500)
        report = _poll(a, [feed])[feed]
    assert "HTTP 500" in report.error
    follow_db = a.folder / "follow.sqlite"
    assert follow_db.exists() and not (a.folder / "staging.sqlite").exists()
    assert [f["last_error"] for f in a.followed()] == [report.error]


@pytest.mark.parametrize("value", ["0s", "soon", "-5m"])
def test_a_bad_poll_interval_is_one_line(tmp_path, value):
    from assistant.config import load_settings
    from assistant.types import AssistantError

    with pytest.raises(AssistantError, match="follow.every"):
        load_settings(None, {"ASSISTANT_FOLLOW_EVERY": value})


@pytest.mark.integration
def test_follow_once_from_the_command_line_reports_each_target_and_exits_3_when_one_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSISTANT_FOLLOW_PER_HOST_DELAY", "0")
    with serving() as site:
        _news_site(site)
        site.routes["/fails"] = Route(b"oops", 500)
        done = cli("follow", "--index-dir", tmp_path / "index", "--once", f"{site.url}/rss.xml", f"{site.url}/fails")
        again = cli("follow", "--index-dir", tmp_path / "index", "--once", f"{site.url}/rss.xml")
    assert done.returncode == 3, done.stderr
    lines = done.stdout.splitlines()
    added = "added 2 (Ferry crews strike over pay; Bridge study approved), 0 unchanged"
    assert lines[0] == f"{site.url}/rss.xml (rss): {added}"
    assert lines[1] == f"{site.url}/fails: error: {site.url}/fails: HTTP 500 Internal Server Error"
    assert again.returncode == 0 and again.stdout.splitlines() == [f"{site.url}/rss.xml (rss): added 0, 2 unchanged"]
    help_text = cli("follow", "--help").stdout
    assert "--every" in help_text and "--once" in help_text and "robots.txt" in help_text


@pytest.mark.integration
def test_a_served_index_answers_a_story_published_after_the_server_started_within_one_poll(
    real_index, tmp_path, monkeypatch
):
    index = tmp_path / "index"
    shutil.copytree(real_index, index)
    monkeypatch.setenv("ASSISTANT_FOLLOW_PER_HOST_DELAY", "0")
    every = 3.0
    with serving() as site:
        _news_site(site)
        with running_server(index, "--follow", f"{site.url}/rss.xml", "--every", f"{every:g}s") as url:
            question = "When will the old lighthouse open to visitors again?"
            assert not _cites(url, question, f"{site.url}/lighthouse")
            items = [
                {"title": "Lighthouse reopens", "link": f"{site.url}/lighthouse", "date": "Thu, 05 Mar 2026 09:00 GMT"},
                {"title": "Ferry crews strike", "link": f"{site.url}/ferry", "date": "Mon, 02 Mar 2026 08:00 GMT"},
            ]
            site.page("/rss.xml", rss("Harbour Gazette", items), "application/rss+xml")
            published = time.monotonic()
            while not _cites(url, question, f"{site.url}/lighthouse"):
                assert time.monotonic() - published < every + 20, "not answered within one poll interval"
                time.sleep(0.25)
            took = time.monotonic() - published
    print(f"answered {took:.1f} s after the story was published (poll interval {every:g} s)")
    assert took < every + 20


def _cites(url: str, question: str, article_url: str) -> bool:
    """Whether the served answer to a question cites the article at this URL."""
    req = urllib.request.Request(
        url + "/api/search", data=json.dumps({"question": question, "k": 3}).encode(),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(req, timeout=60) as r:
        answer = json.loads(r.read())
    return any(c["url"] == article_url for p in answer["passages"] for c in p["citations"])


def test_addresses_inside_this_machine_or_its_network_are_known():
    from assistant.follow.fetch import inside

    for url in ("http://127.0.0.1:8080/", "http://localhost/", "http://10.1.2.3/", "http://[::1]/x",
                "http://169.254.169.254/latest/meta-data/", "http://192.168.0.9/", "http://0.0.0.0/"):  # fmt: skip
        assert inside(url), url
    assert not inside("http://93.184.216.34/feed.xml") and not inside("https://8.8.8.8/")


def test_a_feed_on_the_internet_cannot_lead_the_follower_into_this_network(tmp_path, monkeypatch):
    from urllib.parse import urlsplit

    import assistant.follow.fetch as fetch
    import assistant.follow.sources as sources

    real = fetch.inside
    public = lambda url: urlsplit(url).hostname != "127.0.0.1" and real(url)  # noqa: E731 - 127.0.0.1 plays the internet
    monkeypatch.setattr(fetch, "inside", public)
    monkeypatch.setattr(sources, "inside", public)
    a = _assistant(("embedded", ""), tmp_path / "index")
    with serving() as site:
        inner = site.url.replace("127.0.0.1", "localhost")  # the same server, by a name inside this machine
        site.page("/ferry", article_page("Ferry crews strike", FERRY, "2026-03-02"))
        site.routes["/bounce"] = Route(status=302, headers={"Location": f"{inner}/ferry"})
        day = "Mon, 02 Mar 2026 08:00:00 GMT"
        items = [{"title": "Ferry", "link": f"{inner}/ferry", "date": day},
                 {"title": "Bounce", "link": f"{site.url}/bounce", "date": day}]  # fmt: skip
        site.page("/rss.xml", rss("Harbour Gazette", items), "application/rss+xml")
        report = _poll(a, [f"{site.url}/rss.xml"])[f"{site.url}/rss.xml"]
        reads = sorted(path for _, path, _ in site.requests)
    assert report.added == 0 and reads == ["/bounce", "/robots.txt", "/rss.xml"]  # nothing asked of "localhost"
    why = "refused: a followed site on the internet may not lead into this network"
    refused = [n for n in report.notes if why in n]
    assert len(refused) == 2, report.notes


def _bomb(encoding: str, size: int = 1_000_000_000) -> bytes:
    """`size` bytes of zeros compressed as `encoding` (built in 1 MB steps: the zeros are never held whole)."""
    import gzip
    import io

    zeros = b"\0" * 1_000_000
    if encoding == "gzip":
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as z:
            for _ in range(size // len(zeros)):
                z.write(zeros)
        return out.getvalue()
    if encoding == "br":
        brotli = pytest.importorskip("brotli")
        c = brotli.Compressor(quality=1)
        return b"".join(c.process(zeros) for _ in range(size // len(zeros))) + c.finish()
    zstandard = pytest.importorskip("zstandard")
    c = zstandard.ZstdCompressor(level=1).compressobj()
    return b"".join(c.compress(zeros) for _ in range(size // len(zeros))) + c.flush()


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_a_compressed_bomb_is_cut_off_at_the_page_limit_without_being_expanded(tmp_path, encoding):
    import tracemalloc

    bomb = _bomb(encoding)  # 1 GB of zeros in 1 MB (gzip), 0.2 MB (br) or 32 KB (zstd)
    a = _assistant(("embedded", ""), tmp_path / "index", max_page_mb=1.0)
    with serving() as site:
        _news_site(site)
        site.routes["/bomb"] = Route(bomb, headers={"Content-Type": "text/html", "Content-Encoding": encoding})
        assert _poll(a, [f"{site.url}/rss.xml"])[f"{site.url}/rss.xml"].added == 2  # the parsers' first use
        targets = [f"{site.url}/bomb", f"{site.url}/atom.xml"]
        tracemalloc.start()
        try:
            reports = _poll(a, targets)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    line = reports[targets[0]].line()
    print(f"\n{encoding} bomb of {len(bomb):,} bytes: {line} (peak {peak / 1e6:.0f} MB)")
    assert "\n" not in line
    if encoding == "gzip":  # asked for (Accept-Encoding: gzip, x-gzip, deflate), read up to the limit
        assert "over the 1 MB limit (follow.max_page_mb)" in line
    else:  # not asked for: refused before a byte is decoded
        assert f"sent in the content encoding '{encoding}', which was not asked for (gzip, x-gzip, deflate)" in line
    assert reports[targets[1]].added == 1  # the good feed beside it is indexed
    assert peak < 20e6, peak  # before: 150 MB (gzip: each 64 KB read expanded whole), 690 MB (br), 2 GB (zstd)


def test_a_feed_with_html_entities_and_comments_in_its_items_is_read(tmp_path):
    rss091 = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS '
        '0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss version="0.91"><channel>'
        "<title>Caf&eacute; Gazette</title><link>http://example.org/</link>"
        "<item><!-- generated --><title>Ferry crews strike&nbsp;again</title><link>{u}/ferry</link>"
        "<description>Crews at the caf&eacute; pier walked out. &unknown;Talks resume.</description></item>"
        "<item><title>Bridge study</title><link>{u}/bridge</link><?tracker x?></item></channel></rss>"
    )
    a = _assistant(("embedded", ""), tmp_path / "index")
    with serving() as site:
        _news_site(site)
        site.page("/old.xml", rss091.format(u=site.url).encode("latin-1"), "application/rss+xml")
        report = _poll(a, [f"{site.url}/old.xml"])[f"{site.url}/old.xml"]
    assert not report.error and report.added == 2, report.lines()  # before: the whole feed failed (ValueError)
    ferry = a.article(f"{site.url}/ferry")
    assert (ferry["title"], ferry["source"]) == ("Ferry crews strike again", "Café Gazette")


def test_redirects_to_data_urls_and_impossible_ports_are_one_line_saying_so(tmp_path):
    a = _assistant(("embedded", ""), tmp_path / "index")
    with serving() as site:
        _news_site(site)
        site.routes["/to-data"] = Route(status=302, headers={"Location": "data:text/html,<p>planted story</p>"})
        site.routes["/to-port"] = Route(status=301, headers={"Location": "http://127.0.0.1:99999/feed"})
        targets = [
            f"{site.url}/to-data",
            f"{site.url}/to-port",
            "http://127.0.0.1:70000/rss.xml",
            f"{site.url}/rss.xml",
        ]
        reports = _poll(a, targets)
    lines = [reports[t].line() for t in targets]
    # before: "could not be read (InvalidURL: For absolute URLs, path must be empty or begin with '/')", "could not
    # be read (ValueError: Port out of range 0-65535)"
    assert f"{site.url}/to-data: redirects to a URL that cannot be fetched (" in lines[0]
    assert lines[0].endswith("; only http and https URLs are followed)")
    assert "http://127.0.0.1:99999/feed: not a URL that can be fetched (Port out of range 0-65535)" in lines[1]
    assert "http://127.0.0.1:70000/rss.xml: not a URL that can be fetched (Port out of range 0-65535)" in lines[2]
    assert reports[targets[3]].added == 2 and not [x for x in lines if "could not be read" in x], lines


def test_entries_that_keep_failing_do_not_hold_back_the_rest_and_a_feed_left_unfinished_is_read_again(
    tmp_path, monkeypatch
):
    """Three pages a poll: the first three entries always fail (404), yet the four after them are indexed over
    the next polls; and the feed, whose entries were not all read, is fetched whole again, not answered 304."""
    monkeypatch.setattr("assistant.follow.sources.MAX_PAGES", 3)
    a = _assistant(("embedded", ""), tmp_path / "index")
    stories = {"ferry": FERRY, "bridge": BRIDGE, "lighthouse": LIGHTHOUSE, "museum": MUSEUM}
    with serving() as site:
        for name, text in stories.items():
            site.page(f"/{name}", article_page(name.title(), text, "2026-03-02"))
        links = [f"{site.url}/gone-{i}" for i in range(3)] + [f"{site.url}/{name}" for name in stories]
        items = [{"title": f"Story {i}", "link": link, "date": "Mon, 02 Mar 2026 08:00:00 GMT"}
                 for i, link in enumerate(links)]  # fmt: skip
        site.page("/rss.xml", rss("Harbour Gazette", items), "application/rss+xml", ETag='"feed-1"')
        target = f"{site.url}/rss.xml"
        polls = [_poll(a, [target])[target] for _ in range(3)]
        feed_asked = site.hits("/rss.xml")
    assert [p.added for p in polls] == [0, 3, 1]
    assert "4 more new entries are left for the next poll" in "\n".join(polls[0].notes)
    assert {x["id"] for x in a.articles()} == set(links[3:])
    assert all("If-None-Match" not in h for h in feed_asked[:3])  # unfinished: read whole each time
    failures = FollowState(a.folder).failures(links)
    assert set(failures) == set(links[:3]) and all(n >= 1 for _, n in failures.values())


def test_stories_another_writer_indexed_meanwhile_are_reported_unchanged_not_added(tmp_path):
    """Two followers of one feed at once: the second to write finds the stories there and says so (the counts come
    from its write, not from the index as read before it)."""
    a = _assistant(("embedded", ""), tmp_path / "index")
    other = _assistant(("embedded", ""), tmp_path / "index")
    with serving() as site:
        _news_site(site)
        target = f"{site.url}/rss.xml"
        write = a.add

        def after_the_other(*args, **kwargs):
            _poll(other, [target])  # the other process writes the same stories between this one's read and write
            return write(*args, **kwargs)

        a.add = after_the_other
        report = _poll(a, [target])[target]
    assert (report.added, report.updated, report.unchanged) == (0, 0, 2) and not report.error
    assert {x["id"] for x in a.articles()} == {f"{site.url}/ferry", f"{site.url}/bridge"}
