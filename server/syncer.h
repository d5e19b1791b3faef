/*
 * syncer.h - a thread that makes writes durable while the event loops go
 * on serving.
 *
 * A worker that has answered a write but must not send the answer before
 * the write's log position is synced asks the syncer for that position and
 * parks the answer.  The syncer syncs (one sync for every position asked so
 * far: group commit) and then wakes every worker through its eventfd; each
 * sends the answers the sync covered.
 */
#ifndef SNAPBACKD_SYNCER_H
#define SNAPBACKD_SYNCER_H

#include <stdint.h>

#include "snapback.h"

struct syncer;

/* Starts the thread.  `wake_fds` (eventfds, `n` of them, owned by the
 * caller) are written after each sync.  Returns 0 or -1. */
int syncer_start(sb_store *store, const int *wake_fds, unsigned n, struct syncer **out);

/* Asks for the log to be durable up to `lsn`; does not block. */
void syncer_want(struct syncer *s, uint64_t lsn);

/* Whether a sync failed: parked answers then become 503s. */
int syncer_failed(struct syncer *s);

/* Finishes the pending syncs and stops the thread.  NULL is ignored. */
void syncer_stop(struct syncer *s);

#endif /* SNAPBACKD_SYNCER_H */
