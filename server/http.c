/*
 * http.c - the socket layer of snapbackd on h2o 2.2.5 (evloop flavour).
 *
 * Layout.  Each worker thread owns an event loop, an h2o context, and a
 * listening socket of its own bound with SO_REUSEPORT, so the kernel spreads
 * connections over the workers and no state is shared between loops.  A
 * connection stays on the worker that accepted it; the handler runs
 * api_handle() to completion on that thread, so a request is never in
 * progress across loop turns except while its body is read or its response
 * written.
 *
 * What h2o answers by itself.  h2o 2.2.5 buffers an HTTP/1 request body
 * completely before the handler runs, and checks it on the way:
 *   - a Content-Length above max_request_entity_size is refused with 413
 *     as soon as the headers are parsed, before any of the body is read,
 *     and the connection is closed after the response;
 *   - a chunked body is refused with 413 once the decoded bytes reach the
 *     limit (so a chunked body of exactly the limit is refused too: h2o
 *     compares with >=), and with 400 when its framing is broken;
 *   - an unparsable Content-Length or an unknown Transfer-Encoding gets 400;
 *   - an unknown Expect gets 417; more than 100 header lines, a header
 *     block above about 400 KiB, or a request line or header that does not
 *     parse get "400 Bad Request".
 * All but those 400s go through h2o_send_error_generic(), which binds
 * the request to the host's fallback path before it starts the response,
 * and so runs the fallback path's filters.  Our handler is registered on "/"
 * and never sees them; a filter on the fallback path (on_error_setup_ostream)
 * rewrites each into the JSON error that api_error() builds, with its
 * length, so that a client gets JSON whoever refused its request.  The last
 * kind cannot be rewritten: h2o writes a fixed text/plain 400 straight to
 * the socket when its parser fails, before any request object exists, and
 * offers no hook there.
 *
 * XXX: a client that sends a body above the limit without waiting for the
 * response (no "Expect: 100-continue") may see a connection reset instead
 * of the 413: h2o 2.2.5 closes the socket with the unread body still queued,
 * and the kernel then resets the connection.  Fixing it takes a lingering
 * close, which h2o 2.2.5 does not do.
 *
 * Shutdown.  http_server_stop() closes the write end of a pipe whose read
 * end every loop watches, so all loops wake at once.  Each worker then
 * closes its listener, lets responses in progress finish, closes keep-alive
 * connections as soon as they are idle (h2o would keep them for the 10 s
 * request timeout), and cuts what is left after DRAIN_GRACE_MS.  Requests
 * answered during the drain get "Connection: close".  We do not call
 * h2o_context_request_shutdown(): in 2.2.5 it arms an HTTP/2 timer that
 * must fire (a second later) before the context may be disposed, and
 * HTTP/2 is off here, so it would only delay the exit.
 */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>

#include "mcp.h"
#include "snapback.h"
#include "syncer.h"

#define OPTIONS_THREADS_MAX_HTTP 256  /* the most workers the options allow */
#define LOOP_WAIT_MS             1000 /* bound on one loop wait: a safety net for the stop flag */
#define DRAIN_TURN_MS            50   /* loop wait while draining connections */
#define DRAIN_GRACE_MS           1500 /* after this, connections still open are cut */
#define DRAIN_CUT_MS             500  /* time left for cut connections to be closed */
#define ACCEPT_BATCH             64   /* connections accepted per listener wake-up */
#define ACCESS_LOG_BUF           (32 * 1024)
#define ACCESS_TARGET_MAX        2048 /* escaped bytes of a target kept in one log line */

struct access_log {
    int fd;           /* shared by all workers; O_APPEND keeps lines whole */
    int failed;       /* a write failed and was logged once */
    time_t stamp_sec; /* second that `stamp` shows */
    char stamp[32];   /* "YYYY-MM-DDTHH:MM:SS" */
    size_t len;       /* bytes in buf, always whole lines */
    char buf[ACCESS_LOG_BUF];
};

/* An accepted connection, tracked so that shutdown can find idle ones. */
struct conn {
    h2o_linklist_t link; /* in worker.conns */
    h2o_socket_t *sock;
};

