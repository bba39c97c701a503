/*
 * bench_e2e's options and its table of measures (see e2e.h). It runs the
 * measures named by --measures in order on the Redis of
 * COMFYQ_TEST_REDIS_URL (bench/run.sh starts a private one), prints one
 * line per measure to stderr, and writes the metrics as one JSON object to
 * --out. The programs it starts are those of its own build tree.
 * Usage: bench_e2e --out FILE [--measures a,b,...] [--samples N]
 *   [--jobs N] [--monitor-jobs N] [--gap-jobs N] [--cancel-runs N]
 *   [--reclaim-runs N] [--mix-jobs N] [--best-slots N] [--best-workers N]
 */
#include <sys/stat.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "e2e.h"
#include "log.h"
#include "util.h"

const char *bench_name = "bench_e2e";

static const struct {
	const char *name;
	void (*fn)(struct e2e *);
} measures[] = {
	{ "latency", measure_latency },
	{ "gap", measure_gap },
	{ "throughput", measure_throughput },
	{ "split", measure_split },
	{ "cancel", measure_cancel },
	{ "reclaim", measure_reclaim },
	{ "reclaim_default", measure_reclaim_default },
	{ "models", measure_models },
};

static const struct {
	const char *opt;
	size_t	    off;
	long long   lo, hi;
} counts[] = {
	{ "--samples", offsetof(struct e2e, samples), 1, 100000 },
	{ "--jobs", offsetof(struct e2e, jobs), 20, 1000000 },
	{ "--monitor-jobs", offsetof(struct e2e, monitor_jobs), 20, 1000000 },
	{ "--gap-jobs", offsetof(struct e2e, gap_jobs), 3, 10000 },
	{ "--cancel-runs", offsetof(struct e2e, cancel_runs), 1, 1000 },
	{ "--reclaim-runs", offsetof(struct e2e, reclaim_runs), 1, 1000 },
	{ "--mix-jobs", offsetof(struct e2e, mix_jobs), 3, 10000 },
	{ "--best-slots", offsetof(struct e2e, best_slots), 1, 16 },
	{ "--best-workers", offsetof(struct e2e, best_workers), 1,
	    E2E_WORKERS_MAX },
};

/* The address of the bench's own connection, as MONITOR names it. */
static void
self_addr(struct e2e *e)
{
	redisReply *r = redisCommand(e->c, "CLIENT INFO");
	const char *p;

	if (r == NULL || r->type != REDIS_REPLY_STRING ||
	    (p = strstr(r->str, "addr=")) == NULL)
		bench_die("CLIENT INFO", r ? "no addr" : e->c->errstr);
	snprintf(e->self_addr, sizeof e->self_addr, "%.*s",
	    (int)strcspn(p + 5, " \n"), p + 5);
	freeReplyObject(r);
}

static void
run_measure(struct e2e *e, const char *name)
{
	long long t = clock_mono_ms();
	size_t	  i;

	for (i = 0; i < sizeof measures / sizeof measures[0]; i++)
		if (strcmp(measures[i].name, name) == 0)
			break;
	if (i == sizeof measures / sizeof measures[0])
		bench_die(name, "no such measure");
	measures[i].fn(e);
	fprintf(stderr, "bench_e2e: %s done in %lld ms\n", name,
	    clock_mono_ms() - t);
}

int
main(int argc, char **argv)
{
	static struct e2e e = { .samples = 500,
		.jobs = 20000,
		.monitor_jobs = 1000,
		.gap_jobs = 40,
		.cancel_runs = 5,
		.reclaim_runs = 3,
		.mix_jobs = 90,
		.best_slots = 1,
		.best_workers = 1 };
	const char	 *out = NULL;
	char list[512] = "latency,gap,throughput,split,cancel,reclaim,"
			 "models",
	     *name, *save, err[512], *json;
	FILE  *f;
	size_t k;
	int    i;

	log_init("bench_e2e", LL_WARNING, 0);
	for (i = 1; i < argc; i++) {
		for (k = 0; k < sizeof counts / sizeof counts[0]; k++)
			if (strcmp(argv[i], counts[k].opt) == 0)
				break;
		if (k < sizeof counts / sizeof counts[0])
			*(long long *)((char *)&e + counts[k].off) = bench_arg(
			    argc, argv, &i, counts[k].lo, counts[k].hi);
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--measures") == 0 && i + 1 < argc)
			snprintf(list, sizeof list, "%s", argv[++i]);
		else
			bench_die(argv[i], "unknown option (see the source)");
	}
	if (out == NULL)
		bench_die("--out", "missing");
	if ((e.url = getenv("COMFYQ_TEST_REDIS_URL")) == NULL)
		bench_die(
		    "COMFYQ_TEST_REDIS_URL", "not set (use with-redis.sh)");
	signal(SIGPIPE, SIG_IGN);
	/* Outputs, logs and the sims' files on tmpfs where there is one,
	 * so a throughput run measures the queue, not the file system's
	 * inode allocation (e2e_stack.c); TMPDIR chooses. */
	snprintf(e.dir, sizeof e.dir, "%s/bench_e2e.XXXXXX",
	    getenv("TMPDIR") != NULL		? getenv("TMPDIR")
		: access("/dev/shm", W_OK) == 0 ? "/dev/shm"
						: "/tmp");
	if (mkdtemp(e.dir) == NULL)
		bench_die("mkdtemp", e.dir);
	if ((e.c = rq_connect(e.url, NULL, 30000, 1, err, sizeof err)) == NULL)
		bench_die("redis", err);
	self_addr(&e);
	e.m = cJSON_CreateObject();
	fprintf(stderr, "bench_e2e: logs in %s\n", e.dir);
	for (name = strtok_r(list, ",", &save); name != NULL;
	     name = strtok_r(NULL, ",", &save))
		run_measure(&e, name);
	if ((json = cJSON_Print(e.m)) == NULL || (f = fopen(out, "w")) == NULL)
		bench_die(out, "cannot write");
	fprintf(f, "%s\n", json);
	if (fclose(f) != 0)
		bench_die(out, "cannot write");
	free(json);
	cJSON_Delete(e.m);
	redisFree(e.c);
	return (0);
}
