/*
 * recovery_bench.c - how long a store takes to open from its log.
 *
 * Writes N versions of a 100-byte document (N/8 documents, 8 versions
 * each, fsync never) into a fresh data directory, closes the store, then
 * times sb_store_open() on it, and once more after a compaction (snapshot
 * plus an empty log).  Usage: recovery_bench DIR [N]; DIR must not exist.
 */
#define _POSIX_C_SOURCE 200809L

#include "snapback.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static sb_store *open_at(const char *dir)
{
    sb_options o;
    sb_store *s;
    sb_options_init(&o);
    o.data_dir = dir;
    o.fsync = SB_FSYNC_NEVER;
    o.compact_ratio = 0; /* compaction only when asked */
    sb_status st = sb_store_open(&o, &s);
    if (st != SB_OK) {
        fprintf(stderr, "recovery_bench: open %s: %s\n", dir,
                sb_status_str(st));
        exit(1);
    }
    return s;
}

static void fill(const char *dir, unsigned long n)
{
    char payload[100], id[32];
    sb_store *s = open_at(dir);
    sb_coll *c;

    memset(payload, 'x', sizeof(payload));
    sb_collection_open(s, "bench", 5, &c);
    for (unsigned long i = 0; i < n; i++) {
        int len = snprintf(id, sizeof(id), "doc%08lu", i % (n / 8));
        if (sb_put(c, id, (size_t)len, payload, sizeof(payload), NULL, NULL) !=
            SB_OK) {
            fprintf(stderr, "recovery_bench: put failed\n");
            exit(1);
        }
    }
    sb_store_close(s);
}

static void time_open(const char *dir, unsigned long n, const char *what)
{
    double t0 = now();
    sb_store *s = open_at(dir);
    double t = now() - t0;
    printf("recovery of %lu versions of 100 bytes from %s: %.3f s (%.2f M "
           "versions/s)\n",
           n, what, t, (double)n / t / 1e6);
    if (strcmp(what, "the log") == 0 && sb_store_compact(s) != SB_OK) {
        fprintf(stderr, "recovery_bench: compaction failed\n");
        exit(1);
    }
    sb_store_close(s);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: recovery_bench DIR [VERSIONS]\n");
        return 2;
    }
    unsigned long n = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000000;
    if (n < 8)
        n = 8;
    sb_thread_register();
    fill(argv[1], n);
    time_open(argv[1], n, "the log");
    time_open(argv[1], n, "a snapshot");
    return 0;
}
