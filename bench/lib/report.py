#!/usr/bin/env python3
"""Render bench/run.sh results: a text table on stdout and a markdown file.

usage: report.py RESULTS.tsv META.txt ANOMALIES.txt OUT.md

TSV columns: op tool wall cpu rss_kib repo_bytes rc load1 note round
With several rounds, each (op, tool) is reported as the median of its rounds (a failed round
marks it failed), with the wall-time range beside it.
"""
import os
import statistics
import sys

PEERS = ["restic", "borg", "rustic"]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            p += [""] * (10 - len(p))
            op, tool, wall, cpu, rss, repo, rc, load1, note, rnd = p[:10]
            rows.append(dict(op=op, tool=tool, wall=num(wall), cpu=num(cpu),
                             rss=(num(rss) / 1024 if num(rss) is not None else None),
                             repo=(num(repo) / 1048576 if num(repo) is not None else None),
                             rc=rc, load=num(load1), note=note, round=rnd or "1"))
    return rows


def median_rows(raw):
    """One row per (op, tool): medians over rounds, in first-seen order."""
    groups = {}
    for r in raw:
        groups.setdefault((r["op"], r["tool"]), []).append(r)
    out = []
    for (op, tool), rs in groups.items():
        med = lambda k: (statistics.median([x[k] for x in rs if x[k] is not None])
                         if any(x[k] is not None for x in rs) else None)
        failed = [x["rc"] for x in rs if x["rc"] != "0"]
        walls = [x["wall"] for x in rs if x["wall"] is not None]
        notes = []
        for x in rs:
            if x["note"] and x["note"] not in notes:
                notes.append(x["note"])
        out.append(dict(op=op, tool=tool, wall=med("wall"), cpu=med("cpu"), rss=med("rss"),
                        repo=med("repo"), rc=(failed[0] if failed else "0"), load=med("load"),
                        note=" | ".join(notes), n=len(rs),
                        wall_range=("%.2f-%.2f" % (min(walls), max(walls)) if len(walls) > 1 else "")))
    return out


def fmt(v, nd=2):
    return "-" if v is None else ("%.*f" % (nd, v))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def main():
    tsv, meta, anomalies, out_md = sys.argv[1:5]
    rows = median_rows(load(tsv))
    multi = any(r["n"] > 1 for r in rows)
    ok = lambda r: r is not None and r["rc"] == "0"
    by = {(r["op"], r["tool"]): r for r in rows}
    ops = []
    for r in rows:
        if r["op"] not in ops:
            ops.append(r["op"])

    header = ["operation", "tool", "wall s", "cpu s", "peak RSS MiB", "repo MiB",
              "lifeboat/tool wall", "cpu", "RSS", "repo", "load", "note"]
    if multi:
        header.insert(3, "wall range")
    table = []
    for op in ops:
        lb = by.get((op, "lifeboat"))
        for r in rows:
            if r["op"] != op:
                continue
            rat = ["", "", "", ""]
            if r["tool"] in PEERS and ok(lb) and ok(r):
                rat = [fmt(ratio(lb[k], r[k])) for k in ("wall", "cpu", "rss", "repo")]
            status = "" if r["rc"] == "0" else "FAILED rc=%s" % r["rc"]
            cells = [op, r["tool"], fmt(r["wall"]), fmt(r["cpu"]), fmt(r["rss"], 1),
                     fmt(r["repo"], 1), *rat, fmt(r["load"]), " ".join(x for x in (status, r["note"]) if x)]
            if multi:
                cells.insert(3, r["wall_range"])
            table.append(cells)

    # ---- targets from the issue
    targets = []

    def target(name, lb_key, peer_rows, factor, key="wall", cmp_text=None):
        lb = by.get(lb_key)
        peers = [p for p in peer_rows if p is not None]
        if not ok(lb) or not peers or not all(ok(p) for p in peers) or lb[key] is None:
            targets.append((name, "n/a", "missing or failed measurement"))
            return
        best = min(p[key] for p in peers)
        limit = factor * best
        res = "PASS" if lb[key] <= limit else "FAIL"
        targets.append((name, res, "lifeboat %s vs limit %s (%s x %s; ratio %s)" % (
            fmt(lb[key]), fmt(limit), fmt(factor), fmt(best), fmt(lb[key] / best if best else None))))

    fb = "backup tree: first"
    target("first backup wall <= 0.5x restic", (fb, "lifeboat"), [by.get((fb, "restic"))], 0.5)
    target("first backup wall <= 0.7x rustic", (fb, "lifeboat"), [by.get((fb, "rustic"))], 0.7)
    ub = "backup tree: unchanged"
    target("unchanged backup wall <= 0.5x fastest peer", (ub, "lifeboat"),
           [by.get((ub, p)) for p in PEERS if (ub, p) in by], 0.5)
    rs = "restore tree (latest)"
    target("restore wall <= 0.6x restic", (rs, "lifeboat"), [by.get((rs, "restic"))], 0.6)
    ck = "check --read-data"
    target("check --read-data wall <= 0.5x restic", (ck, "lifeboat"), [by.get((ck, "restic"))], 0.5)
    for op in ops:
        if op.startswith("limit:"):
            continue
        target("peak RSS <= restic: %s" % op, (op, "lifeboat"), [by.get((op, "restic"))], 1.0, key="rss")
    for op in ("backup tree: 1% changed", "backup sql stream (stdin)", "backup sparse image"):
        target("repo size <= 1.03x restic: %s" % op, (op, "lifeboat"), [by.get((op, "restic"))], 1.03,
               key="repo")

    meta_text = open(meta).read().rstrip("\n")
    anom = open(anomalies).read().rstrip("\n") if os.path.exists(anomalies) else ""

    # ---- text
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    print(meta_text)
    print()
    print(line(header))
    print(line(["-" * w for w in widths]))
    prev = None
    for t in table:
        if prev is not None and t[0] != prev:
            print()
        print(line(t))
        prev = t[0]
    print()
    print("Targets (issue):")
    for name, res, detail in targets:
        print("  %-4s  %-55s %s" % (res, name, detail))
    print()
    print("Anomalies:" if anom else "Anomalies: none (every restore verified against the source)")
    if anom:
        print(anom)

    # ---- markdown
    with open(out_md, "w") as f:
        f.write("## Lifeboat vs restic, borg, rustic\n\n")
        f.write("```\n%s\n```\n\n" % meta_text)
        f.write("| " + " | ".join(header) + " |\n")
        f.write("|" + "|".join("---" for _ in header) + "|\n")
        for t in table:
            f.write("| " + " | ".join(str(c).replace("|", "\\|") for c in t) + " |\n")
        f.write("\nRatios are lifeboat / tool (below 1: lifeboat is faster or smaller). "
                "`limit:` rows are the physical limits on the same data. `load` is the 1-minute "
                "load average when the command started (other work on the machine).%s\n\n"
                % (" Numbers are medians over the rounds." if multi else ""))
        f.write("### Targets\n\n| result | target | detail |\n|---|---|---|\n")
        for name, res, detail in targets:
            f.write("| %s | %s | %s |\n" % (res, name, detail))
        f.write("\n### Anomalies\n\n")
        f.write(("```\n%s\n```\n" % anom) if anom else "None: every restore was verified against the source.\n")


if __name__ == "__main__":
    main()
