/*
 * The scheduler's SSE fan-out and /metrics, through their headers
 * (scheduler/sched_sse.h, sched_metrics.h), as the program will run them:
 * a struct sched built here (an event base, settings, the commands
 * connection), an evhttp of the test's own on a private port whose router
 * stands in for the program's, its connections through the connection
 * guard as the program's are (sched_guard.h), all on a thread of its own; jobs driven
 * through the functions library; clients are real HTTP connections
 * (blocking sockets in the test's thread) that decode the chunked stream
 * and the SSE frames. The restart test stops and restarts its own
 * redis-server (with-redis.sh --own).
 */
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "itest.h"
#include "rq.h"
#include "sched.h"
#include "sched_guard.h"
#include "sched_metrics.h"
#include "sched_sse.h"
#include "tclient.h"
#include "util.h"

#define SPEC_TG	 "{\"workflow\":\"a\",\"tenant\":\"tg:1\"}"
#define SPEC_WEB "{\"workflow\":\"a\",\"tenant\":\"web:1\"}"

struct srv {
	struct event_base *base;
	struct sched	   s;
	struct sched_cfg   cfg;
	struct evhttp	  *http;
	int		   port;
	pthread_t	   th;
	int		   pipe[2];
	struct event	  *stop;
};

static struct srv srv;
/* Set before srv_start, which reads them (the server runs on its thread). */
static long long srv_max_clients = 10000;
static int	 srv_http_timeout_s; /* 0: evhttp's default */
static char	 srv_no_origin[] = "";

static void
srv_route(struct evhttp_request *req, void *arg)
{
	struct srv	*v = arg;
	const char	*uri = evhttp_request_get_uri(req), *q, *route;
	struct evkeyvalq args;
	const char	*last = evhttp_find_header(
		 evhttp_request_get_input_headers(req), "Last-Event-ID");
	char   path[256], jid[128];
	size_t n;

	if (guard_answer(req))
		return;
	q = strchr(uri, '?');
	n = q ? (size_t)(q - uri) : strlen(uri);
	snprintf(path, sizeof path, "%.*s", (int)n, uri);
	TAILQ_INIT(&args);
	if (q != NULL)
		evhttp_parse_query_str(q + 1, &args);
	if (strcmp(path, "/metrics") == 0) {
		route = "/metrics";
		metrics_serve(v->s.metrics, req);
	} else if (strcmp(path, "/v1/events") == 0) {
		route = "/v1/events";
		sse_serve(v->s.sse, req, NULL,
		    evhttp_find_header(&args, "tenant"), last);
	} else if (sscanf(path, "/v1/jobs/%127[0-9a-z]/events", jid) == 1) {
		route = "/v1/jobs/{id}/events";
		sse_serve(v->s.sse, req, jid,
		    evhttp_find_header(&args, "tenant"), last);
	} else {
		route = "other";
		evhttp_send_error(req, 404, NULL);
	}
	metrics_http(v->s.metrics, route, 200, 0.0005);
	evhttp_clear_headers(&args);
}

static void
srv_on_stop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static void *
srv_thread(void *arg)
{
	event_base_dispatch(((struct srv *)arg)->base);
	return (NULL);
}

static void
srv_wait(int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(srv.base, &tv);
	event_base_dispatch(srv.base);
}

/* Starts the server on queue P with these settings; returns once the
 * commands connection is up and the reader has had time to start. */
static void
srv_start(const char *P, long long history, long long bufmax, long long ka_s)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_in	    sin;
	socklen_t		    len = sizeof sin;
	char			    err[256];
	int			    i;

	memset(&srv, 0, sizeof srv);
	srv.base = event_base_new();
	srv.cfg.redis_url = getenv("COMFYQ_TEST_REDIS_URL");
	srv.cfg.request_timeout_s = 30;
	srv.cfg.body_max_bytes = 1 << 20;
	srv.cfg.header_max_bytes = 16384;
	srv.cfg.cors_origin = srv_no_origin;
	srv.cfg.retry_after_s = 7;
	srv.cfg.sse_max_clients = srv_max_clients;
	srv.cfg.sse_buffer_max_bytes = bufmax;
	srv.cfg.sse_keepalive_s = ka_s;
	srv.cfg.sse_history = history;
	srv.s.base = srv.base;
	srv.s.cfg = &srv.cfg;
	snprintf(srv.s.prefix, sizeof srv.s.prefix, "%s", P);
	srv.s.started_ms = clock_wall_ms();
	srv.s.rc = rq_async_new(
	    srv.base, srv.cfg.redis_url, NULL, 1, NULL, NULL, err, sizeof err);
	ASSERT_TRUE(srv.s.rc != NULL);
	srv.s.metrics = metrics_new(&srv.s, err, sizeof err);
	ASSERT_TRUE(srv.s.metrics != NULL);
	srv.s.sse = sse_new(&srv.s, err, sizeof err);
	ASSERT_TRUE(srv.s.sse != NULL);
	srv.http = evhttp_new(srv.base);
	evhttp_set_gencb(srv.http, srv_route, &srv);
	guard_attach(srv.http, &srv.s);
	if (srv_http_timeout_s > 0)
		evhttp_set_timeout(srv.http, srv_http_timeout_s);
	bs = evhttp_bind_socket_with_handle(srv.http, "127.0.0.1", 0);
	ASSERT_TRUE(bs != NULL);
	getsockname(
	    evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len);
	srv.port = ntohs(sin.sin_port);
	for (i = 0; i < 100 && !rq_async_up(srv.s.rc); i++)
		srv_wait(50);
	ASSERT_TRUE(rq_async_up(srv.s.rc));
	srv_wait(300); /* the reader's connection and first id */
	ASSERT_EQ(pipe(srv.pipe), 0);
	srv.stop =
	    event_new(srv.base, srv.pipe[0], EV_READ, srv_on_stop, srv.base);
	event_add(srv.stop, NULL);
	ASSERT_EQ(pthread_create(&srv.th, NULL, srv_thread, &srv), 0);
}

