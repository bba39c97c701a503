/*
 * The connection guard (see sched_guard.h).
 *
 * Why. libevent 2.1's evhttp refuses a body over its max_body_size, a head
 * over its max_headers_size and a malformed head itself, with a short HTML
 * page and no hook to change it (evhttp_set_newreqcb and error callbacks
 * are 2.2's; a request's header callback cannot be set on incoming
 * requests). The one per-connection entry 2.1 has is evhttp_set_bevcb: the
 * bufferevent evhttp reads. The guard's is a filter (bufferevent_filter_new)
 * over the socket's bufferevent, so every byte a client sends passes the
 * guard's scanner (sched_guard_scan.c) before evhttp sees it.
 *
 * Input. A head is held until it is whole, then handed on with exactly its
 * body (Content-Length bytes, or a chunked body read chunk by chunk), and
 * the scanner starts on the next head: keep-alive and pipelining as before.
 * A request to refuse never reaches evhttp. The answer must still come
 * after the answers to the requests before it, which evhttp may be writing
 * or waiting for, and evhttp answers one request at a time; so the guard
 * hands evhttp a stand-in instead and drops everything after: a request
 * whose body is the mark, or, in a chunked body, a last chunk that is the
 * mark (evhttp 2.1.12 drops trailers, so a header cannot say it). The mark
 * is 32 random hex characters drawn once per process; a body that ends
 * with it on a connection the guard is refusing is the stand-in. evhttp
 * dispatches the stand-in when the answers before it are out; the router
 * calls guard_answer(), which takes the connection over (as a WebSocket
 * does: evhttp never sees it again), writes the JSON error with
 * Connection: close, logs it like http_reply_* do and counts it in
 * /metrics under the route "(guard)". Then it lingers: once the answer
 * is written it shuts the socket for writing and reads and drops what the
 * client still sends, up to GUARD_LINGER_BYTES or GUARD_LINGER_MS or the
 * client's close, so that a client still sending its body reads the answer
 * instead of a reset; then it frees the connection.
 *
 * Output. A filter's output is "written" for its owner once the filter has
 * moved it to the socket bufferevent, not to the kernel: evhttp frees a
 * connection at that moment after a Connection: close answer, and the
 * bytes still in the socket bufferevent were lost (an empty reply, libevent
 * issue 616). So the guard moves nothing: its output filter writes the
 * filter's output to the socket itself, when the socket can take it (the
 * event wev), and what the owner sees waiting in the output is what the
 * kernel has not taken, as with a plain socket bufferevent: the SSE and
 * WebSocket queue caps read the same number as before. A write that makes
 * no progress for request-timeout-s is a timeout for the owner (evhttp and
 * the SSE stream close the connection); the filter's own write timeout runs
 * whenever writing is on, even with nothing to write, so the long streams
 * turn it off and rely on this one.
 *
 * Lifetime. One struct gconn per connection, made with the filter and
 * freed by it (free_context, when libevent finalizes the filter, a loop
 * turn after its owner freed it). In between, the filter's callbacks are
 * empty (bufferevent_free() clears them, and every owner sets an event
 * callback): the guard's own events check that before they touch it.
 */
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "log.h"
#include "sched.h"
#include "sched_guard.h"
#include "sched_guard_scan.h"
#include "sched_metrics.h"
#include "sched_reason.h"
#include "util.h"
#include "xmalloc.h"

#define GUARD_LINGER_MS	   2000
#define GUARD_LINGER_BYTES (16 << 20)
#define GUARD_MARK_LEN	   32

enum gc_state {
	GC_SCAN,    /* requests, through the scanner */
	GC_PASS,    /* another protocol: handed on unread */
	GC_REFUSED, /* the stand-in is with evhttp; the rest is dropped */
	GC_ANSWER,  /* the guard holds the connection: answer, linger */
};

struct gconn {
	struct sched		 *s;
	struct bufferevent	 *bev;	 /* the filter evhttp reads */
	struct bufferevent	 *sock;	 /* the socket's, under it */
	struct event		 *wev;	 /* the socket takes more, or a stall */
	struct event		 *done;	 /* lingering is over */
	struct evhttp_connection *evcon; /* GC_ANSWER */
	struct gscan		  g;
	enum gc_state		  state;
	int			  flushing; /* in guard_on_writable */
	int			  werr;	    /* a write failed */
	int			  sent;	    /* the answer is with the kernel */
	int			  client_eof; /* the client sends no more */
	int			  finished;
	size_t			  dropped; /* read and dropped, lingering */
	long long		  t0_us;   /* the refusal */
	int			  status;
	const char		 *code, *message;
	char			  method[GS_METHOD_MAX], target[GS_TARGET_MAX];
	TAILQ_ENTRY(gconn) link;
};

