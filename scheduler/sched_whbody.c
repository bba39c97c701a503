/*
 * Webhook bodies and delivery state (see sched_whbody.h). A terminal
 * delivery's body is the terminal event the job record keeps:
 *
 *   {"type": <state>, "job", "state", "tenant", "attempt", "refund",
 *    "meta", "error_code", "error", "outputs", "finished_ms", "end_id"}
 *
 * the same for every attempt. A progress delivery's body is the job's
 * progress when the delivery was claimed, as the SSE progress event and
 * GET /v1/jobs/{id} give it:
 *
 *   {"type": "progress", "job", "seq", "state": "active", "tenant",
 *    "attempt", "meta", "step", "max", "percent", "node"}
 *
 * where seq is the job's progress sequence (each claim takes the next, so
 * a receiver keeps the highest it saw) and percent is step * 100 / max,
 * whole (0 while max is 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rqfn.h"
#include "sched_routes.h"
#include "sched_whbody.h"

/* A field of the record as JSON: meta and outputs are JSON text. */
static void
whbody_field(cJSON *o, const char *name, const char *v)
{
	cJSON *j;

	if (strcmp(name, "attempt") == 0)
		cJSON_AddNumberToObject(o, name, atof(v));
	else if (strcmp(name, "refund") == 0)
		cJSON_AddBoolToObject(o, name, strcmp(v, "true") == 0);
	else if ((strcmp(name, "meta") == 0 || strcmp(name, "outputs") == 0) &&
	    (j = cJSON_Parse(v)) != NULL)
		cJSON_AddItemToObject(o, name, j);
	else
		cJSON_AddStringToObject(o, name, v);
}

static char *
whbody_print(cJSON *o)
{
	char *text;

	if ((text = cJSON_PrintUnformatted(o)) == NULL)
		fatalx("cJSON_PrintUnformatted: out of memory");
	cJSON_Delete(o);
	return (text);
}

/* The POST body of a claimed terminal delivery; the caller frees it. */
char *
whbody_terminal(const struct rqfn_webhook *w)
{
	cJSON	   *o = cJSON_CreateObject();
	const char *state = "";
	size_t	    i;

	for (i = 0; i < w->nfields; i++)
		if (strcmp(w->fields[2 * i]->str, "state") == 0)
			state = w->fields[2 * i + 1]->str;
	cJSON_AddStringToObject(o, "type", state);
	cJSON_AddStringToObject(o, "job", w->jid);
	for (i = 0; i < w->nfields; i++)
		whbody_field(
		    o, w->fields[2 * i]->str, w->fields[2 * i + 1]->str);
	cJSON_AddNumberToObject(o, "finished_ms", (double)w->finished_ms);
	return (whbody_print(o));
}

/* The POST body of a claimed progress delivery; the caller frees it. */
char *
whbody_progress(const struct rqfn_whprog *w)
{
	cJSON	   *o = cJSON_CreateObject();
	const char *name, *v, *slash;
	long long   step = 0, max = 0;
	size_t	    i;

	cJSON_AddStringToObject(o, "type", "progress");
	cJSON_AddStringToObject(o, "job", w->jid);
	cJSON_AddNumberToObject(o, "seq", (double)w->seq);
	cJSON_AddStringToObject(o, "state", "active");
	for (i = 0; i < w->nfields; i++) {
		name = w->fields[2 * i]->str;
		v = w->fields[2 * i + 1]->str;
		if (strcmp(name, "progress") == 0) {
			step = atoll(v);
			if ((slash = strchr(v, '/')) != NULL)
				max = atoll(slash + 1);
		} else
			whbody_field(o, name, v);
	}
	cJSON_AddNumberToObject(o, "step", (double)step);
	cJSON_AddNumberToObject(o, "max", (double)max);
	cJSON_AddNumberToObject(
	    o, "percent", max > 0 ? (double)(step * 100 / max) : 0);
	if (cJSON_GetObjectItemCaseSensitive(o, "node") == NULL)
		cJSON_AddStringToObject(o, "node", "");
	return (whbody_print(o));
}

/* Adds names[k] (a field of h) to o as the number keys[k]; one not set
 * is 0 for the first counts keys, null for the others. */
static void
whbody_nums(cJSON *o, const redisReply *h, const char *const *names,
    const char *const *keys, size_t n, size_t counts)
{
	const char *v;
	size_t	    k;

	for (k = 0; k < n; k++)
		if ((v = sched_field(h, names[k])) != NULL && *v != '\0')
			cJSON_AddNumberToObject(o, keys[k], atof(v));
		else if (k < counts)
			cJSON_AddNumberToObject(o, keys[k], 0);
		else
			cJSON_AddNullToObject(o, keys[k]);
}

/*
 * Adds "webhook": {state, attempts, last_status, next_ms[, error]} when
 * the job has a terminal delivery, and "progress_webhook": {state, sent,
 * delivered, failed, last_status, next_ms[, error]} when it asked for
 * progress webhooks (state "none" until its first progress).
 */
void
whbody_describe(const redisReply *h, cJSON *job)
{
	static const char *const wh[] = { "wh_attempts", "wh_last_status",
		"wh_next_ms" };
	static const char *const wh_keys[] = { "attempts", "last_status",
		"next_ms" };
	static const char *const whp[] = { "whp_seq", "whp_delivered",
		"whp_failed", "whp_last_status", "whp_next_ms" };
	static const char *const whp_keys[] = { "sent", "delivered", "failed",
		"last_status", "next_ms" };
	const char		*state, *error, *asked;
	cJSON			*o;

	if (h == NULL || h->type != REDIS_REPLY_ARRAY)
		return;
	if ((state = sched_field(h, "wh_state")) != NULL) {
		o = cJSON_AddObjectToObject(job, "webhook");
		cJSON_AddStringToObject(o, "state", state);
		whbody_nums(o, h, wh, wh_keys, 3, 0);
		error = sched_field(h, "wh_error");
		if (error != NULL && *error != '\0')
			cJSON_AddStringToObject(o, "error", error);
	}
	asked = sched_field(h, "webhook_progress");
	if (asked == NULL || strcmp(asked, "1") != 0)
		return;
	state = sched_field(h, "whp_state");
	o = cJSON_AddObjectToObject(job, "progress_webhook");
	cJSON_AddStringToObject(o, "state", state != NULL ? state : "none");
	whbody_nums(o, h, whp, whp_keys, 5, 3);
	error = sched_field(h, "whp_error");
	if (error != NULL && *error != '\0')
		cJSON_AddStringToObject(o, "error", error);
}