static void
srv_stop(void)
{
	ASSERT_EQ(write(srv.pipe[1], "x", 1), 1);
	pthread_join(srv.th, NULL);
	sse_free(srv.s.sse);
	evhttp_free(srv.http);
	metrics_free(srv.s.metrics);
	rq_async_free(srv.s.rc);
	event_free(srv.stop);
	close(srv.pipe[0]);
	close(srv.pipe[1]);
	event_base_free(srv.base);
}

/* The stream's events of one job (or every job: jid NULL): ids and types. */
struct evlist {
	int  n;
	char id[512][32];
	char type[512][32];
};

static void
stream_events(const char *P, const char *jid, struct evlist *l)
{
	redisReply *r = it_cmd("XRANGE %sevents - +", P);
	size_t	    i, k;

	l->n = 0;
	for (i = 0; i < r->elements && l->n < 512; i++) {
		const redisReply *f = r->element[i]->element[1];
		const char	 *j = "", *t = "";

		for (k = 0; k + 1 < f->elements; k += 2) {
			if (strcmp(f->element[k]->str, "job") == 0)
				j = f->element[k + 1]->str;
			if (strcmp(f->element[k]->str, "type") == 0)
				t = f->element[k + 1]->str;
		}
		if (jid != NULL && strcmp(j, jid) != 0)
			continue;
		snprintf(l->id[l->n], 32, "%s", r->element[i]->element[0]->str);
		snprintf(l->type[l->n++], 32, "%s", t);
	}
	freeReplyObject(r);
}

/* Reads n events from c and checks they are l's from index from on. */
static void
expect_events(struct tc *c, const struct evlist *l, int from)
{
	struct tc_ev ev;
	int	     i;

	for (i = from; i < l->n; i++) {
		ASSERT_EQ(tc_event(c, &ev, 5000), 1);
		ASSERT_STREQ(ev.id, l->id[i]);
		ASSERT_STREQ(ev.type, l->type[i]);
	}
}

/* GET /metrics: the body, or the test fails. */
static char *
scrape(void)
{
	static char body[1 << 17];
	struct tc  *c = tc_open(srv.port, "/metrics", NULL, 0);

	ASSERT_EQ(tc_status(c, 5000), 200);
	ASSERT_STREQ(tc_header(c, "Content-Type"),
	    "text/plain; version=0.0.4; charset=utf-8");
	snprintf(body, sizeof body, "%s", tc_body(c, 5000));
	tc_close(c);
	return (body);
}

/* The value of one series (`name` or `name{labels}`) in text, or -1. */
static double
series(const char *text, const char *name)
{
	size_t	    n = strlen(name);
	const char *p;

	for (p = text; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return (atof(p + n + 1));
	}
	return (-1);
}

static double
scrape_value(const char *name)
{
	return (series(scrape(), name));
}

