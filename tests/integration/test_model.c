/*
 * Model-aware claiming against a real redis-server (lua/claim.lua, the
 * model sets of lib.lua): the job's checkpoint key at enqueue, the claim
 * that prefers the worker's checkpoint, its two bounds (max_lead rounds
 * of fair order, max_wait_ms of ready time), lanes before checkpoints,
 * fair order untouched without a model, and model sets that follow every
 * way a job leaves or re-enters its lane.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

#define CKPT_X "x.safetensors"
#define CKPT_Y "y.safetensors"

/* A raw graph spec loading ckpt for tenant (extra: more members, or ""). */
static const char *
spec(const char *ckpt, const char *tenant, const char *extra)
{
	static char buf[1024];

	snprintf(buf, sizeof buf,
	    "{\"graph\":{\"1\":{\"class_type\":\"CheckpointLoaderSimple\","
	    "\"inputs\":{\"ckpt_name\":\"%s\"}}},\"tenant\":\"%s\"%s}",
	    ckpt, tenant, extra);
	return (buf);
}

/* The model set of lane for model (lib.lua model_key). */
static const char *
mkey(const char *P, const char *lane, const char *model)
{
	static char buf[512];
	char	    h[64];

	snprintf(h, sizeof h, "%s",
	    it_get("EVAL %s 0 %s",
		"return string.sub(redis.sha1hex(ARGV[1]), 1, 16)", model));
	snprintf(buf, sizeof buf, "%sready:%s:m:%s", P, lane, h);
	return (buf);
}

/* How many model sets queue P has. */
static int
msets(const char *P)
{
	redisReply *r = it_cmd("KEYS %sready:*:m:*", P);
	int	    n = (int)r->elements;

	freeReplyObject(r);
	return (n);
}

/* Claims for a worker holding model (NULL: a claim without one) with the
 * bounds; returns the job id claimed, or the reply's tag. */
static const char *
claim(const char *P, const char *model, const char *wait, const char *lead)
{
	static char buf[64];
	redisReply *r;

	if (model == NULL)
		r = it_fcall(
		    P, "claim", "w1", "gpu0", "30000", "16", "0", NULL);
	else
		r = it_fcall(P, "claim", "w1", "gpu0", "30000", "16", "0",
		    model, wait, lead, NULL);
	if (r->type != REDIS_REPLY_ARRAY)
		unit_fail(
		    __FILE__, __LINE__, "claim: %s", r->str ? r->str : "?");
	snprintf(buf, sizeof buf, "%s",
	    strcmp(it_str(r, 0), "job") == 0 ? it_str(r, 1) : it_str(r, 0));
	if (strcmp(it_str(r, 0), "job") == 0) {
		ASSERT_EQ(r->elements, 9);
		ASSERT_STREQ(it_str(r, 8), it_hget(P, buf, "model"));
	}
	freeReplyObject(r);
	return (buf);
}