static TAILQ_HEAD(, gconn) gconns = TAILQ_HEAD_INITIALIZER(gconns);
static char guard_mark[GUARD_MARK_LEN + 1]; /* "": not drawn yet */

static void guard_on_writable(evutil_socket_t, short, void *);

/* Whether the filter's owner has freed it (see Lifetime above). */
static int
guard_dead(struct gconn *c)
{
	bufferevent_event_cb ecb;

	bufferevent_getcb(c->bev, NULL, NULL, &ecb, NULL);
	return (ecb == NULL);
}

/* Waits for the socket to take more; the timeout is a stalled write. */
static void
guard_arm(struct gconn *c)
{
	struct timeval	tv = { (time_t)c->s->cfg->request_timeout_s, 0 };
	evutil_socket_t fd;

	if (c->wev == NULL) {
		if ((fd = bufferevent_getfd(c->sock)) == -1)
			return;
		c->wev = event_new(bufferevent_get_base(c->sock), fd, EV_WRITE,
		    guard_on_writable, c);
		if (c->wev == NULL)
			fatalx("guard: out of memory");
	}
	if (!event_pending(c->wev, EV_WRITE | EV_TIMEOUT, NULL))
		event_add(c->wev, &tv);
}

static void
guard_on_output(
    struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	(void)buf;
	if (info->n_added > 0)
		guard_arm(arg);
}

/* The output filter: to the socket itself, and only from wev. */
static enum bufferevent_filter_result
guard_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct gconn   *c = arg;
	evutil_socket_t fd;
	int		n;

	(void)dst;
	(void)lim;
	(void)mode;
	if (evbuffer_get_length(src) == 0)
		return (BEV_NEED_MORE);
	if (!c->flushing || (fd = bufferevent_getfd(c->sock)) == -1) {
		guard_arm(c);
		return (BEV_NEED_MORE);
	}
	if ((n = evbuffer_write(src, fd)) > 0)
		return (BEV_OK);
	if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR) {
		guard_arm(c);
		return (BEV_NEED_MORE);
	}
	c->werr = errno;
	return (BEV_ERROR);
}

static void
guard_on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct gconn *c = arg;

	(void)fd;
	if (guard_dead(c))
		return;
	if (!(what & EV_WRITE)) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0)
			bufferevent_trigger_event(
			    c->bev, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT, 0);
		return;
	}
	c->flushing = 1;
	bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
	c->flushing = 0;
	if (c->werr != 0 && !guard_dead(c)) {
		c->werr = 0;
		bufferevent_trigger_event(
		    c->bev, BEV_EVENT_WRITING | BEV_EVENT_ERROR, 0);
	}
}

static void
guard_finish(struct gconn *c)
{
	if (c->finished)
		return;
	c->finished = 1;
	event_active(c->done, EV_TIMEOUT, 1);
}

static void
guard_on_done(evutil_socket_t fd, short what, void *arg)
{
	struct gconn *c = arg;

	(void)fd;
	(void)what;
	c->finished = 1;
	if (!guard_dead(c))
		evhttp_connection_free(c->evcon); /* the stand-in too */
}

/* The answer is with the kernel: the linger starts, unless the client
 * has sent everything already. */
static void
guard_on_sent(struct bufferevent *bev, void *arg)
{
	struct gconn *c = arg;

	if (c->sent || evbuffer_get_length(bufferevent_get_output(bev)))
		return;
	c->sent = 1;
	(void)shutdown(bufferevent_getfd(c->sock), SHUT_WR);
	if (c->client_eof)
		guard_finish(c);
	else
		timer_add_ms(c->done, GUARD_LINGER_MS);
}

/* The client closed (its half: the answer still goes out), the socket
 * failed, or the answer stalled. */
static void
guard_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct gconn *c = arg;

	(void)bev;
	if ((what & BEV_EVENT_EOF) && !c->sent) {
		c->client_eof = 1;
		return;
	}
	guard_finish(c);
}

/* A refusal: the stand-in goes to evhttp, everything else is dropped. */
static void
guard_refuse(struct gconn *c, struct evbuffer *src, struct evbuffer *dst)
{
	c->state = GC_REFUSED;
	c->status = c->g.status;
	c->code = c->g.code;
	c->message = c->g.message;
	snprintf(c->method, sizeof c->method, "%s", c->g.method);
	snprintf(c->target, sizeof c->target, "%s", c->g.target);
	c->t0_us = clock_mono_us();
	evbuffer_drain(src, evbuffer_get_length(src));
	if (c->g.phase == GP_HEAD)
		evbuffer_add_printf(dst,
		    "POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s",
		    GUARD_MARK_LEN, guard_mark);
	else
		evbuffer_add_printf(
		    dst, "%x\r\n%s\r\n0\r\n\r\n", GUARD_MARK_LEN, guard_mark);
}

