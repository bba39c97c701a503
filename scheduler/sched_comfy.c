/*
 * POST /comfy/prompt (see sched_comfy.h): ComfyUI's {prompt, client_id,
 * prompt_id?, extra_data?} becomes the raw-graph job {graph, tenant,
 * inputs, meta.comfy} and is checked by the code POST /v1/jobs runs
 * (job_spec_parse, wf_job_new) before comfyq_enqueue writes anything.
 *
 * An upload (sched_comfy_upload.c) reaches the job the way a raw graph
 * names its own inputs (README "Raw graphs"): a LoadImage or
 * LoadImageMask whose image is the name of one of this tenant's uploads
 * ("name" or "subfolder/name", as ComfyUI's /upload/image answers it)
 * gets the bytes as inputs.<node id>, base64; the worker uploads them to
 * its ComfyUI and rewrites the name. A name that is no upload stays as it
 * is and is refused by the raw-graph rules like any file the job did not
 * bring. A spec is at most 1 MiB, so the uploads one prompt uses must fit
 * that, base64 and all.
 *
 * The reply is ComfyUI's: {prompt_id, number, node_errors: {}}, where the
 * prompt id is the client's (then mapped to the job) or the job id. A
 * refused graph answers ComfyUI's 400 (comfyui-api.md §2.1): our
 * validator's message, whose words name the node and input ("node 3
 * (LoadImage) input image: ..."), becomes node_errors[<node>] with the
 * node's class and the value it got, and error.type says which of
 * ComfyUI's cases it is. Unlike ComfyUI, a body that is not JSON is a 400
 * (ComfyUI raises and answers 500 text/plain), and a reused prompt id
 * maps to the new job as ComfyUI overwrites its history entry. Of
 * extra_data only client_id is read (when the top-level one is absent):
 * extra_pnginfo and the rest are not passed on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "confine.h"
#include "graph.h"
#include "inputs.h"
#include "log.h"
#include "rqfn.h"
#include "sched.h"
#include "sched_auth.h"
#include "sched_comfy.h"
#include "sched_http.h"
#include "util.h"
#include "wfjob.h"
#include "xmalloc.h"

#define COMFY_CLIENT_MAX 256
#define COMFY_LOADS_MAX	 64 /* LoadImage nodes looked up in the store */

struct cprompt {
	struct http_wait w;
	struct sched	*s;
	cJSON		*graph;			 /* the client's prompt */
	char		*client_id;		 /* or NULL */
	char		 pid[COMFY_PID_MAX + 1]; /* the client's, or "" */
	char		 tenant[160];
	char		 jid[72];
	char		*nodes[COMFY_LOADS_MAX]; /* LoadImage ids looked up */
	int		 nnodes;
	cJSON		*inputs; /* node id -> base64 */
	long long	 number;
	int		 pending, failed;
};

const char *
comfy_tenant(const struct sched_token *tok)
{
	const char *scope = sched_scope(tok);

	return (scope != NULL ? scope : COMFY_TENANT_DEFAULT);
}

int
comfy_pid_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > COMFY_PID_MAX)
		return (0);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			(c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
			return (0);
	}
	return (1);
}

void
comfy_reply_error(struct evhttp_request *req, int status, const char *type,
    const char *message, const char *details, cJSON *node_errors)
{
	cJSON *o = cJSON_CreateObject(), *e;

	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "type", type);
	cJSON_AddStringToObject(e, "message", message);
	cJSON_AddStringToObject(e, "details", details);
	cJSON_AddObjectToObject(e, "extra_info");
	cJSON_AddItemToObject(o, "node_errors",
	    node_errors != NULL ? node_errors : cJSON_CreateObject());
	http_reply_json(req, status, o);
	cJSON_Delete(o);
}

void
comfy_reply_empty(struct evhttp_request *req)
{
	http_reply_json(req, 200, NULL);
}

static void
cprompt_free(struct cprompt *p)
{
	int i;

	cJSON_Delete(p->graph);
	cJSON_Delete(p->inputs);
	free(p->client_id);
	for (i = 0; i < p->nnodes; i++)
		free(p->nodes[i]);
	free(p);
}

