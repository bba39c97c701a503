/*
 * GET /comfy/ws?clientId= (see sched_comfy.h): ComfyUI's WebSocket, with
 * ComfyUI's own events (comfyui-api.md §3) for the client's prompts,
 * wherever they run. The events come from the scheduler's one reader of
 * the events stream (sched_sse.h, sse_subscribe): this file never reads
 * the stream itself.
 *
 * The socket (sched_comfy_sock.c, the WebSocket server): the first
 * frame is status with the sid; client text is ignored but a first
 * feature_flags, which is answered; a socket whose unread output passes
 * sse-buffer-max-bytes is dropped; at most sse-max-clients sockets. A new
 * socket with a client id in use takes the id over, as in ComfyUI: the
 * newest socket of an id (within the tenant) hears that id's events.
 *
 * The jobs. A stream entry carries job and tenant but not the client id,
 * which is in the job's meta.comfy (sched_comfy.c), so the first entry of
 * a job of a tenant with a socket open costs one HMGET of its meta; the
 * entries that come while it is in flight wait in order, and the answer
 * (a prompt's client and id, or "not a prompt") is kept until the job's
 * terminal entry, at most CWS_JOBS_MAX jobs.
 *
 * Translation. The worker reports what its ComfyUI did (README, Events:
 * `nodes`) on the entries it writes anyway: a progress entry the nodes
 * begun since its previous one (`ran`, the first one also `cached`), the
 * terminal entry all of them and the node the prompt ended `at`. So, per
 * entry:
 *	started		execution_start
 *	progress	execution_cached {nodes: cached} (the attempt's first
 *			entry after started), executing per node in ran,
 *			progress
 *	succeeded	execution_cached if not sent yet; then, walking ran
 *			from the first node not announced yet, executing
 *			each and executed after each output node (the
 *			outputs as /comfy/history gives them; an output
 *			node announced earlier gets its executed first, one
 *			not in ran, a cached one, last); execution_success
 *	failed		the same walk without outputs, execution_error
 *			(node_id: at; executed: ran but at; error_code as
 *			exception_type)
 *	canceled	the same, execution_interrupted
 * and after a terminal one status to the tenant's sockets, then executing
 * {node: null}: ComfyUI's order. The first node not announced is counted
 * from the attempt's progress entries; a job followed from the middle
 * (a socket opened while it ran) announces the node of each progress
 * entry too, and its end goes on after the node last announced.
 * An entry without nodes (written by an older worker) gives executing
 * when the progress node changes, and executing + executed per output
 * node at the end. queued sends status. requeued and
 * retrying send nothing (the next started is a new execution_start). A
 * prompt without client_id gets only progress and execution_interrupted,
 * to all the tenant's sockets, as ComfyUI broadcasts those.
 * queue_remaining counts the tenant's prompts this process follows
 * (queued or running since it began to follow them), not a Redis count:
 * GET /comfy/prompt has that.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rq.h"
#include "sched.h"
#include "sched_comfy.h"
#include "sched_comfy_ws.h"
#include "sched_sse.h"
#include "sched_sse_ev.h"
#include "xmalloc.h"

#define CWS_BUCKETS  1024
#define CWS_JOBS_MAX 10000

enum cjob_state { CJ_LOOKING, CJ_KNOWN, CJ_NONE };

struct cjob {
	char		jid[72];
	char		tenant[160];
	char	       *client; /* NULL: no client_id */
	char	       *pid;
	enum cjob_state st;
	char		node[64];    /* the node last announced */
	int		started;     /* this attempt's started was seen */
	int		cached_sent; /* its execution_cached went out */
	int		nran;	     /* nodes its progress entries gave */
	cJSON	       *pending;     /* entries while CJ_LOOKING */
	struct cjob    *next;
};

static struct {
	struct sched   *s;
	struct sse_sub *sub;
	struct cjob    *jobs[CWS_BUCKETS];
	long long	njobs;
} hub;

