// Browser end-to-end test of the dashboard against the real devplane binary.
//
// Starts `devplane serve` (port 0, a temporary data dir, DEVPLANE_ADMIN_PASSWORD set, the
// built web/dist), drives Debian's Chromium through playwright-core, and checks: sign-in
// through the form, the dashboard's health charts filling from /ws, creating an agent through
// the dialog (with a server-side validation error shown on its field), the agent's card going
// live when it is started through the API (no reload), an agent's task output streaming into
// its Logs tab and its Metrics, an MCP adapter registered and a tool called (and a changed tool
// held, then approved), a two-step workflow drawn on the canvas (with the server's 422 on the
// node), saved, run and approved from its live timeline, the audit entries of all that, a
// viewer who sees no buttons it cannot use, and sign-out. Screenshots of each page go to
// $E2E_OUT (default: a temp folder).
//
// Usage: node tests/e2e/dashboard.e2e.mjs [path/to/devplane]
//   DEVPLANE_BIN, DEVPLANE_WEB_DIR, CHROMIUM (default /usr/bin/chromium), E2E_OUT
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const require = createRequire(path.join(repo, 'web/package.json'));
const { chromium } = require('playwright-core');

const bin = process.argv[2] ?? process.env.DEVPLANE_BIN ?? path.join(repo, 'build/release/src/devplane');
const webDir = process.env.DEVPLANE_WEB_DIR ?? path.join(repo, 'web/dist');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ADMIN_PASSWORD = 'e2e-admin-Password-1';
const VIEWER_PASSWORD = 'e2e-viewer-Password-1';
const TIMEOUT = 15000;
const mcpDir = path.join(repo, 'tests/mcp');
const everything = path.join(mcpDir, 'node_modules/@modelcontextprotocol/server-everything/dist/index.js');

for (const [what, p] of [
  ['devplane binary', bin],
  ['built dashboard (npm run build in web/)', path.join(webDir, 'index.html')],
  ['chromium', chromiumPath],
  ['MCP test servers (npm ci in tests/mcp)', everything],
]) {
  if (!existsSync(p)) {
    console.error(`e2e: missing ${what}: ${p}`);
    process.exit(1);
  }
}

const work = mkdtempSync(path.join(process.env.DEVPLANE_TEST_TMP ?? tmpdir(), 'dp-e2e-'));
const out = process.env.E2E_OUT ?? path.join(work, 'screenshots');
mkdirSync(out, { recursive: true });

let server;
let browser;
const results = [];

function startServer() {
  return new Promise((resolve, reject) => {
    // The embedded mode (SQLite, in-process bus), whatever the caller's environment says.
    const env = { ...process.env };
    for (const k of ['DEVPLANE_DATABASE_URL', 'DEVPLANE_REDIS_URL', 'DEVPLANE_CONFIG']) delete env[k];
    const p = spawn(bin, ['serve', '--port', '0', '--data-dir', path.join(work, 'data'), '--log-format', 'text', '--log-level', 'warn'], {
      env: {
        ...env,
        DEVPLANE_ADMIN_PASSWORD: ADMIN_PASSWORD,
        DEVPLANE_WEB_DIR: webDir,
        // The agent cards' resource figures: sampled every second instead of five.
        DEVPLANE_AGENT_RESOURCES_INTERVAL_MS: '1000',
        DEVPLANE_HEALTH_INTERVAL_MS: '300',
        DEVPLANE_PASSWORD_HASH_COST: 'interactive',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`devplane did not start within ${TIMEOUT} ms\n${stdout}\n${stderr}`)), TIMEOUT);
    p.stdout.on('data', (d) => {
      stdout += d;
      const m = /devplane listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ proc: p, base: m[1], stdout: () => stdout, stderr: () => stderr });
      }
    });
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`devplane exited with ${code}\n${stdout}\n${stderr}`));
    });
  });
}

async function stopServer() {
  if (!server || server.proc.exitCode !== null) return;
  const exited = new Promise((r) => server.proc.once('exit', r));
  server.proc.kill('SIGTERM');
  const t = setTimeout(() => server.proc.kill('SIGKILL'), 10000);
  await exited;
  clearTimeout(t);
}

