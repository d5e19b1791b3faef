/*
 * api_rollback.c - POST /{coll}/{id}/rollback.
 *
 * What to undo comes from the body ({"steps":N} or {"to_version":REV}) or
 * from ?steps=N; a request without a body (curl -X POST) or with an empty
 * one means one step.  If-Match: "REV" makes it conditional on the
 * document's current version, a deletion included, so that a client can
 * undo its own write only if nobody wrote since.  The core does the undo;
 * this file only turns the request into its arguments and its answer into
 * HTTP.  POST /_batch shares
 * the refusals (reply_rollback_refused()).
 */
#include "api_internal.h"
#include "json_doc.h"

#include <string.h>

struct rollback_args {
    uint64_t steps;      /* 0 when rolling back to a version */
    uint64_t to_version; /* 0 when rolling back by steps */
};

#define STEPS_MAX 0xffffffffu

static int steps_from_query(struct call *c, struct rollback_args *a)
{
    const struct uri_str *p = uri_param(&c->uri, "steps");
    if (p == NULL)
        return 1;
    int rc = uri_parse_u64(p->s, p->len, STEPS_MAX, &a->steps);
    if (rc == -1) {
        reply_error(c, 400, "invalid_parameter", "steps must be a positive integer.");
        return 0;
    }
    if (rc == -2 || a->steps == 0) {
        reply_error(c, 422, "invalid_steps", "steps must be an integer from 1 to %u.", STEPS_MAX);
        return 0;
    }
    return 1;
}

/* Reads one positive integer member; 0 and replies when it is not one. */
static int positive_member(struct call *c, json_t *v, uint64_t max, const char *code, uint64_t *out)
{
    if (json_is_integer(v) && json_integer_value(v) > 0 && (uint64_t)json_integer_value(v) <= max) {
        *out = (uint64_t)json_integer_value(v);
        return 1;
    }
    reply_error(c, 422, code, "%s must be an integer from 1 to %llu.",
                strcmp(code, "invalid_steps") == 0 ? "steps" : "to_version",
                (unsigned long long)max);
    return 0;
}

static int args_from_body(struct call *c, struct rollback_args *a)
{
    const struct api_req *r = c->req;
    if (r->body == NULL || r->body_len == 0)
        return 1;
    struct json_doc doc;
    if (!parse_json_body(c, &doc))
        return 0;

    int ok = 1;
    const char *key;
    json_t *v;
    json_object_foreach(doc.root, key, v)
    {
        if (strcmp(key, "steps") == 0)
            ok = positive_member(c, v, STEPS_MAX, "invalid_steps", &a->steps);
        else if (strcmp(key, "to_version") == 0)
            ok = positive_member(c, v, UINT64_MAX >> 1, "invalid_version", &a->to_version);
        else {
            reply_error(c, 422, "unknown_field",
                        "A rollback body takes \"steps\" or \"to_version\".");
            ok = 0;
        }
        if (!ok)
            break;
    }
    json_doc_free(&doc);
    return ok;
}

static int parse_args(struct call *c, struct rollback_args *a)
{
    static const char *const params[] = {"steps", NULL};
    memset(a, 0, sizeof(*a));
    if (!check_params(c, params) || !steps_from_query(c, a))
        return 0;

    uint64_t query_steps = a->steps;
    a->steps = 0;
    if (!args_from_body(c, a))
        return 0;
    if ((query_steps != 0) + (a->steps != 0) + (a->to_version != 0) > 1) {
        reply_error(c, 422, "conflicting_options",
                    "Give one of steps (query or body) and to_version.");
        return 0;
    }
    if (query_steps != 0)
        a->steps = query_steps;
    if (a->steps == 0 && a->to_version == 0)
        a->steps = 1;
    return 1;
}

/* Replies with the state the rollback restored. */
static void restored(struct call *c, sb_coll *coll, const sb_result *res)
{
    c->resp->lsn = res->lsn;
    set_revision(c, res->rev);
    add_etag(c, res->rev);
    if (res->absent) {
        reply_empty(c, 204);
        return;
    }

    /* The new version is read back by revision.  It can only be gone if
     * `history` newer writes to this document landed in between: then the
     * answer carries the ETag but no body. */
    struct buf b = {0};
    sb_view v;
    sb_read_lock();
    if (sb_version_get(coll, c->id.s, c->id.len, res->rev, &v) == SB_OK)
        buf_append(&b, v.payload, v.len);
    sb_read_unlock();
    reply_body(c, 200, &b);
}

void handle_rollback(struct call *c)
{
    struct rollback_args a;
    enum precondition pre;
    uint64_t if_rev = 0;
    if (!parse_precondition(c, &pre, &if_rev) || !parse_args(c, &a))
        return;
    if (pre == PRE_MATCH_ANY || pre == PRE_CREATE_ONLY) {
        reply_error(c, 400, "invalid_precondition",
                    "A rollback takes If-Match with the ETag of the version it must find, such as "
                    "\"42\"; \"*\" and If-None-Match have no meaning for it.");
        return;
    }

    sb_coll *coll = NULL;
    sb_read_lock();
    sb_status st = sb_collection_find(c->api->store, c->coll.s, c->coll.len, &coll);
    sb_read_unlock();

    sb_result res = {0};
    sb_write_opts opts = write_opts(c);
    opts.if_rev = if_rev;
    if (st == SB_OK && a.steps)
        st = sb_rollback_steps(coll, c->id.s, c->id.len, (unsigned)a.steps, &opts, &res);
    else if (st == SB_OK)
        st = sb_rollback_to(coll, c->id.s, c->id.len, a.to_version, &opts, &res);

    if (st == SB_OK)
        restored(c, coll, &res);
    else
        reply_rollback_refused(c, st, &res, a.to_version);
}

void reply_rollback_refused(struct call *c, sb_status st, const sb_result *res, uint64_t to_version)
{
    switch (st) {
    case SB_NOT_FOUND:
        reply_error(c, 404, "not_found", "No document \"%.*s\" in collection \"%.*s\".",
                    (int)c->id.len, c->id.s, (int)c->coll.len, c->coll.s);
        break;
    case SB_HISTORY_EXHAUSTED:
        reply_exhausted(c, res->available);
        break;
    case SB_FUTURE:
        reply_error(c, 422, "future_revision", "Version %llu has not been written yet.",
                    (unsigned long long)to_version);
        break;
    case SB_CONFLICT:
        reply_error(c, 412, "precondition_failed",
                    "The document's current version is not the one in If-Match; it was written "
                    "since.");
        break;
    default:
        reply_store_error(c, st);
    }
}
