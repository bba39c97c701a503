/*
 * The functions library's calls (see rqfn.h): one builder per function,
 * each the ARGV of its lua/<name>.lua header in that order, started by
 * rqfn_cmd from the table in rqfn.c. Numbers go as decimal text; the
 * option pairs of enqueue and the janitor's duties go by name. The
 * control channel, no function of the library, is here too: its
 * SUBSCRIBE and the decoder of its messages.
 */
#include <stdio.h>
#include <string.h>

#include "rqfn.h"

static void
rqfn_opt(struct rq_cmd *c, const char *name, long long v)
{
	rq_cmd_add(c, name);
	rq_cmd_addf(c, "%lld", v);
}

void
rqfn_version_cmd(struct rq_cmd *c)
{
	rqfn_cmd(c, RQFN_FN_VERSION, NULL);
}

void
rqfn_enqueue_cmd(struct rq_cmd *c, const char *prefix, const char *spec,
    const struct rqfn_enqueue_opts *o)
{
	rqfn_cmd(c, RQFN_FN_ENQUEUE, prefix);
	rq_cmd_add(c, spec);
	if (o == NULL)
		return;
	if (o->idem_ttl_ms != 0)
		rqfn_opt(c, "idem_ttl_ms", o->idem_ttl_ms);
	if (o->max_spec_bytes != 0)
		rqfn_opt(c, "max_spec_bytes", o->max_spec_bytes);
	if (o->max_prompt_len != 0)
		rqfn_opt(c, "max_prompt_len", o->max_prompt_len);
	if (o->max_param_len != 0)
		rqfn_opt(c, "max_param_len", o->max_param_len);
	if (o->model != NULL && *o->model != '\0') {
		rq_cmd_add(c, "model");
		rq_cmd_add(c, o->model);
	}
	if (o->vram_mb != 0)
		rqfn_opt(c, "vram_mb", o->vram_mb);
}

void
rqfn_claim_cmd(struct rq_cmd *c, const char *prefix, const char *worker,
    const char *pool, long long lease_ms, int scan, int prep)
{
	rqfn_cmd(c, RQFN_FN_CLAIM, prefix);
	rq_cmd_add(c, worker);
	rq_cmd_add(c, pool);
	rq_cmd_addf(c, "%lld", lease_ms);
	rq_cmd_addf(c, "%d", scan);
	rq_cmd_addf(c, "%d", prep);
}

void
rqfn_claim_prefer(struct rq_cmd *c, const char *model, long long max_wait_ms,
    long long max_lead, int want_fetch)
{
	rq_cmd_add(c, model);
	rq_cmd_addf(c, "%lld", max_wait_ms);
	rq_cmd_addf(c, "%lld", max_lead);
	if (want_fetch)
		rq_cmd_add(c, "1");
}

void
rqfn_acquire_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, const char *pool)
{
	rqfn_cmd(c, RQFN_FN_ACQUIRE, prefix);
	rq_cmd_add(c, jid);
	rq_cmd_add(c, fence);
	rq_cmd_add(c, pool);
}

void
rqfn_heartbeat_cmd(struct rq_cmd *c, const char *prefix, const char *worker,
    long long lease_ms, long long worker_ttl_ms)
{
	rqfn_cmd(c, RQFN_FN_HEARTBEAT, prefix);
	rq_cmd_add(c, worker);
	rq_cmd_addf(c, "%lld", lease_ms);
	rq_cmd_addf(c, "%lld", worker_ttl_ms);
}

void
rqfn_heartbeat_job(struct rq_cmd *c, const char *jid, const char *fence)
{
	rq_cmd_add(c, jid);
	rq_cmd_add(c, fence);
}

void
rqfn_complete_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, const char *outputs, const char *nodes)
{
	rqfn_cmd(c, RQFN_FN_COMPLETE, prefix);
	rq_cmd_add(c, jid);
	rq_cmd_add(c, fence);
	rq_cmd_add(c, outputs);
	if (nodes != NULL)
		rq_cmd_add(c, nodes);
}

