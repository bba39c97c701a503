/*
 * The fake owner of a run (see fakerun.h). Each request the run makes is
 * kept in f->calls, in order; a test answers the oldest open one of a kind
 * (fake_http_answer, fake_redis_answer, fake_redis_answer_tag), exactly as
 * the real client would call back, or lets the run cancel it. A request the run cancelled is
 * never answered; answering one that is not there fails the test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "fakerun.h"
#include "template.h"
#include "tpool.h"
#include "unit.h"
#include "xmalloc.h"

static struct fake_call *
fake_add(
    struct fake_run *f, enum fake_kind kind, const char *arg, const char *text)
{
	struct fake_call *c;

	if (f->ncalls == FAKE_MAX)
		unit_fail(__FILE__, __LINE__, "more than %d calls", FAKE_MAX);
	c = &f->calls[f->ncalls++];
	memset(c, 0, sizeof *c);
	c->kind = kind;
	snprintf(c->arg, sizeof c->arg, "%s", arg != NULL ? arg : "");
	c->text = text != NULL ? xstrdup(text) : NULL;
	return (c);
}

/* A request's handle is its place in f->calls. */
static struct httpc_req *
fake_http(struct fake_run *f, enum fake_kind kind, const char *arg, httpc_cb cb,
    void *cb_arg)
{
	struct fake_call *c = fake_add(f, kind, arg, NULL);

	c->http_cb = cb;
	c->cb_arg = cb_arg;
	return ((struct httpc_req *)c);
}

static int
fake_redis(struct fake_call *c, redisCallbackFn *cb, void *cb_arg)
{
	c->redis_cb = cb;
	c->cb_arg = cb_arg;
	return (0);
}

static int
fake_job_files(void *ctx, const char *jid, const char *fence, const char *files,
    redisCallbackFn *cb, void *arg)
{
	(void)fence;
	return (fake_redis(fake_add(ctx, FK_JOB_FILES, jid, files), cb, arg));
}

static int
fake_progress(void *ctx, const char *jid, const char *fence, long long value,
    long long max, const char *node, const char *nodes, redisCallbackFn *cb,
    void *arg)
{
	struct fake_call *c = fake_add(ctx, FK_PROGRESS, jid, node);

	(void)fence;
	c->value = value;
	c->max = max;
	c->nodes = nodes != NULL ? xstrdup(nodes) : NULL;
	return (fake_redis(c, cb, arg));
}

static int
fake_complete(void *ctx, const char *jid, const char *fence,
    const char *records, const char *nodes, redisCallbackFn *cb, void *arg)
{
	struct fake_call *c = fake_add(ctx, FK_COMPLETE, jid, records);

	(void)fence;
	c->nodes = nodes != NULL ? xstrdup(nodes) : NULL;
	return (fake_redis(c, cb, arg));
}

static int
fake_fail(void *ctx, const char *jid, const char *fence, enum errcode code,
    const char *msg, int retryable, const char *nodes, redisCallbackFn *cb,
    void *arg)
{
	struct fake_call *c = fake_add(ctx, FK_FAIL, jid, msg);

	(void)fence;
	c->nodes = nodes != NULL ? xstrdup(nodes) : NULL;
	c->code = code;
	c->retryable = retryable;
	return (fake_redis(c, cb, arg));
}

static int
fake_release(void *ctx, const char *jid, const char *fence, const char *why,
    redisCallbackFn *cb, void *arg)
{
	(void)fence;
	return (fake_redis(fake_add(ctx, FK_RELEASE, jid, why), cb, arg));
}

static int
fake_store_blob(void *ctx, const char *key, const void *data, size_t len,
    long long ttl_ms, redisCallbackFn *cb, void *arg)
{
	struct fake_call *c = fake_add(ctx, FK_BLOB, key, NULL);

	(void)data;
	c->value = (long long)len;
	c->max = ttl_ms;
	return (fake_redis(c, cb, arg));
}

static const struct run_redis fake_redis_ops = {
	.job_files = fake_job_files,
	.progress = fake_progress,
	.complete = fake_complete,
	.fail = fake_fail,
	.release = fake_release,
	.store_blob = fake_store_blob,
};

static struct httpc_req *
fake_prompt(void *ctx, const char *prompt_id, const cJSON *graph, httpc_cb cb,
    void *arg)
{
	struct httpc_req *r = fake_http(ctx, FK_PROMPT, prompt_id, cb, arg);
	char		 *text = cJSON_PrintUnformatted(graph);

	((struct fake_call *)r)->text = xstrdup(text);
	cJSON_free(text);
	return (r);
}

static struct httpc_req *
fake_history(void *ctx, const char *prompt_id, httpc_cb cb, void *arg)
{
	return (fake_http(ctx, FK_HISTORY, prompt_id, cb, arg));
}

static struct httpc_req *
fake_queue(void *ctx, httpc_cb cb, void *arg)
{
	return (fake_http(ctx, FK_QUEUE, NULL, cb, arg));
}