static enum bufferevent_filter_result
guard_scan(struct gconn *c, struct evbuffer *src, struct evbuffer *dst)
{
	struct evbuffer_iovec v;
	struct evbuffer_ptr   at;
	enum gs_verdict	      verdict;
	int		      moved = 0;

	c->g.head_max = (size_t)c->s->cfg->header_max_bytes;
	c->g.body_max = c->s->cfg->body_max_bytes;
	while (evbuffer_get_length(src) > c->g.held) {
		if (evbuffer_ptr_set(src, &at, c->g.held, EVBUFFER_PTR_SET) ==
			-1 ||
		    evbuffer_peek(src, -1, &at, &v, 1) < 1)
			break;
		gscan_feed(&c->g, v.iov_base, v.iov_len, &verdict);
		switch (verdict) {
		case GS_MORE:
			break;
		case GS_PASS:
			evbuffer_remove_buffer(src, dst, c->g.held);
			gscan_let_go(&c->g);
			moved = 1;
			break;
		case GS_DROP:
			evbuffer_drain(src, c->g.held);
			gscan_let_go(&c->g);
			break;
		case GS_REFUSE:
			guard_refuse(c, src, dst);
			return (BEV_OK);
		}
	}
	return (moved ? BEV_OK : BEV_NEED_MORE);
}

/* The input filter. BEV_OK only when dst grew (the filter then calls its
 * owner's read callback); what is held or dropped is BEV_NEED_MORE. */
static enum bufferevent_filter_result
guard_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct gconn *c = arg;
	size_t	      n = evbuffer_get_length(src);

	(void)lim;
	(void)mode;
	switch (c->state) {
	case GC_SCAN:
		return (guard_scan(c, src, dst));
	case GC_PASS:
		if (n == 0)
			return (BEV_NEED_MORE);
		evbuffer_add_buffer(dst, src);
		return (BEV_OK);
	default:
		evbuffer_drain(src, n);
		if (c->state == GC_ANSWER &&
		    (c->dropped += n) > GUARD_LINGER_BYTES)
			guard_finish(c);
		return (BEV_NEED_MORE);
	}
}

static void
guard_free(void *arg)
{
	struct gconn *c = arg;

	TAILQ_REMOVE(&gconns, c, link);
	if (c->wev != NULL)
		event_free(c->wev);
	event_free(c->done);
	free(c);
}

/*
 * The scanner's target_ok: whether evhttp's parse (NONCONFORMANT, as in
 * evhttp_parse_request_line) takes a target that is not a plain path. It
 * takes any path, so only what comes before the path can fail: a scheme
 * and an authority, which are parsed alone.
 */
static int
guard_target_ok(const char *t, int cut)
{
	char		   pre[GS_TARGET_MAX];
	const char	  *a = strstr(t, "//");
	size_t		   n = strlen(t);
	struct evhttp_uri *u;

	if (strcmp(t, "*") == 0)
		return (1);
	if (a != NULL) {
		n = (size_t)(a + 2 - t) + strcspn(a + 2, "/?#");
		if (cut && t[n] == '\0')
			return (0); /* an authority longer than we keep */
	}
	snprintf(pre, sizeof pre, "%.*s", (int)n, t);
	if ((u = evhttp_uri_parse_with_flags(pre, EVHTTP_URI_NONCONFORMANT)) ==
	    NULL)
		return (0);
	evhttp_uri_free(u);
	return (1);
}

