/*
 * internal.h - the structures shared by the core's modules.
 *
 * Ownership and concurrency, in one place:
 * - A store owns a lock-free hash table of collections; a collection owns a
 *   lock-free hash table of documents; a document owns a singly-linked chain
 *   of versions, newest first.  Collections and documents are never removed
 *   while the store is open, so a handle or an index node found by a reader
 *   stays valid; only versions come and go.
 * - All writes of a store run under store->write_lock.  That lock orders the
 *   revisions, the chain updates and the trimming of old versions; readers
 *   never take it.
 * - A new version is fully written before it is published with a release
 *   store into doc->head; readers load it with acquire.  store->revision is
 *   raised (release) only after the new head is published, and readers
 *   ignore versions above the revision they loaded first, so no reader sees
 *   a revision above the last published one.
 * - A version trimmed from the end of a chain is unlinked (its newer
 *   neighbour's `older` set to NULL) and handed to call_rcu, so it is freed
 *   only after every read section that might still hold it has ended.
 */
#ifndef SB_INTERNAL_H
#define SB_INTERNAL_H

#include "snapback.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Version flags. */
#define VF_ABSENT  0x01 /* the document does not exist in this state */
#define VF_FIRST   0x02 /* the document's first version ever: nothing older */
#define VF_AUTO_CS 0x04 /* its change set is automatic (sb_write_opts) */

/* Values of `follows` that are not revisions (revisions start at 1). */
#define FOLLOWS_ORIGIN  0          /* the absence before the first version */
#define FOLLOWS_NOTHING UINT64_MAX /* nothing left to undo */

/*
 * One version.  The header is 48 bytes; `data` holds, in order, the
 * restored revision (rollbacks only, 8 bytes), the change-set id and the
 * payload.
 *
 * Readers read every field but `w`.  `w` is used by writers only while the
 * version is linked and becomes the rcu_head once it is unlinked, when no
 * writer looks at it any more: the union saves 16 bytes per version.
 */
struct version {
    _Atomic(struct version *) older; /* next older retained version */
    uint64_t rev;
    int64_t time_ns;
    uint32_t len;   /* payload bytes */
    uint8_t op;     /* sb_op */
    uint8_t flags;  /* VF_* */
    uint8_t cs_len; /* change-set bytes */
    uint8_t pins;   /* writers only: PIN_* (changeset.c) */
    union {
        struct rcu_head rcu;
        struct {
            struct version *newer; /* towards the head; NULL for it */
            uint64_t follows;      /* undo link: a revision or FOLLOWS_* */
        } w;
    };
    _Alignas(8) unsigned char data[];
};

/* A document: its index node, its chain, and its id. */
struct doc {
    struct cds_lfht_node node;
    _Atomic(struct version *) head; /* newest, may be above the revision */
    union {
        struct version *tail;  /* oldest retained; writers only */
        struct doc *graveyard; /* sb_store_close(): documents to free */
    };
    uint32_t count; /* retained versions; writers only */
    uint32_t id_len;
    char id[];
};

struct sb_coll {
    struct cds_lfht_node node;
    struct sb_store *store;
    struct cds_lfht *docs;
    struct sb_coll *graveyard; /* sb_store_close(): collections to free */

    /* Sizing of `docs` (index.c); all under the store's write lock but
     * the two atomics, which the resize thread also touches. */
    unsigned long ndocs;   /* documents in the table */
    unsigned long buckets; /* size the table has or is being resized to */
    int resizing;          /* `resizer` is running or not yet joined */
    pthread_t resizer;
    _Atomic unsigned long resize_to;
    _Atomic int resize_done;

    uint64_t hash_seed;
    _Atomic uint32_t name_len; /* release-stored once the name is written */
    /* Set once a version in it was committed: sb_collection_each() lists
     * only these, so a write that failed leaves no collection behind. */
    _Atomic int written;
    char name[SB_COLLECTION_MAX];
};

struct wal;
struct record;

