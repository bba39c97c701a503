/*
 * bench/wake: how long an idle worker blocked on the marker takes to wake
 * when a job is enqueued, and how long a claim takes after that.
 *
 *   bench_wake [REDIS_URL] [ROUNDS]
 *
 * A waiter thread blocks in BZPOPMIN on the queue's marker (as an idle
 * worker does) on its own connection; the main thread waits until the
 * server lists it as blocked, notes the time, and calls enqueue. The waiter
 * notes when BZPOPMIN returned and then claims. Reported: enqueue-to-wake
 * and wake-to-claimed, as percentiles over ROUNDS rounds, in microseconds.
 * Uses a private queue name and deletes its keys at the end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rq.h"
#include "rqfn.h"

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

struct bench {
	const char *url;
	char	    prefix[RQ_PREFIX_MAX];
	long long   wake_us;
	long long   claimed_us;
	int	    ok;
};

static void *
waiter(void *arg)
{
	struct bench	 *b = arg;
	struct rqfn_claim cl;
	struct rq_cmd	  claim;
	redisContext	 *c;
	redisReply	 *r;
	char		  err[256];

	if ((c = rq_connect(b->url, NULL, 10000, 0, err, sizeof err)) == NULL) {
		fprintf(stderr, "bench_wake: %s\n", err);
		return (NULL);
	}
	rqfn_claim_cmd(&claim, b->prefix, "bench", "gpu0", 30000, 16, 0);
	r = redisCommand(c, "BZPOPMIN %smarker 10", b->prefix);
	b->wake_us = now_us();
	b->ok = r != NULL && r->type == REDIS_REPLY_ARRAY;
	freeReplyObject(r);
	r = rq_run(c, &claim);
	b->claimed_us = now_us();
	b->ok = b->ok && rqfn_claim_reply(r, &cl, err, sizeof err) == 0 &&
	    cl.kind == RQFN_CLAIM_JOB;
	freeReplyObject(r);
	rq_cmd_free(&claim);
	redisFree(c);
	return (NULL);
}

/* Waits (up to 2 s) until some client is blocked in BZPOPMIN. */
static int
wait_blocked(redisContext *c)
{
	redisReply *r;
	int	    blocked = 0, i;

	for (i = 0; i < 10000 && !blocked; i++) {
		r = redisCommand(c, "INFO clients");
		blocked =
		    r != NULL && strstr(r->str, "blocked_clients:1") != NULL;
		freeReplyObject(r);
		if (!blocked)
			usleep(200);
	}
	return (blocked ? 0 : -1);
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x < y ? -1 : x > y);
}

static void
report(const char *what, long long *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_ll);
	printf("%-22s p50 %6lld us  p90 %6lld us  p99 %6lld us  max %6lld us\n",
	    what, v[n / 2], v[n * 9 / 10], v[n * 99 / 100], v[n - 1]);
}

int
main(int argc, char **argv)
{
	const char  *url = argc > 1 ? argv[1] : "redis://127.0.0.1:6379";
	int	     rounds = argc > 2 ? atoi(argv[2]) : 500, i, done = 0;
	long long   *wake, *claim, t0;
	struct bench b;
	struct rqfn_slot_get s;
	struct rqfn_holder   h;
	struct rq_cmd	     cmd;
	redisContext	    *c;
	redisReply	    *r;
	pthread_t	     t;
	char		     err[256], q[64];

	if (rounds < 10)
		rounds = 10;
	memset(&b, 0, sizeof b);
	b.url = url;
	snprintf(q, sizeof q, "bench-wake-%d", (int)getpid());
	rq_prefix(b.prefix, sizeof b.prefix, q);
	if ((c = rq_connect(url, NULL, 10000, 1, err, sizeof err)) == NULL) {
		fprintf(stderr, "bench_wake: %s\n", err);
		return (1);
	}
	rqfn_slot_set_cmd(&cmd, b.prefix, "gpu0", 1, 0);
	r = rq_run(c, &cmd);
	rq_cmd_free(&cmd);
	if (rqfn_slot_set_reply(r, err, sizeof err) == -1) {
		fprintf(stderr, "bench_wake: slot_set: %s\n",
		    r != NULL ? err : c->errstr);
		freeReplyObject(r);
		redisFree(c);
		return (1);
	}
	freeReplyObject(r);
	wake = calloc((size_t)rounds, sizeof *wake);
	claim = calloc((size_t)rounds, sizeof *claim);
	for (i = 0; i < rounds; i++) {
		/* No stale wake-up token may end the wait early. */
		freeReplyObject(redisCommand(c, "DEL %smarker", b.prefix));
		pthread_create(&t, NULL, waiter, &b);
		if (wait_blocked(c) == -1) {
			pthread_join(t, NULL);
			continue;
		}
		rqfn_enqueue_cmd(
		    &cmd, b.prefix, "{\"workflow\":\"bench\"}", NULL);
		t0 = now_us();
		freeReplyObject(rq_run(c, &cmd));
		rq_cmd_free(&cmd);
		pthread_join(t, NULL);
		if (!b.ok)
			continue;
		wake[done] = b.wake_us - t0;
		claim[done++] = b.claimed_us - b.wake_us;
		/* Free the slot for the next round. */
		rqfn_slot_get_cmd(&cmd, b.prefix, "gpu0");
		r = rq_run(c, &cmd);
		rq_cmd_free(&cmd);
		if (rqfn_slot_get_reply(r, &s, err, sizeof err) == 0 &&
		    s.nholders == 1) {
			rqfn_slot_holder(&s, 0, &h);
			rqfn_cancel_cmd(&cmd, b.prefix, h.holder, NULL);
			freeReplyObject(rq_run(c, &cmd));
			rq_cmd_free(&cmd);
		}
		freeReplyObject(r);
		freeReplyObject(redisCommand(c, "DEL %sheld:gpu0", b.prefix));
	}
	printf("bench_wake: %d of %d rounds on %s\n", done, rounds, url);
	if (done > 0) {
		report("enqueue -> wake", wake, done);
		report("wake -> claimed", claim, done);
	}
	r = redisCommand(c, "KEYS %s*", b.prefix);
	for (i = 0; r != NULL && i < (int)r->elements; i++)
		freeReplyObject(redisCommand(c, "DEL %s", r->element[i]->str));
	freeReplyObject(r);
	redisFree(c);
	free(wake);
	free(claim);
	return (done == rounds ? 0 : 1);
}
