/*
 * Redis over TLS through the bridge (shared/tls_bridge.c, rq_tls.c),
 * against the redis-server with a TLS port that tests/integration/tls.sh
 * starts: COMFYQ_TEST_REDIS_URL is its rediss:// URL, COMFYQ_TLS_CA_FILE,
 * COMFYQ_TLS_CERT_FILE and COMFYQ_TLS_KEY_FILE the test's CA and client
 * certificate, COMFYQ_TEST_TLS_OTHER_CA a CA that signed nothing of it.
 * Checked: 8 MiB values cross both ways on a blocking and on an async
 * connection (the bridge's flow control); a hundred connections leave no
 * link and no descriptor behind; a server that never speaks TLS ends the
 * connect at its timeout; an async connection to a server it must not
 * trust never comes up and its failed links are freed; one the server
 * drops comes back by itself; tls_bridge_stop ends every link. The
 * system's CA store is loaded only by a rediss:// connection: a plain one
 * (COMFYQ_TEST_REDIS_PLAIN_URL, the server's unix socket) works without
 * it, and the first rediss:// one loads it and still verifies.
 */
#include <dirent.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "itest.h"
#include "rq.h"
#include "rq_tls.h"
#include "tls_bridge.h"
#include "util.h"

#define BIG (8 << 20)

/* The process's TLS settings from the environment, or another CA. */
static void
tls_setup(const char *ca)
{
	struct rq_tls_cfg c;
	char		  err[512];

	memset(&c, 0, sizeof c);
	c.ca_file = (char *)(ca != NULL ? ca : getenv("COMFYQ_TLS_CA_FILE"));
	c.cert_file = getenv("COMFYQ_TLS_CERT_FILE");
	c.key_file = getenv("COMFYQ_TLS_KEY_FILE");
	if (rq_tls_setup(&c, err, sizeof err) == -1)
		unit_fail(__FILE__, __LINE__, "%s", err);
}

static const char *
url(void)
{
	return (getenv("COMFYQ_TEST_REDIS_URL"));
}

static char *
big_value(void)
{
	char  *v = malloc(BIG);
	size_t i;

	ASSERT_TRUE(v != NULL);
	for (i = 0; i < BIG; i++)
		v[i] = (char)(rand_u64() & 0xff);
	return (v);
}

static void
test_big_blocking(void)
{
	redisContext *c;
	redisReply   *r;
	char	      err[512], *v = big_value();

	tls_setup(NULL);
	c = rq_connect(url(), NULL, 10000, 0, err, sizeof err);
	ASSERT_TRUE(c != NULL);
	r = redisCommand(c, "SET cq:{tls}:big %b", v, (size_t)BIG);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	r = redisCommand(c, "GET cq:{tls}:big");
	ASSERT_TRUE(r != NULL && r->type == REDIS_REPLY_STRING);
	ASSERT_EQ(r->len, BIG);
	ASSERT_TRUE(memcmp(r->str, v, BIG) == 0);
	freeReplyObject(r);
	freeReplyObject(redisCommand(c, "DEL cq:{tls}:big"));
	redisFree(c);
	free(v);
}

struct actx {
	struct event_base *base;
	int		   ups, downs, replies;
	long long	   len;
	int		   same;
	long long	   id;
	const char	  *want;
};

static void
on_state(struct rq_async *ra, int up, void *arg)
{
	struct actx *a = arg;

	(void)ra;
	if (up)
		a->ups++;
	else
		a->downs++;
	event_base_loopbreak(a->base);
}

static void
on_reply(redisAsyncContext *ac, void *r, void *priv)
{
	struct actx *a = priv;
	redisReply  *reply = r;

	(void)ac;
	a->replies++;
	if (reply != NULL && reply->type == REDIS_REPLY_STRING) {
		a->len = (long long)reply->len;
		a->same = a->want != NULL && reply->len == BIG &&
		    memcmp(reply->str, a->want, BIG) == 0;
	} else if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
		a->id = reply->integer;
	event_base_loopbreak(a->base);
}

static void
wait_ups(struct actx *a, int n)
{
	int i;

	for (i = 0; i < 100 && a->ups < n; i++)
		it_loop(a->base, 100);
	ASSERT_EQ(a->ups, n);
}

