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

#define LOG_NAME_FMT "wal-%016" PRIx64 ".log"

static int cmp_seq(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the sequence numbers of the log files, sorted. */
static sb_status list_logs(struct wal *w, uint64_t **seqs, size_t *n)
{
    int fd = dup(w->dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return SB_IO;
    }

    size_t cap = 0;
    sb_status st = SB_OK;
    *seqs = NULL;
    *n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        uint64_t seq;
        char tail;
        if (sscanf(e->d_name, "wal-%16" SCNx64 ".lo%c", &seq, &tail) != 2 ||
            tail != 'g' || strlen(e->d_name) != 24)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            uint64_t *grown = realloc(*seqs, cap * sizeof(**seqs));
            if (grown == NULL) {
                st = SB_NOMEM;
                break;
            }
            *seqs = grown;
        }
        (*seqs)[(*n)++] = seq;
    }
    closedir(d);
    if (st == SB_OK && *n > 1)
        qsort(*seqs, *n, sizeof(**seqs), cmp_seq);
    return st;
}

/* Whether an intact record starts anywhere in buf[from, len). */
static int intact_after(const unsigned char *buf, size_t len, size_t from)
{
    struct record r;
    size_t size;
    for (size_t i = from; i + RECORD_HEAD <= len; i++) {
        if (buf[i] == (RECORD_MAGIC & 0xff) &&
            record_decode(buf + i, len - i, &r, &size) == RECORD_OK)
            return 1;
    }
    return 0;
}

static off_t file_size(struct wal *w, uint64_t seq)
{
    char name[32];
    struct stat sb;
    snprintf(name, sizeof(name), LOG_NAME_FMT, seq);
    return fstatat(w->dir_fd, name, &sb, 0) == 0 ? sb.st_size : 0;
}

struct replay {
    struct sb_store *s;
    struct wal *w;
    uint64_t *seqs;
    size_t n, index; /* the file being replayed */
    int repair;
    uint64_t last_rev;
    uint64_t records;
    int stop; /* damage was handled: later files are gone */
};

/* Cuts the current file at `at` and, for a repair, removes later files. */
static sb_status cut(struct replay *rp, size_t at, size_t len, int middle)
{
    char name[32];
    snprintf(name, sizeof(name), LOG_NAME_FMT, rp->seqs[rp->index]);
    int fd = openat(rp->w->dir_fd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)at) != 0 || fsync(fd) != 0) {
        if (fd >= 0)
            close(fd);
        return SB_IO;
    }
    close(fd);

    size_t removed = 0;
    for (size_t j = rp->index + 1; middle && j < rp->n; j++) {
        snprintf(name, sizeof(name), LOG_NAME_FMT, rp->seqs[j]);
        if (unlinkat(rp->w->dir_fd, name, 0) != 0)
            return SB_IO;
        removed++;
    }
    rp->n = rp->index + 1;
    rp->stop = 1;
    snprintf(name, sizeof(name), LOG_NAME_FMT, rp->seqs[rp->index]);
    sb__log(rp->s, SB_LOG_WARN,
            "%s: dropped %zu bytes at offset %zu of %s/%s (%s)%s", "recovery",
            len - at, at, rp->w->dir, name,
            middle ? "damaged record, repair requested"
                   : "one incomplete record: a write cut short by a crash",
            removed ? " and the later log files" : "");
    return SB_OK;
}

/* Decides what a damaged record at `at` means; see the top of the file. */
static sb_status damaged(struct replay *rp, const unsigned char *buf,
                         size_t len, size_t at)
{
    int middle = intact_after(buf, len, at + 1);
    for (size_t j = rp->index + 1; j < rp->n && !middle; j++)
        middle = file_size(rp->w, rp->seqs[j]) > 0;
    if (middle && !rp->repair) {
        sb__log(rp->s, SB_LOG_ERROR,
                "recovery: damaged record at offset %zu of %s/" LOG_NAME_FMT
                " with intact records after it; refusing to open (repair "
                "would keep the %" PRIu64 " records before it)",
                at, rp->w->dir, rp->seqs[rp->index], rp->records);
        return SB_CORRUPT;
    }
    return cut(rp, at, len, middle);
}

static sb_status replay_buf(struct replay *rp, const unsigned char *buf,
                            size_t len)
{
    size_t at = 0;
    while (at < len) {
        struct record r;
        size_t size;
        enum record_check c = record_decode(buf + at, len - at, &r, &size);
        if (c == RECORD_OK && r.rev <= rp->last_rev)
            c = RECORD_BAD; /* revisions only go up */
        if (c != RECORD_OK)
            return damaged(rp, buf, len, at);
        sb_status st = sb__replay(rp->s, &r);
        if (st != SB_OK)
            return st;
        rp->last_rev = r.rev;
        rp->records++;
        at += size;
    }
    return SB_OK;
}

static sb_status replay_file(struct replay *rp)
{
    char name[32];
    snprintf(name, sizeof(name), LOG_NAME_FMT, rp->seqs[rp->index]);
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
    char name[32];
    snprintf(name, sizeof(name), LOG_NAME_FMT, seq);
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

sb_status wal_recover(struct sb_store *s, struct wal *w, int repair)
{
    struct replay rp = {.s = s, .w = w, .repair = repair};
    sb_status st = list_logs(w, &rp.seqs, &rp.n);

    for (rp.index = 0; st == SB_OK && rp.index < rp.n && !rp.stop; rp.index++)
        st = replay_file(&rp);
    if (st == SB_OK)
        st = rp.n ? open_tail(w, rp.seqs[rp.n - 1], 0) : open_tail(w, 1, 1);
    if (st == SB_OK && rp.records > 0)
        sb__log(s, SB_LOG_INFO,
                "recovery: replayed %" PRIu64 " records from %zu log files "
                "in %s; revision %" PRIu64,
                rp.records, rp.n, w->dir, rp.last_rev);
    free(rp.seqs);
    return st;
}
