/*
 * ComfyUI client: URLs and request shapes of its HTTP API, and the one
 * long-lived WebSocket (clientId = worker id) whose JSON events are handed
 * to the worker. The socket is pinged every ws_ping_s; a missing pong or a
 * drop closes it, and it is reopened with backoff until comfy_free.
 */
#ifndef COMFYQ_COMFY_H
#define COMFYQ_COMFY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "httpc.h"

struct event_base;
struct comfy;

struct comfy_cb {
	/* A JSON event: type and data (NULL when absent). */
	void (*on_event)(void *, const char *, const cJSON *);
	/* The socket opened (up = 1) or was lost (up = 0). */
	void (*on_link)(void *, int);
};

struct comfy_opts {
	long long ping_ms;
	long long pong_timeout_ms;
	long long http_timeout_ms;
};

struct comfy *comfy_new(struct event_base *, struct httpc *, const char *,
    const char *, const struct comfy_opts *, const struct comfy_cb *, void *,
    char *, size_t);
void	      comfy_free(struct comfy *);
void	      comfy_set_opts(struct comfy *, const struct comfy_opts *);
int	      comfy_ws_up(const struct comfy *);
const char   *comfy_url(const struct comfy *);

struct httpc_req *comfy_prompt(
    struct comfy *, const char *, const cJSON *, httpc_cb, void *);
struct httpc_req *comfy_history(struct comfy *, const char *, httpc_cb, void *);
struct httpc_req *comfy_queue(struct comfy *, httpc_cb, void *);
struct httpc_req *comfy_view(struct comfy *, const char *, const char *,
    const char *, int, size_t, long, httpc_cb, void *);
struct httpc_req *comfy_upload(struct comfy *, const char *, const void *,
    size_t, const char *, httpc_cb, void *);
struct httpc_req *comfy_system_stats(struct comfy *, httpc_cb, void *);
struct httpc_req *comfy_object_info(struct comfy *, httpc_cb, void *);
void		  comfy_interrupt(struct comfy *, const char *);
void		  comfy_free_memory(struct comfy *);

#endif
