/*
 * The functions library through its C table (shared/rqfn.h), against a
 * real redis-server: the table names every function the library
 * registers, and each function, called with its builder, gives a reply its
 * decoder takes apart into the values the call should have produced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"
#include "rqfn.h"
#include "util.h"

#define SPEC "{\"workflow\":\"a\"}"

/* Runs c (and frees it); the reply, which the caller frees. */
static redisReply *
call(struct rq_cmd *c)
{
	redisReply *r = rq_run(it_redis(), c);

	rq_cmd_free(c);
	if (r == NULL)
		unit_fail(__FILE__, __LINE__, "redis: %s", it_redis()->errstr);
	return (r);
}

#define DECODED(expr)                                                          \
	do {                                                                   \
		unit_checks++;                                                 \
		if ((expr) != 0)                                               \
			unit_fail(__FILE__, __LINE__, "%s: %s", #expr, err);   \
	} while (0)

static void
test_table_is_the_library(void)
{
	redisReply *r, *lib, *fns = NULL, *name;
	char	    want[64];
	size_t	    i, k, found = 0;

	r = it_cmd("FUNCTION LIST LIBRARYNAME comfyq");
	ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
	ASSERT_EQ(r->elements, 1);
	lib = r->element[0];
	for (k = 0; k + 1 < lib->elements; k += 2)
		if (strcmp(lib->element[k]->str, "functions") == 0)
			fns = lib->element[k + 1];
	ASSERT_TRUE(fns != NULL);
	ASSERT_EQ(fns->elements, RQFN_FN_COUNT);
	for (i = 0; i < RQFN_FN_COUNT; i++) {
		snprintf(
		    want, sizeof want, "comfyq_%s", rqfn_name((enum rqfn_fn)i));
		for (k = 0; k < fns->elements; k++) {
			/* name, <name>, description, ..., flags, ... */
			name = fns->element[k]->element[1];
			if (strcmp(name->str, want) == 0)
				found++;
		}
	}
	ASSERT_EQ(found, RQFN_FN_COUNT);
	freeReplyObject(r);
}

static void
test_version(void)
{
	struct rq_cmd c;
	redisReply   *r;
	const char   *v;
	char	      err[256];

	rqfn_version_cmd(&c);
	r = call(&c);
	DECODED(rqfn_version_reply(r, &v, err, sizeof err));
	ASSERT_STREQ(v, RQ_LIB_VERSION);
	freeReplyObject(r);
}

/* A job from enqueue to complete, with everything a worker calls. */
static void
test_worker_calls(void)
{
	const char		*P = it_queue("w");
	struct rqfn_enqueue_opts o = { .idem_ttl_ms = 60000 };
	struct rqfn_register	 reg;
	struct rqfn_enqueue	 e;
	struct rqfn_claim	 cl;
	struct rqfn_acquire	 a;
	struct rqfn_heartbeat	 hb;
	struct rqfn_active_files af;
	struct rq_cmd		 c;
	redisReply		*r;
	const char		*jid, *files;
	char			 err[512], id[64], fence[32];
	int			 stale;

	rqfn_slot_set_cmd(&c, P, "gpu0", 2, 0);
	r = call(&c);
	DECODED(rqfn_slot_set_reply(r, err, sizeof err));
	freeReplyObject(r);

	rqfn_register_cmd(&c, P, "w1", 60000, "gpu0", 0, 0);
	rq_cmd_add(&c, "host");
	rq_cmd_add(&c, "h1");
	r = call(&c);
	DECODED(rqfn_register_reply(r, &reg, err, sizeof err));
	ASSERT_EQ(reg.capacity, 2);
	ASSERT_EQ(reg.vram_budget_mb, 0);
	freeReplyObject(r);

	rqfn_enqueue_cmd(
	    &c, P, "{\"workflow\":\"a\",\"idempotency_key\":\"k\"}", &o);
	r = call(&c);
	DECODED(rqfn_enqueue_reply(r, &e, err, sizeof err));
	ASSERT_STREQ(e.result, "created");
	ASSERT_STREQ(e.state, "queued");
	ASSERT_EQ(strlen(e.jid), 28);
	snprintf(id, sizeof id, "%s", e.jid);
	freeReplyObject(r);
	rqfn_enqueue_cmd(
	    &c, P, "{\"idempotency_key\":\"k\",\"workflow\":\"a\"}", &o);
	r = call(&c);
	DECODED(rqfn_enqueue_reply(r, &e, err, sizeof err));
	ASSERT_STREQ(e.result, "existing");
	ASSERT_STREQ(e.jid, id);
	freeReplyObject(r);

	rqfn_claim_cmd(&c, P, "w1", "gpu0", 30000, 16, 0);
	r = call(&c);
	DECODED(rqfn_claim_reply(r, &cl, err, sizeof err));
	ASSERT_EQ(cl.kind, RQFN_CLAIM_JOB);
	ASSERT_STREQ(cl.jid, id);
	ASSERT_TRUE(cl.fence > 0);
	ASSERT_EQ(cl.attempt, 1);
	ASSERT_EQ(cl.spec_len, strlen(cl.spec));
	ASSERT_TRUE(strstr(cl.spec, "\"idempotency_key\":\"k\"") != NULL);
	ASSERT_TRUE(cl.lease_until > clock_wall_ms() + 20000);
	ASSERT_EQ(cl.timeout_s, 0); /* none in the spec */
	ASSERT_EQ(cl.slot, 1);
	snprintf(fence, sizeof fence, "%lld", cl.fence);
	freeReplyObject(r);

	/* A job that holds its slot already gets ok again; a stale fence. */
	rqfn_acquire_cmd(&c, P, id, fence, "gpu0");
	r = call(&c);
	DECODED(rqfn_acquire_reply(r, &a, err, sizeof err));
	ASSERT_EQ(a.kind, RQFN_ACQUIRE_OK);
	freeReplyObject(r);
	rqfn_acquire_cmd(&c, P, id, "999999", "gpu0");
	r = call(&c);
	DECODED(rqfn_acquire_reply(r, &a, err, sizeof err));
	ASSERT_EQ(a.kind, RQFN_ACQUIRE_STALE);
	freeReplyObject(r);

	rqfn_heartbeat_cmd(&c, P, "w1", 30000, 60000);
	rqfn_heartbeat_job(&c, id, fence);
	rqfn_heartbeat_job(&c, "nosuchjob", "1");
	r = call(&c);
	DECODED(rqfn_heartbeat_reply(r, &hb, err, sizeof err));
	ASSERT_EQ(hb.nlost, 1);
	ASSERT_STREQ(hb.lost[0]->str, "nosuchjob");
	ASSERT_EQ(hb.ncancel, 0);
	ASSERT_EQ(hb.capacity, 2);
	ASSERT_EQ(hb.registered, 1);
	freeReplyObject(r);

	rqfn_progress_cmd(&c, P, id, fence, 3, 10, "5", NULL);
	r = call(&c);
	DECODED(rqfn_progress_reply(r, &stale, err, sizeof err));
	ASSERT_EQ(stale, 0);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, id, "progress"), "3/10");

	rqfn_job_files_cmd(&c, P, id, fence, "[\"input/a.png\"]");
	r = call(&c);
	DECODED(rqfn_job_files_reply(r, &stale, err, sizeof err));
	ASSERT_EQ(stale, 0);
	freeReplyObject(r);
	rqfn_active_files_cmd(&c, P, "", 100);
	r = call(&c);
	DECODED(rqfn_active_files_reply(r, &af, err, sizeof err));
	ASSERT_EQ(af.truncated, 0);
	ASSERT_EQ(af.njobs, 1);
	rqfn_active_file(&af, 0, &jid, &files);
	ASSERT_STREQ(jid, id);
	ASSERT_STREQ(files, "[\"input/a.png\"]");
	freeReplyObject(r);

	rqfn_complete_cmd(&c, P, id, fence, "[]", NULL);
	r = call(&c);
	DECODED(rqfn_complete_reply(r, &stale, err, sizeof err));
	ASSERT_EQ(stale, 0);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, id, "state"), "succeeded");
	rqfn_complete_cmd(&c, P, id, fence, "[]", NULL);
	r = call(&c);
	DECODED(rqfn_complete_reply(r, &stale, err, sizeof err));
	ASSERT_EQ(stale, 1);
	freeReplyObject(r);

	rqfn_unregister_cmd(&c, P, "w1");
	r = call(&c);
	DECODED(rqfn_unregister_reply(r, err, sizeof err));
	freeReplyObject(r);
	ASSERT_STREQ(it_get("HGET %sworker:w1 state", P), "stopped");
}

