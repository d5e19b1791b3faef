/*
 * changeset.c - the change-set index: what each change set wrote, the
 * states it pins, and undoing a change set as one atomic group.
 *
 * Everything here runs under the store's write lock; readers of documents
 * never look at the index.
 *
 * For each document a change set wrote, an entry keeps the revisions it
 * wrote, each with the revision of the head it replaced, and the state
 * before its first write (`pre`).  That is enough to tell, without walking
 * the chain, whether anyone else wrote the document since: the change set
 * is the only writer after its first write exactly when the current head
 * is its last write and each of its writes replaced its previous one.
 *
 * Pinning: `pre` is held (its `pins` count raised), so that pruning
 * detaches it from the chain instead of freeing it.  A change set lets its
 * pins go when it is dropped (least recently written first, past
 * max_change_sets) or, with a retention period, once its last write is
 * older than that; its record of what it wrote stays until it is dropped,
 * and documents whose earlier state is gone by then are reported lost.
 *
 * Automatic change sets, made up by the host for one call, are also
 * dropped past max_automatic_change_sets, the least recently written of
 * them first: a server gives one to every request that names none, and
 * those must not crowd out the change sets clients named.  A write that
 * names one without the flag makes it an ordinary change set.
 *
 * Persistence: the log records every version with its change set and
 * actor, so replaying the log rebuilds the index through sb__cs_note() like
 * live writes do.  A snapshot adds, after the documents, a copy of every
 * pinned version (RG_PINNED) and one record per change set
 * (RECORD_OP_CHANGESET) holding its entries; replay turns them back into
 * the index.
 */
#include "internal.h"
#include "record.h"
#include "wal.h"

#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS   64
#define LINEAR_SEARCH 8 /* entries searched in order before a table helps */

struct cs_write {
    uint64_t rev;  /* a revision the change set wrote */
    uint64_t prev; /* the head it replaced; 0 for none */
};

struct cs_entry {
    struct sb_coll *coll;
    struct doc *doc;
    struct version *pre; /* pinned; NULL for none, or once let go */
    uint64_t pre_rev;    /* 0: the document had no version before */
    uint32_t n, cap;
    union {
        struct cs_write one; /* cap <= 1 */
        struct cs_write *many;
    } w;
};

struct changeset {
    struct changeset *next;          /* hash chain */
    struct changeset *older, *newer; /* by last write */
    uint64_t hash;
    int64_t first_ns, last_ns;
    uint64_t first_rev, last_rev, writes;
    struct cs_entry *entries;
    size_t n, cap;
    uint32_t *slots; /* entry index + 1 by document, once n > LINEAR_SEARCH */
    size_t nslots;
    int pinned; /* new entries pin; 0 once the pins were let go */
    struct changeset *auto_older, *auto_newer; /* when automatic */
    uint8_t automatic; /* every write so far was flagged VF_AUTO_CS */
    uint8_t id_len, actor_len;
    char *actor; /* allocated once a write names one */
    char id[];
};

static void pending_clear(struct sb_store *s);

static const struct cs_write *entry_writes(const struct cs_entry *e)
{
    return e->cap <= 1 ? &e->w.one : e->w.many;
}

static uint64_t cs_hash(const struct sb_store *s, const void *id, size_t len)
{
    return sb__hash(s->hash_seed ^ 0x6373, id, len);
}

static size_t doc_slot(const struct changeset *cs, const struct doc *d)
{
    uint64_t h = (uint64_t)(uintptr_t)d * 0x9e3779b97f4a7c15u;
    return (size_t)(h >> 32) & (cs->nslots - 1);
}

/* ---------------------------------------------------------------------- */
/* The table of change sets                                               */
/* ---------------------------------------------------------------------- */

void sb__cs_init(struct sb_store *s, size_t max, size_t max_auto)
{
    memset(&s->cs, 0, sizeof(s->cs));
    s->cs.max = max;
    s->cs.max_auto = max_auto;
}

static struct changeset *cs_find(const struct sb_store *s, const void *id,
                                 size_t len, uint64_t hash)
{
    const struct cs_index *ix = &s->cs;
    if (ix->nbuckets == 0)
        return NULL;
    for (struct changeset *cs = ix->buckets[hash & (ix->nbuckets - 1)]; cs;
         cs = cs->next)
        if (cs->hash == hash && cs->id_len == len &&
            memcmp(cs->id, id, len) == 0)
            return cs;
    return NULL;
}

static int table_grow(struct cs_index *ix)
{
    size_t n = ix->nbuckets ? ix->nbuckets * 2 : MIN_BUCKETS;
    struct changeset **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return -1;
    for (size_t i = 0; i < ix->nbuckets; i++) {
        for (struct changeset *cs = ix->buckets[i], *next; cs; cs = next) {
            next = cs->next;
            cs->next = b[cs->hash & (n - 1)];
            b[cs->hash & (n - 1)] = cs;
        }
    }
    free(ix->buckets);
    ix->buckets = b;
    ix->nbuckets = n;
    return 0;
}

