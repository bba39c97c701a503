/*
 * The worker's Redis side and its runs (see worker.h).
 *
 * Claiming: while the backend is healthy and fewer of its runs hold a slot
 * than the pool has slots, the worker calls claim. A job starts a run and
 * the worker claims again at once (pipelining: the next prompt waits in
 * ComfyUI's queue while one runs). The claim also says how many more jobs
 * the worker takes without a slot (prep: prefetch minus the slotless runs
 * it holds): a job with URL inputs is then claimed slotless, readies its
 * inputs, and waits for a slot (run.c AWAIT_SLOT). Such a prepared run
 * goes before any new claim: the worker calls acquire for the oldest one
 * and, on "noslot", blocks on the pool's marker and asks again when woken.
 * With prefetch 0 prep is 1 while a slot is free, and a URL job claimed
 * slotless asks for its slot at once, before its inputs. A worker whose
 * runs hold all its slots claims only to prefetch, and then never blocks:
 * a blocked connection would swallow the pool's free-slot token that a
 * worker with a free slot waits for (a stopped process's connection stays
 * blocked). It looks again when a run ends and at each heartbeat.
 *
 * "nojob" blocks on BZPOPMIN over the queue's marker and the pool's
 * marker, until a token arrives or the earliest delayed job is due;
 * "noslot" with every slot held blocks on the pool's marker alone, so a
 * worker that cannot take a job never swallows the token another pool
 * could use; "noslot" with a slot free (every job passed over: VRAM, or
 * URL jobs beyond prefetch) blocks on both, as a new job may fit, after
 * removing the 'pending' token the claim left for other pools (else it
 * would wake itself). Blocking runs on a second connection; when the reason to
 * block changes (a run ended, the backend went down), the block is ended
 * with CLIENT UNBLOCK and the worker decides again. The block timeout is a
 * safety net, not a poll: wake-ups come from tokens.
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
 *
 * Cancels: a third connection is subscribed to <prefix>ctl:<worker id>;
 * comfyq_cancel of a job we run publishes "cancel <jid>" there, and the
 * run is interrupted at once. rq_async reconnects with backoff; each time
 * it is up the channel is subscribed again, and a heartbeat is sent so a
 * cancel published while it was down is heard then, not a period later.
 * The heartbeat's cancel list stays the fallback.
 *
 * Draining (SIGTERM): no more claims; runs without a slot (they have not
 * reached the GPU) are handed back at once, the rest finish within the
 * grace period, then are handed back (release), and the worker exits.
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
#include "run.h"
#include "template.h"
#include "tpool.h"
#include "util.h"
#include "worker_int.h"
#include "xmalloc.h"

#define WORKER_RETRY_MS	      5000
#define WORKER_DRAIN_SLACK_MS 10000

/* BLOCK_FREE: both markers, as BLOCK_ALL, for a worker with a free slot
 * whose claim passed every job over (see worker_block). */
enum block_mode { BLOCK_NONE, BLOCK_ALL, BLOCK_POOL, BLOCK_FREE };

static void worker_register(struct worker *);
static void worker_stop(struct worker *);
static void worker_heartbeat(evutil_socket_t, short, void *);

static int
worker_healthy(const struct worker *w)
{
	return (!w->gpu_broken && backend_healthy(w->backend));
}

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
static void
worker_record_changed(struct worker *w)
{
	if (w->registered || w->registering)
		worker_register(w);
}

/* How many jobs may be in flight: the pool's slots, capped by config. */
static int
worker_limit(const struct worker *w)
{
	int n = w->capacity > 0 ? w->capacity : 1;

	if (w->cfg->max_inflight > 0 && n > w->cfg->max_inflight)
		n = (int)w->cfg->max_inflight;
	return (n);
}

static struct run *
worker_find_run(struct worker *w, const char *prompt_id)
{
	int i;

	for (i = 0; i < w->nruns; i++)
		if (strcmp(run_prompt_id(w->runs[i]), prompt_id) == 0)
			return (w->runs[i]);
	return (NULL);
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

static struct run *
worker_find_job(struct worker *w, const char *jid)
{
	int i;

	for (i = 0; i < w->nruns; i++)
		if (strcmp(run_jid(w->runs[i]), jid) == 0)
			return (w->runs[i]);
	return (NULL);
}

static void
worker_ignore_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	(void)ac;
	(void)reply;
	(void)arg;
}

