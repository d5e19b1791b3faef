/*
 * mcp.h - snapbackd's MCP endpoint, POST /_mcp: the Model Context Protocol
 * over its Streamable HTTP transport, answering with application/json only.
 *
 * Like api.h, nothing here knows about the HTTP library: a request arrives
 * as plain bytes (struct mcp_req) and leaves as a struct api_resp, whose
 * `lsn` the HTTP layer waits for exactly as for a REST write.  Every tool
 * is carried out by REST requests made to the same struct api through
 * api_handle(), so that one implementation holds every rule of the store.
 *
 * Revisions served: 2026-07-28 (stateless: each request carries its
 * version and client in params._meta, and the Mcp-Method and Mcp-Name
 * headers, which must agree with the body) and 2025-11-25, 2025-06-18,
 * 2025-03-26 (an initialize handshake that opens a session, named by the
 * Mcp-Session-Id header).  docs/mcp.md describes the endpoint for clients.
 *
 * Threads: mcp_handle() may be called from many threads at once, each
 * registered with sb_thread_register(), outside any read section.
 */
#ifndef SNAPBACKD_MCP_H
#define SNAPBACKD_MCP_H

#include <stddef.h>

#include "api.h"

#define MCP_PATH                 "/_mcp"
#define MCP_SESSIONS_DEFAULT     10000
#define MCP_ALLOW_ORIGIN_MAX_LEN 255

struct mcp_config {
    /* Origins allowed besides loopback ones (http or https with host
     * localhost, 127.0.0.1 or [::1], on any port), each as
     * scheme://host[:port]; borrowed, must outlive the endpoint. */
    const char *const *origins;
    size_t norigins;
    size_t max_sessions; /* 0: MCP_SESSIONS_DEFAULT */
};

struct mcp;

/* A request to MCP_PATH, as the HTTP layer received it.  A field is NULL
 * when its header is absent; nothing is NUL-terminated. */
struct mcp_req {
    const char *method;
    size_t method_len;
    const char *origin;
    size_t origin_len;
    const char *accept;
    size_t accept_len;
    const char *content_type;
    size_t content_type_len;
    const char *protocol_version; /* MCP-Protocol-Version */
    size_t protocol_version_len;
    const char *session_id; /* Mcp-Session-Id */
    size_t session_id_len;
    const char *mcp_method; /* Mcp-Method */
    size_t mcp_method_len;
    const char *mcp_name; /* Mcp-Name */
    size_t mcp_name_len;
    const char *body; /* NULL when the request had no body */
    size_t body_len;
};

/*
 * Creates the endpoint over `api` (borrowed; must outlive it).  Returns 0,
 * or -1 when out of memory or when an entry of cfg->origins is not an
 * origin (mcp_origin_valid()).
 */
int mcp_new(struct api *api, const struct mcp_config *cfg, struct mcp **out);

/* Frees the endpoint and ends its sessions; `m` may be NULL.  No call to
 * mcp_handle() may be running. */
void mcp_free(struct mcp *m);

/* Returns 1 if the request target (path and optional query) names the MCP
 * endpoint. */
int mcp_is_target(const char *target, size_t len);

/* Returns 1 if `s` is an origin --allow-origin accepts: http:// or
 * https://, a host, an optional :port, nothing after. */
int mcp_origin_valid(const char *s);

/* Handles one request; always fills `resp` (free it with api_resp_free()).
 * A tool call that wrote sets resp->lsn to the highest log position of its
 * writes: the answer must wait for it as for a REST write. */
void mcp_handle(struct mcp *m, const struct mcp_req *req, struct api_resp *resp);

#endif /* SNAPBACKD_MCP_H */
