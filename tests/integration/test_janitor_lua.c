/*
 * The janitor's functions (lua/janitor.lua, and reap's janitor-side parts)
 * against a real redis-server, call by call: what each writes, removes and
 * counts, and what it must never remove.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "util.h"
#include "xmalloc.h"

#define SPEC_A "{\"workflow\":\"smoke\",\"tenant\":\"a\"}"

/* A field of the newest event of type for jid; "" when there is none. */
static const char *
event_field(const char *P, const char *type, const char *jid, const char *f)
{
	static char buf[256];
	redisReply *r, *kv;
	size_t	    i, k;
	int	    match;

	buf[0] = '\0';
	r = it_cmd("XREVRANGE %sevents + -", P);
	for (i = 0; i < r->elements; i++) {
		kv = r->element[i]->element[1];
		match = 0;
		for (k = 0; k + 1 < kv->elements; k += 2) {
			if (strcmp(kv->element[k]->str, "type") == 0 &&
			    strcmp(kv->element[k + 1]->str, type) == 0)
				match++;
			if (strcmp(kv->element[k]->str, "job") == 0 &&
			    strcmp(kv->element[k + 1]->str, jid) == 0)
				match++;
		}
		if (match < 2)
			continue;
		for (k = 0; k + 1 < kv->elements; k += 2)
			if (strcmp(kv->element[k]->str, f) == 0)
				snprintf(buf, sizeof buf, "%s",
				    kv->element[k + 1]->str);
		break;
	}
	freeReplyObject(r);
	return (buf);
}

/* Element i of an array reply as an integer. */
static long long
el(const redisReply *r, size_t i)
{
	return (atoll(it_str(r, i)));
}

static void
test_capacity_change_next_claim(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	int		  i;

	for (i = 0; i < 3; i++)
		it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "noslot");
	/* Raised at run time: the very next claim takes a second slot. */
	it_setcap(P, "gpu0", "2", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 2);
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "noslot");
	/* Lowered below what is held: nothing is taken away, no new claim. */
	it_setcap(P, "gpu0", "1", "0");
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "noslot");
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 2);
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 1);
}

/* Adds n entries to key; with old_ms > 0, ids from that time on. */
static void
xadd_many(const char *key, int n, long long old_ms)
{
	redisContext *ctx = it_redis();
	redisReply   *r;
	int	      i;

	for (i = 0; i < n; i++) {
		if (old_ms > 0)
			redisAppendCommand(ctx,
			    "XADD %s %lld-%d type old job j%d", key, old_ms,
			    i + 1, i);
		else
			redisAppendCommand(
			    ctx, "XADD %s * type new job j%d", key, i);
	}
	for (i = 0; i < n; i++) {
		ASSERT_EQ(redisGetReply(ctx, (void **)&r), REDIS_OK);
		ASSERT_EQ(r->type, REDIS_REPLY_STRING);
		freeReplyObject(r);
	}
}

static long long
node_entries(void)
{
	redisReply *r = it_cmd("CONFIG GET stream-node-max-entries");
	long long   n = atoll(r->element[1]->str);

	freeReplyObject(r);
	return (n);
}

static void
test_trim_events_length_and_age(void)
{
	const char     *P = it_queue("q");
	const long long node = node_entries();
	redisReply     *r;
	char		key[256];
	long long	len;

	snprintf(key, sizeof key, "%sevents", P);
	xadd_many(key, 2000, 0);
	r = it_fcall(P, "trim", "events_maxlen", "300", "events_max_age_ms",
	    "0", "batch", "1000", NULL);
	/* At most batch entries a call, whole nodes only. */
	ASSERT_TRUE(el(r, 0) <= 1000 && el(r, 0) > 1000 - node);
	freeReplyObject(r);
	r = it_fcall(
	    P, "trim", "events_maxlen", "300", "events_max_age_ms", "0", NULL);
	freeReplyObject(r);
	len = it_int("XLEN %s", key);
	ASSERT_TRUE(len >= 300 && len < 300 + node);
	ASSERT_EQ(it_stat(P, "janitor:events_trimmed"), 2000 - len);

	/* By age: every old node goes, every young entry stays. */
	P = it_queue("q");
	snprintf(key, sizeof key, "%sevents", P);
	xadd_many(key, 500, clock_wall_ms() - 7200000);
	xadd_many(key, 50, 0);
	r = it_fcall(P, "trim", "events_maxlen", "0", "events_max_age_ms",
	    "3600000", NULL);
	len = it_int("XLEN %s", key);
	ASSERT_EQ(el(r, 0), 550 - len);
	ASSERT_TRUE(len >= 50 && len < 50 + node);
	freeReplyObject(r);
	r = it_cmd("XREVRANGE %s + - COUNT 50", key);
	ASSERT_EQ(r->elements, 50);
	ASSERT_STREQ(r->element[49]->element[1]->element[1]->str, "new");
	freeReplyObject(r);
	r = it_fcall(P, "trim", "batch", "0", NULL);
	ASSERT_ERROR(r, "INVALID batch: must be at least 1");
	freeReplyObject(r);
}

/* The id of refund entry i (0-based), oldest first. */
static void
refund_id(const char *key, int i, char *buf, size_t len)
{
	redisReply *r = it_cmd("XRANGE %s - + COUNT %d", key, i + 1);

	ASSERT_EQ(r->elements, (size_t)i + 1);
	snprintf(buf, len, "%s", r->element[i]->element[0]->str);
	freeReplyObject(r);
}

