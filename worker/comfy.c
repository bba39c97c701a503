/*
 * ComfyUI client (see comfy.h). HTTP calls are thin: they build the URL and
 * body and hand the reply to the caller. The WebSocket is owned here: it is
 * (re)connected with backoff, pinged, and every text frame is parsed once
 * and passed on as (type, data). Binary frames (previews) are ignored.
 * Fire-and-forget calls (interrupt, queue delete, free) only log failures:
 * the caller's own state machine never waits on them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "backoff.h"
#include "comfy.h"
#include "jscan.h"
#include "log.h"
#include "util.h"
#include "ws.h"
#include "xmalloc.h"

#define COMFY_URL_MAX	 2048
#define COMFY_WS_MAX_MSG (64u << 20)

struct comfy {
	struct event_base *base;
	struct httpc	  *http;
	char		  *url; /* http://host:port, no slash */
	char		  *client_id;
	struct comfy_opts  opts;
	struct comfy_cb	   cb;
	void		  *arg;
	struct ws	  *ws;
	int		   ws_open;
	struct event	  *reconnect;
	struct backoff	   backoff;
};

static void comfy_ws_connect(struct comfy *);

static void
comfy_ws_on_open(struct ws *ws, void *arg)
{
	struct comfy *c = arg;

	(void)ws;
	c->ws_open = 1;
	backoff_reset(&c->backoff);
	log_info("comfy: websocket open");
	c->cb.on_link(c->arg, 1);
}

/*
 * Whether a socket message may matter to a run: the types run_event and
 * run_nodes_event act on. The others (status broadcasts, execution_start,
 * executed with its outputs, execution_success, progress_state, custom
 * nodes' own) are dropped unparsed, their type read with jscan; a message
 * whose type that cannot read is parsed whole, as before.
 */
static int
comfy_ws_wanted(const char *text, size_t len)
{
	static const char *const wanted[] = { "executing", "progress",
		"execution_cached", "execution_error",
		"execution_interrupted" };
	struct jscan_member	 m;
	size_t			 i, n;

	if (jscan_find(text, len, "type", &m) != 1 || *m.val != '"')
		return (1);
	n = (size_t)(m.vend - m.val - 2);
	if (memchr(m.val + 1, '\\', n) != NULL)
		return (1);
	for (i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
		if (strlen(wanted[i]) == n &&
		    memcmp(wanted[i], m.val + 1, n) == 0)
			return (1);
	return (0);
}

int
comfy_event_parse(const char *text, size_t len, comfy_event_fn fn, void *arg)
{
	cJSON *msg, *type, *data;

	if (!comfy_ws_wanted(text, len))
		return (1);
	if ((msg = cJSON_ParseWithLength(text, len)) == NULL)
		return (-1);
	type = cJSON_GetObjectItemCaseSensitive(msg, "type");
	data = cJSON_GetObjectItemCaseSensitive(msg, "data");
	if (cJSON_IsString(type))
		fn(arg, type->valuestring, cJSON_IsObject(data) ? data : NULL);
	cJSON_Delete(msg);
	return (cJSON_IsString(type) ? 0 : 1);
}

static void
comfy_ws_on_text(struct ws *ws, const char *text, size_t len, void *arg)
{
	struct comfy *c = arg;

	(void)ws;
	if (comfy_event_parse(text, len, c->cb.on_event, c->arg) == -1)
		log_warnx("comfy: a websocket message is not JSON; ignored");
}

static void
comfy_ws_on_binary(struct ws *ws, const unsigned char *p, size_t len, void *arg)
{
	(void)ws;
	(void)p;
	(void)len;
	(void)arg;
}

static void
comfy_reconnect_later(struct comfy *c)
{
	timer_add_ms(c->reconnect, backoff_next(&c->backoff));
}

static void
comfy_ws_on_close(struct ws *ws, const char *reason, void *arg)
{
	struct comfy *c = arg;
	int	      was_open = c->ws_open;

	(void)ws;
	c->ws_open = 0;
	ws_free(c->ws);
	c->ws = NULL;
	if (was_open) {
		log_warnx("comfy: websocket lost: %s", reason);
		c->cb.on_link(c->arg, 0);
	} else
		log_debug("comfy: websocket connect failed: %s", reason);
	comfy_reconnect_later(c);
}

static const struct ws_cb comfy_ws_cbs = {
	comfy_ws_on_open,
	comfy_ws_on_text,
	comfy_ws_on_binary,
	comfy_ws_on_close,
};

static void
comfy_ws_connect(struct comfy *c)
{
	struct ws_opts o;
	char	       url[COMFY_URL_MAX], err[256];
	char	      *id;

	memset(&o, 0, sizeof o);
	o.ping_interval_ms = c->opts.ping_ms;
	o.pong_timeout_ms = c->opts.pong_timeout_ms;
	o.max_msg_bytes = COMFY_WS_MAX_MSG;
	id = curl_easy_escape(NULL, c->client_id, 0);
	snprintf(url, sizeof url, "ws://%s/ws?clientId=%s",
	    c->url + strlen("http://"), id);
	curl_free(id);
	c->ws = ws_connect(c->base, url, &o, &comfy_ws_cbs, c, err, sizeof err);
	if (c->ws == NULL) {
		log_warnx("comfy: %s", err);
		comfy_reconnect_later(c);
	}
}

static void
comfy_reconnect_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	comfy_ws_connect(arg);
}

