/*
 * Asking Redis Sentinel where the master is: SENTINEL
 * GET-MASTER-ADDR-BY-NAME to each sentinel of a redis+sentinel:// URL in
 * turn, each bounded by the connect timeout, until one names it. The
 * sentinels take the URL's sentinel-user and sentinel-password and, for
 * rediss+sentinel://, TLS with the process's tls-* settings (rq_tls.h).
 * The answer is only a hint: the caller connects and checks ROLE, since a
 * sentinel may not have seen a failover yet (docs/design.md §3).
 * rq_sentinel_master blocks; struct rq_sentinel_query asks the same on a
 * libevent loop.
 */
#ifndef COMFYQ_RQ_SENTINEL_H
#define COMFYQ_RQ_SENTINEL_H

#include <stddef.h>

struct event_base;
struct rq_url;

int rq_sentinel_master(
    struct rq_url *u, int timeout_ms, char *err, size_t errlen);

/* host and port when a sentinel named the master, else err (host NULL). */
typedef void (*rq_sentinel_cb)(
    void *arg, const char *host, int port, const char *err);

struct rq_sentinel_query;
struct rq_sentinel_query *rq_sentinel_query_start(struct event_base *base,
    const struct rq_url *u, int timeout_ms, rq_sentinel_cb cb, void *arg);
void			  rq_sentinel_query_free(struct rq_sentinel_query *q);

#endif
