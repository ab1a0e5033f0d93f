"""Command line: `assistant index|ask|search|batch|quotes|remove|check|eval|serve|follow`, a shell over `Assistant`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .config import RETRIEVAL_METHODS

if TYPE_CHECKING:
    from .config import Settings
    from .core import Assistant
    from .evaluate import Question

EXIT_ERROR = 1
EXIT_SKIPPED = 3


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--index-dir",
        metavar="DIR",
        help="index folder (default: index/, or index.dir in the config); with index.backend = postgres the index "
        "is in the database at index.url and this folder holds the encoder, staging and uploads",
    )
    common.add_argument("--config", metavar="FILE", help="TOML file overriding config/default.toml settings")
    common.add_argument("--traceback", action="store_true", help="on an unexpected failure, show the full traceback")
    p = argparse.ArgumentParser(
        prog="assistant",
        description="Answer questions about news articles with cited passages, offline.",
        epilog="Settings: config/default.toml lists them all; ASSISTANT_<SECTION>_<KEY> variables override "
        "(e.g. ASSISTANT_INDEX_BACKEND=postgres ASSISTANT_INDEX_URL=postgresql://... for a shared index).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    only = argparse.ArgumentParser(add_help=False)
    only.add_argument("--source", action="append", help="only articles from this source (repeatable)")
    only.add_argument("--article", action="append", help="only this article id (repeatable)")

    s = sub.add_parser(
        "index",
        parents=[common],
        help="add or update articles from files and folders",
        description="Add or update articles; only new and changed ones are embedded, with a progress bar. "
        "Ctrl-C leaves the index as it was and keeps what was embedded: the same command resumes from there.",
    )
    s.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help=".txt .md .html .jsonl .json .sgm files or folders (default: the folders already in the index)",
    )
    s.add_argument("--prune", action="store_true", help="delete indexed articles whose files are gone from PATH")
    s.add_argument(
        "--rebuild",
        action="store_true",
        help="build a fresh index from PATH (old one kept until done; an older ONNX export is made again)",
    )
    s.add_argument(
        "--optimize",
        action="store_true",
        help="after indexing (or alone), merge the index's segments into one for the fastest search "
        "(embedded engine; PostgreSQL: each term's postings blocks into one, then VACUUM ANALYZE; it also "
        "upgrades a PostgreSQL index of an earlier schema)",
    )
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument(
        "--cluster",
        metavar="tcp://HOST:8786",
        help="embed on the workers of this Dask scheduler (embedding.cluster; pip install -e '.[cluster]'); a batch "
        "lost with a worker is embedded again by another; if the scheduler goes, what was embedded is kept for "
        "the next run",
    )

    for name, k, text in (
        ("ask", 5, "answer a question with cited passages"),
        ("search", 10, "list the passages that match a question, with scores"),
    ):
        s = sub.add_parser(name, parents=[common, only], help=text)
        s.add_argument("question", help="the question, in plain English")
        s.add_argument("--k", type=int, default=k, help=f"number of passages (default {k})")
        s.add_argument(
            "--after",
            action="append",
            default=[],
            metavar="QUESTION",
            help="an earlier question of the conversation, for follow-ups like 'What did he say?' (repeatable)",
        )
        s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser(
        "batch",
        parents=[common, only],
        help="search many questions from a file and write every hit with its citation to a CSV or JSONL file",
        description="Each question is searched as `assistant search` does, with a progress bar; every passage found "
        "is one row: question, rank, title, source, published, url, path, article_id, char_start, char_end, score, "
        "confidence, also_in, text. A question that cannot be searched (empty, too long) is named on stderr and the "
        "others go on (exit 3). The results are written to a temporary file renamed into place: an interrupted batch "
        "leaves the file that was there. In CSV, a cell starting with = + - @ gets a leading ' so that a spreadsheet "
        "shows it rather than running it.",
    )
    s.add_argument(
        "questions",
        metavar="QUESTIONS",
        help="a .txt file (one question a line; blank lines and lines starting with # skipped) or a .csv file",
    )
    s.add_argument("--out", required=True, metavar="RESULTS", help="where to write: results.csv or results.jsonl")
    s.add_argument(
        "--column", metavar="NAME", help="the .csv column holding the questions (default: 'question', else the first)"
    )
    s.add_argument("--k", type=int, default=10, help="passages a question (default 10)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser(
        "quotes",
        parents=[common, only],
        help="every quotation by a speaker across the archive, ranked by relevance to a topic",
        description="Quotations found at indexing, with their speakers: all of a person's (--speaker), ranked "
        "by relevance to --about (newest first without it), or anyone's on a topic (--about alone). The same "
        "words in several articles are shown once, citing each.",
    )
    s.add_argument("--speaker", metavar="NAME", help="whose quotations: a name as articles give it ('Zelensky')")
    s.add_argument("--about", metavar="TEXT", help="what about: ranks the quotations by relevance to it")
    s.add_argument("--k", type=int, default=20, help="at most this many quotations (default 20)")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser(
        "serve",
        parents=[common],
        help="start the web chat, the JSON API and the MCP tool",
        description="The chat at /, POST /api/search (questions), POST /api/articles (uploads, at most "
        "server.upload_max_files files of server.upload_max_mb each), OpenAPI at /docs, the MCP tool at "
        "/gradio_api/mcp/. It answers from the index's current generation, also one written meanwhile by "
        "`assistant index`. It serves only the host names it is bound to (IP addresses, localhost, and "
        "server.allowed_hosts) and refuses writes a browser sends from another origin.",
    )
    s.add_argument("--host", help="address to bind (server.host, default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, help="port (server.port, default 7860)")
    s.add_argument(
        "--auth", metavar="USER:PASSWORD", help="HTTP Basic login on every route (server.auth; ASSISTANT_SERVER_AUTH)"
    )
    s.add_argument(
        "--seeds",
        default="seeds",
        metavar="PATH",
        help="articles to index first when there is no index yet (default seeds/)",
    )
    s.add_argument("--no-mcp", action="store_true", help="do not expose the MCP tool (server.mcp = false)")
    s.add_argument(
        "--follow",
        nargs="+",
        default=[],
        metavar="TARGET",
        help="also poll these feeds, pages, sitemaps or folders while serving (besides follow.targets); new articles "
        "answer within one poll interval",
    )
    s.add_argument("--every", metavar="DURATION", help="poll interval for --follow: 30s, 15m, 2h (follow.every)")

    s = sub.add_parser(
        "follow",
        parents=[common],
        help="poll RSS/Atom feeds, article pages, sitemaps and folders, indexing what is new or changed",
        description="Each poll fetches every target politely (robots.txt, follow.per_host_delay between requests to "
        "a host, If-None-Match / If-Modified-Since, at most follow.max_page_mb a page and follow.timeout seconds a "
        "request, 5 redirects, http and https only) and indexes each new or changed page's main text with its "
        "feed's title, source, URL and date, in one write. A feed entry's page is fetched when it is new or its "
        "entry changed; a page target is asked each poll (304: nothing to do). An article's id is its URL: a story "
        "whose text changed replaces its earlier version and is reported as updated; the same URL in two feeds, or "
        "the same text at another URL, is indexed once. A folder is indexed as `assistant index FOLDER` does (files "
        "gone from it stay indexed; `assistant index --prune FOLDER` drops them). Each poll prints one line per "
        "target: added N (titles), updated M (titles), unchanged, or its error; each entry that could not be read "
        "one indented line beneath. What was seen is kept in <index>/follow.sqlite. Exit status with --once: 0, or "
        "3 when some target failed.",
    )
    s.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="feed, page or sitemap URL (http, https), or folder (default: follow.targets in the config)",
    )
    s.add_argument("--every", metavar="DURATION", help="poll interval: 30s, 15m, 2h, 1d (follow.every, default 15m)")
    s.add_argument("--once", action="store_true", help="poll once and exit (for cron jobs and tests)")

    s = sub.add_parser("remove", parents=[common], help="delete articles from the index by id")
    s.add_argument("ids", nargs="+", metavar="ID", help="article ids, as shown in citations")

    s = sub.add_parser(
        "check",
        parents=[common],
        help="check the index files against the checksums in its manifest",
        description="Every index file carries a checksum in manifest.json. Each command checks them cheaply when it "
        "opens the index (sizes; whole hashes of files up to 32 MB, evenly spaced samples of larger ones); --full "
        "hashes every file whole and runs SQLite's integrity check. Exit 0 when sound, 1 (one line) when not.",
    )
    s.add_argument("--full", action="store_true", help="hash every file whole and check the database page by page")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser(
        "eval",
        parents=[common],
        help="measure retrieval: a question file (Recall@1/5, MRR@10) or a BEIR folder (nDCG@10, Recall@100)",
        description="A question file is asked of the index. A BEIR folder (corpus.jsonl, queries.jsonl, qrels/) is "
        "indexed first into --index-dir (default index-<folder name>/; later runs reuse it), then its queries are "
        "ranked at document level, a document scoring by its best passage, with the relevance floor off.",
    )
    s.add_argument(
        "path",
        metavar="PATH",
        help='JSONL question file {"question": ..., "gold": [[article_id, phrase], ...]} (empty gold = off-topic), '
        "or a BEIR dataset folder",
    )
    s.add_argument(
        "--retriever",
        choices=RETRIEVAL_METHODS,
        help="rank with both retrievers fused (default), or one alone (retrieval.method)",
    )
    s.add_argument("--split", default="test", help="BEIR qrels split (default test)")
    s.add_argument(
        "--half",
        choices=("tune", "held"),
        help='only the questions of this half of the set (their "split" field): tune on one, report both',
    )
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument(
        "--without-history",
        action="store_true",
        help="ask follow-up questions alone, ignoring their conversation (to measure what it adds)",
    )
    s.add_argument(
        "--without-dates",
        action="store_true",
        help="read dates in questions as words, not as a publication period (retrieval.dates off; what they add)",
    )
    s.add_argument(
        "--calibrate",
        action="store_true",
        help="with the relevance floor off, show each question's relevance evidence, to choose retrieval.min_score",
    )
    return p


def _filters(args: argparse.Namespace) -> dict[str, list[str]] | None:
    f = {}
    if args.source:
        f["source"] = args.source
    if args.article:
        f["article_id"] = args.article
    return f or None


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed command; returns the exit code."""
    from .config import load_settings
    from .core import Assistant

    settings = load_settings(args.config)
    if args.index_dir:
        settings = settings.replace("index", dir=args.index_dir)
    if args.command == "index":
        if args.cluster:
            settings = settings.replace("embedding", cluster=args.cluster)
        a = Assistant(settings)
        if args.optimize and not args.paths and not args.rebuild:
            started = time.perf_counter()
            meta = a.optimize(progress=not args.quiet)
            segments = meta.get("segments")
            done = f"into {len(segments)} segment(s)" if segments else "(postings merged, tables vacuumed)"
            print(
                f"Optimized {meta.get('articles')} articles, {meta.get('passages')} passages {done} "
                f"in {time.perf_counter() - started:.1f} s"
            )
            return 0
        if args.paths or args.rebuild:
            if not args.paths:
                print("error: --rebuild needs the PATHs to read articles from", file=sys.stderr)
                return EXIT_ERROR
            report = a.add(args.paths, prune=args.prune, rebuild=args.rebuild, progress=not args.quiet)
        else:
            report = a.refresh(prune=args.prune, progress=not args.quiet)
        if args.optimize:
            a.optimize(progress=not args.quiet)
        for w in report.warnings:
            print(f"warning: {w}", file=sys.stderr)
        for s in report.skipped:
            print(f"skipped: {s}", file=sys.stderr)
        if args.json:
            _print_json(report.to_dict())
        else:
            print(f"Indexed {report.summary()}")
        return EXIT_SKIPPED if report.skipped else 0

    if args.command in ("serve", "follow") and args.every:
        settings = settings.replace("follow", every=args.every)  # a bad one: "follow.every = 'x': must be..."
    if args.command == "follow":
        return _follow(Assistant(settings), args.targets or settings.follow.targets, args.once)

    if args.command == "serve":
        from .api import serve

        given = {"host": args.host, "port": args.port, "auth": args.auth, "mcp": False if args.no_mcp else None}
        settings = settings.replace("server", **{k: v for k, v in given.items() if v is not None})
        a = Assistant(settings)
        if not a.engine.exists():
            if not Path(args.seeds).exists():
                print(
                    f"error: no index in {a.engine.location} and no {args.seeds}/ to build one from; "
                    "run `assistant index PATH` first, or pass --seeds PATH",
                    file=sys.stderr,
                )
                return EXIT_ERROR
            print(f"No index in {a.engine.location} yet: indexing {args.seeds} first…", file=sys.stderr, flush=True)
            print(f"Indexed {a.add([args.seeds], progress=True).summary()}", file=sys.stderr)
        a.ask("warm up")  # load the index and the model before the first visitor
        targets = [*settings.follow.targets, *args.follow]
        if targets:
            from .follow.poller import follow_in_background

            follow_in_background(a, list(dict.fromkeys(targets)), _say)
        serve(a)
        return 0

    if args.command == "check":
        found = Assistant(settings).check(full=args.full)
        if args.json:
            _print_json(found)
        else:
            print(found["message"])
        return 0

    if args.command == "eval" and args.retriever:
        settings = settings.replace("retrieval", method=args.retriever)
    if args.command == "eval" and args.without_dates:
        settings = settings.replace("retrieval", dates=False)
    if args.command == "eval" and Path(args.path).is_dir():
        return _eval_beir(args, settings)
    a = Assistant.load(config=settings)
    if args.command in ("ask", "search"):
        from .answer import render_text
        from .types import hit_to_dict

        if args.k < 1:
            print("error: --k must be at least 1", file=sys.stderr)
            return EXIT_ERROR
        answer = a.ask(args.question, k=args.k, filters=_filters(args), history=args.after)
        if args.json:
            data = answer.to_dict()
            _print_json(
                data if args.command == "ask" else [hit_to_dict(h, i + 1) for i, h in enumerate(answer.passages)]
            )
        elif args.command == "ask":
            print(render_text(answer))
        else:
            if answer.found and answer.message:
                print(answer.message)  # weak: these may not answer
            for i, h in enumerate(answer.passages, 1):
                c = h.citations[0]
                print(
                    f"{i:>2}. {h.score:.3f} (dense {h.dense:.3f}, bm25 {h.lexical:.2f}) {c.article_id} "
                    f"[{c.char_start}:{c.char_end}] {h.text[:100]!r}"
                )
            if not answer.found:
                print(answer.message)
        return 0
    if args.command == "batch":
        from .batch import run_batch

        if args.k < 1:
            print("error: --k must be at least 1", file=sys.stderr)
            return EXIT_ERROR
        out = Path(args.out)
        report = run_batch(a, Path(args.questions), out, args.column, args.k, _filters(args), not args.quiet)
        for s in report.skipped:
            print(f"skipped: {s}", file=sys.stderr)
        print(report.summary(out))
        return EXIT_SKIPPED if report.skipped else 0
    if args.command == "quotes":
        from .answer import cite

        if args.k < 1:
            print("error: --k must be at least 1", file=sys.stderr)
            return EXIT_ERROR
        said = a.quotes(speaker=args.speaker, about=args.about, k=args.k, filters=_filters(args))
        if args.json:
            _print_json({"speaker": args.speaker, "about": args.about, "quotes": [q.to_dict() for q in said]})
            return 0
        if not said:
            who = f" by {args.speaker}" if args.speaker else ""
            print(f"No quotation{who}{' about ' + repr(args.about) if args.about else ''} in the indexed articles.")
        for i, q in enumerate(said, 1):
            lines = [f"[{i}] {q.speaker}: “{q.text}”", f"    — {cite(q.citation)}"]
            lines += [f"    — also in: {cite(c)}" for c in q.also_in]
            print("\n".join(lines) + "\n")
        return 0
    if args.command == "remove":
        n = a.remove(args.ids)
        missing = len(set(args.ids)) - n
        print(f"Removed {n} article(s)" + (f"; {missing} id(s) were not in the index" if missing else ""))
        return 0 if not missing else EXIT_ERROR
    if args.command == "eval":
        from .evaluate import evaluate, load_questions, to_dict
        from .types import AssistantError

        questions = load_questions(args.path)
        if args.half:
            questions = [q for q in questions if q.split == args.half]
            if not questions:
                raise AssistantError(f'{args.path} has no question with "split": "{args.half}"; drop --half')
        if args.calibrate:
            return _calibrate(a, questions)
        alone = args.without_history
        result = evaluate(
            lambda q: a.search(q.question, 10, history=() if alone else q.history),
            a.article_text,
            questions,
            progress=not (args.quiet or args.json),
        )
        if args.json:
            _print_json(to_dict(result))
        else:
            print("\n".join(result.lines()))
        return 0
    return EXIT_ERROR


