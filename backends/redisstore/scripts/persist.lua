-- Expire with ttl 0: remove the expiry of an existing key. PERSIST alone
-- returns 0 both for a missing key and for a key without expiry.
-- KEYS[1]: the key
-- Returns 1 if the key exists, 0 otherwise.
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PERSIST', KEYS[1])
  return 1
end
return 0
