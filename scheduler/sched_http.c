/*
 * The HTTP server (see sched_http.h). One dispatcher takes every request
 * (evhttp_set_gencb) and does, in order: the URL limit (414), the route
 * lookup by path shape (404) and method (405 with Allow; an OPTIONS
 * preflight when CORS is on), the path arguments' alphabets (404, before
 * any Redis call), the content type of a POST (415) and the token (401).
 * Before any of that, every connection reads through the guard
 * (sched_guard.c): a body over body-max-bytes (413), a head over
 * header-max-bytes (431) or a head evhttp could not read (400, 417, 501)
 * never reaches evhttp, and the guard answers the stand-in it sends instead
 * (guard_answer, the dispatcher's first step) with the same JSON error.
 * evhttp's own limits stay set just above the guard's, a second line that
 * the guard makes unreachable. Handlers answer with the http_reply_* calls,
 * which log one line per request.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "sched.h"
#include "sched_auth.h"
#include "sched_guard.h"
#include "sched_http.h"
#include "sched_metrics.h"
#include "sched_reason.h"
#include "sched_routes.h"
#include "util.h"
#include "xmalloc.h"

#define HTTP_URL_MAX  4096
#define HTTP_ARGS_MAX 2
#define HTTP_ARG_MAX  72
/* evhttp's limits over the guard's: never reached while the guard reads. */
#define HTTP_BACKSTOP 4096

enum route_flags {
	R_AUTH = 0x1,	/* needs a token when tokens are set */
	R_ADMIN = 0x2,	/* on admin-listen when that is set */
	R_STREAM = 0x4, /* a long stream: sched_sse.c counts it, not here */
	R_COMFY = 0x8,	/* ComfyUI's API: not in openapi.json; the handler
			 * checks the body's type (multipart, or none) */
};

struct route {
	enum evhttp_cmd_type method;
	const char	    *pattern;
	sched_route_fn	     fn;
	int		     flags;
};

