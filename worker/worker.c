/*
 * The worker (see worker.h).
 *
 * The worker object: made from the settings, its three Redis connections
 * (claim in worker_claim.c, record and heartbeat in worker_record.c,
 * cancels in worker_cancel.c), its ComfyUI client and backend, the run_env
 * its runs get (worker_env.c); its health and its drain.
 *
 * Draining (SIGTERM): no more claims; runs without a slot (they have not
 * reached the GPU) are handed back at once, the rest finish within the
 * grace period, then are handed back (release), and the worker exits.
 *
 * The node list: the worker caches its ComfyUI's /object_info (fetched
 * when ComfyUI turns healthy, or by the first run that needs it, again on
 * a names miss; dropped when the socket goes down) and publishes it as the
 * plain string objinfo:<pool> (SET ... EX WORKER_OBJINFO_TTL_S) for the
 * scheduler's GET /comfy/object_info. It is no job or slot state, so it is
 * a plain command, fire and forget: a failure is logged and never touches
 * a run. It is written when the cached list changes, and again from the
 * heartbeat once half its TTL has passed (or after a write that failed),
 * so a live worker's list never lapses and a gone one's does within the
 * TTL. A list over WORKER_OBJINFO_MAX is not published.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "comfy.h"
#include "httpc.h"
#include "log.h"
#include "outputs_s3.h"
#include "outputs_sync.h"
#include "rqfn.h"
#include "sdnotify.h"
#include "template.h"
#include "tpool.h"
#include "util.h"
#include "worker_int.h"
#include "xmalloc.h"

#define WORKER_DRAIN_SLACK_MS 10000
#define WORKER_OBJINFO_TTL_S  3600
#define WORKER_OBJINFO_MAX    (16u << 20)

static void worker_objinfo_fetch(struct worker *w);

int
worker_healthy(const struct worker *w)
{
	return (!w->gpu_broken && backend_healthy(w->backend));
}

/* A copy of the run list, for calls that may end runs while we walk. */
static struct run **
worker_snapshot(const struct worker *w)
{
	struct run **snap = xcalloc((size_t)w->nruns + 1, sizeof *snap);

	if (w->nruns > 0)
		memcpy(snap, w->runs, (size_t)w->nruns * sizeof *snap);
	return (snap);
}

/* ComfyUI's socket: events go to the run whose prompt they name. */
static void
worker_comfy_event(void *arg, const char *type, const cJSON *data)
{
	struct worker *w = arg;
	const cJSON *pid = cJSON_GetObjectItemCaseSensitive(data, "prompt_id");
	struct run  *r;

	if (!cJSON_IsString(pid))
		return; /* status broadcasts, reconnect hints */
	if ((r = worker_find_run(w, pid->valuestring)) != NULL)
		run_event(r, type, data);
}

static void
worker_comfy_link(void *arg, int up)
{
	struct worker *w = arg;
	struct run   **snap;
	int	       i, n = w->nruns;

	backend_link(w->backend, up);
	if (!up) {
		worker_set_objinfo(w, NULL); /* a restart may change models */
		if (w->objinfo_req != NULL)
			httpc_cancel(w->objinfo_req);
		w->objinfo_req = NULL;
	}
	snap = worker_snapshot(w);
	for (i = 0; i < n; i++)
		run_link(snap[i], up);
	free(snap);
}

static const struct comfy_cb worker_comfy_cbs = {
	worker_comfy_event,
	worker_comfy_link,
};

/* The backend became healthy or unhealthy. */
static void
worker_backend_changed(void *arg)
{
	struct worker *w = arg;

	if (backend_healthy(w->backend)) {
		log_notice("comfyui at %s is healthy", comfy_url(w->comfy));
		worker_record_changed(w); /* device facts may be new too */
		worker_objinfo_fetch(w);
		worker_claim_maybe(w);
	} else {
		log_warnx("comfyui at %s is not healthy: not claiming",
		    comfy_url(w->comfy));
		w->model[0] = '\0'; /* it may come back restarted, empty */
		worker_record_changed(w);
		worker_unblock(w);
	}
}

/* A CUDA fault: the device is not to be trusted until a restart. */
void
worker_latch_gpu_fault(struct worker *w, const char *why)
{
	if (w->gpu_broken)
		return;
	w->gpu_broken = 1;
	snprintf(w->gpu_why, sizeof w->gpu_why, "%s", why);
	log_at(LL_ERROR,
	    "GPU fault: %s; this worker stops claiming until it is restarted",
	    why);
	worker_unblock(w);
	worker_record_changed(w);
}

