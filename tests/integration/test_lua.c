/*
 * The functions library, call by call, against a real redis-server: every
 * function, every state transition and every guard, asserted on what Redis
 * holds afterwards (states, sets, events, refunds, slot holders).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "rq.h"
#include "util.h"

#define SPEC_A "{\"workflow\":\"smoke\",\"tenant\":\"a\"}"

static void
test_enqueue_basic(void)
{
	const char *P = it_queue("q");
	const char *jid = it_enq(P, SPEC_A);

	ASSERT_EQ(strlen(jid), 28);
	ASSERT_STREQ(it_hget(P, jid, "state"), "queued");
	ASSERT_STREQ(it_hget(P, jid, "tenant"), "a");
	ASSERT_STREQ(it_hget(P, jid, "priority"), "normal");
	ASSERT_STREQ(it_hget(P, jid, "max_attempts"), "3");
	ASSERT_STREQ(it_hget(P, jid, "spec"), SPEC_A);
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 1);
	ASSERT_EQ(it_events(P, "queued", jid), 1);
	{
		redisReply *r = it_cmd("HGET %sstats enqueued", P);

		ASSERT_STREQ(r->str, "1");
		freeReplyObject(r);
	}
}

/* Enqueues spec[0..len) as it is, every byte, on the queue prefix P. */
static redisReply *
corpus_enqueue(const char *P, const char *spec, size_t len)
{
	struct rq_cmd c;
	redisReply   *r;

	rq_cmd_fcall(&c, "enqueue", P);
	rq_cmd_addb(&c, spec, len);
	r = rq_run(it_redis(), &c);
	rq_cmd_free(&c);
	if (r == NULL)
		unit_fail(__FILE__, __LINE__, "redis: %s", it_redis()->errstr);
	return (r);
}

static void
corpus_bad(const char *want, const char *spec, size_t len, void *arg)
{
	redisReply *r = corpus_enqueue(arg, spec, len);
	char	    w[600];

	snprintf(w, sizeof w, "INVALID %s", want);
	ASSERT_ERROR(r, w);
	freeReplyObject(r);
}

static void
corpus_good(const char *want, const char *spec, size_t len, void *arg)
{
	redisReply *r = corpus_enqueue(arg, spec, len);

	(void)want;
	if (r->type != REDIS_REPLY_ARRAY)
		unit_fail(__FILE__, __LINE__, "refused %s: %s", spec,
		    r->str ? r->str : "?");
	freeReplyObject(r);
}

/* Whether s is n characters of set. */
static int
all_of(const char *s, size_t n, const char *set)
{
	return (strlen(s) == n && strspn(s, set) == n);
}

static void
test_job_ids(void)
{
	char P[256], Q[256], a[64], b[64], c[64], secret[64];

	snprintf(P, sizeof P, "%s", it_queue("q"));
	snprintf(Q, sizeof Q, "%s", it_queue("q"));

	snprintf(a, sizeof a, "%s", it_enq(P, SPEC_A));
	snprintf(b, sizeof b, "%s", it_enq(P, SPEC_A));
	/* Time and sequence first (sortable), then 16 hex of the secret's. */
	ASSERT_TRUE(all_of(a, 28, "0123456789abcdefghijklmnopqrstuvwxyz"));
	ASSERT_TRUE(all_of(a + 12, 16, "0123456789abcdef"));
	ASSERT_TRUE(strcmp(a, b) < 0);
	ASSERT_TRUE(strcmp(a + 12, b + 12) != 0);
	snprintf(secret, sizeof secret, "%s", it_get("GET %ssecret", P));
	ASSERT_TRUE(all_of(secret, 40, "0123456789abcdef"));
	/* The random part is sha1(secret:seq:time): known only with the
	 * secret, which another queue does not share. */
	{
		char want[64], seq[32], ms[32];

		snprintf(seq, sizeof seq, "%s", it_get("GET %sjobseq", P));
		snprintf(ms, sizeof ms, "%s", it_hget(P, b, "created_ms"));
		snprintf(want, sizeof want, "%s",
		    it_get("EVAL %s 0 %s %s %s",
			"return string.sub(redis.sha1hex(ARGV[1] .. ':' .. "
			"ARGV[2] .. ':' .. ARGV[3]), 1, 16)",
			secret, seq, ms));
		ASSERT_STREQ(b + 12, want);
	}
	snprintf(c, sizeof c, "%s", it_enq(Q, SPEC_A));
	ASSERT_TRUE(strcmp(it_get("GET %ssecret", Q), secret) != 0);
	ASSERT_TRUE(strncmp(a + 8, c + 8, 4) == 0); /* the same sequence */
	ASSERT_TRUE(strcmp(a + 12, c + 12) != 0);
	/* A reset sequence in the same ms cannot overwrite a job. */
	freeReplyObject(it_cmd("SET %sjobseq 0", P));
	snprintf(c, sizeof c, "%s", it_enq(P, SPEC_A));
	ASSERT_TRUE(strcmp(c, a) != 0 && strcmp(c, b) != 0);
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 3);
}

static void
test_enqueue_bad_corpus_writes_nothing(void)
{
	const char *P = it_queue("q");

	ASSERT_TRUE(
	    unit_corpus("specs/bad.tsv", 1, corpus_bad, (void *)P) >= 50);
	ASSERT_EQ(it_keys(P), 0);
	ASSERT_EQ(unit_corpus("specs/good.txt", 0, corpus_good, (void *)P), 9);
}

static void
test_enqueue_limits(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	char	   *big;
	size_t	    n;

	big = calloc(1, 1048600);
	n = (size_t)snprintf(big, 100,
	    "{\"workflow\":\"a\",\"params\":"
	    "{\"prompt\":\"");
	memset(big + n, 'x', 8193);
	strcpy(big + n + 8193, "\"}}");
	r = it_fcall(P, "enqueue", big, NULL);
	ASSERT_ERROR(r,
	    "INVALID spec.params.prompt: 8193 bytes over the 8192 "
	    "byte limit");
	freeReplyObject(r);
	/* A caller may lower a limit, never raise it above the library's. */
	r = it_fcall(P, "enqueue", big, "max_prompt_len", "10000", NULL);
	ASSERT_ERROR(r,
	    "INVALID option max_prompt_len: 10000 over the library's limit "
	    "8192 (a caller may lower it, not raise it)");
	freeReplyObject(r);
	r = it_fcall(P, "enqueue", SPEC_A, "max_spec_bytes", "1048577", NULL);
	ASSERT_ERROR(r,
	    "INVALID option max_spec_bytes: 1048577 over the library's "
	    "limit 1048576 (a caller may lower it, not raise it)");
	freeReplyObject(r);
	r = it_fcall(P, "enqueue", SPEC_A, "max_param_len", "65537", NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	r = it_fcall(P, "enqueue",
	    "{\"workflow\":\"a\",\"params\":{\"prompt\":\"0123456789\"}}",
	    "max_prompt_len", "9", NULL);
	ASSERT_ERROR(
	    r, "INVALID spec.params.prompt: 10 bytes over the 9 byte limit");
	freeReplyObject(r);
	r = it_fcall(P, "enqueue", SPEC_A, "max_spec_bytes", "10", NULL);
	ASSERT_ERROR(r, "INVALID spec: 33 bytes over the 10 byte limit");
	freeReplyObject(r);
	ASSERT_EQ(it_keys(P), 0);
	memset(big, ' ', 1048577);
	big[1048577] = '\0';
	r = it_fcall(P, "enqueue", big, NULL);
	ASSERT_ERROR(r,
	    "INVALID spec: 1048577 bytes over the 1048576 byte "
	    "limit");
	freeReplyObject(r);
	r = it_fcall(P, "enqueue", SPEC_A, "bogus", "1", NULL);
	ASSERT_ERROR(r, "INVALID option bogus: unknown");
	freeReplyObject(r);
	free(big);
	r = it_fcall("cq:nohashtag:", "enqueue", SPEC_A, NULL);
	ASSERT_ERROR(r, "INVALID key: expected the queue prefix cq:{<queue>}:");
	freeReplyObject(r);
}

static void
test_enqueue_idempotent(void)
{
	const char *P = it_queue("q");
	const char *s1 = "{\"workflow\":\"a\",\"idempotency_key\":\"k1\"}";
	const char *s2 = "{\"workflow\":\"b\",\"idempotency_key\":\"k1\"}";
	redisReply *r;
	char	    jid[64];
	int	    keys;

	r = it_fcall(P, "enqueue", s1, NULL);
	snprintf(jid, sizeof jid, "%s", it_str(r, 0));
	ASSERT_STREQ(it_str(r, 1), "created");
	freeReplyObject(r);
	r = it_fcall(P, "enqueue", s1, NULL);
	ASSERT_STREQ(it_str(r, 0), jid);
	ASSERT_STREQ(it_str(r, 1), "existing");
	ASSERT_STREQ(it_str(r, 2), "queued");
	freeReplyObject(r);
	keys = it_keys(P);
	r = it_fcall(P, "enqueue", s2, NULL);
	ASSERT_TRUE(r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "CONFLICT idempotency_key: k1 was used for job ",
		46) == 0);
	freeReplyObject(r);
	ASSERT_EQ(it_keys(P), keys);
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 1);
	ASSERT_EQ(it_events(P, "queued", NULL), 1);
	ASSERT_EQ(it_int("PTTL %sidem:k1", P) > 86000000, 1);
}

static void
test_enqueue_idempotent_parsed(void)
{
	const char		*P = it_queue("q");
	static const char *const same[] = {
		"{ \"idempotency_key\" : \"k\", \"params\": {\"seed\": 1.0, "
		"\"prompt\": \"\\u0041 fox\"}, \"loras\": [\"s:1\", {\"b\": "
		"-0, "
		"\"a\": null, \"name\": \"x\"}],\n  \"workflow\": \"a\", "
		"\"meta\": {}}",
		"{\"workflow\":\"a\",\"loras\":[\"s:1\",{\"name\":\"x\",\"a\":"
		"null,"
		"\"b\":0}],\"params\":{\"prompt\":\"A fox\",\"seed\":1},"
		"\"meta\":[],\"idempotency_key\":\"k\"}",
	};
	static const char *const other[] = {
		"{\"workflow\":\"a\",\"loras\":[{\"name\":\"x\",\"a\":null,"
		"\"b\":0},\"s:1\"],\"params\":{\"prompt\":\"A "
		"fox\",\"seed\":1},"
		"\"idempotency_key\":\"k\"}",
		"{\"workflow\":\"a\",\"loras\":[\"s:1\",{\"name\":\"x\",\"a\":"
		"null,"
		"\"b\":0}],\"params\":{\"prompt\":\"A fox\",\"seed\":1.5},"
		"\"idempotency_key\":\"k\"}",
		"{\"workflow\":\"a\",\"loras\":[\"s:1\",{\"name\":\"x\",\"a\":"
		"null,"
		"\"b\":0}],\"params\":{\"prompt\":\"a fox\",\"seed\":1},"
		"\"idempotency_key\":\"k\"}",
	};
	redisReply *r;
	char	    jid[64];
	size_t	    i;

	snprintf(jid, sizeof jid, "%s", it_enq(P, same[0]));
	/* Other key order, spacing, 1.0 for 1, an escape, [] for {}. */
	for (i = 0; i < 2; i++) {
		r = it_fcall(P, "enqueue", same[i], NULL);
		ASSERT_STREQ(it_str(r, 0), jid);
		ASSERT_STREQ(it_str(r, 1), "existing");
		freeReplyObject(r);
	}
	/* Another value anywhere: refused. */
	for (i = 0; i < 3; i++) {
		r = it_fcall(P, "enqueue", other[i], NULL);
		ASSERT_TRUE(r->type == REDIS_REPLY_ERROR &&
		    strncmp(r->str, "CONFLICT ", 9) == 0);
		freeReplyObject(r);
	}
	ASSERT_EQ(it_events(P, "queued", NULL), 1);
	/* A record of the older library (SHA-1 of the bytes) still matches
	 * the same bytes. */
	{
		char sha[64];

		snprintf(sha, sizeof sha, "%s",
		    it_get("EVAL %s 0 %s", "return redis.sha1hex(ARGV[1])",
			same[1]));
		freeReplyObject(
		    it_cmd("HSET %sjob:%s spec_sha %s", P, jid, sha));
	}
	r = it_fcall(P, "enqueue", same[1], NULL);
	ASSERT_STREQ(it_str(r, 1), "existing");
	freeReplyObject(r);
}

