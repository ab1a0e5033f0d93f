import json

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
