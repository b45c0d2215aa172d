// Seeds N agents into a server through POST /api/v1/agents, a few requests in flight at once,
// then prints one agent id from the middle of the list (for the GET-by-id route).
//
//   node seed.mjs BASE_URL COUNT PREFIX [HEADER_NAME:VALUE]
//
// Bounded: each request has a 10 s timeout and the whole run a 120 s deadline. Exits non-zero when
// any create failed, so the harness never measures a half-seeded store.
const [base, countArg, prefix, header] = process.argv.slice(2);
if (!base || !countArg || !prefix) {
  console.error("usage: node seed.mjs BASE_URL COUNT PREFIX [HEADER_NAME:VALUE]");
  process.exit(2);
}
const count = Number(countArg);
const headers = { "content-type": "application/json" };
if (header) {
  const i = header.indexOf(":");
  headers[header.slice(0, i).trim()] = header.slice(i + 1).trim();
}
const deadline = Date.now() + 120_000;
const inFlight = 8;
const statuses = new Map();
let next = 0;

async function worker() {
  while (next < count) {
    if (Date.now() > deadline) throw new Error("seeding took longer than 120 s");
    const i = next++;
    const body = {
      name: `${prefix}-${String(i).padStart(5, "0")}`,
      type: "command",
      description: `seeded agent number ${i} for the HTTP benchmark`,
      labels: { team: "bench", tier: i % 2 ? "gold" : "silver" },
      config: { command: ["/bin/echo", "hello"], timeoutSeconds: 30 },
    };
    const res = await fetch(`${base}/api/v1/agents`, {
      method: "POST", headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  }
}

await Promise.all(Array.from({ length: inFlight }, worker));
const created = statuses.get(201) ?? 0;
if (created !== count) {
  console.error(`seeding ${base}: ${created}/${count} created; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
  process.exit(1);
}
const auth = { ...headers };
delete auth["content-type"];
const list = await fetch(`${base}/api/v1/agents?limit=1&offset=${Math.floor(count / 2)}`, {
  headers: auth, signal: AbortSignal.timeout(10_000),
});
const json = await list.json();
const id = json?.data?.[0]?.id;
if (list.status !== 200 || typeof id !== "string") {
  console.error(`seeding ${base}: cannot read back an agent id (status ${list.status})`);
  process.exit(1);
}
console.log(id);
