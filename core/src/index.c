/*
 * index.c - sizing of a collection's document table.
 *
 * liburcu's own automatic resizing does not suit a table of documents:
 * with node accounting it grows a large table only once it averages eight
 * nodes per bucket, so lookups walk several cache-missing nodes; without
 * accounting it grows by four whenever one insert meets a chain of three,
 * which at 100,000 ids left tables of millions of buckets (several hundred
 * bytes per document).  So the table is created without automatic resizing
 * and the core keeps its load between one half and one node per bucket.
 *
 * A resize of a large table takes tens of milliseconds (about 130 ms to
 * reach 2^21 buckets here), too long to hold up the writer that crossed the
 * threshold, so it runs on a short-lived thread of its own.  Readers and
 * writers go on meanwhile: the table stays correct while it is resized.
 * Documents are never removed, so the table never shrinks.
 */
#include "internal.h"

#include <stdlib.h>

static void *resize_main(void *arg)
{
    struct sb_coll *c = arg;

    urcu_memb_register_thread();
    cds_lfht_resize(c->docs, atomic_load(&c->resize_to));
    urcu_memb_unregister_thread();
    atomic_store_explicit(&c->resize_done, 1, memory_order_release);
    return NULL;
}

/* Waits for the collection's resize thread, if it has one. */
void sb__index_join(struct sb_coll *c)
{
    if (c->resizing) {
        pthread_join(c->resizer, NULL);
        c->resizing = 0;
    }
}

/*
 * Counts a new document and starts a resize when the table is full.
 * Called with the store's write lock held.  If no thread can be started,
 * the table simply stays smaller for now: slower lookups, never wrong ones.
 */
void sb__index_added(struct sb_coll *c)
{
    c->ndocs++;
    if (c->ndocs <= c->buckets)
        return;
    if (c->resizing) {
        if (!atomic_load_explicit(&c->resize_done, memory_order_acquire))
            return; /* the running resize will be followed by another */
        sb__index_join(c);
    }

    /* Double (more if a resize was running meanwhile): load one half. */
    unsigned long target = c->buckets;
    while (target < c->ndocs && target < SB__INDEX_MAX_BUCKETS)
        target *= 2;
    if (target == c->buckets)
        return;
    atomic_store(&c->resize_to, target);
    atomic_store(&c->resize_done, 0);
    if (pthread_create(&c->resizer, NULL, resize_main, c) == 0) {
        c->resizing = 1;
        c->buckets = target;
    }
}
