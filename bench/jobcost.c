/*
 * The job-cost figure of bench_sched: the same weightless jobs
 * (smoke_invert, 64x64) one at a time through a comfyq-worker per
 * transport, one with the worker and the bench on redis://, one on
 * rediss:// to the same redis-server (tests/lib/with-redis.sh --tls gives
 * both URLs and the CA, COMFYQ_TLS_CA_FILE, which the bench and the worker
 * read), against the same comfyq-sim. For each transport, per job:
 *   wall    enqueue (the bench's FCALL) -> the bench reads the job's
 *           succeeded event (XREAD BLOCK on the events stream), in us
 *   worker  the worker's CPU time (utime + stime, /proc/<pid>/stat) over
 *           its turns, divided by their jobs
 *   server  the same for redis-server (INFO's process_id), which does the
 *           server's half of the TLS work
 * then the difference, TLS minus TCP. Both workers run side by side (each
 * on a queue of its own) and the jobs go in turns of 10 on each
 * transport, so a busy moment of the machine weighs on both; the CPU of
 * redis-server over a turn is the turn's transport's (the idle worker's
 * heartbeats fall into both alike). A warm-up of 5 jobs a transport
 * (connections, the sim's first prompt) is not counted. Every Redis call
 * of a job (the worker's claim, records and report, the bench's enqueue
 * and reads) crosses the bridge on rediss://, so the difference is the
 * bridge's hop and the cipher's work on all of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include "benchlib.h"
#include "jobcost.h"
#include "rq.h"
#include "standin.h"
#include "util.h"
#include "xmalloc.h"

#define JOBCOST_WARMUP 5
#define JOBCOST_BATCH  10

static const char jobcost_spec[] =
    "{\"workflow\":\"smoke_invert\",\"params\":{\"width\":64,"
    "\"height\":64}}";

struct jobcost_run {
	char	      name[8];
	char	      queue[64], prefix[RQ_PREFIX_MAX], last[64];
	redisContext *c;
	pid_t	      worker, server;
	long long    *wall_us, n;
	double	      worker_ms, server_ms; /* CPU: the sum, then per job */
};

/* utime + stime of pid, in ms. */
static double
jobcost_cpu_ms(pid_t pid)
{
	return (bench_cpu_us(pid) / 1000.0);
}

static pid_t
jobcost_server_pid(redisContext *c)
{
	redisReply *r = redisCommand(c, "INFO server");
	const char *p;
	pid_t	    pid;

	if (r == NULL || r->type != REDIS_REPLY_STRING ||
	    (p = strstr(r->str, "process_id:")) == NULL)
		bench_die("INFO server", "no process_id");
	pid = (pid_t)atoi(p + 11);
	freeReplyObject(r);
	return (pid);
}

/* Waits for the job's succeeded event, reading the stream from r->last. */
static void
jobcost_await(struct jobcost_run *r, const char *jid)
{
	redisReply *x, *e, *f;
	size_t	    i, k;
	int	    done = 0;

	while (!done) {
		x = redisCommand(r->c, "XREAD BLOCK 20000 STREAMS %sevents %s",
		    r->prefix, r->last);
		if (x == NULL || x->type != REDIS_REPLY_ARRAY)
			bench_die(jid,
			    x == NULL ? r->c->errstr : "no event within 20 s");
		e = x->element[0]->element[1];
		for (i = 0; i < e->elements; i++) {
			snprintf(r->last, sizeof r->last, "%s",
			    e->element[i]->element[0]->str);
			f = e->element[i]->element[1];
			for (k = 0; k + 1 < f->elements; k += 2)
				if (strcmp(f->element[k]->str, "type") == 0 &&
				    strcmp(f->element[k + 1]->str, "failed") ==
					0)
					bench_die(jid, "failed");
				else if (strcmp(f->element[k]->str, "type") ==
					0 &&
				    strcmp(f->element[k + 1]->str,
					"succeeded") == 0)
					done = 1;
		}
		freeReplyObject(x);
	}
}

static pid_t
jobcost_worker(
    const struct jobcost *jc, const char *url, const struct jobcost_run *r)
{
	char	    out[192], log[192];
	const char *argv[] = { jc->worker_bin, "--redis-url", url, "--queue",
		r->queue, "--comfyui-url", jc->sim_url, "--worker-id", r->queue,
		"--output-dir", out, "--workflows-dir", jc->workflows,
		"--log-level", "warning", NULL };

	snprintf(out, sizeof out, "%s/out-%s", jc->dir, r->name);
	snprintf(log, sizeof log, "%s/worker-%s.log", jc->dir, r->name);
	return (proc_start(argv, log));
}

