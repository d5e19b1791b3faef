/*
 * api.c - routing, the shape of every response, and the checks shared by
 * all handlers.  The handlers themselves are in api_read.c, api_write.c,
 * api_rollback.c, api_batch.c and api_changeset.c.
 *
 * Routes:
 *   GET  /_health                 GET  /_collections
 *   POST /_batch
 *   GET  /_changesets             GET  /_changesets/{id}
 *   POST /_changesets/{id}/rollback
 *   GET  /{coll}                  POST /{coll}
 *   GET  /{coll}/{id}             PUT  /{coll}/{id}      DELETE /{coll}/{id}
 *   POST /{coll}/{id}/rollback
 *   GET  /{coll}/{id}/versions    GET  /{coll}/{id}/versions/{rev}
 * Every error is JSON: {"error":"snake_case_code","message":"..."}.
 *
 * Every write (the POST, PUT and DELETE routes) goes through handle_write():
 * X-Change-Set, X-Actor and Idempotency-Key are checked before the handler
 * runs, the change set is made up when the request names none, and the
 * answer carries X-Change-Set (a made-up one only if something was
 * written).  Every answer carries X-Revision, added once
 * the handler is done (finish()).
 */
#include "api_internal.h"
#include "idempotency.h"
#include "json_doc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Idempotency keys: how many answers, how many bytes of them, how long. */
#define IDEM_KEYS      100000
#define IDEM_BYTES     ((size_t)256 << 20)
#define IDEM_WINDOW_NS ((int64_t)24 * 3600 * 1000000000)

sb_status api_new(const struct api_config *cfg, struct api **out)
{
    struct api *api = calloc(1, sizeof(*api));
    if (api == NULL)
        return SB_NOMEM;

    sb_options opts;
    sb_options_init(&opts);
    opts.history = cfg->history;
    opts.data_dir = cfg->data_dir;
    opts.fsync = cfg->fsync;
    opts.fsync_interval_ms = cfg->fsync_interval_ms;
    opts.repair = cfg->repair;
    opts.retain_ns = cfg->retain_ns;
    opts.compact_ratio = cfg->compact_ratio;
    opts.compact_min_bytes = cfg->compact_min;
    opts.log = cfg->log;
    opts.max_change_sets = cfg->max_change_sets;
    opts.max_automatic_change_sets = cfg->max_auto_change_sets;
    api->idem = idem_new(IDEM_KEYS, IDEM_BYTES, IDEM_WINDOW_NS);
    if (api->idem == NULL) {
        free(api);
        return SB_NOMEM;
    }
    sb_status st = sb_store_open(&opts, &api->store);
    if (st != SB_OK) {
        idem_free(api->idem);
        free(api);
        return st;
    }
    api->cfg = *cfg;
    *out = api;
    return SB_OK;
}

sb_store *api_store(struct api *api)
{
    return api->store;
}

void api_free(struct api *api)
{
    if (api == NULL)
        return;
    sb_store_close(api->store);
    idem_free(api->idem);
    for (size_t i = 0; i < api->cfg.nkeys; i++)
        free(api->cfg.keys[i].field);
    free(api->cfg.keys);
    free(api);
}

void api_resp_free(struct api_resp *resp)
{
    for (size_t i = 0; i < resp->nheaders; i++)
        free(resp->headers[i].value);
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
}

/* ---------------------------------------------------------------------- */
/* Responses                                                              */
/* ---------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 503:
        return "Service Unavailable";
    case 507:
        return "Insufficient Storage";
    }
    return status < 400 ? "OK" : "Error";
}

/* Sets the status and body of `resp`, dropping any body it had. */
static void set_body(struct api_resp *resp, int status, char *body, size_t len)
{
    free(resp->body);
    resp->status = status;
    resp->reason = reason(status);
    resp->body = body;
    resp->body_len = len;
}

static void error_json(struct buf *b, const char *code, const char *message)
{
    buf_puts(b, "{\"error\":");
    buf_json_string(b, code, strlen(code));
    buf_puts(b, ",\"message\":");
    buf_json_string(b, message, strlen(message));
}

