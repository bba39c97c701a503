/*
 * bench_sched: comfyq-scheduler's three performance figures (issue 11):
 *   submit    POST /v1/jobs -> 201 over one keep-alive connection, in us
 *             (p50/p90/p99/max); then DELETE of each (a queued cancel)
 *   sse rss   the scheduler's VmRSS before and with --clients SSE clients
 *             on /v1/events, and that every one of them gets an event
 *   terminal  from a job's terminal event (its stream id's ms, and the
 *             record's finished_ms) to the moment an SSE client following
 *             that job reads the terminal frame, in us (median/p90); both
 *             Redis times are whole ms, so each figure may read up to 1 ms
 *             high (the true moment is within the ms the id names); and
 *             from when a reader of the bench's own (XREAD BLOCK on the
 *             events stream, as the scheduler's reader does) got it, in
 *             us on one clock: the scheduler's share of the path
 *   job cost  with --tls-jobs N: the same jobs through a worker on
 *             redis:// and on rediss:// (jobcost.c), per job
 * It starts comfyq-scheduler (log-level warning, on a free port), and for
 * the terminal figure comfyq-sim (10 ms a sampler step) and a comfyq-worker
 * with 8 slots, on a private queue; the submits run before the worker is
 * up (no job runs while they are timed). The HTTP client (benchhttp.c) is
 * a plain socket, so the figures hold no client library's cost. A count
 * of 0 skips its figure.
 * Usage (a private redis-server, stopped afterwards; --tls gives it a TLS
 * port too, for --tls-jobs):
 *   tests/lib/with-redis.sh --own [--tls] build/bin/bench_sched
 *       [--submits N] [--clients N] [--jobs N] [--tls-jobs N]
 */
#include <sys/resource.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "benchhttp.h"
#include "benchlib.h"
#include "jobcost.h"
#include "log.h"
#include "rq.h"
#include "standin.h"
#include "util.h"
#include "xmalloc.h"

#define SUBMITS_MAX 100000
#define CLIENTS_MAX 10000
#define JOBS_MAX    1000

const char *bench_name = "bench_sched";

struct bench {
	const char   *url;
	char	      queue[64], prefix[RQ_PREFIX_MAX], dir[128];
	redisContext *c;
	int	      port;
	pid_t	      sched;
	long long     submits, clients, jobs, tls_jobs;
};

/* The bench's own reader of the events stream: when each terminal came. */
struct watch {
	pthread_t	t;
	pthread_mutex_t mu;
	redisContext   *c;
	char		key[RQ_PREFIX_MAX + 8];
	int		stop, n;
	char		jid[JOBS_MAX][64];
	long long	us[JOBS_MAX];
};

static const char sched_spec[] = "{\"workflow\":\"smoke_invert\"}";
static const char sched_run_spec[] =
    "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"x\","
    "\"steps\":10}}";

static long long
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

/* Sorts v and prints its percentiles in us. */
static void
print_us(const char *name, long long *v, long long n)
{
	bench_sort(v, n);
	printf("%-28s n %lld  min %lld  p50 %lld  p90 %lld  p99 %lld  max "
	       "%lld us\n",
	    name, n, v[0], bench_pct(v, n, 50), bench_pct(v, n, 90),
	    bench_pct(v, n, 99), v[n - 1]);
}

static void
req_post(char *req, size_t len, const char *spec)
{
	snprintf(req, len,
	    "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n%s",
	    strlen(spec), spec);
}

/* The "id" of a 201 body. */
static void
body_id(const char *body, char *jid, size_t jidlen)
{
	const char *p = strstr(body, "\"id\":\"");
	size_t	    n;

	if (p == NULL)
		bench_die("no id in", body);
	p += 6;
	n = strcspn(p, "\"");
	if (n >= jidlen)
		bench_die("id too long", body);
	memcpy(jid, p, n);
	jid[n] = '\0';
}

