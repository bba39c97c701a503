/*
 * One job's state machine (see run.h).
 *
 *   INPUTS -> [AWAIT_SLOT] -> UPLOAD -> RENDER -> SUBMIT -> WAIT <-> CHECK
 *          -> HISTORY -> FETCH -> REPORT -> DONE
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
 * REPORT is the one complete/fail/release call, retried until Redis
 * answers. A lost lease ends the run at once without writing anything.
 *
 * Every end goes through run_end (fail), run_complete or run_drop, and
 * run_end does nothing once the run is reporting, so a job is reported
 * exactly once however many timers and events race. A run stays allocated
 * until every Redis reply it waits for has come back (refs).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "errmap.h"
#include "job.h"
#include "log.h"
#include "objinfo.h"
#include "outputs.h"
#include "graph.h"
#include "jobfiles.h"
#include "tpool.h"
#include "wfjob.h"
#include "run.h"
#include "settings.h"
#include "util.h"
#include "xmalloc.h"

#define RUN_MSG_MAX	    1024
#define RUN_REPORT_RETRY_MS 1000

enum run_state {
	RS_INPUTS,
	RS_AWAIT_SLOT,
	RS_UPLOAD,
	RS_RENDER,
	RS_SUBMIT,
	RS_WAIT,
	RS_CHECK,
	RS_HISTORY,
	RS_FETCH,
	RS_REPORT,
	RS_DONE,
};

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
	[RS_REPORT] = "report",
	[RS_DONE] = "done",
};

enum run_report { REPORT_FAIL, REPORT_COMPLETE, REPORT_RELEASE };

/* An input readied before the slot is held: the bytes to upload. */
struct run_input {
	unsigned char *bytes;
	size_t	       len;
};

struct run {
	const struct run_env *env;
	char		  jid[64];
	char		  fence[32];
	int		  attempt;
	struct job_spec	  spec;
	enum run_state	  state;
	struct wf_job	 *wf;
	int		  has_slot;	 /* holds a slot of the pool */
	struct run_input *in;		 /* readied inputs, until uploaded */
	size_t		  in_i;		 /* the input being readied */
	int		  inputs_ready;	 /* every input is readied */
	size_t		  up_i;		 /* the input being uploaded */
	int		  objinfo_fresh; /* fetched for this run */
	cJSON		 *graph;
	struct out_expect expect;
	char		  prompt_id[UUID_LEN];
	int		  submitted; /* ComfyUI may hold the prompt */
	int		  resubmits;
	int		  reconcile; /* CHECK after a reconnect */
	struct httpc_req *req;	     /* the one request in flight */
	int		  refs;	     /* Redis replies pending */

	/* Seen on the socket while the POST was in flight. */
	int    early_done;
	cJSON *early_error;
	int    early_interrupted;

	long long     timeout_ms;
	long long     asked_s;	  /* the job's timeout_s, when capped */
	long long     down_since; /* ComfyUI unreachable, mono */
	struct event *wall;
	struct event *silence;
	struct event *prog_timer;
	struct event *retry;
	long long     prog_value, prog_max, prog_sent;
	char	      prog_node[64];
	int	      prog_dirty;

	struct out_list outs;
	int		out_i;
	cJSON	       *records;
	struct out_tmp	tmp; /* the output being downloaded to disk */

	enum run_report report;
	enum errcode	code;
	char		msg[RUN_MSG_MAX];
};

static void run_submit(struct run *);
static void run_end(struct run *, enum errcode, const char *, ...)
    __attribute__((format(printf, 3, 4)));
static void run_history_entry(struct run *, const cJSON *);
static void run_fetch_next(struct run *);
static void run_send_report(struct run *);
static void run_progress_send(struct run *);
static void run_history_done(const struct httpc_resp *, void *);
static void run_inputs_next(struct run *);
static void run_upload_next(struct run *);
static void run_check_names(struct run *);
static void run_store_blob(struct run *, cJSON *, const char *, size_t);

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

/* Whether the job is still ours in Redis (heartbeats renew it). */
int
run_holds_lease(const struct run *r)
{
	return (r->state < RS_DONE);
}

/* Whether the run holds one of the pool's slots (until it is reported). */
int
run_has_slot(const struct run *r)
{
	return (r->has_slot && r->state < RS_DONE);
}

/* Whether the run waits for the worker to take a slot for it. */
int
run_awaits_slot(const struct run *r)
{
	return (r->state == RS_AWAIT_SLOT);
}

static void
run_set_state(struct run *r, enum run_state to)
{
	log_job(LL_DEBUG, r->jid, "%s -> %s", run_state_names[r->state],
	    run_state_names[to]);
	r->state = to;
}

/* Cancels the request in flight, if any. */
static void
run_cancel_req(struct run *r)
{
	r->env->comfy->cancel(r->env->ctx, r->req);
	r->req = NULL;
}

