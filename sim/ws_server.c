/*
 * The /ws endpoint. evhttp parses the upgrade request; we check it, take
 * the connection's bufferevent over (new callbacks, no timeouts), answer
 * 101 ourselves and let wslay frame the rest: client frames must be
 * masked, pings get pongs, a close gets a close, and anything malformed
 * (or a message over 4 MiB, aiohttp's limit) closes the socket. The server
 * never pings, as ComfyUI does not.
 *
 * Sockets are kept by client id the way ComfyUI's `sockets` dict is: a new
 * socket with an id in use takes the id over (the old socket stays open
 * but hears nothing), and when any socket closes its id is removed from
 * the map, even if a newer socket had taken it over. A socket is freed
 * on the next turn of the loop after it closes, outside its callbacks;
 * evhttp_connection_free() then closes it.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <wslay/wslay.h>

#include "log.h"
#include "sim.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define WS_MAX_MSG   (4u << 20)
#define WS_MAX_QUEUE (64u << 20) /* unread output before we drop a client */

struct wsc {
	char			 *sid;
	struct evhttp_connection *evcon;
	struct bufferevent	 *bev;
	wslay_event_context_ptr	  ctx;
	int			  depth; /* in wslay_event_recv() */
	int			  dead;	 /* closed; freed by ev_free */
	struct event		 *ev_free;
	int			  abrupt; /* no close frame */
	int			  first;  /* no JSON message seen yet */
	struct wsc		 *prev, *next;
};

static struct wsc  *all;    /* every socket not yet freed */
static struct omap *by_sid; /* ComfyUI's `sockets` dict */

static void
wsc_destroy(struct wsc *c)
{
	evutil_socket_t fd;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		all = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (!c->abrupt) {
		(void)wslay_event_send(c->ctx);
		fd = bufferevent_getfd(c->bev);
		if (fd != -1) {
			/* the bufferevent keeps its output frozen */
			evbuffer_unfreeze(bufferevent_get_output(c->bev), 1);
			(void)evbuffer_write(
			    bufferevent_get_output(c->bev), fd);
		}
	}
	wslay_event_context_free(c->ctx);
	event_free(c->ev_free);
	evhttp_connection_free(c->evcon);
	log_debug("ws %s closed", c->sid);
	free(c->sid);
	free(c);
}

static void
wsc_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	wsc_destroy(arg);
}

/*
 * Closes c: its id leaves the map at once (ComfyUI's finally: block),
 * and the connection is freed on the next turn of the loop, outside every
 * callback of its own (evhttp closes the socket itself, which must not
 * happen under a running bufferevent callback).
 */
static void
wsc_close(struct wsc *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	if (by_sid != NULL)
		omap_del(by_sid, c->sid);
	bufferevent_disable(c->bev, EV_READ);
	event_active(c->ev_free, EV_TIMEOUT, 1);
}

static ssize_t
wsc_recv(
    wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct wsc *c = arg;
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
wsc_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct wsc *c = arg;

	(void)flags;
	if (evbuffer_add(bufferevent_get_output(c->bev), data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return (-1);
	}
	return ((ssize_t)len);
}

/* Client text: a first JSON message of type feature_flags is answered
 * (to the socket the id maps to, as ComfyUI's send() does); anything else
 * is ignored. */
static void
wsc_text(struct wsc *c, const char *text, size_t len)
{
	cJSON *j, *t;

	if ((j = cJSON_ParseWithLength(text, len)) == NULL) {
		log_info("ws %s: invalid JSON from client", c->sid);
		return;
	}
	t = cJSON_GetObjectItemCaseSensitive(j, "type");
	if (c->first && cJSON_IsString(t) &&
	    strcmp(t->valuestring, "feature_flags") == 0)
		notify_send(c->sid, "feature_flags", api_features());
	c->first = 0;
	cJSON_Delete(j);
}

static void
wsc_msg(wslay_event_context_ptr		      ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct wsc *c = arg;

	(void)ctx;
	if (m->opcode == WSLAY_TEXT_FRAME && !c->dead)
		wsc_text(c, (const char *)m->msg, m->msg_length);
}

static const struct wslay_event_callbacks wsc_callbacks = {
	.recv_callback = wsc_recv,
	.send_callback = wsc_send,
	.on_msg_recv_callback = wsc_msg,
};

static void
wsc_read_cb(struct bufferevent *bev, void *arg)
{
	struct wsc *c = arg;

	(void)bev;
	if (c->dead)
		return;
	c->depth++;
	if (wslay_event_recv(c->ctx) != 0 || wslay_event_send(c->ctx) != 0 ||
	    !wslay_event_get_read_enabled(c->ctx))
		wsc_close(c);
	c->depth--;
}

static void
wsc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct wsc *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		c->abrupt = 1;
		wsc_close(c);
	}
}

static const char *
wsc_header(struct evhttp_request *req, const char *name)
{
	return (
	    evhttp_find_header(evhttp_request_get_input_headers(req), name));
}

static int
wsc_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (; value != NULL && *value != '\0'; value++)
		if (strncasecmp(value, token, n) == 0)
			return (1);
	return (0);
}

