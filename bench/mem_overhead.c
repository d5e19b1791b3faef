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

int main(void)
{
    if (allocated() == 0) {
        printf("mem_overhead: jemalloc statistics unavailable; "
               "cannot measure\n");
        return 0;
    }
    sb_thread_register();
    int rc = measure(200) || measure(100);
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
