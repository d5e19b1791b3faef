/*
 * recover.c - rebuilding a store from its log when it opens.
 *
 * The log files are replayed in sequence order, each record applied as the
 * version it describes (same revision, time, undo link and flags), so the
 * store comes back exactly as it was committed.  A damaged record is judged
 * by what follows it:
 * - nothing intact after it, in its file or a later one: a write torn by a
 *   crash.  It was never acknowledged (its writer was still waiting for the
 *   sync), so the file is cut back to the last intact record;
 * - intact records after it: damage in the middle, which no crash causes.
 *   Opening fails with SB_CORRUPT, naming the file and offset, unless the
 *   caller asked for repair, which keeps what precedes the damage.
 */
#include "internal.h"
#include "record.h"
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int cmp_seq(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct seqs {
    uint64_t *v;
    size_t n, cap;
};

static int seqs_add(struct seqs *q, uint64_t seq)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 8;
        uint64_t *grown = realloc(q->v, cap * sizeof(*q->v));
        if (grown == NULL)
            return -1;
        q->v = grown;
        q->cap = cap;
    }
    q->v[q->n++] = seq;
    return 0;
}

/* Parses "PREFIX-<16 hex digits>SUFFIX"; returns 1 and sets *seq if so. */
static int name_seq(const char *name, const char *prefix, const char *suffix,
                    uint64_t *seq)
{
    size_t p = strlen(prefix), x = strlen(suffix);
    if (strlen(name) != p + 16 + x || strncmp(name, prefix, p) != 0 ||
        strcmp(name + p + 16, suffix) != 0)
        return 0;
    *seq = 0;
    for (size_t i = p; i < p + 16; i++) {
        int d = name[i] >= '0' && name[i] <= '9'   ? name[i] - '0'
                : name[i] >= 'a' && name[i] <= 'f' ? name[i] - 'a' + 10
                                                   : -1;
        if (d < 0)
            return 0;
        *seq = *seq << 4 | (uint64_t)d;
    }
    return 1;
}

/*
 * Lists the log files and snapshots, sorted, and removes leftovers of an
 * interrupted compaction: unfinished snapshots (.tmp).
 */
static sb_status list_files(struct wal *w, struct seqs *logs,
                            struct seqs *snaps)
{
    int fd = dup(w->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return SB_IO;
    }

    sb_status st = SB_OK;
    for (struct dirent *e; st == SB_OK && (e = readdir(d)) != NULL;) {
        uint64_t seq;
        if (name_seq(e->d_name, "wal-", ".log", &seq))
            st = seqs_add(logs, seq) ? SB_NOMEM : SB_OK;
        else if (name_seq(e->d_name, "snap-", ".snap", &seq))
            st = seqs_add(snaps, seq) ? SB_NOMEM : SB_OK;
        else if (name_seq(e->d_name, "snap-", ".tmp", &seq))
            unlinkat(w->dir_fd, e->d_name, 0);
    }
    closedir(d);
    if (logs->n > 1)
        qsort(logs->v, logs->n, sizeof(uint64_t), cmp_seq);
    if (snaps->n > 1)
        qsort(snaps->v, snaps->n, sizeof(uint64_t), cmp_seq);
    return st;
}

/*
 * Whether the log goes on, intact, somewhere in buf[from, len): a run of
 * intact records with rising revisions above `last_rev` that reaches the
 * end of the file (its last record may be torn).  Requiring the run to
 * reach the end is what keeps stray copies of records, such as a payload
 * that holds one inside a torn last record, from passing for damage in the
 * middle: the rest of the payload breaks their run.
 */
static int intact_after(const unsigned char *buf, size_t len, size_t from,
                        uint64_t last_rev)
{
    struct record r;
    size_t size;
    for (size_t i = from; i + RECORD_HEAD <= len; i++) {
        if (buf[i] != (RECORD_MAGIC & 0xff))
            continue;
        size_t j = i;
        uint64_t prev = last_rev;
        for (;;) {
            enum record_check c = record_decode(buf + j, len - j, &r, &size);
            if (c == RECORD_SHORT && j > i)
                j = len;
            if (c != RECORD_OK || r.rev <= prev)
                break;
            prev = r.rev;
            j += size;
        }
        if (j == len)
            return 1;
    }
    return 0;
}

static off_t file_size(struct wal *w, uint64_t seq)
{
    char name[WAL_NAME_MAX];
    struct stat sb;
    snprintf(name, sizeof(name), WAL_LOG_FMT, seq);
    return fstatat(w->dir_fd, name, &sb, 0) == 0 ? sb.st_size : 0;
}

