/*
 * GET /v1/jobs/{id} and DELETE /v1/jobs/{id}: a job read with one HGETALL
 * of its record (README "Reading a job") and, while it is queued, its
 * place: ZRANK in its lane plus the ZCARD of each lane claimed before it
 * (high, normal, low), pipelined, so nothing is scanned. A cancel goes
 * through comfyq_cancel. A job of a tenant outside the token's prefix is
 * answered 404 like a job that does not exist, so a token cannot learn
 * which ids exist elsewhere.
 *
 * jobs_read() is also the tail of POST /v1/jobs (sched_submit.c): the 201
 * of a new job and the 200 of an idempotent replay describe it the same
 * way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "rqfn.h"
#include "sched.h"
#include "sched_auth.h"
#include "sched_http.h"
#include "sched_routes.h"
#include "sched_whbody.h"
#include "xmalloc.h"

static const char *const lanes[] = { "high", "normal", "low" };

struct jobread {
	struct http_wait w;
	struct sched	*s;
	enum jobs_mode	 mode;
	char		 jid[72];
	char		*tenant_prefix; /* NULL: any tenant */
	cJSON		*job;
	int		 pending;
	long long	 ahead, rank; /* rank -1: not in its lane */
};

const char *
sched_field(const redisReply *r, const char *field)
{
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return (NULL);
	for (i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, field) == 0 &&
		    r->element[i + 1]->type == REDIS_REPLY_STRING)
			return (r->element[i + 1]->str);
	return (NULL);
}

int
sched_tenant_ok(const char *tenant_prefix, const char *tenant)
{
	struct sched_token t = { "", tenant_prefix };

	return (tenant_prefix == NULL || auth_tenant_ok(&t, tenant));
}

static int
jobs_terminal(const char *state)
{
	return (state != NULL &&
	    (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
		strcmp(state, "canceled") == 0));
}

static void
jobs_num(cJSON *o, const char *name, const char *v)
{
	if (v != NULL && *v != '\0')
		cJSON_AddNumberToObject(o, name, atof(v));
}

static void
jobs_str(cJSON *o, const char *name, const char *v)
{
	if (v != NULL && *v != '\0')
		cJSON_AddStringToObject(o, name, v);
}

/* The output records without the store's own path or key, with a URL. */
static void
jobs_outputs(cJSON *o, const char *jid, const char *v)
{
	cJSON *list, *rec, *out, *f;
	char   url[160];
	int    n = 0;

	if (v == NULL || (list = cJSON_Parse(v)) == NULL)
		return;
	out = cJSON_AddArrayToObject(o, "outputs");
	cJSON_ArrayForEach(rec, list) {
		cJSON *r = cJSON_CreateObject();

		cJSON_ArrayForEach(f, rec) {
			if (strcmp(f->string, "path") != 0 &&
			    strcmp(f->string, "key") != 0)
				cJSON_AddItemToObject(
				    r, f->string, cJSON_Duplicate(f, 1));
		}
		snprintf(url, sizeof url, "/v1/jobs/%s/outputs/%d", jid, n++);
		cJSON_AddStringToObject(r, "url", url);
		cJSON_AddItemToArray(out, r);
	}
	cJSON_Delete(list);
}