/* Pins of a version (its `pins` byte), under the write lock.  A change set
 * holds the version a document had just before the change set first
 * wrote it; such a version is not freed when the ring drops it, only
 * detached from its chain, until the change set lets it go. */
#define PIN_COUNT    0x7f /* change sets holding it */
#define PIN_DETACHED 0x80

/* The change-set index (changeset.c); all under the store's write lock. */
struct changeset;
struct cs_index {
    struct changeset **buckets;
    size_t nbuckets, count, max;
    /* Least recently written first; change sets before `first_pinned`
     * have let their pins go (retention by age). */
    struct changeset *oldest, *newest, *first_pinned;
    /* The automatic ones among them, also in an order of their own, so
     * that their own cap drops the oldest of them in constant time. */
    struct changeset *auto_oldest, *auto_newest;
    size_t nauto, max_auto;
    /* Recovery: pinned versions read from a snapshot, waiting for the
     * record of the change set that holds them. */
    struct cs_pending *pending;
    size_t npending, pending_cap;
};

struct sb_store {
    _Atomic uint64_t revision; /* last published revision */
    struct wal *wal;           /* NULL for a store in memory only */
    uint64_t live_bytes;       /* retained versions as records; write lock */
    int64_t retain_ns; /* 0: versions are kept until the ring drops them */
    int64_t (*clock)(void *ctx);
    void *clock_ctx;

    /* Compaction (compact.c): one at a time; `compacting` and the two
     * fields after it are under the write lock, which compact_cv goes with. */
    double compact_ratio;
    uint64_t compact_min;
    int compacting;
    pthread_cond_t compact_cv;
    uint64_t compact_seq, compact_upto; /* what the background one writes */
    unsigned char *compact_meta;        /* and the change sets it keeps */
    size_t compact_meta_len;
    _Atomic uint64_t compactions;
    pthread_mutex_t write_lock;
    int64_t last_time_ns; /* keeps commit times monotonic; under the lock */
    unsigned history;
    uint64_t hash_seed;
    struct cds_lfht *colls;
    struct cs_index cs; /* under the write lock */
    sb_log_fn log;
    void *log_ctx;
};

/* Hashing of ids and names, seeded per store against collision floods;
 * inlined, since every lookup starts with it. */
static inline uint64_t sb__hash(uint64_t seed, const void *key, size_t len)
{
    return XXH3_64bits_withSeed(key, len, seed);
}

/* Document-table sizing (index.c). */
#define SB__INDEX_MIN_BUCKETS 64
#define SB__INDEX_MAX_BUCKETS (1UL << 40)
void sb__index_added(struct sb_coll *c);
void sb__index_join(struct sb_coll *c);

/* Wall-clock time in ns, from the host's clock when it gave one. */
int64_t sb__now(const struct sb_store *s);

/* Retention by age: whether `v` (if not its document's current version)
 * is older than the retention period; prune drops such versions, and those
 * past the depth, from a chain (write lock held). */
int sb__expired(const struct sb_store *s, const struct version *v, int64_t now);
void sb__prune(struct sb_store *s, struct sb_coll *c, struct doc *d);

/* Log records of versions, and positioning in a document table. */
void sb__record_of(const struct sb_coll *c, const struct doc *d,
                   const struct version *v, struct record *r);
void sb__doc_seek(struct sb_coll *c, const struct doc *d,
                  struct cds_lfht_iter *it);

/* Compaction (compact.c): started, if due, after a commit; waited for at
 * close.  Both with the write lock held. */
void sb__compact_maybe(struct sb_store *s);
void sb__compact_wait(struct sb_store *s);

/* Applies one logged record while the store opens (recover.c); `snapshot`
 * when it comes from a snapshot rather than a log. */
sb_status sb__replay(struct sb_store *s, const struct record *r, int snapshot);

