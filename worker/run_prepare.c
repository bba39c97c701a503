/*
 * A run's first stages (run.c has the whole machine): INPUTS readies each
 * input image on the thread pool, AWAIT_SLOT waits for the worker to take
 * a slot for a job claimed without one, UPLOAD sends the images to
 * ComfyUI, and RENDER renders the graph, checks its names against
 * ComfyUI's /object_info and records the files it reads (job_files)
 * before the prompt is submitted (run_submit.c).
 */
#include <stdio.h>
#include <stdlib.h>

#include "graph.h"
#include "jobfiles.h"
#include "log.h"
#include "objinfo.h"
#include "rqfn.h"
#include "run_int.h"
#include "tpool.h"
#include "xmalloc.h"

static void run_upload_next(struct run *);
static void run_render(struct run *);
static void run_check_names(struct run *);
static void run_record_files(struct run *);
static void run_upload_done(const struct httpc_resp *, void *);
static void run_objinfo_done(const struct httpc_resp *, void *);
static void run_files_reply(redisAsyncContext *, void *, void *);

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

void
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
	if (tpool_submit(r->env->pool, run_prep_work, run_prep_done, p) == -1) {
		r->refs--;
		free(p);
		run_end(r, EC_INTERNAL, "the thread pool refused work");
	}
}

/* Claimed without a slot: the worker takes one for it (worker.c). */
void
run_await_slot(struct run *r)
{
	run_set_state(r, RS_AWAIT_SLOT);
	log_job(LL_VERBOSE, r->jid, "%s; waiting for a slot",
	    r->inputs_ready ? "inputs ready" : "claimed without a slot");
	r->env->hooks->wants_slot(r->env->ctx);
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
	r->req = r->env->comfy->upload(
	    r->env->ctx, name, d->bytes, d->len, sub, run_upload_done, r);
	free(d->bytes); /* the request has its own copy */
	d->bytes = NULL;
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
		    "%s: ComfyUI refused the upload (HTTP %ld)", in->field,
		    resp->status);
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
		r->req = r->env->comfy->object_info(
		    r->env->ctx, run_objinfo_done, r);
		return;
	}
	if (graph_validate(r->graph, info, err, sizeof err) == -1 ||
	    objinfo_check(r->graph, info, err, sizeof err) == -1) {
		if (!r->objinfo_fresh) {
			log_job(LL_VERBOSE, r->jid, "%s; asking ComfyUI again",
			    err);
			r->req = r->env->comfy->object_info(
			    r->env->ctx, run_objinfo_done, r);
			return;
		}
		run_end(r, EC_INVALID_INPUT, "%s", err);
		return;
	}
	run_record_files(r);
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
run_files_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct run *r = arg;
	char	    err[256];
	int	    stale;

	(void)ac;
	if (r->state == RS_RENDER) {
		if (reply == NULL)
			snprintf(err, sizeof err, "connection lost");
		if (reply == NULL ||
		    rqfn_job_files_reply(reply, &stale, err, sizeof err) == -1)
			run_end(r, EC_INTERNAL, "recording the job's files: %s",
			    err);
		else if (stale)
			run_drop(r, "lease lost before the prompt was sent");
		else
			run_submit(r);
	}
	run_unref(r);
}
