/*
 * The worker's side of lua/claim.lua and lua/acquire.lua, and its list
 * of runs (see worker.h).
 *
 * Claiming: while the backend is healthy and fewer of its runs hold a slot
 * than the pool has slots, the worker calls claim. A job starts a run and
 * the worker claims again at once (pipelining: the next prompt waits in
 * ComfyUI's queue while one runs). The claim also says how many more jobs
 * the worker takes without a slot (prep: prefetch minus the slotless runs
 * it holds): a job with URL inputs is then claimed slotless, readies its
 * inputs, and waits for a slot (run_prepare.c AWAIT_SLOT). Such a prepared run
 * goes before any new claim: the worker calls acquire for the oldest one
 * and, on "noslot", blocks on the pool's marker and asks again when woken.
 * With prefetch 0 prep is 1 while a slot is free, and a URL job claimed
 * slotless asks for its slot at once, before its inputs. A worker whose
 * runs hold all its slots claims only to prefetch, and then never blocks:
 * a blocked connection would swallow the pool's free-slot token that a
 * worker with a free slot waits for (a stopped process's connection stays
 * blocked). It looks again when a run ends and at each heartbeat, and
 * after a claim only while its reply counts jobs that fetch first (the
 * claim's fetch count; fetch_none), so a busy worker of a queue without
 * URL inputs makes one claim a job, not two.
 *
 * Model-aware claiming (model-aware, lua/claim.lua): a claim names the
 * checkpoint the worker's ComfyUI will hold when the job it gets runs:
 * that of its newest run in flight that loads one (ComfyUI runs prompts
 * in order), else the one it last ran to success (w->model, "" after a
 * /free or when the backend was lost: a restarted ComfyUI holds none).
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
 */
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "rqfn.h"
#include "util.h"
#include "worker_int.h"
#include "xmalloc.h"

/* BLOCK_FREE: both markers, as BLOCK_ALL, for a worker with a free slot
 * whose claim passed every job over (see worker_block). */
enum block_mode { BLOCK_NONE, BLOCK_ALL, BLOCK_POOL, BLOCK_FREE };

/* rqfn_claim_kind's names, as claim.lua tags its replies. */
static const char *const claim_kinds[] = { "job", "noslot", "nojob" };

static void worker_acquire(struct worker *, struct run *);
static void worker_claim_reply(redisAsyncContext *, void *, void *);
static void worker_acquire_reply(redisAsyncContext *, void *, void *);
static void worker_client_id_reply(redisAsyncContext *, void *, void *);

/* The checkpoint its ComfyUI holds changed (see the top): the record
 * shows it. */
void
worker_model_set(struct worker *w, const char *model)
{
	if (strcmp(w->model, model) == 0)
		return;
	if (*model != '\0')
		log_info("comfyui holds checkpoint %s", model);
	else
		log_info("comfyui holds no checkpoint");
	snprintf(w->model, sizeof w->model, "%s", model);
	worker_record_changed(w);
}

/* The checkpoint a claim now prefers (see the top); "" for none. */
static const char *
worker_prefer(const struct worker *w)
{
	int i;

	if (!w->cfg->model_aware)
		return ("");
	for (i = w->nruns - 1; i >= 0; i--)
		if (*run_model(w->runs[i]) != '\0')
			return (run_model(w->runs[i]));
	return (w->model);
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

struct run *
worker_find_run(struct worker *w, const char *prompt_id)
{
	int i;

	for (i = 0; i < w->nruns; i++)
		if (strcmp(run_prompt_id(w->runs[i]), prompt_id) == 0)
			return (w->runs[i]);
	return (NULL);
}

struct run *
worker_find_job(struct worker *w, const char *jid)
{
	int i;

	for (i = 0; i < w->nruns; i++)
		if (strcmp(run_jid(w->runs[i]), jid) == 0)
			return (w->runs[i]);
	return (NULL);
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

	if (run_succeeded(r) && *run_model(r) != '\0')
		worker_model_set(w, run_model(r));
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
worker_ignore_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	(void)ac;
	(void)reply;
	(void)arg;
}

/* Ends a pending BZPOPMIN so the worker can decide again. */
void
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
	const char   *prefer;
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
	if (slotted >= limit && (prep == 0 || w->fetch_none)) {
		/* Nothing to prefetch (the last claim said so): the next
		 * heartbeat looks again (claim_full). */
		w->claim_full = prep > 0;
		worker_unblock(w);
		return;
	}
	w->claim_full = slotted >= limit;
	/* scan 16: claim.lua's default; always the fetch count */
	rqfn_claim_cmd(
	    &c, w->prefix, w->id, w->pool, w->cfg->lease_ms, 16, prep);
	prefer = worker_prefer(w);
	rqfn_claim_prefer(
	    &c, prefer, w->cfg->model_max_wait_ms, w->cfg->model_max_lead, 1);
	if (rq_async_call(w->rc, worker_claim_reply, w, &c) == 0)
		w->claiming = 1;
	rq_cmd_free(&c);
}