/*
 * Creates the client for ComfyUI at url (http://host:port) and starts the
 * WebSocket. Returns NULL with err set for a URL it cannot use.
 */
struct comfy *
comfy_new(struct event_base *base, struct httpc *http, const char *url,
    const char *client_id, const struct comfy_opts *o,
    const struct comfy_cb *cb, void *arg, char *err, size_t errlen)
{
	struct comfy *c;
	size_t	      len;

	if (strncmp(url, "http://", 7) != 0 || url[7] == '\0' ||
	    strchr(url + 7, '?') != NULL) {
		snprintf(err, errlen,
		    "comfyui-url: '%s' must be http://host:port (ComfyUI is reached without TLS)",
		    url);
		return (NULL);
	}
	c = xcalloc(1, sizeof *c);
	c->base = base;
	c->http = http;
	c->url = xstrdup(url);
	len = strlen(c->url);
	while (len > 7 && c->url[len - 1] == '/')
		c->url[--len] = '\0';
	c->client_id = xstrdup(client_id);
	c->opts = *o;
	c->cb = *cb;
	c->arg = arg;
	c->reconnect = evtimer_new(base, comfy_reconnect_cb, c);
	backoff_init(&c->backoff, 100, 5000);
	comfy_ws_connect(c);
	return (c);
}

void
comfy_free(struct comfy *c)
{
	if (c == NULL)
		return;
	ws_free(c->ws);
	event_free(c->reconnect);
	free(c->url);
	free(c->client_id);
	free(c);
}

/* New timeouts apply to requests made from now on and the next socket. */
void
comfy_set_opts(struct comfy *c, const struct comfy_opts *o)
{
	c->opts = *o;
}

int
comfy_ws_up(const struct comfy *c)
{
	return (c->ws_open);
}

const char *
comfy_url(const struct comfy *c)
{
	return (c->url);
}

static struct httpc_opts
comfy_http_opts(const struct comfy *c, size_t max)
{
	struct httpc_opts o;

	memset(&o, 0, sizeof o);
	o.timeout_ms = c->opts.http_timeout_ms;
	o.max_resp = max;
	return (o);
}

static struct httpc_req *
comfy_get(struct comfy *c, const char *path, size_t max, httpc_cb cb, void *arg)
{
	struct httpc_opts o = comfy_http_opts(c, max);
	char		  url[COMFY_URL_MAX];

	snprintf(url, sizeof url, "%s%s", c->url, path);
	return (httpc_get(c->http, url, &o, cb, arg));
}

static struct httpc_req *
comfy_post_json(
    struct comfy *c, const char *path, const char *json, httpc_cb cb, void *arg)
{
	struct httpc_opts o = comfy_http_opts(c, 0);
	char		  url[COMFY_URL_MAX];

	snprintf(url, sizeof url, "%s%s", c->url, path);
	return (httpc_post(
	    c->http, url, "application/json", json, strlen(json), &o, cb, arg));
}

/*
 * POST /prompt with our own prompt_id and client_id. The graph is printed
 * into the body as it is (no copy of it in a body object); the ids are
 * ours (a uuid, the worker's client id) and printed as JSON strings.
 */
