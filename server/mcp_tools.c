/*
 * mcp_tools.c - the MCP tools: their definitions (input and output JSON
 * Schemas, annotations) and how each is carried out.
 *
 * Every tool is one REST request (two for none) made with api_handle() on
 * the server's own struct api, so that names, ids, documents, preconditions
 * and change sets follow exactly the rules of the REST API; this file only
 * builds the request from the arguments and turns the answer into a tool
 * result.  Documents pass through as text: a document given as an argument
 * is cut out of the request body verbatim (json_span.c), and a document in
 * a REST answer is copied into the result without being re-encoded, so
 * that number text survives both ways.
 *
 * Every write's result names the change set it was recorded under and two
 * undo calls: `undo`, the call that reverts this write alone, and
 * `undo_change_set`, the call that reverts everything of the change set.
 *
 * The schemas are written below with single quotes for readability and
 * turned into JSON once, at start; they are then both published by
 * tools/list and enforced on arguments (check() implements the keywords
 * they use: type, properties, required, additionalProperties, minLength,
 * maxLength, minimum, maximum), so the two cannot drift apart.
 */
#include "mcp_internal.h"
#include "uri.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---------------------------------------------------------------------- */
/* Schemas                                                                */
/* ---------------------------------------------------------------------- */

#define P_COLLECTION                                                                               \
    "'collection':{'type':'string','minLength':1,'maxLength':64,'description':'Collection "        \
    "name: 1 to 64 characters of A-Z a-z 0-9 _ . -'}"
#define P_ID                                                                                       \
    "'id':{'type':'string','minLength':1,'description':'Document id: 1 to 512 bytes of "           \
    "UTF-8, without / or NUL'}"
#define P_DOCUMENT                                                                                 \
    "'document':{'type':'object','description':'The document, a JSON object; stored as "           \
    "written, numbers and key order included'}"
#define P_AS_OF                                                                                    \
    "'as_of':{'type':'integer','minimum':1,'description':'Read the state at this store "           \
    "revision instead of the current one'}"
#define P_IF_MATCH                                                                                 \
    "'if_match':{'type':'integer','minimum':1,'description':'Write only if the current "           \
    "version of the document has this revision (from get_document); otherwise nothing "            \
    "is written'}"
#define P_CHANGE_SET                                                                               \
    "'change_set':{'type':'string','minLength':1,'maxLength':128,'description':'Change "           \
    "set to record the write under: 1 to 128 characters of A-Z a-z 0-9 . _ : -. Default: "         \
    "the MCP session id, or without a session an id derived from the client name (the "            \
    "result names it)'}"
#define P_LIMIT                                                                                    \
    "'limit':{'type':'integer','minimum':1,'maximum':1000,'description':'At most this "            \
    "many per call, 1 to 1000 (default 100)'}"

#define S_UNDO                                                                                     \
    "{'type':'object','properties':{'tool':{'type':'string'},'arguments':{'type':'object'}}"       \
    ",'required':['tool','arguments']}"
#define O_WRITE_COMMON                                                                             \
    "'collection':{'type':'string'},'id':{'type':'string'},'revision':{'type':'integer'},"         \
    "'change_set':{'type':'string'},'undo':" S_UNDO ",'undo_change_set':" S_UNDO
#define O_WRITE_REQUIRED "'collection','id','revision','change_set','undo','undo_change_set'"

#define NO_ARGS "{'type':'object','properties':{},'additionalProperties':false}"

struct mcp_call;
typedef enum mcp_tool_status (*tool_fn)(struct mcp_call *c);

struct tool {
    const char *name;
    const char *title;
    const char *description;
    const char *input;  /* JSON Schema, single-quoted */
    const char *output; /* JSON Schema, single-quoted */
    int read_only, destructive, idempotent;
    tool_fn run;
};

static enum mcp_tool_status list_collections(struct mcp_call *c);
static enum mcp_tool_status list_documents(struct mcp_call *c);
static enum mcp_tool_status get_document(struct mcp_call *c);
static enum mcp_tool_status list_versions(struct mcp_call *c);
static enum mcp_tool_status put_document(struct mcp_call *c);
static enum mcp_tool_status create_document(struct mcp_call *c);
static enum mcp_tool_status delete_document(struct mcp_call *c);
static enum mcp_tool_status rollback_document(struct mcp_call *c);
static enum mcp_tool_status get_change_set(struct mcp_call *c);
static enum mcp_tool_status list_change_sets(struct mcp_call *c);
static enum mcp_tool_status rollback_change_set(struct mcp_call *c);

