/*
 * WebSocket client (see ws.h): the link, from the connect to on_close. One
 * state machine per link:
 *
 *   RESOLVING -> CONNECTING -> HANDSHAKE -> OPEN -> CLOSED
 *
 * This file does the name lookup (evdns), the TCP connect (a bufferevent),
 * the timers (connect, ping, pong) and the frames: wslay's event API frames
 * them, reading from and writing to the bufferevent's buffers. The URL and
 * the HTTP upgrade, request and reply, are ws_handshake.c's (through
 * ws_int.h); it never sees a struct ws. Every way out goes through
 * ws_shutdown(): it stops the timers, flushes what is queued (a close
 * frame) with one non-blocking write, frees the socket and schedules
 * on_close on the loop, so a user callback never runs inside ws_connect()
 * or inside wslay. User callbacks run with ws->depth raised; ws_free()
 * inside one only marks the ws, and the outermost handler frees it when
 * the callback has returned (hiredis' REDIS_IN_CALLBACK).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <wslay/wslay.h>

#include "log.h"
#include "util.h"
#include "ws.h"
#include "ws_int.h"
#include "xmalloc.h"

#define WS_DEFAULT_CONNECT_MS 5000
#define WS_DEFAULT_MAX_MSG    (64u << 20)

enum ws_state {
	WS_RESOLVING,
	WS_CONNECTING,
	WS_HANDSHAKE,
	WS_OPEN,
	WS_CLOSED,
};

struct ws {
	struct event_base		 *base;
	struct ws_opts			  opts;
	struct ws_cb			  cb;
	void				 *arg;
	enum ws_state			  state;
	struct ws_url			  url;
	char				  key[WS_KEY_LEN];
	struct evdns_base		 *dns;
	struct evdns_getaddrinfo_request *dnsreq;
	int				  resolving;
	struct bufferevent		 *bev;
	wslay_event_context_ptr		  ctx;
	struct event			 *t_connect;
	struct event			 *t_ping;
	struct event			 *t_pong;
	struct event			 *ev_close;
	int				  depth;
	int				  freed;
	char				  reason[160];
};

static void ws_shutdown(struct ws *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
ws_timer_add(struct event *ev, long long ms)
{
	struct timeval tv = { (time_t)(ms / 1000),
		(suseconds_t)((ms % 1000) * 1000) };

	event_add(ev, &tv);
}

/* Enters a handler that may call user code. */
static void
ws_enter(struct ws *ws)
{
	ws->depth++;
}

static void ws_destroy(struct ws *);

/* Leaves a handler: flushes what user code queued, and frees the ws if it
 * was freed from inside. Returns 1 when the ws is gone. */
static int
ws_leave(struct ws *ws)
{
	if (--ws->depth > 0)
		return (0);
	if (ws->freed) {
		ws_destroy(ws);
		return (1);
	}
	if (ws->state == WS_OPEN && wslay_event_want_write(ws->ctx) &&
	    wslay_event_send(ws->ctx) != 0)
		ws_shutdown(ws, "send failed");
	return (0);
}

/*
 * One non-blocking write of what is queued (a close frame) before the
 * socket goes. A socket bufferevent keeps its output frozen at the front
 * so that only it drains the buffer; we are about to free it.
 */
static void
ws_flush(struct evbuffer *out, evutil_socket_t fd)
{
	evbuffer_unfreeze(out, 1);
	(void)evbuffer_write(out, fd);
}

/* Stops all I/O and timers; queued frames get one non-blocking write. */
static void
ws_teardown(struct ws *ws)
{
	evutil_socket_t fd;

	if (ws->dnsreq != NULL) {
		evdns_getaddrinfo_cancel(ws->dnsreq);
		ws->dnsreq = NULL;
	}
	event_del(ws->t_connect);
	event_del(ws->t_ping);
	event_del(ws->t_pong);
	if (ws->ctx != NULL) {
		(void)wslay_event_send(ws->ctx);
		wslay_event_context_free(ws->ctx);
		ws->ctx = NULL;
	}
	if (ws->bev != NULL) {
		fd = bufferevent_getfd(ws->bev);
		if (fd != -1 && ws->state >= WS_HANDSHAKE)
			ws_flush(bufferevent_get_output(ws->bev), fd);
		bufferevent_free(ws->bev);
		ws->bev = NULL;
	}
}

/* Ends the link and schedules on_close with the reason. Idempotent. */
static void
ws_shutdown(struct ws *ws, const char *fmt, ...)
{
	va_list ap;

	if (ws->state == WS_CLOSED)
		return;
	va_start(ap, fmt);
	vsnprintf(ws->reason, sizeof ws->reason, fmt, ap);
	va_end(ap);
	ws_teardown(ws);
	ws->state = WS_CLOSED;
	event_active(ws->ev_close, EV_TIMEOUT, 1);
}

