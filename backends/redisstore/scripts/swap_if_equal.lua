-- SwapIfEqual: replace a value only if the key holds exactly the bytes
-- given (memo ends a computation's lease with its value), then wake the
-- key's watchers, whether it swapped or not: the lease ends either way.
-- KEYS[1]: the key
-- ARGV[1]: the bytes the key must hold
-- ARGV[2]: the new value
-- ARGV[3]: the ttl in milliseconds, "0" for no expiry
-- ARGV[4]: the notification channel of the key
-- Returns 1 if it swapped, 0 otherwise.
local ok = 0
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[3] ~= '0' then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else
    redis.call('SET', KEYS[1], ARGV[2])
  end
  ok = 1
end
redis.call('PUBLISH', ARGV[4], '')
return ok