static void
test_enqueue_model_key(void)
{
	const char *P = it_queue("q");
	char	    j[64], score[32];
	redisReply *r;

	/* Every ckpt_name string of a raw graph, distinct, sorted bytewise
	 * (not by locale: 'B' before 'a'), joined with ','. */
	snprintf(j, sizeof j, "%s",
	    it_enq(P,
		"{\"graph\":{\"1\":{\"class_type\":\"CheckpointLoaderSimple\","
		"\"inputs\":{\"ckpt_name\":\"b.st\"}},\"2\":{\"class_type\":"
		"\"ImageOnlyCheckpointLoader\",\"inputs\":{\"ckpt_name\":"
		"\"a.st\"}},\"3\":{\"class_type\":\"CheckpointLoader\","
		"\"inputs\":{\"ckpt_name\":\"b.st\"}},\"4\":{\"class_type\":"
		"\"X\",\"inputs\":{\"ckpt_name\":\"B.st\"}},\"5\":{"
		"\"class_type\":\"Y\",\"inputs\":{\"ckpt_name\":[\"1\",0]}}}}"));
	ASSERT_STREQ(it_hget(P, j, "model"), "B.st,a.st,b.st");
	snprintf(score, sizeof score, "%s",
	    it_get("ZSCORE %s %s", mkey(P, "normal", "B.st,a.st,b.st"), j));
	ASSERT_STREQ(score, it_get("ZSCORE %sready:normal %s", P, j));
	ASSERT_STREQ(it_hget(P, j, "ready_ms"), it_hget(P, j, "created_ms"));

	/* A template: known only where it is; the option gives the key. */
	snprintf(j, sizeof j, "%s",
	    it_enq(P, "{\"workflow\":\"sdxl_txt2img\",\"priority\":\"high\"}"));
	ASSERT_STREQ(it_hget(P, j, "model"), "");
	ASSERT_EQ(msets(P), 1);
	r = it_fcall(P, "enqueue", "{\"workflow\":\"t\",\"priority\":\"low\"}",
	    "model", CKPT_X, NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	snprintf(j, sizeof j, "%s", it_str(r, 0));
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, j, "model"), CKPT_X);
	ASSERT_EQ(it_int("ZCARD %s", mkey(P, "low", CKPT_X)), 1);
	/* The option wins over a raw graph's own. */
	r = it_fcall(
	    P, "enqueue", spec(CKPT_Y, "a", ""), "model", CKPT_X, NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	ASSERT_STREQ(it_hget(P, it_str(r, 0), "model"), CKPT_X);
	freeReplyObject(r);

	r = it_fcall(
	    P, "enqueue", "{\"workflow\":\"t\"}", "model", "a\nb", NULL);
	ASSERT_ERROR(r,
	    "INVALID option model: at most 1024 bytes without control "
	    "characters");
	freeReplyObject(r);
	/* A delayed job is in no set until it is due. */
	r = it_fcall(
	    P, "enqueue", spec(CKPT_Y, "a", ",\"run_at\":4102444800000"), NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	freeReplyObject(r);
	ASSERT_EQ(it_int("EXISTS %s", mkey(P, "normal", CKPT_Y)), 0);
}

static void
test_claim_prefers_loaded(void)
{
	const char *P = it_queue("q");
	char	    y[64], x[64], h[64];

	it_setcap(P, "gpu0", "10", NULL);
	snprintf(y, sizeof y, "%s", it_enq(P, spec(CKPT_Y, "a", "")));
	snprintf(x, sizeof x, "%s", it_enq(P, spec(CKPT_X, "a", "")));
	/* The older job loads another checkpoint: the matching one first. */
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), x);
	ASSERT_EQ(it_stat(P, "model_preferred"), 1);
	ASSERT_EQ(it_int("EXISTS %s", mkey(P, "normal", CKPT_X)), 0);
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 1);
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), y);
	ASSERT_EQ(it_stat(P, "model_preferred"), 1);
	ASSERT_EQ(it_int("EXISTS %s", mkey(P, "normal", CKPT_Y)), 0);

	/* Lanes first: a high job of another checkpoint beats a normal one
	 * of the worker's. */
	snprintf(x, sizeof x, "%s", it_enq(P, spec(CKPT_X, "a", "")));
	snprintf(h, sizeof h, "%s",
	    it_enq(P, spec(CKPT_Y, "a", ",\"priority\":\"high\"")));
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), h);
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), x);
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), "nojob");
}

static void
test_claim_aging(void)
{
	const char *P = it_queue("q");
	char	    y[64], x[64];

	it_setcap(P, "gpu0", "4", NULL);
	snprintf(y, sizeof y, "%s", it_enq(P, spec(CKPT_Y, "a", "")));
	it_sleep_ms(300);
	snprintf(x, sizeof x, "%s", it_enq(P, spec(CKPT_X, "a", "")));
	ASSERT_TRUE(atoll(it_hget(P, x, "ready_ms")) -
		atoll(it_hget(P, y, "ready_ms")) >=
	    300);
	/* y came more than 200 ms before x: x may not pass it over. */
	ASSERT_STREQ(claim(P, CKPT_X, "200", "32"), y);
	ASSERT_STREQ(claim(P, CKPT_X, "200", "32"), x);
	ASSERT_EQ(it_stat(P, "model_preferred"), 0);

	/* With 10 s the same two go the other way round. */
	P = it_queue("q2");
	it_setcap(P, "gpu0", "4", NULL);
	snprintf(y, sizeof y, "%s", it_enq(P, spec(CKPT_Y, "a", "")));
	it_sleep_ms(300);
	snprintf(x, sizeof x, "%s", it_enq(P, spec(CKPT_X, "a", "")));
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), x);
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), y);
}

