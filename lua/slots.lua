--[[
  Slot pools: one pool per GPU backend, with a capacity (how many jobs may
  hold a slot at once) and an optional VRAM budget in MB. Job slots are taken
  by claim and given back by complete, fail, release and reap; the functions
  here set and show pools and let something other than a job hold a slot
  (a warm-up, a maintenance task) under a lease and a fence.

  slot_set:     ARGV pool, capacity (1..256), [vram_budget_mb (0 = none)]
                -> OK. Takes effect on the next claim; waiting workers wake.
  slot_get:     ARGV pool -> { capacity, vram_budget, used, vram_used,
                holder, worker, fence, lease_until, vram, ... }
                Errors: NOPOOL.
  slot_pools:   -> { pool, ... }
  slot_acquire: ARGV pool, holder, lease_ms, [vram_mb]
                -> { 'slot', fence, lease_until } | { 'noslot', used, capacity }
  slot_renew:   ARGV pool, holder, fence, lease_ms -> OK | STALE
  slot_release: ARGV pool, holder, fence -> OK | STALE
  Outside holders are stored as x:<holder> and reaped when their lease ends.
  CORRUPT: slot_set checks slots:<pool> before its first write (pools, the
  first, fails alone); the others read the keys they write first.
]]

register('slot_set', function(keys, args)
	local P = prefix(keys)
	local pool = arg_name(args[1], 'pool')
	local cap = arg_int(args[2], 'capacity', 1, 256)
	local budget = arg_int(args[3] or 0, 'vram_budget_mb', 0, 16777216)
	local now = now_ms()
	need(P, { 'slots:' .. pool, 'hash' })
	redis.call('SADD', P .. 'pools', pool)
	redis.call('HSET', P .. 'slots:' .. pool, 'capacity', cap,
	    'vram_budget', budget)
	wake(P .. 'marker:' .. pool, 'capacity', now)
	wake(P .. 'marker', 'capacity:' .. pool, now)
	return redis.status_reply('OK')
end)

register('slot_get', function(keys, args)
	local P = prefix(keys)
	local pool = arg_name(args[1], 'pool')
	local p = hget(P .. 'slots:' .. pool, 'capacity', 'vram_budget')
	if not p.capacity then
		raise('NOPOOL', "pool '" .. pool .. "' has no capacity set")
	end
	local held = redis.call('HGETALL', P .. 'held:' .. pool)
	local out = { tonumber(p.capacity), tonumber(p.vram_budget or '0') or 0,
	    #held / 2, 0 }
	local vram_used = 0
	for i = 1, #held, 2 do
		local wid, fence, until_ms, vram = holder_unpack(held[i + 1])
		vram_used = vram_used + (tonumber(vram) or 0)
		out[#out + 1] = held[i]
		out[#out + 1] = wid or '?'
		out[#out + 1] = fence or '0'
		out[#out + 1] = tonumber(until_ms) or 0
		out[#out + 1] = tonumber(vram) or 0
	end
	out[4] = vram_used
	return out
end, true)

register('slot_pools', function(keys, args)
	local P = prefix(keys)
	local pools = redis.call('SMEMBERS', P .. 'pools')
	table.sort(pools)
	return pools
end, true)

register('slot_acquire', function(keys, args)
	local P = prefix(keys)
	local pool = arg_name(args[1], 'pool')
	local holder = 'x:' .. arg_name(args[2], 'holder')
	local lease = arg_int(args[3], 'lease_ms', 1000, 3600000)
	local vram = arg_int(args[4] or 0, 'vram_mb', 0, 16777216)
	local p = hget(P .. 'slots:' .. pool, 'capacity')
	if not p.capacity then
		raise('NOPOOL', "pool '" .. pool .. "' has no capacity set")
	end
	local hkey = P .. 'held:' .. pool
	local used = redis.call('HLEN', hkey)
	if redis.call('HEXISTS', hkey, holder) == 1 then
		raise('CONFLICT', 'holder: ' .. holder .. ' already holds a slot')
	end
	if used >= tonumber(p.capacity) then
		return { 'noslot', used, tonumber(p.capacity) }
	end
	local now = now_ms()
	local fence = redis.call('INCR', P .. 'fence')
	redis.call('HSET', hkey, holder, holder_pack('outside', fence,
	    now + lease, vram))
	return { 'slot', fence, now + lease }
end)

-- Returns the outside holder's fields when fence matches, else nil.
local function outside_holder(P, pool, holder, fence)
	local v = redis.call('HGET', P .. 'held:' .. pool, holder)
	if not v then
		return nil
	end
	local _, f, _, vram = holder_unpack(v)
	if f ~= fence then
		return nil
	end
	return vram
end

register('slot_renew', function(keys, args)
	local P = prefix(keys)
	local pool = arg_name(args[1], 'pool')
	local holder = 'x:' .. arg_name(args[2], 'holder')
	local fence = arg_str(args[3], 'fence', 24)
	local lease = arg_int(args[4], 'lease_ms', 1000, 3600000)
	local vram = outside_holder(P, pool, holder, fence)
	if not vram then
		return redis.status_reply('STALE')
	end
	redis.call('HSET', P .. 'held:' .. pool, holder, holder_pack('outside',
	    fence, now_ms() + lease, vram))
	return redis.status_reply('OK')
end)

register('slot_release', function(keys, args)
	local P = prefix(keys)
	local pool = arg_name(args[1], 'pool')
	local holder = 'x:' .. arg_name(args[2], 'holder')
	local fence = arg_str(args[3], 'fence', 24)
	if not outside_holder(P, pool, holder, fence) then
		return redis.status_reply('STALE')
	end
	slot_free(P, pool, holder, now_ms())
	return redis.status_reply('OK')
end)
