--[[
  acquire: give a slot of a pool to an active job that was claimed without
  one (claim's prep: the worker fetched its inputs first).
  Input:  KEYS[1] queue prefix
          ARGV[1] jid  ARGV[2] fence  ARGV[3] pool
  Output: { 'ok' }  the job holds a slot of pool: a held:<pool> entry with
                    its worker, fence, lease and vram_mb; job fields slot = 1
                    and pool = pool. A job that already holds its slot there
                    gets { 'ok' } again and nothing changes.
          { 'noslot', used, capacity }  no slot free, or the job's vram_mb
                    does not fit the pool's VRAM budget; nothing written (the
                    worker waits on marker:<pool> and asks again)
          STALE     the job is not active under this fence
  Errors: NOPOOL when the pool has no capacity set; CONFLICT when the job
          holds a slot of another pool.
  The slot's lease is the job's: the heartbeat renews both.
]]

register('acquire', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local fence = arg_str(args[2], 'fence', 24)
	local pool = arg_name(args[3], 'pool')
	local j = active_job(P, jid, fence, 'worker', 'pool', 'slot',
	    'lease_until', 'vram_mb')
	if not j then
		return redis.status_reply('STALE')
	end
	local p = hget(P .. 'slots:' .. pool, 'capacity', 'vram_budget')
	if not p.capacity then
		raise('NOPOOL', "pool '" .. pool .. "' has no capacity set")
	end
	local hkey = P .. 'held:' .. pool
	local held = redis.call('HGETALL', hkey)
	local used = 0
	for i = 1, #held, 2 do
		if held[i] == jid then
			local _, f = holder_unpack(held[i + 1])
			if f == fence then
				return { 'ok' }
			end
		else
			used = used + 1
		end
	end
	if j.slot == '1' and j.pool and j.pool ~= pool and
	    redis.call('HEXISTS', P .. 'held:' .. j.pool, jid) == 1 then
		raise('CONFLICT', 'job ' .. jid .. ' holds a slot of pool ' ..
		    j.pool)
	end
	local cap = tonumber(p.capacity) or 0
	local budget = tonumber(p.vram_budget or '0') or 0
	local vram = tonumber(j.vram_mb or '0') or 0
	if used >= cap or (budget > 0 and
	    holders_vram(held, jid) + vram > budget) then
		return { 'noslot', used, cap }
	end
	redis.call('HSET', hkey, jid, holder_pack(j.worker or '?', fence,
	    j.lease_until or '0', vram))
	redis.call('HSET', P .. 'job:' .. jid, 'slot', '1', 'pool', pool)
	return { 'ok' }
end)