/* node and nodes NULL: none sent (node "" when only nodes is given). */
void
rqfn_progress_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, long long value, long long max, const char *node,
    const char *nodes)
{
	rqfn_cmd(c, RQFN_FN_PROGRESS, prefix);
	rq_cmd_add(c, jid);
	rq_cmd_add(c, fence);
	rq_cmd_addf(c, "%lld", value);
	rq_cmd_addf(c, "%lld", max);
	if (node != NULL || nodes != NULL)
		rq_cmd_add(c, node != NULL ? node : "");
	if (nodes != NULL)
		rq_cmd_add(c, nodes);
}

void
rqfn_job_files_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, const char *files)
{
	rqfn_cmd(c, RQFN_FN_JOB_FILES, prefix);
	rq_cmd_add(c, jid);
	rq_cmd_add(c, fence);
	rq_cmd_add(c, files);
}

void
rqfn_fail_cmd(
    struct rq_cmd *c, const char *prefix, const struct rqfn_fail_args *a)
{
	rqfn_cmd(c, RQFN_FN_FAIL, prefix);
	rq_cmd_add(c, a->jid);
	rq_cmd_add(c, a->fence);
	rq_cmd_add(c, a->code);
	rq_cmd_add(c, a->message);
	rq_cmd_add(c, a->retryable ? "1" : "0");
	rq_cmd_addf(c, "%lld", a->backoff_base_ms);
	rq_cmd_addf(c, "%lld", a->backoff_max_ms);
	rq_cmd_addf(c, "%.6f", a->jitter);
	if (a->nodes != NULL)
		rq_cmd_add(c, a->nodes);
}

/* reason NULL: none sent. */
void
rqfn_release_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, const char *reason)
{
	rqfn_cmd(c, RQFN_FN_RELEASE, prefix);
	rq_cmd_add(c, jid);
	rq_cmd_add(c, fence);
	if (reason != NULL)
		rq_cmd_add(c, reason);
}

/* reason NULL: none sent. */
void
rqfn_cancel_cmd(
    struct rq_cmd *c, const char *prefix, const char *jid, const char *reason)
{
	rqfn_cmd(c, RQFN_FN_CANCEL, prefix);
	rq_cmd_add(c, jid);
	if (reason != NULL)
		rq_cmd_add(c, reason);
}

void
rqfn_register_cmd(struct rq_cmd *c, const char *prefix, const char *worker,
    long long ttl_ms, const char *pool, long long capacity,
    long long vram_budget_mb)
{
	rqfn_cmd(c, RQFN_FN_REGISTER, prefix);
	rq_cmd_add(c, worker);
	rq_cmd_addf(c, "%lld", ttl_ms);
	rq_cmd_add(c, pool);
	rq_cmd_addf(c, "%lld", capacity);
	rq_cmd_addf(c, "%lld", vram_budget_mb);
}

void
rqfn_unregister_cmd(struct rq_cmd *c, const char *prefix, const char *worker)
{
	rqfn_cmd(c, RQFN_FN_UNREGISTER, prefix);
	rq_cmd_add(c, worker);
}

void
rqfn_slot_set_cmd(struct rq_cmd *c, const char *prefix, const char *pool,
    long long capacity, long long vram_budget_mb)
{
	rqfn_cmd(c, RQFN_FN_SLOT_SET, prefix);
	rq_cmd_add(c, pool);
	rq_cmd_addf(c, "%lld", capacity);
	rq_cmd_addf(c, "%lld", vram_budget_mb);
}

void
rqfn_slot_get_cmd(struct rq_cmd *c, const char *prefix, const char *pool)
{
	rqfn_cmd(c, RQFN_FN_SLOT_GET, prefix);
	rq_cmd_add(c, pool);
}

void
rqfn_slot_pools_cmd(struct rq_cmd *c, const char *prefix)
{
	rqfn_cmd(c, RQFN_FN_SLOT_POOLS, prefix);
}