/* A job record as the API shows it. */
static cJSON *
jobs_describe(const char *jid, const redisReply *h)
{
	cJSON	   *o = cJSON_CreateObject(), *j;
	const char *state = sched_field(h, "state"), *v, *slash;

	cJSON_AddStringToObject(o, "id", jid);
	jobs_str(o, "state", state);
	if ((v = sched_field(h, "spec")) != NULL && (j = cJSON_Parse(v))) {
		cJSON *wf = cJSON_GetObjectItemCaseSensitive(j, "workflow");

		if (cJSON_IsString(wf))
			cJSON_AddStringToObject(o, "workflow", wf->valuestring);
		cJSON_Delete(j);
	}
	jobs_str(o, "tenant", sched_field(h, "tenant"));
	jobs_str(o, "priority", sched_field(h, "priority"));
	jobs_num(o, "attempt", sched_field(h, "attempt"));
	jobs_num(o, "max_attempts", sched_field(h, "max_attempts"));
	if ((v = sched_field(h, "progress")) != NULL) {
		double value = atof(v), max = 0;

		if ((slash = strchr(v, '/')) != NULL)
			max = atof(slash + 1);
		j = cJSON_AddObjectToObject(o, "progress");
		cJSON_AddNumberToObject(j, "step", value);
		cJSON_AddNumberToObject(j, "max", max);
		cJSON_AddNumberToObject(j, "percent",
		    max > 0 ? (double)(int)(value * 100 / max) : 0);
	}
	v = sched_field(h, "cancel_req");
	cJSON_AddBoolToObject(o, "cancel_requested",
	    v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0));
	if ((v = sched_field(h, "error_code")) != NULL) {
		j = cJSON_AddObjectToObject(o, "error");
		cJSON_AddStringToObject(j, "code", v);
		jobs_str(j, "message", sched_field(h, "error"));
	}
	if (jobs_terminal(state)) {
		v = sched_field(h, "refund");
		cJSON_AddBoolToObject(o, "refund",
		    v != NULL &&
			(strcmp(v, "1") == 0 || strcmp(v, "true") == 0));
	}
	jobs_outputs(o, jid, sched_field(h, "outputs"));
	if ((v = sched_field(h, "meta")) != NULL && (j = cJSON_Parse(v)))
		cJSON_AddItemToObject(o, "meta", j);
	jobs_num(o, "created_ms", sched_field(h, "created_ms"));
	jobs_num(o, "started_ms", sched_field(h, "started_ms"));
	jobs_num(o, "finished_ms", sched_field(h, "finished_ms"));
	whbody_describe(h, o);
	return (o);
}

static void
jobs_read_free(struct jobread *jr)
{
	cJSON_Delete(jr->job);
	free(jr->tenant_prefix);
	free(jr);
}

static void
jobs_read_reply(struct jobread *jr, struct evhttp_request *req)
{
	cJSON *o;

	if (jr->rank >= 0)
		cJSON_AddNumberToObject(
		    jr->job, "position", (double)(jr->ahead + jr->rank + 1));
	if (jr->mode != JOBS_CREATED) {
		http_reply_json(req, 200, jr->job);
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "id",
	    cJSON_Duplicate(
		cJSON_GetObjectItemCaseSensitive(jr->job, "id"), 1));
	cJSON_AddItemToObject(o, "state",
	    cJSON_Duplicate(
		cJSON_GetObjectItemCaseSensitive(jr->job, "state"), 1));
	if (jr->rank >= 0)
		cJSON_AddNumberToObject(
		    o, "position", (double)(jr->ahead + jr->rank + 1));
	http_reply_json(req, 201, o);
	cJSON_Delete(o);
}

/* ZRANK in the job's lane, then the ZCARD of the lanes before it. */
static void
jobs_rank_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct jobread	      *jr = priv;
	redisReply	      *reply = r;
	struct evhttp_request *req;

	(void)ac;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
		if (jr->rank == -2)
			jr->rank = reply->integer;
		else
			jr->ahead += reply->integer;
	} else if (jr->rank == -2)
		jr->rank = -1; /* claimed meanwhile: no place to give */
	if (--jr->pending > 0)
		return;
	if ((req = http_wait_end(&jr->w)) != NULL)
		jobs_read_reply(jr, req);
	jobs_read_free(jr);
}

