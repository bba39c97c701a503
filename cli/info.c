/*
 * comfyq stats, slots and workers: read-only views of a queue, plus
 * `slots set` to change a pool's capacity at run time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "util.h"

static const char *const cli_lanes[] = { "high", "normal", "low" };

static long long
cli_int_reply(struct cli *cli, struct rq_cmd *c)
{
	redisReply *r = cli_run(cli, c);
	long long   v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;

	freeReplyObject(r);
	return (v);
}

static long long
cli_zcard(struct cli *cli, const char *key)
{
	struct rq_cmd c;

	rq_cmd_init(&c, "ZCARD");
	rq_cmd_addf(&c, "%s%s", cli->prefix, key);
	return (cli_int_reply(cli, &c));
}

static void
cli_json_print(cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);

	printf("%s\n", text);
	cJSON_free(text);
	cJSON_Delete(o);
}

/*
 * Everything is read before anything is printed, so a Redis that does not
 * answer gives one line and exit 3, not half a report.
 */
int
cmd_stats(struct cli *cli, int argc, char **argv)
{
	static const char *const keys[] = { "delayed", "leases", "done" };
	struct rq_cmd		 c;
	redisReply		*r;
	cJSON			*o, *lanes, *counters;
	char			 key[32];
	long long		 ready[3], n[3];
	size_t			 i, nf;

	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--json") != 0)
			cli_usage_error("usage: comfyq stats [--json]");
		cli->json = 1;
	}
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof key, "ready:%s", cli_lanes[i]);
		ready[i] = cli_zcard(cli, key);
		n[i] = cli_zcard(cli, keys[i]);
	}
	rq_cmd_init(&c, "HGETALL");
	rq_cmd_addf(&c, "%sstats", cli->prefix);
	r = cli_run(cli, &c);
	nf = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
	if (!cli->json) {
		printf("queue     %s\n", cli->queue);
		for (i = 0; i < 3; i++)
			printf("ready     %-8s %lld\n", cli_lanes[i], ready[i]);
		printf("delayed   %lld\n", n[0]);
		printf("active    %lld\n", n[1]);
		printf("finished  %lld (records kept)\n", n[2]);
		for (i = 0; i + 1 < nf; i += 2)
			printf("total     %-24s %s\n",
			    cli_safe(r->element[i]->str),
			    cli_safe(r->element[i + 1]->str));
		freeReplyObject(r);
		return (0);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "queue", cli->queue);
	lanes = cJSON_AddObjectToObject(o, "ready");
	for (i = 0; i < 3; i++)
		cJSON_AddNumberToObject(lanes, cli_lanes[i], (double)ready[i]);
	cJSON_AddNumberToObject(o, "delayed", (double)n[0]);
	cJSON_AddNumberToObject(o, "active", (double)n[1]);
	cJSON_AddNumberToObject(o, "finished", (double)n[2]);
	counters = cJSON_AddObjectToObject(o, "counters");
	for (i = 0; i + 1 < nf; i += 2)
		cJSON_AddNumberToObject(
		    counters, r->element[i]->str, atof(r->element[i + 1]->str));
	freeReplyObject(r);
	cli_json_print(o);
	return (0);
}

static int
cmd_slots_set(struct cli *cli, int argc, char **argv)
{
	struct rq_cmd c;
	redisReply   *r;
	long long     cap, budget = 0;
	char	      err[CLI_ERR_MAX];
	int	      rc = 0;

	if (argc != 4 && !(argc == 6 && strcmp(argv[4], "--vram-budget") == 0))
		cli_usage_error(
		    "usage: comfyq slots set POOL N [--vram-budget MB]");
	if (parse_ll(argv[3], 1, 256, &cap) == -1)
		cli_usage_error("capacity: '%s' not in 1..256", argv[3]);
	if (argc == 6 && parse_ll(argv[5], 0, 16777216, &budget) == -1)
		cli_usage_error(
		    "--vram-budget: '%s' not in 0..16777216 MB", argv[5]);
	rqfn_slot_set_cmd(&c, cli->prefix, argv[2], cap, budget);
	r = cli_run(cli, &c);
	if (rqfn_slot_set_reply(r, err, sizeof err) == -1) {
		fprintf(stderr, "comfyq: %s\n", cli_safe(err));
		rc = EXIT_USAGE;
	} else
		printf("pool %s: capacity %lld, VRAM budget %s%s\n",
		    cli_safe(argv[2]), cap, budget ? argv[5] : "none",
		    budget ? " MB" : "");
	freeReplyObject(r);
	return (rc);
}

