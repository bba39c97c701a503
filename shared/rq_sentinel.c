/*
 * Redis Sentinel discovery (see rq_sentinel.h). Each sentinel is asked
 * once, in the URL's order; the first address given wins. What each one
 * said when it did not answer is kept, so that the error of a failed
 * discovery names every sentinel and its reason.
 *
 * The query on a loop asks one sentinel at a time: AUTH (with a
 * sentinel-password) and the question pipelined on a fresh connection,
 * and a timer for the whole attempt. Its connection is cut loose
 * (ac->data = NULL, then freed; hiredis defers that inside one of its
 * callbacks) before the next attempt or the answer, and the callback
 * comes last, so the caller may free the query in it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "rq_route.h"
#include "rq_sentinel.h"
#include "rq_tls.h"
#include "rq_url.h"
#include "tls_bridge.h"
#include "util.h"
#include "xmalloc.h"

#define RQ_SENTINEL_HOST_MAX 256

/* The sentinel nodes[i] as a one-server URL (borrowing its host). */
static struct rq_url
rq_sentinel_url(const struct rq_url *u, int i)
{
	struct rq_url s;

	memset(&s, 0, sizeof s);
	s.host = u->nodes[i].host;
	s.port = u->nodes[i].port;
	s.tls = u->tls;
	return (s);
}

/* Appends "host:port: why" to the reasons in err. */
static void
rq_sentinel_note(
    char *err, size_t errlen, const struct rq_node *n, const char *why)
{
	size_t len = strlen(err);

	if (len + 2 < errlen)
		snprintf(err + len, errlen - len, "%s%s:%d: %s",
		    len > 0 ? "; " : "", n->host, n->port, why);
}

/* The AUTH vector for the sentinels' credentials; its argc. */
static int
rq_sentinel_auth_argv(const struct rq_url *u, const char **argv)
{
	int n = 0;

	argv[n++] = "AUTH";
	if (u->sentinel_user != NULL)
		argv[n++] = u->sentinel_user;
	argv[n++] = u->sentinel_password;
	return (n);
}

static const char *rq_sentinel_ask[] = { "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
	NULL };

/* Asks one sentinel, blocking: 0 with host and port, or -1 with why. */
static int
rq_sentinel_ask_one(const struct rq_url *u, int i, int timeout_ms, char *host,
    size_t hostlen, int *port, char *why, size_t whylen)
{
	struct tls_bridge_link *link = NULL;
	struct rq_url		s = rq_sentinel_url(u, i);
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	redisContext  *c;
	redisReply    *r = NULL;
	const char    *argv[3];
	int	       argc, rc = -1;

	snprintf(why, whylen, "out of memory");
	if (u->tls)
		c = rq_tls_connect(&s, timeout_ms, &link, why, whylen);
	else
		c = redisConnectWithTimeout(s.host, s.port, tv);
	if (c == NULL || c->err) {
		if (c != NULL)
			snprintf(why, whylen, "%s", c->errstr);
		goto out;
	}
	redisSetTimeout(c, tv);
	if (u->sentinel_password != NULL) {
		argc = rq_sentinel_auth_argv(u, argv);
		r = redisCommandArgv(c, argc, argv, NULL);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			snprintf(why, whylen, "AUTH: %s",
			    r != NULL ? r->str : c->errstr);
			goto out;
		}
		freeReplyObject(r);
	}
	argv[0] = rq_sentinel_ask[0];
	argv[1] = rq_sentinel_ask[1];
	argv[2] = u->master;
	if ((r = redisCommandArgv(c, 3, argv, NULL)) == NULL)
		snprintf(why, whylen, "%s", c->errstr);
	else
		rc =
		    rq_route_sentinel_addr(r, host, hostlen, port, why, whylen);
out:
	if (rc == -1 && link != NULL)
		tls_bridge_why(link, why, whylen);
	freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	tls_bridge_release(link);
	return (rc);
}

/*
 * Asks the sentinels of u, in turn, where u->master is; on an answer
 * points u at it (rq_url_set_node) and returns 0, else -1 with every
 * sentinel's reason in err.
 */
int
rq_sentinel_master(struct rq_url *u, int timeout_ms, char *err, size_t errlen)
{
	char host[RQ_SENTINEL_HOST_MAX], why[256], all[1024] = "";
	int  i, port;

	for (i = 0; i < u->nnodes; i++) {
		if (rq_sentinel_ask_one(u, i, timeout_ms, host, sizeof host,
			&port, why, sizeof why) == 0) {
			rq_url_set_node(u, host, port);
			return (0);
		}
		rq_sentinel_note(all, sizeof all, &u->nodes[i], why);
	}
	snprintf(
	    err, errlen, "no sentinel named master '%s': %s", u->master, all);
	return (-1);
}

/* The query on a loop. */

struct rq_sentinel_query {
	struct event_base      *base;
	const struct rq_url    *u;
	int			timeout_ms;
	int			idx; /* the sentinel asked now */
	redisAsyncContext      *ac;
	struct tls_bridge_link *link;
	struct event	       *timer;
	char			autherr[256];
	char			err[1024];
	int			started;
	rq_sentinel_cb		cb;
	void		       *arg;
};

static void rq_sentinel_try(struct rq_sentinel_query *);

/* Lets go of the attempt's connection; its callbacks see no query. */
static void
rq_sentinel_detach(struct rq_sentinel_query *q)
{
	evtimer_del(q->timer);
	if (q->ac != NULL) {
		q->ac->data = NULL;
		redisAsyncFree(q->ac);
		q->ac = NULL;
	}
	tls_bridge_release(q->link);
	q->link = NULL;
}