/*
 * Writes staged as one atomic group (doc.c): each version is numbered and
 * linked into its chain, unpublished, as it is staged, so that later
 * operations of the group see earlier ones; the commit logs them all in
 * one append, then publishes the last revision at once.  A document the
 * group creates joins its collection's table only at the commit, so that
 * a group that fails leaves nothing behind; until then the group's own
 * operations find it through `fresh`.  Write lock and a read section held
 * from begin to end.
 */
struct staged {
    struct sb_coll *c;
    struct doc *d;
    struct version *v;
    uint64_t hash; /* of d's id in c */
    int fresh;     /* d was created by this item, and is in no table yet */
};
struct group {
    struct sb_store *s;
    const sb_write_opts *o;
    struct staged *items, one;
    size_t n, cap;
    uint64_t lsn; /* log position of the commit, 0 without a log */
    /* The fresh documents: the first ones as item indexes in
     * `few` (most groups are one write); beyond, `fresh` holds item index
     * + 1 by hash, open addressing, at most half full. */
    size_t few[8];
    size_t *fresh, nfresh, fresh_cap;
};
void sb__group_begin(struct group *g, struct sb_store *s,
                     const sb_write_opts *o);
/* Commits (or, on failure, unstages) what was staged; then ends. */
sb_status sb__group_commit(struct group *g);
void sb__group_abort(struct group *g);
void sb__group_end(struct group *g);
/* Stages a version restoring `target` (NULL: the absence before the first
 * version) on document `d` of `c`; fills *res. */
sb_status sb__group_restore(struct group *g, struct sb_coll *c, struct doc *d,
                            const struct version *target, sb_result *res);
int sb__version_live(const struct version *v);

/* Change sets (changeset.c).  Write lock held for all but init. */
void sb__cs_init(struct sb_store *s, size_t max, size_t max_auto);
void sb__cs_free(struct sb_store *s);
/* Indexes `v`, just linked on `d` over `prev` (its former head, NULL for
 * none), before the chain is pruned. */
void sb__cs_note(struct sb_store *s, struct sb_coll *c, struct doc *d,
                 struct version *v, struct version *prev, const char *actor,
                 size_t actor_len);
/* Drops change sets over the count, and pins past the retention. */
void sb__cs_expire(struct sb_store *s);
/* Replays a snapshot's RG_PINNED or RECORD_OP_CHANGESET record. */
sb_status sb__cs_replay(struct sb_store *s, const struct record *r);
/* Finds document `id` of `c`, adding it, never written, if missing. */
struct doc *sb__doc_ensure(struct sb_coll *c, const void *id, size_t len);
/* What a snapshot must add to keep the index: encoded records. */
sb_status sb__cs_snapshot(struct sb_store *s, unsigned char **buf, size_t *len);
/* Frees a version a chain no longer holds, once readers are done. */
void sb__retire(struct version *v);
uint64_t sb__record_bytes(const struct sb_coll *c, const struct doc *d,
                          const struct version *v);
struct doc *sb__doc_find(struct sb_coll *c, const void *id, size_t len);
const char *sb__version_cs(const struct version *v);
const unsigned char *sb__version_payload(const struct version *v);
struct version *sb__version_copy(const struct record *r);

/* Passes a message to the host's log callback, if it gave one. */
void sb__log(const struct sb_store *s, sb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether the calling thread called sb_thread_register(). */
int sb__thread_registered(void);

/*
 * ThreadSanitizer cannot see RCU grace periods, nor the barriers inside
 * liburcu's uninstrumented library.  These annotations tell it that a read
 * section's end happens before the deferred free of what the section read.
 */
#if defined(__SANITIZE_THREAD__)
#define SB_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SB_TSAN 1
#endif
#endif

#ifdef SB_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
extern char sb__tsan_grace;
#define SB_TSAN_READ_END() __tsan_release(&sb__tsan_grace)
#define SB_TSAN_RECLAIM()  __tsan_acquire(&sb__tsan_grace)
#else
#define SB_TSAN_READ_END() ((void)0)
#define SB_TSAN_RECLAIM()  ((void)0)
#endif

#endif /* SB_INTERNAL_H */