static void lru_unlink(struct cs_index *ix, struct changeset *cs)
{
    if (ix->first_pinned == cs)
        ix->first_pinned = cs->newer;
    if (cs->older)
        cs->older->newer = cs->newer;
    else
        ix->oldest = cs->newer;
    if (cs->newer)
        cs->newer->older = cs->older;
    else
        ix->newest = cs->older;
    cs->older = cs->newer = NULL;
}

static void lru_append(struct cs_index *ix, struct changeset *cs)
{
    cs->older = ix->newest;
    cs->newer = NULL;
    if (ix->newest)
        ix->newest->newer = cs;
    else
        ix->oldest = cs;
    ix->newest = cs;
    if (ix->first_pinned == NULL)
        ix->first_pinned = cs;
}

static void auto_unlink(struct cs_index *ix, struct changeset *cs)
{
    if (cs->auto_older)
        cs->auto_older->auto_newer = cs->auto_newer;
    else
        ix->auto_oldest = cs->auto_newer;
    if (cs->auto_newer)
        cs->auto_newer->auto_older = cs->auto_older;
    else
        ix->auto_newest = cs->auto_older;
    cs->auto_older = cs->auto_newer = NULL;
}

static void auto_append(struct cs_index *ix, struct changeset *cs)
{
    cs->auto_older = ix->auto_newest;
    cs->auto_newer = NULL;
    if (ix->auto_newest)
        ix->auto_newest->auto_newer = cs;
    else
        ix->auto_oldest = cs;
    ix->auto_newest = cs;
}

static struct changeset *cs_new(struct sb_store *s, const char *id, size_t len,
                                uint64_t hash, int automatic)
{
    struct cs_index *ix = &s->cs;
    if (ix->count >= ix->nbuckets && table_grow(ix) != 0)
        return NULL;
    struct changeset *cs = calloc(1, sizeof(*cs) + len);
    if (cs == NULL)
        return NULL;
    cs->hash = hash;
    cs->id_len = (uint8_t)len;
    memcpy(cs->id, id, len);
    cs->pinned = 1;
    cs->next = ix->buckets[hash & (ix->nbuckets - 1)];
    ix->buckets[hash & (ix->nbuckets - 1)] = cs;
    ix->count++;
    lru_append(ix, cs);
    if (automatic) {
        cs->automatic = 1;
        ix->nauto++;
        auto_append(ix, cs);
    }
    return cs;
}

/* Lets one pinned version go: freed now if no chain holds it any more. */
static void unpin(struct sb_store *s, struct cs_entry *e)
{
    struct version *v = e->pre;
    if (v == NULL)
        return;
    e->pre = NULL;
    v->pins--;
    if (v->pins == PIN_DETACHED) {
        s->live_bytes -= sb__record_bytes(e->coll, e->doc, v);
        sb__retire(v);
    }
}

static void release_pins(struct sb_store *s, struct changeset *cs)
{
    for (size_t i = 0; i < cs->n; i++)
        unpin(s, &cs->entries[i]);
    cs->pinned = 0;
}

/* Records who made the change set; an actor that finds no memory is
 * left unknown, which loses nothing the change set needs to be undone. */
static void set_actor(struct changeset *cs, const char *actor, size_t len)
{
    if (len == 0 || (cs->actor = malloc(len)) == NULL)
        return;
    memcpy(cs->actor, actor, len);
    cs->actor_len = (uint8_t)len;
}

static void cs_destroy(struct changeset *cs)
{
    free(cs->actor);
    for (size_t i = 0; i < cs->n; i++)
        if (cs->entries[i].cap > 1)
            free(cs->entries[i].w.many);
    free(cs->entries);
    free(cs->slots);
    free(cs);
}

static void cs_drop(struct sb_store *s, struct changeset *cs)
{
    struct cs_index *ix = &s->cs;
    release_pins(s, cs);
    lru_unlink(ix, cs);
    if (cs->automatic) {
        auto_unlink(ix, cs);
        ix->nauto--;
    }
    struct changeset **p = &ix->buckets[cs->hash & (ix->nbuckets - 1)];
    while (*p != cs)
        p = &(*p)->next;
    *p = cs->next;
    ix->count--;
    cs_destroy(cs);
}

void sb__cs_expire(struct sb_store *s)
{
    struct cs_index *ix = &s->cs;
    while (ix->nauto > ix->max_auto)
        cs_drop(s, ix->auto_oldest);
    while (ix->count > ix->max)
        cs_drop(s, ix->oldest);
    if (s->retain_ns <= 0)
        return;
    int64_t horizon = sb__now(s) - s->retain_ns;
    while (ix->first_pinned != NULL && ix->first_pinned->last_ns < horizon) {
        struct changeset *cs = ix->first_pinned;
        release_pins(s, cs);
        ix->first_pinned = cs->newer;
    }
}

void sb__cs_free(struct sb_store *s)
{
    struct cs_index *ix = &s->cs;
    for (struct changeset *cs = ix->oldest, *next; cs; cs = next) {
        next = cs->newer;
        /* The store is closing: chains are freed after this, detached
         * pinned versions only here, and no reader is left. */
        for (size_t i = 0; i < cs->n; i++) {
            struct version *v = cs->entries[i].pre;
            if (v != NULL && --v->pins == PIN_DETACHED)
                free(v);
        }
        cs_destroy(cs);
    }
    pending_clear(s);
    free(ix->pending);
    free(ix->buckets);
    memset(ix, 0, sizeof(*ix));
}

