/*
 * A run's middle stages (run.c has the whole machine): SUBMIT posts the
 * prompt under our own id, WAIT follows its socket events, and CHECK asks
 * /history and /queue where a silent prompt is, after a reconnect or when
 * silence-timeout-s passes: finished (on to run_fetch.c), still there
 * (wait on), or lost (stalled, or submitted again after a restart). Events
 * that come before the POST's reply are kept and acted on once ComfyUI
 * has accepted the prompt.
 */
#include <string.h>

#include <event2/event.h>

#include "errmap.h"
#include "log.h"
#include "run_int.h"
#include "settings.h"
#include "util.h"

static void run_submit_done(const struct httpc_resp *, void *);
static void run_accepted(struct run *);
static void run_arm_silence(struct run *);
static void run_check(struct run *);
static void run_check_history_done(const struct httpc_resp *, void *);
static void run_check_queue_done(const struct httpc_resp *, void *);
static int  run_in_queue(const cJSON *, const char *);
static void run_behind_stranger(struct run *, const cJSON *);
static void run_unreachable(struct run *, const char *, const char *);

void
run_submit(struct run *r)
{
	uuid4(r->prompt_id);
	r->early_done = r->early_interrupted = 0;
	cJSON_Delete(r->early_error);
	r->early_error = NULL;
	run_set_state(r, RS_SUBMIT);
	r->submitted = 1;
	r->req = r->env->comfy->prompt(
	    r->env->ctx, r->prompt_id, r->graph, run_submit_done, r);
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

static void
run_arm_silence(struct run *r)
{
	timer_add_ms(r->silence, r->env->cfg->silence_timeout_s * 1000);
}

/* The socket's events for our prompt. */
void
run_event(struct run *r, const char *type, const cJSON *data)
{
	const cJSON *node;

	run_nodes_event(r, type, data);
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

/* An execution_error: the code decides what else must happen. */
void
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

void
run_interrupted(struct run *r)
{
	r->submitted = 0;
	run_end(r, EC_INTERNAL, "prompt %s was interrupted outside comfyq",
	    r->prompt_id);
}

void
run_silence_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)ev;
	if (r->state == RS_WAIT)
		run_check(r);
}

/* Asks ComfyUI where the prompt is: finished, still there, or lost. */
static void
run_check(struct run *r)
{
	run_set_state(r, RS_CHECK);
	evtimer_del(r->silence);
	r->req = r->env->comfy->history(
	    r->env->ctx, r->prompt_id, run_check_history_done, r);
}

static void
run_check_history_done(const struct httpc_resp *resp, void *arg)
{
	struct run *r = arg;
	cJSON	   *e;

	r->req = NULL;
	if (resp->fail != HTTPC_OK || resp->status != 200) {
		run_unreachable(r, "GET /history",
		    resp->fail != HTTPC_OK ? resp->err : "non-200 reply");
		return;
	}
	if ((e = run_history_parse(resp->body, resp->len, r->prompt_id)) !=
	    NULL) {
		log_job(LL_VERBOSE, r->jid,
		    "prompt %s finished while we did not hear", r->prompt_id);
		run_history_entry(r, e);
	} else
		r->req =
		    r->env->comfy->queue(r->env->ctx, run_check_queue_done, r);
	cJSON_Delete(e);
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
	if (present == 2)
		run_behind_stranger(r, q);
	cJSON_Delete(q);
	r->down_since = 0;
	if (present) {
		log_job(LL_DEBUG, r->jid,
		    "prompt %s is still queued or running", r->prompt_id);
		r->reconcile = 0;
		run_set_state(r, RS_WAIT);
		run_arm_silence(r);
		return;
	}
	/* In neither the queue nor the history: ComfyUI lost it. */
	r->submitted = 0;
	if (!r->reconcile) {
		run_end(r, EC_STALLED,
		    "ComfyUI lost prompt %s: silent for %lld s and in neither its queue nor its history",
		    r->prompt_id, r->env->cfg->silence_timeout_s);
		return;
	}
	r->reconcile = 0;
	if (r->resubmits >= r->env->cfg->max_resubmits) {
		run_end(r, EC_BACKEND_UNAVAILABLE,
		    "ComfyUI lost the prompt %d times (restarts?)",
		    r->resubmits + 1);
		return;
	}
	r->resubmits++;
	log_job(LL_NOTICE, r->jid,
	    "ComfyUI lost prompt %s (restarted?); submitting again",
	    r->prompt_id);
	run_submit(r);
}

/* Whether /queue lists prompt id: 1 running, 2 pending, 0 neither. */
static int
run_in_queue(const cJSON *q, const char *prompt_id)
{
	static const char *const lists[] = { "queue_running", "queue_pending" };
	const cJSON		*l, *item, *id;
	size_t			 i;

	for (i = 0; i < 2; i++) {
		l = cJSON_GetObjectItemCaseSensitive(q, lists[i]);
		cJSON_ArrayForEach(item, l) {
			id = cJSON_GetArrayItem(item, 1);
			if (cJSON_IsString(id) &&
			    strcmp(id->valuestring, prompt_id) == 0)
				return ((int)i + 1);
		}
	}
	return (0);
}

/*
 * Our prompt is pending: the prompts ComfyUI runs meanwhile that another
 * client sent (an entry is [number, prompt_id, prompt, extra_data with
 * client_id, outputs]) go to the owner, which interrupts those no live
 * worker owns (run_hooks.stranger). A prompt of ours or without a client
 * is left alone.
 */
static void
run_behind_stranger(struct run *r, const cJSON *q)
{
	const cJSON *item, *id, *extra, *client;

	if (r->env->hooks->stranger == NULL)
		return;
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(
	    q, "queue_running")) {
		id = cJSON_GetArrayItem(item, 1);
		extra = cJSON_GetArrayItem(item, 3);
		client = cJSON_GetObjectItemCaseSensitive(extra, "client_id");
		if (cJSON_IsString(id) && cJSON_IsString(client) &&
		    *client->valuestring != '\0')
			r->env->hooks->stranger(r->env->ctx, id->valuestring,
			    client->valuestring);
	}
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
		    "ComfyUI unreachable for %lld s (%s: %s)",
		    (now - r->down_since) / 1000, what, why);
		return;
	}
	run_set_state(r, RS_WAIT);
	timer_add_ms(r->silence, 1000); /* look again soon */
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