/*
 * Runs trim with events_maxlen, events_max_age_ms and refunds_max_age_ms;
 * returns how many entries of events (refunds 0) or refunds (1) went, and
 * copies that stream's floor.
 */
static long long
trim_run(const char *P, const char *maxlen, const char *age_ms,
    const char *refunds_age_ms, int refunds, char *floor, size_t len)
{
	redisReply *r;
	long long   n;

	r = it_fcall(P, "trim", "events_maxlen", maxlen, "events_max_age_ms",
	    age_ms, "refunds_max_age_ms", refunds_age_ms, NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	n = el(r, refunds ? 1 : 0);
	snprintf(floor, len, "%s", it_str(r, refunds ? 2 : 3));
	freeReplyObject(r);
	return (n);
}

static long long
trim_refunds(const char *P, const char *age_ms, char *floor, size_t len)
{
	return (trim_run(P, "0", "0", age_ms, 1, floor, len));
}

/* Reads up to n entries for a group's consumer. */
static void
read_group(const char *key, const char *group, int n)
{
	redisReply *r = it_cmd(
	    "XREADGROUP GROUP %s c1 COUNT %d STREAMS %s >", group, n, key);

	freeReplyObject(r);
}

/* Acknowledges the first n entries of key for group. */
static void
ack_first(const char *key, const char *group, int n)
{
	redisReply *r = it_cmd("XRANGE %s - + COUNT %d", key, n);
	size_t	    i;

	for (i = 0; i < r->elements; i++)
		freeReplyObject(it_cmd("XACK %s %s %s", key, group,
		    r->element[i]->element[0]->str));
	freeReplyObject(r);
}

static void
test_trim_refunds_keeps_unacknowledged(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	char	    key[256], id150[64], id0[64], floor[64];
	int	    i;

	snprintf(key, sizeof key, "%srefunds", P);
	xadd_many(key, 300, clock_wall_ms() - 30LL * 86400000);
	refund_id(key, 0, id0, sizeof id0);
	refund_id(key, 150, id150, sizeof id150);

	/* No consumer group: nobody has read them, nothing goes. */
	ASSERT_EQ(trim_refunds(P, "1000", floor, sizeof floor), 0);
	ASSERT_STREQ(floor, "");
	freeReplyObject(it_cmd("XGROUP CREATE %s billing 0", key));
	ASSERT_EQ(trim_refunds(P, "1000", floor, sizeof floor), 0);
	ASSERT_STREQ(floor, "0-1");
	/* Delivered but not acknowledged: still nothing. */
	read_group(key, "billing", 200);
	ASSERT_EQ(trim_refunds(P, "1000", floor, sizeof floor), 0);
	ASSERT_STREQ(floor, id0);
	/* 150 acknowledged: those may go, every other entry stays. */
	ack_first(key, "billing", 150);
	trim_refunds(P, "1000", floor, sizeof floor);
	ASSERT_STREQ(floor, id150);
	r = it_cmd("XRANGE %s %s +", key, id150);
	ASSERT_EQ(r->elements, 150);
	freeReplyObject(r);
	ASSERT_TRUE(it_int("XLEN %s", key) < 300);
	ASSERT_EQ(it_stat(P, "janitor:refunds_trimmed"),
	    300 - it_int("XLEN %s", key));
	/* A second group that has read nothing holds everything left. */
	freeReplyObject(it_cmd("XGROUP CREATE %s audit 0", key));
	i = (int)it_int("XLEN %s", key);
	ASSERT_EQ(trim_refunds(P, "1000", floor, sizeof floor), 0);
	ASSERT_EQ(it_int("XLEN %s", key), i);
	/* Both read and acknowledge all: young entries stay for the age. */
	freeReplyObject(it_cmd("XGROUP DESTROY %s audit", key));
	freeReplyObject(it_cmd("XGROUP DESTROY %s billing", key));
	freeReplyObject(it_cmd("XGROUP CREATE %s billing $", key));
	xadd_many(key, 10, 0);
	read_group(key, "billing", 10);
	ack_first(key, "billing", 1000);
	trim_refunds(P, "3600000", floor, sizeof floor);
	r = it_cmd("XRANGE %s - +", key);
	ASSERT_TRUE(r->elements >= 10);
	ASSERT_STREQ(
	    r->element[r->elements - 10]->element[1]->element[1]->str, "new");
	freeReplyObject(r);
}

static void
test_expire_terminal_records(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	char		  jid[64];
	int		  i;

	snprintf(jid, sizeof jid, "%s",
	    it_enq(P, "{\"workflow\":\"a\",\"idempotency_key\":\"k\"}"));
	freeReplyObject(it_fcall(P, "cancel", jid, NULL));
	r = it_fcall(P, "expire", "retention_ms", "60000", NULL);
	ASSERT_EQ(el(r, 0), 0);
	freeReplyObject(r);
	freeReplyObject(
	    it_cmd("ZADD %sdone XX %lld %s", P, clock_wall_ms() - 120000, jid));
	r = it_fcall(P, "expire", "retention_ms", "60000", NULL);
	ASSERT_EQ(el(r, 0), 1);
	freeReplyObject(r);
	ASSERT_EQ(it_int("EXISTS %sjob:%s", P, jid), 0);
	ASSERT_EQ(it_int("EXISTS %sidem:k", P), 0);
	ASSERT_EQ(it_int("ZCARD %sdone", P), 0);
	ASSERT_EQ(it_stat(P, "janitor:expired"), 1);

	/* A live job found in `done` keeps its record, only leaves `done`. */
	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	freeReplyObject(it_cmd("ZADD %sdone 1 %s", P, c.jid));
	/* Batches: five old records go two by two. */
	for (i = 0; i < 5; i++) {
		snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_A));
		freeReplyObject(it_fcall(P, "cancel", jid, NULL));
		freeReplyObject(it_cmd("ZADD %sdone XX %d %s", P, 10 + i, jid));
	}
	r = it_fcall(P, "expire", "retention_ms", "60000", "batch", "3", NULL);
	ASSERT_EQ(el(r, 0), 2);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "active");
	r = it_fcall(P, "expire", "retention_ms", "60000", "batch", "3", NULL);
	ASSERT_EQ(el(r, 0), 3);
	freeReplyObject(r);
	ASSERT_EQ(it_int("ZCARD %sdone", P), 0);
	ASSERT_EQ(it_keys(P) > 0, 1);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "active");
	ASSERT_EQ(it_stat(P, "janitor:expired"), 6);
}

