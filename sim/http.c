/*
 * HTTP: one evhttp listener and one dispatcher over a route table. Like
 * ComfyUI's aiohttp app, every route also answers under /api; a loopback
 * Host with a foreign Origin gets 403 with an empty body (the CSRF guard,
 * /ws included); an unknown path 404 and a known path with another method
 * 405, with aiohttp's texts; a JSON route whose body does not parse gets
 * 500 "Server got itself in trouble". Bodies over --max-upload-size get
 * evhttp's 413. Handlers return 0 when they have replied (or will, later),
 * else the status of an empty reply (500: the trouble text).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>

#include "log.h"
#include "sim.h"
#include "xmalloc.h"

enum body { B_NONE, B_JSON, B_JSON_OPT };

static int route_ws(struct evhttp_request *, cJSON *);

struct route {
	int	    methods;
	const char *path;
	int	    prefix; /* path ends in '/': one more segment follows */
	int (*fn)(struct evhttp_request *, cJSON *);
	enum body body;
};

#define GET  (EVHTTP_REQ_GET | EVHTTP_REQ_HEAD)
#define POST EVHTTP_REQ_POST

static const struct route routes[] = {
	{ GET, "/ws", 0, route_ws, B_NONE },
	{ GET, "/prompt", 0, route_prompt_get, B_NONE },
	{ POST, "/prompt", 0, route_prompt_post, B_JSON },
	{ GET, "/queue", 0, route_queue_get, B_NONE },
	{ POST, "/queue", 0, route_queue_post, B_JSON },
	{ POST, "/interrupt", 0, route_interrupt, B_JSON_OPT },
	{ POST, "/free", 0, route_free, B_JSON },
	{ GET, "/history", 0, route_history_get, B_NONE },
	{ GET, "/history/", 1, route_history_get, B_NONE },
	{ POST, "/history", 0, route_history_post, B_JSON },
	{ GET, "/view", 0, route_view, B_NONE },
	{ POST, "/upload/image", 0, route_upload_image, B_NONE },
	{ GET, "/system_stats", 0, route_system_stats, B_NONE },
	{ GET, "/object_info", 0, route_object_info, B_NONE },
	{ GET, "/object_info/", 1, route_object_info, B_NONE },
	{ GET, "/features", 0, route_features, B_NONE },
	{ GET, "/models", 0, route_models, B_NONE },
	{ GET, "/models/", 1, route_models, B_NONE },
	{ GET, "/embeddings", 0, route_embeddings, B_NONE },
	{ GET, "/sim/faults", 0, route_faults, B_NONE },
	{ POST, "/sim/faults", 0, route_faults, B_JSON_OPT },
	{ GET, "/sim/stats", 0, route_sim_stats, B_NONE },
};

static struct evhttp	     *http;
static struct evkeyvalq	      query;
static struct evhttp_request *query_req;
static char		     *path_rest;

static void
http_send(struct evhttp_request *req, int status, const char *type,
    const void *data, size_t len)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL)
		fatalx("http: out of memory");
	if (len > 0)
		evbuffer_add(b, data, len);
	evhttp_add_header(
	    evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
}

void
http_reply_json(struct evhttp_request *req, int status, cJSON *j)
{
	size_t n = 0;
	char  *s = json_print(j, &n);

	if (s == NULL)
		fatalx("http: out of memory");
	http_send(req, status, "application/json; charset=utf-8", s, n);
	free(s);
	cJSON_Delete(j);
}

/* web.Response(status=N): no body. */
static void
http_reply_empty(struct evhttp_request *req, int status)
{
	http_send(req, status, "application/octet-stream", "", 0);
}

/* What aiohttp answers when a handler raises. */
void
http_reply_500(struct evhttp_request *req)
{
	static const char t[] = "500 Internal Server Error\n\n"
				"Server got itself in trouble";

	http_send(req, 500, "text/plain; charset=utf-8", t, sizeof t - 1);
}

static void
http_reply_text(struct evhttp_request *req, int status, const char *t)
{
	http_send(req, status, "text/plain; charset=utf-8", t, strlen(t));
}

/* The first value of a query parameter, or NULL. */
const char *
http_query(struct evhttp_request *req, const char *name)
{
	const char *q;

	if (req != query_req) {
		evhttp_clear_headers(&query);
		TAILQ_INIT(&query);
		query_req = req;
		q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
		if (q != NULL && evhttp_parse_query_str(q, &query) == -1) {
			evhttp_clear_headers(&query);
			TAILQ_INIT(&query);
		}
	}
	return (evhttp_find_header(&query, name));
}

