/*
 * Server-Sent Events: GET /v1/jobs/{id}/events (one job, ends after its
 * terminal event) and GET /v1/events (every job, or a tenant's). One reader
 * per process follows the queue's events stream and fans each entry out to
 * every attached client whose filter matches, so a client never costs a
 * Redis call per event; a client costs at most the calls of its attach
 * (the job record, and the backlog its Last-Event-ID asks for).
 */
#ifndef COMFYQ_SCHED_SSE_H
#define COMFYQ_SCHED_SSE_H

#include <stddef.h>

#include <hiredis/hiredis.h>

struct evhttp_request;
struct sched;
struct sse;
struct sse_ev;
struct sse_sub;

/* Starts the reader (a connection of its own to s->cfg->redis_url). */
struct sse *sse_new(struct sched *s, char *err, size_t errlen);
/* Closes every client's connection and the reader. Call it before
 * s->metrics and the commands connection s->rc are freed. */
void sse_free(struct sse *sse);
/*
 * Takes over req: streams text/event-stream; jid NULL = every job; tenant
 * NULL = any (else the prefix filter; "" and "*" are any too); last_id from
 * Last-Event-ID or NULL. Ends after the terminal event when jid != NULL.
 */
void sse_serve(struct sse *sse, struct evhttp_request *req, const char *jid,
    const char *tenant_prefix, const char *last_id);

/*
 * A subscription in code, for the servers other than SSE (/comfy/ws): cb
 * gets each entry the reader reads live (no catch-up, no resume) whose job
 * is jid (NULL: any) and whose tenant starts with tenant_prefix (NULL: any),
 * as the event (sched_sse_ev.h) and the entry [id, [field, value, ...]],
 * after the SSE clients got it. gone(arg) is called once if sse_free()
 * runs while it is subscribed; the subscription is then over. cb may
 * unsubscribe only its own subscription.
 */
typedef void (*sse_sub_fn)(
    void *arg, const struct sse_ev *ev, const redisReply *entry);
struct sse_sub *sse_subscribe(struct sse *sse, const char *jid,
    const char *tenant_prefix, sse_sub_fn cb, void (*gone)(void *), void *arg);
void		sse_unsubscribe(struct sse *sse, struct sse_sub *sub);

#endif
