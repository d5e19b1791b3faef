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
    v->cs_len = (uint8_t)cs_len;
    v->pad = 0;
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
 */
static const struct version *visible_head(const struct sb_store *s,
                                          const struct doc *d)
{
    const struct version *v =
        atomic_load_explicit(&d->head, memory_order_acquire);
    uint64_t top = atomic_load_explicit(&s->revision, memory_order_acquire);

    while (v != NULL && v->rev > top) {
        const struct version *older = load_older(v);
        if (older == NULL) {
            /* Either this is the document's first version, not yet
             * published, or its neighbour was trimmed, which happens only
             * after the revision was raised: look once more. */
            top = atomic_load_explicit(&s->revision, memory_order_acquire);
            return v->rev <= top ? v : NULL;
        }
        v = older;
    }
    return v;
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
    if (d == NULL) {
        view_none(out, NULL);
        return SB_NOT_FOUND;
    }
    const struct version *v;
    st = find_as_of(
        coll->store, atomic_load_explicit(&d->head, memory_order_acquire),
        visible_head(coll->store, d), rev, sb__now(coll->store), &v);
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

/* ---------------------------------------------------------------------- */
/* Writing                                                                */
/* ---------------------------------------------------------------------- */

/*
 * The state a writer works on: the store locked, a read section open (the
 * hash table needs one), the document found or not.
 */
struct txn {
    struct sb_store *s;
    struct sb_coll *c;
    const void *id;
    size_t id_len;
    uint64_t hash;
    struct doc *d;
    struct version *head; /* d's head, NULL if d is NULL */
    uint64_t lsn;         /* log position of the write, 0 if none */
};

static sb_status write_args(const sb_coll *c, const void *id, size_t len,
                            const sb_write_opts *o)
{
    if (c == NULL || !sb_id_valid(id, len))
        return SB_INVALID;
    if (o != NULL && (o->change_set_len > SB_CHANGE_SET_MAX ||
                      (o->change_set == NULL && o->change_set_len > 0)))
        return SB_INVALID;
    if (!sb__thread_registered())
        return SB_UNREGISTERED;
    if (c->store->wal != NULL && wal_failed(c->store->wal))
        return SB_IO;
    return SB_OK;
}

static void txn_begin(struct txn *t, struct sb_coll *c, const void *id,
                      size_t len)
{
    t->s = c->store;
    t->c = c;
    t->id = id;
    t->id_len = len;
    t->hash = id_hash(c, id, len);
    t->lsn = 0;
    pthread_mutex_lock(&t->s->write_lock);
    urcu_memb_read_lock();
    t->d = doc_find(c, id, len, t->hash);
    t->head =
        t->d ? atomic_load_explicit(&t->d->head, memory_order_relaxed) : NULL;
}

/* Ends the transaction. */
static void txn_end(struct txn *t)
{
    urcu_memb_read_unlock();
    pthread_mutex_unlock(&t->s->write_lock);
}

/* Waits, after txn_end(), until the write is as durable as the fsync
 * mode promises, unless the caller will wait itself (opts->nowait). */
static sb_status txn_sync(const struct txn *t, const sb_write_opts *o)
{
    if (t->lsn == 0 || (o != NULL && o->nowait))
        return SB_OK;
    return wal_wait(t->s->wal, t->lsn);
}

static int head_live(const struct txn *t)
{
    return t->head != NULL && !(t->head->flags & VF_ABSENT);
}

static sb_status check_if_rev(const struct txn *t, const sb_write_opts *o)
{
    if (o == NULL || o->if_rev == 0)
        return SB_OK;
    return head_live(t) && t->head->rev == o->if_rev ? SB_OK : SB_CONFLICT;
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
    r->payload = version_payload(v);
    r->len = (v->flags & VF_ABSENT) ? 0 : v->len;
}

/* Bytes the version takes as a log record: what compaction would keep. */
static uint64_t record_bytes(const struct sb_coll *c, const struct doc *d,
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

/* Frees an unlinked version once no read section can hold it any more. */
static void retire(struct version *v)
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
 * retention period; the current version always stays.  Write lock held.
 */
static void prune(struct sb_store *s, struct sb_coll *c, struct doc *d,
                  int64_t now)
{
    while (d->count > s->history ||
           (d->count > 1 && sb__expired(s, d->tail, now))) {
        struct version *old = trim_tail(d);
        s->live_bytes -= record_bytes(c, d, old);
        retire(old);
    }
}

void sb__prune(struct sb_store *s, struct sb_coll *c, struct doc *d)
{
    prune(s, c, d, sb__now(s));
}

/*
 * Makes `v`, numbered already, the head of `d` and publishes it: the head
 * (with the version's contents), the index node of a new document, then the
 * revision, then the trim.  Write lock and read section held.
 */
static void link_head(struct sb_store *s, struct sb_coll *c, struct doc *d,
                      int fresh, uint64_t hash, struct version *v)
{
    struct version *head = atomic_load_explicit(&d->head, memory_order_relaxed);

    atomic_store_explicit(&v->older, head, memory_order_relaxed);
    v->w.newer = NULL;
    if (head != NULL)
        head->w.newer = v;
    else
        d->tail = v;
    atomic_store_explicit(&d->head, v, memory_order_release);
    if (fresh) {
        cds_lfht_add(c->docs, hash, &d->node);
        sb__index_added(c);
    }
    d->count++;
    atomic_store_explicit(&s->revision, v->rev, memory_order_release);
    s->live_bytes += record_bytes(c, d, v);
    prune(s, c, d, sb__now(s));
}

/* Appends the version to the log, if the store has one. */
static sb_status log_version(struct txn *t, const struct doc *d,
                             const struct version *v)
{
    if (t->s->wal == NULL)
        return SB_OK;
    struct record r;
    sb__record_of(t->c, d, v, &r);
    return wal_append(t->s->wal, &r, &t->lsn);
}

/*
 * Numbers `v`, logs it and makes it the head of the transaction's document,
 * creating the document if needed.  On failure nothing was changed and `v`
 * still belongs to the caller.
 */
static sb_status commit(struct txn *t, struct version *v)
{
    struct sb_store *s = t->s;
    struct doc *d = t->d;
    int fresh = d == NULL;

    if (fresh && (d = doc_new(t->id, t->id_len)) == NULL)
        return SB_NOMEM;
    v->rev = atomic_load_explicit(&s->revision, memory_order_relaxed) + 1;
    v->time_ns = commit_time(s);
    if (t->head == NULL)
        v->flags |= VF_FIRST;

    sb_status st = log_version(t, d, v);
    if (st != SB_OK) {
        if (fresh)
            free(d);
        return st;
    }
    link_head(s, t->c, d, fresh, t->hash, v);
    t->d = d;
    sb__compact_maybe(s);
    return SB_OK;
}

sb_status sb__replay(struct sb_store *s, const struct record *r)
{
    sb_coll *c;
    sb_status st = sb_collection_open(s, r->coll, r->coll_len, &c);
    if (st != SB_OK)
        return st;

    sb_write_opts o = {.change_set = r->cs, .change_set_len = r->cs_len};
    struct version *v = version_new((sb_op)r->op, r->flags, r->restored, &o,
                                    r->payload, r->len);
    if (v == NULL)
        return SB_NOMEM;
    v->rev = r->rev;
    v->time_ns = r->time_ns;
    v->w.follows = r->follows;
    if (r->time_ns > s->last_time_ns)
        s->last_time_ns = r->time_ns;

    uint64_t hash = id_hash(c, r->id, r->id_len);
    urcu_memb_read_lock();
    struct doc *d = doc_find(c, r->id, r->id_len, hash);
    int fresh = d == NULL;
    if (fresh && (d = doc_new(r->id, r->id_len)) == NULL)
        st = SB_NOMEM;
    else {
        /* A snapshot lists each document's versions in turn, so revisions
         * rise per document only: keep the store's at the highest. */
        uint64_t top = atomic_load_explicit(&s->revision, memory_order_relaxed);
        link_head(s, c, d, fresh, hash, v);
        if (top > r->rev)
            atomic_store_explicit(&s->revision, top, memory_order_release);
    }
    urcu_memb_read_unlock();
    if (st != SB_OK)
        free(v);
    return st;
}

static void result_fill(sb_result *res, const struct txn *t,
                        const struct version *v, int was_live)
{
    if (res == NULL)
        return;
    memset(res, 0, sizeof(*res));
    res->rev = v->rev;
    res->absent = (v->flags & VF_ABSENT) != 0;
    res->created = !was_live && !res->absent;
    res->restored = version_restored(v);
    res->lsn = t->lsn;
}

enum write_kind { W_CREATE, W_PUT, W_DELETE };

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
    unsigned flags = kind == W_DELETE ? VF_ABSENT : 0;
    struct version *v =
        version_new(kind == W_DELETE ? SB_OP_DELETE : SB_OP_CREATE, flags, 0, o,
                    payload, len);
    if (v == NULL)
        return SB_NOMEM;

    struct txn t;
    txn_begin(&t, c, id, id_len);
    int live = head_live(&t);
    if (kind == W_CREATE && live)
        st = SB_EXISTS;
    else if (kind == W_DELETE && !live)
        st = SB_NOT_FOUND;
    else
        st = check_if_rev(&t, o);

    if (st == SB_OK) {
        if (kind != W_DELETE && live)
            v->op = SB_OP_UPDATE;
        v->w.follows = t.head ? t.head->rev : FOLLOWS_ORIGIN;
        st = commit(&t, v);
    }
    if (st == SB_OK)
        result_fill(res, &t, v, live);
    txn_end(&t);
    if (st != SB_OK) {
        free(v);
        return st;
    }
    return txn_sync(&t, o);
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
 * Walks up to `limit` undo steps back from the head of a chain (all of it
 * published: the write lock is held).  Returns the number of steps that
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
 * Appends a version restoring `target` (NULL: absence before the first
 * version) to the transaction's document.
 */
static sb_status restore(struct txn *t, struct version *target,
                         const sb_write_opts *o, sb_result *res)
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
        version_new(SB_OP_ROLLBACK, flags, restored, o, payload, len);
    if (v == NULL)
        return SB_NOMEM;
    v->w.follows = follows;

    int live = head_live(t);
    sb_status st = commit(t, v);
    if (st != SB_OK) {
        free(v);
        return st;
    }
    result_fill(res, t, v, live);
    return SB_OK;
}

/* Common checks of both rollbacks, once the transaction has begun. */
static sb_status rollback_check(const struct txn *t, const sb_write_opts *o)
{
    if (t->head == NULL)
        return SB_NOT_FOUND;
    return check_if_rev(t, o);
}

static void exhausted(const struct txn *t, sb_result *res)
{
    struct version *ignored;
    if (res != NULL) {
        memset(res, 0, sizeof(*res));
        res->available = undo_walk(t->s, t->head, UINT_MAX, &ignored);
    }
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

    struct txn t;
    struct version *target;
    txn_begin(&t, coll, id, id_len);
    st = rollback_check(&t, opts);
    if (st == SB_OK && undo_walk(t.s, t.head, steps, &target) < steps) {
        st = SB_HISTORY_EXHAUSTED;
        exhausted(&t, res);
    }
    if (st == SB_OK)
        st = restore(&t, target, opts, res);
    txn_end(&t);
    return st == SB_OK ? txn_sync(&t, opts) : st;
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

    struct txn t;
    const struct version *target = NULL;
    txn_begin(&t, coll, id, id_len);
    if (rev > atomic_load_explicit(&t.s->revision, memory_order_relaxed))
        st = SB_FUTURE;
    else
        st = rollback_check(&t, opts);
    if (st == SB_OK) {
        st = find_as_of(t.s, t.head, t.head, rev, sb__now(t.s), &target);
        if (st == SB_HISTORY_EXHAUSTED)
            exhausted(&t, res);
    }
    if (st == SB_OK)
        st = restore(&t, (struct version *)target, opts, res);
    txn_end(&t);
    return st == SB_OK ? txn_sync(&t, opts) : st;
}
