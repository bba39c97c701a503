/* Helpers of the benchmarks (see benchlib.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "standin.h"
#include "rq.h"
#include "rqfn.h"
#include "util.h"

const char bench_long_graph[] =
    "{\"graph\":{\"1\":{\"class_type\":\"CheckpointLoaderSimple\","
    "\"inputs\":{\"ckpt_name\":\"sd_xl_base_1.0.safetensors\"}},"
    "\"2\":{\"class_type\":\"EmptyLatentImage\",\"inputs\":{\"width\":512,"
    "\"height\":512,\"batch_size\":1}},\"3\":{\"class_type\":"
    "\"CLIPTextEncode\",\"inputs\":{\"text\":\"x\",\"clip\":[\"1\",1]}},"
    "\"4\":{\"class_type\":\"KSampler\",\"inputs\":{\"model\":[\"1\",0],"
    "\"seed\":%d,\"steps\":5000,\"cfg\":7,\"sampler_name\":\"euler\","
    "\"scheduler\":\"normal\",\"positive\":[\"3\",0],\"negative\":"
    "[\"3\",0],\"latent_image\":[\"2\",0],\"denoise\":1}},\"5\":"
    "{\"class_type\":\"VAEDecode\",\"inputs\":{\"samples\":[\"4\",0],"
    "\"vae\":[\"1\",2]}},\"6\":{\"class_type\":\"SaveImage\",\"inputs\":"
    "{\"images\":[\"5\",0],\"filename_prefix\":\"b\"}}}}";

void
bench_die(const char *what, const char *why)
{
	fprintf(stderr, "%s: %s: %s\n", bench_name, what, why);
	exit(1);
}

void
bench_sleep_ms(long long ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1)
		;
}

/* The value after argv[*i], in lo..hi; *i moves past it. */
long long
bench_arg(int argc, char **argv, int *i, long long lo, long long hi)
{
	long long v;

	if (*i + 1 >= argc || parse_ll(argv[*i + 1], lo, hi, &v) == -1)
		bench_die(argv[*i], "missing or out of range");
	(*i)++;
	return (v);
}

static int
bench_cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x < y ? -1 : x > y);
}

void
bench_sort(long long *v, long long n)
{
	qsort(v, (size_t)n, sizeof *v, bench_cmp);
}

/* The p-th percentile of sorted v[0..n). */
long long
bench_pct(const long long *v, long long n, int p)
{
	long long i = (n * p) / 100;

	return (v[i < n ? i : n - 1]);
}

/* Sorts v[0..n) and prints "name min .. median .. p90 .. max .. ms". */
void
bench_summary(const char *name, int width, long long *v, long long n)
{
	bench_sort(v, n);
	printf("%-*s min %5lld  median %5lld  p90 %5lld  max %5lld ms\n", width,
	    name, v[0], v[n / 2], v[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1],
	    v[n - 1]);
}

/* Runs c (and frees it); the reply, or death with the connection's error. */
static redisReply *
bench_call(redisContext *ctx, struct rq_cmd *c, const char *what)
{
	redisReply *r = rq_run(ctx, c);

	rq_cmd_free(c);
	if (r == NULL)
		bench_die(what, ctx->errstr);
	return (r);
}

/* Queues spec; its job id goes to jid. */
void
bench_enqueue(redisContext *ctx, const char *prefix, const char *spec,
    char *jid, size_t jidlen)
{
	struct rqfn_enqueue e;
	struct rq_cmd	    c;
	redisReply	   *r;
	char		    err[1024];

	rqfn_enqueue_cmd(&c, prefix, spec, NULL);
	r = bench_call(ctx, &c, "enqueue");
	if (rqfn_enqueue_reply(r, &e, err, sizeof err) == -1)
		bench_die("enqueue", err);
	snprintf(jid, jidlen, "%s", e.jid);
	freeReplyObject(r);
}

void
bench_cancel(redisContext *ctx, const char *prefix, const char *jid)
{
	struct rqfn_cancel k;
	struct rq_cmd	   c;
	redisReply	  *r;
	char		   err[1024];

	rqfn_cancel_cmd(&c, prefix, jid, NULL);
	r = bench_call(ctx, &c, "cancel");
	if (rqfn_cancel_reply(r, &k, err, sizeof err) == -1)
		bench_die("cancel", err);
	freeReplyObject(r);
}

