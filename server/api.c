/*
 * api.c - routing, the shape of every response, and the checks shared by
 * all handlers.  The handlers themselves are in api_read.c and api_write.c.
 *
 * Routes:
 *   GET  /_health                 GET  /_collections
 *   GET  /{coll}                  POST /{coll}
 *   GET  /{coll}/{id}             PUT  /{coll}/{id}      DELETE /{coll}/{id}
 *   POST /{coll}/{id}/rollback
 *   GET  /{coll}/{id}/versions    GET  /{coll}/{id}/versions/{rev}
 * Every error is JSON: {"error":"snake_case_code","message":"..."}.
 */
#include "api_internal.h"
#include "json_doc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
    sb_status st = sb_store_open(&opts, &api->store);
    if (st != SB_OK) {
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

void reply_error(struct call *c, int status, const char *code, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    api_error(c->resp, status, code, message);
}

void reply_oom(struct call *c)
{
    api_error(c->resp, 503, "out_of_memory",
              "The server is out of memory; nothing was changed. Retry "
              "later.");
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

int parse_json_body(struct call *c, struct json_doc *doc)
{
    const struct api_req *r = c->req;
    char msg[256];

    if (!body_is_json(c)) {
        reply_error(c, 415, "unsupported_media_type",
                    "The body must be sent with Content-Type: application/json.");
        return 0;
    }
    switch (json_doc_parse(r->body ? r->body : "", r->body_len, doc, msg, sizeof(msg))) {
    case JSON_DOC_OK:
        return 1;
    case JSON_DOC_MALFORMED:
        reply_error(c, 400, "malformed_json", "Malformed JSON: %s", msg);
        return 0;
    case JSON_DOC_OUT_OF_RANGE:
        reply_error(c, 422, "number_out_of_range",
                    "A number is out of range (integers must fit in 64 bits): %s", msg);
        return 0;
    case JSON_DOC_NOT_OBJECT:
        reply_error(c, 400, "not_an_object", "%s", msg);
        return 0;
    case JSON_DOC_NOMEM:
        break;
    }
    reply_oom(c);
    return 0;
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

/* ---------------------------------------------------------------------- */
/* Routing                                                                */
/* ---------------------------------------------------------------------- */

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

static void route_server(struct call *c)
{
    if (c->uri.nseg == 1 && is(&c->uri.seg[0], "_health")) {
        if (!method_is(c, "GET")) {
            not_allowed(c, "GET");
            return;
        }
        struct buf b = {0};
        buf_puts(&b, "{\"status\":\"ok\"}");
        reply_body(c, 200, &b);
        return;
    }
    if (c->uri.nseg == 1 && is(&c->uri.seg[0], "_collections")) {
        if (!method_is(c, "GET"))
            not_allowed(c, "GET");
        else
            handle_collections(c);
        return;
    }
    reply_error(c, 400, "reserved_name",
                "Names that begin with '_' are reserved for the server's "
                "own endpoints and cannot name a collection.");
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

static void route_document(struct call *c)
{
    size_t n = c->uri.nseg;
    const struct uri_str *sub = n >= 3 ? &c->uri.seg[2] : NULL;

    if (n == 1) {
        if (method_is(c, "GET"))
            handle_list(c);
        else if (method_is(c, "POST"))
            handle_create(c);
        else
            not_allowed(c, "GET, POST");
    } else if (n == 2) {
        if (method_is(c, "GET"))
            handle_get(c);
        else if (method_is(c, "PUT"))
            handle_put(c);
        else if (method_is(c, "DELETE"))
            handle_delete(c);
        else
            not_allowed(c, "GET, PUT, DELETE");
    } else if (n == 3 && is(sub, "rollback")) {
        if (method_is(c, "POST"))
            handle_rollback(c);
        else
            not_allowed(c, "POST");
    } else if (n == 3 && is(sub, "versions")) {
        if (method_is(c, "GET"))
            handle_versions(c);
        else
            not_allowed(c, "GET");
    } else if (n == 4 && is(sub, "versions")) {
        uint64_t rev;
        const struct uri_str *r = &c->uri.seg[3];
        if (!method_is(c, "GET"))
            not_allowed(c, "GET");
        else if (uri_parse_u64(r->s, r->len, UINT64_MAX, &rev) != 0 || rev == 0)
            reply_error(c, 400, "invalid_revision", "A revision is a positive integer.");
        else
            handle_version(c, rev);
    } else {
        no_route(c);
    }
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

void api_handle(struct api *api, const struct api_req *req, struct api_resp *resp)
{
    struct call c = {.api = api, .req = req, .resp = resp};
    memset(resp, 0, sizeof(*resp));

    enum uri_error e = uri_parse(req->target, req->target_len, &c.uri);
    if (e != URI_OK) {
        target_error(&c, e);
        return;
    }
    if (c.uri.nseg == 0)
        no_route(&c);
    else if (c.uri.seg[0].len > 0 && c.uri.seg[0].s[0] == '_')
        route_server(&c);
    else if (check_names(&c))
        route_document(&c);
    uri_free(&c.uri);

    /* An error body that could not be built still needs a status. */
    if (resp->status == 0)
        resp->status = 503, resp->reason = reason(503);
}
