/*
 * The WebSocket server of /comfy/ws (the design is in sched_comfy_ws.c).
 * evhttp parses the upgrade; we check it, take the connection's
 * bufferevent over (no timeouts), answer 101 and let wslay frame the rest,
 * as comfyq-sim's /ws does (sim/ws_server.c): client frames must be
 * masked, pings get pongs, a close gets a close, anything malformed or a
 * message over CWS_MAX_MSG closes the socket; the server never pings, as
 * ComfyUI does not. A socket is freed on the next turn of the loop after
 * it closes, outside its own callbacks; evhttp_connection_free() closes it.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "log.h"
#include "sched.h"
#include "sched_comfy.h"
#include "sched_comfy_ws.h"
#include "sched_http.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define CWS_MAX_MSG (64u << 10) /* what a client may send */

struct cws_list cws_socks = TAILQ_HEAD_INITIALIZER(cws_socks);
long long	cws_nsocks;

static void
cws_destroy(struct cws *c)
{
	evutil_socket_t fd;

	if (!c->abrupt) {
		(void)wslay_event_send(c->ctx);
		if ((fd = bufferevent_getfd(c->bev)) != -1) {
			evbuffer_unfreeze(bufferevent_get_output(c->bev), 1);
			(void)evbuffer_write(
			    bufferevent_get_output(c->bev), fd);
		}
	}
	wslay_event_context_free(c->ctx);
	event_free(c->ev_free);
	evhttp_connection_free(c->evcon);
	free(c);
}

static void
cws_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cws_destroy(arg);
}

/* Off the list at once; freed on the next turn, outside its callbacks. */
static void
cws_close(struct cws *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	TAILQ_REMOVE(&cws_socks, c, link);
	cws_nsocks--;
	bufferevent_disable(c->bev, EV_READ);
	event_active(c->ev_free, EV_TIMEOUT, 1);
}

void
cws_queue(struct cws *c, const char *text)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)text,
		strlen(text) };

	if (c->dead)
		return;
	if ((long long)evbuffer_get_length(bufferevent_get_output(c->bev)) >
	    c->s->cfg->sse_buffer_max_bytes) {
		log_warnx(
		    "comfy ws %s: the client does not read; dropped", c->sid);
		c->abrupt = 1;
		cws_close(c);
		return;
	}
	if (wslay_event_queue_msg(c->ctx, &m) != 0 ||
	    (c->depth == 0 && wslay_event_send(c->ctx) != 0))
		cws_close(c);
}

static ssize_t
cws_recv(
    wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct cws *c = arg;
	int	    n;

	(void)flags;
	n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return (-1);
	}
	return (n);
}

static ssize_t
cws_sendcb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct cws *c = arg;

	(void)flags;
	if (evbuffer_add(bufferevent_get_output(c->bev), data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return (-1);
	}
	return ((ssize_t)len);
}

/* A first JSON message of type feature_flags is answered, as ComfyUI. */
static void
cws_msg(wslay_event_context_ptr		      ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct cws *c = arg;
	cJSON	   *j, *d;
	const char *type;
	char	   *text;

	(void)ctx;
	if (m->opcode != WSLAY_TEXT_FRAME || c->dead ||
	    (j = cJSON_ParseWithLength((const char *)m->msg, m->msg_length)) ==
		NULL)
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

static const struct wslay_event_callbacks cws_callbacks = {
	.recv_callback = cws_recv,
	.send_callback = cws_sendcb,
	.on_msg_recv_callback = cws_msg,
};

static void
cws_read_cb(struct bufferevent *bev, void *arg)
{
	struct cws *c = arg;

	(void)bev;
	if (c->dead)
		return;
	c->depth++;
	if (wslay_event_recv(c->ctx) != 0 || wslay_event_send(c->ctx) != 0 ||
	    !wslay_event_get_read_enabled(c->ctx))
		cws_close(c);
	c->depth--;
}

static void
cws_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct cws *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		c->abrupt = 1;
		cws_close(c);
	}
}

static int
cws_has_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (; value != NULL && *value != '\0'; value++)
		if (strncasecmp(value, token, n) == 0)
			return (1);
	return (0);
}

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
	const char *up = http_header(req, "Upgrade");
	const char *key = http_header(req, "Sec-WebSocket-Key");
	const char *ver = http_header(req, "Sec-WebSocket-Version");
	char	    accept[WS_ACCEPT_LEN], uuid[UUID_LEN], *text;
	cJSON	   *d;
	struct cws *c;
	int	    one = 1, k, o;

	(void)args;
	if (s->sse == NULL) {
		http_reply_error(req, 503, "unavailable",
		    "/comfy/ws needs the events reader, which is not running");
		return;
	}
	if (up == NULL || strcasecmp(up, "websocket") != 0 ||
	    !cws_has_token(http_header(req, "Connection"), "upgrade")) {
		cws_bad(req,
		    "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" "
		    "only to \"WebSocket\".");
		return;
	}
	if (ver == NULL || strcmp(ver, "13") != 0) {
		cws_bad(req, "Unsupported version");
		return;
	}
	if (key == NULL || strlen(key) != 24 ||
	    ws_accept_key(key, accept) == -1) {
		cws_bad(req, "Handshake error");
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
	c->evcon = evhttp_request_get_connection(req);
	if ((c->ev_free = event_new(s->base, -1, 0, cws_free_cb, c)) == NULL ||
	    wslay_event_context_server_init(&c->ctx, &cws_callbacks, c) != 0)
		fatalx("comfy ws: out of memory");
	wslay_event_config_set_max_recv_msg_length(c->ctx, CWS_MAX_MSG);
	c->bev = evhttp_connection_get_bufferevent(c->evcon);
	bufferevent_setcb(c->bev, cws_read_cb, NULL, cws_event_cb, c);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	(void)setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY,
	    &one, sizeof one);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n\r\n",
	    accept);
	TAILQ_INSERT_HEAD(&cws_socks, c, link); /* the newest takes its id */
	cws_nsocks++;
	log_info("comfy ws %s open (tenant %s)", c->sid, c->tenant);
	d = cws_status(c->tenant);
	cJSON_AddStringToObject(d, "sid", c->sid);
	text = cws_frame("status", d);
	cws_queue(c, text);
	cJSON_free(text);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		cws_read_cb(c->bev, c);
}

void
cws_close_all(void)
{
	struct cws *c;

	while ((c = TAILQ_FIRST(&cws_socks)) != NULL) {
		cws_close(c);
		event_del(c->ev_free);
		cws_destroy(c);
	}
}
