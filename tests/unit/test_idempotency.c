/*
 * test_idempotency.c - unit tests of snapbackd's Idempotency-Key table
 * (server/idempotency.h): replay, reuse, keys in flight, what is
 * remembered, the bounds on keys, bytes and age, the fingerprint, and many
 * threads racing on one key (run under ThreadSanitizer in CI).
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

#include "idempotency.h"

#define DAY_NS ((int64_t)24 * 3600 * 1000000000)

/* An answer with two headers and a body of `body_len` bytes of 'x'. */
static void answer(struct api_resp *r, int status, size_t body_len,
                   uint64_t lsn)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    r->reason = "Reason";
    r->headers[0].name = "etag";
    r->headers[0].value = strdup("\"7\"");
    r->headers[1].name = "x-change-set";
    r->headers[1].value = strdup("agent-1");
    r->nheaders = 2;
    if (body_len > 0) {
        r->body = malloc(body_len + 1);
        memset(r->body, 'x', body_len);
        r->body[body_len] = '\0';
        r->body_len = body_len;
    }
    r->lsn = lsn;
}

static struct idem_fp fp_of(const char *body)
{
    struct api_req req = {.method = "POST",
                          .method_len = 4,
                          .target = "/c",
                          .target_len = 2,
                          .body = body,
                          .body_len = strlen(body)};
    struct idem_fp fp;
    idem_fingerprint(&req, &fp);
    return fp;
}

/* begin() on `key`, for callers that expect no replay. */
static enum idem_outcome begin(struct idem *t, const char *key,
                               const struct idem_fp *fp)
{
    struct api_resp replay = {0};
    enum idem_outcome o = idem_begin(t, key, strlen(key), fp, &replay);
    api_resp_free(&replay);
    return o;
}

/* Stores a 2xx answer for `key` through begin() and finish(). */
static void remember(struct idem *t, const char *key, const struct idem_fp *fp,
                     size_t body_len)
{
    struct api_resp r;
    assert_int_equal(begin(t, key, fp), IDEM_FIRST);
    answer(&r, 201, body_len, 0);
    idem_finish(t, key, strlen(key), &r);
    api_resp_free(&r);
}

static void test_replay_and_reuse(void **state)
{
    struct idem *t = idem_new(100, 1 << 20, DAY_NS);
    struct idem_fp fp = fp_of("{\"id\":\"a\"}"),
                   other = fp_of("{\"id\":\"b\"}");
    struct api_resp r, replay = {0};

    assert_int_equal(idem_begin(t, "k", 1, &fp, &replay), IDEM_FIRST);
    answer(&r, 201, 10, 42);
    idem_finish(t, "k", 1, &r);

    assert_int_equal(idem_begin(t, "k", 1, &fp, &replay), IDEM_REPLAY);
    assert_int_equal(replay.status, 201);
    assert_string_equal(replay.reason, "Reason");
    assert_int_equal(replay.nheaders, 2);
    assert_string_equal(replay.headers[0].name, "etag");
    assert_string_equal(replay.headers[0].value, "\"7\"");
    assert_string_equal(replay.headers[1].value, "agent-1");
    assert_int_equal(replay.body_len, 10);
    assert_memory_equal(replay.body, r.body, 10);
    assert_int_equal(replay.lsn, 42); /* the HTTP layer waits for it again */
    assert_ptr_not_equal(replay.body, r.body);
    api_resp_free(&replay);
    api_resp_free(&r);

    assert_int_equal(begin(t, "k", &other), IDEM_REUSED);
    assert_int_equal(begin(t, "K", &other),
                     IDEM_FIRST); /* keys are case-sensitive */
    idem_free(t);
}

static void test_only_success_is_remembered(void **state)
{
    struct idem *t = idem_new(100, 1 << 20, DAY_NS);
    struct idem_fp fp = fp_of("{}"), other = fp_of("[]");
    struct api_resp r;
    int statuses[] = {409, 400, 503, 304};

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        assert_int_equal(begin(t, "k", &fp), IDEM_FIRST);
        answer(&r, statuses[i], 5, 0);
        idem_finish(t, "k", 1, &r);
        api_resp_free(&r);
    }
    /* Forgotten with the key: another request may now use it. */
    assert_int_equal(begin(t, "k", &other), IDEM_FIRST);
    idem_free(t); /* frees the key still in flight */
}

