--[[
  release: hand an active job back without counting the attempt (a worker
  draining on SIGTERM, or one that finds its backend gone before it ran).
  Input:  KEYS[1] queue prefix  ARGV[1] jid  ARGV[2] fence
          ARGV[3] reason (optional)
  Output: { 'queued' }, or { 'canceled' } when a cancel request was pending;
          STALE when the job is not active under this fence.
  Errors: INVALID; CORRUPT (checked before the first write: ready:<lane>,
          leases, done, events, refunds; the job is read first).
  The job goes back to the front of its lane (its original order).
]]

register('release', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local fence = arg_str(args[2], 'fence', 24)
	local reason = cut(args[3] or 'released', 256)
	local j = active_job(P, jid, fence, 'pool', 'tenant', 'meta',
	    'attempt', 'priority', 'lane_order', 'cancel_req', 'worker',
	    'reclaims', 'model', 'fetch')
	if not j then
		return redis.status_reply('STALE')
	end
	local lane = LANE_OK[j.priority or 'normal'] and
	    (j.priority or 'normal') or 'normal'
	need(P, K_END, K_REFUND, { 'ready:' .. lane, 'zset' })
	local now = now_ms()
	local key = P .. 'job:' .. jid
	local attempt = math.max((tonumber(j.attempt) or 1) - 1, 0)

	slot_free(P, j.pool, jid, now)
	if j.cancel_req == '1' then
		finish(P, jid, j, 'canceled', 'canceled', 'canceled on request',
		    now, nil)
		return { 'canceled' }
	end
	redis.call('HSET', key, 'attempt', attempt)
	redis.call('HDEL', key, 'lease_until', 'worker')
	redis.call('ZREM', P .. 'leases', jid)
	make_ready(P, jid, lane, tonumber(j.lane_order) or now, now, j.model,
	    j.fetch)
	event(P, { 'type', 'requeued', 'job', jid, 'reason', reason,
	    'reclaims', j.reclaims or '0', 'worker', j.worker or '',
	    'tenant', j.tenant or '' })
	stat(P, 'released')
	return { 'queued' }
end)
