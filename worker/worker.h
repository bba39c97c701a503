/*
 * comfyq-worker: one process in front of one ComfyUI. This header holds the
 * configuration and the worker object every worker module shares; each
 * module keeps its own state private (struct run in run.c, struct comfy in
 * comfy.c, struct backend in backend.c).
 *
 *   main.c     config table, signals, the loop
 *   worker.c   Redis: register, claim and acquire (BZPOPMIN on markers),
 *              heartbeat, cancels (SUBSCRIBE), drain; the list of runs
 *   run.c      one job's state machine, from claim to complete/fail
 *   comfy.c    ComfyUI's HTTP API and its WebSocket, events to runs
 *   backend.c  health of ComfyUI and starting it when it is down
 *   outputs.c  history outputs: fetch, validate, store
 *   errmap.c   ComfyUI failures to stable error codes
 *   jobfiles.c the files a graph reads, for the janitor's file cleanup
 * The graph a job sends comes from the workflow layer (shared/workflow/wfjob.h):
 * templates, LoRA and ControlNet surgery, input images.
 */
#ifndef COMFYQ_WORKER_H
#define COMFYQ_WORKER_H

#include <cjson/cJSON.h>

#include "controlnet.h"
#include "errcode.h"
#include "gpu.h"
#include "inputs.h"
#include "rq.h"

struct event_base;
struct event;
struct backend;
struct comfy;
struct httpc;
struct run;
struct tpool;
struct wf_registry;

enum store_mode { STORE_DIR, STORE_REDIS, STORE_BOTH };

struct worker_cfg {
	char	 *redis_url;
	char	 *queue;
	char	 *comfyui_url;
	char	 *worker_id;
	char	 *pool;
	long long slots;
	long long max_inflight;
	long long vram_reserve_mb;
	long long gpu_device;
	long long lease_ms;
	long long heartbeat_ms;
	long long worker_ttl_ms;
	long long job_timeout_s;
	long long silence_timeout_s;
	long long ws_ping_s;
	long long ws_pong_timeout_s;
	long long http_timeout_ms;
	long long progress_min_ms;
	long long retry_base_ms;
	long long retry_max_ms;
	long long max_resubmits;
	char	 *output_dir;
	int	  store;
	long long blob_ttl_s;
	long long max_output_bytes;
	long long max_output_pixels;
	long long output_timeout_ms;
	int	  output_fsync;
	long long drain_grace_s;
	long long block_timeout_s;
	char	 *start_cmd;
	long long start_timeout_s;
	long long health_interval_ms;
	char	 *workflows_dir;
	char	 *controlnet_models;
	double	  lora_weight_scale;
	long long input_max_bytes;
	long long input_timeout_ms;
	int	  allow_private_urls;
	long long threads;
	long long prefetch;
	int	  raw_graphs; /* 0 allow, 1 deny */
	char	 *graph_files;
	int	  log_level;
	int	  log_format;
};

enum worker_state { WS_RUNNING, WS_DRAINING, WS_STOPPED };

struct worker {
	struct worker_cfg *cfg;
	struct event_base *base;
	enum worker_state  state;
	char		   id[128];
	char		   host[256];
	char		   pool[160];
	char		   prefix[RQ_PREFIX_MAX];
	struct gpu_info	   gpu;
	int		   gpu_broken; /* latched by a GPU fault */
	char		   gpu_why[256];

	struct rq_async	   *rc; /* commands */
	struct rq_async	   *rb; /* the blocking BZPOPMIN */
	struct rq_async	   *rs; /* subscribed to ctl:<id> (cancels) */
	long long	    rb_client_id;
	struct httpc	   *http;
	struct comfy	   *comfy;
	struct backend	   *backend;
	struct tpool	   *pool_threads; /* inputs, Canny, decoding */
	struct wf_registry *workflows;
	struct cn_map	    cn_map;
	struct inputs_opts  inputs;
	cJSON		   *objinfo; /* cached GET /object_info */

	int	      registered;
	int	      registering;    /* a register call is in flight */
	int	      register_again; /* ...and the record changed since */
	const char   *health_written; /* what the last register wrote */
	long long     started_ms;     /* wall clock, for the record */
	int	      capacity;	      /* the pool's slots, from Redis */
	int	      claiming;	      /* a claim or acquire call is in flight */
	char	      acquire_jid[64]; /* the run the acquire is for */
	int	      claim_full;      /* the last claim: every slot was ours */
	int	      blocking;	       /* 0, or the block_mode */
	struct event *hb_timer;
	struct event *retry_timer; /* re-register, NOPOOL */
	struct event *drain_timer;
	int	      drain_released;

	struct run **runs; /* jobs in flight */
	int	     nruns;
	int	     runs_cap;
};

/* worker.c */
struct worker *worker_new(struct event_base *, struct worker_cfg *);
void	       worker_free(struct worker *);
void	       worker_claim_maybe(struct worker *);
void	       worker_drain(struct worker *);
void	       worker_reloaded(struct worker *);
void	       worker_run_done(struct worker *, struct run *);
struct run    *worker_find_run(struct worker *, const char *);
void	       worker_backend_changed(struct worker *);
void	       worker_latch_gpu_fault(struct worker *, const char *);
int	       worker_healthy(const struct worker *);
void	       worker_set_objinfo(struct worker *, cJSON *);

/* main.c */
extern const struct cfg_table worker_cfg_table;

#endif
