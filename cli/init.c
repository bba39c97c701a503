/*
 * comfyq init: loads the functions library this build embeds (the same text
 * the build writes to build/comfyq.lua) into Redis with FUNCTION LOAD
 * REPLACE, so a producer can call comfyq_enqueue on a fresh Redis before any
 * worker or janitor ran (each of them loads it again at start). Prints what
 * it did: the version now loaded, its functions, and what it replaced.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define INIT_LIBRARY "comfyq"

/* The version the loaded library reports, "" when none answers. */
static void
init_version(redisContext *rc, char *buf, size_t len)
{
	struct rq_cmd c;
	redisReply   *r;
	const char   *v;
	char	      err[256];

	rqfn_version_cmd(&c);
	r = rq_run(rc, &c);
	rq_cmd_free(&c);
	if (r == NULL)
		cli_redis_error("redis: %s", rc->errstr);
	/* None loaded: "Function not found". */
	if (rqfn_version_reply(r, &v, err, sizeof err) == -1)
		v = "";
	snprintf(buf, len, "%s", v);
	freeReplyObject(r);
}

/* How many functions the loaded library comfyq has (FUNCTION LIST). */
static size_t
init_functions(redisContext *rc)
{
	redisReply *r, *lib;
	size_t	    i, k, n = 0;
	int	    ours;

	r = redisCommand(rc, "FUNCTION LIST LIBRARYNAME %s", INIT_LIBRARY);
	if (r == NULL)
		cli_redis_error("redis: %s", rc->errstr);
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		lib = r->element[i];
		ours = 0;
		for (k = 0;
		     lib->type == REDIS_REPLY_ARRAY && k + 1 < lib->elements;
		     k += 2) {
			if (lib->element[k]->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(lib->element[k]->str, "library_name") == 0)
				ours = lib->element[k + 1]->type ==
					REDIS_REPLY_STRING &&
				    strcmp(lib->element[k + 1]->str,
					INIT_LIBRARY) == 0;
			else if (ours &&
			    strcmp(lib->element[k]->str, "functions") == 0)
				n = lib->element[k + 1]->elements;
		}
	}
	freeReplyObject(r);
	return (n);
}

int
cmd_init(struct cli *cli, int argc, char **argv)
{
	char   err[512], before[64], after[64];
	size_t n;
	int    i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") != 0)
			cli_usage_error("usage: comfyq init [--json]");
		cli->json = 1;
	}
	cli_connect(cli, 0);
	init_version(cli->rc, before, sizeof before);
	if (rq_load_functions(cli->rc, err, sizeof err) == -1)
		cli_redis_error("%s", err);
	init_version(cli->rc, after, sizeof after);
	n = init_functions(cli->rc);
	if (cli->json) {
		printf(
		    "{\"library\":\"%s\",\"version\":\"%s\",\"functions\":%zu,"
		    "\"bytes\":%zu,\"replaced\":",
		    INIT_LIBRARY, after, n, comfyq_lua_library_len);
		if (*before != '\0')
			printf("\"%s\"}\n", before);
		else
			printf("null}\n");
	} else
		printf(
		    "loaded the %s functions library, version %s (%zu "
		    "functions, %zu bytes) with FUNCTION LOAD REPLACE; %s%s\n",
		    INIT_LIBRARY, after, n, comfyq_lua_library_len,
		    *before ? "it replaced version " : "none was loaded before",
		    before);
	return (0);
}
