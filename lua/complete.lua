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
          and webhooks or whprog when the job uses them; the job is read
          first; events by the first write, finish's XADD).
  Writes the one `succeeded` event (with nodes, kept in the record too),
  then frees the job's slot. The worker sends its next claim right behind
  this call, in the same pipeline (worker/run_report.c), so the freed
  slot is taken again in the same socket read.
]]

-- With END_HOOKS (spelled out: a library may not call unpack as it loads).
local COMPLETE_FIELDS = { 'pool', 'tenant', 'meta', 'attempt', 'webhook',
	'whp_state', 'error_code' }

register('complete', function(keys, args)
	local P = prefix(keys)
	local jid = arg_str(args[1], 'jid', 64)
	local fence = arg_str(args[2], 'fence', 24)
	local outputs = arg_str(args[3], 'outputs', 1048576)
	arg_json_array(outputs, 'outputs', math.huge, 'must be a JSON array')
	local nodes = arg_nodes(args[4])
	local j = active_job(P, jid, fence, unpack(COMPLETE_FIELDS))
	if not j then
		return redis.status_reply('STALE')
	end
	j.hooks_read = true
	end_need(P, j, false)
	local now = now_ms()
	finish(P, jid, j, 'succeeded', nil, nil, now, outputs, nodes)
	slot_free(P, j.pool, jid, now)
	return redis.status_reply('OK')
end)
