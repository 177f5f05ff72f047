"""The Lua scripts of the Redis-backed limiter and journal, and of the CLI's shared batch.

Every script reads time from the Redis server (``TIME``), never from a client:
the processes sharing a key may run on machines whose clocks disagree.  All the
keys of one API key share a hash tag (``rh:{<digest>}:...``), as do those of one
batch (``rhb:{<batch>}:...``), so the scripts also run on a Redis Cluster.
"""

from __future__ import annotations

__all__ = [
    "ACCEPTED",
    "CLAIM",
    "ENDED",
    "INTENT",
    "RATE",
    "SLOTS",
    "STREAM_HAND_BACK",
    "STREAM_SETTLE",
    "STREAM_TOUCH",
    "THROTTLE",
]

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# One round trip does everything a process's slot worker has queued: releases,
# leaves (cancelled waiters), window updates, joins (new waiters), an optional
# heartbeat (renew this process's leases and tickets), then grants to this
# process's tickets among the first `free` of the shared queue (FIFO across
# processes: another process's older ticket is never passed over).
#
# KEYS: 1 leases (zset id -> expiry), 2 queue (zset ticket -> order),
#       3 tickets (zset ticket -> expiry), 4 window (string), 5 epoch (string),
#       6 members (zset process -> expiry), 7 limits (hash process -> max_in_flight)
# ARGV: 1 lease seconds, 2 limit, 3 ticket prefix, 4 process id, 5 candidate epoch,
#       6 known epoch, 7 renew flag, 8 window ops ("r" rejected, "a" accepted,
#       "z" reset), 9 channel, 10 leaving flag, then five counted lists:
#       releases, leaves, joins (ticket, front), held, waiting (ticket, score)
# Returns: {epoch, capacity, held, granted[], expired[], lost[], join scores[], members,
#           the limits of the other live processes[] (on a heartbeat; else empty)}
SLOTS = (
    _NOW
    + """
local lease = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local prefix = ARGV[3]
local i = 11
local function list(width)
  local n = tonumber(ARGV[i]); i = i + 1
  local out = {}
  for k = 1, n do
    local item = {}
    for w = 1, width do item[w] = ARGV[i]; i = i + 1 end
    out[k] = item
  end
  return out
end
local releases = list(1)
local leaves = list(1)
local joins = list(2)
local held = list(1)
local waiting = list(2)

local epoch = redis.call('GET', KEYS[5])
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', KEYS[5], epoch)
end

-- Leases and tickets whose holders stopped renewing them are reclaimed.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  redis.call('ZREM', KEYS[2], m)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)

local function capacity()
  local w = tonumber(redis.call('GET', KEYS[4]) or limit)
  return math.max(1, math.min(limit, math.floor(w)))
end
local before = capacity()

local freed = false
local expired = {}
for _, r in ipairs(releases) do
  if redis.call('ZREM', KEYS[1], r[1]) == 1 then
    freed = true
  else
    expired[#expired + 1] = r[1]
  end
end
for _, l in ipairs(leaves) do
  redis.call('ZREM', KEYS[2], l[1])
  redis.call('ZREM', KEYS[3], l[1])
  if redis.call('ZREM', KEYS[1], l[1]) == 1 then freed = true end
end

for op in string.gmatch(ARGV[8], '.') do
  if op == 'r' then
    local w = math.max(1, redis.call('ZCARD', KEYS[1]) - 1)
    redis.call('SET', KEYS[4], tostring(w), 'EX', 3600)
  elseif op == 'a' then
    local w = tonumber(redis.call('GET', KEYS[4]) or limit)
    if w < limit then
      redis.call('SET', KEYS[4], tostring(math.min(limit, w + 1 / w)), 'EX', 3600)
    end
  elseif op == 'z' then
    redis.call('DEL', KEYS[4])
  end
end

local lost = {}
if ARGV[7] == '1' then
  -- A new epoch means Redis lost its data (a restart without persistence):
  -- every live process puts its leases back, so the counts rebuild.
  local rebuild = epoch ~= ARGV[6]
  for _, h in ipairs(held) do
    if rebuild or redis.call('ZSCORE', KEYS[1], h[1]) then
      redis.call('ZADD', KEYS[1], now + lease, h[1])
    else
      lost[#lost + 1] = h[1]
    end
  end
  for _, w in ipairs(waiting) do
    redis.call('ZADD', KEYS[2], w[2], w[1])
    redis.call('ZADD', KEYS[3], now + lease, w[1])
  end
end
if ARGV[10] == '1' then
  redis.call('ZREM', KEYS[6], ARGV[4])
  redis.call('HDEL', KEYS[7], ARGV[4])
else
  redis.call('ZADD', KEYS[6], now + lease, ARGV[4])
  redis.call('HSET', KEYS[7], ARGV[4], ARGV[2])
end
-- Every process grants under its own limit: processes configured differently
-- disagree on the key's capacity, and are told so (the ones gone are dropped).
local limits = {}
if ARGV[7] == '1' then
  local all = redis.call('HGETALL', KEYS[7])
  for k = 1, #all, 2 do
    if not redis.call('ZSCORE', KEYS[6], all[k]) then
      redis.call('HDEL', KEYS[7], all[k])
    elseif all[k] ~= ARGV[4] then
      limits[#limits + 1] = all[k + 1]
    end
  end
end

local scores = {}
for k, j in ipairs(joins) do
  -- A job put back after a 421 queues ahead of every ordinary waiter.
  local score = now
  if j[2] == '1' then score = now - 1e10 end
  redis.call('ZADD', KEYS[2], score, j[1])
  redis.call('ZADD', KEYS[3], now + lease, j[1])
  scores[k] = string.format('%.6f', score)
end

local cap = capacity()
local free = cap - redis.call('ZCARD', KEYS[1])
local granted = {}
if free > 0 then
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, free - 1)) do
    if string.sub(m, 1, #prefix) == prefix then
      redis.call('ZREM', KEYS[2], m)
      redis.call('ZREM', KEYS[3], m)
      redis.call('ZADD', KEYS[1], now + lease, m)
      granted[#granted + 1] = m
    end
  end
end
if (freed or cap > before) and redis.call('ZCARD', KEYS[2]) > 0 then
  redis.call('PUBLISH', ARGV[9], ARGV[4])
end
return {epoch, cap, redis.call('ZCARD', KEYS[1]), granted, expired, lost, scores,
        redis.call('ZCARD', KEYS[6]), limits}
"""
)