static void
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
	cJSON_Delete(r->records);
	output_tmp_discard(&r->tmp);
	outputs_free(&r->outs);
	job_spec_free(&r->spec);
	free(r);
}

static void
run_unref(struct run *r)
{
	if (--r->refs == 0 && r->state == RS_DONE)
		run_free(r);
}

/* Leaves the worker's list; freed once no Redis reply is pending. */
static void
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

/* Stops whatever ComfyUI may still be doing for this run. */
static void
run_stop_prompt(struct run *r)
{
	if (r->submitted && r->state <= RS_CHECK) {
		log_job(
		    LL_VERBOSE, r->jid, "interrupting prompt %s", r->prompt_id);
		r->env->comfy->interrupt(r->env->ctx, r->prompt_id);
	}
}

/* Ends the run without any further Redis write (its lease is gone). */
static void
run_drop(struct run *r, const char *why)
{
	if (r->state >= RS_REPORT)
		return;
	log_job(LL_NOTICE, r->jid, "dropped: %s", why);
	run_stop_prompt(r);
	run_finish(r);
}

static void
run_begin_report(struct run *r, enum run_report how)
{
	run_cancel_req(r);
	evtimer_del(r->silence);
	evtimer_del(r->wall);
	if (how == REPORT_COMPLETE && r->prog_dirty)
		run_progress_send(r); /* the last value, before complete */
	r->report = how;
	run_set_state(r, RS_REPORT);
	run_send_report(r);
}

/*
 * Ends the job with an error code (once; later calls are ignored). A
 * prompt ComfyUI may still be running is interrupted first.
 */
static void
run_end(struct run *r, enum errcode code, const char *fmt, ...)
{
	va_list ap;

	if (r->state >= RS_REPORT)
		return;
	run_stop_prompt(r);
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	log_job(code == EC_CANCELED ? LL_NOTICE : LL_WARNING, r->jid,
	    "failed: %s: %s", errcode_name(code), r->msg);
	run_begin_report(r, REPORT_FAIL);
}

static void
run_report_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct run *r = arg;
	redisReply *rep = reply;

	(void)ac;
	if (r->state != RS_REPORT) {
		run_unref(r);
		return;
	}
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		log_job(LL_WARNING, r->jid, "report failed: %s; retrying",
		    rep ? rep->str : "no connection to Redis");
		timer_add_ms(r->retry, RUN_REPORT_RETRY_MS);
		run_unref(r);
		return;
	}
	if (rq_reply_is_status(rep, "STALE"))
		log_job(LL_WARNING, r->jid,
		    "report was stale: the lease had "
		    "been lost; nothing was written");
	else if (r->report == REPORT_COMPLETE)
		log_job(LL_NOTICE, r->jid, "succeeded (%d output%s)", r->outs.n,
		    r->outs.n == 1 ? "" : "s");
	else if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0)
		log_job(
		    LL_VERBOSE, r->jid, "reported: %s", rep->element[0]->str);
	run_finish(r);
	run_unref(r);
}

static void
run_send_report(struct run *r)
{
	const struct run_redis *rd = r->env->redis;
	char		       *out;
	int			rc;

	switch (r->report) {
	case REPORT_COMPLETE:
		out = cJSON_PrintUnformatted(r->records);
		rc = rd->complete(r->env->ctx, r->jid, r->fence, out,
		    run_report_reply, r);
		cJSON_free(out);
		break;
	case REPORT_RELEASE:
		rc = rd->release(r->env->ctx, r->jid, r->fence,
		    "worker shutting down", run_report_reply, r);
		break;
	case REPORT_FAIL:
	default:
		rc = rd->fail(r->env->ctx, r->jid, r->fence, r->code, r->msg,
		    run_report_reply, r);
		break;
	}
	if (rc == 0)
		r->refs++;
	else
		timer_add_ms(r->retry, RUN_REPORT_RETRY_MS);
}

static void
run_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)ev;
	if (r->state == RS_REPORT)
		run_send_report(r);
}

/*
 * Progress: at most one call per progress-min-ms, the latest value when the
 * timer fires. value == max is throttled like any other (a graph of many
 * one-step nodes sends little else). A value still pending when the job
 * succeeds goes out just before complete, so the record ends at its last
 * value: one event more per job, not per node.
 */
static void
run_progress_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	(void)ac;
	(void)reply;
	run_unref(arg);
}

static void
run_progress_send(struct run *r)
{
	r->prog_dirty = 0;
	r->prog_sent = clock_mono_ms();
	if (r->env->redis->progress(r->env->ctx, r->jid, r->fence,
		r->prog_value, r->prog_max, r->prog_node, run_progress_reply,
		r) == 0)
		r->refs++;
}

static void
run_prog_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)ev;
	if (r->prog_dirty && r->state < RS_REPORT)
		run_progress_send(r);
}

