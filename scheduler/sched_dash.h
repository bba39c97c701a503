/*
 * The dashboard (sched_dash.c): GET / serves one self-contained page
 * (scheduler/dashboard.html, embedded at build), and the two read-only
 * views the page needs that the rest of the API does not give: the recent
 * jobs (GET /v1/jobs) and jobs ended per minute over the last hour with
 * their latency (GET /v1/stats/history). sched_http.c's table maps the
 * routes here; with admin-listen set, / is served there only.
 */
#ifndef COMFYQ_SCHED_DASH_H
#define COMFYQ_SCHED_DASH_H

#include "sched_routes.h"

SCHED_ROUTE(dash_page);
SCHED_ROUTE(dash_jobs);
SCHED_ROUTE(dash_history);

/* The page, embedded at build time (scheduler/dashboard.html). */
extern const char   sched_dash_html[];
extern const size_t sched_dash_html_len;

#endif
