/*
 * Redis connection and function calls (see rq.h).
 *
 * The non-blocking connection is a small state machine: DOWN -> CONNECTING
 * (TCP/unix connect, bounded by a timer) -> SETUP (AUTH, SELECT and the
 * loaded library's version pipelined; FUNCTION LOAD REPLACE unless Redis
 * holds a newer library) -> UP. Any error
 * or disconnect goes back to DOWN and schedules a reconnect with backoff.
 * Callers are told of UP and DOWN through one callback; a call made while
 * not UP is refused (-1) rather than queued, so nothing is sent twice.
 * hiredis frees a context right after its disconnect callback, so ra->ac is
 * cleared there and never touched again.
 *
 * A rediss:// URL connects through the TLS bridge (rq_tls.h) and is
 * otherwise the same; the bridge's reason for a drop (a certificate that
 * did not verify, an alert from the server) replaces hiredis's "Server
 * closed the connection" in the errors and logs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "backoff.h"
#include "log.h"
#include "rq.h"
#include "rq_tls.h"
#include "tls_bridge.h"
#include "util.h"
#include "xmalloc.h"

#define RQ_BACKOFF_BASE_MS 100
#define RQ_BACKOFF_MAX_MS  5000

void
rq_cmd_init(struct rq_cmd *c, const char *name)
{
	memset(c, 0, sizeof *c);
	rq_cmd_add(c, name);
}

/* Starts FCALL comfyq_<fn> 1 <prefix>. */
void
rq_cmd_fcall(struct rq_cmd *c, const char *fn, const char *prefix)
{
	rq_cmd_init(c, "FCALL");
	rq_cmd_addf(c, "comfyq_%s", fn);
	rq_cmd_add(c, "1");
	rq_cmd_add(c, prefix);
}

void
rq_cmd_addb(struct rq_cmd *c, const void *p, size_t len)
{
	if (c->argc == c->cap) {
		c->cap = c->cap == 0 ? 8 : c->cap * 2;
		c->argv = xrealloc(c->argv, (size_t)c->cap * sizeof *c->argv);
		c->lens = xrealloc(c->lens, (size_t)c->cap * sizeof *c->lens);
	}
	c->argv[c->argc] = xmalloc(len + 1);
	memcpy(c->argv[c->argc], p, len);
	c->argv[c->argc][len] = '\0';
	c->lens[c->argc++] = len;
}

void
rq_cmd_add(struct rq_cmd *c, const char *s)
{
	rq_cmd_addb(c, s, strlen(s));
}

void
rq_cmd_addf(struct rq_cmd *c, const char *fmt, ...)
{
	va_list ap;
	char	buf[256], *p;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		fatalx("rq_cmd_addf: bad format");
	if ((size_t)n < sizeof buf) {
		rq_cmd_addb(c, buf, (size_t)n);
		return;
	}
	p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rq_cmd_addb(c, p, (size_t)n);
	free(p);
}

void
rq_cmd_free(struct rq_cmd *c)
{
	int i;

	for (i = 0; i < c->argc; i++)
		free(c->argv[i]);
	free(c->argv);
	free(c->lens);
	memset(c, 0, sizeof *c);
}

redisReply *
rq_run(redisContext *ctx, const struct rq_cmd *c)
{
	return (
	    redisCommandArgv(ctx, c->argc, (const char **)c->argv, c->lens));
}

int
rq_reply_is_status(const redisReply *r, const char *s)
{
	return (r != NULL && r->type == REDIS_REPLY_STATUS &&
	    strcmp(r->str, s) == 0);
}

/* Runs one setup command; 0 when it did not fail. */
static int
rq_setup_one(redisContext *ctx, struct rq_cmd *c, const char *what, char *err,
    size_t errlen)
{
	redisReply *r;
	int	    rc = 0;

	r = rq_run(ctx, c);
	if (r == NULL) {
		snprintf(err, errlen, "%s: %s", what, ctx->errstr);
		rc = -1;
	} else if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s: %s", what, r->str);
		rc = -1;
	}
	freeReplyObject(r);
	rq_cmd_free(c);
	return (rc);
}

/*
 * Loads the functions library and checks the loaded version. A library
 * newer than ours is left in place (an older program in a fleet being
 * upgraded must not take functions away from the newer ones): an error.
 */
