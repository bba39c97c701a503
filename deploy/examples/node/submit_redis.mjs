#!/usr/bin/env node
// Submitting on the Redis path, without comfyq-scheduler (the Node twin of
// ../python/submit_redis.py, same flags and output): the producer contract
// of README (FCALL comfyq_enqueue, the events stream, the job record), for
// a backend that already talks to the queue's Redis.
//
// Notes the events stream's last id, calls comfyq_enqueue with the spec
// (tenant tg:<user>, the charge in meta, an idempotency key), then follows
// the stream from that id with XREAD BLOCK, keeping the entries of its
// job, until the terminal one; when a read times out it looks at the job
// record, which keeps the outcome when the stream no longer has it (a
// replay of an idempotency key whose job ended long ago).
//
//   node submit_redis.mjs --redis redis://127.0.0.1:6379 --queue default \
//       --user 42 --charge 10 [--workflow sdxl_txt2img] [--param K=V ...] \
//       [--key ORDER-ID]
//
// Prints "job <id> <created|existing> <state>", "progress <step>/<max>",
// then "succeeded <outputs JSON>" (exit 0) or "failed <code>: <error>"
// (exit 1). Exit 2: the spec was refused; 3: Redis unreachable.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import Redis, { ReplyError } from 'ioredis';

const TERMINAL = ['succeeded', 'failed', 'canceled'];
const { values: a } = parseArgs({
	options: {
		redis: { type: 'string', default: process.env.COMFYQ_REDIS_URL ?? 'redis://127.0.0.1:6379' },
		queue: { type: 'string', default: process.env.COMFYQ_QUEUE ?? 'default' },
		user: { type: 'string' },
		charge: { type: 'string', default: '10' },
		workflow: { type: 'string', default: 'sdxl_txt2img' },
		param: { type: 'string', multiple: true, default: [] },
		key: { type: 'string' },
	},
});
if (!a.user) {
	console.error('submit_redis: --user is required');
	process.exit(2);
}
const prefix = `cq:{${a.queue}}:`;
const r = new Redis(a.redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false,
	lazyConnect: true, retryStrategy: () => null });

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

// [k1, v1, ...] -> {k1: v1, ...}
const fields = (list) => {
	const o = {};
	for (let i = 0; i + 1 < list.length; i += 2)
		o[list[i]] = list[i + 1];
	return o;
};

function outcome(rec) {
	if (rec.state === 'succeeded') {
		console.log(`succeeded ${rec.outputs ?? '[]'}`);
		return 0;
	}
	console.log(`failed ${rec.error_code}: ${rec.error}`);
	if (rec.refund === 'true' || rec.refund === '1')
		console.log('refund: the charge comes back through the refund stream');
	return 1;
}

async function main() {
	const charge = Number.parseInt(a.charge, 10);
	const spec = {
		workflow: a.workflow,
		params: Object.fromEntries(a.param.map(param)),
		tenant: `tg:${a.user}`,
		idempotency_key: a.key ?? `tg:${a.user}:${randomUUID()}`,
		meta: { charge, user: a.user },
	};
	let last, jid, how, state;
	try {
		await r.connect();
		const tail = await r.xrevrange(`${prefix}events`, '+', '-', 'COUNT', 1);
		last = tail.length ? tail[0][0] : '0-0';
		[jid, how, state] = await r.call('FCALL', 'comfyq_enqueue', 1, prefix,
			JSON.stringify(spec));
	} catch (e) {
		if (e instanceof ReplyError) {
			// INVALID spec.<field>: <rule>, CONFLICT ...: the first word
			// is the code.
			console.error(`refused: ${e.message}`);
			return 2;
		}
		console.error(`redis: ${e.message}`);
		return 3;
	}
	console.log(`job ${jid} ${how} ${state}`);
	for (;;) {
		const reply = await r.xread('COUNT', 100, 'BLOCK', 5000, 'STREAMS',
			`${prefix}events`, last);
		if (!reply) {
			const rec = await r.hgetall(`${prefix}job:${jid}`);
			if (TERMINAL.includes(rec.state))
				return outcome(rec);
			continue;
		}
		for (const [id, list] of reply[0][1]) {
			last = id;
			const ev = fields(list);
			if (ev.job !== jid)
				continue;
			if (ev.type === 'progress')
				console.log(`progress ${ev.value}/${ev.max}`);
			else if (TERMINAL.includes(ev.type))
				return outcome(ev);
		}
	}
}

try {
	process.exitCode = await main();
} finally {
	r.disconnect();
}
