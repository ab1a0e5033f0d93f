from assistant.clean import clean_text, repair_text
from assistant.documents import load_paths

from .conftest import SEEDS


def test_mac_mojibake_is_repaired():
    assert repair_text("before the war ‚ÄĒ have") == "before the war — have"
    assert repair_text("Papa‚Ķ Papa") == "Papa… Papa"
    assert repair_text("goodbye.¬†Please") == "goodbye.\u00a0Please"
    assert repair_text("it‚Äôs") == "it’s"


def test_windows_mojibake_is_repaired_and_quotes_stay_curly():
    assert repair_text("Putinâ€™s â€œwarâ€\x9d") == "Putin’s “war”"
    assert repair_text("“real” ‘quotes’ — and café") == "“real” ‘quotes’ — and café"


def test_seeds_come_out_clean():
    loaded = load_paths([SEEDS])
    assert len(loaded.articles) == 5 and not loaded.skipped
    for art in loaded.articles:
        for bad in (
            "‚Ä",
            "¬†",
            "‚Ķ",
            "Ä¶",
            "\u00a0",
            "The comments below",
            "Read also",
            "Related Article",
            "View all",
            "@YouTube",
            "We are no longer accepting comments",
            "@BBCWillVernon",
        ):
            assert bad not in art.text, (art.id, bad)
            assert bad not in art.title, (art.id, bad)
    by_id = {a.id: a for a in loaded.articles}
    daily = by_id["003_84ced491e06fab4c.txt"].text
    assert "before the war — have distanced" in daily
    assert "Papa, bye, Papa… Papa...?" in daily
    # Reader comments at the end of the first seed are gone, the article itself is not.
    first = by_id["000_2658ee1ef5810850.txt"].text
    assert "When will there be a military insurrection" not in first
    assert "This headline was chosen" not in first
    assert first.endswith("one person tweeted.")
    # The "Read also" link list goes with its bullets; the article's own bullets stay.
    assert "The most expensive flight ticket" not in by_id["002_a1b23aa4f37148f7.txt"].text
    assert "• Zelensky cited '55,000 Russian soldiers dying'" in daily


def test_clean_text_keeps_paragraphs_and_normalises_spaces():
    assert clean_text("A  title\r\n\r\n\r\n\tBody\u00a0text.  \n") == "A title\n\nBody text."
