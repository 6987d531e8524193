-- Konduit.Redis scripts (ADR 004). Every script runs against ONE queue: KEYS[1] is the queue's hash-tagged base
-- name `{prefix:queue}` and every key a script touches is that base plus a suffix, so all of them live in the
-- queue's slot (Redis Cluster-ready). Times are microseconds since the Unix epoch from the server's TIME: the
-- store clock. Arguments arrive as ARGV values, never spliced into script text.
--
-- Key layout under B = KEYS[1]:
--   B:t:<id>  task hash            B:e:<id>  error list ("attempt|at_us|message")
--   B:r       ready, lex zset of <8 hex (maxint - priority)><16 hex run_at><32 hex id>: exact lease order
--   B:d       delayed, zset id by run_at       B:x  running, zset id by lease expiry
--   B:a       all ids (lex)                     B:s<state>  ids by state (lex)      B:n:<tenant>  ids by tenant (lex)
--   B:f<state> terminal ids by finished time   B:ik  idempotency key -> id          B:c  counts by state

-- name: Common
-- Prepended to every script below: key names, the store clock and the index moves every transition shares.
local B = KEYS[1]
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(n) return string.format('%.0f', n) end
local function tkey(id) return B .. ':t:' .. id end
local function ekey(id) return B .. ':e:' .. id end
local function ready_member(prio, runat, id)
  local r = tonumber(runat)
  if r < 0 then r = 0 elseif r > 9007199254740991 then r = 9007199254740991 end
  return string.format('%08x%016x', 2147483647 - tonumber(prio), r) .. id
end
local function move_state(id, from, to)
  redis.call('ZREM', B .. ':s' .. from, id)
  redis.call('ZADD', B .. ':s' .. to, 0, id)
  redis.call('HINCRBY', B .. ':c', from, -1)
  redis.call('HINCRBY', B .. ':c', to, 1)
end
local function make_ready(id, prio, runat, now)
  if tonumber(runat) <= now then
    local m = ready_member(prio, runat, id)
    redis.call('ZADD', B .. ':r', 0, m)
    redis.call('HSET', tkey(id), 'rm', m)
  else
    redis.call('ZADD', B .. ':d', tonumber(runat), id)
    redis.call('HDEL', tkey(id), 'rm')
  end
end
local function finish(id, from, to, now)
  redis.call('HSET', tkey(id), 's', to, 'fa', fmt(now), 'ua', fmt(now))
  redis.call('HDEL', tkey(id), 'le', 'rm')
  redis.call('ZADD', B .. ':f' .. to, now, id)
  move_state(id, from, to)
end
-- nil when (token, Running, not expired) holds; else the task's state, or -1 when it does not exist.
local function lease_invalid(id, token, now)
  local f = redis.call('HMGET', tkey(id), 's', 'tk', 'le')
  if not f[1] then return -1 end
  if f[1] == '1' and f[2] == token and f[3] and now < tonumber(f[3]) then return nil end
  return tonumber(f[1])
end

