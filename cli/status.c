/*
 * comfyq status JOB and comfyq cancel JOB, and the job printing they share
 * with submit --wait. A job is read with one HGETALL of its hash; nothing
 * here writes except cancel, which goes through the cancel function.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "xmalloc.h"

/* Returns the value of field in a flat HGETALL reply, or NULL. */
const char *
cli_field(const redisReply *r, const char *field)
{
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return (NULL);
	for (i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, field) == 0 &&
		    r->element[i + 1]->type == REDIS_REPLY_STRING)
			return (r->element[i + 1]->str);
	return (NULL);
}

/* Like cli_field, with def for a missing field. */
const char *
cli_field_or(const redisReply *r, const char *field, const char *def)
{
	const char *v = cli_field(r, field);

	return (v != NULL ? v : def);
}

int
cli_is_terminal(const char *state)
{
	return (state != NULL &&
	    (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
		strcmp(state, "canceled") == 0));
}

/* A flag of a job hash or an event: "true" or "1" (the older form). */
int
cli_flag(const char *v)
{
	return (v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0));
}

/* The exit code a job's state stands for. */
int
cli_state_exit(const char *state)
{
	if (state != NULL &&
	    (strcmp(state, "failed") == 0 || strcmp(state, "canceled") == 0))
		return (EXIT_JOB_FAILED);
	return (0);
}

/* Reads a job hash; NULL when there is no such job. */
redisReply *
cli_job_get(struct cli *cli, const char *jid)
{
	struct rq_cmd c;
	redisReply   *r;

	rq_cmd_init(&c, "HGETALL");
	rq_cmd_addf(&c, "%sjob:%s", cli->prefix, jid);
	r = cli_run(cli, &c);
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		return (NULL);
	}
	return (r);
}

static void
cli_fmt_ms(const char *ms, char *buf, size_t len)
{
	time_t	  t;
	struct tm tm;
	long long v;
	size_t	  n;

	v = ms ? atoll(ms) : 0;
	if (v <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	t = (time_t)(v / 1000);
	gmtime_r(&t, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03lldZ", v % 1000);
}

static void
cli_json_num(cJSON *o, const char *name, const char *v)
{
	if (v != NULL && *v != '\0')
		cJSON_AddNumberToObject(o, name, atof(v));
}

static void
cli_json_str(cJSON *o, const char *name, const char *v)
{
	if (v != NULL && *v != '\0')
		cJSON_AddStringToObject(o, name, v);
}

/* Adds a JSON text field parsed (or as a string when it is not JSON). */
static void
cli_json_raw(cJSON *o, const char *name, const char *v)
{
	cJSON *j;

	if (v == NULL || *v == '\0')
		return;
	if ((j = cJSON_Parse(v)) != NULL)
		cJSON_AddItemToObject(o, name, j);
	else
		cJSON_AddStringToObject(o, name, v);
}

static void
cli_print_job_json(const char *jid, const redisReply *h)
{
	cJSON	   *o, *spec;
	const char *v;
	char	   *text;

	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "job", jid);
	cli_json_str(o, "state", cli_field(h, "state"));
	if ((v = cli_field(h, "spec")) != NULL &&
	    (spec = cJSON_Parse(v)) != NULL) {
		cJSON *wf = cJSON_GetObjectItemCaseSensitive(spec, "workflow");

		if (cJSON_IsString(wf))
			cJSON_AddStringToObject(o, "workflow", wf->valuestring);
		cJSON_Delete(spec);
	}
	cli_json_str(o, "tenant", cli_field(h, "tenant"));
	cli_json_str(o, "priority", cli_field(h, "priority"));
	cli_json_num(o, "attempt", cli_field(h, "attempt"));
	cli_json_num(o, "max_attempts", cli_field(h, "max_attempts"));
	cli_json_num(o, "reclaims", cli_field(h, "reclaims"));
	cli_json_str(o, "worker", cli_field(h, "worker"));
	cli_json_str(o, "pool", cli_field(h, "pool"));
	if ((v = cli_field(h, "progress")) != NULL) {
		cJSON *p = cJSON_AddObjectToObject(o, "progress");

		cJSON_AddNumberToObject(p, "value", atof(v));
		cJSON_AddNumberToObject(
		    p, "max", strchr(v, '/') ? atof(strchr(v, '/') + 1) : 0);
	}
	cJSON_AddBoolToObject(
	    o, "cancel_requested", cli_flag(cli_field(h, "cancel_req")));
	cli_json_str(o, "error_code", cli_field(h, "error_code"));
	cli_json_str(o, "error", cli_field(h, "error"));
	if (cli_is_terminal(cli_field(h, "state")))
		cJSON_AddBoolToObject(
		    o, "refund", cli_flag(cli_field(h, "refund")));
	cli_json_raw(o, "outputs", cli_field(h, "outputs"));
	cli_json_raw(o, "meta", cli_field(h, "meta"));
	cli_json_num(o, "created_ms", cli_field(h, "created_ms"));
	cli_json_num(o, "started_ms", cli_field(h, "started_ms"));
	cli_json_num(o, "finished_ms", cli_field(h, "finished_ms"));
	text = cJSON_PrintUnformatted(o);
	printf("%s\n", text);
	cJSON_free(text);
	cJSON_Delete(o);
}

static void
cli_print_outputs(const char *v)
{
	cJSON	   *list, *o, *f;
	const char *where;

	if (v == NULL || (list = cJSON_Parse(v)) == NULL)
		return;
	cJSON_ArrayForEach(o, list) {
		f = cJSON_GetObjectItemCaseSensitive(o, "path");
		if (!cJSON_IsString(f))
			f = cJSON_GetObjectItemCaseSensitive(o, "key");
		if (!cJSON_IsString(f))
			f = cJSON_GetObjectItemCaseSensitive(o, "object_key");
		where = cJSON_IsString(f) ? f->valuestring : "?";
		printf("output    %s", cli_safe(where));
		if (cJSON_IsString(
			f = cJSON_GetObjectItemCaseSensitive(o, "mime")))
			printf(" %s", cli_safe(f->valuestring));
		if (cJSON_IsNumber(
			f = cJSON_GetObjectItemCaseSensitive(o, "width")))
			printf(" %dx%d", f->valueint,
			    cJSON_GetObjectItemCaseSensitive(o, "height")
				? cJSON_GetObjectItemCaseSensitive(o, "height")
				      ->valueint
				: 0);
		if (cJSON_IsNumber(
			f = cJSON_GetObjectItemCaseSensitive(o, "bytes")))
			printf(" %.0f bytes", f->valuedouble);
		printf("\n");
	}
	cJSON_Delete(list);
}

void
cli_print_job(struct cli *cli, const char *jid, const redisReply *h)
{
	const char *state, *v;
	char	    t[64];

	if (cli->json) {
		cli_print_job_json(jid, h);
		return;
	}
	state = cli_field(h, "state");
	printf("job       %s\n", cli_safe(jid));
	printf("state     %s%s\n", cli_safe(state ? state : "?"),
	    cli_flag(cli_field(h, "cancel_req")) && !cli_is_terminal(state)
		? " (cancel requested)"
		: "");
	if ((v = cli_field(h, "tenant")) != NULL && *v != '\0')
		printf("tenant    %s\n", cli_safe(v));
	printf(
	    "priority  %s\n", cli_safe(cli_field_or(h, "priority", "normal")));
	printf("attempt   %s/%s\n", cli_safe(cli_field_or(h, "attempt", "0")),
	    cli_safe(cli_field_or(h, "max_attempts", "?")));
	if ((v = cli_field(h, "worker")) != NULL)
		printf("worker    %s (pool %s)\n", cli_safe(v),
		    cli_safe(cli_field_or(h, "pool", "?")));
	if ((v = cli_field(h, "progress")) != NULL)
		printf("progress  %s\n", cli_safe(v));
	cli_fmt_ms(cli_field(h, "created_ms"), t, sizeof t);
	printf("created   %s\n", t);
	if (cli_field(h, "started_ms") != NULL) {
		cli_fmt_ms(cli_field(h, "started_ms"), t, sizeof t);
		printf("started   %s\n", t);
	}
	if (cli_field(h, "finished_ms") != NULL) {
		cli_fmt_ms(cli_field(h, "finished_ms"), t, sizeof t);
		printf("finished  %s\n", t);
	}
	if ((v = cli_field(h, "error_code")) != NULL)
		printf("error     [%s] %s\n", cli_safe(v),
		    cli_safe(cli_field(h, "error")));
	if (cli_is_terminal(state))
		printf("refund    %s\n",
		    cli_flag(cli_field(h, "refund")) ? "true" : "false");
	cli_print_outputs(cli_field(h, "outputs"));
}

int
cmd_status(struct cli *cli, int argc, char **argv)
{
	redisReply *h;
	const char *jid = NULL;
	int	    i, rc;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else if (argv[i][0] == '-' || jid != NULL)
			cli_usage_error("usage: comfyq status JOB [--json]");
		else
			jid = argv[i];
	}
	if (jid == NULL)
		cli_usage_error("usage: comfyq status JOB [--json]");
	if ((h = cli_job_get(cli, jid)) == NULL)
		cli_usage_error("no job %s in queue %s", jid, cli->queue);
	cli_print_job(cli, jid, h);
	rc = cli_state_exit(cli_field(h, "state"));
	freeReplyObject(h);
	return (rc);
}

