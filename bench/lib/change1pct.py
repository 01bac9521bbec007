#!/usr/bin/env python3
"""Change 1% of the files of a corpus tree deterministically, or undo that change.

usage: change1pct.py apply TREE STASH    -- stash originals, then change every 100th file
       change1pct.py reset TREE STASH    -- put the stashed originals back (content and mtime)

Files are taken in byte order of their relative path; the file at index 0, 100, 200, ...
is changed. A file larger than 8 KiB gets 64 bytes overwritten in its middle (same size);
a smaller one gets a line appended. Every changed file's mtime moves 1 hour forward, so
every tool's change detection (mtime/size/ctime/inode) sees it.
"""
import hashlib
import os
import shutil
import sys


def files(tree):
    out = []
    for dp, dns, fns in os.walk(tree):
        for fn in fns:
            p = os.path.join(dp, fn)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(os.path.relpath(p, tree))
    out.sort(key=lambda s: s.encode("utf-8", "surrogateescape"))
    return out


def main():
    mode, tree, stash = sys.argv[1], sys.argv[2], sys.argv[3]
    if mode == "reset":
        n = 0
        for dp, _, fns in os.walk(stash):
            for fn in fns:
                src = os.path.join(dp, fn)
                rel = os.path.relpath(src, stash)
                shutil.copy2(src, os.path.join(tree, rel))
                n += 1
        print("reset %d files" % n)
        return
    assert mode == "apply"
    sel = files(tree)[::100]
    changed_bytes = 0
    for rel in sel:
        p = os.path.join(tree, rel)
        st = os.stat(p)
        sp = os.path.join(stash, rel)
        if not os.path.exists(sp):
            os.makedirs(os.path.dirname(sp), exist_ok=True)
            shutil.copy2(p, sp)
        patch = hashlib.sha256(rel.encode("utf-8", "surrogateescape")).hexdigest().encode()
        os.chmod(p, st.st_mode | 0o200)
        if st.st_size > 8192:
            with open(p, "r+b") as f:
                f.seek(st.st_size // 2)
                f.write(patch)
            changed_bytes += 64
        else:
            with open(p, "ab") as f:
                f.write(b"\n# lifeboat bench change " + patch + b"\n")
            changed_bytes += 91
        os.chmod(p, st.st_mode)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 3600 * 10**9))
    print("changed %d files (%d bytes written)" % (len(sel), changed_bytes))


if __name__ == "__main__":
    main()
