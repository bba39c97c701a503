/*
 * The sockets of /comfy/ws (the design is in sched_comfy_ws.c), each the
 * server side of a WebSocket of the base library (shared/ws_peer.c, as
 * comfyq-sim's /ws): the upgrade checked in aiohttp's words, wslay
 * framing, a message over CWS_MAX_MSG closes the socket, a client whose
 * unsent output passes sse-buffer-max-bytes is dropped. A socket leaves
 * cws_socks when it closes and is freed on the next turn of the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "log.h"
#include "sched.h"
#include "sched_comfy.h"
#include "sched_comfy_ws.h"
#include "sched_guard.h"
#include "sched_http.h"
#include "util.h"
#include "ws_peer.h"
#include "xmalloc.h"

#define CWS_MAX_MSG (64u << 10) /* what a client may send */

struct cws_list cws_socks = TAILQ_HEAD_INITIALIZER(cws_socks);
long long	cws_nsocks;

/* Off the list at once; freed on the next turn, outside its callbacks. */
static void
cws_closed(struct ws_peer *p, void *arg)
{
	struct cws *c = arg;

	(void)p;
	c->dead = 1;
	TAILQ_REMOVE(&cws_socks, c, link);
	cws_nsocks--;
}

static void
cws_freed(void *arg)
{
	free(arg);
}

void
cws_queue(struct cws *c, const char *text)
{
	if (!c->dead &&
	    ws_peer_send(c->peer, text, strlen(text),
		(size_t)c->s->cfg->sse_buffer_max_bytes) == -1)
		log_warnx(
		    "comfy ws %s: the client does not read; dropped", c->sid);
}

/* A first JSON message of type feature_flags is answered, as ComfyUI. */
static void
cws_text(struct ws_peer *p, const char *msg, size_t len, void *arg)
{
	struct cws *c = arg;
	cJSON	   *j, *d;
	const char *type;
	char	   *text;

	(void)p;
	if ((j = cJSON_ParseWithLength(msg, len)) == NULL)
		return;
	type =
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
	if (c->first && type != NULL && strcmp(type, "feature_flags") == 0) {
		d = cJSON_CreateObject();
		cJSON_AddBoolToObject(d, "supports_preview_metadata", 0);
		cJSON_AddNumberToObject(
		    d, "max_upload_size", (double)c->s->cfg->body_max_bytes);
		text = cws_frame("feature_flags", d);
		cws_queue(c, text);
		cJSON_free(text);
	}
	c->first = 0;
	cJSON_Delete(j);
}

static const struct ws_peer_cb cws_cb = { cws_text, cws_closed, cws_freed };

static void
cws_bad(struct evhttp_request *req, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "%s", text);
	http_reply_bytes(req, 400, "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

SCHED_ROUTE(comfy_ws)
{
	char	    accept[WS_ACCEPT_LEN], uuid[UUID_LEN], *text;
	const char *why;
	cJSON	   *d;
	struct cws *c;
	int	    k, o;

	(void)args;
	if (s->sse == NULL) {
		http_reply_error(req, 503, "unavailable",
		    "/comfy/ws needs the events reader, which is not running");
		return;
	}
	if ((why = ws_peer_check(req, accept)) != NULL) {
		cws_bad(req, why);
		return;
	}
	if (cws_nsocks >= s->cfg->sse_max_clients) {
		http_reply_error(req, 503, "unavailable",
		    "too many sockets (sse-max-clients)");
		return;
	}
	c = xcalloc(1, sizeof *c);
	if (http_query(req, "clientId", c->sid, sizeof c->sid) == -1 ||
	    c->sid[0] == '\0') {
		uuid4(uuid);
		for (k = o = 0; uuid[k] != '\0'; k++)
			if (uuid[k] != '-')
				c->sid[o++] = uuid[k];
		c->sid[o] = '\0';
	}
	snprintf(c->tenant, sizeof c->tenant, "%s", comfy_tenant(tok));
	c->first = 1;
	c->s = s;
	cws_follow(s);
	guard_upgrade(req); /* frames follow, not requests */
	c->peer = ws_peer_accept(req, accept, CWS_MAX_MSG, &cws_cb, c);
	TAILQ_INSERT_HEAD(&cws_socks, c, link); /* the newest takes its id */
	cws_nsocks++;
	log_info("comfy ws %s open (tenant %s)", c->sid, c->tenant);
	d = cws_status(c->tenant);
	cJSON_AddStringToObject(d, "sid", c->sid);
	text = cws_frame("status", d);
	cws_queue(c, text);
	cJSON_free(text);
	ws_peer_start(c->peer);
}

void
cws_close_all(void)
{
	while (!TAILQ_EMPTY(&cws_socks))
		ws_peer_free(TAILQ_FIRST(&cws_socks)->peer, 0);
}
