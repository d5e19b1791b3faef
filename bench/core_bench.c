/*
 * core_bench.c - benchmark bodies for libsnapback's core, and the baseline
 * they are measured against: a bare liburcu lock-free hash table lookup of
 * the same keys, with the same hash and the same read lock per lookup, but
 * no versions, collections or checks.  The gap between the two is the cost
 * of everything snapback adds to a lookup.
 *
 * Every read benchmark takes and releases a read section per operation, as
 * a server would per request.  Ids are visited in a fixed scattered order
 * (a large odd stride modulo the count) so caches do not flatter the result.
 *
 * The change-set cases write a change set over every document of a fresh
 * store, untimed, and time only its rollback; the read-during-rollback case
 * counts the gets a second thread completes while the rollback runs, and
 * compares with the same reader beside an idle writer, and beside a thread
 * that keeps a core and the memory bus as busy without touching the store
 * (what the machine alone takes from the reader).
 */
/* clock_gettime() and nanosleep() lie outside strict C11. */
#define _POSIX_C_SOURCE 200809L

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "core_bench.h"
#include "snapback.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define N_IDS      100000
#define N_HOT      1024  /* ids that stay in cache: measures CPU, not memory */
#define N_DEEP     4096  /* documents with a full history */
#define DEPTH      32    /* their history: the store's default depth */
#define AS_OF_BACK 4     /* as-of reads aim this many versions back */
#define N_SCAN     10000 /* documents in the scanned collection */
#define N_PUT      1024  /* documents the put benchmark rewrites */
#define N_BATCH    100   /* puts per batch */
#define IDLE_NS    100000000   /* the idle writer's window: 100 ms */
#define BUSY_BYTES (32u << 20) /* the busy thread's buffer: beyond the L2 */
#define PAYLOAD    100
#define ID_CAP     32
#define STRIDE     7919 /* prime, so k * STRIDE visits every index */
#define HASH_SEED  0x5eed5eedull

struct bare_node {
    struct cds_lfht_node node;
    size_t len;
    char key[ID_CAP];
};

struct bench_env {
    sb_store *store; /* the read fixture */
    sb_coll *users;  /* N_IDS documents, one version each */
    sb_coll *deep;   /* N_DEEP documents, DEPTH versions each */
    sb_coll *scan;   /* N_SCAN documents */
    sb_coll *puts;   /* N_PUT documents rewritten by the put case */
    sb_coll *batch;  /* N_PUT documents rewritten by the batch case */
    sb_store *fresh; /* rebuilt by prepare() for create/delete/rollback */
    sb_coll *fresh_coll;
    uint64_t fresh_count; /* documents in `fresh_coll` */
    sb_batch_op ops[N_BATCH];
    uint64_t timed_ns; /* what a manual_time case measured */
    struct cds_lfht *bare;
    struct bare_node *bare_nodes;
    uint64_t as_of_rev[N_DEEP];
    unsigned char payload[PAYLOAD];
    char ids[N_IDS][ID_CAP];
    char miss[N_IDS][ID_CAP];
    size_t id_len;   /* all ids have the same length */
    uint64_t errors; /* writes that did not return SB_OK; thread 0 only */
};

/* Whether this thread registered with liburcu itself (not via snapback). */
static _Thread_local int bare_registered;
/* Defeats dead-code elimination of results nobody else reads. */
static volatile uint64_t sink;

void bench_thread_enter(void)
{
    sb_thread_register();
    /* snapback may use the same flavour; registering twice would abort. */
    if (!URCU_TLS(urcu_memb_reader).registered) {
        urcu_memb_register_thread();
        bare_registered = 1;
    }
}

void bench_thread_leave(void)
{
    if (bare_registered) {
        urcu_memb_unregister_thread();
        bare_registered = 0;
    }
    sb_thread_unregister();
}

static size_t at(uint64_t k, unsigned thread, size_t count)
{
    return (size_t)((k * STRIDE + thread * (count / 2)) % count);
}

