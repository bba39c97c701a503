'use strict';
/*
 * bench/anchors/bullmq.js: the BullMQ anchor of bench/run.sh. It measures
 * what bench_e2e measures for comfyq, on the same redis-server, with
 * no-op jobs (the data is the comfyq job's spec, so both carry the same
 * bytes), and writes one JSON object of flat metrics (the keys
 * bench/report.py reads; bench/README.md says what each one is):
 *   latency     an idle worker, one job at a time: queue.add() -> the
 *               handler starts (dispatch), and -> a QueueEvents listener
 *               (XREAD BLOCK on the events stream) hears `completed`
 *   gap         the "GPU" (a serial resource held holdMs a job) idle time
 *               between two jobs, queue kept full, concurrency 1 and 2
 *   throughput  N no-op jobs queued first (addBulk of 100), then a worker
 *               process: jobs/s and CPU per job of the worker and of
 *               redis-server, counted from the first completion to the
 *               last; Redis commands (INFO commandstats) and socket reads
 *               (total_reads_processed, our round trips) per job, the
 *               producer's included
 *   split       a MONITOR over a smaller such run: commands sent by
 *               clients and commands run inside scripts, per job
 *   cancel      a PUBLISH naming a running job -> its handler's abort
 *               signal fires (worker.cancelJob in the worker process)
 *   reclaim     kill -9 of the worker holding a job -> a second worker's
 *               handler starts it, with short locks (2 s) or defaults
 * Usage: node bullmq.js --redis URL --out FILE [--measures a,b,...]
 *   [--samples N] [--jobs N] [--monitor-jobs N] [--gap-jobs N]
 *   [--hold-ms MS] [--cancel-runs N] [--reclaim-runs N]
 *   [--best-concurrency N] [--best-procs N]
 */
const { Queue, QueueEvents } = require('bullmq');
const IORedis = require('ioredis');
const { fork } = require('child_process');
const fs = require('fs');
const path = require('path');

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DATA = { workflow: 'smoke_invert', params: { width: 8, height: 8 } };

const opt = {
	redis: null, out: null,
	measures: 'latency,gap,throughput,split,cancel,reclaim',
	samples: 500, jobs: 20000, monitorJobs: 1000, gapJobs: 40, holdMs: 50,
	cancelRuns: 5, reclaimRuns: 3, bestConcurrency: 64, bestProcs: 1,
};
for (let i = 2; i < process.argv.length; i += 2) {
	const k = process.argv[i].replace(/^--/, '')
		.replace(/-([a-z])/g, (m, c) => c.toUpperCase());
	if (!(k in opt) || i + 1 >= process.argv.length)
		throw new Error(`${process.argv[i]}: unknown or without a value`);
	const v = process.argv[i + 1];
	opt[k] = typeof opt[k] === 'number' ? Number(v) : v;
}
if (!opt.redis || !opt.out)
	throw new Error('--redis URL and --out FILE are required');
const u = new URL(opt.redis);
const connection = { host: u.hostname, port: Number(u.port || 6379),
	db: Number((u.pathname || '/0').slice(1) || 0) };
const admin = new IORedis({ ...connection, maxRetriesPerRequest: null });
const metrics = {};
let qseq = 0;
const qname = (what) => `${what}${process.pid}x${qseq++}`;

function pct(v, p) {
	const s = [...v].sort((a, b) => a - b);
	return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
}

function median(v) {
	return pct(v, 50);
}

function procStat(pid) {
	const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
	const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
	return (Number(f[11]) + Number(f[12])) * (1e6 / 100); /* us; HZ 100 */
}