/* The record stays to expire when unregister fails: say so and leave. */
static void
worker_unregister_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	char	       err[256];

	(void)ac;
	if (reply != NULL &&
	    rqfn_unregister_reply(reply, err, sizeof err) == -1)
		log_warnx("unregister: %s", err);
	event_base_loopexit(w->base, NULL);
}

/* Everything has ended: say so in Redis and leave the loop. */
void
worker_stop(struct worker *w)
{
	struct rq_cmd c;

	if (w->state == WS_STOPPED)
		return;
	w->state = WS_STOPPED;
	log_notice("stopping");
	rqfn_unregister_cmd(&c, w->prefix, w->id);
	if (rq_async_call(w->rc, worker_unregister_reply, w, &c) == -1)
		event_base_loopexit(w->base, NULL);
	rq_cmd_free(&c);
}

static void
worker_drain_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct worker *w = arg;
	struct run   **snap;
	int	       i, n = w->nruns;

	(void)fd;
	(void)ev;
	if (w->drain_released) {
		/* The hand-backs never landed: leave; the leases lapse. */
		log_warnx("drain: %d job%s not handed back; exiting", n,
		    n == 1 ? "" : "s");
		event_base_loopexit(w->base, NULL);
		return;
	}
	log_notice("drain: grace period over; handing back %d job%s", n,
	    n == 1 ? "" : "s");
	w->drain_released = 1;
	snap = worker_snapshot(w);
	for (i = 0; i < n; i++)
		run_release(snap[i]);
	free(snap);
	timer_add_ms(w->drain_timer, WORKER_DRAIN_SLACK_MS);
}

/*
 * SIGTERM: no more claims; runs finish within the grace period, then the
 * rest are handed back. A second SIGTERM hands them back at once.
 */
void
worker_drain(struct worker *w)
{
	struct run **snap;
	int	     i, n = w->nruns;

	if (w->state == WS_DRAINING && !w->drain_released) {
		evtimer_del(w->drain_timer);
		worker_drain_cb(-1, 0, w);
		return;
	}
	if (w->state != WS_RUNNING)
		return;
	w->state = WS_DRAINING;
	sdnotify("STOPPING=1");
	worker_unblock(w);
	log_notice("draining: %d job%s in flight, grace %lld s", w->nruns,
	    w->nruns == 1 ? "" : "s", w->cfg->drain_grace_s);
	if (w->nruns == 0) {
		worker_stop(w);
		return;
	}
	worker_record_changed(w);
	/* Runs without a slot have not reached the GPU: back at once. */
	snap = worker_snapshot(w);
	for (i = 0; i < n; i++)
		if (!run_has_slot(snap[i]))
			run_release(snap[i]);
	free(snap);
	timer_add_ms(w->drain_timer, w->cfg->drain_grace_s * 1000);
}

/* Picks the pool: the GPU's uuid, else COMFYQ_POOL, else host:port. */
static void
worker_pick_pool(struct worker *w)
{
	const char *url = w->cfg->comfyui_url, *hp;
	size_t	    i, n;

	if (w->gpu.present) {
		snprintf(w->pool, sizeof w->pool, "%s", w->gpu.uuid);
		if (*w->cfg->pool != '\0' && strcmp(w->cfg->pool, w->pool) != 0)
			log_notice(
			    "pool is the GPU's uuid %s, not '%s': workers on one GPU share its slots",
			    w->pool, w->cfg->pool);
		return;
	}
	if (*w->cfg->pool != '\0') {
		snprintf(w->pool, sizeof w->pool, "%s", w->cfg->pool);
		return;
	}
	hp = strstr(url, "://");
	hp = hp != NULL ? hp + 3 : url;
	n = strcspn(hp, "/");
	snprintf(w->pool, sizeof w->pool, "%.*s", (int)n, hp);
	for (i = 0; w->pool[i] != '\0'; i++)
		if (w->pool[i] == '[' || w->pool[i] == ']')
			w->pool[i] = '_';
}

struct worker *
worker_new(struct event_base *base, struct worker_cfg *cfg,
    struct wf_registry *workflows)
{
	struct worker	 *w;
	struct comfy_opts co;
	char		  err[512];

