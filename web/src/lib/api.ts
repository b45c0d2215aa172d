// The one typed client for devplane's REST API. Pages and components call this, never fetch.
//
// - Every answer is the envelope: `{data, meta}` on success, `{error: {code, message, details?,
//   requestId}}` on failure, which becomes an ApiError (status, code, details, field errors).
// - A signed-in session (access + refresh token, user) is kept in storage; requests carry
//   `Authorization: Bearer <access token>`.
// - A 401 on an authenticated request triggers one refresh (shared by concurrent requests)
//   and one retry; if the refresh fails the session is cleared and `onSessionExpired` runs.
// - A server without the identity routes (404 on /auth/me) is "open": no login is needed.

export type Role = 'admin' | 'operator' | 'viewer' | 'agent';

export interface User {
  id: string;
  username: string;
  displayName: string;
  role: Role;
  status?: 'active' | 'disabled';
  createdAt?: string;
  updatedAt?: string;
  lastLoginAt?: string | null;
}

export interface Session {
  accessToken: string;
  refreshToken: string;
  /** epoch ms when the access token expires */
  expiresAt: number;
  user: User;
}

export interface Meta {
  requestId?: string;
  total?: number;
  limit?: number;
  offset?: number;
  next?: string | null;
  [key: string]: unknown;
}

export interface Envelope<T> {
  data: T;
  meta: Meta;
}

export interface FieldProblem {
  field: string;
  code: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  readonly requestId?: string;

  constructor(status: number, code: string, message: string, details?: unknown, requestId?: string) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }

  /** The `details` of a 422 validation_failed, one entry per problem; [] otherwise. */
  get problems(): FieldProblem[] {
    if (!Array.isArray(this.details)) return [];
    return this.details.filter(
      (d): d is FieldProblem => typeof d === 'object' && d !== null && typeof (d as FieldProblem).field === 'string',
    );
  }

  /** field -> first message, for showing each problem next to its input. */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const p of this.problems) if (!(p.field in out)) out[p.field] = p.message;
    return out;
  }
}

export type AgentType = 'command' | 'llm' | 'remote';
export type AgentStatus =
  | 'created'
  | 'starting'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'error'
  | 'decommissioned';

export const AGENT_STATUSES: AgentStatus[] = [
  'created',
  'starting',
  'running',
  'stopping',
  'stopped',
  'error',
  'decommissioned',
];

export interface Agent {
  id: string;
  name: string;
  type: AgentType;
  status: AgentStatus;
  statusReason: string | null;
  description: string;
  labels: Record<string, string>;
  config: Record<string, unknown>;
  version: number;
  createdAt: string;
  updatedAt: string;
}

/** `GET /api/v1/agents/counts`: agents per status; `total` leaves out the decommissioned. */
export interface AgentCounts {
  total: number;
  byStatus: Record<AgentStatus, number>;
}

/** The task an agent card shows as current: the oldest of the agent's running tasks. */
export interface AgentCurrentTask {
  id: string;
  summary: string;
  startedAt: string | null;
  attempts: number;
}

/**
 * An agent's latest resource sample (from its tasks' cgroups), or why devplane cannot know it
 * (remote and llm agents, Docker containers, hosts without cgroups).
 */
export type AgentResources =
  | { available: false; reason: string }
  | {
      available: true;
      cpuPercent: number | null;
      memoryBytes: number | null;
      memoryLimitBytes: number | null;
      tasks: number | null;
      sampledAt: string | null;
    };

/** `GET /api/v1/agents/activity`: what a card shows besides the agent itself. */
export interface AgentActivity {
  agentId: string;
  currentTask: AgentCurrentTask | null;
  runningTasks: number;
  resources: AgentResources;
}

export interface AgentInput {
  name?: string;
  type?: AgentType;
  description?: string;
  labels?: Record<string, string>;
  config?: Record<string, unknown>;
}