void
rqfn_slot_acquire_cmd(struct rq_cmd *c, const char *prefix, const char *pool,
    const char *holder, long long lease_ms, long long vram_mb)
{
	rqfn_cmd(c, RQFN_FN_SLOT_ACQUIRE, prefix);
	rq_cmd_add(c, pool);
	rq_cmd_add(c, holder);
	rq_cmd_addf(c, "%lld", lease_ms);
	rq_cmd_addf(c, "%lld", vram_mb);
}

void
rqfn_slot_renew_cmd(struct rq_cmd *c, const char *prefix, const char *pool,
    const char *holder, const char *fence, long long lease_ms)
{
	rqfn_cmd(c, RQFN_FN_SLOT_RENEW, prefix);
	rq_cmd_add(c, pool);
	rq_cmd_add(c, holder);
	rq_cmd_add(c, fence);
	rq_cmd_addf(c, "%lld", lease_ms);
}

void
rqfn_slot_release_cmd(struct rq_cmd *c, const char *prefix, const char *pool,
    const char *holder, const char *fence)
{
	rqfn_cmd(c, RQFN_FN_SLOT_RELEASE, prefix);
	rq_cmd_add(c, pool);
	rq_cmd_add(c, holder);
	rq_cmd_add(c, fence);
}

void
rqfn_reap_cmd(
    struct rq_cmd *c, const char *prefix, const struct rqfn_reap_args *a)
{
	rqfn_cmd(c, RQFN_FN_REAP, prefix);
	rqfn_opt(c, "max_reclaims", a->max_reclaims);
	rqfn_opt(c, "crash_losses", a->crash_losses);
	rqfn_opt(c, "batch", a->batch);
	rqfn_opt(c, "stall_ms", a->stall_ms);
	rqfn_opt(c, "grace_ms", a->grace_ms);
}

void
rqfn_trim_cmd(
    struct rq_cmd *c, const char *prefix, const struct rqfn_trim_args *a)
{
	rqfn_cmd(c, RQFN_FN_TRIM, prefix);
	rqfn_opt(c, "events_maxlen", a->events_maxlen);
	rqfn_opt(c, "events_max_age_ms", a->events_max_age_ms);
	rqfn_opt(c, "refunds_max_age_ms", a->refunds_max_age_ms);
	rqfn_opt(c, "batch", a->batch);
}

void
rqfn_expire_cmd(struct rq_cmd *c, const char *prefix, long long retention_ms,
    long long batch)
{
	rqfn_cmd(c, RQFN_FN_EXPIRE, prefix);
	rqfn_opt(c, "retention_ms", retention_ms);
	rqfn_opt(c, "batch", batch);
}

void
rqfn_workers_gone_cmd(struct rq_cmd *c, const char *prefix, long long dead_ms,
    long long forget_ms, long long batch)
{
	rqfn_cmd(c, RQFN_FN_WORKERS_GONE, prefix);
	rqfn_opt(c, "dead_ms", dead_ms);
	rqfn_opt(c, "forget_ms", forget_ms);
	rqfn_opt(c, "batch", batch);
}

void
rqfn_queue_status_cmd(
    struct rq_cmd *c, const char *prefix, long long top, long long interval_ms)
{
	rqfn_cmd(c, RQFN_FN_QUEUE_STATUS, prefix);
	rqfn_opt(c, "top", top);
	rqfn_opt(c, "interval_ms", interval_ms);
}

void
rqfn_active_files_cmd(
    struct rq_cmd *c, const char *prefix, const char *host, long long limit)
{
	rqfn_cmd(c, RQFN_FN_ACTIVE_FILES, prefix);
	rq_cmd_add(c, host);
	rq_cmd_addf(c, "%lld", limit);
}

void
rqfn_webhook_claim_cmd(struct rq_cmd *c, const char *prefix, const char *sid,
    long long lease_ms, long long batch)
{
	rqfn_cmd(c, RQFN_FN_WEBHOOK_CLAIM, prefix);
	rq_cmd_add(c, sid);
	rq_cmd_addf(c, "%lld", lease_ms);
	rq_cmd_addf(c, "%lld", batch);
}

