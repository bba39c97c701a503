/*
 * GET /comfy/system_stats and GET /comfy/object_info (see sched_comfy.h).
 *
 * system_stats is the fleet in ComfyUI's shape (comfyui-api.md §2.10):
 * one entry of devices per worker that is up, from its record (gpu_name,
 * vram_total_mb as bytes, the worker id as index). What a worker record
 * does not hold is not made up: ram_* and vram_free/torch_vram_free are
 * null, and system names comfyq-scheduler instead of a ComfyUI version.
 *
 * object_info: each worker publishes its ComfyUI's /object_info as the
 * string objinfo:<pool> (worker/worker.c); the answer is the union of the
 * node classes of every pool that has one, merged by class name, the
 * first pool in name order winning a class that two define differently.
 * The pools come from slot_pools (no SCAN), at most SCHED_OBJINFO_POOLS of
 * them, read with one MGET. /object_info/{class} is that class alone, {}
 * for one no pool has (as ComfyUI answers). No list published yet (no
 * worker has seen its ComfyUI healthy, or the lists lapsed): 503.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "rqfn.h"
#include "sched.h"
#include "sched_comfy.h"
#include "sched_http.h"
#include "xmalloc.h"

#define SCHED_OBJINFO_POOLS 64
#define SCHED_CLASS_MAX	    72 /* a route argument's bound */

struct cstats {
	struct http_wait w;
	struct sched	*s;
	cJSON		*devices;
	cJSON		*ids;
	int		 next, pending, failed;
};

static void
cstats_done(struct cstats *st)
{
	struct evhttp_request *req = http_wait_end(&st->w);
	cJSON		      *o, *sys;

	if (req != NULL && st->failed)
		http_reply_redis_down(req);
	else if (req != NULL) {
		o = cJSON_CreateObject();
		sys = cJSON_AddObjectToObject(o, "system");
		cJSON_AddStringToObject(sys, "os", "posix");
		cJSON_AddNullToObject(sys, "ram_total");
		cJSON_AddNullToObject(sys, "ram_free");
		cJSON_AddStringToObject(
		    sys, "comfyui_version", "comfyq-scheduler " COMFYQ_VERSION);
		cJSON_AddStringToObject(sys, "python_version", "");
		cJSON_AddStringToObject(sys, "pytorch_version", "");
		cJSON_AddBoolToObject(sys, "embedded_python", 0);
		cJSON_AddArrayToObject(sys, "argv");
		cJSON_AddItemToObject(o, "devices", st->devices);
		st->devices = NULL;
		http_reply_json(req, 200, o);
		cJSON_Delete(o);
	}
	cJSON_Delete(st->devices);
	cJSON_Delete(st->ids);
	free(st);
}

static void
cstats_worker_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cstats *st = priv;
	redisReply    *h = r;
	const char    *wid, *state, *gpu, *vram;
	cJSON	      *d;
	double	       total;

	(void)ac;
	wid = cJSON_GetStringValue(cJSON_GetArrayItem(st->ids, st->next++));
	if (h == NULL || h->type != REDIS_REPLY_ARRAY)
		st->failed = 1;
	else if ((state = sched_field(h, "state")) != NULL &&
	    strcmp(state, "up") == 0 && wid != NULL) {
		gpu = sched_field(h, "gpu_name");
		vram = sched_field(h, "vram_total_mb");
		total = vram != NULL ? atof(vram) * 1048576.0 : 0;
		d = cJSON_CreateObject();
		cJSON_AddStringToObject(
		    d, "name", gpu != NULL && *gpu != '\0' ? gpu : "cpu");
		cJSON_AddStringToObject(
		    d, "type", gpu != NULL && *gpu != '\0' ? "cuda" : "cpu");
		cJSON_AddStringToObject(d, "index", wid);
		cJSON_AddNumberToObject(d, "vram_total", total);
		cJSON_AddNullToObject(d, "vram_free");
		cJSON_AddNumberToObject(d, "torch_vram_total", total);
		cJSON_AddNullToObject(d, "torch_vram_free");
		cJSON_AddItemToArray(st->devices, d);
	}
	if (--st->pending == 0)
		cstats_done(st);
}

static void
cstats_workers_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cstats *st = priv;
	redisReply    *rr = r;
	struct rq_cmd  c;
	size_t	       i;

	(void)ac;
	st->pending--;
	if (rr == NULL || rr->type != REDIS_REPLY_ARRAY)
		st->failed = 1;
	for (i = 0; !st->failed && i < rr->elements; i++) {
		if (rr->element[i]->type != REDIS_REPLY_STRING)
			continue;
		cJSON_AddItemToArray(
		    st->ids, cJSON_CreateString(rr->element[i]->str));
		rq_cmd_init(&c, "HGETALL");
		rq_cmd_addf(
		    &c, "%sworker:%s", st->s->prefix, rr->element[i]->str);
		if (rq_async_call(st->s->rc, cstats_worker_cb, st, &c) == 0)
			st->pending++;
		else
			st->failed = 1;
		rq_cmd_free(&c);
	}
	if (st->pending == 0)
		cstats_done(st);
}

