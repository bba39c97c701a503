/*
 * Redis URLs (the one-server forms and the sentinel and cluster lists),
 * queue prefixes, the argument builder, and the replies that route a
 * connection (rq_route.h), written by hand in RESP.
 */
#include <string.h>

#include "rq.h"
#include "rq_route.h"
#include "tresp.h"
#include "unit.h"

static void
test_url_forms(void)
{
	struct rq_url u;
	char	      err[256];

	ASSERT_EQ(
	    rq_url_parse("redis://127.0.0.1:6380/2", &u, err, sizeof err), 0);
	ASSERT_STREQ(u.host, "127.0.0.1");
	ASSERT_EQ(u.port, 6380);
	ASSERT_EQ(u.db, 2);
	ASSERT_TRUE(u.password == NULL && u.user == NULL);
	rq_url_free(&u);

	ASSERT_EQ(
	    rq_url_parse("redis://:s%40cret@redis", &u, err, sizeof err), 0);
	ASSERT_STREQ(u.host, "redis");
	ASSERT_EQ(u.port, 6379);
	ASSERT_STREQ(u.password, "s@cret");
	ASSERT_TRUE(u.user == NULL);
	rq_url_free(&u);

	ASSERT_EQ(
	    rq_url_parse("redis://bot:pw@[::1]:7000/0", &u, err, sizeof err),
	    0);
	ASSERT_STREQ(u.host, "::1");
	ASSERT_EQ(u.port, 7000);
	ASSERT_STREQ(u.user, "bot");
	ASSERT_STREQ(u.password, "pw");
	rq_url_free(&u);

	ASSERT_EQ(rq_url_parse("rediss://bot:pw@redis.example:6380/1", &u, err,
		      sizeof err),
	    0);
	ASSERT_EQ(u.tls, 1);
	ASSERT_STREQ(u.host, "redis.example");
	ASSERT_EQ(u.port, 6380);
	ASSERT_EQ(u.db, 1);
	ASSERT_STREQ(u.user, "bot");
	ASSERT_STREQ(u.password, "pw");
	rq_url_free(&u);
	ASSERT_EQ(rq_url_parse("rediss://[::1]", &u, err, sizeof err), 0);
	ASSERT_EQ(u.tls, 1);
	ASSERT_STREQ(u.host, "::1");
	ASSERT_EQ(u.port, 6379);
	rq_url_free(&u);
	ASSERT_EQ(rq_url_parse("redis://h", &u, err, sizeof err), 0);
	ASSERT_EQ(u.tls, 0);
	rq_url_free(&u);

	ASSERT_EQ(rq_url_parse("unix:///run/redis.sock?db=3&password=x", &u,
		      err, sizeof err),
	    0);
	ASSERT_STREQ(u.path, "/run/redis.sock");
	ASSERT_EQ(u.db, 3);
	ASSERT_STREQ(u.password, "x");
	rq_url_free(&u);
}