static void
ws_close_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws *ws = arg;

	(void)fd;
	(void)what;
	ws_enter(ws);
	if (!ws->freed && ws->cb.on_close != NULL)
		ws->cb.on_close(ws, ws->reason, ws->arg);
	ws_leave(ws);
}

static void
ws_destroy(struct ws *ws)
{
	if (ws->state == WS_OPEN &&
	    wslay_event_queue_close(
		ws->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0) == 0)
		(void)wslay_event_send(ws->ctx);
	if (ws->state != WS_CLOSED) {
		ws_teardown(ws);
		ws->state = WS_CLOSED;
	}
	event_free(ws->t_connect);
	event_free(ws->t_ping);
	event_free(ws->t_pong);
	event_free(ws->ev_close);
	if (ws->dns != NULL)
		evdns_base_free(ws->dns, 0);
	ws_url_free(&ws->url);
	free(ws);
}

void
ws_free(struct ws *ws)
{
	if (ws == NULL || ws->freed)
		return;
	ws->freed = 1;
	if (ws->depth == 0)
		ws_destroy(ws);
}

/* wslay I/O: frames are read from and written to the bufferevent. */
static ssize_t
ws_wslay_recv(
    wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct ws *ws = arg;
	int	   n;

	(void)flags;
	n = evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return (-1);
	}
	return (n);
}

static ssize_t
ws_wslay_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct ws *ws = arg;

	(void)flags;
	if (evbuffer_add(bufferevent_get_output(ws->bev), data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return (-1);
	}
	return ((ssize_t)len);
}

static int
ws_wslay_genmask(
    wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *arg)
{
	size_t	 i;
	uint64_t r = 0;

	(void)ctx;
	(void)arg;
	for (i = 0; i < len; i++) {
		if (i % 8 == 0)
			r = rand_u64();
		buf[i] = (uint8_t)(r >> (8 * (i % 8)));
	}
	return (0);
}

static void
ws_wslay_msg(wslay_event_context_ptr	      ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct ws	    *ws = arg;
	static const uint8_t empty[1];
	const uint8_t	    *msg = m->msg != NULL ? m->msg : empty;

	(void)ctx;
	if (ws->freed || ws->state != WS_OPEN)
		return;
	if (m->opcode == WSLAY_TEXT_FRAME && ws->cb.on_text != NULL)
		ws->cb.on_text(ws, (const char *)msg, m->msg_length, ws->arg);
	else if (m->opcode == WSLAY_BINARY_FRAME && ws->cb.on_binary != NULL)
		ws->cb.on_binary(ws, msg, m->msg_length, ws->arg);
}

static const struct wslay_event_callbacks ws_wslay_callbacks = {
	.recv_callback = ws_wslay_recv,
	.send_callback = ws_wslay_send,
	.genmask_callback = ws_wslay_genmask,
	.on_msg_recv_callback = ws_wslay_msg,
};

/* Reads the 101 reply once it is all there; on success the link is open. */
static void
ws_read_handshake(struct ws *ws)
{
	char reason[sizeof ws->reason];
	int  rc;

	rc = ws_handshake_reply(
	    bufferevent_get_input(ws->bev), ws->key, reason, sizeof reason);
	if (rc == 1)
		return;
	if (rc == -1) {
		ws_shutdown(ws, "%s", reason);
		return;
	}
	if (wslay_event_context_client_init(
		&ws->ctx, &ws_wslay_callbacks, ws) != 0) {
		ws_shutdown(ws, "out of memory");
		return;
	}
	wslay_event_config_set_max_recv_msg_length(
	    ws->ctx, ws->opts.max_msg_bytes);
	event_del(ws->t_connect);
	ws->state = WS_OPEN;
	if (ws->opts.ping_interval_ms > 0)
		ws_timer_add(ws->t_ping, ws->opts.ping_interval_ms);
	if (ws->cb.on_open != NULL)
		ws->cb.on_open(ws, ws->arg);
}

