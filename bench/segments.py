"""Archive scale for the embedded engine: adding and removing 10 articles in indexes of about 10k, 100k and 1M
passages (seconds, bytes written), opening one and answering a first question (seconds, memory), merging.

    python bench/segments.py BBC_INDEX [--sizes 10000,100000,1000000] [--before 100000] [--json OUT]

BBC_INDEX: an index of the BBC corpus built with the real model (`assistant index ../shared/corpora/bbc-news/bbc
--index-dir BBC_INDEX`; its encoder is used to embed the 10 new articles). Each size is that index's articles copied
with new ids ("c003/business/001.txt": real text, so BM25 is real), the copies' vectors perturbed copies of the
real ones (cosine about 0.9 to their originals), written as segments and merged by `optimize` into one (an HNSW
graph above index.exact_max_passages). Each measurement runs in a fresh process.

"Before" is the previous version (format 1: each write copied the SQLite file and rebuilt BM25 over every
passage), checked out from git (--old-commit) and run on an index of the same articles that it wrote itself, up to
the --before size (its build at a million takes long).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OLD_COMMIT = "6b758e1"  # the last version with format-1 indexes
QUESTION = "What did the chancellor say about the economy?"
NEW_ARTICLES = 10


def make_index(src: Path, dest: Path, copies: int, seed: int = 7) -> dict:
    """An index of `copies` copies of `src`'s articles (copy 0 as it is), one segment per copy, then merged."""
    from assistant.checksums import describe
    from assistant.engines.embedded import EmbeddedEngine
    from assistant.generation import write_atomic
    from assistant.store import Store

    manifest = Store(src).manifest()
    assert manifest.get("format") == 2 and len(manifest["segments"]) == 1, "optimize the BBC index first"
    base = src / manifest["segments"][0]["name"]
    n = manifest["segments"][0]["passages"]
    ids = np.load(base / "ids.npy")
    span = int(ids.max()) + 1
    vectors = np.load(base / "vectors.npy")
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True)
    if (src / "encoder").is_dir():  # an index made by an earlier version (later ones share the encoder cache)
        shutil.copytree(src / "encoder", dest / "encoder")
    entries = []
    for c in range(copies):
        folder = dest / f"seg-{c + 1:06d}"
        folder.mkdir()
        for f in base.iterdir():
            if f.name not in ("index.sqlite", "ids.npy", "vectors.npy", "articles.json"):
                shutil.copy(f, folder / f.name)
        shutil.copy(base / "index.sqlite", folder / "index.sqlite")
        if c:
            import sqlite3

            with sqlite3.connect(folder / "index.sqlite") as db:
                db.execute("UPDATE articles SET id = ? || id", (f"c{c:03d}/",))
                db.execute("UPDATE passages SET article_id = ? || article_id, id = id + ?", (f"c{c:03d}/", c * span))
            noise = rng.normal(0, 0.5 / math.sqrt(vectors.shape[1]), vectors.shape).astype(np.float32)
            copy = vectors + noise
            copy /= np.linalg.norm(copy, axis=1, keepdims=True)
        else:
            copy = vectors
        np.save(folder / "ids.npy", ids + c * span)
        np.save(folder / "vectors.npy", copy.astype(np.float32))
        names = json.loads((base / "articles.json").read_text())
        (folder / "articles.json").write_text(json.dumps([f"c{c:03d}/{a}" if c else a for a in names]))
        entries.append({"name": folder.name, "passages": n, "articles": manifest["articles"], "vectors": "flat",
                        "files": describe(folder)})  # fmt: skip
    made = {**manifest, "generation": "gen-000001", "segments": entries, "passages": n * copies,
            "articles": manifest["articles"] * copies, "next_id": copies * span + 1, "next_segment": copies + 1,
            "roots": []}  # fmt: skip
    write_atomic(dest / "manifest.json", json.dumps(made).encode())
    started = time.perf_counter()
    EmbeddedEngine(dest).optimize(100_000, 32)
    return {"passages": n * copies, "merge_s": time.perf_counter() - started}