static void
test_claim_needs_pool_and_slot(void)
{
	const char	 *P = it_queue("q");
	const char	 *jid = it_enq(P, SPEC_A);
	struct it_claimed c;
	redisReply	 *r;
	char		  j1[64];

	snprintf(j1, sizeof j1, "%s", jid);
	r = it_fcall(P, "claim", "w1", "gpu0", "30000", NULL);
	ASSERT_ERROR(r, "NOPOOL pool 'gpu0' has no capacity set");
	freeReplyObject(r);
	it_setcap(P, "gpu0", "1", "0");
	r = it_fcall(P, "slot_acquire", "gpu0", "warmup", "30000", NULL);
	ASSERT_STREQ(it_str(r, 0), "slot");
	freeReplyObject(r);
	/* The one slot is held: nothing is claimed, the job stays queued. */
	r = it_fcall(P, "claim", "w1", "gpu0", "30000", NULL);
	ASSERT_STREQ(it_str(r, 0), "noslot");
	ASSERT_EQ(r->element[1]->integer, 1);
	ASSERT_EQ(r->element[2]->integer, 1);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, j1, "state"), "queued");
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 1);
	ASSERT_EQ(it_events(P, "started", NULL), 0);
	/* A worker of another pool is told to wake for it. */
	r = it_cmd("ZSCORE %smarker pending", P);
	ASSERT_EQ(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
	/* Capacity raised at run time: the next claim takes the job. */
	it_setcap(P, "gpu0", "2", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, j1);
}

#define SPEC_FETCH                                                             \
	"{\"workflow\":\"a\",\"inputs\":{\"image\":\"HTTPS://e.x/a.png\"}}"

/* Holds the pool's only slot outside any job. */
static void
hold_slot(const char *P, const char *pool)
{
	redisReply *r =
	    it_fcall(P, "slot_acquire", pool, "warmup", "60000", NULL);

	ASSERT_STREQ(it_str(r, 0), "slot");
	freeReplyObject(r);
}

static void
test_enqueue_fetch_flag(void)
{
	const char *P = it_queue("q");
	static const struct {
		const char *spec, *fetch;
	} cases[] = {
		{ SPEC_FETCH, "1" },
		{ "{\"workflow\":\"a\",\"inputs\":{\"a\":\"iVBORw0KGgo=\","
		  "\"b\":\"http://e.x/b.png\"}}",
		    "1" },
		{ "{\"workflow\":\"a\",\"controlnets\":[\"canny:0.5\","
		  "{\"type\":\"canny\",\"image\":\"Http://e.x/c.png\"}]}",
		    "1" },
		{ "{\"workflow\":\"a\",\"inputs\":{\"a\":\"data:image/png;"
		  "base64,iVBORw0KGgo=\",\"b\":\"httpx://no\"}}",
		    "0" },
		{ "{\"workflow\":\"a\",\"controlnets\":[{\"type\":\"canny\","
		  "\"image\":\"face\"}],\"params\":{\"p\":\"http://x\"}}",
		    "0" },
		{ SPEC_A, "0" },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ASSERT_STREQ(it_hget(P, it_enq(P, cases[i].spec), "fetch"),
		    cases[i].fetch);
}

static void
test_claim_fetch_job_slotless(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	char		  jid[64];

	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_FETCH));
	it_setcap(P, "gpu0", "1", "0");
	hold_slot(P, "gpu0");
	/* Every slot held, prep 0: no walk at all. */
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "noslot");
	/* prep 1: the fetch job is claimed without a slot. */
	it_claim_prep(P, "w1", "gpu0", "30000", "1", &c);
	ASSERT_STREQ(c.jid, jid);
	ASSERT_EQ(c.slot, 0);
	ASSERT_STREQ(it_hget(P, jid, "state"), "active");
	ASSERT_STREQ(it_hget(P, jid, "slot"), "0");
	ASSERT_STREQ(it_hget(P, jid, "pool"), "gpu0");
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 1);
	ASSERT_EQ(it_int("HEXISTS %sheld:gpu0 %s", P, jid), 0);
	ASSERT_EQ(it_int("ZCARD %sleases", P), 1);
	ASSERT_EQ(it_events(P, "started", jid), 1);
	/* A plain job still needs the slot, even with prep. */
	it_enq(P, SPEC_A);
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "noslot");
	{
		redisReply *r = it_fcall(
		    P, "claim", "w1", "gpu0", "30000", "16", "1", NULL);

		ASSERT_STREQ(it_str(r, 0), "noslot");
		freeReplyObject(r);
	}
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 1);
	/* prep out of range. */
	{
		redisReply *r = it_fcall(
		    P, "claim", "w1", "gpu0", "30000", "16", "1001", NULL);

		ASSERT_ERROR(r, "INVALID prep: 1001 not an integer in 0..1000");
		freeReplyObject(r);
	}
}

/* The fetch count claim puts into a job's reply when asked (ARGV[9]). */
static long long
claim_fetch_count(const char *P, const char *pool, char *jid, size_t len)
{
	redisReply *r = it_fcall(P, "claim", "w1", pool, "30000", "16", "0", "",
	    "10000", "32", "1", NULL);
	long long   n;

	ASSERT_STREQ(it_str(r, 0), "job");
	ASSERT_EQ(r->elements, 10);
	snprintf(jid, len, "%s", it_str(r, 1));
	n = r->element[9]->integer;
	freeReplyObject(r);
	return (n);
}

static void
test_claim_fetch_count(void)
{
	const char *P = it_queue("q");
	char	    f1[64], f2[64], jid[64];
	redisReply *r;

	snprintf(f1, sizeof f1, "%s", it_enq(P, SPEC_FETCH));
	it_enq(P, SPEC_A);
	snprintf(f2, sizeof f2, "%s", it_enq(P, SPEC_FETCH));
	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "8", "0");
	ASSERT_STREQ(it_get("HGET %slanes fetch", P), "2");
	/* prep 0: the plain jobs go; the count stays 2, then a cancel
	 * takes one fetch job away. */
	ASSERT_EQ(claim_fetch_count(P, "gpu0", jid, sizeof jid), 2);
	r = it_fcall(P, "cancel", f1, "test", NULL);
	freeReplyObject(r);
	ASSERT_STREQ(it_get("HGET %slanes fetch", P), "1");
	ASSERT_EQ(claim_fetch_count(P, "gpu0", jid, sizeof jid), 1);
	/* Without ARGV[9] the reply keeps its 9 elements (older workers). */
	it_enq(P, SPEC_A);
	r = it_fcall(P, "claim", "w0", "gpu0", "30000", "16", "0", NULL);
	ASSERT_EQ(r->elements, 9);
	freeReplyObject(r);
	/* A count that went wrong (a record written by hand) never goes
	 * below 0 and is only a hint: the fetch job is claimed with prep. */
	freeReplyObject(it_cmd("HSET %slanes fetch 0", P));
	r = it_fcall(P, "claim", "w1", "gpu0", "30000", "16", "1", "", "10000",
	    "32", "1", NULL);
	ASSERT_STREQ(it_str(r, 1), f2);
	ASSERT_EQ(r->element[7]->integer, 0); /* without a slot */
	ASSERT_EQ(r->element[9]->integer, 0);
	freeReplyObject(r);
	ASSERT_STREQ(it_get("HGET %slanes fetch", P), "0");
}

/* A claim that finds no job empties the queue's marker: its tokens are
 * stale, and an idle worker would wake once for each. */
static void
test_claim_nojob_clears_marker(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	int		  i;

	it_setcap(P, "gpu0", "8", "0"); /* its own token: gone with the rest */
	for (i = 0; i < 5; i++)
		it_enq(P, SPEC_A);
	ASSERT_EQ(it_int("ZCARD %smarker", P), 6);
	for (i = 0; i < 5; i++)
		it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_EQ(it_int("ZCARD %smarker", P), 6);
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "nojob");
	ASSERT_EQ(it_int("EXISTS %smarker", P), 0);
	/* A job made ready later leaves its token. */
	it_enq(P, SPEC_A);
	ASSERT_EQ(it_int("ZCARD %smarker", P), 1);
}

static void
test_claim_fetch_job_passed_over(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	char		  fj[64], pj[64];

	snprintf(fj, sizeof fj, "%s", it_enq(P, SPEC_FETCH));
	snprintf(pj, sizeof pj, "%s", it_enq(P, SPEC_A));
	it_setcap(P, "gpu0", "2", "0");
	/* prep 0: the fetch job keeps its place, the plain one behind it goes. */
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, pj);
	ASSERT_EQ(c.slot, 1);
	ASSERT_STREQ(it_hget(P, pj, "slot"), "1");
	ASSERT_EQ(it_int("HEXISTS %sheld:gpu0 %s", P, pj), 1);
	ASSERT_STREQ(it_hget(P, fj, "state"), "queued");
	/* Only the fetch job waits: passed over, reported as noslot. */
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "noslot");
	ASSERT_STREQ(it_hget(P, fj, "state"), "queued");
	/* A claim without prep (a worker that predates it) takes it with a
	 * slot like any job. */
	{
		redisReply *r =
		    it_fcall(P, "claim", "w0", "gpu0", "30000", NULL);

		ASSERT_STREQ(it_str(r, 0), "job");
		ASSERT_STREQ(it_str(r, 1), fj);
		ASSERT_EQ(r->element[7]->integer, 1);
		freeReplyObject(r);
		freeReplyObject(
		    it_fcall(P, "release", fj, it_hget(P, fj, "fence"), NULL));
	}
	/* prep 1 takes it slotless although a slot is free. */
	it_claim_prep(P, "w2", "gpu0", "30000", "1", &c);
	ASSERT_STREQ(c.jid, fj);
	ASSERT_EQ(c.slot, 0);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 1);
}

static redisReply *
acquire(const char *P, const struct it_claimed *c, const char *pool)
{
	return (it_fcall(P, "acquire", c->jid, c->fence, pool, NULL));
}

static void
test_acquire(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	char		  want[128];

	it_enq(P, SPEC_FETCH);
	it_setcap(P, "gpu0", "1", "0");
	it_claim_prep(P, "w1", "gpu0", "30000", "1", &c);
	ASSERT_EQ(c.slot, 0);
	r = acquire(P, &c, "gpu0");
	ASSERT_EQ(r->elements, 1);
	ASSERT_STREQ(it_str(r, 0), "ok");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "slot"), "1");
	snprintf(want, sizeof want, "w1 %s %s 0", c.fence,
	    it_hget(P, c.jid, "lease_until"));
	ASSERT_STREQ(it_get("HGET %sheld:gpu0 %s", P, c.jid), want);
	/* Idempotent. */
	r = acquire(P, &c, "gpu0");
	ASSERT_STREQ(it_str(r, 0), "ok");
	freeReplyObject(r);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 1);
	/* The heartbeat renews the slot it now holds. */
	it_sleep_ms(5);
	r = it_fcall(
	    P, "heartbeat", "w1", "40000", "60000", c.jid, c.fence, NULL);
	freeReplyObject(r);
	snprintf(want, sizeof want, "w1 %s %s 0", c.fence,
	    it_hget(P, c.jid, "lease_until"));
	ASSERT_STREQ(it_get("HGET %sheld:gpu0 %s", P, c.jid), want);
	/* Another pool: a conflict; a pool without capacity: NOPOOL. */
	it_setcap(P, "gpu1", "1", "0");
	r = acquire(P, &c, "gpu1");
	snprintf(want, sizeof want, "CONFLICT job %s holds a slot of pool gpu0",
	    c.jid);
	ASSERT_ERROR(r, want);
	freeReplyObject(r);
	r = acquire(P, &c, "nopool");
	ASSERT_ERROR(r, "NOPOOL pool 'nopool' has no capacity set");
	freeReplyObject(r);
	/* A stale fence writes nothing. */
	snprintf(c.fence, sizeof c.fence, "999");
	r = acquire(P, &c, "gpu0");
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
}

