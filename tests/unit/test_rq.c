/* Redis URLs, queue prefixes and the argument builder. */
#include <string.h>

#include "rq.h"
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
	    "redis URL: 'http://x' does not start with redis://, rediss:// "
	    "or unix://");
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
	{ "prefix", test_prefix },
	{ "cmd_builder", test_cmd_builder },
	{ NULL, NULL },
};
