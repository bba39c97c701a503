/*
 * What the worker gives each run (struct run_env, run.h): its settings and
 * shared things, and the real side of its tables. The Redis calls
 * are the lua/ functions on the command connection (w->rc), built by
 * rqfn.h under the queue's prefix (the run decodes their replies with
 * rqfn.h too); fail adds the settings' backoff base and cap, with a random
 * jitter. The ComfyUI requests go to the worker's one comfy client, the
 * object store's to its s3 client (store s3 only; outputs_s3.c makes the
 * record). The
 * hooks land in the worker: a run's end leaves the run list, a run waiting
 * for a slot makes the worker decide again, a transport failure probes the
 * backend, a CUDA fault latches, /object_info is the worker's one
 * cache, and a stranger's prompt that blocks ours is interrupted when no
 * live worker owns it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "comfy.h"
#include "log.h"
#include "outputs_s3.h"
#include "rqfn.h"
#include "util.h"
#include "worker_int.h"
#include "xmalloc.h"

static int
env_job_files(void *ctx, const char *jid, const char *fence, const char *files,
    redisCallbackFn *cb, void *arg)
{
	struct worker *w = ctx;
	struct rq_cmd  c;
	int	       rc;

	rqfn_job_files_cmd(&c, w->prefix, jid, fence, files);
	rc = rq_async_call(w->rc, cb, arg, &c);
	rq_cmd_free(&c);
	return (rc);
}

static int
env_progress(void *ctx, const char *jid, const char *fence, long long value,
    long long max, const char *node, const char *nodes, redisCallbackFn *cb,
    void *arg)
{
	struct worker *w = ctx;
	struct rq_cmd  c;
	int	       rc;

	rqfn_progress_cmd(&c, w->prefix, jid, fence, value, max, node, nodes);
	rc = rq_async_call(w->rc, cb, arg, &c);
	rq_cmd_free(&c);
	return (rc);
}

static int
env_complete(void *ctx, const char *jid, const char *fence, const char *records,
    const char *nodes, redisCallbackFn *cb, void *arg)
{
	struct worker *w = ctx;
	struct rq_cmd  c;
	int	       rc;

	rqfn_complete_cmd(&c, w->prefix, jid, fence, records, nodes);
	rc = rq_async_call(w->rc, cb, arg, &c);
	rq_cmd_free(&c);
	return (rc);
}

static int
env_fail(void *ctx, const char *jid, const char *fence, enum errcode code,
    const char *msg, int retryable, const char *nodes, redisCallbackFn *cb,
    void *arg)
{
	struct worker	     *w = ctx;
	struct rqfn_fail_args a;
	struct rq_cmd	      c;
	int		      rc;

	a.jid = jid;
	a.fence = fence;
	a.code = errcode_name(code);
	a.message = msg;
	a.retryable = retryable;
	a.backoff_base_ms = w->cfg->retry_base_ms;
	a.backoff_max_ms = w->cfg->retry_max_ms;
	a.jitter = rand_unit();
	a.nodes = nodes;
	rqfn_fail_cmd(&c, w->prefix, &a);
	rc = rq_async_call(w->rc, cb, arg, &c);
	rq_cmd_free(&c);
	return (rc);
}

static int
env_release(void *ctx, const char *jid, const char *fence, const char *why,
    redisCallbackFn *cb, void *arg)
{
	struct worker *w = ctx;
	struct rq_cmd  c;
	int	       rc;

	rqfn_release_cmd(&c, w->prefix, jid, fence, why);
	rc = rq_async_call(w->rc, cb, arg, &c);
	rq_cmd_free(&c);
	return (rc);
}

static int
env_store_blob(void *ctx, const char *key, const void *data, size_t len,
    long long ttl_ms, redisCallbackFn *cb, void *arg)
{
	struct worker *w = ctx;
	struct rq_cmd  c;
	int	       rc;

	rq_cmd_init(&c, "SET");
	rq_cmd_add(&c, key);
	rq_cmd_addb(&c, data, len);
	rq_cmd_add(&c, "PX");
	rq_cmd_addf(&c, "%lld", ttl_ms);
	rc = rq_async_call(w->rc, cb, arg, &c);
	rq_cmd_free(&c);
	return (rc);
}

static const struct run_redis env_redis = {
	.job_files = env_job_files,
	.progress = env_progress,
	.complete = env_complete,
	.fail = env_fail,
	.release = env_release,
	.store_blob = env_store_blob,
};

static struct httpc_req *
env_prompt(void *ctx, const char *prompt_id, const cJSON *graph, httpc_cb cb,
    void *arg)
{
	return (comfy_prompt(
	    ((struct worker *)ctx)->comfy, prompt_id, graph, cb, arg));
}

static struct httpc_req *
env_history(void *ctx, const char *prompt_id, httpc_cb cb, void *arg)
{
	return (
	    comfy_history(((struct worker *)ctx)->comfy, prompt_id, cb, arg));
}

static struct httpc_req *
env_queue(void *ctx, httpc_cb cb, void *arg)
{
	return (comfy_queue(((struct worker *)ctx)->comfy, cb, arg));
}

static struct httpc_req *
env_view(void *ctx, const char *filename, const char *subfolder,
    const char *type, int fd, size_t max_bytes, long timeout_ms, httpc_cb cb,
    void *arg)
{
	return (comfy_view(((struct worker *)ctx)->comfy, filename, subfolder,
	    type, fd, max_bytes, timeout_ms, cb, arg));
}

static struct httpc_req *
env_upload(void *ctx, const char *name, const void *data, size_t len,
    const char *subfolder, httpc_cb cb, void *arg)
{
	return (comfy_upload(((struct worker *)ctx)->comfy, name, data, len,
	    subfolder, cb, arg));
}

static struct httpc_req *
env_object_info(void *ctx, httpc_cb cb, void *arg)
{
	return (comfy_object_info(((struct worker *)ctx)->comfy, cb, arg));
}

static void
env_interrupt(void *ctx, const char *prompt_id)
{
	comfy_interrupt(((struct worker *)ctx)->comfy, prompt_id);
}

static void
env_free_memory(void *ctx)
{
	struct worker *w = ctx;

	comfy_free_memory(w->comfy);
	worker_model_set(w, ""); /* /free unloads its models */
}

