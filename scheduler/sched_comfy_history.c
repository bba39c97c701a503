/*
 * ComfyUI's read routes over the job records (see sched_comfy.h):
 * GET /comfy/history/{prompt_id}, /comfy/history, /comfy/queue,
 * /comfy/prompt, GET /comfy/view, and POST /comfy/interrupt.
 *
 * Every one starts from the caller's tenant: a prompt id is looked up in
 * comfy:pid:<tenant>:, a list is comfy:jobs:<tenant> (the last
 * COMFY_RECENT_MAX prompts, newest first, of which /history reads at most
 * max_items and /queue the last COMFY_SCAN_MAX), so a tenant never sees
 * another's prompts. Each job is one HGETALL, pipelined.
 *
 * Shapes (comfyui-api.md §2.3, §2.7): a history entry exists only once the
 * job ended ({} before, as ComfyUI); its outputs are the job's output
 * records grouped by node, each {filename, subfolder: <job id>, type:
 * "output"}, so /view finds the job from what history gave; its status
 * messages are execution_start, execution_cached (the nodes the worker's
 * ComfyUI took from its cache, from the record's nodes), and then
 * execution_success, execution_error (error_code as exception_type, the
 * error as exception_message, node_id and executed from nodes) or
 * execution_interrupted (canceled). A queue item is [number, prompt_id,
 * graph, {client_id, create_time}, output node ids]; active jobs are
 * running, queued and delayed ones pending.
 *
 * /view takes ComfyUI's guards in its order (a filename with '/' first or
 * "..": 400; an unknown type: 400; a subfolder that is no job id: 403 when
 * it climbs, else 404), then serves the bytes through GET
 * /v1/jobs/{id}/outputs/{n} (sched_outputs.c), so the store is confined
 * exactly as there. Only type output exists here: uploads are not served
 * back (404). /interrupt cancels (comfyq_cancel) the named prompt when it
 * runs, or with no prompt_id every running prompt of the tenant, and
 * answers 200 with no body either way, as ComfyUI does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "graph.h"
#include "log.h"
#include "rqfn.h"
#include "sched.h"
#include "sched_auth.h"
#include "sched_comfy.h"
#include "sched_http.h"
#include "util.h"
#include "xmalloc.h"

#define COMFY_SCAN_MAX	   200 /* prompts /queue and /interrupt look at */
#define COMFY_HISTORY_DEF  200
#define COMFY_FILENAME_MAX 256

enum cscan_kind {
	CS_HISTORY,   /* {pid: entry}, oldest first */
	CS_ONE,	      /* one prompt's entry or {} */
	CS_QUEUE,     /* {queue_running, queue_pending} */
	CS_REMAINING, /* {exec_info: {queue_remaining}} */
	CS_INTERRUPT, /* cancels the running ones */
};

struct cscan {
	struct http_wait w;
	struct sched	*s;
	enum cscan_kind	 kind;
	char		 tenant[160];
	char		 pid[COMFY_PID_MAX + 1]; /* CS_ONE, CS_INTERRUPT */
	cJSON		*jids;			 /* in the order asked */
	cJSON		*entries;		 /* one per jid, or null */
	int		 pending, failed;
	int		 next;
};

static void
cscan_free(struct cscan *cs)
{
	cJSON_Delete(cs->jids);
	cJSON_Delete(cs->entries);
	free(cs);
}

const char *
comfy_job_pid(const char *jid, const cJSON *meta)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(meta, "comfy"), "prompt_id");

	return (cJSON_IsString(v) ? v->valuestring : jid);
}

static int
cstate(const char *state, const char *want)
{
	return (state != NULL && strcmp(state, want) == 0);
}

