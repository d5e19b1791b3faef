/*
 * test_changeset.c - unit tests of the contract in snapback.h for batches
 * (sb_batch), the change-set index (sb_changeset_get, sb_changeset_list),
 * change-set rollback (sb_changeset_rollback), the pinning of the states a
 * change set replaced, their persistence, and snapshot scans (sb_scan_at).
 *
 * Each test gets a fresh store (and, for the persistence tests, a fresh
 * temporary data directory) from its setup function, so tests share
 * nothing.  Commit times come from an injected clock that the tests move
 * by hand, so times are exact.  "Nothing changed" is checked by rendering
 * everything a reader can observe of the documents a test knows, and the
 * change-set index, into text before and after, and comparing the texts:
 * the first differing line is printed.
 *
 * test_rollback_model checks change-set rollbacks against a naive model of
 * the versioning rules; its seed is printed at start, and SB_SEED=<number>
 * in the environment replays a run.
 */
/* mkdtemp() and asprintf() lie outside strict C11. */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapback.h"
#include "read_section.h"
#include "remove_tree.h"

#define MINUTE ((int64_t)60 * 1000000000)
#define T0     (1000 * MINUTE) /* the injected clock's start */

/* ------------------------------------------------------------------ */
/* Fixture: options, one store, one collection, maybe a directory     */
/* ------------------------------------------------------------------ */

/* The injected clock, in ns; tests move it between writes.  Only the main
 * thread writes it, and never while another thread runs. */
static int64_t fake_now;

static int64_t on_clock(void *ctx)
{
    (void)ctx;
    return fake_now;
}

struct fx {
    sb_options opts;
    sb_store *store;
    sb_coll *coll;      /* "docs" */
    char dir[PATH_MAX]; /* empty: in memory only */
};

static sb_coll *open_coll(sb_store *store, const char *name)
{
    sb_coll *coll = NULL;

    assert_int_equal(sb_collection_open(store, name, strlen(name), &coll),
                     SB_OK);
    assert_non_null(coll);
    return coll;
}

/* (Re)opens fx->store with fx->opts; in memory that starts afresh. */
static void reopen(struct fx *fx)
{
    sb_store_close(fx->store);
    fx->store = NULL;
    assert_int_equal(sb_store_open(&fx->opts, &fx->store), SB_OK);
    assert_non_null(fx->store);
    fx->coll = open_coll(fx->store, "docs");
}

static int setup_with(void **state, unsigned history, int with_dir)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    const char *tmp = getenv("TMPDIR");

    if (fx == NULL)
        return -1;
    if (with_dir) {
        snprintf(fx->dir, sizeof(fx->dir), "%s/sbcs-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (mkdtemp(fx->dir) == NULL) {
            free(fx);
            return -1;
        }
    }
    fake_now = T0;
    sb_options_init(&fx->opts);
    fx->opts.history = history;
    fx->opts.clock = on_clock;
    fx->opts.data_dir = with_dir ? fx->dir : NULL;
    if (sb_store_open(&fx->opts, &fx->store) != SB_OK ||
        sb_collection_open(fx->store, "docs", 4, &fx->coll) != SB_OK)
        return -1;
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, SB_HISTORY_DEFAULT, 0);
}

static int setup_h3(void **state)
{
    return setup_with(state, 3, 0);
}

static int setup_h4(void **state)
{
    return setup_with(state, 4, 0);
}

static int setup_dir(void **state)
{
    return setup_with(state, 4, 1);
}

/* Removes a directory and everything under it. */

