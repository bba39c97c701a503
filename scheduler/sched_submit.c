/*
 * POST /v1/jobs: a job spec (README "A job") checked completely before
 * anything is written, by the code `comfyq submit` runs: job_spec_parse
 * (the envelope) and wf_job_new against the templates of workflows-dir
 * (params, LoRAs, ControlNets, inputs, raw graphs). Then the tenant is
 * checked against the token, the Idempotency-Key header joins the spec,
 * the queue depth is checked (backpressure: 503 with Retry-After) and the
 * spec goes to comfyq_enqueue, which checks it again in Lua.
 *
 * A 400 lists the fields at fault, each by its path in the spec (a
 * template param under params), and its message is the first of them:
 * {"error":{"code":"invalid_input","message":"steps: 150 not in 1..100",
 * "fields":[{"field":"params.steps","message":"150 not in 1..100"}]}}.
 * wf_job_new_all lists every independent error of the params, LoRAs,
 * ControlNets and inputs (at most WF_ERRORS_MAX, the last saying how
 * many more); the envelope (job_spec_parse) and Lua's checks stop at the
 * first error, so their 400 names one field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "log.h"
#include "rqfn.h"
#include "sched.h"
#include "sched_auth.h"
#include "sched_http.h"
#include "sched_routes.h"
#include "wfjob.h"
#include "xmalloc.h"

struct submit {
	struct http_wait w;
	struct sched	*s;
	char		*spec;		/* the text to enqueue */
	char		*tenant_prefix; /* NULL: any tenant */
	char		*model;		/* its checkpoint key (wf_job_model) */
	long long	 vram_mb;	/* the template's estimate, 0: none */
	int		 pending;	/* depth: ZCARDs to come */
	long long	 depth;
	int		 failed;
};

static void
submit_free(struct submit *sb)
{
	cJSON_free(sb->spec);
	free(sb->tenant_prefix);
	free(sb->model);
	free(sb);
}

static void
submit_field(cJSON *fields, const char *field, const char *message)
{
	cJSON *f = cJSON_CreateObject();

	cJSON_AddStringToObject(f, "field", field);
	cJSON_AddStringToObject(f, "message", message);
	cJSON_AddItemToArray(fields, f);
}

/*
 * The fields an error names. "spec.X: why" is X; "spec: why" the whole
 * spec; "a, b: why" both; a template param, or a key of the spec's params
 * (an unknown one), is params.<name>; a name with a space (a raw graph's
 * "node 3 (LoadImage) input image") is where.
 */
static cJSON *
submit_fields(const char *err, const struct wf_template *t, const cJSON *params,
    const char *where)
{
	cJSON	   *fields = cJSON_CreateArray();
	const char *colon, *p, *why, *end;
	char	    name[160], path[200];

	if (strncmp(err, "spec: ", 6) == 0) {
		submit_field(fields, "spec", err + 6);
		return (fields);
	}
	if (strncmp(err, "spec.", 5) == 0)
		err += 5;
	if ((colon = strstr(err, ": ")) == NULL) {
		submit_field(fields, where, err);
		return (fields);
	}
	why = colon + 2;
	for (p = err; p < colon; p = end + (*end == ',' ? 2 : 0)) {
		if ((end = strstr(p, ", ")) == NULL || end > colon)
			end = colon;
		snprintf(name, sizeof name, "%.*s", (int)(end - p), p);
		if (strchr(name, ' ') != NULL || name[0] == '\0') {
			submit_field(fields, where, err);
			break;
		}
		if ((t != NULL && wf_param_find(t, name) != NULL) ||
		    cJSON_GetObjectItemCaseSensitive(params, name) != NULL)
			snprintf(path, sizeof path, "params.%s", name);
		else
			snprintf(path, sizeof path, "%s", name);
		submit_field(fields, path, why);
	}
	return (fields);
}

static void
submit_invalid(struct evhttp_request *req, const char *code, const char *err,
    const struct wf_template *t, const char *where)
{
	http_reply_fields(
	    req, 400, code, err, submit_fields(err, t, NULL, where));
}

