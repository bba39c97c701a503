'use strict';
/*
 * A BullMQ worker process for bench/anchors/bullmq.js: one Worker on the
 * queue named in its options (argv[2], JSON), so its CPU time and RSS are
 * its own. Modes of the processor:
 *   noop    returns at once (records when each handler started)
 *   gpu     holds one serial "GPU" for holdMs per job: with concurrency 2
 *           the next job waits on it as a prompt waits in ComfyUI's queue;
 *           it sums the GPU's idle time between two uses
 *   hold    waits for its abort signal (a cancel) or holdMs, recording
 *           when it started and when the signal fired; a cancel comes
 *           over the pub/sub channel `cancelChannel` (BullMQ has no
 *           cancel of a job running in another process:
 *           worker.cancelJob() is local)
 * The parent talks over IPC: it gets {ready}, sends {report} for the
 * records, {stop} to close the worker ({force}: without waiting for
 * the jobs it runs), and gets {started: id, t} as a
 * hold job starts. Times are process.hrtime (CLOCK_MONOTONIC) in us.
 */
const { Worker } = require('bullmq');
const IORedis = require('ioredis');

const o = JSON.parse(process.argv[2]);
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const starts = {};
const aborts = {};
const gpu = { tail: Promise.resolve(), runs: 0, idleUs: 0, gaps: 0, end: 0 };

function gpuRun(ms) {
	const p = gpu.tail.then(() => new Promise((resolve) => {
		const s = nowUs();
		if (gpu.runs > 0) {
			gpu.idleUs += s - gpu.end;
			gpu.gaps++;
		}
		setTimeout(() => {
			gpu.end = nowUs();
			gpu.runs++;
			resolve();
		}, ms);
	}));
	gpu.tail = p;
	return p;
}

async function processor(job, token, signal) {
	starts[job.id] = nowUs();
	if (o.mode === 'gpu') {
		await gpuRun(o.holdMs);
		return null;
	}
	if (o.mode === 'hold') {
		process.send({ started: job.id, t: starts[job.id] });
		await new Promise((resolve) => {
			const timer = setTimeout(resolve, o.holdMs);
			signal.addEventListener('abort', () => {
				aborts[job.id] = nowUs();
				clearTimeout(timer);
				resolve();
			});
		});
		return null;
	}
	return null;
}

async function main() {
	const conn = { ...o.connection, maxRetriesPerRequest: null };
	const w = new Worker(o.queue, processor, {
		connection: conn,
		prefix: o.prefix,
		concurrency: o.concurrency,
		lockDuration: o.lockDuration,
		lockRenewTime: o.lockRenewTime,
		stalledInterval: o.stalledInterval,
		autorun: true,
	});
	let sub = null;
	w.on('error', (e) => console.error('worker error:', e.message));
	await w.waitUntilReady();
	if (o.cancelChannel) {
		sub = new IORedis(conn);
		await sub.subscribe(o.cancelChannel);
		sub.on('message', (ch, id) => w.cancelJob(id, 'canceled'));
	}
	process.on('message', async (m) => {
		if (m.report)
			process.send({ report: { starts, aborts, gpu: {
				idleUs: gpu.idleUs, gaps: gpu.gaps, runs: gpu.runs } } });
		if (m.stop) {
			if (sub)
				sub.disconnect();
			await w.close(m.force === true);
			process.exit(0);
		}
	});
	process.send({ ready: true });
}

main().catch((e) => {
	console.error(e);
	process.exit(1);
});
