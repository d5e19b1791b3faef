/*
 * main.c - snapbackd: reads the command line, builds the API over a new
 * store, serves it until SIGINT or SIGTERM, then drains and exits 0.
 *
 * Signals.  SIGINT and SIGTERM are blocked before any thread starts, so
 * every worker inherits the mask and only sigwait() below ever receives
 * them; no handler runs in a signal context.  SIGPIPE is ignored: a client
 * that goes away surfaces as a write error on its connection instead.
 *
 * Exit status: 0 after a signal, 1 when the server cannot start (address in
 * use, access log not writable, out of memory), 2 on a bad command line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "http.h"
#include "mcp.h"
#include "options.h"
#include "snapback.h"

/* Writes `s` as a logfmt value: bare when that is unambiguous, else quoted. */
static void put_value(FILE *f, const char *s)
{
    if (s[0] != '\0' && strpbrk(s, " \"\\\t\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc((unsigned char)*s < 0x20 ? '?' : *s, f);
    }
    fputc('"', f);
}

/*
 * Returns the start line, formatted now because api_new() takes the key
 * rules it lists; logged in one write once the server listens, so that it
 * never interleaves with a worker's line.  NULL when out of memory.
 */
static char *format_started(const struct options *opts)
{
    char *line = NULL, *keys = NULL;
    size_t line_len = 0, keys_len = 0;
    FILE *f;

    if ((f = open_memstream(&keys, &keys_len)) == NULL)
        return NULL;
    for (size_t i = 0; i < opts->api.nkeys; i++)
        fprintf(f, "%s%s=%s", i ? "," : "", opts->api.keys[i].collection, opts->api.keys[i].field);
    fclose(f);

    if (keys != NULL && (f = open_memstream(&line, &line_len)) != NULL) {
        fprintf(f,
                "level=info module=main msg=\"snapbackd started\" version=%s listen=%s "
                "threads=%u history=%u max_body=%zu change_sets=%zu auto_change_sets=%zu "
                "keys=",
                SB_VERSION_STRING, opts->listen_text, opts->threads, opts->api.history,
                opts->api.max_body, opts->api.max_change_sets, opts->api.max_auto_change_sets);
        put_value(f, keys);
        if (opts->api.data_dir != NULL) {
            static const char *const modes[] = {"always", "batch", "never"};
            fputs(" data_dir=", f);
            put_value(f, opts->api.data_dir);
            fprintf(f, " fsync=%s", modes[opts->api.fsync]);
            if (opts->api.fsync == SB_FSYNC_BATCH)
                fprintf(f, " fsync_interval_ms=%u", opts->api.fsync_interval_ms);
            fprintf(f, " compact_ratio=%g compact_min=%llu", opts->api.compact_ratio,
                    (unsigned long long)opts->api.compact_min);
            if (opts->api.retain_ns > 0)
                fprintf(f, " retain_s=%lld", (long long)(opts->api.retain_ns / 1000000000));
        } else {
            fputs(" data_dir=none", f);
        }
        if (opts->access_log != NULL) {
            fputs(" access_log=", f);
            put_value(f, opts->access_log);
        }
        for (size_t i = 0; i < opts->norigins; i++) {
            fputs(" allow_origin=", f);
            put_value(f, opts->origins[i]);
        }
        fputc('\n', f);
        fclose(f);
    }
    free(keys);
    return line;
}

/* The store's messages (recovery), one line each on stderr. */
static void on_store_log(void *ctx, sb_log_level level, const char *msg)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    (void)ctx;
    fprintf(stderr, "level=%s module=store msg=", names[level <= SB_LOG_DEBUG ? level : 0]);
    put_value(stderr, msg);
    fputc('\n', stderr);
}

static double elapsed_ms(const struct timespec *since)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) * 1e3 +
           (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

/* Serves until SIGINT or SIGTERM; returns the process's exit status. */
static int serve(struct options *opts, const sigset_t *stop_signals)
{
    struct http_config http = {
        .addr = (const struct sockaddr *)&opts->listen,
        .addr_len = opts->listen_len,
        .addr_text = opts->listen_text,
        .threads = opts->threads,
        .max_body = opts->api.max_body,
        .access_log = opts->access_log,
    };
    struct mcp_config mcp_cfg = {.origins = opts->origins, .norigins = opts->norigins};
    struct http_server *srv;
    struct timespec stop_at;
    struct mcp *mcp;
    struct api *api;
    char *started;
    size_t cut;
    int sig;

    started = format_started(opts);
    if (started == NULL) {
        fprintf(stderr, "level=error module=main msg=\"out of memory\"\n");
        return 1;
    }
    opts->api.log = on_store_log;
    sb_status st = api_new(&opts->api, &api);
    if (st != SB_OK) {
        fprintf(stderr, "level=error module=main msg=\"cannot open the store\" data_dir=");
        put_value(stderr, opts->api.data_dir ? opts->api.data_dir : "none");
        fputs(" error=", stderr);
        put_value(stderr, sb_status_str(st));
        fputc('\n', stderr);
        free(started);
        return 1;
    }
    opts->api.keys = NULL; /* api_new() took them */
    opts->api.nkeys = 0;
    if (mcp_new(api, &mcp_cfg, &mcp) != 0) {
        fprintf(stderr, "level=error module=main msg=\"cannot set up the MCP endpoint\"\n");
        api_free(api);
        free(started);
        return 1;
    }
    http.mcp = mcp;
    if (http_server_start(&http, api, &srv) != 0) {
        mcp_free(mcp);
        api_free(api);
        free(started);
        return 1;
    }
    fputs(started, stderr);
    free(started);

    if (sigwait(stop_signals, &sig) != 0)
        sig = SIGTERM;
    clock_gettime(CLOCK_MONOTONIC, &stop_at);
    cut = http_server_stop(srv);
    mcp_free(mcp);
    api_free(api);
    fprintf(stderr,
            "level=info module=main msg=\"snapbackd stopped\" signal=%s drain_ms=%.0f "
            "connections_cut=%zu\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", elapsed_ms(&stop_at), cut);
    return 0;
}

int main(int argc, char **argv)
{
    struct options opts;
    sigset_t stop_signals;
    int status;

    switch (options_parse(argc, argv, &opts)) {
    case OPTIONS_EXIT_OK:
        return 0;
    case OPTIONS_EXIT_USAGE:
        return 2;
    case OPTIONS_RUN:
        break;
    }

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    status = serve(&opts, &stop_signals);
    options_free(&opts); /* holds the keys only if api_new() failed */
    return status;
}
