/*
 * record.h - the on-disk form of one committed version, shared by the
 * write-ahead log and recovery.
 *
 * Layout, little-endian, no padding:
 *
 *   u32 magic      "SBR1"
 *   u32 body_len   bytes of body
 *   u64 checksum   XXH3-64 of the body, seeded with body_len
 *   body:
 *     u64 rev, i64 time_ns, u64 follows, u64 restored
 *     u8 op, u8 flags, u8 collection_len, u8 change_set_len
 *     u16 id_len, u8 actor_len, u8 group (RG_*), u32 payload_len
 *     collection, id, change set, actor, payload
 *
 * `flags` are the version's VF_* (internal.h).  Besides versions (op
 * SB_OP_*), a snapshot holds what the change-set index needs (changeset.c):
 * copies of pinned versions (RG_PINNED) and one record per change set (op
 * RECORD_OP_CHANGESET, no collection or id, VF_AUTO_CS in `flags` for an
 * automatic one).
 *
 * The magic lets recovery look for intact records past a damaged one, to
 * tell a torn tail (nothing intact after it) from damage in the middle.
 */
#ifndef SB_RECORD_H
#define SB_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_MAGIC 0x31524253u /* "SBR1" read as little-endian */
#define RECORD_HEAD  16          /* magic, body_len, checksum */
#define RECORD_FIXED 44          /* fixed part of the body */

/* Values of the `group` byte. */
#define RG_MORE   0x01 /* the next record belongs to the same atomic write */
#define RG_PINNED 0x02 /* snapshot: a pinned version, not in its chain */

#define RECORD_OP_CHANGESET 0x10

struct record {
    uint64_t rev;
    int64_t time_ns;
    uint64_t follows;
    uint64_t restored;
    uint8_t op, flags;
    const char *coll;
    size_t coll_len;
    const char *id;
    size_t id_len;
    const char *cs;
    size_t cs_len;
    const char *actor;
    size_t actor_len;
    uint8_t group; /* RG_* */
    const void *payload;
    size_t len;
};

/* Bytes record_encode() writes for `r`. */
size_t record_size(const struct record *r);

/* Writes `r` into `out`, which has record_size(r) bytes. */
void record_encode(const struct record *r, unsigned char *out);

enum record_check {
    RECORD_OK,
    RECORD_SHORT, /* the bytes end before the record does */
    RECORD_BAD    /* wrong magic, length, checksum or field */
};

/*
 * Decodes the record at the start of `buf` (`avail` bytes).  On RECORD_OK
 * fills `r`, whose strings point into `buf`, and sets *size to the bytes
 * the record takes.
 */
enum record_check record_decode(const unsigned char *buf, size_t avail,
                                struct record *r, size_t *size);

#endif /* SB_RECORD_H */