const char *
http_path_rest(void)
{
	return (path_rest);
}

/*
 * For a JSON body that is not an object: would `"k" in body` followed by
 * body["k"] raise in Python? 0: it is an object; 1: a list or string that
 * holds neither key (a no-op); -1: Python raises (500).
 */
int
http_json_keys(const cJSON *j, const char *k1, const char *k2)
{
	const cJSON *it;

	if (cJSON_IsObject(j))
		return (0);
	if (cJSON_IsString(j))
		return (strstr(j->valuestring, k1) || strstr(j->valuestring, k2)
			? -1
			: 1);
	if (!cJSON_IsArray(j))
		return (-1);
	cJSON_ArrayForEach(it, j) {
		if (cJSON_IsString(it) &&
		    (strcmp(it->valuestring, k1) == 0 ||
			strcmp(it->valuestring, k2) == 0))
			return (-1);
	}
	return (1);
}

/*
 * The body of POST /queue and POST /history: {"clear": true} calls clear,
 * {"delete": ids} calls del for each id, where Python iterates whatever
 * "delete" holds (a list's items, a dict's keys, a string's characters)
 * and raises on anything else. Returns the status of the empty reply.
 */
int
http_clear_delete(
    const cJSON *body, void (*clear)(void), void (*del)(const char *))
{
	const cJSON *ids, *it;
	char	     c[2] = { 0, 0 };
	size_t	     i;

	if (http_json_keys(body, "clear", "delete") == -1)
		return (500);
	if (!cJSON_IsObject(body))
		return (200);
	if (py_truthy(cJSON_GetObjectItemCaseSensitive(body, "clear")))
		clear();
	if ((ids = cJSON_GetObjectItemCaseSensitive(body, "delete")) == NULL)
		return (200);
	if (cJSON_IsString(ids)) {
		for (i = 0; ids->valuestring[i] != '\0'; i++) {
			c[0] = ids->valuestring[i];
			del(c);
		}
		return (200);
	}
	if (!cJSON_IsArray(ids) && !cJSON_IsObject(ids))
		return (500);
	cJSON_ArrayForEach(it, ids) {
		if (cJSON_IsObject(ids))
			del(it->string);
		else if (cJSON_IsString(it))
			del(it->valuestring);
	}
	return (200);
}

static int
http_is_loopback(const char *host)
{
	return (strcasecmp(host, "localhost") == 0 ||
	    strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0);
}

/* host[:port] of a Host header or an Origin URL, lower-cased. */
static void
http_hostport(const char *s, char *host, size_t hl, char *port, size_t pl)
{
	const char *p = strstr(s, "://"), *e, *c;
	size_t	    n, i;

	s = p != NULL ? p + 3 : s;
	e = s + strcspn(s, "/?#");
	if (*s == '[' && (c = memchr(s, ']', (size_t)(e - s))) != NULL) {
		n = (size_t)(c - s - 1);
		s++;
		c = c + 1 < e && c[1] == ':' ? c + 1 : NULL;
	} else {
		c = memchr(s, ':', (size_t)(e - s));
		n = (size_t)((c != NULL ? c : e) - s);
	}
	snprintf(host, hl, "%.*s", (int)n, s);
	for (i = 0; host[i] != '\0'; i++)
		host[i] = (char)tolower((unsigned char)host[i]);
	snprintf(port, pl, "%.*s", c != NULL ? (int)(e - c - 1) : 0,
	    c != NULL ? c + 1 : "");
}

/* create_origin_only_middleware(): 1 when the request must get 403. */
static int
http_foreign_origin(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char	 *host = evhttp_find_header(h, "Host");
	const char	 *origin = evhttp_find_header(h, "Origin");
	char		  hh[256], hp[16], oh[256], op[16];

	if (host == NULL || origin == NULL)
		return (0);
	http_hostport(host, hh, sizeof hh, hp, sizeof hp);
	http_hostport(origin, oh, sizeof oh, op, sizeof op);
	if (!http_is_loopback(hh) || hh[0] == '\0' || oh[0] == '\0')
		return (0);
	/* A side without a port compares hosts only. */
	if (op[0] == '\0' || hp[0] == '\0')
		return (strcmp(hh, oh) != 0);
	return (strcmp(hh, oh) != 0 || strcmp(hp, op) != 0);
}

/* json.loads(): the whole body is one JSON value. */
static cJSON *
http_parse_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t		 len = evbuffer_get_length(in);
	const char	*data, *end = NULL;
	cJSON		*j;

	if (len == 0)
		return (NULL);
	data = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if ((j = cJSON_ParseWithLengthOpts(data, len, &end, 0)) == NULL)
		return (NULL);
	while (end < data + len && isspace((unsigned char)*end))
		end++;
	if (end != data + len) {
		cJSON_Delete(j);
		return (NULL);
	}
	return (j);
}

