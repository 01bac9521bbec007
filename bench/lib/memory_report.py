#!/usr/bin/env python3
"""Report of bench/memory.sh: per-operation wall time and peak RSS of each tool, ratios
lifeboat/restic, bytes of peak RSS per blob, and the issue's targets.

usage: memory_report.py RUN_DIR OUT_MD [OTHER_RUN_DIR]

RUN_DIR holds results.tsv (op tool wall cpu rss_kib repo_bytes rc load note round) and
meta.txt (with a `blobs: N` line). With OTHER_RUN_DIR (the same benchmark at another size),
the marginal bytes per blob are added: (peak RSS here - peak RSS there) / (blobs here - blobs
there), which leaves out what does not grow with the repository (KDF, stacks, buffers).
"""
import os
import re
import sys

TOOLS = ["lifeboat", "restic", "rustic"]
# targets: peak RSS below restic's for these operations (issue 4: backup, check, prune)
RSS_TARGET_OPS = ["backup 1 (first)", "backup 2 (1 file changed)", "check (no data read)",
                  "prune (nothing to do)", "prune after forget", "prune after forget, run 2"]
INDEX_BYTES_PER_BLOB = 48


def load(run):
    rows = []
    with open(os.path.join(run, "results.tsv")) as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            if len(c) < 10:
                continue
            num = lambda s: float(s) if s not in ("", None) else None
            rows.append({"op": c[0], "tool": c[1], "wall": num(c[2]), "cpu": num(c[3]),
                         "rss": num(c[4]), "repo": num(c[5]), "rc": c[6], "load": num(c[7]),
                         "note": c[8]})
    meta = open(os.path.join(run, "meta.txt")).read().rstrip("\n")
    m = re.search(r"^blobs: (\d+)", meta, re.M)
    blobs = int(m.group(1)) if m else None
    return rows, meta, blobs


def fmt(x, nd=2):
    if x is None:
        return "-"
    if isinstance(x, float) and x >= 100:
        return "%.0f" % x
    return ("%." + str(nd) + "f") % x


