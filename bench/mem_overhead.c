/*
 * mem_overhead.c - how many bytes snapback allocates per retained version
 * beyond the id and payload bytes it must keep.
 *
 * Writes DOCS documents x VERSIONS versions (all retained: the default
 * depth is above VERSIONS) and reads jemalloc's count of bytes allocated by
 * the process before and after.  That count covers every allocation, hash
 * tables included, but not jemalloc's own metadata or unused pages, so it
 * is the store's cost, not the process's resident size.  Without jemalloc
 * there is no such count and the program says so.
 *
 * Then the same count for change sets: their index, and the versions they
 * pin beyond the ring (measure_change_sets()).
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include "snapback.h"

#include <stdio.h>

#ifdef SNAPBACK_HAVE_JEMALLOC

#include <jemalloc/jemalloc.h>

#include <inttypes.h>
#include <string.h>
#include <time.h>

#define DOCS     100000
#define VERSIONS 8

/* Bytes the process has allocated and not freed, or 0 if unknown. */
static size_t allocated(void)
{
    uint64_t epoch = 1;
    size_t len = sizeof epoch, bytes = 0;

    /* The statistics are a snapshot refreshed only when the epoch moves. */
    if (mallctl("epoch", &epoch, &len, &epoch, len) != 0)
        return 0;
    len = sizeof bytes;
    if (mallctl("stats.allocated", &bytes, &len, NULL, 0) != 0)
        return 0;
    return bytes;
}

static int write_all(sb_store *s, size_t payload_len, size_t *id_bytes)
{
    static unsigned char payload[4096];
    sb_coll *coll;
    char id[32];

    if (sb_collection_open(s, "mem", 3, &coll) != SB_OK)
        return -1;
    *id_bytes = 0;
    for (unsigned v = 0; v < VERSIONS; v++)
        for (unsigned d = 0; d < DOCS; d++) {
            int n = snprintf(id, sizeof id, "user%06u@example.com", d);

            payload[0] = (unsigned char)v;
            if (sb_put(coll, id, (size_t)n, payload, payload_len, NULL, NULL) !=
                SB_OK)
                return -1;
            if (v == 0)
                *id_bytes += (size_t)n;
        }
    return 0;
}

static int measure(size_t payload_len)
{
    const struct timespec settle = {0, 200 * 1000 * 1000};
    size_t before = allocated(), after, id_bytes;
    double versions = (double)DOCS * VERSIONS, payload, overhead;
    sb_store *s = NULL;

    if (sb_store_open(NULL, &s) != SB_OK ||
        write_all(s, payload_len, &id_bytes) != 0) {
        fprintf(stderr, "mem_overhead: writing the store failed\n");
        sb_store_close(s);
        return -1;
    }
    /* Let the hash tables' background resizes finish before counting. */
    nanosleep(&settle, NULL);
    after = allocated();
    sb_store_close(s);

    payload = versions * (double)payload_len;
    overhead = (double)(after - before) - payload - (double)id_bytes;
    printf("%u docs x %u versions of %zu bytes: allocated %.1f MiB, "
           "%.1f bytes per version beyond id and payload, "
           "total / payload = %.2f\n",
           DOCS, VERSIONS, payload_len, (after - before) / 1048576.0,
           overhead / versions, (after - before) / payload);
    return 0;
}

/*
 * What change sets cost.  Each case writes `docs` documents of 100 bytes
 * into a store with a history of 4: it creates them, then rewrites each
 * `rounds` times, the rewrites under change sets as `how` says.  Its cost
 * is what it allocated beyond the same writes without change sets.
 */
enum cs_how {
    CS_NONE, /* no change sets: the baseline */
    CS_ONE,  /* every rewrite under one change set, as a bulk job */
    CS_EACH, /* each rewrite under a change set of its own, as the server
              * does for writes without X-Change-Set */
};

#define CS_HISTORY 4

static int cs_write_all(sb_store *s, unsigned docs, unsigned rounds,
                        enum cs_how how)
{
    static unsigned char payload[100];
    sb_coll *coll;
    char id[32], cs[32];

    if (sb_collection_open(s, "mem", 3, &coll) != SB_OK)
        return -1;
    for (unsigned v = 0; v <= rounds; v++)
        for (unsigned d = 0; d < docs; d++) {
            int n = snprintf(id, sizeof id, "user%06u@example.com", d);
            sb_write_opts o = {0};

            if (v > 0 && how == CS_ONE) {
                o.change_set = "job";
                o.change_set_len = 3;
            } else if (v > 0 && how == CS_EACH) {
                o.change_set = cs;
                o.change_set_len = (size_t)snprintf(cs, sizeof cs, "auto-%020u",
                                                    (v - 1) * docs + d);
            }
            payload[0] = (unsigned char)v;
            if (sb_put(coll, id, (size_t)n, payload, sizeof payload, &o,
                       NULL) != SB_OK)
                return -1;
        }
    return 0;
}

/* Sets *bytes to what the case keeps allocated (a few KiB either way is
 * the allocator's noise); returns -1 on failure. */
static int cs_case(unsigned docs, unsigned rounds, enum cs_how how,
                   double *bytes)
{
    const struct timespec settle = {0, 200 * 1000 * 1000};
    size_t before, after;
    sb_store *s = NULL;
    sb_options opt;

    /* The last case's versions leave through RCU callbacks: let them go
     * first, so that this count does not see them freed. */
    nanosleep(&settle, NULL);
    before = allocated();

    sb_options_init(&opt);
    opt.history = CS_HISTORY;

    if (sb_store_open(&opt, &s) != SB_OK ||
        cs_write_all(s, docs, rounds, how)) {
        fprintf(stderr, "mem_overhead: writing the store failed\n");
        sb_store_close(s);
        return -1;
    }
    nanosleep(&settle, NULL);
    after = allocated();
    sb_store_close(s);
    *bytes = (double)after - (double)before;
    return 0;
}

static int measure_change_sets(void)
{
    static const struct {
        unsigned docs, rounds;
        enum cs_how how;
        const char *what, *per;
    } cases[] = {
        {100000, 1, CS_ONE,
         "100,000 documents rewritten once by one change set", "document"},
        {100000, 8, CS_ONE,
         "100,000 documents rewritten 8 times by one change set", "document"},
        {100000, 1, CS_EACH,
         "100,000 documents rewritten once, a change set per write",
         "change set"},
        {1, 100000, CS_EACH,
         "1 document rewritten 100,000 times, a change set per write",
         "change set"},
    };

    printf("change sets, 100-byte documents, history %u: cost beyond the "
           "same writes without change sets\n",
           CS_HISTORY);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned docs = cases[i].docs, rounds = cases[i].rounds;
        double base, with;
        if (cs_case(docs, rounds, CS_NONE, &base) ||
            cs_case(docs, rounds, cases[i].how, &with))
            return -1;
        double cost = with - base;
        double per = cases[i].how == CS_ONE ? docs : (double)docs * rounds;
        printf("  %s: %.1f MiB, %.0f bytes per %s\n", cases[i].what,
               cost / 1048576.0, cost / per, cases[i].per);
    }
    return 0;
}

int main(void)
{
    if (allocated() == 0) {
        printf("mem_overhead: jemalloc statistics unavailable; "
               "cannot measure\n");
        return 0;
    }
    sb_thread_register();
    int rc = measure(200) || measure(100) || measure_change_sets();
    sb_thread_unregister();
    return rc ? 1 : 0;
}

#else

int main(void)
{
    printf("mem_overhead: built without jemalloc (sanitizer build or "
           "SNAPBACK_JEMALLOC=OFF); cannot measure\n");
    return 0;
}

#endif
