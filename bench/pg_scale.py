"""Scale run into PostgreSQL: an index of at least a million passages; search latency, recall@10, load, disk, memory.

    pip install -e '.[postgres]'
    python bench/pg_scale.py INDEX_DIR [--size 1000000] [--json OUT]

INDEX_DIR is an embedded index (e.g. BBC News, built by bench/engines.py or `assistant index`). Its articles,
passages and vectors are written into a fresh database through the engine; then copies are made in the server
until there are at least --size passages: each copy of a passage has its text and BM25 postings (so term
statistics grow as in a real archive: every document frequency times the number of copies) and a perturbed
vector (the original plus Gaussian noise of norm 0.5, renormalised, as bench/scale.py does; cosine to the
original about 0.9). Indexes are built after the copies (as a bulk load should be). Then, in a fresh process, the
engine answers the questions of eval/bbc.jsonl (`Assistant.search`, k=10, question embedding included), the
HNSW top 10 is compared with an exact scan, and 10 new articles are added with `assistant index`.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.engines import pg_blocks  # noqa: E402
from bench.engines import _env, copy_into_postgres, pg_env, run, server_rss_mb, timed_searches  # noqa: E402
from bench.run import QUESTIONS, pct, ten_new_articles  # noqa: E402

NOISE_ROWS = 4096


def grow(url: str, size: int) -> dict[str, float]:
    """Copy the database's passages in the server until there are at least `size`; seconds per step."""
    import psycopg

    from assistant.engines.pg_connect import vector_text
    from assistant.vectors import EF_CONSTRUCTION

    timings: dict[str, float] = {}

    def step(name: str, sql: str, params: tuple = ()) -> None:
        t = time.perf_counter()
        conn.execute(sql, params)
        timings[name] = round(time.perf_counter() - t, 1)
        print(f"   {name}: {timings[name]} s", flush=True)

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '6GB'")
        base, top, dim = conn.execute(
            "SELECT count(*), max(id), vector_dims(min(embedding::text)::vector) FROM na_passages"
        ).fetchone()
        copies = math.ceil(size / base) - 1
        stride = top + 1
        rng = np.random.default_rng(11)
        noise = rng.standard_normal((NOISE_ROWS, dim)).astype(np.float32) * (0.5 / np.sqrt(dim))
        conn.execute(f"CREATE UNLOGGED TABLE noise (i int PRIMARY KEY, v vector({dim}))")
        with conn.cursor().copy("COPY noise FROM STDIN") as copy:
            for i, v in enumerate(noise):
                copy.write_row((i, vector_text(v)))
        conn.execute("DROP INDEX na_passages_hnsw")
        step(
            "articles",
            "INSERT INTO na_articles SELECT a.id || '~' || c, title, text, path, source, url, published, sha, root, "
            "added FROM na_articles a, generate_series(1, %s) c",
            (copies,),
        )
        step(
            "passages",
            "INSERT INTO na_passages SELECT p.article_id || '~' || c, p.id + c * %s, seq, char_start, char_end, "
            "n_tokens, length, text, analysis, l2_normalize(p.embedding + n.v) FROM na_passages p "
            "CROSS JOIN generate_series(1, %s) c JOIN noise n ON n.i = (p.id * 131 + c) %% %s WHERE p.id <= %s",
            (stride, copies, NOISE_ROWS, top),
        )
        t = time.perf_counter()
        with conn.transaction():
            seed = pg_blocks.read(conn.execute("SELECT term, base, n, width, data FROM na_blocks", binary=True))
            conn.execute("DELETE FROM na_blocks")
            pg_blocks.copy_blocks(conn, ((term, _tiled(p, copies, stride)) for term, p in seed.items()))
        timings["postings"] = round(time.perf_counter() - t, 1)
        print(f"   postings: {timings['postings']} s", flush=True)
        conn.execute("UPDATE na_terms SET df = df * %s", (copies + 1,))
        conn.execute(
            "UPDATE na_state SET generation = generation + 1, articles = articles * %s, passages = passages * %s, "
            "total_length = total_length * %s",
            (copies + 1, copies + 1, copies + 1),
        )
        conn.execute("SELECT setval('na_passage_ids', %s)", (top + copies * stride + 1,))
        conn.execute("DROP TABLE noise")
        m = json.loads(conn.execute("SELECT value::text FROM na_meta WHERE key = 'vectors'").fetchone()[0])[4:]
        step(
            "HNSW index",
            f"CREATE INDEX na_passages_hnsw ON na_passages USING hnsw (embedding vector_ip_ops) "
            f"WITH (m = {int(m)}, ef_construction = {EF_CONSTRUCTION})",
        )
        step("vacuum analyze", "VACUUM ANALYZE")
    return timings