/* ---------------------------------------------------------------------- */
/* Fixture                                                                */
/* ---------------------------------------------------------------------- */

static int fill(sb_coll *coll, struct bench_env *e, size_t count,
                unsigned versions)
{
    for (unsigned v = 0; v < versions; v++)
        for (size_t i = 0; i < count; i++) {
            e->payload[0] = (unsigned char)v; /* each version differs */
            if (sb_put(coll, e->ids[i], e->id_len, e->payload, PAYLOAD, NULL,
                       NULL) != SB_OK)
                return -1;
        }
    return 0;
}

/* Records, per deep document, the revision AS_OF_BACK versions back. */
static int record_as_of(struct bench_env *e)
{
    sb_view h[AS_OF_BACK + 1];
    size_t count;
    int rc = 0;

    sb_read_lock();
    for (size_t i = 0; i < N_DEEP && rc == 0; i++) {
        if (sb_history(e->deep, e->ids[i], e->id_len, h, AS_OF_BACK + 1,
                       &count) != SB_OK ||
            count <= AS_OF_BACK)
            rc = -1;
        else
            e->as_of_rev[i] = h[AS_OF_BACK].rev;
    }
    sb_read_unlock();
    return rc;
}

static int open_coll(sb_store *s, const char *name, sb_coll **out)
{
    return sb_collection_open(s, name, strlen(name), out) == SB_OK ? 0 : -1;
}

static int build_store(struct bench_env *e)
{
    if (sb_store_open(NULL, &e->store) != SB_OK ||
        open_coll(e->store, "users", &e->users) ||
        open_coll(e->store, "deep", &e->deep) ||
        open_coll(e->store, "scan", &e->scan) ||
        open_coll(e->store, "puts", &e->puts) ||
        open_coll(e->store, "batch", &e->batch))
        return -1;
    if (fill(e->users, e, N_IDS, 1) || fill(e->deep, e, N_DEEP, DEPTH) ||
        fill(e->scan, e, N_SCAN, 1) || fill(e->puts, e, N_PUT, 1) ||
        fill(e->batch, e, N_PUT, 1))
        return -1;
    return record_as_of(e);
}

static int bare_match(struct cds_lfht_node *node, const void *key)
{
    const struct bare_node *n = caa_container_of(node, struct bare_node, node);
    return memcmp(n->key, key, n->len) == 0;
}

static uint64_t bare_hash(const void *key, size_t len)
{
    return XXH3_64bits_withSeed(key, len, HASH_SEED);
}

static int build_bare(struct bench_env *e)
{
    /* Sizes must be powers of two; start at the size the ids need. */
    e->bare = cds_lfht_new_flavor(1u << 17, 1u << 10, 0,
                                  CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                                  &urcu_memb_flavor, NULL);
    e->bare_nodes = calloc(N_IDS, sizeof *e->bare_nodes);
    if (e->bare == NULL || e->bare_nodes == NULL)
        return -1;
    urcu_memb_read_lock(); /* adding must happen inside a read section */
    for (size_t i = 0; i < N_IDS; i++) {
        struct bare_node *n = &e->bare_nodes[i];

        n->len = e->id_len;
        memcpy(n->key, e->ids[i], e->id_len);
        cds_lfht_add(e->bare, bare_hash(n->key, n->len), &n->node);
    }
    urcu_memb_read_unlock();
    return 0;
}

struct bench_env *bench_env_open(void)
{
    struct bench_env *e = calloc(1, sizeof *e);

    if (e == NULL)
        return NULL;
    for (size_t i = 0; i < N_IDS; i++) {
        e->id_len =
            (size_t)snprintf(e->ids[i], ID_CAP, "user%06zu@example.com", i);
        /* Same length and shape, never written. */
        snprintf(e->miss[i], ID_CAP, "user%06zu@example.org", i);
    }
    memset(e->payload, 'p', PAYLOAD);
    if (build_store(e) || build_bare(e)) {
        bench_env_close(e);
        return NULL;
    }
    return e;
}

