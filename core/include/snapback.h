/*
 * snapback.h - the public interface of libsnapback, an embeddable
 * multi-version in-memory document store.
 *
 * A store holds collections; a collection holds documents keyed by an id;
 * each document keeps a chain of versions: its current state and the states
 * it replaced, up to a per-store depth.  Every write appends a version with a
 * store-wide revision, so any document can be rolled back.
 *
 * Threads.  Every function below except sb_status_str(), sb_options_init(),
 * sb_store_open() and sb_store_close() must be called from a thread that
 * called sb_thread_register().  Reads (sb_get(), sb_history(), sb_scan(), ...)
 * must additionally run inside a read section, between sb_read_lock() and
 * sb_read_unlock(); what they return points into the store and stays valid
 * until that section ends.  Read sections never block and never wait for
 * writers.  Writes may be called from any number of threads at once; they are
 * serialised per store.  Writes must not be called inside a read section
 * (they may wait for other writers, and a writer that waits while it holds
 * a read section delays memory reclamation for everyone).
 *
 * Background work.  Memory that writers retire is freed by liburcu's
 * call_rcu thread, and when a collection's index outgrows its table the
 * library resizes it on a short-lived thread of its own, so no writer
 * waits for it.  sb_store_close() waits for both.
 *
 * Errors.  Every function that can fail returns an sb_status; results travel
 * through out-parameters, which are left untouched on failure unless the
 * function says otherwise.  A failed call changes nothing in the store.  The
 * library never aborts and never prints.
 */
#ifndef SNAPBACK_H
#define SNAPBACK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SB_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define SB_API __attribute__((visibility("default")))
#else
#define SB_API
#endif

/* Limits of the data model, in bytes. */
#define SB_COLLECTION_MAX  64  /* name: 1..64 bytes of [A-Za-z0-9_.-] */
#define SB_ID_MAX          512 /* id: 1..512 bytes, any byte but NUL and '/' */
#define SB_CHANGE_SET_MAX  128 /* change-set id: 0..128 bytes, opaque */
#define SB_ACTOR_MAX       128 /* actor of a change set: 0..128 bytes */
#define SB_PAYLOAD_MAX     0xffffffffu
#define SB_HISTORY_DEFAULT 32
#define SB_HISTORY_MAX     65535

typedef enum sb_status {
    SB_OK = 0,
    SB_NOT_FOUND,         /* no such document, collection or version */
    SB_EXISTS,            /* create of a document that exists */
    SB_CONFLICT,          /* expected revision does not match */
    SB_HISTORY_EXHAUSTED, /* rollback or as-of target no longer retained */
    SB_INVALID,           /* bad argument: NULL, bad name or id, 0 steps */
    SB_FUTURE,            /* revision above the last committed one */
    SB_NOMEM,             /* an allocation failed; nothing changed */
    SB_UNREGISTERED,      /* calling thread did not call sb_thread_register */
    SB_IO,                /* the log could not be written or synced */
    SB_NOSPACE,           /* the log's file system is full; nothing changed */
    SB_CORRUPT,           /* the data directory holds damaged records */
    SB_LOCKED,            /* another process has the data directory open */
    SB_STATUS_COUNT
} sb_status;

/* The operation that produced a version. */
typedef enum sb_op {
    SB_OP_CREATE = 1,
    SB_OP_UPDATE,
    SB_OP_DELETE,
    SB_OP_ROLLBACK
} sb_op;

/*
 * Returns a one-sentence, static, English description of `status`, suitable
 * for showing to a person.  Unknown values yield a generic sentence, never
 * NULL.  Thread-safe; needs no registration.
 */
SB_API const char *sb_status_str(sb_status status);

/* Returns the lower-case name of `op` ("create", ...), or "unknown". */
SB_API const char *sb_op_str(sb_op op);

/* ---------------------------------------------------------------------- */
/* Threads and read sections                                              */
/* ---------------------------------------------------------------------- */

/*
 * Registers the calling thread with the library's RCU domain.  Call once per
 * thread before any other call that needs registration; calling it again on a
 * registered thread does nothing.  Pair with sb_thread_unregister() before
 * the thread exits.  Returns SB_OK.
 */
SB_API sb_status sb_thread_register(void);

/*
 * Unregisters the calling thread.  Must not be called inside a read section.
 * Does nothing on a thread that is not registered.
 */
