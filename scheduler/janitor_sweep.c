/*
 * The Redis duties of a tick (see janitor_sweep.h). Each duty is one row of
 * a table: the function it calls, the options it passes from the settings,
 * and where the integers of its reply go in struct sweep_result. All the
 * logic lives in the functions library (lua/reap.lua, lua/janitor.lua),
 * where each call is atomic; here is only the plumbing, so two janitors can
 * never disagree about a job.
 *
 * The connection is blocking with a timeout (redis-timeout-ms): a tick
 * waits for Redis at most that long per call, and a call that fails drops
 * the connection; the next tick reconnects (and reloads the library), with
 * backoff while Redis stays away. A function missing from the loaded
 * library (a program built from an older tree replaced it) also drops the
 * connection, so the next tick loads the library this janitor was built
 * with.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "janitor.h"
#include "janitor_inuse.h"
#include "janitor_sweep.h"
#include "log.h"
#include "rq.h"
#include "util.h"
#include "xmalloc.h"

#define SWEEP_BACKOFF_BASE_MS 500
#define SWEEP_BACKOFF_MAX_MS  10000
#define SWEEP_INUSE_LIMIT     "100000"

struct sweep {
	const struct janitor_cfg *cfg;
	char			  prefix[RQ_PREFIX_MAX];
	redisContext		 *ctx;
	struct backoff		  backoff;
	long long		  retry_at; /* monotonic ms */
	int			  down;	    /* the outage was logged */
};

#define R(f)	 offsetof(struct sweep_result, f)
#define R_SKIP	 SIZE_MAX
#define OUTS_MAX 6

struct sweep_duty {
	const char *fn;
	void (*args)(const struct janitor_cfg *, struct rq_cmd *);
	size_t out[OUTS_MAX]; /* where reply element i goes */
	size_t nout;
	void (*extra)(const redisReply *, size_t);
};

static void
sweep_opt(struct rq_cmd *c, const char *name, long long v)
{
	rq_cmd_add(c, name);
	rq_cmd_addf(c, "%lld", v);
}

static void
sweep_reap_args(const struct janitor_cfg *g, struct rq_cmd *c)
{
	sweep_opt(c, "max_reclaims", g->max_reclaims);
	sweep_opt(c, "crash_losses", g->crash_losses);
	sweep_opt(c, "batch", g->batch);
	sweep_opt(c, "stall_ms", janitor_stall_ms(g));
	sweep_opt(c, "grace_ms", g->grace_ms);
}

static void
sweep_trim_args(const struct janitor_cfg *g, struct rq_cmd *c)
{
	sweep_opt(c, "events_maxlen", g->events_max_len);
	sweep_opt(c, "events_max_age_ms", g->events_max_age_s * 1000);
	sweep_opt(c, "refunds_max_age_ms", g->refunds_max_age_s * 1000);
	sweep_opt(c, "batch", g->trim_batch);
}

static void
sweep_expire_args(const struct janitor_cfg *g, struct rq_cmd *c)
{
	sweep_opt(c, "retention_ms", g->retention_s * 1000);
	sweep_opt(c, "batch", g->batch);
}

static void
sweep_workers_args(const struct janitor_cfg *g, struct rq_cmd *c)
{
	long long forget = g->worker_forget_s * 1000;

	sweep_opt(c, "dead_ms", g->worker_dead_ms);
	sweep_opt(c, "forget_ms",
	    forget > g->worker_dead_ms ? forget : g->worker_dead_ms);
	sweep_opt(c, "batch", g->batch);
}

static void
sweep_status_args(const struct janitor_cfg *g, struct rq_cmd *c)
{
	sweep_opt(c, "top", g->status_top);
	sweep_opt(c, "interval_ms", g->status_interval_ms);
}

/* workers_gone names the workers it marked after its two counts. */
static void
sweep_workers_log(const redisReply *r, size_t from)
{
	size_t i;

	for (i = from; i < r->elements; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING)
			log_notice(
			    "worker=%s gone: no heartbeat", r->element[i]->str);
}

static const struct sweep_duty sweep_duties[] = {
	{ "reap", sweep_reap_args,
	    { R(requeued), R(lost), R(promoted), R(slots_freed), R(holding),
		R(buried) },
	    6, NULL },
	{ "trim", sweep_trim_args,
	    { R(events_trimmed), R(refunds_trimmed), R_SKIP }, 3, NULL },
	{ "expire", sweep_expire_args, { R(expired) }, 1, NULL },
	{ "workers_gone", sweep_workers_args,
	    { R(workers_gone), R(workers_forgotten) }, 2, sweep_workers_log },
	{ "queue_status", sweep_status_args,
	    { R(status_events), R_SKIP, R_SKIP, R(buried) }, 4, NULL },
};

struct sweep *
sweep_new(const struct janitor_cfg *cfg, const char *prefix)
{
	struct sweep *s = xcalloc(1, sizeof *s);

	s->cfg = cfg;
	snprintf(s->prefix, sizeof s->prefix, "%s", prefix);
	backoff_init(&s->backoff, SWEEP_BACKOFF_BASE_MS, SWEEP_BACKOFF_MAX_MS);
	return (s);
}

void
sweep_free(struct sweep *s)
{
	if (s == NULL)
		return;
	if (s->ctx != NULL)
		redisFree(s->ctx);
	free(s);
}

