"""Quotation attribution against the hand-labelled gold sets: how many labelled quotations the extractor finds, and
the precision and recall of their speakers. Three groups of articles: "tune" and "held", the halves of
eval/quotes_gold.jsonl, and "more", eval/quotes_gold_more.jsonl, a second batch labelled later (first scored
before any rule was made on it; rules tried on it since did not carry to "held" and were dropped).

    python bench/attribution.py [--show]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.quotes import find_quotes  # noqa: E402
from assistant.speakers import fold  # noqa: E402

BBC = ROOT.parent / "shared" / "corpora" / "bbc-news" / "bbc.jsonl"


def texts(ids: list[str]) -> dict[str, str]:
    """Each labelled article's text: a seed file, or a BBC record's text."""
    out = {i: (ROOT / "seeds" / i).read_text(encoding="utf-8") for i in ids if i.endswith(".txt")}
    wanted = {i for i in ids if i not in out}
    if wanted:
        for line in BBC.open(encoding="utf-8"):
            rec = json.loads(line)
            if rec["id"] in wanted:
                out[rec["id"]] = rec["text"]
    return out


def same_speaker(found: str, gold: dict) -> bool:
    """Whether the extractor's speaker is the labelled one (its full name, one of its forms, or the same surname)."""
    names = {fold(gold["speaker"])} | {fold(f) for f in gold.get("forms", [])}
    have = fold(found)
    if not have:
        return False
    if have in names or have.removeprefix("the ") in {n.removeprefix("the ") for n in names}:
        return True
    labelled = fold(gold["speaker"]).split()
    return bool(labelled) and len(have.split()) > 1 and have.split()[-1] == labelled[-1]


def spans(text: str, gold: list[dict]) -> list[tuple[int, int]]:
    """Each gold quotation's span: the n-th time its words stand in the text as words (not inside longer ones:
    'weak' is not the start of 'weakness'), n counted in label order (the labels follow the text)."""
    out, seen = [], {}
    for g in gold:
        found = [m.start() for m in re.finditer(r"(?<!\w)" + re.escape(g["text"]), text)]
        found = found or [m.start() for m in re.finditer(re.escape(g["text"]), text)]
        k = seen.get(g["text"], 0)
        seen[g["text"]] = k + 1
        at = found[min(k, len(found) - 1)] if found else -1
        out.append((at, at + len(g["text"])))
    return out


def score(articles: list[str], gold: list[dict], text_of: dict[str, str], show: bool) -> dict[str, float]:
    """Found (a system quotation overlaps the labelled one), speaker recall (found with the right speaker, of the
    labelled quotations with a known speaker) and speaker precision (right, of the system's attributed quotations
    in these articles; one matching no labelled quotation counts wrong)."""
    n_gold = n_found = n_right = n_named = n_attr = n_attr_right = 0
    for a in articles:
        text, labelled = text_of[a], [g for g in gold if g["article"] == a]
        got = find_quotes(text)
        where = spans(text, labelled)
        for g, (s, e) in zip(labelled, where, strict=True):
            hits = [q for q in got if q.start < e and s < q.end]
            n_gold += 1
            n_found += bool(hits)
            if g["speaker"] != "?":
                n_named += 1
                right = any(same_speaker(q.speaker, g) for q in hits)
                n_right += right
                if show and not right:
                    said = "; ".join(q.speaker or "-" for q in hits) or "not found"
                    print(f"  miss [{a}] {g['speaker']!r} got {said!r}: {g['text'][:70]!r}")
        for q in got:
            if not q.speaker:
                continue
            n_attr += 1
            match = [g for g, (s, e) in zip(labelled, where, strict=True) if q.start < e and s < q.end]
            ok = any(same_speaker(q.speaker, g) for g in match)
            n_attr_right += ok
            if show and not ok:
                why = "not a labelled quotation" if not match else f"labelled {match[0]['speaker']!r}"
                print(f"  wrong [{a}] {q.speaker!r} ({why}): {text[q.start : q.end][:70]!r}")
    return {
        "quotes": n_gold,
        "found": n_found / max(1, n_gold),
        "speaker_recall": n_right / max(1, n_named),
        "speaker_precision": n_attr_right / max(1, n_attr),
        "attributed": n_attr,
    }


def _read(path: Path) -> tuple[dict, list[dict]]:
    """A gold file: its first line (the articles labelled, the rules) and its quotations."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(x) for x in lines[1:] if x.strip()]


def main() -> None:
    """Print the scores on both halves."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", action="store_true", help="print each miss and each wrong speaker")
    ap.add_argument("--half", choices=("tune", "more", "held", "both"), default="both", help="both: all three")
    args = ap.parse_args()
    head, gold = _read(ROOT / "eval" / "quotes_gold.jsonl")
    more_head, more = _read(ROOT / "eval" / "quotes_gold_more.jsonl")  # a second batch: all tuning articles
    gold += more
    text_of = texts(head["articles"] + more_head["articles"])
    held = [a for a in head["articles"] if a not in head["tune"]]
    halves = {"tune": head["tune"], "more": more_head["articles"], "held": held}
    for name, arts in halves.items():
        if args.half not in (name, "both"):
            continue
        r = score(arts, gold, text_of, args.show)
        print(
            f"{name:5s} {r['quotes']:4d} labelled quotations in {len(arts)} articles: found {r['found']:.3f}, "
            f"speaker recall {r['speaker_recall']:.3f}, speaker precision {r['speaker_precision']:.3f} "
            f"(of {r['attributed']} attributed)"
        )


if __name__ == "__main__":
    main()
