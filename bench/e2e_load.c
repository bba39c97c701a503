/*
 * Loaded measures. The GPU idle gap: gap_jobs SDXL jobs of 5 sampler
 * steps of 10 ms queued, then one worker with 1 or 2 slots; the sim's idle
 * time between two prompts per gap (/sim/stats). Throughput: N smoke_invert
 * jobs queued first (pipelined), then the workers start; snapshots (INFO,
 * /proc) at the first completion seen and at the last give jobs/s and CPU
 * per job of workers, sims and redis-server over the jobs between; the
 * enqueue's Redis cost is added per job. Commands are INFO commandstats
 * (a command a function runs counts, as Redis counts it); round trips are
 * total_reads_processed (socket reads: a pipeline of many commands read at
 * once is one). The bench's own polls (one ZCARD, one read each) and INFO
 * calls are left out. The split run counts, with MONITOR, what clients
 * sent and what ran inside functions.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "e2e.h"
#include "util.h"

#define POLL_MS 20

struct load {
	double	  jobs_s, worker_cpu_us, sim_cpu_us, redis_cpu_us, cmds, reads;
	double	  enq_cmds, enq_reads, enq_cpu_us; /* the enqueue's part */
	double	  client, inside;
	long long rss_max_kb;
};

struct monitor {
	pthread_t     t;
	redisContext *c;
	const char   *self;
	atomic_int    stop;
	long long     client, inside;
};

/* Unlinks every key of the stack's queue. */
static void
drop_keys(struct stack *s)
{
	char	    cur[32] = "0";
	redisReply *r, *u;
	size_t	    i;

	do {
		r = redisCommand(
		    s->e->c, "SCAN %s MATCH %s* COUNT 1000", cur, s->prefix);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY)
			bench_die(
			    "SCAN", r ? "unexpected reply" : s->e->c->errstr);
		snprintf(cur, sizeof cur, "%s", r->element[0]->str);
		for (i = 0; i < r->element[1]->elements; i++) {
			u = redisCommand(s->e->c, "UNLINK %s",
			    r->element[1]->element[i]->str);
			if (u == NULL)
				bench_die("UNLINK", s->e->c->errstr);
			freeReplyObject(u);
		}
		freeReplyObject(r);
	} while (strcmp(cur, "0") != 0);
}

/* Whether a MONITOR line's command is one the bench sends to measure. */
static int
monitor_own(const char *cmd)
{
	static const char *const own[] = { "\"INFO\"", "\"CONFIG\"",
		"\"ZCARD\"", "\"CLIENT\"", "\"info\"", "\"config\"",
		"\"zcard\"", "\"client\"" };
	size_t			 i;

	for (i = 0; i < sizeof own / sizeof own[0]; i++)
		if (strncmp(cmd, own[i], strlen(own[i])) == 0)
			return (1);
	return (0);
}

/* One MONITOR line: `<time> [<db> <source>] "CMD" ...`. What the bench
 * itself sends to measure is left out; its enqueues count. */
static void
monitor_count(struct monitor *m, const char *line)
{
	const char *p = strchr(line, '['), *q, *src;
	size_t	    n;

	if (p == NULL || (q = strchr(p, ']')) == NULL ||
	    (src = memchr(p, ' ', (size_t)(q - p))) == NULL)
		return;
	src++;
	n = (size_t)(q - src);
	if (n == 3 && strncmp(src, "lua", 3) == 0)
		m->inside++;
	else if (strlen(m->self) != n || strncmp(src, m->self, n) != 0 ||
	    !monitor_own(q + 2))
		m->client++;
}

static void *
monitor_run(void *arg)
{
	struct monitor *m = arg;
	struct pollfd	p = { .fd = m->c->fd, .events = POLLIN };
	redisReply     *r;
	int		done;

	for (;;) {
		if (redisGetReplyFromReader(m->c, (void **)&r) != REDIS_OK)
			bench_die("MONITOR", m->c->errstr);
		if (r != NULL) {
			if (r->type == REDIS_REPLY_STATUS)
				monitor_count(m, r->str);
			freeReplyObject(r);
			continue;
		}
		done = atomic_load(&m->stop);
		if (done)
			return (NULL);
		if (poll(&p, 1, 50) == 1 && redisBufferRead(m->c) != REDIS_OK)
			bench_die("MONITOR", m->c->errstr);
	}
}

