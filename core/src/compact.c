/*
 * compact.c - replacing a grown log with a snapshot of what the store
 * retains.
 *
 * Steps, each safe to be cut short by a crash:
 *  1. Under the write lock, the log moves to a new file S (wal_rotate): the
 *     records up to revision R are in files before S, later ones in S on.
 *  2. The snapshot of every retained version up to R is written to
 *     snap-S.tmp.  Each document is read under the write lock, so that its
 *     chain (and the writer-only undo links) hold still, one document at a
 *     time: writers wait at most for one document's copy.
 *  3. snap-S.tmp is synced and renamed to snap-S.snap, then the directory
 *     is synced: from here on, recovery starts from the snapshot.
 *  4. The log files before S and any older snapshot are removed.
 * Recovery replays the newest snapshot and the log files from its sequence
 * on, and removes what step 4 did not get to; an unfinished .tmp is removed.
 *
 * A version up to R that a later write trims before step 2 reaches it is
 * missing from the snapshot; that is harmless, since replaying the later
 * write would have trimmed it anyway.
 */
#include "internal.h"
#include "record.h"
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLUSH_BYTES      (1u << 20) /* snapshot bytes buffered per write */
#define DOCS_PER_SECTION 256        /* documents per read section */

struct snap {
    struct sb_store *s;
    struct wal *w;
    uint64_t upto;
    int fd;
    unsigned char *buf;
    size_t len, cap;
    const struct version **chain; /* s->history entries */
    const unsigned char *meta;    /* the change-set index, as records */
    size_t meta_len;
    uint64_t bytes; /* written so far */
};

static sb_status io_status(int err)
{
    return err == ENOSPC || err == EDQUOT ? SB_NOSPACE : SB_IO;
}

static sb_status flush(struct snap *sn)
{
    int err = wal_fault(sn->w, SB_IO_COMPACT_WRITE);
    size_t done = 0;
    while (err == 0 && done < sn->len) {
        ssize_t n = write(sn->fd, sn->buf + done, sn->len - done);
        if (n < 0 && errno != EINTR)
            err = errno;
        else if (n > 0)
            done += (size_t)n;
    }
    sn->bytes += done;
    sn->len = 0;
    return err ? io_status(err) : SB_OK;
}

static int reserve(struct snap *sn, size_t more)
{
    if (sn->cap - sn->len >= more)
        return 0;
    size_t cap = sn->cap ? sn->cap : FLUSH_BYTES;
    while (cap - sn->len < more)
        cap *= 2;
    unsigned char *buf = realloc(sn->buf, cap);
    if (buf == NULL)
        return -1;
    sn->buf = buf;
    sn->cap = cap;
    return 0;
}

/* Copies one document's retained versions up to R, oldest first. */
static sb_status snap_doc(struct snap *sn, struct sb_coll *c, struct doc *d)
{
    sb_status st = SB_OK;
    size_t n = 0;

    pthread_mutex_lock(&sn->s->write_lock);
    sb__prune(sn->s, c, d); /* expired versions leave memory here too */
    const struct version *v =
        atomic_load_explicit(&d->head, memory_order_relaxed);
    for (; v != NULL && n < sn->s->history;
         v = atomic_load_explicit(&v->older, memory_order_relaxed))
        if (v->rev <= sn->upto)
            sn->chain[n++] = v;
    while (n > 0 && st == SB_OK) {
        struct record r;
        sb__record_of(c, d, sn->chain[--n], &r);
        size_t size = record_size(&r);
        if (reserve(sn, size) != 0)
            st = SB_NOMEM;
        else
            record_encode(&r, sn->buf + sn->len), sn->len += size;
    }
    pthread_mutex_unlock(&sn->s->write_lock);

    if (st == SB_OK && sn->len >= FLUSH_BYTES)
        st = flush(sn);
    return st;
}

/*
 * Walks a collection's documents in short read sections.  Documents are
 * never removed, so the walk resumes from the last one it saw.
 */
static sb_status snap_coll(struct snap *sn, struct sb_coll *c)
{
    struct cds_lfht_iter it;
    sb_status st = SB_OK;
    unsigned in_section = 0;

    urcu_memb_read_lock();
    cds_lfht_first(c->docs, &it);
    for (struct cds_lfht_node *node;
         st == SB_OK && (node = cds_lfht_iter_get_node(&it));) {
        struct doc *d = caa_container_of(node, struct doc, node);
        st = snap_doc(sn, c, d);
        if (++in_section == DOCS_PER_SECTION) {
            urcu_memb_read_unlock();
            urcu_memb_read_lock();
            sb__doc_seek(c, d, &it);
            in_section = 0;
        }
        cds_lfht_next(c->docs, &it);
    }
    urcu_memb_read_unlock();
    return st;
}

