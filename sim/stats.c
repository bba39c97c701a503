/*
 * GET /sim/stats: what the sim counted since it started, for benchmarks
 * (bench/): prompts posted, started and ended; the time the "GPU" spent
 * idle between the end of one prompt and the start of the next (a gap is
 * counted only when a prompt follows an ended one, so the wait for the
 * first prompt and after the last one is not in it); the time spent
 * running prompts; checkpoint loads (the nodes that paid model-load-ms);
 * interrupts. Times are CLOCK_MONOTONIC in microseconds, the clock every
 * process on the host shares, so a benchmark compares last_post_us with
 * the moment it enqueued a job. The counters only grow: a reader takes
 * differences.
 */
#include <event2/http.h>

#include "sim.h"
#include "util.h"

static struct {
	long long posted, started, ended, gaps, loads, interrupts;
	long long idle_us, busy_us;
	long long last_post_us, last_interrupt_us, start_us, end_us;
} st;

void
stats_prompt_posted(void)
{
	st.posted++;
	st.last_post_us = clock_mono_us();
}

void
stats_prompt_start(void)
{
	long long now = clock_mono_us();

	if (st.ended > 0) {
		st.idle_us += now - st.end_us;
		st.gaps++;
	}
	st.started++;
	st.start_us = now;
}

void
stats_prompt_end(void)
{
	st.end_us = clock_mono_us();
	st.busy_us += st.end_us - st.start_us;
	st.ended++;
}

void
stats_model_load(void)
{
	st.loads++;
}

void
stats_interrupt(void)
{
	st.interrupts++;
	st.last_interrupt_us = clock_mono_us();
}

int
route_sim_stats(struct evhttp_request *req, cJSON *body)
{
	cJSON *o = cJSON_CreateObject();

	(void)body;
	cJSON_AddNumberToObject(o, "prompts_posted", (double)st.posted);
	cJSON_AddNumberToObject(o, "prompts_started", (double)st.started);
	cJSON_AddNumberToObject(o, "prompts_ended", (double)st.ended);
	cJSON_AddNumberToObject(o, "idle_us", (double)st.idle_us);
	cJSON_AddNumberToObject(o, "idle_gaps", (double)st.gaps);
	cJSON_AddNumberToObject(o, "busy_us", (double)st.busy_us);
	cJSON_AddNumberToObject(o, "model_loads", (double)st.loads);
	if (work_loaded_ckpt() != NULL)
		cJSON_AddStringToObject(o, "loaded", work_loaded_ckpt());
	else
		cJSON_AddNullToObject(o, "loaded");
	cJSON_AddNumberToObject(o, "interrupts", (double)st.interrupts);
	cJSON_AddNumberToObject(o, "last_post_us", (double)st.last_post_us);
	cJSON_AddNumberToObject(
	    o, "last_interrupt_us", (double)st.last_interrupt_us);
	cJSON_AddNumberToObject(o, "now_us", (double)clock_mono_us());
	http_reply_json(req, 200, o);
	return (0);
}
