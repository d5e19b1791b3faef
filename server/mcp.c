/*
 * mcp.c - the MCP endpoint's transport and JSON-RPC layer; see mcp.h.
 *
 * A POST is checked in this order, each failure answered at once:
 *   Origin (403), MCP-Protocol-Version known (400, -32022), Accept allows
 *   application/json (406), Content-Type is application/json (415), the
 *   body parses (400, -32700).
 * Then the revision decides the rest.  2026-07-28 (the header says so) is
 * stateless: no batch, the Mcp-Method header must equal the body's method
 * and Mcp-Name its tool name (400, -32020 HeaderMismatch), params._meta
 * must carry the protocol version (equal to the header) and the client's
 * capabilities (400, -32602), and an unknown method is 404 with -32601.
 * The earlier revisions need a session opened by initialize: without
 * Mcp-Session-Id a request gets 400, with an unknown one 404; the session
 * fixes the revision (a request without the header is taken as the one
 * negotiated, and 2025-03-26 before any).  Only 2025-03-26 has batches.
 *
 * Answers are application/json: one JSON-RPC response, a batch of them, or
 * 202 without a body when the POST held no request.  Errors of the
 * transport carry a JSON-RPC error without an id; GET and other methods
 * get the REST API's 405 error, since they carry no JSON-RPC at all.
 *
 * Writes of the tools are recorded under a change set: the tool's
 * change_set argument, else the session id, else (2026-07-28) an id
 * derived from the client's name and version, as docs/mcp.md documents.
 */
#include "mcp.h"
#include "mcp_internal.h"
#include "mcp_session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "snapback.h"

/* The JSON-RPC and MCP error codes used here. */
#define PARSE_ERROR      (-32700)
#define INVALID_REQUEST  (-32600)
#define METHOD_NOT_FOUND (-32601)
#define INVALID_PARAMS   (-32602)
#define INTERNAL_ERROR   (-32603)
#define HEADER_MISMATCH  (-32020)
#define UNSUPPORTED_VER  (-32022)

/* How long a client may keep tools/list and server/discover (2026-07-28):
 * the tools only change with the server's version. */
#define LIST_TTL_MS 3600000

#define CHANGE_SET_MAX 128

const char *const mcp_version_names[MCP_NVERSIONS] = {"2025-03-26", "2025-06-18", "2025-11-25",
                                                      "2026-07-28"};

struct mcp {
    struct api *api;
    struct mcp_tools *tools;
    struct mcp_sessions *sessions;
    char **origins; /* lower-cased copies of cfg->origins */
    size_t norigins;
};

/* One POST being answered. */
struct rpc {
    struct mcp *m;
    const struct mcp_req *req;
    enum mcp_version version;
    struct mcp_session sess; /* legacy revisions: the session */
    char change_set[CHANGE_SET_MAX + 1];
    char actor[MCP_ACTOR_MAX + 1];
    uint64_t lsn;   /* the highest log position written */
    struct buf out; /* the answer's body */
    int status;     /* the answer's HTTP status */
};

/* ---------------------------------------------------------------------- */
/* Setup                                                                  */
/* ---------------------------------------------------------------------- */

