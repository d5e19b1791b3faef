/*
 * stress_store.c - concurrency torture of one snapback store.
 *
 * Two writers and two readers work on 64 ids in each of three collections of
 * a store that keeps only 4 versions per document, so nearly every write
 * trims a version and hands it to RCU while readers may still hold it.
 *
 * Writers put, create, delete and roll back (by steps and to revisions).
 * They check that each status is one the header allows for that call with
 * these (valid) arguments, that the revisions they receive strictly
 * increase, and that they read their own writes.  After each successful
 * write they publish the revision per document, so readers can check that a
 * write that returned before their read began is visible to it.
 *
 * Readers check what they can observe from outside: payloads are never torn
 * (each payload describes itself: collection, id, sequence number, pattern
 * and checksum), revisions never go backwards, history is newest first and
 * bounded by the depth, as-of reads return the version they name, and a
 * paged scan resumed with `after` never repeats an id and sees every id
 * that exists throughout it.  Ids below STABLE_IDS are created before the
 * threads start and are only ever put, so they exist for every scan.
 *
 * The run is bounded by operation counts, not time (SB_STRESS_OPS sets the
 * writes per writer), so a slow sanitizer build does the same work as a
 * release build.  Exit status 1 on any failed check.
 */
#include "snapback.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY     4
#define COLLS       3
#define IDS         64
#define STABLE_IDS  8 /* ids 0..7: created up front, then only put */
#define WRITERS     2
#define READERS     2
#define PAGE        7
#define DEFAULT_OPS 60000 /* writes per writer: 5-10 s under TSan */
#define MAX_REPORTS 30    /* failures printed before going quiet */

#define PL_MAGIC    0x5b5b0a7du
#define PL_FILL_MAX 160

/* The head of every payload; the id and a fill pattern follow it. */
struct pl_head {
    uint32_t magic;
    uint32_t len;    /* whole payload, head included */
    uint32_t coll;   /* collection index */
    uint32_t id_len; /* id bytes right after the head */
    uint64_t seq;    /* unique per payload written */
    uint64_t sum;    /* checksum of everything after the head */
};

struct worker {
    pthread_t thread;
    unsigned no;
    uint64_t rng;
    uint64_t ops;
    uint64_t last_rev;         /* writer: last revision it was given */
    uint64_t store_rev;        /* reader: last store revision read */
    uint64_t seen[COLLS][IDS]; /* reader: newest current rev per doc */
    unsigned scan_coll;        /* reader: the paged scan in progress */
    int scan_active;
    char scan_after[16];
    size_t scan_after_len;
    unsigned char scan_seen[IDS];
};

/* What one page of a paged scan saw. */
struct page {
    struct worker *w;
    unsigned coll;
    unsigned visited;
    uint64_t max_rev;
};

static sb_store *store;
static sb_coll *colls[COLLS];
static atomic_uint_fast64_t published[COLLS][IDS]; /* newest returned rev */
static atomic_uint_fast64_t next_seq = 1;
static atomic_uint failures;
static atomic_int writers_left = WRITERS;
static atomic_uint_fast64_t n_writes_ok, n_exhausted, n_scans, n_reads;

