/*
 * What the two connection files share (rq.c: the blocking connection,
 * rq_async.c: the non-blocking one): the AUTH command, a server's name
 * for messages, and the probe that tells whether a server is the right
 * one (rq_route.h reads the answers).
 */
#ifndef COMFYQ_RQ_INT_H
#define COMFYQ_RQ_INT_H

#include <stddef.h>

#include "rq.h"
#include "rq_route.h"

void	    rq_auth_cmd(struct rq_cmd *c, const struct rq_url *u);
const char *rq_where(const struct rq_url *u, char *buf, size_t len);
int rq_probe_cmd(struct rq_cmd *c, const struct rq_url *u, const char *key);
enum rq_route rq_probe_reply(
    const redisReply *r, struct rq_url *u, char *err, size_t errlen);

#endif