static struct cjob **
cjob_slot(const char *jid)
{
	unsigned      h = 5381;
	const char   *p;
	struct cjob **jp;

	for (p = jid; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	for (jp = &hub.jobs[h % CWS_BUCKETS]; *jp != NULL; jp = &(*jp)->next)
		if (strcmp((*jp)->jid, jid) == 0)
			break;
	return (jp);
}

static void
cjob_drop(const char *jid)
{
	struct cjob **jp = cjob_slot(jid), *j = *jp;

	if (j == NULL)
		return;
	*jp = j->next;
	hub.njobs--;
	cJSON_Delete(j->pending);
	free(j->client);
	free(j->pid);
	free(j);
}

/* {"type": type, "data": data}; takes data over. */
char *
cws_frame(const char *type, cJSON *data)
{
	cJSON *o = cJSON_CreateObject();
	char  *text;

	cJSON_AddStringToObject(o, "type", type);
	cJSON_AddItemToObject(o, "data", data);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return (text);
}

/* The tenant's prompts followed and not ended. */
static long long
cws_remaining(const char *tenant)
{
	struct cjob *j;
	long long    n = 0;
	size_t	     i;

	for (i = 0; i < CWS_BUCKETS; i++)
		for (j = hub.jobs[i]; j != NULL; j = j->next)
			n += j->st != CJ_NONE && strcmp(j->tenant, tenant) == 0;
	return (n);
}

cJSON *
cws_status(const char *tenant)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddNumberToObject(
	    cJSON_AddObjectToObject(
		cJSON_AddObjectToObject(d, "status"), "exec_info"),
	    "queue_remaining", (double)cws_remaining(tenant));
	return (d);
}

static void
cws_status_all(const char *tenant)
{
	struct cws *c, *next;
	char	   *text = cws_frame("status", cws_status(tenant));

	for (c = TAILQ_FIRST(&cws_socks); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (strcmp(c->tenant, tenant) == 0)
			cws_queue(c, text);
	}
	cJSON_free(text);
}

/* To the job's client (the newest socket of its id), or, with anyone set
 * and no client id, to all the tenant's sockets. Takes data over. */
static void
cws_send(const struct cjob *j, const char *type, cJSON *data, int anyone)
{
	struct cws *c, *next;
	char	   *text;

	if (j->client == NULL && !anyone) {
		cJSON_Delete(data);
		return;
	}
	cJSON_AddStringToObject(data, "prompt_id", j->pid);
	text = cws_frame(type, data);
	for (c = TAILQ_FIRST(&cws_socks); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (strcmp(c->tenant, j->tenant) != 0 ||
		    (j->client != NULL && strcmp(c->sid, j->client) != 0))
			continue;
		cws_queue(c, text);
		if (j->client != NULL)
			break; /* the newest socket of the id */
	}
	cJSON_free(text);
}

static cJSON *
cws_stamped(double ms)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddNumberToObject(d, "timestamp", ms);
	return (d);
}

static void
cws_executing(struct cjob *j, const char *node)
{
	cJSON *d = cJSON_CreateObject();

	if (node == NULL) {
		cJSON_AddNullToObject(d, "node");
		cws_send(j, "executing", d, 0);
		return;
	}
	if (strcmp(j->node, node) == 0) {
		cJSON_Delete(d);
		return;
	}
	snprintf(j->node, sizeof j->node, "%s", node);
	cJSON_AddStringToObject(d, "node", node);
	cJSON_AddStringToObject(d, "display_node", node);
	cws_send(j, "executing", d, 0);
}

static const char *
cws_f(const cJSON *f, const char *k)
{
	return (cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, k)));
}

/* The worker's node lists of an entry (the top), or NULL without. */
static cJSON *
cws_nodes(const cJSON *f)
{
	const char *t = cws_f(f, "nodes");

	return (t != NULL ? cJSON_Parse(t) : NULL);
}

/* execution_cached, once per attempt, right after execution_start. */
static void
cws_cached(struct cjob *j, const cJSON *nodes, double ms)
{
	cJSON *d;

	if (!j->started || j->cached_sent)
		return;
	j->cached_sent = 1;
	d = cws_stamped(ms);
	cJSON_AddItemToObject(d, "nodes", comfy_cached(nodes));
	cws_send(j, "execution_cached", d, 0);
}

static void
cws_executed(struct cjob *j, cJSON *outs, const char *node)
{
	cJSON *o = cJSON_DetachItemFromObjectCaseSensitive(outs, node), *d;

	if (o == NULL)
		return;
	d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "node", node);
	cJSON_AddStringToObject(d, "display_node", node);
	cJSON_AddItemToObject(d, "output", o);
	cws_send(j, "executed", d, 0);
}

static int
cws_in(const cJSON *list, const char *id)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, list) {
		if (cJSON_IsString(v) && strcmp(v->valuestring, id) == 0)
			return (1);
	}
	return (0);
}

/* Where the terminal walk over ran starts (the top). */
static int
cws_walk_from(const struct cjob *j, const cJSON *ran)
{
	const cJSON *v;
	int	     i = 0, from = 0;

	if (j->started)
		return (j->nran);
	cJSON_ArrayForEach(v, ran) {
		i++;
		if (j->node[0] != '\0' && cJSON_IsString(v) &&
		    strcmp(v->valuestring, j->node) == 0)
			from = i;
	}
	return (from);
}

