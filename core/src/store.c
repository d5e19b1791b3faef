/*
 * store.c - stores, collections, thread registration and read sections.
 *
 * Collections live in a per-store lock-free hash table and are never
 * removed before the store closes, which is why a collection handle can be
 * cached without a read section.  New collections are added under the
 * store's write lock, so two threads opening the same new name get the same
 * handle.  Closing a store assumes no other thread touches it any more.
 */
#include "internal.h"
#include "wal.h"

#include <stdarg.h>
#include <stdio.h>

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#ifdef SB_TSAN
char sb__tsan_grace;
#endif

static _Thread_local int thread_registered;

/* Initial and minimum bucket counts; tables grow on their own. */
#define COLL_BUCKETS 8

int sb__thread_registered(void)
{
    return thread_registered;
}

sb_status sb_thread_register(void)
{
    /* liburcu aborts on a second registration; make it harmless. */
    if (!thread_registered) {
        urcu_memb_register_thread();
        thread_registered = 1;
    }
    return SB_OK;
}

void sb_thread_unregister(void)
{
    if (thread_registered) {
        urcu_memb_unregister_thread();
        thread_registered = 0;
    }
}

void sb_read_lock(void)
{
    urcu_memb_read_lock();
}

void sb_read_unlock(void)
{
    SB_TSAN_READ_END();
    urcu_memb_read_unlock();
}

void sb_options_init(sb_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->history = SB_HISTORY_DEFAULT;
    opts->fsync = SB_FSYNC_ALWAYS;
    opts->fsync_interval_ms = 10;
    opts->compact_ratio = 2.0;
    opts->compact_min_bytes = (uint64_t)64 << 20;
    opts->max_change_sets = 100000;
    opts->max_automatic_change_sets = 10000;
}

int64_t sb__now(const struct sb_store *s)
{
    if (s->clock != NULL)
        return s->clock(s->clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void sb__log(const struct sb_store *s, sb_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    if (s->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s->log(s->log_ctx, level, msg);
}

/* A seed the clients of a server cannot guess, to keep chains short. */
static uint64_t random_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed))
        return seed;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uintptr_t)&seed;
}

/*
 * The table of collections stays small and grows on its own.  Document
 * tables are sized by index.c, which explains why.
 */
static struct cds_lfht *table_new(unsigned long buckets, int flags)
{
    return cds_lfht_new_flavor(buckets, buckets, 0, flags, &urcu_memb_flavor,
                               NULL);
}

sb_status sb_store_open(const sb_options *opts, sb_store **out)
{
    sb_options defaults;
    if (opts == NULL) {
        sb_options_init(&defaults);
        opts = &defaults;
    }
    if (out == NULL || opts->history < 1 || opts->history > SB_HISTORY_MAX ||
        (unsigned)opts->fsync > SB_FSYNC_NEVER || !(opts->compact_ratio >= 0) ||
        opts->retain_ns < 0 ||
        (opts->data_dir != NULL && opts->data_dir[0] == '\0'))
        return SB_INVALID;

    struct sb_store *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return SB_NOMEM;
    s->colls =
        table_new(COLL_BUCKETS, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING);
    if (s->colls == NULL || pthread_mutex_init(&s->write_lock, NULL) != 0) {
        if (s->colls)
            cds_lfht_destroy(s->colls, NULL);
        free(s);
        return SB_NOMEM;
    }
    if (pthread_cond_init(&s->compact_cv, NULL) != 0) {
        pthread_mutex_destroy(&s->write_lock);
        cds_lfht_destroy(s->colls, NULL);
        free(s);
        return SB_NOMEM;
    }
    s->retain_ns = opts->retain_ns;
    s->clock = opts->clock;
    s->clock_ctx = opts->clock_ctx;
    s->compact_ratio = opts->compact_ratio;
    s->compact_min = opts->compact_min_bytes;
    atomic_init(&s->revision, 0);
    s->history = opts->history;
    s->hash_seed = random_seed();
    s->log = opts->log;
    s->log_ctx = opts->log_ctx;
    sb__cs_init(s, opts->max_change_sets, opts->max_automatic_change_sets);

    /* Replaying the log writes to the store like any writer does. */
    sb_status st = SB_OK;
    if (opts->data_dir != NULL) {
        sb_thread_register();
        st = wal_open(s, opts, &s->wal);
    }
    if (st != SB_OK) {
        sb_store_close(s);
        return st;
    }
    *out = s;
    return SB_OK;
}