/* [number, prompt_id, graph, {client_id, create_time}, outputs]. */
static cJSON *
comfy_item(
    const char *jid, const redisReply *h, const cJSON *spec, const cJSON *meta)
{
	const cJSON *cm = cJSON_GetObjectItemCaseSensitive(meta, "comfy"), *v;
	const cJSON *graph = cJSON_GetObjectItemCaseSensitive(spec, "graph");
	const struct graph_class *gc;
	const char		 *ct, *created = sched_field(h, "created_ms");
	cJSON *item = cJSON_CreateArray(), *extra, *outs, *node;

	v = cJSON_GetObjectItemCaseSensitive(cm, "number");
	cJSON_AddItemToArray(
	    item, cJSON_CreateNumber(cJSON_IsNumber(v) ? v->valuedouble : 0));
	cJSON_AddItemToArray(
	    item, cJSON_CreateString(comfy_job_pid(jid, meta)));
	cJSON_AddItemToArray(item,
	    graph != NULL ? cJSON_Duplicate(graph, 1) : cJSON_CreateObject());
	extra = cJSON_CreateObject();
	v = cJSON_GetObjectItemCaseSensitive(cm, "client_id");
	if (cJSON_IsString(v))
		cJSON_AddStringToObject(extra, "client_id", v->valuestring);
	cJSON_AddNumberToObject(
	    extra, "create_time", created != NULL ? atof(created) : 0);
	cJSON_AddItemToArray(item, extra);
	outs = cJSON_CreateArray();
	cJSON_ArrayForEach(node, graph) {
		if ((ct = graph_node_class(node)) != NULL &&
		    (gc = graph_class_find(ct)) != NULL && gc->output_node)
			cJSON_AddItemToArray(
			    outs, cJSON_CreateString(node->string));
	}
	cJSON_AddItemToArray(item, outs);
	return (item);
}

cJSON *
comfy_outputs(const char *jid, const char *text)
{
	cJSON	   *o = cJSON_CreateObject(), *list, *rec, *per, *arr, *f;
	const char *node, *name, *mime, *key;

	if (text == NULL || (list = cJSON_Parse(text)) == NULL)
		return (o);
	cJSON_ArrayForEach(rec, list) {
		node = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(rec, "node"));
		name = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(rec, "filename"));
		mime = cJSON_GetStringValue(
		    cJSON_GetObjectItemCaseSensitive(rec, "mime"));
		if (node == NULL || name == NULL)
			continue;
		key = mime != NULL && strncmp(mime, "video/", 6) == 0 ? "gifs"
		    : mime != NULL && strncmp(mime, "audio/", 6) == 0
		    ? "audio"
		    : "images";
		if ((per = cJSON_GetObjectItemCaseSensitive(o, node)) == NULL)
			per = cJSON_AddObjectToObject(o, node);
		if ((arr = cJSON_GetObjectItemCaseSensitive(per, key)) == NULL)
			arr = cJSON_AddArrayToObject(per, key);
		f = cJSON_CreateObject();
		cJSON_AddStringToObject(f, "filename", name);
		cJSON_AddStringToObject(f, "subfolder", jid);
		cJSON_AddStringToObject(f, "type", "output");
		if (strcmp(key, "gifs") == 0)
			cJSON_AddStringToObject(f, "format", mime);
		cJSON_AddItemToArray(arr, f);
	}
	cJSON_Delete(list);
	return (o);
}

static cJSON *
comfy_ids(const cJSON *list)
{
	cJSON	    *a = cJSON_CreateArray();
	const cJSON *v;

	cJSON_ArrayForEach(v, list) {
		if (cJSON_IsString(v))
			cJSON_AddItemToArray(
			    a, cJSON_CreateString(v->valuestring));
	}
	return (a);
}

cJSON *
comfy_cached(const cJSON *nodes)
{
	return (comfy_ids(cJSON_GetObjectItemCaseSensitive(nodes, "cached")));
}

void
comfy_end_fields(
    cJSON *d, const cJSON *nodes, int err, const char *code, const char *msg)
{
	const char *at =
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(nodes, "at"));
	cJSON *done, *v, *last = NULL;

	if (at != NULL)
		cJSON_AddStringToObject(d, "node_id", at);
	else
		cJSON_AddNullToObject(d, "node_id");
	cJSON_AddNullToObject(d, "node_type");
	/* What ran, but the node it ended at (its last time). */
	done = comfy_ids(cJSON_GetObjectItemCaseSensitive(nodes, "ran"));
	cJSON_ArrayForEach(v, done) {
		if (at != NULL && strcmp(v->valuestring, at) == 0)
			last = v;
	}
	if (last != NULL)
		cJSON_Delete(cJSON_DetachItemViaPointer(done, last));
	cJSON_AddItemToObject(d, "executed", done);
	if (!err)
		return;
	cJSON_AddStringToObject(d, "exception_message", msg != NULL ? msg : "");
	cJSON_AddStringToObject(d, "exception_type", code != NULL ? code : "");
	cJSON_AddArrayToObject(d, "traceback");
	cJSON_AddObjectToObject(d, "current_inputs");
	cJSON_AddArrayToObject(d, "current_outputs");
}