_FACTOR = """
local factor = 1
local th = redis.call('HMGET', KEYS[2], 'f', 't')
if th[1] then
  factor = math.min(1, tonumber(th[1]) + recovery * math.max(0, now - tonumber(th[2])))
end
"""

# GCRA with reservation: each call is given the next emission time and told how
# long to wait for it, so one round trip serves a call however busy the key is.
# Emission times are 1/rate apart beyond a burst of b, so any window of w seconds
# holds fewer than w * rate + b calls (see RedisLimiter for the choice of rate
# and b that keeps every 1 s window within the configured rate).
# KEYS: 1 tat (string), 2 throttle (hash f, t, at)
# ARGV: 1 interval (s), 2 burst, 3 recovery (factor per second)
# Returns: the wait in seconds, as a string
RATE = (
    _NOW
    + "local recovery = tonumber(ARGV[3])\n"
    + _FACTOR
    + """
local interval = tonumber(ARGV[1]) / factor
local tau = (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local at = math.max(now, tat - tau)
redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'EX', 3600)
return string.format('%.6f', at - now)
"""
)

# RunningHub said "slow down" (1003/429): halve the shared rate (once per second
# however many processes heard it), pause everyone for retry_after, then recover
# additively over time.
# KEYS: 1 tat, 2 throttle.  ARGV: 1 retry_after (s), 2 minimum factor, 3 recovery
THROTTLE = (
    _NOW
    + "local recovery = tonumber(ARGV[3])\n"
    + _FACTOR
    + """
local pause = tonumber(ARGV[1])
local last = tonumber(redis.call('HGET', KEYS[2], 'at') or '-1e18')
local f = tonumber(redis.call('HGET', KEYS[2], 'f') or '1')
if now - last >= 1 then f = math.max(tonumber(ARGV[2]), factor / 2) end
local t = math.max(tonumber(redis.call('HGET', KEYS[2], 't') or '0'), now + pause)
redis.call('HSET', KEYS[2], 'f', string.format('%.6f', f), 't', string.format('%.6f', t),
           'at', string.format('%.6f', now))
redis.call('EXPIRE', KEYS[2], 3600)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
redis.call('SET', KEYS[1], string.format('%.6f', math.max(tat, now + pause)), 'EX', 3600)
return string.format('%.6f', f)
"""
)