/* The change-set index as it was at rotation, after every document: its
 * records refer to versions the documents' records restore first. */
static sb_status snap_index(struct snap *sn, const unsigned char *meta,
                            size_t len)
{
    if (len == 0)
        return SB_OK;
    if (reserve(sn, len) != 0)
        return SB_NOMEM;
    memcpy(sn->buf + sn->len, meta, len);
    sn->len += len;
    return SB_OK;
}

static sb_status snap_all(struct snap *sn)
{
    struct cds_lfht_iter it;
    sb_status st = SB_OK;

    /* Collections are never removed either: a handle outlives the
     * section it was found in. */
    urcu_memb_read_lock();
    cds_lfht_first(sn->s->colls, &it);
    while (st == SB_OK && cds_lfht_iter_get_node(&it) != NULL) {
        struct sb_coll *c =
            caa_container_of(cds_lfht_iter_get_node(&it), struct sb_coll, node);
        urcu_memb_read_unlock();
        st = snap_coll(sn, c);
        urcu_memb_read_lock();
        cds_lfht_next(sn->s->colls, &it);
    }
    urcu_memb_read_unlock();
    if (st == SB_OK)
        st = snap_index(sn, sn->meta, sn->meta_len);
    return st == SB_OK && sn->len > 0 ? flush(sn) : st;
}

/* Removes the files the snapshot `seq` replaces. */
static sb_status remove_replaced(struct wal *w, uint64_t seq)
{
    char name[WAL_NAME_MAX];
    int err = wal_fault(w, SB_IO_COMPACT_REMOVE);
    for (uint64_t i = w->first_seq; err == 0 && i < seq; i++) {
        snprintf(name, sizeof(name), WAL_LOG_FMT, i);
        if (unlinkat(w->dir_fd, name, 0) != 0 && errno != ENOENT)
            err = errno;
        snprintf(name, sizeof(name), WAL_SNAP_FMT, i);
        if (err == 0 && unlinkat(w->dir_fd, name, 0) != 0 && errno != ENOENT)
            err = errno;
    }
    if (err == 0 && fsync(w->dir_fd) != 0)
        err = errno;
    if (err == 0)
        w->first_seq = seq;
    return err ? io_status(err) : SB_OK;
}

/* Steps 2 to 4 for snapshot `seq` covering revisions up to `upto`, with
 * the change-set index taken at step 1 (`meta`, freed here). */
