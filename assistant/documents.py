"""Reading files and folders into cleaned `Article`s; a bad file is reported by name and skipped."""

from __future__ import annotations

import html
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .clean import MAX_TITLE_CHARS, clean_text, first_words
from .decoding import SURROGATE, SkipFile, decode_bytes
from .reuters import reuters_stories
from .types import Article

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
SGML_SUFFIXES = {".sgm", ".sgml"}  # Reuters-21578 newswire files, many stories each
SUPPORTED = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES | SGML_SUFFIXES
MB = 1_000_000  # the megabyte of every size limit (ingest.max_file_mb, server.upload_max_mb)
OPTIONAL_FIELDS = ("url", "source", "published")


@dataclass
class Problem:
    """A file (or a record inside one) that was skipped or needed care, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Loaded:
    """What reading some paths gave: the articles, the skipped inputs, and warnings."""

    articles: list[Article] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)
    root_of: dict[str, str] = field(default_factory=dict)


def _title_and_body(text: str) -> tuple[str, str]:
    """First non-empty line is the title; a paragraph-long first line stays in the body."""
    stripped = text.lstrip()
    first, _, rest = stripped.partition("\n")
    first = first.strip()
    if len(first) > MAX_TITLE_CHARS:
        return first_words(first), stripped
    return first, rest


def _markdown_to_text(md: str) -> str:
    md = re.sub(r"^---\n.*?\n---\n", "", md, flags=re.S)  # front matter
    md = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", md)  # images
    md = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", md)  # links keep their text
    md = re.sub(r"^\s{0,3}#{1,6}\s*", "", md, flags=re.M)  # headings
    md = re.sub(r"^\s{0,3}>\s?", "", md, flags=re.M)  # quotes
    md = re.sub(r"(\*\*|__)(.+?)\1", r"\2", md)
    md = re.sub(r"(?<![\w*])[*_](?=\S)(.+?)(?<=\S)[*_](?![\w*])", r"\1", md)
    return md


def html_fields(text: str) -> dict[str, Any]:
    """A page's main text and metadata (title, text, url, source, published) by trafilatura, else by lxml."""
    import trafilatura

    doc = trafilatura.bare_extraction(
        text, include_comments=False, include_tables=True, with_metadata=True, favor_recall=True
    )
    body = getattr(doc, "text", None) if doc is not None else None
    if not body:
        from lxml import html as lxml_html

        try:
            tree = lxml_html.fromstring(text)
            for bad in tree.xpath("//script|//style|//noscript"):
                bad.drop_tree()
            body = tree.text_content()
            title = (tree.findtext(".//title") or "").strip()
        except Exception:  # lxml raises several types for broken markup
            body = title = ""
        if not body.strip():  # nesting deeper than the parsers go (libxml2 stops at 256 levels): strip tags
            return _strip_markup(text)
        return {"title": title, "text": body}
    return {
        "title": doc.title or "",
        "text": body,
        "url": doc.url or "",
        "source": doc.sitename or "",
        "published": doc.date or "",
    }


_INVISIBLE = re.compile(r"<!--.*?-->|<(script|style|noscript|template)\b[^>]*>.*?</\1\s*>", re.S | re.I)
_BLOCK_TAG = re.compile(r"</?(?:p|div|br|h[1-6]|li|tr|td|th|article|section|blockquote|pre|hr)\b[^>]*>", re.I)
_ANY_TAG = re.compile(r"<[^>]*>")


def _strip_markup(text: str) -> dict[str, str]:
    """Title and text of HTML without a parser: hidden parts dropped, block tags as line breaks, others removed."""
    title_m = re.search(r"<title\b[^>]*>(.*?)</title\s*>", text, re.S | re.I)
    body = _INVISIBLE.sub(" ", text)
    body = _ANY_TAG.sub("", _BLOCK_TAG.sub("\n", body))
    title = html.unescape(_ANY_TAG.sub("", title_m.group(1))).strip() if title_m else ""
    return {"title": title, "text": html.unescape(body)}


