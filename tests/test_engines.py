"""The engine contract: the same tests against the embedded index and PostgreSQL (a real server), and parity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant.analysis import query_terms
from assistant.engines import Filter
from assistant.indexer import update_index
from assistant.types import AssistantError

from .conftest import engine_settings
from .fakes import HashEmbedder

QUESTIONS = [
    "What did Zelensky say to Russians?",
    "Who fled Russia?",
    "prisoner swap Medvedchuk",
    "What did Lavrov say at the UN?",
    "mobilisation protests arrests",
]


def _assistant(backend: tuple[str, str], folder: Path, **retrieval: object) -> Assistant:
    name, url = backend
    return Assistant(engine_settings(name, folder, url, min_score=0.05, **retrieval), embedder=HashEmbedder())


def _dated(folder: Path) -> Path:
    """Three articles with sources and dates, as JSONL."""
    folder.mkdir()
    rows = [
        {"id": "a", "title": "Ferry strike", "text": "The island ferry crews walked out over pay.", "source": "Herald",
         "published": "2005-03-14"},
        {"id": "b", "title": "Ferry talks", "text": "Talks on the ferry strike resumed on Friday.", "source": "Times",
         "published": "2005-04-02"},
        {"id": "c", "title": "Bridge plan", "text": "A bridge could replace the ferry, the council said.",
         "source": "Herald"},
    ]  # fmt: skip
    (folder / "news.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return folder


def test_index_search_and_read_articles(backend, tmp_path, seeds_copy):
    a = _assistant(backend, tmp_path / "index")
    report = a.add([seeds_copy])
    assert report.new == 5 and report.passages == a.view.meta["passages"] > 40
    hits = a.search("What did Zelensky say to Russians?", k=5)
    assert hits and all(h.citations[0].char_end > h.citations[0].char_start for h in hits)
    first = hits[0].citations[0]
    assert a.article_text(first.article_id)[first.char_start : first.char_end] == hits[0].text
    assert {x["id"] for x in a.articles()} == {p.name for p in seeds_copy.iterdir()}
    assert a.article(first.article_id)["title"] == first.title
    metas = a.view.metas([first.article_id, "nope", first.article_id])
    assert list(metas) == [first.article_id] and metas[first.article_id] == a.view.article(first.article_id)
    with pytest.raises(AssistantError, match="no article with id 'nope'"):
        a.article("nope")
    assert a.check()["ok"] and a.check(full=True)["ok"]


def test_a_word_no_passage_holds_is_looked_up_as_the_start_of_indexed_terms(backend, tmp_path, seeds_copy):
    a = _assistant(backend, tmp_path / "index")
    a.add([seeds_copy])
    view = a.view
    assert view.idf("buryat") == 0 and view.expand("buryat", 3) == ["buryatia"]
    common = view.expand("mobilis", 10)
    assert common and all(t.startswith("mobilis") for t in common)
    assert view.expand("zzzzq", 3) == [] and view.expand("a%_", 3) == []  # LIKE's wildcards are literal
    hits = a.search("What share of one Buryat village received call-up papers?", k=3)
    assert any("Buryatia" in h.text for h in hits)


def test_filters_by_id_source_and_date(backend, tmp_path):
    a = _assistant(backend, tmp_path / "index")
    a.add([_dated(tmp_path / "news")])

    def found(**filters: object) -> set[str]:
        return {h.citations[0].article_id for h in a.search("ferry strike", k=10, filters=filters)}

    assert found() == {"a", "b", "c"}
    assert found(source="Herald") == {"a", "c"}
    assert found(article_id=["b", "c"]) == {"b", "c"}
    assert found(published_from="2005-04") == {"b"}
    assert found(published_to="2005-03") == {"a"}  # all of March, and no undated article
    assert found(published_from="2005-01-01", source="Times") == {"b"}
    assert found(source="Nobody") == set()
    assert found(published_from="2005-04") == {"b"} and found(published_to="2005-03") == {"a"}  # asked again
    with pytest.raises(AssistantError, match="unknown filter 'colour'"):
        a.search("ferry", filters={"colour": "red"})


def test_a_filter_holding_a_nul_byte_or_a_lone_surrogate_is_one_line_naming_it(backend, tmp_path):
    a = _assistant(backend, tmp_path / "index")
    a.add([_dated(tmp_path / "news")])
    for key, value, shown in (
        ("article_id", "a\x00b", "'a\\x00b'"),
        ("source", ["Herald", "Ti\x00mes"], "'Ti\\x00mes'"),
        ("article_id", "\ud800", "'\\ud800'"),
        ("source", "\x1b[31mHerald", "'\\x1b[31mHerald'"),
    ):
        with pytest.raises(AssistantError) as e:
            a.ask("ferry strike", filters={key: value})
        # before: "PostgreSQL at ... failed while searching: PostgreSQL text fields cannot contain NUL (0x00) bytes"
        # (the embedded engine: nothing found)
        assert str(e.value) == f"filter {key} = {shown} holds a control character or a lone surrogate; send plain text"
    herald = a.search("ferry strike", k=10, filters={"source": "Herald"})
    assert {h.citations[0].article_id for h in herald} == {"a", "c"}  # the same engine answers on


class Earlier:
    """A view as a writer that read the index earlier saw it: the article hashes of then (a database view reads
    the current rows, so a slow writer is played by remembering what it read)."""

    def __init__(self, view, shas: dict[str, str]) -> None:  # noqa: ANN001
        self.view, self._shas = view, shas

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.view, name)

    def shas(self, ids=None) -> dict[str, str]:  # noqa: ANN001
        return {a: s for a, s in self._shas.items() if ids is None or a in ids}


def test_writes_add_change_remove_and_keep_another_writers_articles(backend, tmp_path, seeds_copy):
    a = _assistant(backend, tmp_path / "index")
    a.add([seeds_copy])
    stale = Earlier(a.view, a.view.shas())  # a slow writer read the index before the others wrote
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "ferry.txt").write_text("Ferry strike\n\nThe island ferry crews walked out on Monday over pay.")
    assert a.add([extra]).new == 1
    (extra / "ferry.txt").write_text("Ferry strike ends\n\nThe ferry crews went back to work on Tuesday.")
    b = _assistant(backend, tmp_path / "index")
    report, wrote = update_index(b.engine, b.folder, stale, b.settings, lambda: b.embedder, [extra])
    assert not wrote or report.new + report.changed == 0  # it saw no ferry.txt: the newer one stays
    assert "walked out on Monday" in a.article_text("ferry.txt")
    assert a.add([extra]).changed == 1
    assert "back to work on Tuesday" in a.article_text("ferry.txt")
    before = a.view.meta["passages"]
    assert a.remove(["ferry.txt", "not-there"]) == 1
    assert a.view.meta["passages"] < before and "ferry.txt" not in {x["id"] for x in a.articles()}
    assert a.search("ferry crews Tuesday", k=3) == [] or all(
        h.citations[0].article_id != "ferry.txt" for h in a.search("ferry crews Tuesday", k=3)
    )
    assert a.check(full=True)["ok"]


def test_a_failed_write_leaves_the_previous_state(backend, tmp_path, seeds_copy, monkeypatch):
    a = _assistant(backend, tmp_path / "index")
    a.add([seeds_copy])
    before = ({x["id"] for x in a.articles()}, a.view.meta["passages"], a.search(QUESTIONS[0], k=5))
    extra = tmp_path / "extra"
    extra.mkdir()
    for i in range(3):
        (extra / f"f{i}.txt").write_text(f"Ferry {i}\n\nThe ferry number {i} sailed late on Monday.")

    def broken(text: str) -> list[str]:
        raise RuntimeError("disk on fire")

    # inside the write, after its passages are stored: the engine's own BM25 terms of the new passages
    monkeypatch.setattr("assistant.segment.terms", broken)
    monkeypatch.setattr("assistant.engines.pg_write.terms", broken)
    with pytest.raises(AssistantError) as failed:
        a.add([extra])
    assert "\n" not in str(failed.value)
    monkeypatch.undo()
    again = _assistant(backend, tmp_path / "index")
    after = ({x["id"] for x in again.articles()}, again.view.meta["passages"], again.search(QUESTIONS[0], k=5))
    assert after == before
    assert again.check(full=True)["ok"]


def _by_span(a: Assistant, words: list[str]) -> dict[tuple[str, int], float]:
    """BM25 score of every passage that has a query term, keyed by (article, start) (ids differ by engine)."""
    view = a.view
    top = view.lexical_top(words, 10_000, None)
    rows = view.passages(top.ids.tolist())
    return {(rows[int(p)][0], rows[int(p)][1]): float(s) for p, s in zip(top.ids, top.scores, strict=True)}


def test_both_engines_give_the_same_numbers_and_answers(tmp_path, seeds_copy, pg_url):
    embedded = _assistant(("embedded", ""), tmp_path / "embedded")
    postgres = _assistant(("postgres", pg_url), tmp_path / "postgres")
    embedded.add([seeds_copy])
    postgres.add([seeds_copy])
    assert embedded.view.meta["passages"] == postgres.view.meta["passages"]
    for q in QUESTIONS:
        words = query_terms(q)
        e, p = _by_span(embedded, words), _by_span(postgres, words)
        assert e.keys() == p.keys() and e
        assert np.allclose([e[k] for k in e], [p[k] for k in e], rtol=1e-4, atol=1e-5)  # BM25: same formula
        stats_e = embedded.view.term_stats(words, [x["id"] for x in embedded.articles()])
        stats_p = postgres.view.term_stats(words, [x["id"] for x in postgres.articles()])
        assert stats_e.keys() == stats_p.keys()
        for t in stats_e:
            assert stats_e[t][1] == stats_p[t][1] and stats_e[t][0] == pytest.approx(stats_p[t][0], rel=1e-9)

        def shown(a: Assistant, question: str = q) -> list[tuple]:
            return [(h.citations[0].article_id, h.citations[0].char_start, h.citations[0].char_end, round(h.score, 4),
                     h.quotes) for h in a.search(question, k=8)]  # fmt: skip

        assert shown(embedded) == shown(postgres)


def test_a_postgres_index_analysed_by_an_earlier_version_answers_the_same_and_is_analysed_when_next_written(
    tmp_path, seeds_copy, pg_url
):
    import psycopg

    a = _assistant(("postgres", pg_url), tmp_path / "index")
    a.add([seeds_copy])
    before = {q: a.search(q, k=8) for q in QUESTIONS}
    assert any(h.quotes for hits in before.values() for h in hits)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as version 1 left it: no quotations stored
        conn.execute("UPDATE na_meta SET value = '1' WHERE key = 'analysis'")
        conn.execute("UPDATE na_passages SET analysis = NULL")
    old = _assistant(("postgres", pg_url), tmp_path / "index")
    assert {q: old.search(q, k=8) for q in QUESTIONS} == before  # quotations worked out from the articles
    report = old.add([seeds_copy])  # nothing new, but analysed by an earlier version: analysed again, nothing lost
    assert report.unchanged == 5 and report.embedded == 0
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM na_meta WHERE key = 'analysis'").fetchone()[0] == 2
    assert {q: old.search(q, k=8) for q in QUESTIONS} == before
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "ferry.txt").write_text("Ferry strike\n\n'We will not sail,' the union's Ann Lee said on Monday.")
    old.add([extra])
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM na_meta WHERE key = 'analysis'").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM na_passages WHERE analysis IS NULL").fetchone()[0] == 0
    stored = {h.passage_id: h.quotes for q in QUESTIONS for h in old.search(q, k=8)}  # the new article moved scores
    worked_out = {h.passage_id: h.quotes for hits in before.values() for h in hits}
    assert all(stored[p] == worked_out[p] for p in stored.keys() & worked_out.keys()) and stored.keys() & worked_out
    ferry = old.search("Who said they will not sail?", k=3)
    assert ferry[0].quotes and ferry[0].quotes[0].speaker == "Ann Lee"


def test_the_hnsw_index_answers_as_the_scan_does_on_a_small_index(backend, tmp_path, seeds_copy):
    name, url = backend
    settings = engine_settings(name, tmp_path / "index", url, min_score=0.05).replace("index", exact_max_passages=0)
    graph = Assistant(settings, embedder=HashEmbedder())
    graph.add([seeds_copy])
    scan = Assistant(engine_settings(name, tmp_path / "index", url, min_score=0.05), embedder=HashEmbedder())
    qvec = graph.embedder.encode([QUESTIONS[0]])[0]
    with graph.view.reading():
        by_graph = graph.view.dense_top(qvec, 10, None, 512)
    assert graph.view.meta["vectors"].startswith("hnsw")
    for q in QUESTIONS:
        assert [h.citations[0] for h in graph.search(q, k=5)] == [h.citations[0] for h in scan.search(q, k=5)]
    with graph.view.reading():
        filtered = graph.view.dense_top(qvec, 10, Filter.parse({"source": "nobody"}), 512)
    assert len(by_graph.ids) == 10 and len(filtered.ids) == 0


def _writer_process(url: str, folder: str, work: str) -> None:
    """A separate process indexing one folder into the database (the fake embedder: fast)."""
    import traceback

    try:
        a = Assistant(engine_settings("postgres", Path(work), url, min_score=0.05), embedder=HashEmbedder())
        a.add([folder])
    except BaseException:
        Path(work + ".error").write_text(traceback.format_exc())
        raise


def _reader_process(url: str, work: str, seconds: float, out: str) -> None:
    """A separate process reading while the writers commit, until they are done (and once more after): each read
    must see one whole state."""
    import time

    a = Assistant(engine_settings("postgres", Path(work), url, min_score=0.05), embedder=HashEmbedder())
    seen, end, done = [], time.monotonic() + seconds, Path(out + ".done")
    Path(out + ".ready").touch()
    while time.monotonic() < end and not (done.exists() and seen and seen[-1][0] == 20):
        if not a.engine.exists():
            continue
        view = a.view
        with view.reading():  # every article is one passage with "ferry" in it
            seen.append((view.meta["articles"], len(view.articles()), len(view.lexical_top(["ferri"], 99, None).ids)))
        a.search("ferry strike", k=3)
    Path(out).write_text(json.dumps(seen))


def _wait_for(path: Path, seconds: float = 60) -> None:
    import time

    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.05)


def test_writers_in_four_processes_at_once_lose_nothing_and_readers_see_whole_states(pg_url, tmp_path):
    import multiprocessing
    import time

    spawn = multiprocessing.get_context("spawn")
    folders = []
    for i in range(4):
        folder = tmp_path / f"news{i}"
        folder.mkdir()
        for j in range(5):
            (folder / f"w{i}-{j}.txt").write_text(f"Ferry {i} {j}\n\nThe ferry number {i}{j} sailed late on day {j}.")
        folders.append(folder)
    out = tmp_path / "reads.json"
    reader = spawn.Process(target=_reader_process, args=(pg_url, str(tmp_path / "r"), 180.0, str(out)))
    reader.start()
    _wait_for(Path(str(out) + ".ready"))
    writers = [spawn.Process(target=_writer_process, args=(pg_url, str(f), str(tmp_path / f"w{i}"))) for i, f in
               enumerate(folders)]  # fmt: skip
    for w in writers:
        w.start()
        time.sleep(1.5)  # commits spread over the reader's time
    for i, w in enumerate(writers):
        w.join(120)
        error = tmp_path / f"w{i}.error"
        assert w.exitcode == 0, error.read_text() if error.exists() else w.exitcode
    Path(str(out) + ".done").touch()  # the reader stops once it has seen the last state
    reader.join(120)
    a = Assistant(engine_settings("postgres", tmp_path / "x", pg_url), embedder=HashEmbedder())
    assert {x["id"] for x in a.articles()} == {f"w{i}-{j}.txt" for i in range(4) for j in range(5)}
    assert a.check(full=True)["ok"]
    reads = json.loads(out.read_text())
    # never a half-written state: the counts, the articles and their passages (one each) agree in every read
    assert reads and all(state == counted == passages for state, counted, passages in reads)
    assert len({state for state, _, _ in reads}) >= 2, reads[:3] + reads[-3:]  # it read while the writers wrote


def test_postgres_postings_blocks_merged_over_many_writes_score_as_one_build(tmp_path, seeds_copy, pg_url, monkeypatch):
    """Each write adds a block per term, merged by the log merge policy (factor 2 here, so merges happen at every
    size); removed passages stay in their blocks (na_dead) until a merge or optimize: the scores are one build's."""
    import psycopg

    from assistant.engines import pg_view

    settings = engine_settings("postgres", tmp_path / "pg", pg_url, min_score=0.05).replace("index", merge_factor=2)
    pg = Assistant(settings, embedder=HashEmbedder())
    files = sorted(seeds_copy.iterdir())
    for f in files:  # one write per article
        assert pg.add([f]).new == 1
    replaced = files[1]
    replaced.write_text(replaced.read_text(encoding="utf-8") + "\n\nThe ferry crews walked out over pay.")
    assert pg.add([replaced]).changed == 1
    assert pg.remove([files[3].name]) == 1
    one = _assistant(("embedded", ""), tmp_path / "one")
    one.add([f for f in files if f != files[3]])
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM na_dead").fetchone()[0] > 0
        most = conn.execute("SELECT max(c) FROM (SELECT count(*) AS c FROM na_blocks GROUP BY term) t").fetchone()[0]
    assert 1 < most <= 4  # 7 writes at factor 2: merged as they came, never 7 blocks

    def same() -> None:
        held = 0
        for q in [*QUESTIONS, "ferry crews pay"]:
            words = query_terms(q)
            e, p = _by_span(one, words), _by_span(pg, words)
            assert e.keys() == p.keys()
            held += bool(e)
            assert np.allclose([e[k] for k in e], [p[k] for k in e], rtol=1e-4, atol=1e-5)
            top = pg.view.lexical_top(words, 3, None)
            assert np.allclose(pg.view.lexical_scores(words, top.ids), top.scores, rtol=1e-6)
        assert held >= 4  # some questions' words were in the removed article alone

    same()
    assert pg.check(full=True)["ok"]
    narrow = {h.text for h in pg.search("ferry crews pay", k=5, filters={"article_id": [files[1].name]})}
    monkeypatch.setattr(pg_view, "ADMITTED_MAX", 0)  # a filter admitting "many": BM25's best checked in rounds
    assert {h.text for h in pg.search("ferry crews pay", k=5, filters={"article_id": [files[1].name]})} == narrow
    monkeypatch.undo()
    pg.optimize()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM na_dead").fetchone()[0] == 0
        assert (
            conn.execute("SELECT max(c) FROM (SELECT count(*) AS c FROM na_blocks GROUP BY term) t").fetchone()[0] == 1
        )
    same()
    assert pg.check(full=True)["ok"]


