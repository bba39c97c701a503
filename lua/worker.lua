--[[
  Worker registry.
  register:   ARGV worker id, ttl ms, pool, default capacity (0: leave the
              pool as it is), default VRAM budget MB (0: none), then
              field, value pairs (host, gpu_name, gpu_uuid, vram_total_mb,
              comfy_url, version, ...)
              -> { capacity, vram_budget } of the pool (capacity 0 when the
              pool has none yet and no default was given).
              The pool's capacity and budget are set only when missing, so a
              value set with `comfyq slots set` survives worker restarts.
  unregister: ARGV worker id -> OK. Marks it stopped; the record expires.
  The record (worker:<wid>) expires ttl ms after the last heartbeat; the
  workers index keeps the last beat time, so a vanished worker shows as gone.
  register takes at most REG_FIELDS_MAX extra fields, none of the names it
  sets itself (pool, state, last_beat_ms, stopped_ms, gone_ms). started_ms
  (default now) and jobs (default 0) may be given, as whole numbers: a
  worker that registers again when its health changes keeps its own start
  time and the jobs it runs. It checks worker:<wid>, workers and (with a default capacity)
  pools and slots:<pool> before its first write: INVALID or CORRUPT, and
  the old record is still there.
]]

local REG_FIELDS_MAX = 64
local REG_OWN = { pool = true, state = true, last_beat_ms = true,
	stopped_ms = true, gone_ms = true }
local REG_NUM = { started_ms = 4102444800000, jobs = 100000 }

register('register', function(keys, args)
	local P = prefix(keys)
	local wid = arg_name(args[1], 'worker')
	local ttl = arg_int(args[2], 'ttl_ms', 1000, 86400000)
	local pool = arg_name(args[3], 'pool')
	local cap = arg_int(args[4] or 0, 'capacity', 0, 256)
	local budget = arg_int(args[5] or 0, 'vram_budget_mb', 0, 16777216)
	if (#args - 5) % 2 ~= 0 then
		raise('INVALID', 'fields: expected field value pairs')
	end
	if (#args - 5) / 2 > REG_FIELDS_MAX then
		raise('INVALID', 'fields: at most ' .. REG_FIELDS_MAX .. ' pairs')
	end
	local now = now_ms()
	local wkey = P .. 'worker:' .. wid
	local fields = { 'pool', pool, 'state', 'up', 'started_ms', now,
	    'last_beat_ms', now, 'jobs', 0 }
	for i = 6, #args, 2 do
		local f = arg_name(args[i], 'field')
		if REG_OWN[f] then
			raise('INVALID', "field: '" .. f .. "' is set by register")
		end
		fields[#fields + 1] = f
		if REG_NUM[f] then
			fields[#fields + 1] = arg_int(args[i + 1], f, 0, REG_NUM[f])
		else
			fields[#fields + 1] = cut(args[i + 1], 512)
		end
	end
	local skey = P .. 'slots:' .. pool
	need(P, { 'worker:' .. wid, 'hash', 'workers', 'zset' },
	    cap > 0 and { 'pools', 'set', 'slots:' .. pool, 'hash' } or {})
	redis.call('DEL', wkey)
	redis.call('HSET', wkey, unpack(fields))
	redis.call('PEXPIRE', wkey, ttl)
	redis.call('ZADD', P .. 'workers', now, wid)
	if cap > 0 then
		redis.call('SADD', P .. 'pools', pool)
		redis.call('HSETNX', skey, 'capacity', cap)
		redis.call('HSETNX', skey, 'vram_budget', budget)
	end
	local p = hget(skey, 'capacity', 'vram_budget')
	return { tonumber(p.capacity or '0') or 0,
	    tonumber(p.vram_budget or '0') or 0 }
end)

register('unregister', function(keys, args)
	local P = prefix(keys)
	local wid = arg_name(args[1], 'worker')
	local wkey = P .. 'worker:' .. wid
	need(P, { 'worker:' .. wid, 'hash' })
	if redis.call('EXISTS', wkey) == 1 then
		redis.call('HSET', wkey, 'state', 'stopped', 'stopped_ms',
		    now_ms())
	end
	return redis.status_reply('OK')
end)
