/*
 * options.c - parses snapbackd's command line with getopt_long.
 *
 * Every value is checked in full before the server starts: integers take
 * decimal digits only (no sign, no blanks, no trailing junk) and are
 * bounded before they can overflow, so "8k", "-1" or "99999999999999999999"
 * are refused with a message instead of being read as something else.
 */
#include "options.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcp.h"
#include "snapback.h"

enum {
    OPT_LISTEN = 256,
    OPT_THREADS,
    OPT_HISTORY,
    OPT_KEY,
    OPT_MAX_BODY,
    OPT_ACCESS_LOG,
    OPT_DATA_DIR,
    OPT_IN_MEMORY,
    OPT_FSYNC,
    OPT_FSYNC_INTERVAL,
    OPT_REPAIR,
    OPT_RETAIN,
    OPT_COMPACT_RATIO,
    OPT_COMPACT_MIN,
    OPT_ALLOW_ORIGIN,
    OPT_CHANGE_SETS,
    OPT_AUTO_CHANGE_SETS,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"key", required_argument, NULL, OPT_KEY},
    {"max-body", required_argument, NULL, OPT_MAX_BODY},
    {"access-log", required_argument, NULL, OPT_ACCESS_LOG},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"in-memory", no_argument, NULL, OPT_IN_MEMORY},
    {"fsync", required_argument, NULL, OPT_FSYNC},
    {"fsync-interval", required_argument, NULL, OPT_FSYNC_INTERVAL},
    {"repair", no_argument, NULL, OPT_REPAIR},
    {"retain", required_argument, NULL, OPT_RETAIN},
    {"compact-ratio", required_argument, NULL, OPT_COMPACT_RATIO},
    {"compact-min", required_argument, NULL, OPT_COMPACT_MIN},
    {"allow-origin", required_argument, NULL, OPT_ALLOW_ORIGIN},
    {"change-sets", required_argument, NULL, OPT_CHANGE_SETS},
    {"auto-change-sets", required_argument, NULL, OPT_AUTO_CHANGE_SETS},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static const char *option_name(int val)
{
    for (const struct option *o = long_options; o->name != NULL; o++) {
        if (o->val == val)
            return o->name;
    }
    return "?";
}

static unsigned default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > OPTIONS_THREADS_MAX ? OPTIONS_THREADS_MAX : (unsigned)n;
}

static void print_help(void)
{
    printf("usage: snapbackd [OPTION]...\n"
           "Serves a multi-version document store with rollback over HTTP/1.1.\n"
           "\n"
           "  --listen ADDR:PORT       address to listen on, IPV4:PORT or [IPV6]:PORT\n"
           "                           (default %s)\n"
           "  --threads N              worker threads, 1 to %d (default: online CPUs, here %u)\n"
           "  --history N              versions kept per document, 1 to %d (default %d)\n"
           "  --key COLLECTION=FIELD   take the ids of COLLECTION's documents from their\n"
           "                           JSON field FIELD; repeatable (default: none)\n"
           "  --max-body BYTES         largest request body, 1 to 1024M; K and M suffixes\n"
           "                           count 1024 and 1048576 bytes (default 1M)\n"
           "  --access-log FILE        append one line per request to FILE (default: off)\n"
           "  --data-dir DIR           keep the write-ahead log in DIR, created if missing\n"
           "                           (default %s)\n"
           "  --in-memory              keep nothing on disk: a restart loses everything\n"
           "  --fsync MODE             always: answer a write once it is on disk (group\n"
           "                           commit); batch: sync every --fsync-interval, a crash\n"
           "                           loses at most that; never: leave it to the OS\n"
           "                           (default always)\n"
           "  --fsync-interval TIME    batch mode's interval: 1ms to 10s, as 10ms or 1s\n"
           "                           (default 10ms)\n"
           "  --repair                 open a log damaged before its end by keeping what\n"
           "                           precedes the damage (default: refuse to start)\n"
           "  --retain DURATION        drop versions older than this, the current one of\n"
           "                           each document excepted: 90s, 15m, 12h, 7d (default:\n"
           "                           keep them until --history drops them)\n"
           "  --compact-ratio R        compact when the log passes R times the retained\n"
           "                           data, 0 for never (default 2)\n"
           "  --compact-min BYTES      and is at least this big; K, M, G (default 64M)\n"
           "  --allow-origin ORIGIN    also let web pages of ORIGIN (scheme://host[:port])\n"
           "                           use the MCP endpoint " MCP_PATH "; repeatable\n"
           "                           (default: loopback origins only)\n"
           "  --change-sets N          change sets remembered for listing and rollback,\n"
           "                           0 to %d; the least recently written are\n"
           "                           forgotten first; 0 remembers none (default %d)\n"
           "  --auto-change-sets N     of those, the ones the server made up for writes\n"
           "                           without X-Change-Set, at most; 0 to %d, so that\n"
           "                           they never push out named ones (default %d)\n"
           "  --help                   print this help and exit\n"
           "  --version                print the version and exit\n",
           OPTIONS_LISTEN_DEFAULT, OPTIONS_THREADS_MAX, default_threads(), SB_HISTORY_MAX,
           SB_HISTORY_DEFAULT, OPTIONS_DATA_DIR_DEFAULT, OPTIONS_CHANGE_SETS_MAX,
           OPTIONS_CHANGE_SETS_DEFAULT, OPTIONS_CHANGE_SETS_MAX, OPTIONS_AUTO_CHANGE_SETS_DEFAULT);
}

