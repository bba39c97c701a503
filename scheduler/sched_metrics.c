/*
 * GET /metrics (see sched_metrics.h), Prometheus text format 0.0.4.
 *
 * From Redis, at each scrape, pipelined on the commands connection s->rc: a
 * fixed set of calls (HGETALL stats, ZCARD of the three lanes, delayed and
 * leases, ZCOUNT and ZCARD of workers, slot_pools), then one slot_get per
 * pool, at most METRICS_POOLS_MAX: never a call per job. The replies are
 * copied into the scrape and rendered when the last has come, so a family's
 * lines stay together. Redis unreachable: the scrape still answers 200
 * with what this process knows and comfyq_redis_up 0.
 *
 * The job counters are the library's stats hash (stat() in lua/lib.lua and
 * its callers): enqueued, started, retried, requeued, released,
 * succeeded, failed, canceled; failed:<code> per error code. Refunds:
 * finish() writes exactly one refund entry for each failed and canceled
 * job, so refunds emitted = failed + canceled. Webhook deliveries and
 * failures are the stats fields webhooks_delivered and webhooks_failed,
 * progress webhooks' webhook_progress_delivered and
 * webhook_progress_failed (0 until something writes them). Workers up: those whose last heartbeat (the
 * workers zset) is under METRICS_WORKER_LIVE_MS old by this host's clock,
 * the janitor's default worker-dead-ms.
 *
 * Durations (queue wait, run time) are sched_metrics_dur.c's, fed by the
 * SSE reader through metrics_event.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "rq.h"
#include "rqfn.h"
#include "sched.h"
#include "sched_metrics.h"
#include "sched_metrics_dur.h"
#include "util.h"
#include "xmalloc.h"

#define METRICS_ROUTES_MAX     128
#define METRICS_POOLS_MAX      64
#define METRICS_STATS_MAX      256
#define METRICS_WORKER_LIVE_MS 30000

static const char *const metrics_lanes[] = { "high", "normal", "low" };
/* The stats hash's job counters, as comfyq_jobs_total{event}. */
static const char *const metrics_counters[] = { "enqueued", "started",
	"retried", "requeued", "released", "succeeded", "failed", "canceled" };

struct route_stat {
	char		  *route;
	int		   status;
	unsigned long long n;
	struct hist	   h;
};

struct stat_kv {
	char	 *name;
	long long value;
};

struct pool_use {
	char	 *name;
	long long capacity, used, vram_budget_mb, vram_used_mb;
	int	  ok;
};

enum {
	Q_HIGH,
	Q_NORMAL,
	Q_LOW,
	Q_DELAYED,
	Q_ACTIVE,
	Q_WORKERS_UP,
	Q_WORKERS,
	Q_COUNT
};

struct scrape;
struct scrape_call { /* a reply's privdata: which one it is */
	struct scrape *sc;
	int	       i;
};

struct scrape {
	struct metrics		 *m;   /* NULL once metrics_free ran */
	struct evhttp_request	 *req; /* NULL once the client left */
	struct evhttp_connection *conn;
	int			  left;	    /* replies to come */
	int			  redis_ok; /* every reply came */
	long long		  q[Q_COUNT];
	struct stat_kv		  stats[METRICS_STATS_MAX];
	size_t			  nstats;
	struct pool_use		  pools[METRICS_POOLS_MAX];
	size_t			  npools;
	struct scrape_call	  qcall[Q_COUNT];
	struct scrape_call	  pcall[METRICS_POOLS_MAX];
	TAILQ_ENTRY(scrape) link;
};

/*
 * A request from its dispatch to its reply (metrics_track). The table is
 * fixed: a client that leaves before its reply leaves its entry behind, to
 * be taken again once it is older than any request may run, so nothing
 * grows and nothing is freed twice.
 */
#define METRICS_TRACK_MAX 1024

struct track {
	struct evhttp_request *req;
	struct metrics	      *m;
	const char	      *route;
	long long	       t0_us;
};

struct metrics {
	struct sched	  *s;
	struct track	   tracks[METRICS_TRACK_MAX];
	struct route_stat  routes[METRICS_ROUTES_MAX];
	size_t		   nroutes;
	unsigned long long routes_over; /* requests past the table */
	struct durations  *dur;
	long long	   sse_clients, sse_dropped;
	TAILQ_HEAD(, scrape) scrapes;
};

void
metrics_event(struct metrics *m, const char *type, const char *jid,
    long long ms, long long attempt)
{
	durations_event(m->dur, type, jid, ms, attempt);
}