void bench_env_close(struct bench_env *e)
{
    if (e == NULL)
        return;
    sb_store_close(e->store);
    sb_store_close(e->fresh);
    if (e->bare != NULL)
        cds_lfht_destroy(e->bare, NULL); /* nodes are not in use any more */
    free(e->bare_nodes);
    free(e);
}

/* ---------------------------------------------------------------------- */
/* Reads                                                                  */
/* ---------------------------------------------------------------------- */

static uint64_t run_get(sb_coll *coll, char (*ids)[ID_CAP], size_t id_len,
                        unsigned thread, uint64_t n, size_t span)
{
    uint64_t acc = 0;
    sb_view v;

    for (uint64_t k = 0; k < n; k++) {
        sb_read_lock();
        if (sb_get(coll, ids[at(k, thread, span)], id_len, &v) == SB_OK)
            acc += v.len;
        sb_read_unlock();
    }
    sink += acc;
    return n;
}

static uint64_t get_hit(struct bench_env *e, unsigned thread, uint64_t n)
{
    return run_get(e->users, e->ids, e->id_len, thread, n, N_IDS);
}

static uint64_t get_hit_hot(struct bench_env *e, unsigned thread, uint64_t n)
{
    return run_get(e->users, e->ids, e->id_len, thread, n, N_HOT);
}

static uint64_t get_miss(struct bench_env *e, unsigned thread, uint64_t n)
{
    return run_get(e->users, e->miss, e->id_len, thread, n, N_IDS);
}

static uint64_t run_bare(struct bench_env *e, unsigned thread, uint64_t n,
                         size_t span)
{
    uint64_t acc = 0;
    struct cds_lfht_iter it;

    for (uint64_t k = 0; k < n; k++) {
        const char *key = e->ids[at(k, thread, span)];
        struct cds_lfht_node *node;

        urcu_memb_read_lock();
        cds_lfht_lookup(e->bare, bare_hash(key, e->id_len), bare_match, key,
                        &it);
        node = cds_lfht_iter_get_node(&it);
        if (node != NULL)
            acc += caa_container_of(node, struct bare_node, node)->len;
        urcu_memb_read_unlock();
    }
    sink += acc;
    return n;
}

static uint64_t bare_lookup(struct bench_env *e, unsigned thread, uint64_t n)
{
    return run_bare(e, thread, n, N_IDS);
}

static uint64_t bare_lookup_hot(struct bench_env *e, unsigned thread,
                                uint64_t n)
{
    return run_bare(e, thread, n, N_HOT);
}

static uint64_t as_of_get(struct bench_env *e, unsigned thread, uint64_t n)
{
    uint64_t acc = 0;
    sb_view v;

    for (uint64_t k = 0; k < n; k++) {
        size_t i = at(k, thread, N_DEEP);

        sb_read_lock();
        if (sb_get_as_of(e->deep, e->ids[i], e->id_len, e->as_of_rev[i], &v) ==
            SB_OK)
            acc += v.rev;
        sb_read_unlock();
    }
    sink += acc;
    return n;
}

static uint64_t history_walk(struct bench_env *e, unsigned thread, uint64_t n)
{
    sb_view h[DEPTH];
    uint64_t acc = 0;
    size_t count;

    for (uint64_t k = 0; k < n; k++) {
        sb_read_lock();
        if (sb_history(e->deep, e->ids[at(k, thread, N_DEEP)], e->id_len, h,
                       DEPTH, &count) == SB_OK)
            acc += h[count < DEPTH ? count - 1 : DEPTH - 1].rev;
        sb_read_unlock();
    }
    sink += acc;
    return n;
}

static int on_scan(void *ctx, const sb_view *doc)
{
    *(uint64_t *)ctx += 1;
    return 0;
}

/* Items are documents visited, so the rate reads as documents per second. */
static uint64_t scan_all(struct bench_env *e, unsigned thread, uint64_t n)
{
    uint64_t docs = 0;

    for (uint64_t k = 0; k < n; k++) {
        sb_read_lock();
        sb_scan(e->scan, NULL, 0, on_scan, &docs);
        sb_read_unlock();
    }
    return docs;
}

