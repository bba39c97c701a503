/*
 * Redis's redirections and role refusals, and the replies checked when a
 * connection comes up (see rq_route.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rq_route.h"
#include "util.h"

/* The error replies that say "not here", by their first word. */
static const struct {
	const char   *word;
	enum rq_route route;
} rq_routes[] = {
	{ "MOVED", RQ_ROUTE_MOVED },
	{ "ASK", RQ_ROUTE_WAIT },
	{ "TRYAGAIN", RQ_ROUTE_WAIT },
	{ "CLUSTERDOWN", RQ_ROUTE_WAIT },
	{ "LOADING", RQ_ROUTE_WAIT },
	{ "READONLY", RQ_ROUTE_ROLE },
	{ "MASTERDOWN", RQ_ROUTE_ROLE },
	{ "NOREPLICAS", RQ_ROUTE_ROLE },
};

/* What an error reply says about where the command belongs. */
enum rq_route
rq_route_of(const redisReply *r)
{
	size_t i, n;

	if (r == NULL || r->type != REDIS_REPLY_ERROR)
		return (RQ_ROUTE_NONE);
	for (i = 0; i < sizeof rq_routes / sizeof rq_routes[0]; i++) {
		n = strlen(rq_routes[i].word);
		if (strncmp(r->str, rq_routes[i].word, n) == 0 &&
		    (r->str[n] == ' ' || r->str[n] == '\0'))
			return (rq_routes[i].route);
	}
	return (RQ_ROUTE_NONE);
}

/*
 * The node of "MOVED <slot> <host>:<port>" (or ASK): the last colon ends
 * the host, which Redis writes unbracketed even for IPv6. An empty host
 * (a node that does not know its address) is left to the caller. Returns
 * 0, or -1 when the text is not of that shape.
 */
int
rq_route_target(const char *moved, char *host, size_t hostlen, int *port)
{
	const char *sp, *addr, *colon;
	long long   n;

	if ((sp = strchr(moved, ' ')) == NULL ||
	    (addr = strchr(sp + 1, ' ')) == NULL)
		return (-1);
	addr++;
	if ((colon = strrchr(addr, ':')) == NULL ||
	    (size_t)(colon - addr) >= hostlen ||
	    parse_ll(colon + 1, 1, 65535, &n) == -1)
		return (-1);
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	*port = (int)n;
	return (0);
}

/* 0 when a ROLE reply says master; else -1 and what it said in err. */
int
rq_route_is_master(const redisReply *r, char *err, size_t errlen)
{
	if (r == NULL) {
		snprintf(err, errlen, "ROLE: no reply");
		return (-1);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "ROLE: %s", r->str);
		return (-1);
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		snprintf(err, errlen, "ROLE: unexpected reply");
		return (-1);
	}
	if (strcmp(r->element[0]->str, "master") != 0) {
		snprintf(err, errlen, "it is a %s, not the master",
		    strcmp(r->element[0]->str, "slave") == 0
			? "replica"
			: r->element[0]->str);
		return (-1);
	}
	return (0);
}

/*
 * The address in a reply to SENTINEL GET-MASTER-ADDR-BY-NAME: 0 with host
 * and port set, or -1 with the reason (no such master: a nil reply).
 */
int
rq_route_sentinel_addr(const redisReply *r, char *host, size_t hostlen,
    int *port, char *err, size_t errlen)
{
	long long n;

	if (r->type == REDIS_REPLY_NIL) {
		snprintf(err, errlen, "it monitors no master of that name");
		return (-1);
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s", r->str);
		return (-1);
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[0]->len == 0 || r->element[0]->len >= hostlen ||
	    parse_ll(r->element[1]->str, 1, 65535, &n) == -1) {
		snprintf(
		    err, errlen, "unexpected reply to get-master-addr-by-name");
		return (-1);
	}
	memcpy(host, r->element[0]->str, r->element[0]->len + 1);
	*port = (int)n;
	return (0);
}
