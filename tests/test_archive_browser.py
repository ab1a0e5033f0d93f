"""The chat's archive panel in a real browser: Debian's chromium driven by Playwright, against `assistant serve`."""

import json
import shutil

import pytest

from assistant import Assistant

from .conftest import ROOT, running_server, upload

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTPUT = ROOT / "test-output"
HOSTILE = 'Harbour <img src=x onerror="window.__pwned=1"> gala <script>window.__pwned=2</script>'
STORIES = [
    {"id": "gala", "title": HOSTILE, "source": "Ellery <b>Gazette</b>", "published": "2024-06-20",
     "text": 'The harbour gala of Port Ellery drew 4,000 people. <a href="javascript:window.__pwned=3">Photos</a>.'},
    {"id": "keeper", "title": "Lighthouse keeper retires", "source": "Ellery Gazette", "published": "2024-03-12",
     "text": "The last lighthouse keeper of Port Ellery retired after 41 years at the lamp."},
    {"id": "ferry", "title": "Ferry timetable changes", "source": "Island Post", "published": "2023-11-02",
     "text": "The winter ferry timetable for Port Ellery starts on Monday."},
]  # fmt: skip
PANEL = "#archive-list"


@pytest.fixture(scope="module")
def served(real_index, tmp_path_factory):
    """A server over a copy of the seeds index plus three uploaded stories: (URL, index folder)."""
    index = tmp_path_factory.mktemp("archive") / "index"
    shutil.copytree(real_index, index)
    with running_server(index) as url:
        lines = "\n".join(json.dumps(s) for s in STORIES).encode()
        assert upload(url, [("ellery.jsonl", lines)])["accepted"] == ["ellery.jsonl"]
        yield url, index


@pytest.fixture(scope="module")
def page(served):
    if CHROMIUM is None:
        pytest.skip("no chromium: install the Debian package `chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.goto(served[0] + "/")
        page.wait_for_selector("#question textarea", timeout=60_000)
        page.get_by_role("tab", name="Archive").click()
        yield page
        browser.close()


def _until(page, selector: str, text: str, timeout: float = 60_000) -> str:
    """Wait (polling, however loaded the machine) until the element's text holds `text`; its text."""
    script = "([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)"
    try:
        page.wait_for_function(script, arg=[selector, text], timeout=timeout, polling=200)
    except Exception:  # noqa: BLE001 - Playwright's timeout: say what the page showed instead
        _shot(page, "timeout")
        shown = page.locator(selector).inner_text()
        raise AssertionError(f"{selector} never said {text!r}; it says {shown!r}") from None
    return page.locator(selector).inner_text()


def _search(page, title: str = "", source: str = "", expect: str = "") -> str:
    """Fill the panel's title and source fields, press Search, and wait for the list to say `expect`."""
    page.locator("#archive-title textarea").fill(title)
    page.locator("#archive-source textarea").fill(source)
    page.locator("#archive-search").click()
    return _until(page, PANEL, expect)


def _shot(page, name):
    path = OUTPUT / f"archive-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _inert(page) -> None:
    assert page.evaluate("window.__pwned") is None and page.dialogs == []
    for selector in ("img[src='x']", "a[href^='javascript:']", "[onerror]", "#archive-list script", "#archive-list b"):
        assert page.locator(selector).count() == 0, selector


def test_the_archive_lists_articles_newest_first_and_hostile_titles_stay_text(page):
    text = _until(page, PANEL, "of 8 articles")  # the 5 seeds and the 3 stories
    assert "Showing 1–8 of 8 articles, newest first" in text
    titles = page.locator(f"{PANEL} tbody tr td:first-child").all_inner_texts()
    assert titles[:3] == [HOSTILE, "Lighthouse keeper retires", "Ferry timetable changes"]  # by date; seeds undated
    assert "Ellery <b>Gazette</b>" in text and "2024-06-20" in text
    rows = page.locator(f"{PANEL} tbody tr")
    assert rows.count() == 8 and all(int(c) >= 1 for c in page.locator(f"{PANEL} td:nth-child(4)").all_inner_texts())
    _inert(page)
    _shot(page, "list")


def test_search_by_title_and_source(page):
    text = _search(page, title="LIGHTHOUSE keeper", expect="of 1 matching articles (8 indexed)")
    assert page.locator(f"{PANEL} tbody tr").count() == 1 and "Lighthouse keeper retires" in text
    text = _search(page, source="GAZETTE", expect="of 2 matching")
    assert "Lighthouse keeper retires" in text and HOSTILE in text
    _search(page, title="zzzzq", expect="No article matches the search.")
    page.locator("#archive-since textarea").fill("2024-13")
    _search(page, expect="Published from: '2024-13' is not a date")
    page.locator("#archive-since textarea").fill("")
    _search(page, expect="of 8 articles")


def test_open_a_hostile_article_as_text(page):
    _search(page, source="gazette", expect="of 2 matching")
    page.locator(f"{PANEL} a[href='#article:uploads%2Fellery.jsonl%23gala']").click()
    view = _until(page, "#archive-view", "4,000 people")
    assert HOSTILE in view and 'href="javascript:window.__pwned=3"' in view  # markup shown as characters
    assert page.locator("#archive-remove").is_visible()
    _inert(page)
    _shot(page, "open-hostile")


def test_remove_asks_first_cancel_keeps_and_yes_removes(page, served):
    _search(page, title="lighthouse", expect="of 1 matching")
    page.locator(f"{PANEL} a", has_text="Lighthouse keeper retires").click()
    _until(page, "#archive-view", "41 years at the lamp")
    page.locator("#archive-remove").click()
    question = _until(page, "#archive-question", "Remove “Lighthouse keeper retires”")
    assert "uploads/ellery.jsonl#keeper" in question and "cannot be undone" in question
    _shot(page, "confirm")
    page.locator("#archive-cancel").click()
    _until(page, "#archive-status", "Kept “Lighthouse keeper retires”.")
    page.locator("#archive-confirm").wait_for(state="hidden", timeout=30_000)
    assert _search(page, title="lighthouse", expect="of 1 matching")  # still there
    assert Assistant.load(index_dir=served[1]).list_articles(title="lighthouse")[1] == 1

    page.locator("#archive-remove").click()
    _until(page, "#archive-question", "Remove “Lighthouse keeper retires”")
    page.locator("#archive-yes").click()
    _until(page, "#archive-status", "Removed “Lighthouse keeper retires” (uploads/ellery.jsonl#keeper).")
    _until(page, PANEL, "No article matches the search.")
    assert not page.locator("#archive-remove").is_visible()
    _shot(page, "removed")
    after = Assistant.load(index_dir=served[1])
    assert after.list_articles(title="lighthouse")[1] == 0 and after.list_articles()[1] == 7
    cited = {c.article_id for h in after.search("lighthouse keeper 41 years at the lamp", k=5) for c in h.citations}
    assert "uploads/ellery.jsonl#keeper" not in cited
    _search(page, expect="of 7 articles")
