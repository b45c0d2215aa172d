// The one client for devplane's live event stream at /ws. Pages subscribe through it, never
// through WebSocket directly.
//
// How it keeps events exact across reconnects: the server orders every event by an `id` and
// resumes a connection from the `lastEventId` of its *first* subscribe. So this client keeps
// one server-side topic set (the union of what local subscribers want, reference-counted),
// filters by agentId/executionId/workflowId locally, and on every (re)connect sends one
// subscribe with all topics and the last id it saw. Events with an id it already delivered are
// dropped. `resync_required` (the server no longer holds what was missed) is passed to
// `onResync` listeners so views reload what they show.
//
// Reconnects use exponential backoff with jitter; a `beforeConnect` hook (the app refreshes its
// access token there) provides the `bearer.<token>` subprotocol.

export interface LiveEvent<T = Record<string, unknown>> {
  type: 'event';
  id: number;
  topic: string;
  timestamp: string;
  correlationId: string;
  data: T;
}

export interface ResyncInfo {
  lastEventId: number;
  oldestEventId: number;
  latestEventId: number;
}

export interface SubscribeOptions {
  topics: string[];
  agentId?: string;
  executionId?: string;
  workflowId?: string;
}

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export interface RealtimeOptions {
  /** ws:// or wss:// URL of /ws; in the browser defaults to the page's own origin */
  url?: string;
  /** returns the access token (or null when there is none); awaited before every connect */
  beforeConnect?: () => Promise<string | null> | string | null;
  factory?: WebSocketFactory;
  /** first reconnect delay, ms (default 500) */
  initialDelayMs?: number;
  /** largest reconnect delay, ms (default 15000) */
  maxDelayMs?: number;
  /** 0..1: how much of each delay is randomised (default 0.5) */
  jitter?: number;
  random?: () => number;
  /** send an application ping when nothing was received for this long (default 25000; 0 = never) */
  idlePingMs?: number;
  /** reconnect when a ping gets no answer within this long (default 10000) */
  pingTimeoutMs?: number;
}

type Handler = (event: LiveEvent) => void;

interface LocalSub {
  opts: SubscribeOptions;
  handler: Handler;
}

export function topicMatches(pattern: string, topic: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return topic.startsWith(pattern.slice(0, -1));
  return pattern === topic;
}

const OPEN = 1;

function defaultUrl(): string {
  const loc = (globalThis as { location?: Location }).location;
  if (!loc) throw new Error('RealtimeClient needs a url outside the browser');
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}

export class RealtimeClient {
  private readonly opts: Required<Omit<RealtimeOptions, 'url' | 'beforeConnect' | 'factory'>> &
    Pick<RealtimeOptions, 'beforeConnect'>;
  private readonly url: string;
  private readonly factory: WebSocketFactory;
  private ws: WebSocketLike | null = null;
  private subs = new Set<LocalSub>();
  private topicRefs = new Map<string, number>();
  /** topics the server knows on the current connection */
  private serverTopics = new Set<string>();
  private _lastEventId: number | null = null;
  private _state: ConnectionState = 'idle';
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private nextRequestId = 1;
  private stopped = false;
  private stateListeners = new Set<(s: ConnectionState) => void>();
  private resyncListeners = new Set<(r: ResyncInfo) => void>();
  private errorListeners = new Set<(e: { code: string; message: string }) => void>();
  private connectGeneration = 0;

