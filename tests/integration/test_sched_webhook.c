/*
 * The webhook engine (scheduler/sched_webhook.h) as comfyq-scheduler runs
 * it: a struct sched built by hand on one event loop (an rq_async to the
 * test redis-server, an httpc, settings filled in here) and a small evhttp
 * receiver on a private port of the same loop. Jobs end through the real
 * functions library; the test asserts what the receiver saw (requests,
 * headers, a signature it checks with its own HMAC, bodies, timing) and
 * what Redis holds (wh_* fields, the webhooks zset, stats).
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "httpc.h"
#include "itest.h"
#include "rq.h"
#include "sched.h"
#include "sched_webhook.h"
#include "sched_whbody.h"
#include "util.h"

#define KEY_TEXT "comfyq webhook test key!"
#define SECRET	 "whsec_Y29tZnlxIHdlYmhvb2sgdGVzdCBrZXkh"
#define MAXREQ	 64

/* What the receiver saw, one row per request. */
struct seen {
	char	  path[32];
	char	  id[96];
	char	  ts[32];
	char	  sig[128];
	char	  ctype[64];
	char	 *body;
	long long at_ms;
};

static char secret_good[] = SECRET, secret_none[] = "",
	    secret_bad[] = "whsec_***";

static struct {
	struct event_base *base;
	struct rq_async	  *rc;
	struct httpc	  *http;
	struct evhttp	  *recv;
	int		   port;
	struct seen	   seen[MAXREQ];
	int		   nseen;
	int		   overlap; /* one id in flight twice at once */
	char		   busy[MAXREQ][96];
	int		   nbusy;
	struct sched	  *hang_victim; /* freed when /hang is first hit */
} T;

static void
seen_reset(void)
{
	int i;

	for (i = 0; i < T.nseen; i++)
		free(T.seen[i].body);
	memset(T.seen, 0, sizeof T.seen);
	T.nseen = 0;
	T.overlap = 0;
	T.nbusy = 0;
}

static int
count_path(const char *path)
{
	int i, n = 0;

	for (i = 0; i < T.nseen; i++)
		n += strcmp(T.seen[i].path, path) == 0;
	return (n);
}

static int
count_id(const char *id)
{
	int i, n = 0;

	for (i = 0; i < T.nseen; i++)
		n += strcmp(T.seen[i].id, id) == 0;
	return (n);
}

static void
busy_end(const char *id)
{
	int i;

	for (i = 0; i < T.nbusy; i++)
		if (strcmp(T.busy[i], id) == 0) {
			memmove(
			    T.busy[i], T.busy[T.nbusy - 1], sizeof T.busy[i]);
			T.nbusy--;
			return;
		}
}

static void
slow_reply(evutil_socket_t fd, short what, void *arg)
{
	struct evhttp_request *req = arg;
	const char	      *id = evhttp_find_header(
		       evhttp_request_get_input_headers(req), "webhook-id");

	(void)fd;
	(void)what;
	busy_end(id != NULL ? id : "");
	evhttp_send_reply(req, 200, "OK", NULL);
}

static void
copy_header(struct evhttp_request *req, const char *name, char *out, size_t n)
{
	const char *v =
	    evhttp_find_header(evhttp_request_get_input_headers(req), name);

	snprintf(out, n, "%s", v != NULL ? v : "");
}

/* Answers by path: /ok 200, /gone 410, /fail 500, /flaky 500 to an id's
 * first two requests then 200, /slow 200 after 50 ms, /hang never answers
 * an id's first request (and frees T.hang_victim's engine), then 200. */