static void
test_big_async(void)
{
	struct actx	 a;
	struct rq_async *ra;
	struct rq_cmd	 c;
	char		 err[512], *v = big_value();
	int		 i;

	tls_setup(NULL);
	memset(&a, 0, sizeof a);
	a.base = event_base_new();
	a.want = v;
	ra =
	    rq_async_new(a.base, url(), NULL, 0, on_state, &a, err, sizeof err);
	ASSERT_TRUE(ra != NULL);
	wait_ups(&a, 1);
	rq_cmd_init(&c, "SET");
	rq_cmd_add(&c, "cq:{tls}:abig");
	rq_cmd_addb(&c, v, BIG);
	ASSERT_EQ(rq_async_call(ra, on_reply, &a, &c), 0);
	rq_cmd_free(&c);
	rq_cmd_init(&c, "GET");
	rq_cmd_add(&c, "cq:{tls}:abig");
	ASSERT_EQ(rq_async_call(ra, on_reply, &a, &c), 0);
	rq_cmd_free(&c);
	for (i = 0; i < 100 && a.replies < 2; i++)
		it_loop(a.base, 100);
	ASSERT_EQ(a.replies, 2);
	ASSERT_EQ(a.len, BIG);
	ASSERT_TRUE(a.same);
	ASSERT_EQ(a.downs, 0);
	freeReplyObject(it_cmd("DEL cq:{tls}:abig"));
	rq_async_free(ra);
	event_base_free(a.base);
	free(v);
}

static int
fd_count(void)
{
	DIR	      *d = opendir("/proc/self/fd");
	struct dirent *e;
	int	       n = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	if (d != NULL)
		closedir(d);
	return (n);
}

/* Waits until the bridge holds n links: it frees one after its EOF. */
static int
links_settle(int n)
{
	int i;

	for (i = 0; i < 200 && tls_bridge_links() != n; i++)
		it_sleep_ms(10);
	return (tls_bridge_links());
}

static void
test_no_leaks(void)
{
	redisContext *c;
	redisReply   *r;
	char	      err[512];
	int	      i, links, fds;

	tls_setup(NULL);
	freeReplyObject(it_cmd("PING")); /* it_redis's link is up */
	links = tls_bridge_links();
	fds = fd_count();
	ASSERT_TRUE(links >= 1);
	for (i = 0; i < 100; i++) {
		c = rq_connect(url(), NULL, 5000, 0, err, sizeof err);
		ASSERT_TRUE(c != NULL);
		r = redisCommand(c, "PING");
		ASSERT_STATUS(r, "PONG");
		freeReplyObject(r);
		redisFree(c);
	}
	ASSERT_EQ(links_settle(links), links);
	ASSERT_EQ(fd_count(), fds);
}

/* No tls-* file set: the system's store, loaded at the first TLS use. */
static void
test_store_lazy(void)
{
	struct rq_tls_cfg c;
	redisContext	 *rc;
	redisReply	 *r;
	char		  err[512];

	memset(&c, 0, sizeof c);
	ASSERT_EQ(rq_tls_setup(&c, err, sizeof err), 0);
	ASSERT_EQ(rq_tls_store_loaded(), 0);
	rc = rq_connect(getenv("COMFYQ_TEST_REDIS_PLAIN_URL"), NULL, 5000, 0,
	    err, sizeof err);
	ASSERT_TRUE(rc != NULL);
	r = redisCommand(rc, "PING");
	ASSERT_STATUS(r, "PONG");
	freeReplyObject(r);
	redisFree(rc);
	ASSERT_EQ(rq_tls_store_loaded(), 0); /* plain: never loaded */
	/* TLS: loaded now, and the test's CA is not in it: refused. */
	ASSERT_TRUE(rq_connect(url(), NULL, 5000, 0, err, sizeof err) == NULL);
	ASSERT_TRUE(strstr(err, "certificate verify failed") != NULL);
	ASSERT_EQ(rq_tls_store_loaded(), 1);
	tls_setup(NULL); /* the test's CA: verified and let in */
	rc = rq_connect(url(), NULL, 5000, 0, err, sizeof err);
	ASSERT_TRUE(rc != NULL);
	r = redisCommand(rc, "PING");
	ASSERT_STATUS(r, "PONG");
	freeReplyObject(r);
	redisFree(rc);
}

static void
test_silent_server(void)
{
	struct sockaddr_in sa;
	socklen_t	   n = sizeof sa;
	long long	   t0;
	char		   u[64], err[512];
	int		   lfd;

	tls_setup(NULL);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	ASSERT_EQ(listen(lfd, 4), 0); /* never accepted, never answered */
	ASSERT_EQ(getsockname(lfd, (struct sockaddr *)&sa, &n), 0);
	snprintf(u, sizeof u, "rediss://127.0.0.1:%d", ntohs(sa.sin_port));
	t0 = clock_mono_ms();
	ASSERT_TRUE(rq_connect(u, NULL, 300, 0, err, sizeof err) == NULL);
	ASSERT_TRUE(clock_mono_ms() - t0 < 1300);
	ASSERT_TRUE(strstr(err, "TLS: no session within 300 ms") != NULL);
	close(lfd);
}