/* Ends a pending BZPOPMIN so the worker can decide again. */
static void
worker_unblock(struct worker *w)
{
	struct rq_cmd c;

	if (w->blocking == BLOCK_NONE || w->rb_client_id <= 0)
		return;
	rq_cmd_init(&c, "CLIENT");
	rq_cmd_add(&c, "UNBLOCK");
	rq_cmd_addf(&c, "%lld", w->rb_client_id);
	rq_async_call(w->rc, worker_ignore_reply, NULL, &c);
	rq_cmd_free(&c);
}

static void
worker_block_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;

	(void)ac;
	w->blocking = BLOCK_NONE;
	if (reply == NULL)
		return; /* the connection's up callback claims again */
	worker_claim_maybe(w);
}

static void
worker_block(struct worker *w, enum block_mode mode, long long timeout_ms)
{
	struct rq_cmd c;

	if (w->blocking == (int)mode)
		return;
	if (w->blocking != BLOCK_NONE) {
		worker_unblock(w); /* its reply makes us decide again */
		return;
	}
	if (!rq_async_up(w->rb))
		return;
	if (timeout_ms < 10)
		timeout_ms = 10;
	if (mode == BLOCK_FREE) {
		/* The claim left a 'pending' token for workers of other
		 * pools; one still there (none was waiting) would wake this
		 * worker at once, for nothing, again and again. */
		rq_cmd_init(&c, "ZREM");
		rq_cmd_addf(&c, "%smarker", w->prefix);
		rq_cmd_add(&c, "pending");
		rq_async_call(w->rb, worker_ignore_reply, NULL, &c);
		rq_cmd_free(&c);
	}
	rq_cmd_init(&c, "BZPOPMIN");
	if (mode != BLOCK_POOL)
		rq_cmd_addf(&c, "%smarker", w->prefix);
	rq_cmd_addf(&c, "%smarker:%s", w->prefix, w->pool);
	rq_cmd_addf(&c, "%.3f", (double)timeout_ms / 1000.0);
	if (rq_async_call(w->rb, worker_block_reply, w, &c) == 0) {
		w->blocking = mode;
		log_debug("waiting on the %s marker%s (%lld ms)",
		    mode != BLOCK_POOL ? "queue and pool" : "pool",
		    mode != BLOCK_POOL ? "s" : "", timeout_ms);
	}
	rq_cmd_free(&c);
}

static void
worker_add_run(struct worker *w, struct run *r)
{
	if (w->nruns == w->runs_cap) {
		w->runs_cap = w->runs_cap ? w->runs_cap * 2 : 8;
		w->runs =
		    xrealloc(w->runs, (size_t)w->runs_cap * sizeof *w->runs);
	}
	w->runs[w->nruns++] = r;
}

/* A run has ended: it leaves the list; the worker may claim again. */
void
worker_run_done(struct worker *w, struct run *r)
{
	int i;

	for (i = 0; i < w->nruns; i++) {
		if (w->runs[i] == r) {
			/* The list stays in claim order (oldest first). */
			memmove(&w->runs[i], &w->runs[i + 1],
			    (size_t)(w->nruns - i - 1) * sizeof *w->runs);
			w->nruns--;
			break;
		}
	}
	if (w->state == WS_DRAINING && w->nruns == 0)
		worker_stop(w);
	else
		worker_claim_maybe(w);
}

static void
worker_claim_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	redisReply    *r = reply;
	const char    *tag;
	long long      now, wait;
	struct run    *run;
	char	       fence[32];
	int	       slot;

	(void)ac;
	w->claiming = 0;
	if (r == NULL)
		return;
	if (r->type == REDIS_REPLY_ERROR) {
		log_warnx("claim: %s%s", r->str,
		    strncmp(r->str, "NOPOOL", 6) == 0
			? " (set one: comfyq slots set POOL N, or COMFYQ_SLOTS)"
			: "");
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
		log_warnx("claim: unexpected reply");
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
		return;
	}
	tag = r->element[0]->str;
	log_debug("claim: %s", tag);
	if (strcmp(tag, "job") == 0 && r->elements >= 7) {
		if (w->state != WS_RUNNING) {
			/* Stopping meanwhile: the run hands it back. */
			log_notice("claimed while stopping");
		}
		snprintf(fence, sizeof fence, "%lld", r->element[2]->integer);
		slot = r->elements < 8 || r->element[7]->integer != 0;
		w->claiming = 1; /* no new decision before the run is listed */
		run = run_start(&w->env, r->element[1]->str, fence,
		    (int)r->element[3]->integer, r->element[4]->str,
		    r->element[4]->len, r->element[6]->integer, slot);
		worker_add_run(w, run);
		w->claiming = 0;
		if (w->state != WS_RUNNING)
			run_release(run);
		worker_claim_maybe(w);
	} else if (w->claim_full) {
		/* Only a job to prefetch could have come: never block on a
		 * marker whose token a worker with a free slot needs. */
		worker_unblock(w);
	} else if (strcmp(tag, "noslot") == 0 && r->elements >= 3 &&
	    r->element[1]->integer < r->element[2]->integer) {
		/* A slot is free, every job was passed over (VRAM, or URL
		 * jobs beyond prefetch): a new job may fit, so wait for one
		 * too. */
		worker_block(w, BLOCK_FREE, w->cfg->block_timeout_s * 1000);
	} else if (strcmp(tag, "noslot") == 0) {
		worker_block(w, BLOCK_POOL, w->cfg->block_timeout_s * 1000);
	} else {
		wait = w->cfg->block_timeout_s * 1000;
		if (r->elements > 1 &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    *r->element[1]->str != '\0') {
			now = clock_wall_ms();
			if (atoll(r->element[1]->str) - now < wait)
				wait = atoll(r->element[1]->str) - now;
		}
		worker_block(w, BLOCK_ALL, wait);
	}
}

