// bench/ws/report.mjs on hand-made load generator results: with --rounds, each figure is its
// median over the rounds, the counts that must not hide a bad round are summed, CPU per
// delivery is taken per round before the median, and the floor and the load generator's
// bound are reported. Bad arguments and missing files end with exit 2 and a one-line reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const REPORT = join(dirname(fileURLToPath(import.meta.url)), "../../bench/ws/report.mjs");
const META = JSON.stringify({ rate: 50, durationSeconds: 20, drainSeconds: 5, threads: 1 });

// What wsload --json writes, reduced to the fields the report reads.
function result({ p50, p99, lost = 0, received = 1000, serverCpu = 0.01, selfCpu = 0.009 }) {
  const dist = (a, b) => ({ n: received, p50: a, p90: (a + b) / 2, p99: b, p999: b, max: b, mean: a });
  return {
    label: "x", mode: "load", clients: 10, threads: 1, subscribed: 10, connectFailed: 0, closedByServer: 0,
    connectSeconds: 0.1,
    rssMiB: { before: 20, connected: 21, peak: 22, afterPublish: 22, closed: 21 },
    serverCpuSeconds: serverCpu, loadGeneratorCpuSeconds: selfCpu,
    publish: { planned: 100, sent: 100, created: 100, failed: 0, errors: {}, rateAchieved: 50,
               lateMs: dist(0, 0), postMs: dist(1, 2) },
    deliveries: { expected: 1000, received, lost, duplicates: 0, outOfOrder: 0, clientsMissing: 0,
                  drainSeconds: 0.1, drainTimedOut: false, foreignEvents: 0, errorFrames: 0, resyncRequired: 0 },
    latencyMs: dist(p50, p99),
    lastClientMs: dist(p99, p99 + 1),
  };
}

// Runs `fn` with a fresh directory, removed afterwards.
function withDir(fn) {
  const dir = mkdtempSync(join(tmpdir(), "ws-report-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function run(dir, extra) {
  return spawnSync(process.execPath, [REPORT, "--mode", "load", "--conns", "10", "--tmp", dir, "--meta", META, ...extra],
                   { encoding: "utf8" });
}

test("three rounds: medians, sums, CPU per round, per-round table, floor and bound", () => withDir((dir) => {
  const dev = [result({ p50: 9, p99: 30, serverCpu: 0.010 }), result({ p50: 5, p99: 10, lost: 3, received: 997, serverCpu: 0.020 }),
               result({ p50: 7, p99: 20, serverCpu: 0.012 })];
  const peer = [result({ p50: 6, p99: 15 }), result({ p50: 8, p99: 16 }), result({ p50: 7, p99: 14 })];
  const floor = [result({ p50: 4, p99: 9 }), result({ p50: 3, p99: 8 }), result({ p50: 5, p99: 11 })];
  for (let i = 0; i < 3; i++) {
    writeFileSync(join(dir, `devplane.r${i + 1}.json`), JSON.stringify(dev[i]));
    writeFileSync(join(dir, `peer.r${i + 1}.json`), JSON.stringify(peer[i]));
    writeFileSync(join(dir, `floor.r${i + 1}.json`), JSON.stringify(floor[i]));
  }
  const out = join(dir, "out.json");
  const r = run(dir, ["--sides", "devplane peer floor", "--rounds", "3", "--json", out]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(readFileSync(out, "utf8"));
  const d = j.servers.devplane;
  assert.equal(d.latencyMs.p50, 7);    // median of 9, 5, 7
  assert.equal(d.latencyMs.p99, 20);   // median of 30, 10, 20
  assert.equal(d.deliveries.lost, 3);  // summed: a bad round is not hidden
  assert.equal(d.deliveries.expected, 3000);
  // CPU per delivery per round (10.0, 20.06, 12.0 us), then the median: 12.0, not a
  // median of seconds over a sum of deliveries.
  assert.ok(Math.abs(d.cpuPerDeliveryUs.server - 12) < 1e-9, String(d.cpuPerDeliveryUs.server));
  assert.equal(j.servers.peer.latencyMs.p99, 15);
  assert.equal(j.floor.p99, 9);
  // 0.99 x 10 clients x 9 us = 0.0891 ms
  assert.ok(Math.abs(j.floor.readBoundMs - 0.0891) < 1e-9, String(j.floor.readBoundMs));
  assert.equal(j.perRound.devplane.length, 3);
  assert.match(r.stdout, /3 rounds, the servers taking turns/);
  assert.match(r.stdout, /^2 +\| +5\.0 \/ 10\.0 \| +8\.0 \/ 16\.0 \| +3\.0 \/ 8\.0$/m);
  const lost = j.targets.find((t) => t.what.startsWith("zero lost"));
  assert.equal(lost.ok, false);
  const p99 = j.targets.find((t) => t.what === "p99 under 10 ms");
  assert.match(p99.detail, /the floor: 9\.000 ms/);
}));

test("one round reads the r1 file as it is", () => withDir((dir) => {
  writeFileSync(join(dir, "devplane.r1.json"), JSON.stringify(result({ p50: 2, p99: 4 })));
  const out = join(dir, "out.json");
  const r = run(dir, ["--sides", "devplane", "--json", out]);
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(readFileSync(out, "utf8"));
  assert.equal(j.servers.devplane.latencyMs.p99, 4);
  assert.equal(j.perRound, undefined);
  assert.doesNotMatch(r.stdout, /rounds, the servers taking turns/);
  assert.equal(j.targets.find((t) => t.what === "p99 under 10 ms").ok, true);
}));

test("bad arguments and missing files: exit 2, one line saying why, no output file", () => withDir((dir) => {
  writeFileSync(join(dir, "devplane.r1.json"), JSON.stringify(result({ p50: 2, p99: 4 })));
  writeFileSync(join(dir, "broken.r1.json"), "{not json");
  const out = join(dir, "out.json");
  const cases = [
    [["--sides", "devplane", "--rounds", "0"], /--rounds must be 1\.\.9/],
    [["--sides", "devplane", "--rounds", "x"], /--rounds must be 1\.\.9/],
    [["--sides", "devplane", "--rounds", "10"], /--rounds must be 1\.\.9/],
    [["--sides", "devplane", "--rounds", "2"], /cannot read .*devplane\.r2\.json/],
    [["--sides", "broken"], /cannot read .*broken\.r1\.json/],
    [["--sides", ""], /--sides names no server/],
  ];
  for (const [extra, why] of cases) {
    const r = run(dir, [...extra, "--json", out]);
    assert.equal(r.status, 2, `${extra.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, why);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.throws(() => readFileSync(out), /ENOENT/);
  }
  const badMode = spawnSync(process.execPath, [REPORT, "--mode", "fast", "--tmp", dir, "--sides", "devplane"],
                            { encoding: "utf8" });
  assert.equal(badMode.status, 2);
  assert.match(badMode.stderr, /--mode must be load or idle/);
  const badMeta = spawnSync(process.execPath, [REPORT, "--mode", "load", "--tmp", dir, "--sides", "devplane", "--meta", "{"],
                            { encoding: "utf8" });
  assert.equal(badMeta.status, 2);
  assert.match(badMeta.stderr, /--meta is not JSON/);
}));
