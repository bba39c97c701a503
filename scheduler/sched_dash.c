/*
 * The dashboard: GET / serves one self-contained page
 * (scheduler/dashboard.html, embedded at build), and the two read-only
 * views the page needs that the rest of the API does not give: the recent
 * jobs (GET /v1/jobs) and jobs ended per minute over the last hour with
 * their latency (GET /v1/stats/history). sched_http.c's table maps the
 * routes here (sched_routes.h); with admin-listen set, / is served there
 * only.
 *
 * The page is static: it asks the API for everything it shows
 * (/v1/stats, /v1/pools, /v1/workers and the two views here) with the
 * token the user gives it, so it shows exactly what the API serves and
 * needs no state of its own on the server.
 *
 * Both views are bounded pipelines on the non-blocking connection, read
 * in two stages: the ids first (ZRANGE and ZCOUNT on the indexes, each
 * with a limit), then a few fields of each job (HMGET, never the spec,
 * which may hold megabytes of graph or inputs).
 *
 * GET /v1/jobs[?limit=N]: up to N (1..50, 20) jobs of each group, in
 * this order: active (leases), queued in claim order (ready:high, normal,
 * low), delayed, and the last ended (done, newest first). A job that
 * moved between two reads is listed once, with the state its record has
 * at the second stage; one whose record is gone is left out, and so is
 * one of a tenant outside the token's prefix.
 *
 * GET /v1/stats/history: 60 buckets of one minute, the last one the
 * current minute: how many jobs ended in each (ZCOUNT done, exact) and
 * the median queue wait (started - created) and run time (finished -
 * started) of up to HIST_SAMPLE of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "rq.h"
#include "sched.h"
#include "sched_http.h"
#include "sched_routes.h"
#include "util.h"
#include "xmalloc.h"

#define JOBS_LIMIT_DEFAULT 20
#define JOBS_LIMIT_MAX	   50
#define HIST_BUCKETS	   60
#define HIST_BUCKET_MS	   60000LL
#define HIST_SAMPLE	   8

/* The page, embedded at build time (generated/sched_dash_html.c). */
extern const char   sched_dash_html[];
extern const size_t sched_dash_html_len;

/* What the page may do: its own inline script and style, the API. */
#define DASH_CSP                                                               \
	"default-src 'none'; script-src 'unsafe-inline'; "                     \
	"style-src 'unsafe-inline'; img-src 'self' blob:; "                    \
	"connect-src 'self'; base-uri 'none'; form-action 'none'; "            \
	"frame-ancestors 'none'"

static const char *const job_fields[] = { "state", "tenant", "priority",
	"attempt", "max_attempts", "progress", "worker", "pool", "error_code",
	"error", "outputs", "created_ms", "started_ms", "finished_ms" };
#define NJOB_FIELDS (sizeof job_fields / sizeof job_fields[0])

/* One view being read; answered once the last stage has no reply due. */
struct dashq {
	struct http_wait w;
	struct sched	*s;
	cJSON		*out;
	char		*tenant_prefix; /* NULL: any tenant */
	void (*next)(struct dashq *);	/* the next stage, or NULL */
	int	  pending, failed;
	size_t	  seen; /* replies of this stage, which come in order */
	int	  limit;
	long long from_ms;	     /* history: the first bucket */
	int	  nsample, nsampled; /* history: jobs asked for, answered */
	int	  sbucket[HIST_BUCKETS * HIST_SAMPLE]; /* their buckets */
	double wait[HIST_BUCKETS][HIST_SAMPLE], run[HIST_BUCKETS][HIST_SAMPLE];
	int    nwait[HIST_BUCKETS], nrun[HIST_BUCKETS];
};

SCHED_ROUTE(dash_page)
{
	struct evbuffer *b = evbuffer_new();

	(void)s;
	(void)args;
	(void)tok;
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Security-Policy", DASH_CSP);
	evbuffer_add_reference(
	    b, sched_dash_html, sched_dash_html_len, NULL, NULL);
	http_reply_bytes(req, 200, "text/html; charset=utf-8", b);
	evbuffer_free(b);
}

static struct dashq *
dash_new(struct sched *s, struct evhttp_request *req,
    const struct sched_token *tok, cJSON *out)
{
	struct dashq *q = xcalloc(1, sizeof *q);
	const char   *scope = sched_scope(tok);

	q->s = s;
	q->out = out;
	q->tenant_prefix = scope != NULL ? xstrdup(scope) : NULL;
	http_wait_start(&q->w, req);
	return (q);
}

