/*
 * Cancels at once (see worker.h).
 *
 * Cancels: a third connection is subscribed to <prefix>ctl:<worker id>;
 * comfyq_cancel of a job we run publishes "cancel <jid>" there, and the
 * run is interrupted at once. rq_async reconnects with backoff; each time
 * it is up the channel is subscribed again, and a heartbeat is sent so a
 * cancel published while it was down is heard then, not a period later.
 * The heartbeat's cancel list stays the fallback.
 */
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "worker_int.h"

static void worker_ctl_message(redisAsyncContext *, void *, void *);

void
worker_rs_state(struct rq_async *ra, int up, void *arg)
{
	struct worker *w = arg;
	struct rq_cmd  c;

	if (!up)
		return; /* rq_async reconnects with backoff */
	rq_cmd_init(&c, "SUBSCRIBE");
	rq_cmd_addf(&c, "%sctl:%s", w->prefix, w->id);
	if (rq_async_call(ra, worker_ctl_message, w, &c) == -1)
		log_warnx("ctl: cannot subscribe; cancels wait for the "
			  "heartbeat");
	rq_cmd_free(&c);
}

/* A message on ctl:<id>: "cancel <jid>" interrupts that job at once. */
static void
worker_ctl_message(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker *w = arg;
	redisReply    *r = reply;
	const char    *kind, *msg;
	struct run    *run;

	(void)ac;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING)
		return; /* disconnected: the state callback subscribes again */
	kind = r->element[0]->str;
	if (strcmp(kind, "subscribe") == 0) {
		log_info("listening for cancels on %sctl:%s", w->prefix, w->id);
		if (w->nruns > 0) {
			evtimer_del(w->hb_timer);
			worker_heartbeat(-1, 0, w); /* what we missed */
		}
		return;
	}
	if (strcmp(kind, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return;
	msg = r->element[2]->str;
	if (strncmp(msg, "cancel ", 7) != 0) {
		log_warnx("ctl: unknown message '%.64s'", msg);
		return;
	}
	if ((run = worker_find_job(w, msg + 7)) == NULL) {
		log_debug(
		    "ctl: cancel of %.64s, which does not run here", msg + 7);
		return;
	}
	log_job(LL_VERBOSE, run_jid(run), "cancel requested");
	run_cancel(run);
}
