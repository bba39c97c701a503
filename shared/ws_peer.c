/*
 * The server side of one WebSocket (see ws_peer.h): evhttp has parsed the
 * upgrade request; the peer takes the connection's bufferevent over (new
 * callbacks, no timeouts), answers 101 itself and lets wslay frame the
 * rest. depth counts the wslay_event_recv() calls under way: a message
 * queued from inside one is sent when it returns, not under it.
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
#include "ws_peer.h"
#include "xmalloc.h"

struct ws_peer {
	struct evhttp_connection *evcon;
	struct bufferevent	 *bev;
	wslay_event_context_ptr	  ctx;
	struct event		 *ev_free;
	const struct ws_peer_cb	 *cb;
	void			 *arg;
	int			  depth;  /* in wslay_event_recv() */
	int			  dead;	  /* closed; freed by ev_free */
	int			  abrupt; /* no close frame */
};

static void
peer_destroy(struct ws_peer *p)
{
	evutil_socket_t fd;

	if (!p->abrupt) {
		(void)wslay_event_send(p->ctx);
		if ((fd = bufferevent_getfd(p->bev)) != -1) {
			/* the bufferevent keeps its output frozen */
			evbuffer_unfreeze(bufferevent_get_output(p->bev), 1);
			(void)evbuffer_write(
			    bufferevent_get_output(p->bev), fd);
		}
	}
	wslay_event_context_free(p->ctx);
	event_free(p->ev_free);
	evhttp_connection_free(p->evcon);
	p->cb->on_free(p->arg);
	free(p);
}

static void
peer_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	peer_destroy(arg);
}

void
ws_peer_close(struct ws_peer *p, int abrupt)
{
	if (p->dead)
		return;
	p->dead = 1;
	p->abrupt |= abrupt;
	p->cb->on_close(p, p->arg);
	bufferevent_disable(p->bev, EV_READ);
	event_active(p->ev_free, EV_TIMEOUT, 1);
}

void
ws_peer_free(struct ws_peer *p, int going_away)
{
	if (going_away)
		(void)wslay_event_queue_close(
		    p->ctx, WSLAY_CODE_GOING_AWAY, NULL, 0);
	if (!p->dead) {
		p->dead = 1;
		p->cb->on_close(p, p->arg);
	}
	event_del(p->ev_free);
	peer_destroy(p);
}

int
ws_peer_send(struct ws_peer *p, const char *text, size_t len, size_t max_queue)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)text,
		len };

	if (p->dead)
		return (0);
	if (evbuffer_get_length(bufferevent_get_output(p->bev)) > max_queue) {
		ws_peer_close(p, 1);
		return (-1);
	}
	if (wslay_event_queue_msg(p->ctx, &m) != 0 ||
	    (p->depth == 0 && wslay_event_send(p->ctx) != 0))
		ws_peer_close(p, 0);
	return (0);
}

static ssize_t
peer_recv(
    wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct ws_peer *p = arg;
	int		n;

	(void)flags;
	n = evbuffer_remove(bufferevent_get_input(p->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return (-1);
	}
	return (n);
}

static ssize_t
peer_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct ws_peer *p = arg;

	(void)flags;
	if (evbuffer_add(bufferevent_get_output(p->bev), data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return (-1);
	}
	return ((ssize_t)len);
}

static void
peer_msg(wslay_event_context_ptr	      ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct ws_peer *p = arg;

	(void)ctx;
	if (m->opcode == WSLAY_TEXT_FRAME && !p->dead)
		p->cb->on_text(p, (const char *)m->msg, m->msg_length, p->arg);
}

static const struct wslay_event_callbacks peer_callbacks = {
	.recv_callback = peer_recv,
	.send_callback = peer_send,
	.on_msg_recv_callback = peer_msg,
};

static void
peer_read_cb(struct bufferevent *bev, void *arg)
{
	struct ws_peer *p = arg;

	(void)bev;
	if (p->dead)
		return;
	p->depth++;
	if (wslay_event_recv(p->ctx) != 0 || wslay_event_send(p->ctx) != 0 ||
	    !wslay_event_get_read_enabled(p->ctx))
		ws_peer_close(p, 0);
	p->depth--;
}

static void
peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		ws_peer_close(arg, 1);
}

static const char *
peer_header(struct evhttp_request *req, const char *name)
{
	return (
	    evhttp_find_header(evhttp_request_get_input_headers(req), name));
}

static int
peer_has_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (; value != NULL && *value != '\0'; value++)
		if (strncasecmp(value, token, n) == 0)
			return (1);
	return (0);
}

const char *
ws_peer_check(struct evhttp_request *req, char accept[WS_ACCEPT_LEN])
{
	const char *up = peer_header(req, "Upgrade");
	const char *key = peer_header(req, "Sec-WebSocket-Key");
	const char *ver = peer_header(req, "Sec-WebSocket-Version");

	if (up == NULL || strcasecmp(up, "websocket") != 0 ||
	    !peer_has_token(peer_header(req, "Connection"), "upgrade"))
		return ("No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only "
			"to \"WebSocket\".");
	if (ver == NULL || strcmp(ver, "13") != 0)
		return ("Unsupported version");
	if (key == NULL || strlen(key) != 24 ||
	    ws_accept_key(key, accept) == -1)
		return ("Handshake error");
	return (NULL);
}

struct ws_peer *
ws_peer_accept(struct evhttp_request *req, const char *accept, size_t max_msg,
    const struct ws_peer_cb *cb, void *arg)
{
	struct ws_peer *p = xcalloc(1, sizeof *p);
	int		one = 1;

	p->cb = cb;
	p->arg = arg;
	p->evcon = evhttp_request_get_connection(req);
	p->bev = evhttp_connection_get_bufferevent(p->evcon);
	if ((p->ev_free = event_new(evhttp_connection_get_base(p->evcon), -1, 0,
		 peer_free_cb, p)) == NULL ||
	    wslay_event_context_server_init(&p->ctx, &peer_callbacks, p) != 0)
		fatalx("ws: out of memory");
	wslay_event_config_set_max_recv_msg_length(p->ctx, max_msg);
	bufferevent_setcb(p->bev, peer_read_cb, NULL, peer_event_cb, p);
	bufferevent_set_timeouts(p->bev, NULL, NULL);
	bufferevent_enable(p->bev, EV_READ | EV_WRITE);
	(void)setsockopt(bufferevent_getfd(p->bev), IPPROTO_TCP, TCP_NODELAY,
	    &one, sizeof one);
	evbuffer_add_printf(bufferevent_get_output(p->bev),
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n\r\n",
	    accept);
	return (p);
}

void
ws_peer_start(struct ws_peer *p)
{
	if (evbuffer_get_length(bufferevent_get_input(p->bev)) > 0)
		peer_read_cb(p->bev, p);
}
