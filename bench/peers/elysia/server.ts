// Peer server for bench/http: the devplane agent routes written in the seed's stack
// (Bun + Elysia), on bun:sqlite with the same pragmas, schema and transaction shape as devplane.
//
//   PORT=8081 DATA_DIR=/tmp/peer node_modules/@oven/bun-linux-x64/bin/bun run server.ts
//
// Routes: POST /api/v1/agents, GET /api/v1/agents/:id, GET /api/v1/agents, GET /api/v1/system/health,
// and the WebSocket endpoint /ws (for bench/ws) with the subset of devplane's hub protocol that the
// benchmark uses:
//   -> {"op":"subscribe","id":"1","topics":["*"]}   <- {"type":"ack","id":"1","op":"subscribe","subscription":"s1"}
//   -> {"op":"unsubscribe","id":"2"}                <- {"type":"ack","id":"2","op":"unsubscribe"}
//   -> {"op":"ping","id":"3"}                       <- {"type":"pong","id":"3"}
//   <- {"type":"event","id":<outbox id>,"topic":"agent.status.update","timestamp":..,"correlationId":..,
//       "data":{"agentId":..,"name":..,"from":null,"status":"created","reason":"created","version":1,"timestamp":..}}
// Each create publishes its event frame once, right after its transaction commits, through Bun's
// native pub/sub (server.publish) to every subscribed client. No replay, no resume: the peer is
// the plain fan-out that Bun gives, a lower bound for what devplane's hub does on top.
import { Database, type Statement } from "bun:sqlite";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Elysia } from "elysia";

const PORT = Number(process.env.PORT ?? "8081");
const DATA_DIR = process.env.DATA_DIR ?? "./peer-data";
const MAX_BODY = 1024 * 1024;
// The admin's password (as devplane's DEVPLANE_ADMIN_PASSWORD); without it nobody can sign in.
const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? "";

// ---------------------------------------------------------------- store

mkdirSync(DATA_DIR, { recursive: true });
const db = new Database(join(DATA_DIR, "peer.db"), { create: true, strict: true });
db.exec("PRAGMA journal_mode=WAL");
db.exec("PRAGMA synchronous=FULL");
db.exec("PRAGMA foreign_keys=ON");
db.exec("PRAGMA busy_timeout=5000");
db.exec(`
CREATE TABLE IF NOT EXISTS agents (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  status TEXT NOT NULL,
  status_reason TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  labels TEXT NOT NULL DEFAULT '{}',
  config TEXT NOT NULL DEFAULT '{}',
  version INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS agents_name_live ON agents(name) WHERE status <> 'decommissioned';
CREATE INDEX IF NOT EXISTS agents_created ON agents(created_at, id);
CREATE INDEX IF NOT EXISTS agents_status ON agents(status, id);
CREATE INDEX IF NOT EXISTS agents_type ON agents(type, id);
CREATE TABLE IF NOT EXISTS agent_states (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  from_status TEXT,
  status TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  state_data TEXT NOT NULL DEFAULT '{}',
  version INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_states_agent ON agent_states(agent_id, id);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  topic TEXT NOT NULL,
  payload TEXT NOT NULL,
  correlation_id TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  published_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox(id) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  status TEXT NOT NULL,
  password_hash TEXT NOT NULL
);
`);

type AgentRow = {
  id: string; name: string; type: string; status: string; description: string;
  labels: string; config: string; version: number; created_at: string; updated_at: string;
};

const COLS = "id, name, type, status, description, labels, config, version, created_at, updated_at";
const getById = db.query<AgentRow, [string]>(`SELECT ${COLS} FROM agents WHERE id = ?`);
const insertAgent = db.query(
  `INSERT INTO agents (${COLS}) VALUES ($id, $name, $type, $status, $description, $labels, $config, 1, $now, $now)`,
);
const insertState = db.query(
  `INSERT INTO agent_states (agent_id, from_status, status, reason, version, created_at)
   VALUES ($id, NULL, 'created', 'created', 1, $now)`,
);
const insertOutbox = db.query(
  `INSERT INTO outbox (topic, payload, correlation_id, created_at, published_at)
   VALUES ('agent.status.update', $payload, $rid, $now, NULL)`,
);
// Returns the outbox row id, which is also the event's id on /ws.
const createTx = db.transaction((p: Record<string, string>): number => {
  insertAgent.run(p);
  insertState.run({ id: p.id, now: p.now });
  return Number(insertOutbox.run({ payload: p.payload, rid: p.rid, now: p.now }).lastInsertRowid);
});