int
rq_load_functions(redisContext *ctx, char *err, size_t errlen)
{
	struct rq_cmd c;
	redisReply   *r;
	int	      rc = -1;

	r = redisCommand(ctx, "FCALL_RO comfyq_version 0");
	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    atoi(r->str) > atoi(RQ_LIB_VERSION)) {
		snprintf(err, errlen,
		    "Redis holds functions library version %s, newer than this program's %s: upgrade this program",
		    r->str, RQ_LIB_VERSION);
		freeReplyObject(r);
		return (-1);
	}
	freeReplyObject(r);
	rq_cmd_init(&c, "FUNCTION");
	rq_cmd_add(&c, "LOAD");
	rq_cmd_add(&c, "REPLACE");
	rq_cmd_addb(&c, comfyq_lua_library, comfyq_lua_library_len);
	if (rq_setup_one(ctx, &c, "FUNCTION LOAD (Redis 7 or newer needed)",
		err, errlen) == -1)
		return (-1);
	r = redisCommand(ctx, "FCALL_RO comfyq_version 0");
	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    strcmp(r->str, RQ_LIB_VERSION) == 0)
		rc = 0;
	else
		snprintf(err, errlen, "functions library version check failed");
	freeReplyObject(r);
	return (rc);
}

static void
rq_auth_cmd(struct rq_cmd *c, const struct rq_url *u)
{
	rq_cmd_init(c, "AUTH");
	if (u->user != NULL)
		rq_cmd_add(c, u->user);
	rq_cmd_add(c, u->password);
}

/*
 * Opens a blocking connection: connect (timeout_ms), AUTH, SELECT and, with
 * load set, FUNCTION LOAD REPLACE. Commands time out after timeout_ms too.
 * Over TLS a PING goes first: a TLS 1.3 server refuses a missing client
 * certificate only after the handshake, at the first read.
 */
redisContext *
rq_connect(const char *url, int timeout_ms, int load, char *err, size_t errlen)
{
	struct tls_bridge_link *link = NULL;
	struct rq_url		u;
	struct rq_cmd		c;
	struct timeval		tv;
	redisContext	       *ctx;
	char			why[512] = "out of memory";

	if (rq_url_parse(url, &u, err, errlen) == -1)
		return (NULL);
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (u.path != NULL)
		ctx = redisConnectUnixWithTimeout(u.path, tv);
	else if (u.tls)
		ctx = rq_tls_connect(&u, timeout_ms, &link, why, sizeof why);
	else
		ctx = redisConnectWithTimeout(u.host, u.port, tv);
	if (ctx == NULL || ctx->err) {
		snprintf(err, errlen, "redis %s%s%s:%d: %s",
		    u.path ? u.path : "", u.path ? "" : u.host, "", u.port,
		    ctx ? ctx->errstr : why);
		goto fail;
	}
	redisSetTimeout(ctx, tv);
	if (u.tls) {
		rq_cmd_init(&c, "PING");
		if (rq_setup_one(ctx, &c, "PING", err, errlen) == -1)
			goto fail;
	}
	if (u.password != NULL) {
		rq_auth_cmd(&c, &u);
		if (rq_setup_one(ctx, &c, "AUTH", err, errlen) == -1)
			goto fail;
	}
	if (u.db != 0) {
		rq_cmd_init(&c, "SELECT");
		rq_cmd_addf(&c, "%d", u.db);
		if (rq_setup_one(ctx, &c, "SELECT", err, errlen) == -1)
			goto fail;
	}
	if (load && rq_load_functions(ctx, err, errlen) == -1)
		goto fail;
	tls_bridge_release(link);
	rq_url_free(&u);
	return (ctx);
fail:
	if (link != NULL && tls_bridge_why(link, why, sizeof why))
		snprintf(err, errlen, "redis %s:%d: %s", u.host, u.port, why);
	tls_bridge_release(link);
	if (ctx != NULL)
		redisFree(ctx);
	rq_url_free(&u);
	return (NULL);
}

/* The non-blocking connection. */

enum rq_async_state { RQ_DOWN, RQ_CONNECTING, RQ_SETUP, RQ_UP };

struct rq_async {
	struct event_base      *base;
	struct rq_url		url;
	int			load;
	redisAsyncContext      *ac;
	enum rq_async_state	state;
	int			setup_left;
	int			setup_failed;
	struct event	       *timer;
	struct backoff		backoff;
	rq_state_cb		cb;
	void		       *arg;
	int			freeing;
	struct tls_bridge_link *link; /* rediss://: this connection's */
};

#define RQ_CONNECT_TIMEOUT_MS 5000

static void rq_async_connect(struct rq_async *);

