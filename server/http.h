/*
 * http.h - snapbackd's socket layer: h2o 2.2.5 with its own event loop,
 * HTTP/1.1 with keep-alive, one loop and one SO_REUSEPORT listener per
 * worker thread.  Every request is turned into a struct api_req, answered
 * by api_handle() on the worker thread, and sent back with its length.
 */
#ifndef SNAPBACKD_HTTP_H
#define SNAPBACKD_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "api.h"
#include "mcp.h"

struct http_config {
    const struct sockaddr *addr; /* where to listen; copied */
    socklen_t addr_len;
    const char *addr_text;  /* `addr` as ADDR:PORT, for log lines; copied */
    unsigned threads;       /* worker threads, at least 1 */
    size_t max_body;        /* largest request body; above it, 413 */
    const char *access_log; /* file to append one line per request to, or NULL */
    struct mcp *mcp;        /* serves MCP_PATH; borrowed, outlives the server; NULL: none */
};

struct http_server;

/*
 * Opens the access log, binds one listening socket per worker and starts
 * the workers, each of which registers itself with sb_thread_register().
 * `api` is borrowed and must outlive the server.  Returns 0 and sets *out,
 * or -1 after logging why (address in use, access log not writable, out of
 * memory); then nothing is left running.  Call from the main thread, with
 * SIGINT and SIGTERM blocked so that the workers inherit the mask.
 */
int http_server_start(const struct http_config *cfg, struct api *api, struct http_server **out);

/*
 * Stops the server and frees it: every worker closes its listener at once,
 * lets requests in progress finish, closes idle keep-alive connections, and
 * after about two seconds closes whatever is left.  Returns when every worker
 * has exited; then no thread calls into `api` any more.  Returns the number
 * of connections that had to be cut (0 when all ended cleanly).  Call from
 * the thread that called http_server_start(); `srv` may be NULL.
 */
size_t http_server_stop(struct http_server *srv);

#endif /* SNAPBACKD_HTTP_H */