SB_API void sb_thread_unregister(void);

/*
 * Opens and closes a read section.  Sections nest; pointers returned by read
 * functions stay valid until the outermost sb_read_unlock().  Keep sections
 * short: memory retired by writers is reclaimed only once every section that
 * could see it has ended.  Calling thread must be registered.
 */
SB_API void sb_read_lock(void);
SB_API void sb_read_unlock(void);

/* ---------------------------------------------------------------------- */
/* Stores                                                                 */
/* ---------------------------------------------------------------------- */

typedef struct sb_store sb_store;
typedef struct sb_coll sb_coll;

/* Severity of a message passed to the host's log callback. */
typedef enum sb_log_level {
    SB_LOG_ERROR = 0,
    SB_LOG_WARN,
    SB_LOG_INFO,
    SB_LOG_DEBUG
} sb_log_level;

typedef void (*sb_log_fn)(void *ctx, sb_log_level level, const char *msg);

/* When a write counts as durable; see docs/durability.md. */
typedef enum sb_fsync {
    SB_FSYNC_ALWAYS = 0, /* a write returns once its record is on disk;
                            concurrent writers share one fsync */
    SB_FSYNC_BATCH,      /* a write returns once written to the file; a
                            background thread syncs every interval */
    SB_FSYNC_NEVER       /* the operating system decides when to sync */
} sb_fsync;

/* File operations a fault hook may fail (tests only), in the order a
 * compaction performs the SB_IO_COMPACT_* ones. */
typedef enum sb_io_op {
    SB_IO_WRITE,           /* appending a record to the log */
    SB_IO_SYNC,            /* syncing the log */
    SB_IO_COMPACT_ROTATE,  /* starting a new log file */
    SB_IO_COMPACT_WRITE,   /* writing the snapshot */
    SB_IO_COMPACT_SYNC,    /* syncing the snapshot */
    SB_IO_COMPACT_INSTALL, /* renaming it into place */
    SB_IO_COMPACT_REMOVE   /* removing the files it replaces */
} sb_io_op;

typedef struct sb_options {
    /* Versions kept per document, the current one included: 1..65535.
     * With a depth of D a document can be rolled back up to D - 1 steps,
     * plus one more to absence when the oldest version reached follows the
     * document's absence (its first create, or a rollback to absence). */
    unsigned history;
    /* Optional: receives the library's rare messages (never per operation).
     * May be called from any thread that calls into the library. */
    sb_log_fn log;
    void *log_ctx;

    /* Persistence.  NULL: the store lives in memory only.  Otherwise the
     * directory (created if missing, its parent must exist) holds the
     * write-ahead log; sb_store_open() replays it, and every write is
     * appended to it before it is applied. */
    const char *data_dir;
    sb_fsync fsync;
    unsigned fsync_interval_ms; /* SB_FSYNC_BATCH: default 10 */
    /* Recovery: 0 refuses a log damaged before its tail (SB_CORRUPT, the
     * file and offset logged); 1 keeps what precedes the damage and
     * discards the rest. */
    int repair;

    /* Compaction: when the log files exceed compact_ratio times the bytes
     * of the versions retained (and at least compact_min_bytes), the store
     * writes a snapshot of what it retains in the background and drops the
     * log it replaces.  Defaults 2.0 and 64 MiB; a ratio of 0 turns
     * automatic compaction off (sb_store_compact() still works). */
    double compact_ratio;
    uint64_t compact_min_bytes;

    /* Retention by age, in ns: 0 keeps versions until the ring drops them;
     * otherwise a version older than this (by its commit time) is dropped,
     * unless it is its document's current version.  A rollback or as-of
     * read that needs a dropped version reports SB_HISTORY_EXHAUSTED.
     * Dropped versions leave memory when their document is next written or
     * at the next compaction, and are never returned meanwhile. */
    int64_t retain_ns;
    /* The wall clock, in ns since the epoch, for commit times and
     * retention; NULL uses CLOCK_REALTIME.  Tests inject one here. */
    int64_t (*clock)(void *ctx);
    void *clock_ctx;

    /* Change sets remembered (sb_changeset_get() and friends), the least
     * recently written dropped first; default 100000, 0 keeps none (and
     * writes then pin nothing).  With retain_ns, a change set is also
     * released once its last write is older than that: its pinned
     * versions go, its record of what it wrote stays until the count
     * drops it. */
    size_t max_change_sets;
    /* Of those, automatic change sets (sb_write_opts.change_set_automatic)
     * remembered at most, the least recently written dropped first;
     * default 10000, 0 keeps none.  So that a flood of writes that named
     * no change set cannot push out the named ones a client will want to
     * undo. */
    size_t max_automatic_change_sets;

    /* Tests only: called before each file operation listed in sb_io_op; a
     * non-zero return is taken as that errno, as if the operation had
     * failed. */
    int (*io_fault)(void *ctx, sb_io_op op);
    void *io_fault_ctx;
} sb_options;