static void
dash_send(struct dashq *q, redisCallbackFn *fn, struct rq_cmd *c)
{
	if (rq_async_call(q->s->rc, fn, q, c) == 0)
		q->pending++;
	else
		q->failed = 1;
	rq_cmd_free(c);
}

/* After a reply: the next stage, or the answer once nothing is due. */
static void
dash_step(struct dashq *q)
{
	struct evhttp_request *req;
	void (*next)(struct dashq *);

	if (q->pending > 0)
		return;
	if (!q->failed && q->w.req != NULL && (next = q->next) != NULL) {
		q->next = NULL;
		q->seen = 0;
		next(q);
		if (q->pending > 0)
			return;
	}
	if ((req = http_wait_end(&q->w)) != NULL) {
		if (q->failed)
			http_reply_redis_down(req);
		else
			http_reply_json(req, 200, q->out);
	}
	cJSON_Delete(q->out);
	free(q->tenant_prefix);
	free(q);
}

/* A reply of this stage: NULL (disconnect) or another type fails it. */
static redisReply *
dash_reply(struct dashq *q, void *r, int type)
{
	redisReply *reply = r;

	q->pending--;
	q->seen++;
	if (reply == NULL || reply->type != type || q->w.req == NULL) {
		q->failed = 1;
		return (NULL);
	}
	return (reply);
}

static void
dash_num(cJSON *o, const char *name, const redisReply *v)
{
	long long n;

	if (v->type == REDIS_REPLY_STRING &&
	    parse_ll(v->str, -(1LL << 53), 1LL << 53, &n) == 0)
		cJSON_AddNumberToObject(o, name, (double)n);
}

static void
dash_str(cJSON *o, const char *name, const redisReply *v)
{
	if (v->type == REDIS_REPLY_STRING && *v->str != '\0')
		cJSON_AddStringToObject(o, name, v->str);
}

/* The outputs as the page needs them: mime, size, the URL of the bytes. */
static void
dash_outputs(cJSON *o, const char *jid, const redisReply *v)
{
	static const char *const keep[] = { "mime", "width", "height" };
	cJSON			*list, *rec, *out, *r, *f;
	char			 url[160];
	size_t			 k;
	int			 n = 0;

	if (v->type != REDIS_REPLY_STRING ||
	    (list = cJSON_Parse(v->str)) == NULL)
		return;
	out = cJSON_AddArrayToObject(o, "outputs");
	cJSON_ArrayForEach(rec, list) {
		r = cJSON_CreateObject();
		for (k = 0; k < sizeof keep / sizeof keep[0]; k++)
			if ((f = cJSON_GetObjectItemCaseSensitive(
				 rec, keep[k])) != NULL)
				cJSON_AddItemToObject(
				    r, keep[k], cJSON_Duplicate(f, 1));
		snprintf(url, sizeof url, "/v1/jobs/%s/outputs/%d", jid, n++);
		cJSON_AddStringToObject(r, "url", url);
		cJSON_AddItemToArray(out, r);
	}
	cJSON_Delete(list);
}

/* One job's HMGET: the fields of job_fields, in order. */
static void
dash_job_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct dashq *q = priv;
	redisReply   *h, **e;
	cJSON	     *o, *p;
	const char   *jid, *slash;
	double	      value, max;

	(void)ac;
	o = cJSON_GetArrayItem(q->out, (int)q->seen); /* before dash_reply */
	if ((h = dash_reply(q, r, REDIS_REPLY_ARRAY)) == NULL || o == NULL ||
	    h->elements != NJOB_FIELDS) {
		q->failed = 1;
		dash_step(q);
		return;
	}
	e = h->element;
	jid = cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring;
	dash_str(o, "state", e[0]);
	dash_str(o, "tenant", e[1]);
	dash_str(o, "priority", e[2]);
	dash_num(o, "attempt", e[3]);
	dash_num(o, "max_attempts", e[4]);
	if (e[5]->type == REDIS_REPLY_STRING) {
		value = atof(e[5]->str);
		slash = strchr(e[5]->str, '/');
		max = slash != NULL ? atof(slash + 1) : 0;
		p = cJSON_AddObjectToObject(o, "progress");
		cJSON_AddNumberToObject(p, "step", value);
		cJSON_AddNumberToObject(p, "max", max);
		cJSON_AddNumberToObject(p, "percent",
		    max > 0 ? (double)(int)(value * 100 / max) : 0);
	}
	dash_str(o, "worker", e[6]);
	dash_str(o, "pool", e[7]);
	if (e[8]->type == REDIS_REPLY_STRING) {
		p = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(p, "code", e[8]->str);
		dash_str(p, "message", e[9]);
	}
	dash_outputs(o, jid, e[10]);
	dash_num(o, "created_ms", e[11]);
	dash_num(o, "started_ms", e[12]);
	dash_num(o, "finished_ms", e[13]);
	dash_step(q);
}