static long long
workers_gone(const char *P, const char *forget, char *first, size_t len)
{
	redisReply *r;
	long long   n;

	r = it_fcall(
	    P, "workers_gone", "dead_ms", "30000", "forget_ms", forget, NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	n = el(r, 0);
	ASSERT_EQ(r->elements, 2 + (size_t)n);
	snprintf(first, len, "%s", n > 0 ? it_str(r, 2) : "");
	freeReplyObject(r);
	return (n);
}

static void
set_beat(const char *P, const char *wid, long long ago_ms)
{
	freeReplyObject(it_cmd(
	    "ZADD %sworkers XX %lld %s", P, clock_wall_ms() - ago_ms, wid));
}

static const char *
worker_state(const char *P, const char *wid)
{
	return (it_get("HGET %sworker:%s state", P, wid));
}

static void
test_workers_gone_once_and_back(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	char	    wid[64];
	const char *names[] = { "w1", "w2", "w3", "w4" };
	size_t	    i;

	for (i = 0; i < 4; i++)
		freeReplyObject(it_fcall(P, "register", names[i], "600000",
		    "gpu0", "1", "0", "host", "h1", NULL));
	freeReplyObject(it_fcall(P, "unregister", "w4", NULL));
	set_beat(P, "w1", 60000);
	set_beat(P, "w4", 60000);
	ASSERT_EQ(workers_gone(P, "86400000", wid, sizeof wid), 1);
	ASSERT_STREQ(wid, "w1");
	ASSERT_STREQ(worker_state(P, "w1"), "gone");
	ASSERT_STREQ(worker_state(P, "w2"), "up");
	ASSERT_STREQ(worker_state(P, "w4"), "stopped");
	/* Seen once: the next call finds nothing new. */
	ASSERT_EQ(workers_gone(P, "86400000", wid, sizeof wid), 0);
	ASSERT_EQ(it_stat(P, "janitor:workers_gone"), 1);
	/* Its heartbeat brings it back; a second death is seen again. */
	r = it_fcall(P, "heartbeat", "w1", "30000", "600000", NULL);
	freeReplyObject(r);
	ASSERT_STREQ(worker_state(P, "w1"), "up");
	set_beat(P, "w1", 40000);
	ASSERT_EQ(workers_gone(P, "86400000", wid, sizeof wid), 1);
	ASSERT_STREQ(wid, "w1");
	/* A worker whose record expired already counts as gone too. */
	freeReplyObject(it_cmd("DEL %sworker:w3", P));
	set_beat(P, "w3", 35000);
	ASSERT_EQ(workers_gone(P, "86400000", wid, sizeof wid), 1);
	ASSERT_STREQ(wid, "w3");
	ASSERT_EQ(it_int("EXISTS %sworker:w3", P), 0);
	/* After forget_ms the worker leaves the index and its record. */
	set_beat(P, "w1", 200000);
	ASSERT_EQ(workers_gone(P, "100000", wid, sizeof wid), 0);
	ASSERT_EQ(it_int("EXISTS %sworker:w1", P), 0);
	r = it_cmd("ZSCORE %sworkers w1", P);
	ASSERT_EQ(r->type, REDIS_REPLY_NIL);
	freeReplyObject(r);
	ASSERT_EQ(it_int("ZCARD %sworkers", P), 3);
	r = it_fcall(
	    P, "workers_gone", "dead_ms", "5000", "forget_ms", "10", NULL);
	ASSERT_ERROR(r,
	    "INVALID dead_ms, batch: at least 1; forget_ms: at least "
	    "dead_ms");
	freeReplyObject(r);
}

static long long
queue_status(
    const char *P, const char *interval, long long *busy, long long *total)
{
	redisReply *r;
	long long   n;

	r = it_fcall(
	    P, "queue_status", "top", "16", "interval_ms", interval, NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	n = el(r, 0);
	*busy = el(r, 1);
	*total = el(r, 2);
	freeReplyObject(r);
	return (n);
}

static void
test_queue_status_positions_throttled(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c0, c1;
	redisReply	 *r;
	char		  j[3][64];
	long long	  busy, total;
	int		  i;

	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c0);
	for (i = 0; i < 3; i++)
		snprintf(j[i], sizeof j[i], "%s", it_enq(P, SPEC_A));
	ASSERT_EQ(queue_status(P, "1000", &busy, &total), 3);
	ASSERT_EQ(busy, 1);
	ASSERT_EQ(total, 1);
	for (i = 0; i < 3; i++) {
		char want[8];

		snprintf(want, sizeof want, "%d", i + 1);
		ASSERT_STREQ(
		    event_field(P, "queue_status", j[i], "position"), want);
		ASSERT_STREQ(
		    event_field(P, "queue_status", j[i], "lane"), "normal");
		ASSERT_STREQ(event_field(P, "queue_status", j[i], "busy"), "1");
		ASSERT_STREQ(
		    event_field(P, "queue_status", j[i], "total"), "1");
		ASSERT_STREQ(
		    event_field(P, "queue_status", j[i], "queued"), "3");
	}
	/* Nothing moved: no event. */
	ASSERT_EQ(queue_status(P, "1000", &busy, &total), 0);
	/* The head starts: the others move up, but not twice in a second. */
	r = it_fcall(P, "complete", c0.jid, c0.fence, "[]", NULL);
	freeReplyObject(r);
	it_claim(P, "w1", "gpu0", "30000", &c1);
	ASSERT_STREQ(c1.jid, j[0]);
	ASSERT_EQ(queue_status(P, "1000", &busy, &total), 0);
	it_sleep_ms(1050);
	ASSERT_EQ(queue_status(P, "1000", &busy, &total), 2);
	ASSERT_STREQ(event_field(P, "queue_status", j[1], "position"), "1");
	ASSERT_STREQ(event_field(P, "queue_status", j[2], "position"), "2");
	ASSERT_EQ(it_events(P, "queue_status", NULL), 5);
	ASSERT_EQ(it_events(P, "queue_status", j[0]), 1);
	/* interval 0: no events at all. */
	it_enq(P, SPEC_A);
	ASSERT_EQ(queue_status(P, "0", &busy, &total), 0);
	r = it_fcall(P, "queue_status", "top", "0", NULL);
	ASSERT_ERROR(r, "INVALID top: 0 not in 1..1000");
	freeReplyObject(r);
}

/* The dead entry of jid, or "". */
static const char *
dead_of(const char *P, const char *jid)
{
	return (it_get("HGET %sdead %s", P, jid));
}

/* How many refund entries name jid. */
static int
refunds_of(const char *P, const char *jid)
{
	redisReply *r = it_cmd("XRANGE %srefunds - +", P);
	size_t	    i;
	int	    n = 0;

	for (i = 0; i < r->elements; i++)
		if (strcmp(r->element[i]->element[1]->element[1]->str, jid) ==
		    0)
			n++;
	freeReplyObject(r);
	return (n);
}

/* jid ended failed/internal with one event and one refund. */
static void
assert_buried(
    const char *P, const char *jid, const char *where, const char *why)
{
	char want[256];

	snprintf(want, sizeof want, "\"where\":\"%s\"", where);
	ASSERT_TRUE(strstr(dead_of(P, jid), want) != NULL);
	ASSERT_TRUE(strstr(dead_of(P, jid), why) != NULL);
	ASSERT_STREQ(it_hget(P, jid, "state"), "failed");
	ASSERT_STREQ(it_hget(P, jid, "error_code"), "internal");
	ASSERT_STREQ(it_hget(P, jid, "refund"), "true");
	ASSERT_EQ(it_events(P, "failed", jid), 1);
	ASSERT_EQ(refunds_of(P, jid), 1);
}

static void
test_corrupt_jobs_buried(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	char		  spec[128], jid[64];

	/* In leases, replaced by a string: buried once, slot freed. */
	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "1000", &c);
	freeReplyObject(it_cmd("DEL %sjob:%s", P, c.jid));
	freeReplyObject(it_cmd("SET %sjob:%s garbage", P, c.jid));
	it_sleep_ms(1100);
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(el(r, 0), 0);
	ASSERT_EQ(el(r, 5), 1);
	freeReplyObject(r);
	assert_buried(P, c.jid, "leases", "job record is a string, not a hash");
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(el(r, 5), 0);
	freeReplyObject(r);

	/* At the head of a lane, not a hash: claims fail until it is gone. */
	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_A));
	freeReplyObject(it_cmd("DEL %sjob:%s", P, jid));
	freeReplyObject(it_cmd("SADD %sjob:%s x", P, jid));
	r = it_fcall(P, "claim", "w1", "gpu0", "30000", NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	r = it_fcall(P, "queue_status", NULL);
	ASSERT_EQ(el(r, 3), 1);
	freeReplyObject(r);
	assert_buried(P, jid, "ready:normal", "not a hash");
	it_enq(P, SPEC_A);
	it_claim(P, "w1", "gpu0", "30000", &c);
	freeReplyObject(it_fcall(P, "complete", c.jid, c.fence, "[]", NULL));

	/* Queued without a state. */
	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_A));
	freeReplyObject(it_cmd("HDEL %sjob:%s state", P, jid));
	r = it_fcall(P, "queue_status", NULL);
	ASSERT_EQ(el(r, 3), 1);
	freeReplyObject(r);
	assert_buried(P, jid, "ready:normal", "job record has no state");
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 0);

	/* Delayed, record gone: buried when due. */
	snprintf(spec, sizeof spec, "{\"workflow\":\"a\",\"run_at\":%lld}",
	    clock_wall_ms() + 100);
	snprintf(jid, sizeof jid, "%s", it_enq(P, spec));
	freeReplyObject(it_cmd("DEL %sjob:%s", P, jid));
	it_sleep_ms(150);
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(el(r, 2), 0);
	ASSERT_EQ(el(r, 5), 1);
	freeReplyObject(r);
	assert_buried(P, jid, "delayed", "job record missing");

	/* Active with a state nobody knows: buried at lease end. */
	it_enq(P, SPEC_A);
	it_claim(P, "w1", "gpu0", "1000", &c);
	freeReplyObject(it_cmd("HSET %sjob:%s state zombie", P, c.jid));
	it_sleep_ms(1100);
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(el(r, 5), 1);
	freeReplyObject(r);
	assert_buried(P, c.jid, "leases", "unknown state 'zombie'");
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	ASSERT_EQ(it_int("HLEN %sdead", P), 5);
	ASSERT_EQ(it_stat(P, "janitor:dead"), 5);
	ASSERT_EQ(it_int("XLEN %srefunds", P), 5);
}