static void
test_acquire_noslot_and_vram(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed big, f, f2;
	redisReply	 *r;

	/* The slot is held: noslot, nothing written. */
	it_enq(P, SPEC_FETCH);
	it_setcap(P, "gpu0", "1", "0");
	hold_slot(P, "gpu0");
	it_claim_prep(P, "w1", "gpu0", "30000", "1", &f);
	r = acquire(P, &f, "gpu0");
	ASSERT_STREQ(it_str(r, 0), "noslot");
	ASSERT_EQ(r->element[1]->integer, 1);
	ASSERT_EQ(r->element[2]->integer, 1);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, f.jid, "slot"), "0");
	ASSERT_EQ(it_int("HEXISTS %sheld:gpu0 %s", P, f.jid), 0);

	/* Two slots, a 10000 MB budget, 8000 held by a plain job. */
	P = it_queue("q");
	it_enq(P, "{\"workflow\":\"a\",\"vram_mb\":8000}");
	it_enq(P,
	    "{\"workflow\":\"a\",\"vram_mb\":4000,"
	    "\"inputs\":{\"i\":\"http://e.x/i.png\"}}");
	it_enq(P,
	    "{\"workflow\":\"a\",\"vram_mb\":2000,"
	    "\"inputs\":{\"i\":\"http://e.x/j.png\"}}");
	it_setcap(P, "gpu0", "2", "10000");
	it_claim(P, "w1", "gpu0", "30000", &big);
	it_claim_prep(P, "w1", "gpu0", "30000", "2", &f);
	it_claim_prep(P, "w1", "gpu0", "30000", "2", &f2);
	ASSERT_EQ(f.slot + f2.slot, 0);
	r = acquire(P, &f, "gpu0");
	ASSERT_STREQ(it_str(r, 0), "noslot");
	freeReplyObject(r);
	/* The smaller one fits. */
	r = acquire(P, &f2, "gpu0");
	ASSERT_STREQ(it_str(r, 0), "ok");
	freeReplyObject(r);
	r = it_fcall(P, "complete", big.jid, big.fence, "[]", NULL);
	freeReplyObject(r);
	r = it_fcall(P, "complete", f2.jid, f2.fence, "[]", NULL);
	freeReplyObject(r);
	r = acquire(P, &f, "gpu0");
	ASSERT_STREQ(it_str(r, 0), "ok");
	freeReplyObject(r);
	r = it_fcall(P, "slot_get", "gpu0", NULL);
	ASSERT_EQ(r->element[2]->integer, 1);
	ASSERT_EQ(r->element[3]->integer, 4000);
	freeReplyObject(r);
}

static void
test_slotless_job_ends(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed a, b, c;
	redisReply	 *r;
	const char	 *warm;

	it_enq(P, SPEC_FETCH);
	it_enq(P, SPEC_FETCH);
	it_enq(P, SPEC_FETCH);
	it_setcap(P, "gpu0", "1", "0");
	hold_slot(P, "gpu0");
	warm = "x:warmup";
	it_claim_prep(P, "w1", "gpu0", "30000", "3", &a);
	it_claim_prep(P, "w1", "gpu0", "30000", "3", &b);
	it_claim_prep(P, "w1", "gpu0", "1000", "3", &c);
	r = it_fcall(P, "complete", a.jid, a.fence, "[]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, a.jid, "state"), "succeeded");
	r = it_fcall(
	    P, "fail", b.jid, b.fence, "invalid_input", "bad", "0", NULL);
	ASSERT_STREQ(it_str(r, 0), "failed");
	freeReplyObject(r);
	ASSERT_EQ(it_int("XLEN %srefunds", P), 1);
	it_sleep_ms(1100);
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(r->element[0]->integer, 1); /* requeued */
	ASSERT_EQ(r->element[3]->integer, 0); /* no slot freed */
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "queued");
	/* The outside holder kept its slot throughout; no wake-up for a slot
	 * that was never held. */
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 1);
	ASSERT_EQ(it_int("HEXISTS %sheld:gpu0 %s", P, warm), 1);
	ASSERT_EQ(it_int("ZCARD %smarker:gpu0", P), 1); /* slot_set's token */
}

static void
test_cancel_publishes(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisContext	 *sub = it_redis_new();
	redisReply	 *r;
	char		  q[64], want[128];

	r = redisCommand(sub, "SUBSCRIBE %sctl:w1", P);
	ASSERT_TRUE(r != NULL && r->type == REDIS_REPLY_ARRAY);
	freeReplyObject(r);
	it_enq(P, SPEC_A);
	snprintf(q, sizeof q, "%s", it_enq(P, SPEC_A));
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	/* A queued job is canceled in Redis alone: nothing is published (the
	 * first message is the active job's). */
	r = it_fcall(P, "cancel", q, NULL);
	ASSERT_STREQ(it_str(r, 0), "canceled");
	freeReplyObject(r);
	r = it_fcall(P, "cancel", c.jid, NULL);
	ASSERT_STREQ(it_str(r, 0), "requested");
	freeReplyObject(r);
	ASSERT_EQ(redisGetReply(sub, (void **)&r), REDIS_OK);
	ASSERT_EQ(r->elements, 3);
	ASSERT_STREQ(r->element[0]->str, "message");
	snprintf(want, sizeof want, "%sctl:w1", P);
	ASSERT_STREQ(r->element[1]->str, want);
	snprintf(want, sizeof want, "cancel %s", c.jid);
	ASSERT_STREQ(r->element[2]->str, want);
	freeReplyObject(r);
	/* Asked again: published again, one cancel_requested event. */
	freeReplyObject(it_fcall(P, "cancel", c.jid, NULL));
	ASSERT_EQ(redisGetReply(sub, (void **)&r), REDIS_OK);
	ASSERT_STREQ(r->element[2]->str, want);
	freeReplyObject(r);
	ASSERT_EQ(it_events(P, "cancel_requested", c.jid), 1);
	redisFree(sub);
}

static void
test_claim_takes_job_and_slot(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c, c2;
	redisReply	 *r;
	char		  j1[64];

	snprintf(j1, sizeof j1, "%s", it_enq(P, SPEC_A));
	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "2", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, j1);
	ASSERT_EQ(c.attempt, 1);
	ASSERT_STREQ(it_hget(P, j1, "state"), "active");
	ASSERT_STREQ(it_hget(P, j1, "worker"), "w1");
	ASSERT_STREQ(it_hget(P, j1, "fence"), c.fence);
	ASSERT_EQ(it_int("ZCARD %sleases", P), 1);
	ASSERT_EQ(it_int("HEXISTS %sheld:gpu0 %s", P, j1), 1);
	ASSERT_EQ(it_events(P, "started", j1), 1);
	it_claim(P, "w1", "gpu0", "30000", &c2);
	/* Fences are fresh per claim. */
	ASSERT_TRUE(atoll(c2.fence) > atoll(c.fence));
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "noslot");
	r = it_fcall(P, "slot_get", "gpu0", NULL);
	ASSERT_EQ(r->element[0]->integer, 2);
	ASSERT_EQ(r->element[2]->integer, 2);
	freeReplyObject(r);
}

static void
test_claim_nojob_reports_next_due(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	char	    spec[200];
	long long   due = clock_wall_ms() + 60000;

	it_setcap(P, "gpu0", "1", "0");
	r = it_fcall(P, "claim", "w1", "gpu0", "30000", NULL);
	ASSERT_STREQ(it_str(r, 0), "nojob");
	ASSERT_STREQ(it_str(r, 1), "");
	freeReplyObject(r);
	snprintf(
	    spec, sizeof spec, "{\"workflow\":\"a\",\"run_at\":%lld}", due);
	ASSERT_STREQ(it_hget(P, it_enq(P, spec), "state"), "delayed");
	r = it_fcall(P, "claim", "w1", "gpu0", "30000", NULL);
	ASSERT_STREQ(it_str(r, 0), "nojob");
	ASSERT_EQ(atoll(it_str(r, 1)), due);
	freeReplyObject(r);
}

static void
test_priority_lanes(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	char		  lo[64], no[64], hi[64];

	snprintf(lo, sizeof lo, "%s",
	    it_enq(P, "{\"workflow\":\"a\",\"priority\":\"low\"}"));
	snprintf(no, sizeof no, "%s", it_enq(P, "{\"workflow\":\"a\"}"));
	snprintf(hi, sizeof hi, "%s",
	    it_enq(P, "{\"workflow\":\"a\",\"priority\":\"high\"}"));
	it_setcap(P, "gpu0", "8", "0");
	it_claim(P, "w", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, hi);
	it_claim(P, "w", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, no);
	it_claim(P, "w", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, lo);
}

static void
test_fair_share_by_tenant(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	char		  b[64];
	int		  i;

	for (i = 0; i < 5; i++)
		it_enq(P, "{\"workflow\":\"a\",\"tenant\":\"bulk\"}");
	snprintf(b, sizeof b, "%s",
	    it_enq(P, "{\"workflow\":\"a\",\"tenant\":\"single\"}"));
	it_setcap(P, "gpu0", "8", "0");
	/* The late single job does not wait behind the whole burst. */
	it_claim(P, "w", "gpu0", "30000", &c);
	ASSERT_STREQ(it_hget(P, c.jid, "tenant"), "bulk");
	it_claim(P, "w", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, b);
	/* Tenant marks behind the lane clock are dropped. */
	ASSERT_EQ(it_int("HEXISTS %sfair:normal single", P), 0);
}

/* A field of the stream's last entry, or NULL (a static copy). */
static const char *
last_event_field(const char *P, const char *field)
{
	static char buf[1024];
	redisReply *r = it_cmd("XREVRANGE %sevents + - COUNT 1", P);
	const char *v = NULL;
	redisReply *kv;
	size_t	    i;

	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
		kv = r->element[0]->element[1];
		for (i = 0; i + 1 < kv->elements; i += 2)
			if (strcmp(kv->element[i]->str, field) == 0) {
				snprintf(buf, sizeof buf, "%s",
				    kv->element[i + 1]->str);
				v = buf;
			}
	}
	freeReplyObject(r);
	return (v);
}