/* (a) Submits on one keep-alive connection, then cancels each. */
static void
bench_submit(struct bench *b, char (*jids)[64])
{
	long long *post = xcalloc((size_t)b->submits, sizeof *post);
	long long *del = xcalloc((size_t)b->submits, sizeof *del);
	char	   req[512], body[RAW_MAX];
	long long  i, t0;
	int	   fd, st;

	if ((fd = http_connect(b->port)) == -1)
		bench_die("connect", strerror(errno));
	req_post(req, sizeof req, sched_spec);
	for (i = 0; i < b->submits; i++) {
		t0 = clock_mono_us();
		st = http_call(fd, req, body, sizeof body);
		post[i] = clock_mono_us() - t0;
		if (st != 201)
			bench_die("POST /v1/jobs", body);
		body_id(body, jids[i], sizeof jids[i]);
	}
	for (i = 0; i < b->submits; i++) {
		snprintf(req, sizeof req,
		    "DELETE /v1/jobs/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
		    jids[i]);
		t0 = clock_mono_us();
		st = http_call(fd, req, body, sizeof body);
		del[i] = clock_mono_us() - t0;
		if (st != 200)
			bench_die("DELETE /v1/jobs", body);
	}
	close(fd);
	print_us("submit POST /v1/jobs 201", post, b->submits);
	print_us("cancel DELETE queued 200", del, b->submits);
	free(post);
	free(del);
}

/* (b) --clients on /v1/events: RSS, and one event reaches all of them. */
static void
bench_clients(struct bench *b)
{
	struct sc *cs = xcalloc((size_t)b->clients, sizeof *cs);
	long long  rss0, rss1, rss2, t0, i, j, n;
	char	   req[512], body[RAW_MAX];
	int	   fd, got;

	rss0 = bench_rss_kb(b->sched);
	for (i = 0; i < b->clients; i += 100) {
		n = b->clients - i < 100 ? b->clients - i : 100;
		for (j = i; j < i + n; j++)
			if (sc_open(&cs[j], b->port, "/v1/events") == -1)
				bench_die("connect", strerror(errno));
		if (sc_wait(cs + i, (int)n, sc_attached, 20000) != n)
			bench_die("/v1/events", "not every client attached");
	}
	for (i = 0; i < b->clients; i++)
		if (cs[i].status != 200)
			bench_die("/v1/events", "a client was refused");
	bench_sleep_ms(200);
	rss1 = bench_rss_kb(b->sched);
	if ((fd = http_connect(b->port)) == -1)
		bench_die("connect", strerror(errno));
	req_post(req, sizeof req, sched_spec);
	t0 = clock_mono_us();
	if (http_call(fd, req, body, sizeof body) != 201)
		bench_die("POST /v1/jobs", body);
	got = sc_wait(cs, (int)b->clients, sc_got_frame, 30000);
	t0 = clock_mono_us() - t0;
	rss2 = bench_rss_kb(b->sched);
	close(fd);
	printf("sse rss before              %lld KiB\n", rss0);
	printf("sse rss with %lld clients    %lld KiB (+%lld KiB, %.1f KiB a "
	       "client)\n",
	    b->clients, rss1, rss1 - rss0,
	    (double)(rss1 - rss0) / (double)b->clients);
	printf("sse rss after one event     %lld KiB\n", rss2);
	printf("sse event reached           %d of %lld clients, the last %lld "
	       "us after the POST\n",
	    got, b->clients, t0);
	for (i = 0; i < b->clients; i++)
		sc_close(&cs[i]);
	free(cs);
}

static long long
job_field_ll(struct bench *b, const char *jid, const char *f)
{
	redisReply *r =
	    redisCommand(b->c, "HGET %sjob:%s %s", b->prefix, jid, f);
	long long v;

	if (r == NULL || r->type != REDIS_REPLY_STRING)
		bench_die("HGET", r ? "no such field" : b->c->errstr);
	v = atoll(r->str);
	freeReplyObject(r);
	return (v);
}

