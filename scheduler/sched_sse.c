/*
 * Server-Sent Events fan-out (see sched_sse.h).
 *
 * The reader. One connection of its own (the commands connection s->rc is
 * never blocked) runs XREAD BLOCK from the newest id it has read; the first
 * id is the stream's newest entry when the reader first comes up (XREVRANGE
 * + - COUNT 1, or 0-0 for an empty stream), so entries written while Redis
 * was unreachable, or while the reader reconnected, are read on reconnect:
 * none is lost or read twice while the stream still holds it. Each entry
 * becomes one frame, `id: <stream id>\nevent: <type>\ndata: <JSON>\n\n`,
 * kept in a ring of the last sse-history frames and written to every live
 * client whose filter matches. Every entry carries `job` and `tenant` (the
 * producer contract), so filtering needs no lookup.
 *
 * A client's cursor (sent) is the newest id it has been given or skipped:
 * it is sent only entries after it, so nothing reaches it twice. The ring
 * holds every entry after `floor` (the newest evicted id, or the reader's
 * first id): a client whose cursor is at or after floor catches up from
 * memory; an older one with XRANGE from its cursor on s->rc, SSE_BATCH
 * entries a call, then from the ring. An XRANGE that came back short covers
 * the stream up to its own execution, which is after floor was read, so
 * when no eviction moved floor meanwhile (gen) the cursor may jump to floor.
 * Catch-up writes a batch, waits for the client to drain it, then goes on;
 * a live client whose output passes sse-buffer-max-bytes is dropped. One
 * read's entries (SSE_READ_COUNT) are written to a client before the loop
 * sends any, so that many of the largest entries (~2.5 KB: a 2048-byte
 * error) must fit under the cap: the default 256 KB holds 64 of them.
 * A client's connection has no read timeout (it sends nothing after its
 * request); a write stuck for request-timeout-s ends it.
 *
 * A per-job client first reads the job record (HMGET: one call): unknown
 * job or another tenant's: 404; terminal: its terminal event (XRANGE end_id
 * end_id, or built from the record once the stream no longer has it), then
 * the end, or 204 when Last-Event-ID is that event already (EventSource
 * stops reconnecting on 204); else it catches up from Last-Event-ID or from
 * SSE_JOB_SLACK_MS before created_ms (the job's queued event onwards) and
 * ends after its terminal event, with Connection: close.
 *
 * Subscriptions in code (sse_subscribe, for /comfy/ws) get the entries as
 * they are read, after the clients, and nothing of the ring.
 *
 * Files: sched_sse_ev.c makes frames, sched_sse_client.c serves one client,
 * this file reads the stream and holds the ring and the client list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "rq.h"
#include "sched.h"
#include "sched_metrics.h"
#include "sched_sse.h"
#include "sched_sse_int.h"
#include "util.h"
#include "xmalloc.h"

#define SSE_READ_BLOCK_MS 5000
#define SSE_READ_COUNT	  64 /* one burst must fit under a client's cap */

static void sse_read(struct sse *);

/* Keeps ev in the ring; the oldest falls out and floor moves past it. */
static void
sse_ring_push(struct sse *sse, struct sse_ev *ev)
{
	struct sse_ev *old;

	if (sse->n == sse->cap) {
		old = sse->ring[sse->first];
		sse->floor = old->id;
		sse->gen++;
		free(old);
		sse->first = (sse->first + 1) % sse->cap;
		sse->n--;
	}
	sse->ring[(sse->first + sse->n) % sse->cap] = ev;
	sse->n++;
}

static void
sse_fan_out(struct sse *sse, const redisReply *entry)
{
	struct sse_client *c, *next;
	struct sse_sub	  *sub, *snext;
	struct sse_ev	  *ev;

	if ((ev = sse_ev_from_entry(entry)) == NULL) {
		struct sse_id id;

		log_warnx("sse: skipped a malformed events entry");
		if (entry->type == REDIS_REPLY_ARRAY && entry->elements == 2 &&
		    entry->element[0]->type == REDIS_REPLY_STRING &&
		    sse_id_parse(entry->element[0]->str, &id) == 0)
			sse->head = id;
		return;
	}
	sse->head = ev->id;
	if (sse->s->metrics != NULL)
		metrics_event(sse->s->metrics, ev->type, ev->jid,
		    (long long)ev->id.ms, ev->attempt);
	for (c = TAILQ_FIRST(&sse->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state != SSE_LIVE || !sse_matches(c, ev) ||
		    sse_id_cmp(&ev->id, &c->sent) <= 0)
			continue;
		c->sent = ev->id;
		sse_client_give(c, ev, 1);
	}
	for (sub = TAILQ_FIRST(&sse->subs); sub != NULL; sub = snext) {
		snext = TAILQ_NEXT(sub, link);
		if ((sub->jid[0] == '\0' || strcmp(sub->jid, ev->jid) == 0) &&
		    strncmp(ev->tenant, sub->tenant, strlen(sub->tenant)) == 0)
			sub->cb(sub->arg, ev, entry);
	}
	sse_ring_push(sse, ev);
}

