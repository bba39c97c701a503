/*
 * HTTP client over libcurl multi on libevent (see httpc.h).
 *
 * curl tells us which sockets to watch (httpc_sock_cb) and when to wake it
 * (httpc_timer_cb); libevent calls back into curl_multi_socket_action. When
 * transfers finish, each handle is taken off the multi handle before its
 * callback runs: a callback may start or cancel other requests freely,
 * since no curl call is on the stack.
 * A request that cannot be set up fails through the same callback, from a
 * zero timer, so callers have one error path. A download (httpc_download)
 * writes the body to the caller's file as it arrives instead of keeping it.
 * An address filter sits in CURLOPT_OPENSOCKETFUNCTION, which curl calls
 * with the resolved address of every connection it opens. httpc_send's
 * body is read by CURLOPT_READFUNCTION, from its copy or with pread from
 * the caller's file, so a large upload is never held in memory; SigV4 is
 * libcurl's own (CURLOPT_AWS_SIGV4, which signs Host, Content-Type and
 * the x-amz-* headers, and takes the payload hash from a
 * x-amz-content-sha256 header the caller sends). A finished request's
 * easy handle is kept (up to HTTPC_IDLE_MAX) and reset for the next
 * request: curl_easy_init and its cleanup cost more than the reset does,
 * and every job makes a few requests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "httpc.h"
#include "log.h"
#include "xmalloc.h"

#define HTTPC_DEFAULT_TIMEOUT_MS 30000
#define HTTPC_DEFAULT_CONNECT_MS 5000
#define HTTPC_DEFAULT_MAX_RESP	 (8u << 20)
#define HTTPC_IDLE_MAX		 4

struct httpc_req {
	struct httpc	  *h;
	CURL		  *easy;
	struct curl_slist *headers;
	curl_mime	  *mime;
	char		  *body; /* request body copy */
	char		  *resp; /* response buffer */
	size_t		   resp_len;
	size_t		   resp_cap;
	size_t		   max_resp;
	int		   too_big;
	int		   fd;	       /* httpc_download's file, else -1 */
	int		   up_fd;      /* httpc_send's body file, else -1 */
	off_t		   up_off;     /* ...read from here */
	size_t		   up_len;     /* the body's length */
	size_t		   up_pos;     /* bytes of it handed to curl */
	int		   read_errno; /* reading up_fd failed */
	char		  *want_hdr;   /* opts.resp_header */
	char		  *hdr_val;    /* its value, once seen */
	int (*addr_ok)(const struct sockaddr *);
	char	      blocked[INET6_ADDRSTRLEN]; /* a refused address */
	int	      write_errno;		 /* writing to fd failed */
	CURLcode      result;
	int	      setup_failed;
	struct event *defer; /* delivers a setup failure */
	char	      errbuf[CURL_ERROR_SIZE];
	httpc_cb      cb;
	void	     *arg;
	TAILQ_ENTRY(httpc_req) entry;
};

TAILQ_HEAD(httpc_reqs, httpc_req);

struct httpc {
	struct event_base *base;
	CURLM		  *multi;
	struct event	  *timer;
	struct httpc_reqs  active;
	int		   n;
	CURL		  *idle[HTTPC_IDLE_MAX]; /* easy handles to reuse */
	int		   nidle;
};

struct httpc_sock {
	struct httpc *h;
	curl_socket_t fd;
	struct event *ev;
};

static void httpc_check_done(struct httpc *);

static void
httpc_event_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct httpc *h = arg;
	int	      running, action = 0;

	if (kind & EV_READ)
		action |= CURL_CSELECT_IN;
	if (kind & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, action, &running);
	httpc_check_done(h);
}

static void
httpc_timeout_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct httpc *h = arg;
	int	      running;

	(void)fd;
	(void)kind;
	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	httpc_check_done(h);
}

static int
httpc_sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct httpc	  *h = userp;
	struct httpc_sock *sk = socketp;
	short		   kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sk != NULL) {
			event_free(sk->ev);
			free(sk);
		}
		return (0);
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (sk == NULL) {
		sk = xcalloc(1, sizeof *sk);
		sk->h = h;
		sk->fd = s;
		curl_multi_assign(h->multi, s, sk);
	} else
		event_free(sk->ev);
	sk->ev = event_new(h->base, s, kind, httpc_event_cb, h);
	event_add(sk->ev, NULL);
	return (0);
}