/* The one route table. */
static const struct route routes[] = {
	{ EVHTTP_REQ_GET, "/", dash_page, R_ADMIN },
	{ EVHTTP_REQ_GET, "/healthz", info_healthz, 0 },
	{ EVHTTP_REQ_GET, "/readyz", info_readyz, 0 },
	{ EVHTTP_REQ_GET, "/metrics", metrics_get, R_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/openapi.json", info_openapi, 0 },
	{ EVHTTP_REQ_POST, "/v1/jobs", jobs_submit, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/jobs", dash_jobs, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/jobs/{id}", jobs_get, R_AUTH },
	{ EVHTTP_REQ_DELETE, "/v1/jobs/{id}", jobs_cancel, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/jobs/{id}/events", events_job,
	    R_AUTH | R_STREAM },
	{ EVHTTP_REQ_GET, "/v1/jobs/{id}/outputs/{n}", outputs_get, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/events", events_all, R_AUTH | R_STREAM },
	{ EVHTTP_REQ_GET, "/v1/workflows", info_workflows, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/workflows/{name}", info_workflow, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/workers", info_workers, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/pools", info_pools, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/stats", info_stats, R_AUTH },
	{ EVHTTP_REQ_GET, "/v1/stats/history", dash_history, R_AUTH },
	/* ComfyUI's own API (sched_comfy*.c, README "ComfyUI-compatible front") */
	{ EVHTTP_REQ_POST, "/comfy/prompt", comfy_prompt, R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/prompt", comfy_prompt_info,
	    R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/queue", comfy_queue, R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/history", comfy_history, R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/history/{pid}", comfy_history_one,
	    R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/view", comfy_view, R_AUTH | R_COMFY },
	{ EVHTTP_REQ_POST, "/comfy/interrupt", comfy_interrupt,
	    R_AUTH | R_COMFY },
	{ EVHTTP_REQ_POST, "/comfy/upload/image", comfy_upload,
	    R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/object_info", comfy_object_info,
	    R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/object_info/{name}", comfy_object_info_one,
	    R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/system_stats", comfy_system_stats,
	    R_AUTH | R_COMFY },
	{ EVHTTP_REQ_GET, "/comfy/ws", comfy_ws, R_AUTH | R_STREAM | R_COMFY },
};
#define NROUTES (sizeof routes / sizeof routes[0])

struct listener {
	struct sched_http *h;
	struct evhttp	  *http;
	int		   admin; /* the admin-listen one */
	int		   port;
};

struct sched_http {
	struct sched   *s;
	struct listener pub, adm; /* adm.http NULL: no admin listener */
};

static const struct {
	enum evhttp_cmd_type m;
	const char	    *name;
} methods[] = {
	{ EVHTTP_REQ_GET, "GET" },
	{ EVHTTP_REQ_POST, "POST" },
	{ EVHTTP_REQ_HEAD, "HEAD" },
	{ EVHTTP_REQ_PUT, "PUT" },
	{ EVHTTP_REQ_DELETE, "DELETE" },
	{ EVHTTP_REQ_OPTIONS, "OPTIONS" },
	{ EVHTTP_REQ_TRACE, "TRACE" },
	{ EVHTTP_REQ_CONNECT, "CONNECT" },
	{ EVHTTP_REQ_PATCH, "PATCH" },
};

static const char *
http_method_name(enum evhttp_cmd_type m)
{
	size_t i;

	for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (methods[i].m == m)
			return (methods[i].name);
	return ("?");
}

/* The request line for the log, with anything unprintable as '?'. */
static void
http_log(struct evhttp_request *req, int status)
{
	const char *uri = evhttp_request_get_uri(req);
	char	    buf[256];
	size_t	    i;

	snprintf(buf, sizeof buf, "%s", uri != NULL ? uri : "");
	for (i = 0; buf[i] != '\0'; i++)
		if ((unsigned char)buf[i] < 0x20 ||
		    (unsigned char)buf[i] >= 0x7f)
			buf[i] = '?';
	log_at(status >= 500 ? LL_NOTICE : LL_VERBOSE, "http: %s %s %d",
	    http_method_name(evhttp_request_get_command(req)), buf, status);
}

void
http_reply_bytes(struct evhttp_request *req, int status,
    const char *content_type, struct evbuffer *body)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (content_type != NULL)
		evhttp_add_header(out, "Content-Type", content_type);
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "Cache-Control", "no-store");
	http_log(req, status);
	evhttp_send_reply(req, status, reason_phrase(status), body);
}

void
http_reply_json(struct evhttp_request *req, int status, const cJSON *body)
{
	struct evbuffer *b = evbuffer_new();
	char		*text;

	if (body != NULL) {
		text = cJSON_PrintUnformatted(body);
		evbuffer_add(b, text, strlen(text));
		evbuffer_add(b, "\n", 1);
		cJSON_free(text);
	}
	http_reply_bytes(
	    req, status, body != NULL ? "application/json" : NULL, b);
	evbuffer_free(b);
}

void
http_reply_fields(struct evhttp_request *req, int status, const char *code,
    const char *message, cJSON *fields)
{
	cJSON *o = cJSON_CreateObject(), *e;

	e = cJSON_AddObjectToObject(o, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	if (fields != NULL)
		cJSON_AddItemToObject(e, "fields", fields);
	http_reply_json(req, status, o);
	cJSON_Delete(o);
}

void
http_reply_error(struct evhttp_request *req, int status, const char *code,
    const char *message)
{
	http_reply_fields(req, status, code, message, NULL);
}

void
http_reply_redis_down(struct evhttp_request *req)
{
	http_reply_error(req, 503, "unavailable",
	    "the queue's Redis is not "
	    "reachable; try again");
}

const char *
http_header(struct evhttp_request *req, const char *name)
{
	return (
	    evhttp_find_header(evhttp_request_get_input_headers(req), name));
}

char *
http_body(struct evhttp_request *req, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t		 n = evbuffer_get_length(in);
	char		*text;

	if ((text = malloc(n + 1)) == NULL)
		return (NULL);
	evbuffer_copyout(in, text, n);
	text[n] = '\0';
	*len = n;
	return (text);
}

int
http_query(struct evhttp_request *req, const char *key, char *buf, size_t len)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	struct evkeyvalq	 q;
	const char		*v, *qs;
	int			 rc = -1;

	if (u == NULL || (qs = evhttp_uri_get_query(u)) == NULL)
		return (-1);
	if (evhttp_parse_query_str(qs, &q) == 0 &&
	    (v = evhttp_find_header(&q, key)) != NULL && strlen(v) < len) {
		snprintf(buf, len, "%s", v);
		rc = 0;
	}
	evhttp_clear_headers(&q);
	return (rc);
}

static void
http_wait_closed(struct evhttp_connection *evcon, void *arg)
{
	struct http_wait *w = arg;

	(void)evcon;
	w->req = NULL;
}

void
http_wait_start(struct http_wait *w, struct evhttp_request *req)
{
	w->req = req;
	evhttp_connection_set_closecb(
	    evhttp_request_get_connection(req), http_wait_closed, w);
}

struct evhttp_request *
http_wait_end(struct http_wait *w)
{
	struct evhttp_request *req = w->req;

	if (req != NULL)
		evhttp_connection_set_closecb(
		    evhttp_request_get_connection(req), NULL, NULL);
	w->req = NULL;
	return (req);
}

/* Whether arg fits the alphabet of the pattern segment {what}. */
static int
http_arg_ok(const char *what, const char *arg, size_t len)
{
	size_t i, max = strcmp(what, "{n}") == 0 ? 4 : 64;

	if (len == 0 || len > max)
		return (0);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)arg[i];

		if (strcmp(what, "{id}") == 0 &&
		    !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')))
			return (0);
		if (strcmp(what, "{n}") == 0 && !(c >= '0' && c <= '9'))
			return (0);
		if (strcmp(what, "{pid}") == 0 &&
		    !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			(c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
			return (0);
		if (strcmp(what, "{name}") == 0 &&
		    !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
			(c >= 'A' && c <= 'Z') || c == '_' || c == '-'))
			return (0);
	}
	return (1);
}

/*
 * Matches path against pattern segment by segment. Returns 0 (another
 * shape), 1 (a match, args filled) or 2 (the shape matches but an argument
 * breaks its alphabet).
 */
static int
http_match(const char *pattern, const char *path, char args[][HTTP_ARG_MAX])
{
	const char *p = pattern, *q = path, *pe, *qe;
	int	    nargs = 0, bad = 0;

	for (;;) {
		if (*p != '/' || *q != '/')
			return (*p == *q ? (bad ? 2 : 1) : 0);
		p++, q++;
		pe = p + strcspn(p, "/");
		qe = q + strcspn(q, "/");
		if (*p == '{') {
			char what[16];

			snprintf(what, sizeof what, "%.*s", (int)(pe - p), p);
			if (!http_arg_ok(what, q, (size_t)(qe - q)))
				bad = 1;
			else if (nargs < HTTP_ARGS_MAX)
				snprintf(args[nargs++], HTTP_ARG_MAX, "%.*s",
				    (int)(qe - q), q);
		} else if (pe - p != qe - q || memcmp(p, q, (size_t)(pe - p)))
			return (0);
		p = pe, q = qe;
		if (*p == '\0' || *q == '\0')
			return (*p == *q ? (bad ? 2 : 1) : 0);
	}
}

static int
http_json_type(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL)
		return (0);
	while (*ct == ' ')
		ct++;
	return (strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '));
}

static void
http_cors(struct sched *s, struct evhttp_request *req)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (*s->cfg->cors_origin == '\0')
		return;
	evhttp_add_header(
	    out, "Access-Control-Allow-Origin", s->cfg->cors_origin);
	evhttp_add_header(out, "Access-Control-Expose-Headers",
	    "Retry-After, Content-Length");
	evhttp_add_header(out, "Vary", "Origin");
}

