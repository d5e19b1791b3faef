/*
 * options.h - snapbackd's command line.
 *
 * Parsing is strict: an unknown option, a missing argument or a value out of
 * range is reported in one line naming the option and the value, and the
 * server does not start.  Nothing here touches the store or the network.
 */
#ifndef SNAPBACKD_OPTIONS_H
#define SNAPBACKD_OPTIONS_H

#include <stddef.h>
#include <sys/socket.h>

#include "api.h"

#define OPTIONS_LISTEN_DEFAULT   "127.0.0.1:8000"
#define OPTIONS_THREADS_MAX      256
#define OPTIONS_MAX_BODY_DEFAULT ((size_t)1 << 20)
#define OPTIONS_MAX_BODY_MAX     ((size_t)1 << 30)
#define OPTIONS_DATA_DIR_DEFAULT "./snapback-data"
/* Change sets remembered; the bound keeps the index's memory in check. */
#define OPTIONS_CHANGE_SETS_DEFAULT      100000
#define OPTIONS_AUTO_CHANGE_SETS_DEFAULT 10000
#define OPTIONS_CHANGE_SETS_MAX          100000000

struct options {
    struct sockaddr_storage listen; /* IPv4 or IPv6 address and port */
    socklen_t listen_len;           /* bytes of `listen` in use */
    char listen_text[64];           /* `listen` as ADDR:PORT, for logs */
    unsigned threads;               /* worker threads, 1..256 */
    struct api_config api;          /* history, max_body, keys (owned), ... */
    const char *access_log;         /* path from argv, or NULL: no log */
    int in_memory;                  /* --in-memory: api.data_dir is NULL */
    const char **origins;           /* --allow-origin values (owned array, strings in argv) */
    size_t norigins;
};

/* What the caller should do once options_parse() returns. */
enum options_result {
    OPTIONS_RUN,        /* `out` is filled: start the server */
    OPTIONS_EXIT_OK,    /* --help or --version was printed: exit 0 */
    OPTIONS_EXIT_USAGE, /* a message was printed to stderr: exit 2 */
};

/*
 * Parses argv into `out`.  Prints --help and --version to stdout and errors
 * to stderr itself (one line, then "try --help").  On OPTIONS_RUN the caller
 * owns out->api.keys and out->origins and frees them with options_free()
 * (unless api_new() took the keys).  On any other result `out` holds nothing to free.  Not
 * thread-safe (getopt_long keeps global state); call once, from main().
 */
enum options_result options_parse(int argc, char **argv, struct options *out);

/* Frees what options_parse() allocated (the key rules, the origin list);
 * `opts` may be NULL. */
void options_free(struct options *opts);

#endif /* SNAPBACKD_OPTIONS_H */