/* A 400 with the fields of every error in we; err is the first. */
static void
submit_invalid_all(struct evhttp_request *req, const char *code,
    const char *err, const struct wf_errors *we, const struct wf_template *t,
    const cJSON *params, const char *where)
{
	cJSON *fields = cJSON_CreateArray(), *one, *f;
	int    i;

	for (i = 0; i < we->n; i++) {
		one = submit_fields(we->msg[i], t, params, where);
		while ((f = cJSON_DetachItemFromArray(one, 0)) != NULL)
			if (cJSON_GetArraySize(fields) < WF_ERRORS_MAX)
				cJSON_AddItemToArray(fields, f);
			else
				cJSON_Delete(f);
		cJSON_Delete(one);
	}
	http_reply_fields(req, 400, code, err, fields);
}

static void
submit_enqueue_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct submit	      *sb = priv;
	struct evhttp_request *req = http_wait_end(&sb->w);
	struct rqfn_enqueue    e;
	char		       err[2048];

	(void)ac;
	if (req == NULL)
		goto out;
	if (r == NULL) {
		http_reply_redis_down(req);
		goto out;
	}
	if (rqfn_enqueue_reply(r, &e, err, sizeof err) == -1) {
		if (strncmp(err, "INVALID ", 8) == 0)
			submit_invalid(
			    req, "invalid_input", err + 8, NULL, "spec");
		else if (strncmp(err, "CONFLICT ", 9) == 0)
			http_reply_error(req, 409, "conflict", err + 9);
		else {
			log_warnx("enqueue: %s", err);
			http_reply_error(req, 500, "internal", err);
		}
		goto out;
	}
	log_job(LL_VERBOSE, e.jid, "submitted through the API: %s (%s)",
	    e.result, e.state);
	jobs_read(sb->s, req, e.jid, sb->tenant_prefix,
	    strcmp(e.result, "created") == 0 ? JOBS_CREATED : JOBS_REPLAY);
out:
	submit_free(sb);
}

static void
submit_enqueue(struct submit *sb)
{
	struct rqfn_enqueue_opts o = { .model = sb->model,
		.vram_mb = sb->vram_mb };
	struct rq_cmd		 c;

	rqfn_enqueue_cmd(&c, sb->s->prefix, sb->spec, &o);
	if (rq_async_call(sb->s->rc, submit_enqueue_cb, sb, &c) == -1) {
		http_reply_redis_down(http_wait_end(&sb->w));
		submit_free(sb);
	}
	rq_cmd_free(&c);
}

/* One ZCARD of a ready lane; after the last, refuse or enqueue. */
static void
submit_depth_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct submit *sb = priv;
	redisReply    *reply = r;
	char	       ra[32], msg[160];

	(void)ac;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
		sb->depth += reply->integer;
	else
		sb->failed = 1;
	if (--sb->pending > 0)
		return;
	if (sb->w.req == NULL || sb->failed) {
		if (sb->w.req != NULL)
			http_reply_redis_down(http_wait_end(&sb->w));
		submit_free(sb);
		return;
	}
	if (sb->depth >= sb->s->cfg->max_queue_depth) {
		struct evhttp_request *req = http_wait_end(&sb->w);

		snprintf(ra, sizeof ra, "%lld", sb->s->cfg->retry_after_s);
		snprintf(msg, sizeof msg,
		    "the queue is full (%lld jobs waiting, max-queue-depth "
		    "%lld); retry after %lld s",
		    sb->depth, sb->s->cfg->max_queue_depth,
		    sb->s->cfg->retry_after_s);
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "Retry-After", ra);
		http_reply_error(req, 503, "queue_full", msg);
		submit_free(sb);
		return;
	}
	submit_enqueue(sb);
}

static void
submit_queue(struct sched *s, struct evhttp_request *req, char *spec,
    const char *tenant_prefix, const char *model, long long vram_mb)
{
	static const char *const lanes[] = { "high", "normal", "low" };
	struct submit		*sb = xcalloc(1, sizeof *sb);
	struct rq_cmd		 c;
	size_t			 i;

	sb->s = s;
	sb->spec = spec;
	sb->model = xstrdup(model);
	sb->vram_mb = vram_mb;
	if (tenant_prefix != NULL)
		sb->tenant_prefix = xstrdup(tenant_prefix);
	http_wait_start(&sb->w, req);
	if (s->cfg->max_queue_depth == 0) {
		submit_enqueue(sb);
		return;
	}
	for (i = 0; i < 3; i++) {
		rq_cmd_init(&c, "ZCARD");
		rq_cmd_addf(&c, "%sready:%s", s->prefix, lanes[i]);
		if (rq_async_call(s->rc, submit_depth_cb, sb, &c) == 0)
			sb->pending++;
		else
			sb->failed = 1;
		rq_cmd_free(&c);
	}
	if (sb->pending == 0) {
		http_reply_redis_down(http_wait_end(&sb->w));
		submit_free(sb);
	}
}