/*
 * With admin-listen set, the admin routes are there and only there; the
 * admin listener also answers the API's GET routes, which the dashboard
 * served there reads.
 */
static int
http_route_here(const struct listener *l, const struct route *r)
{
	if (l->h->adm.http == NULL)
		return (1);
	if (l->admin)
		return ((r->flags & R_ADMIN) || r->method == EVHTTP_REQ_GET);
	return (!(r->flags & R_ADMIN));
}

/* What a path allows, for Allow and the preflight; 0 when nothing. */
static size_t
http_allowed(struct listener *l, const char *path, char *allow, size_t len)
{
	char   args[HTTP_ARGS_MAX][HTTP_ARG_MAX];
	size_t i, n = 0, off = 0;

	allow[0] = '\0';
	for (i = 0; i < NROUTES; i++) {
		if (!http_route_here(l, &routes[i]) ||
		    http_match(routes[i].pattern, path, args) == 0)
			continue;
		off += (size_t)snprintf(allow + off, len - off, "%s%s",
		    n++ ? ", " : "", http_method_name(routes[i].method));
		if (off >= len)
			off = len - 1;
	}
	return (n);
}

static void
http_dispatch(struct evhttp_request *req, void *arg)
{
	struct listener		 *l = arg;
	struct sched		 *s = l->h->s;
	const struct evhttp_uri	 *u = evhttp_request_get_evhttp_uri(req);
	const struct sched_token *tok = NULL;
	const struct route	 *r = NULL;
	enum evhttp_cmd_type	  m = evhttp_request_get_command(req);
	const char		 *path, *argv[HTTP_ARGS_MAX + 1] = { NULL };
	char			  args[HTTP_ARGS_MAX][HTTP_ARG_MAX], allow[128];
	size_t			  i;
	int			  found = 0;

	if (guard_answer(req))
		return;
	http_cors(s, req);
	if (strlen(evhttp_request_get_uri(req)) > HTTP_URL_MAX) {
		http_reply_error(req, 414, "uri_too_long",
		    "the request URI is over 4096 bytes");
		return;
	}
	if (u == NULL || (path = evhttp_uri_get_path(u)) == NULL ||
	    *path == '\0')
		path = "/";
	if (m == EVHTTP_REQ_HEAD)
		m = EVHTTP_REQ_GET;
	if (http_allowed(l, path, allow, sizeof allow) == 0) {
		http_reply_error(req, 404, "not_found", "no such route");
		return;
	}
	for (i = 0; i < NROUTES && r == NULL; i++) {
		if (routes[i].method != m || !http_route_here(l, &routes[i]))
			continue;
		switch (http_match(routes[i].pattern, path, args)) {
		case 1:
			r = &routes[i];
			break;
		case 2:
			found = 1;
			break;
		}
	}
	if (r == NULL && found) {
		http_reply_error(req, 404, "not_found", "no such resource");
		return;
	}
	if (r == NULL && m == EVHTTP_REQ_OPTIONS &&
	    *s->cfg->cors_origin != '\0') {
		struct evkeyvalq *out = evhttp_request_get_output_headers(req);

		evhttp_add_header(out, "Access-Control-Allow-Methods", allow);
		evhttp_add_header(out, "Access-Control-Allow-Headers",
		    "Authorization, Content-Type, Idempotency-Key, "
		    "Last-Event-ID");
		evhttp_add_header(out, "Access-Control-Max-Age", "600");
		http_reply_json(req, 204, NULL);
		return;
	}
	if (r == NULL) {
		evhttp_add_header(
		    evhttp_request_get_output_headers(req), "Allow", allow);
		http_reply_error(req, 405, "method_not_allowed",
		    "this route does not take that method");
		return;
	}
	if (!(r->flags & R_STREAM) && s->metrics != NULL)
		metrics_track(s->metrics, req, r->pattern,
		    (s->cfg->request_timeout_s + 5) * 1000);
	if (m == EVHTTP_REQ_POST && !(r->flags & R_COMFY) &&
	    !http_json_type(http_header(req, "Content-Type"))) {
		http_reply_error(req, 415, "unsupported_media_type",
		    "the body must be application/json");
		return;
	}
	if ((r->flags & R_AUTH) && auth_count(s->auth) > 0 &&
	    (tok = auth_check(s->auth, http_header(req, "Authorization"))) ==
		NULL) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "WWW-Authenticate", "Bearer");
		http_reply_error(req, 401, "unauthorized",
		    "a valid bearer token is required");
		return;
	}
	for (i = 0; i < HTTP_ARGS_MAX; i++)
		argv[i] = args[i];
	r->fn(s, req, argv, tok);
}