/* Fills `opts` with the defaults: history SB_HISTORY_DEFAULT, no log, in
 * memory only (data_dir NULL), SB_FSYNC_ALWAYS, a 10 ms batch interval,
 * 100000 change sets. */
SB_API void sb_options_init(sb_options *opts);

/*
 * Opens a store.  `opts` may be NULL for the defaults.  In memory the store
 * starts empty; with opts->data_dir it is rebuilt from the log there: every
 * document, version, revision and change set as it was committed.  A log
 * whose last record is incomplete or damaged (a crash in mid-write) is cut
 * back to its last intact record, with an SB_LOG_WARN message saying what
 * was dropped.  After that, or when the directory was not closed cleanly,
 * revisions go on 2^32 past the last one on disk (another SB_LOG_WARN), so
 * that none a reader may have seen before the crash is given again.  On SB_OK,
 * *out is the store, owned by the caller until sb_store_close().  Returns
 * SB_INVALID (NULL out, a value out of range), SB_NOMEM, SB_LOCKED (another
 * process holds the directory), SB_CORRUPT (damage before the log's tail,
 * without opts->repair; the message names the file and offset), SB_IO (the
 * directory or log cannot be used). The calling thread is registered if it was
 * not.  Thread-safe.
 */
SB_API sb_status sb_store_open(const sb_options *opts, sb_store **out);

/*
 * Frees the store, every collection, document and version in it.  The
 * caller guarantees that no other thread uses the store, or anything read
 * from it, any more.  Waits for pending deferred frees.  Must not be called
 * inside a read section.  NULL is accepted and ignored.
 */
SB_API void sb_store_close(sb_store *store);

/*
 * Compacts the data directory now: starts a new log file, writes a snapshot
 * of every version the store retains (atomically put in place by rename)
 * and removes the log files and snapshot it replaces.  Writes go on
 * meanwhile.  Waits for a background compaction already running.  A crash
 * at any point leaves a directory that recovers to the same state.
 * Returns SB_OK (also for a store without data directory, which has
 * nothing to compact), SB_IO, SB_NOSPACE, SB_NOMEM.  Registered thread,
 * outside read sections.
 */
SB_API sb_status sb_store_compact(sb_store *store);

/*
 * Waits until the log is durable up to `lsn` (an sb_result.lsn), sharing
 * one sync with every other waiter (group commit).  Returns SB_OK at once
 * for lsn 0, for a store without data directory and in the batch and never
 * modes, whose promise a write meets when it returns; SB_IO if the sync
 * failed.  Registered thread, outside read sections; blocks.
 */
SB_API sb_status sb_store_sync(sb_store *store, uint64_t lsn);

/* The log position up to which writes are as durable as the fsync mode
 * promises (everything logged, in the batch and never modes).  Lock-free. */
SB_API uint64_t sb_store_synced(const sb_store *store);

typedef struct sb_stats {
    uint64_t log_bytes;   /* bytes of log files and snapshot on disk */
    uint64_t live_bytes;  /* bytes the retained versions take as records */
    uint64_t compactions; /* completed since the store opened */
} sb_stats;

/* Fills *out.  Any registered thread; the figures are a moment's view. */
SB_API sb_status sb_store_stats(sb_store *store, sb_stats *out);

/*
 * Returns the revision of the last committed write in the store (0 for a
 * store never written).  Everything a reader can see has a revision at or
 * below it.  Lock-free; any registered thread.
 */
SB_API uint64_t sb_store_revision(const sb_store *store);

/* ---------------------------------------------------------------------- */
/* Collections                                                            */
/* ---------------------------------------------------------------------- */

/*
 * Returns 1 if `name` (of `len` bytes) is a valid collection name: 1..64
 * bytes of [A-Za-z0-9_.-]; 0 otherwise.  Pure function.
 */