static int
httpc_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct httpc  *h = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return (0);
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(h->timer, &tv);
	return (0);
}

struct httpc *
httpc_new(struct event_base *base)
{
	static int    inited;
	struct httpc *h;

	if (!inited) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			fatalx("curl_global_init failed");
		inited = 1;
	}
	h = xcalloc(1, sizeof *h);
	h->base = base;
	if ((h->multi = curl_multi_init()) == NULL)
		fatalx("curl_multi_init failed");
	h->timer = evtimer_new(base, httpc_timeout_cb, h);
	TAILQ_INIT(&h->active);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, httpc_sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, httpc_timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	return (h);
}

static void
httpc_req_free(struct httpc_req *r)
{
	struct httpc *h = r->h;

	if (r->easy != NULL && h->nidle < HTTPC_IDLE_MAX) {
		curl_easy_reset(r->easy);
		h->idle[h->nidle++] = r->easy;
	} else if (r->easy != NULL)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	curl_mime_free(r->mime);
	free(r->want_hdr);
	free(r->hdr_val);
	if (r->defer != NULL)
		event_free(r->defer);
	free(r->body);
	free(r->resp);
	free(r);
}

/* Cancels every request without calling back, then frees the client. */
void
httpc_free(struct httpc *h)
{
	struct httpc_req *r;

	if (h == NULL)
		return;
	while ((r = TAILQ_FIRST(&h->active)) != NULL)
		httpc_cancel(r);
	while (h->nidle > 0)
		curl_easy_cleanup(h->idle[--h->nidle]);
	curl_multi_cleanup(h->multi);
	event_free(h->timer);
	free(h);
}

int
httpc_pending(const struct httpc *h)
{
	return (h->n);
}

/* A download's bytes go to its file, all of them or an error. */
static size_t
httpc_write_fd(struct httpc_req *r, const char *data, size_t n)
{
	size_t	off = 0;
	ssize_t w;

	while (off < n) {
		if ((w = write(r->fd, data + off, n - off)) == -1) {
			if (errno == EINTR)
				continue;
			r->write_errno = errno;
			return (0); /* aborts the transfer */
		}
		off += (size_t)w;
	}
	r->resp_len += n;
	return (n);
}

static size_t
httpc_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct httpc_req *r = arg;
	size_t		  n = size * nmemb, cap;

	if (r->resp_len + n > r->max_resp) {
		r->too_big = 1;
		return (0); /* aborts the transfer */
	}
	if (r->fd != -1)
		return (httpc_write_fd(r, data, n));
	if (r->resp_len + n + 1 > r->resp_cap) {
		cap = r->resp_cap ? r->resp_cap : 4096;
		while (cap < r->resp_len + n + 1)
			cap *= 2;
		if (cap > r->max_resp + 1)
			cap = r->max_resp + 1;
		r->resp = xrealloc(r->resp, cap);
		r->resp_cap = cap;
	}
	memcpy(r->resp + r->resp_len, data, n);
	r->resp_len += n;
	r->resp[r->resp_len] = '\0';
	return (n);
}

