/*
 * buf.h - a growable byte buffer for building response bodies and headers.
 *
 * An allocation failure does not abort: the buffer remembers it (`oom`),
 * later appends do nothing, and the caller checks once at the end.
 */
#ifndef SNAPBACKD_BUF_H
#define SNAPBACKD_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
};

void buf_append(struct buf *b, const void *data, size_t len);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_u64(struct buf *b, uint64_t v);

/* Appends `s` as a JSON string, quotes included.  `s` must be UTF-8. */
void buf_json_string(struct buf *b, const char *s, size_t len);

/* Appends `s` percent-encoded for a path segment or query value: every
 * byte outside RFC 3986's unreserved set becomes %XX. */
void buf_percent_encode(struct buf *b, const char *s, size_t len);

/* Hands the bytes, NUL-terminated, to the caller; the buffer is reset. */
char *buf_take(struct buf *b, size_t *len);
void buf_free(struct buf *b);

#endif /* SNAPBACKD_BUF_H */
