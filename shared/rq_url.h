/*
 * Where comfyq's data lives in Redis: rq_url_parse takes redis://,
 * rediss:// (TLS, see rq_tls.h) and unix:// URLs apart (user, password,
 * db); rq_prefix gives a queue's key
 * prefix cq:{<queue>}:, whose hash tag keeps all of a queue's keys on one
 * Redis Cluster slot.
 */
#ifndef COMFYQ_RQ_URL_H
#define COMFYQ_RQ_URL_H

#include <stddef.h>

#define RQ_PREFIX_MAX 160 /* cq:{<queue>}: with a queue of <= 128 */

struct rq_url {
	char *host; /* NULL for a unix socket */
	int   port;
	char *path;	/* unix socket path, or NULL */
	char *user;	/* ACL user, or NULL */
	char *password; /* or NULL */
	int   db;
	int   tls; /* rediss:// */
};

int  rq_url_parse(const char *url, struct rq_url *u, char *err, size_t errlen);
void rq_url_free(struct rq_url *u);
int  rq_queue_valid(const char *queue);
int  rq_prefix(char *buf, size_t len, const char *queue);

#endif
