/*
 * The worker's record and its leases (see worker.h): lua/register.lua
 * and lua/heartbeat.lua, and the command connection's state.
 *
 * Heartbeat: one call renews every lease, slotless runs' too; it reports
 * jobs lost (dropped at once, nothing written) and cancel requests, and
 * the pool's capacity.
 *
 * The record (worker:<wid>) is written whole by register, the one call
 * that writes it; its health says what the worker does about claiming:
 * gpu_broken, draining, backend_down or ok (worker_health). Whatever
 * changes it (ComfyUI up or down, a GPU fault, SIGTERM) registers again;
 * a change while a register is in flight registers again once it has
 * answered, and each heartbeat's reply compares the health last written
 * with the truth, so the record follows within one heartbeat whatever the
 * order of events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "backend.h"
#include "comfy.h"
#include "log.h"
#include "rqfn.h"
#include "sdnotify.h"
#include "util.h"
#include "worker_int.h"

static void worker_register_reply(redisAsyncContext *, void *, void *);
static void worker_heartbeat_reply(redisAsyncContext *, void *, void *);

/* The health the record must show now (see the top). */
static const char *
worker_health(const struct worker *w)
{
	if (w->gpu_broken)
		return ("gpu_broken");
	if (w->state != WS_RUNNING)
		return ("draining");
	return (backend_healthy(w->backend) ? "ok" : "backend_down");
}

/* Whether the record shows the health h (NULL: not known to). */
static int
worker_health_shown(const struct worker *w, const char *h)
{
	return (h != NULL && strcmp(h, worker_health(w)) == 0);
}

/* Something the record shows has changed: write it again. */
void
worker_record_changed(struct worker *w)
{
	if (w->registered || w->registering)
		worker_register(w);
}

/*
 * Writes the whole record (register). One call at a time: a change while
 * one is in flight is written when it has answered.
 */
void
worker_register(struct worker *w)
{
	struct rq_cmd c;
	const char   *dev;
	long long     budget = 0, vram;

	if (w->state == WS_STOPPED)
		return;
	if (w->registering) {
		w->register_again = 1;
		return;
	}
	w->register_again = 0;
	if (w->gpu.present && w->gpu.total_mb > w->cfg->vram_reserve_mb)
		budget = w->gpu.total_mb - w->cfg->vram_reserve_mb;
	rqfn_register_cmd(&c, w->prefix, w->id, w->cfg->worker_ttl_ms, w->pool,
	    w->cfg->slots, budget);
	rq_cmd_add(&c, "host");
	rq_cmd_add(&c, w->host);
	rq_cmd_add(&c, "pid");
	rq_cmd_addf(&c, "%d", (int)getpid());
	rq_cmd_add(&c, "comfy_url");
	rq_cmd_add(&c, comfy_url(w->comfy));
	rq_cmd_add(&c, "version");
	rq_cmd_add(&c, COMFYQ_VERSION);
	dev = w->gpu.present ? w->gpu.name : backend_device_name(w->backend);
	vram = w->gpu.present ? w->gpu.total_mb
			      : backend_vram_total_mb(w->backend);
	rq_cmd_add(&c, "gpu_name");
	rq_cmd_add(&c, *dev ? dev : "unknown");
	rq_cmd_add(&c, "gpu_uuid");
	rq_cmd_add(&c, w->gpu.present ? w->gpu.uuid : "");
	rq_cmd_add(&c, "vram_total_mb");
	rq_cmd_addf(&c, "%lld", vram);
	/* These pairs come after register's own started_ms and jobs, and
	 * HSET keeps the last value: a register again keeps them true. */
	rq_cmd_add(&c, "started_ms");
	rq_cmd_addf(&c, "%lld", w->started_ms);
	rq_cmd_add(&c, "jobs");
	rq_cmd_addf(&c, "%d", w->nruns);
	rq_cmd_add(&c, "health");
	rq_cmd_add(&c, worker_health(w));
	rq_cmd_add(&c, "model");
	rq_cmd_add(&c, w->model);
	if (rq_async_call(w->rc, worker_register_reply, w, &c) == -1)
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
	else {
		w->registering = 1;
		w->health_written = worker_health(w); /* on its way */
	}
	rq_cmd_free(&c);
}

