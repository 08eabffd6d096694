#!/usr/bin/env python3
"""Measures question clustering on the paraphrase and near-miss fixtures through `kotae classify`.

Paraphrases: all lines of fixtures/clusters/paraphrases.jsonl as one stream (shuffled with a fixed
seed, so clusters interleave as in a live chat); a same-cluster pair counts when both lines got one
cluster id. Near-miss: each pair as its own two-line stream; it counts when the ids differ.
Usage: scripts/cluster_pairs.py [path/to/kotae] [--heldout] [-v]
--heldout measures fixtures/clusters/heldout_*.jsonl instead (never used for tuning).
"""
import itertools, json, random, subprocess, sys

args = [a for a in sys.argv[1:] if not a.startswith("-")]
kotae = args[0] if args else "target/release/kotae"
prefix = "heldout_" if "--heldout" in sys.argv else ""
para = [json.loads(l) for l in open(f"fixtures/clusters/{prefix}paraphrases.jsonl", encoding="utf-8")]
near = [json.loads(l) for l in open(f"fixtures/clusters/{prefix}near_miss.jsonl", encoding="utf-8")]
random.Random(7).shuffle(para)
lines = [json.dumps({"id": f"p{i}", "text": p["text"], "user": f"u{i}"}, ensure_ascii=False) for i, p in enumerate(para)]
for i, n in enumerate(near):
    for side in "ab":
        lines.append(json.dumps({"id": f"n{i}{side}", "text": n[side], "stream": f"near{i}", "user": side}, ensure_ascii=False))
out = subprocess.run([kotae, "classify"], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True).stdout
verdicts = {v["id"]: v for v in map(json.loads, out.splitlines())}
ids = [verdicts[f"p{i}"].get("cluster") for i in range(len(para))]
same = together = 0
for i, j in itertools.combinations(range(len(para)), 2):
    if para[i]["cluster"] == para[j]["cluster"]:
        same += 1
        together += ids[i] is not None and ids[i] == ids[j]
cross = apart_wrong = 0
for i, j in itertools.combinations(range(len(para)), 2):
    if para[i]["cluster"] != para[j]["cluster"]:
        cross += 1
        apart_wrong += ids[i] is not None and ids[i] == ids[j]
apart = sum(1 for i in range(len(near)) if verdicts[f"n{i}a"].get("cluster") != verdicts[f"n{i}b"].get("cluster")
            or verdicts[f"n{i}a"].get("cluster") is None)
unclustered = sum(1 for x in ids if x is None)
print(f"paraphrase pairs sharing an id: {together}/{same} = {together/same:.3f}")
print(f"different-cluster pairs wrongly merged: {apart_wrong}/{cross} = {apart_wrong/cross:.4f}")
print(f"near-miss pairs kept apart: {apart}/{len(near)} = {apart/len(near):.3f}")
print(f"paraphrase lines without a cluster (not seen as questions): {unclustered}/{len(para)}")
if "-v" in sys.argv:
    by = {}
    for p, x in zip(para, ids):
        by.setdefault(p["cluster"], []).append((x, p["text"]))
    for c in sorted(by):
        print(c, " | ".join(f"{x}:{t}" for x, t in by[c]))
    for i, n in enumerate(near):
        a, b = verdicts[f"n{i}a"].get("cluster"), verdicts[f"n{i}b"].get("cluster")
        if a == b and a is not None:
            print("MERGED", n["a"], "/", n["b"])
if "-m" in sys.argv:
    groups = {}
    for p, x in zip(para, ids):
        if x is not None:
            groups.setdefault(x, []).append((p["cluster"], p["text"]))
    for x, members in groups.items():
        if len({c for c, _ in members}) > 1:
            print(x, " | ".join(f"{c}:{t}" for c, t in members))
