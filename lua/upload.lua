--[[
  comfy_upload: store an image uploaded through the ComfyUI front
  (POST /comfy/upload/image, scheduler/sched_comfy_upload.c) under the first
  name ComfyUI would give it: <stem><ext>, else <stem> (1)<ext> ... up to
  <stem> (99)<ext>. A candidate is taken when it is free or holds the same
  bytes; with overwrite the first one is taken whatever it holds. The key
  is comfy:upload:<tenant>:<subfolder>/<name> (comfy:upload:<tenant>:<name>
  without a subfolder), a string with a TTL; a later prompt of that tenant
  whose LoadImage names <subfolder>/<name> carries its bytes.
  Input:  KEYS[1] queue prefix  ARGV[1] tenant (1..128 bytes)
          ARGV[2] subfolder ('' for none; relative, '/'-separated, no empty,
          '.' or '..' part)  ARGV[3] stem (1..511 bytes, no '/')
          ARGV[4] extension ('' or '.' and no further '.' or '/')
          ARGV[5] bytes (at most 778240)  ARGV[6] overwrite 0|1
          ARGV[7] ttl in seconds (1..31622400)
          None but the tenant may hold ':' or '\', and none a control
          character; the whole <subfolder>/<name> is at most 1024 bytes.
  Output: the name stored (a bulk string, without the subfolder).
  Errors: INVALID; CONFLICT when the 100 candidates all hold other bytes
          ("CONFLICT 100 uploads named bot/in.png to bot/in (99).png hold
          other bytes"); CORRUPT (checked before the write: each candidate
          key looked at is a string or none; nothing is written).
]]

local UPLOAD_NAMES = 100
local UPLOAD_BYTES = 778240

-- A part of an upload's key: lo..hi bytes, no control character and none
-- of the characters of reserved (the key's separators, confine_name's).
local function upload_part(v, name, lo, hi, reserved)
	if type(v) ~= 'string' or #v < lo or #v > hi then
		raise('INVALID', name .. ': must be ' .. lo .. '..' .. hi ..
		    ' bytes')
	end
	if string.find(v, '%c') then
		raise('INVALID', name .. ': holds a control character')
	end
	if reserved ~= '' and string.find(v, '[' ..
	    string.gsub(reserved, '%p', '%%%0') .. ']') then
		raise('INVALID', name .. ": '" .. cut(v, 128) ..
		    "' holds one of" .. string.gsub(reserved, '.', ' %0'))
	end
	return v
end

register('comfy_upload', function(keys, args)
	local P = prefix(keys)
	local tenant = upload_part(args[1], 'tenant', 1, 128, '')
	local sub = upload_part(args[2], 'subfolder', 0, 511, '\\:')
	local stem = upload_part(args[3], 'stem', 1, 511, '/\\:')
	local ext = upload_part(args[4], 'extension', 0, 511, '/\\:')
	local bytes = args[5]
	local overwrite = arg_int(args[6], 'overwrite', 0, 1)
	local ttl = arg_int(args[7], 'ttl', 1, 31622400)
	if sub ~= '' and (string.find('/' .. sub .. '/', '/%.?/') or
	    string.find(sub, '%.%.')) then
		raise('INVALID', "subfolder: '" .. cut(sub, 128) ..
		    "' has an empty, '.' or '..' part")
	end
	if ext ~= '' and not string.match(ext, '^%.[^.]*$') then
		raise('INVALID', "extension: '" .. cut(ext, 128) ..
		    "' is not '.' and a suffix without '.'")
	end
	if string.find(stem .. ext, '%.%.') then
		raise('INVALID', "stem: '" .. cut(stem, 128) .. "' and '" ..
		    cut(ext, 128) .. "' make a name holding '..'")
	end
	local dir = sub ~= '' and sub .. '/' or ''
	if #dir + #stem + #ext > 1024 then
		raise('INVALID', 'subfolder, stem and extension: over 1024 bytes')
	end
	if type(bytes) ~= 'string' or #bytes > UPLOAD_BYTES then
		raise('INVALID', 'bytes: at most ' .. UPLOAD_BYTES)
	end
	local base = 'comfy:upload:' .. tenant .. ':' .. dir
	for i = 0, UPLOAD_NAMES - 1 do
		local name = stem .. ext
		if i > 0 then
			name = stem .. ' (' .. i .. ')' .. ext
		end
		need(P, { base .. name, 'string' })
		local cur = redis.call('GET', P .. base .. name)
		if overwrite == 1 or not cur or cur == bytes then
			redis.call('SET', P .. base .. name, bytes, 'EX', ttl)
			return name
		end
	end
	return err('CONFLICT', UPLOAD_NAMES .. ' uploads named ' .. dir ..
	    stem .. ext .. ' to ' .. dir .. stem .. ' (' ..
	    (UPLOAD_NAMES - 1) .. ')' .. ext .. ' hold other bytes')
end)
