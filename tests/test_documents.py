import json
import time
from pathlib import Path

import pytest

from assistant import decoding
from assistant.documents import load_paths

from .conftest import SHARED


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


# Encodings: Russian code pages are detected; Western text with a few accents stays Windows-1252 --------------

RU_SENTENCE = "Центральный банк России в пятницу сохранил ключевую ставку на уровне 16 процентов годовых."
RU_ARTICLE = """Правительство объявило о новых мерах поддержки экономики

Москва, 14 марта. Правительство России в четверг утвердило пакет мер поддержки малого и среднего бизнеса, \
сообщила пресс-служба кабинета министров. По словам вице-премьера, на эти цели из федерального бюджета \
будет направлено около 300 миллиардов рублей.

«Мы рассчитываем, что уже к лету предприниматели почувствуют эффект от этих решений», — заявил он \
журналистам после заседания. Программа предусматривает льготные кредиты, отсрочку по налоговым платежам \
и снижение страховых взносов для компаний, пострадавших от санкций.

Экономисты встретили новость сдержанно. Ведущий аналитик крупного инвестиционного банка отметил, что \
объём помощи меньше, чем в 2020 году, а условия получения кредитов остаются жёсткими. Ещё одна проблема — \
высокая инфляция, которая в феврале ускорилась до 7,7 процента в годовом выражении.

Центральный банк на прошлой неделе сохранил ключевую ставку без изменений и дал понять, что не планирует \
её снижать до конца квартала. Курс рубля к доллару за неделю почти не изменился, а индекс Мосбиржи \
прибавил 1,2 процента.
"""
WESTERN = {
    "en-pound.txt": ("Price\n\nIt cost £300 in Zürich.", "latin-1"),
    "en-cafe.txt": (
        "Café owners\n\nShe met the café’s owner on Tuesday; “non”, he said – the résumé was naïve.",
        "cp1252",
    ),
    "de.txt": (
        "Wärmepumpen\n\nDie Bundesregierung hat am Mittwoch beschlossen, die Förderung für Wärmepumpen zu erhöhen. "
        "Das Gesetz soll im März in Kraft treten, sagte ein Sprecher des Ministeriums. Kritiker äußerten Bedenken "
        "über die Kosten für Verbraucher und forderten Übergangsfristen für ältere Gebäude.",
        "latin-1",
    ),
    "fr.txt": (
        "Énergie\n\nLe gouvernement français a présenté mercredi un projet de loi sur l'énergie. Le ministre a "
        "déclaré que la réforme était nécessaire pour garantir la sécurité d'approvisionnement. Les élus de "
        "l'opposition ont critiqué un texte jugé trop léger, à quelques mois des élections régionales.",
        "latin-1",
    ),
}


def _koi8_safe(text):
    """KOI8-R has no guillemets or em dash: Russian sources in it use straight quotes and hyphens."""
    return text.replace("«", '"').replace("»", '"').replace("—", "-")


def _as_html(text):
    title, _, body = text.partition("\n")
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n") if p.strip())
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>{paragraphs}</article></body></html>"
    )


def _as_jsonl(text):
    title, _, body = text.partition("\n")
    return json.dumps({"id": "ru-1", "title": title, "text": body.strip()}, ensure_ascii=False) + "\n"


def _read_as(tmp_path, name, text, codec):
    """The article read from a file holding `text` in `codec`, and the warnings."""
    loaded = load_paths([write(tmp_path / codec / name, text.encode(codec))])
    assert not loaded.skipped, loaded.skipped
    return loaded.articles[0], [p.reason for p in loaded.warnings]


def _reference(tmp_path, name, text):
    """The article read from the same text in UTF-8."""
    loaded = load_paths([write(tmp_path / "utf-8" / name, text)])
    assert not loaded.warnings
    return loaded.articles[0]


