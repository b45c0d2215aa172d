// Dashboard benchmark in Debian's Chromium (playwright-core), against a running devplane that
// serves the built dashboard.
//
//   node bench.mjs BASE_URL USERNAME PASSWORD [AGENTS=500] [STEPS=200] [RUNS=10]
//
// Figures:
// - first load of /dashboard, signed in, cold cache (a fresh browser context per run):
//   `load` event and "ready" (the health status and the agent counts drawn), p50 and max;
// - JavaScript shipped for /dashboard: every script the page loads, bytes as served and
//   gzipped here (zlib level 6, what a gzip-serving proxy sends);
// - interaction to paint (Event Timing API, the INP measure: from the input to the next paint,
//   8 ms resolution) with AGENTS agents on /agents (typing in the search, filtering by status,
//   opening a card) and a STEPS-step workflow on /workflows (selecting nodes, typing a step's
//   name, which re-renders the YAML and the canvas on every key), p50, p98 and max.
// Environment: BENCH_ONLY=workflows (or dashboard, agents; comma separated) measures only
// these parts; BENCH_TRACE=1 also traces the workflow interactions (Chrome's tracing) and sums
// the renderer main thread's time by kind (script, style, layout, paint, ...), BENCH_TRACE_DIR
// keeps the raw traces; BENCH_CPUPROFILE=1 prints the top self-time functions of selecting
// nodes (readable with an unminified build); BENCH_SHOT=FILE.png saves the canvas page.
// Bounded: every wait has a timeout; nothing outside 127.0.0.1.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { writeFileSync } from 'node:fs';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../web/package.json'));
const { chromium } = require('playwright-core');

const [base, username, password, agentsArg, stepsArg, runsArg] = process.argv.slice(2);
if (!base || !username || !password) {
  console.error('usage: node bench.mjs BASE_URL USERNAME PASSWORD [AGENTS] [STEPS] [RUNS]');
  process.exit(2);
}
const AGENTS = Number(agentsArg ?? 500);
const STEPS = Number(stepsArg ?? 200);
const RUNS = Number(runsArg ?? 10);
const T = 60_000;

