-- Settle one reservation (see limits/redis.py). Idempotence is kept by the caller.
--
-- KEYS, 5 per subject: tpm hash, concurrency zset, day, month, total budget hashes
-- ARGV: request_id, delta (used - reserved), used,
--       then 5 per subject: tpm second (-1: not counted), slot (0/1), 3 budget generations
local request_id = ARGV[1]
local delta = tonumber(ARGV[2])
local used = tonumber(ARGV[3])

local function add(key, field, amount)
  local value = tonumber(redis.call('HGET', key, field))
  if value then
    value = value + amount
    if value < 0 then value = 0 end
    redis.call('HSET', key, field, value)
  end
end

for i = 0, #KEYS / 5 - 1 do
  local k, a = 5 * i, 3 + 5 * i
  if ARGV[a + 2] == '1' then
    redis.call('ZREM', KEYS[k + 2], request_id)
  end
  if ARGV[a + 1] ~= '-1' then
    add(KEYS[k + 1], ARGV[a + 1], delta)
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
