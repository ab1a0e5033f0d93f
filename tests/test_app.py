import dataclasses
from pathlib import Path

import pytest

from assistant.app import render_html
from assistant.types import Answer, AssistantError, Citation, Hit


def test_article_text_is_rendered_inert_with_the_sentence_marked():
    text = "Intro <script>alert(1)</script> text. <img src=x onerror=alert(2)> Best sentence here."
    s = text.index("Best")
    cit = Citation("evil<b>.txt", "Title <i>x</i>", "", "in/evil<b>.txt", 0, len(text))
    html = render_html(Answer("q", True, (Hit(1, text, 0.5, (cit,), (s, len(text))),)))
    assert "<script>" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;" in html and "<mark>Best sentence here.</mark>" in html


def test_nothing_found_is_plain():
    html = render_html(Answer("q", False, (), "Nothing in the indexed articles answers this question."))
    assert "Nothing in the indexed articles" in html and "passage" not in html


def test_citation_links_round_trip_and_bad_ones_are_named():
    from assistant.app import cite_ref, parse_cite_ref

    c = Citation("sub dir/a:b#1.txt", "T", "", "", 10, 42)
    assert parse_cite_ref(cite_ref(c)) == ("sub dir/a:b#1.txt", 10, 42)
    with pytest.raises(AssistantError, match="not a citation"):
        parse_cite_ref("#cite:x")


def test_where_in_counts_paragraphs():
    from assistant.app import where_in

    text = "One.\n\nTwo.\n\nThree."
    assert where_in(text, 0, 4) == "paragraph 1 of 3"
    assert where_in(text, text.index("Two"), len(text)) == "paragraphs 2-3 of 3"


def test_article_view_is_escaped_with_the_passage_marked():
    from assistant.app import render_article

    text = "<b>x</b> before. The <script>bad()</script> passage. after"
    s = text.index("The")
    e = text.index(" after")
    out = render_article("<i>T</i>", ["src", "", "a.txt"], text, s, e)
    assert "<script>" not in out and "<b>" not in out and "<i>" not in out
    assert "<mark id='cited-passage'>The &lt;script&gt;bad()&lt;/script&gt; passage.</mark>" in out


def test_filters_from_the_ui_and_bad_dates_named():
    from assistant.app import build_filters

    assert build_filters([], [], "", "") is None
    f = build_filters(["a.txt"], ["Reuters"], "2022-09-01", " 2022 ")
    assert f == {"article_id": ["a.txt"], "source": ["Reuters"], "published_from": "2022-09-01", "published_to": "2022"}
    with pytest.raises(AssistantError, match="Published to: '21/09/2022' is not a date"):
        build_filters(None, None, "", "21/09/2022")


def test_uploads_checked_kept_and_indexed(fake_assistant, tmp_path):
    from assistant.uploads import add_uploads

    good = tmp_path / "ferry.txt"
    good.write_text("Ferry vote\n\nThe harbour council voted for an electric ferry on Tuesday.")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    big = tmp_path / "big.md"
    big.write_text("Big\n\n" + "word " * 300_000)
    binary = tmp_path / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 8)
    result = add_uploads(fake_assistant, [good, pdf, big, binary], max_mb=1, max_files=5)
    assert result.accepted == ["ferry.txt"]
    reasons = {p.path: p.reason for p in result.refused}
    assert "not accepted" in reasons["report.pdf"] and "upload limit" in reasons["big.md"]
    assert "binary" in reasons["blob.txt"]
    assert "uploads/ferry.txt" in {a["id"] for a in fake_assistant.articles()}
    assert (Path(fake_assistant.settings.index.dir) / "uploads" / "ferry.txt").exists()
    assert not (Path(fake_assistant.settings.index.dir) / "uploads" / "blob.txt").exists()
    hits = fake_assistant.search("harbour council electric ferry", k=3)
    assert hits and hits[0].citations[0].article_id == "uploads/ferry.txt"
    msg = result.message()
    assert "Indexed ferry.txt" in msg and "Refused report.pdf" in msg and "Refused big.md" in msg
    again = add_uploads(fake_assistant, [good], max_mb=1, max_files=5)  # the same file again embeds nothing
    assert again.report.embedded == 0 and again.report.unchanged >= 1


