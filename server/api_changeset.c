/*
 * api_changeset.c - the change-set endpoints:
 *   GET  /_changesets                 recent change sets, newest first
 *   GET  /_changesets/{id}            one change set and the documents it wrote
 *   POST /_changesets/{id}/rollback   undo it, as a new change set
 *
 * The store runs the callbacks below with its write lock held (see
 * sb_changeset_get()), so they only copy into a buffer: no call into the
 * store, no allocation beyond the buffer's.
 */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every field of a change set but its documents. */
static void info_fields(struct buf *b, const sb_cs_info *cs)
{
    buf_puts(b, "\"id\":");
    buf_json_bytes(b, cs->id, cs->id_len);
    buf_puts(b, ",\"actor\":");
    if (cs->actor != NULL)
        buf_json_bytes(b, cs->actor, cs->actor_len);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"first_time\":\"");
    buf_time(b, cs->first_ns);
    buf_puts(b, "\",\"last_time\":\"");
    buf_time(b, cs->last_ns);
    buf_printf(b, "\",\"first_revision\":%llu,\"last_revision\":%llu,\"writes\":%llu",
               (unsigned long long)cs->first_rev, (unsigned long long)cs->last_rev,
               (unsigned long long)cs->writes);
}

/* The change-set id of the path; replies 400 and returns 0 when malformed. */
static int path_id(struct call *c, const struct uri_str **id)
{
    *id = &c->uri.seg[1];
    if (csid_valid((*id)->s, (*id)->len))
        return 1;
    reply_error(c, 400, "invalid_change_set",
                "A change-set id is 1 to 128 characters of A-Z, a-z, 0-9, '.', '_', ':' and "
                "'-'.");
    return 0;
}

static void not_found(struct call *c, const struct uri_str *id)
{
    reply_error(c, 404, "change_set_not_found",
                "No change set \"%.*s\" is retained: it was never written, or the server "
                "no longer remembers it.",
                (int)id->len, id->s);
}

/* ---------------------------------------------------------------------- */
/* GET /_changesets                                                       */
/* ---------------------------------------------------------------------- */

struct listing {
    struct buf body;
    size_t limit, count;
    int more;
    uint64_t last_rev; /* of the last change set on the page: the cursor */
    uint64_t max_rev;  /* the newest write the listing saw */
};

static int on_list(void *ctx, const sb_cs_info *cs)
{
    struct listing *l = ctx;
    if (l->count == l->limit) {
        l->more = 1;
        return 1;
    }
    buf_puts(&l->body, l->count++ > 0 ? ",{" : "{");
    info_fields(&l->body, cs);
    buf_printf(&l->body, ",\"documents\":%zu,\"restorable\":%s}", cs->docs,
               cs->pinned ? "true" : "false");
    l->last_rev = cs->last_rev;
    if (cs->last_rev > l->max_rev)
        l->max_rev = cs->last_rev;
    return 0;
}

static int digits(const char *s, size_t n, int *out)
{
    *out = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        *out = *out * 10 + (s[i] - '0');
    }
    return 1;
}

/*
 * Reads an RFC 3339 UTC time, YYYY-MM-DDTHH:MM:SS[.fraction]Z, into ns
 * since the epoch.  Times before the epoch read as 0 and those past 2262
 * (beyond 64-bit ns) as the largest value: as a lower bound on commit
 * times they select the same change sets.  Returns 0 when malformed.
 */
static int parse_time(const char *s, size_t len, int64_t *ns)
{
    static const unsigned char mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec;

    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':' || (s[len - 1] != 'Z' && s[len - 1] != 'z'))
        return 0;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 60)
        return 0;

    /* The fraction: '.' and 1 or more digits, of which the first 9 count. */
    int64_t frac = 0;
    size_t end = len - 1, i = 19;
    if (i < end) {
        if (s[i] != '.' || i + 1 == end)
            return 0;
        for (i++; i < end; i++) {
            if (s[i] < '0' || s[i] > '9')
                return 0;
            if (i < 29)
                frac = frac * 10 + (s[i] - '0');
        }
        for (size_t k = end < 29 ? end : 29; k < 29; k++)
            frac *= 10;
    }

    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    int64_t secs = (int64_t)timegm(&tm);
    if (secs < 0)
        *ns = 0;
    else if (secs >= INT64_MAX / 1000000000 - 1)
        *ns = INT64_MAX;
    else
        *ns = secs * 1000000000 + frac;
    return 1;
}