static cJSON *
comfy_message(const char *event, const char *pid, const char *ms)
{
	cJSON *m = cJSON_CreateArray(), *d = cJSON_CreateObject();

	cJSON_AddItemToArray(m, cJSON_CreateString(event));
	cJSON_AddStringToObject(d, "prompt_id", pid);
	cJSON_AddNumberToObject(d, "timestamp", ms != NULL ? atof(ms) : 0);
	cJSON_AddItemToArray(m, d);
	return (m);
}

/* A history entry; NULL while the job has not ended. */
static cJSON *
comfy_entry(
    const char *jid, const redisReply *h, const cJSON *spec, const cJSON *meta)
{
	const char *state = sched_field(h, "state"), *pid, *v;
	const char *fin = sched_field(h, "finished_ms");
	cJSON	   *e, *st, *msgs, *m, *outs, *node, *mo, *nodes;
	int	    ok = cstate(state, "succeeded");

	if (!ok && !cstate(state, "failed") && !cstate(state, "canceled"))
		return (NULL);
	pid = comfy_job_pid(jid, meta);
	nodes = (v = sched_field(h, "nodes")) != NULL ? cJSON_Parse(v) : NULL;
	e = cJSON_CreateObject();
	cJSON_AddItemToObject(e, "prompt", comfy_item(jid, h, spec, meta));
	outs = ok ? comfy_outputs(jid, sched_field(h, "outputs"))
		  : cJSON_CreateObject();
	cJSON_AddItemToObject(e, "outputs", outs);
	st = cJSON_AddObjectToObject(e, "status");
	cJSON_AddStringToObject(st, "status_str", ok ? "success" : "error");
	cJSON_AddBoolToObject(st, "completed", ok);
	msgs = cJSON_AddArrayToObject(st, "messages");
	if (sched_field(h, "started_ms") != NULL) {
		v = sched_field(h, "started_ms");
		cJSON_AddItemToArray(
		    msgs, comfy_message("execution_start", pid, v));
		m = comfy_message("execution_cached", pid, v);
		cJSON_AddItemToObject(
		    cJSON_GetArrayItem(m, 1), "nodes", comfy_cached(nodes));
		cJSON_AddItemToArray(msgs, m);
	}
	if (ok)
		cJSON_AddItemToArray(
		    msgs, comfy_message("execution_success", pid, fin));
	else {
		m = comfy_message(cstate(state, "canceled")
			? "execution_interrupted"
			: "execution_error",
		    pid, fin);
		comfy_end_fields(cJSON_GetArrayItem(m, 1), nodes,
		    !cstate(state, "canceled"), sched_field(h, "error_code"),
		    sched_field(h, "error"));
		cJSON_AddItemToArray(msgs, m);
	}
	cJSON_Delete(nodes);
	mo = cJSON_AddObjectToObject(e, "meta");
	cJSON_ArrayForEach(node, outs) {
		cJSON *x = cJSON_AddObjectToObject(mo, node->string);

		cJSON_AddStringToObject(x, "node_id", node->string);
		cJSON_AddStringToObject(x, "display_node", node->string);
		cJSON_AddNullToObject(x, "parent_node");
		cJSON_AddStringToObject(x, "real_node_id", node->string);
	}
	return (e);
}

static void
cscan_interrupted_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cscan	  *cs = priv;
	struct rqfn_cancel k;
	char		   err[512];

	(void)ac;
	if (r != NULL && rqfn_cancel_reply(r, &k, err, sizeof err) == -1)
		log_warnx("interrupt: %s", err);
	if (--cs->pending == 0) {
		struct evhttp_request *req = http_wait_end(&cs->w);

		if (req != NULL)
			comfy_reply_empty(req);
		cscan_free(cs);
	}
}

/*
 * The answer from the entries, one per job asked: [pid, history entry]
 * (history), [state, queue item] (queue, remaining), or null.
 */