static void
worker_claim_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker	 *w = arg;
	struct rqfn_claim cl;
	struct run	 *run;
	long long	  now, wait;
	char		  fence[32], err[256];

	(void)ac;
	w->claiming = 0;
	if (reply == NULL)
		return;
	if (rqfn_claim_reply(reply, &cl, err, sizeof err) == -1) {
		log_warnx("claim: %s%s", err,
		    strncmp(err, "NOPOOL", 6) == 0
			? " (set one: comfyq slots set POOL N, or COMFYQ_SLOTS)"
			: "");
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
		return;
	}
	log_debug("claim: %s", claim_kinds[cl.kind]);
	/* A worker whose slots are all held claims again to prefetch only
	 * while jobs that fetch first are queued. */
	if (cl.kind == RQFN_CLAIM_JOB)
		w->fetch_none = cl.fetch_waiting == 0;
	else if (w->claim_full || cl.kind == RQFN_CLAIM_NOJOB)
		w->fetch_none = 1;
	if (cl.kind == RQFN_CLAIM_JOB) {
		if (w->state != WS_RUNNING) {
			/* Stopping meanwhile: the run hands it back. */
			log_notice("claimed while stopping");
		}
		snprintf(fence, sizeof fence, "%lld", cl.fence);
		w->claiming = 1; /* no new decision before the run is listed */
		run = run_start(&w->env, cl.jid, fence, (int)cl.attempt,
		    cl.spec, cl.spec_len, cl.timeout_s, cl.slot, cl.model);
		worker_add_run(w, run);
		w->claiming = 0;
		if (w->state != WS_RUNNING)
			run_release(run);
		worker_claim_maybe(w);
	} else if (w->claim_full) {
		/* Only a job to prefetch could have come: never block on a
		 * marker whose token a worker with a free slot needs. */
		worker_unblock(w);
	} else if (cl.kind == RQFN_CLAIM_NOSLOT && cl.used < cl.capacity) {
		/* A slot is free, every job was passed over (VRAM, or URL
		 * jobs beyond prefetch): a new job may fit, so wait for one
		 * too. */
		worker_block(w, BLOCK_FREE, w->cfg->block_timeout_s * 1000);
	} else if (cl.kind == RQFN_CLAIM_NOSLOT) {
		worker_block(w, BLOCK_POOL, w->cfg->block_timeout_s * 1000);
	} else {
		wait = w->cfg->block_timeout_s * 1000;
		now = clock_wall_ms();
		if (cl.next_due_ms != 0 && cl.next_due_ms - now < wait)
			wait = cl.next_due_ms - now;
		worker_block(w, BLOCK_ALL, wait);
	}
}

/* Asks for a slot for a run whose job was claimed without one. */
static void
worker_acquire(struct worker *w, struct run *run)
{
	struct rq_cmd c;

	snprintf(w->acquire_jid, sizeof w->acquire_jid, "%s", run_jid(run));
	rqfn_acquire_cmd(&c, w->prefix, run_jid(run), run_fence(run), w->pool);
	if (rq_async_call(w->rc, worker_acquire_reply, w, &c) == 0)
		w->claiming = 1;
	rq_cmd_free(&c);
}

static void
worker_acquire_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker	   *w = arg;
	struct rqfn_acquire aq;
	struct run	   *run;
	char		    err[256];

	(void)ac;
	w->claiming = 0;
	if (reply == NULL)
		return;
	run = worker_find_job(w, w->acquire_jid);
	if (rqfn_acquire_reply(reply, &aq, err, sizeof err) == -1) {
		log_job(LL_WARNING, w->acquire_jid, "acquire: %s", err);
		timer_add_ms(w->retry_timer, WORKER_RETRY_MS);
	} else if (aq.kind == RQFN_ACQUIRE_STALE) {
		if (run != NULL)
			run_lost(run); /* and the worker decides again */
		else
			worker_claim_maybe(w);
	} else if (aq.kind == RQFN_ACQUIRE_OK) {
		/* A run that ended meanwhile frees it with its report, which
		 * follows this call on the same connection. */
		if (run != NULL)
			run_slot_granted(run);
		worker_claim_maybe(w);
	} else
		worker_block(w, BLOCK_POOL, w->cfg->block_timeout_s * 1000);
}

void
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
