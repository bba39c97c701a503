/*
 * Latency of one job at a time on an idle worker (1 slot, blocked on its
 * wake-up marker): from the enqueue call to the sim's receipt of POST
 * /prompt (its /sim/stats last_post_us: both clocks are CLOCK_MONOTONIC)
 * and to the moment a producer blocked on XREAD reads the job's terminal
 * event (a thread of ours, as a producer's listener would be). The next
 * job goes 5 ms after the terminal event, so the worker is waiting again.
 * Also the worker's VmRSS idle, and cancel -> interrupt: comfyq_cancel of a
 * running job to the sim's receipt of POST /interrupt.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchlib.h"
#include "e2e.h"
#include "rqfn.h"
#include "util.h"
#include "xmalloc.h"

#define PAUSE_MS 5

/* The producer's listener: the last terminal event and when it came. */
struct watch {
	pthread_t	t;
	pthread_mutex_t mu;
	pthread_cond_t	cv;
	redisContext   *c;
	char		key[RQ_PREFIX_MAX + 8];
	int		stop;
	char		jid[64], type[32];
	long long	us;
};

static int
terminal(const char *type)
{
	return (strcmp(type, "succeeded") == 0 || strcmp(type, "failed") == 0 ||
	    strcmp(type, "canceled") == 0);
}

static void *
watch_run(void *arg)
{
	struct watch	 *w = arg;
	const redisReply *es, *kv;
	redisReply	 *r;
	char		  last[48] = "$";
	long long	  t;
	size_t		  i;
	int		  stop = 0;

	while (!stop) {
		r = redisCommand(w->c,
		    "XREAD COUNT 100 BLOCK 100 STREAMS %s %s", w->key, last);
		t = clock_mono_us();
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			bench_die("XREAD", r ? r->str : w->c->errstr);
		pthread_mutex_lock(&w->mu);
		if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
			es = r->element[0]->element[1];
			for (i = 0; i < es->elements; i++) {
				snprintf(last, sizeof last, "%s",
				    es->element[i]->element[0]->str);
				kv = es->element[i]->element[1];
				if (!terminal(bench_entry_field(kv, "type")))
					continue;
				snprintf(w->jid, sizeof w->jid, "%s",
				    bench_entry_field(kv, "job"));
				snprintf(w->type, sizeof w->type, "%s",
				    bench_entry_field(kv, "type"));
				w->us = t;
				pthread_cond_broadcast(&w->cv);
			}
		}
		stop = w->stop;
		pthread_mutex_unlock(&w->mu);
		freeReplyObject(r);
	}
	return (NULL);
}

static void
watch_start(struct watch *w, struct stack *s)
{
	char err[512];

	memset(w, 0, sizeof *w);
	if ((w->c = rq_connect(s->e->url, NULL, 10000, 0, err, sizeof err)) ==
	    NULL)
		bench_die("redis", err);
	snprintf(w->key, sizeof w->key, "%sevents", s->prefix);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->t, NULL, watch_run, w) != 0)
		bench_die("pthread_create", "failed");
	bench_sleep_ms(300); /* its first XREAD waits from "$" */
}

/* When the listener read jid's terminal event (dies after 30 s). */
static long long
watch_wait(struct watch *w, const char *jid)
{
	long long	start = clock_mono_ms(), t;
	struct timespec ts;

	pthread_mutex_lock(&w->mu);
	while (strcmp(w->jid, jid) != 0) {
		if (clock_mono_ms() - start > 30000)
			bench_die(jid, "no terminal event in 30 s");
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	}
	if (strcmp(w->type, "succeeded") != 0)
		bench_die(jid, w->type);
	t = w->us;
	pthread_mutex_unlock(&w->mu);
	return (t);
}

static void
watch_stop(struct watch *w)
{
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->t, NULL);
	redisFree(w->c);
}

