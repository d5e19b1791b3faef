/*
 * api_internal.h - what the API's modules share: the per-request context
 * and the helpers that build responses.
 */
#ifndef SNAPBACKD_API_INTERNAL_H
#define SNAPBACKD_API_INTERNAL_H

#include "api.h"
#include "buf.h"
#include "uri.h"

#include <stdint.h>

struct api {
    sb_store *store;
    struct api_config cfg;
};

/* One request being handled: the parsed target and the response. */
struct call {
    struct api *api;
    const struct api_req *req;
    struct api_resp *resp;
    struct uri uri;
    struct uri_str coll; /* seg[0], valid name */
    struct uri_str id;   /* seg[1] when the route has one, valid id */
};

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX     1000

/* Responses. */
void reply_error(struct call *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_body(struct call *c, int status, struct buf *body);
void reply_empty(struct call *c, int status);
void add_header(struct call *c, const char *name, const char *value);
void add_etag(struct call *c, uint64_t rev);
void add_location(struct call *c, const char *id, size_t id_len);
void reply_oom(struct call *c);
/* Replies to a store status that no handler treats specially (out of
 * memory, storage failures, invalid arguments); returns 0 for SB_OK. */
int reply_store_error(struct call *c, sb_status st);

/* Request helpers. */
int body_is_json(const struct call *c);
struct json_doc;
/* Parses the body as a JSON object (it must be sent as application/json);
 * replies with the matching error and returns 0 when it is not one. */
int parse_json_body(struct call *c, struct json_doc *doc);
const char *key_field(const struct api *api, const struct uri_str *coll);
int check_params(struct call *c, const char *const *allowed);

/* Handlers, one per route and method. */
void handle_collections(struct call *c);
void handle_list(struct call *c);
void handle_get(struct call *c);
void handle_versions(struct call *c);
void handle_version(struct call *c, uint64_t rev);
void handle_create(struct call *c);
void handle_put(struct call *c);
void handle_delete(struct call *c);
void handle_rollback(struct call *c);

/* Appends an RFC 3339 UTC time with microseconds. */
void buf_time(struct buf *b, int64_t ns);

#endif /* SNAPBACKD_API_INTERNAL_H */
