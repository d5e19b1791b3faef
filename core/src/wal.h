/*
 * wal.h - the write-ahead log of a store with a data directory.
 *
 * Files in the directory: LOCK (held with flock while a store has the
 * directory open) and wal-SEQ.log (SEQ: 16 hex digits), the log proper, a
 * sequence of records (record.h) in revision order.
 */
#ifndef SB_WAL_H
#define SB_WAL_H

#include "snapback.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct record;
struct sb_store;

struct wal {
    struct sb_store *store; /* for log messages */
    char *dir;
    int dir_fd, lock_fd, fd;
    uint64_t seq;         /* sequence number of the file written to */
    uint64_t offset;      /* its length; under the store's write lock */
    uint64_t older_bytes; /* older log files and the snapshot; same lock */
    uint64_t first_seq;   /* no log file or snapshot is older */
    int dropped;          /* recovery cut records off the log */
    uint64_t floor;       /* revision the store opened with (LOCK file) */
    unsigned char *buf;   /* encoding buffer; under the store's write lock */
    size_t buf_cap;

    /* Log sequence numbers are byte counts since the store opened. */
    _Atomic uint64_t written; /* appended (under the write lock) */
    sb_fsync mode;
    unsigned interval_ms;
    int (*io_fault)(void *ctx, sb_io_op op);
    void *io_fault_ctx;

    /* Group commit: the first writer to need a sync does it for all. */
    pthread_mutex_t sync_lock;
    pthread_cond_t synced_cv;
    uint64_t synced;             /* durable up to here; under sync_lock */
    _Atomic uint64_t synced_pos; /* the same, for lock-free readers */
    int syncing;                 /* a sync is running; under sync_lock */
    _Atomic int failed;          /* a sync failed: the store refuses writes */

    /* SB_FSYNC_BATCH: the thread that syncs every interval. */
    pthread_t flusher;
    int flusher_running;
    int stopping; /* under sync_lock */
};

/*
 * Opens the directory, takes its lock, replays the log into `s` (which is
 * empty) and leaves the log open for appends.  On failure everything it
 * opened is closed again.
 */
sb_status wal_open(struct sb_store *s, const sb_options *o, struct wal **out);

/* Stops the flusher, syncs what was written and closes everything. */
void wal_close(struct wal *w);

/*
 * Appends `count` records as one atomic group (recovery replays all of
 * them or none).  Called with the store's write lock held, before the
 * versions are published.  On SB_OK, *lsn is what wal_wait() needs.  On
 * SB_NOSPACE or SB_IO the file is as it was before the call.
 */
sb_status wal_append(struct wal *w, const struct record *r, size_t count,
                     uint64_t *lsn);

/* Waits, as the fsync mode requires, until `lsn` is durable.  Outside the
 * store's lock.  SB_OK or SB_IO. */
sb_status wal_wait(struct wal *w, uint64_t lsn);

/* Durable position, as wal_wait() counts it.  Lock-free. */
uint64_t wal_synced(struct wal *w);

/* Whether a failed sync has made the store refuse writes. */
int wal_failed(struct wal *w);

/* Replays the snapshot and log files into the store; recover.c. */
sb_status wal_recover(struct sb_store *s, struct wal *w, int repair);

/*
 * Starts a new log file, making the current one durable first so that every
 * record in it counts as synced.  Called with the store's write lock held.
 * On SB_OK the records from now on go to file *seq.
 */
sb_status wal_rotate(struct wal *w, uint64_t *seq);

/* Calls the fault hook for `op`; 0 or an errno to fail with. */
int wal_fault(struct wal *w, sb_io_op op);

/* File names in the data directory. */
#define WAL_LOG_FMT  "wal-%016" PRIx64 ".log"
#define WAL_SNAP_FMT "snap-%016" PRIx64 ".snap"
#define WAL_TMP_FMT  "snap-%016" PRIx64 ".tmp"
#define WAL_NAME_MAX 32

/* How far revisions jump after a crash: more than the writes that can be
 * visible but not yet on disk at any moment. */
#define WAL_CRASH_GAP ((uint64_t)1 << 32)

#endif /* SB_WAL_H */
