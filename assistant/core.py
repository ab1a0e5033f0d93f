"""The `Assistant`: one object that indexes, searches and answers; every face is a shell over it."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .answer import build_answer
from .batch import Asked
from .config import Settings, load_settings
from .conversation import contextualize
from .dated import Archive, search_dated
from .decoding import SURROGATE
from .embedding import Embedder, load_embedder
from .engines import Engine, View, engine_for
from .engines.base import Filter
from .engines.listing import ArticleQuery, check_page
from .indexer import IndexReport, check_compatible, optimize_index, remove_articles, update_index
from .quotebook import find_said
from .retrieval import rank, rank_articles, search, searchable
from .timeline import timeline
from .types import Answer, Article, AssistantError, Dated, Hit, Said

MAX_QUESTION_CHARS = 2000  # longer input is refused with a message, not searched
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
NOT_UNICODE = "holds a lone UTF-16 surrogate (such as \\ud800), which is not text; send valid Unicode"


def check_question(question: object, what: str = "the question") -> str:
    """The question if it is text a person could have typed, else a one-line error saying what is wrong."""
    if not isinstance(question, str):
        raise AssistantError(f"{what} must be text, got {type(question).__name__}")
    if len(question) > MAX_QUESTION_CHARS:
        raise AssistantError(f"{what} is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}")
    if _CONTROL.search(question):
        raise AssistantError(f"{what} holds control characters (binary data?); send plain text")
    if SURROGATE.search(question):  # only a lone one can be in a str: JSON's "\ud800" makes one
        raise AssistantError(f"{what} {NOT_UNICODE}")
    return question


class Assistant:
    """Question answering with cited passages over an index of news articles."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None) -> None:
        """An assistant over the index the settings name; the index and model load on first use."""
        self.settings = settings or Settings()
        self.engine: Engine = engine_for(self.settings.index)
        self.folder = Path(self.settings.index.dir)  # the encoder, staging and uploads live here for every engine
        self._embedder = embedder
        self._view: View | None = None
        self._archive: tuple[str, Archive] | None = None  # the dates of one generation's articles

    @classmethod
    def load(
        cls,
        index_dir: str | Path | None = None,
        config: Settings | str | Path | None = None,
        embedder: Embedder | None = None,
    ) -> Assistant:
        """Open the index (default `index/`); a damaged or other-model index raises a one-line error."""
        settings = config if isinstance(config, Settings) else load_settings(config)
        if index_dir is not None:
            settings = settings.replace("index", dir=str(index_dir))
        assistant = cls(settings, embedder)
        if assistant.engine.exists():
            assistant.view  # noqa: B018 - load now, so errors surface here
        return assistant

    @property
    def embedder(self) -> Embedder:
        """The embedding model (its ONNX export in the index folder where it has one), loaded on first use."""
        return self._load_embedder(strict=False)

    def _load_embedder(self, strict: bool = True) -> Embedder:
        """The embedder, loaded on first use; `strict` (indexing): an encoder that cannot be saved is an error, not
        slow questions later."""
        if self._embedder is None:
            e = self.settings.embedding
            cache = Path(e.cache_dir).expanduser()
            self._embedder = load_embedder(e.model, e.device, e.batch_size, e.offline, self.folder, strict, cache)
        return self._embedder

    @property
    def view(self) -> View:
        """The open index, reopened when another process has written a newer state; a missing one says how to
        build it."""
        view = self._view
        if view is not None and self.engine.changed(view):
            view = None  # `assistant index` ran beside a server: serve the new state from now on
        if view is None:
            view = self.engine.open()
            try:
                check_compatible(view, self.engine, self.settings, chunking=False)
            except AssistantError:
                view.close()
                raise
            self._view = view
        return view

    def reload(self) -> None:
        """Drop the loaded index so that the next call reads the current generation.

        The old view is not closed here: a search running in another thread (the web chat) may still
        be reading it; it closes when the last reference goes.
        """
        self._view = None

    def add(
        self,
        paths: Sequence[str | Path],
        prune: bool = False,
        rebuild: bool = False,
        progress: bool = False,
        uploaded: bool = False,
        wait_s: float | None = None,
        articles: Sequence[Article] = (),
    ) -> IndexReport:
        """Index files and folders, and `articles` read elsewhere (a followed feed's pages): new and changed articles
        are embedded, unchanged ones are not.

        Safe beside other writers (processes or threads): what another writer committed meanwhile stays. When one
        is writing, this waits for it (saying so), at most `wait_s` seconds if given. `uploaded`: the paths are files
        in `<index>/uploads/`, whose articles get ids of their own ("uploads/NAME").
        """
        base = None if rebuild or not self.engine.exists() else self.view
        report, wrote = update_index(
            self.engine,
            self.folder,
            base,
            self.settings,
            self._load_embedder,
            list(paths),
            prune=prune,
            progress=progress,
            rebuild=rebuild,
            uploaded=uploaded,
            wait_s=wait_s,
            articles=articles,
        )
        if wrote:
            self.reload()
        prepared = getattr(self._embedder, "prepared_s", 0.0)
        if prepared:  # the encoder was exported and calibrated for this machine in this run: reported apart, once
            report.encoder_s, report.seconds = prepared, max(0.0, report.seconds - prepared)
            self._embedder.prepared_s = 0.0
        return report

    def refresh(self, prune: bool = False, progress: bool = False) -> IndexReport:
        """Re-read every folder the index was built from."""
        roots = self.view.roots()
        return self.add(roots, prune=prune, progress=progress)

    def remove(self, article_ids: Sequence[str], wait_s: float | None = None) -> int:
        """Delete articles by id; returns how many were found and removed. An uploaded article's file goes too. When
        another process is writing, this waits for it (saying so), at most `wait_s` seconds if given."""
        n = remove_articles(self.engine, self.folder, self.settings, list(article_ids), self.view, wait_s)
        if n:
            self.reload()
        return n

    def followed(self) -> list[dict[str, Any]]:
        """Every followed feed, page, sitemap and folder: target, kind, last_poll, added, updated, last_error and
        next_poll (UTC, ISO 8601) of its last poll."""
        from .follow.state import followed

        return followed(self.folder)

    def optimize(self, progress: bool = False) -> dict[str, Any]:
        """Merge the index's segments into one (PostgreSQL: VACUUM ANALYZE); searches answer meanwhile. Its meta."""
        meta = optimize_index(self.engine, self.settings, progress)
        self.reload()
        return meta

    def check(self, full: bool = False) -> dict[str, Any]:
        """Check the index files against their checksums (cheaply, or every byte with `full`) and that its parts
        agree; a one-line error when not, else what was checked."""
        return self.engine.check(full)

    def search(
        self,
        question: str,
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        history: Sequence[str] = (),
    ) -> list[Hit]:
        """The k passages that best answer the question, read in the light of earlier `history` questions."""
        return self._retrieve(question, k, filters, history)[1]

    def ask(
        self,
        question: str,
        k: int = 5,
        filters: Mapping[str, Any] | None = None,
        history: Sequence[str] = (),
    ) -> Answer:
        """An answer: the passages with citations, or 'nothing found'; `history` = earlier questions, oldest first."""
        query, hits, generation, dated, days = self._retrieve(question, k, filters, history, matching=True)
        answer = build_answer(question, hits, query, generation, bool(hits) or searchable(query))
        return dataclasses.replace(answer, period=dated, timeline=tuple(days))

    def _retrieve(
        self,
        question: str,
        k: int,
        filters: Mapping[str, Any] | None,
        history: Sequence[str],
        matching: bool = False,
    ) -> tuple[str, list[Hit], str, Dated | None, list[tuple[str, int]]]:
        """What was searched, the hits, the generation, the period read and (with `matching`) the timeline of the
        articles that match."""
        check_question(question)
        if isinstance(history, str | bytes) or not isinstance(history, Sequence):  # "abc" is not three questions
            raise AssistantError(f"history must be a list of earlier questions, got {type(history).__name__}")
        for i, earlier in enumerate(history):
            check_question(earlier, f"history item {i + 1}")
        query = contextualize(question, history)
        view = self.view  # one state for the whole search, whatever a writer does meanwhile
        archive = functools.partial(self._dates, view)  # read only for a question that names a time
        matched: list[str] | None = [] if matching else None

        def searched(text: str, where: Mapping[str, Any] | None) -> list[Hit]:
            if matched:
                matched.clear()  # the search outside the period replaces the one within it
            return search(view, self.embedder, self.settings.retrieval, text, k, where, matched)

        hits, dated = search_dated(searched, query, filters, archive, self.settings.retrieval.dates)
        days = timeline(m.get("published") or "" for m in view.metas(matched or []).values())
        return query, hits, view.generation, dated, days

    def _dates(self, view: View) -> Archive:
        """The publication dates of the articles in a view, read once per generation."""
        cached = self._archive
        if cached is None or cached[0] != view.generation:
            cached = (view.generation, Archive.of(view.articles()))
            self._archive = cached
        return cached[1]

    def batch(
        self,
        questions: Iterable[str],
        k: int = 10,
        filters: Mapping[str, Any] | None = None,
        progress: bool = False,
    ) -> Iterator[Asked]:
        """Search each question in turn (a progress bar with `progress`), as `search` does; a question that fails
        (empty, too long, not text) comes back with its one-line error, and the others go on."""
        from tqdm import tqdm

        Filter.parse(filters)  # bad filters: one error for the batch, not one a question
        for question in tqdm(questions, desc="questions", unit="q", disable=not progress, dynamic_ncols=True):
            try:
                if isinstance(question, str) and not question.strip():
                    raise AssistantError("the question is empty")
                yield Asked(question, tuple(self.search(question, k, filters)))
            except AssistantError as e:
                yield Asked(question, error=str(e))

    def quotes(
        self,
        speaker: str | None = None,
        about: str | None = None,
        k: int = 20,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Said]:
        """Quotations across the archive: every one by `speaker` (any speaker's when None), ranked by relevance to
        `about` (newest first without it), each cited, the same words in several articles shown once."""
        for value, what in ((speaker, "the speaker"), (about, "the topic")):
            if value is not None:
                check_question(value, what)
        return find_said(self.view, self.embedder, self.settings.retrieval, speaker, about, k, filters)

    def rank_articles(self, question: str, k: int = 100) -> list[tuple[str, float]]:
        """The k articles that best match a question (each by its best passage), with scores; no floor."""
        depth = max(self.settings.retrieval.candidates, 4 * k)
        return rank_articles(rank(self.view, self.embedder, self.settings.retrieval, question, depth), k)

    def articles(self) -> list[dict[str, str]]:
        """Every indexed article's id and metadata."""
        return self.view.articles()

    def list_articles(
        self, title: str = "", source: str = "", since: str = "", until: str = "", offset: int = 0, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the indexed articles, newest first (undated last), and how many match in all: those whose title
        holds every word of `title` and whose source holds `source` (ignoring case), published from `since` to `until`
        ('YYYY[-MM[-DD]]', both included). Each row: id, title, source, published, path, url, passages."""
        query = ArticleQuery.parse(title, source, since, until)
        offset, limit = check_page(offset, limit)
        return self.view.listing(query, offset, limit)

    def article(self, article_id: str) -> dict[str, str]:
        """One indexed article's id and metadata (title, source, path, url, published)."""
        meta = self.view.article(article_id)
        if meta is None:
            raise AssistantError(f"no article with id '{article_id}' in {self.engine.location}")
        return {"id": article_id, **meta}

    def article_text(self, article_id: str) -> str:
        """The cleaned text of an article, which citation spans point into."""
        text = self.view.article_text(article_id)
        if text is None:
            raise AssistantError(f"no article with id '{article_id}' in {self.engine.location}")
        return text
