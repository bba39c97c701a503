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

/* A JSON event: type and data (NULL when absent or not an object). */
typedef void (*comfy_event_fn)(void *arg, const char *type, const cJSON *data);

struct comfy_cb {
	comfy_event_fn on_event;
	/* The socket opened (up = 1) or was lost (up = 0). */
	void (*on_link)(void *arg, int up);
};

struct comfy_opts {
	long long ping_ms;
	long long pong_timeout_ms;
	long long http_timeout_ms;
};

struct comfy *comfy_new(struct event_base *base, struct httpc *http,
    const char *url, const char *client_id, const struct comfy_opts *o,
    const struct comfy_cb *cb, void *arg, char *err, size_t errlen);
void	      comfy_free(struct comfy *c);
void	      comfy_set_opts(struct comfy *c, const struct comfy_opts *o);
int	      comfy_ws_up(const struct comfy *c);
const char   *comfy_url(const struct comfy *c);

struct httpc_req *comfy_prompt(struct comfy *c, const char *prompt_id,
    const cJSON *graph, httpc_cb cb, void *arg);
struct httpc_req *comfy_history(
    struct comfy *c, const char *prompt_id, httpc_cb cb, void *arg);
struct httpc_req *comfy_queue(struct comfy *c, httpc_cb cb, void *arg);
struct httpc_req *comfy_view(struct comfy *c, const char *filename,
    const char *subfolder, const char *type, int fd, size_t max,
    long timeout_ms, httpc_cb cb, void *arg);
struct httpc_req *comfy_upload(struct comfy *c, const char *name,
    const void *data, size_t len, const char *subfolder, httpc_cb cb,
    void *arg);
struct httpc_req *comfy_system_stats(struct comfy *c, httpc_cb cb, void *arg);
struct httpc_req *comfy_object_info(struct comfy *c, httpc_cb cb, void *arg);
void		  comfy_interrupt(struct comfy *c, const char *prompt_id);
void		  comfy_free_memory(struct comfy *c);

/*
 * One text message of the /ws as an event: fn(arg, type, data) when it is
 * JSON with a string "type" that a run acts on (executing, progress,
 * execution_cached, _error, _interrupted; the others are dropped unparsed,
 * their type read by a scan, shared/jscan.h). 0: fn was called; 1: dropped
 * or JSON without a string type (ignored); -1: not JSON.
 */
int comfy_event_parse(const char *text, size_t len, comfy_event_fn fn,
    void *arg);

#endif
