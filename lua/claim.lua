--[[
  claim: take the next job, with a GPU slot of the worker's pool or, for a
  job whose inputs must be downloaded first, without one.
  Input:  KEYS[1] queue prefix
          ARGV[1] worker id   ARGV[2] pool   ARGV[3] lease ms
          ARGV[4] scan: how many jobs per lane to consider (default 16)
          ARGV[5] prep: how many more jobs this worker will hold without a
                  slot while it fetches their inputs (0..1000). Absent (a
                  worker that predates it): fetch is ignored and every job
                  is claimed with a slot, so such a worker never leaves
                  jobs with URL inputs waiting forever.
  Output: { 'job', jid, fence, attempt, spec, lease_until, timeout_s, slot }
                                         slot 1: the job holds a slot of
                                         the pool; 0: claimed to fetch its
                                         inputs, no slot yet (acquire)
          { 'noslot', used, capacity }   every slot of the pool is held, or
                                         no queued job fits the VRAM budget
                                         (or, with prep 0, only jobs that
                                         fetch first wait)
          { 'nojob', next_due_ms | '' }  nothing ready; the earliest delayed
                                         job's due time, so an idle worker
                                         can block on the marker until then
  Errors: NOPOOL when the pool has no capacity set; CORRUPT when a key it
          writes has another type, checked before the first write: fence,
          leases, lanes, fair:<lane>, events, stats, and with due jobs to
          promote also every ready:<lane> and fair:<lane>, delayed, dead,
          done, refunds (slots:<pool>, held:<pool>, the lanes and the jobs at
          their heads are read first).
  A fresh fence comes from INCR on every claim; the job's lease and the slot
  holder carry it. Due delayed jobs are promoted first. Lanes are taken in
  order high, normal, low; inside a lane the lowest order wins. A job with
  fetch = 1 (enqueue: an input or ControlNet image that is an http(s) URL)
  is claimed without a slot while prep > 0 (whether or not a slot is free:
  no held:<pool> entry, no VRAM counted, job field slot = 0) and passed over
  while prep = 0. Any other job needs a free slot and its vram_mb must fit
  the pool's VRAM budget, or it is passed over (a smaller one may pass); a
  job passed over keeps its place. With every slot held the walk still
  happens when prep > 0, else the reply is noslot. With no slot free while
  jobs wait, a 'pending' token is left on the marker so a worker of another
  pool wakes up for them.
]]

-- The VRAM the holders in an HGETALL reply declared, leaving out holder skip.
local function holders_vram(held, skip)
	local used = 0
	for i = 2, #held, 2 do
		local _, _, _, vram = holder_unpack(held[i])
		if held[i - 1] ~= skip then
			used = used + (tonumber(vram) or 0)
		end
	end
	return used
end

local K_CLAIM = { 'fence', 'string', 'leases', 'zset', 'lanes', 'hash',
	'events', 'stream', 'stats', 'hash' }
local K_FAIR = { 'fair:high', 'hash', 'fair:normal', 'hash',
	'fair:low', 'hash' }

local function jobs_waiting(P)
	for _, lane in ipairs(LANES) do
		if redis.call('ZCARD', P .. 'ready:' .. lane) > 0 then
			return true
		end
	end
	return false
end

--[[
  Walks the lanes for the job to claim. free: a slot is free; room: VRAM
  left in the budget (nil: no budget). Returns jid, lane, vram_mb, slot
  (true: takes a slot) and whether a job was passed over.
]]
local function claim_pick(P, scan, prep, free, room)
	local fetching = prep ~= nil
	local blocked = false
	for _, l in ipairs(LANES) do
		local ids = redis.call('ZRANGE', P .. 'ready:' .. l, 0, scan - 1)
		for _, id in ipairs(ids) do
			local j = hget(P .. 'job:' .. id, 'vram_mb', 'fetch')
			local v = tonumber(j.vram_mb or '0') or 0
			if fetching and j.fetch == '1' then
				if prep > 0 then
					return id, l, v, false, blocked
				end
			elseif free and (room == nil or v <= room) then
				return id, l, v, true, blocked
			end
			blocked = true
		end
	end
	return nil, nil, 0, false, blocked