static void
test_complete_once(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	const char *out = "[{\"path\":\"/o/a.png\",\"mime\":\"image/png\","
			  "\"width\":64,\"height\":64,\"bytes\":100}]";

	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	r = it_fcall(P, "progress", c.jid, c.fence, "5", "20", "3", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "progress"), "5/20");
	ASSERT_STREQ(last_event_field(P, "nodes"), "{}");
	r = it_fcall(P, "progress", c.jid, c.fence, "6", "20", "3",
	    "{\"ran\":[\"1\",\"3\"],\"cached\":[\"2\"]}", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	ASSERT_STREQ(last_event_field(P, "nodes"),
	    "{\"ran\":[\"1\",\"3\"],\"cached\":[\"2\"]}");
	/* nodes must be a JSON object. */
	r = it_fcall(
	    P, "progress", c.jid, c.fence, "6", "20", "3", "[1]", NULL);
	ASSERT_ERROR(
	    r, "INVALID nodes: must be a JSON object of at most 65536 bytes");
	freeReplyObject(r);
	r = it_fcall(P, "complete", c.jid, c.fence, out, "{\"ran\":", NULL);
	ASSERT_ERROR(
	    r, "INVALID nodes: must be a JSON object of at most 65536 bytes");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "active");
	r = it_fcall(P, "complete", c.jid, c.fence, out,
	    "{\"ran\":[\"1\",\"3\",\"4\"],\"cached\":[\"2\"]}", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "nodes"),
	    "{\"ran\":[\"1\",\"3\",\"4\"],\"cached\":[\"2\"]}");
	ASSERT_STREQ(last_event_field(P, "nodes"), it_hget(P, c.jid, "nodes"));
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "succeeded");
	ASSERT_STREQ(it_hget(P, c.jid, "outputs"), out);
	ASSERT_STREQ(it_hget(P, c.jid, "refund"), "false");
	ASSERT_EQ(it_int("ZCARD %sleases", P), 0);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	r = it_cmd("ZSCORE %sdone %s", P, c.jid);
	ASSERT_EQ(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
	/* A second complete, and a late progress, are stale. */
	r = it_fcall(P, "complete", c.jid, c.fence, out, NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
	r = it_fcall(P, "progress", c.jid, c.fence, "6", "20", "", NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
	ASSERT_EQ(it_events(P, "succeeded", c.jid), 1);
	ASSERT_EQ(it_events(P, "progress", c.jid), 2);
	ASSERT_EQ(it_int("XLEN %srefunds", P), 0);
	/* Outputs must be a JSON array. */
	r = it_fcall(P, "complete", c.jid, c.fence, "{}x", NULL);
	ASSERT_ERROR(r, "INVALID outputs: must be a JSON array");
	freeReplyObject(r);
}

static void
test_stale_complete_after_reap(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c, c2;
	redisReply	 *r;

	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "1000", &c);
	it_sleep_ms(1100);
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(r->element[0]->integer, 1); /* requeued */
	ASSERT_EQ(r->element[1]->integer, 0); /* lost */
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "queued");
	ASSERT_STREQ(it_hget(P, c.jid, "reclaims"), "1");
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	ASSERT_EQ(it_events(P, "requeued", c.jid), 1);
	/* The old worker comes back: nothing it says is written. */
	r = it_fcall(P, "complete", c.jid, c.fence, "[]", NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
	r = it_fcall(P, "fail", c.jid, c.fence, "internal", "x", "0", NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "queued");
	ASSERT_EQ(it_events(P, "succeeded", NULL), 0);
	ASSERT_EQ(it_events(P, "failed", NULL), 0);
	/* A second worker gets it with a new fence; the old fence stays stale. */
	it_claim(P, "w2", "gpu0", "30000", &c2);
	ASSERT_STREQ(c2.jid, c.jid);
	ASSERT_EQ(c2.attempt, 2);
	r = it_fcall(P, "complete", c.jid, c.fence, "[]", NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
	r = it_fcall(P, "complete", c2.jid, c2.fence, "[]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	ASSERT_EQ(it_events(P, "succeeded", c.jid), 1);
}

static void
test_fail_terminal_refunds_once(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;

	it_enq(P,
	    "{\"workflow\":\"a\",\"tenant\":\"tg:7\","
	    "\"meta\":{\"charge\":10}}");
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	r = it_fcall(P, "fail", c.jid, c.fence, "bogus_code", "x", "0", NULL);
	ASSERT_ERROR(r, "INVALID code: 'bogus_code' is not an error code");
	freeReplyObject(r);
	r = it_fcall(P, "fail", c.jid, c.fence, "workflow_error",
	    "node 4: value not in list", "0", NULL);
	ASSERT_STREQ(it_str(r, 0), "failed");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "failed");
	ASSERT_STREQ(it_hget(P, c.jid, "error_code"), "workflow_error");
	ASSERT_STREQ(it_hget(P, c.jid, "refund"), "true");
	ASSERT_EQ(it_int("XLEN %srefunds", P), 1);
	ASSERT_EQ(it_events(P, "failed", c.jid), 1);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	r = it_cmd("XRANGE %srefunds - +", P);
	ASSERT_STREQ(r->element[0]->element[1]->element[1]->str, c.jid);
	ASSERT_STREQ(r->element[0]->element[1]->element[3]->str, "tg:7");
	ASSERT_STREQ(
	    r->element[0]->element[1]->element[9]->str, "{\"charge\":10}");
	freeReplyObject(r);
	/* Repeats are stale and write no second refund or event. */
	r = it_fcall(
	    P, "fail", c.jid, c.fence, "workflow_error", "x", "0", NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
	ASSERT_EQ(it_int("XLEN %srefunds", P), 1);
	ASSERT_EQ(it_events(P, "failed", c.jid), 1);
	r = it_cmd("HGET %sstats failed:workflow_error", P);
	ASSERT_STREQ(r->str, "1");
	freeReplyObject(r);
}

/*
 * A success after a retried failure: the retry kept the failed attempt's
 * error_code and error on the job while it waited; the success's record
 * must say what its event says (no code), for readers of the record (a
 * late reader, the webhook body).
 */
static void
test_success_after_retry_has_no_error(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;

	it_enq(P, "{\"workflow\":\"a\",\"max_attempts\":3,"
		  "\"webhook\":\"http://h.example/x\"}");
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	r = it_fcall(P, "fail", c.jid, c.fence, "oom", "out of memory", "1",
	    "1", "1", "0", NULL);
	ASSERT_STREQ(it_str(r, 0), "delayed");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "error_code"), "oom");
	it_sleep_ms(10);
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_EQ(c.attempt, 2);
	r = it_fcall(P, "complete", c.jid, c.fence, "[]", NULL);
	ASSERT_STREQ(r->str, "OK");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "succeeded");
	ASSERT_EQ(it_int("HEXISTS %sjob:%s error_code", P, c.jid), 0);
	ASSERT_EQ(it_int("HEXISTS %sjob:%s error", P, c.jid), 0);
	ASSERT_STREQ(it_hget(P, c.jid, "refund"), "false");
	ASSERT_EQ(it_events(P, "succeeded", c.jid), 1);
	ASSERT_EQ(it_int("XLEN %srefunds", P), 0);
	/* The webhook body is built from the record: no error in it. */
	r = it_fcall(P, "webhook_claim", "s1", "10000", "4", NULL);
	ASSERT_TRUE(r->type == REDIS_REPLY_ARRAY && r->elements >= 1);
	{
		char flat[8192] = "";
		size_t i, j;

		for (i = 0; i < r->elements; i++) {
			const redisReply *e = r->element[i];

			if (e->type == REDIS_REPLY_STRING)
				strncat(flat, e->str, sizeof flat -
				    strlen(flat) - 1);
			for (j = 0; e->type == REDIS_REPLY_ARRAY &&
			     j < e->elements; j++)
				if (e->element[j]->type == REDIS_REPLY_STRING)
					strncat(flat, e->element[j]->str,
					    sizeof flat - strlen(flat) - 1);
		}
		ASSERT_TRUE(strstr(flat, c.jid) != NULL);
		ASSERT_TRUE(strstr(flat, "oom") == NULL);
		ASSERT_TRUE(strstr(flat, "out of memory") == NULL);
	}
	freeReplyObject(r);
}

/*
 * The enqueue option vram_mb: the job's vram_mb when its spec gives none
 * (the template's estimate from comfyq submit or the scheduler), with the
 * spec stored as sent, so the same spec and key from a producer without
 * the option is the same job.
 */
static void
test_enqueue_vram_option(void)
{
	const char *P = it_queue("q");
	const char *spec = "{\"workflow\":\"a\",\"idempotency_key\":\"k1\"}";
	char	    jid[64];
	redisReply *r;

	r = it_fcall(P, "enqueue", spec, "vram_mb", "9000", NULL);
	snprintf(jid, sizeof jid, "%s", it_str(r, 0));
	ASSERT_STREQ(it_str(r, 1), "created");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, jid, "vram_mb"), "9000");
	ASSERT_STREQ(it_hget(P, jid, "spec"), spec);
	r = it_fcall(P, "enqueue", spec, NULL);
	ASSERT_STREQ(it_str(r, 0), jid);
	ASSERT_STREQ(it_str(r, 1), "existing");
	freeReplyObject(r);
	/* The spec's own vram_mb wins over the option. */
	r = it_fcall(P, "enqueue", "{\"workflow\":\"a\",\"vram_mb\":100}",
	    "vram_mb", "9000", NULL);
	ASSERT_STREQ(it_hget(P, it_str(r, 0), "vram_mb"), "100");
	freeReplyObject(r);
	r = it_fcall(P, "enqueue", "{\"workflow\":\"a\"}", "vram_mb",
	    "1048577", NULL);
	ASSERT_ERROR(r, "INVALID option vram_mb: 1048577 over 1048576");
	freeReplyObject(r);
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 2);
}

static void
test_retry_backoff_grows_then_fails(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	long long	  before, due, prev = 0;
	int		  attempt;

	it_enq(P, "{\"workflow\":\"a\",\"max_attempts\":3}");
	it_setcap(P, "gpu0", "1", "0");
	for (attempt = 1; attempt <= 2; attempt++) {
		if (attempt > 1)
			it_sleep_ms((int)(prev + 20));
		it_claim(P, "w1", "gpu0", "30000", &c);
		ASSERT_EQ(c.attempt, attempt);
		before = clock_wall_ms();
		/* base 200 ms, cap 10 s, the lowest draw (0): d/2. */
		r = it_fcall(P, "fail", c.jid, c.fence, "backend_unavailable",
		    "connection refused", "1", "200", "10000", "0", NULL);
		ASSERT_STREQ(it_str(r, 0), "delayed");
		due = atoll(it_str(r, 1));
		freeReplyObject(r);
		ASSERT_STREQ(it_hget(P, c.jid, "state"), "delayed");
		ASSERT_EQ(it_int("ZCARD %sdelayed", P), 1);
		ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
		/* Attempt n waits (200 * 2^(n-1)) / 2 ms. */
		ASSERT_TRUE(due - before >= (100LL << (attempt - 1)) - 5);
		ASSERT_TRUE(due - before <= (100LL << (attempt - 1)) + 50);
		prev = due - before;
		/* Not claimable before it is due. */
		if (attempt == 2)
			ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "nojob");
	}
	it_sleep_ms((int)(prev + 20));
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_EQ(c.attempt, 3);
	r = it_fcall(P, "fail", c.jid, c.fence, "backend_unavailable",
	    "connection refused", "1", "200", "10000", "0.5", NULL);
	ASSERT_STREQ(it_str(r, 0), "failed");
	freeReplyObject(r);
	ASSERT_EQ(it_events(P, "retrying", c.jid), 2);
	ASSERT_EQ(it_events(P, "failed", c.jid), 1);
	ASSERT_EQ(it_int("XLEN %srefunds", P), 1);
	r = it_fcall(P, "fail", c.jid, c.fence, "internal", "x", "1", "1", "1",
	    "1.5", NULL);
	ASSERT_ERROR(r, "INVALID jitter: must be a number in [0, 1)");
	freeReplyObject(r);
}

static void
test_cancel_every_state(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;
	char		  q[64], d[64], spec[128];

	snprintf(q, sizeof q, "%s", it_enq(P, SPEC_A));
	snprintf(spec, sizeof spec, "{\"workflow\":\"a\",\"run_at\":%lld}",
	    clock_wall_ms() + 600000);
	snprintf(d, sizeof d, "%s", it_enq(P, spec));
	/* Queued: terminal at once, refunded, gone from the lane. */
	r = it_fcall(P, "cancel", q, NULL);
	ASSERT_STREQ(it_str(r, 0), "canceled");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, q, "state"), "canceled");
	ASSERT_STREQ(it_hget(P, q, "refund"), "true");
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 0);
	/* Delayed: the same. */
	r = it_fcall(P, "cancel", d, NULL);
	ASSERT_STREQ(it_str(r, 0), "canceled");
	freeReplyObject(r);
	ASSERT_EQ(it_int("ZCARD %sdelayed", P), 0);
	ASSERT_EQ(it_int("XLEN %srefunds", P), 2);
	/* Terminal: nothing more. */
	r = it_fcall(P, "cancel", q, NULL);
	ASSERT_STREQ(it_str(r, 0), "already");
	ASSERT_STREQ(it_str(r, 1), "canceled");
	freeReplyObject(r);
	r = it_fcall(P, "cancel", "nosuchjob", NULL);
	ASSERT_ERROR(r, "NOJOB job nosuchjob does not exist");
	freeReplyObject(r);
	/* Active: a durable flag the worker's heartbeat reports. */
	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	r = it_fcall(P, "cancel", c.jid, NULL);
	ASSERT_STREQ(it_str(r, 0), "requested");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "active");
	ASSERT_STREQ(it_hget(P, c.jid, "cancel_req"), "1");
	r = it_fcall(
	    P, "heartbeat", "w1", "30000", "60000", c.jid, c.fence, NULL);
	ASSERT_EQ(r->element[0]->elements, 0);
	ASSERT_EQ(r->element[1]->elements, 1);
	ASSERT_STREQ(r->element[1]->element[0]->str, c.jid);
	freeReplyObject(r);
	r = it_fcall(
	    P, "fail", c.jid, c.fence, "canceled", "interrupted", "0", NULL);
	ASSERT_STREQ(it_str(r, 0), "canceled");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "canceled");
	ASSERT_EQ(it_int("XLEN %srefunds", P), 3);
	ASSERT_EQ(it_events(P, "canceled", NULL), 3);
	ASSERT_EQ(it_events(P, "cancel_requested", c.jid), 1);
}

