-- Settle one reservation (see limits/redis.py). Idempotence is kept by the caller.
--
-- KEYS, 5 per subject: tpm hash, concurrency zset, day, month, total budget hashes
-- ARGV: request_id, delta (used - reserved), used,
--       then 5 per subject: tpm second (-1: not counted), slot (0/1), 3 budget generations
local request_id = ARGV[1]
local delta = tonumber(ARGV[2])
local used = tonumber(ARGV[3])

-- Returns the change made (a counter never goes below zero; a missing one stays missing).
local function add(key, field, amount)
  local value = tonumber(redis.call('HGET', key, field))
  if value then
    local new = value + amount
    if new < 0 then new = 0 end
    redis.call('HSET', key, field, new)
    return new - value
  end
  return 0
end

for i = 0, #KEYS / 5 - 1 do
  local k, a = 5 * i, 3 + 5 * i
  if ARGV[a + 2] == '1' then
    redis.call('ZREM', KEYS[k + 2], request_id)
  end
  if ARGV[a + 1] ~= '-1' then
    -- The tpm hash keeps the total of its buckets in 'sum' (admit.lua, tpm_total).
    local change = add(KEYS[k + 1], ARGV[a + 1], delta)
    if change ~= 0 then
      redis.call('HINCRBY', KEYS[k + 1], 'sum', change)
    end
  end
  for p = 1, 3 do
    local generation = redis.call('HGET', KEYS[k + 2 + p], 'g')
    -- A counter rebuilt since admission never saw the reservation: add the real usage.
    -- A missing one will be rebuilt from the usage records: leave it missing.
    if generation == ARGV[a + 2 + p] then
      add(KEYS[k + 2 + p], 't', delta)
    elseif generation then
      add(KEYS[k + 2 + p], 't', used)
    end
  end
end
return 1
