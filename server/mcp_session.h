/*
 * mcp_session.h - the sessions of MCP clients that use a protocol revision
 * with an initialize handshake (2025-03-26 to 2025-11-25).
 *
 * A session remembers what the handshake settled: the protocol revision and
 * the client's name.  The table is bounded: once it holds `cap` sessions,
 * opening one more ends the least recently used, whose client then gets 404
 * and must initialize again, as the transport specifies.  Sessions live in
 * memory only; a restart ends them all.
 *
 * Threads: every function may be called from any thread; one mutex guards
 * the table, held only for a lookup or an insertion.
 */
#ifndef SNAPBACKD_MCP_SESSION_H
#define SNAPBACKD_MCP_SESSION_H

#include <stddef.h>

/* "mcp-" and 32 lowercase hex digits from getrandom(): valid as a session
 * id (visible ASCII) and as a change-set id ([A-Za-z0-9._:-]). */
#define MCP_SESSION_ID_LEN 36
#define MCP_ACTOR_MAX      128

struct mcp_sessions;

/* What a session remembers. */
struct mcp_session {
    char id[MCP_SESSION_ID_LEN + 1];
    int version;                   /* enum mcp_version */
    char actor[MCP_ACTOR_MAX + 1]; /* the client's name, "" when it gave none */
};

/* Creates a table of at most `cap` (>= 1) sessions.  Returns 0, or -1 when
 * out of memory. */
int mcp_sessions_new(size_t cap, struct mcp_sessions **out);

/* Frees the table and every session in it; `s` may be NULL. */
void mcp_sessions_free(struct mcp_sessions *s);

/*
 * Opens a session for `version` and `actor` (NUL-terminated, at most
 * MCP_ACTOR_MAX bytes, copied) under a fresh random id, written to
 * out->id along with the rest.  Returns 0, or -1 when the system has no
 * randomness to give or memory is short.
 */
int mcp_sessions_open(struct mcp_sessions *s, int version, const char *actor,
                      struct mcp_session *out);

/* Copies the session `id` (`len` bytes) to *out and marks it used.
 * Returns 1, or 0 when there is no such session (never, ended, evicted). */
int mcp_sessions_find(struct mcp_sessions *s, const char *id, size_t len, struct mcp_session *out);

/* Ends the session `id`.  Returns 1, or 0 when there was none. */
int mcp_sessions_close(struct mcp_sessions *s, const char *id, size_t len);

/* The number of open sessions (for tests). */
size_t mcp_sessions_count(struct mcp_sessions *s);

#endif /* SNAPBACKD_MCP_SESSION_H */
