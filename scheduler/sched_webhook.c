/*
 * The webhook delivery engine (see sched_webhook.h). A timer claims due
 * deliveries (lua/webhook.lua webhook_claim) with a lease, at most
 * webhook-concurrency in flight, and POSTs each one's body (the terminal
 * event's fields, the same for every attempt: sched_whbody.c) with the
 * Standard Webhooks headers webhook-id (wh_<jid>, stable across
 * attempts), webhook-timestamp (seconds) and webhook-signature. A 2xx
 * answer is delivered; 410 Gone fails the delivery for good at once (the
 * receiver says it is not coming back); a refused address (private,
 * loopback or link-local while webhook-allow-private is off) fails at once;
 * any other status or a transport error is retried after
 * backoff_delay(retry-base, retry-max, attempt - 1) with jitter, unless
 * that retry would fall past webhook-max-age-s after the job finished:
 * then it fails. Retries are due by that deadline; a delivery claimed
 * later than the deadline plus webhook-retry-max-ms (no scheduler ran, or
 * none had a secret, for that long) fails without being sent. Each outcome goes back with webhook_done under the
 * claim's attempt; a late report after the lease was claimed over is
 * STALE and changes nothing.
 *
 * The lease is webhook-lease-ms, raised to webhook-timeout-ms + 1 s when
 * shorter, so a lease does not run out under a request still in time.
 * A scheduler that dies mid-delivery leaves the lease; when it runs out
 * the delivery is due again and any scheduler sends it as the next
 * attempt. Redis calls still in flight at webhooks_free keep their small
 * records (orphaned, freed by their callbacks), as the reply comes later.
 *
 * Progress deliveries (lua/webhook_progress.lua) share the room: each tick
 * claims terminal ones first, then progress ones with what room is left
 * (webhook_progress_claim, webhook-progress-interval-ms apart per job),
 * and sends them the same way, signed, with webhook-id whp_<jid>_<seq>.
 * They are best effort: a 2xx is delivered; 410 or a refused address is
 * gone (no more progress POSTs for that job); another failure is retried
 * after the backoff at most WH_PROG_RETRIES times in a row, then failed
 * (the job's next progress opens a new delivery).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>

#include "backoff.h"
#include "httpc.h"
#include "inputs.h"
#include "log.h"
#include "rqfn.h"
#include "sched.h"
#include "sched_sign.h"
#include "sched_webhook.h"
#include "sched_whbody.h"
#include "util.h"
#include "xmalloc.h"

#define WH_POLL_MS	  250	    /* idle claim interval */
#define WH_LEASE_SLACK_MS 1000	    /* lease over the request timeout */
#define WH_MAX_RESP	  (1 << 20) /* longer answers: a transport error */
#define WH_PROG_RETRIES	  2	    /* a progress delivery's retries */

enum wh_kind { WH_TERMINAL, WH_PROGRESS };

struct wh_delivery {
	struct webhooks	 *wh; /* NULL: orphaned, its reply frees it */
	struct httpc_req *req;
	char		  jid[72];
	char		 *url;
	char		 *id;
	char		 *body;
	enum wh_kind	  kind;
	long long	  attempt; /* progress: the seq */
	long long	  finished_ms;
	long long	  tries; /* progress: failed in a row before this */
	TAILQ_ENTRY(wh_delivery) entry;
};

TAILQ_HEAD(wh_deliveries, wh_delivery);

struct wh_claim_call {
	struct webhooks *wh; /* NULL: orphaned */
	enum wh_kind	 kind;
	long long	 batch;
};

struct webhooks {
	struct sched	     *s;
	struct event	     *timer;
	struct wh_claim_call *claim; /* in flight, or NULL */
	struct wh_deliveries  active;
	long long	      inflight;
	int		      more;	   /* the last claim filled its batch */
	long long	      next_due_ms; /* the terminal claim's, 0: none */
	char		      sid[128];
	char		     *secret; /* the text key was made from */
	struct sign_key	      key;
};

static void wh_arm(struct webhooks *, long long);
static void wh_claim_reply(redisAsyncContext *, void *, void *);

static int
wh_addr_public(const struct sockaddr *sa)
{
	return (!inputs_addr_blocked(sa));
}