uint64_t sb_store_revision(const sb_store *store)
{
    if (store == NULL)
        return 0;
    return atomic_load_explicit(&store->revision, memory_order_acquire);
}

sb_status sb_store_sync(sb_store *store, uint64_t lsn)
{
    if (store == NULL)
        return SB_INVALID;
    if (store->wal == NULL || lsn == 0)
        return SB_OK;
    return wal_wait(store->wal, lsn);
}

uint64_t sb_store_synced(const sb_store *store)
{
    if (store == NULL || store->wal == NULL)
        return UINT64_MAX;
    return wal_synced(store->wal);
}

/* ---------------------------------------------------------------------- */

struct name_key {
    const char *name;
    size_t len;
};

static int match_coll(struct cds_lfht_node *node, const void *key)
{
    struct sb_coll *c = caa_container_of(node, struct sb_coll, node);
    const struct name_key *k = key;

    /* Pairs with the release in collection_add(): the name is written. */
    uint32_t len = atomic_load_explicit(&c->name_len, memory_order_acquire);
    return len == k->len && memcmp(c->name, k->name, len) == 0;
}

static struct sb_coll *collection_lookup(sb_store *s, const char *name,
                                         size_t len, uint64_t hash)
{
    struct name_key key = {name, len};
    struct cds_lfht_iter it;

    cds_lfht_lookup(s->colls, hash, match_coll, &key, &it);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
    return node ? caa_container_of(node, struct sb_coll, node) : NULL;
}

/* Creates and publishes a collection.  Write lock and read section held. */
static struct sb_coll *collection_add(sb_store *s, const char *name, size_t len,
                                      uint64_t hash)
{
    struct sb_coll *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->docs = table_new(SB__INDEX_MIN_BUCKETS, 0);
    c->buckets = SB__INDEX_MIN_BUCKETS;
    if (c->docs == NULL) {
        free(c);
        return NULL;
    }
    c->store = s;
    c->hash_seed = s->hash_seed ^ hash;
    memcpy(c->name, name, len);
    atomic_store_explicit(&c->name_len, (uint32_t)len, memory_order_release);
    cds_lfht_add(s->colls, hash, &c->node);
    return c;
}

sb_status sb_collection_find(sb_store *store, const char *name, size_t len,
                             sb_coll **out)
{
    if (store == NULL || out == NULL || !sb_collection_name_valid(name, len))
        return SB_INVALID;

    uint64_t hash = sb__hash(store->hash_seed, name, len);
    struct sb_coll *c = collection_lookup(store, name, len, hash);
    if (c == NULL)
        return SB_NOT_FOUND;
    *out = c;
    return SB_OK;
}

sb_status sb_collection_open(sb_store *store, const char *name, size_t len,
                             sb_coll **out)
{
    if (store == NULL || out == NULL || !sb_collection_name_valid(name, len))
        return SB_INVALID;
    if (!thread_registered)
        return SB_UNREGISTERED;

    uint64_t hash = sb__hash(store->hash_seed, name, len);
    sb_status st = SB_OK;

    urcu_memb_read_lock();
    struct sb_coll *c = collection_lookup(store, name, len, hash);
    if (c == NULL) {
        /* Look again under the lock: another writer may have added it. */
        pthread_mutex_lock(&store->write_lock);
        c = collection_lookup(store, name, len, hash);
        if (c == NULL)
            c = collection_add(store, name, len, hash);
        pthread_mutex_unlock(&store->write_lock);
        if (c == NULL)
            st = SB_NOMEM;
    }
    urcu_memb_read_unlock();

    if (st == SB_OK)
        *out = c;
    return st;
}

