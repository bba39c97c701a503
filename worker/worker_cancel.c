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
#include <event2/event.h>

#include "log.h"
#include "rqfn.h"
#include "worker_int.h"

static void worker_ctl_message(redisAsyncContext *, void *, void *);

void
worker_rs_state(struct rq_async *ra, int up, void *arg)
{
	struct worker *w = arg;
	struct rq_cmd  c;

	if (!up)
		return; /* rq_async reconnects with backoff */
	rqfn_ctl_subscribe_cmd(&c, w->prefix, w->id);
	if (rq_async_call(ra, worker_ctl_message, w, &c) == -1)
		log_warnx(
		    "ctl: cannot subscribe; cancels wait for the heartbeat");
	rq_cmd_free(&c);
}

/* A message on ctl:<id>: "cancel <jid>" interrupts that job at once. */
static void
worker_ctl_message(redisAsyncContext *ac, void *reply, void *arg)
{
	struct worker  *w = arg;
	struct rqfn_ctl m;
	struct run     *run;
	char		err[256];

	(void)ac;
	if (reply == NULL)
		return; /* disconnected: the state callback subscribes again */
	if (rqfn_ctl_reply(reply, &m, err, sizeof err) == -1) {
		log_warnx("ctl: %s", err);
		return;
	}
	switch (m.kind) {
	case RQFN_CTL_SUBSCRIBED:
		log_info("listening for cancels on %sctl:%s", w->prefix, w->id);
		if (w->nruns > 0) {
			evtimer_del(w->hb_timer);
			worker_heartbeat(-1, 0, w); /* what we missed */
		}
		break;
	case RQFN_CTL_UNKNOWN:
		log_warnx("ctl: unknown message '%.64s'", m.text);
		break;
	case RQFN_CTL_CANCEL:
		if ((run = worker_find_job(w, m.jid)) == NULL) {
			log_debug(
			    "ctl: cancel of %.64s, which does not run here",
			    m.jid);
			break;
		}
		log_job(LL_VERBOSE, run_jid(run), "cancel requested");
		run_cancel(run);
		break;
	}
}