/* evhttp_set_bevcb: the bufferevent of a new connection. */
static struct bufferevent *
guard_new(struct event_base *base, void *arg)
{
	struct gconn *c = xcalloc(1, sizeof *c);

	c->s = arg;
	c->state = GC_SCAN;
	c->g.target_ok = guard_target_ok;
	gscan_init(&c->g);
	if ((c->sock = bufferevent_socket_new(
		 base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (c->bev = bufferevent_filter_new(c->sock, guard_in, guard_out,
		 BEV_OPT_CLOSE_ON_FREE, guard_free, c)) == NULL ||
	    (c->done = evtimer_new(base, guard_on_done, c)) == NULL ||
	    evbuffer_add_cb(
		bufferevent_get_output(c->bev), guard_on_output, c) == NULL)
		fatalx("guard: out of memory");
	TAILQ_INSERT_TAIL(&gconns, c, link);
	return (c->bev);
}

void
guard_attach(struct evhttp *http, struct sched *s)
{
	unsigned char r[GUARD_MARK_LEN / 2];
	size_t	      i;

	if (guard_mark[0] == '\0') {
		if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
			fatal("guard: getrandom");
		for (i = 0; i < sizeof r; i++)
			snprintf(guard_mark + 2 * i, 3, "%02x", r[i]);
	}
	evhttp_set_bevcb(http, guard_new, s);
}

/* Whether req's body ends with the mark (in constant time). */
static int
guard_marked(struct evhttp_request *req)
{
	struct evbuffer	   *body = evhttp_request_get_input_buffer(req);
	size_t		    n = evbuffer_get_length(body), i;
	struct evbuffer_ptr at;
	char		    tail[GUARD_MARK_LEN];
	unsigned char	    diff = 0;

	if (guard_mark[0] == '\0' || n < GUARD_MARK_LEN ||
	    evbuffer_ptr_set(body, &at, n - GUARD_MARK_LEN, EVBUFFER_PTR_SET) ==
		-1 ||
	    evbuffer_copyout_from(body, &at, tail, GUARD_MARK_LEN) !=
		GUARD_MARK_LEN)
		return (0);
	for (i = 0; i < GUARD_MARK_LEN; i++)
		diff |= (unsigned char)(tail[i] ^ guard_mark[i]);
	return (diff == 0);
}

static struct gconn *
guard_find(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent	 *bev;
	struct gconn		 *c;

	if (evcon == NULL)
		return (NULL);
	bev = evhttp_connection_get_bufferevent(evcon);
	TAILQ_FOREACH(c, &gconns, link)
	if (c->bev == bev)
		return (c);
	return (NULL);
}

/* For the log line: what the client sent, anything unprintable as '?'. */
static const char *
guard_printable(char *s)
{
	char *p;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	return (*s != '\0' ? s : "?");
}

/* The JSON error (http_reply_error's shape), logged and counted. */
static void
guard_write_answer(struct gconn *c)
{
	struct evbuffer	       *out = bufferevent_get_output(c->bev);
	const struct sched_cfg *cfg = c->s->cfg;
	cJSON		       *o = cJSON_CreateObject(), *e;
	char			msg[160], *text;

	if (c->status == 413)
		snprintf(msg, sizeof msg, "%s (%lld bytes)", c->message,
		    cfg->body_max_bytes);
	else if (c->status == 431)
		snprintf(msg, sizeof msg, "%s (%lld bytes)", c->message,
		    cfg->header_max_bytes);
	else
		snprintf(msg, sizeof msg, "%s", c->message);
	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "code", c->code);
	cJSON_AddStringToObject(e, "message", msg);
	if ((text = cJSON_PrintUnformatted(o)) == NULL)
		fatalx("guard: out of memory");
	evbuffer_add_printf(out,
	    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
	    "Content-Length: %zu\r\nX-Content-Type-Options: nosniff\r\n"
	    "Cache-Control: no-store\r\nConnection: close\r\n",
	    c->status, reason_phrase(c->status), strlen(text) + 1);
	if (*cfg->cors_origin != '\0')
		evbuffer_add_printf(out,
		    "Access-Control-Allow-Origin: %s\r\n"
		    "Access-Control-Expose-Headers: Retry-After, "
		    "Content-Length\r\nVary: Origin\r\n",
		    cfg->cors_origin);
	evbuffer_add_printf(out, "\r\n%s\n", text);
	cJSON_free(text);
	cJSON_Delete(o);
	log_at(c->status >= 500 ? LL_NOTICE : LL_VERBOSE,
	    "http: %s %s %d (guard: %s)", guard_printable(c->method),
	    guard_printable(c->target), c->status, msg);
	if (c->s->metrics != NULL)
		metrics_http(c->s->metrics, "(guard)", c->status,
		    (double)(clock_mono_us() - c->t0_us) / 1e6);
}

int
guard_answer(struct evhttp_request *req)
{
	struct gconn *c;

	if (!guard_marked(req) || (c = guard_find(req)) == NULL ||
	    c->state != GC_REFUSED)
		return (0);
	c->state = GC_ANSWER;
	c->evcon = evhttp_request_get_connection(req);
	bufferevent_setcb(c->bev, NULL, guard_on_sent, guard_on_event, c);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	guard_write_answer(c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return (1);
}

void
guard_upgrade(struct evhttp_request *req)
{
	struct gconn *c = guard_find(req);

	if (c != NULL && c->state == GC_SCAN)
		c->state = GC_PASS;
}
