-- rollback-many.lua - roll back every key of KEYS one step, in one call:
-- how a Redis user who keeps history with put_versioned (a list KEY:history,
-- newest first, holding the current value too) undoes what a job wrote to
-- many keys. Per key it does what the single-key rollback script does: drop
-- the newest history entry and SET the key to the one below; a key with no
-- older entry is left alone.
--   EVALSHA <sha> N KEY1 ... KEYN   -> the number of keys rolled back
local done = 0
for _, key in ipairs(KEYS) do
  local hist = key .. ':history'
  if redis.call('LLEN', hist) >= 2 then
    redis.call('LPOP', hist)
    redis.call('SET', key, redis.call('LINDEX', hist, 0))
    done = done + 1
  end
end
return done
