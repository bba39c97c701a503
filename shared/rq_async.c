/*
 * The non-blocking Redis connection (see rq.h).
 *
 * A small state machine: DOWN -> RESOLVING (redis+sentinel:// only: the
 * sentinels are asked where the master is, rq_sentinel.h) -> CONNECTING
 * (TCP/unix connect, bounded by a timer) -> SETUP (AUTH, SELECT, the
 * probe that this is the right server, and the loaded library's version
 * pipelined; FUNCTION LOAD REPLACE unless Redis holds a newer library)
 * -> UP. Any error or disconnect goes back to DOWN and schedules a
 * reconnect with backoff. Callers are told of UP and DOWN through one
 * callback; a call made while not UP is refused (-1) rather than queued,
 * so nothing is sent twice. hiredis frees a context right after its
 * disconnect callback, so ra->ac is cleared there and never touched again.
 *
 * The probe (rq_int.h) is ROLE behind sentinels, so a stale answer never
 * sends writes to a replica, and EXISTS <key> on a cluster, whose MOVED
 * names the node to connect to instead, at once. Once UP, a sentinel or
 * cluster connection reads every reply first (struct rq_call wraps the
 * caller's callback): one that says the command did not run here
 * (rq_route.h) closes the connection and reaches the caller as NULL, the
 * reply of a lost connection, which every caller already handles by
 * retrying the way its call allows (docs/design.md §3); the connection
 * comes up again on the node a MOVED named, on the master the sentinels
 * name now, or after a pause (a slot being migrated). Subscriptions are
 * not wrapped: hiredis calls their callback once per message.
 *
 * A rediss:// URL connects through the TLS bridge (rq_tls.h) and is
 * otherwise the same; the bridge's reason for a drop (a certificate that
 * did not verify, an alert from the server) replaces hiredis's "Server
 * closed the connection" in the logs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>

#include "backoff.h"
#include "log.h"
#include "rq.h"
#include "rq_int.h"
#include "rq_route.h"
#include "rq_sentinel.h"
#include "rq_tls.h"
#include "tls_bridge.h"
#include "util.h"
#include "xmalloc.h"

#define RQ_BACKOFF_BASE_MS    100
#define RQ_BACKOFF_MAX_MS     5000
#define RQ_CONNECT_TIMEOUT_MS 5000
#define RQ_MOVES_AT_ONCE      3 /* MOVEDs followed without a pause */

enum rq_async_state { RQ_DOWN, RQ_RESOLVING, RQ_CONNECTING, RQ_SETUP, RQ_UP };

struct rq_async {
	struct event_base	 *base;
	struct rq_url		  url; /* host/port: the server now */
	char			 *key; /* to route by, or NULL */
	int			  load;
	redisAsyncContext	 *ac;
	enum rq_async_state	  state;
	int			  setup_left;
	int			  setup_failed;
	int			  rerouting; /* a reply said: not here */
	int			  moved;     /* reconnect at once (MOVED) */
	int			  moves;     /* MOVEDs since the last UP */
	int			  seed;	     /* cluster: the next seed */
	struct rq_sentinel_query *query;
	struct event		 *timer;
	struct backoff		  backoff;
	rq_state_cb		  cb;
	void			 *arg;
	int			  freeing;
	struct tls_bridge_link	 *link; /* rediss://: this connection's */
};

/* A wrapped call (see the top). */
struct rq_call {
	redisCallbackFn *fn;
	void		*priv;
};

static void rq_async_connect(struct rq_async *);

static const char *
rq_async_where(const struct rq_async *ra, char *buf, size_t len)
{
	return (rq_where(&ra->url, buf, len));
}

static void
rq_async_set_state(struct rq_async *ra, enum rq_async_state to)
{
	int	  was_up = ra->state == RQ_UP;
	long long delay;

	ra->state = to;
	if (to == RQ_UP) {
		backoff_reset(&ra->backoff);
		ra->moves = 0;
		evtimer_del(ra->timer);
		if (ra->cb != NULL)
			ra->cb(ra, 1, ra->arg);
	} else if (to == RQ_DOWN) {
		delay = backoff_next(&ra->backoff);
		if (ra->moved && ra->moves++ < RQ_MOVES_AT_ONCE)
			delay = 0;
		ra->moved = 0;
		if (!ra->freeing)
			timer_add_ms(ra->timer, delay);
		if (was_up && ra->cb != NULL && !ra->freeing)
			ra->cb(ra, 0, ra->arg);
	}
}