static struct httpc_req *
fake_view(void *ctx, const char *filename, const char *subfolder,
    const char *type, int fd, size_t max_bytes, long timeout_ms, httpc_cb cb,
    void *arg)
{
	(void)subfolder;
	(void)type;
	(void)fd;
	(void)max_bytes;
	(void)timeout_ms;
	return (fake_http(ctx, FK_VIEW, filename, cb, arg));
}

static struct httpc_req *
fake_upload(void *ctx, const char *name, const void *data, size_t len,
    const char *subfolder, httpc_cb cb, void *arg)
{
	struct httpc_req *r = fake_http(ctx, FK_UPLOAD, name, cb, arg);

	(void)data;
	(void)subfolder;
	((struct fake_call *)r)->value = (long long)len;
	return (r);
}

static struct httpc_req *
fake_object_info(void *ctx, httpc_cb cb, void *arg)
{
	return (fake_http(ctx, FK_OBJINFO, NULL, cb, arg));
}

static void
fake_interrupt(void *ctx, const char *prompt_id)
{
	struct fake_run *f = ctx;

	f->interrupts++;
	snprintf(f->interrupted, sizeof f->interrupted, "%s", prompt_id);
}

static void
fake_free_memory(void *ctx)
{
	((struct fake_run *)ctx)->free_memory++;
}

static void
fake_cancel(void *ctx, struct httpc_req *req)
{
	struct fake_call *c = (struct fake_call *)req;

	(void)ctx;
	if (c == NULL)
		return;
	if (c->answered)
		unit_fail(__FILE__, __LINE__, "cancel of an answered request");
	c->cancelled = 1;
}

static const struct run_comfy fake_comfy_ops = {
	.prompt = fake_prompt,
	.history = fake_history,
	.queue = fake_queue,
	.view = fake_view,
	.upload = fake_upload,
	.object_info = fake_object_info,
	.interrupt = fake_interrupt,
	.free_memory = fake_free_memory,
	.cancel = fake_cancel,
};

static void
fake_done(void *ctx, struct run *r)
{
	(void)r;
	((struct fake_run *)ctx)->done++;
}

static void
fake_wants_slot(void *ctx)
{
	((struct fake_run *)ctx)->wants_slot++;
}

static void
fake_suspect(void *ctx)
{
	((struct fake_run *)ctx)->suspect++;
}

static void
fake_gpu_fault(void *ctx, const char *why)
{
	(void)why;
	((struct fake_run *)ctx)->gpu_faults++;
}

static const cJSON *
fake_objinfo(void *ctx)
{
	return (((struct fake_run *)ctx)->objinfo);
}

static void
fake_set_objinfo(void *ctx, cJSON *info)
{
	struct fake_run *f = ctx;

	cJSON_Delete(f->objinfo);
	f->objinfo = info;
}

static const struct run_hooks fake_hooks = {
	.done = fake_done,
	.wants_slot = fake_wants_slot,
	.suspect = fake_suspect,
	.gpu_fault = fake_gpu_fault,
	.objinfo = fake_objinfo,
	.set_objinfo = fake_set_objinfo,
};

/* Settings as main.c's defaults have them, outputs kept in Redis. */
void
fake_run_init(struct fake_run *f)
{
	char err[512];

	memset(f, 0, sizeof *f);
	f->base = event_base_new();
	f->pool = tpool_new(f->base, 1);
	if ((f->workflows = wf_load(COMFYQ_WORKFLOWS_DIR, err, sizeof err)) ==
	    NULL)
		unit_fail(__FILE__, __LINE__, "%s", err);
	f->inputs = inputs_opts_default;
	f->objinfo = unit_json("object_info.json");
	f->cfg.job_timeout_s = 600;
	f->cfg.silence_timeout_s = 60;
	f->cfg.progress_min_ms = 0;
	f->cfg.retry_base_ms = 2000;
	f->cfg.retry_max_ms = 300000;
	f->cfg.max_resubmits = 2;
	f->cfg.store = STORE_REDIS;
	f->cfg.blob_ttl_s = 3600;
	f->cfg.max_output_bytes = 64 << 20;
	f->cfg.max_output_pixels = 1 << 24;
	f->cfg.output_timeout_ms = 30000;
	f->cfg.prefetch = 1;
	f->cfg.lora_weight_scale = 1;
	f->env.base = f->base;
	f->env.cfg = &f->cfg;
	f->env.prefix = "cq:{t}:";
	f->env.pool = f->pool;
	f->env.sync_pool = f->pool;
	f->env.workflows = f->workflows;
	f->env.cn = NULL;
	f->env.inputs = &f->inputs;
	f->env.redis = &fake_redis_ops;
	f->env.comfy = &fake_comfy_ops;
	f->env.hooks = &fake_hooks;
	f->env.ctx = f;
}