static void
test_heartbeat_renews_and_reports_lost(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c, c2;
	redisReply	 *r;
	long long	  until1, until2;

	it_enq(P, SPEC_A);
	it_enq(P, SPEC_A);
	r = it_fcall(
	    P, "register", "w1", "60000", "gpu0", "2", "0", "host", "h1", NULL);
	ASSERT_EQ(r->element[0]->integer, 2);
	freeReplyObject(r);
	it_claim(P, "w1", "gpu0", "2000", &c);
	it_claim(P, "w1", "gpu0", "2000", &c2);
	until1 = atoll(it_hget(P, c.jid, "lease_until"));
	it_sleep_ms(50);
	/* c2 was finished elsewhere: its fence no longer matches. */
	freeReplyObject(it_cmd("HSET %sjob:%s fence 999999", P, c2.jid));
	r = it_fcall(P, "heartbeat", "w1", "30000", "60000", c.jid, c.fence,
	    c2.jid, c2.fence, NULL);
	ASSERT_EQ(r->element[0]->elements, 1);
	ASSERT_STREQ(r->element[0]->element[0]->str, c2.jid);
	ASSERT_EQ(r->element[1]->elements, 0);
	ASSERT_EQ(r->element[2]->integer, 2);
	ASSERT_EQ(r->element[3]->integer, 1); /* registered */
	freeReplyObject(r);
	until2 = atoll(it_hget(P, c.jid, "lease_until"));
	ASSERT_TRUE(until2 >= until1 + 28000);
	r = it_cmd("ZSCORE %sleases %s", P, c.jid);
	ASSERT_EQ(atoll(r->str), until2);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c2.jid, "state"), "active");
	ASSERT_EQ(it_int("PTTL %sworker:w1", P) > 59000, 1);
	r = it_cmd("HGET %sworker:w1 jobs", P);
	ASSERT_STREQ(r->str, "1");
	freeReplyObject(r);
	r = it_fcall(P, "heartbeat", "w1", "30000", "60000", "odd", NULL);
	ASSERT_ERROR(r, "INVALID jobs: expected jid fence pairs");
	freeReplyObject(r);
	/* A record that expired (a long partition) is reported, so the worker
	 * registers again. */
	freeReplyObject(it_cmd("DEL %sworker:w1", P));
	r = it_fcall(P, "heartbeat", "w1", "30000", "60000", NULL);
	ASSERT_EQ(r->element[3]->integer, 0);
	freeReplyObject(r);
}

struct reaper {
	const char	  *P;
	long long	   requeued;
	pthread_barrier_t *barrier;
};

static void *
reaper_run(void *arg)
{
	struct reaper *rp = arg;
	redisContext  *c = it_redis_new();
	redisReply    *r;
	int	       i;

	pthread_barrier_wait(rp->barrier);
	for (i = 0; i < 20; i++) {
		r = redisCommand(c, "FCALL comfyq_reap 1 %s", rp->P);
		if (r != NULL && r->type == REDIS_REPLY_ARRAY)
			rp->requeued += r->element[0]->integer;
		freeReplyObject(r);
	}
	redisFree(c);
	return (NULL);
}

static void
test_two_reapers_one_requeue(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	struct reaper	  a, b;
	pthread_t	  ta, tb;
	pthread_barrier_t bar;

	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "1000", &c);
	it_sleep_ms(1100);
	pthread_barrier_init(&bar, NULL, 2);
	a = (struct reaper){ P, 0, &bar };
	b = (struct reaper){ P, 0, &bar };
	pthread_create(&ta, NULL, reaper_run, &a);
	pthread_create(&tb, NULL, reaper_run, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	pthread_barrier_destroy(&bar);
	ASSERT_EQ(a.requeued + b.requeued, 1);
	ASSERT_EQ(it_events(P, "requeued", c.jid), 1);
	ASSERT_STREQ(it_hget(P, c.jid, "reclaims"), "1");
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 1);
}

static void
test_worker_lost_after_reclaims(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;

	it_enq(P, "{\"workflow\":\"a\",\"tenant\":\"t\"}");
	it_setcap(P, "gpu0", "1", "0");
	/* Each lease is renewed once before it is lost: not a crash on the
	 * job (see the poison guard in test_janitor_lua). */
	it_claim(P, "w1", "gpu0", "1000", &c);
	freeReplyObject(it_fcall(
	    P, "heartbeat", "w1", "1000", "60000", c.jid, c.fence, NULL));
	it_sleep_ms(1100);
	r = it_fcall(P, "reap", "max_reclaims", "1", NULL);
	ASSERT_EQ(r->element[0]->integer, 1);
	freeReplyObject(r);
	it_claim(P, "w2", "gpu0", "1000", &c);
	freeReplyObject(it_fcall(
	    P, "heartbeat", "w2", "1000", "60000", c.jid, c.fence, NULL));
	it_sleep_ms(1100);
	r = it_fcall(P, "reap", "max_reclaims", "1", NULL);
	ASSERT_EQ(r->element[0]->integer, 0);
	ASSERT_EQ(r->element[1]->integer, 1);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "failed");
	ASSERT_STREQ(it_hget(P, c.jid, "error_code"), "worker_lost");
	ASSERT_EQ(it_int("XLEN %srefunds", P), 1);
	ASSERT_EQ(it_events(P, "failed", c.jid), 1);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
}

static void
test_release_hands_back(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c, c2;
	redisReply	 *r;
	char		  first[64];

	snprintf(first, sizeof first, "%s", it_enq(P, SPEC_A));
	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	r = it_fcall(P, "release", c.jid, c.fence, "draining", NULL);
	ASSERT_STREQ(it_str(r, 0), "queued");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "queued");
	ASSERT_STREQ(it_hget(P, c.jid, "attempt"), "0");
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	/* Back at the front of its lane, and the attempt was not counted. */
	it_claim(P, "w2", "gpu0", "30000", &c2);
	ASSERT_STREQ(c2.jid, first);
	ASSERT_EQ(c2.attempt, 1);
	r = it_fcall(P, "release", c.jid, c.fence, NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
}

struct waiter {
	const char *P;
	char	    member[64];
	int	    woke;
};

static void *
waiter_run(void *arg)
{
	struct waiter *w = arg;
	redisContext  *c = it_redis_new();
	redisReply    *r;

	r = redisCommand(c, "BZPOPMIN %smarker %smarker:gpu0 10", w->P, w->P);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
		w->woke = 1;
		snprintf(w->member, sizeof w->member, "%s", r->element[1]->str);
	}
	freeReplyObject(r);
	redisFree(c);
	return (NULL);
}

static void
test_blocked_claimer_wakes(void)
{
	const char   *P = it_queue("q");
	struct waiter w = { P, "", 0 };
	pthread_t     t;
	char	      jid[64];
	int	      i;

	pthread_create(&t, NULL, waiter_run, &w);
	/* Wait until the waiter is blocked on the server. */
	for (i = 0; i < 200 && it_int("EXISTS %smarker", P) == 0; i++) {
		redisReply *r = it_cmd("CLIENT LIST TYPE normal");
		int	    blocked = strstr(r->str, "cmd=bzpopmin") != NULL;

		freeReplyObject(r);
		if (blocked)
			break;
		it_sleep_ms(5);
	}
	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_A));
	pthread_join(t, NULL);
	/* It woke on the job's token (lib.lua token(): job: and the id's
	 * last 2 characters), well before its 10 s timeout. */
	ASSERT_EQ(w.woke, 1);
	ASSERT_EQ(strncmp(w.member, "job:", 4), 0);
	ASSERT_STREQ(w.member + 4, jid + strlen(jid) - 2);
}

static void
test_vram_budget(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	char		  big[64], small[64];

	snprintf(big, sizeof big, "%s",
	    it_enq(P, "{\"workflow\":\"a\",\"vram_mb\":12000}"));
	snprintf(small, sizeof small, "%s",
	    it_enq(P, "{\"workflow\":\"a\",\"vram_mb\":4000}"));
	it_setcap(P, "gpu0", "4", "10000");
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, small);
	ASSERT_STREQ(it_hget(P, big, "state"), "queued");
	/* Nothing else fits: reported as no slot, the big job still waits. */
	ASSERT_STREQ(it_claim_none(P, "w1", "gpu0"), "noslot");
	ASSERT_STREQ(it_hget(P, big, "state"), "queued");
	/* A larger budget set at run time admits it on the next claim. */
	it_setcap(P, "gpu0", "4", "20000");
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_STREQ(c.jid, big);
	{
		redisReply *r = it_fcall(P, "slot_get", "gpu0", NULL);

		ASSERT_EQ(r->element[2]->integer, 2);
		ASSERT_EQ(r->element[3]->integer, 16000);
		freeReplyObject(r);
	}
}

static void
test_slot_guards_and_outside_holders(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	char	    fence[32];

	r = it_fcall(P, "slot_set", "gpu0", "0", NULL);
	ASSERT_ERROR(r, "INVALID capacity: 0 not an integer in 1..256");
	freeReplyObject(r);
	r = it_fcall(P, "slot_set", "gpu0", "100000", NULL);
	ASSERT_ERROR(r, "INVALID capacity: 100000 not an integer in 1..256");
	freeReplyObject(r);
	r = it_fcall(P, "slot_set", "gpu 0", "1", NULL);
	ASSERT_ERROR(r,
	    "INVALID pool: 'gpu 0' may hold only letters, digits "
	    "and . _ : - @ /");
	freeReplyObject(r);
	r = it_fcall(P, "slot_set", "{x}", "1", NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
	ASSERT_EQ(it_keys(P), 0);
	it_setcap(P, "gpu0", "1", "0");
	r = it_fcall(P, "slot_acquire", "gpu0", "warmup", "1000", NULL);
	ASSERT_STREQ(it_str(r, 0), "slot");
	snprintf(fence, sizeof fence, "%s", it_str(r, 1));
	freeReplyObject(r);
	r = it_fcall(P, "slot_acquire", "gpu0", "other", "1000", NULL);
	ASSERT_STREQ(it_str(r, 0), "noslot");
	freeReplyObject(r);
	r = it_fcall(P, "slot_renew", "gpu0", "warmup", "999", "1000", NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
	/* An outside holder whose lease ran out is reaped. */
	it_sleep_ms(1100);
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(r->element[3]->integer, 1);
	freeReplyObject(r);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	r = it_fcall(P, "slot_release", "gpu0", "warmup", fence, NULL);
	ASSERT_STATUS(r, "STALE");
	freeReplyObject(r);
}

static void
test_reap_frees_orphaned_job_slot(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;

	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	it_claim(P, "w1", "gpu0", "30000", &c);
	/* A holder whose fence is not the job's (a crash mid-way). */
	ASSERT_STREQ(c.fence, "1");
	freeReplyObject(it_cmd(
	    "HSET %sheld:gpu0 %s %s", P, c.jid, "w1 999 9999999999999 0"));
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(r->element[3]->integer, 1);
	freeReplyObject(r);
	ASSERT_EQ(it_int("HLEN %sheld:gpu0", P), 0);
	/* Workers waiting on the pool are woken for the freed slot. */
	r = it_cmd("ZSCORE %smarker:gpu0 free:%s", P,
	    c.jid + strlen(c.jid) - 2); /* lib.lua token() */
	ASSERT_EQ(r->type, REDIS_REPLY_STRING);
	freeReplyObject(r);
}

static void
test_reap_promotes_due(void)
{
	const char *P = it_queue("q");
	redisReply *r;
	char	    spec[128], jid[64];

	snprintf(spec, sizeof spec, "{\"workflow\":\"a\",\"run_at\":%lld}",
	    clock_wall_ms() + 300);
	snprintf(jid, sizeof jid, "%s", it_enq(P, spec));
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(r->element[2]->integer, 0);
	freeReplyObject(r);
	it_sleep_ms(350);
	r = it_fcall(P, "reap", NULL);
	ASSERT_EQ(r->element[2]->integer, 1);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, jid, "state"), "queued");
	ASSERT_EQ(it_int("ZCARD %sready:normal", P), 1);
}