static void test_in_flight(void **state)
{
    struct idem *t = idem_new(100, 1 << 20, DAY_NS);
    struct idem_fp fp = fp_of("{}"), other = fp_of("[]");
    struct api_resp r;

    assert_int_equal(begin(t, "k", &fp), IDEM_FIRST);
    assert_int_equal(begin(t, "k", &fp), IDEM_IN_FLIGHT);
    assert_int_equal(begin(t, "k", &other), IDEM_REUSED);
    answer(&r, 204, 0, 0);
    idem_finish(t, "k", 1, &r);
    api_resp_free(&r);
    assert_int_equal(begin(t, "k", &fp), IDEM_REPLAY);
    idem_free(t);
}

static void test_oldest_keys_go_first(void **state)
{
    struct idem *t = idem_new(3, 1 << 20, DAY_NS);
    struct idem_fp fp = fp_of("{}");
    char key[8];

    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        remember(t, key, &fp, 1);
    }
    for (int i = 4; i >= 2; i--) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(begin(t, key, &fp), IDEM_REPLAY);
    }
    /* k0 and k1 were dropped; begin() puts them in flight, not on the list. */
    assert_int_equal(begin(t, "k0", &fp), IDEM_FIRST);
    assert_int_equal(begin(t, "k1", &fp), IDEM_FIRST);
    assert_int_equal(begin(t, "k2", &fp), IDEM_REPLAY);
    idem_free(t);
}

static void test_byte_bound(void **state)
{
    struct idem *t = idem_new(100, 25000, DAY_NS);
    struct idem_fp fp = fp_of("{}");

    remember(t, "a", &fp, 10000);
    remember(t, "b", &fp, 10000);
    assert_int_equal(begin(t, "a", &fp), IDEM_REPLAY);
    remember(t, "c", &fp, 10000); /* three do not fit: "a" goes */
    assert_int_equal(begin(t, "b", &fp), IDEM_REPLAY);
    assert_int_equal(begin(t, "c", &fp), IDEM_REPLAY);
    assert_int_equal(begin(t, "a", &fp), IDEM_FIRST);

    remember(t, "huge", &fp, 30000); /* larger than the bound: not kept */
    assert_int_equal(begin(t, "huge", &fp), IDEM_FIRST);
    idem_free(t);
}

static void test_window(void **state)
{
    struct idem *t =
        idem_new(100, 1 << 20, 0); /* every answer is too old at once */
    struct idem_fp fp = fp_of("{}");

    remember(t, "k", &fp, 3);
    assert_int_equal(begin(t, "k", &fp), IDEM_FIRST);
    idem_free(t);
}

static void test_key_validity(void **state)
{
    char long_key[130];
    memset(long_key, 'a', sizeof(long_key));

    assert_true(idem_key_valid("a", 1));
    assert_true(idem_key_valid(" ~!", 3));
    assert_true(idem_key_valid(long_key, 128));
    assert_false(idem_key_valid(long_key, 129));
    assert_false(idem_key_valid("", 0));
    assert_false(idem_key_valid("a\tb", 3));
    assert_false(idem_key_valid("a\x7f", 2));
    assert_false(idem_key_valid("\xc3\xa9", 2));
}

static int fp_equal(const struct idem_fp *a, const struct idem_fp *b)
{
    return a->lo == b->lo && a->hi == b->hi;
}