/* Prints one pool (or adds it to the JSON array o). */
static void
cli_slots_pool(cJSON *o, const char *pool, const struct rqfn_slot_get *s)
{
	struct rqfn_holder h;
	long long	   now = clock_wall_ms(), left;
	cJSON		  *po, *holders = NULL, *ho;
	size_t		   k;

	if (o != NULL) {
		po = cJSON_CreateObject();
		cJSON_AddStringToObject(po, "pool", pool);
		cJSON_AddNumberToObject(po, "capacity", (double)s->capacity);
		cJSON_AddNumberToObject(po, "used", (double)s->used);
		cJSON_AddNumberToObject(
		    po, "vram_budget_mb", (double)s->vram_budget_mb);
		cJSON_AddNumberToObject(
		    po, "vram_used_mb", (double)s->vram_used_mb);
		holders = cJSON_AddArrayToObject(po, "holders");
		cJSON_AddItemToArray(o, po);
	} else {
		printf("pool %s: %lld/%lld slots held", cli_safe(pool), s->used,
		    s->capacity);
		if (s->vram_budget_mb > 0)
			printf(", VRAM %lld/%lld MB", s->vram_used_mb,
			    s->vram_budget_mb);
		printf("\n");
	}
	for (k = 0; k < s->nholders; k++) {
		rqfn_slot_holder(s, k, &h);
		left = h.lease_until - now;
		if (o != NULL) {
			ho = cJSON_CreateObject();
			cJSON_AddStringToObject(ho, "holder", h.holder);
			cJSON_AddStringToObject(ho, "worker", h.worker);
			cJSON_AddStringToObject(ho, "fence", h.fence);
			cJSON_AddNumberToObject(
			    ho, "lease_left_ms", (double)left);
			cJSON_AddNumberToObject(
			    ho, "vram_mb", (double)h.vram_mb);
			cJSON_AddItemToArray(holders, ho);
		} else
			printf("  %-20s worker %-24s fence %-6s lease "
			       "%+.1fs vram %lld MB\n",
			    cli_safe(h.holder), cli_safe(h.worker),
			    cli_safe(h.fence), (double)left / 1000.0,
			    h.vram_mb);
	}
}

/* A pool whose slot_get fails (gone meanwhile: NOPOOL) is left out. */
int
cmd_slots(struct cli *cli, int argc, char **argv)
{
	struct rqfn_slot_pools ps;
	struct rqfn_slot_get   s;
	struct rq_cmd	       c;
	redisReply	      *pools, *r;
	cJSON		      *o = NULL;
	char		       err[CLI_ERR_MAX];
	size_t		       i;

	if (argc >= 2 && strcmp(argv[1], "set") == 0)
		return (cmd_slots_set(cli, argc, argv));
	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--json") != 0)
			cli_usage_error(
			    "usage: comfyq slots [--json] | comfyq slots set POOL N [--vram-budget MB]");
		cli->json = 1;
	}
	rqfn_slot_pools_cmd(&c, cli->prefix);
	pools = cli_run(cli, &c);
	/* As before the table: a reply that is no list lists no pools. */
	if (rqfn_slot_pools_reply(pools, &ps, err, sizeof err) == -1)
		ps.npools = 0;
	if (cli->json)
		o = cJSON_CreateArray();
	else if (ps.npools == 0)
		printf("no pools in queue %s\n", cli->queue);
	for (i = 0; i < ps.npools; i++) {
		rqfn_slot_get_cmd(&c, cli->prefix, ps.pools[i]->str);
		r = cli_run(cli, &c);
		if (rqfn_slot_get_reply(r, &s, err, sizeof err) == 0)
			cli_slots_pool(o, ps.pools[i]->str, &s);
		freeReplyObject(r);
	}
	freeReplyObject(pools);
	if (o != NULL)
		cli_json_print(o);
	return (0);
}

