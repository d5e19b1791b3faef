/*
 * mcp_internal.h - what the MCP endpoint's modules share: the protocol
 * revisions, and the interface between the JSON-RPC layer (mcp.c) and the
 * tools (mcp_tools.c).
 */
#ifndef SNAPBACKD_MCP_INTERNAL_H
#define SNAPBACKD_MCP_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "api.h"
#include "buf.h"
#include "json_span.h"

/* Protocol revisions, oldest first, so that comparisons read naturally. */
enum mcp_version { MCP_2025_03_26, MCP_2025_06_18, MCP_2025_11_25, MCP_2026_07_28, MCP_NVERSIONS };

extern const char *const mcp_version_names[MCP_NVERSIONS];

/* One tools/call being carried out. */
struct mcp_call {
    struct api *api;
    enum mcp_version version;
    const char *change_set; /* default for writes: NUL-terminated, valid id */
    const char *actor;      /* the client's name, NUL-terminated; "" for none */
    json_t *args;           /* the arguments object (borrowed) */
    struct json_span raw;   /* its text, for documents passed on verbatim */
    uint64_t lsn;           /* out: the highest log position written */
    struct buf out;         /* out: see enum mcp_tool_status */
};

enum mcp_tool_status {
    MCP_TOOL_DONE,     /* out: the structured result, a JSON object */
    MCP_TOOL_FAILED,   /* out: a sentence saying what failed and what to do */
    MCP_TOOL_BAD_ARGS, /* out: which argument is wrong (the input schema's rules) */
    MCP_TOOL_UNKNOWN,  /* no tool of that name */
    MCP_TOOL_NOMEM
};

struct mcp_tools;

/* Builds the tool table and compiles its schemas.  Returns 0 or -1 (out of
 * memory, or a schema in the source that does not parse). */
int mcp_tools_new(struct mcp_tools **out);
void mcp_tools_free(struct mcp_tools *t);

/* Appends the JSON array of tool definitions as revision `v` defines a
 * tool (2025-03-26 has no output schema and no top-level title). */
void mcp_tools_list(const struct mcp_tools *t, enum mcp_version v, struct buf *out);

/* Checks the arguments against the tool's input schema and carries the
 * tool out.  Thread-safe; `t` is only read. */
enum mcp_tool_status mcp_tools_call(const struct mcp_tools *t, struct mcp_call *c, const char *name,
                                    size_t name_len);

#endif /* SNAPBACKD_MCP_INTERNAL_H */