/* Prints the one-line complaint about `opt`'s value, and the hint. */
static enum options_result bad_value(int opt, const char *expected, const char *got)
{
    fprintf(stderr, "snapbackd: --%s: expected %s, got \"%s\"\n", option_name(opt), expected, got);
    fprintf(stderr, "try 'snapbackd --help'\n");
    return OPTIONS_EXIT_USAGE;
}

/*
 * Reads a decimal integer of `len` bytes from 0 to `max`.  Returns 0 and sets
 * *out, or -1 on an empty string, a non-digit or a value above `max`.
 */
static int parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned digit = (unsigned)(s[i] - '0');
        if (v > (max - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

static int parse_port(const char *s, uint16_t *port)
{
    uint64_t v;

    if (parse_uint(s, strlen(s), 65535, &v) != 0 || v == 0)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* Parses IPV4:PORT or [IPV6]:PORT into opts->listen and its canonical text. */
static int parse_listen(const char *s, struct options *opts)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon;
    size_t hlen;
    uint16_t port;
    int v6 = s[0] == '[';

    if (v6) {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return -1;
        colon = end + 1;
        s++;
        hlen = (size_t)(end - s);
    } else {
        colon = strchr(s, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= sizeof(host) || parse_port(colon + 1, &port) != 0)
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';

    memset(&opts->listen, 0, sizeof(opts->listen));
    if (v6) {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&opts->listen;
        if (inet_pton(AF_INET6, host, &sa->sin6_addr) != 1)
            return -1;
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(port);
        opts->listen_len = sizeof(*sa);
        inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof(host));
        snprintf(opts->listen_text, sizeof(opts->listen_text), "[%s]:%u", host, port);
    } else {
        struct sockaddr_in *sa = (struct sockaddr_in *)&opts->listen;
        if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
            return -1;
        sa->sin_family = AF_INET;
        sa->sin_port = htons(port);
        opts->listen_len = sizeof(*sa);
        snprintf(opts->listen_text, sizeof(opts->listen_text), "%s:%u", host, port);
    }
    return 0;
}

/* Parses BYTES, BYTESK or BYTESM (either case) into 1..OPTIONS_MAX_BODY_MAX. */
static int parse_size(const char *s, size_t *out)
{
    size_t len = strlen(s);
    uint64_t unit = 1, v;

    if (len > 0 && (s[len - 1] == 'K' || s[len - 1] == 'k'))
        unit = 1024;
    else if (len > 0 && (s[len - 1] == 'M' || s[len - 1] == 'm'))
        unit = 1024 * 1024;
    if (unit != 1)
        len--;
    if (parse_uint(s, len, OPTIONS_MAX_BODY_MAX / unit, &v) != 0 || v == 0)
        return -1;
    *out = (size_t)(v * unit);
    return 0;
}

/* Appends the rule COLLECTION=FIELD to opts->api.keys. */
static enum options_result add_key(struct options *opts, const char *s)
{
    const char *eq = strchr(s, '=');
    struct api_key_rule *keys;
    size_t clen;

    if (eq == NULL || eq[1] == '\0' || !sb_collection_name_valid(s, (size_t)(eq - s)))
        return bad_value(OPT_KEY,
                         "COLLECTION=FIELD with a collection name of 1 to 64 "
                         "characters from [A-Za-z0-9_.-] and a non-empty field",
                         s);
    clen = (size_t)(eq - s);
    for (size_t i = 0; i < opts->api.nkeys; i++) {
        if (strlen(opts->api.keys[i].collection) == clen &&
            memcmp(opts->api.keys[i].collection, s, clen) == 0)
            return bad_value(OPT_KEY, "each collection at most once", s);
    }

    keys = realloc(opts->api.keys, (opts->api.nkeys + 1) * sizeof(*keys));
    if (keys == NULL)
        goto nomem;
    opts->api.keys = keys;
    keys += opts->api.nkeys;
    memcpy(keys->collection, s, clen);
    keys->collection[clen] = '\0';
    keys->field = strdup(eq + 1);
    if (keys->field == NULL)
        goto nomem;
    opts->api.nkeys++;
    return OPTIONS_RUN;

nomem:
    fprintf(stderr, "snapbackd: out of memory while reading --key\n");
    return OPTIONS_EXIT_USAGE;
}

static int parse_fsync(const char *s, sb_fsync *out)
{
    static const char *const names[] = {"always", "batch", "never"};
    static const sb_fsync modes[] = {SB_FSYNC_ALWAYS, SB_FSYNC_BATCH, SB_FSYNC_NEVER};

    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = modes[i];
            return 0;
        }
    }
    return -1;
}