/* ---------------------------------------------------------------------- */
/* Entries                                                                */
/* ---------------------------------------------------------------------- */

static int slots_rebuild(struct changeset *cs, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (slots == NULL)
        return -1;
    free(cs->slots);
    cs->slots = slots;
    cs->nslots = nslots;
    for (size_t i = 0; i < cs->n; i++) {
        size_t j = doc_slot(cs, cs->entries[i].doc);
        while (slots[j] != 0)
            j = (j + 1) & (nslots - 1);
        slots[j] = (uint32_t)i + 1;
    }
    return 0;
}

static struct cs_entry *entry_find(struct changeset *cs, const struct doc *d)
{
    if (cs->slots == NULL) {
        for (size_t i = 0; i < cs->n; i++)
            if (cs->entries[i].doc == d)
                return &cs->entries[i];
        return NULL;
    }
    for (size_t j = doc_slot(cs, d); cs->slots[j] != 0;
         j = (j + 1) & (cs->nslots - 1))
        if (cs->entries[cs->slots[j] - 1].doc == d)
            return &cs->entries[cs->slots[j] - 1];
    return NULL;
}

static struct cs_entry *entry_add(struct changeset *cs, struct sb_coll *c,
                                  struct doc *d)
{
    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? cs->cap * 2 : 1;
        struct cs_entry *e = realloc(cs->entries, cap * sizeof(*e));
        if (e == NULL)
            return NULL;
        cs->entries = e;
        cs->cap = cap;
    }
    /* Keep the table at most half full. */
    if (cs->n + 1 > LINEAR_SEARCH && 2 * (cs->n + 1) > cs->nslots &&
        slots_rebuild(cs, cs->nslots ? cs->nslots * 2 : 4 * LINEAR_SEARCH))
        return NULL;
    struct cs_entry *e = &cs->entries[cs->n++];
    memset(e, 0, sizeof(*e));
    e->coll = c;
    e->doc = d;
    if (cs->slots != NULL) {
        size_t j = doc_slot(cs, d);
        while (cs->slots[j] != 0)
            j = (j + 1) & (cs->nslots - 1);
        cs->slots[j] = (uint32_t)cs->n;
    }
    return e;
}

static int entry_push(struct cs_entry *e, uint64_t rev, uint64_t prev)
{
    if (e->n == e->cap) {
        uint32_t cap = e->cap ? e->cap * 2 : 1;
        if (cap > 1) {
            struct cs_write *w = e->cap <= 1
                                     ? malloc(cap * sizeof(*w))
                                     : realloc(e->w.many, cap * sizeof(*w));
            if (w == NULL)
                return -1;
            if (e->cap == 1)
                w[0] = e->w.one;
            e->w.many = w;
        }
        e->cap = cap;
    }
    struct cs_write *w = e->cap <= 1 ? &e->w.one : e->w.many;
    w[e->n++] = (struct cs_write){rev, prev};
    return 0;
}

/* Holds `v` for the entry, unless too many change sets hold it already
 * (which the design rules out: see the top of the file). */
static void pin(struct cs_entry *e, struct version *v)
{
    if (v != NULL && (v->pins & PIN_COUNT) < PIN_COUNT) {
        v->pins++;
        e->pre = v;
    }
}

/* Makes `cs` the most recently written, by a write flagged automatic or
 * not (which makes an automatic change set an ordinary one). */
static void cs_touch(struct cs_index *ix, struct changeset *cs, int automatic)
{
    if (ix->newest != cs) {
        lru_unlink(ix, cs);
        lru_append(ix, cs);
    }
    if (cs->automatic) {
        auto_unlink(ix, cs);
        if (automatic) {
            auto_append(ix, cs);
        } else {
            cs->automatic = 0;
            ix->nauto--;
        }
    }
    if (!cs->pinned) {
        /* Written again after its pins went: new entries pin again. */
        cs->pinned = 1;
        if (ix->first_pinned == NULL)
            ix->first_pinned = cs;
    }
}

void sb__cs_note(struct sb_store *s, struct sb_coll *c, struct doc *d,
                 struct version *v, struct version *prev, const char *actor,
                 size_t actor_len)
{
    struct cs_index *ix = &s->cs;
    if (ix->max == 0)
        return;
    const char *id = sb__version_cs(v);
    int automatic = (v->flags & VF_AUTO_CS) != 0;
    uint64_t hash = cs_hash(s, id, v->cs_len);
    struct changeset *cs = cs_find(s, id, v->cs_len, hash);
    if (cs == NULL && automatic && ix->max_auto == 0)
        return; /* automatic ones are not kept */
    if (cs == NULL && (cs = cs_new(s, id, v->cs_len, hash, automatic)) == NULL)
        goto nomem;
    cs_touch(ix, cs, automatic);

    struct cs_entry *e = entry_find(cs, d);
    if (e == NULL) {
        if ((e = entry_add(cs, c, d)) == NULL)
            goto nomem;
        e->pre_rev = prev ? prev->rev : 0;
        if (cs->pinned)
            pin(e, prev);
    }
    if (entry_push(e, v->rev, prev ? prev->rev : 0) != 0)
        goto nomem;
    if (cs->actor_len == 0 && actor_len > 0)
        set_actor(cs, actor, actor_len);
    if (cs->writes++ == 0) {
        cs->first_ns = v->time_ns;
        cs->first_rev = v->rev;
    }
    cs->last_ns = v->time_ns;
    cs->last_rev = v->rev;
    return;

nomem:
    /* A change set that cannot say everything it wrote must not be undone
     * in part as if it were whole: forget it. */
    sb__log(s, SB_LOG_ERROR,
            "change set %.*s: out of memory while indexing revision %llu; "
            "it can no longer be rolled back as a whole",
            (int)v->cs_len, id, (unsigned long long)v->rev);
    if (cs != NULL)
        cs_drop(s, cs);
}

