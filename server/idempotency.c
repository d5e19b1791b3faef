/*
 * idempotency.c - the Idempotency-Key table; see idempotency.h.
 *
 * Layout.  A chained hash table of entries, keyed by the key's bytes (the
 * bucket from XXH3 of them), and a list of the remembered answers in the
 * order they were stored, oldest first.  Entries in flight are in the hash
 * table only: they are never expired nor evicted, so the request that owns
 * one always finds it again in idem_finish(); there are at most as many as
 * requests being handled at once.  Remembered answers leave from the old
 * end of the list: expired ones on every call, and more while the table is
 * over its number of keys or bytes.
 *
 * Invariants, under `lock`: an entry is in exactly one bucket chain; it is
 * on the list if and only if it is not in flight; `count` and `bytes` sum
 * the entries on the list.
 */
#include "idempotency.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t, to hash on the stack */
#include <xxhash.h>

struct entry {
    struct entry *chain;         /* next in the bucket */
    struct entry *older, *newer; /* the list of remembered answers */
    uint64_t hash;               /* XXH3 of the key */
    struct idem_fp fp;
    int in_flight;
    int64_t stored_ns; /* when the answer was stored, monotonic clock */
    size_t bytes;      /* what the entry counts against max_bytes */
    struct api_resp answer;
    size_t key_len;
    char key[];
};

struct idem {
    pthread_mutex_t lock;
    struct entry **buckets; /* NULL until the first key */
    size_t mask;            /* buckets - 1 */
    struct entry *oldest, *newest;
    size_t count, bytes; /* of the remembered answers */
    size_t max_keys, max_bytes;
    int64_t window_ns;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct idem *idem_new(size_t max_keys, size_t max_bytes, int64_t window_ns)
{
    struct idem *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }
    size_t n = 64;
    while (n < max_keys && n < ((size_t)1 << 20)) /* about one entry per bucket */
        n *= 2;
    t->mask = n - 1;
    t->max_keys = max_keys;
    t->max_bytes = max_bytes;
    t->window_ns = window_ns;
    return t;
}

static void entry_free(struct entry *e)
{
    api_resp_free(&e->answer);
    free(e);
}

