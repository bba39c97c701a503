/*
 * The Redis duties of a tick (see janitor_sweep.h). Each duty is one row of
 * a table: the function it calls, how its call is built from the settings,
 * and what of its decoded reply (shared/rqfn.h) goes into struct
 * sweep_result; a reply of another shape is logged and adds nothing. All the
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "janitor_config.h"
#include "janitor_inuse.h"
#include "janitor_sweep.h"
#include "log.h"
#include "rq.h"
#include "rq_route.h"
#include "rqfn.h"
#include "util.h"
#include "xmalloc.h"

#define SWEEP_BACKOFF_BASE_MS 500
#define SWEEP_BACKOFF_MAX_MS  10000
#define SWEEP_INUSE_LIMIT     100000

struct sweep {
	const struct janitor_cfg *cfg;
	char			  prefix[RQ_PREFIX_MAX];
	redisContext		 *ctx;
	struct backoff		  backoff;
	long long		  retry_at; /* monotonic ms */
	int			  down;	    /* the outage was logged */
};

#define R(f) offsetof(struct sweep_result, f)

/*
 * A duty: the function it calls, how its call is built from the settings,
 * and how its decoded reply is added to struct sweep_result.
 */
struct sweep_duty {
	const char *fn;
	void (*cmd)(const struct janitor_cfg *, const char *, struct rq_cmd *);
	int (*collect)(
	    const redisReply *, struct sweep_result *, char *, size_t);
};

static void
sweep_reap_cmd(const struct janitor_cfg *g, const char *p, struct rq_cmd *c)
{
	struct rqfn_reap_args a = { g->max_reclaims, g->crash_losses, g->batch,
		janitor_stall_ms(g), g->grace_ms };

	rqfn_reap_cmd(c, p, &a);
}

static int
sweep_reap_collect(
    const redisReply *r, struct sweep_result *res, char *err, size_t errlen)
{
	struct rqfn_reap v;

	if (rqfn_reap_reply(r, &v, err, errlen) == -1)
		return (-1);
	res->requeued += v.requeued;
	res->lost += v.lost;
	res->promoted += v.promoted;
	res->slots_freed += v.slots_freed;
	res->holding += v.holding;
	res->buried += v.buried;
	return (0);
}

static void
sweep_trim_cmd(const struct janitor_cfg *g, const char *p, struct rq_cmd *c)
{
	struct rqfn_trim_args a = { g->events_max_len,
		g->events_max_age_s * 1000, g->refunds_max_age_s * 1000,
		g->trim_batch };

	rqfn_trim_cmd(c, p, &a);
}

static int
sweep_trim_collect(
    const redisReply *r, struct sweep_result *res, char *err, size_t errlen)
{
	struct rqfn_trim v;

	if (rqfn_trim_reply(r, &v, err, errlen) == -1)
		return (-1);
	res->events_trimmed += v.events_trimmed;
	res->refunds_trimmed += v.refunds_trimmed;
	return (0);
}

static void
sweep_expire_cmd(const struct janitor_cfg *g, const char *p, struct rq_cmd *c)
{
	rqfn_expire_cmd(c, p, g->retention_s * 1000, g->batch);
}

static int
sweep_expire_collect(
    const redisReply *r, struct sweep_result *res, char *err, size_t errlen)
{
	long long n;

	if (rqfn_expire_reply(r, &n, err, errlen) == -1)
		return (-1);
	res->expired += n;
	return (0);
}

static void
sweep_workers_cmd(const struct janitor_cfg *g, const char *p, struct rq_cmd *c)
{
	long long forget = g->worker_forget_s * 1000;

	rqfn_workers_gone_cmd(c, p, g->worker_dead_ms,
	    forget > g->worker_dead_ms ? forget : g->worker_dead_ms, g->batch);
}

