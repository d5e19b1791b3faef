/*
 * test_model.c - random operations checked against a deliberately naive
 * model of the versioning rules.
 *
 * The model keeps, per document, every version ever written in an unbounded
 * array, oldest first, and derives the rest the slow, obvious way: the
 * retained versions are the last HISTORY entries; an undo step follows a
 * version's `follows` link and lands on a retained version or on ORIGIN
 * (the absence before the document's first version); a read as of R takes
 * the newest retained version at or below R.  A small id space and a small
 * depth make the ring wrap and the history run out often.
 *
 * After every operation the store's status and result must equal the
 * model's, and so must the touched document's current state; every
 * CHECK_EVERY operations the whole store (histories and scans) is compared.
 * The seed is printed at start; SB_SEED=<number> replays a run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapback.h"
#include "read_section.h"

#define NCOLL       3
#define NIDS        20
#define HISTORY     5
#define OPS         100000
#define CHECK_EVERY 997
#define PAY_MAX     24
#define CS_MAX      6

/* Values of `follows` that are not revisions, as in the contract. */
#define ORIGIN  0
#define NOTHING UINT64_MAX

/* ------------------------------------------------------------------ */
/* Random numbers: xorshift64*, so a seed replays the same run        */
/* ------------------------------------------------------------------ */

static uint64_t seed; /* printed at start: replays the run */
static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

/* Uniform enough in [0, n) for a test; n > 0. */
static uint64_t below(uint64_t n)
{
    return (rnd() >> 11) % n;
}

/* ------------------------------------------------------------------ */
/* The model                                                          */
/* ------------------------------------------------------------------ */

struct mver {
    uint64_t rev;
    sb_op op;
    int absent;
    uint64_t restored;
    uint64_t follows; /* a revision, ORIGIN or NOTHING */
    size_t len;
    unsigned char payload[PAY_MAX];
    size_t cs_len;
    unsigned char cs[CS_MAX];
};

struct mdoc {
    struct mver *v; /* every version ever written, oldest first */
    size_t n, cap;
};

struct model {
    uint64_t revision;
    struct mdoc docs[NCOLL][NIDS];
};

static struct mver *m_head(struct mdoc *d)
{
    return d->n ? &d->v[d->n - 1] : NULL;
}

static int m_live(struct mdoc *d)
{
    return d->n && !m_head(d)->absent;
}

/* Index of the oldest retained version. */
static size_t m_first_kept(const struct mdoc *d)
{
    return d->n > HISTORY ? d->n - HISTORY : 0;
}

static struct mver *m_kept(struct mdoc *d, uint64_t rev)
{
    for (size_t i = m_first_kept(d); i < d->n; i++)
        if (d->v[i].rev == rev)
            return &d->v[i];
    return NULL;
}

/* One undo step along `link`: 1 and *to (NULL for ORIGIN), or 0. */
static int m_step(struct mdoc *d, uint64_t link, struct mver **to)
{
    if (link == NOTHING)
        return 0;
    if (link == ORIGIN) {
        *to = NULL;
        return 1;
    }
    *to = m_kept(d, link);
    return *to != NULL;
}

/* Walks up to `limit` steps from the head; returns how many succeed. */
static unsigned m_walk(struct mdoc *d, unsigned limit, struct mver **to)
{
    uint64_t link = m_head(d)->follows;
    unsigned n = 0;

    while (n < limit && m_step(d, link, to)) {
        link = *to ? (*to)->follows : NOTHING;
        n++;
    }
    return n;
}

/* The version current at `rev`: SB_OK and *to (NULL for ORIGIN), or
 * SB_HISTORY_EXHAUSTED. */
static sb_status m_as_of(struct mdoc *d, uint64_t rev, struct mver **to)
{
    for (size_t i = d->n; i-- > m_first_kept(d);) {
        if (d->v[i].rev <= rev) {
            *to = &d->v[i];
            return SB_OK;
        }
    }
    *to = NULL;
    return m_first_kept(d) == 0 ? SB_OK : SB_HISTORY_EXHAUSTED;
}

static struct mver *m_append(struct model *m, struct mdoc *d)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->v = realloc(d->v, d->cap * sizeof(*d->v));
        assert_non_null(d->v);
    }
    memset(&d->v[d->n], 0, sizeof(d->v[0]));
    d->v[d->n].rev = ++m->revision;
    return &d->v[d->n++];
}