def _say(line: str) -> None:
    """Print a line on stderr at once (a poll's report, from the follow thread)."""
    print(line, file=sys.stderr, flush=True)


def _follow(a: Assistant, targets: Sequence[str], once: bool) -> int:
    """Poll the targets once (`once`) or every follow.every until interrupted, one line per target per poll."""
    from .follow.poller import Follower
    from .types import AssistantError

    if not targets:
        raise AssistantError("name what to follow: assistant follow URL|FOLDER..., or list them in [follow] targets")
    follower = Follower(a)
    try:
        if once:
            reports = follower.poll(targets, once=True)
            for r in reports:
                print("\n".join(r.lines()), flush=True)
            return EXIT_SKIPPED if any(r.error for r in reports) else 0
        print(f"Following {len(targets)} target(s) every {a.settings.follow.every}; Ctrl-C stops", file=sys.stderr)
        follower.run(targets, lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("stopped following; what the finished polls indexed stays", file=sys.stderr)
    finally:
        follower.close()
    return 0


def _eval_beir(args: argparse.Namespace, settings: Settings) -> int:
    """Index a BEIR corpus (once) and print nDCG@10 and Recall@100 of its queries."""
    from .beir import evaluate_beir, is_beir, load_benchmark
    from .core import Assistant

    if not is_beir(args.path):
        print(f"error: {args.path} is not a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)", file=sys.stderr)
        return EXIT_ERROR
    bench = load_benchmark(args.path, args.split)
    if not args.index_dir:
        settings = settings.replace("index", dir=f"{settings.index.dir.rstrip('/')}-{bench.name}")
    a = Assistant.load(config=settings)
    quiet = args.quiet or args.json
    if not quiet:
        print(f"Indexing {bench.corpus} into {a.engine.location} (only what is new)…", file=sys.stderr, flush=True)
    report = a.add([bench.corpus], progress=not quiet)
    if not quiet:
        print(f"Indexed {report.summary()}", file=sys.stderr)
    result = evaluate_beir(lambda text: [d for d, _ in a.rank_articles(text, 100)], bench, progress=not quiet)
    data = {"retriever": a.settings.retrieval.method, **result.to_dict()}
    if args.json:
        _print_json(data)
    else:
        print(f"retriever     {data['retriever']}")
        print("\n".join(result.lines()))
    return 0


def _calibrate(a: Assistant, questions: Sequence[Question]) -> int:
    """Relevance evidence per question with the floor off (answerable: of its first right passage; off-topic:
    the highest): a floor between the two groups separates them."""
    from .evaluate import first_relevant

    floor = a.settings.retrieval.min_score
    a.settings = a.settings.replace("retrieval", min_score=float("-inf"))
    best: dict[bool, list[float]] = {True: [], False: []}
    for q in questions:
        hits = a.search(q.question, k=10, history=q.history)
        rank = first_relevant(hits, q.gold, a.article_text) if q.gold else 0
        if q.gold and not rank:
            print(f"  -    answerable  {q.question}  (not in the top 10; no floor helps)")
            continue
        top = hits[rank - 1].evidence if rank else max((h.evidence for h in hits), default=0.0)
        best[bool(q.gold)].append(top)
        print(f"{top:.3f}  {'answerable' if q.gold else 'off-topic '}  {q.question}")
    yes, no = sorted(best[True]), sorted(best[False], reverse=True)
    print(f"lowest answerable: {', '.join(f'{x:.3f}' for x in yes[:3])}")
    print(f"highest off-topic: {', '.join(f'{x:.3f}' for x in no[:3])}")
    kept, quiet = sum(x >= floor for x in yes), sum(x < floor for x in no)
    print(f"floor {floor}: keeps {kept}/{len(yes)} answerable, nothing found for {quiet}/{len(no)} off-topic")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `assistant` command."""
    from .indexer import IndexInterrupted
    from .types import AssistantError

    args = _parser().parse_args(argv)
    _show_warnings()
    try:
        return run(args)
    except IndexInterrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    except AssistantError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:  # a folder that cannot be written, a full disk: say so in one line
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; the index is as it was before this run", file=sys.stderr)
        return 130
    except Exception as e:  # a failure nobody foresaw: one line, and the traceback on request
        if args.traceback:
            raise
        first = (str(e).splitlines() or [""])[0][:300]
        print(f"error: unexpected {type(e).__name__}: {first} (run again with --traceback for where)", file=sys.stderr)
        return EXIT_ERROR


class _ToStderr(logging.Handler):
    """Writes to whatever sys.stderr is when a warning comes (a caller may swap it meanwhile)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Print the formatted record on the current stderr."""
        print(self.format(record), file=sys.stderr, flush=True)


def _show_warnings() -> None:
    """The library's warnings (a writer waiting for another, a damaged staging file moved aside) as 'warning: ...'
    lines on stderr."""
    log = logging.getLogger("assistant")
    if not any(isinstance(h, _ToStderr) for h in log.handlers):
        handler = _ToStderr(logging.WARNING)
        handler.setFormatter(logging.Formatter("warning: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
