/*
 * One job's state machine (see run.h).
 *
 *   INPUTS -> [AWAIT_SLOT] -> UPLOAD -> RENDER -> SUBMIT -> WAIT <-> CHECK
 *          -> HISTORY -> FETCH -> [STORE] -> REPORT -> DONE
 *
 * The job is checked against its workflow (shared/workflow/wfjob.h) at the start.
 * INPUTS readies each input image on the thread pool (download, decode,
 * fit or Canny) and keeps the bytes. A job claimed without a GPU slot
 * (lua/claim.lua: it has URL inputs and the worker may prefetch) does this
 * before it holds a slot, so a slow download never idles the GPU; it then
 * waits in AWAIT_SLOT until the worker takes a slot for it (acquire,
 * worker.c). With prefetch off such a job waits for its slot first and
 * readies its inputs after (AWAIT_SLOT -> INPUTS -> UPLOAD). UPLOAD sends
 * each input to ComfyUI with /upload/image (only with the slot held:
 * ComfyUI is on the GPU host). RENDER renders the graph, checks it against
 * ComfyUI's cached /object_info (fetched again once on a miss, so a model
 * file added since is found) and records the files it reads (job_files,
 * so the janitor's file cleanup keeps them). SUBMIT is POST /prompt with
 * our own prompt id. The wall clock runs from the claim in every state.
 * WAIT follows the prompt's WebSocket events; events can arrive before the
 * POST's reply, so terminal ones seen during SUBMIT are kept and acted on
 * once ComfyUI has accepted the prompt. CHECK asks /history and /queue when
 * the prompt has been silent too long or the socket came back: still there
 * means wait on, finished means read the history, gone means ComfyUI lost
 * it (stalled, or after a reconnect: submitted again with a new prompt id).
 * HISTORY reads the result; FETCH gets, validates and stores each output;
 * with output-fsync on, STORE waits while a thread of the sync pool
 * flushes the job's files and folder (outputs_sync.h), so the job is
 * reported succeeded only once its files are on disk;
 * REPORT is the one complete/fail/release call, retried until Redis
 * answers. A lost lease ends the run at once without writing anything.
 *
 * Every end goes through run_end (fail), run_begin_report (complete,
 * release) or run_drop, and each does nothing once the run is reporting,
 * so a job is reported exactly once however many timers and events race.
 * A run stays allocated until every Redis reply it waits for has come back
 * (refs).
 *
 * The stages live in files of their own, in the order a job flows, and
 * share struct run through run_int.h:
 *   run.c          start, the one state writer, the ends without a report
 *                  (drop, abandon), the calls the worker makes
 *   run_prepare.c  INPUTS, AWAIT_SLOT, UPLOAD, RENDER: inputs, the graph,
 *                  its names against /object_info, job_files
 *   run_submit.c   SUBMIT, WAIT, CHECK: POST /prompt, socket events,
 *                  silence and reconnects, reconcile
 *   run_fetch.c    HISTORY, FETCH, STORE: the result and each output
 *   run_report.c   REPORT: fail, complete, release, and progress
 *   run_nodes.c    what ComfyUI did (nodes begun, cached), which progress
 *                  and the report carry
 * This file is the only one that sets r->state (run_set_state).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "outputs_sync.h"
#include "run_int.h"
#include "settings.h"
#include "util.h"
#include "xmalloc.h"

static const char *const run_state_names[] = {
	[RS_INPUTS] = "inputs",
	[RS_AWAIT_SLOT] = "await_slot",
	[RS_UPLOAD] = "upload",
	[RS_RENDER] = "render",
	[RS_SUBMIT] = "submit",
	[RS_WAIT] = "wait",
	[RS_CHECK] = "check",
	[RS_HISTORY] = "history",
	[RS_FETCH] = "fetch",
	[RS_STORE] = "store",
	[RS_REPORT] = "report",
	[RS_DONE] = "done",
};

static void run_free(struct run *);

/*
 * Starts a claimed job; slot says whether the claim took a slot with it,
 * model is the job's checkpoint key (claim's reply). The wall clock is min(the job's timeout_s, job-timeout-s), from now. The
 * run reports its own end; it may already have ended (bad spec) when this
 * returns.
 */