/* workers_gone names the workers it marked: each is logged. */
static int
sweep_workers_collect(
    const redisReply *r, struct sweep_result *res, char *err, size_t errlen)
{
	struct rqfn_workers_gone v;
	size_t			 i;

	if (rqfn_workers_gone_reply(r, &v, err, errlen) == -1)
		return (-1);
	res->workers_gone += v.gone;
	res->workers_forgotten += v.forgotten;
	for (i = 0; i < v.nwids; i++)
		log_notice("worker=%s gone: no heartbeat", v.wids[i]->str);
	return (0);
}

static void
sweep_status_cmd(const struct janitor_cfg *g, const char *p, struct rq_cmd *c)
{
	rqfn_queue_status_cmd(c, p, g->status_top, g->status_interval_ms);
}

static int
sweep_status_collect(
    const redisReply *r, struct sweep_result *res, char *err, size_t errlen)
{
	struct rqfn_queue_status v;

	if (rqfn_queue_status_reply(r, &v, err, errlen) == -1)
		return (-1);
	res->status_events += v.events;
	res->buried += v.buried;
	return (0);
}

static const struct sweep_duty sweep_duties[] = {
	{ "reap", sweep_reap_cmd, sweep_reap_collect },
	{ "trim", sweep_trim_cmd, sweep_trim_collect },
	{ "expire", sweep_expire_cmd, sweep_expire_collect },
	{ "workers_gone", sweep_workers_cmd, sweep_workers_collect },
	{ "queue_status", sweep_status_cmd, sweep_status_collect },
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
	s->ctx = rq_connect(s->cfg->redis_url, s->prefix,
	    (int)s->cfg->redis_timeout_ms, 1, err, sizeof err);
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
 * Runs c (and frees it). Returns the reply for the caller to free, or NULL
 * when the connection was lost or is on the wrong server (a replica, a
 * cluster node that no longer holds the queue: rq_route.h): dropped, so
 * the next tick connects to the right one; *lost set.
 */
static redisReply *
sweep_call(struct sweep *s, struct rq_cmd *c, const char *what, int *lost)
{
	redisReply *r;

	r = rq_run(s->ctx, c);
	rq_cmd_free(c);
	if (r != NULL && rq_route_of(r) != RQ_ROUTE_NONE) {
		log_warnx("redis: %s: %s; reconnecting", what, r->str);
		freeReplyObject(r);
		redisFree(s->ctx);
		s->ctx = NULL;
		*lost = 1;
		return (NULL);
	}
	if (r == NULL) {
		sweep_drop(s, what);
		*lost = 1;
	}
	return (r);
}

/*
 * Logs a reply that could not be decoded. A function missing from the
 * loaded library (another program loaded an older one) drops the
 * connection, so the next tick loads ours again (*lost set).
 */
static void
sweep_failed(struct sweep *s, const char *what, const char *err, int *lost)
{
	log_warnx("%s: %s", what, err);
	if (strstr(err, "Function not found") != NULL) {
		redisFree(s->ctx);
		s->ctx = NULL;
		*lost = 1;
	}
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
	char			 err[1024];
	size_t			 i;
	int			 lost = 0;

	if (sweep_conn(s) == NULL)
		return (-1);
	for (i = 0; i < sizeof sweep_duties / sizeof sweep_duties[0]; i++) {
		d = &sweep_duties[i];
		d->cmd(s->cfg, s->prefix, &c);
		if ((r = sweep_call(s, &c, d->fn, &lost)) != NULL) {
			if (d->collect(r, res, err, sizeof err) == -1)
				sweep_failed(s, d->fn, err, &lost);
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
	char	      err[1024];
	int	      lost = 0, rc = -1;

	if (sweep_conn(s) == NULL)
		return (-1);
	rqfn_active_files_cmd(
	    &c, s->prefix, s->cfg->clean_host, SWEEP_INUSE_LIMIT);
	if ((r = sweep_call(s, &c, "active_files", &lost)) == NULL)
		return (-1);
	if (r->type == REDIS_REPLY_ERROR)
		sweep_failed(s, "active_files", r->str, &lost);
	else if ((rc = inuse_load(u, r, err, sizeof err)) == -1)
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
