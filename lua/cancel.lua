--[[
  cancel: cancel a job in any state.
  Input:  KEYS[1] queue prefix  ARGV[1] jid  ARGV[2] reason (optional)
  Output: { 'canceled' }   it was queued or delayed: now terminal, refunded
          { 'requested' }  it is active: a durable cancel flag is set and
                           `cancel <jid>` is published on
                           <prefix>ctl:<worker> (the worker holding it), so
                           the worker interrupts ComfyUI at once and ends the
                           job canceled; its next heartbeat reports the flag
                           too, in case the message was missed. A repeated
                           cancel publishes again (one cancel_requested
                           event in all)
          { 'already', state }  it had already ended
  Errors: NOJOB when no such job exists; CORRUPT (checked before the first
          write: for a queued or delayed job ready:<lane>, delayed, leases,
          done, events, refunds; for an active one events; the job is
          read first).
]]

register('cancel', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local reason = cut(args[2] or 'canceled on request', MSG_MAX)
	local key = P .. 'job:' .. jid
	local j = hget(key, 'state', 'priority', 'tenant', 'meta', 'attempt',
	    'cancel_req', 'worker', 'model', 'fetch')
	if not j.state then
		raise('NOJOB', 'job ' .. jid .. ' does not exist')
	end
	local now = now_ms()
	if j.state == 'queued' or j.state == 'delayed' then
		need(P, K_END, K_REFUND, { 'ready:' .. (j.priority or 'normal'),
		    'zset', 'delayed', 'zset' })
		ready_rem(P, jid, j.priority or 'normal', j.model, j.fetch)
		redis.call('ZREM', P .. 'delayed', jid)
		finish(P, jid, j, 'canceled', 'canceled', reason, now, nil)
		return { 'canceled' }
	end
	if j.state == 'active' then
		if j.cancel_req ~= '1' then
			need(P, { 'events', 'stream' })
			redis.call('HSET', key, 'cancel_req', '1')
			event(P, { 'type', 'cancel_requested', 'job', jid,
			    'tenant', j.tenant or '' })
		end
		if j.worker and j.worker ~= '' then
			redis.call('PUBLISH', P .. 'ctl:' .. j.worker,
			    'cancel ' .. jid)
		end
		return { 'requested' }
	end
	return { 'already', j.state }
end)
