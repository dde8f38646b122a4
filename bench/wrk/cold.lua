-- Cold run: every request a different URL, each URL at most once in the whole run.
-- wrk -s cold.lua URL -- PATHS_FILE NTHREADS
-- Each thread takes a disjoint slice of PATHS_FILE. A thread whose slice runs out stops; when
-- all have, report.lua counts the rate over the span until the last one stopped. (wrk calls
-- the first thread's request() once at start-up to check it, so that one URL is skipped.)
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")

function init(args)
  paths = read_paths(args[1], id, tonumber(args[2] or "1"))
  nxt = 1
  started_us = now_us()
end

function request()
  if nxt > #paths then
    if not stopped_us then stopped_us = now_us() end
    -- Out of fresh URLs: stop rather than repeat one. wrk must still be handed a request; this
    -- path is cheap everywhere (a 404), and its answer is not counted once the loop has stopped.
    wrk.thread:stop()
    return wrk.format("GET", "/__cold_list_exhausted__")
  end
  local path = paths[nxt]
  nxt = nxt + 1
  return wrk.format("GET", path)
end
