#!/usr/bin/env python3
"""Report of bench/remote.sh.

usage: remote_report.py RESULTS_TSV META ANOMALIES OUT_MD

results.tsv rows (lib/measure.sh): op tool wall cpu rss_kib repo_bytes rc load note round,
where op is "<backend>: backup (first)", "<backend>: restore" or "<backend>: backup (first),
faults" (lifeboat only). A step that could not run has rc != 0 and its reason in note.
With several rounds every number is the median over the successful rounds.

Targets (issue 5): lifeboat <= 0.5x restic's wall time for the first backup and the restore on
each backend; lifeboat's backup under injected request failures <= 1.5x its fault-free time.
Prints the markdown on stdout and writes it to OUT_MD.
"""
import statistics
import sys

TOOLS = ["lifeboat", "restic", "rustic"]
BACKENDS = ["sftp", "s3", "swift"]
STEPS = ["backup (first)", "restore"]
TARGET = 0.5
FAULT_TARGET = 1.5


def fmt(x, nd=2):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return "%.0f" % x
    return ("%." + str(nd) + "f") % x


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def main():
    tsv, meta_path, anomalies_path, out_md = sys.argv[1:5]
    rows = []
    with open(tsv) as f:
        for line in f:
            c = line.rstrip("\n").split("\t")
            if len(c) < 10:
                continue
            be, _, step = c[0].partition(": ")
            rows.append({"be": be, "step": step, "tool": c[1], "wall": num(c[2]), "cpu": num(c[3]),
                         "rss": num(c[4]), "repo": num(c[5]), "rc": c[6], "load": num(c[7]),
                         "note": c[8], "round": c[9]})
    meta = open(meta_path).read().rstrip("\n")
    try:
        anomalies = open(anomalies_path).read().rstrip("\n")
    except OSError:
        anomalies = ""
    rounds = sorted({r["round"] for r in rows}, key=int)
    backends = [b for b in BACKENDS if any(r["be"] == b for r in rows)]
    tools = [t for t in TOOLS if any(r["tool"] == t for r in rows)]

    def cell(be, tool, step):
        """{'wall','cpu','rss','repo': medians over ok rounds, 'min','max', 'fail': reason or None, 'n'}"""
        rs = [r for r in rows if r["be"] == be and r["tool"] == tool and r["step"] == step]
        if not rs:
            return None
        ok = [r for r in rs if r["rc"] == "0" and r["wall"] is not None]
        # a restore whose verification failed counts as a failure
        bad_verify = [r for r in ok if "verify: FAIL" in r["note"]]
        ok = [r for r in ok if r not in bad_verify]
        out = {"n": len(ok), "of": len(rs), "fail": None, "note": rs[-1]["note"]}
        if not ok:
            r = (bad_verify or [x for x in rs if x["rc"] != "0"] or rs)[-1]
            if r in bad_verify:
                out["fail"] = out["short"] = "fails (restored tree differs from the source)"
            else:
                why = r["note"] or "exit code %s" % r["rc"]
                out["fail"] = "fails (rc %s: %s)" % (r["rc"], why)
                # the last ": "-separated part of the message is usually the cause itself
                out["short"] = "fails: " + why.rstrip(".").split(": ")[-1]
            return out
        for k in ("wall", "cpu", "rss", "repo"):
            vals = [r[k] for r in ok if r[k] is not None]
            out[k] = statistics.median(vals) if vals else None
        out["min"] = min(r["wall"] for r in ok)
        out["max"] = max(r["wall"] for r in ok)
        return out

    def wall_str(c, short=False):
        if c is None:
            return "-"
        if c["fail"]:
            return c["short"] if short else c["fail"]
        s = "%s s" % fmt(c["wall"])
        if len(rounds) > 1:
            s += " (%s-%s)" % (fmt(c["min"]), fmt(c["max"]))
        if c["n"] < c["of"]:
            s += " [%d of %d rounds ok]" % (c["n"], c["of"])
        return s

    def ratio(a, b):
        if a is None or b is None or a["fail"] or b["fail"] or not b["wall"]:
            return None
        return a["wall"] / b["wall"]

    out = []
    out.append("# Lifeboat remote benchmark (issue 5): SFTP, S3, Swift")
    out.append("")
    out.append("```")
    out.append(meta)
    out.append("```")
    out.append("")
    out.append("## Targets")
    out.append("")
    out.append("Wall time, median of %d round(s). Target: lifeboat <= %.1fx restic on first backup and "
               "restore; under injected failures <= %.1fx lifeboat's fault-free backup."
               % (len(rounds), TARGET, FAULT_TARGET))
    out.append("")
    hdr = "| backend | step | " + " | ".join(tools)
    if "lifeboat" in tools and "restic" in tools:
        hdr += " | lifeboat/restic | <= %.1fx" % TARGET
    if "lifeboat" in tools and "rustic" in tools:
        hdr += " | lifeboat/rustic"
    hdr += " |"
    out.append(hdr)
    out.append("|" + "---|" * (hdr.count("|") - 1))
    verdicts = []
    for be in backends:
        for step in STEPS:
            cs = {t: cell(be, t, step) for t in tools}
            line = "| %s | %s | " % (be, step) + " | ".join(wall_str(cs[t], short=True) for t in tools)
            if "lifeboat" in tools and "restic" in tools:
                r = ratio(cs["lifeboat"], cs["restic"])
                if r is not None:
                    v = "PASS" if r <= TARGET else "FAIL"
                elif cs["lifeboat"] is not None and cs["lifeboat"]["fail"]:
                    v = "FAIL (lifeboat fails)"
                elif cs["restic"] is not None and cs["restic"]["fail"]:
                    v = "n/a (restic fails)"
                else:
                    v = "n/a"
                verdicts.append(("%s %s vs restic" % (be, step), v, r))
                line += " | %s | %s" % (fmt(r) + "x" if r is not None else "-", v)
            if "lifeboat" in tools and "rustic" in tools:
                r = ratio(cs["lifeboat"], cs["rustic"])
                line += " | %s" % (fmt(r) + "x" if r is not None else "-")
            out.append(line + " |")
    out.append("")
    fails = [(be, t, step, cell(be, t, step)) for be in backends for step in STEPS for t in tools]
    fails = [(be, t, step, c) for be, t, step, c in fails if c is not None and c["fail"]]
    if fails:
        out.append("Failures:")
        out.append("")
        for be, t, step, c in fails:
            out.append("- %s %s %s: %s" % (t, be, step, c["fail"]))
        out.append("")

    fault_rows = [b for b in backends if cell(b, "lifeboat", "backup (first), faults") is not None]
    if fault_rows:
        out.append("### Backup under injected request failures (lifeboat)")
        out.append("")
        out.append("| backend | fault-free | with faults | ratio | <= %.1fx | injection, retries, check |" % FAULT_TARGET)
        out.append("|---|---|---|---|---|---|")
        for be in fault_rows:
            a = cell(be, "lifeboat", "backup (first)")
            b = cell(be, "lifeboat", "backup (first), faults")
            r = ratio(b, a)
            injected = [int(x["note"].split("retry lines): ")[1].split(";")[0])
                        for x in rows if x["be"] == be and x["tool"] == "lifeboat"
                        and x["step"] == "backup (first), faults" and "retry lines): " in x["note"]]
            if r is not None and injected and max(injected) == 0:
                v = "n/a (no request failed: nothing was tested)"
            elif r is not None:
                v = "PASS" if r <= FAULT_TARGET else "FAIL"
            elif b["fail"]:
                v = "FAIL (backup with faults fails)"
            else:
                v = "n/a"
            verdicts.append(("%s backup with faults vs fault-free" % be, v, r))
            out.append("| %s | %s | %s | %s | %s | %s |" % (be, wall_str(a), wall_str(b),
                                                          fmt(r) + "x" if r is not None else "-", v, b["note"]))
        out.append("")

    out.append("### Verdicts")
    out.append("")
    for name, v, r in verdicts:
        out.append("- %s: %s%s" % (name, v, " (%sx)" % fmt(r) if r is not None else ""))
    out.append("")

    out.append("## Every step")
    out.append("")
    out.append("Medians over successful rounds; repository size after the backup (`du -sb` of the SFTP "
               "directory, sum of the object sizes on S3/Swift).")
    out.append("")
    out.append("| backend | step | tool | wall s | cpu s | peak RSS MiB | repo MiB | note |")
    out.append("|---|---|---|---|---|---|---|---|")
    for be in backends:
        for step in STEPS + ["backup (first), faults"]:
            for t in tools:
                c = cell(be, t, step)
                if c is None:
                    continue
                if c["fail"]:
                    out.append("| %s | %s | %s | %s | - | - | - | |" % (be, step, t, c["fail"]))
                    continue
                out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                    be, step, t, fmt(c["wall"]), fmt(c["cpu"]),
                    fmt(c["rss"] / 1024, 0) if c["rss"] else "-",
                    fmt(c["repo"] / 1048576, 1) if c["repo"] else "-", c["note"].replace("|", "/")))
    out.append("")
    if len(rounds) > 1 or any(r["load"] for r in rows):
        out.append("<details><summary>raw rows</summary>")
        out.append("")
        out.append("| round | backend | step | tool | wall s | cpu s | rss MiB | rc | load |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["round"], r["be"], r["step"], r["tool"], fmt(r["wall"]), fmt(r["cpu"]),
                fmt(r["rss"] / 1024, 0) if r["rss"] else "-", r["rc"], fmt(r["load"])))
        out.append("")
        out.append("</details>")
        out.append("")
    out.append("## Anomalies")
    out.append("")
    out.append("```")
    out.append(anomalies if anomalies else "none")
    out.append("```")
    md = "\n".join(out) + "\n"
    with open(out_md, "w") as f:
        f.write(md)
    sys.stdout.write(md)


if __name__ == "__main__":
    main()
