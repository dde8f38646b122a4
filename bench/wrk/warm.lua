-- Warm run: the same few URLs again and again, round robin.
-- wrk -s warm.lua URL -- PATHS_FILE
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "report.lua")

function init(args)
  requests_ = {}
  for line in io.lines(args[1]) do
    if line ~= "" then requests_[#requests_ + 1] = wrk.format("GET", line) end
  end
  -- Threads start at different URLs so they do not march in step.
  nxt = id % #requests_
end

function request()
  nxt = nxt % #requests_ + 1
  return requests_[nxt]
end