function rssKb(pid) {
	const m = /VmRSS:\s+(\d+)/.exec(
		fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
	return m ? Number(m[1]) : 0;
}

/* INFO commandstats, stats and cpu: calls per command, reads, CPU us. */
async function redisInfo() {
	const text = await admin.info('commandstats', 'stats', 'cpu');
	const r = { calls: {}, reads: 0, cpuUs: 0 };
	for (const line of text.split('\r\n')) {
		let m;
		if ((m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)))
			r.calls[m[1]] = Number(m[2]);
		else if ((m = /^total_reads_processed:(\d+)/.exec(line)))
			r.reads = Number(m[1]);
		else if ((m = /^used_cpu_(sys|user):([\d.]+)/.exec(line)))
			r.cpuUs += Number(m[2]) * 1e6;
	}
	return r;
}

/* Commands between two snapshots, the bench's own left out. */
function cmdsBetween(a, b) {
	let n = 0;
	for (const [k, v] of Object.entries(b.calls))
		if (!/^(info|config\|resetstat|monitor|client\|info)$/.test(k))
			n += v - (a.calls[k] || 0);
	return n;
}

function startWorker(name, o) {
	const child = fork(path.join(__dirname, 'bullmq_worker.js'),
		[JSON.stringify({ queue: name, connection, concurrency: 1,
			mode: 'noop', holdMs: opt.holdMs, lockDuration: 30000,
			stalledInterval: 30000, ...o })],
		{ stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
	const w = { child, pid: child.pid, listeners: [] };
	child.on('message', (m) => {
		for (const l of w.listeners.slice())
			l(m);
	});
	w.wait = (pred, ms = 60000) => new Promise((resolve, reject) => {
		const t = setTimeout(() => reject(new Error(
			`bullmq worker: no message in ${ms} ms`)), ms);
		const l = (m) => {
			if (!pred(m))
				return;
			clearTimeout(t);
			w.listeners.splice(w.listeners.indexOf(l), 1);
			resolve(m);
		};
		w.listeners.push(l);
	});
	w.ready = w.wait((m) => m.ready);
	w.report = async () => {
		const p = w.wait((m) => m.report);
		child.send({ report: true });
		return (await p).report;
	};
	w.stop = async (force) => {
		const gone = new Promise((r) => child.once('exit', r));
		child.send({ stop: true, force: force === true });
		await gone;
	};
	return w;
}

async function fill(q, n) {
	for (let i = 0; i < n; i += 100) {
		const batch = [];
		for (let k = i; k < Math.min(n, i + 100); k++)
			batch.push({ name: 'noop', data: DATA });
		await q.addBulk(batch);
	}
}

async function measureLatency() {
	const name = qname('lat');
	const q = new Queue(name, { connection });
	const qe = new QueueEvents(name, { connection });
	const waiters = new Map();
	qe.on('completed', ({ jobId }) => {
		const t = nowUs();
		const f = waiters.get(jobId);
		if (f)
			f(t);
	});
	await qe.waitUntilReady();
	const w = startWorker(name, {});
	await w.ready;
	await sleep(300);
	metrics.rss_idle_kb = rssKb(w.pid);
	const t0 = {}, term = [];
	for (let i = 0; i < opt.samples; i++) {
		const id = `l${i}`;
		const done = new Promise((r) => waiters.set(id, r));
		t0[id] = nowUs();
		await q.add('noop', DATA, { jobId: id });
		term.push((await done) - t0[id]);
		waiters.delete(id);
	}
	const rep = await w.report();
	const disp = Object.keys(t0).map((id) => rep.starts[id] - t0[id]);
	await w.stop();
	await qe.close();
	await q.close();
	for (const p of [50, 90, 99]) {
		metrics[`dispatch_p${p}_us`] = pct(disp, p);
		metrics[`terminal_p${p}_us`] = pct(term, p);
	}
}

async function completed(name) {
	return admin.zcard(`bull:${name}:completed`);
}

async function measureGap(concurrency) {
	const name = qname('gap');
	const q = new Queue(name, { connection });
	await fill(q, opt.gapJobs);
	const w = startWorker(name, { mode: 'gpu', concurrency });
	await w.ready;
	const start = Date.now();
	while ((await completed(name)) < opt.gapJobs) {
		if (Date.now() - start > 120000)
			throw new Error('gap: jobs did not finish in 120 s');
		await sleep(20);
	}
	const rep = await w.report();
	await w.stop();
	await q.close();
	metrics[`gap${concurrency}_us`] = rep.gpu.idleUs / rep.gpu.gaps;
}

/*
 * N jobs queued, then the worker processes; snapshots at the first
 * completion seen and at the last. Returns the per-job figures.
 */
async function runLoad(n, concurrency, procs, monitor) {
	const name = qname('tp');
	const q = new Queue(name, { connection });
	const mon = { client: 0, inside: 0 };
	let m = null;
	if (monitor) {
		const self = (await admin.client('INFO')).match(/addr=(\S+)/)[1];
		m = await admin.monitor();
		m.on('monitor', (time, args, source) => {
			if (source === 'lua')
				mon.inside++;
			else if (source !== self)
				mon.client++;
		});
	}
	await admin.config('RESETSTAT');
	const s0 = await redisInfo();
	await fill(q, n);
	const s1 = await redisInfo();
	const ws = [];
	for (let i = 0; i < procs; i++)
		ws.push(startWorker(name, { concurrency }));
	let polls = 0, c = 0, s2 = null, t2 = 0, cpu2 = 0, rssMax = 0;
	const start = Date.now();
	while (c < n) {
		await sleep(20);
		c = await completed(name);
		polls++;
		for (const w of ws)
			rssMax = Math.max(rssMax, rssKb(w.pid));
		if (s2 === null && c > 0 && c < n) {
			t2 = nowUs();
			cpu2 = ws.reduce((a, w) => a + procStat(w.pid), 0);
			s2 = await redisInfo();
			s2.c = c;
			polls = 0;
		}
		if (Date.now() - start > 600000)
			throw new Error('throughput: jobs did not finish in 600 s');
	}
	if (s2 === null)
		throw new Error('throughput: too few jobs to see the first end');
	const t3 = nowUs();
	const cpu3 = ws.reduce((a, w) => a + procStat(w.pid), 0);
	const s3 = await redisInfo();
	const k = n - s2.c;
	const r = {
		enqCmds: cmdsBetween(s0, s1) / n,
		enqReads: (s1.reads - s0.reads - 1) / n,
		enqCpuUs: (s1.cpuUs - s0.cpuUs) / n,
		jobsS: (k * 1e6) / (t3 - t2),
		workerCpuUs: (cpu3 - cpu2) / k,
		redisCpuUs: (s1.cpuUs - s0.cpuUs) / n + (s3.cpuUs - s2.cpuUs) / k,
		cmds: cmdsBetween(s0, s1) / n +
			(cmdsBetween(s2, s3) - polls) / k,
		reads: (s1.reads - s0.reads - 1) / n +
			(s3.reads - s2.reads - polls - 1) / k,
		rssMax,
	};
	for (const w of ws)
		await w.stop();
	if (m) {
		m.disconnect();
		r.client = mon.client / n;
		r.inside = mon.inside / n;
	}
	await q.obliterate({ force: true });
	await q.close();
	return r;
}

async function measureThroughput() {
	const one = await runLoad(opt.jobs, 1, 1, false);
	const best = await runLoad(opt.jobs, opt.bestConcurrency,
		opt.bestProcs, false);
	for (const [p, r] of [['tp1', one], ['tpbest', best]]) {
		metrics[`${p}_jobs_s`] = r.jobsS;
		metrics[`${p}_worker_cpu_us`] = r.workerCpuUs;
		metrics[`${p}_redis_cpu_us`] = r.redisCpuUs;
	}
	metrics.tpbest_config = `${opt.bestProcs} worker process(es), ` +
		`concurrency ${opt.bestConcurrency}`;
	metrics.redis_cmds = one.cmds;
	metrics.redis_round_trips = one.reads;
	metrics.redis_cpu_us = one.redisCpuUs;
	metrics.enqueue_cmds = one.enqCmds;
	metrics.enqueue_round_trips = one.enqReads;
	metrics.enqueue_cpu_us = one.enqCpuUs;
	metrics.fleet_jobs_s = 1e6 / one.redisCpuUs;
	metrics.rss_load_kb = Math.max(one.rssMax, best.rssMax);
}

async function measureSplit() {
	const r = await runLoad(opt.monitorJobs, 1, 1, true);
	metrics.redis_cmds_client = r.client;
	metrics.redis_cmds_inside = r.inside;
}

async function measureCancel() {
	const name = qname('cancel');
	const channel = `bench:${name}:cancel`;
	const q = new Queue(name, { connection });
	const w = startWorker(name, { mode: 'hold', holdMs: 30000,
		cancelChannel: channel });
	await w.ready;
	const v = [];
	for (let i = 0; i < opt.cancelRuns; i++) {
		const id = `c${i}`;
		const started = w.wait((m) => m.started === id);
		await q.add('hold', DATA, { jobId: id });
		await started;
		await sleep(100 + Math.floor(Math.random() * 500));
		const t0 = nowUs();
		await admin.publish(channel, id);
		let rep;
		for (;;) {
			rep = await w.report();
			if (rep.aborts[id])
				break;
			if (nowUs() - t0 > 30e6)
				throw new Error('cancel: the handler was not aborted');
			await sleep(5);
		}
		v.push(rep.aborts[id] - t0);
	}
	await w.stop();
	await q.close();
	metrics.cancel_p50_us = median(v);
	metrics.cancel_max_us = Math.max(...v);
}

/* kill -9 of the worker running a job -> the other worker starts it. */
async function reclaimOnce(locks) {
	const name = qname('reclaim');
	const q = new Queue(name, { connection });
	const a = startWorker(name, { mode: 'hold', holdMs: 600000, ...locks });
	await a.ready;
	const started = a.wait((m) => m.started === 'r');
	await q.add('hold', DATA, { jobId: 'r' });
	await started;
	const b = startWorker(name, { mode: 'hold', holdMs: 600000, ...locks });
	await b.ready;
	const again = b.wait((m) => m.started === 'r', 300000);
	await sleep(Math.floor(Math.random() * (locks.lockRenewTime ||
		locks.lockDuration / 2)));
	const t0 = nowUs();
	a.child.kill('SIGKILL');
	const m = await again;
	await b.stop(true);
	await q.obliterate({ force: true });
	await q.close();
	return (m.t - t0) / 1000;
}

async function measureReclaim() {
	const v = [];
	for (let i = 0; i < opt.reclaimRuns; i++)
		v.push(await reclaimOnce({ lockDuration: 2000, lockRenewTime: 500,
			stalledInterval: 100 }));
	metrics.reclaim_short_ms = median(v);
}

async function measureReclaimDefault() {
	metrics.reclaim_default_ms = await reclaimOnce({ lockDuration: 30000,
		stalledInterval: 30000 });
}

async function main() {
	const table = {
		latency: measureLatency,
		gap: async () => {
			await measureGap(1);
			await measureGap(2);
		},
		throughput: measureThroughput,
		split: measureSplit,
		cancel: measureCancel,
		reclaim: measureReclaim,
		reclaim_default: measureReclaimDefault,
	};
	metrics.version = require('bullmq/package.json').version;
	for (const name of opt.measures.split(',')) {
		if (!table[name])
			throw new Error(`unknown measure ${name}`);
		const t = Date.now();
		await table[name]();
		console.error(`bullmq: ${name} done in ${Date.now() - t} ms`);
	}
	fs.writeFileSync(opt.out, JSON.stringify(metrics, null, 1) + '\n');
	admin.disconnect();
}

main().catch((e) => {
	console.error('bullmq.js:', e);
	process.exit(1);
});
