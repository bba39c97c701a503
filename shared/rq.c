/*
 * Redis commands, the functions library and the blocking connection (see
 * rq.h; the non-blocking one is rq_async.c).
 *
 * rq_connect finds its server first: for a redis+sentinel:// URL the
 * master the sentinels name (rq_sentinel.h), checked with ROLE; for a
 * redis+cluster:// URL a seed, then, with a key to route by, the node
 * that holds its slot, asked with EXISTS and followed through MOVED. A
 * stale answer (a replica, a slot being migrated) is asked again after a
 * pause, a few times, before it is an error.
 *
 * A rediss:// URL connects through the TLS bridge (rq_tls.h) and is
 * otherwise the same; the bridge's reason for a drop (a certificate that
 * did not verify, an alert from the server) replaces hiredis's "Server
 * closed the connection" in the errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "log.h"
#include "rq.h"
#include "rq_int.h"
#include "rq_route.h"
#include "rq_sentinel.h"
#include "rq_tls.h"
#include "tls_bridge.h"
#include "util.h"
#include "xmalloc.h"

#define RQ_ROUTE_MOVES 5 /* MOVEDs followed in a row */

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

/*
 * Runs one setup command; 0 when it did not fail. A refusal that says the
 * server is not the right one (rq_route.h) is told in *how (may be NULL).
 */
static int
rq_setup_one(redisContext *ctx, struct rq_cmd *c, const char *what, char *err,
    size_t errlen, enum rq_route *how)
{
	redisReply *r;
	int	    rc = 0;

	r = rq_run(ctx, c);
	if (r == NULL) {
		snprintf(err, errlen, "%s: %s", what, ctx->errstr);
		rc = -1;
	} else if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errlen, "%s: %s%s", what, r->str,
		    strncmp(r->str, "ERR unknown command", 19) == 0
			? " (Redis 7 or newer needed)"
			: "");
		if (how != NULL)
			*how = rq_route_of(r);
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
static int
rq_load(redisContext *ctx, char *err, size_t errlen, enum rq_route *how)
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
	if (rq_setup_one(ctx, &c, "FUNCTION LOAD", err, errlen, how) == -1)
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

int
rq_load_functions(redisContext *ctx, char *err, size_t errlen)
{
	return (rq_load(ctx, err, errlen, NULL));
}

void
rq_auth_cmd(struct rq_cmd *c, const struct rq_url *u)
{
	rq_cmd_init(c, "AUTH");
	if (u->user != NULL)
		rq_cmd_add(c, u->user);
	rq_cmd_add(c, u->password);
}

/* "host:port" or the socket path of u, for messages. */
const char *
rq_where(const struct rq_url *u, char *buf, size_t len)
{
	if (u->path != NULL)
		snprintf(buf, len, "%s", u->path);
	else if (u->host == NULL)
		snprintf(buf, len, "(no server yet)");
	else if (strchr(u->host, ':') != NULL)
		snprintf(buf, len, "[%s]:%d", u->host, u->port);
	else
		snprintf(buf, len, "%s:%d", u->host, u->port);
	return (buf);
}

/* The command that tells whether this is the server for key: EXISTS key
 * on a cluster node (a MOVED or ASK otherwise), ROLE where sentinels
 * named it; 0 when there is nothing to ask. */
int
rq_probe_cmd(struct rq_cmd *c, const struct rq_url *u, const char *key)
{
	if (u->kind == RQ_URL_SENTINEL) {
		rq_cmd_init(c, "ROLE");
		return (1);
	}
	if (u->kind == RQ_URL_CLUSTER && key != NULL) {
		rq_cmd_init(c, "EXISTS");
		rq_cmd_add(c, key);
		return (1);
	}
	return (0);
}

/*
 * Reads the reply to rq_probe_cmd: RQ_ROUTE_NONE when this is the
 * server; RQ_ROUTE_MOVED with u pointed at the node named; RQ_ROUTE_WAIT
 * or RQ_ROUTE_ROLE (a replica, a migrating slot) to ask again later. err
 * says why it is not the server.
 */
enum rq_route
rq_probe_reply(const redisReply *r, struct rq_url *u, char *err, size_t errlen)
{
	enum rq_route how;
	char	      host[256], where[300];
	int	      port;

	if (u->kind == RQ_URL_SENTINEL) {
		if (rq_route_is_master(r, host, sizeof host) == 0)
			return (RQ_ROUTE_NONE);
		snprintf(err, errlen,
		    "redis %s: %s (a sentinel's answer was out of date)",
		    rq_where(u, where, sizeof where), host);
		return (RQ_ROUTE_ROLE);
	}
	if ((how = rq_route_of(r)) == RQ_ROUTE_NONE)
		return (RQ_ROUTE_NONE);
	snprintf(err, errlen, "%s", r->str);
	if (how == RQ_ROUTE_MOVED) {
		if (rq_route_target(r->str, host, sizeof host, &port) == -1)
			return (RQ_ROUTE_WAIT);
		if (*host == '\0') /* a node that does not know its address */
			snprintf(host, sizeof host, "%s", u->host);
		snprintf(err, errlen, "%s (was %s)", r->str,
		    rq_where(u, where, sizeof where));
		rq_url_set_node(u, host, port);
	}
	return (how);
}

