"""Scale run: the vector index from 10^4 to 10^6 passages, exact against HNSW (latency, recall@10, memory, load).

    python bench/scale.py INDEX_DIR [INDEX_DIR ...] [--sizes 100000,300000,1000000] [--json OUT]

The vectors are the real passage vectors of the given indexes (e.g. the BBC and Reuters indexes the speed
benchmark builds), topped up with perturbed copies (a real vector plus Gaussian noise, renormalised; cosine to
its original about 0.9) to reach each size. Queries are real questions embedded by the index's ONNX encoder
plus perturbed passages. Each size is built and searched in its own process, so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = ROOT / "eval" / "bbc.jsonl"
N_QUERIES = 200
K = 10
DEPTH = 50  # what a search takes from the vector index (retrieval.candidates) before fusion


def real_vectors(index_dirs: list[str]) -> np.ndarray:
    """Every passage vector of the given indexes."""
    import faiss

    from assistant.store import Store

    parts = []
    for d in index_dirs:
        store = Store(d)
        gen = store.dir / store.manifest()["generation"]
        index = faiss.read_index(str(gen / "vectors.faiss"))
        ids = faiss.vector_to_array(index.id_map)
        parts.append(index.reconstruct_batch(ids))
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32)


def perturbed(base: np.ndarray, n: int, seed: int, noise: float = 0.5) -> np.ndarray:
    """n perturbed copies of random rows of `base`, unit length."""
    rng = np.random.default_rng(seed)
    rows = base[rng.integers(0, len(base), n)]
    rows = rows + rng.standard_normal(rows.shape, dtype=np.float32) * (noise / np.sqrt(base.shape[1]))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return rows.astype(np.float32)


def queries(index_dir: str, base: np.ndarray) -> np.ndarray:
    """Real questions through the index's encoder (its own or the shared cache's), and perturbed passages: N_QUERIES
    in all."""
    from assistant import Assistant

    encoder = Assistant.load(index_dir=index_dir).embedder
    texts = [json.loads(line)["question"] for line in QUESTIONS.read_text().splitlines() if line.strip()]
    asked = encoder.encode(texts[: N_QUERIES // 2]) if encoder is not None else np.zeros((0, base.shape[1]))
    return np.vstack([asked, perturbed(base, N_QUERIES - len(asked), seed=7, noise=1.0)]).astype(np.float32)


def rss_mb() -> float:
    """Peak resident memory of this process's program so far, in MiB."""
    from bench.peers import peak_rss_bytes

    return peak_rss_bytes() / 2**20


def measure(vectors_file: str, queries_file: str, size: int, kind: str, ef_values: list[int]) -> dict:
    """Build one index of `size` vectors, save, reload and search it; runs in a fresh process."""
    import faiss

    from assistant.vectors import build_vector_index, search_params

    vectors = np.load(vectors_file, mmap_mode="r")[:size]
    vectors = np.ascontiguousarray(vectors)
    qs = np.load(queries_file)
    truth = np.load(queries_file.replace(".npy", f"-truth-{size}.npy"))
    ids = np.arange(size, dtype=np.int64)
    exact_max = size if kind == "flat" else 0
    t = time.perf_counter()
    index = build_vector_index(vectors, ids, exact_max, neighbors=32)
    build = time.perf_counter() - t
    del vectors
    with tempfile.TemporaryDirectory(dir=os.environ.get("SCALE_TMP")) as tmp:
        path = f"{tmp}/v.faiss"
        faiss.write_index(index, path)
        size_mb = os.path.getsize(path) / 1e6
        del index
        t = time.perf_counter()
        index = faiss.read_index(path)
        load = time.perf_counter() - t
    out = {"size": size, "kind": kind, "build_s": build, "load_s": load, "file_mb": size_mb, "runs": []}
    for ef in ef_values if kind != "flat" else [0]:
        params = search_params(index, None, ef)
        for depth in (K, DEPTH) if kind != "flat" else (K,):
            lat, found = [], []
            for q in qs:
                t = time.perf_counter()
                _, labels = index.search(q.reshape(1, -1), depth, params=params)
                lat.append(time.perf_counter() - t)
                found.append(labels[0][:K])  # exact scores, best first: the top 10 of what was found
            recall = float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)]))
            p50, p95 = 1000 * np.median(lat), 1000 * np.percentile(lat, 95)
            out["runs"].append({"ef_search": ef, "depth": depth, "p50_ms": p50, "p95_ms": p95, "recall": recall})
    out["peak_rss_mb"] = rss_mb()
    return out


def main() -> None:
    """Build each size in its own process and print a table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("index_dirs", nargs="+", help="indexes whose passage vectors seed the run")
    p.add_argument("--sizes", default="10000,100000,300000,1000000")
    p.add_argument("--ef", default="128,256,512", help="HNSW efSearch values to try")
    p.add_argument("--flat-max", type=int, default=1_000_000, help="largest size also searched exactly (flat)")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    efs = [int(e) for e in args.ef.split(",")]
    import faiss

    with tempfile.TemporaryDirectory(dir=os.environ.get("SCALE_TMP")) as tmp:
        base = real_vectors(args.index_dirs)
        threads = faiss.omp_get_max_threads()
        print(f"{len(base)} real passage vectors from {', '.join(args.index_dirs)}; {threads} threads")
        top = max(sizes)
        extra = perturbed(base, max(0, top - len(base)), seed=1)
        allv = np.vstack([base, extra])[:top]
        rng = np.random.default_rng(3)
        allv = allv[rng.permutation(len(allv))]  # real and perturbed mixed at every size
        vfile, qfile = f"{tmp}/vectors.npy", f"{tmp}/queries.npy"
        np.save(vfile, allv)
        qs = queries(args.index_dirs[0], base)
        np.save(qfile, qs)
        for size in sizes:  # exact neighbours, by brute force
            flat = faiss.IndexFlatIP(allv.shape[1])
            flat.add(allv[:size])
            np.save(qfile.replace(".npy", f"-truth-{size}.npy"), flat.search(qs, K)[1])
            del flat
        del allv, extra
        results = []
        for size in sizes:
            for kind in ("flat", "hnsw"):
                if kind == "flat" and size > args.flat_max:
                    continue
                code = (
                    f"import json, sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'bench')!r}]; "
                    "from scale import measure; "
                    f"print(json.dumps(measure({vfile!r}, {qfile!r}, {size}, {kind!r}, {efs!r})))"
                )
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                results.append(r)
                for run in r["runs"]:
                    ef = f"ef {run['ef_search']:>4} top {run['depth']:>2}" if kind == "hnsw" else "exact" + " " * 12
                    print(
                        f"{size:>9,} {kind:<5} {ef}  p50 {run['p50_ms']:7.2f} ms  p95 {run['p95_ms']:7.2f} ms  "
                        f"recall@10 {run['recall']:.3f}  build {r['build_s']:6.1f} s  load {r['load_s']:5.2f} s  "
                        f"file {r['file_mb']:7.1f} MB  peak RSS {r['peak_rss_mb']:7.0f} MB",
                        flush=True,
                    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