/* Reads "10ms", "1s" or a plain number of milliseconds, 1 ms to 10 s. */
static int parse_interval(const char *s, unsigned *ms)
{
    size_t len = strlen(s);
    uint64_t v, scale = 1;

    if (len > 2 && strcmp(s + len - 2, "ms") == 0)
        len -= 2;
    else if (len > 1 && s[len - 1] == 's')
        len -= 1, scale = 1000;
    if (parse_uint(s, len, 10000, &v) != 0 || v * scale < 1 || v * scale > 10000)
        return -1;
    *ms = (unsigned)(v * scale);
    return 0;
}

/* Reads N followed by s, m, h or d: seconds to days, up to ten years. */
static int parse_duration(const char *s, int64_t *ns)
{
    static const char units[] = "smhd";
    static const uint64_t secs[] = {1, 60, 3600, 86400};
    size_t len = strlen(s);
    const char *u = len > 1 ? strchr(units, s[len - 1]) : NULL;
    uint64_t v;

    if (u == NULL || *u == '\0' || parse_uint(s, len - 1, 3650ull * 86400, &v) != 0 || v == 0 ||
        v * secs[u - units] > 3650ull * 86400)
        return -1;
    *ns = (int64_t)(v * secs[u - units]) * 1000000000;
    return 0;
}

/* Appends an --allow-origin value to opts->origins. */
static enum options_result add_origin(struct options *opts, const char *s)
{
    const char **origins;

    if (!mcp_origin_valid(s))
        return bad_value(OPT_ALLOW_ORIGIN,
                         "an origin such as https://example.com or http://10.0.0.5:3000 "
                         "(http or https, a host, an optional port, no path)",
                         s);
    origins = realloc(opts->origins, (opts->norigins + 1) * sizeof(*origins));
    if (origins == NULL) {
        fprintf(stderr, "snapbackd: out of memory while reading --allow-origin\n");
        return OPTIONS_EXIT_USAGE;
    }
    opts->origins = origins;
    opts->origins[opts->norigins++] = s;
    return OPTIONS_RUN;
}

