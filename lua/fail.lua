--[[
  fail: end an attempt of an active job with an error code.
  Input:  KEYS[1] queue prefix
          ARGV[1] jid  ARGV[2] fence  ARGV[3] error code
                  (docs/design.md §5)
          ARGV[4] message  ARGV[5] retryable 0|1
          ARGV[6] backoff base ms  ARGV[7] backoff max ms
          ARGV[8] jitter draw in [0, 1) (the caller's randomness)
          ARGV[9] nodes (optional): a JSON object, what ComfyUI did in
                  this attempt: `ran`, `cached`, and `at`, the node it was
                  at when the attempt ended (README, Events); kept only by
                  a terminal failure
  Output: { 'delayed', due_ms }  retried: back in the queue after a backoff
          { 'failed' } | { 'canceled' }  terminal, with refund
          STALE when the job is not active under this fence.
  Errors: INVALID; CORRUPT (checked before the first write: leases, done,
          delayed, events, refunds; the job is read first).
  A retryable error is retried while attempt < max_attempts, after
  d = min(max, base * 2^(attempt-1)) drawn from [d/2, d). A terminal failure
  writes the state, one terminal event and one refund entry together. The
  code `canceled` ends the job canceled; a pending cancel request turns any
  failure into canceled.
]]

register('fail', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local fence = arg_str(args[2], 'fence', 24)
	local code = arg_str(args[3], 'code', 64)
	local msg = cut(args[4], MSG_MAX)
	local retryable = arg_int(args[5] or 0, 'retryable', 0, 1) == 1
	local base = arg_int(args[6] or 1000, 'backoff_base_ms', 1, 86400000)
	local max = arg_int(args[7] or 300000, 'backoff_max_ms', 1, 86400000)
	local jitter = tonumber(args[8] or '0.5')
	local nodes = arg_nodes(args[9])
	if ERROR_CODES[code] == nil then
		raise('INVALID', "code: '" .. code .. "' is not an error code")
	end
	if jitter == nil or jitter ~= jitter or jitter < 0 or jitter >= 1 then
		raise('INVALID', 'jitter: must be a number in [0, 1)')
	end
	local j = active_job(P, jid, fence, 'pool', 'tenant', 'meta',
	    'attempt', 'max_attempts', 'cancel_req')
	if not j then
		return redis.status_reply('STALE')
	end
	need(P, K_END, K_REFUND, { 'delayed', 'zset' })
	local now = now_ms()
	local attempt = tonumber(j.attempt) or 1
	local key = P .. 'job:' .. jid

	slot_free(P, j.pool, jid, now)
	if j.cancel_req == '1' then
		code, msg = 'canceled', 'canceled on request'
	end
	if code ~= 'canceled' and retryable and
	    attempt < (tonumber(j.max_attempts) or 1) then
		local d = base
		for _ = 2, attempt do
			if d >= max then
				break
			end
			d = d * 2
		end
		d = math.min(d, max)
		local half = math.floor(d / 2)
		local due = now + half + math.floor((d - half) * jitter)
		redis.call('HSET', key, 'state', 'delayed', 'error_code', code,
		    'error', msg)
		redis.call('HDEL', key, 'lease_until')
		redis.call('ZREM', P .. 'leases', jid)
		redis.call('ZADD', P .. 'delayed', due, jid)
		event(P, { 'type', 'retrying', 'job', jid, 'error_code', code,
		    'error', msg, 'attempt', attempt, 'due_ms', due,
		    'tenant', j.tenant or '' })
		stat(P, 'retried')
		return { 'delayed', due }
	end
	local state = ERROR_CODES[code]
	finish(P, jid, j, state, code, msg, now, nil, nodes)
	return { state }
end)