/* ---------------------------------------------------------------------- */
/* Lookups                                                                */
/* ---------------------------------------------------------------------- */

static void info_fill(const struct changeset *cs, sb_cs_info *out)
{
    memset(out, 0, sizeof(*out));
    out->id = cs->id;
    out->id_len = cs->id_len;
    out->actor = cs->actor_len ? cs->actor : NULL;
    out->actor_len = cs->actor_len;
    out->first_ns = cs->first_ns;
    out->last_ns = cs->last_ns;
    out->first_rev = cs->first_rev;
    out->last_rev = cs->last_rev;
    out->writes = cs->writes;
    out->docs = cs->n;
    out->pinned = cs->pinned;
}

/* The version `rev` of a document, if its chain still holds it and it has
 * not expired (the current version never does). */
static struct version *chain_version(const struct sb_store *s,
                                     const struct doc *d, uint64_t rev,
                                     int64_t now)
{
    struct version *head = atomic_load_explicit(&d->head, memory_order_relaxed);
    for (struct version *v = head; v != NULL;
         v = atomic_load_explicit(&v->older, memory_order_relaxed)) {
        if (v->rev == rev)
            return v == head || !sb__expired(s, v, now) ? v : NULL;
        if (v->rev < rev)
            break;
    }
    return NULL;
}

/* The state an entry restores: sets *target (NULL: absence before the
 * first version) and returns 1, or returns 0 when it is gone. */
static int entry_target(const struct sb_store *s, const struct cs_entry *e,
                        int64_t now, const struct version **target)
{
    if (e->pre_rev == 0) {
        *target = NULL;
        return 1;
    }
    *target = e->pre ? e->pre : chain_version(s, e->doc, e->pre_rev, now);
    return *target != NULL;
}

static sb_status cs_args(sb_store *s, const void *id, size_t len)
{
    if (s == NULL || id == NULL || len == 0 || len > SB_CHANGE_SET_MAX)
        return SB_INVALID;
    if (!sb__thread_registered())
        return SB_UNREGISTERED;
    return SB_OK;
}

sb_status sb_changeset_get(sb_store *s, const void *id, size_t len,
                           int (*info)(void *ctx, const sb_cs_info *cs),
                           int (*doc)(void *ctx, const sb_cs_doc *d), void *ctx)
{
    sb_status st = cs_args(s, id, len);
    if (st != SB_OK)
        return st;
    if (info == NULL)
        return SB_INVALID;

    pthread_mutex_lock(&s->write_lock);
    sb__cs_expire(s); /* pins past the retention go even without writes */
    struct changeset *cs = cs_find(s, id, len, cs_hash(s, id, len));
    if (cs == NULL) {
        pthread_mutex_unlock(&s->write_lock);
        return SB_NOT_FOUND;
    }
    sb_cs_info in;
    info_fill(cs, &in);
    int stop = info(ctx, &in);
    int64_t now = sb__now(s);
    uint64_t *revs = NULL;
    for (size_t i = 0; !stop && doc != NULL && i < cs->n; i++) {
        const struct cs_entry *e = &cs->entries[i];
        uint64_t *r = realloc(revs, e->n * sizeof(*r));
        if (r == NULL) {
            st = SB_NOMEM;
            break;
        }
        revs = r;
        const struct cs_write *w = entry_writes(e);
        for (uint32_t k = 0; k < e->n; k++)
            revs[k] = w[k].rev;
        const struct version *target;
        sb_cs_doc dv = {.coll = e->coll,
                        .id = e->doc->id,
                        .id_len = e->doc->id_len,
                        .revs = revs,
                        .nrevs = e->n,
                        .before_rev = e->pre_rev,
                        .restorable = entry_target(s, e, now, &target)};
        stop = doc(ctx, &dv);
    }
    pthread_mutex_unlock(&s->write_lock);
    free(revs);
    return st;
}

