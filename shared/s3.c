/*
 * S3 uploads over httpc (see s3.h).
 *
 * An upload is a small machine: PUT, or CREATE -> PART x n -> COMPLETE,
 * with ABORT after a failure or a cancel once CREATE has given an upload
 * id. One request is in flight at a time; a retry waits on the upload's
 * timer. The caller's callback runs once, when the object is stored or
 * the upload has failed for good; an upload that still has to abort
 * stays on the client's list until its abort has answered (or the client
 * is freed), without the caller.
 *
 * Queries are written in canonical form (sorted, encoded, "uploads="),
 * since libcurl 7.88 signs the query as it finds it in the URL.
 * CompleteMultipartUpload may answer 200 with an <Error> body; that is a
 * failure, retried as a 5xx is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "backoff.h"
#include "httpc.h"
#include "log.h"
#include "s3.h"
#include "util.h"
#include "xmalloc.h"

#define S3_RETRY_BASE_MS 500
#define S3_RETRY_MAX_MS	 8000
#define S3_MAX_RESP	 (1u << 20)

enum s3_step { S3_PUT, S3_CREATE, S3_PART, S3_COMPLETE, S3_ABORT };

static const char *const s3_step_names[] = {
	[S3_PUT] = "PutObject",
	[S3_CREATE] = "CreateMultipartUpload",
	[S3_PART] = "UploadPart",
	[S3_COMPLETE] = "CompleteMultipartUpload",
	[S3_ABORT] = "AbortMultipartUpload",
};

struct s3_up {
	struct s3	 *s3;
	char		 *key;
	char		 *ctype;
	int		  fd;
	size_t		  len;
	enum s3_step	  step;
	char		 *upload_id;
	char		**etags;
	int		  nparts; /* 0: one PUT */
	int		  part;	  /* the part being sent, from 0 */
	int		  tries;  /* of the request now */
	int		  requests;
	long long	  started_ms;
	struct httpc_req *req;
	struct event	 *timer;
	s3_cb		  cb; /* NULL once the caller is told or gone */
	void		 *arg;
	char		  err[1024];
	TAILQ_ENTRY(s3_up) entry;
};

TAILQ_HEAD(s3_ups, s3_up);

struct s3 {
	struct event_base *base;
	struct httpc	  *h;
	struct s3_target   t;
	struct s3_opts	   o;
	char		   sigv4[96];
	struct s3_ups	   ups;
	int		   n;
};

static void s3_send(struct s3_up *);
static void s3_reply_cb(const struct httpc_resp *, void *);

struct s3 *
s3_new(struct event_base *base, struct httpc *h, const struct s3_target *t,
    const struct s3_opts *o)
{
	struct s3 *s = xcalloc(1, sizeof *s);

	s->base = base;
	s->h = h;
	s->t = *t;
	s->o = *o;
	if (s->o.retry_base_ms <= 0)
		s->o.retry_base_ms = S3_RETRY_BASE_MS;
	if (s->o.part_bytes < S3_PART_MIN)
		s->o.part_bytes = S3_PART_MIN;
	snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", t->region);
	TAILQ_INIT(&s->ups);
	return (s);
}

const struct s3_target *
s3_target(const struct s3 *s)
{
	return (&s->t);
}

int
s3_pending(const struct s3 *s)
{
	return (s->n);
}

static void
s3_up_free(struct s3_up *up)
{
	int i;

	httpc_cancel(up->req);
	event_free(up->timer);
	TAILQ_REMOVE(&up->s3->ups, up, entry);
	up->s3->n--;
	for (i = 0; up->etags != NULL && i < up->nparts; i++)
		free(up->etags[i]);
	free(up->etags);
	free(up->upload_id);
	free(up->key);
	free(up->ctype);
	free(up);
}

/* Cancels every upload without calling back (no abort is sent). */
void
s3_free(struct s3 *s)
{
	if (s == NULL)
		return;
	while (!TAILQ_EMPTY(&s->ups))
		s3_up_free(TAILQ_FIRST(&s->ups));
	explicit_bzero(&s->t, sizeof s->t);
	free(s);
}

