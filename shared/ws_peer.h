/*
 * The server side of one WebSocket (RFC 6455), on the connection of an
 * evhttp request that asked to upgrade: the checks of the upgrade, the 101
 * answer, and wslay framing on the connection's bufferevent. Client frames
 * must be masked, pings get pongs, a close gets a close, and a malformed
 * frame or a message over max_msg closes the socket; the server never
 * pings. comfyq-sim's /ws and the scheduler's /comfy/ws are built on it;
 * each keeps its own sockets by client id.
 *
 * A closed peer is freed on the next turn of the loop, outside its own
 * callbacks (evhttp_connection_free() then closes the socket, which must
 * not happen under a running bufferevent callback).
 */
#ifndef COMFYQ_WS_PEER_H
#define COMFYQ_WS_PEER_H

#include <stddef.h>

#include "ws.h"

struct evhttp_request;
struct ws_peer;

struct ws_peer_cb {
	/* A text message from the client. */
	void (*on_text)(
	    struct ws_peer *p, const char *text, size_t len, void *arg);
	/* Once, when the peer closes (a close frame, EOF, an error, a drop,
	 * ws_peer_close): it is to leave its owner's maps now. */
	void (*on_close)(struct ws_peer *p, void *arg);
	/* Once, when the peer is freed: the owner frees arg. */
	void (*on_free)(void *arg);
};

/*
 * Checks req's upgrade (Upgrade, Connection, Sec-WebSocket-Version 13, a
 * 24-byte key): NULL with accept filled, or the reason for a 400 in
 * aiohttp's words (what ComfyUI answers).
 */
const char *ws_peer_check(
    struct evhttp_request *req, char accept[WS_ACCEPT_LEN]);
/* Takes req's connection over (no timeouts, TCP_NODELAY) and queues the
 * 101; call ws_peer_start() once the owner has set itself up. */
struct ws_peer *ws_peer_accept(struct evhttp_request *req, const char *accept,
    size_t max_msg, const struct ws_peer_cb *cb, void *arg);
/* Reads what came with the upgrade request, if anything. */
void ws_peer_start(struct ws_peer *p);
/*
 * Queues a text message: 0 (a failure of wslay closes the peer). A client
 * whose unsent output is already over max_queue does not read: it is
 * dropped (closed without a close frame) and -1 says so.
 */
int ws_peer_send(
    struct ws_peer *p, const char *text, size_t len, size_t max_queue);
/* Closes with a close frame (abrupt 0) or without (abrupt 1). */
void ws_peer_close(struct ws_peer *p, int abrupt);
/* Frees p now, outside its callbacks (at exit); going_away queues a
 * close frame 1001 first. */
void ws_peer_free(struct ws_peer *p, int going_away);

#endif
