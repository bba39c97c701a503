--[[
  enqueue: validate a job spec and queue it.
  Input:  KEYS[1] queue prefix
          ARGV[1] spec (JSON, docs/design.md §4)
          ARGV[2..] option pairs: idem_ttl_ms (default 86400000),
                    max_spec_bytes (1048576), max_prompt_len (8192),
                    max_param_len (65536), model (the checkpoint key,
                    see below; '' : derived here), vram_mb (0..1048576:
                    the VRAM the job needs when its spec gives none, the
                    template's estimate; the spec's own vram_mb wins)
  Output: { jid, 'created' | 'existing', state }
  Errors: INVALID spec.<field>: ..., INVALID option <name>: ...,
          CONFLICT idempotency_key: ..., CORRUPT (checked before the first
          write: ready:<lane> or delayed, events; idem:<key>, lanes,
          fair:<lane>, secret and the job an idempotency key names are
          read first, and jobseq is the first write, INCR)
  The limits max_spec_bytes, max_prompt_len and max_param_len may be
  lowered by the caller, never raised above the library's (SPEC_LIMITS).
  The job field fetch is 1 when the worker must download something before
  the job can run (an inputs value or a controlnets[i].image that starts
  with http:// or https://, any case), else 0: claim hands such a job out
  without a GPU slot to a worker that asks for one to prepare.
  An idempotency key maps to the job it first created for idem_ttl_ms; the
  same key with the same spec returns that job, with another spec it is
  refused. Specs are compared parsed, not as bytes: spec_sha is the SHA-1 of
  the spec's canonical form (spec_canon below), so key order, spacing, 1.0
  against 1 and \u escapes do not matter. cjson decodes [] and {} to the same
  empty table, so an empty array and an empty object count as equal. A job
  recorded by an older library holds the SHA-1 of its bytes: the same bytes
  still match it.
  model: the checkpoints the job's graph loads, for model-aware claiming
  (lua/claim.lua): the distinct string values of every node input named
  ckpt_name, sorted bytewise and joined with ','; '' when it loads none.
  A raw graph's is found here; a template's graph is known only where the
  template is (comfyq submit and the scheduler render it and pass the
  option model, shared/workflow/wfmodel.c, the same rule), so a template
  job enqueued without the option counts as loading none. The job is also
  put into its lane's model set (lib.lua ready_add).
  webhook_progress (1 or 0) says whether the job asked for progress
  webhooks (lua/progress.lua, webhook_progress.lua).
  Job ids: 8 base36 digits of the enqueue time in ms, 4 of the queue's
  sequence (jobseq, mod 36^4), then 16 hex digits of
  sha1hex(secret .. ':' .. seq .. ':' .. time): 28 characters of [0-9a-z],
  sorted by time, and not guessable from another job's id. The secret is
  per queue (the key secret), made once from sha1hex of the server's run_id
  (INFO server: random at every server start), the time, the sequence and
  math.random (seeded the same at every start, so worth nothing alone); it
  never leaves Redis.
  Inside a lane, jobs of different tenants interleave: each job's order is
  one past the later of the lane's clock (the order last claimed) and its
  tenant's last order, so one tenant's burst cannot starve another.
]]

local ENQUEUE_OPTS = {
	idem_ttl_ms = 86400000, max_spec_bytes = SPEC_LIMITS.max_spec_bytes,
	max_prompt_len = SPEC_LIMITS.max_prompt_len,
	max_param_len = SPEC_LIMITS.max_param_len, model = '', vram_mb = 0,
}

-- Whether a sorts before b byte by byte (string < follows the locale).
local function byte_lt(a, b)
	for i = 1, math.min(#a, #b) do
		local x, y = string.byte(a, i), string.byte(b, i)
		if x ~= y then
			return x < y
		end
	end
	return #a < #b
end

-- The job's model key (see the top): the option, else its raw graph's.
local function spec_model(spec, given)
	if given ~= '' or type(spec.graph) ~= 'table' then
		if #given > MODEL_MAX or
		    string.find(given, '[%z\1-\31\127]') then
			raise('INVALID', 'option model: at most ' .. MODEL_MAX ..
			    ' bytes without control characters')
		end
		return given
	end
	local names, seen = {}, {}
	for _, node in pairs(spec.graph) do
		local v = type(node.inputs) == 'table' and node.inputs.ckpt_name
		if type(v) == 'string' and v ~= '' and not seen[v] then
			seen[v] = true
			names[#names + 1] = v
		end
	end
	table.sort(names, byte_lt)
	return cut(table.concat(names, ','), MODEL_MAX)
end

--[[
  Appends the canonical JSON of a decoded value to out: object keys sorted
  bytewise, no spaces, strings as cjson writes them, integers below 2^53
  without a fraction, other numbers in %.17g (exact for a double), an empty
  table as {}. cjson decodes arrays to tables keyed 1..n and objects to
  tables keyed by strings, so a table with #t entries is an array.
]]
local function spec_canon(v, out)
	local t = type(v)
	if t == 'table' then
		local keys = {}
		for k in pairs(v) do
			keys[#keys + 1] = k
		end
		if #keys == 0 then
			out[#out + 1] = '{}'
		elseif #v == #keys then
			for i = 1, #v do
				out[#out + 1] = i == 1 and '[' or ','
				spec_canon(v[i], out)
			end
			out[#out + 1] = ']'
		else
			table.sort(keys)
			for i, k in ipairs(keys) do
				out[#out + 1] = (i == 1 and '{' or ',') ..
				    cjson.encode(k) .. ':'
				spec_canon(v[k], out)
			end
			out[#out + 1] = '}'
		end
	elseif t == 'number' then
		if v == math.floor(v) and math.abs(v) < 2 ^ 53 then
			out[#out + 1] = string.format('%.0f', v == 0 and 0 or v)
		else
			out[#out + 1] = string.format('%.17g', v)
		end
	elseif t == 'string' then
		out[#out + 1] = cjson.encode(v)
	elseif t == 'boolean' then
		out[#out + 1] = tostring(v)
	else
		out[#out + 1] = 'null'
	end
end

local function is_url(v)
	return type(v) == 'string' and
	    string.match(string.lower(string.sub(v, 1, 8)), '^https?://') ~= nil
end

-- True when the spec names an input image the worker must download.
local function needs_fetch(spec)
	for _, v in pairs(spec.inputs or {}) do
		if is_url(v) then
			return true
		end
	end
	for _, c in ipairs(spec.controlnets or {}) do
		if type(c) == 'table' and is_url(c.image) then
			return true
		end
	end
	return false
end

register('enqueue', function(keys, args)
	local P = prefix(keys)
	local opts = options(args, 2, ENQUEUE_OPTS)
	for _, k in ipairs({ 'max_spec_bytes', 'max_prompt_len',
	    'max_param_len' }) do
		if opts[k] > SPEC_LIMITS[k] then
			raise('INVALID', 'option ' .. k .. ': ' .. opts[k] ..
			    ' over the library\'s limit ' .. SPEC_LIMITS[k] ..
			    ' (a caller may lower it, not raise it)')
		end
	end
	if opts.vram_mb > 1048576 then
		raise('INVALID', 'option vram_mb: ' .. opts.vram_mb ..
		    ' over 1048576')
	end
	local text = args[1]
	local spec = spec_parse(text, opts)
	local model = spec_model(spec, opts.model)
	local now = now_ms()
	local canon = {}
	spec_canon(spec, canon)
	local sha = redis.sha1hex(table.concat(canon))
	local idem = spec.idempotency_key

	if idem then
		local old = redis.call('GET', P .. 'idem:' .. idem)
		if old then
			local j = hget(P .. 'job:' .. old, 'spec_sha', 'state')
			if j.spec_sha and j.spec_sha ~= sha and
			    j.spec_sha ~= redis.sha1hex(text) then
				raise('CONFLICT', 'idempotency_key: ' .. idem ..
				    ' was used for job ' .. old ..
				    ' with a different spec')
			end
			if j.spec_sha then
				return { old, 'existing', j.state }
			end
		end
	end

	local lane = spec.priority or 'normal'
	local tenant = spec.tenant or ''
	local vclock = tonumber(redis.call('HGET', P .. 'lanes', lane)) or 0
	local tlast = tonumber(redis.call('HGET', P .. 'fair:' .. lane,
	    tenant)) or 0
	local order = math.max(vclock, tlast) + 1
	local state = 'queued'
	if spec.run_at and spec.run_at > now then
		state = 'delayed'
	end
	need(P, { state == 'queued' and 'ready:' .. lane or 'delayed', 'zset',
	    'events', 'stream' })
	local secret = redis.call('GET', P .. 'secret')
	local jid, key, seq
	repeat
		seq = redis.call('INCR', P .. 'jobseq')
		if not secret then
			local info = redis.call('INFO', 'server')
			secret = redis.sha1hex((string.match(info,
			    'run_id:(%x+)') or '') .. ':' .. now .. ':' .. seq ..
			    ':' .. math.random())
			redis.call('SET', P .. 'secret', secret)
		end
		jid = base36(now, 8) .. base36(seq % 1679616, 4) ..
		    string.sub(redis.sha1hex(secret .. ':' .. seq .. ':' .. now),
		    1, 16)
		key = P .. 'job:' .. jid
	until redis.call('EXISTS', key) == 0
	local meta = '{}'
	if spec.meta and next(spec.meta) ~= nil then
		meta = cjson.encode(spec.meta)
	end

	-- One HSET writes the whole record, its state with it (a fresh
	-- record: make_ready's qpos fields were never set).
	local fetch = needs_fetch(spec) and '1' or '0'
	redis.call('HSET', P .. 'fair:' .. lane, tenant, order)
	redis.call('HSET', key, 'spec', text, 'spec_sha', sha,
	    'tenant', tenant, 'priority', lane, 'lane_order', order,
	    'attempt', 0, 'max_attempts', spec.max_attempts or 3,
	    'timeout_s', spec.timeout_s or 0, 'vram_mb', spec.vram_mb or opts.vram_mb,
	    'meta', meta, 'webhook', spec.webhook or '',
	    'webhook_progress', spec.webhook_progress and '1' or '0',
	    'idem', idem or '',
	    'created_ms', now, 'reclaims', 0, 'cancel_req', '0', 'fence', 0,
	    'refund', 'false', 'fetch', fetch, 'model', model,
	    'state', state, state == 'delayed' and 'run_at' or 'ready_ms',
	    state == 'delayed' and spec.run_at or now)
	if state == 'delayed' then
		redis.call('ZADD', P .. 'delayed', spec.run_at, jid)
	else
		ready_add(P, jid, lane, order, model, fetch)
		wake(P .. 'marker', token('job:', jid), now)
	end
	if idem then
		redis.call('SET', P .. 'idem:' .. idem, jid, 'PX',
		    math.max(opts.idem_ttl_ms, 1))
	end
	event(P, { 'type', 'queued', 'job', jid, 'tenant', tenant,
	    'priority', lane, 'state', state })
	stat(P, 'enqueued')
	return { jid, 'created', state }
end)
