#!lua flags=allow-cross-slot-keys
-- Batch: single-key writes on keys that one Cluster node serves, in one
-- script, so that a multi-key write costs one round trip per node and is
-- sent in a transaction (a pipeline would be sent again after a lost reply).
-- The flag lets the script touch keys of several slots of this node; the
-- keys are arguments, not declared KEYS, which must share one slot.
-- KEYS[1]: the first key of the batch: it routes the script to its node
-- ARGV: four per write: op, key, value, ttl in milliseconds ("0": none)
--   op "set": SET key value [PX ttl]; replies 1
--   op "unlink": UNLINK key (value and ttl unused); replies the count
-- Returns one reply per write, in order; -1 for a write whose key this node
-- does not serve (the slot moved): nothing was done for it, and the caller
-- sends it again through the Cluster client.
local out = {}
for i = 1, #ARGV, 4 do
  local op, key, value, ttl = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local r
  if op == 'set' then
    if ttl ~= '0' then
      r = redis.pcall('SET', key, value, 'PX', ttl)
    else
      r = redis.pcall('SET', key, value)
    end
  else
    r = redis.pcall('UNLINK', key)
  end
  if type(r) == 'table' and r.err then
    out[#out + 1] = -1
  elseif op == 'set' then
    out[#out + 1] = 1
  else
    out[#out + 1] = r
  end
end
return out