/* Claims a job of P on gpu0 for w1: its id and fence. */
static void
claim_one(const char *P, char *jid, size_t jidlen, char *fence, size_t flen)
{
	struct rqfn_claim cl;
	struct rq_cmd	  c;
	redisReply	 *r;
	char		  err[512];

	rqfn_claim_cmd(&c, P, "w1", "gpu0", 30000, 16, 0);
	r = call(&c);
	DECODED(rqfn_claim_reply(r, &cl, err, sizeof err));
	ASSERT_EQ(cl.kind, RQFN_CLAIM_JOB);
	snprintf(jid, jidlen, "%s", cl.jid);
	snprintf(fence, flen, "%lld", cl.fence);
	freeReplyObject(r);
}

/* fail, release and cancel: each ending a job the way its header says. */
static void
test_endings(void)
{
	const char	     *P = it_queue("e");
	struct rqfn_fail_args f = { NULL, NULL, "oom", "out of memory", 1, 1000,
		2000, 0.5, NULL };
	struct rqfn_cancel    k;
	struct rqfn_claim     cl;
	struct rqfn_end	      end;
	struct rq_cmd	      c;
	redisReply	     *r;
	char		      err[512], jid[64], fence[32], queued[64];
	long long	      now = clock_wall_ms();

	it_setcap(P, "gpu0", "2", NULL);
	it_enq(P, SPEC);
	claim_one(P, jid, sizeof jid, fence, sizeof fence);
	f.jid = jid;
	f.fence = fence;
	rqfn_fail_cmd(&c, P, &f);
	r = call(&c);
	DECODED(rqfn_fail_reply(r, &end, err, sizeof err));
	ASSERT_EQ(end.kind, RQFN_END_DELAYED);
	ASSERT_STREQ(end.what, "delayed");
	/* d = 1000 for attempt 1, drawn from [500, 1000): 0.5 gives 750. */
	ASSERT_TRUE(end.due_ms >= now + 750 && end.due_ms < now + 5000);
	freeReplyObject(r);
	rqfn_fail_cmd(&c, P, &f);
	r = call(&c);
	DECODED(rqfn_fail_reply(r, &end, err, sizeof err));
	ASSERT_EQ(end.kind, RQFN_END_STALE);
	freeReplyObject(r);

	/* Nothing ready: nojob, with the delayed job's due time. */
	rqfn_claim_cmd(&c, P, "w1", "gpu0", 30000, 16, 0);
	r = call(&c);
	DECODED(rqfn_claim_reply(r, &cl, err, sizeof err));
	ASSERT_EQ(cl.kind, RQFN_CLAIM_NOJOB);
	ASSERT_TRUE(cl.next_due_ms >= now + 750);
	freeReplyObject(r);

	it_enq(P, SPEC);
	claim_one(P, jid, sizeof jid, fence, sizeof fence);
	rqfn_release_cmd(&c, P, jid, fence, "worker shutting down");
	r = call(&c);
	DECODED(rqfn_release_reply(r, &end, err, sizeof err));
	ASSERT_EQ(end.kind, RQFN_END_QUEUED);
	freeReplyObject(r);
	rqfn_release_cmd(&c, P, jid, fence, NULL);
	r = call(&c);
	DECODED(rqfn_release_reply(r, &end, err, sizeof err));
	ASSERT_EQ(end.kind, RQFN_END_STALE);
	freeReplyObject(r);

	/* The released job again: a cancel request, then fail canceled. */
	claim_one(P, jid, sizeof jid, fence, sizeof fence);
	rqfn_cancel_cmd(&c, P, jid, "test");
	r = call(&c);
	DECODED(rqfn_cancel_reply(r, &k, err, sizeof err));
	ASSERT_EQ(k.kind, RQFN_CANCEL_REQUESTED);
	freeReplyObject(r);
	f.jid = jid;
	f.fence = fence;
	f.code = "internal";
	rqfn_fail_cmd(&c, P, &f);
	r = call(&c);
	DECODED(rqfn_fail_reply(r, &end, err, sizeof err));
	ASSERT_EQ(end.kind, RQFN_END_CANCELED);
	freeReplyObject(r);
	rqfn_cancel_cmd(&c, P, jid, NULL);
	r = call(&c);
	DECODED(rqfn_cancel_reply(r, &k, err, sizeof err));
	ASSERT_EQ(k.kind, RQFN_CANCEL_ALREADY);
	ASSERT_STREQ(k.state, "canceled");
	freeReplyObject(r);

	/* A terminal failure, and a cancel of a queued job. */
	it_enq(P, SPEC);
	claim_one(P, jid, sizeof jid, fence, sizeof fence);
	f.fence = fence;
	f.code = "invalid_input";
	f.retryable = 0;
	rqfn_fail_cmd(&c, P, &f);
	r = call(&c);
	DECODED(rqfn_fail_reply(r, &end, err, sizeof err));
	ASSERT_EQ(end.kind, RQFN_END_FAILED);
	freeReplyObject(r);
	snprintf(queued, sizeof queued, "%s", it_enq(P, SPEC));
	rqfn_cancel_cmd(&c, P, queued, NULL);
	r = call(&c);
	DECODED(rqfn_cancel_reply(r, &k, err, sizeof err));
	ASSERT_EQ(k.kind, RQFN_CANCEL_CANCELED);
	freeReplyObject(r);
	rqfn_cancel_cmd(&c, P, "nosuchjob", NULL);
	r = call(&c);
	ASSERT_EQ(rqfn_cancel_reply(r, &k, err, sizeof err), -1);
	ASSERT_STREQ(err, "NOJOB job nosuchjob does not exist");
	freeReplyObject(r);
}