@pytest.mark.parametrize("codec, label", [("cp1251", "windows-1251"), ("koi8_r", "koi8-r")])
def test_russian_code_pages_are_detected(tmp_path, codec, label):
    for length, russian in {"short": f"Новости\n{RU_SENTENCE}", "long": RU_ARTICLE}.items():
        text = _koi8_safe(russian) if codec == "koi8_r" else russian
        for name, content in (
            (f"{length}.txt", text),
            (f"{length}.html", _as_html(text)),
            (f"{length}.jsonl", _as_jsonl(text)),
        ):
            article, warnings = _read_as(tmp_path, name, content, codec)
            expected = _reference(tmp_path, name, content)
            assert (article.title, article.text) == (expected.title, expected.text), (name, article.text[:80])
            assert "Центральный банк" in article.text and warnings == [f"not UTF-8; read as {label}"]


def test_western_text_stays_windows_1252(tmp_path):
    for name, (text, codec) in WESTERN.items():
        article, warnings = _read_as(tmp_path, name, text, codec)
        expected = _reference(tmp_path, name, text)
        assert (article.title, article.text) == (expected.title, expected.text), name
        assert warnings == ["not UTF-8; read as windows-1252"]


BBC_POUND = SHARED / "corpora" / "bbc-news" / "bbc" / "sport" / "199.txt"  # one raw Latin-1 pound sign


@pytest.mark.skipif(not BBC_POUND.exists(), reason="../shared/corpora/bbc-news missing")
def test_bbc_latin1_pound_sign():
    loaded = load_paths([BBC_POUND])
    assert "£" in loaded.articles[0].text and "\ufffd" not in loaded.articles[0].text
    assert [p.reason for p in loaded.warnings] == ["not UTF-8; read as windows-1252"]


def test_code_page_detection_reads_a_bounded_sample(tmp_path):
    english = "The wire carried this line of plain English text before the Russian part began.\n" * 2000
    big = (english + RU_ARTICLE * 10_000).encode("cp1251")  # 160 KB of ASCII, then 11 MB of Russian
    assert len(big) > 10 * 1_000_000 and len(decoding._sniff_sample(big)) <= decoding.SNIFF_BYTES
    started = time.perf_counter()
    text, codec = decoding.decode_bytes(big)
    took = time.perf_counter() - started
    print(f"\ndecoding {len(big) / 1e6:.0f} MB of windows-1251 took {took:.2f} s")
    assert codec == "windows-1251" and text == english + RU_ARTICLE * 10_000
    assert took < 10  # a safety net: the detector sees 64 KB, not the whole file


# Symbolic links: followed within the folder given, never out of it ------------------------------------------


def _outside(target, kind="file"):
    return (
        f"a symbolic link to {target}, outside the folder given; links are not followed out of it"
        f" (copy the {kind} in instead)"
    )


def test_links_out_of_the_folder_are_skipped_and_named(tmp_path):
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "Secret\n\nNot part of the corpus.")
    write(outside / "more" / "b.txt", "Outside article\n\nFrom another folder.")
    d = tmp_path / "corpus"
    write(d / "a.txt", "Inside\n\nThe corpus article.")
    write(d / "sub" / "c.txt", "Sub\n\nA nested article.")
    write(d / ".archive" / "e.txt", "Archive\n\nIn a hidden folder, reached through a link.")
    (d / "passwd.txt").symlink_to("/etc/passwd")
    (d / "secret.txt").symlink_to(outside / "secret.txt")
    (d / "chain.txt").symlink_to("secret.txt")  # inside, but on to a link that leaves
    (d / "more").symlink_to(outside / "more", target_is_directory=True)
    (d / "gone.txt").symlink_to(outside / "missing.txt")
    (d / "alias.txt").symlink_to("a.txt")  # stays inside: followed
    (d / "shelf").symlink_to(".archive", target_is_directory=True)  # stays inside: followed
    (d / "loop").symlink_to(".", target_is_directory=True)  # the folder itself: not walked twice
    (d / "self.txt").symlink_to("self.txt")
    loaded = load_paths([d])
    assert {a.id for a in loaded.articles} == {"a.txt", "alias.txt", "sub/c.txt", "shelf/e.txt"}
    assert {Path(p.path).name: p.reason for p in loaded.skipped} == {
        "passwd.txt": _outside("/etc/passwd"),
        "secret.txt": _outside(outside / "secret.txt"),
        "chain.txt": _outside(outside / "secret.txt"),
        "more": _outside(outside / "more", "folder"),
        "gone.txt": _outside(outside / "missing.txt"),
        "self.txt": "cannot be read: Too many levels of symbolic links",
    }
    assert [p.path for p in loaded.skipped if p.path.endswith("passwd.txt")] == [str(d / "passwd.txt")]
    (tmp_path / "corpus-link").symlink_to(d, target_is_directory=True)  # the folder given through a link
    via_link = load_paths([tmp_path / "corpus-link"])
    assert {a.id for a in via_link.articles} == {a.id for a in loaded.articles} and len(via_link.skipped) == 6