static void
recv_cb(struct evhttp_request *req, void *arg)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	struct seen	*s;
	struct timeval	 tv = { 0, 50000 };
	size_t		 len = evbuffer_get_length(in);
	int		 i, code = 200;

	(void)arg;
	if (T.nseen == MAXREQ) {
		evhttp_send_reply(req, 507, "Full", NULL);
		return;
	}
	s = &T.seen[T.nseen++];
	snprintf(s->path, sizeof s->path, "%s", evhttp_request_get_uri(req));
	copy_header(req, "webhook-id", s->id, sizeof s->id);
	copy_header(req, "webhook-timestamp", s->ts, sizeof s->ts);
	copy_header(req, "webhook-signature", s->sig, sizeof s->sig);
	copy_header(req, "Content-Type", s->ctype, sizeof s->ctype);
	s->body = calloc(1, len + 1);
	evbuffer_remove(in, s->body, len);
	s->at_ms = clock_mono_ms();
	if (strcmp(s->path, "/slow") == 0) {
		for (i = 0; i < T.nbusy; i++)
			if (strcmp(T.busy[i], s->id) == 0)
				T.overlap = 1;
		memcpy(T.busy[T.nbusy++], s->id, sizeof s->id);
		event_base_once(T.base, -1, EV_TIMEOUT, slow_reply, req, &tv);
		return;
	}
	if (strcmp(s->path, "/hang") == 0 && count_id(s->id) == 1) {
		webhooks_free(T.hang_victim->wh);
		T.hang_victim->wh = NULL;
		return; /* curl's close frees req */
	}
	if (strcmp(s->path, "/gone") == 0)
		code = 410;
	else if (strcmp(s->path, "/fail") == 0 ||
	    (strcmp(s->path, "/flaky") == 0 && count_id(s->id) <= 2))
		code = 500;
	evhttp_send_reply(req, code, "X", NULL);
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Sets up the loop, Redis, HTTP client and receiver once. */
static void
world(void)
{
	struct evhttp_bound_socket *b;
	struct sockaddr_in	    sin;
	socklen_t		    sl = sizeof sin;
	struct timeval		    tv = { 0, 5000 };
	struct event		   *tick;
	char			    err[256];
	int			    i;

	if (T.base != NULL)
		return;
	T.base = event_base_new();
	tick = event_new(T.base, -1, EV_PERSIST, tick_cb, NULL);
	event_add(tick, &tv); /* wakes the loop: see run_until */
	T.rc = rq_async_new(T.base, getenv("COMFYQ_TEST_REDIS_URL"), NULL, 1,
	    NULL, NULL, err, sizeof err);
	ASSERT_TRUE(T.rc != NULL);
	for (i = 0; i < 400 && !rq_async_up(T.rc); i++)
		event_base_loop(T.base, EVLOOP_ONCE);
	ASSERT_TRUE(rq_async_up(T.rc));
	T.http = httpc_new(T.base);
	T.recv = evhttp_new(T.base);
	b = evhttp_bind_socket_with_handle(T.recv, "127.0.0.1", 0);
	ASSERT_TRUE(b != NULL);
	getsockname(
	    evhttp_bound_socket_get_fd(b), (struct sockaddr *)&sin, &sl);
	T.port = ntohs(sin.sin_port);
	evhttp_set_gencb(T.recv, recv_cb, NULL);
}

/* A scheduler's settings as the tests want them (fast retries). */
static void
cfg_fill(struct sched_cfg *c)
{
	memset(c, 0, sizeof *c);
	c->webhook_secret = secret_good;
	c->webhook_max_age_s = 86400;
	c->webhook_timeout_ms = 2000;
	c->webhook_retry_base_ms = 200;
	c->webhook_retry_max_ms = 1000;
	c->webhook_concurrency = 16;
	c->webhook_allow_private = 1;
	c->webhook_lease_ms = 30000;
	c->webhook_progress_interval_ms = 1000;
}

static void
sched_fill(struct sched *s, struct sched_cfg *c, const char *P)
{
	char err[256] = "";

	memset(s, 0, sizeof *s);
	s->base = T.base;
	s->cfg = c;
	snprintf(s->prefix, sizeof s->prefix, "%s", P);
	s->rc = T.rc;
	s->http = T.http;
	s->wh = webhooks_new(s, err, sizeof err);
	if (s->wh == NULL)
		unit_fail(__FILE__, __LINE__, "webhooks_new: %s", err);
}

/* Runs the loop until cond() holds or ms pass; returns whether it held. */
static int
run_until(int (*cond)(const void *), const void *arg, int ms)
{
	long long end = clock_mono_ms() + ms;

	while (clock_mono_ms() < end) {
		event_base_loop(T.base, EVLOOP_ONCE);
		if (cond != NULL && cond(arg))
			return (1);
	}
	return (cond == NULL);
}

/* A job of P whose webhook is http://127.0.0.1:<port><path>, ended by
 * complete (or by fail when failed). Its id goes to jid. */