struct worker {
    struct http_server *srv;
    unsigned index;
    pthread_t thread;
    int started;   /* thread is running and must be joined */
    int listen_fd; /* until the worker wraps it in `listener` */
    int wake_fd;   /* read end of the stop pipe, until wrapped */
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_socket_t *wake;
    h2o_timeout_entry_t accept_resume; /* re-arms the listener after EMFILE */
    h2o_linklist_t conns;              /* struct conn, open connections */
    int stopping;
    size_t cut;             /* connections cut when the grace period ended */
    struct access_log *log; /* NULL when the access log is off */

    /* Answers to writes waiting for their sync, oldest first (their log
     * positions rise in this order); the syncer writes to sync_fd. */
    int sync_fd;
    h2o_socket_t *synced;
    h2o_linklist_t parked; /* struct parked */
    uint64_t want, wanted; /* highest position parked; highest asked for */
};

struct handler {
    h2o_handler_t super;
    struct api *api;
    struct mcp *mcp; /* NULL: no MCP endpoint */
};

/* An answer held back until the write it reports is durable.  Lives in the
 * request's pool: if the client goes away first, h2o disposes of the
 * request and on_parked_dispose() takes it off the list. */
struct parked {
    h2o_linklist_t link; /* in worker.parked */
    h2o_req_t *req;
    uint64_t lsn;
    h2o_iovec_t body;
};

struct http_server {
    h2o_globalconf_t config;
    int config_ready;
    int stop_pipe[2]; /* closing [1] wakes every worker */
    int log_fd;
    atomic_int stop; /* also polled after every loop turn */
    struct api *api;
    struct syncer *syncer;
    unsigned nworkers;
    struct worker workers[];
};

/* The generator of our responses: everything is sent in one piece, so h2o
 * never asks for more (proceed) nor cancels (stop). */
static h2o_generator_t api_generator = {NULL, NULL};

static struct worker *worker_of(h2o_req_t *req)
{
    return H2O_STRUCT_FROM_MEMBER(struct worker, ctx, req->conn->ctx);
}

/* ---------------------------------------------------------------------- */
/* Access log                                                             */
/* ---------------------------------------------------------------------- */

static void access_log_flush(struct access_log *log, unsigned worker)
{
    size_t off = 0;

    while (off < log->len) {
        ssize_t n = write(log->fd, log->buf + off, log->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (!log->failed)
                fprintf(stderr,
                        "level=error module=http msg=\"access log write failed, lines "
                        "dropped\" worker=%u error=\"%s\"\n",
                        worker, strerror(errno));
            log->failed = 1;
            break;
        }
        off += (size_t)n;
    }
    log->len = 0;
}

/* Copies `s` into `out` with bytes that would break a line escaped as \xHH;
 * stops before `cap`.  Returns the bytes written. */
static size_t escape(char *out, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    for (size_t i = 0; i < len && n + 4 <= cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out[n++] = (char)c;
            continue;
        }
        out[n++] = '\\';
        out[n++] = 'x';
        out[n++] = hex[c >> 4];
        out[n++] = hex[c & 15];
    }
    return n;
}

/* Appends "TIME METHOD TARGET STATUS BYTES\n"; the worker loop flushes. */
static void access_log_add(struct worker *w, h2o_req_t *req, int status, size_t bytes)
{
    struct access_log *log = w->log;
    struct timespec now;
    struct tm tm;
    char *p;

    if (log->len + 64 + 32 + ACCESS_TARGET_MAX > sizeof(log->buf))
        access_log_flush(log, w->index);
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != log->stamp_sec) {
        gmtime_r(&now.tv_sec, &tm);
        strftime(log->stamp, sizeof(log->stamp), "%Y-%m-%dT%H:%M:%S", &tm);
        log->stamp_sec = now.tv_sec;
    }

    p = log->buf + log->len;
    p += sprintf(p, "%s.%03ldZ ", log->stamp, now.tv_nsec / 1000000);
    p += escape(p, 32, req->input.method.base, req->input.method.len);
    *p++ = ' ';
    p += escape(p, ACCESS_TARGET_MAX, req->input.path.base, req->input.path.len);
    p += sprintf(p, " %d %zu\n", status, bytes);
    log->len = (size_t)(p - log->buf);
}