def test_a_link_named_by_the_user_is_followed(tmp_path):
    outside = tmp_path / "outside"
    write(outside / "b.txt", "Outside article\n\nFrom another folder.")
    (tmp_path / "file-link.txt").symlink_to(outside / "b.txt")
    (tmp_path / "folder-link").symlink_to(outside, target_is_directory=True)
    loaded = load_paths([tmp_path / "file-link.txt", tmp_path / "folder-link"])
    assert not loaded.skipped
    assert [a.id for a in loaded.articles] == ["file-link.txt", "b.txt"]
    assert [a.path for a in loaded.articles] == [
        str(tmp_path / "file-link.txt"),
        str(tmp_path / "folder-link" / "b.txt"),
    ]


# Lone surrogates in JSON ("\ud800") are replaced, with a warning; they never reach an article ---------------


def test_lone_surrogates_in_json_are_replaced_and_named(tmp_path):
    d = tmp_path / "in"
    lines = [
        '{"id": "ok", "title": "Fine", "text": "A normal record."}',
        '{"id": "bad-text", "title": "Broken \\ud83d", "text": "Before \\ud800 after; a pair \\ud83d\\ude00 kept."}',
        '{"id": "bad-\\udfff", "source": "Wire \\udc00", "text": "The id and source carry one."}',
    ]
    write(d / "records.jsonl", "\n".join(lines) + "\n")
    write(d / "list.json", '[{"id": "j1", "text": "First."}, {"id": "j2", "text": "Odd \\udbff here."}]')
    write(d / "page.html", "<html><body><article><p>" + "A reference &#xd800; to nothing and &#55296; again. " * 4)
    loaded = load_paths([d])
    assert not loaded.skipped
    by_id = {a.id: a for a in loaded.articles}
    assert set(by_id) == {"ok", "bad-text", "bad-\ufffd", "j1", "j2", "page.html"}
    assert by_id["bad-text"].title == "Broken \ufffd"
    assert by_id["bad-text"].text == "Before \ufffd after; a pair 😀 kept."
    assert by_id["bad-\ufffd"].source == "Wire \ufffd" and by_id["j2"].text == "Odd \ufffd here."
    for a in loaded.articles:  # what the index writes: every field must be text that UTF-8 can hold
        for value in (a.id, a.title, a.text, a.source, a.url, a.published, a.path):
            value.encode("utf-8")
    surrogate = "a lone UTF-16 surrogate (such as \\ud800) is not text; replaced with U+FFFD"
    assert [str(p) for p in loaded.warnings] == [
        f"{d / 'list.json'}: item 2: 'text': {surrogate}",
        f"{d / 'records.jsonl'}: line 2: 'title', 'text': {surrogate}",
        f"{d / 'records.jsonl'}: line 3: 'id', 'source': {surrogate}",
    ]
