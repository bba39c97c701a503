--[[
  Webhook deliveries: a job with a `webhook` URL that ends gets a delivery
  (finish() in lib.lua: wh_state pending, due now in the webhooks zset).
  comfyq-scheduler claims due deliveries with a lease, POSTs them, and
  reports each attempt's outcome. The lease token is the attempt number:
  every claim takes the next one, so a scheduler whose lease ran out (it
  died, or was slow) and was claimed over gets STALE and writes nothing.
  Delivery fields in job:<jid>: wh_state (pending, delivering, delivered,
  failed), wh_attempts (claims so far), wh_owner (the claimer's id),
  wh_lease_until, wh_next_ms (when it is due again), wh_last_status (the
  receiver's HTTP status, 0 when none came), wh_error.

  webhook_claim: ARGV[1] scheduler id  ARGV[2] lease ms (1..3600000)
                 ARGV[3] batch (1..1000)
  Output: { next_due_ms (the earliest delivery still in the zset after the
          claim, leases included; 0 when none),
          then per delivery: jid, url, delivery id (wh_<jid>, the same for
          every attempt), attempt, finished_ms, { field, value, ... } }
          where the fields are those of the terminal event the job record
          keeps: state, tenant, meta, refund, attempt, error_code, error,
          outputs, end_id (those set). Each claimed delivery gets
          wh_state delivering, the next attempt and a lease: its zset
          score becomes the lease's end, so an expired lease is due again.
          A zset entry whose record is corrupt, not terminal, without a
          URL or no longer pending leaves the zset (stat webhooks_dropped).
  Errors: INVALID; CORRUPT (webhooks and each job record are read
          first).

  webhook_done: ARGV[1] jid  ARGV[2] attempt (the claim's token)
                ARGV[3] outcome delivered|retry|failed
                ARGV[4] HTTP status (0..999; 0: no response)
                ARGV[5] error text ('' when none)
                ARGV[6] retry in ms (retry only: 1..86400000)
  Output: OK, or STALE when the delivery is not delivering under this
          attempt (the lease was claimed over, or the record is gone).
          delivered, failed: the state is final, the zset entry goes, and
          stats webhooks_delivered or webhooks_failed counts it;
          retry: pending again, due retry-in-ms from now (the caller's
          backoff and jitter), stats webhooks_retried.
  Errors: INVALID; CORRUPT (webhooks checked first; the job is read first).
]]

local WH_OUTCOMES = { delivered = true, retry = true, failed = true }
local WH_BODY = { 'state', 'tenant', 'meta', 'refund', 'attempt',
	'error_code', 'error', 'outputs', 'end_id' }

--[[
  The arguments webhook_done and webhook_progress_done share: jid, the
  claim's token (called name), an outcome of outcomes (words lists them),
  the HTTP status, the error text and, for retry, the delay. Returns them
  in that order or raises INVALID.
]]
local function wh_done_args(args, name, outcomes, words)
	local jid = arg_str(args[1], 'jid', 64)
	local token = arg_int(args[2], name, 1, 1000000000)
	local outcome = arg_str(args[3], 'outcome', 16)
	local status = arg_int(args[4] or 0, 'status', 0, 999)
	local msg = cut(args[5], MSG_MAX)

	if not outcomes[outcome] then
		raise('INVALID', "outcome: '" .. outcome .. "' is not " .. words)
	end
	local delay = 0
	if outcome == 'retry' then
		delay = arg_int(args[6], 'retry_ms', 1, 86400000)
	end
	return jid, token, outcome, status, msg, delay
end

--[[
  The start both claims share: the scheduler id, the lease and the batch
  of args (INVALID when off), the time, and up to batch entries of zkey due
  by now. Returns sid, lease, now, due.
]]
local function wh_claim_start(P, args, zkey)
	local sid = arg_name(args[1], 'scheduler id')
	local lease = arg_int(args[2], 'lease_ms', 1, 3600000)
	local batch = arg_int(args[3], 'batch', 1, 1000)
	local now = now_ms()
	local due = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0,
	    batch)

	return sid, lease, now, due
end

-- Ends a claim's reply out: stat name counts the entries it dropped, and
-- out[1] becomes the earliest entry left in zkey (0: none).
local function wh_claim_end(P, zkey, out, dropped, name)
	if dropped > 0 then
		stat(P, name, dropped)
	end
	local first = redis.call('ZRANGE', zkey, 0, 0, 'WITHSCORES')
	if first[2] then
		out[1] = math.floor(tonumber(first[2]))
	end
	return out
end

register('webhook_claim', function(keys, args)
	local P = prefix(keys)
	local zkey = P .. 'webhooks'
	local sid, lease, now, due = wh_claim_start(P, args, zkey)
	local out = { 0 }
	local dropped = 0

	for _, jid in ipairs(due) do
		local j = job_read(P, jid, 'webhook', 'wh_state', 'wh_attempts',
		    'finished_ms', unpack(WH_BODY))
		if not j or not TERMINAL[j.state] or not j.webhook or
		    j.webhook == '' or not WH_OPEN[j.wh_state or ''] then
			redis.call('ZREM', zkey, jid)
			dropped = dropped + 1
		else
			local attempt = (tonumber(j.wh_attempts) or 0) + 1
			local fields = {}
			for _, f in ipairs(WH_BODY) do
				if j[f] then
					fields[#fields + 1] = f
					fields[#fields + 1] = j[f]
				end
			end
			redis.call('HSET', P .. 'job:' .. jid, 'wh_state',
			    'delivering', 'wh_attempts', attempt, 'wh_owner', sid,
			    'wh_lease_until', now + lease, 'wh_next_ms',
			    now + lease)
			redis.call('ZADD', zkey, now + lease, jid)
			out[#out + 1] = jid
			out[#out + 1] = j.webhook
			out[#out + 1] = 'wh_' .. jid
			out[#out + 1] = attempt
			out[#out + 1] = tonumber(j.finished_ms) or 0
			out[#out + 1] = fields
		end
	end
	return wh_claim_end(P, zkey, out, dropped, 'webhooks_dropped')
end)

register('webhook_done', function(keys, args)
	local P = prefix(keys)
	local jid, attempt, outcome, status, msg, delay = wh_done_args(args,
	    'attempt', WH_OUTCOMES, 'delivered, retry or failed')
	local key = P .. 'job:' .. jid
	local j = job_read(P, jid, 'wh_state', 'wh_attempts')
	if not j or j.wh_state ~= 'delivering' or
	    tonumber(j.wh_attempts) ~= attempt then
		return redis.status_reply('STALE')
	end
	need(P, { 'webhooks', 'zset' })
	local now = now_ms()
	redis.call('HDEL', key, 'wh_lease_until')
	if outcome == 'retry' then
		redis.call('HSET', key, 'wh_state', 'pending', 'wh_last_status',
		    status, 'wh_error', msg, 'wh_next_ms', now + delay)
		redis.call('ZADD', P .. 'webhooks', now + delay, jid)
		stat(P, 'webhooks_retried')
		return redis.status_reply('OK')
	end
	redis.call('HSET', key, 'wh_state', outcome, 'wh_last_status', status)
	redis.call('HDEL', key, 'wh_next_ms')
	if outcome == 'failed' then
		redis.call('HSET', key, 'wh_error', msg)
	else
		redis.call('HDEL', key, 'wh_error')
	end
	redis.call('ZREM', P .. 'webhooks', jid)
	stat(P, outcome == 'delivered' and 'webhooks_delivered' or
	    'webhooks_failed')
	return redis.status_reply('OK')
end)