static void m_free(struct model *m)
{
    for (int c = 0; c < NCOLL; c++)
        for (int i = 0; i < NIDS; i++)
            free(m->docs[c][i].v);
}

/* ------------------------------------------------------------------ */
/* Operations                                                         */
/* ------------------------------------------------------------------ */

enum kind {
    K_CREATE,
    K_PUT,
    K_DELETE,
    K_STEPS,
    K_TO,
    K_GET,
    K_AS_OF,
    K_VERSION,
    K_COUNT
};

static const char *kind_name[K_COUNT] = {"create", "put", "delete", "steps",
                                         "to",     "get", "as_of",  "version"};

struct op {
    enum kind kind;
    int coll, id;
    uint64_t if_rev;
    unsigned steps;
    uint64_t rev; /* rollback_to, as_of, version */
    size_t len;
    unsigned char payload[PAY_MAX];
    size_t cs_len;
    unsigned char cs[CS_MAX];
};

/* What an operation returned: the fields compared with the model. */
struct outcome {
    sb_status status;
    sb_result res;    /* writes */
    struct mver view; /* reads: the version seen, follows unused */
};

/* Copies a version's state into a new model version. */
static void m_copy_state(struct mver *to, const struct mver *from)
{
    to->absent = from ? from->absent : 1;
    to->len = from && !from->absent ? from->len : 0;
    if (to->len)
        memcpy(to->payload, from->payload, to->len);
}

static void m_set_cs(struct mver *v, const struct op *op)
{
    v->cs_len = op->cs_len;
    memcpy(v->cs, op->cs, op->cs_len);
}

/* `created`: absent (or never written) before, live after; so a rollback
 * that brings a deleted document back creates it, and one that restores
 * absence over absence does not. */
static void m_result(struct outcome *o, const struct mver *v, int was_live)
{
    o->status = SB_OK;
    o->res.rev = v->rev;
    o->res.absent = v->absent;
    o->res.restored = v->restored;
    o->res.created = !was_live && !v->absent;
}

static int m_conflicts(struct mdoc *d, uint64_t if_rev)
{
    return if_rev != 0 && (!m_live(d) || m_head(d)->rev != if_rev);
}

/* create, put, delete.  Where two statuses apply, the state check comes
 * first: a delete of an absent document with if_rev is SB_NOT_FOUND. */
static void m_write(struct model *m, const struct op *op, struct outcome *o)
{
    struct mdoc *d = &m->docs[op->coll][op->id];
    int live = m_live(d);
    uint64_t follows = d->n ? m_head(d)->rev : ORIGIN;
    struct mver *v;

    if (op->kind == K_CREATE && live)
        o->status = SB_EXISTS;
    else if (op->kind == K_DELETE && !live)
        o->status = SB_NOT_FOUND;
    else if (m_conflicts(d, op->if_rev))
        o->status = SB_CONFLICT;
    if (o->status != SB_OK)
        return;

    v = m_append(m, d);
    v->follows = follows;
    if (op->kind == K_DELETE) {
        v->op = SB_OP_DELETE;
        v->absent = 1;
    } else {
        v->op = live ? SB_OP_UPDATE : SB_OP_CREATE;
        v->len = op->len;
        memcpy(v->payload, op->payload, op->len);
    }
    m_set_cs(v, op);
    m_result(o, v, live);
}

/* Appends the rollback version that restores `target` (NULL: ORIGIN). */
static void m_restore(struct model *m, struct mdoc *d, const struct op *op,
                      const struct mver *target, struct outcome *o)
{
    struct mver t; /* m_append may move the array `target` points into */
    int live = m_live(d);
    struct mver *v;

    if (target)
        t = *target;
    v = m_append(m, d);
    v->op = SB_OP_ROLLBACK;
    v->restored = target ? t.rev : 0;
    v->follows = target ? t.follows : NOTHING;
    m_copy_state(v, target ? &t : NULL);
    m_set_cs(v, op);
    m_result(o, v, live);
}

static void m_exhausted(struct mdoc *d, struct outcome *o)
{
    struct mver *ignored;

    o->status = SB_HISTORY_EXHAUSTED;
    o->res.available = m_walk(d, UINT32_MAX, &ignored);
}

