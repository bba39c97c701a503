--[[
  Job spec validation for enqueue. These are the envelope rules of
  docs/design.md §4; shared/job.c applies the same rules in C (tests/data/specs holds the
  corpus both must agree on). Template parameter schemas are checked by the
  producers and the worker, not here.
  Text: the whole spec must be UTF-8 and hold no NUL (raw or \u0000);
  workflow, tenant, idempotency_key and webhook no control character (C0,
  DEL, C1 U+0080..U+009F). params, inputs and meta are the producer's data
  and pass as they are (shared/job.c says why). webhook_progress true asks
  for progress webhooks and needs a webhook (false asks for nothing).
  Errors: INVALID spec.<field>: <rule> (the value where it helps).
]]

local function is_array(t)
	return type(t) == 'table' and (next(t) == nil or t[1] ~= nil)
end

local function is_object(t)
	return type(t) == 'table' and (next(t) == nil or t[1] == nil)
end

local function bad(field, rule)
	raise('INVALID', 'spec.' .. field .. ': ' .. rule)
end

local function check_string(v, field, maxlen)
	if type(v) ~= 'string' then
		bad(field, 'must be a string')
	end
	if #v > maxlen then
		bad(field, #v .. ' bytes over the ' .. maxlen .. ' byte limit')
	end
	return v
end

-- The shortest-form UTF-8 sequences of RFC 3629, one pattern each.
local UTF8_SEQS = {
	'[\194-\223][\128-\191]',
	'\224[\160-\191][\128-\191]',
	'[\225-\236\238\239][\128-\191][\128-\191]',
	'\237[\128-\159][\128-\191]',
	'\240[\144-\191][\128-\191][\128-\191]',
	'[\241-\243][\128-\191][\128-\191][\128-\191]',
	'\244[\128-\143][\128-\191][\128-\191]',
}

-- Whether s is UTF-8: every valid sequence becomes an ASCII placeholder
-- (so no two leftover bytes ever meet), and no high byte may remain.
local function utf8_ok(s)
	if not string.find(s, '[\128-\255]') then
		return true
	end
	for _, p in ipairs(UTF8_SEQS) do
		s = string.gsub(s, p, '.')
	end
	return not string.find(s, '[\128-\255]')
end

-- Whether text holds a NUL: a raw byte, or a \u0000 escape (one preceded
-- by an even number of backslashes).
local function has_nul(text)
	if string.find(text, '%z') then
		return true
	end
	local i = 1
	while true do
		local at = string.find(text, '\\u0000', i, true)
		if at == nil then
			return false
		end
		local b = at
		while b > 1 and string.byte(text, b - 1) == 92 do
			b = b - 1
		end
		if (at - b) % 2 == 0 then
			return true
		end
		i = at + 1
	end
end

-- A string field a listing shows: no C0, DEL or C1 control character.
local function check_text(v, field, maxlen)
	check_string(v, field, maxlen)
	if string.find(v, '[%z\1-\31\127]') or
	    string.find(v, '\194[\128-\159]') then
		bad(field, 'must not hold control characters')
	end
	return v
end

local function check_int(v, field, lo, hi)
	if type(v) ~= 'number' or v ~= v or v ~= math.floor(v) then
		bad(field, 'must be an integer')
	end
	if v < lo or v > hi then
		bad(field, string.format('%.0f not in %d..%d', v, lo, hi))
	end
	return v
end

local SPEC_LIMITS = {
	max_spec_bytes = 1048576, max_prompt_len = 8192,
	max_param_len = 65536,
}

local PROMPT_PARAMS = { prompt = true, negative_prompt = true }

local function check_params(params, limits)
	if not is_object(params) then
		bad('params', 'must be an object')
	end
	local n = 0
	for k, v in pairs(params) do
		n = n + 1
		local f = 'params.' .. k
		local t = type(v)
		if t == 'string' then
			local cap = PROMPT_PARAMS[k] and limits.max_prompt_len or
			    limits.max_param_len
			check_string(v, f, cap)
		elseif t == 'number' then
			if v ~= v or v == math.huge or v == -math.huge then
				bad(f, 'must be a finite number')
			end
		elseif t ~= 'boolean' then
			bad(f, 'must be a string, number or boolean')
		end
	end
	if n > 256 then
		bad('params', n .. ' entries over the 256 limit')
	end
end

local function check_list(v, field, max)
	if not is_array(v) then
		bad(field, 'must be an array')
	end
	if #v > max then
		bad(field, #v .. ' entries over the ' .. max .. ' limit')
	end
	for i, item in ipairs(v) do
		if type(item) ~= 'string' and not is_object(item) then
			bad(field .. '[' .. (i - 1) .. ']',
			    'must be a string or an object')
		end
	end
end

local function check_graph(g)
	if not is_object(g) or next(g) == nil then
		bad('graph', 'must be a non-empty object of nodes')
	end
	for id, node in pairs(g) do
		if not is_object(node) or type(node.class_type) ~= 'string' then
			bad('graph.' .. id, 'must be a node with a class_type')
		end
	end
end

local SPEC_FIELDS = {
	workflow = function(v)
		check_text(v, 'workflow', 64)
		if not string.match(v, '^[%w_%-]+$') then
			bad('workflow', "'" .. v ..
			    "' may hold only letters, digits, _ and -")
		end
	end,
	graph = check_graph,
	params = function(v, limits) check_params(v, limits) end,
	loras = function(v) check_list(v, 'loras', 16) end,
	controlnets = function(v) check_list(v, 'controlnets', 8) end,
	inputs = function(v, limits)
		if not is_object(v) then
			bad('inputs', 'must be an object')
		end
		for k, s in pairs(v) do
			check_string(s, 'inputs.' .. k, limits.max_spec_bytes)
		end
	end,
	tenant = function(v) check_text(v, 'tenant', 128) end,
	priority = function(v)
		if type(v) ~= 'string' or not LANE_OK[v] then
			bad('priority', 'must be one of high, normal, low')
		end
	end,
	idempotency_key = function(v)
		check_text(v, 'idempotency_key', 256)
		if v == '' then
			bad('idempotency_key', 'must not be empty')
		end
	end,
	timeout_s = function(v) check_int(v, 'timeout_s', 1, 86400) end,
	max_attempts = function(v) check_int(v, 'max_attempts', 1, 20) end,
	webhook = function(v)
		check_text(v, 'webhook', 2048)
		if not string.match(v, '^https?://[^%s]+$') then
			bad('webhook', 'must be an http:// or https:// URL')
		end
	end,
	webhook_progress = function(v)
		if type(v) ~= 'boolean' then
			bad('webhook_progress', 'must be true or false')
		end
	end,
	meta = function(v)
		if not is_object(v) then
			bad('meta', 'must be an object')
		end
		if #cjson.encode(v) > 16384 then
			bad('meta', 'over the 16384 byte limit')
		end
	end,
	run_at = function(v) check_int(v, 'run_at', 0, 4102444800000) end,
	vram_mb = function(v) check_int(v, 'vram_mb', 0, 1048576) end,
}

-- Decodes and checks a spec; returns the table or raises INVALID.
local function spec_parse(text, limits)
	if type(text) ~= 'string' or text == '' then
		raise('INVALID', 'spec: missing')
	end
	if #text > limits.max_spec_bytes then
		raise('INVALID', 'spec: ' .. #text .. ' bytes over the ' ..
		    limits.max_spec_bytes .. ' byte limit')
	end
	if not utf8_ok(text) then
		raise('INVALID', 'spec: not valid UTF-8')
	end
	if has_nul(text) then
		raise('INVALID', 'spec: must not hold NUL (\\u0000)')
	end
	local ok, spec = pcall(cjson.decode, text)
	if not ok then
		raise('INVALID', 'spec: not valid JSON')
	end
	if type(spec) ~= 'table' or spec[1] ~= nil then
		raise('INVALID', 'spec: must be a JSON object')
	end
	for k, v in pairs(spec) do
		local check = SPEC_FIELDS[k]
		if check == nil then
			bad(tostring(k), 'unknown field')
		end
		check(v, limits)
	end
	if spec.workflow == nil and spec.graph == nil then
		raise('INVALID', 'spec: give a workflow or a graph')
	end
	if spec.workflow ~= nil and spec.graph ~= nil then
		raise('INVALID', 'spec: give a workflow or a graph, not both')
	end
	if spec.webhook_progress and spec.webhook == nil then
		bad('webhook_progress', 'needs a webhook URL to send to')
	end
	return spec
end

-- Reads trailing option pairs (name, value) from args starting at i: a
-- whole number, or a string where the default is one.
local function options(args, i, defaults)
	local o = {}
	for k, v in pairs(defaults) do
		o[k] = v
	end
	while i <= #args do
		local k, v = args[i], args[i + 1]
		if defaults[k] == nil then
			raise('INVALID', 'option ' .. tostring(k) .. ': unknown')
		end
		if type(defaults[k]) == 'string' then
			o[k] = tostring(v or '')
		else
			o[k] = arg_int(v, k, 0, 1099511627776)
		end
		i = i + 2
	end
	return o
end
