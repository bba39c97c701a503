/*
 * GET /comfy/system_stats and GET /comfy/object_info (see sched_comfy.h).
 *
 * system_stats is the fleet in ComfyUI's shape (comfyui-api.md §2.10):
 * one entry of devices per worker that is up, from its record (gpu_name,
 * vram_total_mb as bytes, the worker id as index). What a worker record
 * does not hold is not made up: ram_* and vram_free/torch_vram_free are
 * null, and system names comfyq-scheduler instead of a ComfyUI version.
 *
 * object_info: no worker publishes its ComfyUI's /object_info to Redis
 * (each reads it for itself, worker/run_prepare.c), and the fleet's
 * ComfyUIs need not agree, so there is nothing honest to answer: 501 with
 * a JSON error that says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "sched.h"
#include "sched_comfy.h"
#include "sched_http.h"
#include "xmalloc.h"

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

SCHED_ROUTE(comfy_object_info)
{
	(void)s;
	(void)args;
	(void)tok;
	http_reply_error(req, 501, "not_implemented",
	    "no source for /object_info: the workers do not publish their "
	    "ComfyUI's node list to Redis, and the fleet's ComfyUIs need not "
	    "agree; ask a worker's ComfyUI directly");
}