/* ---------------------------------------------------------------------- */
/* Requests                                                               */
/* ---------------------------------------------------------------------- */

/* Returns the value of header `token`, repeated lines joined with ", " as
 * HTTP allows for list headers; NULL when absent.  Valid with the request. */
static const char *header_value(h2o_req_t *req, const h2o_token_t *token, size_t *len)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    h2o_iovec_t v;

    *len = 0;
    if (i == -1)
        return NULL;
    v = req->headers.entries[i].value;
    while ((i = h2o_find_header(&req->headers, token, i)) != -1)
        v = h2o_concat(&req->pool, v, h2o_iovec_init(H2O_STRLIT(", ")),
                       req->headers.entries[i].value);
    *len = v.len;
    return v.base;
}

/* The same for a header h2o has no token for; `name` is in lower case.
 * Repeated lines are joined the same way, which makes a repeated
 * X-Change-Set invalid (", " is not allowed in one). */
static const char *header_named(h2o_req_t *req, const char *name, size_t *len)
{
    size_t name_len = strlen(name);
    h2o_iovec_t v = h2o_iovec_init(NULL, 0);

    for (size_t i = 0; i < req->headers.size; i++) {
        const h2o_header_t *h = &req->headers.entries[i];
        if (!h2o_lcstris(h->name->base, h->name->len, name, name_len))
            continue;
        if (v.base == NULL)
            v = h->value;
        else
            v = h2o_concat(&req->pool, v, h2o_iovec_init(H2O_STRLIT(", ")), h->value);
    }
    *len = v.len;
    return v.base;
}

static void to_mcp_req(h2o_req_t *req, struct mcp_req *in)
{
    memset(in, 0, sizeof(*in));
    in->method = req->method.base;
    in->method_len = req->method.len;
    in->origin = header_named(req, "origin", &in->origin_len);
    in->accept = header_value(req, H2O_TOKEN_ACCEPT, &in->accept_len);
    in->content_type = header_value(req, H2O_TOKEN_CONTENT_TYPE, &in->content_type_len);
    in->protocol_version = header_named(req, "mcp-protocol-version", &in->protocol_version_len);
    in->session_id = header_named(req, "mcp-session-id", &in->session_id_len);
    in->mcp_method = header_named(req, "mcp-method", &in->mcp_method_len);
    in->mcp_name = header_named(req, "mcp-name", &in->mcp_name_len);
    in->body = req->entity.base;
    in->body_len = req->entity.base != NULL ? req->entity.len : 0;
}

static void to_api_req(h2o_req_t *req, struct api_req *in)
{
    in->method = req->method.base;
    in->method_len = req->method.len;
    in->target = req->path.base;
    in->target_len = req->path.len;
    in->content_type = header_value(req, H2O_TOKEN_CONTENT_TYPE, &in->content_type_len);
    in->if_match = header_value(req, H2O_TOKEN_IF_MATCH, &in->if_match_len);
    in->if_none_match = header_value(req, H2O_TOKEN_IF_NONE_MATCH, &in->if_none_match_len);
    in->change_set = header_named(req, "x-change-set", &in->change_set_len);
    in->actor = header_named(req, "x-actor", &in->actor_len);
    in->idempotency_key = header_named(req, "idempotency-key", &in->idempotency_key_len);
    /* h2o leaves entity.base NULL only when the request announced no body;
     * "Content-Length: 0" gives a non-NULL, empty entity. */
    in->body = req->entity.base;
    in->body_len = req->entity.base != NULL ? req->entity.len : 0;
}

static int is_head(h2o_req_t *req)
{
    return h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
}

static void on_body_dispose(void *arg)
{
    free(*(char **)arg);
}

/*
 * Sets status, reason, headers and length of req->res from `out`.  Returns
 * the body, whose buffer the request's pool now owns (freed with it, so a
 * parked answer keeps it): `out` loses it, saving a copy of up to
 * --max-body bytes.  Header values are copied into the pool.  The length is
 * always set: h2o 2.2.5 closes the connection after a response without one.
 */
