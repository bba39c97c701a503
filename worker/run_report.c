/*
 * A run's report (run.c has the whole machine): REPORT is the one
 * complete, fail or release call, retried until Redis answers it with a
 * reply rqfn.h decodes (an error reply, or one of no shape the function
 * gives, is retried as a lost connection is); run_end is the way to fail
 * a job, once. A run that held a slot lets its owner claim the next job
 * as soon as the report is sent: both calls leave in one write, and the
 * slot the report frees is the one the claim takes. Should the report
 * fail and be retried, the claim finds the slot still held and the worker
 * waits on the pool's marker, which the retried report's free wakes. Progress events go out from here too, at most one per
 * progress-min-ms, the last one just before complete.
 */
#include <stdarg.h>
#include <stdio.h>

#include <event2/event.h>

#include "log.h"
#include "rqfn.h"
#include "run_int.h"
#include "settings.h"
#include "util.h"

static void run_send_report(struct run *);
static void run_report_reply(redisAsyncContext *, void *, void *);
static void run_progress_send(struct run *);
static void run_progress_reply(redisAsyncContext *, void *, void *);

/*
 * Ends the job with an error code (once; later calls are ignored). A
 * prompt ComfyUI may still be running is interrupted first.
 */
void
run_end(struct run *r, enum errcode code, const char *fmt, ...)
{
	va_list ap;

	if (r->state >= RS_REPORT)
		return;
	run_stop_prompt(r);
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof r->msg, fmt, ap);
	va_end(ap);
	log_job(code == EC_CANCELED ? LL_NOTICE : LL_WARNING, r->jid,
	    "failed: %s: %s", errcode_name(code), r->msg);
	run_begin_report(r, REPORT_FAIL);
}

void
run_begin_report(struct run *r, enum run_report how)
{
	run_cancel_req(r);
	evtimer_del(r->silence);
	evtimer_del(r->wall);
	if (how == REPORT_COMPLETE && r->prog_dirty)
		run_progress_send(r); /* the last value, before complete */
	r->report = how;
	run_set_state(r, RS_REPORT);
	run_send_report(r);
	/* The report frees the slot: the owner's claim for the next job
	 * follows it in the same pipeline (one socket read in Redis). */
	if (r->has_slot)
		r->env->hooks->wants_slot(r->env->ctx);
}

static void
run_send_report(struct run *r)
{
	const struct run_redis *rd = r->env->redis;
	char		       *out, *nodes;
	int			rc;

	switch (r->report) {
	case REPORT_COMPLETE:
		out = cJSON_PrintUnformatted(r->records);
		nodes = run_nodes_all(r, 0);
		rc = rd->complete(r->env->ctx, r->jid, r->fence, out, nodes,
		    run_report_reply, r);
		cJSON_free(nodes);
		cJSON_free(out);
		break;
	case REPORT_RELEASE:
		rc = rd->release(r->env->ctx, r->jid, r->fence,
		    "worker shutting down", run_report_reply, r);
		break;
	case REPORT_FAIL:
	default:
		nodes = run_nodes_all(r, 1);
		rc = rd->fail(r->env->ctx, r->jid, r->fence, r->code, r->msg,
		    errcode_retryable(r->code), nodes, run_report_reply, r);
		cJSON_free(nodes);
		break;
	}
	if (rc == 0)
		r->refs++;
	else
		timer_add_ms(r->retry, RUN_REPORT_RETRY_MS);
}

/*
 * Decodes the reply to the report call: *stale 1 when the lease had been
 * lost, else *what says what fail or release did ("delayed", "failed",
 * "queued", ...; NULL for complete), pointing into rep.
 */
static int
run_report_decode(const struct run *r, const redisReply *rep, int *stale,
    const char **what, char *err, size_t errlen)
{
	struct rqfn_end end;
	int		rc;

	*what = NULL;
	if (r->report == REPORT_COMPLETE)
		return (rqfn_complete_reply(rep, stale, err, errlen));
	if (r->report == REPORT_RELEASE)
		rc = rqfn_release_reply(rep, &end, err, errlen);
	else
		rc = rqfn_fail_reply(rep, &end, err, errlen);
	if (rc == -1)
		return (-1);
	*stale = end.kind == RQFN_END_STALE;
	*what = end.what;
	return (0);
}

static void
run_report_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct run *r = arg;
	redisReply *rep = reply;
	const char *what;
	char	    err[256];
	int	    stale;

	(void)ac;
	if (r->state != RS_REPORT) {
		run_unref(r);
		return;
	}
	if (rep == NULL)
		snprintf(err, sizeof err, "no connection to Redis");
	if (rep == NULL ||
	    run_report_decode(r, rep, &stale, &what, err, sizeof err) == -1) {
		log_job(LL_WARNING, r->jid, "report failed: %s; retrying", err);
		timer_add_ms(r->retry, RUN_REPORT_RETRY_MS);
		run_unref(r);
		return;
	}
	if (stale)
		log_job(LL_WARNING, r->jid,
		    "report was stale: the lease had been lost; nothing was written");
	else if (r->report == REPORT_COMPLETE)
		log_job(LL_NOTICE, r->jid, "succeeded (%d output%s)", r->outs.n,
		    r->outs.n == 1 ? "" : "s");
	else
		log_job(LL_VERBOSE, r->jid, "reported: %s", what);
	run_finish(r);
	run_unref(r);
}

void
run_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)ev;
	if (r->state == RS_REPORT)
		run_send_report(r);
}

/*
 * Progress: at most one call per progress-min-ms, the latest value when the
 * timer fires. value == max is throttled like any other (a graph of many
 * one-step nodes sends little else). A value still pending when the job
 * succeeds goes out just before complete, so the record ends at its last
 * value: one event more per job, not per node.
 */
static void
run_progress_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	struct run *r = arg;
	char	    err[256];
	int	    stale;

	(void)ac;
	/* STALE: the heartbeat drops the run; NULL: the connection went. */
	if (reply != NULL &&
	    rqfn_progress_reply(reply, &stale, err, sizeof err) == -1)
		log_job(LL_WARNING, r->jid, "progress not recorded: %s", err);
	run_unref(r);
}

/* With what ComfyUI did since the previous call (run_nodes.c). */
static void
run_progress_send(struct run *r)
{
	char *nodes = run_nodes_delta(r);

	r->prog_dirty = 0;
	r->prog_sent = clock_mono_ms();
	if (r->env->redis->progress(r->env->ctx, r->jid, r->fence,
		r->prog_value, r->prog_max, r->prog_node, nodes,
		run_progress_reply, r) == 0)
		r->refs++;
	cJSON_free(nodes);
}

void
run_prog_timer_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct run *r = arg;

	(void)fd;
	(void)ev;
	if (r->prog_dirty && r->state < RS_REPORT)
		run_progress_send(r);
}

void
run_progress(struct run *r, const cJSON *data)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, "value");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(data, "max");
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(data, "node");
	long long    wait;

	if (!cJSON_IsNumber(v) || !cJSON_IsNumber(m))
		return;
	r->prog_value = (long long)v->valuedouble;
	r->prog_max = (long long)m->valuedouble;
	snprintf(r->prog_node, sizeof r->prog_node, "%s",
	    cJSON_IsString(n) ? n->valuestring : "");
	r->prog_dirty = 1;
	wait = r->prog_sent + r->env->cfg->progress_min_ms - clock_mono_ms();
	if (wait <= 0)
		run_progress_send(r);
	else if (!evtimer_pending(r->prog_timer, NULL))
		timer_add_ms(r->prog_timer, wait);
}
