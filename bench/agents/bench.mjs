// Agent benchmark, through the API of a running devplane, for a no-op command agent (`true`),
// once sandboxed (bubblewrap + cgroups) and once with isolation: none:
//
//   node --experimental-websocket bench.mjs BASE_URL TOKEN [TASKS=200] [STARTS=30]
//
// - start: POST /agents/:id/start until it answers (the agent is running), then stop; p50/p99.
// - sandbox start-to-exit: the program's own wall time as the runner measured it (fork, cgroup,
//   bubblewrap namespaces and mounts, exec of `true`, exit, reaping), from result.wallUs.
// - task round trip, measured two ways, TASKS tasks each, one after another:
//   - event: from sending POST /tasks to receiving the task's `agent.task.update` event with a
//     final status on a /ws subscription (no polling: what a client that listens sees);
//   - poll: POST /tasks, then GET the task every 1 ms until it reads finished (the figure
//     recorded before the event mode existed; up to 1 ms of it is the polling).
//   The overhead = round trip minus the program's wall time (wallUs, microseconds): what
//   devplane adds per task (queue, claim, result, events). All times in ms with two decimals.
//   For `event`, also where it goes, from the result's startedAtUs / endedAtUs (this machine's
//   clock, as the client's): POST answered; sent -> the executor began the task (commit,
//   wake-up, claim); began -> program started (workspace, sandbox set-up: endedAtUs - wallUs);
//   program ended -> final event received (result commit, outbox relay, /ws).
// Bounded: every request has a 10 s timeout, each task a 30 s deadline.
import http from "node:http";

const [base, token, tasksArg, startsArg] = process.argv.slice(2);
if (!base || !token) {
  console.error("usage: node bench.mjs BASE_URL TOKEN [TASKS] [STARTS]");
  process.exit(2);
}
const tasks = Number(tasksArg ?? 200);
const starts = Number(startsArg ?? 30);
const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
const tag = Date.now().toString(36);

// node:http on one kept-alive connection rather than fetch: fetch (undici) adds about 0.2 ms
// of its own per request here, which is the client's cost, not devplane's.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function call(method, path, body) {
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, {
      method, agent, timeout: 10_000,
      headers: method === "GET" ? headers : { ...headers, "content-length": data === undefined ? 0 : Buffer.byteLength(data) },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { text += d; });
      res.on("end", () => {
        let json = null;
        try { json = JSON.parse(text); } catch { /* reported below */ }
        if (res.statusCode >= 300 || json === null) {
          reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
        } else {
          resolve(json.data);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on("error", reject);
    req.end(data);
  });
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const pct = (p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  return { n: s.length, p50: pct(50), p99: pct(99), max: s[s.length - 1] };
}
const fmt = (x) => `p50 ${x.p50.toFixed(2)} ms, p99 ${x.p99.toFixed(2)} ms, max ${x.max.toFixed(2)} ms (n=${x.n})`;

// One /ws connection subscribed to agent.task.update; `finished` holds, per task id, the
// arrival time of its final event and its data (events may arrive before POST answers).
async function openEvents() {
  if (typeof WebSocket === "undefined") throw new Error("no WebSocket: run node with --experimental-websocket");
  const ws = new WebSocket(base.replace(/^http/, "ws") + "/ws", ["devplane.v1", `bearer.${token}`]);
  const finished = new Map();
  const waiters = new Map();
  let acked;
  const ack = new Promise((r) => { acked = r; });
  ws.onmessage = (m) => {
    const at = performance.now();
    const msg = JSON.parse(m.data);
    if (msg.type === "ack") acked();
    if (msg.type !== "event" || msg.topic !== "agent.task.update") return;
    const d = msg.data;
    if (!["succeeded", "failed", "cancelled"].includes(d.status)) return;
    finished.set(d.taskId, { at, data: d });
    const w = waiters.get(d.taskId);
    if (w) w();
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("cannot open /ws"));
  });
  ws.send(JSON.stringify({ op: "subscribe", id: "1", topics: ["agent.task.update"] }));
  await Promise.race([ack, new Promise((_, rej) => setTimeout(() => rej(new Error("no subscribe ack")), 10_000))]);
  const wait = (id) => {
    if (finished.has(id)) return Promise.resolve(finished.get(id));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no final event within 30 s")), 30_000);
      waiters.set(id, () => { clearTimeout(timer); waiters.delete(id); resolve(finished.get(id)); });
    });
  };
  return { ws, wait };
}

