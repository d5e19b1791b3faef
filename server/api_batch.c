/*
 * api_batch.c - POST /_batch: a JSON array of operations on documents of
 * any collections, applied all or nothing, in order, under one change set.
 *
 * Every operation is checked before the store is touched, with the rules
 * of its single endpoint (api_write.c: key field, key_mismatch, ...), so a
 * refused batch changes nothing; then sb_batch() applies them at once.  An
 * error about one operation names it: "index" and "operation" in the body,
 * and a message starting "operation I: " (see reply_error()).
 *
 * Each stored document is its text as the client wrote it, minus
 * insignificant whitespace, as with the single endpoints: the text of each
 * "document" member is located in the body (json_doc_member_spans()) and
 * parsed on its own.
 */
#include "api_internal.h"
#include "json_doc.h"

#include <stdlib.h>
#include <string.h>

#define BATCH_MAX 1000
#define STEPS_MAX 0xffffffffu

enum { OP_CREATE, OP_PUT, OP_DELETE, OP_ROLLBACK, OP_KINDS };

static const char *const op_names[OP_KINDS] = {"create", "put", "delete", "rollback"};

/* The members each operation takes, "op" included; NULL-terminated. */
static const char *const op_fields[OP_KINDS][7] = {
    {"op", "collection", "document", NULL},
    {"op", "collection", "id", "document", "if_match", "if_none_match", NULL},
    {"op", "collection", "id", "if_match", NULL},
    {"op", "collection", "id", "steps", "to_version", "if_match", NULL},
};

/* One operation, as checked. */
struct op {
    int kind;
    struct uri_str coll;
    struct uri_str id; /* create: taken from the document's key field */
    char scratch[24];  /* an integer key as text */
    struct json_doc doc;
    int create_only; /* put with "if_none_match": "*" */
    uint64_t if_rev, steps, to_version;
};

/* Reads "op" and checks that every member is one the operation takes. */
static int parse_kind(struct call *c, json_t *elem, struct op *op)
{
    json_t *v = json_object_get(elem, "op");
    if (!json_is_string(v)) {
        reply_error(c, 400, "invalid_batch",
                    "\"op\" must be \"create\", \"put\", \"delete\" or \"rollback\".");
        return 0;
    }
    for (op->kind = 0; op->kind < OP_KINDS; op->kind++) {
        if (strcmp(json_string_value(v), op_names[op->kind]) == 0)
            break;
    }
    if (op->kind == OP_KINDS) {
        reply_error(c, 400, "invalid_batch",
                    "unknown op \"%.32s\"; use \"create\", \"put\", \"delete\" or \"rollback\".",
                    json_string_value(v));
        return 0;
    }
    c->op_name = op_names[op->kind];

    const char *key;
    json_object_foreach(elem, key, v)
    {
        const char *const *f = op_fields[op->kind];
        while (*f != NULL && strcmp(*f, key) != 0)
            f++;
        if (*f == NULL) {
            reply_error(c, 400, "invalid_batch", "%s takes no member \"%.64s\".",
                        op_names[op->kind], key);
            return 0;
        }
    }
    return 1;
}

/* Reads a required string member; replies and returns 0 when it is not one. */
static int string_member(struct call *c, json_t *elem, const char *name, struct uri_str *out)
{
    json_t *v = json_object_get(elem, name);
    if (!json_is_string(v)) {
        reply_error(c, 400, "invalid_batch", "%s needs \"%s\" as a string.", c->op_name, name);
        return 0;
    }
    out->s = json_string_value(v);
    out->len = json_string_length(v);
    return 1;
}

