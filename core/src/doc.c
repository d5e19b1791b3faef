/*
 * doc.c - documents and their version chains: reads, writes and rollback.
 *
 * Invariants (see internal.h for the memory-ordering contract):
 * - A chain runs newest to oldest through `older`; revisions strictly
 *   decrease along it and it holds at most store->history versions.
 * - Writers hold store->write_lock for the whole decision and commit, so the
 *   head a writer sees is always published and the revision it assigns is
 *   the next one.  A commit links the new head, then raises the store
 *   revision, then trims the tail: a reader that sees a head above the
 *   revision it loaded can always fall back to that head's older neighbour,
 *   and finding that neighbour gone proves the head has been published.
 * - `follows` of a version is a revision of the same document, smaller than
 *   its own, or one of FOLLOWS_ORIGIN / FOLLOWS_NOTHING; so the undo walk
 *   only ever moves towards older versions, in one pass over the chain.
 */
#include "internal.h"
#include "record.h"
#include "wal.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct id_key {
    const void *id;
    size_t len;
};

static struct version *load_older(const struct version *v)
{
    return atomic_load_explicit(&v->older, memory_order_acquire);
}

static int match_doc(struct cds_lfht_node *node, const void *key)
{
    struct doc *d = caa_container_of(node, struct doc, node);
    const struct id_key *k = key;

    /* Pairs with the release of the first head in doc_insert(), which
     * follows the writing of the id. */
    (void)atomic_load_explicit(&d->head, memory_order_acquire);
    return d->id_len == k->len && memcmp(d->id, k->id, k->len) == 0;
}

/* Finds a document.  Inside a read section. */
static struct doc *doc_find(struct sb_coll *c, const void *id, size_t len,
                            uint64_t hash)
{
    struct id_key key = {id, len};
    struct cds_lfht_iter it;

    cds_lfht_lookup(c->docs, hash, match_doc, &key, &it);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&it);
    return node ? caa_container_of(node, struct doc, node) : NULL;
}

static uint64_t id_hash(const struct sb_coll *c, const void *id, size_t len)
{
    return sb__hash(c->hash_seed, id, len);
}

struct doc *sb__doc_find(struct sb_coll *c, const void *id, size_t len)
{
    return doc_find(c, id, len, id_hash(c, id, len));
}

void sb__doc_seek(struct sb_coll *c, const struct doc *d,
                  struct cds_lfht_iter *it)
{
    struct id_key key = {d->id, d->id_len};
    cds_lfht_lookup(c->docs, id_hash(c, d->id, d->id_len), match_doc, &key, it);
}

/* ---------------------------------------------------------------------- */
/* Versions                                                               */
/* ---------------------------------------------------------------------- */

static size_t restored_bytes(const struct version *v)
{
    return v->op == SB_OP_ROLLBACK ? sizeof(uint64_t) : 0;
}

static uint64_t version_restored(const struct version *v)
{
    uint64_t r = 0;
    if (v->op == SB_OP_ROLLBACK)
        memcpy(&r, v->data, sizeof(r));
    return r;
}

static const char *version_cs(const struct version *v)
{
    return (const char *)v->data + restored_bytes(v);
}

static const unsigned char *version_payload(const struct version *v)
{
    return v->data + restored_bytes(v) + v->cs_len;
}

const char *sb__version_cs(const struct version *v)
{
    return version_cs(v);
}

const unsigned char *sb__version_payload(const struct version *v)
{
    return version_payload(v);
}

int sb__version_live(const struct version *v)
{
    return v != NULL && !(v->flags & VF_ABSENT);
}

/*
 * Allocates a version holding copies of the change set and payload.  The
 * revision, time and links are set at commit.  NULL when out of memory.
 */
static struct version *version_new(sb_op op, unsigned flags, uint64_t restored,
                                   const sb_write_opts *o, const void *payload,
                                   size_t len)
{
    size_t extra = op == SB_OP_ROLLBACK ? sizeof(uint64_t) : 0;
    size_t cs_len = o ? o->change_set_len : 0;
    struct version *v = malloc(sizeof(*v) + extra + cs_len + len);
    if (v == NULL)
        return NULL;

    atomic_init(&v->older, NULL);
    v->rev = 0;
    v->time_ns = 0;
    v->len = (uint32_t)len;
    v->op = (uint8_t)op;
    v->flags = (uint8_t)flags;
    if (cs_len && o->change_set_automatic)
        v->flags |= VF_AUTO_CS;
    v->cs_len = (uint8_t)cs_len;
    v->pins = 0;
    v->w.newer = NULL;
    v->w.follows = FOLLOWS_NOTHING;
    if (extra)
        memcpy(v->data, &restored, sizeof(restored));
    if (cs_len)
        memcpy(v->data + extra, o->change_set, cs_len);
    if (len)
        memcpy(v->data + extra + cs_len, payload, len);
    return v;
}

static void on_version_reclaim(struct rcu_head *head)
{
    SB_TSAN_RECLAIM();
    free(caa_container_of(head, struct version, rcu));
}

static void view_fill(sb_view *out, const struct doc *d,
                      const struct version *v)
{
    out->id = d->id;
    out->id_len = d->id_len;
    out->rev = v->rev;
    out->time_ns = v->time_ns;
    out->op = (sb_op)v->op;
    out->absent = (v->flags & VF_ABSENT) != 0;
    out->restored = version_restored(v);
    out->payload = out->absent ? NULL : version_payload(v);
    out->len = v->len;
    out->change_set = v->cs_len ? version_cs(v) : NULL;
    out->change_set_len = v->cs_len;
}

