/*
 * api_write.c - the write endpoints: create, put, delete and rollback, and
 * the document rules and refusals that POST /_batch shares with them.
 *
 * A write is validated entirely before the store is touched, so a refused
 * request changes nothing.  The stored document is the body in compact
 * form (json_doc.c), returned byte for byte by later reads.
 */
#include "api_internal.h"
#include "json_doc.h"

#include <stdlib.h>
#include <string.h>

/* Parses a required JSON object body; replies and returns 0 on error. */
static int parse_doc(struct call *c, struct json_doc *doc)
{
    if (c->req->body == NULL || c->req->body_len == 0) {
        reply_error(c, 400, "empty_body", "The request needs a JSON object as its body.");
        return 0;
    }
    return parse_json_body(c, doc);
}

/* Opens (creating if needed) the collection of the request. */
static sb_coll *open_coll(struct call *c)
{
    sb_coll *coll = NULL;
    sb_status st = sb_collection_open(c->api->store, c->coll.s, c->coll.len, &coll);
    if (st != SB_OK) {
        reply_store_error(c, st);
        return NULL;
    }
    return coll;
}

static void reply_written(struct call *c, const sb_result *res, const struct json_doc *doc,
                          const char *id, size_t id_len)
{
    c->resp->lsn = res->lsn;
    set_revision(c, res->rev);
    struct buf b = {0};
    buf_append(&b, doc->compact, doc->compact_len);
    if (res->created)
        add_location(c, id, id_len);
    add_etag(c, res->rev);
    reply_body(c, res->created ? 201 : 200, &b);
}

int create_key(struct call *c, const struct json_doc *doc, char scratch[24], const char **id,
               size_t *id_len)
{
    const char *field = key_field(c->api, &c->coll);
    switch (json_doc_key(doc->root, field, scratch, id, id_len)) {
    case JSON_KEY_MISSING:
        reply_error(c, 422, "missing_key",
                    "The document has no \"%s\" field, which holds the id "
                    "of documents in \"%.*s\".",
                    field, (int)c->coll.len, c->coll.s);
        return 0;
    case JSON_KEY_BAD_TYPE:
        reply_error(c, 422, "invalid_key_type", "The \"%s\" field must be a string or an integer.",
                    field);
        return 0;
    case JSON_KEY_OK:
        break;
    }
    if (!sb_id_valid(*id, *id_len)) {
        reply_error(c, 422, "invalid_key",
                    "The \"%s\" field must be 1 to 512 bytes without NUL or "
                    "'/' to serve as an id.",
                    field);
        return 0;
    }
    return 1;
}

void reply_create_refused(struct call *c, sb_status st, const char *id, size_t id_len)
{
    if (st == SB_EXISTS)
        reply_error(c, 409, "already_exists",
                    "A document with id \"%.*s\" already exists in \"%.*s\"; "
                    "use PUT to replace it.",
                    (int)id_len, id, (int)c->coll.len, c->coll.s);
    else
        reply_store_error(c, st);
}

void handle_create(struct call *c)
{
    static const char *const params[] = {NULL};
    struct json_doc doc;
    if (!check_params(c, params) || !parse_doc(c, &doc))
        return;

    char scratch[24];
    const char *id = NULL;
    size_t id_len = 0;
    if (!create_key(c, &doc, scratch, &id, &id_len))
        goto out;

    sb_coll *coll = open_coll(c);
    if (coll == NULL)
        goto out;
    sb_result res;
    sb_write_opts opts = write_opts(c);
    sb_status st = sb_create(coll, id, id_len, doc.compact, doc.compact_len, &opts, &res);
    if (st == SB_OK)
        reply_written(c, &res, &doc, id, id_len);
    else
        reply_create_refused(c, st, id, id_len);
out:
    json_doc_free(&doc);
}

/* ---------------------------------------------------------------------- */

int parse_precondition(struct call *c, enum precondition *pre, uint64_t *rev)
{
    const struct api_req *r = c->req;
    *pre = PRE_NONE;
    if (r->if_match != NULL && r->if_none_match != NULL) {
        reply_error(c, 400, "invalid_precondition", "Send If-Match or If-None-Match, not both.");
        return 0;
    }
    if (r->if_none_match != NULL) {
        if (r->if_none_match_len != 1 || r->if_none_match[0] != '*') {
            reply_error(c, 400, "invalid_precondition",
                        "If-None-Match must be \"*\" (create only).");
            return 0;
        }
        *pre = PRE_CREATE_ONLY;
    } else if (r->if_match != NULL) {
        const char *s = r->if_match;
        size_t n = r->if_match_len;
        if (n == 1 && s[0] == '*') {
            *pre = PRE_MATCH_ANY;
        } else if (n >= 3 && s[0] == '"' && s[n - 1] == '"' &&
                   uri_parse_u64(s + 1, n - 2, UINT64_MAX, rev) == 0 && *rev > 0) {
            *pre = PRE_MATCH_REV;
        } else {
            reply_error(c, 400, "invalid_precondition",
                        "If-Match must be \"*\" or an ETag such as "
                        "\"42\".");
            return 0;
        }
    }
    return 1;
}

