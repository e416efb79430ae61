/**
 * The fleet's money guards, each one atomic Redis script: a row's lease (who may act on it), the journal
 * append fenced by that lease, the shared budget in integer micro-dollars, and the request gate on
 * Redis's own clock. BullMQ runs a job at least once; these make "at least once" cost exactly once.
 */

/** KEYS: lease, rows. ARGV: token, ttl ms, row key. → {1, state JSON or ''} when the lease is ours, {0, ms left} when another holds it. */
export const LEASE = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return {0, redis.call('PTTL', KEYS[1])} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, redis.call('HGET', KEYS[2], ARGV[3]) or ''}
`;

/** KEYS: lease. ARGV: token, ttl ms. → 1 renewed (never shortened: an intent's hold stands), 0 lost. */
export const RENEW = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`;

/** KEYS: lease. ARGV: token. */
export const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`;

/**
 * KEYS: events, rows, lease, uploads. ARGV: token, row key ('' when the event is not a row's), state JSON,
 * event JSON, upload key, upload JSON, hold ms. A row's event is refused unless the lease is still ours;
 * with a hold (a create's intent), the lease lasts at least that long, so no other worker looks the create
 * up before it could have been answered, even if this worker stalls just before sending it.
 */
export const APPEND = `
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return redis.error_reply('LEASE_LOST') end
if tonumber(ARGV[7]) > 0 and redis.call('PTTL', KEYS[3]) < tonumber(ARGV[7]) then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[4])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], ARGV[2], ARGV[3]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[4], ARGV[5], ARGV[6]) end
return id
`;

/**
 * KEYS: budget, reserved, lease, settled. ARGV: token, row key, micros, mode. 'reserve' (a new create)
 * checks the limit; 'commit' (a run that may exist) counts whatever it says, unless the row's run was
 * already settled (its worker died before recording the bill: counting it again would double it).
 * A row reserves once: a re-run of its job keeps the first reservation. → 1 reserved (or already), 0 over
 * the budget; error when the lease is lost.
 */
export const RESERVE = `
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return redis.error_reply('LEASE_LOST') end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 1 end
if ARGV[4] == 'commit' and redis.call('HEXISTS', KEYS[4], ARGV[2]) == 1 then return 1 end
local micros = tonumber(ARGV[3])
local limit = redis.call('HGET', KEYS[1], 'limit')
local committed = tonumber(redis.call('HGET', KEYS[1], 'committed') or '0')
if ARGV[4] == 'reserve' and limit and committed + micros > tonumber(limit) then return 0 end
redis.call('HINCRBY', KEYS[1], 'committed', micros)
redis.call('HSET', KEYS[2], ARGV[2], micros)
redis.call('HDEL', KEYS[4], ARGV[2])
return 1
`;

/**
 * KEYS: budget, reserved, lease, settled. ARGV: token, row key, billed micros. Replaces the row's
 * reservation by its bill, and marks the row settled; nothing when the lease is no longer the caller's
 * (the worker that holds it now settles). → {settled 1/0, committed, limit or -1}.
 */
export const SETTLE = `
local limit = tonumber(redis.call('HGET', KEYS[1], 'limit') or '-1')
local committed = tonumber(redis.call('HGET', KEYS[1], 'committed') or '0')
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return {0, committed, limit} end
local reserved = redis.call('HGET', KEYS[2], ARGV[2])
if not reserved then return {0, committed, limit} end
committed = redis.call('HINCRBY', KEYS[1], 'committed', tonumber(ARGV[3]) - tonumber(reserved))
redis.call('HDEL', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
return {1, committed, limit}
`;

/** KEYS: budget, reserved, lease. ARGV: token, row key, micros. A reservation grows (the price rose), only the lease holder's and only while it is open. */
export const GROW = `
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'committed', ARGV[3])
return 1
`;

/**
 * KEYS: budget, reserved, events. ARGV: the stream's last id the caller read, spent micros it folded.
 * A new night re-bases the committed sum on what the journal says the budget's period spent, but only
 * when nothing is reserved and no event came since the caller read the journal (so no bill is lost).
 */
export const REBASE = `
if redis.call('HLEN', KEYS[2]) > 0 then return 0 end
local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local id = '0-0'
if last[1] then id = last[1][1] end
if id ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'committed', ARGV[2])
return 1
`;

/**
 * KEYS: admissions (sorted set), hold. ARGV: limit, window ms, unique member.
 * Sliding window on Redis's clock: admits when fewer than `limit` requests were admitted in the last
 * window and no 429 hold is on. → 0 admitted, else ms to wait before asking again.
 */
export const GATE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = redis.call('PTTL', KEYS[2])
if hold > 0 then return hold end
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now + 1)
`;

/** KEYS: hold. ARGV: ms. A 429 holds every worker off (never shortens a longer hold). */
export const HOLD = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`;
