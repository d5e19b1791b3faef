/*
 * test_mcp.c - unit tests of the MCP endpoint below the socket: locating
 * values in JSON text (json_span.c), the bounded session table
 * (mcp_session.c), the --allow-origin syntax, and what mcp_handle() hands
 * the HTTP layer for a write: the highest log position of every write the
 * request made, so that the answer waits for all of them to be durable.
 * The protocol itself is tested end to end: tests/integration/test_mcp.py
 * and tests/mcp/test_mcp_sdk.mjs.
 */
/* mkdtemp() and asprintf() lie outside strict C11. */
#define _GNU_SOURCE

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "json_span.h"
#include "mcp.h"
#include "mcp_session.h"
#include "snapback.h"
#include "remove_tree.h"

/* ------------------------------------------------------------------ */
/* json_span                                                          */
/* ------------------------------------------------------------------ */

static struct json_span span(const char *s)
{
    return json_span_of(s, strlen(s));
}

static void assert_span(struct json_span got, const char *want)
{
    assert_int_equal(got.len, strlen(want));
    assert_memory_equal(got.s, want, got.len);
}

static void test_span_members(void **state)
{
    struct json_span out;
    const char *text =
        " {\"a\" : [1, {\"x\":\"}\"}], \"doc\":{\"p\":0.10, \"q\":\"a\\\"b\"},"
        "\"n\":-1.5e3 , \"last\":null} ";
    (void)state;

    assert_true(json_span_member(span(text), "a", &out));
    assert_span(out, "[1, {\"x\":\"}\"}]");
    assert_true(json_span_member(span(text), "doc", &out));
    assert_span(out, "{\"p\":0.10, \"q\":\"a\\\"b\"}");
    assert_true(json_span_member(span(text), "n", &out));
    assert_span(out, "-1.5e3");
    assert_true(json_span_member(span(text), "last", &out));
    assert_span(out, "null");
    assert_false(
        json_span_member(span(text), "x", &out)); /* only top-level members */
    assert_false(json_span_member(span(text), "do", &out));
    assert_false(json_span_member(span("[1,2]"), "a", &out));
    assert_false(json_span_member(span("{}"), "a", &out));
}

static void test_span_escaped_names(void **state)
{
    struct json_span out;
    (void)state;

    /* A member name is compared after its escapes are decoded. */
    assert_true(json_span_member(span("{\"d\\u006fc\":1}"), "doc", &out));
    assert_span(out, "1");
    assert_true(json_span_member(span("{\"a\\/b\":2}"), "a/b", &out));
    assert_span(out, "2");
    /* An escape beyond ASCII matches no ASCII name. */
    assert_false(json_span_member(span("{\"doc\\u00e9\":1}"), "doc", &out));
    assert_false(json_span_member(span("{\"do\\u0000\":1}"), "do", &out));
}

static void test_span_elements(void **state)
{
    struct json_span out;
    const char *text = "[ {\"id\":1} , \"s,]\" ,[[]], 7 ]";
    size_t pos = 0;
    (void)state;

    assert_true(json_span_next(span(text), &pos, &out));
    assert_span(out, "{\"id\":1}");
    assert_true(json_span_next(span(text), &pos, &out));
    assert_span(out, "\"s,]\"");
    assert_true(json_span_next(span(text), &pos, &out));
    assert_span(out, "[[]]");
    assert_true(json_span_next(span(text), &pos, &out));
    assert_span(out, "7");
    assert_false(json_span_next(span(text), &pos, &out));
    pos = 0;
    assert_false(json_span_next(span("[]"), &pos, &out));
}

static void test_span_truncated_text(void **state)
{
    struct json_span out;
    (void)state;

    /* Not valid JSON: no promise but staying inside the text. */
    json_span_member(span("{\"a\":\"unterminated"), "a", &out);
    json_span_member(span("{\"a\":[[[[{"), "a", &out);
    json_span_member(span("{\"a\\"), "a", &out);
    json_span_member(span("{\"a\":1,"), "b", &out);
    size_t pos = 0;
    json_span_next(span("[1,"), &pos, &out);
    json_span_next(span("[1,"), &pos, &out);
}

/* ------------------------------------------------------------------ */
/* Sessions                                                           */
/* ------------------------------------------------------------------ */