/* Whether the job's record is in a terminal state. */
static int
job_ended(struct bench *b, const char *jid)
{
	redisReply *r =
	    redisCommand(b->c, "HGET %sjob:%s state", b->prefix, jid);
	int ended;

	if (r == NULL || r->type != REDIS_REPLY_STRING)
		bench_die("HGET state", r ? "no state" : b->c->errstr);
	ended = strcmp(r->str, "succeeded") == 0 ||
	    strcmp(r->str, "failed") == 0 || strcmp(r->str, "canceled") == 0;
	freeReplyObject(r);
	return (ended);
}

static void *
watch_run(void *arg)
{
	struct watch	 *w = arg;
	const redisReply *es, *kv;
	redisReply	 *r;
	char		  last[48] = "$";
	const char	 *type;
	long long	  t;
	size_t		  i;
	int		  stop;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		stop = w->stop;
		pthread_mutex_unlock(&w->mu);
		if (stop)
			return (NULL);
		r = redisCommand(w->c,
		    "XREAD COUNT 100 BLOCK 200 STREAMS %s %s", w->key, last);
		t = wall_us();
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			bench_die("XREAD", r ? r->str : w->c->errstr);
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
			es = r->element[0]->element[1];
			for (i = 0; i < es->elements; i++) {
				snprintf(last, sizeof last, "%s",
				    es->element[i]->element[0]->str);
				kv = es->element[i]->element[1];
				type = bench_entry_field(kv, "type");
				if (strcmp(type, "succeeded") != 0 &&
				    strcmp(type, "failed") != 0 &&
				    strcmp(type, "canceled") != 0)
					continue;
				pthread_mutex_lock(&w->mu);
				if (w->n < JOBS_MAX) {
					snprintf(w->jid[w->n], sizeof w->jid[0],
					    "%s", bench_entry_field(kv, "job"));
					w->us[w->n++] = t;
				}
				pthread_mutex_unlock(&w->mu);
			}
		}
		freeReplyObject(r);
	}
}

/* When the watcher got jid's terminal entry (waits up to 2 s); -1: never. */
static long long
watch_find(struct watch *w, const char *jid)
{
	long long start = clock_mono_ms(), t = -1;
	int	  i;

	while (t == -1 && clock_mono_ms() - start < 2000) {
		pthread_mutex_lock(&w->mu);
		for (i = 0; i < w->n; i++)
			if (strcmp(w->jid[i], jid) == 0)
				t = w->us[i];
		pthread_mutex_unlock(&w->mu);
		if (t == -1)
			bench_sleep_ms(1);
	}
	return (t);
}

