// The official MCP TypeScript SDK client against devplane's /mcp, for the integration tests.
//
//   node devplane_client.mjs URL TOKEN CALLS_JSON
//
// Connects over Streamable HTTP with `Authorization: Bearer TOKEN` (initialize, then
// notifications/initialized), lists the tools, makes each call of CALLS_JSON (an array of
// {name, arguments}) and ends the session (DELETE). Prints one JSON line:
//   {protocolVersion, server, sessionId, tools: [names], calls: [{result} | {error, code}],
//    sessionEnded}
// Exits 0 when the session could be opened, 2 otherwise (the error printed as {error}).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token, callsJson = '[]'] = process.argv.slice(2);
const calls = JSON.parse(callsJson);

const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: 'devplane-it-sdk-client', version: '1.0.0' });
try {
  await client.connect(transport);
} catch (e) {
  console.log(JSON.stringify({ error: String(e?.message ?? e), code: e?.code ?? null }));
  process.exit(2);
}
const out = {
  protocolVersion: transport.protocolVersion ?? null,
  server: client.getServerVersion(),
  sessionId: transport.sessionId ?? null,
  tools: [],
  calls: [],
  sessionEnded: false,
};
const listed = await client.listTools();
out.tools = listed.tools.map((t) => t.name);
for (const c of calls) {
  try {
    out.calls.push({ result: await client.callTool({ name: c.name, arguments: c.arguments ?? {} }) });
  } catch (e) {
    out.calls.push({ error: String(e?.message ?? e), code: e?.code ?? null });
  }
}
try {
  await transport.terminateSession();
  out.sessionEnded = transport.sessionId === undefined;
} catch (e) {
  out.sessionEnded = `error: ${e?.message ?? e}`;
}
await client.close();
console.log(JSON.stringify(out));
