"""Many questions at once: read them from a .txt or .csv file, write every hit with its citation as CSV or JSONL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .generation import write_atomic
from .types import AssistantError, Hit, hit_to_record

if TYPE_CHECKING:
    from .core import Assistant

FIELDS = (
    "question",
    "rank",
    "title",
    "source",
    "published",
    "url",
    "path",
    "article_id",
    "char_start",
    "char_end",
    "score",
    "confidence",
    "also_in",
    "text",
)
FORMATS = (".csv", ".jsonl")
FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell starting with one of these (OWASP CSV injection)


@dataclass(frozen=True)
class Asked:
    """One question of a batch: its hits, or the one-line reason it could not be searched."""

    question: str
    hits: tuple[Hit, ...] = ()
    error: str = ""


@dataclass
class BatchReport:
    """What a batch did: how many questions and rows, which questions were skipped and why."""

    questions: int = 0
    rows: int = 0
    nothing: int = 0  # questions searched that found no passage
    skipped: list[str] = field(default_factory=list)  # "questions.txt line 4: the question is empty"

    def summary(self, out: Path) -> str:
        """One line: what was written where."""
        line = f"Wrote {self.rows} passage(s) for {self.questions - len(self.skipped)} question(s) to {out}"
        extra = [f"{len(self.skipped)} skipped"] if self.skipped else []
        extra += [f"nothing found for {self.nothing}"] if self.nothing else []
        return line + (f" ({', '.join(extra)})" if extra else "")


def read_questions(path: Path, column: str | None = None) -> list[tuple[str, str]]:
    """(where, question) pairs: a .txt file's lines (blank and '#' lines skipped), or a .csv file's `column` (by
    default the one named `question`, else the first); a one-line error naming the file when it cannot be read."""
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".csv"):
        raise AssistantError(f"{path}: questions are read from a .txt file (one a line) or a .csv file")
    if column is not None and suffix != ".csv":
        raise AssistantError(f"--column is for a .csv file, and {path} is a {suffix} file; drop --column")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise AssistantError(f"{path} is not UTF-8 text; save it as UTF-8 (a spreadsheet's 'CSV UTF-8')") from None
    except OSError as e:
        raise AssistantError(f"cannot read {path}: {e.strerror or e}") from None
    if suffix == ".txt":
        lines = enumerate(text.splitlines(), 1)
        found = [(f"line {n}", s.strip()) for n, s in lines if s.strip() and not s.lstrip().startswith("#")]
    else:
        found = _csv_questions(path, text, column)
    if not found:
        raise AssistantError(f"{path} holds no questions")
    return [(f"{path.name} {where}", q) for where, q in found]


def _csv_questions(path: Path, text: str, column: str | None) -> list[tuple[str, str]]:
    """The cells of one column, each with its line; semicolon- and tab-separated files are read too."""
    try:
        delimiter = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:  # one column: nothing to tell apart
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    if column is not None and column not in header:
        raise AssistantError(f"{path} has no column '{column}' (it has: {', '.join(header)}); name one with --column")
    at = header.index(column or "question") if (column or "question") in header else 0
    return [(f"line {reader.line_num}", row[at].strip() if at < len(row) else "") for row in reader if any(row)]


def check_out(out: Path) -> None:
    """A one-line error, before any question is searched, when results cannot be written to `out`."""
    if out.suffix.lower() not in FORMATS:
        raise AssistantError(f"--out {out}: results are written as .csv or .jsonl; name the file so")
    if not out.parent.is_dir():
        raise AssistantError(f"--out {out}: the folder {out.parent} does not exist; create it or pick another")


def records(
    asked: Iterable[Asked], report: BatchReport | None = None, wheres: Sequence[str] = ()
) -> Iterator[dict[str, Any]]:
    """Every hit of every question as one record (FIELDS), counting into `report` as they pass."""
    report = BatchReport() if report is None else report
    for i, a in enumerate(asked):
        report.questions += 1
        if a.error:
            report.skipped.append(f"{wheres[i] if i < len(wheres) else repr(a.question[:60])}: {a.error}")
        report.nothing += not a.error and not a.hits
        for rank, hit in enumerate(a.hits, 1):
            report.rows += 1
            record = {"question": a.question, **hit_to_record(hit, rank)}
            yield {name: record[name] for name in FIELDS}


def to_csv(rows: Iterable[Mapping[str, Any]]) -> str:
    """Records as CSV text, FIELDS as its header; a cell that a spreadsheet would run as a formula starts with '."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(FIELDS)
    for row in rows:
        writer.writerow([_cell(row.get(name, "")) for name in FIELDS])
    return buffer.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, list):
        value = "; ".join(map(str, value))
    if isinstance(value, str) and value.startswith(FORMULA):
        return "'" + value
    return value


def to_jsonl(rows: Iterable[Mapping[str, Any]]) -> str:
    """Records as JSON Lines, one a line."""
    return "".join(json.dumps(dict(row), ensure_ascii=False) + "\n" for row in rows)


def write_results(rows: Iterable[Mapping[str, Any]], out: Path) -> None:
    """Write records as CSV or JSONL (by `out`'s extension) to a temporary file renamed into place: an interrupted
    batch leaves the file that was there."""
    check_out(out)
    text = to_csv(rows) if out.suffix.lower() == ".csv" else to_jsonl(rows)
    write_atomic(out, text.encode())


def run_batch(
    assistant: Assistant,
    questions: Path,
    out: Path,
    column: str | None = None,
    k: int = 10,
    filters: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> BatchReport:
    """Search every question of a file and write its hits to `out`; questions that fail are in the report."""
    check_out(out)
    asked = read_questions(questions, column)
    report = BatchReport()
    found = assistant.batch([q for _, q in asked], k=k, filters=filters, progress=progress)
    write_results(records(found, report, [where for where, _ in asked]), out)
    return report