-- name: Enqueue
-- Idempotency entry, task hash and indexes are written in one script, so a key never names a half-made task.
-- ARGV: wake channel, queue, n, then per task: id, key, priority, run_at_us ('' = now), max, tenant, headers, payload, retry
local now = now_us()
local out = {}
local created = false
for i = 0, tonumber(ARGV[3]) - 1 do
  local o = 3 + i * 9
  local id, key, prio, runat = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local existing = false
  if key ~= '' then existing = redis.call('HGET', B .. ':ik', key) end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 0
  else
    if runat == '' then runat = fmt(now) end
    local t = tkey(id)
    redis.call('HSET', t, 'id', id, 'q', ARGV[2], 's', 0, 'p', prio, 'a', 0, 'm', ARGV[o + 5], 'tk', 0,
      'ra', runat, 'ca', fmt(now), 'ua', fmt(now), 'pl', ARGV[o + 8])
    if key ~= '' then
      redis.call('HSET', B .. ':ik', key, id)
      redis.call('HSET', t, 'k', key)
    end
    if ARGV[o + 6] ~= '' then
      redis.call('HSET', t, 'tn', ARGV[o + 6])
      redis.call('ZADD', B .. ':n:' .. ARGV[o + 6], 0, id)
    end
    if ARGV[o + 7] ~= '' then redis.call('HSET', t, 'hd', ARGV[o + 7]) end
    if ARGV[o + 9] ~= '' then redis.call('HSET', t, 'rp', ARGV[o + 9]) end
    redis.call('ZADD', B .. ':a', 0, id)
    redis.call('ZADD', B .. ':s0', 0, id)
    redis.call('HINCRBY', B .. ':c', 0, 1)
    make_ready(id, prio, runat, now)
    out[#out + 1] = id
    out[#out + 1] = 1
    created = true
  end
end
if created then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return out

-- name: Lease
-- Due delayed tasks move to the ready set first, then the head of the lex-ordered ready set is leased: the fencing
-- token and attempt count are bumped in the same script that hands the task out, so no two callers share a task.
-- ARGV: worker, max count, duration_us
local now = now_us()
local due = redis.call('ZRANGEBYSCORE', B .. ':d', '-inf', fmt(now), 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', B .. ':d', id)
  local f = redis.call('HMGET', tkey(id), 'p', 'ra', 's')
  if f[3] == '0' then make_ready(id, f[1], f[2], now) end
end
local members = redis.call('ZRANGE', B .. ':r', '-', '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[2]))
local exp = now + tonumber(ARGV[3])
local out = {}
for _, m in ipairs(members) do
  redis.call('ZREM', B .. ':r', m)
  local id = string.sub(m, 25)
  local t = tkey(id)
  redis.call('HINCRBY', t, 'a', 1)
  redis.call('HINCRBY', t, 'tk', 1)
  redis.call('HSET', t, 's', 1, 'o', ARGV[1], 'le', fmt(exp), 'ua', fmt(now))
  redis.call('HDEL', t, 'rm')
  if redis.call('HEXISTS', t, 'sa') == 0 then redis.call('HSET', t, 'sa', fmt(now)) end
  redis.call('ZADD', B .. ':x', exp, id)
  move_state(id, 0, 1)
  out[#out + 1] = redis.call('HGETALL', t)
end
return out

-- name: Heartbeat
-- Checks the fencing token and expiry and extends the lease atomically.
-- ARGV: id, token, extension_us
local now = now_us()
local bad = lease_invalid(ARGV[1], ARGV[2], now)
if bad then return {0, bad} end
local exp = now + tonumber(ARGV[3])
redis.call('HSET', tkey(ARGV[1]), 'le', fmt(exp))
redis.call('ZADD', B .. ':x', exp, ARGV[1])
return {1, fmt(exp)}

-- name: Complete
-- Each completion is judged on its own (token, Running, unexpired); 100 = accepted, else the state it was found in.
-- ARGV: n, then per completion: id, token, has_result ('1'/'0'), result
local now = now_us()
local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  local o = 1 + i * 4
  local id = ARGV[o + 1]
  local bad = lease_invalid(id, ARGV[o + 2], now)
  if bad then
    out[#out + 1] = bad
  else
    if ARGV[o + 3] == '1' then redis.call('HSET', tkey(id), 'rs', ARGV[o + 4]) end
    redis.call('ZREM', B .. ':x', id)
    finish(id, 1, 2, now)
    out[#out + 1] = 100
  end
end
return out

-- name: Fail
-- Records the error and either schedules the retry (store clock + the client-resolved delay) or dead-letters.
-- ARGV: id, token, message, retryable ('1'/'0'), delay_us, wake channel
local now = now_us()
local id = ARGV[1]
local bad = lease_invalid(id, ARGV[2], now)
if bad then return {0, bad} end
local t = tkey(id)
local f = redis.call('HMGET', t, 'a', 'm', 'p', 'q')
redis.call('RPUSH', ekey(id), f[1] .. '|' .. fmt(now) .. '|' .. ARGV[3])
redis.call('ZREM', B .. ':x', id)
if ARGV[4] == '1' and tonumber(f[1]) < tonumber(f[2]) then
  local runat = fmt(now + tonumber(ARGV[5]))
  redis.call('HSET', t, 's', 0, 'ra', runat, 'ua', fmt(now))
  redis.call('HDEL', t, 'le')
  move_state(id, 1, 0)
  make_ready(id, f[3], runat, now)
  redis.call('PUBLISH', ARGV[6], f[4])
  return {1, runat}
end
finish(id, 1, 3, now)
return {2, fmt(now)}

-- name: Reclaim
-- The sweeper for one queue: expired leases (expiry <= TIME) go back to Pending or, out of attempts, to Failed.
-- Atomic per queue, so concurrent sweepers reclaim each expired lease exactly once.
-- ARGV: limit, wake channel, queue
local now = now_us()
local ids = redis.call('ZRANGEBYSCORE', B .. ':x', '-inf', fmt(now), 'LIMIT', 0, tonumber(ARGV[1]))
local n = 0
local out = {0, #ids}
for _, id in ipairs(ids) do
  redis.call('ZREM', B .. ':x', id)
  local t = tkey(id)
  local f = redis.call('HMGET', t, 's', 'a', 'm', 'p', 'le', 'tk', 'o', 'tn')
  if f[1] == '1' and f[5] and tonumber(f[5]) <= now then
    redis.call('RPUSH', ekey(id), f[2] .. '|' .. fmt(now) .. '|lease expired')
    local to = 0
    if tonumber(f[2]) >= tonumber(f[3]) then
      finish(id, 1, 3, now)
      to = 3
    else
      redis.call('HSET', t, 's', 0, 'ra', fmt(now), 'ua', fmt(now))
      redis.call('HDEL', t, 'le')
      move_state(id, 1, 0)
      make_ready(id, f[4], fmt(now), now)
    end
    n = n + 1
    -- Per reclaimed task: id, attempt, token, owner, tenant ('' when none), new state.
    for _, v in ipairs({id, f[2], f[6], f[7] or '', f[8] or '', to}) do out[#out + 1] = v end
  end
end
if n > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
out[1] = n
return out

-- name: Cancel
-- Pending or Running -> Canceled (removing it from whichever of ready/delayed/running holds it); 100 = canceled,
-- else the terminal state it was found in, or -1 when unknown.
-- ARGV: id
local now = now_us()
local id = ARGV[1]
local f = redis.call('HMGET', tkey(id), 's', 'rm')
if not f[1] then return -1 end
local s = tonumber(f[1])
if s >= 2 then return s end
if s == 0 then
  if f[2] then redis.call('ZREM', B .. ':r', f[2]) end
  redis.call('ZREM', B .. ':d', id)
else
  redis.call('ZREM', B .. ':x', id)
end
finish(id, s, 4, now)
return 100

-- name: Redrive
-- Failed or Canceled -> Pending, due now, attempts reset, token and errors kept; 100 = done, else the state, or -1.
-- ARGV: id, wake channel, queue
local now = now_us()
local id = ARGV[1]
local t = tkey(id)
local f = redis.call('HMGET', t, 's', 'p')
if not f[1] then return -1 end
local s = tonumber(f[1])
if s ~= 3 and s ~= 4 then return s end
redis.call('HSET', t, 's', 0, 'a', 0, 'ra', fmt(now), 'ua', fmt(now))
redis.call('HDEL', t, 'fa')
redis.call('ZREM', B .. ':f' .. s, id)
move_state(id, s, 0)
make_ready(id, f[2], fmt(now), now)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 100

-- name: Load
-- Reads tasks and their error lists in one consistent step (a snapshot never mixes two versions).
-- ARGV: ids
local out = {}
for _, id in ipairs(ARGV) do
  out[#out + 1] = redis.call('HGETALL', tkey(id))
  out[#out + 1] = redis.call('LRANGE', ekey(id), 0, -1)
end
return out

-- name: Purge
-- Deletes up to `limit` terminal tasks per state that finished at or before TIME - older_than, with every key
-- and index entry they own, and frees their idempotency keys. Returns {deleted, remaining tasks in the queue,
-- then per deleted task: id, tenant ('' when none), state}.
-- ARGV: older_than_us, limit, states...
local now = now_us()
local cutoff = fmt(now - tonumber(ARGV[1]))
local deleted = 0
local gone = {}
for i = 3, #ARGV do
  local s = ARGV[i]
  local ids = redis.call('ZRANGEBYSCORE', B .. ':f' .. s, '-inf', cutoff, 'LIMIT', 0, tonumber(ARGV[2]))
  for _, id in ipairs(ids) do
    local t = tkey(id)
    local f = redis.call('HMGET', t, 'k', 'tn')
    if f[1] and redis.call('HGET', B .. ':ik', f[1]) == id then redis.call('HDEL', B .. ':ik', f[1]) end
    if f[2] then redis.call('ZREM', B .. ':n:' .. f[2], id) end
    redis.call('DEL', t, ekey(id))
    redis.call('ZREM', B .. ':a', id)
    redis.call('ZREM', B .. ':s' .. s, id)
    redis.call('ZREM', B .. ':f' .. s, id)
    redis.call('HINCRBY', B .. ':c', s, -1)
    deleted = deleted + 1
    for _, v in ipairs({id, f[2] or '', s}) do gone[#gone + 1] = v end
  end
end
local c = redis.call('HMGET', B .. ':c', 0, 1, 2, 3, 4)
local total = 0
for i = 1, 5 do total = total + (tonumber(c[i]) or 0) end
if total == 0 then redis.call('DEL', B .. ':c') end
local out = {deleted, total}
for _, v in ipairs(gone) do out[#out + 1] = v end
return out
