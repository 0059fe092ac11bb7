package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts run atomically in Redis, so seq, epoch, history and the
// announcement of a publish are one step: every node sees one global order.
// Keys of one topic share a hash tag ({topic}), so they live in one slot of
// a Redis Cluster.

// publishScript: KEYS[1] the topic's meta hash (e: epoch, s: last seq),
// KEYS[2] its history stream. ARGV: 1 data, 2 history size, 3 history TTL
// in ms, 4 meta TTL in ms, 5 an epoch for a new run, 6 the channel, 7 the
// announcing command: PUBLISH, or SPUBLISH in a Redis Cluster (the channel
// carries the topic's hash tag, so it is in the keys' slot).
// It returns {epoch, seq}.
var publishScript = goredis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'e', epoch)
  redis.call('DEL', KEYS[2])
end
local seq = redis.call('HINCRBY', KEYS[1], 's', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local size = tonumber(ARGV[2])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, seq .. '-0', 'd', ARGV[1], 't', ms)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call(ARGV[7], ARGV[6], epoch .. ':' .. seq .. ':' .. ms .. ':' .. ARGV[1])
return {epoch, seq}
`)

// positionScript: KEYS[1] the meta hash. ARGV: 1 an epoch for a new run,
// 2 meta TTL in ms. It returns {epoch, seq}, starting a run (seq 0) for a
// topic that has none, so the epoch it answers is the one its first
// publication will have.
var positionScript = goredis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local seq = redis.call('HGET', KEYS[1], 's') or '0'
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {epoch, tonumber(seq)}
`)

// historyScript: KEYS[1] the meta hash, KEYS[2] the stream. ARGV: 1 the
// epoch asked for, 2 the first seq, 3 the last seq, 4 the history TTL in
// ms. It returns {} when the run is another or the range is not all held
// and fresh, else {seq1, data1, seq2, data2, ...}.
var historyScript = goredis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], 'e')
if epoch ~= ARGV[1] then
  return false
end
local from, to = tonumber(ARGV[2]), tonumber(ARGV[3])
local entries = redis.call('XRANGE', KEYS[2], from .. '-0', to .. '-0')
if #entries ~= to - from + 1 then
  return false
end
local t = redis.call('TIME')
local oldest = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[4])
local out = {}
for i, e in ipairs(entries) do
  local f = e[2]
  local data, at
  for j = 1, #f, 2 do
    if f[j] == 'd' then data = f[j + 1] elseif f[j] == 't' then at = tonumber(f[j + 1]) end
  end
  if at == nil or at < oldest then
    return false
  end
  out[#out + 1] = from + i - 1
  out[#out + 1] = data
end
return out
`)