/* The active_files reply as "truncated jid=files jid=files..." sorted. */
static const char *
active_files(const char *P, const char *host, const char *limit)
{
	static char buf[1024];
	redisReply *r = it_fcall(P, "active_files", host, limit, NULL);
	char	   *items[16];
	size_t	    i, k, n = 0, off;

	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	for (i = 1; i + 1 < r->elements && n < 16; i += 2)
		items[n++] = xasprintf("%s=%s", it_str(r, i), it_str(r, i + 1));
	off = (size_t)snprintf(buf, sizeof buf, "%s", it_str(r, 0));
	for (i = 0; i < n; i++) {
		for (k = i + 1; k < n; k++) {
			if (strcmp(items[k], items[i]) < 0) {
				char *t = items[i];

				items[i] = items[k];
				items[k] = t;
			}
		}
		off += (size_t)snprintf(
		    buf + off, sizeof buf - off, " %s", items[i]);
		free(items[i]);
	}
	freeReplyObject(r);
	return (buf);
}

static void
test_active_files_and_job_files(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c1, c2, c3;
	redisReply	 *r;
	char		  want[512], many[2048];
	size_t		  off;
	int		  i;

	freeReplyObject(it_fcall(P, "register", "w1", "600000", "gpu0", "1",
	    "0", "host", "h1", NULL));
	freeReplyObject(it_fcall(P, "register", "w2", "600000", "gpu1", "1",
	    "0", "host", "h2", NULL));
	it_setcap(P, "gpu2", "1", "0");
	for (i = 0; i < 3; i++)
		it_enq(P, SPEC_A);
	it_claim(P, "w1", "gpu0", "30000", &c1);
	it_claim(P, "w2", "gpu1", "30000", &c2);
	it_claim(P, "w3", "gpu2", "30000", &c3); /* w3 never registered */

	r = it_fcall(
	    P, "job_files", c1.jid, c1.fence, "[\"input/faces/a.png\"]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	r = it_fcall(P, "job_files", c1.jid, "999", "[]", NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
	{
		static const char *const bad[] = { "[\"../x\"]",
			"[\"input/../x\"]", "[\"input/./x\"]",
			"[\"models/x.bin\"]", "[\"/etc/passwd\"]",
			"[\"input//x\"]", "[\"input/\"]", "[1]" };

		for (i = 0; i < 8; i++) {
			r = it_fcall(
			    P, "job_files", c1.jid, c1.fence, bad[i], NULL);
			ASSERT_ERROR(r,
			    "INVALID files[0]: expected output|temp|input/"
			    "<relative path> without . or .. parts");
			freeReplyObject(r);
		}
	}
	r = it_fcall(P, "job_files", c1.jid, c1.fence, "{\"a\":1}", NULL);
	ASSERT_ERROR(
	    r, "INVALID files: must be a JSON array of up to 64 paths");
	freeReplyObject(r);
	off = (size_t)snprintf(many, sizeof many, "[");
	for (i = 0; i < 65; i++)
		off += (size_t)snprintf(many + off, sizeof many - off,
		    "%s\"temp/%d\"", i ? "," : "", i);
	snprintf(many + off, sizeof many - off, "]");
	r = it_fcall(P, "job_files", c1.jid, c1.fence, many, NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);

	/* Every host: all three. */
	{
		const char *ids[3] = { c1.jid, c2.jid, c3.jid };
		const char *files[3] = { "[\"input/faces/a.png\"]", "", "" };
		char	   *items[3], *t;
		int	    k;

		for (i = 0; i < 3; i++)
			items[i] = xasprintf("%s=%s", ids[i], files[i]);
		for (i = 0; i < 3; i++)
			for (k = i + 1; k < 3; k++)
				if (strcmp(items[k], items[i]) < 0) {
					t = items[i];
					items[i] = items[k];
					items[k] = t;
				}
		snprintf(want, sizeof want, "0 %s %s %s", items[0], items[1],
		    items[2]);
		for (i = 0; i < 3; i++)
			free(items[i]);
	}
	ASSERT_STREQ(active_files(P, "", "100"), want);
	/* Host h1: w1's job, and w3's (no record says where it runs). */
	ASSERT_TRUE(strstr(active_files(P, "h1", "100"), c1.jid) != NULL);
	ASSERT_TRUE(strstr(active_files(P, "h1", "100"), c3.jid) != NULL);
	ASSERT_TRUE(strstr(active_files(P, "h1", "100"), c2.jid) == NULL);
	ASSERT_TRUE(strstr(active_files(P, "h2", "100"), c1.jid) == NULL);
	/* More active jobs than the limit: said so. */
	ASSERT_EQ(active_files(P, "", "2")[0], '1');
	/* A finished job is no longer listed. */
	freeReplyObject(it_fcall(P, "complete", c1.jid, c1.fence, "[]", NULL));
	ASSERT_TRUE(strstr(active_files(P, "", "100"), c1.jid) == NULL);
	r = it_fcall(P, "active_files", "bad host", NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

static void
test_reap_slots_bounded_by_cursor(void)
{
	const char *P = it_queue("q");
	const char *pools[] = { "p1", "p2", "p3" };
	redisReply *r;
	int	    i;

	for (i = 0; i < 3; i++) {
		it_setcap(P, pools[i], "1", "0");
		freeReplyObject(it_cmd("HSET %sheld:%s nosuchjob%d %s", P,
		    pools[i], i, "w1 1 9999999999999 0"));
	}
	/* One holder a call: each call frees the next pool's orphan. */
	for (i = 0; i < 3; i++) {
		r = it_fcall(P, "reap", "batch", "1", NULL);
		ASSERT_EQ(el(r, 3), 1);
		freeReplyObject(r);
		ASSERT_EQ(it_int("HLEN %sheld:%s", P, pools[i]), 0);
		if (i < 2)
			ASSERT_EQ(it_int("HLEN %sheld:%s", P, pools[i + 1]), 1);
	}
	r = it_fcall(P, "reap", "batch", "1", NULL);
	ASSERT_EQ(el(r, 3), 0);
	freeReplyObject(r);
	ASSERT_EQ(it_stat(P, "janitor:slots_freed"), 3);
	r = it_fcall(P, "reap", "batch", "0", NULL);
	ASSERT_ERROR(r, "INVALID batch: must be at least 1");
	freeReplyObject(r);
}

static void
test_stall_guard_counts(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;

	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	freeReplyObject(it_fcall(P, "reap", "stall_ms", "300", NULL));
	it_claim(P, "w1", "gpu0", "1000", &c);
	it_sleep_ms(1100);
	r = it_fcall(P, "reap", "stall_ms", "300", "grace_ms", "600", NULL);
	ASSERT_EQ(el(r, 4), 1);
	freeReplyObject(r);
	/* A heartbeat in the grace period keeps the job. */
	r = it_fcall(
	    P, "heartbeat", "w1", "5000", "60000", c.jid, c.fence, NULL);
	ASSERT_EQ(r->element[0]->elements, 0);
	freeReplyObject(r);
	it_sleep_ms(700);
	r = it_fcall(P, "reap", "stall_ms", "5000", "grace_ms", "600", NULL);
	ASSERT_EQ(el(r, 0), 0);
	ASSERT_EQ(el(r, 4), 0);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "active");
	ASSERT_EQ(it_stat(P, "janitor:stall_holds"), 1);
}

/* The id and a field of the terminal event of jid; "" when none. */
static void
terminal_event(const char *P, const char *jid, const char *field, char *id,
    size_t idlen, char *val, size_t vallen)
{
	redisReply *r = it_cmd("XRANGE %sevents - +", P), *f;
	size_t	    i, k;

	*id = *val = '\0';
	for (i = 0; i < r->elements; i++) {
		const char *t = "", *j = "", *v = "";

		f = r->element[i]->element[1];
		for (k = 0; k + 1 < f->elements; k += 2) {
			if (strcmp(f->element[k]->str, "type") == 0)
				t = f->element[k + 1]->str;
			else if (strcmp(f->element[k]->str, "job") == 0)
				j = f->element[k + 1]->str;
			if (strcmp(f->element[k]->str, field) == 0)
				v = f->element[k + 1]->str;
		}
		if (strcmp(j, jid) == 0 &&
		    (strcmp(t, "succeeded") == 0 || strcmp(t, "failed") == 0 ||
			strcmp(t, "canceled") == 0)) {
			snprintf(
			    id, idlen, "%s", r->element[i]->element[0]->str);
			snprintf(val, vallen, "%s", v);
		}
	}
	freeReplyObject(r);
}

/* The job record names its terminal event and says what it said. */
static void
assert_end_recorded(const char *P, const char *jid)
{
	static const char *const fields[] = { "state", "error_code", "error",
		"refund", "outputs", "tenant", "attempt" };
	char			 id[64], val[512];
	size_t			 i;

	for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		terminal_event(
		    P, jid, fields[i], id, sizeof id, val, sizeof val);
		ASSERT_TRUE(*id != '\0');
		ASSERT_STREQ(it_hget(P, jid, "end_id"), id);
		if (*val != '\0')
			ASSERT_STREQ(it_hget(P, jid, fields[i]), val);
	}
}

static void
test_terminal_event_kept_in_record(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	char		  q[64], jids[4][64];
	int		  i;

	it_setcap(P, "gpu0", "4", "0");
	for (i = 0; i < 3; i++)
		it_enq(P, "{\"workflow\":\"a\",\"tenant\":\"t\"}");
	snprintf(q, sizeof q, "%s", it_enq(P, SPEC_A));
	it_claim(P, "w1", "gpu0", "30000", &c);
	snprintf(jids[0], sizeof jids[0], "%s", c.jid);
	freeReplyObject(it_fcall(P, "complete", c.jid, c.fence,
	    "[{\"path\":\"/o/a.png\",\"mime\":\"image/png\"}]", NULL));
	it_claim(P, "w1", "gpu0", "30000", &c);
	snprintf(jids[1], sizeof jids[1], "%s", c.jid);
	freeReplyObject(it_fcall(
	    P, "fail", c.jid, c.fence, "no_face", "no face found", "0", NULL));
	it_claim(P, "w1", "gpu0", "30000", &c);
	snprintf(jids[2], sizeof jids[2], "%s", c.jid);
	freeReplyObject(it_fcall(P, "cancel", c.jid, NULL));
	freeReplyObject(it_fcall(
	    P, "fail", c.jid, c.fence, "canceled", "interrupted", "0", NULL));
	freeReplyObject(it_fcall(P, "cancel", q, NULL));
	snprintf(jids[3], sizeof jids[3], "%s", q);
	for (i = 0; i < 4; i++)
		assert_end_recorded(P, jids[i]);
	/* A flood pushes the terminal events out of the trimmed stream; the
	 * records still say how each job ended and which event it was. */
	{
		char key[256];

		snprintf(key, sizeof key, "%sevents", P);
		for (i = 0; i < 5; i++)
			xadd_many(key, 1000, 0);
	}
	r = it_fcall(
	    P, "trim", "events_maxlen", "1000", "events_max_age_ms", "0", NULL);
	freeReplyObject(r);
	ASSERT_EQ(it_events(P, "succeeded", jids[0]), 0);
	ASSERT_STREQ(it_hget(P, jids[0], "state"), "succeeded");
	ASSERT_STREQ(it_hget(P, jids[1], "error_code"), "no_face");
	ASSERT_STREQ(it_hget(P, jids[2], "state"), "canceled");
	ASSERT_TRUE(*it_hget(P, jids[3], "end_id") != '\0');
}

static long long
trim_events(const char *P, const char *maxlen, const char *age_ms, char *floor,
    size_t len)
{
	return (trim_run(P, maxlen, age_ms, "604800000", 0, floor, len));
}

static void
test_trim_events_honours_groups(void)
{
	const char     *P = it_queue("q");
	const long long node = node_entries();
	redisReply     *r;
	char		key[256], id300[64], id0[64], floor[64];
	long long	len;

	snprintf(key, sizeof key, "%sevents", P);
	xadd_many(key, 2000, 0);
	refund_id(key, 0, id0, sizeof id0);
	refund_id(key, 300, id300, sizeof id300);
	/* A group that has 500 pending: nothing at or above the oldest goes,
	 * whatever the length cap. */
	freeReplyObject(it_cmd("XGROUP CREATE %s bot 0", key));
	read_group(key, "bot", 500);
	ASSERT_EQ(trim_events(P, "100", "0", floor, sizeof floor), 0);
	ASSERT_STREQ(floor, id0);
	ASSERT_EQ(it_int("XLEN %s", key), 2000);
	/* 300 acknowledged: those may go, nothing from the floor on. */
	ack_first(key, "bot", 300);
	trim_events(P, "100", "0", floor, sizeof floor);
	ASSERT_STREQ(floor, id300);
	r = it_cmd("XRANGE %s %s +", key, id300);
	ASSERT_EQ(r->elements, 1700);
	freeReplyObject(r);
	ASSERT_TRUE(it_int("XLEN %s", key) <= 2000 - 300 + node &&
	    it_int("XLEN %s", key) < 2000);
	/* Everything read and acknowledged: the length cap as without a
	 * group, never below it. */
	read_group(key, "bot", 2000);
	ack_first(key, "bot", 2000);
	trim_events(P, "1500", "0", floor, sizeof floor);
	len = it_int("XLEN %s", key);
	ASSERT_TRUE(len >= 1500 && len < 1500 + node);
	/* By age: a second group that read nothing keeps even old entries. */
	P = it_queue("q");
	snprintf(key, sizeof key, "%sevents", P);
	xadd_many(key, 500, clock_wall_ms() - 7200000);
	xadd_many(key, 50, 0);
	freeReplyObject(it_cmd("XGROUP CREATE %s bot 0", key));
	ASSERT_EQ(trim_events(P, "0", "3600000", floor, sizeof floor), 0);
	ASSERT_EQ(it_int("XLEN %s", key), 550);
	read_group(key, "bot", 250);
	ack_first(key, "bot", 250);
	trim_events(P, "0", "3600000", floor, sizeof floor);
	len = it_int("XLEN %s", key);
	ASSERT_TRUE(len >= 300 && len < 300 + node);
	/* Without a group, as before: the old entries go. */
	freeReplyObject(it_cmd("XGROUP DESTROY %s bot", key));
	trim_events(P, "0", "3600000", floor, sizeof floor);
	ASSERT_STREQ(floor, "");
	len = it_int("XLEN %s", key);
	ASSERT_TRUE(len >= 50 && len < 50 + node);
}

static void
test_group_keeps_unread_terminal_event(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	char		  key[256], floor[64];

	snprintf(key, sizeof key, "%sevents", P);
	freeReplyObject(it_cmd("XGROUP CREATE %s bot $ MKSTREAM", key));
	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	freeReplyObject(it_fcall(P, "complete", c.jid, c.fence, "[]", NULL));
	/* A progress flood of other jobs; the bot has read nothing. */
	xadd_many(key, 3000, 0);
	trim_events(P, "100", "0", floor, sizeof floor);
	ASSERT_EQ(it_events(P, "succeeded", c.jid), 1);
	ASSERT_EQ(it_int("XLEN %s", key), 3003);
}

/* Lets jid's lease run out (lease_ms after the last claim or renewal) and
 * reaps; returns reap's reply. */
static redisReply *
expire_and_reap(const char *P, const char *jid)
{
	long long until = atoll(it_hget(P, jid, "lease_until"));

	while (clock_wall_ms() <= until + 5)
		it_sleep_ms(20);
	return (it_fcall(P, "reap", NULL));
}

static void
test_poison_job_ends_after_two_crashes(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	char		  jid[64], other[64];

	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_A));
	it_setcap(P, "gpu0", "1", "0");
	/* Claimed, and the worker dies before its first heartbeat. */
	it_claim(P, "w1", "gpu0", "1000", &c);
	ASSERT_STREQ(it_hget(P, jid, "renewed"), "0");
	r = expire_and_reap(P, jid);
	ASSERT_EQ(el(r, 0), 1);
	ASSERT_EQ(el(r, 1), 0);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, jid, "state"), "queued");
	ASSERT_STREQ(it_hget(P, jid, "crashes"), "1");
	/* The next worker too: it is not handed to a third. */
	it_claim(P, "w2", "gpu0", "1000", &c);
	ASSERT_STREQ(c.jid, jid);
	snprintf(other, sizeof other, "%s", it_enq(P, SPEC_A));
	r = expire_and_reap(P, jid);
	ASSERT_EQ(el(r, 0), 0);
	ASSERT_EQ(el(r, 1), 1);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, jid, "state"), "failed");
	ASSERT_STREQ(it_hget(P, jid, "error_code"), "internal");
	ASSERT_STREQ(it_hget(P, jid, "error"),
	    "lease lost twice right after claim, with no heartbeat: the job "
	    "may crash workers");
	ASSERT_EQ(it_events(P, "failed", jid), 1);
	ASSERT_EQ(
	    it_events(P, "succeeded", jid) + it_events(P, "canceled", jid), 0);
	ASSERT_EQ(refunds_of(P, jid), 1);
	ASSERT_STREQ(event_field(P, "failed", jid, "error_code"), "internal");
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	ASSERT_EQ(it_stat(P, "janitor:poison"), 1);
	assert_end_recorded(P, jid);
	/* The slot went to the next job. */
	it_claim(P, "w3", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, other);
	/* Reaped again: nothing more. */
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(el(r, 1), 0);
	freeReplyObject(r);
	ASSERT_EQ(refunds_of(P, jid), 1);
}

