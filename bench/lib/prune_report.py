#!/usr/bin/env python3
"""Report of bench/prune.sh.

usage: prune_report.py RUN_DIR GENS OUT_MD

results.tsv rows: op tool wall cpu rss_kib repo_bytes rc load note generation. The retention
step of a generation is lifeboat's `forget` + `prune` (wall summed, peak RSS the larger) and
restic's / rustic's single `forget --prune`; lifeboat's `prune` alone is shown too. Reported:
the last generation, the mean of the last 5, every generation (compact), the final prune /
check / check --read-data, and the issue's targets (prune wall and peak RSS <= 0.5x restic).
"""
import os
import sys

TOOLS = ["lifeboat", "restic", "rustic"]


def fmt(x, nd=2):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return "%.0f" % x
    return ("%." + str(nd) + "f") % x


def main():
    run, gens, out_md = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rows = []
    with open(os.path.join(run, "results.tsv")) as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            if len(c) < 10:
                continue
            num = lambda s: float(s) if s != "" else None
            rows.append({"op": c[0], "tool": c[1], "wall": num(c[2]), "cpu": num(c[3]), "rss": num(c[4]),
                         "repo": num(c[5]), "rc": c[6], "load": num(c[7]), "gen": int(c[9])})
    meta = open(os.path.join(run, "meta.txt")).read().rstrip("\n")
    tools = [t for t in TOOLS if any(r["tool"] == t for r in rows)]
    by = {}
    for r in rows:
        by[(r["gen"], r["tool"], r["op"])] = r
    failed = [r for r in rows if r["rc"] != "0"]

    def step(gen, tool):
        """retention step of a generation: (wall, rss_kib, repo_bytes, cpu) or None"""
        ops = ["forget", "prune"] if tool == "lifeboat" else ["forget --prune"]
        rs = [by.get((gen, tool, o)) for o in ops]
        if any(r is None or r["rc"] != "0" for r in rs):
            return None
        return (sum(r["wall"] for r in rs), max(r["rss"] for r in rs), rs[-1]["repo"], sum(r["cpu"] for r in rs))

    def single(gen, tool, op):
        r = by.get((gen, tool, op))
        if r is None or r["rc"] != "0":
            return None
        return (r["wall"], r["rss"], r["repo"], r["cpu"])

    def mean(vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        return tuple(sum(v[i] for v in vals) / len(vals) for i in range(4))

    last = gens
    window = list(range(max(1, gens - 4), gens + 1))
    summary = []  # (label, {tool: (wall, rss, repo, cpu)})
    summary.append(("retention step (forget + prune), generation %d" % last, {t: step(last, t) for t in tools}))
    summary.append(("retention step, mean of generations %d-%d" % (window[0], window[-1]),
                    {t: mean([step(g, t) for g in window]) for t in tools}))
    if "lifeboat" in tools:
        summary.append(("lifeboat prune alone, generation %d" % last, {"lifeboat": single(last, "lifeboat", "prune")}))
        summary.append(("lifeboat prune alone, mean of generations %d-%d" % (window[0], window[-1]),
                        {"lifeboat": mean([single(g, "lifeboat", "prune") for g in window])}))
    summary.append(("backup, generation %d" % last, {t: single(last, t, "backup") for t in tools}))
    summary.append(("backup, mean of generations %d-%d" % (window[0], window[-1]),
                    {t: mean([single(g, t, "backup") for g in window]) for t in tools}))
    fin = gens + 1
    for op in ("final: prune again", "final: check", "final: check --read-data"):
        summary.append((op.replace("final: ", "after generation %d: " % last), {t: single(fin, t, op) for t in tools}))

    header = ["step"]
    for t in tools:
        header += ["%s wall s" % t, "%s RSS MiB" % t, "%s repo MiB" % t]
    if "lifeboat" in tools and "restic" in tools:
        header += ["lb/restic wall", "lb/restic RSS"]
    if "lifeboat" in tools and "rustic" in tools:
        header += ["lb/rustic wall", "lb/rustic RSS"]
    table = []
    for label, d in summary:
        cells = [label]
        for t in tools:
            v = d.get(t)
            cells += ["", "", ""] if v is None else [fmt(v[0]), fmt(v[1] / 1024, 1), fmt(v[2] / 1048576 if v[2] else None, 1)]
        lb = d.get("lifeboat")
        for peer in ("restic", "rustic"):
            if "lifeboat" in tools and peer in tools:
                p = d.get(peer)
                if lb is None and p is None:
                    cells += ["", ""]
                elif lb is None or p is None:
                    cells += ["-", "-"]
                else:
                    cells += [fmt(lb[0] / p[0]), fmt(lb[1] / p[1])]
        table.append(cells)

    # every generation, compact: retention wall / RSS / repo size per tool
    gheader = ["gen"] + ["%s %s" % (t, k) for t in tools for k in ("step s", "RSS MiB", "repo MiB")]
    if "lifeboat" in tools:
        gheader += ["lifeboat prune s"]
    gtable = []
    for g in range(1, gens + 1):
        cells = [str(g)]
        for t in tools:
            v = step(g, t)
            cells += ["-", "-", "-"] if v is None else [fmt(v[0]), fmt(v[1] / 1024, 1), fmt(v[2] / 1048576, 1)]
        if "lifeboat" in tools:
            v = single(g, "lifeboat", "prune")
            cells.append(fmt(v[0]) if v else "-")
        gtable.append(cells)

    targets = []
    if "lifeboat" in tools and "restic" in tools:
        for label, d in summary[:2]:
            lb, rs = d.get("lifeboat"), d.get("restic")
            for i, what in ((0, "wall"), (1, "peak RSS")):
                name = "prune %s <= 0.5x restic (%s)" % (what, label.split(", ", 1)[1])
                if lb is None or rs is None:
                    targets.append(("n/a", name, "missing or failed measurement"))
                    continue
                res = "PASS" if lb[i] <= 0.5 * rs[i] else "FAIL"
                unit = "s" if i == 0 else "MiB"
                scale = 1 if i == 0 else 1 / 1024
                targets.append((res, name, "lifeboat forget+prune %s %s vs restic forget --prune %s %s (ratio %.2f)" % (
                    fmt(lb[i] * scale), unit, fmt(rs[i] * scale), unit, lb[i] / rs[i])))

    fails = "\n".join("generation %d %s %s: rc %s" % (r["gen"], r["tool"], r["op"], r["rc"]) for r in failed)
    anomalies = os.path.join(run, "anomalies.txt")
    anom = open(anomalies).read().rstrip("\n") if os.path.exists(anomalies) else ""
    anom = "\n".join(x for x in (anom, fails) if x)

    def text_table(hdr, tab):
        widths = [max(len(str(x)) for x in col) for col in zip(hdr, *tab)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
        print(line(hdr))
        print(line(["-" * w for w in widths]))
        for t in tab:
            print(line(t))
        print()

    print(meta)
    print()
    text_table(header, table)
    text_table(gheader, gtable)
    print("Targets (issue 4):")
    for res, name, detail in targets:
        print("  %-4s  %-55s %s" % (res, name, detail))
    print()
    print("Anomalies:\n" + anom if anom else "Anomalies: none")

    def md_table(f, hdr, tab):
        f.write("| " + " | ".join(hdr) + " |\n")
        f.write("|" + "|".join("---" for _ in hdr) + "|\n")
        for t in tab:
            f.write("| " + " | ".join(str(c).replace("|", "\\|") for c in t) + " |\n")
        f.write("\n")

    with open(out_md, "w") as f:
        f.write("## Prune after %d forget-prune generations (bench/prune.sh)\n\n```\n%s\n```\n\n" % (gens, meta))
        md_table(f, header, table)
        f.write("Retention step: lifeboat `forget` + `prune` (two commands: wall summed, peak RSS the "
                "larger), restic and rustic `forget --prune`. `repo MiB` is the repository size after "
                "the step. Ratios are lifeboat / tool.\n\n")
        f.write("### Targets\n\n| result | target | detail |\n|---|---|---|\n")
        for res, name, detail in targets:
            f.write("| %s | %s | %s |\n" % (res, name, detail))
        f.write("\n### Every generation\n\n")
        md_table(f, gheader, gtable)
        f.write("### Anomalies\n\n")
        f.write(("```\n%s\n```\n" % anom) if anom else "None.\n")


if __name__ == "__main__":
    main()