/* The slot functions, and claim's noslot. */
static void
test_slots(void)
{
	const char		*P = it_queue("s");
	struct rqfn_slot_acquire sa;
	struct rqfn_slot_pools	 ps;
	struct rqfn_slot_get	 sg;
	struct rqfn_holder	 h;
	struct rqfn_claim	 cl;
	struct rq_cmd		 c;
	redisReply		*r;
	char			 err[512], fence[32];
	int			 stale;

	it_setcap(P, "gpu0", "2", NULL);
	it_setcap(P, "gpu1", "1", "8000");
	rqfn_slot_acquire_cmd(&c, P, "gpu1", "warm", 10000, 500);
	r = call(&c);
	DECODED(rqfn_slot_acquire_reply(r, &sa, err, sizeof err));
	ASSERT_EQ(sa.granted, 1);
	ASSERT_TRUE(sa.fence > 0);
	ASSERT_TRUE(sa.lease_until > clock_wall_ms() + 5000);
	snprintf(fence, sizeof fence, "%lld", sa.fence);
	freeReplyObject(r);
	rqfn_slot_acquire_cmd(&c, P, "gpu1", "other", 10000, 0);
	r = call(&c);
	DECODED(rqfn_slot_acquire_reply(r, &sa, err, sizeof err));
	ASSERT_EQ(sa.granted, 0);
	ASSERT_EQ(sa.used, 1);
	ASSERT_EQ(sa.capacity, 1);
	freeReplyObject(r);

	it_enq(P, SPEC);
	rqfn_claim_cmd(&c, P, "w1", "gpu1", 30000, 16, 0);
	r = call(&c);
	DECODED(rqfn_claim_reply(r, &cl, err, sizeof err));
	ASSERT_EQ(cl.kind, RQFN_CLAIM_NOSLOT);
	ASSERT_EQ(cl.used, 1);
	ASSERT_EQ(cl.capacity, 1);
	freeReplyObject(r);

	rqfn_slot_get_cmd(&c, P, "gpu1");
	r = call(&c);
	DECODED(rqfn_slot_get_reply(r, &sg, err, sizeof err));
	ASSERT_EQ(sg.capacity, 1);
	ASSERT_EQ(sg.vram_budget_mb, 8000);
	ASSERT_EQ(sg.used, 1);
	ASSERT_EQ(sg.vram_used_mb, 500);
	ASSERT_EQ(sg.nholders, 1);
	rqfn_slot_holder(&sg, 0, &h);
	ASSERT_STREQ(h.holder, "x:warm");
	ASSERT_STREQ(h.worker, "outside");
	ASSERT_STREQ(h.fence, fence);
	ASSERT_TRUE(h.lease_until > clock_wall_ms());
	ASSERT_EQ(h.vram_mb, 500);
	freeReplyObject(r);

	rqfn_slot_pools_cmd(&c, P);
	r = call(&c);
	DECODED(rqfn_slot_pools_reply(r, &ps, err, sizeof err));
	ASSERT_EQ(ps.npools, 2);
	ASSERT_STREQ(ps.pools[0]->str, "gpu0");
	ASSERT_STREQ(ps.pools[1]->str, "gpu1");
	freeReplyObject(r);

	rqfn_slot_renew_cmd(&c, P, "gpu1", "warm", fence, 20000);
	r = call(&c);
	DECODED(rqfn_slot_renew_reply(r, &stale, err, sizeof err));
	ASSERT_EQ(stale, 0);
	freeReplyObject(r);
	rqfn_slot_renew_cmd(&c, P, "gpu1", "warm", "999999", 20000);
	r = call(&c);
	DECODED(rqfn_slot_renew_reply(r, &stale, err, sizeof err));
	ASSERT_EQ(stale, 1);
	freeReplyObject(r);
	rqfn_slot_release_cmd(&c, P, "gpu1", "warm", fence);
	r = call(&c);
	DECODED(rqfn_slot_release_reply(r, &stale, err, sizeof err));
	ASSERT_EQ(stale, 0);
	freeReplyObject(r);
	rqfn_slot_release_cmd(&c, P, "gpu1", "warm", fence);
	r = call(&c);
	DECODED(rqfn_slot_release_reply(r, &stale, err, sizeof err));
	ASSERT_EQ(stale, 1);
	freeReplyObject(r);

	rqfn_slot_get_cmd(&c, P, "gpu9");
	r = call(&c);
	ASSERT_EQ(rqfn_slot_get_reply(r, &sg, err, sizeof err), -1);
	ASSERT_STREQ(err, "NOPOOL pool 'gpu9' has no capacity set");
	freeReplyObject(r);
}