SB_API int sb_collection_name_valid(const char *name, size_t len);

/* Returns 1 if `id` is a valid document id: 1..512 bytes, no NUL, no '/'. */
SB_API int sb_id_valid(const void *id, size_t len);

/*
 * Finds the collection `name`, creating it if it does not exist.  On SB_OK,
 * *out is a handle that stays valid until the store is closed (collections
 * are never removed); it may be cached and shared between threads.
 * Returns SB_INVALID (NULL argument, bad name), SB_NOMEM, SB_UNREGISTERED.
 * Serialised with writers; do not call inside a read section.
 */
SB_API sb_status sb_collection_open(sb_store *store, const char *name,
                                    size_t len, sb_coll **out);

/*
 * Finds the existing collection `name` without creating it.  Lock-free.
 * Returns SB_OK, SB_NOT_FOUND, SB_INVALID.  The handle is valid as above.
 * Must be called inside a read section (the handle itself outlives it).
 */
SB_API sb_status sb_collection_find(sb_store *store, const char *name,
                                    size_t len, sb_coll **out);

/* Returns the collection's name (not NUL-terminated) and its length. */
SB_API const char *sb_collection_name(const sb_coll *coll, size_t *len);

/*
 * Calls fn(ctx, name, len) for each collection of the store in which a
 * version was ever committed (one only opened, or written only by writes
 * that failed, is left out), in no stated order, until fn returns non-zero.
 * Inside a read section.  Returns SB_OK or SB_INVALID (NULL argument).
 */
SB_API sb_status sb_collection_each(sb_store *store,
                                    int (*fn)(void *ctx, const char *name,
                                              size_t len),
                                    void *ctx);

/* ---------------------------------------------------------------------- */
/* Reading                                                                */
/* ---------------------------------------------------------------------- */

/*
 * One version of a document, as a reader sees it.  Every pointer points into
 * the store and is valid until the read section that produced it ends.
 * Strings are not NUL-terminated.
 */
typedef struct sb_view {
    const char *id; /* the document's id */
    size_t id_len;
    uint64_t rev;        /* store-wide revision of this version */
    int64_t time_ns;     /* wall clock at commit, ns since the epoch */
    sb_op op;            /* what produced this version */
    int absent;          /* 1: the document does not exist in this state
                            (a delete, or a rollback to absence) */
    uint64_t restored;   /* rollbacks: revision whose state was restored,
                            0 for a rollback to absence; else 0 */
    const void *payload; /* the document's bytes; NULL when absent */
    size_t len;
    const char *change_set; /* NULL when the write named none */
    size_t change_set_len;
} sb_view;

/*
 * Reads the current version of document `id` in `coll`.  Inside a read
 * section.  Returns SB_OK with *out filled; SB_NOT_FOUND if the document does
 * not exist or its current version is a delete (then *out is still filled
 * with that version if there is one, with out->absent = 1, so callers can
 * tell "deleted at revision R" from "never existed", which leaves
 * out->rev = 0); SB_INVALID for NULL arguments or an invalid id.
 */
SB_API sb_status sb_get(sb_coll *coll, const void *id, size_t id_len,
                        sb_view *out);

/*
 * Reads the state of document `id` as it was at store revision `rev`: the
 * newest version whose revision is at or below `rev`.  Inside a read section.
 * Returns SB_OK; SB_NOT_FOUND if the document did not exist at `rev` (absent
 * versions fill *out as in sb_get()); SB_HISTORY_EXHAUSTED if the versions
 * that would answer have been dropped from the ring; SB_FUTURE if `rev` is
 * above sb_store_revision(); SB_INVALID for NULL arguments, a bad id or
 * rev = 0.
 */
SB_API sb_status sb_get_as_of(sb_coll *coll, const void *id, size_t id_len,
                              uint64_t rev, sb_view *out);

/*
 * Reads the version of document `id` whose revision is exactly `rev`, if it
 * is retained.  Inside a read section.  Returns SB_OK; SB_NOT_FOUND (no such
 * document or no retained version with that revision); SB_INVALID.
 */
SB_API sb_status sb_version_get(sb_coll *coll, const void *id, size_t id_len,
                                uint64_t rev, sb_view *out);

