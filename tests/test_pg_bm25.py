"""PostgreSQL's BM25 top k by the threshold algorithm gives exactly what summing every posting gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.analysis import query_terms
from assistant.engines import pg_bm25

from .conftest import engine_settings
from .fakes import HashEmbedder

QUESTIONS = [
    "What did Zelensky say to Russians?",
    "Russia war Ukraine said",
    "the ferry strike",
    "prisoner swap Medvedchuk Azov",
    "protest arrests police",
    "said",
]


def _short_articles(folder: Path) -> Path:
    """Forty one-sentence articles: passages far shorter than the seeds'."""
    folder.mkdir()
    words = ["ferry", "strike", "Russia", "war", "said", "police", "protest", "Ukraine", "talks", "pay"]
    rows = [
        {"id": f"s{i}", "title": f"Brief {i}", "text": f"{words[i % 10]} {words[(i * 3) % 10]} {words[(i * 7) % 10]}."}
        for i in range(40)
    ]
    (folder / "briefs.jsonl").write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return folder


@pytest.mark.parametrize("short_first", [False, True], ids=["average-falls", "average-rises"])
def test_threshold_top_k_equals_the_plain_sum(pg_url, tmp_path, seeds_copy, monkeypatch, short_first):
    a = Assistant(engine_settings("postgres", tmp_path / "index", pg_url), embedder=HashEmbedder())
    short = _short_articles(tmp_path / "briefs")
    for batch in [short, seeds_copy] if short_first else [seeds_copy, short]:
        a.add([batch])  # the impacts are computed at the first write's average length, then it moves
    view = a.view
    monkeypatch.setattr(pg_bm25, "FIRST_DEPTH", 1)  # many rounds, each ending on its bound
    rounds, early = [], []
    real_rows = view._rows
    monkeypatch.setattr(view, "_rows", lambda sql, p=None: rounds.append(sql) or real_rows(sql, p))
    with view.reading():
        reference, (_, average) = view._reference(), view._stats()
        assert reference and abs(average - reference) > 1  # the bound is tested away from rho = 0, both ways
        assert (average > reference) == short_first
        for question in QUESTIONS:
            query = view._query(query_terms(question))
            for k in (1, 3, 10, 200):
                plain = pg_bm25.summed(view._rows, query, k, "true", {}, "")
                rounds.clear()
                fast = pg_bm25.top(view._rows, query, k, float(reference))
                assert [r[0] for r in fast] == [r[0] for r in plain], (question, k)
                assert [r[2] for r in fast] == pytest.approx([r[2] for r in plain], rel=1e-6)
                read_all = 1 + next(r for r in range(64) if 8**r >= max(query["dfs"]))
                early.append(len(rounds) < read_all)
    assert sum(early) >= 3, early  # the bound stopped it before it read every posting
