/*
 * The /ws endpoint, on the server side of a WebSocket of the base library
 * (shared/ws_peer.c): the upgrade checked in aiohttp's words, 101, wslay
 * framing; client frames must be masked, pings get pongs, a close gets a
 * close, and anything malformed (or a message over 4 MiB, aiohttp's limit)
 * closes the socket. The server never pings, as ComfyUI does not.
 *
 * Sockets are kept by client id the way ComfyUI's `sockets` dict is: a new
 * socket with an id in use takes the id over (the old socket stays open
 * but hears nothing), and when any socket closes its id is removed from
 * the map, even if a newer socket had taken it over. A socket is freed
 * on the next turn of the loop after it closes (ws_peer.h).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "log.h"
#include "sim.h"
#include "util.h"
#include "ws_peer.h"
#include "xmalloc.h"

#define WS_MAX_MSG   (4u << 20)
#define WS_MAX_QUEUE (64u << 20) /* unread output before we drop a client */

struct wsc {
	char	       *sid;
	struct ws_peer *peer;
	int		dead;  /* closed: out of the map */
	int		first; /* no JSON message seen yet */
	struct wsc     *prev, *next;
};

static struct wsc  *all;    /* every socket not yet freed */
static struct omap *by_sid; /* ComfyUI's `sockets` dict */

/* Its id leaves the map at once (ComfyUI's finally: block). */
static void
wsc_closed(struct ws_peer *p, void *arg)
{
	struct wsc *c = arg;

	(void)p;
	c->dead = 1;
	if (by_sid != NULL)
		omap_del(by_sid, c->sid);
}

static void
wsc_freed(void *arg)
{
	struct wsc *c = arg;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		all = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	log_debug("ws %s closed", c->sid);
	free(c->sid);
	free(c);
}

/* Client text: a first JSON message of type feature_flags is answered
 * (to the socket the id maps to, as ComfyUI's send() does); anything else
 * is ignored. */
static void
wsc_text(struct wsc *c, const char *text, size_t len)
{
	cJSON *j, *t;

	if ((j = cJSON_ParseWithLength(text, len)) == NULL) {
		log_info("ws %s: invalid JSON from client", c->sid);
		return;
	}
	t = cJSON_GetObjectItemCaseSensitive(j, "type");
	if (c->first && cJSON_IsString(t) &&
	    strcmp(t->valuestring, "feature_flags") == 0)
		notify_send(c->sid, "feature_flags", api_features());
	c->first = 0;
	cJSON_Delete(j);
}

static void
wsc_bad(struct evhttp_request *req, const char *text)
{
	struct evbuffer *b = evbuffer_new();

	evbuffer_add_printf(b, "%s", text);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Content-Type", "text/plain; charset=utf-8");
	evhttp_send_reply(req, 400, "Bad Request", b);
	evbuffer_free(b);
}

static void
wsc_on_text(struct ws_peer *p, const char *text, size_t len, void *arg)
{
	(void)p;
	wsc_text(arg, text, len);
}

static const struct ws_peer_cb wsc_cb = { wsc_on_text, wsc_closed, wsc_freed };

/* GET /ws?clientId=<id>: the WebSocket handshake and takeover. */
void
ws_server_upgrade(struct evhttp_request *req)
{
	const char *id = http_query(req, "clientId");
	const char *why;
	char	    accept[WS_ACCEPT_LEN], uuid[UUID_LEN], hex[33];
	struct wsc *c;
	int	    k, o;

	if ((why = ws_peer_check(req, accept)) != NULL) {
		wsc_bad(req, why);
		return;
	}
	c = xcalloc(1, sizeof *c);
	if (id != NULL && *id != '\0')
		c->sid = xstrdup(id);
	else {
		uuid4(uuid);
		for (k = o = 0; uuid[k] != '\0'; k++)
			if (uuid[k] != '-')
				hex[o++] = uuid[k];
		hex[o] = '\0';
		c->sid = xstrdup(hex);
	}
	c->first = 1;
	c->peer = ws_peer_accept(req, accept, WS_MAX_MSG, &wsc_cb, c);
	c->next = all;
	if (all != NULL)
		all->prev = c;
	all = c;
	if (by_sid == NULL)
		by_sid = omap_new();
	omap_put(by_sid, c->sid, c);
	log_debug("ws %s open", c->sid);
	notify_hello(c->sid);
	ws_peer_start(c->peer);
}

static void
wsc_queue(struct wsc *c, const char *text, size_t len)
{
	if (!c->dead && ws_peer_send(c->peer, text, len, WS_MAX_QUEUE) == -1)
		log_warnx("ws %s: client does not read, dropped", c->sid);
}

/* A text frame to the socket of sid, or to every socket in the map when
 * sid is NULL (except skip). Returns how many sockets it was queued to. */
int
ws_server_send(const char *sid, const char *skip, const char *text, size_t len)
{
	struct omap_ent *e, *next;
	struct wsc	*c;
	int		 n = 0;

	if (by_sid == NULL)
		return (0);
	if (sid != NULL) {
		if ((c = omap_get(by_sid, sid)) == NULL)
			return (0);
		wsc_queue(c, text, len);
		return (1);
	}
	for (e = omap_first(by_sid); e != NULL; e = next) {
		next = omap_next(e);
		if (skip != NULL && strcmp(omap_key(e), skip) == 0)
			continue;
		wsc_queue(omap_val(e), text, len);
		n++;
	}
	return (n);
}

/* Whether ws_server_send(sid, skip, ...) would queue to a socket. */
int
ws_server_reaches(const char *sid, const char *skip)
{
	struct omap_ent *e;

	if (by_sid == NULL)
		return (0);
	if (sid != NULL)
		return (omap_get(by_sid, sid) != NULL);
	for (e = omap_first(by_sid); e != NULL; e = omap_next(e))
		if (skip == NULL || strcmp(omap_key(e), skip) != 0)
			return (1);
	return (0);
}

/* The ws_drop fault: the socket goes away without a close frame. */
void
ws_server_drop(const char *sid)
{
	struct wsc *c;

	if (by_sid == NULL || (c = omap_get(by_sid, sid)) == NULL)
		return;
	log_notice("fault: dropping WebSocket %s", sid);
	ws_peer_close(c->peer, 1);
}

void
ws_server_close_all(void)
{
	while (all != NULL)
		ws_peer_free(all->peer, 1);
	omap_free(by_sid, NULL);
	by_sid = NULL;
}
