/*
 * test_store.c - unit tests of the contract in snapback.h: every function,
 * every status it documents, and the rollback rules worked through by hand
 * on small histories.
 *
 * Each test gets a fresh store from its setup function, so tests share
 * nothing.  Views point into the store only until the read section ends,
 * so the read helpers copy what a test checks into a `struct got` before
 * they unlock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapback.h"
#include "read_section.h"

/* ------------------------------------------------------------------ */
/* Fixture: one store and one collection per test                     */
/* ------------------------------------------------------------------ */

struct fx {
    sb_store *store;
    sb_coll *coll;
};

static sb_store *open_store(unsigned history)
{
    sb_options opts;
    sb_store *store = NULL;

    sb_options_init(&opts);
    opts.history = history;
    assert_int_equal(sb_store_open(&opts, &store), SB_OK);
    assert_non_null(store);
    return store;
}

static sb_coll *open_coll(sb_store *store, const char *name)
{
    sb_coll *coll = NULL;

    assert_int_equal(sb_collection_open(store, name, strlen(name), &coll),
                     SB_OK);
    assert_non_null(coll);
    return coll;
}

static int setup_history(void **state, unsigned history)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (!fx)
        return -1;
    fx->store = open_store(history);
    fx->coll = open_coll(fx->store, "docs");
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_history(state, SB_HISTORY_DEFAULT);
}

static int setup_h1(void **state)
{
    return setup_history(state, 1);
}

static int setup_h2(void **state)
{
    return setup_history(state, 2);
}

static int setup_h3(void **state)
{
    return setup_history(state, 3);
}

