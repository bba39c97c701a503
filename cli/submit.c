/*
 * comfyq submit: build a job spec from flags, check it with the shared job
 * model (so a bad field is named before anything is sent), enqueue it, and
 * with --wait follow the events stream until the job ends, drawing a
 * progress bar when stderr is a terminal.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "job.h"
#include "util.h"
#include "wfjob.h"

#define SUBMIT_USAGE                                                           \
	"usage: comfyq submit (--workflow NAME | --graph FILE) "               \
	"[--param K=V ...]\n"                                                  \
	"       [--tenant T] [--priority high|normal|low] "                    \
	"[--idempotency-key K]\n"                                              \
	"       [--timeout S] [--max-attempts N] [--meta K=V ...] "            \
	"[--webhook URL]\n"                                                    \
	"       [--webhook-progress] [--wait] [--json]"

/*
 * A value from K=V: a JSON number, true or false stays that type, anything
 * else is a string. Returns NULL when arg has no '='.
 */
static cJSON *
submit_value(const char *arg, char *key, size_t keylen)
{
	const char *eq = strchr(arg, '=');
	const char *v;
	double	    d;

	if (eq == NULL || eq == arg || (size_t)(eq - arg) >= keylen)
		return (NULL);
	memcpy(key, arg, (size_t)(eq - arg));
	key[eq - arg] = '\0';
	v = eq + 1;
	if (strcmp(v, "true") == 0)
		return (cJSON_CreateTrue());
	if (strcmp(v, "false") == 0)
		return (cJSON_CreateFalse());
	if (*v != '\0' && strchr("-0123456789", *v) != NULL &&
	    parse_double(v, -1e300, 1e300, &d) == 0)
		return (cJSON_CreateNumber(d));
	return (cJSON_CreateString(v));
}

/* Adds K=V to the object named name inside spec, creating it. */
void
submit_kv(cJSON *spec, const char *name, const char *arg)
{
	cJSON *obj, *v;
	char   key[256];

	if ((v = submit_value(arg, key, sizeof key)) == NULL)
		cli_usage_error("--%s: expected K=V, got '%s'",
		    strcmp(name, "params") == 0 ? "param" : name, arg);
	if ((obj = cJSON_GetObjectItemCaseSensitive(spec, name)) == NULL)
		obj = cJSON_AddObjectToObject(spec, name);
	cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
	cJSON_AddItemToObject(obj, key, v);
}

static void
submit_int(cJSON *spec, const char *field, const char *flag, const char *v,
    long long lo, long long hi)
{
	long long n;

	if (parse_ll(v, lo, hi, &n) == -1)
		cli_usage_error(
		    "%s: '%s' not an integer in %lld..%lld", flag, v, lo, hi);
	cJSON_AddNumberToObject(spec, field, (double)n);
}

cJSON *
submit_graph(const char *path)
{
	cJSON *g, *inner;
	char   err[512], *text;

	if ((text = file_slurp(path, job_limits_default.max_spec_bytes, NULL,
		 err, sizeof err)) == NULL)
		cli_usage_error("--graph: %s", err);
	if ((g = cJSON_Parse(text)) == NULL)
		cli_usage_error("--graph: %s is not valid JSON", path);
	free(text);
	/* Accept a saved /prompt request body too. */
	inner = cJSON_DetachItemFromObjectCaseSensitive(g, "prompt");
	if (cJSON_IsObject(inner)) {
		cJSON_Delete(g);
		return (inner);
	}
	cJSON_Delete(inner);
	return (g);
}

struct submit_wait {
	const char *jid;
	int	    tty;
	int	    done;
	char	    line[160];
};