static void
run_progress(struct run *r, const cJSON *data)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, "value");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(data, "max");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(data, "node");
	long long    wait;

	if (!cJSON_IsNumber(v) || !cJSON_IsNumber(m))
		return;
	r->prog_value = (long long)v->valuedouble;
	r->prog_max = (long long)m->valuedouble;
	snprintf(r->prog_node, sizeof r->prog_node, "%s",
	    cJSON_IsString(n) ? n->valuestring : "");
	r->prog_dirty = 1;
	wait = r->prog_sent + r->env->cfg->progress_min_ms - clock_mono_ms();
	if (wait <= 0)
		run_progress_send(r);
	else if (!evtimer_pending(r->prog_timer, NULL))
		timer_add_ms(r->prog_timer, wait);
}

static void
run_arm_silence(struct run *r)
{
	timer_add_ms(r->silence, r->env->cfg->silence_timeout_s * 1000);
}

static void
run_fetch_history(struct run *r)
{
	run_set_state(r, RS_HISTORY);
	evtimer_del(r->silence);
	r->req = r->env->comfy->history(r->env->ctx, r->prompt_id, run_history_done, r);
}

/* An execution_error: the code decides what else must happen. */
static void
run_exec_error(struct run *r, const cJSON *data)
{
	char	     msg[RUN_MSG_MAX];
	enum errcode code;

	code = errmap_execution_error(data, msg, sizeof msg);
	if (code == EC_OOM)
		r->env->comfy->free_memory(r->env->ctx);
	if (code == EC_GPU_FAULT)
		r->env->hooks->gpu_fault(r->env->ctx, msg);
	r->submitted = 0; /* it has ended in ComfyUI */
	run_end(r, code, "%s", msg);
}

static void
run_interrupted(struct run *r)
{
	r->submitted = 0;
	run_end(r, EC_INTERNAL, "prompt %s was interrupted outside comfyq",
	    r->prompt_id);
}

/* The socket's events for our prompt. */
void
run_event(struct run *r, const char *type, const cJSON *data)
{
	const cJSON *node;

	if (r->state == RS_SUBMIT) {
		if (strcmp(type, "execution_error") == 0 && !r->early_error)
			r->early_error = cJSON_Duplicate(data, 1);
		else if (strcmp(type, "execution_interrupted") == 0)
			r->early_interrupted = 1;
		else if (strcmp(type, "executing") == 0 &&
		    (node = cJSON_GetObjectItemCaseSensitive(data, "node")) &&
		    cJSON_IsNull(node))
			r->early_done = 1;
		return;
	}
	if (r->state != RS_WAIT && r->state != RS_CHECK)
		return;
	if (r->state == RS_CHECK) {
		/* It is alive after all. */
		run_cancel_req(r);
		run_set_state(r, RS_WAIT);
	}
	r->down_since = 0;
	run_arm_silence(r);
	if (strcmp(type, "progress") == 0)
		run_progress(r, data);
	else if (strcmp(type, "execution_error") == 0)
		run_exec_error(r, data);
	else if (strcmp(type, "execution_interrupted") == 0)
		run_interrupted(r);
	else if (strcmp(type, "executing") == 0 &&
	    (node = cJSON_GetObjectItemCaseSensitive(data, "node")) != NULL &&
	    cJSON_IsNull(node))
		run_fetch_history(r);
}

/* ComfyUI accepted the prompt: act on what the socket already said. */
static void
run_accepted(struct run *r)
{
	run_set_state(r, RS_WAIT);
	run_arm_silence(r);
	if (r->early_error != NULL)
		run_exec_error(r, r->early_error);
	else if (r->early_interrupted)
		run_interrupted(r);
	else if (r->early_done)
		run_fetch_history(r);
}

/* A transport failure talking to ComfyUI while the prompt is out. */
static void
run_unreachable(struct run *r, const char *what, const char *why)
{
	long long now = clock_mono_ms();

	r->env->hooks->suspect(r->env->ctx);
	if (r->down_since == 0)
		r->down_since = now;
	if (now - r->down_since >= r->env->cfg->silence_timeout_s * 1000) {
		run_end(r, EC_BACKEND_UNAVAILABLE,
		    "ComfyUI unreachable for "
		    "%lld s (%s: %s)",
		    (now - r->down_since) / 1000, what, why);
		return;
	}
	run_set_state(r, RS_WAIT);
	timer_add_ms(r->silence, 1000); /* look again soon */
}

