/*
 * json_doc.c - request bodies are validated by jansson but stored as the
 * client wrote them, minus insignificant whitespace: numbers keep their
 * exact text (jansson would print 0.1 as 0.10000000000000001), string
 * escapes and key order are kept.  The compaction runs only on text jansson
 * accepted, so it only has to tell strings from the rest.
 */
#include "json_doc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t compact(const char *in, size_t len, char *out)
{
    size_t n = 0;
    int in_string = 0, escaped = 0;

    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (in_string) {
            if (escaped)
                escaped = 0;
            else if (c == '\\')
                escaped = 1;
            else if (c == '"')
                in_string = 0;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        } else if (c == '"') {
            in_string = 1;
        }
        out[n++] = c;
    }
    return n;
}

enum json_doc_error json_doc_parse_value(const char *body, size_t len, json_t **root, char *msg,
                                         size_t msg_len)
{
    json_error_t err;

    *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (*root == NULL) {
        int range = strstr(err.text, "too big") != NULL || strstr(err.text, "overflow") != NULL;
        snprintf(msg, msg_len, "%s at line %d, column %d (byte %d).", err.text, err.line,
                 err.column, err.position);
        return range ? JSON_DOC_OUT_OF_RANGE : JSON_DOC_MALFORMED;
    }
    return JSON_DOC_OK;
}

enum json_doc_error json_doc_parse(const char *body, size_t len, struct json_doc *out, char *msg,
                                   size_t msg_len)
{
    memset(out, 0, sizeof(*out));

    enum json_doc_error e = json_doc_parse_value(body, len, &out->root, msg, msg_len);
    if (e != JSON_DOC_OK)
        return e;
    if (!json_is_object(out->root)) {
        snprintf(msg, msg_len, "The body must be a JSON object.");
        json_doc_free(out);
        return JSON_DOC_NOT_OBJECT;
    }
    out->compact = malloc(len + 1);
    if (out->compact == NULL) {
        json_doc_free(out);
        snprintf(msg, msg_len, "Out of memory.");
        return JSON_DOC_NOMEM;
    }
    out->compact_len = compact(body, len, out->compact);
    out->compact[out->compact_len] = '\0';
    return JSON_DOC_OK;
}

void json_doc_free(struct json_doc *d)
{
    json_decref(d->root);
    free(d->compact);
    memset(d, 0, sizeof(*d));
}

enum json_key_result json_doc_key(const json_t *root, const char *field, char *scratch,
                                  const char **id, size_t *len)
{
    json_t *v = json_object_get(root, field);
    if (v == NULL)
        return JSON_KEY_MISSING;
    if (json_is_string(v)) {
        *id = json_string_value(v);
        *len = json_string_length(v);
        return JSON_KEY_OK;
    }
    if (json_is_integer(v)) {
        int n = snprintf(scratch, 24, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        *id = scratch;
        *len = (size_t)n;
        return JSON_KEY_OK;
    }
    return JSON_KEY_BAD_TYPE;
}

/* ---------------------------------------------------------------------- */
/* Locating member values in the text                                     */
/* ---------------------------------------------------------------------- */

/*
 * The walk below runs only on text that jansson accepted, so it can trust
 * the structure: it tells strings (where brackets and commas mean nothing)
 * from the rest, and counts brackets to step over nested values.  Every
 * index is still checked against the length, so that a mistake here ends
 * the walk instead of reading past the text.
 */

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* `s[i]` is the opening quote; returns the index after the closing one. */
static size_t skip_string(const char *s, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return len;
}

/* Returns the index after the value that starts at `s[i]`. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    if (i < len && s[i] == '"')
        return skip_string(s, len, i);
    if (i < len && (s[i] == '{' || s[i] == '[')) {
        size_t depth = 0;
        do {
            if (s[i] == '"') {
                i = skip_string(s, len, i);
                continue;
            }
            if (s[i] == '{' || s[i] == '[')
                depth++;
            else if (s[i] == '}' || s[i] == ']')
                depth--;
            i++;
        } while (depth > 0 && i < len);
        return i;
    }
    while (i < len && s[i] != ',' && s[i] != ']' && s[i] != '}' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        i++;
    return i;
}

/* Compares a quoted key of the text with `name`; a key written with
 * escapes is decoded first ("docum\u0065nt" is "document"). */
static int key_is(const char *quoted, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len < 2)
        return 0;
    if (memchr(quoted, '\\', len) == NULL)
        return len - 2 == n && memcmp(quoted + 1, name, n) == 0;

    json_t *key = json_loadb(quoted, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    int same = json_is_string(key) && json_string_length(key) == n &&
               memcmp(json_string_value(key), name, n) == 0;
    json_decref(key);
    return same;
}

/* Finds member `name` in the object that starts at `s[*pos]`; moves *pos
 * past the object. */
static void object_member(const char *s, size_t len, size_t *pos, const char *name,
                          struct json_span *out)
{
    size_t i = *pos + 1;

    while ((i = skip_ws(s, len, i)) < len && s[i] != '}') {
        size_t key = i;
        i = skip_string(s, len, i);
        size_t key_len = i - key;
        i = skip_ws(s, len, i) + 1; /* the colon */
        size_t value = skip_ws(s, len, i);
        i = skip_value(s, len, value);
        if (key_is(s + key, key_len, name)) {
            out->off = value;
            out->len = i - value;
        }
        i = skip_ws(s, len, i);
        if (i < len && s[i] == ',')
            i++;
    }
    *pos = i + 1;
}

void json_doc_member_spans(const char *text, size_t len, const char *name, struct json_span *spans,
                           size_t n)
{
    size_t i = skip_ws(text, len, 0);

    memset(spans, 0, n * sizeof(*spans));
    if (i >= len || text[i] != '[')
        return;
    i++;
    for (size_t k = 0; k < n; k++) {
        i = skip_ws(text, len, i);
        if (i >= len || text[i] == ']')
            return;
        if (text[i] == '{')
            object_member(text, len, &i, name, &spans[k]);
        else
            i = skip_value(text, len, i);
        i = skip_ws(text, len, i);
        if (i < len && text[i] == ',')
            i++;
    }
}