/* ---------------------------------------------------------------------- */
/* Writes                                                                 */
/* ---------------------------------------------------------------------- */

static uint64_t put_existing(struct bench_env *e, unsigned thread, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++) {
        e->payload[1] = (unsigned char)k;
        e->errors += sb_put(e->puts, e->ids[k % N_PUT], e->id_len, e->payload,
                            PAYLOAD, NULL, NULL) != SB_OK;
    }
    return n;
}

/* Writes the k-th fresh id ("fresh" and ten digits) into buf. */
static size_t fresh_id(char *buf, uint64_t k)
{
    memcpy(buf, "fresh", 5);
    for (int d = 14; d >= 5; d--, k /= 10)
        buf[d] = (char)('0' + k % 10);
    return 15;
}

/* A new empty store, holding `count` fresh ids with `versions` each. */
static int fresh_store(struct bench_env *e, uint64_t count, unsigned versions)
{
    char id[16];

    sb_store_close(e->fresh);
    e->fresh = NULL;
    if (sb_store_open(NULL, &e->fresh) != SB_OK ||
        open_coll(e->fresh, "fresh", &e->fresh_coll))
        return -1;
    e->fresh_count = count;
    for (unsigned v = 0; v < versions; v++)
        for (uint64_t k = 0; k < count; k++)
            if (sb_put(e->fresh_coll, id, fresh_id(id, k), e->payload, PAYLOAD,
                       NULL, NULL) != SB_OK)
                return -1;
    return 0;
}

static int prepare_empty(struct bench_env *e, uint64_t n)
{
    return fresh_store(e, 0, 0);
}

static int prepare_live(struct bench_env *e, uint64_t n)
{
    return fresh_store(e, n, 1);
}

static int prepare_two_versions(struct bench_env *e, uint64_t n)
{
    return fresh_store(e, n, 2);
}

static uint64_t create_fresh(struct bench_env *e, unsigned thread, uint64_t n)
{
    char id[16];

    for (uint64_t k = 0; k < n; k++)
        e->errors += sb_create(e->fresh_coll, id, fresh_id(id, k), e->payload,
                               PAYLOAD, NULL, NULL) != SB_OK;
    return n;
}

static uint64_t delete_live(struct bench_env *e, unsigned thread, uint64_t n)
{
    char id[16];

    for (uint64_t k = 0; k < n; k++)
        e->errors +=
            sb_delete(e->fresh_coll, id, fresh_id(id, k), NULL, NULL) != SB_OK;
    return n;
}

static uint64_t rollback_one(struct bench_env *e, unsigned thread, uint64_t n)
{
    char id[16];

    for (uint64_t k = 0; k < n; k++)
        e->errors += sb_rollback_steps(e->fresh_coll, id, fresh_id(id, k), 1,
                                       NULL, NULL) != SB_OK;
    return n;
}

/* ---------------------------------------------------------------------- */
/* Batches and change sets                                                */
/* ---------------------------------------------------------------------- */

