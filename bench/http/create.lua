-- wrk script for POST /api/v1/agents: every request creates an agent with a unique name
-- (thread number + per-thread counter + a random tag chosen once per thread), so a run never
-- collides with itself nor with an earlier run against the same store. It counts responses by
-- status and prints the non-2xx ones when the run ends.
--
--   wrk -s create.lua http://127.0.0.1:PORT/api/v1/agents
-- Optional: the environment variable BENCH_AUTH ("Header-Name: value") adds that header.

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  non2xx = 0
  statuses = ""
  status_counts = {}
  math.randomseed(os.time() * 1000 + tid)
  tag = string.format("%08x", math.random(0, 0x7fffffff))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local auth = os.getenv("BENCH_AUTH")
  if auth and auth ~= "" then
    local name, value = auth:match("^%s*([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"name":"bench-%s-t%d-%d","type":"command","description":"created by the HTTP benchmark",' ..
    '"labels":{"team":"bench","run":"%s"},"config":{"command":["/bin/echo","hello"],"timeoutSeconds":30}}',
    tag, tid, counter, tag)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    status_counts[status] = (status_counts[status] or 0) + 1
    -- keep a flat string copy: thread:get hands back plain values only
    local parts = {}
    for s, n in pairs(status_counts) do table.insert(parts, s .. "=" .. n) end
    statuses = table.concat(parts, ",")
  end
end

function done(summary, latency, requests)
  local total = 0
  local merged = {}
  for _, thread in ipairs(threads) do
    total = total + (thread:get("non2xx") or 0)
    local s = thread:get("statuses") or ""
    for code, n in s:gmatch("(%d+)=(%d+)") do
      merged[code] = (merged[code] or 0) + tonumber(n)
    end
  end
  local parts = {}
  for code, n in pairs(merged) do table.insert(parts, code .. "=" .. n) end
  table.sort(parts)
  io.write(string.format("bench-non2xx: %d %s\n", total, table.concat(parts, ",")))
end