def _tiled(p: pg_blocks.TermBlock, copies: int, stride: int) -> pg_blocks.TermBlock:
    """A term's postings with those of each copy after them (copy c's ids are the original's plus c * stride)."""
    n = copies + 1
    ids = (p.ids[None, :] + stride * np.arange(n, dtype=np.int64)[:, None]).ravel()
    return pg_blocks.TermBlock(ids, np.tile(p.tfs, n), np.tile(p.lengths, n))


def disk(url: str) -> dict[str, float]:
    """Megabytes on disk: the database, and each table with its indexes."""
    import psycopg

    with psycopg.connect(url) as conn:
        out = {"database": conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20}
        for table in ("na_passages", "na_blocks", "na_articles", "na_terms"):
            out[table] = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0] / 2**20
        out["hnsw index"] = conn.execute("SELECT pg_relation_size('na_passages_hnsw')").fetchone()[0] / 2**20
    return {k: round(v) for k, v in out.items()}


def search_worker(index_dir: str, out_json: str, ef_values: list[int]) -> None:
    """In a fresh process (environment: the postgres engine): search latency, recall@10 of HNSW against exact."""
    from assistant import Assistant
    from bench.peers import peak_rss_bytes

    a = Assistant.load(index_dir=index_dir)
    questions = [json.loads(x)["question"] for x in QUESTIONS.read_text().splitlines() if x.strip()][:100]
    times = timed_searches(a, questions)
    searching_rss = peak_rss_bytes() / 2**20  # before the recall check, which embeds all questions at once
    view, vectors = a.view, a.embedder.encode(questions)
    exact, recall, dense_ms = [], {}, {}
    with view.engine.reader() as conn:
        for v in vectors:
            sql = "SELECT id FROM na_passages ORDER BY (embedding <#> %s::vector) + 0 LIMIT 10"
            exact.append({r[0] for r in conn.execute(sql, (view_text(v),))})
    for ef in ef_values:
        got, spent = [], []
        for v in vectors:
            t = time.perf_counter()
            with view.reading():
                top = view.dense_top(v, 10, None, ef)
            spent.append(time.perf_counter() - t)
            got.append(set(top.ids.tolist()))
        recall[ef] = float(np.mean([len(g & e) / 10 for g, e in zip(got, exact, strict=True)]))
        dense_ms[ef] = pct(spent, 50)
    out = {
        "search_p50_ms": pct(times, 50),
        "search_p95_ms": pct(times, 95),
        "recall_at_10": recall,
        "dense_top10_p50_ms": dense_ms,
        "client_rss_mb": searching_rss,
    }
    Path(out_json).write_text(json.dumps(out), encoding="utf-8")


def view_text(v: np.ndarray) -> str:
    """A query vector as pgvector text."""
    from assistant.engines.pg_connect import vector_text

    return vector_text(v)


def main() -> None:
    """Load, grow, measure, print."""
    import psycopg

    from assistant import pgserver

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("index_dir", help="an embedded index whose passages seed the run (its encoder embeds questions)")
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--ef", default="100,512", help="hnsw.ef_search values for recall (512: retrieval.hnsw_ef_search)")
    p.add_argument("--workdir", default="/tmp/bench-pg-scale", help="scratch folder (the server user must enter it)")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--reuse", action="store_true", help="measure the database an earlier run loaded (no loading)")
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    server = pgserver.start(work / "pg", password="scale")
    url = server.url.rsplit("/", 1)[0] + "/scale"
    res: dict = {"size": args.size}
    if not args.reuse:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS scale WITH (FORCE)")
            conn.execute("CREATE DATABASE scale")
        t = time.perf_counter()
        res["seed_write"] = copy_into_postgres(Path(args.index_dir), url)
        print(f"seed passages written: {res['seed_write']}", flush=True)
        res["grow_seconds"] = grow(url, args.size)
        res["load_seconds"] = round(time.perf_counter() - t, 1)
    with psycopg.connect(url) as conn:
        res["passages"] = conn.execute("SELECT passages FROM na_state").fetchone()[0]
    res["disk_mb"] = disk(url)
    out = work / "search.json"
    ef = [int(x) for x in args.ef.split(",")]
    code = f"from bench.pg_scale import search_worker; search_worker({args.index_dir!r}, {str(out)!r}, {ef!r})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(**pg_env(url)), check=True)
    res.update(json.loads(out.read_text()))
    res["server_rss_mb"] = server_rss_mb(server.data)
    new = work / "new"
    ten_new_articles("bbc", new)
    for f in new.glob("*.txt"):  # new to the database even when an earlier run added these
        f.write_text(f.read_text(encoding="utf-8") + f"\n\nRun of {time.ctime()}.", encoding="utf-8")
    res["add_10_seconds"] = run(["index", str(new), "--index-dir", args.index_dir, "--quiet"], **pg_env(url))
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1), encoding="utf-8")
    server.stop()


if __name__ == "__main__":
    main()
