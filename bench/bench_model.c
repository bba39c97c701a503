/*
 * bench_model: what model-aware claiming saves on a mixed workload. For
 * each mode, fair order (model-aware false) and model-aware, it starts two
 * comfyq-sims (--model-load-ms 200 --step-ms 20 by default, three
 * checkpoints installed) and queues N raw-graph jobs (one sampler of
 * --steps steps), each loading one of the three checkpoints drawn from a
 * fixed seed, so both modes get the same sequence; then it starts two
 * comfyq-workers, one per sim, and waits for every job to succeed. It
 * prints, per mode, the makespan (the last job's finished_ms minus the
 * first's started_ms, Redis's clock: worker start-up is not counted), the
 * checkpoint loads both sims counted (GET /sim/stats) and the claims that
 * took the worker's checkpoint ahead of fair order (stats
 * model_preferred), then model-aware's makespan over fair order's.
 * Usage (a private redis-server, stopped afterwards):
 *   tests/lib/with-redis.sh --own build/bin/bench_model [--jobs N]
 *       [--steps S] [--load-ms MS] [--step-ms MS]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchhttp.h"
#include "benchlib.h"
#include "log.h"
#include "rq.h"
#include "standin.h"
#include "util.h"

#define JOBS_MAX 2000
#define SIMS	 2

const char *bench_name = "bench_model";

static const char *const ckpts[] = { "ckpt-a.safetensors", "ckpt-b.safetensors",
	"ckpt-c.safetensors" };

struct bench {
	const char   *url;
	char	      queue[64];
	char	      prefix[RQ_PREFIX_MAX];
	char	      dir[128];
	redisContext *c;
	long long     jobs, steps, load_ms, step_ms;
	char	      jid[JOBS_MAX][64];
	int	      port[SIMS];
};

struct result {
	long long makespan_ms, loads, preferred;
};

/* A number Redis holds: HGET key field under the prefix (0 when unset). */
static long long
bench_hget(struct bench *b, const char *key, const char *field)
{
	redisReply *r =
	    redisCommand(b->c, "HGET %s%s %s", b->prefix, key, field);
	long long v = 0;

	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		bench_die("HGET", r ? r->str : b->c->errstr);
	if (r->type == REDIS_REPLY_STRING)
		v = atoll(r->str);
	freeReplyObject(r);
	return (v);
}

static long long
bench_job(struct bench *b, int i, const char *field)
{
	char key[96];

	snprintf(key, sizeof key, "job:%s", b->jid[i]);
	return (bench_hget(b, key, field));
}

/* Starts sim i on a free port with its files under dir/sim<i>. */
static pid_t
bench_sim(struct bench *b, int i, const char *mode)
{
	char	    pf[192], base[192], log[192], port[16], load[24], step[24];
	const char *argv[] = { SIM_BIN, "--port", "0", "--port-file", pf,
		"--base-directory", base, "--step-ms", step, "--model-load-ms",
		load, "--checkpoints",
		"ckpt-a.safetensors,ckpt-b.safetensors,ckpt-c.safetensors",
		"--log-level", "notice", NULL };
	pid_t	    pid;

	snprintf(pf, sizeof pf, "%s/sim-%s%d.port", b->dir, mode, i);
	snprintf(base, sizeof base, "%s/sim-%s%d", b->dir, mode, i);
	snprintf(log, sizeof log, "%s/sim-%s%d.log", b->dir, mode, i);
	snprintf(load, sizeof load, "%lld", b->load_ms);
	snprintf(step, sizeof step, "%lld", b->step_ms);
	pid = proc_start(argv, log);
	bench_await_port(pf, "comfyq-sim", port, sizeof port);
	b->port[i] = atoi(port);
	return (pid);
}

static pid_t
bench_worker(struct bench *b, int i, const char *mode, int aware)
{
	char	    id[48], out[192], log[192], sim[64];
	const char *argv[] = { WORKER_BIN, "--redis-url", b->url, "--queue",
		b->queue, "--comfyui-url", sim, "--worker-id", id,
		"--output-dir", out, "--workflows-dir", WORKFLOWS_DIR,
		"--log-level", "notice", "--model-aware",
		aware ? "true" : "false", NULL };

	snprintf(id, sizeof id, "bench-%s%d", mode, i);
	snprintf(out, sizeof out, "%s/out", b->dir);
	snprintf(log, sizeof log, "%s/%s.log", b->dir, id);
	snprintf(sim, sizeof sim, "http://127.0.0.1:%d", b->port[i]);
	return (proc_start(argv, log));
}

/* Checkpoint loads sim i counted (GET /sim/stats). */
static long long
bench_loads(struct bench *b, int i)
{
	char	    body[1024];
	const char *p;
	int	    fd;

	if ((fd = http_connect(b->port[i])) == -1)
		bench_die("comfyq-sim", "does not answer");
	if (http_call(fd,
		"GET /sim/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		"Connection: close\r\n\r\n",
		body, sizeof body) != 200 ||
	    (p = strstr(body, "\"model_loads\":")) == NULL)
		bench_die("GET /sim/stats", body);
	close(fd);
	return (atoll(p + 14));
}

