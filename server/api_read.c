/*
 * api_read.c - the read endpoints: a document, as of a revision, its
 * versions, the paginated list of a collection, and the collections.
 *
 * Each handler copies what it needs out of the store inside one short read
 * section; the response is sent after the section has ended.
 *
 * X-Revision of a read that succeeds: the store revision is loaded when
 * the section starts; a version the read then finds may be newer (a write
 * landed in between), and the document's state is then exactly that
 * version's.  So the read reports the larger of the two, a revision at
 * which what it returns was the current state.  A refused read reports the
 * store's revision when it ends, as every error does (api.c).
 */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

static void not_found(struct call *c, const sb_view *v)
{
    if (v->rev != 0)
        reply_error(c, 404, "not_found",
                    "Document \"%.*s\" in \"%.*s\" was deleted at revision "
                    "%llu; it can be restored with a rollback.",
                    (int)c->id.len, c->id.s, (int)c->coll.len, c->coll.s,
                    (unsigned long long)v->rev);
    else
        reply_error(c, 404, "not_found", "No document \"%.*s\" in collection \"%.*s\".",
                    (int)c->id.len, c->id.s, (int)c->coll.len, c->coll.s);
}

/* Finds the collection in a read section; replies 404 when it is absent. */
static sb_coll *find_coll(struct call *c)
{
    sb_coll *coll;
    if (sb_collection_find(c->api->store, c->coll.s, c->coll.len, &coll) == SB_OK)
        return coll;
    return NULL;
}

/* Parses ?as_of=REV; 0 when absent, -1 after replying with an error. */
static int parse_as_of(struct call *c, uint64_t *rev)
{
    const struct uri_str *p = uri_param(&c->uri, "as_of");
    *rev = 0;
    if (p == NULL)
        return 0;
    if (uri_parse_u64(p->s, p->len, UINT64_MAX, rev) != 0 || *rev == 0) {
        reply_error(c, 400, "invalid_parameter", "as_of must be a positive integer revision.");
        return -1;
    }
    return 0;
}

static void reply_version_doc(struct call *c, const sb_view *v, struct buf *b)
{
    buf_append(b, v->payload, v->len);
    add_etag(c, v->rev);
    reply_body(c, 200, b);
}

void handle_get(struct call *c)
{
    static const char *const params[] = {"as_of", NULL};
    uint64_t as_of;
    if (!check_params(c, params) || parse_as_of(c, &as_of) < 0)
        return;

    struct buf b = {0};
    sb_view v = {0};
    sb_status st = SB_NOT_FOUND;
    sb_read_lock();
    uint64_t now = sb_store_revision(c->api->store);
    sb_coll *coll = find_coll(c);
    if (coll != NULL && as_of)
        st = sb_get_as_of(coll, c->id.s, c->id.len, as_of, &v);
    else if (coll != NULL)
        st = sb_get(coll, c->id.s, c->id.len, &v);
    if (st == SB_OK)
        reply_version_doc(c, &v, &b);
    sb_read_unlock();
    if (st == SB_OK)
        set_revision(c, as_of ? as_of : v.rev > now ? v.rev : now);

    if (st == SB_NOT_FOUND)
        not_found(c, &v);
    else if (st == SB_FUTURE)
        reply_error(c, 422, "future_revision", "Revision %llu has not been written yet.",
                    (unsigned long long)as_of);
    else if (st == SB_HISTORY_EXHAUSTED)
        reply_error(c, 410, "history_exhausted",
                    "The state of this document at revision %llu is older "
                    "than the history the server retains.",
                    (unsigned long long)as_of);
    else if (st != SB_OK)
        reply_error(c, 400, "invalid_request", "%s", sb_status_str(st));
}

/* One element of a versions listing. */
static void version_json(struct buf *b, const sb_view *v)
{
    buf_puts(b, "{\"version\":");
    buf_u64(b, v->rev);
    buf_puts(b, ",\"op\":\"");
    buf_puts(b, sb_op_str(v->op));
    buf_puts(b, "\",\"at\":\"");
    buf_time(b, v->time_ns);
    buf_puts(b, "\"");
    if (v->change_set != NULL) {
        buf_puts(b, ",\"change_set\":");
        buf_json_string(b, v->change_set, v->change_set_len);
    }
    if (v->op == SB_OP_ROLLBACK) {
        buf_puts(b, ",\"restored\":");
        buf_u64(b, v->restored);
    }
    buf_puts(b, ",\"doc\":");
    if (v->absent)
        buf_puts(b, "null");
    else
        buf_append(b, v->payload, v->len);
    buf_puts(b, "}");
}