SCHED_ROUTE(comfy_system_stats)
{
	struct cstats *st = xcalloc(1, sizeof *st);
	struct rq_cmd  c;

	(void)args;
	(void)tok;
	st->s = s;
	st->devices = cJSON_CreateArray();
	st->ids = cJSON_CreateArray();
	rq_cmd_init(&c, "ZRANGE");
	rq_cmd_addf(&c, "%sworkers", s->prefix);
	rq_cmd_add(&c, "0");
	rq_cmd_add(&c, "-1");
	http_wait_start(&st->w, req);
	if (rq_async_call(s->rc, cstats_workers_cb, st, &c) == 0)
		st->pending++;
	else {
		st->failed = 1;
		cstats_done(st);
	}
	rq_cmd_free(&c);
}

struct cinfo {
	struct http_wait w;
	struct sched	*s;
	char		 cls[SCHED_CLASS_MAX]; /* "": every class */
};

static void
cinfo_none(struct evhttp_request *req)
{
	http_reply_error(req, 503, "unavailable",
	    "no worker has published its ComfyUI's node list yet "
	    "(a worker does once its ComfyUI is healthy)");
}

/* Adds the classes of one pool's list that out lacks; -1 if it is none. */
static int
cinfo_merge(cJSON *out, const redisReply *v)
{
	cJSON *list, *cls;

	if (v->type != REDIS_REPLY_STRING ||
	    (list = cJSON_ParseWithLength(v->str, v->len)) == NULL)
		return (-1);
	if (!cJSON_IsObject(list)) {
		cJSON_Delete(list);
		return (-1);
	}
	while ((cls = list->child) != NULL) {
		cJSON_DetachItemViaPointer(list, cls);
		if (cls->string == NULL ||
		    cJSON_GetObjectItemCaseSensitive(out, cls->string) != NULL)
			cJSON_Delete(cls);
		else
			cJSON_AddItemToObject(out, cls->string, cls);
	}
	cJSON_Delete(list);
	return (0);
}

static void
cinfo_lists_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cinfo	      *ci = priv;
	struct evhttp_request *req = http_wait_end(&ci->w);
	redisReply	      *rr = r;
	cJSON		      *out, *one, *cls;
	size_t		       i;
	int		       any = 0;

	(void)ac;
	if (req == NULL)
		goto done;
	if (rr == NULL || rr->type != REDIS_REPLY_ARRAY) {
		http_reply_redis_down(req);
		goto done;
	}
	out = cJSON_CreateObject();
	for (i = 0; i < rr->elements; i++)
		if (cinfo_merge(out, rr->element[i]) == 0)
			any = 1;
	if (!any)
		cinfo_none(req);
	else if (*ci->cls == '\0')
		http_reply_json(req, 200, out);
	else {
		one = cJSON_CreateObject();
		if ((cls = cJSON_DetachItemFromObjectCaseSensitive(
			 out, ci->cls)) != NULL)
			cJSON_AddItemToObject(one, ci->cls, cls);
		http_reply_json(req, 200, one);
		cJSON_Delete(one);
	}
	cJSON_Delete(out);
done:
	free(ci);
}

static void
cinfo_pools_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cinfo	      *ci = priv;
	struct rqfn_slot_pools ps;
	struct rq_cmd	       c;
	char		       err[256];
	size_t		       i;

	(void)ac;
	if (ci->w.req == NULL) {
		http_wait_end(&ci->w); /* the client left */
		free(ci);
		return;
	}
	if (r == NULL || rqfn_slot_pools_reply(r, &ps, err, sizeof err) == -1) {
		http_reply_redis_down(http_wait_end(&ci->w));
		free(ci);
		return;
	}
	if (ps.npools == 0) {
		cinfo_none(http_wait_end(&ci->w));
		free(ci);
		return;
	}
	rq_cmd_init(&c, "MGET");
	for (i = 0; i < ps.npools && i < SCHED_OBJINFO_POOLS; i++)
		rq_cmd_addf(
		    &c, "%sobjinfo:%s", ci->s->prefix, ps.pools[i]->str);
	if (rq_async_call(ci->s->rc, cinfo_lists_cb, ci, &c) == -1) {
		http_reply_redis_down(http_wait_end(&ci->w));
		free(ci);
	}
	rq_cmd_free(&c);
}

static void
cinfo_start(struct sched *s, struct evhttp_request *req, const char *cls)
{
	struct cinfo *ci = xcalloc(1, sizeof *ci);
	struct rq_cmd c;

	ci->s = s;
	snprintf(ci->cls, sizeof ci->cls, "%s", cls);
	http_wait_start(&ci->w, req);
	rqfn_slot_pools_cmd(&c, s->prefix);
	if (rq_async_call(s->rc, cinfo_pools_cb, ci, &c) == -1) {
		http_reply_redis_down(http_wait_end(&ci->w));
		free(ci);
	}
	rq_cmd_free(&c);
}

SCHED_ROUTE(comfy_object_info)
{
	(void)args;
	(void)tok;
	cinfo_start(s, req, "");
}

SCHED_ROUTE(comfy_object_info_one)
{
	(void)tok;
	cinfo_start(s, req, args[0]);
}
