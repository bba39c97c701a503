#!/usr/bin/env node
// A chat bot's side of one paid picture, over comfyq-scheduler's HTTP API
// (the Node twin of ../python/bot_http.py, same flags and output).
//
// Submits a job for a user (tenant tg:<user>, the charge in meta, an
// idempotency key, optionally a webhook), follows its progress on the
// job's Server-Sent Events stream (parsed here by hand: id, event and data
// lines, a blank line ends a frame, ':' lines are keep-alives), and when
// it ends: on success downloads the picture (outputs[0].url) and prints
// where it is, on failure prints the error code and that the charge comes
// back through the refund stream (refunds.mjs credits it, once). Built-in
// fetch only (Node >= 18).
//
//   node bot_http.mjs --api http://127.0.0.1:8680 --token SECRET --user 42 \
//       --charge 10 --out pics [--workflow sdxl_txt2img] [--param K=V ...] \
//       [--key ORDER-ID] [--webhook URL]
//
// Prints "job <id> <state>", "queued position <n>", "progress <step>/<max>",
// then "saved <path>" (exit 0) or "failed <code>: <message>" (exit 1).
// Exit 2: the API refused the job or could not be reached.
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
	options: {
		api: { type: 'string', default: process.env.COMFYQ_API ?? 'http://127.0.0.1:8680' },
		token: { type: 'string', default: process.env.COMFYQ_TOKEN },
		user: { type: 'string' },
		charge: { type: 'string', default: '10' },
		out: { type: 'string', default: '.' },
		workflow: { type: 'string', default: 'sdxl_txt2img' },
		param: { type: 'string', multiple: true, default: [] },
		key: { type: 'string' },
		webhook: { type: 'string' },
	},
});
if (!a.user) {
	console.error('bot_http: --user is required');
	process.exit(2);
}
const api = a.api.replace(/\/+$/, '');
const charge = Number.parseInt(a.charge, 10);

function headers(extra = {}) {
	const h = { Accept: 'application/json', ...extra };
	if (a.token)
		h.Authorization = `Bearer ${a.token}`;
	return h;
}

// K=V: a value that is JSON (a number, true, false) keeps its type.
function param(kv) {
	const i = kv.indexOf('=');
	if (i < 0)
		throw new Error(`--param: want K=V, got ${kv}`);
	const v = kv.slice(i + 1);
	try {
		return [kv.slice(0, i), JSON.parse(v)];
	} catch {
		return [kv.slice(0, i), v];
	}
}

// Yields {id, event, data} for each frame of a text/event-stream body.
async function* sseFrames(body) {
	const dec = new TextDecoder();
	let buf = '', id = null, event = 'message', data = [];
	for await (const chunk of body) {
		buf += dec.decode(chunk, { stream: true });
		let nl;
		while ((nl = buf.indexOf('\n')) >= 0) {
			const line = buf.slice(0, nl).replace(/\r$/, '');
			buf = buf.slice(nl + 1);
			if (line === '') {
				if (data.length)
					yield { id, event, data: data.join('\n') };
				event = 'message';
				data = [];
				continue;
			}
			if (line.startsWith(':'))
				continue;	// keep-alive comment
			const c = line.indexOf(':');
			const name = c < 0 ? line : line.slice(0, c);
			let value = c < 0 ? '' : line.slice(c + 1);
			if (value.startsWith(' '))
				value = value.slice(1);
			if (name === 'id')
				id = value;
			else if (name === 'event')
				event = value;
			else if (name === 'data')
				data.push(value);
		}
	}
}

// Prints the job's events until its terminal one; resumes with
// Last-Event-ID when the connection drops.
async function follow(jid) {
	let last = null;
	for (;;) {
		const h = headers({ Accept: 'text/event-stream' });
		if (last)
			h['Last-Event-ID'] = last;
		try {
			const r = await fetch(`${api}/v1/jobs/${jid}/events`, { headers: h });
			if (r.status === 204)
				return;	// it had ended at the id we gave
			if (r.status >= 400 && r.status < 500 && r.status !== 429)
				throw Object.assign(new Error(`events: HTTP ${r.status}`), { fatal: true });
			if (!r.ok)
				throw new Error(`HTTP ${r.status}`);
			for await (const f of sseFrames(r.body)) {
				last = f.id ?? last;
				const ev = JSON.parse(f.data);
				if (f.event === 'queue_status')
					console.log(`queued position ${ev.position}`);
				else if (f.event === 'progress')
					console.log(`progress ${ev.value}/${ev.max}`);
				else if (['started', 'requeued', 'retrying'].includes(f.event))
					console.log(f.event);
				else if (['succeeded', 'failed', 'canceled'].includes(f.event))
					return;
			}
		} catch (e) {
			if (e.fatal)
				throw e;	// not found, not ours: retrying will not help
			console.error(`events: ${e.message}; reconnecting`);
			await new Promise((res) => setTimeout(res, 1000));
		}
	}
}

async function main() {
	const spec = {
		workflow: a.workflow,
		params: Object.fromEntries(a.param.map(param)),
		tenant: `tg:${a.user}`,
		idempotency_key: a.key ?? `tg:${a.user}:${randomUUID()}`,
		meta: { charge, user: a.user },
	};
	if (a.webhook)
		spec.webhook = a.webhook;
	let r;
	try {
		r = await fetch(`${api}/v1/jobs`, {
			method: 'POST',
			headers: headers({ 'Content-Type': 'application/json' }),
			body: JSON.stringify(spec),
		});
	} catch (e) {
		console.error(`cannot reach ${api}: ${e.cause?.message ?? e.message}`);
		return 2;
	}
	// libevent's own 413 and 400 are HTML, not JSON.
	let job = await r.json().catch(() => ({ error: { code: r.statusText } }));
	if (!r.ok) {
		const err = job.error ?? {};
		console.error(`refused ${r.status} ${err.code}: ${err.message}`);
		for (const f of err.fields ?? [])
			console.error(`  ${f.field}: ${f.message}`);
		return 2;
	}
	const jid = job.id;
	console.log(`job ${jid} ${job.state}`);

	await follow(jid);
	job = await (await fetch(`${api}/v1/jobs/${jid}`, { headers: headers() })).json();
	if (job.state !== 'succeeded') {
		const err = job.error ?? {};
		console.log(`failed ${err.code}: ${err.message}`);
		if (job.refund)
			console.log(`refund: the ${charge} credits come back through the refund stream`);
		return 1;
	}
	const out = job.outputs[0];
	const ext = { 'image/png': '.png', 'image/jpeg': '.jpg', 'image/webp': '.webp',
		'video/mp4': '.mp4' }[out.mime] ?? '.bin';
	await mkdir(a.out, { recursive: true });
	const path = join(a.out, jid + ext);
	r = await fetch(api + out.url, { headers: headers() });
	if (!r.ok)
		throw new Error(`output: HTTP ${r.status}`);
	await pipeline(Readable.fromWeb(r.body), createWriteStream(`${path}.part`));
	await rename(`${path}.part`, path);
	console.log(`saved ${path}`);
	return 0;
}

process.exitCode = await main();