/* Runs one job: claim, progress 1/4 and 2/4, complete. */
static void
run_job(const char *P, const char *wid)
{
	struct it_claimed c;
	redisReply	 *r;

	it_claim(P, wid, "p", "30000", &c);
	r = it_fcall(P, "progress", c.jid, c.fence, "1", "4", "n1", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	r = it_fcall(P, "progress", c.jid, c.fence, "2", "4", "n2", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
	r = it_fcall(P, "complete", c.jid, c.fence,
	    "[{\"key\":\"k\",\"mime\":\"image/png\"}]", NULL);
	ASSERT_STATUS(r, "OK");
	freeReplyObject(r);
}

static char *
path_job(const char *jid, const char *query)
{
	static char buf[256];

	snprintf(buf, sizeof buf, "/v1/jobs/%s/events%s", jid, query);
	return (buf);
}

/* A job's stream: queued..succeeded in order, data as JSON, then the end;
 * an ended job's: its terminal event only; unknown and foreign: 404. */
static void
test_per_job(void)
{
	const char   *P = it_queue("job");
	struct evlist l;
	struct tc    *c;
	struct tc_ev  ev;
	cJSON	     *d;
	char	      jid[64];

	it_setcap(P, "p", "4", NULL);
	srv_start(P, 1024, 262144, 15);
	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_TG));
	c = tc_open(srv.port, path_job(jid, ""), NULL, 0);
	ASSERT_EQ(tc_status(c, 5000), 200);
	ASSERT_STREQ(tc_header(c, "Content-Type"), "text/event-stream");
	run_job(P, "w1");
	stream_events(P, jid, &l);
	ASSERT_EQ(l.n, 5);
	ASSERT_STREQ(l.type[0], "queued");
	ASSERT_STREQ(l.type[4], "succeeded");
	expect_events(c, &l, 0);
	ASSERT_EQ(tc_event(c, &ev, 5000), 0); /* the end, then EOF */
	ASSERT_EQ(tc_eof(c, 2000), 1);
	tc_close(c);

	/* The data: the fields as JSON. */
	c = tc_open(srv.port, path_job(jid, ""), l.id[1], 0);
	ASSERT_EQ(tc_status(c, 5000), 200);
	ASSERT_EQ(tc_event(c, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "succeeded"); /* ended: the terminal only */
	ASSERT_STREQ(ev.id, it_hget(P, jid, "end_id"));
	d = cJSON_Parse(ev.data);
	ASSERT_TRUE(d != NULL);
	ASSERT_STREQ(cJSON_GetObjectItem(d, "job")->valuestring, jid);
	ASSERT_STREQ(cJSON_GetObjectItem(d, "tenant")->valuestring, "tg:1");
	ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItem(d, "refund")));
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(d, "outputs")), 1);
	ASSERT_EQ(cJSON_GetObjectItem(d, "attempt")->valuedouble, 1);
	cJSON_Delete(d);
	ASSERT_EQ(tc_event(c, &ev, 5000), 0);
	tc_close(c);

	/* The stream no longer has it: built from the record, same id. */
	freeReplyObject(it_cmd("XDEL %sevents %s", P, l.id[4]));
	c = tc_open(srv.port, path_job(jid, ""), NULL, 0);
	ASSERT_EQ(tc_status(c, 5000), 200);
	ASSERT_EQ(tc_event(c, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "succeeded");
	ASSERT_STREQ(ev.id, l.id[4]);
	d = cJSON_Parse(ev.data);
	ASSERT_TRUE(d != NULL);
	ASSERT_STREQ(cJSON_GetObjectItem(d, "job")->valuestring, jid);
	ASSERT_STREQ(cJSON_GetObjectItem(d, "state")->valuestring, "succeeded");
	ASSERT_STREQ(cJSON_GetObjectItem(d, "tenant")->valuestring, "tg:1");
	ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItem(d, "refund")));
	ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItem(d, "outputs")), 1);
	cJSON_Delete(d);
	ASSERT_EQ(tc_event(c, &ev, 5000), 0);
	tc_close(c);

	/* EventSource reconnecting after the end: 204, it stops. */
	c = tc_open(srv.port, path_job(jid, ""), l.id[4], 0);
	ASSERT_EQ(tc_status(c, 5000), 204);
	tc_close(c);
	c = tc_open(srv.port, path_job("0000nojob", ""), NULL, 0);
	ASSERT_EQ(tc_status(c, 5000), 404);
	ASSERT_TRUE(strstr(tc_body(c, 2000), "\"code\":\"not_found\"") != NULL);
	tc_close(c);
	c = tc_open(srv.port, path_job(jid, "?tenant=web:"), NULL, 0);
	ASSERT_EQ(tc_status(c, 5000), 404);
	tc_close(c);
	c = tc_open(srv.port, "/v1/events", "12x", 0);
	ASSERT_EQ(tc_status(c, 5000), 400);
	tc_close(c);
	srv_stop();
}