static void
job_end(const char *P, const char *path, int failed, char *jid, size_t n)
{
	struct it_claimed c;
	redisReply	 *r;
	char		  spec[512];

	snprintf(spec, sizeof spec,
	    "{\"workflow\":\"a\",\"tenant\":\"t1\",\"meta\":{\"charge\":3},"
	    "\"webhook\":\"http://127.0.0.1:%d%s\"}",
	    T.port, path);
	it_enq(P, spec);
	it_claim(P, "w1", "gpu0", "30000", &c);
	if (failed)
		r = it_fcall(P, "fail", c.jid, c.fence, "oom", "out of memory",
		    "0", NULL);
	else
		r = it_fcall(P, "complete", c.jid, c.fence,
		    "[{\"path\":\"o.png\"}]", NULL);
	ASSERT_TRUE(r->type != REDIS_REPLY_ERROR);
	freeReplyObject(r);
	snprintf(jid, n, "%s", c.jid);
}

struct wait_state {
	const char *P;
	const char *jid;
	const char *state;
};

static int
in_state(const void *arg)
{
	const struct wait_state *w = arg;

	return (strcmp(it_hget(w->P, w->jid, "wh_state"), w->state) == 0);
}

static int
wait_state(const char *P, const char *jid, const char *state, int ms)
{
	struct wait_state w = { P, jid, state };

	return (run_until(in_state, &w, ms));
}

/* The receiver's own check of a Standard Webhooks signature. */
static int
signature_ok(const struct seen *s)
{
	unsigned char mac[32];
	unsigned int  n = sizeof mac;
	char	      msg[8192], b64[64];

	snprintf(msg, sizeof msg, "%s.%s.%s", s->id, s->ts, s->body);
	HMAC(EVP_sha256(), KEY_TEXT, (int)strlen(KEY_TEXT),
	    (unsigned char *)msg, strlen(msg), mac, &n);
	EVP_EncodeBlock((unsigned char *)b64, mac, (int)n);
	return (strncmp(s->sig, "v1,", 3) == 0 && strcmp(s->sig + 3, b64) == 0);
}

static const char *
jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return (cJSON_IsString(v) ? v->valuestring : "");
}

/* The webhook objects GET /v1/jobs/{id} shows for the job; the caller
 * frees it. */
static cJSON *
job_view(const char *P, const char *jid)
{
	redisReply *h = it_cmd("HGETALL %sjob:%s", P, jid);
	cJSON	   *job = cJSON_CreateObject();

	whbody_describe(h, job);
	freeReplyObject(h);
	return (job);
}

static void
test_delivered_once_signed(void)
{
	struct sched_cfg c;
	struct sched	 s;
	char		 P[128], jid[64], want[96];
	cJSON		*body, *job;
	long long	 ts;

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("ok"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	sched_fill(&s, &c, P);
	job_end(P, "/ok", 0, jid, sizeof jid);
	ASSERT_TRUE(wait_state(P, jid, "delivered", 5000));
	run_until(NULL, NULL, 300); /* no second request comes */
	ASSERT_EQ(T.nseen, 1);
	snprintf(want, sizeof want, "wh_%s", jid);
	ASSERT_STREQ(T.seen[0].id, want);
	ASSERT_STREQ(T.seen[0].ctype, "application/json");
	ts = atoll(T.seen[0].ts);
	ASSERT_TRUE(ts >= clock_wall_ms() / 1000 - 10 &&
	    ts <= clock_wall_ms() / 1000 + 1);
	ASSERT_TRUE(signature_ok(&T.seen[0]));
	body = cJSON_Parse(T.seen[0].body);
	ASSERT_TRUE(body != NULL);
	ASSERT_STREQ(jstr(body, "type"), "succeeded");
	ASSERT_STREQ(jstr(body, "job"), jid);
	ASSERT_STREQ(jstr(body, "state"), "succeeded");
	ASSERT_STREQ(jstr(body, "tenant"), "t1");
	ASSERT_TRUE(
	    cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(body, "refund")));
	ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(
		      cJSON_GetObjectItemCaseSensitive(body, "meta"), "charge")
		      ->valueint,
	    3);
	ASSERT_TRUE(
	    cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(body, "outputs")));
	ASSERT_STREQ(jstr(body, "end_id"), it_hget(P, jid, "end_id"));
	ASSERT_TRUE(cJSON_IsNumber(
	    cJSON_GetObjectItemCaseSensitive(body, "finished_ms")));
	cJSON_Delete(body);
	ASSERT_STREQ(it_hget(P, jid, "wh_last_status"), "200");
	ASSERT_STREQ(it_hget(P, jid, "wh_attempts"), "1");
	ASSERT_EQ(it_stat(P, "webhooks_delivered"), 1);
	ASSERT_EQ(it_int("ZCARD %swebhooks", P), 0);

	/* GET /v1/jobs/{id}'s view of it. */
	job = job_view(P, jid);
	body = cJSON_GetObjectItemCaseSensitive(job, "webhook");
	ASSERT_STREQ(jstr(body, "state"), "delivered");
	ASSERT_EQ(
	    cJSON_GetObjectItemCaseSensitive(body, "attempts")->valueint, 1);
	ASSERT_EQ(
	    cJSON_GetObjectItemCaseSensitive(body, "last_status")->valueint,
	    200);
	ASSERT_TRUE(
	    cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(body, "next_ms")));
	cJSON_Delete(job);
	webhooks_free(s.wh);
}