void
bench_slot_set(
    redisContext *ctx, const char *prefix, const char *pool, long long cap)
{
	struct rq_cmd c;
	redisReply   *r;
	char	      err[1024];

	rqfn_slot_set_cmd(&c, prefix, pool, cap, 0);
	r = bench_call(ctx, &c, "slot_set");
	if (rqfn_slot_set_reply(r, err, sizeof err) == -1)
		bench_die("slot_set", err);
	freeReplyObject(r);
}

/*
 * The test redis-server (COMFYQ_TEST_REDIS_URL, which with-redis.sh sets):
 * its URL in *url and a blocking connection, returned; a private queue
 * (bench<pid>) and its key prefix; a fresh folder made from dir, a
 * mkdtemp template ("/tmp/bench_x.XXXXXX"). Dies on any failure.
 */
redisContext *
bench_open(const char **url, char *queue, size_t qlen, char *prefix,
    size_t plen, char *dir)
{
	redisContext *c;
	char	      err[512];

	if ((*url = getenv("COMFYQ_TEST_REDIS_URL")) == NULL)
		bench_die(
		    "COMFYQ_TEST_REDIS_URL", "not set (use with-redis.sh)");
	snprintf(queue, qlen, "bench%d", (int)getpid());
	snprintf(prefix, plen, "cq:{%s}:", queue);
	if (mkdtemp(dir) == NULL)
		bench_die("mkdtemp", dir);
	if ((c = rq_connect(*url, NULL, 10000, 1, err, sizeof err)) == NULL)
		bench_die("redis", err);
	return (c);
}

/*
 * Waits up to 20 s for a port file (what names its program in the error)
 * and returns the port, as text, in port.
 */
void
bench_await_port(const char *pf, const char *what, char *port, size_t len)
{
	long long start = clock_mono_ms();
	FILE	 *f;

	port[0] = '\0';
	while (
	    (f = fopen(pf, "r")) == NULL || fgets(port, (int)len, f) == NULL) {
		if (f != NULL)
			fclose(f);
		if (clock_mono_ms() - start > 20000)
			bench_die(what, "did not start");
		bench_sleep_ms(10);
	}
	fclose(f);
	port[strcspn(port, "\n")] = '\0';
}

/*
 * Starts comfyq-sim (sim_bin) on a free port with its files under dir
 * (dir/sim, dir/sim.log); returns its pid and writes its URL. Dies when it
 * does not say its port within 20 s.
 */
pid_t
bench_sim_start(const char *sim_bin, const char *dir, const char *step_ms,
    const char *log_level, char *url, size_t urllen)
{
	char	    pf[192], base[192], log[192], port[16];
	const char *argv[] = { sim_bin, "--port", "0", "--port-file", pf,
		"--base-directory", base, "--step-ms", step_ms,
		"--model-load-ms", "0", "--log-level", log_level, NULL };
	pid_t	    pid;

	snprintf(pf, sizeof pf, "%s/sim.port", dir);
	snprintf(base, sizeof base, "%s/sim", dir);
	snprintf(log, sizeof log, "%s/sim.log", dir);
	pid = proc_start(argv, log);
	bench_await_port(pf, "comfyq-sim", port, sizeof port);
	snprintf(url, urllen, "http://127.0.0.1:%s", port);
	return (pid);
}

/* utime + stime of a live process, in us. */
double
bench_cpu_us(pid_t pid)
{
	char		   path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE		  *f;
	size_t		   n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		bench_die(path, strerror(errno));
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* after "(comm) ": state is field 3, utime 14, stime 15 */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2,
		"%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
		&st) != 2)
		bench_die(path, "unexpected format");
	return ((double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK));
}

/* VmRSS of a live process, in KiB. */
long long
bench_rss_kb(pid_t pid)
{
	char	  path[64], line[256];
	long long kb = -1;
	FILE	 *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		bench_die(path, strerror(errno));
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atoll(line + 6);
	fclose(f);
	return (kb);
}

/* The value of field k of a stream entry's field list; "" when absent. */
const char *
bench_entry_field(const redisReply *kv, const char *k)
{
	size_t i;

	for (i = 0; i + 1 < kv->elements; i += 2)
		if (strcmp(kv->element[i]->str, k) == 0)
			return (kv->element[i + 1]->str);
	return ("");
}