static void
rq_async_set_state(struct rq_async *ra, enum rq_async_state to)
{
	int was_up = ra->state == RQ_UP;

	ra->state = to;
	if (to == RQ_UP) {
		backoff_reset(&ra->backoff);
		evtimer_del(ra->timer);
		if (ra->cb != NULL)
			ra->cb(ra, 1, ra->arg);
	} else if (to == RQ_DOWN) {
		if (!ra->freeing)
			timer_add_ms(ra->timer, backoff_next(&ra->backoff));
		if (was_up && ra->cb != NULL && !ra->freeing)
			ra->cb(ra, 0, ra->arg);
	}
}

static void
rq_async_on_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct rq_async *ra = arg;

	(void)fd;
	(void)ev;
	switch (ra->state) {
	case RQ_DOWN:
		rq_async_connect(ra);
		break;
	case RQ_CONNECTING:
		/* Not connected in time: no disconnect callback will come. */
		log_warnx("redis: connect timed out; retrying");
		redisAsyncFree(ra->ac);
		ra->ac = NULL;
		rq_async_set_state(ra, RQ_DOWN);
		break;
	case RQ_SETUP:
		log_warnx("redis: setup timed out; reconnecting");
		redisAsyncDisconnect(ra->ac);
		break;
	case RQ_UP:
		break;
	}
}

/* One setup reply has come: after the last, up or (a failure) down. */
static void
rq_async_setup_step(struct rq_async *ra, redisAsyncContext *ac)
{
	if (--ra->setup_left > 0)
		return;
	if (ra->setup_failed) {
		redisAsyncDisconnect(ac);
		return;
	}
	rq_async_set_state(ra, RQ_UP);
}

static void
rq_async_on_setup(redisAsyncContext *ac, void *r, void *priv)
{
	struct rq_async *ra = ac->data;
	redisReply	*reply = r;

	(void)priv;
	if (reply == NULL || ra == NULL)
		return; /* disconnecting; on_disconnect handles it */
	if (reply->type == REDIS_REPLY_ERROR) {
		log_warnx("redis: setup failed: %s", reply->str);
		ra->setup_failed = 1;
	}
	rq_async_setup_step(ra, ac);
}

static void
rq_async_send_setup(struct rq_async *ra, struct rq_cmd *c)
{
	ra->setup_left++;
	redisAsyncCommandArgv(ra->ac, rq_async_on_setup, NULL, c->argc,
	    (const char **)c->argv, c->lens);
	rq_cmd_free(c);
}

/*
 * The loaded library's version, asked before loading ours: a newer one is
 * left in place and the setup fails (as rq_load_functions does); none, or
 * an older one, is replaced.
 */
static void
rq_async_on_version(redisAsyncContext *ac, void *r, void *priv)
{
	struct rq_async *ra = ac->data;
	redisReply	*reply = r;
	struct rq_cmd	 c;

	(void)priv;
	if (reply == NULL || ra == NULL)
		return;
	if (reply->type == REDIS_REPLY_STRING &&
	    atoi(reply->str) > atoi(RQ_LIB_VERSION)) {
		log_warnx(
		    "redis: Redis holds functions library version %s, newer than this program's %s: upgrade this program",
		    reply->str, RQ_LIB_VERSION);
		ra->setup_failed = 1;
	} else {
		rq_cmd_init(&c, "FUNCTION");
		rq_cmd_add(&c, "LOAD");
		rq_cmd_add(&c, "REPLACE");
		rq_cmd_addb(&c, comfyq_lua_library, comfyq_lua_library_len);
		rq_async_send_setup(ra, &c);
	}
	rq_async_setup_step(ra, ac);
}

static void
rq_async_on_connect(const redisAsyncContext *cac, int status)
{
	struct rq_async *ra = cac->data;
	struct rq_cmd	 c;

	if (status != REDIS_OK) {
		log_warnx("redis: connect failed: %s; retrying", cac->errstr);
		ra->ac = NULL; /* hiredis frees it after this callback */
		evtimer_del(ra->timer);
		rq_async_set_state(ra, RQ_DOWN);
		return;
	}
	ra->state = RQ_SETUP;
	ra->setup_left = 0;
	ra->setup_failed = 0;
	if (ra->url.password != NULL) {
		rq_auth_cmd(&c, &ra->url);
		rq_async_send_setup(ra, &c);
	}
	if (ra->url.db != 0) {
		rq_cmd_init(&c, "SELECT");
		rq_cmd_addf(&c, "%d", ra->url.db);
		rq_async_send_setup(ra, &c);
	}
	if (ra->load) {
		ra->setup_left++;
		redisAsyncCommand(ra->ac, rq_async_on_version, NULL,
		    "FCALL_RO comfyq_version 0");
	}
	rq_cmd_init(&c, "PING");
	rq_async_send_setup(ra, &c);
}