/*
 * Lays the token's tenant and the Idempotency-Key header over the spec.
 * Returns the new text (cJSON_free it), or NULL with a reply sent.
 */
static char *
submit_overlay(struct evhttp_request *req, const struct job_spec *js,
    const char *scope, const char *key)
{
	cJSON *root;
	char  *text, msg[512];

	if (scope != NULL && js->tenant != NULL &&
	    strncmp(js->tenant, scope, strlen(scope)) != 0) {
		snprintf(msg, sizeof msg,
		    "tenant: this token submits only for tenants starting "
		    "'%.128s'",
		    scope);
		http_reply_error(req, 403, "forbidden", msg);
		return (NULL);
	}
	if (key != NULL && js->idempotency_key != NULL &&
	    strcmp(key, js->idempotency_key) != 0) {
		cJSON *f = cJSON_CreateArray();

		submit_field(f, "idempotency_key",
		    "differs from the Idempotency-Key header");
		http_reply_fields(req, 400, "invalid_input",
		    "idempotency_key: differs from the Idempotency-Key header",
		    f);
		return (NULL);
	}
	root = cJSON_Duplicate(js->root, 1);
	if (scope != NULL && js->tenant == NULL)
		cJSON_AddStringToObject(root, "tenant", scope);
	if (key != NULL && js->idempotency_key == NULL)
		cJSON_AddStringToObject(root, "idempotency_key", key);
	text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return (text);
}

SCHED_ROUTE(jobs_submit)
{
	const struct wf_template *t = NULL;
	struct job_spec		  js;
	struct wf_job		 *wj = NULL;
	struct wf_errors	 *we = NULL;
	const char		 *code, *scope = sched_scope(tok);
	char			 *body, *text = NULL, err[2048];
	char			  model[WF_MODEL_MAX + 1];
	size_t			  len;
	int			  vram;

	(void)args;
	memset(&js, 0, sizeof js);
	if ((body = http_body(req, &len)) == NULL) {
		http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	if (job_spec_parse(&js, body, len, NULL, err, sizeof err) == -1) {
		if (strcmp(err, "spec: not valid JSON") == 0 ||
		    strcmp(err, "spec: missing") == 0)
			http_reply_error(req, 400, "invalid_json",
			    "the body is not one valid JSON document");
		else
			submit_invalid(req, "invalid_input", err, NULL, "spec");
		goto out;
	}
	if ((text = submit_overlay(
		 req, &js, scope, http_header(req, "Idempotency-Key"))) == NULL)
		goto out;
	job_spec_free(&js);
	if (job_spec_parse(&js, text, strlen(text), NULL, err, sizeof err) ==
	    -1) {
		submit_invalid(req, "invalid_input", err, NULL, "spec");
		goto out;
	}
	if (js.workflow != NULL &&
	    (t = wf_find(s->workflows, js.workflow)) == NULL) {
		snprintf(err, sizeof err, "workflow: no template named %.64s",
		    js.workflow);
		submit_invalid(req, "unknown_workflow", err, NULL, "workflow");
		goto out;
	}
	we = xcalloc(1, sizeof *we);
	if ((wj = wf_job_new_all(s->workflows, &js, NULL, we, &code, err,
		 sizeof err)) == NULL) {
		submit_invalid_all(req, code, err, we, t, js.params,
		    js.graph ? "graph" : "spec");
		goto out;
	}
	/* The template's VRAM estimate goes as the enqueue option vram_mb
	 * (as comfyq submit sends it): the spec is stored as it came. */
	vram = js.vram_mb == 0 ? wf_job_expect(wj)->vram_mb : 0;
	/* The checkpoints it loads, for model-aware claiming; one that
	 * cannot be rendered here has none (its worker reports why). */
	(void)wf_job_model(wj, model);
	submit_queue(s, req, text, scope, model, vram > 0 ? vram : 0);
	text = NULL;
out:
	free(we);
	wf_job_free(wj);
	job_spec_free(&js);
	cJSON_free(text);
	free(body);
}
