/*
 * json_doc.h - validation of request bodies with jansson, and the compact
 * form a document is stored in.
 */
#ifndef SNAPBACKD_JSON_DOC_H
#define SNAPBACKD_JSON_DOC_H

#include <jansson.h>
#include <stddef.h>

enum json_doc_error {
    JSON_DOC_OK = 0,
    JSON_DOC_MALFORMED,    /* not JSON; the message says where */
    JSON_DOC_OUT_OF_RANGE, /* an integer beyond 64 bits or a real overflow */
    JSON_DOC_NOT_OBJECT,   /* valid JSON, but not an object */
    JSON_DOC_NOMEM
};

struct json_doc {
    json_t *root;  /* parsed tree, for reading fields */
    char *compact; /* the text without insignificant whitespace */
    size_t compact_len;
};

/*
 * Parses `body` as one JSON object: duplicate keys and invalid UTF-8 are
 * refused.  On JSON_DOC_OK, json_doc_free() releases `out`; otherwise
 * `msg` holds a sentence saying what is wrong and where.
 */
enum json_doc_error json_doc_parse(const char *body, size_t len, struct json_doc *out, char *msg,
                                   size_t msg_len);
void json_doc_free(struct json_doc *d);

/*
 * Parses `body` as any JSON value, with the rules of json_doc_parse().  On
 * JSON_DOC_OK the caller owns *root (json_decref()); otherwise `msg` says
 * what is wrong and where, and *root is NULL.
 */
enum json_doc_error json_doc_parse_value(const char *body, size_t len, json_t **root, char *msg,
                                         size_t msg_len);

/* A stretch of a text: `len` bytes from `off`. */
struct json_span {
    size_t off;
    size_t len;
};

/*
 * For `text`, a JSON array that json_doc_parse_value() accepted, sets
 * spans[k], for each of the first `n` elements, to the text of the value
 * of member `name` when element k is an object with that member, or to a
 * zero span.  Lets a member be stored as the client wrote it (see
 * json_doc_parse()) instead of as jansson would print it.
 */
void json_doc_member_spans(const char *text, size_t len, const char *name, struct json_span *spans,
                           size_t n);

enum json_key_result { JSON_KEY_OK, JSON_KEY_MISSING, JSON_KEY_BAD_TYPE };

/*
 * Reads the id held in `field` of `root`: a string as it is, an integer as
 * its decimal text (written into `scratch`, 24 bytes at least).
 */
enum json_key_result json_doc_key(const json_t *root, const char *field, char *scratch,
                                  const char **id, size_t *len);

#endif /* SNAPBACKD_JSON_DOC_H */