void
metrics_sse(struct metrics *m, long long clients, long long dropped)
{
	m->sse_clients = clients;
	m->sse_dropped = dropped;
}

static void
metrics_track_done(struct evhttp_request *req, void *arg)
{
	struct track *t = arg;

	if (t->req != req)
		return;
	metrics_http(t->m, t->route, evhttp_request_get_response_code(req),
	    (double)(clock_mono_us() - t->t0_us) / 1e6);
	t->req = NULL;
}

void
metrics_track(struct metrics *m, struct evhttp_request *req, const char *route,
    long long max_ms)
{
	long long now = clock_mono_us();
	size_t	  i;

	for (i = 0; i < METRICS_TRACK_MAX; i++) {
		struct track *t = &m->tracks[i];

		if (t->req == NULL || t->t0_us < now - max_ms * 1000) {
			*t = (struct track){ req, m, route, now };
			evhttp_request_set_on_complete_cb(
			    req, metrics_track_done, t);
			return;
		}
	}
	m->routes_over++;
}

void
metrics_http(struct metrics *m, const char *route, int status, double seconds)
{
	struct route_stat *r = NULL;
	size_t		   i;

	for (i = 0; i < m->nroutes; i++)
		if (m->routes[i].status == status &&
		    strcmp(m->routes[i].route, route) == 0) {
			r = &m->routes[i];
			break;
		}
	if (r == NULL) {
		if (m->nroutes == METRICS_ROUTES_MAX) {
			m->routes_over++;
			return;
		}
		r = &m->routes[m->nroutes++];
		r->route = xstrdup(route);
		r->status = status;
	}
	r->n++;
	hist_add(&r->h, seconds);
}

/* Rendering */

static void
put_label(struct evbuffer *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(b, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(b, "\\n", 2);
		else
			evbuffer_add(b, v, 1);
	}
}