const char *sb_collection_name(const sb_coll *coll, size_t *len)
{
    if (coll == NULL) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = atomic_load_explicit(&coll->name_len, memory_order_acquire);
    return coll->name;
}

sb_status sb_collection_each(sb_store *store,
                             int (*fn)(void *ctx, const char *name, size_t len),
                             void *ctx)
{
    if (store == NULL || fn == NULL)
        return SB_INVALID;

    struct cds_lfht_iter it;
    struct sb_coll *c;
    for (cds_lfht_first(store->colls, &it); cds_lfht_iter_get_node(&it);
         cds_lfht_next(store->colls, &it)) {
        c = caa_container_of(cds_lfht_iter_get_node(&it), struct sb_coll, node);
        if (!atomic_load_explicit(&c->written, memory_order_acquire))
            continue;
        size_t len = atomic_load_explicit(&c->name_len, memory_order_acquire);
        if (fn(ctx, c->name, len))
            break;
    }
    return SB_OK;
}

/* ---------------------------------------------------------------------- */

/*
 * Unlinks every document of `c` and frees its versions.  The documents
 * themselves are chained through `graveyard` and freed by the caller once
 * the table has been destroyed, since liburcu may touch a removed node
 * until then.
 */
static struct doc *collection_empty(struct sb_coll *c)
{
    struct doc *dead = NULL;
    struct cds_lfht_iter it;
    struct doc *d;

    for (cds_lfht_first(c->docs, &it); cds_lfht_iter_get_node(&it);
         cds_lfht_next(c->docs, &it)) {
        d = caa_container_of(cds_lfht_iter_get_node(&it), struct doc, node);
        cds_lfht_del(c->docs, &d->node);
        struct version *v =
            atomic_load_explicit(&d->head, memory_order_relaxed);
        while (v != NULL) {
            struct version *older =
                atomic_load_explicit(&v->older, memory_order_relaxed);
            free(v);
            v = older;
        }
        d->graveyard = dead;
        dead = d;
    }
    return dead;
}

void sb_store_close(sb_store *store)
{
    if (store == NULL)
        return;

    /* The log first: a clean close leaves every write on disk. */
    pthread_mutex_lock(&store->write_lock);
    sb__compact_wait(store);
    pthread_mutex_unlock(&store->write_lock);
    wal_close(store->wal);

    /* Let the versions already handed to call_rcu be freed first. */
    int was_registered = thread_registered;
    sb_thread_register();
    urcu_memb_barrier();
    sb__cs_free(store); /* before the chains: it reads pinned versions */

    /* Unlink everything, then destroy the tables, then free the nodes. */
    struct sb_coll *colls = NULL;
    struct cds_lfht_iter it;
    struct sb_coll *c;
    urcu_memb_read_lock();
    for (cds_lfht_first(store->colls, &it); cds_lfht_iter_get_node(&it);
         cds_lfht_next(store->colls, &it)) {
        c = caa_container_of(cds_lfht_iter_get_node(&it), struct sb_coll, node);
        cds_lfht_del(store->colls, &c->node);
        c->graveyard = colls;
        colls = c;
    }
    urcu_memb_read_unlock();
    urcu_memb_synchronize_rcu();

    while (colls != NULL) {
        struct sb_coll *next = colls->graveyard;
        sb__index_join(colls);
        urcu_memb_read_lock();
        struct doc *dead = collection_empty(colls);
        urcu_memb_read_unlock();
        urcu_memb_synchronize_rcu();
        cds_lfht_destroy(colls->docs, NULL);
        while (dead != NULL) {
            struct doc *d = dead->graveyard;
            free(dead);
            dead = d;
        }
        free(colls);
        colls = next;
    }
    cds_lfht_destroy(store->colls, NULL);
    pthread_cond_destroy(&store->compact_cv);
    pthread_mutex_destroy(&store->write_lock);
    free(store);

    if (!was_registered)
        sb_thread_unregister();
}