static void
worker_acquire_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	redisReply    *r = reply;
	struct run    *run;

	(void)ac;
	w->claiming = 0;
	if (r == NULL)
		return;
	run = worker_find_job(w, w->acquire_jid);
	if (rq_reply_is_status(r, "STALE")) {
		if (run != NULL)
			run_lost(run); /* and the worker decides again */
		else
			worker_claim_maybe(w);
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "ok") == 0) {
		/* A run that ended meanwhile frees it with its report, which
		 * follows this call on the same connection. */
		if (run != NULL)
			run_slot_granted(run);
		worker_claim_maybe(w);
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "noslot") == 0) {
		worker_block(w, BLOCK_POOL, w->cfg->block_timeout_s * 1000);
	} else {
		log_warnx("acquire: %s",
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
	}
}

/* Asks for a slot for a run whose job was claimed without one. */
static void
worker_acquire(struct worker *w, struct run *run)
{
	struct rq_cmd c;

	snprintf(w->acquire_jid, sizeof w->acquire_jid, "%s", run_jid(run));
	rq_cmd_fcall(&c, "acquire", w->prefix);
	rq_cmd_add(&c, run_jid(run));
	rq_cmd_add(&c, run_fence(run));
	rq_cmd_add(&c, w->pool);
	if (rq_async_call(w->rc, worker_acquire_reply, w, &c) == 0)
		w->claiming = 1;
	rq_cmd_free(&c);
}

/*
 * How many jobs the next claim may give without a slot. With prefetch 0
 * it is 1 while a slot is free: a URL job (which a claim never gives with
 * a slot while prep is 0, lua/claim.lua) is then taken as before, slot
 * first. A worker at its max-inflight below the pool's capacity claims
 * nothing: the claim could hand it a slot it must not use.
 */
static int
worker_prep(const struct worker *w, int slotted, int slotless, int limit)
{
	if (w->cfg->prefetch == 0)
		return (slotted < limit ? 1 : 0);
	if (slotted >= limit && limit < w->capacity)
		return (0);
	return (
	    slotless < w->cfg->prefetch ? (int)w->cfg->prefetch - slotless : 0);
}

/* Claims a job, or a slot for a prepared run, when everything allows it;
 * otherwise makes sure not to hold a block whose token another worker
 * could use. */
void
worker_claim_maybe(struct worker *w)
{
	struct rq_cmd c;
	struct run   *awaiting = NULL;
	int	      i, slotted = 0, slotless = 0, limit, prep;

	if (w->state != WS_RUNNING || !w->registered || w->claiming)
		return;
	if (!worker_healthy(w)) {
		worker_unblock(w);
		return;
	}
	for (i = 0; i < w->nruns; i++) {
		if (run_has_slot(w->runs[i]))
			slotted++;
		else
			slotless++;
		if (awaiting == NULL && run_awaits_slot(w->runs[i]))
			awaiting = w->runs[i]; /* the oldest */
	}
	limit = worker_limit(w);
	if (awaiting != NULL) {
		if (slotted < limit)
			worker_acquire(w, awaiting);
		else
			worker_unblock(w); /* a run's end decides again */
		return;
	}
	prep = worker_prep(w, slotted, slotless, limit);
	if (slotted >= limit && prep == 0) {
		worker_unblock(w);
		return;
	}
	w->claim_full = slotted >= limit;
	rq_cmd_fcall(&c, "claim", w->prefix);
	rq_cmd_add(&c, w->id);
	rq_cmd_add(&c, w->pool);
	rq_cmd_addf(&c, "%lld", w->cfg->lease_ms);
	rq_cmd_add(&c, "16"); /* scan: claim.lua's default */
	rq_cmd_addf(&c, "%d", prep);
	if (rq_async_call(w->rc, worker_claim_reply, w, &c) == 0)
		w->claiming = 1;
	rq_cmd_free(&c);
}

