-- Count one authentication failure in a 1-second bucket (see limits/redis.py).
-- KEYS[1]: the client's bucket hash. ARGV: now_s (integer second), ttl_ms
local second = tonumber(ARGV[1])
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local fields = redis.call('HKEYS', KEYS[1])
for _, field in ipairs(fields) do
  if tonumber(field) + 61 <= second then
    redis.call('HDEL', KEYS[1], field)
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
