/*
 * Redis connection and function calls. rq_connect gives a blocking hiredis
 * context that is authenticated, on the right db (the URL as rq_url.h
 * parses it) and has the comfyq functions library loaded; struct rq_async
 * is the non-blocking twin on a libevent loop, which reconnects with
 * backoff and reloads the library after every reconnect.
 * struct rq_cmd builds an argument vector (binary safe) for either.
 */
#ifndef COMFYQ_RQ_H
#define COMFYQ_RQ_H

#include <stddef.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "rq_url.h"

struct event_base;

#define RQ_LIB_VERSION "2" /* must match VERSION in lua/lib.lua */

struct rq_cmd {
	int	argc;
	int	cap;
	char  **argv;
	size_t *lens;
};

void rq_cmd_init(struct rq_cmd *, const char *);
void rq_cmd_fcall(struct rq_cmd *, const char *, const char *);
void rq_cmd_add(struct rq_cmd *, const char *);
void rq_cmd_addb(struct rq_cmd *, const void *, size_t);
void rq_cmd_addf(struct rq_cmd *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void rq_cmd_free(struct rq_cmd *);

redisContext *rq_connect(const char *, int, int, char *, size_t);
redisReply   *rq_run(redisContext *, const struct rq_cmd *);
int	      rq_load_functions(redisContext *, char *, size_t);
int	      rq_reply_is_status(const redisReply *, const char *);

struct rq_async;
typedef void (*rq_state_cb)(struct rq_async *, int up, void *);

struct rq_async *rq_async_new(struct event_base *, const char *, int,
    rq_state_cb, void *, char *, size_t);
int		 rq_async_up(const struct rq_async *);
int		 rq_async_call(
		 struct rq_async *, redisCallbackFn *, void *, const struct rq_cmd *);
void rq_async_free(struct rq_async *);

extern const char   comfyq_lua_library[];
extern const size_t comfyq_lua_library_len;

#endif