/* The collection and id, checked as the single endpoints check the path. */
static int parse_target(struct call *c, json_t *elem, struct op *op)
{
    if (!string_member(c, elem, "collection", &op->coll))
        return 0;
    if (op->coll.len > 0 && op->coll.s[0] == '_') {
        reply_error(c, 400, "reserved_name",
                    "Names that begin with '_' are reserved for the server's own endpoints and "
                    "cannot name a collection.");
        return 0;
    }
    if (!sb_collection_name_valid(op->coll.s, op->coll.len)) {
        reply_error(c, 400, "invalid_collection",
                    "A collection name is 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and "
                    "'-'.");
        return 0;
    }
    c->coll = op->coll;
    if (op->kind == OP_CREATE)
        return 1;

    if (!string_member(c, elem, "id", &op->id))
        return 0;
    if (!sb_id_valid(op->id.s, op->id.len)) {
        reply_error(c, 400, "invalid_id", "A document id is 1 to 512 bytes, without NUL or '/'.");
        return 0;
    }
    c->id = op->id;
    return 1;
}

/* Parses the text of "document" on its own, then applies the key rules. */
static int parse_document(struct call *c, json_t *elem, const struct json_span *span, struct op *op)
{
    if (!json_is_object(json_object_get(elem, "document")) || span->len == 0) {
        reply_error(c, 400, "invalid_batch", "%s needs \"document\" as a JSON object.", c->op_name);
        return 0;
    }
    char msg[256];
    switch (json_doc_parse(c->req->body + span->off, span->len, &op->doc, msg, sizeof(msg))) {
    case JSON_DOC_OK:
        break;
    case JSON_DOC_NOMEM:
        reply_oom(c);
        return 0;
    default: /* the whole body parsed: its parts do */
        reply_error(c, 400, "invalid_batch", "the document could not be read: %s", msg);
        return 0;
    }

    if (op->kind == OP_PUT)
        return key_matches(c, &op->doc);
    const char *id;
    size_t len;
    if (!create_key(c, &op->doc, op->scratch, &id, &len))
        return 0;
    op->id.s = id;
    op->id.len = len;
    c->id = op->id;
    return 1;
}