def new_articles(folder: Path, corpus: Path, tag: str) -> list[str]:
    """NEW_ARTICLES real BBC articles as new files (new ids, a line added so that none is a copy); their ids."""
    folder.mkdir(parents=True, exist_ok=True)
    picked = sorted((corpus / "sport").glob("*.txt"))[:NEW_ARTICLES]
    for f in picked:
        text = f.read_text(encoding="latin-1")
        (folder / f"{tag}-{f.name}").write_text(text + f"\nUpdated ({tag}).\n", encoding="utf-8")
    return sorted(p.name for p in folder.iterdir())


CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from assistant import Assistant
from assistant.config import Settings
what, index, arg = sys.argv[2], sys.argv[3], sys.argv[4]
def wchar():
    return int(next(l.split()[1] for l in open('/proc/self/io') if l.startswith('wchar')))
a = Assistant(Settings().replace("index", dir=index))
out = {}
if what == "open":
    started = time.perf_counter()
    _ = a.view
    out["open_s"] = time.perf_counter() - started
    out["found"] = bool(a.ask(arg).found)
    out["first_answer_s"] = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(5):
        a.ask(arg)
    out["next_answer_s"] = (time.perf_counter() - started) / 5
    # this process's peak (VmHWM): ru_maxrss would carry the parent's peak over from before exec
    out["rss_mb"] = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM"))) / 1024
else:
    _ = a.view
    if what == "add":
        warm, arg = json.loads(arg)
        a.add([warm])  # one article first: the encoder loads; the 10 are timed after it
    before, started = wchar(), time.perf_counter()
    a.add([arg]) if what == "add" else a.remove(json.loads(arg))
    out["seconds"] = time.perf_counter() - started
    out["written_mb"] = (wchar() - before) / 1e6