/* Delivers the outcome of r to its callback and frees it. */
static void
httpc_finish(struct httpc_req *r)
{
	struct httpc_resp resp;
	char		 *ct = NULL;
	long		  status = 0;

	memset(&resp, 0, sizeof resp);
	resp.body = r->resp != NULL ? r->resp : "";
	resp.len = r->resp_len;
	resp.header = r->hdr_val;
	if (r->setup_failed) {
		resp.fail = HTTPC_ERROR;
		resp.err = "request could not be set up";
	} else if (r->too_big) {
		resp.fail = HTTPC_TOO_BIG;
		resp.err = "response too large";
	} else if (r->write_errno != 0) {
		snprintf(r->errbuf, sizeof r->errbuf,
		    "writing the response to its file: %s",
		    strerror(r->write_errno));
		resp.fail = HTTPC_WRITE;
		resp.err = r->errbuf;
	} else if (r->read_errno != 0) {
		snprintf(r->errbuf, sizeof r->errbuf,
		    "reading the request body from its file: %s",
		    strerror(r->read_errno));
		resp.fail = HTTPC_ERROR;
		resp.err = r->errbuf;
	} else if (r->blocked[0] != '\0' && r->result != CURLE_OK) {
		snprintf(r->errbuf, sizeof r->errbuf,
		    "refused to connect to %s (address not allowed)",
		    r->blocked);
		resp.fail = HTTPC_BLOCKED;
		resp.err = r->errbuf;
	} else if (r->result == CURLE_OK) {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
		resp.fail = HTTPC_OK;
		resp.status = status;
		resp.content_type = ct;
	} else {
		resp.fail = r->result == CURLE_COULDNT_CONNECT ? HTTPC_REFUSED
		    : r->result == CURLE_OPERATION_TIMEDOUT    ? HTTPC_TIMEOUT
							       : HTTPC_ERROR;
		resp.err = r->errbuf[0] != '\0' ? r->errbuf
						: curl_easy_strerror(r->result);
	}
	r->cb(&resp, r->arg);
	httpc_req_free(r);
}

/*
 * Finishes transfers one at a time: a callback may cancel another request
 * whose message is still queued, and removing a handle drops its message.
 */
static void
httpc_check_done(struct httpc *h)
{
	struct httpc_req *r;
	CURLMsg		 *msg;
	int		  left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &r);
		r->result = msg->data.result;
		curl_multi_remove_handle(h->multi, r->easy);
		TAILQ_REMOVE(&h->active, r, entry);
		h->n--;
		httpc_finish(r);
	}
}

static void
httpc_defer_cb(evutil_socket_t fd, short kind, void *arg)
{
	struct httpc_req *r = arg;

	(void)fd;
	(void)kind;
	TAILQ_REMOVE(&r->h->active, r, entry);
	r->h->n--;
	httpc_finish(r);
}

/* Opens curl's socket unless the request's filter refuses the address. */
static curl_socket_t
httpc_open_cb(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct httpc_req *r = arg;
	const void	 *ip;

	(void)purpose;
	if (!r->addr_ok(&a->addr)) {
		ip = a->family == AF_INET6
		    ? (const void *)&((struct sockaddr_in6 *)(void *)&a->addr)
			  ->sin6_addr
		    : (const void *)&((struct sockaddr_in *)(void *)&a->addr)
			  ->sin_addr;
		if (inet_ntop(a->family, ip, r->blocked, sizeof r->blocked) ==
		    NULL)
			snprintf(r->blocked, sizeof r->blocked, "?");
		return (CURL_SOCKET_BAD);
	}
	return (socket(a->family, a->socktype, a->protocol));
}

/* Keeps the value of the one response header asked for. */
static size_t
httpc_header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct httpc_req *r = arg;
	size_t		  n = size * nmemb, nl = strlen(r->want_hdr), a, b;

	if (n <= nl || data[nl] != ':' ||
	    strncasecmp(data, r->want_hdr, nl) != 0)
		return (n);
	for (a = nl + 1; a < n && (data[a] == ' ' || data[a] == '\t'); a++)
		;
	for (b = n; b > a && strchr(" \t\r\n", data[b - 1]) != NULL; b--)
		;
	free(r->hdr_val);
	r->hdr_val = xstrndup(data + a, b - a);
	return (n);
}

/* Hands curl the next bytes of httpc_send's body. */
static size_t
httpc_read_cb(char *buf, size_t size, size_t nmemb, void *arg)
{
	struct httpc_req *r = arg;
	size_t		  n = size * nmemb;
	ssize_t		  got;

	if (n > r->up_len - r->up_pos)
		n = r->up_len - r->up_pos;
	if (n == 0)
		return (0);
	if (r->up_fd == -1) {
		memcpy(buf, r->body + r->up_pos, n);
		r->up_pos += n;
		return (n);
	}
	do
		got = pread(r->up_fd, buf, n, r->up_off + (off_t)r->up_pos);
	while (got == -1 && errno == EINTR);
	if (got <= 0) {
		r->read_errno = got == 0 ? EIO : errno; /* 0: the file shrank */
		return (CURL_READFUNC_ABORT);
	}
	r->up_pos += (size_t)got;
	return ((size_t)got);
}