/* rollback_steps and rollback_to, checked in this order: arguments, the
 * future, a document never written, if_rev, then the walk. */
static void m_rollback(struct model *m, const struct op *op, struct outcome *o)
{
    struct mdoc *d = &m->docs[op->coll][op->id];
    struct mver *target = NULL;

    if (op->kind == K_STEPS ? op->steps == 0 : op->rev == 0)
        o->status = SB_INVALID;
    else if (op->kind == K_TO && op->rev > m->revision)
        o->status = SB_FUTURE;
    else if (d->n == 0)
        o->status = SB_NOT_FOUND;
    else if (op->if_rev != 0 && m_head(d)->rev != op->if_rev)
        o->status = SB_CONFLICT; /* a deletion counts as current here */
    if (o->status != SB_OK)
        return;

    if (op->kind == K_STEPS && m_walk(d, op->steps, &target) < op->steps)
        m_exhausted(d, o);
    else if (op->kind == K_TO && m_as_of(d, op->rev, &target) != SB_OK)
        m_exhausted(d, o);
    else
        m_restore(m, d, op, target, o);
}

/* A read that finds `v` (NULL: nothing, rev 0). */
static void m_seen(struct outcome *o, const struct mver *v)
{
    if (v == NULL) {
        o->status = SB_NOT_FOUND;
        return;
    }
    o->view = *v;
    o->status = v->absent ? SB_NOT_FOUND : SB_OK;
}

static void m_read(struct model *m, const struct op *op, struct outcome *o)
{
    struct mdoc *d = &m->docs[op->coll][op->id];
    struct mver *v = NULL;

    if (op->kind == K_GET) {
        m_seen(o, m_head(d));
    } else if (op->kind == K_VERSION) {
        v = m_kept(d, op->rev);
        o->status = v ? SB_OK : SB_NOT_FOUND;
        if (v)
            o->view = *v;
    } else if (op->rev == 0) {
        o->status = SB_INVALID;
    } else if (op->rev > m->revision) {
        o->status = SB_FUTURE;
    } else if (d->n == 0) {
        o->status = SB_NOT_FOUND;
    } else if (m_as_of(d, op->rev, &v) != SB_OK) {
        o->status = SB_HISTORY_EXHAUSTED;
    } else {
        m_seen(o, v);
    }
}

static void m_apply(struct model *m, const struct op *op, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    if (op->kind <= K_DELETE)
        m_write(m, op, o);
    else if (op->kind <= K_TO)
        m_rollback(m, op, o);
    else
        m_read(m, op, o);
}

/* ------------------------------------------------------------------ */
/* The store under test                                               */
/* ------------------------------------------------------------------ */

struct run {
    sb_store *store;
    sb_coll *colls[NCOLL];
    struct model *m;
    char ids[NIDS][16];
    int64_t last_time;
    long counts[K_COUNT][SB_STATUS_COUNT];
};

static char where[192]; /* the operation being checked, for messages */

static void check_eq(uint64_t got, uint64_t want, const char *what)
{
    if (got != want)
        fail_msg("%s: %s is %" PRIu64 ", the model says %" PRIu64, where, what,
                 got, want);
}

static void check_bytes(const void *got, size_t got_len, const void *want,
                        size_t want_len, const char *what)
{
    check_eq(got_len, want_len, what);
    if (want_len && (got == NULL || memcmp(got, want, want_len) != 0))
        fail_msg("%s: %s differs from the model's", where, what);
}

/* A view must show exactly the model's version. */
static void check_view(const sb_view *got, const struct mver *want)
{
    check_eq(got->rev, want->rev, "view rev");
    check_eq(got->op, want->op, "view op");
    check_eq(got->absent, want->absent, "view absent");
    check_eq(got->restored, want->restored, "view restored");
    check_eq(got->payload == NULL, want->absent, "view payload is NULL");
    check_bytes(got->payload, got->len, want->payload, want->len,
                "view payload");
    check_eq(got->change_set == NULL, want->cs_len == 0,
             "view change set is NULL");
    check_bytes(got->change_set, got->change_set_len, want->cs, want->cs_len,
                "view change set");
}