static void test_sessions_lru(void **state)
{
    struct mcp_sessions *s;
    struct mcp_session a, b, c, got;
    (void)state;

    assert_int_equal(mcp_sessions_new(2, &s), 0);
    assert_int_equal(mcp_sessions_open(s, 1, "agent a", &a), 0);
    assert_int_equal(mcp_sessions_open(s, 2, "", &b), 0);
    assert_int_equal(strlen(a.id), MCP_SESSION_ID_LEN);
    assert_memory_equal(a.id, "mcp-", 4);
    assert_string_not_equal(a.id, b.id);

    /* Using a makes b the least recently used, which c then evicts. */
    assert_true(mcp_sessions_find(s, a.id, MCP_SESSION_ID_LEN, &got));
    assert_int_equal(got.version, 1);
    assert_string_equal(got.actor, "agent a");
    assert_int_equal(mcp_sessions_open(s, 3, "c", &c), 0);
    assert_int_equal(mcp_sessions_count(s), 2);
    assert_false(mcp_sessions_find(s, b.id, MCP_SESSION_ID_LEN, &got));
    assert_true(mcp_sessions_find(s, a.id, MCP_SESSION_ID_LEN, &got));
    assert_true(mcp_sessions_find(s, c.id, MCP_SESSION_ID_LEN, &got));

    /* Lookups of other lengths or unknown ids find nothing. */
    assert_false(mcp_sessions_find(s, a.id, MCP_SESSION_ID_LEN - 1, &got));
    assert_false(mcp_sessions_find(s, "", 0, &got));

    assert_true(mcp_sessions_close(s, a.id, MCP_SESSION_ID_LEN));
    assert_false(mcp_sessions_close(s, a.id, MCP_SESSION_ID_LEN));
    assert_false(mcp_sessions_find(s, a.id, MCP_SESSION_ID_LEN, &got));
    assert_int_equal(mcp_sessions_count(s), 1);
    mcp_sessions_free(s);
}

static void test_sessions_actor_bounded(void **state)
{
    struct mcp_sessions *s;
    struct mcp_session a, got;
    char name[300];
    (void)state;

    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(mcp_sessions_new(1, &s), 0);
    assert_int_equal(mcp_sessions_open(s, 0, name, &a), 0);
    assert_true(mcp_sessions_find(s, a.id, MCP_SESSION_ID_LEN, &got));
    assert_int_equal(strlen(got.actor), MCP_ACTOR_MAX);
    mcp_sessions_free(s);
}

/* ------------------------------------------------------------------ */
/* Origins                                                            */
/* ------------------------------------------------------------------ */