/* Queues the jobs: the same checkpoint sequence for every mode. */
static void
bench_queue(struct bench *b)
{
	char	 spec[1024];
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	int	 i;

	for (i = 0; i < b->jobs; i++) {
		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		snprintf(spec, sizeof spec,
		    "{\"graph\":{\"1\":{\"class_type\":"
		    "\"CheckpointLoaderSimple\",\"inputs\":{\"ckpt_name\":"
		    "\"%s\"}},\"2\":{\"class_type\":\"EmptyLatentImage\","
		    "\"inputs\":{\"width\":64,\"height\":64,\"batch_size\":1}},"
		    "\"3\":{\"class_type\":\"CLIPTextEncode\",\"inputs\":{"
		    "\"text\":\"job %d\",\"clip\":[\"1\",1]}},\"4\":{"
		    "\"class_type\":\"KSampler\",\"inputs\":{\"model\":[\"1\","
		    "0],\"seed\":%d,\"steps\":%lld,\"cfg\":7,\"sampler_name\":"
		    "\"euler\",\"scheduler\":\"normal\",\"positive\":[\"3\",0],"
		    "\"negative\":[\"3\",0],\"latent_image\":[\"2\",0],"
		    "\"denoise\":1}},\"5\":{\"class_type\":\"VAEDecode\","
		    "\"inputs\":{\"samples\":[\"4\",0],\"vae\":[\"1\",2]}},"
		    "\"6\":{\"class_type\":\"SaveImage\",\"inputs\":{\"images\":"
		    "[\"5\",0],\"filename_prefix\":\"b\"}}}}",
		    ckpts[(s >> 33) % 3], i, i, b->steps);
		bench_enqueue(
		    b->c, b->prefix, spec, b->jid[i], sizeof b->jid[i]);
	}
}

/* One mode from queued jobs to the last success; mode names its files. */
static void
bench_mode(struct bench *b, const char *mode, int aware, struct result *res)
{
	pid_t	  sim[SIMS], wk[SIMS];
	long long first = 0, last = 0, t, start, before;
	char	  st[16];
	int	  i, done = 0;

	before = bench_hget(b, "stats", "model_preferred");
	for (i = 0; i < SIMS; i++)
		sim[i] = bench_sim(b, i, mode);
	bench_queue(b);
	for (i = 0; i < SIMS; i++)
		wk[i] = bench_worker(b, i, mode, aware);
	start = clock_mono_ms();
	for (i = 0; i < b->jobs;) {
		redisReply *r = redisCommand(
		    b->c, "HGET %sjob:%s state", b->prefix, b->jid[i]);

		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			bench_die("HGET", r ? r->str : b->c->errstr);
		snprintf(st, sizeof st, "%s",
		    r->type == REDIS_REPLY_STRING ? r->str : "");
		freeReplyObject(r);
		if (strcmp(st, "succeeded") == 0)
			i++, done++;
		else if (strcmp(st, "failed") == 0 ||
		    strcmp(st, "canceled") == 0)
			bench_die(b->jid[i], st);
		else if (clock_mono_ms() - start > 600000)
			bench_die(mode, "jobs did not end within 600 s");
		else
			bench_sleep_ms(5);
	}
	for (i = 0; i < b->jobs; i++) {
		t = bench_job(b, i, "started_ms");
		if (first == 0 || t < first)
			first = t;
		t = bench_job(b, i, "finished_ms");
		if (t > last)
			last = t;
	}
	res->makespan_ms = last - first;
	res->loads = 0;
	for (i = 0; i < SIMS; i++)
		res->loads += bench_loads(b, i);
	res->preferred = bench_hget(b, "stats", "model_preferred") - before;
	for (i = 0; i < SIMS; i++) {
		if (proc_stop(wk[i], SIGTERM, 10000) != 0)
			bench_die("comfyq-worker", "did not exit cleanly");
		proc_stop(sim[i], SIGTERM, 5000);
	}
	printf("%-12s makespan %6lld ms  loads %4lld  preferred %4lld  "
	       "(%d jobs)\n",
	    aware ? "model-aware" : "fair order", res->makespan_ms, res->loads,
	    res->preferred, done);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	static struct bench b = {
		.jobs = 90, .steps = 4, .load_ms = 200, .step_ms = 20
	};
	struct result fifo, aware;
	int	      i;

	log_init("bench_model", LL_WARNING, 0);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--jobs") == 0)
			b.jobs = bench_arg(argc, argv, &i, 1, JOBS_MAX);
		else if (strcmp(argv[i], "--steps") == 0)
			b.steps = bench_arg(argc, argv, &i, 1, 1000);
		else if (strcmp(argv[i], "--load-ms") == 0)
			b.load_ms = bench_arg(argc, argv, &i, 0, 600000);
		else if (strcmp(argv[i], "--step-ms") == 0)
			b.step_ms = bench_arg(argc, argv, &i, 0, 60000);
		else
			bench_die(argv[i], "unknown option (see the source)");
	}
	snprintf(b.dir, sizeof b.dir, "/tmp/bench_model.XXXXXX");
	b.c = bench_open(
	    &b.url, b.queue, sizeof b.queue, b.prefix, sizeof b.prefix, b.dir);
	printf("%lld jobs over 3 checkpoints, %lld steps each, 2 workers, "
	       "--model-load-ms %lld --step-ms %lld (logs in %s)\n",
	    b.jobs, b.steps, b.load_ms, b.step_ms, b.dir);
	bench_mode(&b, "fifo", 0, &fifo);
	bench_mode(&b, "aware", 1, &aware);
	printf("model-aware / fair order: makespan %.2fx, loads %.2fx\n",
	    (double)aware.makespan_ms / (double)fifo.makespan_ms,
	    fifo.loads > 0 ? (double)aware.loads / (double)fifo.loads : 0.0);
	redisFree(b.c);
	return (0);
}
