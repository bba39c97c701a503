/*
 * bench_s3: what store s3 costs a job. Starts comfyq-sim (1 ms a sampler
 * step) and s3rver on loopback (build/s3rver, which `ctest -R
 * integration.s3` installs), then for each store, dir and s3, one
 * comfyq-worker and N jobs of each kind, one at a time:
 *   picture  sdxl_txt2img at 1024x1024, 4 steps (the sim's PNG): one PUT
 *   video    the raw VHS_VideoCombine graph of integration.s3 (12.8 MB);
 *            with s3-part-mb 5 a multipart upload of 3 parts
 * and prints, per kind, the job's run time (finished_ms - started_ms,
 * Redis's clock) with each store, and the upload time the s3 worker logs
 * for each object ("stored ... (..., N ms)": from the first request to
 * the store's last answer). The dir worker flushes each file
 * (output-fsync), as by default.
 * Usage (a private redis-server, stopped afterwards):
 *   tests/lib/with-redis.sh --own build/bin/bench_s3 [--jobs N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "benchlib.h"
#include "log.h"
#include "rq.h"
#include "standin.h"
#include "util.h"

#define JOBS_MAX 500

const char *bench_name = "bench_s3";

enum { K_PICTURE, K_VIDEO, K_N };

static const char *const kind_names[K_N] = { "picture", "video" };

static const char *const kind_specs[K_N] = {
	"{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":\"a fox\","
	"\"steps\":4,\"seed\":%d}}",
	"{\"graph\":{\"1\":{\"class_type\":\"EmptyImage\",\"inputs\":{"
	"\"width\":64,\"height\":64,\"batch_size\":160,\"color\":%d}},"
	"\"2\":{\"class_type\":\"VHS_VideoCombine\",\"inputs\":{\"images\":"
	"[\"1\",0],\"frame_rate\":1,\"loop_count\":0,\"filename_prefix\":"
	"\"big\",\"format\":\"video/h264-mp4\",\"pingpong\":false,"
	"\"save_output\":true}}}}",
};

struct bench {
	const char   *url;
	char	      queue[64];
	char	      prefix[RQ_PREFIX_MAX];
	char	      dir[128];
	char	      sim_url[64];
	char	      s3_url[64];
	redisContext *c;
	long long     jobs;
	long long     run[2][K_N][JOBS_MAX]; /* [s3][kind][job] */
	long long     bytes[K_N];
	long long     up[K_N][JOBS_MAX];
	long long     nup[K_N];
};

/* HGET of a job field, as a malloc'd string ("" when absent). */
static char *
bench_field(struct bench *b, const char *jid, const char *f)
{
	redisReply *r =
	    redisCommand(b->c, "HGET %sjob:%s %s", b->prefix, jid, f);
	char *v;

	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		bench_die("HGET", r ? r->str : b->c->errstr);
	v = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	if (v == NULL)
		bench_die("HGET", "out of memory");
	return (v);
}

static long long
bench_num(struct bench *b, const char *jid, const char *f)
{
	char	 *v = bench_field(b, jid, f);
	long long n = atoll(v);

	free(v);
	return (n);
}

/* Runs one job of kind k to its end; its run time in ms. */
static long long
bench_job(struct bench *b, int k, int seq)
{
	char	  spec[1024], jid[64], *st, *out;
	long long start = clock_mono_ms();
	cJSON	 *o;

	snprintf(spec, sizeof spec, kind_specs[k], seq);
	bench_enqueue(b->c, b->prefix, spec, jid, sizeof jid);
	for (;;) {
		st = bench_field(b, jid, "state");
		if (strcmp(st, "succeeded") == 0)
			break;
		if ((strcmp(st, "failed") == 0 ||
			strcmp(st, "canceled") == 0) ||
		    clock_mono_ms() - start > 60000)
			bench_die(jid, *st != '\0' ? st : "no state");
		free(st);
		bench_sleep_ms(1);
	}
	free(st);
	out = bench_field(b, jid, "outputs");
	o = cJSON_Parse(out);
	b->bytes[k] = (long long)cJSON_GetNumberValue(
	    cJSON_GetObjectItem(cJSON_GetArrayItem(o, 0), "bytes"));
	cJSON_Delete(o);
	free(out);
	return (
	    bench_num(b, jid, "finished_ms") - bench_num(b, jid, "started_ms"));
}

