#!/usr/bin/env node
// A webhook receiver for comfyq-scheduler's job events (the Node twin of
// ../python/webhook_receiver.py, same flags, files and output), after the
// Standard Webhooks convention: it checks webhook-signature (v1,<base64
// HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>">, keyed with
// the base64-decoded part of a whsec_ secret, or the secret's own bytes),
// refuses a bad or missing signature and a timestamp more than
// --tolerance-s away from now (401), and takes each webhook-id once: the
// scheduler delivers at least once, so a repeat is answered 200 and not
// stored again.
//
// Each accepted event is written to <dir>/<webhook-id>.json (the file's
// existence is the dedupe record, so it holds across restarts; written to
// a temporary name and linked into place, so a reader never sees half of
// one and two deliveries of one id racing store it once). Node built-ins
// only.
//
//   node webhook_receiver.mjs --secret whsec_... [--listen 127.0.0.1] \
//       [--port 8700] [--port-file FILE] [--dir hooks] [--tolerance-s 300]
//
// Prints "accepted <webhook-id> <type> <job>", "duplicate <webhook-id>",
// "rejected: <why>".
import { createHmac, timingSafeEqual } from 'node:crypto';
import { link, mkdir, open, rename, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
	options: {
		secret: { type: 'string', default: process.env.COMFYQ_WEBHOOK_SECRET },
		listen: { type: 'string', default: '127.0.0.1' },
		port: { type: 'string', default: '8700' },
		'port-file': { type: 'string' },
		dir: { type: 'string', default: 'hooks' },
		'tolerance-s': { type: 'string', default: '300' },
	},
});
if (!a.secret) {
	console.error('webhook_receiver: --secret (or COMFYQ_WEBHOOK_SECRET) is required');
	process.exit(2);
}
const key = a.secret.startsWith('whsec_')
	? Buffer.from(a.secret.slice('whsec_'.length), 'base64')
	: Buffer.from(a.secret);
const tolerance = Number.parseInt(a['tolerance-s'], 10);
const ID_OK = /^[A-Za-z0-9_-]{1,128}$/;
let seq = 0;

// null when the request is signed and fresh, else why not.
function verify(h, body) {
	const id = h['webhook-id'], ts = h['webhook-timestamp'], sigs = h['webhook-signature'];
	if (!id || !ts || !sigs)
		return 'missing webhook headers';
	if (!/^[0-9]+$/.test(ts))
		return 'bad timestamp';
	if (Math.abs(Date.now() / 1000 - Number(ts)) > tolerance)
		return 'timestamp too old or too new';
	const mac = createHmac('sha256', key).update(`${id}.${ts}.`).update(body).digest();
	const want = Buffer.from(`v1,${mac.toString('base64')}`);
	// Several signatures, space-separated, during a key rotation.
	const good = sigs.split(' ').some((s) => {
		const b = Buffer.from(s);
		return b.length === want.length && timingSafeEqual(b, want);
	});
	if (!good)
		return 'bad signature';
	if (!ID_OK.test(id))
		return 'bad webhook-id';
	return null;
}

function answer(res, code, text) {
	res.writeHead(code, { 'Content-Type': 'text/plain' });
	res.end(`${text}\n`);
}

async function accept(req, res) {
	const chunks = [];
	let n = 0;
	for await (const c of req) {
		n += c.length;
		if (n > 1 << 20)
			return answer(res, 413, 'too large');
		chunks.push(c);
	}
	const body = Buffer.concat(chunks);
	const why = verify(req.headers, body);
	if (why) {
		console.log(`rejected: ${why}`);
		return answer(res, 401, why);
	}
	const id = req.headers['webhook-id'];
	const path = join(a.dir, `${id}.json`);
	const ev = JSON.parse(body);
	// Write aside, then link into place: the link fails when the id was
	// taken already, also by a delivery racing this one.
	const tmp = `${path}.${process.pid}.${++seq}.tmp`;
	const f = await open(tmp, 'w');
	try {
		await f.writeFile(body);
		await f.sync();
	} finally {
		await f.close();
	}
	try {
		await link(tmp, path);
	} catch (e) {
		if (e.code !== 'EEXIST')
			throw e;
		console.log(`duplicate ${id}`);
		return answer(res, 200, 'duplicate');
	} finally {
		await unlink(tmp);
	}
	console.log(`accepted ${id} ${ev.type} ${ev.job}`);
	// Here a bot would tell the user; the refund is refunds.mjs's.
	answer(res, 200, 'ok');
}

await mkdir(a.dir, { recursive: true });
const srv = createServer((req, res) => {
	if (req.method !== 'POST')
		return answer(res, 405, 'POST only');
	accept(req, res).catch((e) => {
		console.error(`webhook_receiver: ${e.message}`);
		answer(res, 500, 'error');
	});
});
srv.listen(Number.parseInt(a.port, 10), a.listen, async () => {
	const port = srv.address().port;
	if (a['port-file']) {
		await writeFile(`${a['port-file']}.tmp`, `${port}\n`);
		await rename(`${a['port-file']}.tmp`, a['port-file']);
	}
	console.log(`listening on ${a.listen}:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
