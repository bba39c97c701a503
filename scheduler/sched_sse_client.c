/*
 * The SSE clients: their writes, their catch-up from the ring or XRANGE,
 * and a per-job client's first look at its job record. The design is in
 * sched_sse.c's header comment.
 *
 * Lifetimes: evhttp detaches a request from a connection that dies while we
 * stream (req->evcon = NULL) and leaves the request to us; the close
 * callback frees it then. A client with a Redis call in flight is only
 * marked gone; the call's callback frees it. A client is freed only from a
 * Redis callback, a timer, the close callback or its own request handler,
 * never from inside another client's write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "rq.h"
#include "sched.h"
#include "sched_http.h"
#include "sched_sse_int.h"
#include "util.h"
#include "xmalloc.h"

#define SSE_JOB_SLACK_MS 1000 /* created_ms is TIME; XADD ids may lag it */

int
sse_matches(const struct sse_client *c, const struct sse_ev *ev)
{
	if (c->jid[0] != '\0' && strcmp(c->jid, ev->jid) != 0)
		return (0);
	return (strncmp(ev->tenant, c->tenant, strlen(c->tenant)) == 0);
}

static void
sse_client_free(struct sse_client *c)
{
	free(c->final);
	free(c);
}

/* Takes c off the list; frees it unless a Redis call still holds it. */
static void
sse_client_forget(struct sse_client *c)
{
	if (c->sse != NULL) {
		TAILQ_REMOVE(&c->sse->clients, c, link);
		c->sse->nclients--;
		sse_count(c->sse);
		c->sse = NULL;
	}
	if (c->conn != NULL)
		evhttp_connection_set_closecb(c->conn, NULL, NULL);
	c->req = NULL;
	c->conn = NULL;
	if (c->inflight)
		c->gone = 1;
	else
		sse_client_free(c);
}

/* Drops the connection at once (no clean end): the client sees an error
 * and reconnects with Last-Event-ID. */
void
sse_client_abort(struct sse_client *c)
{
	struct evhttp_connection *conn = c->conn;

	sse_client_forget(c);
	evhttp_connection_free(conn); /* frees the request too */
}

static void
sse_client_end(struct sse_client *c)
{
	struct evhttp_request *req = c->req;

	sse_client_forget(c);
	evhttp_send_reply_end(req);
}

/* The close callback of a client's connection. */
void
sse_on_close(struct evhttp_connection *conn, void *arg)
{
	struct sse_client *c = arg;

	(void)conn;
	/* A request detached from its dying connection is ours to free. */
	if (evhttp_request_get_connection(c->req) == NULL)
		evhttp_request_free(c->req);
	c->conn = NULL;
	sse_client_forget(c);
}

static void
sse_on_drained(struct evhttp_connection *conn, void *arg)
{
	struct sse_client *c = arg;

	(void)conn;
	if (c->state == SSE_CATCHUP && c->draining) {
		c->draining = 0;
		sse_catch_up(c);
	}
}

/* Answers before the stream started: a JSON error, and c is gone. */
void
sse_client_refuse(
    struct sse_client *c, int status, const char *code, const char *msg)
{
	struct evhttp_request *req = c->req;

	sse_client_forget(c);
	http_reply_error(req, status, code, msg);
}

/*
 * Writes to c. With capped, a client whose output would pass
 * sse-buffer-max-bytes is dropped instead: returns -1 and c is gone.
 */
int
sse_client_write(struct sse_client *c, const char *p, size_t len, int capped)
{
	struct sse	   *sse = c->sse;
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->conn);
	size_t queued = evbuffer_get_length(bufferevent_get_output(bev));

	if (capped &&
	    queued + len > (size_t)sse->s->cfg->sse_buffer_max_bytes) {
		log_warnx("sse: a client did not read (%zu bytes waiting); "
			  "dropped",
		    queued);
		sse->dropped++;
		sse_count(sse);
		sse_client_abort(c);
		return (-1);
	}
	evbuffer_add(sse->tmp, p, len);
	evhttp_send_reply_chunk_with_cb(c->req, sse->tmp, sse_on_drained, c);
	return (0);
}

/* Gives c one event it matches. Returns -1 when c is gone (dropped, or
 * ended after its job's terminal event). */
int
sse_client_give(struct sse_client *c, const struct sse_ev *ev, int capped)
{
	if (sse_client_write(c, ev->mem, ev->len, capped) == -1)
		return (-1);
	if (c->jid[0] != '\0' && ev->terminal) {
		sse_client_end(c);
		return (-1);
	}
	return (0);
}

