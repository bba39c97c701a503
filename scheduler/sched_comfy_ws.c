/*
 * GET /comfy/ws?clientId= (see sched_comfy.h): ComfyUI's WebSocket, with
 * ComfyUI's own events (comfyui-api.md §3) for the client's prompts,
 * wherever they run. The events come from the scheduler's one reader of
 * the events stream (sched_sse.h, sse_subscribe): this file never reads
 * the stream itself.
 *
 * The socket. evhttp parses the upgrade; we check it, take the
 * connection's bufferevent over (no timeouts), answer 101 and let wslay
 * frame the rest, as comfyq-sim's /ws does (sim/ws_server.c): the first
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
 * terminal entry, at most CWS_JOBS_MAX jobs. Translation, per entry:
 *	started		execution_start, execution_cached {nodes: []}
 *	progress	executing {node} when the node changes, progress
 *	succeeded	executing + executed per output node (the outputs
 *			as /comfy/history gives them), execution_success
 *	failed		execution_error (error_code as exception_type)
 *	canceled	execution_interrupted
 * and after a terminal one status to the tenant's sockets, then executing
 * {node: null}: ComfyUI's order. queued sends status. requeued and
 * retrying send nothing (the next started is a new execution_start). A
 * prompt without client_id gets only progress and execution_interrupted,
 * to all the tenant's sockets, as ComfyUI broadcasts those.
 * queue_remaining counts the tenant's prompts this process follows
 * (queued or running since it began to follow them), not a Redis count:
 * GET /comfy/prompt has that.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <wslay/wslay.h>

#include "log.h"
#include "sched.h"
#include "sched_comfy.h"
#include "sched_http.h"
#include "sched_sse.h"
#include "sched_sse_ev.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define CWS_MAX_MSG  (64u << 10) /* what a client may send */
#define CWS_BUCKETS  1024
#define CWS_JOBS_MAX 10000
#define CWS_ID_MAX   128

struct cws {
	char			  sid[CWS_ID_MAX + 1];
	char			  tenant[160];
	struct evhttp_connection *evcon;
	struct bufferevent	 *bev;
	wslay_event_context_ptr	  ctx;
	struct event		 *ev_free;
	int			  depth, dead, abrupt, first;
	TAILQ_ENTRY(cws) link;
};

enum cjob_state { CJ_LOOKING, CJ_KNOWN, CJ_NONE };

struct cjob {
	char		jid[72];
	char		tenant[160];
	char	       *client; /* NULL: no client_id */
	char	       *pid;
	enum cjob_state st;
	char		node[64]; /* the node last announced */
	cJSON	       *pending;  /* entries while CJ_LOOKING */
	struct cjob    *next;
};

static struct {
	struct sched   *s;
	struct sse_sub *sub;
	TAILQ_HEAD(, cws) socks;
	long long    nsocks;
	struct cjob *jobs[CWS_BUCKETS];
	long long    njobs;
} hub = { .socks = TAILQ_HEAD_INITIALIZER(hub.socks) };

static void cws_close(struct cws *);

static struct cjob **
cjob_slot(const char *jid)
{
	unsigned h = 5381;
	const char *p;
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

static void
cws_destroy(struct cws *c)
{
	evutil_socket_t fd;

	if (!c->abrupt) {
		(void)wslay_event_send(c->ctx);
		if ((fd = bufferevent_getfd(c->bev)) != -1) {
			evbuffer_unfreeze(bufferevent_get_output(c->bev), 1);
			(void)evbuffer_write(
			    bufferevent_get_output(c->bev), fd);
		}
	}
	wslay_event_context_free(c->ctx);
	event_free(c->ev_free);
	evhttp_connection_free(c->evcon);
	free(c);
}

static void
cws_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	cws_destroy(arg);
}

/* Off the list at once; freed on the next turn, outside its callbacks. */
static void
cws_close(struct cws *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	TAILQ_REMOVE(&hub.socks, c, link);
	hub.nsocks--;
	bufferevent_disable(c->bev, EV_READ);
	event_active(c->ev_free, EV_TIMEOUT, 1);
}

static void
cws_queue(struct cws *c, const char *text)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)text,
		strlen(text) };

	if (c->dead)
		return;
	if ((long long)evbuffer_get_length(bufferevent_get_output(c->bev)) >
	    hub.s->cfg->sse_buffer_max_bytes) {
		log_warnx("comfy ws %s: the client does not read; dropped",
		    c->sid);
		c->abrupt = 1;
		cws_close(c);
		return;
	}
	if (wslay_event_queue_msg(c->ctx, &m) != 0 ||
	    (c->depth == 0 && wslay_event_send(c->ctx) != 0))
		cws_close(c);
}

/* {"type": type, "data": data}; takes data over. */
static char *
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

static cJSON *
cws_status(const char *tenant)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddNumberToObject(
	    cJSON_AddObjectToObject(cJSON_AddObjectToObject(d, "status"),
		"exec_info"),
	    "queue_remaining", (double)cws_remaining(tenant));
	return (d);
}