sb_status sb_changeset_list(sb_store *s, const sb_cs_filter *f,
                            int (*fn)(void *ctx, const sb_cs_info *cs),
                            void *ctx)
{
    if (s == NULL || fn == NULL ||
        (f != NULL && (f->actor_len > SB_ACTOR_MAX ||
                       (f->actor == NULL && f->actor_len > 0))))
        return SB_INVALID;
    if (!sb__thread_registered())
        return SB_UNREGISTERED;

    pthread_mutex_lock(&s->write_lock);
    sb__cs_expire(s);
    /* Newest first, and last writes rise along the list: the walk ends at
     * the first change set older than `since`. */
    for (struct changeset *cs = s->cs.newest; cs; cs = cs->older) {
        if (f != NULL && f->before != 0 && cs->last_rev >= f->before)
            continue;
        if (f != NULL && cs->last_ns < f->since_ns)
            break;
        if (f != NULL && f->actor_len > 0 &&
            (cs->actor_len != f->actor_len ||
             memcmp(cs->actor, f->actor, f->actor_len) != 0))
            continue;
        sb_cs_info in;
        info_fill(cs, &in);
        if (fn(ctx, &in))
            break;
    }
    pthread_mutex_unlock(&s->write_lock);
    return SB_OK;
}

/* ---------------------------------------------------------------------- */
/* Rollback                                                               */
/* ---------------------------------------------------------------------- */

/* Whether the change set is the only writer of the entry's document since
 * its first write to it. */
static int entry_clean(const struct cs_entry *e)
{
    const struct cs_write *w = entry_writes(e);
    const struct version *head =
        atomic_load_explicit(&e->doc->head, memory_order_relaxed);
    if (head == NULL || head->rev != w[e->n - 1].rev)
        return 0;
    for (uint32_t k = 1; k < e->n; k++)
        if (w[k].prev != w[k - 1].rev)
            return 0;
    return 1;
}

/* The write of the entry with revision `rev`, or NULL. */
static const struct cs_write *write_of(const struct cs_entry *e, uint64_t rev)
{
    const struct cs_write *w = entry_writes(e);
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w[mid].rev == rev)
            return &w[mid];
        if (w[mid].rev < rev)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/*
 * Whether versions other change sets wrote between the entry's first write
 * and `oldest`, the oldest version the chain still holds, were dropped.
 * Walks back from `oldest` through the heads each version replaced: the
 * entry knows that of its own writes, and a create, update or delete
 * records it as its undo link; a rollback does not, so one there counts
 * as a maybe.
 */
static int dropped_by_others(const struct cs_entry *e,
                             const struct version *oldest)
{
    uint64_t first = entry_writes(e)[0].rev;
    const struct cs_write *own = write_of(e, oldest->rev);
    if (own == NULL && oldest->op == SB_OP_ROLLBACK)
        return 1;
    uint64_t p = own ? own->prev : oldest->w.follows;
    while (p != first) {
        const struct cs_write *w = p > first ? write_of(e, p) : NULL;
        if (w == NULL)
            return 1;
        p = w->prev;
    }
    return 0;
}

/* The versions other change sets wrote on the entry's document after the
 * change set's first write, newest first, as far as the chain holds them. */
static size_t entry_later(const struct sb_store *s, const struct changeset *cs,
                          const struct cs_entry *e, sb_cs_later **out,
                          size_t *cap, int *more)
{
    size_t n = 0;
    uint64_t first = entry_writes(e)[0].rev;
    const struct version *v =
        atomic_load_explicit(&e->doc->head, memory_order_relaxed);
    const struct version *last = NULL;
    *more = 0;
    for (; v != NULL && v->rev > first;
         last = v, v = atomic_load_explicit(&v->older, memory_order_relaxed)) {
        const char *vcs = v->cs_len ? sb__version_cs(v) : NULL;
        if (v->cs_len == cs->id_len && memcmp(vcs, cs->id, cs->id_len) == 0)
            continue;
        if (n == *cap) {
            size_t c = *cap ? *cap * 2 : 8;
            sb_cs_later *l = realloc(*out, c * sizeof(*l));
            if (l == NULL)
                break;
            *out = l;
            *cap = c;
        }
        sb_cs_later *l = &(*out)[n++];
        memset(l, 0, sizeof(*l));
        l->rev = v->rev;
        l->op = (sb_op)v->op;
        l->change_set = vcs;
        l->change_set_len = v->cs_len;
        if (vcs != NULL) {
            const struct changeset *other =
                cs_find(s, vcs, v->cs_len, cs_hash(s, vcs, v->cs_len));
            if (other != NULL && other->actor_len > 0) {
                l->actor = other->actor;
                l->actor_len = other->actor_len;
            }
        }
    }
    if (v == NULL && last != NULL && last->rev > first)
        *more = dropped_by_others(e, last);
    return n;
}

/*
 * Reports one document's plan.  When the undo is applied, its version is
 * staged at the head but nothing is pruned yet, so the document reads as
 * it did for the dry run, one version newer.
 */
