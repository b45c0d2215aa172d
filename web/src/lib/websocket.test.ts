// The WebSocket client against a real `ws` server on 127.0.0.1 that speaks devplane's /ws
// protocol (hello, subscribe/ack with resume from lastEventId, unsubscribe, ping/pong,
// resync_required), keeping an event log so resume can be checked for gaps and duplicates.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { RealtimeClient, topicMatches, type LiveEvent, type WebSocketLike } from './websocket';

interface Conn {
  socket: ServerSocket;
  topics: Set<string>;
  live: boolean;
  protocols: string[];
  received: Record<string, unknown>[];
  query: URLSearchParams;
}

class FakeHub {
  server!: WebSocketServer;
  log: { id: number; topic: string; data: Record<string, unknown> }[] = [];
  conns: Conn[] = [];
  /** events older than this are "pruned": a resume from before it gets resync_required */
  oldest = 1;
  private waiters: (() => void)[] = [];

  async start() {
    this.server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has('devplane.v1') ? 'devplane.v1' : false),
    });
    await new Promise<void>((r) => this.server.once('listening', () => r()));
    this.server.on('connection', (socket, req: IncomingMessage) => this.onConnection(socket, req));
  }

  get url() {
    return `ws://127.0.0.1:${(this.server.address() as AddressInfo).port}/ws`;
  }

  get latest() {
    return this.log.length ? this.log[this.log.length - 1].id : 0;
  }

  private onConnection(socket: ServerSocket, req: IncomingMessage) {
    const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const conn: Conn = {
      socket,
      topics: new Set(),
      live: false,
      protocols,
      received: [],
      query: new URL(req.url ?? '/', 'http://x').searchParams,
    };
    this.conns.push(conn);
    socket.on('message', (raw) => this.onMessage(conn, JSON.parse(String(raw))));
    socket.send(JSON.stringify({ type: 'hello', connection: `c${this.conns.length}`, latestEventId: this.latest }));
    this.notify();
  }

  private onMessage(conn: Conn, msg: Record<string, unknown>) {
    conn.received.push(msg);
    this.notify();
    if (msg.op === 'ping') {
      conn.socket.send(JSON.stringify({ type: 'pong', id: msg.id }));
      return;
    }
    if (msg.op === 'unsubscribe') {
      let removed = 0;
      for (const t of (msg.topics as string[]) ?? []) if (conn.topics.delete(t)) removed++;
      conn.socket.send(JSON.stringify({ type: 'ack', id: msg.id, op: 'unsubscribe', removedTopics: removed }));
      return;
    }
    if (msg.op !== 'subscribe') return;
    for (const t of msg.topics as string[]) conn.topics.add(t);
    let cursor = this.latest;
    const resume = typeof msg.lastEventId === 'number' ? msg.lastEventId : -1;
    const firstSubscribe = !conn.live;
    conn.live = true;
    if (firstSubscribe && resume >= 0 && resume < this.latest) cursor = resume;
    conn.socket.send(JSON.stringify({ type: 'ack', id: msg.id, op: 'subscribe', subscription: 's1', lastEventId: cursor }));
    if (cursor < this.latest) {
      if (this.oldest > cursor + 1) {
        conn.socket.send(
          JSON.stringify({ type: 'resync_required', lastEventId: cursor, oldestEventId: this.oldest, latestEventId: this.latest }),
        );
        return;
      }
      for (const e of this.log) if (e.id > cursor) this.sendEvent(conn, e);
    }
  }

  private sendEvent(conn: Conn, e: { id: number; topic: string; data: Record<string, unknown> }) {
    if (![...conn.topics].some((t) => topicMatches(t, e.topic))) return;
    conn.socket.send(
      JSON.stringify({ type: 'event', id: e.id, topic: e.topic, timestamp: new Date().toISOString(), correlationId: '', data: e.data }),
    );
  }

  /** Appends an event to the log and sends it to every live connection that wants it. */
  publish(topic: string, data: Record<string, unknown> = {}) {
    const e = { id: this.latest + 1, topic, data };
    this.log.push(e);
    for (const c of this.conns) if (c.live && c.socket.readyState === WebSocket.OPEN) this.sendEvent(c, e);
    return e.id;
  }

  /** Drops every connection abruptly, as a network loss or a server restart would. */
  dropAll() {
    for (const c of this.conns) c.socket.terminate();
  }

  notify() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits (up to timeoutMs) until `cond` holds, re-checking whenever the hub sees something. */
  async until(cond: () => boolean, what: string, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 20);
      });
    }
  }

  async stop() {
    for (const c of this.conns) c.socket.terminate();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function factory(url: string, protocols: string[]): WebSocketLike {
  return new WebSocket(url, protocols) as unknown as WebSocketLike;
}

let hub: FakeHub;
let client: RealtimeClient | null;

beforeEach(async () => {
  hub = new FakeHub();
  await hub.start();
  client = null;
});

afterEach(async () => {
  client?.close();
  await hub.stop();
});

function makeClient(extra: Partial<ConstructorParameters<typeof RealtimeClient>[0]> = {}) {
  client = new RealtimeClient({ url: hub.url, factory, initialDelayMs: 20, maxDelayMs: 200, idlePingMs: 0, ...extra });
  return client;
}

describe('topicMatches', () => {
  it('matches exact names, prefixes and *', () => {
    expect(topicMatches('agent.status.update', 'agent.status.update')).toBe(true);
    expect(topicMatches('agent.*', 'agent.status.update')).toBe(true);
    expect(topicMatches('agent.*', 'agentx.status')).toBe(false);
    expect(topicMatches('*', 'system.health.status')).toBe(true);
    expect(topicMatches('agent.status.update', 'agent.updated')).toBe(false);
  });
});

describe('RealtimeClient', () => {
  it('offers devplane.v1 and the bearer token as subprotocols, then subscribes after hello', async () => {
    const c = makeClient({ beforeConnect: () => 'tok123' });
    const seen: LiveEvent[] = [];
    c.subscribe({ topics: ['agent.*'] }, (e) => seen.push(e));
    await hub.until(() => hub.conns[0]?.received.some((m) => m.op === 'subscribe') ?? false, 'subscribe');
    expect(hub.conns[0].protocols).toEqual(['devplane.v1', 'bearer.tok123']);
    const sub = hub.conns[0].received.find((m) => m.op === 'subscribe')!;
    expect(sub.topics).toEqual(['agent.*']);
    expect(sub.lastEventId).toBe(0);
    expect(c.state).toBe('open');
    hub.publish('agent.status.update', { agentId: 'a1', status: 'running' });
    hub.publish('system.health.status', {});
    await hub.until(() => seen.length === 1, 'the event');
    expect(seen[0].topic).toBe('agent.status.update');
    expect(seen[0].data).toEqual({ agentId: 'a1', status: 'running' });
  });

  it('asks for a fresh token before every reconnect', async () => {
    let n = 0;
    const c = makeClient({ beforeConnect: async () => `tok${++n}` });
    c.subscribe({ topics: ['*'] }, () => {});
    await hub.until(() => hub.conns[0]?.live ?? false, 'first connection');
    hub.dropAll();
    await hub.until(() => hub.conns.length === 2 && hub.conns[1].live, 'the reconnect');
    expect(hub.conns.map((x) => x.protocols)).toEqual([
      ['devplane.v1', 'bearer.tok1'],
      ['devplane.v1', 'bearer.tok2'],
    ]);
  });

  it('filters by agentId locally and delivers each event once to every matching subscriber', async () => {
    const c = makeClient();
    const all: number[] = [];
    const onlyA: number[] = [];
    c.subscribe({ topics: ['agent.status.update'] }, (e) => all.push(e.id));
    c.subscribe({ topics: ['agent.*'], agentId: 'A' }, (e) => onlyA.push(e.id));
    await hub.until(() => hub.conns[0]?.topics.size === 2, 'both topics on the server');
    // One subscribe at hello (or one per new topic): never a duplicate topic.
    const subscribed = hub.conns[0].received.filter((m) => m.op === 'subscribe').flatMap((m) => m.topics as string[]);
    expect(new Set(subscribed).size).toBe(subscribed.length);
    hub.publish('agent.status.update', { agentId: 'A' });
    hub.publish('agent.status.update', { agentId: 'B' });
    hub.publish('agent.updated', { agentId: 'A' });
    await hub.until(() => all.length === 2 && onlyA.length === 2, 'deliveries');
    expect(all).toEqual([1, 2]);
    expect(onlyA).toEqual([1, 3]);
  });

  it('reconnects after a drop and resumes from the last event id with no gap and no duplicate', async () => {
    const c = makeClient();
    const ids: number[] = [];
    const states: string[] = [];
    c.onState((s) => states.push(s));
    c.subscribe({ topics: ['agent.*'] }, (e) => ids.push(e.id));
    await hub.until(() => hub.conns[0]?.live ?? false, 'first subscribe');
    hub.publish('agent.status.update', { n: 1 });
    hub.publish('agent.status.update', { n: 2 });
    await hub.until(() => ids.length === 2, 'two live events');

    hub.dropAll();
    // Published while the client is away: it must get them on resume.
    hub.publish('agent.status.update', { n: 3 });
    hub.publish('agent.message', { n: 4 });
    await hub.until(() => hub.conns.length === 2 && hub.conns[1].live, 'the reconnect');
    const resumeSub = hub.conns[1].received.find((m) => m.op === 'subscribe')!;
    expect(resumeSub.lastEventId).toBe(2);
    hub.publish('agent.status.update', { n: 5 });
    await hub.until(() => ids.length === 5, 'replayed and live events');
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    expect(c.lastEventId).toBe(5);
    expect(states).toContain('reconnecting');
    expect(c.state).toBe('open');
  });

  it('keeps retrying with backoff while the server refuses, and recovers', async () => {
    const c = makeClient({ initialDelayMs: 10, maxDelayMs: 40 });
    let refused = 0;
    // Refuse the upgrade three times: the client must try again each time. (ws treats a
    // two-argument verifyClient as the asynchronous form.)
    hub.server.options.verifyClient = (_info: unknown, cb: (ok: boolean, code?: number) => void) => {
      if (refused < 3) {
        refused++;
        cb(false, 503);
      } else cb(true);
    };
    c.subscribe({ topics: ['*'] }, () => {});
    await hub.until(() => hub.conns.length === 1 && hub.conns[0].live, 'a connection after refusals');
    expect(refused).toBe(3);
    expect(c.state).toBe('open');
  });

  it('computes exponential delays, capped, within the jitter band', () => {
    const lo = new RealtimeClient({ url: 'ws://127.0.0.1:1/ws', initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5, random: () => 0 });
    const hi = new RealtimeClient({ url: 'ws://127.0.0.1:1/ws', initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.5, random: () => 1 });
    expect([0, 1, 2, 3, 4, 10].map((n) => lo.backoffDelay(n))).toEqual([50, 100, 200, 400, 500, 500]);
    expect([0, 1, 2, 3, 4, 10].map((n) => hi.backoffDelay(n))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('passes resync_required to listeners when the server no longer has the missed events', async () => {
    const c = makeClient();
    const ids: number[] = [];
    const resyncs: unknown[] = [];
    c.onResync((r) => resyncs.push(r));
    c.subscribe({ topics: ['agent.*'] }, (e) => ids.push(e.id));
    await hub.until(() => hub.conns[0]?.live ?? false, 'subscribe');
    hub.publish('agent.status.update');
    await hub.until(() => ids.length === 1, 'event 1');
    hub.dropAll();
    hub.publish('agent.status.update');
    hub.publish('agent.status.update');
    hub.oldest = 3; // event 2 was pruned while the client was away
    await hub.until(() => resyncs.length === 1, 'resync_required');
    expect(resyncs[0]).toEqual({ type: 'resync_required', lastEventId: 1, oldestEventId: 3, latestEventId: 3 });
  });

  it('unsubscribes a topic on the server only when its last local subscriber leaves', async () => {
    const c = makeClient();
    const off1 = c.subscribe({ topics: ['agent.*'] }, () => {});
    const off2 = c.subscribe({ topics: ['agent.*', 'system.health.status'] }, () => {});
    await hub.until(() => hub.conns[0]?.topics.size === 2, 'topics');
    off2();
    await hub.until(() => hub.conns[0].received.some((m) => m.op === 'unsubscribe'), 'unsubscribe');
    const unsub = hub.conns[0].received.filter((m) => m.op === 'unsubscribe');
    expect(unsub).toHaveLength(1);
    expect(unsub[0].topics).toEqual(['system.health.status']);
    off1();
    await hub.until(() => hub.conns[0].topics.size === 0, 'agent.* removed');
  });

  it('pings when idle and reconnects when the ping gets no answer', async () => {
    const c = makeClient({ idlePingMs: 30, pingTimeoutMs: 50 });
    c.subscribe({ topics: ['*'] }, () => {});
    await hub.until(() => hub.conns[0]?.received.some((m) => m.op === 'ping') ?? false, 'a ping');
    // Make the server deaf: the next ping is never answered.
    hub.conns[0].socket.removeAllListeners('message');
    await hub.until(() => hub.conns.length === 2 && hub.conns[1].live, 'a reconnect after the missed pong');
  });

  it('stops for good on close()', async () => {
    const c = makeClient();
    c.subscribe({ topics: ['*'] }, () => {});
    await hub.until(() => hub.conns[0]?.live ?? false, 'connected');
    c.close();
    await hub.until(() => hub.conns[0].socket.readyState === WebSocket.CLOSED, 'the socket to close');
    expect(c.state).toBe('closed');
    // Give a reconnect the time it would need (several backoff periods) and check none came.
    const before = hub.conns.length;
    await expect(hub.until(() => hub.conns.length > before, 'no reconnect', 600)).rejects.toThrow();
  });
});