static void
cscan_reply(struct cscan *cs, struct evhttp_request *req)
{
	cJSON *o = cJSON_CreateObject(), *run, *pend, *e, *k, *v;
	int    i, n = cJSON_GetArraySize(cs->entries), q = 0;

	run = pend = NULL;
	if (cs->kind == CS_QUEUE) {
		run = cJSON_AddArrayToObject(o, "queue_running");
		pend = cJSON_AddArrayToObject(o, "queue_pending");
	}
	for (i = n - 1; i >= 0; i--) { /* oldest first */
		e = cJSON_GetArrayItem(cs->entries, i);
		k = cJSON_GetArrayItem(e, 0);
		v = cJSON_GetArrayItem(e, 1);
		if (!cJSON_IsString(k) || v == NULL)
			continue;
		if (cs->kind == CS_HISTORY || cs->kind == CS_ONE)
			cJSON_AddItemToObject(
			    o, k->valuestring, cJSON_Duplicate(v, 1));
		else if (cs->kind == CS_QUEUE)
			cJSON_AddItemToArray(
			    strcmp(k->valuestring, "active") == 0 ? run : pend,
			    cJSON_Duplicate(v, 1));
		else
			q++;
	}
	if (cs->kind == CS_REMAINING)
		cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "exec_info"),
		    "queue_remaining", q);
	http_reply_json(req, 200, o);
	cJSON_Delete(o);
}

static void
cscan_done(struct cscan *cs)
{
	struct evhttp_request *req = http_wait_end(&cs->w);

	if (req != NULL && cs->failed)
		http_reply_redis_down(req);
	else if (req != NULL && cs->kind == CS_INTERRUPT)
		comfy_reply_empty(req);
	else if (req != NULL)
		cscan_reply(cs, req);
	cscan_free(cs);
}

/* Cancels a running job (CS_INTERRUPT); the cancel's answer ends it. */
static void
cscan_interrupt(struct cscan *cs, const char *jid)
{
	struct rq_cmd c;

	rqfn_cancel_cmd(&c, cs->s->prefix, jid, "interrupted through /comfy");
	if (rq_async_call(cs->s->rc, cscan_interrupted_cb, cs, &c) == 0)
		cs->pending++;
	rq_cmd_free(&c);
}

/* One job's HGETALL, in the order asked. */
static void
cscan_job_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cscan *cs = priv;
	redisReply   *h = r;
	const char   *jid, *state, *tenant, *v;
	cJSON	     *spec, *meta, *pair = NULL, *x = NULL;

	(void)ac;
	jid = cJSON_GetStringValue(cJSON_GetArrayItem(cs->jids, cs->next++));
	if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
		cs->failed = 1;
		goto next;
	}
	state = sched_field(h, "state");
	tenant = sched_field(h, "tenant");
	if (jid == NULL || h->elements == 0 || tenant == NULL ||
	    strcmp(tenant, cs->tenant) != 0)
		goto next; /* gone, or not this tenant's */
	spec = (v = sched_field(h, "spec")) != NULL ? cJSON_Parse(v) : NULL;
	meta = (v = sched_field(h, "meta")) != NULL ? cJSON_Parse(v) : NULL;
	switch (cs->kind) {
	case CS_HISTORY:
	case CS_ONE:
		if ((x = comfy_entry(jid, h, spec, meta)) != NULL) {
			pair = cJSON_CreateArray();
			cJSON_AddItemToArray(pair,
			    cJSON_CreateString(*cs->pid != '\0'
				    ? cs->pid
				    : comfy_job_pid(jid, meta)));
		}
		break;
	case CS_INTERRUPT:
		if (cstate(state, "active"))
			cscan_interrupt(cs, jid);
		break;
	default:
		if (cstate(state, "active") || cstate(state, "queued") ||
		    cstate(state, "delayed")) {
			pair = cJSON_CreateArray();
			cJSON_AddItemToArray(pair, cJSON_CreateString(state));
			x = comfy_item(jid, h, spec, meta);
		}
	}
	if (pair != NULL) {
		cJSON_AddItemToArray(pair, x);
		cJSON_AddItemToArray(cs->entries, pair);
	}
	cJSON_Delete(spec);
	cJSON_Delete(meta);
next:
	if (--cs->pending == 0)
		cscan_done(cs);
}

/* HGETALL of every job in cs->jids; the last answer replies. */
static void
cscan_jobs(struct cscan *cs)
{
	struct rq_cmd c;
	cJSON	     *j;

	cJSON_ArrayForEach(j, cs->jids) {
		rq_cmd_init(&c, "HGETALL");
		rq_cmd_addf(&c, "%sjob:%s", cs->s->prefix, j->valuestring);
		if (rq_async_call(cs->s->rc, cscan_job_cb, cs, &c) == 0)
			cs->pending++;
		else
			cs->failed = 1;
		rq_cmd_free(&c);
	}
}