/* The janitor's duties, on a queue where each has one thing to do. */
static void
test_janitor_duties(void)
{
	const char		*P = it_queue("j");
	struct rqfn_reap_args	 ra = { 3, 2, 100, 0, 0 };
	struct rqfn_trim_args	 ta = { 100000, 86400000, 604800000, 10000 };
	struct rqfn_reap	 rp;
	struct rqfn_trim	 tr;
	struct rqfn_workers_gone wg;
	struct rqfn_queue_status qs;
	struct rqfn_register	 reg;
	struct rq_cmd		 c;
	redisReply		*r;
	char			 err[512], jid[64], fence[32];
	long long		 expired;

	it_setcap(P, "gpu0", "2", NULL);
	rqfn_register_cmd(&c, P, "w1", 60000, "gpu0", 0, 0);
	r = call(&c);
	DECODED(rqfn_register_reply(r, &reg, err, sizeof err));
	freeReplyObject(r);
	/* A job whose lease ran out, one waiting in its lane, and a slot
	 * holder whose job does not exist. */
	freeReplyObject(it_cmd("HSET %sheld:gpu0 gone %s", P, "w9 1 1 0"));
	it_enq(P, SPEC);
	claim_one(P, jid, sizeof jid, fence, sizeof fence);
	freeReplyObject(it_cmd("ZADD %sleases 1 %s", P, jid));
	it_enq(P, SPEC);

	rqfn_reap_cmd(&c, P, &ra);
	r = call(&c);
	DECODED(rqfn_reap_reply(r, &rp, err, sizeof err));
	ASSERT_EQ(rp.requeued, 1);
	ASSERT_EQ(rp.lost, 0);
	ASSERT_EQ(rp.promoted, 0);
	ASSERT_EQ(rp.slots_freed, 1); /* gone's (the requeue freed its own) */
	ASSERT_EQ(rp.holding, 0);
	ASSERT_EQ(rp.buried, 0);
	freeReplyObject(r);

	rqfn_trim_cmd(&c, P, &ta);
	r = call(&c);
	DECODED(rqfn_trim_reply(r, &tr, err, sizeof err));
	ASSERT_EQ(tr.events_trimmed, 0);
	ASSERT_EQ(tr.refunds_trimmed, 0);
	ASSERT_STREQ(tr.refunds_floor, "");
	ASSERT_STREQ(tr.events_floor, "");
	freeReplyObject(r);

	rqfn_expire_cmd(&c, P, 604800000, 100);
	r = call(&c);
	DECODED(rqfn_expire_reply(r, &expired, err, sizeof err));
	ASSERT_EQ(expired, 0);
	freeReplyObject(r);

	it_sleep_ms(5);
	rqfn_workers_gone_cmd(&c, P, 1, 86400000, 100);
	r = call(&c);
	DECODED(rqfn_workers_gone_reply(r, &wg, err, sizeof err));
	ASSERT_EQ(wg.gone, 1);
	ASSERT_EQ(wg.forgotten, 0);
	ASSERT_EQ(wg.nwids, 1);
	ASSERT_STREQ(wg.wids[0]->str, "w1");
	freeReplyObject(r);

	rqfn_queue_status_cmd(&c, P, 50, 1);
	r = call(&c);
	DECODED(rqfn_queue_status_reply(r, &qs, err, sizeof err));
	ASSERT_EQ(qs.events, 2);
	ASSERT_EQ(qs.busy, 0);
	ASSERT_EQ(qs.total, 2);
	ASSERT_EQ(qs.buried, 0);
	freeReplyObject(r);
}

/* cancel of a running job reaches its worker's control channel. */
static void
test_ctl(void)
{
	const char     *P = it_queue("c");
	redisContext   *sub = it_redis_new();
	struct rqfn_ctl m;
	struct rq_cmd	c;
	redisReply     *r;
	char		err[512], jid[64], fence[32];

	rqfn_ctl_subscribe_cmd(&c, P, "w1");
	r = rq_run(sub, &c);
	rq_cmd_free(&c);
	DECODED(rqfn_ctl_reply(r, &m, err, sizeof err));
	ASSERT_EQ(m.kind, RQFN_CTL_SUBSCRIBED);
	freeReplyObject(r);

	it_setcap(P, "gpu0", "1", NULL);
	it_enq(P, SPEC);
	claim_one(P, jid, sizeof jid, fence, sizeof fence);
	freeReplyObject(it_fcall(P, "cancel", jid, NULL));
	ASSERT_EQ(redisGetReply(sub, (void **)&r), REDIS_OK);
	DECODED(rqfn_ctl_reply(r, &m, err, sizeof err));
	ASSERT_EQ(m.kind, RQFN_CTL_CANCEL);
	ASSERT_STREQ(m.jid, jid);
	freeReplyObject(r);
	redisFree(sub);
}

#define SPEC_HOOK                                                              \
	"{\"workflow\":\"a\",\"tenant\":\"t1\",\"meta\":{\"charge\":3},"       \
	"\"webhook\":\"http://127.0.0.1:9/h\"}"

/* A job with a webhook, ended by complete: its delivery is pending. */
static void
hooked_done(const char *P, char *jid, size_t len)
{
	struct it_claimed c;
	redisReply	 *r;

	it_enq(P, SPEC_HOOK);
	it_claim(P, "w1", "gpu0", "30000", &c);
	r = it_fcall(
	    P, "complete", c.jid, c.fence, "[{\"path\":\"a.png\"}]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	snprintf(jid, len, "%s", c.jid);
}

/* webhook_claim as sid: the decoded reply (r to free) */
static redisReply *
wh_claim(const char *P, const char *sid, long long lease, long long batch,
    struct rqfn_webhook_claim *w)
{
	struct rq_cmd c;
	redisReply   *r;
	char	      err[512];

	rqfn_webhook_claim_cmd(&c, P, sid, lease, batch);
	r = call(&c);
	DECODED(rqfn_webhook_claim_reply(r, w, err, sizeof err));
	return (r);
}

/* webhook_done; returns 1 for STALE, 0 for OK. */
static int
wh_done(const char *P, const struct rqfn_webhook_done_args *a)
{
	struct rq_cmd c;
	redisReply   *r;
	char	      err[512];
	int	      stale = -1;

	rqfn_webhook_done_cmd(&c, P, a);
	r = call(&c);
	DECODED(rqfn_webhook_done_reply(r, &stale, err, sizeof err));
	freeReplyObject(r);
	return (stale);
}

/* The field named name of n name, value pairs, or NULL. */
static const char *
pair_get(redisReply *const *fields, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(fields[2 * i]->str, name) == 0)
			return (fields[2 * i + 1]->str);
	return (NULL);
}

#define wh_field(d, name) pair_get((d)->fields, (d)->nfields, (name))

