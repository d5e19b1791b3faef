-- put-rollback.lua: alternates a PUT of a 100-byte document and a one-step
-- rollback (POST .../rollback without a body) of that document, cycling
-- over the documents /bench/rb-0 .. rb-63 (http-bench.sh gives each of them
-- some history first).  Undo is an undo stack, so rolling back forever
-- would run out of history; one write before each rollback keeps every
-- rollback a real one, and the seeded history absorbs the reordering of
-- requests between connections.  wrk's figure counts both requests.
local body = '{"name":"' .. string.rep("x", 100 - 11) .. '"}'
local n = 0

function request()
  n = n + 1
  local path = "/bench/rb-" .. (math.floor(n / 2) % 64)
  if n % 2 == 1 then
    return wrk.format("PUT", path, {["Content-Type"] = "application/json"}, body)
  end
  return wrk.format("POST", path .. "/rollback")
end
