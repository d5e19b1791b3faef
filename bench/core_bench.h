/*
 * core_bench.h - the benchmark bodies of libsnapback, in C, and the fixture
 * they share.  shim.cc registers each case with Google Benchmark and drives
 * it; nothing here knows about C++.
 *
 * A case's run() performs n operations and returns how many items it
 * processed (operations, or documents for a scan); the shim times the whole
 * call.  prepare() runs untimed before run(), with the same n, for cases
 * that need n fresh documents (create, delete, rollback).
 *
 * A case with manual_time set builds what each operation needs inside
 * run() (a change set to undo, say), times only the operation itself, and
 * reports the sum through bench_env_timed_ns(); the shim reports that
 * time instead of the call's.
 */
#ifndef SB_CORE_BENCH_H
#define SB_CORE_BENCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct bench_env;

struct bench_case {
    const char *name;
    /* Untimed; thread 0 only, before run().  NULL if not needed.
     * Returns 0, or -1 if the fixture could not be built. */
    int (*prepare)(struct bench_env *env, uint64_t n);
    /* Timed: n operations on behalf of thread `thread`. */
    uint64_t (*run)(struct bench_env *env, unsigned thread, uint64_t n);
    unsigned threads; /* 1, or 2 to run it with 1 and then 2 threads */
    int manual_time;  /* 1: run() times itself; see above */
};

/* The cases, in the order they should run; *count receives their number. */
const struct bench_case *bench_cases(unsigned *count);

/* Builds the shared fixture (stores, 100,000 ids, the bare hash table).
 * Call from a thread that called bench_thread_enter().  NULL on failure. */
struct bench_env *bench_env_open(void);
void bench_env_close(struct bench_env *env);

/* Writes so far that did not return SB_OK: a benchmark that measured
 * failures is not a measurement. */
uint64_t bench_env_errors(const struct bench_env *env);

/* Nanoseconds the last run() of a manual_time case measured. */
uint64_t bench_env_timed_ns(const struct bench_env *env);

/* Registers the calling thread with snapback and with the bare baseline's
 * RCU flavour (once, whichever already did it); leave undoes both. */
void bench_thread_enter(void);
void bench_thread_leave(void);

#ifdef __cplusplus
}
#endif

#endif /* SB_CORE_BENCH_H */
