/*
 * One job on this worker, from claim to its report: a state machine driven
 * by HTTP replies, WebSocket events, timers and heartbeat news.
 *
 * A run knows its owner only through struct run_env, which the owner
 * keeps for as long as any run lives: the settings it reads (live, so a
 * SIGHUP reaches runs in flight), the shared things it uses (event base,
 * thread pools, workflows), and tables of calls, each given env->ctx
 * first: its Redis calls (run_redis), its ComfyUI requests (run_comfy),
 * its object store (run_store, for store s3) and its news back to the
 * owner (run_hooks). The worker fills them with the
 * real thing (worker_env.c); a unit test fills them with fakes.
 */
#ifndef COMFYQ_RUN_H
#define COMFYQ_RUN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "errcode.h"
#include "httpc.h"
#include "rq.h"
#include "s3.h"

struct cn_map;
struct event_base;
struct inputs_opts;
struct run;
struct tpool;
struct wf_registry;
struct worker_cfg;

/*
 * The functions of lua/ a run calls, for its job (jid, fence). Each
 * returns 0 once the call is sent, and then calls cb exactly once, with a
 * NULL reply when the connection was lost; -1 when it could not be sent
 * (cb is never called).
 */
struct run_redis {
	int (*job_files)(void *ctx, const char *jid, const char *fence,
	    const char *files, redisCallbackFn *cb, void *arg);
	/* nodes: what ComfyUI did (lua/progress.lua, complete.lua,
	 * fail.lua), or NULL. */
	int (*progress)(void *ctx, const char *jid, const char *fence,
	    long long value, long long max, const char *node, const char *nodes,
	    redisCallbackFn *cb, void *arg);
	int (*complete)(void *ctx, const char *jid, const char *fence,
	    const char *records, const char *nodes, redisCallbackFn *cb,
	    void *arg);
	/* retryable 0: a terminal failure (refunded); the backoff of a
	 * retry follows from the settings. */
	int (*fail)(void *ctx, const char *jid, const char *fence,
	    enum errcode code, const char *msg, int retryable,
	    const char *nodes, redisCallbackFn *cb, void *arg);
	int (*release)(void *ctx, const char *jid, const char *fence,
	    const char *why, redisCallbackFn *cb, void *arg);
	/* SET key data PX ttl_ms: an output kept in Redis. */
	int (*store_blob)(void *ctx, const char *key, const void *data,
	    size_t len, long long ttl_ms, redisCallbackFn *cb, void *arg);
};

/*
 * The ComfyUI requests of a run (comfy.h has their meaning). A request
 * calls cb exactly once unless it is cancelled first; cancel takes NULL.
 */
struct run_comfy {
	struct httpc_req *(*prompt)(void *ctx, const char *prompt_id,
	    const cJSON *graph, httpc_cb cb, void *arg);
	struct httpc_req *(*history)(
	    void *ctx, const char *prompt_id, httpc_cb cb, void *arg);
	struct httpc_req *(*queue)(void *ctx, httpc_cb cb, void *arg);
	struct httpc_req *(*view)(void *ctx, const char *filename,
	    const char *subfolder, const char *type, int fd, size_t max_bytes,
	    long timeout_ms, httpc_cb cb, void *arg);
	struct httpc_req *(*upload)(void *ctx, const char *name,
	    const void *data, size_t len, const char *subfolder, httpc_cb cb,
	    void *arg);
	struct httpc_req *(*object_info)(void *ctx, httpc_cb cb, void *arg);
	void (*interrupt)(void *ctx, const char *prompt_id);
	void (*free_memory)(void *ctx);
	void (*cancel)(void *ctx, struct httpc_req *req);
};

/*
 * The object store of store s3 (s3.h): put stores len bytes of the open
 * file fd as key and calls cb once unless cancel comes first; record adds
 * where the object is (bucket, key, presigned URL) to an output record.
 */
struct run_store {
	struct s3_up *(*put)(void *ctx, const char *key, int fd, size_t len,
	    const char *mime, s3_cb cb, void *arg);
	void (*cancel)(void *ctx, struct s3_up *up);
	void (*record)(void *ctx, const char *key, cJSON *rec);
};

/* What a run tells its owner, and the owner's cache of /object_info. */
struct run_hooks {
	/* The run has ended for good: it must leave the owner's list. It
	 * may still be allocated (replies pending); it frees itself. */
	void (*done)(void *ctx, struct run *r);
	/* The run waits for a slot (run_awaits_slot): the owner may take
	 * one for it and call run_slot_granted. */
	void (*wants_slot)(void *ctx);
	/* A ComfyUI request failed at the transport: check its health. */
	void (*suspect)(void *ctx);
	/* A CUDA fault: the device is not to be trusted. */
	void (*gpu_fault)(void *ctx, const char *why);
	/* The cached /object_info, or NULL; set_objinfo replaces it and
	 * takes info. */
	const cJSON *(*objinfo)(void *ctx);
	void (*set_objinfo)(void *ctx, cJSON *info);
	/* The run's prompt waits behind prompt_id, which ComfyUI runs for
	 * another client (client_id: a worker's id, as every comfyq worker
	 * is its ComfyUI's clientId): the owner interrupts it when that
	 * client is no live worker of the queue (a worker killed mid-prompt
	 * left it, and a hung one would block this backend for good). NULL:
	 * nothing is done. */
	void (*stranger)(void *ctx, const char *prompt_id,
	    const char *client_id);
};

struct run_env {
	struct event_base	*base;
	const struct worker_cfg *cfg;	    /* settings.h; read live */
	const char		*prefix;    /* the queue's keys (blob keys) */
	struct tpool		*pool;	    /* readies inputs */
	struct tpool		*sync_pool; /* flushes outputs (output-fsync) */
	const struct wf_registry *workflows;
	const struct cn_map	 *cn;
	const struct inputs_opts *inputs;
	int stopped; /* the owner is freeing everything: go no further */
	const struct run_redis *redis;
	const struct run_comfy *comfy;
	const struct run_store *store; /* used with store s3 only */
	const struct run_hooks *hooks;
	void		       *ctx;
};

struct run *run_start(const struct run_env *env, const char *jid,
    const char *fence, int attempt, const char *spec, size_t spec_len,
    long long timeout_s, int slot, const char *model);
void	    run_event(struct run *r, const char *type, const cJSON *data);
void	    run_link(struct run *r, int up);
void	    run_lost(struct run *r);
void	    run_cancel(struct run *r);
void	    run_release(struct run *r);
void	    run_abandon(struct run *r);
const char *run_jid(const struct run *r);
const char *run_fence(const struct run *r);
const char *run_prompt_id(const struct run *r);
const char *run_model(const struct run *r);
int	    run_succeeded(const struct run *r);
int	    run_holds_lease(const struct run *r);
int	    run_has_slot(const struct run *r);
int	    run_awaits_slot(const struct run *r);
void	    run_slot_granted(struct run *r);

#endif