static void
wsc_bad(struct evhttp_request *req, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "%s", text);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=utf-8");
	evhttp_send_reply(req, 400, "Bad Request", b);
	evbuffer_free(b);
}

/* GET /ws?clientId=<id>: the WebSocket handshake and takeover. */
void
ws_server_upgrade(struct evhttp_request *req)
{
	const char *up = wsc_header(req, "Upgrade");
	const char *key = wsc_header(req, "Sec-WebSocket-Key");
	const char *ver = wsc_header(req, "Sec-WebSocket-Version");
	const char *id = http_query(req, "clientId");
	char	    accept[WS_ACCEPT_LEN], uuid[UUID_LEN], hex[33];
	struct wsc *c;
	int	    one = 1, k, o;

	if (up == NULL || strcasecmp(up, "websocket") != 0 ||
	    !wsc_token(wsc_header(req, "Connection"), "upgrade")) {
		wsc_bad(req,
		    "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" "
		    "only to \"WebSocket\".");
		return;
	}
	if (ver == NULL || strcmp(ver, "13") != 0) {
		wsc_bad(req, "Unsupported version");
		return;
	}
	if (key == NULL || strlen(key) != 24 ||
	    ws_accept_key(key, accept) == -1) {
		wsc_bad(req, "Handshake error");
		return;
	}
	c = xcalloc(1, sizeof *c);
	if (id != NULL && *id != '\0')
		c->sid = xstrdup(id);
	else {
		uuid4(uuid);
		for (k = o = 0; uuid[k] != '\0'; k++)
			if (uuid[k] != '-')
				hex[o++] = uuid[k];
		hex[o] = '\0';
		c->sid = xstrdup(hex);
	}
	c->first = 1;
	c->evcon = evhttp_request_get_connection(req);
	if ((c->ev_free = event_new(sim.base, -1, 0, wsc_free_cb, c)) == NULL)
		fatalx("ws: out of memory");
	c->bev = evhttp_connection_get_bufferevent(c->evcon);
	if (wslay_event_context_server_init(&c->ctx, &wsc_callbacks, c) != 0)
		fatalx("ws: out of memory");
	wslay_event_config_set_max_recv_msg_length(c->ctx, WS_MAX_MSG);
	bufferevent_setcb(c->bev, wsc_read_cb, NULL, wsc_event_cb, c);
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
	c->next = all;
	if (all != NULL)
		all->prev = c;
	all = c;
	if (by_sid == NULL)
		by_sid = omap_new();
	omap_put(by_sid, c->sid, c);
	log_debug("ws %s open", c->sid);
	notify_hello(c->sid);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		wsc_read_cb(c->bev, c);
}

static void
wsc_queue(struct wsc *c, const char *text, size_t len)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)text,
		len };

	if (c->dead)
		return;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) >
	    WS_MAX_QUEUE) {
		log_warnx("ws %s: client does not read, dropped", c->sid);
		c->abrupt = 1;
		wsc_close(c);
		return;
	}
	if (wslay_event_queue_msg(c->ctx, &m) != 0 ||
	    (c->depth == 0 && wslay_event_send(c->ctx) != 0))
		wsc_close(c);
}

/* A text frame to the socket of sid, or to every socket in the map when
 * sid is NULL (except skip). Returns how many sockets it was queued to. */
int
ws_server_send(const char *sid, const char *skip, const char *text, size_t len)
{
	struct omap_ent *e, *next;
	struct wsc	*c;
	int		 n = 0;

	if (by_sid == NULL)
		return (0);
	if (sid != NULL) {
		if ((c = omap_get(by_sid, sid)) == NULL)
			return (0);
		wsc_queue(c, text, len);
		return (1);
	}
	for (e = omap_first(by_sid); e != NULL; e = next) {
		next = omap_next(e);
		if (skip != NULL && strcmp(omap_key(e), skip) == 0)
			continue;
		wsc_queue(omap_val(e), text, len);
		n++;
	}
	return (n);
}

/* Whether ws_server_send(sid, skip, ...) would queue to a socket. */
int
ws_server_reaches(const char *sid, const char *skip)
{
	struct omap_ent *e;

	if (by_sid == NULL)
		return (0);
	if (sid != NULL)
		return (omap_get(by_sid, sid) != NULL);
	for (e = omap_first(by_sid); e != NULL; e = omap_next(e))
		if (skip == NULL || strcmp(omap_key(e), skip) != 0)
			return (1);
	return (0);
}

/* The ws_drop fault: the socket goes away without a close frame. */
void
ws_server_drop(const char *sid)
{
	struct wsc *c;

	if (by_sid == NULL || (c = omap_get(by_sid, sid)) == NULL)
		return;
	log_notice("fault: dropping WebSocket %s", sid);
	c->abrupt = 1;
	wsc_close(c);
}

void
ws_server_close_all(void)
{
	while (all != NULL) {
		(void)wslay_event_queue_close(
		    all->ctx, WSLAY_CODE_GOING_AWAY, NULL, 0);
		wsc_destroy(all);
	}
	omap_free(by_sid, NULL);
	by_sid = NULL;
}
