"""The chat in a real browser: Debian's chromium driven by Playwright, against a real `assistant serve`."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from .conftest import ROOT, running_server, upload

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
OUTPUT = ROOT / "test-output"
CITE = "#chat a[href^='#cite:']"
EVIL = """Harbour council backs electric ferry <script>window.__pwned = 1</script>

The harbour council of Port Ellery voted on Tuesday to pay for a new electric ferry
<img src=x onerror="window.__pwned = 2">, the mayor said.

Residents can read the plan at <a href="javascript:window.__pwned = 3">the council site</a> before the vote.

<script>alert("pwned")</script> The electric ferry will carry 300 passengers and start sailing in 2027.

"The new ferry is <img src=x onerror="window.__pwned = 6"> quiet and clean," said Mayor Ann Lee.
"""
EVIL_NAME = '<img src=x onerror="window.__pwned=4">keeper.txt'
NAMED = """Lighthouse keeper <svg onload="window.__pwned=5"> retires

The last lighthouse keeper of Port Ellery retired on Friday after 41 years at the lamp.
"""


@pytest.fixture(scope="module")
def page(real_index, tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("no chromium: install the Debian package `chromium` (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    index = tmp_path_factory.mktemp("browser") / "index"
    shutil.copytree(real_index, index)
    OUTPUT.mkdir(exist_ok=True)
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with running_server(index) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.dialogs = []
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.goto(url + "/")
        page.wait_for_selector("#question textarea", timeout=60_000)
        yield page
        browser.close()


def _ask(page, question):
    before = page.locator("#chat .bot").count()
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    # The new reply, once its text has stopped changing for a second: on a busy machine the chat shows a bubble
    # before its answer is in it.
    page.wait_for_function(
        """(before) => {
            const bots = document.querySelectorAll('#chat .bot');
            const text = bots.length > before ? bots[bots.length - 1].innerText.trim() : '';
            if (!text || text !== window.__replyText) {
                window.__replyText = text;
                window.__replySince = Date.now();
                return false;
            }
            return Date.now() - window.__replySince > 1000;
        }""",
        arg=before,
        timeout=60_000,
        polling=200,
    )
    return page.locator("#chat .bot").last


def _shot(page, name):
    path = OUTPUT / f"browser-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_example_question_citation_and_article_view(page, real_assistant):
    page.get_by_text("What did Zelensky say to Russians?").first.click()  # an example, offered on first load
    # The example reaches the box through the server: on a busy machine Enter could otherwise send an empty box.
    page.wait_for_function(
        "document.querySelector('#question textarea').value.includes('Zelensky')", timeout=30_000, polling=100
    )
    page.locator("#question textarea").press("Enter")
    page.wait_for_selector(CITE, timeout=60_000)
    reply = page.locator("#chat .bot").last
    expected = real_assistant.ask("What did Zelensky say to Russians?", k=5)
    links = reply.locator("a[href^='#cite:']")
    assert links.count() >= len(expected.passages)
    assert "[1] " + expected.passages[0].citations[0].title[:40] in links.first.inner_text()
    assert reply.locator("mark").count() >= 1 and "score" in reply.inner_text()
    text = reply.inner_text()
    assert text.startswith("Answer: Volodymyr Zelensky: “You are already complicit"), text[:200]
    assert text.index("Answer:") < text.index("[1] ") < text.index("— Volodymyr Zelensky")  # answer, headline, quote

    quote = next(i for i, h in enumerate(expected.passages) if "You are already" in h.text)
    hit = expected.passages[quote]
    reply.locator(f"a[href^='#cite:{hit.citations[0].char_start}:']").first.click()
    mark = page.locator("#article-view #cited-passage")
    mark.wait_for(timeout=30_000)
    assert mark.inner_text().strip() == hit.text.strip()
    assert page.url.rstrip("/").endswith(page.url.split("/")[2])  # still on the chat page
    body = page.locator("#article-view .article-body").bounding_box()
    box = mark.bounding_box()
    assert body["y"] <= box["y"] < body["y"] + body["height"], "the passage is scrolled into view"
    assert _shot(page, "article-view").stat().st_size > 10_000


def test_follow_up_uses_the_conversation(page):
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_function("document.querySelectorAll('#chat .bot').length === 0", timeout=30_000, polling=200)
    _ask(page, "What did Lavrov say at the UN?")
    reply = _ask(page, "What did he accuse Ukraine of?")
    text = reply.inner_text()
    assert "Understood as: What did Lavrov accuse Ukraine of?" in text
    assert "Russophobia" in text


def test_download_button_gives_the_answers_passages_as_csv(page, real_assistant, tmp_path):
    page.get_by_role("button", name="New conversation").click()
    page.wait_for_function("document.querySelectorAll('#chat .bot').length === 0", timeout=30_000, polling=200)
    button = page.locator("#download-passages")
    assert not button.is_visible()  # no answer yet: nothing to download
    _ask(page, "What did Zelensky say to Russians?")
    button.wait_for(state="visible", timeout=30_000)
    _shot(page, "download-button")
    with page.expect_download(timeout=30_000) as info:
        button.click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name == "passages-What-did-Zelensky-say-to-Russians.csv"
    with open(saved, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    expected = real_assistant.ask("What did Zelensky say to Russians?", k=5).passages
    assert [r["text"] for r in rows] == [h.text for h in expected] and len(rows) == 5
    first, cited = rows[0], expected[0].citations[0]
    assert first["question"] == "What did Zelensky say to Russians?" and first["rank"] == "1"
    assert "You are already complicit" in first["text"] and first["article_id"] == cited.article_id
    assert (first["title"], int(first["char_start"]), int(first["char_end"])) == (
        cited.title,
        cited.char_start,
        cited.char_end,
    )
    page.get_by_role("button", name="New conversation").click()
    button.wait_for(state="hidden", timeout=30_000)


def test_uploaded_hostile_article_is_indexed_and_stays_inert(page, tmp_path):
    evil = tmp_path / "evil-ferry.txt"
    evil.write_text(EVIL, encoding="utf-8")
    page.get_by_text("Add articles").click()
    page.locator("#upload input[type=file]").set_input_files(str(evil))
    page.wait_for_function(
        "document.querySelector('#upload-status')?.innerText.includes('Indexed')", timeout=120_000, polling=500
    )
    assert "evil-ferry.txt" in page.locator("#upload-status").inner_text()
    # The browser's upload cleans file names; the HTTP API (like a folder on disk) keeps them as they are, so the
    # name itself is the attack here: it shows in the citation and the article view.
    report = upload(page.url.split("#")[0].rstrip("/"), [(EVIL_NAME, NAMED.encode())])
    assert report["accepted"] == [EVIL_NAME]

    reply = _ask(page, "How many passengers will the electric ferry carry?")
    assert "300 passengers" in reply.inner_text()
    assert "<script>" in reply.inner_text() or "<img src=x" in reply.inner_text()  # shown as text
    reply.locator("a[href*='evil-ferry.txt']").first.click()
    page.locator("#article-view #cited-passage").wait_for(timeout=30_000)
    view = page.locator("#article-view").inner_text()
    assert "<script>window.__pwned = 1</script>" in view and 'href="javascript:' in view
    _shot(page, "hostile-article")

    reply = _ask(page, "Who said the new ferry is quiet and clean?")
    assert reply.inner_text().startswith("Answer: Ann Lee: “The new ferry is <img src=x")  # the quotation as text
    assert "— Ann Lee" in reply.inner_text()

    reply = _ask(page, "How many years did the lighthouse keeper of Port Ellery work?")
    assert "41 years" in reply.inner_text() and EVIL_NAME in reply.inner_text()  # the name shown as text
    reply.locator("a[href^='#cite:']").first.click()
    page.wait_for_function(
        "document.querySelector('#article-view')?.innerText.includes('lighthouse')", timeout=30_000, polling=200
    )
    assert EVIL_NAME in page.locator("#article-view").inner_text()
    _shot(page, "hostile-file-name")

    assert page.evaluate("window.__pwned") is None and page.dialogs == []
    hostile = (
        "#chat script",
        "#article-view script",
        "img[src='x']",
        "a[href^='javascript:']",
        "[onerror]",
        "svg[onload]",
    )
    for selector in hostile:
        assert page.locator(selector).count() == 0, selector


def test_speaker_filter_lists_that_persons_quotations(page):
    page.get_by_text("Filters").click()
    page.locator("#filter-speaker textarea").fill("Lavrov")
    try:
        reply = _ask(page, "Ukraine")
        quotes = reply.locator("blockquote")
        assert quotes.count() >= 2
        for i in range(quotes.count()):
            assert "Sergei Lavrov:" in quotes.nth(i).inner_text()
        _shot(page, "speaker-filter")
    finally:  # the next tests share the page: a failure here must not leave the filter on
        page.locator("#filter-speaker textarea").fill("")
        page.get_by_text("Filters").click()


def test_a_question_with_dates_shows_its_period_and_draws_the_timeline(page):
    stories = [
        ("one", "2024-03-12", "The Port Ellery harbour council approved an electric ferry for the island route."),
        ("two", "2024-03-20", "The Port Ellery harbour council chose a shipyard for the electric ferry."),
        ("three", "2024-06-20", "The Port Ellery harbour council cancelled the electric ferry for the island route."),
    ]
    lines = [json.dumps({"id": i, "published": d, "title": f"Ferry <b>{i}</b>", "text": t}) for i, d, t in stories]
    assert upload(page.url.rstrip("/"), [("ellery-dated.jsonl", "\n".join(lines).encode())])["accepted"]
    reply = _ask(page, "What did the Port Ellery harbour council decide about the electric ferry in March 2024?")
    text = reply.inner_text()
    assert "Understood as: published 2024-03-01 to 2024-03-31" in text
    assert text.index("Understood as: published") < text.index("[1]")  # above the passages
    chart = reply.locator("pre.timeline")
    assert chart.count() == 1
    rows = chart.inner_text().splitlines()
    assert rows[0].startswith("2024-03-12 █") and rows[0].endswith(" 1") and rows[-1].startswith("2024-03-20 █")
    assert len(rows) == 9 and "2024-06" not in chart.inner_text()  # every day between, nothing outside the period
    assert reply.locator("b").count() == 0  # the titles' markup stays text
    _shot(page, "dates-timeline")


def test_article_filter_restricts_the_answer(page):
    page.get_by_text("Filters").click()
    picker = page.locator("#filter-articles input")
    picker.click()
    picker.fill("evil-ferry")
    page.locator("[data-testid=dropdown-option]", has_text="evil-ferry.txt").first.click()
    page.keyboard.press("Escape")
    reply = _ask(page, "What did Zelensky say to Russians?")
    cited = reply.locator("a[href^='#cite:']")
    hrefs = [cited.nth(i).get_attribute("href") for i in range(cited.count())]
    assert all(h.endswith("evil-ferry.txt") for h in hrefs), hrefs  # only the chosen article, or nothing
    _shot(page, "filtered")
    assert Path(OUTPUT).is_dir()