/* Splits HOST:PORT ([v6]:PORT too). */
static int
http_addr(const char *addr, char *host, size_t hlen, int *port)
{
	const char *c = strrchr(addr, ':');
	long long   p;

	if (c == NULL || parse_ll(c + 1, 0, 65535, &p) == -1)
		return (-1);
	if (addr[0] == '[' && c > addr + 1 && c[-1] == ']')
		snprintf(host, hlen, "%.*s", (int)(c - addr - 2), addr + 1);
	else
		snprintf(host, hlen, "%.*s", (int)(c - addr), addr);
	*port = (int)p;
	return (host[0] == '\0' ? -1 : 0);
}

static int
http_listen(struct sched_http *h, struct listener *l, const char *addr,
    const char *what, char *err, size_t errlen)
{
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage	    ss;
	socklen_t		    sl = sizeof ss;
	char			    host[256];
	int			    port;

	if (http_addr(addr, host, sizeof host, &port) == -1) {
		snprintf(err, errlen, "%s: '%s' is not HOST:PORT", what, addr);
		return (-1);
	}
	l->h = h;
	l->http = evhttp_new(h->s->base);
	evhttp_set_allowed_methods(l->http, 0x1ff);
	evhttp_set_gencb(l->http, http_dispatch, l);
	guard_attach(l->http, h->s);
	if ((bs = evhttp_bind_socket_with_handle(
		 l->http, host, (ev_uint16_t)port)) == NULL) {
		snprintf(err, errlen, "%s: cannot listen on %s", what, addr);
		return (-1);
	}
	l->port = port;
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
		&sl) == 0)
		l->port = ntohs(ss.ss_family == AF_INET6
			? ((struct sockaddr_in6 *)&ss)->sin6_port
			: ((struct sockaddr_in *)&ss)->sin_port);
	return (0);
}