/* The view of a document that has no visible version at all. */
static void view_none(sb_view *out, const struct doc *d)
{
    memset(out, 0, sizeof(*out));
    if (d != NULL) {
        out->id = d->id;
        out->id_len = d->id_len;
    }
    out->absent = 1;
}

/* ---------------------------------------------------------------------- */
/* Reading                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Returns the newest version of `d` whose revision is published, or NULL if
 * the document has none yet.  Lock-free: never waits for a writer.
 *
 * A walk that runs out of versions while still above the revision it
 * loaded has met one of three things: the document's first version, not
 * yet published; a neighbour trimmed by a commit published meanwhile; or a
 * version of a group that failed, whose revision a later commit may have
 * published for another version.  Only the first leaves the store's
 * revision and the document's head as they were; otherwise look again.
 */
static const struct version *visible_head(const struct sb_store *s,
                                          const struct doc *d)
{
    for (;;) {
        const struct version *head =
            atomic_load_explicit(&d->head, memory_order_acquire);
        uint64_t top = atomic_load_explicit(&s->revision, memory_order_acquire);
        const struct version *v = head, *older;

        while (v != NULL && v->rev > top && (older = load_older(v)) != NULL)
            v = older;
        if (v == NULL || v->rev <= top)
            return v;
        if (atomic_load_explicit(&s->revision, memory_order_acquire) == top &&
            atomic_load_explicit(&d->head, memory_order_acquire) == head)
            return NULL;
    }
}

static sb_status read_args(const sb_coll *c, const void *id, size_t len,
                           const void *out)
{
    if (c == NULL || out == NULL || !sb_id_valid(id, len))
        return SB_INVALID;
    return SB_OK;
}

/*
 * sb_get() checks the id's bytes only when it is not found: a stored id
 * passed that check when it was written, so a hit proves it valid, and the
 * hottest path saves two scans of the id.
 */
sb_status sb_get(sb_coll *coll, const void *id, size_t id_len, sb_view *out)
{
    if (coll == NULL || out == NULL || id == NULL || id_len == 0 ||
        id_len > SB_ID_MAX)
        return SB_INVALID;

    struct doc *d = doc_find(coll, id, id_len, id_hash(coll, id, id_len));
    if (d == NULL && !sb_id_valid(id, id_len))
        return SB_INVALID;
    const struct version *v = d ? visible_head(coll->store, d) : NULL;
    if (v == NULL) {
        view_none(out, d);
        return SB_NOT_FOUND;
    }
    view_fill(out, d, v);
    return out->absent ? SB_NOT_FOUND : SB_OK;
}

/*
 * Finds the version of a document that was current at revision `rev`,
 * walking from `from` (its newest version).  Returns SB_OK with *found set
 * (NULL meaning the absence before the document's first version), or
 * SB_HISTORY_EXHAUSTED when that version is no longer retained: dropped
 * from the ring, or older than the retention period (all but `current`,
 * the document's current version, can be).
 */
static sb_status find_as_of(const struct sb_store *s,
                            const struct version *from,
                            const struct version *current, uint64_t rev,
                            int64_t now, const struct version **found)
{
    const struct version *v = from, *oldest = NULL;

    while (v != NULL && v->rev > rev) {
        oldest = v;
        v = load_older(v);
    }
    if (v != NULL && (v == current || !sb__expired(s, v, now))) {
        *found = v;
        return SB_OK;
    }
    if (v == NULL && oldest != NULL && (oldest->flags & VF_FIRST) &&
        (oldest == current || !sb__expired(s, oldest, now))) {
        *found = NULL;
        return SB_OK;
    }
    return SB_HISTORY_EXHAUSTED;
}

sb_status sb_get_as_of(sb_coll *coll, const void *id, size_t id_len,
                       uint64_t rev, sb_view *out)
{
    sb_status st = read_args(coll, id, id_len, out);
    if (st != SB_OK)
        return st;
    if (rev == 0)
        return SB_INVALID;
    if (rev > sb_store_revision(coll->store))
        return SB_FUTURE;

    /* Every version at or below `rev` was linked before `rev` was
     * published, so walking from the raw head finds it if it is retained. */
    struct doc *d = doc_find(coll, id, id_len, id_hash(coll, id, id_len));
    const struct version *head =
        d ? atomic_load_explicit(&d->head, memory_order_acquire) : NULL;
    if (head == NULL) { /* never written (or only by a batch that failed) */
        view_none(out, d);
        return SB_NOT_FOUND;
    }
    const struct version *v;
    st = find_as_of(coll->store, head, visible_head(coll->store, d), rev,
                    sb__now(coll->store), &v);
    if (st != SB_OK)
        return st;
    if (v == NULL) {
        view_none(out, d);
        return SB_NOT_FOUND;
    }
    view_fill(out, d, v);
    return out->absent ? SB_NOT_FOUND : SB_OK;
}

sb_status sb_version_get(sb_coll *coll, const void *id, size_t id_len,
                         uint64_t rev, sb_view *out)
{
    sb_status st = read_args(coll, id, id_len, out);
    if (st != SB_OK)
        return st;

    struct doc *d = doc_find(coll, id, id_len, id_hash(coll, id, id_len));
    const struct version *v = d ? visible_head(coll->store, d) : NULL;
    const struct version *current = v;
    while (v != NULL && v->rev > rev)
        v = load_older(v);
    if (v == NULL || v->rev != rev ||
        (v != current && sb__expired(coll->store, v, sb__now(coll->store))))
        return SB_NOT_FOUND;
    view_fill(out, d, v);
    return SB_OK;
}

