// Workflow engine benchmark: a fan-out of N no-op steps and a chain of M no-op steps, end to end
// through the API of a running devplane, with the engine's overhead per step.
//
//   node --experimental-websocket bench.mjs BASE_URL TOKEN [FANOUT=1000] [CHAIN=100] [AGENT_CHAIN=0]
//
// A no-op step is a `wait` of 1 ms: it touches the store and the event outbox like any step but
// runs no process, so what is measured is the engine. Figures:
// - fan-out: wall time from POST .../execute to the execution read back as succeeded, steps/s;
// - chain: wall time, and per step the engine overhead = the gap between a step's completion
//   and the next one's, minus the 1 ms wait (p50, p99, max), measured two ways:
//   - events: the `atUs` of the steps' `workflow.progress.update` events with stepStatus
//     succeeded, read on a /ws subscription: the engine pass's own clock in µs, so neither the
//     relay's batching nor delivery enters (a devplane older than that field: the events'
//     arrival times, which batching bunches, said so);
//   - stored: the steps' completedAt timestamps (1 ms resolution; the figure recorded before
//     the event mode existed);
//   and the mean: the chain's wall time per step minus the 1 ms wait;
// - for the fan-out and the chain, how long each step's succeeded event took from the engine's
//   pass (atUs) to this /ws client (the same machine's clock): p50, p99, max.
// - agent chain (when AGENT_CHAIN > 0): a chain of that many `agent` steps, each a task for a
//   running command agent that runs `true` unsandboxed (isolation: none); wall time per step,
//   and the per-step overhead that depends on no event delivery: for each step, the time from
//   the end of its task's program to the start of the next step's task on the server, from the
//   µs timestamps the executor records in each task's result (`endedAtUs`, `startedAtUs`):
//   the task's end committed, the engine woken, the pass that ends the step and starts the
//   next (its task created and claimed in that commit), the task's thread started. p50, p99,
//   mean, max. (A devplane older than these fields: the tasks' ms timestamps, said so.)
// Bounded: every request has a 10 s timeout, each run a 300 s deadline.
const [base, token, fanArg, chainArg, agentChainArg] = process.argv.slice(2);
if (!base || !token) {
  console.error("usage: node bench.mjs BASE_URL TOKEN [FANOUT] [CHAIN]");
  process.exit(2);
}
const fanout = Number(fanArg ?? 1000);
const chain = Number(chainArg ?? 100);
const agentChain = Number(agentChainArg ?? 0);
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

// One /ws connection subscribed to workflow.progress.update: per execution, when each step's
// succeeded event was made (its atUs, in ms) or else when it arrived.
async function openEvents() {
  if (typeof WebSocket === "undefined") throw new Error("no WebSocket: run node with --experimental-websocket");
  const ws = new WebSocket(base.replace(/^http/, "ws") + "/ws", ["devplane.v1", `bearer.${token}`]);
  const succeeded = new Map();  // executionId -> Map(stepId -> ms)
  const clock = { server: true };
  const delivery = new Map();  // executionId -> [ms], each step's succeeded event
  let acked;
  const ack = new Promise((r) => { acked = r; });
  ws.onmessage = (m) => {
    const at = performance.now();
    const msg = JSON.parse(m.data);
    if (msg.type === "ack") acked();
    if (msg.type !== "event" || msg.topic !== "workflow.progress.update") return;
    const d = msg.data;
    if (d.stepStatus !== "succeeded") return;
    if (!succeeded.has(d.executionId)) succeeded.set(d.executionId, new Map());
    if (d.atUs === undefined) clock.server = false;
    succeeded.get(d.executionId).set(d.stepId, d.atUs !== undefined ? d.atUs / 1000 : at);
    // Delivery: from the pass that made the change (server clock) to this client reading it
    // (the same machine's clock, as epoch ms with sub-ms precision).
    if (d.atUs !== undefined) {
      if (!delivery.has(d.executionId)) delivery.set(d.executionId, []);
      delivery.get(d.executionId).push(performance.timeOrigin + at - d.atUs / 1000);
    }
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("cannot open /ws"));
  });
  ws.send(JSON.stringify({ op: "subscribe", id: "1", topics: ["workflow.progress.update"] }));
  await Promise.race([ack, new Promise((_, rej) => setTimeout(() => rej(new Error("no subscribe ack")), 10_000))]);
  return { ws, succeeded, clock, delivery };
}
const events = await openEvents();

