-- Shared by cold.lua, warm.lua and mixed.lua (loaded with dofile from their folder): numbers
-- the threads, reads path files, and prints one machine-readable line at the end, which
-- delivery_bench.py parses (wrk's own --latency text is kept in the run log).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

-- Monotonic clock in microseconds (LuaJIT's os.clock is CPU time, os.time whole seconds).
function now_us()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

-- setup runs in the main Lua state, once per thread: number the threads and keep them, so that
-- done() can ask each when it started and whether it ran out of URLs.
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

-- The lines of a file of request paths whose index (0-based) modulo `nthreads` is `id`: each
-- wrk thread gets its own disjoint slice.
function read_paths(file, id, nthreads)
  local paths, i = {}, 0
  for line in io.lines(file) do
    if line ~= "" then
      if i % nthreads == id then paths[#paths + 1] = line end
      i = i + 1
    end
  end
  return paths
end

function done(summary, latency, requests)
  -- wrk measures until its -d duration is over even when every thread stopped early (a cold
  -- list that ran out): then the useful span is from the first start to the last stop.
  local first, last, stopped = nil, nil, 0
  for _, thread in ipairs(threads) do
    local started, ended = thread:get("started_us"), thread:get("stopped_us")
    if started and (first == nil or started < first) then first = started end
    if ended then
      stopped = stopped + 1
      if last == nil or ended > last then last = ended end
    end
  end
  local active = summary.duration
  if stopped == #threads and first and last then active = last - first end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"active_us":%d,"threads":%d,' ..
    '"exhausted_threads":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"stdev":%.1f,' ..
    '"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, active, #threads, stopped, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max, latency.stdev,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