static void
test_retried_then_delivered(void)
{
	struct sched_cfg c;
	struct sched	 s;
	char		 P[128], jid[64];
	long long	 gap1, gap2;

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("flaky"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	sched_fill(&s, &c, P);
	job_end(P, "/flaky", 1, jid, sizeof jid);
	ASSERT_TRUE(wait_state(P, jid, "delivered", 8000));
	ASSERT_EQ(T.nseen, 3);
	ASSERT_STREQ(T.seen[0].id, T.seen[2].id);
	ASSERT_TRUE(signature_ok(&T.seen[1]));
	/* Backoff 200 ms then 400 ms, each drawn from [d/2, d). */
	gap1 = T.seen[1].at_ms - T.seen[0].at_ms;
	gap2 = T.seen[2].at_ms - T.seen[1].at_ms;
	ASSERT_TRUE(gap1 >= 100);
	ASSERT_TRUE(gap2 >= 200);
	ASSERT_STREQ(it_hget(P, jid, "wh_attempts"), "3");
	ASSERT_STREQ(it_hget(P, jid, "wh_last_status"), "200");
	ASSERT_EQ(it_stat(P, "webhooks_retried"), 2);
	ASSERT_EQ(it_stat(P, "webhooks_delivered"), 1);
	/* The body of a failed job carries its error and refund. */
	ASSERT_TRUE(strstr(T.seen[0].body, "\"error_code\":\"oom\"") != NULL);
	ASSERT_TRUE(strstr(T.seen[0].body, "\"refund\":true") != NULL);
	ASSERT_STREQ(T.seen[0].body, T.seen[2].body);
	webhooks_free(s.wh);
}

static void
test_gone_fails_at_once(void)
{
	struct sched_cfg c;
	struct sched	 s;
	char		 P[128], jid[64];

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("gone"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	sched_fill(&s, &c, P);
	job_end(P, "/gone", 0, jid, sizeof jid);
	ASSERT_TRUE(wait_state(P, jid, "failed", 5000));
	run_until(NULL, NULL, 500);
	ASSERT_EQ(T.nseen, 1);
	ASSERT_STREQ(it_hget(P, jid, "wh_last_status"), "410");
	ASSERT_TRUE(strstr(it_hget(P, jid, "wh_error"), "410 Gone") != NULL);
	ASSERT_EQ(it_stat(P, "webhooks_failed"), 1);
	ASSERT_EQ(it_int("ZCARD %swebhooks", P), 0);
	webhooks_free(s.wh);
}

static void
test_private_refused(void)
{
	struct sched_cfg c;
	struct sched	 s;
	char		 P[128], jid[64];

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("priv"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	c.webhook_allow_private = 0;
	sched_fill(&s, &c, P);
	job_end(P, "/ok", 0, jid, sizeof jid);
	ASSERT_TRUE(wait_state(P, jid, "failed", 5000));
	ASSERT_EQ(T.nseen, 0);
	ASSERT_TRUE(strstr(it_hget(P, jid, "wh_error"), "refused") != NULL);
	ASSERT_TRUE(strstr(it_hget(P, jid, "wh_error"), "127.0.0.1") != NULL);
	ASSERT_TRUE(strstr(it_hget(P, jid, "wh_error"),
			"webhook-allow-private") != NULL);
	ASSERT_STREQ(it_hget(P, jid, "wh_attempts"), "1");
	ASSERT_EQ(it_stat(P, "webhooks_failed"), 1);
	webhooks_free(s.wh);
}

static int
all_delivered(const void *arg)
{
	return (it_stat(arg, "webhooks_delivered") == 20);
}

static void
test_two_engines_no_double(void)
{
	struct sched_cfg c;
	struct sched	 a, b;
	char		 P[128], jids[20][64], owner[256];
	int		 i, others = 0;

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("two"));
	it_setcap(P, "gpu0", "32", NULL);
	for (i = 0; i < 20; i++)
		job_end(P, "/slow", 0, jids[i], sizeof jids[i]);
	cfg_fill(&c);
	c.webhook_concurrency = 4;
	sched_fill(&a, &c, P);
	sched_fill(&b, &c, P);
	ASSERT_TRUE(run_until(all_delivered, P, 10000));
	run_until(NULL, NULL, 300);
	ASSERT_EQ(T.nseen, 20);
	ASSERT_EQ(T.overlap, 0);
	for (i = 0; i < T.nseen; i++)
		ASSERT_EQ(count_id(T.seen[i].id), 1);
	ASSERT_EQ(it_stat(P, "webhooks_retried"), 0);
	/* Both engines took a share. */
	snprintf(owner, sizeof owner, "%s", it_hget(P, jids[0], "wh_owner"));
	for (i = 1; i < 20; i++)
		others += strcmp(it_hget(P, jids[i], "wh_owner"), owner) != 0;
	ASSERT_TRUE(others > 0 && others < 20);
	webhooks_free(a.wh);
	webhooks_free(b.wh);
}

static int
seen_one(const void *arg)
{
	(void)arg;
	return (T.nseen >= 1);
}

/* An engine freed mid-delivery leaves its lease; once it runs out, a
 * second engine sends the next attempt of the same delivery. */
static void
test_lease_expiry_other_engine(void)
{
	struct sched_cfg c;
	struct sched	 a, b;
	char		 P[128], jid[64];
	long long	 t0;

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("lease"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	c.webhook_timeout_ms = 300;
	c.webhook_lease_ms = 500; /* raised to timeout + 1 s: 1300 */
	sched_fill(&a, &c, P);
	T.hang_victim = &a;
	job_end(P, "/hang", 0, jid, sizeof jid);
	ASSERT_TRUE(run_until(seen_one, NULL, 5000));
	t0 = T.seen[0].at_ms;
	ASSERT_TRUE(a.wh == NULL);
	ASSERT_STREQ(it_hget(P, jid, "wh_state"), "delivering");
	sched_fill(&b, &c, P);
	ASSERT_TRUE(wait_state(P, jid, "delivered", 5000));
	ASSERT_EQ(T.nseen, 2);
	ASSERT_STREQ(T.seen[0].id, T.seen[1].id);
	ASSERT_TRUE(T.seen[1].at_ms - t0 >= 1000);
	ASSERT_STREQ(it_hget(P, jid, "wh_attempts"), "2");
	ASSERT_EQ(it_stat(P, "webhooks_delivered"), 1);
	webhooks_free(b.wh);
}

static void
test_max_age_fails(void)
{
	struct sched_cfg c;
	struct sched	 s;
	char		 P[128], jid[64];
	long long	 t0 = clock_mono_ms();

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("age"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	c.webhook_max_age_s = 1;
	c.webhook_retry_base_ms = 300;
	c.webhook_retry_max_ms = 300;
	sched_fill(&s, &c, P);
	job_end(P, "/fail", 0, jid, sizeof jid);
	ASSERT_TRUE(wait_state(P, jid, "failed", 5000));
	ASSERT_TRUE(clock_mono_ms() - t0 < 2500);
	ASSERT_TRUE(T.nseen >= 2);
	ASSERT_EQ(count_path("/fail"), T.nseen);
	ASSERT_STREQ(it_hget(P, jid, "wh_last_status"), "500");
	ASSERT_TRUE(
	    strstr(it_hget(P, jid, "wh_error"), "webhook-max-age-s") != NULL);
	ASSERT_EQ(it_stat(P, "webhooks_failed"), 1);
	ASSERT_EQ(it_stat(P, "webhooks_delivered"), 0);
	ASSERT_EQ(it_int("ZCARD %swebhooks", P), 0);
	webhooks_free(s.wh);

	/* A delivery first claimed long after the deadline (no scheduler
	 * ran) fails without being sent. */
	seen_reset();
	job_end(P, "/ok", 0, jid, sizeof jid);
	freeReplyObject(it_cmd("HSET %sjob:%s finished_ms %lld", P, jid,
	    clock_wall_ms() - 86400000LL));
	sched_fill(&s, &c, P);
	ASSERT_TRUE(wait_state(P, jid, "failed", 5000));
	ASSERT_EQ(T.nseen, 0);
	ASSERT_TRUE(strstr(it_hget(P, jid, "wh_error"), "unsent") != NULL);
	ASSERT_EQ(it_stat(P, "webhooks_failed"), 2);
	webhooks_free(s.wh);
}

/* No secret: deliveries wait (pending, nothing sent) until one is set,
 * as a reload does. A bad whsec_ secret fails webhooks_new. */
static void
test_no_secret_waits(void)
{
	struct sched_cfg c;
	struct sched	 s;
	char		 P[128], jid[64], err[256] = "";

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("nosecret"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	c.webhook_secret = secret_none;
	sched_fill(&s, &c, P);
	job_end(P, "/ok", 0, jid, sizeof jid);
	run_until(NULL, NULL, 600);
	ASSERT_EQ(T.nseen, 0);
	ASSERT_STREQ(it_hget(P, jid, "wh_state"), "pending");
	c.webhook_secret = secret_good;
	ASSERT_TRUE(wait_state(P, jid, "delivered", 5000));
	ASSERT_EQ(T.nseen, 1);
	ASSERT_TRUE(signature_ok(&T.seen[0]));
	webhooks_free(s.wh);

	c.webhook_secret = secret_bad;
	s.cfg = &c;
	ASSERT_TRUE(webhooks_new(&s, err, sizeof err) == NULL);
	ASSERT_TRUE(strstr(err, "webhook-secret") != NULL);
}

/* An active job of P whose webhook is http://127.0.0.1:<port><path>, with
 * progress webhooks when prog; claimed into c. */
static void
job_run(const char *P, const char *path, int prog, struct it_claimed *c)
{
	char spec[512];

	snprintf(spec, sizeof spec,
	    "{\"workflow\":\"a\",\"tenant\":\"t1\",\"meta\":{\"charge\":3},"
	    "\"webhook\":\"http://127.0.0.1:%d%s\"%s}",
	    T.port, path, prog ? ",\"webhook_progress\":true" : "");
	it_enq(P, spec);
	it_claim(P, "w1", "gpu0", "30000", c);
}

/* The job's progress: step of 100 at node n7, as a worker reports it. */
static void
step_to(const char *P, const struct it_claimed *c, int step)
{
	redisReply *r;
	char	    v[16];

	snprintf(v, sizeof v, "%d", step);
	r = it_fcall(P, "progress", c->jid, c->fence, v, "100", "n7", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
}

static void
job_complete(const char *P, const struct it_claimed *c)
{
	redisReply *r = it_fcall(P, "complete", c->jid, c->fence, "[]", NULL);

	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
}

static double
jnum(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return (cJSON_IsNumber(v) ? v->valuedouble : -1);
}

static int
both_delivered(const void *arg)
{
	return (it_stat(arg, "webhooks_delivered") == 2);
}

/*
 * A job that asked for progress webhooks, reporting a step every 25 ms
 * for 1.5 s: its progress POSTs are signed, each with its own webhook-id
 * and the next seq, carry the latest step, come at least the interval
 * (300 ms) apart, and stop once it ended (a pending one is dropped);
 * then exactly one terminal POST. A job beside it that did not ask gets
 * its terminal POST only.
 */
static void
test_progress_coalesced(void)
{
	struct sched_cfg  c;
	struct sched	  s;
	struct it_claimed a, b;
	char		  P[128], id[128], seq_end[32];
	cJSON		 *body, *job, *o;
	long long	  t0, elapsed, last_at = 0;
	int		  i, step = 0, n = 0, terminal = 0, last_step = 0;

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("prog"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	c.webhook_progress_interval_ms = 300;
	sched_fill(&s, &c, P);
	job_run(P, "/ok", 1, &a);
	job_run(P, "/ok", 0, &b);
	t0 = clock_mono_ms();
	while (clock_mono_ms() - t0 < 1500) {
		step_to(P, &a, ++step);
		step_to(P, &b, step);
		run_until(NULL, NULL, 25);
	}
	/* End it while its next delivery is pending and not due for a
	 * while, so no claim can take it first. */
	for (i = 0; i < 300; i++) {
		step_to(P, &a, ++step);
		if (strcmp(it_hget(P, a.jid, "whp_state"), "pending") == 0 &&
		    atoll(it_get("ZSCORE %swhprog %s", P, a.jid)) >
			clock_wall_ms() + 100)
			break;
		run_until(NULL, NULL, 10);
	}
	ASSERT_TRUE(i < 300);
	elapsed = clock_mono_ms() - t0;
	job_complete(P, &a);
	job_complete(P, &b);
	ASSERT_STREQ(it_hget(P, a.jid, "whp_state"), "dropped");
	ASSERT_EQ(it_int("ZCARD %swhprog", P), 0);
	ASSERT_EQ(it_stat(P, "webhook_progress_dropped"), 1);
	snprintf(seq_end, sizeof seq_end, "%s", it_hget(P, a.jid, "whp_seq"));
	ASSERT_TRUE(run_until(both_delivered, P, 5000));
	run_until(NULL, NULL, 700); /* two intervals: nothing else comes */

	for (i = 0; i < T.nseen; i++) {
		snprintf(id, sizeof id, "wh_%s", a.jid);
		if (strcmp(T.seen[i].id, id) == 0) {
			terminal++;
			continue;
		}
		snprintf(id, sizeof id, "whp_%s_%d", a.jid, n + 1);
		if (strncmp(T.seen[i].id, "whp_", 4) != 0)
			continue;
		ASSERT_STREQ(T.seen[i].id, id);
		ASSERT_EQ(terminal, 0); /* none after the terminal one */
		ASSERT_TRUE(signature_ok(&T.seen[i]));
		ASSERT_STREQ(T.seen[i].ctype, "application/json");
		/* The interval (300 ms) spaces the claims; an arrival is
		 * held only to half of it, as a delayed send brings the next
		 * arrival closer on a loaded machine. */
		if (n > 0)
			ASSERT_TRUE(T.seen[i].at_ms - last_at >= 150);
		last_at = T.seen[i].at_ms;
		body = cJSON_Parse(T.seen[i].body);
		ASSERT_TRUE(body != NULL);
		ASSERT_STREQ(jstr(body, "type"), "progress");
		ASSERT_STREQ(jstr(body, "job"), a.jid);
		ASSERT_STREQ(jstr(body, "state"), "active");
		ASSERT_STREQ(jstr(body, "tenant"), "t1");
		ASSERT_STREQ(jstr(body, "node"), "n7");
		ASSERT_TRUE(jnum(body, "seq") == n + 1);
		ASSERT_TRUE(jnum(body, "attempt") == 1);
		ASSERT_TRUE(jnum(body, "max") == 100);
		ASSERT_TRUE(jnum(body, "step") > last_step);
		ASSERT_TRUE(jnum(body, "percent") == jnum(body, "step"));
		ASSERT_TRUE(jnum(cJSON_GetObjectItemCaseSensitive(body, "meta"),
				"charge") == 3);
		last_step = (int)jnum(body, "step");
		cJSON_Delete(body);
		n++;
	}
	/* Coalesced: one POST per interval at most, not one per step. */
	ASSERT_TRUE(n >= 3);
	ASSERT_TRUE(n <= elapsed / 300 + 1);
	ASSERT_TRUE(step > 4 * n);
	ASSERT_EQ(terminal, 1);
	ASSERT_EQ(n, atoi(seq_end));
	snprintf(id, sizeof id, "wh_%s", b.jid);
	ASSERT_EQ(count_id(id), 1);
	ASSERT_EQ(T.nseen, n + 2); /* nothing for b but its terminal */
	ASSERT_EQ(it_stat(P, "webhook_progress_delivered"), n);
	ASSERT_EQ(atoi(it_hget(P, a.jid, "whp_delivered")), n);

	/* GET /v1/jobs/{id}'s view: a's progress deliveries; b has none. */
	job = job_view(P, a.jid);
	o = cJSON_GetObjectItemCaseSensitive(job, "progress_webhook");
	ASSERT_STREQ(jstr(o, "state"), "dropped");
	ASSERT_TRUE(jnum(o, "sent") == n);
	ASSERT_TRUE(jnum(o, "delivered") == n);
	ASSERT_TRUE(jnum(o, "failed") == 0);
	ASSERT_TRUE(jnum(o, "last_status") == 200);
	ASSERT_STREQ(
	    jstr(cJSON_GetObjectItemCaseSensitive(job, "webhook"), "state"),
	    "delivered");
	cJSON_Delete(job);
	job = job_view(P, b.jid);
	ASSERT_TRUE(
	    cJSON_GetObjectItemCaseSensitive(job, "progress_webhook") == NULL);
	cJSON_Delete(job);
	webhooks_free(s.wh);
}

static int
whp_in(const void *arg)
{
	const struct wait_state *w = arg;

	return (strcmp(it_hget(w->P, w->jid, "whp_state"), w->state) == 0);
}

/*
 * A progress delivery the receiver refuses is retried twice (a new
 * webhook-id and seq each time, the latest progress), then failed; the
 * job's next progress opens a new one. 410 Gone ends the job's progress
 * deliveries.
 */
static void
test_progress_retry_and_gone(void)
{
	struct sched_cfg  c;
	struct sched	  s;
	struct it_claimed a, g;
	struct wait_state w;
	char		  P[128], id[128];
	int		  i;

	world();
	seen_reset();
	snprintf(P, sizeof P, "%s", it_queue("progfail"));
	it_setcap(P, "gpu0", "8", NULL);
	cfg_fill(&c);
	c.webhook_progress_interval_ms = 100;
	c.webhook_retry_base_ms = 100;
	c.webhook_retry_max_ms = 200;
	sched_fill(&s, &c, P);
	job_run(P, "/fail", 1, &a);
	step_to(P, &a, 1);
	w.P = P;
	w.jid = a.jid;
	w.state = "failed";
	ASSERT_TRUE(run_until(whp_in, &w, 5000));
	ASSERT_EQ(T.nseen, 3);
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof id, "whp_%s_%d", a.jid, i + 1);
		ASSERT_STREQ(T.seen[i].id, id);
		ASSERT_STREQ(T.seen[i].path, "/fail");
	}
	ASSERT_TRUE(T.seen[1].at_ms - T.seen[0].at_ms >= 100);
	ASSERT_STREQ(it_hget(P, a.jid, "whp_failed"), "1");
	ASSERT_STREQ(it_hget(P, a.jid, "whp_tries"), "0");
	ASSERT_STREQ(it_hget(P, a.jid, "whp_last_status"), "500");
	ASSERT_TRUE(strstr(it_hget(P, a.jid, "whp_error"),
			"gave up after 3 attempts in a row: HTTP 500") != NULL);
	ASSERT_EQ(it_stat(P, "webhook_progress_retried"), 2);
	ASSERT_EQ(it_stat(P, "webhook_progress_failed"), 1);
	ASSERT_STREQ(it_hget(P, a.jid, "wh_state"), ""); /* still running */
	step_to(P, &a, 2);
	ASSERT_STREQ(it_hget(P, a.jid, "whp_state"), "pending");
	freeReplyObject(it_cmd("ZREM %swhprog %s", P, a.jid));

	seen_reset();
	job_run(P, "/gone", 1, &g);
	step_to(P, &g, 1);
	w.jid = g.jid;
	w.state = "gone";
	ASSERT_TRUE(run_until(whp_in, &w, 5000));
	step_to(P, &g, 2);
	ASSERT_STREQ(it_hget(P, g.jid, "whp_state"), "gone");
	run_until(NULL, NULL, 400);
	ASSERT_EQ(T.nseen, 1);
	ASSERT_STREQ(it_hget(P, g.jid, "whp_last_status"), "410");
	ASSERT_TRUE(strstr(it_hget(P, g.jid, "whp_error"), "410 Gone") != NULL);
	webhooks_free(s.wh);
}

const struct unit_test itests[] = {
	{ "delivered_once_signed", test_delivered_once_signed },
	{ "retried_then_delivered", test_retried_then_delivered },
	{ "gone_fails_at_once", test_gone_fails_at_once },
	{ "private_refused", test_private_refused },
	{ "two_engines_no_double", test_two_engines_no_double },
	{ "lease_expiry_other_engine", test_lease_expiry_other_engine },
	{ "max_age_fails", test_max_age_fails },
	{ "no_secret_waits", test_no_secret_waits },
	{ "progress_coalesced", test_progress_coalesced },
	{ "progress_retry_and_gone", test_progress_retry_and_gone },
	{ NULL, NULL },
};
