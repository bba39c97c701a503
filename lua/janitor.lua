--[[
  The janitor's duties besides reap (comfyq-janitor calls each once a tick;
  every call is bounded, idempotent and safe from several janitors at once).

  trim:          ARGV option pairs events_maxlen (100000; 0: no cap),
                 events_max_age_ms (86400000; 0: no age), refunds_max_age_ms
                 (604800000), batch (10000)
                 -> { events_trimmed, refunds_trimmed, refunds_floor,
                 events_floor }
                 A stream's floor is, over all its consumer groups, the
                 lowest of each group's oldest pending id (XPENDING) and the
                 id after its last-delivered-id (an entry not yet delivered
                 is not acknowledged either); '' when it has no group.
                 `events` is cut to events_maxlen entries and to entries
                 younger than events_max_age_ms, but with a group never at
                 or above its floor: the oldest entries go, at most
                 XLEN - events_maxlen of them, all below the floor.
                 `refunds` only loses entries below its floor that are older
                 than refunds_max_age_ms; with no group nothing goes. Every
                 trim is XTRIM ~ ... LIMIT batch: whole stream nodes, at most
                 batch entries a call; MINID never drops an entry at or
                 above its id. CORRUPT: events, refunds are checked first.
  expire:        ARGV option pairs retention_ms (604800000), batch (100)
                 -> { expired } (CORRUPT: done is read first; an idempotency key of another type is left)
                 Deletes the records of jobs that ended (the `done` zset)
                 more than retention_ms ago, with their idempotency key when
                 it still names them. A job in `done` that is not terminal
                 (a corrupt index) only leaves `done`. A record whose
                 webhook is still to be delivered (wh_state pending or
                 delivering) is kept: its `done` score moves to now, so it
                 is looked at again retention_ms later (a delivery ends
                 within webhook-max-age-s, lua/webhook.lua).
  workers_gone:  ARGV option pairs dead_ms (30000), forget_ms (86400000),
                 batch (100)
                 -> { gone, forgotten, wid, ... (the workers newly gone) }
                 (CORRUPT: reaper, workers are read first; a worker record of another type is counted
                 gone and deleted once forgotten)
                 A worker whose last heartbeat (the `workers` zset) is more
                 than dead_ms ago is marked state=gone (its record, if it
                 has not expired yet; `comfyq workers` shows a worker whose
                 record expired as gone too). A cursor (reaper.workers_ms)
                 walks the beat times, so each death is seen once. After
                 forget_ms it leaves the index and its record is deleted.
  queue_status:  ARGV option pairs top (50), interval_ms (1000; 0: no
                 events) -> { events, busy, total, buried }
                 (CORRUPT: checked first what it and bury write: every
                 ready:<lane>, leases, delayed, done, dead, events, refunds;
                 a slots:<pool> or held:<pool> of another type
                 counts 0)
                 Looks at the first `top` jobs of each lane. A job whose
                 position in its lane differs from the one last published
                 for it (job fields qpos, qpos_ms; make_ready clears them),
                 and whose last queue_status is at least interval_ms old,
                 gets one `queue_status` event: job, tenant, lane, position
                 (1 = next), queued (jobs in the lane), busy and total slots
                 over all pools. A corrupt record at a lane's head, which
                 would break every claim, is buried (lib.lua bury).
  active_files:  ARGV host ('' = every host), [limit (10000)]
                 -> { truncated 0|1, jid, files, jid, files, ... }
                 The active jobs (the `leases` zset) whose worker's record
                 names this host, or has no host, or has expired; files is
                 the job's `files` field (a JSON array, '' when unset). A
                 job whose record cannot be read is listed with ''. The
                 janitor keeps every file of these jobs (README, "File
                 cleanup"). Read-only.
  job_files:     ARGV jid, fence, files (JSON array of up to 64 paths
                 "<output|temp|input>/<relative path>") -> OK | STALE
                 Records the files an active job uses outside its own
                 comfyq/<jid>/ folder (an existing input it refers to), so
                 the file cleanup keeps them while the job runs.
]]