/* The current revision of a live document, or 0. */
static uint64_t current_rev(sb_coll *coll, const struct uri_str *id)
{
    sb_view v;
    sb_read_lock();
    uint64_t rev = sb_get(coll, id->s, id->len, &v) == SB_OK ? v.rev : 0;
    sb_read_unlock();
    return rev;
}

/*
 * Turns a precondition into the revision the write must find.  "If-Match:
 * *" becomes the revision seen now, so a concurrent delete between the
 * check and the write still fails the write instead of recreating.
 */
static int resolve_precondition(struct call *c, sb_coll *coll, enum precondition pre, uint64_t *rev)
{
    if (pre == PRE_MATCH_ANY && (*rev = current_rev(coll, &c->id)) == 0) {
        reply_error(c, 412, "precondition_failed", "If-Match: * requires the document to exist.");
        return 0;
    }
    return 1;
}

int key_matches(struct call *c, const struct json_doc *doc)
{
    const char *field = key_field(c->api, &c->coll);
    char scratch[24];
    const char *id;
    size_t len;
    switch (json_doc_key(doc->root, field, scratch, &id, &len)) {
    case JSON_KEY_MISSING:
        return 1;
    case JSON_KEY_BAD_TYPE:
        reply_error(c, 422, "invalid_key_type", "The \"%s\" field must be a string or an integer.",
                    field);
        return 0;
    case JSON_KEY_OK:
        break;
    }
    if (len == c->id.len && memcmp(id, c->id.s, len) == 0)
        return 1;
    reply_error(c, 422, "key_mismatch", "The body's \"%s\" field differs from the id in the path.",
                field);
    return 0;
}

void reply_put_refused(struct call *c, sb_status st, int create_only)
{
    if (st == SB_EXISTS || st == SB_CONFLICT) {
        if (create_only)
            reply_error(c, 412, "precondition_failed", "If-None-Match: * but the document exists.");
        else
            reply_error(c, 412, "precondition_failed",
                        "The document's current ETag is not the one in "
                        "If-Match; it was changed or deleted since.");
        return;
    }
    reply_store_error(c, st);
}

void handle_put(struct call *c)
{
    static const char *const params[] = {NULL};
    enum precondition pre;
    uint64_t rev = 0;
    struct json_doc doc;
    if (!check_params(c, params) || !parse_precondition(c, &pre, &rev) || !parse_doc(c, &doc))
        return;
    if (!key_matches(c, &doc))
        goto out;

    sb_coll *coll = open_coll(c);
    if (coll == NULL || !resolve_precondition(c, coll, pre, &rev))
        goto out;

    sb_write_opts opts = write_opts(c);
    sb_result res;
    sb_status st;
    if (pre == PRE_CREATE_ONLY) {
        st = sb_create(coll, c->id.s, c->id.len, doc.compact, doc.compact_len, &opts, &res);
    } else {
        opts.if_rev = rev;
        st = sb_put(coll, c->id.s, c->id.len, doc.compact, doc.compact_len, &opts, &res);
    }
    if (st == SB_OK)
        reply_written(c, &res, &doc, c->id.s, c->id.len);
    else
        reply_put_refused(c, st, pre == PRE_CREATE_ONLY);
out:
    json_doc_free(&doc);
}

void reply_delete_refused(struct call *c, sb_status st)
{
    if (st == SB_NOT_FOUND)
        reply_error(c, 404, "not_found", "No document \"%.*s\" in collection \"%.*s\".",
                    (int)c->id.len, c->id.s, (int)c->coll.len, c->coll.s);
    else
        reply_put_refused(c, st, 0);
}

void handle_delete(struct call *c)
{
    static const char *const params[] = {NULL};
    enum precondition pre;
    uint64_t rev = 0;
    if (!check_params(c, params) || !parse_precondition(c, &pre, &rev))
        return;
    if (pre == PRE_CREATE_ONLY) {
        reply_error(c, 400, "invalid_precondition", "If-None-Match has no meaning for DELETE.");
        return;
    }

    sb_coll *coll;
    sb_read_lock();
    sb_status st = sb_collection_find(c->api->store, c->coll.s, c->coll.len, &coll);
    sb_read_unlock();
    if (st == SB_OK && !resolve_precondition(c, coll, pre, &rev))
        return;

    sb_write_opts opts = write_opts(c);
    opts.if_rev = rev;
    sb_result res;
    if (st == SB_OK)
        st = sb_delete(coll, c->id.s, c->id.len, &opts, &res);
    if (st != SB_OK) {
        reply_delete_refused(c, st);
        return;
    }
    c->resp->lsn = res.lsn;
    set_revision(c, res.rev);
    add_etag(c, res.rev);
    reply_empty(c, 204);
}