/*
 * A delivery's life: scheduled by the terminal transition, claimed with a
 * lease by one scheduler only, retried, claimed over after its lease runs
 * out (the late holder is STALE), delivered once.
 */
static void
test_webhooks(void)
{
	const char		     *P = it_queue("wh");
	struct rqfn_webhook_claim     w;
	struct rqfn_webhook	      d;
	struct rqfn_webhook_done_args a = { NULL, 1, RQFN_WH_RETRY, 500,
		"HTTP 500", 50 };
	redisReply		     *r, *r2;
	char			      jid[64];
	long long		      now = clock_wall_ms();

	it_setcap(P, "gpu0", "2", NULL);
	/* A job without a webhook schedules nothing. */
	{
		struct it_claimed c;

		it_enq(P, SPEC);
		it_claim(P, "w1", "gpu0", "30000", &c);
		freeReplyObject(
		    it_fcall(P, "complete", c.jid, c.fence, "[]", NULL));
		ASSERT_STREQ(it_hget(P, c.jid, "state"), "succeeded");
		ASSERT_STREQ(it_hget(P, c.jid, "wh_state"), "");
		ASSERT_EQ(it_int("EXISTS %swebhooks", P), 0);
	}
	hooked_done(P, jid, sizeof jid);
	ASSERT_STREQ(it_hget(P, jid, "wh_state"), "pending");
	ASSERT_STREQ(it_hget(P, jid, "wh_attempts"), "0");
	ASSERT_EQ(it_int("ZCARD %swebhooks", P), 1);
	a.jid = jid;

	r = wh_claim(P, "s1", 60000, 16, &w);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_delivery(&w, 0, &d);
	ASSERT_STREQ(d.jid, jid);
	ASSERT_STREQ(d.url, "http://127.0.0.1:9/h");
	ASSERT_EQ(d.attempt, 1);
	ASSERT_TRUE(d.finished_ms >= now && d.finished_ms < now + 5000);
	ASSERT_TRUE(strncmp(d.id, "wh_", 3) == 0 && strcmp(d.id + 3, jid) == 0);
	ASSERT_STREQ(wh_field(&d, "state"), "succeeded");
	ASSERT_STREQ(wh_field(&d, "tenant"), "t1");
	ASSERT_STREQ(wh_field(&d, "refund"), "false");
	ASSERT_STREQ(wh_field(&d, "meta"), "{\"charge\":3}");
	ASSERT_STREQ(wh_field(&d, "outputs"), "[{\"path\":\"a.png\"}]");
	ASSERT_TRUE(wh_field(&d, "end_id") != NULL);
	ASSERT_TRUE(wh_field(&d, "error_code") == NULL);
	/* The lease's end is next due: nothing else is. */
	ASSERT_TRUE(w.next_due_ms >= now + 60000);
	ASSERT_STREQ(it_hget(P, jid, "wh_state"), "delivering");
	ASSERT_STREQ(it_hget(P, jid, "wh_owner"), "s1");
	freeReplyObject(r);

	/* A second scheduler gets nothing while the lease holds. */
	r = wh_claim(P, "s2", 60000, 16, &w);
	ASSERT_EQ(w.n, 0);
	freeReplyObject(r);

	/* Retry: pending again, due 50 ms later, claimed as attempt 2. */
	ASSERT_EQ(wh_done(P, &a), 0);
	ASSERT_STREQ(it_hget(P, jid, "wh_state"), "pending");
	ASSERT_STREQ(it_hget(P, jid, "wh_last_status"), "500");
	ASSERT_STREQ(it_hget(P, jid, "wh_error"), "HTTP 500");
	ASSERT_EQ(it_stat(P, "webhooks_retried"), 1);
	ASSERT_EQ(wh_done(P, &a), 1); /* not delivering: STALE */
	r = wh_claim(P, "s2", 60000, 16, &w);
	ASSERT_EQ(w.n, 0); /* not due yet */
	freeReplyObject(r);
	it_sleep_ms(80);
	r = wh_claim(P, "s2", 100, 16, &w);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_delivery(&w, 0, &d);
	ASSERT_EQ(d.attempt, 2);
	freeReplyObject(r);

	/* Its 100 ms lease runs out: s3 claims attempt 3; s2 is STALE and
	 * writes nothing. */
	it_sleep_ms(150);
	r = wh_claim(P, "s3", 60000, 16, &w);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_delivery(&w, 0, &d);
	ASSERT_EQ(d.attempt, 3);
	freeReplyObject(r);
	a.attempt = 2;
	a.outcome = RQFN_WH_DELIVERED;
	a.status = 200;
	ASSERT_EQ(wh_done(P, &a), 1);
	ASSERT_STREQ(it_hget(P, jid, "wh_state"), "delivering");
	ASSERT_EQ(it_stat(P, "webhooks_delivered"), 0);
	a.attempt = 3;
	a.status = 204;
	ASSERT_EQ(wh_done(P, &a), 0);
	ASSERT_STREQ(it_hget(P, jid, "wh_state"), "delivered");
	ASSERT_STREQ(it_hget(P, jid, "wh_last_status"), "204");
	ASSERT_STREQ(it_hget(P, jid, "wh_error"), "");
	ASSERT_STREQ(it_hget(P, jid, "wh_lease_until"), "");
	ASSERT_EQ(it_int("ZCARD %swebhooks", P), 0);
	ASSERT_EQ(it_stat(P, "webhooks_delivered"), 1);
	ASSERT_EQ(wh_done(P, &a), 1); /* delivered is final */

	/* A failure: the body carries the error and the refund; failed
	 * for good counts webhooks_failed. */
	it_enq(P, SPEC_HOOK);
	{
		struct it_claimed c;

		it_claim(P, "w1", "gpu0", "30000", &c);
		r = it_fcall(P, "fail", c.jid, c.fence, "oom", "out of memory",
		    "0", NULL);
		freeReplyObject(r);
		snprintf(jid, sizeof jid, "%s", c.jid);
	}
	r = wh_claim(P, "s1", 60000, 16, &w);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_delivery(&w, 0, &d);
	ASSERT_STREQ(wh_field(&d, "state"), "failed");
	ASSERT_STREQ(wh_field(&d, "error_code"), "oom");
	ASSERT_STREQ(wh_field(&d, "error"), "out of memory");
	ASSERT_STREQ(wh_field(&d, "refund"), "true");
	freeReplyObject(r);
	a.jid = jid;
	a.attempt = 1;
	a.outcome = RQFN_WH_FAILED;
	a.status = 410;
	a.error = "HTTP 410 Gone";
	ASSERT_EQ(wh_done(P, &a), 0);
	ASSERT_STREQ(it_hget(P, jid, "wh_state"), "failed");
	ASSERT_STREQ(it_hget(P, jid, "wh_error"), "HTTP 410 Gone");
	ASSERT_EQ(it_stat(P, "webhooks_failed"), 1);
	ASSERT_EQ(it_int("ZCARD %swebhooks", P), 0);

	/* Two claimers at once, batch 1 each, over three deliveries: each
	 * delivery goes to exactly one. */
	hooked_done(P, jid, sizeof jid);
	hooked_done(P, jid, sizeof jid);
	hooked_done(P, jid, sizeof jid);
	r = wh_claim(P, "s1", 60000, 2, &w);
	ASSERT_EQ(w.n, 2);
	{
		struct rqfn_webhook_claim w2;
		struct rqfn_webhook	  d2;
		size_t			  i;

		r2 = wh_claim(P, "s2", 60000, 2, &w2);
		ASSERT_EQ(w2.n, 1);
		rqfn_webhook_delivery(&w2, 0, &d2);
		for (i = 0; i < w.n; i++) {
			rqfn_webhook_delivery(&w, i, &d);
			ASSERT_TRUE(strcmp(d.jid, d2.jid) != 0);
		}
		freeReplyObject(r2);
	}
	freeReplyObject(r);

	/* Bad arguments. */
	r = it_fcall(P, "webhook_claim", "s 1", "1000", "1", NULL);
	ASSERT_TRUE(r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "INVALID ", 8) == 0);
	freeReplyObject(r);
	r = it_fcall(P, "webhook_claim", "s1", "1000", "1001", NULL);
	ASSERT_TRUE(r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "INVALID ", 8) == 0);
	freeReplyObject(r);
	r = it_fcall(P, "webhook_done", jid, "1", "maybe", "0", "", NULL);
	ASSERT_TRUE(r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "INVALID ", 8) == 0);
	freeReplyObject(r);
	r = it_fcall(P, "webhook_done", jid, "1", "retry", "0", "", NULL);
	ASSERT_TRUE(r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "INVALID ", 8) == 0);
	freeReplyObject(r);
}

