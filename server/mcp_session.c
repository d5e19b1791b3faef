/*
 * mcp_session.c - a bounded table of MCP sessions with least-recently-used
 * eviction; see mcp_session.h.
 *
 * Layout: a chained hash table on the session id, and a doubly linked list
 * from the most to the least recently used.  Ids are random, so clients
 * cannot aim at one chain.  The mutex covers both structures.
 */
#include "mcp_session.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct node {
    struct mcp_session s;
    struct node *chain;         /* next in the same bucket */
    struct node *newer, *older; /* the use list */
};

struct mcp_sessions {
    pthread_mutex_t lock;
    size_t cap, count, nbuckets; /* nbuckets: a power of two */
    struct node **buckets;
    struct node *newest, *oldest;
};

static size_t hash(const char *id, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    return (size_t)h;
}

int mcp_sessions_new(size_t cap, struct mcp_sessions **out)
{
    struct mcp_sessions *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    s->cap = cap ? cap : 1;
    s->nbuckets = 16;
    while (s->nbuckets < s->cap * 2)
        s->nbuckets *= 2;
    s->buckets = calloc(s->nbuckets, sizeof(*s->buckets));
    if (s->buckets == NULL || pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s->buckets);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void mcp_sessions_free(struct mcp_sessions *s)
{
    if (s == NULL)
        return;
    for (struct node *n = s->newest, *next; n != NULL; n = next) {
        next = n->older;
        free(n);
    }
    pthread_mutex_destroy(&s->lock);
    free(s->buckets);
    free(s);
}

/* The list and chain operations below run with the lock held. */

static void unlink_use(struct mcp_sessions *s, struct node *n)
{
    if (n->newer)
        n->newer->older = n->older;
    else
        s->newest = n->older;
    if (n->older)
        n->older->newer = n->newer;
    else
        s->oldest = n->newer;
    n->newer = n->older = NULL;
}

static void push_newest(struct mcp_sessions *s, struct node *n)
{
    n->older = s->newest;
    n->newer = NULL;
    if (s->newest)
        s->newest->newer = n;
    s->newest = n;
    if (s->oldest == NULL)
        s->oldest = n;
}

/* Returns the link that points at the session `id`, or at the end of its
 * chain when there is none. */
static struct node **slot(struct mcp_sessions *s, const char *id, size_t len)
{
    struct node **p = &s->buckets[hash(id, len) & (s->nbuckets - 1)];
    while (*p != NULL && !(len == MCP_SESSION_ID_LEN && memcmp((*p)->s.id, id, len) == 0))
        p = &(*p)->chain;
    return p;
}

static void remove_node(struct mcp_sessions *s, struct node *n)
{
    struct node **p = slot(s, n->s.id, MCP_SESSION_ID_LEN);
    *p = n->chain;
    unlink_use(s, n);
    s->count--;
    free(n);
}

static int random_id(char id[MCP_SESSION_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bytes[16];
    size_t got = 0;

    while (got < sizeof(bytes)) {
        ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    memcpy(id, "mcp-", 4);
    for (size_t i = 0; i < sizeof(bytes); i++) {
        id[4 + 2 * i] = hex[bytes[i] >> 4];
        id[5 + 2 * i] = hex[bytes[i] & 15];
    }
    id[MCP_SESSION_ID_LEN] = '\0';
    return 0;
}

int mcp_sessions_open(struct mcp_sessions *s, int version, const char *actor,
                      struct mcp_session *out)
{
    struct node *n = calloc(1, sizeof(*n));
    if (n == NULL || random_id(n->s.id) != 0) {
        free(n);
        return -1;
    }
    n->s.version = version;
    size_t len = strnlen(actor, MCP_ACTOR_MAX);
    memcpy(n->s.actor, actor, len);
    n->s.actor[len] = '\0';
    *out = n->s;

    pthread_mutex_lock(&s->lock);
    if (s->count == s->cap)
        remove_node(s, s->oldest);
    struct node **p = slot(s, n->s.id, MCP_SESSION_ID_LEN);
    /* 128 random bits do not repeat; were they to, the old session goes. */
    if (*p != NULL) {
        remove_node(s, *p);
        p = slot(s, n->s.id, MCP_SESSION_ID_LEN);
    }
    *p = n;
    push_newest(s, n);
    s->count++;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int mcp_sessions_find(struct mcp_sessions *s, const char *id, size_t len, struct mcp_session *out)
{
    int found = 0;

    pthread_mutex_lock(&s->lock);
    struct node *n = *slot(s, id, len);
    if (n != NULL) {
        unlink_use(s, n);
        push_newest(s, n);
        *out = n->s;
        found = 1;
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

int mcp_sessions_close(struct mcp_sessions *s, const char *id, size_t len)
{
    int found = 0;

    pthread_mutex_lock(&s->lock);
    struct node *n = *slot(s, id, len);
    if (n != NULL) {
        remove_node(s, n);
        found = 1;
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

size_t mcp_sessions_count(struct mcp_sessions *s)
{
    pthread_mutex_lock(&s->lock);
    size_t n = s->count;
    pthread_mutex_unlock(&s->lock);
    return n;
}
