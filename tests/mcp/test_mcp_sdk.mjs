// snapbackd's MCP endpoint driven by the official MCP TypeScript SDK client
// (@modelcontextprotocol/sdk, its Streamable HTTP client transport), once
// per protocol revision the SDK speaks: 2025-11-25, 2025-06-18, 2025-03-26.
//
// The SDK always asks for its latest revision in initialize; a wrapper
// around fetch rewrites that one field to force an older revision, which
// the server then answers in kind, and for 2025-03-26 it also drops the
// MCP-Protocol-Version header, which clients of that revision did not send.
//
// The story each time: a person fills a collection through REST; an agent,
// as one MCP session, rewrites and deletes some of it and creates and then
// rewrites 1000 documents of its own; rollback_change_set with dry_run
// shows the plan and changes nothing; the real one puts back exactly what
// the person had (checked through REST); undoing the undo brings the
// agent's state back.  The server is a real snapbackd (SNAPBACKD), started
// here on a free port, and must exit 0 on SIGTERM.
//
// Run: SNAPBACKD=build/server/snapbackd node --test tests/mcp/test_mcp_sdk.mjs
// (after `npm ci` in tests/mcp, which scripts/deps.sh does).

import { spawn } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

// Loaded at run time so that a missing install says what to do.
let Client, StreamableHTTPClientTransport;
try {
  ({ Client } = await import('@modelcontextprotocol/sdk/client/index.js'));
  ({ StreamableHTTPClientTransport } = await import('@modelcontextprotocol/sdk/client/streamableHttp.js'));
} catch (err) {
  throw new Error(`the MCP SDK is not installed here: run scripts/deps.sh (npm ci in tests/mcp): ${err.message}`);
}

// The SDK's transport hangs one abort listener per request on a signal it
// keeps for the whole connection; thousands of calls would print Node's
// leak warning, which says nothing about the server under test.
setMaxListeners(0);

const SNAPBACKD = process.env.SNAPBACKD;
const WAIT_MS = 10000; // bound on waiting for the server, not a timing check
const AGENT_DOCS = 1000;
const PARALLEL = 16; // tool calls in flight at once