int
cmd_cancel(struct cli *cli, int argc, char **argv)
{
	struct rqfn_cancel k;
	struct rq_cmd	   c;
	redisReply	  *r;
	const char	  *jid = NULL;
	char		   err[CLI_ERR_MAX];
	int		   i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else if (argv[i][0] == '-' || jid != NULL)
			cli_usage_error("usage: comfyq cancel JOB");
		else
			jid = argv[i];
	}
	if (jid == NULL)
		cli_usage_error("usage: comfyq cancel JOB");
	rqfn_cancel_cmd(&c, cli->prefix, jid, "canceled from the command line");
	r = cli_run(cli, &c);
	if (rqfn_cancel_reply(r, &k, err, sizeof err) == -1) {
		fprintf(stderr, "comfyq: %s\n", cli_safe(err));
		freeReplyObject(r);
		return (EXIT_USAGE);
	}
	if (cli->json) {
		cJSON *o = cJSON_CreateObject();
		char  *text;

		cJSON_AddStringToObject(o, "job", jid);
		cJSON_AddStringToObject(o, "result", k.what);
		if (k.state != NULL)
			cJSON_AddStringToObject(o, "state", k.state);
		text = cJSON_PrintUnformatted(o);
		printf("%s\n", text);
		cJSON_free(text);
		cJSON_Delete(o);
	} else if (k.kind == RQFN_CANCEL_CANCELED)
		printf("job %s canceled\n", cli_safe(jid));
	else if (k.kind == RQFN_CANCEL_REQUESTED)
		printf("job %s is running: cancel requested; its worker will "
		       "stop it\n",
		    cli_safe(jid));
	else
		printf("job %s already ended: %s\n", cli_safe(jid),
		    cli_safe(k.state));
	freeReplyObject(r);
	return (0);
}
