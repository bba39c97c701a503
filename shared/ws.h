/*
 * WebSocket client (RFC 6455) on a libevent loop, for ComfyUI's /ws.
 *
 * ws_connect() returns at once; the TCP connect, the HTTP upgrade and every
 * frame happen on the loop. The client masks its frames, sends no Origin
 * header (ComfyUI's CSRF guard answers a foreign Origin with 403), hands
 * whole messages to on_text/on_binary (fragments joined, control frames in
 * between answered), and answers pings. A close frame, a protocol error, an
 * oversized message, a lost link or a missed pong ends the link: on_close
 * is then called exactly once, also when the connect fails, and never from
 * inside ws_connect(). After on_close the ws is inert (sends return -1);
 * the caller still frees it with ws_free(), which may be called from inside
 * any callback. Hosts: IPv4 and IPv6 literals, `localhost` (127.0.0.1), and
 * other names through libevent's resolver (IPv4 preferred).
 */
#ifndef COMFYQ_WS_H
#define COMFYQ_WS_H

#include <stddef.h>

struct event_base;
struct ws;

struct ws_opts {
	long long connect_timeout_ms; /* TCP connect + HTTP upgrade; 0: 5000 */
	long long ping_interval_ms;   /* 0: no pings */
	long long pong_timeout_ms;    /* no frame at all this long after a
					 ping: closed, reason "pong timeout";
					 0: no limit */
	size_t	  max_msg_bytes;      /* a larger message closes the link;
					 0: 64 MiB */
};

struct ws_cb {
	void (*on_open)(struct ws *, void *);
	/* Text and binary messages: not NUL-terminated, valid during the
	 * call only. Either may be NULL. */
	void (*on_text)(struct ws *, const char *, size_t, void *);
	void (*on_binary)(struct ws *, const unsigned char *, size_t, void *);
	/* Exactly once, also for a failed connect; the ws is inert after. */
	void (*on_close)(struct ws *, const char *reason, void *);
};

/* ws://host[:port][/path][?query]. NULL only for a bad URL (reason in
 * err); every later failure arrives through on_close. */
struct ws *ws_connect(struct event_base *base, const char *url,
    const struct ws_opts *opts, const struct ws_cb *cb, void *arg, char *err,
    size_t errlen);
/* Queue a text message; 0, or -1 when the link is not open. */
int ws_send_text(struct ws *ws, const char *s, size_t len);
/* Send a ping now (arms the pong timeout); 0 or -1 when not open. */
int ws_send_ping(struct ws *ws);
/* Close (a close frame if open) without calling on_close and free. Safe
 * from inside any of its callbacks: the memory goes when the callback
 * returns. NULL is a no-op. */
void ws_free(struct ws *ws);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (base64 of SHA-1 of the key
 * and the RFC 6455 GUID): 28 characters and a NUL. Used by both sides. */
#define WS_ACCEPT_LEN 29
int ws_accept_key(const char *key, char out[WS_ACCEPT_LEN]);

#endif