/* (c) Per job: terminal event (id ms, finished_ms) to the SSE frame. */
static void
bench_terminal(struct bench *b)
{
	long long	   *byid = xcalloc((size_t)b->jobs, sizeof *byid);
	long long	   *byfin = xcalloc((size_t)b->jobs, sizeof *byfin);
	long long	   *byrd = xcalloc((size_t)b->jobs, sizeof *byrd);
	static struct watch w;
	char	      err[512], req[512], body[RAW_MAX], jid[64], path[128];
	struct sc    *s = xmalloc(sizeof *s);
	struct pollfd p;
	long long     i, n = 0, t = 0, late = 0;
	int	      fd;

	if ((w.c = rq_connect(b->url, NULL, 10000, 0, err, sizeof err)) == NULL)
		bench_die("redis", err);
	snprintf(w.key, sizeof w.key, "%sevents", b->prefix);
	pthread_mutex_init(&w.mu, NULL);
	if (pthread_create(&w.t, NULL, watch_run, &w) != 0)
		bench_die("pthread_create", "failed");
	bench_sleep_ms(300); /* its first XREAD is from "$" */
	if ((fd = http_connect(b->port)) == -1)
		bench_die("connect", strerror(errno));
	req_post(req, sizeof req, sched_run_spec);
	for (i = 0; i < b->jobs; i++) {
		if (http_call(fd, req, body, sizeof body) != 201)
			bench_die("POST /v1/jobs", body);
		body_id(body, jid, sizeof jid);
		snprintf(path, sizeof path, "/v1/jobs/%s/events", jid);
		if (sc_open(s, b->port, path) == -1)
			bench_die("connect", strerror(errno));
		if (sc_wait(s, 1, sc_attached, 20000) != 1 || s->status != 200)
			bench_die(jid, "its events stream did not answer 200");
		if (s->terminal || job_ended(b, jid)) {
			late++; /* ended before the client was attached */
			sc_close(s);
			continue;
		}
		while (!s->terminal) {
			p.fd = s->fd;
			p.events = POLLIN;
			if (poll(&p, 1, 30000) <= 0)
				bench_die(jid, "no terminal event in 30 s");
			t = wall_us();
			if (sc_read(s) == -1 && !s->terminal)
				bench_die(jid, "stream ended before its end");
		}
		sc_close(s);
		byid[n] = t - atoll(s->term_id) * 1000;
		byfin[n] = t - job_field_ll(b, jid, "finished_ms") * 1000;
		if ((byrd[n] = watch_find(&w, jid)) == -1)
			bench_die(jid, "the bench's reader never saw its end");
		byrd[n] = t - byrd[n];
		n++;
	}
	close(fd);
	pthread_mutex_lock(&w.mu);
	w.stop = 1;
	pthread_mutex_unlock(&w.mu);
	pthread_join(w.t, NULL);
	redisFree(w.c);
	if (n == 0)
		bench_die("terminal", "no job was followed live");
	print_us("terminal stream id -> sse", byid, n);
	print_us("terminal finished_ms -> sse", byfin, n);
	print_us("terminal bench XREAD -> sse", byrd, n);
	if (late > 0)
		printf(
		    "terminal: %lld jobs ended before their client attached, "
		    "not counted\n",
		    late);
	free(s);
	free(byid);
	free(byfin);
	free(byrd);
}

static pid_t
bench_start_worker(struct bench *b, const char *simurl)
{
	char	    out[192], log[192];
	const char *argv[] = { WORKER_BIN, "--redis-url", b->url, "--queue",
		b->queue, "--comfyui-url", simurl, "--worker-id", "bench-w",
		"--output-dir", out, "--workflows-dir", WORKFLOWS_DIR,
		"--slots", "8", "--log-level", "warning", NULL };

	snprintf(out, sizeof out, "%s/out", b->dir);
	snprintf(log, sizeof log, "%s/worker.log", b->dir);
	return (proc_start(argv, log));
}

