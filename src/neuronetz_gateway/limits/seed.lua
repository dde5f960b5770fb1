-- Rebuild missing budget counters (see limits/redis.py), only where still missing.
--
-- KEYS: budget hashes to seed, then concurrency zsets to restore in-flight slots into
-- ARGV: generation, number of budget keys, concurrency ttl_ms,
--       then per budget key: tokens, ttl_ms (0: none),
--       then per concurrency key: member count, then (lease end score, request id) pairs
-- Returns one flag per budget key: 1 if seeded by this call, 0 if it existed already.
local generation = ARGV[1]
local budgets = tonumber(ARGV[2])
local conc_ttl = tonumber(ARGV[3])
local seeded = {}
for j = 1, budgets do
  local key = KEYS[j]
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 't', ARGV[2 + 2 * j], 'g', generation)
    local ttl = tonumber(ARGV[3 + 2 * j])
    if ttl > 0 then
      redis.call('PEXPIRE', key, ttl)
    end
    seeded[j] = 1
  else
    seeded[j] = 0
  end
end
local a = 4 + 2 * budgets
for j = budgets + 1, #KEYS do
  local count = tonumber(ARGV[a])
  for m = 1, count do
    redis.call('ZADD', KEYS[j], 'NX', ARGV[a + 2 * m - 1], ARGV[a + 2 * m])
  end
  if count > 0 then
    redis.call('PEXPIRE', KEYS[j], conc_ttl)
  end
  a = a + 1 + 2 * count
end
return seeded
