// bench/ws/report.mjs: reads the JSON that wsload wrote for each server and prints the
// side-by-side table, the devplane/peer ratios and the target checks; optionally writes the
// combined JSON. Called by bench/ws/run.
import { readFileSync, writeFileSync } from "node:fs";

const fail = (why) => {
  console.error(`bench/ws/report: ${why}`);
  process.exit(2);
};
const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const mode = args.mode;
const conns = Number(args.conns);
const sides = (args.sides ?? "").split(" ").filter(Boolean);
let meta;
try {
  meta = JSON.parse(args.meta ?? "{}");
} catch (e) {
  fail(`--meta is not JSON: ${e.message}`);
}
const rounds = Number(args.rounds ?? 1);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 9) fail(`--rounds must be 1..9, not "${args.rounds}"`);
if (mode !== "load" && mode !== "idle") fail(`--mode must be load or idle, not "${mode}"`);
if (sides.length === 0) fail("--sides names no server");

// With several rounds, each figure is its median over the rounds, except the counts that
// must not hide a bad round (lost, duplicates, failures...): those are summed.
const SUMMED = new Set(["expected", "received", "lost", "duplicates", "outOfOrder", "clientsMissing",
  "foreignEvents", "errorFrames", "resyncRequired", "closedByServer", "connectFailed", "failed",
  "created", "planned", "sent"]);
const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
function combine(runs, key = "") {
  const first = runs[0];
  if (runs.every((x) => typeof x === "number")) return SUMMED.has(key) ? runs.reduce((a, b) => a + b, 0) : median(runs);
  if (first && typeof first === "object" && !Array.isArray(first)) {
    const o = {};
    for (const k of Object.keys(first)) o[k] = combine(runs.map((x) => x?.[k]), k);
    return o;
  }
  return first;
}
const perRound = {};
const r = {};
for (const s of sides) {
  perRound[s] = [];
  for (let i = 1; i <= rounds; i++) {
    const file = `${args.tmp}/${s}.r${i}.json`;
    let x;
    try {
      x = JSON.parse(readFileSync(file, "utf8"));
    } catch (e) {
      fail(`cannot read ${file}: ${e.message}`);
    }
    // Per round first, so that the median is of the ratio and not a ratio of medians and sums.
    const got = x.deliveries?.received;
    x.cpuPerDeliveryUs = {
      server: x.serverCpuSeconds != null && got > 0 ? x.serverCpuSeconds * 1e6 / got : null,
      loadGenerator: x.loadGeneratorCpuSeconds != null && got > 0 ? x.loadGeneratorCpuSeconds * 1e6 / got : null,
    };
    perRound[s].push(x);
  }
  r[s] = rounds === 1 ? perRound[s][0] : combine(perRound[s]);
}
const d = r.devplane, p = r.peer, fl = r.floor;

const f = (v, digits = 2) => (v === undefined || v === null ? "-" : typeof v === "number" ? v.toFixed(digits) : String(v));
const n = (v) => (v === undefined || v === null ? "-" : String(v));
const ratio = (a, b) => (a === undefined || b === undefined || a === null || b === null ? "-" : b > 0 ? `${(a / b).toFixed(2)}x` : a > 0 ? "inf" : "1.00x");
const row = (label, dv, pv, rv = "") => console.log(`${label.padEnd(34)} | ${String(dv).padStart(12)} | ${String(pv).padStart(12)} | ${String(rv).padStart(9)}`);
const checks = [];
const check = (what, ok, detail) => checks.push({ what, ok, detail });

const out = { date: new Date().toISOString(), mode, ...meta, rounds, servers: r, perRound: rounds > 1 ? perRound : undefined };