static sb_status sut_write(struct run *r, const struct op *op, sb_result *res)
{
    sb_coll *c = r->colls[op->coll];
    const char *id = r->ids[op->id];
    sb_write_opts o = {.change_set = op->cs_len ? op->cs : NULL,
                       .change_set_len = op->cs_len,
                       .if_rev = op->if_rev};

    switch (op->kind) {
    case K_CREATE:
        return sb_create(c, id, strlen(id), op->payload, op->len, &o, res);
    case K_PUT:
        return sb_put(c, id, strlen(id), op->payload, op->len, &o, res);
    case K_DELETE:
        return sb_delete(c, id, strlen(id), &o, res);
    case K_STEPS:
        return sb_rollback_steps(c, id, strlen(id), op->steps, &o, res);
    default:
        return sb_rollback_to(c, id, strlen(id), op->rev, &o, res);
    }
}

static sb_status sut_read(struct run *r, const struct op *op, sb_view *v)
{
    sb_coll *c = r->colls[op->coll];
    const char *id = r->ids[op->id];

    if (op->kind == K_GET)
        return sb_get(c, id, strlen(id), v);
    if (op->kind == K_AS_OF)
        return sb_get_as_of(c, id, strlen(id), op->rev, v);
    return sb_version_get(c, id, strlen(id), op->rev, v);
}

static void check_write(struct run *r, const struct op *op,
                        const struct outcome *want)
{
    sb_result res;
    sb_status st;

    memset(&res, 0xee, sizeof(res));
    st = sut_write(r, op, &res);
    check_eq(st, want->status, "status");
    if (st == SB_OK) {
        check_eq(res.rev, want->res.rev, "result rev");
        check_eq(res.created, want->res.created, "result created");
        check_eq(res.absent, want->res.absent, "result absent");
        check_eq(res.restored, want->res.restored, "result restored");
    } else if (st == SB_HISTORY_EXHAUSTED) {
        check_eq(res.available, want->res.available, "result available");
    } else {
        check_eq(res.rev, 0xeeeeeeeeeeeeeeeeULL, "untouched result rev");
    }
}

static void check_read(struct run *r, const struct op *op,
                       const struct outcome *want)
{
    sb_view v;
    sb_status st;

    memset(&v, 0, sizeof(v));
    v.rev = 0xee;
    read_begin();
    st = sut_read(r, op, &v);
    check_eq(st, want->status, "status");
    if (want->view.rev != 0)
        check_view(&v, &want->view);
    else if (st == SB_NOT_FOUND && op->kind != K_VERSION)
        check_eq(v.rev, 0, "view rev of a missing document");
    read_end();
}

/* The document's current state, as sb_get() sees it. */
static void check_doc(struct run *r, int c, int i)
{
    struct mdoc *d = &r->m->docs[c][i];
    struct op get = {.kind = K_GET, .coll = c, .id = i};
    struct outcome want;

    memset(&want, 0, sizeof(want));
    m_seen(&want, m_head(d));
    check_read(r, &get, &want);
}

/* The retained versions, newest first, as sb_history() lists them. */
static void check_history(struct run *r, int c, int i)
{
    struct mdoc *d = &r->m->docs[c][i];
    const char *id = r->ids[i];
    sb_view views[HISTORY + 1];
    size_t count = 0;
    sb_status st;

    read_begin();
    st = sb_history(r->colls[c], id, strlen(id), views, HISTORY + 1, &count);
    check_eq(st, d->n ? SB_OK : SB_NOT_FOUND, "history status");
    if (d->n) {
        check_eq(count, d->n - m_first_kept(d), "history count");
        for (size_t k = 0; k < count; k++)
            check_view(&views[k], &d->v[d->n - 1 - k]);
    }
    read_end();
}

struct scan_ctx {
    struct run *r;
    int coll;
    int page, calls; /* stop after `page` documents */
    int last;        /* index of the last id seen */
    int seen[NIDS];
};

static int on_scan(void *ctx, const sb_view *doc)
{
    struct scan_ctx *s = ctx;
    int i = 0;

    while (i < NIDS && (strlen(s->r->ids[i]) != doc->id_len ||
                        memcmp(s->r->ids[i], doc->id, doc->id_len) != 0))
        i++;
    check_eq(i < NIDS, 1, "scanned id is one of ours");
    check_eq(m_live(&s->r->m->docs[s->coll][i]), 1, "scanned doc is live");
    check_view(doc, m_head(&s->r->m->docs[s->coll][i]));
    s->seen[i]++;
    s->last = i;
    return ++s->calls >= s->page;
}

