-- CompareAndSwap.
-- KEYS[1]: the key
-- ARGV[1]: the new value
-- ARGV[2]: the ttl in milliseconds, "0" for no expiry
-- ARGV[3]: "1" if the token is present, "0" if it is the absent token
-- ARGV[4]: the value the token was read from (present token only)
-- Returns 1 if it wrote, 0 on a conflict.
local cur = redis.call('GET', KEYS[1])
if ARGV[3] == '1' then
  if cur ~= ARGV[4] then
    return 0
  end
elseif cur then
  return 0
end
if ARGV[2] ~= '0' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