/*
 * The text of the first <tag> element of an XML body, entities undone,
 * into out; -1 when there is none.
 */
static int
s3_xml_text(const char *body, const char *tag, char *out, size_t len)
{
	static const struct {
		const char *ent;
		char	    c;
	} ents[] = { { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' } };
	char	    open[64], close[64];
	const char *a, *b;
	size_t	    o = 0, i;

	snprintf(open, sizeof open, "<%s>", tag);
	snprintf(close, sizeof close, "</%s>", tag);
	if ((a = strstr(body, open)) == NULL ||
	    (b = strstr(a += strlen(open), close)) == NULL)
		return (-1);
	while (a < b && o + 1 < len) {
		for (i = 0; i < sizeof ents / sizeof ents[0]; i++)
			if (strncmp(a, ents[i].ent, strlen(ents[i].ent)) == 0)
				break;
		if (i < sizeof ents / sizeof ents[0]) {
			out[o++] = ents[i].c;
			a += strlen(ents[i].ent);
		} else
			out[o++] = *a++;
	}
	out[o] = '\0';
	return (0);
}

/* The CompleteMultipartUpload body: every part and its ETag. */
static char *
s3_complete_body(const struct s3_up *up, size_t *len)
{
	size_t cap = 64, n, i;
	char  *b, *p;
	int    k;

	for (k = 0; k < up->nparts; k++)
		cap += 64 + 5 * strlen(up->etags[k]);
	b = xmalloc(cap);
	n = (size_t)snprintf(b, cap, "<CompleteMultipartUpload>");
	for (k = 0; k < up->nparts; k++) {
		n += (size_t)snprintf(b + n, cap - n,
		    "<Part><PartNumber>%d</PartNumber><ETag>", k + 1);
		for (p = up->etags[k]; *p != '\0'; p++) {
			const char *e = *p == '&' ? "&amp;"
			    : *p == '<'		  ? "&lt;"
			    : *p == '>'		  ? "&gt;"
						  : NULL;

			for (i = 0; e != NULL && e[i] != '\0'; i++)
				b[n++] = e[i];
			if (e == NULL)
				b[n++] = *p;
		}
		n += (size_t)snprintf(b + n, cap - n, "</ETag></Part>");
	}
	n += (size_t)snprintf(b + n, cap - n, "</CompleteMultipartUpload>");
	*len = n;
	return (b);
}

/* Sends the upload's current request. */
static void
s3_send(struct s3_up *up)
{
	struct s3	 *s = up->s3;
	const char	 *method = "PUT", *hdrs[3];
	struct httpc_opts o;
	struct httpc_body body;
	char		 *enc = NULL, *query = NULL, *url, *ct = NULL;
	char		 *xml = NULL;
	size_t		  off;

	memset(&o, 0, sizeof o);
	memset(&body, 0, sizeof body);
	body.fd = up->fd;
	hdrs[0] = "x-amz-content-sha256: UNSIGNED-PAYLOAD";
	hdrs[1] = hdrs[2] = NULL;
	if (up->upload_id != NULL)
		enc = s3_uri_encode(up->upload_id, 0);
	switch (up->step) {
	case S3_PUT:
		body.len = up->len;
		break;
	case S3_CREATE:
		method = "POST";
		query = xstrdup("uploads=");
		body.data = "";
		break;
	case S3_PART:
		query =
		    xasprintf("partNumber=%d&uploadId=%s", up->part + 1, enc);
		off = (size_t)up->part * s->o.part_bytes;
		body.off = (off_t)off;
		body.len = up->len - off < s->o.part_bytes ? up->len - off
							   : s->o.part_bytes;
		break;
	case S3_COMPLETE:
		method = "POST";
		query = xasprintf("uploadId=%s", enc);
		body.data = xml = s3_complete_body(up, &body.len);
		hdrs[1] = "Content-Type: application/xml";
		break;
	case S3_ABORT:
	default:
		method = "DELETE";
		query = xasprintf("uploadId=%s", enc);
		body.data = "";
		break;
	}
	if (up->step == S3_PUT || up->step == S3_CREATE)
		hdrs[1] = ct = xasprintf("Content-Type: %s", up->ctype);
	url = s3_url(&s->t, up->key, query);
	o.timeout_ms = s->o.timeout_ms;
	o.max_resp = S3_MAX_RESP;
	o.headers = hdrs;
	o.aws_sigv4 = s->sigv4;
	o.aws_key = s->t.access;
	o.aws_secret = s->t.secret;
	o.resp_header = up->step == S3_PART ? "ETag" : NULL;
	up->tries++;
	up->requests++;
	up->req = httpc_send(s->h, method, url,
	    up->step == S3_ABORT ? NULL : &body, &o, s3_reply_cb, up);
	free(url);
	free(query);
	free(enc);
	free(ct);
	free(xml);
}

/* Tells the caller how the upload ended, once. */
static void
s3_tell(struct s3_up *up, int ok)
{
	struct s3_result res;
	s3_cb		 cb = up->cb;

	if (cb == NULL)
		return;
	up->cb = NULL;
	memset(&res, 0, sizeof res);
	res.ok = ok;
	res.err = ok ? NULL : up->err;
	res.parts = up->nparts;
	res.requests = up->requests;
	res.ms = clock_mono_ms() - up->started_ms;
	cb(&res, up->arg);
}

/* Starts the abort of a created multipart upload, or frees up. */
static void
s3_abort_or_free(struct s3_up *up)
{
	if (up->upload_id == NULL || up->step == S3_ABORT) {
		s3_up_free(up);
		return;
	}
	up->step = S3_ABORT;
	up->tries = 0;
	s3_send(up);
}

/* The upload failed for good (err is set): tell, then abort or free. */
static void
s3_fail(struct s3_up *up)
{
	if (up->step == S3_ABORT) {
		log_warnx("s3: %s of %s (upload %s) failed: %s; its parts "
			  "stay in the bucket until a lifecycle rule removes "
			  "them",
		    s3_step_names[S3_ABORT], up->key, up->upload_id, up->err);
		s3_up_free(up);
		return;
	}
	s3_tell(up, 0);
	s3_abort_or_free(up);
}

static void
s3_retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	s3_send(arg);
}

/* Whether a failed request is worth sending again. */
static int
s3_retryable(const struct httpc_resp *resp)
{
	if (resp->fail != HTTPC_OK)
		return (resp->fail != HTTPC_BLOCKED);
	return (
	    resp->status >= 500 || resp->status == 429 || resp->status == 408);
}

/* Writes what went wrong with the request just answered into up->err:
 * why, else the transport's reason, else S3's error code and message. */
static void
s3_describe(struct s3_up *up, const struct httpc_resp *resp, const char *why)
{
	char   what[96], code[128], msg[512], detail[700];
	size_t n;

	if (up->step == S3_PART)
		snprintf(what, sizeof what, "%s %d of %d",
		    s3_step_names[up->step], up->part + 1, up->nparts);
	else
		snprintf(what, sizeof what, "%s", s3_step_names[up->step]);
	if (why != NULL)
		snprintf(detail, sizeof detail, "%s", why);
	else if (resp->fail != HTTPC_OK)
		snprintf(detail, sizeof detail, "%s", resp->err);
	else if (s3_xml_text(resp->body, "Code", code, sizeof code) == 0) {
		if (s3_xml_text(resp->body, "Message", msg, sizeof msg) == -1)
			msg[0] = '\0';
		snprintf(detail, sizeof detail, "HTTP %ld %s%s%s", resp->status,
		    code, *msg != '\0' ? ": " : "", msg);
	} else
		snprintf(detail, sizeof detail, "HTTP %ld", resp->status);
	n = (size_t)snprintf(up->err, sizeof up->err, "%s s3://%s/%s: %s", what,
	    up->s3->t.bucket, up->key, detail);
	if (up->tries > 1 && n < sizeof up->err)
		snprintf(up->err + n, sizeof up->err - n, " (after %d tries)",
		    up->tries);
}

/* The request answered 2xx: take what it gave and go on. Returns -1
 * with up->err set when the answer lacks what the next step needs. */
static int
s3_advance(struct s3_up *up, const struct httpc_resp *resp)
{
	char id[1024];

	switch (up->step) {
	case S3_CREATE:
		if (s3_xml_text(resp->body, "UploadId", id, sizeof id) == -1 ||
		    *id == '\0') {
			s3_describe(up, resp, "the answer has no UploadId");
			return (-1);
		}
		up->upload_id = xstrdup(id);
		up->step = S3_PART;
		up->part = 0;
		break;
	case S3_PART:
		if (resp->header == NULL || *resp->header == '\0') {
			s3_describe(up, resp, "the answer has no ETag");
			return (-1);
		}
		up->etags[up->part] = xstrdup(resp->header);
		if (++up->part == up->nparts)
			up->step = S3_COMPLETE;
		break;
	default:
		break;
	}
	up->tries = 0;
	s3_send(up);
	return (0);
}

static void
s3_reply_cb(const struct httpc_resp *resp, void *arg)
{
	struct s3_up *up = arg;
	int	      ok;

	up->req = NULL;
	ok =
	    resp->fail == HTTPC_OK && resp->status >= 200 && resp->status < 300;
	/* CompleteMultipartUpload can fail inside a 200. */
	if (ok && up->step == S3_COMPLETE &&
	    strstr(resp->body, "<Error>") != NULL)
		ok = 0;
	if (ok) {
		if (up->step == S3_ABORT) {
			log_info(
			    "s3: aborted the multipart upload of %s", up->key);
			s3_up_free(up);
		} else if (up->step == S3_PUT || up->step == S3_COMPLETE) {
			s3_tell(up, 1);
			s3_up_free(up);
		} else if (s3_advance(up, resp) == -1)
			s3_fail(up);
		return;
	}
	s3_describe(up, resp, NULL);
	/* A 200 here is CompleteMultipartUpload's error: retried too. */
	if ((s3_retryable(resp) || resp->status == 200) &&
	    up->tries <= up->s3->o.retries) {
		log_info("s3: %s; trying again", up->err);
		timer_add_ms(up->timer,
		    backoff_delay(up->s3->o.retry_base_ms, S3_RETRY_MAX_MS,
			up->tries - 1, rand_unit()));
		return;
	}
	s3_fail(up);
}

/*
 * Stores len bytes of the open file fd as key, with content_type. cb is
 * called once, from the loop, unless s3_cancel comes first; fd must stay
 * open until then. Never NULL.
 */
struct s3_up *
s3_put_file(struct s3 *s, const char *key, int fd, size_t len,
    const char *content_type, s3_cb cb, void *arg)
{
	struct s3_up *up = xcalloc(1, sizeof *up);

	up->s3 = s;
	up->key = xstrdup(key);
	up->ctype = xstrdup(content_type);
	up->fd = fd;
	up->len = len;
	up->cb = cb;
	up->arg = arg;
	up->started_ms = clock_mono_ms();
	up->timer = evtimer_new(s->base, s3_retry_cb, up);
	TAILQ_INSERT_TAIL(&s->ups, up, entry);
	s->n++;
	if (len > s->o.part_bytes) {
		up->nparts =
		    (int)((len + s->o.part_bytes - 1) / s->o.part_bytes);
		up->etags = xcalloc((size_t)up->nparts, sizeof *up->etags);
		up->step = S3_CREATE;
	} else
		up->step = S3_PUT;
	s3_send(up);
	return (up);
}

/*
 * Stops an upload whose callback has not run; it never will. A created
 * multipart upload is aborted in the background.
 */
void
s3_cancel(struct s3_up *up)
{
	if (up == NULL)
		return;
	up->cb = NULL;
	httpc_cancel(up->req);
	up->req = NULL;
	evtimer_del(up->timer);
	s3_abort_or_free(up);
}
