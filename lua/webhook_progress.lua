--[[
  Progress webhooks: a job with a webhook and webhook_progress true also
  gets its progress POSTed while it runs, best effort. A job has at most
  one progress delivery open (the job's key in the whprog zset): progress
  (lua/progress.lua) opens one when none is, and a claim sends the job's
  progress as it is then, so many steps make one POST. Each claim takes
  the next number of the job's sequence (whp_seq): it is the lease token,
  the webhook-id (whp_<jid>_<seq>) and the body's seq, so a receiver can
  order what it gets. A claim may come no sooner than interval_ms after
  the job's last one (whp_not_before), for retries and for a lease that
  ran out too, so one job's progress POSTs are at least that far apart.
  Nothing is claimed for a job that is not active: finish() drops a
  pending delivery, and one in flight when the job ended sends no other.
  The terminal delivery (lua/webhook.lua, the wh_* fields) is apart and
  keeps all its guarantees; this file uses webhook.lua's wh_claim_start,
  wh_claim_end and wh_done_args (the build puts webhook.lua first).
  Fields in job:<jid>: whp_state (pending, delivering; delivered, failed,
  dropped, gone: nothing open), whp_seq (claims so far), whp_tries (failed
  attempts in a row), whp_delivered, whp_failed (counts), whp_owner,
  whp_lease_until, whp_next_ms (when it is due), whp_not_before,
  whp_dirty (1: progress came while one was being sent), whp_last_status
  (0: no response), whp_error, whp_node (the last progress's node).

  webhook_progress_claim: ARGV[1] scheduler id  ARGV[2] lease ms
                 (1..3600000)  ARGV[3] batch (1..1000)  ARGV[4] interval
                 ms (1..86400000)
  Output: { next_due_ms (the earliest entry left in whprog, 0 when none),
          then per delivery: jid, url, delivery id (whp_<jid>_<seq>), seq,
          tries (failed attempts in a row before this one),
          { field, value, ... } } where the fields are the job's tenant,
          meta, attempt, progress (value/max) and node (those set). Each
          claimed delivery gets whp_state delivering and a lease; its
          zset score becomes the later of the lease's end and the next
          claim's earliest time. An entry whose record is corrupt or gone,
          whose job is not active or did not ask, or whose delivery is not
          open leaves the zset (stats webhook_progress_dropped; an open
          state becomes dropped).
  Errors: INVALID; CORRUPT (whprog and each job record are read
          first).

  webhook_progress_done: ARGV[1] jid  ARGV[2] seq (the claim's token)
                 ARGV[3] outcome delivered|retry|failed|gone
                 ARGV[4] HTTP status (0..999)  ARGV[5] error text
                 ARGV[6] retry in ms (retry only: 1..86400000)
  Output: OK, or STALE when the delivery is not delivering under this seq.
          delivered, failed: counted (whp_delivered or whp_failed, stats
          webhook_progress_delivered or webhook_progress_failed), whp_tries
          back to 0; when progress came meanwhile (whp_dirty) and the job
          is active, the next delivery is pending at once (due by
          whp_not_before). gone (the receiver answered 410, or its address
          is not allowed): failed, and no more progress deliveries for this
          job. retry: pending again, due retry ms from now and not before
          whp_not_before, whp_tries one more (stats
          webhook_progress_retried). A job no longer active opens nothing:
          a retry is dropped.
  Errors: INVALID; CORRUPT (whprog checked first; the job is read first).
]]

local WHP_OUTCOMES = { delivered = true, retry = true, failed = true,
	gone = true }
local WHP_BODY = { 'tenant', 'meta', 'attempt', 'progress' }

register('webhook_progress_claim', function(keys, args)
	local P = prefix(keys)
	local interval = arg_int(args[4], 'interval_ms', 1, 86400000)
	local zkey = P .. 'whprog'
	local sid, lease, now, due = wh_claim_start(P, args, zkey)
	local out = { 0 }
	local dropped = 0

	for _, jid in ipairs(due) do
		local key = P .. 'job:' .. jid
		local j = job_read(P, jid, 'webhook', 'webhook_progress',
		    'whp_state', 'whp_seq', 'whp_tries', 'whp_node',
		    unpack(WHP_BODY))
		if not j or j.state ~= 'active' or j.webhook_progress ~= '1' or
		    not j.webhook or j.webhook == '' or
		    not WH_OPEN[j.whp_state or ''] then
			redis.call('ZREM', zkey, jid)
			if j and WH_OPEN[j.whp_state or ''] then
				redis.call('HSET', key, 'whp_state', 'dropped')
				redis.call('HDEL', key, 'whp_next_ms',
				    'whp_lease_until')
			end
			dropped = dropped + 1
		else
			local seq = (tonumber(j.whp_seq) or 0) + 1
			local again = math.max(now + lease, now + interval)
			local fields = {}
			for _, f in ipairs(WHP_BODY) do
				if j[f] then
					fields[#fields + 1] = f
					fields[#fields + 1] = j[f]
				end
			end
			if j.whp_node then
				fields[#fields + 1] = 'node'
				fields[#fields + 1] = j.whp_node
			end
			redis.call('HSET', key, 'whp_state', 'delivering',
			    'whp_seq', seq, 'whp_owner', sid, 'whp_lease_until',
			    now + lease, 'whp_not_before', now + interval,
			    'whp_next_ms', again, 'whp_dirty', '0')
			redis.call('ZADD', zkey, again, jid)
			out[#out + 1] = jid
			out[#out + 1] = j.webhook
			out[#out + 1] = 'whp_' .. jid .. '_' .. seq
			out[#out + 1] = seq
			out[#out + 1] = tonumber(j.whp_tries) or 0
			out[#out + 1] = fields
		end
	end
	return wh_claim_end(P, zkey, out, dropped, 'webhook_progress_dropped')
end)

register('webhook_progress_done', function(keys, args)
	local P = prefix(keys)
	local jid, seq, outcome, status, msg, delay = wh_done_args(args, 'seq',
	    WHP_OUTCOMES, 'delivered, retry, failed or gone')
	local key = P .. 'job:' .. jid
	local j = job_read(P, jid, 'whp_state', 'whp_seq', 'whp_tries',
	    'whp_dirty', 'whp_not_before')
	if not j or j.whp_state ~= 'delivering' or
	    tonumber(j.whp_seq) ~= seq then
		return redis.status_reply('STALE')
	end
	need(P, { 'whprog', 'zset' })
	local now = now_ms()
	local not_before = tonumber(j.whp_not_before) or now
	local again = nil
	local final = outcome
	redis.call('HDEL', key, 'whp_lease_until')
	redis.call('HSET', key, 'whp_last_status', status)
	if outcome == 'retry' then
		redis.call('HSET', key, 'whp_tries',
		    (tonumber(j.whp_tries) or 0) + 1, 'whp_error', msg)
		stat(P, 'webhook_progress_retried')
		again = math.max(now + delay, not_before)
		final = 'dropped'
	else
		redis.call('HSET', key, 'whp_tries', 0)
		if outcome == 'delivered' then
			redis.call('HINCRBY', key, 'whp_delivered', 1)
			redis.call('HDEL', key, 'whp_error')
			stat(P, 'webhook_progress_delivered')
		else
			redis.call('HINCRBY', key, 'whp_failed', 1)
			redis.call('HSET', key, 'whp_error', msg)
			stat(P, 'webhook_progress_failed')
		end
		if outcome ~= 'gone' and j.whp_dirty == '1' then
			again = math.max(now, not_before)
		end
	end
	if again and j.state == 'active' then
		redis.call('HSET', key, 'whp_state', 'pending', 'whp_next_ms',
		    again, 'whp_dirty', '0')
		redis.call('ZADD', P .. 'whprog', again, jid)
		return redis.status_reply('OK')
	end
	if final == 'dropped' then
		stat(P, 'webhook_progress_dropped')
	end
	redis.call('HSET', key, 'whp_state', final)
	redis.call('HDEL', key, 'whp_next_ms', 'whp_dirty')
	redis.call('ZREM', P .. 'whprog', jid)
	return redis.status_reply('OK')
end)
