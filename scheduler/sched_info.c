/*
 * The read-only routes: /healthz (the process answers), /readyz (Redis
 * answers and holds the functions library at our version), the OpenAPI
 * document, the templates of workflows-dir, and the views `comfyq stats
 * --json`, `comfyq slots --json` and `comfyq workers --json` give, in the
 * same shapes. The CLI reads them with blocking calls (cli/info.c); here
 * they are pipelined on the non-blocking connection, so the readers are
 * written twice, once per connection kind, and kept in step by the tests
 * of both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "rq.h"
#include "rqfn.h"
#include "sched.h"
#include "sched_http.h"
#include "sched_routes.h"
#include "template.h"
#include "util.h"
#include "xmalloc.h"

static const char *const lanes[] = { "high", "normal", "low" };

/* A view read with a pipeline of calls, answered after the last reply. */
struct info {
	struct http_wait w;
	struct sched	*s;
	cJSON		*out;
	int		 pending, failed;
	size_t		 next; /* replies seen, for the ones read in order */
};

static struct info *
info_new(struct sched *s, struct evhttp_request *req, cJSON *out)
{
	struct info *in = xcalloc(1, sizeof *in);

	in->s = s;
	in->out = out;
	http_wait_start(&in->w, req);
	return (in);
}

static void
info_send(struct info *in, redisCallbackFn *fn, struct rq_cmd *c)
{
	if (rq_async_call(in->s->rc, fn, in, c) == 0)
		in->pending++;
	else
		in->failed = 1;
	rq_cmd_free(c);
}

/* After a reply (or the last send): answer once nothing is pending. */
static void
info_step(struct info *in)
{
	struct evhttp_request *req;

	if (in->pending > 0)
		return;
	if ((req = http_wait_end(&in->w)) != NULL) {
		if (in->failed)
			http_reply_redis_down(req);
		else
			http_reply_json(req, 200, in->out);
	}
	cJSON_Delete(in->out);
	free(in);
}

/* A reply: NULL (disconnect) or an error reply fails the view. */
static redisReply *
info_reply(struct info *in, void *r, int type)
{
	redisReply *reply = r;

	in->pending--;
	if (reply == NULL || reply->type != type || in->w.req == NULL) {
		in->failed = 1;
		return (NULL);
	}
	return (reply);
}

SCHED_ROUTE(info_healthz)
{
	cJSON *o = cJSON_CreateObject();

	(void)args;
	(void)tok;
	cJSON_AddStringToObject(o, "status", "ok");
	cJSON_AddNumberToObject(
	    o, "uptime_ms", (double)(clock_wall_ms() - s->started_ms));
	http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
info_readyz_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct info *in = priv;
	const char  *v;
	char	     err[512], msg[640];

	(void)ac;
	in->pending--;
	if (in->w.req == NULL || r == NULL) {
		in->failed = 1;
		info_step(in);
		return;
	}
	if (rqfn_version_reply(r, &v, err, sizeof err) == -1 ||
	    strcmp(v, RQ_LIB_VERSION) != 0) {
		if (rqfn_version_reply(r, &v, err, sizeof err) == 0)
			snprintf(err, sizeof err,
			    "Redis holds functions library version %s, not %s",
			    v, RQ_LIB_VERSION);
		snprintf(msg, sizeof msg, "not ready: %s", err);
		http_reply_error(http_wait_end(&in->w), 503, "not_ready", msg);
		info_step(in);
		return;
	}
	cJSON_AddStringToObject(in->out, "status", "ready");
	cJSON_AddStringToObject(in->out, "library", v);
	info_step(in);
}

SCHED_ROUTE(info_readyz)
{
	struct info  *in;
	struct rq_cmd c;

	(void)args;
	(void)tok;
	if (!rq_async_up(s->rc)) {
		http_reply_error(req, 503, "not_ready",
		    "not ready: the queue's Redis is not reachable");
		return;
	}
	in = info_new(s, req, cJSON_CreateObject());
	rqfn_version_cmd(&c);
	info_send(in, info_readyz_cb, &c);
	info_step(in);
}

SCHED_ROUTE(info_openapi)
{
	struct evbuffer *b = evbuffer_new();

	(void)s;
	(void)args;
	(void)tok;
	evbuffer_add_reference(
	    b, sched_openapi_json, sched_openapi_json_len, NULL, NULL);
	http_reply_bytes(req, 200, "application/json", b);
	evbuffer_free(b);
}

