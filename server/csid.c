/*
 * csid.c - validation of change-set ids and actors, and fresh ids.
 *
 * A fresh id only has to be unlikely to collide with any other change set
 * the store remembers: 80 bits drawn from a per-thread splitmix64 sequence
 * whose starting point comes from the kernel.  Two threads start at
 * independent random points of the 2^64-long sequence, so the stretches
 * they draw overlap with negligible probability.
 */
#include "csid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "snapback.h"

int csid_valid(const char *s, size_t len)
{
    if (len == 0 || len > SB_CHANGE_SET_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

int csid_actor_valid(const char *s, size_t len)
{
    if (len == 0 || len > SB_ACTOR_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    }
    return 1;
}

static _Thread_local uint64_t rng_state;
static _Thread_local int rng_seeded;

/* Seeds from the kernel; if getrandom() is unavailable (a kernel before
 * 3.17), from the clock and the thread, which still keeps threads apart. */
static void rng_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        seed ^= (uint64_t)gettid() << 32;
        seed ^= (uint64_t)(uintptr_t)&rng_state;
    }
    rng_state = seed;
    rng_seeded = 1;
}

/* splitmix64: a Weyl sequence passed through a 64-bit finaliser. */
static uint64_t rng_next(void)
{
    if (!rng_seeded)
        rng_seed();
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void csid_new(const char *prefix, char out[CSID_NEW_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    uint64_t hi = rng_next(), lo = rng_next();

    memcpy(out, prefix, 5);
    for (int i = 0; i < 4; i++) /* 16 bits of `hi` */
        out[5 + i] = hex[(hi >> (12 - 4 * i)) & 15];
    for (int i = 0; i < 16; i++) /* 64 bits of `lo` */
        out[9 + i] = hex[(lo >> (60 - 4 * i)) & 15];
    out[25] = '\0';
}