void api_error(struct api_resp *resp, int status, const char *code, const char *message)
{
    struct buf b = {0};
    error_json(&b, code, message);
    buf_puts(&b, "}");
    size_t len = 0;
    char *body = buf_take(&b, &len);
    set_body(resp, status, body, body ? len : 0);
}

/*
 * Builds an error body: code, message, the fields of `extra` (a JSON
 * fragment such as "\"available\":3", or NULL), and inside a batch the
 * operation it is about, whose index also starts the message.
 */
static void error_reply(struct call *c, int status, const char *code, const char *extra,
                        const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void error_reply(struct call *c, int status, const char *code, const char *extra,
                        const char *fmt, va_list ap)
{
    char message[640];
    int n = 0;
    if (c->op_index >= 0)
        n = snprintf(message, sizeof(message), "operation %ld: ", c->op_index);
    vsnprintf(message + n, sizeof(message) - (size_t)n, fmt, ap);

    struct buf b = {0};
    error_json(&b, code, message);
    if (extra != NULL)
        buf_printf(&b, ",%s", extra);
    if (c->op_index >= 0) {
        buf_printf(&b, ",\"index\":%ld,\"operation\":", c->op_index);
        if (c->op_name != NULL)
            buf_json_string(&b, c->op_name, strlen(c->op_name));
        else
            buf_puts(&b, "null");
    }
    buf_puts(&b, "}");
    size_t len = 0;
    char *body = buf_take(&b, &len);
    set_body(c->resp, status, body, body ? len : 0);
}

void reply_error(struct call *c, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_reply(c, status, code, NULL, fmt, ap);
    va_end(ap);
}

static void reply_error_extra(struct call *c, int status, const char *code, const char *extra,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void reply_error_extra(struct call *c, int status, const char *code, const char *extra,
                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_reply(c, status, code, extra, fmt, ap);
    va_end(ap);
}

void reply_exhausted(struct call *c, unsigned available)
{
    char extra[32];
    snprintf(extra, sizeof(extra), "\"available\":%u", available);
    reply_error_extra(c, 409, "history_exhausted", extra,
                      "The target is older than the history this server retains for the "
                      "document; nothing was changed.");
}

void reply_oom(struct call *c)
{
    reply_error(c, 503, "out_of_memory",
                "The server is out of memory; nothing was changed. Retry later.");
}

int reply_store_error(struct call *c, sb_status st)
{
    switch (st) {
    case SB_OK:
        return 0;
    case SB_NOMEM:
        reply_oom(c);
        break;
    case SB_NOSPACE:
        reply_error(c, 507, "insufficient_storage",
                    "The server's disk is full; the write was not made. Retry once space "
                    "is freed.");
        break;
    case SB_IO:
        reply_error(c, 503, "storage_error",
                    "The server could not write its log; the write is not durable. Reads "
                    "still work; writes resume after the operator restarts the server.");
        break;
    default:
        reply_error(c, 400, "invalid_request", "%s", sb_status_str(st));
    }
    return 1;
}

void reply_body(struct call *c, int status, struct buf *body)
{
    size_t len = 0;
    char *data = buf_take(body, &len);
    if (data == NULL) {
        reply_oom(c);
        return;
    }
    set_body(c->resp, status, data, len);
}

void reply_empty(struct call *c, int status)
{
    set_body(c->resp, status, NULL, 0);
}

void add_header(struct call *c, const char *name, const char *value)
{
    struct api_resp *r = c->resp;
    if (r->nheaders == API_MAX_HEADERS)
        return;
    char *copy = strdup(value);
    if (copy == NULL)
        return;
    r->headers[r->nheaders].name = name;
    r->headers[r->nheaders].value = copy;
    r->nheaders++;
}

void add_etag(struct call *c, uint64_t rev)
{
    char etag[32];
    snprintf(etag, sizeof(etag), "\"%llu\"", (unsigned long long)rev);
    add_header(c, "etag", etag);
}

void add_location(struct call *c, const char *id, size_t id_len)
{
    struct buf b = {0};
    buf_puts(&b, "/");
    buf_percent_encode(&b, c->coll.s, c->coll.len);
    buf_puts(&b, "/");
    buf_percent_encode(&b, id, id_len);
    size_t len;
    char *loc = buf_take(&b, &len);
    if (loc != NULL)
        add_header(c, "location", loc);
    free(loc);
}

void buf_time(struct buf *b, int64_t ns)
{
    time_t secs = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
               tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ns % 1000000000 / 1000));
}

