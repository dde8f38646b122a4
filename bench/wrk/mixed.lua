-- Mixed run (memory): mostly warm URLs, COLD_PERCENT of requests from a long list of distinct
-- URLs. wrk -s mixed.lua URL -- WARM_FILE COLD_FILE COLD_PERCENT NTHREADS
-- The cold list is walked in order (each thread its own slice) and starts over when it runs out:
-- by then the early entries have long left any LRU sized below the list.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")

function init(args)
  warm = {}
  for line in io.lines(args[1]) do
    if line ~= "" then warm[#warm + 1] = wrk.format("GET", line) end
  end
  cold = read_paths(args[2], id, tonumber(args[4] or "1"))
  cold_percent = tonumber(args[3] or "10")
  n, wi, ci = 0, id % #warm, 0
end

function request()
  n = n + 1
  if n % 100 < cold_percent then
    ci = ci % #cold + 1
    return wrk.format("GET", cold[ci])
  end
  wi = wi % #warm + 1
  return warm[wi]
end