static int setup_h4(void **state)
{
    return setup_history(state, 4);
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    while (read_depth > 0)
        read_end();
    sb_store_close(fx->store);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Write wrappers: C-string ids and payloads                          */
/* ------------------------------------------------------------------ */

static sb_write_opts if_rev_opts(uint64_t if_rev)
{
    sb_write_opts o = {.if_rev = if_rev};
    return o;
}

static sb_status do_put(sb_coll *c, const char *id, const char *payload,
                        uint64_t if_rev, sb_result *res)
{
    sb_write_opts o = if_rev_opts(if_rev);
    return sb_put(c, id, strlen(id), payload, strlen(payload), &o, res);
}

static sb_status do_create(sb_coll *c, const char *id, const char *payload,
                           sb_result *res)
{
    return sb_create(c, id, strlen(id), payload, strlen(payload), NULL, res);
}

static sb_status do_delete(sb_coll *c, const char *id, uint64_t if_rev,
                           sb_result *res)
{
    sb_write_opts o = if_rev_opts(if_rev);
    return sb_delete(c, id, strlen(id), &o, res);
}

static sb_status do_steps(sb_coll *c, const char *id, unsigned steps,
                          uint64_t if_rev, sb_result *res)
{
    sb_write_opts o = if_rev_opts(if_rev);
    return sb_rollback_steps(c, id, strlen(id), steps, &o, res);
}

static sb_status do_to(sb_coll *c, const char *id, uint64_t rev,
                       uint64_t if_rev, sb_result *res)
{
    sb_write_opts o = if_rev_opts(if_rev);
    return sb_rollback_to(c, id, strlen(id), rev, &o, res);
}

/* A put that must succeed; returns its revision. */
static uint64_t put_ok(sb_coll *c, const char *id, const char *payload)
{
    sb_result res;

    assert_int_equal(do_put(c, id, payload, 0, &res), SB_OK);
    return res.rev;
}

static uint64_t delete_ok(sb_coll *c, const char *id)
{
    sb_result res;

    assert_int_equal(do_delete(c, id, 0, &res), SB_OK);
    assert_int_equal(res.absent, 1);
    return res.rev;
}

/* A rollback that must succeed, to the given state. */
static void assert_rolled(sb_status st, const sb_result *res, uint64_t rev,
                          int absent, uint64_t restored)
{
    assert_int_equal(st, SB_OK);
    assert_int_equal(res->rev, rev);
    assert_int_equal(res->absent, absent);
    assert_int_equal(res->restored, restored);
}

/* ------------------------------------------------------------------ */
/* Read wrappers: copy a view out of its read section                 */
/* ------------------------------------------------------------------ */

struct got {
    sb_status status;
    sb_view view; /* pointers are only compared with NULL */
    char id[SB_ID_MAX];
    char payload[256];
    char change_set[SB_CHANGE_SET_MAX];
};

static void copy_view(const sb_view *v, struct got *g)
{
    g->view = *v;
    if (v->id) {
        assert_true(v->id_len <= sizeof(g->id));
        memcpy(g->id, v->id, v->id_len);
    }
    if (v->payload) {
        assert_true(v->len <= sizeof(g->payload));
        memcpy(g->payload, v->payload, v->len);
    }
    if (v->change_set) {
        assert_true(v->change_set_len <= sizeof(g->change_set));
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

static struct got read_as_of(sb_coll *c, const char *id, uint64_t rev)
{
    struct got g;
    sb_view v;

    memset(&g, 0, sizeof(g));
    memset(&v, 0, sizeof(v));
    v.rev = 0xdead; /* must become 0 for "did not exist yet" */
    read_begin();
    g.status = sb_get_as_of(c, id, strlen(id), rev, &v);
    if (g.status == SB_OK || g.status == SB_NOT_FOUND)
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
    copy_view(&v, &g);
    read_end();
    return g;
}

static void assert_payload(const struct got *g, const char *payload)
{
    assert_non_null(g->view.payload);
    assert_int_equal(g->view.len, strlen(payload));
    assert_memory_equal(g->payload, payload, strlen(payload));
}

/* The document's current version is live with this payload. */
static void assert_live(sb_coll *c, const char *id, const char *payload)
{
    struct got g = read_get(c, id);

    assert_int_equal(g.status, SB_OK);
    assert_int_equal(g.view.absent, 0);
    assert_payload(&g, payload);
}

/* The document has a current version, and it is an absence. */
static void assert_absent(sb_coll *c, const char *id)
{
    struct got g = read_get(c, id);

    assert_int_equal(g.status, SB_NOT_FOUND);
    assert_int_equal(g.view.absent, 1);
    assert_true(g.view.rev > 0);
    assert_null(g.view.payload);
    assert_int_equal(g.view.len, 0);
}

static void assert_as_of(sb_coll *c, const char *id, uint64_t rev,
                         const char *payload)
{
    struct got g = read_as_of(c, id, rev);

    assert_int_equal(g.status, SB_OK);
    assert_payload(&g, payload);
}

static void assert_as_of_status(sb_coll *c, const char *id, uint64_t rev,
                                sb_status want)
{
    assert_int_equal(read_as_of(c, id, rev).status, want);
}

/* Reads the retained revisions of `id`, newest first; returns the count. */
static size_t history_revs(sb_coll *c, const char *id, uint64_t *revs,
                           size_t cap)
{
    sb_view views[64];
    size_t count = 0;

    assert_true(cap <= 64);
    read_begin();
    assert_int_equal(sb_history(c, id, strlen(id), views, cap, &count), SB_OK);
    for (size_t i = 0; i < cap && i < count; i++)
        revs[i] = views[i].rev;
    read_end();
    return count;
}

static void assert_history(sb_coll *c, const char *id, const uint64_t *want,
                           size_t n)
{
    uint64_t revs[64];

    assert_int_equal(history_revs(c, id, revs, 64), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(revs[i], want[i]);
}

/* ------------------------------------------------------------------ */
/* Statuses, options, threads                                         */
/* ------------------------------------------------------------------ */

static void test_status_str(void **state)
{
    (void)state;
    for (int i = 0; i < SB_STATUS_COUNT; i++) {
        const char *s = sb_status_str((sb_status)i);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(s, sb_status_str((sb_status)j));
    }
    assert_non_null(sb_status_str(SB_STATUS_COUNT));
    assert_non_null(sb_status_str((sb_status)1000));
    assert_non_null(sb_status_str((sb_status)-1));
    assert_string_not_equal(sb_status_str((sb_status)1000),
                            sb_status_str(SB_OK));
}

static void test_op_str(void **state)
{
    (void)state;
    assert_string_equal(sb_op_str(SB_OP_CREATE), "create");
    assert_string_equal(sb_op_str(SB_OP_UPDATE), "update");
    assert_string_equal(sb_op_str(SB_OP_DELETE), "delete");
    assert_string_equal(sb_op_str(SB_OP_ROLLBACK), "rollback");
    assert_string_equal(sb_op_str((sb_op)0), "unknown");
    assert_string_equal(sb_op_str((sb_op)99), "unknown");
}

static void test_options_and_open(void **state)
{
    sb_options opts;
    sb_store *store = NULL;

    (void)state;
    memset(&opts, 0x5a, sizeof(opts));
    sb_options_init(&opts);
    assert_int_equal(opts.history, SB_HISTORY_DEFAULT);
    assert_null(opts.log);

    assert_int_equal(sb_store_open(NULL, NULL), SB_INVALID);
    opts.history = 0;
    assert_int_equal(sb_store_open(&opts, &store), SB_INVALID);
    opts.history = SB_HISTORY_MAX + 1;
    assert_int_equal(sb_store_open(&opts, &store), SB_INVALID);
    assert_null(store);

    assert_int_equal(sb_store_open(NULL, &store), SB_OK);
    assert_int_equal(sb_store_revision(store), 0);
    sb_store_close(store);
    opts.history = SB_HISTORY_MAX;
    assert_int_equal(sb_store_open(&opts, &store), SB_OK);
    sb_store_close(store);
    sb_store_close(NULL);
}

/* The default depth is 32: 33 writes leave 32 versions. */
static void test_default_history_depth(void **state)
{
    struct fx *fx = *state;
    uint64_t revs[64];

    for (int i = 0; i < SB_HISTORY_DEFAULT + 1; i++)
        put_ok(fx->coll, "d", "p");
    assert_int_equal(history_revs(fx->coll, "d", revs, 64), SB_HISTORY_DEFAULT);
    assert_int_equal(revs[SB_HISTORY_DEFAULT - 1], 2);
}

static void test_thread_register_twice(void **state)
{
    struct fx *fx = *state;

    /* main() registered already; a second call must be a no-op. */
    assert_int_equal(sb_thread_register(), SB_OK);
    assert_int_equal(sb_thread_register(), SB_OK);
    put_ok(fx->coll, "a", "1");
    assert_live(fx->coll, "a", "1");
}

struct thread_args {
    struct fx *fx;
    sb_status open, create, put, del, steps, to;
};

static void *run_unregistered(void *p)
{
    struct thread_args *a = p;
    sb_coll *coll = NULL;
    sb_coll *c = a->fx->coll;

    a->open = sb_collection_open(a->fx->store, "other", 5, &coll);
    a->create = sb_create(c, "u", 1, "p", 1, NULL, NULL);
    a->put = sb_put(c, "a", 1, "p", 1, NULL, NULL);
    a->del = sb_delete(c, "a", 1, NULL, NULL);
    a->steps = sb_rollback_steps(c, "a", 1, 1, NULL, NULL);
    a->to = sb_rollback_to(c, "a", 1, 1, NULL, NULL);
    sb_thread_unregister(); /* not registered: does nothing */
    return NULL;
}

static void *run_registered(void *p)
{
    struct thread_args *a = p;

    a->put = sb_thread_register();
    if (a->put == SB_OK)
        a->put = sb_put(a->fx->coll, "t", 1, "from-thread", 11, NULL, NULL);
    sb_thread_unregister();
    return NULL;
}

static void test_unregistered_thread(void **state)
{
    struct fx *fx = *state;
    struct thread_args a = {.fx = fx};
    pthread_t t;

    put_ok(fx->coll, "a", "1");
    assert_int_equal(pthread_create(&t, NULL, run_unregistered, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.open, SB_UNREGISTERED);
    assert_int_equal(a.create, SB_UNREGISTERED);
    assert_int_equal(a.put, SB_UNREGISTERED);
    assert_int_equal(a.del, SB_UNREGISTERED);
    assert_int_equal(a.steps, SB_UNREGISTERED);
    assert_int_equal(a.to, SB_UNREGISTERED);
    assert_int_equal(sb_store_revision(fx->store), 1);
    assert_live(fx->coll, "a", "1");

    assert_int_equal(pthread_create(&t, NULL, run_registered, &a), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(a.put, SB_OK);
    assert_live(fx->coll, "t", "from-thread");
}

/* ------------------------------------------------------------------ */
/* Names, ids and invalid arguments                                   */
/* ------------------------------------------------------------------ */

static char big[SB_ID_MAX + 2];

static void fill_big(void)
{
    memset(big, 'x', sizeof(big));
}

static void test_name_valid(void **state)
{
    (void)state;
    fill_big();
    assert_int_equal(sb_collection_name_valid("", 0), 0);
    assert_int_equal(sb_collection_name_valid(NULL, 3), 0);
    assert_int_equal(sb_collection_name_valid(big, SB_COLLECTION_MAX), 1);
    assert_int_equal(sb_collection_name_valid(big, SB_COLLECTION_MAX + 1), 0);
    assert_int_equal(sb_collection_name_valid("a/b", 3), 0);
    assert_int_equal(sb_collection_name_valid("a b", 3), 0);
    assert_int_equal(sb_collection_name_valid("a\0b", 3), 0);
    assert_int_equal(sb_collection_name_valid("Jos\xc3\xa9", 5), 0);
    assert_int_equal(sb_collection_name_valid("_users", 6), 1);
    assert_int_equal(sb_collection_name_valid("a.b-c_D9", 8), 1);
    /* Only `len` bytes count: the '/' beyond them is not part of it. */
    assert_int_equal(sb_collection_name_valid("ab/", 2), 1);
}

static void test_id_valid(void **state)
{
    (void)state;
    fill_big();
    assert_int_equal(sb_id_valid("a", 1), 1);
    assert_int_equal(sb_id_valid(big, SB_ID_MAX), 1);
    assert_int_equal(sb_id_valid(big, SB_ID_MAX + 1), 0);
    assert_int_equal(sb_id_valid("", 0), 0);
    assert_int_equal(sb_id_valid(NULL, 1), 0);
    assert_int_equal(sb_id_valid("a/b", 3), 0);
    assert_int_equal(sb_id_valid("a\0b", 3), 0);
    assert_int_equal(sb_id_valid("jose@email.com", 14), 1);
    assert_int_equal(sb_id_valid("a b\xff\x01", 5), 1);
}

struct bad_id {
    const char *id;
    size_t len;
};

/* Filled by bad_ids(): NULL, empty, 513 bytes, '/', NUL. */
static const struct bad_id *bad_ids(size_t *n)
{
    static struct bad_id ids[5];

    fill_big();
    ids[0] = (struct bad_id){NULL, 1};
    ids[1] = (struct bad_id){"", 0};
    ids[2] = (struct bad_id){big, SB_ID_MAX + 1};
    ids[3] = (struct bad_id){"a/b", 3};
    ids[4] = (struct bad_id){"a\0b", 3};
    *n = 5;
    return ids;
}

static void test_collection_open_invalid(void **state)
{
    struct fx *fx = *state;
    sb_coll *c = NULL;
    const char *bad[] = {"", "a/b", "a b", "caf\xc3\xa9"};

    fill_big();
    assert_int_equal(sb_collection_open(NULL, "x", 1, &c), SB_INVALID);
    assert_int_equal(sb_collection_open(fx->store, NULL, 1, &c), SB_INVALID);
    assert_int_equal(sb_collection_open(fx->store, "x", 1, NULL), SB_INVALID);
    assert_int_equal(sb_collection_open(fx->store, big, 65, &c), SB_INVALID);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(
            sb_collection_open(fx->store, bad[i], strlen(bad[i]), &c),
            SB_INVALID);
    assert_null(c);
    assert_int_equal(sb_store_revision(fx->store), 0);

    /* None of them was created. */
    read_begin();
    assert_int_equal(sb_collection_find(fx->store, "x", 1, &c), SB_NOT_FOUND);
    read_end();
    assert_null(c);

    /* 64 bytes and a leading '_' are fine. */
    assert_int_equal(sb_collection_open(fx->store, big, 64, &c), SB_OK);
    assert_int_equal(sb_collection_open(fx->store, "_sys", 4, &c), SB_OK);
}

static void assert_writes_invalid(struct fx *fx, sb_coll *c, const void *id,
                                  size_t len, const sb_write_opts *o)
{
    uint64_t before = sb_store_revision(fx->store);
    sb_result res;

    memset(&res, 0x77, sizeof(res));
    assert_int_equal(sb_create(c, id, len, "p", 1, o, &res), SB_INVALID);
    assert_int_equal(sb_put(c, id, len, "p", 1, o, &res), SB_INVALID);
    assert_int_equal(sb_delete(c, id, len, o, &res), SB_INVALID);
    assert_int_equal(sb_rollback_steps(c, id, len, 1, o, &res), SB_INVALID);
    assert_int_equal(sb_rollback_to(c, id, len, 1, o, &res), SB_INVALID);
    assert_int_equal(res.rev, 0x7777777777777777ULL); /* untouched */
    assert_int_equal(sb_store_revision(fx->store), before);
}

static void test_write_invalid_args(void **state)
{
    struct fx *fx = *state;
    unsigned char cs[SB_CHANGE_SET_MAX + 1] = {0};
    sb_write_opts big_cs = {.change_set = cs, .change_set_len = sizeof(cs)};
    sb_write_opts null_cs = {.change_set_len = 3}; /* a length but no bytes */
    size_t n;
    const struct bad_id *ids = bad_ids(&n);
    sb_result res;

    /* Two live documents, so rev 1 is a valid, non-future target. */
    put_ok(fx->coll, "a", "1");
    put_ok(fx->coll, "a", "2");
    for (size_t i = 0; i < n; i++)
        assert_writes_invalid(fx, fx->coll, ids[i].id, ids[i].len, NULL);
    assert_writes_invalid(fx, NULL, "a", 1, NULL);
    assert_writes_invalid(fx, fx->coll, "a", 1, &big_cs);
    assert_writes_invalid(fx, fx->coll, "a", 1, &null_cs);

    /* Payload NULL with a length, 0 steps, revision 0. */
    assert_int_equal(sb_put(fx->coll, "a", 1, NULL, 4, NULL, &res), SB_INVALID);
    assert_int_equal(sb_create(fx->coll, "n", 1, NULL, 4, NULL, &res),
                     SB_INVALID);
    assert_int_equal(do_steps(fx->coll, "a", 0, 0, &res), SB_INVALID);
    assert_int_equal(do_to(fx->coll, "a", 0, 0, &res), SB_INVALID);
    assert_int_equal(sb_store_revision(fx->store), 2);
    assert_live(fx->coll, "a", "2");
    assert_int_equal(read_get(fx->coll, "n").status, SB_NOT_FOUND);

    /* The limits themselves are accepted. */
    big_cs.change_set_len = SB_CHANGE_SET_MAX;
    assert_int_equal(sb_put(fx->coll, big, SB_ID_MAX, "p", 1, &big_cs, &res),
                     SB_OK);
    assert_int_equal(res.rev, 3);
}

static void assert_reads_invalid(sb_coll *c, const void *id, size_t len)
{
    sb_view v;
    size_t count = 99;

    memset(&v, 0x3c, sizeof(v));
    read_begin();
    assert_int_equal(sb_get(c, id, len, &v), SB_INVALID);
    assert_int_equal(sb_get_as_of(c, id, len, 1, &v), SB_INVALID);
    assert_int_equal(sb_version_get(c, id, len, 1, &v), SB_INVALID);
    assert_int_equal(sb_history(c, id, len, &v, 1, &count), SB_INVALID);
    read_end();
    assert_int_equal(v.rev, 0x3c3c3c3c3c3c3c3cULL); /* untouched */
    assert_int_equal(count, 99);
}

static int on_scan_count(void *ctx, const sb_view *doc)
{
    (void)doc;
    ++*(int *)ctx;
    return 0;
}

static void test_read_invalid_args(void **state)
{
    struct fx *fx = *state;
    size_t n, count;
    const struct bad_id *ids = bad_ids(&n);
    sb_view v;
    int calls = 0;

    put_ok(fx->coll, "a", "1");
    for (size_t i = 0; i < n; i++)
        assert_reads_invalid(fx->coll, ids[i].id, ids[i].len);
    assert_reads_invalid(NULL, "a", 1);

    read_begin();
    assert_int_equal(sb_get(fx->coll, "a", 1, NULL), SB_INVALID);
    assert_int_equal(sb_get_as_of(fx->coll, "a", 1, 1, NULL), SB_INVALID);
    assert_int_equal(sb_get_as_of(fx->coll, "a", 1, 0, &v), SB_INVALID);
    assert_int_equal(sb_version_get(fx->coll, "a", 1, 1, NULL), SB_INVALID);
    assert_int_equal(sb_history(fx->coll, "a", 1, &v, 1, NULL), SB_INVALID);
    assert_int_equal(sb_history(fx->coll, "a", 1, NULL, 1, &count), SB_INVALID);
    assert_int_equal(sb_scan(NULL, NULL, 0, on_scan_count, &calls), SB_INVALID);
    assert_int_equal(sb_scan(fx->coll, NULL, 0, NULL, &calls), SB_INVALID);
    assert_int_equal(sb_scan(fx->coll, "a/b", 3, on_scan_count, &calls),
                     SB_INVALID);
    read_end();
    assert_int_equal(calls, 0);
}

/* ------------------------------------------------------------------ */
/* Collections                                                        */
/* ------------------------------------------------------------------ */

struct names {
    int calls;
    int stop_after; /* 0: never stop */
    char seen[8][SB_COLLECTION_MAX + 1];
};

static int on_collection(void *ctx, const char *name, size_t len)
{
    struct names *n = ctx;

    assert_true(n->calls < 8);
    assert_true(len <= SB_COLLECTION_MAX);
    memcpy(n->seen[n->calls], name, len);
    n->seen[n->calls][len] = '\0';
    n->calls++;
    return n->stop_after && n->calls >= n->stop_after;
}

static int names_count(const struct names *n, const char *name)
{
    int k = 0;

    for (int i = 0; i < n->calls; i++)
        k += strcmp(n->seen[i], name) == 0;
    return k;
}

static void test_collection_each(void **state)
{
    struct fx *fx = *state;
    struct names n = {0};

    sb_coll *users = open_coll(fx->store, "users");
    sb_coll *meta = open_coll(fx->store, "_meta");
    sb_coll *failed = open_coll(fx->store, "failed");
    sb_result res;

    /* Only collections with a committed version are listed: "docs" and
     * "failed" were opened, and "failed" written only by a refused put. */
    put_ok(users, "a", "A");
    put_ok(meta, "m", "M");
    assert_int_equal(do_put(failed, "x", "X", 42, &res), SB_CONFLICT);
    read_begin();
    assert_int_equal(sb_collection_each(fx->store, on_collection, &n), SB_OK);
    read_end();
    assert_int_equal(n.calls, 2);
    assert_int_equal(names_count(&n, "users"), 1);
    assert_int_equal(names_count(&n, "_meta"), 1);

    memset(&n, 0, sizeof(n));
    n.stop_after = 1;
    read_begin();
    assert_int_equal(sb_collection_each(fx->store, on_collection, &n), SB_OK);
    assert_int_equal(sb_collection_each(NULL, on_collection, &n), SB_INVALID);
    assert_int_equal(sb_collection_each(fx->store, NULL, &n), SB_INVALID);
    read_end();
    assert_int_equal(n.calls, 1);
}

static void test_collection_find_and_name(void **state)
{
    struct fx *fx = *state;
    sb_coll *a = open_coll(fx->store, "users");
    sb_coll *found = NULL;
    size_t len = 0;
    const char *name;

    assert_ptr_equal(open_coll(fx->store, "users"), a);
    assert_ptr_not_equal(a, fx->coll);

    read_begin();
    assert_int_equal(sb_collection_find(fx->store, "users", 5, &found), SB_OK);
    assert_ptr_equal(found, a);
    found = NULL;
    assert_int_equal(sb_collection_find(fx->store, "nope", 4, &found),
                     SB_NOT_FOUND);
    assert_null(found);
    assert_int_equal(sb_collection_find(fx->store, "a/b", 3, &found),
                     SB_INVALID);
    assert_int_equal(sb_collection_find(fx->store, "", 0, &found), SB_INVALID);
    assert_int_equal(sb_collection_find(NULL, "users", 5, &found), SB_INVALID);
    assert_int_equal(sb_collection_find(fx->store, NULL, 5, &found),
                     SB_INVALID);
    assert_int_equal(sb_collection_find(fx->store, "users", 5, NULL),
                     SB_INVALID);
    read_end();

    name = sb_collection_name(a, &len);
    assert_int_equal(len, 5);
    assert_memory_equal(name, "users", 5);
}

/* ------------------------------------------------------------------ */
/* Create, put, delete, get                                           */
/* ------------------------------------------------------------------ */

static void test_create(void **state)
{
    struct fx *fx = *state;
    sb_result res;
    struct got g;

    assert_int_equal(do_create(fx->coll, "a", "one", &res), SB_OK);
    assert_int_equal(res.rev, 1);
    assert_int_equal(res.created, 1);
    assert_int_equal(res.absent, 0);
    assert_int_equal(res.restored, 0);

    assert_int_equal(do_create(fx->coll, "a", "two", &res), SB_EXISTS);
    assert_int_equal(sb_store_revision(fx->store), 1);
    assert_live(fx->coll, "a", "one");

    /* A deleted document can be created again. */
    delete_ok(fx->coll, "a");
    assert_int_equal(do_create(fx->coll, "a", "three", &res), SB_OK);
    assert_int_equal(res.rev, 3);
    assert_int_equal(res.created, 1);
    g = read_get(fx->coll, "a");
    assert_int_equal(g.view.op, SB_OP_CREATE);
    assert_payload(&g, "three");

    /* So can one rolled back to absence. */
    assert_int_equal(do_create(fx->coll, "b", "x", &res), SB_OK);
    assert_int_equal(do_steps(fx->coll, "b", 1, 0, &res), SB_OK);
    assert_int_equal(do_create(fx->coll, "b", "y", &res), SB_OK);
    assert_int_equal(res.created, 1);
    assert_live(fx->coll, "b", "y");
}

static void test_put_created_and_op(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    assert_int_equal(do_put(fx->coll, "a", "1", 0, &res), SB_OK);
    assert_int_equal(res.created, 1);
    assert_int_equal(read_get(fx->coll, "a").view.op, SB_OP_CREATE);

    assert_int_equal(do_put(fx->coll, "a", "2", 0, &res), SB_OK);
    assert_int_equal(res.created, 0);
    assert_int_equal(res.absent, 0);
    assert_int_equal(read_get(fx->coll, "a").view.op, SB_OP_UPDATE);

    delete_ok(fx->coll, "a");
    assert_int_equal(do_put(fx->coll, "a", "3", 0, &res), SB_OK);
    assert_int_equal(res.created, 1);
    assert_int_equal(res.rev, 4);
    assert_int_equal(read_get(fx->coll, "a").view.op, SB_OP_CREATE);
    assert_live(fx->coll, "a", "3");

    /* An empty payload is a document like any other. */
    assert_int_equal(sb_put(fx->coll, "e", 1, "", 0, NULL, NULL), SB_OK);
    assert_int_equal(read_get(fx->coll, "e").status, SB_OK);
    assert_int_equal(read_get(fx->coll, "e").view.len, 0);
}

static void test_get_fields(void **state)
{
    struct fx *fx = *state;
    uint64_t rev = put_ok(fx->coll, "doc-1", "payload");
    struct got g = read_get(fx->coll, "doc-1");

    assert_int_equal(g.status, SB_OK);
    assert_int_equal(g.view.id_len, 5);
    assert_memory_equal(g.id, "doc-1", 5);
    assert_int_equal(g.view.rev, rev);
    assert_int_equal(g.view.op, SB_OP_CREATE);
    assert_int_equal(g.view.absent, 0);
    assert_int_equal(g.view.restored, 0);
    assert_null(g.view.change_set);
    assert_int_equal(g.view.change_set_len, 0);
    assert_payload(&g, "payload");

    /* Never written: NOT_FOUND with rev 0. */
    g = read_get(fx->coll, "other");
    assert_int_equal(g.status, SB_NOT_FOUND);
    assert_int_equal(g.view.rev, 0);

    /* Deleted: NOT_FOUND, filled with the tombstone. */
    rev = delete_ok(fx->coll, "doc-1");
    g = read_get(fx->coll, "doc-1");
    assert_int_equal(g.status, SB_NOT_FOUND);
    assert_int_equal(g.view.rev, rev);
    assert_int_equal(g.view.op, SB_OP_DELETE);
    assert_int_equal(g.view.absent, 1);
    assert_null(g.view.payload);
    assert_int_equal(g.view.len, 0);
}

static void test_delete(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    assert_int_equal(do_delete(fx->coll, "a", 0, &res), SB_NOT_FOUND);
    put_ok(fx->coll, "a", "1");
    assert_int_equal(do_delete(fx->coll, "a", 0, &res), SB_OK);
    assert_int_equal(res.rev, 2);
    assert_int_equal(res.absent, 1);
    assert_int_equal(res.created, 0);
    assert_int_equal(res.restored, 0);
    assert_absent(fx->coll, "a");

    assert_int_equal(do_delete(fx->coll, "a", 0, &res), SB_NOT_FOUND);
    assert_int_equal(sb_store_revision(fx->store), 2);

    /* The tombstone is a version in the history. */
    assert_history(fx->coll, "a", (uint64_t[]){2, 1}, 2);
}

static void test_if_rev(void **state)
{
    struct fx *fx = *state;
    sb_result res;
    sb_write_opts o;
    uint64_t r1 = put_ok(fx->coll, "a", "1");
    uint64_t r2;

    assert_int_equal(do_put(fx->coll, "a", "x", r1 + 5, &res), SB_CONFLICT);
    assert_int_equal(do_put(fx->coll, "a", "2", r1, &res), SB_OK);
    r2 = res.rev;
    assert_int_equal(do_put(fx->coll, "a", "x", r1, &res), SB_CONFLICT);
    assert_int_equal(do_delete(fx->coll, "a", r1, &res), SB_CONFLICT);
    assert_int_equal(do_steps(fx->coll, "a", 1, r1, &res), SB_CONFLICT);
    assert_int_equal(do_to(fx->coll, "a", r1, r1, &res), SB_CONFLICT);
    assert_int_equal(sb_store_revision(fx->store), r2);
    assert_live(fx->coll, "a", "2");

    /* Never written: there is no current version to match. */
    assert_int_equal(do_put(fx->coll, "n", "x", r1, &res), SB_CONFLICT);
    assert_int_equal(read_get(fx->coll, "n").view.rev, 0);

    /* Right revision: every write goes through. */
    assert_int_equal(do_steps(fx->coll, "a", 1, r2, &res), SB_OK);
    assert_int_equal(do_to(fx->coll, "a", r2, res.rev, &res), SB_OK);
    assert_int_equal(do_delete(fx->coll, "a", res.rev, &res), SB_OK);

    /* Deleted: even the tombstone's revision conflicts, for a create too
     * (if_rev needs a live document, create an absent one). */
    assert_int_equal(do_put(fx->coll, "a", "x", res.rev, &res), SB_CONFLICT);
    o = if_rev_opts(res.rev);
    assert_int_equal(sb_create(fx->coll, "a", 1, "x", 1, &o, &res),
                     SB_CONFLICT);
    assert_int_equal(sb_store_revision(fx->store), r2 + 3);
    assert_absent(fx->coll, "a");
}

static void test_change_set_roundtrip(void **state)
{
    struct fx *fx = *state;
    unsigned char cs[SB_CHANGE_SET_MAX];
    sb_write_opts o = {.change_set = cs, .change_set_len = sizeof(cs)};
    struct got g;

    for (size_t i = 0; i < sizeof(cs); i++)
        cs[i] = (unsigned char)(i * 7); /* includes 0 and bytes >= 0x80 */
    assert_int_equal(sb_put(fx->coll, "a", 1, "p", 1, &o, NULL), SB_OK);
    o.change_set_len = 3;
    assert_int_equal(sb_delete(fx->coll, "a", 1, &o, NULL), SB_OK);
    o.change_set = "rb\0";
    assert_int_equal(sb_rollback_steps(fx->coll, "a", 1, 1, &o, NULL), SB_OK);

    g = read_version(fx->coll, "a", 1);
    assert_int_equal(g.view.change_set_len, sizeof(cs));
    assert_memory_equal(g.change_set, cs, sizeof(cs));
    g = read_as_of(fx->coll, "a", 2);
    assert_int_equal(g.view.change_set_len, 3);
    assert_memory_equal(g.change_set, cs, 3);
    g = read_get(fx->coll, "a");
    assert_int_equal(g.view.change_set_len, 3);
    assert_memory_equal(g.change_set, "rb\0", 3);

    /* A zero-length change set reads back as none. */
    o.change_set_len = 0;
    assert_int_equal(sb_put(fx->coll, "a", 1, "q", 1, &o, NULL), SB_OK);
    assert_null(read_get(fx->coll, "a").view.change_set);
}

static void test_revisions_and_time(void **state)
{
    struct fx *fx = *state;
    sb_coll *colls[3] = {fx->coll, open_coll(fx->store, "b"),
                         open_coll(fx->store, "c")};
    int64_t last_time = 0;
    sb_result res;

    for (uint64_t i = 1; i <= 30; i++) {
        sb_coll *c = colls[i % 3];
        struct got g;

        assert_int_equal(do_put(c, "same-id", "p", 0, &res), SB_OK);
        assert_int_equal(res.rev, i);
        assert_int_equal(sb_store_revision(fx->store), i);

        /* A failed write in between consumes nothing. */
        assert_int_equal(do_create(c, "same-id", "p", &res), SB_EXISTS);

        g = read_get(c, "same-id");
        assert_int_equal(g.view.rev, i);
        assert_true(g.view.time_ns >= last_time);
        assert_true(g.view.time_ns > 1000000000LL * 1000000000LL); /* 2001 */
        last_time = g.view.time_ns;
    }
}

/* ------------------------------------------------------------------ */
/* History and version lookup                                         */
/* ------------------------------------------------------------------ */

static void test_history(void **state)
{
    struct fx *fx = *state;
    sb_view views[2];
    size_t count = 0;

    read_begin();
    assert_int_equal(sb_history(fx->coll, "a", 1, views, 2, &count),
                     SB_NOT_FOUND);
    read_end();

    put_ok(fx->coll, "a", "1");
    put_ok(fx->coll, "b", "x");
    put_ok(fx->coll, "a", "2");
    delete_ok(fx->coll, "a");
    assert_history(fx->coll, "a", (uint64_t[]){4, 3, 1}, 3);

    /* A smaller array: filled up to cap, count still the whole. */
    memset(views, 0, sizeof(views));
    read_begin();
    assert_int_equal(sb_history(fx->coll, "a", 1, views, 1, &count), SB_OK);
    assert_int_equal(count, 3);
    assert_int_equal(views[0].rev, 4);
    assert_int_equal(views[0].op, SB_OP_DELETE);
    assert_int_equal(views[1].rev, 0);
    assert_int_equal(sb_history(fx->coll, "a", 1, NULL, 0, &count), SB_OK);
    assert_int_equal(count, 3);
    read_end();
}

static void test_version_get(void **state)
{
    struct fx *fx = *state;
    struct got g;

    put_ok(fx->coll, "a", "1");
    put_ok(fx->coll, "b", "x");
    put_ok(fx->coll, "a", "2");

    g = read_version(fx->coll, "a", 1);
    assert_int_equal(g.status, SB_OK);
    assert_int_equal(g.view.rev, 1);
    assert_payload(&g, "1");
    assert_int_equal(read_version(fx->coll, "a", 2).status, SB_NOT_FOUND);
    assert_int_equal(read_version(fx->coll, "a", 9).status, SB_NOT_FOUND);
    assert_int_equal(read_version(fx->coll, "z", 1).status, SB_NOT_FOUND);
}

static void test_get_as_of(void **state)
{
    struct fx *fx = *state;
    struct got g;

    put_ok(fx->coll, "other", "o");  /* 1 */
    put_ok(fx->coll, "a", "A");      /* 2 */
    put_ok(fx->coll, "other", "o2"); /* 3 */
    put_ok(fx->coll, "a", "B");      /* 4 */
    delete_ok(fx->coll, "a");        /* 5 */

    /* Before the document existed: NOT_FOUND with rev 0. */
    g = read_as_of(fx->coll, "a", 1);
    assert_int_equal(g.status, SB_NOT_FOUND);
    assert_int_equal(g.view.rev, 0);
    assert_as_of(fx->coll, "a", 2, "A");
    assert_as_of(fx->coll, "a", 3, "A");
    assert_as_of(fx->coll, "a", 4, "B");

    /* At the delete: NOT_FOUND, filled with the tombstone. */
    g = read_as_of(fx->coll, "a", 5);
    assert_int_equal(g.status, SB_NOT_FOUND);
    assert_int_equal(g.view.rev, 5);
    assert_int_equal(g.view.absent, 1);

    assert_as_of_status(fx->coll, "a", 6, SB_FUTURE);
    assert_as_of_status(fx->coll, "a", UINT64_MAX, SB_FUTURE);
    assert_as_of_status(fx->coll, "a", 0, SB_INVALID);
    assert_as_of_status(fx->coll, "never", 3, SB_NOT_FOUND);
}

/* ------------------------------------------------------------------ */
/* Rollback                                                           */
/* ------------------------------------------------------------------ */

static void test_rollback_steps_chain(void **state)
{
    struct fx *fx = *state;
    sb_result res;
    struct got g;

    put_ok(fx->coll, "a", "A"); /* 1 */
    put_ok(fx->coll, "a", "B"); /* 2 */
    put_ok(fx->coll, "a", "C"); /* 3 */

    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 4, 0, 2);
    assert_int_equal(res.created, 0);
    g = read_get(fx->coll, "a");
    assert_int_equal(g.view.op, SB_OP_ROLLBACK);
    assert_int_equal(g.view.restored, 2);
    assert_payload(&g, "B");

    /* Rev 4 follows what 2 followed: rev 1. */
    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 5, 0, 1);
    assert_live(fx->coll, "a", "A");

    /* Rev 5 follows the origin: absence, restored 0. */
    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 6, 1, 0);
    g = read_get(fx->coll, "a");
    assert_int_equal(g.status, SB_NOT_FOUND);
    assert_int_equal(g.view.op, SB_OP_ROLLBACK);
    assert_int_equal(g.view.absent, 1);
    assert_int_equal(g.view.restored, 0);

    /* A rollback to the origin follows nothing. */
    assert_int_equal(do_steps(fx->coll, "a", 1, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 0);
    assert_int_equal(sb_store_revision(fx->store), 6);
    assert_history(fx->coll, "a", (uint64_t[]){6, 5, 4, 3, 2, 1}, 6);
}

/* Writes the same history into two documents. */
static void write_abcd(sb_coll *c, const char *x, const char *y)
{
    const char *p[] = {"A", "B", "C", "D"};

    for (int i = 0; i < 4; i++) {
        put_ok(c, x, p[i]);
        put_ok(c, y, p[i]);
    }
}

static void test_two_rollbacks_equal_one(void **state)
{
    struct fx *fx = *state;
    sb_result rx, ry;

    write_abcd(fx->coll, "x", "y");
    assert_int_equal(do_steps(fx->coll, "x", 1, 0, &rx), SB_OK);
    assert_int_equal(do_steps(fx->coll, "x", 1, 0, &rx), SB_OK);
    assert_int_equal(do_steps(fx->coll, "y", 2, 0, &ry), SB_OK);
    assert_int_equal(rx.restored, ry.restored - 1); /* x's B is y's B - 1 */
    assert_live(fx->coll, "x", "B");
    assert_live(fx->coll, "y", "B");

    /* And both go on the same way: B, then A, then absence, then nothing. */
    assert_int_equal(do_steps(fx->coll, "x", 3, 0, &rx), SB_HISTORY_EXHAUSTED);
    assert_int_equal(do_steps(fx->coll, "y", 3, 0, &ry), SB_HISTORY_EXHAUSTED);
    assert_int_equal(rx.available, 2);
    assert_int_equal(ry.available, 2);
    assert_int_equal(do_steps(fx->coll, "x", 1, 0, &rx), SB_OK);
    assert_int_equal(do_steps(fx->coll, "y", 1, 0, &ry), SB_OK);
    assert_live(fx->coll, "x", "A");
    assert_live(fx->coll, "y", "A");
}

static void test_rollback_create_and_delete(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    /* Rollback of a create leaves the document absent. */
    assert_int_equal(do_create(fx->coll, "a", "A", &res), SB_OK);
    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 2, 1, 0);
    assert_absent(fx->coll, "a");
    assert_int_equal(do_delete(fx->coll, "a", 0, &res), SB_NOT_FOUND);

    /* Rollback of a delete restores what it deleted. */
    put_ok(fx->coll, "b", "B"); /* 3 */
    delete_ok(fx->coll, "b");   /* 4 */
    assert_rolled(do_steps(fx->coll, "b", 1, 0, &res), &res, 5, 0, 3);
    assert_live(fx->coll, "b", "B");

    /* Steps pass through a delete: put C over it, then go back two. */
    delete_ok(fx->coll, "b");   /* 6 */
    put_ok(fx->coll, "b", "C"); /* 7 */
    assert_rolled(do_steps(fx->coll, "b", 1, 0, &res), &res, 8, 1, 6);
    assert_absent(fx->coll, "b");
    /* 8 follows what 6 followed: 5, the rollback that restored B. */
    assert_rolled(do_steps(fx->coll, "b", 1, 0, &res), &res, 9, 0, 5);
    assert_live(fx->coll, "b", "B");
}

static void test_rollback_through_rollback(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    put_ok(fx->coll, "a", "A");                                   /* 1 */
    put_ok(fx->coll, "a", "B");                                   /* 2 */
    put_ok(fx->coll, "a", "C");                                   /* 3 */
    assert_int_equal(do_steps(fx->coll, "a", 1, 0, &res), SB_OK); /* 4: B */
    put_ok(fx->coll, "a", "D");                                   /* 5 */

    /* 5 follows 4 (B), which follows 1 (A). */
    assert_rolled(do_steps(fx->coll, "a", 2, 0, &res), &res, 6, 0, 1);
    assert_live(fx->coll, "a", "A");

    /* A rollback of a rollback: 6 follows origin, so its undo is absence. */
    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 7, 1, 0);
}

static void test_rollback_to(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    put_ok(fx->coll, "a", "A"); /* 1 */
    put_ok(fx->coll, "b", "x"); /* 2 */
    put_ok(fx->coll, "a", "B"); /* 3 */
    put_ok(fx->coll, "b", "y"); /* 4 */
    put_ok(fx->coll, "a", "C"); /* 5 */
    delete_ok(fx->coll, "a");   /* 6 */

    /* Between a's versions: the state as of that store revision. */
    assert_rolled(do_to(fx->coll, "a", 4, 0, &res), &res, 7, 0, 3);
    assert_live(fx->coll, "a", "B");
    assert_int_equal(read_get(fx->coll, "a").view.op, SB_OP_ROLLBACK);

    /* 7 follows what 3 followed: 1. */
    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 8, 0, 1);
    assert_live(fx->coll, "a", "A");

    /* To the tombstone: absent, restored = its revision. */
    assert_rolled(do_to(fx->coll, "a", 6, 0, &res), &res, 9, 1, 6);
    assert_absent(fx->coll, "a");

    /* To the newest revision: the current state again. */
    assert_rolled(do_to(fx->coll, "b", 9, 0, &res), &res, 10, 0, 4);
    assert_live(fx->coll, "b", "y");

    /* Before b existed: the origin, which follows nothing. */
    assert_rolled(do_to(fx->coll, "b", 1, 0, &res), &res, 11, 1, 0);
    assert_absent(fx->coll, "b");
    assert_int_equal(do_steps(fx->coll, "b", 1, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 0);

    assert_int_equal(do_to(fx->coll, "a", 12, 0, &res), SB_FUTURE);
    assert_int_equal(do_to(fx->coll, "a", 0, 0, &res), SB_INVALID);
    assert_int_equal(sb_store_revision(fx->store), 11);
}

/* A rollback's if_rev must name the current version, a deletion included,
 * and a refused one changes nothing. */
static void test_rollback_if_rev(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    put_ok(fx->coll, "a", "A");              /* 1 */
    uint64_t b = put_ok(fx->coll, "a", "B"); /* 2 */
    assert_int_equal(do_steps(fx->coll, "a", 1, 1, &res), SB_CONFLICT);
    assert_int_equal(do_to(fx->coll, "a", 1, 1, &res), SB_CONFLICT);
    assert_int_equal(sb_store_revision(fx->store), 2);
    assert_live(fx->coll, "a", "B");
    assert_rolled(do_to(fx->coll, "a", 1, b, &res), &res, 3, 0, 1);
    assert_live(fx->coll, "a", "A");

    /* The revision of a delete: the undo goes through while the delete is
     * the latest write, and only then. */
    uint64_t d = delete_ok(fx->coll, "a"); /* 4 */
    assert_rolled(do_steps(fx->coll, "a", 1, d, &res), &res, 5, 0, 3);
    assert_live(fx->coll, "a", "A");
    assert_int_equal(do_steps(fx->coll, "a", 1, d, &res), SB_CONFLICT);
    assert_int_equal(sb_store_revision(fx->store), 5);

    /* Other writes still want a live document. */
    d = delete_ok(fx->coll, "a"); /* 6 */
    assert_int_equal(do_put(fx->coll, "a", "C", d, &res), SB_CONFLICT);
    assert_int_equal(do_delete(fx->coll, "a", d, &res), SB_NOT_FOUND);
    assert_absent(fx->coll, "a");
}

static void test_rollback_never_written(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    put_ok(fx->coll, "a", "A");
    assert_int_equal(do_steps(fx->coll, "z", 1, 0, &res), SB_NOT_FOUND);
    assert_int_equal(do_to(fx->coll, "z", 1, 0, &res), SB_NOT_FOUND);
    assert_int_equal(sb_store_revision(fx->store), 1);
}

/* History 3. */
static void test_history_exhausted(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    put_ok(fx->coll, "a", "A"); /* 1 */
    put_ok(fx->coll, "a", "B"); /* 2 */
    assert_int_equal(do_steps(fx->coll, "a", 3, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 2); /* A, then absence */

    put_ok(fx->coll, "a", "C"); /* 3 */
    put_ok(fx->coll, "a", "D"); /* 4: rev 1 trimmed */
    memset(&res, 0, sizeof(res));
    assert_int_equal(do_steps(fx->coll, "a", 3, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 2); /* C, B; A is gone */
    assert_int_equal(do_to(fx->coll, "a", 1, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 2);
    assert_int_equal(sb_store_revision(fx->store), 4);
    assert_live(fx->coll, "a", "D");

    assert_rolled(do_steps(fx->coll, "a", 2, 0, &res), &res, 5, 0, 2);
    assert_live(fx->coll, "a", "B");
    /* 5 follows 1, trimmed. */
    assert_int_equal(do_steps(fx->coll, "a", 1, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 0);
}

/* History 1: only the current version is kept. */
static void test_history_one(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    put_ok(fx->coll, "a", "A");
    /* The create follows the origin, always reachable. */
    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 2, 1, 0);
    assert_history(fx->coll, "a", (uint64_t[]){2}, 1);

    put_ok(fx->coll, "b", "A"); /* 3 */
    put_ok(fx->coll, "b", "B"); /* 4 */
    assert_int_equal(do_steps(fx->coll, "b", 1, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 0);
    assert_as_of_status(fx->coll, "b", 3, SB_HISTORY_EXHAUSTED);
    assert_as_of(fx->coll, "b", 4, "B");
}

/* History 2: a rollback restores a create whose version is trimmed. */
static void test_origin_after_trim(void **state)
{
    struct fx *fx = *state;
    sb_result res;

    put_ok(fx->coll, "a", "A"); /* 1 */
    put_ok(fx->coll, "a", "B"); /* 2 */
    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 3, 0, 1);
    assert_history(fx->coll, "a", (uint64_t[]){3, 2}, 2);

    /* 3 follows the origin: reachable though rev 1 is gone. */
    assert_rolled(do_steps(fx->coll, "a", 1, 0, &res), &res, 4, 1, 0);

    /* The state as of rev 1 is another matter: rev 1 is trimmed and the
     * oldest retained version (3) is not the first, so it is unknown. */
    assert_int_equal(do_to(fx->coll, "a", 1, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 0); /* 4 follows nothing */
    assert_as_of_status(fx->coll, "a", 1, SB_HISTORY_EXHAUSTED);
}

/* History 4: x gets the odd revisions, y the even ones. */
static void test_ring_wraparound(void **state)
{
    struct fx *fx = *state;
    char p[16];
    sb_result res;

    for (int i = 1; i <= 20; i++) {
        snprintf(p, sizeof(p), "r%d", i);
        put_ok(fx->coll, i % 2 ? "x" : "y", p);
    }
    assert_history(fx->coll, "x", (uint64_t[]){19, 17, 15, 13}, 4);
    assert_history(fx->coll, "y", (uint64_t[]){20, 18, 16, 14}, 4);

    assert_as_of(fx->coll, "x", 20, "r19");
    assert_as_of(fx->coll, "x", 14, "r13");
    assert_as_of(fx->coll, "x", 13, "r13");
    assert_as_of_status(fx->coll, "x", 12, SB_HISTORY_EXHAUSTED);
    assert_as_of_status(fx->coll, "x", 1, SB_HISTORY_EXHAUSTED);
    assert_as_of_status(fx->coll, "x", 21, SB_FUTURE);
    assert_int_equal(read_version(fx->coll, "x", 13).status, SB_OK);
    assert_int_equal(read_version(fx->coll, "x", 11).status, SB_NOT_FOUND);

    assert_int_equal(do_steps(fx->coll, "x", 4, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 3);
    assert_int_equal(do_to(fx->coll, "x", 12, 0, &res), SB_HISTORY_EXHAUSTED);
    assert_int_equal(res.available, 3);

    /* A rollback is a write too: it pushes 13 out. */
    assert_rolled(do_to(fx->coll, "x", 16, 0, &res), &res, 21, 0, 15);
    assert_history(fx->coll, "x", (uint64_t[]){21, 19, 17, 15}, 4);
    assert_as_of_status(fx->coll, "x", 14, SB_HISTORY_EXHAUSTED);
    assert_as_of(fx->coll, "x", 15, "r15");
    assert_live(fx->coll, "x", "r15");
}

/* ------------------------------------------------------------------ */
/* Scan                                                               */
/* ------------------------------------------------------------------ */

#define SCAN_MAX 64

struct scan_log {
    int stop_after; /* stop once this many were seen; 0: never */
    int calls;
    struct got docs[SCAN_MAX];
};

static int on_scan_log(void *ctx, const sb_view *doc)
{
    struct scan_log *log = ctx;

    assert_true(log->calls < SCAN_MAX);
    assert_int_equal(doc->absent, 0);
    copy_view(doc, &log->docs[log->calls]);
    log->calls++;
    return log->stop_after && log->calls >= log->stop_after;
}

/* One page of a scan: up to `page` documents after `after` (NULL: start). */
static struct scan_log *scan_page(sb_coll *c, const struct got *after, int page)
{
    struct scan_log *log = calloc(1, sizeof(*log));

    assert_non_null(log);
    log->stop_after = page;
    read_begin();
    assert_int_equal(sb_scan(c, after ? after->id : NULL,
                             after ? after->view.id_len : 0, on_scan_log, log),
                     SB_OK);
    read_end();
    return log;
}

static int id_index(const struct got *g)
{
    char buf[16] = {0};
    int i = -1;

    assert_true(g->view.id_len < sizeof(buf));
    memcpy(buf, g->id, g->view.id_len);
    assert_int_equal(sscanf(buf, "doc-%d", &i), 1);
    return i;
}

/* 50 documents doc-0..doc-49: every fifth deleted, doc-1 rolled back to
 * absence; the others live with their id as payload. */
static void fill_scan_docs(sb_coll *c)
{
    char id[16];

    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "doc-%d", i);
        put_ok(c, id, i % 5 == 0 ? "gone" : id);
        if (i % 5 == 0)
            delete_ok(c, id);
    }
    assert_int_equal(do_steps(c, "doc-1", 1, 0, NULL), SB_OK);
}

static int scan_live(int i)
{
    return i % 5 != 0 && i != 1;
}

static void test_scan_pages(void **state)
{
    struct fx *fx = *state;
    int seen[50] = {0};
    struct got last;
    int have_last = 0, pages = 0;

    fill_scan_docs(fx->coll);

    /* Pages of 7, each resumed after the last id of the previous one. */
    for (;;) {
        struct scan_log *log = scan_page(fx->coll, have_last ? &last : NULL, 7);
        int calls = log->calls;

        for (int k = 0; k < calls; k++) {
            int i = id_index(&log->docs[k]);
            assert_true(i >= 0 && i < 50);
            assert_payload(&log->docs[k], log->docs[k].id);
            seen[i]++;
        }
        if (calls > 0) {
            last = log->docs[calls - 1];
            have_last = 1;
        }
        free(log);
        if (calls < 7)
            break;
        assert_true(++pages < 50); /* the paging must end */
    }
    for (int i = 0; i < 50; i++)
        assert_int_equal(seen[i], scan_live(i));
}

static void test_scan_edges(void **state)
{
    struct fx *fx = *state;
    struct scan_log *log = scan_page(fx->coll, NULL, 0);
    struct got after;
    int calls = 0;

    /* An empty collection. */
    assert_int_equal(log->calls, 0);
    free(log);

    /* The callback stops the scan: still SB_OK. */
    fill_scan_docs(fx->coll);
    log = scan_page(fx->coll, NULL, 1);
    assert_int_equal(log->calls, 1);
    free(log);

    /* Resuming after a deleted document is fine: it was written. */
    memset(&after, 0, sizeof(after));
    memcpy(after.id, "doc-0", 5);
    after.view.id_len = 5;
    log = scan_page(fx->coll, &after, 0);
    assert_true(log->calls <= 39);
    for (int k = 0; k < log->calls; k++)
        assert_true(scan_live(id_index(&log->docs[k])));
    free(log);

    /* After an id never written in this collection: NOT_FOUND. */
    read_begin();
    assert_int_equal(sb_scan(fx->coll, "doc-99", 6, on_scan_count, &calls),
                     SB_NOT_FOUND);
    read_end();
    assert_int_equal(calls, 0);
}

/* ------------------------------------------------------------------ */
/* Stores side by side, and the story that started the project        */
/* ------------------------------------------------------------------ */

static int on_scan_tally(void *ctx, const sb_view *doc)
{
    (*(size_t *)ctx)++;
    return 0;
}

/*
 * Enough documents for the table to be resized several times, on threads
 * of its own, while writes go on; every document stays reachable, and the
 * store closes cleanly even if a resize is still running.
 */
static void test_index_grows(void **state)
{
    struct fx *fx = *state;
    enum { N = 20000 };
    char id[32];
    sb_view v;

    for (int i = 0; i < N; i++) {
        int n = snprintf(id, sizeof(id), "grow-%d", i);
        assert_int_equal(
            sb_put(fx->coll, id, (size_t)n, id, (size_t)n, NULL, NULL), SB_OK);
    }
    sb_read_lock();
    for (int i = 0; i < N; i++) {
        int n = snprintf(id, sizeof(id), "grow-%d", i);
        assert_int_equal(sb_get(fx->coll, id, (size_t)n, &v), SB_OK);
        assert_memory_equal(v.payload, id, (size_t)n);
    }
    size_t seen = 0;
    assert_int_equal(sb_scan(fx->coll, NULL, 0, on_scan_tally, &seen), SB_OK);
    sb_read_unlock();
    assert_int_equal(seen, N);

    sb_store *other = open_store(4);
    sb_coll *oc = open_coll(other, "docs");
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(id, sizeof(id), "g%d", i);
        assert_int_equal(sb_put(oc, id, (size_t)n, "x", 1, NULL, NULL), SB_OK);
    }
    sb_store_close(other); /* a resize may be running: close waits for it */
}

static void test_two_stores(void **state)
{
    struct fx *fx = *state;
    sb_store *other = open_store(4);
    sb_coll *oc = open_coll(other, "docs");
    sb_result res;

    put_ok(fx->coll, "a", "first store");
    put_ok(fx->coll, "a", "again");
    assert_int_equal(read_get(oc, "a").status, SB_NOT_FOUND);
    assert_int_equal(sb_store_revision(other), 0);

    assert_int_equal(do_put(oc, "a", "second store", 0, &res), SB_OK);
    assert_int_equal(res.rev, 1);
    assert_int_equal(res.created, 1);
    assert_int_equal(sb_store_revision(fx->store), 2);
    assert_live(fx->coll, "a", "again");
    assert_live(oc, "a", "second store");
    sb_store_close(other);
    assert_live(fx->coll, "a", "again");
}

static void test_origin_story(void **state)
{
    struct fx *fx = *state;
    sb_coll *users = open_coll(fx->store, "users");
    const char *id = "jose@email.com";
    /* "é" is C3 A9 in UTF-8. */
    const char *first =
        "{\"name\":\"Jos\xc3\xa9\",\"email\":\"jose@email.com\"}";
    const char *second =
        "{\"name\":\"Jos\xc3\xa9 Filho\",\"email\":\"jose@email.com\"}";
    struct scan_log *log;
    sb_result res;

    assert_int_equal(do_create(users, id, first, &res), SB_OK);
    assert_int_equal(do_put(users, id, second, 0, &res), SB_OK);
    assert_int_equal(do_steps(users, id, 1, 0, &res), SB_OK);

    log = scan_page(users, NULL, 0);
    assert_int_equal(log->calls, 1);
    assert_int_equal(log->docs[0].view.id_len, strlen(id));
    assert_memory_equal(log->docs[0].id, id, strlen(id));
    assert_payload(&log->docs[0], first);
    free(log);
}

#define T(f)     cmocka_unit_test_setup_teardown(f, setup, teardown)
#define TH(f, s) cmocka_unit_test_setup_teardown(f, s, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_index_grows, setup, teardown),
        cmocka_unit_test(test_status_str),
        cmocka_unit_test(test_op_str),
        cmocka_unit_test(test_options_and_open),
        cmocka_unit_test(test_name_valid),
        cmocka_unit_test(test_id_valid),
        T(test_default_history_depth),
        T(test_thread_register_twice),
        T(test_unregistered_thread),
        T(test_collection_open_invalid),
        T(test_write_invalid_args),
        T(test_read_invalid_args),
        T(test_collection_each),
        T(test_collection_find_and_name),
        T(test_create),
        T(test_put_created_and_op),
        T(test_get_fields),
        T(test_delete),
        T(test_if_rev),
        T(test_change_set_roundtrip),
        T(test_revisions_and_time),
        T(test_history),
        T(test_version_get),
        T(test_get_as_of),
        T(test_rollback_steps_chain),
        T(test_two_rollbacks_equal_one),
        T(test_rollback_create_and_delete),
        T(test_rollback_through_rollback),
        T(test_rollback_to),
        T(test_rollback_if_rev),
        T(test_rollback_never_written),
        TH(test_history_exhausted, setup_h3),
        TH(test_history_one, setup_h1),
        TH(test_origin_after_trim, setup_h2),
        TH(test_ring_wraparound, setup_h4),
        T(test_scan_pages),
        T(test_scan_edges),
        T(test_two_stores),
        T(test_origin_story),
    };
    int failed;

    if (sb_thread_register() != SB_OK)
        return 1;
    failed = cmocka_run_group_tests(tests, NULL, NULL);
    sb_thread_unregister();
    return failed;
}