// An older devplane reports wallMs only (whole ms, truncated): the overhead is then up to 1 ms
// too high.
let coarseWarned = false;
function coarse(ms) {
  if (typeof ms !== "number") return undefined;
  if (!coarseWarned) console.log("note: no wallUs in the results (an older devplane): wall time from wallMs, 1 ms resolution");
  coarseWarned = true;
  return ms * 1000;
}

async function bench(isolation, events) {
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
  const out = { start: stats(startMs) };
  for (const mode of ["event", "poll"]) {
    const rtt = [], wall = [], overhead = [];
    const phases = { post: [], claim: [], setup: [], end: [] };
    const epochMs = (t) => performance.timeOrigin + t;
    for (let i = 0; i < tasks + 5; i++) {
      const t0 = performance.now();
      const t = await call("POST", `/api/v1/agents/${agent.id}/tasks`, { input: "" });
      const tPost = performance.now();
      let done, r;
      if (mode === "event") {
        const ev = await events.wait(t.id);
        r = ev.at - t0;
        done = { status: ev.data.status, error: ev.data.error, wallUs: ev.data.wallUs ?? coarse(ev.data.wallMs) };
        const res = ev.data;
        if (i >= 5 && typeof res.startedAtUs === "number" && typeof res.endedAtUs === "number") {
          phases.post.push(tPost - t0);
          phases.claim.push(res.startedAtUs / 1000 - epochMs(t0));
          phases.setup.push((res.endedAtUs - res.wallUs - res.startedAtUs) / 1000);
          phases.end.push(epochMs(ev.at) - res.endedAtUs / 1000);
        }
      } else {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const got = await call("GET", `/api/v1/agents/${agent.id}/tasks/${t.id}`);
          if (["succeeded", "failed", "cancelled"].includes(got.status)) {
            done = { status: got.status, error: got.error, wallUs: got.result?.wallUs ?? coarse(got.result?.wallMs) };
            break;
          }
          if (Date.now() > deadline) throw new Error("task took longer than 30 s");
          await new Promise((res) => setTimeout(res, 1));
        }
        r = performance.now() - t0;
      }
      if (done.status !== "succeeded") throw new Error(`task ${done.status}: ${done.error}`);
      if (typeof done.wallUs !== "number") throw new Error("the task result has no wall time");
      if (i < 5) continue;  // warm-up
      rtt.push(r);
      wall.push(done.wallUs / 1000);
      overhead.push(r - done.wallUs / 1000);
    }
    out[mode] = { wall: stats(wall), rtt: stats(rtt), overhead: stats(overhead) };
    if (phases.post.length > 0) {
      out[mode].phases = Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, stats(v)]));
    }
  }
  await call("POST", `/api/v1/agents/${agent.id}/stop`);
  return out;
}

const events = await openEvents();
const summary = {};
for (const isolation of ["sandbox", "none"]) {
  const r = await bench(isolation, events);
  console.log(`isolation: ${isolation}`);
  console.log(`  agent start (API)                  ${fmt(r.start)}`);
  for (const mode of ["event", "poll"]) {
    console.log(`  [${mode}] program start-to-exit      ${fmt(r[mode].wall)}`);
    console.log(`  [${mode}] task round trip            ${fmt(r[mode].rtt)}`);
    console.log(`  [${mode}] task overhead (rtt - wall) ${fmt(r[mode].overhead)}`);
    const ph = r[mode].phases;
    if (ph) {
      const p = (x) => `${x.p50.toFixed(2)} / ${x.p99.toFixed(2)}`;
      console.log(`  [${mode}] where it goes, p50 / p99 ms: POST answered ${p(ph.post)}; sent -> begun ${p(ph.claim)}; ` +
                  `begun -> program started ${p(ph.setup)}; program ended -> event ${p(ph.end)}`);
    }
  }
  summary[isolation] = { startP50: r.start.p50, eventOverheadP50: r.event.overhead.p50,
                         eventOverheadP99: r.event.overhead.p99, pollOverheadP50: r.poll.overhead.p50,
                         pollOverheadP99: r.poll.overhead.p99 };
}
console.log(JSON.stringify(summary, (k, v) => (typeof v === "number" ? Math.round(v * 100) / 100 : v)));
events.ws.close();