type UserRow = { id: string; username: string; role: string; status: string; password_hash: string };
const userById = db.query<UserRow, [string]>("SELECT * FROM users WHERE id = ?");
const userByName = db.query<UserRow, [string]>("SELECT * FROM users WHERE username = ?");
if (ADMIN_PASSWORD !== "" && !userByName.get("admin")) {
  db.query("INSERT INTO users (id, username, role, status, password_hash) VALUES (?, 'admin', 'admin', 'active', ?)")
    .run(Bun.randomUUIDv7(), Bun.password.hashSync(ADMIN_PASSWORD, { algorithm: "argon2id" }));
}

// List statements depend on which filters are present; prepare each shape once and keep it.
type ListFilter = { status?: string; type?: string; q?: string; after?: [string, string] };
const listCache = new Map<string, { rows: Statement<AgentRow>; count: Statement<{ n: number }> }>();
function listStatements(f: ListFilter) {
  const key = `${f.status !== undefined}${f.type !== undefined}${f.q !== undefined}${f.after !== undefined}`;
  let s = listCache.get(key);
  if (!s) {
    const where: string[] = [];
    if (f.status !== undefined) where.push("status = $status");
    if (f.type !== undefined) where.push("type = $type");
    if (f.q !== undefined) where.push("(instr(lower(name), $q) > 0 OR instr(lower(description), $q) > 0)");
    const countWhere = where.length ? ` WHERE ${where.join(" AND ")}` : "";
    if (f.after !== undefined) where.push("(created_at, id) > ($afterAt, $afterId)");
    const rowsWhere = where.length ? ` WHERE ${where.join(" AND ")}` : "";
    s = {
      rows: db.query<AgentRow, any>(
        `SELECT ${COLS} FROM agents${rowsWhere} ORDER BY created_at, id LIMIT $limit OFFSET $offset`),
      count: db.query<{ n: number }, any>(`SELECT count(*) AS n FROM agents${countWhere}`),
    };
    listCache.set(key, s);
  }
  return s;
}

// ---------------------------------------------------------------- helpers

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const AGENT_TYPES = new Set(["command", "llm", "remote"]);
const AGENT_STATUSES = new Set(["created", "starting", "running", "stopping", "stopped", "error", "decommissioned"]);
const CREATE_KEYS = new Set(["name", "type", "config", "description", "labels"]);

class ApiError extends Error {
  constructor(public status: number, public code: string, message: string, public details?: unknown) {
    super(message);
  }
}

