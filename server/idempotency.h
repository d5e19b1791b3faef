/*
 * idempotency.h - answers remembered by Idempotency-Key, so that a client
 * retrying a write (after a timeout, a dropped connection) gets the answer
 * of the first attempt instead of writing twice.
 *
 * The table lives in the server's memory only: a restart forgets every
 * key, and a retry that reaches the restarted server writes again.  Keys
 * are also forgotten after a window (24 h in snapbackd), and the oldest
 * first when the table is full (a number of keys and a number of bytes).
 *
 * Concurrency: all functions may be called from any number of threads at
 * once; one mutex guards the table, held for lookups and for copying one
 * answer, never while a request is handled.  A key is marked in flight
 * from idem_begin() to idem_finish(); a second request with it meanwhile is
 * told so (IDEM_IN_FLIGHT) instead of waiting, because the caller is an
 * event loop that must not block.
 */
#ifndef SNAPBACKD_IDEMPOTENCY_H
#define SNAPBACKD_IDEMPOTENCY_H

#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define IDEM_KEY_MAX 128

struct idem;

/* What identifies a request for the purpose of a replay: a 128-bit hash
 * of its method, target, X-Change-Set header and body. */
struct idem_fp {
    uint64_t lo, hi;
};

/*
 * Creates an empty table that keeps at most `max_keys` answers taking at
 * most `max_bytes` bytes, each for less than `window_ns` after it was
 * stored (0 keeps none).  The buckets are allocated on first use.  Returns
 * NULL when out of memory.
 */
struct idem *idem_new(size_t max_keys, size_t max_bytes, int64_t window_ns);

/* Frees the table and every answer in it.  No call may be in progress. */
void idem_free(struct idem *t);

/* Returns 1 if `key` is 1 to 128 bytes of printable ASCII, else 0. */
int idem_key_valid(const char *key, size_t len);

/* Computes the fingerprint of `req`. */
void idem_fingerprint(const struct api_req *req, struct idem_fp *out);

enum idem_outcome {
    IDEM_FIRST,     /* new key, now in flight: handle the request, then idem_finish() */
    IDEM_REPLAY,    /* *replay holds a copy of the remembered answer */
    IDEM_REUSED,    /* the key was used for a request with another fingerprint */
    IDEM_IN_FLIGHT, /* a request with this key and fingerprint is being handled */
    IDEM_NOMEM      /* nothing changed */
};

/*
 * Looks up `key` (valid, per idem_key_valid()).  On IDEM_REPLAY, `replay`
 * (which must hold nothing) receives a copy of the answer, its headers,
 * body and log position included, to free with api_resp_free().  On
 * IDEM_FIRST the caller must call idem_finish() with the same key.
 */
enum idem_outcome idem_begin(struct idem *t, const char *key, size_t len, const struct idem_fp *fp,
                             struct api_resp *replay);

/*
 * Ends the request that idem_begin() let through with IDEM_FIRST: a 2xx
 * answer is copied and remembered, anything else forgotten together with
 * the key, so that a retry is handled afresh.  If the copy cannot be made
 * the key is forgotten too.
 */
void idem_finish(struct idem *t, const char *key, size_t len, const struct api_resp *resp);

#endif /* SNAPBACKD_IDEMPOTENCY_H */