/*
 * Lists the retained versions of document `id`, newest first: fills up to
 * `cap` entries of `out` and sets *count to the number retained (which may
 * exceed `cap`; call again with a larger array to get them all).  Inside a
 * read section.  Returns SB_OK; SB_NOT_FOUND if the document never existed;
 * SB_INVALID (NULL id or count, bad id, NULL out with cap > 0).
 */
SB_API sb_status sb_history(sb_coll *coll, const void *id, size_t id_len,
                            sb_view *out, size_t cap, size_t *count);

/*
 * Called by sb_scan() once per live document; returns 0 to go on, anything
 * else to stop the scan.
 */
typedef int (*sb_scan_fn)(void *ctx, const sb_view *doc);

/*
 * Visits the live (not deleted) documents of `coll` in the collection's scan
 * order, calling fn with each one's current version, starting after the
 * document `after` (or from the start when after is NULL).  Inside a read
 * section.
 *
 * The scan order is fixed for the life of the store (it follows a hash of
 * the id, not the id's sort order), so a scan resumed from the last id it
 * returned, in a later read section, neither repeats nor skips a document:
 * every document that exists for the whole of a paged scan is visited exactly
 * once, and none is visited twice.  Documents created or deleted while it
 * runs may or may not be seen.  Each document is seen as it is when visited;
 * the scan is not a point-in-time snapshot.
 *
 * Returns SB_OK (also when fn stopped the scan); SB_NOT_FOUND if `after` is
 * not an id that was ever written in `coll`; SB_INVALID.
 */
SB_API sb_status sb_scan(sb_coll *coll, const void *after, size_t after_len,
                         sb_scan_fn fn, void *ctx);

/* ---------------------------------------------------------------------- */
/* Writing                                                                */
/* ---------------------------------------------------------------------- */

/* Options of a write; a NULL pointer means all fields zero. */
typedef struct sb_write_opts {
    /* Change set to record with the version: 0..128 opaque bytes.  A
     * non-empty one is indexed (see "Change sets" below). */
    const void *change_set;
    size_t change_set_len;
    /* Who made the change set: 0..128 opaque bytes, recorded with the
     * change set by its first write that names one. */
    const void *actor;
    size_t actor_len;
    /* Compare-and-set: when non-zero, the write happens only if the
     * document's current version has this revision (and, for the document
     * to count as current, it must exist; for a rollback, a deletion
     * counts too, so that a delete can be undone only while it is the
     * latest write); otherwise SB_CONFLICT. */
    uint64_t if_rev;
    /* With SB_FSYNC_ALWAYS: return once the write is logged and applied,
     * without waiting for its sync; the caller must not report the write
     * done before sb_store_sync(res->lsn) returns SB_OK.  Lets an event
     * loop go on serving while the sync runs (group commit still applies). */
    int nowait;
    /* 1: the change set was made up for this one call by the host (a
     * server's id for a request that named none), not named by a client.
     * It counts against max_automatic_change_sets, until a write without
     * this flag names it and makes it an ordinary one. */
    int change_set_automatic;
} sb_write_opts;

/* What a write did. */
typedef struct sb_result {
    uint64_t rev;       /* revision of the new version */
    int created;        /* 1: absent (or never written) before, live now */
    int absent;         /* 1 if the new version is a delete or absence */
    uint64_t restored;  /* rollbacks: revision restored, 0 for absence */
    unsigned available; /* SB_HISTORY_EXHAUSTED: steps that would succeed */
    uint64_t lsn;       /* log position of the write; 0 without a log */
} sb_result;

/*
 * Every write below copies what it keeps, commits a new version with the
 * next store revision, and fills *res (which may be NULL).  They are
 * serialised per store and linearisable: a reader that starts after a write
 * returns sees it.  Each may return SB_INVALID (NULL argument, invalid id,
 * oversized change set or payload), SB_NOMEM and SB_UNREGISTERED, besides
 * the statuses listed with it; on any of these nothing changed.
 *
 * With a data directory, a write is appended to the log before it is
 * applied, and returns as the fsync mode says.  SB_NOSPACE or SB_IO from
 * the append: nothing changed, and later writes are tried afresh (unless
 * the partial record could not be cut off the file again: then the store
 * refuses writes as after a failed sync, and says so to the log callback).
 * SB_IO
 * from the sync (SB_FSYNC_ALWAYS): the write is not durable, although
 * readers may already see it; the store then refuses every write with
 * SB_IO until it is reopened, since after a failed sync what the file holds
 * is unknown.  Reads always go on.
 */

