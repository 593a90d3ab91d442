-- wrk script for bench/console.sh: GETs the paths listed in a file (one per line, after wrk's
-- "--"), each thread starting at its own offset and cycling through them; at the end prints one
-- line "latency_us P50 P95 P99 requests non2xx errors" for the script to read.
local paths = {}
local counter = 0
local thread_offset = 0
local threads = {}

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "r"), "cannot open the path list " .. tostring(args[1]))
  for line in f:lines() do
    if #line > 0 then paths[#paths + 1] = line end
  end
  f:close()
  assert(#paths > 0, "the path list is empty")
  thread_offset = offset or 0
  non2xx = 0
end

function request()
  local p = paths[(thread_offset + counter) % #paths + 1]
  counter = counter + 1
  return wrk.format("GET", p)
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non2xx") or 0) end
  local e = summary.errors
  io.write(string.format("latency_us %d %d %d %d %d %d\n", latency:percentile(50), latency:percentile(95),
    latency:percentile(99), summary.requests, bad, e.connect + e.read + e.write + e.timeout + e.status))
end