static void
monitor_start(struct monitor *m, struct e2e *e)
{
	char	    err[512];
	redisReply *r;

	memset(m, 0, sizeof *m);
	m->self = e->self_addr;
	if ((m->c = rq_connect(e->url, NULL, 10000, 0, err, sizeof err)) ==
	    NULL)
		bench_die("redis", err);
	if ((r = redisCommand(m->c, "MONITOR")) == NULL)
		bench_die("MONITOR", m->c->errstr);
	freeReplyObject(r);
	if (pthread_create(&m->t, NULL, monitor_run, m) != 0)
		bench_die("pthread_create", "failed");
}

static void
monitor_stop(struct monitor *m)
{
	bench_sleep_ms(200); /* the last lines */
	atomic_store(&m->stop, 1);
	pthread_join(m->t, NULL);
	redisFree(m->c);
}

static void
cpu_of(struct stack *s, double *wk, double *sim)
{
	int i;

	*wk = *sim = 0;
	for (i = 0; i < s->n; i++) {
		*wk += bench_cpu_us(s->wk[i]);
		*sim += bench_cpu_us(s->sim[i]);
	}
}

/* n jobs through `workers` workers (one sim each) of `slots` slots. */
static void
run_load(struct e2e *e, long long n, const char *slots, int workers,
    int monitor, struct load *o)
{
	struct stack   s;
	struct monitor m;
	struct rinfo   s0, s1, s2, s3;
	redisReply    *r;
	double	       w2 = 0, w3, sm2 = 0, sm3;
	long long      c = 0, c2 = 0, polls = 0, t2 = 0, t3, k, start;
	int	       i, got = 0;

	memset(o, 0, sizeof *o);
	stack_init(&s, e, "tp");
	stack_sims(&s, workers, "0", "0");
	if (monitor)
		monitor_start(&m, e);
	if ((r = redisCommand(e->c, "CONFIG RESETSTAT")) == NULL)
		bench_die("CONFIG RESETSTAT", e->c->errstr);
	freeReplyObject(r);
	rinfo_get(e, &s0);
	e2e_fill(&s, e2e_smoke_spec, n);
	rinfo_get(e, &s1);
	for (i = 0; i < workers; i++)
		stack_worker(&s, i, slots, NULL);
	start = clock_mono_ms();
	while (c < n) {
		bench_sleep_ms(POLL_MS);
		c = e2e_int(e, "ZCARD %sdone", s.prefix);
		polls++;
		for (i = 0; i < workers; i++)
			if (bench_rss_kb(s.wk[i]) > o->rss_max_kb)
				o->rss_max_kb = bench_rss_kb(s.wk[i]);
		if (!got && c > 0 && c < n) {
			t2 = clock_mono_us();
			cpu_of(&s, &w2, &sm2);
			rinfo_get(e, &s2);
			c2 = c;
			polls = 0;
			got = 1;
		}
		if (clock_mono_ms() - start > 600000)
			bench_die("throughput", "jobs not done in 600 s");
	}
	t3 = clock_mono_us();
	cpu_of(&s, &w3, &sm3);
	rinfo_get(e, &s3);
	if (!got)
		bench_die("throughput", "too few jobs to see the first end");
	if (monitor) {
		monitor_stop(&m);
		o->client = (double)m.client / (double)n;
		o->inside = (double)m.inside / (double)n;
	}
	stack_stop(&s);
	drop_keys(&s);
	k = n - c2;
	o->jobs_s = (double)k * 1e6 / (double)(t3 - t2);
	o->worker_cpu_us = (w3 - w2) / (double)k;
	o->sim_cpu_us = (sm3 - sm2) / (double)k;
	o->enq_cpu_us = (s1.cpu_us - s0.cpu_us) / (double)n;
	o->enq_cmds = (double)(s1.cmds - s0.cmds) / (double)n;
	o->enq_reads = (double)(s1.reads - s0.reads - 1) / (double)n;
	o->redis_cpu_us = o->enq_cpu_us + (s3.cpu_us - s2.cpu_us) / (double)k;
	o->cmds = o->enq_cmds + (double)(s3.cmds - s2.cmds - polls) / (double)k;
	o->reads = o->enq_reads +
	    (double)(s3.reads - s2.reads - polls - 1) / (double)k;
}

