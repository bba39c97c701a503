/*
 * The webhook delivery engine (see sched_webhook.h). A timer claims due
 * deliveries (lua/webhook.lua webhook_claim) with a lease, at most
 * webhook-concurrency in flight, and POSTs each one's body:
 *
 *   {"type": <state>, "job", "state", "tenant", "attempt", "refund",
 *    "meta", "error_code", "error", "outputs", "finished_ms", "end_id"}
 *
 * (the terminal event's fields, the same for every attempt) with the
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
#include "util.h"
#include "xmalloc.h"

#define WH_POLL_MS	  250	    /* idle claim interval */
#define WH_LEASE_SLACK_MS 1000	    /* lease over the request timeout */
#define WH_MAX_RESP	  (1 << 20) /* longer answers: a transport error */

struct wh_delivery {
	struct webhooks	 *wh; /* NULL: orphaned, its reply frees it */
	struct httpc_req *req;
	char		  jid[72];
	char		 *url;
	char		 *id;
	char		 *body;
	long long	  attempt;
	long long	  finished_ms;
	TAILQ_ENTRY(wh_delivery) entry;
};

TAILQ_HEAD(wh_deliveries, wh_delivery);

struct wh_claim_call {
	struct webhooks *wh; /* NULL: orphaned */
	long long	 batch;
};

struct webhooks {
	struct sched	     *s;
	struct event	     *timer;
	struct wh_claim_call *claim; /* in flight, or NULL */
	struct wh_deliveries  active;
	long long	      inflight;
	int		      more; /* the last claim filled its batch */
	char		      sid[128];
	char		     *secret; /* the text key was made from */
	struct sign_key	      key;
};

static void wh_arm(struct webhooks *, long long);

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

/* A field of the terminal event as JSON: meta and outputs are JSON text. */
static void
wh_body_field(cJSON *o, const char *name, const char *v)
{
	cJSON *j;

	if (strcmp(name, "attempt") == 0)
		cJSON_AddNumberToObject(o, name, atof(v));
	else if (strcmp(name, "refund") == 0)
		cJSON_AddBoolToObject(o, name, strcmp(v, "true") == 0);
	else if ((strcmp(name, "meta") == 0 || strcmp(name, "outputs") == 0) &&
	    (j = cJSON_Parse(v)) != NULL)
		cJSON_AddItemToObject(o, name, j);
	else
		cJSON_AddStringToObject(o, name, v);
}

/* The POST body of a claimed delivery; the caller frees it. */
static char *
wh_body(const struct rqfn_webhook *w)
{
	cJSON	   *o = cJSON_CreateObject();
	const char *state = "";
	char	   *text;
	size_t	    i;

	for (i = 0; i < w->nfields; i++)
		if (strcmp(w->fields[2 * i]->str, "state") == 0)
			state = w->fields[2 * i + 1]->str;
	cJSON_AddStringToObject(o, "type", state);
	cJSON_AddStringToObject(o, "job", w->jid);
	for (i = 0; i < w->nfields; i++)
		wh_body_field(
		    o, w->fields[2 * i]->str, w->fields[2 * i + 1]->str);
	cJSON_AddNumberToObject(o, "finished_ms", (double)w->finished_ms);
	if ((text = cJSON_PrintUnformatted(o)) == NULL)
		fatalx("cJSON_PrintUnformatted: out of memory");
	cJSON_Delete(o);
	return (text);
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
	if (rqfn_webhook_done_reply(reply, &stale, err, sizeof err) == -1)
		log_job(LL_WARNING, d->jid, "webhook_done: %s", err);
	else if (stale)
		log_job(LL_NOTICE, d->jid,
		    "webhook attempt %lld was claimed over; its outcome is "
		    "dropped",
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
		[RQFN_WH_FAILED] = "failed" };
	struct rq_cmd		 c;

	log_job(outcome == RQFN_WH_DELIVERED ? LL_VERBOSE : LL_NOTICE, d->jid,
	    "webhook %s: attempt %lld, status %ld%s%s", names[outcome],
	    d->attempt, status, *error != '\0' ? ", " : "", error);
	rqfn_webhook_done_cmd(&c, wh->s->prefix, &a);
	if (rq_async_call(wh->s->rc, wh_done_reply, d, &c) == -1) {
		/* The lease runs out and the delivery is sent again. */
		log_job(LL_WARNING, d->jid,
		    "webhook_done: Redis is down; the delivery is due again "
		    "when its lease runs out");
		TAILQ_REMOVE(&wh->active, d, entry);
		wh->inflight--;
		wh_delivery_free(d);
	}
	rq_cmd_free(&c);
}

/* Retries after the backoff, or fails once max age is past. */
static void
wh_retry(struct wh_delivery *d, long status, const char *why)
{
	const struct sched_cfg *cfg = d->wh->s->cfg;
	long long		delay, deadline;
	char			msg[1024];

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
	struct wh_delivery *d = arg;
	char		    why[1024];

	d->req = NULL;
	if (resp->fail == HTTPC_OK && resp->status >= 200 && resp->status < 300)
		wh_report(d, RQFN_WH_DELIVERED, resp->status, "", 0);
	else if (resp->fail == HTTPC_OK && resp->status == 410)
		wh_report(d, RQFN_WH_FAILED, 410,
		    "HTTP 410 Gone: the receiver asked to stop", 0);
	else if (resp->fail == HTTPC_BLOCKED) {
		snprintf(why, sizeof why,
		    "%s: a private, loopback or link-local address "
		    "(webhook-allow-private is off)",
		    resp->err);
		wh_report(d, RQFN_WH_FAILED, 0, why, 0);
	} else if (resp->fail == HTTPC_OK) {
		snprintf(why, sizeof why, "HTTP %ld", resp->status);
		wh_retry(d, resp->status, why);
	} else
		wh_retry(d, 0, resp->err);
}