export interface AgentState {
  id: number;
  agentId: string;
  from: AgentStatus | null;
  status: AgentStatus;
  reason: string;
  version: number;
  timestamp: string;
}

export interface AgentMessage {
  id: string;
  fromAgentId: string | null;
  toAgentId: string;
  type: string;
  payload: Record<string, unknown>;
  createdAt: string;
  deliveredAt: string | null;
}

export interface HealthCheck {
  status: 'up' | 'down';
  latencyMs: number;
  backend: string;
  error?: string;
}

export interface SystemHealth {
  status: 'ok' | 'degraded' | 'down';
  version: string;
  uptimeSeconds: number;
  checks: { store: HealthCheck; bus: HealthCheck };
}

export interface SystemInfo {
  name: string;
  version: string;
  mode: string;
  store: { backend: string; location: string; schemaVersion: number; serverVersion: string };
  bus: { backend: string };
  build: Record<string, string>;
  connections: number;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix?: string;
  role?: Role;
  createdAt?: string;
  expiresAt?: string | null;
  lastUsedAt?: string | null;
  revokedAt?: string | null;
  [key: string]: unknown;
}

export interface AuditEntry {
  seq: number;
  id: string;
  at: string;
  actor: { id: string | null; name: string; kind: string };
  action: string;
  target: string;
  outcome: 'success' | 'failure' | 'denied' | string;
  status: number;
  correlationId: string;
  sourceAddress: string;
  details: unknown;
  prevHash: string;
  hash: string;
}

export interface AuditChain {
  verified: boolean;
  checked: number;
  firstSeq: number;
  lastSeq: number;
  headHash: string;
  brokenAt?: number;
  reason?: string;
}