/* One batch of N_BATCH puts per operation; items are puts. */
static uint64_t batch_put(struct bench_env *e, unsigned thread, uint64_t n)
{
    for (uint64_t k = 0; k < n; k++) {
        e->payload[1] = (unsigned char)k;
        for (size_t i = 0; i < N_BATCH; i++) {
            sb_batch_op *op = &e->ops[i];
            op->kind = SB_BATCH_PUT;
            op->coll = e->batch;
            op->id = e->ids[(k * N_BATCH + i) % N_PUT];
            op->id_len = e->id_len;
            op->payload = e->payload;
            op->len = PAYLOAD;
        }
        e->errors += sb_batch(e->store, e->ops, N_BATCH, NULL, NULL) != SB_OK;
    }
    return n * N_BATCH;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int prepare_1k(struct bench_env *e, uint64_t n)
{
    return fresh_store(e, 1000, 1);
}

static int prepare_100k(struct bench_env *e, uint64_t n)
{
    return fresh_store(e, 100000, 1);
}

/* Untimed: change set "cs-<k>" overwrites every fresh document once. */
static int write_change_set(struct bench_env *e, uint64_t k, char *name)
{
    int len = snprintf(name, 32, "cs-%llu", (unsigned long long)k);
    sb_write_opts o = {.change_set = name, .change_set_len = (size_t)len};
    char id[16];

    e->payload[2] = (unsigned char)k;
    for (uint64_t i = 0; i < e->fresh_count; i++)
        if (sb_put(e->fresh_coll, id, fresh_id(id, i), e->payload, PAYLOAD, &o,
                   NULL) != SB_OK)
            return -1;
    return 0;
}

/* Undoes change set `name` under "undo-<name>". */
static sb_status undo_change_set(struct bench_env *e, const char *name)
{
    char undo[40];
    int len = snprintf(undo, sizeof undo, "undo-%s", name);
    sb_write_opts o = {.change_set = undo, .change_set_len = (size_t)len};
    sb_cs_outcome out;
    sb_status st;

    st = sb_changeset_rollback(e->fresh, name, strlen(name), 0, &o, NULL, NULL,
                               &out);
    if (st == SB_OK && out.restored != e->fresh_count)
        st = SB_CONFLICT; /* every document must have been restored */
    return st;
}

/* Items are documents restored; the time is the rollbacks' alone. */
static uint64_t cs_rollback(struct bench_env *e, unsigned thread, uint64_t n)
{
    char name[32];

    e->timed_ns = 0;
    for (uint64_t k = 0; k < n; k++) {
        if (write_change_set(e, k, name)) {
            e->errors++;
            continue;
        }
        uint64_t t0 = now_ns();
        e->errors += undo_change_set(e, name) != SB_OK;
        e->timed_ns += now_ns() - t0;
    }
    return n * e->fresh_count;
}

/* The reader: random gets on the fresh collection from `go` to `stop`. */
struct reader {
    struct bench_env *e;
    atomic_int go, stop, ready;
    uint64_t gets, ns;
};

static void *run_reader(void *p)
{
    struct reader *r = p;
    uint64_t x = 0x9e3779b97f4a7c15u, gets = 0, acc = 0, t0;
    char id[16];
    sb_view v;

    bench_thread_enter();
    atomic_store(&r->ready, 1);
    while (!atomic_load_explicit(&r->go, memory_order_acquire))
        ;
    t0 = now_ns();
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        x ^= x >> 12; /* xorshift64 */
        x ^= x << 25;
        x ^= x >> 27;
        size_t len =
            fresh_id(id, (x * 0x2545F4914F6CDD1Du >> 11) % r->e->fresh_count);
        sb_read_lock();
        if (sb_get(r->e->fresh_coll, id, len, &v) == SB_OK)
            acc += v.len;
        sb_read_unlock();
        gets++;
    }
    r->ns = now_ns() - t0;
    r->gets = gets;
    sink += acc;
    bench_thread_leave();
    return NULL;
}

enum beside { BESIDE_ROLLBACK, BESIDE_IDLE, BESIDE_BUSY };

/* Rewrites a private buffer for IDLE_NS: a core and the memory bus kept
 * busy, the store untouched. */
static int keep_busy(void)
{
    unsigned char *buf = malloc(BUSY_BYTES);
    uint64_t end = now_ns() + IDLE_NS;

    if (buf == NULL)
        return -1;
    for (unsigned char k = 0; now_ns() < end; k++)
        memset(buf, k, BUSY_BYTES);
    sink += buf[BUSY_BYTES / 2];
    free(buf);
    return 0;
}

/* One window of the reader beside this thread, which rolls back change
 * set `name`, sleeps, or keeps busy, as `how` says; the reader's count and
 * time are added to *gets and e->timed_ns. */
