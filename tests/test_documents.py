import json
from pathlib import Path

import pytest

from assistant.documents import load_paths


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def test_formats_and_ids(tmp_path):
    d = tmp_path / "in"
    write(d / "a.txt", "The title\n\nFirst paragraph. Second sentence.\n")
    write(d / "sub" / "b.md", "---\nx: 1\n---\n# Markdown title\n\nSome **bold** and a [link](http://x).\n")
    write(
        d / "c.html",
        "<html><head><title>Page</title></head><body><article><h1>Headline here</h1>"
        "<p>" + "The council met on Tuesday to discuss the budget for next year. " * 5 + "</p>"
        "<script>alert(1)</script></article></body></html>",
    )
    recs = [
        {"id": "wire-1", "title": "Wire", "text": "Body one.", "source": "Reuters", "published": "2022-09-21"},
        {"title": "No id", "text": "Body two."},
    ]
    write(d / "d.jsonl", "\n".join(json.dumps(r) for r in recs))
    loaded = load_paths([d])
    assert not loaded.skipped
    by_id = {a.id: a for a in loaded.articles}
    assert set(by_id) == {"a.txt", "sub/b.md", "c.html", "wire-1", "d.jsonl#2"}
    assert by_id["a.txt"].title == "The title" and by_id["a.txt"].text == "First paragraph. Second sentence."
    assert by_id["sub/b.md"].title == "Markdown title" and "Some bold and a link." in by_id["sub/b.md"].text
    assert "council met" in by_id["c.html"].text and "alert" not in by_id["c.html"].text
    assert by_id["wire-1"].source == "Reuters" and by_id["wire-1"].published == "2022-09-21"
    assert load_paths([d / "a.txt"]).articles[0].id == "a.txt"