static int
jobs_rank(struct jobread *jr, const char *lane)
{
	struct rq_cmd c;
	size_t	      i, me;
	int	      rc = 0;

	for (me = 0; me < 3 && strcmp(lanes[me], lane) != 0; me++)
		;
	if (me == 3)
		return (-1);
	jr->rank = -2;
	rq_cmd_init(&c, "ZRANK");
	rq_cmd_addf(&c, "%sready:%s", jr->s->prefix, lane);
	rq_cmd_add(&c, jr->jid);
	rc = rq_async_call(jr->s->rc, jobs_rank_cb, jr, &c);
	rq_cmd_free(&c);
	jr->pending += rc == 0;
	for (i = 0; rc == 0 && i < me; i++) {
		rq_cmd_init(&c, "ZCARD");
		rq_cmd_addf(&c, "%sready:%s", jr->s->prefix, lanes[i]);
		rc = rq_async_call(jr->s->rc, jobs_rank_cb, jr, &c);
		rq_cmd_free(&c);
		jr->pending += rc == 0;
	}
	return (rc);
}

static void
jobs_read_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct jobread	      *jr = priv;
	redisReply	      *h = r;
	struct evhttp_request *req = jr->w.req;
	const char	      *state, *lane;

	(void)ac;
	if (req == NULL || h == NULL || h->type != REDIS_REPLY_ARRAY) {
		if ((req = http_wait_end(&jr->w)) != NULL)
			http_reply_redis_down(req);
		jobs_read_free(jr);
		return;
	}
	if (h->elements == 0 ||
	    !sched_tenant_ok(jr->tenant_prefix, sched_field(h, "tenant"))) {
		http_reply_error(
		    http_wait_end(&jr->w), 404, "not_found", "no such job");
		jobs_read_free(jr);
		return;
	}
	jr->job = jobs_describe(jr->jid, h);
	state = sched_field(h, "state");
	lane = sched_field(h, "priority");
	if (state != NULL && strcmp(state, "queued") == 0 && lane != NULL &&
	    jobs_rank(jr, lane) == 0)
		return; /* jobs_rank_cb answers */
	if (jr->pending > 0)
		return; /* a later call failed to go: the sent ones answer */
	jr->rank = -1;
	jobs_read_reply(jr, http_wait_end(&jr->w));
	jobs_read_free(jr);
}

void
jobs_read(struct sched *s, struct evhttp_request *req, const char *jid,
    const char *tenant_prefix, enum jobs_mode mode)
{
	struct jobread *jr = xcalloc(1, sizeof *jr);
	struct rq_cmd	c;

	jr->s = s;
	jr->mode = mode;
	jr->rank = -1;
	snprintf(jr->jid, sizeof jr->jid, "%s", jid);
	if (tenant_prefix != NULL)
		jr->tenant_prefix = xstrdup(tenant_prefix);
	rq_cmd_init(&c, "HGETALL");
	rq_cmd_addf(&c, "%sjob:%s", s->prefix, jid);
	http_wait_start(&jr->w, req);
	if (rq_async_call(s->rc, jobs_read_cb, jr, &c) == -1) {
		http_reply_redis_down(http_wait_end(&jr->w));
		jobs_read_free(jr);
	}
	rq_cmd_free(&c);
}

/* The token's tenant prefix, NULL when it may see every tenant. */
const char *
sched_scope(const struct sched_token *tok)
{
	if (tok == NULL || strcmp(tok->tenant_prefix, "*") == 0)
		return (NULL);
	return (tok->tenant_prefix);
}

SCHED_ROUTE(jobs_get)
{
	jobs_read(s, req, args[0], sched_scope(tok), JOBS_FULL);
}

struct jobcancel {
	struct http_wait w;
	struct sched	*s;
	char		 jid[72];
	char		*tenant_prefix;
	char		*who;
};

static void
jobs_cancel_free(struct jobcancel *jc)
{
	free(jc->tenant_prefix);
	free(jc->who);
	free(jc);
}