/* After the last HMGET: drop the jobs gone or outside the token's tenants. */
static void
dash_jobs_filter(struct dashq *q)
{
	cJSON	   *o, *t;
	const char *tenant;
	int	    i;

	for (i = cJSON_GetArraySize(q->out) - 1; i >= 0; i--) {
		o = cJSON_GetArrayItem(q->out, i);
		t = cJSON_GetObjectItemCaseSensitive(o, "tenant");
		tenant = cJSON_IsString(t) ? t->valuestring : "";
		if (cJSON_GetObjectItemCaseSensitive(o, "state") == NULL ||
		    !sched_tenant_ok(q->tenant_prefix, tenant))
			cJSON_DeleteItemFromArray(q->out, i);
	}
}

static void
dash_jobs_read(struct dashq *q)
{
	struct rq_cmd c;
	cJSON	     *o;
	size_t	      k;

	cJSON_ArrayForEach(o, q->out) {
		rq_cmd_init(&c, "HMGET");
		rq_cmd_addf(&c, "%sjob:%s", q->s->prefix,
		    cJSON_GetObjectItemCaseSensitive(o, "id")->valuestring);
		for (k = 0; k < NJOB_FIELDS; k++)
			rq_cmd_add(&c, job_fields[k]);
		dash_send(q, dash_job_cb, &c);
	}
	q->next = dash_jobs_filter;
}

/* One index's ids, appended unless already listed. */
static void
dash_ids_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct dashq *q = priv;
	redisReply   *ids;
	cJSON	     *o;
	size_t	      i;
	int	      dup;

	(void)ac;
	if ((ids = dash_reply(q, r, REDIS_REPLY_ARRAY)) != NULL)
		for (i = 0; i < ids->elements; i++) {
			if (ids->element[i]->type != REDIS_REPLY_STRING)
				continue;
			dup = 0;
			cJSON_ArrayForEach(o, q->out) {
				if (strcmp(cJSON_GetObjectItemCaseSensitive(
					       o, "id")
					       ->valuestring,
					ids->element[i]->str) == 0)
					dup = 1;
			}
			if (dup)
				continue;
			o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "id", ids->element[i]->str);
			cJSON_AddItemToArray(q->out, o);
		}
	dash_step(q);
}

SCHED_ROUTE(dash_jobs)
{
	static const char *const index[] = { "leases", "ready:high",
		"ready:normal", "ready:low", "delayed" };
	struct dashq		*q;
	struct rq_cmd		 c;
	char			 buf[16];
	long long		 limit = JOBS_LIMIT_DEFAULT;
	size_t			 i;

	(void)args;
	if (http_query(req, "limit", buf, sizeof buf) == 0 &&
	    parse_ll(buf, 1, JOBS_LIMIT_MAX, &limit) == -1) {
		http_reply_error(req, 400, "invalid_input",
		    "limit must be a number in 1..50");
		return;
	}
	q = dash_new(s, req, tok, cJSON_CreateArray());
	q->limit = (int)limit;
	for (i = 0; i < sizeof index / sizeof index[0]; i++) {
		rq_cmd_init(&c, "ZRANGE");
		rq_cmd_addf(&c, "%s%s", s->prefix, index[i]);
		rq_cmd_add(&c, "0");
		rq_cmd_addf(&c, "%d", q->limit - 1);
		dash_send(q, dash_ids_cb, &c);
	}
	rq_cmd_init(&c, "ZRANGE");
	rq_cmd_addf(&c, "%sdone", s->prefix);
	rq_cmd_add(&c, "0");
	rq_cmd_addf(&c, "%d", q->limit - 1);
	rq_cmd_add(&c, "REV");
	dash_send(q, dash_ids_cb, &c);
	q->next = dash_jobs_read;
	dash_step(q);
}

static int
dash_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return ((x > y) - (x < y));
}