static void
run_submit_done(const struct httpc_resp *resp, void *arg)
{
	struct run  *r = arg;
	cJSON	    *root;
	enum errcode code;
	char	     msg[RUN_MSG_MAX];

	r->req = NULL;
	if (resp->fail != HTTPC_OK) {
		r->submitted = 0;
		r->env->hooks->suspect(r->env->ctx);
		run_end(
		    r, EC_BACKEND_UNAVAILABLE, "POST /prompt: %s", resp->err);
		return;
	}
	if (resp->status != 200) {
		r->submitted = 0;
		code = errmap_prompt_refused(
		    resp->status, resp->body, resp->len, msg, sizeof msg);
		run_end(r, code, "%s", msg);
		return;
	}
	/* 200 with node_errors: queued with only its valid outputs. */
	root = cJSON_ParseWithLength(resp->body, resp->len);
	if (root != NULL &&
	    errmap_node_errors(
		cJSON_GetObjectItemCaseSensitive(root, "node_errors"), &code,
		msg, sizeof msg)) {
		cJSON_Delete(root);
		run_end(r, code, "accepted only in part: %s", msg);
		return;
	}
	cJSON_Delete(root);
	log_job(LL_VERBOSE, r->jid, "submitted as prompt %s", r->prompt_id);
	run_accepted(r);
}

static void
run_submit(struct run *r)
{
	uuid4(r->prompt_id);
	r->early_done = r->early_interrupted = 0;
	cJSON_Delete(r->early_error);
	r->early_error = NULL;
	run_set_state(r, RS_SUBMIT);
	r->submitted = 1;
	r->req = r->env->comfy->prompt(r->env->ctx, r->prompt_id, r->graph, run_submit_done, r);
}

/* Reads a /history/<id> reply: the entry, or NULL when there is none. */
static const cJSON *
run_history_get(const cJSON *root, const char *prompt_id)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, prompt_id);

	return (cJSON_IsObject(e) ? e : NULL);
}

static void
run_history_done(const struct httpc_resp *resp, void *arg)
{
	struct run  *r = arg;
	cJSON	    *root;
	const cJSON *e;

	r->req = NULL;
	if (resp->fail != HTTPC_OK || resp->status != 200) {
		run_end(r, EC_BACKEND_UNAVAILABLE, "GET /history: %s",
		    resp->fail != HTTPC_OK ? resp->err : "non-200 reply");
		return;
	}
	root = cJSON_ParseWithLength(resp->body, resp->len);
	if ((e = run_history_get(root, r->prompt_id)) == NULL)
		run_end(r, EC_STALLED,
		    "prompt %s finished but has no history "
		    "entry",
		    r->prompt_id);
	else
		run_history_entry(r, e);
	cJSON_Delete(root);
}

/* The last [event, data] message of a history entry's status. */
static const cJSON *
run_last_message(const cJSON *entry, const char **type)
{
	const cJSON *st, *msgs, *m, *last = NULL;

	st = cJSON_GetObjectItemCaseSensitive(entry, "status");
	msgs = cJSON_GetObjectItemCaseSensitive(st, "messages");
	cJSON_ArrayForEach(
	    m, msgs) if (cJSON_IsArray(m) && cJSON_IsString(m->child)) last = m;
	*type = last ? last->child->valuestring : "";
	return (last && last->child->next ? last->child->next : NULL);
}

/* A finished prompt's history entry: success goes on to its outputs. */
static void
run_history_entry(struct run *r, const cJSON *e)
{
	const cJSON *st, *ss, *data;
	const char  *last;
	char	     err[256];

	r->submitted = 0;
	st = cJSON_GetObjectItemCaseSensitive(e, "status");
	ss = cJSON_GetObjectItemCaseSensitive(st, "status_str");
	data = run_last_message(e, &last);
	if (cJSON_IsString(ss) && strcmp(ss->valuestring, "error") == 0) {
		if (strcmp(last, "execution_error") == 0 && data != NULL)
			run_exec_error(r, data);
		else
			run_interrupted(r);
		return;
	}
	if (outputs_collect(e, &r->outs, err, sizeof err) == -1) {
		run_end(r, EC_OUTPUT_INVALID, "%s", err);
		return;
	}
	if (r->outs.n == 0) {
		run_end(r, EC_OUTPUT_INVALID, "the workflow saved no files");
		return;
	}
	r->records = cJSON_CreateArray();
	r->out_i = 0;
	r->expect.max_pixels = r->env->cfg->max_output_pixels;
	run_set_state(r, RS_FETCH);
	run_fetch_next(r);
}

/* store redis or both: validates an output in memory and stores it. */
static void
run_keep_bytes(struct run *r, const struct out_file *f,
    const unsigned char *body, size_t len, cJSON *rec)
{
	const struct worker_cfg *cfg = r->env->cfg;
	char			 err[512];

	if (output_validate(f, body, len, &r->expect, rec, err, sizeof err) ==
	    -1) {
		run_end(r, EC_OUTPUT_INVALID, "%s: %s", f->filename, err);
		return;
	}
	if (cfg->store == STORE_BOTH &&
	    output_store_dir(cfg->output_dir, r->jid, f, r->out_i, body, len,
		cfg->output_fsync, rec, err, sizeof err) == -1) {
		run_end(r, EC_INTERNAL, "storing %s: %s", f->filename, err);
		return;
	}
	run_store_blob(r, rec, (const char *)body, len);
}

