--[[
  progress: record a running job's progress and publish it.
  Input:  KEYS[1] queue prefix
          ARGV[1] jid  ARGV[2] fence  ARGV[3] value  ARGV[4] max
          ARGV[5] node id (optional)
          ARGV[6] nodes (optional): a JSON object, what ComfyUI did since
                  the attempt's previous progress call: `ran`, the node
                  ids it began to execute, in order; `cached` (the first
                  call only), those it took from its cache
  Output: OK, or STALE when the job is not active under this fence.
  Errors: INVALID; CORRUPT (events, and whprog for a job that asked for
          progress webhooks, are checked; the job is read first).
  The worker throttles these (a few a second at most); every call is one
  `progress` event, with `nodes` as given ('{}' when none).
  A job that asked for progress webhooks (webhook_progress 1) also keeps
  the node (whp_node) and has at most one progress delivery open
  (lua/webhook_progress.lua): with none open, this one makes it pending,
  due when the scheduler's interval since the last claim has passed
  (whp_not_before); one pending already carries this progress too, as its
  claim reads the latest; one being sent is marked whp_dirty, so its end
  makes the next one. That is a few field reads and writes, and no work at
  all for a job that did not ask.
]]

register('progress', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local fence = arg_str(args[2], 'fence', 24)
	local value = arg_int(args[3], 'value', 0, 1e9)
	local max = arg_int(args[4], 'max', 0, 1e9)
	local node = cut(args[5], 64)
	local nodes = arg_nodes(args[6])
	local j = active_job(P, jid, fence, 'tenant', 'webhook_progress',
	    'whp_state', 'whp_not_before')
	if not j then
		return redis.status_reply('STALE')
	end
	local hooked = j.webhook_progress == '1'
	need(P, { 'events', 'stream' }, hooked and { 'whprog', 'zset' } or {})
	local key = P .. 'job:' .. jid
	redis.call('HSET', key, 'progress', value .. '/' .. max)
	if hooked then
		redis.call('HSET', key, 'whp_node', node)
		if j.whp_state == 'delivering' then
			redis.call('HSET', key, 'whp_dirty', '1')
		elseif j.whp_state ~= 'pending' and j.whp_state ~= 'gone' then
			local due = math.max(now_ms(),
			    tonumber(j.whp_not_before) or 0)
			redis.call('HSET', key, 'whp_state', 'pending',
			    'whp_next_ms', due)
			redis.call('ZADD', P .. 'whprog', due, jid)
		end
	end
	event(P, { 'type', 'progress', 'job', jid, 'value', value,
	    'max', max, 'node', node, 'nodes', nodes,
	    'tenant', j.tenant or '' })
	return redis.status_reply('OK')
end)
