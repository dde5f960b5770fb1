-- Backend slots and tenant-fair queues shared by every gateway (upstream/scheduler_redis.py).
-- The queueing rules are those of TenantQueues in upstream/scheduler.py: keep them in step.
--
-- KEYS[1]: the state hash. Every key shares its hash tag, so a cluster keeps them together.
-- ARGV: op, key prefix, policy ('fair' | 'fifo'), lease_ms, instance id, then the op's own.
--
-- Keys under the prefix:
--   state             hash   clock (virtual time of the last grant), seq (arrival counter)
--   tags              hash   tenant -> virtual start of its next grant (tenants that wait)
--   finish            hash   tenant -> virtual end of its last grant
--   tickets           hash   ticket -> "tenant weight seq instance deadline_ms b1,b2,..."
--   q:<tenant>        list   the tenant's queued tickets, oldest first
--   slots:<backend>   zset   ticket -> lease expiry (ms): the backend's slots in use
--   alive             zset   instance -> lease expiry (ms)
--   released          zset   ticket -> expiry (ms): slots released within the last lease
--   grant:<instance>  channel  "<ticket> <backend>" when a queued ticket is given a slot
--
-- A ticket leaves the queue when it is granted, when its gateway calls 'leave', when its
-- deadline passes, or when its gateway's lease in 'alive' lapses (a crashed instance).
-- A slot leaves its set on 'release', 'leave', or when its lease lapses.
local op, prefix, policy = ARGV[1], ARGV[2], ARGV[3]
local lease_ms, instance = tonumber(ARGV[4]), ARGV[5]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local STATE, TAGS, FINISH = KEYS[1], prefix .. 'tags', prefix .. 'finish'
local TICKETS, ALIVE = prefix .. 'tickets', prefix .. 'alive'
local RELEASED = prefix .. 'released'
local PAGE = 16
local VIRTUAL_GRANT = 1000000 -- as in scheduler.py

-- Virtual times are integers kept in doubles: exact up to 2^53, written without exponent.
local function int(x) return string.format('%.0f', x) end

local function slots_key(backend) return prefix .. 'slots:' .. backend end
local function queue_key(tenant) return prefix .. 'q:' .. tenant end

local function parse(raw)
  local tenant, weight, seq, inst, deadline, backends =
    string.match(raw, '^(%S+) (%d+) (%d+) (%S+) (%d+) (%S+)$')
  return {tenant = tenant, weight = tonumber(weight), seq = tonumber(seq), instance = inst,
          deadline = tonumber(deadline), backends = ',' .. backends .. ','}
end

local function accepts(rec, backend)
  return string.find(rec.backends, ',' .. backend .. ',', 1, true) ~= nil
end

local alive_seen = {}
local function alive(inst)
  if alive_seen[inst] == nil then
    local lease = redis.call('ZSCORE', ALIVE, inst)
    alive_seen[inst] = lease ~= false and tonumber(lease) > now
  end
  return alive_seen[inst]
end

local function free(backend, capacity)
  redis.call('ZREMRANGEBYSCORE', slots_key(backend), '-inf', now)
  return redis.call('ZCARD', slots_key(backend)) < capacity
end

-- Out of the queue; a tenant with nothing left waiting loses its tag.
local function drop(ticket, tenant)
  redis.call('HDEL', TICKETS, ticket)
  redis.call('LREM', queue_key(tenant), 1, ticket)
  if redis.call('LLEN', queue_key(tenant)) == 0 then redis.call('HDEL', TAGS, tenant) end
end

-- The tenant's oldest live ticket that can use the backend; drops dead ones on the way.
local function first_accepting(tenant, backend)
  local key, start = queue_key(tenant), 0
  while true do
    local page = redis.call('LRANGE', key, start, start + PAGE - 1)
    if #page == 0 then return nil end
    local dropped = 0
    for _, ticket in ipairs(page) do
      local raw = redis.call('HGET', TICKETS, ticket)
      if not raw then
        drop(ticket, tenant)
        dropped = dropped + 1
      else
        local rec = parse(raw)
        if rec.deadline < now or not alive(rec.instance) then
          drop(ticket, tenant)
          dropped = dropped + 1
        elseif accepts(rec, backend) then
          return ticket, rec
        end
      end
    end
    start = start + #page - dropped
  end
end

-- The next ticket for the backend: lowest tag, then oldest ('fifo': oldest). Removed
-- from its queue; the virtual clock moves to its tag, its tenant's tag on.
local function pick(backend)
  local tags = redis.call('HGETALL', TAGS)
  local best, best_rec, best_tag
  for j = 1, #tags, 2 do
    local tag = tonumber(tags[j + 1])
    local ticket, rec = first_accepting(tags[j], backend)
    if ticket then
      local better = best == nil
      if not better and policy == 'fifo' then
        better = rec.seq < best_rec.seq
      elseif not better then
        better = tag < best_tag or (tag == best_tag and rec.seq < best_rec.seq)
      end
      if better then best, best_rec, best_tag = ticket, rec, tag end
    end
  end
  if not best then return nil end
  local tenant = best_rec.tenant
  drop(best, tenant)
  local finish = best_tag + math.floor(VIRTUAL_GRANT / math.max(1, best_rec.weight))
  redis.call('HSET', STATE, 'clock', int(best_tag))
  redis.call('HSET', FINISH, tenant, int(finish))
  if redis.call('LLEN', queue_key(tenant)) > 0 then
    redis.call('HSET', TAGS, tenant, int(finish))
  end
  return best, best_rec
end