/* Scans a collection in pages of 1 to 8 documents, each resumed after the
 * last id of the page before: every live document is seen exactly once. */
static void check_scan(struct run *r, int c)
{
    struct scan_ctx s = {.r = r, .coll = c, .last = -1};
    int pages = 0;

    do {
        const char *after = s.last >= 0 ? r->ids[s.last] : NULL;

        s.page = 1 + (int)below(8);
        s.calls = 0;
        read_begin();
        check_eq(
            sb_scan(r->colls[c], after, after ? strlen(after) : 0, on_scan, &s),
            SB_OK, "scan status");
        read_end();
        check_eq(++pages <= NIDS + 1, 1, "scan pages end");
    } while (s.calls == s.page);

    for (int i = 0; i < NIDS; i++)
        check_eq(s.seen[i], m_live(&r->m->docs[c][i]), "times scanned");
}

static void check_all(struct run *r)
{
    for (int c = 0; c < NCOLL; c++) {
        for (int i = 0; i < NIDS; i++) {
            check_doc(r, c, i);
            check_history(r, c, i);
        }
        check_scan(r, c);
    }
}

/* ------------------------------------------------------------------ */
/* Generating operations                                              */
/* ------------------------------------------------------------------ */

/* A revision for rollback_to, as_of and version: mostly at or next to one
 * of the document's recent versions, retained or just trimmed; some
 * anywhere, some in the future, a few 0 (not for version). */
static uint64_t gen_rev(const struct model *m, const struct mdoc *d,
                        enum kind kind)
{
    uint64_t r = below(100);

    if (r < 3 && kind != K_VERSION)
        return 0;
    if (r < 8)
        return m->revision + 1 + below(3);
    if (r < 85 && d->n) {
        size_t back = below(d->n < HISTORY + 3 ? d->n : HISTORY + 3);
        uint64_t rev = d->v[d->n - 1 - back].rev;
        if (kind == K_VERSION && below(3))
            return rev;
        rev += below(3);
        return rev > 1 ? rev - 1 : 1;
    }
    return 1 + below(m->revision + 1);
}

/* Steps: mostly short walks, sometimes 0 (invalid). */
static unsigned gen_steps(void)
{
    uint64_t r = below(100);

    return r == 0 ? 0 : r < 55 ? 1 : r < 80 ? 2 : 3 + (unsigned)below(3);
}

/* if_rev: usually none; else the head's revision or some other one. */
static uint64_t gen_if_rev(const struct model *m, struct mdoc *d,
                           unsigned percent)
{
    uint64_t wrong;

    if (below(100) >= percent)
        return 0;
    if (d->n && below(2))
        return m_head(d)->rev;
    wrong = 1 + below(m->revision + 2);
    return d->n && wrong == m_head(d)->rev ? wrong + 1 : wrong;
}

static enum kind gen_kind(void)
{
    /* Weights, in the order of enum kind. */
    static const unsigned weight[K_COUNT] = {10, 22, 12, 18, 14, 6, 12, 6};
    unsigned r = (unsigned)below(100);
    int k = 0;

    while (r >= weight[k])
        r -= weight[k++];
    return (enum kind)k;
}

static void gen_bytes(unsigned char *buf, size_t *len, size_t max)
{
    *len = below(max + 1);
    for (size_t i = 0; i < *len; i++)
        buf[i] = (unsigned char)rnd();
}

static void gen_op(struct model *m, struct op *op)
{
    struct mdoc *d;

    memset(op, 0, sizeof(*op));
    op->kind = gen_kind();
    op->coll = (int)below(NCOLL);
    op->id = (int)below(NIDS);
    d = &m->docs[op->coll][op->id];

    gen_bytes(op->payload, &op->len, PAY_MAX);
    if (below(2))
        gen_bytes(op->cs, &op->cs_len, CS_MAX);
    op->steps = gen_steps();
    op->rev = gen_rev(m, d, op->kind);
    if (op->kind == K_PUT)
        op->if_rev = gen_if_rev(m, d, 40);
    else if (op->kind == K_DELETE || op->kind == K_STEPS || op->kind == K_TO)
        op->if_rev = gen_if_rev(m, d, 15);
}

