/*
 * kill -9 -> claimed again: worker A runs a 50 s job, worker B (its own
 * sim) waits; A gets SIGKILL at a random point of its heartbeat period
 * and the figure is the time until the job's record names B (polled every
 * millisecond), with a janitor running: short leases (lease 2 s,
 * heartbeat 0.5 s, janitor tick 100 ms) or the defaults (30 s, 10 s,
 * 1 s). And the model-aware claiming workload: mix_jobs SDXL jobs over 3
 * checkpoints in a fixed pseudo-random order, two workers with one sim
 * each (model-load-ms 200, step-ms 20), from the first enqueue to the last
 * completion, and the checkpoint loads the sims counted; in FIFO order,
 * and model-aware when the worker has that setting (MODEL_AWARE_SETTING in
 * its --help), else it is reported as not built.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "e2e.h"
#include "standin.h"
#include "util.h"
#include "xmalloc.h"

/* The worker setting that turns model-aware claiming on (a boolean). */
#define MODEL_AWARE_SETTING "model-aware"

static const char *const short_lease[] = { "--lease-ms", "2000",
	"--heartbeat-ms", "500", NULL };

/* One kill -9; the ms until the other worker holds the job. */
static double
reclaim_once(struct e2e *e, int dflt, long long seed)
{
	const char *const *extra = dflt ? NULL : short_lease;
	struct stack	   s;
	char		   jid[64], who[96];
	long long	   t0, start;
	double		   ms;

	stack_init(&s, e, "reclaim");
	stack_sims(&s, 2, "10", "0");
	stack_worker(&s, 0, "1", extra);
	stack_janitor(&s, dflt ? "1000" : "100");
	e2e_start_long(&s, 0, seed, jid, sizeof jid);
	stack_worker(&s, 1, "1", extra);
	bench_sleep_ms((long long)(rand_u64() % (dflt ? 10000 : 500)));
	t0 = clock_mono_us();
	proc_stop(s.wk[0], SIGKILL, 5000);
	s.wk[0] = 0;
	start = clock_mono_ms();
	while (strcmp(e2e_job_field(&s, jid, "worker", who, sizeof who),
		   s.wid[1]) != 0) {
		if (clock_mono_ms() - start > 180000)
			bench_die(jid, "not claimed again in 180 s");
		bench_sleep_ms(1);
	}
	ms = (double)(clock_mono_us() - t0) / 1000.0;
	stack_stop(&s);
	return (ms);
}

void
measure_reclaim(struct e2e *e)
{
	double	 *v = xcalloc((size_t)e->reclaim_runs, sizeof *v);
	long long i;

	for (i = 0; i < e->reclaim_runs; i++)
		v[i] = reclaim_once(e, 0, i + 1);
	e2e_set(e, "reclaim_short_ms", e2e_pct(v, e->reclaim_runs, 50));
	free(v);
}

void
measure_reclaim_default(struct e2e *e)
{
	e2e_set(e, "reclaim_default_ms", reclaim_once(e, 1, 1));
}

/* Whether comfyq-worker --help lists the model-aware setting. */
static int
model_aware_built(void)
{
	static const char want[] = "  --" MODEL_AWARE_SETTING " ";
	char		  line[512];
	FILE		 *p;
	int		  found = 0;

	if ((p = popen(WORKER_BIN " --help 2>&1", "r")) == NULL)
		bench_die("popen", WORKER_BIN);
	while (fgets(line, sizeof line, p) != NULL)
		if (strncmp(line, want, sizeof want - 1) == 0)
			found = 1;
	pclose(p);
	return (found);
}

/* Makespan (ms) and loads of the mixed workload. */
static void
mix_run(struct e2e *e, const char *const *extra, double *ms, double *loads)
{
	static const char *const ckpt[] = { "sd_xl_base_1.0.safetensors",
		"sd_xl_refiner_1.0.safetensors", "svd_xt.safetensors" };
	struct stack		 s;
	char			 spec[320], jid[64];
	unsigned long		 x = 14;
	long long		 i, t0, start;
	const char		*m;

	stack_init(&s, e, "mix");
	stack_sims(&s, 2, "20", "200");
	stack_worker(&s, 0, "1", extra);
	stack_worker(&s, 1, "1", extra);
	t0 = clock_mono_us();
	for (i = 0; i < e->mix_jobs; i++) {
		x = x * 1103515245UL + 12345UL;
		m = ckpt[(x >> 16) % 3];
		snprintf(spec, sizeof spec,
		    "{\"workflow\":\"sdxl_txt2img\",\"params\":{\"prompt\":"
		    "\"x\",\"steps\":5,\"width\":512,\"height\":512,\"seed\":"
		    "%lld,\"checkpoint\":\"%s\"}}",
		    i + 1, m);
		/* One checkpoint: its key is its name (wf_job_model). */
		e2e_enqueue_model(&s, spec, m, jid, sizeof jid);
	}
	start = clock_mono_ms();
	while (e2e_int(e, "ZCARD %sdone", s.prefix) < e->mix_jobs) {
		if (clock_mono_ms() - start > 300000)
			bench_die("models", "jobs not done in 300 s");
		bench_sleep_ms(5);
	}
	*ms = (double)(clock_mono_us() - t0) / 1000.0;
	*loads = (double)(sim_stat(&s, 0, "model_loads") +
	    sim_stat(&s, 1, "model_loads"));
	stack_stop(&s);
}

void
measure_models(struct e2e *e)
{
	static const char *const aware[] = { "--" MODEL_AWARE_SETTING, "true",
		NULL };
	static const char *const fifo[] = { "--" MODEL_AWARE_SETTING, "false",
		NULL };
	double			 ms, loads;
	int			 built = model_aware_built();

	/* FIFO: the fair order alone (model-aware off where it exists). */
	mix_run(e, built ? fifo : NULL, &ms, &loads);
	e2e_set(e, "fifo_makespan_ms", ms);
	e2e_set(e, "fifo_loads", loads);
	cJSON_DeleteItemFromObjectCaseSensitive(e->m, "model_aware");
	if (!built) {
		cJSON_AddStringToObject(e->m, "model_aware", "not built");
		return;
	}
	cJSON_AddStringToObject(e->m, "model_aware", "built");
	mix_run(e, aware, &ms, &loads);
	e2e_set(e, "aware_makespan_ms", ms);
	e2e_set(e, "aware_loads", loads);
}
