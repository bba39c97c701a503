/*
 * The decoders of shared/rqfn.h on replies written by hand in RESP (read
 * with hiredis's own reader, as a connection would): each well-formed reply
 * gives its fields, and each malformed one (a wrong type, an element too
 * few or too many, an unknown tag) gives -1 and a message, never a read
 * past what the reply holds (the sanitizers would see one). The builders'
 * argument vectors are checked against the Lua headers' order.
 */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "rqfn.h"
#include "tresp.h"
#include "unit.h"

/* Whether decoding RESP s with the claim decoder fails, with a message. */
#define REFUSED(dec, s, out)                                                   \
	do {                                                                   \
		redisReply *_r = tresp(s);                                     \
		char	    _e[256] = "";                                      \
		unit_checks++;                                                 \
		if (dec(_r, out, _e, sizeof _e) != -1 || *_e == '\0')          \
			unit_fail(__FILE__, __LINE__, "%s took %s", #dec, #s); \
		freeReplyObject(_r);                                           \
	} while (0)

#define JOB9                                                                   \
	"*9\r\n$3\r\njob\r\n$2\r\nj1\r\n:7\r\n:1\r\n$2\r\n{}\r\n:99\r\n:"      \
	"60\r\n:0\r\n$4\r\nx.st\r\n"

static void
test_claim(void)
{
	struct rqfn_claim c;
	redisReply	 *r;
	char		  err[256];

	r = tresp(JOB9);
	ASSERT_EQ(rqfn_claim_reply(r, &c, err, sizeof err), 0);
	ASSERT_EQ(c.kind, RQFN_CLAIM_JOB);
	ASSERT_STREQ(c.jid, "j1");
	ASSERT_EQ(c.fence, 7);
	ASSERT_EQ(c.attempt, 1);
	ASSERT_STREQ(c.spec, "{}");
	ASSERT_EQ(c.spec_len, 2);
	ASSERT_EQ(c.lease_until, 99);
	ASSERT_EQ(c.timeout_s, 60);
	ASSERT_EQ(c.slot, 0);
	ASSERT_STREQ(c.model, "x.st");
	ASSERT_EQ(c.fetch_waiting, -1); /* not asked for */
	freeReplyObject(r);
	/* Asked for (ARGV[9]): the count of jobs that fetch first. */
	r = tresp("*10\r\n$3\r\njob\r\n$2\r\nj1\r\n:7\r\n:1\r\n$2\r\n{}\r\n"
		  ":99\r\n:60\r\n:1\r\n$0\r\n\r\n:3\r\n");
	ASSERT_EQ(rqfn_claim_reply(r, &c, err, sizeof err), 0);
	ASSERT_EQ(c.kind, RQFN_CLAIM_JOB);
	ASSERT_EQ(c.slot, 1);
	ASSERT_STREQ(c.model, "");
	ASSERT_EQ(c.fetch_waiting, 3);
	freeReplyObject(r);

	r = tresp("*3\r\n$6\r\nnoslot\r\n:2\r\n:2\r\n");
	ASSERT_EQ(rqfn_claim_reply(r, &c, err, sizeof err), 0);
	ASSERT_EQ(c.kind, RQFN_CLAIM_NOSLOT);
	ASSERT_EQ(c.used, 2);
	ASSERT_EQ(c.capacity, 2);
	freeReplyObject(r);
	r = tresp("*2\r\n$5\r\nnojob\r\n$0\r\n\r\n");
	ASSERT_EQ(rqfn_claim_reply(r, &c, err, sizeof err), 0);
	ASSERT_EQ(c.kind, RQFN_CLAIM_NOJOB);
	ASSERT_EQ(c.next_due_ms, 0);
	freeReplyObject(r);
	r = tresp("*2\r\n$5\r\nnojob\r\n$13\r\n1700000000123\r\n");
	ASSERT_EQ(rqfn_claim_reply(r, &c, err, sizeof err), 0);
	ASSERT_EQ(c.next_due_ms, 1700000000123LL);
	freeReplyObject(r);

	/* Eight elements (no model), a fence as a string, a model as a
	 * number, a fetch count as a string, eleven elements. */
	REFUSED(rqfn_claim_reply,
	    "*8\r\n$3\r\njob\r\n$2\r\nj1\r\n:7\r\n:1\r\n$2\r\n{}\r\n:99\r\n"
	    ":60\r\n:0\r\n",
	    &c);
	REFUSED(rqfn_claim_reply,
	    "*9\r\n$3\r\njob\r\n$2\r\nj1\r\n$1\r\n7\r\n:1\r\n$2\r\n{}\r\n"
	    ":99\r\n:60\r\n:0\r\n$0\r\n\r\n",
	    &c);
	REFUSED(rqfn_claim_reply,
	    "*9\r\n$3\r\njob\r\n$2\r\nj1\r\n:7\r\n:1\r\n$2\r\n{}\r\n:99\r\n"
	    ":60\r\n:0\r\n:0\r\n",
	    &c);
	REFUSED(rqfn_claim_reply,
	    "*10\r\n$3\r\njob\r\n$2\r\nj1\r\n:7\r\n:1\r\n$2\r\n{}\r\n:99\r\n"
	    ":60\r\n:0\r\n$0\r\n\r\n$1\r\n0\r\n",
	    &c);
	REFUSED(rqfn_claim_reply,
	    "*11\r\n$3\r\njob\r\n$2\r\nj1\r\n:7\r\n:1\r\n$2\r\n{}\r\n:99\r\n"
	    ":60\r\n:0\r\n$0\r\n\r\n:0\r\n:0\r\n",
	    &c);
	REFUSED(rqfn_claim_reply, "*1\r\n$6\r\nnoslot\r\n", &c);
	REFUSED(rqfn_claim_reply, "*2\r\n$5\r\nnojob\r\n$3\r\nabc\r\n", &c);
	REFUSED(rqfn_claim_reply, "*2\r\n$5\r\nnojob\r\n:5\r\n", &c);
	REFUSED(rqfn_claim_reply, "*1\r\n$4\r\nwhat\r\n", &c);
	REFUSED(rqfn_claim_reply, "*1\r\n:1\r\n", &c);
	REFUSED(rqfn_claim_reply, "*0\r\n", &c);
	REFUSED(rqfn_claim_reply, ":1\r\n", &c);
	REFUSED(rqfn_claim_reply, "+OK\r\n", &c);
	REFUSED(rqfn_claim_reply, "$-1\r\n", &c);
	ASSERT_EQ(rqfn_claim_reply(NULL, &c, err, sizeof err), -1);
	ASSERT_STREQ(err, "no reply");

	/* An error reply comes back as its text. */
	r = tresp("-NOPOOL pool 'g' has no capacity set\r\n");
	ASSERT_EQ(rqfn_claim_reply(r, &c, err, sizeof err), -1);
	ASSERT_STREQ(err, "NOPOOL pool 'g' has no capacity set");
	freeReplyObject(r);
	r = tresp("*2\r\n$3\r\njob\r\n$2\r\nj1\r\n");
	ASSERT_EQ(rqfn_claim_reply(r, &c, err, sizeof err), -1);
	ASSERT_STREQ(
	    err, "unexpected reply to claim (an array of 2, first 'job')");
	freeReplyObject(r);
}

static void
test_worker_replies(void)
{
	struct rqfn_acquire   a;
	struct rqfn_heartbeat h;
	struct rqfn_register  g;
	struct rqfn_end	      e;
	redisReply	     *r;
	char		      err[256];
	int		      stale;

	r = tresp("*1\r\n$2\r\nok\r\n");
	ASSERT_EQ(rqfn_acquire_reply(r, &a, err, sizeof err), 0);
	ASSERT_EQ(a.kind, RQFN_ACQUIRE_OK);
	freeReplyObject(r);
	r = tresp("+STALE\r\n");
	ASSERT_EQ(rqfn_acquire_reply(r, &a, err, sizeof err), 0);
	ASSERT_EQ(a.kind, RQFN_ACQUIRE_STALE);
	freeReplyObject(r);
	r = tresp("*3\r\n$6\r\nnoslot\r\n:1\r\n:4\r\n");
	ASSERT_EQ(rqfn_acquire_reply(r, &a, err, sizeof err), 0);
	ASSERT_EQ(a.kind, RQFN_ACQUIRE_NOSLOT);
	ASSERT_EQ(a.used, 1);
	ASSERT_EQ(a.capacity, 4);
	freeReplyObject(r);
	REFUSED(rqfn_acquire_reply, "*2\r\n$2\r\nok\r\n:1\r\n", &a);
	REFUSED(rqfn_acquire_reply, "*2\r\n$6\r\nnoslot\r\n:1\r\n", &a);
	REFUSED(rqfn_acquire_reply, "+OK\r\n", &a);

	r = tresp(
	    "*4\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$1\r\nc\r\n:3\r\n:1\r\n");
	ASSERT_EQ(rqfn_heartbeat_reply(r, &h, err, sizeof err), 0);
	ASSERT_EQ(h.nlost, 2);
	ASSERT_STREQ(h.lost[1]->str, "b");
	ASSERT_EQ(h.ncancel, 1);
	ASSERT_STREQ(h.cancel[0]->str, "c");
	ASSERT_EQ(h.capacity, 3);
	ASSERT_EQ(h.registered, 1);
	freeReplyObject(r);
	REFUSED(rqfn_heartbeat_reply, "*3\r\n*0\r\n*0\r\n:3\r\n", &h);
	REFUSED(
	    rqfn_heartbeat_reply, "*4\r\n*1\r\n:1\r\n*0\r\n:3\r\n:1\r\n", &h);
	REFUSED(
	    rqfn_heartbeat_reply, "*4\r\n$1\r\na\r\n*0\r\n:3\r\n:1\r\n", &h);
	REFUSED(
	    rqfn_heartbeat_reply, "*4\r\n*0\r\n*0\r\n$1\r\n3\r\n:1\r\n", &h);

	r = tresp("*2\r\n:2\r\n:8000\r\n");
	ASSERT_EQ(rqfn_register_reply(r, &g, err, sizeof err), 0);
	ASSERT_EQ(g.capacity, 2);
	ASSERT_EQ(g.vram_budget_mb, 8000);
	freeReplyObject(r);
	REFUSED(rqfn_register_reply, "*1\r\n:2\r\n", &g);
	REFUSED(rqfn_register_reply, "*2\r\n$1\r\n2\r\n:0\r\n", &g);

	r = tresp("+OK\r\n");
	ASSERT_EQ(rqfn_complete_reply(r, &stale, err, sizeof err), 0);
	ASSERT_EQ(stale, 0);
	freeReplyObject(r);
	r = tresp("+STALE\r\n");
	ASSERT_EQ(rqfn_progress_reply(r, &stale, err, sizeof err), 0);
	ASSERT_EQ(stale, 1);
	freeReplyObject(r);
	REFUSED(rqfn_complete_reply, "+QUEUED\r\n", &stale);
	REFUSED(rqfn_complete_reply, "*1\r\n$2\r\nOK\r\n", &stale);
	REFUSED(rqfn_progress_reply, "$2\r\nOK\r\n", &stale);
	REFUSED(rqfn_job_files_reply, ":1\r\n", &stale);

	r = tresp("*2\r\n$7\r\ndelayed\r\n:1234\r\n");
	ASSERT_EQ(rqfn_fail_reply(r, &e, err, sizeof err), 0);
	ASSERT_EQ(e.kind, RQFN_END_DELAYED);
	ASSERT_EQ(e.due_ms, 1234);
	freeReplyObject(r);
	r = tresp("*1\r\n$8\r\ncanceled\r\n");
	ASSERT_EQ(rqfn_fail_reply(r, &e, err, sizeof err), 0);
	ASSERT_EQ(e.kind, RQFN_END_CANCELED);
	ASSERT_STREQ(e.what, "canceled");
	freeReplyObject(r);
	r = tresp("*1\r\n$6\r\nqueued\r\n");
	ASSERT_EQ(rqfn_release_reply(r, &e, err, sizeof err), 0);
	ASSERT_EQ(e.kind, RQFN_END_QUEUED);
	freeReplyObject(r);
	REFUSED(rqfn_fail_reply, "*1\r\n$7\r\ndelayed\r\n", &e);
	REFUSED(rqfn_fail_reply, "*1\r\n$6\r\nqueued\r\n", &e);
	REFUSED(rqfn_release_reply, "*1\r\n$6\r\nfailed\r\n", &e);
	REFUSED(rqfn_release_reply, "+OK\r\n", &e);
}

static void
test_ctl(void)
{
	struct rqfn_ctl m;
	redisReply     *r;
	char		err[256];

	r = tresp("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
	ASSERT_EQ(rqfn_ctl_reply(r, &m, err, sizeof err), 0);
	ASSERT_EQ(m.kind, RQFN_CTL_SUBSCRIBED);
	freeReplyObject(r);
	r = tresp("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$9\r\ncancel j1\r\n");
	ASSERT_EQ(rqfn_ctl_reply(r, &m, err, sizeof err), 0);
	ASSERT_EQ(m.kind, RQFN_CTL_CANCEL);
	ASSERT_STREQ(m.jid, "j1");
	freeReplyObject(r);
	r = tresp("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nstop\r\n");
	ASSERT_EQ(rqfn_ctl_reply(r, &m, err, sizeof err), 0);
	ASSERT_EQ(m.kind, RQFN_CTL_UNKNOWN);
	ASSERT_STREQ(m.text, "stop");
	freeReplyObject(r);
	REFUSED(rqfn_ctl_reply, "*2\r\n$7\r\nmessage\r\n$2\r\nch\r\n", &m);
	REFUSED(
	    rqfn_ctl_reply, "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:1\r\n", &m);
	REFUSED(rqfn_ctl_reply, "*3\r\n:1\r\n$2\r\nch\r\n:1\r\n", &m);
	REFUSED(rqfn_ctl_reply, "+OK\r\n", &m);
}

static void
test_other_replies(void)
{
	struct rqfn_enqueue	 e;
	struct rqfn_cancel	 k;
	struct rqfn_slot_get	 g;
	struct rqfn_holder	 h;
	struct rqfn_slot_pools	 p;
	struct rqfn_slot_acquire a;
	struct rqfn_workers_gone w;
	struct rqfn_active_files f;
	struct rqfn_reap	 rp;
	struct rqfn_trim	 t;
	struct rqfn_queue_status q;
	const char		*s, *jid, *files;
	long long		 n;
	redisReply		*r;
	char			 err[256];

	r = tresp("$1\r\n2\r\n");
	ASSERT_EQ(rqfn_version_reply(r, &s, err, sizeof err), 0);
	ASSERT_STREQ(s, "2");
	freeReplyObject(r);
	REFUSED(rqfn_version_reply, ":2\r\n", &s);
	REFUSED(rqfn_version_reply, "-ERR Function not found\r\n", &s);

	r = tresp("*3\r\n$2\r\nj1\r\n$7\r\ncreated\r\n$6\r\nqueued\r\n");
	ASSERT_EQ(rqfn_enqueue_reply(r, &e, err, sizeof err), 0);
	ASSERT_STREQ(e.jid, "j1");
	ASSERT_STREQ(e.result, "created");
	ASSERT_STREQ(e.state, "queued");
	freeReplyObject(r);
	REFUSED(rqfn_enqueue_reply, "*2\r\n$2\r\nj1\r\n$7\r\ncreated\r\n", &e);
	REFUSED(rqfn_enqueue_reply, "*3\r\n:1\r\n$1\r\nc\r\n$1\r\nq\r\n", &e);

	r = tresp("*2\r\n$7\r\nalready\r\n$9\r\nsucceeded\r\n");
	ASSERT_EQ(rqfn_cancel_reply(r, &k, err, sizeof err), 0);
	ASSERT_EQ(k.kind, RQFN_CANCEL_ALREADY);
	ASSERT_STREQ(k.state, "succeeded");
	freeReplyObject(r);
	r = tresp("*1\r\n$9\r\nrequested\r\n");
	ASSERT_EQ(rqfn_cancel_reply(r, &k, err, sizeof err), 0);
	ASSERT_EQ(k.kind, RQFN_CANCEL_REQUESTED);
	ASSERT_TRUE(k.state == NULL);
	freeReplyObject(r);
	REFUSED(rqfn_cancel_reply, "*1\r\n$7\r\nalready\r\n", &k);
	REFUSED(rqfn_cancel_reply, "*2\r\n$8\r\ncanceled\r\n:1\r\n", &k);

	r = tresp("*9\r\n:2\r\n:0\r\n:1\r\n:5\r\n$1\r\nj\r\n$1\r\nw\r\n$1\r\n3"
		  "\r\n:77\r\n:5\r\n");
	ASSERT_EQ(rqfn_slot_get_reply(r, &g, err, sizeof err), 0);
	ASSERT_EQ(g.capacity, 2);
	ASSERT_EQ(g.used, 1);
	ASSERT_EQ(g.vram_used_mb, 5);
	ASSERT_EQ(g.nholders, 1);
	rqfn_slot_holder(&g, 0, &h);
	ASSERT_STREQ(h.holder, "j");
	ASSERT_STREQ(h.worker, "w");
	ASSERT_STREQ(h.fence, "3");
	ASSERT_EQ(h.lease_until, 77);
	ASSERT_EQ(h.vram_mb, 5);
	freeReplyObject(r);
	REFUSED(rqfn_slot_get_reply, "*3\r\n:2\r\n:0\r\n:1\r\n", &g);
	REFUSED(rqfn_slot_get_reply,
	    "*7\r\n:2\r\n:0\r\n:1\r\n:5\r\n$1\r\nj\r\n$1\r\nw\r\n$1\r\n3\r\n",
	    &g);
	REFUSED(rqfn_slot_get_reply,
	    "*9\r\n:2\r\n:0\r\n:1\r\n:5\r\n$1\r\nj\r\n$1\r\nw\r\n:3\r\n:77\r\n"
	    ":5\r\n",
	    &g);

	r = tresp("*0\r\n");
	ASSERT_EQ(rqfn_slot_pools_reply(r, &p, err, sizeof err), 0);
	ASSERT_EQ(p.npools, 0);
	freeReplyObject(r);
	REFUSED(rqfn_slot_pools_reply, "*2\r\n$1\r\na\r\n:1\r\n", &p);

	r = tresp("*3\r\n$4\r\nslot\r\n:9\r\n:100\r\n");
	ASSERT_EQ(rqfn_slot_acquire_reply(r, &a, err, sizeof err), 0);
	ASSERT_EQ(a.granted, 1);
	ASSERT_EQ(a.fence, 9);
	ASSERT_EQ(a.lease_until, 100);
	freeReplyObject(r);
	REFUSED(rqfn_slot_acquire_reply, "*2\r\n$4\r\nslot\r\n:9\r\n", &a);

	r = tresp("*6\r\n:1\r\n:2\r\n:3\r\n:4\r\n:0\r\n:6\r\n");
	ASSERT_EQ(rqfn_reap_reply(r, &rp, err, sizeof err), 0);
	ASSERT_EQ(rp.requeued, 1);
	ASSERT_EQ(rp.lost, 2);
	ASSERT_EQ(rp.promoted, 3);
	ASSERT_EQ(rp.slots_freed, 4);
	ASSERT_EQ(rp.holding, 0);
	ASSERT_EQ(rp.buried, 6);
	freeReplyObject(r);
	REFUSED(rqfn_reap_reply, "*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:0\r\n", &rp);
	REFUSED(rqfn_reap_reply,
	    "*6\r\n:1\r\n:2\r\n:3\r\n:4\r\n:0\r\n$1\r\n6\r\n", &rp);

	r = tresp("*4\r\n:5\r\n:0\r\n$0\r\n\r\n$3\r\n1-0\r\n");
	ASSERT_EQ(rqfn_trim_reply(r, &t, err, sizeof err), 0);
	ASSERT_EQ(t.events_trimmed, 5);
	ASSERT_STREQ(t.refunds_floor, "");
	ASSERT_STREQ(t.events_floor, "1-0");
	freeReplyObject(r);
	REFUSED(rqfn_trim_reply, "*2\r\n:5\r\n:0\r\n", &t);

	r = tresp("*1\r\n:4\r\n");
	ASSERT_EQ(rqfn_expire_reply(r, &n, err, sizeof err), 0);
	ASSERT_EQ(n, 4);
	freeReplyObject(r);
	REFUSED(rqfn_expire_reply, "*0\r\n", &n);

	r = tresp("*4\r\n:2\r\n:0\r\n$2\r\nw1\r\n$2\r\nw2\r\n");
	ASSERT_EQ(rqfn_workers_gone_reply(r, &w, err, sizeof err), 0);
	ASSERT_EQ(w.gone, 2);
	ASSERT_EQ(w.nwids, 2);
	ASSERT_STREQ(w.wids[1]->str, "w2");
	freeReplyObject(r);
	REFUSED(rqfn_workers_gone_reply, "*1\r\n:2\r\n", &w);
	REFUSED(rqfn_workers_gone_reply, "*3\r\n:2\r\n:0\r\n:7\r\n", &w);

	r = tresp("*4\r\n:1\r\n:2\r\n:3\r\n:0\r\n");
	ASSERT_EQ(rqfn_queue_status_reply(r, &q, err, sizeof err), 0);
	ASSERT_EQ(q.events, 1);
	ASSERT_EQ(q.total, 3);
	freeReplyObject(r);
	REFUSED(rqfn_queue_status_reply, "*3\r\n:1\r\n:2\r\n:3\r\n", &q);

	r = tresp("*3\r\n:0\r\n$2\r\nj1\r\n$2\r\n[]\r\n");
	ASSERT_EQ(rqfn_active_files_reply(r, &f, err, sizeof err), 0);
	ASSERT_EQ(f.truncated, 0);
	ASSERT_EQ(f.njobs, 1);
	rqfn_active_file(&f, 0, &jid, &files);
	ASSERT_STREQ(jid, "j1");
	ASSERT_STREQ(files, "[]");
	freeReplyObject(r);
	REFUSED(rqfn_active_files_reply, "*2\r\n:0\r\n$2\r\nj1\r\n", &f);
	REFUSED(rqfn_active_files_reply, "*1\r\n$1\r\n0\r\n", &f);
}

static void
test_comfy_upload_replies(void)
{
	const char *name;
	redisReply *r;
	char	    err[256];

	r = tresp("$10\r\nin (1).png\r\n");
	ASSERT_EQ(rqfn_comfy_upload_reply(r, &name, err, sizeof err), 0);
	ASSERT_STREQ(name, "in (1).png");
	freeReplyObject(r);
	REFUSED(rqfn_comfy_upload_reply, ":1\r\n", &name);
	REFUSED(rqfn_comfy_upload_reply, "+OK\r\n", &name);
	REFUSED(rqfn_comfy_upload_reply, "*1\r\n$6\r\nin.png\r\n", &name);
	REFUSED(rqfn_comfy_upload_reply, "*0\r\n", &name);
	REFUSED(rqfn_comfy_upload_reply, "$-1\r\n", &name);
	r = tresp("-CONFLICT 100 uploads named in.png to in (99).png hold "
		  "other bytes\r\n");
	ASSERT_EQ(rqfn_comfy_upload_reply(r, &name, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "CONFLICT 100 uploads named in.png to in (99).png hold other "
	    "bytes");
	freeReplyObject(r);
	r = tresp("*2\r\n$3\r\nbig\r\n$2\r\nxx\r\n");
	ASSERT_EQ(rqfn_comfy_upload_reply(r, &name, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "unexpected reply to comfy_upload (an array of 2, first 'big')");
	freeReplyObject(r);
}

/* The argument vector of c, joined by spaces. */
static const char *
joined(const struct rq_cmd *c)
{
	static char buf[512];
	size_t	    n = 0;
	int	    i;

	buf[0] = '\0';
	for (i = 0; i < c->argc && n < sizeof buf; i++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s",
		    i > 0 ? " " : "", c->argv[i]);
	return (buf);
}

/* One delivery: jid, url, id, attempt, finished_ms, 2 field pairs. */
#define WH1                                                                    \
	"$2\r\nj1\r\n$8\r\nhttp://h\r\n$5\r\nwh_j1\r\n:2\r\n:1700\r\n"         \
	"*4\r\n$5\r\nstate\r\n$9\r\nsucceeded\r\n$6\r\nrefund\r\n"             \
	"$5\r\nfalse\r\n"

static void
test_webhook_replies(void)
{
	struct rqfn_webhook_claim w;
	struct rqfn_webhook	  d;
	redisReply		 *r;
	char			  err[256];
	int			  stale = -1;

	r = tresp("*7\r\n:1234\r\n" WH1);
	ASSERT_EQ(rqfn_webhook_claim_reply(r, &w, err, sizeof err), 0);
	ASSERT_EQ(w.next_due_ms, 1234);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_delivery(&w, 0, &d);
	ASSERT_STREQ(d.jid, "j1");
	ASSERT_STREQ(d.url, "http://h");
	ASSERT_STREQ(d.id, "wh_j1");
	ASSERT_EQ(d.attempt, 2);
	ASSERT_EQ(d.finished_ms, 1700);
	ASSERT_EQ(d.nfields, 2);
	ASSERT_STREQ(d.fields[0]->str, "state");
	ASSERT_STREQ(d.fields[3]->str, "false");
	freeReplyObject(r);
	r = tresp("*13\r\n:0\r\n" WH1 WH1);
	ASSERT_EQ(rqfn_webhook_claim_reply(r, &w, err, sizeof err), 0);
	ASSERT_EQ(w.n, 2);
	freeReplyObject(r);
	r = tresp("*1\r\n:0\r\n");
	ASSERT_EQ(rqfn_webhook_claim_reply(r, &w, err, sizeof err), 0);
	ASSERT_EQ(w.n, 0);
	freeReplyObject(r);
	/* No next due time; one element short; a string for the attempt;
	 * an odd field list; a field that is not a string; an error. */
	REFUSED(rqfn_webhook_claim_reply, "*0\r\n", &w);
	REFUSED(rqfn_webhook_claim_reply,
	    "*6\r\n:0\r\n$2\r\nj1\r\n$1\r\nu\r\n$1\r\ni\r\n:1\r\n:1\r\n", &w);
	REFUSED(rqfn_webhook_claim_reply,
	    "*7\r\n:0\r\n$2\r\nj1\r\n$1\r\nu\r\n$1\r\ni\r\n$1\r\n1\r\n"
	    ":1\r\n*0\r\n",
	    &w);
	REFUSED(rqfn_webhook_claim_reply,
	    "*7\r\n:0\r\n$2\r\nj1\r\n$1\r\nu\r\n$1\r\ni\r\n:1\r\n:1\r\n"
	    "*1\r\n$5\r\nstate\r\n",
	    &w);
	REFUSED(rqfn_webhook_claim_reply,
	    "*7\r\n:0\r\n$2\r\nj1\r\n$1\r\nu\r\n$1\r\ni\r\n:1\r\n:1\r\n"
	    "*2\r\n$5\r\nstate\r\n:1\r\n",
	    &w);
	REFUSED(rqfn_webhook_claim_reply, "-CORRUPT key x\r\n", &w);
	REFUSED(rqfn_webhook_claim_reply, "+OK\r\n", &w);

	r = tresp("+STALE\r\n");
	ASSERT_EQ(rqfn_webhook_done_reply(r, &stale, err, sizeof err), 0);
	ASSERT_EQ(stale, 1);
	freeReplyObject(r);
	r = tresp("+OK\r\n");
	ASSERT_EQ(rqfn_webhook_done_reply(r, &stale, err, sizeof err), 0);
	ASSERT_EQ(stale, 0);
	freeReplyObject(r);
	REFUSED(rqfn_webhook_done_reply, "+QUEUED\r\n", &stale);
	REFUSED(rqfn_webhook_done_reply, "*1\r\n$2\r\nOK\r\n", &stale);
	r = tresp("-INVALID outcome: 'x'\r\n");
	ASSERT_EQ(rqfn_webhook_done_reply(r, &stale, err, sizeof err), -1);
	ASSERT_STREQ(err, "INVALID outcome: 'x'");
	freeReplyObject(r);
}

/* A progress claim: jid, url, id, seq, tries, its fields; its done. */
static void
test_webhook_progress_replies(void)
{
	struct rqfn_webhook_claim w;
	struct rqfn_whprog	  d;
	redisReply		 *r;
	char			  err[256];
	int			  stale = -1;

	r = tresp("*7\r\n:99\r\n$2\r\nj1\r\n$8\r\nhttp://h\r\n"
		  "$8\r\nwhp_j1_7\r\n:7\r\n:1\r\n*4\r\n$8\r\nprogress\r\n"
		  "$4\r\n3/20\r\n$4\r\nnode\r\n$1\r\n5\r\n");
	ASSERT_EQ(rqfn_webhook_progress_claim_reply(r, &w, err, sizeof err), 0);
	ASSERT_EQ(w.next_due_ms, 99);
	ASSERT_EQ(w.n, 1);
	rqfn_webhook_progress(&w, 0, &d);
	ASSERT_STREQ(d.jid, "j1");
	ASSERT_STREQ(d.url, "http://h");
	ASSERT_STREQ(d.id, "whp_j1_7");
	ASSERT_EQ(d.seq, 7);
	ASSERT_EQ(d.tries, 1);
	ASSERT_EQ(d.nfields, 2);
	ASSERT_STREQ(d.fields[1]->str, "3/20");
	ASSERT_STREQ(d.fields[3]->str, "5");
	freeReplyObject(r);
	/* An odd field list names the function. */
	r = tresp("*7\r\n:0\r\n$2\r\nj1\r\n$1\r\nu\r\n$1\r\ni\r\n:1\r\n"
		  ":0\r\n*1\r\n$4\r\nnode\r\n");
	ASSERT_EQ(
	    rqfn_webhook_progress_claim_reply(r, &w, err, sizeof err), -1);
	ASSERT_STREQ(err,
	    "unexpected reply to webhook_progress_claim (an odd field list of "
	    "1)");
	freeReplyObject(r);
	REFUSED(rqfn_webhook_progress_claim_reply, "+OK\r\n", &w);
	r = tresp("+STALE\r\n");
	ASSERT_EQ(
	    rqfn_webhook_progress_done_reply(r, &stale, err, sizeof err), 0);
	ASSERT_EQ(stale, 1);
	freeReplyObject(r);
	REFUSED(rqfn_webhook_progress_done_reply, "+QUEUED\r\n", &stale);
}

static void
test_builders(void)
{
	struct rqfn_enqueue_opts o = { .max_prompt_len = 100 };
	struct rqfn_fail_args f = { "j", "3", "oom", "m", 1, 1000, 2000, 0.25,
		NULL };
	struct rqfn_webhook_done_args wr = { "j", 3, RQFN_WH_RETRY, 500,
		"HTTP 500", 2000 };
	struct rqfn_webhook_done_args wd = { "j", 4, RQFN_WH_DELIVERED, 204, "",
		0 };
	struct rqfn_comfy_upload_args up = { "tg:", "", "in", ".png", "abcd", 3,
		1, 86400 };
	struct rq_cmd		      c;

	rqfn_claim_cmd(&c, "cq:{q}:", "w", "gpu0", 30000, 16, 2);
	ASSERT_STREQ(
	    joined(&c), "FCALL comfyq_claim 1 cq:{q}: w gpu0 30000 16 2");
	rq_cmd_free(&c);
	rqfn_claim_cmd(&c, "cq:{q}:", "w", "gpu0", 30000, 16, 2);
	rqfn_claim_prefer(&c, "x.safetensors", 10000, 32, 0);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_claim 1 cq:{q}: w gpu0 30000 16 2 x.safetensors "
	    "10000 32");
	rq_cmd_free(&c);
	rqfn_claim_cmd(&c, "cq:{q}:", "w", "gpu0", 30000, 16, 0);
	rqfn_claim_prefer(&c, "", 10000, 32, 1);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_claim 1 cq:{q}: w gpu0 30000 16 0  10000 32 1");
	rq_cmd_free(&c);
	rqfn_fail_cmd(&c, "cq:{q}:", &f);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_fail 1 cq:{q}: j 3 oom m 1 1000 2000 0.250000");
	rq_cmd_free(&c);
	rqfn_enqueue_cmd(&c, "cq:{q}:", "{}", &o);
	ASSERT_STREQ(
	    joined(&c), "FCALL comfyq_enqueue 1 cq:{q}: {} max_prompt_len 100");
	rq_cmd_free(&c);
	o.model = "a.safetensors,b.safetensors";
	rqfn_enqueue_cmd(&c, "cq:{q}:", "{}", &o);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_enqueue 1 cq:{q}: {} max_prompt_len 100 model "
	    "a.safetensors,b.safetensors");
	rq_cmd_free(&c);
	rqfn_progress_cmd(&c, "cq:{q}:", "j", "3", 1, 2, NULL, NULL);
	ASSERT_STREQ(joined(&c), "FCALL comfyq_progress 1 cq:{q}: j 3 1 2");
	rq_cmd_free(&c);
	rqfn_progress_cmd(&c, "cq:{q}:", "j", "3", 1, 2, NULL, "{}");
	ASSERT_STREQ(joined(&c), "FCALL comfyq_progress 1 cq:{q}: j 3 1 2  {}");
	rq_cmd_free(&c);
	rqfn_complete_cmd(&c, "cq:{q}:", "j", "3", "[]", "{\"ran\":[]}");
	ASSERT_STREQ(
	    joined(&c), "FCALL comfyq_complete 1 cq:{q}: j 3 [] {\"ran\":[]}");
	rq_cmd_free(&c);
	f.nodes = "{}";
	rqfn_fail_cmd(&c, "cq:{q}:", &f);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_fail 1 cq:{q}: j 3 oom m 1 1000 2000 0.250000 {}");
	rq_cmd_free(&c);
	rqfn_version_cmd(&c);
	ASSERT_STREQ(joined(&c), "FCALL_RO comfyq_version 0");
	rq_cmd_free(&c);
	rqfn_webhook_claim_cmd(&c, "cq:{q}:", "s1", 30000, 16);
	ASSERT_STREQ(
	    joined(&c), "FCALL comfyq_webhook_claim 1 cq:{q}: s1 30000 16");
	rq_cmd_free(&c);
	rqfn_webhook_done_cmd(&c, "cq:{q}:", &wr);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_webhook_done 1 cq:{q}: j 3 retry 500 HTTP 500 2000");
	rq_cmd_free(&c);
	rqfn_webhook_done_cmd(&c, "cq:{q}:", &wd);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_webhook_done 1 cq:{q}: j 4 delivered 204 ");
	rq_cmd_free(&c);
	rqfn_webhook_progress_claim_cmd(&c, "cq:{q}:", "s1", 30000, 16, 1000);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_webhook_progress_claim 1 cq:{q}: s1 30000 16 1000");
	rq_cmd_free(&c);
	rqfn_webhook_progress_done_cmd(&c, "cq:{q}:", &wr);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_webhook_progress_done 1 cq:{q}: j 3 retry 500 HTTP "
	    "500 2000");
	rq_cmd_free(&c);
	wd.outcome = RQFN_WH_GONE;
	rqfn_webhook_progress_done_cmd(&c, "cq:{q}:", &wd);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_webhook_progress_done 1 cq:{q}: j 4 gone 204 ");
	rq_cmd_free(&c);
	rqfn_comfy_upload_cmd(&c, "cq:{q}:", &up);
	ASSERT_STREQ(joined(&c),
	    "FCALL comfyq_comfy_upload 1 cq:{q}: tg:  in .png abc 1 86400");
	ASSERT_EQ(c.lens[8], 3);
	rq_cmd_free(&c);
	rqfn_ctl_subscribe_cmd(&c, "cq:{q}:", "w");
	ASSERT_STREQ(joined(&c), "SUBSCRIBE cq:{q}:ctl:w");
	rq_cmd_free(&c);
}

const struct unit_test test_rqfn[] = {
	{ "claim", test_claim },
	{ "worker_replies", test_worker_replies },
	{ "ctl", test_ctl },
	{ "other_replies", test_other_replies },
	{ "webhook_replies", test_webhook_replies },
	{ "webhook_progress_replies", test_webhook_progress_replies },
	{ "comfy_upload_replies", test_comfy_upload_replies },
	{ "builders", test_builders },
	{ NULL, NULL },
};