/* Why each annotation has its value is in docs/mcp.md, "Tools". */
static const struct tool tools[] = {
    {"list_collections", "List collections",
     "Lists the names of the collections in the store, sorted. A collection comes into being "
     "with its first write and is never removed.",
     NO_ARGS,
     "{'type':'object','properties':{'collections':{'type':'array','items':{'type':'string'}}},"
     "'required':['collections']}",
     1, 0, 1, list_collections},

    {"list_documents", "List documents",
     "Lists the current documents of a collection, a page at a time, in the collection's fixed "
     "scan order (not sorted); deleted documents are not listed. When next_after is not null, "
     "call again with after set to next_after and as_of set to the returned as_of to get the "
     "next page of the same snapshot.",
     "{'type':'object','properties':{" P_COLLECTION "," P_LIMIT ",'after':{'type':'string',"
     "'minLength':1,'description':'The next_after of the previous page'}," P_AS_OF "},"
     "'required':['collection'],'additionalProperties':false}",
     "{'type':'object','properties':{'collection':{'type':'string'},'documents':{'type':'array',"
     "'items':{'type':'object'}},'next_after':{'type':['string','null']},'as_of':{'type':["
     "'integer','null']}},'required':['collection','documents','next_after','as_of']}",
     1, 0, 1, list_documents},

    {"get_document", "Read a document",
     "Reads one document: its current version, or with as_of its state at that store revision. "
     "Returns the document and the revision of the version read; pass that revision as if_match "
     "to a later write to make sure nobody changed the document in between.",
     "{'type':'object','properties':{" P_COLLECTION "," P_ID "," P_AS_OF "},'required':["
     "'collection','id'],'additionalProperties':false}",
     "{'type':'object','properties':{'collection':{'type':'string'},'id':{'type':'string'},"
     "'revision':{'type':'integer'},'document':{'type':'object'}},'required':['collection','id',"
     "'revision','document']}",
     1, 0, 1, get_document},

    {"list_versions", "List the versions of a document",
     "Lists the retained versions of one document, newest first: revision, operation (create, "
     "update, delete, rollback), time, change set and content (null for a deletion). Use it to "
     "choose a to_version for rollback_document.",
     "{'type':'object','properties':{" P_COLLECTION "," P_ID "},'required':['collection','id'],"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'collection':{'type':'string'},'id':{'type':'string'},"
     "'versions':{'type':'array','items':{'type':'object','properties':{'version':{'type':"
     "'integer'},'op':{'type':'string'},'at':{'type':'string'},'change_set':{'type':'string'},"
     "'restored':{'type':'integer'},'doc':{'type':['object','null']}},'required':['version',"
     "'op','at','doc']}}},'required':['collection','id','versions']}",
     1, 0, 1, list_versions},

    {"put_document", "Create or replace a document",
     "Creates or replaces one document. The version it replaces is kept, so the write can be "
     "undone: the result names the change set it was recorded under, the call that undoes this "
     "write (undo) and the call that undoes the whole change set (undo_change_set).",
     "{'type':'object','properties':{" P_COLLECTION "," P_ID "," P_DOCUMENT "," P_IF_MATCH
     "," P_CHANGE_SET "},'required':['collection','id','document'],"
     "'additionalProperties':false}",
     "{'type':'object','properties':{" O_WRITE_COMMON ",'created':{'type':'boolean'}},"
     "'required':[" O_WRITE_REQUIRED ",'created']}",
     0, 1, 1, put_document},

    {"create_document", "Create a document",
     "Creates a new document, its id taken from the document's key field (id, unless the server "
     "names another field for the collection). Fails if a live document has that id: use "
     "put_document to replace one. The result gives the id, the change set and the undo calls.",
     "{'type':'object','properties':{" P_COLLECTION "," P_DOCUMENT "," P_CHANGE_SET "},"
     "'required':['collection','document'],'additionalProperties':false}",
     "{'type':'object','properties':{" O_WRITE_COMMON "},'required':[" O_WRITE_REQUIRED "]}", 0, 0,
     1, create_document},

    {"delete_document", "Delete a document",
     "Deletes one document by writing a deletion version: its content stays in the history and "
     "the deletion can be undone with the undo call of the result.",
     "{'type':'object','properties':{" P_COLLECTION "," P_ID "," P_IF_MATCH "," P_CHANGE_SET
     "},'required':['collection','id'],'additionalProperties':false}",
     "{'type':'object','properties':{" O_WRITE_COMMON "},'required':[" O_WRITE_REQUIRED "]}", 0, 1,
     1, delete_document},

    {"rollback_document", "Roll back a document",
     "Undoes writes of one document: steps writes back (default 1), or back to its state at "
     "store revision to_version (give one of the two). The rollback is itself a new version, so "
     "it can be undone too; the result says how.",
     "{'type':'object','properties':{" P_COLLECTION "," P_ID ",'steps':{'type':'integer',"
     "'minimum':1,'maximum':4294967295,'description':'How many writes to undo (default 1)'},"
     "'to_version':{'type':'integer','minimum':1,'description':'Restore the state the document "
     "had at this store revision (see list_versions)'},'if_match':{'type':'integer','minimum':1,"
     "'description':'Roll back only if the current version of the document (a deletion "
     "included) has this revision; otherwise nothing is written'}," P_CHANGE_SET "},"
     "'required':['collection','id'],'additionalProperties':false}",
     "{'type':'object','properties':{" O_WRITE_COMMON ",'deleted':{'type':'boolean'},"
     "'document':{'type':['object','null']}},'required':[" O_WRITE_REQUIRED ",'deleted',"
     "'document']}",
     0, 1, 0, rollback_document},

    {"get_change_set", "Show a change set",
     "Shows one change set: who made it (actor), when, its revisions, and every document it "
     "wrote with the state a rollback of the change set would restore.",
     "{'type':'object','properties':{'change_set':{'type':'string','minLength':1,'maxLength':"
     "128,'description':'The change set id'}},'required':['change_set'],"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'id':{'type':'string'},'actor':{'type':['string','null']},"
     "'writes':{'type':'integer'},'restorable':{'type':'boolean'},'documents':{'type':'array',"
     "'items':{'type':'object'}}},'required':['id','documents']}",
     1, 0, 1, get_change_set},

    {"list_change_sets", "List change sets",
     "Lists recent change sets, most recently written first, optionally only those written "
     "since a time or by one actor (the MCP client name). Use it to find what an agent wrote.",
     "{'type':'object','properties':{'since':{'type':'string','minLength':1,'description':"
     "'RFC 3339 UTC time such as 2026-12-03T10:00:00Z: only change sets written at or after "
     "it'},'actor':{'type':'string','minLength':1,'maxLength':128,'description':'Only change "
     "sets of this actor'}," P_LIMIT ",'before':{'type':'integer','minimum':1,'description':"
     "'The next_before of the previous page'}},'additionalProperties':false}",
     "{'type':'object','properties':{'change_sets':{'type':'array','items':{'type':'object'}},"
     "'next_before':{'type':['integer','null']}},'required':['change_sets','next_before']}",
     1, 0, 1, list_change_sets},

    {"rollback_change_set", "Roll back a change set",
     "Undoes a whole change set at once: every document it wrote goes back to its state just "
     "before the change set first wrote it (absent if the change set created it), all or "
     "nothing. Call with dry_run true first to see the plan. If another change set wrote one of "
     "those documents since, nothing changes unless force is true, which overwrites those later "
     "writes. The undo is recorded as a new change set, named in the result (undo), so it can be "
     "undone the same way.",
     "{'type':'object','properties':{'change_set':{'type':'string','minLength':1,'maxLength':"
     "128,'description':'The change set to undo'},'dry_run':{'type':'boolean','description':"
     "'Only report what would be done (default false)'},'force':{'type':'boolean',"
     "'description':'Overwrite documents that other change sets wrote since, and skip those "
     "whose earlier state is no longer retained (default false)'}},'required':['change_set'],"
     "'additionalProperties':false}",
     "{'type':'object','properties':{'change_set':{'type':'string'},'rollback_change_set':{"
     "'type':['string','null']},'dry_run':{'type':'boolean'},'applied':{'type':'boolean'},"
     "'summary':{'type':'object'},'documents':{'type':'array','items':{'type':'object'}},"
     "'undo':{'type':['object','null']}},'required':['change_set','dry_run','applied','summary',"
     "'documents','undo']}",
     0, 1, 1, rollback_change_set},
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

struct mcp_tools {
    json_t *input[NTOOLS]; /* parsed input schemas, for check() */
    char *list[2];         /* tools/list arrays: [0] for 2025-03-26, [1] for later */
    size_t list_len[2];
};

/* Parses a single-quoted schema; NULL if it does not parse. */
static json_t *schema_parse(const char *quoted)
{
    char *text = strdup(quoted);
    if (text == NULL)
        return NULL;
    for (char *p = text; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    free(text);
    return j;
}

/* Appends `schema` compact (it holds no real numbers, so no text changes). */
static void append_json(struct buf *b, json_t *schema)
{
    char *s = json_dumps(schema, JSON_COMPACT);
    if (s == NULL) {
        b->oom = 1;
        return;
    }
    buf_puts(b, s);
    free(s);
}

static int render_tool(struct buf *b, const struct tool *t, json_t *input, int modern)
{
    json_t *output = schema_parse(t->output);
    if (output == NULL)
        return -1;
    buf_puts(b, "{\"name\":");
    buf_json_string(b, t->name, strlen(t->name));
    if (modern) { /* a top-level title came with 2025-06-18 */
        buf_puts(b, ",\"title\":");
        buf_json_string(b, t->title, strlen(t->title));
    }
    buf_puts(b, ",\"description\":");
    buf_json_string(b, t->description, strlen(t->description));
    buf_puts(b, ",\"inputSchema\":");
    append_json(b, input);
    if (modern) { /* so did output schemas */
        buf_puts(b, ",\"outputSchema\":");
        append_json(b, output);
    }
    buf_puts(b, ",\"annotations\":{\"title\":");
    buf_json_string(b, t->title, strlen(t->title));
    buf_printf(b,
               ",\"readOnlyHint\":%s,\"destructiveHint\":%s,\"idempotentHint\":%s,"
               "\"openWorldHint\":false}}",
               t->read_only ? "true" : "false", t->destructive ? "true" : "false",
               t->idempotent ? "true" : "false");
    json_decref(output);
    return 0;
}

int mcp_tools_new(struct mcp_tools **out)
{
    struct mcp_tools *t = calloc(1, sizeof(*t));
    struct buf b[2] = {{0}, {0}};
    int rc = -1;

    if (t == NULL)
        return -1;
    for (int m = 0; m < 2; m++)
        buf_puts(&b[m], "[");
    for (size_t i = 0; i < NTOOLS; i++) {
        if ((t->input[i] = schema_parse(tools[i].input)) == NULL)
            goto out;
        for (int m = 0; m < 2; m++) {
            if (i > 0)
                buf_puts(&b[m], ",");
            if (render_tool(&b[m], &tools[i], t->input[i], m) != 0)
                goto out;
        }
    }
    for (int m = 0; m < 2; m++) {
        buf_puts(&b[m], "]");
        if ((t->list[m] = buf_take(&b[m], &t->list_len[m])) == NULL)
            goto out;
    }
    *out = t;
    t = NULL;
    rc = 0;
out:
    buf_free(&b[0]);
    buf_free(&b[1]);
    mcp_tools_free(t);
    return rc;
}

void mcp_tools_free(struct mcp_tools *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < NTOOLS; i++)
        json_decref(t->input[i]);
    free(t->list[0]);
    free(t->list[1]);
    free(t);
}

void mcp_tools_list(const struct mcp_tools *t, enum mcp_version v, struct buf *out)
{
    int m = v >= MCP_2025_06_18;
    buf_append(out, t->list[m], t->list_len[m]);
}

/* ---------------------------------------------------------------------- */
/* Argument checks against the input schemas                              */
/* ---------------------------------------------------------------------- */

/* An integer, or a real with no fraction (JSON Schema counts 2.0 as an
 * integer); sets *v. */
static int as_integer(const json_t *j, double *v)
{
    if (json_is_integer(j)) {
        *v = (double)json_integer_value(j);
        return 1;
    }
    /* Within 2^53 a double holds integers exactly, and the cast is defined. */
    double d = json_real_value(j);
    if (json_is_real(j) && d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
        d == (double)(long long)d) {
        *v = d;
        return 1;
    }
    return 0;
}

static int type_is(const json_t *j, const char *type)
{
    double ignored;
    if (strcmp(type, "object") == 0)
        return json_is_object(j);
    if (strcmp(type, "array") == 0)
        return json_is_array(j);
    if (strcmp(type, "string") == 0)
        return json_is_string(j);
    if (strcmp(type, "integer") == 0)
        return as_integer(j, &ignored);
    if (strcmp(type, "number") == 0)
        return json_is_number(j);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(j);
    return strcmp(type, "null") == 0 && json_is_null(j);
}

static int type_ok(const json_t *j, const json_t *type)
{
    size_t i;
    json_t *t;
    if (json_is_string(type))
        return type_is(j, json_string_value(type));
    json_array_foreach(type, i, t)
    {
        if (type_is(j, json_string_value(t)))
            return 1;
    }
    return 0;
}

/* Code points of a UTF-8 string, as JSON Schema counts a string's length. */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/* Checks one argument's value against its property schema. */
static int check_value(const char *name, const json_t *v, const json_t *schema, struct buf *msg)
{
    const json_t *type = json_object_get(schema, "type");
    const json_t *k;
    double x;

    if (type != NULL && !type_ok(v, type)) {
        char *want = json_dumps(type, JSON_ENCODE_ANY);
        buf_printf(msg, "argument \"%s\" must be of type %s", name, want ? want : "?");
        free(want);
        return 0;
    }
    if (json_is_string(v)) {
        size_t n = utf8_chars(json_string_value(v), json_string_length(v));
        if ((k = json_object_get(schema, "minLength")) && n < (size_t)json_integer_value(k)) {
            buf_printf(msg, "argument \"%s\" must not be empty", name);
            return 0;
        }
        if ((k = json_object_get(schema, "maxLength")) && n > (size_t)json_integer_value(k)) {
            buf_printf(msg, "argument \"%s\" must be at most %lld characters long", name,
                       (long long)json_integer_value(k));
            return 0;
        }
    }
    if (as_integer(v, &x)) {
        const json_t *lo = json_object_get(schema, "minimum");
        const json_t *hi = json_object_get(schema, "maximum");
        if (lo && x < json_number_value(lo)) {
            buf_printf(msg, "argument \"%s\" must be at least %.0f", name, json_number_value(lo));
            return 0;
        }
        if (hi && x > json_number_value(hi)) {
            buf_printf(msg, "argument \"%s\" must be at most %.0f", name, json_number_value(hi));
            return 0;
        }
    }
    return 1;
}

/* Checks `args` (an object) against an input schema; on failure, `msg`
 * says what is wrong. */
static int check(const json_t *args, const json_t *schema, struct buf *msg)
{
    const json_t *props = json_object_get(schema, "properties");
    const json_t *required = json_object_get(schema, "required");
    const char *key;
    size_t key_len, i;
    json_t *v;

    json_object_keylen_foreach((json_t *)args, key, key_len, v)
    {
        const json_t *p = key_len == strlen(key) ? json_object_get(props, key) : NULL;
        if (p == NULL) {
            buf_puts(msg, "unknown argument ");
            buf_json_string(msg, key, key_len);
            buf_puts(msg, "; this tool takes ");
            const char *name;
            json_t *ignored;
            int first = 1;
            json_object_foreach((json_t *)props, name, ignored)
            {
                buf_printf(msg, "%s%s", first ? "" : ", ", name);
                first = 0;
            }
            if (first)
                buf_puts(msg, "no arguments");
            return 0;
        }
        if (!check_value(key, v, p, msg))
            return 0;
    }
    json_array_foreach(required, i, v)
    {
        if (json_object_get(args, json_string_value(v)) == NULL) {
            buf_printf(msg, "the required argument \"%s\" is missing", json_string_value(v));
            return 0;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------- */
/* Arguments                                                              */
/* ---------------------------------------------------------------------- */

/* A string argument; NULL when absent (the schema has checked its type). */
static const char *arg_str(const struct mcp_call *c, const char *name, size_t *len)
{
    const json_t *v = json_object_get(c->args, name);
    *len = json_string_length(v); /* 0 when not a string */
    return json_string_value(v);
}

/* A positive integer argument; 0 when absent. */
static uint64_t arg_u64(const struct mcp_call *c, const char *name)
{
    double x;
    const json_t *v = json_object_get(c->args, name);
    return v != NULL && as_integer(v, &x) && x >= 1 ? (uint64_t)x : 0;
}

static int arg_true(const struct mcp_call *c, const char *name)
{
    return json_is_true(json_object_get(c->args, name));
}

/* The exact text of a document argument. */
static struct json_span arg_raw(const struct mcp_call *c, const char *name)
{
    struct json_span s = {NULL, 0};
    json_span_member(c->raw, name, &s);
    return s;
}

/* ---------------------------------------------------------------------- */
/* REST requests                                                          */
/* ---------------------------------------------------------------------- */

struct rest {
    struct buf target;
    char if_match[32];
    struct api_req req;
    struct api_resp resp;
};

/* Starts the target: "/" COLLECTION ["/" ID]; both percent-encoded. */
static void target_doc(struct rest *r, const char *coll, size_t coll_len, const char *id,
                       size_t id_len)
{
    buf_puts(&r->target, "/");
    buf_percent_encode(&r->target, coll, coll_len);
    if (id != NULL) {
        buf_puts(&r->target, "/");
        buf_percent_encode(&r->target, id, id_len);
    }
}

/* Appends a query parameter. */
static void query(struct rest *r, const char *name, const char *value, size_t len)
{
    buf_puts(&r->target, memchr(r->target.data, '?', r->target.len) ? "&" : "?");
    buf_puts(&r->target, name);
    buf_puts(&r->target, "=");
    buf_percent_encode(&r->target, value, len);
}

static void query_u64(struct rest *r, const char *name, uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%llu", (unsigned long long)v);
    query(r, name, digits, (size_t)n);
}

static void set_if_match(struct rest *r, uint64_t rev)
{
    if (rev == 0)
        return;
    int n = snprintf(r->if_match, sizeof(r->if_match), "\"%llu\"", (unsigned long long)rev);
    r->req.if_match = r->if_match;
    r->req.if_match_len = (size_t)n;
}

static void set_json_body(struct rest *r, const char *body, size_t len)
{
    r->req.content_type = "application/json";
    r->req.content_type_len = strlen(r->req.content_type);
    r->req.body = body;
    r->req.body_len = len;
}

/* The change set a write is recorded under: the argument, or the call's. */
static const char *write_change_set(const struct mcp_call *c, size_t *len)
{
    const char *cs = arg_str(c, "change_set", len);
    if (cs == NULL) {
        cs = c->change_set;
        *len = strlen(cs);
    }
    return cs;
}

/* What a request names besides its target. */
#define READ  0
#define ACTOR 1 /* X-Actor: the client's name */
#define WRITE 3 /* X-Change-Set as well: the write's change set */

/* Runs the request; returns 0, or -1 when its target could not be built. */
static int rest_run(struct mcp_call *c, struct rest *r, const char *method, int names)
{
    if (r->target.oom || r->target.len == 0)
        return -1;
    r->req.method = method;
    r->req.method_len = strlen(method);
    r->req.target = r->target.data;
    r->req.target_len = r->target.len;
    if (names == WRITE)
        r->req.change_set = write_change_set(c, &r->req.change_set_len);
    if ((names & ACTOR) && c->actor[0] != '\0') {
        r->req.actor = c->actor;
        r->req.actor_len = strlen(c->actor);
    }
    api_handle(c->api, &r->req, &r->resp);
    if (r->resp.lsn > c->lsn)
        c->lsn = r->resp.lsn;
    return 0;
}

static void rest_free(struct rest *r)
{
    buf_free(&r->target);
    api_resp_free(&r->resp);
}

static const char *header(const struct api_resp *resp, const char *name)
{
    for (size_t i = 0; i < resp->nheaders; i++) {
        if (strcasecmp(resp->headers[i].name, name) == 0)
            return resp->headers[i].value;
    }
    return NULL;
}

/* The revision in the ETag of the answer; 0 if there is none. */
static uint64_t etag_rev(const struct api_resp *resp)
{
    const char *tag = header(resp, "etag");
    uint64_t rev = 0;
    size_t len = tag ? strlen(tag) : 0;
    if (len < 3 || tag[0] != '"' || tag[len - 1] != '"' ||
        uri_parse_u64(tag + 1, len - 2, UINT64_MAX, &rev) != 0)
        return 0;
    return rev;
}

/* Reads parameter `name` of the target inside a Link or Location value
 * ("</path?query>; rel=..." or "/path"), percent-decoded, into `out`.
 * A `segment` >= 0 asks for that path segment instead.  Returns 1 if found. */
static int target_part(const char *value, const char *name, int segment, struct buf *out)
{
    const char *s = value, *end;
    struct uri u;
    int found = 0;

    if (value == NULL)
        return 0;
    if (*s == '<')
        s++;
    end = strchr(s, '>');
    if (uri_parse(s, end ? (size_t)(end - s) : strlen(s), &u) != URI_OK)
        return 0;
    const struct uri_str *v =
        segment >= 0 ? ((size_t)segment < u.nseg ? &u.seg[segment] : NULL) : uri_param(&u, name);
    if (v != NULL) {
        buf_append(out, v->s, v->len);
        found = 1;
    }
    uri_free(&u);
    return found;
}

/* ---------------------------------------------------------------------- */
/* Tool failures                                                          */
/* ---------------------------------------------------------------------- */

/* What an agent can do about each REST error code. */
static const char *hint(const char *code, int status)
{
    static const struct {
        const char *code, *hint;
    } hints[] = {
        {"not_found", "Check the collection and the id; list_documents shows what exists, and "
                      "list_versions shows a deleted document's history."},
        {"already_exists", "Use put_document to replace it, or give the document another id."},
        {"precondition_failed", "The document was written since; list_versions shows by "
                                "whom. Pass its current revision as if_match, or leave "
                                "if_match out to overwrite that write too."},
        {"future_revision", "Use a revision at or below the store's current one."},
        {"version_not_found", "list_versions shows the retained versions."},
        {"change_set_not_found",
         "list_change_sets shows the change sets the server still retains."},
        {"same_change_set", "Leave change_set out so that the undo gets a change set of its own."},
        {"missing_key", "Add the key field to the document, or use put_document with an id."},
        {"key_mismatch", "Make the document's key field equal the id, or leave it out."},
        {"out_of_memory", "Nothing was changed; retry later."},
        {"storage_error", "Nothing was changed; the server's operator must act before writes "
                          "work again."},
        {"insufficient_storage", "Nothing was changed; retry once the server has disk space."},
    };
    for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
        if (strcmp(code, hints[i].code) == 0)
            return hints[i].hint;
    }
    if (strcmp(code, "history_exhausted") == 0)
        return status == 409 ? "Roll back fewer steps (available says how many are retained), "
                               "or to a later version from list_versions."
                             : "Read at a later revision; older states are no longer retained.";
    if (strncmp(code, "invalid_", 8) == 0 || strcmp(code, "number_out_of_range") == 0)
        return "Correct that argument and call again.";
    return "";
}

/* Lists (at most 5) documents of a refused change-set rollback. */
static void explain_plan(struct buf *b, json_t *body)
{
    size_t i, shown = 0;
    json_t *d, *summary = json_object_get(body, "summary");

    buf_printf(b,
               " Of %lld documents, %lld were written by other change sets since "
               "(conflicts) and %lld can no longer be restored (lost).",
               (long long)json_integer_value(json_object_get(summary, "documents")),
               (long long)json_integer_value(json_object_get(summary, "conflicts")),
               (long long)json_integer_value(json_object_get(summary, "lost")));
    json_array_foreach(json_object_get(body, "documents"), i, d)
    {
        const char *state = json_string_value(json_object_get(d, "state"));
        if (state == NULL || strcmp(state, "clean") == 0 || strcmp(state, "unchanged") == 0)
            continue;
        if (shown++ == 5)
            break;
        buf_printf(b, "%s %s/%s (%s", shown == 1 ? " For example:" : ";",
                   json_string_value(json_object_get(d, "collection")),
                   json_string_value(json_object_get(d, "id")), state);
        json_t *later = json_array_get(json_object_get(d, "later"), 0);
        const char *cs = json_string_value(json_object_get(later, "change_set"));
        const char *actor = json_string_value(json_object_get(later, "actor"));
        if (cs != NULL)
            buf_printf(b, ", later written by change set %s", cs);
        if (actor != NULL)
            buf_printf(b, " of %s", actor);
        buf_puts(b, ")");
    }
    buf_puts(b, ". Call rollback_change_set with dry_run true to see every document, or with "
                "force true to overwrite the later writes and skip lost documents.");
}

/* Turns a REST error answer into the tool's failure sentence. */
static enum mcp_tool_status failed(struct mcp_call *c, const struct rest *r)
{
    json_t *body = r->resp.body ? json_loadb(r->resp.body, r->resp.body_len, 0, NULL) : NULL;
    const char *code = json_string_value(json_object_get(body, "error"));
    const char *msg = json_string_value(json_object_get(body, "message"));

    c->out.len = 0;
    buf_puts(&c->out, msg ? msg : "The request failed.");
    if (code != NULL) {
        const char *h = hint(code, r->resp.status);
        if (*h)
            buf_printf(&c->out, " %s", h);
        if (strcmp(code, "change_set_conflict") == 0 ||
            (strcmp(code, "history_exhausted") == 0 && json_object_get(body, "summary")))
            explain_plan(&c->out, body);
    }
    buf_printf(&c->out, " (error %s, HTTP %d)", code ? code : "unknown", r->resp.status);
    json_decref(body);
    return c->out.oom ? MCP_TOOL_NOMEM : MCP_TOOL_FAILED;
}

/* ---------------------------------------------------------------------- */
/* Results                                                                */
/* ---------------------------------------------------------------------- */

static void field_str(struct buf *b, const char *name, const char *s, size_t len)
{
    buf_printf(b, "\"%s\":", name);
    buf_json_string(b, s, len);
}

static void undo_call(struct buf *b, const char *name, const char *tool)
{
    buf_printf(b, ",\"%s\":{\"tool\":\"%s\",\"arguments\":{", name, tool);
}

/* `undo`: back to the document's state just before revision `rev`, unless
 * it has been written since (then the undo would revert that too). */
static void undo_rollback_to(struct buf *b, const char *coll, size_t coll_len, const char *id,
                             size_t id_len, uint64_t rev)
{
    undo_call(b, "undo", "rollback_document");
    field_str(b, "collection", coll, coll_len);
    buf_puts(b, ",");
    field_str(b, "id", id, id_len);
    buf_printf(b, ",\"to_version\":%llu,\"if_match\":%llu}}", (unsigned long long)(rev - 1),
               (unsigned long long)rev);
}

/* `undo` of a write that made a document exist: delete it, unless it has
 * changed since. */
static void undo_delete(struct buf *b, const char *coll, size_t coll_len, const char *id,
                        size_t id_len, uint64_t rev)
{
    undo_call(b, "undo", "delete_document");
    field_str(b, "collection", coll, coll_len);
    buf_puts(b, ",");
    field_str(b, "id", id, id_len);
    buf_printf(b, ",\"if_match\":%llu}}", (unsigned long long)rev);
}

static void undo_change_set(struct buf *b, const char *name, const char *cs, size_t len)
{
    undo_call(b, name, "rollback_change_set");
    field_str(b, "change_set", cs, len);
    buf_puts(b, "}}");
}

/* The fields every write result starts with. */
static void write_head(struct mcp_call *c, const struct rest *r, const char *coll, size_t coll_len,
                       const char *id, size_t id_len)
{
    const char *cs = header(&r->resp, "x-change-set");
    size_t cs_len = cs ? strlen(cs) : 0;
    if (cs == NULL)
        cs = write_change_set(c, &cs_len);

    /* Every successful write has an ETag; only a failed allocation loses
     * it, and without the revision no undo call can be named. */
    if (etag_rev(&r->resp) == 0)
        c->out.oom = 1;
    buf_puts(&c->out, "{");
    field_str(&c->out, "collection", coll, coll_len);
    buf_puts(&c->out, ",");
    field_str(&c->out, "id", id, id_len);
    buf_printf(&c->out, ",\"revision\":%llu,", (unsigned long long)etag_rev(&r->resp));
    field_str(&c->out, "change_set", cs, cs_len);
    undo_change_set(&c->out, "undo_change_set", cs, cs_len);
}

static enum mcp_tool_status done(struct mcp_call *c)
{
    return c->out.oom ? MCP_TOOL_NOMEM : MCP_TOOL_DONE;
}

/* ---------------------------------------------------------------------- */
/* Reading tools                                                          */
/* ---------------------------------------------------------------------- */

static enum mcp_tool_status list_collections(struct mcp_call *c)
{
    struct rest r = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;

    buf_puts(&r.target, "/_collections");
    if (rest_run(c, &r, "GET", READ) != 0)
        goto out;
    if (r.resp.status != 200) {
        st = failed(c, &r);
        goto out;
    }
    buf_puts(&c->out, "{\"collections\":");
    buf_append(&c->out, r.resp.body, r.resp.body_len);
    buf_puts(&c->out, "}");
    st = done(c);
out:
    rest_free(&r);
    return st;
}

static enum mcp_tool_status list_documents(struct mcp_call *c)
{
    struct rest r = {0};
    struct buf after = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    size_t coll_len, after_len;
    const char *coll = arg_str(c, "collection", &coll_len);
    const char *after_arg = arg_str(c, "after", &after_len);

    target_doc(&r, coll, coll_len, NULL, 0);
    if (arg_u64(c, "limit"))
        query_u64(&r, "limit", arg_u64(c, "limit"));
    if (after_arg != NULL)
        query(&r, "after", after_arg, after_len);
    if (arg_u64(c, "as_of"))
        query_u64(&r, "as_of", arg_u64(c, "as_of"));
    if (rest_run(c, &r, "GET", READ) != 0)
        goto out;
    if (r.resp.status != 200) {
        st = failed(c, &r);
        goto out;
    }

    /* The snapshot the page was read at: the next page's link names it;
     * without one, the answer's revision or the requested one. */
    const char *link = header(&r.resp, "link");
    struct buf as_of = {0};
    if (!target_part(link, "as_of", -1, &as_of)) {
        const char *rev = header(&r.resp, "x-revision");
        if (rev != NULL)
            buf_puts(&as_of, rev);
        else if (arg_u64(c, "as_of"))
            buf_printf(&as_of, "%llu", (unsigned long long)arg_u64(c, "as_of"));
    }
    uint64_t snapshot = 0;
    if (as_of.len > 0 && uri_parse_u64(as_of.data, as_of.len, UINT64_MAX, &snapshot) != 0)
        snapshot = 0;
    buf_free(&as_of);

    buf_puts(&c->out, "{");
    field_str(&c->out, "collection", coll, coll_len);
    buf_puts(&c->out, ",\"documents\":");
    buf_append(&c->out, r.resp.body, r.resp.body_len);
    buf_puts(&c->out, ",\"next_after\":");
    if (target_part(link, "after", -1, &after))
        buf_json_string(&c->out, after.data, after.len);
    else
        buf_puts(&c->out, "null");
    if (snapshot)
        buf_printf(&c->out, ",\"as_of\":%llu}", (unsigned long long)snapshot);
    else
        buf_puts(&c->out, ",\"as_of\":null}");
    st = done(c);
out:
    buf_free(&after);
    rest_free(&r);
    return st;
}

static enum mcp_tool_status get_document(struct mcp_call *c)
{
    struct rest r = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    size_t coll_len, id_len;
    const char *coll = arg_str(c, "collection", &coll_len);
    const char *id = arg_str(c, "id", &id_len);

    target_doc(&r, coll, coll_len, id, id_len);
    if (arg_u64(c, "as_of"))
        query_u64(&r, "as_of", arg_u64(c, "as_of"));
    if (rest_run(c, &r, "GET", READ) != 0)
        goto out;
    if (r.resp.status != 200) {
        st = failed(c, &r);
        goto out;
    }
    buf_puts(&c->out, "{");
    field_str(&c->out, "collection", coll, coll_len);
    buf_puts(&c->out, ",");
    field_str(&c->out, "id", id, id_len);
    buf_printf(&c->out, ",\"revision\":%llu,\"document\":", (unsigned long long)etag_rev(&r.resp));
    buf_append(&c->out, r.resp.body, r.resp.body_len);
    buf_puts(&c->out, "}");
    st = done(c);
out:
    rest_free(&r);
    return st;
}

static enum mcp_tool_status list_versions(struct mcp_call *c)
{
    struct rest r = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    size_t coll_len, id_len;
    const char *coll = arg_str(c, "collection", &coll_len);
    const char *id = arg_str(c, "id", &id_len);

    target_doc(&r, coll, coll_len, id, id_len);
    buf_puts(&r.target, "/versions");
    if (rest_run(c, &r, "GET", READ) != 0)
        goto out;
    if (r.resp.status != 200) {
        st = failed(c, &r);
        goto out;
    }
    buf_puts(&c->out, "{");
    field_str(&c->out, "collection", coll, coll_len);
    buf_puts(&c->out, ",");
    field_str(&c->out, "id", id, id_len);
    buf_puts(&c->out, ",\"versions\":");
    buf_append(&c->out, r.resp.body, r.resp.body_len);
    buf_puts(&c->out, "}");
    st = done(c);
out:
    rest_free(&r);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Writing tools                                                          */
/* ---------------------------------------------------------------------- */

static enum mcp_tool_status put_document(struct mcp_call *c)
{
    struct rest r = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    size_t coll_len, id_len;
    const char *coll = arg_str(c, "collection", &coll_len);
    const char *id = arg_str(c, "id", &id_len);
    struct json_span doc = arg_raw(c, "document");

    target_doc(&r, coll, coll_len, id, id_len);
    set_if_match(&r, arg_u64(c, "if_match"));
    set_json_body(&r, doc.s, doc.len);
    if (rest_run(c, &r, "PUT", WRITE) != 0)
        goto out;
    if (r.resp.status != 200 && r.resp.status != 201) {
        st = failed(c, &r);
        goto out;
    }
    uint64_t rev = etag_rev(&r.resp);
    write_head(c, &r, coll, coll_len, id, id_len);
    if (r.resp.status == 201)
        undo_delete(&c->out, coll, coll_len, id, id_len, rev);
    else
        undo_rollback_to(&c->out, coll, coll_len, id, id_len, rev);
    buf_printf(&c->out, ",\"created\":%s}", r.resp.status == 201 ? "true" : "false");
    st = done(c);
out:
    rest_free(&r);
    return st;
}

static enum mcp_tool_status create_document(struct mcp_call *c)
{
    struct rest r = {0};
    struct buf id = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    size_t coll_len;
    const char *coll = arg_str(c, "collection", &coll_len);
    struct json_span doc = arg_raw(c, "document");

    target_doc(&r, coll, coll_len, NULL, 0);
    set_json_body(&r, doc.s, doc.len);
    if (rest_run(c, &r, "POST", WRITE) != 0)
        goto out;
    if (r.resp.status != 201) {
        st = failed(c, &r);
        goto out;
    }
    /* The server took the id from the document; Location names it. */
    if (!target_part(header(&r.resp, "location"), NULL, 1, &id) || id.oom)
        goto out;
    uint64_t rev = etag_rev(&r.resp);
    write_head(c, &r, coll, coll_len, id.data, id.len);
    undo_delete(&c->out, coll, coll_len, id.data, id.len, rev);
    buf_puts(&c->out, "}");
    st = done(c);
out:
    buf_free(&id);
    rest_free(&r);
    return st;
}

static enum mcp_tool_status delete_document(struct mcp_call *c)
{
    struct rest r = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    size_t coll_len, id_len;
    const char *coll = arg_str(c, "collection", &coll_len);
    const char *id = arg_str(c, "id", &id_len);

    target_doc(&r, coll, coll_len, id, id_len);
    set_if_match(&r, arg_u64(c, "if_match"));
    if (rest_run(c, &r, "DELETE", WRITE) != 0)
        goto out;
    if (r.resp.status != 204) {
        st = failed(c, &r);
        goto out;
    }
    write_head(c, &r, coll, coll_len, id, id_len);
    undo_rollback_to(&c->out, coll, coll_len, id, id_len, etag_rev(&r.resp));
    buf_puts(&c->out, "}");
    st = done(c);
out:
    rest_free(&r);
    return st;
}

static enum mcp_tool_status rollback_document(struct mcp_call *c)
{
    struct rest r = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    char body[96] = "";
    size_t coll_len, id_len;
    const char *coll = arg_str(c, "collection", &coll_len);
    const char *id = arg_str(c, "id", &id_len);
    uint64_t steps = arg_u64(c, "steps"), to = arg_u64(c, "to_version");

    target_doc(&r, coll, coll_len, id, id_len);
    buf_puts(&r.target, "/rollback");
    /* Both given: the REST answer (conflicting_options) explains it. */
    if (steps && to)
        snprintf(body, sizeof(body), "{\"steps\":%llu,\"to_version\":%llu}",
                 (unsigned long long)steps, (unsigned long long)to);
    else if (steps || to)
        snprintf(body, sizeof(body), "{\"%s\":%llu}", steps ? "steps" : "to_version",
                 (unsigned long long)(steps ? steps : to));
    if (body[0] != '\0')
        set_json_body(&r, body, strlen(body));
    set_if_match(&r, arg_u64(c, "if_match"));
    if (rest_run(c, &r, "POST", WRITE) != 0)
        goto out;
    if (r.resp.status != 200 && r.resp.status != 204) {
        st = failed(c, &r);
        goto out;
    }
    write_head(c, &r, coll, coll_len, id, id_len);
    undo_rollback_to(&c->out, coll, coll_len, id, id_len, etag_rev(&r.resp));
    if (r.resp.status == 204 || r.resp.body_len == 0) {
        buf_printf(&c->out, ",\"deleted\":%s,\"document\":null}",
                   r.resp.status == 204 ? "true" : "false");
    } else {
        buf_puts(&c->out, ",\"deleted\":false,\"document\":");
        buf_append(&c->out, r.resp.body, r.resp.body_len);
        buf_puts(&c->out, "}");
    }
    st = done(c);
out:
    rest_free(&r);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Change sets                                                            */
/* ---------------------------------------------------------------------- */

static void target_change_set(struct rest *r, const struct mcp_call *c)
{
    size_t len;
    const char *cs = arg_str(c, "change_set", &len);
    buf_puts(&r->target, "/_changesets/");
    buf_percent_encode(&r->target, cs, len);
}

static enum mcp_tool_status get_change_set(struct mcp_call *c)
{
    struct rest r = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;

    target_change_set(&r, c);
    if (rest_run(c, &r, "GET", READ) != 0)
        goto out;
    if (r.resp.status != 200) {
        st = failed(c, &r);
        goto out;
    }
    buf_append(&c->out, r.resp.body, r.resp.body_len);
    st = done(c);
out:
    rest_free(&r);
    return st;
}

static enum mcp_tool_status list_change_sets(struct mcp_call *c)
{
    struct rest r = {0};
    struct buf before = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    size_t len;
    const char *s;

    buf_puts(&r.target, "/_changesets");
    if ((s = arg_str(c, "since", &len)) != NULL)
        query(&r, "since", s, len);
    if ((s = arg_str(c, "actor", &len)) != NULL)
        query(&r, "actor", s, len);
    if (arg_u64(c, "limit"))
        query_u64(&r, "limit", arg_u64(c, "limit"));
    if (arg_u64(c, "before"))
        query_u64(&r, "before", arg_u64(c, "before"));
    if (rest_run(c, &r, "GET", READ) != 0)
        goto out;
    if (r.resp.status != 200) {
        st = failed(c, &r);
        goto out;
    }
    uint64_t next = 0;
    if (target_part(header(&r.resp, "link"), "before", -1, &before) &&
        uri_parse_u64(before.data, before.len, UINT64_MAX, &next) != 0)
        next = 0;
    buf_puts(&c->out, "{\"change_sets\":");
    buf_append(&c->out, r.resp.body, r.resp.body_len);
    if (next)
        buf_printf(&c->out, ",\"next_before\":%llu}", (unsigned long long)next);
    else
        buf_puts(&c->out, ",\"next_before\":null}");
    st = done(c);
out:
    buf_free(&before);
    rest_free(&r);
    return st;
}

static enum mcp_tool_status rollback_change_set(struct mcp_call *c)
{
    struct rest r = {0};
    enum mcp_tool_status st = MCP_TOOL_NOMEM;
    json_t *body = NULL;

    target_change_set(&r, c);
    buf_puts(&r.target, "/rollback");
    if (arg_true(c, "dry_run"))
        query(&r, "dry_run", "true", 4);
    if (arg_true(c, "force"))
        query(&r, "force", "true", 4);
    /* The undo gets a change set of its own (the server names it), never
     * the caller's default: that may be the very one being undone. */
    if (rest_run(c, &r, "POST", ACTOR) != 0)
        goto out;
    if (r.resp.status != 200 || r.resp.body_len < 2 || r.resp.body[r.resp.body_len - 1] != '}') {
        st = failed(c, &r);
        goto out;
    }

    /* The REST answer, with `undo` added before its closing brace. */
    body = json_loadb(r.resp.body, r.resp.body_len, 0, NULL);
    const char *undo = json_string_value(json_object_get(body, "rollback_change_set"));
    buf_append(&c->out, r.resp.body, r.resp.body_len - 1);
    if (undo != NULL && json_is_true(json_object_get(body, "applied")))
        undo_change_set(&c->out, "undo", undo, strlen(undo));
    else
        buf_puts(&c->out, ",\"undo\":null");
    buf_puts(&c->out, "}");
    st = done(c);
out:
    json_decref(body);
    rest_free(&r);
    return st;
}

/* ---------------------------------------------------------------------- */
/* Dispatch                                                               */
/* ---------------------------------------------------------------------- */

enum mcp_tool_status mcp_tools_call(const struct mcp_tools *t, struct mcp_call *c, const char *name,
                                    size_t name_len)
{
    for (size_t i = 0; i < NTOOLS; i++) {
        if (strlen(tools[i].name) != name_len || memcmp(tools[i].name, name, name_len) != 0)
            continue;
        if (!check(c->args, t->input[i], &c->out))
            return c->out.oom ? MCP_TOOL_NOMEM : MCP_TOOL_BAD_ARGS;
        return tools[i].run(c);
    }
    return MCP_TOOL_UNKNOWN;
}