struct run *
run_start(const struct run_env *env, const char *jid, const char *fence,
    int attempt, const char *spec, size_t spec_len, long long timeout_s,
    int slot, const char *model)
{
	static const struct job_limits lim = { 64u << 20, 1u << 20, 16u << 20 };
	struct run		      *r;
	struct wf_opts		       opts;
	const char		      *code_name = NULL;
	char			       err[RUN_MSG_MAX];
	enum errcode		       code;

	r = xcalloc(1, sizeof *r);
	r->env = env;
	snprintf(r->jid, sizeof r->jid, "%s", jid);
	snprintf(r->fence, sizeof r->fence, "%s", fence);
	r->attempt = attempt;
	r->model = xstrdup(model);
	output_tmp_init(&r->tmp);
	r->has_slot = slot;
	r->wall = evtimer_new(env->base, run_wall_cb, r);
	r->silence = evtimer_new(env->base, run_silence_cb, r);
	r->prog_timer = evtimer_new(env->base, run_prog_timer_cb, r);
	r->retry = evtimer_new(env->base, run_retry_cb, r);
	r->timeout_ms = env->cfg->job_timeout_s * 1000;
	if (timeout_s > env->cfg->job_timeout_s)
		r->asked_s = timeout_s;
	else if (timeout_s > 0)
		r->timeout_ms = timeout_s * 1000;
	timer_add_ms(r->wall, r->timeout_ms);
	log_job(LL_NOTICE, jid, "claimed (attempt %d, fence %s%s)", attempt,
	    fence, slot ? "" : ", no slot yet");
	if (r->asked_s > 0)
		log_job(LL_NOTICE, jid,
		    "timeout_s %lld capped at job-timeout-s %lld", r->asked_s,
		    env->cfg->job_timeout_s);
	if (job_spec_parse(&r->spec, spec, spec_len, &lim, err, sizeof err) ==
	    -1) {
		run_end(r, EC_INVALID_INPUT, "%s", err);
		return (r);
	}
	opts.cn = env->cn;
	opts.lora_scale = env->cfg->lora_weight_scale;
	opts.raw_deny = env->cfg->raw_graphs == 1;
	opts.graph_files = env->cfg->graph_files;
	if ((r->wf = wf_job_new(env->workflows, &r->spec, &opts, &code_name,
		 err, sizeof err)) == NULL) {
		if (errcode_parse(code_name, &code) == -1)
			code = EC_INVALID_INPUT;
		run_end(r, code, "%s", err);
		return (r);
	}
	r->in = xcalloc(wf_job_ninputs(r->wf) + 1, sizeof *r->in);
	if (!slot && env->cfg->prefetch == 0)
		run_await_slot(r); /* prefetch off: the slot first */
	else
		run_inputs_next(r);
	return (r);
}

void
run_wall_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)ev;
	if (r->asked_s > 0)
		run_end(r, EC_TIMEOUT,
		    "no result within %lld s (the worker's job-timeout-s; the job asked for %lld s)",
		    r->timeout_ms / 1000, r->asked_s);
	else
		run_end(r, EC_TIMEOUT, "no result within %lld s",
		    r->timeout_ms / 1000);
}

void
run_set_state(struct run *r, enum run_state to)
{
	log_job(LL_DEBUG, r->jid, "%s -> %s", run_state_names[r->state],
	    run_state_names[to]);
	r->state = to;
}

const char *
run_jid(const struct run *r)
{
	return (r->jid);
}

const char *
run_fence(const struct run *r)
{
	return (r->fence);
}

const char *
run_prompt_id(const struct run *r)
{
	return (
	    r->state >= RS_SUBMIT && r->state < RS_REPORT ? r->prompt_id : "");
}

const char *
run_model(const struct run *r)
{
	return (r->model);
}

/* Whether ComfyUI ran the prompt to its end and gave its outputs. */
int
run_succeeded(const struct run *r)
{
	return (r->state == RS_DONE && r->report == REPORT_COMPLETE);
}

