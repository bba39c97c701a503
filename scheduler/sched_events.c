/*
 * The routes of the live views: a job's events and every job's events as
 * Server-Sent Events (sched_sse.c does the streaming), and the Prometheus
 * text of /metrics (sched_metrics.c). What is left here is the scope: a
 * token sees only the events of its tenants.
 */
#include <string.h>

#include "sched.h"
#include "sched_http.h"
#include "sched_metrics.h"
#include "sched_routes.h"
#include "sched_sse.h"

#define TENANT_MAX 256

SCHED_ROUTE(events_job)
{
	sse_serve(s->sse, req, args[0], sched_scope(tok),
	    http_header(req, "Last-Event-ID"));
}

/* ?tenant= narrows the stream; within a token's scope only. */
SCHED_ROUTE(events_all)
{
	const char *scope = sched_scope(tok);
	char	    tenant[TENANT_MAX];

	(void)args;
	if (http_query(req, "tenant", tenant, sizeof tenant) == -1)
		*tenant = '\0';
	if (*tenant != '\0' && !sched_tenant_ok(scope, tenant)) {
		http_reply_error(req, 403, "forbidden",
		    "this token may not read that tenant's events");
		return;
	}
	sse_serve(s->sse, req, NULL, *tenant != '\0' ? tenant : scope,
	    http_header(req, "Last-Event-ID"));
}

SCHED_ROUTE(metrics_get)
{
	(void)args;
	(void)tok;
	metrics_serve(s->metrics, req);
}