static int teardown(void **state)
{
    struct fx *fx = *state;

    while (read_depth > 0)
        read_end();
    sb_store_close(fx->store);
    if (fx->dir[0])
        remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Writes: C-string ids, payloads, change sets and actors             */
/* ------------------------------------------------------------------ */

static sb_write_opts wo(const char *cs, const char *actor)
{
    sb_write_opts o;

    memset(&o, 0, sizeof(o));
    o.change_set = cs;
    o.change_set_len = cs ? strlen(cs) : 0;
    o.actor = actor;
    o.actor_len = actor ? strlen(actor) : 0;
    return o;
}

/* Each returns the new version's revision; the write must succeed. */
static uint64_t put_ok(sb_coll *c, const char *id, const char *payload,
                       const char *cs, const char *actor)
{
    sb_write_opts o = wo(cs, actor);
    sb_result res;

    assert_int_equal(
        sb_put(c, id, strlen(id), payload, strlen(payload), &o, &res), SB_OK);
    return res.rev;
}

static uint64_t create_ok(sb_coll *c, const char *id, const char *payload,
                          const char *cs, const char *actor)
{
    sb_write_opts o = wo(cs, actor);
    sb_result res;

    assert_int_equal(
        sb_create(c, id, strlen(id), payload, strlen(payload), &o, &res),
        SB_OK);
    assert_int_equal(res.created, 1);
    return res.rev;
}

static uint64_t delete_ok(sb_coll *c, const char *id, const char *cs,
                          const char *actor)
{
    sb_write_opts o = wo(cs, actor);
    sb_result res;

    assert_int_equal(sb_delete(c, id, strlen(id), &o, &res), SB_OK);
    assert_int_equal(res.absent, 1);
    return res.rev;
}

static uint64_t steps_ok(sb_coll *c, const char *id, unsigned steps,
                         const char *cs, const char *actor)
{
    sb_write_opts o = wo(cs, actor);
    sb_result res;

    assert_int_equal(sb_rollback_steps(c, id, strlen(id), steps, &o, &res),
                     SB_OK);
    return res.rev;
}

/* ------------------------------------------------------------------ */
/* Reads: copy a view out of its read section                         */
/* ------------------------------------------------------------------ */

struct got {
    sb_status status;
    sb_view view; /* pointers are only compared with NULL */
    char id[SB_ID_MAX + 1];
    char payload[256];
    char change_set[SB_CHANGE_SET_MAX + 1];
};

static void copy_view(const sb_view *v, struct got *g)
{
    g->view = *v;
    if (v->id) {
        assert_true(v->id_len < sizeof(g->id));
        memcpy(g->id, v->id, v->id_len);
    }
    if (v->payload) {
        assert_true(v->len < sizeof(g->payload));
        memcpy(g->payload, v->payload, v->len);
    }
    if (v->change_set) {
        assert_true(v->change_set_len < sizeof(g->change_set));
        memcpy(g->change_set, v->change_set, v->change_set_len);
    }
}

static struct got read_get(sb_coll *c, const char *id)
{
    struct got g;
    sb_view v;

    memset(&g, 0, sizeof(g));
    memset(&v, 0, sizeof(v));
    read_begin();
    g.status = sb_get(c, id, strlen(id), &v);
    copy_view(&v, &g);
    read_end();
    return g;
}

static struct got read_version(sb_coll *c, const char *id, uint64_t rev)
{
    struct got g;
    sb_view v;

    memset(&g, 0, sizeof(g));
    memset(&v, 0, sizeof(v));
    read_begin();
    g.status = sb_version_get(c, id, strlen(id), rev, &v);
    if (g.status == SB_OK)
        copy_view(&v, &g);
    read_end();
    return g;
}

static sb_status as_of_status(sb_coll *c, const char *id, uint64_t rev)
{
    sb_view v;
    sb_status st;

    read_begin();
    st = sb_get_as_of(c, id, strlen(id), rev, &v);
    read_end();
    return st;
}

/* The document's current version is live with this payload. */
static void assert_live(sb_coll *c, const char *id, const char *payload)
{
    struct got g = read_get(c, id);

    assert_int_equal(g.status, SB_OK);
    assert_int_equal(g.view.absent, 0);
    assert_int_equal(g.view.len, strlen(payload));
    assert_memory_equal(g.payload, payload, strlen(payload));
}

/* The document has a current version, and it is an absence. */
static void assert_absent(sb_coll *c, const char *id)
{
    struct got g = read_get(c, id);

    assert_int_equal(g.status, SB_NOT_FOUND);
    assert_int_equal(g.view.absent, 1);
    assert_true(g.view.rev > 0);
}

/* The current version has this revision, operation, restored revision
 * and change set (NULL: none). */
static void assert_head(sb_coll *c, const char *id, uint64_t rev, sb_op op,
                        uint64_t restored, const char *cs)
{
    struct got g = read_get(c, id);

    assert_int_equal(g.view.rev, rev);
    assert_int_equal(g.view.op, op);
    assert_int_equal(g.view.restored, restored);
    if (cs == NULL) {
        assert_null(g.view.change_set);
        return;
    }
    assert_int_equal(g.view.change_set_len, strlen(cs));
    assert_memory_equal(g.change_set, cs, strlen(cs));
}

static size_t history_count(sb_coll *c, const char *id)
{
    size_t count = 0;

    read_begin();
    assert_int_equal(sb_history(c, id, strlen(id), NULL, 0, &count), SB_OK);
    read_end();
    return count;
}

/* ------------------------------------------------------------------ */
/* Text: what a reader observes, rendered for comparison               */
/* ------------------------------------------------------------------ */

struct text {
    char *buf;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t,
                                                           const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        t->buf = realloc(t->buf, t->cap);
        assert_non_null(t->buf);
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Bytes as "[len]hex", or "-" for NULL. */
static void text_bytes(struct text *t, const void *p, size_t len)
{
    const unsigned char *b = p;

    if (p == NULL) {
        text_add(t, "-");
        return;
    }
    text_add(t, "[%zu]", len);
    for (size_t i = 0; i < len; i++)
        text_add(t, "%02x", b[i]);
}

static void text_view(struct text *t, sb_status st, const sb_view *v)
{
    text_add(t, " st=%d rev=%" PRIu64 " t=%" PRId64 " op=%d absent=%d", (int)st,
             v->rev, v->time_ns, (int)v->op, v->absent);
    text_add(t, " restored=%" PRIu64 " p=", v->restored);
    text_bytes(t, v->payload, v->len);
    text_add(t, " cs=");
    text_bytes(t, v->change_set, v->change_set_len);
    text_add(t, "\n");
}

/* The current version and the retained history of one document. */
static void text_doc(struct text *t, sb_coll *c, const char *id)
{
    sb_view views[64], v;
    size_t count = 0;
    sb_status st;

    memset(&v, 0, sizeof(v));
    read_begin();
    text_add(t, "doc %s\n  get", id);
    text_view(t, sb_get(c, id, strlen(id), &v), &v);
    st = sb_history(c, id, strlen(id), views, 64, &count);
    text_add(t, "  history st=%d count=%zu\n", (int)st, count);
    for (size_t i = 0; st == SB_OK && i < count && i < 64; i++) {
        text_add(t, "   ");
        text_view(t, SB_OK, &views[i]);
    }
    read_end();
}

static void text_info(struct text *t, const sb_cs_info *cs)
{
    text_add(t, "cs ");
    text_bytes(t, cs->id, cs->id_len);
    text_add(t, " actor=");
    text_bytes(t, cs->actor, cs->actor_len);
    text_add(t,
             " ns=%" PRId64 "..%" PRId64 " rev=%" PRIu64 "..%" PRIu64
             " writes=%" PRIu64 " docs=%zu pinned=%d\n",
             cs->first_ns, cs->last_ns, cs->first_rev, cs->last_rev, cs->writes,
             cs->docs, cs->pinned);
}

static int on_text_info(void *ctx, const sb_cs_info *cs)
{
    text_info(ctx, cs);
    return 0;
}

static int on_text_doc(void *ctx, const sb_cs_doc *d)
{
    struct text *t = ctx;
    size_t len = 0;
    const char *coll = sb_collection_name(d->coll, &len);

    text_add(t, "  doc %.*s/%.*s revs=", (int)len, coll, (int)d->id_len, d->id);
    for (size_t i = 0; i < d->nrevs; i++)
        text_add(t, "%s%" PRIu64, i ? "," : "", d->revs[i]);
    text_add(t, " before=%" PRIu64 " restorable=%d\n", d->before_rev,
             d->restorable);
    return 0;
}

/* Every retained change set, newest first, with its documents. */
struct cs_names {
    char (*names)[SB_CHANGE_SET_MAX + 1];
    size_t n, cap;
};

static int on_collect_name(void *ctx, const sb_cs_info *cs)
{
    struct cs_names *l = ctx;

    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->names = realloc(l->names, l->cap * sizeof(l->names[0]));
        assert_non_null(l->names);
    }
    assert_true(cs->id_len <= SB_CHANGE_SET_MAX);
    memcpy(l->names[l->n], cs->id, cs->id_len);
    l->names[l->n][cs->id_len] = '\0';
    l->n++;
    return 0;
}

static void text_changesets(struct text *t, sb_store *s)
{
    struct cs_names l = {NULL, 0, 0};

    assert_int_equal(sb_changeset_list(s, NULL, on_collect_name, &l), SB_OK);
    text_add(t, "change sets: %zu\n", l.n);
    for (size_t i = 0; i < l.n; i++)
        assert_int_equal(sb_changeset_get(s, l.names[i], strlen(l.names[i]),
                                          on_text_info, on_text_doc, t),
                         SB_OK);
    free(l.names);
}

/* The store's revision, the documents `ids` of `c` and every change set. */
static char *render(sb_store *s, sb_coll *c, const char *const *ids, size_t n)
{
    struct text t = {NULL, 0, 0};

    text_add(&t, "revision %" PRIu64 "\n", sb_store_revision(s));
    for (size_t i = 0; i < n; i++)
        text_doc(&t, c, ids[i]);
    text_changesets(&t, s);
    return t.buf;
}

/* Fails at the first line where the two renderings differ, showing it. */
static void assert_same(const char *want, const char *got)
{
    size_t line = 1, start = 0, i = 0;

    for (; want[i] != '\0' && want[i] == got[i]; i++) {
        if (want[i] == '\n') {
            line++;
            start = i + 1;
        }
    }
    if (want[i] == got[i])
        return;
    print_error("renderings differ at line %zu:\n  want: %.*s\n  got:  %.*s\n",
                line, (int)strcspn(want + start, "\n"), want + start,
                (int)strcspn(got + start, "\n"), got + start);
    fail();
}

/* Renders again and requires the same text; frees `before`. */
static void assert_unchanged(char *before, sb_store *s, sb_coll *c,
                             const char *const *ids, size_t n)
{
    char *after = render(s, c, ids, n);

    assert_same(before, after);
    free(before);
    free(after);
}

/* ------------------------------------------------------------------ */
/* Change sets: copies of what the callbacks saw                      */
/* ------------------------------------------------------------------ */

#define CAP_DOCS  64
#define CAP_REVS  64
#define CAP_LATER 8

struct doc_got {
    sb_coll *coll;
    char id[SB_ID_MAX + 1];
    uint64_t revs[CAP_REVS];
    size_t nrevs;
    uint64_t before_rev;
    int restorable;
};

struct cs_got {
    sb_status status;
    int infos;       /* info callbacks */
    sb_cs_info info; /* id and actor pointers: only compared with NULL */
    char id[SB_CHANGE_SET_MAX + 1];
    char actor[SB_ACTOR_MAX + 1];
    size_t ndocs;    /* doc callbacks */
    size_t stop_doc; /* doc callback that returns 1; 0: none */
    int stop_info;   /* the info callback returns 1 */
    struct doc_got docs[CAP_DOCS];
};

static void copy_info(const sb_cs_info *cs, sb_cs_info *info, char *id,
                      char *actor)
{
    *info = *cs;
    assert_non_null(cs->id);
    assert_true(cs->id_len <= SB_CHANGE_SET_MAX);
    memcpy(id, cs->id, cs->id_len);
    id[cs->id_len] = '\0';
    if (cs->actor) {
        assert_true(cs->actor_len <= SB_ACTOR_MAX);
        memcpy(actor, cs->actor, cs->actor_len);
        actor[cs->actor_len] = '\0';
    }
}

static int on_get_info(void *ctx, const sb_cs_info *cs)
{
    struct cs_got *g = ctx;

    g->infos++;
    copy_info(cs, &g->info, g->id, g->actor);
    return g->stop_info;
}

static int on_get_doc(void *ctx, const sb_cs_doc *d)
{
    struct cs_got *g = ctx;
    struct doc_got *o;

    assert_int_equal(g->infos, 1); /* info comes first */
    assert_true(g->ndocs < CAP_DOCS);
    o = &g->docs[g->ndocs++];
    o->coll = d->coll;
    assert_true(d->id_len <= SB_ID_MAX);
    memcpy(o->id, d->id, d->id_len);
    o->id[d->id_len] = '\0';
    o->nrevs = d->nrevs;
    assert_true(d->nrevs <= CAP_REVS);
    memcpy(o->revs, d->revs, d->nrevs * sizeof(d->revs[0]));
    o->before_rev = d->before_rev;
    o->restorable = d->restorable;
    return g->stop_doc != 0 && g->ndocs == g->stop_doc;
}

/* sb_changeset_get() of `id`; the caller frees the result. */
static struct cs_got *cs_get(sb_store *s, const char *id)
{
    struct cs_got *g = calloc(1, sizeof(*g));

    assert_non_null(g);
    g->status = sb_changeset_get(s, id, strlen(id), on_get_info, on_get_doc, g);
    return g;
}

/* The change set's summary, as sb_changeset_get() reports it. */
static void assert_info(const struct cs_got *g, const char *actor,
                        uint64_t first_rev, uint64_t last_rev, uint64_t writes,
                        size_t docs)
{
    assert_int_equal(g->status, SB_OK);
    assert_int_equal(g->infos, 1);
    if (actor == NULL) {
        assert_null(g->info.actor);
        assert_int_equal(g->info.actor_len, 0);
    } else {
        assert_non_null(g->info.actor);
        assert_string_equal(g->actor, actor);
    }
    assert_int_equal(g->info.first_rev, first_rev);
    assert_int_equal(g->info.last_rev, last_rev);
    assert_int_equal(g->info.writes, writes);
    assert_int_equal(g->info.docs, docs);
    assert_int_equal(g->ndocs, docs);
}

/* Document i of the change set: its id, revisions and earlier state. */
static void assert_cs_doc(const struct cs_got *g, size_t i, sb_coll *coll,
                          const char *id, const uint64_t *revs, size_t nrevs,
                          uint64_t before_rev, int restorable)
{
    const struct doc_got *d = &g->docs[i];

    assert_true(i < g->ndocs);
    assert_ptr_equal(d->coll, coll);
    assert_string_equal(d->id, id);
    assert_int_equal(d->nrevs, nrevs);
    for (size_t k = 0; k < nrevs; k++)
        assert_int_equal(d->revs[k], revs[k]);
    assert_int_equal(d->before_rev, before_rev);
    assert_int_equal(d->restorable, restorable);
}

struct later_got {
    uint64_t rev;
    sb_op op;
    int has_cs, has_actor;
    char cs[SB_CHANGE_SET_MAX + 1];
    char actor[SB_ACTOR_MAX + 1];
};

struct plan_got {
    sb_coll *coll;
    char id[SB_ID_MAX + 1];
    sb_cs_state state;
    uint64_t from_rev;
    int from_absent;
    uint64_t to_rev;
    int to_absent;
    int to_null; /* to_payload was NULL */
    char to_payload[256];
    size_t to_len;
    struct later_got later[CAP_LATER];
    size_t nlater;
    int later_more;
    uint64_t rev;
};

struct rb_got {
    sb_status status;
    sb_cs_outcome out;
    size_t nplans;
    struct plan_got plans[CAP_DOCS];
};

static void copy_later(const sb_cs_later *l, struct later_got *o)
{
    o->rev = l->rev;
    o->op = l->op;
    o->has_cs = l->change_set != NULL;
    if (o->has_cs) {
        assert_true(l->change_set_len <= SB_CHANGE_SET_MAX);
        memcpy(o->cs, l->change_set, l->change_set_len);
    }
    o->has_actor = l->actor != NULL;
    if (o->has_actor) {
        assert_true(l->actor_len <= SB_ACTOR_MAX);
        memcpy(o->actor, l->actor, l->actor_len);
    }
}

static int on_plan(void *ctx, const sb_cs_plan *p)
{
    struct rb_got *g = ctx;
    struct plan_got *o;

    assert_true(g->nplans < CAP_DOCS);
    o = &g->plans[g->nplans++];
    o->coll = p->coll;
    assert_true(p->id_len <= SB_ID_MAX);
    memcpy(o->id, p->id, p->id_len);
    o->state = p->state;
    o->from_rev = p->from_rev;
    o->from_absent = p->from_absent;
    o->to_rev = p->to_rev;
    o->to_absent = p->to_absent;
    o->to_null = p->to_payload == NULL;
    if (p->to_payload) {
        assert_true(p->to_len < sizeof(o->to_payload));
        memcpy(o->to_payload, p->to_payload, p->to_len);
    }
    o->to_len = p->to_len;
    o->nlater = p->nlater;
    for (size_t i = 0; i < p->nlater && i < CAP_LATER; i++)
        copy_later(&p->later[i], &o->later[i]);
    o->later_more = p->later_more;
    o->rev = p->rev;
    return 0;
}

/* Marks what sb_changeset_rollback() must fill on success. */
#define UNTOUCHED 0xababababababababULL

/* sb_changeset_rollback() of `id` under change set `cs` by `actor`; the
 * caller frees the result. */
static struct rb_got *rollback_cs(sb_store *s, const char *id, unsigned flags,
                                  const char *cs, const char *actor)
{
    struct rb_got *g = calloc(1, sizeof(*g));
    sb_write_opts o = wo(cs, actor);

    assert_non_null(g);
    memset(&g->out, 0xab, sizeof(g->out));
    g->status = sb_changeset_rollback(s, id, strlen(id), flags, &o, on_plan, g,
                                      &g->out);
    return g;
}

static const struct plan_got *plan_of(const struct rb_got *g, const char *id)
{
    for (size_t i = 0; i < g->nplans; i++)
        if (strcmp(g->plans[i].id, id) == 0)
            return &g->plans[i];
    fail_msg("no plan for document %s", id);
    return NULL;
}

/* The plan for `id`: its state, where it is and where it goes (to_payload
 * NULL: an absence). */
static void assert_plan(const struct rb_got *g, const char *id,
                        sb_cs_state state, uint64_t from_rev, int from_absent,
                        uint64_t to_rev, const char *to_payload)
{
    const struct plan_got *p = plan_of(g, id);

    assert_int_equal(p->state, state);
    assert_int_equal(p->from_rev, from_rev);
    assert_int_equal(p->from_absent, from_absent);
    assert_int_equal(p->to_rev, to_rev);
    assert_int_equal(p->to_absent, to_payload == NULL);
    if (to_payload == NULL) {
        assert_int_equal(p->to_null, 1);
        return;
    }
    assert_int_equal(p->to_null, 0);
    assert_int_equal(p->to_len, strlen(to_payload));
    assert_memory_equal(p->to_payload, to_payload, strlen(to_payload));
}

/* Later version i of the plan for `id` (cs, actor NULL: none). */
static void assert_later(const struct rb_got *g, const char *id, size_t i,
                         uint64_t rev, sb_op op, const char *cs,
                         const char *actor)
{
    const struct plan_got *p = plan_of(g, id);
    const struct later_got *l = &p->later[i];

    assert_true(i < p->nlater && i < CAP_LATER);
    assert_int_equal(l->rev, rev);
    assert_int_equal(l->op, op);
    assert_int_equal(l->has_cs, cs != NULL);
    if (cs)
        assert_string_equal(l->cs, cs);
    assert_int_equal(l->has_actor, actor != NULL);
    if (actor)
        assert_string_equal(l->actor, actor);
}

static void assert_outcome(const struct rb_got *g, size_t docs, size_t clean,
                           size_t conflicts, size_t lost, size_t unchanged,
                           size_t restored)
{
    assert_int_equal(g->out.docs, docs);
    assert_int_equal(g->out.clean, clean);
    assert_int_equal(g->out.conflicts, conflicts);
    assert_int_equal(g->out.lost, lost);
    assert_int_equal(g->out.unchanged, unchanged);
    assert_int_equal(g->out.restored, restored);
    assert_int_equal(g->nplans, docs);
}

/* An applied rollback wrote exactly one version per restored document,
 * with consecutive revisions first_rev..last_rev. */
static void assert_applied_revs(const struct rb_got *g)
{
    size_t written = 0;

    assert_int_equal(g->out.last_rev - g->out.first_rev + 1, g->out.restored);
    for (size_t i = 0; i < g->nplans; i++) {
        const struct plan_got *p = &g->plans[i];
        if (p->rev == 0)
            continue;
        written++;
        assert_true(p->rev >= g->out.first_rev && p->rev <= g->out.last_rev);
        for (size_t j = 0; j < i; j++)
            assert_true(g->plans[j].rev != p->rev);
    }
    assert_int_equal(written, g->out.restored);
}

/* The plans of two calls are the same but for the revisions written. */
static void assert_same_plans(const struct rb_got *a, const struct rb_got *b)
{
    assert_int_equal(a->nplans, b->nplans);
    for (size_t i = 0; i < a->nplans; i++) {
        const struct plan_got *x = &a->plans[i], *y = &b->plans[i];

        assert_ptr_equal(x->coll, y->coll);
        assert_string_equal(x->id, y->id);
        assert_int_equal(x->state, y->state);
        assert_int_equal(x->from_rev, y->from_rev);
        assert_int_equal(x->from_absent, y->from_absent);
        assert_int_equal(x->to_rev, y->to_rev);
        assert_int_equal(x->to_absent, y->to_absent);
        assert_int_equal(x->to_null, y->to_null);
        assert_int_equal(x->to_len, y->to_len);
        assert_memory_equal(x->to_payload, y->to_payload, x->to_len);
        assert_int_equal(x->nlater, y->nlater);
        assert_int_equal(x->later_more, y->later_more);
        for (size_t k = 0; k < x->nlater && k < CAP_LATER; k++) {
            assert_int_equal(x->later[k].rev, y->later[k].rev);
            assert_int_equal(x->later[k].op, y->later[k].op);
            assert_int_equal(x->later[k].has_cs, y->later[k].has_cs);
            assert_int_equal(x->later[k].has_actor, y->later[k].has_actor);
            assert_string_equal(x->later[k].cs, y->later[k].cs);
            assert_string_equal(x->later[k].actor, y->later[k].actor);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Batches                                                            */
/* ------------------------------------------------------------------ */

static sb_batch_op bop(sb_batch_kind kind, sb_coll *c, const char *id,
                       const char *payload)
{
    sb_batch_op op;

    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.coll = c;
    op.id = id;
    op.id_len = id ? strlen(id) : 0;
    op.payload = payload;
    op.len = payload ? strlen(payload) : 0;
    op.status = (sb_status)-1; /* sb_batch() must set it */
    return op;
}

static sb_batch_op bop_steps(sb_coll *c, const char *id, unsigned steps)
{
    sb_batch_op op = bop(SB_BATCH_ROLLBACK_STEPS, c, id, NULL);

    op.steps = steps;
    return op;
}

static sb_batch_op bop_to(sb_coll *c, const char *id, uint64_t rev)
{
    sb_batch_op op = bop(SB_BATCH_ROLLBACK_TO, c, id, NULL);

    op.rev = rev;
    return op;
}

static void assert_res(const sb_batch_op *op, uint64_t rev, int created,
                       int absent, uint64_t restored)
{
    assert_int_equal(op->status, SB_OK);
    assert_int_equal(op->result.rev, rev);
    assert_int_equal(op->result.created, created);
    assert_int_equal(op->result.absent, absent);
    assert_int_equal(op->result.restored, restored);
    assert_int_equal(op->result.lsn, 0); /* in memory */
}

/* Every kind in one batch, a create and a put of the same id among them:
 * consecutive revisions, a result per operation, one change set. */
static void test_batch_success(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    sb_write_opts o = wo("batch-1", "bob");
    size_t failed = 12345;

    put_ok(c, "a", "a1", NULL, NULL); /* 1 */
    put_ok(c, "c", "c1", NULL, NULL); /* 2 */
    put_ok(c, "c", "c2", NULL, NULL); /* 3 */
    fake_now = T0 + MINUTE;

    sb_batch_op ops[] = {
        bop(SB_BATCH_CREATE, c, "b", "b1"), /* 4 */
        bop(SB_BATCH_PUT, c, "b", "b2"),    /* 5, over the create */
        bop(SB_BATCH_PUT, c, "a", "a2"),    /* 6 */
        bop(SB_BATCH_DELETE, c, "a", NULL), /* 7 */
        bop_steps(c, "a", 1),               /* 8: back to 6 */
        bop_to(c, "c", 2),                  /* 9: back to c1 */
        bop(SB_BATCH_PUT, c, "d", "d1"),    /* 10 */
    };
    assert_int_equal(sb_batch(fx->store, ops, 7, &o, &failed), SB_OK);
    assert_int_equal(sb_store_revision(fx->store), 10);
    assert_res(&ops[0], 4, 1, 0, 0);
    assert_res(&ops[1], 5, 0, 0, 0);
    assert_res(&ops[2], 6, 0, 0, 0);
    assert_res(&ops[3], 7, 0, 1, 0);
    assert_res(&ops[4], 8, 1, 0, 6);
    assert_res(&ops[5], 9, 0, 0, 2);
    assert_res(&ops[6], 10, 1, 0, 0);

    /* The documents, and every version the batch wrote. */
    assert_live(c, "a", "a2");
    assert_head(c, "a", 8, SB_OP_ROLLBACK, 6, "batch-1");
    assert_live(c, "b", "b2");
    assert_head(c, "b", 5, SB_OP_UPDATE, 0, "batch-1");
    assert_int_equal(read_version(c, "b", 4).view.op, SB_OP_CREATE);
    assert_int_equal(history_count(c, "b"), 2);
    assert_live(c, "c", "c1");
    assert_head(c, "c", 9, SB_OP_ROLLBACK, 2, "batch-1");
    assert_live(c, "d", "d1");
    assert_int_equal(read_version(c, "a", 7).view.absent, 1);
    for (uint64_t rev = 4; rev <= 10; rev++) {
        const char *ids[] = {"b", "b", "a", "a", "a", "c", "d"};
        struct got g = read_version(c, ids[rev - 4], rev);
        assert_int_equal(g.status, SB_OK);
        assert_int_equal(g.view.time_ns, T0 + MINUTE);
    }

    /* One change set, by bob, in the order of first writes. */
    struct cs_got *g = cs_get(fx->store, "batch-1");
    assert_info(g, "bob", 4, 10, 7, 4);
    assert_int_equal(g->info.first_ns, T0 + MINUTE);
    assert_int_equal(g->info.last_ns, T0 + MINUTE);
    assert_cs_doc(g, 0, c, "b", (uint64_t[]){4, 5}, 2, 0, 1);
    assert_cs_doc(g, 1, c, "a", (uint64_t[]){6, 7, 8}, 3, 1, 1);
    assert_cs_doc(g, 2, c, "c", (uint64_t[]){9}, 1, 3, 1);
    assert_cs_doc(g, 3, c, "d", (uint64_t[]){10}, 1, 0, 1);
    free(g);

    /* A batch of one, without a change set, indexes nothing. */
    sb_batch_op one[] = {bop(SB_BATCH_PUT, c, "e", "e1")};
    assert_int_equal(sb_batch(fx->store, one, 1, NULL, NULL), SB_OK);
    assert_res(&one[0], 11, 1, 0, 0);
    assert_head(c, "e", 11, SB_OP_CREATE, 0, NULL);
    struct cs_names l = {NULL, 0, 0};
    assert_int_equal(sb_changeset_list(fx->store, NULL, on_collect_name, &l),
                     SB_OK);
    assert_int_equal(l.n, 1);
    free(l.names);
}

/* Many new documents in one batch, each written again later in it: the
 * later operations find them before the commit adds them to the table,
 * also past the first growth of the group's index of them.  A batch that
 * fails keeps none of its new documents. */
static void test_batch_many_new_documents(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    enum { N = 40 };
    static char ids[N][8];
    sb_batch_op ops[2 * N + 1];

    for (int i = 0; i < N; i++)
        snprintf(ids[i], sizeof(ids[i]), "m%d", i);
    for (int i = 0; i < N; i++) {
        ops[i] = bop(SB_BATCH_CREATE, c, ids[i], "one");
        ops[N + i] = bop(SB_BATCH_PUT, c, ids[N - 1 - i], "two");
    }
    assert_int_equal(sb_batch(fx->store, ops, 2 * N, NULL, NULL), SB_OK);
    for (int i = 0; i < N; i++) {
        assert_res(&ops[i], (uint64_t)i + 1, 1, 0, 0);
        assert_res(&ops[N + i], (uint64_t)(N + i) + 1, 0, 0, 0);
        assert_head(c, ids[i], (uint64_t)(2 * N - i), SB_OP_UPDATE, 0, NULL);
        assert_live(c, ids[i], "two");
        assert_int_equal(history_count(c, ids[i]), 2);
    }

    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "f%d", i);
        ops[i] = bop(SB_BATCH_CREATE, c, ids[i], "one");
        ops[N + i] = bop(SB_BATCH_PUT, c, ids[i], "two");
    }
    ops[2 * N] = bop(SB_BATCH_CREATE, c, ids[0], "again"); /* exists */
    size_t failed = 0;
    assert_int_equal(sb_batch(fx->store, ops, 2 * N + 1, NULL, &failed),
                     SB_EXISTS);
    assert_int_equal(failed, 2 * N);
    assert_int_equal(sb_store_revision(fx->store), 2 * N);
    for (int i = 0; i < N; i++)
        assert_int_equal(read_get(c, ids[i]).status, SB_NOT_FOUND);
    put_ok(c, ids[3], "later", NULL, NULL);
    assert_live(c, ids[3], "later");
    assert_int_equal(history_count(c, ids[3]), 1);
}

/* Operations spanning two collections of one store. */
static void test_batch_two_collections(void **state)
{
    struct fx *fx = *state;
    sb_coll *people = open_coll(fx->store, "people");
    sb_write_opts o = wo("two", NULL);

    sb_batch_op ops[] = {
        bop(SB_BATCH_PUT, fx->coll, "x", "doc"),
        bop(SB_BATCH_PUT, people, "x", "person"),
    };
    assert_int_equal(sb_batch(fx->store, ops, 2, &o, NULL), SB_OK);
    assert_live(fx->coll, "x", "doc");
    assert_live(people, "x", "person");

    struct cs_got *g = cs_get(fx->store, "two");
    assert_info(g, NULL, 1, 2, 2, 2);
    assert_cs_doc(g, 0, fx->coll, "x", (uint64_t[]){1}, 1, 0, 1);
    assert_cs_doc(g, 1, people, "x", (uint64_t[]){2}, 1, 0, 1);
    free(g);
}

/* One failing case: operations, the index expected to fail, its status. */
struct failing {
    const char *what;
    struct {
        size_t n, k;
        sb_status want;
        unsigned available; /* SB_HISTORY_EXHAUSTED */
    } x;
    sb_batch_op ops[4];
};

static const char *const batch_ids[] = {"a", "e", "g", "n", "x", "z", "nv"};

static void run_failing(struct fx *fx, struct failing *f)
{
    char *before = render(fx->store, fx->coll, batch_ids, 7);
    sb_write_opts o = wo("failing", "eve");
    size_t failed = 12345;
    sb_status st;

    print_message("case: %s\n", f->what);
    st = sb_batch(fx->store, f->ops, f->x.n, &o, &failed);
    assert_int_equal(st, f->x.want);
    assert_int_equal(failed, f->x.k);
    assert_int_equal(f->ops[f->x.k].status, f->x.want);
    for (size_t i = 0; i < f->x.k; i++)
        assert_int_equal(f->ops[i].status, SB_OK);
    if (f->x.want == SB_HISTORY_EXHAUSTED)
        assert_int_equal(f->ops[f->x.k].result.available, f->x.available);

    /* Nothing changed: revision, documents, histories, change sets. */
    assert_unchanged(before, fx->store, fx->coll, batch_ids, 7);
    struct cs_got *g = cs_get(fx->store, "failing");
    assert_int_equal(g->status, SB_NOT_FOUND);
    free(g);
}

/* A batch that fails at operation k changes nothing, and says which
 * operation failed and why; later operations see earlier ones. */
static void test_batch_failure(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;

    put_ok(c, "a", "a1", NULL, NULL);    /* 1 */
    create_ok(c, "e", "e1", NULL, NULL); /* 2 */
    put_ok(c, "e", "e2", NULL, NULL);    /* 3 */
    put_ok(c, "g", "g1", NULL, NULL);    /* 4 */
    delete_ok(c, "g", NULL, NULL);       /* 5 */

    struct failing cases[] = {
        {"create of a live document",
         {2, 1, SB_EXISTS, 0},
         {bop(SB_BATCH_PUT, c, "x", "x1"), bop(SB_BATCH_CREATE, c, "a", "a")}},
        {"delete of a deleted document",
         {2, 1, SB_NOT_FOUND, 0},
         {bop(SB_BATCH_PUT, c, "a", "a2"), bop(SB_BATCH_DELETE, c, "g", NULL)}},
        {"if_rev that an earlier operation made stale",
         {2, 1, SB_CONFLICT, 0},
         {bop(SB_BATCH_PUT, c, "a", "a2"), bop(SB_BATCH_PUT, c, "a", "a3")}},
        {"rollback past the history, counting the put before it",
         {2, 1, SB_HISTORY_EXHAUSTED, 3},
         {bop(SB_BATCH_PUT, c, "e", "e3"), bop_steps(c, "e", 4)}},
        {"rollback to a future revision",
         {2, 1, SB_FUTURE, 0},
         {bop(SB_BATCH_PUT, c, "a", "a2"), bop_to(c, "a", 99)}},
        {"second create of an id the batch created",
         {2, 1, SB_EXISTS, 0},
         {bop(SB_BATCH_CREATE, c, "n", "n1"),
          bop(SB_BATCH_CREATE, c, "n", "2")}},
        {"second delete in the batch",
         {3, 2, SB_NOT_FOUND, 0},
         {bop(SB_BATCH_PUT, c, "a", "a2"), bop(SB_BATCH_DELETE, c, "a", NULL),
          bop(SB_BATCH_DELETE, c, "a", NULL)}},
        {"rollback of a document never written",
         {2, 0, SB_NOT_FOUND, 0},
         {bop_steps(c, "nv", 1), bop(SB_BATCH_PUT, c, "a", "a2")}},
        {"create with if_rev",
         {1, 0, SB_CONFLICT, 0},
         {bop(SB_BATCH_CREATE, c, "z", "z1")}},
        {"last of four fails",
         {4, 3, SB_EXISTS, 0},
         {bop(SB_BATCH_PUT, c, "x", "x1"), bop(SB_BATCH_PUT, c, "z", "z1"),
          bop(SB_BATCH_DELETE, c, "x", NULL),
          bop(SB_BATCH_CREATE, c, "e", "")}},
    };
    cases[2].ops[0].if_rev = 1; /* a's head: matches */
    cases[2].ops[1].if_rev = 1; /* now 6, after the first operation */
    cases[8].ops[0].if_rev = 1;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_failing(fx, &cases[i]);

    /* No revision was used up: the next write gets 6. */
    assert_int_equal(put_ok(c, "a", "a2", NULL, NULL), 6);
}

/* Per-operation if_rev: an operation can name the revision an earlier one
 * of the same batch is given. */
static void test_batch_if_rev(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;

    put_ok(c, "a", "a1", NULL, NULL); /* 1 */
    put_ok(c, "b", "b1", NULL, NULL); /* 2 */
    delete_ok(c, "b", NULL, NULL);    /* 3 */

    sb_batch_op ops[] = {
        bop(SB_BATCH_PUT, c, "a", "a2"),    /* 4 */
        bop(SB_BATCH_PUT, c, "a", "a3"),    /* 5 */
        bop(SB_BATCH_DELETE, c, "a", NULL), /* 6 */
        bop_steps(c, "a", 1),               /* 7 */
    };
    ops[0].if_rev = 1;
    ops[1].if_rev = 4;
    ops[2].if_rev = 5;
    ops[3].if_rev = 0; /* a deleted document has no revision to match */
    assert_int_equal(sb_batch(fx->store, ops, 4, NULL, NULL), SB_OK);
    assert_res(&ops[3], 7, 1, 0, 5);
    assert_live(c, "a", "a3");

    /* The head of a deleted document does not count as current. */
    sb_batch_op del[] = {bop(SB_BATCH_PUT, c, "b", "b2")};
    del[0].if_rev = 3;
    size_t failed = 99;
    assert_int_equal(sb_batch(fx->store, del, 1, NULL, &failed), SB_CONFLICT);
    assert_int_equal(failed, 0);

    /* A wrong if_rev on the last operation undoes the first. */
    sb_batch_op wrong[] = {
        bop(SB_BATCH_PUT, c, "a", "a4"),
        bop_to(c, "a", 1),
    };
    wrong[1].if_rev = 7; /* the head before the batch, not after op 0 */
    assert_int_equal(sb_batch(fx->store, wrong, 2, NULL, &failed), SB_CONFLICT);
    assert_int_equal(failed, 1);
    assert_int_equal(wrong[1].status, SB_CONFLICT);
    assert_live(c, "a", "a3");
    assert_int_equal(sb_store_revision(fx->store), 7);

    wrong[1].if_rev = 8;
    assert_int_equal(sb_batch(fx->store, wrong, 2, NULL, &failed), SB_OK);
    assert_res(&wrong[1], 9, 0, 0, 1);
    assert_live(c, "a", "a1");
}

/* A batch that must be refused as SB_INVALID, at operation k (or, when
 * k is SIZE_MAX, before any operation). */
static void expect_invalid(struct fx *fx, sb_batch_op *ops, size_t n,
                           const sb_write_opts *o, size_t k)
{
    size_t failed = 12345;

    assert_int_equal(sb_batch(fx->store, ops, n, o, &failed), SB_INVALID);
    if (k != SIZE_MAX) {
        assert_int_equal(failed, k);
        assert_int_equal(ops[k].status, SB_INVALID);
    }
}

/* Argument errors, found before any operation is tried: an operation that
 * would fail for another reason earlier in the batch does not hide them. */
static void test_batch_invalid(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    static char big[SB_CHANGE_SET_MAX + 1];
    const char *const ids[] = {"a", "b"};
    sb_store *other = NULL;
    sb_coll *foreign;

    memset(big, 'x', sizeof(big));
    put_ok(c, "a", "a1", NULL, NULL);
    char *before = render(fx->store, c, ids, 2);

    sb_batch_op ok[] = {bop(SB_BATCH_PUT, c, "b", "b1")};
    assert_int_equal(sb_batch(NULL, ok, 1, NULL, NULL), SB_INVALID);
    assert_int_equal(sb_batch(fx->store, NULL, 1, NULL, NULL), SB_INVALID);
    assert_int_equal(sb_batch(fx->store, ok, 0, NULL, NULL), SB_INVALID);

    /* Op 0 would fail with SB_EXISTS; op 2 is malformed. */
    sb_batch_op ops[3];
    sb_batch_kind kinds[] = {(sb_batch_kind)0, (sb_batch_kind)99};
    for (size_t i = 0; i < 2; i++) {
        ops[0] = bop(SB_BATCH_CREATE, c, "a", "dup");
        ops[1] = bop(SB_BATCH_PUT, c, "b", "b1");
        ops[2] = bop(kinds[i], c, "b", "b2");
        expect_invalid(fx, ops, 3, NULL, 2);
    }
    ops[2] = bop(SB_BATCH_PUT, NULL, "b", "b2");
    expect_invalid(fx, ops, 3, NULL, 2);

    /* Bad arguments of the single calls. */
    const char *bad_ids[] = {"", "a/b"};
    for (size_t i = 0; i < 2; i++) {
        ops[1] = bop(SB_BATCH_PUT, c, bad_ids[i], "b1");
        expect_invalid(fx, ops, 2, NULL, 1);
    }
    ops[1] = bop(SB_BATCH_PUT, c, "b", "b1");
    ops[1].id = NULL;
    expect_invalid(fx, ops, 2, NULL, 1);
    ops[1] = bop_steps(c, "a", 0);
    expect_invalid(fx, ops, 2, NULL, 1);
    ops[1] = bop_to(c, "a", 0);
    expect_invalid(fx, ops, 2, NULL, 1);

    /* A collection of another store. */
    assert_int_equal(sb_store_open(NULL, &other), SB_OK);
    foreign = open_coll(other, "docs");
    ops[0] = bop(SB_BATCH_PUT, c, "b", "b1");
    ops[1] = bop(SB_BATCH_PUT, foreign, "b", "b1");
    expect_invalid(fx, ops, 2, NULL, 1);
    assert_int_equal(sb_store_revision(other), 0);
    sb_store_close(other);

    /* Options: if_rev, oversized change set and actor. */
    sb_write_opts o = wo(NULL, NULL);
    o.if_rev = 1;
    expect_invalid(fx, ok, 1, &o, SIZE_MAX);
    o = wo(NULL, NULL);
    o.change_set = big;
    o.change_set_len = sizeof(big);
    expect_invalid(fx, ok, 1, &o, SIZE_MAX);
    o = wo("cs", NULL);
    o.actor = big;
    o.actor_len = sizeof(big);
    expect_invalid(fx, ok, 1, &o, SIZE_MAX);

    assert_unchanged(before, fx->store, c, ids, 2);
}

/* ------------------------------------------------------------------ */
/* Atomic visibility: a reader never sees part of a batch             */
/* ------------------------------------------------------------------ */

#define GEN_DOCS 32  /* documents each batch rewrites */
#define GEN_MAX  400 /* batches the writer commits */
#define GEN_SYNC 16  /* the writer waits for a scan this often */

struct gen_run {
    sb_store *store;
    sb_coll *coll;
    char ids[GEN_DOCS][8];
    atomic_int done;     /* the writer has finished */
    atomic_long scans;   /* whole scans the reader completed */
    atomic_int failures; /* set by the threads, asserted by the main one */
    char why[160];       /* the first failure, written once */
    int gens_seen;       /* generation changes the reader saw */
    int exhausted;       /* second pages that found the state dropped */
};

__attribute__((format(printf, 2, 3))) static void gen_fail(struct gen_run *r,
                                                           const char *fmt, ...)
{
    va_list ap;

    if (atomic_fetch_add(&r->failures, 1) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
}

/* Generation g's payload: "gen" and six digits. */
static void gen_payload(char *buf, int g)
{
    snprintf(buf, 16, "gen%06d", g);
}

/* Sets every document to generation g in one batch. */
static sb_status gen_write(struct gen_run *r, int g)
{
    char payload[16];
    sb_batch_op ops[GEN_DOCS];

    gen_payload(payload, g);
    for (int i = 0; i < GEN_DOCS; i++)
        ops[i] = bop(SB_BATCH_PUT, r->coll, r->ids[i], payload);
    return sb_batch(r->store, ops, GEN_DOCS, NULL, NULL);
}

struct gen_scan {
    int docs, gen; /* documents seen; their generation, -1: mixed */
    int page;      /* stop after this many documents */
    char last[8];  /* id of the last document seen */
};

static int on_gen_scan(void *ctx, const sb_view *doc)
{
    struct gen_scan *s = ctx;
    char digits[8] = "";
    int g = -2; /* not a generation's payload */

    if (doc->len == 9) { /* the payload is not NUL-terminated */
        memcpy(digits, (const char *)doc->payload + 3, 6);
        g = atoi(digits);
    }

    if (s->docs++ == 0)
        s->gen = g;
    else if (s->gen != g)
        s->gen = -1;
    snprintf(s->last, sizeof(s->last), "%.*s", (int)doc->id_len, doc->id);
    return s->docs == s->page;
}

/* One scan at the revision current when it starts, in two pages read in
 * two read sections, while the writer goes on. */
static void gen_scan_once(struct gen_run *r, int *last_gen)
{
    struct gen_scan s = {0, 0, GEN_DOCS / 2, ""};
    uint64_t rev;
    sb_status st;

    sb_read_lock();
    rev = sb_store_revision(r->store);
    st = sb_scan_at(r->coll, rev, NULL, 0, on_gen_scan, &s);
    sb_read_unlock();
    if (st == SB_OK && s.docs == GEN_DOCS / 2) {
        s.page = GEN_DOCS + 1;
        sb_read_lock();
        st = sb_scan_at(r->coll, rev, s.last, strlen(s.last), on_gen_scan, &s);
        sb_read_unlock();
        /* The writer may have pushed the state at `rev` out of the ring
         * between the pages: documented, and not a torn batch. */
        if (st == SB_HISTORY_EXHAUSTED) {
            r->exhausted++;
            atomic_fetch_add(&r->scans, 1);
            return;
        }
    }
    if (st != SB_OK)
        gen_fail(r, "scan_at(%" PRIu64 ") returned %d", rev, (int)st);
    else if (s.docs != GEN_DOCS || s.gen < 0)
        gen_fail(r, "scan_at(%" PRIu64 ") saw %d documents, generation %d", rev,
                 s.docs, s.gen);
    else if (s.gen != *last_gen) {
        r->gens_seen++;
        *last_gen = s.gen;
    }
    atomic_fetch_add(&r->scans, 1);
}

static void *gen_reader(void *p)
{
    struct gen_run *r = p;
    int last_gen = -1;

    sb_thread_register();
    while (!atomic_load(&r->done))
        gen_scan_once(r, &last_gen);
    gen_scan_once(r, &last_gen);
    sb_thread_unregister();
    return NULL;
}

/* Waits until the reader has completed a scan that started after now. */
static void gen_wait_scan(struct gen_run *r)
{
    long seen = atomic_load(&r->scans);

    while (atomic_load(&r->scans) < seen + 2 && !atomic_load(&r->failures))
        sched_yield();
}

/* Every few generations the writer undoes the last one with a change-set
 * rollback, which must be seen whole too. */
static void *gen_writer(void *p)
{
    struct gen_run *r = p;
    char name[16], undo[16];

    sb_thread_register();
    for (int g = 1; g <= GEN_MAX && !atomic_load(&r->failures); g++) {
        snprintf(name, sizeof(name), "gen-%d", g);
        sb_write_opts o = wo(name, NULL);
        if (g % 5 != 0) {
            if (gen_write(r, g) != SB_OK)
                gen_fail(r, "batch of generation %d failed", g);
        } else {
            char payload[16];
            sb_batch_op ops[GEN_DOCS];
            gen_payload(payload, g);
            for (int i = 0; i < GEN_DOCS; i++)
                ops[i] = bop(SB_BATCH_PUT, r->coll, r->ids[i], payload);
            sb_status st = sb_batch(r->store, ops, GEN_DOCS, &o, NULL);
            snprintf(undo, sizeof(undo), "undo-%d", g);
            sb_write_opts u = wo(undo, NULL);
            if (st == SB_OK)
                st = sb_changeset_rollback(r->store, name, strlen(name), 0, &u,
                                           NULL, NULL, NULL);
            if (st != SB_OK)
                gen_fail(r, "generation %d and its undo: %d", g, (int)st);
        }
        if (g % GEN_SYNC == 0)
            gen_wait_scan(r);
    }
    atomic_store(&r->done, 1);
    sb_thread_unregister();
    return NULL;
}

static void test_batch_atomic_visibility(void **state)
{
    struct fx *fx = *state;
    struct gen_run *r = calloc(1, sizeof(*r));
    pthread_t reader, writer;

    assert_non_null(r);
    fx->opts.history = 64; /* room for the writer to run ahead of a scan */
    reopen(fx);
    r->store = fx->store;
    r->coll = fx->coll;
    for (int i = 0; i < GEN_DOCS; i++)
        snprintf(r->ids[i], sizeof(r->ids[i]), "g%02d", i);
    assert_int_equal(gen_write(r, 0), SB_OK);

    assert_int_equal(pthread_create(&reader, NULL, gen_reader, r), 0);
    assert_int_equal(pthread_create(&writer, NULL, gen_writer, r), 0);
    assert_int_equal(pthread_join(writer, NULL), 0);
    assert_int_equal(pthread_join(reader, NULL), 0);

    if (atomic_load(&r->failures))
        fail_msg("%s", r->why);
    /* The writer waited for the reader every GEN_SYNC generations, so the
     * reader saw the collection change at least that often. */
    assert_true(r->gens_seen >= GEN_MAX / GEN_SYNC);
    assert_int_equal(sb_store_revision(fx->store),
                     (uint64_t)GEN_DOCS * (GEN_MAX + 1 + GEN_MAX / 5));
    print_message("reader: %ld scans, %d generations seen, %d second pages "
                  "exhausted\n",
                  atomic_load(&r->scans), r->gens_seen, r->exhausted);
    free(r);
}

/* ------------------------------------------------------------------ */
/* The change-set index                                               */
/* ------------------------------------------------------------------ */

/* What sb_changeset_get() reports: the actor of the first write naming
 * one, times and revisions, and per document its revisions and the state
 * before the change set's first write. */
static void test_changeset_get(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    sb_coll *people = open_coll(fx->store, "people");
    sb_write_opts o = wo("cs-1", "mallory");
    sb_result res;

    put_ok(c, "a", "a0", NULL, NULL); /* 1 */
    put_ok(c, "g", "g0", NULL, NULL); /* 2 */
    delete_ok(c, "g", NULL, NULL);    /* 3 */

    fake_now = T0 + 1 * MINUTE;
    put_ok(c, "a", "a1", "cs-1", NULL); /* 4: no actor yet */
    fake_now = T0 + 2 * MINUTE;
    create_ok(c, "b", "b1", "cs-1", "alice"); /* 5: the actor */
    fake_now = T0 + 3 * MINUTE;
    put_ok(c, "a", "a2", "other", "zed"); /* 6 */
    fake_now = T0 + 4 * MINUTE;
    create_ok(c, "g", "g1", "cs-1", "bob"); /* 7: alice stays */
    fake_now = T0 + 5 * MINUTE;
    put_ok(people, "p", "p1", "cs-1", NULL); /* 8 */
    fake_now = T0 + 6 * MINUTE;
    put_ok(c, "a", "a3", "cs-1", NULL); /* 9 */
    fake_now = T0 + 7 * MINUTE;
    put_ok(c, "h", "h1", NULL, NULL); /* 10 */

    /* Failed writes are not indexed, under any change set. */
    assert_int_equal(sb_create(c, "b", 1, "x", 1, &o, &res), SB_EXISTS);
    o = wo("cs-fail", "mallory");
    assert_int_equal(sb_create(c, "b", 1, "x", 1, &o, &res), SB_EXISTS);

    struct cs_got *g = cs_get(fx->store, "cs-1");
    assert_info(g, "alice", 4, 9, 5, 4);
    assert_string_equal(g->id, "cs-1");
    assert_int_equal(g->info.id_len, 4);
    assert_int_equal(g->info.first_ns, T0 + 1 * MINUTE);
    assert_int_equal(g->info.last_ns, T0 + 6 * MINUTE);
    assert_int_equal(g->info.pinned, 1);
    assert_cs_doc(g, 0, c, "a", (uint64_t[]){4, 9}, 2, 1, 1);
    assert_cs_doc(g, 1, c, "b", (uint64_t[]){5}, 1, 0, 1);
    assert_cs_doc(g, 2, c, "g", (uint64_t[]){7}, 1, 3, 1);
    assert_cs_doc(g, 3, people, "p", (uint64_t[]){8}, 1, 0, 1);
    free(g);

    /* The commit times are the versions' own. */
    assert_int_equal(read_version(c, "a", 4).view.time_ns, T0 + 1 * MINUTE);
    assert_int_equal(read_version(c, "a", 9).view.time_ns, T0 + 6 * MINUTE);

    g = cs_get(fx->store, "other");
    assert_info(g, "zed", 6, 6, 1, 1);
    assert_cs_doc(g, 0, c, "a", (uint64_t[]){6}, 1, 4, 1);
    free(g);

    g = cs_get(fx->store, "cs-fail");
    assert_int_equal(g->status, SB_NOT_FOUND);
    assert_int_equal(g->infos, 0);
    free(g);
    g = cs_get(fx->store, "nope");
    assert_int_equal(g->status, SB_NOT_FOUND);
    free(g);
}

/* A callback's non-zero return stops the walk; bad arguments. */
static void test_changeset_get_stop_and_invalid(void **state)
{
    struct fx *fx = *state;
    struct cs_got *g = calloc(1, sizeof(*g));
    static char big[SB_CHANGE_SET_MAX + 1];

    assert_non_null(g);
    put_ok(fx->coll, "a", "1", "cs", NULL);
    put_ok(fx->coll, "b", "1", "cs", NULL);
    put_ok(fx->coll, "c", "1", "cs", NULL);

    g->stop_doc = 2;
    assert_int_equal(
        sb_changeset_get(fx->store, "cs", 2, on_get_info, on_get_doc, g),
        SB_OK);
    assert_int_equal(g->infos, 1);
    assert_int_equal(g->ndocs, 2);

    memset(g, 0, sizeof(*g));
    g->stop_info = 1;
    assert_int_equal(
        sb_changeset_get(fx->store, "cs", 2, on_get_info, on_get_doc, g),
        SB_OK);
    assert_int_equal(g->infos, 1);
    assert_int_equal(g->ndocs, 0);

    /* doc may be NULL. */
    memset(g, 0, sizeof(*g));
    assert_int_equal(sb_changeset_get(fx->store, "cs", 2, on_get_info, NULL, g),
                     SB_OK);
    assert_int_equal(g->infos, 1);
    assert_int_equal(g->info.docs, 3);
    assert_null(g->info.actor);

    memset(g, 0, sizeof(*g));
    memset(big, 'x', sizeof(big));
    assert_int_equal(
        sb_changeset_get(NULL, "cs", 2, on_get_info, on_get_doc, g),
        SB_INVALID);
    assert_int_equal(
        sb_changeset_get(fx->store, NULL, 2, on_get_info, on_get_doc, g),
        SB_INVALID);
    assert_int_equal(sb_changeset_get(fx->store, "cs", 2, NULL, on_get_doc, g),
                     SB_INVALID);
    assert_int_equal(sb_changeset_get(fx->store, big, sizeof(big), on_get_info,
                                      on_get_doc, g),
                     SB_INVALID);
    assert_int_equal(g->infos, 0);
    free(g);
}

/* The ids a list visits, in order, joined by spaces. */
struct list_got {
    char ids[256];
    int calls, stop_after;
    uint64_t last_rev; /* of the last one visited: the next page's cursor */
    sb_cs_info info[8];
};

static int on_list(void *ctx, const sb_cs_info *cs)
{
    struct list_got *l = ctx;
    size_t len = strlen(l->ids);

    snprintf(l->ids + len, sizeof(l->ids) - len, "%s%.*s", len ? " " : "",
             (int)cs->id_len, cs->id);
    l->last_rev = cs->last_rev;
    if (l->calls < 8)
        l->info[l->calls] = *cs;
    l->calls++;
    return l->stop_after && l->calls == l->stop_after;
}

static struct list_got list_of(sb_store *s, int64_t since, const char *actor,
                               uint64_t before, int page)
{
    sb_cs_filter f = {since, actor, actor ? strlen(actor) : 0, before};
    struct list_got l;

    memset(&l, 0, sizeof(l));
    l.stop_after = page;
    assert_int_equal(sb_changeset_list(s, &f, on_list, &l), SB_OK);
    return l;
}

static void assert_list(sb_store *s, int64_t since, const char *actor,
                        uint64_t before, const char *want)
{
    assert_string_equal(list_of(s, since, actor, before, 0).ids, want);
}

/* Most recently written first; each filter, combined; paging by `before`. */
static void test_changeset_list(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    struct list_got l;

    fake_now = T0 + 100;
    put_ok(c, "x1", "1", "a", "alice"); /* 1 */
    fake_now = T0 + 200;
    put_ok(c, "x2", "1", "b", "bob"); /* 2 */
    fake_now = T0 + 300;
    put_ok(c, "x3", "1", "c", "alice"); /* 3 */
    fake_now = T0 + 400;
    put_ok(c, "x4", "1", "d", NULL); /* 4 */
    fake_now = T0 + 500;
    put_ok(c, "x5", "1", "b", NULL); /* 5: b is the newest again */
    put_ok(c, "x6", "1", NULL, NULL);

    memset(&l, 0, sizeof(l));
    assert_int_equal(sb_changeset_list(fx->store, NULL, on_list, &l), SB_OK);
    assert_string_equal(l.ids, "b d c a");
    assert_int_equal(l.info[0].first_rev, 2);
    assert_int_equal(l.info[0].last_rev, 5);
    assert_int_equal(l.info[0].first_ns, T0 + 200);
    assert_int_equal(l.info[0].last_ns, T0 + 500);
    assert_int_equal(l.info[0].writes, 2);
    assert_int_equal(l.info[0].docs, 2);
    assert_int_equal(l.info[0].actor_len, 3);
    assert_memory_equal(l.info[0].actor, "bob", 3);
    assert_null(l.info[1].actor);

    assert_list(fx->store, 0, NULL, 0, "b d c a");
    assert_list(fx->store, T0 + 300, NULL, 0, "b d c");
    assert_list(fx->store, T0 + 301, NULL, 0, "b d");
    assert_list(fx->store, T0 + 500, NULL, 0, "b");
    assert_list(fx->store, T0 + 501, NULL, 0, "");
    assert_list(fx->store, 0, "alice", 0, "c a");
    assert_list(fx->store, 0, "bob", 0, "b");
    assert_list(fx->store, 0, "alic", 0, "");
    assert_list(fx->store, 0, "nobody", 0, "");
    assert_list(fx->store, 0, NULL, 5, "d c a");
    assert_list(fx->store, 0, NULL, 4, "c a");
    assert_list(fx->store, 0, NULL, 1, "");
    assert_list(fx->store, T0 + 200, "alice", 0, "c");
    assert_list(fx->store, 0, "alice", 3, "a");

    /* Pages of two: each cursor is the last_rev of the page's last one. */
    l = list_of(fx->store, 0, NULL, 0, 2);
    assert_string_equal(l.ids, "b d");
    assert_int_equal(l.last_rev, 4);
    l = list_of(fx->store, 0, NULL, l.last_rev, 2);
    assert_string_equal(l.ids, "c a");
    assert_int_equal(l.last_rev, 1);
    l = list_of(fx->store, 0, NULL, l.last_rev, 2);
    assert_int_equal(l.calls, 0);

    assert_int_equal(sb_changeset_list(NULL, NULL, on_list, &l), SB_INVALID);
    assert_int_equal(sb_changeset_list(fx->store, NULL, NULL, &l), SB_INVALID);
}

/* sb_options.max_change_sets: the least recently written change set is
 * dropped first; a dropped one is unknown, and its name starts afresh. */
static void test_changeset_eviction(void **state)
{
    struct fx *fx = *state;
    sb_coll *c;
    struct rb_got *rb;

    fx->opts.max_change_sets = 3;
    reopen(fx);
    c = fx->coll;
    put_ok(c, "x1", "1", "a", NULL); /* 1 */
    put_ok(c, "x2", "1", "b", NULL); /* 2 */
    put_ok(c, "x3", "1", "c", NULL); /* 3 */
    put_ok(c, "x4", "1", "a", NULL); /* 4: a is the newest */
    assert_list(fx->store, 0, NULL, 0, "a c b");
    put_ok(c, "x5", "1", "d", NULL); /* 5: b goes */
    assert_list(fx->store, 0, NULL, 0, "d a c");

    struct cs_got *g = cs_get(fx->store, "b");
    assert_int_equal(g->status, SB_NOT_FOUND);
    free(g);
    rb = rollback_cs(fx->store, "b", 0, "undo", NULL);
    assert_int_equal(rb->status, SB_NOT_FOUND);
    assert_int_equal(rb->nplans, 0);
    assert_int_equal(rb->out.docs, UNTOUCHED);
    free(rb);
    /* The versions keep their change set. */
    assert_head(c, "x2", 2, SB_OP_CREATE, 0, "b");

    put_ok(c, "x6", "1", "c", NULL); /* 6: c is the newest */
    put_ok(c, "x7", "1", "e", NULL); /* 7: a goes */
    assert_list(fx->store, 0, NULL, 0, "e c d");

    /* Written again, b is a new change set that knows only the new write,
     * and it pushes out the least recent one. */
    put_ok(c, "x2", "2", "b", NULL); /* 8 */
    assert_list(fx->store, 0, NULL, 0, "b e c");
    g = cs_get(fx->store, "b");
    assert_info(g, NULL, 8, 8, 1, 1);
    assert_cs_doc(g, 0, c, "x2", (uint64_t[]){8}, 1, 2, 1);
    free(g);
}

/* max_change_sets 0 keeps none: versions still carry their change set. */
static void test_changeset_keep_none(void **state)
{
    struct fx *fx = *state;
    struct rb_got *rb;

    fx->opts.max_change_sets = 0;
    reopen(fx);
    put_ok(fx->coll, "a", "1", "z", "alice");
    put_ok(fx->coll, "a", "2", "z", "alice");
    assert_head(fx->coll, "a", 2, SB_OP_UPDATE, 0, "z");
    assert_list(fx->store, 0, NULL, 0, "");
    struct cs_got *g = cs_get(fx->store, "z");
    assert_int_equal(g->status, SB_NOT_FOUND);
    free(g);
    rb = rollback_cs(fx->store, "z", 0, "undo", NULL);
    assert_int_equal(rb->status, SB_NOT_FOUND);
    free(rb);
    assert_live(fx->coll, "a", "2");
}

/* A put under change set `cs`, flagged automatic; returns its revision. */
static uint64_t put_auto(sb_coll *c, const char *id, const char *payload,
                         const char *cs)
{
    sb_write_opts o = wo(cs, NULL);
    sb_result res;

    o.change_set_automatic = 1;
    assert_int_equal(
        sb_put(c, id, strlen(id), payload, strlen(payload), &o, &res), SB_OK);
    return res.rev;
}

/* Automatic change sets have a cap of their own, inside max_change_sets:
 * however many there are, they never push out a named one. */
static void test_automatic_change_sets(void **state)
{
    struct fx *fx = *state; /* history 4 */
    struct rb_got *rb;
    char name[16];

    fx->opts.max_change_sets = 5;
    fx->opts.max_automatic_change_sets = 2;
    reopen(fx);
    sb_coll *c = fx->coll;
    put_ok(c, "n", "0", "named", NULL); /* 1 */
    for (int i = 1; i <= 9; i++) {      /* 2..10 */
        snprintf(name, sizeof(name), "auto%d", i);
        put_auto(c, "a", i % 2 ? "odd" : "even", name);
    }
    assert_list(fx->store, 0, NULL, 0, "auto9 auto8 named");

    /* The total cap still drops the least recent of all. */
    put_ok(c, "n", "1", "n2", NULL); /* 11 */
    put_ok(c, "n", "2", "n3", NULL); /* 12 */
    put_ok(c, "n", "3", "n4", NULL); /* 13: named goes */
    assert_list(fx->store, 0, NULL, 0, "n4 n3 n2 auto9 auto8");

    /* A write that names an automatic one without the flag makes it
     * ordinary: the automatic cap no longer drops it. */
    put_ok(c, "b", "x", "auto8", NULL); /* 14 */
    put_auto(c, "a", "p", "auto10");    /* 15 */
    put_auto(c, "a", "q", "auto11");    /* 16: auto9 goes, auto8 stays */
    assert_list(fx->store, 0, NULL, 0, "auto11 auto10 auto8 n4 n3");

    /* An automatic change set pins and is undone like any other: auto11
     * replaced auto10's write, which auto10 made over "odd". */
    rb = rollback_cs(fx->store, "auto10", SB_CS_FORCE, "undo", NULL);
    assert_int_equal(rb->status, SB_OK);
    free(rb);
    assert_live(c, "a", "odd");
}

/* max_automatic_change_sets 0: automatic change sets are not kept, the
 * named ones are, and the versions carry their change set either way. */
static void test_automatic_keep_none(void **state)
{
    struct fx *fx = *state;

    fx->opts.max_automatic_change_sets = 0;
    reopen(fx);
    put_auto(fx->coll, "a", "1", "auto1");
    put_ok(fx->coll, "b", "2", "named", NULL);
    assert_list(fx->store, 0, NULL, 0, "named");
    assert_head(fx->coll, "a", 1, SB_OP_CREATE, 0, "auto1");
    struct cs_got *g = cs_get(fx->store, "auto1");
    assert_int_equal(g->status, SB_NOT_FOUND);
    free(g);
}

/* Which change sets are automatic survives the log and a snapshot: a
 * store reopened with a smaller automatic cap keeps the named ones. */
static void test_automatic_persist(void **state)
{
    struct fx *fx = *state; /* history 4, on disk */

    put_ok(fx->coll, "n", "0", "named", NULL);
    put_auto(fx->coll, "a", "1", "auto1");
    put_auto(fx->coll, "a", "2", "auto2");
    put_auto(fx->coll, "a", "3", "auto3");
    put_ok(fx->coll, "m", "0", "auto1", NULL); /* auto1 is ordinary now */

    fx->opts.max_automatic_change_sets = 1;
    reopen(fx); /* from the log */
    assert_list(fx->store, 0, NULL, 0, "auto1 auto3 named");

    assert_int_equal(sb_store_compact(fx->store), SB_OK);
    fx->opts.max_automatic_change_sets = 0;
    reopen(fx); /* from the snapshot */
    assert_list(fx->store, 0, NULL, 0, "auto1 named");
    put_auto(fx->coll, "a", "4", "auto4");
    assert_list(fx->store, 0, NULL, 0, "auto1 named");
}

/* ------------------------------------------------------------------ */
/* Change-set rollback                                                */
/* ------------------------------------------------------------------ */

static const char *const x_ids[] = {"a", "b", "d", "e", "f", "z"};

/*
 * Change set X, by alice, over this earlier state:
 *   a "a0" (1), d "d0" (2), e "e0" (3) then deleted (4)
 * X: create b (5), put a twice (6, 7), delete d (8), create e (9),
 *    create f and delete it (10, 11), roll a back one step (12: "a1"),
 *    put b (13).  Then an unrelated write: z (14).
 */
static void write_x(struct fx *fx)
{
    sb_coll *c = fx->coll;

    put_ok(c, "a", "a0", NULL, NULL);
    put_ok(c, "d", "d0", NULL, NULL);
    put_ok(c, "e", "e0", NULL, NULL);
    delete_ok(c, "e", NULL, NULL);

    fake_now = T0 + MINUTE;
    create_ok(c, "b", "b1", "X", "alice");
    put_ok(c, "a", "a1", "X", "alice");
    put_ok(c, "a", "a2", "X", "alice");
    delete_ok(c, "d", "X", "alice");
    create_ok(c, "e", "e1", "X", "alice");
    create_ok(c, "f", "f1", "X", "alice");
    delete_ok(c, "f", "X", "alice");
    assert_int_equal(steps_ok(c, "a", 1, "X", "alice"), 12);
    put_ok(c, "b", "b2", "X", "alice");
    put_ok(c, "z", "z1", NULL, NULL);
    assert_int_equal(sb_store_revision(fx->store), 14);
}

/* The plans for X against the state write_x() leaves. */
static void assert_x_plans(const struct rb_got *g)
{
    static const char *const order[] = {"b", "a", "d", "e", "f"};

    assert_int_equal(g->nplans, 5);
    for (size_t i = 0; i < 5; i++) /* the order of X's first writes */
        assert_string_equal(g->plans[i].id, order[i]);
    assert_plan(g, "b", SB_CS_CLEAN, 13, 0, 0, NULL);
    assert_plan(g, "a", SB_CS_CLEAN, 12, 0, 1, "a0");
    assert_plan(g, "d", SB_CS_CLEAN, 8, 1, 2, "d0");
    assert_plan(g, "e", SB_CS_CLEAN, 9, 0, 4, NULL);
    assert_plan(g, "f", SB_CS_UNCHANGED, 11, 1, 0, NULL);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(g->plans[i].nlater, 0);
        assert_int_equal(g->plans[i].later_more, 0);
        assert_ptr_equal(g->plans[i].coll, g->plans[0].coll);
    }
}

/* Creates, updates, deletes and a rollback undone at once: every document
 * back to its state before X, as rollback versions of the new change set;
 * a document X created and deleted again is left alone. */
static void test_rollback_clean(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    struct rb_got *rb;

    write_x(fx);
    fake_now = T0 + 2 * MINUTE;
    rb = rollback_cs(fx->store, "X", 0, "U", "carol");
    assert_int_equal(rb->status, SB_OK);
    assert_x_plans(rb);
    assert_outcome(rb, 5, 4, 0, 0, 1, 4);
    assert_int_equal(rb->out.first_rev, 15);
    assert_int_equal(rb->out.last_rev, 18);
    assert_int_equal(rb->out.lsn, 0);
    assert_applied_revs(rb);
    assert_int_equal(plan_of(rb, "f")->rev, 0);
    assert_int_equal(sb_store_revision(fx->store), 18);

    /* The documents, each restored by a rollback version under U. */
    assert_absent(c, "b");
    assert_head(c, "b", plan_of(rb, "b")->rev, SB_OP_ROLLBACK, 0, "U");
    assert_live(c, "a", "a0");
    assert_head(c, "a", plan_of(rb, "a")->rev, SB_OP_ROLLBACK, 1, "U");
    assert_live(c, "d", "d0");
    assert_head(c, "d", plan_of(rb, "d")->rev, SB_OP_ROLLBACK, 2, "U");
    assert_absent(c, "e");
    assert_head(c, "e", plan_of(rb, "e")->rev, SB_OP_ROLLBACK, 4, "U");
    assert_head(c, "f", 11, SB_OP_DELETE, 0, "X");
    assert_live(c, "z", "z1");
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(
            read_version(c, rb->plans[i].id, rb->plans[i].rev).view.time_ns,
            T0 + 2 * MINUTE);

    /* U is a change set of its own; X is still there, unchanged. */
    struct cs_got *g = cs_get(fx->store, "U");
    assert_info(g, "carol", 15, 18, 4, 4);
    assert_int_equal(g->info.first_ns, T0 + 2 * MINUTE);
    for (size_t i = 0; i < 4; i++) {
        const struct plan_got *p = plan_of(rb, g->docs[i].id);
        assert_cs_doc(g, i, c, p->id, &p->rev, 1, p->from_rev, 1);
        if (i > 0) /* first writes in revision order */
            assert_true(g->docs[i].revs[0] > g->docs[i - 1].revs[0]);
    }
    free(g);
    g = cs_get(fx->store, "X");
    assert_info(g, "alice", 5, 13, 9, 5);
    free(g);
    free(rb);
}

/* Once U has undone X, X's documents have a later writer: rolling X back
 * again conflicts on each of them, naming U and its actor. */
static void test_rollback_twice_conflicts(void **state)
{
    struct fx *fx = *state;
    struct rb_got *rb;

    write_x(fx);
    struct rb_got *u = rollback_cs(fx->store, "X", 0, "U", "carol");
    assert_int_equal(u->status, SB_OK);

    char *before = render(fx->store, fx->coll, x_ids, 6);
    rb = rollback_cs(fx->store, "X", 0, "U2", NULL);
    assert_int_equal(rb->status, SB_CONFLICT);
    assert_outcome(rb, 5, 0, 4, 0, 1, 0);
    assert_plan(rb, "b", SB_CS_CONFLICT, plan_of(u, "b")->rev, 1, 0, NULL);
    assert_plan(rb, "a", SB_CS_CONFLICT, plan_of(u, "a")->rev, 0, 1, "a0");
    assert_plan(rb, "d", SB_CS_CONFLICT, plan_of(u, "d")->rev, 0, 2, "d0");
    assert_plan(rb, "e", SB_CS_CONFLICT, plan_of(u, "e")->rev, 1, 4, NULL);
    assert_plan(rb, "f", SB_CS_UNCHANGED, 11, 1, 0, NULL);
    for (size_t i = 0; i < 4; i++) {
        const struct plan_got *p = &rb->plans[i];
        assert_int_equal(p->nlater, 1);
        assert_int_equal(p->later_more, 0);
        assert_later(rb, p->id, 0, p->from_rev, SB_OP_ROLLBACK, "U", "carol");
        assert_int_equal(p->rev, 0);
    }
    assert_unchanged(before, fx->store, fx->coll, x_ids, 6);
    free(rb);
    free(u);
}

/* SB_CS_DRY_RUN reports the plan the real call follows, and changes
 * nothing. */
static void test_rollback_dry_run(void **state)
{
    struct fx *fx = *state;
    struct rb_got *dry, *real;

    write_x(fx);
    char *before = render(fx->store, fx->coll, x_ids, 6);
    dry = rollback_cs(fx->store, "X", SB_CS_DRY_RUN, "U", "carol");
    assert_int_equal(dry->status, SB_OK);
    assert_x_plans(dry);
    assert_outcome(dry, 5, 4, 0, 0, 1, 0);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(dry->plans[i].rev, 0);
    assert_unchanged(before, fx->store, fx->coll, x_ids, 6);
    struct cs_got *g = cs_get(fx->store, "U");
    assert_int_equal(g->status, SB_NOT_FOUND);
    free(g);

    real = rollback_cs(fx->store, "X", 0, "U", "carol");
    assert_int_equal(real->status, SB_OK);
    assert_same_plans(dry, real);
    assert_outcome(real, 5, 4, 0, 0, 1, 4);
    free(dry);
    free(real);
}

/*
 * Others wrote X's documents afterwards: without SB_CS_FORCE nothing
 * changes and each conflict lists the later versions, newest first, with
 * their change sets and actors; with it, they are overwritten.
 */
static void test_rollback_conflict_force(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    const char *const ids[] = {"a", "b", "c"};
    struct rb_got *rb, *dry;

    put_ok(c, "a", "a0", NULL, NULL);     /* 1 */
    put_ok(c, "b", "b0", NULL, NULL);     /* 2 */
    put_ok(c, "c", "c0", NULL, NULL);     /* 3 */
    put_ok(c, "a", "a1", "X", "alice");   /* 4 */
    put_ok(c, "b", "b1", "X", "alice");   /* 5 */
    put_ok(c, "c", "c1", "X", "alice");   /* 6 */
    put_ok(c, "a", "ay", "Y", "mallory"); /* 7 */
    delete_ok(c, "a", NULL, NULL);        /* 8 */
    put_ok(c, "b", "bz", "Z", NULL);      /* 9 */

    char *before = render(fx->store, c, ids, 3);
    rb = rollback_cs(fx->store, "X", 0, "U", NULL);
    assert_int_equal(rb->status, SB_CONFLICT);
    assert_outcome(rb, 3, 1, 2, 0, 0, 0);
    assert_plan(rb, "a", SB_CS_CONFLICT, 8, 1, 1, "a0");
    assert_int_equal(plan_of(rb, "a")->nlater, 2);
    assert_later(rb, "a", 0, 8, SB_OP_DELETE, NULL, NULL);
    assert_later(rb, "a", 1, 7, SB_OP_UPDATE, "Y", "mallory");
    assert_plan(rb, "b", SB_CS_CONFLICT, 9, 0, 2, "b0");
    assert_int_equal(plan_of(rb, "b")->nlater, 1);
    assert_later(rb, "b", 0, 9, SB_OP_UPDATE, "Z", NULL);
    assert_plan(rb, "c", SB_CS_CLEAN, 6, 0, 3, "c0");
    assert_int_equal(plan_of(rb, "c")->nlater, 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(rb->plans[i].rev, 0);
    assert_unchanged(before, fx->store, c, ids, 3);

    /* A dry run says the same, with and without force. */
    before = render(fx->store, c, ids, 3);
    dry = rollback_cs(fx->store, "X", SB_CS_DRY_RUN, "U", NULL);
    assert_int_equal(dry->status, SB_CONFLICT);
    assert_same_plans(rb, dry);
    free(dry);
    dry = rollback_cs(fx->store, "X", SB_CS_DRY_RUN | SB_CS_FORCE, "U", NULL);
    assert_int_equal(dry->status, SB_OK);
    assert_same_plans(rb, dry);
    assert_outcome(dry, 3, 1, 2, 0, 0, 0);
    assert_unchanged(before, fx->store, c, ids, 3);

    /* Forced: all three are restored. */
    free(rb);
    rb = rollback_cs(fx->store, "X", SB_CS_FORCE, "U", NULL);
    assert_int_equal(rb->status, SB_OK);
    assert_same_plans(dry, rb);
    assert_outcome(rb, 3, 1, 2, 0, 0, 3);
    assert_int_equal(rb->out.first_rev, 10);
    assert_int_equal(rb->out.last_rev, 12);
    assert_applied_revs(rb);
    assert_live(c, "a", "a0");
    assert_live(c, "b", "b0");
    assert_live(c, "c", "c0");
    assert_head(c, "a", plan_of(rb, "a")->rev, SB_OP_ROLLBACK, 1, "U");
    free(dry);
    free(rb);
}

/* A write by another change set between two of X's writes is a conflict
 * too; once the ring has dropped some later versions, later_more says so,
 * and the pinned earlier state is still what a forced rollback restores. */
static void test_rollback_conflict_interleaved(void **state)
{
    struct fx *fx = *state; /* history 3 */
    sb_coll *c = fx->coll;
    struct rb_got *rb;

    put_ok(c, "a", "a0", NULL, NULL); /* 1 */
    put_ok(c, "a", "x1", "X", NULL);  /* 2 */
    put_ok(c, "a", "y1", "Y", "yan"); /* 3 */
    put_ok(c, "a", "x2", "X", NULL);  /* 4 */
    put_ok(c, "m", "m0", NULL, NULL); /* 5 */
    put_ok(c, "m", "x", "X", NULL);   /* 6 */
    for (int i = 0; i < 4; i++)       /* 7..10: the ring keeps 8..10 */
        put_ok(c, "m", "y", "Y", "yan");

    rb = rollback_cs(fx->store, "X", 0, "U", NULL);
    assert_int_equal(rb->status, SB_CONFLICT);
    assert_outcome(rb, 2, 0, 2, 0, 0, 0);
    assert_plan(rb, "a", SB_CS_CONFLICT, 4, 0, 1, "a0");
    assert_int_equal(plan_of(rb, "a")->nlater, 1);
    assert_int_equal(plan_of(rb, "a")->later_more, 0);
    assert_later(rb, "a", 0, 3, SB_OP_UPDATE, "Y", "yan");
    assert_plan(rb, "m", SB_CS_CONFLICT, 10, 0, 5, "m0");
    assert_int_equal(plan_of(rb, "m")->nlater, 3);
    assert_int_equal(plan_of(rb, "m")->later_more, 1);
    for (size_t i = 0; i < 3; i++)
        assert_later(rb, "m", i, 10 - i, SB_OP_UPDATE, "Y", "yan");
    free(rb);

    rb = rollback_cs(fx->store, "X", SB_CS_FORCE, "U", NULL);
    assert_int_equal(rb->status, SB_OK);
    assert_outcome(rb, 2, 0, 2, 0, 0, 2);
    assert_live(c, "a", "a0");
    assert_live(c, "m", "m0");
    assert_head(c, "m", plan_of(rb, "m")->rev, SB_OP_ROLLBACK, 5, "U");
    free(rb);
}

/* later_more says that versions by others were dropped from the ring, not
 * that the change set's own were: here the ring (history 4) has dropped
 * only X's write on each document, and every later version is listed.  On
 * r the oldest later version is a rollback, which replaced X's write; a
 * rollback does not record what it replaced, so there later_more errs on
 * the side of saying more may exist (snapback.h). */
static void test_rollback_later_more_only_for_others(void **state)
{
    struct fx *fx = *state; /* history 4 */
    sb_coll *c = fx->coll;
    struct rb_got *rb;

    put_ok(c, "d", "d0", NULL, NULL); /* 1 */
    put_ok(c, "d", "x", "X", NULL);   /* 2 */
    for (int i = 0; i < 4; i++)       /* 3..6: the ring keeps these */
        put_ok(c, "d", "y", "Y", NULL);
    put_ok(c, "r", "r0", NULL, NULL);                    /* 7 */
    put_ok(c, "r", "x", "X", NULL);                      /* 8 */
    assert_int_equal(steps_ok(c, "r", 1, "Y", NULL), 9); /* over 8 */
    for (int i = 0; i < 3; i++)                          /* 10..12 */
        put_ok(c, "r", "y", "Y", NULL);

    rb = rollback_cs(fx->store, "X", SB_CS_DRY_RUN, "U", NULL);
    assert_int_equal(rb->status, SB_CONFLICT);
    assert_plan(rb, "d", SB_CS_CONFLICT, 6, 0, 1, "d0");
    assert_int_equal(plan_of(rb, "d")->nlater, 4);
    for (size_t i = 0; i < 4; i++)
        assert_later(rb, "d", i, 6 - i, SB_OP_UPDATE, "Y", NULL);
    assert_int_equal(plan_of(rb, "d")->later_more, 0);

    assert_plan(rb, "r", SB_CS_CONFLICT, 12, 0, 7, "r0");
    assert_int_equal(plan_of(rb, "r")->nlater, 4);
    for (size_t i = 0; i < 3; i++)
        assert_later(rb, "r", i, 12 - i, SB_OP_UPDATE, "Y", NULL);
    assert_later(rb, "r", 3, 9, SB_OP_ROLLBACK, "Y", NULL);
    assert_int_equal(plan_of(rb, "r")->later_more, 1);
    free(rb);
}

/* The plan a forced rollback reports is the one its dry run reported,
 * also when the restoring version pushes a later one out of a full ring. */
static void test_rollback_forced_plan_is_dry_run_plan(void **state)
{
    struct fx *fx = *state; /* history 3 */
    sb_coll *c = fx->coll;
    struct rb_got *dry, *real;

    put_ok(c, "d", "d0", NULL, NULL); /* 1 */
    put_ok(c, "d", "x", "X", NULL);   /* 2 */
    put_ok(c, "d", "y1", "Y", NULL);  /* 3 */
    put_ok(c, "d", "y2", "Y", NULL);  /* 4: the ring holds 2..4 */

    dry = rollback_cs(fx->store, "X", SB_CS_DRY_RUN | SB_CS_FORCE, "U", NULL);
    assert_int_equal(dry->status, SB_OK);
    assert_int_equal(plan_of(dry, "d")->nlater, 2);
    assert_int_equal(plan_of(dry, "d")->later_more, 0);
    real = rollback_cs(fx->store, "X", SB_CS_FORCE, "U", NULL);
    assert_int_equal(real->status, SB_OK);
    assert_live(c, "d", "d0");
    assert_same_plans(dry, real);
    free(dry);
    free(real);
}

/* Rolling back the undo restores the state X left; rolling that back
 * restores the state before X. */
static void test_rollback_undo_of_undo(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    struct rb_got *rb;

    write_x(fx);
    struct rb_got *u1 = rollback_cs(fx->store, "X", 0, "U1", "carol");
    assert_int_equal(u1->status, SB_OK);

    rb = rollback_cs(fx->store, "U1", 0, "U2", "dave");
    assert_int_equal(rb->status, SB_OK);
    assert_outcome(rb, 4, 4, 0, 0, 0, 4);
    assert_plan(rb, "b", SB_CS_CLEAN, plan_of(u1, "b")->rev, 1, 13, "b2");
    assert_plan(rb, "a", SB_CS_CLEAN, plan_of(u1, "a")->rev, 0, 12, "a1");
    assert_plan(rb, "d", SB_CS_CLEAN, plan_of(u1, "d")->rev, 0, 8, NULL);
    assert_plan(rb, "e", SB_CS_CLEAN, plan_of(u1, "e")->rev, 1, 9, "e1");
    assert_live(c, "b", "b2");
    assert_live(c, "a", "a1");
    assert_absent(c, "d");
    assert_live(c, "e", "e1");
    assert_head(c, "a", plan_of(rb, "a")->rev, SB_OP_ROLLBACK, 12, "U2");
    assert_head(c, "f", 11, SB_OP_DELETE, 0, "X");
    free(rb);

    rb = rollback_cs(fx->store, "U2", 0, "U3", NULL);
    assert_int_equal(rb->status, SB_OK);
    assert_outcome(rb, 4, 4, 0, 0, 0, 4);
    free(rb);
    assert_absent(c, "b");
    assert_live(c, "a", "a0");
    assert_live(c, "d", "d0");
    assert_absent(c, "e");
    free(u1);
}

/* Bad arguments and unknown change sets: nothing is called, filled or
 * changed. */
static void test_rollback_invalid(void **state)
{
    struct fx *fx = *state;
    static char big[SB_CHANGE_SET_MAX + 1];
    struct rb_got g;
    sb_write_opts o;

    memset(big, 'x', sizeof(big));
    write_x(fx);
    char *before = render(fx->store, fx->coll, x_ids, 6);

    struct {
        const char *what;
        sb_store *store;
        const char *id;
        const void *cs;
        size_t cs_len;
        const void *actor;
        size_t actor_len;
        int null_opts;
        sb_status want;
    } cases[] = {
        {"NULL store", NULL, "X", "U", 1, NULL, 0, 0, SB_INVALID},
        {"NULL id", fx->store, NULL, "U", 1, NULL, 0, 0, SB_INVALID},
        {"NULL options", fx->store, "X", NULL, 0, NULL, 0, 1, SB_INVALID},
        {"no change set", fx->store, "X", NULL, 0, "al", 2, 0, SB_INVALID},
        {"empty change set", fx->store, "X", "", 0, NULL, 0, 0, SB_INVALID},
        {"itself", fx->store, "X", "X", 1, NULL, 0, 0, SB_INVALID},
        {"oversized change set", fx->store, "X", big, sizeof(big), NULL, 0, 0,
         SB_INVALID},
        {"oversized actor", fx->store, "X", "U", 1, big, sizeof(big), 0,
         SB_INVALID},
        {"oversized id", fx->store, big, "U", 1, NULL, 0, 0, SB_INVALID},
        {"unknown", fx->store, "Q", "U", 1, NULL, 0, 0, SB_NOT_FOUND},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case: %s\n", cases[i].what);
        memset(&o, 0, sizeof(o));
        o.change_set = cases[i].cs;
        o.change_set_len = cases[i].cs_len;
        o.actor = cases[i].actor;
        o.actor_len = cases[i].actor_len;
        memset(&g, 0, sizeof(g));
        memset(&g.out, 0xab, sizeof(g.out));
        size_t len = cases[i].id == big ? sizeof(big)
                     : cases[i].id      ? strlen(cases[i].id)
                                        : 1;
        g.status = sb_changeset_rollback(cases[i].store, cases[i].id, len, 0,
                                         cases[i].null_opts ? NULL : &o,
                                         on_plan, &g, &g.out);
        assert_int_equal(g.status, cases[i].want);
        assert_int_equal(g.nplans, 0);
        assert_int_equal(g.out.docs, UNTOUCHED);
        assert_int_equal(g.out.restored, UNTOUCHED);
    }
    assert_unchanged(before, fx->store, fx->coll, x_ids, 6);
}

/* ------------------------------------------------------------------ */
/* Pinning and retention                                              */
/* ------------------------------------------------------------------ */

/* History 4; X writes d ten times and creates e and writes it ten times:
 * the ring has long dropped d's state before X, yet X still rolls back to
 * it.  Pinning keeps that state for X alone: the ring is not extended, so
 * as-of reads and single-document rollbacks still cannot reach it. */
static void test_pin_beyond_ring(void **state)
{
    struct fx *fx = *state; /* history 4 */
    sb_coll *c = fx->coll;
    char payload[8];
    sb_result res;
    struct rb_got *rb;

    put_ok(c, "d", "v0", NULL, NULL); /* 1 */
    for (int i = 1; i <= 10; i++) {   /* 2..21 */
        snprintf(payload, sizeof(payload), "x%d", i);
        put_ok(c, "d", payload, "X", NULL);
        if (i == 1)
            create_ok(c, "e", payload, "X", NULL);
        else
            put_ok(c, "e", payload, "X", NULL);
    }
    assert_int_equal(history_count(c, "d"), 4);
    assert_int_equal(as_of_status(c, "d", 1), SB_HISTORY_EXHAUSTED);
    assert_int_equal(sb_rollback_steps(c, "d", 1, 4, NULL, &res),
                     SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 3);

    struct cs_got *g = cs_get(fx->store, "X");
    assert_info(g, NULL, 2, 21, 20, 2);
    assert_int_equal(g->info.pinned, 1);
    assert_int_equal(g->docs[0].nrevs, 10);
    assert_int_equal(g->docs[0].before_rev, 1);
    assert_int_equal(g->docs[0].restorable, 1);
    assert_int_equal(g->docs[1].before_rev, 0);
    assert_int_equal(g->docs[1].restorable, 1);
    free(g);

    rb = rollback_cs(fx->store, "X", 0, "U", NULL);
    assert_int_equal(rb->status, SB_OK);
    assert_outcome(rb, 2, 2, 0, 0, 0, 2);
    assert_plan(rb, "d", SB_CS_CLEAN, 20, 0, 1, "v0");
    assert_plan(rb, "e", SB_CS_CLEAN, 21, 0, 0, NULL);
    assert_live(c, "d", "v0");
    assert_head(c, "d", plan_of(rb, "d")->rev, SB_OP_ROLLBACK, 1, "U");
    assert_absent(c, "e");
    free(rb);

    /* Still out of reach of the ring. */
    assert_int_equal(as_of_status(c, "d", 1), SB_HISTORY_EXHAUSTED);
    assert_int_equal(history_count(c, "d"), 4);
}

/*
 * Retention by age (10 minutes, injected clock), history 4.  While X is
 * younger than the retention its pins hold d's earlier state, though the
 * ring dropped it; once X's last write is older, X lets its pins go but
 * keeps its record: d is lost, e (created by X) can still go back to
 * absence.  Without force the rollback reports SB_HISTORY_EXHAUSTED and
 * changes nothing; with it, d is skipped.
 */
static void test_pin_released_by_age(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    const char *const ids[] = {"d", "e"};
    struct rb_got *rb;

    fx->opts.retain_ns = 10 * MINUTE;
    reopen(fx);
    c = fx->coll;
    put_ok(c, "d", "v0", NULL, NULL); /* 1, t = 1000 min */
    fake_now = T0 + 1 * MINUTE;
    create_ok(c, "e", "e1", "X", "alice"); /* 2 */
    for (int i = 0; i < 5; i++)            /* 3..7: the ring drops 1 */
        put_ok(c, "d", "x", "X", "alice");

    /* t = 1009: X is 8 minutes old. */
    fake_now = T0 + 9 * MINUTE;
    assert_int_equal(as_of_status(c, "d", 1), SB_HISTORY_EXHAUSTED);
    rb = rollback_cs(fx->store, "X", SB_CS_DRY_RUN, "U", NULL);
    assert_int_equal(rb->status, SB_OK);
    assert_plan(rb, "e", SB_CS_CLEAN, 2, 0, 0, NULL);
    assert_plan(rb, "d", SB_CS_CLEAN, 7, 0, 1, "v0");
    free(rb);

    /* t = 1012: X's last write is 11 minutes old. */
    fake_now = T0 + 12 * MINUTE;
    struct cs_got *g = cs_get(fx->store, "X");
    assert_info(g, "alice", 2, 7, 6, 2);
    assert_int_equal(g->info.pinned, 0);
    assert_cs_doc(g, 0, c, "e", (uint64_t[]){2}, 1, 0, 1);
    assert_cs_doc(g, 1, c, "d", (uint64_t[]){3, 4, 5, 6, 7}, 5, 1, 0);
    free(g);
    struct list_got l = list_of(fx->store, 0, NULL, 0, 0);
    assert_string_equal(l.ids, "X");
    assert_int_equal(l.info[0].pinned, 0);

    char *before = render(fx->store, c, ids, 2);
    rb = rollback_cs(fx->store, "X", 0, "U", NULL);
    assert_int_equal(rb->status, SB_HISTORY_EXHAUSTED);
    assert_outcome(rb, 2, 1, 0, 1, 0, 0);
    assert_int_equal(plan_of(rb, "d")->state, SB_CS_LOST);
    assert_int_equal(plan_of(rb, "d")->from_rev, 7);
    assert_int_equal(plan_of(rb, "d")->to_rev, 1);
    assert_int_equal(plan_of(rb, "e")->state, SB_CS_CLEAN);
    free(rb);
    rb = rollback_cs(fx->store, "X", SB_CS_DRY_RUN, "U", NULL);
    assert_int_equal(rb->status, SB_HISTORY_EXHAUSTED);
    free(rb);
    assert_unchanged(before, fx->store, c, ids, 2);

    rb = rollback_cs(fx->store, "X", SB_CS_FORCE, "U", NULL);
    assert_int_equal(rb->status, SB_OK);
    assert_outcome(rb, 2, 1, 0, 1, 0, 1);
    assert_int_equal(plan_of(rb, "d")->rev, 0);
    assert_int_equal(plan_of(rb, "e")->rev, 8);
    assert_live(c, "d", "x");
    assert_head(c, "d", 7, SB_OP_UPDATE, 0, "X");
    assert_absent(c, "e");
    free(rb);
}

/* ------------------------------------------------------------------ */
/* Persistence                                                        */
/* ------------------------------------------------------------------ */

static const char *const p_ids[] = {"a", "b", "c", "d", "g", "p"};

/* What a dry-run rollback of every change set would do, in text. */
static int on_text_plan(void *ctx, const sb_cs_plan *p)
{
    struct text *t = ctx;

    text_add(t, "  plan %.*s state=%d from=%" PRIu64 "/%d to=%" PRIu64 "/%d p=",
             (int)p->id_len, p->id, (int)p->state, p->from_rev, p->from_absent,
             p->to_rev, p->to_absent);
    text_bytes(t, p->to_payload, p->to_len);
    text_add(t, " later=%zu%s\n", p->nlater, p->later_more ? "+" : "");
    return 0;
}

/* render(), then each change set's dry-run rollback plan. */
static char *render_all(struct fx *fx)
{
    char *base = render(fx->store, fx->coll, p_ids, 6);
    struct text t = {NULL, 0, 0};
    struct cs_names l = {NULL, 0, 0};
    sb_write_opts o = wo("probe", NULL);

    text_add(&t, "%s", base);
    free(base);
    assert_int_equal(sb_changeset_list(fx->store, NULL, on_collect_name, &l),
                     SB_OK);
    for (size_t i = 0; i < l.n; i++) {
        sb_cs_outcome out;
        sb_status st = sb_changeset_rollback(
            fx->store, l.names[i], strlen(l.names[i]),
            SB_CS_DRY_RUN | SB_CS_FORCE, &o, on_text_plan, &t, &out);
        text_add(&t, "dry run %s: st=%d clean=%zu conflicts=%zu lost=%zu\n",
                 l.names[i], (int)st, out.clean, out.conflicts, out.lost);
    }
    free(l.names);
    return t.buf;
}

static void close_reopen(struct fx *fx)
{
    uint64_t rev = sb_store_revision(fx->store);

    reopen(fx);
    assert_int_equal(sb_store_revision(fx->store), rev); /* closed cleanly */
}

/* The whole of it, before and after a reopen, a compaction, and both. */
static void assert_survives(struct fx *fx)
{
    char *want = render_all(fx), *got;

    close_reopen(fx);
    got = render_all(fx);
    assert_same(want, got);
    free(got);

    assert_int_equal(sb_store_compact(fx->store), SB_OK);
    got = render_all(fx);
    assert_same(want, got);
    free(got);

    close_reopen(fx);
    got = render_all(fx);
    assert_same(want, got);
    free(got);
    free(want);
}

/*
 * With a data directory (history 4): change sets with their actors and
 * times, a batch, and a change set whose pinned state the ring dropped
 * long ago survive a reopen, and a compaction followed by a reopen; so do
 * the change sets that undo them, and undoing those afterwards.
 */
static void test_persistence(void **state)
{
    struct fx *fx = *state; /* history 4, data directory */
    sb_coll *c = fx->coll;
    sb_write_opts o = wo("B", "bob");
    char payload[8];
    struct rb_got *rb;

    put_ok(c, "a", "a0", NULL, NULL); /* 1 */
    put_ok(c, "p", "p0", NULL, NULL); /* 2 */
    put_ok(c, "g", "g0", NULL, NULL); /* 3 */
    delete_ok(c, "g", NULL, NULL);    /* 4 */
    fake_now = T0 + MINUTE;
    put_ok(c, "a", "a1", "X", "alice");    /* 5 */
    create_ok(c, "b", "b1", "X", "alice"); /* 6 */
    create_ok(c, "g", "g1", "X", NULL);    /* 7 */
    steps_ok(c, "a", 1, "X", NULL);        /* 8 */

    fake_now = T0 + 2 * MINUTE;
    sb_batch_op ops[] = {
        bop(SB_BATCH_CREATE, c, "c", "c1"), /* 9 */
        bop(SB_BATCH_PUT, c, "c", "c2"),    /* 10 */
        bop(SB_BATCH_PUT, c, "d", "d1"),    /* 11 */
    };
    assert_int_equal(sb_batch(fx->store, ops, 3, &o, NULL), SB_OK);
    assert_int_equal(ops[2].result.rev, 11);
    assert_true(ops[0].result.lsn > 0);
    assert_int_equal(ops[1].result.lsn, ops[0].result.lsn);
    assert_int_equal(ops[2].result.lsn, ops[0].result.lsn);

    fake_now = T0 + 3 * MINUTE;
    for (int i = 1; i <= 10; i++) { /* 12..21: the ring drops p0 */
        snprintf(payload, sizeof(payload), "p%d", i);
        put_ok(c, "p", payload, "P", NULL);
    }
    assert_int_equal(as_of_status(c, "p", 2), SB_HISTORY_EXHAUSTED);
    assert_survives(fx);

    /* The pinned state is still there to restore. */
    c = fx->coll;
    fake_now = T0 + 4 * MINUTE;
    rb = rollback_cs(fx->store, "P", 0, "UP", "carol");
    assert_int_equal(rb->status, SB_OK);
    assert_plan(rb, "p", SB_CS_CLEAN, 21, 0, 2, "p0");
    assert_true(rb->out.lsn > 0);
    assert_true(rb->out.lsn <= sb_store_synced(fx->store)); /* durable */
    free(rb);
    assert_live(c, "p", "p0");
    rb = rollback_cs(fx->store, "X", 0, "UX", NULL);
    assert_int_equal(rb->status, SB_OK);
    assert_outcome(rb, 3, 3, 0, 0, 0, 3);
    free(rb);
    assert_live(c, "a", "a0");
    assert_absent(c, "b");
    assert_absent(c, "g");
    assert_survives(fx);

    /* Undo the undo, after all that. */
    c = fx->coll;
    rb = rollback_cs(fx->store, "UP", 0, "RP", NULL);
    assert_int_equal(rb->status, SB_OK);
    free(rb);
    assert_live(c, "p", "p10");
    assert_survives(fx);
    assert_live(fx->coll, "p", "p10");
}

/* ------------------------------------------------------------------ */
/* Snapshot scans                                                     */
/* ------------------------------------------------------------------ */

/* What a scan visited: "id=payload@rev" per document, in scan order. */
struct scan_got {
    char seen[64][32];
    int n, page; /* stop after `page` documents; 0: never */
    char last[SB_ID_MAX + 1];
};

static int on_scan(void *ctx, const sb_view *doc)
{
    struct scan_got *s = ctx;

    assert_true(s->n < 64);
    assert_int_equal(doc->absent, 0);
    snprintf(s->seen[s->n++], sizeof(s->seen[0]), "%.*s=%.*s@%" PRIu64,
             (int)doc->id_len, doc->id, (int)doc->len,
             (const char *)doc->payload, doc->rev);
    snprintf(s->last, sizeof(s->last), "%.*s", (int)doc->id_len, doc->id);
    return s->page && s->n % s->page == 0;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(a, b);
}

static sb_status scan_at(sb_coll *c, uint64_t rev, const char *after,
                         struct scan_got *s)
{
    sb_status st;

    read_begin();
    st = sb_scan_at(c, rev, after, after ? strlen(after) : 0, on_scan, s);
    read_end();
    return st;
}

/* The documents a scan at `rev` visits, sorted, joined by spaces. */
static void assert_scan_at(sb_coll *c, uint64_t rev, const char *want)
{
    struct scan_got s;
    char joined[512] = "";

    memset(&s, 0, sizeof(s));
    assert_int_equal(scan_at(c, rev, NULL, &s), SB_OK);
    qsort(s.seen, (size_t)s.n, sizeof(s.seen[0]), by_string);
    for (int i = 0; i < s.n; i++)
        snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined),
                 "%s%s", i ? " " : "", s.seen[i]);
    assert_string_equal(joined, want);
}

/* Each revision shows the documents that existed then, in their state
 * then; at the current revision, the order is sb_scan()'s. */
static void test_scan_at_old_revisions(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    struct scan_got now, at;

    put_ok(c, "a", "a1", NULL, NULL);    /* 1 */
    put_ok(c, "b", "b1", NULL, NULL);    /* 2 */
    put_ok(c, "c", "c1", NULL, NULL);    /* 3 */
    delete_ok(c, "c", NULL, NULL);       /* 4 */
    put_ok(c, "a", "a2", NULL, NULL);    /* 5 */
    create_ok(c, "d", "d1", "cs", NULL); /* 6 */
    delete_ok(c, "b", NULL, NULL);       /* 7 */
    steps_ok(c, "c", 1, NULL, NULL);     /* 8: c1 again */

    assert_scan_at(c, 1, "a=a1@1");
    assert_scan_at(c, 2, "a=a1@1 b=b1@2");
    assert_scan_at(c, 3, "a=a1@1 b=b1@2 c=c1@3");
    assert_scan_at(c, 4, "a=a1@1 b=b1@2");
    assert_scan_at(c, 5, "a=a2@5 b=b1@2");
    assert_scan_at(c, 6, "a=a2@5 b=b1@2 d=d1@6");
    assert_scan_at(c, 7, "a=a2@5 d=d1@6");
    assert_scan_at(c, 8, "a=a2@5 c=c1@8 d=d1@6");

    memset(&now, 0, sizeof(now));
    memset(&at, 0, sizeof(at));
    read_begin();
    assert_int_equal(sb_scan(c, NULL, 0, on_scan, &now), SB_OK);
    read_end();
    assert_int_equal(scan_at(c, sb_store_revision(fx->store), NULL, &at),
                     SB_OK);
    assert_int_equal(at.n, now.n);
    for (int i = 0; i < now.n; i++)
        assert_string_equal(at.seen[i], now.seen[i]);
}

/* Pages resumed with `after` at one revision see that revision's state
 * whole, each document once, though every document changes between the
 * pages, some are deleted and others created. */
static void test_scan_at_pages(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = fx->coll;
    struct scan_got whole, paged;
    char id[16], payload[16], ids[20][8];
    uint64_t rev;
    int pages = 0;

    for (int i = 0; i < 20; i++) {
        snprintf(id, sizeof(id), "k%02d", i);
        put_ok(c, id, "old", NULL, NULL);
    }
    rev = sb_store_revision(fx->store);
    memset(&whole, 0, sizeof(whole));
    assert_int_equal(scan_at(c, rev, NULL, &whole), SB_OK);
    assert_int_equal(whole.n, 20);

    memset(&paged, 0, sizeof(paged));
    paged.page = 3;
    do {
        int before = paged.n;
        assert_int_equal(scan_at(c, rev, pages ? paged.last : NULL, &paged),
                         SB_OK);
        if (paged.n == before)
            break;
        pages++;
        /* Between pages: rewrite everything, delete one, create one. */
        sb_batch_op ops[21];
        snprintf(payload, sizeof(payload), "new%d", pages);
        for (int i = 0; i < 20; i++) {
            snprintf(ids[i], sizeof(ids[i]), "k%02d", i);
            ops[i] = bop(SB_BATCH_PUT, c, ids[i], payload);
        }
        snprintf(id, sizeof(id), "n%02d", pages);
        ops[20] = bop(SB_BATCH_PUT, c, id, payload);
        assert_int_equal(sb_batch(fx->store, ops, 21, NULL, NULL), SB_OK);
        snprintf(id, sizeof(id), "k%02d", pages);
        delete_ok(c, id, NULL, NULL);
    } while (paged.n % paged.page == 0);
    assert_int_equal(pages, 7);
    assert_int_equal(paged.n, 20);
    for (int i = 0; i < 20; i++)
        assert_string_equal(paged.seen[i], whole.seen[i]);
}

/* Errors: no revision 0, none in the future, no state the ring dropped,
 * no cursor that was never written. */
static void test_scan_at_errors(void **state)
{
    struct fx *fx = *state; /* history 3 */
    sb_coll *c = fx->coll;
    struct scan_got s;

    put_ok(c, "x", "v1", NULL, NULL); /* 1 */
    put_ok(c, "x", "v2", NULL, NULL); /* 2 */
    put_ok(c, "x", "v3", NULL, NULL); /* 3 */
    put_ok(c, "x", "v4", NULL, NULL); /* 4: the ring keeps 2..4 */

    memset(&s, 0, sizeof(s));
    assert_int_equal(scan_at(c, 0, NULL, &s), SB_INVALID);
    assert_int_equal(scan_at(c, 5, NULL, &s), SB_FUTURE);
    assert_int_equal(scan_at(c, 1, NULL, &s), SB_HISTORY_EXHAUSTED);
    assert_int_equal(scan_at(c, 4, "never", &s), SB_NOT_FOUND);
    assert_int_equal(s.n, 0);
    read_begin();
    assert_int_equal(sb_scan_at(NULL, 4, NULL, 0, on_scan, &s), SB_INVALID);
    assert_int_equal(sb_scan_at(c, 4, NULL, 0, NULL, &s), SB_INVALID);
    read_end();
    assert_scan_at(c, 2, "x=v2@2");
    assert_scan_at(c, 4, "x=v4@4");
}

/* ------------------------------------------------------------------ */
/* Change-set rollback against a naive model                          */
/* ------------------------------------------------------------------ */

/*
 * The model keeps every version of every document ever written, oldest
 * first, each with its `follows` link and its change set, and every
 * change set's first write per document.  From that it derives the rest
 * the slow, obvious way: the ring is the last M_HISTORY versions; the
 * state a change set C restores on document d is the version before C's
 * first write to d (none: d did not exist); d conflicts when a version
 * after that first write is not C's; the later versions listed are those
 * in the ring, newest first.
 *
 * Each round writes a little outside any change set, then runs a change
 * set X of random creates, puts, deletes and single-document rollbacks
 * (failing ones included), sometimes lets another writer touch X's
 * documents, and then rolls back X, an older change set, or the last undo,
 * each time comparing the index, the plans, the statuses and the whole
 * store with the model.
 */
#define M_IDS     12
#define M_HISTORY 4
#define M_ROUNDS  150
#define M_PAY     16

#define M_ORIGIN  0
#define M_NOTHING UINT64_MAX

static const char *const m_actors[] = {"alice", "bob", "mallory", "carol"};

struct mv {
    uint64_t rev;
    sb_op op;
    int absent;
    uint64_t restored;
    uint64_t follows; /* a revision, M_ORIGIN or M_NOTHING */
    char payload[M_PAY];
    int cs; /* index into model.cs; -1: none */
};

struct mdoc {
    struct mv *v;
    size_t n, cap;
};

struct mcs {
    char name[16];
    int actor; /* index into m_actors; -1: none */
    uint64_t first_rev, last_rev, writes;
    int order[M_IDS], ndocs; /* documents in first-write order */
    long first_v[M_IDS];     /* index of the first write; -1: none */
};

struct model {
    uint64_t revision;
    struct mdoc docs[M_IDS];
    struct mcs *cs;
    size_t ncs, cap;
};

struct mrun {
    struct fx *fx;
    struct model m;
    char ids[M_IDS][8];
    uint64_t seed, rng;
    int round;
    long writes_ok, writes_failed;
    /* Documents rolled back clean, over a conflict, left unchanged; and
     * restored to a state the ring had dropped (only the pin held it). */
    long rollbacks[4];
    long conflicts_seen, forced;
};

static char m_where[160];

static uint64_t m_rnd(struct mrun *r)
{
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 0x2545F4914F6CDD1DULL;
}

static uint64_t m_below(struct mrun *r, uint64_t n)
{
    return (m_rnd(r) >> 11) % n;
}

static void m_check(uint64_t got, uint64_t want, const char *what)
{
    if (got != want)
        fail_msg("%s: %s is %" PRIu64 ", the model says %" PRIu64, m_where,
                 what, got, want);
}

static struct mv *m_head(struct mdoc *d)
{
    return d->n ? &d->v[d->n - 1] : NULL;
}

static int m_live(struct mdoc *d)
{
    return d->n && !m_head(d)->absent;
}

static size_t m_first_kept(const struct mdoc *d)
{
    return d->n > M_HISTORY ? d->n - M_HISTORY : 0;
}

static struct mv *m_kept(struct mdoc *d, uint64_t rev)
{
    for (size_t i = m_first_kept(d); i < d->n; i++)
        if (d->v[i].rev == rev)
            return &d->v[i];
    return NULL;
}

/* Walks up to `steps` undo links from the head within the ring: 1 and
 * *to (NULL: the absence before the first version) when all succeed. */
static int m_walk(struct mdoc *d, unsigned steps, struct mv **to)
{
    uint64_t link = m_head(d)->follows;

    for (unsigned i = 0; i < steps; i++) {
        if (link == M_NOTHING)
            return 0;
        if (link == M_ORIGIN) {
            *to = NULL;
        } else if ((*to = m_kept(d, link)) == NULL) {
            return 0;
        }
        link = *to ? (*to)->follows : M_NOTHING;
    }
    return 1;
}

/* The version current at `rev` within the ring (NULL: absence before the
 * first version); 0 when the ring no longer answers. */
static int m_as_of(struct mdoc *d, uint64_t rev, struct mv **to)
{
    for (size_t i = d->n; i-- > m_first_kept(d);) {
        if (d->v[i].rev <= rev) {
            *to = &d->v[i];
            return 1;
        }
    }
    *to = NULL;
    return m_first_kept(d) == 0;
}

static int m_cs_new(struct model *m, const char *name, int actor)
{
    struct mcs *c;

    if (m->ncs == m->cap) {
        m->cap = m->cap ? 2 * m->cap : 64;
        m->cs = realloc(m->cs, m->cap * sizeof(*m->cs));
        assert_non_null(m->cs);
    }
    c = &m->cs[m->ncs];
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->actor = actor;
    for (int i = 0; i < M_IDS; i++)
        c->first_v[i] = -1;
    return (int)m->ncs++;
}

/* Appends a version to document `doc`, indexed under change set `cs`. */
static struct mv *m_append(struct model *m, int doc, uint64_t rev, int cs)
{
    struct mdoc *d = &m->docs[doc];
    struct mv *v;

    if (d->n == d->cap) {
        d->cap = d->cap ? 2 * d->cap : 16;
        d->v = realloc(d->v, d->cap * sizeof(*d->v));
        assert_non_null(d->v);
    }
    v = &d->v[d->n++];
    memset(v, 0, sizeof(*v));
    v->rev = rev;
    v->cs = cs;
    if (cs >= 0) {
        struct mcs *c = &m->cs[cs];
        if (c->first_v[doc] < 0) {
            c->first_v[doc] = (long)d->n - 1;
            c->order[c->ndocs++] = doc;
        }
        if (c->writes++ == 0)
            c->first_rev = rev;
        c->last_rev = rev;
    }
    return v;
}

/* The version a rollback to `target` (NULL: absence) appends. */
static void m_restore(struct mv *v, const struct mv *target)
{
    v->op = SB_OP_ROLLBACK;
    v->restored = target ? target->rev : 0;
    v->follows = target ? target->follows : M_NOTHING;
    v->absent = target ? target->absent : 1;
    if (target && !target->absent)
        memcpy(v->payload, target->payload, M_PAY);
}

enum mkind { MK_CREATE, MK_PUT, MK_DELETE, MK_STEPS, MK_TO };

struct mop {
    enum mkind kind;
    int doc, cs;
    char payload[M_PAY];
    unsigned steps;
    uint64_t rev;
};

/* The model's outcome of a single-document write; on SB_OK the version is
 * appended and *res filled. */
static sb_status m_write(struct model *m, const struct mop *op, sb_result *res)
{
    struct mdoc *d = &m->docs[op->doc];
    struct mv copy, *target = NULL, *v;
    int live = m_live(d);

    if (op->kind == MK_CREATE && live)
        return SB_EXISTS;
    if (op->kind == MK_DELETE && !live)
        return SB_NOT_FOUND;
    if (op->kind >= MK_STEPS) {
        if (d->n == 0)
            return SB_NOT_FOUND;
        if (op->kind == MK_STEPS ? !m_walk(d, op->steps, &target)
                                 : !m_as_of(d, op->rev, &target))
            return SB_HISTORY_EXHAUSTED;
        if (target)
            copy = *target; /* m_append may move the array */
    }

    uint64_t follows = d->n ? m_head(d)->rev : M_ORIGIN;
    v = m_append(m, op->doc, ++m->revision, op->cs);
    if (op->kind >= MK_STEPS) {
        m_restore(v, target ? &copy : NULL);
    } else if (op->kind == MK_DELETE) {
        v->op = SB_OP_DELETE;
        v->absent = 1;
        v->follows = follows;
    } else {
        v->op = live ? SB_OP_UPDATE : SB_OP_CREATE;
        v->follows = follows;
        memcpy(v->payload, op->payload, M_PAY);
    }
    memset(res, 0, sizeof(*res));
    res->rev = v->rev;
    res->absent = v->absent;
    res->restored = v->restored;
    res->created = !live && !v->absent;
    return SB_OK;
}

static sb_status sut_write(struct mrun *r, const struct mop *op, sb_result *res)
{
    const struct mcs *c = op->cs >= 0 ? &r->m.cs[op->cs] : NULL;
    sb_write_opts o =
        wo(c ? c->name : NULL, c && c->actor >= 0 ? m_actors[c->actor] : NULL);
    sb_coll *coll = r->fx->coll;
    const char *id = r->ids[op->doc];
    size_t len = strlen(id);

    switch (op->kind) {
    case MK_CREATE:
        return sb_create(coll, id, len, op->payload, strlen(op->payload), &o,
                         res);
    case MK_PUT:
        return sb_put(coll, id, len, op->payload, strlen(op->payload), &o, res);
    case MK_DELETE:
        return sb_delete(coll, id, len, &o, res);
    case MK_STEPS:
        return sb_rollback_steps(coll, id, len, op->steps, &o, res);
    default:
        return sb_rollback_to(coll, id, len, op->rev, &o, res);
    }
}

/* Runs one write on the store and the model; both must agree. */
static void m_run_write(struct mrun *r, struct mop *op)
{
    static const char *const kinds[] = {"create", "put", "delete", "steps",
                                        "to"};
    sb_result want, got;
    sb_status st;

    snprintf(m_where, sizeof(m_where),
             "seed %" PRIu64 " round %d: %s of %s (steps %u, rev %" PRIu64 ")",
             r->seed, r->round, kinds[op->kind], r->ids[op->doc], op->steps,
             op->rev);
    snprintf(op->payload, M_PAY, "r%d-%" PRIu64, r->round, m_below(r, 1000000));
    memset(&got, 0, sizeof(got));
    st = sut_write(r, op, &got);
    m_check(st, m_write(&r->m, op, &want), "status");
    if (st != SB_OK) {
        r->writes_failed++;
        return;
    }
    r->writes_ok++;
    m_check(got.rev, want.rev, "result rev");
    m_check(got.created, want.created, "result created");
    m_check(got.absent, want.absent, "result absent");
    m_check(got.restored, want.restored, "result restored");
}

/* A random write to a random document under change set `cs`. */
static void m_random_write(struct mrun *r, int cs, int doc)
{
    struct mop op;
    uint64_t k = m_below(r, 100);
    struct mdoc *d;

    memset(&op, 0, sizeof(op));
    op.doc = doc >= 0 ? doc : (int)m_below(r, M_IDS);
    op.cs = cs;
    d = &r->m.docs[op.doc];
    if (k < 40)
        op.kind = MK_PUT;
    else if (k < 65) /* mostly the one that succeeds */
        op.kind = (m_live(d) != (m_below(r, 8) == 0)) ? MK_DELETE : MK_CREATE;
    else if (k < 85)
        op.kind = MK_STEPS;
    else
        op.kind = MK_TO;
    op.steps = 1 + (unsigned)m_below(r, 2);
    /* A revision at or below the store's, mostly a recent one. */
    if (r->m.revision == 0)
        op.kind = MK_PUT;
    else
        op.rev =
            r->m.revision - m_below(r, r->m.revision < 12 ? r->m.revision : 12);
    m_run_write(r, &op);
}

/* A view must show exactly the model's version. */
static void m_check_view(struct mrun *r, const sb_view *got,
                         const struct mv *want)
{
    const char *cs = want->cs >= 0 ? r->m.cs[want->cs].name : NULL;

    m_check(got->rev, want->rev, "view rev");
    m_check(got->op, want->op, "view op");
    m_check(got->absent, want->absent, "view absent");
    m_check(got->restored, want->restored, "view restored");
    m_check(got->payload == NULL, want->absent, "view payload is NULL");
    if (!want->absent && (got->len != strlen(want->payload) ||
                          memcmp(got->payload, want->payload, got->len) != 0))
        fail_msg("%s: payload differs from the model's", m_where);
    m_check(got->change_set == NULL, cs == NULL, "view change set is NULL");
    if (cs && (got->change_set_len != strlen(cs) ||
               memcmp(got->change_set, cs, strlen(cs)) != 0))
        fail_msg("%s: change set differs from the model's", m_where);
}

/* Every document's current version and retained history. */
static void m_check_store(struct mrun *r)
{
    sb_view views[M_HISTORY + 1], v;
    size_t count;

    m_check(sb_store_revision(r->fx->store), r->m.revision, "revision");
    read_begin();
    for (int i = 0; i < M_IDS; i++) {
        struct mdoc *d = &r->m.docs[i];
        const char *id = r->ids[i];
        sb_status st = sb_get(r->fx->coll, id, strlen(id), &v);

        m_check(st, m_live(d) ? SB_OK : SB_NOT_FOUND, "get status");
        if (d->n)
            m_check_view(r, &v, m_head(d));
        st = sb_history(r->fx->coll, id, strlen(id), views, M_HISTORY + 1,
                        &count);
        m_check(st, d->n ? SB_OK : SB_NOT_FOUND, "history status");
        if (d->n == 0)
            continue;
        m_check(count, d->n - m_first_kept(d), "history count");
        for (size_t k = 0; k < count; k++)
            m_check_view(r, &views[k], &d->v[d->n - 1 - k]);
    }
    read_end();
}

/* sb_changeset_get() of model change set `ci`. */
static void m_check_index(struct mrun *r, int ci)
{
    const struct mcs *c = &r->m.cs[ci];
    struct cs_got *g = cs_get(r->fx->store, c->name);

    snprintf(m_where, sizeof(m_where), "seed %" PRIu64 " round %d: index of %s",
             r->seed, r->round, c->name);
    m_check(g->status, SB_OK, "get status");
    m_check(g->info.actor == NULL, c->actor < 0, "actor is NULL");
    if (c->actor >= 0 && strcmp(g->actor, m_actors[c->actor]) != 0)
        fail_msg("%s: actor %s, the model says %s", m_where, g->actor,
                 m_actors[c->actor]);
    m_check(g->info.first_rev, c->first_rev, "first_rev");
    m_check(g->info.last_rev, c->last_rev, "last_rev");
    m_check(g->info.writes, c->writes, "writes");
    m_check(g->info.docs, (uint64_t)c->ndocs, "docs");
    m_check(g->ndocs, (uint64_t)c->ndocs, "doc callbacks");
    m_check(g->info.pinned, 1, "pinned");
    for (int k = 0; k < c->ndocs; k++) {
        const struct doc_got *got = &g->docs[k];
        const struct mdoc *d = &r->m.docs[c->order[k]];
        long first = c->first_v[c->order[k]];
        size_t n = 0;

        if (strcmp(got->id, r->ids[c->order[k]]) != 0)
            fail_msg("%s: document %d is %s, the model says %s", m_where, k,
                     got->id, r->ids[c->order[k]]);
        m_check(got->before_rev, first > 0 ? d->v[first - 1].rev : 0,
                "before_rev");
        m_check(got->restorable, 1, "restorable");
        for (size_t i = (size_t)first; i < d->n; i++)
            if (d->v[i].cs == ci) {
                m_check(n < got->nrevs, 1, "revs listed");
                m_check(got->revs[n++], d->v[i].rev, "rev");
            }
        m_check(got->nrevs, n, "nrevs");
    }
    free(g);
}

/* The plan the model expects for document `doc` of change set `ci`. */
struct mplan {
    int doc;
    sb_cs_state state;
    int or_unchanged;           /* SB_CS_UNCHANGED is also right */
    const struct mv *from, *to; /* to NULL: absence before the first */
    const struct mv *later[M_HISTORY];
    size_t nlater;
    int later_more;
};

static void m_plan(struct mrun *r, int ci, int doc, struct mplan *p)
{
    struct mdoc *d = &r->m.docs[doc];
    long first = r->m.cs[ci].first_v[doc];
    int to_absent, both_absent;

    memset(p, 0, sizeof(*p));
    p->doc = doc;
    p->from = m_head(d);
    p->to = first > 0 ? &d->v[first - 1] : NULL;
    for (size_t i = d->n; i-- > (size_t)first;) {
        if (d->v[i].cs == ci)
            continue;
        if (i < m_first_kept(d))
            p->later_more = 1;
        else
            p->later[p->nlater++] = &d->v[i];
    }
    /* Unchanged: absent now and absent before, as the header puts it.  A
     * conflicting document in that state fits both descriptions. */
    to_absent = p->to == NULL || p->to->absent;
    both_absent = p->from->absent && to_absent;
    if (p->nlater || p->later_more) {
        p->state = SB_CS_CONFLICT;
        p->or_unchanged = both_absent;
    } else {
        p->state = both_absent ? SB_CS_UNCHANGED : SB_CS_CLEAN;
    }
}

/* One reported plan against the model's. */
static void m_check_plan(struct mrun *r, const struct plan_got *got,
                         const struct mplan *want)
{
    const struct mv *to = want->to;

    if (strcmp(got->id, r->ids[want->doc]) != 0)
        fail_msg("%s: plan for %s, the model says %s", m_where, got->id,
                 r->ids[want->doc]);
    if (got->state != want->state &&
        !(want->or_unchanged && got->state == SB_CS_UNCHANGED))
        fail_msg("%s: %s is in state %d, the model says %d", m_where, got->id,
                 (int)got->state, (int)want->state);
    m_check(got->from_rev, want->from->rev, "from_rev");
    m_check(got->from_absent, want->from->absent, "from_absent");
    m_check(got->to_rev, to ? to->rev : 0, "to_rev");
    m_check(got->to_absent, !to || to->absent, "to_absent");
    m_check(got->to_null, !to || to->absent, "to_payload is NULL");
    if (to && !to->absent &&
        (got->to_len != strlen(to->payload) ||
         memcmp(got->to_payload, to->payload, got->to_len) != 0))
        fail_msg("%s: to_payload of %s differs", m_where, got->id);
    m_check(got->nlater, want->nlater, "nlater");
    m_check(got->later_more, want->later_more, "later_more");
    for (size_t i = 0; i < want->nlater; i++) {
        const struct mv *l = want->later[i];
        const struct mcs *c = l->cs >= 0 ? &r->m.cs[l->cs] : NULL;
        const char *actor = c && c->actor >= 0 ? m_actors[c->actor] : NULL;

        m_check(got->later[i].rev, l->rev, "later rev");
        m_check(got->later[i].op, l->op, "later op");
        m_check(got->later[i].has_cs, c != NULL, "later has a change set");
        if (c && strcmp(got->later[i].cs, c->name) != 0)
            fail_msg("%s: later change set differs", m_where);
        m_check(got->later[i].has_actor, actor != NULL, "later has an actor");
        if (actor && strcmp(got->later[i].actor, actor) != 0)
            fail_msg("%s: later actor differs", m_where);
    }
}

/* The reported plans against the model's; returns 1 if any conflicts. */
static int m_check_plans(struct mrun *r, const struct rb_got *g,
                         const struct mplan *plans, int n)
{
    size_t counts[4] = {0, 0, 0, 0};
    int conflict = 0;

    m_check(g->nplans, (uint64_t)n, "plans");
    for (int k = 0; k < n; k++) {
        m_check_plan(r, &g->plans[k], &plans[k]);
        counts[g->plans[k].state]++;
        conflict |= g->plans[k].state == SB_CS_CONFLICT;
    }
    m_check(g->out.docs, (uint64_t)n, "outcome docs");
    m_check(g->out.clean, counts[SB_CS_CLEAN], "outcome clean");
    m_check(g->out.conflicts, counts[SB_CS_CONFLICT], "outcome conflicts");
    m_check(g->out.lost, 0, "outcome lost");
    m_check(g->out.unchanged, counts[SB_CS_UNCHANGED], "outcome unchanged");
    return conflict;
}

/* An applied rollback: one version per restored document, consecutive
 * revisions; the model appends the same under change set `ui`. */
static void m_apply(struct mrun *r, const struct rb_got *g,
                    const struct mplan *plans, int n, int ui)
{
    struct mv to[M_IDS];
    int present[M_IDS] = {0};
    size_t restored = 0;

    for (int k = 0; k < n; k++) { /* m_append may move what plans point to */
        present[k] = plans[k].to != NULL;
        if (plans[k].to)
            to[k] = *plans[k].to;
        m_check(g->plans[k].rev == 0, g->plans[k].state == SB_CS_UNCHANGED,
                "written unless unchanged");
        restored += g->plans[k].rev != 0;
    }
    m_check(g->out.restored, restored, "outcome restored");
    if (restored) {
        m_check(g->out.first_rev, r->m.revision + 1, "outcome first_rev");
        m_check(g->out.last_rev, r->m.revision + restored, "outcome last_rev");
    }
    /* In revision order, so the model numbers them as the store did. */
    for (uint64_t rev = r->m.revision + 1; restored > 0; rev++, restored--) {
        int k = 0;
        while (k < n && g->plans[k].rev != rev)
            k++;
        if (k == n)
            fail_msg("%s: no plan wrote revision %" PRIu64, m_where, rev);
        r->m.revision = rev;
        m_restore(m_append(&r->m, plans[k].doc, rev, ui),
                  present[k] ? &to[k] : NULL);
    }
}

/* Rolls back model change set `ci` under a new one; checks the index, a
 * dry run (sometimes), the refusal of conflicts, and the result. */
static void m_rollback(struct mrun *r, int ci)
{
    struct mplan plans[M_IDS];
    char uname[16];
    int n = r->m.cs[ci].ndocs, actor = (int)m_below(r, 5) - 1, ui;
    const char *cs = r->m.cs[ci].name;
    struct rb_got *g;

    m_check_index(r, ci);
    for (int k = 0; k < n; k++) {
        m_plan(r, ci, r->m.cs[ci].order[k], &plans[k]);
        if (plans[k].to &&
            plans[k].to < &r->m.docs[plans[k].doc]
                               .v[m_first_kept(&r->m.docs[plans[k].doc])])
            r->rollbacks[3]++; /* a state only the pin still holds */
    }
    snprintf(uname, sizeof(uname), "u%d", r->round);
    snprintf(m_where, sizeof(m_where),
             "seed %" PRIu64 " round %d: rollback of %s", r->seed, r->round,
             cs);

    if (m_below(r, 2)) {
        g = rollback_cs(r->fx->store, cs, SB_CS_DRY_RUN, uname,
                        actor >= 0 ? m_actors[actor] : NULL);
        int conflict = m_check_plans(r, g, plans, n);
        m_check(g->status, conflict ? SB_CONFLICT : SB_OK, "dry-run status");
        m_check(g->out.restored, 0, "dry-run restored");
        free(g);
        m_check_store(r);
    }

    unsigned flags = 0;
    g = rollback_cs(r->fx->store, cs, flags, uname,
                    actor >= 0 ? m_actors[actor] : NULL);
    if (m_check_plans(r, g, plans, n)) {
        m_check(g->status, SB_CONFLICT, "status");
        m_check(g->out.restored, 0, "refused restored");
        free(g);
        m_check_store(r);
        r->conflicts_seen++;
        flags = SB_CS_FORCE;
        g = rollback_cs(r->fx->store, cs, flags, uname,
                        actor >= 0 ? m_actors[actor] : NULL);
        m_check_plans(r, g, plans, n);
        r->forced++;
    }
    m_check(g->status, SB_OK, "status");
    for (int k = 0; k < n; k++)
        r->rollbacks[g->plans[k].state == SB_CS_UNCHANGED  ? 2
                     : g->plans[k].state == SB_CS_CONFLICT ? 1
                                                           : 0]++;
    ui = m_cs_new(&r->m, uname, actor);
    m_apply(r, g, plans, n, ui);
    free(g);
    m_check_store(r);
    if (r->m.cs[ui].writes)
        m_check_index(r, ui);
}

/* A model change set the store never saw a successful write of is not
 * indexed. */
static void m_check_unknown(struct mrun *r, int ci)
{
    struct cs_got *g = cs_get(r->fx->store, r->m.cs[ci].name);

    snprintf(m_where, sizeof(m_where), "seed %" PRIu64 " round %d: %s", r->seed,
             r->round, r->m.cs[ci].name);
    m_check(g->status, SB_NOT_FOUND, "get status of an empty change set");
    free(g);
}

static void m_round(struct mrun *r)
{
    char name[16];
    int xi, target, last_undo = (int)r->m.ncs - 1;

    snprintf(name, sizeof(name), "b%d", r->round);
    int bg = m_cs_new(&r->m, name, (int)m_below(r, 3));
    for (uint64_t i = m_below(r, 4); i > 0; i--)
        m_random_write(r, m_below(r, 2) ? bg : -1, -1);

    snprintf(name, sizeof(name), "x%d", r->round);
    xi = m_cs_new(&r->m, name, (int)m_below(r, 4) - 1);
    for (uint64_t i = 1 + m_below(r, 10); i > 0; i--)
        m_random_write(r, xi, -1);
    if (r->m.cs[xi].writes == 0) {
        m_check_unknown(r, xi);
        return;
    }

    /* Sometimes another writer touches X's documents afterwards. */
    if (m_below(r, 3) == 0) {
        snprintf(name, sizeof(name), "w%d", r->round);
        int wi = m_cs_new(&r->m, name, 2);
        for (uint64_t i = 1 + m_below(r, 2); i > 0; i--)
            m_random_write(r, m_below(r, 2) ? wi : -1,
                           r->m.cs[xi].order[m_below(r, r->m.cs[xi].ndocs)]);
    }

    /* Mostly X; sometimes the last undo, or any change set at all. */
    target = xi;
    uint64_t k = m_below(r, 10);
    if (k < 2 && last_undo >= 0 && r->m.cs[last_undo].name[0] == 'u' &&
        r->m.cs[last_undo].writes)
        target = last_undo;
    else if (k < 4) {
        int pick = (int)m_below(r, r->m.ncs);
        if (r->m.cs[pick].writes)
            target = pick;
    }
    m_rollback(r, target);
}

/* Every change set the model has, newest first, as the list shows. */
static void m_check_list(struct mrun *r)
{
    struct cs_names l = {NULL, 0, 0};
    uint64_t prev = UINT64_MAX;
    size_t want = 0;

    snprintf(m_where, sizeof(m_where), "seed %" PRIu64 ": list", r->seed);
    assert_int_equal(sb_changeset_list(r->fx->store, NULL, on_collect_name, &l),
                     SB_OK);
    for (size_t i = 0; i < r->m.ncs; i++)
        want += r->m.cs[i].writes > 0;
    m_check(l.n, want, "change sets listed");
    for (size_t i = 0; i < l.n; i++) {
        size_t c = 0;
        while (c < r->m.ncs && strcmp(r->m.cs[c].name, l.names[i]) != 0)
            c++;
        m_check(c < r->m.ncs, 1, "listed change set is the model's");
        m_check(r->m.cs[c].last_rev < prev, 1, "newest first");
        prev = r->m.cs[c].last_rev;
    }
    free(l.names);
}

static void test_rollback_model(void **state)
{
    struct fx *fx = *state; /* history 4 */
    struct mrun *r = calloc(1, sizeof(*r));
    const char *env = getenv("SB_SEED");

    assert_non_null(r);
    assert_int_equal(fx->opts.history, M_HISTORY);
    r->fx = fx;
    r->seed = env ? strtoull(env, NULL, 0) : 20261203;
    r->rng = r->seed ? r->seed : 1; /* xorshift must not start at 0 */
    print_message("test_rollback_model: seed %" PRIu64
                  " (set SB_SEED to replay)\n",
                  r->seed);
    for (int i = 0; i < M_IDS; i++)
        snprintf(r->ids[i], sizeof(r->ids[i]), "m%02d", i);

    for (r->round = 0; r->round < M_ROUNDS; r->round++)
        m_round(r);
    m_check_store(r);
    m_check_list(r);

    print_message("test_rollback_model: %ld writes, %ld refused; documents "
                  "rolled back clean %ld, over a conflict %ld, unchanged %ld, "
                  "from a pin %ld; %ld rollbacks forced\n",
                  r->writes_ok, r->writes_failed, r->rollbacks[0],
                  r->rollbacks[1], r->rollbacks[2], r->rollbacks[3], r->forced);
    /* The mix reached every case it is meant to check. */
    assert_true(r->writes_failed > 0);
    for (int i = 0; i < 4; i++)
        assert_true(r->rollbacks[i] > 0);
    assert_true(r->forced > 0);

    for (int i = 0; i < M_IDS; i++)
        free(r->m.docs[i].v);
    free(r->m.cs);
    free(r);
}

#define T(f)     cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TH(f, s) cmocka_unit_test_setup_teardown(f, s, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_batch_success),
        T(test_batch_many_new_documents),
        T(test_batch_two_collections),
        T(test_batch_failure),
        T(test_batch_if_rev),
        T(test_batch_invalid),
        T(test_batch_atomic_visibility),
        T(test_changeset_get),
        T(test_changeset_get_stop_and_invalid),
        T(test_changeset_list),
        T(test_changeset_eviction),
        T(test_changeset_keep_none),
        TH(test_automatic_change_sets, setup_h4),
        T(test_automatic_keep_none),
        TH(test_automatic_persist, setup_dir),
        T(test_rollback_clean),
        T(test_rollback_twice_conflicts),
        T(test_rollback_dry_run),
        T(test_rollback_conflict_force),
        TH(test_rollback_conflict_interleaved, setup_h3),
        TH(test_rollback_later_more_only_for_others, setup_h4),
        TH(test_rollback_forced_plan_is_dry_run_plan, setup_h3),
        T(test_rollback_undo_of_undo),
        T(test_rollback_invalid),
        TH(test_rollback_model, setup_h4),
        TH(test_pin_beyond_ring, setup_h4),
        TH(test_pin_released_by_age, setup_h4),
        TH(test_persistence, setup_dir),
        T(test_scan_at_old_revisions),
        T(test_scan_at_pages),
        TH(test_scan_at_errors, setup_h3),
    };
    int failed;

    if (sb_thread_register() != SB_OK)
        return 1;
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    sb_thread_unregister();
    return failed;
}