/* Connects, starts the transport's worker and runs the warm-up. */
static void
jobcost_start(const struct jobcost *jc, const char *url, struct jobcost_run *r)
{
	char	  err[512], jid[64];
	long long i;

	snprintf(
	    r->queue, sizeof r->queue, "jobcost%d-%s", (int)getpid(), r->name);
	snprintf(r->prefix, sizeof r->prefix, "cq:{%s}:", r->queue);
	snprintf(r->last, sizeof r->last, "0-0");
	if ((r->c = rq_connect(url, NULL, 10000, 1, err, sizeof err)) == NULL)
		bench_die(url, err);
	r->server = jobcost_server_pid(r->c);
	r->worker = jobcost_worker(jc, url, r);
	for (i = 0; i < JOBCOST_WARMUP; i++) {
		bench_enqueue(r->c, r->prefix, jobcost_spec, jid, sizeof jid);
		jobcost_await(r, jid);
	}
}

/* n more jobs on r's transport; their wall times and CPU are added up. */
static void
jobcost_batch(struct jobcost_run *r, long long n)
{
	char   jid[64];
	double w0 = jobcost_cpu_ms(r->worker), s0 = jobcost_cpu_ms(r->server);
	long long i, t0;

	for (i = 0; i < n; i++) {
		t0 = clock_mono_us();
		bench_enqueue(r->c, r->prefix, jobcost_spec, jid, sizeof jid);
		jobcost_await(r, jid);
		r->wall_us[r->n++] = clock_mono_us() - t0;
	}
	r->worker_ms += jobcost_cpu_ms(r->worker) - w0;
	r->server_ms += jobcost_cpu_ms(r->server) - s0;
}

static void
jobcost_stop(struct jobcost_run *r)
{
	if (proc_stop(r->worker, SIGTERM, 10000) != 0)
		bench_die("comfyq-worker", "did not stop cleanly");
	redisFree(r->c);
	r->worker_ms /= (double)r->n;
	r->server_ms /= (double)r->n;
}

static void
jobcost_print(struct jobcost_run *r, long long n)
{
	bench_sort(r->wall_us, n);
	printf("job cost %-4s wall p50 %lld  p90 %lld  max %lld us; CPU per "
	       "job: worker %.3f ms, redis-server %.3f ms\n",
	    r->name, bench_pct(r->wall_us, n, 50), bench_pct(r->wall_us, n, 90),
	    r->wall_us[n - 1], r->worker_ms, r->server_ms);
}

/*
 * Runs the figure: both workers up, then batches of JOBCOST_BATCH jobs on
 * each transport in turn, so that what else the machine does weighs on
 * both alike; then the difference.
 */
void
jobcost_run(const struct jobcost *jc)
{
	struct jobcost_run tcp = { .name = "tcp" }, tls = { .name = "tls" };
	long long	   done, k;

	tcp.wall_us = xcalloc((size_t)jc->jobs, sizeof *tcp.wall_us);
	tls.wall_us = xcalloc((size_t)jc->jobs, sizeof *tls.wall_us);
	jobcost_start(jc, jc->tcp_url, &tcp);
	jobcost_start(jc, jc->tls_url, &tls);
	for (done = 0; done < jc->jobs; done += k) {
		k = jc->jobs - done < JOBCOST_BATCH ? jc->jobs - done
						    : JOBCOST_BATCH;
		jobcost_batch(&tcp, k);
		jobcost_batch(&tls, k);
	}
	jobcost_stop(&tcp);
	jobcost_stop(&tls);
	printf("job cost: %lld smoke_invert jobs one at a time per "
	       "transport, in turns of %d, after %d not counted\n",
	    jc->jobs, JOBCOST_BATCH, JOBCOST_WARMUP);
	jobcost_print(&tcp, jc->jobs);
	jobcost_print(&tls, jc->jobs);
	printf("job cost tls-tcp  wall p50 %+lld us; CPU per job: worker "
	       "%+.3f ms, redis-server %+.3f ms\n",
	    bench_pct(tls.wall_us, jc->jobs, 50) -
		bench_pct(tcp.wall_us, jc->jobs, 50),
	    tls.worker_ms - tcp.worker_ms, tls.server_ms - tcp.server_ms);
	free(tcp.wall_us);
	free(tls.wall_us);
}