/* Reads an optional positive integer member into *out (0 when absent). */
static int positive(json_t *elem, const char *name, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(elem, name);
    *out = 0;
    if (v == NULL)
        return 1;
    if (!json_is_integer(v) || json_integer_value(v) <= 0 || (uint64_t)json_integer_value(v) > max)
        return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

static int parse_preconditions(struct call *c, json_t *elem, struct op *op)
{
    if (!positive(elem, "if_match", UINT64_MAX, &op->if_rev)) {
        reply_error(c, 400, "invalid_batch", "\"if_match\" must be a positive integer revision.");
        return 0;
    }
    json_t *none = json_object_get(elem, "if_none_match");
    if (none == NULL)
        return 1;
    if (!json_is_string(none) || strcmp(json_string_value(none), "*") != 0) {
        reply_error(c, 400, "invalid_batch", "\"if_none_match\" must be \"*\".");
        return 0;
    }
    if (op->if_rev != 0) {
        reply_error(c, 400, "invalid_batch", "give \"if_match\" or \"if_none_match\", not both.");
        return 0;
    }
    op->create_only = 1;
    return 1;
}

static int parse_rollback(struct call *c, json_t *elem, struct op *op)
{
    json_t *steps = json_object_get(elem, "steps"), *to = json_object_get(elem, "to_version");
    if ((steps != NULL && !json_is_integer(steps)) || (to != NULL && !json_is_integer(to))) {
        reply_error(c, 400, "invalid_batch", "\"steps\" and \"to_version\" are integers.");
        return 0;
    }
    if (!positive(elem, "steps", STEPS_MAX, &op->steps)) {
        reply_error(c, 422, "invalid_steps", "steps must be an integer from 1 to %u.", STEPS_MAX);
        return 0;
    }
    if (!positive(elem, "to_version", UINT64_MAX >> 1, &op->to_version)) {
        reply_error(c, 422, "invalid_version", "to_version must be an integer from 1 to %llu.",
                    (unsigned long long)(UINT64_MAX >> 1));
        return 0;
    }
    if ((op->steps != 0) == (op->to_version != 0)) {
        reply_error(c, 400, "invalid_batch",
                    "rollback needs exactly one of \"steps\" and \"to_version\".");
        return 0;
    }
    return 1;
}

/* Checks element `i` of the batch into `op`; replies and returns 0 when it
 * is refused.  Leaves c->coll and c->id on the operation's. */
static int parse_op(struct call *c, json_t *elem, const struct json_span *span, struct op *op)
{
    if (!json_is_object(elem)) {
        reply_error(c, 400, "invalid_batch", "an operation must be a JSON object.");
        return 0;
    }
    if (!parse_kind(c, elem, op) || !parse_target(c, elem, op))
        return 0;
    switch (op->kind) {
    case OP_CREATE:
        return parse_document(c, elem, span, op);
    case OP_PUT:
        return parse_preconditions(c, elem, op) && parse_document(c, elem, span, op);
    case OP_DELETE:
        return parse_preconditions(c, elem, op); /* if_none_match is not a member it takes */
    default:                                     /* if_none_match is not a member it takes either */
        return parse_preconditions(c, elem, op) && parse_rollback(c, elem, op);
    }
}

/* ---------------------------------------------------------------------- */

/* Reads the body into a JSON array of 1 to BATCH_MAX elements. */
static int parse_array(struct call *c, json_t **root)
{
    if (c->req->body == NULL || c->req->body_len == 0) {
        reply_error(c, 400, "invalid_batch", "The body must be a JSON array of 1 to %d operations.",
                    BATCH_MAX);
        return 0;
    }
    if (!parse_json_value(c, root))
        return 0;
    if (!json_is_array(*root))
        reply_error(c, 400, "invalid_batch", "The body must be a JSON array of 1 to %d operations.",
                    BATCH_MAX);
    else if (json_array_size(*root) == 0)
        reply_error(c, 400, "empty_batch", "The batch has no operations.");
    else if (json_array_size(*root) > BATCH_MAX)
        reply_error(c, 413, "batch_too_large",
                    "The batch has %zu operations; at most %d are allowed.", json_array_size(*root),
                    BATCH_MAX);
    else
        return 1;
    json_decref(*root);
    *root = NULL;
    return 0;
}

/* Checks every operation; replies about the first refused one. */
static int parse_ops(struct call *c, json_t *root, struct op *ops, size_t n)
{
    struct json_span *spans = calloc(n, sizeof(*spans));
    if (spans == NULL) {
        reply_oom(c);
        return 0;
    }
    json_doc_member_spans(c->req->body, c->req->body_len, "document", spans, n);

    int ok = 1;
    for (size_t i = 0; i < n && ok; i++) {
        c->op_index = (long)i;
        c->op_name = NULL;
        ok = parse_op(c, json_array_get(root, i), &spans[i], &ops[i]);
    }
    free(spans);
    if (ok)
        c->op_index = -1;
    return ok;
}

/* Turns the checked operations into the store's; opens their collections
 * (creating those that do not exist: an empty collection is not written
 * to the log and lists like an absent one, so a batch that fails after
 * this leaves nothing a client can see). */
static int to_store_ops(struct call *c, const struct op *in, sb_batch_op *out, size_t n)
{
    static const sb_batch_kind kinds[OP_KINDS] = {SB_BATCH_CREATE, SB_BATCH_PUT, SB_BATCH_DELETE,
                                                  SB_BATCH_ROLLBACK_STEPS};
    for (size_t i = 0; i < n; i++) {
        const struct op *op = &in[i];
        sb_batch_op *o = &out[i];
        sb_status st = sb_collection_open(c->api->store, op->coll.s, op->coll.len, &o->coll);
        if (st != SB_OK) {
            reply_store_error(c, st);
            return 0;
        }
        o->kind = op->create_only ? SB_BATCH_CREATE : kinds[op->kind];
        if (op->kind == OP_ROLLBACK && op->to_version != 0)
            o->kind = SB_BATCH_ROLLBACK_TO;
        o->id = op->id.s;
        o->id_len = op->id.len;
        o->payload = op->doc.compact;
        o->len = op->doc.compact_len;
        o->if_rev = op->if_rev;
        o->steps = (unsigned)op->steps;
        o->rev = op->to_version;
    }
    return 1;
}

/* What the single endpoint would have answered. */
static int single_status(const struct op *op, const sb_result *res)
{
    switch (op->kind) {
    case OP_CREATE:
        return 201;
    case OP_PUT:
        return res->created ? 201 : 200;
    case OP_DELETE:
        return 204;
    default:
        return res->absent ? 204 : 200;
    }
}

static void reply_applied(struct call *c, const struct op *in, const sb_batch_op *ops, size_t n)
{
    const sb_result *last = &ops[n - 1].result;
    c->resp->lsn = last->lsn;
    set_revision(c, last->rev);

    struct buf b = {0};
    buf_puts(&b, "{\"change_set\":");
    buf_json_string(&b, c->cs, c->cs_len);
    buf_printf(&b, ",\"revision\":%llu,\"results\":[", (unsigned long long)last->rev);
    for (size_t i = 0; i < n; i++) {
        const sb_result *res = &ops[i].result;
        buf_puts(&b, i > 0 ? ",{\"op\":\"" : "{\"op\":\"");
        buf_puts(&b, op_names[in[i].kind]);
        buf_puts(&b, "\",\"collection\":");
        buf_json_string(&b, in[i].coll.s, in[i].coll.len);
        buf_puts(&b, ",\"id\":");
        buf_json_string(&b, in[i].id.s, in[i].id.len);
        buf_printf(&b, ",\"status\":%d,\"revision\":%llu,\"deleted\":%s}",
                   single_status(&in[i], res), (unsigned long long)res->rev,
                   res->absent ? "true" : "false");
    }
    buf_puts(&b, "]}");
    reply_body(c, 200, &b);
}

/* Replies to a batch the store refused: with the error the single
 * endpoint gives, about the operation that failed, unless the failure is
 * the whole batch's (memory, the log). */
static void reply_refused(struct call *c, sb_status st, const struct op *in, const sb_batch_op *ops,
                          size_t n, size_t failed)
{
    if (st == SB_NOMEM || st == SB_IO || st == SB_NOSPACE || failed >= n) {
        reply_store_error(c, st);
        return;
    }
    const struct op *op = &in[failed];
    c->op_index = (long)failed;
    c->op_name = op_names[op->kind];
    c->coll = op->coll;
    c->id = op->id;
    switch (op->kind) {
    case OP_CREATE:
        reply_create_refused(c, st, op->id.s, op->id.len);
        break;
    case OP_PUT:
        reply_put_refused(c, st, op->create_only);
        break;
    case OP_DELETE:
        reply_delete_refused(c, st);
        break;
    default:
        reply_rollback_refused(c, st, &ops[failed].result, op->to_version);
    }
}

void handle_batch(struct call *c)
{
    static const char *const params[] = {NULL};
    json_t *root = NULL;
    if (!check_params(c, params) || !parse_array(c, &root))
        return;

    size_t n = json_array_size(root);
    struct op *in = calloc(n, sizeof(*in));
    sb_batch_op *ops = calloc(n, sizeof(*ops));
    if (in == NULL || ops == NULL) {
        reply_oom(c);
        goto out;
    }
    if (!parse_ops(c, root, in, n) || !to_store_ops(c, in, ops, n))
        goto out;

    sb_write_opts opts = write_opts(c);
    size_t failed = n;
    sb_status st = sb_batch(c->api->store, ops, n, &opts, &failed);
    if (st == SB_OK)
        reply_applied(c, in, ops, n);
    else
        reply_refused(c, st, in, ops, n, failed);

out:
    for (size_t i = 0; in != NULL && i < n; i++)
        json_doc_free(&in[i].doc);
    free(in);
    free(ops);
    json_decref(root);
}