  constructor(options: RealtimeOptions = {}) {
    this.url = options.url ?? defaultUrl();
    this.factory =
      options.factory ??
      ((url, protocols) => new (globalThis as unknown as { WebSocket: new (u: string, p: string[]) => WebSocketLike }).WebSocket(url, protocols));
    this.opts = {
      beforeConnect: options.beforeConnect,
      initialDelayMs: options.initialDelayMs ?? 500,
      maxDelayMs: options.maxDelayMs ?? 15000,
      jitter: options.jitter ?? 0.5,
      random: options.random ?? Math.random,
      idlePingMs: options.idlePingMs ?? 25000,
      pingTimeoutMs: options.pingTimeoutMs ?? 10000,
    };
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The id of the last event delivered, or null before the first. */
  get lastEventId(): number | null {
    return this._lastEventId;
  }

  onState(listener: (s: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    listener(this._state);
    return () => this.stateListeners.delete(listener);
  }

  onResync(listener: (r: ResyncInfo) => void): () => void {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }

  onError(listener: (e: { code: string; message: string }) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /**
   * Delivers matching events to `handler` until the returned function is called. Connects on
   * the first subscription.
   */
  subscribe(opts: SubscribeOptions, handler: Handler): () => void {
    if (opts.topics.length === 0) throw new Error('subscribe needs at least one topic');
    const sub: LocalSub = { opts: { ...opts, topics: [...opts.topics] }, handler };
    this.subs.add(sub);
    const added: string[] = [];
    for (const t of sub.opts.topics) {
      const n = this.topicRefs.get(t) ?? 0;
      this.topicRefs.set(t, n + 1);
      if (n === 0) added.push(t);
    }
    if (this._state === 'idle' || this._state === 'closed') {
      this.stopped = false;
      void this.connect();
    } else if (this.ws && this.ws.readyState === OPEN && this._state === 'open') {
      const fresh = added.filter((t) => !this.serverTopics.has(t));
      if (fresh.length) this.sendSubscribe(fresh, false);
    }
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.subs.delete(sub);
      const removed: string[] = [];
      for (const t of sub.opts.topics) {
        const n = (this.topicRefs.get(t) ?? 1) - 1;
        if (n <= 0) {
          this.topicRefs.delete(t);
          removed.push(t);
        } else this.topicRefs.set(t, n);
      }
      if (removed.length && this.ws && this.ws.readyState === OPEN) {
        const gone = removed.filter((t) => this.serverTopics.has(t));
        for (const t of gone) this.serverTopics.delete(t);
        if (gone.length) this.send({ op: 'unsubscribe', id: this.requestId(), topics: gone });
      }
    };
  }

  /** Closes the connection for good (until the next subscribe). */
  close(): void {
    this.stopped = true;
    this.clearTimers();
    this.connectGeneration++;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onerror = null;
      try {
        ws.close(1000, 'client closed');
      } catch {
        // already closed
      }
    }
    this.serverTopics.clear();
    this.setState('closed');
  }

  /** Drops the current connection and reconnects (with resume), as after a network loss. */
  reconnectNow(): void {
    if (this.ws) {
      try {
        this.ws.close(4000, 'reconnect');
      } catch {
        // ignore
      }
    }
  }

  /** The delay before reconnect attempt `n` (0-based): exponential, capped, jittered. */
  backoffDelay(n: number): number {
    const base = Math.min(this.opts.maxDelayMs, this.opts.initialDelayMs * 2 ** Math.min(n, 30));
    const j = Math.max(0, Math.min(1, this.opts.jitter));
    return Math.round(base * (1 - j) + base * j * this.opts.random());
  }

  private setState(s: ConnectionState) {
    if (this._state === s) return;
    this._state = s;
    for (const l of this.stateListeners) l(s);
  }

  private requestId(): string {
    return String(this.nextRequestId++);
  }

  private send(msg: unknown) {
    if (this.ws && this.ws.readyState === OPEN) this.ws.send(JSON.stringify(msg));
  }

  private sendSubscribe(topics: string[], withResume: boolean) {
    const msg: Record<string, unknown> = { op: 'subscribe', id: this.requestId(), topics };
    if (withResume && this._lastEventId !== null) msg.lastEventId = this._lastEventId;
    for (const t of topics) this.serverTopics.add(t);
    this.send(msg);
  }

  private async connect(): Promise<void> {
    const generation = ++this.connectGeneration;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let token: string | null = null;
    try {
      token = (await this.opts.beforeConnect?.()) ?? null;
    } catch {
      token = null;
    }
    if (this.stopped || generation !== this.connectGeneration) return;
    const protocols = ['devplane.v1'];
    if (token) protocols.push(`bearer.${token}`);
    let ws: WebSocketLike;
    try {
      ws = this.factory(this.url, protocols);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.serverTopics.clear();
    ws.onopen = () => {
      // Wait for the server's hello before subscribing: it tells us the connection is ready.
    };
    ws.onmessage = (ev) => this.onMessage(ws, ev.data);
    ws.onerror = () => {
      // onclose follows and schedules the reconnect.
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.serverTopics.clear();
      this.clearTimers();
      if (!this.stopped) this.scheduleReconnect();
    };
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    if (this.subs.size === 0) {
      this.setState('idle');
      return;
    }
    this.setState('reconnecting');
    const delay = this.backoffDelay(this.attempt);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
  }

  private clearTimers() {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pingTimer) clearTimeout(this.pingTimer);
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.reconnectTimer = this.pingTimer = this.pongTimer = null;
  }

  private armIdlePing() {
    if (this.pingTimer) clearTimeout(this.pingTimer);
    if (this.pongTimer) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
    if (this.opts.idlePingMs <= 0) return;
    this.pingTimer = setTimeout(() => {
      this.send({ op: 'ping', id: this.requestId() });
      this.pongTimer = setTimeout(() => this.reconnectNow(), this.opts.pingTimeoutMs);
    }, this.opts.idlePingMs);
  }

  private onMessage(ws: WebSocketLike, raw: unknown) {
    if (this.ws !== ws) return;
    this.armIdlePing();
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(String(raw)) as Record<string, unknown>;
    } catch {
      return;
    }
    switch (msg.type) {
      case 'hello': {
        this.attempt = 0;
        // The server goes live from its newest event: remember it so that a reconnect before
        // the first event still resumes from here and loses nothing.
        if (this._lastEventId === null && typeof msg.latestEventId === 'number') {
          this._lastEventId = msg.latestEventId;
        }
        this.setState('open');
        const topics = [...this.topicRefs.keys()];
        if (topics.length) this.sendSubscribe(topics, true);
        break;
      }
      case 'event':
        this.deliver(msg as unknown as LiveEvent);
        break;
      case 'resync_required': {
        const info = msg as unknown as ResyncInfo;
        for (const l of this.resyncListeners) l(info);
        break;
      }
      case 'error': {
        const e = { code: String(msg.code ?? 'error'), message: String(msg.message ?? '') };
        for (const l of this.errorListeners) l(e);
        break;
      }
      default:
        // ack, pong: nothing to do beyond the idle timer reset above.
        break;
    }
  }

  private deliver(ev: LiveEvent) {
    if (typeof ev.id !== 'number') return;
    if (this._lastEventId !== null && ev.id <= this._lastEventId) return;  // already delivered
    this._lastEventId = ev.id;
    const data = (ev.data ?? {}) as Record<string, unknown>;
    for (const sub of [...this.subs]) {
      const o = sub.opts;
      if (o.agentId && data.agentId !== o.agentId) continue;
      if (o.executionId && data.executionId !== o.executionId) continue;
      if (o.workflowId && data.workflowId !== o.workflowId) continue;
      if (!o.topics.some((t) => topicMatches(t, ev.topic))) continue;
      try {
        sub.handler(ev);
      } catch (e) {
        console.error('devplane: event handler failed', e);
      }
    }
  }
}