static void
put_head(
    struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(
	    b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static long long
scrape_stat(const struct scrape *sc, const char *name)
{
	size_t i;

	for (i = 0; i < sc->nstats; i++)
		if (strcmp(sc->stats[i].name, name) == 0)
			return (sc->stats[i].value);
	return (0);
}

/* The webhook counters: the metric, its help, the stats field. */
static const struct {
	const char *name, *help, *stat;
} wh_counters[] = {
	{ "comfyq_webhook_deliveries_total",
	    "Webhook deliveries that succeeded.", "webhooks_delivered" },
	{ "comfyq_webhook_failures_total", "Webhook deliveries given up.",
	    "webhooks_failed" },
	{ "comfyq_webhook_progress_deliveries_total",
	    "Progress webhook deliveries that succeeded.",
	    "webhook_progress_delivered" },
	{ "comfyq_webhook_progress_failures_total",
	    "Progress webhook deliveries given up.",
	    "webhook_progress_failed" },
};

static void
render_redis(struct evbuffer *b, const struct scrape *sc)
{
	size_t i;

	put_head(b, "comfyq_jobs_total", "counter",
	    "Job transitions since the queue began (the stats hash).");
	for (i = 0; i < sizeof metrics_counters / sizeof metrics_counters[0];
	     i++)
		evbuffer_add_printf(b, "comfyq_jobs_total{event=\"%s\"} %lld\n",
		    metrics_counters[i], scrape_stat(sc, metrics_counters[i]));
	put_head(b, "comfyq_jobs_failed_total", "counter",
	    "Jobs ended failed, by error code.");
	for (i = 0; i < sc->nstats; i++) {
		if (strncmp(sc->stats[i].name, "failed:", 7) != 0)
			continue;
		evbuffer_add(b, "comfyq_jobs_failed_total{code=\"", 31);
		put_label(b, sc->stats[i].name + 7);
		evbuffer_add_printf(b, "\"} %lld\n", sc->stats[i].value);
	}
	put_head(b, "comfyq_refunds_total", "counter",
	    "Refund entries emitted (one per failed or canceled job).");
	evbuffer_add_printf(b, "comfyq_refunds_total %lld\n",
	    scrape_stat(sc, "failed") + scrape_stat(sc, "canceled"));
	put_head(b, "comfyq_jobs", "gauge", "Jobs waiting or running now.");
	evbuffer_add_printf(b, "comfyq_jobs{state=\"queued\"} %lld\n",
	    sc->q[Q_HIGH] + sc->q[Q_NORMAL] + sc->q[Q_LOW]);
	evbuffer_add_printf(
	    b, "comfyq_jobs{state=\"delayed\"} %lld\n", sc->q[Q_DELAYED]);
	evbuffer_add_printf(
	    b, "comfyq_jobs{state=\"active\"} %lld\n", sc->q[Q_ACTIVE]);
	put_head(b, "comfyq_queue_depth", "gauge", "Queued jobs per lane.");
	for (i = 0; i < 3; i++)
		evbuffer_add_printf(b, "comfyq_queue_depth{lane=\"%s\"} %lld\n",
		    metrics_lanes[i], sc->q[Q_HIGH + i]);
	put_head(b, "comfyq_workers", "gauge",
	    "Registered workers, and those with a recent heartbeat (up).");
	evbuffer_add_printf(
	    b, "comfyq_workers{state=\"up\"} %lld\n", sc->q[Q_WORKERS_UP]);
	evbuffer_add_printf(
	    b, "comfyq_workers{state=\"registered\"} %lld\n", sc->q[Q_WORKERS]);
	put_head(b, "comfyq_pool_slots", "gauge",
	    "Slots per pool: capacity and used.");
	for (i = 0; i < sc->npools; i++) {
		if (!sc->pools[i].ok)
			continue;
		evbuffer_add(b, "comfyq_pool_slots{pool=\"", 24);
		put_label(b, sc->pools[i].name);
		evbuffer_add_printf(
		    b, "\",kind=\"capacity\"} %lld\n", sc->pools[i].capacity);
		evbuffer_add(b, "comfyq_pool_slots{pool=\"", 24);
		put_label(b, sc->pools[i].name);
		evbuffer_add_printf(
		    b, "\",kind=\"used\"} %lld\n", sc->pools[i].used);
	}
	put_head(b, "comfyq_pool_vram_mb", "gauge",
	    "VRAM per pool in MB: budget (0: none) and used.");
	for (i = 0; i < sc->npools; i++) {
		if (!sc->pools[i].ok)
			continue;
		evbuffer_add(b, "comfyq_pool_vram_mb{pool=\"", 26);
		put_label(b, sc->pools[i].name);
		evbuffer_add_printf(b, "\",kind=\"budget\"} %lld\n",
		    sc->pools[i].vram_budget_mb);
		evbuffer_add(b, "comfyq_pool_vram_mb{pool=\"", 26);
		put_label(b, sc->pools[i].name);
		evbuffer_add_printf(
		    b, "\",kind=\"used\"} %lld\n", sc->pools[i].vram_used_mb);
	}
	for (i = 0; i < sizeof wh_counters / sizeof wh_counters[0]; i++) {
		put_head(
		    b, wh_counters[i].name, "counter", wh_counters[i].help);
		evbuffer_add_printf(b, "%s %lld\n", wh_counters[i].name,
		    scrape_stat(sc, wh_counters[i].stat));
	}
}

static void
render_local(struct evbuffer *b, const struct metrics *m)
{
	size_t i;

	durations_put(b, m->dur);
	put_head(b, "comfyq_sse_clients", "gauge", "SSE clients attached.");
	evbuffer_add_printf(b, "comfyq_sse_clients %lld\n", m->sse_clients);
	put_head(b, "comfyq_sse_dropped_total", "counter",
	    "SSE clients dropped because they did not read.");
	evbuffer_add_printf(
	    b, "comfyq_sse_dropped_total %lld\n", m->sse_dropped);
	put_head(b, "comfyq_http_requests_total", "counter",
	    "Answered requests by route and status.");
	for (i = 0; i < m->nroutes; i++) {
		evbuffer_add(b, "comfyq_http_requests_total{route=\"", 34);
		put_label(b, m->routes[i].route);
		evbuffer_add_printf(b, "\",status=\"%d\"} %llu\n",
		    m->routes[i].status, m->routes[i].n);
	}
	put_head(b, "comfyq_http_requests_untracked_total", "counter",
	    "Requests not counted by route: past the route table's size, or more at once than the tracking table holds.");
	evbuffer_add_printf(
	    b, "comfyq_http_requests_untracked_total %llu\n", m->routes_over);
	put_head(b, "comfyq_http_request_seconds", "histogram",
	    "Time to answer, by route and status.");
	for (i = 0; i < m->nroutes; i++) {
		struct evbuffer *lb = evbuffer_new();
		char		*l;

		evbuffer_add(lb, "route=\"", 7);
		put_label(lb, m->routes[i].route);
		evbuffer_add_printf(
		    lb, "\",status=\"%d\",%c", m->routes[i].status, '\0');
		l = (char *)evbuffer_pullup(lb, -1);
		hist_put(b, "comfyq_http_request_seconds", l, &m->routes[i].h);
		evbuffer_free(lb);
	}
	put_head(b, "comfyq_scheduler_uptime_seconds", "gauge",
	    "Since this process started.");
	evbuffer_add_printf(b, "comfyq_scheduler_uptime_seconds %lld\n",
	    (clock_wall_ms() - m->s->started_ms) / 1000);
}

/* Scrapes */

static void
scrape_free(struct scrape *sc)
{
	size_t i;

	for (i = 0; i < sc->nstats; i++)
		free(sc->stats[i].name);
	for (i = 0; i < sc->npools; i++)
		free(sc->pools[i].name);
	free(sc);
}

static void
scrape_on_close(struct evhttp_connection *conn, void *arg)
{
	struct scrape *sc = arg;

	(void)conn;
	/* A request detached from its dying connection is ours to free. */
	if (evhttp_request_get_connection(sc->req) == NULL)
		evhttp_request_free(sc->req);
	sc->req = NULL;
	sc->conn = NULL;
}

/* One reply has come (or none will): after the last, answer. */
static void
scrape_step(struct scrape *sc)
{
	struct evbuffer *b;

	if (--sc->left > 0)
		return;
	if (sc->m != NULL)
		TAILQ_REMOVE(&sc->m->scrapes, sc, link);
	if (sc->req != NULL) {
		evhttp_connection_set_closecb(sc->conn, NULL, NULL);
		b = evhttp_request_get_output_buffer(sc->req);
		if (sc->m != NULL) {
			put_head(b, "comfyq_redis_up", "gauge",
			    "1 when this scrape read every Redis fact.");
			evbuffer_add_printf(
			    b, "comfyq_redis_up %d\n", sc->redis_ok);
			if (sc->redis_ok)
				render_redis(b, sc);
			render_local(b, sc->m);
		}
		evhttp_add_header(evhttp_request_get_output_headers(sc->req),
		    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
		evhttp_send_reply(
		    sc->req, sc->m != NULL ? 200 : 503, NULL, NULL);
	}
	scrape_free(sc);
}

/* Sends one call for sc; a call not sent counts as a failed reply. */
static void
scrape_send(struct scrape *sc, redisCallbackFn *fn, struct scrape_call *call,
    struct rq_cmd *c)
{
	sc->left++;
	if (sc->m == NULL || rq_async_call(sc->m->s->rc, fn, call, c) == -1) {
		sc->redis_ok = 0;
		sc->left--;
	}
	rq_cmd_free(c);
}

static void
scrape_on_int(redisAsyncContext *ac, void *r, void *priv)
{
	struct scrape_call *call = priv;
	redisReply	   *reply = r;

	(void)ac;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
		call->sc->q[call->i] = reply->integer;
	else
		call->sc->redis_ok = 0;
	scrape_step(call->sc);
}

static void
scrape_on_stats(redisAsyncContext *ac, void *r, void *priv)
{
	struct scrape_call *call = priv;
	struct scrape	   *sc = call->sc;
	redisReply	   *reply = r;
	long long	    v;
	size_t		    i;

	(void)ac;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		sc->redis_ok = 0;
		scrape_step(sc);
		return;
	}
	for (i = 0; i + 1 < reply->elements && sc->nstats < METRICS_STATS_MAX;
	     i += 2) {
		if (reply->element[i]->type != REDIS_REPLY_STRING ||
		    reply->element[i + 1]->type != REDIS_REPLY_STRING ||
		    parse_ll(reply->element[i + 1]->str, 0, 1LL << 62, &v) ==
			-1)
			continue;
		sc->stats[sc->nstats].name = xstrdup(reply->element[i]->str);
		sc->stats[sc->nstats++].value = v;
	}
	scrape_step(sc);
}

static void
scrape_on_slot(redisAsyncContext *ac, void *r, void *priv)
{
	struct scrape_call  *call = priv;
	struct pool_use	    *p = &call->sc->pools[call->i];
	struct rqfn_slot_get g;
	char		     err[256];

	(void)ac;
	if (r != NULL && rqfn_slot_get_reply(r, &g, err, sizeof err) == 0) {
		p->capacity = g.capacity;
		p->used = g.used;
		p->vram_budget_mb = g.vram_budget_mb;
		p->vram_used_mb = g.vram_used_mb;
		p->ok = 1;
	} else if (r != NULL)
		log_warnx("metrics: slot_get %s: %s", p->name, err);
	scrape_step(call->sc);
}

static void
scrape_on_pools(redisAsyncContext *ac, void *r, void *priv)
{
	struct scrape_call    *call = priv;
	struct scrape	      *sc = call->sc;
	struct rqfn_slot_pools sp;
	struct rq_cmd	       c;
	char		       err[256];
	size_t		       i;

	(void)ac;
	if (r == NULL || sc->m == NULL ||
	    rqfn_slot_pools_reply(r, &sp, err, sizeof err) == -1) {
		if (r != NULL && sc->m != NULL)
			log_warnx("metrics: slot_pools: %s", err);
		sc->redis_ok = 0;
		scrape_step(sc);
		return;
	}
	for (i = 0; i < sp.npools && i < METRICS_POOLS_MAX; i++) {
		sc->pools[i].name = xstrdup(sp.pools[i]->str);
		sc->pcall[i].sc = sc;
		sc->pcall[i].i = (int)i;
		sc->npools++;
		rqfn_slot_get_cmd(&c, sc->m->s->prefix, sc->pools[i].name);
		scrape_send(sc, scrape_on_slot, &sc->pcall[i], &c);
	}
	scrape_step(sc);
}

void
metrics_serve(struct metrics *m, struct evhttp_request *req)
{
	struct scrape *sc = xcalloc(1, sizeof *sc);
	struct rq_cmd  c;
	const char    *P = m->s->prefix;
	int	       i;

	sc->m = m;
	sc->req = req;
	sc->conn = evhttp_request_get_connection(req);
	sc->redis_ok = 1;
	sc->left = 1; /* this function's own, let go at the end */
	for (i = 0; i < Q_COUNT; i++) {
		sc->qcall[i].sc = sc;
		sc->qcall[i].i = i;
	}
	TAILQ_INSERT_TAIL(&m->scrapes, sc, link);
	evhttp_connection_set_closecb(sc->conn, scrape_on_close, sc);
	rq_cmd_init(&c, "HGETALL");
	rq_cmd_addf(&c, "%sstats", P);
	scrape_send(sc, scrape_on_stats, &sc->qcall[0], &c);
	for (i = 0; i < 3; i++) {
		rq_cmd_init(&c, "ZCARD");
		rq_cmd_addf(&c, "%sready:%s", P, metrics_lanes[i]);
		scrape_send(sc, scrape_on_int, &sc->qcall[Q_HIGH + i], &c);
	}
	rq_cmd_init(&c, "ZCARD");
	rq_cmd_addf(&c, "%sdelayed", P);
	scrape_send(sc, scrape_on_int, &sc->qcall[Q_DELAYED], &c);
	rq_cmd_init(&c, "ZCARD");
	rq_cmd_addf(&c, "%sleases", P);
	scrape_send(sc, scrape_on_int, &sc->qcall[Q_ACTIVE], &c);
	rq_cmd_init(&c, "ZCOUNT");
	rq_cmd_addf(&c, "%sworkers", P);
	rq_cmd_addf(&c, "%lld", clock_wall_ms() - METRICS_WORKER_LIVE_MS);
	rq_cmd_add(&c, "+inf");
	scrape_send(sc, scrape_on_int, &sc->qcall[Q_WORKERS_UP], &c);
	rq_cmd_init(&c, "ZCARD");
	rq_cmd_addf(&c, "%sworkers", P);
	scrape_send(sc, scrape_on_int, &sc->qcall[Q_WORKERS], &c);
	rqfn_slot_pools_cmd(&c, P);
	scrape_send(sc, scrape_on_pools, &sc->qcall[0], &c);
	scrape_step(sc);
}

struct metrics *
metrics_new(struct sched *s, char *err, size_t errlen)
{
	struct metrics *m = xcalloc(1, sizeof *m);

	(void)err;
	(void)errlen;
	m->s = s;
	m->dur = durations_new();
	TAILQ_INIT(&m->scrapes);
	return (m);
}

void
metrics_free(struct metrics *m)
{
	struct scrape *sc;
	size_t	       i;

	if (m == NULL)
		return;
	/* Scrapes waiting on s->rc answer 503 when their replies come. */
	while ((sc = TAILQ_FIRST(&m->scrapes)) != NULL) {
		TAILQ_REMOVE(&m->scrapes, sc, link);
		sc->m = NULL;
	}
	durations_free(m->dur);
	for (i = 0; i < m->nroutes; i++)
		free(m->routes[i].route);
	free(m);
}
