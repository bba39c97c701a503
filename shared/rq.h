/*
 * Redis connection and function calls. rq_connect gives a blocking hiredis
 * context that is authenticated, on the right db (the URL as rq_url.h
 * parses it) and has the comfyq functions library loaded; struct rq_async
 * is the non-blocking twin on a libevent loop, which reconnects with
 * backoff and reloads the library after every reconnect.
 * struct rq_cmd builds an argument vector (binary safe) for either.
 *
 * Both take a key to route by (a queue's prefix): behind a
 * redis+cluster:// URL they connect to the node that holds its slot, and
 * behind redis+sentinel:// to the master the sentinels name. The async
 * connection also moves by itself when a reply says it is on the wrong
 * server (rq_route.h): the call gets a NULL reply, as if the connection
 * had been lost, and the connection comes up again on the right one.
 */
#ifndef COMFYQ_RQ_H
#define COMFYQ_RQ_H

#include <stddef.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "rq_url.h"

struct event_base;

#define RQ_LIB_VERSION "7" /* must match VERSION in lua/lib.lua */

struct rq_cmd {
	int	argc;
	int	cap;
	char  **argv;
	size_t *lens;
};

void rq_cmd_init(struct rq_cmd *c, const char *name);
void rq_cmd_fcall(struct rq_cmd *c, const char *fn, const char *prefix);
void rq_cmd_add(struct rq_cmd *c, const char *s);
void rq_cmd_addb(struct rq_cmd *c, const void *p, size_t len);
void rq_cmd_addf(struct rq_cmd *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void rq_cmd_free(struct rq_cmd *c);

redisContext *rq_connect(const char *url, const char *key, int timeout_ms,
    int load, char *err, size_t errlen);
redisContext *rq_connect_wait(const char *url, const char *key, int timeout_ms,
    int wait_ms, int load, char *err, size_t errlen);
redisReply   *rq_run(redisContext *ctx, const struct rq_cmd *c);
int	      rq_load_functions(redisContext *ctx, char *err, size_t errlen);
int	      rq_reply_is_status(const redisReply *r, const char *s);

struct rq_async;
typedef void (*rq_state_cb)(struct rq_async *ra, int up, void *arg);

struct rq_async *rq_async_new(struct event_base *base, const char *url,
    const char *key, int load, rq_state_cb cb, void *arg, char *err,
    size_t errlen);
int		 rq_async_up(const struct rq_async *ra);
int  rq_async_call(struct rq_async *ra, redisCallbackFn *fn, void *priv,
     const struct rq_cmd *c);
void rq_async_free(struct rq_async *ra);

extern const char   comfyq_lua_library[];
extern const size_t comfyq_lua_library_len;

#endif