def test_bad_files_are_named_and_the_rest_indexed(tmp_path):
    d = tmp_path / "in"
    write(d / "good.txt", "Good\n\nA good article.")
    write(d / "empty.txt", b"")
    write(d / "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    write(d / "latin1.txt", "Price\n\nIt cost \xa3300 in Z\xfcrich.".encode("latin-1"))
    write(d / "photo.jpg", b"\xff\xd8\xff")
    write(d / "bad.jsonl", '{"title": "ok", "text": "Fine."}\n{broken\n{"title": 3, "text": ["x"]}\n{"title": "x"}\n')
    loaded = load_paths([d, tmp_path / "missing"])
    ids = {a.id for a in loaded.articles}
    assert ids == {"good.txt", "latin1.txt", "bad.jsonl#1"}
    assert {a.text for a in loaded.articles if a.id == "latin1.txt"} == {"It cost £300 in Zürich."}
    reasons = {(p.path.split("/")[-1], p.reason.split(":")[0]) for p in loaded.skipped}
    assert ("empty.txt", "empty file") in reasons
    assert ("binary.txt", "binary file (contains NUL bytes)") in reasons
    assert ("photo.jpg", "unsupported file type '.jpg'") in reasons
    assert ("missing", "no such file or folder") in reasons
    bad = sorted(p.reason for p in loaded.skipped if p.path.endswith("bad.jsonl"))
    assert bad == [
        "line 2: invalid JSON: Expecting property name enclosed in double quotes",
        "line 3: field 'text' must be a string, got list",
        "line 4: missing field 'text'",
    ]
    assert [p.path.split("/")[-1] for p in loaded.warnings] == ["latin1.txt"]


def test_duplicate_ids_are_reported(tmp_path):
    d = tmp_path / "in"
    write(d / "a.jsonl", '{"id": "x", "text": "one"}\n{"id": "x", "text": "two"}\n')
    loaded = load_paths([d])
    assert [a.text for a in loaded.articles] == ["one"]
    assert "duplicate article id 'x'" in loaded.skipped[0].reason


REUTERS_SGML = """<!DOCTYPE lewis SYSTEM "lewis.dtd">
<REUTERS TOPICS="YES" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="5544" NEWID="7">
<DATE>26-FEB-1987 15:01:01.79</DATE>
<TOPICS><D>cocoa</D></TOPICS>
<UNKNOWN>
&#5;&#5;&#5;C T
&#22;&#22;&#1;f0704&#31;reute</UNKNOWN>
<TEXT>&#2;
<TITLE>SMITH &amp; CO &lt;SMC> SEES
HIGHER COCOA</TITLE>
<DATELINE>    SALVADOR, Feb 26 - </DATELINE><BODY>Showers continued throughout the week in
the Bahia cocoa zone, Smith &amp; Co &lt;SMC> said.
    Arrivals rose to 155,221 bags.
 Reuter
&#3;</BODY></TEXT>
</REUTERS>
<REUTERS TOPICS="NO" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="5573" NEWID="8">
<DATE> 2-MAR-1987 15:43:14.36</DATE>
<TEXT TYPE="BRIEF">&#2;
******<TITLE>MONEY FUND ASSETS ROSE 720.4 MLN DLRS
</TITLE>Blah blah blah.
&#3;

</TEXT>
</REUTERS>
<REUTERS TOPICS="NO" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="5600" NEWID="9">
<DATE>26-FEB-1987 16:01:00.00</DATE>
<TEXT TYPE="UNPROC">&#2;
FEDERAL RESERVE WEEKLY REPORT - FEB 26
    Net free reserves.............644 vs.....1,337
    Bank borrowings...............680 vs.......425
 Reuter
&#3;

</TEXT>
</REUTERS>
<REUTERS TOPICS="NO" LEWISSPLIT="TRAIN" CGISPLIT="TRAINING-SET" OLDID="1762" NEWID="10">
<DATE> 3-APR-1987 07:09:06.48</DATE>
<TEXT TYPE="UNPROC">&#2;
&#3;

</TEXT>
</REUTERS>
"""


def test_reuters_sgml_stories(tmp_path):
    d = tmp_path / "in"
    write(d / "wire" / "reut2-x.sgm", REUTERS_SGML)
    loaded = load_paths([d])
    by_id = {a.id: a for a in loaded.articles}
    assert list(by_id) == ["wire/reut2-x.sgm#7", "wire/reut2-x.sgm#8", "wire/reut2-x.sgm#9"]
    normal = by_id["wire/reut2-x.sgm#7"]
    assert normal.title == "SMITH & CO <SMC> SEES HIGHER COCOA"
    assert normal.text == (
        "Showers continued throughout the week in the Bahia cocoa zone, Smith & Co <SMC> said.\n"
        "Arrivals rose to 155,221 bags."
    )
    assert (normal.published, normal.source, normal.path) == ("1987-02-26", "Reuters", str(d / "wire" / "reut2-x.sgm"))
    brief = by_id["wire/reut2-x.sgm#8"]
    assert brief.title == brief.text == "MONEY FUND ASSETS ROSE 720.4 MLN DLRS"
    assert brief.published == "1987-03-02"
    unproc = by_id["wire/reut2-x.sgm#9"]
    assert unproc.title == "FEDERAL RESERVE WEEKLY REPORT - FEB 26"
    assert unproc.text == (
        "FEDERAL RESERVE WEEKLY REPORT - FEB 26\n"
        "Net free reserves.............644 vs.....1,337\n"
        "Bank borrowings...............680 vs.......425"
    )
    assert [str(p) for p in loaded.skipped] == [f"{d / 'wire' / 'reut2-x.sgm'}#10: empty story (no title or text)"]
    assert not loaded.warnings
    assert load_paths([d / "wire" / "reut2-x.sgm"]).articles[0].id == "reut2-x.sgm#7"


def test_reuters_file_without_stories_is_skipped(tmp_path):
    f = write(tmp_path / "x.sgml", "<!DOCTYPE lewis SYSTEM 'lewis.dtd'>\n")
    loaded = load_paths([f])
    assert not loaded.articles
    assert [p.reason for p in loaded.skipped] == ["no <REUTERS> stories found"]


REUT2_000 = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "reuters-21578" / "reut2-000.sgm"


@pytest.mark.skipif(not REUT2_000.exists(), reason="../shared/corpora/reuters-21578 missing")
def test_real_reuters_file():
    loaded = load_paths([REUT2_000])
    assert len(loaded.articles) + len(loaded.skipped) == 1000
    by_id = {a.id: a for a in loaded.articles}
    first = by_id["reut2-000.sgm#1"]
    assert first.title == "BAHIA COCOA REVIEW" and first.published == "1987-02-26"
    assert first.text.startswith("Showers continued throughout the week in the Bahia cocoa zone")
    assert not first.text.endswith("Reuter")