static void fail(int line, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(int line, const char *fmt, ...)
{
    unsigned n = atomic_fetch_add(&failures, 1) + 1;
    va_list ap;

    if (n > MAX_REPORTS)
        return;
    va_start(ap, fmt);
    fprintf(stderr, "stress_store.c:%d: FAILED: ", line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            fail(__LINE__, __VA_ARGS__);                                       \
    } while (0)

static uint64_t rnd(struct worker *w)
{
    /* xorshift64*: cheap, per thread, reproducible from the seed. */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545f4914f6cdd1dull;
}

static size_t id_of(unsigned idx, char *buf)
{
    return (size_t)sprintf(buf, "doc-%02u", idx);
}

/* Returns the index named by an id, or -1 if it is not one of ours. */
static int idx_of(const char *id, size_t len)
{
    if (len != 6 || memcmp(id, "doc-", 4) != 0 || id[4] < '0' || id[4] > '9' ||
        id[5] < '0' || id[5] > '9')
        return -1;
    int idx = (id[4] - '0') * 10 + (id[5] - '0');
    return idx < IDS ? idx : -1;
}

static uint64_t checksum(const unsigned char *p, size_t len, uint64_t seq)
{
    uint64_t h = 0xcbf29ce484222325ull ^ seq; /* FNV-1a, seeded */

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static unsigned char fill_byte(uint64_t seq, size_t i)
{
    return (unsigned char)(seq * 131 + i * 7);
}

/* Writes a fresh self-describing payload into buf; returns its length. */
static size_t payload_make(struct worker *w, unsigned coll, unsigned idx,
                           unsigned char *buf)
{
    struct pl_head h = {.magic = PL_MAGIC, .coll = coll};
    size_t fill = rnd(w) % PL_FILL_MAX;
    char id[16];

    h.id_len = (uint32_t)id_of(idx, id);
    h.seq = atomic_fetch_add(&next_seq, 1);
    h.len = (uint32_t)(sizeof h + h.id_len + fill);
    memcpy(buf + sizeof h, id, h.id_len);
    for (size_t i = 0; i < fill; i++)
        buf[sizeof h + h.id_len + i] = fill_byte(h.seq, i);
    h.sum = checksum(buf + sizeof h, h.len - sizeof h, h.seq);
    memcpy(buf, &h, sizeof h);
    return h.len;
}

/* Returns NULL if the payload is whole and belongs to coll/id, else why. */
static const char *payload_problem(const sb_view *v, unsigned coll)
{
    const unsigned char *p = v->payload;
    struct pl_head h;

    if (p == NULL || v->len < sizeof h)
        return "missing or short";
    memcpy(&h, p, sizeof h); /* the payload need not be aligned */
    if (h.magic != PL_MAGIC || h.len != v->len)
        return "bad magic or length";
    if (h.coll != coll || h.id_len != v->id_len ||
        sizeof h + h.id_len > h.len ||
        memcmp(p + sizeof h, v->id, v->id_len) != 0)
        return "belongs to another document";
    for (size_t i = sizeof h + h.id_len; i < h.len; i++)
        if (p[i] != fill_byte(h.seq, i - sizeof h - h.id_len))
            return "torn fill pattern";
    if (checksum(p + sizeof h, h.len - sizeof h, h.seq) != h.sum)
        return "bad checksum";
    return NULL;
}

/* Change sets: writer N names "writer-N"; setup writes name none. */
static void check_change_set(const sb_view *v, const char *what)
{
    if (v->change_set == NULL) {
        CHECK(v->change_set_len == 0, "%s: NULL change set of length %zu", what,
              v->change_set_len);
        return;
    }
    CHECK(v->change_set_len == 8 && memcmp(v->change_set, "writer-", 7) == 0 &&
              (v->change_set[7] == '0' || v->change_set[7] == '1'),
          "%s: change set is not one a writer wrote", what);
}

/* Checks one view's own consistency: the fields that must agree. */
static void check_view(const sb_view *v, unsigned coll, const char *what)
{
    const char *why;

    CHECK(v->rev != 0, "%s: view with revision 0", what);
    CHECK(v->op >= SB_OP_CREATE && v->op <= SB_OP_ROLLBACK, "%s: op %d", what,
          (int)v->op);
    CHECK(v->op == SB_OP_ROLLBACK || v->restored == 0,
          "%s: restored %" PRIu64 " on a non-rollback", what, v->restored);
    CHECK(v->restored < v->rev, "%s: restored %" PRIu64 " >= rev %" PRIu64,
          what, v->restored, v->rev);
    CHECK(idx_of(v->id, v->id_len) >= 0, "%s: foreign id", what);
    check_change_set(v, what);
    if (v->absent) {
        CHECK(v->op == SB_OP_DELETE || v->op == SB_OP_ROLLBACK,
              "%s: absent after op %s", what, sb_op_str(v->op));
        CHECK(v->payload == NULL, "%s: absent with a payload", what);
        return;
    }
    CHECK(v->op != SB_OP_DELETE, "%s: a delete that is present", what);
    CHECK(v->op != SB_OP_ROLLBACK || v->restored != 0,
          "%s: rollback to absence that is present", what);
    why = payload_problem(v, coll);
    CHECK(why == NULL, "%s: payload of %.*s rev %" PRIu64 ": %s", what,
          (int)v->id_len, v->id, v->rev, why);
}

static int same_state(const sb_view *a, const sb_view *b)
{
    if (a->absent || b->absent)
        return a->absent == b->absent;
    return a->len == b->len && memcmp(a->payload, b->payload, a->len) == 0;
}

static int same_version(const sb_view *a, const sb_view *b)
{
    return a->rev == b->rev && a->op == b->op && a->restored == b->restored &&
           same_state(a, b);
}

/* ---------------------------------------------------------------------- */
/* Readers                                                                */
/* ---------------------------------------------------------------------- */

static void check_get(unsigned c, unsigned i, sb_status st, const sb_view *v)
{
    CHECK(st == SB_OK || st == SB_NOT_FOUND, "get: status %s",
          sb_status_str(st));
    CHECK(i >= STABLE_IDS || st == SB_OK, "get: stable doc-%02u not found", i);
    if (v->rev == 0) {
        CHECK(st == SB_NOT_FOUND, "get: SB_OK without a version");
        return;
    }
    CHECK(idx_of(v->id, v->id_len) == (int)i, "get: view of another id");
    CHECK((st == SB_OK) == !v->absent, "get: status %s but absent = %d",
          sb_status_str(st), v->absent);
    check_view(v, c, "get");
}

/*
 * The history, read in the same section as `cur`: newest first, strictly
 * decreasing, at most the depth.  A writer may have added versions since the
 * get, so the newest is at or above cur's revision, and if cur is still
 * listed it must be listed unchanged.
 */
static void check_history(unsigned c, const char *id, size_t n,
                          const sb_view *cur)
{
    sb_view h[HISTORY + 2];
    size_t count = 0, shown;
    sb_status st;

    memset(h, 0, sizeof h);
    st = sb_history(colls[c], id, n, h, HISTORY + 2, &count);
    CHECK(st == SB_OK, "history: status %s for a written doc",
          sb_status_str(st));
    if (st != SB_OK)
        return;
    CHECK(count >= 1 && count <= HISTORY, "history: %zu versions", count);
    shown = count < HISTORY + 2 ? count : HISTORY + 2;
    CHECK(shown == 0 || h[0].rev >= cur->rev,
          "history: newest %" PRIu64 " below the get's %" PRIu64, h[0].rev,
          cur->rev);
    for (size_t k = 0; k < shown; k++) {
        check_view(&h[k], c, "history");
        CHECK(k == 0 || h[k].rev < h[k - 1].rev,
              "history: revisions not strictly decreasing at %zu", k);
        CHECK(h[k].rev != cur->rev || same_version(&h[k], cur),
              "history: version %" PRIu64 " differs from the get's", cur->rev);
    }
}

/* As-of at cur's own revision names cur, unless it was trimmed since. */
static void check_as_of_self(unsigned c, const char *id, size_t n,
                             const sb_view *cur)
{
    sb_view a;
    sb_status st;

    memset(&a, 0, sizeof a);
    st = sb_get_as_of(colls[c], id, n, cur->rev, &a);
    if (st == SB_HISTORY_EXHAUSTED) {
        atomic_fetch_add(&n_exhausted, 1);
        return;
    }
    CHECK(st == (cur->absent ? SB_NOT_FOUND : SB_OK),
          "as-of own revision: status %s, absent = %d", sb_status_str(st),
          cur->absent);
    CHECK(same_version(&a, cur),
          "as-of %" PRIu64 " returned another version (rev %" PRIu64 ")",
          cur->rev, a.rev);
}

/* A rollback's restored version, if still retained, has the same state. */
static void check_restored(unsigned c, const char *id, size_t n,
                           const sb_view *cur)
{
    sb_view x;
    sb_status st;

    if (cur->op != SB_OP_ROLLBACK || cur->restored == 0)
        return;
    memset(&x, 0, sizeof x);
    st = sb_version_get(colls[c], id, n, cur->restored, &x);
    CHECK(st == SB_OK || st == SB_NOT_FOUND, "version get: status %s",
          sb_status_str(st));
    if (st != SB_OK)
        return;
    CHECK(x.rev == cur->restored, "version get %" PRIu64 " gave %" PRIu64,
          cur->restored, x.rev);
    CHECK(same_state(&x, cur),
          "rollback %" PRIu64 " differs from the "
          "state %" PRIu64 " it restored",
          cur->rev, cur->restored);
}

/* One read section on one document: get, history, as-of, restored. */
static void reader_doc(struct worker *w)
{
    unsigned c = rnd(w) % COLLS, i = rnd(w) % IDS;
    char id[16];
    size_t n = id_of(i, id);
    uint64_t pub = atomic_load(&published[c][i]);
    uint64_t before = sb_store_revision(store), after;
    sb_view v;

    memset(&v, 0, sizeof v);
    sb_read_lock();
    check_get(c, i, sb_get(colls[c], id, n, &v), &v);
    if (v.rev != 0) {
        check_history(c, id, n, &v);
        check_as_of_self(c, id, n, &v);
        check_restored(c, id, n, &v);
    }
    after = sb_store_revision(store);
    sb_read_unlock();

    CHECK(before >= w->store_rev && after >= before,
          "store revision went back: %" PRIu64 ", %" PRIu64 ", %" PRIu64,
          w->store_rev, before, after);
    CHECK(v.rev <= after, "view rev %" PRIu64 " above store rev %" PRIu64,
          v.rev, after);
    CHECK(v.rev >= pub,
          "doc-%02u: write %" PRIu64 " returned before the "
          "read began but the read saw %" PRIu64,
          i, pub, v.rev);
    CHECK(v.rev >= w->seen[c][i],
          "doc-%02u went back from %" PRIu64 " to %" PRIu64, i, w->seen[c][i],
          v.rev);
    w->seen[c][i] = v.rev;
    w->store_rev = after;
}

/* As-of at a random past revision, and at the two out-of-range ones. */
static void reader_as_of(struct worker *w)
{
    unsigned c = rnd(w) % COLLS, i = rnd(w) % IDS;
    char id[16];
    size_t n = id_of(i, id);
    uint64_t now = sb_store_revision(store), rev = 1 + rnd(w) % now;
    sb_view a, b;
    sb_status st, st_future, st_zero;

    memset(&a, 0, sizeof a);
    sb_read_lock();
    st = sb_get_as_of(colls[c], id, n, rev, &a);
    if (st == SB_OK || (st == SB_NOT_FOUND && a.rev != 0))
        check_view(&a, c, "as-of");
    st_future = sb_get_as_of(colls[c], id, n, UINT64_MAX, &b);
    st_zero = sb_get_as_of(colls[c], id, n, 0, &b);
    sb_read_unlock();

    CHECK(st == SB_OK || st == SB_NOT_FOUND || st == SB_HISTORY_EXHAUSTED,
          "as-of: status %s", sb_status_str(st));
    CHECK(st != SB_OK || !a.absent, "as-of: SB_OK on an absent version");
    CHECK(st == SB_HISTORY_EXHAUSTED || a.rev <= rev,
          "as-of %" PRIu64 " returned newer %" PRIu64, rev, a.rev);
    CHECK(st_future == SB_FUTURE, "as-of UINT64_MAX: %s",
          sb_status_str(st_future));
    CHECK(st_zero == SB_INVALID, "as-of 0: %s", sb_status_str(st_zero));
}

static int on_scan_doc(void *ctx, const sb_view *doc)
{
    struct page *pg = ctx;
    struct worker *w = pg->w;
    int idx = idx_of(doc->id, doc->id_len);

    CHECK(!doc->absent, "scan: visited a deleted document");
    check_view(doc, pg->coll, "scan");
    if (idx >= 0) {
        CHECK(!w->scan_seen[idx], "scan of collection %u: doc-%02d twice",
              pg->coll, idx);
        w->scan_seen[idx] = 1;
        memcpy(w->scan_after, doc->id, doc->id_len);
        w->scan_after_len = doc->id_len;
    }
    if (doc->rev > pg->max_rev)
        pg->max_rev = doc->rev;
    return ++pg->visited == PAGE;
}

/* The end of a paged scan: every stable id was seen (once, as checked). */
static void scan_finish(struct worker *w)
{
    for (unsigned i = 0; i < STABLE_IDS; i++)
        CHECK(w->scan_seen[i], "scan of collection %u missed doc-%02u",
              w->scan_coll, i);
    w->scan_active = 0;
    w->scan_coll = (w->scan_coll + 1) % COLLS;
    atomic_fetch_add(&n_scans, 1);
}

/* One page of a paged scan, in its own read section. */
static void reader_scan_page(struct worker *w)
{
    struct page pg = {.w = w, .coll = w->scan_coll};
    const char *after = w->scan_after_len ? w->scan_after : NULL;
    uint64_t now;
    sb_status st;

    if (!w->scan_active) {
        memset(w->scan_seen, 0, sizeof w->scan_seen);
        w->scan_after_len = 0;
        w->scan_active = 1;
        after = NULL;
    }
    sb_read_lock();
    st = sb_scan(colls[pg.coll], after, w->scan_after_len, on_scan_doc, &pg);
    now = sb_store_revision(store);
    sb_read_unlock();

    CHECK(st == SB_OK, "scan: status %s", sb_status_str(st));
    CHECK(pg.max_rev <= now, "scan: rev %" PRIu64 " above store rev %" PRIu64,
          pg.max_rev, now);
    if (pg.visited < PAGE || st != SB_OK)
        scan_finish(w);
}

static void *reader_main(void *arg)
{
    struct worker *w = arg;

    sb_thread_register();
    /* Keep reading while any writer runs, so reads overlap every write. */
    for (uint64_t k = 0; k < w->ops || atomic_load(&writers_left) > 0; k++) {
        unsigned r = rnd(w) % 8;

        if (r < 4)
            reader_doc(w);
        else if (r < 6)
            reader_scan_page(w);
        else
            reader_as_of(w);
        atomic_fetch_add_explicit(&n_reads, 1, memory_order_relaxed);
    }
    sb_thread_unregister();
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Writers                                                                */
/* ---------------------------------------------------------------------- */

#define BIT(status) (1u << (status))

/* A document and the options every write of one writer carries. */
struct target {
    unsigned coll, idx;
    char id[16];
    size_t id_len;
    sb_write_opts opts;
    char change_set[16];
};

/* Raises published[c][i] to rev; two writers may race on one document. */
static void publish(unsigned c, unsigned i, uint64_t rev)
{
    uint_fast64_t old = atomic_load(&published[c][i]);

    while (old < rev &&
           !atomic_compare_exchange_weak(&published[c][i], &old, rev))
        ;
}

/*
 * Every write: the status must be one the header lists for the call (the
 * arguments are valid and memory is plentiful, so SB_INVALID, SB_NOMEM and
 * SB_UNREGISTERED are failures too), and the writer's revisions increase.
 */
static int write_done(struct worker *w, const struct target *t,
                      const char *what, sb_status st, unsigned allowed,
                      const sb_result *res)
{
    CHECK(allowed & BIT(st), "%s doc-%02u: status %s (%d) not allowed", what,
          t->idx, sb_status_str(st), (int)st);
    if (st != SB_OK)
        return 0;
    CHECK(res->rev > w->last_rev, "%s: revision %" PRIu64 " after %" PRIu64,
          what, res->rev, w->last_rev);
    CHECK(res->rev <= sb_store_revision(store),
          "%s: revision %" PRIu64 " above the store's", what, res->rev);
    w->last_rev = res->rev;
    publish(t->coll, t->idx, res->rev);
    atomic_fetch_add_explicit(&n_writes_ok, 1, memory_order_relaxed);
    return 1;
}

/* Reads back a write that returned: the read sees it or something newer. */
static void read_back(const struct target *t, const sb_result *res, sb_op op,
                      const void *payload, size_t len)
{
    sb_view v;
    sb_status st;

    memset(&v, 0, sizeof v);
    sb_read_lock();
    st = sb_get(colls[t->coll], t->id, t->id_len, &v);
    CHECK(v.rev >= res->rev, "doc-%02u: wrote %" PRIu64 ", read back %" PRIu64,
          t->idx, res->rev, v.rev);
    if (v.rev == res->rev) {
        CHECK(v.op == op && v.absent == res->absent &&
                  v.restored == res->restored,
              "doc-%02u rev %" PRIu64 ": read back op %s absent %d "
              "restored %" PRIu64 " (result: absent %d restored %" PRIu64 ")",
              t->idx, v.rev, sb_op_str(v.op), v.absent, v.restored, res->absent,
              res->restored);
        CHECK((st == SB_OK) == !v.absent, "read back: status %s",
              sb_status_str(st));
        CHECK(payload == NULL ||
                  (v.len == len && memcmp(v.payload, payload, len) == 0),
              "doc-%02u rev %" PRIu64 ": payload differs from the one put",
              t->idx, v.rev);
        CHECK(v.change_set_len == strlen(t->change_set) &&
                  memcmp(v.change_set, t->change_set, v.change_set_len) == 0,
              "doc-%02u rev %" PRIu64 ": change set differs", t->idx, v.rev);
    }
    sb_read_unlock();
}

/* The document's current revision, for compare-and-set writes. */
static uint64_t current_rev(const struct target *t)
{
    sb_view v;

    memset(&v, 0, sizeof v);
    sb_read_lock();
    sb_get(colls[t->coll], t->id, t->id_len, &v);
    sb_read_unlock();
    return v.rev;
}

static void write_put(struct worker *w, struct target *t)
{
    unsigned char buf[256];
    size_t len = payload_make(w, t->coll, t->idx, buf);
    unsigned allowed = BIT(SB_OK);
    sb_result res = {0};
    sb_status st;

    /* One put in four is a compare-and-set against a fresh read. */
    if (rnd(w) % 4 == 0) {
        t->opts.if_rev = current_rev(t);
        allowed |= BIT(SB_CONFLICT);
    }
    st = sb_put(colls[t->coll], t->id, t->id_len, buf, len, &t->opts, &res);
    if (!write_done(w, t, "put", st, allowed, &res))
        return;
    CHECK(!res.absent, "put: result absent");
    read_back(t, &res, res.created ? SB_OP_CREATE : SB_OP_UPDATE, buf, len);
}

static void write_create(struct worker *w, struct target *t)
{
    unsigned char buf[256];
    size_t len = payload_make(w, t->coll, t->idx, buf);
    sb_result res = {0};
    sb_status st;

    st = sb_create(colls[t->coll], t->id, t->id_len, buf, len, &t->opts, &res);
    if (!write_done(w, t, "create", st, BIT(SB_OK) | BIT(SB_EXISTS), &res))
        return;
    CHECK(res.created && !res.absent, "create: created %d absent %d",
          res.created, res.absent);
    read_back(t, &res, SB_OP_CREATE, buf, len);
}

static void write_delete(struct worker *w, struct target *t)
{
    unsigned allowed = BIT(SB_OK) | BIT(SB_NOT_FOUND);
    sb_result res = {0};
    sb_status st;

    if (rnd(w) % 4 == 0) {
        t->opts.if_rev = current_rev(t);
        allowed |= BIT(SB_CONFLICT);
    }
    st = sb_delete(colls[t->coll], t->id, t->id_len, &t->opts, &res);
    if (!write_done(w, t, "delete", st, allowed, &res))
        return;
    CHECK(res.absent && !res.created, "delete: absent %d created %d",
          res.absent, res.created);
    read_back(t, &res, SB_OP_DELETE, NULL, 0);
}

static void write_rollback_steps(struct worker *w, struct target *t)
{
    unsigned steps = 1 + (unsigned)(rnd(w) % 4);
    unsigned allowed =
        BIT(SB_OK) | BIT(SB_NOT_FOUND) | BIT(SB_HISTORY_EXHAUSTED);
    sb_result res = {.available = ~0u}; /* must be set on exhaustion */
    sb_status st;

    st = sb_rollback_steps(colls[t->coll], t->id, t->id_len, steps, &t->opts,
                           &res);
    if (st == SB_HISTORY_EXHAUSTED)
        CHECK(res.available < steps, "rollback %u steps: %u available", steps,
              res.available);
    if (!write_done(w, t, "rollback steps", st, allowed, &res))
        return;
    CHECK(res.restored < res.rev,
          "rollback: restored %" PRIu64 " not below %" PRIu64, res.restored,
          res.rev);
    read_back(t, &res, SB_OP_ROLLBACK, NULL, 0);
}

static void write_rollback_to(struct worker *w, struct target *t)
{
    uint64_t now = sb_store_revision(store);
    uint64_t rev = now > 40 ? now - rnd(w) % 40 : 1 + rnd(w) % now;
    unsigned allowed =
        BIT(SB_OK) | BIT(SB_NOT_FOUND) | BIT(SB_HISTORY_EXHAUSTED);
    sb_result res = {0};
    sb_status st;

    /* rev is at or below a revision already committed: never SB_FUTURE. */
    st = sb_rollback_to(colls[t->coll], t->id, t->id_len, rev, &t->opts, &res);
    if (!write_done(w, t, "rollback to", st, allowed, &res))
        return;
    CHECK(res.restored <= rev, "rollback to %" PRIu64 " restored %" PRIu64, rev,
          res.restored);
    read_back(t, &res, SB_OP_ROLLBACK, NULL, 0);
}

/* One random write; stable ids only ever get puts. */
static void writer_step(struct worker *w)
{
    struct target t = {.coll = (unsigned)(rnd(w) % COLLS),
                       .idx = (unsigned)(rnd(w) % IDS)};
    unsigned r = (unsigned)(rnd(w) % 16);

    t.id_len = id_of(t.idx, t.id);
    sprintf(t.change_set, "writer-%u", w->no);
    t.opts.change_set = t.change_set;
    t.opts.change_set_len = strlen(t.change_set);
    if (t.idx < STABLE_IDS || r < 6)
        write_put(w, &t);
    else if (r < 8)
        write_create(w, &t);
    else if (r < 11)
        write_delete(w, &t);
    else if (r < 14)
        write_rollback_steps(w, &t);
    else
        write_rollback_to(w, &t);
}

static void *writer_main(void *arg)
{
    struct worker *w = arg;

    sb_thread_register();
    for (uint64_t k = 0; k < w->ops; k++)
        writer_step(w);
    sb_thread_unregister();
    atomic_fetch_sub(&writers_left, 1);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Setup and main                                                         */
/* ---------------------------------------------------------------------- */

/* Opens the store and creates half of each collection's ids, stable first. */
static int setup(struct worker *w)
{
    sb_options o;
    char name[8];

    sb_options_init(&o);
    o.history = HISTORY;
    if (sb_store_open(&o, &store) != SB_OK)
        return -1;
    sb_thread_register();
    for (unsigned c = 0; c < COLLS; c++) {
        int len = sprintf(name, "coll%u", c);

        if (sb_collection_open(store, name, (size_t)len, &colls[c]) != SB_OK)
            return -1;
        for (unsigned i = 0; i < IDS / 2; i++) {
            unsigned char buf[256];
            size_t plen = payload_make(w, c, i, buf);
            char id[16];
            size_t n = id_of(i, id);

            if (sb_create(colls[c], id, n, buf, plen, NULL, NULL) != SB_OK)
                return -1;
        }
    }
    return 0;
}

static uint64_t ops_from_env(void)
{
    const char *s = getenv("SB_STRESS_OPS");
    char *end;
    unsigned long long n;

    if (s == NULL || *s == '\0')
        return DEFAULT_OPS;
    n = strtoull(s, &end, 10);
    if (*end != '\0' || n == 0) {
        fprintf(stderr, "SB_STRESS_OPS must be a positive integer\n");
        exit(2);
    }
    return n;
}

static void run_threads(struct worker *w, uint64_t ops)
{
    for (unsigned k = 0; k < WRITERS + READERS; k++) {
        w[k].no = k < WRITERS ? k : k - WRITERS;
        w[k].rng = 0x9e3779b97f4a7c15ull * (k + 1);
        w[k].ops = ops;
        if (pthread_create(&w[k].thread, NULL,
                           k < WRITERS ? writer_main : reader_main, &w[k])) {
            fprintf(stderr, "stress_store: pthread_create failed\n");
            exit(2);
        }
    }
    for (unsigned k = 0; k < WRITERS + READERS; k++)
        pthread_join(w[k].thread, NULL);
}

int main(void)
{
    static struct worker w[WRITERS + READERS];
    struct worker setup_rng = {.rng = 42};
    uint64_t ops = ops_from_env();
    unsigned failed;

    if (setup(&setup_rng) != 0) {
        fprintf(stderr, "stress_store: setup failed\n");
        return 1;
    }
    run_threads(w, ops);
    printf("stress_store: %" PRIu64 " writes per writer, %" PRIu64
           " succeeded, %" PRIu64 " reads, %" PRIu64 " paged scans, %" PRIu64
           " as-of reads trimmed away, final revision %" PRIu64 "\n",
           ops, (uint64_t)n_writes_ok, (uint64_t)n_reads, (uint64_t)n_scans,
           (uint64_t)n_exhausted, sb_store_revision(store));
    sb_store_close(store);
    sb_thread_unregister();

    failed = atomic_load(&failures);
    if (failed) {
        fprintf(stderr, "stress_store: %u invariant violations\n", failed);
        return 1;
    }
    printf("stress_store: all invariants held\n");
    return 0;
}