def test_a_direct_answer_weak_line_and_speakers_are_shown_and_inert():
    from assistant.types import Direct, Quote

    text = "He said: 'Burn <script>x</script> it all.' Then he left."
    s, e = text.index("Burn"), text.index("'", 10)
    cit = Citation("a.txt", "Headline <i>", "Outlet <b>", "a.txt", 100, 100 + len(text), "2022-09-21")
    hit = Hit(1, text, 0.5, (cit,), (0, e + 2), quotes=(Quote(s, e, "Evil <img src=x>", "direct"),))
    direct = Direct(f"Evil <img src=x>: “{text[s:e]}”", "Evil <img src=x>", 1, s, e)
    answer = Answer("q", True, (hit,), "These passages may not answer", confidence="weak", direct=direct)
    html = render_html(answer)
    assert "<script>" not in html and "<img" not in html and "<i>" not in html and "<b>" not in html
    assert html.index("These passages may not answer") < html.index("Answer:") < html.index("[1] ")
    assert "<strong>Outlet &lt;b&gt;</strong> · Headline &lt;i&gt; · 2022-09-21" in html
    assert f"#cite:{100 + s}:{100 + e}:a.txt" in html  # the direct answer opens the article at the quotation
    assert "— Evil &lt;img src=x&gt;" in html


def test_quotations_render_inert_with_their_headlines():
    from assistant.app import render_quotes
    from assistant.types import Said

    cit = Citation("a.txt", "T <i>", "", "a.txt", 3, 9, "")
    html = render_quotes([Said("Jo <b>", "say <script>", "direct", 0.5, cit, (cit,))], "Jo")
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    assert "Jo &lt;b&gt;:</strong> “say &lt;script&gt;”" in html and "Also in" in html
    assert "No quotation by Jo &lt;x&gt;" in render_quotes([], "Jo <x>")


def test_an_answers_passages_download_as_csv_with_formulas_made_text(tmp_path):
    import csv

    from assistant.app import passages_csv
    from assistant.batch import FIELDS

    first = Citation("a.txt", '=HYPERLINK("http://evil.example")', "Wire", "news/a.txt", 10, 30, "2022-09-21")
    other = Citation("b.txt", "Copy", "Post", "news/b.txt", 0, 20)
    hits = (Hit(7, "-5 degrees, he said.", 0.8, (first, other)), Hit(8, "Second passage.", 0.4, (other,)))
    path = passages_csv(Answer("Who said it?", True, hits), tmp_path)
    again = passages_csv(Answer("Who said it?", True, hits[:1]), tmp_path)
    assert path.parent.parent == tmp_path and path.name == "passages-Who-said-it.csv" and again != path
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == FIELDS and [r["rank"] for r in rows] == ["1", "2"]
    assert rows[0]["title"] == '\'=HYPERLINK("http://evil.example")' and rows[0]["text"] == "'-5 degrees, he said."
    assert (rows[0]["source"], rows[0]["published"], rows[0]["also_in"]) == ("Wire", "2022-09-21", "b.txt")
    assert (rows[0]["char_start"], rows[0]["char_end"], rows[0]["score"]) == ("10", "30", "0.8")


def test_the_period_read_is_said_above_the_passages_and_the_timeline_drawn_inert():
    from assistant.types import Dated

    text = "Cocoa prices rose."
    cit = Citation("a.txt", "Cocoa", "", "a.txt", 0, len(text), "1987-03-05")
    period = Dated("1987-03-01", "1987-03-31", "Understood as: published 1987-03-01 to 1987-03-31", "in March 1987")
    period = dataclasses.replace(period, notes=("1 article(s) <b>without</b> a publication date were left out.",))
    rows = (("1987-W10", 4), ("1987-W11", 0), ("<i>1987-W12</i>", 1))
    answer = Answer("q", True, (Hit(1, text, 0.5, (cit,)),), period=period, timeline=rows)
    html = render_html(answer)
    assert html.index("Understood as: published 1987-03-01 to 1987-03-31") < html.index("<blockquote>")
    assert "&lt;b&gt;without&lt;/b&gt;" in html and "<b>" not in html and "<i>" not in html
    chart = html[html.index("<pre class='timeline'>") :]
    assert "1987-W10" + " " * 8 + "█" * 30 + " 4" in chart  # the longest bar is the busiest bucket
    assert "1987-W11" + " " * 8 + " 0" in chart and "&lt;i&gt;1987-W12&lt;/i&gt; " + "█" * 8 + " 1" in chart
    assert "Matching articles by publication date (5)" in html


def test_no_timeline_for_one_bucket_and_the_period_shown_when_nothing_is_found():
    from assistant.types import Dated

    period = Dated("1987-03-01", "1987-03-31", "Understood as: published 1987-03-01 to 1987-03-31", "in March 1987")
    html = render_html(Answer("q", False, (), "Nothing in the indexed articles answers this question.", period=period))
    assert "Understood as: published 1987-03-01 to 1987-03-31" in html and "timeline" not in html
