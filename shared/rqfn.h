/*
 * The functions library (lua/<name>.lua) seen from C. For each function a
 * typed builder fills a struct rq_cmd with FCALL comfyq_<name> 1 <prefix>
 * and its arguments, in the order the Lua file's header gives them, and a
 * typed decoder checks a reply against the shapes that header promises
 * (types and element counts, from one table in rqfn.c) before it reads a
 * field. A decoder returns 0 with the fields set, or -1 with err holding
 * the error reply's text as Redis sent it ("NOPOOL pool 'x' has no capacity
 * set") or "unexpected reply to <name> (...)"; it never reads past what it
 * checked. Strings in a decoded struct point into the reply: they live
 * until the caller frees it. Builders never fail; the caller runs the
 * command (rq_run, rq_async_call) and frees it with rq_cmd_free.
 *
 * The control channel ctl:<wid> (cancel.lua publishes `cancel <jid>`) is
 * here too: rqfn_ctl_subscribe_cmd and rqfn_ctl_reply.
 */
#ifndef COMFYQ_RQFN_H
#define COMFYQ_RQFN_H

#include <stddef.h>

#include "rq.h"

/* The functions, in the table's order. */
enum rqfn_fn {
	RQFN_FN_VERSION,
	RQFN_FN_ENQUEUE,
	RQFN_FN_CLAIM,
	RQFN_FN_ACQUIRE,
	RQFN_FN_HEARTBEAT,
	RQFN_FN_COMPLETE,
	RQFN_FN_FAIL,
	RQFN_FN_PROGRESS,
	RQFN_FN_RELEASE,
	RQFN_FN_CANCEL,
	RQFN_FN_REGISTER,
	RQFN_FN_UNREGISTER,
	RQFN_FN_SLOT_SET,
	RQFN_FN_SLOT_GET,
	RQFN_FN_SLOT_POOLS,
	RQFN_FN_SLOT_ACQUIRE,
	RQFN_FN_SLOT_RENEW,
	RQFN_FN_SLOT_RELEASE,
	RQFN_FN_REAP,
	RQFN_FN_TRIM,
	RQFN_FN_EXPIRE,
	RQFN_FN_WORKERS_GONE,
	RQFN_FN_QUEUE_STATUS,
	RQFN_FN_ACTIVE_FILES,
	RQFN_FN_JOB_FILES,
	RQFN_FN_WEBHOOK_CLAIM,
	RQFN_FN_WEBHOOK_DONE,
	RQFN_FN_WEBHOOK_PROGRESS_CLAIM,
	RQFN_FN_WEBHOOK_PROGRESS_DONE,
	RQFN_FN_COMFY_UPLOAD,
	RQFN_FN_COUNT
};

const char *rqfn_name(enum rqfn_fn fn);
void	    rqfn_cmd(struct rq_cmd *c, enum rqfn_fn fn, const char *prefix);

/* version: the library's VERSION ("6"). */
void rqfn_version_cmd(struct rq_cmd *c);
int  rqfn_version_reply(
     const redisReply *r, const char **version, char *err, size_t errlen);

/* enqueue: a 0 field is not sent (the library's default holds); model
 * (NULL or "": enqueue derives it) is the job's checkpoint key
 * (wf_job_model); vram_mb the template's VRAM estimate, kept as the job's
 * vram_mb when its spec gives none (the spec is stored as it was sent). */
struct rqfn_enqueue_opts {
	long long   idem_ttl_ms;
	long long   max_spec_bytes;
	long long   max_prompt_len;
	long long   max_param_len;
	const char *model;
	long long   vram_mb;
};
struct rqfn_enqueue {
	const char *jid;
	const char *result; /* "created" or "existing" */
	const char *state;  /* "queued", "delayed", or the state now */
};
void rqfn_enqueue_cmd(struct rq_cmd *c, const char *prefix, const char *spec,
    const struct rqfn_enqueue_opts *opts);
