// The API client against a small real HTTP server on 127.0.0.1 that answers like devplane:
// the envelope, error codes, bearer tokens that expire, refresh tokens that rotate.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiError, MemoryStorage, can } from './api';

interface Seen {
  method: string;
  url: string;
  auth: string | undefined;
  body: unknown;
}

type Route = (req: IncomingMessage, body: unknown, res: ServerResponse) => void;

let server: Server;
let base: string;
let seen: Seen[];
let routes: Map<string, Route>;

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'Content-Type': 'application/json', 'X-Request-Id': 'rid-1' });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

function err(res: ServerResponse, status: number, code: string, message: string, details?: unknown) {
  json(res, status, { error: { code, message, details, requestId: 'rid-1' } });
}

const user = { id: 'u1', username: 'ada', displayName: 'Ada', role: 'operator' as const };

// A tiny identity service: "good-N" access tokens, "refresh-N" refresh tokens that rotate.
let validAccess: Set<string>;
let validRefresh: Set<string>;
let issued: number;
let refreshCalls: number;

function issue() {
  issued++;
  const a = `good-${issued}`;
  const r = `refresh-${issued}`;
  validAccess.add(a);
  validRefresh.add(r);
  return { accessToken: a, tokenType: 'Bearer', expiresIn: 900, refreshToken: r, user };
}

function authed(req: IncomingMessage) {
  const h = req.headers.authorization ?? '';
  return h.startsWith('Bearer ') && validAccess.has(h.slice(7));
}

