/* Many tiny files with distinct content, fast: the corpus of bench/memory.sh.
 *
 * usage: genblobs ROOT N PER_DIR            create ROOT/dNNNNN/fNNNN for files 0..N-1
 *        genblobs ROOT N PER_DIR --one I V  rewrite file I with variant V of its content
 *                                           (V = 0 is the original; mtime moves V hours on)
 *
 * File i lives in directory d<i / PER_DIR> (5 digits) as f<i % PER_DIR> (4 digits). Its content
 * is one line of 41-48 bytes naming i and a 64-bit hash of (i, V), so every file is distinct and
 * each one is a single blob for every tool (far below any minimum chunk size), and small enough
 * for ext4 to keep inside the inode (inline_data). Modes 0644, mtime fixed (2024-01-01 00:00:00
 * UTC + V hours), so two runs give the same tree. Output is deterministic.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const time_t BASE_MTIME = 1704067200; /* 2024-01-01T00:00:00Z */

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void die(const char *what, const char *path) {
    fprintf(stderr, "genblobs: %s %s: %s\n", what, path, strerror(errno));
    exit(1);
}

static void write_file(int dirfd, const char *dirpath, unsigned long i, unsigned long per_dir,
                       unsigned long v, int trunc) {
    char name[32], buf[96];
    snprintf(name, sizeof name, "f%04lu", i % per_dir);
    int n = snprintf(buf, sizeof buf, "blob %lu v%lu %016llx\n", i, v,
                     (unsigned long long)mix(((uint64_t)i << 8) ^ v ^ 0x6c696665626f6174ULL));
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : O_EXCL), 0644);
    if (fd < 0) die("create", name);
    if (write(fd, buf, (size_t)n) != n) die("write", name);
    struct timespec ts[2] = {{BASE_MTIME + (time_t)v * 3600, 0}, {BASE_MTIME + (time_t)v * 3600, 0}};
    if (futimens(fd, ts) != 0) die("futimens", name);
    if (close(fd) != 0) die("close", name);
    (void)dirpath;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 7) {
        fprintf(stderr, "usage: genblobs ROOT N PER_DIR [--one I V]\n");
        return 2;
    }
    const char *root = argv[1];
    unsigned long n = strtoul(argv[2], NULL, 10), per_dir = strtoul(argv[3], NULL, 10);
    if (per_dir == 0 || per_dir > 10000) {
        fprintf(stderr, "genblobs: PER_DIR must be 1..10000\n");
        return 2;
    }
    char path[4096];
    if (argc == 7) {
        unsigned long i = strtoul(argv[5], NULL, 10), v = strtoul(argv[6], NULL, 10);
        if (strcmp(argv[4], "--one") != 0 || i >= n) {
            fprintf(stderr, "genblobs: bad --one arguments\n");
            return 2;
        }
        snprintf(path, sizeof path, "%s/d%05lu", root, i / per_dir);
        int dfd = open(path, O_RDONLY | O_DIRECTORY);
        if (dfd < 0) die("open", path);
        write_file(dfd, path, i, per_dir, v, 1);
        close(dfd);
        return 0;
    }
    if (mkdir(root, 0755) != 0 && errno != EEXIST) die("mkdir", root);
    unsigned long ndirs = (n + per_dir - 1) / per_dir;
    for (unsigned long d = 0; d < ndirs; d++) {
        snprintf(path, sizeof path, "%s/d%05lu", root, d);
        if (mkdir(path, 0755) != 0) die("mkdir", path);
        int dfd = open(path, O_RDONLY | O_DIRECTORY);
        if (dfd < 0) die("open", path);
        unsigned long end = (d + 1) * per_dir < n ? (d + 1) * per_dir : n;
        for (unsigned long i = d * per_dir; i < end; i++) write_file(dfd, path, i, per_dir, 0, 0);
        struct timespec ts[2] = {{BASE_MTIME, 0}, {BASE_MTIME, 0}};
        if (futimens(dfd, ts) != 0) die("futimens", path);
        close(dfd);
        if ((d + 1) % 500 == 0) fprintf(stderr, "genblobs: %lu / %lu files\n", end, n);
    }
    struct timespec ts[2] = {{BASE_MTIME, 0}, {BASE_MTIME, 0}};
    if (utimensat(AT_FDCWD, root, ts, 0) != 0) die("utimensat", root);
    return 0;
}
