/*
 * record.c - encoding and checking of log records; see record.h.
 *
 * Fields are written byte by byte in little-endian order so that a data
 * directory reads the same on any machine.  Decoding checks everything a
 * damaged record could get wrong before recovery trusts it: the magic, the
 * length against what is left, the checksum, and each field's range.
 */
#include "record.h"
#include "internal.h"

#include <string.h>

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

size_t record_size(const struct record *r)
{
    return RECORD_HEAD + RECORD_FIXED + r->coll_len + r->id_len + r->cs_len +
           r->actor_len + r->len;
}

void record_encode(const struct record *r, unsigned char *out)
{
    unsigned char *b = out + RECORD_HEAD;
    size_t body_len = record_size(r) - RECORD_HEAD;

    put64(b, r->rev);
    put64(b + 8, (uint64_t)r->time_ns);
    put64(b + 16, r->follows);
    put64(b + 24, r->restored);
    b[32] = r->op;
    b[33] = r->flags;
    b[34] = (unsigned char)r->coll_len;
    b[35] = (unsigned char)r->cs_len;
    put16(b + 36, (uint16_t)r->id_len);
    b[38] = (unsigned char)r->actor_len;
    b[39] = r->group;
    put32(b + 40, (uint32_t)r->len);

    unsigned char *p = b + RECORD_FIXED;
    if (r->coll_len)
        memcpy(p, r->coll, r->coll_len);
    p += r->coll_len;
    if (r->id_len)
        memcpy(p, r->id, r->id_len);
    p += r->id_len;
    if (r->cs_len)
        memcpy(p, r->cs, r->cs_len);
    p += r->cs_len;
    if (r->actor_len)
        memcpy(p, r->actor, r->actor_len);
    p += r->actor_len;
    if (r->len)
        memcpy(p, r->payload, r->len);

    put32(out, RECORD_MAGIC);
    put32(out + 4, (uint32_t)body_len);
    put64(out + 8, XXH3_64bits_withSeed(b, body_len, body_len));
}

/* Checks the decoded fields against the data model's rules. */
static int fields_valid(const struct record *r)
{
    if (r->op == RECORD_OP_CHANGESET)
        return r->coll_len == 0 && r->id_len == 0 && r->cs_len > 0 &&
               r->cs_len <= SB_CHANGE_SET_MAX && r->actor_len <= SB_ACTOR_MAX &&
               r->group == 0 && (r->flags & ~VF_AUTO_CS) == 0;
    return r->rev != 0 && r->op >= SB_OP_CREATE && r->op <= SB_OP_ROLLBACK &&
           (r->flags & ~(VF_ABSENT | VF_FIRST | VF_AUTO_CS)) == 0 &&
           !((r->flags & VF_AUTO_CS) && r->cs_len == 0) &&
           (r->group & ~(RG_MORE | RG_PINNED)) == 0 &&
           r->actor_len <= SB_ACTOR_MAX &&
           sb_collection_name_valid(r->coll, r->coll_len) &&
           sb_id_valid(r->id, r->id_len) && r->cs_len <= SB_CHANGE_SET_MAX &&
           !((r->flags & VF_ABSENT) && r->len != 0);
}

enum record_check record_decode(const unsigned char *buf, size_t avail,
                                struct record *r, size_t *size)
{
    if (avail < RECORD_HEAD)
        return RECORD_SHORT;
    if (get32(buf) != RECORD_MAGIC)
        return RECORD_BAD;
    size_t body_len = get32(buf + 4);
    if (body_len < RECORD_FIXED)
        return RECORD_BAD;
    if (avail - RECORD_HEAD < body_len)
        return RECORD_SHORT;

    const unsigned char *b = buf + RECORD_HEAD;
    if (get64(buf + 8) != XXH3_64bits_withSeed(b, body_len, body_len))
        return RECORD_BAD;

    r->rev = get64(b);
    r->time_ns = (int64_t)get64(b + 8);
    r->follows = get64(b + 16);
    r->restored = get64(b + 24);
    r->op = b[32];
    r->flags = b[33];
    r->coll_len = b[34];
    r->cs_len = b[35];
    r->id_len = get16(b + 36);
    r->actor_len = b[38];
    r->group = b[39];
    r->len = get32(b + 40);
    if (RECORD_FIXED + r->coll_len + r->id_len + r->cs_len + r->actor_len +
            r->len !=
        body_len)
        return RECORD_BAD;

    const char *p = (const char *)b + RECORD_FIXED;
    r->coll = p;
    r->id = p + r->coll_len;
    r->cs = r->id + r->id_len;
    r->actor = r->cs + r->cs_len;
    r->payload = r->actor + r->actor_len;
    if (!fields_valid(r))
        return RECORD_BAD;
    *size = RECORD_HEAD + body_len;
    return RECORD_OK;
}
