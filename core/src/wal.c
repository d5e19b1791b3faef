/*
 * wal.c - appending to the write-ahead log and making it durable.
 *
 * Order of a write (doc.c): with the store's write lock held, the record is
 * appended to the log file, then the version is applied in memory; the lock
 * is released; then, in SB_FSYNC_ALWAYS mode, the writer waits until a sync
 * covers its record.  The append happening first is what lets a failed
 * append (a full disk) leave memory untouched.
 *
 * Group commit: log positions are byte counts.  A writer that needs its
 * position synced and finds no sync running becomes the leader: it syncs
 * everything appended so far, outside any lock but sync_lock's brief
 * holds, and wakes the others; those covered return, the rest elect the
 * next leader.  So N concurrent writers share one fsync instead of paying
 * N of them.
 *
 * A failed append is cut back off the file (ftruncate to the last good
 * length) so that recovery never meets half a record in the middle of the
 * log.  A failed sync is final: after it the kernel may have dropped the
 * dirty pages, so what the file holds is unknown, and the store refuses
 * writes until it is reopened and recovery reads what really is on disk.
 */
#include "wal.h"
#include "internal.h"
#include "record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int wal_fault(struct wal *w, sb_io_op op)
{
    return w->io_fault ? w->io_fault(w->io_fault_ctx, op) : 0;
}

/* Writes all of buf; returns 0 or an errno. */
static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int sync_file(struct wal *w)
{
    int err = wal_fault(w, SB_IO_SYNC);
    if (err == 0 && fdatasync(w->fd) != 0)
        err = errno;
    if (err != 0 && !wal_failed(w))
        sb__log(w->store, SB_LOG_ERROR,
                "log: syncing " WAL_LOG_FMT " in %s failed: %s; writes are "
                "refused until the store is reopened",
                w->seq, w->dir, strerror(err));
    return err;
}

static sb_status append_failed(struct wal *w, int err)
{
    /* Cut off whatever part of the record reached the file. */
    if (ftruncate(w->fd, (off_t)w->offset) != 0) {
        sb__log(w->store, SB_LOG_ERROR,
                "log: cannot cut a failed write off " WAL_LOG_FMT " in %s: %s; "
                "writes are refused until the store is reopened",
                w->seq, w->dir, strerror(errno));
        atomic_store(&w->failed, 1);
    }
    return err == ENOSPC || err == EDQUOT ? SB_NOSPACE : SB_IO;
}

sb_status wal_append(struct wal *w, const struct record *r, size_t count,
                     uint64_t *lsn)
{
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        n += record_size(&r[i]);
    if (n > w->buf_cap) {
        unsigned char *buf = realloc(w->buf, n);
        if (buf == NULL)
            return SB_NOMEM;
        w->buf = buf;
        w->buf_cap = n;
    }
    /* One write for the group, each record but the last marked as
     * followed by more of it: recovery applies a group whole or not. */
    for (size_t i = 0, at = 0; i < count; i++) {
        struct record one = r[i];
        one.group = i + 1 < count ? RG_MORE : 0;
        record_encode(&one, w->buf + at);
        at += record_size(&one);
    }

    /* An injected fault lands half the record first, like a real crash
     * or a disk filling up in mid-write would. */
    int err = wal_fault(w, SB_IO_WRITE);
    if (err != 0) {
        write_all(w->fd, w->buf, n / 2);
        return append_failed(w, err);
    }
    if ((err = write_all(w->fd, w->buf, n)) != 0)
        return append_failed(w, err);

    w->offset += n;
    uint64_t end = atomic_load_explicit(&w->written, memory_order_relaxed) + n;
    atomic_store_explicit(&w->written, end, memory_order_release);
    *lsn = end;
    return SB_OK;
}

int wal_failed(struct wal *w)
{
    return atomic_load_explicit(&w->failed, memory_order_acquire);
}

sb_status wal_wait(struct wal *w, uint64_t lsn)
{
    if (w->mode != SB_FSYNC_ALWAYS)
        return SB_OK;

    pthread_mutex_lock(&w->sync_lock);
    while (w->synced < lsn && !wal_failed(w)) {
        if (w->syncing) {
            pthread_cond_wait(&w->synced_cv, &w->sync_lock);
            continue;
        }
        /* Lead: sync everything appended so far. */
        w->syncing = 1;
        uint64_t target =
            atomic_load_explicit(&w->written, memory_order_acquire);
        pthread_mutex_unlock(&w->sync_lock);
        int err = sync_file(w);
        pthread_mutex_lock(&w->sync_lock);
        w->syncing = 0;
        if (err != 0)
            atomic_store(&w->failed, 1);
        else if (target > w->synced)
            w->synced = target;
        atomic_store_explicit(&w->synced_pos, w->synced, memory_order_release);
        pthread_cond_broadcast(&w->synced_cv);
    }
    sb_status st = w->synced >= lsn ? SB_OK : SB_IO;
    pthread_mutex_unlock(&w->sync_lock);
    return st;
}