/* The connection, opened (with the library loaded) when there is none. */
static redisContext *
sweep_conn(struct sweep *s)
{
	char	  err[512];
	long long now = clock_mono_ms();

	if (s->ctx != NULL)
		return (s->ctx);
	if (now < s->retry_at)
		return (NULL);
	s->ctx = rq_connect(s->cfg->redis_url, (int)s->cfg->redis_timeout_ms, 1,
	    err, sizeof err);
	if (s->ctx == NULL) {
		if (!s->down)
			log_warnx("redis: %s; retrying", err);
		s->down = 1;
		s->retry_at = now + backoff_next(&s->backoff);
		return (NULL);
	}
	if (s->down)
		log_notice("redis: connected again");
	s->down = 0;
	backoff_reset(&s->backoff);
	return (s->ctx);
}

static void
sweep_drop(struct sweep *s, const char *what)
{
	log_warnx("redis: %s: %s; reconnecting", what, s->ctx->errstr);
	redisFree(s->ctx);
	s->ctx = NULL;
	s->down = 1;
}

/*
 * Runs c (and frees it). Returns an array reply for the caller to free, or
 * NULL: an error reply (logged) or a lost connection (dropped; *lost set).
 */
static redisReply *
sweep_call(struct sweep *s, struct rq_cmd *c, const char *what, int *lost)
{
	redisReply *r;

	r = rq_run(s->ctx, c);
	rq_cmd_free(c);
	if (r == NULL) {
		sweep_drop(s, what);
		*lost = 1;
		return (NULL);
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		log_warnx("%s: %s", what,
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		/* Another program loaded an older library: load ours again. */
		if (r->type == REDIS_REPLY_ERROR &&
		    strstr(r->str, "Function not found") != NULL) {
			redisFree(s->ctx);
			s->ctx = NULL;
			*lost = 1;
		}
		freeReplyObject(r);
		return (NULL);
	}
	return (r);
}

/* Adds the integers of r to res as the duty's table row says. */
static void
sweep_collect(
    const struct sweep_duty *d, const redisReply *r, struct sweep_result *res)
{
	size_t i;

	for (i = 0; i < d->nout && i < r->elements; i++) {
		if (d->out[i] == R_SKIP ||
		    r->element[i]->type != REDIS_REPLY_INTEGER)
			continue;
		*(long long *)((char *)res + d->out[i]) +=
		    r->element[i]->integer;
	}
	if (d->extra != NULL)
		d->extra(r, d->nout);
}

/*
 * Runs every Redis duty once. Returns 0, or -1 when Redis cannot be
 * reached (the rest of the tick waits for the next one).
 */
int
sweep_run(struct sweep *s, struct sweep_result *res)
{
	const struct sweep_duty *d;
	struct rq_cmd		 c;
	redisReply		*r;
	size_t			 i;
	int			 lost = 0;

	if (sweep_conn(s) == NULL)
		return (-1);
	for (i = 0; i < sizeof sweep_duties / sizeof sweep_duties[0]; i++) {
		d = &sweep_duties[i];
		rq_cmd_fcall(&c, d->fn, s->prefix);
		d->args(s->cfg, &c);
		if ((r = sweep_call(s, &c, d->fn, &lost)) != NULL) {
			sweep_collect(d, r, res);
			freeReplyObject(r);
		}
		if (lost)
			return (-1);
	}
	return (0);
}

/* Loads the files of the active jobs into u. Returns 0, or -1 (logged). */
int
sweep_inuse(struct sweep *s, struct inuse *u)
{
	struct rq_cmd c;
	redisReply   *r;
	char	      err[256];
	int	      lost = 0, rc;

	if (sweep_conn(s) == NULL)
		return (-1);
	rq_cmd_fcall(&c, "active_files", s->prefix);
	rq_cmd_add(&c, s->cfg->clean_host);
	rq_cmd_add(&c, SWEEP_INUSE_LIMIT);
	if ((r = sweep_call(s, &c, "active_files", &lost)) == NULL)
		return (-1);
	if ((rc = inuse_load(u, r, err, sizeof err)) == -1)
		log_warnx("clean: %s; no files deleted", err);
	freeReplyObject(r);
	return (rc);
}

/* Adds the cleanup's counters to the stats hash (janitor:freed_*). */
void
sweep_count_clean(struct sweep *s, const struct sweep_result *res)
{
	static const struct {
		const char *name;
		size_t	    off;
	} counters[] = {
		{ "janitor:freed_files", R(freed_files) },
		{ "janitor:freed_bytes", R(freed_bytes) },
		{ "janitor:freed_dirs", R(freed_dirs) },
	};
	redisReply *r;
	long long   v;
	size_t	    i;
	int	    sent = 0;

	if (s->ctx == NULL)
		return;
	for (i = 0; i < sizeof counters / sizeof counters[0]; i++) {
		v = *(const long long *)((const char *)res + counters[i].off);
		if (v == 0)
			continue;
		redisAppendCommand(s->ctx, "HINCRBY %sstats %s %lld", s->prefix,
		    counters[i].name, v);
		sent++;
	}
	while (sent-- > 0) {
		if (redisGetReply(s->ctx, (void **)&r) != REDIS_OK) {
			sweep_drop(s, "stats");
			return;
		}
		freeReplyObject(r);
	}
}
