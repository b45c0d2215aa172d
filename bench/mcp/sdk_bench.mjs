// The official MCP TypeScript SDK client doing what bench/mcp/mcpbench.cpp does: sequential
// tools/call of one tool, over stdio or Streamable HTTP; prints the same JSON line.
//   node sdk_bench.mjs --stdio node .../index.js stdio [--calls N] [--warmup W]
//   node sdk_bench.mjs --url http://127.0.0.1:3001/mcp [--calls N] [--warmup W]
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../tests/mcp/package.json'));
const sdk = (p) => import(require.resolve(`@modelcontextprotocol/sdk/${p}`));
const { Client } = await sdk('client/index.js');
const { StdioClientTransport } = await sdk('client/stdio.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');

const argv = process.argv.slice(2);
let calls = 5000, warmup = 200, tool = 'echo', url = '', command = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--calls') calls = Number(argv[++i]);
  else if (a === '--warmup') warmup = Number(argv[++i]);
  else if (a === '--tool') tool = argv[++i];
  else if (a === '--url') url = argv[++i];
  else if (a === '--stdio') { while (i + 1 < argv.length && !['--calls', '--warmup', '--tool', '--url'].includes(argv[i + 1])) command.push(argv[++i]); }
  else { console.error(`unknown argument ${a}`); process.exit(2); }
}
const transport = url
  ? new StreamableHTTPClientTransport(new URL(url))
  : new StdioClientTransport({ command: command[0], args: command.slice(1), stderr: 'ignore' });
const client = new Client({ name: 'sdk-bench', version: '1.0.0' });
await client.connect(transport);
const args = { name: tool, arguments: { message: 'hi' } };
for (let i = 0; i < warmup; i++) await client.callTool(args);
const ms = [];
const cpu0 = process.cpuUsage();  // this process's CPU time, every thread
const t0 = performance.now();
for (let i = 0; i < calls; i++) {
  const c0 = performance.now();
  const r = await client.callTool(args);
  ms.push(performance.now() - c0);
  if (r.isError) { console.error(`call ${i}: isError`); process.exit(1); }
}
const secs = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
ms.sort((a, b) => a - b);
const pct = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
console.log(JSON.stringify({ client: 'sdk', transport: url ? 'http' : 'stdio', calls, seconds: secs,
  callsPerSec: calls / secs, p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: ms[ms.length - 1],
  cpuUsPerCall: (cpu.user + cpu.system) / calls }));
await client.close();
process.exit(0);