sb_status wal_rotate(struct wal *w, uint64_t *seq)
{
    char name[WAL_NAME_MAX];
    uint64_t next = w->seq + 1;
    int err = wal_fault(w, SB_IO_COMPACT_ROTATE);

    snprintf(name, sizeof(name), WAL_LOG_FMT, next);
    int fd =
        err ? -1
            : openat(w->dir_fd, name,
                     O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || fsync(w->dir_fd) != 0) {
        err = err ? err : errno;
        if (fd >= 0) {
            close(fd);
            unlinkat(w->dir_fd, name, 0);
        }
        return err == ENOSPC || err == EDQUOT ? SB_NOSPACE : SB_IO;
    }

    /* Become the sync leader, so that no sync runs on the old file while it
     * is closed; syncing it covers everything appended so far. */
    pthread_mutex_lock(&w->sync_lock);
    while (w->syncing)
        pthread_cond_wait(&w->synced_cv, &w->sync_lock);
    w->syncing = 1;
    pthread_mutex_unlock(&w->sync_lock);
    err = sync_file(w);
    pthread_mutex_lock(&w->sync_lock);
    w->syncing = 0;
    if (err != 0)
        atomic_store(&w->failed, 1);
    else
        w->synced = atomic_load(&w->written);
    atomic_store_explicit(&w->synced_pos, w->synced, memory_order_release);
    close(w->fd);
    w->fd = fd;
    pthread_cond_broadcast(&w->synced_cv);
    pthread_mutex_unlock(&w->sync_lock);

    w->older_bytes += w->offset;
    w->offset = 0;
    w->seq = next;
    *seq = next;
    return err ? SB_IO : SB_OK;
}

uint64_t wal_synced(struct wal *w)
{
    if (w->mode != SB_FSYNC_ALWAYS)
        return atomic_load_explicit(&w->written, memory_order_acquire);
    return atomic_load_explicit(&w->synced_pos, memory_order_acquire);
}

/* SB_FSYNC_BATCH: syncs what was appended, every interval, until close. */
static void *flusher_main(void *arg)
{
    struct wal *w = arg;
    struct timespec until;

    pthread_mutex_lock(&w->sync_lock);
    while (!w->stopping) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)w->interval_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&w->synced_cv, &w->sync_lock, &until);

        uint64_t target =
            atomic_load_explicit(&w->written, memory_order_acquire);
        if (w->stopping || target <= w->synced || wal_failed(w) || w->syncing)
            continue;
        w->syncing = 1; /* keeps a rotation from closing the file */
        pthread_mutex_unlock(&w->sync_lock);
        int err = sync_file(w);
        pthread_mutex_lock(&w->sync_lock);
        w->syncing = 0;
        pthread_cond_broadcast(&w->synced_cv);
        if (err != 0)
            atomic_store(&w->failed, 1);
        else
            w->synced = target;
    }
    pthread_mutex_unlock(&w->sync_lock);
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Opening and closing                                                    */
/* ---------------------------------------------------------------------- */

static sb_status open_dir(struct wal *w, const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return SB_IO;
    w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dir_fd < 0)
        return SB_IO;
    w->lock_fd = openat(w->dir_fd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->lock_fd < 0)
        return SB_IO;
    if (flock(w->lock_fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK ? SB_LOCKED : SB_IO;
    return SB_OK;
}

/*
 * The hash seed of a store with a data directory lives in the directory
 * (file SEED), so that the scan order, which follows the hash, and with it
 * every pagination cursor, survives a restart.
 */
static sb_status load_seed(struct wal *w, uint64_t *seed)
{
    char text[32];
    int fd = openat(w->dir_fd, "SEED", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof(text) - 1);
        close(fd);
        text[n > 0 ? n : 0] = '\0';
        return sscanf(text, "%" SCNx64, seed) == 1 ? SB_OK : SB_CORRUPT;
    }
    if (errno != ENOENT)
        return SB_IO;

    /* First open: keep the seed the store drew, written whole or not at
     * all (a temporary file renamed into place). */
    int n = snprintf(text, sizeof(text), "%016" PRIx64 "\n", *seed);
    fd = openat(w->dir_fd, "SEED.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                0644);
    int ok = fd >= 0 && write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    ok = ok && renameat(w->dir_fd, "SEED.tmp", w->dir_fd, "SEED") == 0 &&
         fsync(w->dir_fd) == 0;
    return ok ? SB_OK : SB_IO;
}

/*
 * The LOCK file also says whether the last process to hold it closed
 * cleanly: "open FLOOR" while a store has the directory, "closed FLOOR"
 * after.  FLOOR is the revision numbering started from when the store
 * opened; after a crash, numbering goes on past it too (skip_revisions()),
 * since revisions handed out above it may have been seen and lost.
 */
static int mark_lock(struct wal *w, const char *state, uint64_t floor)
{
    char text[48];
    int len = snprintf(text, sizeof(text), "%s %" PRIu64 "\n", state, floor);
    return pwrite(w->lock_fd, text, (size_t)len, 0) == len &&
                   ftruncate(w->lock_fd, (off_t)len) == 0 &&
                   fsync(w->lock_fd) == 0
               ? 0
               : -1;
}

/* Reads the LOCK file: 1 if it says "open", and *floor. */
static int was_open(struct wal *w, uint64_t *floor)
{
    char text[48] = {0}, state[8] = {0};
    *floor = 0;
    if (pread(w->lock_fd, text, sizeof(text) - 1, 0) <= 0)
        return 0;
    if (sscanf(text, "%7s %" SCNu64, state, floor) < 1)
        return 0;
    return strcmp(state, "open") == 0;
}

static int init_sync(struct wal *w)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&w->synced_cv, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    if (pthread_mutex_init(&w->sync_lock, NULL) != 0) {
        pthread_cond_destroy(&w->synced_cv);
        return -1;
    }
    return 0;
}