-- Hand the backend's free slots to queued tickets, in policy order.
local function dispatch(backend, capacity)
  if redis.call('HLEN', TICKETS) == 0 then return end
  while free(backend, capacity) do
    local ticket, rec = pick(backend)
    if not ticket then return end
    redis.call('ZADD', slots_key(backend), now + lease_ms, ticket)
    redis.call('PUBLISH', prefix .. 'grant:' .. rec.instance, ticket .. ' ' .. backend)
  end
end

local function enqueue(ticket, tenant, weight, deadline, backends)
  local seq = redis.call('HINCRBY', STATE, 'seq', 1)
  redis.call('HSET', TICKETS, ticket,
    table.concat({tenant, weight, seq, instance, deadline, backends}, ' '))
  redis.call('RPUSH', queue_key(tenant), ticket)
  redis.call('ZADD', ALIVE, now + lease_ms, instance)
  alive_seen[instance] = nil
  if redis.call('HEXISTS', TAGS, tenant) == 0 then
    local clock = tonumber(redis.call('HGET', STATE, 'clock')) or 0
    local last = tonumber(redis.call('HGET', FINISH, tenant)) or 0
    redis.call('HSET', TAGS, tenant, int(math.max(clock, last)))
  end
end

-- Candidate pairs (backend, capacity) from ARGV[first]...
local function pairs_from(first, count)
  local out = {}
  for j = 0, count - 1 do
    out[#out + 1] = {ARGV[first + 2 * j], tonumber(ARGV[first + 2 * j + 1])}
  end
  return out
end

if op == 'acquire' then
  -- ticket, tenant, weight, timeout_ms, max_depth, n, n x (backend, capacity)
  local ticket, tenant, weight = ARGV[6], ARGV[7], ARGV[8]
  local timeout_ms, max_depth = tonumber(ARGV[9]), tonumber(ARGV[10])
  local candidates = pairs_from(12, tonumber(ARGV[11]))
  for _, c in ipairs(candidates) do dispatch(c[1], c[2]) end
  for _, c in ipairs(candidates) do
    if free(c[1], c[2]) then
      redis.call('ZADD', slots_key(c[1]), now + lease_ms, ticket)
      return {'granted', c[1]}
    end
  end
  if redis.call('LLEN', queue_key(tenant)) >= max_depth then
    return {'full'}
  end
  local names = {}
  for _, c in ipairs(candidates) do names[#names + 1] = c[1] end
  enqueue(ticket, tenant, weight, now + timeout_ms + lease_ms, table.concat(names, ','))
  return {'queued'}
elseif op == 'release' then
  -- ticket, backend, capacity
  local removed = redis.call('ZREM', slots_key(ARGV[7]), ARGV[6])
  -- Remembered for a lease, so that a heartbeat sent before this release cannot put
  -- the slot back (see 'tick').
  redis.call('ZADD', RELEASED, now + lease_ms, ARGV[6])
  redis.call('ZREMRANGEBYSCORE', RELEASED, '-inf', now)
  dispatch(ARGV[7], tonumber(ARGV[8]))
  return removed
elseif op == 'leave' then
  -- ticket, n, n x (backend, capacity): out of the queue, or its slot back if granted
  local ticket = ARGV[6]
  local raw = redis.call('HGET', TICKETS, ticket)
  if raw then
    drop(ticket, parse(raw).tenant)
  else
    for _, c in ipairs(pairs_from(8, tonumber(ARGV[7]))) do
      if redis.call('ZREM', slots_key(c[1]), ticket) == 1 then dispatch(c[1], c[2]) end
    end
  end
  return raw and 1 or 0
elseif op == 'tick' then
  -- n_held, n_held x (ticket, backend), n_backends, n_backends x (backend, capacity),
  -- n_waiting, n_waiting x ticket. Returns {held tickets found missing, status per waiting
  -- ticket}
  -- where a status is 'q' (queued), a backend name (granted) or 'x' (gone).
  redis.call('ZADD', ALIVE, now + lease_ms, instance)
  redis.call('ZREMRANGEBYSCORE', ALIVE, '-inf', now - 86400000)
  local clock = tonumber(redis.call('HGET', STATE, 'clock')) or 0
  local finished = redis.call('HGETALL', FINISH)
  for j = 1, #finished, 2 do -- an end before the clock no longer matters
    if tonumber(finished[j + 1]) <= clock then redis.call('HDEL', FINISH, finished[j]) end
  end
  local at = 6
  local lost = {}
  for _ = 1, tonumber(ARGV[at]) do
    local ticket, key = ARGV[at + 1], slots_key(ARGV[at + 2])
    if redis.call('ZSCORE', key, ticket) then
      redis.call('ZADD', key, now + lease_ms, ticket)
    elseif not redis.call('ZSCORE', RELEASED, ticket) then
      -- Missing (Redis lost it, or its lease lapsed) but still in use on the backend:
      -- counted again, even beyond the capacity, until it is released.
      redis.call('ZADD', key, now + lease_ms, ticket)
      lost[#lost + 1] = ticket
    end
    at = at + 2
  end
  local count = tonumber(ARGV[at + 1])
  local backends = pairs_from(at + 2, count)
  at = at + 2 + 2 * count
  local statuses = {}
  local waiting = tonumber(ARGV[at])
  if waiting > 0 then
    for _, c in ipairs(backends) do dispatch(c[1], c[2]) end
  end
  for j = 1, waiting do
    local ticket, status = ARGV[at + j], 'x'
    if redis.call('HEXISTS', TICKETS, ticket) == 1 then
      status = 'q'
    else
      for _, c in ipairs(backends) do
        if redis.call('ZSCORE', slots_key(c[1]), ticket) then status = c[1] end
      end
    end
    statuses[j] = status
  end
  return {lost, statuses}
end
return redis.error_reply('unknown scheduler operation')