/*
 * The signing key for the secret now in the settings (it may change on
 * SIGHUP). Returns 0, or -1 with err when there is none to sign with;
 * *changed says whether the secret differs from the last call's.
 */
static int
wh_key(struct webhooks *wh, int *changed, char *err, size_t errlen)
{
	const char *secret = wh->s->cfg->webhook_secret;

	*changed = wh->secret == NULL || strcmp(wh->secret, secret) != 0;
	if (*changed) {
		free(wh->secret);
		sign_key_free(&wh->key);
		wh->secret = xstrdup(secret);
		if (*secret != '\0' &&
		    sign_key_parse(secret, &wh->key, err, errlen) == -1)
			return (-1);
	}
	if (wh->key.key == NULL) {
		snprintf(err, errlen, "webhook-secret is empty");
		return (-1);
	}
	return (0);
}

static void
wh_delivery_free(struct wh_delivery *d)
{
	free(d->url);
	free(d->id);
	free(d->body);
	free(d);
}

static void
wh_done_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct wh_delivery *d = priv;
	struct webhooks	   *wh = d->wh;
	char		    err[512];
	int		    stale;

	(void)ac;
	if (wh == NULL) {
		wh_delivery_free(d);
		return;
	}
	if ((d->kind == WH_TERMINAL
		    ? rqfn_webhook_done_reply(reply, &stale, err, sizeof err)
		    : rqfn_webhook_progress_done_reply(
			  reply, &stale, err, sizeof err)) == -1)
		log_job(LL_WARNING, d->jid, "%s: %s",
		    d->kind == WH_TERMINAL ? "webhook_done"
					   : "webhook_progress_done",
		    err);
	else if (stale)
		log_job(LL_NOTICE, d->jid,
		    "%s %lld was claimed over; its outcome is dropped",
		    d->kind == WH_TERMINAL ? "webhook attempt"
					   : "progress webhook",
		    d->attempt);
	TAILQ_REMOVE(&wh->active, d, entry);
	wh->inflight--;
	wh_delivery_free(d);
	if (wh->more)
		wh_arm(wh, 0);
	else if (!evtimer_pending(wh->timer, NULL))
		wh_arm(wh, WH_POLL_MS); /* the tick found no room */
}

/* Reports d's outcome; d leaves once the reply came. */
static void
wh_report(struct wh_delivery *d, enum rqfn_wh_outcome outcome, long status,
    const char *error, long long retry_ms)
{
	struct webhooks		     *wh = d->wh;
	struct rqfn_webhook_done_args a = { d->jid, d->attempt, outcome, status,
		error, retry_ms };
	static const char *const names[] = { [RQFN_WH_DELIVERED] = "delivered",
		[RQFN_WH_RETRY] = "retried",
		[RQFN_WH_FAILED] = "failed",
		[RQFN_WH_GONE] = "gone" };
	struct rq_cmd		 c;
	int			 lvl;

	if (d->kind == WH_TERMINAL) {
		lvl = outcome == RQFN_WH_DELIVERED ? LL_VERBOSE : LL_NOTICE;
		rqfn_webhook_done_cmd(&c, wh->s->prefix, &a);
	} else {
		lvl = outcome == RQFN_WH_DELIVERED ? LL_DEBUG : LL_VERBOSE;
		rqfn_webhook_progress_done_cmd(&c, wh->s->prefix, &a);
	}
	log_job(lvl, d->jid, "%s %s: %s %lld, status %ld%s%s",
	    d->kind == WH_TERMINAL ? "webhook" : "progress webhook",
	    names[outcome], d->kind == WH_TERMINAL ? "attempt" : "seq",
	    d->attempt, status, *error != '\0' ? ", " : "", error);
	if (rq_async_call(wh->s->rc, wh_done_reply, d, &c) == -1) {
		/* The lease runs out and the delivery is sent again. */
		log_job(LL_WARNING, d->jid,
		    "webhook report: Redis is down; the delivery is due again "
		    "when its lease runs out");
		TAILQ_REMOVE(&wh->active, d, entry);
		wh->inflight--;
		wh_delivery_free(d);
	}
	rq_cmd_free(&c);
}

/* Retries after the backoff, or fails once max age is past (a progress
 * delivery: once it failed WH_PROG_RETRIES + 1 times in a row). */