static void
test_renewed_lease_lost_is_requeued(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	char		  jid[64];
	int		  i;

	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_A));
	it_setcap(P, "gpu0", "1", "0");
	/* A crash right after the claim, then two losses after a renewal: a
	 * partition or a kill mid-job, requeued as always. */
	it_claim(P, "w1", "gpu0", "1000", &c);
	r = expire_and_reap(P, jid);
	ASSERT_EQ(el(r, 0), 1);
	freeReplyObject(r);
	for (i = 0; i < 2; i++) {
		it_claim(P, "w2", "gpu0", "1000", &c);
		r = it_fcall(P, "heartbeat", "w2", "1000", "60000", c.jid,
		    c.fence, NULL);
		ASSERT_EQ(r->element[0]->elements, 0);
		freeReplyObject(r);
		ASSERT_STREQ(it_hget(P, jid, "renewed"), "1");
		r = expire_and_reap(P, jid);
		ASSERT_EQ(el(r, 0), 1);
		ASSERT_EQ(el(r, 1), 0);
		freeReplyObject(r);
		ASSERT_STREQ(it_hget(P, jid, "state"), "queued");
	}
	ASSERT_STREQ(it_hget(P, jid, "crashes"), "1");
	ASSERT_STREQ(it_hget(P, jid, "reclaims"), "3");
	ASSERT_EQ(it_events(P, "requeued", jid), 3);
	ASSERT_EQ(refunds_of(P, jid), 0);
	/* crash_losses 0 turns the guard off. */
	it_claim(P, "w1", "gpu0", "1000", &c);
	{
		long long until = atoll(it_hget(P, jid, "lease_until"));

		while (clock_wall_ms() <= until + 5)
			it_sleep_ms(20);
	}
	r = it_fcall(
	    P, "reap", "crash_losses", "0", "max_reclaims", "10", NULL);
	ASSERT_EQ(el(r, 0), 1);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, jid, "crashes"), "2");
	ASSERT_STREQ(it_hget(P, jid, "state"), "queued");
}