static int report(const struct sb_store *s, const struct changeset *cs,
                  const struct cs_entry *e, sb_cs_state state,
                  const struct version *target, const sb_result *res,
                  sb_cs_later **later, size_t *later_cap,
                  int (*fn)(void *ctx, const sb_cs_plan *plan), void *ctx)
{
    const struct version *from =
        atomic_load_explicit(&e->doc->head, memory_order_relaxed);
    uint64_t rev = res != NULL ? res->rev : 0;
    if (rev != 0)
        from = atomic_load_explicit(&from->older, memory_order_relaxed);

    sb_cs_plan p = {.coll = e->coll,
                    .id = e->doc->id,
                    .id_len = e->doc->id_len,
                    .state = state,
                    .from_rev = from ? from->rev : 0,
                    .from_absent = !sb__version_live(from),
                    .to_rev = e->pre_rev,
                    .to_absent = e->pre_rev == 0,
                    .rev = rev};
    if (state != SB_CS_LOST) {
        p.to_absent = !sb__version_live(target);
        if (!p.to_absent) {
            p.to_payload = sb__version_payload(target);
            p.to_len = target->len;
        }
    }
    if (state == SB_CS_CONFLICT) {
        p.nlater = entry_later(s, cs, e, later, later_cap, &p.later_more);
        p.later = *later;
        if (rev != 0 && p.nlater > 0 && (*later)[0].rev == rev) {
            p.later++; /* the undo itself */
            p.nlater--;
        }
    }
    return fn(ctx, &p);
}

sb_status sb_changeset_rollback(sb_store *s, const void *id, size_t len,
                                unsigned flags, const sb_write_opts *opts,
                                int (*fn)(void *ctx, const sb_cs_plan *plan),
                                void *ctx, sb_cs_outcome *out)
{
    sb_status st = cs_args(s, id, len);
    if (st != SB_OK)
        return st;
    if (opts == NULL || opts->change_set_len == 0 ||
        opts->change_set_len > SB_CHANGE_SET_MAX || opts->change_set == NULL ||
        (opts->change_set_len == len &&
         memcmp(opts->change_set, id, len) == 0) ||
        opts->actor_len > SB_ACTOR_MAX ||
        (opts->actor == NULL && opts->actor_len > 0) || opts->if_rev != 0 ||
        (flags & ~(unsigned)(SB_CS_DRY_RUN | SB_CS_FORCE)))
        return SB_INVALID;
    if (s->wal != NULL && wal_failed(s->wal))
        return SB_IO;

    struct group g;
    sb__group_begin(&g, s, opts);
    sb__cs_expire(s);
    struct changeset *cs = cs_find(s, id, len, cs_hash(s, id, len));
    if (cs == NULL) {
        sb__group_end(&g);
        return SB_NOT_FOUND;
    }

    /* Plan: each entry's state, counted. */
    sb_cs_outcome o = {.docs = cs->n};
    int64_t now = sb__now(s);
    size_t n = cs->n;
    unsigned char *state = malloc(n + 1);
    const struct version **target = malloc((n + 1) * sizeof(*target));
    sb_result *res = calloc(n + 1, sizeof(*res));
    if (state == NULL || target == NULL || res == NULL)
        st = SB_NOMEM;
    for (size_t i = 0; st == SB_OK && i < n; i++) {
        const struct cs_entry *e = &cs->entries[i];
        const struct version *head =
            atomic_load_explicit(&e->doc->head, memory_order_relaxed);
        if (!entry_target(s, e, now, &target[i]))
            state[i] = SB_CS_LOST, o.lost++;
        else if (!entry_clean(e))
            state[i] = SB_CS_CONFLICT, o.conflicts++;
        else if (!sb__version_live(head) && !sb__version_live(target[i]))
            state[i] = SB_CS_UNCHANGED, o.unchanged++;
        else
            state[i] = SB_CS_CLEAN, o.clean++;
    }
    if (st == SB_OK && !(flags & SB_CS_FORCE))
        st = o.conflicts ? SB_CONFLICT : o.lost ? SB_HISTORY_EXHAUSTED : SB_OK;

    /* Stage the undo under the new change set.  Staging links versions
     * only, so the plan reported below is still the dry run's; the commit
     * that prunes comes after.  (It indexes the new change set only, so
     * `cs` and its entries stay where they are until then.) */
    int apply = st == SB_OK && !(flags & SB_CS_DRY_RUN);
    for (size_t i = 0; apply && st == SB_OK && i < n; i++) {
        if (state[i] == SB_CS_CLEAN || state[i] == SB_CS_CONFLICT)
            st = sb__group_restore(&g, cs->entries[i].coll, cs->entries[i].doc,
                                   target[i], &res[i]);
    }
    if (apply && st == SB_OK && g.n > 0) {
        o.restored = g.n;
        o.first_rev = g.items[0].v->rev;
        o.last_rev = g.items[g.n - 1].v->rev;
    }

    sb_cs_later *later = NULL;
    size_t later_cap = 0;
    for (size_t i = 0; fn != NULL && st != SB_NOMEM && i < n; i++)
        if (report(s, cs, &cs->entries[i], (sb_cs_state)state[i], target[i],
                   apply && st == SB_OK ? &res[i] : NULL, &later, &later_cap,
                   fn, ctx))
            break;
    free(later);

    if (apply && st == SB_OK) {
        st = sb__group_commit(&g);
        if (st != SB_OK)
            o.restored = o.first_rev = o.last_rev = 0;
        o.lsn = g.lsn;
    } else {
        sb__group_abort(&g);
    }
    sb__group_end(&g);
    free(res);
    free(state);
    free(target);
    if (out != NULL)
        *out = o;
    if (st != SB_OK || !apply)
        return st;
    return o.lsn && !opts->nowait ? wal_wait(s->wal, o.lsn) : SB_OK;
}