/*
 * Tenant a queues 8 jobs of checkpoint x, then tenant b 4 of y: fair order
 * interleaves them a1 b1 a2 b2 ... a4 b4 a5..a8 (rounds 1..8). Returns the
 * claim sequence as letters and numbers ("a1 b1 ...") for a worker holding
 * model (NULL: none) with lead.
 */
static const char *
fair_sequence(const char *model, const char *lead)
{
	static char seq[256];
	const char *P = it_queue("fair");
	char	    ids[12][64], name[12][4];
	const char *got;
	int	    i, k;

	it_setcap(P, "gpu0", "100", NULL);
	for (i = 0; i < 12; i++) {
		snprintf(ids[i], sizeof ids[i], "%s",
		    it_enq(P,
			spec(i < 8 ? CKPT_X : CKPT_Y, i < 8 ? "a" : "b", "")));
		snprintf(name[i], sizeof name[i], "%c%d", i < 8 ? 'a' : 'b',
		    i < 8 ? i + 1 : i - 7);
	}
	seq[0] = '\0';
	for (i = 0; i < 12; i++) {
		got = claim(P, model, "10000", lead);
		for (k = 0; k < 12 && strcmp(ids[k], got) != 0; k++)
			;
		if (k == 12)
			unit_fail(__FILE__, __LINE__, "claimed %s", got);
		snprintf(seq + strlen(seq), sizeof seq - strlen(seq), "%s%s",
		    i ? " " : "", name[k]);
	}
	ASSERT_STREQ(claim(P, model, "10000", lead), "nojob");
	return (seq);
}

static void
test_claim_fairness(void)
{
	/*
	 * What holds: while a job waits at the head of its lane, a worker's
	 * preference takes no job more than max_lead rounds past it, so each
	 * other tenant gets at most max_lead of its jobs ahead of it (here
	 * 2: a2 a3 before b1, then one a per b, never a third).
	 */
	ASSERT_STREQ(
	    fair_sequence(CKPT_X, "2"), "a1 a2 a3 b1 a4 b2 a5 b3 a6 b4 a7 a8");
	ASSERT_STREQ(
	    fair_sequence(CKPT_Y, "2"), "b1 b2 b3 a1 b4 a2 a3 a4 a5 a6 a7 a8");
	/* Lead 0: only a job of the same round may go first. */
	ASSERT_STREQ(
	    fair_sequence(CKPT_Y, "0"), "b1 a1 b2 a2 b3 a3 b4 a4 a5 a6 a7 a8");
	/* Without a model (model-aware off): exactly fair order. */
	ASSERT_STREQ(
	    fair_sequence(NULL, NULL), "a1 b1 a2 b2 a3 b3 a4 b4 a5 a6 a7 a8");
	ASSERT_STREQ(
	    fair_sequence("", "0"), "a1 b1 a2 b2 a3 b3 a4 b4 a5 a6 a7 a8");
}

/* Whether jid is in lane's model set of model (ZSCORE). */
static int
in_set(const char *P, const char *model, const char *jid)
{
	redisReply *r = it_cmd("ZSCORE %s %s", mkey(P, "normal", model), jid);
	int	    in = r->type == REDIS_REPLY_STRING;

	freeReplyObject(r);
	return (in);
}