static void
cws_status_all(const char *tenant)
{
	struct cws *c, *next;
	char	   *text = cws_frame("status", cws_status(tenant));

	for (c = TAILQ_FIRST(&hub.socks); c != NULL; c = next) {
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
	for (c = TAILQ_FIRST(&hub.socks); c != NULL; c = next) {
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

/* One entry of a known prompt as ComfyUI's events (see the top). */
static void
cws_translate(struct cjob *j, const cJSON *f)
{
	const char *type = cws_f(f, "type"), *v;
	double	    ms = atof(cws_f(f, "_ms") ? cws_f(f, "_ms") : "0");
	cJSON	   *d, *outs, *node;

	if (type == NULL)
		return;
	if (strcmp(type, "started") == 0) {
		j->node[0] = '\0';
		cws_send(j, "execution_start", cws_stamped(ms), 0);
		d = cws_stamped(ms);
		cJSON_AddArrayToObject(d, "nodes");
		cws_send(j, "execution_cached", d, 0);
	} else if (strcmp(type, "progress") == 0) {
		if ((v = cws_f(f, "node")) != NULL && *v != '\0')
			cws_executing(j, v);
		d = cJSON_CreateObject();
		cJSON_AddNumberToObject(d, "value",
		    (double)atoll(cws_f(f, "value") ? cws_f(f, "value") : "0"));
		cJSON_AddNumberToObject(d, "max",
		    (double)atoll(cws_f(f, "max") ? cws_f(f, "max") : "0"));
		if (v != NULL && *v != '\0')
			cJSON_AddStringToObject(d, "node", v);
		else
			cJSON_AddNullToObject(d, "node");
		cws_send(j, "progress", d, 1);
	} else if (strcmp(type, "succeeded") == 0) {
		outs = comfy_outputs(j->jid, cws_f(f, "outputs"));
		cJSON_ArrayForEach(node, outs) {
			cws_executing(j, node->string);
			d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "node", node->string);
			cJSON_AddStringToObject(d, "display_node", node->string);
			cJSON_AddItemToObject(d, "output", cJSON_Duplicate(node, 1));
			cws_send(j, "executed", d, 0);
		}
		cJSON_Delete(outs);
		cws_send(j, "execution_success", cws_stamped(ms), 0);
	} else if (strcmp(type, "failed") == 0 ||
	    strcmp(type, "canceled") == 0) {
		int err = strcmp(type, "failed") == 0;

		d = cws_stamped(ms);
		if (j->node[0] != '\0')
			cJSON_AddStringToObject(d, "node_id", j->node);
		else
			cJSON_AddNullToObject(d, "node_id");
		cJSON_AddNullToObject(d, "node_type");
		cJSON_AddArrayToObject(d, "executed");
		if (err) {
			v = cws_f(f, "error");
			cJSON_AddStringToObject(
			    d, "exception_message", v != NULL ? v : "");
			v = cws_f(f, "error_code");
			cJSON_AddStringToObject(
			    d, "exception_type", v != NULL ? v : "");
			cJSON_AddArrayToObject(d, "traceback");
			cJSON_AddObjectToObject(d, "current_inputs");
			cJSON_AddArrayToObject(d, "current_outputs");
		}
		cws_send(j,
		    err ? "execution_error" : "execution_interrupted", d, !err);
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

	TAILQ_FOREACH(c, &hub.socks, link)
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
	struct cws *c;
	size_t	    i;

	(void)arg;
	hub.sub = NULL;
	while ((c = TAILQ_FIRST(&hub.socks)) != NULL) {
		cws_close(c);
		event_del(c->ev_free);
		cws_destroy(c);
	}
	for (i = 0; i < CWS_BUCKETS; i++)
		while (hub.jobs[i] != NULL)
			cjob_drop(hub.jobs[i]->jid);
}

static ssize_t
cws_recv(
    wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *arg)
{
	struct cws *c = arg;
	int	    n;

	(void)flags;
	n = evbuffer_remove(bufferevent_get_input(c->bev), buf, len);
	if (n <= 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return (-1);
	}
	return (n);
}

static ssize_t
cws_sendcb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct cws *c = arg;

	(void)flags;
	if (evbuffer_add(bufferevent_get_output(c->bev), data, len) == -1) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return (-1);
	}
	return ((ssize_t)len);
}

/* A first JSON message of type feature_flags is answered, as ComfyUI. */
static void
cws_msg(wslay_event_context_ptr ctx,
    const struct wslay_event_on_msg_recv_arg *m, void *arg)
{
	struct cws *c = arg;
	cJSON	   *j, *d;
	char	   *text;

	(void)ctx;
	if (m->opcode != WSLAY_TEXT_FRAME || c->dead ||
	    (j = cJSON_ParseWithLength((const char *)m->msg, m->msg_length)) ==
		NULL)
		return;
	if (c->first &&
	    strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j,
			"type")) != NULL
		    ? cJSON_GetStringValue(
			  cJSON_GetObjectItemCaseSensitive(j, "type"))
		    : "",
		"feature_flags") == 0) {
		d = cJSON_CreateObject();
		cJSON_AddBoolToObject(d, "supports_preview_metadata", 0);
		cJSON_AddNumberToObject(
		    d, "max_upload_size", (double)hub.s->cfg->body_max_bytes);
		text = cws_frame("feature_flags", d);
		cws_queue(c, text);
		cJSON_free(text);
	}
	c->first = 0;
	cJSON_Delete(j);
}

