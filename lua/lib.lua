#!lua name=comfyq
--[[
  comfyq: one Redis Functions library (Redis >= 7) for every state change of
  a job or a GPU slot. The build concatenates lua/lib.lua (this prelude) and
  one file per function into a single library, which every program loads with
  FUNCTION LOAD REPLACE at start.

  Calling convention: every function takes exactly one key, the queue prefix
  `cq:{<queue>}:`. All keys of a queue share its hash tag, so the library works
  on Redis Cluster; the key names are built from the prefix (docs/design.md
  §3, README "Redis data model"):

    job:<jid>  HASH     idem:<key> STRING   ready:<lane> ZSET   delayed ZSET
    ready:<lane>:m:<h> ZSET (a lane's jobs of one checkpoint, see ready_add)
    leases     ZSET     fence      STRING   done         ZSET   lanes   HASH
    fair:<lane> HASH    slots:<pool> HASH   held:<pool>  HASH   pools   SET
    worker:<wid> HASH   workers    ZSET     marker ZSET  marker:<pool> ZSET
    events     STREAM   refunds    STREAM   stats HASH   jobseq  STRING
    secret     STRING (the random part of job ids, see enqueue)
    reaper     HASH     dead       HASH   webhooks ZSET (jid -> due ms)
    whprog     ZSET (jid -> due ms: progress webhooks, lua/webhook_progress.lua)
    ctl:<wid>  pub/sub channel: cancel publishes `cancel <jid>` there
    comfy:upload:<tenant>:<subfolder/name> STRING (TTL): see upload.lua

  Rules every function keeps:
  - time comes from TIME, never from the caller;
  - each function reads and checks everything before its first write: its
    arguments, and the Redis type of every key it will write (Redis does not
    undo a function's writes when a later command fails). Keys it reads with
    a command of their type before the first write are checked by that read;
    the others by need() (one TYPE each; each file's header names them). A
    key of another type is an error reply CORRUPT naming the key, and
    nothing is written;
  - a call whose fence or state does not match writes nothing and returns the
    status reply STALE;
  - a terminal transition writes the state, the one terminal event and (for a
    failure) the one refund entry in the same call;
  - bad arguments give an error reply whose first word is a stable code
    (INVALID, CONFLICT, NOJOB, NOPOOL, CORRUPT) followed by a readable
    message; an error Redis itself raises on our data (WRONGTYPE, ERR) is
    turned into CORRUPT, a fault in this library into INTERNAL, so a reply
    never starts with a bare Redis or Lua error;
  - what sweeps over many records (heartbeat over a worker's jobs, reap,
    queue_status) is never stopped by one bad record: a corrupt job record
    is buried (bury) or reported lost (heartbeat); a wake-up token (marker,
    marker:<pool>) or a slot to free (held:<pool>) on a key of another type
    is skipped, as the first command on that key fails alone (redis.pcall),
    so such a key never fails a job's transition either. claim, acquire and
    slot_get read held:<pool> and say CORRUPT. The same holds for the
    counters: stats (stat) and the lanes hash's fetch field (ready_add) are
    hints, written through try(), so a stats key of another type loses
    counts and fails no call;
  - the hot path (enqueue, claim, complete) spends no TYPE where a command
    it runs anyway checks the key: a read before the first write, or the
    first write itself (nothing is written before it, so its failure
    leaves everything as it was). Each file's header says which.
]]

local VERSION = '7'
local LANES = { 'high', 'normal', 'low' }
local LANE_OK = { high = true, normal = true, low = true }
local EVENTS_MAXLEN = 1000000		-- hard cap; the janitor trims further
local MSG_MAX = 2048			-- error messages are cut to this
local NODES_MAX = 65536			-- a report's node lists (arg_nodes)
local DEAD_FIELDS = 32			-- evidence kept of a corrupt record
local STATES = { queued = true, delayed = true, active = true,
	succeeded = true, failed = true, canceled = true }
local TERMINAL = { succeeded = true, failed = true, canceled = true }
-- Webhook delivery states (lua/webhook.lua, webhook_progress.lua); the
-- open ones still send.
local WH_OPEN = { pending = true, delivering = true }

-- Error codes (docs/design.md §5) and the terminal state each one leads to.
local ERROR_CODES = {
	invalid_input = 'failed', unknown_workflow = 'failed',
	workflow_error = 'failed', backend_unavailable = 'failed',
	timeout = 'failed', stalled = 'failed', oom = 'failed',
	gpu_fault = 'failed', no_face = 'failed', output_invalid = 'failed',
	canceled = 'canceled', worker_lost = 'failed', internal = 'failed',
}

-- Key groups for need(): suffix after the prefix, then the Redis type.
local K_END = { 'leases', 'zset', 'done', 'zset', 'events', 'stream',
	'webhooks', 'zset', 'whprog', 'zset' }
local K_REFUND = { 'refunds', 'stream' }
local K_LANES = { 'ready:high', 'zset', 'ready:normal', 'zset',
	'ready:low', 'zset' }
-- What bury writes besides the job record (see bury).
local K_BURY = { 'dead', 'hash', 'delayed', 'zset' }

local function err(code, msg)
	return redis.error_reply(code .. ' ' .. msg)
end

-- Aborts the call with a coded error; fcall_wrap turns it into the reply.
local function raise(code, msg)
	error({ cq = code, msg = msg }, 0)
end

-- Returns the prefix in KEYS[1] or raises an INVALID error.
local function prefix(keys)
	local p = keys[1]
	if type(p) ~= 'string' or not string.match(p, '^cq:{[^{}]+}:$') then
		raise('INVALID', 'key: expected the queue prefix cq:{<queue>}:')
	end
	return p
end

--[[
  Checks the types of keys before a function's first write: each argument
  after P is a list of suffix, type pairs. A key that exists with another
  type raises CORRUPT; a missing key is fine (the write creates it).
]]
local function need(P, ...)
	local seen = {}
	for _, list in ipairs({ ... }) do
		for i = 1, #list, 2 do
			local key = P .. list[i]
			if not seen[key] then
				seen[key] = true
				local t = redis.call('TYPE', key).ok
				if t ~= 'none' and t ~= list[i + 1] then
					raise('CORRUPT', 'key ' .. key .. ' is a ' ..
					    t .. ', not a ' .. list[i + 1])
				end
			end
		end
	end
end

local function now_ms()
	local t = redis.call('TIME')
	return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Strict argument parsing: a whole number in lo..hi, or an INVALID error.
local function arg_int(v, name, lo, hi)
	local n = tonumber(v)
	if n == nil or n ~= n or n ~= math.floor(n) or n < lo or n > hi then
		raise('INVALID', name .. ': ' .. tostring(v) ..
		    ' not an integer in ' .. lo .. '..' .. hi)
	end
	return n
end

local function arg_str(v, name, maxlen)
	if type(v) ~= 'string' or v == '' or #v > maxlen then
		raise('INVALID', name .. ': must be 1..' .. maxlen .. ' bytes')
	end
	return v
end

-- A JSON array argument of at most max items, or an INVALID error whose
-- message is name: rule.
local function arg_json_array(v, name, max, rule)
	local ok, list = pcall(cjson.decode, v)
	if not ok or type(list) ~= 'table' or (next(list) ~= nil and
	    list[1] == nil) or #list > max then
		raise('INVALID', name .. ': ' .. rule)
	end
	return list
end

--[[
  What ComfyUI did in an attempt, as its worker heard it (README, Events:
  `nodes`): an optional JSON object of at most NODES_MAX bytes; '{}' when
  none was given, so every entry of a type has the same fields.
]]
local function arg_nodes(v)
	if v == nil or v == '' then
		return '{}'
	end
	local ok, t = pcall(cjson.decode, v)
	if #v > NODES_MAX or not ok or type(t) ~= 'table' or
	    string.sub(v, 1, 1) ~= '{' then
		raise('INVALID', 'nodes: must be a JSON object of at most ' ..
		    NODES_MAX .. ' bytes')
	end
	return v
end

-- Worker ids, pool names, holder names: printable, no spaces, no braces.
local function arg_name(v, name)
	arg_str(v, name, 128)
	if not string.match(v, '^[%w%._:%-@/]+$') then
		raise('INVALID', name .. ": '" .. v ..
		    "' may hold only letters, digits and . _ : - @ /")
	end
	return v
end

local function cut(s, n)
	s = tostring(s or '')
	if #s > n then
		return string.sub(s, 1, n)
	end
	return s
end

-- Pairs field names with the values HMGET gave: a table of those set.
local function named(names, vals)
	local t = {}
	for i, n in ipairs(names) do
		if vals[i] then
			t[n] = vals[i]
		end
	end
	return t
end

-- Reads several fields of a hash into a table keyed by field name.
local function hget(key, ...)
	local names = { ... }
	return named(names, redis.call('HMGET', key, unpack(names)))
end

local function base36(n, width)
	local digits = '0123456789abcdefghijklmnopqrstuvwxyz'
	local s = ''
	repeat
		local d = n % 36
		s = string.sub(digits, d + 1, d + 1) .. s
		n = math.floor(n / 36)
	until n == 0
	while #s < width do
		s = '0' .. s
	end
	return s
end

-- Runs a command through redis.pcall: its reply, or nil when it failed
-- (a key of another type), having written nothing.
local function try(...)
	local r = redis.pcall(...)
	if type(r) == 'table' and r.err then
		return nil
	end
	return r
end

--[[
  Adds a wake-up token: one ZADD. A marker of another type is left alone
  (the ZADD fails alone): a token is a hint, workers also wake on their
  block timeout. A marker stays small by construction, with no count to
  keep: a token for a job or a slot holder is named by token(), its kind
  and the last TOKEN_KEEP characters of the id (job ids end in hex digits:
  at most 256 tokens of a kind, so an idle worker drains at most that many
  stale ones after a busy period), the others are fixed names. Two wakes
  whose names meet make one token and wake one worker, where two may have
  been idle; the other waits for the next token or its block timeout. It
  takes two wakes before any idle worker took the first (a blocked worker
  takes a token as soon as it is added) and the same two digits, so it
  is rare, and it costs latency, never a job.
]]
local TOKEN_KEEP = 2

local function token(kind, id)
	return kind .. string.sub(id, -TOKEN_KEEP)
end

local function wake(key, member, now)
	try('ZADD', key, now, member)
end

local function event(P, fields)
	local args = { P .. 'events', 'MAXLEN', '~', EVENTS_MAXLEN, '*' }
	for i = 1, #fields do
		args[#args + 1] = fields[i]
	end
	return redis.call('XADD', unpack(args))
end

-- Counts in stats: a hint (see the top), so one of another type is skipped.
local function stat(P, name, by)
	try('HINCRBY', P .. 'stats', name, by or 1)
end

--[[
  A slot holder's value in held:<pool>: "wid fence until_ms vram_mb" (an
  outside holder's wid is `outside`). holder_unpack gives the four fields as
  strings, or nothing for a value of another form.
]]
local function holder_pack(wid, fence, until_ms, vram)
	return wid .. ' ' .. fence .. ' ' .. until_ms .. ' ' .. vram
end

local function holder_unpack(v)
	return string.match(v, '^(%S+) (%S+) (%S+) (%S+)$')
end

--[[
  Frees the slot a job holds and tells waiting workers of that pool. A
  held:<pool> of another type is skipped (HDEL fails alone): the job's own
  transition goes on; claims on that pool say CORRUPT until it is repaired.
]]
local function slot_free(P, pool, holder, now)
	if pool and pool ~= '' then
		if try('HDEL', P .. 'held:' .. pool, holder) == 1 then
			wake(P .. 'marker:' .. pool, token('free:', holder),
			    now)
		end
	end
end

--[[
  Model sets (model-aware claiming, lua/claim.lua): a queued job whose
  graph loads a checkpoint (job field model, set at enqueue; '' loads
  none) is in its lane ready:<lane> and in the lane's set of that
  checkpoint, ready:<lane>:m:<the first 16 hex digits of sha1(model)>,
  with the same score (its fair order), so the head of either is one
  ZRANGE. ready_add and ready_rem are the only writers of both, so they
  cannot diverge. A model set is a hint: every command on it goes through
  try(), so one of another type is skipped (that checkpoint gets no
  preference) and never fails a transition; claim drops a member it finds
  that is no longer queued in that lane.
  The lanes hash's field fetch counts the queued jobs with fetch = 1 (over
  all lanes; ready_add and ready_rem keep it, through try(): a hint, never
  below 0). claim's reply passes it on, so a worker whose slots are all
  held asks for a job to prefetch only while there is one (lua/claim.lua).
]]
local MODEL_MAX = 1024			-- bytes of a model key

local function model_key(P, lane, model)
	return P .. 'ready:' .. lane .. ':m:' ..
	    string.sub(redis.sha1hex(model), 1, 16)
end

local function ready_add(P, jid, lane, order, model, fetch)
	local added = redis.call('ZADD', P .. 'ready:' .. lane, order, jid)
	if model and model ~= '' then
		try('ZADD', model_key(P, lane, model), order, jid)
	end
	if fetch == '1' and added == 1 then
		try('HINCRBY', P .. 'lanes', 'fetch', 1)
	end
end

local function ready_rem(P, jid, lane, model, fetch)
	local gone = redis.call('ZREM', P .. 'ready:' .. lane, jid)
	if model and model ~= '' then
		try('ZREM', model_key(P, lane, model), jid)
	end
	if fetch == '1' and gone == 1 then
		local n = try('HINCRBY', P .. 'lanes', 'fetch', -1)
		if n and n < 0 then
			try('HSET', P .. 'lanes', 'fetch', 0)
		end
	end
end

--[[
  Puts a job into its ready lane (and model set) and wakes one idle
  worker. ready_ms: when it became ready, for claim's aging. fetch: the
  job's field fetch ('1': it downloads inputs first).
]]
local function make_ready(P, jid, lane, order, now, model, fetch)
	ready_add(P, jid, lane, order, model, fetch)
	redis.call('HSET', P .. 'job:' .. jid, 'state', 'queued',
	    'ready_ms', now)
	redis.call('HDEL', P .. 'job:' .. jid, 'qpos', 'qpos_ms')
	wake(P .. 'marker', token('job:', jid), now)
end

--[[
  Ends a job: state, one terminal event, one refund entry when it refunds.
  job: table with tenant, meta, attempt (read by the caller before writes).
  The job record keeps everything the terminal event says (state,
  error_code, error, refund, outputs, nodes, tenant, meta, attempt) and the
  event's stream id in end_id, so a reader that missed the event (the
  stream was trimmed past it) reads job:<jid> for as long as the record is kept.
  A job with a `webhook` URL gets its delivery scheduled here, the one
  terminal path: wh_state pending, due now in the webhooks zset
  (lua/webhook.lua hands it to a scheduler). A progress delivery still
  pending (lua/webhook_progress.lua) is dropped here, so none is claimed
  after the terminal one was scheduled; one already claimed is left to its
  webhook_progress_done, which sends no other. The job's key is a hash or
  gone (bury deletes one of another type first), so HMGET cannot fail.
  nodes: the worker's node lists (arg_nodes), nil for an ending no worker
  reported ('{}'). A caller that read the job's webhook, whp_state and
  error_code fields already (END_HOOKS, end_need) passes them in job with
  job.hooks_read set; else finish reads them. An ending without a code (a
  success) deletes the error_code and error a retried attempt left. Its
  first write is the XADD of the event, so a caller that writes nothing
  before finish needs no TYPE for events (end_need).
]]
local function finish(P, jid, job, state, code, msg, now, outputs, nodes)
	local key = P .. 'job:' .. jid
	local hook, whp, oldcode = job.webhook, job.whp_state, job.error_code
	if not job.hooks_read then
		local hw = redis.call('HMGET', key, 'webhook', 'whp_state',
		    'error_code')
		hook, whp, oldcode = hw[1], hw[2], hw[3]
	end
	local refund = state ~= 'succeeded'
	nodes = nodes or '{}'
	local ev = { 'type', state, 'job', jid, 'state', state,
	    'tenant', job.tenant or '', 'attempt', job.attempt or '0',
	    'refund', refund and 'true' or 'false', 'meta', job.meta or '{}',
	    'nodes', nodes }
	if code then
		ev[#ev + 1] = 'error_code'; ev[#ev + 1] = code
		ev[#ev + 1] = 'error'; ev[#ev + 1] = msg
	end
	if outputs then
		ev[#ev + 1] = 'outputs'; ev[#ev + 1] = outputs
	end
	local id = event(P, ev)
	local rec = { 'state', state, 'finished_ms', now,
	    'refund', refund and 'true' or 'false', 'cancel_req', '0',
	    'end_id', id, 'nodes', nodes }
	if code then
		rec[#rec + 1] = 'error_code'; rec[#rec + 1] = code
		rec[#rec + 1] = 'error'; rec[#rec + 1] = msg
	end
	if outputs then
		rec[#rec + 1] = 'outputs'; rec[#rec + 1] = outputs
	end
	redis.call('HSET', key, unpack(rec))
	if not code and oldcode then
		-- A success after a retried failure: the record says what the
		-- event says, not the failed attempt's code (fail.lua's retry
		-- keeps it on the job while it waits).
		redis.call('HDEL', key, 'lease_until', 'error_code', 'error')
	else
		redis.call('HDEL', key, 'lease_until')
	end
	redis.call('ZREM', P .. 'leases', jid)
	redis.call('ZADD', P .. 'done', now, jid)
	if refund then
		redis.call('XADD', P .. 'refunds', '*', 'job', jid,
		    'tenant', job.tenant or '', 'error_code', code or state,
		    'error', msg or '', 'meta', job.meta or '{}')
	end
	stat(P, state)
	if code and state == 'failed' then
		stat(P, 'failed:' .. code)
	end
	if hook and hook ~= '' then
		redis.call('HSET', key, 'wh_state', 'pending', 'wh_attempts', 0,
		    'wh_next_ms', now)
		redis.call('HDEL', key, 'wh_lease_until', 'wh_last_status',
		    'wh_error')
		redis.call('ZADD', P .. 'webhooks', now, jid)
	end
	if whp == 'pending' then
		redis.call('ZREM', P .. 'whprog', jid)
		redis.call('HSET', key, 'whp_state', 'dropped')
		redis.call('HDEL', key, 'whp_next_ms')
		stat(P, 'webhook_progress_dropped')
	end
end

--[[
  The job fields finish reads unless given (see finish): a caller adds
  them to its own read of the job and sets hooks_read.
]]
local END_HOOKS = { 'webhook', 'whp_state', 'error_code' }

--[[
  need() for an ending whose caller writes nothing before finish (so its
  XADD checks events, see finish) and read END_HOOKS: leases and done,
  webhooks only for a job with a webhook, whprog only with a progress
  delivery pending, refunds for a failure, and extra.
]]
local function end_need(P, j, refund, extra)
	need(P, { 'leases', 'zset', 'done', 'zset' },
	    (j.webhook or '') ~= '' and { 'webhooks', 'zset' } or {},
	    j.whp_state == 'pending' and { 'whprog', 'zset' } or {},
	    refund and K_REFUND or {}, extra or {})
end

-- Returns the job's fields when it is active under fence, else nil.
local function active_job(P, jid, fence, ...)
	local j = hget(P .. 'job:' .. jid, 'state', 'fence', ...)
	if j.state ~= 'active' or j.fence ~= fence then
		return nil
	end
	return j
end

--[[
  Reads fields of a job record without tripping over a corrupt one.
  Returns the fields (as hget) and nil, or nil and why the record is
  corrupt: missing, not a hash, or without a known state.
]]
local function job_read(P, jid, ...)
	local names = { 'state', ... }
	local vals = redis.pcall('HMGET', P .. 'job:' .. jid, unpack(names))
	if type(vals) == 'table' and vals.err then
		return nil, 'job record is a ' ..
		    redis.call('TYPE', P .. 'job:' .. jid).ok .. ', not a hash'
	end
	local t = named(names, vals)
	if not t.state then
		if redis.call('EXISTS', P .. 'job:' .. jid) == 0 then
			return nil, 'job record missing'
		end
		return nil, 'job record has no state'
	end
	if not STATES[t.state] then
		return nil, "job record has unknown state '" ..
		    cut(t.state, 64) .. "'"
	end
	return t, nil
end

--[[
  Buries a corrupt job found in index `where` (leases, delayed, ready:<lane>):
  the evidence goes to the dead hash (jid -> JSON: found_ms, where, error,
  type, record: up to DEAD_FIELDS fields, values cut to 200 bytes), the job
  leaves every index and frees its slot, and it ends `failed` with
  error_code internal, one terminal event and one refund entry, so its
  producer hears of it and nobody pays for it. A record that is not a
  hash is replaced by a fresh terminal one. Only non-terminal jobs are
  buried (a terminal job was refunded already), so this refunds once.
]]
local function bury(P, jid, where, why, now)
	local key = P .. 'job:' .. jid
	local kind = redis.call('TYPE', key).ok
	local j, rec = {}, {}
	if kind == 'hash' then
		local all = redis.call('HGETALL', key)
		for i = 1, #all, 2 do
			j[all[i]] = all[i + 1]
			if i < 2 * DEAD_FIELDS then
				rec[cut(all[i], 64)] = cut(all[i + 1], 200)
			end
		end
		if j.pool and string.match(j.pool, '^[%w%._:%-@/]+$') then
			slot_free(P, j.pool, jid, now)
		end
	end
	redis.call('HSET', P .. 'dead', jid, cjson.encode({
	    found_ms = now, where = where, error = why, type = kind,
	    record = rec }))
	redis.call('ZREM', P .. 'leases', jid)
	redis.call('ZREM', P .. 'delayed', jid)
	for _, lane in ipairs(LANES) do
		ready_rem(P, jid, lane, j.model, j.fetch)
	end
	if kind ~= 'hash' and kind ~= 'none' then
		redis.call('DEL', key)
	end
	finish(P, jid, j, 'failed', 'internal', 'corrupt job record (' ..
	    why .. '), found in ' .. where, now, nil)
	stat(P, 'janitor:dead')
end

-- Moves due delayed jobs (retries, run_at) into their lanes; at most n.
-- A corrupt record found here is buried. Returns promoted, buried.
local function promote_due(P, now, n)
	local due = redis.call('ZRANGEBYSCORE', P .. 'delayed', '-inf', now,
	    'LIMIT', 0, n)
	local promoted, buried = 0, 0
	for _, jid in ipairs(due) do
		local j, why = job_read(P, jid, 'priority', 'lane_order',
		    'model', 'fetch')
		redis.call('ZREM', P .. 'delayed', jid)
		if not j then
			bury(P, jid, 'delayed', why, now)
			buried = buried + 1
		elseif j.state == 'delayed' then
			local lane = LANE_OK[j.priority or 'normal'] and
			    (j.priority or 'normal') or 'normal'
			make_ready(P, jid, lane,
			    tonumber(j.lane_order) or now, now, j.model,
			    j.fetch)
			promoted = promoted + 1
		end
	end
	return promoted, buried
end

--[[
  Runs a function, turning what it raised into a coded error reply: raise()
  gives its code; an error reply of a Redis command on our data (WRONGTYPE,
  ERR ...: a key or field of the wrong kind) gives CORRUPT; another Redis
  error code (OOM, READONLY, ...) is passed on as it is; a Lua fault (a bug
  here) gives INTERNAL. Every function checks before its first write, so
  these are reached before anything was written.
]]
local function fcall_wrap(fn)
	return function(keys, args)
		local ok, res = pcall(fn, keys, args)
		if ok then
			return res
		end
		if type(res) == 'table' and res.cq then
			return err(res.cq, res.msg)
		end
		if type(res) == 'table' and res.err then
			res = res.err
		end
		res = tostring(res)
		local code = string.match(res, '^(%u[%u_]*) ')
		if code == 'WRONGTYPE' or code == 'ERR' then
			return err('CORRUPT', cut(res, MSG_MAX))
		elseif code then
			return redis.error_reply(res)
		end
		return err('INTERNAL', cut(res, MSG_MAX))
	end
end

local function register(name, fn, readonly)
	local flags = {}
	if readonly then
		flags = { 'no-writes' }
	end
	redis.register_function{ function_name = 'comfyq_' .. name,
	    callback = fcall_wrap(fn), flags = flags }
end

register('version', function(keys, args)
	return VERSION
end, true)
