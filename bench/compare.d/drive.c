/* drive.c - a small keep-alive load driver for bench/compare.
 *
 * wrk covers the timed HTTP scenarios, but bench/compare also needs two things
 * wrk cannot do: time a fixed batch of requests (the 1,000 rollbacks of one
 * job; wrk always runs for its whole -d) and speak RESP to Redis with a
 * per-connection order (a write, then the rollback of that same key, on the
 * same connection). Python would be the bottleneck at these rates, so this is
 * C: one thread, epoll, CONNS connections, one request in flight on each.
 *
 * Usage: drive http|resp HOST PORT CONNS once|stream|loop [SECONDS] < RECORDS
 *   RECORDS: "GROUP LENGTH\n" followed by LENGTH raw request bytes, repeated.
 *   once: every record is sent exactly once, in file order, by whichever
 *         connection is free; all are read before the clock starts, so the
 *         time is the server's and the network's, not the input pipe's.
 *   stream: the same, reading records as they are needed (for fills of
 *         millions of records, where the time does not matter).
 *   loop: connection c replays the records of group (c mod GROUPS) in order,
 *         again and again, for SECONDS.
 * Prints one line: requests= ok= fail= nil= seconds= rate=. A request is ok
 * on a 2xx status (http) or a non-error, non-nil reply (resp); nil counts
 * RESP nil replies (a Redis rollback with nothing left to undo). The first
 * failing answer is copied to stderr. Exits 1 on a connection error.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct rec {
    size_t len;
    char *data;
};

struct conn {
    int fd;
    struct rec cur; /* the request in flight (owned in once mode) */
    size_t sent;    /* bytes of cur written */
    char *in;       /* bytes received for the current answer */
    size_t in_len, in_cap;
    int busy;
    size_t group, pos; /* loop mode: which cycle, and where in it */
};

static int resp_mode;
static long n_req, n_ok, n_fail, n_nil;
static int reported;

/* Groups of records, for loop mode. */
static struct rec **groups;
static size_t *group_len, n_groups;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* Read the next record from stdin; 0 at end of input. */
static int read_rec(size_t *group, struct rec *r)
{
    unsigned long g, len;
    if (scanf("%lu %lu", &g, &len) != 2)
        return 0;
    if (getchar() != '\n')
        return 0;
    r->len = len;
    r->data = malloc(len ? len : 1);
    if (!r->data || fread(r->data, 1, len, stdin) != len)
        die("record");
    *group = g;
    return 1;
}

/* Length of one complete RESP reply at p (n bytes), 0 if incomplete.
 * *kind becomes '-' for an error and 'n' for a nil somewhere at the top. */
static size_t resp_reply(const char *p, size_t n, int *kind)
{
    const char *eol = memmem(p, n, "\r\n", 2);
    if (!eol)
        return 0;
    size_t head = (size_t)(eol - p) + 2;
    long v = strtol(p + 1, NULL, 10);
    switch (p[0]) {
    case '+':
    case ':':
        return head;
    case '-':
        *kind = '-';
        return head;
    case '_':
        *kind = 'n';
        return head;
    case '$':
        if (v < 0) {
            *kind = 'n';
            return head;
        }
        return n >= head + (size_t)v + 2 ? head + (size_t)v + 2 : 0;
    case '*': {
        if (v < 0) {
            *kind = 'n';
            return head;
        }
        size_t off = head;
        for (long i = 0; i < v; i++) {
            int sub = 0;
            size_t m = resp_reply(p + off, n - off, &sub);
            if (!m)
                return 0;
            off += m;
        }
        return off;
    }
    default:
        *kind = '-';
        return n; /* not RESP: take it all, count it as a failure */
    }
}

/* Length of one complete HTTP/1.1 response at p, 0 if incomplete. */
static size_t http_response(const char *p, size_t n, int *status)
{
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - p) + 4;
    *status = n > 12 ? atoi(p + 9) : 0;
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200))
        return head;

    /* Find Content-Length or chunked encoding among the header lines. */
    long clen = -1;
    int chunked = 0;
    for (const char *l = memchr(p, '\n', head); l && l < end;
         l = memchr(l, '\n', end - l)) {
        l++;
        if (!strncasecmp(l, "content-length:", 15))
            clen = strtol(l + 15, NULL, 10);
        else if (!strncasecmp(l, "transfer-encoding:", 18) &&
                 memmem(l, strcspn(l, "\r"), "chunked", 7))
            chunked = 1;
    }
    if (!chunked)
        return n >= head + (size_t)(clen < 0 ? 0 : clen)
                   ? head + (size_t)(clen < 0 ? 0 : clen)
                   : 0;

    size_t off = head;
    for (;;) {
        const char *eol = memmem(p + off, n - off, "\r\n", 2);
        if (!eol)
            return 0;
        long sz = strtol(p + off, NULL, 16);
        off = (size_t)(eol - p) + 2;
        if (sz == 0)
            return n >= off + 2 ? off + 2 : 0; /* no trailers expected */
        off += (size_t)sz + 2;
        if (off > n)
            return 0;
    }
}

/* Account for a finished answer; copy the first bad one to stderr. */
static void account(const char *p, size_t len, int ok, int nil)
{
    n_req++;
    if (nil)
        n_nil++;
    else if (ok)
        n_ok++;
    else {
        n_fail++;
        if (!reported++)
            fprintf(stderr, "drive: first failing answer: %.*s\n",
                    (int)(len > 300 ? 300 : len), p);
    }
}

