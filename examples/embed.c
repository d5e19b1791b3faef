/*
 * embed.c - a program that embeds libsnapback: it writes a document,
 * overwrites it by mistake, rolls the mistake back and prints what the
 * collection holds.  docs/embedding.md walks through it.
 */
#include <snapback.h>

#include <stdio.h>
#include <string.h>

static int print_doc(void *ctx, const sb_view *doc)
{
    (void)ctx;
    printf("%.*s rev=%llu %.*s\n", (int)doc->id_len, doc->id,
           (unsigned long long)doc->rev, (int)doc->len,
           (const char *)doc->payload);
    return 0; /* go on */
}

static int fail(const char *what, sb_status st)
{
    fprintf(stderr, "%s: %s\n", what, sb_status_str(st));
    return 1;
}

int main(void)
{
    const char *id = "jose@email.com";
    const char *v1 = "{\"name\":\"José\",\"email\":\"jose@email.com\"}";
    const char *v2 = "{\"name\":\"José Filho\",\"email\":\"jose@email.com\"}";
    sb_store *store;
    sb_coll *users;
    sb_status st;

    sb_thread_register(); /* once per thread that uses the library */
    if ((st = sb_store_open(NULL, &store)) != SB_OK)
        return fail("open", st);
    if ((st = sb_collection_open(store, "users", 5, &users)) != SB_OK)
        return fail("collection", st);

    /* Two writes, then undo the second: a third version, equal to the
     * first, is appended; nothing is erased. */
    if ((st = sb_create(users, id, strlen(id), v1, strlen(v1), NULL, NULL)) !=
        SB_OK)
        return fail("create", st);
    if ((st = sb_put(users, id, strlen(id), v2, strlen(v2), NULL, NULL)) !=
        SB_OK)
        return fail("put", st);
    sb_result res;
    if ((st = sb_rollback_steps(users, id, strlen(id), 1, NULL, &res)) != SB_OK)
        return fail("rollback", st);
    printf("rolled back to revision %llu as revision %llu\n",
           (unsigned long long)res.restored, (unsigned long long)res.rev);

    /* Views point into the store: use them inside the read section. */
    sb_read_lock();
    st = sb_scan(users, NULL, 0, print_doc, NULL);
    sb_read_unlock();
    if (st != SB_OK)
        return fail("scan", st);

    sb_store_close(store);
    sb_thread_unregister();
    return 0;
}