static void test_fingerprint(void **state)
{
    struct api_req base = {.method = "PUT",
                           .method_len = 3,
                           .target = "/c/a",
                           .target_len = 4,
                           .change_set = "cs",
                           .change_set_len = 2,
                           .body = "{}",
                           .body_len = 2};
    struct api_req r = base;
    struct idem_fp a, b;

    idem_fingerprint(&base, &a);
    /* Headers outside the fingerprint do not change it. */
    r.actor = "me";
    r.actor_len = 2;
    r.content_type = "application/json";
    r.content_type_len = 16;
    idem_fingerprint(&r, &b);
    assert_true(fp_equal(&a, &b));

    r = base;
    r.method = "POST";
    r.method_len = 4;
    idem_fingerprint(&r, &b);
    assert_false(fp_equal(&a, &b));
    r = base;
    r.target = "/c/b";
    idem_fingerprint(&r, &b);
    assert_false(fp_equal(&a, &b));
    r = base;
    r.change_set = NULL;
    r.change_set_len = 0;
    idem_fingerprint(&r, &b);
    assert_false(fp_equal(&a, &b));
    r = base;
    r.body = "{ }";
    r.body_len = 3;
    idem_fingerprint(&r, &b);
    assert_false(fp_equal(&a, &b));
    /* Parts are delimited: moving a byte from one to the next changes it. */
    r = base;
    r.target = "/c/a{";
    r.target_len = 5;
    r.body = "}";
    r.body_len = 1;
    idem_fingerprint(&r, &b);
    assert_false(fp_equal(&a, &b));
    /* No body and an empty one differ. */
    r = base;
    r.body = "";
    r.body_len = 0;
    idem_fingerprint(&r, &a);
    r.body = NULL;
    idem_fingerprint(&r, &b);
    assert_false(fp_equal(&a, &b));
}

/* ------------------------------------------------------------------ */
/* Threads racing on one key                                          */
/* ------------------------------------------------------------------ */

#define RACERS 8
#define ROUNDS 2000

struct race {
    struct idem *t;
    pthread_barrier_t *start;
    int firsts, replays, in_flight, other;
};

static void *racer(void *arg)
{
    struct race *r = arg;
    struct idem_fp fp = fp_of("{}");
    char key[16];

    pthread_barrier_wait(r->start);
    for (int i = 0; i < ROUNDS; i++) {
        struct api_resp replay = {0}, ans;
        snprintf(key, sizeof(key), "race-%d", i);
        switch (idem_begin(r->t, key, strlen(key), &fp, &replay)) {
        case IDEM_FIRST:
            r->firsts++;
            answer(&ans, 200, 16, (uint64_t)i);
            idem_finish(r->t, key, strlen(key), &ans);
            api_resp_free(&ans);
            break;
        case IDEM_REPLAY:
            r->replays++;
            if (replay.lsn != (uint64_t)i || replay.body_len != 16)
                r->other++;
            break;
        case IDEM_IN_FLIGHT:
            r->in_flight++;
            break;
        default:
            r->other++;
        }
        api_resp_free(&replay);
    }
    return NULL;
}

static void test_one_writer_per_key(void **state)
{
    struct idem *t = idem_new(ROUNDS, 1 << 24, DAY_NS);
    pthread_barrier_t start;
    pthread_t threads[RACERS];
    struct race races[RACERS];
    int firsts = 0, seen = 0;

    pthread_barrier_init(&start, NULL, RACERS);
    for (int i = 0; i < RACERS; i++) {
        races[i] = (struct race){.t = t, .start = &start};
        assert_int_equal(pthread_create(&threads[i], NULL, racer, &races[i]),
                         0);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(threads[i], NULL);
        assert_int_equal(races[i].other, 0);
        firsts += races[i].firsts;
        seen += races[i].firsts + races[i].replays + races[i].in_flight;
    }
    assert_int_equal(firsts,
                     ROUNDS); /* exactly one request per key went through */
    assert_int_equal(seen, RACERS * ROUNDS);
    pthread_barrier_destroy(&start);
    idem_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_and_reuse),
        cmocka_unit_test(test_only_success_is_remembered),
        cmocka_unit_test(test_in_flight),
        cmocka_unit_test(test_oldest_keys_go_first),
        cmocka_unit_test(test_byte_bound),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_key_validity),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_one_writer_per_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