sb_status sb_history(sb_coll *coll, const void *id, size_t id_len, sb_view *out,
                     size_t cap, size_t *count)
{
    if (coll == NULL || count == NULL || !sb_id_valid(id, id_len) ||
        (out == NULL && cap > 0))
        return SB_INVALID;

    struct doc *d = doc_find(coll, id, id_len, id_hash(coll, id, id_len));
    const struct version *v = d ? visible_head(coll->store, d) : NULL;
    if (v == NULL)
        return SB_NOT_FOUND;

    /* A writer trims the tail just after it publishes a new head, so a
     * walk may meet one version more than the depth: the one going away. */
    /* Times only grow towards the head: the first expired version ends
     * the list. */
    size_t n = 0, depth = coll->store->history;
    int64_t now = sb__now(coll->store);
    for (; v != NULL && n < depth &&
           (n == 0 || !sb__expired(coll->store, v, now));
         v = load_older(v), n++) {
        if (n < cap)
            view_fill(&out[n], d, v);
    }
    *count = n;
    return SB_OK;
}

sb_status sb_scan(sb_coll *coll, const void *after, size_t after_len,
                  sb_scan_fn fn, void *ctx)
{
    if (coll == NULL || fn == NULL ||
        (after != NULL && !sb_id_valid(after, after_len)))
        return SB_INVALID;

    /* Documents are never unlinked, so the iterator can resume from the
     * node of the last id a previous page returned. */
    struct cds_lfht_iter it;
    if (after != NULL) {
        struct id_key key = {after, after_len};
        cds_lfht_lookup(coll->docs, id_hash(coll, after, after_len), match_doc,
                        &key, &it);
        if (cds_lfht_iter_get_node(&it) == NULL)
            return SB_NOT_FOUND;
        cds_lfht_next(coll->docs, &it);
    } else {
        cds_lfht_first(coll->docs, &it);
    }

    for (struct cds_lfht_node *node; (node = cds_lfht_iter_get_node(&it));
         cds_lfht_next(coll->docs, &it)) {
        struct doc *d = caa_container_of(node, struct doc, node);
        const struct version *v = visible_head(coll->store, d);
        if (v == NULL || (v->flags & VF_ABSENT))
            continue;
        sb_view view;
        view_fill(&view, d, v);
        if (fn(ctx, &view))
            break;
    }
    return SB_OK;
}

sb_status sb_scan_at(sb_coll *coll, uint64_t rev, const void *after,
                     size_t after_len, sb_scan_fn fn, void *ctx)
{
    if (coll == NULL || fn == NULL || rev == 0 ||
        (after != NULL && !sb_id_valid(after, after_len)))
        return SB_INVALID;
    if (rev > sb_store_revision(coll->store))
        return SB_FUTURE;

    struct cds_lfht_iter it;
    if (after != NULL) {
        struct id_key key = {after, after_len};
        cds_lfht_lookup(coll->docs, id_hash(coll, after, after_len), match_doc,
                        &key, &it);
        if (cds_lfht_iter_get_node(&it) == NULL)
            return SB_NOT_FOUND;
        cds_lfht_next(coll->docs, &it);
    } else {
        cds_lfht_first(coll->docs, &it);
    }

    /* Every version at or below `rev` was linked before `rev` was
     * published, so each document's state at `rev` is found from its raw
     * head, whatever was committed since; a version the ring dropped
     * meanwhile makes the whole scan fail rather than show a mix. */
    int64_t now = sb__now(coll->store);
    for (struct cds_lfht_node *node; (node = cds_lfht_iter_get_node(&it));
         cds_lfht_next(coll->docs, &it)) {
        struct doc *d = caa_container_of(node, struct doc, node);
        const struct version *head =
            atomic_load_explicit(&d->head, memory_order_acquire);
        const struct version *v;
        if (head == NULL)
            continue;
        sb_status st = find_as_of(coll->store, head,
                                  visible_head(coll->store, d), rev, now, &v);
        if (st != SB_OK)
            return st;
        if (v == NULL || (v->flags & VF_ABSENT))
            continue;
        sb_view view;
        view_fill(&view, d, v);
        if (fn(ctx, &view))
            break;
    }
    return SB_OK;
}

/* ---------------------------------------------------------------------- */
/* Writing                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Every write, single or batched, is staged in a group (internal.h): its
 * version is numbered and linked into the chain unpublished, and the
 * group's commit logs, publishes, indexes and prunes.  A failed operation
 * unstages the whole group, so nothing of it was ever visible.
 */

/* One operation of a group: its document, found or not. */
struct txn {
    struct group *g;
    struct sb_coll *c;
    const void *id;
    size_t id_len;
    uint64_t hash;
    struct doc *d;
    struct version *head; /* d's head, staged ones included; NULL if none */
};

static sb_status write_args(const sb_coll *c, const void *id, size_t len,
                            const sb_write_opts *o)
{
    if (c == NULL || !sb_id_valid(id, len))
        return SB_INVALID;
    if (o != NULL &&
        (o->change_set_len > SB_CHANGE_SET_MAX ||
         (o->change_set == NULL && o->change_set_len > 0) ||
         o->actor_len > SB_ACTOR_MAX || (o->actor == NULL && o->actor_len > 0)))
        return SB_INVALID;
    if (!sb__thread_registered())
        return SB_UNREGISTERED;
    if (c->store->wal != NULL && wal_failed(c->store->wal))
        return SB_IO;
    return SB_OK;
}

void sb__group_begin(struct group *g, struct sb_store *s,
                     const sb_write_opts *o)
{
    g->s = s;
    g->o = o;
    g->items = &g->one;
    g->n = 0;
    g->cap = 1;
    g->lsn = 0;
    g->fresh = NULL;
    g->nfresh = g->fresh_cap = 0;
    pthread_mutex_lock(&s->write_lock);
    urcu_memb_read_lock();
}

