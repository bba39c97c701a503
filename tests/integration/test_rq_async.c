/*
 * The non-blocking Redis connection: it comes up with the library loaded,
 * refuses calls while down, hands a pending call a NULL reply when the
 * server dies, and reconnects by itself when the server is back.
 * Runs against its own redis-server (with-redis.sh --own), which it stops
 * and restarts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "itest.h"
#include "rq.h"

struct actx {
	struct event_base *base;
	int		   ups;
	int		   downs;
	int		   replies;
	int		   null_replies;
	char		   last[64];
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
	if (reply == NULL)
		a->null_replies++;
	else {
		a->replies++;
		snprintf(a->last, sizeof a->last, "%s",
		    reply->str ? reply->str : "");
	}
	event_base_loopbreak(a->base);
}

static void
test_reconnects(void)
{
	struct actx	 a;
	struct rq_async *ra;
	struct rq_cmd	 c;
	char		 err[256], cmd[512];
	const char	*conf = getenv("COMFYQ_TEST_REDIS_CONF");
	redisReply	*r;
	int		 i;

	ASSERT_TRUE(conf != NULL);
	memset(&a, 0, sizeof a);
	a.base = event_base_new();
	ra = rq_async_new(a.base, getenv("COMFYQ_TEST_REDIS_URL"), NULL, 1,
	    on_state, &a, err, sizeof err);
	ASSERT_TRUE(ra != NULL);
	for (i = 0; i < 50 && a.ups == 0; i++)
		it_loop(a.base, 100);
	ASSERT_EQ(a.ups, 1);
	ASSERT_EQ(rq_async_up(ra), 1);

	rq_cmd_init(&c, "FCALL_RO");
	rq_cmd_add(&c, "comfyq_version");
	rq_cmd_add(&c, "0");
	ASSERT_EQ(rq_async_call(ra, on_reply, &a, &c), 0);
	it_loop(a.base, 2000);
	ASSERT_EQ(a.replies, 1);
	ASSERT_STREQ(a.last, RQ_LIB_VERSION);

	/* A blocking call in flight when the server goes away. */
	rq_cmd_free(&c);
	rq_cmd_init(&c, "BLPOP");
	rq_cmd_add(&c, "cq:{async}:nothing");
	rq_cmd_add(&c, "30");
	ASSERT_EQ(rq_async_call(ra, on_reply, &a, &c), 0);
	rq_cmd_free(&c);
	/* The reply never comes: the server exits. */
	r = redisCommand(it_redis(), "SHUTDOWN NOSAVE");
	freeReplyObject(r);
	for (i = 0; i < 50 && (a.downs == 0 || a.null_replies == 0); i++)
		it_loop(a.base, 100);
	ASSERT_EQ(a.null_replies, 1);
	ASSERT_EQ(a.downs, 1);
	ASSERT_EQ(rq_async_up(ra), 0);
	rq_cmd_init(&c, "PING");
	ASSERT_EQ(rq_async_call(ra, on_reply, &a, &c), -1);

	/* The server comes back; so does the connection, by itself. */
	snprintf(cmd, sizeof cmd, "redis-server %s", conf);
	ASSERT_EQ(system(cmd), 0);
	for (i = 0; i < 100 && a.ups < 2; i++)
		it_loop(a.base, 100);
	ASSERT_EQ(a.ups, 2);
	ASSERT_EQ(rq_async_call(ra, on_reply, &a, &c), 0);
	it_loop(a.base, 2000);
	ASSERT_EQ(a.replies, 2);
	ASSERT_STREQ(a.last, "PONG");
	rq_cmd_free(&c);
	rq_async_free(ra);
	event_base_free(a.base);
}

static void
test_bad_url(void)
{
	struct event_base *base = event_base_new();
	char		   err[256];

	ASSERT_TRUE(rq_async_new(base, "http://x", NULL, 1, NULL, NULL, err,
			sizeof err) == NULL);
	ASSERT_STREQ(err,
	    "redis URL: 'http://x' does not start with redis://, rediss://, "
	    "redis+sentinel://, redis+cluster:// or unix://");
	event_base_free(base);
}

/*
 * A library newer than the program's stays loaded: both connections
 * refuse to replace it (an older program in a fleet being upgraded must
 * not take functions away), and the async one never comes up.
 */
static void
test_newer_library_kept(void)
{
	struct actx	 a;
	struct rq_async *ra;
	redisContext	*rc;
	redisReply	*r;
	char		 err[256];
	int		 i;

	r = redisCommand(it_redis(), "FUNCTION LOAD REPLACE %s",
	    "#!lua name=comfyq\n"
	    "redis.register_function{function_name='comfyq_version', "
	    "callback=function() return '99' end, flags={'no-writes'}}");
	ASSERT_TRUE(r != NULL && r->type == REDIS_REPLY_STRING);
	freeReplyObject(r);
	rc = rq_connect(
	    getenv("COMFYQ_TEST_REDIS_URL"), NULL, 2000, 1, err, sizeof err);
	ASSERT_TRUE(rc == NULL);
	ASSERT_STREQ(err,
	    "Redis holds functions library version 99, newer than this "
	    "program's " RQ_LIB_VERSION ": upgrade this program");
	memset(&a, 0, sizeof a);
	a.base = event_base_new();
	ra = rq_async_new(a.base, getenv("COMFYQ_TEST_REDIS_URL"), NULL, 1,
	    on_state, &a, err, sizeof err);
	ASSERT_TRUE(ra != NULL);
	for (i = 0; i < 10; i++)
		it_loop(a.base, 100);
	ASSERT_EQ(a.ups, 0);
	rq_async_free(ra);
	event_base_free(a.base);
	r = redisCommand(it_redis(), "FCALL_RO comfyq_version 0");
	ASSERT_TRUE(r != NULL && r->type == REDIS_REPLY_STRING);
	ASSERT_STREQ(r->str, "99");
	freeReplyObject(r);
	/* Ours again, for whatever runs next on this server. */
	rc = rq_connect(
	    getenv("COMFYQ_TEST_REDIS_URL"), NULL, 2000, 0, err, sizeof err);
	ASSERT_TRUE(rc != NULL);
	freeReplyObject(redisCommand(rc, "FUNCTION DELETE comfyq"));
	redisFree(rc);
}

const struct unit_test itests[] = {
	{ "newer_library_kept", test_newer_library_kept },
	{ "reconnects", test_reconnects },
	{ "bad_url", test_bad_url },
	{ NULL, NULL },
};