/* The ids, from ZREVRANGE (a list) or GET (one prompt id). */
static void
cscan_ids_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cscan *cs = priv;
	redisReply   *rr = r;
	size_t	      i;

	(void)ac;
	cs->pending--;
	if (cs->w.req == NULL || rr == NULL || rr->type == REDIS_REPLY_ERROR) {
		cs->failed = 1;
		cscan_done(cs);
		return;
	}
	if (rr->type == REDIS_REPLY_STRING)
		cJSON_AddItemToArray(cs->jids, cJSON_CreateString(rr->str));
	for (i = 0; rr->type == REDIS_REPLY_ARRAY && i < rr->elements; i++)
		if (rr->element[i]->type == REDIS_REPLY_STRING)
			cJSON_AddItemToArray(
			    cs->jids, cJSON_CreateString(rr->element[i]->str));
	cscan_jobs(cs);
	if (cs->pending == 0)
		cscan_done(cs);
}

/* Starts a scan: the prompt id pid (or a list of count when pid NULL). */
static void
cscan_start(struct sched *s, struct evhttp_request *req,
    const struct sched_token *tok, enum cscan_kind kind, const char *pid,
    int count)
{
	struct cscan *cs = xcalloc(1, sizeof *cs);
	struct rq_cmd c;
	char	      stop[32];

	cs->s = s;
	cs->kind = kind;
	snprintf(cs->tenant, sizeof cs->tenant, "%s", comfy_tenant(tok));
	cs->jids = cJSON_CreateArray();
	cs->entries = cJSON_CreateArray();
	if (pid != NULL) {
		snprintf(cs->pid, sizeof cs->pid, "%s", pid);
		rq_cmd_init(&c, "GET");
		rq_cmd_addf(
		    &c, "%scomfy:pid:%s:%s", s->prefix, cs->tenant, pid);
	} else {
		snprintf(stop, sizeof stop, "%d", count - 1);
		rq_cmd_init(&c, "ZREVRANGE");
		rq_cmd_addf(&c, "%scomfy:jobs:%s", s->prefix, cs->tenant);
		rq_cmd_add(&c, "0");
		rq_cmd_add(&c, stop);
	}
	http_wait_start(&cs->w, req);
	if (rq_async_call(s->rc, cscan_ids_cb, cs, &c) == 0)
		cs->pending++;
	else {
		cs->failed = 1;
		cscan_done(cs);
	}
	rq_cmd_free(&c);
}

SCHED_ROUTE(comfy_history_one)
{
	cscan_start(s, req, tok, CS_ONE, args[0], 0);
}

SCHED_ROUTE(comfy_history)
{
	long long n = COMFY_HISTORY_DEF;
	char	  q[32];

	(void)args;
	if (http_query(req, "max_items", q, sizeof q) == 0 &&
	    parse_ll(q, 1, COMFY_RECENT_MAX, &n) == -1)
		n = COMFY_RECENT_MAX;
	cscan_start(s, req, tok, CS_HISTORY, NULL, (int)n);
}

SCHED_ROUTE(comfy_queue)
{
	(void)args;
	cscan_start(s, req, tok, CS_QUEUE, NULL, COMFY_SCAN_MAX);
}

SCHED_ROUTE(comfy_prompt_info)
{
	(void)args;
	cscan_start(s, req, tok, CS_REMAINING, NULL, COMFY_SCAN_MAX);
}

SCHED_ROUTE(comfy_interrupt)
{
	cJSON	   *root;
	const char *pid = NULL;
	char	   *body;
	size_t	    len;

	(void)args;
	if ((body = http_body(req, &len)) == NULL) {
		http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	/* No body or not JSON: every running prompt, as ComfyUI. */
	root = cJSON_ParseWithLength(body, len);
	free(body);
	pid = cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(root, "prompt_id"));
	if (pid != NULL && !comfy_pid_ok(pid))
		comfy_reply_empty(req); /* no such prompt: a no-op */
	else
		cscan_start(s, req, tok, CS_INTERRUPT, pid, COMFY_SCAN_MAX);
	cJSON_Delete(root);
}