void handle_versions(struct call *c)
{
    static const char *const params[] = {NULL};
    if (!check_params(c, params))
        return;

    size_t cap = c->api->cfg.history, count = 0;
    sb_view *views = malloc(cap * sizeof(*views));
    if (views == NULL) {
        reply_oom(c);
        return;
    }
    struct buf b = {0};
    sb_status st = SB_NOT_FOUND;
    sb_read_lock();
    uint64_t now = sb_store_revision(c->api->store);
    sb_coll *coll = find_coll(c);
    if (coll != NULL)
        st = sb_history(coll, c->id.s, c->id.len, views, cap, &count);
    if (st == SB_OK)
        set_revision(c, count > 0 && views[0].rev > now ? views[0].rev : now);
    if (st == SB_OK) {
        buf_puts(&b, "[");
        for (size_t i = 0; i < count && i < cap; i++) {
            if (i > 0)
                buf_puts(&b, ",");
            version_json(&b, &views[i]);
        }
        buf_puts(&b, "]");
    }
    sb_read_unlock();
    free(views);

    if (st == SB_OK)
        reply_body(c, 200, &b);
    else
        reply_error(c, 404, "not_found", "No document \"%.*s\" in collection \"%.*s\".",
                    (int)c->id.len, c->id.s, (int)c->coll.len, c->coll.s);
}

void handle_version(struct call *c)
{
    static const char *const params[] = {NULL};
    if (!check_params(c, params))
        return;

    uint64_t rev = c->path_rev;
    struct buf b = {0};
    sb_view v;
    sb_status st = SB_NOT_FOUND;
    sb_read_lock();
    uint64_t now = sb_store_revision(c->api->store);
    sb_coll *coll = find_coll(c);
    if (coll != NULL)
        st = sb_version_get(coll, c->id.s, c->id.len, rev, &v);
    if (st == SB_OK)
        version_json(&b, &v);
    sb_read_unlock();
    if (st == SB_OK)
        set_revision(c, v.rev > now ? v.rev : now);

    if (st == SB_OK)
        reply_body(c, 200, &b);
    else
        reply_error(c, 404, "version_not_found", "Document \"%.*s\" has no retained version %llu.",
                    (int)c->id.len, c->id.s, (unsigned long long)rev);
}

/* ---------------------------------------------------------------------- */

struct page {
    struct buf body;
    size_t limit, count;
    int more;
    struct buf last_id; /* id of the last document on the page */
};

static int on_list_doc(void *ctx, const sb_view *doc)
{
    struct page *p = ctx;
    if (p->count == p->limit) {
        p->more = 1;
        return 1;
    }
    if (p->count++ > 0)
        buf_puts(&p->body, ",");
    buf_append(&p->body, doc->payload, doc->len);
    p->last_id.len = 0;
    buf_append(&p->last_id, doc->id, doc->id_len);
    return 0;
}

static int parse_list_params(struct call *c, size_t *limit, const struct uri_str **after)
{
    static const char *const params[] = {"limit", "after", "as_of", NULL};
    if (!check_params(c, params))
        return 0;

    const struct uri_str *l = uri_param(&c->uri, "limit");
    uint64_t v = LIST_LIMIT_DEFAULT;
    if (l != NULL && (uri_parse_u64(l->s, l->len, LIST_LIMIT_MAX, &v) != 0 || v == 0)) {
        reply_error(c, 400, "invalid_parameter", "limit must be an integer from 1 to %d.",
                    LIST_LIMIT_MAX);
        return 0;
    }
    *limit = (size_t)v;
    *after = uri_param(&c->uri, "after");
    if (*after != NULL &&
        (!sb_id_valid((*after)->s, (*after)->len) || !utf8_valid((*after)->s, (*after)->len))) {
        reply_error(c, 400, "invalid_parameter", "after must be a document id.");
        return 0;
    }
    return 1;
}

