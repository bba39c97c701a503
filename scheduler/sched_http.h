/*
 * The scheduler's HTTP server (libevent's evhttp): the listeners, the one
 * route table, the checks every request passes before a handler sees it
 * (route, method, path arguments, content type, token), the limits (body,
 * headers, URL, time) and the JSON replies. Every error body is
 * {"error":{"code":..,"message":..[,"fields":[..]]}}.
 *
 * A handler gets its path arguments already checked against their
 * alphabet ({id}: a job id, [0-9a-z]{1,64}; {n}: 0..9999; {name}: a
 * template name; {pid}: a ComfyUI prompt id, [0-9A-Za-z_-]{1,64}), so
 * nothing a client types reaches Redis unchecked. It answers at once or
 * later; one that answers later holds the request in a struct http_wait,
 * which forgets it when the client goes away.
 */
#ifndef COMFYQ_SCHED_HTTP_H
#define COMFYQ_SCHED_HTTP_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "sched_auth.h"

struct evbuffer;
struct evhttp_request;
struct sched;
struct sched_http;

/* The caller's token after auth (NULL when auth is off): struct
 * sched_token { name, tenant_prefix } (sched_auth.h). */

typedef void (*sched_route_fn)(struct sched *s, struct evhttp_request *req,
    const char *const *args, const struct sched_token *tok);

/* Binds listen (and admin-listen) on s->base; NULL with the reason. */
struct sched_http *http_new(struct sched *s, char *err, size_t errlen);
/* Applies the limits and timeouts of s->cfg (at start and after SIGHUP). */
void http_apply_cfg(struct sched_http *h);
int  http_port(const struct sched_http *h, int admin);
void http_free(struct sched_http *h);

/* Replies. The JSON ones set Content-Type; body may be NULL (no body). */
void http_reply_json(struct evhttp_request *req, int status, const cJSON *body);
void http_reply_error(struct evhttp_request *req, int status, const char *code,
    const char *message);
/* Takes fields (an array of {field, message}) over. */
void http_reply_fields(struct evhttp_request *req, int status, const char *code,
    const char *message, cJSON *fields);
/* Sends body (drained) with the given Content-Type. */
void http_reply_bytes(struct evhttp_request *req, int status,
    const char *content_type, struct evbuffer *body);
/* 503 for a Redis that is down or answered with an error. */
void http_reply_redis_down(struct evhttp_request *req);

/* The body as a NUL-terminated copy (free() it); NULL when out of memory. */
char *http_body(struct evhttp_request *req, size_t *len);
/* A query parameter into buf; -1 when absent or longer than buf. */
int http_query(
    struct evhttp_request *req, const char *key, char *buf, size_t len);
const char *http_header(struct evhttp_request *req, const char *name);

/* A request answered later. */
struct http_wait {
	struct evhttp_request *req;
};
void http_wait_start(struct http_wait *w, struct evhttp_request *req);
/* The request to answer, or NULL when its client left; the wait is over. */
struct evhttp_request *http_wait_end(struct http_wait *w);

/* The route table, for the test that ties it to the OpenAPI document. */
size_t	    http_route_count(void);
const char *http_route_method(size_t i);
const char *http_route_pattern(size_t i);
/* 0 for the rows outside the document: ComfyUI's API under /comfy/. */
int http_route_documented(size_t i);

/* The OpenAPI document, embedded at build time (scheduler/openapi.json). */
extern const char   sched_openapi_json[];
extern const size_t sched_openapi_json_len;

#endif