static void
test_url_errors(void)
{
	struct rq_url u;
	char	      err[256];

	ASSERT_EQ(rq_url_parse("http://x", &u, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "redis URL: 'http://x' does not start with redis://, rediss://, "
	    "redis+sentinel://, redis+cluster:// or unix://");
	ASSERT_EQ(rq_url_parse("redis://h:99999", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: bad port '99999'");
	ASSERT_EQ(rq_url_parse("redis://h/x", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: bad db 'x'");
	ASSERT_EQ(rq_url_parse("redis://", &u, err, sizeof err), -1);
	ASSERT_EQ(rq_url_parse("rediss://", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: no host in 'rediss://'");
	ASSERT_EQ(rq_url_parse("rediss://h:0", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: bad port '0'");
	ASSERT_EQ(rq_url_parse("unix://rel/path", &u, err, sizeof err), -1);
	ASSERT_EQ(rq_url_parse("unix:///s?bogus=1", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: unknown parameter 'bogus'");
}

static void
test_url_sentinel(void)
{
	struct rq_url u;
	char	      err[256];

	ASSERT_EQ(
	    rq_url_parse("redis+sentinel://:pw@s1,s2:26380,[::1]:7/mymaster/2"
			 "?sentinel-password=sp%26x&sentinel-user=watch",
		&u, err, sizeof err),
	    0);
	ASSERT_EQ(u.kind, RQ_URL_SENTINEL);
	ASSERT_EQ(u.tls, 0);
	ASSERT_TRUE(u.host == NULL); /* until the sentinels name one */
	ASSERT_EQ(u.nnodes, 3);
	ASSERT_STREQ(u.nodes[0].host, "s1");
	ASSERT_EQ(u.nodes[0].port, 26379);
	ASSERT_STREQ(u.nodes[1].host, "s2");
	ASSERT_EQ(u.nodes[1].port, 26380);
	ASSERT_STREQ(u.nodes[2].host, "::1");
	ASSERT_EQ(u.nodes[2].port, 7);
	ASSERT_STREQ(u.master, "mymaster");
	ASSERT_EQ(u.db, 2);
	ASSERT_STREQ(u.password, "pw");
	ASSERT_TRUE(u.user == NULL);
	ASSERT_STREQ(u.sentinel_password, "sp&x");
	ASSERT_STREQ(u.sentinel_user, "watch");
	rq_url_set_node(&u, "10.0.0.5", 6380);
	ASSERT_STREQ(u.host, "10.0.0.5");
	ASSERT_EQ(u.port, 6380);
	rq_url_free(&u);

	ASSERT_EQ(rq_url_parse("rediss+sentinel://bot:pw@127.0.0.1:26379/m", &u,
		      err, sizeof err),
	    0);
	ASSERT_EQ(u.tls, 1);
	ASSERT_EQ(u.nnodes, 1);
	ASSERT_STREQ(u.user, "bot");
	ASSERT_STREQ(u.master, "m");
	ASSERT_EQ(u.db, 0);
	ASSERT_TRUE(u.sentinel_password == NULL);
	rq_url_free(&u);

	ASSERT_EQ(
	    rq_url_parse("redis+sentinel://s1,s2", &u, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "redis URL: no master name in 'redis+sentinel://s1,s2' "
	    "(redis+sentinel://HOST[:PORT][,...]/MASTER)");
	ASSERT_EQ(rq_url_parse("redis+sentinel://s1/?sentinel-password=x", &u,
		      err, sizeof err),
	    -1);
	ASSERT_EQ(
	    rq_url_parse("redis+sentinel://s1,,s2/m", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: no host in 'redis+sentinel://s1,,s2/m'");
	ASSERT_EQ(
	    rq_url_parse("redis+sentinel://s1:0/m", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: bad port '0'");
	ASSERT_EQ(
	    rq_url_parse("redis+sentinel://s1/m/x", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: bad db 'x'");
	ASSERT_EQ(
	    rq_url_parse("redis+sentinel://s1/m?db=1", &u, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "redis URL: unknown parameter 'db'");
	ASSERT_EQ(rq_url_parse("redis+sentinel://a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,"
			       "p,q/m",
		      &u, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "redis URL: more than 16 nodes");
	/* An empty master name, plain or escaped, is refused (fuzz_rqurl). */
	ASSERT_EQ(
	    rq_url_parse("redis+sentinel://s1//2", &u, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "redis URL: empty master name in 'redis+sentinel://s1//2' "
	    "(redis+sentinel://HOST[:PORT][,...]/MASTER)");
	ASSERT_EQ(
	    rq_url_parse("redis+sentinel://s1/%00", &u, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "redis URL: empty master name in 'redis+sentinel://s1/%00' "
	    "(redis+sentinel://HOST[:PORT][,...]/MASTER)");
	ASSERT_EQ(rq_url_parse("rediss+sentinel://s1//?sentinel-user=w", &u,
		      err, sizeof err),
	    -1);
	ASSERT_TRUE(strstr(err, "empty master name") != NULL);
}

static void
test_url_cluster(void)
{
	struct rq_url u;
	char	      err[256];

	ASSERT_EQ(rq_url_parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2", &u,
		      err, sizeof err),
	    0);
	ASSERT_EQ(u.kind, RQ_URL_CLUSTER);
	ASSERT_TRUE(u.host == NULL);
	ASSERT_EQ(u.nnodes, 2);
	ASSERT_STREQ(u.nodes[0].host, "10.0.0.1");
	ASSERT_EQ(u.nodes[0].port, 7000);
	ASSERT_STREQ(u.nodes[1].host, "10.0.0.2");
	ASSERT_EQ(u.nodes[1].port, 6379);
	ASSERT_STREQ(u.password, "pw");
	ASSERT_TRUE(u.master == NULL);
	rq_url_free(&u);
	ASSERT_EQ(
	    rq_url_parse("rediss+cluster://n1/0", &u, err, sizeof err), 0);
	ASSERT_EQ(u.tls, 1);
	ASSERT_EQ(u.db, 0);
	rq_url_free(&u);

	ASSERT_EQ(
	    rq_url_parse("redis+cluster://n1/3", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: a Redis Cluster has db 0 only");
	ASSERT_EQ(
	    rq_url_parse("redis+cluster://n1?x=1", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: a cluster URL takes no parameters");
	ASSERT_EQ(rq_url_parse("redis+cluster://", &u, err, sizeof err), -1);
	ASSERT_STREQ(err, "redis URL: no host in 'redis+cluster://'");
}

/* Which replies move a connection, and where to. */
static void
test_route(void)
{
	static const struct {
		const char   *resp;
		enum rq_route how;
	} cases[] = {
		{ "-MOVED 5718 127.0.0.1:28002\r\n", RQ_ROUTE_MOVED },
		{ "-ASK 5718 127.0.0.1:28003\r\n", RQ_ROUTE_WAIT },
		{ "-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
		    RQ_ROUTE_WAIT },
		{ "-CLUSTERDOWN The cluster is down\r\n", RQ_ROUTE_WAIT },
		{ "-LOADING Redis is loading the dataset in memory\r\n",
		    RQ_ROUTE_WAIT },
		{ "-READONLY You can't write against a read only replica.\r\n",
		    RQ_ROUTE_ROLE },
		{ "-MASTERDOWN Link with MASTER is down\r\n", RQ_ROUTE_ROLE },
		{ "-NOREPLICAS Not enough good replicas to write.\r\n",
		    RQ_ROUTE_ROLE },
		{ "-ERR unknown command\r\n", RQ_ROUTE_NONE },
		{ "-MOVEDX 1 h:1\r\n", RQ_ROUTE_NONE },
		{ "-STALE fence\r\n", RQ_ROUTE_NONE },
		{ "+MOVED\r\n", RQ_ROUTE_NONE }, /* a status, not an error */
		{ ":1\r\n", RQ_ROUTE_NONE },
	};
	redisReply *r;
	char	    host[64];
	size_t	    i;
	int	    port = 0;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		r = tresp(cases[i].resp);
		ASSERT_EQ(rq_route_of(r), cases[i].how);
		freeReplyObject(r);
	}
	ASSERT_EQ(rq_route_of(NULL), RQ_ROUTE_NONE);
	ASSERT_EQ(rq_route_target(
		      "MOVED 5718 127.0.0.1:28002", host, sizeof host, &port),
	    0);
	ASSERT_STREQ(host, "127.0.0.1");
	ASSERT_EQ(port, 28002);
	ASSERT_EQ(
	    rq_route_target("ASK 1 fe80::1:7000", host, sizeof host, &port), 0);
	ASSERT_STREQ(host, "fe80::1");
	ASSERT_EQ(port, 7000);
	ASSERT_EQ(
	    rq_route_target("MOVED 1 :7001", host, sizeof host, &port), 0);
	ASSERT_STREQ(host, "");
	ASSERT_EQ(port, 7001);
	ASSERT_EQ(rq_route_target("MOVED 1", host, sizeof host, &port), -1);
	ASSERT_EQ(rq_route_target("MOVED 1 h:x", host, sizeof host, &port), -1);
	ASSERT_EQ(rq_route_target("MOVED 1 h", host, sizeof host, &port), -1);
	ASSERT_EQ(rq_route_target("MOVED 1 aaaaaaaa:1", host, 4, &port), -1);
}

/* ROLE and SENTINEL GET-MASTER-ADDR-BY-NAME replies. */
static void
test_route_replies(void)
{
	redisReply *r;
	char	    err[128], host[64];
	int	    port = 0;

	r = tresp("*3\r\n$6\r\nmaster\r\n:425\r\n*0\r\n");
	ASSERT_EQ(rq_route_is_master(r, err, sizeof err), 0);
	freeReplyObject(r);
	r = tresp("*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:27001\r\n"
		  "$9\r\nconnected\r\n:425\r\n");
	ASSERT_EQ(rq_route_is_master(r, err, sizeof err), -1);
	ASSERT_STREQ(err, "it is a replica, not the master");
	freeReplyObject(r);
	r = tresp("*2\r\n$8\r\nsentinel\r\n*0\r\n");
	ASSERT_EQ(rq_route_is_master(r, err, sizeof err), -1);
	ASSERT_STREQ(err, "it is a sentinel, not the master");
	freeReplyObject(r);
	r = tresp("-NOPERM no ROLE for you\r\n");
	ASSERT_EQ(rq_route_is_master(r, err, sizeof err), -1);
	ASSERT_STREQ(err, "ROLE: NOPERM no ROLE for you");
	freeReplyObject(r);
	r = tresp(":1\r\n");
	ASSERT_EQ(rq_route_is_master(r, err, sizeof err), -1);
	ASSERT_STREQ(err, "ROLE: unexpected reply");
	freeReplyObject(r);

	r = tresp("*2\r\n$9\r\n127.0.0.1\r\n$5\r\n27002\r\n");
	ASSERT_EQ(rq_route_sentinel_addr(
		      r, host, sizeof host, &port, err, sizeof err),
	    0);
	ASSERT_STREQ(host, "127.0.0.1");
	ASSERT_EQ(port, 27002);
	freeReplyObject(r);
	r = tresp("*-1\r\n");
	ASSERT_EQ(rq_route_sentinel_addr(
		      r, host, sizeof host, &port, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "it monitors no master of that name");
	freeReplyObject(r);
	r = tresp("*2\r\n$9\r\n127.0.0.1\r\n$1\r\n0\r\n");
	ASSERT_EQ(rq_route_sentinel_addr(
		      r, host, sizeof host, &port, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "unexpected reply to get-master-addr-by-name");
	freeReplyObject(r);
	r = tresp("-NOAUTH Authentication required.\r\n");
	ASSERT_EQ(rq_route_sentinel_addr(
		      r, host, sizeof host, &port, err, sizeof err),
	    -1);
	ASSERT_STREQ(err, "NOAUTH Authentication required.");
	freeReplyObject(r);
}

static void
test_prefix(void)
{
	char buf[RQ_PREFIX_MAX];

	ASSERT_EQ(rq_prefix(buf, sizeof buf, "default"), 0);
	ASSERT_STREQ(buf, "cq:{default}:");
	ASSERT_EQ(rq_prefix(buf, sizeof buf, "bad{tag}"), -1);
	ASSERT_EQ(rq_prefix(buf, sizeof buf, "has space"), -1);
	ASSERT_EQ(rq_prefix(buf, sizeof buf, ""), -1);
}

static void
test_cmd_builder(void)
{
	struct rq_cmd c;

	rq_cmd_fcall(&c, "claim", "cq:{q}:");
	rq_cmd_addb(&c, "a\0b", 3);
	rq_cmd_addf(&c, "%d", 42);
	ASSERT_EQ(c.argc, 6);
	ASSERT_STREQ(c.argv[0], "FCALL");
	ASSERT_STREQ(c.argv[1], "comfyq_claim");
	ASSERT_STREQ(c.argv[2], "1");
	ASSERT_STREQ(c.argv[3], "cq:{q}:");
	ASSERT_EQ(c.lens[4], 3);
	ASSERT_TRUE(memcmp(c.argv[4], "a\0b", 3) == 0);
	ASSERT_STREQ(c.argv[5], "42");
	rq_cmd_free(&c);
	ASSERT_EQ(c.argc, 0);
}

const struct unit_test test_rq[] = {
	{ "url_forms", test_url_forms },
	{ "url_errors", test_url_errors },
	{ "url_sentinel", test_url_sentinel },
	{ "url_cluster", test_url_cluster },
	{ "route", test_route },
	{ "route_replies", test_route_replies },
	{ "prefix", test_prefix },
	{ "cmd_builder", test_cmd_builder },
	{ NULL, NULL },
};