void sb__group_end(struct group *g)
{
    urcu_memb_read_unlock();
    pthread_mutex_unlock(&g->s->write_lock);
    if (g->items != &g->one)
        free(g->items);
    g->items = &g->one;
    free(g->fresh);
    g->fresh = NULL;
}

/* Waits, after sb__group_end(), until the group is as durable as the fsync
 * mode promises, unless the caller will wait itself (opts->nowait). */
static sb_status group_sync(const struct group *g)
{
    if (g->lsn == 0 || (g->o != NULL && g->o->nowait))
        return SB_OK;
    return wal_wait(g->s->wal, g->lsn);
}

#define FEW_FRESH (sizeof(((struct group *)0)->few) / sizeof(size_t))

static int fresh_is(const struct staged *it, const struct sb_coll *c,
                    const void *id, size_t len, uint64_t hash)
{
    return it->hash == hash && it->c == c && it->d->id_len == len &&
           memcmp(it->d->id, id, len) == 0;
}

/* A document an earlier operation of the group created, or NULL. */
static struct doc *fresh_find(const struct group *g, const struct sb_coll *c,
                              const void *id, size_t len, uint64_t hash)
{
    if (g->fresh == NULL) {
        for (size_t k = 0; k < g->nfresh; k++)
            if (fresh_is(&g->items[g->few[k]], c, id, len, hash))
                return g->items[g->few[k]].d;
        return NULL;
    }
    size_t mask = g->fresh_cap - 1;
    for (size_t j = hash & mask; g->fresh[j] != 0; j = (j + 1) & mask)
        if (fresh_is(&g->items[g->fresh[j] - 1], c, id, len, hash))
            return g->items[g->fresh[j] - 1].d;
    return NULL;
}

static void fresh_put(size_t *slots, size_t cap, uint64_t hash, size_t item)
{
    size_t j = hash & (cap - 1);
    while (slots[j] != 0)
        j = (j + 1) & (cap - 1);
    slots[j] = item + 1;
}

/* Remembers that item `i` of the group created its document. */
static int fresh_add(struct group *g, size_t i)
{
    if (g->fresh == NULL && g->nfresh < FEW_FRESH) {
        g->few[g->nfresh++] = i;
        return 0;
    }
    if (2 * (g->nfresh + 1) > g->fresh_cap) {
        size_t cap = g->fresh_cap ? 2 * g->fresh_cap : 4 * FEW_FRESH;
        size_t *slots = calloc(cap, sizeof(*slots));
        if (slots == NULL)
            return -1;
        if (g->fresh == NULL)
            for (size_t k = 0; k < g->nfresh; k++)
                fresh_put(slots, cap, g->items[g->few[k]].hash, g->few[k]);
        for (size_t j = 0; j < g->fresh_cap; j++)
            if (g->fresh[j] != 0)
                fresh_put(slots, cap, g->items[g->fresh[j] - 1].hash,
                          g->fresh[j] - 1);
        free(g->fresh);
        g->fresh = slots;
        g->fresh_cap = cap;
    }
    fresh_put(g->fresh, g->fresh_cap, g->items[i].hash, i);
    g->nfresh++;
    return 0;
}

static void txn_find(struct txn *t, struct group *g, struct sb_coll *c,
                     const void *id, size_t len)
{
    t->g = g;
    t->c = c;
    t->id = id;
    t->id_len = len;
    t->hash = id_hash(c, id, len);
    t->d = doc_find(c, id, len, t->hash);
    if (t->d == NULL)
        t->d = fresh_find(g, c, id, len, t->hash);
    t->head =
        t->d ? atomic_load_explicit(&t->d->head, memory_order_relaxed) : NULL;
}

static int head_live(const struct txn *t)
{
    return sb__version_live(t->head);
}

static sb_status check_if_rev(const struct txn *t, uint64_t if_rev)
{
    if (if_rev == 0)
        return SB_OK;
    return head_live(t) && t->head->rev == if_rev ? SB_OK : SB_CONFLICT;
}

/* A rollback's precondition may name a deletion: undoing a delete only if
 * it is still the latest write is the point of giving one. */
static sb_status check_if_head(const struct txn *t, uint64_t if_rev)
{
    if (if_rev == 0)
        return SB_OK;
    return t->head != NULL && t->head->rev == if_rev ? SB_OK : SB_CONFLICT;
}

/* Commit times never go backwards, even when the wall clock does. */
static int64_t commit_time(struct sb_store *s)
{
    int64_t now = sb__now(s);
    if (now < s->last_time_ns)
        now = s->last_time_ns;
    s->last_time_ns = now;
    return now;
}

/* Allocates the document a first write creates; NULL when out of memory. */
static struct doc *doc_new(const void *id, size_t len)
{
    struct doc *d = malloc(sizeof(*d) + len);
    if (d == NULL)
        return NULL;
    d->tail = NULL;
    d->count = 0;
    d->id_len = (uint32_t)len;
    memcpy(d->id, id, len);
    atomic_init(&d->head, NULL);
    return d;
}

void sb__record_of(const struct sb_coll *c, const struct doc *d,
                   const struct version *v, struct record *r)
{
    r->rev = v->rev;
    r->time_ns = v->time_ns;
    r->follows = v->w.follows;
    r->restored = version_restored(v);
    r->op = v->op;
    r->flags = v->flags;
    r->coll = c->name;
    r->coll_len = atomic_load_explicit(&c->name_len, memory_order_relaxed);
    r->id = d->id;
    r->id_len = d->id_len;
    r->cs = version_cs(v);
    r->cs_len = v->cs_len;
    r->actor = NULL;
    r->actor_len = 0;
    r->group = 0;
    r->payload = version_payload(v);
    r->len = (v->flags & VF_ABSENT) ? 0 : v->len;
}

