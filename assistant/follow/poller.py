"""Following on a schedule: each poll reads every target, writes what is new or changed in one batch through the
index's normal write path, records what it saw, and reports one line per source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ..config import FollowSettings, parse_duration
from ..core import Assistant
from ..documents import MB
from ..types import Article, AssistantError
from .fetch import SCHEMES, Fetcher
from .robots import Robots
from .sources import Found, Poll, collect
from .state import FollowState, SourceState, stamp

WAIT_S = 300.0  # how long a poll's write waits for another writer before saying so


@dataclass
class SourceReport:
    """What one poll did for one source."""

    target: str
    kind: str = ""
    added: int = 0
    updated: int = 0
    titles: dict[str, list[str]] = field(default_factory=lambda: {"added": [], "updated": []})  # where known
    unchanged: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line: added N (naming them), updated M (naming them), unchanged, or the error."""
        head = f"{self.target}" + (f" ({self.kind})" if self.kind else "")
        if self.error:
            return f"{head}: error: {self.error}"
        parts = []
        for what, n in (("added", self.added), ("updated", self.updated)):
            if n or what == "added":
                named = self.titles[what]
                parts.append(f"{what} {n}" + (f" ({'; '.join(named)})" if named else ""))
        parts.append(f"{self.unchanged} unchanged")
        return f"{head}: {', '.join(parts)}"

    def lines(self) -> list[str]:
        """The source's line, then one indented line per entry skipped or worth knowing about."""
        return [self.line(), *(f"  {n}" for n in self.notes)]


def is_url(target: str) -> bool:
    """Whether a target names a URL (any scheme) rather than a folder."""
    return "://" in target


class Follower:
    """Polls feeds, pages, sitemaps and folders into an assistant's index."""

    def __init__(self, assistant: Assistant, settings: FollowSettings | None = None) -> None:
        """A follower writing into `assistant`'s index, polite as `settings` (default: the assistant's) say."""
        self.assistant = assistant
        s = settings or assistant.settings.follow
        self.every_s = parse_duration(s.every)
        self.state = FollowState(assistant.folder)
        self.fetcher = Fetcher(int(s.max_page_mb * MB), s.timeout)
        robots = Robots(lambda url, limit: self.fetcher.get(url, max_bytes=limit))
        self.fetcher.refusal = robots.refusal
        self.fetcher.delay = lambda url: max(s.per_host_delay, robots.crawl_delay(url))

    def poll(self, targets: Sequence[str], once: bool = False) -> list[SourceReport]:
        """Poll every target once; one bad target or entry never stops the others."""
        poll, found = Poll(), []
        reports = {t: SourceReport(t) for t in targets}
        for target in dict.fromkeys(targets):
            if is_url(target) and urlsplit(target).scheme.lower() not in SCHEMES:
                reports[target].error = "only http and https URLs (or a folder on this machine) can be followed"
                found.append(Found(SourceState(target, last_error=reports[target].error)))
            elif is_url(target):
                try:
                    found.append(collect(target, self.fetcher, self.state, poll))
                except Exception as e:  # a failure nobody foresaw stops this target only
                    why = f"could not be read ({type(e).__name__}: {str(e)[:200]})"
                    found.append(Found(SourceState(target, last_error=why)))
            else:
                found.append(self._folder(target, reports[target]))
        self._write([f for f in found if f.articles], reports)
        now = time.time()
        sources = []
        for f in found:
            r = reports[f.source.target]
            r.kind, r.unchanged = f.source.kind, r.unchanged + f.unchanged
            r.error, r.notes = r.error or f.source.last_error, [*f.notes, *r.notes]
            if r.error:  # the validators of an answer that was not indexed are not kept: the next poll reads it all
                before = self.state.source(f.source.target)
                f.source.etag, f.source.last_modified = before.etag, before.last_modified
            f.source.last_error, f.source.last_poll = r.error, stamp(now)
            f.source.added, f.source.updated = r.added, r.updated
            f.source.next_poll = "" if once else stamp(now + self.every_s)
            sources.append(f.source)
        kept = [u for f in found if not reports[f.source.target].error for u in f.urls]
        self.state.save(kept, sources, [u for f in found for u in f.failed], stamp(now))
        return [reports[t] for t in dict.fromkeys(targets)]

    def _write(self, found: Sequence[Found], reports: dict[str, SourceReport]) -> None:
        """Index every article found in one write; each source's report names what it added and updated."""
        articles: dict[str, tuple[Article, str]] = {}
        for f in found:
            for a in f.articles:
                articles.setdefault(a.id, (a, f.source.target))
        if not articles:
            return
        try:
            done = self.assistant.add([], articles=[x for x, _ in articles.values()], wait_s=WAIT_S)
        except AssistantError as e:
            for f in found:
                reports[f.source.target].error = f"could not write to the index: {e}"
            return
        new, changed = set(done.new_ids), set(done.changed_ids)  # as the write found the index, not as read before
        for article, target in articles.values():
            r = reports[target]
            if article.id in new:
                r.added += 1
                r.titles["added"].append(article.title)
            elif article.id in changed:
                r.updated += 1
                r.titles["updated"].append(article.title)
            else:  # the same text was there already (another writer may have put it there meanwhile), or theirs stays
                r.unchanged += 1

    def _folder(self, target: str, report: SourceReport) -> Found:
        """Index a followed folder as `assistant index FOLDER` does (files gone from it stay indexed, as there)."""
        found = Found(SourceState(target, kind="folder"))
        if not Path(target).exists():
            report.error = f"no such folder {target}"
            return found
        try:
            done = self.assistant.add([target], wait_s=WAIT_S)
        except AssistantError as e:
            report.error = str(e)
            return found
        report.added, report.updated, report.unchanged = done.new, done.changed, done.unchanged
        report.notes = [f"skipped {p}" for p in done.skipped] + [f"warning: {p}" for p in done.warnings]
        return found

    def run(self, targets: Sequence[str], emit: Callable[[str], None], stop: threading.Event | None = None) -> None:
        """Poll every `every` until `stop` is set, emitting each poll's lines; a failed poll is one line too."""
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                for report in self.poll(targets):
                    for line in report.lines():
                        emit(line)
            except Exception as e:  # the schedule goes on: the next poll may do better
                emit(f"follow: the poll failed ({type(e).__name__}: {str(e)[:300]}); trying again next time")
            stop.wait(self.every_s)

    def close(self) -> None:
        """Close the connections and the state file."""
        self.fetcher.close()
        self.state.close()


def follow_in_background(assistant: Assistant, targets: Sequence[str], emit: Callable[[str], None]) -> threading.Thread:
    """Start polling the targets in a daemon thread (a server answers meanwhile); returns the thread."""
    follower = Follower(assistant)
    thread = threading.Thread(target=follower.run, args=(list(targets), emit), name="follow", daemon=True)
    thread.start()
    return thread