static h2o_iovec_t set_response(h2o_req_t *req, struct api_resp *out)
{
    h2o_iovec_t body = h2o_iovec_init(NULL, 0);

    req->res.status = out->status;
    req->res.reason = out->reason ? out->reason : ""; /* static strings */
    for (size_t i = 0; i < out->nheaders; i++) {
        const struct api_header *h = &out->headers[i];
        h2o_iovec_t v = h2o_strdup(&req->pool, h->value, SIZE_MAX);
        h2o_add_header_by_str(&req->pool, &req->res.headers, h->name, strlen(h->name), 0, NULL,
                              v.base, v.len);
    }
    if (out->body_len > 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, "Content-Type",
                       H2O_STRLIT("application/json"));
        char **owner = h2o_mem_alloc_shared(&req->pool, sizeof(*owner), on_body_dispose);
        *owner = out->body;
        body = h2o_iovec_init(out->body, out->body_len);
        out->body = NULL;
    }
    req->res.content_length = out->body_len;
    return body;
}

static void send_response(struct worker *w, h2o_req_t *req, h2o_iovec_t body)
{
    if (w->log != NULL)
        access_log_add(w, req, req->res.status, body.len);
    h2o_start_response(req, &api_generator);
    if (body.len > 0 && !is_head(req))
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
    else
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
}

static void on_parked_dispose(void *arg)
{
    struct parked *p = arg;
    if (h2o_linklist_is_linked(&p->link))
        h2o_linklist_unlink(&p->link);
}

/* Holds an answer back until the syncer has made its write durable. */
static void park(struct worker *w, h2o_req_t *req, uint64_t lsn, h2o_iovec_t body)
{
    struct parked *p = h2o_mem_alloc_shared(&req->pool, sizeof(*p), on_parked_dispose);
    memset(&p->link, 0, sizeof(p->link));
    p->req = req;
    p->lsn = lsn;
    p->body = body;
    h2o_linklist_insert(&w->parked, &p->link);
    if (lsn > w->want)
        w->want = lsn; /* asked for once this loop turn has handled all it can */
}

/* Sends the parked answers the last sync covered; after a failed sync,
 * turns every parked answer into the error the write deserves. */
static void release_parked(struct worker *w)
{
    sb_store *store = api_store(w->srv->api);
    uint64_t synced = sb_store_synced(store);
    int failed = syncer_failed(w->srv->syncer);

    while (!h2o_linklist_is_empty(&w->parked)) {
        struct parked *p = H2O_STRUCT_FROM_MEMBER(struct parked, link, w->parked.next);
        if (p->lsn > synced && !failed)
            break;
        h2o_linklist_unlink(&p->link);
        h2o_iovec_t body = p->body;
        if (p->lsn > synced) {
            struct api_resp err = {0};
            api_error(&err, 503, "storage_error",
                      "The server could not sync its log; the write is not durable. Reads "
                      "still work; writes resume after the operator restarts the server.");
            api_add_revision(w->srv->api, &err);
            memset(&p->req->res.headers, 0, sizeof(p->req->res.headers));
            body = set_response(p->req, &err);
            api_resp_free(&err);
        }
        send_response(w, p->req, body);
    }
}

static void on_synced(h2o_socket_t *sock, const char *err)
{
    struct worker *w = sock->data;
    uint64_t count;

    /* Drain the eventfd; reading it resets the count. */
    ssize_t rc = read(w->sync_fd, &count, sizeof(count));
    (void)rc;
    release_parked(w);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct handler *h = (struct handler *)self;
    struct worker *w = worker_of(req);
    struct api_req in;
    struct api_resp out = {0};
    h2o_iovec_t body;
    uint64_t lsn;

    if (w->stopping)
        req->http1_is_persistent = 0; /* draining: tell the client not to reuse it */
    if (h->mcp != NULL && mcp_is_target(req->path.base, req->path.len)) {
        struct mcp_req mcp_in;
        to_mcp_req(req, &mcp_in);
        mcp_handle(h->mcp, &mcp_in, &out);
    } else {
        to_api_req(req, &in);
        api_handle(h->api, &in, &out);
    }
    body = set_response(req, &out);
    lsn = out.lsn;
    api_resp_free(&out);

    if (lsn > sb_store_synced(api_store(h->api)))
        park(w, req, lsn, body);
    else
        send_response(w, req, body);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* JSON for the errors h2o sends by itself (see the top of the file)      */
/* ---------------------------------------------------------------------- */

struct error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body; /* the JSON body, sent instead of h2o's text */
    int sent;
};

