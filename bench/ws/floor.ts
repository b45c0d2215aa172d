// bench/ws/floor.ts: the floor of bench/ws. A WebSocket fan-out server that does no work
// besides the fan-out: no store, no outbox, no authentication, no validation, no replay.
// Every POST /api/v1/agents publishes one event frame naming the agent to every subscribed
// client through Bun's native pub/sub (uWebSockets), then answers 201. It speaks just enough
// of devplane's hub protocol for bench/ws/wsload (subscribe -> ack, event frames with an id)
// and of its API for bench/ws/run (health, login). No server that stores its events before
// announcing them can deliver them sooner on the same machine, so its latency is the bound
// the other servers' figures are read against. Loopback only; not a server to use.
//
// Run by `bench/ws/run --floor`: PORT=<port> bun run bench/ws/floor.ts
const TOPIC = "agent.status.update";
const port = Number(process.env.PORT ?? "0");
let seq = 0;

const server = Bun.serve({
  hostname: "127.0.0.1",
  port,
  async fetch(req, srv) {
    const path = new URL(req.url).pathname;
    if (path === "/ws") {
      if (srv.upgrade(req)) return undefined;
      return new Response("expected a WebSocket upgrade\n", { status: 400 });
    }
    if (path === "/api/v1/system/health") return Response.json({ data: { status: "ok" } });
    if (path === "/api/v1/auth/login" && req.method === "POST") {
      return Response.json({ data: { accessToken: "floor" } });
    }
    if (path === "/api/v1/agents" && req.method === "POST") {
      let name: string;
      try {
        name = String((await req.json()).name ?? "");
      } catch {
        return Response.json({ error: { code: "invalid_json" } }, { status: 400 });
      }
      seq += 1;
      srv.publish(TOPIC, `{"type":"event","id":${seq},"topic":"${TOPIC}","data":{"name":${JSON.stringify(name)}}}`);
      return Response.json({ data: { name } }, { status: 201 });
    }
    return Response.json({ error: { code: "not_found" } }, { status: 404 });
  },
  websocket: {
    idleTimeout: 30,
    maxPayloadLength: 64 * 1024,
    message(ws, message) {
      let m: { op?: string; id?: string };
      try {
        m = JSON.parse(String(message));
      } catch {
        ws.send(`{"type":"error","code":"invalid_json"}`);
        return;
      }
      if (m.op === "subscribe") ws.subscribe(TOPIC);
      if (m.op === "unsubscribe") ws.unsubscribe(TOPIC);
      ws.send(JSON.stringify({ type: "ack", id: m.id ?? null, op: m.op ?? null }));
    },
  },
});

console.log(`floor listening on http://127.0.0.1:${server.port}`);
for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => { server.stop(true); process.exit(0); });