end

register('claim', function(keys, args)
	local P = prefix(keys)
	local wid = arg_name(args[1], 'worker')
	local pool = arg_name(args[2], 'pool')
	local lease = arg_int(args[3], 'lease_ms', 1000, 3600000)
	local scan = arg_int(args[4] or 16, 'scan', 1, 1000)
	local prep = args[5] and arg_int(args[5], 'prep', 0, 1000)
	local now = now_ms()
	local p = hget(P .. 'slots:' .. pool, 'capacity', 'vram_budget')

	if not p.capacity then
		raise('NOPOOL', "pool '" .. pool .. "' has no capacity set")
	end
	local cap = tonumber(p.capacity) or 0
	local budget = tonumber(p.vram_budget or '0') or 0
	local held = redis.call('HGETALL', P .. 'held:' .. pool)
	local used = #held / 2
	if used >= cap and (prep or 0) == 0 then
		if jobs_waiting(P) then
			wake(P .. 'marker', 'pending', now)
		end
		return { 'noslot', used, cap }
	end
	local room
	if budget > 0 then
		room = budget - holders_vram(held)
	end

	-- Promoting due jobs writes before the walk: check all a claim writes.
	local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now,
	    'LIMIT', 0, 1)
	if #due > 0 then
		need(P, K_CLAIM, K_FAIR, K_LANES, K_BURY, K_END, K_REFUND)
		if not tonumber(redis.call('GET', P .. 'fence') or '0') then
			raise('CORRUPT', 'key ' .. P .. 'fence is not a number')
		end
		promote_due(P, now, 100)
	end
	local jid, lane, vram, slot, blocked = claim_pick(P, scan, prep,
	    used < cap, room)
	if not jid then
		if blocked then
			wake(P .. 'marker', 'pending', now)
			return { 'noslot', used, cap }
		end
		local d = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
		return { 'nojob', d[2] or '' }
	end

	local key = P .. 'job:' .. jid
	local j = hget(key, 'spec', 'attempt', 'timeout_s', 'lane_order',
	    'tenant', 'started_ms')
	if #due == 0 then
		need(P, K_CLAIM, { 'fair:' .. lane, 'hash' })
	end
	local fence = redis.call('INCR', P .. 'fence')
	local attempt = (tonumber(j.attempt) or 0) + 1
	local until_ms = now + lease
	local order = tonumber(j.lane_order) or 0

	redis.call('ZREM', P .. 'ready:' .. lane, jid)
	redis.call('HSET', key, 'state', 'active', 'fence', fence,
	    'attempt', attempt, 'worker', wid, 'pool', pool,
	    'lease_until', until_ms, 'lease_ms', lease, 'claimed_ms', now,
	    'slot', slot and '1' or '0', 'renewed', '0')
	if not j.started_ms then
		redis.call('HSET', key, 'started_ms', now)
	end
	redis.call('ZADD', P .. 'leases', until_ms, jid)
	if slot then
		redis.call('HSET', P .. 'held:' .. pool, jid,
		    holder_pack(wid, fence, until_ms, vram))
	end
	-- Advance the lane clock; drop the tenant's mark once it is behind.
	local vclock = tonumber(redis.call('HGET', P .. 'lanes', lane)) or 0
	if order > vclock then
		vclock = order
		redis.call('HSET', P .. 'lanes', lane, vclock)
	end
	local tenant = j.tenant or ''
	local tlast = tonumber(redis.call('HGET', P .. 'fair:' .. lane,
	    tenant)) or 0
	if tlast <= vclock then
		redis.call('HDEL', P .. 'fair:' .. lane, tenant)
	end
	event(P, { 'type', 'started', 'job', jid, 'worker', wid, 'pool', pool,
	    'attempt', attempt, 'fence', fence, 'tenant', tenant })
	stat(P, 'started')
	return { 'job', jid, fence, attempt, j.spec or '', until_ms,
	    tonumber(j.timeout_s) or 0, slot and 1 or 0 }
end)
