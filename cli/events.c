/*
 * comfyq events, and the stream reading that submit --wait shares. Events
 * are read with XREAD from an id, so a reader resumes exactly where it left
 * off; nothing is consumed or acknowledged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "util.h"

/* Stores the id of the newest event (or 0-0) in buf. */
int
cli_events_last_id(struct cli *cli, char *buf, size_t len)
{
	struct rq_cmd c;
	redisReply   *r;

	rq_cmd_init(&c, "XREVRANGE");
	rq_cmd_addf(&c, "%sevents", cli->prefix);
	rq_cmd_add(&c, "+");
	rq_cmd_add(&c, "-");
	rq_cmd_add(&c, "COUNT");
	rq_cmd_add(&c, "1");
	r = cli_run(cli, &c);
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0)
		snprintf(buf, len, "%s", r->element[0]->element[0]->str);
	else
		snprintf(buf, len, "0-0");
	freeReplyObject(r);
	return (0);
}

/* Fills ev from one stream entry [id, [field, value, ...]]. */
static void
cli_event_from(struct cli_event *ev, const redisReply *entry)
{
	memset(ev, 0, sizeof *ev);
	ev->id = entry->element[0]->str;
	ev->fields = entry->element[1];
	ev->type = cli_field(ev->fields, "type");
	ev->job = cli_field(ev->fields, "job");
	if (ev->type == NULL)
		ev->type = "?";
	if (ev->job == NULL)
		ev->job = "";
}

/*
 * Reads events after the id in idbuf, waiting up to block_ms (0: do not
 * wait), and calls cb for each; idbuf advances past every entry seen.
 * Returns the first non-zero value cb returned, else 0.
 */
int
cli_events_read(struct cli *cli, char *idbuf, size_t idlen, int block_ms,
    int count, cli_event_cb cb, void *arg)
{
	struct rq_cmd	 c;
	struct cli_event ev;
	redisReply	*r, *entries;
	size_t		 i;
	int		 rc = 0;

	rq_cmd_init(&c, "XREAD");
	if (block_ms > 0) {
		rq_cmd_add(&c, "BLOCK");
		rq_cmd_addf(&c, "%d", block_ms);
	}
	rq_cmd_add(&c, "COUNT");
	rq_cmd_addf(&c, "%d", count);
	rq_cmd_add(&c, "STREAMS");
	rq_cmd_addf(&c, "%sevents", cli->prefix);
	rq_cmd_add(&c, idbuf);
	r = cli_run(cli, &c);
	if (r->type == REDIS_REPLY_ERROR)
		cli_usage_error("events: %s", cli_safe(r->str));
	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		return (0);
	}
	entries = r->element[0]->element[1];
	for (i = 0; i < entries->elements && rc == 0; i++) {
		cli_event_from(&ev, entries->element[i]);
		snprintf(idbuf, idlen, "%s", ev.id);
		rc = cb(cli, &ev, arg);
	}
	freeReplyObject(r);
	return (rc);
}

void
cli_event_print(struct cli *cli, const struct cli_event *ev)
{
	const redisReply *f = ev->fields;
	size_t		  i;

	if (cli->json) {
		cJSON *o = cJSON_CreateObject();
		char  *text;

		cJSON_AddStringToObject(o, "id", ev->id);
		for (i = 0; i + 1 < f->elements; i += 2) {
			const char *k = f->element[i]->str;
			const char *v = f->element[i + 1]->str;
			cJSON	   *j = NULL;

			if (strcmp(k, "outputs") == 0 || strcmp(k, "meta") == 0)
				j = cJSON_Parse(v);
			if (j == NULL && (strcmp(k, "refund") == 0))
				j = cJSON_CreateBool(cli_flag(v));
			if (j == NULL)
				j = cJSON_CreateString(v);
			cJSON_AddItemToObject(o, k, j);
		}
		text = cJSON_PrintUnformatted(o);
		printf("%s\n", text);
		cJSON_free(text);
		cJSON_Delete(o);
		fflush(stdout);
		return;
	}
	printf("%s %s job=%s", cli_safe(ev->id), cli_safe(ev->type),
	    cli_safe(ev->job));
	for (i = 0; i + 1 < f->elements; i += 2) {
		const char *k = f->element[i]->str;
		const char *v = f->element[i + 1]->str;

		if (strcmp(k, "type") == 0 || strcmp(k, "job") == 0 ||
		    *v == '\0' ||
		    (strcmp(k, "meta") == 0 && strcmp(v, "{}") == 0))
			continue;
		printf(strpbrk(v, " \t\"") ? " %s=\"%s\"" : " %s=%s",
		    cli_safe(k), cli_safe(v));
	}
	printf("\n");
	fflush(stdout);
}

struct events_filter {
	const char *job;
};

static int
cmd_events_one(struct cli *cli, const struct cli_event *ev, void *arg)
{
	struct events_filter *flt = arg;

	if (flt->job == NULL || strcmp(flt->job, ev->job) == 0)
		cli_event_print(cli, ev);
	return (0);
}

int
cmd_events(struct cli *cli, int argc, char **argv)
{
	struct events_filter flt = { NULL };
	struct rq_cmd	     c;
	redisReply	    *r;
	struct cli_event     ev;
	char		     id[64] = "";
	const char	    *from = NULL;
	long long	     count = 20;
	int		     i, follow = 0;
	size_t		     k;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--follow") == 0 ||
		    strcmp(argv[i], "-f") == 0)
			follow = 1;
		else if (strcmp(argv[i], "--json") == 0)
			cli->json = 1;
		else if (strcmp(argv[i], "--from") == 0 && i + 1 < argc)
			from = argv[++i];
		else if (strcmp(argv[i], "--job") == 0 && i + 1 < argc)
			flt.job = argv[++i];
		else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			if (parse_ll(argv[++i], 1, 100000, &count) == -1)
				cli_usage_error(
				    "--count: '%s' not in 1..100000", argv[i]);
		} else
			cli_usage_error(
			    "usage: comfyq events [--follow] [--from ID] [--job JOB] [--count N] [--json]");
	}
	if (from != NULL) {
		snprintf(id, sizeof id, "%s", from);
		/* Print everything after it, page by page. */
		for (;;) {
			char before[64];

			snprintf(before, sizeof before, "%s", id);
			cli_events_read(
			    cli, id, sizeof id, 0, 1000, cmd_events_one, &flt);
			if (strcmp(before, id) == 0)
				break;
		}
	} else {
		/* The last `count` events, oldest first. */
		rq_cmd_init(&c, "XREVRANGE");
		rq_cmd_addf(&c, "%sevents", cli->prefix);
		rq_cmd_add(&c, "+");
		rq_cmd_add(&c, "-");
		rq_cmd_add(&c, "COUNT");
		rq_cmd_addf(&c, "%lld", count);
		r = cli_run(cli, &c);
		if (r->type == REDIS_REPLY_ARRAY) {
			for (k = r->elements; k > 0; k--) {
				cli_event_from(&ev, r->element[k - 1]);
				cmd_events_one(cli, &ev, &flt);
			}
			if (r->elements > 0)
				snprintf(id, sizeof id, "%s",
				    r->element[0]->element[0]->str);
		}
		freeReplyObject(r);
		if (*id == '\0')
			snprintf(id, sizeof id, "0-0");
	}
	while (follow)
		cli_events_read(
		    cli, id, sizeof id, 2000, 1000, cmd_events_one, &flt);
	return (0);
}
