/*
 * Private to the WebSocket client: what ws.c (the link: connect, frames,
 * timers) asks of ws_handshake.c (the ws:// URL and the RFC 6455 opening
 * handshake). The handshake side knows no struct ws: it works on a URL, a
 * key and the bufferevent's buffers, so it can be read and changed alone.
 */
#ifndef COMFYQ_WS_INT_H
#define COMFYQ_WS_INT_H

#include <stddef.h>

struct evbuffer;

/* Sec-WebSocket-Key: base64 of 16 random bytes, 24 characters and a NUL. */
#define WS_KEY_LEN 25

/* A ws://host[:port][/path][?query] URL, split. */
struct ws_url {
	char *host;    /* without the brackets of an IPv6 literal */
	char *hosthdr; /* the Host: header value, host:port */
	char *path;    /* path and query, "/" at least */
	int   port;    /* 80 when the URL has none */
};

/* Fills u from url. 0, or -1 with err and nothing left in u to free. On
 * 0 the caller frees u with ws_url_free(). */
int  ws_url_parse(const char *url, struct ws_url *u, char *err, size_t errlen);
void ws_url_free(struct ws_url *u);

/* Makes a fresh key into key and queues the upgrade request on out. */
void ws_handshake_request(
    struct evbuffer *out, const struct ws_url *u, char key[WS_KEY_LEN]);

/*
 * Reads the server's reply to the request sent with key from in. 1: the
 * reply head is not all there yet (nothing taken); 0: a valid 101, its head
 * taken from in (what follows it is frames); -1: a bad or refused reply,
 * the reason in err.
 */
int ws_handshake_reply(
    struct evbuffer *in, const char *key, char *err, size_t errlen);

/*
 * ws_connect() on fd, a stream socket already connected (a socketpair in
 * tests and tests/fuzz/fuzz_comfyws.c): no lookup and no connect, the
 * upgrade request is queued at once and the link goes on as ws.h says.
 * url names the Host and path of the request. fd is the ws's from here
 * on and closed with it, except when NULL comes back (a bad URL): then
 * the caller still owns it.
 */
struct event_base;
struct ws;
struct ws_cb;
struct ws_opts;
struct ws *ws_connect_fd(struct event_base *base, int fd, const char *url,
    const struct ws_opts *opts, const struct ws_cb *cb, void *arg, char *err,
    size_t errlen);

#endif