	w = xcalloc(1, sizeof *w);
	w->cfg = cfg;
	w->base = base;
	w->state = WS_RUNNING;
	w->started_ms = clock_wall_ms();
	if (gethostname(w->host, sizeof w->host) == -1)
		snprintf(w->host, sizeof w->host, "unknown");
	w->host[sizeof w->host - 1] = '\0';
	if (*cfg->worker_id != '\0')
		snprintf(w->id, sizeof w->id, "%s", cfg->worker_id);
	else
		snprintf(
		    w->id, sizeof w->id, "%.100s-%d", w->host, (int)getpid());
	if (rq_prefix(w->prefix, sizeof w->prefix, cfg->queue) == -1)
		fatalx(
		    "queue: '%s' must be 1..128 of letters, digits, '.', '_' and '-'",
		    cfg->queue);

	gpu_probe((int)cfg->gpu_device, &w->gpu);
	if (w->gpu.present) {
		log_notice("GPU %d: %s (%s), %lld MB total, %lld MB free",
		    w->gpu.device, w->gpu.name, w->gpu.uuid, w->gpu.total_mb,
		    w->gpu.free_mb);
		if (gpu_preflight((int)cfg->gpu_device, err, sizeof err) ==
		    -1) {
			w->gpu_broken = 1;
			snprintf(w->gpu_why, sizeof w->gpu_why, "%.200s", err);
			log_at(LL_ERROR, "%s: not claiming", err);
		}
	} else {
		log_notice("%s; using ComfyUI's /system_stats", w->gpu.why);
		if (*w->gpu.detail != '\0')
			log_debug("GPU probe: %s", w->gpu.detail);
	}
	worker_pick_pool(w);

	inputs_global_init();
	w->workflows = workflows;
	log_notice("workflows: %zu templates from %s", wf_count(w->workflows),
	    cfg->workflows_dir);
	if (cn_map_parse(cfg->controlnet_models, &w->cn_map, err, sizeof err) ==
	    -1)
		fatalx("controlnet-models: %s", err);
	w->inputs = inputs_opts_default;
	w->inputs.max_bytes = (size_t)cfg->input_max_bytes;
	w->inputs.timeout_ms = (long)cfg->input_timeout_ms;
	w->inputs.allow_private = cfg->allow_private_urls;
	w->pool_threads = tpool_new(base, (int)cfg->threads);
	w->sync_threads = tpool_new(base, OUT_SYNC_THREADS);
	w->http = httpc_new(base);
	if (cfg->store == STORE_S3) {
		struct s3_target t;
		struct s3_opts	 so;

		if (output_s3_target(cfg, &t, err, sizeof err) == -1)
			fatalx("%s", err);
		output_s3_opts(cfg, &so);
		w->s3 = s3_new(base, w->http, &t, &so);
		log_notice("outputs go to bucket %s at %s://%s (%s-style)",
		    t.bucket, t.scheme, t.host, t.path_style ? "path" : "host");
		explicit_bzero(&t, sizeof t);
	}
	co.ping_ms = cfg->ws_ping_s * 1000;
	co.pong_timeout_ms = cfg->ws_pong_timeout_s * 1000;
	co.http_timeout_ms = cfg->http_timeout_ms;
	if ((w->comfy = comfy_new(base, w->http, cfg->comfyui_url, w->id, &co,
		 &worker_comfy_cbs, w, err, sizeof err)) == NULL)
		fatalx("%s", err);
	w->backend =
	    backend_new(base, w->comfy, cfg, worker_backend_changed, w);
	worker_env_init(w);
	w->hb_timer = evtimer_new(base, worker_heartbeat, w);
	w->retry_timer = evtimer_new(base, worker_retry_cb, w);
	w->drain_timer = evtimer_new(base, worker_drain_cb, w);
	timer_add_ms(w->hb_timer, cfg->heartbeat_ms);
	if ((w->rc = rq_async_new(base, cfg->redis_url, w->prefix, 1,
		 worker_rc_state, w, err, sizeof err)) == NULL ||
	    (w->rb = rq_async_new(base, cfg->redis_url, w->prefix, 0,
		 worker_rb_state, w, err, sizeof err)) == NULL ||
	    (w->rs = rq_async_new(base, cfg->redis_url, w->prefix, 0,
		 worker_rs_state, w, err, sizeof err)) == NULL)
		fatalx("%s", err);
	log_notice("worker %s: queue %s, pool %s, comfyui %s", w->id,
	    cfg->queue, w->pool, comfy_url(w->comfy));
	return (w);
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	/* Pending replies come back NULL; then what is left is abandoned. */
	w->state = WS_STOPPED;
	w->env.stopped = 1;
	rq_async_free(w->rs);
	rq_async_free(w->rb);
	rq_async_free(w->rc);
	tpool_free(w->pool_threads); /* queued work ends; runs see STOPPED */
	tpool_free(w->sync_threads);
	while (w->nruns > 0)
		run_abandon(w->runs[--w->nruns]);
	wf_registry_free(w->workflows);
	if (w->objinfo_req != NULL)
		httpc_cancel(w->objinfo_req);
	cJSON_Delete(w->objinfo);
	backend_free(w->backend);
	comfy_free(w->comfy);
	s3_free(w->s3); /* before the client its requests use */
	httpc_free(w->http);
	event_free(w->hb_timer);
	event_free(w->retry_timer);
	event_free(w->drain_timer);
	free(w->runs);
	free(w);
}