/* Reads a byte count with an optional K, M or G suffix, up to 1 TiB. */
static int parse_bytes(const char *s, uint64_t *out)
{
    static const char suffixes[] = "KMG";
    const uint64_t most = (uint64_t)1 << 40;
    size_t len = strlen(s);
    uint64_t v, scale = 1;
    const char *suffix = len > 1 ? strchr(suffixes, s[len - 1]) : NULL;

    if (suffix != NULL && *suffix != '\0') {
        scale = (uint64_t)1 << (10 * (1 + (suffix - suffixes)));
        len--;
    }
    /* Bounding the number by most / scale keeps the product from
     * overflowing. */
    if (parse_uint(s, len, most / scale, &v) != 0)
        return -1;
    *out = v * scale;
    return 0;
}

/* Applies one option with its argument; returns OPTIONS_RUN to go on. */
static enum options_result apply(struct options *opts, int opt, const char *arg)
{
    uint64_t v;

    switch (opt) {
    case OPT_LISTEN:
        if (parse_listen(arg, opts) != 0)
            return bad_value(opt, "IPV4:PORT or [IPV6]:PORT with a port from 1 to 65535", arg);
        return OPTIONS_RUN;
    case OPT_THREADS:
        if (parse_uint(arg, strlen(arg), OPTIONS_THREADS_MAX, &v) != 0 || v == 0)
            return bad_value(opt, "an integer from 1 to 256", arg);
        opts->threads = (unsigned)v;
        return OPTIONS_RUN;
    case OPT_HISTORY:
        if (parse_uint(arg, strlen(arg), SB_HISTORY_MAX, &v) != 0 || v == 0)
            return bad_value(opt, "an integer from 1 to 65535", arg);
        opts->api.history = (unsigned)v;
        return OPTIONS_RUN;
    case OPT_KEY:
        return add_key(opts, arg);
    case OPT_MAX_BODY:
        if (parse_size(arg, &opts->api.max_body) != 0)
            return bad_value(opt, "a size from 1 to 1024M bytes (suffixes K and M allowed)", arg);
        return OPTIONS_RUN;
    case OPT_ACCESS_LOG:
        if (arg[0] == '\0')
            return bad_value(opt, "a file name", arg);
        opts->access_log = arg;
        return OPTIONS_RUN;
    case OPT_DATA_DIR:
        if (arg[0] == '\0')
            return bad_value(opt, "a directory name", arg);
        opts->api.data_dir = arg;
        return OPTIONS_RUN;
    case OPT_IN_MEMORY:
        opts->in_memory = 1;
        return OPTIONS_RUN;
    case OPT_FSYNC:
        if (parse_fsync(arg, &opts->api.fsync) != 0)
            return bad_value(opt, "always, batch or never", arg);
        return OPTIONS_RUN;
    case OPT_FSYNC_INTERVAL:
        if (parse_interval(arg, &opts->api.fsync_interval_ms) != 0)
            return bad_value(opt, "a time from 1ms to 10s, such as 10ms or 1s", arg);
        return OPTIONS_RUN;
    case OPT_REPAIR:
        opts->api.repair = 1;
        return OPTIONS_RUN;
    case OPT_RETAIN:
        if (parse_duration(arg, &opts->api.retain_ns) != 0)
            return bad_value(opt, "a duration such as 90s, 15m, 12h or 7d", arg);
        return OPTIONS_RUN;
    case OPT_COMPACT_RATIO:
        if (parse_uint(arg, strlen(arg), 1000, &v) != 0)
            return bad_value(opt, "an integer from 0 to 1000", arg);
        opts->api.compact_ratio = (double)v;
        return OPTIONS_RUN;
    case OPT_COMPACT_MIN:
        if (parse_bytes(arg, &opts->api.compact_min) != 0)
            return bad_value(opt, "a size such as 4096, 512K, 64M or 2G", arg);
        return OPTIONS_RUN;
    case OPT_ALLOW_ORIGIN:
        return add_origin(opts, arg);
    case OPT_CHANGE_SETS:
        if (parse_uint(arg, strlen(arg), OPTIONS_CHANGE_SETS_MAX, &v) != 0)
            return bad_value(opt, "an integer from 0 to 100000000", arg);
        opts->api.max_change_sets = (size_t)v;
        return OPTIONS_RUN;
    case OPT_AUTO_CHANGE_SETS:
        if (parse_uint(arg, strlen(arg), OPTIONS_CHANGE_SETS_MAX, &v) != 0)
            return bad_value(opt, "an integer from 0 to 100000000", arg);
        opts->api.max_auto_change_sets = (size_t)v;
        return OPTIONS_RUN;
    case OPT_HELP:
        print_help();
        return OPTIONS_EXIT_OK;
    case OPT_VERSION:
        printf("snapbackd %s\n", SB_VERSION_STRING);
        return OPTIONS_EXIT_OK;
    default:
        return OPTIONS_EXIT_USAGE;
    }
}