static void
http_dispatch(struct evhttp_request *req, void *arg)
{
	const struct route *r, *found = NULL;
	const char	   *raw;
	char		   *path = NULL, *p;
	cJSON		   *body = NULL;
	int		    method = evhttp_request_get_command(req), rc;
	size_t		    i, n;

	(void)arg;
	free(path_rest);
	path_rest = NULL;
	query_req = NULL;
	if (http_foreign_origin(req)) {
		http_reply_empty(req, 403);
		return;
	}
	if (method == EVHTTP_REQ_OPTIONS) {
		http_reply_empty(req, 200);
		return;
	}
	raw = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	if (raw == NULL || (path = evhttp_uridecode(raw, 0, NULL)) == NULL) {
		http_reply_text(req, 404, "404: Not Found");
		return;
	}
	p = strncmp(path, "/api/", 5) == 0 ? path + 4 : path;
	for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
		r = &routes[i];
		n = strlen(r->path);
		if (r->prefix ? (strncmp(p, r->path, n) != 0 || p[n] == '\0' ||
				    strchr(p + n, '/') != NULL)
			      : strcmp(p, r->path) != 0)
			continue;
		found = r;
		if (r->methods & method)
			break;
	}
	if (found == NULL || !(found->methods & method)) {
		if (found == NULL)
			http_reply_text(req, 404, "404: Not Found");
		else
			http_reply_text(req, 405, "405: Method Not Allowed");
		free(path);
		return;
	}
	r = &routes[i];
	if (r->prefix)
		path_rest = xstrdup(p + strlen(r->path));
	free(path);
	if (r->body != B_NONE) {
		body = http_parse_json(req);
		if (body == NULL && r->body == B_JSON) {
			http_reply_500(req);
			return;
		}
	}
	rc = r->fn(req, body);
	cJSON_Delete(body);
	if (rc == 500)
		http_reply_500(req);
	else if (rc != 0)
		http_reply_empty(req, rc);
}

int
http_start(char *err, size_t errlen)
{
	struct evhttp_bound_socket *sock;
	evutil_socket_t		    fd;
	struct sockaddr_storage	    ss;
	ev_socklen_t		    sl = sizeof ss;
	FILE			   *f;
	int			    port = 0;

	TAILQ_INIT(&query);
	if ((http = evhttp_new(sim.base)) == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		return (-1);
	}
	evhttp_set_allowed_methods(http,
	    EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
		EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
		EVHTTP_REQ_PATCH);
	evhttp_set_max_body_size(
	    http, (ev_ssize_t)sim.cfg.max_upload_size * 1024 * 1024);
	evhttp_set_max_headers_size(http, 64 * 1024);
	/* An oversize body is read to its end (and dropped) before the 413
	 * and the close (RFC 9112 9.6, lingering close), so a client still
	 * sending it reads the answer instead of a reset. */
	evhttp_set_flags(http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_timeout(http, 120);
	evhttp_set_gencb(http, http_dispatch, NULL);
	if ((sock = evhttp_bind_socket_with_handle(
		 http, sim.cfg.listen, (ev_uint16_t)sim.cfg.port)) == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%lld",
		    sim.cfg.listen, sim.cfg.port);
		return (-1);
	}
	fd = evhttp_bound_socket_get_fd(sock);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		port = ntohs(ss.ss_family == AF_INET6
			? ((struct sockaddr_in6 *)&ss)->sin6_port
			: ((struct sockaddr_in *)&ss)->sin_port);
	log_notice("listening on http://%s:%d", sim.cfg.listen, port);
	if (sim.cfg.port_file != NULL && *sim.cfg.port_file != '\0') {
		if ((f = fopen(sim.cfg.port_file, "w")) == NULL) {
			snprintf(
			    err, errlen, "%s: cannot write", sim.cfg.port_file);
			return (-1);
		}
		fprintf(f, "%d\n", port);
		fclose(f);
	}
	return (0);
}

void
http_stop(void)
{
	view_shutdown();
	ws_server_close_all();
	if (http != NULL)
		evhttp_free(http);
	http = NULL;
	evhttp_clear_headers(&query);
	free(path_rest);
	path_rest = NULL;
}

static int
route_ws(struct evhttp_request *req, cJSON *body)
{
	(void)body;
	ws_server_upgrade(req);
	return (0);
}