const struct unit_test itests[] = {
	{ "capacity_change_next_claim", test_capacity_change_next_claim },
	{ "trim_events_length_and_age", test_trim_events_length_and_age },
	{ "trim_refunds_keeps_unacknowledged",
	    test_trim_refunds_keeps_unacknowledged },
	{ "expire_terminal_records", test_expire_terminal_records },
	{ "workers_gone_once_and_back", test_workers_gone_once_and_back },
	{ "queue_status_positions_throttled",
	    test_queue_status_positions_throttled },
	{ "corrupt_jobs_buried", test_corrupt_jobs_buried },
	{ "active_files_and_job_files", test_active_files_and_job_files },
	{ "reap_slots_bounded_by_cursor", test_reap_slots_bounded_by_cursor },
	{ "stall_guard_counts", test_stall_guard_counts },
	{ "poison_job_ends_after_two_crashes",
	    test_poison_job_ends_after_two_crashes },
	{ "renewed_lease_lost_is_requeued",
	    test_renewed_lease_lost_is_requeued },
	{ "terminal_event_kept_in_record", test_terminal_event_kept_in_record },
	{ "trim_events_honours_groups", test_trim_events_honours_groups },
	{ "group_keeps_unread_terminal_event",
	    test_group_keeps_unread_terminal_event },
	{ NULL, NULL },
};