/* Bytes the version takes as a log record: what compaction would keep. */
uint64_t sb__record_bytes(const struct sb_coll *c, const struct doc *d,
                          const struct version *v)
{
    struct record r;
    sb__record_of(c, d, v, &r);
    return record_size(&r);
}

/* Unlinks the oldest version of a chain and returns it. */
static struct version *trim_tail(struct doc *d)
{
    struct version *old = d->tail;
    d->tail = old->w.newer;
    atomic_store_explicit(&d->tail->older, NULL, memory_order_release);
    d->count--;
    return old;
}

void sb__retire(struct version *v)
{
    SB_TSAN_READ_END();
    urcu_memb_call_rcu(&v->rcu, on_version_reclaim);
}

int sb__expired(const struct sb_store *s, const struct version *v, int64_t now)
{
    return s->retain_ns > 0 && v->time_ns < now - s->retain_ns;
}

/*
 * Trims a chain to the depth and drops the versions older than the
 * retention period; the current version always stays.  A version a change
 * set pins leaves the chain but stays in memory (and in live_bytes, since
 * a snapshot keeps it) until the change set lets it go.  Write lock held.
 */
static void prune(struct sb_store *s, struct sb_coll *c, struct doc *d,
                  int64_t now)
{
    while (d->count > s->history ||
           (d->count > 1 && sb__expired(s, d->tail, now))) {
        struct version *old = trim_tail(d);
        if (old->pins & PIN_COUNT) {
            old->pins |= PIN_DETACHED;
            continue;
        }
        s->live_bytes -= sb__record_bytes(c, d, old);
        sb__retire(old);
    }
}

void sb__prune(struct sb_store *s, struct sb_coll *c, struct doc *d)
{
    prune(s, c, d, sb__now(s));
}

/* Makes `v` the head of `d`'s chain, without publishing its revision. */
static void link_version(struct doc *d, struct version *v)
{
    struct version *head = atomic_load_explicit(&d->head, memory_order_relaxed);

    atomic_store_explicit(&v->older, head, memory_order_relaxed);
    v->w.newer = NULL;
    if (head != NULL)
        head->w.newer = v;
    else
        d->tail = v;
    atomic_store_explicit(&d->head, v, memory_order_release);
    d->count++;
}

/*
 * Numbers `v` and links it as the head of the operation's document,
 * creating the document if needed.  On SB_OK the group owns `v`; on
 * failure it still belongs to the caller.
 */
static sb_status stage(struct txn *t, struct version *v)
{
    struct group *g = t->g;
    struct sb_store *s = g->s;

    if (g->n == g->cap) {
        size_t cap = g->cap * 2;
        struct staged *items = g->items == &g->one
                                   ? malloc(cap * sizeof(*items))
                                   : realloc(g->items, cap * sizeof(*items));
        if (items == NULL)
            return SB_NOMEM;
        if (g->items == &g->one)
            items[0] = g->one;
        g->items = items;
        g->cap = cap;
    }
    struct doc *d = t->d;
    int fresh = d == NULL;
    if (fresh && (d = doc_new(t->id, t->id_len)) == NULL)
        return SB_NOMEM;
    g->items[g->n] = (struct staged){t->c, d, v, t->hash, fresh};
    if (fresh && fresh_add(g, g->n) != 0) {
        free(d);
        return SB_NOMEM;
    }

    v->rev =
        atomic_load_explicit(&s->revision, memory_order_relaxed) + g->n + 1;
    v->time_ns = commit_time(s);
    if (t->head == NULL)
        v->flags |= VF_FIRST;
    link_version(d, v);
    g->n++;
    t->d = d;
    t->head = v;
    return SB_OK;
}

void sb__group_abort(struct group *g)
{
    size_t n = g->n;
    if (n == 0)
        return;
    for (size_t i = n; i-- > 0;) {
        struct staged *it = &g->items[i];
        struct version *older =
            atomic_load_explicit(&it->v->older, memory_order_relaxed);
        if (older != NULL)
            older->w.newer = NULL;
        else
            it->d->tail = NULL;
        atomic_store_explicit(&it->d->head, older, memory_order_release);
        it->d->count--;
    }
    /* Readers may still hold them; the next group reuses their revisions,
     * which visible_head() guards against. */
    for (size_t i = 0; i < n; i++)
        sb__retire(g->items[i].v);
    /* No reader can have seen a document that never joined its table. */
    for (size_t i = 0; i < n; i++)
        if (g->items[i].fresh)
            free(g->items[i].d);
    g->n = 0;
    free(g->fresh);
    g->fresh = NULL;
    g->nfresh = g->fresh_cap = 0;
}

/* Appends the group's records to the log, if the store has one. */
static sb_status log_group(struct group *g)
{
    if (g->s->wal == NULL)
        return SB_OK;
    struct record one, *r = g->n == 1 ? &one : malloc(g->n * sizeof(*r));
    if (r == NULL)
        return SB_NOMEM;
    for (size_t i = 0; i < g->n; i++) {
        sb__record_of(g->items[i].c, g->items[i].d, g->items[i].v, &r[i]);
        if (g->o != NULL && r[i].cs_len > 0) {
            r[i].actor = g->o->actor;
            r[i].actor_len = g->o->actor_len;
        }
    }
    sb_status st = wal_append(g->s->wal, r, g->n, &g->lsn);
    if (r != &one)
        free(r);
    return st;
}