/* The server could not be reached: a cluster tries its next seed. */
static void
rq_async_unreachable(struct rq_async *ra)
{
	const struct rq_node *n;

	if (ra->url.kind != RQ_URL_CLUSTER)
		return;
	n = &ra->url.nodes[ra->seed++ % ra->url.nnodes];
	rq_url_set_node(&ra->url, n->host, n->port);
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
		rq_async_unreachable(ra);
		rq_async_set_state(ra, RQ_DOWN);
		break;
	case RQ_SETUP:
		log_warnx("redis: setup timed out; reconnecting");
		redisAsyncDisconnect(ra->ac);
		break;
	case RQ_RESOLVING: /* the query has timers of its own */
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
rq_async_send_setup(struct rq_async *ra, struct rq_cmd *c, redisCallbackFn *fn)
{
	ra->setup_left++;
	redisAsyncCommandArgv(
	    ra->ac, fn, NULL, c->argc, (const char **)c->argv, c->lens);
	rq_cmd_free(c);
}

static void rq_async_send_rest(struct rq_async *);

/*
 * The probe's reply: the rest of the setup here, or off to another server
 * (see the top); nothing is loaded on a server that is not the one.
 */
static void
rq_async_on_probe(redisAsyncContext *ac, void *r, void *priv)
{
	struct rq_async *ra = ac->data;
	enum rq_route	 how;
	char		 err[512];

	(void)priv;
	if (r == NULL || ra == NULL)
		return;
	how = rq_probe_reply(r, &ra->url, err, sizeof err);
	if (how == RQ_ROUTE_MOVED) {
		log_notice("redis: %s: moving there", err);
		ra->moved = 1;
	} else if (how != RQ_ROUTE_NONE)
		log_warnx("redis: %s; trying again", err);
	if (how != RQ_ROUTE_NONE)
		ra->setup_failed = 1;
	else if (!ra->setup_failed)
		rq_async_send_rest(ra);
	rq_async_setup_step(ra, ac);
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
		rq_async_send_setup(ra, &c, rq_async_on_setup);
	}
	rq_async_setup_step(ra, ac);
}

static void
rq_async_on_connect(const redisAsyncContext *cac, int status)
{
	struct rq_async *ra = cac->data;
	struct rq_cmd	 c;

	if (ra == NULL)
		return;
	if (status != REDIS_OK) {
		log_warnx("redis: connect failed: %s; retrying", cac->errstr);
		ra->ac = NULL; /* hiredis frees it after this callback */
		evtimer_del(ra->timer);
		rq_async_unreachable(ra);
		rq_async_set_state(ra, RQ_DOWN);
		return;
	}
	ra->state = RQ_SETUP;
	ra->setup_left = 0;
	ra->setup_failed = 0;
	ra->rerouting = 0;
	if (ra->url.password != NULL) {
		rq_auth_cmd(&c, &ra->url);
		rq_async_send_setup(ra, &c, rq_async_on_setup);
	}
	if (ra->url.db != 0) {
		rq_cmd_init(&c, "SELECT");
		rq_cmd_addf(&c, "%d", ra->url.db);
		rq_async_send_setup(ra, &c, rq_async_on_setup);
	}
	if (rq_probe_cmd(&c, &ra->url, ra->key))
		rq_async_send_setup(ra, &c, rq_async_on_probe);
	else
		rq_async_send_rest(ra);
}

/* The setup after the probe: the library's version (and load), a PING. */
static void
rq_async_send_rest(struct rq_async *ra)
{
	struct rq_cmd c;

	if (ra->load) {
		ra->setup_left++;
		redisAsyncCommand(ra->ac, rq_async_on_version, NULL,
		    "FCALL_RO comfyq_version 0");
	}
	rq_cmd_init(&c, "PING");
	rq_async_send_setup(ra, &c, rq_async_on_setup);
}

static void
rq_async_on_disconnect(const redisAsyncContext *cac, int status)
{
	struct rq_async *ra = cac->data;
	char		 why[512], where[300];

	if (ra == NULL)
		return;
	ra->ac = NULL; /* hiredis frees it after this callback */
	if (ra->rerouting || (ra->state == RQ_SETUP && ra->setup_failed))
		; /* said already, with the reply that made it */
	else if (ra->link != NULL && tls_bridge_why(ra->link, why, sizeof why))
		log_warnx("redis %s: %s%s%s",
		    rq_async_where(ra, where, sizeof where),
		    ra->state == RQ_UP ? "disconnected: " : "", why,
		    ra->state == RQ_UP ? "" : "; retrying");
	else
		log_warnx("redis: disconnected%s%s",
		    status == REDIS_OK ? "" : ": ",
		    status == REDIS_OK ? "" : cac->errstr);
	evtimer_del(ra->timer);
	rq_async_set_state(ra, RQ_DOWN);
}

/* Connects to the server ra->url names now. */
static void
rq_async_dial(struct rq_async *ra)
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
		rq_async_unreachable(ra);
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

/* The sentinels' answer: connect there, or down for another try. */
static void
rq_async_on_master(void *arg, const char *host, int port, const char *err)
{
	struct rq_async *ra = arg;
	char		 where[300];

	rq_sentinel_query_free(ra->query);
	ra->query = NULL;
	if (host == NULL) {
		log_warnx("redis: %s; retrying", err);
		rq_async_set_state(ra, RQ_DOWN);
		return;
	}
	if (ra->url.host == NULL || strcmp(ra->url.host, host) != 0 ||
	    ra->url.port != port) {
		rq_url_set_node(&ra->url, host, port);
		log_notice("redis: the sentinels name %s as master %s",
		    rq_async_where(ra, where, sizeof where), ra->url.master);
	}
	rq_async_dial(ra);
}

