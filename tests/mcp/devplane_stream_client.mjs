// The official MCP TypeScript SDK client against devplane's /mcp, for what streams: progress of
// a gatewayed call (an SSE answer), notifications/tools/list_changed on the session's GET
// stream, and cancelling a call in flight.
//
//   node devplane_stream_client.mjs URL TOKEN MODE [TOOL] [ARGS_JSON]
//
// MODE
//   progress      calls TOOL with ARGS_JSON and an onprogress callback; prints
//                 {progress: [{progress, total, message}], result, ms}
//   list_changed  lists the tools, prints the line READY, waits (at most 60 s) for
//                 notifications/tools/list_changed, lists again; prints
//                 {before: [names], notified, after: [names]}
//   cancel        calls TOOL with ARGS_JSON and an onprogress callback, aborts the call at the
//                 first progress event (the SDK sends notifications/cancelled); prints
//                 {progress: n, error, ms}
// The last line printed is one JSON object. Exits 0 when the session could be opened, 2 otherwise.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const [url, token, mode, tool = '', argsJson = '{}'] = process.argv.slice(2);
const args = JSON.parse(argsJson);

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: 'devplane-it-stream-client', version: '1.0.0' });
let notified = 0;
let wake = null;
client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
  notified += 1;
  if (wake) wake();
});
try {
  await client.connect(transport);
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.message ?? e), code: e?.code ?? null }));
  process.exit(2);
}

const out = { mode };
const t0 = performance.now();
if (mode === 'progress') {
  out.progress = [];
  try {
    out.result = await client.callTool({ name: tool, arguments: args }, undefined, {
      onprogress: (p) => out.progress.push(p),
      timeout: 60_000,
    });
  } catch (e) {
    out.error = String(e?.message ?? e);
  }
} else if (mode === 'list_changed') {
  out.before = (await client.listTools()).tools.map((t) => t.name);
  console.log('READY');
  if (notified === 0) {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 60_000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  out.notified = notified;
  out.after = (await client.listTools()).tools.map((t) => t.name);
} else if (mode === 'cancel') {
  const controller = new AbortController();
  out.progress = 0;
  try {
    out.result = await client.callTool({ name: tool, arguments: args }, undefined, {
      onprogress: () => {
        out.progress += 1;
        controller.abort('enough');
      },
      signal: controller.signal,
      timeout: 60_000,
    });
  } catch (e) {
    out.error = String(e?.message ?? e);
  }
} else {
  out.error = `unknown mode ${mode}`;
}
out.ms = Math.round(performance.now() - t0);
try {
  await transport.terminateSession();
} catch {
  // the session may be gone already
}
await client.close();
console.log(JSON.stringify(out));