/* Rewinds the body when curl must send it again. */
static int
httpc_seek_cb(void *arg, curl_off_t offset, int origin)
{
	struct httpc_req *r = arg;

	if (origin != SEEK_SET || offset < 0 || (size_t)offset > r->up_len)
		return (CURL_SEEKFUNC_CANTSEEK);
	r->up_pos = (size_t)offset;
	return (CURL_SEEKFUNC_OK);
}

/* Creates a request with the options every method shares. */
static struct httpc_req *
httpc_req_new(struct httpc *h, const char *url, const struct httpc_opts *o,
    httpc_cb cb, void *arg)
{
	struct httpc_req *r;
	long		  timeout, connect;
	size_t		  i;

	r = xcalloc(1, sizeof *r);
	r->h = h;
	r->cb = cb;
	r->arg = arg;
	r->fd = -1;
	r->up_fd = -1;
	r->max_resp = o && o->max_resp ? o->max_resp : HTTPC_DEFAULT_MAX_RESP;
	timeout = o && o->timeout_ms ? o->timeout_ms : HTTPC_DEFAULT_TIMEOUT_MS;
	connect = o && o->connect_timeout_ms ? o->connect_timeout_ms
					     : HTTPC_DEFAULT_CONNECT_MS;
	if (h->nidle > 0)
		r->easy = h->idle[--h->nidle];
	else if ((r->easy = curl_easy_init()) == NULL) {
		r->setup_failed = 1;
		return (r);
	}
	/* No Origin header is ever sent: ComfyUI 403s a foreign Origin.
	 * libcurl 7.88 signs an "Expect:" that removes its header as an
	 * empty one, so a SigV4 request keeps curl's 100-continue (which
	 * spares the body of an upload the store refuses anyway). */
	if (!(o && o->aws_sigv4))
		r->headers = curl_slist_append(NULL, "Expect:");
	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, httpc_write_cb);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, connect);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	for (i = 0; o && o->headers && o->headers[i] != NULL; i++)
		r->headers = curl_slist_append(r->headers, o->headers[i]);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	if (o && o->aws_sigv4) {
		curl_easy_setopt(r->easy, CURLOPT_AWS_SIGV4, o->aws_sigv4);
		curl_easy_setopt(r->easy, CURLOPT_USERNAME, o->aws_key);
		curl_easy_setopt(r->easy, CURLOPT_PASSWORD, o->aws_secret);
	}
	if (o && o->resp_header) {
		r->want_hdr = xstrdup(o->resp_header);
		curl_easy_setopt(
		    r->easy, CURLOPT_HEADERFUNCTION, httpc_header_cb);
		curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	}
	if (o && o->addr_ok) {
		r->addr_ok = o->addr_ok;
		/* A reused connection would skip the check. */
		curl_easy_setopt(r->easy, CURLOPT_PROXY, "");
		curl_easy_setopt(r->easy, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(r->easy, CURLOPT_FORBID_REUSE, 1L);
		curl_easy_setopt(
		    r->easy, CURLOPT_OPENSOCKETFUNCTION, httpc_open_cb);
		curl_easy_setopt(r->easy, CURLOPT_OPENSOCKETDATA, r);
	}
	return (r);
}

/* Starts r, or arranges for its setup failure to be reported. */
static struct httpc_req *
httpc_start(struct httpc_req *r)
{
	struct httpc  *h = r->h;
	struct timeval zero = { 0, 0 };

	TAILQ_INSERT_TAIL(&h->active, r, entry);
	h->n++;
	if (!r->setup_failed &&
	    curl_multi_add_handle(h->multi, r->easy) == CURLM_OK)
		return (r);
	r->setup_failed = 1;
	r->defer = evtimer_new(h->base, httpc_defer_cb, r);
	evtimer_add(r->defer, &zero);
	return (r);
}

struct httpc_req *
httpc_get(struct httpc *h, const char *url, const struct httpc_opts *o,
    httpc_cb cb, void *arg)
{
	return (httpc_start(httpc_req_new(h, url, o, cb, arg)));
}

/*
 * GETs url into the open file fd (at its offset) instead of memory: the
 * response's body is "" and len the bytes written, at most max_resp. A
 * failed write fails the request (HTTPC_WRITE). fd stays the caller's.
 */
