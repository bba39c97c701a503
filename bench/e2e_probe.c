/*
 * What bench_e2e reads to measure: a process's CPU time and VmRSS from
 * /proc, redis-server's counters from INFO (commandstats, stats, cpu),
 * Redis keys; and what it writes: jobs, one at a time or pipelined in
 * batches of 100, as a producer that enqueues many would. Any failure is
 * fatal (bench_die).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "e2e.h"
#include "rqfn.h"

#define FILL_BATCH 100

const char e2e_smoke_spec[] =
    "{\"workflow\":\"smoke_invert\",\"params\":{\"width\":8,\"height\":8}}";

/* Whether a commandstats name is one of the bench's own commands. */
static int
rinfo_own(const char *name, size_t len)
{
	static const char *const own[] = { "info", "config|resetstat",
		"client|info", "monitor" };
	size_t			 i;

	for (i = 0; i < sizeof own / sizeof own[0]; i++)
		if (strlen(own[i]) == len && strncmp(name, own[i], len) == 0)
			return (1);
	return (0);
}

void
rinfo_get(struct e2e *e, struct rinfo *ri)
{
	redisReply *r = redisCommand(e->c, "INFO commandstats stats cpu");
	const char *p, *colon;
	double	    d;

	if (r == NULL || r->type != REDIS_REPLY_STRING)
		bench_die("INFO", r ? "not a string" : e->c->errstr);
	memset(ri, 0, sizeof *ri);
	for (p = r->str; p != NULL && *p != '\0';
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, "cmdstat_", 8) == 0 &&
		    (colon = strchr(p, ':')) != NULL &&
		    !rinfo_own(p + 8, (size_t)(colon - p - 8)) &&
		    strncmp(colon, ":calls=", 7) == 0)
			ri->cmds += atoll(colon + 7);
		else if (strncmp(p, "total_reads_processed:", 22) == 0)
			ri->reads = atoll(p + 22);
		else if (sscanf(p, "used_cpu_sys:%lf", &d) == 1 ||
		    sscanf(p, "used_cpu_user:%lf", &d) == 1)
			ri->cpu_us += d * 1e6;
	}
	freeReplyObject(r);
}

/* An integer reply of a command on one of the stack's keys. */
long long
e2e_int(struct e2e *e, const char *fmt, const char *prefix)
{
	redisReply *r = redisCommand(e->c, fmt, prefix);
	long long   v;

	if (r == NULL || r->type != REDIS_REPLY_INTEGER)
		bench_die(fmt,
		    r ? (r->str ? r->str : "not an integer") : e->c->errstr);
	v = r->integer;
	freeReplyObject(r);
	return (v);
}

static void
e2e_enqueue_check(redisReply *r, char *jid, size_t jidlen)
{
	struct rqfn_enqueue q;
	char		    err[512];

	if (rqfn_enqueue_reply(r, &q, err, sizeof err) == -1)
		bench_die("enqueue", err);
	if (jid != NULL)
		snprintf(jid, jidlen, "%s", q.jid);
}

/* Enqueues n jobs of spec, FILL_BATCH to a pipeline. */
void
e2e_fill(struct stack *s, const char *spec, long long n)
{
	struct rq_cmd c;
	redisReply   *r;
	long long     i, k, b;

	rqfn_enqueue_cmd(&c, s->prefix, spec, NULL);
	for (i = 0; i < n; i += b) {
		b = n - i < FILL_BATCH ? n - i : FILL_BATCH;
		for (k = 0; k < b; k++)
			redisAppendCommandArgv(
			    s->e->c, c.argc, (const char **)c.argv, c.lens);
		for (k = 0; k < b; k++) {
			if (redisGetReply(s->e->c, (void **)&r) != REDIS_OK)
				bench_die("enqueue", s->e->c->errstr);
			e2e_enqueue_check(r, NULL, 0);
			freeReplyObject(r);
		}
	}
	rq_cmd_free(&c);
}

void
e2e_enqueue(struct stack *s, const char *spec, char *jid, size_t jidlen)
{
	e2e_enqueue_model(s, spec, NULL, jid, jidlen);
}

/* As a producer that renders its templates in C does (comfyq submit, POST
 * /v1/jobs): the job's checkpoint key as enqueue's model option. */
void
e2e_enqueue_model(struct stack *s, const char *spec, const char *model,
    char *jid, size_t jidlen)
{
	struct rqfn_enqueue_opts o = { .model = model };
	struct rq_cmd		 c;
	redisReply		*r;

	rqfn_enqueue_cmd(&c, s->prefix, spec, &o);
	if ((r = rq_run(s->e->c, &c)) == NULL)
		bench_die("enqueue", s->e->c->errstr);
	rq_cmd_free(&c);
	e2e_enqueue_check(r, jid, jidlen);
	freeReplyObject(r);
}

/* HGET of a job field into out ("" when absent); returns out. */
const char *
e2e_job_field(
    struct stack *s, const char *jid, const char *f, char *out, size_t outlen)
{
	redisReply *r =
	    redisCommand(s->e->c, "HGET %sjob:%s %s", s->prefix, jid, f);

	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		bench_die("HGET", r ? r->str : s->e->c->errstr);
	snprintf(
	    out, outlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return (out);
}

void
e2e_set(struct e2e *e, const char *key, double v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(e->m, key);
	cJSON_AddNumberToObject(e->m, key, v);
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x < y ? -1 : x > y);
}

/* Sorts v[0..n) and returns its p-th percentile (nearest rank below). */
double
e2e_pct(double *v, long long n, int p)
{
	long long i = (n * p) / 100;

	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return (v[i < n ? i : n - 1]);
}