/* Sends one claimed delivery, or ends it when it is long past max age. */
static void
wh_send(struct webhooks *wh, const struct rqfn_webhook *w)
{
	const struct sched_cfg *cfg = wh->s->cfg;
	struct wh_delivery     *d = xcalloc(1, sizeof *d);
	struct httpc_opts	o;
	char		       *sig, hid[128], hts[64], hsig[128];
	const char	       *headers[5];
	long long		now = clock_wall_ms();

	d->wh = wh;
	snprintf(d->jid, sizeof d->jid, "%s", w->jid);
	d->url = xstrdup(w->url);
	d->id = xstrdup(w->id);
	d->attempt = w->attempt;
	d->finished_ms = w->finished_ms;
	d->body = wh_body(w);
	TAILQ_INSERT_TAIL(&wh->active, d, entry);
	wh->inflight++;
	if (now - d->finished_ms >
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
	log_job(
	    LL_DEBUG, d->jid, "webhook attempt %lld to %s", d->attempt, d->url);
	d->req = httpc_post(wh->s->http, d->url, "application/json", d->body,
	    strlen(d->body), &o, wh_http_done, d);
}

static void
wh_claim_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct wh_claim_call	 *call = priv;
	struct webhooks		 *wh = call->wh;
	struct rqfn_webhook_claim w;
	struct rqfn_webhook	  d;
	long long		  batch, wait = WH_POLL_MS;
	char			  err[512];
	size_t			  i;

	(void)ac;
	batch = call->batch;
	free(call);
	if (wh == NULL)
		return;
	wh->claim = NULL;
	if (rqfn_webhook_claim_reply(reply, &w, err, sizeof err) == -1) {
		log_warnx("webhook_claim: %s", err);
		wh_arm(wh, WH_POLL_MS);
		return;
	}
	for (i = 0; i < w.n; i++) {
		rqfn_webhook_delivery(&w, i, &d);
		wh_send(wh, &d);
	}
	wh->more = (long long)w.n >= batch;
	if (w.next_due_ms > 0 && w.next_due_ms - clock_wall_ms() < wait)
		wait = w.next_due_ms - clock_wall_ms();
	wh_arm(wh, wh->more ? 0 : wait);
}

static void
wh_tick(evutil_socket_t fd, short what, void *arg)
{
	struct webhooks	       *wh = arg;
	const struct sched_cfg *cfg = wh->s->cfg;
	struct rq_cmd		c;
	long long		lease, batch;
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
	if (!rq_async_up(wh->s->rc)) {
		wh_arm(wh, WH_POLL_MS);
		return;
	}
	if (batch > 1000)
		batch = 1000;
	lease = cfg->webhook_lease_ms;
	if (lease < cfg->webhook_timeout_ms + WH_LEASE_SLACK_MS)
		lease = cfg->webhook_timeout_ms + WH_LEASE_SLACK_MS;
	rqfn_webhook_claim_cmd(&c, wh->s->prefix, wh->sid, lease, batch);
	wh->claim = xcalloc(1, sizeof *wh->claim);
	wh->claim->wh = wh;
	wh->claim->batch = batch;
	if (rq_async_call(wh->s->rc, wh_claim_reply, wh->claim, &c) == -1) {
		free(wh->claim);
		wh->claim = NULL;
		wh_arm(wh, WH_POLL_MS);
	}
	rq_cmd_free(&c);
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

/* Adds "webhook": {state, attempts, last_status, next_ms, error} from the
 * wh_* fields of an HGETALL reply, when the job has a delivery. */
void
webhooks_describe(const redisReply *h, cJSON *job)
{
	static const char *const names[] = { "wh_attempts", "wh_last_status",
		"wh_next_ms" };
	static const char *const keys[] = { "attempts", "last_status",
		"next_ms" };
	const char		*v[3] = { NULL, NULL, NULL }, *state = NULL;
	const char		*error = NULL;
	cJSON			*o;
	size_t			 i, k;

	if (h == NULL || h->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i + 1 < h->elements; i += 2) {
		const char *f, *val;

		if (h->element[i]->type != REDIS_REPLY_STRING ||
		    h->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		f = h->element[i]->str;
		val = h->element[i + 1]->str;
		if (strcmp(f, "wh_state") == 0)
			state = val;
		else if (strcmp(f, "wh_error") == 0)
			error = val;
		for (k = 0; k < 3; k++)
			if (strcmp(f, names[k]) == 0)
				v[k] = val;
	}
	if (state == NULL)
		return;
	o = cJSON_AddObjectToObject(job, "webhook");
	cJSON_AddStringToObject(o, "state", state);
	for (k = 0; k < 3; k++)
		if (v[k] != NULL)
			cJSON_AddNumberToObject(o, keys[k], atof(v[k]));
		else
			cJSON_AddNullToObject(o, keys[k]);
	if (error != NULL && *error != '\0')
		cJSON_AddStringToObject(o, "error", error);
}