/*
 * The janitor's expire keeps a record whose delivery is still open and
 * deletes it once the delivery has ended.
 */
static void
test_expire_waits_for_webhook(void)
{
	const char		     *P = it_queue("whx");
	struct rqfn_webhook_claim     w;
	struct rqfn_webhook_done_args a = { NULL, 1, RQFN_WH_DELIVERED, 200, "",
		0 };
	struct rq_cmd		      c;
	redisReply		     *r;
	long long		      n = -1;
	char			      jid[64], err[512];

	it_setcap(P, "gpu0", "2", NULL);
	hooked_done(P, jid, sizeof jid);
	freeReplyObject(it_cmd("ZADD %sdone XX 1 %s", P, jid));
	rqfn_expire_cmd(&c, P, 1000, 100);
	r = call(&c);
	DECODED(rqfn_expire_reply(r, &n, err, sizeof err));
	ASSERT_EQ(n, 0);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, jid, "state"), "succeeded");
	/* Looked at again one retention later. */
	ASSERT_TRUE(atoll(it_get("ZSCORE %sdone %s", P, jid)) > 1);
	r = wh_claim(P, "s1", 60000, 16, &w);
	ASSERT_EQ(w.n, 1);
	freeReplyObject(r);
	a.jid = jid;
	ASSERT_EQ(wh_done(P, &a), 0);
	freeReplyObject(it_cmd("ZADD %sdone XX 1 %s", P, jid));
	rqfn_expire_cmd(&c, P, 1000, 100);
	r = call(&c);
	DECODED(rqfn_expire_reply(r, &n, err, sizeof err));
	ASSERT_EQ(n, 1);
	freeReplyObject(r);
	ASSERT_EQ(it_int("EXISTS %sjob:%s", P, jid), 0);
}

#define SPEC_PROG                                                              \
	"{\"workflow\":\"a\",\"tenant\":\"t1\",\"meta\":{\"charge\":3},"       \
	"\"webhook\":\"http://127.0.0.1:9/h\",\"webhook_progress\":true}"

/* webhook_progress_claim as sid: the decoded reply (r to free). */
static redisReply *
whp_claim(const char *P, const char *sid, long long lease, long long interval,
    struct rqfn_webhook_claim *w)
{
	struct rq_cmd c;
	redisReply   *r;
	char	      err[512];

	rqfn_webhook_progress_claim_cmd(&c, P, sid, lease, 16, interval);
	r = call(&c);
	DECODED(rqfn_webhook_progress_claim_reply(r, w, err, sizeof err));
	return (r);
}

/* webhook_progress_done for seq; returns 1 for STALE, 0 for OK. */
static int
whp_done(const char *P, const char *jid, long long seq,
    enum rqfn_wh_outcome outcome, long status, long long retry_ms)
{
	struct rqfn_webhook_done_args a = { jid, seq, outcome, status,
		outcome == RQFN_WH_DELIVERED ? "" : "HTTP 500", retry_ms };
	struct rq_cmd		      c;
	redisReply		     *r;
	char			      err[512];
	int			      stale = -1;

	rqfn_webhook_progress_done_cmd(&c, P, &a);
	r = call(&c);
	DECODED(rqfn_webhook_progress_done_reply(r, &stale, err, sizeof err));
	freeReplyObject(r);
	return (stale);
}

static void
prog(const char *P, const struct it_claimed *c, const char *value)
{
	redisReply *r =
	    it_fcall(P, "progress", c->jid, c->fence, value, "10", "n7", NULL);

	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
}

/*
 * Progress deliveries: opened by progress only for a job that asked, one
 * at most per job whatever the number of steps, carrying the progress of
 * the moment it is claimed; leased, claimed over once the lease runs out
 * (the late holder is STALE), no sooner than the interval after the last
 * claim; dropped by the job's end while pending, left to end alone while
 * being sent, and never opened again for a job that ended.
 */