struct replay {
    struct sb_store *s;
    struct wal *w;
    uint64_t *seqs;
    size_t n, index; /* the file being replayed */
    int repair;
    int snapshot; /* replaying a snapshot: revisions rise per document only */
    uint64_t last_rev;
    uint64_t records;
    int stop; /* damage was handled: later files are gone */
};

/* Cuts the current file at `at` and, for a repair, removes later files. */
static sb_status cut(struct replay *rp, size_t at, size_t len, int middle)
{
    char name[WAL_NAME_MAX];
    snprintf(name, sizeof(name), WAL_LOG_FMT, rp->seqs[rp->index]);
    int fd = openat(rp->w->dir_fd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)at) != 0 || fsync(fd) != 0) {
        if (fd >= 0)
            close(fd);
        return SB_IO;
    }
    close(fd);

    size_t removed = 0;
    for (size_t j = rp->index + 1; middle && j < rp->n; j++) {
        snprintf(name, sizeof(name), WAL_LOG_FMT, rp->seqs[j]);
        if (unlinkat(rp->w->dir_fd, name, 0) != 0)
            return SB_IO;
        removed++;
    }
    rp->n = rp->index + 1;
    rp->stop = 1;
    rp->w->dropped = 1;
    snprintf(name, sizeof(name), WAL_LOG_FMT, rp->seqs[rp->index]);
    sb__log(rp->s, SB_LOG_WARN,
            "%s: dropped %zu bytes at offset %zu of %s in %s (%s)%s",
            "recovery", len - at, at, name, rp->w->dir,
            middle ? "damaged record, repair requested"
                   : "the last record is incomplete or damaged: a write cut "
                     "short by a crash, or damage at the end of the file",
            removed ? " and the later log files" : "");
    return SB_OK;
}

/* Decides what a damaged record at `at` means; see the top of the file. */
static sb_status damaged(struct replay *rp, const unsigned char *buf,
                         size_t len, size_t at, size_t cut_at)
{
    int middle = at < len && intact_after(buf, len, at + 1, rp->last_rev);
    for (size_t j = rp->index + 1; j < rp->n && !middle; j++)
        middle = file_size(rp->w, rp->seqs[j]) > 0;
    if (middle && !rp->repair) {
        sb__log(rp->s, SB_LOG_ERROR,
                "recovery: damaged record at offset %zu of " WAL_LOG_FMT
                " with intact records after it, in %s; refusing to open "
                "(repair would keep the %" PRIu64 " records before it)",
                at, rp->seqs[rp->index], rp->w->dir, rp->records);
        return SB_CORRUPT;
    }
    return cut(rp, cut_at, len, middle);
}

/* Applies the records of one atomic group, in order. */
static sb_status replay_group(struct replay *rp, const struct record *group,
                              size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct record *r = &group[i];
        sb_status st = sb__replay(rp->s, r, rp->snapshot);
        if (st != SB_OK)
            return st;
        if (r->op == RECORD_OP_CHANGESET || (r->group & RG_PINNED))
            continue; /* the index, not a version */
        if (r->rev > rp->last_rev)
            rp->last_rev = r->rev;
        rp->records++;
    }
    return SB_OK;
}

/*
 * Replays a file's records.  A write of several records (a batch, a
 * change-set rollback) is applied only once its last record is read: one
 * whose records end early, at the end of the file or at damage, was never
 * acknowledged, and is cut off with the torn tail.
 */
static sb_status replay_buf(struct replay *rp, const unsigned char *buf,
                            size_t len)
{
    struct record *group = NULL;
    size_t n = 0, cap = 0, at = 0, group_at = 0;
    uint64_t group_rev = rp->last_rev;
    sb_status st = SB_OK;

    while (st == SB_OK && at < len) {
        struct record r;
        size_t size;
        enum record_check c = record_decode(buf + at, len - at, &r, &size);
        if (c == RECORD_OK && r.rev <= group_rev && !rp->snapshot)
            c = RECORD_BAD; /* revisions only go up */
        if (c != RECORD_OK && rp->snapshot) {
            sb__log(rp->s, SB_LOG_ERROR,
                    "recovery: damaged record at offset %zu of the "
                    "snapshot " WAL_SNAP_FMT " in %s; refusing to open",
                    at, rp->seqs[rp->index], rp->w->dir);
            st = SB_CORRUPT; /* written whole before renamed: not a crash */
            break;
        }
        if (c != RECORD_OK) {
            st = damaged(rp, buf, len, at, n ? group_at : at);
            n = 0;
            break;
        }
        if (n == cap) {
            size_t more = cap ? cap * 2 : 16;
            struct record *g = realloc(group, more * sizeof(*g));
            if (g == NULL) {
                st = SB_NOMEM;
                break;
            }
            group = g;
            cap = more;
        }
        if (n == 0)
            group_at = at;
        group[n++] = r;
        if (!rp->snapshot)
            group_rev = r.rev;
        at += size;
        if (!(r.group & RG_MORE)) {
            st = replay_group(rp, group, n);
            n = 0;
        }
    }
    /* The file ends inside a group: its last records never got written. */
    if (st == SB_OK && n > 0)
        st = damaged(rp, buf, len, len, group_at);
    free(group);
    return st;
}