void buf_json_bytes(struct buf *b, const char *s, size_t len)
{
    if (utf8_valid(s, len)) {
        buf_json_string(b, s, len);
        return;
    }
    buf_puts(b, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x80 || ch < 0x20 || ch == '"' || ch == '\\')
            buf_printf(b, "\\u%04x", ch);
        else
            buf_append(b, &s[i], 1);
    }
    buf_puts(b, "\"");
}

void set_revision(struct call *c, uint64_t rev)
{
    c->revision = rev;
    c->has_revision = 1;
}

sb_write_opts write_opts(const struct call *c)
{
    sb_write_opts o = {.change_set = c->cs,
                       .change_set_len = c->cs_len,
                       .actor = c->actor,
                       .actor_len = c->actor_len,
                       .nowait = 1,
                       .change_set_automatic = c->cs_automatic};
    return o;
}

static void add_revision_header(struct api_resp *resp, uint64_t rev)
{
    char value[24];
    snprintf(value, sizeof(value), "%llu", (unsigned long long)rev);
    struct call c = {.resp = resp};
    add_header(&c, "x-revision", value);
}

void api_add_revision(struct api *api, struct api_resp *resp)
{
    add_revision_header(resp, sb_store_revision(api->store));
}

/* ---------------------------------------------------------------------- */
/* Request checks                                                         */
/* ---------------------------------------------------------------------- */

