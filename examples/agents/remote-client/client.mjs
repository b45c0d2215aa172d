#!/usr/bin/env node
// Reference client of the devplane remote-agent protocol, version 1 (docs/agent-protocol.md).
//
// Connects to GET /api/v1/agents/:id/connect with an agent API key, says hello, heartbeats,
// runs each task it is offered, streams the task's output as task.log frames, returns the
// result, acknowledges messages, and reconnects with exponential backoff when the connection
// or the server goes away. Every notable thing it does is printed as one JSON line on stdout
// (`{"event":"connected",...}`); diagnostics go to stderr.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const PROTOCOL = 1;
const MAX_RESULT_TEXT = 64 * 1024;  // stdout/stderr kept in a result, each
const MAX_LOG_FRAME = 16 * 1024;    // text per task.log frame

const HELP = `Usage: client.mjs --url URL --agent-id ID [--key KEY] [options]

Runs a devplane remote agent: connects to URL/api/v1/agents/ID/connect over WebSocket with
an API key of role "agent" bound to agent ID, and works on the tasks devplane gives it.

Options:
  --url URL            devplane base URL, e.g. http://127.0.0.1:8080 (env DEVPLANE_URL)
  --agent-id ID        the remote agent's id (env DEVPLANE_AGENT_ID)
  --key KEY            the agent API key dp_... (env DEVPLANE_AGENT_KEY; prefer the env var)
  --mode MODE          how a task runs (default shell):
                         shell  the task input, if a string, is run with "sh -c"; if an object
                                with a string "command", that is run; its stdout and stderr
                                stream as logs; exit code 0 = succeeded, else failed.
                                Any other input is echoed back.
                         echo   nothing is run; the result is {"echo": <input>}.
  --min-backoff-ms N   first reconnect delay (default 250)
  --max-backoff-ms N   longest reconnect delay (default 5000)
  --task-timeout-s N   kill a task's command after N seconds (default 3600)
  --name NAME          client name sent in hello (default devplane-remote-client)
  -h, --help           show this help

Exit codes: 0 after SIGINT/SIGTERM, 2 on bad arguments or a refused key (401/403),
3 when a newer connection of the same agent replaced this one.`;

function fail(msg) {
  process.stderr.write(`remote-client: ${msg}\n\n${HELP}\n`);
  process.exit(2);
}