static sb_status replay_file(struct replay *rp)
{
    char name[WAL_NAME_MAX];
    snprintf(name, sizeof(name), rp->snapshot ? WAL_SNAP_FMT : WAL_LOG_FMT,
             rp->seqs[rp->index]);
    int fd = openat(rp->w->dir_fd, name, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        return SB_IO;
    }
    if (sb.st_size == 0) {
        close(fd);
        return SB_OK;
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return SB_IO;
    sb_status st = replay_buf(rp, map, len);
    munmap(map, len);
    return st;
}

/* Opens the last log file for appending, creating the first one. */
static sb_status open_tail(struct wal *w, uint64_t seq, int created)
{
    char name[WAL_NAME_MAX];
    snprintf(name, sizeof(name), WAL_LOG_FMT, seq);
    w->fd = openat(w->dir_fd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                   0644);
    struct stat sb;
    if (w->fd < 0 || fstat(w->fd, &sb) != 0)
        return SB_IO;
    /* A new file is durable only once its directory entry is. */
    if (created && fsync(w->dir_fd) != 0)
        return SB_IO;
    w->seq = seq;
    w->offset = (uint64_t)sb.st_size;
    return SB_OK;
}

/* Replays the newest snapshot, if any; the logs it replaces are removed. */
static sb_status replay_snapshot(struct replay *rp, struct seqs *snaps,
                                 struct seqs *logs, uint64_t *from)
{
    *from = 0;
    if (snaps->n == 0)
        return SB_OK;

    uint64_t seq = snaps->v[snaps->n - 1];
    struct replay sn = *rp;
    sn.seqs = &seq;
    sn.n = 1;
    sn.index = 0;
    sn.snapshot = 1;
    sb_status st = replay_file(&sn);
    rp->last_rev = sn.last_rev;
    rp->records = sn.records;
    if (st != SB_OK)
        return st;

    /* A crash after the snapshot was put in place but before the files it
     * replaces were removed leaves them behind: remove them now. */
    char name[WAL_NAME_MAX];
    for (size_t i = 0; i + 1 < snaps->n; i++) {
        snprintf(name, sizeof(name), WAL_SNAP_FMT, snaps->v[i]);
        unlinkat(rp->w->dir_fd, name, 0);
    }
    size_t kept = 0;
    for (size_t i = 0; i < logs->n; i++) {
        snprintf(name, sizeof(name), WAL_LOG_FMT, logs->v[i]);
        if (logs->v[i] < seq)
            unlinkat(rp->w->dir_fd, name, 0);
        else
            logs->v[kept++] = logs->v[i];
    }
    logs->n = kept;
    snprintf(name, sizeof(name), WAL_SNAP_FMT, seq);
    struct stat sb;
    if (fstatat(rp->w->dir_fd, name, &sb, 0) == 0)
        rp->w->older_bytes += (uint64_t)sb.st_size;
    *from = seq;
    return SB_OK;
}

sb_status wal_recover(struct sb_store *s, struct wal *w, int repair)
{
    struct replay rp = {.s = s, .w = w, .repair = repair};
    struct seqs logs = {0}, snaps = {0};
    uint64_t from = 0;
    sb_status st = list_files(w, &logs, &snaps);

    if (st == SB_OK)
        st = replay_snapshot(&rp, &snaps, &logs, &from);
    rp.seqs = logs.v;
    rp.n = logs.n;
    for (rp.index = 0; st == SB_OK && rp.index < rp.n && !rp.stop; rp.index++)
        st = replay_file(&rp);
    for (size_t i = 0; st == SB_OK && i + 1 < rp.n; i++)
        w->older_bytes += (uint64_t)file_size(w, rp.seqs[i]);
    w->first_seq = from ? from : rp.n ? rp.seqs[0] : 1;
    if (st == SB_OK && rp.n > 0)
        st = open_tail(w, rp.seqs[rp.n - 1], 0);
    else if (st == SB_OK)
        st = open_tail(w, from ? from : 1, 1);
    if (st == SB_OK && rp.records > 0)
        sb__log(s, SB_LOG_INFO,
                "recovery: replayed %" PRIu64 " records from %s%zu log files "
                "in %s; revision %" PRIu64,
                rp.records, from ? "a snapshot and " : "", rp.n, w->dir,
                rp.last_rev);
    free(logs.v);
    free(snaps.v);
    return st;
}