SCHED_ROUTE(info_workflows)
{
	const struct wf_template *t;
	cJSON			 *a = cJSON_CreateArray(), *o, *names;
	char			  url[96];
	size_t			  i, k;

	(void)args;
	(void)tok;
	for (i = 0; i < wf_count(s->workflows); i++) {
		t = wf_at(s->workflows, i);
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", wf_name(t));
		cJSON_AddStringToObject(o, "description", wf_description(t));
		names = cJSON_AddArrayToObject(o, "params");
		for (k = 0; k < wf_nparams(t); k++)
			cJSON_AddItemToArray(
			    names, cJSON_CreateString(wf_param_at(t, k)->name));
		snprintf(url, sizeof url, "/v1/workflows/%s", wf_name(t));
		cJSON_AddStringToObject(o, "url", url);
		cJSON_AddItemToArray(a, o);
	}
	http_reply_json(req, 200, a);
	cJSON_Delete(a);
}

/* One template: its params with type, bounds and defaults, its output. */
SCHED_ROUTE(info_workflow)
{
	const struct wf_template *t = wf_find(s->workflows, args[0]);
	const cJSON		 *j;
	cJSON			 *o;
	static const char *const  keep[] = { "params", "output", "loras",
		 "controlnets" };
	size_t			  i;

	(void)tok;
	if (t == NULL) {
		http_reply_error(req, 404, "not_found", "no such template");
		return;
	}
	j = wf_json(t);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", wf_name(t));
	cJSON_AddStringToObject(o, "description", wf_description(t));
	for (i = 0; i < sizeof keep / sizeof keep[0]; i++)
		if (cJSON_GetObjectItemCaseSensitive(j, keep[i]) != NULL)
			cJSON_AddItemToObject(o, keep[i],
			    cJSON_Duplicate(
				cJSON_GetObjectItemCaseSensitive(j, keep[i]),
				1));
	http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

/* stats: ZCARD of the lanes, delayed, leases, done, then HGETALL stats. */
static void
info_stats_cb(redisAsyncContext *ac, void *r, void *priv)
{
	static const char *const keys[] = { "delayed", "active", "finished" };
	struct info		*in = priv;
	redisReply		*reply;
	size_t			 i = in->next++, k;
	cJSON			*counters;

	(void)ac;
	if (i < 6) {
		if ((reply = info_reply(in, r, REDIS_REPLY_INTEGER)) != NULL)
			cJSON_AddNumberToObject(i < 3
				? cJSON_GetObjectItemCaseSensitive(
				      in->out, "ready")
				: in->out,
			    i < 3 ? lanes[i] : keys[i - 3],
			    (double)reply->integer);
	} else if ((reply = info_reply(in, r, REDIS_REPLY_ARRAY)) != NULL) {
		counters = cJSON_AddObjectToObject(in->out, "counters");
		for (k = 0; k + 1 < reply->elements; k += 2)
			cJSON_AddNumberToObject(counters,
			    reply->element[k]->str,
			    atof(reply->element[k + 1]->str));
	}
	info_step(in);
}

SCHED_ROUTE(info_stats)
{
	static const char *const keys[] = { "ready:high", "ready:normal",
		"ready:low", "delayed", "leases", "done" };
	struct info		*in;
	struct rq_cmd		 c;
	size_t			 i;

	(void)args;
	(void)tok;
	in = info_new(s, req, cJSON_CreateObject());
	cJSON_AddStringToObject(in->out, "queue", s->cfg->queue);
	cJSON_AddObjectToObject(in->out, "ready");
	for (i = 0; i < 6; i++) {
		rq_cmd_init(&c, "ZCARD");
		rq_cmd_addf(&c, "%s%s", s->prefix, keys[i]);
		info_send(in, info_stats_cb, &c);
	}
	rq_cmd_init(&c, "HGETALL");
	rq_cmd_addf(&c, "%sstats", s->prefix);
	info_send(in, info_stats_cb, &c);
	info_step(in);
}

/* Whether a worker record's field holds a number (as cli/info.c). */
static int
info_worker_numeric(const char *k)
{
	size_t n = strlen(k);

	return (strcmp(k, "pid") == 0 || strcmp(k, "jobs") == 0 ||
	    (n > 3 &&
		(strcmp(k + n - 3, "_ms") == 0 ||
		    strcmp(k + n - 3, "_mb") == 0)));
}

/* One worker record, into the array element it was given at ZRANGE. */
static void
info_worker_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct info *in = priv;
	redisReply  *h;
	cJSON	    *wo = cJSON_GetArrayItem(in->out, (int)in->next++);
	long long    n;
	size_t	     k;
	const char  *key, *v;

	(void)ac;
	if ((h = info_reply(in, r, REDIS_REPLY_ARRAY)) != NULL && wo != NULL) {
		/* The record expires when heartbeats stop: then it is gone. */
		v = h->elements == 0 ? "gone" : sched_field(h, "state");
		cJSON_AddStringToObject(wo, "state", v != NULL ? v : "?");
		for (k = 0; k + 1 < h->elements; k += 2) {
			key = h->element[k]->str;
			v = h->element[k + 1]->str;
			if (cJSON_GetObjectItemCaseSensitive(wo, key) != NULL)
				continue;
			if (info_worker_numeric(key) &&
			    parse_ll(v, -(1LL << 53), 1LL << 53, &n) == 0)
				cJSON_AddNumberToObject(wo, key, (double)n);
			else
				cJSON_AddStringToObject(wo, key, v);
		}
	}
	info_step(in);
}