let opts;
try {
  opts = parseArgs({
    options: {
      url: { type: 'string' },
      'agent-id': { type: 'string' },
      key: { type: 'string' },
      mode: { type: 'string', default: 'shell' },
      'min-backoff-ms': { type: 'string', default: '250' },
      'max-backoff-ms': { type: 'string', default: '5000' },
      'task-timeout-s': { type: 'string', default: '3600' },
      name: { type: 'string', default: 'devplane-remote-client' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (e) {
  fail(e.message);
}
if (opts.help) {
  process.stdout.write(`${HELP}\n`);
  process.exit(0);
}
const baseUrl = opts.url ?? process.env.DEVPLANE_URL;
const agentId = opts['agent-id'] ?? process.env.DEVPLANE_AGENT_ID;
const key = opts.key ?? process.env.DEVPLANE_AGENT_KEY;
if (!baseUrl) fail('--url is required');
if (!agentId) fail('--agent-id is required');
if (!key) fail('--key (or DEVPLANE_AGENT_KEY) is required');
if (!['shell', 'echo'].includes(opts.mode)) fail('--mode must be shell or echo');
const minBackoff = Number(opts['min-backoff-ms']);
const maxBackoff = Number(opts['max-backoff-ms']);
const taskTimeoutS = Number(opts['task-timeout-s']);
if (!(minBackoff > 0) || !(maxBackoff >= minBackoff) || !(taskTimeoutS > 0)) {
  fail('backoffs and timeout must be positive numbers, --max-backoff-ms >= --min-backoff-ms');
}
let connectUrl;
try {
  const u = new URL(baseUrl);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('http or https');
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = `${u.pathname.replace(/\/$/, '')}/api/v1/agents/${encodeURIComponent(agentId)}/connect`;
  connectUrl = u.toString();
} catch (e) {
  fail(`--url is not a usable URL: ${e.message}`);
}

function emit(event, fields = {}) {
  process.stdout.write(`${JSON.stringify({ event, ...fields })}\n`);
}
function note(msg) {
  process.stderr.write(`${new Date().toISOString()} remote-client: ${msg}\n`);
}

// Tasks survive reconnects: the server offers an unfinished task again with the same id and
// attempt, and a result whose acknowledgement was lost is sent again.
const running = new Map();  // taskId -> { attempt, child }
const unacked = new Map();  // taskId -> the task.result frame, until task.result.ack
let ws = null;
let heartbeat = null;
let backoff = minBackoff;
let stopping = false;
let connects = 0;

function send(frame) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
}

function killTree(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function finish(taskId, attempt, status, result, error) {
  running.delete(taskId);
  const frame = { type: 'task.result', taskId, attempt, status, result };
  if (error) frame.error = error.slice(0, 4000);
  unacked.set(taskId, frame);
  emit('task.finished', { taskId, attempt, status });
  send(frame);
}

function runTask(task) {
  const { taskId, attempt, input, idempotencyKey } = task;
  let command = null;
  if (opts.mode === 'shell') {
    if (typeof input === 'string') command = input;
    else if (input && typeof input === 'object' && typeof input.command === 'string') command = input.command;
  }
  emit('task.started', { taskId, attempt, idempotencyKey });
  if (command === null) {
    send({ type: 'task.log', taskId, attempt, stream: 'stdout', text: `echo: ${JSON.stringify(input)}\n` });
    finish(taskId, attempt, 'succeeded', { echo: input });
    return;
  }
  // Its own process group, so a cancel or a timeout stops the whole tree it starts.
  const child = spawn('sh', ['-c', command], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DEVPLANE_TASK_ID: taskId, DEVPLANE_IDEMPOTENCY_KEY: `${agentId}/${idempotencyKey}/${attempt}` },
  });
  const entry = { attempt, child, cancelled: false };
  running.set(taskId, entry);
  const kept = { stdout: '', stderr: '' };
  for (const stream of ['stdout', 'stderr']) {
    child[stream].setEncoding('utf8');
    child[stream].on('data', (chunk) => {
      if (kept[stream].length < MAX_RESULT_TEXT) kept[stream] += chunk.slice(0, MAX_RESULT_TEXT - kept[stream].length);
      for (let i = 0; i < chunk.length; i += MAX_LOG_FRAME) {
        send({ type: 'task.log', taskId, attempt, stream, text: chunk.slice(i, i + MAX_LOG_FRAME) });
      }
    });
  }
  const started = Date.now();
  const timer = setTimeout(() => killTree(child, 'SIGKILL'), taskTimeoutS * 1000);
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    if (running.get(taskId) !== entry) return;  // superseded
    const result = { exitCode: code ?? -1, signal: signal ?? null, stdout: kept.stdout, stderr: kept.stderr, wallMs: Date.now() - started };
    if (entry.cancelled) finish(taskId, attempt, 'cancelled', result, 'cancelled by devplane');
    else if (code === 0) finish(taskId, attempt, 'succeeded', result);
    else finish(taskId, attempt, 'failed', result, signal ? `killed by ${signal}` : `exited with code ${code}`);
  });
  child.on('error', (e) => {
    clearTimeout(timer);
    if (running.get(taskId) === entry) finish(taskId, attempt, 'failed', null, e.message);
  });
}

function onFrame(text) {
  let f;
  try {
    f = JSON.parse(text);
  } catch {
    note(`ignoring a frame that is not JSON: ${String(text).slice(0, 200)}`);
    return;
  }
  switch (f.type) {
    case 'welcome': {
      backoff = minBackoff;
      connects += 1;
      emit('connected', { connectionId: f.connectionId, resumedTasks: f.resumedTasks, undeliveredMessages: f.undeliveredMessages, connects });
      clearInterval(heartbeat);
      heartbeat = setInterval(() => send({ type: 'heartbeat' }), f.heartbeatIntervalMs ?? 10000);
      // Results the previous connection sent but never saw acknowledged.
      for (const frame of unacked.values()) send(frame);
      break;
    }
    case 'task.assign': {
      const busy = running.get(f.taskId);
      if (busy && busy.attempt === f.attempt) break;  // offered again after a reconnect: still on it
      const done = unacked.get(f.taskId);
      if (done && done.attempt === f.attempt) {
        send(done);
        break;
      }
      if (busy) killTree(busy.child, 'SIGKILL');
      unacked.delete(f.taskId);
      runTask(f);
      break;
    }
    case 'task.cancel': {
      emit('task.cancel', { taskId: f.taskId, attempt: f.attempt });
      const t = running.get(f.taskId);
      if (t) {
        t.cancelled = true;
        killTree(t.child, 'SIGTERM');
      }
      break;
    }
    case 'task.result.ack':
      unacked.delete(f.taskId);
      emit('task.acked', { taskId: f.taskId, attempt: f.attempt, status: f.status, duplicate: f.duplicate });
      break;
    case 'message':
      emit('message', { messageId: f.messageId, fromAgentId: f.fromAgentId, messageType: f.messageType, payload: f.payload });
      send({ type: 'message.ack', messageIds: [f.messageId] });
      break;
    case 'error':
      emit('server.error', { code: f.code, message: f.message, details: f.details });
      if (f.code === 'stale_result' || f.code === 'unknown_task') {
        // Fenced: the server gave this task to a newer attempt (or dropped it). Stop resending.
        const id = f.details?.taskId;
        if (id) unacked.delete(id);
      }
      break;
    case 'heartbeat.ack':
    case 'message.ack.ok':
      break;
    default:
      note(`ignoring frame type ${f.type}`);
  }
}

function scheduleReconnect(why) {
  clearInterval(heartbeat);
  heartbeat = null;
  ws = null;
  if (stopping) return;
  const delay = Math.round(backoff * (0.75 + Math.random() * 0.5));
  emit('disconnected', { reason: why, retryInMs: delay });
  backoff = Math.min(backoff * 2, maxBackoff);
  setTimeout(connect, delay);
}

function connect() {
  if (stopping) return;
  const socket = new WebSocket(connectUrl, { headers: { Authorization: `Bearer ${key}` }, handshakeTimeout: 10000 });
  ws = socket;
  let refused = null;
  socket.on('unexpected-response', (req, res) => {
    refused = res.statusCode;
    let body = '';
    res.on('data', (c) => { body += c; });
    res.on('end', () => {
      req.destroy();
      emit('refused', { status: res.statusCode, body: body.slice(0, 500) });
      if (res.statusCode === 401 || res.statusCode === 403) {
        note(`the server refused the key (${res.statusCode}); giving up`);
        process.exit(2);
      }
      scheduleReconnect(`upgrade refused with ${res.statusCode}`);
    });
  });
  socket.on('open', () => {
    send({ type: 'hello', protocol: PROTOCOL, client: { name: opts.name, version: '1.0.0' } });
  });
  socket.on('message', (data, isBinary) => {
    if (!isBinary) onFrame(data.toString('utf8'));
  });
  socket.on('error', (e) => {
    if (refused === null) note(`connection error: ${e.message}`);
  });
  socket.on('close', (code, reasonBuf) => {
    if (refused !== null) return;  // handled in unexpected-response
    const reason = reasonBuf.toString();
    if (code === 4001) {
      emit('replaced', { reason });
      process.exit(3);
    }
    scheduleReconnect(`closed ${code}${reason ? `: ${reason}` : ''}`);
  });
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    stopping = true;
    for (const t of running.values()) killTree(t.child, 'SIGTERM');
    emit('stopping', { signal: sig });
    if (ws) ws.close(1000, 'client stopping');
    setTimeout(() => process.exit(0), 200).unref();
  });
}

connect();