static void
rq_async_on_disconnect(const redisAsyncContext *cac, int status)
{
	struct rq_async *ra = cac->data;
	char		 why[512];

	if (ra == NULL)
		return;
	ra->ac = NULL; /* hiredis frees it after this callback */
	if (!ra->freeing && ra->link != NULL &&
	    tls_bridge_why(ra->link, why, sizeof why))
		log_warnx("redis %s:%d: %s%s%s", ra->url.host, ra->url.port,
		    ra->state == RQ_UP ? "disconnected: " : "", why,
		    ra->state == RQ_UP ? "" : "; retrying");
	else if (!ra->freeing)
		log_warnx("redis: disconnected%s%s",
		    status == REDIS_OK ? "" : ": ",
		    status == REDIS_OK ? "" : cac->errstr);
	evtimer_del(ra->timer);
	rq_async_set_state(ra, RQ_DOWN);
}

static void
rq_async_connect(struct rq_async *ra)
{
	redisAsyncContext *ac;
	char		   why[512] = "out of memory";

	tls_bridge_release(ra->link);
	ra->link = NULL;
	if (ra->url.path != NULL)
		ac = redisAsyncConnectUnix(ra->url.path);
	else if (ra->url.tls)
		ac = rq_tls_connect_async(&ra->url, RQ_CONNECT_TIMEOUT_MS,
		    &ra->link, why, sizeof why);
	else
		ac = redisAsyncConnect(ra->url.host, ra->url.port);
	if (ac == NULL || ac->err) {
		log_warnx("redis: connect failed: %s; retrying",
		    ac ? ac->errstr : why);
		if (ac != NULL)
			redisAsyncFree(ac);
		rq_async_set_state(ra, RQ_DOWN);
		return;
	}
	ac->data = ra;
	ra->ac = ac;
	ra->state = RQ_CONNECTING;
	redisLibeventAttach(ac, ra->base);
	redisAsyncSetConnectCallback(ac, rq_async_on_connect);
	redisAsyncSetDisconnectCallback(ac, rq_async_on_disconnect);
	timer_add_ms(ra->timer, RQ_CONNECT_TIMEOUT_MS);
}

/*
 * Starts a non-blocking connection to url on base. cb is told when the
 * connection comes up (authenticated, library loaded) and when it goes down.
 */
struct rq_async *
rq_async_new(struct event_base *base, const char *url, int load, rq_state_cb cb,
    void *arg, char *err, size_t errlen)
{
	struct rq_async *ra;

	ra = xcalloc(1, sizeof *ra);
	if (rq_url_parse(url, &ra->url, err, errlen) == -1) {
		free(ra);
		return (NULL);
	}
	ra->base = base;
	ra->load = load;
	ra->cb = cb;
	ra->arg = arg;
	ra->timer = evtimer_new(base, rq_async_on_timer, ra);
	backoff_init(&ra->backoff, RQ_BACKOFF_BASE_MS, RQ_BACKOFF_MAX_MS);
	rq_async_connect(ra);
	return (ra);
}

int
rq_async_up(const struct rq_async *ra)
{
	return (ra->state == RQ_UP);
}

/*
 * Sends a command; fn gets the reply, or NULL if the connection is lost
 * first. Returns -1 (nothing sent) when the connection is not up.
 */
int
rq_async_call(struct rq_async *ra, redisCallbackFn *fn, void *priv,
    const struct rq_cmd *c)
{
	if (ra->state != RQ_UP || ra->ac == NULL)
		return (-1);
	if (redisAsyncCommandArgv(ra->ac, fn, priv, c->argc,
		(const char **)c->argv, c->lens) != REDIS_OK)
		return (-1);
	return (0);
}

/* Closes the connection; pending callbacks get a NULL reply. */
void
rq_async_free(struct rq_async *ra)
{
	if (ra == NULL)
		return;
	ra->freeing = 1;
	if (ra->ac != NULL) {
		redisAsyncContext *ac = ra->ac;

		if (ra->state == RQ_CONNECTING) {
			ac->data = NULL;
			ra->ac = NULL;
		}
		redisAsyncFree(ac);
	}
	event_free(ra->timer);
	tls_bridge_release(ra->link);
	rq_url_free(&ra->url);
	free(ra);
}