function toAgent(r: AgentRow) {
  return {
    id: r.id, name: r.name, type: r.type, status: r.status, description: r.description,
    labels: JSON.parse(r.labels), config: JSON.parse(r.config), version: r.version,
    createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

type Field = { field: string; message: string };

function validateCreate(body: unknown) {
  if (!isPlainObject(body)) throw new ApiError(422, "validation_failed", "body must be a JSON object");
  const errs: Field[] = [];
  for (const k of Object.keys(body)) if (!CREATE_KEYS.has(k)) errs.push({ field: k, message: "unknown field" });
  const { name, type, config, description, labels } = body;
  if (typeof name !== "string" || name.length < 1 || name.length > 128)
    errs.push({ field: "name", message: "must be a string of 1 to 128 characters" });
  if (typeof type !== "string" || !AGENT_TYPES.has(type))
    errs.push({ field: "type", message: "must be one of command, llm, remote" });
  if (config !== undefined && !isPlainObject(config)) errs.push({ field: "config", message: "must be an object" });
  if (description !== undefined && (typeof description !== "string" || description.length > 2000))
    errs.push({ field: "description", message: "must be a string of at most 2000 characters" });
  if (labels !== undefined) {
    if (!isPlainObject(labels)) errs.push({ field: "labels", message: "must be an object of strings" });
    else for (const [k, v] of Object.entries(labels))
      if (typeof v !== "string") errs.push({ field: `labels.${k}`, message: "must be a string" });
  }
  if (errs.length) throw new ApiError(422, "validation_failed", "request body is invalid", errs);
  return {
    name: name as string, type: type as string, config: (config ?? {}) as object,
    description: (description ?? "") as string, labels: (labels ?? {}) as Record<string, string>,
  };
}

function intParam(v: string | undefined, name: string, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (!/^[0-9]{1,9}$/.test(v)) throw new ApiError(422, "validation_failed", `${name} must be an integer`,
    [{ field: name, message: `must be an integer from ${min} to ${max}` }]);
  const n = Number(v);
  if (n < min || n > max) throw new ApiError(422, "validation_failed", `${name} is out of range`,
    [{ field: name, message: `must be an integer from ${min} to ${max}` }]);
  return n;
}

const encodeCursor = (r: AgentRow) => Buffer.from(`${r.created_at}|${r.id}`).toString("base64url");
function decodeCursor(c: string): [string, string] {
  const s = Buffer.from(c, "base64url").toString();
  const i = s.indexOf("|");
  if (i < 1) throw new ApiError(422, "validation_failed", "cursor is invalid", [{ field: "cursor", message: "invalid" }]);
  return [s.slice(0, i), s.slice(i + 1)];
}

// ---------------------------------------------------------------- auth
// What devplane does for every agent route and /ws, the way an Elysia app commonly does it:
// an HS256 access token (15 minutes) from POST /api/v1/auth/login, verified on each request,
// then the user's row read to check the account is still active.

const JWT_SECRET = randomBytes(32);
const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");
const JWT_HEADER = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
const sign = (data: string) => createHmac("sha256", JWT_SECRET).update(data).digest();

function issueToken(u: UserRow): string {
  const now = Math.floor(Date.now() / 1000);
  const body = b64url(JSON.stringify({ sub: u.id, name: u.username, role: u.role, iat: now, exp: now + 900 }));
  return `${JWT_HEADER}.${body}.${b64url(sign(`${JWT_HEADER}.${body}`))}`;
}

function authenticate(request: Request): UserRow {
  const h = request.headers.get("authorization") ?? "";
  if (!h.toLowerCase().startsWith("bearer ")) throw new ApiError(401, "unauthenticated", "this route needs a bearer token");
  const parts = h.slice(7).trim().split(".");
  if (parts.length !== 3 || parts[0] !== JWT_HEADER) throw new ApiError(401, "unauthenticated", "malformed token");
  const given = Buffer.from(parts[2], "base64url");
  const want = sign(`${parts[0]}.${parts[1]}`);
  if (given.length !== want.length || !timingSafeEqual(given, want))
    throw new ApiError(401, "unauthenticated", "bad signature");
  let claims: { sub?: unknown; exp?: unknown };
  try {
    claims = JSON.parse(Buffer.from(parts[1], "base64url").toString());
  } catch {
    throw new ApiError(401, "unauthenticated", "malformed token");
  }
  if (typeof claims.exp !== "number" || claims.exp <= Date.now() / 1000)
    throw new ApiError(401, "unauthenticated", "token expired");
  const user = typeof claims.sub === "string" ? userById.get(claims.sub) : null;
  if (!user || user.status !== "active") throw new ApiError(401, "unauthenticated", "account unknown or disabled");
  return user;
}

// ---------------------------------------------------------------- websocket

// All events go to one Bun pub/sub topic; a client is in it while it has a subscription whose
// patterns match agent.status.update (the only event the peer produces).
const EVENTS = "agent.status.update";
const TOPIC_PATTERN = /^[a-z0-9._-]{1,127}\*?$|^\*$/;
const topicMatches = (p: string) =>
  p === "*" || p === EVENTS || (p.endsWith(".*") && EVENTS.startsWith(p.slice(0, -1)));
type WsState = { subs: number };
const wsState = new WeakMap<object, WsState>();

function wsReply(ws: { send(data: string): unknown }, frame: Record<string, unknown>) {
  ws.send(JSON.stringify(frame));
}

function wsHandle(ws: any, message: unknown) {
  let msg = message;
  if (typeof msg === "string") {
    try {
      msg = JSON.parse(msg);
    } catch {
      return wsReply(ws, { type: "error", id: null, code: "invalid_json", message: "message is not JSON" });
    }
  }
  if (!isPlainObject(msg)) {
    return wsReply(ws, { type: "error", id: null, code: "invalid_request", message: "message must be a JSON object" });
  }
  const id = typeof msg.id === "string" || typeof msg.id === "number" ? msg.id : null;
  const state = wsState.get(ws.raw) ?? { subs: 0 };
  wsState.set(ws.raw, state);
  switch (msg.op) {
    case "ping":
      return wsReply(ws, { type: "pong", id });
    case "subscribe": {
      const topics = msg.topics;
      if (!Array.isArray(topics) || topics.length === 0 || topics.length > 64 ||
          !topics.every((t) => typeof t === "string" && TOPIC_PATTERN.test(t))) {
        return wsReply(ws, { type: "error", id, code: "invalid_request",
          message: "topics must be a non-empty array of topic patterns" });
      }
      state.subs += 1;
      if (topics.some(topicMatches)) ws.subscribe(EVENTS);
      return wsReply(ws, { type: "ack", id, op: "subscribe", subscription: `s${state.subs}` });
    }
    case "unsubscribe":
      ws.unsubscribe(EVENTS);
      return wsReply(ws, { type: "ack", id, op: "unsubscribe" });
    default:
      return wsReply(ws, { type: "error", id, code: "unknown_op", message: "op must be subscribe, unsubscribe or ping" });
  }
}

// ---------------------------------------------------------------- app

const app = new Elysia()
  .onRequest(({ request, set }) => {
    const given = request.headers.get("x-request-id");
    set.headers["x-request-id"] = given !== null && REQUEST_ID.test(given) ? given : crypto.randomUUID();
  })
  .onError(({ code, error, set }) => {
    set.headers["content-type"] = "application/json";
    if (error instanceof ApiError) {
      set.status = error.status;
      const e: Record<string, unknown> = { code: error.code, message: error.message };
      if (error.details !== undefined) e.details = error.details;
      return { error: e };
    }
    if (code === "NOT_FOUND") {
      set.status = 404;
      return { error: { code: "not_found", message: "no such route" } };
    }
    if (code === "PARSE") {
      set.status = 400;
      return { error: { code: "invalid_json", message: "request body is not valid JSON" } };
    }
    set.status = 500;
    console.error(error);
    return { error: { code: "internal", message: "internal error" } };
  })
  .get("/api/v1/system/health", ({ set }) => ({
    data: { status: "ok" }, meta: { requestId: set.headers["x-request-id"] },
  }))
  .post("/api/v1/auth/login", async ({ body }) => {
    const b = body as { username?: unknown; password?: unknown } | null;
    if (!isPlainObject(b) || typeof b.username !== "string" || typeof b.password !== "string")
      throw new ApiError(422, "validation_failed", "username and password are required");
    const u = userByName.get(b.username);
    if (!u || u.status !== "active" || !(await Bun.password.verify(b.password, u.password_hash)))
      throw new ApiError(401, "unauthenticated", "wrong username or password");
    return { data: { accessToken: issueToken(u), tokenType: "Bearer", expiresIn: 900 } };
  })
  .onBeforeHandle(({ request, path }) => {
    if (path.startsWith("/api/v1/agents") || path === "/ws") authenticate(request);
  })
  .get("/api/v1/agents/:id", ({ params, set }) => {
    const row = getById.get(params.id);
    if (!row) throw new ApiError(404, "not_found", "agent not found");
    return { data: toAgent(row), meta: { requestId: set.headers["x-request-id"] } };
  })
  .get("/api/v1/agents", ({ query, set }) => {
    const q = query as Record<string, string | undefined>;
    const limit = intParam(q.limit, "limit", 50, 1, 200);
    const offset = intParam(q.offset, "offset", 0, 0, 1_000_000_000);
    const f: ListFilter = {};
    if (q.status !== undefined) {
      if (!AGENT_STATUSES.has(q.status)) throw new ApiError(422, "validation_failed", "status is invalid",
        [{ field: "status", message: "must be an agent status" }]);
      f.status = q.status;
    }
    if (q.type !== undefined) {
      if (!AGENT_TYPES.has(q.type)) throw new ApiError(422, "validation_failed", "type is invalid",
        [{ field: "type", message: "must be one of command, llm, remote" }]);
      f.type = q.type;
    }
    if (q.q !== undefined && q.q !== "") f.q = q.q.toLowerCase();
    if (q.cursor !== undefined && q.cursor !== "") f.after = decodeCursor(q.cursor);
    const st = listStatements(f);
    const args: Record<string, string | number> = { limit: limit + 1, offset };
    if (f.status !== undefined) args.status = f.status;
    if (f.type !== undefined) args.type = f.type;
    if (f.q !== undefined) args.q = f.q;
    if (f.after !== undefined) { args.afterAt = f.after[0]; args.afterId = f.after[1]; }
    const rows = st.rows.all(args);
    const more = rows.length > limit;
    if (more) rows.pop();
    const { limit: _l, offset: _o, afterAt: _a, afterId: _b, ...countArgs } = args;
    const total = st.count.get(countArgs)!.n;
    return {
      data: rows.map(toAgent),
      meta: {
        total, limit, offset,
        next: more ? encodeCursor(rows[rows.length - 1]) : null,
        requestId: set.headers["x-request-id"],
      },
    };
  })
  .post("/api/v1/agents", ({ body, set }) => {
    const text = body as string;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ApiError(400, "invalid_json", "request body is not valid JSON");
    }
    const input = validateCreate(parsed);
    const id = Bun.randomUUIDv7();
    const now = new Date().toISOString();
    const rid = set.headers["x-request-id"] as string;
    const agent = {
      id, name: input.name, type: input.type, status: "created", description: input.description,
      labels: input.labels, config: input.config, version: 1, createdAt: now, updatedAt: now,
    };
    const event = {
      agentId: id, name: input.name, from: null, status: "created", reason: "created", version: 1, timestamp: now,
    };
    const payload = JSON.stringify(event);
    let seq: number;
    try {
      seq = createTx({
        id, name: input.name, type: input.type, status: "created", description: input.description,
        labels: JSON.stringify(input.labels), config: JSON.stringify(input.config), now, payload, rid,
      });
    } catch (e) {
      if ((e as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE")
        throw new ApiError(409, "conflict", `an agent named '${input.name}' already exists`);
      throw e;
    }
    // Committed: announce it to every subscribed WebSocket client.
    app.server?.publish(EVENTS, JSON.stringify({
      type: "event", id: seq, topic: EVENTS, timestamp: now, correlationId: rid, data: event,
    }));
    set.status = 201;
    set.headers["location"] = `/api/v1/agents/${id}`;
    return { data: agent, meta: { requestId: rid } };
  }, { parse: "text" })
  .ws("/ws", {
    // Bun's defaults otherwise: pings every idleTimeout, 16 MiB backpressure limit per client.
    idleTimeout: 30,
    maxPayloadLength: 64 * 1024,
    message: wsHandle,
  })
  .listen({ hostname: "127.0.0.1", port: PORT, maxRequestBodySize: MAX_BODY });

console.log(`peer listening on http://127.0.0.1:${app.server?.port} data=${DATA_DIR}`);
for (const sig of ["SIGINT", "SIGTERM"] as const)
  process.on(sig, () => { app.stop(); db.close(); process.exit(0); });