/*
 * One output has come: validate it and store it. With store dir it was
 * written to its temporary file as it arrived and is validated there;
 * otherwise its bytes are in memory, as Redis needs them.
 */
static void
run_view_done(const struct httpc_resp *resp, void *arg)
{
	struct run		*r = arg;
	const struct out_file	*f = &r->outs.v[r->out_i];
	const struct worker_cfg *cfg = r->env->cfg;
	cJSON			*rec;
	char			 err[512];

	r->req = NULL;
	if (resp->fail == HTTPC_TOO_BIG) {
		run_end(r, EC_OUTPUT_INVALID, "%s is over %lld bytes",
		    f->filename, cfg->max_output_bytes);
		return;
	}
	if (resp->fail == HTTPC_WRITE) {
		run_end(
		    r, EC_INTERNAL, "storing %s: %s", f->filename, resp->err);
		return;
	}
	if (resp->fail != HTTPC_OK) {
		run_end(r, EC_BACKEND_UNAVAILABLE, "GET /view %s: %s",
		    f->filename, resp->err);
		return;
	}
	if (resp->status != 200) {
		run_end(r, EC_OUTPUT_INVALID, "GET /view %s: HTTP %ld",
		    f->filename, resp->status);
		return;
	}
	rec = cJSON_CreateObject();
	cJSON_AddItemToArray(r->records, rec);
	if (cfg->store != STORE_DIR) {
		run_keep_bytes(
		    r, f, (const unsigned char *)resp->body, resp->len, rec);
		return;
	}
	if (output_tmp_validate(&r->tmp, f, &r->expect, rec, err, sizeof err) ==
	    -1) {
		output_tmp_discard(&r->tmp);
		run_end(r, EC_OUTPUT_INVALID, "%s: %s", f->filename, err);
		return;
	}
	if (output_tmp_commit(
		&r->tmp, cfg->output_fsync, rec, err, sizeof err) == -1) {
		run_end(r, EC_INTERNAL, "storing %s: %s", f->filename, err);
		return;
	}
	r->out_i++;
	run_fetch_next(r);
}

static void
run_blob_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct run *r = arg;
	redisReply *rep = reply;

	(void)ac;
	if (r->state == RS_FETCH) {
		if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			run_end(r, EC_INTERNAL,
			    "storing output %d in Redis: %s", r->out_i,
			    rep ? rep->str : "connection lost");
		else {
			r->out_i++;
			run_fetch_next(r);
		}
	}
	run_unref(r);
}

/* Stores an output as a Redis string with a TTL, for hosts whose disk the
 * producer cannot reach; rec gets its key. */
static void
run_store_blob(struct run *r, cJSON *rec, const char *data, size_t len)
{
	char key[256];

	snprintf(
	    key, sizeof key, "%sblob:%s:%d", r->env->prefix, r->jid, r->out_i);
	cJSON_AddStringToObject(rec, "key", key);
	if (r->env->redis->store_blob(r->env->ctx, key, data, len,
		r->env->cfg->blob_ttl_s * 1000, run_blob_reply, r) == 0)
		r->refs++;
	else
		run_end(r, EC_INTERNAL,
		    "storing output %d in Redis: not "
		    "connected",
		    r->out_i);
}

/*
 * Fetches the next output, or reports the job once all are stored (the
 * job's folder flushed first when output-fsync is set). With store dir an
 * output goes straight into its temporary file: nothing else needs its
 * bytes in memory.
 */
static void
run_fetch_next(struct run *r)
{
	const struct worker_cfg *cfg = r->env->cfg;
	const struct out_file	*f;
	char			 err[512];

	if (r->out_i == r->outs.n) {
		if (cfg->store != STORE_REDIS && cfg->output_fsync &&
		    output_sync_dir(cfg->output_dir, r->jid, err, sizeof err) ==
			-1) {
			run_end(r, EC_INTERNAL, "storing outputs: %s", err);
			return;
		}
		run_begin_report(r, REPORT_COMPLETE);
		return;
	}
	f = &r->outs.v[r->out_i];
	if (cfg->store == STORE_DIR &&
	    output_tmp_open(&r->tmp, cfg->output_dir, r->jid, f, r->out_i, err,
		sizeof err) == -1) {
		run_end(r, EC_INTERNAL, "storing %s: %s", f->filename, err);
		return;
	}
	r->req = r->env->comfy->view(r->env->ctx, f->filename, f->subfolder, f->type,
	    r->tmp.fd, (size_t)cfg->max_output_bytes, cfg->output_timeout_ms,
	    run_view_done, r);
}