static void describe(long n, const struct op *op)
{
    snprintf(where, sizeof(where),
             "seed %" PRIu64 " op %ld %s coll %d id %d steps %u rev %" PRIu64
             " if_rev %" PRIu64,
             seed, n, kind_name[op->kind], op->coll, op->id, op->steps, op->rev,
             op->if_rev);
}

/* ------------------------------------------------------------------ */
/* The run                                                            */
/* ------------------------------------------------------------------ */

/* Commit times never go backwards as revisions go forwards. */
static void check_time(struct run *r, const struct op *op)
{
    const char *id = r->ids[op->id];
    sb_view v;

    read_begin();
    sb_get(r->colls[op->coll], id, strlen(id), &v);
    if (v.time_ns < r->last_time)
        fail_msg("%s: commit time went backwards", where);
    r->last_time = v.time_ns;
    read_end();
}

static void run_op(struct run *r, long n)
{
    struct op op;
    struct outcome want;

    gen_op(r->m, &op);
    describe(n, &op);
    m_apply(r->m, &op, &want);
    if (op.kind <= K_TO)
        check_write(r, &op, &want);
    else
        check_read(r, &op, &want);
    r->counts[op.kind][want.status]++;

    check_eq(sb_store_revision(r->store), r->m->revision, "store revision");
    check_doc(r, op.coll, op.id);
    if (op.kind <= K_TO && want.status == SB_OK)
        check_time(r, &op);
}

/* Prints how often each operation met each status, and requires the
 * generator to have reached every status the rules produce. */
static void report_counts(const struct run *r)
{
    static const char *st[] = {"ok",        "not_found", "exists", "conflict",
                               "exhausted", "invalid",   "future"};
    const sb_status must_see[] = {SB_OK,       SB_NOT_FOUND,         SB_EXISTS,
                                  SB_CONFLICT, SB_HISTORY_EXHAUSTED, SB_INVALID,
                                  SB_FUTURE};
    long total[SB_STATUS_COUNT] = {0};

    printf("test_model: %-8s", "");
    for (int s = 0; s < 7; s++)
        printf(" %9s", st[s]);
    for (int k = 0; k < K_COUNT; k++) {
        printf("\ntest_model: %-8s", kind_name[k]);
        for (int s = 0; s < 7; s++) {
            printf(" %9ld", r->counts[k][must_see[s]]);
            total[must_see[s]] += r->counts[k][must_see[s]];
        }
    }
    printf("\n");
    for (int s = 0; s < 7; s++)
        assert_true(total[must_see[s]] > 0);
}

static void test_random_ops(void **state)
{
    struct run *r = *state;

    for (long n = 0; n < OPS; n++) {
        run_op(r, n);
        if (n % CHECK_EVERY == 0) {
            snprintf(where, sizeof(where), "seed %" PRIu64 " after op %ld",
                     seed, n);
            check_all(r);
        }
    }
    check_all(r);
    report_counts(r);
}

static int setup(void **state)
{
    struct run *r = calloc(1, sizeof(*r));
    sb_options opts;
    char name[8];

    if (r == NULL || (r->m = calloc(1, sizeof(*r->m))) == NULL)
        return -1;
    sb_options_init(&opts);
    opts.history = HISTORY;
    if (sb_store_open(&opts, &r->store) != SB_OK)
        return -1;
    for (int c = 0; c < NCOLL; c++) {
        snprintf(name, sizeof(name), "coll-%d", c);
        if (sb_collection_open(r->store, name, strlen(name), &r->colls[c]))
            return -1;
    }
    /* Ids with a space and a two-byte UTF-8 character ("é" is C3 A9). */
    for (int i = 0; i < NIDS; i++)
        snprintf(r->ids[i], sizeof(r->ids[i]), "doc %d \xc3\xa9", i);
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    struct run *r = *state;

    while (read_depth > 0)
        read_end();
    sb_store_close(r->store);
    m_free(r->m);
    free(r->m);
    free(r);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_ops, setup, teardown),
    };
    const char *env = getenv("SB_SEED");
    int failed;

    seed = env ? strtoull(env, NULL, 0) : 20240917;
    rng_state = seed ? seed : 1; /* xorshift must not start at 0 */
    printf("test_model: seed %" PRIu64 " (set SB_SEED to replay)\n", seed);

    if (sb_thread_register() != SB_OK)
        return 1;
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    sb_thread_unregister();
    return failed;
}