/* Connects to the server u names now: TCP or unix, TLS, AUTH, SELECT. */
static redisContext *
rq_dial(const struct rq_url *u, int timeout_ms, char *err, size_t errlen)
{
	struct tls_bridge_link *link = NULL;
	struct rq_cmd		c;
	struct timeval		tv;
	redisContext	       *ctx;
	char			why[512] = "out of memory", where[300];

	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (u->path != NULL)
		ctx = redisConnectUnixWithTimeout(u->path, tv);
	else if (u->tls)
		ctx = rq_tls_connect(u, timeout_ms, &link, why, sizeof why);
	else
		ctx = redisConnectWithTimeout(u->host, u->port, tv);
	if (ctx == NULL || ctx->err) {
		snprintf(err, errlen, "redis %s: %s",
		    rq_where(u, where, sizeof where), ctx ? ctx->errstr : why);
		goto fail;
	}
	redisSetTimeout(ctx, tv);
	/* Over TLS a PING goes first: a TLS 1.3 server refuses a missing
	 * client certificate only after the handshake, at the first read. */
	if (u->tls) {
		rq_cmd_init(&c, "PING");
		if (rq_setup_one(ctx, &c, "PING", err, errlen, NULL) == -1)
			goto fail;
	}
	if (u->password != NULL) {
		rq_auth_cmd(&c, u);
		if (rq_setup_one(ctx, &c, "AUTH", err, errlen, NULL) == -1)
			goto fail;
	}
	if (u->db != 0) {
		rq_cmd_init(&c, "SELECT");
		rq_cmd_addf(&c, "%d", u->db);
		if (rq_setup_one(ctx, &c, "SELECT", err, errlen, NULL) == -1)
			goto fail;
	}
	tls_bridge_release(link);
	return (ctx);
fail:
	if (link != NULL && tls_bridge_why(link, why, sizeof why))
		snprintf(err, errlen, "redis %s: %s",
		    rq_where(u, where, sizeof where), why);
	tls_bridge_release(link);
	if (ctx != NULL)
		redisFree(ctx);
	return (NULL);
}

static void
rq_pause_ms(long long ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
		(long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * One try at u's server for key (see the top): the sentinels asked, a
 * connection, the probe, the library. Returns the connection, or NULL
 * with err set and *how RQ_ROUTE_MOVED (u points at the node named: try
 * again at once), RQ_ROUTE_WAIT or RQ_ROUTE_ROLE (a stale answer: again
 * after a pause) or RQ_ROUTE_NONE (a plain failure). A cluster's seeds
 * are tried in turn until one answers.
 */
static redisContext *
rq_route_once(struct rq_url *u, const char *key, int timeout_ms, int load,
    enum rq_route *how, char *err, size_t errlen)
{
	struct rq_cmd c;
	redisContext *ctx;
	redisReply   *r;
	int	      seed;

	*how = RQ_ROUTE_NONE;
	if (u->kind == RQ_URL_SENTINEL &&
	    rq_sentinel_master(u, timeout_ms, err, errlen) == -1)
		return (NULL);
	if (u->kind == RQ_URL_CLUSTER && u->host == NULL)
		rq_url_set_node(u, u->nodes[0].host, u->nodes[0].port);
	/* The node named last, then each seed. */
	for (seed = 0; (ctx = rq_dial(u, timeout_ms, err, errlen)) == NULL;
	     seed++) {
		if (u->kind == RQ_URL_SENTINEL)
			*how = RQ_ROUTE_ROLE; /* a master that is gone */
		if (u->kind != RQ_URL_CLUSTER || seed == u->nnodes)
			return (NULL);
		rq_url_set_node(u, u->nodes[seed].host, u->nodes[seed].port);
	}
	if (rq_probe_cmd(&c, u, key)) {
		r = rq_run(ctx, &c);
		rq_cmd_free(&c);
		if (r == NULL) {
			snprintf(err, errlen, "redis: %s", ctx->errstr);
			*how = RQ_ROUTE_WAIT;
		} else
			*how = rq_probe_reply(r, u, err, errlen);
		freeReplyObject(r);
		if (*how != RQ_ROUTE_NONE)
			goto fail;
	}
	if (load && rq_load(ctx, err, errlen, how) == -1)
		goto fail;
	return (ctx);
fail:
	redisFree(ctx);
	return (NULL);
}

/*
 * Opens a blocking connection to url's server (for key, a key of the
 * queue, where a cluster holds it; NULL: any node): connect (timeout_ms),
 * AUTH, SELECT and, with load set, FUNCTION LOAD REPLACE. Commands time
 * out after timeout_ms too. While the servers say a failover or a slot
 * migration is under way (a replica, a master without its replicas, a
 * slot being moved), it asks again after a pause, for up to wait_ms. A
 * reply on the open connection that says the server is not the right one
 * (rq_route.h) is the caller's to handle: close it and connect again.
 */
redisContext *
rq_connect_wait(const char *url, const char *key, int timeout_ms, int wait_ms,
    int load, char *err, size_t errlen)
{
	struct rq_url u;
	redisContext *ctx = NULL;
	enum rq_route how;
	long long     deadline = clock_mono_ms() + wait_ms, pause = 100;
	int	      moves = 0;

	if (rq_url_parse(url, &u, err, errlen) == -1)
		return (NULL);
	while ((ctx = rq_route_once(
		    &u, key, timeout_ms, load, &how, err, errlen)) == NULL) {
		if (how == RQ_ROUTE_MOVED && ++moves <= RQ_ROUTE_MOVES)
			continue;
		if (how == RQ_ROUTE_NONE || clock_mono_ms() + pause > deadline)
			break;
		rq_pause_ms(pause);
		pause = pause * 2 > 1000 ? 1000 : pause * 2;
		moves = 0;
	}
	rq_url_free(&u);
	return (ctx);
}

/* rq_connect_wait without waiting: one try (MOVEDs followed). */
redisContext *
rq_connect(const char *url, const char *key, int timeout_ms, int load,
    char *err, size_t errlen)
{
	return (rq_connect_wait(url, key, timeout_ms, 0, load, err, errlen));
}
