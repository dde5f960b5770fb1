-- One atomic admission over all subjects of a request (see limits/redis.py).
--
-- KEYS, 6 per subject: rpm zset, tpm hash (see tpm_total), concurrency zset, day, month, total budget hashes
-- ARGV: now_ms, tokens, request_id, lease_ms, window_ttl_ms,
--       day_wait_ms, month_wait_ms, total_wait_ms, zero_wait_ms,
--       then 6 limits per subject (rpm, tpm, concurrent, day, month, total; -1 = unlimited)
-- Returns {0, second, 8 values per subject}   admitted: requests, tokens, day, month,
--                                              total after counting, 3 budget generations
--         {1, reason, wait_ms}                 refused, nothing changed
--         {2, {key indexes}}                   budget counters to rebuild first
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local request_id = ARGV[3]
local lease_ms = tonumber(ARGV[4])
local window_ttl_ms = tonumber(ARGV[5])
local budget_wait = {tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])}
local zero_wait = tonumber(ARGV[9])
local budget_reason = {'budget_day', 'budget_month', 'budget_total'}
local window_ms = 60000
local bucket_life = 61
local second = math.floor(now / 1000)
local subjects = #KEYS / 6

local gone = second - bucket_life -- a bucket of this second or older is out of the window

-- A tpm hash: one field per second (the tokens counted in it), 'sum' (the total of those
-- fields) and 'low' (no bucket is older). Out-of-window buckets leave it, and the total
-- of what is left comes back: a handful of calls, not a read of all 61 buckets.
local function tpm_total(key)
  local meta = redis.call('HMGET', key, 'sum', 'low')
  local sum, low = tonumber(meta[1]), tonumber(meta[2])
  if sum ~= nil and low ~= nil and gone - low < 64 then
    if low <= gone then
      for b = low, gone do
        local v = redis.call('HGET', key, b)
        if v then
          sum = sum - tonumber(v)
          redis.call('HDEL', key, b)
        end
      end
      low = gone + 1
      redis.call('HSET', key, 'sum', sum, 'low', low)
    end
    return sum, low
  end
  -- No running total yet (a new hash, or one counted before the total existed), or idle
  -- for over a minute: add the buckets up once.
  local flat = redis.call('HGETALL', key)
  local expired = {}
  sum = 0
  for j = 1, #flat, 2 do
    local b = tonumber(flat[j])
    if b ~= nil then
      if b <= gone then
        expired[#expired + 1] = flat[j]
      else
        sum = sum + tonumber(flat[j + 1])
      end
    end
  end
  if #expired > 0 then
    redis.call('HDEL', key, unpack(expired))
  end
  redis.call('HSET', key, 'sum', sum, 'low', gone + 1)
  return sum, gone + 1
end

-- A missing budget counter is unknown, not zero: nothing is decided before it is rebuilt.
local missing = {}
for i = 0, subjects - 1 do
  for p = 4, 6 do
    if redis.call('EXISTS', KEYS[6 * i + p]) == 0 then
      missing[#missing + 1] = 6 * i + p
    end
  end
end
if #missing > 0 then
  return {2, missing}
end

local wait, reason = -1, false
local function refuse(ms, why)
  if ms > wait then
    wait, reason = ms, why
  end
end

local seen = {}
for i = 0, subjects - 1 do
  local k, a = 6 * i, 9 + 6 * i
  local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local s = {requests = 0, tokens = 0, budget = {}, generation = {}}
  seen[i] = s

  if rpm >= 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now - window_ms)
    local count = redis.call('ZCARD', KEYS[k + 1])
    s.requests = count
    if count >= rpm then
      if rpm == 0 then
        refuse(zero_wait, 'rpm')
      else
        -- The request that has to leave the window is the (count - rpm + 1)-th oldest.
        local oldest = redis.call('ZRANGE', KEYS[k + 1], count - rpm, count - rpm, 'WITHSCORES')
        refuse(tonumber(oldest[2]) + window_ms - now, 'rpm')
      end
    end
  end

  if tpm >= 0 then
    local sum, low = tpm_total(KEYS[k + 2])
    s.tokens, s.tpm_low = sum, low
    local excess = sum + tokens - tpm
    if excess > 0 then
      if tokens > tpm then
        refuse(zero_wait, 'tpm')
      else
        -- Refused: when will enough of the window's tokens have left it?
        local flat = redis.call('HGETALL', KEYS[k + 2])
        local live = {}
        for j = 1, #flat, 2 do
          local b = tonumber(flat[j])
          if b ~= nil and b > gone then
            live[#live + 1] = {b, tonumber(flat[j + 1])}
          end
        end
        table.sort(live, function(x, y) return x[1] < y[1] end)
        local freed = 0
        for _, bucket in ipairs(live) do
          freed = freed + bucket[2]
          if freed >= excess then
            refuse((bucket[1] + bucket_life) * 1000 - now, 'tpm')
            break
          end
        end
      end
    end
  end

  if conc >= 0 then
    -- Expired leases are slots of requests never settled: drop them, never leak.
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    if redis.call('ZCARD', KEYS[k + 3]) >= conc then
      refuse(1000, 'concurrency')
    end
  end

  for p = 1, 3 do
    local limit = tonumber(ARGV[a + 3 + p])
    local counter = redis.call('HMGET', KEYS[k + 3 + p], 't', 'g')
    local spent = tonumber(counter[1]) or 0
    s.budget[p] = spent
    s.generation[p] = counter[2] or ''
    if limit >= 0 and spent + tokens > limit then
      refuse(budget_wait[p], budget_reason[p])
    end
  end
end

if reason then
  return {1, reason, math.ceil(wait)}
end

local reply = {0, second}
for i = 0, subjects - 1 do
  local k, a = 6 * i, 9 + 6 * i
  local s = seen[i]
  if tonumber(ARGV[a + 1]) >= 0 then
    redis.call('ZADD', KEYS[k + 1], now, request_id)
    redis.call('PEXPIRE', KEYS[k + 1], window_ttl_ms)
    s.requests = s.requests + 1
  end
  if tonumber(ARGV[a + 2]) >= 0 then
    redis.call('HINCRBY', KEYS[k + 2], second, tokens)
    redis.call('HINCRBY', KEYS[k + 2], 'sum', tokens)
    if second < s.tpm_low then
      -- A gateway whose clock is behind by over a minute: keep 'low' a true lower bound.
      redis.call('HSET', KEYS[k + 2], 'low', second)
    end
    redis.call('PEXPIRE', KEYS[k + 2], window_ttl_ms)
    s.tokens = s.tokens + tokens
  end
  if tonumber(ARGV[a + 3]) >= 0 then
    redis.call('ZADD', KEYS[k + 3], now + lease_ms, request_id)
    redis.call('PEXPIRE', KEYS[k + 3], lease_ms + window_ttl_ms)
  end
  for p = 1, 3 do
    redis.call('HINCRBY', KEYS[k + 3 + p], 't', tokens)
  end
  local n = #reply
  reply[n + 1] = s.requests
  reply[n + 2] = s.tokens
  reply[n + 3] = s.budget[1] + tokens
  reply[n + 4] = s.budget[2] + tokens
  reply[n + 5] = s.budget[3] + tokens
  reply[n + 6] = s.generation[1]
  reply[n + 7] = s.generation[2]
  reply[n + 8] = s.generation[3]
end
return reply