def test_a_rebuilt_postgres_index_never_gives_a_passage_id_twice(tmp_path, seeds_copy, pg_url):
    """Searchers remember each passage's article by its id: a rebuild (other articles, other order) goes on from the
    last id, so a server that searched before the rebuild still cites the right article after it."""
    import psycopg

    a = _assistant(("postgres", pg_url), tmp_path / "pg")
    a.add([seeds_copy])
    assert a.search(QUESTIONS[0], k=5)
    with psycopg.connect(pg_url) as conn:
        before = conn.execute("SELECT max(id) FROM na_passages").fetchone()[0]
    files = sorted(seeds_copy.iterdir())
    b = _assistant(("postgres", pg_url), tmp_path / "pg")
    assert b.add(files[::-1][:3], rebuild=True).new == 3
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT min(id) FROM na_passages").fetchone()[0] > before
    for q in QUESTIONS:
        for h in a.search(q, k=5):
            c = h.citations[0]
            assert a.article_text(c.article_id)[c.char_start : c.char_end] == h.text


def test_a_question_naming_no_time_reads_no_list_of_every_article(backend, tmp_path, monkeypatch):
    """Every article's metadata (the archive's dates) is read only for a question that names a time: at a million
    passages reading it took seconds, and the first answer after opening an index must stay quick."""
    a = _assistant(backend, tmp_path / "index")
    a.add([_dated(tmp_path / "news")])
    view = a.view

    def every_article() -> list:
        raise AssertionError("every article read")

    monkeypatch.setattr(type(view), "articles", lambda self: every_article())
    answer = a.ask("ferry strike pay")
    assert answer.found and answer.timeline  # the matching articles' dates, read for them alone
    with pytest.raises(AssertionError, match="every article read"):
        a.ask("ferry strike in March 2005")
    monkeypatch.undo()
    dated = a.ask("ferry strike in March 2005")  # read as a period, searched within it, on either engine
    assert dated.period.start == "2005-03-01" and dated.period.end == "2005-03-31"
    assert {c.article_id for h in dated.passages for c in h.citations} == {"a"}


