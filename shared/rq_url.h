/*
 * Where comfyq's data lives in Redis: rq_url_parse takes redis://,
 * rediss:// (TLS, see rq_tls.h) and unix:// URLs apart (user, password,
 * db), and the two high-availability forms: redis+sentinel:// (a list of
 * sentinels and a master's name; rq_sentinel.h asks them) and
 * redis+cluster:// (seed nodes of a Redis Cluster; rq_route.h follows its
 * redirections), each with an rediss+ twin. rq_prefix gives a queue's
 * key prefix cq:{<queue>}:, whose hash tag keeps all of a queue's keys on
 * one Redis Cluster slot.
 */
#ifndef COMFYQ_RQ_URL_H
#define COMFYQ_RQ_URL_H

#include <stddef.h>

#define RQ_PREFIX_MAX	    160 /* cq:{<queue>}: with a queue of <= 128 */
#define RQ_URL_MAX_NODES    16	/* sentinels or seeds in one URL */
#define RQ_SENTINEL_PORT    26379
#define RQ_URL_DEFAULT_PORT 6379

enum rq_url_kind {
	RQ_URL_SERVER,	 /* one server: redis://, rediss://, unix:// */
	RQ_URL_SENTINEL, /* redis+sentinel://: the master the sentinels name */
	RQ_URL_CLUSTER,	 /* redis+cluster://: the node holding a key's slot */
};

struct rq_node {
	char *host;
	int   port;
};

/*
 * host and port are the server to connect to. For a sentinel or cluster
 * URL they are unset (NULL) until the connection code picks a node and
 * keeps them current (the master the sentinels named, the node a MOVED
 * named); nodes holds the sentinels or the seeds, in the URL's order.
 */
struct rq_url {
	enum rq_url_kind kind;
	char		*host; /* NULL for a unix socket */
	int		 port;
	char		*path;	   /* unix socket path, or NULL */
	char		*user;	   /* ACL user, or NULL */
	char		*password; /* or NULL */
	int		 db;
	int		 tls; /* rediss:// */
	struct rq_node	*nodes;
	int		 nnodes;
	char		*master;	    /* sentinel: the master's name */
	char		*sentinel_user;	    /* sentinel: ACL user, or NULL */
	char		*sentinel_password; /* sentinel: or NULL */
};

int  rq_url_parse(const char *url, struct rq_url *u, char *err, size_t errlen);
void rq_url_set_node(struct rq_url *u, const char *host, int port);
void rq_url_free(struct rq_url *u);
int  rq_queue_valid(const char *queue);
int  rq_prefix(char *buf, size_t len, const char *queue);

#endif