int body_is_json(const struct call *c)
{
    const char *ct = c->req->content_type;
    size_t len = c->req->content_type_len;
    static const char json[] = "application/json";
    size_t n = sizeof(json) - 1;

    if (ct == NULL || len < n || strncasecmp(ct, json, n) != 0)
        return 0;
    return len == n || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/* Replies to what json_doc_parse*() found wrong; 0 for JSON_DOC_OK. */
static int reply_json_error(struct call *c, enum json_doc_error e, const char *msg)
{
    switch (e) {
    case JSON_DOC_OK:
        return 0;
    case JSON_DOC_MALFORMED:
        reply_error(c, 400, "malformed_json", "Malformed JSON: %s", msg);
        break;
    case JSON_DOC_OUT_OF_RANGE:
        reply_error(c, 422, "number_out_of_range",
                    "A number is out of range (integers must fit in 64 bits): %s", msg);
        break;
    case JSON_DOC_NOT_OBJECT:
        reply_error(c, 400, "not_an_object", "%s", msg);
        break;
    case JSON_DOC_NOMEM:
        reply_oom(c);
        break;
    }
    return 1;
}

static int check_json_type(struct call *c)
{
    if (body_is_json(c))
        return 1;
    reply_error(c, 415, "unsupported_media_type",
                "The body must be sent with Content-Type: application/json.");
    return 0;
}

int parse_json_body(struct call *c, struct json_doc *doc)
{
    const struct api_req *r = c->req;
    char msg[256];

    if (!check_json_type(c))
        return 0;
    enum json_doc_error e =
        json_doc_parse(r->body ? r->body : "", r->body_len, doc, msg, sizeof(msg));
    return !reply_json_error(c, e, msg);
}

int parse_json_value(struct call *c, json_t **root)
{
    const struct api_req *r = c->req;
    char msg[256];

    if (!check_json_type(c))
        return 0;
    enum json_doc_error e =
        json_doc_parse_value(r->body ? r->body : "", r->body_len, root, msg, sizeof(msg));
    return !reply_json_error(c, e, msg);
}

const char *key_field(const struct api *api, const struct uri_str *coll)
{
    for (size_t i = 0; i < api->cfg.nkeys; i++) {
        const char *name = api->cfg.keys[i].collection;
        if (strlen(name) == coll->len && memcmp(name, coll->s, coll->len) == 0)
            return api->cfg.keys[i].field;
    }
    return "id";
}

/* Refuses query parameters the route does not know: a typo such as
 * "?step=3" must not silently roll back one step instead of three. */
int check_params(struct call *c, const char *const *allowed)
{
    for (size_t i = 0; i < c->uri.nparam; i++) {
        const struct uri_str *n = &c->uri.param[i].name;
        int known = 0;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strlen(*a) == n->len && memcmp(*a, n->s, n->len) == 0;
        if (!known) {
            reply_error(c, 400, "unknown_parameter",
                        "Unknown query parameter \"%.*s\" for this "
                        "endpoint.",
                        (int)(n->len > 64 ? 64 : n->len), n->s);
            return 0;
        }
    }
    return 1;
}

int bool_param(struct call *c, const char *name, int *out)
{
    const struct uri_str *p = uri_param(&c->uri, name);
    *out = 0;
    if (p == NULL || (p->len == 5 && memcmp(p->s, "false", 5) == 0))
        return 1;
    if (p->len == 4 && memcmp(p->s, "true", 4) == 0) {
        *out = 1;
        return 1;
    }
    reply_error(c, 400, "invalid_parameter", "%s must be true or false.", name);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Routing                                                                */
/* ---------------------------------------------------------------------- */

typedef void (*handler_fn)(struct call *c);

static int is(const struct uri_str *s, const char *lit)
{
    return s->len == strlen(lit) && memcmp(s->s, lit, s->len) == 0;
}

static int method_is(const struct call *c, const char *m)
{
    return c->req->method_len == strlen(m) && memcmp(c->req->method, m, c->req->method_len) == 0;
}

static void not_allowed(struct call *c, const char *allow)
{
    add_header(c, "allow", allow);
    reply_error(c, 405, "method_not_allowed", "Method %.*s is not allowed here; allowed: %s.",
                (int)(c->req->method_len > 16 ? 16 : c->req->method_len), c->req->method, allow);
}

static void no_route(struct call *c)
{
    reply_error(c, 404, "no_such_endpoint", "No endpoint at this path; see the API documentation.");
}

static void handle_health(struct call *c)
{
    struct buf b = {0};
    buf_puts(&b, "{\"status\":\"ok\"}");
    reply_body(c, 200, &b);
}

/* Picks the handler of a route for the request's method (m1 or m2, which
 * may be NULL); replies 405 and returns NULL for any other method. */
static handler_fn pick(struct call *c, const char *allow, const char *m1, handler_fn h1,
                       const char *m2, handler_fn h2)
{
    if (m1 != NULL && method_is(c, m1))
        return h1;
    if (m2 != NULL && method_is(c, m2))
        return h2;
    not_allowed(c, allow);
    return NULL;
}

static handler_fn route_server(struct call *c)
{
    size_t n = c->uri.nseg;
    const struct uri_str *name = &c->uri.seg[0];

    if (n == 1 && is(name, "_health"))
        return pick(c, "GET", "GET", handle_health, NULL, NULL);
    if (n == 1 && is(name, "_collections"))
        return pick(c, "GET", "GET", handle_collections, NULL, NULL);
    if (n == 1 && is(name, "_batch"))
        return pick(c, "POST", "POST", handle_batch, NULL, NULL);
    if (n == 1 && is(name, "_changesets"))
        return pick(c, "GET", "GET", handle_changeset_list, NULL, NULL);
    if (n == 2 && is(name, "_changesets"))
        return pick(c, "GET", "GET", handle_changeset_get, NULL, NULL);
    if (n == 3 && is(name, "_changesets") && is(&c->uri.seg[2], "rollback"))
        return pick(c, "POST", "POST", handle_changeset_rollback, NULL, NULL);

    reply_error(c, 400, "reserved_name",
                "Names that begin with '_' are reserved for the server's "
                "own endpoints and cannot name a collection.");
    return NULL;
}

static int check_names(struct call *c)
{
    const struct uri_str *s = &c->uri.seg[0];
    if (!sb_collection_name_valid(s->s, s->len)) {
        reply_error(c, 400, "invalid_collection",
                    "A collection name is 1 to 64 characters of "
                    "A-Z, a-z, 0-9, '_', '.' and '-'.");
        return 0;
    }
    c->coll = *s;
    if (c->uri.nseg < 2)
        return 1;
    s = &c->uri.seg[1];
    if (!sb_id_valid(s->s, s->len) || !utf8_valid(s->s, s->len)) {
        reply_error(c, 400, "invalid_id",
                    "A document id is 1 to 512 bytes of UTF-8, without "
                    "NUL or '/' (percent-decoded).");
        return 0;
    }
    c->id = *s;
    return 1;
}

static handler_fn route_document(struct call *c)
{
    size_t n = c->uri.nseg;
    const struct uri_str *sub = n >= 3 ? &c->uri.seg[2] : NULL;

    if (n == 1)
        return pick(c, "GET, POST", "GET", handle_list, "POST", handle_create);
    if (n == 2) {
        if (method_is(c, "DELETE"))
            return handle_delete;
        return pick(c, "GET, PUT, DELETE", "GET", handle_get, "PUT", handle_put);
    }
    if (n == 3 && is(sub, "rollback"))
        return pick(c, "POST", "POST", handle_rollback, NULL, NULL);
    if (n == 3 && is(sub, "versions"))
        return pick(c, "GET", "GET", handle_versions, NULL, NULL);
    if (n == 4 && is(sub, "versions")) {
        const struct uri_str *r = &c->uri.seg[3];
        if (!method_is(c, "GET")) {
            not_allowed(c, "GET");
            return NULL;
        }
        if (uri_parse_u64(r->s, r->len, UINT64_MAX, &c->path_rev) != 0 || c->path_rev == 0) {
            reply_error(c, 400, "invalid_revision", "A revision is a positive integer.");
            return NULL;
        }
        return handle_version;
    }
    no_route(c);
    return NULL;
}

/* Finds the handler of the request, or replies with why there is none. */
static handler_fn route(struct call *c)
{
    if (c->uri.nseg == 0) {
        no_route(c);
        return NULL;
    }
    if (c->uri.seg[0].len > 0 && c->uri.seg[0].s[0] == '_')
        return route_server(c);
    if (!check_names(c))
        return NULL;
    return route_document(c);
}

static void target_error(struct call *c, enum uri_error e)
{
    switch (e) {
    case URI_BAD_ESCAPE:
        reply_error(c, 400, "bad_escape",
                    "The URL has a '%%' that is not followed by two "
                    "hexadecimal digits.");
        break;
    case URI_TOO_MANY_PARAMS:
        reply_error(c, 400, "too_many_parameters", "The query string has more than %d parameters.",
                    URI_MAX_PARAMS);
        break;
    case URI_NOMEM:
        reply_oom(c);
        break;
    case URI_NOT_ABSOLUTE:
        reply_error(c, 400, "bad_target",
                    "The request target must be an "
                    "absolute path.");
        break;
    default:
        no_route(c);
    }
}

/* ---------------------------------------------------------------------- */
/* Writes and the end of every request                                    */
/* ---------------------------------------------------------------------- */

/* Checks the headers that name the change set, its actor and the request
 * itself; settles the change set of the write.  Replies and returns 0 when
 * one is malformed. */
static int write_headers(struct call *c, const char *fresh_prefix)
{
    const struct api_req *r = c->req;

    if (r->change_set != NULL && !csid_valid(r->change_set, r->change_set_len)) {
        reply_error(c, 400, "invalid_change_set",
                    "X-Change-Set must be 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' "
                    "and '-'.");
        return 0;
    }
    if (r->actor != NULL && !csid_actor_valid(r->actor, r->actor_len)) {
        reply_error(c, 400, "invalid_actor",
                    "X-Actor must be 1 to 128 bytes of printable ASCII (0x20 to 0x7e).");
        return 0;
    }
    if (r->idempotency_key != NULL && !idem_key_valid(r->idempotency_key, r->idempotency_key_len)) {
        reply_error(c, 400, "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 128 bytes of printable ASCII (0x20 to 0x7e).");
        return 0;
    }

    if (r->change_set != NULL) {
        memcpy(c->cs, r->change_set, r->change_set_len);
        c->cs[r->change_set_len] = '\0';
        c->cs_len = r->change_set_len;
    } else {
        csid_new(fresh_prefix, c->cs);
        c->cs_len = strlen(c->cs);
        /* The undo of a change set is worth keeping like a named one. */
        c->cs_automatic = strcmp(fresh_prefix, "auto-") == 0;
    }
    c->actor = r->actor;
    c->actor_len = r->actor_len;
    return 1;
}

/*
 * A change set the client named is echoed on every answer.  One the server
 * made up is sent only when the request wrote under it: after an error or
 * a dry run it names a change set that does not exist, and a client that
 * kept it to undo the write later would be told 404.
 */
static void add_change_set(struct call *c)
{
    if (c->req->change_set != NULL ||
        (c->resp->status >= 200 && c->resp->status < 300 && !c->wrote_nothing))
        add_header(c, "x-change-set", c->cs);
}

static void add_revision(struct call *c)
{
    add_revision_header(c->resp, c->has_revision ? c->revision : sb_store_revision(c->api->store));
    c->has_revision = 2; /* sent */
}

/*
 * Runs a write handler.  With an Idempotency-Key, a retry of a request
 * already answered gets that answer again (its X-Revision and X-Change-Set
 * included, and its log position, so the HTTP layer still holds it until
 * the write is durable), and a request with the key of another request is
 * refused.  The keys live in memory only; see idempotency.h.
 */
static void handle_write(struct call *c, handler_fn fn)
{
    const struct api_req *r = c->req;
    const char *prefix = fn == handle_changeset_rollback ? "undo-" : "auto-";
    if (!write_headers(c, prefix))
        return;

    if (r->idempotency_key == NULL) {
        fn(c);
        add_change_set(c);
        return;
    }

    struct idem_fp fp;
    idem_fingerprint(r, &fp);
    switch (idem_begin(c->api->idem, r->idempotency_key, r->idempotency_key_len, &fp, c->resp)) {
    case IDEM_FIRST:
        break;
    case IDEM_REPLAY:
        add_header(c, "idempotent-replayed", "true");
        c->has_revision = 2; /* the answer has its own */
        return;
    case IDEM_REUSED:
        reply_error(c, 422, "idempotency_key_reused",
                    "This Idempotency-Key was used for a different request (method, target, "
                    "X-Change-Set or body); use a new key for a new request.");
        return;
    case IDEM_IN_FLIGHT:
        reply_error(c, 409, "idempotency_key_in_flight",
                    "A request with this Idempotency-Key is being handled; retry once it has "
                    "been answered to get its answer.");
        return;
    case IDEM_NOMEM:
        reply_oom(c);
        return;
    }

    fn(c);
    add_change_set(c);
    add_revision(c);
    idem_finish(c->api->idem, r->idempotency_key, r->idempotency_key_len, c->resp);
}

void api_handle(struct api *api, const struct api_req *req, struct api_resp *resp)
{
    struct call c = {.api = api, .req = req, .resp = resp, .op_index = -1};
    memset(resp, 0, sizeof(*resp));

    enum uri_error e = uri_parse(req->target, req->target_len, &c.uri);
    if (e != URI_OK) {
        target_error(&c, e);
    } else {
        handler_fn fn = route(&c);
        int writes = method_is(&c, "POST") || method_is(&c, "PUT") || method_is(&c, "DELETE");
        if (fn != NULL && writes)
            handle_write(&c, fn);
        else if (fn != NULL)
            fn(&c);
        uri_free(&c.uri);
    }

    /* An error body that could not be built still needs a status. */
    if (resp->status == 0)
        resp->status = 503, resp->reason = reason(503);
    if (c.has_revision != 2)
        add_revision(&c);
}
