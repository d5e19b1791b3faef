/*
 * csid.h - the request headers that name who wrote what: change-set ids
 * (X-Change-Set), actors (X-Actor), and fresh change-set ids for writes
 * that name none.
 */
#ifndef SNAPBACKD_CSID_H
#define SNAPBACKD_CSID_H

#include <stddef.h>

/* "auto-" or "undo-", 20 lowercase hexadecimal digits and a NUL. */
#define CSID_NEW_SIZE 26

/* Returns 1 if `s` is 1 to 128 bytes of [A-Za-z0-9._:-], else 0. */
int csid_valid(const char *s, size_t len);

/* Returns 1 if `s` is 1 to 128 bytes of printable ASCII (0x20 to 0x7e). */
int csid_actor_valid(const char *s, size_t len);

/*
 * Writes `prefix` (5 bytes, such as "auto-") and 80 random bits as 20
 * lowercase hexadecimal digits into `out`, NUL-terminated.  The bits come
 * from a generator of the calling thread, seeded once from getrandom(), so
 * threads never share state and no lock is taken.  Thread-safe.
 */
void csid_new(const char *prefix, char out[CSID_NEW_SIZE]);

#endif /* SNAPBACKD_CSID_H */