def main():
    run, out_md = sys.argv[1], sys.argv[2]
    other = sys.argv[3] if len(sys.argv) > 3 else None
    rows, meta, blobs = load(run)
    by = {(r["op"], r["tool"]): r for r in rows}
    ops = []
    for r in rows:
        if r["op"] not in ops:
            ops.append(r["op"])
    tools = [t for t in TOOLS if any(r["tool"] == t for r in rows)]
    oby, oblobs = {}, None
    if other:
        orows, _, oblobs = load(other)
        oby = {(r["op"], r["tool"]): r for r in orows}

    def ok(r):
        return r is not None and r["rc"] == "0"

    def per_blob(r):
        return r["rss"] * 1024 / blobs if ok(r) and blobs else None

    def marginal(op, tool):
        r, o = by.get((op, tool)), oby.get((op, tool))
        if not (ok(r) and ok(o) and blobs and oblobs and blobs != oblobs):
            return None
        return (r["rss"] - o["rss"]) * 1024 / (blobs - oblobs)

    # ---- main table: one row per operation, tools side by side
    header = ["operation"]
    for t in tools:
        header += ["%s wall s" % t, "%s RSS MiB" % t, "%s B/blob" % t]
    if "restic" in tools and "lifeboat" in tools:
        header += ["lb/restic wall", "lb/restic RSS"]
    if "rustic" in tools and "lifeboat" in tools:
        header += ["lb/rustic wall", "lb/rustic RSS"]
    table = []
    for op in ops:
        cells = [op]
        for t in tools:
            r = by.get((op, t))
            if r is None:
                cells += ["", "", ""]
            elif not ok(r):
                cells += ["FAILED rc=%s" % r["rc"], fmt(r["rss"] / 1024 if r["rss"] else None, 1), ""]
            else:
                cells += [fmt(r["wall"]), fmt(r["rss"] / 1024, 1), fmt(per_blob(r), 0)]
        lb = by.get((op, "lifeboat"))
        for peer in ("restic", "rustic"):
            if peer in tools and "lifeboat" in tools:
                p = by.get((op, peer))
                if ok(lb) and ok(p) and p["wall"] and p["rss"]:
                    cells += [fmt(lb["wall"] / p["wall"]), fmt(lb["rss"] / p["rss"])]
                else:
                    cells += ["", ""]
        table.append(cells)

    # ---- secondary: CPU and repository size
    header2 = ["operation"] + ["%s cpu s" % t for t in tools] + ["%s repo MiB" % t for t in tools] + \
        ["%s load" % t for t in tools]
    table2 = []
    for op in ops:
        cells = [op]
        for key, scale in (("cpu", 1), ("repo", 1 / 1048576), ("load", 1)):
            for t in tools:
                r = by.get((op, t))
                cells.append(fmt(r[key] * scale if r and r[key] is not None else None, 1 if key == "repo" else 2))
        table2.append(cells)

    # ---- marginal bytes per blob (needs the other size)
    table3 = []
    if oby:
        for op in ops:
            table3.append([op] + [fmt(marginal(op, t), 1) for t in tools])

    # ---- targets
    targets = []
    for op in RSS_TARGET_OPS:
        lb = by.get((op, "lifeboat"))
        peer_op = op if op != "prune after forget, run 2" else "prune after forget"
        rs = by.get((peer_op, "restic"))
        if not (ok(lb) and ok(rs)):
            if lb is not None or rs is not None:
                targets.append(("n/a", "peak RSS < restic: %s" % op, "missing or failed measurement"))
            continue
        res = "PASS" if lb["rss"] < rs["rss"] else "FAIL"
        targets.append((res, "peak RSS < restic: %s" % op, "lifeboat %.1f MiB vs restic %.1f MiB (%s) (ratio %.2f)" % (
            lb["rss"] / 1024, rs["rss"] / 1024, peer_op, lb["rss"] / rs["rss"])))
    # index <= 48 B/blob: the marginal cost of the op that loads the full index (backup 2) is
    # the honest measure; peak RSS / blob is an upper bound that also counts fixed costs.
    for op in ("backup 2 (1 file changed)", "check (no data read)", "prune (nothing to do)"):
        lb = by.get((op, "lifeboat"))
        if not ok(lb):
            continue
        ub = per_blob(lb)
        mg = marginal(op, "lifeboat")
        if mg is not None:
            res = "PASS" if mg <= INDEX_BYTES_PER_BLOB else "FAIL"
            targets.append((res, "index <= %d B/blob: %s (marginal)" % (INDEX_BYTES_PER_BLOB, op),
                            "%.1f B/blob between %d and %d blobs (peak RSS / blob: %.1f)" % (mg, oblobs, blobs, ub)))
        else:
            res = "PASS" if ub <= INDEX_BYTES_PER_BLOB else "n/a"
            targets.append((res, "index <= %d B/blob: %s (peak RSS / blob)" % (INDEX_BYTES_PER_BLOB, op),
                            "%.1f B/blob is an upper bound (fixed costs included)%s" % (
                                ub, "" if res == "PASS" else "; run the other size for the marginal cost")))

    anomalies = os.path.join(run, "anomalies.txt")
    anom = open(anomalies).read().rstrip("\n") if os.path.exists(anomalies) else ""

    # ---- text
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
    text_table(header2, table2)
    if table3:
        print("Marginal peak RSS per blob, this size vs %s (%d vs %d blobs):" % (other, blobs, oblobs))
        text_table(["operation"] + ["%s B/blob" % t for t in tools], table3)
    print("Targets (issue 4):")
    for res, name, detail in targets:
        print("  %-4s  %-60s %s" % (res, name, detail))
    print()
    print("Anomalies:\n" + anom if anom else "Anomalies: none")

    # ---- markdown
    def md_table(f, hdr, tab):
        f.write("| " + " | ".join(hdr) + " |\n")
        f.write("|" + "|".join("---" for _ in hdr) + "|\n")
        for t in tab:
            f.write("| " + " | ".join(str(c).replace("|", "\\|") for c in t) + " |\n")
        f.write("\n")

    with open(out_md, "w") as f:
        f.write("## Index memory at scale (bench/memory.sh)\n\n```\n%s\n```\n\n" % meta)
        md_table(f, header, table)
        f.write("`B/blob` = peak RSS / blobs in the repository (an upper bound of the index's cost: "
                "everything else the process holds is included). Ratios are lifeboat / tool.\n\n")
        md_table(f, header2, table2)
        if table3:
            f.write("Marginal peak RSS per blob against the run at %d blobs (`%s`):\n\n" % (oblobs, other))
            md_table(f, ["operation"] + ["%s B/blob" % t for t in tools], table3)
        f.write("### Targets\n\n| result | target | detail |\n|---|---|---|\n")
        for res, name, detail in targets:
            f.write("| %s | %s | %s |\n" % (res, name, detail))
        f.write("\n### Anomalies\n\n")
        f.write(("```\n%s\n```\n" % anom) if anom else "None.\n")


if __name__ == "__main__":
    main()