static void
test_reap_stall_guard(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c;
	redisReply	 *r;

	it_enq(P, SPEC_A);
	it_setcap(P, "gpu0", "1", "0");
	r = it_fcall(P, "reap", "stall_ms", "500", "grace_ms", "800", NULL);
	freeReplyObject(r);
	it_claim(P, "w1", "gpu0", "1000", &c);
	it_sleep_ms(1100);
	/* The last reap is too long ago: hold off for the grace period. */
	r = it_fcall(P, "reap", "stall_ms", "500", "grace_ms", "800", NULL);
	ASSERT_EQ(r->element[0]->integer, 0);
	ASSERT_EQ(r->element[4]->integer, 1);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "state"), "active");
	it_sleep_ms(900);
	r = it_fcall(P, "reap", "stall_ms", "5000", "grace_ms", "800", NULL);
	ASSERT_EQ(r->element[0]->integer, 1);
	ASSERT_EQ(r->element[4]->integer, 0);
	freeReplyObject(r);
}

static void
test_register_keeps_set_capacity(void)
{
	const char *P = it_queue("q");
	redisReply *r;

	r = it_fcall(P, "register", "w1", "60000", "gpu0", "2", "0", "host",
	    "h1", "gpu_name", "Sim", NULL);
	ASSERT_EQ(r->element[0]->integer, 2);
	freeReplyObject(r);
	r = it_cmd("HGET %sworker:w1 gpu_name", P);
	ASSERT_STREQ(r->str, "Sim");
	freeReplyObject(r);
	it_setcap(P, "gpu0", "5", "0");
	/* A restart with the default does not undo an operator's setting. */
	r = it_fcall(P, "register", "w1", "60000", "gpu0", "2", "0", NULL);
	ASSERT_EQ(r->element[0]->integer, 5);
	freeReplyObject(r);
	r = it_fcall(P, "unregister", "w1", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	r = it_cmd("HGET %sworker:w1 state", P);
	ASSERT_STREQ(r->str, "stopped");
	freeReplyObject(r);
	r = it_fcall(P, "register", "w 1", "60000", "gpu0", "2", "0", NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ERROR);
	freeReplyObject(r);
}

static void
test_heartbeat_survives_corrupt_job(void)
{
	const char	 *P = it_queue("q");
	struct it_claimed c, c2;
	redisReply	 *r;
	long long	  until;

	it_enq(P, SPEC_A);
	it_enq(P, SPEC_A);
	freeReplyObject(
	    it_fcall(P, "register", "w1", "60000", "gpu0", "2", "0", NULL));
	it_claim(P, "w1", "gpu0", "2000", &c);
	it_claim(P, "w1", "gpu0", "2000", &c2);
	until = atoll(it_hget(P, c2.jid, "lease_until"));
	freeReplyObject(it_cmd("DEL %sjob:%s", P, c.jid));
	freeReplyObject(it_cmd("SET %sjob:%s garbage", P, c.jid));
	r = it_fcall(P, "heartbeat", "w1", "30000", "60000", c.jid, c.fence,
	    c2.jid, c2.fence, NULL);
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	ASSERT_EQ(r->element[0]->elements, 1);
	ASSERT_STREQ(r->element[0]->element[0]->str, c.jid);
	ASSERT_EQ(r->element[3]->integer, 1);
	freeReplyObject(r);
	/* The other job's lease and slot were renewed. */
	ASSERT_TRUE(atoll(it_hget(P, c2.jid, "lease_until")) >= until + 27000);
	ASSERT_TRUE(strstr(it_get("HGET %sheld:gpu0 %s", P, c2.jid),
			it_hget(P, c2.jid, "lease_until")) != NULL);
	ASSERT_STREQ(it_get("GET %sjob:%s", P, c.jid), "garbage");
	/* A jid that is no jid is refused before anything is written. */
	r = it_fcall(P, "heartbeat", "w1", "30000", "60000", "", "1", NULL);
	ASSERT_ERROR(r, "INVALID jid: must be 1..64 bytes");
	freeReplyObject(r);
}

static void
test_register_refuses_without_deleting(void)
{
	const char   *P = it_queue("q");
	struct rq_cmd c;
	redisReply   *r;
	int	      i;

	freeReplyObject(it_fcall(P, "register", "w1", "60000", "gpu0", "1", "0",
	    "host", "h1", NULL));
	/* Far more fields than a worker sends. */
	rq_cmd_fcall(&c, "register", P);
	rq_cmd_add(&c, "w1");
	rq_cmd_add(&c, "60000");
	rq_cmd_add(&c, "gpu0");
	rq_cmd_add(&c, "1");
	rq_cmd_add(&c, "0");
	for (i = 0; i < 10000; i++) {
		rq_cmd_addf(&c, "f%d", i);
		rq_cmd_add(&c, "v");
	}
	r = rq_run(it_redis(), &c);
	rq_cmd_free(&c);
	ASSERT_ERROR(r, "INVALID fields: at most 64 pairs");
	freeReplyObject(r);
	ASSERT_STREQ(it_get("HGET %sworker:w1 host", P), "h1");
	/* A field register sets itself. */
	r = it_fcall(P, "register", "w1", "60000", "gpu0", "1", "0", "state",
	    "gone", NULL);
	ASSERT_ERROR(r, "INVALID field: 'state' is set by register");
	freeReplyObject(r);
	ASSERT_STREQ(it_get("HGET %sworker:w1 host", P), "h1");
	ASSERT_STREQ(it_get("HGET %sworker:w1 state", P), "up");
}

/*
 * A key of the wrong type at every key a function touches. For each case a
 * dry run finds the keys the call changes (each must be named in the case:
 * the lists cannot go stale); then for every named key and every other Redis
 * type, a fresh queue gets the same setup, the key is replaced by one of
 * that type, and the call must answer CORRUPT and leave every key of the
 * queue as it was. A tolerated key must be survived instead: the call
 * succeeds and leaves the planted key alone.
 */
struct pc {
	const char	 *P;
	char		  jid[64]; /* %J: a queued job */
	struct it_claimed c;	   /* %C: an active job of w1 in gpu0 */
	char		  fence[32];
};

struct plant_case {
	const char *name;
	void (*setup)(struct pc *);
	redisReply *(*call)(struct pc *);
	const char *keys;      /* suffix=type ...: CORRUPT, nothing written */
	const char *tolerated; /* suffix=type ...: survived, left alone */
	const char *skip;      /* suffixes written but not planted here */
};

static const char *const pc_types[] = { "string", "list", "set", "zset", "hash",
	"stream" };

/* Two jobs of tenant a, one claimed by w1 in gpu0 (capacity 2). */
static void
pc_busy(struct pc *x)
{
	freeReplyObject(it_fcall(x->P, "register", "w1", "60000", "gpu0", "2",
	    "0", "host", "h1", NULL));
	it_enq(x->P, SPEC_A);
	snprintf(x->jid, sizeof x->jid, "%s", it_enq(x->P, SPEC_A));
	it_claim(x->P, "w1", "gpu0", "30000", &x->c);
}

static void
pc_idem(struct pc *x)
{
	pc_busy(x);
	snprintf(x->jid, sizeof x->jid, "%s",
	    it_enq(x->P, "{\"workflow\":\"a\",\"idempotency_key\":\"k\"}"));
}

/* The queued job is due in delayed: claim promotes it first. */
static void
pc_due(struct pc *x)
{
	pc_busy(x);
	freeReplyObject(it_cmd("ZREM %sready:normal %s", x->P, x->jid));
	freeReplyObject(it_cmd("ZADD %sdelayed 1 %s", x->P, x->jid));
	freeReplyObject(it_cmd("HSET %sjob:%s state delayed", x->P, x->jid));
}

static void
pc_full(struct pc *x)
{
	pc_busy(x);
	it_setcap(x->P, "gpu0", "1", "0");
}

static void
pc_fetch(struct pc *x)
{
	freeReplyObject(
	    it_fcall(x->P, "register", "w1", "60000", "gpu0", "1", "0", NULL));
	it_enq(x->P, SPEC_FETCH);
	it_claim_prep(x->P, "w1", "gpu0", "30000", "1", &x->c);
}

static void
pc_expired(struct pc *x)
{
	pc_busy(x);
	freeReplyObject(it_cmd("ZADD %sleases XX 1 %s", x->P, x->c.jid));
}

static void
pc_done(struct pc *x)
{
	pc_busy(x);
	freeReplyObject(it_fcall(x->P, "cancel", x->jid, NULL));
	freeReplyObject(it_cmd("ZADD %sdone XX 1 %s", x->P, x->jid));
}

static void
pc_gone(struct pc *x)
{
	pc_busy(x);
	freeReplyObject(it_cmd("ZADD %sworkers XX %lld w1", x->P,
	    (long long)clock_wall_ms() - 60000));
}

static void
pc_outside(struct pc *x)
{
	redisReply *r;

	pc_busy(x);
	r = it_fcall(x->P, "slot_acquire", "gpu0", "warm", "30000", NULL);
	snprintf(x->fence, sizeof x->fence, "%s", it_str(r, 1));
	freeReplyObject(r);
}

/* A job with a webhook that succeeded: its delivery is pending. */
static void
pc_hooked(struct pc *x)
{
	redisReply *r;

	freeReplyObject(
	    it_fcall(x->P, "register", "w1", "60000", "gpu0", "1", "0", NULL));
	it_enq(x->P, "{\"workflow\":\"a\",\"webhook\":\"http://h/x\"}");
	it_claim(x->P, "w1", "gpu0", "30000", &x->c);
	r = it_fcall(x->P, "complete", x->c.jid, x->c.fence, "[]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
}

/* An active job of w1 in gpu0 with a webhook. */
static void
pc_busy_hooked(struct pc *x)
{
	freeReplyObject(
	    it_fcall(x->P, "register", "w1", "60000", "gpu0", "1", "0", NULL));
	it_enq(x->P, "{\"workflow\":\"a\",\"webhook\":\"http://h/x\"}");
	it_claim(x->P, "w1", "gpu0", "30000", &x->c);
}

/* An active job of w1 in gpu0 that asked for progress webhooks. */
static void
pc_busy_prog(struct pc *x)
{
	freeReplyObject(
	    it_fcall(x->P, "register", "w1", "60000", "gpu0", "1", "0", NULL));
	it_enq(x->P,
	    "{\"workflow\":\"a\",\"webhook\":\"http://h/x\","
	    "\"webhook_progress\":true}");
	it_claim(x->P, "w1", "gpu0", "30000", &x->c);
}

/* ... with a progress delivery pending. */
static void
pc_prog_pending(struct pc *x)
{
	pc_busy_prog(x);
	freeReplyObject(
	    it_fcall(x->P, "progress", x->c.jid, x->c.fence, "1", "2", NULL));
}

/* ... claimed by scheduler s1: seq 1 is delivering. */
static void
pc_prog_delivering(struct pc *x)
{
	pc_prog_pending(x);
	freeReplyObject(it_fcall(
	    x->P, "webhook_progress_claim", "s1", "60000", "10", "1000", NULL));
}

/* ... and claimed by scheduler s1: attempt 1 is delivering. */
static void
pc_delivering(struct pc *x)
{
	pc_hooked(x);
	freeReplyObject(
	    it_fcall(x->P, "webhook_claim", "s1", "60000", "10", NULL));
}

#define PC_CALL(name, ...)                                                     \
	static redisReply *name(struct pc *x)                                  \
	{                                                                      \
		return (it_fcall(x->P, __VA_ARGS__, NULL));                    \
	}
PC_CALL(pc_enqueue, "enqueue",
    "{\"workflow\":\"a\",\"tenant\":\"a\",\"idempotency_key\":\"k\"}")
PC_CALL(pc_enqueue_later, "enqueue",
    "{\"workflow\":\"a\",\"tenant\":\"a\",\"run_at\":4000000000000}")
PC_CALL(pc_enqueue_again, "enqueue",
    "{\"workflow\":\"a\",\"idempotency_key\":\"k\"}")
PC_CALL(pc_claim, "claim", "w1", "gpu0", "30000")
PC_CALL(pc_acquire, "acquire", x->c.jid, x->c.fence, "gpu0")
PC_CALL(pc_heartbeat, "heartbeat", "w1", "30000", "60000", x->c.jid, x->c.fence)
PC_CALL(pc_progress, "progress", x->c.jid, x->c.fence, "1", "2")
PC_CALL(pc_complete, "complete", x->c.jid, x->c.fence, "[]")
PC_CALL(pc_fail, "fail", x->c.jid, x->c.fence, "internal", "boom", "0")
PC_CALL(pc_retry, "fail", x->c.jid, x->c.fence, "oom", "boom", "1")
PC_CALL(pc_cancel_queued, "cancel", x->jid)
PC_CALL(pc_cancel_active, "cancel", x->c.jid)
PC_CALL(pc_release, "release", x->c.jid, x->c.fence)
PC_CALL(pc_reap, "reap")
PC_CALL(pc_trim, "trim")
PC_CALL(pc_expire, "expire", "retention_ms", "60000")
PC_CALL(pc_workers_gone, "workers_gone")
PC_CALL(pc_queue_status, "queue_status")
PC_CALL(pc_job_files, "job_files", x->c.jid, x->c.fence, "[\"input/a.png\"]")
PC_CALL(pc_slot_set, "slot_set", "gpu0", "3")
PC_CALL(pc_slot_get, "slot_get", "gpu0")
PC_CALL(pc_slot_acquire, "slot_acquire", "gpu0", "warm", "30000")
PC_CALL(pc_slot_renew, "slot_renew", "gpu0", "warm", x->fence, "30000")
PC_CALL(pc_slot_release, "slot_release", "gpu0", "warm", x->fence)
PC_CALL(pc_register, "register", "w1", "60000", "gpu0", "2", "0", "host", "h2")
PC_CALL(pc_unregister, "unregister", "w1")
PC_CALL(pc_active_files, "active_files", "")
PC_CALL(pc_webhook_claim, "webhook_claim", "s2", "60000", "10")
PC_CALL(pc_webhook_done, "webhook_done", x->c.jid, "1", "delivered", "200", "")
PC_CALL(pc_webhook_retry, "webhook_done", x->c.jid, "1", "retry", "500",
    "HTTP 500", "1000")
PC_CALL(pc_whp_claim, "webhook_progress_claim", "s2", "60000", "10", "1000")
PC_CALL(
    pc_whp_done, "webhook_progress_done", x->c.jid, "1", "delivered", "200", "")
PC_CALL(pc_whp_retry, "webhook_progress_done", x->c.jid, "1", "retry", "500",
    "HTTP 500", "1000")
PC_CALL(pc_comfy_upload, "comfy_upload", "t", "bot", "in", ".png", "bytes", "0",
    "600")

#define K_FIN "leases=zset done=zset events=stream webhooks=zset whprog=zset "
/* complete checks webhooks and whprog only for a job that uses them. */
#define K_FIN_PLAIN "leases=zset done=zset events=stream "
#define K_ALL_LANES "ready:high=zset ready:normal=zset ready:low=zset "
static const struct plant_case plant_cases[] = {
	{ "enqueue", pc_busy, pc_enqueue,
	    "ready:normal=zset events=stream jobseq=string "
	    "idem:k=string lanes=hash fair:normal=hash secret=string",
	    "marker=zset stats=hash", "job:*" },
	{ "enqueue run_at", pc_busy, pc_enqueue_later,
	    "delayed=zset events=stream jobseq=string lanes=hash "
	    "fair:normal=hash",
	    "stats=hash", "job:*" },
	{ "enqueue existing", pc_idem, pc_enqueue_again,
	    "idem:k=string job:%J=hash", "", "" },
	{ "claim", pc_busy, pc_claim,
	    "slots:gpu0=hash held:gpu0=hash ready:high=zset ready:normal=zset "
	    "job:%J=hash fence=string leases=zset lanes=hash fair:normal=hash "
	    "events=stream delayed=zset",
	    "stats=hash", "" },
	{ "claim promoting", pc_due, pc_claim,
	    "slots:gpu0=hash held:gpu0=hash delayed=zset " K_ALL_LANES
	    "fair:high=hash fair:normal=hash fair:low=hash fence=string "
	    "lanes=hash dead=hash refunds=stream " K_FIN,
	    "marker=zset stats=hash", "job:%J" },
	{ "claim noslot", pc_full, pc_claim,
	    "slots:gpu0=hash held:gpu0=hash ready:high=zset ready:normal=zset",
	    "marker=zset", "" },
	{ "acquire", pc_fetch, pc_acquire,
	    "job:%C=hash slots:gpu0=hash held:gpu0=hash", "", "" },
	{ "heartbeat", pc_busy, pc_heartbeat, "leases=zset workers=zset",
	    "worker:w1=hash job:%C=hash held:gpu0=hash slots:gpu0=hash", "" },
	{ "progress", pc_busy, pc_progress, "job:%C=hash events=stream", "",
	    "" },
	{ "progress hooked", pc_busy_prog, pc_progress,
	    "job:%C=hash events=stream whprog=zset", "", "" },
	{ "complete", pc_busy, pc_complete, "job:%C=hash " K_FIN_PLAIN,
	    "held:gpu0=hash marker:gpu0=zset stats=hash webhooks=zset whprog=zset",
	    "" },
	{ "fail", pc_busy, pc_fail,
	    "job:%C=hash delayed=zset refunds=stream " K_FIN,
	    "held:gpu0=hash marker:gpu0=zset stats=hash", "" },
	{ "fail retried", pc_busy, pc_retry,
	    "job:%C=hash delayed=zset refunds=stream " K_FIN,
	    "held:gpu0=hash marker:gpu0=zset stats=hash", "" },
	{ "cancel queued", pc_busy, pc_cancel_queued,
	    "job:%J=hash ready:normal=zset delayed=zset refunds=stream " K_FIN,
	    "stats=hash", "" },
	{ "cancel active", pc_busy, pc_cancel_active,
	    "job:%C=hash events=stream", "", "" },
	{ "release", pc_busy, pc_release,
	    "job:%C=hash ready:normal=zset refunds=stream " K_FIN,
	    "held:gpu0=hash marker:gpu0=zset marker=zset stats=hash", "" },
	{ "reap", pc_expired, pc_reap,
	    "reaper=hash delayed=zset dead=hash pools=set "
	    "refunds=stream " K_ALL_LANES K_FIN,
	    "held:gpu0=hash marker:gpu0=zset marker=zset stats=hash",
	    "job:%C" },
	{ "trim", pc_busy, pc_trim, "events=stream refunds=stream",
	    "stats=hash", "" },
	{ "expire", pc_done, pc_expire, "done=zset", "stats=hash", "job:%J" },
	{ "workers_gone", pc_gone, pc_workers_gone, "reaper=hash workers=zset",
	    "worker:w1=hash stats=hash", "" },
	{ "queue_status", pc_busy, pc_queue_status,
	    "pools=set delayed=zset dead=hash refunds=stream " K_ALL_LANES
		K_FIN,
	    "slots:gpu0=hash held:gpu0=hash stats=hash", "job:%J" },
	{ "job_files", pc_busy, pc_job_files, "job:%C=hash", "", "" },
	{ "slot_set", pc_busy, pc_slot_set, "pools=set slots:gpu0=hash",
	    "marker=zset marker:gpu0=zset", "" },
	{ "slot_get", pc_busy, pc_slot_get, "slots:gpu0=hash held:gpu0=hash",
	    "", "" },
	{ "slot_acquire", pc_busy, pc_slot_acquire,
	    "slots:gpu0=hash held:gpu0=hash fence=string", "", "" },
	{ "slot_renew", pc_outside, pc_slot_renew, "held:gpu0=hash", "", "" },
	{ "slot_release", pc_outside, pc_slot_release, "held:gpu0=hash",
	    "marker:gpu0=zset", "" },
	{ "register", pc_busy, pc_register,
	    "worker:w1=hash workers=zset pools=set slots:gpu0=hash", "", "" },
	{ "unregister", pc_busy, pc_unregister, "worker:w1=hash", "", "" },
	{ "active_files", pc_busy, pc_active_files, "leases=zset", "", "" },
	{ "complete hooked", pc_busy_hooked, pc_complete,
	    "job:%C=hash " K_FIN_PLAIN "webhooks=zset ",
	    "held:gpu0=hash marker:gpu0=zset stats=hash whprog=zset", "" },
	{ "webhook_claim", pc_hooked, pc_webhook_claim, "webhooks=zset",
	    "job:%C=hash stats=hash", "" },
	{ "webhook_done", pc_delivering, pc_webhook_done, "webhooks=zset",
	    "job:%C=hash stats=hash", "" },
	{ "webhook_done retry", pc_delivering, pc_webhook_retry,
	    "webhooks=zset", "job:%C=hash stats=hash", "" },
	{ "complete progress pending", pc_prog_pending, pc_complete,
	    "job:%C=hash " K_FIN, "held:gpu0=hash marker:gpu0=zset stats=hash",
	    "" },
	{ "webhook_progress_claim", pc_prog_pending, pc_whp_claim,
	    "whprog=zset", "job:%C=hash stats=hash", "" },
	{ "webhook_progress_done", pc_prog_delivering, pc_whp_done,
	    "whprog=zset", "job:%C=hash stats=hash", "" },
	{ "webhook_progress_done retry", pc_prog_delivering, pc_whp_retry,
	    "whprog=zset", "job:%C=hash stats=hash", "" },
	{ "comfy_upload", pc_busy, pc_comfy_upload,
	    "comfy:upload:t:bot/in.png=string", "", "" },
};

/* Replaces key by one of type. */
static void
pc_plant(const char *key, const char *type)
{
	static const char *const make[] = { "SET %s x", "RPUSH %s x",
		"SADD %s x", "ZADD %s 1 x", "HSET %s x 1", "XADD %s * x 1" };
	size_t			 i;

	freeReplyObject(it_cmd("DEL %s", key));
	for (i = 0; i < 6; i++)
		if (strcmp(pc_types[i], type) == 0)
			freeReplyObject(it_cmd(make[i], key));
}

/* Expands a key template: %J and %C become the jobs' ids. */
static void
pc_key(const struct pc *x, const char *tmpl, char *out, size_t len)
{
	if (strcmp(tmpl, "job:%J") == 0)
		snprintf(out, len, "job:%s", x->jid);
	else if (strcmp(tmpl, "job:%C") == 0)
		snprintf(out, len, "job:%s", x->c.jid);
	else
		snprintf(out, len, "%s", tmpl);
}

/* Whether suffix is named in the list (suffix=type entries or suffixes; an
 * entry ending in '*' matches a prefix). */
static int
pc_named(const struct pc *x, const char *list, const char *suffix)
{
	char   buf[1024], *tok, *save, *eq, key[256];
	size_t n;

	snprintf(buf, sizeof buf, "%s", list);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		if ((eq = strchr(tok, '=')) != NULL)
			*eq = '\0';
		pc_key(x, tok, key, sizeof key);
		n = strlen(key);
		if (n > 0 && key[n - 1] == '*' &&
		    strncmp(key, suffix, n - 1) == 0)
			return (1);
		if (strcmp(key, suffix) == 0)
			return (1);
	}
	return (0);
}

static struct pc
pc_start(const struct plant_case *pc)
{
	struct pc x;

	memset(&x, 0, sizeof x);
	x.P = it_queue("pc");
	pc->setup(&x);
	return (x);
}

/* One planted run: key (a suffix template) replaced by type. */
static void
pc_plant_run(const struct plant_case *pc, const char *tmpl, const char *type,
    int tolerated)
{
	struct pc      x = pc_start(pc);
	struct it_snap a, b;
	redisReply    *r;
	char	       key[512], suffix[256];
	size_t	       i, k;

	pc_key(&x, tmpl, suffix, sizeof suffix);
	snprintf(key, sizeof key, "%s%s", x.P, suffix);
	pc_plant(key, type);
	it_snap_take(x.P, &a);
	r = pc->call(&x);
	it_snap_take(x.P, &b);
	unit_checks++;
	if (!tolerated &&
	    (r->type != REDIS_REPLY_ERROR ||
		strncmp(r->str, "CORRUPT ", 8) != 0))
		unit_fail(__FILE__, __LINE__,
		    "%s, %s a %s: expected CORRUPT, "
		    "got type %d '%s'",
		    pc->name, tmpl, type, r->type, r->str ? r->str : "");
	if (tolerated && r->type == REDIS_REPLY_ERROR)
		unit_fail(__FILE__, __LINE__, "%s, %s a %s (tolerated): %s",
		    pc->name, tmpl, type, r->str);
	unit_checks++;
	if (!tolerated && *it_snap_diff(&a, &b) != '\0')
		unit_fail(__FILE__, __LINE__, "%s, %s a %s: wrote %s", pc->name,
		    tmpl, type, it_snap_diff(&a, &b));
	for (i = 0; tolerated && i < a.n; i++) {
		if (strcmp(a.names[i], key) != 0)
			continue;
		for (k = 0; k < b.n && strcmp(b.names[k], key) != 0; k++)
			;
		if (k == b.n || a.lens[i] != b.lens[k] ||
		    memcmp(a.vals[i], b.vals[k], a.lens[i]) != 0)
			unit_fail(__FILE__, __LINE__,
			    "%s, %s a %s (tolerated): the key was changed",
			    pc->name, tmpl, type);
	}
	freeReplyObject(r);
	it_snap_free(&a);
	it_snap_free(&b);
	it_drop(x.P);
}

/* Plants every other type at each key of list. */
static int
pc_plant_all(const struct plant_case *pc, const char *list, int tolerated)
{
	char   buf[1024], *tok, *save, *eq;
	size_t t;
	int    n = 0;

	snprintf(buf, sizeof buf, "%s", list);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		eq = strchr(tok, '=');
		ASSERT_TRUE(eq != NULL);
		*eq = '\0';
		for (t = 0; t < 6; t++) {
			if (strcmp(pc_types[t], eq + 1) == 0)
				continue;
			pc_plant_run(pc, tok, pc_types[t], tolerated);
			n++;
		}
	}
	return (n);
}