/* ---------------------------------------------------------------------- */
/* Snapshots                                                              */
/* ---------------------------------------------------------------------- */

struct out {
    unsigned char *buf;
    size_t len, cap;
    int failed;
};

static unsigned char *out_reserve(struct out *o, size_t more)
{
    if (o->failed)
        return NULL;
    if (o->cap - o->len < more) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap - o->len < more)
            cap *= 2;
        unsigned char *b = realloc(o->buf, cap);
        if (b == NULL) {
            o->failed = 1;
            return NULL;
        }
        o->buf = b;
        o->cap = cap;
    }
    unsigned char *p = o->buf + o->len;
    o->len += more;
    return p;
}

static void out_bytes(struct out *o, const void *p, size_t n)
{
    unsigned char *d = out_reserve(o, n);
    if (d != NULL && n > 0)
        memcpy(d, p, n);
}

static void out_u64(struct out *o, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    out_bytes(o, b, 8);
}

static void out_record(struct out *o, const struct record *r)
{
    unsigned char *d = out_reserve(o, record_size(r));
    if (d != NULL)
        record_encode(r, d);
}

/*
 * The payload of a change set's record: u8 pinned, i64 first_ns,
 * u64 first_rev, u64 writes, u64 entries, then per entry: u8 collection
 * length, the name, u64 id length, the id, u64 pre_rev, u8 whether pre is
 * pinned, u64 writes, then (u64 rev, u64 prev) per write.
 */
static void cs_encode(struct out *p, const struct changeset *cs)
{
    unsigned char pinned = (unsigned char)cs->pinned;
    out_bytes(p, &pinned, 1);
    out_u64(p, (uint64_t)cs->first_ns);
    out_u64(p, cs->first_rev);
    out_u64(p, cs->writes);
    out_u64(p, cs->n);
    for (size_t i = 0; i < cs->n; i++) {
        const struct cs_entry *e = &cs->entries[i];
        size_t clen;
        const char *cname = sb_collection_name(e->coll, &clen);
        unsigned char b = (unsigned char)clen;
        out_bytes(p, &b, 1);
        out_bytes(p, cname, clen);
        out_u64(p, e->doc->id_len);
        out_bytes(p, e->doc->id, e->doc->id_len);
        out_u64(p, e->pre_rev);
        b = e->pre != NULL;
        out_bytes(p, &b, 1);
        out_u64(p, e->n);
        const struct cs_write *w = entry_writes(e);
        for (uint32_t k = 0; k < e->n; k++) {
            out_u64(p, w[k].rev);
            out_u64(p, w[k].prev);
        }
    }
}

sb_status sb__cs_snapshot(struct sb_store *s, unsigned char **buf, size_t *len)
{
    struct out o = {0}, payload = {0};
    for (struct changeset *cs = s->cs.oldest; cs && !o.failed; cs = cs->newer) {
        for (size_t i = 0; i < cs->n; i++) {
            const struct cs_entry *e = &cs->entries[i];
            if (e->pre == NULL)
                continue;
            struct record r;
            sb__record_of(e->coll, e->doc, e->pre, &r);
            r.group = RG_PINNED;
            out_record(&o, &r);
        }
        payload.len = 0;
        cs_encode(&payload, cs);
        if (payload.failed) {
            o.failed = 1;
            break;
        }
        struct record r = {.rev = cs->last_rev,
                           .time_ns = cs->last_ns,
                           .op = RECORD_OP_CHANGESET,
                           .flags = cs->automatic ? VF_AUTO_CS : 0,
                           .cs = cs->id,
                           .cs_len = cs->id_len,
                           .actor = cs->actor,
                           .actor_len = cs->actor_len,
                           .payload = payload.buf,
                           .len = payload.len};
        out_record(&o, &r);
    }
    free(payload.buf);
    if (o.failed) {
        free(o.buf);
        return SB_NOMEM;
    }
    *buf = o.buf;
    *len = o.len;
    return SB_OK;
}

/* ---------------------------------------------------------------------- */
/* Recovery from a snapshot                                               */
/* ---------------------------------------------------------------------- */

struct cs_pending {
    struct sb_coll *coll;
    struct doc *doc;
    struct version *v; /* NULL once its change set took it */
};

static void pending_clear(struct sb_store *s)
{
    struct cs_index *ix = &s->cs;
    for (size_t i = 0; i < ix->npending; i++)
        free(ix->pending[i].v); /* never published: no reader saw it */
    ix->npending = 0;
}

static sb_status replay_pinned(struct sb_store *s, const struct record *r)
{
    struct cs_index *ix = &s->cs;
    sb_coll *c;
    sb_status st = sb_collection_open(s, r->coll, r->coll_len, &c);
    if (st != SB_OK)
        return st;
    struct doc *d = sb__doc_ensure(c, r->id, r->id_len);
    if (d == NULL)
        return SB_NOMEM;
    if (ix->npending == ix->pending_cap) {
        size_t cap = ix->pending_cap ? ix->pending_cap * 2 : 16;
        struct cs_pending *p = realloc(ix->pending, cap * sizeof(*p));
        if (p == NULL)
            return SB_NOMEM;
        ix->pending = p;
        ix->pending_cap = cap;
    }
    struct version *v = sb__version_copy(r);
    if (v == NULL)
        return SB_NOMEM;
    ix->pending[ix->npending++] = (struct cs_pending){c, d, v};
    return SB_OK;
}