local TRIM_OPTS = { events_maxlen = 100000, events_max_age_ms = 86400000,
	refunds_max_age_ms = 604800000, batch = 10000 }
local EXPIRE_OPTS = { retention_ms = 604800000, batch = 100 }
local GONE_OPTS = { dead_ms = 30000, forget_ms = 86400000, batch = 100 }
local STATUS_OPTS = { top = 50, interval_ms = 1000 }
local FILE_KINDS = { output = true, temp = true, input = true }

local function stream_id(s)
	local ms, seq = string.match(s or '', '^(%d+)%-(%d+)$')
	return tonumber(ms), tonumber(seq)
end

local function stream_id_lt(a, b)
	local am, as = stream_id(a)
	local bm, bs = stream_id(b)
	return am < bm or (am == bm and as < bs)
end

-- The lowest id some group of the stream has not acknowledged, or nil when
-- it has no group.
local function group_floor(key)
	if redis.call('EXISTS', key) == 0 then
		return nil
	end
	local floor
	for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
		local f = {}
		for i = 1, #g, 2 do
			f[g[i]] = g[i + 1]
		end
		local low
		if tonumber(f.pending) > 0 then
			low = redis.call('XPENDING', key, f.name)[2]
		else
			local ms, seq = stream_id(f['last-delivered-id'])
			low = string.format('%.0f-%.0f', ms, seq + 1)
		end
		if floor == nil or stream_id_lt(low, floor) then
			floor = low
		end
	end
	return floor
end

local function xtrim_minid(key, minid, limit)
	local before = redis.call('XLEN', key)
	redis.call('XTRIM', key, 'MINID', '~', minid, 'LIMIT', limit)
	return before - redis.call('XLEN', key)
end

register('trim', function(keys, args)
	local P = prefix(keys)
	local o = options(args, 1, TRIM_OPTS)
	local now = now_ms()
	local ekey, rkey = P .. 'events', P .. 'refunds'
	local etrimmed, rtrimmed = 0, 0

	if o.batch < 1 then
		raise('INVALID', 'batch: must be at least 1')
	end
	need(P, { 'events', 'stream', 'refunds', 'stream' })
	local efloor = group_floor(ekey)
	if o.events_maxlen > 0 and efloor then
		local over = redis.call('XLEN', ekey) - o.events_maxlen
		if over > 0 then
			etrimmed = xtrim_minid(ekey, efloor,
			    math.min(over, o.batch))
		end
	elseif o.events_maxlen > 0 then
		local before = redis.call('XLEN', ekey)
		redis.call('XTRIM', ekey, 'MAXLEN', '~', o.events_maxlen,
		    'LIMIT', o.batch)
		etrimmed = before - redis.call('XLEN', ekey)
	end
	if o.events_max_age_ms > 0 and etrimmed < o.batch then
		local cut = string.format('%.0f-0',
		    math.max(now - o.events_max_age_ms, 0))
		if efloor and stream_id_lt(efloor, cut) then
			cut = efloor
		end
		etrimmed = etrimmed + xtrim_minid(ekey, cut, o.batch)
	end
	local floor = group_floor(rkey)
	if floor then
		local cut = string.format('%.0f-0',
		    math.max(now - o.refunds_max_age_ms, 0))
		if stream_id_lt(cut, floor) then
			floor = cut
		end
		rtrimmed = xtrim_minid(rkey, floor, o.batch)
	end
	if etrimmed > 0 then
		stat(P, 'janitor:events_trimmed', etrimmed)
	end
	if rtrimmed > 0 then
		stat(P, 'janitor:refunds_trimmed', rtrimmed)
	end
	return { etrimmed, rtrimmed, floor or '', efloor or '' }
end)