/* Whether /queue lists prompt id as running or pending. */
static int
run_in_queue(const cJSON *q, const char *prompt_id)
{
	static const char *const lists[] = { "queue_running", "queue_pending" };
	const cJSON		*l, *item, *id;
	size_t			 i;

	for (i = 0; i < 2; i++) {
		l = cJSON_GetObjectItemCaseSensitive(q, lists[i]);
		cJSON_ArrayForEach(item, l)
		{
			id = cJSON_GetArrayItem(item, 1);
			if (cJSON_IsString(id) &&
			    strcmp(id->valuestring, prompt_id) == 0)
				return (1);
		}
	}
	return (0);
}

static void
run_check_queue_done(const struct httpc_resp *resp, void *arg)
{
	struct run *r = arg;
	cJSON	   *q;
	int	    present;

	r->req = NULL;
	if (resp->fail != HTTPC_OK || resp->status != 200) {
		run_unreachable(r, "GET /queue",
		    resp->fail != HTTPC_OK ? resp->err : "non-200 reply");
		return;
	}
	q = cJSON_ParseWithLength(resp->body, resp->len);
	present = run_in_queue(q, r->prompt_id);
	cJSON_Delete(q);
	r->down_since = 0;
	if (present) {
		log_job(LL_DEBUG, r->jid,
		    "prompt %s is still queued or "
		    "running",
		    r->prompt_id);
		r->reconcile = 0;
		run_set_state(r, RS_WAIT);
		run_arm_silence(r);
		return;
	}
	/* In neither the queue nor the history: ComfyUI lost it. */
	r->submitted = 0;
	if (!r->reconcile) {
		run_end(r, EC_STALLED,
		    "ComfyUI lost prompt %s: silent for "
		    "%lld s and in neither its queue nor its history",
		    r->prompt_id, r->env->cfg->silence_timeout_s);
		return;
	}
	r->reconcile = 0;
	if (r->resubmits >= r->env->cfg->max_resubmits) {
		run_end(r, EC_BACKEND_UNAVAILABLE,
		    "ComfyUI lost the prompt "
		    "%d times (restarts?)",
		    r->resubmits + 1);
		return;
	}
	r->resubmits++;
	log_job(LL_NOTICE, r->jid,
	    "ComfyUI lost prompt %s (restarted?); "
	    "submitting again",
	    r->prompt_id);
	run_submit(r);
}

static void
run_check_history_done(const struct httpc_resp *resp, void *arg)
{
	struct run  *r = arg;
	cJSON	    *root;
	const cJSON *e;

	r->req = NULL;
	if (resp->fail != HTTPC_OK || resp->status != 200) {
		run_unreachable(r, "GET /history",
		    resp->fail != HTTPC_OK ? resp->err : "non-200 reply");
		return;
	}
	root = cJSON_ParseWithLength(resp->body, resp->len);
	if ((e = run_history_get(root, r->prompt_id)) != NULL) {
		log_job(LL_VERBOSE, r->jid,
		    "prompt %s finished while we did "
		    "not hear",
		    r->prompt_id);
		run_history_entry(r, e);
	} else
		r->req = r->env->comfy->queue(r->env->ctx, run_check_queue_done, r);
	cJSON_Delete(root);
}

/* Asks ComfyUI where the prompt is: finished, still there, or lost. */
static void
run_check(struct run *r)
{
	run_set_state(r, RS_CHECK);
	evtimer_del(r->silence);
	r->req =
	    r->env->comfy->history(r->env->ctx, r->prompt_id, run_check_history_done, r);
}

static void
run_silence_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)ev;
	if (r->state == RS_WAIT)
		run_check(r);
}

static void
run_wall_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)ev;
	if (r->asked_s > 0)
		run_end(r, EC_TIMEOUT,
		    "no result within %lld s (the worker's job-timeout-s; the "
		    "job asked for %lld s)",
		    r->timeout_ms / 1000, r->asked_s);
	else
		run_end(r, EC_TIMEOUT, "no result within %lld s",
		    r->timeout_ms / 1000);
}

