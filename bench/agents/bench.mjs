// Agent benchmark, through the API of a running devplane, for a no-op command agent (`true`),
// once sandboxed (bubblewrap + cgroups) and once with isolation: none:
//
//   node bench.mjs BASE_URL TOKEN [TASKS=200] [STARTS=30]
//
// - start: POST /agents/:id/start until it answers (the agent is running), then stop; p50/p99.
// - sandbox start-to-exit: the program's own wall time as the runner measured it (fork, cgroup,
//   bubblewrap namespaces and mounts, exec of `true`, exit, reaping), from result.wallMs.
// - task round trip: POST /tasks until a GET reads it finished (polled every 1 ms), and the
//   overhead = round trip minus the program's wall time: what devplane adds per task (queue,
//   claim, result, events). Tasks run one after another.
// Bounded: every request has a 10 s timeout, each task a 30 s deadline.
const [base, token, tasksArg, startsArg] = process.argv.slice(2);
if (!base || !token) {
  console.error("usage: node bench.mjs BASE_URL TOKEN [TASKS] [STARTS]");
  process.exit(2);
}
const tasks = Number(tasksArg ?? 200);
const starts = Number(startsArg ?? 30);
const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
const tag = Date.now().toString(36);

async function call(method, path, body) {
  const res = await fetch(`${base}${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const json = await res.json().catch(() => null);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.data;
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const pct = (p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  return { n: s.length, p50: pct(50), p99: pct(99), max: s[s.length - 1] };
}
const fmt = (x) => `p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, max ${x.max.toFixed(2)} ms (n=${x.n})`;

async function bench(isolation) {
  const agent = await call("POST", "/api/v1/agents", {
    name: `bench-${isolation}-${tag}`, type: "command",
    config: { command: ["true"], isolation, memoryMb: 64, pids: 16 },
  });
  const startMs = [];
  for (let i = 0; i < starts; i++) {
    const t0 = performance.now();
    await call("POST", `/api/v1/agents/${agent.id}/start`);
    startMs.push(performance.now() - t0);
    await call("POST", `/api/v1/agents/${agent.id}/stop`);
  }
  await call("POST", `/api/v1/agents/${agent.id}/start`);
  const rtt = [], wall = [], overhead = [];
  for (let i = 0; i < tasks + 5; i++) {
    const t0 = performance.now();
    const t = await call("POST", `/api/v1/agents/${agent.id}/tasks`, { input: "" });
    const deadline = Date.now() + 30_000;
    let done;
    for (;;) {
      done = await call("GET", `/api/v1/agents/${agent.id}/tasks/${t.id}`);
      if (["succeeded", "failed", "cancelled"].includes(done.status)) break;
      if (Date.now() > deadline) throw new Error("task took longer than 30 s");
      await new Promise((r) => setTimeout(r, 1));
    }
    const r = performance.now() - t0;
    if (done.status !== "succeeded") throw new Error(`task ${done.status}: ${done.error}`);
    if (i < 5) continue;  // warm-up
    rtt.push(r);
    wall.push(done.result.wallMs);
    overhead.push(r - done.result.wallMs);
  }
  await call("POST", `/api/v1/agents/${agent.id}/stop`);
  return { start: stats(startMs), wall: stats(wall), rtt: stats(rtt), overhead: stats(overhead) };
}

for (const isolation of ["sandbox", "none"]) {
  const r = await bench(isolation);
  console.log(`isolation: ${isolation}`);
  console.log(`  agent start (API)           ${fmt(r.start)}`);
  console.log(`  program start-to-exit       ${fmt(r.wall)}`);
  console.log(`  task round trip             ${fmt(r.rtt)}`);
  console.log(`  task overhead (rtt - wall)  ${fmt(r.overhead)}`);
}