register('expire', function(keys, args)
	local P = prefix(keys)
	local o = options(args, 1, EXPIRE_OPTS)
	local now = now_ms()
	local n = 0

	if o.retention_ms < 1 or o.batch < 1 then
		raise('INVALID', 'retention_ms, batch: must be at least 1')
	end
	local ids = redis.call('ZRANGEBYSCORE', P .. 'done', '-inf',
	    now - o.retention_ms, 'LIMIT', 0, o.batch)
	for _, jid in ipairs(ids) do
		local j = job_read(P, jid, 'idem', 'wh_state')
		if j and TERMINAL[j.state] and WH_OPEN[j.wh_state or ''] then
			redis.call('ZADD', P .. 'done', now, jid)
		else
			redis.call('ZREM', P .. 'done', jid)
			if not j or TERMINAL[j.state] then
				if j and j.idem and j.idem ~= '' and
				    try('GET', P .. 'idem:' .. j.idem) == jid then
					redis.call('DEL', P .. 'idem:' .. j.idem)
				end
				redis.call('DEL', P .. 'job:' .. jid)
				n = n + 1
			end
		end
	end
	if n > 0 then
		stat(P, 'janitor:expired', n)
	end
	return { n }
end)

--[[
  The batch of workers past dead_ms after the cursor. When the batch is
  full, the trailing workers that share the last beat time are left for
  the next call, so the cursor never skips one (unless the whole batch
  shares one time).
]]
local function gone_batch(P, cursor, cut, batch)
	local from = cursor and ('(' .. cursor) or '-inf'
	local r = redis.call('ZRANGEBYSCORE', P .. 'workers', from, cut,
	    'WITHSCORES', 'LIMIT', 0, batch)
	local n = #r
	if n / 2 == batch then
		local last = r[n]
		local k = n
		while k > 2 and r[k - 2] == last do
			k = k - 2
		end
		if k > 2 then
			n = k - 2
		end
	end
	return r, n
end

