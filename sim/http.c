/*
 * HTTP: one evhttp listener and one dispatcher over a route table. Like
 * ComfyUI's aiohttp app, every route also answers under /api; a loopback
 * Host with a foreign Origin gets 403 with an empty body (the CSRF guard,
 * /ws included); an unknown path 404 and a known path with another method
 * 405, with aiohttp's texts; a JSON route whose body does not parse gets
 * 500 "Server got itself in trouble". Bodies over --max-upload-size get
 * evhttp's 413. Handlers return 0 when they have replied (or will, later),
 * else the status of an empty reply (500: the trouble text). The parsing
 * (the route table, the guard's host comparison, JSON bodies) is
 * reqparse.c's, so that it links into tests/fuzz/fuzz_simreq.c.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>

#include "log.h"
#include "reqparse.h"
#include "sim.h"
#include "xmalloc.h"

static int route_ws(struct evhttp_request *, cJSON *);

/* The handlers of reqparse.c's routes, in its order. */
static int (*const route_fns[RP_NROUTES])(struct evhttp_request *, cJSON *) = {
	[RP_WS] = route_ws,
	[RP_PROMPT_GET] = route_prompt_get,
	[RP_PROMPT_POST] = route_prompt_post,
	[RP_QUEUE_GET] = route_queue_get,
	[RP_QUEUE_POST] = route_queue_post,
	[RP_INTERRUPT] = route_interrupt,
	[RP_FREE] = route_free,
	[RP_HISTORY_GET] = route_history_get,
	[RP_HISTORY_ONE] = route_history_get,
	[RP_HISTORY_POST] = route_history_post,
	[RP_VIEW] = route_view,
	[RP_UPLOAD_IMAGE] = route_upload_image,
	[RP_SYSTEM_STATS] = route_system_stats,
	[RP_OBJECT_INFO] = route_object_info,
	[RP_OBJECT_INFO_ONE] = route_object_info,
	[RP_FEATURES] = route_features,
	[RP_MODELS] = route_models,
	[RP_MODELS_ONE] = route_models,
	[RP_EMBEDDINGS] = route_embeddings,
	[RP_FAULTS_GET] = route_faults,
	[RP_FAULTS_POST] = route_faults,
	[RP_SIM_STATS] = route_sim_stats,
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

/* reqparse.h's rp_json_keys, under the name the handlers use (sim.h). */
int
http_json_keys(const cJSON *j, const char *k1, const char *k2)
{
	return (rp_json_keys(j, k1, k2));
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

/* create_origin_only_middleware(): 1 when the request must get 403. */
static int
http_foreign_origin(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);

	return (rp_foreign_origin(
	    evhttp_find_header(h, "Host"), evhttp_find_header(h, "Origin")));
}

/* json.loads(): the whole body is one JSON value. */
static cJSON *
http_parse_json(struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t		 len = evbuffer_get_length(in);

	if (len == 0)
		return (NULL);
	return (rp_json((const char *)evbuffer_pullup(in, (ev_ssize_t)len),
	    len));
}

static void
http_dispatch(struct evhttp_request *req, void *arg)
{
	enum rp_route route;
	cJSON	     *body = NULL;
	int	      method = evhttp_request_get_command(req), rc;

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
	switch (rp_route(method,
	    evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)), &route,
	    &path_rest)) {
	case 0:
		break;
	case 405:
		http_reply_text(req, 405, "405: Method Not Allowed");
		return;
	default:
		http_reply_text(req, 404, "404: Not Found");
		return;
	}
	if (rp_routes[route].body != RP_NONE) {
		body = http_parse_json(req);
		if (body == NULL && rp_routes[route].body == RP_JSON) {
			http_reply_500(req);
			return;
		}
	}
	rc = route_fns[route](req, body);
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