static void
dash_median(cJSON *o, const char *name, double *v, int n)
{
	if (n == 0)
		return;
	qsort(v, (size_t)n, sizeof *v, dash_cmp);
	cJSON_AddNumberToObject(
	    o, name, n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

/* After the last sample: the medians into their buckets. */
static void
dash_history_medians(struct dashq *q)
{
	cJSON *b = cJSON_GetObjectItemCaseSensitive(q->out, "buckets");
	int    i;

	for (i = 0; i < HIST_BUCKETS; i++) {
		dash_median(cJSON_GetArrayItem(b, i), "wait_ms", q->wait[i],
		    q->nwait[i]);
		dash_median(
		    cJSON_GetArrayItem(b, i), "run_ms", q->run[i], q->nrun[i]);
	}
}

/* One sampled job: created_ms, started_ms, finished_ms. */
static void
dash_sample_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct dashq *q = priv;
	redisReply   *h;
	long long     t[3];
	size_t	      k;
	int	      b = q->sbucket[q->nsampled++], have[3];

	(void)ac;
	if ((h = dash_reply(q, r, REDIS_REPLY_ARRAY)) != NULL &&
	    h->elements == 3) {
		for (k = 0; k < 3; k++)
			have[k] = h->element[k]->type == REDIS_REPLY_STRING &&
			    parse_ll(h->element[k]->str, 0, 1LL << 53, &t[k]) ==
				0;
		if (have[0] && have[1] && t[1] >= t[0])
			q->wait[b][q->nwait[b]++] = (double)(t[1] - t[0]);
		if (have[1] && have[2] && t[2] >= t[1])
			q->run[b][q->nrun[b]++] = (double)(t[2] - t[1]);
	}
	dash_step(q);
}

/* A bucket's ZCOUNT (even replies) or its sample of ids (odd ones). */
static void
dash_bucket_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct dashq *q = priv;
	redisReply   *reply;
	struct rq_cmd c;
	size_t	      i, b = q->seen / 2; /* before dash_reply */
	cJSON	     *bo;

	(void)ac;
	bo = cJSON_GetArrayItem(
	    cJSON_GetObjectItemCaseSensitive(q->out, "buckets"), (int)b);
	if (q->seen % 2 == 0) {
		if ((reply = dash_reply(q, r, REDIS_REPLY_INTEGER)) != NULL)
			cJSON_AddNumberToObject(
			    bo, "done", (double)reply->integer);
	} else if ((reply = dash_reply(q, r, REDIS_REPLY_ARRAY)) != NULL) {
		/* The HMGETs queue behind this stage's replies, in order. */
		for (i = 0; i < reply->elements && i < HIST_SAMPLE; i++) {
			if (reply->element[i]->type != REDIS_REPLY_STRING)
				continue;
			q->sbucket[q->nsample++] = (int)b;
			rq_cmd_init(&c, "HMGET");
			rq_cmd_addf(&c, "%sjob:%s", q->s->prefix,
			    reply->element[i]->str);
			rq_cmd_add(&c, "created_ms");
			rq_cmd_add(&c, "started_ms");
			rq_cmd_add(&c, "finished_ms");
			dash_send(q, dash_sample_cb, &c);
		}
		cJSON_AddNumberToObject(bo, "sampled", (double)i);
	}
	dash_step(q);
}

SCHED_ROUTE(dash_history)
{
	struct dashq *q;
	struct rq_cmd c;
	cJSON	     *buckets, *bo;
	long long     from, to;
	int	      i;

	(void)args;
	q = dash_new(s, req, tok, cJSON_CreateObject());
	q->from_ms = (clock_wall_ms() / HIST_BUCKET_MS + 1 - HIST_BUCKETS) *
	    HIST_BUCKET_MS;
	cJSON_AddNumberToObject(q->out, "bucket_ms", (double)HIST_BUCKET_MS);
	cJSON_AddNumberToObject(q->out, "from_ms", (double)q->from_ms);
	buckets = cJSON_AddArrayToObject(q->out, "buckets");
	for (i = 0; i < HIST_BUCKETS; i++) {
		from = q->from_ms + i * HIST_BUCKET_MS;
		to = from + HIST_BUCKET_MS;
		bo = cJSON_CreateObject();
		cJSON_AddNumberToObject(bo, "start_ms", (double)from);
		cJSON_AddItemToArray(buckets, bo);
		rq_cmd_init(&c, "ZCOUNT");
		rq_cmd_addf(&c, "%sdone", s->prefix);
		rq_cmd_addf(&c, "%lld", from);
		rq_cmd_addf(&c, "(%lld", to);
		dash_send(q, dash_bucket_cb, &c);
		rq_cmd_init(&c, "ZRANGE");
		rq_cmd_addf(&c, "%sdone", s->prefix);
		rq_cmd_addf(&c, "%lld", from);
		rq_cmd_addf(&c, "(%lld", to);
		rq_cmd_add(&c, "BYSCORE");
		rq_cmd_add(&c, "LIMIT");
		rq_cmd_add(&c, "0");
		rq_cmd_addf(&c, "%d", HIST_SAMPLE);
		dash_send(q, dash_bucket_cb, &c);
	}
	q->next = dash_history_medians;
	dash_step(q);
}