def _record_fields(obj: Any, where: str) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise SkipFile(f"{where}: expected a JSON object, got {type(obj).__name__}")
    out = {}
    for key in ("title", "text", "id", *OPTIONAL_FIELDS):
        value = obj.get(key)
        if key == "id" and value is None:
            value = obj.get("_id")  # BEIR corpora name it "_id"
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SkipFile(f"{where}: field '{key}' must be a string, got {type(value).__name__}")
        out[key] = str(value)
    if not out.get("text", "").strip():
        raise SkipFile(f"{where}: missing field 'text'")
    return out


def make_article(fields: dict[str, str], default_id: str, path: str) -> Article:
    """An article from its fields, text and title cleaned; SkipFile when no text is left."""
    text = clean_text(fields["text"])
    title = clean_text(fields.get("title", "")).replace("\n", " ")
    if not text:
        raise SkipFile("no text left after cleaning")
    return Article(
        id=fields.get("id", "").strip() or default_id,
        title=title or first_words(text),
        text=text,
        path=path,
        source=fields.get("source", "").strip(),
        url=fields.get("url", "").strip(),
        published=fields.get("published", "").strip(),
    )


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """A regular file's bytes, refused (before reading it) when empty or over `max_bytes`."""
    if not stat.S_ISREG(path.stat().st_mode):  # opening a pipe would wait for a writer
        raise SkipFile("not a regular file (a pipe, socket or device)")
    with open(path, "rb") as f:  # open first: an unreadable file is named as such whatever its size
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise SkipFile("empty file")
        if size > max_bytes:
            raise SkipFile(f"file is {size / MB:.1f} MB, over the {max_bytes / MB:.0f} MB limit (ingest.max_file_mb)")
        raw = f.read(max_bytes + 1)  # a file growing while read stays bounded too
    if len(raw) > max_bytes:
        raise SkipFile(f"file grew past the {max_bytes / MB:.0f} MB limit while being read (ingest.max_file_mb)")
    return raw


def read_file(path: Path, article_id: str, max_bytes: int, loaded: Loaded) -> None:
    """Read one file into `loaded`: its articles, or why it (or a record in it) was skipped."""
    shown = str(path)
    suffix = path.suffix.lower()
    try:
        if suffix not in SUPPORTED:
            raise SkipFile(f"unsupported file type '{suffix or path.name}'")
        raw = _read_bounded(path, max_bytes)
        text, encoding = decode_bytes(raw)
        if encoding not in ("utf-8", "utf-16"):
            loaded.warnings.append(Problem(shown, f"not UTF-8; read as {encoding}"))
        if suffix in JSON_SUFFIXES:
            _read_json_records(text, suffix, article_id, shown, loaded)
            return
        if suffix in SGML_SUFFIXES:
            _read_reuters_sgml(text, article_id, shown, loaded)
            return
        if suffix in HTML_SUFFIXES:
            fields = html_fields(text)
        else:
            if suffix in MARKDOWN_SUFFIXES:
                text = _markdown_to_text(text)
            title, body = _title_and_body(clean_text(text))
            fields = {"title": title, "text": body}
        if not fields.get("text", "").strip():
            raise SkipFile("no text found")
        loaded.articles.append(make_article(fields, article_id, shown))
    except SkipFile as e:
        loaded.skipped.append(Problem(shown, str(e)))
    except OSError as e:
        loaded.skipped.append(Problem(shown, f"cannot be read: {e.strerror or e}"))
    except Exception as e:  # a reader's own failure (a parser's recursion limit, ...) skips this file only
        loaded.skipped.append(Problem(shown, f"could not be read ({type(e).__name__}: {str(e)[:200]})"))


def _read_json_records(text: str, suffix: str, file_id: str, shown: str, loaded: Loaded) -> None:
    records: Iterable[tuple[str, Any]]
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SkipFile(f"invalid JSON: {e}") from None
        items = data if isinstance(data, list) else [data]
        records = ((f"item {i + 1}", obj) for i, obj in enumerate(items))
    else:
        records = _jsonl_lines(text, shown, loaded)
    for where, obj in records:
        try:
            fields = _without_surrogates(_record_fields(obj, where), f"{shown}: {where}", loaded)
            loaded.articles.append(make_article(fields, f"{file_id}#{where.split()[-1]}", shown))
        except SkipFile as e:
            reason = str(e)
            loaded.skipped.append(Problem(shown, reason if reason.startswith(where) else f"{where}: {reason}"))