static void
worker_register_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker	    *w = arg;
	struct rqfn_register reg;
	const char	    *sent = w->health_written;
	char		     err[256];

	(void)ac;
	w->registering = 0;
	w->health_written = NULL;
	if (reply == NULL) {
		/* Lost with the connection, whose up callback registers
		 * again; a change meanwhile retries (from a timer if down). */
		if (w->register_again)
			worker_register(w);
		return;
	}
	if (rqfn_register_reply(reply, &reg, err, sizeof err) == -1) {
		log_warnx("register: %s", err);
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
		return;
	}
	w->capacity = (int)reg.capacity;
	if (!w->registered) {
		log_notice(
		    "registered as %s in pool %s (capacity %d, VRAM budget %lld MB, health %s)",
		    w->id, w->pool, w->capacity, reg.vram_budget_mb, sent);
		sdnotify("READY=1");
	}
	w->registered = 1;
	w->health_written = sent;
	if (w->register_again || !worker_health_shown(w, sent))
		worker_register(w); /* it changed while this was in flight */
	worker_claim_maybe(w);
}

void
worker_heartbeat(evutil_socket_t fd, short ev, void *arg)
{
	struct worker *w = arg;
	struct rq_cmd  c;
	int	       i;

	(void)fd;
	(void)ev;
	timer_add_ms(w->hb_timer, w->cfg->heartbeat_ms);
	if (!w->registered)
		return;
	rqfn_heartbeat_cmd(
	    &c, w->prefix, w->id, w->cfg->lease_ms, w->cfg->worker_ttl_ms);
	for (i = 0; i < w->nruns; i++)
		if (run_holds_lease(w->runs[i]))
			rqfn_heartbeat_job(
			    &c, run_jid(w->runs[i]), run_fence(w->runs[i]));
	rq_async_call(w->rc, worker_heartbeat_reply, w, &c);
	rq_cmd_free(&c);
	worker_objinfo_tick(w);
}

static void
worker_heartbeat_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker	     *w = arg;
	struct rqfn_heartbeat hb;
	struct run	     *run;
	size_t		      i;
	char		      err[256];
	int		      old;

	(void)ac;
	if (reply == NULL)
		return;
	if (rqfn_heartbeat_reply(reply, &hb, err, sizeof err) == -1) {
		log_warnx("heartbeat: %s", err);
		return;
	}
	for (i = 0; i < hb.nlost; i++)
		if ((run = worker_find_job(w, hb.lost[i]->str)) != NULL)
			run_lost(run);
	for (i = 0; i < hb.ncancel; i++)
		if ((run = worker_find_job(w, hb.cancel[i]->str)) != NULL)
			run_cancel(run);
	if (!hb.registered && w->registered) {
		log_warnx(
		    "heartbeat: the worker record had expired; registering again");
		worker_register(w);
	} else if (w->registered && !w->registering &&
	    !worker_health_shown(w, w->health_written))
		worker_register(w); /* a register that was lost */
	old = w->capacity;
	if (hb.capacity > 0)
		w->capacity = (int)hb.capacity;
	if (w->capacity != old)
		log_notice(
		    "pool %s capacity %d -> %d", w->pool, old, w->capacity);
	if (w->capacity != old || w->claim_full) {
		w->fetch_none = 0; /* a busy worker looks for prefetch */
		worker_claim_maybe(w);
	}
}

void
worker_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct worker *w = arg;

	(void)fd;
	(void)ev;
	if (!w->registered)
		worker_register(w);
	else
		worker_claim_maybe(w);
}

void
worker_rc_state(struct rq_async *ra, int up, void *arg)
{
	struct worker *w = arg;

	(void)ra;
	w->claiming = 0;
	if (up) {
		log_notice("redis: connected");
		worker_register(w);
	} else
		w->registered = 0;
}
