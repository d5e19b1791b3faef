/*
 * syncer.c - the durability thread; see syncer.h.
 *
 * sb_store_sync() does the group commit; this thread only keeps the event
 * loops from blocking on it.  `want` only grows, so one pass of the loop
 * covers every request made before it started.
 */
#include "syncer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct syncer {
    sb_store *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wanted;
    uint64_t want; /* under lock */
    int stop;      /* under lock */
    atomic_int failed;
    unsigned n;
    int fds[];
};

static void wake_all(struct syncer *s)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < s->n; i++) {
        /* An eventfd only fails to take a write when its counter is full,
         * and then the worker is due to wake up anyway. */
        ssize_t rc = write(s->fds[i], &one, sizeof(one));
        (void)rc;
    }
}

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;

    sb_thread_register();
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && s->want <= sb_store_synced(s->store))
            pthread_cond_wait(&s->wanted, &s->lock);
        uint64_t target = s->want;
        if (s->stop && target <= sb_store_synced(s->store))
            break;
        pthread_mutex_unlock(&s->lock);

        if (sb_store_sync(s->store, target) != SB_OK)
            atomic_store(&s->failed, 1);
        wake_all(s);

        pthread_mutex_lock(&s->lock);
        if (atomic_load(&s->failed))
            s->want = 0; /* nothing more to sync: answers fail instead */
    }
    pthread_mutex_unlock(&s->lock);
    sb_thread_unregister();
    return NULL;
}

int syncer_start(sb_store *store, const int *wake_fds, unsigned n, struct syncer **out)
{
    struct syncer *s = calloc(1, sizeof(*s) + n * sizeof(int));
    if (s == NULL)
        return -1;
    s->store = store;
    s->n = n;
    for (unsigned i = 0; i < n; i++)
        s->fds[i] = wake_fds[i];
    atomic_init(&s->failed, 0);
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        return -1;
    }
    if (pthread_cond_init(&s->wanted, NULL) != 0 ||
        pthread_create(&s->thread, NULL, syncer_main, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void syncer_want(struct syncer *s, uint64_t lsn)
{
    pthread_mutex_lock(&s->lock);
    if (lsn > s->want && !atomic_load(&s->failed)) {
        s->want = lsn;
        pthread_cond_signal(&s->wanted);
    }
    pthread_mutex_unlock(&s->lock);
}

int syncer_failed(struct syncer *s)
{
    return atomic_load(&s->failed);
}

void syncer_stop(struct syncer *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_cond_signal(&s->wanted);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->wanted);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
