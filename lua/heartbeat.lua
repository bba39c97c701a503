--[[
  heartbeat: renew every lease a worker holds, in one call.
  Input:  KEYS[1] queue prefix
          ARGV[1] worker id  ARGV[2] lease ms  ARGV[3] worker ttl ms
          ARGV[4..] pairs of jid, fence for the jobs the worker runs
  Output: { lost, cancel, capacity, registered }
          lost:   jids whose lease is gone (reaped, finished elsewhere, or
                  fenced by a newer claim): the worker must stop them and
                  write nothing more for them
          cancel: jids still ours that carry a cancel request
          capacity: the pool's slot capacity now (0 when unknown), so a
                  change at run time reaches the worker
          registered: 0 when the worker record has expired (a partition
                  longer than its TTL, or a janitor that forgot it): the
                  worker registers again
  The worker hash gets a fresh TTL and the workers index its beat time; a
  worker the janitor had marked gone (a partition that healed) is up again.
]]

register('heartbeat', function(keys, args)
	local P = prefix(keys)
	local wid = arg_name(args[1], 'worker')
	local lease = arg_int(args[2], 'lease_ms', 1000, 3600000)
	local ttl = arg_int(args[3], 'ttl_ms', 1000, 86400000)
	if (#args - 3) % 2 ~= 0 then
		raise('INVALID', 'jobs: expected jid fence pairs')
	end
	local now = now_ms()
	local until_ms = now + lease
	local wkey = P .. 'worker:' .. wid
	local pool = redis.call('HGET', wkey, 'pool')
	local lost, cancel, renew = {}, {}, {}

	for i = 4, #args, 2 do
		local jid, fence = args[i], args[i + 1]
		local j = hget(P .. 'job:' .. jid, 'state', 'fence', 'worker',
		    'cancel_req', 'pool', 'vram_mb')
		if j.state == 'active' and j.fence == fence and j.worker == wid then
			renew[#renew + 1] = { jid, j }
			if j.cancel_req == '1' then
				cancel[#cancel + 1] = jid
			end
		else
			lost[#lost + 1] = jid
		end
	end
	local cap = 0
	if pool then
		cap = tonumber(redis.call('HGET', P .. 'slots:' .. pool,
		    'capacity') or '0') or 0
	end

	for _, r in ipairs(renew) do
		local jid, j = r[1], r[2]
		redis.call('HSET', P .. 'job:' .. jid, 'lease_until', until_ms)
		redis.call('ZADD', P .. 'leases', until_ms, jid)
		if redis.call('HEXISTS', P .. 'held:' .. j.pool, jid) == 1 then
			redis.call('HSET', P .. 'held:' .. j.pool, jid,
			    wid .. ' ' .. j.fence .. ' ' .. until_ms .. ' ' ..
			    (j.vram_mb or '0'))
		end
	end
	local registered = redis.call('EXISTS', wkey)
	if registered == 1 then
		redis.call('HSET', wkey, 'last_beat_ms', now, 'jobs', #renew)
		if redis.call('HGET', wkey, 'state') == 'gone' then
			redis.call('HSET', wkey, 'state', 'up')
		end
		redis.call('PEXPIRE', wkey, ttl)
	end
	redis.call('ZADD', P .. 'workers', now, wid)
	return { lost, cancel, cap, registered }
end)