/* Whether a worker record's field holds a number (pid, jobs, *_ms, *_mb). */
static int
cli_worker_numeric(const char *k)
{
	size_t n = strlen(k);

	return (strcmp(k, "pid") == 0 || strcmp(k, "jobs") == 0 ||
	    (n > 3 &&
		(strcmp(k + n - 3, "_ms") == 0 ||
		    strcmp(k + n - 3, "_mb") == 0)));
}

/* Adds a worker record's field to wo, once, a number where it is one. */
static void
cli_worker_field(cJSON *wo, const char *k, const char *v)
{
	long long n;

	if (cJSON_GetObjectItemCaseSensitive(wo, k) != NULL)
		return; /* worker, state, last_beat_ms: given already */
	if (cli_worker_numeric(k) &&
	    parse_ll(v, -(1LL << 53), 1LL << 53, &n) == 0)
		cJSON_AddNumberToObject(wo, k, (double)n);
	else
		cJSON_AddStringToObject(wo, k, v);
}

int
cmd_workers(struct cli *cli, int argc, char **argv)
{
	static const char *const shown[] = { "pool", "jobs", "host", "gpu_name",
		"model" };
	static const char *const label[] = { "pool", "jobs", "host", "gpu",
		"model" };
	struct rq_cmd		 c;
	redisReply		*ws, *h;
	cJSON			*o = NULL, *wo;
	long long		 now = clock_wall_ms(), beat;
	size_t			 i, k;
	const char		*state, *v;

	for (i = 1; i < (size_t)argc; i++) {
		if (strcmp(argv[i], "--json") != 0)
			cli_usage_error("usage: comfyq workers [--json]");
		cli->json = 1;
	}
	rq_cmd_init(&c, "ZRANGE");
	rq_cmd_addf(&c, "%sworkers", cli->prefix);
	rq_cmd_add(&c, "0");
	rq_cmd_add(&c, "-1");
	rq_cmd_add(&c, "WITHSCORES");
	ws = cli_run(cli, &c);
	if (cli->json)
		o = cJSON_CreateArray();
	else if (ws->elements == 0)
		printf("no workers in queue %s\n", cli->queue);
	for (i = 0; i + 1 < ws->elements; i += 2) {
		const char *wid = ws->element[i]->str;

		beat = atoll(ws->element[i + 1]->str);
		rq_cmd_init(&c, "HGETALL");
		rq_cmd_addf(&c, "%sworker:%s", cli->prefix, wid);
		h = cli_run(cli, &c);
		/* The record expires when heartbeats stop: then it is gone. */
		state = h->elements == 0 ? "gone" : cli_field(h, "state");
		if (state == NULL)
			state = "?";
		if (o != NULL) {
			wo = cJSON_CreateObject();
			cJSON_AddStringToObject(wo, "worker", wid);
			cJSON_AddStringToObject(wo, "state", state);
			cJSON_AddNumberToObject(
			    wo, "last_beat_ms", (double)beat);
			for (k = 0; k + 1 < h->elements; k += 2)
				cli_worker_field(wo, h->element[k]->str,
				    h->element[k + 1]->str);
			cJSON_AddItemToArray(o, wo);
		} else {
			printf("%-32s %-7s beat %5.1fs ago", cli_safe(wid),
			    cli_safe(state), (double)(now - beat) / 1000.0);
			for (k = 0; k < 5; k++)
				if ((v = cli_field(h, shown[k])) != NULL &&
				    *v != '\0')
					printf(
					    "  %s %s", label[k], cli_safe(v));
			printf("\n");
		}
		freeReplyObject(h);
	}
	freeReplyObject(ws);
	if (o != NULL)
		cli_json_print(o);
	return (0);
}