/* Whether the job is still ours in Redis (heartbeats renew it). */
int
run_holds_lease(const struct run *r)
{
	return (r->state < RS_DONE);
}

/*
 * Whether the run holds one of the pool's slots. A run that is reporting
 * does not: its report frees the slot, and the worker's next claim goes
 * out right behind it on the same connection (run_begin_report), so Redis
 * frees it before the claim looks.
 */
int
run_has_slot(const struct run *r)
{
	return (r->has_slot && r->state < RS_REPORT);
}

/* Whether the run waits for the worker to take a slot for it. */
int
run_awaits_slot(const struct run *r)
{
	return (r->state == RS_AWAIT_SLOT);
}

/* Cancels the request (or the upload) in flight, if any. */
void
run_cancel_req(struct run *r)
{
	r->env->comfy->cancel(r->env->ctx, r->req);
	r->req = NULL;
	if (r->up != NULL)
		r->env->store->cancel(r->env->ctx, r->up);
	r->up = NULL;
}

/* Stops whatever ComfyUI may still be doing for this run. */
void
run_stop_prompt(struct run *r)
{
	if (r->submitted && r->state <= RS_CHECK) {
		log_job(
		    LL_VERBOSE, r->jid, "interrupting prompt %s", r->prompt_id);
		r->env->comfy->interrupt(r->env->ctx, r->prompt_id);
	}
}

/* Ends the run without any further Redis write (its lease is gone). */
void
run_drop(struct run *r, const char *why)
{
	if (r->state >= RS_REPORT)
		return;
	log_job(LL_NOTICE, r->jid, "dropped: %s", why);
	run_stop_prompt(r);
	run_finish(r);
}

/* The heartbeat says the job is no longer ours. */
void
run_lost(struct run *r)
{
	run_drop(r, "lease lost (reclaimed, or finished elsewhere)");
}

void
run_cancel(struct run *r)
{
	run_end(r, EC_CANCELED, "canceled on request");
}

/* The worker is stopping: hand the job back without counting it. */
void
run_release(struct run *r)
{
	if (r->state >= RS_REPORT)
		return;
	log_job(LL_NOTICE, r->jid, "handing back (worker shutting down)");
	run_stop_prompt(r);
	run_begin_report(r, REPORT_RELEASE);
}

/* Leaves the worker's list; freed once no Redis reply is pending. */
void
run_finish(struct run *r)
{
	run_set_state(r, RS_DONE);
	run_cancel_req(r);
	evtimer_del(r->wall);
	evtimer_del(r->silence);
	evtimer_del(r->prog_timer);
	evtimer_del(r->retry);
	r->env->hooks->done(r->env->ctx, r);
	if (r->refs == 0)
		run_free(r);
}

void
run_free_inputs(struct run *r)
{
	size_t i, n = r->wf != NULL ? wf_job_ninputs(r->wf) : 0;

	for (i = 0; r->in != NULL && i < n; i++)
		free(r->in[i].bytes);
	free(r->in);
	r->in = NULL;
}

static void
run_free(struct run *r)
{
	run_cancel_req(r);
	run_free_inputs(r);
	event_free(r->wall);
	event_free(r->silence);
	event_free(r->prog_timer);
	event_free(r->retry);
	cJSON_Delete(r->graph);
	wf_job_free(r->wf);
	cJSON_Delete(r->early_error);
	cJSON_Delete(r->nodes_ran);
	cJSON_Delete(r->nodes_cached);
	cJSON_Delete(r->records);
	output_tmp_discard(&r->tmp);
	out_sync_free(r->sync);
	free(r->up_key);
	outputs_free(&r->outs);
	job_spec_free(&r->spec);
	free(r->model);
	free(r);
}

void
run_unref(struct run *r)
{
	if (--r->refs == 0 && r->state == RS_DONE)
		run_free(r);
}

/* At exit, after the Redis connections are closed: free what is left. */
void
run_abandon(struct run *r)
{
	log_job(LL_WARNING, r->jid,
	    "abandoned at exit in state %s; its lease will lapse",
	    run_state_names[r->state]);
	run_free(r);
}