int  rqfn_enqueue_reply(
     const redisReply *r, struct rqfn_enqueue *out, char *err, size_t errlen);

/* claim and acquire. */
enum rqfn_claim_kind { RQFN_CLAIM_JOB, RQFN_CLAIM_NOSLOT, RQFN_CLAIM_NOJOB };
struct rqfn_claim {
	enum rqfn_claim_kind kind;
	/* job */
	const char *jid;
	long long   fence;
	long long   attempt;
	const char *spec;
	size_t	    spec_len;
	long long   lease_until; /* ms since the epoch */
	long long   timeout_s;
	int	    slot;  /* 1: holds a slot; 0: fetch its inputs first */
	const char *model; /* the job's checkpoint key, "" for none */
	/* queued jobs that fetch inputs first (a hint); -1: the claim did
	 * not ask (rqfn_claim_prefer's want_fetch) */
	long long fetch_waiting;
	/* noslot */
	long long used, capacity;
	/* nojob: the earliest delayed job's due time, 0 when none */
	long long next_due_ms;
};
void rqfn_claim_cmd(struct rq_cmd *c, const char *prefix, const char *worker,
    const char *pool, long long lease_ms, int scan, int prep);
/* Adds model-aware claiming's arguments to a claim: the checkpoint key the
 * worker's ComfyUI holds ("" for none) and the bounds (lua/claim.lua);
 * want_fetch 1 asks for the count of jobs that fetch first in a job's
 * reply (struct rqfn_claim fetch_waiting). */
void rqfn_claim_prefer(struct rq_cmd *c, const char *model,
    long long max_wait_ms, long long max_lead, int want_fetch);
int  rqfn_claim_reply(
     const redisReply *r, struct rqfn_claim *out, char *err, size_t errlen);

enum rqfn_acquire_kind {
	RQFN_ACQUIRE_OK,
	RQFN_ACQUIRE_NOSLOT,
	RQFN_ACQUIRE_STALE
};
struct rqfn_acquire {
	enum rqfn_acquire_kind kind;
	long long	       used, capacity; /* noslot */
};
void rqfn_acquire_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, const char *pool);
int  rqfn_acquire_reply(
     const redisReply *r, struct rqfn_acquire *out, char *err, size_t errlen);

/* heartbeat: add one rqfn_heartbeat_job per job the worker runs. */
struct rqfn_heartbeat {
	redisReply **lost; /* lost[i]->str, i < nlost */
	size_t	     nlost;
	redisReply **cancel; /* cancel[i]->str, i < ncancel */
	size_t	     ncancel;
	long long    capacity;
	int	     registered;
};
void rqfn_heartbeat_cmd(struct rq_cmd *c, const char *prefix,
    const char *worker, long long lease_ms, long long worker_ttl_ms);
void rqfn_heartbeat_job(struct rq_cmd *c, const char *jid, const char *fence);
int  rqfn_heartbeat_reply(
     const redisReply *r, struct rqfn_heartbeat *out, char *err, size_t errlen);

/*
 * The calls whose reply is OK or STALE: complete, progress, job_files,
 * slot_renew, slot_release (and unregister and slot_set, which give OK).
 * *stale is 1 for STALE, 0 for OK.
 */
/* nodes: the JSON object of lua/complete.lua and progress.lua (what
 * ComfyUI did), or NULL for none. */
void rqfn_complete_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, const char *outputs, const char *nodes);
void rqfn_progress_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, long long value, long long max, const char *node,
    const char *nodes);
void rqfn_job_files_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, const char *files);
int  rqfn_complete_reply(
     const redisReply *r, int *stale, char *err, size_t errlen);
int rqfn_progress_reply(
    const redisReply *r, int *stale, char *err, size_t errlen);
int rqfn_job_files_reply(
    const redisReply *r, int *stale, char *err, size_t errlen);