static void
test_webhook_progress(void)
{
	const char		 *P = it_queue("whp");
	struct rqfn_webhook_claim w;
	struct rqfn_whprog	  d;
	struct it_claimed	  c, c2;
	redisReply		 *r;
	char			  id[128];
	long long		  now = clock_wall_ms(), t0;

	it_setcap(P, "gpu0", "4", NULL);
	/* A job with a webhook but no webhook_progress opens nothing. */
	it_enq(P, SPEC_HOOK);
	it_claim(P, "w1", "gpu0", "30000", &c);
	prog(P, &c, "1");
	ASSERT_STREQ(it_hget(P, c.jid, "webhook_progress"), "0");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_state"), "");
	ASSERT_EQ(it_int("EXISTS %swhprog", P), 0);

	/* Three steps: one delivery, pending, due now. */
	it_enq(P, SPEC_PROG);
	it_claim(P, "w1", "gpu0", "30000", &c);
	ASSERT_STREQ(it_hget(P, c.jid, "webhook_progress"), "1");
	prog(P, &c, "1");
	prog(P, &c, "2");
	prog(P, &c, "3");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_state"), "pending");
	ASSERT_EQ(it_int("ZCARD %swhprog", P), 1);
	ASSERT_TRUE(atoll(it_get("ZSCORE %swhprog %s", P, c.jid)) >= now);

	/* Claimed with the latest progress, seq 1; leased. */
	t0 = clock_wall_ms();
	r = whp_claim(P, "s1", 60000, 200, &w);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_progress(&w, 0, &d);
	ASSERT_STREQ(d.jid, c.jid);
	ASSERT_STREQ(d.url, "http://127.0.0.1:9/h");
	snprintf(id, sizeof id, "whp_%s_1", c.jid);
	ASSERT_STREQ(d.id, id);
	ASSERT_EQ(d.seq, 1);
	ASSERT_EQ(d.tries, 0);
	ASSERT_STREQ(wh_field(&d, "progress"), "3/10");
	ASSERT_STREQ(wh_field(&d, "node"), "n7");
	ASSERT_STREQ(wh_field(&d, "tenant"), "t1");
	ASSERT_STREQ(wh_field(&d, "meta"), "{\"charge\":3}");
	ASSERT_STREQ(wh_field(&d, "attempt"), "1");
	ASSERT_TRUE(w.next_due_ms >= t0 + 60000);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "whp_state"), "delivering");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_owner"), "s1");
	r = whp_claim(P, "s2", 60000, 200, &w);
	ASSERT_EQ(w.n, 0); /* the lease holds */
	freeReplyObject(r);

	/* Progress while it is sent marks it; its end opens the next, due
	 * no sooner than 200 ms after the claim. */
	prog(P, &c, "4");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_dirty"), "1");
	ASSERT_EQ(it_int("ZCARD %swhprog", P), 1);
	ASSERT_EQ(whp_done(P, c.jid, 2, RQFN_WH_DELIVERED, 200, 0), 1);
	ASSERT_EQ(whp_done(P, c.jid, 1, RQFN_WH_DELIVERED, 200, 0), 0);
	ASSERT_EQ(whp_done(P, c.jid, 1, RQFN_WH_DELIVERED, 200, 0), 1);
	ASSERT_STREQ(it_hget(P, c.jid, "whp_state"), "pending");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_delivered"), "1");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_last_status"), "200");
	ASSERT_EQ(it_stat(P, "webhook_progress_delivered"), 1);
	ASSERT_TRUE(atoll(it_get("ZSCORE %swhprog %s", P, c.jid)) >= t0 + 200);
	r = whp_claim(P, "s2", 100, 200, &w);
	if (clock_wall_ms() < t0 + 200)
		ASSERT_EQ(w.n, 0); /* not due yet */
	freeReplyObject(r);
	it_sleep_ms(250);
	r = whp_claim(P, "s2", 100, 200, &w);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_progress(&w, 0, &d);
	ASSERT_EQ(d.seq, 2);
	ASSERT_STREQ(wh_field(&d, "progress"), "4/10");
	freeReplyObject(r);

	/* s2's 100 ms lease runs out (and the 200 ms interval passes): s3
	 * claims seq 3; s2 is STALE and writes nothing. */
	it_sleep_ms(250);
	r = whp_claim(P, "s3", 60000, 200, &w);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_progress(&w, 0, &d);
	ASSERT_EQ(d.seq, 3);
	freeReplyObject(r);
	ASSERT_EQ(whp_done(P, c.jid, 2, RQFN_WH_DELIVERED, 200, 0), 1);
	ASSERT_STREQ(it_hget(P, c.jid, "whp_state"), "delivering");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_delivered"), "1");

	/* A retry: pending again, tries 1; the job's end drops it. */
	ASSERT_EQ(whp_done(P, c.jid, 3, RQFN_WH_RETRY, 500, 50), 0);
	ASSERT_STREQ(it_hget(P, c.jid, "whp_state"), "pending");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_tries"), "1");
	ASSERT_STREQ(it_hget(P, c.jid, "whp_error"), "HTTP 500");
	ASSERT_EQ(it_stat(P, "webhook_progress_retried"), 1);
	r = it_fcall(P, "complete", c.jid, c.fence, "[]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c.jid, "whp_state"), "dropped");
	ASSERT_EQ(it_int("ZCARD %swhprog", P), 0);
	ASSERT_EQ(it_stat(P, "webhook_progress_dropped"), 1);
	ASSERT_STREQ(it_hget(P, c.jid, "wh_state"), "pending");
	ASSERT_STREQ(it_hget(P, c.jid, "wh_attempts"), "0");
	it_sleep_ms(250);
	r = whp_claim(P, "s1", 60000, 200, &w);
	ASSERT_EQ(w.n, 0);
	freeReplyObject(r);

	/* One being sent when the job ends: its end counts and opens none,
	 * though progress came meanwhile. */
	it_enq(P, SPEC_PROG);
	it_claim(P, "w1", "gpu0", "30000", &c2);
	prog(P, &c2, "5");
	r = whp_claim(P, "s1", 60000, 200, &w);
	ASSERT_EQ(w.n, 1);
	freeReplyObject(r);
	prog(P, &c2, "6");
	r = it_fcall(
	    P, "fail", c2.jid, c2.fence, "oom", "out of memory", "0", NULL);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c2.jid, "whp_state"), "delivering");
	ASSERT_EQ(whp_done(P, c2.jid, 1, RQFN_WH_DELIVERED, 204, 0), 0);
	ASSERT_STREQ(it_hget(P, c2.jid, "whp_state"), "delivered");
	ASSERT_STREQ(it_hget(P, c2.jid, "whp_dirty"), "");
	ASSERT_EQ(it_int("ZCARD %swhprog", P), 0);

	/* A job handed back (no longer active): its pending one is dropped
	 * at the claim. */
	it_enq(P, SPEC_PROG);
	it_claim(P, "w1", "gpu0", "30000", &c2);
	prog(P, &c2, "1");
	r = it_fcall(P, "release", c2.jid, c2.fence, NULL);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c2.jid, "state"), "queued");
	r = whp_claim(P, "s1", 60000, 200, &w);
	ASSERT_EQ(w.n, 0);
	freeReplyObject(r);
	ASSERT_STREQ(it_hget(P, c2.jid, "whp_state"), "dropped");
	ASSERT_EQ(it_stat(P, "webhook_progress_dropped"), 2);

	/* gone (410): no more for this job. */
	it_claim(P, "w1", "gpu0", "30000", &c2);
	prog(P, &c2, "1");
	r = whp_claim(P, "s1", 60000, 1, &w);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_progress(&w, 0, &d);
	freeReplyObject(r);
	ASSERT_EQ(whp_done(P, c2.jid, d.seq, RQFN_WH_GONE, 410, 0), 0);
	ASSERT_STREQ(it_hget(P, c2.jid, "whp_state"), "gone");
	ASSERT_STREQ(it_hget(P, c2.jid, "whp_failed"), "1");
	ASSERT_EQ(it_stat(P, "webhook_progress_failed"), 1);
	prog(P, &c2, "2");
	ASSERT_STREQ(it_hget(P, c2.jid, "whp_state"), "gone");
	ASSERT_EQ(it_int("ZCARD %swhprog", P), 0);

	/* Bad arguments. */
	r = it_fcall(P, "webhook_progress_claim", "s1", "1000", "1", "0", NULL);
	ASSERT_TRUE(r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "INVALID interval_ms", 19) == 0);
	freeReplyObject(r);
	r = it_fcall(
	    P, "webhook_progress_done", c2.jid, "1", "maybe", "0", "", NULL);
	ASSERT_TRUE(r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, "INVALID outcome", 15) == 0);
	freeReplyObject(r);
}

