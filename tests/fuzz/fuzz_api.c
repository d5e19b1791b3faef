/*
 * fuzz_api.c - libFuzzer harness over snapbackd's request handling below
 * the socket: routing, percent-decoding, query and header parsing, JSON
 * validation and the handlers, on a real store.
 *
 * Input layout: METHOD '\n' TARGET '\n' CONTENT-TYPE '\n' IF-MATCH '\n'
 * [HEADER '\n']... BODY.  A missing field is absent from the request (a
 * missing body means "no body at all", which the rollback endpoint treats
 * specially).  The optional HEADER lines, "X-Change-Set: V", "X-Actor: V"
 * or "Idempotency-Key: V", set those headers; the first line that is none
 * of them starts the body, so inputs written before they existed keep
 * their meaning.
 *
 * An input that starts with "MCP\n" goes to the MCP endpoint instead:
 * METHOD '\n' MCP-PROTOCOL-VERSION '\n' MCP-SESSION-ID '\n' MCP-METHOD
 * '\n' MCP-NAME '\n' ORIGIN '\n' BODY, an empty field being an absent
 * header.  Its tools reach the same store through the REST handlers.
 */
#include "api.h"
#include "mcp.h"

#include <stdlib.h>
#include <string.h>

static struct api *api;
static struct mcp *mcp;
static unsigned long runs;

/* A fresh store now and then keeps a long run's memory bounded. */
#define RUNS_PER_STORE 20000

static void api_reset(void)
{
    struct mcp_config mcfg = {0};

    mcp_free(mcp);
    if (api != NULL)
        api_free(api);
    struct api_config cfg = {.history = 4,
                             .max_body = 1 << 16,
                             .compact_ratio = 2,
                             .max_change_sets = 64};
    cfg.keys = calloc(1, sizeof(*cfg.keys));
    if (cfg.keys == NULL)
        abort();
    strcpy(cfg.keys[0].collection, "users");
    cfg.keys[0].field = strdup("email");
    cfg.nkeys = 1;
    if (cfg.keys[0].field == NULL || api_new(&cfg, &api) != SB_OK ||
        mcp_new(api, &mcfg, &mcp) != 0)
        abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    sb_thread_register();
    api_reset();
    return 0;
}

/* Cuts the next '\n'-terminated field; NULL when there is none. */
static const char *field(const char **p, const char *end, size_t *len)
{
    if (*p == NULL || *p >= end)
        return NULL;
    const char *start = *p;
    const char *nl = memchr(start, '\n', (size_t)(end - start));
    *len = nl ? (size_t)(nl - start) : (size_t)(end - start);
    *p = nl ? nl + 1 : NULL;
    return start;
}

/* Takes "PREFIXVALUE" as the header that `prefix` names; 0 if it is not. */
static int header_line(const char *line, size_t len, const char *prefix,
                       const char **value, size_t *value_len)
{
    size_t n = strlen(prefix);
    if (len < n || memcmp(line, prefix, n) != 0)
        return 0;
    *value = line + n;
    *value_len = len - n;
    return 1;
}

/* Reads the optional header lines that follow IF-MATCH. */
static void headers(const char **p, const char *end, struct api_req *req)
{
    for (;;) {
        const char *rest = *p;
        size_t len;
        const char *line = field(&rest, end, &len);
        if (line == NULL)
            return;
        if (!header_line(line, len, "X-Change-Set: ", &req->change_set,
                         &req->change_set_len) &&
            !header_line(line, len, "X-Actor: ", &req->actor,
                         &req->actor_len) &&
            !header_line(line, len, "Idempotency-Key: ", &req->idempotency_key,
                         &req->idempotency_key_len))
            return;
        *p = rest;
    }
}

/* As field(), but an empty field is absent too (a header not sent). */
static const char *header(const char **p, const char *end, size_t *len)
{
    const char *s = field(p, end, len);
    return s != NULL && *len > 0 ? s : NULL;
}

/* Every answer has a status, and every error a JSON body. */
static void check(const struct api_resp *resp)
{
    if (resp->status < 200 || resp->status > 599 ||
        (resp->status >= 400 && (resp->body_len == 0 || resp->body[0] != '{')))
        abort();
}

static void fuzz_mcp(const char *p, const char *end)
{
    struct mcp_req req = {0};
    struct api_resp resp;

    req.method = field(&p, end, &req.method_len);
    if (req.method == NULL)
        return;
    req.protocol_version = header(&p, end, &req.protocol_version_len);
    req.session_id = header(&p, end, &req.session_id_len);
    req.mcp_method = header(&p, end, &req.mcp_method_len);
    req.mcp_name = header(&p, end, &req.mcp_name_len);
    req.origin = header(&p, end, &req.origin_len);
    req.content_type = "application/json";
    req.content_type_len = strlen(req.content_type);
    if (p != NULL) {
        req.body = p;
        req.body_len = (size_t)(end - p);
    }
    mcp_handle(mcp, &req, &resp);
    check(&resp);
    /* A 200 is one JSON-RPC response or a batch of them. */
    if (resp.status == 200 &&
        (resp.body_len == 0 || (resp.body[0] != '{' && resp.body[0] != '[')))
        abort();
    api_resp_free(&resp);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct api_req req = {0};

    if (size >= 4 && memcmp(p, "MCP\n", 4) == 0) {
        fuzz_mcp(p + 4, end);
        if (++runs % RUNS_PER_STORE == 0)
            api_reset();
        return 0;
    }

    req.method = field(&p, end, &req.method_len);
    req.target = field(&p, end, &req.target_len);
    if (req.method == NULL || req.target == NULL)
        return 0;
    req.content_type = field(&p, end, &req.content_type_len);
    req.if_match = field(&p, end, &req.if_match_len);
    headers(&p, end, &req);
    if (p != NULL) {
        req.body = p;
        req.body_len = (size_t)(end - p);
    }

    struct api_resp resp;
    api_handle(api, &req, &resp);
    check(&resp);
    api_resp_free(&resp);

    if (++runs % RUNS_PER_STORE == 0)
        api_reset();
    return 0;
}