static void on_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                          h2o_send_state_t state)
{
    struct error_ostream *os = (struct error_ostream *)self;

    /* h2o's text body is dropped; ours goes out with the first call. */
    if (!os->sent && !is_head(req)) {
        os->sent = 1;
        h2o_ostream_send_next(self, req, &os->body, 1, state);
        return;
    }
    h2o_ostream_send_next(self, req, NULL, 0, state);
}

/* Picks the JSON error code and message for a status h2o produced. */
static const char *error_code(h2o_req_t *req, char *msg, size_t cap)
{
    switch (req->res.status) {
    case 400:
        snprintf(msg, cap, "the request is not valid HTTP/1.1");
        return "bad_request";
    case 404:
        snprintf(msg, cap, "no such resource");
        return "not_found";
    case 413:
        snprintf(msg, cap, "the request body is larger than the limit of %zu bytes",
                 req->conn->ctx->globalconf->max_request_entity_size);
        return "payload_too_large";
    case 417:
        snprintf(msg, cap, "the only expectation supported is 100-continue");
        return "expectation_failed";
    default:
        snprintf(msg, cap, "%s", req->res.reason);
        return "http_error";
    }
}

static void on_error_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    struct error_ostream *os;
    struct api_resp resp = {0}; /* api_error() frees a body it finds */
    char msg[128];
    const char *code;

    if (req->res.status < 400) {
        h2o_setup_next_ostream(req, slot);
        return;
    }
    code = error_code(req, msg, sizeof(msg));
    api_error(&resp, req->res.status, code, msg);
    api_add_revision(worker_of(req)->srv->api, &resp);

    /* Replace h2o's text/plain headers; keep its status and its decision to
     * close the connection (req->http1_is_persistent). */
    memset(&req->res.headers, 0, sizeof(req->res.headers));
    os = (struct error_ostream *)h2o_add_ostream(req, sizeof(*os), slot);
    os->super.do_send = on_error_send;
    os->body = set_response(req, &resp);
    os->sent = 0;
    api_resp_free(&resp);

    if (worker_of(req)->log != NULL)
        access_log_add(worker_of(req), req, req->res.status, os->body.len);
    h2o_setup_next_ostream(req, &os->super.next);
}

/* ---------------------------------------------------------------------- */
/* Connections                                                            */
/* ---------------------------------------------------------------------- */

static void on_conn_close(void *data)
{
    struct conn *c = data;

    h2o_linklist_unlink(&c->link);
    free(c);
}

static void on_accept(h2o_socket_t *listener, const char *err);

static void on_accept_resume(h2o_timeout_entry_t *entry)
{
    struct worker *w = H2O_STRUCT_FROM_MEMBER(struct worker, accept_resume, entry);

    h2o_socket_read_start(w->listener, on_accept);
}

/* Out of file descriptors: the listener stays readable, so stop watching it
 * for a moment instead of spinning on accept(). */
static void pause_accepting(struct worker *w, int err)
{
    fprintf(stderr,
            "level=warn module=http msg=\"accept failed, pausing 100 ms\" worker=%u "
            "error=\"%s\"\n",
            w->index, strerror(err));
    h2o_socket_read_stop(w->listener);
    h2o_timeout_link(w->loop, &w->ctx.hundred_ms_timeout, &w->accept_resume);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct worker *w = listener->data;

    for (int i = 0; err == NULL && i < ACCEPT_BATCH; i++) {
        h2o_socket_t *sock;
        struct conn *c;

        errno = 0;
        if ((sock = h2o_evloop_socket_accept(listener)) == NULL) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(w, errno);
            return;
        }
        if ((c = calloc(1, sizeof(*c))) == NULL) { /* h2o asserts that links start NULL */
            h2o_socket_close(sock);
            return;
        }
        c->sock = sock;
        h2o_linklist_insert(&w->conns, &c->link);
        sock->on_close.cb = on_conn_close;
        sock->on_close.data = c;
        h2o_accept(&w->accept_ctx, sock);
    }
}