static void
test_model_sets_follow_removals(void)
{
	const char *P = it_queue("q");
	char	    j[4][64], fence[32];
	redisReply *r;
	int	    i;

	it_setcap(P, "gpu0", "4", NULL);
	for (i = 0; i < 4; i++)
		snprintf(
		    j[i], sizeof j[i], "%s", it_enq(P, spec(CKPT_X, "a", "")));
	/* cancel while queued */
	freeReplyObject(it_fcall(P, "cancel", j[0], NULL));
	ASSERT_TRUE(!in_set(P, CKPT_X, j[0]));
	/* claim; a lease that runs out puts it back, at its old order */
	r = it_fcall(P, "claim", "w1", "gpu0", "1000", "16", "0", NULL);
	ASSERT_STREQ(it_str(r, 1), j[1]);
	freeReplyObject(r);
	ASSERT_TRUE(!in_set(P, CKPT_X, j[1]));
	it_sleep_ms(1100);
	freeReplyObject(it_fcall(P, "reap", NULL));
	ASSERT_STREQ(it_hget(P, j[1], "state"), "queued");
	ASSERT_TRUE(in_set(P, CKPT_X, j[1]));
	snprintf(fence, sizeof fence, "%s",
	    it_get("ZSCORE %s %s", mkey(P, "normal", CKPT_X), j[1]));
	ASSERT_STREQ(fence, it_hget(P, j[1], "lane_order"));
	/* release (a draining worker) puts it back too */
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), j[1]);
	snprintf(fence, sizeof fence, "%s", it_hget(P, j[1], "fence"));
	r = it_fcall(P, "release", j[1], fence, NULL);
	ASSERT_STREQ(it_str(r, 0), "queued");
	freeReplyObject(r);
	ASSERT_TRUE(in_set(P, CKPT_X, j[1]));
	/* a retry is in no set while delayed, back once due */
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), j[1]);
	snprintf(fence, sizeof fence, "%s", it_hget(P, j[1], "fence"));
	r = it_fcall(
	    P, "fail", j[1], fence, "oom", "m", "1", "1", "1", "0", NULL);
	ASSERT_STREQ(it_str(r, 0), "delayed");
	freeReplyObject(r);
	ASSERT_TRUE(!in_set(P, CKPT_X, j[1]));
	it_sleep_ms(20);
	freeReplyObject(it_fcall(P, "reap", NULL));
	ASSERT_STREQ(it_hget(P, j[1], "state"), "queued");
	ASSERT_TRUE(in_set(P, CKPT_X, j[1]));
	/* a corrupt record at the lane's head is buried out of both */
	freeReplyObject(it_cmd("HSET %sjob:%s state bogus", P, j[1]));
	freeReplyObject(it_fcall(P, "queue_status", NULL));
	ASSERT_STREQ(it_hget(P, j[1], "state"), "failed");
	ASSERT_TRUE(!in_set(P, CKPT_X, j[1]));
	/* the rest run to their end; expire leaves no member behind */
	for (i = 2; i < 4; i++) {
		ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), j[i]);
		snprintf(fence, sizeof fence, "%s", it_hget(P, j[i], "fence"));
		r = it_fcall(P, "complete", j[i], fence, "[]", NULL);
		ASSERT_STATUS(r, "OK");
		freeReplyObject(r);
	}
	it_sleep_ms(5);
	r = it_fcall(P, "expire", "retention_ms", "1", NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	ASSERT_EQ(r->element[0]->integer, 4);
	freeReplyObject(r);
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 0);
	ASSERT_EQ(msets(P), 0);
}

static void
test_model_set_hints(void)
{
	const char *P = it_queue("q");
	char	    y[64], x[64];

	it_setcap(P, "gpu0", "4", NULL);
	/* A member that is no longer queued there is dropped at claim. */
	snprintf(y, sizeof y, "%s", it_enq(P, spec(CKPT_Y, "a", "")));
	freeReplyObject(it_cmd("ZADD %s 0 ghost", mkey(P, "normal", CKPT_X)));
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), y);
	ASSERT_EQ(it_int("EXISTS %s", mkey(P, "normal", CKPT_X)), 0);
	/* A model set of another type is skipped, never CORRUPT. */
	freeReplyObject(it_cmd("SET %s junk", mkey(P, "normal", CKPT_X)));
	snprintf(y, sizeof y, "%s", it_enq(P, spec(CKPT_Y, "a", "")));
	snprintf(x, sizeof x, "%s", it_enq(P, spec(CKPT_X, "a", "")));
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), y);
	ASSERT_STREQ(claim(P, CKPT_X, "10000", "32"), x);
	ASSERT_STREQ(it_get("GET %s", mkey(P, "normal", CKPT_X)), "junk");
	/* Bounds are checked. */
	{
		redisReply *r = it_fcall(P, "claim", "w1", "gpu0", "30000",
		    "16", "0", CKPT_X, "-1", "32", NULL);

		ASSERT_ERROR(
		    r, "INVALID max_wait_ms: -1 not an integer in 0..86400000");
		freeReplyObject(r);
	}
}

const struct unit_test itests[] = {
	{ "enqueue_model_key", test_enqueue_model_key },
	{ "claim_prefers_loaded", test_claim_prefers_loaded },
	{ "claim_aging", test_claim_aging },
	{ "claim_fairness", test_claim_fairness },
	{ "model_sets_follow_removals", test_model_sets_follow_removals },
	{ "model_set_hints", test_model_set_hints },
	{ NULL, NULL },
};