static void
submit_bar(struct submit_wait *w, long long value, long long max)
{
	char bar[31];
	int  i, fill, pct;

	if (max <= 0)
		max = 1;
	if (value > max)
		value = max;
	pct = (int)(value * 100 / max);
	fill = (int)(value * 30 / max);
	for (i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '-';
	bar[30] = '\0';
	fprintf(stderr, "\r[%s] %3d%% %lld/%lld  job %s ", bar, pct, value, max,
	    cli_safe(w->jid));
	fflush(stderr);
}

static int
submit_wait_event(struct cli *cli, const struct cli_event *ev, void *arg)
{
	struct submit_wait *w = arg;

	(void)cli;
	if (strcmp(ev->job, w->jid) != 0)
		return (0);
	if (strcmp(ev->type, "progress") == 0) {
		if (w->tty)
			submit_bar(w,
			    atoll(cli_field(ev->fields, "value")
				    ? cli_field(ev->fields, "value")
				    : "0"),
			    atoll(cli_field(ev->fields, "max")
				    ? cli_field(ev->fields, "max")
				    : "1"));
		return (0);
	}
	if (w->tty)
		fprintf(stderr, "\r%-78s\r", "");
	if (strcmp(ev->type, "started") == 0)
		fprintf(stderr, "job %s started on %s (attempt %s)\n",
		    cli_safe(w->jid),
		    cli_safe(cli_field_or(ev->fields, "worker", "?")),
		    cli_safe(cli_field_or(ev->fields, "attempt", "?")));
	else if (strcmp(ev->type, "retrying") == 0)
		fprintf(stderr, "job %s will retry: [%s] %s\n",
		    cli_safe(w->jid),
		    cli_safe(cli_field_or(ev->fields, "error_code", "?")),
		    cli_safe(cli_field(ev->fields, "error")));
	else if (strcmp(ev->type, "requeued") == 0)
		fprintf(stderr, "job %s requeued (%s)\n", cli_safe(w->jid),
		    cli_safe(cli_field_or(ev->fields, "reason", "?")));
	else if (strcmp(ev->type, "cancel_requested") == 0)
		fprintf(stderr, "job %s: cancel requested\n", cli_safe(w->jid));
	if (cli_is_terminal(ev->type))
		return (1);
	return (0);
}

/* Follows the job until it ends; returns the exit code for its state. */
static int
submit_wait(struct cli *cli, const char *jid, char *id, size_t idlen)
{
	struct submit_wait w;
	redisReply	  *h;
	int		   rc, ended = 0;

	memset(&w, 0, sizeof w);
	w.jid = jid;
	w.tty = isatty(STDERR_FILENO) && !cli->json;
	while (!ended) {
		if (cli_events_read(
			cli, id, idlen, 1000, 500, submit_wait_event, &w) == 1)
			ended = 1;
		/* The hash is the truth: events may have been trimmed. */
		if ((h = cli_job_get(cli, jid)) == NULL)
			cli_usage_error("job %s vanished", jid);
		if (cli_is_terminal(cli_field(h, "state")))
			ended = 1;
		freeReplyObject(h);
	}
	if ((h = cli_job_get(cli, jid)) == NULL)
		cli_usage_error("job %s vanished", jid);
	cli_print_job(cli, jid, h);
	rc = cli_state_exit(cli_field(h, "state"));
	freeReplyObject(h);
	return (rc);
}

int
cmd_submit(struct cli *cli, int argc, char **argv)
{
	struct job_spec		 js;
	struct cli_spec		 cs;
	struct wf_job		*wj;
	struct rqfn_enqueue	 e;
	struct rqfn_enqueue_opts eo = { 0 };
	struct rq_cmd		 c;
	redisReply		*r;
	cJSON			*spec;
	char			*text, id[64], jid[80], err[CLI_ERR_MAX];
	char			 model[WF_MODEL_MAX + 1] = "";
	int			 i, wait = 0, rc = 0, graph = 0;

	cli_spec_init(&cs);
	spec = cs.spec;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--wait") == 0) {
			wait = 1;
			continue;
		}
		if (strcmp(a, "--json") == 0) {
			cli->json = 1;
			continue;
		}
		if (strcmp(a, "--webhook-progress") == 0) {
			cJSON_AddTrueToObject(spec, "webhook_progress");
			continue;
		}
		if (v == NULL)
			cli_usage_error(
			    "%s needs a value\n%s", a, SUBMIT_USAGE);
		i++;
		if (strcmp(a, "--workflow") == 0)
			cJSON_AddStringToObject(spec, "workflow", v);
		else if (strcmp(a, "--graph") == 0) {
			if (graph++)
				cli_usage_error("--graph given twice");
			cJSON_AddItemToObject(spec, "graph", submit_graph(v));
		} else if (cli_spec_flag(&cs, a, v))
			continue; /* --param, --lora, --controlnet, --input... */
		else if (strcmp(a, "--meta") == 0)
			submit_kv(spec, "meta", v);
		else if (strcmp(a, "--tenant") == 0)
			cJSON_AddStringToObject(spec, "tenant", v);
		else if (strcmp(a, "--priority") == 0)
			cJSON_AddStringToObject(spec, "priority", v);
		else if (strcmp(a, "--idempotency-key") == 0)
			cJSON_AddStringToObject(spec, "idempotency_key", v);
		else if (strcmp(a, "--webhook") == 0)
			cJSON_AddStringToObject(spec, "webhook", v);
		else if (strcmp(a, "--timeout") == 0)
			submit_int(spec, "timeout_s", a, v, 1, 86400);
		else if (strcmp(a, "--max-attempts") == 0)
			submit_int(spec, "max_attempts", a, v, 1, 20);
		else
			cli_usage_error(
			    "unknown option %s\n%s", a, SUBMIT_USAGE);
	}
	/* Checked against the template schema where this machine has it. */
	text = cli_spec_finish(&cs, &js, &wj);
	/* The checkpoints it loads, for model-aware claiming (a template
	 * unknown here: none; a raw graph's enqueue finds too), and the
	 * template's VRAM estimate for this size, which enqueue keeps as the
	 * job's vram_mb when the spec gives none. */
	if (wj != NULL) {
		(void)wf_job_model(wj, model);
		if (js.vram_mb == 0 && wf_job_expect(wj)->vram_mb > 0)
			eo.vram_mb = wf_job_expect(wj)->vram_mb;
	}
	wf_job_free(wj);
	job_spec_free(&js);
	cli_spec_free(&cs);

	if (wait)
		cli_events_last_id(cli, id, sizeof id);
	eo.model = model;
	rqfn_enqueue_cmd(&c, cli->prefix, text, &eo);
	cJSON_free(text);
	r = cli_run(cli, &c);
	if (rqfn_enqueue_reply(r, &e, err, sizeof err) == -1) {
		fprintf(stderr, "comfyq: %s\n", cli_safe(err));
		freeReplyObject(r);
		return (EXIT_USAGE);
	}
	snprintf(jid, sizeof jid, "%s", e.jid);
	if (!wait) {
		if (cli->json) {
			cJSON *o = cJSON_CreateObject();

			cJSON_AddStringToObject(o, "job", jid);
			cJSON_AddStringToObject(o, "result", e.result);
			cJSON_AddStringToObject(o, "state", e.state);
			text = cJSON_PrintUnformatted(o);
			printf("%s\n", text);
			cJSON_free(text);
			cJSON_Delete(o);
		} else
			printf("%s\n", cli_safe(jid));
	} else if (!cli->json)
		fprintf(stderr, "job %s %s (%s)\n", cli_safe(jid),
		    cli_safe(e.result), cli_safe(e.state));
	freeReplyObject(r);
	if (wait)
		rc = submit_wait(cli, jid, id, sizeof id);
	return (rc);
}