void
sse_client_start(struct sse_client *c)
{
	struct evkeyvalq   *h = evhttp_request_get_output_headers(c->req);
	struct bufferevent *bev = evhttp_connection_get_bufferevent(c->conn);

	evhttp_add_header(h, "Content-Type", "text/event-stream");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "X-Accel-Buffering", "no");
	if (c->jid[0] != '\0')
		evhttp_add_header(h, "Connection", "close");
	evhttp_send_reply_start(c->req, 200, "OK");
	/* No read timeout: a stream's client sends nothing. No timeout of
	 * the bufferevent's own either: its write timeout would also run
	 * while there is nothing to write. A write that makes no progress
	 * for request-timeout-s still ends the stream: the connection
	 * guard's (sched_guard.c), which also keeps what the kernel has not
	 * taken in this output, where sse_client_write reads it. */
	bufferevent_set_timeouts(bev, NULL, NULL);
}

static void
sse_client_wait(struct sse_client *c)
{
	c->state = SSE_WAIT;
	if (!evtimer_pending(c->sse->retry, NULL))
		timer_add_ms(c->sse->retry, SSE_RETRY_MS);
}

static void
sse_on_range(redisAsyncContext *ac, void *r, void *priv)
{
	struct sse_client *c = priv;
	redisReply	  *reply = r;
	struct sse_ev	  *ev;
	size_t		   i;
	int		   wrote = 0;

	(void)ac;
	c->inflight = 0;
	if (c->gone) {
		sse_client_free(c);
		return;
	}
	if (reply == NULL) {
		sse_client_wait(c);
		return;
	}
	if (reply->type != REDIS_REPLY_ARRAY) {
		log_warnx("sse: XRANGE: %s",
		    reply->type == REDIS_REPLY_ERROR ? reply->str
						     : "not an array");
		sse_client_abort(c);
		return;
	}
	for (i = 0; i < reply->elements; i++) {
		if ((ev = sse_ev_from_entry(reply->element[i])) == NULL)
			continue;
		if (sse_id_cmp(&ev->id, &c->sent) > 0) {
			c->sent = ev->id;
			if (sse_matches(c, ev)) {
				wrote = 1;
				if (sse_client_give(c, ev, 0) == -1) {
					free(ev);
					return;
				}
			}
		}
		free(ev);
	}
	if (reply->elements < SSE_BATCH && c->sse->inited &&
	    c->gen == c->sse->gen && sse_id_cmp(&c->sent, &c->sse->floor) < 0)
		c->sent = c->sse->floor;
	if (wrote)
		c->draining = 1;
	else
		sse_catch_up(c);
}

/* Index in the ring of the first event after id. */
static size_t
sse_ring_after(const struct sse *sse, const struct sse_id *id)
{
	size_t lo = 0, hi = sse->n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (sse_id_cmp(
			&sse->ring[(sse->first + mid) % sse->cap]->id, id) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (lo);
}

/* One step: a batch from the ring or from XRANGE, or live when none is
 * left. */
void
sse_catch_up(struct sse_client *c)
{
	struct sse    *sse = c->sse;
	struct rq_cmd  cmd;
	struct sse_ev *ev;
	size_t	       i, wrote = 0;

	c->state = SSE_CATCHUP;
	if (!sse->inited) {
		sse_client_wait(c);
		return;
	}
	if (sse_id_cmp(&c->sent, &sse->floor) >= 0) {
		for (i = sse_ring_after(sse, &c->sent);
		     i < sse->n && wrote < SSE_BATCH; i++) {
			ev = sse->ring[(sse->first + i) % sse->cap];
			c->sent = ev->id;
			if (!sse_matches(c, ev))
				continue;
			wrote++;
			if (sse_client_give(c, ev, 0) == -1)
				return;
		}
		if (wrote > 0)
			c->draining = 1;
		else
			c->state = SSE_LIVE;
		return;
	}
	rq_cmd_init(&cmd, "XRANGE");
	rq_cmd_addf(&cmd, "%sevents", sse->s->prefix);
	rq_cmd_addf(&cmd, "(%llu-%llu", c->sent.ms, c->sent.seq);
	rq_cmd_add(&cmd, "+");
	rq_cmd_add(&cmd, "COUNT");
	rq_cmd_addf(&cmd, "%d", SSE_BATCH);
	if (rq_async_call(sse->s->rc, sse_on_range, c, &cmd) == 0) {
		c->inflight = 1;
		c->gen = sse->gen;
	} else
		sse_client_wait(c);
	rq_cmd_free(&cmd);
}

/* The terminal event of a job that had ended when c attached: the stream's
 * entry when it still has it, else the one built from the record. */
static void
sse_on_end_entry(redisAsyncContext *ac, void *r, void *priv)
{
	struct sse_client *c = priv;
	redisReply	  *reply = r;
	struct sse_ev	  *ev = NULL;

	(void)ac;
	c->inflight = 0;
	if (c->gone) {
		sse_client_free(c);
		return;
	}
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 1)
		ev = sse_ev_from_entry(reply->element[0]);
	if (sse_client_give(c, ev != NULL ? ev : c->final, 0) == 0)
		sse_client_end(c);
	free(ev);
}

static const char *const sse_job_fields[] = { "state", "tenant", "end_id",
	"created_ms", "finished_ms", "attempt", "refund", "meta", "error_code",
	"error", "outputs" };
