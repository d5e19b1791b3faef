/*
 * json_span.c - locating values in accepted JSON text; see json_span.h.
 *
 * Skipping a value needs no recursion: outside strings, brackets only nest,
 * so a depth counter finds the end of an object or array.  Every loop is
 * bounded by the end of the text, whatever the text holds.
 */
#include "json_span.h"

#include <string.h>

static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

/* `p` is at an opening quote; returns the byte after the closing one. */
static const char *skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\')
            p++;
        else if (*p == '"')
            return p + 1;
    }
    return end;
}

/* Returns the byte after the value that starts at `p`. */
static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return end;
    if (*p == '"')
        return skip_string(p, end);
    if (*p != '{' && *p != '[') {
        while (p < end && !is_ws(*p) && *p != ',' && *p != ']' && *p != '}')
            p++;
        return p;
    }

    size_t depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = skip_string(p, end);
            continue;
        }
        if (c == '{' || c == '[')
            depth++;
        else if ((c == '}' || c == ']') && --depth == 0)
            return p + 1;
        p++;
    }
    return end;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes one escape after a backslash at p[-1]; returns the byte it stands
 * for, or -1 for an escape outside ASCII (no ASCII key can match it). */
static int unescape(const char **pp, const char *end)
{
    const char *p = *pp;
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

    if (p >= end)
        return -1;
    *pp = p + 1;
    if (*p != 'u') {
        const char *at = memchr(from, *p, sizeof(from) - 1);
        return at ? to[at - from] : -1;
    }
    if (end - p < 5)
        return -1;
    int v = 0;
    for (int i = 1; i <= 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    *pp = p + 5;
    return v > 0 && v < 0x80 ? v : -1;
}

/* Compares the string at `p` (an opening quote) with `key`; sets *next to
 * the byte after the string. */
static int key_is(const char *p, const char *end, const char *key, const char **next)
{
    const char *k = key;
    int same = 1;

    *next = skip_string(p, end);
    for (p++; p < end && *p != '"'; k++) {
        int c = (unsigned char)*p++;
        if (c == '\\')
            c = unescape(&p, end);
        if (c != (unsigned char)*k)
            same = 0;
        if (*k == '\0')
            break;
    }
    return same && *k == '\0' && p < end && *p == '"';
}

int json_span_member(struct json_span obj, const char *key, struct json_span *out)
{
    const char *p = obj.s, *end = obj.s + obj.len;

    if (obj.len == 0 || *p != '{')
        return 0;
    p++;
    while ((p = skip_ws(p, end)) < end && *p == '"') {
        const char *after;
        int match = key_is(p, end, key, &after);
        p = skip_ws(after, end);
        if (p >= end || *p != ':')
            return 0;
        p = skip_ws(p + 1, end);
        const char *v_end = skip_value(p, end);
        if (match) {
            out->s = p;
            out->len = (size_t)(v_end - p);
            return 1;
        }
        p = skip_ws(v_end, end);
        if (p >= end || *p != ',')
            return 0;
        p++;
    }
    return 0;
}

int json_span_next(struct json_span arr, size_t *pos, struct json_span *out)
{
    const char *p = arr.s + *pos, *end = arr.s + arr.len;

    if (*pos == 0) {
        if (arr.len == 0 || *p != '[')
            return 0;
    } else {
        p = skip_ws(p, end);
        if (p >= end || *p != ',')
            return 0;
    }
    p = skip_ws(p + 1, end);
    if (p >= end || *p == ']')
        return 0;
    const char *v_end = skip_value(p, end);
    out->s = p;
    out->len = (size_t)(v_end - p);
    *pos = (size_t)(v_end - arr.s);
    return 1;
}

struct json_span json_span_of(const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    struct json_span s;

    p = skip_ws(p, end);
    while (end > p && is_ws(end[-1]))
        end--;
    s.s = p;
    s.len = (size_t)(end - p);
    return s;
}