/* Reads the payload of a change set's record; see cs_encode(). */
struct in {
    const unsigned char *p, *end;
    int bad;
};

static const unsigned char *in_take(struct in *in, uint64_t n)
{
    if (in->bad || (uint64_t)(in->end - in->p) < n) {
        in->bad = 1;
        return NULL;
    }
    const unsigned char *p = in->p;
    in->p += n;
    return p;
}

static uint64_t in_u64(struct in *in)
{
    const unsigned char *b = in_take(in, 8);
    uint64_t v = 0;
    for (int i = 7; b != NULL && i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static unsigned in_u8(struct in *in)
{
    const unsigned char *b = in_take(in, 1);
    return b ? *b : 0;
}

/* The version `rev` in a document's chain, whatever its age. */
static struct version *chain_find(const struct doc *d, uint64_t rev)
{
    for (struct version *v =
             atomic_load_explicit(&d->head, memory_order_relaxed);
         v != NULL && v->rev >= rev;
         v = atomic_load_explicit(&v->older, memory_order_relaxed))
        if (v->rev == rev)
            return v;
    return NULL;
}

static sb_status replay_entry(struct sb_store *s, struct changeset *cs,
                              struct in *in)
{
    unsigned clen = in_u8(in);
    const char *cname = (const char *)in_take(in, clen);
    uint64_t id_len = in_u64(in);
    const char *id = (const char *)in_take(in, id_len);
    uint64_t pre_rev = in_u64(in);
    unsigned pinned = in_u8(in);
    uint64_t nw = in_u64(in);
    if (in->bad || !sb_id_valid(id, id_len) || nw == 0 ||
        nw > (uint64_t)(in->end - in->p) / 16)
        return SB_CORRUPT;

    sb_coll *c;
    sb_status st = sb_collection_open(s, cname, clen, &c);
    if (st != SB_OK)
        return st == SB_INVALID ? SB_CORRUPT : st;
    struct doc *d = sb__doc_ensure(c, id, id_len);
    struct cs_entry *e = d ? entry_add(cs, c, d) : NULL;
    if (e == NULL)
        return SB_NOMEM;
    e->pre_rev = pre_rev;
    for (uint64_t k = 0; k < nw; k++) {
        uint64_t rev = in_u64(in), prev = in_u64(in);
        if (entry_push(e, rev, prev) != 0)
            return SB_NOMEM;
    }
    if (!pinned || pre_rev == 0)
        return SB_OK;

    /* The pinned state: still in the chain, or the copy before this
     * record (which a snapshot always writes, since the chain may have
     * dropped it by the time the snapshot reached the document). */
    struct version *v = chain_find(d, pre_rev);
    for (size_t i = 0; i < s->cs.npending; i++) {
        struct cs_pending *p = &s->cs.pending[i];
        if (p->v == NULL || p->doc != d || p->v->rev != pre_rev)
            continue;
        if (v == NULL) {
            v = p->v;
            v->pins = PIN_DETACHED;
            s->live_bytes += sb__record_bytes(c, d, v);
        } else {
            free(p->v);
        }
        p->v = NULL;
        break;
    }
    pin(e, v);
    return SB_OK;
}

static sb_status replay_changeset(struct sb_store *s, const struct record *r)
{
    if (s->cs.max == 0) {
        pending_clear(s);
        return SB_OK;
    }
    struct in in = {r->payload, (const unsigned char *)r->payload + r->len, 0};
    uint64_t hash = cs_hash(s, r->cs, r->cs_len);
    struct changeset *cs = cs_find(s, r->cs, r->cs_len, hash);
    if (cs != NULL) /* a snapshot lists each change set once */
        return SB_CORRUPT;
    if ((cs = cs_new(s, r->cs, r->cs_len, hash,
                     (r->flags & VF_AUTO_CS) != 0)) == NULL)
        return SB_NOMEM;
    cs->pinned = in_u8(&in) != 0;
    cs->first_ns = (int64_t)in_u64(&in);
    cs->first_rev = in_u64(&in);
    cs->writes = in_u64(&in);
    uint64_t n = in_u64(&in);
    cs->last_ns = r->time_ns;
    cs->last_rev = r->rev;
    set_actor(cs, r->actor, r->actor_len);
    sb_status st = in.bad ? SB_CORRUPT : SB_OK;
    for (uint64_t i = 0; st == SB_OK && i < n; i++)
        st = replay_entry(s, cs, &in);
    if (st == SB_OK && in.p != in.end)
        st = SB_CORRUPT;
    pending_clear(s);
    if (!cs->pinned && s->cs.first_pinned == cs)
        s->cs.first_pinned = cs->newer;
    if (st != SB_OK)
        cs_drop(s, cs);
    sb__cs_expire(s);
    return st;
}

sb_status sb__cs_replay(struct sb_store *s, const struct record *r)
{
    if (r->op == RECORD_OP_CHANGESET)
        return replay_changeset(s, r);
    return replay_pinned(s, r);
}