int mcp_origin_valid(const char *s)
{
    size_t n = strlen(s);
    const char *host, *end = s + n;

    if (n > MCP_ALLOW_ORIGIN_MAX_LEN)
        return 0;
    if (strncasecmp(s, "http://", 7) == 0)
        host = s + 7;
    else if (strncasecmp(s, "https://", 8) == 0)
        host = s + 8;
    else
        return 0;

    const char *p = host;
    if (*p == '[') { /* an IPv6 literal */
        p++;
        while (p < end && *p != ']' && (strchr("0123456789abcdefABCDEF:.", *p) != NULL))
            p++;
        if (p == end || *p != ']' || p == host + 1)
            return 0;
        p++;
    } else {
        while (p < end && (strchr("-.", *p) || (*p >= '0' && *p <= '9') ||
                           ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
            p++;
        if (p == host)
            return 0;
    }
    if (p == end)
        return 1;
    if (*p++ != ':' || p == end || end - p > 5)
        return 0;
    unsigned port = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        port = port * 10 + (unsigned)(*p - '0');
    }
    return port >= 1 && port <= 65535;
}

int mcp_new(struct api *api, const struct mcp_config *cfg, struct mcp **out)
{
    struct mcp *m = calloc(1, sizeof(*m));
    size_t max = cfg->max_sessions ? cfg->max_sessions : MCP_SESSIONS_DEFAULT;

    if (m == NULL)
        return -1;
    m->api = api;
    if (mcp_tools_new(&m->tools) != 0 || mcp_sessions_new(max, &m->sessions) != 0)
        goto fail;
    if (cfg->norigins > 0 && (m->origins = calloc(cfg->norigins, sizeof(char *))) == NULL)
        goto fail;
    for (size_t i = 0; i < cfg->norigins; i++) {
        if (!mcp_origin_valid(cfg->origins[i]) || (m->origins[i] = strdup(cfg->origins[i])) == NULL)
            goto fail;
        m->norigins++;
        for (char *p = m->origins[i]; *p; p++)
            *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
    }
    *out = m;
    return 0;
fail:
    mcp_free(m);
    return -1;
}

void mcp_free(struct mcp *m)
{
    if (m == NULL)
        return;
    mcp_tools_free(m->tools);
    mcp_sessions_free(m->sessions);
    for (size_t i = 0; i < m->norigins; i++)
        free(m->origins[i]);
    free(m->origins);
    free(m);
}

int mcp_is_target(const char *target, size_t len)
{
    size_t n = sizeof(MCP_PATH) - 1;
    return len >= n && memcmp(target, MCP_PATH, n) == 0 && (len == n || target[n] == '?');
}

/* ---------------------------------------------------------------------- */
/* Answers                                                                */
/* ---------------------------------------------------------------------- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 406:
        return "Not Acceptable";
    case 415:
        return "Unsupported Media Type";
    }
    return "Error";
}

static void add_header(struct api_resp *resp, const char *name, const char *value)
{
    char *copy;
    if (resp->nheaders == API_MAX_HEADERS || (copy = strdup(value)) == NULL)
        return;
    resp->headers[resp->nheaders].name = name;
    resp->headers[resp->nheaders].value = copy;
    resp->nheaders++;
}

/* `wrote`: a write was made before memory ran out, so the answer must not
 * claim that nothing changed. */
static void out_of_memory(struct api_resp *resp, int wrote)
{
    api_error(resp, 503, "out_of_memory",
              wrote ? "The server ran out of memory while answering; the writes of the request "
                      "were made. Check them with get_document or get_change_set."
                    : "The server is out of memory; nothing was changed. Retry later.");
}

/* Moves the body built in `rpc` into `resp`. */
static void finish(struct rpc *rpc, struct api_resp *resp)
{
    size_t len = 0, want = rpc->out.len;
    int oom = rpc->out.oom; /* buf_take() forgets it */
    char *body = want > 0 && !oom ? buf_take(&rpc->out, &len) : NULL;

    if (oom || (want > 0 && body == NULL)) {
        buf_free(&rpc->out);
        out_of_memory(resp, rpc->lsn > 0);
        resp->lsn = rpc->lsn; /* and the answer waits for them */
        return;
    }
    buf_free(&rpc->out);
    free(resp->body);
    resp->status = rpc->status;
    resp->reason = reason(rpc->status);
    resp->body = body;
    resp->body_len = body ? len : 0;
    resp->lsn = rpc->lsn;
}

/* Appends a JSON-RPC error response; `id` may be NULL (no id could be
 * read), `data` a JSON text or NULL. */
static void error_json(struct buf *b, const struct json_span *id, int code, const char *msg,
                       const char *data)
{
    buf_puts(b, "{\"jsonrpc\":\"2.0\",");
    if (id != NULL) {
        buf_puts(b, "\"id\":");
        buf_append(b, id->s, id->len);
        buf_puts(b, ",");
    }
    buf_printf(b, "\"error\":{\"code\":%d,\"message\":", code);
    buf_json_string(b, msg, strlen(msg));
    if (data != NULL) {
        buf_puts(b, ",\"data\":");
        buf_puts(b, data);
    }
    buf_puts(b, "}}");
}

/* Answers the whole POST with one JSON-RPC error and `status`. */
static void fail(struct rpc *rpc, int status, const struct json_span *id, int code, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));
static void fail(struct rpc *rpc, int status, const struct json_span *id, int code, const char *fmt,
                 ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rpc->out.len = 0;
    error_json(&rpc->out, id, code, msg, NULL);
    rpc->status = status;
}

/* Appends the response to request `id` with a result made of `fields`
 * (the members, without braces).  2026-07-28 results also say their type
 * and name the server. */
static void result_json(struct rpc *rpc, struct buf *b, const struct json_span *id,
                        const char *fields, size_t len)
{
    buf_puts(b, "{\"jsonrpc\":\"2.0\",\"id\":");
    buf_append(b, id->s, id->len);
    buf_puts(b, ",\"result\":{");
    buf_append(b, fields, len);
    if (rpc->version == MCP_2026_07_28) {
        buf_printf(b,
                   "%s\"resultType\":\"complete\",\"_meta\":{\"io.modelcontextprotocol/"
                   "serverInfo\":{\"name\":\"snapbackd\",\"version\":\"%s\"}}",
                   len > 0 ? "," : "", SB_VERSION_STRING);
    }
    buf_puts(b, "}}");
}

/* ---------------------------------------------------------------------- */
/* Header checks                                                          */
/* ---------------------------------------------------------------------- */

static int is_loopback_origin(const char *s, size_t len)
{
    static const char *const hosts[] = {"localhost", "127.0.0.1", "[::1]"};
    size_t skip = len >= 7 && strncasecmp(s, "http://", 7) == 0    ? 7
                  : len >= 8 && strncasecmp(s, "https://", 8) == 0 ? 8
                                                                   : 0;
    if (skip == 0)
        return 0;
    s += skip;
    len -= skip;
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(hosts[i]);
        if (len < n || strncasecmp(s, hosts[i], n) != 0)
            continue;
        if (len == n)
            return 1;
        if (s[n] != ':' || len == n + 1 || len > n + 6)
            continue;
        size_t j = n + 1;
        while (j < len && s[j] >= '0' && s[j] <= '9')
            j++;
        if (j == len)
            return 1;
    }
    return 0;
}