def _reads(a: Assistant, articles: list[str]) -> list[tuple]:
    """What a searcher answers and the floor's term statistics, for every question (ids: engines differ)."""
    out = []
    for q in QUESTIONS:
        hits = a.search(q, k=5)
        with a.view.reading():
            stats = a.view.term_stats(query_terms(q), articles)
        out.append(([(h.citations[0].article_id, h.text, round(h.score, 5)) for h in hits], stats))
    return out


def test_a_postgres_searcher_that_keeps_passages_articles_follows_updates_and_removals(tmp_path, seeds_copy, pg_url):
    kept = _assistant(("postgres", pg_url), tmp_path / "kept")
    kept.add([seeds_copy])
    names = sorted(p.name for p in seeds_copy.iterdir())
    assert _reads(kept, names) and len(kept.view.engine.passage_map.article) == kept.view.meta["passages"]
    writer = _assistant(("postgres", pg_url), tmp_path / "writer")  # another process's engine
    changed = seeds_copy / names[0]
    changed.write_text(changed.read_text(encoding="utf-8") + "\n\nZelensky spoke to Russians about the prisoner "
                       "swap and Medvedchuk again on Friday.\n", encoding="utf-8")  # fmt: skip
    assert writer.add([seeds_copy]).changed == 1
    writer.remove([names[1]])
    fresh = _assistant(("postgres", pg_url), tmp_path / "fresh")
    asked = _assistant(("postgres", pg_url), tmp_path / "asked")
    asked.view.engine.passage_map.limit = 0  # too large to map: the database is asked every time
    asked.view.engine.vector_copy.limit = 0  # nor its vectors copied: pgvector scores them
    want = _reads(fresh, names)
    assert _reads(kept, names) == want == _reads(asked, names)
    assert want[0][1]["zelenski"][1] >= {names[0]} and names[1] not in set().union(*(s[1] for s in want[0][1].values()))
    copy = kept.view.engine.vector_copy
    assert len(copy.ids) > kept.view.meta["passages"]  # the removed and replaced passages' vectors are still held
    assert not any(h[0] == names[1] for hits, _ in _reads(kept, names) for h in hits)
    writer.optimize()  # the removed passages are dropped for good (na_dead emptied): the copy must notice
    assert _reads(kept, names) == _reads(_assistant(("postgres", pg_url), tmp_path / "after"), names) == want
    (seeds_copy / "late.txt").write_text("Late news\n\nThe ferry to the island sailed again on Friday.\n", "utf-8")
    writer.add([seeds_copy / "late.txt"])  # a newer state, whose removed passages are no longer listed
    got = _reads(kept, names)
    assert got == _reads(_assistant(("postgres", pg_url), tmp_path / "later"), names) and got != want
    assert len(copy.ids) == kept.view.meta["passages"]  # read again: only live passages held