static void
test_wrong_type_at_every_key(void)
{
	struct it_snap a, b;
	struct pc      x;
	redisReply    *r;
	char	       diff[8192], *tok, *save;
	size_t	       i, plen;
	int	       runs = 0;

	for (i = 0; i < sizeof plant_cases / sizeof plant_cases[0]; i++) {
		const struct plant_case *pc = &plant_cases[i];

		/* The dry run: every key the call changes is named. */
		x = pc_start(pc);
		plen = strlen(x.P);
		it_snap_take(x.P, &a);
		r = pc->call(&x);
		if (r->type == REDIS_REPLY_ERROR)
			unit_fail(
			    __FILE__, __LINE__, "%s: %s", pc->name, r->str);
		freeReplyObject(r);
		it_snap_take(x.P, &b);
		snprintf(diff, sizeof diff, "%s", it_snap_diff(&a, &b));
		for (tok = strtok_r(diff, " ", &save); tok != NULL;
		     tok = strtok_r(NULL, " ", &save)) {
			unit_checks++;
			if (!pc_named(&x, pc->keys, tok + plen) &&
			    !pc_named(&x, pc->tolerated, tok + plen) &&
			    !pc_named(&x, pc->skip, tok + plen))
				unit_fail(__FILE__, __LINE__,
				    "%s writes %s, not named in its case",
				    pc->name, tok + plen);
		}
		it_snap_free(&a);
		it_snap_free(&b);
		it_drop(x.P);
		runs += pc_plant_all(pc, pc->keys, 0);
		runs += pc_plant_all(pc, pc->tolerated, 1);
	}
	ASSERT_TRUE(runs > 500);
}

