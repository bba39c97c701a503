--[[
  reap: put back what crashed or partitioned workers left. Bounded per call,
  idempotent, and safe to run from several janitors at once (each call is
  atomic, so two reapers never requeue the same job twice).
  Input:  KEYS[1] queue prefix
          ARGV option pairs: max_reclaims (default 3), batch (100),
          stall_ms (0: off), grace_ms (0), crash_losses (2; 0: off)
  Output: { requeued, lost, promoted, slots_freed, holding, buried }
          lost: jobs whose lease ran out that were ended (worker_lost, or
          internal by the poison guard) instead of requeued
  - A job whose lease expired goes back to the front of its lane with a
    `requeued` event; once it has been reclaimed more than max_reclaims
    times it ends `worker_lost` with a refund. A pending cancel ends it
    canceled instead.
  - Poison guard: a lease lost with no heartbeat renewing it since the claim
    (job field renewed, set by heartbeat, reset by claim) looks like a worker
    that crashed on the job; the job counts these in its field crashes. The
    crash_losses-th one ends the job `failed`/internal with a refund ("lease
    lost twice right after claim, with no heartbeat: the job may crash
    workers") instead of handing it to the next worker. A lease lost after a
    renewal is requeued as before.
  - Due delayed jobs (retries, run_at) move to their lanes.
  - Slot holders whose job is no longer active under the holder's fence,
    and outside holders whose lease ran out, are removed. Pools are visited
    in name order from a cursor (reaper.slot_cursor), until `batch` holders
    were checked, so a fleet of pools costs many short calls.
  - A corrupt job record met on the way (missing, not a hash, no known
    state) is buried: dead hash, terminal `failed`/internal with a refund
    (lib.lua bury); `buried` counts them.
  - Stall guard: when the previous reap is more than stall_ms ago (Redis or
    the janitors stalled, so heartbeats could not land), expired leases are
    left alone for grace_ms, one heartbeat period, before reclaiming. The
    workers' heartbeats that queued up during the stall land in that time.
    The gap is measured between any two reap calls (reaper.last_ms), so it
    holds with several janitors too.
  Errors: INVALID; CORRUPT when a key of the queue it writes has another
  type, checked before the first write: leases, delayed, every ready:<lane>,
  done, events, refunds, dead, pools (reaper is read first). A pool
  whose held:<pool> is not a hash is skipped, and a job's slot there is left
  alone; corrupt job records are buried.
]]

local REAP_OPTS = { max_reclaims = 3, batch = 100, stall_ms = 0, grace_ms = 0,
	crash_losses = 2 }

local function times(n)
	return n == 1 and 'once' or n == 2 and 'twice' or (n .. ' times')
end

local function reap_leases(P, now, o)
	local requeued, lost, buried = 0, 0, 0
	local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now,
	    'LIMIT', 0, o.batch)
	for _, jid in ipairs(ids) do
		local key = P .. 'job:' .. jid
		local j, why = job_read(P, jid, 'pool', 'tenant', 'meta',
		    'attempt', 'priority', 'lane_order', 'reclaims',
		    'cancel_req', 'worker', 'renewed', 'crashes', 'model',
		    'fetch')
		redis.call('ZREM', P .. 'leases', jid)
		if not j then
			bury(P, jid, 'leases', why, now)
			buried = buried + 1
		elseif j.state == 'active' then
			local reclaims = (tonumber(j.reclaims) or 0) + 1
			local crashes = tonumber(j.crashes) or 0
			if j.renewed ~= '1' then
				crashes = crashes + 1
			end
			redis.call('HSET', key, 'reclaims', reclaims,
			    'crashes', crashes)
			slot_free(P, j.pool, jid, now)
			if j.cancel_req == '1' then
				finish(P, jid, j, 'canceled', 'canceled',
				    'canceled on request', now, nil)
			elseif o.crash_losses > 0 and j.renewed ~= '1' and
			    crashes >= o.crash_losses then
				finish(P, jid, j, 'failed', 'internal',
				    'lease lost ' .. times(crashes) ..
				    ' right after claim, with no heartbeat: ' ..
				    'the job may crash workers', now, nil)
				stat(P, 'janitor:poison')
				lost = lost + 1
			elseif reclaims > o.max_reclaims then
				finish(P, jid, j, 'failed', 'worker_lost',
				    'lease lost ' .. reclaims ..
				    ' times; last worker ' .. (j.worker or '?'),
				    now, nil)
				lost = lost + 1
			else
				local lane = LANE_OK[j.priority or 'normal'] and
				    (j.priority or 'normal') or 'normal'
				redis.call('HDEL', key, 'lease_until')
				make_ready(P, jid, lane,
				    tonumber(j.lane_order) or now, now,
				    j.model, j.fetch)
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
	return requeued, lost, buried