#define SSE_NJOB_FIELDS (sizeof sse_job_fields / sizeof sse_job_fields[0])

static const char *
sse_job_field(const redisReply *r, const char *name)
{
	size_t i;

	for (i = 0; i < SSE_NJOB_FIELDS; i++)
		if (strcmp(sse_job_fields[i], name) == 0)
			return (r->element[i]->type == REDIS_REPLY_STRING
				? r->element[i]->str
				: NULL);
	abort();
}

/* The terminal event as the record holds it (finish() in lua/lib.lua
 * writes the same fields into both). */
static struct sse_ev *
sse_ev_from_record(const char *jid, const redisReply *r, const char *idstr)
{
	static const char *const copy[] = { "state", "tenant", "attempt",
		"refund", "meta", "error_code", "error", "outputs" };
	const char		*kv[4 + 2 * (sizeof copy / sizeof copy[0])];
	size_t			 i, n = 0;

	kv[n++] = "type";
	kv[n++] = sse_job_field(r, "state");
	kv[n++] = "job";
	kv[n++] = jid;
	for (i = 0; i < sizeof copy / sizeof copy[0]; i++) {
		if (sse_job_field(r, copy[i]) == NULL)
			continue;
		kv[n++] = copy[i];
		kv[n++] = sse_job_field(r, copy[i]);
	}
	return (sse_ev_new(idstr, kv, n));
}

static void
sse_on_job(redisAsyncContext *ac, void *r, void *priv)
{
	struct sse_client *c = priv;
	redisReply	  *reply = r;
	const char	  *state, *tenant, *end_id, *created;
	struct sse_id	   end;
	struct rq_cmd	   cmd;
	long long	   ms;
	char		   idbuf[48];

	(void)ac;
	c->inflight = 0;
	if (c->gone) {
		sse_client_free(c);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != SSE_NJOB_FIELDS) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_warnx("job=%s sse: HMGET: %s", c->jid, reply->str);
		sse_client_refuse(c, 503, "unavailable",
		    reply == NULL ? "redis is unreachable"
				  : "the job record cannot be read");
		return;
	}
	state = sse_job_field(reply, "state");
	tenant = sse_job_field(reply, "tenant");
	if (state == NULL ||
	    strncmp(tenant ? tenant : "", c->tenant, strlen(c->tenant)) != 0) {
		sse_client_refuse(c, 404, "not_found", "no such job");
		return;
	}
	if (!sse_is_terminal(state)) {
		created = sse_job_field(reply, "created_ms");
		if (c->has_last)
			c->sent = c->last;
		else if (created != NULL &&
		    parse_ll(created, SSE_JOB_SLACK_MS, 1LL << 53, &ms) == 0)
			c->sent.ms =
			    (unsigned long long)(ms - SSE_JOB_SLACK_MS);
		sse_client_start(c);
		sse_catch_up(c);
		return;
	}
	end_id = sse_job_field(reply, "end_id");
	if (end_id == NULL || sse_id_parse(end_id, &end) == -1) {
		/* A record from before end_id: its end time stands in. */
		created = sse_job_field(reply, "finished_ms");
		snprintf(idbuf, sizeof idbuf, "%s-0", created ? created : "0");
		end_id = idbuf;
		sse_id_parse(end_id, &end);
	}
	if (c->has_last && sse_id_cmp(&c->last, &end) >= 0) {
		struct evhttp_request *req = c->req;

		sse_client_forget(c);
		evhttp_send_reply(req, 204, "No Content", NULL);
		return;
	}
	c->final = sse_ev_from_record(c->jid, reply, end_id);
	sse_client_start(c);
	rq_cmd_init(&cmd, "XRANGE");
	rq_cmd_addf(&cmd, "%sevents", c->sse->s->prefix);
	rq_cmd_add(&cmd, end_id);
	rq_cmd_add(&cmd, end_id);
	if (rq_async_call(c->sse->s->rc, sse_on_end_entry, c, &cmd) == 0)
		c->inflight = 1;
	else if (sse_client_give(c, c->final, 0) == 0)
		sse_client_end(c);
	rq_cmd_free(&cmd);
}

/* A per-job client starts with the job record (sse_on_job). */
void
sse_client_lookup(struct sse_client *c)
{
	struct rq_cmd cmd;
	size_t	      i;

	rq_cmd_init(&cmd, "HMGET");
	rq_cmd_addf(&cmd, "%sjob:%s", c->sse->s->prefix, c->jid);
	for (i = 0; i < SSE_NJOB_FIELDS; i++)
		rq_cmd_add(&cmd, sse_job_fields[i]);
	if (rq_async_call(c->sse->s->rc, sse_on_job, c, &cmd) == 0)
		c->inflight = 1;
	else
		sse_client_refuse(
		    c, 503, "unavailable", "redis is unreachable");
	rq_cmd_free(&cmd);
}