/* once mode: the records, read up front, and the next one to send. */
static struct rec *all;
static size_t n_all, next_all;
static int preloaded;

/* Give c its next request; 0 when there is none (input done). */
static int next_request(struct conn *c, int loop)
{
    if (loop) {
        struct rec *g = groups[c->group];
        c->cur = g[c->pos];
        c->pos = (c->pos + 1) % group_len[c->group];
    } else if (preloaded) {
        if (next_all == n_all)
            return 0;
        c->cur = all[next_all++];
    } else {
        size_t g;
        if (c->cur.data)
            free(c->cur.data);
        c->cur.data = NULL;
        if (!read_rec(&g, &c->cur))
            return 0;
    }
    c->sent = 0;
    c->busy = 1;
    return 1;
}

static void try_send(struct conn *c)
{
    while (c->sent < c->cur.len) {
        ssize_t w = send(c->fd, c->cur.data + c->sent, c->cur.len - c->sent,
                         MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN)
                return;
            die("send");
        }
        c->sent += (size_t)w;
    }
}

/* Read what is there; on a complete answer, account it. 1 when done. */
static int try_recv(struct conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 65536) {
            c->in_cap = c->in_cap * 2 + 65536;
            c->in = realloc(c->in, c->in_cap);
            if (!c->in)
                die("realloc");
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r == 0) {
            fprintf(stderr, "drive: server closed a connection\n");
            exit(1);
        }
        if (r < 0) {
            if (errno == EAGAIN)
                break;
            die("recv");
        }
        c->in_len += (size_t)r;
    }
    size_t used;
    int ok, nil = 0;
    if (resp_mode) {
        int kind = 0;
        used = resp_reply(c->in, c->in_len, &kind);
        ok = kind != '-';
        nil = kind == 'n';
    } else {
        int status = 0;
        used = http_response(c->in, c->in_len, &status);
        ok = status >= 200 && status < 300;
    }
    if (!used)
        return 0;
    account(c->in, used, ok, nil);
    /* One request in flight per connection: nothing may follow the answer. */
    c->in_len = 0;
    c->busy = 0;
    return 1;
}

static double deadline;
static int loop_mode, busy, input_done;

/* Move c along: send, and each time its answer is complete, give it the next
 * request (loop mode until the deadline, once mode until the input ends).
 * Returns when c waits for the network or has nothing left to do. */
static void pump(struct conn *c)
{
    for (;;) {
        try_send(c);
        if (!try_recv(c))
            return;
        busy--;
        int more = loop_mode ? now() < deadline : !input_done;
        if (!more)
            return;
        if (!next_request(c, loop_mode)) {
            input_done = 1;
            return;
        }
        busy++;
    }
}

static int connect_to(const char *host, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        die("address");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Loop mode: read every record into its group. */
static void load_groups(void)
{
    size_t g;
    struct rec r;
    while (read_rec(&g, &r)) {
        if (g >= n_groups) {
            groups = realloc(groups, (g + 1) * sizeof *groups);
            group_len = realloc(group_len, (g + 1) * sizeof *group_len);
            for (size_t i = n_groups; i <= g; i++) {
                groups[i] = NULL;
                group_len[i] = 0;
            }
            n_groups = g + 1;
        }
        groups[g] = realloc(groups[g], (group_len[g] + 1) * sizeof **groups);
        groups[g][group_len[g]++] = r;
    }
    for (g = 0; g < n_groups; g++)
        if (!group_len[g]) {
            fprintf(stderr, "drive: group %zu is empty\n", g);
            exit(2);
        }
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: drive http|resp HOST PORT CONNS once|loop "
                        "[SECONDS] < RECORDS\n");
        return 2;
    }
    resp_mode = !strcmp(argv[1], "resp");
    int nconn = atoi(argv[4]);
    int loop = !strcmp(argv[5], "loop");
    double secs = argc > 6 ? atof(argv[6]) : 0;
    if (loop)
        load_groups();
    if (loop && !n_groups)
        return 2;
    if (!strcmp(argv[5], "once")) {
        size_t g, cap = 0;
        struct rec r;
        while (read_rec(&g, &r)) {
            if (n_all == cap) {
                cap = cap * 2 + 1024;
                all = realloc(all, cap * sizeof *all);
                if (!all)
                    die("realloc");
            }
            all[n_all++] = r;
        }
        preloaded = 1;
    }

    int ep = epoll_create1(0);
    struct conn *cs = calloc((size_t)nconn, sizeof *cs);
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = connect_to(argv[2], atoi(argv[3]));
        cs[i].group = loop ? (size_t)i % n_groups : 0;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET,
                                 .data.ptr = &cs[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0)
            die("epoll_ctl");
    }

    /* Start the clock once every connection is open, then prime them all. */
    double t0 = now();
    deadline = t0 + secs;
    loop_mode = loop;
    for (int i = 0; i < nconn && !input_done; i++) {
        if (next_request(&cs[i], loop)) {
            busy++;
            pump(&cs[i]);
        } else
            input_done = 1;
    }

    struct epoll_event evs[256];
    while (busy > 0) {
        int n = epoll_wait(ep, evs, 256, 1000);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->busy)
                pump(c);
        }
    }
    double dt = now() - t0;
    printf("requests=%ld ok=%ld fail=%ld nil=%ld seconds=%.6f rate=%.1f\n",
           n_req, n_ok, n_fail, n_nil, dt, n_req / dt);
    return 0;
}