/* The end of an attempt: executing for what was not announced yet, with
 * executed after the output nodes in outs (NULL for a failure). */
static void
cws_walk(struct cjob *j, const cJSON *nodes, cJSON *outs)
{
	const cJSON *ran = cJSON_GetObjectItemCaseSensitive(nodes, "ran");
	const cJSON *v;
	cJSON	    *rest;
	int	     i = 0, from = cws_walk_from(j, ran), fresh;

	cJSON_ArrayForEach(v, ran) {
		fresh = i++ >= from;
		if (!cJSON_IsString(v))
			continue;
		if (fresh)
			cws_executing(j, v->valuestring);
		if (outs != NULL)
			cws_executed(j, outs, v->valuestring);
	}
	if (outs == NULL)
		return;
	for (rest = outs->child; rest != NULL; rest = outs->child) {
		/* a cached output node: executed alone, as ComfyUI */
		if (!cJSON_HasObjectItem(nodes, "ran") ||
		    !cws_in(cJSON_GetObjectItemCaseSensitive(nodes, "cached"),
			rest->string))
			cws_executing(j, rest->string);
		cws_executed(j, outs, rest->string);
	}
}

static void
cws_progress(struct cjob *j, const cJSON *f, double ms)
{
	const char  *v = cws_f(f, "node");
	cJSON	    *nodes = cws_nodes(f), *d;
	const cJSON *n;

	if (nodes != NULL) {
		cws_cached(j, nodes, ms);
		cJSON_ArrayForEach(
		    n, cJSON_GetObjectItemCaseSensitive(nodes, "ran")) {
			j->nran++;
			if (cJSON_IsString(n))
				cws_executing(j, n->valuestring);
		}
		cJSON_Delete(nodes);
	}
	/* Followed from the middle, or an older worker: the node itself. */
	if ((nodes == NULL || !j->started) && v != NULL && *v != '\0')
		cws_executing(j, v);
	d = cJSON_CreateObject();
	cJSON_AddNumberToObject(d, "value",
	    (double)atoll(cws_f(f, "value") ? cws_f(f, "value") : "0"));
	cJSON_AddNumberToObject(
	    d, "max", (double)atoll(cws_f(f, "max") ? cws_f(f, "max") : "0"));
	if (v != NULL && *v != '\0')
		cJSON_AddStringToObject(d, "node", v);
	else
		cJSON_AddNullToObject(d, "node");
	cws_send(j, "progress", d, 1);
}

/* One entry of a known prompt as ComfyUI's events (see the top). */
static void
cws_translate(struct cjob *j, const cJSON *f)
{
	const char *type = cws_f(f, "type");
	double	    ms = atof(cws_f(f, "_ms") ? cws_f(f, "_ms") : "0");
	cJSON	   *d, *outs, *nodes;
	int	    err;

	if (type == NULL)
		return;
	if (strcmp(type, "started") == 0) {
		j->node[0] = '\0';
		j->started = 1;
		j->cached_sent = 0;
		j->nran = 0;
		cws_send(j, "execution_start", cws_stamped(ms), 0);
	} else if (strcmp(type, "progress") == 0)
		cws_progress(j, f, ms);
	else if (strcmp(type, "succeeded") == 0) {
		nodes = cws_nodes(f);
		cws_cached(j, nodes, ms);
		outs = comfy_outputs(j->jid, cws_f(f, "outputs"));
		cws_walk(j, nodes, outs);
		cJSON_Delete(outs);
		cJSON_Delete(nodes);
		cws_send(j, "execution_success", cws_stamped(ms), 0);
	} else if (strcmp(type, "failed") == 0 ||
	    strcmp(type, "canceled") == 0) {
		err = strcmp(type, "failed") == 0;
		nodes = cws_nodes(f);
		cws_cached(j, nodes, ms);
		cws_walk(j, nodes, NULL);
		d = cws_stamped(ms);
		comfy_end_fields(
		    d, nodes, err, cws_f(f, "error_code"), cws_f(f, "error"));
		cJSON_Delete(nodes);
		cws_send(j, err ? "execution_error" : "execution_interrupted",
		    d, !err);
	}
}

static int
cws_terminal(const cJSON *f)
{
	const char *t = cws_f(f, "type");

	return (t != NULL && sse_is_terminal(t));
}

/* One entry of a job whose lookup has answered; a terminal one ends it:
 * status to the tenant (the job no longer counted), then executing null. */