/* The next page shows the same snapshot: its link carries the revision. */
static void add_next_link(struct call *c, const struct page *p, uint64_t rev)
{
    struct buf link = {0};
    buf_puts(&link, "</");
    buf_percent_encode(&link, c->coll.s, c->coll.len);
    buf_printf(&link, "?limit=%zu&after=", p->limit);
    buf_percent_encode(&link, p->last_id.data, p->last_id.len);
    buf_printf(&link, "&as_of=%llu>; rel=\"next\"", (unsigned long long)rev);
    if (!link.oom)
        add_header(c, "link", link.data);
    buf_free(&link);
}

/* Replies to a listing the store refused; `rev` is the snapshot asked for. */
static void list_refused(struct call *c, sb_status st, uint64_t rev)
{
    switch (st) {
    case SB_NOT_FOUND:
        reply_error(c, 400, "invalid_cursor",
                    "after must be the id of a document of this collection, "
                    "as returned by a previous page.");
        break;
    case SB_HISTORY_EXHAUSTED:
        reply_error(c, 410, "history_exhausted",
                    "The state of this collection at revision %llu is older than the history "
                    "the server retains.",
                    (unsigned long long)rev);
        break;
    case SB_FUTURE:
        reply_error(c, 422, "future_revision", "Revision %llu has not been written yet.",
                    (unsigned long long)rev);
        break;
    default:
        reply_store_error(c, st);
    }
}

/*
 * GET /{coll}: one page of the collection as it was at one revision, the
 * current one (loaded once, here) or ?as_of.  Every page of a listing is
 * read at the revision of its first, so the pages together show one state
 * of the collection, never part of a batch.
 */
void handle_list(struct call *c)
{
    size_t limit;
    const struct uri_str *after;
    uint64_t rev;
    if (!parse_list_params(c, &limit, &after) || parse_as_of(c, &rev) < 0)
        return;

    struct page p = {.limit = limit};
    sb_status st = SB_OK;
    buf_puts(&p.body, "[");
    sb_read_lock();
    uint64_t now = sb_store_revision(c->api->store);
    if (rev == 0)
        rev = now;
    sb_coll *coll = find_coll(c);
    if (rev > now)
        st = SB_FUTURE;
    else if (coll != NULL && rev > 0)
        st =
            sb_scan_at(coll, rev, after ? after->s : NULL, after ? after->len : 0, on_list_doc, &p);
    else if (after != NULL)
        st = SB_NOT_FOUND;
    sb_read_unlock();
    buf_puts(&p.body, "]");

    if (st != SB_OK) {
        list_refused(c, st, rev);
    } else {
        set_revision(c, rev);
        if (p.more)
            add_next_link(c, &p, rev);
        reply_body(c, 200, &p.body);
    }
    buf_free(&p.body);
    buf_free(&p.last_id);
}

/* ---------------------------------------------------------------------- */

struct names {
    struct uri_str *v; /* points into the store: valid while it is open */
    size_t n, cap;
    int oom;
};

static int on_collection(void *ctx, const char *name, size_t len)
{
    struct names *ns = ctx;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        struct uri_str *v = realloc(ns->v, cap * sizeof(*v));
        if (v == NULL) {
            ns->oom = 1;
            return 1;
        }
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n].s = name;
    ns->v[ns->n].len = len;
    ns->n++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const struct uri_str *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* GET /_collections: the names, sorted.  A collection is never removed, so
 * its name stays valid after the read section. */
void handle_collections(struct call *c)
{
    static const char *const params[] = {NULL};
    struct names ns = {0};
    struct buf b = {0};

    if (!check_params(c, params))
        return;
    sb_read_lock();
    sb_collection_each(c->api->store, on_collection, &ns);
    sb_read_unlock();
    if (ns.oom) {
        free(ns.v);
        reply_oom(c);
        return;
    }
    if (ns.n > 1)
        qsort(ns.v, ns.n, sizeof(*ns.v), by_name);
    buf_puts(&b, "[");
    for (size_t i = 0; i < ns.n; i++) {
        if (i > 0)
            buf_puts(&b, ",");
        buf_json_string(&b, ns.v[i].s, ns.v[i].len);
    }
    buf_puts(&b, "]");
    free(ns.v);
    reply_body(c, 200, &b);
}
