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

enum json_doc_error json_doc_parse(const char *body, size_t len, struct json_doc *out, char *msg,
                                   size_t msg_len)
{
    json_error_t err;
    memset(out, 0, sizeof(*out));

    out->root =
        json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (out->root == NULL) {
        int range = strstr(err.text, "too big") != NULL || strstr(err.text, "overflow") != NULL;
        snprintf(msg, msg_len, "%s at line %d, column %d (byte %d).", err.text, err.line,
                 err.column, err.position);
        return range ? JSON_DOC_OUT_OF_RANGE : JSON_DOC_MALFORMED;
    }
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
