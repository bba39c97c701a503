/*
 * libFuzzer target: Redis URLs (shared/rq_url.c), every form: redis://,
 * rediss:// (TLS), unix://, redis+sentinel:// and redis+cluster:// with
 * their rediss+ twins, user, password, %-escapes, db and query
 * parameters. The bytes up to the first NUL are the URL; a second part,
 * when there is one, is a queue name for rq_prefix(). A URL that parses
 * must make sense: a server URL has a host and port (or a socket path),
 * a sentinel one 1..16 sentinels and a master's name that is not empty,
 * a cluster one 1..16 seeds and db 0; ports are 1..65535 and rq_url_free
 * leaves nothing behind (LeakSanitizer sees it). rq_url_set_node points
 * it at a node, as the connection code does.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rq_url.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
fuzz_check(const struct rq_url *u)
{
	int i;

	if (u->kind == RQ_URL_SERVER) {
		if (u->path != NULL ? u->host != NULL || u->path[0] != '/'
				    : u->host == NULL || u->host[0] == '\0' ||
			u->port < 1 || u->port > 65535)
			abort();
		if (u->nnodes != 0 || u->master != NULL)
			abort();
		return;
	}
	if (u->nnodes < 1 || u->nnodes > RQ_URL_MAX_NODES || u->host != NULL)
		abort();
	for (i = 0; i < u->nnodes; i++)
		if (u->nodes[i].host == NULL || u->nodes[i].host[0] == '\0' ||
		    u->nodes[i].port < 1 || u->nodes[i].port > 65535)
			abort();
	if (u->kind == RQ_URL_SENTINEL &&
	    (u->master == NULL || u->master[0] == '\0'))
		abort(); /* the sentinels would be asked for "" */
	if (u->kind == RQ_URL_CLUSTER && (u->db != 0 || u->master != NULL))
		abort();
	if (u->db < 0 || u->db > 1000000)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rq_url u;
	char	     *text, err[512], prefix[RQ_PREFIX_MAX];
	size_t	      n;

	if ((text = malloc(len + 1)) == NULL)
		return (0);
	memcpy(text, data, len);
	text[len] = '\0';
	if (rq_url_parse(text, &u, err, sizeof err) == 0) {
		fuzz_check(&u);
		if (u.kind != RQ_URL_SERVER)
			rq_url_set_node(&u, u.nodes[0].host, u.nodes[0].port);
		rq_url_free(&u);
	} else if (err[0] == '\0')
		abort(); /* a refusal says why */
	n = strlen(text);
	if (n < len && rq_prefix(prefix, sizeof prefix, text + n + 1) == 0 &&
	    (strncmp(prefix, "cq:{", 4) != 0 || !rq_queue_valid(text + n + 1)))
		abort();
	free(text);
	return (0);
}
