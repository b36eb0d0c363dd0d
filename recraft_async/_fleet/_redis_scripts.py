"""The Lua scripts of the fleet's shared state: each check-and-change is one atomic step.

Times are Redis's own clock (``TIME``, in microseconds), the one clock every host of the
fleet shares; durations come in microseconds (windows) or milliseconds (key lifetimes).
"""

from __future__ import annotations

# KEYS: window (sorted set), pause (string). ARGV: n, per (us), lease (us), member.
# Each member's score is the moment its slot stops counting ``per`` later: the moment of
# the request's answer (set by RELEASE), or ``lease`` from now while it is on the wire,
# so that a crashed worker's slot frees itself. Answers {1, 0} (taken) or {0, wait in us}.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local per = tonumber(ARGV[2])
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > now then
  return {0, paused - now}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - per)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil((per + tonumber(ARGV[3])) / 1000) + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]) + per - now + 1}
"""

# KEYS: window. ARGV: member. The request was answered: its slot counts from now.
RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1])
"""

# KEYS: pause. ARGV: seconds (us), lifetime (ms). Every worker waits until then.
PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local until_ = now + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', until_), 'PX', ARGV[2])
end
return 1
"""

# KEYS: claim. ARGV: our pending value, lease (ms). Answers '' when the claim is ours
# now, else the value another worker put there (pending, a task id, or uncertain).
CLAIM = """
local held = redis.call('GET', KEYS[1])
if held then
  return held
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ''
"""

# KEYS: claim. ARGV: our pending value, the new value ('' deletes), lifetime (ms).
# Only our own pending claim is settled: one that expired and was taken stays theirs.
# An absent one is set too: a restarted Redis forgot it, and the fleet must learn our task.
SETTLE = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""

# KEYS: claims held pending. ARGV: our pending value, lease (ms). A live worker's
# heartbeat: its claims outlive it by one lease at most.
REFRESH = """
local kept = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    kept = kept + 1
  end
end
return kept
"""

# KEYS: seen (a verified callback's digest). ARGV: lifetime (ms). 1: the fleet's first
# delivery of it, remembered until its timestamp leaves the window; 0: a replay.
ACCEPT = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 1
end
return 0
"""

# KEYS: claim. ARGV: the value it should hold ('task:<id>'). The task failed: forgotten,
# unless the claim moved on meanwhile.
FORGET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