static sb_status run(struct sb_store *s, uint64_t seq, uint64_t upto,
                     unsigned char *meta, size_t meta_len)
{
    struct wal *w = s->wal;
    struct snap sn = {.s = s,
                      .w = w,
                      .upto = upto,
                      .fd = -1,
                      .meta = meta,
                      .meta_len = meta_len};
    char tmp[WAL_NAME_MAX], name[WAL_NAME_MAX];
    sb_status st = SB_OK;
    int err = 0;

    snprintf(tmp, sizeof(tmp), WAL_TMP_FMT, seq);
    snprintf(name, sizeof(name), WAL_SNAP_FMT, seq);
    sn.chain = malloc(s->history * sizeof(*sn.chain));
    sn.fd =
        openat(w->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (sn.chain == NULL)
        st = SB_NOMEM;
    else if (sn.fd < 0)
        st = io_status(errno);
    if (st == SB_OK)
        st = snap_all(&sn);
    if (st == SB_OK &&
        ((err = wal_fault(w, SB_IO_COMPACT_SYNC)) != 0 || fsync(sn.fd) != 0))
        st = io_status(err ? err : errno);
    if (sn.fd >= 0)
        close(sn.fd);
    if (st == SB_OK && ((err = wal_fault(w, SB_IO_COMPACT_INSTALL)) != 0 ||
                        renameat(w->dir_fd, tmp, w->dir_fd, name) != 0 ||
                        fsync(w->dir_fd) != 0))
        st = io_status(err ? err : errno);
    if (st != SB_OK)
        unlinkat(w->dir_fd, tmp, 0);
    free(sn.chain);
    free(sn.buf);
    free(meta);
    if (st != SB_OK)
        return st;

    /* Installed: the store is safe whether or not the removal completes. */
    pthread_mutex_lock(&s->write_lock);
    w->older_bytes = sn.bytes;
    pthread_mutex_unlock(&s->write_lock);
    atomic_fetch_add(&s->compactions, 1);
    st = remove_replaced(w, seq);
    sb__log(s, st == SB_OK ? SB_LOG_INFO : SB_LOG_WARN,
            "compaction: snapshot %s/%s of %llu bytes up to revision %llu%s",
            w->dir, name, (unsigned long long)sn.bytes,
            (unsigned long long)upto,
            st == SB_OK ? "" : "; removing the replaced files failed");
    return SB_OK;
}

/* Step 1; write lock held.  Sets what run() needs.  The change-set index
 * is copied here, at revision `upto`, since it changes with every write. */
static sb_status rotate(struct sb_store *s, uint64_t *seq, uint64_t *upto,
                        unsigned char **meta, size_t *meta_len)
{
    *meta = NULL;
    *meta_len = 0;
    sb_status st = sb__cs_snapshot(s, meta, meta_len);
    if (st != SB_OK)
        return st;
    *upto = atomic_load_explicit(&s->revision, memory_order_relaxed);
    st = wal_rotate(s->wal, seq);
    if (st != SB_OK) {
        free(*meta);
        *meta = NULL;
    }
    return st;
}

static void *compactor_main(void *arg)
{
    struct sb_store *s = arg;

    sb_thread_register();
    sb_status st = run(s, s->compact_seq, s->compact_upto, s->compact_meta,
                       s->compact_meta_len);
    if (st != SB_OK)
        sb__log(s, SB_LOG_WARN, "compaction failed, the log is kept: %s",
                sb_status_str(st));
    sb_thread_unregister();

    /* The last touch of the store: sb_store_close() may free it as soon as
     * it sees the compaction done. */
    pthread_mutex_lock(&s->write_lock);
    s->compacting = 0;
    pthread_cond_broadcast(&s->compact_cv);
    pthread_mutex_unlock(&s->write_lock);
    return NULL;
}

void sb__compact_maybe(struct sb_store *s)
{
    struct wal *w = s->wal;
    if (w == NULL || s->compact_ratio <= 0 || s->compacting)
        return;
    uint64_t log = w->older_bytes + w->offset;
    if (log < s->compact_min || (double)log < s->compact_ratio * s->live_bytes)
        return;

    pthread_attr_t attr;
    pthread_t thread;
    if (pthread_attr_init(&attr) != 0)
        return;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rotate(s, &s->compact_seq, &s->compact_upto, &s->compact_meta,
               &s->compact_meta_len) == SB_OK) {
        s->compacting = 1;
        if (pthread_create(&thread, &attr, compactor_main, s) != 0) {
            s->compacting = 0; /* tried again after a later write */
            free(s->compact_meta);
        }
    }
    pthread_attr_destroy(&attr);
}

void sb__compact_wait(struct sb_store *s)
{
    while (s->compacting)
        pthread_cond_wait(&s->compact_cv, &s->write_lock);
}

sb_status sb_store_compact(sb_store *s)
{
    if (s == NULL)
        return SB_INVALID;
    if (!sb__thread_registered())
        return SB_UNREGISTERED;
    if (s->wal == NULL)
        return SB_OK;

    uint64_t seq, upto;
    unsigned char *meta = NULL;
    size_t meta_len = 0;
    pthread_mutex_lock(&s->write_lock);
    sb__compact_wait(s);
    sb_status st =
        wal_failed(s->wal) ? SB_IO : rotate(s, &seq, &upto, &meta, &meta_len);
    s->compacting = st == SB_OK;
    pthread_mutex_unlock(&s->write_lock);
    if (st != SB_OK)
        return st;

    st = run(s, seq, upto, meta, meta_len);
    pthread_mutex_lock(&s->write_lock);
    s->compacting = 0;
    pthread_cond_broadcast(&s->compact_cv);
    pthread_mutex_unlock(&s->write_lock);
    return st;
}

sb_status sb_store_stats(sb_store *s, sb_stats *out)
{
    if (s == NULL || out == NULL)
        return SB_INVALID;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->write_lock);
    out->live_bytes = s->live_bytes;
    if (s->wal != NULL)
        out->log_bytes = s->wal->older_bytes + s->wal->offset;
    pthread_mutex_unlock(&s->write_lock);
    out->compactions = atomic_load(&s->compactions);
    return SB_OK;
}