static void
jobs_cancel_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct jobcancel      *jc = priv;
	struct evhttp_request *req = http_wait_end(&jc->w);
	struct rqfn_cancel     k;
	cJSON		      *o;
	char		       err[1024], msg[256];

	(void)ac;
	if (req == NULL)
		goto out;
	if (r == NULL) {
		http_reply_redis_down(req);
		goto out;
	}
	if (rqfn_cancel_reply(r, &k, err, sizeof err) == -1) {
		if (strncmp(err, "NOJOB", 5) == 0)
			http_reply_error(req, 404, "not_found", "no such job");
		else {
			log_job(LL_WARNING, jc->jid, "cancel: %s", err);
			http_reply_error(req, 500, "internal", err);
		}
		goto out;
	}
	if (k.kind == RQFN_CANCEL_ALREADY) {
		snprintf(msg, sizeof msg, "job %s already ended: %s", jc->jid,
		    k.state != NULL ? k.state : "?");
		http_reply_error(req, 409, "already_ended", msg);
		goto out;
	}
	log_job(LL_NOTICE, jc->jid, "cancel %s by %s", k.what, jc->who);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", jc->jid);
	if (k.kind == RQFN_CANCEL_CANCELED) {
		cJSON_AddStringToObject(o, "state", "canceled");
		cJSON_AddBoolToObject(o, "refund", 1);
	} else {
		cJSON_AddStringToObject(o, "state", "active");
		cJSON_AddBoolToObject(o, "cancel_requested", 1);
	}
	http_reply_json(req, k.kind == RQFN_CANCEL_CANCELED ? 200 : 202, o);
	cJSON_Delete(o);
out:
	jobs_cancel_free(jc);
}

/* The tenant first (scope), then the cancel; both on one connection. */
static void
jobs_cancel_scope_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct jobcancel *jc = priv;
	redisReply	 *h = r;
	struct rq_cmd	  c;
	char		  reason[192];

	(void)ac;
	if (jc->w.req == NULL || h == NULL || h->type != REDIS_REPLY_ARRAY ||
	    h->elements != 2) {
		if (jc->w.req != NULL)
			http_reply_redis_down(http_wait_end(&jc->w));
		jobs_cancel_free(jc);
		return;
	}
	if (h->element[0]->type != REDIS_REPLY_STRING ||
	    !sched_tenant_ok(jc->tenant_prefix,
		h->element[1]->type == REDIS_REPLY_STRING ? h->element[1]->str
							  : NULL)) {
		http_reply_error(
		    http_wait_end(&jc->w), 404, "not_found", "no such job");
		jobs_cancel_free(jc);
		return;
	}
	snprintf(
	    reason, sizeof reason, "canceled through the API by %s", jc->who);
	rqfn_cancel_cmd(&c, jc->s->prefix, jc->jid, reason);
	if (rq_async_call(jc->s->rc, jobs_cancel_cb, jc, &c) == -1) {
		http_reply_redis_down(http_wait_end(&jc->w));
		jobs_cancel_free(jc);
	}
	rq_cmd_free(&c);
}

SCHED_ROUTE(jobs_cancel)
{
	struct jobcancel *jc = xcalloc(1, sizeof *jc);
	struct rq_cmd	  c;

	jc->s = s;
	snprintf(jc->jid, sizeof jc->jid, "%s", args[0]);
	if (sched_scope(tok) != NULL)
		jc->tenant_prefix = xstrdup(sched_scope(tok));
	jc->who = xasprintf("token %s", tok != NULL ? tok->name : "(none)");
	rq_cmd_init(&c, "HMGET");
	rq_cmd_addf(&c, "%sjob:%s", s->prefix, jc->jid);
	rq_cmd_add(&c, "state");
	rq_cmd_add(&c, "tenant");
	http_wait_start(&jc->w, req);
	if (rq_async_call(s->rc, jobs_cancel_scope_cb, jc, &c) == -1) {
		http_reply_redis_down(http_wait_end(&jc->w));
		jobs_cancel_free(jc);
	}
	rq_cmd_free(&c);
}