/* The ids of the graph's output nodes, for dependent_outputs. */
static cJSON *
comfy_output_ids(const cJSON *graph)
{
	const struct graph_class *gc;
	const cJSON		 *node;
	const char		 *ct;
	cJSON			 *ids = cJSON_CreateArray();

	cJSON_ArrayForEach(node, graph) {
		if ((ct = graph_node_class(node)) != NULL &&
		    (gc = graph_class_find(ct)) != NULL && gc->output_node)
			cJSON_AddItemToArray(
			    ids, cJSON_CreateString(node->string));
	}
	return (ids);
}

/*
 * Our validator's "node ID[ (CLASS)][ input NAME]: WHY" (or "inputs.ID:
 * WHY", an upload the job carries) as ComfyUI's node_errors entry.
 * Returns 0, or -1 when err names no node.
 */
static int
comfy_node_error(const char *err, const cJSON *graph, cJSON **out, char *id,
    size_t idlen, const char **why)
{
	const cJSON *node, *in, *v;
	const char  *p, *colon, *ct;
	char	     input[128] = "";
	cJSON	    *ne, *errs, *e, *x;
	size_t	     n;

	if ((colon = strstr(err, ": ")) == NULL)
		return (-1);
	*why = colon + 2;
	if (strncmp(err, "inputs.", 7) == 0) {
		snprintf(id, idlen, "%.*s", (int)(colon - err - 7), err + 7);
		snprintf(input, sizeof input, "image");
	} else if (strncmp(err, "node ", 5) == 0) {
		p = err + 5;
		n = strcspn(p, " :");
		snprintf(id, idlen, "%.*s", (int)n, p);
		if ((p = strstr(p, " input ")) != NULL && p < colon)
			snprintf(input, sizeof input, "%.*s",
			    (int)(colon - p - 7), p + 7);
	} else
		return (-1);
	if ((node = cJSON_GetObjectItemCaseSensitive(graph, id)) == NULL)
		return (-1);
	ct = graph_node_class(node);
	in = cJSON_GetObjectItemCaseSensitive(node, "inputs");
	v = *input != '\0' ? cJSON_GetObjectItemCaseSensitive(in, input) : NULL;
	e = cJSON_CreateObject();
	if (*input != '\0' && confine_upload_class(ct) &&
	    strcmp(input, "image") == 0) {
		char d[1200];

		/* ComfyUI's words for a LoadImage file it cannot open. */
		snprintf(d, sizeof d, "image - Invalid image file: %s",
		    cJSON_IsString(v) ? v->valuestring : "?");
		cJSON_AddStringToObject(e, "type", "custom_validation_failed");
		cJSON_AddStringToObject(
		    e, "message", "Custom validation failed for node");
		cJSON_AddStringToObject(e, "details", d);
	} else if (strstr(*why, "link") != NULL) {
		cJSON_AddStringToObject(e, "type", "bad_linked_input");
		cJSON_AddStringToObject(e, "message",
		    "Bad linked input, must be a length-2 list of "
		    "[node_id, slot_index]");
		cJSON_AddStringToObject(e, "details", *why);
	} else {
		cJSON_AddStringToObject(e, "type", "custom_validation_failed");
		cJSON_AddStringToObject(
		    e, "message", "Custom validation failed for node");
		cJSON_AddStringToObject(e, "details", *why);
	}
	x = cJSON_AddObjectToObject(e, "extra_info");
	if (*input != '\0')
		cJSON_AddStringToObject(x, "input_name", input);
	if (v != NULL)
		cJSON_AddItemToObject(x, "received_value",
		    cJSON_IsString(v) && strlen(v->valuestring) > 1024
			? cJSON_CreateString("(an upload)")
			: cJSON_Duplicate(v, 1));
	cJSON_AddStringToObject(x, "reason", err);
	ne = cJSON_CreateObject();
	errs = cJSON_AddArrayToObject(ne, "errors");
	cJSON_AddItemToArray(errs, e);
	cJSON_AddItemToObject(ne, "dependent_outputs", comfy_output_ids(graph));
	cJSON_AddStringToObject(ne, "class_type", ct != NULL ? ct : "");
	*out = ne;
	return (0);
}