/*
 * Shuts down the sockets of idle connections (nothing buffered, nothing
 * being written), or of all of them when `all`: h2o sees end of file on its
 * next read and closes the connection itself, which keeps its state
 * consistent.  A client that had just sent a request on a connection we
 * judge idle sees the connection close without a response, which HTTP
 * allows for keep-alive connections; clients retry such requests.
 */
static size_t close_connections(struct worker *w, int all)
{
    size_t n = 0;

    for (h2o_linklist_t *l = w->conns.next; l != &w->conns; l = l->next) {
        struct conn *c = H2O_STRUCT_FROM_MEMBER(struct conn, link, l);
        int idle = c->sock->input->size == 0 && !h2o_socket_is_writing(c->sock);
        if (all || idle) {
            shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
            n++;
        }
    }
    return n;
}

/* ---------------------------------------------------------------------- */
/* Workers                                                                */
/* ---------------------------------------------------------------------- */

static void on_wake(h2o_socket_t *sock, const char *err)
{
    struct worker *w = sock->data;

    h2o_socket_read_stop(sock);
    w->stopping = 1;
}

/* Builds the loop, the context and the two sockets the loop watches. */
static void worker_setup(struct worker *w)
{
    w->loop = h2o_evloop_create();
    h2o_context_init(&w->ctx, w->loop, &w->srv->config);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = w->srv->config.hosts;
    h2o_linklist_init_anchor(&w->conns);
    w->accept_resume.cb = on_accept_resume;

    w->listener = h2o_evloop_socket_create(w->loop, w->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->listen_fd = -1;
    w->listener->data = w;
    h2o_socket_read_start(w->listener, on_accept);

    w->wake = h2o_evloop_socket_create(w->loop, w->wake_fd, H2O_SOCKET_FLAG_DONT_READ);
    w->wake_fd = -1;
    w->wake->data = w;
    h2o_socket_read_start(w->wake, on_wake);

    /* The socket wrapper owns the fd from here on; the syncer keeps
     * writing to it until after this worker has ended. */
    h2o_linklist_init_anchor(&w->parked);
    w->synced = h2o_evloop_socket_create(w->loop, dup(w->sync_fd), H2O_SOCKET_FLAG_DONT_READ);
    w->synced->data = w;
    h2o_socket_read_start(w->synced, on_synced);
}

static void worker_turn(struct worker *w, int32_t wait_ms)
{
    h2o_evloop_run(w->loop, wait_ms);

    /* One request to the syncer per turn, covering every write the turn
     * handled, so that they share one sync as Redis's event loop does. */
    if (w->want > w->wanted) {
        syncer_want(w->srv->syncer, w->want);
        w->wanted = w->want;
    }
    if (w->log != NULL && w->log->len > 0)
        access_log_flush(w->log, w->index);
}

/*
 * Stops accepting, then runs the loop until every connection has closed:
 * idle ones are closed at once, busy ones when they become idle, and the
 * rest are cut after DRAIN_GRACE_MS.  Returns 0, or -1 if connections
 * survived even that, in which case the context must not be disposed
 * (their timeouts are still linked to it).
 */
static int worker_drain(struct worker *w)
{
    uint64_t cut_at, give_up_at;

    w->stopping = 1; /* also when the stop flag, not the pipe, ended the loop */
    if (h2o_timeout_is_linked(&w->accept_resume))
        h2o_timeout_unlink(&w->accept_resume);
    h2o_socket_read_stop(w->listener);
    h2o_socket_close(w->listener); /* new connections go to other workers, or are refused */
    w->listener = NULL;

    cut_at = h2o_now(w->loop) + DRAIN_GRACE_MS;
    give_up_at = cut_at + DRAIN_CUT_MS;
    while (!h2o_linklist_is_empty(&w->conns) && h2o_now(w->loop) < give_up_at) {
        int all = h2o_now(w->loop) >= cut_at;
        size_t n = close_connections(w, all);
        if (all) {
            w->cut = n;
            cut_at = UINT64_MAX; /* cut once */
        }
        worker_turn(w, DRAIN_TURN_MS);
    }
    return h2o_linklist_is_empty(&w->conns) ? 0 : -1;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int drained;

    sb_thread_register();
    worker_setup(w);
    while (!w->stopping && !atomic_load(&w->srv->stop))
        worker_turn(w, LOOP_WAIT_MS);
    drained = worker_drain(w);

    /* Closed sockets are freed on the next turn; then the loop is empty. */
    h2o_socket_close(w->wake);
    h2o_socket_close(w->synced);
    worker_turn(w, 0);
    if (drained == 0) {
        h2o_context_dispose(&w->ctx);
        h2o_evloop_destroy(w->loop);
    } else {
        fprintf(stderr,
                "level=warn module=http msg=\"connections still open after drain, "
                "loop left undisposed\" worker=%u\n",
                w->index);
    }
    sb_thread_unregister();
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* Server                                                                 */
/* ---------------------------------------------------------------------- */

static int listen_failed(const struct http_config *cfg, const char *step, int fd)
{
    fprintf(stderr,
            "level=error module=http msg=\"cannot listen\" listen=%s step=%s "
            "error=\"%s\"\n",
            cfg->addr_text, step, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

/*
 * Linux lets any number of sockets of the same user bind one port when all
 * set SO_REUSEPORT, so a second snapbackd on our port would bind fine and
 * take half the connections.  A plain bind, without SO_REUSEPORT, fails
 * with EADDRINUSE whenever anything listens there; it is released before
 * the workers bind, which leaves a window of a few microseconds.
 */
static int probe_address(const struct http_config *cfg)
{
    int one = 1;
    int fd = socket(cfg->addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return listen_failed(cfg, "socket", fd);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        return listen_failed(cfg, "setsockopt", fd);
    if (bind(fd, cfg->addr, cfg->addr_len) != 0)
        return listen_failed(cfg, "bind", fd);
    close(fd);
    return 0;
}

/* Returns a non-blocking listening socket bound with SO_REUSEPORT, or -1. */
static int open_listener(const struct http_config *cfg)
{
    int one = 1;
    int fd = socket(cfg->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return listen_failed(cfg, "socket", fd);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) /* inherited */
        return listen_failed(cfg, "setsockopt", fd);
    if (bind(fd, cfg->addr, cfg->addr_len) != 0)
        return listen_failed(cfg, "bind", fd);
    if (listen(fd, SOMAXCONN) != 0)
        return listen_failed(cfg, "listen", fd);
    return fd;
}

static void setup_config(struct http_server *srv, const struct http_config *cfg, struct api *api)
{
    h2o_hostconf_t *host;
    h2o_pathconf_t *path;
    struct handler *handler;
    h2o_filter_t *filter;

    h2o_config_init(&srv->config);
    srv->config.server_name = h2o_iovec_init(H2O_STRLIT("snapbackd/" SB_VERSION_STRING));
    srv->config.max_request_entity_size = cfg->max_body;
    /* HTTP/1.1 only: the drain above knows how to end HTTP/1 connections. */
    srv->config.http1.upgrade_to_http2 = 0;

    host = h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    path = h2o_config_register_path(host, "/", 0);
    handler = (struct handler *)h2o_create_handler(path, sizeof(*handler));
    handler->super.on_req = on_req;
    handler->api = api;
    handler->mcp = cfg->mcp;
    filter = h2o_create_filter(&host->fallback_path, sizeof(*filter));
    filter->on_setup_ostream = on_error_setup_ostream;
    srv->config_ready = 1;
}

/* Frees a server whose workers have all been joined (or never started). */
static void server_free(struct http_server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        if (w->listen_fd >= 0)
            close(w->listen_fd);
        if (w->wake_fd >= 0)
            close(w->wake_fd);
        if (w->sync_fd >= 0)
            close(w->sync_fd);
        free(w->log);
    }
    for (int i = 0; i < 2; i++) {
        if (srv->stop_pipe[i] >= 0)
            close(srv->stop_pipe[i]);
    }
    if (srv->log_fd >= 0)
        close(srv->log_fd);
    if (srv->config_ready)
        h2o_config_dispose(&srv->config);
    free(srv);
}

/* Gives each worker its listener, its end of the stop pipe and its log. */
static int prepare_workers(struct http_server *srv, const struct http_config *cfg)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];

        if ((w->listen_fd = open_listener(cfg)) < 0)
            return -1;
        if ((w->wake_fd = fcntl(srv->stop_pipe[0], F_DUPFD_CLOEXEC, 0)) < 0)
            goto fail;
        if ((w->sync_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
            goto fail;
        if (srv->log_fd >= 0) {
            if ((w->log = calloc(1, sizeof(*w->log))) == NULL)
                goto fail;
            w->log->fd = srv->log_fd;
        }
    }
    return 0;

fail:
    fprintf(stderr, "level=error module=http msg=\"cannot prepare workers\" error=\"%s\"\n",
            strerror(errno));
    return -1;
}

static struct http_server *server_new(const struct http_config *cfg)
{
    struct http_server *srv;

    srv = calloc(1, sizeof(*srv) + cfg->threads * sizeof(srv->workers[0]));
    if (srv == NULL)
        return NULL;
    srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
    srv->log_fd = -1;
    srv->nworkers = cfg->threads;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        srv->workers[i].srv = srv;
        srv->workers[i].index = i;
        srv->workers[i].listen_fd = -1;
        srv->workers[i].wake_fd = -1;
        srv->workers[i].sync_fd = -1;
    }
    return srv;
}

static int start_syncer(struct http_server *srv)
{
    int fds[OPTIONS_THREADS_MAX_HTTP];
    for (unsigned i = 0; i < srv->nworkers; i++)
        fds[i] = srv->workers[i].sync_fd;
    if (syncer_start(api_store(srv->api), fds, srv->nworkers, &srv->syncer) != 0) {
        fprintf(stderr, "level=error module=http msg=\"cannot start the syncer\"\n");
        return -1;
    }
    return 0;
}

int http_server_start(const struct http_config *cfg, struct api *api, struct http_server **out)
{
    struct http_server *srv = server_new(cfg);

    if (srv == NULL || pipe2(srv->stop_pipe, O_CLOEXEC) != 0) {
        fprintf(stderr, "level=error module=http msg=\"cannot start\" error=\"%s\"\n",
                strerror(errno));
        goto fail;
    }
    if (cfg->access_log != NULL) {
        srv->log_fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (srv->log_fd < 0) {
            fprintf(stderr,
                    "level=error module=http msg=\"cannot open access log\" file=\"%s\" "
                    "error=\"%s\"\n",
                    cfg->access_log, strerror(errno));
            goto fail;
        }
    }
    if (probe_address(cfg) != 0 || prepare_workers(srv, cfg) != 0)
        goto fail;
    setup_config(srv, cfg, api);
    srv->api = api;
    if (start_syncer(srv) != 0)
        goto fail;

    for (unsigned i = 0; i < srv->nworkers; i++) {
        int err = pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]);
        if (err != 0) {
            fprintf(stderr,
                    "level=error module=http msg=\"cannot start worker\" worker=%u "
                    "error=\"%s\"\n",
                    i, strerror(err));
            http_server_stop(srv);
            return -1;
        }
        srv->workers[i].started = 1;
    }
    *out = srv;
    return 0;

fail:
    if (srv != NULL)
        server_free(srv);
    return -1;
}

size_t http_server_stop(struct http_server *srv)
{
    size_t cut = 0;

    if (srv == NULL)
        return 0;
    atomic_store(&srv->stop, 1);
    close(srv->stop_pipe[1]); /* every loop sees end of file on its read end */
    srv->stop_pipe[1] = -1;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        struct worker *w = &srv->workers[i];
        if (!w->started)
            continue;
        pthread_join(w->thread, NULL);
        if (w->log != NULL)
            access_log_flush(w->log, w->index);
        cut += w->cut;
    }
    /* Only now: draining workers still wait on syncs. */
    syncer_stop(srv->syncer);
    srv->syncer = NULL;
    server_free(srv);
    return cut;
}
