/*
 * json_span.h - finds where a value sits in JSON text that jansson has
 * already accepted, so that its exact bytes can be passed on.
 *
 * Why: a document an MCP client sends inside a tool call must reach the
 * store as the client wrote it (numbers keep their text: jansson would
 * print 0.1 as 0.10000000000000001), exactly as a REST body does.  The
 * functions here do not validate: on text that is not valid JSON they stay
 * within its bounds and may return any span or none.
 */
#ifndef SNAPBACKD_JSON_SPAN_H
#define SNAPBACKD_JSON_SPAN_H

#include <stddef.h>

/* Bytes of one JSON value inside a larger text; not NUL-terminated. */
struct json_span {
    const char *s;
    size_t len;
};

/*
 * Sets *out to the value of member `key` (ASCII, compared with the member
 * name after its escapes are decoded) of the object `obj`.  Returns 1, or 0
 * when `obj` is not an object or has no such member.
 */
int json_span_member(struct json_span obj, const char *key, struct json_span *out);

/*
 * Walks the elements of the array `arr` in order: *pos is 0 for the first
 * call and is advanced past the element set in *out.  Returns 1, or 0 when
 * `arr` is not an array or has no more elements.  Each element is found
 * from where the last one ended, so a walk is linear in the text.
 */
int json_span_next(struct json_span arr, size_t *pos, struct json_span *out);

/* The whole of `text` without its surrounding whitespace. */
struct json_span json_span_of(const char *text, size_t len);

#endif /* SNAPBACKD_JSON_SPAN_H */