static void
rqfn_wh_done_cmd(struct rq_cmd *c, enum rqfn_fn fn, const char *prefix,
    const struct rqfn_webhook_done_args *a)
{
	static const char *const outcome[] = { [RQFN_WH_DELIVERED] =
						   "delivered",
		[RQFN_WH_RETRY] = "retry",
		[RQFN_WH_FAILED] = "failed",
		[RQFN_WH_GONE] = "gone" };

	rqfn_cmd(c, fn, prefix);
	rq_cmd_add(c, a->jid);
	rq_cmd_addf(c, "%lld", a->attempt);
	rq_cmd_add(c, outcome[a->outcome]);
	rq_cmd_addf(c, "%ld", a->status);
	rq_cmd_add(c, a->error);
	if (a->outcome == RQFN_WH_RETRY)
		rq_cmd_addf(c, "%lld", a->retry_ms);
}

void
rqfn_webhook_done_cmd(struct rq_cmd *c, const char *prefix,
    const struct rqfn_webhook_done_args *a)
{
	rqfn_wh_done_cmd(c, RQFN_FN_WEBHOOK_DONE, prefix, a);
}

void
rqfn_webhook_progress_claim_cmd(struct rq_cmd *c, const char *prefix,
    const char *sid, long long lease_ms, long long batch, long long interval_ms)
{
	rqfn_cmd(c, RQFN_FN_WEBHOOK_PROGRESS_CLAIM, prefix);
	rq_cmd_add(c, sid);
	rq_cmd_addf(c, "%lld", lease_ms);
	rq_cmd_addf(c, "%lld", batch);
	rq_cmd_addf(c, "%lld", interval_ms);
}

void
rqfn_webhook_progress_done_cmd(struct rq_cmd *c, const char *prefix,
    const struct rqfn_webhook_done_args *a)
{
	rqfn_wh_done_cmd(c, RQFN_FN_WEBHOOK_PROGRESS_DONE, prefix, a);
}

void
rqfn_comfy_upload_cmd(struct rq_cmd *c, const char *prefix,
    const struct rqfn_comfy_upload_args *a)
{
	rqfn_cmd(c, RQFN_FN_COMFY_UPLOAD, prefix);
	rq_cmd_add(c, a->tenant);
	rq_cmd_add(c, a->subfolder);
	rq_cmd_add(c, a->stem);
	rq_cmd_add(c, a->ext);
	rq_cmd_addb(c, a->bytes, a->len);
	rq_cmd_addf(c, "%d", a->overwrite != 0);
	rq_cmd_addf(c, "%lld", a->ttl_s);
}

/* SUBSCRIBE <prefix>ctl:<worker>: cancel.lua publishes there. */
void
rqfn_ctl_subscribe_cmd(struct rq_cmd *c, const char *prefix, const char *worker)
{
	rq_cmd_init(c, "SUBSCRIBE");
	rq_cmd_addf(c, "%sctl:%s", prefix, worker);
}

/*
 * A reply on the control channel: ["subscribe", channel, count] once the
 * subscription holds, then ["message", channel, text] for each message.
 */
int
rqfn_ctl_reply(
    const redisReply *r, struct rqfn_ctl *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		snprintf(err, errlen, "not a pub/sub message");
		return (-1);
	}
	if (strcmp(r->element[0]->str, "subscribe") == 0) {
		out->kind = RQFN_CTL_SUBSCRIBED;
		return (0);
	}
	if (strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING) {
		snprintf(err, errlen, "a pub/sub '%.32s'", r->element[0]->str);
		return (-1);
	}
	out->text = r->element[2]->str;
	if (strncmp(out->text, "cancel ", 7) == 0) {
		out->kind = RQFN_CTL_CANCEL;
		out->jid = out->text + 7;
	} else
		out->kind = RQFN_CTL_UNKNOWN;
	return (0);
}
