-- Konduit.Redis scripts (ADR 004): a task store on Redis Streams. Every script runs against ONE queue: KEYS[1]
-- is the queue's hash-tagged base name `{prefix:queue}`, and every key a script touches is that base plus a fixed
-- suffix (derived here, never declared one by one), so all of them live in the queue's slot: one slot per
-- script, Redis Cluster-ready. User input (queue, worker, keys, tenants, payloads) arrives only as ARGV values,
-- never spliced into script text. Times are microseconds since the Unix epoch from the server's TIME: the store
-- clock.
--
-- Key layout under B = KEYS[1]:
--   B:q:<prio>  STREAM per priority band; entries {id = <task id>}; consumer group `konduit`, consumer = worker id
--   B:bands     zset: bands whose stream exists (score = priority)    B:ready  zset: bands that may hold undelivered entries
--   B:d         zset: pending tasks not yet due (run-at, retry backoff), scored by run-at
--   B:t:<id>    task hash ('se' = its current stream entry id)       B:e:<id> error list ("attempt|at_us|message")
--               The fields that never change after enqueue are packed into 'i' (issue 16, ADR 004 "Packed immutable
--               fields"): "<created_us>,<max>,<#tenant>,<tenant><#headers>,<headers><retry>" (# = byte length; retry is
--               the compact "initial ticks:max ticks:multiplier:jitter" or ''). Hashes written before the pack keep
--               'm', 'ca', 'tn', 'hd' (JSON), 'rp' (JSON), 'id' and 'q' as separate fields, and every reader accepts both.
--   B:x:<id>:<f> string: the value of field f (pl, i, rs; hd, rp in older hashes) when it is longer than 64 bytes;
--               the hash's 'x' lists those fields ("pl,i"), a spilled 'pl' is absent from the hash and a spilled 'i'
--               is '' there. Kept out of the hash so that it stays listpack-encoded (hash-max-listpack-value 64: one
--               longer value turns the whole hash into a hashtable, ~3.5x the memory; issue 16, ADR 004).
--   B:sl (Pending and Running), B:s2/3/4 (terminal states), B:n:<tenant>: lex zsets of ids (query; each task is in
--   exactly one of B:sl/s2/s3/s4, so a lease moves no index entry)   B:f3, B:f4 Failed, Canceled ids by finish
--               time (purge; Completed has no such zset: purge walks B:s2, see Purge)
--   B:ik        hash idempotency key -> id                          B:c  hash counts by state (stats), and 'sk':
--               how far client-clock task ids ran ahead of TIME, in us ('u' or absent: unknown; see Purge)
--   B:paused    string, present while the queue is paused (Lease returns nothing); {prefix}:paused lists paused queues
-- and, under KEYS[2] = I = `{prefix#n}`, a base chosen so that it hashes to the queue's slot (ADR 004, "Finding a
-- task by id"): I:ids  hash id -> queue of every task whose id carries that slot (the id's last 14 bits). Only the
-- scripts that create or delete tasks (Enqueue, Purge) are given I.
--
-- A pending due task has exactly one undelivered stream entry; a running task has exactly one entry in the
-- group's pending entries list (PEL), owned by the consumer `<worker>|<lease ms>`: XREADGROUP (lease) and XCLAIM
-- ... JUSTID (heartbeat, to `<worker>|<extension ms>`) set its delivery time to now, so its idle time reaches the
-- consumer's lease length exactly at expiry and `XPENDING ... IDLE <ms> - + n <consumer>` lists exactly that
-- consumer's expired leases (ADR 004). Idle times are true: time since the lease or the last heartbeat.
-- Finishing (complete, fail, cancel, reclaim) XACKs and XDELs the entry; an emptied stream is deleted.