static void
sse_on_read(redisAsyncContext *ac, void *r, void *priv)
{
	struct sse	 *sse = priv;
	redisReply	 *reply = r;
	const redisReply *entries;
	size_t		  i;

	(void)ac;
	sse->reading = 0;
	if (reply == NULL || sse->freeing)
		return; /* the reader is down: its state callback resumes */
	if (reply->type == REDIS_REPLY_ERROR) {
		log_warnx("sse: XREAD: %s", reply->str);
		timer_add_ms(sse->retry, SSE_RETRY_MS);
		return;
	}
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
	    reply->element[0]->type == REDIS_REPLY_ARRAY &&
	    reply->element[0]->elements == 2 &&
	    reply->element[0]->element[1]->type == REDIS_REPLY_ARRAY) {
		entries = reply->element[0]->element[1];
		for (i = 0; i < entries->elements; i++)
			sse_fan_out(sse, entries->element[i]);
	}
	sse_read(sse);
}

static void
sse_on_head(redisAsyncContext *ac, void *r, void *priv)
{
	struct sse	  *sse = priv;
	redisReply	  *reply = r;
	struct sse_client *c, *next;

	(void)ac;
	sse->reading = 0;
	if (reply == NULL || sse->freeing)
		return;
	if (reply->type != REDIS_REPLY_ARRAY) {
		log_warnx("sse: XREVRANGE: %s",
		    reply->type == REDIS_REPLY_ERROR ? reply->str
						     : "not an array");
		timer_add_ms(sse->retry, SSE_RETRY_MS);
		return;
	}
	if (reply->elements == 1 &&
	    reply->element[0]->type == REDIS_REPLY_ARRAY &&
	    reply->element[0]->elements == 2 &&
	    reply->element[0]->element[0]->type == REDIS_REPLY_STRING)
		sse_id_parse(reply->element[0]->element[0]->str, &sse->head);
	sse->floor = sse->head;
	sse->inited = 1;
	sse->gen++;
	for (c = TAILQ_FIRST(&sse->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state == SSE_WAIT)
			sse_catch_up(c);
	}
	sse_read(sse);
}

static void
sse_read(struct sse *sse)
{
	struct rq_cmd c;
	int	      rc;

	if (sse->reading || !rq_async_up(sse->reader))
		return;
	if (!sse->inited) {
		rq_cmd_init(&c, "XREVRANGE");
		rq_cmd_addf(&c, "%sevents", sse->s->prefix);
		rq_cmd_add(&c, "+");
		rq_cmd_add(&c, "-");
		rq_cmd_add(&c, "COUNT");
		rq_cmd_add(&c, "1");
		rc = rq_async_call(sse->reader, sse_on_head, sse, &c);
	} else {
		rq_cmd_init(&c, "XREAD");
		rq_cmd_add(&c, "BLOCK");
		rq_cmd_addf(&c, "%d", SSE_READ_BLOCK_MS);
		rq_cmd_add(&c, "COUNT");
		rq_cmd_addf(&c, "%d", SSE_READ_COUNT);
		rq_cmd_add(&c, "STREAMS");
		rq_cmd_addf(&c, "%sevents", sse->s->prefix);
		rq_cmd_addf(&c, "%llu-%llu", sse->head.ms, sse->head.seq);
		rc = rq_async_call(sse->reader, sse_on_read, sse, &c);
	}
	rq_cmd_free(&c);
	if (rc == 0)
		sse->reading = 1;
}

static void
sse_on_reader_state(struct rq_async *ra, int up, void *arg)
{
	(void)ra;
	if (up)
		sse_read(arg);
}

/* The retry timer: a failed read, and clients waiting for Redis. */
static void
sse_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct sse	  *sse = arg;
	struct sse_client *c, *next;

	(void)fd;
	(void)what;
	sse_read(sse);
	for (c = TAILQ_FIRST(&sse->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		if (c->state == SSE_WAIT)
			sse_catch_up(c);
	}
}

static void
sse_on_keepalive(evutil_socket_t fd, short what, void *arg)
{
	static const char  ka[] = ": ka\n\n";
	struct sse	  *sse = arg;
	struct sse_client *c, *next;

	(void)fd;
	(void)what;
	for (c = TAILQ_FIRST(&sse->clients); c != NULL; c = next) {
		next = TAILQ_NEXT(c, link);
		/* Capped for live clients only: one catching up holds a
		 * batch it is reading (the write timeout ends a stuck one). */
		if (c->state != SSE_LOOKUP)
			sse_client_write(
			    c, ka, sizeof ka - 1, c->state == SSE_LIVE);
	}
	timer_add_ms(sse->keepalive, sse->s->cfg->sse_keepalive_s * 1000);
}

/* Tells /metrics the client counts; the clients' code calls it too. */
void
sse_count(struct sse *sse)
{
	if (sse->s->metrics != NULL)
		metrics_sse(sse->s->metrics, sse->nclients, sse->dropped);
}