static int read_window(struct bench_env *e, enum beside how, const char *name,
                       uint64_t *gets)
{
    struct reader r = {.e = e};
    pthread_t t;
    int rc = 0;

    if (pthread_create(&t, NULL, run_reader, &r) != 0)
        return -1;
    while (!atomic_load(&r.ready))
        ;
    atomic_store_explicit(&r.go, 1, memory_order_release);
    if (how == BESIDE_ROLLBACK) {
        rc = undo_change_set(e, name) == SB_OK ? 0 : -1;
    } else if (how == BESIDE_BUSY) {
        rc = keep_busy();
    } else {
        struct timespec ts = {0, IDLE_NS};
        nanosleep(&ts, NULL);
    }
    atomic_store_explicit(&r.stop, 1, memory_order_relaxed);
    pthread_join(t, NULL);
    *gets += r.gets;
    e->timed_ns += r.ns;
    return rc;
}

/* n windows, each after writing a change set over every document (which
 * the window may roll back); items are the reader's gets, so the rate
 * reads as gets per second. */
static uint64_t read_windows(struct bench_env *e, uint64_t n, enum beside how)
{
    uint64_t gets = 0;
    char name[32];

    e->timed_ns = 0;
    for (uint64_t k = 0; k < n; k++)
        e->errors += write_change_set(e, k, name) != 0 ||
                     read_window(e, how, name, &gets) != 0;
    return gets;
}

static uint64_t get_during_rollback(struct bench_env *e, unsigned thread,
                                    uint64_t n)
{
    return read_windows(e, n, BESIDE_ROLLBACK);
}

/* The same store and writes, but the writer sleeps instead of rolling
 * back: the baseline of the case above. */
static uint64_t get_beside_idle(struct bench_env *e, unsigned thread,
                                uint64_t n)
{
    return read_windows(e, n, BESIDE_IDLE);
}

/* The same again, beside a thread as busy as the rollback's but away from
 * the store: the slowdown the two cores' sharing alone explains. */
static uint64_t get_beside_busy(struct bench_env *e, unsigned thread,
                                uint64_t n)
{
    return read_windows(e, n, BESIDE_BUSY);
}

static const struct bench_case cases[] = {
    {"get_hit", NULL, get_hit, 1, 0},
    {"get_miss", NULL, get_miss, 1, 0},
    {"bare_lfht_lookup", NULL, bare_lookup, 1, 0},
    {"get_hit_hot", NULL, get_hit_hot, 1, 0},
    {"bare_lfht_lookup_hot", NULL, bare_lookup_hot, 1, 0},
    {"get_hit_threads", NULL, get_hit, 2, 0},
    {"bare_lfht_lookup_threads", NULL, bare_lookup, 2, 0},
    {"as_of_get_4_back", NULL, as_of_get, 1, 0},
    {"history_walk_32", NULL, history_walk, 1, 0},
    {"scan_10k_docs", NULL, scan_all, 1, 0},
    {"put_existing_100B", NULL, put_existing, 1, 0},
    {"create_fresh_100B", prepare_empty, create_fresh, 1, 0},
    {"delete", prepare_live, delete_live, 1, 0},
    {"rollback_1_step", prepare_two_versions, rollback_one, 1, 0},
    {"batch_put_100x100B", NULL, batch_put, 1, 0},
    {"cs_rollback_1k", prepare_1k, cs_rollback, 1, 1},
    {"cs_rollback_100k", prepare_100k, cs_rollback, 1, 1},
    {"get_during_cs_rollback_100k", prepare_100k, get_during_rollback, 1, 1},
    {"get_beside_idle_writer_100k", prepare_100k, get_beside_idle, 1, 1},
    {"get_beside_busy_thread_100k", prepare_100k, get_beside_busy, 1, 1},
};

const struct bench_case *bench_cases(unsigned *count)
{
    *count = sizeof cases / sizeof cases[0];
    return cases;
}

uint64_t bench_env_errors(const struct bench_env *env)
{
    return env->errors;
}

uint64_t bench_env_timed_ns(const struct bench_env *env)
{
    return env->timed_ns;
}