static void
test_async_untrusted(void)
{
	struct actx	 a;
	struct rq_async *ra;
	char		 err[512];
	int		 links, i, most = 0;

	tls_setup(getenv("COMFYQ_TEST_TLS_OTHER_CA"));
	ASSERT_TRUE(rq_connect(url(), NULL, 5000, 0, err, sizeof err) == NULL);
	ASSERT_TRUE(strstr(err, "TLS: certificate verify failed") != NULL);
	links = links_settle(1);
	memset(&a, 0, sizeof a);
	a.base = event_base_new();
	ra =
	    rq_async_new(a.base, url(), NULL, 0, on_state, &a, err, sizeof err);
	ASSERT_TRUE(ra != NULL);
	for (i = 0; i < 20; i++) { /* several attempts, with backoff */
		it_loop(a.base, 100);
		if (tls_bridge_links() - links > most)
			most = tls_bridge_links() - links;
	}
	ASSERT_EQ(a.ups, 0);
	ASSERT_EQ(rq_async_up(ra), 0);
	ASSERT_TRUE(most <= 1); /* each failed link was freed */
	rq_async_free(ra);
	event_base_free(a.base);
	ASSERT_EQ(links_settle(links), links);
	tls_setup(NULL);
}

/* The server drops the connection: rq_async reconnects by itself. */
static void
test_async_dropped(void)
{
	struct actx	 a;
	struct rq_async *ra;
	struct rq_cmd	 c;
	redisReply	*r;
	char		 err[512];
	int		 i;

	tls_setup(NULL);
	memset(&a, 0, sizeof a);
	a.base = event_base_new();
	ra =
	    rq_async_new(a.base, url(), NULL, 0, on_state, &a, err, sizeof err);
	ASSERT_TRUE(ra != NULL);
	wait_ups(&a, 1);
	rq_cmd_init(&c, "CLIENT");
	rq_cmd_add(&c, "ID");
	ASSERT_EQ(rq_async_call(ra, on_reply, &a, &c), 0);
	for (i = 0; i < 50 && a.replies < 1; i++)
		it_loop(a.base, 100);
	ASSERT_TRUE(a.id > 0);
	r = it_cmd("CLIENT KILL ID %lld", a.id);
	ASSERT_TRUE(
	    r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1);
	freeReplyObject(r);
	for (i = 0; i < 50 && a.downs < 1; i++)
		it_loop(a.base, 100);
	ASSERT_EQ(a.downs, 1);
	wait_ups(&a, 2);
	a.id = 0;
	ASSERT_EQ(rq_async_call(ra, on_reply, &a, &c), 0);
	for (i = 0; i < 50 && a.replies < 2; i++)
		it_loop(a.base, 100);
	ASSERT_TRUE(a.id > 0);
	rq_cmd_free(&c);
	rq_async_free(ra);
	event_base_free(a.base);
}

/* Stopping the bridge ends its links; the next connect starts it again. */
static void
test_stop(void)
{
	redisContext *c, *c2;
	redisReply   *r;
	char	      err[512];

	tls_setup(NULL);
	signal(SIGPIPE, SIG_IGN); /* the PING below writes to a closed socket */
	c = rq_connect(url(), NULL, 5000, 0, err, sizeof err);
	ASSERT_TRUE(c != NULL);
	ASSERT_TRUE(tls_bridge_links() >= 1);
	tls_bridge_stop();
	ASSERT_EQ(tls_bridge_links(), 0);
	r = redisCommand(c, "PING");
	ASSERT_TRUE(r == NULL); /* its socket was closed under it */
	redisFree(c);
	c2 = rq_connect(url(), NULL, 5000, 0, err, sizeof err);
	ASSERT_TRUE(c2 != NULL);
	r = redisCommand(c2, "PING");
	ASSERT_STATUS(r, "PONG");
	freeReplyObject(r);
	redisFree(c2);
}

const struct unit_test itests[] = {
	{ "store_lazy", test_store_lazy },
	{ "big_blocking", test_big_blocking },
	{ "big_async", test_big_async },
	{ "no_leaks", test_no_leaks },
	{ "silent_server", test_silent_server },
	{ "async_untrusted", test_async_untrusted },
	{ "async_dropped", test_async_dropped },
	{ "stop", test_stop },
	{ NULL, NULL },
};