static void
worker_objinfo_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	redisReply    *r = reply;

	(void)ac;
	if (r == NULL)
		w->objinfo_set_ms = 0; /* lost with the connection: again */
	else if (r->type == REDIS_REPLY_ERROR)
		log_warnx("publishing /object_info: %s", r->str);
}

/* Writes the cached /object_info to objinfo:<pool> (see the top). */
static void
worker_objinfo_publish(struct worker *w)
{
	struct rq_cmd c;
	char	     *text;
	size_t	      len;

	w->objinfo_set_ms = clock_mono_ms();
	if ((text = cJSON_PrintUnformatted(w->objinfo)) == NULL)
		fatalx("out of memory printing /object_info");
	if ((len = strlen(text)) > WORKER_OBJINFO_MAX) {
		log_warnx("/object_info is %zu bytes, over %u: not published",
		    len, WORKER_OBJINFO_MAX);
		cJSON_free(text);
		return;
	}
	rq_cmd_init(&c, "SET");
	rq_cmd_addf(&c, "%sobjinfo:%s", w->prefix, w->pool);
	rq_cmd_addb(&c, text, len);
	rq_cmd_add(&c, "EX");
	rq_cmd_addf(&c, "%d", WORKER_OBJINFO_TTL_S);
	if (rq_async_call(w->rc, worker_objinfo_reply, w, &c) == -1)
		w->objinfo_set_ms = 0; /* not connected: the heartbeat again */
	rq_cmd_free(&c);
	cJSON_free(text);
}

/* From the heartbeat: publishes again when due (see the top). */
void
worker_objinfo_tick(struct worker *w)
{
	if (w->objinfo != NULL &&
	    (w->objinfo_set_ms == 0 ||
		clock_mono_ms() - w->objinfo_set_ms >=
		    WORKER_OBJINFO_TTL_S * 1000LL / 2))
		worker_objinfo_publish(w);
}

/*
 * Replaces the cached /object_info (the worker owns it from now on) and
 * publishes a list that differs from the one before.
 */
void
worker_set_objinfo(struct worker *w, cJSON *info)
{
	int same = info != NULL && w->objinfo != NULL &&
	    cJSON_Compare(info, w->objinfo, 1);

	cJSON_Delete(w->objinfo);
	w->objinfo = info;
	if (info != NULL && !same)
		worker_objinfo_publish(w);
}

static void
worker_objinfo_fetched(const struct httpc_resp *resp, void *arg)
{
	struct worker *w = arg;
	cJSON	      *info;

	w->objinfo_req = NULL;
	if (resp->fail != HTTPC_OK || resp->status != 200 ||
	    (info = cJSON_ParseWithLength(resp->body, resp->len)) == NULL) {
		log_info("GET /object_info: %s; the first job asks again",
		    resp->fail != HTTPC_OK ? resp->err : "no usable reply");
		return;
	}
	if (w->objinfo != NULL)
		cJSON_Delete(info); /* a run's fetch came first */
	else
		worker_set_objinfo(w, info);
}

/* ComfyUI is healthy: fetch its node list now, not at the first job. */
static void
worker_objinfo_fetch(struct worker *w)
{
	if (w->objinfo == NULL && w->objinfo_req == NULL)
		w->objinfo_req =
		    comfy_object_info(w->comfy, worker_objinfo_fetched, w);
}

/* SIGHUP applied new settings: pass on what lives outside the table. */
void
worker_reloaded(struct worker *w)
{
	struct comfy_opts co;

	co.ping_ms = w->cfg->ws_ping_s * 1000;
	co.pong_timeout_ms = w->cfg->ws_pong_timeout_s * 1000;
	co.http_timeout_ms = w->cfg->http_timeout_ms;
	comfy_set_opts(w->comfy, &co);
	worker_claim_maybe(w);
}