sb_status sb__group_commit(struct group *g)
{
    struct sb_store *s = g->s;
    if (g->n == 0)
        return SB_OK;

    sb_status st = log_group(g);
    if (st != SB_OK) {
        sb__group_abort(g);
        return st;
    }
    /* Readers may find the new documents from here on; until the revision
     * is published their heads read as not yet written. */
    for (size_t i = 0; i < g->n; i++)
        if (g->items[i].fresh) {
            cds_lfht_add(g->items[i].c->docs, g->items[i].hash,
                         &g->items[i].d->node);
            sb__index_added(g->items[i].c);
        }
    atomic_store_explicit(&s->revision, g->items[g->n - 1].v->rev,
                          memory_order_release);

    /* Index before pruning: what a change set pins must not be freed. */
    const char *actor = g->o ? g->o->actor : NULL;
    size_t actor_len = g->o ? g->o->actor_len : 0;
    for (size_t i = 0; i < g->n; i++) {
        struct staged *it = &g->items[i];
        if (!atomic_load_explicit(&it->c->written, memory_order_relaxed))
            atomic_store_explicit(&it->c->written, 1, memory_order_release);
        s->live_bytes += sb__record_bytes(it->c, it->d, it->v);
        if (it->v->cs_len > 0)
            sb__cs_note(
                s, it->c, it->d, it->v,
                atomic_load_explicit(&it->v->older, memory_order_relaxed),
                actor, actor_len);
    }
    int64_t now = sb__now(s);
    for (size_t i = 0; i < g->n; i++)
        prune(s, g->items[i].c, g->items[i].d, now);
    sb__cs_expire(s);
    sb__compact_maybe(s);
    return SB_OK;
}

struct version *sb__version_copy(const struct record *r)
{
    sb_write_opts o = {.change_set = r->cs, .change_set_len = r->cs_len};
    struct version *v = version_new((sb_op)r->op, r->flags, r->restored, &o,
                                    r->payload, r->len);
    if (v == NULL)
        return NULL;
    v->rev = r->rev;
    v->time_ns = r->time_ns;
    v->w.follows = r->follows;
    return v;
}

struct doc *sb__doc_ensure(struct sb_coll *c, const void *id, size_t len)
{
    uint64_t hash = id_hash(c, id, len);
    urcu_memb_read_lock();
    struct doc *d = doc_find(c, id, len, hash);
    if (d == NULL && (d = doc_new(id, len)) != NULL) {
        cds_lfht_add(c->docs, hash, &d->node);
        sb__index_added(c);
    }
    urcu_memb_read_unlock();
    return d;
}

sb_status sb__replay(struct sb_store *s, const struct record *r, int snapshot)
{
    if (r->op == RECORD_OP_CHANGESET || (r->group & RG_PINNED))
        return sb__cs_replay(s, r);
    sb_coll *c;
    sb_status st = sb_collection_open(s, r->coll, r->coll_len, &c);
    if (st != SB_OK)
        return st;

    struct version *v = sb__version_copy(r);
    if (v == NULL)
        return SB_NOMEM;
    if (r->time_ns > s->last_time_ns)
        s->last_time_ns = r->time_ns;

    uint64_t hash = id_hash(c, r->id, r->id_len);
    urcu_memb_read_lock();
    struct doc *d = doc_find(c, r->id, r->id_len, hash);
    int fresh = d == NULL;
    if (fresh && (d = doc_new(r->id, r->id_len)) == NULL) {
        st = SB_NOMEM;
    } else {
        struct version *prev =
            atomic_load_explicit(&d->head, memory_order_relaxed);
        link_version(d, v);
        if (fresh) {
            cds_lfht_add(c->docs, hash, &d->node);
            sb__index_added(c);
        }
        /* A snapshot lists each document's versions in turn, so revisions
         * rise per document only: keep the store's at the highest. */
        if (r->rev > atomic_load_explicit(&s->revision, memory_order_relaxed))
            atomic_store_explicit(&s->revision, r->rev, memory_order_release);
        s->live_bytes += sb__record_bytes(c, d, v);
        atomic_store_explicit(&c->written, 1, memory_order_release);
        /* A snapshot's versions are indexed by its change-set records. */
        if (v->cs_len > 0 && !snapshot)
            sb__cs_note(s, c, d, v, prev, r->actor, r->actor_len);
        prune(s, c, d, sb__now(s));
        if (!snapshot)
            sb__cs_expire(s);
    }
    urcu_memb_read_unlock();
    if (st != SB_OK)
        free(v);
    return st;
}

static void result_fill(sb_result *res, const struct version *v, int was_live)
{
    if (res == NULL)
        return;
    memset(res, 0, sizeof(*res));
    res->rev = v->rev;
    res->absent = (v->flags & VF_ABSENT) != 0;
    res->created = !was_live && !res->absent;
    res->restored = version_restored(v);
}

/*
 * Ends a single write: commits it if it was staged, and hands its result
 * out only once it succeeded (an exhausted rollback reports what steps
 * are available).  Waits for its sync unless told not to.
 */
static sb_status single_end(struct group *g, sb_status st, sb_result *r,
                            sb_result *res)
{
    if (st == SB_OK)
        st = sb__group_commit(g);
    sb__group_end(g);
    if (st == SB_HISTORY_EXHAUSTED && res != NULL)
        *res = *r;
    if (st != SB_OK)
        return st;
    r->lsn = g->lsn;
    if (res != NULL)
        *res = *r;
    return group_sync(g);
}

enum write_kind { W_CREATE, W_PUT, W_DELETE };

/* Allocates the version a create, put or delete writes; NULL if no memory.
 * The operation (create or update) is settled when it is staged. */
static struct version *write_version(enum write_kind kind, const void *payload,
                                     size_t len, const sb_write_opts *o)
{
    return version_new(kind == W_DELETE ? SB_OP_DELETE : SB_OP_CREATE,
                       kind == W_DELETE ? VF_ABSENT : 0, 0, o, payload, len);
}

