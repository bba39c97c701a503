/*
 * The worker object, private to worker.c and its split files
 * (worker_claim.c, worker_record.c, worker_cancel.c, worker_env.c): its Redis connections,
 * its ComfyUI client and backend, the caches runs read through run_env,
 * and the list of runs in flight. Nothing outside these files sees it.
 */
#ifndef COMFYQ_WORKER_INT_H
#define COMFYQ_WORKER_INT_H

#include <cjson/cJSON.h>
#include <event2/util.h>

#include "controlnet.h"
#include "gpu.h"
#include "inputs.h"
#include "rq.h"
#include "run.h"
#include "wfjob.h"
#include "worker.h"

struct event;
struct backend;
struct comfy;
struct httpc;
struct httpc_req;
struct tpool;
struct wf_registry;

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
	struct s3	   *s3; /* store s3's bucket, else NULL */
	struct comfy	   *comfy;
	struct backend	   *backend;
	struct tpool	   *pool_threads; /* inputs, Canny, decoding */
	struct tpool	   *sync_threads; /* output-fsync's flushes */
	struct wf_registry *workflows;
	struct cn_map	    cn_map;
	struct inputs_opts  inputs;
	cJSON		   *objinfo;	    /* cached GET /object_info */
	struct httpc_req   *objinfo_req;    /* the fetch on becoming healthy */
	long long	    objinfo_set_ms; /* last published (mono), 0: due */
	/* The checkpoint key its ComfyUI holds: that of the job it last ran
	 * to success; "" after a /free or a lost backend (worker_claim.c). */
	char model[WF_MODEL_MAX + 1];

	int	      registered;
	int	      registering;    /* a register call is in flight */
	int	      register_again; /* ...and the record changed since */
	const char   *health_written; /* what the last register wrote */
	long long     started_ms;     /* wall clock, for the record */
	int	      capacity;	      /* the pool's slots, from Redis */
	int	      claiming;	      /* a claim or acquire call is in flight */
	char	      acquire_jid[64]; /* the run the acquire is for */
	int	      claim_full;      /* the last claim: every slot was ours */
	int	      fetch_none;      /* the last claim: no job fetches first */
	int	      blocking;	       /* 0, or the block_mode */
	struct event *hb_timer;
	struct event *retry_timer; /* re-register, NOPOOL */
	struct event *drain_timer;
	int	      drain_released;

	struct run_env env; /* what each run is given (worker_env.c) */

	struct run **runs; /* jobs in flight */
	int	     nruns;
	int	     runs_cap;
};

#define WORKER_RETRY_MS 5000 /* re-register, NOPOOL, a bad reply */

/* worker.c */
int  worker_healthy(const struct worker *w);
void worker_stop(struct worker *w);
void worker_latch_gpu_fault(struct worker *w, const char *why);
void worker_set_objinfo(struct worker *w, cJSON *info);
void worker_objinfo_tick(struct worker *w);

/* worker_claim.c */
void	    worker_claim_maybe(struct worker *w);
void	    worker_unblock(struct worker *w);
void	    worker_run_done(struct worker *w, struct run *r);
struct run *worker_find_run(struct worker *w, const char *prompt_id);
struct run *worker_find_job(struct worker *w, const char *jid);
void	    worker_rb_state(struct rq_async *ra, int up, void *arg);
void	    worker_model_set(struct worker *w, const char *model);

/* worker_record.c */
void worker_register(struct worker *w);
void worker_record_changed(struct worker *w);
void worker_heartbeat(evutil_socket_t fd, short ev, void *arg);
void worker_retry_cb(evutil_socket_t fd, short ev, void *arg);
void worker_rc_state(struct rq_async *ra, int up, void *arg);

/* worker_cancel.c */
void worker_rs_state(struct rq_async *ra, int up, void *arg);

/* worker_env.c */
void worker_env_init(struct worker *w);

#endif