/* The socket came back (up) or was lost: reconcile what is out. */
void
run_link(struct run *r, int up)
{
	if (!up)
		return; /* the silence timer covers the gap */
	if (r->state == RS_WAIT) {
		r->reconcile = 1;
		run_check(r);
	} else if (r->state == RS_CHECK)
		r->reconcile = 1;
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

/*
 * Inputs. Each image is readied on the thread pool (the work may download,
 * decode and run Canny: nothing of it may block the loop) and kept; once
 * the run holds its slot each is uploaded to ComfyUI, whose answer names
 * the file LoadImage must use. The run waits for the pool's callback even
 * when it has ended meanwhile (refs).
 */
struct run_prep {
	struct run	      *r;
	const struct wf_input *in;
	struct inputs_opts     opts;
	unsigned char	      *bytes;
	size_t		       len;
	int		       rc;
	char		       err[512];
};

static void
run_prep_work(void *arg)
{
	struct run_prep *p = arg;

	p->rc = wf_input_prepare(p->in, &p->opts, &img_limits_default,
	    &p->bytes, &p->len, p->err, sizeof p->err);
}

/* Claimed without a slot: the worker takes one for it (worker.c). */
static void
run_await_slot(struct run *r)
{
	run_set_state(r, RS_AWAIT_SLOT);
	log_job(LL_VERBOSE, r->jid, "%s; waiting for a slot",
	    r->inputs_ready ? "inputs ready" : "claimed without a slot");
	r->env->hooks->wants_slot(r->env->ctx);
}

static void
run_prep_done(void *arg)
{
	struct run_prep *p = arg;
	struct run	*r = p->r;

	if (r->state != RS_INPUTS || r->env->stopped)
		free(p->bytes); /* ended meanwhile */
	else if (p->rc == -1) {
		free(p->bytes);
		run_end(
		    r, EC_INVALID_INPUT, "%s", p->err); /* names the field */
	} else {
		r->in[r->in_i].bytes = p->bytes;
		r->in[r->in_i].len = p->len;
		r->in_i++;
		run_inputs_next(r);
	}
	free(p);
	run_unref(r);
}

static void
run_inputs_next(struct run *r)
{
	struct run_prep *p;

	if (r->state != RS_INPUTS)
		run_set_state(r, RS_INPUTS);
	if (r->in_i == wf_job_ninputs(r->wf)) {
		r->inputs_ready = 1;
		if (r->has_slot)
			run_upload_next(r);
		else
			run_await_slot(r);
		return;
	}
	p = xcalloc(1, sizeof *p);
	p->r = r;
	p->in = wf_job_input(r->wf, r->in_i);
	p->opts = *r->env->inputs;
	r->refs++;
	if (tpool_submit(r->env->pool, run_prep_work, run_prep_done, p) ==
	    -1) {
		r->refs--;
		free(p);
		run_end(r, EC_INTERNAL, "the thread pool refused work");
	}
}

/* The worker took a slot for this run (acquire): on to ComfyUI. */
void
run_slot_granted(struct run *r)
{
	if (r->state != RS_AWAIT_SLOT)
		return;
	r->has_slot = 1;
	log_job(LL_VERBOSE, r->jid, "slot taken");
	if (r->inputs_ready)
		run_upload_next(r);
	else
		run_inputs_next(r);
}

static void
run_upload_done(const struct httpc_resp *resp, void *arg)
{
	struct run	*r = arg;
	struct wf_input *in = wf_job_input(r->wf, r->up_i);
	cJSON		*j;
	const cJSON	*name, *sub;

	r->req = NULL;
	if (resp->fail != HTTPC_OK) {
		r->env->hooks->suspect(r->env->ctx);
		run_end(r, EC_BACKEND_UNAVAILABLE, "POST /upload/image: %s",
		    resp->err);
		return;
	}
	j = cJSON_ParseWithLength(resp->body, resp->len);
	name = cJSON_GetObjectItemCaseSensitive(j, "name");
	sub = cJSON_GetObjectItemCaseSensitive(j, "subfolder");
	if (resp->status != 200 || !cJSON_IsString(name)) {
		cJSON_Delete(j);
		run_end(r,
		    resp->status >= 500 ? EC_BACKEND_UNAVAILABLE
					: EC_INVALID_INPUT,
		    "%s: ComfyUI refused the upload (HTTP "
		    "%ld)",
		    in->field, resp->status);
		return;
	}
	snprintf(in->upload, sizeof in->upload, "%s%s%s",
	    cJSON_IsString(sub) ? sub->valuestring : "",
	    cJSON_IsString(sub) && *sub->valuestring ? "/" : "",
	    name->valuestring);
	cJSON_Delete(j);
	log_job(LL_VERBOSE, r->jid, "%s uploaded as %s", in->field, in->upload);
	r->up_i++;
	run_upload_next(r);
}

static void run_render(struct run *);

static void
run_upload_next(struct run *r)
{
	struct run_input *d;
	char		  sub[128], name[WF_NAME_MAX + 8];

	if (r->state != RS_UPLOAD)
		run_set_state(r, RS_UPLOAD);
	if (r->up_i == wf_job_ninputs(r->wf)) {
		run_free_inputs(r);
		run_render(r);
		return;
	}
	d = &r->in[r->up_i];
	snprintf(sub, sizeof sub, "comfyq/%s", r->jid);
	snprintf(
	    name, sizeof name, "%s.png", wf_job_input(r->wf, r->up_i)->name);
	r->req = r->env->comfy->upload(r->env->ctx, name, d->bytes, d->len, sub, run_upload_done, r);
	free(d->bytes); /* the request has its own copy */
	d->bytes = NULL;
}

static void
run_files_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct run *r = arg;
	redisReply *rep = reply;

	(void)ac;
	if (r->state == RS_RENDER) {
		if (rq_reply_is_status(rep, "STALE"))
			run_drop(r, "lease lost before the prompt was sent");
		else if (rep == NULL || rep->type == REDIS_REPLY_ERROR)
			run_end(r, EC_INTERNAL, "recording the job's files: %s",
			    rep ? rep->str : "connection lost");
		else
			run_submit(r);
	}
	run_unref(r);
}