struct sched_http *
http_new(struct sched *s, char *err, size_t errlen)
{
	struct sched_http *h = xcalloc(1, sizeof *h);

	h->s = s;
	if (http_listen(h, &h->pub, s->cfg->listen, "listen", err, errlen) ==
	    -1)
		goto fail;
	if (*s->cfg->admin_listen != '\0') {
		h->adm.admin = 1;
		if (http_listen(h, &h->adm, s->cfg->admin_listen,
			"admin-listen", err, errlen) == -1)
			goto fail;
	}
	http_apply_cfg(h);
	return (h);
fail:
	http_free(h);
	return (NULL);
}

void
http_apply_cfg(struct sched_http *h)
{
	struct listener *ls[2] = { &h->pub, &h->adm };
	size_t		 i;

	for (i = 0; i < 2; i++) {
		if (ls[i]->http == NULL)
			continue;
		/* The guard reads s->cfg at each request. */
		evhttp_set_max_body_size(ls[i]->http,
		    (ev_ssize_t)h->s->cfg->body_max_bytes + HTTP_BACKSTOP);
		evhttp_set_max_headers_size(ls[i]->http,
		    (ev_ssize_t)h->s->cfg->header_max_bytes + HTTP_BACKSTOP);
		evhttp_set_timeout(
		    ls[i]->http, (int)h->s->cfg->request_timeout_s);
	}
}

int
http_port(const struct sched_http *h, int admin)
{
	return (admin ? h->adm.port : h->pub.port);
}

void
http_free(struct sched_http *h)
{
	if (h == NULL)
		return;
	if (h->pub.http != NULL)
		evhttp_free(h->pub.http);
	if (h->adm.http != NULL)
		evhttp_free(h->adm.http);
	free(h);
}

size_t
http_route_count(void)
{
	return (NROUTES);
}

const char *
http_route_method(size_t i)
{
	return (http_method_name(routes[i].method));
}

const char *
http_route_pattern(size_t i)
{
	return (routes[i].pattern);
}

int
http_route_documented(size_t i)
{
	return (!(routes[i].flags & R_COMFY));
}
