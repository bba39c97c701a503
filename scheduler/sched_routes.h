/*
 * The route handlers, one file per group: sched_jobs.c (submit, read,
 * cancel), sched_outputs.c (output bytes and thumbnails), sched_info.c
 * (health, readiness, workflows, workers, pools, stats, the OpenAPI
 * document), sched_events.c (SSE and /metrics), sched_dash.c (the
 * dashboard page, recent jobs, history), sched_comfy*.c (ComfyUI's API
 * under /comfy/). sched_http.c's table maps routes to them.
 */
#ifndef COMFYQ_SCHED_ROUTES_H
#define COMFYQ_SCHED_ROUTES_H

#include <hiredis/hiredis.h>

struct evhttp_request;
struct sched;
struct sched_token;

#define SCHED_ROUTE(fn)                                                        \
	void fn(struct sched *s, struct evhttp_request *req,                   \
	    const char *const *args, const struct sched_token *tok)

SCHED_ROUTE(jobs_submit);
SCHED_ROUTE(jobs_get);
SCHED_ROUTE(jobs_cancel);
SCHED_ROUTE(outputs_get);
SCHED_ROUTE(info_healthz);
SCHED_ROUTE(info_readyz);
SCHED_ROUTE(info_openapi);
SCHED_ROUTE(info_workflows);
SCHED_ROUTE(info_workflow);
SCHED_ROUTE(info_workers);
SCHED_ROUTE(info_pools);
SCHED_ROUTE(info_stats);
/* ComfyUI's API under /comfy/ (sched_comfy.h) */
SCHED_ROUTE(comfy_prompt);
SCHED_ROUTE(comfy_prompt_info);
SCHED_ROUTE(comfy_queue);
SCHED_ROUTE(comfy_history);
SCHED_ROUTE(comfy_history_one);
SCHED_ROUTE(comfy_view);
SCHED_ROUTE(comfy_interrupt);
SCHED_ROUTE(comfy_upload);
SCHED_ROUTE(comfy_object_info);
SCHED_ROUTE(comfy_object_info_one);
SCHED_ROUTE(comfy_system_stats);
SCHED_ROUTE(comfy_ws);
SCHED_ROUTE(events_job);
SCHED_ROUTE(events_all);
SCHED_ROUTE(metrics_get);
SCHED_ROUTE(dash_page);
SCHED_ROUTE(dash_jobs);
SCHED_ROUTE(dash_history);

/* sched_jobs.c: a job as the API shows it, for GET and for POST's reply. */
enum jobs_mode {
	JOBS_FULL,    /* GET: 200 with the whole job */
	JOBS_CREATED, /* POST, a new job: 201 {id, state, position} */
	JOBS_REPLAY,  /* POST, an idempotent replay: 200 with the whole job */
};
void jobs_read(struct sched *s, struct evhttp_request *req, const char *jid,
    const char *tenant_prefix, enum jobs_mode mode);

/* Helpers the handlers share (sched_jobs.c). */
const char *sched_field(const redisReply *r, const char *field);
const char *sched_scope(const struct sched_token *tok);
int	    sched_tenant_ok(const char *tenant_prefix, const char *tenant);

#endif