/*
 * Creates document `id`.  Also SB_EXISTS if it exists (and is not deleted);
 * SB_CONFLICT if opts->if_rev is non-zero, since a create has no current
 * version to match.
 */
SB_API sb_status sb_create(sb_coll *coll, const void *id, size_t id_len,
                           const void *payload, size_t len,
                           const sb_write_opts *opts, sb_result *res);

/* Creates or replaces document `id`.  Also SB_CONFLICT (opts->if_rev). */
SB_API sb_status sb_put(sb_coll *coll, const void *id, size_t id_len,
                        const void *payload, size_t len,
                        const sb_write_opts *opts, sb_result *res);

/*
 * Deletes document `id` by writing a tombstone version, which can itself be
 * rolled back.  Also SB_NOT_FOUND (absent or already deleted), SB_CONFLICT.
 */
SB_API sb_status sb_delete(sb_coll *coll, const void *id, size_t id_len,
                           const sb_write_opts *opts, sb_result *res);

/*
 * Undo.  Every version records the version it logically follows: a normal
 * write follows the version it replaced (a document's first create follows
 * its absence); a rollback to T follows what T followed.  Rolling back N
 * steps walks those links N times from the current version and appends a
 * new version (op SB_OP_ROLLBACK) whose state equals the target's: so two
 * rollbacks of one step equal one of two, and a rollback of a create leaves
 * the document absent.  History is never deleted by a rollback.
 *
 * sb_rollback_steps: `steps` >= 1 (0 is SB_INVALID).
 * sb_rollback_to: restores the state the document had at store revision
 *   `rev` (as sb_get_as_of() would read it); the new version follows what
 *   that version followed.
 *
 * Also SB_NOT_FOUND (document never written), SB_CONFLICT (opts->if_rev),
 * SB_FUTURE (rev above the store revision), and SB_HISTORY_EXHAUSTED when the
 * target is no longer retained: then res->available tells how many steps
 * back would succeed, and nothing changed.
 */
SB_API sb_status sb_rollback_steps(sb_coll *coll, const void *id, size_t id_len,
                                   unsigned steps, const sb_write_opts *opts,
                                   sb_result *res);
SB_API sb_status sb_rollback_to(sb_coll *coll, const void *id, size_t id_len,
                                uint64_t rev, const sb_write_opts *opts,
                                sb_result *res);

/* ---------------------------------------------------------------------- */
/* Batches                                                                */
/* ---------------------------------------------------------------------- */

typedef enum sb_batch_kind {
    SB_BATCH_CREATE = 1,
    SB_BATCH_PUT,
    SB_BATCH_DELETE,
    SB_BATCH_ROLLBACK_STEPS,
    SB_BATCH_ROLLBACK_TO
} sb_batch_kind;

/* One operation of a batch: the arguments of the single-document call of
 * the same name, and (filled by sb_batch()) its outcome. */
typedef struct sb_batch_op {
    sb_batch_kind kind;
    sb_coll *coll;
    const void *id;
    size_t id_len;
    const void *payload; /* create, put */
    size_t len;
    uint64_t if_rev;  /* as sb_write_opts.if_rev, per operation */
    unsigned steps;   /* SB_BATCH_ROLLBACK_STEPS */
    uint64_t rev;     /* SB_BATCH_ROLLBACK_TO */
    sb_status status; /* out: SB_OK, or why this operation failed */
    sb_result result; /* out, when the batch was applied */
} sb_batch_op;

/*
 * Applies `n` operations (1 or more; all collections must belong to
 * `store`) all or nothing, in order, each seeing the ones before it: a
 * batch may create a document and then update it.  Each operation gets
 * its own revision, consecutive; readers see none of them until all are
 * committed, then all at once, and a crash never leaves part of a batch in
 * the log.  opts->if_rev must be 0 (give each operation its own); the
 * change set, actor and nowait apply to all.
 *
 * Returns SB_OK with every ops[i].status SB_OK and ops[i].result filled
 * (result.lsn is the batch's); otherwise nothing changed, *failed (if
 * not NULL) is the index of the first operation that failed, and
 * ops[*failed].status and the return value say why (statuses as the
 * single calls; for SB_HISTORY_EXHAUSTED result.available is filled).
 * A failure of the log (SB_IO, SB_NOSPACE) is the whole batch's: then
 * *failed is 0.
 * Argument errors (SB_INVALID: NULL ops, n = 0, a NULL collection, an
 * unknown kind) are found before anything is tried.
 */