/* Reads since, actor, limit and before; replies and returns 0 on error. */
static int parse_filter(struct call *c, sb_cs_filter *f, size_t *limit)
{
    static const char *const params[] = {"since", "actor", "limit", "before", NULL};
    if (!check_params(c, params))
        return 0;

    const struct uri_str *p = uri_param(&c->uri, "since");
    if (p != NULL && !parse_time(p->s, p->len, &f->since_ns)) {
        reply_error(c, 400, "invalid_parameter",
                    "since must be an RFC 3339 UTC time such as 2026-12-03T10:00:00Z.");
        return 0;
    }
    if ((p = uri_param(&c->uri, "actor")) != NULL) {
        if (!csid_actor_valid(p->s, p->len)) {
            reply_error(c, 400, "invalid_actor",
                        "actor must be 1 to 128 bytes of printable ASCII (0x20 to 0x7e).");
            return 0;
        }
        f->actor = p->s;
        f->actor_len = p->len;
    }
    uint64_t v = LIST_LIMIT_DEFAULT;
    p = uri_param(&c->uri, "limit");
    if (p != NULL && (uri_parse_u64(p->s, p->len, LIST_LIMIT_MAX, &v) != 0 || v == 0)) {
        reply_error(c, 400, "invalid_parameter", "limit must be an integer from 1 to %d.",
                    LIST_LIMIT_MAX);
        return 0;
    }
    *limit = (size_t)v;
    p = uri_param(&c->uri, "before");
    if (p != NULL && (uri_parse_u64(p->s, p->len, UINT64_MAX, &f->before) != 0 || f->before == 0)) {
        reply_error(c, 400, "invalid_parameter", "before must be a positive integer revision.");
        return 0;
    }
    return 1;
}

static void add_list_link(struct call *c, const struct listing *l)
{
    struct buf link = {0};
    buf_printf(&link, "</_changesets?limit=%zu&before=%llu", l->limit,
               (unsigned long long)l->last_rev);
    const struct uri_str *since = uri_param(&c->uri, "since");
    const struct uri_str *actor = uri_param(&c->uri, "actor");
    if (since != NULL) {
        buf_puts(&link, "&since=");
        buf_percent_encode(&link, since->s, since->len);
    }
    if (actor != NULL) {
        buf_puts(&link, "&actor=");
        buf_percent_encode(&link, actor->s, actor->len);
    }
    buf_puts(&link, ">; rel=\"next\"");
    if (!link.oom)
        add_header(c, "link", link.data);
    buf_free(&link);
}

void handle_changeset_list(struct call *c)
{
    sb_cs_filter filter = {0};
    size_t limit;
    if (!parse_filter(c, &filter, &limit))
        return;

    struct listing l = {.limit = limit, .max_rev = sb_store_revision(c->api->store)};
    buf_puts(&l.body, "[");
    sb_status st = sb_changeset_list(c->api->store, &filter, on_list, &l);
    buf_puts(&l.body, "]");
    set_revision(c, l.max_rev);

    if (st != SB_OK) {
        reply_store_error(c, st);
    } else {
        if (l.more)
            add_list_link(c, &l);
        reply_body(c, 200, &l.body);
    }
    buf_free(&l.body);
}

/* ---------------------------------------------------------------------- */
/* GET /_changesets/{id}                                                  */
/* ---------------------------------------------------------------------- */

struct detail {
    struct buf body;
    size_t docs;
    uint64_t max_rev;
};

static int on_info(void *ctx, const sb_cs_info *cs)
{
    struct detail *d = ctx;
    buf_puts(&d->body, "{");
    info_fields(&d->body, cs);
    buf_printf(&d->body, ",\"restorable\":%s,\"documents\":[", cs->pinned ? "true" : "false");
    if (cs->last_rev > d->max_rev)
        d->max_rev = cs->last_rev;
    return 0;
}

static void coll_name(struct buf *b, sb_coll *coll)
{
    size_t len;
    const char *name = sb_collection_name(coll, &len);
    buf_json_bytes(b, name, len);
}