struct httpc_req *
httpc_download(struct httpc *h, const char *url, int fd,
    const struct httpc_opts *o, httpc_cb cb, void *arg)
{
	struct httpc_req *r = httpc_req_new(h, url, o, cb, arg);

	r->fd = fd;
	return (httpc_start(r));
}

/* POSTs body (copied) with the given content type. */
struct httpc_req *
httpc_post(struct httpc *h, const char *url, const char *content_type,
    const void *body, size_t len, const struct httpc_opts *o, httpc_cb cb,
    void *arg)
{
	struct httpc_req *r = httpc_req_new(h, url, o, cb, arg);
	char		 *ct;

	if (r->setup_failed)
		return (httpc_start(r));
	r->body = xmalloc(len + 1);
	memcpy(r->body, body, len);
	ct = xasprintf("Content-Type: %s", content_type);
	r->headers = curl_slist_append(r->headers, ct);
	free(ct);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
	curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	return (httpc_start(r));
}

/*
 * POSTs multipart/form-data: one file part `field` named `filename` with
 * data (copied), plus text parts from fields (name, value, ..., NULL).
 */
struct httpc_req *
httpc_upload(struct httpc *h, const char *url, const char *field,
    const char *filename, const void *data, size_t len,
    const char *const *fields, const struct httpc_opts *o, httpc_cb cb,
    void *arg)
{
	struct httpc_req *r = httpc_req_new(h, url, o, cb, arg);
	curl_mimepart	 *part;
	size_t		  i;

	if (r->setup_failed)
		return (httpc_start(r));
	r->mime = curl_mime_init(r->easy);
	part = curl_mime_addpart(r->mime);
	curl_mime_name(part, field);
	curl_mime_filename(part, filename);
	curl_mime_data(part, data, len);
	for (i = 0;
	     fields != NULL && fields[i] != NULL && fields[i + 1] != NULL;
	     i += 2) {
		part = curl_mime_addpart(r->mime);
		curl_mime_name(part, fields[i]);
		curl_mime_data(part, fields[i + 1], CURL_ZERO_TERMINATED);
	}
	curl_easy_setopt(r->easy, CURLOPT_MIMEPOST, r->mime);
	return (httpc_start(r));
}

/*
 * Sends method to url with body (NULL: none; see struct httpc_body). PUT
 * and POST carry the body with its length; HEAD asks for no body; any
 * other method is sent as it is named.
 */
struct httpc_req *
httpc_send(struct httpc *h, const char *method, const char *url,
    const struct httpc_body *body, const struct httpc_opts *o, httpc_cb cb,
    void *arg)
{
	struct httpc_req *r = httpc_req_new(h, url, o, cb, arg);

	if (r->setup_failed)
		return (httpc_start(r));
	if (body != NULL && body->data != NULL) {
		r->body = xmalloc(body->len + 1);
		memcpy(r->body, body->data, body->len);
	} else if (body != NULL) {
		r->up_fd = body->fd;
		r->up_off = body->off;
	}
	r->up_len = body != NULL ? body->len : 0;
	curl_easy_setopt(r->easy, CURLOPT_READFUNCTION, httpc_read_cb);
	curl_easy_setopt(r->easy, CURLOPT_READDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_SEEKFUNCTION, httpc_seek_cb);
	curl_easy_setopt(r->easy, CURLOPT_SEEKDATA, r);
	if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)r->up_len);
	} else if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "PUT") == 0 || r->up_len > 0) {
		curl_easy_setopt(r->easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(
		    r->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->up_len);
	}
	if (strcmp(method, "POST") != 0 && strcmp(method, "PUT") != 0 &&
	    strcmp(method, "HEAD") != 0)
		curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
	return (httpc_start(r));
}

/*
 * Stops r; its callback is never called. r must still be pending: a callback
 * must forget its request before it returns.
 */
void
httpc_cancel(struct httpc_req *r)
{
	struct httpc *h;

	if (r == NULL)
		return;
	h = r->h;
	TAILQ_REMOVE(&h->active, r, entry);
	h->n--;
	if (!r->setup_failed)
		curl_multi_remove_handle(h->multi, r->easy);
	httpc_req_free(r);
}