static void
cws_handle(struct cjob *j, const cJSON *f)
{
	const char *type = cws_f(f, "type");
	char	    jid[72], tenant[160];
	int	    known = j->st == CJ_KNOWN;

	if (known)
		cws_translate(j, f);
	if (!cws_terminal(f)) {
		if (known && type != NULL && strcmp(type, "queued") == 0)
			cws_status_all(j->tenant);
		return;
	}
	snprintf(jid, sizeof jid, "%s", j->jid);
	snprintf(tenant, sizeof tenant, "%s", j->tenant);
	j->st = CJ_NONE;
	if (known) {
		cws_status_all(tenant);
		cws_executing(j, NULL);
	}
	cjob_drop(jid);
}

/* The job's meta: its prompt's client and id, or not a prompt. */
static void
cws_meta_cb(redisAsyncContext *ac, void *r, void *priv)
{
	char	    *jid = priv;
	redisReply  *rr = r;
	struct cjob *j = *cjob_slot(jid);
	const cJSON *cm, *v;
	cJSON	    *meta = NULL, *f, *pending;

	(void)ac;
	if (j == NULL || j->st != CJ_LOOKING)
		goto out;
	if (rr != NULL && rr->type == REDIS_REPLY_STRING)
		meta = cJSON_Parse(rr->str);
	cm = cJSON_GetObjectItemCaseSensitive(meta, "comfy");
	j->st = cJSON_IsObject(cm) ? CJ_KNOWN : CJ_NONE;
	if (j->st == CJ_KNOWN) {
		j->pid = xstrdup(comfy_job_pid(jid, meta));
		v = cJSON_GetObjectItemCaseSensitive(cm, "client_id");
		if (cJSON_IsString(v))
			j->client = xstrdup(v->valuestring);
	}
	cJSON_Delete(meta);
	pending = j->pending;
	j->pending = NULL;
	/* A terminal entry among them frees j: nothing after it is looked
	 * at (it is the job's last). */
	cJSON_ArrayForEach(f, pending) {
		int end = cws_terminal(f);

		cws_handle(j, f);
		if (end)
			break;
	}
	cJSON_Delete(pending);
out:
	free(jid);
}

static int
cws_tenant_open(const char *tenant)
{
	struct cws *c;

	TAILQ_FOREACH(c, &cws_socks, link)
	if (strcmp(c->tenant, tenant) == 0)
		return (1);
	return (0);
}

/* The subscription: every entry the reader reads (sched_sse.h). */
static void
cws_on_event(void *arg, const struct sse_ev *ev, const redisReply *entry)
{
	const redisReply *kv = entry->element[1];
	struct cjob	**jp = cjob_slot(ev->jid), *j;
	struct rq_cmd	  c;
	cJSON		 *f;
	char		  ms[32], *key;
	size_t		  i;

	(void)arg;
	if (*jp == NULL &&
	    (!cws_tenant_open(ev->tenant) || hub.njobs >= CWS_JOBS_MAX ||
		sse_is_terminal(ev->type)))
		return;
	f = cJSON_CreateObject();
	for (i = 0; i + 1 < kv->elements; i += 2)
		cJSON_AddStringToObject(
		    f, kv->element[i]->str, kv->element[i + 1]->str);
	snprintf(ms, sizeof ms, "%llu", ev->id.ms);
	cJSON_AddStringToObject(f, "_ms", ms); /* the entry's time */
	if ((j = *jp) == NULL) {
		j = xcalloc(1, sizeof *j);
		snprintf(j->jid, sizeof j->jid, "%s", ev->jid);
		snprintf(j->tenant, sizeof j->tenant, "%s", ev->tenant);
		j->st = CJ_LOOKING;
		j->pending = cJSON_CreateArray();
		*jp = j;
		hub.njobs++;
		rq_cmd_init(&c, "HGET");
		rq_cmd_addf(&c, "%sjob:%s", hub.s->prefix, ev->jid);
		rq_cmd_add(&c, "meta");
		key = xstrdup(ev->jid);
		if (rq_async_call(hub.s->rc, cws_meta_cb, key, &c) == -1) {
			free(key);
			j->st = CJ_NONE;
		}
		rq_cmd_free(&c);
	}
	if (j->st == CJ_LOOKING)
		cJSON_AddItemToArray(j->pending, f);
	else {
		cws_handle(j, f);
		cJSON_Delete(f);
	}
}

/* sse_free: the reader is going; so are the sockets and the jobs. */
static void
cws_on_gone(void *arg)
{
	size_t i;

	(void)arg;
	hub.sub = NULL;
	cws_close_all();
	for (i = 0; i < CWS_BUCKETS; i++)
		while (hub.jobs[i] != NULL)
			cjob_drop(hub.jobs[i]->jid);
}

void
cws_follow(struct sched *s)
{
	hub.s = s;
	if (hub.sub == NULL)
		hub.sub = sse_subscribe(
		    s->sse, NULL, NULL, cws_on_event, cws_on_gone, NULL);
}