-- name: Common
-- Prepended to every script below: key names, the store clock, stream entries and the index moves every
-- transition shares. Hot paths (enqueue, lease, complete) gather ids and send one variadic command per index per
-- batch (in chunks, below Lua's unpack limit) rather than one per task.
local B = KEYS[1]
local G = 'konduit'
local CHUNK = 500
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function fmt(n) return string.format('%.0f', n) end
local function tkey(id) return B .. ':t:' .. id end
local function ekey(id) return B .. ':e:' .. id end
local function skey(p) return B .. ':q:' .. p end
-- Values longer than this go to their own string key (above), so the task hash stays listpack-encoded.
local SPILL = 64
local function xkey(id, f) return B .. ':x:' .. id .. ':' .. f end
local function spilled(x, f) return x and string.find(',' .. x .. ',', ',' .. f .. ',', 1, true) ~= nil end
-- The full value of field f, given the hash's value v and spill list x.
local function full(id, f, v, x)
  if spilled(x, f) then return redis.call('GET', xkey(id, f)) end
  return v
end
-- Adds field f = v to the HSET argument table h, or writes v to its own key and records f in the spill list xs.
local function put(h, id, f, v, xs)
  if #v > SPILL then
    redis.call('SET', xkey(id, f), v)
    xs[#xs + 1] = f
  else
    h[#h + 1] = f
    h[#h + 1] = v
  end
end
-- Deletes a task's spilled values.
local function drop_spilled(id, x)
  if not x then return end
  for f in string.gmatch(x, '[^,]+') do redis.call('DEL', xkey(id, f)) end
end
-- The packed immutable fields of a task, given the hash's 'i' (nil for a hash from before the pack): '' means the
-- pack is longer than SPILL and lives in its own key.
local function pack_of(id, i)
  if i == '' then return redis.call('GET', xkey(id, 'i')) end
  return i
end
-- Max attempts and tenant ('' = none) from a pack; a hash from before the pack gives them as fields m and tn.
local function max_tenant(id, i, m, tn)
  if not i then return m, tn or '' end
  local p = pack_of(id, i)
  local mx, n, pos = string.match(p, '^%d+,(%d+),(%d+),()')
  return mx, string.sub(p, pos, pos + tonumber(n) - 1)
end
-- redis.call(cmd, head..., items[i..], tail...) in chunks of CHUNK items (head and tail are tables).
local function call_many(head, items, tail)
  local i, n = 1, #items
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    local args = {}
    for _, v in ipairs(head) do args[#args + 1] = v end
    for k = i, j do args[#args + 1] = items[k] end
    for _, v in ipairs(tail or {}) do args[#args + 1] = v end
    redis.call(unpack(args))
    i = j + 1
  end
end
-- ZADD key score id for every id (one score for all).
local function zadd_many(key, score, ids)
  local i, n = 1, #ids
  while i <= n do
    local j = math.min(i + CHUNK - 1, n)
    local args = {}
    for k = i, j do
      args[#args + 1] = score
      args[#args + 1] = ids[k]
    end
    redis.call('ZADD', key, unpack(args))
    i = j + 1
  end
end
-- The query index of a state: one set for the live states (Pending, Running), one per terminal state.
local function sset(s)
  s = tonumber(s)
  if s <= 1 then return B .. ':sl' end
  return B .. ':s' .. s
end
local function move_state_many(ids, from, to)
  if #ids == 0 then return end
  if sset(from) ~= sset(to) then
    call_many({'ZREM', sset(from)}, ids)
    zadd_many(sset(to), 0, ids)
  end
  redis.call('HINCRBY', B .. ':c', from, -#ids)
  redis.call('HINCRBY', B .. ':c', to, #ids)
end
local function move_state(id, from, to) move_state_many({id}, from, to) end
-- Creates a band's stream and group if missing and marks the band as existing and ready (`seen` caches bands
-- already ensured by this script).
local function ensure_band(p, seen)
  if seen and seen[p] then return end
  local sk = skey(p)
  if redis.call('EXISTS', sk) == 0 then
    redis.call('XGROUP', 'CREATE', sk, G, '0', 'MKSTREAM')
  end
  redis.call('ZADD', B .. ':bands', p, p)
  redis.call('ZADD', B .. ':ready', p, p)
  if seen then seen[p] = true end
end
-- Appends a fresh entry for a due task at the tail of its priority band's stream (creating stream and group).
local function push(id, p)
  ensure_band(p)
  redis.call('HSET', tkey(id), 'se', redis.call('XADD', skey(p), '*', 'id', id))
end
-- Acknowledges and deletes entries of one band, and deletes its stream once it holds no entry at all.
-- Deletes band p's stream (and its group) once it holds no entry at all, so idle bands leave no key behind.
local function drop_band_if_empty(p, sk)
  if redis.call('XLEN', sk) == 0 then
    redis.call('DEL', sk)
    redis.call('ZREM', B .. ':bands', p)
    redis.call('ZREM', B .. ':ready', p)
  end
end
local function drop_entries(p, eids)
  local sk = skey(p)
  if redis.call('EXISTS', sk) == 1 then
    call_many({'XACK', sk, G}, eids)
    call_many({'XDEL', sk}, eids)
    drop_band_if_empty(p, sk)
  end
end
-- Acknowledges and deletes a task's entry, and deletes its band's stream once it holds no entry at all.
local function drop_entry(id, p, eid)
  if eid then
    drop_entries(p, {eid})
    redis.call('HDEL', tkey(id), 'se')
  end
end
local function make_ready(id, p, runat, now)
  if tonumber(runat) <= now then
    push(id, p)
  else
    redis.call('ZADD', B .. ':d', runat, id)
  end
end
-- Moves up to `limit` delayed tasks that are due into their streams, earliest run-at first.
local function promote_due(now, limit)
  local due = redis.call('ZRANGEBYSCORE', B .. ':d', '-inf', fmt(now), 'LIMIT', 0, limit)
  if #due == 0 then return 0 end
  call_many({'ZREM', B .. ':d'}, due)
  for _, id in ipairs(due) do
    local f = redis.call('HMGET', tkey(id), 's', 'p', 'se')
    if f[1] == '0' and not f[3] then push(id, f[2]) end
  end
  return #due
end
local function finish(id, from, to, now)
  redis.call('HSET', tkey(id), 's', to, 'fa', fmt(now), 'ua', fmt(now))
  redis.call('HDEL', tkey(id), 'le')
  redis.call('ZADD', B .. ':f' .. to, now, id)
  move_state(id, from, to)
end
-- The consumer that holds a lease of `us` microseconds for `worker`: its name carries the lease length in ms.
local function consumer(worker, us) return worker .. '|' .. fmt(math.floor(tonumber(us) / 1000)) end
-- Moves running tasks' entries of one band to the consumer of a renewed lease (XCLAIM ... JUSTID: delivery time
-- now, no delivery counted), one command per chunk of entries.
local function pel_renew_many(p, name, eids)
  call_many({'XCLAIM', skey(p), G, name, 0}, eids, {'JUSTID'})
end
-- nil when (token, Running, not expired) holds in f = HMGET(s, tk, le, ...); else the task's state, or -1 when it
-- does not exist.
local function lease_check(f, token, now)
  if not f[1] then return -1 end
  if f[1] == '1' and f[2] == token and f[3] and now < tonumber(f[3]) then return nil end
  return tonumber(f[1])
end
local function lease_invalid(id, token, now)
  return lease_check(redis.call('HMGET', tkey(id), 's', 'tk', 'le'), token, now)
end

-- The lease (block Lease below): `want` tasks for `worker`, `dur` microseconds (a string, as in ARGV).
local function lease_many(now, worker, want, dur)
  -- A paused queue (B:paused, set by PauseQueueAsync) leases nothing: one EXISTS in the queue's own slot.
  if redis.call('EXISTS', B .. ':paused') == 1 then return {fmt(now)} end
  promote_due(now, 1000)
  local exp = now + tonumber(dur)
  local sexp, snow = fmt(exp), fmt(now)
  local name = consumer(worker, dur)
  local out = {sexp}
  local leased = {}
  local bands = redis.call('ZREVRANGE', B .. ':ready', 0, -1)
  for _, p in ipairs(bands) do
    if #leased >= want then break end
    local sk = skey(p)
    while #leased < want do
      if redis.call('EXISTS', sk) == 0 then
        redis.call('ZREM', B .. ':ready', p)
        redis.call('ZREM', B .. ':bands', p)
        break
      end
      local k = want - #leased
      local r = redis.call('XREADGROUP', 'GROUP', G, name, 'COUNT', k, 'STREAMS', sk, '>')
      local entries = {}
      if r then entries = r[1][2] end
      local claimed, stray = {}, {}
      for _, e in ipairs(entries) do
        local eid, id = e[1], e[2][2]
        local t = tkey(id)
        -- 8 fields: the immutable ones come packed in 'i' and go to the client unparsed (issue 16).
        local f = redis.call('HMGET', t, 's', 'se', 'a', 'tk', 'sa', 'ra', 'pl', 'i')
        if f[1] == '0' and f[2] == eid then
          -- The token is max(stored + 1, TIME in µs): if the server loses acknowledged writes (fsync window,
          -- failover to a lagging replica) and the hash rolls back, the clock has still moved on, so a token is
          -- never handed out twice (issue 13, item 1; ADR 004 "What the store promises under data loss").
          local a, tk = fmt(tonumber(f[3]) + 1), fmt(math.max(tonumber(f[4]) + 1, now))
          if f[5] then
            redis.call('HSET', t, 's', 1, 'a', a, 'tk', tk, 'o', worker, 'le', sexp, 'ua', snow)
          else
            redis.call('HSET', t, 's', 1, 'a', a, 'tk', tk, 'o', worker, 'le', sexp, 'ua', snow, 'sa', snow)
          end
          claimed[#claimed + 1] = eid
          leased[#leased + 1] = id
          local n = #out
          out[n + 1] = id
          out[n + 2] = tk
          out[n + 3] = a
          -- A payload absent from the hash is spilled (both versions always write 'pl' otherwise).
          out[n + 4] = f[7] or redis.call('GET', xkey(id, 'pl')) or ''
          out[n + 5] = p
          out[n + 6] = f[6]
          if f[8] then
            out[n + 7] = pack_of(id, f[8])
          else
            -- Written by the version before the pack: the same layout, built from the separate fields.
            local g = redis.call('HMGET', t, 'ca', 'm', 'tn', 'hd', 'rp', 'x')
            local tn, hd = g[3] or '', full(id, 'hd', g[4], g[6]) or ''
            out[n + 7] = g[1] .. ',' .. g[2] .. ',' .. #tn .. ',' .. tn .. #hd .. ',' .. hd .. (full(id, 'rp', g[5], g[6]) or '')
          end
        else
          -- Not this task's current entry (cannot happen through the store; tolerated): drop it.
          stray[#stray + 1] = eid
        end
      end
      if #stray > 0 then
        call_many({'XACK', sk, G}, stray)
        call_many({'XDEL', sk}, stray)
      end
      if #entries < k then
        -- Nothing undelivered left in this band; an XADD puts it back.
        redis.call('ZREM', B .. ':ready', p)
        drop_band_if_empty(p, sk)
        break
      end
    end
  end
  move_state_many(leased, 0, 1)
  return out
end
-- The completions (block Complete below): `n` of them in ARGV from index base + 1, 4 values each.
local function complete_many(now, n, base)
  local snow = fmt(now)
  local out = {}
  local done = {}
  local byband = {}
  local bandlist = {}
  for i = 0, n - 1 do
    local o = base + i * 4
    local id = ARGV[o + 1]
    local t = tkey(id)
    local f = redis.call('HMGET', t, 's', 'tk', 'le', 'p', 'se', 'x')
    local bad = lease_check(f, ARGV[o + 2], now)
    if bad then
      out[#out + 1] = bad
    else
      if ARGV[o + 3] == '1' and #ARGV[o + 4] > SPILL then
        redis.call('SET', xkey(id, 'rs'), ARGV[o + 4])
        redis.call('HSET', t, 's', 2, 'fa', snow, 'ua', snow, 'x', f[6] and (f[6] .. ',rs') or 'rs')
      elseif ARGV[o + 3] == '1' then
        redis.call('HSET', t, 's', 2, 'fa', snow, 'ua', snow, 'rs', ARGV[o + 4])
      else
        redis.call('HSET', t, 's', 2, 'fa', snow, 'ua', snow)
      end
      -- 'le' and 'se' stay: only a Running task's are ever read (lease checks, sweeper, snapshots), and no
      -- path makes a Completed task Running again without writing both.
      if f[5] then
        local list = byband[f[4]]
        if not list then
          list = {}
          byband[f[4]] = list
          bandlist[#bandlist + 1] = f[4]
        end
        list[#list + 1] = f[5]
      end
      done[#done + 1] = id
      out[#out + 1] = 100
    end
  end
  for _, p in ipairs(bandlist) do drop_entries(p, byband[p]) end
  -- No finish-time zset for Completed (one ZADD per task less, issue 16): purge walks B:s2 and reads 'fa'.
  if #done > 0 then move_state_many(done, 1, 2) end
  return out
end

-- name: Enqueue
-- Idempotency entry, task hash, indexes and the stream entry (or delayed-set entry) are written in one script,
-- so a key never names a half-made task and a task is never visible without its entry. One HSET per task; the
-- id indexes and counts take one command per batch.
-- An idempotency key whose task hash is gone (deleted by any route but Purge, e.g. a manual DEL) counts as free
-- (issue 13, item 7). The id -> queue entry goes into I:ids in the same script, so a created task is always
-- findable by id. Returns {id, created, ...} and last 1 when the queue held no task before (its counts hash did
-- not exist): the caller then registers the queue again, since a purge may have unregistered it.
-- The hash holds the mutable fields and 'i', the immutable ones packed (created = TIME, then the client's part):
-- a lease reads 8 fields instead of 13 (issue 16). Id and queue are not stored: the key names both.
-- ARGV: wake channel, queue, n, then per task: id, key, priority, run_at_us ('' = now), tenant,
--   pack tail ("<max>,<#tenant>,<tenant><#headers>,<headers><retry>", see the key layout), payload
local now = now_us()
local fresh = redis.call('EXISTS', B .. ':c') == 0 and 1 or 0
local snow = fmt(now)
local out = {}
local made = {}
local seen = {}
local newest = 0
for i = 0, tonumber(ARGV[3]) - 1 do
  local o = 3 + i * 7
  local id, key, prio, runat = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local existing = false
  if key ~= '' then existing = redis.call('HGET', B .. ':ik', key) end
  if existing and redis.call('EXISTS', tkey(existing)) == 0 then existing = false end
  if existing then
    out[#out + 1] = existing
    out[#out + 1] = 0
  else
    if runat == '' then runat = snow end
    local t = tkey(id)
    local h = {'HSET', t, 's', 0, 'p', prio, 'a', 0, 'tk', 0, 'ra', runat, 'ua', snow}
    local xs = {}
    put(h, id, 'pl', ARGV[o + 7], xs)
    local pack = snow .. ',' .. ARGV[o + 6]
    if #pack > SPILL then
      -- '' marks a spilled pack (a pack always starts with digits).
      redis.call('SET', xkey(id, 'i'), pack)
      xs[#xs + 1] = 'i'
      pack = ''
    end
    h[#h + 1] = 'i'
    h[#h + 1] = pack
    if key ~= '' then
      redis.call('HSET', B .. ':ik', key, id)
      h[#h + 1] = 'k'
      h[#h + 1] = key
    end
    if ARGV[o + 5] ~= '' then redis.call('ZADD', B .. ':n:' .. ARGV[o + 5], 0, id) end
    if #xs > 0 then
      h[#h + 1] = 'x'
      h[#h + 1] = table.concat(xs, ',')
    end
    if tonumber(runat) <= now then
      ensure_band(prio, seen)
      h[#h + 1] = 'se'
      h[#h + 1] = redis.call('XADD', skey(prio), '*', 'id', id)
    else
      redis.call('ZADD', B .. ':d', runat, id)
    end
    redis.call(unpack(h))
    redis.call('HSET', KEYS[2] .. ':ids', id, ARGV[2])
    -- The id's first 48 bits are its client clock in ms (UUIDv7), kept for the skew below.
    newest = math.max(newest, tonumber(string.sub(id, 1, 12), 16))
    made[#made + 1] = id
    out[#out + 1] = id
    out[#out + 1] = 1
  end
end
if #made > 0 then
  zadd_many(sset(0), 0, made)
  -- 'sk' = the most any id ran ahead of TIME, so purge knows where Completed ids pass its cutoff; a queue made by an
  -- older version has no 'sk' and may hold ids ahead by any amount: marked 'u' (unknown) until it empties.
  local skew = newest * 1000 - now
  local sk = fresh == 0 and redis.call('HGET', B .. ':c', 'sk')
  if fresh == 1 or (sk and sk ~= 'u' and skew > tonumber(sk)) then
    redis.call('HSET', B .. ':c', 'sk', fmt(skew))
  elseif not sk then
    redis.call('HSET', B .. ':c', 'sk', 'u')
  end
  redis.call('HINCRBY', B .. ':c', 0, #made)
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
out[#out + 1] = fresh
return out

-- name: Lease
-- Moves due delayed tasks into their streams, then reads new entries with XREADGROUP band by band, highest
-- priority first, as the consumer `<worker>|<duration ms>` (so the PEL itself tells when each lease expires: no
-- XCLAIM). Each entry read is checked against its task hash, and the fencing token, attempt count, owner and
-- expiry are set in the same script: no two callers ever receive one task.
-- ARGV: worker, max count, duration_us
-- Returns {expiry_us, then per task: id, token, attempt, payload, priority, run_at, pack} (the pack: see the key
-- layout; for a hash from before the pack it is built here from the separate fields, with the retry policy as JSON).
return lease_many(now_us(), ARGV[1], tonumber(ARGV[2]), ARGV[3])

-- name: Heartbeat
-- Checks the fencing token and expiry and extends the lease atomically: the task hash holds the expiry, and the
-- PEL entry moves to the consumer `<worker>|<extension ms>` with delivery time now (XCLAIM JUSTID: no delivery
-- counted), so the sweeper's XPENDING IDLE scan does not see a lease that a heartbeat kept alive.
-- ARGV: id, token, extension_us
local now = now_us()
local t = tkey(ARGV[1])
local f = redis.call('HMGET', t, 's', 'tk', 'le', 'p', 'o', 'se')
local bad = lease_check(f, ARGV[2], now)
if bad then return {0, bad} end
local exp = now + tonumber(ARGV[3])
redis.call('HSET', t, 'le', fmt(exp))
if f[6] then pel_renew_many(f[4], consumer(f[5], ARGV[3]), {f[6]}) end
return {1, fmt(exp)}

-- name: HeartbeatMany
-- Heartbeat for a batch of one queue's leases: each is judged on its own (token, Running, unexpired); the
-- renewed ones get one expiry, and their PEL entries move with one XCLAIM per (band, worker).
-- ARGV: n, extension_us, then per lease: id, token
-- Returns {expiry_us, then per lease: 1 (renewed) or 0 (lost)}.
local now = now_us()
local exp = now + tonumber(ARGV[2])
local sexp = fmt(exp)
local out = {sexp}
local groups, order = {}, {}
for i = 0, tonumber(ARGV[1]) - 1 do
  local id, token = ARGV[3 + i * 2], ARGV[4 + i * 2]
  local t = tkey(id)
  local f = redis.call('HMGET', t, 's', 'tk', 'le', 'p', 'o', 'se')
  if lease_check(f, token, now) then
    out[#out + 1] = 0
  else
    redis.call('HSET', t, 'le', sexp)
    if f[6] then
      local g = f[4] .. '|' .. f[5]
      local list = groups[g]
      if not list then
        list = {p = f[4], o = f[5]}
        groups[g] = list
        order[#order + 1] = g
      end
      list[#list + 1] = f[6]
    end
    out[#out + 1] = 1
  end
end
for _, g in ipairs(order) do
  local list = groups[g]
  pel_renew_many(list.p, consumer(list.o, ARGV[2]), list)
end
return out

-- name: Complete
-- Each completion is judged on its own (token, Running, unexpired); 100 = accepted, else the state it was found
-- in. Accepted ones are written one HSET per task; their entries are XACKed and XDELed with one command
-- per band, and the indexes and counts moved with one command per batch.
-- ARGV: n, then per completion: id, token, has_result ('1'/'0'), result
return complete_many(now_us(), tonumber(ARGV[1]), 1)

-- name: CompleteAndLease
-- CompleteAsync then LeaseAsync of the same queue in one script and one round trip (ITaskStore.CompleteAndLeaseAsync,
-- issue 16): the unbatched worker's cycle. The completion is judged as in Complete (a lost lease changes nothing and
-- the lease half runs all the same), and the lease half is Lease exactly (a paused queue leases nothing).
-- ARGV: worker, max count, duration_us, 1, then id, token, has_result ('1'/'0'), result
-- Returns {completion outcome (100 = accepted, else the state found), then Lease's reply}.
local now = now_us()
local done = complete_many(now, tonumber(ARGV[4]), 4)
local out = lease_many(now, ARGV[1], tonumber(ARGV[2]), ARGV[3])
table.insert(out, 1, done[1])
return out

-- name: Fail
-- Records the error, acknowledges the entry, and either schedules the retry (store clock + the client-resolved
-- delay: a fresh stream entry when due now, else the delayed set) or dead-letters.
-- ARGV: id, token, message, retryable ('1'/'0'), delay_us, wake channel, queue
local now = now_us()
local id = ARGV[1]
local bad = lease_invalid(id, ARGV[2], now)
if bad then return {0, bad} end
local t = tkey(id)
local f = redis.call('HMGET', t, 'a', 'm', 'p', 'i', 'se')
local max = max_tenant(id, f[4], f[2])
redis.call('RPUSH', ekey(id), f[1] .. '|' .. fmt(now) .. '|' .. ARGV[3])
drop_entry(id, f[3], f[5])
if ARGV[4] == '1' and tonumber(f[1]) < tonumber(max) then
  local runat = fmt(now + tonumber(ARGV[5]))
  redis.call('HSET', t, 's', 0, 'ra', runat, 'ua', fmt(now))
  redis.call('HDEL', t, 'le')
  move_state(id, 1, 0)
  make_ready(id, f[3], runat, now)
  if tonumber(runat) <= now then redis.call('PUBLISH', ARGV[6], ARGV[7]) end
  return {1, runat}
end
finish(id, 1, 3, now)
return {2, fmt(now)}

-- name: Reclaim
-- The sweeper for one queue. Moves due delayed tasks into their streams; then, band by band and consumer by
-- consumer, reads the PEL entries idle for at least the consumer's lease length (XPENDING IDLE <ms> ... <consumer>:
-- the expired leases; a consumer name without a length, from before lengths were encoded, uses pel_base_ms, the
-- 1-day window of the older expiry stamps), re-checks each against its task hash (Running, this entry, expiry <= TIME), XACKs and XDELs it and
-- either appends a fresh entry (Pending, due now) or dead-letters the task when its attempts are used up. Idle
-- consumers without pending entries are removed from the group. Atomic per queue, so concurrent sweepers
-- reclaim each expired lease exactly once.
-- ARGV: limit, wake channel, queue, pel_base_ms, consumer_idle_ms
-- Returns {more (0/1), {id, tenant, attempt, token, worker, new state, ...}}.
local now = now_us()
local limit = tonumber(ARGV[1])
local wake = promote_due(now, limit) > 0
local more = 0
local out = {}
local bands = redis.call('ZRANGE', B .. ':bands', 0, -1)
for _, p in ipairs(bands) do
  local sk = skey(p)
  if redis.call('EXISTS', sk) == 0 then
    redis.call('ZREM', B .. ':bands', p)
    redis.call('ZREM', B .. ':ready', p)
  else
    local pending = {}
    local full = false
    for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', sk, G)) do
      local info = {}
      for j = 1, #c, 2 do info[c[j]] = c[j + 1] end
      if tonumber(info['pending']) > 0 and #pending < limit then
        local ms = tonumber(string.match(info['name'], '|(%d+)$') or ARGV[4])
        local got = redis.call('XPENDING', sk, G, 'IDLE', ms, '-', '+', limit - #pending, info['name'])
        for _, pe in ipairs(got) do pending[#pending + 1] = pe end
        if #pending >= limit then full = true end
      end
    end
    local reclaimed = 0
    for _, pe in ipairs(pending) do
      local eid = pe[1]
      local entry = redis.call('XRANGE', sk, eid, eid)
      local id = entry[1] and entry[1][2][2]
      local f = id and redis.call('HMGET', tkey(id), 's', 'se', 'le', 'a', 'm', 'tk', 'o', 'tn', 'i')
      if f and f[1] == '1' and f[2] == eid then f[5], f[8] = max_tenant(id, f[9], f[5], f[8]) end
      if not f or f[1] ~= '1' or f[2] ~= eid then
        -- An entry that no longer belongs to a running task (cannot happen through the store): drop it.
        redis.call('XACK', sk, G, eid)
        redis.call('XDEL', sk, eid)
      elseif tonumber(f[3]) <= now then
        local t = tkey(id)
        redis.call('RPUSH', ekey(id), f[4] .. '|' .. fmt(now) .. '|lease expired')
        local state
        if tonumber(f[4]) >= tonumber(f[5]) then
          drop_entry(id, p, eid)
          finish(id, 1, 3, now)
          state = 3
        else
          redis.call('HSET', t, 's', 0, 'ra', fmt(now), 'ua', fmt(now))
          redis.call('HDEL', t, 'le')
          move_state(id, 1, 0)
          push(id, p)
          redis.call('XACK', sk, G, eid)
          redis.call('XDEL', sk, eid)
          state = 0
          wake = true
        end
        out[#out + 1] = id
        out[#out + 1] = f[8] or ''
        out[#out + 1] = f[4]
        out[#out + 1] = f[6]
        out[#out + 1] = f[7] or ''
        out[#out + 1] = state
        reclaimed = reclaimed + 1
      end
    end
    if full and reclaimed > 0 then more = 1 end
    if redis.call('EXISTS', sk) == 1 then
      local consumers = redis.call('XINFO', 'CONSUMERS', sk, G)
      for _, c in ipairs(consumers) do
        local info = {}
        for j = 1, #c, 2 do info[c[j]] = c[j + 1] end
        if tonumber(info['pending']) == 0 and tonumber(info['idle']) >= tonumber(ARGV[5]) then
          redis.call('XGROUP', 'DELCONSUMER', sk, G, info['name'])
        end
      end
      drop_band_if_empty(p, sk)
    end
  end
end
if wake then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return {more, out}

-- name: ExpireLease
-- The sweeper's transition (Reclaim, above) for one named lease: fenced by (Running, token) instead of by PEL idle
-- time, since the caller (a lease monitor) decided the lease is dead; a re-leased task carries a newer token.
-- ARGV: id, token, wake channel, queue
-- Returns {0, state or -1} when that lease is not current, else {1, tenant, attempt, token, worker, new state}.
local now = now_us()
local id = ARGV[1]
local t = tkey(id)
local f = redis.call('HMGET', t, 's', 'tk', 'a', 'm', 'p', 'se', 'o', 'tn', 'i')
if not f[1] then return {0, -1} end
if f[1] ~= '1' or f[2] ~= ARGV[2] then return {0, tonumber(f[1])} end
f[4], f[8] = max_tenant(id, f[9], f[4], f[8])
redis.call('RPUSH', ekey(id), f[3] .. '|' .. fmt(now) .. '|lease expired')
local state
if tonumber(f[3]) >= tonumber(f[4]) then
  drop_entry(id, f[5], f[6])
  finish(id, 1, 3, now)
  state = 3
else
  redis.call('HSET', t, 's', 0, 'ra', fmt(now), 'ua', fmt(now))
  redis.call('HDEL', t, 'le')
  move_state(id, 1, 0)
  -- The fresh entry first, then the old one acknowledged: the band's stream never empties in between.
  push(id, f[5])
  if f[6] then
    local sk = skey(f[5])
    redis.call('XACK', sk, G, f[6])
    redis.call('XDEL', sk, f[6])
  end
  redis.call('PUBLISH', ARGV[3], ARGV[4])
  state = 0
end
return {1, f[8] or '', f[3], f[2], f[7] or '', state}

-- name: Cancel
-- Pending or Running -> Canceled: its stream entry (undelivered, or in the PEL) is acknowledged and deleted, or
-- its delayed-set entry removed. 100 = canceled, else the terminal state it was found in, or -1 when unknown.
-- ARGV: id
local now = now_us()
local id = ARGV[1]
local f = redis.call('HMGET', tkey(id), 's', 'p', 'se')
if not f[1] then return -1 end
local s = tonumber(f[1])
if s >= 2 then return s end
drop_entry(id, f[2], f[3])
redis.call('ZREM', B .. ':d', id)
finish(id, s, 4, now)
return 100

-- name: Redrive
-- Failed or Canceled -> Pending, due now (a fresh stream entry), attempts reset, token and errors kept;
-- 100 = done, else the state, or -1.
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
push(id, f[2])
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 100

-- name: Load
-- Reads tasks and their error lists in one consistent step (a snapshot never mixes two versions).
-- ARGV: ids
local out = {}
-- Spilled values (B:x:<id>:<f>) are appended to the hash's fields, so a reader sees every field in one list.
for _, id in ipairs(ARGV) do
  local h = redis.call('HGETALL', tkey(id))
  for i = 1, #h, 2 do
    if h[i] == 'x' then
      for f in string.gmatch(h[i + 1], '[^,]+') do
        h[#h + 1] = f
        h[#h + 1] = redis.call('GET', xkey(id, f))
      end
      break
    end
  end
  out[#out + 1] = h
  out[#out + 1] = redis.call('LRANGE', ekey(id), 0, -1)
end
return out

-- name: Stats
-- One queue's counts by state, with Pending split at TIME into due and scheduled, and the run-at of the oldest due
-- task: the earliest of the delayed set's due entries (due, not yet moved into a stream) and of each band's first
-- undelivered entry (a band hands out in the order tasks became due, so its head is its oldest). Reads only: a
-- handful of commands per band, never a walk over the queue.
-- Returns {c0, c1, c2, c3, c4, scheduled, oldest due run_at_us ('' = none)}.
local now = now_us()
local c = redis.call('HMGET', B .. ':c', 0, 1, 2, 3, 4)
local out = {}
for i = 1, 5 do out[i] = tonumber(c[i]) or 0 end
out[6] = redis.call('ZCOUNT', B .. ':d', '(' .. fmt(now), '+inf')
local oldest = nil
local d = redis.call('ZRANGEBYSCORE', B .. ':d', '-inf', fmt(now), 'WITHSCORES', 'LIMIT', 0, 1)
if d[2] then oldest = tonumber(d[2]) end
for _, p in ipairs(redis.call('ZRANGE', B .. ':bands', 0, -1)) do
  local sk = skey(p)
  if redis.call('EXISTS', sk) == 1 then
    local last = nil
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', sk)) do
      local info = {}
      for j = 1, #g, 2 do info[g[j]] = g[j + 1] end
      if info['name'] == G then last = info['last-delivered-id'] end
    end
    if last then
      local head = redis.call('XRANGE', sk, '(' .. last, '+', 'COUNT', 1)
      if head[1] then
        local ra = redis.call('HGET', tkey(head[1][2][2]), 'ra')
        if ra and (not oldest or tonumber(ra) < oldest) then oldest = tonumber(ra) end
      end
    end
  end
end
out[7] = oldest and fmt(oldest) or ''
return out

-- name: Purge
-- Deletes up to `limit` terminal tasks per state that finished at or before TIME - older_than, with every key
-- and index entry they own (terminal tasks own no stream entry), and frees their idempotency keys. Failed and
-- Canceled come from their finish-time zsets. Completed has none: B:s2 (its ids, lex = client-clock order) is
-- walked from the cursor, at most WALK ids per call, reading each task's 'fa'. A task is created before it
-- finishes, and its id is at most 'sk' ahead of TIME at creation, so an id past cutoff + sk finished after the
-- cutoff: the walk ends there. With 'sk' unknown (a queue from an older version) it ends at the last id, and the
-- B:f2 the older version wrote is drained first. Ids made before the cutoff that finished after it are read
-- again by every purge (ADR 004).
-- ARGV: older_than_us, limit, cursor ('' = the first Completed id), states...
-- Returns {remaining tasks in the queue, {id, tenant, state, ...}, next cursor ('' = the walk is done)}.
local now = now_us()
local cutoff = now - tonumber(ARGV[1])
local scut = fmt(cutoff)
local limit = tonumber(ARGV[2])
local WALK = 500
local f2 = B .. ':f2'
local old_f2 = redis.call('EXISTS', f2) == 1
local out = {}
local function drop(id, s)
  local t = tkey(id)
  local f = redis.call('HMGET', t, 'k', 'tn', 'x', 'i')
  local _, tn = max_tenant(id, f[4], nil, f[2])
  drop_spilled(id, f[3])
  if f[1] and redis.call('HGET', B .. ':ik', f[1]) == id then redis.call('HDEL', B .. ':ik', f[1]) end
  if tn ~= '' then redis.call('ZREM', B .. ':n:' .. tn, id) end
  redis.call('DEL', t, ekey(id))
  redis.call('HDEL', KEYS[2] .. ':ids', id)
  redis.call('ZREM', sset(s), id)
  if s ~= '2' or old_f2 then redis.call('ZREM', B .. ':f' .. s, id) end
  redis.call('HINCRBY', B .. ':c', s, -1)
  out[#out + 1] = id
  out[#out + 1] = tn
  out[#out + 1] = s
end
local cursor = ''
for i = 4, #ARGV do
  local s = ARGV[i]
  local n = 0
  if s ~= '2' or old_f2 then
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', B .. ':f' .. s, '-inf', scut, 'LIMIT', 0, limit)) do
      drop(id, s)
      n = n + 1
    end
  end
  if s == '2' and n < limit then
    local sk = redis.call('HGET', B .. ':c', 'sk')
    local last = '+'
    -- The first id of the millisecond after cutoff + sk, exclusive (ids are 32 lowercase hex digits, time first).
    if sk and sk ~= 'u' then last = '(' .. string.format('%012x', math.floor((cutoff + tonumber(sk)) / 1000) + 1) end
    local ids = redis.call('ZRANGEBYLEX', sset(2), ARGV[3] == '' and '-' or '(' .. ARGV[3], last, 'LIMIT', 0, WALK)
    for k, id in ipairs(ids) do
      -- No hash at all (deleted by hand): its index entries go, as they did from B:f2.
      local fa = redis.call('HGET', tkey(id), 'fa')
      if not fa or tonumber(fa) <= cutoff then
        drop(id, s)
        n = n + 1
      end
      if n >= limit or k == WALK then
        if k < #ids or k == WALK then cursor = id end
        break
      end
    end
  end
end
local c = redis.call('HMGET', B .. ':c', 0, 1, 2, 3, 4)
local total = 0
for i = 1, 5 do total = total + (tonumber(c[i]) or 0) end
if total == 0 then redis.call('DEL', B .. ':c') end
return {total, out, cursor}
