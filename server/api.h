/*
 * api.h - snapbackd's REST API below the socket: routing, percent-decoding,
 * query and body parsing, JSON validation and the handlers.
 *
 * Nothing here knows about the HTTP library: a request arrives as plain
 * bytes (struct api_req) and leaves as a status, headers and a JSON body
 * (struct api_resp).  That keeps the whole of the request handling testable
 * and fuzzable without a socket.
 *
 * Threads: api_handle() may be called from many threads at once, each
 * registered with sb_thread_register(), outside any read section.
 */
#ifndef SNAPBACKD_API_H
#define SNAPBACKD_API_H

#include <stddef.h>

#include "snapback.h"

/* `--key COLLECTION=FIELD`: the JSON field that holds a document's id. */
struct api_key_rule {
    char collection[SB_COLLECTION_MAX + 1];
    char *field; /* owned */
};

struct api_config {
    unsigned history;          /* versions kept per document */
    size_t max_body;           /* bytes; larger bodies get 413 */
    struct api_key_rule *keys; /* owned; `nkeys` entries */
    size_t nkeys;

    /* Persistence: NULL keeps the store in memory only. */
    const char *data_dir;
    sb_fsync fsync;
    unsigned fsync_interval_ms;
    int repair;
    int64_t retain_ns;           /* 0: keep versions until the ring drops them */
    double compact_ratio;        /* 0: no automatic compaction */
    uint64_t compact_min;        /* bytes */
    sb_log_fn log;               /* the store's rare messages (recovery), may be NULL */
    size_t max_change_sets;      /* change sets remembered; 0 keeps none */
    size_t max_auto_change_sets; /* of those, made up for a request, at most */
};

struct api;

/* A request, as the HTTP layer received it.  Nothing is NUL-terminated. */
struct api_req {
    const char *method;
    size_t method_len;
    const char *target; /* request target: path and optional ?query, raw */
    size_t target_len;
    const char *content_type; /* NULL when the header is absent */
    size_t content_type_len;
    const char *if_match; /* NULL when absent */
    size_t if_match_len;
    const char *if_none_match; /* NULL when absent */
    size_t if_none_match_len;
    const char *change_set; /* X-Change-Set, NULL when absent */
    size_t change_set_len;
    const char *actor; /* X-Actor, NULL when absent */
    size_t actor_len;
    const char *idempotency_key; /* Idempotency-Key, NULL when absent */
    size_t idempotency_key_len;
    const char *body; /* NULL when the request had no body at all */
    size_t body_len;
};

#define API_MAX_HEADERS 8

struct api_header {
    const char *name; /* static string */
    char *value;      /* owned, NUL-terminated */
};

/* A response: a status, a few headers, and a JSON body (maybe empty). */
struct api_resp {
    int status;
    const char *reason;
    size_t nheaders;
    struct api_header headers[API_MAX_HEADERS];
    char *body; /* owned; "application/json" when body_len > 0 */
    size_t body_len;
    /* Non-zero for a write: its log position.  The response must not be
     * sent before sb_store_synced(api_store(api)) reaches it (or, if the
     * sync fails, must be replaced by an error): writes do not wait for
     * their sync themselves, so that an event loop keeps serving. */
    uint64_t lsn;
};

/*
 * Creates the API over a store opened as `cfg` says (rebuilt from its data
 * directory, if it has one).  Takes ownership of cfg->keys on success.
 * Returns SB_OK or what sb_store_open() returned.
 */
sb_status api_new(const struct api_config *cfg, struct api **out);
void api_free(struct api *api);

/* The store the API serves, for waiting on write durability. */
sb_store *api_store(struct api *api);

/* Handles one request; always fills `resp`, which api_resp_free() frees. */
void api_handle(struct api *api, const struct api_req *req, struct api_resp *resp);
void api_resp_free(struct api_resp *resp);

/*
 * Fills `resp` with the JSON error the server sends for `status` when the
 * HTTP layer itself refuses a request (413 on an announced length above the
 * limit, 400 on malformed framing).  `code` is the snake_case error code.
 * `resp` must be zeroed or filled by api_handle(): a body it holds is freed.
 */
void api_error(struct api_resp *resp, int status, const char *code, const char *message);

/*
 * Adds the X-Revision header (the store's revision now) to a response that
 * api_handle() did not build: the errors the HTTP layer sends by itself.
 * Registered thread.
 */
void api_add_revision(struct api *api, struct api_resp *resp);

#endif /* SNAPBACKD_API_H */