/* fail and release. */
struct rqfn_fail_args {
	const char *jid;
	const char *fence;
	const char *code; /* errcode_name() */
	const char *message;
	int	    retryable;
	long long   backoff_base_ms;
	long long   backoff_max_ms;
	double	    jitter; /* in [0, 1) */
	const char *nodes;  /* lua/fail.lua's nodes, or NULL */
};
enum rqfn_end_kind {
	RQFN_END_DELAYED, /* fail: retried, due at due_ms */
	RQFN_END_FAILED,
	RQFN_END_CANCELED,
	RQFN_END_QUEUED, /* release: back in its lane */
	RQFN_END_STALE
};
struct rqfn_end {
	enum rqfn_end_kind kind;
	const char	  *what; /* the reply's tag, or "STALE" */
	long long	   due_ms;
};
void rqfn_fail_cmd(
    struct rq_cmd *c, const char *prefix, const struct rqfn_fail_args *a);
void rqfn_release_cmd(struct rq_cmd *c, const char *prefix, const char *jid,
    const char *fence, const char *reason);
int  rqfn_fail_reply(
     const redisReply *r, struct rqfn_end *out, char *err, size_t errlen);
int rqfn_release_reply(
    const redisReply *r, struct rqfn_end *out, char *err, size_t errlen);

/* cancel. */
enum rqfn_cancel_kind {
	RQFN_CANCEL_CANCELED,
	RQFN_CANCEL_REQUESTED,
	RQFN_CANCEL_ALREADY
};
struct rqfn_cancel {
	enum rqfn_cancel_kind kind;
	const char	     *what;  /* "canceled", "requested", "already" */
	const char	     *state; /* already: the state it ended in */
};
void rqfn_cancel_cmd(
    struct rq_cmd *c, const char *prefix, const char *jid, const char *reason);
int rqfn_cancel_reply(
    const redisReply *r, struct rqfn_cancel *out, char *err, size_t errlen);

/* register (the caller adds field, value pairs) and unregister. */
struct rqfn_register {
	long long capacity; /* 0: the pool has none */
	long long vram_budget_mb;
};
void rqfn_register_cmd(struct rq_cmd *c, const char *prefix, const char *worker,
    long long ttl_ms, const char *pool, long long capacity,
    long long vram_budget_mb);
int  rqfn_register_reply(
     const redisReply *r, struct rqfn_register *out, char *err, size_t errlen);
void rqfn_unregister_cmd(
    struct rq_cmd *c, const char *prefix, const char *worker);
int rqfn_unregister_reply(const redisReply *r, char *err, size_t errlen);

/* The slot functions. */
void rqfn_slot_set_cmd(struct rq_cmd *c, const char *prefix, const char *pool,
    long long capacity, long long vram_budget_mb);
int  rqfn_slot_set_reply(const redisReply *r, char *err, size_t errlen);

struct rqfn_slot_get {
	long long	  capacity, vram_budget_mb, used, vram_used_mb;
	size_t		  nholders;
	const redisReply *r;
};
struct rqfn_holder {
	const char *holder;
	const char *worker;
	const char *fence;
	long long   lease_until;
	long long   vram_mb;
};
void rqfn_slot_get_cmd(struct rq_cmd *c, const char *prefix, const char *pool);
int  rqfn_slot_get_reply(
     const redisReply *r, struct rqfn_slot_get *out, char *err, size_t errlen);
void rqfn_slot_holder(
    const struct rqfn_slot_get *s, size_t i, struct rqfn_holder *h);

struct rqfn_slot_pools {
	redisReply **pools; /* pools[i]->str, i < npools, in name order */
	size_t	     npools;
};
void rqfn_slot_pools_cmd(struct rq_cmd *c, const char *prefix);
int  rqfn_slot_pools_reply(
     const redisReply *r, struct rqfn_slot_pools *out, char *err, size_t errlen);

struct rqfn_slot_acquire {
	int	  granted; /* 1: slot (fence, lease_until); 0: noslot */
	long long fence, lease_until;
	long long used, capacity;
};
void rqfn_slot_acquire_cmd(struct rq_cmd *c, const char *prefix,
    const char *pool, const char *holder, long long lease_ms,
    long long vram_mb);
