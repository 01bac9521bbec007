#!/usr/bin/env python3
"""A deterministic corpus that changes every generation (bench/prune.sh).

usage: gen_churn.py init TREE SIZE_BYTES [SEED]   -- write generation 1 into TREE (must not exist)
       gen_churn.py step TREE GEN [SEED]          -- turn generation GEN-1 into GEN, in place

Generation 1: files in 16 x 8 directories, sizes drawn from three classes (by count: 80% small
0.5-32 KiB, 17% medium 32-512 KiB, 3% large 1-8 MiB; ~200 KiB on average), about half the bytes text-like (pieces of
a word pool, zstd -3 ~3-4x) and half random (incompressible).

Each later generation, with a generator seeded by (SEED, GEN), over the files in path order:
  - 5% of the files are rewritten: half of them entirely (new content, similar size), half
    with 1-4 regions of 4 KiB overwritten in place (content-defined chunking keeps the rest);
  - 1% of the files are deleted;
  - new files are added, as many as were deleted plus 0.2% (the tree grows slowly).
Same SIZE, SEED and sequence of steps give the same bytes on every machine (Python's Mersenne
Twister is specified). mtimes are left to the file system (every tool sees the changes).
"""
import os
import random
import sys

NDIRS = (16, 8)
WORDS = (b"the of and to in is was for on that with as by at from his her which or had not be are "
         b"this but have an they one were you all their has been would there more when will who "
         b"backup restore snapshot index pack blob tree chunk prune forget repository archive "
         b"delta compress encrypt verify checksum lease marker segment offset length stream "
         b"kernel module driver socket buffer thread process memory page cache inode block "
         b"error warning info debug trace request response header payload token session").split()


def pool(seed):
    """1 MiB of text-like bytes, the source of every text file's pieces."""
    r = random.Random(seed * 7919 + 1)
    out, n = [], 0
    while n < (1 << 20):
        line = b" ".join(r.choice(WORDS) for _ in range(4 + r.randrange(14)))
        line = (b"%d: " % r.randrange(100000)) + line + b"\n"
        out.append(line)
        n += len(line)
    return b"".join(out)


def draw_size(r):
    c = r.random()
    if c < 0.80:
        return 512 + r.randrange(32 * 1024 - 512)
    if c < 0.97:
        return 32 * 1024 + r.randrange(480 * 1024)
    return (1 << 20) + r.randrange(7 << 20)


def content(r, size, text_pool):
    if r.random() < 0.5:
        return r.randbytes(size)
    parts, n = [], 0
    while n < size:
        k = 256 + r.randrange(3840)
        off = r.randrange(len(text_pool) - k)
        piece = text_pool[off:off + k] + (b"#%016x\n" % r.getrandbits(64))
        parts.append(piece)
        n += len(piece)
    return b"".join(parts)[:size]


def listing(tree):
    out = []
    for dp, _, fns in os.walk(tree):
        for fn in fns:
            out.append(os.path.relpath(os.path.join(dp, fn), tree))
    out.sort()
    return out


def new_file(tree, r, text_pool, tag):
    d = "d%02d/s%d" % (r.randrange(NDIRS[0]), r.randrange(NDIRS[1]))
    os.makedirs(os.path.join(tree, d), exist_ok=True)
    ext = r.choice(("txt", "log", "dat", "bin", "json", "c", "md"))
    p = os.path.join(tree, d, "%s-%08x.%s" % (tag, r.getrandbits(32), ext))
    data = content(r, draw_size(r), text_pool)
    with open(p, "wb") as f:
        f.write(data)
    return len(data)


def init(tree, size, seed):
    if os.path.exists(tree):
        sys.exit("gen_churn: %s exists" % tree)
    r = random.Random(seed)
    text_pool = pool(seed)
    total, files = 0, 0
    while total < size:
        total += new_file(tree, r, text_pool, "g1-%06d" % files)
        files += 1
    print("generation 1: %d files, %d bytes" % (files, total))


def step(tree, gen, seed):
    r = random.Random(seed * 100003 + gen)
    text_pool = pool(seed)
    files = listing(tree)
    n = len(files)
    k_rewrite = max(1, n * 5 // 100)
    k_delete = max(1, n // 100)
    pick = r.sample(range(n), k_rewrite + k_delete)
    rewritten = deleted = edited = 0
    written = 0
    for j, i in enumerate(pick):
        p = os.path.join(tree, files[i])
        if j >= k_rewrite:
            os.unlink(p)
            deleted += 1
            continue
        size = os.path.getsize(p)
        if r.random() < 0.5 or size < 16384:
            data = content(r, max(1024, int(size * (0.8 + 0.4 * r.random()))), text_pool)
            with open(p, "wb") as f:
                f.write(data)
            written += len(data)
            rewritten += 1
        else:
            with open(p, "r+b") as f:
                for _ in range(1 + r.randrange(4)):
                    f.seek(r.randrange(size - 4096))
                    f.write(r.randbytes(4096))
                    written += 4096
            edited += 1
    added = 0
    for a in range(k_delete + max(1, n // 500)):
        written += new_file(tree, r, text_pool, "g%d-%04d" % (gen, a))
        added += 1
    print("generation %d: %d files before; %d rewritten, %d edited in place, %d deleted, %d added; "
          "%d bytes written" % (gen, n, rewritten, edited, deleted, added, written))


def main():
    mode, tree = sys.argv[1], sys.argv[2]
    if mode == "init":
        init(tree, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 20240701)
    elif mode == "step":
        step(tree, int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 20240701)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