static void
set_load(struct e2e *e, const char *p, const struct load *l)
{
	char key[64];

	snprintf(key, sizeof key, "%s_jobs_s", p);
	e2e_set(e, key, l->jobs_s);
	snprintf(key, sizeof key, "%s_worker_cpu_us", p);
	e2e_set(e, key, l->worker_cpu_us);
	snprintf(key, sizeof key, "%s_sim_cpu_us", p);
	e2e_set(e, key, l->sim_cpu_us);
	snprintf(key, sizeof key, "%s_redis_cpu_us", p);
	e2e_set(e, key, l->redis_cpu_us);
}

void
measure_throughput(struct e2e *e)
{
	struct load one, best;
	char	    slots[16], cfg[96];

	run_load(e, e->jobs, "1", 1, 0, &one);
	if (e->best_slots == 1 && e->best_workers == 1) {
		best = one; /* the same configuration: not run twice */
		snprintf(
		    cfg, sizeof cfg, "1 worker, 1 slot (the 1-worker run)");
	} else {
		snprintf(slots, sizeof slots, "%lld", e->best_slots);
		run_load(e, e->jobs, slots, (int)e->best_workers, 0, &best);
		snprintf(cfg, sizeof cfg,
		    "%lld worker(s), one sim each, %lld slot(s)",
		    e->best_workers, e->best_slots);
	}
	set_load(e, "tp1", &one);
	set_load(e, "tpbest", &best);
	cJSON_DeleteItemFromObjectCaseSensitive(e->m, "tpbest_config");
	cJSON_AddStringToObject(e->m, "tpbest_config", cfg);
	e2e_set(e, "redis_cmds", one.cmds);
	e2e_set(e, "redis_round_trips", one.reads);
	e2e_set(e, "redis_cpu_us", one.redis_cpu_us);
	e2e_set(e, "enqueue_cmds", one.enq_cmds);
	e2e_set(e, "enqueue_round_trips", one.enq_reads);
	e2e_set(e, "enqueue_cpu_us", one.enq_cpu_us);
	e2e_set(e, "fleet_jobs_s", 1e6 / one.redis_cpu_us);
	e2e_set(e, "rss_load_kb",
	    (double)(one.rss_max_kb > best.rss_max_kb ? one.rss_max_kb
						      : best.rss_max_kb));
}

void
measure_split(struct e2e *e)
{
	struct load l;

	run_load(e, e->monitor_jobs, "1", 1, 1, &l);
	e2e_set(e, "redis_cmds_client", l.client);
	e2e_set(e, "redis_cmds_inside", l.inside);
}

void
measure_gap(struct e2e *e)
{
	static const char *const slots[] = { "1", "2" };
	struct stack		 s;
	char			 spec[256], jid[64], key[16];
	long long		 i, start;
	size_t			 k;

	for (k = 0; k < 2; k++) {
		stack_init(&s, e, "gap");
		stack_sims(&s, 1, "10", "0");
		for (i = 0; i < e->gap_jobs; i++) {
			snprintf(spec, sizeof spec,
			    "{\"workflow\":\"sdxl_txt2img\",\"params\":{"
			    "\"prompt\":\"x\",\"steps\":5,\"width\":512,"
			    "\"height\":512,\"seed\":%lld}}",
			    i + 1);
			e2e_enqueue(&s, spec, jid, sizeof jid);
		}
		stack_worker(&s, 0, slots[k], NULL);
		start = clock_mono_ms();
		while (e2e_int(e, "ZCARD %sdone", s.prefix) < e->gap_jobs) {
			if (clock_mono_ms() - start > 120000)
				bench_die("gap", "jobs not done in 120 s");
			bench_sleep_ms(POLL_MS);
		}
		snprintf(key, sizeof key, "gap%s_us", slots[k]);
		e2e_set(e, key,
		    (double)sim_stat(&s, 0, "idle_us") /
			(double)sim_stat(&s, 0, "idle_gaps"));
		stack_stop(&s);
		drop_keys(&s);
	}
}