async function api(method, p, body, token) {
  const res = await fetch(server.base + p, {
    method,
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
    throw e;
  }
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });
}

async function signIn(page, username, password) {
  await page.goto(server.base + '/agents');
  await page.waitForURL(/\/login\?next=/, { timeout: TIMEOUT });
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(/\/agents$/, { timeout: TIMEOUT });
}

let failed = false;
try {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  let adminToken;

  await step('serves the built dashboard with the right headers', async () => {
    const res = await fetch(server.base + '/login');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const html = await res.text();
    const asset = /\/_astro\/[^"']+\.js/.exec(html)?.[0];
    assert.ok(asset, 'the login page links a hashed script');
    const a = await fetch(server.base + asset);
    assert.equal(a.status, 200);
    assert.match(a.headers.get('content-type'), /javascript/);
    assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    const trav = await fetch(server.base + '/_astro/..%2F..%2Fpackage.json');
    assert.equal(trav.status, 404);
  });

  await step('an unsigned visitor is sent to the login form; a wrong password is refused', async () => {
    await page.goto(server.base + '/dashboard');
    await page.waitForURL(/\/login\?next=%2Fdashboard/, { timeout: TIMEOUT });
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Wrong username or password.').waitFor({ timeout: TIMEOUT });
    await shot(page, 'login');
  });

  await step('signs in through the form and lands on the dashboard', async () => {
    await page.getByLabel('Password').fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/dashboard$/, { timeout: TIMEOUT });
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor({ timeout: TIMEOUT });
    const session = await page.evaluate(() => JSON.parse(localStorage.getItem('devplane.session') ?? 'null'));
    assert.equal(session?.user?.username, 'admin');
    assert.equal(session?.user?.role, 'admin');
  });

  await step('the dashboard charts receive system.health.status events over /ws', async () => {
    await page.locator('[data-connection="open"]').waitFor({ timeout: TIMEOUT });
    // Health reports come every 300 ms here: wait until three reached each chart.
    for (const id of ['chart-cpu', 'chart-memory', 'chart-connections', 'chart-queue', 'chart-latency']) {
      await page.waitForFunction((sel) => Number(document.querySelector(`[data-testid="${sel}"]`)?.getAttribute('data-points') ?? 0) >= 3, id, {
        timeout: TIMEOUT,
      });
    }
    assert.ok((await page.locator('[data-testid="chart-cpu"] svg .recharts-line').count()) >= 1, 'the CPU chart draws a line');
    assert.equal(await page.locator('[data-testid="health-status"]').innerText(), 'ok');
    await shot(page, 'dashboard');
  });

  await step('creates an agent through the dialog, with the server’s validation error on its field', async () => {
    await page.getByRole('navigation', { name: 'Main', exact: true }).getByRole('link', { name: 'Agents' }).click();
    await page.waitForURL(/\/agents/, { timeout: TIMEOUT });
    await page.locator('[data-state="empty"]').waitFor({ timeout: TIMEOUT });
    await page.getByTestId('new-agent').click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('e2e-builder');
    await dialog.getByLabel('Command').fill('make test');
    await dialog.getByLabel('Timeout (seconds)').fill('0'); // the server allows 1..604800
    await dialog.getByRole('button', { name: 'Create agent' }).click();
    const err = dialog.locator('[data-field-error="agent-timeout"]');
    await err.waitFor({ timeout: TIMEOUT });
    assert.match(await err.innerText(), /timeoutSeconds/);
    assert.equal(await dialog.getByLabel('Timeout (seconds)').getAttribute('aria-invalid'), 'true');
    assert.equal(await dialog.locator('[data-field-error]').count(), 1, 'only the timeout field is marked');
    await shot(page, 'agent-config-error');
    await dialog.getByLabel('Timeout (seconds)').fill('600');
    await dialog.getByRole('button', { name: 'Create agent' }).click();
    await dialog.waitFor({ state: 'detached', timeout: TIMEOUT });
    const card = page.locator('[data-testid="agent-card"][data-agent-name="e2e-builder"]');
    await card.waitFor({ timeout: TIMEOUT });
    assert.equal(await card.getAttribute('data-status'), 'created');
  });

  await step('the card goes live when the agent is started through the API (no reload)', async () => {
    const login = await api('POST', '/api/v1/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(login.status, 200);
    adminToken = login.json.data.accessToken;
    const list = await api('GET', '/api/v1/agents', undefined, adminToken);
    const agent = list.json.data.find((a) => a.name === 'e2e-builder');
    assert.ok(agent, 'the agent made in the browser exists on the server');
    assert.deepEqual(agent.config, { command: ['make', 'test'], timeoutSeconds: 600 });
    await page.evaluate(() => (window.__noReload = true));
    const started = await api('POST', `/api/v1/agents/${agent.id}/start`, undefined, adminToken);
    assert.equal(started.status, 200);
    await page.locator('[data-testid="agent-card"][data-agent-name="e2e-builder"][data-status="running"]').waitFor({ timeout: TIMEOUT });
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
    // And the other way: stopping from the card.
    await page.getByRole('button', { name: 'Stop e2e-builder' }).click();
    await page.locator('[data-testid="agent-card"][data-agent-name="e2e-builder"][data-status="stopped"]').waitFor({ timeout: TIMEOUT });
    await shot(page, 'agents');
  });

  await step('a message sent through the API shows up live in the agent’s details', async () => {
    await page.getByRole('button', { name: 'e2e-builder', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.locator('[data-state="empty"]').waitFor({ timeout: TIMEOUT });
    const list = await api('GET', '/api/v1/agents', undefined, adminToken);
    const agent = list.json.data.find((a) => a.name === 'e2e-builder');
    const sent = await api('POST', `/api/v1/agents/${agent.id}/messages`, { type: 'task.handoff', payload: { issue: 42 } }, adminToken);
    assert.equal(sent.status, 201);
    await dialog.locator('[data-testid="agent-messages"]').getByText('task.handoff').waitFor({ timeout: TIMEOUT });
    await shot(page, 'agent-details');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', timeout: TIMEOUT });
  });

  await step('the admin page lists users, and the audit log has the agent’s creation', async () => {
    await page.goto(server.base + '/admin');
    await page.locator('[data-testid="users-table"]').getByText('admin', { exact: true }).first().waitFor({ timeout: TIMEOUT });
    await page.getByRole('tab', { name: 'Audit log' }).click();
    const table = page.locator('[data-testid="audit-table"]');
    await table.waitFor({ timeout: TIMEOUT });
    // The failed attempt (422) and the creation (201) are both there.
    const rows = table.getByRole('row').filter({ hasText: 'POST /api/v1/agents' });
    await rows.filter({ hasText: 'success (201)' }).first().waitFor({ timeout: TIMEOUT });
    await rows.filter({ hasText: 'failure (422)' }).first().waitFor({ timeout: TIMEOUT });
    assert.match(await page.getByTestId('audit-chain').innerText(), /verifies/);
    await shot(page, 'admin');
  });

  await step('an agent’s task output streams into its Logs tab live, and its Metrics show the result', async () => {
    const made = await api('POST', '/api/v1/agents', { name: 'e2e-greeter', type: 'command', config: { command: 'read who; echo hello, $who; echo careful >&2' } }, adminToken);
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const id = made.json.data.id;
    assert.equal((await api('POST', `/api/v1/agents/${id}/start`, undefined, adminToken)).status, 200);
    await page.goto(`${server.base}/agents?agent=${id}`);
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('tab', { name: 'Logs' }).click();
    await dialog.getByText('No tasks yet').waitFor({ timeout: TIMEOUT });
    await page.evaluate(() => (window.__noReload = true));
    const task = await api('POST', `/api/v1/agents/${id}/tasks`, { input: 'browser' }, adminToken);
    assert.equal(task.status, 201, JSON.stringify(task.json));
    const log = dialog.getByTestId('agent-log');
    await log.getByText('hello, browser').waitFor({ timeout: TIMEOUT });
    await log.getByText('careful').waitFor({ timeout: TIMEOUT });
    await dialog.getByTestId('agent-tasks').getByText('succeeded').waitFor({ timeout: TIMEOUT });
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
    await shot(page, 'agent-logs');
    await dialog.getByRole('tab', { name: 'Metrics' }).click();
    await dialog.locator('[data-testid="agent-success-rate"][data-rate="100"]').waitFor({ timeout: TIMEOUT });
    await dialog.locator('[data-testid="chart-durations"][data-points="1"] .recharts-bar-rectangle').first().waitFor({ timeout: TIMEOUT });
    await shot(page, 'agent-metrics');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', timeout: TIMEOUT });
  });

  await step('a card shows its agent’s running task and resource use live, and idles when the task ends', async () => {
    // 24 MiB held, then a busy loop until the task is cancelled.
    const made = await api(
      'POST',
      '/api/v1/agents',
      { name: 'e2e-burner', type: 'command', config: { command: ['sh', '-c', "x=$(head -c 25165824 /dev/zero | tr '\\000' a); while :; do :; done"], memoryMb: 128 } },
      adminToken,
    );
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const id = made.json.data.id;
    assert.equal((await api('POST', `/api/v1/agents/${id}/start`, undefined, adminToken)).status, 200);
    await page.goto(`${server.base}/agents`);
    const card = page.locator('[data-testid="agent-card"][data-agent-name="e2e-burner"]');
    await card.getByTestId('agent-idle').getByText('idle').waitFor({ timeout: TIMEOUT });
    await page.evaluate(() => (window.__noReload = true));
    const task = await api('POST', `/api/v1/agents/${id}/tasks`, { input: 'crunch the numbers' }, adminToken);
    assert.equal(task.status, 201, JSON.stringify(task.json));
    const current = card.locator(`[data-testid="agent-current-task"][data-task-id="${task.json.data.id}"]`);
    await current.getByText('crunch the numbers').waitFor({ timeout: TIMEOUT });
    // A sample with the held memory (MiB, against the 128 MiB limit) and a busy CPU.
    const res = card.getByTestId('agent-resources');
    await res.getByText(/CPU \d+(\.\d)?% · mem [1-9]\d\.\d MiB \/ 128\.0 MiB/).waitFor({ timeout: TIMEOUT });
    const figures = await res.innerText();
    const cpu = Number(/CPU (\d+(?:\.\d)?)%/.exec(figures)[1]);
    assert.ok(cpu > 1, `a busy loop shows CPU use: ${figures}`);
    assert.match(await card.getByTestId('agent-task-elapsed').innerText(), /^\d+ s$/);
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
    await shot(page, 'agents-busy');
    // Its Logs button opens the details on the Logs tab.
    await card.getByRole('button', { name: "Logs of e2e-burner's current task" }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('tab', { name: 'Logs', selected: true }).waitFor({ timeout: TIMEOUT });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached', timeout: TIMEOUT });
    const cancel = await api('POST', `/api/v1/agents/${id}/tasks/${task.json.data.id}/cancel`, undefined, adminToken);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.json));
    await card.getByTestId('agent-idle').waitFor({ timeout: TIMEOUT });
    assert.equal(await card.getByTestId('agent-current-task').count(), 0);
    assert.equal((await api('POST', `/api/v1/agents/${id}/stop`, undefined, adminToken)).status, 200);
  });

  let workflowUrl;
  await step('registers an MCP adapter (server-everything over stdio, sandboxed) and calls a tool', async () => {
    await page.goto(server.base + '/admin');
    await page.getByRole('tab', { name: 'MCP adapters' }).click();
    await page.getByText('No MCP servers registered').waitFor({ timeout: TIMEOUT });
    await page.getByTestId('mcp-new').click();
    const form = page.getByTestId('mcp-register');
    await form.getByLabel('Name').fill('everything');
    await form.getByLabel('Command').fill(process.execPath);
    await form.getByLabel('Arguments (one per line)').fill(`${everything}\nstdio`);
    await form.getByLabel('Read-only host folders (one per line)').fill(path.join(mcpDir, 'node_modules'));
    await form.getByRole('button', { name: 'Register' }).click();
    const details = page.getByTestId('mcp-adapter-details');
    await details.waitFor({ timeout: TIMEOUT });
    await details.locator('[data-testid="mcp-catalog"] [data-tool="echo"]').waitFor({ timeout: TIMEOUT });
    await details.getByTestId('check-health').click();
    await details.getByTestId('health-result').getByText(/healthy/).waitFor({ timeout: TIMEOUT });
    const tryTool = details.getByTestId('try-tool');
    await tryTool.getByLabel('Tool').selectOption('echo');
    await tryTool.getByLabel('Arguments (JSON)').fill('{"message": 7}');
    await tryTool.getByTestId('call-tool').click();
    await tryTool.getByTestId('tool-error').getByText('arguments.message').waitFor({ timeout: TIMEOUT }); // the schema check
    await tryTool.getByLabel('Arguments (JSON)').fill('{"message": "hi from the browser"}');
    await tryTool.getByTestId('call-tool').click();
    await tryTool.locator('[data-testid="tool-result"][data-status="succeeded"]').getByText('Echo: hi from the browser').waitFor({ timeout: TIMEOUT });
    await details.getByTestId('mcp-calls').getByText('succeeded').first().waitFor({ timeout: TIMEOUT });
    await page.locator('[data-testid="mcp-adapters"] [data-adapter="everything"][data-status="healthy"]').waitFor({ timeout: TIMEOUT });
    await shot(page, 'admin-mcp');
  });

  await step('a tool whose description changes is shown held, and an admin approves it', async () => {
    const mutateFile = path.join(work, 'mutated');
    const reg = await api('POST', '/api/v1/tools', {
      name: 'shifty',
      config: { transport: 'stdio', command: process.execPath, args: [path.join(mcpDir, 'fake_server.mjs'), 'mutating'], env: { MUTATE_FILE: mutateFile }, sandbox: false },
    }, adminToken);
    assert.equal(reg.status, 201, JSON.stringify(reg.json));
    const id = reg.json.data.id;
    // The server's "mutate" tool changes echo's description and announces a new catalog.
    const m = await api('POST', `/api/v1/tools/${id}/execute`, { tool: 'mutate', arguments: {} }, adminToken);
    assert.equal(m.status, 200, JSON.stringify(m.json));
    const row = page.locator('[data-testid="mcp-adapters"] [data-adapter="shifty"]');
    await row.waitFor({ timeout: TIMEOUT });
    await row.getByRole('button', { name: 'shifty' }).click();
    const details = page.getByTestId('mcp-adapter-details');
    await details.getByText(/Held until approved.*echo/).waitFor({ timeout: TIMEOUT });
    await details.locator('[data-testid="mcp-catalog"] [data-tool="echo"]').getByText('held').waitFor({ timeout: TIMEOUT });
    const held = await api('POST', `/api/v1/tools/${id}/execute`, { tool: 'echo', arguments: { message: 'x' } }, adminToken);
    assert.equal(held.status, 409);
    await shot(page, 'admin-mcp-held');
    await details.getByRole('button', { name: 'Approve' }).click();
    await details.locator('[data-testid="mcp-catalog"] [data-tool="echo"]').getByText('pinned').waitFor({ timeout: TIMEOUT });
    await details.getByText(/Held until approved/).waitFor({ state: 'detached', timeout: TIMEOUT });
    assert.equal((await api('POST', `/api/v1/tools/${id}/execute`, { tool: 'echo', arguments: { message: 'x' } }, adminToken)).status, 200);
  });

  await step('draws a two-step workflow on the canvas, sees the server’s 422 on the node, fixes it and saves', async () => {
    await page.goto(server.base + '/workflows');
    await page.getByText('No workflows yet').waitFor({ timeout: TIMEOUT });
    await page.getByTestId('new-workflow').click();
    const canvas = page.getByTestId('wf-canvas');
    await canvas.locator('[data-step-id="first"]').waitFor({ timeout: TIMEOUT });
    // Add an approval gate on the canvas and give it an id and a message.
    await page.getByLabel('Step type').selectOption('approval');
    await page.getByTestId('add-step').click();
    const settings = page.getByTestId('step-settings');
    await settings.getByLabel('Id').fill('gate');
    await settings.getByLabel('Message').click(); // leaving the id field renames the step
    await settings.getByLabel('Message').fill('Ship it?');
    await canvas.locator('[data-step-id="gate"]').waitFor({ timeout: TIMEOUT });
    // Connect gate -> first by dragging from gate's right handle to first's left handle.
    const from = await canvas.locator('.react-flow__node[data-id="gate"] .react-flow__handle.source').boundingBox();
    const to = await canvas.locator('.react-flow__node[data-id="first"] .react-flow__handle.target').boundingBox();
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2 + 20, { steps: 5 });
    await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 5 });
    await page.mouse.up();
    await canvas.locator('.react-flow__edge').first().waitFor({ state: 'attached', timeout: TIMEOUT });
    const yaml = page.getByTestId('wf-yaml');
    // The text pane follows canvas edits a moment later (a deferred render).
    await page.waitForFunction(
      () => /id: first\n\s+type: wait\n\s+duration: 1s\n\s+needs:\n\s+- gate/.test(document.querySelector('[data-testid="wf-yaml"]').value),
      undefined,
      { timeout: TIMEOUT },
    );
    // The YAML side is editable too: rename the workflow there, and write a bad duration.
    const text = (await yaml.inputValue())
      .replace('name: my-workflow', 'name: e2e-release\ninputs:\n  version: {type: string, required: true}')
      .replace('message: Ship it?', 'message: "Ship ${{ inputs.version }}?"')
      .replace('duration: 1s', 'duration: soon');
    await yaml.fill(text);
    await page.getByTestId('save-workflow').click();
    const bad = canvas.locator('[data-testid="wf-node"][data-step-id="first"][data-problems="1"]');
    await bad.waitFor({ timeout: TIMEOUT });
    assert.match(await bad.getByTestId('wf-node-problem').innerText(), /bad_duration/);
    assert.equal(await canvas.locator('[data-testid="wf-node"][data-step-id="gate"]').getAttribute('data-problems'), '0');
    assert.match(await page.getByTestId('definition-problems').innerText(), /steps\[0\]\.duration bad_duration.*line \d+/);
    await shot(page, 'workflow-canvas-error');
    // Fix it in the step's settings on the canvas side.
    await canvas.locator('[data-testid="wf-node"][data-step-id="first"]').click();
    await page.getByTestId('step-settings').getByLabel('Duration').fill('300ms');
    await page.getByTestId('save-workflow').click();
    await page.waitForURL(/\/workflows\?id=/, { timeout: TIMEOUT });
    await page.getByTestId('workflow-title').getByText('e2e-release').waitFor({ timeout: TIMEOUT });
    workflowUrl = page.url();
    const wfs = await api('GET', '/api/v1/workflows?name=e2e-release', undefined, adminToken);
    const saved = await api('GET', `/api/v1/workflows/${wfs.json.data[0].id}`, undefined, adminToken);
    assert.match(saved.json.data.definition, /type: approval/);
    assert.match(saved.json.data.definition, /duration: 300ms\n\s+needs:\n\s+- gate/);
    await page.getByTestId('wf-canvas').locator('.react-flow__edge').first().waitFor({ state: 'attached', timeout: TIMEOUT });
    await shot(page, 'workflow-canvas');
  });

  let executionId;
  await step('runs it, watches the timeline move live, approves the gate and sees it finish', async () => {
    await page.getByTestId('run-workflow').click();
    const run = page.getByRole('dialog');
    await run.getByTestId('run-submit').click(); // without the required input: the server's 422 on its field
    assert.match(await run.locator('[data-field-error="input-version"]').innerText({ timeout: TIMEOUT }), /required/);
    await run.getByLabel('version').fill('1.0');
    await run.getByTestId('run-submit').click();
    await page.waitForURL(/execution=/, { timeout: TIMEOUT });
    executionId = new URL(page.url()).searchParams.get('execution');
    const timeline = page.getByTestId('timeline');
    await timeline.locator('[data-testid="timeline-step"][data-step-id="gate"][data-status="waiting_approval"]').waitFor({ timeout: TIMEOUT });
    assert.equal(await timeline.locator('[data-testid="timeline-step"][data-step-id="first"]').getAttribute('data-status'), 'pending');
    await page.locator('[data-testid="wf-node"][data-step-id="gate"][data-status="waiting_approval"]').waitFor({ timeout: TIMEOUT });
    assert.equal(await timeline.getByTestId('approval-message').innerText(), '“Ship 1.0?”');
    await shot(page, 'workflow-timeline-waiting');
    await page.evaluate(() => (window.__noReload = true));
    await timeline.getByLabel('Comment on gate').fill('looks good');
    await timeline.getByRole('button', { name: 'Approve gate' }).click();
    await timeline.locator('[data-testid="timeline-step"][data-step-id="gate"][data-status="succeeded"]').waitFor({ timeout: TIMEOUT });
    await page.locator('[data-testid="timeline"][data-status="succeeded"]').waitFor({ timeout: TIMEOUT });
    await timeline.locator('[data-testid="timeline-step"][data-step-id="first"][data-status="succeeded"]').waitFor({ timeout: TIMEOUT });
    assert.ok(Number(await timeline.getAttribute('data-live-events')) >= 3, 'the timeline moved on live events');
    assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
    const x = await api('GET', `/api/v1/executions/${executionId}`, undefined, adminToken);
    assert.equal(x.json.data.status, 'succeeded');
    assert.equal(x.json.data.steps.find((s) => s.stepId === 'gate').outputs.comment, 'looks good');
    await shot(page, 'workflow-timeline');
  });

  await step('the dashboard counts the finished execution by its state', async () => {
    await page.goto(server.base + '/dashboard');
    const succeeded = page.locator('[data-testid="executions-succeeded"] [data-count]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="executions-succeeded"] [data-count]')?.getAttribute('data-count') ?? 0) >= 1, null, {
      timeout: TIMEOUT,
    });
    const all = await api('GET', '/api/v1/executions?status=succeeded&limit=1', undefined, adminToken);
    assert.equal(Number(await succeeded.getAttribute('data-count')), all.json.meta.total);
    assert.equal(await page.locator('[data-testid="executions-failed"] [data-count]').getAttribute('data-count'), '0');
  });

  await step('the audit log has the adapter, the tool call, the workflow, the run and the approval', async () => {
    await page.goto(server.base + '/admin');
    await page.getByRole('tab', { name: 'Audit log' }).click();
    const table = page.locator('[data-testid="audit-table"]');
    await table.waitFor({ timeout: TIMEOUT });
    for (const action of ['POST /api/v1/tools', '/execute', 'POST /api/v1/workflows', '/approve']) {
      await table.getByRole('row').filter({ hasText: action }).filter({ hasText: /success \(20\d\)/ }).first().waitFor({ timeout: TIMEOUT });
    }
    assert.match(await page.getByTestId('audit-chain').innerText(), /verifies/);
    await shot(page, 'admin-audit');
  });

  await step('a viewer sees the agents but no button it cannot use', async () => {
    const made = await api('POST', '/api/v1/users', { username: 'vera', displayName: 'Vera Viewer', role: 'viewer', password: VIEWER_PASSWORD }, adminToken);
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const viewer = await browser.newContext({ viewport: { width: 390, height: 844 } }); // and a narrow screen
    try {
      const vp = await viewer.newPage();
      await signIn(vp, 'vera', VIEWER_PASSWORD);
      await vp.locator('[data-testid="agent-card"][data-agent-name="e2e-builder"]').waitFor({ timeout: TIMEOUT });
      assert.equal(await vp.getByTestId('new-agent').count(), 0, 'no New agent button');
      assert.equal(await vp.getByRole('button', { name: /^(Start|Stop|Edit) / }).count(), 0, 'no start, stop or edit');
      // Admin is not in the menu for a viewer, and the page says why when opened anyway.
      await vp.getByRole('button', { name: 'Menu' }).click();
      assert.equal(await vp.getByRole('link', { name: 'Admin' }).count(), 0);
      await vp.goto(server.base + '/admin');
      await vp.getByText('Administration is for admins').waitFor({ timeout: TIMEOUT });
      await shot(vp, 'viewer-narrow');
      // Workflows: the viewer reads the definition and the run, but has no edit, run or decision buttons.
      await vp.goto(workflowUrl);
      await vp.getByTestId('wf-canvas').locator('[data-step-id="gate"]').waitFor({ timeout: TIMEOUT });
      for (const id of ['new-workflow', 'save-workflow', 'add-step', 'run-workflow']) assert.equal(await vp.getByTestId(id).count(), 0, `no ${id}`);
      assert.equal(await vp.getByTestId('wf-yaml').getAttribute('readonly'), '');
      await vp.goto(`${workflowUrl}&execution=${executionId}`);
      await vp.locator('[data-testid="timeline"][data-status="succeeded"]').waitFor({ timeout: TIMEOUT });
      assert.equal(await vp.getByRole('button', { name: /^(Approve|Reject|Cancel|Retry)/ }).count(), 0, 'no decisions');
      await shot(vp, 'viewer-workflow-narrow');
      // And the API refuses what the page does not offer.
      const vlogin = await api('POST', '/api/v1/auth/login', { username: 'vera', password: VIEWER_PASSWORD });
      const vt = vlogin.json.data.accessToken;
      assert.equal((await api('POST', '/api/v1/workflows', { definition: 'name: v\nsteps: [{id: a, type: wait, duration: 1s}]\n' }, vt)).status, 403);
      assert.equal((await api('POST', '/api/v1/tools', { name: 'v', config: { transport: 'http', url: 'http://127.0.0.1:9/mcp' } }, vt)).status, 403);
      const adapters = await api('GET', '/api/v1/tools', undefined, vt);
      assert.equal((await api('POST', `/api/v1/tools/${adapters.json.data[0].id}/execute`, { tool: 'echo', arguments: { message: 'x' } }, vt)).status, 403);
    } finally {
      await viewer.close();
    }
  });

  await step('signs out: the session is gone and pages ask for a sign-in again', async () => {
    await page.goto(server.base + '/dashboard');
    await page.getByTestId('user-menu').click();
    await page.getByTestId('logout').click();
    await page.waitForURL(/\/login$/, { timeout: TIMEOUT });
    assert.equal(await page.evaluate(() => localStorage.getItem('devplane.session')), null);
    await page.goto(server.base + '/agents');
    await page.waitForURL(/\/login\?next=/, { timeout: TIMEOUT });
  });

  await step('no script errors in the browser console', async () => {
    // The browser logs every non-2xx answer; the 401s while signed out and the refused
    // password, and the 422 of the validation step, are expected answers, not script errors.
    const real = consoleErrors.filter((e) => !/^Failed to load resource: the server responded with a status of (401|422)\b/.test(e));
    assert.deepEqual(real, []);
  });
} catch (e) {
  failed = true;
  if (!results.some((r) => !r.ok)) console.log(`FAIL setup: ${e.stack ?? e}`);
  if (server) {
    console.log('--- devplane stdout ---\n' + server.stdout());
    console.log('--- devplane stderr (tail) ---\n' + server.stderr().split('\n').slice(-40).join('\n'));
  }
} finally {
  await browser?.close().catch(() => {});
  await stopServer().catch(() => {});
  const passed = results.filter((r) => r.ok).length;
  console.log(`e2e: ${passed}/${results.length} steps passed; screenshots in ${out}`);
  // The data dir always goes; screenshots stay when they were asked for (E2E_OUT) or on failure.
  if (process.env.E2E_OUT || !failed) rmSync(work, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}
