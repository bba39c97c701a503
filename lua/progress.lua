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
  Errors: INVALID; CORRUPT (events is checked, the job read first).
  The worker throttles these (a few a second at most); every call is one
  `progress` event, with `nodes` as given ('{}' when none).
]]

register('progress', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local fence = arg_str(args[2], 'fence', 24)
	local value = arg_int(args[3], 'value', 0, 1e9)
	local max = arg_int(args[4], 'max', 0, 1e9)
	local node = cut(args[5], 64)
	local nodes = arg_nodes(args[6])
	local j = active_job(P, jid, fence, 'tenant')
	if not j then
		return redis.status_reply('STALE')
	end
	need(P, { 'events', 'stream' })
	redis.call('HSET', P .. 'job:' .. jid, 'progress', value .. '/' .. max)
	event(P, { 'type', 'progress', 'job', jid, 'value', value,
	    'max', max, 'node', node, 'nodes', nodes,
	    'tenant', j.tenant or '' })
	return redis.status_reply('OK')
end)