/* Feeds what arrived to wslay and acts on a close or a protocol error. */
static void
ws_read_frames(struct ws *ws)
{
	event_del(ws->t_pong);
	if (wslay_event_recv(ws->ctx) != 0) {
		ws_shutdown(ws, "receive failed");
		return;
	}
	if (ws->freed)
		return;
	if (wslay_event_send(ws->ctx) != 0) {
		ws_shutdown(ws, "send failed");
		return;
	}
	if (wslay_event_get_read_enabled(ws->ctx))
		return;
	if (wslay_event_get_close_received(ws->ctx))
		ws_shutdown(ws, "closed by peer (%u)",
		    (unsigned)wslay_event_get_status_code_received(ws->ctx));
	else if (wslay_event_get_status_code_sent(ws->ctx) ==
	    WSLAY_CODE_MESSAGE_TOO_BIG)
		ws_shutdown(ws, "message too big");
	else
		ws_shutdown(ws, "protocol error (%u)",
		    (unsigned)wslay_event_get_status_code_sent(ws->ctx));
}

static void
ws_read_cb(struct bufferevent *bev, void *arg)
{
	struct ws *ws = arg;

	(void)bev;
	ws_enter(ws);
	if (ws->state == WS_HANDSHAKE)
		ws_read_handshake(ws);
	if (ws->state == WS_OPEN && !ws->freed)
		ws_read_frames(ws);
	ws_leave(ws);
}

static void
ws_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ws	*ws = arg;
	struct evbuffer *out = bufferevent_get_output(bev);
	int		 one = 1;
	const char	*err;

	ws_enter(ws);
	if (what & BEV_EVENT_CONNECTED) {
		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP,
		    TCP_NODELAY, &one, sizeof one);
		ws_handshake_request(out, &ws->url, ws->key);
		ws->state = WS_HANDSHAKE;
	} else if (what & BEV_EVENT_EOF) {
		ws_shutdown(ws, "%s",
		    ws->state == WS_OPEN
			? "connection closed by peer"
			: "connection closed during handshake");
	} else if (what & BEV_EVENT_ERROR) {
		err = evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR());
		ws_shutdown(ws, "%s%s",
		    ws->state == WS_CONNECTING ? "connect: " : "", err);
	}
	ws_leave(ws);
}

static void
ws_dial(struct ws *ws, const struct sockaddr *sa, int salen)
{
	ws->state = WS_CONNECTING;
	ws->bev = bufferevent_socket_new(ws->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (ws->bev == NULL) {
		ws_shutdown(ws, "connect: cannot create socket");
		return;
	}
	bufferevent_setcb(ws->bev, ws_read_cb, NULL, ws_event_cb, ws);
	bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(ws->bev, sa, salen) == -1)
		ws_shutdown(ws, "connect: %s",
		    evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void
ws_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	struct ws	       *ws = arg;
	struct evutil_addrinfo *ai, *pick = NULL;

	ws->dnsreq = NULL;
	ws->resolving = 0;
	if (result == EVUTIL_EAI_CANCEL)
		return;
	if (result != 0) {
		ws_shutdown(ws, "resolve %s: %s", ws->url.host,
		    evutil_gai_strerror(result));
		return;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next)
		if (pick == NULL ||
		    (ai->ai_family == AF_INET && pick->ai_family != AF_INET))
			pick = ai;
	if (pick == NULL)
		ws_shutdown(ws, "resolve %s: no address", ws->url.host);
	else
		ws_dial(ws, pick->ai_addr, (int)pick->ai_addrlen);
	evutil_freeaddrinfo(res);
}

static void
ws_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws *ws = arg;

	(void)fd;
	(void)what;
	ws_enter(ws);
	ws_shutdown(ws, "connect timeout");
	ws_leave(ws);
}

static void
ws_ping_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)ws_send_ping(arg);
}

static void
ws_pong_cb(evutil_socket_t fd, short what, void *arg)
{
	struct ws *ws = arg;

	(void)fd;
	(void)what;
	ws_enter(ws);
	ws_shutdown(ws, "pong timeout");
	ws_leave(ws);
}

/* Starts the connect: a literal address dials now, a name is looked up. */
static void
ws_start(struct ws *ws)
{
	struct sockaddr_in		  sin;
	struct sockaddr_in6		  sin6;
	struct evutil_addrinfo		  hints;
	struct evdns_getaddrinfo_request *req;
	char				  port[8];

	memset(&sin, 0, sizeof sin);
	memset(&sin6, 0, sizeof sin6);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)ws->url.port);
	if (strcasecmp(ws->url.host, "localhost") == 0 ||
	    inet_pton(AF_INET, ws->url.host, &sin.sin_addr) == 1) {
		if (strcasecmp(ws->url.host, "localhost") == 0)
			sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ws_dial(ws, (struct sockaddr *)&sin, sizeof sin);
		return;
	}
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons((uint16_t)ws->url.port);
	if (inet_pton(AF_INET6, ws->url.host, &sin6.sin6_addr) == 1) {
		ws_dial(ws, (struct sockaddr *)&sin6, sizeof sin6);
		return;
	}
	ws->dns = evdns_base_new(ws->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (ws->dns == NULL) {
		ws_shutdown(ws, "resolve %s: no resolver", ws->url.host);
		return;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof port, "%d", ws->url.port);
	ws->resolving = 1;
	req = evdns_getaddrinfo(
	    ws->dns, ws->url.host, port, &hints, ws_resolved, ws);
	if (ws->resolving)
		ws->dnsreq = req;
}

