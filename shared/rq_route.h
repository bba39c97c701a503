/*
 * Which server a connection belongs on, read from Redis's replies: the
 * redirections of a Redis Cluster (MOVED, ASK, TRYAGAIN, CLUSTERDOWN)
 * and the refusals of a server that is not, or no longer, a writable
 * master (READONLY, MASTERDOWN, NOREPLICAS). Every one of them means the
 * command did not run, so the connection code (rq.c, rq_async.c) closes
 * the connection, finds the right server and lets the caller retry as it
 * does after a lost connection; docs/design.md §3 says why an ASK is
 * waited out rather than followed. Also the replies a connection checks
 * on the way up: ROLE (a master?) and a sentinel's master address.
 * Nothing here does I/O.
 */
#ifndef COMFYQ_RQ_ROUTE_H
#define COMFYQ_RQ_ROUTE_H

#include <stddef.h>

#include <hiredis/hiredis.h>

enum rq_route {
	RQ_ROUTE_NONE,	/* an ordinary reply */
	RQ_ROUTE_MOVED, /* MOVED <slot> <host:port>: the slot lives there */
	RQ_ROUTE_WAIT,	/* ASK, TRYAGAIN, CLUSTERDOWN, LOADING: try later */
	RQ_ROUTE_ROLE,	/* READONLY, MASTERDOWN, NOREPLICAS: find the master */
};

enum rq_route rq_route_of(const redisReply *r);
int rq_route_target(const char *moved, char *host, size_t hostlen, int *port);
int rq_route_is_master(const redisReply *r, char *err, size_t errlen);
int rq_route_sentinel_addr(const redisReply *r, char *host, size_t hostlen,
    int *port, char *err, size_t errlen);

#endif