static void
rq_async_connect(struct rq_async *ra)
{
	if (ra->url.kind == RQ_URL_SENTINEL) {
		ra->state = RQ_RESOLVING;
		ra->query = rq_sentinel_query_start(ra->base, &ra->url,
		    RQ_CONNECT_TIMEOUT_MS, rq_async_on_master, ra);
		return;
	}
	if (ra->url.kind == RQ_URL_CLUSTER && ra->url.host == NULL)
		rq_async_unreachable(ra); /* the first seed */
	rq_async_dial(ra);
}

/*
 * Starts a non-blocking connection to url on base, for key (see rq.h).
 * cb is told when the connection comes up (authenticated, library loaded)
 * and when it goes down.
 */
struct rq_async *
rq_async_new(struct event_base *base, const char *url, const char *key,
    int load, rq_state_cb cb, void *arg, char *err, size_t errlen)
{
	struct rq_async *ra;

	ra = xcalloc(1, sizeof *ra);
	if (rq_url_parse(url, &ra->url, err, errlen) == -1) {
		free(ra);
		return (NULL);
	}
	ra->key = key != NULL ? xstrdup(key) : NULL;
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
	return (ra->state == RQ_UP && !ra->rerouting);
}

/*
 * A reply said the command did not run here (how): the connection closes,
 * to come up again where rq_probe_reply or the sentinels say. Once per
 * connection; the replies still due on it come to their callers as they
 * are (a refusal as NULL).
 */
static void
rq_async_reroute(struct rq_async *ra, const redisReply *r, enum rq_route how)
{
	char host[256], where[300];
	int  port;

	if (ra->rerouting || ra->state != RQ_UP || ra->ac == NULL)
		return;
	ra->rerouting = 1;
	rq_async_where(ra, where, sizeof where);
	if (how == RQ_ROUTE_MOVED &&
	    rq_route_target(r->str, host, sizeof host, &port) == 0) {
		if (*host != '\0')
			rq_url_set_node(&ra->url, host, port);
		else
			ra->url.port = port;
		ra->moved = 1;
		log_notice("redis %s: %s: moving there", where, r->str);
	} else if (how == RQ_ROUTE_ROLE)
		log_warnx(
		    "redis %s: %s; asking the sentinels again", where, r->str);
	else
		log_warnx(
		    "redis %s: %s; reconnecting after a pause", where, r->str);
	redisAsyncDisconnect(ra->ac);
}

static void
rq_async_on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct rq_call	*call = priv;
	struct rq_async *ra = ac->data;
	enum rq_route	 how = rq_route_of(r);

	if (how != RQ_ROUTE_NONE && ra != NULL && !ra->freeing) {
		rq_async_reroute(ra, r, how);
		r = NULL;
	}
	if (call->fn != NULL)
		call->fn(ac, r, call->priv);
	free(call);
}

/* Commands whose callback hiredis calls more than once. */
static int
rq_async_is_subscribe(const struct rq_cmd *c)
{
	return (strcasecmp(c->argv[0], "SUBSCRIBE") == 0 ||
	    strcasecmp(c->argv[0], "PSUBSCRIBE") == 0 ||
	    strcasecmp(c->argv[0], "UNSUBSCRIBE") == 0 ||
	    strcasecmp(c->argv[0], "PUNSUBSCRIBE") == 0 ||
	    strcasecmp(c->argv[0], "MONITOR") == 0);
}

/*
 * Sends a command; fn gets the reply, or NULL if the connection is lost
 * first (or, behind sentinels or on a cluster, the reply said the command
 * did not run on this server). Returns -1 (nothing sent) when the
 * connection is not up.
 */
int
rq_async_call(struct rq_async *ra, redisCallbackFn *fn, void *priv,
    const struct rq_cmd *c)
{
	struct rq_call *call;

	if (!rq_async_up(ra) || ra->ac == NULL)
		return (-1);
	if (ra->url.kind == RQ_URL_SERVER || rq_async_is_subscribe(c))
		return (redisAsyncCommandArgv(ra->ac, fn, priv, c->argc,
			    (const char **)c->argv, c->lens) == REDIS_OK
			? 0
			: -1);
	call = xmalloc(sizeof *call);
	call->fn = fn;
	call->priv = priv;
	if (redisAsyncCommandArgv(ra->ac, rq_async_on_reply, call, c->argc,
		(const char **)c->argv, c->lens) != REDIS_OK) {
		free(call);
		return (-1);
	}
	return (0);
}

/* Closes the connection; pending callbacks get a NULL reply. */
void
rq_async_free(struct rq_async *ra)
{
	if (ra == NULL)
		return;
	ra->freeing = 1;
	rq_sentinel_query_free(ra->query);
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
	free(ra->key);
	free(ra);
}