static const struct wslay_event_callbacks cws_callbacks = {
	.recv_callback = cws_recv,
	.send_callback = cws_sendcb,
	.on_msg_recv_callback = cws_msg,
};

static void
cws_read_cb(struct bufferevent *bev, void *arg)
{
	struct cws *c = arg;

	(void)bev;
	if (c->dead)
		return;
	c->depth++;
	if (wslay_event_recv(c->ctx) != 0 || wslay_event_send(c->ctx) != 0 ||
	    !wslay_event_get_read_enabled(c->ctx))
		cws_close(c);
	c->depth--;
}

static void
cws_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct cws *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		c->abrupt = 1;
		cws_close(c);
	}
}

static int
cws_has_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	for (; value != NULL && *value != '\0'; value++)
		if (strncasecmp(value, token, n) == 0)
			return (1);
	return (0);
}

static void
cws_bad(struct evhttp_request *req, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "%s", text);
	http_reply_bytes(req, 400, "text/plain; charset=utf-8", b);
	evbuffer_free(b);
}

SCHED_ROUTE(comfy_ws)
{
	const char *up = http_header(req, "Upgrade");
	const char *key = http_header(req, "Sec-WebSocket-Key");
	const char *ver = http_header(req, "Sec-WebSocket-Version");
	char	    accept[WS_ACCEPT_LEN], uuid[UUID_LEN], *text;
	cJSON	   *d;
	struct cws *c;
	int	    one = 1, k, o;

	(void)args;
	if (s->sse == NULL) {
		http_reply_error(req, 501, "not_implemented",
		    "/comfy/ws needs the events reader, which is off");
		return;
	}
	if (up == NULL || strcasecmp(up, "websocket") != 0 ||
	    !cws_has_token(http_header(req, "Connection"), "upgrade")) {
		cws_bad(req, "No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" "
			     "only to \"WebSocket\".");
		return;
	}
	if (ver == NULL || strcmp(ver, "13") != 0) {
		cws_bad(req, "Unsupported version");
		return;
	}
	if (key == NULL || strlen(key) != 24 ||
	    ws_accept_key(key, accept) == -1) {
		cws_bad(req, "Handshake error");
		return;
	}
	if (hub.nsocks >= s->cfg->sse_max_clients) {
		http_reply_error(req, 503, "unavailable",
		    "too many sockets (sse-max-clients)");
		return;
	}
	c = xcalloc(1, sizeof *c);
	if (http_query(req, "clientId", c->sid, sizeof c->sid) == -1 ||
	    c->sid[0] == '\0') {
		uuid4(uuid);
		for (k = o = 0; uuid[k] != '\0'; k++)
			if (uuid[k] != '-')
				c->sid[o++] = uuid[k];
		c->sid[o] = '\0';
	}
	snprintf(c->tenant, sizeof c->tenant, "%s", comfy_tenant(tok));
	c->first = 1;
	hub.s = s;
	if (hub.sub == NULL)
		hub.sub = sse_subscribe(
		    s->sse, NULL, NULL, cws_on_event, cws_on_gone, NULL);
	c->evcon = evhttp_request_get_connection(req);
	if ((c->ev_free = event_new(s->base, -1, 0, cws_free_cb, c)) == NULL ||
	    wslay_event_context_server_init(&c->ctx, &cws_callbacks, c) != 0)
		fatalx("comfy ws: out of memory");
	wslay_event_config_set_max_recv_msg_length(c->ctx, CWS_MAX_MSG);
	c->bev = evhttp_connection_get_bufferevent(c->evcon);
	bufferevent_setcb(c->bev, cws_read_cb, NULL, cws_event_cb, c);
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	(void)setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY,
	    &one, sizeof one);
	evbuffer_add_printf(bufferevent_get_output(c->bev),
	    "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: upgrade\r\n"
	    "Sec-WebSocket-Accept: %s\r\n\r\n",
	    accept);
	TAILQ_INSERT_HEAD(&hub.socks, c, link); /* the newest takes its id */
	hub.nsocks++;
	log_info("comfy ws %s open (tenant %s)", c->sid, c->tenant);
	d = cws_status(c->tenant);
	cJSON_AddStringToObject(d, "sid", c->sid);
	text = cws_frame("status", d);
	cws_queue(c, text);
	cJSON_free(text);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
		cws_read_cb(c->bev, c);
}