/* A progress event's data: numbers, and percent. */
static void
test_progress_data(void)
{
	const char	 *P = it_queue("pdata");
	struct it_claimed cl;
	struct tc	 *c;
	struct tc_ev	  ev;
	redisReply	 *r;
	cJSON		 *d;

	it_setcap(P, "p", "1", NULL);
	srv_start(P, 1024, 262144, 15);
	it_enq(P, SPEC_TG);
	it_claim(P, "w1", "p", "30000", &cl);
	c = tc_open(srv.port, path_job(cl.jid, ""), NULL, 0);
	ASSERT_EQ(tc_status(c, 5000), 200);
	r = it_fcall(P, "progress", cl.jid, cl.fence, "3", "12", "n7", NULL);
	freeReplyObject(r);
	ASSERT_EQ(tc_event(c, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "queued");
	ASSERT_EQ(tc_event(c, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "started");
	ASSERT_EQ(tc_event(c, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "progress");
	d = cJSON_Parse(ev.data);
	ASSERT_EQ(cJSON_GetObjectItem(d, "value")->valuedouble, 3);
	ASSERT_EQ(cJSON_GetObjectItem(d, "max")->valuedouble, 12);
	ASSERT_EQ(cJSON_GetObjectItem(d, "percent")->valuedouble, 25);
	ASSERT_STREQ(cJSON_GetObjectItem(d, "node")->valuestring, "n7");
	cJSON_Delete(d);
	tc_close(c);
	srv_stop();
}

/*
 * Last-Event-ID gives exactly the events after it, from the ring (history
 * 1024) or, with a ring of 2, from XRANGE, also across several batches.
 */
static void
resume(const char *name, long long history)
{
	const char   *P = it_queue(name);
	struct evlist all, one;
	struct tc    *c;
	struct tc_ev  ev;
	char	      a[64];
	int	      i;

	it_setcap(P, "p", "4", NULL);
	srv_start(P, history, 1 << 20, 15);
	snprintf(a, sizeof a, "%s", it_enq(P, SPEC_TG));
	it_enq(P, SPEC_WEB);
	run_job(P, "w1");
	run_job(P, "w2");
	stream_events(P, NULL, &all);
	ASSERT_EQ(all.n, 10);
	c = tc_open(srv.port, "/v1/events", all.id[2], 0);
	ASSERT_EQ(tc_status(c, 5000), 200);
	for (i = 3; i < 10; i++) {
		ASSERT_EQ(tc_event(c, &ev, 5000), 1);
		ASSERT_STREQ(ev.id, all.id[i]);
	}
	ASSERT_EQ(tc_event(c, &ev, 500), -1); /* nothing more */
	tc_close(c);
	/* An ended job: its terminal event, whatever came before. */
	stream_events(P, a, &one);
	c = tc_open(srv.port, path_job(a, ""), one.id[0], 0);
	ASSERT_EQ(tc_status(c, 5000), 200);
	ASSERT_EQ(tc_event(c, &ev, 5000), 1);
	ASSERT_STREQ(ev.id, one.id[4]);
	ASSERT_EQ(tc_event(c, &ev, 5000), 0);
	tc_close(c);

	/* A job still running: from its id on, then live, then the end. */
	{
		struct it_claimed cl;
		redisReply	 *r;

		snprintf(a, sizeof a, "%s", it_enq(P, SPEC_TG));
		it_claim(P, "w1", "p", "30000", &cl);
		for (i = 0; i < 150; i++) {
			r = it_fcall(P, "progress", cl.jid, cl.fence, "1", "2",
			    "n", NULL);
			freeReplyObject(r);
		}
		stream_events(P, a, &one);
		ASSERT_EQ(one.n, 152);
		c = tc_open(srv.port, path_job(a, ""), one.id[1], 0);
		ASSERT_EQ(tc_status(c, 5000), 200);
		expect_events(c, &one, 2);
		r = it_fcall(P, "complete", cl.jid, cl.fence, "[]", NULL);
		freeReplyObject(r);
		stream_events(P, a, &one);
		expect_events(c, &one, 152);
		ASSERT_EQ(tc_event(c, &ev, 5000), 0);
		tc_close(c);
	}
	srv_stop();
}

static void
test_resume_ring(void)
{
	resume("ring", 1024);
}

static void
test_resume_xrange(void)
{
	resume("xrange", 2);
}

/* ?tenant= sees only its tenant's jobs; no filter sees both. */
static void
test_tenant(void)
{
	const char   *P = it_queue("tenant");
	struct tc    *tg, *any;
	struct tc_ev  ev;
	struct evlist l;
	int	      i, ntg = 0;

	it_setcap(P, "p", "4", NULL);
	srv_start(P, 1024, 262144, 15);
	tg = tc_open(srv.port, "/v1/events?tenant=tg:", NULL, 0);
	any = tc_open(srv.port, "/v1/events", NULL, 0);
	ASSERT_EQ(tc_status(tg, 5000), 200);
	ASSERT_EQ(tc_status(any, 5000), 200);
	it_enq(P, SPEC_WEB);
	it_enq(P, SPEC_TG);
	run_job(P, "w1");
	run_job(P, "w1");
	stream_events(P, NULL, &l);
	ASSERT_EQ(l.n, 10);
	expect_events(any, &l, 0);
	for (i = 0; i < l.n; i++) {
		cJSON *d;

		if (tc_event(tg, &ev, 1000) != 1)
			break;
		d = cJSON_Parse(ev.data);
		ASSERT_STREQ(
		    cJSON_GetObjectItem(d, "tenant")->valuestring, "tg:1");
		cJSON_Delete(d);
		ntg++;
	}
	ASSERT_EQ(ntg, 5);
	tc_close(tg);
	tc_close(any);
	srv_stop();
}

/* 200 clients on 4 jobs: each gets its job's terminal event once, then the
 * end; none is left attached. */
static void
test_many(void)
{
	const char  *P = it_queue("many");
	struct tc   *c[200];
	struct tc_ev ev;
	char	     jid[4][64];
	int	     i, n, terminal;

	it_setcap(P, "p", "4", NULL);
	srv_start(P, 1024, 262144, 15);
	for (i = 0; i < 4; i++)
		snprintf(jid[i], sizeof jid[i], "%s", it_enq(P, SPEC_TG));
	for (i = 0; i < 200; i++)
		c[i] = tc_open(srv.port, path_job(jid[i % 4], ""), NULL, 0);
	for (i = 0; i < 200; i++)
		ASSERT_EQ(tc_status(c[i], 5000), 200);
	for (i = 0; i < 4; i++)
		run_job(P, "w1");
	for (i = 0; i < 200; i++) {
		n = terminal = 0;
		while (tc_event(c[i], &ev, 5000) == 1) {
			n++;
			terminal += strcmp(ev.type, "succeeded") == 0;
		}
		ASSERT_EQ(terminal, 1);
		ASSERT_EQ(n, 5);
		ASSERT_TRUE(tc_ended(c[i]));
		tc_close(c[i]);
	}
	ASSERT_EQ(scrape_value("comfyq_sse_clients"), 0);
	srv_stop();
}

/*
 * A client that never reads is dropped once its output passes
 * sse-buffer-max-bytes; a reading client meanwhile gets every event. The
 * entries are written with XADD (the reader does not care who writes
 * them) and are fat, so the kernel's buffers fill soon.
 */
static void
test_slow_dropped(void)
{
	const char  *P = it_queue("slow");
	struct tc   *slow, *good;
	struct tc_ev ev;
	static char  fat[4001];
	redisReply  *r;
	int	     i, k, got = 0;

	memset(fat, 'x', sizeof fat - 1);
	srv_start(P, 16, 16384, 15);
	slow = tc_open(srv.port, "/v1/events", NULL, 2048);
	good = tc_open(srv.port, "/v1/events", NULL, 0);
	ASSERT_EQ(tc_status(slow, 5000), 200);
	ASSERT_EQ(tc_status(good, 5000), 200);
	for (i = 0; i < 600; i++) {
		for (k = 0; k < 2; k++) {
			r = it_cmd("XADD %sevents * type progress job j%d "
				   "tenant t value 1 max 2 node %s",
			    P, i, fat);
			freeReplyObject(r);
		}
		for (k = 0; k < 2; k++) {
			ASSERT_EQ(tc_event(good, &ev, 5000), 1);
			got++;
		}
	}
	ASSERT_EQ(got, 1200);
	ASSERT_EQ(scrape_value("comfyq_sse_dropped_total"), 1);
	ASSERT_EQ(scrape_value("comfyq_sse_clients"), 1);
	/* The slow one's connection is gone: what it has, then EOF. */
	for (i = 0; tc_event(slow, &ev, 2000) == 1; i++)
		;
	ASSERT_TRUE(i < 1200);
	ASSERT_TRUE(!tc_ended(slow));
	tc_close(slow);
	tc_close(good);
	srv_stop();
}

/*
 * A quiet stream gets `: ka` comments every sse-keepalive-s and outlives
 * the server's request timeout (1 s here); a client that leaves is freed.
 */
static void
test_keepalive(void)
{
	const char  *P = it_queue("ka");
	struct tc   *c;
	struct tc_ev ev;
	int	     i;

	srv_http_timeout_s = 1;
	srv_start(P, 16, 262144, 1);
	srv_http_timeout_s = 0;
	c = tc_open(srv.port, "/v1/events", NULL, 0);
	ASSERT_EQ(tc_status(c, 5000), 200);
	ASSERT_EQ(tc_event(c, &ev, 2500), -1);
	ASSERT_TRUE(tc_keepalives(c) >= 2);
	ASSERT_TRUE(strstr(tc_raw(c), ": ka\n\n") != NULL);
	freeReplyObject(it_cmd("XADD %sevents * type queued job j1 tenant t "
			       "priority normal state queued",
	    P));
	ASSERT_EQ(tc_event(c, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "queued");
	ASSERT_EQ(scrape_value("comfyq_sse_clients"), 1);
	tc_close(c);
	for (i = 0; i < 50 && scrape_value("comfyq_sse_clients") != 0; i++)
		it_sleep_ms(50);
	ASSERT_EQ(scrape_value("comfyq_sse_clients"), 0);
	srv_stop();
}

/*
 * Clients that leave at every stage (before the job record came, while
 * catching up with XRANGE, while live) are all freed, and the next one is
 * served in full.
 */
static void
test_churn(void)
{
	const char   *P = it_queue("churn");
	struct evlist l;
	struct tc    *c;
	char	      jid[64];
	int	      i;

	it_setcap(P, "p", "4", NULL);
	srv_start(P, 2, 262144, 15);
	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_TG));
	run_job(P, "w1");
	it_enq(P, SPEC_TG);
	for (i = 0; i < 60; i++) {
		switch (i % 3) {
		case 0:
			c = tc_open(srv.port, path_job(jid, ""), NULL, 0);
			break;
		case 1:
			c = tc_open(srv.port, "/v1/events", "1-0", 0);
			break;
		default:
			c = tc_open(srv.port, "/v1/events", NULL, 0);
			if (i % 2 == 0)
				tc_status(c, 5000);
			break;
		}
		tc_close(c);
	}
	for (i = 0; i < 100 && scrape_value("comfyq_sse_clients") != 0; i++)
		it_sleep_ms(50);
	ASSERT_EQ(scrape_value("comfyq_sse_clients"), 0);
	stream_events(P, NULL, &l);
	ASSERT_EQ(l.n, 6);
	c = tc_open(srv.port, "/v1/events", "1-0", 0);
	ASSERT_EQ(tc_status(c, 5000), 200);
	expect_events(c, &l, 0);
	tc_close(c);
	srv_stop();
}

/* Past sse-max-clients: 503 with Retry-After and a JSON error. */
static void
test_max_clients(void)
{
	const char *P = it_queue("max");
	struct tc  *a, *b, *c;

	srv_max_clients = 2;
	srv_start(P, 16, 262144, 15);
	srv_max_clients = 10000;
	a = tc_open(srv.port, "/v1/events", NULL, 0);
	b = tc_open(srv.port, "/v1/events?tenant=tg:", NULL, 0);
	ASSERT_EQ(tc_status(a, 5000), 200);
	ASSERT_EQ(tc_status(b, 5000), 200);
	c = tc_open(srv.port, "/v1/events", NULL, 0);
	ASSERT_EQ(tc_status(c, 5000), 503);
	ASSERT_STREQ(tc_header(c, "Retry-After"), "7");
	ASSERT_TRUE(
	    strstr(tc_body(c, 2000), "\"code\":\"unavailable\"") != NULL);
	tc_close(c);
	ASSERT_EQ(scrape_value("comfyq_sse_clients"), 2);
	tc_close(a);
	tc_close(b);
	srv_stop();
}

/*
 * Every family in a scrape has its TYPE line before its samples, and once;
 * every sample line is `name[{labels}] value`.
 */
static void
check_format(const char *text)
{
	char	    seen[64][64], fam[64];
	int	    nseen = 0, i, typed;
	const char *p, *e;

	for (p = text; *p != '\0'; p = e + 1) {
		ASSERT_TRUE((e = strchr(p, '\n')) != NULL);
		if (strncmp(p, "# TYPE ", 7) == 0) {
			sscanf(p + 7, "%63s", fam);
			for (i = 0; i < nseen; i++)
				ASSERT_TRUE(strcmp(seen[i], fam) != 0);
			ASSERT_TRUE(nseen < 64);
			snprintf(seen[nseen++], 64, "%s", fam);
			continue;
		}
		if (*p == '#')
			continue;
		typed = 0;
		for (i = 0; i < nseen; i++) {
			size_t n = strlen(seen[i]);

			if (strncmp(p, seen[i], n) == 0 &&
			    strchr("{ _", p[n]) != NULL)
				typed = 1;
		}
		ASSERT_TRUE(typed);
		ASSERT_TRUE(memchr(p, ' ', (size_t)(e - p)) != NULL);
	}
}

/* The scrape against the Redis facts set up here. */
static void
test_metrics(void)
{
	const char	 *P = it_queue("metrics");
	struct it_claimed a, b, d;
	redisReply	 *r;
	const char	 *t;
	char		  q[64];
	long long	  now = clock_wall_ms();
	int		  i;

	it_setcap(P, "p", "3", "24000");
	srv_start(P, 1024, 262144, 15);
	it_enq(P, SPEC_TG);
	it_enq(P, SPEC_TG);
	it_enq(P, SPEC_TG);
	it_claim(P, "w1", "p", "30000", &a);
	it_claim(P, "w1", "p", "30000", &b);
	it_claim(P, "w1", "p", "30000", &d);
	r = it_fcall(P, "complete", a.jid, a.fence, "[]", NULL);
	freeReplyObject(r);
	r = it_fcall(P, "fail", b.jid, b.fence, "oom", "out of memory", "0",
	    "1000", "60000", "0.5", NULL);
	freeReplyObject(r);
	r = it_fcall(P, "fail", d.jid, d.fence, "timeout", "slow", "1", "60000",
	    "600000", "0.5", NULL);
	freeReplyObject(r);
	snprintf(q, sizeof q, "%s", it_enq(P, SPEC_TG));
	r = it_fcall(P, "cancel", q, NULL);
	freeReplyObject(r);
	it_enq(P, "{\"workflow\":\"a\",\"priority\":\"high\"}");
	it_enq(P, "{\"workflow\":\"a\",\"priority\":\"low\"}");
	it_enq(P, "{\"workflow\":\"a\",\"priority\":\"low\"}");
	freeReplyObject(
	    it_cmd("ZADD %sworkers %lld w1 %lld w2", P, now, now - 120000));
	freeReplyObject(it_cmd("HSET %sstats webhooks_delivered 7", P));
	freeReplyObject(it_cmd("HSET %sstats webhook_progress_delivered 5 "
			       "webhook_progress_failed 2",
	    P));

	/* The reader has seen the terminal events once run_seconds has. */
	for (i = 0; i < 50; i++) {
		if (scrape_value(
			"comfyq_run_seconds_count{outcome=\"failed\"}") == 1)
			break;
		it_sleep_ms(100);
	}
	t = scrape();
	check_format(t);
	ASSERT_EQ(series(t, "comfyq_redis_up"), 1);
	ASSERT_EQ(series(t, "comfyq_jobs_total{event=\"enqueued\"}"), 7);
	ASSERT_EQ(series(t, "comfyq_jobs_total{event=\"started\"}"), 3);
	ASSERT_EQ(series(t, "comfyq_jobs_total{event=\"succeeded\"}"), 1);
	ASSERT_EQ(series(t, "comfyq_jobs_total{event=\"failed\"}"), 1);
	ASSERT_EQ(series(t, "comfyq_jobs_total{event=\"canceled\"}"), 1);
	ASSERT_EQ(series(t, "comfyq_jobs_total{event=\"retried\"}"), 1);
	ASSERT_EQ(series(t, "comfyq_jobs_failed_total{code=\"oom\"}"), 1);
	ASSERT_EQ(series(t, "comfyq_jobs_failed_total{code=\"timeout\"}"), -1);
	ASSERT_EQ(series(t, "comfyq_refunds_total"), 2);
	ASSERT_EQ(series(t, "comfyq_jobs{state=\"queued\"}"), 3);
	ASSERT_EQ(series(t, "comfyq_jobs{state=\"delayed\"}"), 1);
	ASSERT_EQ(series(t, "comfyq_jobs{state=\"active\"}"), 0);
	ASSERT_EQ(series(t, "comfyq_queue_depth{lane=\"high\"}"), 1);
	ASSERT_EQ(series(t, "comfyq_queue_depth{lane=\"normal\"}"), 0);
	ASSERT_EQ(series(t, "comfyq_queue_depth{lane=\"low\"}"), 2);
	ASSERT_EQ(series(t, "comfyq_workers{state=\"up\"}"), 1);
	ASSERT_EQ(series(t, "comfyq_workers{state=\"registered\"}"), 2);
	ASSERT_EQ(
	    series(t, "comfyq_pool_slots{pool=\"p\",kind=\"capacity\"}"), 3);
	ASSERT_EQ(series(t, "comfyq_pool_slots{pool=\"p\",kind=\"used\"}"), 0);
	ASSERT_EQ(series(t, "comfyq_pool_vram_mb{pool=\"p\",kind=\"budget\"}"),
	    24000);
	ASSERT_EQ(series(t, "comfyq_webhook_deliveries_total"), 7);
	ASSERT_EQ(series(t, "comfyq_webhook_failures_total"), 0);
	ASSERT_EQ(series(t, "comfyq_webhook_progress_deliveries_total"), 5);
	ASSERT_EQ(series(t, "comfyq_webhook_progress_failures_total"), 2);
	/* Three first starts; a run each for succeeded and failed (the
	 * retried one's attempt ended without one; the canceled never ran). */
	ASSERT_EQ(series(t, "comfyq_queue_wait_seconds_count"), 3);
	ASSERT_EQ(
	    series(t, "comfyq_queue_wait_seconds_bucket{le=\"+Inf\"}"), 3);
	ASSERT_EQ(
	    series(t, "comfyq_run_seconds_count{outcome=\"succeeded\"}"), 1);
	ASSERT_EQ(
	    series(t, "comfyq_run_seconds_count{outcome=\"canceled\"}"), 0);
	ASSERT_EQ(series(t, "comfyq_sse_clients"), 0);
	ASSERT_EQ(series(t, "comfyq_sse_dropped_total"), 0);
	/* The router tells metrics_http after each request it handed on. */
	ASSERT_TRUE(series(t,
			"comfyq_http_requests_total{route=\"/metrics\","
			"status=\"200\"}") >= 1);
	ASSERT_EQ(series(t,
		      "comfyq_http_request_seconds_count{route=\"/metrics\","
		      "status=\"200\"}"),
	    series(t,
		"comfyq_http_requests_total{route=\"/metrics\","
		"status=\"200\"}"));
	srv_stop();
}

/* FCALL on a connection of the test's own (it_redis's dies in a restart). */
static redisReply *
fcall_on(redisContext *ctx, const char *P, const char *fn, const char *jid,
    const char *fence, const char *a, const char *b)
{
	struct rq_cmd c;
	redisReply   *r;

	rq_cmd_fcall(&c, fn, P);
	rq_cmd_add(&c, jid);
	rq_cmd_add(&c, fence);
	rq_cmd_add(&c, a);
	if (b != NULL)
		rq_cmd_add(&c, b);
	r = rq_run(ctx, &c);
	rq_cmd_free(&c);
	ASSERT_TRUE(r != NULL);
	return (r);
}

/*
 * Redis stops (saving) and comes back while clients follow: the events
 * written after the restart, before and after the reader reconnects,
 * reach them once each and in order.
 */
static void
test_redis_restart(void)
{
	const char	 *P = it_queue("restart");
	const char	 *conf = getenv("COMFYQ_TEST_REDIS_CONF");
	struct it_claimed cl;
	struct tc	 *job, *all, *old;
	struct tc_ev	  ev;
	redisContext	 *ctx;
	char		  cmd[512], jid[64], end_id[32];
	int		  i;

	if (conf == NULL) {
		printf("restart: skipped: no redis-server of its own "
		       "(run through with-redis.sh --own)\n");
		ASSERT_TRUE(1);
		return;
	}
	it_setcap(P, "p", "1", NULL);
	srv_start(P, 1024, 262144, 15);
	snprintf(jid, sizeof jid, "%s", it_enq(P, SPEC_TG));
	job = tc_open(srv.port, path_job(jid, ""), NULL, 0);
	all = tc_open(srv.port, "/v1/events", NULL, 0);
	ASSERT_EQ(tc_status(job, 5000), 200);
	ASSERT_EQ(tc_status(all, 5000), 200);
	it_claim(P, "w1", "p", "30000", &cl);
	ASSERT_EQ(tc_event(job, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "queued");
	ASSERT_EQ(tc_event(job, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "started");
	ASSERT_EQ(tc_event(all, &ev, 5000), 1);
	ASSERT_STREQ(ev.type, "started");

	freeReplyObject(redisCommand(it_redis(), "SHUTDOWN SAVE"));
	it_sleep_ms(300);
	/* An old Last-Event-ID waits for Redis (XRANGE), then catches up. */
	old = tc_open(srv.port, "/v1/events", "1-0", 0);
	ASSERT_EQ(tc_status(old, 5000), 200);
	/* Meanwhile a job's stream cannot start: no record to read. */
	{
		struct tc *c = tc_open(srv.port, path_job(jid, ""), NULL, 0);

		ASSERT_EQ(tc_status(c, 5000), 503);
		ASSERT_TRUE(strstr(tc_body(c, 2000),
				"\"code\":\"unavailable\"") != NULL);
		tc_close(c);
	}
	snprintf(cmd, sizeof cmd, "redis-server %s", conf);
	ASSERT_EQ(system(cmd), 0);
	ctx = NULL;
	for (i = 0; i < 100 && ctx == NULL; i++) {
		char err[256];

		ctx = rq_connect(getenv("COMFYQ_TEST_REDIS_URL"), NULL, 1000, 1,
		    err, sizeof err);
		if (ctx == NULL)
			it_sleep_ms(50);
	}
	ASSERT_TRUE(ctx != NULL);
	/* At once: the reader is most likely still away. */
	for (i = 0; i < 3; i++)
		freeReplyObject(
		    fcall_on(ctx, P, "progress", cl.jid, cl.fence, "1", "3"));
	it_sleep_ms(1500);
	freeReplyObject(
	    fcall_on(ctx, P, "complete", cl.jid, cl.fence, "[]", NULL));
	{
		redisReply *r =
		    redisCommand(ctx, "HGET %sjob:%s end_id", P, jid);

		snprintf(end_id, sizeof end_id, "%s", r->str ? r->str : "");
		freeReplyObject(r);
	}
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(tc_event(job, &ev, 10000), 1);
		ASSERT_STREQ(ev.type, "progress");
		ASSERT_EQ(tc_event(all, &ev, 10000), 1);
		ASSERT_STREQ(ev.type, "progress");
	}
	ASSERT_EQ(tc_event(job, &ev, 10000), 1);
	ASSERT_STREQ(ev.type, "succeeded");
	ASSERT_STREQ(ev.id, end_id);
	ASSERT_EQ(tc_event(job, &ev, 5000), 0);
	ASSERT_EQ(tc_event(all, &ev, 10000), 1);
	ASSERT_STREQ(ev.type, "succeeded");
	ASSERT_EQ(tc_event(all, &ev, 500), -1);
	{
		static const char *const want[] = { "queued", "started",
			"progress", "progress", "progress", "succeeded" };

		for (i = 0; i < 6; i++) {
			ASSERT_EQ(tc_event(old, &ev, 10000), 1);
			ASSERT_STREQ(ev.type, want[i]);
		}
		ASSERT_STREQ(ev.id, end_id);
		ASSERT_EQ(tc_event(old, &ev, 500), -1);
	}
	tc_close(old);
	tc_close(job);
	tc_close(all);
	srv_stop();
	redisFree(ctx);
}

const struct unit_test itests[] = {
	{ "per_job", test_per_job },
	{ "progress_data", test_progress_data },
	{ "resume_ring", test_resume_ring },
	{ "resume_xrange", test_resume_xrange },
	{ "tenant", test_tenant },
	{ "many", test_many },
	{ "slow_dropped", test_slow_dropped },
	{ "keepalive", test_keepalive },
	{ "max_clients", test_max_clients },
	{ "churn", test_churn },
	{ "metrics", test_metrics },
	{ "redis_restart", test_redis_restart },
	{ NULL, NULL },
};