/*
 * This sentinel did not answer (why, or the TLS bridge's reason, which
 * says more than hiredis's "Server closed the connection"): the next one.
 */
static void
rq_sentinel_next(struct rq_sentinel_query *q, const char *why)
{
	char tls[256];

	if (q->link != NULL && tls_bridge_why(q->link, tls, sizeof tls))
		why = tls;
	rq_sentinel_note(q->err, sizeof q->err, &q->u->nodes[q->idx], why);
	rq_sentinel_detach(q);
	q->idx++;
	rq_sentinel_try(q);
}

static void
rq_sentinel_on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rq_sentinel_query *q = ac->data;
	redisReply		 *r = reply;

	(void)priv;
	if (q != NULL && r != NULL && r->type == REDIS_REPLY_ERROR)
		snprintf(q->autherr, sizeof q->autherr, "AUTH: %s", r->str);
}

static void
rq_sentinel_on_addr(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rq_sentinel_query *q = ac->data;
	char			  host[RQ_SENTINEL_HOST_MAX], why[256];
	int			  port;

	(void)priv;
	if (q == NULL || reply == NULL)
		return; /* cut loose, or the disconnect callback says why */
	if (rq_route_sentinel_addr(
		reply, host, sizeof host, &port, why, sizeof why) == -1) {
		rq_sentinel_next(q, q->autherr[0] != '\0' ? q->autherr : why);
		return;
	}
	rq_sentinel_detach(q);
	q->cb(q->arg, host, port, NULL); /* last: it may free q */
}

static void
rq_sentinel_on_connect(const redisAsyncContext *cac, int status)
{
	struct rq_sentinel_query *q = cac->data;

	if (q == NULL || status == REDIS_OK)
		return;
	q->ac = NULL; /* hiredis frees it after this callback */
	rq_sentinel_next(q, cac->errstr);
}

static void
rq_sentinel_on_disconnect(const redisAsyncContext *cac, int status)
{
	struct rq_sentinel_query *q = cac->data;

	(void)status;
	if (q == NULL)
		return;
	q->ac = NULL;
	rq_sentinel_next(
	    q, cac->errstr[0] != '\0' ? cac->errstr : "connection closed");
}

/* The first attempt (started from the loop, so that the callback never
 * comes before rq_sentinel_query_start returns), then each timeout. */
static void
rq_sentinel_on_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct rq_sentinel_query *q = arg;

	(void)fd;
	(void)ev;
	if (!q->started) {
		q->started = 1;
		rq_sentinel_try(q);
	} else
		rq_sentinel_next(q, "timed out");
}

/* Asks sentinel q->idx, or gives up after the last. */
static void
rq_sentinel_try(struct rq_sentinel_query *q)
{
	struct rq_url	   s;
	redisAsyncContext *ac = NULL;
	const char	  *argv[3];
	char		   why[256], err[1200];
	int		   argc;

	for (; q->idx < q->u->nnodes; q->idx++) {
		s = rq_sentinel_url(q->u, q->idx);
		snprintf(why, sizeof why, "out of memory");
		if (s.tls)
			ac = rq_tls_connect_async(
			    &s, q->timeout_ms, &q->link, why, sizeof why);
		else
			ac = redisAsyncConnect(s.host, s.port);
		if (ac != NULL && ac->err == 0)
			break;
		if (ac != NULL) {
			snprintf(why, sizeof why, "%s", ac->errstr);
			redisAsyncFree(ac);
		}
		tls_bridge_release(q->link);
		q->link = NULL;
		rq_sentinel_note(
		    q->err, sizeof q->err, &q->u->nodes[q->idx], why);
	}
	if (q->idx == q->u->nnodes) {
		snprintf(err, sizeof err, "no sentinel named master '%s': %s",
		    q->u->master, q->err);
		q->cb(q->arg, NULL, 0, err); /* last: it may free q */
		return;
	}
	q->ac = ac;
	q->autherr[0] = '\0';
	ac->data = q;
	redisLibeventAttach(ac, q->base);
	redisAsyncSetConnectCallback(ac, rq_sentinel_on_connect);
	redisAsyncSetDisconnectCallback(ac, rq_sentinel_on_disconnect);
	if (q->u->sentinel_password != NULL) {
		argc = rq_sentinel_auth_argv(q->u, argv);
		redisAsyncCommandArgv(
		    ac, rq_sentinel_on_auth, NULL, argc, argv, NULL);
	}
	argv[0] = rq_sentinel_ask[0];
	argv[1] = rq_sentinel_ask[1];
	argv[2] = q->u->master;
	redisAsyncCommandArgv(ac, rq_sentinel_on_addr, NULL, 3, argv, NULL);
	timer_add_ms(q->timer, q->timeout_ms);
}

/*
 * Starts asking the sentinels of u (which must outlive the query) on
 * base. cb is called once, with the master's address or why none came,
 * unless the query is freed first.
 */
struct rq_sentinel_query *
rq_sentinel_query_start(struct event_base *base, const struct rq_url *u,
    int timeout_ms, rq_sentinel_cb cb, void *arg)
{
	struct rq_sentinel_query *q = xcalloc(1, sizeof *q);

	q->base = base;
	q->u = u;
	q->timeout_ms = timeout_ms;
	q->cb = cb;
	q->arg = arg;
	q->timer = evtimer_new(base, rq_sentinel_on_timer, q);
	timer_add_ms(q->timer, 0);
	return (q);
}

void
rq_sentinel_query_free(struct rq_sentinel_query *q)
{
	if (q == NULL)
		return;
	rq_sentinel_detach(q);
	event_free(q->timer);
	free(q);
}
