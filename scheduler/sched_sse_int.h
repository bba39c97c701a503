/*
 * What the SSE reader (sched_sse.c) and the clients it serves
 * (sched_sse_client.c) share; nothing outside these two files includes it.
 * The design is in sched_sse.c's header comment.
 */
#ifndef COMFYQ_SCHED_SSE_INT_H
#define COMFYQ_SCHED_SSE_INT_H

#include <sys/queue.h>

#include "sched_sse.h"
#include "sched_sse_ev.h"

#define SSE_BATCH      64   /* entries per catch-up step */
#define SSE_RETRY_MS   1000 /* waiting clients, a failed read */
#define SSE_JID_MAX    64
#define SSE_TENANT_MAX 128

struct evbuffer;
struct evhttp_connection;
struct evhttp_request;
struct rq_async;
struct sched;

enum sse_cstate { SSE_LOOKUP, SSE_CATCHUP, SSE_WAIT, SSE_LIVE };

struct sse_client {
	struct sse		 *sse; /* NULL once forgotten */
	struct evhttp_request	 *req;
	struct evhttp_connection *conn;
	char			  jid[SSE_JID_MAX + 1]; /* "": every job */
	char			  tenant[SSE_TENANT_MAX + 1]; /* "": any */
	int			  has_last;
	struct sse_id		  last; /* Last-Event-ID */
	struct sse_id		  sent; /* the newest id given or skipped */
	enum sse_cstate		  state;
	int			  inflight; /* a Redis call holds it */
	int			  gone;	    /* freed when inflight ends */
	int			  draining; /* catch-up waits for a drain */
	unsigned long long	  gen;	    /* sse->gen at its XRANGE */
	struct sse_ev		 *final;    /* terminal event from the record */
	TAILQ_ENTRY(sse_client) link;
};

struct sse_sub {
	char	   jid[SSE_JID_MAX + 1];       /* "": every job */
	char	   tenant[SSE_TENANT_MAX + 1]; /* "": any */
	sse_sub_fn cb;
	void (*gone)(void *);
	void *arg;
	TAILQ_ENTRY(sse_sub) link;
};

struct sse {
	struct sched	  *s;
	struct rq_async	  *reader;
	int		   reading; /* an XREAD/XREVRANGE in flight */
	int		   inited;  /* head is known */
	struct sse_id	   head;    /* the newest id read */
	struct sse_id	   floor;   /* the ring has every entry after */
	unsigned long long gen;	    /* moves with floor */
	struct sse_ev	 **ring;
	size_t		   cap, n, first;
	TAILQ_HEAD(, sse_client) clients;
	TAILQ_HEAD(, sse_sub) subs;
	long long	 nclients, dropped;
	struct event	*keepalive, *retry;
	struct evbuffer *tmp;
	int		 freeing;
};

/* sched_sse.c */
void sse_count(struct sse *sse);

/* sched_sse_client.c */
int  sse_matches(const struct sse_client *c, const struct sse_ev *ev);
void sse_on_close(struct evhttp_connection *conn, void *arg);
void sse_client_abort(struct sse_client *c);
void sse_client_refuse(
    struct sse_client *c, int status, const char *code, const char *msg);
void sse_client_start(struct sse_client *c);
int  sse_client_write(
     struct sse_client *c, const char *p, size_t len, int capped);
int  sse_client_give(struct sse_client *c, const struct sse_ev *ev, int capped);
void sse_catch_up(struct sse_client *c);
void sse_client_lookup(struct sse_client *c);

#endif