static void
wh_retry(struct wh_delivery *d, long status, const char *why)
{
	const struct sched_cfg *cfg = d->wh->s->cfg;
	long long		delay, deadline;
	char			msg[1024];

	if (d->kind == WH_PROGRESS) {
		delay = backoff_delay(cfg->webhook_retry_base_ms,
		    cfg->webhook_retry_max_ms, (int)d->tries, rand_unit());
		if (d->tries < WH_PROG_RETRIES) {
			wh_report(d, RQFN_WH_RETRY, status, why, delay);
			return;
		}
		snprintf(msg, sizeof msg,
		    "gave up after %lld attempts in a row: %s", d->tries + 1,
		    why);
		wh_report(d, RQFN_WH_FAILED, status, msg, 0);
		return;
	}
	delay = backoff_delay(cfg->webhook_retry_base_ms,
	    cfg->webhook_retry_max_ms, (int)(d->attempt - 1), rand_unit());
	deadline = d->finished_ms + cfg->webhook_max_age_s * 1000;
	if (clock_wall_ms() + delay > deadline) {
		snprintf(msg, sizeof msg,
		    "gave up after %lld attempts, %lld s after the job ended "
		    "(webhook-max-age-s): %s",
		    d->attempt, cfg->webhook_max_age_s, why);
		wh_report(d, RQFN_WH_FAILED, status, msg, 0);
	} else
		wh_report(d, RQFN_WH_RETRY, status, why, delay);
}

static void
wh_http_done(const struct httpc_resp *resp, void *arg)
{
	struct wh_delivery  *d = arg;
	enum rqfn_wh_outcome stop =
	    d->kind == WH_TERMINAL ? RQFN_WH_FAILED : RQFN_WH_GONE;
	char why[1024];

	d->req = NULL;
	if (resp->fail == HTTPC_OK && resp->status >= 200 && resp->status < 300)
		wh_report(d, RQFN_WH_DELIVERED, resp->status, "", 0);
	else if (resp->fail == HTTPC_OK && resp->status == 410)
		wh_report(d, stop, 410,
		    "HTTP 410 Gone: the receiver asked to stop", 0);
	else if (resp->fail == HTTPC_BLOCKED) {
		snprintf(why, sizeof why,
		    "%s: a private, loopback or link-local address "
		    "(webhook-allow-private is off)",
		    resp->err);
		wh_report(d, stop, 0, why, 0);
	} else if (resp->fail == HTTPC_OK) {
		snprintf(why, sizeof why, "HTTP %ld", resp->status);
		wh_retry(d, resp->status, why);
	} else
		wh_retry(d, 0, resp->err);
}

static struct wh_delivery *
wh_delivery_new(struct webhooks *wh, enum wh_kind kind, const char *jid,
    const char *url, const char *id, long long attempt)
{
	struct wh_delivery *d = xcalloc(1, sizeof *d);

	d->wh = wh;
	d->kind = kind;
	snprintf(d->jid, sizeof d->jid, "%s", jid);
	d->url = xstrdup(url);
	d->id = xstrdup(id);
	d->attempt = attempt;
	return (d);
}

/* Sends one claimed delivery (d, now the engine's), or ends a terminal
 * one when it is long past max age. */
