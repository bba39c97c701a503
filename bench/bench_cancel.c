/*
 * bench_cancel: how long a cancel of a running job takes to stop its
 * prompt. Starts comfyq-sim (2 ms a sampler step) and one comfyq-worker
 * with the default heartbeat (10 s) on a private queue; then per run
 * enqueues a raw graph whose one KSampler takes 5000 steps, waits until
 * the sim runs its prompt, waits a random 100..600 ms more, calls
 * comfyq_cancel and measures, from the call:
 *   cancel->interrupt  to the sim's "interrupted at node" log line (the
 *                      interrupt takes effect at the next step, <= 2 ms)
 *   cancel->canceled   to the job's finished_ms (state canceled)
 * and prints min/median/p90/max of each. Without the published cancel the
 * figures would be up to one heartbeat period.
 * Usage (a private redis-server, stopped afterwards):
 *   tests/lib/with-redis.sh --own build/bin/bench_cancel [--runs N]
 *       [--heartbeat-ms MS]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "log.h"
#include "rq.h"
#include "standin.h"
#include "util.h"

#define RUNS_MAX 1000

const char *bench_name = "bench_cancel";

struct bench {
	const char   *url;
	char	      queue[64];
	char	      prefix[RQ_PREFIX_MAX];
	char	      dir[128];
	redisContext *c;
	long long     runs, heartbeat_ms;
	long long     intr[RUNS_MAX], done[RUNS_MAX];
};

/* HGET of a job field into out ("" when absent). */
static void
bench_field(
    struct bench *b, const char *jid, const char *f, char *out, size_t outlen)
{
	redisReply *r =
	    redisCommand(b->c, "HGET %sjob:%s %s", b->prefix, jid, f);

	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		bench_die("HGET", r ? r->str : b->c->errstr);
	snprintf(
	    out, outlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
}

/* ms since the epoch of a log line's "2026-01-02T03:04:05.678Z". */
static long long
bench_log_ms(const char *line)
{
	struct tm tm;
	int	  ms;

	memset(&tm, 0, sizeof tm);
	if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year,
		&tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
		&ms) != 7)
		return (-1);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return ((long long)timegm(&tm) * 1000 + ms);
}

/* The time of the nth line of the sim's log that holds what; -1: none. */
static long long
bench_log_nth(struct bench *b, const char *what, int nth)
{
	char	  path[192], line[1024];
	FILE	 *f;
	long long t = -1;
	int	  n = 0;

	snprintf(path, sizeof path, "%s/sim.log", b->dir);
	if ((f = fopen(path, "r")) == NULL)
		return (-1);
	while (fgets(line, sizeof line, f) != NULL)
		if (strstr(line, what) != NULL && ++n == nth) {
			t = bench_log_ms(line);
			break;
		}
	fclose(f);
	return (t);
}

/* Waits up to 30 s for the nth such line. */
static long long
bench_await_log(struct bench *b, const char *what, int nth)
{
	long long t, start = clock_mono_ms();

	while ((t = bench_log_nth(b, what, nth)) == -1) {
		if (clock_mono_ms() - start > 30000)
			bench_die("sim log", what);
		bench_sleep_ms(1);
	}
	return (t);
}

static void
bench_run(struct bench *b, int i)
{
	char	  spec[2048], jid[64], st[32], fin[32];
	long long t0, start;

	snprintf(spec, sizeof spec, bench_long_graph, i + 1);
	bench_enqueue(b->c, b->prefix, spec, jid, sizeof jid);
	bench_await_log(b, " start (", i + 1);
	bench_sleep_ms(100 + (long long)(rand_u64() % 500));
	t0 = clock_wall_ms();
	bench_cancel(b->c, b->prefix, jid);
	b->intr[i] = bench_await_log(b, " interrupted at node ", i + 1) - t0;
	start = clock_mono_ms();
	for (;;) {
		bench_field(b, jid, "state", st, sizeof st);
		if (strcmp(st, "canceled") == 0)
			break;
		if (strcmp(st, "active") != 0 ||
		    clock_mono_ms() - start > 30000)
			bench_die(jid, *st ? st : "no state");
		bench_sleep_ms(1);
	}
	bench_field(b, jid, "finished_ms", fin, sizeof fin);
	b->done[i] = atoll(fin) - t0;
	printf("run %3d  cancel->interrupt %5lld ms  cancel->canceled %5lld "
	       "ms\n",
	    i + 1, b->intr[i], b->done[i]);
}

int
main(int argc, char **argv)
{
	static struct bench b = { .runs = 20, .heartbeat_ms = 10000 };
	char		    url[64], hb[32], lease[32], out[192], log[192];
	const char	   *wargv[24];
	pid_t		    sim, wk;
	int		    i, rc;

	log_init("bench_cancel", LL_WARNING, 0);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0)
			b.runs = bench_arg(argc, argv, &i, 1, RUNS_MAX);
		else if (strcmp(argv[i], "--heartbeat-ms") == 0)
			b.heartbeat_ms = bench_arg(argc, argv, &i, 200, 600000);
		else
			bench_die(argv[i], "unknown option (see the source)");
	}
	snprintf(b.dir, sizeof b.dir, "/tmp/bench_cancel.XXXXXX");
	b.c = bench_open(
	    &b.url, b.queue, sizeof b.queue, b.prefix, sizeof b.prefix, b.dir);
	sim = bench_sim_start(SIM_BIN, b.dir, "2", "verbose", url, sizeof url);
	snprintf(hb, sizeof hb, "%lld", b.heartbeat_ms);
	snprintf(lease, sizeof lease, "%lld", b.heartbeat_ms * 3);
	snprintf(out, sizeof out, "%s/out", b.dir);
	snprintf(log, sizeof log, "%s/worker.log", b.dir);
	i = 0;
	wargv[i++] = WORKER_BIN;
	wargv[i++] = "--redis-url";
	wargv[i++] = b.url;
	wargv[i++] = "--queue";
	wargv[i++] = b.queue;
	wargv[i++] = "--comfyui-url";
	wargv[i++] = url;
	wargv[i++] = "--worker-id";
	wargv[i++] = "bench-w";
	wargv[i++] = "--output-dir";
	wargv[i++] = out;
	wargv[i++] = "--workflows-dir";
	wargv[i++] = WORKFLOWS_DIR;
	wargv[i++] = "--heartbeat-ms";
	wargv[i++] = hb;
	wargv[i++] = "--lease-ms";
	wargv[i++] = lease;
	wargv[i] = NULL;
	wk = proc_start(wargv, log);
	printf("heartbeat every %lld ms, sampler step 2 ms, %lld runs (logs in "
	       "%s)\n",
	    b.heartbeat_ms, b.runs, b.dir);
	for (i = 0; i < b.runs; i++)
		bench_run(&b, i);
	bench_summary("cancel->interrupt", 18, b.intr, b.runs);
	bench_summary("cancel->canceled", 18, b.done, b.runs);
	rc = proc_stop(wk, SIGTERM, 10000) == 0 ? 0 : 1;
	proc_stop(sim, SIGTERM, 5000);
	redisFree(b.c);
	return (rc);
}
