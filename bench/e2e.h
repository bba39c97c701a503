/*
 * bench_e2e: comfyq end to end, through real comfyq-sim, comfyq-worker and
 * comfyq-janitor processes on the Redis of COMFYQ_TEST_REDIS_URL: the
 * measures of bench/run.sh (bench/README.md says what each figure is).
 * Each measure builds a stack (sims, workers, maybe a janitor, on a queue
 * of its own), measures, and stops it; the figures go into one cJSON
 * object of flat metrics, the keys bench/report.py reads, which
 * bench/anchors/bullmq.js writes for BullMQ too.
 *
 *   e2e_main.c    options, the measure table, the JSON file
 *   e2e_stack.c   starting and stopping the processes; /sim/stats
 *   e2e_probe.c   /proc CPU and RSS, INFO snapshots, enqueue, percentiles
 *   e2e_latency.c dispatch and terminal latency, cancel -> interrupt
 *   e2e_load.c    the GPU idle gap, throughput, Redis cost per job
 *   e2e_reclaim.c kill -9 -> claimed again; FIFO vs model-aware claiming
 */
#ifndef COMFYQ_E2E_H
#define COMFYQ_E2E_H

#include <sys/types.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "rq.h"

#define E2E_WORKERS_MAX 4

struct e2e {
	const char   *url; /* Redis */
	char	      dir[128];
	redisContext *c;	     /* the bench's own connection */
	char	      self_addr[64]; /* its address, as MONITOR shows it */
	int	      seq;	     /* queue names */
	long long     samples;	     /* latency samples */
	long long     jobs;	     /* throughput jobs per configuration */
	long long     monitor_jobs;  /* jobs of the MONITOR run */
	long long     gap_jobs;	     /* jobs per idle-gap configuration */
	long long     cancel_runs;   /* cancels */
	long long     reclaim_runs;  /* kill -9 with short leases */
	long long     mix_jobs;	     /* the model-aware workload */
	long long     best_slots;    /* the best throughput configuration: */
	long long     best_workers;  /* workers, one sim each */
	cJSON	     *m;	     /* the metrics */
};

struct stack {
	struct e2e *e;
	char	    queue[32], prefix[RQ_PREFIX_MAX], out[200];
	int	    n; /* sims started; worker i drives sim i */
	pid_t	    sim[E2E_WORKERS_MAX], wk[E2E_WORKERS_MAX], janitor;
	int	    port[E2E_WORKERS_MAX];
	char	    wid[E2E_WORKERS_MAX][80];
};

/* A redis INFO snapshot: commands (the bench's own INFO, CONFIG, CLIENT
 * and MONITOR left out), socket reads, CPU. */
struct rinfo {
	long long cmds, reads;
	double	  cpu_us;
};

/* e2e_stack.c */
void stack_init(struct stack *, struct e2e *, const char *what);
void stack_sims(
    struct stack *, int n, const char *step_ms, const char *load_ms);
void stack_worker(
    struct stack *, int i, const char *slots, const char *const *extra);
void	  stack_janitor(struct stack *, const char *tick_ms);
void	  stack_stop(struct stack *);
cJSON	 *sim_stats(struct stack *, int i);
long long stat_ll(const cJSON *, const char *key);
long long sim_stat(struct stack *, int i, const char *key);

/* e2e_probe.c */
void	  rinfo_get(struct e2e *, struct rinfo *);
long long e2e_int(struct e2e *, const char *fmt, const char *prefix);
void	  e2e_fill(struct stack *, const char *spec, long long n);
void	  e2e_enqueue(struct stack *, const char *spec, char *jid, size_t);
void	  e2e_enqueue_model(
	 struct stack *, const char *spec, const char *model, char *jid, size_t);
void   e2e_set(struct e2e *, const char *key, double v);
double e2e_pct(double *v, long long n, int p);
void   e2e_start_long(
      struct stack *, int sim, long long seed, char *jid, size_t jidlen);
const char *e2e_job_field(
    struct stack *, const char *jid, const char *f, char *out, size_t outlen);

/* the measures */
void measure_latency(struct e2e *);
void measure_cancel(struct e2e *);
void measure_gap(struct e2e *);
void measure_throughput(struct e2e *);
void measure_split(struct e2e *);
void measure_reclaim(struct e2e *);
void measure_reclaim_default(struct e2e *);
void measure_models(struct e2e *);

extern const char e2e_smoke_spec[];

#endif
