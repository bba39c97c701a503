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
          ARGV[6] model: the checkpoint key (enqueue's job field model)
                  the worker's ComfyUI holds, or will hold once the
                  prompts it was given have run; '' or absent: none, and
                  the claim takes jobs in fair order only
          ARGV[7] max_wait_ms (0..86400000, default 10000)
          ARGV[8] max_lead (0..1000000, default 32): model-aware bounds
          ARGV[9] '1': put the fetch count into a job's reply (a worker
                  of library version 7 or later asks; older ones decode
                  the reply without it)
  Output: { 'job', jid, fence, attempt, spec, lease_until, timeout_s, slot,
            model[, fetch] }             slot 1: the job holds a slot of
                                         the pool; 0: claimed to fetch its
                                         inputs, no slot yet (acquire);
                                         model: the job's model key;
                                         fetch: how many queued jobs
                                         fetch inputs first (lanes field
                                         fetch, a hint): with 0, a worker
                                         whose slots are all held does not
                                         claim again to prefetch
          { 'noslot', used, capacity }   every slot of the pool is held, or
                                         no queued job fits the VRAM budget
                                         (or, with prep 0, only jobs that
                                         fetch first wait)
          { 'nojob', next_due_ms | '' }  nothing ready; the earliest delayed
                                         job's due time, so an idle worker
                                         can block on the marker until then;
                                         the queue's marker is emptied (its
                                         tokens all stale: no job waits)
  Errors: NOPOOL when the pool has no capacity set; CORRUPT when a key it
          writes has another type, checked before the first write: leases,
          events; lanes and fair:<lane> are read first and fence is the
          first write (INCR); with due jobs to promote every key promoting
          and the claim write is checked first: fence, leases, lanes,
          events, every ready:<lane> and fair:<lane>, delayed, dead, done,
          webhooks, whprog, refunds (slots:<pool>, held:<pool>, the lanes
          and the jobs at their heads are read first).
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
  Model-aware claiming: with a model, each lane offers two jobs: A, the one
  fair order gives (the first that can be claimed, as above), and B, the
  first that can be claimed in the lane's model set of that checkpoint
  (lib.lua ready_add). B is taken instead of A when A loads another
  checkpoint, B's lane order is at most A's + max_lead (fairness: while A
  waits, no tenant gets more than max_lead of its jobs ahead of it, as a
  tenant's orders rise by at least one a job), and B became ready at most
  max_wait_ms after A did (job field ready_ms; aging: no job is passed
  over by one that came more than max_wait_ms after it, so none starves).
  Else A, exactly as without a model. Lanes keep their precedence. B costs
  one ZRANGE of the model set and a read of the jobs it looks at (as few
  as for A); a member of the model set that is not queued in that lane is
  dropped from it. stats model_preferred counts the claims that took B.
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

local K_CLAIM = { 'leases', 'zset', 'events', 'stream' }
local K_PROMOTE = { 'fence', 'string', 'lanes', 'hash' }
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

-- Whether a job (fields vram_mb, fetch) can be claimed now (see the top):
-- ok, its vram_mb, whether it takes a slot.
local function claim_fits(j, prep, free, room)
	local v = tonumber(j.vram_mb or '0') or 0
	if prep ~= nil and j.fetch == '1' then
		return prep > 0, v, false
	end
	return free and (room == nil or v <= room), v, true
end

--[[
  The first job of ids (a ZRANGE ... WITHSCORES reply) that fit(fields)
  lets through, as { id, order, vram, slot, ready, model, j }, or nil; and
  whether a job was passed over. j holds the job's fields the claim needs
  (CLAIM_FIELDS; spec too when it was the walk's first, the one usually
  taken: claim reads it after the pick otherwise). A model set's walk
  (mkey, lane) drops a member not queued in that lane and stops at an
  order past limit.
]]
local CLAIM_FIELDS = { 'vram_mb', 'fetch', 'ready_ms', 'created_ms', 'model',
	'state', 'priority', 'attempt', 'timeout_s', 'lane_order', 'tenant',
	'started_ms' }
local CLAIM_FIRST = { 'spec', 'vram_mb', 'fetch', 'ready_ms', 'created_ms',
	'model', 'state', 'priority', 'attempt', 'timeout_s', 'lane_order',
	'tenant', 'started_ms' }

local function claim_first(P, ids, fit, mkey, lane, limit)
	local blocked = false
	for i = 1, #ids, 2 do
		local id, order = ids[i], tonumber(ids[i + 1])
		if limit and order > limit then
			break
		end
		local j = hget(P .. 'job:' .. id, unpack(i == 1 and CLAIM_FIRST or
		    CLAIM_FIELDS))
		if mkey and (j.state ~= 'queued' or
		    (j.priority or 'normal') ~= lane) then
			try('ZREM', mkey, id)
		else
			local ok, v, slot = fit(j)
			if ok then
				return { id = id, order = order, vram = v,
				    slot = slot, model = j.model or '',
				    ready = tonumber(j.ready_ms or j.created_ms)
				    or 0, j = j }, blocked
			end
			blocked = true
		end
	end
	return nil, blocked
end

--[[
  Walks the lanes for the job to claim. free: a slot is free; room: VRAM
  left in the budget (nil: no budget); pref: { model, wait, lead } or nil.
  Returns the job (claim_first), its lane, whether a job was passed over,
  and whether model preference chose it.
]]
local function claim_pick(P, scan, prep, free, room, pref)
	local fit = function(j)
		return claim_fits(j, prep, free, room)
	end
	local blocked = false
	for _, l in ipairs(LANES) do
		local ids = redis.call('ZRANGE', P .. 'ready:' .. l, 0, scan - 1,
		    'WITHSCORES')
		local a, passed = claim_first(P, ids, fit)
		blocked = blocked or passed
		if a and pref and a.model ~= pref.model then
			local mkey = model_key(P, l, pref.model)
			local b = claim_first(P, try('ZRANGE', mkey, 0, scan - 1,
			    'WITHSCORES') or {}, fit, mkey, l,
			    a.order + pref.lead)
			if b and b.ready - a.ready <= pref.wait then
				return b, l, blocked, true
			end
		end
		if a then
			return a, l, blocked, false
		end
	end
	return nil, nil, blocked, false
end

register('claim', function(keys, args)
	local P = prefix(keys)
	local wid = arg_name(args[1], 'worker')
	local pool = arg_name(args[2], 'pool')
	local lease = arg_int(args[3], 'lease_ms', 1000, 3600000)
	local scan = arg_int(args[4] or 16, 'scan', 1, 1000)
	local prep = args[5] and arg_int(args[5], 'prep', 0, 1000)
	local model = args[6] or ''
	local wait = arg_int(args[7] or 10000, 'max_wait_ms', 0, 86400000)
	local lead = arg_int(args[8] or 32, 'max_lead', 0, 1000000)
	local want_fetch = args[9] == '1'
	if #model > MODEL_MAX then
		raise('INVALID', 'model: at most ' .. MODEL_MAX .. ' bytes')
	end
	local pref = model ~= '' and
	    { model = model, wait = wait, lead = lead } or nil
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
		need(P, K_PROMOTE, K_CLAIM, K_FAIR, K_LANES, K_BURY, K_END,
		    K_REFUND)
		if not tonumber(redis.call('GET', P .. 'fence') or '0') then
			raise('CORRUPT', 'key ' .. P .. 'fence is not a number')
		end
		promote_due(P, now, 100)
	end
	local pick, lane, blocked, preferred = claim_pick(P, scan, prep,
	    used < cap, room, pref)
	if not pick then
		if blocked then
			wake(P .. 'marker', 'pending', now)
			return { 'noslot', used, cap }
		end
		-- No lane holds a job: every wake-up token of the queue's
		-- marker is stale (a job made ready later leaves a new one),
		-- so none wakes an idle worker for nothing.
		try('DEL', P .. 'marker')
		local d = redis.call('ZRANGE', P .. 'delayed', 0, 0, 'WITHSCORES')
		return { 'nojob', d[2] or '' }
	end

	local jid, vram, slot, j = pick.id, pick.vram, pick.slot, pick.j
	local key = P .. 'job:' .. jid
	if not j.spec then
		j.spec = redis.call('HGET', key, 'spec')
	end
	-- Reads before the first write check lanes and fair:<lane>.
	local tenant = j.tenant or ''
	local lv = redis.call('HMGET', P .. 'lanes', lane, 'fetch')
	local vclock = tonumber(lv[1]) or 0
	local tlast = tonumber(redis.call('HGET', P .. 'fair:' .. lane,
	    tenant)) or 0
	if #due == 0 then
		need(P, K_CLAIM)
	end
	-- The first write: a fence of another type fails it, nothing written.
	local fence = redis.call('INCR', P .. 'fence')
	local attempt = (tonumber(j.attempt) or 0) + 1
	local until_ms = now + lease
	local order = tonumber(j.lane_order) or 0
	local fetch_left = math.max((tonumber(lv[2]) or 0) -
	    (j.fetch == '1' and 1 or 0), 0)

	ready_rem(P, jid, lane, pick.model, j.fetch)
	local rec = { 'state', 'active', 'fence', fence,
	    'attempt', attempt, 'worker', wid, 'pool', pool,
	    'lease_until', until_ms, 'lease_ms', lease, 'claimed_ms', now,
	    'slot', slot and '1' or '0', 'renewed', '0' }
	if not j.started_ms then
		rec[#rec + 1] = 'started_ms'; rec[#rec + 1] = now
	end
	redis.call('HSET', key, unpack(rec))
	redis.call('ZADD', P .. 'leases', until_ms, jid)
	if slot then
		redis.call('HSET', P .. 'held:' .. pool, jid,
		    holder_pack(wid, fence, until_ms, vram))
	end
	-- Advance the lane clock; drop the tenant's mark once it is behind.
	if order > vclock then
		vclock = order
		redis.call('HSET', P .. 'lanes', lane, vclock)
	end
	if tlast <= vclock then
		redis.call('HDEL', P .. 'fair:' .. lane, tenant)
	end
	event(P, { 'type', 'started', 'job', jid, 'worker', wid, 'pool', pool,
	    'attempt', attempt, 'fence', fence, 'tenant', tenant })
	stat(P, 'started')
	if preferred then
		stat(P, 'model_preferred')
	end
	local reply = { 'job', jid, fence, attempt, j.spec or '', until_ms,
	    tonumber(j.timeout_s) or 0, slot and 1 or 0, pick.model }
	if want_fetch then
		reply[#reply + 1] = fetch_left
	end
	return reply
end)