async function run(definition) {
  const wf = await call("POST", "/api/v1/workflows", { definition });
  const t0 = performance.now();
  const ex = await call("POST", `/api/v1/workflows/${wf.id}/execute`, { inputs: {} });
  const deadline = Date.now() + 300_000;
  for (;;) {
    // Poll the light list (no steps) so that reading does not load the server being measured.
    const [e] = await call("GET", `/api/v1/executions?workflowId=${wf.id}&limit=1`);
    if (["succeeded", "failed", "cancelled"].includes(e.status)) {
      const wall = performance.now() - t0;
      if (e.status !== "succeeded") throw new Error(`execution ${e.status}: ${e.error}`);
      return { wall, execution: await call("GET", `/api/v1/executions/${ex.id}`) };
    }
    if (Date.now() > deadline) throw new Error("execution took longer than 300 s");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const fan = {
  name: `bench-fanout-${tag}`,
  steps: [{ id: "fan", type: "wait", duration: "1ms", forEach: Array.from({ length: fanout }, (_, i) => i) }],
};
const fr = await run(JSON.stringify(fan));
const items = fr.execution.steps.filter((s) => s.parentStep === "fan");
if (items.length !== fanout) throw new Error(`fan-out ran ${items.length} items`);
console.log(`fan-out: ${fanout} steps in ${fr.wall.toFixed(0)} ms = ${(fanout / (fr.wall / 1000)).toFixed(0)} steps/s, ` +
            `${(fr.wall / fanout).toFixed(2)} ms per step`);

const ch = { name: `bench-chain-${tag}`, steps: [] };
for (let i = 0; i < chain; ++i) {
  ch.steps.push({ id: `s${i}`, type: "wait", duration: "1ms", ...(i ? { needs: [`s${i - 1}`] } : {}) });
}
const cr = await run(JSON.stringify(ch));
// The last events may still be on their way when the execution reads succeeded.
for (let i = 0; i < 100 && (events.succeeded.get(cr.execution.id)?.size ?? 0) < chain; ++i) {
  await new Promise((r) => setTimeout(r, 20));
}
const done = new Map(cr.execution.steps.map((s) => [s.stepId, Date.parse(s.completedAt)]));
const seen = events.succeeded.get(cr.execution.id) ?? new Map();
if (seen.size < chain) throw new Error(`only ${seen.size} of ${chain} step events arrived`);
const gaps = [], evGaps = [];
for (let i = 1; i < chain; ++i) {
  gaps.push(Math.max(0, done.get(`s${i}`) - done.get(`s${i - 1}`) - 1));
  evGaps.push(seen.get(`s${i}`) - seen.get(`s${i - 1}`) - 1);
}
gaps.sort((a, b) => a - b);
evGaps.sort((a, b) => a - b);
const f2 = (x) => x.toFixed(2);
const meanOverhead = cr.wall / chain - 1;
console.log(`chain: ${chain} steps in ${cr.wall.toFixed(0)} ms = ${(chain / (cr.wall / 1000)).toFixed(0)} steps/s, ` +
            `${f2(cr.wall / chain)} ms per step (mean overhead ${f2(meanOverhead)} ms)`);
console.log(`chain, engine overhead per step from events (${events.clock.server ? "the passes' µs clocks" : "arrival times: no atUs in this devplane"}): ` +
            `p50 ${f2(pct(evGaps, 50))} ms, ` +
            `p99 ${f2(pct(evGaps, 99))} ms, max ${f2(evGaps[evGaps.length - 1])} ms, min ${f2(evGaps[0])} ms`);
for (const [what, id] of [["fan-out", fr.execution.id], ["chain", cr.execution.id]]) {
  const dl = [...(events.delivery.get(id) ?? [])].sort((a, b) => a - b);
  if (dl.length === 0) continue;
  console.log(`${what}, its steps' events from the engine's pass to this /ws client: ` +
              `p50 ${f2(pct(dl, 50))} ms, p99 ${f2(pct(dl, 99))} ms, max ${f2(dl[dl.length - 1])} ms (n=${dl.length})`);
}
console.log(`chain, engine overhead per step from stored timestamps (1 ms resolution): p50 ${pct(gaps, 50)} ms, ` +
            `p99 ${pct(gaps, 99)} ms, max ${gaps[gaps.length - 1]} ms`);
console.log(JSON.stringify({ fanout, fanoutMs: Math.round(fr.wall), chain, chainMs: Math.round(cr.wall),
                             overheadP50Ms: Number(f2(pct(evGaps, 50))), overheadP99Ms: Number(f2(pct(evGaps, 99))),
                             storedOverheadP50Ms: pct(gaps, 50), storedOverheadP99Ms: pct(gaps, 99),
                             meanOverheadMs: Number(f2(meanOverhead)) }));
if (agentChain > 0) {
  const agent = await call("POST", "/api/v1/agents", {
    name: `bench-agent-chain-${tag}`, type: "command", config: { command: ["true"], isolation: "none" },
  });
  await call("POST", `/api/v1/agents/${agent.id}/start`);
  const ac = { name: `bench-agent-chain-${tag}`, steps: [] };
  for (let i = 0; i < agentChain; ++i) {
    ac.steps.push({ id: `a${i}`, type: "agent", agent: agent.id, ...(i ? { needs: [`a${i - 1}`] } : {}) });
  }
  const ar = await run(JSON.stringify(ac));
  console.log(`agent chain: ${agentChain} agent steps in ${ar.wall.toFixed(0)} ms = ${f2(ar.wall / agentChain)} ms per step`);
  const byStep = new Map(ar.execution.steps.map((s) => [s.stepId, s.taskId]));
  const tasks = [];
  for (let i = 0; i < agentChain; ++i) tasks.push(await call("GET", `/api/v1/agents/${agent.id}/tasks/${byStep.get(`a${i}`)}`));
  const micro = tasks.every((t) => t.result?.startedAtUs !== undefined && t.result?.endedAtUs !== undefined);
  const stepGaps = [];
  for (let i = 1; i < agentChain; ++i) {
    stepGaps.push(micro ? (tasks[i].result.startedAtUs - tasks[i - 1].result.endedAtUs) / 1000
                        : Date.parse(tasks[i].startedAt) - Date.parse(tasks[i - 1].completedAt));
  }
  stepGaps.sort((a, b) => a - b);
  const gapMean = stepGaps.reduce((a, b) => a + b, 0) / Math.max(1, stepGaps.length);
  console.log(`agent chain, per-step overhead (task end to next task start, ${micro ? "server µs timestamps" : "tasks' ms timestamps: no µs fields in this devplane"}): ` +
              `p50 ${f2(pct(stepGaps, 50))} ms, p99 ${f2(pct(stepGaps, 99))} ms, mean ${f2(gapMean)} ms, ` +
              `max ${f2(stepGaps[stepGaps.length - 1])} ms, min ${f2(stepGaps[0])} ms`);
  console.log(JSON.stringify({ agentChain, agentChainMs: Math.round(ar.wall), agentStepMs: Number(f2(ar.wall / agentChain)),
                               stepOverheadP50Ms: Number(f2(pct(stepGaps, 50))), stepOverheadP99Ms: Number(f2(pct(stepGaps, 99))),
                               stepOverheadMeanMs: Number(f2(gapMean)), micro }));
  await call("POST", `/api/v1/agents/${agent.id}/stop`);
}
events.ws.close();