struct sse *
sse_new(struct sched *s, char *err, size_t errlen)
{
	struct sse *sse = xcalloc(1, sizeof *sse);

	sse->s = s;
	TAILQ_INIT(&sse->clients);
	TAILQ_INIT(&sse->subs);
	sse->cap = s->cfg->sse_history > 0 ? (size_t)s->cfg->sse_history : 1;
	sse->ring = xcalloc(sse->cap, sizeof *sse->ring);
	sse->tmp = evbuffer_new();
	sse->retry = evtimer_new(s->base, sse_on_retry, sse);
	sse->keepalive = evtimer_new(s->base, sse_on_keepalive, sse);
	sse->reader = rq_async_new(s->base, s->cfg->redis_url, s->prefix, 0,
	    sse_on_reader_state, sse, err, errlen);
	if (sse->reader == NULL) {
		sse_free(sse);
		return (NULL);
	}
	timer_add_ms(sse->keepalive, s->cfg->sse_keepalive_s * 1000);
	return (sse);
}

void
sse_free(struct sse *sse)
{
	struct sse_client *c;
	struct sse_sub	  *sub;
	size_t		   i;

	if (sse == NULL)
		return;
	sse->freeing = 1;
	while ((c = TAILQ_FIRST(&sse->clients)) != NULL)
		sse_client_abort(c);
	while ((sub = TAILQ_FIRST(&sse->subs)) != NULL) {
		TAILQ_REMOVE(&sse->subs, sub, link);
		if (sub->gone != NULL)
			sub->gone(sub->arg);
		free(sub);
	}
	rq_async_free(sse->reader);
	for (i = 0; i < sse->n; i++)
		free(sse->ring[(sse->first + i) % sse->cap]);
	free(sse->ring);
	event_free(sse->retry);
	event_free(sse->keepalive);
	evbuffer_free(sse->tmp);
	free(sse);
}

void
sse_serve(struct sse *sse, struct evhttp_request *req, const char *jid,
    const char *tenant_prefix, const char *last_id)
{
	struct sse_client *c = xcalloc(1, sizeof *c);

	c->sse = sse;
	c->req = req;
	c->conn = evhttp_request_get_connection(req);
	c->state = SSE_LOOKUP;
	TAILQ_INSERT_TAIL(&sse->clients, c, link);
	sse->nclients++;
	sse_count(sse);
	evhttp_connection_set_closecb(c->conn, sse_on_close, c);
	if (sse->nclients > sse->s->cfg->sse_max_clients) {
		char ra[24];

		snprintf(ra, sizeof ra, "%lld", sse->s->cfg->retry_after_s);
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "Retry-After", ra);
		sse_client_refuse(c, 503, "unavailable",
		    "too many event streams (sse-max-clients)");
		return;
	}
	if (jid != NULL &&
	    snprintf(c->jid, sizeof c->jid, "%s", jid) >= (int)sizeof c->jid) {
		sse_client_refuse(c, 400, "invalid_input", "job id too long");
		return;
	}
	if (tenant_prefix != NULL && strcmp(tenant_prefix, "*") != 0 &&
	    snprintf(c->tenant, sizeof c->tenant, "%s", tenant_prefix) >=
		(int)sizeof c->tenant) {
		sse_client_refuse(c, 400, "invalid_input", "tenant too long");
		return;
	}
	if (last_id != NULL && *last_id != '\0') {
		if (sse_id_parse(last_id, &c->last) == -1) {
			sse_client_refuse(c, 400, "invalid_input",
			    "Last-Event-ID: not a stream id (<ms>-<seq>)");
			return;
		}
		c->has_last = 1;
	}
	if (jid == NULL) {
		sse_client_start(c);
		if (c->has_last) {
			c->sent = c->last;
			sse_catch_up(c);
		} else {
			c->sent = sse->head; /* 0-0 until the reader is up */
			c->state = SSE_LIVE;
		}
		return;
	}
	sse_client_lookup(c);
}

struct sse_sub *
sse_subscribe(struct sse *sse, const char *jid, const char *tenant_prefix,
    sse_sub_fn cb, void (*gone)(void *), void *arg)
{
	struct sse_sub *sub = xcalloc(1, sizeof *sub);

	if (jid != NULL)
		snprintf(sub->jid, sizeof sub->jid, "%s", jid);
	if (tenant_prefix != NULL && strcmp(tenant_prefix, "*") != 0)
		snprintf(sub->tenant, sizeof sub->tenant, "%s", tenant_prefix);
	sub->cb = cb;
	sub->gone = gone;
	sub->arg = arg;
	TAILQ_INSERT_TAIL(&sse->subs, sub, link);
	return (sub);
}

void
sse_unsubscribe(struct sse *sse, struct sse_sub *sub)
{
	if (sub == NULL)
		return;
	TAILQ_REMOVE(&sse->subs, sub, link);
	free(sub);
}