def _without_surrogates(fields: dict[str, str], where: str, loaded: Loaded) -> dict[str, str]:
    """A record's fields with each lone UTF-16 surrogate (JSON "\\ud800") replaced by U+FFFD, and a warning."""
    bad = [key for key, value in fields.items() if SURROGATE.search(value)]
    if not bad:
        return fields
    named = ", ".join(f"'{key}'" for key in bad)
    loaded.warnings.append(
        Problem(where, f"{named}: a lone UTF-16 surrogate (such as \\ud800) is not text; replaced with U+FFFD")
    )
    return {key: SURROGATE.sub("\ufffd", value) for key, value in fields.items()}


def _jsonl_lines(text: str, shown: str, loaded: Loaded) -> Iterator[tuple[str, Any]]:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield f"line {n}", json.loads(line)
        except json.JSONDecodeError as e:
            loaded.skipped.append(Problem(shown, f"line {n}: invalid JSON: {e.msg}"))


def _read_reuters_sgml(text: str, file_id: str, shown: str, loaded: Loaded) -> None:
    """Each <REUTERS> story of a Reuters-21578 file becomes an article with id "file#NEWID"."""
    found = False
    for key, fields, dated in reuters_stories(text):
        found = True
        where = f"{shown}#{key}"
        try:
            if not fields["text"].strip():
                raise SkipFile("empty story (no title or text)")
            if not fields["published"] and dated:
                loaded.warnings.append(Problem(where, "unreadable <DATE>; published left empty"))
            loaded.articles.append(make_article(fields, f"{file_id}#{key}", shown))
        except SkipFile as e:
            loaded.skipped.append(Problem(where, str(e)))
    if not found:
        raise SkipFile("no <REUTERS> stories found")


def _link_out(path: Path, root: Path) -> str | None:
    """Why a symbolic link under a folder is not followed (its target lies outside `root`); None to follow it."""
    if not path.is_symlink():
        return None
    target = Path(os.path.realpath(path))  # a loop is left for reading to report, as "too many levels"
    if target.is_relative_to(root):
        return None
    kind = "folder" if target.is_dir() else "file"
    return (
        f"a symbolic link to {target}, outside the folder given; links are not followed out of it"
        f" (copy the {kind} in instead)"
    )


def _followed(dirpath: str, names: list[str], root: Path, skipped: list[Problem]) -> list[str]:
    """The names in a folder to go on with, sorted: hidden ones left out, links out of `root` named in `skipped`."""
    kept = []
    for name in sorted(n for n in names if not n.startswith(".")):
        path = Path(dirpath) / name
        if reason := _link_out(path, root):
            skipped.append(Problem(str(path), reason))
        else:
            kept.append(name)
    return kept


def _walk(root: Path, skipped: list[Problem]) -> Iterator[Path]:
    """Files under a folder, sorted, following links only within it and into folders not already seen."""
    real_root = Path(os.path.realpath(root))
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames[:] = _followed(dirpath, dirnames, real_root, skipped)
        for name in _followed(dirpath, filenames, real_root, skipped):
            yield Path(dirpath) / name


def load_paths(paths: Iterable[str | Path], max_file_mb: float = 50.0) -> Loaded:
    """Read files and folders into articles. Ids are paths relative to the folder given."""
    loaded = Loaded()
    max_bytes = int(max_file_mb * MB)
    first_from: dict[str, str] = {}  # article id -> the file it was first read from
    for given in paths:
        root = Path(given)
        if not root.exists():
            loaded.skipped.append(Problem(str(root), "no such file or folder"))
            continue
        loaded.roots.append(str(root.resolve()))
        if root.is_file():  # a file named by the user is read even through a link
            files = [(root, root.name)]
        else:
            files = [(f, f.relative_to(root).as_posix()) for f in _walk(root, loaded.skipped)]
        for path, rel in files:
            before = len(loaded.articles)
            read_file(path, rel, max_bytes, loaded)
            fresh = loaded.articles[before:]
            keep = []
            for art in fresh:
                if art.id in first_from:
                    first = Path(first_from[art.id]).name
                    loaded.skipped.append(
                        Problem(str(path), f"duplicate article id '{art.id}' (first read from {first})")
                    )
                    continue
                first_from[art.id] = str(path)
                loaded.root_of[art.id] = loaded.roots[-1]
                keep.append(art)
            loaded.articles[before:] = keep
    return loaded