export interface Task {
  id: string;
  agentId: string;
  idempotencyKey: string;
  input: unknown;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  result: {
    outcome?: string;
    exitCode?: number | null;
    stdout?: string;
    stderr?: string;
    wallMs?: number;
    [key: string]: unknown;
  } | null;
  error: string | null;
  attempts: number;
  cancelRequested?: boolean;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface AgentMetric {
  id: number;
  agentId: string;
  taskId: string | null;
  metricType: string;
  value: number;
  labels: Record<string, unknown>;
  timestamp: string;
}

export interface Workflow {
  id: string;
  name: string;
  description: string;
  /** the text as submitted (single reads only) */
  definition?: string;
  status: 'active' | 'archived';
  version: number;
  createdAt: string;
  updatedAt: string;
}

export type ExecutionStatus = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type StepStatus =
  | 'pending'
  | 'dispatched'
  | 'running'
  | 'retrying'
  | 'waiting'
  | 'waiting_approval'
  | 'succeeded'
  | 'failed'
  | 'skipped'
  | 'cancelled';

export interface StepAttempt {
  attempt: number;
  status: string;
  error?: string | null;
  kind?: string | null;
  startedAt?: string | null;
  finishedAt?: string | null;
  taskId?: string | null;
}

export interface ExecutionStep {
  stepId: string;
  status: StepStatus;
  attempt: number;
  inputs?: unknown;
  outputs?: Record<string, unknown> | null;
  error?: string | null;
  history?: StepAttempt[];
  taskId?: string | null;
  wakeAt?: string | null;
  startedAt?: string | null;
  completedAt?: string | null;
  parentStep?: string | null;
  item?: unknown;
}

export interface Execution {
  id: string;
  workflowId: string;
  workflowVersion: number;
  status: ExecutionStatus;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown> | null;
  error: string | null;
  cause: string;
  createdBy?: string;
  cancelRequested?: boolean;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  steps?: ExecutionStep[];
}

/** One problem of a 422 on a workflow definition. */
export interface DefinitionProblem {
  path: string;
  field?: string;
  code: string;
  message?: string;
  line?: number;
  column?: number;
}

export interface ToolAdapterConfig {
  transport: 'stdio' | 'http';
  command?: string;
  args?: string[];
  env?: Record<string, string>;
  sandbox?: boolean;
  network?: boolean;
  readOnlyPaths?: string[];
  cwd?: string;
  url?: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
  maxConcurrent?: number;
}

export interface ToolAdapter {
  id: string;
  name: string;
  config: ToolAdapterConfig;
  status: 'unknown' | 'healthy' | 'unhealthy';
  statusReason: string;
  latencyMs: number | null;
  lastHealthCheck: string | null;
  pinnedTools: number;
  heldTools: string[];
  approvedAt?: string | null;
  approvedBy?: string | null;
  version: number;
  createdAt?: string;
  updatedAt?: string;
}

export interface ToolHealth {
  adapterId: string;
  status: ToolAdapter['status'];
  reason: string;
  latencyMs: number | null;
  lastHealthCheck: string;
}

export interface McpTool {
  name: string;
  title?: string;
  description?: string;
  inputSchema?: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
  pinHash: string;
  pinnedHash: string | null;
  held: boolean;
}

export interface ToolCall {
  id: string;
  adapterId: string | null;
  tool: string;
  arguments: Record<string, unknown>;
  status: 'succeeded' | 'tool_error' | 'failed' | 'refused' | string;
  result: { content?: Array<{ type: string; text?: string; [k: string]: unknown }>; structuredContent?: unknown; isError?: boolean } | null;
  error: string | null;
  durationMs?: number;
  caller?: string;
  correlationId?: string;
  executedAt?: string;
}

export interface OidcConfig {
  enabled: boolean;
  /** where the browser goes to start single sign-on */
  loginUrl?: string;
  displayName?: string;
}

/** What the auth routes say about this server: `open` means it has no identity routes. */
export type AuthMode = 'required' | 'open';

export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class MemoryStorage implements KeyValueStorage {
  private readonly map = new Map<string, string>();
  getItem(key: string) {
    return this.map.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.map.set(key, value);
  }
  removeItem(key: string) {
    this.map.delete(key);
  }
}

export interface ApiClientOptions {
  /** '' (same origin, the default in the browser) or an absolute origin such as http://127.0.0.1:8080 */
  baseUrl?: string;
  storage?: KeyValueStorage;
  fetch?: typeof fetch;
  /** runs when the session is gone for good (refresh failed): the app sends the user to /login */
  onSessionExpired?: () => void;
  /** per-request deadline, ms (default 15000) */
  timeoutMs?: number;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined | null>;
  headers?: Record<string, string>;
  /** send the bearer token and refresh on 401 (default true) */
  auth?: boolean;
  signal?: AbortSignal;
}

const SESSION_KEY = 'devplane.session';

export class ApiClient {
  private readonly baseUrl: string;
  private readonly storage: KeyValueStorage;
  private readonly fetchImpl: typeof fetch;
  private readonly timeoutMs: number;
  onSessionExpired?: () => void;
  private refreshing: Promise<boolean> | null = null;
  private listeners = new Set<(s: Session | null) => void>();

  constructor(options: ApiClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? '').replace(/\/$/, '');
    this.storage = options.storage ?? new MemoryStorage();
    this.fetchImpl = options.fetch ?? ((...args: Parameters<typeof fetch>) => globalThis.fetch(...args));
    this.onSessionExpired = options.onSessionExpired;
    this.timeoutMs = options.timeoutMs ?? 15000;
  }

  // ---- session ----

  get session(): Session | null {
    const raw = this.storage.getItem(SESSION_KEY);
    if (!raw) return null;
    try {
      const s = JSON.parse(raw) as Session;
      return s && typeof s.accessToken === 'string' ? s : null;
    } catch {
      return null;
    }
  }

  private setSession(s: Session | null) {
    if (s) this.storage.setItem(SESSION_KEY, JSON.stringify(s));
    else this.storage.removeItem(SESSION_KEY);
    for (const l of this.listeners) l(s);
  }

