-- DeleteIfEqual: a lock release.
-- KEYS[1]: the key
-- ARGV[1]: the value the key must hold
-- ARGV[2]: the notification channel of the key
-- Returns 1 if it deleted the key (and published the release), 0 otherwise.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], '')
  return 1
end
return 0