int  rqfn_slot_acquire_reply(const redisReply *r, struct rqfn_slot_acquire *out,
     char *err, size_t errlen);
void rqfn_slot_renew_cmd(struct rq_cmd *c, const char *prefix, const char *pool,
    const char *holder, const char *fence, long long lease_ms);
void rqfn_slot_release_cmd(struct rq_cmd *c, const char *prefix,
    const char *pool, const char *holder, const char *fence);
int  rqfn_slot_renew_reply(
     const redisReply *r, int *stale, char *err, size_t errlen);
int rqfn_slot_release_reply(
    const redisReply *r, int *stale, char *err, size_t errlen);

/* The janitor's duties: every option is sent. */
struct rqfn_reap_args {
	long long max_reclaims, crash_losses, batch, stall_ms, grace_ms;
};
struct rqfn_reap {
	long long requeued, lost, promoted, slots_freed, holding, buried;
};
void rqfn_reap_cmd(
    struct rq_cmd *c, const char *prefix, const struct rqfn_reap_args *a);
int rqfn_reap_reply(
    const redisReply *r, struct rqfn_reap *out, char *err, size_t errlen);

struct rqfn_trim_args {
	long long events_maxlen, events_max_age_ms, refunds_max_age_ms, batch;
};
struct rqfn_trim {
	long long   events_trimmed, refunds_trimmed;
	const char *refunds_floor, *events_floor; /* "" when no group */
};
void rqfn_trim_cmd(
    struct rq_cmd *c, const char *prefix, const struct rqfn_trim_args *a);
int rqfn_trim_reply(
    const redisReply *r, struct rqfn_trim *out, char *err, size_t errlen);

void rqfn_expire_cmd(struct rq_cmd *c, const char *prefix,
    long long retention_ms, long long batch);
int  rqfn_expire_reply(
     const redisReply *r, long long *expired, char *err, size_t errlen);

struct rqfn_workers_gone {
	long long    gone, forgotten;
	redisReply **wids; /* wids[i]->str, the workers newly gone */
	size_t	     nwids;
};
void rqfn_workers_gone_cmd(struct rq_cmd *c, const char *prefix,
    long long dead_ms, long long forget_ms, long long batch);
int  rqfn_workers_gone_reply(const redisReply *r, struct rqfn_workers_gone *out,
     char *err, size_t errlen);

struct rqfn_queue_status {
	long long events, busy, total, buried;
};
void rqfn_queue_status_cmd(
    struct rq_cmd *c, const char *prefix, long long top, long long interval_ms);
int rqfn_queue_status_reply(const redisReply *r, struct rqfn_queue_status *out,
    char *err, size_t errlen);

struct rqfn_active_files {
	int		  truncated;
	size_t		  njobs;
	const redisReply *r;
};
void rqfn_active_files_cmd(
    struct rq_cmd *c, const char *prefix, const char *host, long long limit);
int  rqfn_active_files_reply(const redisReply *r, struct rqfn_active_files *out,
     char *err, size_t errlen);
void rqfn_active_file(const struct rqfn_active_files *a, size_t i,
    const char **jid, const char **files);

/*
 * Webhook deliveries (lua/webhook.lua). A claim's deliveries are read with
 * rqfn_webhook_delivery; fields are the terminal event's name, value pairs.
 */
struct rqfn_webhook_claim {
	long long	  next_due_ms; /* 0: nothing left in the zset */
	size_t		  n;
	const redisReply *r;
};
struct rqfn_webhook {
	const char  *jid;
	const char  *url;
	const char  *id; /* wh_<jid>: the same for every attempt */
	long long    attempt;
	long long    finished_ms;
	redisReply **fields;  /* fields[2i]->str, fields[2i+1]->str */
	size_t	     nfields; /* pairs */
};
/* RQFN_WH_GONE (failed, and no more for this job) is for progress only. */
enum rqfn_wh_outcome {
	RQFN_WH_DELIVERED,
	RQFN_WH_RETRY,
	RQFN_WH_FAILED,
	RQFN_WH_GONE
};
struct rqfn_webhook_done_args {
	const char	    *jid;
	long long	     attempt;
	enum rqfn_wh_outcome outcome;
	long		     status;   /* 0: no response */
	const char	    *error;    /* "" when none */
	long long	     retry_ms; /* retry only */
};
void rqfn_webhook_claim_cmd(struct rq_cmd *c, const char *prefix,
    const char *sid, long long lease_ms, long long batch);