static void
info_workers_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct info  *in = priv;
	redisReply   *ws;
	struct rq_cmd c;
	cJSON	     *wo;
	size_t	      i;

	(void)ac;
	if ((ws = info_reply(in, r, REDIS_REPLY_ARRAY)) != NULL) {
		for (i = 0; i + 1 < ws->elements; i += 2) {
			wo = cJSON_CreateObject();
			cJSON_AddStringToObject(
			    wo, "worker", ws->element[i]->str);
			cJSON_AddNumberToObject(
			    wo, "last_beat_ms", atof(ws->element[i + 1]->str));
			cJSON_AddItemToArray(in->out, wo);
			rq_cmd_init(&c, "HGETALL");
			rq_cmd_addf(&c, "%sworker:%s", in->s->prefix,
			    ws->element[i]->str);
			info_send(in, info_worker_cb, &c);
		}
	}
	info_step(in);
}

SCHED_ROUTE(info_workers)
{
	struct info  *in;
	struct rq_cmd c;

	(void)args;
	(void)tok;
	in = info_new(s, req, cJSON_CreateArray());
	rq_cmd_init(&c, "ZRANGE");
	rq_cmd_addf(&c, "%sworkers", s->prefix);
	rq_cmd_add(&c, "0");
	rq_cmd_add(&c, "-1");
	rq_cmd_add(&c, "WITHSCORES");
	info_send(in, info_workers_cb, &c);
	info_step(in);
}

/* One pool's slot_get; a pool gone meanwhile (NOPOOL) is left out. */
static void
info_pool_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct info	    *in = priv;
	struct rqfn_slot_get sg;
	struct rqfn_holder   h;
	cJSON		    *po = cJSON_GetArrayItem(in->out, (int)in->next++);
	cJSON		    *holders, *ho;
	long long	     now = clock_wall_ms();
	char		     err[256];
	size_t		     k;

	(void)ac;
	in->pending--;
	if (r == NULL || in->w.req == NULL)
		in->failed = 1;
	else if (po != NULL &&
	    rqfn_slot_get_reply(r, &sg, err, sizeof err) == 0) {
		cJSON_AddNumberToObject(po, "capacity", (double)sg.capacity);
		cJSON_AddNumberToObject(po, "used", (double)sg.used);
		cJSON_AddNumberToObject(
		    po, "vram_budget_mb", (double)sg.vram_budget_mb);
		cJSON_AddNumberToObject(
		    po, "vram_used_mb", (double)sg.vram_used_mb);
		holders = cJSON_AddArrayToObject(po, "holders");
		for (k = 0; k < sg.nholders; k++) {
			rqfn_slot_holder(&sg, k, &h);
			ho = cJSON_CreateObject();
			cJSON_AddStringToObject(ho, "holder", h.holder);
			cJSON_AddStringToObject(ho, "worker", h.worker);
			cJSON_AddStringToObject(ho, "fence", h.fence);
			cJSON_AddNumberToObject(
			    ho, "lease_left_ms", (double)(h.lease_until - now));
			cJSON_AddNumberToObject(
			    ho, "vram_mb", (double)h.vram_mb);
			cJSON_AddItemToArray(holders, ho);
		}
	} else if (po != NULL)
		cJSON_AddBoolToObject(po, "gone", 1);
	info_step(in);
}

static void
info_pools_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct info	      *in = priv;
	struct rqfn_slot_pools ps;
	struct rq_cmd	       c;
	cJSON		      *po;
	char		       err[256];
	size_t		       i;

	(void)ac;
	in->pending--;
	if (r == NULL || in->w.req == NULL ||
	    rqfn_slot_pools_reply(r, &ps, err, sizeof err) == -1)
		in->failed = 1;
	else
		for (i = 0; i < ps.npools; i++) {
			po = cJSON_CreateObject();
			cJSON_AddStringToObject(po, "pool", ps.pools[i]->str);
			cJSON_AddItemToArray(in->out, po);
			rqfn_slot_get_cmd(&c, in->s->prefix, ps.pools[i]->str);
			info_send(in, info_pool_cb, &c);
		}
	info_step(in);
}

SCHED_ROUTE(info_pools)
{
	struct info  *in;
	struct rq_cmd c;

	(void)args;
	(void)tok;
	in = info_new(s, req, cJSON_CreateArray());
	rqfn_slot_pools_cmd(&c, s->prefix);
	info_send(in, info_pools_cb, &c);
	info_step(in);
}