  onSessionChange(listener: (s: Session | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get accessToken(): string | null {
    return this.session?.accessToken ?? null;
  }

  // ---- transport ----

  url(path: string, query?: RequestOptions['query']): string {
    let u = this.baseUrl + path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
      }
      const s = q.toString();
      if (s) u += (u.includes('?') ? '&' : '?') + s;
    }
    return u;
  }

  private async send(method: string, path: string, opts: RequestOptions, token: string | null): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.body);
    }
    if (token) headers.Authorization = `Bearer ${token}`;
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.timeoutMs);
    const onAbort = () => ctrl.abort();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      return await this.fetchImpl(this.url(path, opts.query), { method, headers, body, signal: ctrl.signal });
    } catch (e) {
      if (opts.signal?.aborted) throw new ApiError(0, 'aborted', 'request aborted');
      if (ctrl.signal.aborted) throw new ApiError(0, 'timeout', `no answer from the server within ${this.timeoutMs} ms`);
      throw new ApiError(0, 'network_error', `cannot reach the server: ${(e as Error).message ?? e}`);
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  private static async decode<T>(res: Response): Promise<Envelope<T>> {
    const text = await res.text();
    let json: unknown = undefined;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (res.ok) {
      if (res.status === 204 || json === undefined) return { data: undefined as T, meta: {} };
      const env = json as Partial<Envelope<T>>;
      return { data: env.data as T, meta: env.meta ?? {} };
    }
    const err = (json as { error?: { code?: string; message?: string; details?: unknown; requestId?: string } })?.error;
    throw new ApiError(
      res.status,
      err?.code ?? `http_${res.status}`,
      err?.message ?? (res.statusText || `HTTP ${res.status}`),
      err?.details,
      err?.requestId ?? res.headers.get('X-Request-Id') ?? undefined,
    );
  }

  /** Sends one request; on 401 refreshes the session once and retries once. */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<Envelope<T>> {
    const auth = opts.auth ?? true;
    const token = auth ? this.accessToken : null;
    let res = await this.send(method, path, opts, token);
    if (res.status === 401 && auth && this.session?.refreshToken) {
      // If another request refreshed the session meanwhile, its new token is enough.
      const current = this.accessToken;
      const refreshed = current !== token && current !== null ? true : await this.refresh();
      if (refreshed) res = await this.send(method, path, opts, this.accessToken);
    }
    if (res.status === 401 && auth && token) {
      // The session is no longer accepted: forget it so the user signs in again.
      this.expire();
    }
    return ApiClient.decode<T>(res);
  }

  private expire() {
    if (this.session) this.setSession(null);
    this.onSessionExpired?.();
  }

  get<T>(path: string, opts?: RequestOptions) {
    return this.request<T>('GET', path, opts);
  }
  post<T>(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request<T>('POST', path, { ...opts, body });
  }
  put<T>(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request<T>('PUT', path, { ...opts, body });
  }
  patch<T>(path: string, body?: unknown, opts?: RequestOptions) {
    return this.request<T>('PATCH', path, { ...opts, body });
  }
  del<T>(path: string, opts?: RequestOptions) {
    return this.request<T>('DELETE', path, opts);
  }

  // ---- identity ----

  private static toSession(d: {
    accessToken: string;
    refreshToken: string;
    expiresIn?: number;
    user: User;
  }): Session {
    return {
      accessToken: d.accessToken,
      refreshToken: d.refreshToken,
      expiresAt: Date.now() + (d.expiresIn ?? 900) * 1000,
      user: d.user,
    };
  }

  async login(username: string, password: string): Promise<Session> {
    const { data } = await this.request<{ accessToken: string; refreshToken: string; expiresIn: number; user: User }>(
      'POST',
      '/api/v1/auth/login',
      { body: { username, password }, auth: false },
    );
    const s = ApiClient.toSession(data);
    this.setSession(s);
    return s;
  }

  /**
   * Adopts tokens handed over by single sign-on: the OIDC callback sends the browser to
   * `/#oidc=<base64url of the login answer>`. Returns the session, or null when `fragment`
   * holds none.
   */
  adoptSsoFragment(fragment: string): Session | null {
    const m = /^#?oidc=([A-Za-z0-9_-]+)$/.exec(fragment);
    if (!m) return null;
    try {
      const b64 = m[1].replace(/-/g, '+').replace(/_/g, '/');
      const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
      const json = new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
      const d = JSON.parse(json);
      if (typeof d?.accessToken !== 'string' || typeof d?.refreshToken !== 'string' || !d.user) return null;
      const s = ApiClient.toSession(d);
      this.setSession(s);
      return s;
    } catch {
      return null;
    }
  }

  /**
   * Exchanges the refresh token for a new session. Concurrent callers share one request.
   * Resolves false (and clears the session) when the server refuses the refresh token.
   */
  refresh(): Promise<boolean> {
    if (this.refreshing) return this.refreshing;
    const current = this.session;
    if (!current?.refreshToken) return Promise.resolve(false);
    this.refreshing = (async () => {
      try {
        const res = await this.send('POST', '/api/v1/auth/refresh', { body: { refreshToken: current.refreshToken } }, null);
        if (!res.ok) {
          if (res.status === 400 || res.status === 401 || res.status === 403 || res.status === 422) this.setSession(null);
          return false;
        }
        const { data } = await ApiClient.decode<{
          accessToken: string;
          refreshToken?: string;
          expiresIn: number;
          user?: User;
        }>(res);
        this.setSession(
          ApiClient.toSession({
            accessToken: data.accessToken,
            refreshToken: data.refreshToken ?? current.refreshToken,
            expiresIn: data.expiresIn,
            user: data.user ?? current.user,
          }),
        );
        return true;
      } catch {
        return false;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /** Refreshes ahead of time when the access token expires within `marginMs`. */
  async ensureFreshToken(marginMs = 30000): Promise<string | null> {
    const s = this.session;
    if (!s) return null;
    if (s.expiresAt - Date.now() < marginMs) await this.refresh();
    return this.accessToken;
  }

  /** Revokes the refresh token on the server (best effort) and forgets the session. */
  async logout(): Promise<void> {
    const s = this.session;
    if (s) {
      try {
        await this.request('POST', '/api/v1/auth/logout', { body: { refreshToken: s.refreshToken } });
      } catch {
        // The session is dropped locally whatever the server says.
      }
    }
    this.setSession(null);
  }

  /**
   * Who is signed in. `{mode:'open'}` when the server has no identity routes (404), so the
   * dashboard works without a login; an ApiError 401 when a login is needed.
   */
  async me(): Promise<{ mode: AuthMode; user: User | null }> {
    try {
      const { data } = await this.get<User>('/api/v1/auth/me');
      const s = this.session;
      if (s && data) this.setSession({ ...s, user: { ...s.user, ...data } });
      return { mode: 'required', user: data };
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && e.code === 'not_found') return { mode: 'open', user: null };
      throw e;
    }
  }

  async oidcConfig(): Promise<OidcConfig> {
    try {
      const { data } = await this.get<Partial<OidcConfig> & { configured?: boolean; authorizationUrl?: string; loginUrl?: string }>(
        '/api/v1/auth/oidc',
        { auth: false },
      );
      const enabled = Boolean(data?.enabled ?? data?.configured);
      return {
        enabled,
        loginUrl: data?.loginUrl ?? data?.authorizationUrl ?? '/api/v1/auth/oidc/login',
        displayName: data?.displayName,
      };
    } catch {
      return { enabled: false };
    }
  }

  // ---- resources ----

  system = {
    health: () => this.get<SystemHealth>('/api/v1/system/health', { auth: false }),
    info: () => this.get<SystemInfo>('/api/v1/system/info'),
  };

  agents = {
    list: (q: { status?: string; type?: string; limit?: number; cursor?: string; offset?: number } = {}) =>
      this.get<Agent[]>('/api/v1/agents', { query: q }),
    /** Every page of the list (up to `max` agents). */
    listAll: async (q: { status?: string; type?: string } = {}, max = 5000): Promise<Agent[]> => {
      const out: Agent[] = [];
      let cursor: string | undefined;
      do {
        const { data, meta } = await this.get<Agent[]>('/api/v1/agents', { query: { ...q, limit: 500, cursor } });
        out.push(...data);
        cursor = meta.next ?? undefined;
      } while (cursor && out.length < max);
      return out;
    },
    /** Agents per status, one request whatever their number. */
    counts: (q: { type?: string; q?: string } = {}) => this.get<AgentCounts>('/api/v1/agents/counts', { query: q }),
    /** Current task and latest resource sample of up to 100 agents. */
    activity: (ids: string[]) => this.get<AgentActivity[]>('/api/v1/agents/activity', { query: { ids: ids.join(',') } }),
    get: (id: string) => this.get<Agent>(`/api/v1/agents/${encodeURIComponent(id)}`),
    create: (input: AgentInput) => this.post<Agent>('/api/v1/agents', input),
    update: (id: string, version: number, input: AgentInput) =>
      this.put<Agent>(`/api/v1/agents/${encodeURIComponent(id)}`, { ...input, version }),
    start: (id: string) => this.post<Agent>(`/api/v1/agents/${encodeURIComponent(id)}/start`),
    stop: (id: string) => this.post<Agent>(`/api/v1/agents/${encodeURIComponent(id)}/stop`),
    decommission: (id: string) => this.del<Agent>(`/api/v1/agents/${encodeURIComponent(id)}`),
    states: (id: string) => this.get<AgentState[]>(`/api/v1/agents/${encodeURIComponent(id)}/states`),
    messages: (id: string, q: { limit?: number; cursor?: string } = {}) =>
      this.get<AgentMessage[]>(`/api/v1/agents/${encodeURIComponent(id)}/messages`, { query: q }),
    sendMessage: (id: string, type: string, payload: Record<string, unknown>) =>
      this.post<AgentMessage>(`/api/v1/agents/${encodeURIComponent(id)}/messages`, { type, payload }),
    tasks: (id: string, q: { status?: string; limit?: number; cursor?: string } = {}) =>
      this.get<Task[]>(`/api/v1/agents/${encodeURIComponent(id)}/tasks`, { query: q }),
    metrics: (id: string, q: { type?: string; taskId?: string; limit?: number } = {}) =>
      this.get<AgentMetric[]>(`/api/v1/agents/${encodeURIComponent(id)}/metrics`, { query: q }),
  };

  workflows = {
    list: (q: { name?: string; archived?: boolean; limit?: number; cursor?: string } = {}) =>
      this.get<Workflow[]>('/api/v1/workflows', { query: { limit: 500, ...q } }),
    get: (id: string) => this.get<Workflow>(`/api/v1/workflows/${encodeURIComponent(id)}`),
    /** 422 validation_failed carries one DefinitionProblem per problem in `details` */
    create: (definition: string) => this.post<Workflow>('/api/v1/workflows', { definition }),
    update: (id: string, definition: string, version?: number) =>
      this.put<Workflow>(`/api/v1/workflows/${encodeURIComponent(id)}`, { definition, version }),
    archive: (id: string) => this.del<Workflow>(`/api/v1/workflows/${encodeURIComponent(id)}`),
    execute: (id: string, inputs: Record<string, unknown>) =>
      this.post<Execution>(`/api/v1/workflows/${encodeURIComponent(id)}/execute`, { inputs }),
  };

  executions = {
    list: (q: { workflowId?: string; status?: string; limit?: number; cursor?: string } = {}) =>
      this.get<Execution[]>('/api/v1/executions', { query: { limit: 50, ...q } }),
    get: (id: string) => this.get<Execution>(`/api/v1/executions/${encodeURIComponent(id)}`),
    cancel: (id: string) => this.post<Execution>(`/api/v1/executions/${encodeURIComponent(id)}/cancel`),
    retry: (id: string) => this.post<Execution>(`/api/v1/executions/${encodeURIComponent(id)}/retry`),
    approve: (id: string, step: string, comment?: string) =>
      this.post<ExecutionStep>(`/api/v1/executions/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/approve`, comment ? { comment } : {}),
    reject: (id: string, step: string, comment?: string) =>
      this.post<ExecutionStep>(`/api/v1/executions/${encodeURIComponent(id)}/steps/${encodeURIComponent(step)}/reject`, comment ? { comment } : {}),
  };

  tools = {
    list: () => this.get<ToolAdapter[]>('/api/v1/tools'),
    get: (id: string) => this.get<ToolAdapter>(`/api/v1/tools/${encodeURIComponent(id)}`),
    register: (name: string, config: ToolAdapterConfig) => this.post<ToolAdapter>('/api/v1/tools', { name, config }),
    remove: (id: string) => this.del<unknown>(`/api/v1/tools/${encodeURIComponent(id)}`),
    health: (id: string) => this.get<ToolHealth>(`/api/v1/tools/${encodeURIComponent(id)}/health`),
    catalog: (id: string) => this.get<McpTool[]>(`/api/v1/tools/${encodeURIComponent(id)}/tools`),
    /** no names: every held tool */
    approve: (id: string, tools?: string[]) =>
      this.post<ToolAdapter>(`/api/v1/tools/${encodeURIComponent(id)}/approve`, tools ? { tools } : {}),
    execute: (id: string, tool: string, args: Record<string, unknown>) =>
      this.post<ToolCall>(`/api/v1/tools/${encodeURIComponent(id)}/execute`, { tool, arguments: args }),
    calls: (id: string, q: { limit?: number; tool?: string; cursor?: string } = {}) =>
      this.get<ToolCall[]>(`/api/v1/tools/${encodeURIComponent(id)}/executions`, { query: { limit: 50, ...q } }),
  };

  users = {
    list: () => this.get<User[]>('/api/v1/users', { query: { limit: 500 } }),
    create: (u: { username: string; displayName?: string; password: string; role: Role }) =>
      this.post<User>('/api/v1/users', u),
    update: (id: string, u: Partial<{ displayName: string; role: Role; status: 'active' | 'disabled' }>) =>
      this.patch<User>(`/api/v1/users/${encodeURIComponent(id)}`, u),
    setPassword: (id: string, password: string) => this.post<unknown>(`/api/v1/users/${encodeURIComponent(id)}/password`, { password }),
  };

  apiKeys = {
    list: () => this.get<ApiKey[]>('/api/v1/api-keys'),
    /** The answer holds the secret key once; it cannot be read again. */
    create: (k: { name: string; role?: Role; agentId?: string; expiresAt?: string }) =>
      this.post<ApiKey & { key: string }>('/api/v1/api-keys', k),
    revoke: (id: string) => this.del<unknown>(`/api/v1/api-keys/${encodeURIComponent(id)}`),
  };

  audit = {
    /** meta.chain is the verification status of the chain */
    list: (q: { limit?: number; cursor?: string; actor?: string; action?: string; target?: string; outcome?: string; from?: string; to?: string } = {}) =>
      this.get<AuditEntry[]>('/api/v1/audit', { query: q }),
    verify: () => this.get<AuditChain>('/api/v1/audit/verify'),
  };
}

/** What each role may do in the dashboard; the server enforces the same rules. */
export function can(
  role: Role | null | undefined,
  action: 'agents.write' | 'agents.operate' | 'workflows.write' | 'tools.call' | 'admin',
): boolean {
  if (!role) return false;
  switch (action) {
    case 'agents.write':
    case 'agents.operate':
    case 'workflows.write':
    case 'tools.call':
      return role === 'admin' || role === 'operator';
    case 'admin':
      return role === 'admin';
  }
}