/* One worker with the given store, N jobs of each kind, then it stops. */
static void
bench_store(struct bench *b, int s3)
{
	char	    out[192], log[192], id[32];
	const char *argv[] = { WORKER_BIN, "--redis-url", b->url, "--queue",
		b->queue, "--comfyui-url", b->sim_url, "--worker-id", id,
		"--output-dir", out, "--workflows-dir", WORKFLOWS_DIR,
		"--log-level", "verbose", "--store", s3 ? "s3" : "dir",
		"--s3-endpoint", b->s3_url, "--s3-bucket", "outs",
		"--s3-path-style", "true", "--s3-access-key", "S3RVER",
		"--s3-secret-key", "S3RVER", "--s3-part-mb", "5", NULL };
	pid_t	    wk;
	int	    k, i;

	snprintf(id, sizeof id, "bench-%s", s3 ? "s3" : "dir");
	snprintf(out, sizeof out, "%s/out", b->dir);
	snprintf(log, sizeof log, "%s/%s.log", b->dir, id);
	wk = proc_start(argv, log);
	for (k = 0; k < K_N; k++)
		for (i = 0; i < b->jobs; i++)
			b->run[s3][k][i] = bench_job(b, k, s3 * 10000 + i + 1);
	if (proc_stop(wk, SIGTERM, 10000) != 0)
		bench_die(id, "did not exit cleanly");
}

/* The upload times the s3 worker logged, by kind. */
static void
bench_uploads(struct bench *b)
{
	char  path[192], line[2048];
	char *p;
	FILE *f;
	int   k;

	snprintf(path, sizeof path, "%s/bench-s3.log", b->dir);
	if ((f = fopen(path, "r")) == NULL)
		bench_die(path, "cannot be read");
	while (fgets(line, sizeof line, f) != NULL) {
		if (strstr(line, " as s3 object ") == NULL ||
		    (p = strstr(line, " ms)")) == NULL)
			continue;
		k = strstr(line, "(multipart") != NULL ? K_VIDEO : K_PICTURE;
		while (p > line && p[-1] >= '0' && p[-1] <= '9')
			p--;
		if (b->nup[k] < JOBS_MAX)
			b->up[k][b->nup[k]++] = atoll(p);
	}
	fclose(f);
}

/* Starts s3rver from the build folder; its URL goes to b->s3_url. */
static pid_t
bench_s3rver(struct bench *b)
{
	char	    data[192], pf[192], log[192], port[16];
	const char *argv[] = { "/usr/bin/env", "node", S3RVER_DIR "/serve.js",
		data, "outs", pf, NULL };
	pid_t	    pid;

	if (access(S3RVER_DIR "/node_modules/@20minutes/s3rver", R_OK) != 0)
		bench_die(S3RVER_DIR,
		    "has no s3rver: run ctest -R integration.s3 once (it "
		    "installs it there)");
	snprintf(data, sizeof data, "%s/s3data", b->dir);
	snprintf(pf, sizeof pf, "%s/s3.port", b->dir);
	snprintf(log, sizeof log, "%s/s3rver.log", b->dir);
	pid = proc_start(argv, log);
	bench_await_port(pf, "s3rver", port, sizeof port);
	snprintf(b->s3_url, sizeof b->s3_url, "http://127.0.0.1:%s", port);
	return (pid);
}

int
main(int argc, char **argv)
{
	static struct bench b = { .jobs = 20 };
	char		    name[64];
	pid_t		    sim, s3;
	int		    i, k;

	log_init("bench_s3", LL_WARNING, 0);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--jobs") == 0)
			b.jobs = bench_arg(argc, argv, &i, 1, JOBS_MAX);
		else
			bench_die(argv[i], "unknown option (see the source)");
	}
	snprintf(b.dir, sizeof b.dir, "/tmp/bench_s3.XXXXXX");
	b.c = bench_open(
	    &b.url, b.queue, sizeof b.queue, b.prefix, sizeof b.prefix, b.dir);
	s3 = bench_s3rver(&b);
	sim = bench_sim_start(
	    SIM_BIN, b.dir, "1", "notice", b.sim_url, sizeof b.sim_url);
	printf("%lld jobs of each kind per store, one at a time (logs in %s)\n",
	    b.jobs, b.dir);
	bench_store(&b, 0);
	bench_store(&b, 1);
	bench_uploads(&b);
	for (k = 0; k < K_N; k++) {
		printf("%s, %lld bytes:\n", kind_names[k], b.bytes[k]);
		bench_summary("  run, store dir", 20, b.run[0][k], b.jobs);
		bench_summary("  run, store s3", 20, b.run[1][k], b.jobs);
		snprintf(name, sizeof name, "  upload (%lld)", b.nup[k]);
		if (b.nup[k] > 0)
			bench_summary(name, 20, b.up[k], b.nup[k]);
	}
	proc_stop(sim, SIGTERM, 5000);
	proc_stop(s3, SIGTERM, 5000);
	redisFree(b.c);
	return (0);
}
