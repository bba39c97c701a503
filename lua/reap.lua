--[[
  reap: put back what crashed or partitioned workers left. Bounded per call,
  idempotent, and safe to run from several janitors at once (each call is
  atomic, so two reapers never requeue the same job twice).
  Input:  KEYS[1] queue prefix
          ARGV option pairs: max_reclaims (default 3), batch (100),
          stall_ms (0: off), grace_ms (0)
  Output: { requeued, lost, promoted, slots_freed, holding }
  - A job whose lease expired goes back to the front of its lane with a
    `requeued` event; once it has been reclaimed more than max_reclaims
    times it ends `worker_lost` with a refund. A pending cancel ends it
    canceled instead.
  - Due delayed jobs (retries, run_at) move to their lanes.
  - Slot holders whose job is no longer active under the holder's fence,
    and outside holders whose lease ran out, are removed.
  - Stall guard: when the previous reap is more than stall_ms ago (Redis or
    the janitors stalled, so heartbeats could not land), expired leases are
    left alone for grace_ms, one heartbeat period, before reclaiming.
]]

local REAP_OPTS = { max_reclaims = 3, batch = 100, stall_ms = 0, grace_ms = 0 }

local function reap_leases(P, now, o)
	local requeued, lost = 0, 0
	local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now,
	    'LIMIT', 0, o.batch)
	for _, jid in ipairs(ids) do
		local key = P .. 'job:' .. jid
		local j = hget(key, 'state', 'pool', 'tenant', 'meta', 'attempt',
		    'priority', 'lane_order', 'reclaims', 'cancel_req', 'worker')
		redis.call('ZREM', P .. 'leases', jid)
		if j.state == 'active' then
			local reclaims = (tonumber(j.reclaims) or 0) + 1
			redis.call('HSET', key, 'reclaims', reclaims)
			slot_free(P, j.pool, jid, now)
			if j.cancel_req == '1' then
				finish(P, jid, j, 'canceled', 'canceled',
				    'canceled on request', now, nil)
			elseif reclaims > o.max_reclaims then
				finish(P, jid, j, 'failed', 'worker_lost',
				    'lease lost ' .. reclaims ..
				    ' times; last worker ' .. (j.worker or '?'),
				    now, nil)
				lost = lost + 1
			else
				redis.call('HDEL', key, 'lease_until')
				make_ready(P, jid, j.priority or 'normal',
				    tonumber(j.lane_order) or now, now)
				event(P, { 'type', 'requeued', 'job', jid,
				    'reason', 'lease_expired',
				    'reclaims', reclaims,
				    'worker', j.worker or '',
				    'tenant', j.tenant or '' })
				stat(P, 'requeued')
				requeued = requeued + 1
			end
		end
	end
	return requeued, lost
end

local function reap_slots(P, now)
	local freed = 0
	for _, pool in ipairs(redis.call('SMEMBERS', P .. 'pools')) do
		local hkey = P .. 'held:' .. pool
		local held = redis.call('HGETALL', hkey)
		for i = 1, #held, 2 do
			local holder = held[i]
			local wid, fence, until_ms = string.match(held[i + 1],
			    '^(%S+) (%S+) (%S+)')
			local keep
			if string.sub(holder, 1, 2) == 'x:' then
				keep = (tonumber(until_ms) or 0) > now
			else
				local j = hget(P .. 'job:' .. holder, 'state',
				    'fence', 'worker')
				keep = j.state == 'active' and j.fence == fence and
				    j.worker == wid
			end
			if not keep then
				redis.call('HDEL', hkey, holder)
				wake(P .. 'marker:' .. pool, 'free:' .. holder, now)
				freed = freed + 1
			end
		end
	end
	return freed
end

register('reap', function(keys, args)
	local P = prefix(keys)
	local o = options(args, 1, REAP_OPTS)
	local now = now_ms()
	local rkey = P .. 'reaper'
	local r = hget(rkey, 'last_ms', 'hold_until')
	local holding = 0

	if o.stall_ms > 0 and r.last_ms and now - tonumber(r.last_ms) > o.stall_ms then
		redis.call('HSET', rkey, 'hold_until', now + o.grace_ms)
		holding = 1
	elseif r.hold_until and now < tonumber(r.hold_until) then
		holding = 1
	end
	redis.call('HSET', rkey, 'last_ms', now)

	local requeued, lost = 0, 0
	if holding == 0 then
		requeued, lost = reap_leases(P, now, o)
	end
	local promoted = promote_due(P, now, o.batch)
	local freed = reap_slots(P, now)
	return { requeued, lost, promoted, freed, holding }
end)