static void release(struct wal *w, int sync_ready)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* drops the flock */
    if (w->dir_fd >= 0)
        close(w->dir_fd);
    if (sync_ready) {
        pthread_cond_destroy(&w->synced_cv);
        pthread_mutex_destroy(&w->sync_lock);
    }
    free(w->buf);
    free(w->dir);
    free(w);
}

/*
 * After a crash, readers may have seen revisions whose records never
 * reached the disk (a write is visible before it is synced), and clients may
 * hold their ETags.  Numbering on from the last record on disk would give
 * those revisions to other versions, and a stale If-Match could then match
 * the wrong one; so the numbering jumps past any revision a lost write can
 * have had.
 */
static void skip_revisions(struct sb_store *s, struct wal *w, uint64_t floor)
{
    uint64_t last = atomic_load(&s->revision);
    uint64_t from = (last > floor ? last : floor) + WAL_CRASH_GAP;
    atomic_store(&s->revision, from);
    sb__log(s, SB_LOG_WARN,
            "recovery: %s %s was not closed cleanly; revisions go on from "
            "%" PRIu64 " instead of %" PRIu64
            " so that none a lost write had is reused",
            w->dropped ? "records were dropped and" : "", w->dir, from + 1,
            last + 1);
}

sb_status wal_open(struct sb_store *s, const sb_options *o, struct wal **out)
{
    struct wal *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return SB_NOMEM;
    w->dir_fd = w->lock_fd = w->fd = -1;
    w->store = s;
    w->mode = o->fsync;
    w->interval_ms = o->fsync_interval_ms ? o->fsync_interval_ms : 10;
    w->io_fault = o->io_fault;
    w->io_fault_ctx = o->io_fault_ctx;
    atomic_init(&w->written, 0);
    atomic_init(&w->synced_pos, 0);
    atomic_init(&w->failed, 0);
    if ((w->dir = strdup(o->data_dir)) == NULL || init_sync(w) != 0) {
        release(w, 0);
        return SB_NOMEM;
    }

    sb_status st = open_dir(w, o->data_dir);
    if (st == SB_OK)
        st = load_seed(w, &s->hash_seed);
    uint64_t floor = 0;
    int crashed = st == SB_OK && was_open(w, &floor);
    if (st == SB_OK)
        st = wal_recover(s, w, o->repair);
    if (st == SB_OK && (crashed || w->dropped))
        skip_revisions(s, w, floor);
    else if (st == SB_OK && floor > atomic_load(&s->revision))
        atomic_store(&s->revision, floor); /* never below where it was */
    /* Marked open only once recovery succeeded: a refused open leaves the
     * directory as it found it. */
    w->floor = atomic_load(&s->revision);
    if (st == SB_OK && mark_lock(w, "open", w->floor) != 0)
        st = SB_IO;
    if (st == SB_OK && w->mode == SB_FSYNC_BATCH) {
        if (pthread_create(&w->flusher, NULL, flusher_main, w) != 0)
            st = SB_NOMEM;
        else
            w->flusher_running = 1;
    }
    if (st != SB_OK) {
        release(w, 1);
        return st;
    }
    *out = w;
    return SB_OK;
}

void wal_close(struct wal *w)
{
    if (w == NULL)
        return;
    if (w->flusher_running) {
        pthread_mutex_lock(&w->sync_lock);
        w->stopping = 1;
        pthread_cond_broadcast(&w->synced_cv);
        pthread_mutex_unlock(&w->sync_lock);
        pthread_join(w->flusher, NULL);
    }
    /* Whatever the mode, a clean close leaves the log on disk. */
    if (!wal_failed(w) &&
        (atomic_load(&w->written) <= w->synced || sync_file(w) == 0))
        mark_lock(w, "closed", w->floor);
    release(w, 1);
}