register('workers_gone', function(keys, args)
	local P = prefix(keys)
	local o = options(args, 1, GONE_OPTS)
	local now = now_ms()
	local rkey = P .. 'reaper'
	local out = { 0, 0 }

	if o.dead_ms < 1 or o.batch < 1 or o.forget_ms < o.dead_ms then
		raise('INVALID', 'dead_ms, batch: at least 1; forget_ms: ' ..
		    'at least dead_ms')
	end
	local cursor = redis.call('HGET', rkey, 'workers_ms')
	local r, n = gone_batch(P, cursor, now - o.dead_ms, o.batch)
	for i = 1, n, 2 do
		local wkey = P .. 'worker:' .. r[i]
		local st = redis.pcall('HGET', wkey, 'state')
		if type(st) ~= 'table' and st ~= 'gone' and st ~= 'stopped' then
			if st then
				redis.call('HSET', wkey, 'state', 'gone',
				    'gone_ms', now)
			end
			out[1] = out[1] + 1
			out[#out + 1] = r[i]
		end
		cursor = r[i + 1]
	end
	if n > 0 then
		redis.call('HSET', rkey, 'workers_ms', cursor)
	end
	local old = redis.call('ZRANGEBYSCORE', P .. 'workers', '-inf',
	    now - o.forget_ms, 'LIMIT', 0, o.batch)
	for _, wid in ipairs(old) do
		redis.call('ZREM', P .. 'workers', wid)
		redis.call('DEL', P .. 'worker:' .. wid)
	end
	out[2] = #old
	if out[1] > 0 then
		stat(P, 'janitor:workers_gone', out[1])
	end
	return out
end)

register('queue_status', function(keys, args)
	local P = prefix(keys)
	local o = options(args, 1, STATUS_OPTS)
	local now = now_ms()
	local busy, total, events, buried = 0, 0, 0, 0

	if o.top < 1 or o.top > 1000 then
		raise('INVALID', 'top: ' .. o.top .. ' not in 1..1000')
	end
	need(P, K_LANES, K_BURY, K_END, K_REFUND)
	for _, pool in ipairs(redis.call('SMEMBERS', P .. 'pools')) do
		total = total + (tonumber(try('HGET', P .. 'slots:' .. pool,
		    'capacity')) or 0)
		busy = busy + (try('HLEN', P .. 'held:' .. pool) or 0)
	end
	for _, lane in ipairs(LANES) do
		local lkey = P .. 'ready:' .. lane
		local ids = redis.call('ZRANGE', lkey, 0, o.top - 1)
		local queued = redis.call('ZCARD', lkey)
		local pos = 0
		for _, jid in ipairs(ids) do
			local j, why = job_read(P, jid, 'tenant', 'qpos',
			    'qpos_ms', 'model', 'fetch')
			if not j then
				bury(P, jid, 'ready:' .. lane, why, now)
				buried = buried + 1
				queued = queued - 1
			elseif j.state ~= 'queued' then
				ready_rem(P, jid, lane, j.model, j.fetch)
				queued = queued - 1
			else
				pos = pos + 1
				if o.interval_ms > 0 and
				    tonumber(j.qpos or '0') ~= pos and
				    now - (tonumber(j.qpos_ms or '0') or 0) >=
				    o.interval_ms then
					redis.call('HSET', P .. 'job:' .. jid,
					    'qpos', pos, 'qpos_ms', now)
					event(P, { 'type', 'queue_status',
					    'job', jid, 'tenant', j.tenant or '',
					    'lane', lane, 'position', pos,
					    'queued', queued, 'busy', busy,
					    'total', total })
					events = events + 1
				end
			end
		end
	end
	return { events, busy, total, buried }
end)

register('active_files', function(keys, args)
	local P = prefix(keys)
	local host = args[1] or ''
	local limit = arg_int(args[2] or 10000, 'limit', 1, 1000000)
	local ids = redis.call('ZRANGE', P .. 'leases', 0, limit)
	local out = { 0 }
	local hosts = {}

	if host ~= '' then
		arg_name(host, 'host')
	end
	for i, jid in ipairs(ids) do
		if i > limit then
			out[1] = 1
			break
		end
		local j = job_read(P, jid, 'worker', 'files')
		local mine = true
		if j and host ~= '' and j.worker then
			if hosts[j.worker] == nil then
				local h = redis.pcall('HGET', P .. 'worker:' ..
				    j.worker, 'host')
				hosts[j.worker] = type(h) == 'string' and h or ''
			end
			local h = hosts[j.worker]
			mine = h == '' or h == host
		end
		if mine and (not j or j.state == 'active') then
			out[#out + 1] = jid
			out[#out + 1] = j and j.files or ''
		end
	end
	return out
end, true)

-- A path under one of ComfyUI's folders: kind/relative, no '..' or '//'.
local function file_path_ok(p)
	if type(p) ~= 'string' or #p > 512 or string.find(p, '%z') then
		return false
	end
	local kind, rest = string.match(p, '^(%a+)/(.+)$')
	if not kind or not FILE_KINDS[kind] or string.find(p, '//') or
	    string.sub(rest, -1) == '/' then
		return false
	end
	for part in string.gmatch(rest, '[^/]+') do
		if part == '..' or part == '.' then
			return false
		end
	end
	return true
end

register('job_files', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local fence = arg_str(args[2], 'fence', 24)
	local text = arg_str(args[3], 'files', 65536)
	local list = arg_json_array(text, 'files', 64,
	    'must be a JSON array of up to 64 paths')
	for i, p in ipairs(list) do
		if not file_path_ok(p) then
			raise('INVALID', 'files[' .. (i - 1) .. ']: ' ..
			    'expected output|temp|input/<relative path> ' ..
			    'without . or .. parts')
		end
	end
	if not active_job(P, jid, fence) then
		return redis.status_reply('STALE')
	end
	redis.call('HSET', P .. 'job:' .. jid, 'files', text)
	return redis.status_reply('OK')
end)