const ANNOTATIONS = { // name: [readOnlyHint, destructiveHint, idempotentHint]; see docs/mcp.md
  list_collections: [true, false, true],
  list_documents: [true, false, true],
  get_document: [true, false, true],
  list_versions: [true, false, true],
  put_document: [false, true, true],
  create_document: [false, false, true],
  delete_document: [false, true, true],
  rollback_document: [false, true, false],
  get_change_set: [true, false, true],
  list_change_sets: [true, false, true],
  rollback_change_set: [false, true, true],
};

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function startServer() {
  assert.ok(SNAPBACKD, 'set SNAPBACKD to the snapbackd binary');
  const port = await freePort();
  const proc = spawn(SNAPBACKD, ['--listen', `127.0.0.1:${port}`, '--in-memory', '--threads', '2'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      if ((await fetch(`${base}/_health`)).ok) break;
    } catch { /* not listening yet */ }
    if (proc.exitCode !== null || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`snapbackd did not start:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return { base, proc, exited, log: () => stderr };
}

// A fetch that makes the SDK's initialize ask for `version`, and records
// what the server negotiated.
function forcingFetch(version, seen) {
  return async (url, init = {}) => {
    const headers = new Headers(init.headers);
    let body = init.body;
    if (typeof body === 'string') {
      const msg = JSON.parse(body);
      if (msg.method === 'initialize') {
        msg.params.protocolVersion = version;
        body = JSON.stringify(msg);
      }
    }
    if (version === '2025-03-26') headers.delete('mcp-protocol-version');
    const res = await fetch(url, { ...init, headers, body });
    if (typeof init.body === 'string' && JSON.parse(init.body).method === 'initialize') {
      seen.negotiated = (await res.clone().json()).result?.protocolVersion;
    }
    return res;
  };
}

// The structured result of a tool call; 2025-03-26 has only the text.
function structured(result, version) {
  assert.notEqual(result.isError, true, JSON.stringify(result));
  const fromText = JSON.parse(result.content[0].text);
  if (version === '2025-03-26') {
    assert.equal(result.structuredContent, undefined);
    return fromText;
  }
  assert.deepEqual(result.structuredContent, fromText);
  return result.structuredContent;
}

async function inParallel(n, fn) {
  let next = 0;
  const workers = Array.from({ length: PARALLEL }, async () => {
    while (next < n) await fn(next++);
  });
  await Promise.all(workers);
}

// Every document of a collection through REST, as exact texts, sorted.
async function listing(base, coll) {
  const docs = [];
  let path = `/${coll}?limit=1000`;
  while (path) {
    const res = await fetch(base + path);
    assert.equal(res.status, 200);
    const page = await res.json();
    for (const d of page) docs.push(JSON.stringify(d));
    const link = res.headers.get('link');
    path = link ? link.slice(link.indexOf('<') + 1, link.indexOf('>')) : null;
  }
  return docs.sort();
}

async function restPut(base, path, doc, changeSet) {
  const res = await fetch(base + path, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/json', 'X-Change-Set': changeSet, 'X-Actor': 'person' },
    body: JSON.stringify(doc),
  });
  assert.ok(res.status === 200 || res.status === 201, `${path}: ${res.status}`);
}

describe('MCP over Streamable HTTP with the official SDK client', () => {
  let server;

  before(async () => { server = await startServer(); });

  after(async () => {
    server.proc.kill('SIGTERM');
    const { code, signal } = await server.exited;
    assert.equal(code, 0, `snapbackd exited with ${code} (signal ${signal}):\n${server.log()}`);
  });

  for (const version of ['2025-11-25', '2025-06-18', '2025-03-26']) {
    test(`agent damage and undo at protocol ${version}`, async () => {
      const { base } = server;
      const coll = `ledger_${version.replaceAll('-', '_')}`;
      const seen = {};
      const transport = new StreamableHTTPClientTransport(new URL(`${base}/_mcp`),
        { fetch: forcingFetch(version, seen) });
      const client = new Client({ name: 'ledger-agent', version: '1.0.0' });
      await client.connect(transport);
      assert.equal(seen.negotiated, version);
      assert.match(transport.sessionId, /^mcp-[0-9a-f]{32}$/);
      assert.equal(client.getServerVersion().name, 'snapbackd');
      assert.match(client.getInstructions(), new RegExp(transport.sessionId));
      const session = transport.sessionId;

      // The tools, their schemas and their annotations.
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), Object.keys(ANNOTATIONS).sort());
      for (const t of tools) {
        const a = t.annotations;
        assert.deepEqual([a.readOnlyHint, a.destructiveHint, a.idempotentHint], ANNOTATIONS[t.name], t.name);
        assert.equal(a.openWorldHint, false);
        assert.equal(t.inputSchema.type, 'object');
        assert.equal(t.inputSchema.additionalProperties, false);
        if (version === '2025-03-26') {
          assert.equal(t.outputSchema, undefined, t.name);
        } else {
          assert.equal(t.outputSchema.type, 'object', t.name);
          assert.ok(t.title, t.name);
        }
        if (!a.readOnlyHint) assert.ok(t.inputSchema.properties.change_set, t.name);
      }
      const call = async (name, args) => structured(await client.callTool({ name, arguments: args }), version);

      // What a person wrote through REST, before the agent came.
      for (let i = 0; i < 10; i++) {
        await restPut(base, `/${coll}/p${i}`, { id: `p${i}`, owner: 'person', amount: i + 0.5 }, 'person-entry');
      }
      const before = await listing(base, coll);

      // The agent, as one session: its own 1000 documents, then rewrites.
      await inParallel(AGENT_DOCS, async (i) => {
        const out = await call('create_document', { collection: coll, document: { id: `a${i}`, amount: i } });
        assert.equal(out.change_set, session);
        assert.deepEqual(out.undo_change_set, { tool: 'rollback_change_set', arguments: { change_set: session } });
        assert.deepEqual(out.undo, { tool: 'delete_document', arguments: { collection: coll, id: `a${i}`, if_match: out.revision } });
      });
      await inParallel(AGENT_DOCS, async (i) => {
        const out = await call('put_document', { collection: coll, id: `a${i}`, document: { id: `a${i}`, amount: -i } });
        assert.equal(out.created, false);
      });
      for (let i = 0; i < 10; i++) {
        await call('put_document', { collection: coll, id: `p${i}`, document: { id: `p${i}`, owner: 'agent' } });
      }
      for (let i = 0; i < 4; i++) await call('delete_document', { collection: coll, id: `p${i}` });
      const damaged = await listing(base, coll);
      assert.equal(damaged.length, AGENT_DOCS + 6);

      const shown = await call('get_change_set', { change_set: session });
      assert.equal(shown.actor, 'ledger-agent');
      assert.equal(shown.documents.length, AGENT_DOCS + 10);

      // The plan changes nothing.
      const plan = await call('rollback_change_set', { change_set: session, dry_run: true });
      assert.equal(plan.applied, false);
      assert.equal(plan.undo, null);
      assert.equal(plan.summary.documents, AGENT_DOCS + 10);
      assert.equal(plan.summary.clean, AGENT_DOCS + 10);
      assert.deepEqual(await listing(base, coll), damaged);

      // The rollback puts back exactly what the person had.
      const done = await call('rollback_change_set', { change_set: session });
      assert.equal(done.applied, true);
      assert.match(done.rollback_change_set, /^undo-/);
      assert.deepEqual(done.undo, { tool: 'rollback_change_set', arguments: { change_set: done.rollback_change_set } });
      assert.deepEqual(await listing(base, coll), before);

      // And the undo can be undone.
      const redo = await call(done.undo.tool, done.undo.arguments);
      assert.equal(redo.applied, true);
      assert.deepEqual(await listing(base, coll), damaged);

      // A failure is a result the model can read, not a protocol error.
      const failed = await client.callTool({ name: 'get_document', arguments: { collection: coll, id: 'p0' } });
      assert.equal(failed.isError, true);
      assert.match(failed.content[0].text, /not_found/);

      // Ending the session: the server forgets it.
      await transport.terminateSession();
      const stale = new StreamableHTTPClientTransport(new URL(`${base}/_mcp`), { sessionId: session });
      const staleClient = new Client({ name: 'ledger-agent', version: '1.0.0' });
      await staleClient.connect(stale);
      await assert.rejects(staleClient.listTools(), (err) => err.code === 404);
      await staleClient.close();
      await client.close();
    });
  }
});