void
measure_latency(struct e2e *e)
{
	double		*disp = xcalloc((size_t)e->samples, sizeof *disp);
	double		*term = xcalloc((size_t)e->samples, sizeof *term);
	static const int ps[] = { 50, 90, 99 };
	struct stack	 s;
	struct watch	 w;
	cJSON		*st;
	char		 jid[64], key[40];
	long long	 i, t0, t1;
	size_t		 k;

	stack_init(&s, e, "lat");
	stack_sims(&s, 1, "10", "0");
	stack_worker(&s, 0, "1", NULL);
	watch_start(&w, &s);
	e2e_set(e, "rss_idle_kb", (double)bench_rss_kb(s.wk[0]));
	for (i = 0; i < e->samples; i++) {
		t0 = clock_mono_us();
		e2e_enqueue(&s, e2e_smoke_spec, jid, sizeof jid);
		t1 = watch_wait(&w, jid);
		st = sim_stats(&s, 0);
		if (stat_ll(st, "prompts_posted") != i + 1)
			bench_die(jid, "not exactly one POST /prompt");
		term[i] = (double)(t1 - t0);
		disp[i] = (double)(stat_ll(st, "last_post_us") - t0);
		cJSON_Delete(st);
		bench_sleep_ms(PAUSE_MS);
	}
	watch_stop(&w);
	stack_stop(&s);
	for (k = 0; k < sizeof ps / sizeof ps[0]; k++) {
		snprintf(key, sizeof key, "dispatch_p%d_us", ps[k]);
		e2e_set(e, key, e2e_pct(disp, e->samples, ps[k]));
		snprintf(key, sizeof key, "terminal_p%d_us", ps[k]);
		e2e_set(e, key, e2e_pct(term, e->samples, ps[k]));
	}
	free(disp);
	free(term);
}

/* Enqueues a 50 s job with this seed and waits until the sim runs it. */
void
e2e_start_long(
    struct stack *s, int sim, long long seed, char *jid, size_t jidlen)
{
	char	  spec[2048];
	long long n = sim_stat(s, sim, "prompts_started"),
		  start = clock_mono_ms();

	snprintf(spec, sizeof spec, bench_long_graph, (int)seed);
	e2e_enqueue(s, spec, jid, jidlen);
	while (sim_stat(s, sim, "prompts_started") == n) {
		if (clock_mono_ms() - start > 20000)
			bench_die(jid, "its prompt did not start in 20 s");
		bench_sleep_ms(5);
	}
}

void
measure_cancel(struct e2e *e)
{
	double *v = xcalloc((size_t)e->cancel_runs, sizeof *v), max = 0;
	struct rqfn_cancel k;
	struct stack	   s;
	struct rq_cmd	   c;
	redisReply	  *r;
	char		   jid[64], err[512], st[32];
	long long	   i, n, t0, start;

	stack_init(&s, e, "cancel");
	stack_sims(&s, 1, "10", "0");
	stack_worker(&s, 0, "1", NULL);
	for (i = 0; i < e->cancel_runs; i++) {
		e2e_start_long(&s, 0, i + 1, jid, sizeof jid);
		bench_sleep_ms(100 + (long long)(rand_u64() % 500));
		n = sim_stat(&s, 0, "interrupts");
		rqfn_cancel_cmd(&c, s.prefix, jid, NULL);
		t0 = clock_mono_us();
		if ((r = rq_run(e->c, &c)) == NULL)
			bench_die("cancel", e->c->errstr);
		if (rqfn_cancel_reply(r, &k, err, sizeof err) == -1 ||
		    strcmp(k.what, "requested") != 0)
			bench_die("cancel", *err ? err : k.what);
		freeReplyObject(r);
		rq_cmd_free(&c);
		start = clock_mono_ms();
		while (sim_stat(&s, 0, "interrupts") == n) {
			if (clock_mono_ms() - start > 30000)
				bench_die(jid, "no POST /interrupt in 30 s");
			bench_sleep_ms(1);
		}
		v[i] = (double)(sim_stat(&s, 0, "last_interrupt_us") - t0);
		max = v[i] > max ? v[i] : max;
		start = clock_mono_ms();
		while (strcmp(e2e_job_field(&s, jid, "state", st, sizeof st),
			   "canceled") != 0) {
			if (clock_mono_ms() - start > 30000)
				bench_die(jid, "not canceled in 30 s");
			bench_sleep_ms(2);
		}
	}
	stack_stop(&s);
	e2e_set(e, "cancel_p50_us", e2e_pct(v, e->cancel_runs, 50));
	e2e_set(e, "cancel_max_us", max);
	free(v);
}