static int on_doc(void *ctx, const sb_cs_doc *doc)
{
    struct detail *d = ctx;
    struct buf *b = &d->body;
    buf_puts(b, d->docs++ > 0 ? ",{\"collection\":" : "{\"collection\":");
    coll_name(b, doc->coll);
    buf_puts(b, ",\"id\":");
    buf_json_bytes(b, doc->id, doc->id_len);
    buf_puts(b, ",\"revisions\":[");
    for (size_t i = 0; i < doc->nrevs; i++)
        buf_printf(b, i > 0 ? ",%llu" : "%llu", (unsigned long long)doc->revs[i]);
    buf_puts(b, "],\"before_revision\":");
    if (doc->before_rev != 0)
        buf_u64(b, doc->before_rev);
    else
        buf_puts(b, "null");
    buf_printf(b, ",\"restorable\":%s}", doc->restorable ? "true" : "false");
    return 0;
}

void handle_changeset_get(struct call *c)
{
    static const char *const params[] = {NULL};
    const struct uri_str *id;
    if (!check_params(c, params) || !path_id(c, &id))
        return;

    struct detail d = {.max_rev = sb_store_revision(c->api->store)};
    sb_status st = sb_changeset_get(c->api->store, id->s, id->len, on_info, on_doc, &d);
    buf_puts(&d.body, "]}");
    set_revision(c, d.max_rev);

    if (st == SB_NOT_FOUND)
        not_found(c, id);
    else if (st != SB_OK)
        reply_store_error(c, st);
    else
        reply_body(c, 200, &d.body);
    buf_free(&d.body);
}

/* ---------------------------------------------------------------------- */
/* POST /_changesets/{id}/rollback                                        */
/* ---------------------------------------------------------------------- */

static const char *state_name(sb_cs_state s)
{
    switch (s) {
    case SB_CS_CLEAN:
        return "clean";
    case SB_CS_CONFLICT:
        return "conflict";
    case SB_CS_LOST:
        return "lost";
    case SB_CS_UNCHANGED:
        return "unchanged";
    }
    return "unknown";
}

static void rev_or_null(struct buf *b, uint64_t rev)
{
    if (rev != 0)
        buf_u64(b, rev);
    else
        buf_puts(b, "null");
}

/* The later versions that make a document a conflict. */
static void later_json(struct buf *b, const sb_cs_plan *p)
{
    buf_puts(b, ",\"later\":[");
    for (size_t i = 0; i < p->nlater; i++) {
        const sb_cs_later *l = &p->later[i];
        buf_printf(b, "%s{\"revision\":%llu,\"op\":\"%s\",\"change_set\":", i > 0 ? "," : "",
                   (unsigned long long)l->rev, sb_op_str(l->op));
        if (l->change_set != NULL)
            buf_json_bytes(b, l->change_set, l->change_set_len);
        else
            buf_puts(b, "null");
        buf_puts(b, ",\"actor\":");
        if (l->actor != NULL)
            buf_json_bytes(b, l->actor, l->actor_len);
        else
            buf_puts(b, "null");
        buf_puts(b, "}");
    }
    buf_printf(b, "],\"later_truncated\":%s", p->later_more ? "true" : "false");
}

struct plans {
    struct buf docs; /* the "documents" array, without its brackets */
    size_t n;
};

static int on_plan(void *ctx, const sb_cs_plan *p)
{
    struct plans *pl = ctx;
    struct buf *b = &pl->docs;
    buf_puts(b, pl->n++ > 0 ? ",{\"collection\":" : "{\"collection\":");
    coll_name(b, p->coll);
    buf_puts(b, ",\"id\":");
    buf_json_bytes(b, p->id, p->id_len);
    buf_printf(b, ",\"state\":\"%s\",\"from_revision\":%llu,\"from_deleted\":%s,\"to_revision\":",
               state_name(p->state), (unsigned long long)p->from_rev,
               p->from_absent ? "true" : "false");
    rev_or_null(b, p->to_rev);
    buf_printf(b, ",\"to_deleted\":%s,\"to\":", p->to_absent ? "true" : "false");
    if (!p->to_absent && p->to_payload != NULL)
        buf_append(b, p->to_payload, p->to_len);
    else
        buf_puts(b, "null");
    buf_puts(b, ",\"revision\":");
    rev_or_null(b, p->rev);
    if (p->state == SB_CS_CONFLICT)
        later_json(b, p);
    buf_puts(b, "}");
    return 0;
}

