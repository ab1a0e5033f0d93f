"""How often the direct answer is given, and how often it is right, on a question set's halves.

A direct answer counts as right when it holds the gold phrase, or, for a quotation, when the passage it comes from
holds the gold phrase (a "who said" question's gold is often the speaker's name beside the quotation).

    python bench/direct_answers.py eval/bbc-new.jsonl --index-dir index-bbc [--half tune|held] [--show]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant import Assistant  # noqa: E402
from assistant.evaluate import load_questions, normalise  # noqa: E402


def main() -> None:
    """Print, per half, the direct answers given and right, and any given to off-topic questions."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions")
    ap.add_argument("--index-dir", required=True)
    ap.add_argument("--half", choices=("tune", "held"))
    ap.add_argument("--show", action="store_true", help="print each direct answer, right or wrong")
    args = ap.parse_args()
    a = Assistant.load(index_dir=args.index_dir)
    for half in [args.half] if args.half else ["tune", "held"]:
        given = right = answerable = off_topic = 0
        for q in load_questions(args.questions):
            if q.split and q.split != half:
                continue
            answer = a.ask(q.question, k=5, history=q.history)
            d = answer.direct
            if not q.gold:
                off_topic += d is not None
                continue
            answerable += 1
            if d is None:
                continue
            given += 1
            passage = answer.passages[d.passage - 1]
            cited = {c.article_id for c in passage.citations}
            held = [ph for art, ph in q.gold if art in cited]
            ok = any(normalise(ph) in normalise(d.text) for ph in held) or (
                bool(d.speaker) and any(normalise(ph) in normalise(passage.text) for ph in held)
            )
            right += ok
            if args.show:
                print(f"{'right' if ok else 'WRONG'}  {q.question}  ->  {d.text[:120]}")
        print(
            f"{args.questions} {half}: a direct answer for {given} of {answerable} answerable questions, {right} right;"
            f" {off_topic} given to off-topic questions"
        )


if __name__ == "__main__":
    main()