beforeEach(async () => {
  seen = [];
  validAccess = new Set();
  validRefresh = new Set();
  issued = 0;
  refreshCalls = 0;
  routes = new Map<string, Route>([
    [
      'POST /api/v1/auth/login',
      (_req, body, res) => {
        const b = body as { username?: string; password?: string };
        if (b.username === 'ada' && b.password === 'pw') json(res, 200, { data: issue(), meta: { requestId: 'rid-1' } });
        else err(res, 401, 'invalid_credentials', 'wrong username or password');
      },
    ],
    [
      'POST /api/v1/auth/refresh',
      (_req, body, res) => {
        refreshCalls++;
        const t = (body as { refreshToken?: string }).refreshToken ?? '';
        if (!validRefresh.has(t)) return err(res, 401, 'invalid_token', 'refresh token is not valid');
        validRefresh.delete(t);
        json(res, 200, { data: issue(), meta: {} });
      },
    ],
    [
      'POST /api/v1/auth/logout',
      (req, body, res) => {
        if (!authed(req)) return err(res, 401, 'unauthenticated', 'sign in');
        validRefresh.delete((body as { refreshToken?: string }).refreshToken ?? '');
        res.writeHead(204).end();
      },
    ],
    [
      'GET /api/v1/auth/me',
      (req, _b, res) => (authed(req) ? json(res, 200, { data: user, meta: {} }) : err(res, 401, 'unauthenticated', 'sign in')),
    ],
    [
      'GET /api/v1/agents',
      (req, _b, res) => {
        if (!authed(req)) return err(res, 401, 'unauthenticated', 'sign in');
        const q = new URL(req.url!, 'http://x').searchParams;
        const cursor = q.get('cursor');
        // Two pages, to check listAll follows meta.next.
        if (!cursor) json(res, 200, { data: [{ id: 'a1' }], meta: { total: 2, limit: 1, offset: 0, next: 'c2', requestId: 'r' } });
        else json(res, 200, { data: [{ id: 'a2' }], meta: { total: 2, limit: 1, offset: 0, next: null, requestId: 'r' } });
      },
    ],
    [
      'POST /api/v1/agents',
      (req, body, res) => {
        if (!authed(req)) return err(res, 401, 'unauthenticated', 'sign in');
        const b = body as { name?: string };
        if (!b.name)
          return err(res, 422, 'validation_failed', 'invalid agent: 2 problems', [
            { field: 'name', code: 'too_short', message: 'name must be 1..128 characters, got 0' },
            { field: 'config.command', code: 'required', message: 'config.command is required' },
          ]);
        json(res, 201, { data: { id: 'a9', ...b }, meta: { requestId: 'r' } });
      },
    ],
    [
      'DELETE /api/v1/agents/a9',
      (req, _b, res) => (authed(req) ? res.writeHead(204).end() : err(res, 401, 'unauthenticated', 'sign in')),
    ],
    ['GET /api/v1/system/health', (_r, _b, res) => json(res, 200, { data: { status: 'ok' }, meta: {} })],
    ['GET /api/v1/broken', (_r, _b, res) => res.writeHead(502, 'Bad Gateway').end('<html>upstream</html>')],
  ]);
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = raw ? JSON.parse(raw) : undefined;
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const path = new URL(req.url!, 'http://x').pathname;
      const r = routes.get(`${req.method} ${path}`);
      if (r) r(req, body, res);
      else err(res, 404, 'not_found', `no route for ${req.method} ${path}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

function client(extra: ConstructorParameters<typeof ApiClient>[0] = {}) {
  return new ApiClient({ baseUrl: base, storage: new MemoryStorage(), ...extra });
}

describe('ApiClient', () => {
  it('logs in, keeps the session and sends the bearer token', async () => {
    const api = client();
    const s = await api.login('ada', 'pw');
    expect(s.user.username).toBe('ada');
    expect(api.session?.accessToken).toBe('good-1');
    const { data, meta } = await api.agents.list({ status: 'running', limit: 1 });
    expect(data).toEqual([{ id: 'a1' }]);
    expect(meta.total).toBe(2);
    const last = seen[seen.length - 1];
    expect(last.auth).toBe('Bearer good-1');
    expect(last.url).toBe('/api/v1/agents?status=running&limit=1');
  });

  it('turns an error envelope into an ApiError with its code and the field problems', async () => {
    const api = client();
    await api.login('ada', 'pw');
    const e = await api.agents.create({ name: '', type: 'command' }).catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(422);
    expect(e.code).toBe('validation_failed');
    expect(e.requestId).toBe('rid-1');
    expect(e.fieldErrors()).toEqual({
      name: 'name must be 1..128 characters, got 0',
      'config.command': 'config.command is required',
    });
  });

  it('refuses a wrong password with the server code and keeps no session', async () => {
    const api = client();
    const e = await api.login('ada', 'nope').catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.code).toBe('invalid_credentials');
    expect(api.session).toBeNull();
  });

  it('refreshes once on 401 and retries; concurrent requests share the refresh', async () => {
    const api = client();
    await api.login('ada', 'pw');
    validAccess.clear(); // the access token expired on the server
    const [a, b, c] = await Promise.all([api.agents.list(), api.get('/api/v1/auth/me'), api.agents.list()]);
    expect(a.data).toEqual([{ id: 'a1' }]);
    expect(b.data).toEqual(user);
    expect(c.data).toEqual([{ id: 'a1' }]);
    expect(refreshCalls).toBe(1);
    expect(api.session?.accessToken).toBe('good-2');
    expect(api.session?.refreshToken).toBe('refresh-2');
    const retried = seen.filter((s) => s.url.startsWith('/api/v1/agents'));
    expect(retried.map((s) => s.auth)).toEqual(['Bearer good-1', 'Bearer good-1', 'Bearer good-2', 'Bearer good-2']);
  });

  it('clears the session and reports expiry when the refresh is refused, without looping', async () => {
    let expired = 0;
    const api = client({ onSessionExpired: () => expired++ });
    await api.login('ada', 'pw');
    validAccess.clear();
    validRefresh.clear();
    const e = await api.agents.list().catch((x) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(401);
    expect(refreshCalls).toBe(1);
    expect(expired).toBe(1);
    expect(api.session).toBeNull();
  });

  it('logs out on the server and forgets the session', async () => {
    const api = client();
    const changes: (string | null)[] = [];
    api.onSessionChange((s) => changes.push(s ? s.user.username : null));
    await api.login('ada', 'pw');
    await api.logout();
    expect(api.session).toBeNull();
    expect(validRefresh.has('refresh-1')).toBe(false);
    const out = seen.find((s) => s.url === '/api/v1/auth/logout')!;
    expect(out.auth).toBe('Bearer good-1');
    expect(out.body).toEqual({ refreshToken: 'refresh-1' });
    expect(changes).toEqual(['ada', null]);
  });

  it('reports an open server (no identity routes) as mode open', async () => {
    routes.delete('GET /api/v1/auth/me');
    const api = client();
    expect(await api.me()).toEqual({ mode: 'open', user: null });
  });

  it('reports required when the server wants a login', async () => {
    const api = client();
    const e = await api.me().catch((x) => x);
    expect(e.status).toBe(401);
    await api.login('ada', 'pw');
    expect(await api.me()).toEqual({ mode: 'required', user });
  });

  it('follows meta.next through every page', async () => {
    const api = client();
    await api.login('ada', 'pw');
    const all = await api.agents.listAll();
    expect(all.map((a) => a.id)).toEqual(['a1', 'a2']);
    expect(seen.filter((s) => s.url.startsWith('/api/v1/agents')).map((s) => s.url)).toEqual([
      '/api/v1/agents?limit=500',
      '/api/v1/agents?limit=500&cursor=c2',
    ]);
  });

  it('handles 204, non-JSON errors and an unreachable server', async () => {
    const api = client();
    await api.login('ada', 'pw');
    const del = await api.agents.decommission('a9');
    expect(del.data).toBeUndefined();
    const bad = await api.get('/api/v1/broken').catch((x) => x);
    expect(bad).toBeInstanceOf(ApiError);
    expect(bad.status).toBe(502);
    expect(bad.code).toBe('http_502');
    const dead = new ApiClient({ baseUrl: 'http://127.0.0.1:1', storage: new MemoryStorage() });
    const net = await dead.system.health().catch((x) => x);
    expect(net).toBeInstanceOf(ApiError);
    expect(net.code).toBe('network_error');
  });

  it('does not send a token on public calls', async () => {
    const api = client();
    await api.login('ada', 'pw');
    await api.system.health();
    expect(seen[seen.length - 1].auth).toBeUndefined();
  });
});

describe('can', () => {
  it('gives each role what it may do', () => {
    expect(can('admin', 'admin')).toBe(true);
    expect(can('operator', 'admin')).toBe(false);
    expect(can('operator', 'agents.write')).toBe(true);
    expect(can('viewer', 'agents.write')).toBe(false);
    expect(can('viewer', 'agents.operate')).toBe(false);
    expect(can(null, 'agents.write')).toBe(false);
  });
});

describe('single sign-on hand-over', () => {
  it('adopts the tokens from the /#oidc= fragment and refuses anything else', () => {
    const api = new ApiClient({ storage: new MemoryStorage() });
    const answer = { accessToken: 'a1', refreshToken: 'r1', expiresIn: 900, tokenType: 'Bearer', user };
    const b64url = Buffer.from(JSON.stringify(answer)).toString('base64url');
    const s = api.adoptSsoFragment(`#oidc=${b64url}`);
    expect(s?.accessToken).toBe('a1');
    expect(api.session?.user.username).toBe('ada');
    const other = new ApiClient({ storage: new MemoryStorage() });
    expect(other.adoptSsoFragment('#oidc=not-json')).toBeNull();
    expect(other.adoptSsoFragment('#something=else')).toBeNull();
    expect(other.adoptSsoFragment(`#oidc=${Buffer.from('{"accessToken":"x"}').toString('base64url')}`)).toBeNull();
    expect(other.session).toBeNull();
  });
});