static void set_defaults(struct options *opts)
{
    memset(opts, 0, sizeof(*opts));
    if (parse_listen(OPTIONS_LISTEN_DEFAULT, opts) != 0)
        abort(); /* the default is a constant that parses */
    opts->threads = default_threads();
    opts->api.history = SB_HISTORY_DEFAULT;
    opts->api.max_body = OPTIONS_MAX_BODY_DEFAULT;
    opts->api.data_dir = OPTIONS_DATA_DIR_DEFAULT;
    opts->api.fsync = SB_FSYNC_ALWAYS;
    opts->api.fsync_interval_ms = 10;
    opts->api.compact_ratio = 2;
    opts->api.compact_min = (uint64_t)64 << 20;
    opts->api.max_change_sets = OPTIONS_CHANGE_SETS_DEFAULT;
    opts->api.max_auto_change_sets = OPTIONS_AUTO_CHANGE_SETS_DEFAULT;
}

/* Reports what getopt_long refused: an unknown option or a missing value. */
static enum options_result usage_error(int opt, char **argv)
{
    if (opt == ':')
        fprintf(stderr, "snapbackd: --%s: expected a value\n", option_name(optopt));
    else
        fprintf(stderr, "snapbackd: unknown option \"%s\"\n", argv[optind - 1]);
    fprintf(stderr, "try 'snapbackd --help'\n");
    return OPTIONS_EXIT_USAGE;
}

enum options_result options_parse(int argc, char **argv, struct options *out)
{
    enum options_result res = OPTIONS_RUN;
    int opt;

    set_defaults(out);
    opterr = 0; /* every message below is ours */
    while (res == OPTIONS_RUN && (opt = getopt_long(argc, argv, ":", long_options, NULL)) != -1) {
        if (opt == '?' || opt == ':')
            res = usage_error(opt, argv);
        else
            res = apply(out, opt, optarg);
    }
    if (res == OPTIONS_RUN && out->in_memory)
        out->api.data_dir = NULL;
    if (res == OPTIONS_RUN && optind < argc) {
        fprintf(stderr, "snapbackd: unexpected argument \"%s\"\n", argv[optind]);
        fprintf(stderr, "try 'snapbackd --help'\n");
        res = OPTIONS_EXIT_USAGE;
    }
    if (res != OPTIONS_RUN)
        options_free(out);
    return res;
}

void options_free(struct options *opts)
{
    if (opts == NULL)
        return;
    for (size_t i = 0; i < opts->api.nkeys; i++)
        free(opts->api.keys[i].field);
    free(opts->api.keys);
    opts->api.keys = NULL;
    opts->api.nkeys = 0;
    free(opts->origins);
    opts->origins = NULL;
    opts->norigins = 0;
}
