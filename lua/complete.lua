--[[
  complete: end an active job as succeeded.
  Input:  KEYS[1] queue prefix
          ARGV[1] jid  ARGV[2] fence  ARGV[3] outputs (JSON array of
          records: path or key, mime, width, height, bytes)
          ARGV[4] nodes (optional): a JSON object, what ComfyUI did in
                  this attempt: `ran` (node ids in the order it began
                  them), `cached` (README, Events)
  Output: OK, or STALE when the job is not active under this fence (a late
          call from a worker that lost its lease writes nothing).
  Errors: INVALID; CORRUPT (checked before the first write: leases, done,
          events, stats; the job is read first).
  Frees the job's slot and writes the one `succeeded` event (with nodes,
  kept in the record too).
]]

register('complete', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local fence = arg_str(args[2], 'fence', 24)
	local outputs = arg_str(args[3], 'outputs', 1048576)
	arg_json_array(outputs, 'outputs', math.huge, 'must be a JSON array')
	local nodes = arg_nodes(args[4])
	local j = active_job(P, jid, fence, 'pool', 'tenant', 'meta', 'attempt')
	if not j then
		return redis.status_reply('STALE')
	end
	need(P, K_END)
	local now = now_ms()
	slot_free(P, j.pool, jid, now)
	finish(P, jid, j, 'succeeded', nil, nil, now, outputs, nodes)
	return redis.status_reply('OK')
end)