static void
worker_heartbeat_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	redisReply    *r = reply;
	struct run    *run;
	size_t	       i;
	int	       old;

	(void)ac;
	if (r == NULL)
		return;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
		log_warnx("heartbeat: %s",
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		return;
	}
	for (i = 0; i < r->element[0]->elements; i++)
		if ((run = worker_find_job(
			 w, r->element[0]->element[i]->str)) != NULL)
			run_lost(run);
	for (i = 0; i < r->element[1]->elements; i++)
		if ((run = worker_find_job(
			 w, r->element[1]->element[i]->str)) != NULL)
			run_cancel(run);
	if (r->element[3]->integer == 0 && w->registered) {
		log_warnx("heartbeat: the worker record had expired; "
			  "registering again");
		worker_register(w);
	} else if (w->registered && !w->registering &&
	    !worker_health_shown(w, w->health_written))
		worker_register(w); /* a register that was lost */
	old = w->capacity;
	if (r->element[2]->integer > 0)
		w->capacity = (int)r->element[2]->integer;
	if (w->capacity != old)
		log_notice(
		    "pool %s capacity %d -> %d", w->pool, old, w->capacity);
	if (w->capacity != old || w->claim_full)
		worker_claim_maybe(w); /* a busy worker looks for prefetch */
}

static void
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
	rq_cmd_fcall(&c, "heartbeat", w->prefix);
	rq_cmd_add(&c, w->id);
	rq_cmd_addf(&c, "%lld", w->cfg->lease_ms);
	rq_cmd_addf(&c, "%lld", w->cfg->worker_ttl_ms);
	for (i = 0; i < w->nruns; i++) {
		if (!run_holds_lease(w->runs[i]))
			continue;
		rq_cmd_add(&c, run_jid(w->runs[i]));
		rq_cmd_add(&c, run_fence(w->runs[i]));
	}
	rq_async_call(w->rc, worker_heartbeat_reply, w, &c);
	rq_cmd_free(&c);
}

static void
worker_register_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	redisReply    *r = reply;
	const char    *sent = w->health_written;

	(void)ac;
	w->registering = 0;
	w->health_written = NULL;
	if (r == NULL) {
		/* Lost with the connection, whose up callback registers
		 * again; a change meanwhile retries (from a timer if down). */
		if (w->register_again)
			worker_register(w);
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
		log_warnx("register: %s",
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
		return;
	}
	w->capacity = (int)r->element[0]->integer;
	if (!w->registered)
		log_notice("registered as %s in pool %s (capacity %d, VRAM "
			   "budget %lld MB, health %s)",
		    w->id, w->pool, w->capacity, r->element[1]->integer, sent);
	w->registered = 1;
	w->health_written = sent;
	if (w->register_again || !worker_health_shown(w, sent))
		worker_register(w); /* it changed while this was in flight */
	worker_claim_maybe(w);
}

/*
 * Writes the whole record (register). One call at a time: a change while
 * one is in flight is written when it has answered.
 */
static void
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
	rq_cmd_fcall(&c, "register", w->prefix);
	rq_cmd_add(&c, w->id);
	rq_cmd_addf(&c, "%lld", w->cfg->worker_ttl_ms);
	rq_cmd_add(&c, w->pool);
	rq_cmd_addf(&c, "%lld", w->cfg->slots);
	rq_cmd_addf(&c, "%lld", budget);
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
	if (rq_async_call(w->rc, worker_register_reply, w, &c) == -1)
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
	else {
		w->registering = 1;
		w->health_written = worker_health(w); /* on its way */
	}
	rq_cmd_free(&c);
}

static void
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

static void
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

static void
worker_client_id_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	redisReply    *r = reply;

	(void)ac;
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		w->rb_client_id = r->integer;
	worker_claim_maybe(w);
}