SB_API sb_status sb_batch(sb_store *store, sb_batch_op *ops, size_t n,
                          const sb_write_opts *opts, size_t *failed);

/* ---------------------------------------------------------------------- */
/* Change sets                                                            */
/* ---------------------------------------------------------------------- */

/*
 * Every write that names a change set (sb_write_opts.change_set) is
 * indexed under it: which documents it wrote, with which revisions, by
 * which actor, when.  The state of each document just before the change
 * set first wrote it is pinned: kept, even after the ring drops it, for
 * as long as the change set is retained (see sb_options.max_change_sets),
 * so that the whole change set can be undone at once with
 * sb_changeset_rollback().  The index and the pinned versions survive a
 * restart and compaction.
 *
 * The calls below take the store's write lock for as long as they run
 * (readers of documents go on; writers wait), and call back with it held:
 * a callback must not call into the store.  What they pass to a callback
 * is valid until the callback returns.  Registered thread, outside read
 * sections.
 */

typedef struct sb_cs_info {
    const char *id; /* the change set's id */
    size_t id_len;
    const char *actor; /* NULL when no write named one */
    size_t actor_len;
    int64_t first_ns, last_ns; /* commit times of its first and last write */
    uint64_t first_rev, last_rev;
    uint64_t writes; /* versions it wrote */
    size_t docs;     /* documents it wrote */
    int pinned;      /* 1: still retained, its documents restorable */
} sb_cs_info;

/* One document a change set wrote. */
typedef struct sb_cs_doc {
    sb_coll *coll;
    const char *id;
    size_t id_len;
    const uint64_t *revs; /* revisions it wrote, ascending */
    size_t nrevs;
    /* The state just before its first write: the revision of that
     * version, or 0 when the document did not exist (never written). */
    uint64_t before_rev;
    int restorable; /* 0: that state is no longer retained */
} sb_cs_doc;

/*
 * Calls info(ctx, cs) once, then doc(ctx, d) for each document the change
 * set `id` wrote, in the order of its first write to them, until a
 * callback returns non-zero.  `doc` may be NULL.  Returns SB_OK,
 * SB_NOT_FOUND (no such change set retained), SB_INVALID.
 */
SB_API sb_status sb_changeset_get(sb_store *store, const void *id, size_t len,
                                  int (*info)(void *ctx, const sb_cs_info *cs),
                                  int (*doc)(void *ctx, const sb_cs_doc *d),
                                  void *ctx);

/* Which change sets sb_changeset_list() visits; zero fields filter
 * nothing. */
typedef struct sb_cs_filter {
    int64_t since_ns;  /* last write at or after this time */
    const void *actor; /* exactly this actor */
    size_t actor_len;
    uint64_t before; /* last write below this revision: the cursor of
                        the next page is the last_rev of the last one */
} sb_cs_filter;

/*
 * Calls fn for each retained change set that passes `filter` (may be
 * NULL), most recently written first, until fn returns non-zero.
 * Returns SB_OK or SB_INVALID.
 */
SB_API sb_status sb_changeset_list(sb_store *store, const sb_cs_filter *filter,
                                   int (*fn)(void *ctx, const sb_cs_info *cs),
                                   void *ctx);

/* How sb_changeset_rollback() treats one document. */
typedef enum sb_cs_state {
    SB_CS_CLEAN = 0, /* restorable, nobody else wrote it since */
    SB_CS_CONFLICT,  /* another change set wrote it after this one did */
    SB_CS_LOST,      /* the state to restore is no longer retained */
    SB_CS_UNCHANGED  /* already in that state (absent, as before) */
} sb_cs_state;

/* A version written after the change set's first write by another one. */
typedef struct sb_cs_later {
    uint64_t rev;
    sb_op op;
    const char *change_set; /* NULL: the write named none */
    size_t change_set_len;
    const char *actor; /* NULL when unknown */
    size_t actor_len;
} sb_cs_later;

