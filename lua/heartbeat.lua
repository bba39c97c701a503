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
  Errors: INVALID; CORRUPT when leases or workers is not a zset (checked
          before the first write).
  A renewed job is marked (job field renewed = 1, reset by claim), so reap
  tells a lease lost right after the claim (a worker that crashed on the job)
  from one lost later.
  The worker hash gets a fresh TTL and the workers index its beat time; a
  worker the janitor had marked gone (a partition that healed) is up again.
  One bad record never costs the other jobs their leases: a job whose
  record is not a hash is reported lost; a held:<pool> of another type
  leaves that slot entry alone; a worker record of another type is left
  alone and reported as not registered; a slots:<pool> of another type
  reports capacity 0.
]]

local HB_JOBS_MAX = 1024

register('heartbeat', function(keys, args)
	local P = prefix(keys)
	local wid = arg_name(args[1], 'worker')
	local lease = arg_int(args[2], 'lease_ms', 1000, 3600000)
	local ttl = arg_int(args[3], 'ttl_ms', 1000, 86400000)
	if (#args - 3) % 2 ~= 0 then
		raise('INVALID', 'jobs: expected jid fence pairs')
	end
	if (#args - 3) / 2 > HB_JOBS_MAX then
		raise('INVALID', 'jobs: at most ' .. HB_JOBS_MAX .. ' pairs')
	end
	local now = now_ms()
	local until_ms = now + lease
	local wkey = P .. 'worker:' .. wid
	local wrec = try('HMGET', wkey, 'pool', 'state')
	local lost, cancel, renew = {}, {}, {}
	local names = { 'state', 'fence', 'worker', 'cancel_req', 'pool',
	    'vram_mb' }

	for i = 4, #args, 2 do
		local jid = arg_str(args[i], 'jid', 64)
		local fence = arg_str(args[i + 1], 'fence', 24)
		local vals = try('HMGET', P .. 'job:' .. jid, unpack(names))
		local j = vals and named(names, vals) or {}
		if j.state == 'active' and j.fence == fence and j.worker == wid then
			local held = j.pool and try('HEXISTS', P .. 'held:' ..
			    j.pool, jid) == 1
			renew[#renew + 1] = { jid, j, held }
			if j.cancel_req == '1' then
				cancel[#cancel + 1] = jid
			end
		else
			lost[#lost + 1] = jid
		end
	end
	local cap = 0
	if wrec and wrec[1] then
		cap = tonumber(try('HGET', P .. 'slots:' .. wrec[1],
		    'capacity')) or 0
	end
	need(P, { 'leases', 'zset', 'workers', 'zset' })

	for _, r in ipairs(renew) do
		local jid, j = r[1], r[2]
		redis.call('HSET', P .. 'job:' .. jid, 'lease_until', until_ms,
		    'renewed', '1')
		redis.call('ZADD', P .. 'leases', until_ms, jid)
		if r[3] then
			redis.call('HSET', P .. 'held:' .. j.pool, jid,
			    holder_pack(wid, j.fence, until_ms,
			    j.vram_mb or '0'))
		end
	end
	local registered = 0
	if wrec and redis.call('EXISTS', wkey) == 1 then
		registered = 1
		redis.call('HSET', wkey, 'last_beat_ms', now, 'jobs', #renew)
		if wrec[2] == 'gone' then
			redis.call('HSET', wkey, 'state', 'up')
		end
		redis.call('PEXPIRE', wkey, ttl)
	end
	redis.call('ZADD', P .. 'workers', now, wid)
	return { lost, cancel, cap, registered }
end)
