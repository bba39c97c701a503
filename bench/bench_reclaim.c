/*
 * bench_reclaim: how long a crashed worker's slot and job stay lost. Each
 * run starts a stand-in worker (shared/testkit/standin.c) that claims a
 * job with a lease and heartbeats, kills it with SIGKILL at a random point
 * of its heartbeat period, and polls Redis every millisecond until the slot
 * is free and the job is back in its lane, with one comfyq-janitor running
 * throughout. It prints, per run and as min/median/p90/max:
 *   kill->back    from the kill to slot free and job ready
 *   expiry->back  from the lease deadline (the last heartbeat + lease) to
 *                 the same moment: what the janitor adds to the lease
 * Usage (a private redis-server, stopped afterwards):
 *   tests/lib/with-redis.sh --own build/bin/bench_reclaim [--runs N]
 *       [--lease-ms MS] [--beat-ms MS] [--tick-ms MS]
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

const char *bench_name = "bench_reclaim";

struct bench {
	const char   *url;
	char	      prefix[RQ_PREFIX_MAX];
	redisContext *c;
	long long     runs, lease_ms, beat_ms, tick_ms;
	long long     back[RUNS_MAX], late[RUNS_MAX];
};

static long long
bench_int(struct bench *b, const char *fmt, const char *key)
{
	redisReply *r = redisCommand(b->c, fmt, b->prefix, key);
	long long   v;

	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		bench_die(fmt, r ? r->str : b->c->errstr);
	v = r->type == REDIS_REPLY_INTEGER  ? r->integer
	    : r->type == REDIS_REPLY_STRING ? atoll(r->str)
					    : -1;
	freeReplyObject(r);
	return (v);
}

/* A random wait in [0, n) ms. */
static long long
bench_rand_ms(long long n)
{
	return ((long long)(rand_u64() % (uint64_t)n));
}

/* One crash; fills back and late for run i. */
static void
bench_run(struct bench *b, int i)
{
	struct standin_opts o = { b->url, b->prefix, "bench-w", "gpu0", "h1", 1,
		(int)b->lease_ms, (int)b->beat_ms };
	struct standin	    s;
	char		    err[512], jid[64];
	long long	    t_kill, t_kill_wall, until;

	bench_enqueue(
	    b->c, b->prefix, "{\"workflow\":\"bench\"}", jid, sizeof jid);
	/* Out of step with the janitor's ticks, as real workers are. */
	bench_sleep_ms(bench_rand_ms(b->tick_ms));
	if (standin_start(&s, &o, err, sizeof err) == -1)
		bench_die("standin", err);
	/* Somewhere in its second heartbeat period, as a crash would be. */
	bench_sleep_ms(b->beat_ms + bench_rand_ms(b->beat_ms));
	standin_kill(&s);
	t_kill = clock_mono_ms();
	t_kill_wall = clock_wall_ms();
	until = bench_int(b, "HGET %sjob:%s lease_until", s.jid[0]);
	while (bench_int(b, "HLEN %sheld:%s", "gpu0") != 0 ||
	    bench_int(b, "ZCARD %sready:%s", "normal") != 1) {
		if (clock_mono_ms() - t_kill > b->lease_ms + 60000)
			bench_die(
			    "run", "the job did not come back in a minute");
		bench_sleep_ms(1);
	}
	b->back[i] = clock_mono_ms() - t_kill;
	b->late[i] = t_kill_wall + b->back[i] - until;
	printf("run %3d  kill->back %5lld ms  expiry->back %5lld ms\n", i + 1,
	    b->back[i], b->late[i]);
	bench_cancel(b->c, b->prefix, s.jid[0]);
}

int
main(int argc, char **argv)
{
	static struct bench b = {
		.runs = 20, .lease_ms = 2000, .beat_ms = 500, .tick_ms = 100
	};
	char	    err[512], tick[32];
	const char *jargv[16];
	pid_t	    jan;
	int	    i;

	log_init("bench_reclaim", LL_WARNING, 0);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0)
			b.runs = bench_arg(argc, argv, &i, 1, RUNS_MAX);
		else if (strcmp(argv[i], "--lease-ms") == 0)
			b.lease_ms = bench_arg(argc, argv, &i, 1000, 600000);
		else if (strcmp(argv[i], "--beat-ms") == 0)
			b.beat_ms = bench_arg(argc, argv, &i, 10, 600000);
		else if (strcmp(argv[i], "--tick-ms") == 0)
			b.tick_ms = bench_arg(argc, argv, &i, 10, 60000);
		else
			bench_die(argv[i], "unknown option (see the source)");
	}
	if ((b.url = getenv("COMFYQ_TEST_REDIS_URL")) == NULL)
		bench_die(
		    "COMFYQ_TEST_REDIS_URL", "not set (use with-redis.sh)");
	snprintf(b.prefix, sizeof b.prefix, "cq:{bench%d}:", (int)getpid());
	if ((b.c = rq_connect(b.url, NULL, 10000, 1, err, sizeof err)) == NULL)
		bench_die("redis", err);
	bench_slot_set(b.c, b.prefix, "gpu0", 1);
	snprintf(tick, sizeof tick, "%lld", b.tick_ms);
	jargv[0] = JANITOR_BIN;
	jargv[1] = "--redis-url";
	jargv[2] = b.url;
	jargv[3] = "--queue";
	snprintf(err, sizeof err, "bench%d", (int)getpid());
	jargv[4] = err;
	jargv[5] = "--tick-ms";
	jargv[6] = tick;
	jargv[7] = NULL;
	jan = proc_start(jargv, "/dev/null");
	printf("lease %lld ms, heartbeat every %lld ms, janitor tick %lld ms, "
	       "%lld runs\n",
	    b.lease_ms, b.beat_ms, b.tick_ms, b.runs);
	for (i = 0; i < b.runs; i++)
		bench_run(&b, i);
	bench_summary("kill->back", 13, b.back, b.runs);
	bench_summary("expiry->back", 13, b.late, b.runs);
	i = proc_stop(jan, SIGTERM, 5000);
	redisFree(b.c);
	return (i == 0 ? 0 : 1);
}