async function call(method, p, body, token) {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const json = await res.json().catch(() => null);
  if (res.status >= 300) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const ms = (x) => `${Math.round(x)} ms`;

// Main-thread time of a Chrome trace by kind: each event's self time (its duration less its
// children's) goes to its own kind, or to the nearest enclosing event's kind ("other" if none
// is known), so a layout forced by a script counts as layout.
const KINDS = {
  FunctionCall: 'script', EvaluateScript: 'script', EventDispatch: 'script', TimerFire: 'script', FireAnimationFrame: 'script', 'v8.callFunction': 'script', RunMicrotasks: 'script', 'V8.Execute': 'script',
  UpdateLayoutTree: 'style', RecalculateStyles: 'style', ParseAuthorStyleSheet: 'style',
  Layout: 'layout', UpdateLayerTree: 'layout', 'IntersectionObserverController::computeIntersections': 'layout',
  PrePaint: 'paint', Paint: 'paint', Layerize: 'paint', Commit: 'paint', CompositeLayers: 'paint', 'PaintArtifactCompositor::Update': 'paint',
  MajorGC: 'gc', MinorGC: 'gc', 'V8.GC_SCAVENGER': 'gc', 'BlinkGC.AtomicPhase': 'gc',
  HitTest: 'hit test',
};
function traceSummary(buf, name) {
  if (process.env.BENCH_TRACE_DIR) writeFileSync(path.join(process.env.BENCH_TRACE_DIR, `${name}.json`), buf);
  const events = JSON.parse(buf.toString()).traceEvents ?? [];
  const main = new Set(events.filter((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain').map((e) => `${e.pid}:${e.tid}`));
  const xs = events
    .filter((e) => e.ph === 'X' && e.dur > 0 && main.has(`${e.pid}:${e.tid}`))
    .sort((a, b) => a.ts - b.ts || b.dur - a.dur)
    .map((e) => ({ name: e.name, ts: e.ts, end: e.ts + e.dur, dur: e.dur, child: 0, kind: KINDS[e.name] }));
  const stack = [];
  let busy = 0;
  for (const e of xs) {
    while (stack.length && stack[stack.length - 1].end <= e.ts) stack.pop();
    const parent = stack[stack.length - 1];
    if (parent) {
      parent.child += e.dur;
      e.kind ??= parent.kind;
    } else busy += e.dur;
    stack.push(e);
  }
  const by = {};
  for (const e of xs) by[e.kind ?? 'other'] = (by[e.kind ?? 'other'] ?? 0) + Math.max(0, e.dur - e.child) / 1000;
  const parts = Object.entries(by).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${Math.round(v)} ms`);
  return `main thread busy ${Math.round(busy / 1000)} ms (${parts.join(', ')})`;
}
const TRACE = process.env.BENCH_TRACE === '1';
// BENCH_ONLY=workflows (or dashboard, agents; comma separated): measure only these parts.
const PARTS = new Set((process.env.BENCH_ONLY || 'dashboard,agents,workflows').split(','));
const CATEGORIES = ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink', 'cc', 'gpu', 'toplevel'];

const login = await call('POST', '/api/v1/auth/login', { username, password });
const session = {
  accessToken: login.data.accessToken,
  refreshToken: login.data.refreshToken,
  expiresAt: Date.now() + (login.data.expiresIn ?? 900) * 1000,
  user: login.data.user,
};
const token = session.accessToken;

// ---- data: AGENTS agents, a STEPS-step workflow (layers of 10, each step needing two of the layer before) ----
const tag = Date.now().toString(36);
const have = (await call('GET', '/api/v1/agents?limit=1', undefined, token)).meta.total ?? 0;
for (let i = have; i < AGENTS; i += 25) {
  await Promise.all(
    Array.from({ length: Math.min(25, AGENTS - i) }, (_, j) =>
      call('POST', '/api/v1/agents', { name: `bench-${tag}-${i + j}`, type: 'command', labels: { team: `t${(i + j) % 7}` }, config: { command: 'true' } }, token),
    ),
  );
}
const steps = Array.from({ length: STEPS }, (_, i) => {
  const layer = Math.floor(i / 10);
  const s = { id: `s${i}`, type: 'wait', duration: '1ms' };
  if (layer > 0) s.needs = [`s${(layer - 1) * 10 + (i % 10)}`, `s${(layer - 1) * 10 + ((i + 1) % 10)}`];
  return s;
});
const wf = (await call('POST', '/api/v1/workflows', { definition: JSON.stringify({ name: `bench-${tag}`, steps }) }, token)).data;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function signedInContext() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript((s) => {
    if (!localStorage.getItem('devplane.session')) localStorage.setItem('devplane.session', s);
  }, JSON.stringify(session));
  return ctx;
}

try {
  // ---- first load of /dashboard ----
  const loads = [];
  const ready = [];
  let js = null;
  for (let r = 0; PARTS.has('dashboard') && r < RUNS + 1; r++) {
    const ctx = await signedInContext();
    const page = await ctx.newPage();
    const scripts = new Map();
    page.on('response', async (res) => {
      if (res.request().resourceType() === 'script') scripts.set(res.url(), res.body().catch(() => Buffer.alloc(0)));
    });
    const traced = TRACE && r === 1;
    if (traced) await browser.startTracing(page, { categories: CATEGORIES });
    await page.goto(base + '/dashboard', { waitUntil: 'load', timeout: T });
    // Ready: the health status read from the API and the counts of the AGENTS agents drawn.
    // (The charts fill as system.health.status events arrive, every health_interval_ms.)
    await page.locator('[data-testid="health-status"]').waitFor({ timeout: T });
    // The moment is taken in the page, when the check (run every animation frame) first sees
    // both: not when the answer reaches this script, which adds the harness's round trips.
    await page.waitForFunction(
      (n) => {
        const ok =
          document.querySelector('[data-testid="health-status"]') &&
          [...document.querySelectorAll('[data-count]')].reduce((a, e) => a + Number(e.getAttribute('data-count')), 0) >= n;
        if (ok) window.__readyAt ??= performance.now();
        return ok;
      },
      AGENTS,
      { timeout: T, polling: 'raf' },
    );
    const t = await page.evaluate(() => ({ load: performance.getEntriesByType('navigation')[0].loadEventEnd, ready: window.__readyAt, seen: performance.now() }));
    if (traced) console.log(`  trace, first load of /dashboard: ${traceSummary(await browser.stopTracing(), 'dashboard')}`);
    if (process.env.BENCH_DEBUG)
      console.log(
        `  run ${r}: load ${Math.round(t.load)} ms, ready ${Math.round(t.ready)} ms (seen by the harness at ${Math.round(t.seen)} ms); ` +
          (await page.evaluate((all) =>
            performance
              .getEntriesByType('resource')
              .filter((e) => all || e.name.includes('/api/') || e.name.includes('/ws'))
              .map((e) => `${new URL(e.name).pathname} ${Math.round(e.startTime)}-${Math.round(e.responseEnd)}`)
              .join(', '),
          process.env.BENCH_DEBUG === 'all',
          )),
      );
    if (r > 0) {
      // the first run warms the server's file cache
      loads.push(t.load);
      ready.push(t.ready);
    } else {
      const bodies = await Promise.all(scripts.values());
      js = { files: bodies.length, raw: bodies.reduce((a, b) => a + b.length, 0), gzip: bodies.reduce((a, b) => a + gzipSync(b).length, 0) };
    }
    await ctx.close();
  }

  // ---- interaction to paint ----
  const ctx = await signedInContext();
  const page = await ctx.newPage();
  const observe = () =>
    page.evaluate(() => {
      window.__events = [];
      new PerformanceObserver((l) => {
        for (const e of l.getEntries()) if (e.interactionId) window.__events.push({ id: e.interactionId, name: e.name, duration: e.duration });
      }).observe({ type: 'event', durationThreshold: 16, buffered: false });
    });
  // Event Timing reports only interactions of 16 ms or more; shorter ones count as 8 ms here.
  const collect = async (n) => {
    await page.waitForTimeout(300);
    const ev = await page.evaluate(() => window.__events);
    // One figure per interaction (a click is pointerdown, pointerup and click): the longest.
    const per = new Map();
    for (const e of ev) per.set(e.id, Math.max(per.get(e.id) ?? 0, e.duration));
    const byInteraction = [...per.values()];
    while (byInteraction.length < n) byInteraction.push(8);
    return byInteraction;
  };

  let agentsIx = [];
  let cards = 0;
  let n = 0;
  if (PARTS.has('agents')) {
    await page.goto(base + '/agents', { timeout: T });
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="agent-card"]').length >= n, AGENTS, { timeout: T });
    cards = await page.locator('[data-testid="agent-card"]').count();
    await observe();
    const search = page.getByLabel('Search');
    await search.click();
    n++;
    for (const ch of `bench-${tag}-4`) {
      await page.keyboard.type(ch, { delay: 40 });
      n++;
    }
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Backspace', { delay: 40 });
      n++;
    }
    await search.fill('');
    agentsIx = await collect(n);
  }

  let selectIx = [];
  let typeIx = [];
  let selectTrace = null;
  let typeTrace = null;
  let visible = 0;
  if (PARTS.has('workflows')) {
    await page.goto(`${base}/workflows?id=${wf.id}`, { timeout: T });
    await page.locator('[data-testid="wf-node"]').first().waitFor({ timeout: T });
    if (process.env.BENCH_SHOT) await page.waitForTimeout(500).then(() => page.screenshot({ path: process.env.BENCH_SHOT }));
    await observe();
    n = 0;
    const nodes = page.locator('[data-testid="wf-node"]');
    visible = await nodes.count();
    if (TRACE) await browser.startTracing(page, { categories: CATEGORIES });
    const prof = process.env.BENCH_CPUPROFILE ? await page.context().newCDPSession(page) : null;
    if (prof) {
      await prof.send('Profiler.enable');
      await prof.send('Profiler.setSamplingInterval', { interval: 200 });
      await prof.send('Profiler.start');
    }
    for (let i = 0; i < Math.min(8, visible); i++) {
      await nodes.nth(i).click();
      n++;
    }
    selectIx = await collect(n);
    if (prof) {
      // Self time by function (BENCH_CPUPROFILE=1; readable with an unminified build).
      const { profile } = await prof.send('Profiler.stop');
      const dt = new Map();
      profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
      const self = new Map();
      for (const nd of profile.nodes) {
        const f = nd.callFrame;
        const key = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}`;
        self.set(key, (self.get(key) ?? 0) + (dt.get(nd.id) ?? 0) / 1000);
      }
      for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  cpu ${v.toFixed(1)} ms ${k}`);
    }
    selectTrace = TRACE ? traceSummary(await browser.stopTracing(), 'select') : null;
    await observe();
    n = 0;
    const nameField = page.getByTestId('step-settings').getByLabel('Name');
    if (TRACE) await browser.startTracing(page, { categories: CATEGORIES });
    await nameField.click();
    n++;
    for (const ch of 'renamed step') {
      await page.keyboard.type(ch, { delay: 40 });
      n++;
    }
    typeIx = await collect(n);
    typeTrace = TRACE ? traceSummary(await browser.stopTracing(), 'type') : null;
  }
  const wfIx = [...selectIx, ...typeIx];
  await ctx.close();

  const line = (what, xs) => `${what}: p50 ${ms(pct(xs, 50))}, p98 ${ms(pct(xs, 98))}, max ${ms(Math.max(...xs))} (${xs.length} interactions)`;
  if (PARTS.has('dashboard')) {
    console.log(`dashboard first load (signed in, cold cache, ${RUNS} runs): load event p50 ${ms(pct(loads, 50))}, max ${ms(Math.max(...loads))}; ready (health status + agent counts) p50 ${ms(pct(ready, 50))}, max ${ms(Math.max(...ready))}`);
    console.log(`JavaScript for /dashboard: ${js.files} files, ${(js.raw / 1024).toFixed(1)} KiB as served, ${(js.gzip / 1024).toFixed(1)} KiB gzipped`);
  }
  if (PARTS.has('agents')) console.log(line(`interaction to paint, /agents with ${cards} agent cards`, agentsIx));
  if (PARTS.has('workflows')) {
    console.log(line(`interaction to paint, /workflows with a ${STEPS}-step workflow (${visible} nodes drawn)`, wfIx));
    console.log(`  of which selecting nodes: ${line('', selectIx).slice(2)}; typing a step's name: ${line('', typeIx).slice(2)}`);
    if (TRACE) console.log(`  trace, selecting 8 nodes: ${selectTrace}\n  trace, typing 12 characters: ${typeTrace}`);
  }
  if (PARTS.size === 3) {
    const ok = pct(ready, 50) < 1000 && js.gzip < 300 * 1024 && Math.max(...agentsIx) < 200 && Math.max(...wfIx) < 200;
    console.log(`budgets (ready < 1 s, JS < 300 KB gzipped, interaction to paint < 200 ms): ${ok ? 'met' : 'NOT met'}`);
  }
} finally {
  await browser.close();
}