LISTED = [
    {"id": "a", "title": "Ferry strike", "text": "The island ferry crews walked out over pay.", "source": "Herald",
     "published": "2005-03-14"},
    {"id": "b", "title": "Ferry talks resume", "text": "Talks on the ferry strike resumed on Friday.",
     "source": "The Times", "published": "2005-04-02"},
    {"id": "c", "title": "Bridge plan", "text": "A bridge could replace the ferry, the council said.",
     "source": "Herald"},
    {"id": "d", "title": "ZÜRICH ferry timetable", "text": "The lake ferries of Zürich keep their winter times.",
     "source": "Neue Zürcher Zeitung", "published": "2005-03-14"},
]  # fmt: skip
LATER = [
    {"id": "e", "title": "Port news", "text": "The port of Ellery took its first container ship.",
     "source": "herald tribune", "published": "2004-12-31T23:00:00"},
    {"id": "f", "title": "Another undated story", "text": "Nobody dated this story about the harbour."},
]  # fmt: skip


def test_the_archive_lists_articles_newest_first_and_searches_title_source_and_dates(backend, tmp_path):
    """The chat's archive panel: a page of articles newest first, searched in the engine (a SQL WHERE on
    PostgreSQL), the same rows and counts on both engines; written in two writes (two segments when embedded)."""
    a = _assistant(backend, tmp_path / "index")
    news = tmp_path / "news"
    news.mkdir()
    for name, rows in (("first.jsonl", LISTED), ("later.jsonl", LATER)):
        (news / name).write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
        assert a.add([news / name]).new == len(rows)

    def ids(**query: object) -> tuple[list[str], int]:
        rows, total = a.list_articles(**query)
        return [r["id"] for r in rows], total

    rows, total = a.list_articles()
    assert [r["id"] for r in rows] == ["b", "a", "d", "e", "c", "f"] and total == 6  # undated last, ties by id
    assert rows[1] == {"id": "a", "title": "Ferry strike", "source": "Herald", "published": "2005-03-14",
                       "path": str(news / "first.jsonl"), "url": "", "passages": 1}  # fmt: skip
    assert sum(r["passages"] for r in rows) == a.view.meta["passages"]
    assert ids(title="ferry") == (["b", "a", "d"], 3)
    assert ids(title="  STRIKE   ferry ") == (["a"], 1)  # every word, any order, any case
    assert ids(title="zürich") == (["d"], 1) and ids(title="ZÜRI") == (["d"], 1)  # beyond ASCII too
    assert ids(source="herald") == (["a", "e", "c"], 3)
    assert ids(source="zürcher") == (["d"], 1) and ids(source="Nobody") == ([], 0)
    assert ids(since="2005-03") == (["b", "a", "d"], 3)
    assert ids(until="2005-03") == (["a", "d", "e"], 3)  # all of March; no undated article
    assert ids(since="2005-03-15", until="2005-04") == (["b"], 1)
    assert ids(title="ferry", source="herald", since="2005") == (["a"], 1)
    assert ids(offset=2, limit=2) == (["d", "e"], 6)
    assert ids(offset=10) == ([], 6)
    assert ids(title="%") == ([], 0) and ids(title="_") == ([], 0)  # no wildcards
    for bad, message in (
        ({"since": "2005-13"}, "since = '2005-13' is not a date"),
        ({"until": "yesterday"}, "until = 'yesterday' is not a date"),
        ({"limit": 0}, "limit 1 to 200"),
        ({"offset": -1}, "offset must be 0 or more"),
    ):
        with pytest.raises(AssistantError, match=message):
            a.list_articles(**bad)
    assert a.remove(["a"]) == 1
    assert ids(title="ferry") == (["b", "d"], 2) and ids()[1] == 5