static void
env_cancel(void *ctx, struct httpc_req *req)
{
	(void)ctx;
	httpc_cancel(req);
}

static const struct run_comfy env_comfy = {
	.prompt = env_prompt,
	.history = env_history,
	.queue = env_queue,
	.view = env_view,
	.upload = env_upload,
	.object_info = env_object_info,
	.interrupt = env_interrupt,
	.free_memory = env_free_memory,
	.cancel = env_cancel,
};

static struct s3_up *
env_s3_put(void *ctx, const char *key, int fd, size_t len, const char *mime,
    s3_cb cb, void *arg)
{
	return (s3_put_file(
	    ((struct worker *)ctx)->s3, key, fd, len, mime, cb, arg));
}

static void
env_s3_cancel(void *ctx, struct s3_up *up)
{
	(void)ctx;
	s3_cancel(up);
}

static void
env_s3_record(void *ctx, const char *key, cJSON *rec)
{
	struct worker *w = ctx;

	output_s3_record(s3_target(w->s3), key, w->cfg->s3_presign_s, rec);
}

static const struct run_store env_store = {
	.put = env_s3_put,
	.cancel = env_s3_cancel,
	.record = env_s3_record,
};

static void
env_done(void *ctx, struct run *r)
{
	worker_run_done(ctx, r);
}

static void
env_wants_slot(void *ctx)
{
	worker_claim_maybe(ctx);
}

static void
env_suspect(void *ctx)
{
	backend_suspect(((struct worker *)ctx)->backend);
}

static void
env_gpu_fault(void *ctx, const char *why)
{
	worker_latch_gpu_fault(ctx, why);
}

static const cJSON *
env_objinfo(void *ctx)
{
	return (((struct worker *)ctx)->objinfo);
}

static void
env_set_objinfo(void *ctx, cJSON *info)
{
	worker_set_objinfo(ctx, info);
}

/* A stranger's prompt (run_hooks.stranger) and the worker that asked. */
struct stranger {
	struct worker *w;
	char	       prompt_id[64];
	char	       client_id[128];
};

static void
env_stranger_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct stranger *x = arg;
	redisReply	*r = reply;

	(void)ac;
	/* no record (expired), or one the janitor marked gone, or stopped */
	if (r != NULL && !x->w->env.stopped &&
	    (r->type == REDIS_REPLY_NIL ||
		(r->type == REDIS_REPLY_STRING &&
		    (strcmp(r->str, "gone") == 0 ||
			strcmp(r->str, "stopped") == 0)))) {
		log_warnx("ComfyUI runs prompt %s of client %s, no live worker "
			  "of this queue (%s), while our prompts wait: "
			  "interrupting it",
		    x->prompt_id, x->client_id,
		    r->type == REDIS_REPLY_NIL ? "no record" : r->str);
		comfy_interrupt(x->w->comfy, x->prompt_id);
	}
	free(x);
}

static void
env_stranger(void *ctx, const char *prompt_id, const char *client_id)
{
	struct worker	*w = ctx;
	struct stranger *x;
	struct rq_cmd	 c;

	if (strcmp(client_id, w->id) == 0 || strlen(prompt_id) >= 64 ||
	    strlen(client_id) >= 128)
		return; /* ours (a run's own prompt) or not a worker's id */
	x = xcalloc(1, sizeof *x);
	x->w = w;
	snprintf(x->prompt_id, sizeof x->prompt_id, "%s", prompt_id);
	snprintf(x->client_id, sizeof x->client_id, "%s", client_id);
	/* worker:<wid> expires worker-ttl-ms after its last heartbeat; the
	 * janitor marks one without heartbeats gone before that */
	rq_cmd_init(&c, "HGET");
	rq_cmd_addf(&c, "%sworker:%s", w->prefix, client_id);
	rq_cmd_add(&c, "state");
	if (rq_async_call(w->rc, env_stranger_reply, x, &c) == -1)
		free(x);
	rq_cmd_free(&c);
}

static const struct run_hooks env_hooks = {
	.done = env_done,
	.wants_slot = env_wants_slot,
	.suspect = env_suspect,
	.gpu_fault = env_gpu_fault,
	.objinfo = env_objinfo,
	.set_objinfo = env_set_objinfo,
	.stranger = env_stranger,
};

/* Fills w->env; the tables and what they point at outlive every run. */
void
worker_env_init(struct worker *w)
{
	w->env.base = w->base;
	w->env.cfg = w->cfg;
	w->env.prefix = w->prefix;
	w->env.pool = w->pool_threads;
	w->env.sync_pool = w->sync_threads;
	w->env.workflows = w->workflows;
	w->env.cn = &w->cn_map;
	w->env.inputs = &w->inputs;
	w->env.stopped = 0;
	w->env.redis = &env_redis;
	w->env.comfy = &env_comfy;
	w->env.store = &env_store;
	w->env.hooks = &env_hooks;
	w->env.ctx = w;
}