static void test_origin_syntax(void **state)
{
    static const char *const good[] = {
        "http://example.com", "https://a.b-c.example:8443",
        "http://10.0.0.5:3000", "https://[fd00::1]:443", "HTTPS://Example.COM"};
    static const char *const bad[] = {"example.com",
                                      "ftp://example.com",
                                      "http://",
                                      "http://example.com/",
                                      "http://example.com:",
                                      "http://example.com:0",
                                      "http://example.com:65536",
                                      "http://a b",
                                      "http://[::1",
                                      "null",
                                      "*"};
    (void)state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(mcp_origin_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(mcp_origin_valid(bad[i]));
}

/* ------------------------------------------------------------------ */
/* Log positions of tool calls                                        */
/* ------------------------------------------------------------------ */

struct fx {
    char dir[256];
    struct api *api;
    struct mcp *mcp;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    const char *tmp = getenv("TMPDIR");
    struct mcp_config mcfg = {0};

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "%s/sbmcp-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    struct api_config cfg = {.history = 8,
                             .max_body = 1 << 20,
                             .data_dir = fx->dir,
                             .fsync = SB_FSYNC_ALWAYS,
                             .fsync_interval_ms = 10};
    if (api_new(&cfg, &fx->api) != SB_OK ||
        mcp_new(fx->api, &mcfg, &fx->mcp) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    mcp_free(fx->mcp);
    api_free(fx->api);
    remove_tree(fx->dir);
    free(fx);
    return 0;
}

#define META                                                                   \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","   \
    "\"io.modelcontextprotocol/clientCapabilities\":{}}"

/* Posts `body` with the headers given (NULL: absent); the caller frees
 * the answer. */
static void post(struct fx *fx, const char *version, const char *session,
                 const char *method, const char *name, const char *body,
                 struct api_resp *resp)
{
    struct mcp_req req = {.method = "POST", .method_len = 4, .body = body};

    req.content_type = "application/json";
    req.content_type_len = strlen(req.content_type);
    req.protocol_version = version;
    req.protocol_version_len = version ? strlen(version) : 0;
    req.session_id = session;
    req.session_id_len = session ? strlen(session) : 0;
    req.mcp_method = method;
    req.mcp_method_len = method ? strlen(method) : 0;
    req.mcp_name = name;
    req.mcp_name_len = name ? strlen(name) : 0;
    req.body_len = strlen(body);
    mcp_handle(fx->mcp, &req, resp);
}

/* Posts one stateless tools/call; returns the answer's log position. */
static uint64_t call(struct fx *fx, const char *tool, const char *args,
                     const char *expect)
{
    char body[1024];
    struct api_resp resp;

    snprintf(body, sizeof(body),
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/"
             "call\",\"params\":{\"name\":\"%s\","
             "\"arguments\":%s," META "}}",
             tool, args);
    post(fx, "2026-07-28", NULL, "tools/call", tool, body, &resp);
    assert_int_equal(resp.status, 200);
    assert_non_null(resp.body);
    if (strstr(resp.body, expect) == NULL)
        fail_msg("expected %s in %s", expect, resp.body);
    uint64_t lsn = resp.lsn;
    api_resp_free(&resp);
    return lsn;
}

static void test_writes_carry_their_log_position(void **state)
{
    struct fx *fx = *state;
    sb_store *store = api_store(fx->api);

    uint64_t first =
        call(fx, "create_document",
             "{\"collection\":\"c\",\"document\":{\"id\":\"a\",\"v\":1}}",
             "\"revision\":1");
    assert_true(first > 0);
    uint64_t second =
        call(fx, "put_document",
             "{\"collection\":\"c\",\"id\":\"a\",\"document\":{\"id\":\"a\"}}",
             "\"created\":false");
    assert_true(second > first);
    /* The HTTP layer waits for the position before answering. */
    assert_int_equal(sb_store_sync(store, second), SB_OK);
    assert_true(sb_store_synced(store) >= second);

    /* Reads and refused writes write nothing. */
    assert_int_equal(call(fx, "get_document",
                          "{\"collection\":\"c\",\"id\":\"a\"}",
                          "\"document\""),
                     0);
    assert_int_equal(call(fx, "create_document",
                          "{\"collection\":\"c\",\"document\":{\"id\":\"a\"}}",
                          "\"isError\":true"),
                     0);
    assert_int_equal(call(fx, "put_document",
                          "{\"collection\":\"c\",\"id\":\"a\"}",
                          "\"isError\":true"),
                     0);
}

/* A 2025-03-26 batch answers with the highest position of all its calls,
 * not the last one's: here the last is a read. */
static void test_batch_carries_highest_position(void **state)
{
    struct fx *fx = *state;
    struct api_resp resp;
    char session[MCP_SESSION_ID_LEN + 1] = "";

    post(fx, NULL, NULL, NULL, NULL,
         "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
         "\"protocolVersion\":"
         "\"2025-03-26\",\"capabilities\":{},\"clientInfo\":{\"name\":\"t\","
         "\"version\":\"1\"}}}",
         &resp);
    assert_int_equal(resp.status, 200);
    for (size_t i = 0; i < resp.nheaders; i++) {
        if (strcmp(resp.headers[i].name, "mcp-session-id") == 0)
            snprintf(session, sizeof(session), "%s", resp.headers[i].value);
    }
    api_resp_free(&resp);
    assert_int_equal(strlen(session), MCP_SESSION_ID_LEN);

    uint64_t before = call(fx, "create_document",
                           "{\"collection\":\"b\",\"document\":{\"id\":\"x\"}}",
                           "\"revision\"");
    post(
        fx, NULL, session, NULL, NULL,
        "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/"
        "call\",\"params\":{\"name\":"
        "\"put_document\",\"arguments\":{\"collection\":\"b\",\"id\":\"y\","
        "\"document\":{}}}},"
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/"
        "call\",\"params\":{\"name\":"
        "\"get_document\",\"arguments\":{\"collection\":\"b\",\"id\":\"x\"}}}]",
        &resp);
    assert_int_equal(resp.status, 200);
    /* 2025-03-26 has no structuredContent: the result is the text. */
    assert_non_null(strstr(resp.body, "\\\"created\\\":true"));
    assert_true(resp.lsn > before);
    api_resp_free(&resp);
}

static void test_unknown_method_writes_nothing(void **state)
{
    struct fx *fx = *state;
    struct api_resp resp;

    post(fx, "2026-07-28", NULL, "x", NULL,
         "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{" META
         "}}",
         &resp);
    assert_int_equal(resp.status, 404);
    assert_int_equal(resp.lsn, 0);
    assert_non_null(strstr(resp.body, "-32601"));
    api_resp_free(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_span_members),
        cmocka_unit_test(test_span_escaped_names),
        cmocka_unit_test(test_span_elements),
        cmocka_unit_test(test_span_truncated_text),
        cmocka_unit_test(test_sessions_lru),
        cmocka_unit_test(test_sessions_actor_bounded),
        cmocka_unit_test(test_origin_syntax),
        cmocka_unit_test_setup_teardown(test_writes_carry_their_log_position,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_carries_highest_position,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_method_writes_nothing,
                                        setup, teardown),
    };

    if (sb_thread_register() != SB_OK)
        return 1;
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    sb_thread_unregister();
    return failed;
}
