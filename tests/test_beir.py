"""BEIR reading and metrics, checked against hand-computed values."""

import json
import math

import pytest

from assistant.beir import evaluate_beir, is_beir, load_benchmark, ndcg_at, recall_at
from assistant.types import AssistantError


def test_ndcg_matches_a_hand_computed_case():
    # relevant d1 at rank 2 and d2 at rank 4: DCG = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3)
    ranked = ["d3", "d1", "d9", "d2"]
    rel = {"d1": 1, "d2": 1}
    assert ndcg_at(ranked, rel, 10) == pytest.approx((0.630930 + 0.430677) / 1.630930, abs=1e-6)
    assert ndcg_at(ranked, rel, 10) == pytest.approx(0.650920, abs=1e-6)
    assert ndcg_at(ranked, rel, 2) == pytest.approx(0.630930 / 1.630930, abs=1e-6)  # d2 falls outside
    assert ndcg_at(["d1", "d2"], rel) == 1.0
    assert ndcg_at(["x"], rel) == 0.0
    # graded: gain is the grade; ideal order puts the grade-2 doc first
    assert ndcg_at(["a", "b"], {"a": 1, "b": 2}) == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_recall_counts_relevant_docs_in_the_first_k():
    rel = {"d1": 1, "d2": 1, "d0": 0}
    assert recall_at(["d3", "d1", "d9", "d2"], rel, 100) == 1.0
    assert recall_at(["d3", "d1", "d9", "d2"], rel, 2) == 0.5
    assert recall_at([], rel) == 0.0


def _write(folder, qrels_text):
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": d, "title": d.upper(), "text": f"text of {d}"}) for d in ("d1", "d2", "d3"))
    )
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": f"query {q}", "metadata": {}}) for q in ("q1", "q2", "q3"))
    )
    (folder / "qrels" / "test.tsv").write_bytes(qrels_text.encode())


def test_reads_a_beir_folder_with_crlf_qrels(tmp_path):
    _write(tmp_path, "query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq2\td2\t1\r\nq2\td3\t1\r\n")
    assert is_beir(tmp_path) and not is_beir(tmp_path / "qrels")
    bench = load_benchmark(tmp_path)
    assert bench.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}}  # no stray "\r" in ids or grades
    assert bench.queries == {"q1": "query q1", "q2": "query q2"}  # only judged queries

    ranks = {"query q1": ["d1", "d2"], "query q2": ["d3", "d1"]}
    result = evaluate_beir(lambda text: ranks[text], bench)
    assert result.queries == 2
    assert result.per_query == {"q1": 1.0, "q2": pytest.approx(1 / (1 + 1 / math.log2(3)))}
    assert result.recall_at_100 == pytest.approx(0.75)
    assert result.ndcg_at_10 == pytest.approx((1.0 + 1 / (1 + 1 / math.log2(3))) / 2)


def test_bad_beir_files_are_named(tmp_path):
    _write(tmp_path, "query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(AssistantError, match=r"test.tsv line 2"):
        load_benchmark(tmp_path)
    with pytest.raises(AssistantError, match=r"dev.tsv not found \(splits here: test\)"):
        load_benchmark(tmp_path, "dev")
    (tmp_path / "qrels" / "test.tsv").write_text("q9\td1\t1\n")
    with pytest.raises(AssistantError, match=r"no query 'q9'"):
        load_benchmark(tmp_path)