int  rqfn_webhook_claim_reply(const redisReply *r,
     struct rqfn_webhook_claim *out, char *err, size_t errlen);
void rqfn_webhook_delivery(
    const struct rqfn_webhook_claim *w, size_t i, struct rqfn_webhook *d);
void rqfn_webhook_done_cmd(struct rq_cmd *c, const char *prefix,
    const struct rqfn_webhook_done_args *a);
int  rqfn_webhook_done_reply(
     const redisReply *r, int *stale, char *err, size_t errlen);

/*
 * Progress deliveries (lua/webhook_progress.lua). The claim's reply is
 * decoded into a struct rqfn_webhook_claim and read with
 * rqfn_webhook_progress; fields are tenant, meta, attempt, progress
 * (value/max), node. The done call takes rqfn_webhook_done_args whose
 * attempt is the claim's seq.
 */
struct rqfn_whprog {
	const char  *jid;
	const char  *url;
	const char  *id;      /* whp_<jid>_<seq>: one per claim */
	long long    seq;     /* the lease token and the body's seq */
	long long    tries;   /* failed attempts in a row before this one */
	redisReply **fields;  /* fields[2i]->str, fields[2i+1]->str */
	size_t	     nfields; /* pairs */
};
void rqfn_webhook_progress_claim_cmd(struct rq_cmd *c, const char *prefix,
    const char *sid, long long lease_ms, long long batch,
    long long interval_ms);
int  rqfn_webhook_progress_claim_reply(const redisReply *r,
     struct rqfn_webhook_claim *out, char *err, size_t errlen);
void rqfn_webhook_progress(
    const struct rqfn_webhook_claim *w, size_t i, struct rqfn_whprog *d);
void rqfn_webhook_progress_done_cmd(struct rq_cmd *c, const char *prefix,
    const struct rqfn_webhook_done_args *a);
int  rqfn_webhook_progress_done_reply(
     const redisReply *r, int *stale, char *err, size_t errlen);

/*
 * comfy_upload (lua/upload.lua): the ComfyUI front's input store. The
 * reply is the name stored; CONFLICT when every candidate name holds other
 * bytes, INVALID for a part the key may not hold.
 */
struct rqfn_comfy_upload_args {
	const char *tenant;
	const char *subfolder; /* "" for none */
	const char *stem;
	const char *ext; /* "" or ".png" */
	const char *bytes;
	size_t	    len;
	int	    overwrite;
	long long   ttl_s;
};
void rqfn_comfy_upload_cmd(struct rq_cmd *c, const char *prefix,
    const struct rqfn_comfy_upload_args *a);
int  rqfn_comfy_upload_reply(
     const redisReply *r, const char **name, char *err, size_t errlen);

/* The control channel: a message pub/sub delivers on ctl:<wid>. */
enum rqfn_ctl_kind {
	RQFN_CTL_SUBSCRIBED, /* the subscription is in place */
	RQFN_CTL_CANCEL,     /* cancel jid */
	RQFN_CTL_UNKNOWN     /* a message of another kind: text */
};
struct rqfn_ctl {
	enum rqfn_ctl_kind kind;
	const char	  *jid;
	const char	  *text;
};
void rqfn_ctl_subscribe_cmd(
    struct rq_cmd *c, const char *prefix, const char *worker);
int rqfn_ctl_reply(
    const redisReply *r, struct rqfn_ctl *out, char *err, size_t errlen);

#endif