/* Starts the scheduler and waits for /readyz. */
static void
bench_start_sched(struct bench *b)
{
	char	    listen[32], out[192], log[192], req[128], body[RAW_MAX];
	const char *argv[] = { SCHED_BIN, "--redis-url", b->url, "--queue",
		b->queue, "--listen", listen, "--output-dir", out,
		"--workflows-dir", WORKFLOWS_DIR, "--log-level", "warning",
		NULL };
	long long   start = clock_mono_ms();
	int	    fd;

	b->port = free_port();
	snprintf(listen, sizeof listen, "127.0.0.1:%d", b->port);
	snprintf(out, sizeof out, "%s/out", b->dir);
	snprintf(log, sizeof log, "%s/sched.log", b->dir);
	b->sched = proc_start(argv, log);
	snprintf(
	    req, sizeof req, "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
	for (;;) {
		if ((fd = http_connect(b->port)) != -1) {
			if (http_call(fd, req, body, sizeof body) == 200) {
				close(fd);
				return;
			}
			close(fd);
		}
		if (proc_gone(b->sched) || clock_mono_ms() - start > 20000)
			bench_die(
			    "comfyq-scheduler", "not ready (see its log)");
		bench_sleep_ms(20);
	}
}

/* (d) TLS against TCP, per job: needs with-redis.sh --tls. */
static void
bench_job_cost(struct bench *b, const char *simurl)
{
	struct jobcost jc = { .tcp_url = b->url,
		.sim_url = simurl,
		.worker_bin = WORKER_BIN,
		.workflows = WORKFLOWS_DIR,
		.dir = b->dir,
		.jobs = b->tls_jobs };

	if ((jc.tls_url = getenv("COMFYQ_TEST_REDIS_TLS_URL")) == NULL)
		bench_die("--tls-jobs",
		    "COMFYQ_TEST_REDIS_TLS_URL not set (with-redis.sh --tls)");
	jobcost_run(&jc);
}

int
main(int argc, char **argv)
{
	static struct bench b = {
		.submits = 2000, .clients = 1000, .jobs = 50
	};
	struct rlimit rl;
	char	      err[512], simurl[64];
	char(*jids)[64];
	pid_t sim, wk;
	int   i, rc = 0;

	log_init("bench_sched", LL_WARNING, 0);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--submits") == 0)
			b.submits = bench_arg(argc, argv, &i, 0, SUBMITS_MAX);
		else if (strcmp(argv[i], "--clients") == 0)
			b.clients = bench_arg(argc, argv, &i, 0, CLIENTS_MAX);
		else if (strcmp(argv[i], "--jobs") == 0)
			b.jobs = bench_arg(argc, argv, &i, 0, JOBS_MAX);
		else if (strcmp(argv[i], "--tls-jobs") == 0)
			b.tls_jobs = bench_arg(argc, argv, &i, 0, JOBS_MAX);
		else
			bench_die(argv[i], "unknown option (see the source)");
	}
	if ((b.url = getenv("COMFYQ_TEST_REDIS_URL")) == NULL)
		bench_die(
		    "COMFYQ_TEST_REDIS_URL", "not set (use with-redis.sh)");
	/* Room for the clients here and in the scheduler (it inherits it). */
	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		bench_die("getrlimit", strerror(errno));
	if (rl.rlim_cur < (rlim_t)b.clients + 256) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1 ||
		    rl.rlim_cur < (rlim_t)b.clients + 256)
			bench_die("RLIMIT_NOFILE", "too low for --clients");
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(b.queue, sizeof b.queue, "bench%d", (int)getpid());
	snprintf(b.prefix, sizeof b.prefix, "cq:{%s}:", b.queue);
	snprintf(b.dir, sizeof b.dir, "/tmp/bench_sched.XXXXXX");
	if (mkdtemp(b.dir) == NULL)
		bench_die("mkdtemp", b.dir);
	if ((b.c = rq_connect(b.url, NULL, 10000, 1, err, sizeof err)) == NULL)
		bench_die("redis", err);
	bench_start_sched(&b);
	printf("scheduler pid %d on port %d; %lld submits, %lld SSE clients, "
	       "%lld jobs, %lld TLS/TCP jobs (logs in %s)\n",
	    (int)b.sched, b.port, b.submits, b.clients, b.jobs, b.tls_jobs,
	    b.dir);
	fflush(stdout);
	if (b.submits > 0) {
		jids = xcalloc((size_t)b.submits, sizeof *jids);
		bench_submit(&b, jids);
		free(jids);
	}
	if (b.clients > 0)
		bench_clients(&b);
	sim = bench_sim_start(
	    SIM_BIN, b.dir, "10", "warning", simurl, sizeof simurl);
	if (b.jobs > 0) {
		wk = bench_start_worker(&b, simurl);
		bench_terminal(&b);
		if (proc_stop(wk, SIGTERM, 10000) != 0)
			rc = 1;
	}
	if (b.tls_jobs > 0)
		bench_job_cost(&b, simurl);
	if (proc_stop(b.sched, SIGTERM, 10000) != 0)
		rc = 1;
	proc_stop(sim, SIGTERM, 5000);
	redisFree(b.c);
	return (rc);
}