/* The plan (and, once applied, the outcome) for one document. */
typedef struct sb_cs_plan {
    sb_coll *coll;
    const char *id;
    size_t id_len;
    sb_cs_state state;
    uint64_t from_rev; /* the current version's revision */
    int from_absent;   /* the document is absent (deleted) now */
    /* The state to restore: the version with revision to_rev, or absence
     * when to_absent (to_rev 0: the document did not exist). */
    uint64_t to_rev;
    int to_absent;
    const void *to_payload;
    size_t to_len;
    /* SB_CS_CONFLICT: the later versions by other change sets, newest
     * first, as far as they are retained; `later_more` is 1 when older
     * ones exist that are no longer retained.  It is also 1 when the
     * oldest retained one is a rollback whose predecessor was dropped: a
     * rollback records the state it restored, not the version it
     * replaced, so the store cannot tell whether that was the change
     * set's own write or another's. */
    const sb_cs_later *later;
    size_t nlater;
    int later_more;
    /* Once applied: the revision of the version that restored it (0 when
     * nothing was written for it). */
    uint64_t rev;
} sb_cs_plan;

#define SB_CS_DRY_RUN 0x1 /* plan only: change nothing */
#define SB_CS_FORCE   0x2 /* overwrite conflicts, skip lost documents */

/* What a change-set rollback did or would do. */
typedef struct sb_cs_outcome {
    size_t docs; /* documents the change set wrote */
    size_t clean, conflicts, lost, unchanged;
    size_t restored; /* documents written by this call (0 if not applied) */
    uint64_t first_rev, last_rev; /* of the versions it wrote */
    uint64_t lsn;                 /* as sb_result.lsn */
} sb_cs_outcome;

/*
 * Undoes change set `id`: every document it wrote goes back to its state
 * just before the change set first wrote it (absent if the change set
 * created it), as rollback versions recorded under opts->change_set (and
 * opts->actor), which must be non-empty and differ from `id`, so the undo
 * can itself be undone the same way.  All are applied at once, as a batch.
 *
 * fn (may be NULL) is called for every document, in the order of the
 * change set's first writes, with the plan and, when it is applied, the
 * revision of the version that restores it (those versions are reported
 * just before they are committed: if the commit then fails, the call
 * returns its error and none of them exists).  A document another change set
 * wrote afterwards is a conflict; one whose earlier state is no longer retained
 * is lost.  Without SB_CS_FORCE, any conflict or lost document makes the call
 * change nothing and return SB_CONFLICT (conflicts) or SB_HISTORY_EXHAUSTED
 * (lost documents only); with it, conflicting documents are overwritten
 * and lost ones skipped.  SB_CS_DRY_RUN computes and reports the same
 * plan and changes nothing (returning what the real call would).
 *
 * Returns SB_OK, SB_CONFLICT, SB_HISTORY_EXHAUSTED, SB_NOT_FOUND (no such
 * change set retained), SB_INVALID (bad arguments, opts->change_set empty
 * or equal to `id`), SB_NOMEM, or a log failure as the single writes.
 * *out (may be NULL) is filled in every case but SB_INVALID and
 * SB_NOT_FOUND.
 */
SB_API sb_status sb_changeset_rollback(
    sb_store *store, const void *id, size_t len, unsigned flags,
    const sb_write_opts *opts, int (*fn)(void *ctx, const sb_cs_plan *plan),
    void *ctx, sb_cs_outcome *out);

/* ---------------------------------------------------------------------- */
/* Snapshot reads                                                         */
/* ---------------------------------------------------------------------- */

/*
 * sb_scan() at a fixed revision: visits the documents of `coll` that
 * existed at store revision `rev` (1..sb_store_revision(); a reader that
 * wants "now" loads sb_store_revision() once and passes it), each in its
 * state at `rev`, in the same order and with the same `after` cursor as
 * sb_scan().  Every page of a paged scan at one revision shows one
 * consistent state of the collection: a batch or change-set rollback is
 * seen whole or not at all.  Inside a read section.
 *
 * Returns SB_OK; SB_HISTORY_EXHAUSTED if the state at `rev` of a document
 * it reached is no longer retained (then fn may have been called for the
 * documents before it); SB_FUTURE, SB_NOT_FOUND (bad `after`), SB_INVALID
 * (rev 0, NULL arguments).
 */
SB_API sb_status sb_scan_at(sb_coll *coll, uint64_t rev, const void *after,
                            size_t after_len, sb_scan_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif /* SNAPBACK_H */
