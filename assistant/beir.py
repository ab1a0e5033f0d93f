"""BEIR-format benchmarks: read corpus, queries and qrels; score document rankings by nDCG@10 and Recall@100."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .types import AssistantError

FILES = ("corpus.jsonl", "queries.jsonl", "qrels")


def is_beir(path: str | Path) -> bool:
    """Whether a path is a BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/)."""
    p = Path(path)
    return p.is_dir() and all((p / f).exists() for f in FILES)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()  # splitlines drops the qrels' "\r\n" too
    except OSError as e:
        raise AssistantError(f"cannot read {path}: {e.strerror or e}") from None


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Relevance judgments {query id: {doc id: grade}} from a BEIR qrels TSV (header, then query, doc, score)."""
    p = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    for n, line in enumerate(_read_lines(p), 1):
        cols = line.strip().split("\t")
        if n == 1 and cols[0] == "query-id" or not line.strip():
            continue
        try:
            qid, doc, grade = cols
            qrels.setdefault(qid, {})[doc] = int(grade)
        except ValueError:
            raise AssistantError(f"{p} line {n}: expected 'query-id<TAB>corpus-id<TAB>score'") from None
    return qrels


def load_queries(path: str | Path, ids: Sequence[str] | set[str] | None = None) -> dict[str, str]:
    """Query texts {id: text} from a BEIR queries.jsonl, only those in `ids` when given."""
    p = Path(path)
    out = {}
    for n, line in enumerate(_read_lines(p), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            qid, text = str(obj["_id"]), str(obj["text"])
        except (ValueError, KeyError, TypeError):
            raise AssistantError(f'{p} line {n}: expected {{"_id": ..., "text": ...}}') from None
        if ids is None or qid in ids:
            out[qid] = text
    return out


@dataclass(frozen=True)
class Benchmark:
    """A BEIR dataset's split: the corpus file, the queries that have judgments, and the judgments."""

    name: str
    corpus: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_benchmark(folder: str | Path, split: str = "test") -> Benchmark:
    """Read a BEIR folder's split; names the missing file or query."""
    p = Path(folder)
    qrels_path = p / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        have = ", ".join(sorted(f.stem for f in (p / "qrels").glob("*.tsv"))) or "none"
        raise AssistantError(f"{qrels_path} not found (splits here: {have})")
    qrels = load_qrels(qrels_path)
    queries = load_queries(p / "queries.jsonl", set(qrels))
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise AssistantError(f"{p / 'queries.jsonl'} has no query '{missing[0]}' (judged in {qrels_path})")
    return Benchmark(p.resolve().name, p / "corpus.jsonl", queries, qrels)


def ndcg_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k of a ranked list of doc ids, with graded gains as in trec_eval (gain = grade, log2 discount)."""
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant docs found in the first k."""
    rel = {d for d, g in relevant.items() if g > 0}
    return len(rel.intersection(ranked[:k])) / len(rel) if rel else 0.0


@dataclass
class BeirResult:
    """Mean nDCG@10 and Recall@100 over a benchmark's queries."""

    name: str
    queries: int = 0
    ndcg_at_10: float = 0.0
    recall_at_100: float = 0.0
    per_query: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output (without the per-query scores)."""
        scores = {"ndcg@10": self.ndcg_at_10, "recall@100": self.recall_at_100}
        return {"benchmark": self.name, "queries": self.queries, **scores}

    def lines(self) -> list[str]:
        """The report, one metric a line."""
        return [
            f"benchmark     {self.name}, {self.queries} queries (a document scores by its best passage)",
            f"nDCG@10       {self.ndcg_at_10:.4f}",
            f"Recall@100    {self.recall_at_100:.4f}",
        ]


def evaluate_beir(rank: Callable[[str], Sequence[str]], bench: Benchmark, progress: bool = False) -> BeirResult:
    """Rank documents for every query with `rank(text) -> doc ids, best first` and score the lists."""
    from tqdm import tqdm

    result = BeirResult(bench.name, len(bench.queries))
    recalls = []
    for qid in tqdm(sorted(bench.queries), desc="queries", unit="q", disable=not progress):
        ranked = [d for d in rank(bench.queries[qid]) if d != qid]  # BEIR drops a query's own id
        result.per_query[qid] = ndcg_at(ranked, bench.qrels[qid], 10)
        recalls.append(recall_at(ranked, bench.qrels[qid], 100))
    if recalls:
        result.ndcg_at_10 = sum(result.per_query.values()) / len(recalls)
        result.recall_at_100 = sum(recalls) / len(recalls)
    return result