/* A spec our rules refuse, as ComfyUI's 400 (see the top). */
static void
comfy_invalid(struct evhttp_request *req, const char *err, const cJSON *graph)
{
	const char *why, *p;
	cJSON	   *ne, *all;
	char	    id[GRAPH_ID_MAX], msg[256], det[GRAPH_ID_MAX + 16];

	if (strncmp(err, "node ", 5) == 0 && (p = strstr(err, ": ")) != NULL &&
	    (strncmp(p + 2, "class ", 6) == 0 ||
		strcmp(p + 2, "no class_type") == 0)) {
		snprintf(id, sizeof id, "%.*s", (int)strcspn(err + 5, " :"),
		    err + 5);
		snprintf(det, sizeof det, "Node ID '#%s'", id);
		if (strncmp(p + 2, "class ", 6) == 0)
			snprintf(msg, sizeof msg,
			    "Cannot execute because node %.*s does not exist.",
			    (int)strcspn(p + 8, " "), p + 8);
		else
			snprintf(msg, sizeof msg,
			    "Cannot execute because a node is missing the "
			    "class_type property.");
		comfy_reply_error(req, 400, "invalid_prompt", msg, det, NULL);
		return;
	}
	if (strncmp(err, "graph: no output node", 21) == 0) {
		comfy_reply_error(req, 400, "prompt_no_outputs",
		    "Prompt has no outputs", "", NULL);
		return;
	}
	if (comfy_node_error(err, graph, &ne, id, sizeof id, &why) == 0) {
		all = cJSON_CreateObject();
		cJSON_AddItemToObject(all, id, ne);
		comfy_reply_error(req, 400, "prompt_outputs_failed_validation",
		    "Prompt outputs failed validation", "", all);
		return;
	}
	comfy_reply_error(req, 400, "invalid_prompt", err, "", NULL);
}

static void
comfy_mapped_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cprompt	      *p = priv;
	struct evhttp_request *req;
	cJSON		      *o;

	(void)ac;
	if (r == NULL || ((redisReply *)r)->type == REDIS_REPLY_ERROR)
		p->failed = 1;
	if (--p->pending > 0)
		return;
	if ((req = http_wait_end(&p->w)) != NULL && p->failed) {
		log_job(LL_WARNING, p->jid,
		    "queued, but its prompt id was not recorded");
		http_reply_redis_down(req);
	} else if (req != NULL) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(
		    o, "prompt_id", *p->pid != '\0' ? p->pid : p->jid);
		cJSON_AddNumberToObject(o, "number", (double)p->number);
		cJSON_AddObjectToObject(o, "node_errors");
		http_reply_json(req, 200, o);
		cJSON_Delete(o);
	}
	cprompt_free(p);
}

/* The prompt id -> job mapping and the tenant's list, pipelined. */
static void
comfy_map(struct cprompt *p)
{
	struct rq_cmd c;
	char	      ttl[32], now[32], keep[32];
	int	      i;

	snprintf(ttl, sizeof ttl, "%d", COMFY_TTL_S);
	snprintf(now, sizeof now, "%lld", clock_wall_ms());
	snprintf(keep, sizeof keep, "%d", -(COMFY_RECENT_MAX + 1));
	for (i = 0; i < 4; i++) {
		switch (i) {
		case 0:
			rq_cmd_init(&c, "SET");
			rq_cmd_addf(&c, "%scomfy:pid:%s:%s", p->s->prefix,
			    p->tenant, *p->pid != '\0' ? p->pid : p->jid);
			rq_cmd_add(&c, p->jid);
			rq_cmd_add(&c, "EX");
			rq_cmd_add(&c, ttl);
			break;
		case 1:
			rq_cmd_init(&c, "ZADD");
			rq_cmd_addf(
			    &c, "%scomfy:jobs:%s", p->s->prefix, p->tenant);
			rq_cmd_add(&c, now);
			rq_cmd_add(&c, p->jid);
			break;
		case 2:
			rq_cmd_init(&c, "ZREMRANGEBYRANK");
			rq_cmd_addf(
			    &c, "%scomfy:jobs:%s", p->s->prefix, p->tenant);
			rq_cmd_add(&c, "0");
			rq_cmd_add(&c, keep);
			break;
		default:
			rq_cmd_init(&c, "EXPIRE");
			rq_cmd_addf(
			    &c, "%scomfy:jobs:%s", p->s->prefix, p->tenant);
			rq_cmd_add(&c, ttl);
		}
		if (rq_async_call(p->s->rc, comfy_mapped_cb, p, &c) == 0)
			p->pending++;
		else
			p->failed = 1;
		rq_cmd_free(&c);
	}
	if (p->pending == 0) {
		http_reply_redis_down(http_wait_end(&p->w));
		cprompt_free(p);
	}
}