void
fake_run_free(struct fake_run *f)
{
	int i;

	tpool_free(f->pool);
	for (i = 0; i < f->ncalls; i++) {
		free(f->calls[i].text);
		free(f->calls[i].nodes);
	}
	wf_registry_free(f->workflows);
	cJSON_Delete(f->objinfo);
	event_base_free(f->base);
}

int
fake_count(const struct fake_run *f, enum fake_kind kind)
{
	int i, n = 0;

	for (i = 0; i < f->ncalls; i++)
		n += f->calls[i].kind == kind;
	return (n);
}

struct fake_call *
fake_last(struct fake_run *f, enum fake_kind kind)
{
	int i;

	for (i = f->ncalls - 1; i >= 0; i--)
		if (f->calls[i].kind == kind)
			return (&f->calls[i]);
	unit_fail(__FILE__, __LINE__, "no call of kind %d", (int)kind);
}

/* The oldest call of kind neither answered nor cancelled. */
static struct fake_call *
fake_open(struct fake_run *f, enum fake_kind kind)
{
	int i;

	for (i = 0; i < f->ncalls; i++)
		if (f->calls[i].kind == kind && !f->calls[i].answered &&
		    !f->calls[i].cancelled)
			return (&f->calls[i]);
	return (NULL);
}

void
fake_http_answer(struct fake_run *f, enum fake_kind kind, long status,
    const char *body, size_t len)
{
	struct fake_call *c = fake_open(f, kind);
	struct httpc_resp resp;

	if (c == NULL)
		unit_fail(__FILE__, __LINE__, "no open request of kind %d",
		    (int)kind);
	memset(&resp, 0, sizeof resp);
	resp.fail = HTTPC_OK;
	resp.status = status;
	resp.body = body;
	resp.len = len;
	c->answered = 1;
	c->http_cb(&resp, c->cb_arg);
}

void
fake_http_fail(struct fake_run *f, enum fake_kind kind, enum httpc_fail fail,
    const char *why)
{
	struct fake_call *c = fake_open(f, kind);
	struct httpc_resp resp;

	if (c == NULL)
		unit_fail(__FILE__, __LINE__, "no open request of kind %d",
		    (int)kind);
	memset(&resp, 0, sizeof resp);
	resp.fail = fail;
	resp.body = "";
	resp.err = why;
	c->answered = 1;
	c->http_cb(&resp, c->cb_arg);
}

/* A status reply ("OK", "STALE"), or NULL: the connection was lost. */
void
fake_redis_answer(struct fake_run *f, enum fake_kind kind, const char *status)
{
	struct fake_call *c = fake_open(f, kind);
	redisReply	  rep;

	if (c == NULL)
		unit_fail(
		    __FILE__, __LINE__, "no open call of kind %d", (int)kind);
	memset(&rep, 0, sizeof rep);
	rep.type = REDIS_REPLY_STATUS;
	rep.str = (char *)status;
	rep.len = status != NULL ? strlen(status) : 0;
	c->answered = 1;
	c->redis_cb(NULL, status != NULL ? &rep : NULL, c->cb_arg);
}

/* An array reply of one string, as fail gives ["failed"] or release
 * ["queued"]. */
void
fake_redis_answer_tag(struct fake_run *f, enum fake_kind kind, const char *tag)
{
	struct fake_call *c = fake_open(f, kind);
	redisReply	  rep, el, *elp = &el;

	if (c == NULL)
		unit_fail(
		    __FILE__, __LINE__, "no open call of kind %d", (int)kind);
	memset(&el, 0, sizeof el);
	el.type = REDIS_REPLY_STRING;
	el.str = (char *)tag;
	el.len = strlen(tag);
	memset(&rep, 0, sizeof rep);
	rep.type = REDIS_REPLY_ARRAY;
	rep.element = &elp;
	rep.elements = 1;
	c->answered = 1;
	c->redis_cb(NULL, &rep, c->cb_arg);
}

/* Answers every open call of kind; how many there were. */
int
fake_redis_answer_all(
    struct fake_run *f, enum fake_kind kind, const char *status)
{
	int n = 0;

	while (fake_open(f, kind) != NULL) {
		fake_redis_answer(f, kind, status);
		n++;
	}
	return (n);
}

static void
fake_loop_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	*(int *)arg = 1;
}

/* Runs the loop (the thread pool's callbacks) until count calls of kind
 * are there; at most 10 s. */
void
fake_loop_until(struct fake_run *f, enum fake_kind kind, int count)
{
	struct timeval tv = { 10, 0 };
	struct event  *t;
	int	       late = 0;

	t = evtimer_new(f->base, fake_loop_timeout, &late);
	evtimer_add(t, &tv);
	while (fake_count(f, kind) < count && !late)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(t);
	if (late)
		unit_fail(__FILE__, __LINE__, "no call of kind %d in 10 s",
		    (int)kind);
}
