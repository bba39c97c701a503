#!/usr/bin/env node
// The refund consumer of a bot's billing (the Node twin of
// ../python/refunds.py, same flags, ledger and output): every job that
// ends failed or canceled has one entry in the queue's refunds stream;
// this gives the user's credits back exactly once per job.
//
// It reads the stream with a consumer group created at id 0 (every entry
// since the stream began; MKSTREAM, an existing group is fine), after a
// start first re-reads its own pending entries (delivered, never
// acknowledged: it died before XACK), then new ones ('>'), and from time
// to time takes over with XAUTOCLAIM the entries another consumer has held
// longer than --claim-idle-ms (a consumer that died). Each entry is
// credited, then acknowledged; an entry delivered again is acknowledged
// without a second credit.
//
// Exactly once rests on the ledger, not on the stream: the credit and the
// record that the job was refunded are one atomic step keyed by the job
// id. Here the ledger is two Redis keys of this example's own, written by
// one EVAL: <ledger>refunded (a SET of job ids) and <ledger>credits (a
// HASH, tenant -> credits given back). In a real bot it is your database:
// one transaction that inserts the job id into a table with a unique key
// and adds the credits.
//
//   node refunds.mjs --redis redis://127.0.0.1:6379 --queue default \
//       --group billing --consumer bill-1 [--ledger billing:] \
//       [--claim-idle-ms 60000] [--block-ms 5000] [--drain]
//
// Prints "credited <job> <tenant> +<n> (<error_code>)", "already credited
// <job>", "claimed <n> from a dead consumer". --drain: exit 0 once no
// entry is pending or new (for tests and cron). --crash-after
// read|credit: for tests, exit at once (status 4, no XACK) after reading
// entries or after crediting the first one, as a crash there would.
import { parseArgs } from 'node:util';
import Redis from 'ioredis';

// KEYS: refunded set, credits hash; ARGV: job, tenant, credits.
// 1: credited now; 0: that job was credited before.
const CREDIT = `
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
return 1
`;

const { values: a } = parseArgs({
	options: {
		redis: { type: 'string', default: process.env.COMFYQ_REDIS_URL ?? 'redis://127.0.0.1:6379' },
		queue: { type: 'string', default: process.env.COMFYQ_QUEUE ?? 'default' },
		group: { type: 'string', default: 'billing' },
		consumer: { type: 'string' },
		ledger: { type: 'string', default: 'billing:' },
		'claim-idle-ms': { type: 'string', default: '60000' },
		'block-ms': { type: 'string', default: '5000' },
		drain: { type: 'boolean', default: false },
		'crash-after': { type: 'string' },
	},
});
if (!a.consumer || !['read', 'credit', undefined].includes(a['crash-after'])) {
	console.error('refunds: --consumer is required; --crash-after is read or credit');
	process.exit(2);
}
const claimIdle = Number.parseInt(a['claim-idle-ms'], 10);
const blockMs = Number.parseInt(a['block-ms'], 10);
const stream = `cq:{${a.queue}}:refunds`;
// Fail instead of queueing commands while Redis is away.
const r = new Redis(a.redis, { maxRetriesPerRequest: 1, enableOfflineQueue: false,
	lazyConnect: true, retryStrategy: () => null });
r.defineCommand('credit', { numberOfKeys: 2, lua: CREDIT });

// [k1, v1, k2, v2, ...] -> {k1: v1, ...}
const fields = (list) => {
	const o = {};
	for (let i = 0; i + 1 < list.length; i += 2)
		o[list[i]] = list[i + 1];
	return o;
};

async function createGroup() {
	try {
		await r.xgroup('CREATE', stream, a.group, '0', 'MKSTREAM');
	} catch (e) {
		if (!e.message.startsWith('BUSYGROUP'))
			throw e;
	}
}

// Credits then acknowledges each [id, fields] entry.
async function handle(entries) {
	if (entries.length && a['crash-after'] === 'read')
		process.exit(4);
	for (const [id, list] of entries) {
		if (list) {	// null: the entry was deleted while pending
			const f = fields(list);
			const n = Number.parseInt(JSON.parse(f.meta || '{}').charge ?? 0, 10);
			if (await r.credit(`${a.ledger}refunded`, `${a.ledger}credits`, f.job, f.tenant, n))
				console.log(`credited ${f.job} ${f.tenant} +${n} (${f.error_code})`);
			else
				console.log(`already credited ${f.job}`);
			if (a['crash-after'] === 'credit')
				process.exit(4);
		}
		await r.xack(stream, a.group, id);
	}
}

async function read(start, block) {
	const args = ['GROUP', a.group, a.consumer, 'COUNT', 10];
	if (block !== undefined)
		args.push('BLOCK', block);
	const reply = await r.xreadgroup(...args, 'STREAMS', stream, start);
	return reply ? reply[0][1] : [];
}

// Own pending entries, from 0 on, until none is left.
async function pending() {
	let last = '0';
	for (;;) {
		const entries = await read(last);
		if (!entries.length)
			return;
		await handle(entries);
		last = entries[entries.length - 1][0];
	}
}

// Entries idle past --claim-idle-ms, from any consumer.
async function claim() {
	let cursor = '0-0', n = 0;
	do {
		const reply = await r.xautoclaim(stream, a.group, a.consumer, claimIdle,
			cursor, 'COUNT', 10);
		cursor = reply[0];
		n += reply[1].length;
		await handle(reply[1]);
	} while (cursor !== '0-0');
	if (n)
		console.log(`claimed ${n} from a dead consumer`);
	return n;
}

async function run() {
	await r.connect();
	await createGroup();
	await pending();
	let nextClaim = 0;
	for (;;) {
		let claimed = 0;
		if (Date.now() >= nextClaim) {
			claimed = await claim();
			nextClaim = Date.now() + claimIdle / 2;
		}
		const entries = await read('>', blockMs);
		await handle(entries);
		if (a.drain && !entries.length && !claimed)
			return 0;
	}
}

try {
	process.exitCode = await run();
} catch (e) {
	console.error(`redis: ${e.message}`);
	process.exitCode = 3;
} finally {
	r.disconnect();
}