static void
comfy_enqueue_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cprompt	   *p = priv;
	struct rqfn_enqueue e;
	char		    err[2048];

	(void)ac;
	if (p->w.req == NULL)
		goto out;
	if (r == NULL) {
		http_reply_redis_down(http_wait_end(&p->w));
		goto out;
	}
	if (rqfn_enqueue_reply(r, &e, err, sizeof err) == -1) {
		if (strncmp(err, "INVALID ", 8) == 0)
			comfy_invalid(http_wait_end(&p->w), err + 8, p->graph);
		else {
			log_warnx("enqueue: %s", err);
			comfy_reply_error(http_wait_end(&p->w), 500,
			    "server_error", err, "", NULL);
		}
		goto out;
	}
	snprintf(p->jid, sizeof p->jid, "%s", e.jid);
	log_job(LL_VERBOSE, p->jid, "submitted as a ComfyUI prompt (%s)",
	    *p->pid != '\0' ? p->pid : "no prompt id");
	comfy_map(p);
	return;
out:
	cprompt_free(p);
}

/* The spec of the job, as POST /v1/jobs would get it; NULL: refused. */
static char *
comfy_spec(struct cprompt *p, struct evhttp_request *req, struct sched *s)
{
	struct job_spec js;
	struct wf_job  *wj;
	const char     *code;
	cJSON	       *spec = cJSON_CreateObject(), *meta, *cm;
	char	       *text, err[2048];
	int		vram;

	cJSON_AddItemToObject(spec, "graph", cJSON_Duplicate(p->graph, 1));
	cJSON_AddStringToObject(spec, "tenant", p->tenant);
	if (cJSON_GetArraySize(p->inputs) > 0)
		cJSON_AddItemToObject(
		    spec, "inputs", cJSON_Duplicate(p->inputs, 1));
	meta = cJSON_AddObjectToObject(spec, "meta");
	cm = cJSON_AddObjectToObject(meta, "comfy");
	if (*p->pid != '\0')
		cJSON_AddStringToObject(cm, "prompt_id", p->pid);
	if (p->client_id != NULL)
		cJSON_AddStringToObject(cm, "client_id", p->client_id);
	cJSON_AddNumberToObject(cm, "number", (double)p->number);
	text = cJSON_PrintUnformatted(spec);
	cJSON_Delete(spec);
	memset(&js, 0, sizeof js);
	if (job_spec_parse(&js, text, strlen(text), NULL, err, sizeof err) ==
	    -1) {
		comfy_invalid(req, err, p->graph);
		goto fail;
	}
	if ((wj = wf_job_new(
		 s->workflows, &js, NULL, &code, err, sizeof err)) == NULL) {
		comfy_invalid(req, err, p->graph);
		goto fail;
	}
	vram = wf_job_expect(wj)->vram_mb;
	wf_job_free(wj);
	if (vram > 0) {
		cJSON_AddNumberToObject(js.root, "vram_mb", vram);
		cJSON_free(text);
		text = cJSON_PrintUnformatted(js.root);
	}
	job_spec_free(&js);
	return (text);
fail:
	job_spec_free(&js);
	cJSON_free(text);
	return (NULL);
}

/* INCR of the number and MGET of the uploads; after both, enqueue. */
static void
comfy_looked_cb(redisAsyncContext *ac, void *r, void *priv)
{
	struct cprompt *p = priv;
	redisReply     *rr = r;
	struct rq_cmd	c;
	char	       *spec, *b;
	size_t		i;

	(void)ac;
	if (rr == NULL || rr->type == REDIS_REPLY_ERROR)
		p->failed = 1;
	else if (rr->type == REDIS_REPLY_INTEGER)
		p->number = rr->integer;
	else if (rr->type == REDIS_REPLY_ARRAY)
		for (i = 0; i < rr->elements && i < (size_t)p->nnodes; i++) {
			if (rr->element[i]->type != REDIS_REPLY_STRING)
				continue;
			b = inputs_base64_encode(
			    (unsigned char *)rr->element[i]->str,
			    rr->element[i]->len);
			cJSON_AddStringToObject(p->inputs, p->nodes[i], b);
			free(b);
		}
	if (--p->pending > 0)
		return;
	if (p->w.req == NULL || p->failed) {
		if (p->w.req != NULL)
			http_reply_redis_down(http_wait_end(&p->w));
		cprompt_free(p);
		return;
	}
	if ((spec = comfy_spec(p, p->w.req, p->s)) == NULL) {
		http_wait_end(&p->w);
		cprompt_free(p);
		return;
	}
	rqfn_enqueue_cmd(&c, p->s->prefix, spec, NULL);
	if (rq_async_call(p->s->rc, comfy_enqueue_cb, p, &c) == -1) {
		http_reply_redis_down(http_wait_end(&p->w));
		cprompt_free(p);
	}
	rq_cmd_free(&c);
	cJSON_free(spec);
}