/* A ws in state RESOLVING with its timers, the connect timer armed. */
static struct ws *
ws_new(struct event_base *base, const char *url, const struct ws_opts *opts,
    const struct ws_cb *cb, void *arg, char *err, size_t errlen)
{
	struct ws *ws;

	ws = xcalloc(1, sizeof *ws);
	if (ws_url_parse(url, &ws->url, err, errlen) == -1) {
		free(ws);
		return (NULL);
	}
	ws->base = base;
	if (opts != NULL)
		ws->opts = *opts;
	if (ws->opts.connect_timeout_ms <= 0)
		ws->opts.connect_timeout_ms = WS_DEFAULT_CONNECT_MS;
	if (ws->opts.max_msg_bytes == 0)
		ws->opts.max_msg_bytes = WS_DEFAULT_MAX_MSG;
	ws->cb = *cb;
	ws->arg = arg;
	ws->state = WS_RESOLVING;
	ws->t_connect = evtimer_new(base, ws_timeout_cb, ws);
	ws->t_ping = event_new(base, -1, EV_PERSIST, ws_ping_cb, ws);
	ws->t_pong = evtimer_new(base, ws_pong_cb, ws);
	ws->ev_close = event_new(base, -1, 0, ws_close_cb, ws);
	if (ws->t_connect == NULL || ws->t_ping == NULL || ws->t_pong == NULL ||
	    ws->ev_close == NULL)
		fatalx("ws: out of memory");
	ws_timer_add(ws->t_connect, ws->opts.connect_timeout_ms);
	return (ws);
}

struct ws *
ws_connect(struct event_base *base, const char *url, const struct ws_opts *opts,
    const struct ws_cb *cb, void *arg, char *err, size_t errlen)
{
	struct ws *ws = ws_new(base, url, opts, cb, arg, err, errlen);

	if (ws != NULL)
		ws_start(ws);
	return (ws);
}

struct ws *
ws_connect_fd(struct event_base *base, int fd, const char *url,
    const struct ws_opts *opts, const struct ws_cb *cb, void *arg, char *err,
    size_t errlen)
{
	struct ws *ws = ws_new(base, url, opts, cb, arg, err, errlen);

	if (ws == NULL)
		return (NULL);
	ws->state = WS_CONNECTING;
	if (evutil_make_socket_nonblocking(fd) == -1 ||
	    (ws->bev = bufferevent_socket_new(
		 base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		ws_shutdown(ws, "connect: cannot use the socket");
		return (ws);
	}
	bufferevent_setcb(ws->bev, ws_read_cb, NULL, ws_event_cb, ws);
	bufferevent_enable(ws->bev, EV_READ | EV_WRITE);
	ws_event_cb(ws->bev, BEV_EVENT_CONNECTED, ws);
	return (ws);
}

int
ws_send_text(struct ws *ws, const char *s, size_t len)
{
	struct wslay_event_msg m;

	if (ws == NULL || ws->freed || ws->state != WS_OPEN)
		return (-1);
	m.opcode = WSLAY_TEXT_FRAME;
	m.msg = (const uint8_t *)s;
	m.msg_length = len;
	if (wslay_event_queue_msg(ws->ctx, &m) != 0)
		return (-1);
	if (ws->depth == 0 && wslay_event_send(ws->ctx) != 0) {
		ws_shutdown(ws, "send failed");
		return (-1);
	}
	return (0);
}

int
ws_send_ping(struct ws *ws)
{
	struct wslay_event_msg m;

	if (ws == NULL || ws->freed || ws->state != WS_OPEN)
		return (-1);
	m.opcode = WSLAY_PING;
	m.msg = NULL;
	m.msg_length = 0;
	if (wslay_event_queue_msg(ws->ctx, &m) != 0)
		return (-1);
	if (ws->opts.pong_timeout_ms > 0 && !evtimer_pending(ws->t_pong, NULL))
		ws_timer_add(ws->t_pong, ws->opts.pong_timeout_ms);
	if (ws->depth == 0 && wslay_event_send(ws->ctx) != 0) {
		ws_shutdown(ws, "send failed");
		return (-1);
	}
	return (0);
}