/* Checks and stages a create, put or delete; frees `v` if it fails. */
static sb_status op_write(struct txn *t, struct version *v,
                          enum write_kind kind, uint64_t if_rev, sb_result *res)
{
    int live = head_live(t);
    sb_status st;
    if (kind == W_CREATE && live)
        st = SB_EXISTS;
    else if (kind == W_DELETE && !live)
        st = SB_NOT_FOUND;
    else if (kind == W_CREATE && if_rev != 0)
        st = SB_CONFLICT; /* a create has no current version to match */
    else
        st = check_if_rev(t, if_rev);

    if (st == SB_OK) {
        if (kind != W_DELETE && live)
            v->op = SB_OP_UPDATE;
        v->w.follows = t->head ? t->head->rev : FOLLOWS_ORIGIN;
        st = stage(t, v);
    }
    if (st != SB_OK) {
        free(v);
        return st;
    }
    result_fill(res, v, live);
    return SB_OK;
}

static sb_status write_doc(sb_coll *c, const void *id, size_t id_len,
                           const void *payload, size_t len,
                           const sb_write_opts *o, sb_result *res,
                           enum write_kind kind)
{
    sb_status st = write_args(c, id, id_len, o);
    if (st != SB_OK)
        return st;
    if ((payload == NULL && len > 0) || len > SB_PAYLOAD_MAX)
        return SB_INVALID;

    /* Copy outside the lock; the operation is settled once locked. */
    struct version *v = write_version(kind, payload, len, o);
    if (v == NULL)
        return SB_NOMEM;

    struct group g;
    struct txn t;
    sb_result r;
    sb__group_begin(&g, c->store, o);
    txn_find(&t, &g, c, id, id_len);
    st = op_write(&t, v, kind, o ? o->if_rev : 0, &r);
    return single_end(&g, st, &r, res);
}

sb_status sb_create(sb_coll *coll, const void *id, size_t id_len,
                    const void *payload, size_t len, const sb_write_opts *opts,
                    sb_result *res)
{
    return write_doc(coll, id, id_len, payload, len, opts, res, W_CREATE);
}

sb_status sb_put(sb_coll *coll, const void *id, size_t id_len,
                 const void *payload, size_t len, const sb_write_opts *opts,
                 sb_result *res)
{
    return write_doc(coll, id, id_len, payload, len, opts, res, W_PUT);
}

sb_status sb_delete(sb_coll *coll, const void *id, size_t id_len,
                    const sb_write_opts *opts, sb_result *res)
{
    return write_doc(coll, id, id_len, NULL, 0, opts, res, W_DELETE);
}

/* ---------------------------------------------------------------------- */
/* Rollback                                                               */
/* ---------------------------------------------------------------------- */

/*
 * Walks up to `limit` undo steps back from the head of a chain (write lock
 * held, so writers' links are stable).  Returns the number of steps that
 * succeed and sets *target to where the last one lands (NULL: the absence
 * before the document's first version).
 */
static unsigned undo_walk(const struct sb_store *s, struct version *head,
                          unsigned limit, struct version **target)
{
    struct version *pos = head, *at = head;
    uint64_t link = head->w.follows;
    int64_t now = sb__now(s);
    unsigned n = 0;

    while (n < limit && link != FOLLOWS_NOTHING) {
        if (link == FOLLOWS_ORIGIN) {
            at = NULL;
            link = FOLLOWS_NOTHING;
        } else {
            while (pos != NULL && pos->rev > link)
                pos = atomic_load_explicit(&pos->older, memory_order_relaxed);
            if (pos == NULL || pos->rev != link || sb__expired(s, pos, now))
                break; /* dropped from the ring or by age */
            at = pos;
            link = pos->w.follows;
        }
        n++;
    }
    *target = at;
    return n;
}

/*
 * Stages a version restoring `target` (NULL: absence before the first
 * version) on the operation's document.
 */
static sb_status restore(struct txn *t, const struct version *target,
                         sb_result *res)
{
    const void *payload = NULL;
    size_t len = 0;
    unsigned flags = VF_ABSENT;
    uint64_t restored = 0, follows = FOLLOWS_NOTHING;

    if (target != NULL) {
        flags = target->flags & VF_ABSENT;
        payload = version_payload(target);
        len = flags ? 0 : target->len;
        restored = target->rev;
        follows = target->w.follows;
    }

    struct version *v =
        version_new(SB_OP_ROLLBACK, flags, restored, t->g->o, payload, len);
    if (v == NULL)
        return SB_NOMEM;
    v->w.follows = follows;

    int live = head_live(t);
    sb_status st = stage(t, v);
    if (st != SB_OK) {
        free(v);
        return st;
    }
    result_fill(res, v, live);
    return SB_OK;
}

sb_status sb__group_restore(struct group *g, struct sb_coll *c, struct doc *d,
                            const struct version *target, sb_result *res)
{
    struct txn t = {.g = g, .c = c, .id = d->id, .id_len = d->id_len, .d = d};
    t.hash = id_hash(c, d->id, d->id_len);
    t.head = atomic_load_explicit(&d->head, memory_order_relaxed);
    return restore(&t, target, res);
}

static void exhausted(const struct txn *t, sb_result *res)
{
    struct version *ignored;
    if (res != NULL) {
        memset(res, 0, sizeof(*res));
        res->available = undo_walk(t->g->s, t->head, UINT_MAX, &ignored);
    }
}

static sb_status op_rollback_steps(struct txn *t, unsigned steps,
                                   uint64_t if_rev, sb_result *res)
{
    struct version *target;
    if (t->head == NULL)
        return SB_NOT_FOUND;
    sb_status st = check_if_head(t, if_rev);
    if (st != SB_OK)
        return st;
    if (undo_walk(t->g->s, t->head, steps, &target) < steps) {
        exhausted(t, res);
        return SB_HISTORY_EXHAUSTED;
    }
    return restore(t, target, res);
}