struct undo {
    const struct uri_str *id;
    int dry_run, force;
    sb_status st;
    sb_cs_outcome out;
};

/* The answer of a rollback that was planned: applied, dry run or refused
 * (409, with "error" and "message" first). */
static void reply_undo(struct call *c, const struct undo *u, struct plans *pl)
{
    const sb_cs_outcome *o = &u->out;
    int applied = !u->dry_run && u->st == SB_OK && o->restored > 0;
    int refused = !u->dry_run && u->st != SB_OK;
    struct buf b = {0};

    if (refused && u->st == SB_CONFLICT)
        buf_printf(&b,
                   "{\"error\":\"change_set_conflict\",\"message\":\"%zu of the documents "
                   "were written by other change sets since; nothing was changed. "
                   "force=true overwrites them.\",",
                   o->conflicts);
    else if (refused)
        buf_printf(&b,
                   "{\"error\":\"history_exhausted\",\"message\":\"The earlier state of "
                   "%zu of the documents is no longer retained; nothing was changed. "
                   "force=true skips them.\",",
                   o->lost);
    else
        buf_puts(&b, "{");

    buf_puts(&b, "\"change_set\":");
    buf_json_string(&b, u->id->s, u->id->len);
    buf_puts(&b, ",\"rollback_change_set\":");
    if (applied)
        buf_json_string(&b, c->cs, c->cs_len);
    else
        buf_puts(&b, "null");
    buf_printf(&b, ",\"dry_run\":%s,\"forced\":%s,\"applied\":%s,\"revision\":",
               u->dry_run ? "true" : "false", u->force ? "true" : "false",
               applied ? "true" : "false");
    rev_or_null(&b, applied ? o->last_rev : 0);
    buf_printf(&b,
               ",\"summary\":{\"documents\":%zu,\"clean\":%zu,\"conflicts\":%zu,\"lost\":%zu,"
               "\"unchanged\":%zu,\"restored\":%zu},\"documents\":[",
               o->docs, o->clean, o->conflicts, o->lost, o->unchanged, o->restored);
    buf_append(&b, pl->docs.data, pl->docs.len);
    buf_puts(&b, "]}");
    if (pl->docs.oom)
        b.oom = 1;

    if (applied) {
        c->resp->lsn = o->lsn;
        set_revision(c, o->last_rev);
    } else {
        c->wrote_nothing = 1;
    }
    reply_body(c, refused ? 409 : 200, &b);
}

/* The body must be absent or empty: what to do is in the query. */
static int check_no_body(struct call *c)
{
    if (c->req->body == NULL || c->req->body_len == 0)
        return 1;
    reply_error(c, 400, "unexpected_body",
                "This endpoint takes no body; use ?dry_run=true and ?force=true.");
    return 0;
}

void handle_changeset_rollback(struct call *c)
{
    static const char *const params[] = {"dry_run", "force", NULL};
    struct undo u = {0};
    if (!check_params(c, params) || !bool_param(c, "dry_run", &u.dry_run) ||
        !bool_param(c, "force", &u.force) || !path_id(c, &u.id) || !check_no_body(c))
        return;
    if (c->cs_len == u.id->len && memcmp(c->cs, u.id->s, c->cs_len) == 0) {
        reply_error(c, 422, "same_change_set",
                    "The rollback of change set \"%.*s\" is a new change set; its X-Change-Set "
                    "must name another one (or be left out).",
                    (int)u.id->len, u.id->s);
        return;
    }

    unsigned flags = (u.dry_run ? SB_CS_DRY_RUN : 0) | (u.force ? SB_CS_FORCE : 0);
    sb_write_opts opts = write_opts(c);
    struct plans pl = {0};
    u.st = sb_changeset_rollback(c->api->store, u.id->s, u.id->len, flags, &opts, on_plan, &pl,
                                 &u.out);
    if (u.st == SB_NOT_FOUND)
        not_found(c, u.id);
    else if (u.st == SB_OK || u.st == SB_CONFLICT || u.st == SB_HISTORY_EXHAUSTED)
        reply_undo(c, &u, &pl);
    else
        reply_store_error(c, u.st);
    buf_free(&pl.docs);
}
