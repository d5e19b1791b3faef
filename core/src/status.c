/*
 * status.c - the sentences behind statuses and operations, and the
 * validation of names and ids, which both the core and its hosts use.
 *
 * Everything here is pure: no store, no registration, no allocation.
 */
#include "internal.h"

#include <string.h>

static const char *const status_text[SB_STATUS_COUNT] = {
    [SB_OK] = "Success.",
    [SB_NOT_FOUND] = "No such document, collection or version.",
    [SB_EXISTS] = "The document already exists.",
    [SB_CONFLICT] = "The document's current revision is not the expected "
                    "one; it was changed by another write.",
    [SB_HISTORY_EXHAUSTED] = "The requested version is older than the "
                             "history this store retains.",
    [SB_INVALID] = "Invalid argument: a missing value, a malformed name or "
                   "id, or a value out of range.",
    [SB_FUTURE] = "The revision is above the last committed revision.",
    [SB_NOMEM] = "Out of memory; nothing was changed.",
    [SB_UNREGISTERED] = "The calling thread must call sb_thread_register() "
                        "first.",
    [SB_IO] = "The write-ahead log could not be written or synced; the "
              "write is not durable.",
    [SB_NOSPACE] = "The data directory's file system is full; nothing was "
                   "changed.",
    [SB_CORRUPT] = "The data directory holds damaged records before the end "
                   "of its log.",
    [SB_LOCKED] = "Another process has the data directory open.",
};

const char *sb_status_str(sb_status status)
{
    if ((unsigned)status >= SB_STATUS_COUNT)
        return "Unknown status.";
    return status_text[status];
}

const char *sb_op_str(sb_op op)
{
    switch (op) {
    case SB_OP_CREATE:
        return "create";
    case SB_OP_UPDATE:
        return "update";
    case SB_OP_DELETE:
        return "delete";
    case SB_OP_ROLLBACK:
        return "rollback";
    }
    return "unknown";
}

int sb_collection_name_valid(const char *name, size_t len)
{
    if (name == NULL || len == 0 || len > SB_COLLECTION_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                 (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
                 ch == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

int sb_id_valid(const void *id, size_t len)
{
    if (id == NULL || len == 0 || len > SB_ID_MAX)
        return 0;
    /* memchr is vectorised; two passes beat one byte-by-byte loop. */
    return memchr(id, '\0', len) == NULL && memchr(id, '/', len) == NULL;
}