static sb_status op_rollback_to(struct txn *t, uint64_t rev, uint64_t if_rev,
                                sb_result *res)
{
    const struct version *target = NULL;
    struct sb_store *s = t->g->s;
    if (rev > atomic_load_explicit(&s->revision, memory_order_relaxed))
        return SB_FUTURE;
    if (t->head == NULL)
        return SB_NOT_FOUND;
    sb_status st = check_if_head(t, if_rev);
    if (st != SB_OK)
        return st;
    st = find_as_of(s, t->head, t->head, rev, sb__now(s), &target);
    if (st == SB_HISTORY_EXHAUSTED) {
        exhausted(t, res);
        return st;
    }
    return restore(t, target, res);
}

sb_status sb_rollback_steps(sb_coll *coll, const void *id, size_t id_len,
                            unsigned steps, const sb_write_opts *opts,
                            sb_result *res)
{
    sb_status st = write_args(coll, id, id_len, opts);
    if (st != SB_OK)
        return st;
    if (steps == 0)
        return SB_INVALID;

    struct group g;
    struct txn t;
    sb_result r;
    sb__group_begin(&g, coll->store, opts);
    txn_find(&t, &g, coll, id, id_len);
    st = op_rollback_steps(&t, steps, opts ? opts->if_rev : 0, &r);
    return single_end(&g, st, &r, res);
}

sb_status sb_rollback_to(sb_coll *coll, const void *id, size_t id_len,
                         uint64_t rev, const sb_write_opts *opts,
                         sb_result *res)
{
    sb_status st = write_args(coll, id, id_len, opts);
    if (st != SB_OK)
        return st;
    if (rev == 0)
        return SB_INVALID;

    struct group g;
    struct txn t;
    sb_result r;
    sb__group_begin(&g, coll->store, opts);
    txn_find(&t, &g, coll, id, id_len);
    st = op_rollback_to(&t, rev, opts ? opts->if_rev : 0, &r);
    return single_end(&g, st, &r, res);
}

/* ---------------------------------------------------------------------- */
/* Batches                                                                */
/* ---------------------------------------------------------------------- */

/* Checks what can be checked of an operation before locking. */
static int batch_op_valid(const sb_store *s, const sb_batch_op *op)
{
    if (op->coll == NULL || op->coll->store != s ||
        !sb_id_valid(op->id, op->id_len))
        return 0;
    switch (op->kind) {
    case SB_BATCH_CREATE:
    case SB_BATCH_PUT:
        return !(op->payload == NULL && op->len > 0) &&
               op->len <= SB_PAYLOAD_MAX;
    case SB_BATCH_DELETE:
        return 1;
    case SB_BATCH_ROLLBACK_STEPS:
        return op->steps > 0;
    case SB_BATCH_ROLLBACK_TO:
        return op->rev > 0;
    }
    return 0;
}

static sb_status batch_apply(struct group *g, sb_batch_op *op)
{
    struct txn t;
    txn_find(&t, g, op->coll, op->id, op->id_len);
    switch (op->kind) {
    case SB_BATCH_CREATE:
    case SB_BATCH_PUT:
    case SB_BATCH_DELETE: {
        enum write_kind kind = op->kind == SB_BATCH_CREATE ? W_CREATE
                               : op->kind == SB_BATCH_PUT  ? W_PUT
                                                           : W_DELETE;
        struct version *v = write_version(kind, op->payload,
                                          kind == W_DELETE ? 0 : op->len, g->o);
        if (v == NULL)
            return SB_NOMEM;
        return op_write(&t, v, kind, op->if_rev, &op->result);
    }
    case SB_BATCH_ROLLBACK_STEPS:
        return op_rollback_steps(&t, op->steps, op->if_rev, &op->result);
    case SB_BATCH_ROLLBACK_TO:
        return op_rollback_to(&t, op->rev, op->if_rev, &op->result);
    }
    return SB_INVALID;
}

sb_status sb_batch(sb_store *store, sb_batch_op *ops, size_t n,
                   const sb_write_opts *opts, size_t *failed)
{
    if (store == NULL || ops == NULL || n == 0 ||
        (opts != NULL && opts->if_rev != 0))
        return SB_INVALID;
    for (size_t i = 0; i < n; i++) {
        memset(&ops[i].result, 0, sizeof(ops[i].result));
        ops[i].status = SB_OK;
    }
    for (size_t i = 0; i < n; i++) {
        if (!batch_op_valid(store, &ops[i])) {
            ops[i].status = SB_INVALID;
            if (failed != NULL)
                *failed = i;
            return SB_INVALID;
        }
    }
    sb_status st = write_args(ops[0].coll, ops[0].id, ops[0].id_len, opts);
    if (st != SB_OK) {
        if (failed != NULL)
            *failed = 0;
        return st;
    }

    struct group g;
    size_t i = 0;
    sb__group_begin(&g, store, opts);
    for (; i < n && st == SB_OK; i++) {
        st = batch_apply(&g, &ops[i]);
        ops[i].status = st;
    }
    if (st != SB_OK) {
        sb__group_abort(&g);
        i--; /* the one that failed */
    } else {
        st = sb__group_commit(&g);
        i = 0; /* a log failure is the whole batch's: name the first */
    }
    sb__group_end(&g);
    if (st != SB_OK) {
        ops[i].status = st;
        if (failed != NULL)
            *failed = i;
        return st;
    }
    for (i = 0; i < n; i++)
        ops[i].result.lsn = g.lsn;
    return group_sync(&g);
}