/* Sends the lookups; -1 when none could go. */
static int
comfy_lookup(struct cprompt *p)
{
	const cJSON  *node, *img;
	struct rq_cmd c;
	char	      why[64];

	rq_cmd_init(&c, "INCR");
	rq_cmd_addf(&c, "%scomfy:number", p->s->prefix);
	p->pending += rq_async_call(p->s->rc, comfy_looked_cb, p, &c) == 0;
	rq_cmd_free(&c);
	rq_cmd_init(&c, "MGET");
	cJSON_ArrayForEach(node, p->graph) {
		img = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(node, "inputs"), "image");
		if (p->nnodes == COMFY_LOADS_MAX ||
		    !confine_upload_class(graph_node_class(node)) ||
		    !cJSON_IsString(img) ||
		    confine_name(img->valuestring, why, sizeof why) == -1)
			continue;
		p->nodes[p->nnodes++] = xstrdup(node->string);
		rq_cmd_addf(&c, "%scomfy:upload:%s:%s", p->s->prefix, p->tenant,
		    img->valuestring);
	}
	if (p->nnodes > 0)
		p->pending +=
		    rq_async_call(p->s->rc, comfy_looked_cb, p, &c) == 0;
	rq_cmd_free(&c);
	return (p->pending == 1 + (p->nnodes > 0) ? 0 : -1);
}

SCHED_ROUTE(comfy_prompt)
{
	struct cprompt *p;
	const cJSON    *g, *v;
	cJSON	       *root;
	char	       *body;
	size_t		len;

	(void)args;
	if ((body = http_body(req, &len)) == NULL) {
		http_reply_error(req, 503, "unavailable", "out of memory");
		return;
	}
	root = cJSON_ParseWithLength(body, len);
	free(body);
	if (!cJSON_IsObject(root)) {
		comfy_reply_error(req, 400, "invalid_prompt",
		    "the body is not one JSON object", "", NULL);
		goto out;
	}
	g = cJSON_GetObjectItemCaseSensitive(root, "prompt");
	if (g == NULL || cJSON_IsNull(g)) {
		comfy_reply_error(req, 400, "no_prompt", "No prompt provided",
		    "No prompt provided", NULL);
		goto out;
	}
	if (!cJSON_IsObject(g)) {
		comfy_reply_error(req, 400, "invalid_prompt",
		    "prompt: must be an object of nodes", "", NULL);
		goto out;
	}
	v = cJSON_GetObjectItemCaseSensitive(root, "prompt_id");
	if (v != NULL && !cJSON_IsNull(v) &&
	    (!cJSON_IsString(v) || !comfy_pid_ok(v->valuestring))) {
		comfy_reply_error(req, 400, "invalid_prompt",
		    "prompt_id: must be 1..64 of [0-9A-Za-z_-] (a uuid)", "",
		    NULL);
		goto out;
	}
	p = xcalloc(1, sizeof *p);
	p->s = s;
	if (cJSON_IsString(v))
		snprintf(p->pid, sizeof p->pid, "%s", v->valuestring);
	v = cJSON_GetObjectItemCaseSensitive(root, "client_id");
	if (!cJSON_IsString(v)) /* where ComfyUI copies it to */
		v = cJSON_GetObjectItemCaseSensitive(
		    cJSON_GetObjectItemCaseSensitive(root, "extra_data"),
		    "client_id");
	if (cJSON_IsString(v) && strlen(v->valuestring) <= COMFY_CLIENT_MAX)
		p->client_id = xstrdup(v->valuestring);
	snprintf(p->tenant, sizeof p->tenant, "%s", comfy_tenant(tok));
	p->graph = cJSON_DetachItemFromObjectCaseSensitive(root, "prompt");
	p->inputs = cJSON_CreateObject();
	http_wait_start(&p->w, req);
	if (comfy_lookup(p) == -1 && p->pending == 0) {
		http_reply_redis_down(http_wait_end(&p->w));
		cprompt_free(p);
	} else if (p->pending < 1 + (p->nnodes > 0))
		p->failed = 1; /* the sent one answers */
out:
	cJSON_Delete(root);
}