print(json.dumps(out))
"""


def child(tree: Path, what: str, index: Path, arg: str) -> dict:
    """Run one measurement in a fresh process with the package from `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), what, str(index), arg], capture_output=True,
                         text=True, env=env, cwd=tree)  # fmt: skip
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(tree: Path, index: Path, corpus: Path, work: Path, tag: str) -> dict:
    """Open and answer; add 10 articles (one first, so that the encoder is loaded, then nine timed: 'add 10' is
    their time times 10/9), embedded by the real encoder; remove the 10 again."""
    row = child(tree, "open", index, QUESTION)
    folder, single = work / f"new-{tag}", work / f"one-{tag}"
    for old in (folder, single):
        shutil.rmtree(old, ignore_errors=True)
    names = new_articles(folder, corpus, tag)
    single.mkdir()
    shutil.move(str(folder / names[0]), single / names[0])
    added = child(tree, "add", index, json.dumps([str(single), str(folder)]))
    removed = child(tree, "remove", index, json.dumps(names))  # the 10 (the first was added before the 9)
    row.update(add10_s=added["seconds"] * 10 / 9, add10_written_mb=added["written_mb"] * 10 / 9,
               remove10_s=removed["seconds"], remove10_written_mb=removed["written_mb"])  # fmt: skip
    row["disk_mb"] = sum(f.stat().st_size for f in index.rglob("*") if f.is_file() and "encoder" not in f.parts) / 1e6
    return row


def main() -> None:
    """Build each size, measure this version (and the previous one up to --before), print a table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bbc_index", type=Path)
    p.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpora" / "bbc-news" / "bbc")
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--before", type=int, default=100_000, help="measure the previous version up to this size")
    p.add_argument("--old-commit", default=OLD_COMMIT)
    p.add_argument("--work", type=Path, default=None, help="folder for the indexes (default: a temporary one)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-segments-"))
    work.mkdir(parents=True, exist_ok=True)
    old_tree = work / "old-tree"
    if not old_tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-f", str(old_tree), args.old_commit], check=True,
                       capture_output=True)  # fmt: skip
    n_src = json.loads((args.bbc_index / "manifest.json").read_text())["passages"]
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        copies = max(1, round(size / n_src))
        index = work / f"index-{copies}"
        if not index.exists():
            built = make_index(args.bbc_index, index, copies)
            print(f"built {built['passages']:,} passages; merged into one segment in {built['merge_s']:.1f} s")
        else:
            built = {"passages": copies * n_src, "merge_s": None}
        row = {"version": "segments", "passages": built["passages"], "merge_s": built["merge_s"]}
        row.update(measure(ROOT, index, args.corpus, work, f"new{copies}"))
        rows.append(row)
        print(json.dumps(row))
        if built["passages"] <= args.before * 1.1:
            old = work / f"old-{copies}"
            if not old.exists():
                to_format1(index, old, old_tree)
            row = {"version": "previous", "passages": built["passages"]}
            row.update(measure(old_tree, old, args.corpus, work, f"old{copies}"))
            rows.append(row)
            print(json.dumps(row))
    print()
    print("| version | passages | open + first answer s | next answers s | RSS MiB | add 10 s | MB written | "
          "remove 10 s | MB written | disk MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['version']} | {r['passages']:,} | {r['open_s']:.2f} + {r['first_answer_s'] - r['open_s']:.2f} | "
              f"{r['next_answer_s']:.3f} | {r['rss_mb']:.0f} | {r['add10_s']:.2f} | {r['add10_written_mb']:.1f} | "
              f"{r['remove10_s']:.2f} | {r['remove10_written_mb']:.1f} | {r['disk_mb']:.0f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def to_format1(index: Path, dest: Path, old_tree: Path) -> None:
    """The same articles, passages and vectors as a format-1 index, written by the previous version's own code."""
    script = r"""
import sys, sqlite3, json, numpy as np
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from assistant.generation import write_generation
from assistant.types import Article, Passage
from assistant.writer import Change
src, dest = Path(sys.argv[2]), Path(sys.argv[3])
m = json.loads((src / "manifest.json").read_text())
seg = src / m["segments"][0]["name"]
if (seg / "vectors.npy").exists():
    vectors = np.load(seg / "vectors.npy")
else:
    import faiss
    g = faiss.read_index(str(seg / "graph.faiss"))
    vectors = faiss.rev_swig_ptr(faiss.downcast_index(g.storage).get_xb(), g.ntotal * g.d).reshape(g.ntotal, g.d).copy()
db = sqlite3.connect(seg / "index.sqlite")
sql = "SELECT id, title, text, path, source, url, published FROM articles"
arts = {r[0]: Article(*r[:3], *(x or "" for x in r[3:])) for r in db.execute(sql)}
sql = "SELECT id, article_id, seq, char_start, char_end, n_tokens, text FROM passages ORDER BY id"
rows = db.execute(sql).fetchall()
add = {}
for i, r in enumerate(rows):
    add.setdefault(r[1], ([], []))
    add[r[1]][0].append(Passage(r[1], r[2], r[6], r[3], r[4], r[5]))
    add[r[1]][1].append(vectors[i])
dest.mkdir(parents=True, exist_ok=True)
meta = {k: m[k] for k in ("model", "dimension", "chunking")}
change = Change(add=[(arts[a], ps, np.array(vs)) for a, (ps, vs) in add.items()], meta=meta)
write_generation(dest, None, change, 100_000, 32)
"""
    if (index / "encoder").is_dir():  # an index made by an earlier version (later ones share the encoder cache)
        shutil.copytree(index / "encoder", dest / "encoder")
    subprocess.run([sys.executable, "-c", script, str(old_tree), str(index), str(dest)], check=True,
                   env={**os.environ, "PYTHONPATH": str(old_tree)}, cwd=old_tree)  # fmt: skip


if __name__ == "__main__":
    main()