/*
 * Records the files the graph reads (job_files), so the janitor's file
 * cleanup keeps them while the job runs; then submits. A name that would
 * leave ComfyUI's folder refuses the job.
 */
static void
run_record_files(struct run *r)
{
	cJSON *files;
	char   err[RUN_MSG_MAX], *text;
	int    rc;

	if ((files = jobfiles_collect(r->graph,
		 r->env->hooks->objinfo(r->env->ctx), err, sizeof err)) ==
	    NULL) {
		run_end(r, EC_INVALID_INPUT, "%s", err);
		return;
	}
	if (cJSON_GetArraySize(files) == 0) {
		cJSON_Delete(files);
		run_submit(r);
		return;
	}
	text = cJSON_PrintUnformatted(files);
	cJSON_Delete(files);
	log_job(LL_VERBOSE, r->jid, "reads %s", text);
	rc = r->env->redis->job_files(
	    r->env->ctx, r->jid, r->fence, text, run_files_reply, r);
	cJSON_free(text);
	if (rc == 0)
		r->refs++;
	else
		run_end(r, EC_INTERNAL,
		    "recording the job's files: not connected to Redis");
}

static void
run_objinfo_done(const struct httpc_resp *resp, void *arg)
{
	struct run *r = arg;
	cJSON	   *info;

	r->req = NULL;
	if (resp->fail != HTTPC_OK || resp->status != 200 ||
	    (info = cJSON_ParseWithLength(resp->body, resp->len)) == NULL) {
		if (resp->fail != HTTPC_OK)
			r->env->hooks->suspect(r->env->ctx);
		run_end(r, EC_BACKEND_UNAVAILABLE, "GET /object_info: %s",
		    resp->fail != HTTPC_OK ? resp->err : "no usable reply");
		return;
	}
	r->env->hooks->set_objinfo(r->env->ctx, info);
	r->objinfo_fresh = 1;
	run_check_names(r);
}

/*
 * The graph against what ComfyUI has: links and classes, then every model
 * file named. A miss on a cache older than this run fetches it again once.
 */
static void
run_check_names(struct run *r)
{
	const cJSON *info = r->env->hooks->objinfo(r->env->ctx);
	char	     err[RUN_MSG_MAX];

	if (info == NULL) {
		r->req = r->env->comfy->object_info(r->env->ctx, run_objinfo_done, r);
		return;
	}
	if (graph_validate(r->graph, info, err, sizeof err) == -1 ||
	    objinfo_check(r->graph, info, err, sizeof err) == -1) {
		if (!r->objinfo_fresh) {
			log_job(LL_VERBOSE, r->jid, "%s; asking ComfyUI again",
			    err);
			r->req =
			    r->env->comfy->object_info(r->env->ctx, run_objinfo_done, r);
			return;
		}
		run_end(r, EC_INVALID_INPUT, "%s", err);
		return;
	}
	run_record_files(r);
}

/* Every input is uploaded: render the graph and learn what to expect. */
static void
run_render(struct run *r)
{
	const struct wf_expect *e;
	char			prefix[160], err[RUN_MSG_MAX];

	run_set_state(r, RS_RENDER);
	snprintf(
	    prefix, sizeof prefix, "comfyq/%s/a%d/out", r->jid, r->attempt);
	if ((r->graph = wf_job_render(
		 r->wf, r->jid, prefix, 0, err, sizeof err)) == NULL) {
		run_end(r, EC_INVALID_INPUT, "%s", err);
		return;
	}
	e = wf_job_expect(r->wf);
	r->expect.width = e->kind == WF_KIND_IMAGE ? e->width : 0;
	r->expect.height = e->kind == WF_KIND_IMAGE ? e->height : 0;
	r->expect.duration_s = e->kind == WF_KIND_VIDEO ? e->duration_s : 0;
	r->expect.allow_blank = e->uniform;
	run_check_names(r);
}

/* At exit, after the Redis connections are closed: free what is left. */
void
run_abandon(struct run *r)
{
	log_job(LL_WARNING, r->jid,
	    "abandoned at exit in state %s; its lease "
	    "will lapse",
	    run_state_names[r->state]);
	run_free(r);
}

/*
 * Starts a claimed job; slot says whether the claim took a slot with it.
 * The wall clock is min(the job's timeout_s, job-timeout-s), from now. The
 * run reports its own end; it may already have ended (bad spec) when this
 * returns.
 */
struct run *
run_start(const struct run_env *env, const char *jid, const char *fence,
    int attempt, const char *spec, size_t spec_len, long long timeout_s,
    int slot)
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
	if ((r->wf = wf_job_new(env->workflows, &r->spec, &opts, &code_name, err,
		 sizeof err)) == NULL) {
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
