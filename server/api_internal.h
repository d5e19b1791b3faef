/*
 * api_internal.h - what the API's modules share: the per-request context
 * and the helpers that build responses.
 */
#ifndef SNAPBACKD_API_INTERNAL_H
#define SNAPBACKD_API_INTERNAL_H

#include "api.h"
#include "buf.h"
#include "csid.h"
#include "uri.h"

#include <stdint.h>

struct idem;

struct api {
    sb_store *store;
    struct api_config cfg;
    struct idem *idem; /* answers remembered by Idempotency-Key */
};

/* One request being handled: the parsed target and the response. */
struct call {
    struct api *api;
    const struct api_req *req;
    struct api_resp *resp;
    struct uri uri;
    struct uri_str coll; /* seg[0], valid name */
    struct uri_str id;   /* seg[1] when the route has one, valid id */
    uint64_t path_rev;   /* /{coll}/{id}/versions/{rev}: rev */

    /* Writes: the change set (X-Change-Set, or a fresh id) and the actor
     * (X-Actor, NULL when absent) their versions are recorded under. */
    char cs[SB_CHANGE_SET_MAX + 1];
    size_t cs_len;
    const char *actor;
    size_t actor_len;
    int wrote_nothing; /* a success that wrote nothing: a dry run, say */
    int cs_automatic;  /* cs was made up for this request alone */

    /* The store revision the response reflects, for X-Revision; when
     * has_revision is 0, the store's revision once the response is done
     * (2: the header is in the response already). */
    uint64_t revision;
    int has_revision;

    /* Inside a batch: the operation being checked or applied (op_index is
     * -1 outside), named in every error reply_error() builds. */
    long op_index;
    const char *op_name;
};

/* Reads If-Match / If-None-Match (api_write.c); replies and returns 0
 * when malformed.  PRE_MATCH_REV leaves the ETag's revision in *rev. */
enum precondition { PRE_NONE, PRE_MATCH_ANY, PRE_MATCH_REV, PRE_CREATE_ONLY };
int parse_precondition(struct call *c, enum precondition *pre, uint64_t *rev);

#define LIST_LIMIT_DEFAULT 100
#define LIST_LIMIT_MAX     1000

/* Responses.  reply_error() builds {"error":code,"message":...}; inside a
 * batch (op_index >= 0) the message starts "operation I: " and the body
 * also has "index" and "operation". */
void reply_error(struct call *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_body(struct call *c, int status, struct buf *body);
void reply_empty(struct call *c, int status);
void add_header(struct call *c, const char *name, const char *value);
void add_etag(struct call *c, uint64_t rev);
void add_location(struct call *c, const char *id, size_t id_len);
void reply_oom(struct call *c);
/* 409 history_exhausted with the number of steps that would succeed. */
void reply_exhausted(struct call *c, unsigned available);
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
struct json_t;
/* Parses the body as any JSON value (sent as application/json) into
 * *root; replies with the matching error and returns 0 when it is not. */
int parse_json_value(struct call *c, struct json_t **root);
/* Parses ?NAME=true|false into *out (0 when absent); replies and returns
 * 0 when it is something else. */
int bool_param(struct call *c, const char *name, int *out);

/* The options of a write made for this request: change set, actor, and
 * nowait (the HTTP layer waits for durability; see api_resp.lsn). */
sb_write_opts write_opts(const struct call *c);
/* Records the revision the response reflects (X-Revision). */
void set_revision(struct call *c, uint64_t rev);

/* Document rules shared by the single writes and the batch, for the
 * collection c->coll (and, for key_matches, the id c->id).  Each replies
 * with the error and returns 0 when the document breaks them. */
int create_key(struct call *c, const struct json_doc *doc, char scratch[24], const char **id,
               size_t *id_len);
int key_matches(struct call *c, const struct json_doc *doc);
/* Replies to a refused write of c->id in c->coll with the error its
 * single endpoint gives; `create_only` for a create or If-None-Match. */
void reply_create_refused(struct call *c, sb_status st, const char *id, size_t id_len);
void reply_put_refused(struct call *c, sb_status st, int create_only);
void reply_delete_refused(struct call *c, sb_status st);
void reply_rollback_refused(struct call *c, sb_status st, const sb_result *res,
                            uint64_t to_version);

/* Handlers, one per route and method. */
void handle_collections(struct call *c);
void handle_list(struct call *c);
void handle_get(struct call *c);
void handle_versions(struct call *c);
void handle_version(struct call *c);
void handle_create(struct call *c);
void handle_put(struct call *c);
void handle_delete(struct call *c);
void handle_rollback(struct call *c);
void handle_batch(struct call *c);
void handle_changeset_list(struct call *c);
void handle_changeset_get(struct call *c);
void handle_changeset_rollback(struct call *c);

/* Appends an RFC 3339 UTC time with microseconds. */
void buf_time(struct buf *b, int64_t ns);
/* Appends bytes from the store as a JSON string.  Ids and change sets
 * written through the server are UTF-8; a string that is not (only an
 * embedding program can store one) has its bytes above 0x7f shown as the
 * characters U+0080 to U+00FF, so that the JSON stays valid. */
void buf_json_bytes(struct buf *b, const char *s, size_t len);

#endif /* SNAPBACKD_API_INTERNAL_H */