struct httpc_req *
comfy_prompt(struct comfy *c, const char *prompt_id, const cJSON *graph,
    httpc_cb cb, void *arg)
{
	struct httpc_req *r;
	cJSON		 *ids;
	char		 *g, *tail, *text;
	size_t		  gl, tl, n;

	ids = cJSON_CreateObject();
	cJSON_AddStringToObject(ids, "client_id", c->client_id);
	cJSON_AddStringToObject(ids, "prompt_id", prompt_id);
	g = cJSON_PrintUnformatted(graph);
	tail = cJSON_PrintUnformatted(ids); /* {"client_id":...} */
	cJSON_Delete(ids);
	gl = g != NULL ? strlen(g) : 0;
	tl = strlen(tail);
	text = xmalloc(11 + (gl > 0 ? gl : 4) + tl + 1);
	memcpy(text, "{\"prompt\":", 10);
	n = 10;
	memcpy(text + n, gl > 0 ? g : "null", gl > 0 ? gl : 4);
	n += gl > 0 ? gl : 4;
	text[n++] = ',';
	memcpy(text + n, tail + 1, tl); /* with its NUL */
	cJSON_free(g);
	cJSON_free(tail);
	r = comfy_post_json(c, "/prompt", text, cb, arg);
	free(text);
	return (r);
}

struct httpc_req *
comfy_history(struct comfy *c, const char *prompt_id, httpc_cb cb, void *arg)
{
	char path[256];

	snprintf(path, sizeof path, "/history/%s", prompt_id);
	return (comfy_get(c, path, 64u << 20, cb, arg));
}

struct httpc_req *
comfy_queue(struct comfy *c, httpc_cb cb, void *arg)
{
	return (comfy_get(c, "/queue", 64u << 20, cb, arg));
}

struct httpc_req *
comfy_system_stats(struct comfy *c, httpc_cb cb, void *arg)
{
	return (comfy_get(c, "/system_stats", 1u << 20, cb, arg));
}

struct httpc_req *
comfy_object_info(struct comfy *c, httpc_cb cb, void *arg)
{
	return (comfy_get(c, "/object_info", 64u << 20, cb, arg));
}

/*
 * GET /view of one output file, up to max bytes, within timeout_ms: into
 * the open file fd, or into memory when fd is -1.
 */
struct httpc_req *
comfy_view(struct comfy *c, const char *filename, const char *subfolder,
    const char *type, int fd, size_t max, long timeout_ms, httpc_cb cb,
    void *arg)
{
	struct httpc_opts o = comfy_http_opts(c, max);
	char		  url[COMFY_URL_MAX * 2];
	char		 *f, *s, *t;

	f = curl_easy_escape(NULL, filename, 0);
	s = curl_easy_escape(NULL, subfolder, 0);
	t = curl_easy_escape(NULL, type, 0);
	snprintf(url, sizeof url, "%s/view?filename=%s&subfolder=%s&type=%s",
	    c->url, f, s, t);
	curl_free(f);
	curl_free(s);
	curl_free(t);
	o.timeout_ms = timeout_ms;
	if (fd != -1)
		return (httpc_download(c->http, url, fd, &o, cb, arg));
	return (httpc_get(c->http, url, &o, cb, arg));
}

/* POST /upload/image (multipart) into input/<subfolder>, no overwrite. */
struct httpc_req *
comfy_upload(struct comfy *c, const char *name, const void *data, size_t len,
    const char *subfolder, httpc_cb cb, void *arg)
{
	struct httpc_opts o = comfy_http_opts(c, 0);
	const char	 *fields[] = { "type", "input", "subfolder", subfolder,
		      "overwrite", "false", NULL };
	char		  url[COMFY_URL_MAX];

	snprintf(url, sizeof url, "%s/upload/image", c->url);
	return (httpc_upload(
	    c->http, url, "image", name, data, len, fields, &o, cb, arg));
}

static void
comfy_fire_done(const struct httpc_resp *r, void *arg)
{
	const char *what = arg;

	if (r->fail != HTTPC_OK || r->status != 200)
		log_warnx("comfy: %s failed: %s", what,
		    r->fail != HTTPC_OK ? r->err : "non-200 reply");
}

/*
 * Stops a prompt: a targeted interrupt (it takes effect at the next step)
 * and a delete from the pending queue (which cannot stop a running one).
 */
void
comfy_interrupt(struct comfy *c, const char *prompt_id)
{
	char body[256];

	snprintf(body, sizeof body, "{\"prompt_id\":\"%s\"}", prompt_id);
	comfy_post_json(
	    c, "/interrupt", body, comfy_fire_done, (void *)"POST /interrupt");
	snprintf(body, sizeof body, "{\"delete\":[\"%s\"]}", prompt_id);
	comfy_post_json(
	    c, "/queue", body, comfy_fire_done, (void *)"POST /queue delete");
}

/* Asks ComfyUI to unload models and drop caches (after an OOM). */
void
comfy_free_memory(struct comfy *c)
{
	comfy_post_json(c, "/free",
	    "{\"unload_models\":true,\"free_memory\":true}", comfy_fire_done,
	    (void *)"POST /free");
}