static void
wh_send(struct webhooks *wh, struct wh_delivery *d)
{
	const struct sched_cfg *cfg = wh->s->cfg;
	struct httpc_opts	o;
	char		       *sig, hid[128], hts[64], hsig[128];
	const char	       *headers[5];
	long long		now = clock_wall_ms();

	TAILQ_INSERT_TAIL(&wh->active, d, entry);
	wh->inflight++;
	if (d->kind == WH_TERMINAL &&
	    now - d->finished_ms >
		cfg->webhook_max_age_s * 1000 + cfg->webhook_retry_max_ms) {
		wh_report(d, RQFN_WH_FAILED, 0,
		    "gave up unsent: the job ended more than webhook-max-age-s "
		    "ago",
		    0);
		return;
	}
	sig =
	    sign_webhook(&wh->key, d->id, now / 1000, d->body, strlen(d->body));
	snprintf(hid, sizeof hid, "webhook-id: %s", d->id);
	snprintf(hts, sizeof hts, "webhook-timestamp: %lld", now / 1000);
	snprintf(hsig, sizeof hsig, "webhook-signature: %s", sig);
	free(sig);
	headers[0] = hid;
	headers[1] = hts;
	headers[2] = hsig;
	headers[3] = "User-Agent: comfyq-scheduler/" COMFYQ_VERSION;
	headers[4] = NULL;
	memset(&o, 0, sizeof o);
	o.timeout_ms = cfg->webhook_timeout_ms;
	o.connect_timeout_ms =
	    cfg->webhook_timeout_ms < 5000 ? cfg->webhook_timeout_ms : 5000;
	o.max_resp = WH_MAX_RESP;
	o.headers = headers;
	o.addr_ok = cfg->webhook_allow_private ? NULL : wh_addr_public;
	log_job(LL_DEBUG, d->jid, "%s %lld to %s",
	    d->kind == WH_TERMINAL ? "webhook attempt" : "progress webhook",
	    d->attempt, d->url);
	d->req = httpc_post(wh->s->http, d->url, "application/json", d->body,
	    strlen(d->body), &o, wh_http_done, d);
}

/* Starts a claim of kind for up to batch deliveries; -1 when Redis
 * would not take the call. */
static int
wh_claim_start(struct webhooks *wh, enum wh_kind kind, long long batch)
{
	const struct sched_cfg *cfg = wh->s->cfg;
	struct rq_cmd		c;
	long long		lease;
	int			rc;

	if (batch > 1000)
		batch = 1000;
	lease = cfg->webhook_lease_ms;
	if (lease < cfg->webhook_timeout_ms + WH_LEASE_SLACK_MS)
		lease = cfg->webhook_timeout_ms + WH_LEASE_SLACK_MS;
	if (kind == WH_TERMINAL)
		rqfn_webhook_claim_cmd(
		    &c, wh->s->prefix, wh->sid, lease, batch);
	else
		rqfn_webhook_progress_claim_cmd(&c, wh->s->prefix, wh->sid,
		    lease, batch, cfg->webhook_progress_interval_ms);
	wh->claim = xcalloc(1, sizeof *wh->claim);
	wh->claim->wh = wh;
	wh->claim->kind = kind;
	wh->claim->batch = batch;
	if ((rc = rq_async_call(wh->s->rc, wh_claim_reply, wh->claim, &c)) ==
	    -1) {
		free(wh->claim);
		wh->claim = NULL;
	}
	rq_cmd_free(&c);
	return (rc);
}

/* Sends what a claim of kind gave; returns how many. */
static size_t
wh_claimed(
    struct webhooks *wh, enum wh_kind kind, const struct rqfn_webhook_claim *w)
{
	struct wh_delivery *d;
	struct rqfn_webhook t;
	struct rqfn_whprog  p;
	size_t		    i;

	for (i = 0; i < w->n; i++) {
		if (kind == WH_TERMINAL) {
			rqfn_webhook_delivery(w, i, &t);
			d = wh_delivery_new(
			    wh, kind, t.jid, t.url, t.id, t.attempt);
			d->finished_ms = t.finished_ms;
			d->body = whbody_terminal(&t);
		} else {
			rqfn_webhook_progress(w, i, &p);
			d = wh_delivery_new(
			    wh, kind, p.jid, p.url, p.id, p.seq);
			d->tries = p.tries;
			d->body = whbody_progress(&p);
		}
		wh_send(wh, d);
	}
	return (w->n);
}

/*
 * A terminal claim's reply goes on to a progress claim with the room
 * left; a progress claim's reply arms the next tick: at once when either
 * filled its batch, else when the earlier of the two next due times comes
 * (WH_POLL_MS at most).
 */