static void
worker_rb_state(struct rq_async *ra, int up, void *arg)
{
	struct worker *w = arg;
	struct rq_cmd  c;

	w->blocking = BLOCK_NONE;
	w->rb_client_id = 0;
	if (!up)
		return;
	rq_cmd_init(&c, "CLIENT");
	rq_cmd_add(&c, "ID");
	rq_async_call(ra, worker_client_id_reply, w, &c);
	rq_cmd_free(&c);
}

/* A message on ctl:<id>: "cancel <jid>" interrupts that job at once. */
static void
worker_ctl_message(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	redisReply    *r = reply;
	const char    *kind, *msg;
	struct run    *run;

	(void)ac;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return; /* disconnected: the state callback subscribes again */
	kind = r->element[0]->str;
	if (strcmp(kind, "subscribe") == 0) {
		log_info("listening for cancels on %sctl:%s", w->prefix, w->id);
		if (w->nruns > 0) {
			evtimer_del(w->hb_timer);
			worker_heartbeat(-1, 0, w); /* what we missed */
		}
		return;
	}
	if (strcmp(kind, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return;
	msg = r->element[2]->str;
	if (strncmp(msg, "cancel ", 7) != 0) {
		log_warnx("ctl: unknown message '%.64s'", msg);
		return;
	}
	if ((run = worker_find_job(w, msg + 7)) == NULL) {
		log_debug(
		    "ctl: cancel of %.64s, which does not run here", msg + 7);
		return;
	}
	log_job(LL_VERBOSE, run_jid(run), "cancel requested");
	run_cancel(run);
}

static void
worker_rs_state(struct rq_async *ra, int up, void *arg)
{
	struct worker *w = arg;
	struct rq_cmd  c;

	if (!up)
		return; /* rq_async reconnects with backoff */
	rq_cmd_init(&c, "SUBSCRIBE");
	rq_cmd_addf(&c, "%sctl:%s", w->prefix, w->id);
	if (rq_async_call(ra, worker_ctl_message, w, &c) == -1)
		log_warnx("ctl: cannot subscribe; cancels wait for the "
			  "heartbeat");
	rq_cmd_free(&c);
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
	if (!up)
		worker_set_objinfo(w, NULL); /* a restart may change models */
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
		worker_claim_maybe(w);
	} else {
		log_warnx("comfyui at %s is not healthy: not claiming",
		    comfy_url(w->comfy));
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
	    "GPU fault: %s; this worker stops claiming until "
	    "it is restarted",
	    why);
	worker_unblock(w);
	worker_record_changed(w);
}

static void
worker_unregister_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;

	(void)ac;
	(void)reply;
	event_base_loopexit(w->base, NULL);
}

/* Everything has ended: say so in Redis and leave the loop. */
static void
worker_stop(struct worker *w)
{
	struct rq_cmd c;

	if (w->state == WS_STOPPED)
		return;
	w->state = WS_STOPPED;
	log_notice("stopping");
	rq_cmd_fcall(&c, "unregister", w->prefix);
	rq_cmd_add(&c, w->id);
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
			    "pool is the GPU's uuid %s, not '%s': workers "
			    "on one GPU share its slots",
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
worker_new(struct event_base *base, struct worker_cfg *cfg)
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
		fatalx("queue: '%s' must be 1..128 of letters, digits, '.', "
		       "'_' and '-'",
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
	if ((w->workflows = wf_load(cfg->workflows_dir, err, sizeof err)) ==
	    NULL)
		fatalx("workflows: %s", err);
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
	w->http = httpc_new(base);
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
	if ((w->rc = rq_async_new(base, cfg->redis_url, 1, worker_rc_state, w,
		 err, sizeof err)) == NULL ||
	    (w->rb = rq_async_new(base, cfg->redis_url, 0, worker_rb_state, w,
		 err, sizeof err)) == NULL ||
	    (w->rs = rq_async_new(base, cfg->redis_url, 0, worker_rs_state, w,
		 err, sizeof err)) == NULL)
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
	while (w->nruns > 0)
		run_abandon(w->runs[--w->nruns]);
	wf_registry_free(w->workflows);
	cJSON_Delete(w->objinfo);
	backend_free(w->backend);
	comfy_free(w->comfy);
	httpc_free(w->http);
	event_free(w->hb_timer);
	event_free(w->retry_timer);
	event_free(w->drain_timer);
	free(w->runs);
	free(w);
}

/* Replaces the cached /object_info (the worker owns it from now on). */
void
worker_set_objinfo(struct worker *w, cJSON *info)
{
	cJSON_Delete(w->objinfo);
	w->objinfo = info;
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
