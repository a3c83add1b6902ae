-- ExtendIfEqual: a lock extension.
-- KEYS[1]: the key
-- ARGV[1]: the value the key must hold
-- ARGV[2]: the new ttl in milliseconds, "0" to remove the expiry
-- Returns 1 if it changed the ttl, 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if ARGV[2] ~= '0' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  else
    redis.call('PERSIST', KEYS[1])
  end
  return 1
end
return 0