/*
 * comfy_upload checks each candidate name it looks at, not only the first:
 * with in.png taken by other bytes, in (1).png of any other type is
 * CORRUPT and nothing is written (the plant cases cannot name a key with a
 * space). A part the key may not hold is INVALID, nothing written.
 */
static void
test_comfy_upload_checks(void)
{
	static const char *const bad[][8] = {
		{ "", "bot", "in", ".png", "b", "0", "600",
		    "INVALID tenant: must be 1..128 bytes" },
		{ "t", "../x", "in", ".png", "b", "0", "600",
		    "INVALID subfolder: '../x' has an empty, '.' or '..' "
		    "part" },
		{ "t", "/x", "in", ".png", "b", "0", "600",
		    "INVALID subfolder: '/x' has an empty, '.' or '..' part" },
		{ "t", "a//b", "in", ".png", "b", "0", "600",
		    "INVALID subfolder: 'a//b' has an empty, '.' or '..' "
		    "part" },
		{ "t", "a:b", "in", ".png", "b", "0", "600",
		    "INVALID subfolder: 'a:b' holds one of \\ :" },
		{ "t", "bot", "a/b", ".png", "b", "0", "600",
		    "INVALID stem: 'a/b' holds one of / \\ :" },
		{ "t", "bot", "a\tb", ".png", "b", "0", "600",
		    "INVALID stem: holds a control character" },
		{ "t", "bot", "", ".png", "b", "0", "600",
		    "INVALID stem: must be 1..511 bytes" },
		{ "t", "bot", "a.", ".png", "b", "0", "600",
		    "INVALID stem: 'a.' and '.png' make a name holding '..'" },
		{ "t", "bot", "in", ".p.g", "b", "0", "600",
		    "INVALID extension: '.p.g' is not '.' and a suffix without "
		    "'.'" },
		{ "t", "bot", "in", ".png", "b", "2", "600",
		    "INVALID overwrite: 2 not an integer in 0..1" },
		{ "t", "bot", "in", ".png", "b", "0", "0",
		    "INVALID ttl: 0 not an integer in 1..31622400" },
	};
	const char    *P;
	struct it_snap a, b;
	redisReply    *r;
	char	       key[256];
	size_t	       i, t;

	for (t = 0; t < sizeof pc_types / sizeof pc_types[0]; t++) {
		if (strcmp(pc_types[t], "string") == 0)
			continue;
		P = it_queue("upc");
		freeReplyObject(it_cmd("SET %scomfy:upload:t:bot/in.png x", P));
		snprintf(key, sizeof key, "%scomfy:upload:t:bot/in (1).png", P);
		pc_plant(key, pc_types[t]);
		it_snap_take(P, &a);
		r = it_fcall(P, "comfy_upload", "t", "bot", "in", ".png", "y",
		    "0", "600", NULL);
		it_snap_take(P, &b);
		unit_checks++;
		if (r->type != REDIS_REPLY_ERROR ||
		    strncmp(r->str, "CORRUPT ", 8) != 0)
			unit_fail(__FILE__, __LINE__,
			    "in (1).png a %s: expected CORRUPT, got type %d "
			    "'%s'",
			    pc_types[t], r->type, r->str ? r->str : "");
		ASSERT_STREQ(it_snap_diff(&a, &b), "");
		freeReplyObject(r);
		it_snap_free(&a);
		it_snap_free(&b);
		it_drop(P);
	}
	P = it_queue("upi");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		r = it_fcall(P, "comfy_upload", bad[i][0], bad[i][1], bad[i][2],
		    bad[i][3], bad[i][4], bad[i][5], bad[i][6], NULL);
		ASSERT_ERROR(r, bad[i][7]);
		freeReplyObject(r);
		ASSERT_EQ(it_keys(P), 0);
	}
}

const struct unit_test itests[] = {
	{ "enqueue_basic", test_enqueue_basic },
	{ "job_ids", test_job_ids },
	{ "enqueue_bad_corpus_writes_nothing",
	    test_enqueue_bad_corpus_writes_nothing },
	{ "enqueue_limits", test_enqueue_limits },
	{ "enqueue_idempotent", test_enqueue_idempotent },
	{ "enqueue_idempotent_parsed", test_enqueue_idempotent_parsed },
	{ "claim_needs_pool_and_slot", test_claim_needs_pool_and_slot },
	{ "claim_takes_job_and_slot", test_claim_takes_job_and_slot },
	{ "claim_nojob_reports_next_due", test_claim_nojob_reports_next_due },
	{ "priority_lanes", test_priority_lanes },
	{ "fair_share_by_tenant", test_fair_share_by_tenant },
	{ "complete_once", test_complete_once },
	{ "stale_complete_after_reap", test_stale_complete_after_reap },
	{ "fail_terminal_refunds_once", test_fail_terminal_refunds_once },
	{ "retry_backoff_grows_then_fails",
	    test_retry_backoff_grows_then_fails },
	{ "success_after_retry_has_no_error",
	    test_success_after_retry_has_no_error },
	{ "enqueue_vram_option", test_enqueue_vram_option },
	{ "cancel_every_state", test_cancel_every_state },
	{ "heartbeat_renews_and_reports_lost",
	    test_heartbeat_renews_and_reports_lost },
	{ "two_reapers_one_requeue", test_two_reapers_one_requeue },
	{ "worker_lost_after_reclaims", test_worker_lost_after_reclaims },
	{ "release_hands_back", test_release_hands_back },
	{ "blocked_claimer_wakes", test_blocked_claimer_wakes },
	{ "vram_budget", test_vram_budget },
	{ "slot_guards_and_outside_holders",
	    test_slot_guards_and_outside_holders },
	{ "reap_frees_orphaned_job_slot", test_reap_frees_orphaned_job_slot },
	{ "reap_promotes_due", test_reap_promotes_due },
	{ "reap_stall_guard", test_reap_stall_guard },
	{ "register_keeps_set_capacity", test_register_keeps_set_capacity },
	{ "enqueue_fetch_flag", test_enqueue_fetch_flag },
	{ "claim_fetch_job_slotless", test_claim_fetch_job_slotless },
	{ "claim_fetch_job_passed_over", test_claim_fetch_job_passed_over },
	{ "claim_fetch_count", test_claim_fetch_count },
	{ "claim_nojob_clears_marker", test_claim_nojob_clears_marker },
	{ "acquire", test_acquire },
	{ "acquire_noslot_and_vram", test_acquire_noslot_and_vram },
	{ "slotless_job_ends", test_slotless_job_ends },
	{ "cancel_publishes", test_cancel_publishes },
	{ "wrong_type_at_every_key", test_wrong_type_at_every_key },
	{ "comfy_upload_checks", test_comfy_upload_checks },
	{ "heartbeat_survives_corrupt_job",
	    test_heartbeat_survives_corrupt_job },
	{ "register_refuses_without_deleting",
	    test_register_refuses_without_deleting },
	{ NULL, NULL },
};