/* One comfy_upload: 0 with the name stored in name, or -1 with err. */
static int
upload(const char *P, const struct rqfn_comfy_upload_args *a, char *name,
    size_t len, char *err, size_t errlen)
{
	struct rq_cmd c;
	redisReply   *r;
	const char   *n;
	int	      rc;

	rqfn_comfy_upload_cmd(&c, P, a);
	r = call(&c);
	if ((rc = rqfn_comfy_upload_reply(r, &n, err, errlen)) == 0)
		snprintf(name, len, "%s", n);
	freeReplyObject(r);
	return (rc);
}

/*
 * The ComfyUI front's uploads: a new name is created with its TTL; other
 * bytes get "(1)", the same bytes keep their name, overwrite replaces the
 * first name's bytes; the keys are comfy:upload:<tenant>:<subfolder/name>;
 * past "(99)" it is CONFLICT and nothing is written.
 */
static void
test_comfy_upload(void)
{
	const char		     *P = it_queue("up");
	struct rqfn_comfy_upload_args a = { "tg:", "bot", "in", ".png", "one",
		3, 0, 600 };
	struct it_snap		      s1, s2;
	char			      name[64], key[64], err[512];
	long long		      ttl;
	int			      i;

	DECODED(upload(P, &a, name, sizeof name, err, sizeof err));
	ASSERT_STREQ(name, "in.png");
	ASSERT_STREQ(
	    it_get("GET %scomfy:upload:%s", P, "tg::bot/in.png"), "one");
	ttl = it_int("TTL %scomfy:upload:%s", P, "tg::bot/in.png");
	ASSERT_TRUE(ttl > 590 && ttl <= 600);
	DECODED(upload(P, &a, name, sizeof name, err, sizeof err));
	ASSERT_STREQ(name, "in.png");

	a.bytes = "two";
	DECODED(upload(P, &a, name, sizeof name, err, sizeof err));
	ASSERT_STREQ(name, "in (1).png");
	ASSERT_STREQ(
	    it_get("GET %scomfy:upload:%s", P, "tg::bot/in (1).png"), "two");
	ASSERT_STREQ(
	    it_get("GET %scomfy:upload:%s", P, "tg::bot/in.png"), "one");
	DECODED(upload(P, &a, name, sizeof name, err, sizeof err));
	ASSERT_STREQ(name, "in (1).png");

	a.bytes = "three";
	a.len = 5;
	a.overwrite = 1;
	DECODED(upload(P, &a, name, sizeof name, err, sizeof err));
	ASSERT_STREQ(name, "in.png");
	ASSERT_STREQ(
	    it_get("GET %scomfy:upload:%s", P, "tg::bot/in.png"), "three");

	a.subfolder = "";
	a.ext = "";
	a.overwrite = 0;
	DECODED(upload(P, &a, name, sizeof name, err, sizeof err));
	ASSERT_STREQ(name, "in");
	ASSERT_STREQ(it_get("GET %scomfy:upload:%s", P, "tg::in"), "three");

	for (i = 0; i < 100; i++) {
		if (i == 0)
			snprintf(key, sizeof key, "full.png");
		else
			snprintf(key, sizeof key, "full (%d).png", i);
		freeReplyObject(it_cmd("SET %scomfy:upload:t:%s x", P, key));
	}
	a.tenant = "t";
	a.stem = "full";
	a.ext = ".png";
	it_snap_take(P, &s1);
	ASSERT_EQ(upload(P, &a, name, sizeof name, err, sizeof err), -1);
	it_snap_take(P, &s2);
	ASSERT_STREQ(err,
	    "CONFLICT 100 uploads named full.png to full (99).png hold other "
	    "bytes");
	ASSERT_STREQ(it_snap_diff(&s1, &s2), "");
	it_snap_free(&s1);
	it_snap_free(&s2);
	it_drop(P);
}

const struct unit_test itests[] = {
	{ "table_is_the_library", test_table_is_the_library },
	{ "version", test_version },
	{ "worker_calls", test_worker_calls },
	{ "endings", test_endings },
	{ "slots", test_slots },
	{ "janitor_duties", test_janitor_duties },
	{ "ctl", test_ctl },
	{ "webhooks", test_webhooks },
	{ "expire_waits_for_webhook", test_expire_waits_for_webhook },
	{ "webhook_progress", test_webhook_progress },
	{ "comfy_upload", test_comfy_upload },
	{ NULL, NULL },
};
