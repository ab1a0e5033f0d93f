from assistant.app import render_html
from assistant.types import Answer, Citation, Hit


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