# Journal: a hash per caller key (endpoint, digest, task_id, status, at, owner,
# epoch) and a set of the keys with no end yet.  `epoch` counts claims: a writer
# whose epoch is not the current one lost the item and may not record an intent.
_OWNS = """
local function owns()
  local cur = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
  local mine = tonumber(ARGV[1])
  if mine == 0 then
    return cur == 0 or redis.call('HGET', KEYS[1], 'owner') == ARGV[4]
  end
  return mine == cur
end
"""

# KEYS: 1 entry.  ARGV: 1 owner.  Returns the new epoch.
CLAIM = """
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
return epoch
"""

# KEYS: 1 entry, 2 outstanding.  ARGV: 1 owner, 2 my epoch (0: never claimed),
# 3 endpoint, 4 digest, 5 at, 6 caller key.
# Returns {1, epoch, owner} when recorded, {0, epoch, owner} when another owns it.
INTENT = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local who = redis.call('HGET', KEYS[1], 'owner') or ''
local mine = tonumber(ARGV[2])
if mine == 0 then
  if cur == 0 then
    cur = 1
    who = ARGV[1]
    redis.call('HSET', KEYS[1], 'epoch', 1, 'owner', who)
  elseif who ~= ARGV[1] then
    return {0, cur, who}
  end
elseif cur ~= mine then
  return {0, cur, who}
end
redis.call('HSET', KEYS[1], 'endpoint', ARGV[3], 'digest', ARGV[4], 'at', ARGV[5])
redis.call('HDEL', KEYS[1], 'task_id', 'status')
redis.call('SADD', KEYS[2], ARGV[6])
return {1, cur, who}
"""

# KEYS: 1 entry.  ARGV: 1 my epoch, 2 task id, 3 at, 4 owner.
# The task id is written when this writer owns the item (by epoch, or by name
# when it never claimed it: a restarted process with a stable owner name), or
# when no task id is known yet (a paid task must not be forgotten).
# Returns 1 if written.
ACCEPTED = (
    _OWNS
    + """
if owns() or not redis.call('HGET', KEYS[1], 'task_id') then
  redis.call('HSET', KEYS[1], 'task_id', ARGV[2], 'at', ARGV[3])
  return 1
end
return 0
"""
)

# KEYS: 1 entry, 2 outstanding.  ARGV: 1 my epoch, 2 status, 3 at, 4 owner, 5 caller key.
# Written only by the owner.  Returns 1 if written.
ENDED = (
    _OWNS
    + """
if not owns() then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'at', ARGV[3])
redis.call('SREM', KEYS[2], ARGV[5])
return 1
"""
)

# The CLI's shared batch (``_cli/_stream``): its lines are entries of a Redis Stream
# read by one consumer group; an entry belongs to the worker whose pending list holds it.

# KEYS: 1 stream.  ARGV: 1 group, 2 worker, then entry ids.
# Resets the idle time of the entries this worker still owns; returns those it lost.
STREAM_TOUCH = """
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

# KEYS: 1 stream.  ARGV: 1 group, 2 worker, then entry ids.
# Makes the entries this worker owns look idle for long, so others take them at once.
STREAM_HAND_BACK = """
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'IDLE', 1000000000, 'JUSTID')
  end
end
return 0
"""

# KEYS: 1 stream, 2 progress, 3 manifest, 4 failures.
# ARGV: 1 group, 2 worker, 3 entry id, 4 counter, 5 index, 6 record, 7 failure ('' if none).
# Returns 1 when settled now, 0 when the entry is not this worker's (taken over, or settled).
STREAM_SETTLE = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
redis.call('HINCRBY', KEYS[2], 'acked', 1)
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[7])
else
  redis.call('HDEL', KEYS[4], ARGV[5])
end
return 1
"""
