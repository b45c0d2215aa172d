// A minimal MCP server built with the official TypeScript SDK: one tool, `echo`, declared as
// server-everything declares it, and nothing else. bench/mcp/run measures the clients against
// it as well as against server-everything, whose own time per call (Express, CORS, a log line
// and an unbounded event store on every HTTP request) is larger than what separates the
// clients; see docs/benchmarks.md.
//
//   node echo_server.mjs stdio
//   node echo_server.mjs http PORT      (listens on 127.0.0.1:PORT, endpoint /mcp, sessions)
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import http from 'node:http';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../tests/mcp/package.json'));
const load = (p) => import(require.resolve(p));
const { McpServer } = await load('@modelcontextprotocol/sdk/server/mcp.js');
const { StdioServerTransport } = await load('@modelcontextprotocol/sdk/server/stdio.js');
const { StreamableHTTPServerTransport } = await load('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { z } = await load('zod');

const EchoSchema = z.object({ message: z.string().describe('Message to echo') });

function makeServer() {
  const server = new McpServer({ name: 'devplane-bench-echo', version: '1.0.0' });
  server.registerTool('echo', {
    title: 'Echo Tool',
    description: 'Echoes back the input string',
    inputSchema: EchoSchema,
    annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  }, async (args) => ({ content: [{ type: 'text', text: `Echo: ${EchoSchema.parse(args).message}` }] }));
  return server;
}

const [mode, portArg] = process.argv.slice(2);
if (mode === 'stdio') {
  await makeServer().connect(new StdioServerTransport());
} else if (mode === 'http' && /^\d+$/.test(portArg ?? '')) {
  const sessions = new Map();
  const limit = 1 << 20;
  const httpServer = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/mcp') { res.writeHead(404).end(); return; }
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) { res.writeHead(413).end(); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', async () => {
      if (res.writableEnded) return;
      let body;
      if (req.method === 'POST') {
        try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch {
          res.writeHead(400, { 'content-type': 'application/json' })
            .end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }));
          return;
        }
      }
      const id = req.headers['mcp-session-id'];
      let transport = id ? sessions.get(id) : undefined;
      if (!transport) {
        if (id || req.method !== 'POST') { res.writeHead(404).end(); return; }
        transport = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (sid) => sessions.set(sid, transport),
        });
        transport.onclose = () => { if (transport.sessionId) sessions.delete(transport.sessionId); };
        await makeServer().connect(transport);
      }
      await transport.handleRequest(req, res, body);
    });
  });
  httpServer.listen(Number(portArg), '127.0.0.1');
} else {
  console.error('usage: node echo_server.mjs stdio | http PORT');
  process.exit(2);
}