void idem_free(struct idem *t)
{
    if (t == NULL)
        return;
    if (t->buckets != NULL) {
        for (size_t i = 0; i <= t->mask; i++) {
            struct entry *e = t->buckets[i];
            while (e != NULL) {
                struct entry *next = e->chain;
                entry_free(e);
                e = next;
            }
        }
    }
    free(t->buckets);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int idem_key_valid(const char *key, size_t len)
{
    if (len == 0 || len > IDEM_KEY_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return 0;
    }
    return 1;
}

/* Each part goes in with its length first, so that no two different
 * requests feed the same bytes; an absent part has a length no present
 * one can have. */
static void hash_part(XXH3_state_t *st, const char *s, size_t len)
{
    uint64_t n = s != NULL ? (uint64_t)len : UINT64_MAX;
    XXH3_128bits_update(st, &n, sizeof(n));
    if (s != NULL && len > 0)
        XXH3_128bits_update(st, s, len);
}

void idem_fingerprint(const struct api_req *req, struct idem_fp *out)
{
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_128bits_reset(&st);
    hash_part(&st, req->method, req->method_len);
    hash_part(&st, req->target, req->target_len);
    hash_part(&st, req->change_set, req->change_set_len);
    hash_part(&st, req->body, req->body_len);
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    out->lo = h.low64;
    out->hi = h.high64;
}

/* ---------------------------------------------------------------------- */
/* The table, with `lock` held                                            */
/* ---------------------------------------------------------------------- */

static struct entry **slot_of(struct idem *t, const char *key, size_t len, uint64_t hash)
{
    struct entry **p = &t->buckets[hash & t->mask];
    while (*p != NULL &&
           ((*p)->hash != hash || (*p)->key_len != len || memcmp((*p)->key, key, len) != 0))
        p = &(*p)->chain;
    return p;
}

static void list_unlink(struct idem *t, struct entry *e)
{
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        t->oldest = e->newer;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        t->newest = e->older;
    e->older = e->newer = NULL;
    t->count--;
    t->bytes -= e->bytes;
}

static void list_append(struct idem *t, struct entry *e)
{
    e->older = t->newest;
    e->newer = NULL;
    if (t->newest != NULL)
        t->newest->newer = e;
    else
        t->oldest = e;
    t->newest = e;
    t->count++;
    t->bytes += e->bytes;
}

/* Removes a remembered answer from the list and the table, and frees it. */
static void drop(struct idem *t, struct entry *e)
{
    list_unlink(t, e);
    struct entry **p = slot_of(t, e->key, e->key_len, e->hash);
    *p = e->chain;
    entry_free(e);
}

/* Drops the answers as old as the window, then the oldest while over a
 * bound. */
static void trim(struct idem *t, int64_t now)
{
    while (t->oldest != NULL && now - t->oldest->stored_ns >= t->window_ns)
        drop(t, t->oldest);
    while (t->oldest != NULL && (t->count > t->max_keys || t->bytes > t->max_bytes))
        drop(t, t->oldest);
}

/* ---------------------------------------------------------------------- */

/* Deep-copies an answer; returns 0 when out of memory (`to` then holds
 * nothing). */
static int copy_answer(struct api_resp *to, const struct api_resp *from)
{
    memset(to, 0, sizeof(*to));
    to->status = from->status;
    to->reason = from->reason;
    to->lsn = from->lsn;
    for (size_t i = 0; i < from->nheaders; i++) {
        to->headers[i].name = from->headers[i].name;
        to->headers[i].value = strdup(from->headers[i].value);
        if (to->headers[i].value == NULL)
            goto nomem;
        to->nheaders++;
    }
    if (from->body_len > 0) {
        to->body = malloc(from->body_len + 1);
        if (to->body == NULL)
            goto nomem;
        memcpy(to->body, from->body, from->body_len);
        to->body[from->body_len] = '\0';
        to->body_len = from->body_len;
    }
    return 1;

nomem:
    api_resp_free(to);
    return 0;
}

enum idem_outcome idem_begin(struct idem *t, const char *key, size_t len, const struct idem_fp *fp,
                             struct api_resp *replay)
{
    uint64_t hash = XXH3_64bits(key, len);
    enum idem_outcome out;

    pthread_mutex_lock(&t->lock);
    if (t->buckets == NULL && (t->buckets = calloc(t->mask + 1, sizeof(*t->buckets))) == NULL) {
        out = IDEM_NOMEM;
        goto unlock;
    }
    trim(t, now_ns());

    struct entry **p = slot_of(t, key, len, hash);
    struct entry *e = *p;
    if (e != NULL) {
        if (e->fp.lo != fp->lo || e->fp.hi != fp->hi)
            out = IDEM_REUSED;
        else if (e->in_flight)
            out = IDEM_IN_FLIGHT;
        else
            out = copy_answer(replay, &e->answer) ? IDEM_REPLAY : IDEM_NOMEM;
        goto unlock;
    }

    e = calloc(1, sizeof(*e) + len);
    if (e == NULL) {
        out = IDEM_NOMEM;
        goto unlock;
    }
    e->hash = hash;
    e->fp = *fp;
    e->in_flight = 1;
    e->key_len = len;
    memcpy(e->key, key, len);
    *p = e;
    out = IDEM_FIRST;

unlock:
    pthread_mutex_unlock(&t->lock);
    return out;
}

static size_t answer_bytes(const struct api_resp *r)
{
    size_t n = r->body_len;
    for (size_t i = 0; i < r->nheaders; i++)
        n += strlen(r->headers[i].value) + 1;
    return n;
}

void idem_finish(struct idem *t, const char *key, size_t len, const struct api_resp *resp)
{
    uint64_t hash = XXH3_64bits(key, len);
    struct api_resp copy;
    int keep = resp->status >= 200 && resp->status < 300 && copy_answer(&copy, resp);

    pthread_mutex_lock(&t->lock);
    struct entry **p = slot_of(t, key, len, hash);
    struct entry *e = *p;
    if (e == NULL || !e->in_flight) {
        /* Cannot happen: only the owner of an in-flight entry removes it. */
        pthread_mutex_unlock(&t->lock);
        if (keep)
            api_resp_free(&copy);
        return;
    }
    if (!keep) {
        *p = e->chain;
        entry_free(e);
    } else {
        e->answer = copy;
        e->in_flight = 0;
        e->stored_ns = now_ns();
        e->bytes = sizeof(*e) + len + answer_bytes(&copy);
        list_append(t, e);
        trim(t, e->stored_ns);
    }
    pthread_mutex_unlock(&t->lock);
}