static void
wh_claim_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct wh_claim_call	 *call = priv;
	struct webhooks		 *wh = call->wh;
	struct rqfn_webhook_claim w;
	enum wh_kind		  kind = call->kind;
	long long		  batch = call->batch, wait = WH_POLL_MS, due;
	long long		  room;
	char			  err[512];
	int			  rc;

	(void)ac;
	free(call);
	if (wh == NULL)
		return;
	wh->claim = NULL;
	rc = kind == WH_TERMINAL
	    ? rqfn_webhook_claim_reply(reply, &w, err, sizeof err)
	    : rqfn_webhook_progress_claim_reply(reply, &w, err, sizeof err);
	if (rc == -1) {
		log_warnx("%s: %s",
		    kind == WH_TERMINAL ? "webhook_claim"
					: "webhook_progress_claim",
		    err);
		wh_arm(wh, WH_POLL_MS);
		return;
	}
	if (kind == WH_TERMINAL) {
		wh->more = (long long)wh_claimed(wh, kind, &w) >= batch;
		wh->next_due_ms = w.next_due_ms;
		room = wh->s->cfg->webhook_concurrency - wh->inflight;
		if (room > 0 && wh_claim_start(wh, WH_PROGRESS, room) == 0)
			return;
	} else if ((long long)wh_claimed(wh, kind, &w) >= batch)
		wh->more = 1;
	due = wh->next_due_ms;
	if (kind == WH_PROGRESS && w.next_due_ms > 0 &&
	    (due == 0 || w.next_due_ms < due))
		due = w.next_due_ms;
	if (due > 0 && due - clock_wall_ms() < wait)
		wait = due - clock_wall_ms();
	wh_arm(wh, wh->more ? 0 : wait);
}

static void
wh_tick(evutil_socket_t fd, short what, void *arg)
{
	struct webhooks	       *wh = arg;
	const struct sched_cfg *cfg = wh->s->cfg;
	long long		batch;
	char			err[256];
	int			changed;

	(void)fd;
	(void)what;
	batch = cfg->webhook_concurrency - wh->inflight;
	if (wh->claim != NULL || batch <= 0)
		return; /* a reply re-arms */
	if (wh_key(wh, &changed, err, sizeof err) == -1) {
		if (changed)
			log_warnx("%s: webhook deliveries wait", err);
		wh_arm(wh, WH_POLL_MS);
		return;
	}
	if (!rq_async_up(wh->s->rc) ||
	    wh_claim_start(wh, WH_TERMINAL, batch) == -1)
		wh_arm(wh, WH_POLL_MS);
}

static void
wh_arm(struct webhooks *wh, long long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(wh->timer, &tv);
}

/*
 * Starts delivering on s's loop (s->rc, s->http, s->cfg). A bad
 * webhook-secret is an error; an empty one is not: deliveries wait until
 * a reload sets one.
 */
struct webhooks *
webhooks_new(struct sched *s, char *err, size_t errlen)
{
	struct webhooks *wh;
	char		 host[64], *p;
	int		 changed;

	wh = xcalloc(1, sizeof *wh);
	wh->s = s;
	TAILQ_INIT(&wh->active);
	if (wh_key(wh, &changed, err, errlen) == -1) {
		if (*s->cfg->webhook_secret != '\0') {
			free(wh->secret);
			free(wh);
			return (NULL);
		}
		log_warnx("%s: webhook deliveries wait until it is set", err);
	}
	if (gethostname(host, sizeof host) == -1)
		snprintf(host, sizeof host, "scheduler");
	host[sizeof host - 1] = '\0';
	snprintf(wh->sid, sizeof wh->sid, "%s:%ld:%08lx", host, (long)getpid(),
	    (unsigned long)(rand_unit() * 4294967295.0));
	for (p = wh->sid; *p != '\0'; p++)
		if (!isalnum((unsigned char)*p) && strchr("._:-@/", *p) == NULL)
			*p = '_'; /* webhook_claim's id alphabet */
	wh->timer = evtimer_new(s->base, wh_tick, wh);
	wh_arm(wh, 0);
	return (wh);
}

/*
 * Stops: requests in flight are canceled (their leases run out and
 * another scheduler, or this one restarted, sends them again).
 */
void
webhooks_free(struct webhooks *wh)
{
	struct wh_delivery *d;

	if (wh == NULL)
		return;
	event_free(wh->timer);
	if (wh->claim != NULL)
		wh->claim->wh = NULL;
	while ((d = TAILQ_FIRST(&wh->active)) != NULL) {
		TAILQ_REMOVE(&wh->active, d, entry);
		if (d->req != NULL) {
			httpc_cancel(d->req);
			wh_delivery_free(d);
		} else
			d->wh = NULL; /* a webhook_done reply is due */
	}
	free(wh->secret);
	sign_key_free(&wh->key);
	free(wh);
}
