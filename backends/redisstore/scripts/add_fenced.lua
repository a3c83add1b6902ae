-- AddFenced: Add that also increments a fencing counter.
-- KEYS[1]: the key
-- KEYS[2]: its counter (in the same Cluster slot)
-- ARGV[1]: the value
-- ARGV[2]: the ttl in milliseconds, "0" for no expiry
-- Returns the counter's new value, or nil (false) if the key exists.
-- The counter is incremented before the key is set, so that a counter that
-- cannot be incremented fails the script before anything is written.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local n = redis.call('INCR', KEYS[2])
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return n
