/*
 * uri.h - the request target: path segments, percent-decoding, the query
 * string and strict integers.
 */
#ifndef SNAPBACKD_URI_H
#define SNAPBACKD_URI_H

#include <stddef.h>
#include <stdint.h>

#define URI_MAX_SEGMENTS 4
#define URI_MAX_PARAMS   8

struct uri_str {
    const char *s; /* decoded; points into the uri's own buffer */
    size_t len;
};

struct uri_param {
    struct uri_str name, value;
};

struct uri {
    struct uri_str seg[URI_MAX_SEGMENTS];
    size_t nseg;
    struct uri_param param[URI_MAX_PARAMS];
    size_t nparam;
    char *mem; /* owned: the decoded bytes of segments and parameters */
};

enum uri_error {
    URI_OK = 0,
    URI_NOT_ABSOLUTE,  /* target does not start with '/' */
    URI_BAD_ESCAPE,    /* '%' not followed by two hex digits */
    URI_TOO_DEEP,      /* more segments than any route has */
    URI_EMPTY_SEGMENT, /* "//" or a trailing '/' */
    URI_TOO_MANY_PARAMS,
    URI_NOMEM
};

/* Splits and decodes `target`.  On URI_OK, uri_free() releases it. */
enum uri_error uri_parse(const char *target, size_t len, struct uri *out);
void uri_free(struct uri *u);

/* Returns the parameter `name`, or NULL. */
const struct uri_str *uri_param(const struct uri *u, const char *name);

/* Strict unsigned decimal: digits only, no sign, no spaces.
 * Returns 0, -1 if not a number, -2 if above `max`. */
int uri_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out);

/* Returns 1 if the bytes are well-formed UTF-8 (no overlongs, no
 * surrogates, nothing above U+10FFFF). */
int utf8_valid(const char *s, size_t len);

#endif /* SNAPBACKD_URI_H */
