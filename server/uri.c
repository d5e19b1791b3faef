/*
 * uri.c - request-target parsing.  Segments are split on '/' before they
 * are decoded, so an id may contain an encoded "%2F" only to be refused by
 * the id rules, never to change the route.  '+' is a plain character, not
 * a space: ids such as "a+b@x.io" work unencoded.
 */
#include "uri.h"

#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes [s, s+len) into *dst, advancing it; fills `out`. */
static enum uri_error decode(const char *s, size_t len, char **dst, struct uri_str *out)
{
    char *start = *dst, *p = *dst;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            *p++ = s[i];
            continue;
        }
        int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0)
            return URI_BAD_ESCAPE;
        *p++ = (char)(hi << 4 | lo);
        i += 2;
    }
    out->s = start;
    out->len = (size_t)(p - start);
    *dst = p;
    return URI_OK;
}

static enum uri_error parse_path(const char *s, size_t len, struct uri *u, char **dst)
{
    size_t i = 1; /* past the leading '/' */
    if (len == 1)
        return URI_OK; /* "/" has no segments */
    while (i <= len) {
        const char *slash = memchr(s + i, '/', len - i);
        size_t end = slash ? (size_t)(slash - s) : len;
        if (end == i)
            return URI_EMPTY_SEGMENT;
        if (u->nseg == URI_MAX_SEGMENTS)
            return URI_TOO_DEEP;
        enum uri_error e = decode(s + i, end - i, dst, &u->seg[u->nseg++]);
        if (e != URI_OK)
            return e;
        i = end + 1;
    }
    return URI_OK;
}

static enum uri_error parse_query(const char *s, size_t len, struct uri *u, char **dst)
{
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - s) : len;
        if (end > i) { /* "a=1&&b=2" tolerates the empty pair */
            if (u->nparam == URI_MAX_PARAMS)
                return URI_TOO_MANY_PARAMS;
            struct uri_param *p = &u->param[u->nparam++];
            const char *eq = memchr(s + i, '=', end - i);
            size_t name_end = eq ? (size_t)(eq - s) : end;
            enum uri_error e = decode(s + i, name_end - i, dst, &p->name);
            if (e == URI_OK && eq)
                e = decode(eq + 1, end - name_end - 1, dst, &p->value);
            else if (e == URI_OK)
                p->value = (struct uri_str){*dst, 0};
            if (e != URI_OK)
                return e;
        }
        i = end + 1;
    }
    return URI_OK;
}

enum uri_error uri_parse(const char *target, size_t len, struct uri *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0 || target[0] != '/')
        return URI_NOT_ABSOLUTE;

    const char *q = memchr(target, '?', len);
    size_t path_len = q ? (size_t)(q - target) : len;
    out->mem = malloc(len + 1);
    if (out->mem == NULL)
        return URI_NOMEM;

    char *dst = out->mem;
    enum uri_error e = parse_path(target, path_len, out, &dst);
    if (e == URI_OK && q)
        e = parse_query(q + 1, len - path_len - 1, out, &dst);
    if (e != URI_OK)
        uri_free(out);
    return e;
}

void uri_free(struct uri *u)
{
    free(u->mem);
    memset(u, 0, sizeof(*u));
}

const struct uri_str *uri_param(const struct uri *u, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < u->nparam; i++) {
        const struct uri_str *n = &u->param[i].name;
        if (n->len == len && memcmp(n->s, name, len) == 0)
            return &u->param[i].value;
    }
    return NULL;
}

int uri_parse_u64(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    if (len == 0)
        return -1;
    uint64_t v = 0;
    int overflow = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            v = v * 10 + d;
    }
    if (overflow || v > max)
        return -2;
    *out = v;
    return 0;
}

int utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + n >= len)
            return 0; /* truncated sequence */
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}