if (mode === "idle") {
  console.log(`idle connections: ${conns}, subscribed, no events`);
  row("", "devplane", "peer");
  row("-".repeat(34), "-".repeat(12), "-".repeat(12));
  row("subscribed", n(d?.subscribed), n(p?.subscribed));
  row("connect failures", n(d?.connectFailed), n(p?.connectFailed));
  row("closed by the server while idle", n(d?.closedByServer), n(p?.closedByServer));
  row("time to connect + ack all (s)", f(d?.connectSeconds), f(p?.connectSeconds));
  row("RSS before connecting (MiB)", f(d?.rssMiB.before, 1), f(p?.rssMiB.before, 1));
  row("RSS with all open (MiB)", f(d?.rssMiB.connected, 1), f(p?.rssMiB.connected, 1));
  row("RSS peak while held (MiB)", f(d?.rssMiB.peak, 1), f(p?.rssMiB.peak, 1));
  row("RSS after closing (MiB)", f(d?.rssMiB.closed, 1), f(p?.rssMiB.closed, 1));
  const per = (x) => (x && x.subscribed > 0 ? ((x.rssMiB.connected - x.rssMiB.before) * 1024 / x.subscribed) : undefined);
  row("RSS per connection (KiB)", f(per(d), 1), f(per(p), 1));
  if (d) {
    const rss = Math.max(d.rssMiB.connected ?? 0, d.rssMiB.peak ?? 0);
    console.log();
    console.log("target (devplane, 10,000 idle connections under 150 MiB RSS):");
    check("10,000 idle connections held", d.subscribed >= 10000 && d.subscribed === conns && d.closedByServer === 0,
      `${d.subscribed} of ${conns} subscribed, ${d.closedByServer} closed by the server`);
    check("RSS under 150 MiB with them open", rss < 150, `${rss.toFixed(1)} MiB (peak while held)`);
  }
} else {
  console.log(`load: ${conns} clients subscribed to "*", agents created at ${meta.rate}/s for ${meta.durationSeconds} s, drain up to ${meta.drainSeconds} s, load generator threads ${meta.threads}`);
  console.log("latency = POST /api/v1/agents sent -> agent.status.update read by a client, over every (client, event)");
  if (rounds > 1) {
    console.log();
    console.log(`${rounds} rounds, the servers taking turns; latency p50 / p99 (ms) of each:`);
    console.log(["round", ...sides].map((x, i) => (i === 0 ? x.padEnd(6) : x.padStart(17))).join(" | "));
    for (let i = 0; i < rounds; i++) {
      console.log([String(i + 1).padEnd(6), ...sides.map((s) => {
        const l = perRound[s][i].latencyMs;
        return `${f(l?.p50, 1)} / ${f(l?.p99, 1)}`.padStart(17);
      })].join(" | "));
    }
    console.log("below: each figure's median over the rounds; lost, duplicates, failures and expected: their sum");
  }
  console.log();
  row("", "devplane", "peer", "d/p");
  row("-".repeat(34), "-".repeat(12), "-".repeat(12), "-".repeat(9));
  row("clients subscribed", n(d?.subscribed), n(p?.subscribed));
  row("events created (of planned)", d ? `${d.publish.created}/${d.publish.planned}` : "-", p ? `${p.publish.created}/${p.publish.planned}` : "-");
  row("publishing rate achieved (/s)", f(d?.publish.rateAchieved), f(p?.publish.rateAchieved));
  row("latency p50 (ms)", f(d?.latencyMs.p50, 3), f(p?.latencyMs.p50, 3), ratio(d?.latencyMs.p50, p?.latencyMs.p50));
  row("latency p90 (ms)", f(d?.latencyMs.p90, 3), f(p?.latencyMs.p90, 3), ratio(d?.latencyMs.p90, p?.latencyMs.p90));
  row("latency p99 (ms)", f(d?.latencyMs.p99, 3), f(p?.latencyMs.p99, 3), ratio(d?.latencyMs.p99, p?.latencyMs.p99));
  row("latency p99.9 (ms)", f(d?.latencyMs.p999, 3), f(p?.latencyMs.p999, 3), ratio(d?.latencyMs.p999, p?.latencyMs.p999));
  row("latency max (ms)", f(d?.latencyMs.max, 3), f(p?.latencyMs.max, 3), ratio(d?.latencyMs.max, p?.latencyMs.max));
  row("last client per event p99 (ms)", f(d?.lastClientMs.p99, 3), f(p?.lastClientMs.p99, 3), ratio(d?.lastClientMs.p99, p?.lastClientMs.p99));
  row("deliveries expected", n(d?.deliveries.expected), n(p?.deliveries.expected));
  row("lost", n(d?.deliveries.lost), n(p?.deliveries.lost), ratio(d?.deliveries.lost, p?.deliveries.lost));
  row("duplicates", n(d?.deliveries.duplicates), n(p?.deliveries.duplicates));
  row("out of order", n(d?.deliveries.outOfOrder), n(p?.deliveries.outOfOrder));
  row("clients closed by the server", n(d?.closedByServer), n(p?.closedByServer));
  row("POST round trip p50 (ms)", f(d?.publish.postMs.p50, 3), f(p?.publish.postMs.p50, 3), ratio(d?.publish.postMs.p50, p?.publish.postMs.p50));
  row("POST round trip p99 (ms)", f(d?.publish.postMs.p99, 3), f(p?.publish.postMs.p99, 3), ratio(d?.publish.postMs.p99, p?.publish.postMs.p99));
  row("failed POSTs", n(d?.publish.failed), n(p?.publish.failed));
  const cpu = (x) => x?.cpuPerDeliveryUs?.server ?? undefined;
  row("server CPU per delivery (us)", f(cpu(d), 2), f(cpu(p), 2), ratio(cpu(d), cpu(p)));
  const selfCpu = (x) => x?.cpuPerDeliveryUs?.loadGenerator ?? undefined;
  row("load generator CPU per delivery (us)", f(selfCpu(d), 2), f(selfCpu(p), 2), ratio(selfCpu(d), selfCpu(p)));
  row("server RSS before connecting (MiB)", f(d?.rssMiB.before, 1), f(p?.rssMiB.before, 1));
  row("server RSS all connected (MiB)", f(d?.rssMiB.connected, 1), f(p?.rssMiB.connected, 1));
  row("server RSS peak (MiB)", f(d?.rssMiB.peak, 1), f(p?.rssMiB.peak, 1));
  // One receiving thread reads an event's frames one after the other, so whatever the server,
  // the 99th percentile client of an event reads it at least 0.99 x clients x (the load
  // generator's cost per frame) / threads after the first client does.
  const readBound = (x) => (selfCpu(x) === undefined ? undefined : 0.99 * conns * selfCpu(x) / 1000 / (meta.threads || 1));
  row("load generator bound on p99 (ms)", f(readBound(d), 1), f(readBound(p), 1));
  if (fl) {
    console.log();
    console.log("floor: bench/ws/floor.ts, Bun's WebSocket server doing nothing but the fan-out (no store, no");
    console.log("auth, no validation); no server that stores an event before announcing it can beat it here");
    console.log(`  latency p50 ${f(fl.latencyMs.p50, 3)} ms, p90 ${f(fl.latencyMs.p90, 3)} ms, p99 ${f(fl.latencyMs.p99, 3)} ms, max ${f(fl.latencyMs.max, 3)} ms;` +
      ` last client per event p99 ${f(fl.lastClientMs.p99, 3)} ms`);
    console.log(`  lost ${n(fl.deliveries.lost)} of ${n(fl.deliveries.expected)}; POST round trip p50 ${f(fl.publish.postMs.p50, 3)} ms;` +
      ` server CPU per delivery ${f(cpu(fl))} us; load generator CPU per delivery ${f(selfCpu(fl))} us,` +
      ` bound on p99 ${f(readBound(fl), 1)} ms`);
    out.floor = { p50: fl.latencyMs.p50, p99: fl.latencyMs.p99, readBoundMs: readBound(fl) };
  }
  if (d && p) {
    out.ratio = {
      p50: d.latencyMs.p50 / p.latencyMs.p50, p99: d.latencyMs.p99 / p.latencyMs.p99,
      max: d.latencyMs.max / p.latencyMs.max, lost: { devplane: d.deliveries.lost, peer: p.deliveries.lost },
    };
  }
  if (d) {
    console.log();
    console.log("targets (devplane):");
    check("1,000 clients subscribed", d.subscribed >= 1000 && d.subscribed === conns && d.closedByServer === 0,
      `${d.subscribed} subscribed of ${conns} asked${conns < 1000 ? " (run with fewer than 1,000)" : ""}, ${d.closedByServer} closed by the server`);
    check("p99 under 10 ms", d.latencyMs.p99 < 10, `${d.latencyMs.p99.toFixed(3)} ms` +
      (fl ? ` (the floor: ${fl.latencyMs.p99.toFixed(3)} ms)` : ""));
    check("zero lost (and no duplicates)", d.deliveries.lost === 0 && d.deliveries.duplicates === 0 && d.deliveries.expected > 0,
      `${d.deliveries.lost} lost, ${d.deliveries.duplicates} duplicates of ${d.deliveries.expected}`);
    if (p) {
      check("at least parity with the peer (p50, p99, lost)",
        d.latencyMs.p50 <= p.latencyMs.p50 && d.latencyMs.p99 <= p.latencyMs.p99 && d.deliveries.lost <= p.deliveries.lost,
        `p50 ${ratio(d.latencyMs.p50, p.latencyMs.p50)}, p99 ${ratio(d.latencyMs.p99, p.latencyMs.p99)}, lost ${d.deliveries.lost} vs ${p.deliveries.lost}`);
    } else {
      check("at least parity with the peer", false, "peer not measured (--skip-peer)");
    }
  }
}
for (const c of checks) console.log(`  ${c.what.padEnd(48)} ${c.ok ? "yes" : "NO "}  ${c.detail}`);
out.targets = checks;
if (args.json) {
  writeFileSync(args.json, JSON.stringify(out, null, 2) + "\n");
  console.log(`figures written to ${args.json}`);
}
