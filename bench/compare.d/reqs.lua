-- reqs.lua - wrk script for bench/compare: the requests come from the file
-- named by WRK_REQS, one per line: METHOD <tab> PATH <tab> BODY (BODY may be
-- empty; a non-empty one is sent as application/json).
--
-- One line: a fixed request, set once, so wrk builds it only once (the
-- cheapest client, the same for every system).
-- Several lines: each wrk thread replays them in order, forever. Thread k
-- starts k/WRK_THREADS of the way into the list, rounded down to a multiple of
-- WRK_CYCLE (the lines one logical operation takes, e.g. 2 for "write, then
-- roll back"), so that the two threads work on different keys. Within a
-- thread, consecutive requests go out on whichever connection is free, so
-- two requests of one cycle can overtake each other: bench/compare reports
-- the non-2xx answers this causes.
local reqs = {}
local path = os.getenv("WRK_REQS")
assert(path, "WRK_REQS unset")
local f = assert(io.open(path, "r"))
for line in f:lines() do
  local method, path, body = line:match("^([^\t]*)\t([^\t]*)\t?(.*)$")
  if method then
    local headers = {}
    if body ~= "" then
      headers["Content-Type"] = "application/json"
    else
      body = nil
    end
    reqs[#reqs + 1] = { method = method, path = path, headers = headers, body = body }
  end
end
f:close()
assert(#reqs > 0, "no requests in WRK_REQS")

if #reqs == 1 then
  wrk.method = reqs[1].method
  wrk.path = reqs[1].path
  wrk.body = reqs[1].body
  for k, v in pairs(reqs[1].headers) do wrk.headers[k] = v end
else
  local built, n
  local next_id = 0

  -- setup runs in the main state, once per thread, before any starts.
  function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
  end

  function init(_)
    built = {}
    for i, r in ipairs(reqs) do
      built[i] = wrk.format(r.method, r.path, r.headers, r.body)
    end
    local cycle = tonumber(os.getenv("WRK_CYCLE") or "1")
    local nthreads = tonumber(os.getenv("WRK_THREADS") or "2")
    local share = math.floor(#reqs / nthreads / cycle) * cycle
    n = ((id or 0) * share) % #reqs
  end

  function request()
    n = n % #built + 1
    return built[n]
  end
end
