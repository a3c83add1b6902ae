-- AddFenced: Add that also takes a fencing token, from a hybrid logical
-- clock: the token is max(counter + 1, the server's time in microseconds),
-- and the counter is set to it.
-- KEYS[1]: the key
-- KEYS[2]: its counter (in the same Cluster slot)
-- ARGV[1]: the value
-- ARGV[2]: the ttl in milliseconds, "0" for no expiry
-- Returns the token, or nil (false) if the key exists (nothing is written).
--
-- Counting alone makes tokens strictly increasing on one server. The clock
-- keeps them increasing when the counter is lost (evicted, lost in a restart
-- without persistence, behind on a promoted replica): the next token is then
-- the server's time, greater than every earlier token as long as the clock
-- has moved past them (see the package documentation for the conditions).
--
-- The counter is incremented before the key is set, so that a counter that
-- cannot be incremented (not an integer, or at the int64 maximum) fails the
-- script before anything is written. TIME is non-deterministic: Redis 5 and
-- later replicate a script by its effects, so replicas and the AOF get the
-- token itself; redis.replicate_commands() asks for that on Redis 3.2 and 4
-- (on Redis 7 it does nothing).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
if redis.replicate_commands then
  redis.replicate_commands()
end
-- The time as decimal text, built from TIME's two strings: Lua numbers
-- are doubles, and turning one back into text may lose digits.
local t = redis.call('TIME')
local now = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]
local n = redis.call('INCR', KEYS[2])
if n < tonumber(now) then
  redis.call('SET', KEYS[2], now)
  n = tonumber(now)
end
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return n
