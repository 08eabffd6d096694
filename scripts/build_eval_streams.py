#!/usr/bin/env python3
"""Converts the hand-written evaluation streams in fixtures/streams/eval/src/ into JSON Lines.

Each writer wrote `src/NAME.txt` (`@MM:SS` time anchors and `user | LABELS | KEY | text [| paid]`
lines), `src/NAME.products.json` (products with `shown_at` as MM:SS) and
`src/NAME.questions.json`. This is the only mechanical step: it numbers the lines, spreads the
lines between two anchors evenly in time (with a small fixed-seed jitter, so `ts` strictly
increases), expands the label letters and writes `NAME.jsonl` and `NAME.products.json`
(`shown_at_ms`) beside `src/`. It writes no text and chooses no label. Run it again to rebuild
the files byte for byte: python3 scripts/build_eval_streams.py
"""
import json, pathlib, random, re, sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "streams" / "eval"
LETTERS = {"Q": "question", "P": "purchase_intent", "S": "spam", "A": "abuse", "O": "other"}
ORDER = ["question", "purchase_intent", "spam", "abuse", "other"]
# Each stream starts on its own evening hour (JST), 2025-12-01 20:00 + one day per stream.
BASE = 1764586800000


def mmss(s):
    m, sec = s.split(":")
    return (int(m) * 60 + int(sec)) * 1000


def build(name, day):
    src = ROOT / "src"
    start = BASE + day * 86_400_000
    rng = random.Random(f"kotae-eval-{name}")
    groups, anchor, problems = [], None, []
    for n, raw in enumerate((src / f"{name}.txt").read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            anchor = mmss(line[1:])
            groups.append((anchor, []))
            continue
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) not in (4, 5) or anchor is None:
            problems.append(f"{name}.txt:{n}: expected 'user | LABELS | KEY | text [| paid]' after an anchor")
            continue
        groups[-1][1].append((n, parts))
    out = []
    for gi, (at, lines) in enumerate(groups):
        end = groups[gi + 1][0] if gi + 1 < len(groups) else at + 30_000
        step = (end - at) / max(len(lines), 1)
        for k, (n, parts) in enumerate(lines):
            user, letters, key, text = parts[:4]
            labels = sorted({LETTERS[c] for c in letters if c in LETTERS}, key=ORDER.index)
            if not labels or any(c not in LETTERS for c in letters) or ("other" in labels and len(labels) > 1):
                problems.append(f"{name}.txt:{n}: bad labels '{letters}'")
            if ("question" in labels) != (key != "-"):
                problems.append(f"{name}.txt:{n}: a question line needs a key, and only a question line has one")
            ts = start + int(at + step * k + rng.uniform(0, step * 0.4))
            row = {"id": f"{name}-{len(out) + 1:04d}", "ts": ts, "user": user, "text": text, "labels": labels,
                   "q": f"{name}.{key}" if key != "-" else None}
            if len(parts) == 5:
                row["paid"] = int(parts[4])
            out.append(row)
    for a, b in zip(out, out[1:]):
        if b["ts"] <= a["ts"]:
            b["ts"] = a["ts"] + 1
    prod = json.loads((src / f"{name}.products.json").read_text(encoding="utf-8"))
    for p in prod["products"]:
        p["shown_at_ms"] = mmss(p.pop("shown_at"))
    questions = json.loads((src / f"{name}.questions.json").read_text(encoding="utf-8"))
    keyed = {f"{name}.{k}": v for k, v in questions.items()}
    used = {r["q"] for r in out if r["q"]}
    for k in sorted(used - set(keyed)):
        problems.append(f"{name}: key {k} is not in questions.json")
    if problems:
        sys.exit("\n".join(problems))
    with open(ROOT / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (ROOT / f"{name}.products.json").write_text(json.dumps(prod, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    (ROOT / f"{name}.questions.json").write_text(json.dumps(keyed, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return len(out), len(used)


if __name__ == "__main__":
    # Each stream keeps the day it was first given: the first five in name order, later ones
    # after them in the order they came.
    names = ["apparel", "appliance", "cosmetics", "food", "kids", "interior", "outdoor", "jewelry"]
    names += sorted(p.stem for p in (ROOT / "src").glob("*.txt") if p.stem not in names)
    for day, name in enumerate(names):
        if not (ROOT / "src" / f"{name}.txt").exists():
            continue
        lines, keys = build(name, day)
        print(f"{name}: {lines} lines, {keys} distinct questions")