end

-- Checks the holders of one pool; returns how many were checked and freed.
local function reap_pool(P, pool, now)
	local hkey = P .. 'held:' .. pool
	local held = try('HGETALL', hkey) or {}
	local freed = 0
	for i = 1, #held, 2 do
		local holder = held[i]
		local wid, fence, until_ms = holder_unpack(held[i + 1])
		local keep
		if string.sub(holder, 1, 2) == 'x:' then
			keep = (tonumber(until_ms) or 0) > now
		else
			local j = job_read(P, holder, 'fence', 'worker')
			keep = j ~= nil and j.state == 'active' and
			    j.fence == fence and j.worker == wid
		end
		if not keep then
			redis.call('HDEL', hkey, holder)
			wake(P .. 'marker:' .. pool, token('free:', holder),
			    now)
			freed = freed + 1
		end
	end
	return #held / 2, freed
end

local function reap_slots(P, now, batch)
	local rkey = P .. 'reaper'
	local pools = redis.call('SMEMBERS', P .. 'pools')
	local cursor = redis.call('HGET', rkey, 'slot_cursor') or ''
	local start, checked, freed, last = 1, 0, 0, nil
	table.sort(pools)
	for i, pool in ipairs(pools) do
		if pool > cursor then
			start = i
			break
		end
	end
	for k = 0, #pools - 1 do
		if checked >= batch then
			break
		end
		last = pools[(start - 1 + k) % #pools + 1]
		local c, f = reap_pool(P, last, now)
		checked = checked + c
		freed = freed + f
	end
	if last then
		redis.call('HSET', rkey, 'slot_cursor', last)
	end
	if freed > 0 then
		stat(P, 'janitor:slots_freed', freed)
	end
	return freed
end

register('reap', function(keys, args)
	local P = prefix(keys)
	local o = options(args, 1, REAP_OPTS)
	local now = now_ms()
	local rkey = P .. 'reaper'
	local r = hget(rkey, 'last_ms', 'hold_until')
	local last = tonumber(r.last_ms)
	local holding = 0

	if o.batch < 1 then
		raise('INVALID', 'batch: must be at least 1')
	end
	need(P, K_END, K_REFUND, K_LANES, K_BURY, { 'pools', 'set' })
	if o.stall_ms > 0 and last and now - last > o.stall_ms then
		redis.call('HSET', rkey, 'hold_until', now + o.grace_ms)
		stat(P, 'janitor:stall_holds')
		holding = 1
	elseif now < (tonumber(r.hold_until) or 0) then
		holding = 1
	end
	redis.call('HSET', rkey, 'last_ms', now)

	local requeued, lost, buried = 0, 0, 0
	if holding == 0 then
		requeued, lost, buried = reap_leases(P, now, o)
	end
	local promoted, b2 = promote_due(P, now, o.batch)
	local freed = reap_slots(P, now, o.batch)
	return { requeued, lost, promoted, freed, holding, buried + b2 }
end)