/* A request without Origin does not come from a browser page; one with an
 * Origin must come from a loopback page or one the operator allowed. */
static int origin_allowed(const struct mcp *m, const struct mcp_req *req)
{
    if (req->origin == NULL)
        return 1;
    if (is_loopback_origin(req->origin, req->origin_len))
        return 1;
    for (size_t i = 0; i < m->norigins; i++) {
        if (strlen(m->origins[i]) == req->origin_len &&
            strncasecmp(m->origins[i], req->origin, req->origin_len) == 0)
            return 1;
    }
    return 0;
}

/* Whether one media range of an Accept header covers application/json. */
static int accepts_json(const char *s, size_t len)
{
    while (len > 0) {
        const char *comma = memchr(s, ',', len);
        size_t item = comma ? (size_t)(comma - s) : len;
        const char *semi = memchr(s, ';', item);
        size_t n = semi ? (size_t)(semi - s) : item, start = 0;
        while (start < n && (s[start] == ' ' || s[start] == '\t'))
            start++;
        while (n > start && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        const char *t = s + start;
        n -= start;
        if ((n == 16 && strncasecmp(t, "application/json", 16) == 0) ||
            (n == 13 && strncasecmp(t, "application/*", 13) == 0) ||
            (n == 3 && memcmp(t, "*/*", 3) == 0))
            return 1;
        if (comma == NULL)
            break;
        len -= item + 1;
        s = comma + 1;
    }
    return 0;
}

static int is_json_type(const char *ct, size_t len)
{
    static const char json[] = "application/json";
    size_t n = sizeof(json) - 1;
    if (ct == NULL || len < n || strncasecmp(ct, json, n) != 0)
        return 0;
    return len == n || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/* The revision a header names; -1 if none of ours. */
static int version_of(const char *s, size_t len)
{
    for (int v = 0; v < MCP_NVERSIONS; v++) {
        if (len == strlen(mcp_version_names[v]) && memcmp(s, mcp_version_names[v], len) == 0)
            return v;
    }
    return -1;
}

static void unsupported_version(struct rpc *rpc, const char *s, size_t len)
{
    struct buf data = {0};
    buf_puts(&data, "{\"supported\":[");
    for (int v = MCP_NVERSIONS - 1; v >= 0; v--)
        buf_printf(&data, "\"%s\"%s", mcp_version_names[v], v ? "," : "");
    buf_puts(&data, "],\"requested\":");
    buf_json_string(&data, s, len);
    buf_puts(&data, "}");
    rpc->out.len = 0;
    error_json(&rpc->out, NULL, UNSUPPORTED_VER,
               "Unsupported protocol version: this server speaks 2026-07-28, 2025-11-25, "
               "2025-06-18 and 2025-03-26",
               data.oom ? NULL : data.data);
    buf_free(&data);
    rpc->status = 400;
}

/* ---------------------------------------------------------------------- */
/* Messages                                                               */
/* ---------------------------------------------------------------------- */

enum kind { REQUEST, NOTIFICATION, RESPONSE, INVALID };

/* One JSON-RPC message: its parsed form and where its parts are. */
struct msg {
    json_t *root;
    struct json_span raw;
    enum kind kind;
    int has_id;
    struct json_span id; /* raw, echoed in the answer */
    const char *method;  /* requests and notifications */
    json_t *params;      /* NULL when absent */
    char why[160];       /* INVALID: what is wrong */
};

static void classify(json_t *root, struct json_span raw, struct msg *m)
{
    memset(m, 0, sizeof(*m));
    m->root = root;
    m->raw = raw;
    m->kind = INVALID;

    json_t *id = json_object_get(root, "id");
    if (id != NULL && (json_is_string(id) || json_is_integer(id)))
        m->has_id = json_span_member(raw, "id", &m->id);
    if (!json_is_object(root)) {
        snprintf(m->why, sizeof(m->why), "a JSON-RPC message is a JSON object");
        return;
    }
    json_t *version = json_object_get(root, "jsonrpc");
    if (!json_is_string(version) || strcmp(json_string_value(version), "2.0") != 0) {
        snprintf(m->why, sizeof(m->why), "the member \"jsonrpc\" must be \"2.0\"");
        return;
    }
    if (id != NULL && !m->has_id) {
        snprintf(m->why, sizeof(m->why), "an id must be a string or an integer");
        return;
    }
    json_t *method = json_object_get(root, "method");
    if (method == NULL) {
        int result = json_object_get(root, "result") != NULL;
        int error = json_object_get(root, "error") != NULL;
        if (m->has_id && result != error)
            m->kind = RESPONSE;
        else
            snprintf(m->why, sizeof(m->why), "the message has no method");
        return;
    }
    if (!json_is_string(method)) {
        snprintf(m->why, sizeof(m->why), "the method must be a string");
        return;
    }
    m->method = json_string_value(method);
    m->params = json_object_get(root, "params");
    m->kind = m->has_id ? REQUEST : NOTIFICATION;
}

/* Whether the parameters are absent or an object, as MCP requires; else
 * appends the error response. */
static int params_ok(struct rpc *rpc, struct buf *b, const struct msg *m)
{
    if (m->params == NULL || json_is_object(m->params))
        return 1;
    error_json(b, &m->id, INVALID_PARAMS, "Invalid params: params must be a JSON object", NULL);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Methods                                                                */
/* ---------------------------------------------------------------------- */

static void instructions(struct rpc *rpc, struct buf *b)
{
    struct buf t = {0};
    buf_puts(&t, "snapbackd keeps JSON documents in collections and keeps the version every "
                 "write replaces, so any write can be undone. Each write result names the change "
                 "set it was recorded under, the call that undoes that write alone (undo) and the "
                 "call that undoes the whole change set (undo_change_set). ");
    if (rpc->version < MCP_2026_07_28)
        buf_printf(&t,
                   "Writes in this session are recorded under change set %s unless a tool is "
                   "given another change_set: rollback_change_set with change_set %s undoes them "
                   "all at once.",
                   rpc->change_set, rpc->change_set);
    else
        buf_puts(&t, "Pass the same change_set to every write of one task (by default writes "
                     "go to a change set derived from the client name) so that "
                     "rollback_change_set can undo the task at once.");
    buf_puts(b, "\"instructions\":");
    buf_json_string(b, t.data ? t.data : "", t.len);
    b->oom |= t.oom;
    buf_free(&t);
}

static void tools_list(struct rpc *rpc, struct buf *b, const struct msg *m)
{
    struct buf fields = {0};
    if (json_object_get(m->params, "cursor") != NULL) {
        error_json(b, &m->id, INVALID_PARAMS,
                   "Invalid params: this server lists every tool at once and issued no cursor",
                   NULL);
        return;
    }
    buf_puts(&fields, "\"tools\":");
    mcp_tools_list(rpc->m->tools, rpc->version, &fields);
    if (rpc->version == MCP_2026_07_28)
        buf_printf(&fields, ",\"ttlMs\":%d,\"cacheScope\":\"public\"", LIST_TTL_MS);
    result_json(rpc, b, &m->id, fields.data ? fields.data : "", fields.len);
    b->oom |= fields.oom;
    buf_free(&fields);
}

static void discover(struct rpc *rpc, struct buf *b, const struct msg *m)
{
    struct buf fields = {0};
    buf_puts(&fields, "\"supportedVersions\":[");
    for (int v = MCP_NVERSIONS - 1; v >= 0; v--)
        buf_printf(&fields, "\"%s\"%s", mcp_version_names[v], v ? "," : "");
    buf_puts(&fields, "],\"capabilities\":{\"tools\":{}},");
    instructions(rpc, &fields);
    buf_printf(&fields, ",\"ttlMs\":%d,\"cacheScope\":\"public\"", LIST_TTL_MS);
    result_json(rpc, b, &m->id, fields.data, fields.len);
    b->oom |= fields.oom;
    buf_free(&fields);
}

/* The result of a tool that ran: its text, and its structured form where
 * the revision has one.  A failure is a result too, with isError. */
static void tool_result(struct rpc *rpc, struct buf *b, const struct msg *m, const struct buf *text,
                        int structured, int error)
{
    struct buf fields = {0};
    buf_puts(&fields, "\"content\":[{\"type\":\"text\",\"text\":");
    buf_json_string(&fields, text->data ? text->data : "", text->len);
    buf_puts(&fields, "}]");
    if (structured && rpc->version >= MCP_2025_06_18) {
        buf_puts(&fields, ",\"structuredContent\":");
        buf_append(&fields, text->data, text->len);
    }
    if (error)
        buf_puts(&fields, ",\"isError\":true");
    result_json(rpc, b, &m->id, fields.data, fields.len);
    b->oom |= fields.oom;
    buf_free(&fields);
}

static void tools_call(struct rpc *rpc, struct buf *b, const struct msg *m)
{
    json_t *name = json_object_get(m->params, "name");
    json_t *args = json_object_get(m->params, "arguments");
    json_t *empty = NULL;
    struct json_span params = {NULL, 0};
    struct mcp_call call = {.api = rpc->m->api, .version = rpc->version};

    if (!json_is_string(name)) {
        error_json(b, &m->id, INVALID_PARAMS, "Invalid params: tools/call needs a tool name", NULL);
        return;
    }
    if (args != NULL && !json_is_object(args)) {
        error_json(b, &m->id, INVALID_PARAMS,
                   "Invalid params: the arguments of a tool call are a JSON object", NULL);
        return;
    }
    if (args == NULL && (args = empty = json_object()) == NULL) {
        b->oom = 1;
        return;
    }
    call.args = args;
    if (json_span_member(m->raw, "params", &params))
        json_span_member(params, "arguments", &call.raw);
    call.change_set = rpc->change_set;
    call.actor = rpc->actor;

    const char *tool = json_string_value(name);
    size_t tool_len = json_string_length(name);
    char msg[600];
    switch (mcp_tools_call(rpc->m->tools, &call, tool, tool_len)) {
    case MCP_TOOL_DONE:
        tool_result(rpc, b, m, &call.out, 1, 0);
        break;
    case MCP_TOOL_FAILED:
        tool_result(rpc, b, m, &call.out, 0, 1);
        break;
    case MCP_TOOL_BAD_ARGS:
        /* 2025-11-25 made input validation a tool error the model can
         * correct; before, it was a protocol error. */
        snprintf(msg, sizeof(msg), "Invalid arguments for tool %.64s: %.400s.", tool,
                 call.out.data ? call.out.data : "");
        if (rpc->version >= MCP_2025_11_25) {
            struct buf text = {0};
            buf_puts(&text, msg);
            buf_puts(&text, " Correct the arguments as the tool's input schema says and call "
                            "again.");
            tool_result(rpc, b, m, &text, 0, 1);
            b->oom |= text.oom;
            buf_free(&text);
        } else {
            error_json(b, &m->id, INVALID_PARAMS, msg, NULL);
        }
        break;
    case MCP_TOOL_UNKNOWN:
        snprintf(msg, sizeof(msg), "Unknown tool: %.*s; tools/list names the tools",
                 (int)(tool_len > 64 ? 64 : tool_len), tool);
        error_json(b, &m->id, INVALID_PARAMS, msg, NULL);
        break;
    case MCP_TOOL_NOMEM:
        b->oom = 1;
        break;
    }
    if (call.lsn > rpc->lsn)
        rpc->lsn = call.lsn;
    buf_free(&call.out);
    json_decref(empty);
}

/* Answers one request of an established session (or a stateless one),
 * appending its response to `b`.  Returns 0, or -1 for an unknown method. */
static int dispatch(struct rpc *rpc, struct buf *b, const struct msg *m)
{
    if (!params_ok(rpc, b, m))
        return 0;
    if (strcmp(m->method, "tools/list") == 0)
        tools_list(rpc, b, m);
    else if (strcmp(m->method, "tools/call") == 0)
        tools_call(rpc, b, m);
    else if (strcmp(m->method, "ping") == 0 && rpc->version < MCP_2026_07_28)
        result_json(rpc, b, &m->id, "", 0);
    else if (strcmp(m->method, "server/discover") == 0 && rpc->version == MCP_2026_07_28)
        discover(rpc, b, m);
    else {
        char msg[128];
        snprintf(msg, sizeof(msg), "Method not found: %.64s", m->method);
        error_json(b, &m->id, METHOD_NOT_FOUND, msg, NULL);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Revisions with sessions (2025-03-26 to 2025-11-25)                     */
/* ---------------------------------------------------------------------- */

/* Copies a client's name as an actor: printable ASCII, at most 128 bytes
 * (other bytes become '?'), as the REST API's X-Actor requires. */
static void set_actor(struct rpc *rpc, const json_t *client_info)
{
    const json_t *name = json_object_get(client_info, "name");
    const char *s = json_string_value(name);
    size_t len = json_string_length(name), n = 0;

    for (size_t i = 0; s != NULL && i < len && n < MCP_ACTOR_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];
        rpc->actor[n++] = ch >= 0x20 && ch <= 0x7e ? (char)ch : '?';
    }
    rpc->actor[n] = '\0';
}

static void initialize(struct rpc *rpc, const struct msg *m)
{
    json_t *requested = json_object_get(m->params, "protocolVersion");
    json_t *client = json_object_get(m->params, "clientInfo");

    if (!json_is_string(requested) || !json_is_object(json_object_get(m->params, "capabilities")) ||
        !json_is_string(json_object_get(client, "name")) ||
        !json_is_string(json_object_get(client, "version"))) {
        rpc->out.len = 0;
        error_json(&rpc->out, &m->id, INVALID_PARAMS,
                   "Invalid params: initialize needs protocolVersion, capabilities and "
                   "clientInfo with name and version",
                   NULL);
        rpc->status = 200;
        return;
    }

    /* A revision we speak is answered in kind; any other (older, or the
     * stateless one, which has no initialize) gets our latest with one. */
    int v = version_of(json_string_value(requested), json_string_length(requested));
    rpc->version = v >= 0 && v < MCP_2026_07_28 ? (enum mcp_version)v : MCP_2025_11_25;
    set_actor(rpc, client);
    if (mcp_sessions_open(rpc->m->sessions, rpc->version, rpc->actor, &rpc->sess) != 0) {
        fail(rpc, 200, &m->id, INTERNAL_ERROR, "The server could not open a session; retry.");
        return;
    }
    snprintf(rpc->change_set, sizeof(rpc->change_set), "%s", rpc->sess.id);

    struct buf fields = {0};
    buf_printf(&fields,
               "\"protocolVersion\":\"%s\",\"capabilities\":{\"tools\":{\"listChanged\":false}},"
               "\"serverInfo\":{\"name\":\"snapbackd\",\"version\":\"%s\"},",
               mcp_version_names[rpc->version], SB_VERSION_STRING);
    instructions(rpc, &fields);
    rpc->out.len = 0;
    result_json(rpc, &rpc->out, &m->id, fields.data, fields.len);
    rpc->out.oom |= fields.oom;
    buf_free(&fields);
    rpc->status = 200;
}

/* Answers one message of a session; returns its kind (INVALID after
 * appending an error response). */
static enum kind legacy_message(struct rpc *rpc, struct buf *b, json_t *root, struct json_span raw,
                                int in_batch)
{
    struct msg m;
    classify(root, raw, &m);
    if (m.kind == INVALID) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Invalid Request: %s", m.why);
        error_json(b, m.has_id ? &m.id : NULL, INVALID_REQUEST, msg, NULL);
    } else if (m.kind == REQUEST && strcmp(m.method, "initialize") == 0) {
        error_json(b, &m.id, INVALID_REQUEST,
                   in_batch ? "Invalid Request: initialize must not be part of a batch"
                            : "Invalid Request: this session is already initialized; send "
                              "initialize without Mcp-Session-Id to open a new one",
                   NULL);
    } else if (m.kind == REQUEST) {
        dispatch(rpc, b, &m);
    }
    return m.kind;
}

static void legacy_batch(struct rpc *rpc, json_t *root, struct json_span raw)
{
    size_t i, answered = 0, pos = 0;
    json_t *el;

    if (json_array_size(root) == 0) {
        fail(rpc, 400, NULL, INVALID_REQUEST, "Invalid Request: an empty batch");
        return;
    }
    buf_puts(&rpc->out, "[");
    json_array_foreach(root, i, el)
    {
        struct json_span el_raw = {NULL, 0};
        size_t mark = rpc->out.len;
        if (answered > 0)
            buf_puts(&rpc->out, ",");
        json_span_next(raw, &pos, &el_raw);
        enum kind k = legacy_message(rpc, &rpc->out, el, el_raw, 1);
        if (k == REQUEST || k == INVALID)
            answered++;
        else
            rpc->out.len = mark; /* no response: drop the comma */
    }
    buf_puts(&rpc->out, "]");
    if (answered == 0) { /* only notifications and responses */
        rpc->out.len = 0;
        rpc->status = 202;
    } else {
        rpc->status = 200;
    }
}

static void legacy(struct rpc *rpc, json_t *root, struct json_span raw, int header_version)
{
    const struct mcp_req *req = rpc->req;
    json_t *method = json_object_get(root, "method");

    if (json_is_string(method) && strcmp(json_string_value(method), "initialize") == 0 &&
        json_object_get(root, "id") != NULL) {
        struct msg m;
        classify(root, raw, &m);
        if (m.kind != REQUEST)
            fail(rpc, 400, NULL, INVALID_REQUEST, "Invalid Request: %s", m.why);
        else if (req->session_id != NULL)
            fail(rpc, 400, &m.id, INVALID_REQUEST,
                 "Invalid Request: initialize opens a new session; send it without "
                 "Mcp-Session-Id");
        else if (params_ok(rpc, &rpc->out, &m))
            initialize(rpc, &m);
        else
            rpc->status = 200;
        return;
    }

    if (req->session_id == NULL) {
        fail(rpc, 400, NULL, INVALID_REQUEST,
             "Bad Request: no Mcp-Session-Id header. Send initialize first: its answer carries "
             "the session id to send with every later request (or use protocol version "
             "2026-07-28, which has no sessions)");
        return;
    }
    if (!mcp_sessions_find(rpc->m->sessions, req->session_id, req->session_id_len, &rpc->sess)) {
        fail(rpc, 404, NULL, INVALID_REQUEST,
             "Session not found: it has ended or was never opened; send initialize to open a "
             "new one");
        return;
    }
    rpc->version = (enum mcp_version)rpc->sess.version;
    if (header_version >= 0 && header_version != (int)rpc->version) {
        fail(rpc, 400, NULL, INVALID_REQUEST,
             "Bad Request: MCP-Protocol-Version %s differs from the version %s negotiated for "
             "this session",
             mcp_version_names[header_version], mcp_version_names[rpc->version]);
        return;
    }
    snprintf(rpc->change_set, sizeof(rpc->change_set), "%s", rpc->sess.id);
    snprintf(rpc->actor, sizeof(rpc->actor), "%s", rpc->sess.actor);

    if (json_is_array(root)) {
        if (rpc->version == MCP_2025_03_26)
            legacy_batch(rpc, root, raw);
        else
            fail(rpc, 400, NULL, INVALID_REQUEST,
                 "Invalid Request: revision %s has no JSON-RPC batches; send one message per "
                 "POST",
                 mcp_version_names[rpc->version]);
        return;
    }
    enum kind k = legacy_message(rpc, &rpc->out, root, raw, 0);
    rpc->status = k == REQUEST ? 200 : k == INVALID ? 400 : 202;
    if (k == NOTIFICATION || k == RESPONSE)
        rpc->out.len = 0;
}

/* ---------------------------------------------------------------------- */
/* The stateless revision (2026-07-28)                                    */
/* ---------------------------------------------------------------------- */

/* Decodes the "=?base64?...?=" form of a header value into `out`;
 * returns 0 if the value is not in that form or does not decode. */
static int base64_header(const char *s, size_t len, struct buf *out)
{
    static const char pre[] = "=?base64?", post[] = "?=";
    const size_t np = sizeof(pre) - 1, nq = sizeof(post) - 1;
    unsigned acc = 0;
    int bits = 0;

    if (len < np + nq || memcmp(s, pre, np) != 0 || memcmp(s + len - nq, post, nq) != 0)
        return 0;
    for (size_t i = np; i < len - nq; i++) {
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *at = s[i] ? strchr(alphabet, s[i]) : NULL;
        if (s[i] == '=')
            break;
        if (at == NULL)
            return 0;
        acc = (acc << 6) | (unsigned)(at - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            char byte = (char)((acc >> bits) & 0xff);
            buf_append(out, &byte, 1);
        }
    }
    return !out->oom;
}

/* Compares a mirrored header with the body's value (decoding the base64
 * form Mcp-Name may take).  Returns 1 if they agree. */
static int header_matches(const char *h, size_t h_len, const json_t *body_value)
{
    struct buf decoded = {0};
    const char *v = json_string_value(body_value);
    size_t v_len = json_string_length(body_value);
    int same;

    if (v == NULL)
        return 0;
    if (base64_header(h, h_len, &decoded)) {
        h = decoded.data ? decoded.data : "";
        h_len = decoded.len;
    }
    same = h_len == v_len && memcmp(h, v, v_len) == 0;
    buf_free(&decoded);
    return same;
}

/* The change set of a stateless client that names none: "mcp-client-",
 * its name reduced to [A-Za-z0-9._-] (at most 40), "-", and 16 hex digits
 * of an FNV-1a hash of its name and version; "mcp-client-anonymous"
 * without a name.  The same client (name and version) always gets the
 * same change set. */
static void derive_change_set(struct rpc *rpc, const json_t *client_info)
{
    const char *name = json_string_value(json_object_get(client_info, "name"));
    const char *version = json_string_value(json_object_get(client_info, "version"));
    size_t name_len = json_string_length(json_object_get(client_info, "name"));
    size_t version_len = json_string_length(json_object_get(client_info, "version"));
    uint64_t h = 1469598103934665603ull;
    char *p = rpc->change_set;

    if (name == NULL || name_len == 0) {
        snprintf(rpc->change_set, sizeof(rpc->change_set), "mcp-client-anonymous");
        return;
    }
    for (size_t i = 0; i < name_len; i++)
        h = (h ^ (unsigned char)name[i]) * 1099511628211ull;
    h = (h ^ 0) * 1099511628211ull;
    for (size_t i = 0; version != NULL && i < version_len; i++)
        h = (h ^ (unsigned char)version[i]) * 1099511628211ull;

    p += sprintf(p, "mcp-client-");
    for (size_t i = 0; i < name_len && i < 40; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        *p++ = ok ? ch : '_';
    }
    sprintf(p, "-%016llx", (unsigned long long)h);
}

/* Checks the request metadata of a 2026-07-28 request; answers and
 * returns 0 when it is wrong. */
static int modern_checks(struct rpc *rpc, const struct msg *m)
{
    const struct mcp_req *req = rpc->req;
    json_t *meta = json_object_get(m->params, "_meta");
    json_t *version = json_object_get(meta, "io.modelcontextprotocol/protocolVersion");

    if (req->mcp_method == NULL) {
        fail(rpc, 400, &m->id, HEADER_MISMATCH,
             "Header mismatch: the Mcp-Method header is missing");
        return 0;
    }
    if (strlen(m->method) != req->mcp_method_len ||
        memcmp(m->method, req->mcp_method, req->mcp_method_len) != 0) {
        fail(rpc, 400, &m->id, HEADER_MISMATCH,
             "Header mismatch: Mcp-Method header value '%.*s' does not match body value '%.64s'",
             (int)(req->mcp_method_len > 64 ? 64 : req->mcp_method_len), req->mcp_method,
             m->method);
        return 0;
    }
    if (m->params != NULL && !json_is_object(m->params)) {
        fail(rpc, 400, &m->id, INVALID_PARAMS, "Invalid params: params must be a JSON object");
        return 0;
    }
    if (!json_is_string(version) ||
        !json_is_object(json_object_get(meta, "io.modelcontextprotocol/clientCapabilities"))) {
        fail(rpc, 400, &m->id, INVALID_PARAMS,
             "Invalid params: params._meta must carry io.modelcontextprotocol/protocolVersion "
             "and io.modelcontextprotocol/clientCapabilities");
        return 0;
    }
    if (strcmp(json_string_value(version), mcp_version_names[MCP_2026_07_28]) != 0) {
        fail(rpc, 400, &m->id, HEADER_MISMATCH,
             "Header mismatch: MCP-Protocol-Version header value '2026-07-28' does not match "
             "body value '%.32s'",
             json_string_value(version));
        return 0;
    }

    /* Mcp-Name mirrors the tool, prompt or resource a request names. */
    const char *named =
        strcmp(m->method, "tools/call") == 0 || strcmp(m->method, "prompts/get") == 0 ? "name"
        : strcmp(m->method, "resources/read") == 0                                    ? "uri"
                                                                                      : NULL;
    if (named == NULL)
        return 1;
    if (req->mcp_name == NULL) {
        fail(rpc, 400, &m->id, HEADER_MISMATCH, "Header mismatch: the Mcp-Name header is missing");
        return 0;
    }
    if (!header_matches(req->mcp_name, req->mcp_name_len, json_object_get(m->params, named))) {
        fail(rpc, 400, &m->id, HEADER_MISMATCH,
             "Header mismatch: Mcp-Name header value '%.*s' does not match the body's params.%s",
             (int)(req->mcp_name_len > 64 ? 64 : req->mcp_name_len), req->mcp_name, named);
        return 0;
    }
    return 1;
}

static void modern(struct rpc *rpc, json_t *root, struct json_span raw)
{
    struct msg m;

    rpc->version = MCP_2026_07_28;
    if (json_is_array(root)) {
        fail(rpc, 400, NULL, INVALID_REQUEST,
             "Invalid Request: revision 2026-07-28 has no JSON-RPC batches; send one message "
             "per POST");
        return;
    }
    classify(root, raw, &m);
    if (m.kind == INVALID) {
        fail(rpc, 400, m.has_id ? &m.id : NULL, INVALID_REQUEST, "Invalid Request: %s", m.why);
        return;
    }
    if (m.kind == RESPONSE) {
        fail(rpc, 400, NULL, INVALID_REQUEST,
             "Invalid Request: a client sends no JSON-RPC responses in revision 2026-07-28");
        return;
    }
    if (m.kind == NOTIFICATION) {
        rpc->status = 202;
        return;
    }
    if (!modern_checks(rpc, &m))
        return;

    json_t *client =
        json_object_get(json_object_get(m.params, "_meta"), "io.modelcontextprotocol/clientInfo");
    set_actor(rpc, client);
    derive_change_set(rpc, client);
    rpc->status = dispatch(rpc, &rpc->out, &m) == 0 ? 200 : 404;
}

/* ---------------------------------------------------------------------- */
/* HTTP methods                                                           */
/* ---------------------------------------------------------------------- */

static void post(struct rpc *rpc)
{
    const struct mcp_req *req = rpc->req;
    int header_version = -1;
    json_error_t err;

    if (req->protocol_version != NULL) {
        header_version = version_of(req->protocol_version, req->protocol_version_len);
        if (header_version < 0) {
            unsupported_version(rpc, req->protocol_version, req->protocol_version_len);
            return;
        }
    }
    if (req->accept != NULL && !accepts_json(req->accept, req->accept_len)) {
        fail(rpc, 406, NULL, INVALID_REQUEST,
             "Not Acceptable: this server answers with application/json only; the Accept "
             "header must allow it");
        return;
    }
    if (!is_json_type(req->content_type, req->content_type_len)) {
        fail(rpc, 415, NULL, INVALID_REQUEST,
             "Unsupported Media Type: send the JSON-RPC message with Content-Type: "
             "application/json");
        return;
    }

    json_t *root = json_loadb(req->body ? req->body : "", req->body ? req->body_len : 0,
                              JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &err);
    if (root == NULL) {
        fail(rpc, 400, NULL, PARSE_ERROR, "Parse error: %s at line %d, column %d", err.text,
             err.line, err.column);
        return;
    }
    struct json_span raw = json_span_of(req->body, req->body_len);
    if (header_version == MCP_2026_07_28)
        modern(rpc, root, raw);
    else
        legacy(rpc, root, raw, header_version);
    json_decref(root);
}

static void delete_session(struct rpc *rpc)
{
    const struct mcp_req *req = rpc->req;

    if (req->session_id == NULL) {
        fail(rpc, 400, NULL, INVALID_REQUEST,
             "Bad Request: DELETE ends the session named by the Mcp-Session-Id header, which "
             "is missing");
        return;
    }
    if (!mcp_sessions_close(rpc->m->sessions, req->session_id, req->session_id_len)) {
        fail(rpc, 404, NULL, INVALID_REQUEST, "Session not found: it has ended already");
        return;
    }
    rpc->status = 204;
}

static int method_is(const struct mcp_req *req, const char *m)
{
    return req->method_len == strlen(m) && memcmp(req->method, m, req->method_len) == 0;
}

void mcp_handle(struct mcp *m, const struct mcp_req *req, struct api_resp *resp)
{
    struct rpc rpc = {.m = m, .req = req, .version = MCP_2025_03_26, .status = 500};

    memset(resp, 0, sizeof(*resp));
    if (!origin_allowed(m, req)) {
        fail(&rpc, 403, NULL, INVALID_REQUEST,
             "Forbidden: Origin %.*s is not allowed; start snapbackd with --allow-origin to "
             "allow a page of that origin",
             (int)(req->origin_len > 128 ? 128 : req->origin_len), req->origin);
    } else if (method_is(req, "POST")) {
        post(&rpc);
    } else if (method_is(req, "DELETE")) {
        delete_session(&rpc);
    } else {
        /* No JSON-RPC here: GET would open an event stream, which this
         * server does not offer; the REST API's error says so. */
        api_error(resp, 405, "method_not_allowed",
                  "The MCP endpoint takes POST (JSON-RPC messages) and DELETE (end a session); "
                  "it offers no event stream.");
        add_header(resp, "allow", "POST, DELETE");
        return;
    }
    finish(&rpc, resp);
    if (resp->status == 200 && rpc.sess.id[0] != '\0' && req->session_id == NULL)
        add_header(resp, "mcp-session-id", rpc.sess.id);
}
